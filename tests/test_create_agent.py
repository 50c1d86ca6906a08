"""Agents that write agents: CreateAgent on both runtimes ("claude": the real SDK and CLI against
the scripted Anthropic server; "openai": llmunix's loop against the scripted OpenAI server),
through the installed console script. The created agent is delegated to in the same run, the
spec is validated with boot's parser, escalation and shadowing are refused, the run's commit
holds the spec and `llmunix memory revert` undoes it."""

from __future__ import annotations

import re
import subprocess

import pytest

from llmunix.kernel.session import MCP_PREFIX
from llmunix.trace.markdown import find_traces, read_trace
from llmunix.workspace.layout import Workspace
from tests.support import digest, new_workspace, run_cli
from tests.test_scenarios import Model

SUMMARIZER_BODY = "SUMMARIZER-MARKER: you summarize CSV files into summary.md."
SUMMARIZER = {
    "name": "csv-summarizer",
    "description": "Summarizes a CSV file into summary.md. Delegate for CSV summaries.",
    "tools": ["Read", "Write"],
    "constraints": {"write_paths": ["summary.md"]},
    "body": SUMMARIZER_BODY,
}


@pytest.fixture()
def ws(model, tmp_path):
    ws = new_workspace(tmp_path / "ws")
    model.configure(ws)
    (ws.project("default").workspace_dir / "sales.csv").write_text("region,total\nnorth,3\n")
    return Workspace(ws.root)


def delegate(model: Model, name: str, prompt: str, id: str) -> dict:
    """A delegation to an agent created in the run: the Agent tool on the OpenAI runtime,
    llmunix's own mcp__llmunix__Agent on the Claude runtime."""
    args = {"subagent_type": name, "description": "delegate", "prompt": prompt}
    if model.runtime == "claude":
        return model.wire.tool_use(MCP_PREFIX + "Agent", args, id=id)
    return model.wire.tool_call("Agent", args, id=id)


def the_trace(ws: Workspace):
    (path,) = find_traces(ws.project("default").short_term_dir)
    return read_trace(path)


def git(ws: Workspace, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=ws.root, capture_output=True, text=True,
                          check=True).stdout


def test_an_agent_created_mid_run_is_delegated_to_in_the_same_run(model, ws):
    model.enqueue(
        model.reply("No agent summarizes CSV files; I create one.",
                    model.call("CreateAgent", SUMMARIZER, id="call_create")),
        delegate(model, "csv-summarizer", "Summarize sales.csv into summary.md.", "call_sub"),
        "Done: summary.md written by csv-summarizer.",
    )
    model.enqueue(model.call("Write", {"file_path": "summary.md", "content": "north: 3\n"},
                             id="call_sub_write"),
                  "summary.md written", when="SUMMARIZER-MARKER")
    result = model.run(ws, "Summarize sales.csv")
    assert result.returncode == 0, result.stderr
    project = ws.project("default")
    spec_path = project.agents_dir / "csv-summarizer.md"
    text = spec_path.read_text(encoding="utf-8")
    assert text.startswith("---\nname: csv-summarizer\n") and SUMMARIZER_BODY in text
    assert "write_paths:\n    - summary.md" in text
    assert (project.workspace_dir / "summary.md").read_text() == "north: 3\n"

    model.assert_script_used()
    fed = model.fed_back("call_create")
    assert not fed.is_error
    assert f"Agent 'csv-summarizer' created: projects/default/agents/csv-summarizer.md " \
           f"(spec {digest(text)})" in fed.text
    subs = [r for r in model.requests() if model.is_for(r, "SUMMARIZER-MARKER")]
    assert len(subs) == 2  # the created agent's own turns, with its own prompt and tools
    assert model.system_prompt(subs[0]).startswith(SUMMARIZER_BODY)
    assert sorted(model.tool_names(subs[0])) == ["Read", "Write"]
    assert model.fed_back("call_sub").text.strip() == "summary.md written"

    trace = the_trace(ws)
    assert trace.status == "success"
    create = trace.tool_steps()[0]
    assert create.tool == "CreateAgent" and create.fields["decision"] == "allowed"
    assert create.input["name"] == "csv-summarizer"
    assert f"(spec {digest(text)})" in trace.full_result(create)
    kinds = [(s.kind, s.agent) for s in trace.steps if s.kind != "assistant"]
    assert kinds == [("tool", "system-agent"), ("subagent start", "csv-summarizer"),
                     ("tool", "csv-summarizer"), ("subagent end", "csv-summarizer")]
    start = next(s for s in trace.steps if s.kind == "subagent start")
    assert start.fields["call_id"] == "call_sub" and start.fields["spec_hash"] == digest(text)

    # the run's commit holds the new spec: git shows the self-modification, and revert undoes it
    log = git(ws, "log", "-p", "--format=%s", "--", "projects/default/agents/")
    assert log.startswith(f"run {trace.trace_id}: Summarize sales.csv")
    assert "+name: csv-summarizer" in log
    undone = run_cli("memory", "revert", trace.trace_id, cwd=ws.root)
    assert undone.returncode == 0, undone.stderr
    assert not spec_path.exists()


def test_refused_specs_are_fed_back_with_field_and_reason(model, ws):
    bad = {"name": "bad name!", "description": "x", "tools": ["Read"], "body": "  "}
    escalating = {**SUMMARIZER, "tools": ["Read", "WebFetch"]}
    shadowing = {**SUMMARIZER, "name": "writer"}
    model.enqueue(
        model.call("CreateAgent", bad, id="call_bad"),
        model.call("CreateAgent", escalating, id="call_escalate"),
        model.call("CreateAgent", shadowing, id="call_shadow"),
        model.call("CreateAgent", SUMMARIZER, id="call_good"),
        "Created csv-summarizer after fixing the spec.",
    )
    result = model.run(ws, "Make a CSV specialist")
    assert result.returncode == 0, result.stderr
    model.assert_script_used()

    fed = model.fed_back("call_bad")
    assert fed.is_error and "nothing was written" in fed.text
    assert "field 'name'" in fed.text and "invalid name 'bad name!'" in fed.text
    assert "field 'body'" in fed.text
    fed = model.fed_back("call_escalate")
    assert fed.is_error and "field 'tools': WebFetch beyond what system-agent may use" in fed.text
    fed = model.fed_back("call_shadow")
    assert fed.is_error and "'writer' is a system agent" in fed.text
    assert not model.fed_back("call_good").is_error

    agents = sorted(p.name for p in ws.project("default").agents_dir.glob("*.md"))
    assert agents == ["csv-summarizer.md"]  # nothing of the refused calls was written
    steps = the_trace(ws).tool_steps()
    assert [s.fields["is_error"] for s in steps] == [True, True, True, False]
    assert all(s.tool == "CreateAgent" for s in steps)


def test_an_update_records_the_diff_and_an_agent_without_createagent_is_refused(tmp_path):
    from tests.scripted.openai_server import OpenAIServer, tool_call

    ws = new_workspace(tmp_path / "ws")
    with OpenAIServer() as server:
        model = Model("openai", server, tmp_path)
        updated = {**SUMMARIZER, "body": SUMMARIZER_BODY + "\nKeep it to five lines."}
        server.enqueue(tool_call("CreateAgent", SUMMARIZER, id="c1"),
                       tool_call("CreateAgent", updated, id="c2"),
                       tool_call("CreateAgent", updated, id="c3"), "done")
        assert model.run(ws, "Make and refine a specialist").returncode == 0
        second, third = model.fed_back("c2").text, model.fed_back("c3").text
        assert "Agent 'csv-summarizer' updated" in second
        assert "+Keep it to five lines." in second and "--- a/agents/csv-summarizer.md" in second
        assert "Agent 'csv-summarizer' unchanged" in third
        spec_hash = re.search(r"\(spec (\w+)\)", second).group(1)
        assert spec_hash == digest((ws.project("default").agents_dir / "csv-summarizer.md")
                                   .read_text(encoding="utf-8"))

        # the coder lists no CreateAgent: the gate refuses it before anything runs
        server.enqueue(tool_call("CreateAgent", {**SUMMARIZER, "name": "x"}, id="c4"), "ok")
        assert model.run(ws, "try it", "--agent", "coder").returncode == 0
        fed = model.fed_back("c4")
        assert fed.is_error and "only an agent that lists CreateAgent" in fed.text
        assert not (ws.project("default").agents_dir / "x.md").exists()


def test_claude_runtime_points_a_native_delegation_to_a_created_agent_at_llmunix_own(
        anthropic_server, tmp_path):
    """The CLI was given its sub-agents at the start: an Agent call naming a created agent is
    refused by the gate with the way that works, and the model then uses it."""
    ws = new_workspace(tmp_path / "ws")
    home = tmp_path / "home"
    home.mkdir()
    model = Model("claude", anthropic_server, home)
    native = {"subagent_type": "csv-summarizer", "description": "d", "prompt": "Summarize."}
    model.enqueue(
        model.call("CreateAgent", SUMMARIZER, id="c1"),
        model.wire.tool_use("Agent", native, id="c2"),
        delegate(model, "csv-summarizer", "Summarize.", "c3"),
        "done",
    )
    model.enqueue("summary written", when="SUMMARIZER-MARKER")
    result = model.run(ws, "Summarize sales.csv")
    assert result.returncode == 0, result.stderr
    fed = model.fed_back("c2")
    assert fed.is_error and "csv-summarizer was created during this run" in fed.text
    assert f"{MCP_PREFIX}Agent" in fed.text
    assert model.fed_back("c3").text.strip() == "summary written"
    denied = [s for s in the_trace(ws).tool_steps() if s.fields["call_id"] == "c2"]
    assert denied and denied[0].fields["decision"] == "denied"
