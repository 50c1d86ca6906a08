"""`llmunix run --output-format stream-json` read by a consumer written against Claude Code's
format: the Claude Agent SDK's own message parser, which turns each line of
`claude -p --output-format stream-json` into typed messages."""

from __future__ import annotations

import json

import pytest
from claude_agent_sdk import (
    AssistantMessage,
    ResultMessage,
    SystemMessage,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
)
from claude_agent_sdk._internal.message_parser import parse_message

from llmunix.errors import EXIT_NO_RUNTIME
from llmunix.trace.markdown import find_traces, read_trace
from tests.scripted.openai_server import reply, text, tool_call
from tests.support import agent_text, new_workspace, run_cli, write_spec

BOSS = "You are the boss. BOSS-MARKER."
WRITER = "You are the writer. WRITER-MARKER."
# The keys of Claude Code's own system/init line that a consumer reads (seen from the CLI).
INIT_KEYS = {"type", "subtype", "cwd", "session_id", "tools", "mcp_servers", "model",
             "permissionMode", "slash_commands", "apiKeySource", "output_style", "agents",
             "uuid"}


@pytest.fixture()
def ws(tmp_path):
    base = new_workspace(tmp_path / "ws")
    base.config_path.write_text('[memory]\ncommit = false\n', encoding="utf-8")
    project = base.ensure_project("default")
    write_spec(project.agents_dir, "boss.md", agent_text("boss", tools="Agent, Read, Write",
                                                        body=BOSS))
    write_spec(project.agents_dir, "writer.md", agent_text("writer", tools="Write",
                                                          body=WRITER))
    (project.workspace_dir / "notes.md").write_text("notes\n", encoding="utf-8")
    return base


def lines_of(stdout: str) -> list[dict]:
    out = [json.loads(line) for line in stdout.splitlines()]
    assert out, "no output"
    return out


def stream(ws, server, *args: str, goal: str = "write out.md"):
    return run_cli("run", goal, "--runtime", "openai", "--base-url", server.url,
                   "--agent", "boss", "--model", "tiny-model", "--output-format", "stream-json",
                   *args, cwd=ws.root)


def script_delegation(server) -> None:
    server.enqueue(
        reply(text("Reading first."), tool_call("Read", {"file_path": "notes.md"}),
              usage={"prompt_tokens": 100, "completion_tokens": 10}),
        reply(tool_call("Write", {"file_path": "/etc/outside", "content": "x"}),
              usage={"prompt_tokens": 110, "completion_tokens": 11}),
        reply(tool_call("Agent", {"subagent_type": "writer", "prompt": "write out.md"}),
              usage={"prompt_tokens": 120, "completion_tokens": 12}),
        reply(text("All done."), usage={"prompt_tokens": 130, "completion_tokens": 13}),
    )
    server.enqueue(reply(tool_call("Write", {"file_path": "out.md", "content": "# Out\n"}),
                         usage={"prompt_tokens": 50, "completion_tokens": 5}),
                   when="WRITER-MARKER")
    server.enqueue(reply(text("written"), usage={"prompt_tokens": 60, "completion_tokens": 6}),
                   when="WRITER-MARKER")


def test_a_claude_code_consumer_reads_the_whole_run(ws, openai_server):
    script_delegation(openai_server)
    result = stream(ws, openai_server)
    assert result.returncode == 0, result.stderr
    raw = lines_of(result.stdout)
    (trace_path,) = find_traces(ws.project("default").short_term_dir)
    trace = read_trace(trace_path)
    for line in raw:  # every line: the session, its own id, its time
        assert line["session_id"] == trace.trace_id
        assert line["uuid"] and line["timestamp"].endswith("Z") and "T" in line["timestamp"]
    init = raw[0]
    assert set(init) >= INIT_KEYS and (init["type"], init["subtype"]) == ("system", "init")
    assert init["cwd"] == str(ws.project("default").workspace_dir)
    assert init["model"] == "tiny-model" and {"Agent", "Read", "Write"} <= set(init["tools"])
    assert init["agents"] and "writer" in init["agents"]

    parsed = [parse_message(line) for line in raw]
    messages = [m for m in parsed if m is not None]  # llmunix's own types are skipped
    skipped = {line["type"] for line, m in zip(raw, parsed, strict=True) if m is None}
    assert skipped == {"llmunix_mode", "llmunix_policy", "llmunix_subagent_start",
                       "llmunix_subagent_end", "llmunix_context_window", "llmunix_kernel_state"}
    assert isinstance(messages[0], SystemMessage) and messages[0].subtype == "init"
    assert isinstance(messages[-1], ResultMessage) and raw[-1]["type"] == "result"

    uses = {b.id: (b.name, b.input, m.parent_tool_use_id) for m in messages
            if isinstance(m, AssistantMessage) for b in m.content if isinstance(b, ToolUseBlock)}
    results = {b.tool_use_id: (b.content, b.is_error, m.parent_tool_use_id) for m in messages
               if isinstance(m, UserMessage) for b in m.content
               if isinstance(b, ToolResultBlock)}
    assert set(uses) == set(results)  # every call has its result
    names = [name for name, _, _ in uses.values()]
    assert names == ["Read", "Write", "Agent", "Write"]
    [agent_call] = [i for i, (name, _, _) in uses.items() if name == "Agent"]
    [(sub_write, _)] = [(i, u) for i, u in uses.items() if u[0] == "Write" and u[2]]
    assert uses[sub_write][2] == agent_call  # the sub-agent's call is nested under Agent
    assert results[agent_call][0] == "written" and results[agent_call][2] is None
    denied = [i for i, (_, is_error, _) in results.items() if is_error]
    assert len(denied) == 1 and uses[denied[0]][1]["file_path"] == "/etc/outside"
    texts = [b.text for m in messages if isinstance(m, AssistantMessage) for b in m.content
             if isinstance(b, TextBlock)]
    assert texts == ["Reading first.", "written", "All done."]

    final: ResultMessage = messages[-1]
    assert final.subtype == "success" and not final.is_error and final.result == "All done."
    assert final.num_turns == 6 and final.session_id == trace.trace_id
    assert final.usage["input_tokens"] == 570 and final.usage["output_tokens"] == 57
    assert final.duration_ms >= 0 and final.total_cost_usd == 0
    assert [d["tool_use_id"] for d in final.permission_denials] == denied
    assert raw[-1]["llmunix"]["status"] == "success"
    assert raw[-1]["llmunix"]["trace_path"] == str(trace_path)


def test_json_prints_only_the_result(ws, openai_server):
    openai_server.enqueue("hello there")
    result = run_cli("run", "greet", "--runtime", "openai", "--base-url", openai_server.url,
                     "--agent", "boss", "--output-format", "json", cwd=ws.root)
    assert result.returncode == 0, result.stderr
    [line] = lines_of(result.stdout)
    message = parse_message(line)
    assert isinstance(message, ResultMessage) and message.result == "hello there"


def test_a_run_that_cannot_start_still_ends_with_a_result(ws, tmp_path):
    env = {"HOME": str(tmp_path), "ANTHROPIC_API_KEY": "", "ANTHROPIC_BASE_URL": "",
           "ANTHROPIC_AUTH_TOKEN": "", "CLAUDE_CODE_OAUTH_TOKEN": ""}
    result = run_cli("run", "anything", "--runtime", "claude", "--output-format", "stream-json",
                     cwd=ws.root, env=env)
    assert result.returncode == EXIT_NO_RUNTIME
    [line] = lines_of(result.stdout)
    message = parse_message(line)
    assert isinstance(message, ResultMessage) and message.is_error
    assert message.subtype == "error_during_execution"
    assert "no Claude credentials found" in message.result
    assert any("no Claude credentials found" in e for e in message.errors)
    assert line["timestamp"] and "no Claude credentials found" in result.stderr


def test_a_run_stopped_by_max_turns_has_claude_codes_subtype(ws, openai_server):
    openai_server.enqueue(tool_call("Read", {"file_path": "notes.md"}),
                          tool_call("Read", {"file_path": "notes.md", "limit": 1}))
    result = stream(ws, openai_server, "--max-turns", "1")
    assert result.returncode == 3, result.stderr
    final = parse_message(lines_of(result.stdout)[-1])
    assert isinstance(final, ResultMessage) and final.is_error
    assert final.subtype == "error_max_turns" and final.num_turns == 1  # --max-turns N: N requests
