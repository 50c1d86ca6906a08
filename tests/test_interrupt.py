"""Ctrl-C as a terminal sends it: `llmunix run` in a pseudo-terminal, a long Bash call running,
^C typed on the terminal. The tool's whole process tree must be gone once llmunix has exited
(asserted on the process table, not on timing), the call is in the trace as interrupted, and the
run ends `interrupted` with exit code 130."""

from __future__ import annotations

import fcntl
import os
import pty
import subprocess
import termios
import threading
import time
from pathlib import Path

import pytest

from llmunix.errors import EXIT_INTERRUPTED
from llmunix.kernel.session import INTERRUPTED_OUTPUT, MCP_PREFIX
from llmunix.trace.markdown import find_traces, read_trace
from tests.scripted.openai_server import tool_call
from tests.support import (
    LLMUNIX,
    NO_USER_CONFIG,
    agent_text,
    new_workspace,
    processes_matching,
    write_spec,
)

WAIT = 60  # seconds: a guard against a hang, never a measurement
# Two long sleeps in the background of the shell; their unusual lengths find them in the process
# table (pids inside the sandbox's own PID namespace mean nothing outside it).
MARKS = (b"314159", b"271828")
LONG = "sleep 314159 & sleep 271828 & touch started; wait"


def _controlling_terminal() -> None:
    """In the child: a session of its own whose controlling terminal is the pty (stdin)."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """A command on a pseudo-terminal; everything it prints is collected."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=slave, stdout=slave,
                                     stderr=slave, preexec_fn=_controlling_terminal)
        os.close(slave)
        self.chunks: list[bytes] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            self.chunks.append(data)

    def type(self, text: bytes) -> None:
        os.write(self.master, text)

    def output(self) -> str:
        return b"".join(self.chunks).decode("utf-8", "replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(timeout=5)
        os.close(self.master)


def tool_processes() -> list[int]:
    """Live processes (zombies waiting for a reaper count as gone) of the tool's command."""
    return processes_matching(lambda cmdline: any(mark in cmdline for mark in MARKS))


def wait_for_file(path: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if path.is_file():
            return
        assert proc.poll() is None, "llmunix ended before the tool started"
        time.sleep(0.05)
    raise AssertionError(f"{path.name} never appeared")


@pytest.fixture()
def ws(tmp_path):
    base = new_workspace(tmp_path / "ws")
    base.config_path.write_text('[memory]\ncommit = false\n', encoding="utf-8")
    write_spec(base.user_agents_dir, "runner.md", agent_text("runner", tools="Bash"))
    return base


@pytest.fixture(params=["openai", "claude"])
def long_bash(request, tmp_path):
    """A scripted model whose first reply is the long Bash call; (server, CLI args, env)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMUNIX_")}
    env.update({"TERM": "xterm-256color", "XDG_CONFIG_HOME": NO_USER_CONFIG, "COLUMNS": "120"})
    args = {"command": LONG, "timeout": 600000}
    if request.param == "openai":
        from tests.scripted.openai_server import OpenAIServer

        with OpenAIServer() as server:
            server.enqueue(tool_call("Bash", args), "never asked for")
            yield server, ["--runtime", "openai", "--base-url", server.url], env
    else:
        from tests.scripted.anthropic_server import AnthropicServer, tool_use

        with AnthropicServer() as server:
            server.enqueue(tool_use(MCP_PREFIX + "Bash", args), "never asked for")
            env.update({"ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_API_KEY": "test",
                        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                        "CLAUDE_CODE_MAX_RETRIES": "0", "HOME": str(tmp_path)})
            yield server, ["--runtime", "claude"], env


@pytest.mark.usefixtures("bubblewrap")  # it starts processes
def test_ctrl_c_stops_a_long_bash_call_at_once(ws, long_bash):
    server, runtime_args, env = long_bash
    term = Terminal([LLMUNIX, "run", "sleep for a while", *runtime_args, "--agent", "runner"],
                    ws.root, env)
    folder = ws.project("default").workspace_dir
    try:
        wait_for_file(folder / "started", term.proc)
        assert len(tool_processes()) >= 2, "the tool's sleeps are not running"
        term.type(b"\x03")  # ^C on the terminal: SIGINT to its foreground process group
        code = term.proc.wait(timeout=WAIT)
    finally:
        term.close()
    assert code == EXIT_INTERRUPTED, term.output()
    assert tool_processes() == [], "the tool's processes outlived llmunix"
    (path,) = find_traces(ws.project("default").short_term_dir)
    trace = read_trace(path)
    assert trace.status == "interrupted" and "Ctrl-C" in trace.meta["reason"]
    (step,) = trace.tool_steps()
    assert step.tool == "Bash" and step.fields["interrupted"] is True
    assert step.fields["is_error"] is True and step.blocks["result"] == INTERRUPTED_OUTPUT
    assert "interrupted" in term.output()
    assert len(server.model_requests()) == 1  # no model turn after the interrupt


@pytest.mark.usefixtures("bubblewrap")  # it starts processes
def test_in_the_shell_ctrl_c_returns_to_the_prompt_and_typed_ahead_lines_run(ws, openai_server):
    """An interactive shell (prompt on a terminal): a goal's long Bash call, a line typed while
    it runs, then ^C. The tool is gone at once while the shell lives on, and the typed-ahead
    line runs next (the terminal did not flush it)."""
    second_arrived = threading.Event()

    def second(req) -> bool:
        if "typed ahead goal" in str(openai_server.messages(req)):
            second_arrived.set()
            return True
        return False

    openai_server.enqueue("the second answer", when=second)
    openai_server.enqueue(tool_call("Bash", {"command": LONG, "timeout": 600000}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMUNIX_")}
    env.update({"TERM": "xterm-256color", "XDG_CONFIG_HOME": NO_USER_CONFIG, "COLUMNS": "120"})
    term = Terminal([LLMUNIX, "shell", "--runtime", "openai", "--base-url", openai_server.url,
                     "--agent", "runner"], ws.root, env)
    folder = ws.project("default").workspace_dir
    try:
        term.type(b"first goal\r")
        wait_for_file(folder / "started", term.proc)
        term.type(b"typed ahead goal\r")
        term.type(b"\x03")
        assert second_arrived.wait(WAIT), term.output()
        assert tool_processes() == [], "the tool outlived the interrupt"
        assert term.proc.poll() is None, "Ctrl-C ended the shell"
        term.type(b":quit\r")
        code = term.proc.wait(timeout=WAIT)
    finally:
        term.close()
    assert code == 0, term.output()
    traces = {read_trace(p).meta["goal"]: read_trace(p)
              for p in find_traces(ws.project("default").short_term_dir)}
    assert traces["first goal"].status == "interrupted"
    (step,) = traces["first goal"].tool_steps()
    assert step.fields["interrupted"] is True
    assert traces["typed ahead goal"].status == "success"
    assert traces["typed ahead goal"].result == "the second answer"
