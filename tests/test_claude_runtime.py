"""What only the Claude runtime does: `llmunix run` on the real Claude Agent SDK and its bundled
CLI, against a scripted model on 127.0.0.1. The scenarios every runtime shares (file writes,
delegation, refusals, tool specs, limits, a killed run) are in tests/test_scenarios.py."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from llmunix.errors import EXIT_NO_RUNTIME
from llmunix.trace.markdown import find_traces, read_trace
from tests.scripted.anthropic_server import reply, text, tool_use
from tests.support import LLMUNIX, agent_text, new_workspace, run_cli, write_spec

SOLO = agent_text("solo", tools="Read, Write", body="SOLO-MARKER: you write files.")


def claude_env(server, home: Path) -> dict[str, str]:
    return {
        "ANTHROPIC_BASE_URL": server.url,
        "ANTHROPIC_API_KEY": "sk-test-secret-value-123",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "CLAUDE_CODE_MAX_RETRIES": "0",
        "HOME": str(home),
    }


@pytest.fixture()
def ws(tmp_path):
    ws = new_workspace(tmp_path / "ws")
    write_spec(ws.user_agents_dir, "solo.md", SOLO)
    return ws


def only_trace(ws, project="default"):
    [path] = find_traces(ws.project(project).short_term_dir)
    return read_trace(path)


def test_no_credentials_exit_no_runtime(ws, tmp_path):
    env = {"HOME": str(tmp_path), "ANTHROPIC_API_KEY": "", "ANTHROPIC_BASE_URL": "",
           "ANTHROPIC_AUTH_TOKEN": "", "CLAUDE_CODE_OAUTH_TOKEN": ""}
    result = run_cli("run", "anything", cwd=ws.root, env=env)
    assert result.returncode == EXIT_NO_RUNTIME
    assert "no Claude credentials found" in result.stderr
    assert "--runtime openai" in result.stderr and "ANTHROPIC_API_KEY" in result.stderr
    assert "Traceback" not in result.stderr
    assert find_traces(ws.project("default").short_term_dir) == []


def test_ctrl_c_ends_the_run_cleanly(ws, anthropic_server, tmp_path):
    anthropic_server.enqueue(
        tool_use("Write", {"file_path": "one.txt", "content": "1"}),
        reply(text("never seen"), delay=60),
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMUNIX_")}
    env.update(claude_env(anthropic_server, tmp_path))
    proc = subprocess.Popen([LLMUNIX, "run", "slow", "--agent", "solo", "--mode", "learner"],
                            cwd=ws.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 60
    while len(anthropic_server.model_requests()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)  # waiting for a condition: the run is blocked on its second turn
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    trace = only_trace(ws)
    assert trace.status == "interrupted"
    assert [s.input["file_path"] for s in trace.tool_steps()] == ["one.txt"]
    assert trace.meta["finished_at"]


# ---------------------------------------------------------------- failing fast


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_base_url_alone_is_no_credential(ws, tmp_path):
    env = {"HOME": str(tmp_path), "ANTHROPIC_API_KEY": "", "ANTHROPIC_AUTH_TOKEN": "",
           "CLAUDE_CODE_OAUTH_TOKEN": "", "ANTHROPIC_BASE_URL": "http://127.0.0.1:9/x"}
    result = run_cli("run", "anything", "--runtime", "claude", cwd=ws.root, env=env)
    assert result.returncode == EXIT_NO_RUNTIME, result.stderr
    assert "ANTHROPIC_BASE_URL is set (http://127.0.0.1:9/x), but the Claude Code CLI also " \
           "needs a key or token for it" in result.stderr
    assert "Not logged in" not in result.stderr and "Traceback" not in result.stderr
    assert find_traces(ws.project("default").short_term_dir) == []


def test_an_unreachable_endpoint_fails_before_the_cli_starts(ws, tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}"
    env = {"HOME": str(tmp_path), "ANTHROPIC_API_KEY": "sk-test-secret-value-123",
           "ANTHROPIC_BASE_URL": url}
    result = run_cli("run", "anything", "--runtime", "claude", cwd=ws.root, env=env, timeout=30)
    assert result.returncode == EXIT_NO_RUNTIME, result.stderr
    assert f"the Claude API at {url} does not answer (connection refused)" in result.stderr
    assert "--runtime openai" in result.stderr and "Traceback" not in result.stderr
    assert find_traces(ws.project("default").short_term_dir) == []


def test_a_reply_that_never_ends_is_stopped_by_the_timeout(ws, anthropic_server, tmp_path):
    anthropic_server.enqueue(reply(text("never seen"), delay=60))
    result = run_cli("run", "x", "--runtime", "claude", "--agent", "solo", "--timeout", "3",
                     cwd=ws.root, env=claude_env(anthropic_server, tmp_path / "home"),
                     timeout=120)
    assert result.returncode == 3, result.stderr
    assert "timeout reached (3 s)" in result.stderr
    trace = only_trace(ws)
    assert trace.status == "stopped" and trace.meta["reason"] == "timeout reached (3 s)"


@pytest.mark.parametrize("status", [500, 401, 429, 529])
def test_a_failing_model_server_ends_the_run_with_its_error(ws, anthropic_server, tmp_path,
                                                            status):
    """The server's failure is said (its status and its message), the run ends `error` with
    exit code 1, its trace says why and is committed; no traceback."""
    from tests.scripted.anthropic_server import error

    anthropic_server.enqueue(error(status, message="SCRIPTED-FAILURE-DETAIL"))
    result = run_cli("run", "x", "--runtime", "claude", "--agent", "solo", cwd=ws.root,
                     env=claude_env(anthropic_server, tmp_path / "home"), timeout=180)
    shown = result.stdout + result.stderr
    assert result.returncode == 1, shown
    assert "Traceback" not in shown
    trace = only_trace(ws)
    assert trace.status == "error"
    assert str(status) in trace.meta["reason"], trace.meta["reason"]
    assert "SCRIPTED-FAILURE-DETAIL" in trace.meta["reason"], trace.meta["reason"]
    assert f"error: {trace.meta['reason']}" in shown
    log = subprocess.run(["git", "log", "-1", "--format=%s%n%b"], cwd=ws.root,
                         capture_output=True, text=True).stdout
    assert log.startswith(f"run {trace.meta['trace_id']}:") and "Status: error" in log
