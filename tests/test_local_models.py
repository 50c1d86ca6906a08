"""Local model servers as they really behave, on the fast path: the scripted OpenAI server in its
"llama.cpp" mode (null content refused, no usage in streams, repeated tool-call deltas), request
shaping, token counts without usage, exact turn limits, server errors and retries, the model the
server serves, `llmunix models`. The same run against the real llama.cpp server is in
tests/test_llama_server.py."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from llmunix.context import tokens
from llmunix.errors import EXIT_NO_RUNTIME
from llmunix.run import runner
from llmunix.runtimes.openai_errors import detail_of, parse_retry_after
from llmunix.trace.markdown import find_traces, read_trace
from llmunix.workspace.layout import Workspace
from tests.scripted.openai_server import OpenAIServer, endless, error, raw, reply, tool_call
from tests.support import agent_text, new_workspace, run_cli, write_spec

GGUF = "/models/SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(autouse=True)
def _no_openai_env(monkeypatch):
    for name in ("OPENAI_BASE_URL", "OPENAI_MODEL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture()
def llama():
    """The scripted server with llama-cpp-python's quirks."""
    with OpenAIServer(quirks="llama.cpp") as server:
        yield server


def make_ws(tmp_path: Path, extra: str = "", agent_extra: str = "") -> Workspace:
    ws = new_workspace(tmp_path / "ws")
    ws.config_path.write_text(f'[run]\nruntime = "openai"\n\n[memory]\ncommit = false\n{extra}',
                              encoding="utf-8")
    project = ws.ensure_project("default")
    write_spec(project.agents_dir, "writer.md",
               agent_text("writer", tools="Read, Write", body="You write files.",
                          extra=agent_extra))
    return Workspace(ws.root)


def run(ws: Workspace, server, goal: str = "write hello.txt", **kw):
    request = runner.RunRequest(goal=goal, agent="writer", runtime="openai",
                                runtime_options={"base_url": server.url}, **kw)
    outcome = runner.run_goal(ws, request, lambda e: None)
    return outcome, read_trace(Path(outcome.trace_path))


def cli(ws: Workspace, server, *args: str, goal: str = "write hello.txt"):
    return run_cli("run", goal, "--runtime", "openai", "--base-url", server.url,
                   "--agent", "writer", *args, cwd=ws.root)


def only_trace(ws: Workspace):
    (path,) = find_traces(ws.project("default").short_term_dir)
    return read_trace(path)


MODEL_NOTE = "[llmunix] no model configured"


def notes(trace, *, model_note: bool = False) -> list[str]:
    """llmunix's notes in the trace (without the one naming the served model, unless asked)."""
    return [s.blocks["text"] for s in trace.steps
            if s.kind == "assistant" and s.blocks["text"].startswith("[llmunix]")
            and (model_note or not s.blocks["text"].startswith(MODEL_NOTE))]


def write_call(path: str = "hello.txt", content: str = "hello") -> dict:
    return tool_call("Write", {"file_path": path, "content": content},
                     id="call__0_Write_cmpl-1")


# ---------------------------------------------------------------- a llama.cpp server


def test_multi_turn_tool_run_against_llama_cpp_quirks(tmp_path, llama):
    ws = make_ws(tmp_path)
    llama.enqueue(write_call(), "Done: hello.txt holds hello.")
    outcome, trace = run(ws, llama)
    assert outcome.status == "success", outcome.reason
    assert (ws.project("default").workspace_dir / "hello.txt").read_text() == "hello"
    first, second = llama.model_requests()
    # the tool call's turn went back with "" content, which the server accepts (null: 500)
    assistant = llama.messages(second)[2]
    assert assistant["role"] == "assistant" and assistant["content"] == ""
    assert assistant["tool_calls"][0]["function"]["name"] == "Write"
    assert not llama.errors
    # no usage in the stream: the server's tokenizer counted, and the trace says so
    assert llama.tokenize_requests()
    assert trace.meta["tokens_estimated"] is True
    assert trace.meta["input_tokens"] > 0 and trace.meta["output_tokens"] > 0
    assert trace.meta["turns"] == 2
    for req in (first, second):
        assert req.body["max_tokens"] == 2048 and "temperature" not in req.body
    (step,) = trace.tool_steps()
    assert step.tool == "Write" and step.fields["decision"] == "allowed"


def test_repeated_id_and_name_deltas_make_one_call(tmp_path, llama):
    ws = make_ws(tmp_path)
    llama.enqueue(write_call(content="x" * 40), "ok")
    outcome, trace = run(ws, llama)
    assert outcome.status == "success"
    (step,) = trace.tool_steps()
    assert step.input == {"file_path": "hello.txt", "content": "x" * 40}


def test_tokens_counted_by_the_server_tokenizer_are_its_counts(tmp_path, llama):
    ws = make_ws(tmp_path)
    llama.enqueue("four words of answer")
    outcome, trace = run(ws, llama)
    # the scripted tokenizer counts words: the reply is 4, the prompt its words + overheads
    assert trace.meta["output_tokens"] == 4
    prompt_words = sum(len(tokens.message_text(m).split())
                       for m in llama.messages(llama.model_requests()[0]))
    tool_words = len(tokens.tools_text(llama.model_requests()[0].body["tools"]).split())
    assert trace.meta["input_tokens"] == (prompt_words + tool_words + tokens.REPLY_PRIMING
                                          + 2 * tokens.MESSAGE_OVERHEAD)


def test_without_a_tokenizer_tokens_are_estimated(tmp_path, openai_server):
    ws = make_ws(tmp_path)
    openai_server.enqueue(reply("an answer of some length", usage={"prompt_tokens": 0,
                                                                   "completion_tokens": 0}))
    outcome, trace = run(ws, openai_server, model="scripted-model")
    assert trace.meta["tokens_estimated"] is True
    assert trace.meta["output_tokens"] == tokens.estimate_text("an answer of some length")
    # one probe of each tokenize endpoint, then no more
    probes = [r.path for r in openai_server.other_requests() if "token" in r.path]
    assert probes == ["/extras/tokenize/count", "/tokenize"]


def test_reported_usage_is_not_estimated(tmp_path, openai_server):
    ws = make_ws(tmp_path)
    openai_server.enqueue(reply("hi", usage={"prompt_tokens": 11, "completion_tokens": 3}))
    outcome, trace = run(ws, openai_server, model="scripted-model")
    assert "tokens_estimated" not in trace.meta
    assert (trace.meta["input_tokens"], trace.meta["output_tokens"]) == (11, 3)
    assert openai_server.model_requests()[0].body["stream_options"] == {"include_usage": True}


def test_budget_is_enforced_on_counted_tokens(tmp_path, llama):
    ws = make_ws(tmp_path, f'\n[prices]\n"{GGUF}" = {{ input = 100000.0, output = 0.0 }}\n')
    llama.enqueue(write_call(), write_call("b.txt"), "never reached")
    result = cli(ws, llama, "--budget", "1")
    assert result.returncode == 3, result.stderr
    assert "budget reached" in result.stderr
    trace = only_trace(ws)
    assert trace.status == "stopped" and trace.meta["tokens_estimated"] is True
    assert len(llama.model_requests()) == 1


# ---------------------------------------------------------------- request shaping


def test_request_settings_agent_over_model_over_openai_section(tmp_path, llama):
    ws = make_ws(tmp_path,
                 '\n[openai]\nmax_tokens = 300\ntemperature = 0.7\nrequest_timeout_s = 90\n'
                 f'\n[openai.models."{GGUF}"]\nmax_tokens = 200\n',
                 agent_extra="llmunix:\n  temperature: 0.1\n")
    llama.enqueue("ok")
    run(ws, llama)
    body = llama.model_requests()[0].body
    assert body["max_tokens"] == 200 and body["temperature"] == 0.1


def test_a_glob_names_the_models_a_table_applies_to(tmp_path, llama):
    ws = make_ws(tmp_path, '\n[openai.models."*SmolLM2*"]\nmax_tokens = 64\n')
    llama.enqueue("ok")
    run(ws, llama)
    assert llama.model_requests()[0].body["max_tokens"] == 64


def test_a_reply_past_max_tokens_is_cut_there(tmp_path, llama):
    """llama-cpp-python ignores max_tokens when it picks text or tools itself: llmunix stops
    reading at max_tokens pieces and handles the reply as cut off."""
    ws = make_ws(tmp_path, '\n[openai]\nmax_tokens = 8\n')
    llama.enqueue(endless("word "), "short")
    outcome, trace = run(ws, llama)
    assert outcome.status == "success" and outcome.result == "short"
    assert "cut off (the server's length limit)" in notes(trace)[0]


def test_a_request_that_takes_too_long_is_a_server_error(tmp_path, llama):
    ws = make_ws(tmp_path, '\n[openai]\nrequest_timeout_s = 0.5\nmax_tokens = 100000\n')
    llama.enqueue(endless())
    result = cli(ws, llama)
    assert result.returncode == 1, result.stderr
    assert "did not finish a reply within 0.5 s" in result.stderr
    assert "request_timeout_s" in result.stderr
    assert only_trace(ws).status == "error"


def test_max_turns_one_is_one_request(tmp_path, llama):
    ws = make_ws(tmp_path)
    llama.enqueue(write_call(), "never sent")
    result = cli(ws, llama, "--max-turns", "1")
    assert result.returncode == 3 and "max turns reached (1)" in result.stderr
    assert len(llama.model_requests()) == 1
    assert (ws.project("default").workspace_dir / "hello.txt").read_text() == "hello"


def test_bad_request_settings_are_reported_with_file_and_line(tmp_path):
    ws = make_ws(tmp_path, "\n[openai]\nmax_tokens = 0\n")
    result = run_cli("run", "x", cwd=ws.root)
    assert result.returncode != 0
    assert "llmunix.toml:8" in result.stderr and "max_tokens" in result.stderr
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------- server errors


def test_null_content_refusal_is_summarized_in_one_line():
    dump = ("7 validation errors:\n  {'type': 'literal_error', 'loc': ('body', 'messages', 1, "
            "'ChatCompletionRequestSystemMessage', 'role'), 'msg': \"Input should be 'system'\", "
            "'input': 'assistant'}\n  {'type': 'string_type', 'loc': ('body', 'messages', 1, "
            "'ChatCompletionRequestAssistantMessage', 'content'), 'msg': 'Input should be a "
            "valid string', 'input': None}")
    assert detail_of({"error": {"message": dump}}) == \
        "messages[1].content: Input should be a valid string (got None)"
    fastapi = {"detail": [{"loc": ["body", "max_tokens"], "msg": "Input should be > 0",
                           "type": "greater_than", "input": 0}]}
    assert detail_of(fastapi) == "max_tokens: Input should be > 0 (got 0)"
    assert detail_of("x" * 500).endswith("…") and len(detail_of("x" * 500)) == 200


def test_retry_after_in_seconds_or_as_a_date():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_server_error_is_one_line_with_what_to_check(tmp_path, llama):
    ws = make_ws(tmp_path)
    llama.enqueue(error(500, "7 validation errors:\n  {'type': 'string_type', 'loc': ('body', "
                        "'messages', 1, 'ChatCompletionRequestAssistantMessage', 'content'), "
                        "'msg': 'Input should be a valid string', 'input': None}"))
    result = cli(ws, llama)
    assert result.returncode == 1
    line = [ln for ln in result.stderr.splitlines() if "HTTP 500" in ln]
    assert line == [line[0]] and "messages[1].content: Input should be a valid string" in line[0]
    assert "see the server's log" in line[0] and "stronger model" not in result.stderr
    assert len(llama.model_requests()) == 1  # a 500 is not retried
    assert only_trace(ws).status == "error"


def test_429_is_retried_after_retry_after_and_said_so(tmp_path, llama):
    ws = make_ws(tmp_path)
    llama.enqueue(error(429, "slow down", retry_after="0"), "fine now")
    result = cli(ws, llama)
    assert result.returncode == 0, result.stderr
    assert "HTTP 429; retry 1 of 3 in 0 s" in result.stdout + result.stderr
    trace = only_trace(ws)
    assert trace.status == "success" and trace.result.strip() == "fine now"
    assert notes(trace) == ["[llmunix] the server answered HTTP 429; retry 1 of 3 in 0 s"]


def test_a_long_retry_after_is_not_waited_for(tmp_path, llama):
    ws = make_ws(tmp_path)
    llama.enqueue(error(503, "maintenance", retry_after="3600"))
    outcome, _ = run(ws, llama)
    assert outcome.status == "error" and "HTTP 503: maintenance" in outcome.reason
    assert len(llama.model_requests()) == 1


def test_a_stream_cut_mid_reply_is_the_servers_failure(tmp_path, llama):
    ws = make_ws(tmp_path)
    llama.enqueue(reply("a reply that is cut", cut_after=5))
    result = cli(ws, llama)
    assert result.returncode == 1
    assert "broke off its reply after 6 chunks" in result.stderr
    assert "see the server's log" in result.stderr and "Traceback" not in result.stderr
    trace = only_trace(ws)
    assert trace.status == "error" and "broke off" in trace.meta["reason"]


def test_a_reply_that_never_ends_is_stopped_by_the_timeout(tmp_path, llama):
    ws = make_ws(tmp_path, '\n[openai]\nmax_tokens = 100000000\n')
    llama.enqueue(endless())
    result = cli(ws, llama, "--timeout", "1")
    assert result.returncode == 3, result.stderr
    assert "timeout reached (1 s)" in result.stderr
    trace = only_trace(ws)
    assert trace.status == "stopped" and trace.meta["reason"] == "timeout reached (1 s)"


def test_an_empty_stream_is_asked_again_without_streaming(tmp_path, llama):
    ws = make_ws(tmp_path)
    context = ("This model's maximum context length is 2048 tokens. However, you requested "
               "3015 tokens (3010 in the messages, 5 in the completion).")
    llama.enqueue(raw("", content_type="text/event-stream"),
                  error(400, context, type="invalid_request_error"))
    outcome, trace = run(ws, llama)
    assert outcome.status == "error"
    assert outcome.reason.startswith("the server sent an empty stream; asked again without "
                                     "streaming, it answered HTTP 400: This model's maximum")
    assert "context" in outcome.reason and "max_tokens" in outcome.reason
    second = llama.model_requests()[1].body
    assert "stream" not in second and "stream_options" not in second


def test_an_empty_stream_answered_without_streaming_goes_on(tmp_path, llama):
    ws = make_ws(tmp_path)
    llama.enqueue(raw("", content_type="text/event-stream"), reply(write_call()), "done")
    outcome, trace = run(ws, llama)
    assert outcome.status == "success", outcome.reason
    assert (ws.project("default").workspace_dir / "hello.txt").read_text() == "hello"


def test_a_server_that_refuses_stream_options_is_asked_without(tmp_path, openai_server):
    ws = make_ws(tmp_path)
    openai_server.enqueue(error(400, "Unrecognized request argument supplied: stream_options"),
                          "hello", "again")
    outcome, _ = run(ws, openai_server, model="scripted-model")
    assert outcome.status == "success" and outcome.result == "hello"
    first, second = openai_server.model_requests()
    assert "stream_options" in first.body and "stream_options" not in second.body


def test_server_down_is_no_runtime_and_no_trace(tmp_path):
    ws = make_ws(tmp_path)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run_cli("run", "x", "--runtime", "openai", "--base-url",
                     f"http://127.0.0.1:{port}/v1", cwd=ws.root)
    assert result.returncode == EXIT_NO_RUNTIME
    assert f"no OpenAI-compatible server answers at http://127.0.0.1:{port}/v1" in result.stderr
    assert not find_traces(ws.project("default").short_term_dir)


# ---------------------------------------------------------------- which model


def test_the_only_served_model_is_used_and_said_so(tmp_path, llama):
    ws = make_ws(tmp_path)
    llama.enqueue("hi")
    outcome, trace = run(ws, llama)
    assert trace.meta["model"] == GGUF
    assert llama.model_requests()[0].body["model"] == GGUF
    assert notes(trace, model_note=True) == [f"{MODEL_NOTE}: using {GGUF!r}, the only model "
                            f"the server at {llama.url} serves"]


def test_several_served_models_and_none_configured_is_no_runtime(tmp_path):
    ws = make_ws(tmp_path)
    with OpenAIServer(models=["qwen", "phi"]) as server:
        result = run_cli("run", "x", "--runtime", "openai", "--base-url", server.url,
                         cwd=ws.root)
        assert result.returncode == EXIT_NO_RUNTIME
        assert f"the server at {server.url} serves 2: qwen, phi" in result.stderr
        assert "--model" in result.stderr and not server.model_requests()
    assert not find_traces(ws.project("default").short_term_dir)


def test_models_command_lists_what_the_server_serves(tmp_path):
    ws = make_ws(tmp_path, '\n[openai]\nmodel = "phi"\n')
    with OpenAIServer(models=["qwen", "phi"]) as server:
        result = run_cli("models", "--base-url", server.url, cwd=ws.root)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["qwen", "phi  (configured)"]


def test_models_command_without_a_workspace_and_with_one_model(tmp_path, llama):
    result = run_cli("models", "--base-url", llama.url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"{GGUF}  (used: the only model served)"]


def test_models_command_when_no_server_answers(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run_cli("models", "--base-url", f"127.0.0.1:{port}", cwd=tmp_path)
    assert result.returncode == EXIT_NO_RUNTIME
    assert f"no OpenAI-compatible server answers at http://127.0.0.1:{port}/v1" in result.stderr


def test_models_command_reports_an_http_error(tmp_path):
    with OpenAIServer() as server:
        result = run_cli("models", "--base-url", server.base + "/nope", cwd=tmp_path)
    assert result.returncode == 1
    assert "HTTP 404" in result.stderr and "Traceback" not in result.stderr
