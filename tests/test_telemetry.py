"""OpenTelemetry export: a run's spans reach a real OTLP/HTTP receiver (oteltap, a separate
process that decodes the protobuf requests) with the GenAI conventions' names and attributes,
nested under their parents; secrets in tool arguments never leave redacted."""

from __future__ import annotations

import json
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from llmunix.trace.markdown import find_traces, read_trace
from tests.scripted.openai_server import reply, text, tool_call
from tests.support import agent_text, new_workspace, require, run_cli, write_spec

WAIT = 60  # seconds: a guard against a hang, never a measurement
SECRET = "sk-telemetry-secret-123456"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Receiver:
    """oteltap on 127.0.0.1: every span it receives, as the JSON line it prints."""

    def __init__(self) -> None:
        program = shutil.which("oteltap", path=str(Path(sys.executable).parent))
        require("oteltap", program is not None, "pip install oteltap (in the test extra)")
        self.port = _free_port()
        self.proc = subprocess.Popen([program, "--port", str(self.port)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        first = self.lines.get(timeout=WAIT)
        assert first.startswith("Listening"), first

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spans_until(self, done) -> list[dict]:
        spans: list[dict] = []
        deadline = time.monotonic() + WAIT
        while not done(spans):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"spans so far: {[s['name'] for s in spans]}"
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line.startswith("{"):
                data = json.loads(line)
                if "spanId" in data:
                    spans.append(data)
        return spans

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture()
def receiver():
    tap = Receiver()
    try:
        yield tap
    finally:
        tap.stop()


def attrs(span: dict) -> dict:
    out = {}
    for a in span.get("attributes", []):
        value = a["value"]
        out[a["key"]] = next(iter(value.values())) if value else None
    return out


@pytest.fixture()
def ws(tmp_path):
    base = new_workspace(tmp_path / "ws")
    base.config_path.write_text('[memory]\ncommit = false\n', encoding="utf-8")
    project = base.ensure_project("default")
    write_spec(project.agents_dir, "boss.md", agent_text("boss", tools="Agent, Read, Bash",
                                                        body="BOSS-MARKER"))
    write_spec(project.agents_dir, "writer.md", agent_text("writer", tools="Write",
                                                          body="WRITER-MARKER"))
    return base


@pytest.mark.usefixtures("bubblewrap")  # it starts processes
def test_a_run_arrives_as_genai_spans_with_their_parents(ws, openai_server, receiver):
    openai_server.enqueue(
        reply(tool_call("Bash", {"command": f"echo {SECRET} > /dev/null"}),
              usage={"prompt_tokens": 100, "completion_tokens": 10}),
        reply(tool_call("Agent", {"subagent_type": "writer", "prompt": "write a.md"}),
              usage={"prompt_tokens": 110, "completion_tokens": 11}),
        reply(text("done"), usage={"prompt_tokens": 120, "completion_tokens": 12}),
    )
    openai_server.enqueue(reply(tool_call("Write", {"file_path": "a.md", "content": "A"}),
                                usage={"prompt_tokens": 50, "completion_tokens": 5}),
                          "written", when="WRITER-MARKER")
    result = run_cli("run", "write a.md", "--runtime", "openai", "--base-url", openai_server.url,
                     "--agent", "boss", "--model", "tiny-model", cwd=ws.root,
                     env={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "MY_API_KEY": SECRET})
    assert result.returncode == 0, result.stderr

    def complete(spans: list[dict]) -> bool:
        return any(s["name"] == "invoke_agent boss" for s in spans)

    spans = receiver.spans_until(complete)
    by_id = {s["spanId"]: s for s in spans}
    names = sorted(s["name"] for s in spans)
    assert names == ["chat tiny-model"] * 5 + ["execute_tool Bash", "execute_tool Write",
                                                "invoke_agent boss", "invoke_agent writer"]
    assert len({s["traceId"] for s in spans}) == 1  # one trace for the run

    def named(name: str) -> dict:
        return next(s for s in spans if s["name"] == name)

    def parent(span: dict) -> dict | None:
        return by_id.get(span["parentSpanId"])

    root = named("invoke_agent boss")
    sub = named("invoke_agent writer")
    assert root["parentSpanId"] == "" and parent(sub) is root
    assert parent(named("execute_tool Bash")) is root
    assert parent(named("execute_tool Write")) is sub
    chats = [s for s in spans if s["name"].startswith("chat")]
    assert sorted(attrs(parent(c))["gen_ai.agent.name"] for c in chats) == [
        "boss", "boss", "boss", "writer", "writer"]

    a = attrs(root)
    assert a["gen_ai.operation.name"] == "invoke_agent" and a["gen_ai.agent.name"] == "boss"
    assert a["gen_ai.provider.name"] == "openai" and a["gen_ai.request.model"] == "tiny-model"
    (trace_path,) = find_traces(ws.project("default").short_term_dir)
    meta = read_trace(trace_path).meta
    assert int(a["gen_ai.usage.input_tokens"]) == meta["input_tokens"] >= 380
    assert int(a["gen_ai.usage.output_tokens"]) == meta["output_tokens"]
    assert a["gen_ai.conversation.id"] == meta["trace_id"]
    assert a["llmunix.status"] == "success"
    tool = attrs(named("execute_tool Bash"))
    assert tool["gen_ai.operation.name"] == "execute_tool" and tool["gen_ai.tool.name"] == "Bash"
    assert tool["gen_ai.tool.call.id"] and "[REDACTED]" in tool["gen_ai.tool.call.arguments"]
    assert SECRET not in json.dumps(spans)
    chat = attrs(chats[0])
    assert chat["gen_ai.operation.name"] == "chat"
    assert sum(int(attrs(c)["gen_ai.usage.output_tokens"]) for c in chats) >= 10 + 11 + 12 + 5


def test_nothing_is_exported_or_imported_without_an_endpoint(ws, openai_server):
    openai_server.enqueue("quiet")
    probe = ("import sys, runpy; sys.argv = ['llmunix', 'run', 'hi', '--runtime', 'openai', "
             f"'--base-url', '{openai_server.url}', '--agent', 'boss'];\n"
             "from llmunix.cli import main as m\n"
             "m._exit = lambda code: print('OTEL' if any(n.startswith('opentelemetry.sdk') "
             "for n in sys.modules) else 'NO-OTEL')\n"
             "m.main()")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ws.root, capture_output=True,
                          text=True, timeout=WAIT, env=_env())
    assert done.stdout.strip().endswith("NO-OTEL"), done.stdout + done.stderr


def _env() -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMUNIX_", "OTEL_"))}
    return {**env, "XDG_CONFIG_HOME": "/nonexistent"}
