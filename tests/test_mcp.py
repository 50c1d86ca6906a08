"""MCP servers on both runtimes, with servers no one here wrote: `mcp-server-time` (PyPI, stdio),
plus a small streamable-HTTP server made with the `mcp` SDK (tests/mcp_servers/http_notes.py)
and one that crashes (tests/mcp_servers/crashy.py). Configured as Claude Code configures them: a
workspace's `.mcp.json`, or `mcpServers` in an agent's frontmatter."""

from __future__ import annotations

import importlib.util
import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from llmunix.workspace.layout import Workspace
from tests.support import agent_text, new_workspace, require, run_cli, write_spec
from tests.test_scenarios import Model, only_trace

SERVERS = Path(__file__).parent / "mcp_servers"
TIME = {"command": sys.executable, "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"]}
CRASHY = {"command": sys.executable, "args": [str(SERVERS / "crashy.py")]}


def needs_time_server() -> None:
    require("mcp-server-time", importlib.util.find_spec("mcp_server_time") is not None,
            "pip install -e '.[test]' (it installs mcp-server-time from PyPI)")


def write_mcp_json(ws: Workspace, servers: dict) -> None:
    (ws.root / ".mcp.json").write_text(json.dumps({"mcpServers": servers}, indent=2))


@pytest.fixture()
def ws(model, tmp_path) -> Workspace:
    ws = new_workspace(tmp_path / "ws")
    model.configure(ws)
    return Workspace(ws.root)


def mcp_call(model: Model, name: str, args: dict, id: str) -> dict:
    """A call of an MCP tool, named as both runtimes name it: mcp__<server>__<tool>."""
    if model.runtime == "claude":
        return model.wire.tool_use(name, args, id=id)
    return model.wire.tool_call(name, args, id=id)


def step(trace, call_id: str):
    return next(s for s in trace.tool_steps() if s.fields.get("call_id") == call_id)


def test_time_server_tools_are_offered_gated_and_recorded(model, ws):
    needs_time_server()
    write_mcp_json(ws, {"time": TIME})
    write_spec(ws.user_agents_dir, "clock.md",
               agent_text("clock", tools="Read, mcp__time__get_current_time", body="CLOCK."))
    model.enqueue(
        mcp_call(model, "mcp__time__get_current_time", {"timezone": "Europe/Paris"}, "call_now"),
        mcp_call(model, "mcp__time__convert_time",
                 {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"},
                 "call_convert"),
        "It is evening in Paris.",
    )
    result = model.run(ws, "What time is it in Paris?", "--agent", "clock")
    assert result.returncode == 0, result.stderr
    model.assert_script_used()

    first = model.requests()[0]
    assert "mcp__time__get_current_time" in model.tool_names(first)
    schema = model.tool_schema(first, "mcp__time__get_current_time")
    assert schema["properties"]["timezone"]["type"] == "string"  # the server's own schema
    if model.runtime == "openai":
        assert "mcp__time__convert_time" not in model.tool_names(first)  # not in its tools

    trace = only_trace(ws)
    now = step(trace, "call_now")
    assert now.tool == "mcp__time__get_current_time" and now.fields["decision"] == "allowed"
    assert "Europe/Paris" in now.blocks["result"] and "day_of_week" in now.blocks["result"]
    assert "day_of_week" in model.fed_back("call_now").text
    convert = step(trace, "call_convert")
    assert convert.fields["decision"] == "denied"
    assert "may not use it" in convert.fields["reason"]
    assert model.fed_back("call_convert").is_error


def test_agent_frontmatter_server_and_server_wide_tool_name(model, ws):
    needs_time_server()
    agent = ("---\nname: clock\ndescription: Tells the time.\ntools: mcp__time\nmcpServers:\n"
             f"  - time:\n      command: {json.dumps(TIME['command'])}\n"
             f"      args: {json.dumps(TIME['args'])}\n---\nCLOCK.\n")
    write_spec(ws.user_agents_dir, "clock.md", agent)
    model.enqueue(
        mcp_call(model, "mcp__time__convert_time",
                 {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"},
                 "call_convert"),
        "Noon in UTC is nine in the evening in Tokyo.",
    )
    result = model.run(ws, "Convert noon UTC to Tokyo", "--agent", "clock")
    assert result.returncode == 0, result.stderr
    model.assert_script_used()
    convert = step(only_trace(ws), "call_convert")
    assert convert.fields["decision"] == "allowed"
    assert "21:00" in convert.blocks["result"]
    assert set(model.tool_names(model.requests()[0])) >= {"mcp__time__get_current_time",
                                                          "mcp__time__convert_time"}


@pytest.fixture()
def http_server():
    """tests/mcp_servers/http_notes.py on a free port of 127.0.0.1, ready when uvicorn says so."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, str(SERVERS / "http_notes.py"), str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:
            if "Uvicorn running on" in line:
                break
        else:
            raise AssertionError(f"the HTTP MCP server did not start (exit {proc.wait()})")
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_streamable_http_server(model, ws, http_server):
    write_mcp_json(ws, {"notes": {"type": "http", "url": http_server,
                                  "headers": {"X-Client": "llmunix-${NO_SUCH_VAR:-test}"}}})
    write_spec(ws.user_agents_dir, "shouter.md", agent_text("shouter", tools="mcp__notes"))
    model.enqueue(mcp_call(model, "mcp__notes__shout", {"text": "hello"}, "call_shout"), "HELLO")
    result = model.run(ws, "shout hello", "--agent", "shouter")
    assert result.returncode == 0, result.stderr
    model.assert_script_used()
    shout = step(only_trace(ws), "call_shout")
    # (the CLI passes the tool's structured result on as JSON: {"result": "HELLO"})
    assert shout.fields["decision"] == "allowed" and "HELLO" in shout.blocks["result"]
    assert "HELLO" in model.fed_back("call_shout").text


def test_a_server_that_dies_mid_run_is_named_with_its_stderr_and_the_run_goes_on(
        openai_server, tmp_path):
    model = Model("openai", openai_server, tmp_path)
    ws = new_workspace(tmp_path / "ws")
    write_mcp_json(ws, {"crashy": CRASHY})
    write_spec(ws.user_agents_dir, "risky.md", agent_text("risky", tools="Write, mcp__crashy"))
    model.enqueue(
        mcp_call(model, "mcp__crashy__ping", {}, "call_ping"),
        mcp_call(model, "mcp__crashy__explode", {"reason": "out of cheese"}, "call_explode"),
        mcp_call(model, "mcp__crashy__ping", {}, "call_again"),
        model.call("Write", {"file_path": "done.txt", "content": "still here"}, id="call_write"),
        "done",
    )
    result = model.run(ws, "ping, then explode", "--agent", "risky")
    assert result.returncode == 0, result.stderr
    model.assert_script_used()
    trace = only_trace(ws)
    assert step(trace, "call_ping").blocks["result"].strip() == "pong"
    died = model.fed_back("call_explode")
    assert died.is_error
    assert "MCP server 'crashy' stopped during the run" in died.text
    assert "stderr: crashy: fatal error: out of cheese" in died.text
    assert "MCP server 'crashy' stopped" in model.fed_back("call_again").text
    assert (ws.project("default").workspace_dir / "done.txt").read_text() == "still here"


def test_stdio_servers_run_in_the_sandbox_without_secrets(openai_server, tmp_path):
    require("bubblewrap", shutil.which("bwrap") is not None, "apt-get install bubblewrap")
    model = Model("openai", openai_server, tmp_path)
    ws = new_workspace(tmp_path / "ws")
    write_mcp_json(ws, {"crashy": CRASHY})
    write_spec(ws.user_agents_dir, "probe.md", agent_text("probe", tools="mcp__crashy"))
    model.enqueue(mcp_call(model, "mcp__crashy__getenv", {"name": "OPENAI_API_KEY"}, "c_key"),
                  mcp_call(model, "mcp__crashy__getenv", {"name": "HOME"}, "c_home"), "done")
    result = model.run(ws, "look around", "--agent", "probe")  # OPENAI_API_KEY is set for it
    assert result.returncode == 0, result.stderr
    assert model.fed_back("c_key").text == "(unset)"
    assert model.fed_back("c_home").text == "/tmp/home"  # the sandbox's own home


def test_a_server_that_fails_to_start(model, ws):
    write_mcp_json(ws, {"crashy": {**CRASHY, "args": [*CRASHY["args"], "--fail-at-start"]}})
    write_spec(ws.user_agents_dir, "risky.md", agent_text("risky", tools="Write, mcp__crashy"))
    model.enqueue(model.call("Write", {"file_path": "done.txt", "content": "x"}, id="c1"), "ok")
    result = model.run(ws, "work without the server", "--agent", "risky")
    assert result.returncode == 0, result.stderr
    model.assert_script_used()
    assert (ws.project("default").workspace_dir / "done.txt").exists()
    texts = " ".join(s.blocks.get("text", "") for s in only_trace(ws).steps
                     if s.kind == "assistant")
    assert "[llmunix] MCP server 'crashy' failed to start" in texts
    if model.runtime == "openai":
        assert "stderr: crashy: cannot open its database (/nonexistent/db)" in texts


def test_a_required_server_that_fails_to_start_stops_the_run(model, ws):
    write_mcp_json(ws, {"crashy": {**CRASHY, "args": [*CRASHY["args"], "--fail-at-start"],
                                   "required": True}})
    write_spec(ws.user_agents_dir, "risky.md", agent_text("risky", tools="Write, mcp__crashy"))
    result = model.run(ws, "needs the server", "--agent", "risky")
    assert result.returncode == 1
    assert "MCP server 'crashy' failed to start" in result.stderr
    assert "Traceback" not in result.stderr
    # No model turn is spent on llmunix's loop; the CLI may have sent its first request while
    # its report of the servers was on the way, but the run ends there.
    assert len(model.requests()) <= (1 if model.runtime == "claude" else 0)


def test_mcp_list_shows_servers_status_and_tools(tmp_path):
    needs_time_server()
    ws = new_workspace(tmp_path / "ws")
    write_mcp_json(ws, {"time": TIME,
                        "crashy": {**CRASHY, "args": [*CRASHY["args"], "--fail-at-start"]}})
    result = run_cli("mcp", "list", cwd=ws.root)
    assert result.returncode == 1  # one server does not start
    out = result.stdout
    assert "time  stdio  ok  started in" in out
    assert "mcp__time__get_current_time  Get current time in a specific timezone" in out
    assert "crashy  stdio  failed" in out
    assert "stderr: crashy: cannot open its database" in out
    rows = {r["name"]: r for r in json.loads(run_cli("mcp", "list", "--json",
                                                     cwd=ws.root).stdout)}
    assert [t["name"] for t in rows["time"]["tools"]] == ["mcp__time__get_current_time",
                                                          "mcp__time__convert_time"]
    assert rows["time"]["source"] == ".mcp.json" and rows["crashy"]["status"] == "failed"


def test_bad_mcp_configuration_is_reported_at_boot(tmp_path):
    ws = new_workspace(tmp_path / "ws")
    (ws.root / ".mcp.json").write_text('{"mcpServers": {\n  "time": {"type": "stdio"}\n}}\n')
    write_spec(ws.user_agents_dir, "triage.md",
               agent_text("triage", tools="Read, mcp__github__list_issues"))
    result = run_cli("boot", cwd=ws.root)
    assert result.returncode == 1
    assert ".mcp.json:2" in result.stdout + result.stderr
    assert "MCP server 'time' needs a 'command'" in result.stdout + result.stderr
    report = json.loads(run_cli("boot", "--json", cwd=ws.root).stdout)
    warning = next(d for d in report["diagnostics"] if d["path"].endswith("triage.md"))
    assert "MCP server(s) no .mcp.json or mcpServers entry defines: github" in warning["message"]
