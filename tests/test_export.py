"""`llmunix export claude`: agents written for Claude Code, and read back by llmunix the same."""

from __future__ import annotations

from llmunix.specs.agents import load_agent
from llmunix.specs.registry import load_registry
from tests.support import new_workspace, run_cli, write_spec

GUARDED = """---
name: guarded
description: Writes notes, never pushes.
tools: Read, Write, Bash
model: haiku
llmunix:
  max_turns: 7
  budget_usd: 0.25
  constraints:
    write_paths: ["notes/**"]
    deny_commands: ["git push*"]
---
You write notes.
"""


def test_export_round_trip(tmp_path):
    ws = new_workspace(tmp_path / "ws")
    write_spec(ws.user_agents_dir, "guarded.md", GUARDED)
    before = load_registry(ws).agents
    result = run_cli("export", "claude", "--out", str(tmp_path / "out"), cwd=ws.root)
    assert result.returncode == 0, result.stderr
    assert "not enforced by Claude Code: budget_usd 0.25, constraints.write_paths" in result.stdout
    text = (tmp_path / "out" / "guarded.md").read_text()
    assert "maxTurns: 7" in text and "disallowedTools: Bash(git push:*)" in text
    for name, agent in before.items():
        again, problems = load_agent(tmp_path / "out" / f"{name}.md", "claude")
        assert [p for p in problems if p.severity == "error"] == [], problems
        assert (again.name, again.description, again.tools, again.disallowed_tools,
                again.model, again.prompt, again.settings) == (
            agent.name, agent.description, agent.tools, agent.disallowed_tools, agent.model,
            agent.prompt.strip(), agent.settings), name
    assert f"{len(before)} agent(s) exported" in result.stdout


def test_export_into_the_workspace_claude_folder_loads_in_llmunix(tmp_path):
    ws = new_workspace(tmp_path / "ws")
    write_spec(ws.user_agents_dir, "guarded.md", GUARDED)
    assert run_cli("export", "claude", cwd=ws.root).returncode == 0
    assert (ws.claude_agents_dir / "guarded.md").is_file()
    boot = run_cli("boot", cwd=ws.root)
    assert boot.returncode == 0, boot.stdout + boot.stderr
