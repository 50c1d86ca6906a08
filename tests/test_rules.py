"""Permission rules in Claude Code's syntax (`Bash(git status:*)`, `Read(./docs/**)`,
`Edit(src/**)`, `WebFetch(domain:...)`, `Agent(name)`): honoured as narrow rules, never widened
to the whole tool; a rule llmunix cannot read is an error with file and line."""

from __future__ import annotations

import pytest

from llmunix.policy.gate import Policy
from llmunix.specs.agents import load_agent
from tests.support import new_workspace, run_cli, write_spec


@pytest.fixture()
def place(tmp_path):
    work = tmp_path / "work"
    (work / "docs").mkdir(parents=True)
    (work / "src" / "pkg").mkdir(parents=True)
    (work / "docs" / "guide.md").write_text("guide\n")
    (work / "notes.md").write_text("notes\n")
    return tmp_path, work, Policy(work)


def agent(tmp_path, tools: str, extra: str = ""):
    path = tmp_path / "a.md"
    path.write_text(f"---\nname: a\ndescription: d\ntools: {tools}\n{extra}---\nBody.\n")
    spec, problems = load_agent(path, "user")
    assert spec is not None, problems
    return spec


def allowed(policy, spec, tool, **tool_input) -> bool:
    return policy.check(tool, tool_input, allowed_tools=spec.tools, rules=spec.rules).allowed


def test_a_bash_rule_grants_only_its_command(place):
    tmp, _work, policy = place
    spec = agent(tmp, '"Bash(git status:*), Bash(npm run test:*), Read"')
    assert spec.tools == ("Bash", "Read")
    ok = ["git status", "git status -s", "npm run test", "npm run test -- --watch"]
    for command in ok:
        assert allowed(policy, spec, "Bash", command=command), command
    for command in ("git push", "git statusx", "ls", "git status && rm -rf x", "git status | sh",
                    "git status; curl x", "git status $(rm x)", "FOO=1 git status",
                    "npm run build", "bash -c 'git status'", "echo `git status`"):
        assert not allowed(policy, spec, "Bash", command=command), command
    decision = policy.check("Bash", {"command": "git status && ls"}, allowed_tools=spec.tools,
                            rules=spec.rules)
    assert "every command of the line must match one of Bash(git status:*)" in decision.reason
    assert allowed(policy, spec, "Read", file_path="notes.md")  # listed bare: whole


def test_an_exact_command_rule_and_a_glob(place):
    tmp, _work, policy = place
    spec = agent(tmp, '"Bash(make test), Bash(git * main)"')
    assert allowed(policy, spec, "Bash", command="make test")
    assert not allowed(policy, spec, "Bash", command="make test2")
    assert allowed(policy, spec, "Bash", command="git merge main")
    assert not allowed(policy, spec, "Bash", command="git merge dev")


def test_bare_and_rule_together_mean_the_whole_tool(place):
    tmp, _work, policy = place
    spec = agent(tmp, '"Bash, Bash(git status:*)"')
    assert allowed(policy, spec, "Bash", command="ls")


def test_path_rules(place):
    tmp, _work, policy = place
    spec = agent(tmp, '"Read(./docs/**), Edit(src/**), Grep, Write"')
    assert allowed(policy, spec, "Read", file_path="docs/guide.md")
    assert not allowed(policy, spec, "Read", file_path="notes.md")
    assert allowed(policy, spec, "Edit", file_path="src/pkg/a.py", old_string="a", new_string="b")
    assert not allowed(policy, spec, "Edit", file_path="notes.md", old_string="a",
                       new_string="b")
    assert allowed(policy, spec, "Write", file_path="notes.md", content="x")  # listed bare
    assert allowed(policy, spec, "Grep", pattern="x")  # listed bare


def test_deny_rules_in_disallowed_tools(place):
    tmp, _work, policy = place
    spec = agent(tmp, "Bash, Read, Write, Edit",
                 'disallowedTools: "Bash(rm:*), Edit(docs/**)"\n')
    assert spec.disallowed_tools == ()  # only narrowed, not taken away
    assert allowed(policy, spec, "Bash", command="ls")
    assert not allowed(policy, spec, "Bash", command="ls && rm -rf docs")
    decision = policy.check("Bash", {"command": "rm x"}, allowed_tools=spec.tools,
                            rules=spec.rules)
    assert "matches the rule Bash(rm:*) in disallowedTools" in decision.reason
    # an Edit rule covers every tool that writes a file
    assert not allowed(policy, spec, "Write", file_path="docs/new.md", content="x")
    assert allowed(policy, spec, "Write", file_path="notes.md", content="x")


def test_web_fetch_and_agent_rules(place):
    tmp, _work, policy = place
    spec = agent(tmp, '"WebFetch(domain:example.com), Agent(writer)"')
    assert allowed(policy, spec, "WebFetch", url="https://example.com/a", prompt="p")
    assert not allowed(policy, spec, "WebFetch", url="https://evil.example.net/", prompt="p")
    assert not allowed(policy, spec, "WebFetch", url="https://example.com.evil.net/", prompt="p")
    assert allowed(policy, spec, "Agent", subagent_type="writer", prompt="p", description="d")
    assert not allowed(policy, spec, "Task", subagent_type="coder", prompt="p",
                       description="d")


@pytest.mark.parametrize("rule, why", [
    ("Bash(git status", "cannot read the permission rule"),
    ("Glob(src/**)", "cannot narrow Glob by a specifier"),
    ("WebFetch(example.com)", "WebFetch(domain:example.com)"),
    ("Bash(git:* status)", "':*' may only end a command rule"),
    ("Read(../outside/**)", "'..' is not allowed"),
])
def test_an_unreadable_rule_is_an_error_with_file_and_line(tmp_path, rule, why):
    ws = new_workspace(tmp_path / "ws")
    path = write_spec(ws.user_agents_dir, "ruled.md",
                      f"---\nname: ruled\ndescription: d\ntools: \"Read, {rule}\"\n---\nBody.\n")
    result = run_cli("boot", cwd=ws.root)
    assert result.returncode == 1
    out = result.stdout + result.stderr
    assert f"{path.name}:4" in out and why in out, out
