"""The context window as RAM on the openai runtime: a long run in a small window pages old
results out to the trace and folds old turns into a summary, every request fits the window,
and Recall reads a paged-out step back."""

from __future__ import annotations

import json

from llmunix.context.tokens import estimate_messages
from llmunix.trace.markdown import find_traces, read_trace
from llmunix.workspace.layout import Workspace
from tests.scripted.openai_server import OpenAIServer, reply, tool_call
from tests.support import agent_text, new_workspace, run_cli, write_spec

MODEL = "local-model"
READER_BODY = "READER-MARKER: you read files."


def _workspace(tmp_path, config: str) -> Workspace:
    ws = new_workspace(tmp_path / "ws")
    write_spec(ws.user_agents_dir, "reader.md",
               agent_text("reader", tools="Read", body=READER_BODY))
    with ws.config_path.open("a", encoding="utf-8") as fh:
        fh.write(config)
    return Workspace(ws.root)


def _file_text(i: int) -> str:
    lines = [f"file {i:02d} line {n}: the value of item {i}-{n} is {i * 100 + n}"
             for n in range(10)]
    return "\n".join(lines) + "\n"


def _run(ws: Workspace, server: OpenAIServer, goal: str, *args: str):
    return run_cli("run", goal, "--runtime", "openai", "--base-url", server.url, "--model",
                   MODEL, "--agent", "reader", "--mode", "learner", *args, cwd=ws.root,
                   env={"OPENAI_API_KEY": "sk-test"})


def _only_trace(ws: Workspace):
    (path,) = find_traces(ws.project("default").short_term_dir)
    return read_trace(path)


def _fits(server: OpenAIServer, window: int) -> list[int]:
    """The prompt tokens of every request the server received, by the documented estimate."""
    sizes = []
    for req in server.model_requests():
        sizes.append(estimate_messages(req.body["messages"], req.body.get("tools")))
    assert max(sizes) <= window, sizes
    return sizes


def test_a_long_run_in_a_2k_window_pages_and_recalls(openai_server, tmp_path):
    ws = _workspace(tmp_path, f'\n[models."{MODEL}"]\ncontext_window = 2048\n\n'
                              "[context]\nsummarize = false\n")
    folder = ws.project("default").workspace_dir
    for i in range(60):
        (folder / f"f{i:02d}.md").write_text(_file_text(i), encoding="utf-8")
    openai_server.enqueue(*[reply(tool_call("Read", {"file_path": f"f{i:02d}.md"},
                                            id=f"call_read_{i}")) for i in range(60)],
                          "Read all sixty files.")
    # once step 1 (the first Read) has been paged out, the model asks for it back
    openai_server.enqueue(
        reply(tool_call("Recall", {"step": 1}, id="call_recall")),
        when=lambda req: "Recall(step=1)" in json.dumps(req.body.get("messages")))

    result = _run(ws, openai_server, "read the sixty files", "--max-turns", "100")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Read all sixty files."
    openai_server.assert_script_used()
    requests = openai_server.model_requests()
    assert len(requests) == 62
    _fits(openai_server, 2048)
    assert "context window 2,048 tokens (llmunix.toml)" in result.stderr
    assert "context reader: paged out steps 1, 2, " in result.stderr and "(ctx " in result.stderr

    # every request keeps the system prompt and the goal
    for req in requests:
        messages = req.body["messages"]
        assert messages[0] == {"role": "system", "content": READER_BODY}
        assert messages[1]["role"] == "user"
        assert messages[1]["content"].startswith("read the sixty files")
    # the last turns are there verbatim; old results are one-line stubs naming their step
    last = requests[-1].body["messages"]
    assert last[-1]["tool_call_id"] == "call_read_59" and "file 59 line 9" in last[-1]["content"]
    stubbed = [m["content"] for m in requests[40].body["messages"]
               if m["role"] == "tool" and m["content"].startswith("[paged out: step")]
    assert not stubbed or all(s.endswith("to read it again]") for s in stubbed)
    assert "## Earlier in this run" in last[1]["content"]
    # Recall brought step 1 back: what Read returned then
    recall_req = next(r for r in requests if any(m.get("tool_call_id") == "call_recall"
                                                 for m in r.body["messages"]))
    fed = next(m for m in recall_req.body["messages"] if m.get("tool_call_id") == "call_recall")
    assert "file 00 line 0: the value of item 0-0 is 0" in fed["content"]
    assert "file 00 line 9" in fed["content"]
    assert "Recall" in [t["function"]["name"] for t in recall_req.body["tools"]]
    assert "Recall" not in [t["function"]["name"] for t in requests[0].body["tools"]]

    # nothing is missing from the trace: every call with its whole result, and each paging
    trace = _only_trace(ws)
    assert trace.status == "success"
    reads = [s for s in trace.tool_steps() if s.tool == "Read"]
    assert [s.input["file_path"] for s in reads] == [f"f{i:02d}.md" for i in range(60)]
    for i, step in enumerate(reads):
        assert f"file {i:02d} line 9:" in trace.full_result(step)
    assert reads[0].number == 1
    (recall,) = [s for s in trace.tool_steps() if s.tool == "Recall"]
    assert recall.fields["decision"] == "allowed" and "file 00 line 0" in trace.full_result(recall)
    paging = [s for s in trace.steps if s.kind == "context"]
    assert paging and all(s.agent == "reader" for s in paging)
    for step in paging:
        assert step.fields["window"] == 2048
        assert step.fields["tokens_after"] < step.fields["tokens_before"]
    out = sorted({n for s in paging for n in s.fields.get("paged_steps", [])})
    assert 1 in out and set(out) <= {s.number for s in trace.tool_steps()}
    assert any(s.fields.get("summarized_by") == "rules" for s in paging)
    assert trace.meta["context"]["windows"] == {MODEL: {"window": 2048,
                                                        "source": "llmunix.toml"}}


def test_old_turns_are_folded_by_the_model_with_a_fixed_prompt(openai_server, tmp_path):
    from llmunix.context.summary import SUMMARY_PROMPT

    ws = _workspace(tmp_path, f'\n[models."{MODEL}"]\ncontext_window = 1024\n')
    folder = ws.project("default").workspace_dir
    for i in range(12):
        (folder / f"f{i:02d}.md").write_text(_file_text(i), encoding="utf-8")
    openai_server.enqueue(*[reply(tool_call("Read", {"file_path": f"f{i:02d}.md"}))
                            for i in range(12)], "Done reading.")
    openai_server.enqueue(*["SUMMARY-7: the files hold item values."] * 12,
                          when=SUMMARY_PROMPT[:40])
    result = _run(ws, openai_server, "read twelve files", "--max-turns", "30")
    assert result.returncode == 0, result.stderr
    requests = openai_server.model_requests()
    summaries = [r for r in requests if SUMMARY_PROMPT[:40] in openai_server.system_prompt(r)]
    agent_requests = [r for r in requests if r not in summaries]
    assert summaries and len(agent_requests) == 13
    _fits(openai_server, 1024)
    for req in summaries:  # the fixed prompt, and no tools: the summarizer only writes
        assert openai_server.system_prompt(req) == SUMMARY_PROMPT
        assert "tools" not in req.body
        assert "Read f00.md" in req.body["messages"][1]["content"] or \
            "Previous summary:\nSUMMARY-7" in req.body["messages"][1]["content"]
    folded = next(r for r in agent_requests if "SUMMARY-7" in r.body["messages"][1]["content"])
    assert folded.body["messages"][1]["content"].startswith("read twelve files\n\n")
    trace = _only_trace(ws)
    paging = [s for s in trace.steps if s.kind == "context"]
    assert any(s.fields.get("summarized_by") == "model" for s in paging)
    assert any("SUMMARY-7" in s.blocks["text"] for s in paging)
    # the summarizer's tokens count, its requests are not agent turns
    assert trace.meta["turns"] == 13


class _WindowServer(OpenAIServer):
    """A server that reports its window: llama.cpp's /props, or vLLM-style /v1/models."""

    def __init__(self, props: dict | None = None, model_entry: dict | None = None) -> None:
        super().__init__()
        self.props = props
        self.model_entry = model_entry

    def _respond_other(self, handler, req) -> None:
        if req.method == "GET" and req.path == "/props" and self.props is not None:
            self._send_json(handler, 200, self.props)
        elif req.method == "GET" and req.path == "/v1/models" and self.model_entry is not None:
            self._send_json(handler, 200, {"object": "list", "data": [self.model_entry]})
        else:
            super()._respond_other(handler, req)


def test_the_window_comes_from_the_config_else_the_server_else_8192(tmp_path):
    cases = [
        (_WindowServer(props={"default_generation_settings": {"n_ctx": 4096}}), "",
         "context window 4,096 tokens (the server's /props)"),
        (_WindowServer(model_entry={"id": MODEL, "object": "model", "max_model_len": 32768}),
         "", "context window 32,768 tokens (the server's /v1/models)"),
        (_WindowServer(props={"n_ctx": 4096}), '\n[models."local-*"]\ncontext_window = 3000\n',
         "context window 3,000 tokens (llmunix.toml)"),
        (_WindowServer(), "", "context window 8,192 tokens (the default)"),
    ]
    for n, (server, config, shown) in enumerate(cases):
        with server:
            server.enqueue("ok")
            ws = _workspace(tmp_path / str(n), config)
            result = _run(ws, server, "say ok")
            assert result.returncode == 0, result.stderr
            assert shown in result.stderr
            window = int(shown.split()[2].replace(",", ""))
            assert _only_trace(ws).meta["context"]["windows"][MODEL]["window"] == window


def test_bad_context_settings_are_reported_with_their_line(tmp_path):
    ws = _workspace(tmp_path, "\n[context]\nhigh_water = 0.5\nlow_water = 0.6\n")
    result = run_cli("run", "x", "--runtime", "openai", cwd=ws.root)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "low_water must be below high_water" in result.stderr
    assert "llmunix.toml" in result.stderr
    ws = _workspace(tmp_path / "b", f'\n[models."{MODEL}"]\ncontext_window = "big"\n')
    result = run_cli("run", "x", "--runtime", "openai", cwd=ws.root)
    assert result.returncode == 1 and "context_window" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_claude_clis_own_compaction_is_recorded_in_the_trace(anthropic_server, tmp_path):
    """The real CLI compacts when a response's usage nears its window (made small here): the
    compaction is a `context` step of the trace."""
    from tests.scripted.anthropic_server import reply as a_reply
    from tests.scripted.anthropic_server import tool_use

    ws = _workspace(tmp_path, "")
    for name in ("a.md", "b.md", "c.md", "d.md"):
        (ws.project("default").workspace_dir / name).write_text(f"{name}\n", encoding="utf-8")
    anthropic_server.enqueue(
        *[a_reply(tool_use("Read", {"file_path": name}),
                  usage={"input_tokens": 1000 * (n + 1), "output_tokens": 10})
          for n, name in enumerate(("a.md", "b.md", "c.md"))],
        a_reply(tool_use("Read", {"file_path": "d.md"}),
                usage={"input_tokens": 199_000, "output_tokens": 10}),
        "Summary of the reading so far.",  # the CLI's compaction request
        "Read the four files.",
    )
    home = tmp_path / "home"
    home.mkdir()
    result = run_cli("run", "read four files", "--runtime", "claude", "--agent", "reader",
                     "--mode", "learner", cwd=ws.root,
                     env={"ANTHROPIC_BASE_URL": anthropic_server.url,
                          "ANTHROPIC_API_KEY": "sk-test", "HOME": str(home),
                          "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                          "CLAUDE_CODE_MAX_RETRIES": "0",
                          "CLAUDE_CODE_AUTO_COMPACT_WINDOW": "50000"})
    assert result.returncode == 0, result.stderr
    assert "Claude Code compacted the conversation (auto)" in result.stderr
    trace = _only_trace(ws)
    (step,) = [s for s in trace.steps if s.kind == "context"]
    assert step.fields["source"] == "claude"
    assert step.fields["tokens_before"] > 100_000 > step.fields["tokens_after"]
    assert [s.input["file_path"] for s in trace.tool_steps()] == ["a.md", "b.md", "c.md", "d.md"]
    assert trace.meta["context"]["paging_events"] == 1


def test_text_protocol_models_are_paged_too(openai_server, tmp_path):
    """A model without native tools calls them as text: its results come back in a user
    message, which is paged out block by block, and Recall joins the tool list in its prompt."""
    ws = _workspace(tmp_path, f'\n[models."{MODEL}"]\ncontext_window = 1536\n\n'
                              "[context]\nsummarize = false\n")
    text = ws.config_path.read_text(encoding="utf-8").replace(
        "text_tools = []", f'text_tools = ["{MODEL}"]')
    ws.config_path.write_text(text, encoding="utf-8")
    folder = ws.project("default").workspace_dir
    for i in range(10):
        (folder / f"f{i:02d}.md").write_text(_file_text(i), encoding="utf-8")
    calls = [f'<tool_call>{{"name": "Read", "arguments": {{"file_path": "f{i:02d}.md"}}}}'
             "</tool_call>" for i in range(10)]
    openai_server.enqueue(*calls, "Read ten files.")
    result = _run(ws, openai_server, "read ten files", "--max-turns", "20")
    assert result.returncode == 0, result.stderr
    requests = openai_server.model_requests()
    assert len(requests) == 11
    _fits(openai_server, 1536)
    assert all("tools" not in r.body for r in requests)
    last = requests[-1].body["messages"]
    assert "## Recall\n" in last[0]["content"] and "## Recall\n" not in \
        requests[0].body["messages"][0]["content"]
    trace = _only_trace(ws)
    paging = [s for s in trace.steps if s.kind == "context"]
    assert paging and 1 in paging[0].fields["paged_steps"]
    assert "## Earlier in this run" in last[1]["content"]
    assert '<tool_result name="Read"> [paged out: step' in last[1]["content"]
    reads = [s for s in trace.tool_steps() if s.tool == "Read"]
    assert len(reads) == 10 and "file 09 line 9" in trace.full_result(reads[-1])
