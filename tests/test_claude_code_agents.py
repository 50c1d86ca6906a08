"""A user's `.claude/agents/` folder works unchanged: the corpus in tests/fixtures/claude_corpus/
holds agent files shaped like the public collections (Claude Code sub-agent collections, plugin
agents), quirks included — unquoted `: ` in one-line values, names with dots, sub-folders,
Claude Code tools llmunix does not implement, keys llmunix does not apply, CRLF, a BOM."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from llmunix.specs.agents import load_agent
from llmunix.specs.tools import load_tool
from llmunix.workspace.layout import Workspace
from tests.support import new_workspace, run_cli
from tests.test_scenarios import only_trace

CORPUS = Path(__file__).parent / "fixtures" / "claude_corpus"
DIALECTS = Path(__file__).parent / "fixtures" / "dialects"


def corpus_files() -> list[Path]:
    return sorted(CORPUS.rglob("*.md"))


def strict_yaml_fails(path: Path) -> bool:
    text = path.read_text(encoding="utf-8-sig").replace("\r\n", "\n")
    block = text.split("---\n", 2)[1]
    try:
        yaml.safe_load(block)
    except yaml.YAMLError:
        return True
    return False


@pytest.fixture()
def claude_ws(tmp_path) -> Workspace:
    ws = new_workspace(tmp_path / "ws")
    shutil.copytree(CORPUS, ws.root / ".claude" / "agents")
    return Workspace(ws.root)


def boot_json(ws: Workspace) -> dict:
    result = run_cli("boot", "--json", cwd=ws.root)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def diagnostics_for(report: dict, name: str) -> list[dict]:
    return [d for d in report["diagnostics"] if d["path"].endswith(name)]


def test_every_corpus_file_loads(claude_ws):
    report = boot_json(claude_ws)
    loaded = {a["path"] for a in report["agents"] if a["scope"] == "claude"}
    expected = {f".claude/agents/{p.relative_to(CORPUS).as_posix()}" for p in corpus_files()}
    assert len(expected) == 40
    assert loaded == expected  # 100% of the corpus, sub-folders included
    assert not [d for d in report["diagnostics"] if d["severity"] == "error"]
    # A fifth of the corpus is not strict YAML, as in the public collections.
    assert sum(strict_yaml_fails(p) for p in corpus_files()) == 8


def test_unquoted_colon_is_read_as_text_with_a_warning_naming_key_and_line(claude_ws):
    report = boot_json(claude_ws)
    agent = next(a for a in report["agents"] if a["name"] == "sql-pro")
    assert agent["description"].endswith("Note: works with PostgreSQL, MySQL and SQLite.")
    (warning,) = diagnostics_for(report, "sql-pro.md")
    assert warning["severity"] == "warning" and warning["line"] == 3
    assert warning["field"] == "description" and "read as plain text" in warning["message"]
    # Every repaired file is named; the one with escaped example dialogue keeps its text.
    repaired = {Path(d["path"]).name for d in report["diagnostics"]
                if "read as plain text" in d["message"]}
    assert repaired == {p.name for p in corpus_files() if strict_yaml_fails(p)}
    architect = next(a for a in report["agents"] if a["name"] == "backend-architect")
    assert 'user: "We need an API' in architect["description"]


def test_a_real_yaml_error_is_still_an_error(tmp_path):
    path = tmp_path / "broken.md"
    path.write_text("---\nname: a\ndescription: Use it: now\n  really: yes\ntools: Read\n---\nB\n")
    spec, problems = load_agent(path, "claude")
    assert spec is None  # a value that goes on over indented lines is not a one-line value
    (error,) = problems
    assert "YAML syntax error" in error.message and error.line == 3


def test_names_with_dots_and_nested_folders(claude_ws):
    names = {a["name"] for a in boot_json(claude_ws)["agents"]}
    assert {"dotnet-framework-4.8-expert", "vue3.x-specialist"} <= names
    assert {"api-designer", "react-specialist", "team-lead", "planner"} <= names


def test_unimplemented_claude_code_tools_load_with_a_warning(claude_ws):
    report = boot_json(claude_ws)
    lead = next(a for a in report["agents"] if a["name"] == "team-lead")
    assert "TaskCreate" in lead["tools"] and "SendMessage" in lead["tools"]
    (warning,) = diagnostics_for(report, "meta/team-lead.md")
    assert warning["line"] == 4 and warning["field"] == "tools"
    assert "TaskCreate, TaskUpdate, TaskList, TaskGet, SendMessage, TeamCreate, TeamDelete" in \
        warning["message"]


def test_ignored_claude_code_keys_are_named_with_their_line(claude_ws):
    report = boot_json(claude_ws)
    warnings = {(d["field"], d["line"]) for d in diagnostics_for(report, "memory-keeper.md")}
    assert warnings == {("memory", 5), ("background", 6), ("effort", 7), ("isolation", 8),
                        ("initialPrompt", 9)}
    (hooks,) = diagnostics_for(report, "hooked-formatter.md")
    assert hooks["field"] == "hooks" and "not run" in hooks["message"]


def test_honoured_claude_code_keys(claude_ws):
    agents = {a["name"]: a for a in boot_json(claude_ws)["agents"]}
    assert agents["planner"]["settings"]["constraints"]["read_only"] is True  # permissionMode
    assert agents["memory-keeper"]["settings"]["max_turns"] == 20  # maxTurns
    assert agents["security-auditor"]["disallowed_tools"] == ["Write", "Edit", "Bash"]
    assert agents["no-tools"]["tools"] == []
    assert agents["git-helper"]["tools"] == ["Bash", "Read"]  # Bash(git status:*) -> Bash
    assert agents["content-marketer"]["model"] == "haiku"
    spec, _ = load_agent(CORPUS / "skilled-writer.md", "claude")
    assert spec.skills == ("brand-voice", "pdf")
    spec, _ = load_agent(CORPUS / "time-keeper.md", "claude")
    (names, (server,)) = spec.mcp_servers
    assert names == () and server.name == "time" and server.command == "mcp-server-time"


def test_llmunix_bold_field_agent_without_frontmatter():
    spec, problems = load_agent(DIALECTS / "llmunix_bold_agent.md", "system")
    assert problems == []
    assert spec.name == "mathematician-agent" and spec.dialect == "llmunix"
    assert spec.tools == ("Read", "Write")
    assert spec.description.startswith("Translates project descriptions")
    assert "## Purpose" in spec.prompt


def test_legacy_sh_and_json_tool_without_frontmatter(tmp_path):
    spec, problems = load_tool(DIALECTS / "legacy_sh_tool.md", "system")
    assert [p for p in problems if p.severity == "error"] == []
    assert spec.name == "line-counter" and spec.kind == "command"
    assert spec.input_schema["required"] == ["path"]
    assert spec.shell_script.strip() == 'wc -l < "$LLMUNIX_ARG_PATH"'
    ws = new_workspace(tmp_path / "ws")
    shutil.copy(DIALECTS / "legacy_sh_tool.md", ws.system_tools_dir / "line-counter.md")
    target = ws.ensure_project("default").workspace_dir / "three.txt"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("a\nb\nc\n")
    result = run_cli("tools", "run", "line-counter", "--arg", "path=three.txt", cwd=ws.root)
    assert result.returncode == 0, result.stderr
    assert "3" in result.stdout


def test_a_markdown_file_without_frontmatter_or_fields_is_still_refused(tmp_path):
    path = tmp_path / "notes.md"
    path.write_text("# Notes\n\nJust notes.\n")
    spec, problems = load_agent(path, "user")
    assert spec is None and any("no frontmatter" in p.message for p in problems)


def test_a_call_of_an_unimplemented_tool_is_refused_with_the_reason(model, tmp_path):
    ws = new_workspace(tmp_path / "ws")
    model.configure(ws)
    shutil.copytree(CORPUS / "meta", ws.root / ".claude" / "agents")
    task_call = (model.wire.tool_use if model.runtime == "claude" else model.wire.tool_call)(
        "TaskCreate", {"subject": "write the plan"}, id="call_task")
    model.enqueue(
        task_call,
        model.call("Read", {"file_path": "missing.txt"}, id="call_read"),
        "done",
    )
    result = model.run(ws, "plan the work", "--agent", "team-lead")
    assert result.returncode == 0, result.stderr
    model.assert_script_used()
    task = only_trace(ws).tool_steps()[0]
    assert task.tool == "TaskCreate" and task.fields["decision"] == "denied"
    assert "Claude Code tool llmunix does not implement" in task.fields["reason"]
    fed = model.fed_back("call_task")
    # The CLI answers a tool it was not given itself; llmunix's own loop gives llmunix's reason.
    assert fed.is_error and ("does not implement" in fed.text if model.runtime == "openai"
                             else "No such tool available" in fed.text)


def test_bash_rules_in_disallowed_tools_deny_those_commands_not_bash(tmp_path):
    path = tmp_path / "careful.md"
    path.write_text("---\nname: careful\ndescription: Careful.\ntools: Bash, Read\n"
                    "disallowedTools: Bash(git push:*), WebSearch\n---\nBe careful.\n")
    spec, problems = load_agent(path, "claude")
    assert problems == []
    assert spec.disallowed_tools == ("WebSearch",)  # Bash itself stays allowed
    assert "Bash" in spec.tools
