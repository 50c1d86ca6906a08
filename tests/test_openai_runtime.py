"""What only the OpenAI-compatible runtime does, against the scripted server: several calls in
one reply, its own delegation rules, the text tool protocol, every way a weak model or a server
can misbehave, and its settings. The scenarios every runtime shares (file writes, delegation,
refusals, tool specs, limits, a killed run) are in tests/test_scenarios.py."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from llmunix.errors import EXIT_NO_RUNTIME, RuntimeUnavailable
from llmunix.run import runner
from llmunix.runtimes import openai as openai_rt
from llmunix.runtimes import text_protocol
from llmunix.trace.events import ToolCalled
from llmunix.trace.markdown import find_traces, read_trace
from llmunix.workspace.config import OpenAIConfig
from llmunix.workspace.layout import Workspace
from tests.scripted.openai_server import OpenAIServer, error, raw, reply, text, tool_call
from tests.support import agent_text, new_workspace, run_cli, write_spec

WRITER_BODY = "You are the writer. WRITER-MARKER."
SCRIBE_BODY = "You are the scribe. SCRIBE-MARKER."
BOSS_BODY = "You are the boss. BOSS-MARKER."


@pytest.fixture(autouse=True)
def _no_openai_env(monkeypatch):
    """The runs take their server, model and key from the test alone (subprocesses too)."""
    for name in ("OPENAI_BASE_URL", "OPENAI_MODEL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    # The scripted server's model, named: with none configured llmunix would ask the server
    # which it serves and say so in the trace (tests/test_local_models.py covers that).
    monkeypatch.setenv("OPENAI_MODEL", "scripted-model")


def _config(extra: str = "") -> str:
    return f'[run]\nruntime = "openai"\n\n[memory]\ncommit = false\n{extra}'


@pytest.fixture()
def ws(tmp_path):
    base = new_workspace(tmp_path / "ws")
    base.config_path.write_text(_config(), encoding="utf-8")
    project = base.ensure_project("default")
    write_spec(project.agents_dir, "writer.md", agent_text("writer", body=WRITER_BODY))
    write_spec(project.agents_dir, "scribe.md", agent_text("scribe", tools="Write",
                                                          body=SCRIBE_BODY))
    write_spec(project.agents_dir, "boss.md", agent_text("boss", tools="Agent, Read",
                                                        body=BOSS_BODY))
    return Workspace(base.root)


def configure(ws: Workspace, extra: str) -> Workspace:
    ws.config_path.write_text(_config(extra), encoding="utf-8")
    return Workspace(ws.root)


def files(ws: Workspace) -> Path:
    return ws.project("default").workspace_dir


def run(ws: Workspace, server, goal: str = "do the work", agent: str = "writer", **kw):
    """One in-process run; returns the outcome, the events and the trace read back."""
    events: list = []
    request = runner.RunRequest(goal=goal, agent=agent, runtime="openai",
                                runtime_options={"base_url": server.url}, **kw)
    outcome = runner.run_goal(ws, request, events.append)
    return outcome, events, read_trace(Path(outcome.trace_path))


def cli(ws: Workspace, server, *args: str, agent: str = "writer", goal: str = "do the work"):
    return run_cli("run", goal, "--runtime", "openai", "--base-url", server.url,
                   "--agent", agent, *args, cwd=ws.root)


def only_trace(ws: Workspace):
    (path,) = find_traces(ws.project("default").short_term_dir)
    return read_trace(path)


def notes(trace) -> list[str]:
    return [s.blocks["text"] for s in trace.steps
            if s.kind == "assistant" and s.blocks["text"].startswith("[llmunix]")]


def last_user(server, req) -> str:
    return server.messages(req)[-1]["content"]


# ---------------------------------------------------------------- the loop


def test_several_calls_in_one_reply_run_in_order(ws, openai_server):
    openai_server.enqueue(
        reply(tool_call("Write", {"file_path": "a.txt", "content": "first"}),
              tool_call("Read", {"file_path": "a.txt"}),
              tool_call("Write", {"file_path": "a.txt", "content": "second"})),
        "done",
    )
    outcome, _, trace = run(ws, openai_server)
    assert outcome.status == "success"
    assert [s.tool for s in trace.tool_steps()] == ["Write", "Read", "Write"]
    results = openai_server.tool_results(openai_server.model_requests()[1])
    assert "first" in results[1]["content"]
    assert (files(ws) / "a.txt").read_text() == "second"


def test_unknown_subagent_is_a_tool_error(ws, openai_server):
    openai_server.enqueue(tool_call("Agent", {"subagent_type": "ghost", "prompt": "boo"}),
                          "no ghost then")
    outcome, _, trace = run(ws, openai_server, agent="boss")
    assert outcome.status == "success"
    (step,) = trace.tool_steps()
    assert step.tool == "Agent" and step.fields["decision"] == "denied"
    fed_back = openai_server.tool_results(openai_server.model_requests()[1])[0]["content"]
    assert "unknown sub-agent 'ghost'" in fed_back and "scribe" in fed_back


def test_subagent_own_max_turns_end_it_not_the_run(ws, openai_server):
    project = ws.project("default")
    write_spec(project.agents_dir, "scribe.md", agent_text(
        "scribe", tools="Write", body=SCRIBE_BODY, extra="llmunix:\n  max_turns: 1\n"))
    openai_server.enqueue(tool_call("Write", {"file_path": "x.txt", "content": "x"}),
                          when="SCRIBE-MARKER")
    openai_server.enqueue(tool_call("Agent", {"subagent_type": "scribe", "prompt": "go"}),
                          "the scribe gave up")
    outcome, _, trace = run(ws, openai_server, agent="boss")
    openai_server.assert_script_used()
    assert outcome.status == "success"
    end = next(s for s in trace.steps if s.kind == "subagent end")
    assert "max turns (1)" in end.blocks["result"]
    fed_back = openai_server.tool_results(openai_server.model_requests()[-1])[0]["content"]
    assert fed_back.startswith("Error: sub-agent scribe stopped")


# ---------------------------------------------------------------- weak models


def test_arguments_that_are_not_json_are_fed_back(ws, openai_server):
    openai_server.enqueue(
        reply(tool_call("Write", '{"file_path": "a.txt", "content": ', id="call_bad")),
        tool_call("Write", {"file_path": "a.txt", "content": "fixed"}),
        "done",
    )
    outcome, _, trace = run(ws, openai_server)
    openai_server.assert_script_used()
    assert outcome.status == "success"
    assert (files(ws) / "a.txt").read_text() == "fixed"
    bad = trace.tool_steps()[0]
    assert bad.fields["is_error"] is True and bad.fields["decision"] == "denied"
    assert bad.input == {"_raw": '{"file_path": "a.txt", "content": '}
    second = openai_server.model_requests()[1]
    sent_back = openai_server.messages(second)[-2]["tool_calls"][0]["function"]["arguments"]
    assert sent_back == "{}"  # never send a server broken JSON back
    fed_back = openai_server.tool_results(second)[0]
    assert fed_back["tool_call_id"] == "call_bad" and "not valid JSON" in fed_back["content"]
    assert notes(trace) == ["[llmunix] 1 of the reply's calls could not be run; "
                            "told the model (1/3)"]


def test_unknown_tool_name_is_fed_back(ws, openai_server):
    openai_server.enqueue(tool_call("write_file", {"path": "a.txt"}), "sorry")
    outcome, _, trace = run(ws, openai_server)
    assert outcome.status == "success"
    (step,) = trace.tool_steps()
    assert step.tool == "write_file" and step.fields["decision"] == "denied"
    fed_back = openai_server.tool_results(openai_server.model_requests()[1])[0]["content"]
    assert "unknown tool 'write_file'" in fed_back and "Read, Write" in fed_back


def test_empty_reply_is_nudged(ws, openai_server):
    openai_server.enqueue(reply(), reply(""), "here is the answer")
    outcome, _, trace = run(ws, openai_server)
    openai_server.assert_script_used()
    assert outcome.status == "success" and outcome.result == "here is the answer"
    assert len(notes(trace)) == 2
    nudged = last_user(openai_server, openai_server.model_requests()[2])
    assert nudged.startswith("do the work") and "Your last reply was empty" in nudged


def test_empty_replies_end_the_run_after_the_retries(ws, openai_server):
    ws = configure(ws, "\n[openai]\nmax_retries = 2\n")
    openai_server.enqueue(reply(), reply(), reply(), "never reached")
    outcome, _, trace = run(ws, openai_server)
    assert outcome.status == "error" and outcome.exit_code == 1
    assert "3 unusable replies in a row" in outcome.reason and "empty reply" in outcome.reason
    assert openai_server.pending() == 1
    assert notes(trace)[-1].endswith("giving up")


@pytest.mark.parametrize("written", [
    '<tool_call>\n{"name": "Write", "arguments": {"file_path": "a.txt", "content": "t"}}\n'
    "</tool_call>",
    '```json\n{"name": "Write", "arguments": "{\\"file_path\\": \\"a.txt\\", '
    '\\"content\\": \\"t\\"}"}\n```',
])
def test_a_clean_call_written_as_text_is_run(ws, openai_server, written):
    openai_server.enqueue(written, "done")
    outcome, _, trace = run(ws, openai_server)
    assert outcome.status == "success" and outcome.result == "done"
    assert (files(ws) / "a.txt").read_text() == "t"
    (step,) = trace.tool_steps()
    assert step.tool == "Write" and step.fields["decision"] == "allowed"
    history = openai_server.messages(openai_server.model_requests()[1])
    assert history[-2]["tool_calls"][0]["function"]["name"] == "Write"
    assert history[-1]["role"] == "tool"


def test_a_broken_call_written_as_text_is_corrected(ws, openai_server):
    openai_server.enqueue('<tool_call>{"name": "Write", "arguments": {"file_path": </tool_call>',
                          '<tool_call>{"name": "Scribble", "arguments": {}}</tool_call>',
                          "plain answer")
    outcome, _, trace = run(ws, openai_server)
    assert outcome.status == "success" and outcome.result == "plain answer"
    assert not trace.tool_steps()
    assert len(notes(trace)) == 2
    second, third = openai_server.model_requests()[1:]
    assert "tool-calling (function calling) interface" in last_user(openai_server, second)
    assert "not valid JSON" in last_user(openai_server, second)
    assert "unknown tool 'Scribble'" in last_user(openai_server, third)


def test_plain_json_answer_is_not_taken_for_a_call(ws, openai_server):
    answer = '{"name": "Alice", "arguments": ["a", "b"]}'
    openai_server.enqueue(answer)
    outcome, _, _ = run(ws, openai_server)
    assert outcome.status == "success" and outcome.result == answer


def test_cut_off_replies_are_discarded_then_bounded(ws, openai_server):
    ws = configure(ws, "\n[openai]\nmax_retries = 1\n")
    openai_server.enqueue(
        reply(text("blah " * 50), tool_call("Write", '{"file_path": "a.txt", "cont'),
              finish_reason="length"),
        reply(text("blah " * 50), finish_reason="length"),
    )
    outcome, _, trace = run(ws, openai_server)
    assert outcome.status == "error" and "cut off" in outcome.reason
    assert not trace.tool_steps() and not (files(ws) / "a.txt").exists()
    second = openai_server.model_requests()[1]
    assert all(m["role"] != "assistant" for m in openai_server.messages(second))
    assert "cut off" in last_user(openai_server, second)


def test_runaway_reply_is_not_read_to_the_end(ws, openai_server, monkeypatch):
    monkeypatch.setattr(openai_rt, "MAX_REPLY_CHARS", 1000)
    openai_server.enqueue(reply("la" * 5000, finish_reason="stop"), "short answer")
    outcome, _, trace = run(ws, openai_server)
    assert outcome.status == "success" and outcome.result == "short answer"
    assert "longer than 1,000 characters" in notes(trace)[0]


def test_loop_guard_stops_identical_calls(ws, openai_server):
    same = tool_call("Read", {"file_path": "same.txt"})
    openai_server.enqueue(same, same, same, same, "never reached")
    outcome, _, trace = run(ws, openai_server)
    assert outcome.status == "stopped" and outcome.exit_code == 3
    assert outcome.reason.startswith("loop guard: Read called 4 times in a row")
    steps = trace.tool_steps()
    assert [s.fields["decision"] for s in steps] == ["allowed"] * 3 + ["denied"]
    assert openai_server.pending() == 1


def test_loop_guard_as_a_real_subprocess(ws, openai_server):
    ws = configure(ws, "\n[openai]\nloop_guard = 2\n")
    openai_server.enqueue(tool_call("Read", {"file_path": "x"}),
                          tool_call("Read", {"file_path": "y"}),
                          tool_call("Read", {"file_path": "y"}))
    result = cli(ws, openai_server)
    assert result.returncode == 3, result.stderr
    trace = only_trace(ws)
    assert trace.status == "stopped" and "loop guard" in trace.meta["reason"]
    assert len(trace.tool_steps()) == 3


# ---------------------------------------------------------------- server failures


def test_server_errors_after_the_retries(ws, openai_server):
    openai_server.enqueue(*[error(503, "overloaded", retry_after="0")] * 3,
                          error(503, "still overloaded", retry_after="0"))
    result = cli(ws, openai_server)
    assert result.returncode == 1
    assert "HTTP 503: still overloaded" in result.stderr
    trace = only_trace(ws)
    assert trace.status == "error" and "HTTP 503: still overloaded" in trace.meta["reason"]
    assert len(openai_server.model_requests()) == 4  # a request and three retries
    assert notes(trace) == [f"[llmunix] the server answered HTTP 503; retry {n} of 3 in 0 s"
                            for n in (1, 2, 3)]


def test_client_error_is_one_line_with_a_hint(ws, openai_server):
    openai_server.enqueue(error(400, "model does not support tools", type="invalid_request"))
    outcome, _, trace = run(ws, openai_server)
    assert outcome.status == "error"
    assert "HTTP 400: model does not support tools" in outcome.reason
    assert "text_tools" in outcome.reason and "\n" not in outcome.reason
    assert len(openai_server.model_requests()) == 1


@pytest.mark.parametrize(("body", "says"), [
    ('data: {"choices": [{"index": 0, "delta": {"content": "Hi"}}]}\n\n', "before finishing it"),
    ('data: {"error": {"message": "out of memory"}}\n\n', "reported an error: out of memory"),
    ("data: {not json\n\n", "unreadable reply"),
])
def test_broken_stream_is_an_error(ws, openai_server, body, says):
    openai_server.enqueue(raw(body, content_type="text/event-stream"))
    outcome, _, _ = run(ws, openai_server)
    assert outcome.status == "error" and says in outcome.reason


def test_server_gone_mid_run(ws, openai_server):
    openai_server.enqueue(tool_call("Write", {"file_path": "a.txt", "content": "x"}))
    request = runner.RunRequest(goal="go", agent="writer", runtime="openai",
                                runtime_options={"base_url": openai_server.url})

    def emit(event):
        if isinstance(event, ToolCalled):
            openai_server.stop()

    outcome = runner.run_goal(ws, request, emit)
    assert outcome.status == "error" and outcome.exit_code == 1
    assert "lost the connection" in outcome.reason
    assert read_trace(Path(outcome.trace_path)).tool_steps()[0].tool == "Write"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_no_server_exits_no_runtime_with_how_to_start_one(ws):
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    result = run_cli("run", "hello", "--runtime", "openai", "--base-url", url, cwd=ws.root)
    assert result.returncode == EXIT_NO_RUNTIME
    assert url in result.stderr and "ollama serve" in result.stderr
    assert "llama-server" in result.stderr and "--base-url" in result.stderr
    assert not find_traces(ws.project("default").short_term_dir)


def test_preflight_names_the_default_address():
    rt = openai_rt.OpenAIRuntime()
    assert rt.base_url == "http://127.0.0.1:11434/v1"
    rt.base_url = f"http://127.0.0.1:{_closed_port()}/v1"
    with pytest.raises(RuntimeUnavailable) as info:
        rt.preflight()
    assert info.value.exit_code == EXIT_NO_RUNTIME and "connection refused" in info.value.message


# ---------------------------------------------------------------- the text protocol


def test_text_protocol_for_listed_models(ws, openai_server):
    ws = configure(ws, '\n[openai]\ntext_tools = ["tiny-*"]\n')
    openai_server.enqueue(
        'I will write it.\n<tool_call>\n{"name": "Write", "arguments": {"file_path": "t.txt", '
        '"content": "via text"}}\n</tool_call>\n<tool_call>{"name": "Read", "arguments": '
        '{"file_path": "t.txt"}}</tool_call>',
        "<tool_call>{not json}</tool_call>",
        "All done.",
    )
    outcome, _, trace = run(ws, openai_server, model="tiny-model")
    openai_server.assert_script_used()
    assert outcome.status == "success" and outcome.result == "All done."
    assert (files(ws) / "t.txt").read_text() == "via text"
    first, second, third = openai_server.model_requests()
    assert "tools" not in first.body
    system = openai_server.system_prompt(first)
    assert system.startswith(WRITER_BODY) and "<tool_call>" in system
    assert "## Write" in system and "## Read" in system and '"file_path"' in system
    results = last_user(openai_server, second)
    assert results.startswith('<tool_result name="Write">\nWrote 8 bytes')
    assert '<tool_result name="Read">' in results and "via text" in results
    assert "not valid JSON" in last_user(openai_server, third)
    assert [s.tool for s in trace.tool_steps()] == ["Write", "Read", "(none)"]
    assert trace.steps[0].blocks["text"] == "I will write it."


def test_other_models_keep_native_tools(ws, openai_server):
    ws = configure(ws, '\n[openai]\ntext_tools = ["tiny-*"]\n')
    openai_server.enqueue("hi")
    run(ws, openai_server, model="big-model")
    assert openai_server.tool_names(openai_server.model_requests()[0]) == ["Read", "Write"]


def test_text_protocol_parser():
    parsed = text_protocol.parse(
        "<think>hmm</think>Plan.\n<tool_call>```json\n{\"name\": \"Read\", \"parameters\": "
        "{\"file_path\": \"a\"}}\n```</tool_call>\n<tool_call>{\"type\": \"function\", "
        "\"function\": {\"name\": \"Glob\", \"arguments\": \"{\\\"pattern\\\": \\\"*\\\"}\"}}")
    assert parsed.tagged and parsed.text == "Plan."
    assert [(c.name, c.arguments, c.error) for c in parsed.calls] == [
        ("Read", {"file_path": "a"}, None), ("Glob", {"pattern": "*"}, None)]
    listed = text_protocol.parse('[{"name": "Read", "arguments": {}}, '
                                 '{"name": "Bash", "arguments": "[1]"}]')
    assert not listed.tagged and listed.calls[1].error == "the arguments must be a JSON object"
    assert text_protocol.parse("just words {not json}").calls == []
    assert text_protocol.matches("phi3:mini", ["phi3*"])
    assert not text_protocol.matches("llama3.2", ["phi3*"])


# ---------------------------------------------------------------- settings


def test_base_url_and_model_precedence(monkeypatch):
    env = {"OPENAI_BASE_URL": "http://env:1/v1", "OPENAI_MODEL": "env-model"}
    conf = OpenAIConfig(base_url="http://conf:2/v1", model="conf-model")
    assert openai_rt.resolve_base_url("http://flag:3/v1/", conf, env) == "http://flag:3/v1"
    assert openai_rt.resolve_base_url(None, conf, env) == "http://conf:2/v1"
    assert openai_rt.resolve_base_url(None, OpenAIConfig(), env) == "http://env:1/v1"
    assert openai_rt.resolve_base_url(None, OpenAIConfig(), {}) == openai_rt.DEFAULT_BASE_URL
    assert openai_rt.resolve_base_url("localhost:8080", conf, env) == "http://localhost:8080/v1"
    assert openai_rt.resolve_model("qwen2.5", conf, env) == "qwen2.5"
    assert openai_rt.resolve_model("sonnet", conf, env) == "conf-model"
    assert openai_rt.resolve_model("", OpenAIConfig(), env) == "env-model"
    assert openai_rt.resolve_model("haiku", OpenAIConfig(), {}) == "llama3.2"
    monkeypatch.setenv("MY_KEY", "secret-key-1")
    assert openai_rt.OpenAIRuntime(config=OpenAIConfig(api_key_env="MY_KEY")).api_key == \
        "secret-key-1"
    assert openai_rt.OpenAIRuntime().api_key == openai_rt.NO_KEY


def test_claude_alias_of_the_agent_falls_back_to_the_configured_model(ws, openai_server):
    project = ws.project("default")
    write_spec(project.agents_dir, "writer.md",
               agent_text("writer", body=WRITER_BODY, extra="model: sonnet\n"))
    ws = configure(ws, '\n[openai]\nmodel = "local-default"\n')
    openai_server.enqueue("hi")
    outcome, _, trace = run(ws, openai_server)
    assert trace.meta["model"] == "local-default"
    assert openai_server.model_requests()[0].body["model"] == "local-default"


def test_a_run_keeps_one_connection_to_a_keep_alive_server(ws):
    """Every turn of a run goes over the connection the first one opened (a server that keeps
    connections alive, as real ones do): no connect and no TLS set-up per turn."""
    with OpenAIServer() as server:
        server.keep_alive = True
        server.enqueue(tool_call("Write", {"file_path": "a.txt", "content": "a"}),
                       tool_call("Write", {"file_path": "b.txt", "content": "b"}), "done")
        outcome, _, _ = run(ws, server)
        peers = {r.peer for r in server.model_requests()}
    assert outcome.status == "success" and len(server.model_requests()) == 3
    assert len(peers) == 1, peers
