"""Memory the agents use, on both runtimes: MemoryWrite edits core memory (pinned into every
agent's system prompt from then on, committed with the run), MemorySearch ranks every tier, and
the policy scopes both like any other tool."""

from __future__ import annotations

import subprocess

from llmunix.trace.markdown import find_traces, read_trace
from llmunix.workspace.layout import Workspace
from tests.support import agent_text, new_workspace, run_cli, write_spec
from tests.test_scenarios import Model

KEEPER_BODY = "KEEPER-MARKER: you keep notes."
MEMORY_TOOLS = "Read, MemorySearch, MemoryWrite"


def _workspace(model: Model, tmp_path, tools: str = MEMORY_TOOLS, extra: str = "") -> Workspace:
    ws = new_workspace(tmp_path / "ws")
    write_spec(ws.user_agents_dir, "keeper.md",
               agent_text("keeper", tools=tools, body=KEEPER_BODY, extra=extra))
    model.configure(ws)
    return Workspace(ws.root)


def _traces(ws: Workspace):
    return [read_trace(p) for p in find_traces(ws.project("default").short_term_dir)]


def _git(ws: Workspace, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=ws.root, capture_output=True, text=True,
                          check=True).stdout


def test_core_memory_written_in_one_run_is_in_the_next_runs_system_prompt(model, tmp_path):
    ws = _workspace(model, tmp_path)
    core = ws.project("default").root / "memory" / "core.md"
    model.enqueue(
        model.reply("Saving the convention.",
                    model.call("MemoryWrite", {"section": "Conventions",
                                               "content": "- dates are ISO 8601"},
                               id="call_write_core")),
        "Noted the date format.",
    )
    first = model.run(ws, "remember that dates are ISO 8601", "--agent", "keeper")
    assert first.returncode == 0, first.stderr
    assert core.read_text(encoding="utf-8") == ("# Core memory\n\n## Conventions\n"
                                                "- dates are ISO 8601\n")
    fed = model.fed_back("call_write_core")
    assert not fed.is_error and "section 'Conventions' appended to" in fed.text
    assert "KEEPER-MARKER" in model.system_prompt(model.requests()[0])
    assert "<core_memory" not in model.system_prompt(model.requests()[0])  # nothing pinned yet
    (trace,) = _traces(ws)
    (step,) = trace.tool_steps()
    assert (step.tool, step.fields["decision"], step.fields["is_error"]) == (
        "MemoryWrite", "allowed", False)
    assert step.input == {"section": "Conventions", "content": "- dates are ISO 8601"}
    # the edit is part of the run's commit
    changed = _git(ws, "show", "--name-only", "--format=%s", "HEAD").split("\n")
    assert changed[0].startswith(f"run {trace.trace_id}:")
    assert "projects/default/memory/core.md" in changed

    # the next run: the block is pinned into the system prompt, and MemorySearch finds the
    # first run among the ranked entries of memory
    model.enqueue(
        model.reply(model.call("MemorySearch", {"query": "dates ISO 8601", "limit": 3},
                               id="call_search")),
        "The format is ISO 8601.",
    )
    second = model.run(ws, "which date format do we use?", "--agent", "keeper")
    assert second.returncode == 0, second.stderr
    request = model.requests()[2]
    prompt = model.system_prompt(request)
    assert prompt.startswith(KEEPER_BODY)
    assert ('<core_memory scope="project" file="projects/default/memory/core.md">\n'
            "### Conventions\n- dates are ISO 8601\n</core_memory>") in prompt
    found = model.fed_back("call_search")
    assert not found.is_error
    first_rel = trace.path.relative_to(ws.root).as_posix()
    assert found.text.splitlines()[0].startswith("gamma ") and first_rel in found.text
    running = [t for t in _traces(ws) if t.trace_id != trace.trace_id][0]
    assert running.path.name not in found.text  # a run does not find itself

    shown = run_cli("memory", "show", "core", cwd=ws.root)
    assert shown.returncode == 0, shown.stderr
    assert "projects/default/memory/core.md · project · " in shown.stdout
    assert "## Conventions\n- dates are ISO 8601" in shown.stdout
    assert "system/core.md · system · 0 of 1,024 tokens" in shown.stdout
    model.assert_script_used()


def test_memory_write_is_scoped_by_the_policy(model, tmp_path):
    ws = _workspace(model, tmp_path, extra="llmunix:\n  constraints:\n    read_only: true\n")
    model.enqueue(
        model.reply(model.call("MemoryWrite", {"section": "Notes", "content": "x"},
                               id="call_ro")),
        "Could not write.",
    )
    result = model.run(ws, "write a note", "--agent", "keeper")
    assert result.returncode == 0, result.stderr
    fed = model.fed_back("call_ro")
    assert fed.is_error and "MemoryWrite refused: this agent is read-only" in fed.text
    assert not (ws.project("default").root / "memory" / "core.md").exists()
    (step,) = _traces(ws)[0].tool_steps()
    assert step.fields["decision"] == "denied"


def test_core_memory_stays_within_its_size_limit(model, tmp_path):
    ws = _workspace(model, tmp_path)
    text = ws.config_path.read_text(encoding="utf-8").replace(
        "core_tokens = 1024", "core_tokens = 40")
    ws.config_path.write_text(text, encoding="utf-8")
    system_core = ws.system_dir / "core.md"
    model.enqueue(
        model.reply(model.call("MemoryWrite", {"section": "Team", "content": "- Ada reviews",
                                               "scope": "system"}, id="call_small")),
        model.reply(model.call("MemoryWrite", {"section": "Team", "content": "- " + "x" * 400,
                                               "scope": "system"}, id="call_big")),
        "Done.",
    )
    result = model.run(ws, "note the team", "--agent", "keeper")
    assert result.returncode == 0, result.stderr
    assert not model.fed_back("call_small").is_error
    big = model.fed_back("call_big")
    assert big.is_error and "above its limit of 40 tokens ([memory] core_tokens)" in big.text
    assert system_core.read_text(encoding="utf-8") == "# Core memory\n\n## Team\n- Ada reviews\n"
    changed = _git(ws, "show", "--name-only", "--format=%s", "HEAD")
    assert "system/core.md" in changed.split("\n")


def test_memory_show_rejects_bad_input(tmp_path):
    ws = new_workspace(tmp_path / "ws")
    bad = run_cli("memory", "show", "everything", cwd=ws.root)
    assert bad.returncode == 1 and "cannot show 'everything'" in bad.stderr
    assert "Traceback" not in bad.stderr
    core = ws.project("default").root / "memory" / "core.md"
    core.parent.mkdir(parents=True, exist_ok=True)
    core.write_bytes(b"# Core memory\n\n## Notes\n\xff\xfe broken\n")
    broken = run_cli("memory", "show", "core", cwd=ws.root)
    assert broken.returncode == 1 and "Traceback" not in broken.stderr
    assert "projects/default/memory/core.md" in broken.stderr
