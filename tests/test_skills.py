"""Skills and slash commands in Claude Code's formats, on both runtimes: a skill's name and
description are in the system prompt, its body reaches the model only when it calls Skill, and
its allowed-tools are enforced; a command's template becomes the goal."""

from __future__ import annotations

import json

import pytest

from llmunix.workspace.layout import Workspace
from tests.support import agent_text, new_workspace, run_cli, write_spec
from tests.test_scenarios import Model, only_trace

SKILL = """---
name: brand-voice
description: Write in the house style. Use for any text meant for customers.
allowed-tools: Read
license: MIT
---
BODY-MARKER: every sentence starts with a verb.
See reference.md for the word list.
"""


@pytest.fixture()
def ws(model, tmp_path) -> Workspace:
    ws = new_workspace(tmp_path / "ws")
    model.configure(ws)
    folder = ws.root / ".claude" / "skills" / "brand-voice"
    write_spec(folder, "SKILL.md", SKILL)
    (folder / "reference.md").write_text("WORDLIST-MARKER: ship, fix, write\n")
    write_spec(ws.user_agents_dir, "writer.md",
               agent_text("writer", tools="Read, Write, Skill", body="WRITER."))
    return Workspace(ws.root)


def test_a_skill_is_disclosed_when_invoked_and_its_allowed_tools_hold(model, ws):
    reference = ws.root / ".claude" / "skills" / "brand-voice" / "reference.md"
    model.enqueue(
        model.call("Skill", {"skill": "brand-voice"}, id="call_skill"),
        model.call("Write", {"file_path": "a.txt", "content": "x"}, id="call_write"),
        model.call("Read", {"file_path": str(reference)}, id="call_read"),
        "Done in the house style.",
    )
    result = model.run(ws, "write the launch note", "--agent", "writer")
    assert result.returncode == 0, result.stderr
    model.assert_script_used()

    first = model.requests()[0]
    prompt = model.system_prompt(first)
    assert "brand-voice: Write in the house style." in prompt  # name and description only
    assert "BODY-MARKER" not in prompt
    assert "Skill" in model.tool_names(first)
    skill = model.fed_back("call_skill")
    assert not skill.is_error and "BODY-MARKER: every sentence starts with a verb." in skill.text
    assert str(reference) in skill.text  # the files beside it, to Read when needed

    trace = only_trace(ws)
    write = next(s for s in trace.tool_steps() if s.tool == "Write")
    assert write.fields["decision"] == "denied"
    assert "the active skill 'brand-voice' allows only Read" in write.fields["reason"]
    assert not (ws.project("default").workspace_dir / "a.txt").exists()
    assert "WORDLIST-MARKER" in model.fed_back("call_read").text  # its files are readable


def test_an_agent_that_may_not_use_skills_is_not_told_of_them(model, ws):
    write_spec(ws.user_agents_dir, "plain.md", agent_text("plain", tools="Read", body="PLAIN."))
    model.enqueue("nothing to do")
    result = model.run(ws, "say hi", "--agent", "plain")
    assert result.returncode == 0, result.stderr
    first = model.requests()[0]
    assert "brand-voice" not in model.system_prompt(first)
    assert "Skill" not in model.tool_names(first)


def test_boot_lists_skills_and_commands_with_scope_overrides(tmp_path):
    ws = new_workspace(tmp_path / "ws")
    write_spec(ws.system_dir / "skills" / "pdf", "SKILL.md",
               "---\nname: pdf\ndescription: System PDF skill.\n---\nSystem body.\n")
    write_spec(ws.root / ".claude" / "skills" / "pdf", "SKILL.md",
               "---\nname: pdf\ndescription: The user's PDF skill.\n---\nTheir body.\n")
    write_spec(ws.root / "skills" / "notes", "SKILL.md",
               "---\ndescription: Take notes.\nhooks: {}\n---\nNotes body.\n")
    write_spec(ws.root / ".claude" / "commands" / "git", "fix-issue.md",
               "---\ndescription: Fix an issue.\nargument-hint: [issue] [priority]\n---\n"
               "Fix issue #$1.\n")
    report = json.loads(run_cli("boot", "--json", cwd=ws.root).stdout)
    skills = {s["name"]: s for s in report["skills"]}
    assert skills["pdf"]["scope"] == "claude" and skills["pdf"]["description"] == \
        "The user's PDF skill."
    assert skills["notes"]["path"] == "skills/notes/SKILL.md"  # named after its folder
    (command,) = report["commands"]
    assert command == {"name": "fix-issue", "scope": "claude",
                       "path": ".claude/commands/git/fix-issue.md",
                       "description": "Fix an issue.", "argument_hint": "[issue] [priority]"}
    hooks = next(d for d in report["diagnostics"] if d["field"] == "hooks")
    assert hooks["path"].endswith("skills/notes/SKILL.md") and hooks["line"] == 3
    text = run_cli("boot", cwd=ws.root).stdout
    assert "/fix-issue" in text and "2 skills, 1 commands" in text


def test_a_slash_command_expands_into_the_goal(openai_server, tmp_path):
    model = Model("openai", openai_server, tmp_path)
    ws = new_workspace(tmp_path / "ws")
    write_spec(ws.user_agents_dir, "fixer.md", agent_text("fixer", tools="Read, Write, Bash"))
    write_spec(ws.root / ".claude" / "commands" / "git", "fix-issue.md",
               "---\ndescription: Fix an issue.\nargument-hint: [issue] [priority]\n"
               "allowed-tools: Read, Write\n---\nFix issue #$1 with priority $2. All: $ARGUMENTS\n")
    model.enqueue("fixed")
    result = run_cli("run", '/fix-issue 123 "very high"', *model.args, "--agent", "fixer",
                     "--mode", "learner", cwd=ws.root, env=model.env)
    assert result.returncode == 0, result.stderr
    first = model.requests()[0]
    assert model.user_text(first) == 'Fix issue #123 with priority very high. All: 123 "very high"'
    assert sorted(model.tool_names(first)) == ["Read", "Write"]  # allowed-tools narrow it
    assert only_trace(ws).meta["command"] == "/fix-issue"


def test_an_unknown_slash_command_is_a_clear_error(tmp_path):
    ws = new_workspace(tmp_path / "ws")
    result = run_cli("run", "/nope now", "--runtime", "openai", cwd=ws.root)
    assert result.returncode != 0
    assert "no slash command '/nope'" in result.stderr and "Traceback" not in result.stderr
