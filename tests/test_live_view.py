"""What a run shows while it goes: model text streams as it arrives on both runtimes (seen in
Claude Code's `stream_event` lines), a pipe gets one plain line per event, and a terminal with
NO_COLOR gets no colours."""

from __future__ import annotations

import json
import os
import re

import pytest
from claude_agent_sdk import AssistantMessage, StreamEvent, TextBlock
from claude_agent_sdk._internal.message_parser import parse_message

from tests.support import LLMUNIX, NO_USER_CONFIG, agent_text, new_workspace, run_cli, write_spec
from tests.test_interrupt import WAIT, Terminal

TEXT = "The notes say three things: ship Friday, test Thursday, and write the changelog today."
COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-9]|9[0-7]|38|4[0-9])(?:;[0-9;]*)?m")


@pytest.fixture()
def ws(tmp_path):
    base = new_workspace(tmp_path / "ws")
    base.config_path.write_text('[memory]\ncommit = false\n', encoding="utf-8")
    write_spec(base.user_agents_dir, "solo.md", agent_text("solo", tools="Read, Bash"))
    return base


@pytest.fixture(params=["claude", "openai"])
def model(request, tmp_path):
    if request.param == "claude":
        from tests.scripted.anthropic_server import AnthropicServer, reply, text

        with AnthropicServer() as server:
            env = {"ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_API_KEY": "test",
                   "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                   "CLAUDE_CODE_MAX_RETRIES": "0", "HOME": str(tmp_path)}
            yield server, reply, text, ["--runtime", "claude"], env
    else:
        from tests.scripted.openai_server import OpenAIServer, reply, text

        with OpenAIServer() as server:
            yield server, reply, text, ["--runtime", "openai", "--base-url", server.url], {}


def test_model_text_streams_before_the_message_is_whole(ws, model):
    server, reply, text, args, env = model
    server.enqueue(reply(text(TEXT)))
    result = run_cli("run", "summarize", *args, "--agent", "solo", "--output-format",
                     "stream-json", "--include-partial-messages", cwd=ws.root, env=env)
    assert result.returncode == 0, result.stderr
    messages = [parse_message(json.loads(line)) for line in result.stdout.splitlines()]
    deltas, whole_at = [], None
    for i, m in enumerate(messages):
        if isinstance(m, StreamEvent) and m.event["type"] == "content_block_delta":
            deltas.append((i, m.event["delta"]["text"]))
        if isinstance(m, AssistantMessage) and any(isinstance(b, TextBlock) and b.text == TEXT
                                                   for b in m.content):
            whole_at = i
    assert whole_at is not None
    pieces = [piece for i, piece in deltas if i < whole_at]
    assert len(pieces) >= 2, "the text came in one piece, not as it streamed"
    assert "".join(pieces) == TEXT


@pytest.mark.usefixtures("bubblewrap")  # it starts processes
def test_a_pipe_gets_one_plain_line_per_event(ws, openai_server):
    from tests.scripted.openai_server import reply, text, tool_call

    long_goal = "read the notes and " + "then think about them carefully " * 6
    openai_server.enqueue(reply(text("Looking."), tool_call("Bash", {"command": "echo hi"})),
                          "All done.")
    result = run_cli("run", long_goal, "--runtime", "openai", "--base-url", openai_server.url,
                     "--agent", "solo", cwd=ws.root, env={"COLUMNS": "40", "TERM": "xterm"})
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stderr and "\r" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == "mode learner (no learned trace for this project)"
    assert lines[1] == "▶ " + " ".join(long_goal.split())  # whole, though longer than 40
    assert "solo: Looking." in lines
    start = lines.index("solo Bash echo hi …")
    assert re.fullmatch(r"solo Bash echo hi \d+\.\d\ds ok", lines[start + 1])
    assert lines[-3] == "■ success" and lines[-1].startswith("  trace ")
    assert result.stdout == "All done.\n"


def test_no_color_in_a_terminal(ws, openai_server):
    openai_server.enqueue("plain answer")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMUNIX_")}
    env.update({"TERM": "xterm-256color", "XDG_CONFIG_HOME": NO_USER_CONFIG,
                "COLUMNS": "100"})
    runs = {}
    for name, extra in (("colour", {"NO_COLOR": ""}), ("no colour", {"NO_COLOR": "1"})):
        term = Terminal([LLMUNIX, "run", "answer plainly", "--runtime", "openai", "--base-url",
                         openai_server.url, "--agent", "solo"], ws.root, {**env, **extra})
        try:
            assert term.proc.wait(timeout=WAIT) == 0
        finally:
            term.close()
        runs[name] = term.output()
        openai_server.enqueue("plain answer")
    assert COLOUR.search(runs["colour"]), "a terminal gets colours by default"
    assert not COLOUR.search(runs["no colour"]) and "■ success" in runs["no colour"]


def test_a_tool_is_shown_when_it_starts_on_both_runtimes(ws, model):
    server, reply, text, args, env = model
    (ws.project("default").workspace_dir / "notes.md").write_text("hello\n", encoding="utf-8")
    if "claude" in args:
        from tests.scripted.anthropic_server import tool_use as call
    else:
        from tests.scripted.openai_server import tool_call as call
    server.enqueue(reply(call("Read", {"file_path": "notes.md"})), "read it")
    result = run_cli("run", "read the notes", *args, "--agent", "solo", "--json", cwd=ws.root,
                     env=env)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [(e["event"], e.get("tool")) for e in events if e["event"].startswith("tool_")]
    assert kinds == [("tool_started", "Read"), ("tool_called", "Read")]
    started, called = (e for e in events if e["event"].startswith("tool_"))
    assert started["call_id"] == called["call_id"] and started["agent"] == "solo"
    assert started["input"]["file_path"].endswith("notes.md") and started["timestamp"]
