"""Boot: scopes, overrides, duplicates, unknown tools, SmartLibrary, and `boot --json`."""

from __future__ import annotations

import json

from llmunix.memory.library import write_smart_library
from llmunix.specs.registry import boot, load_registry
from tests.support import agent_text, new_workspace, run_cli, write_spec


def test_shipped_templates_boot_clean(tmp_path):
    ws = new_workspace(tmp_path / "ws")
    report = boot(ws)
    assert report.ok, [str(d) for d in report.diagnostics]
    assert report.diagnostics == []
    names = set(report.registry.agents)
    assert {"system-agent", "memory-consolidation-agent"} <= names
    assert len(names) >= 4
    kinds = {t.kind for t in report.registry.tools.values()}
    assert {"command", "python", "prompt"} <= kinds
    assert "default" in report.projects


def test_later_scope_overrides_by_name_and_boot_reports_it(tmp_path):
    ws = new_workspace(tmp_path / "ws")
    user = write_spec(ws.user_agents_dir, "Writer.md", agent_text("writer", body="User writer."))
    proj = ws.ensure_project("p1")
    mine = write_spec(proj.agents_dir, "Writer.md", agent_text("writer", body="Project writer."))
    base = load_registry(ws)
    assert base.agents["writer"].prompt == "User writer."
    assert base.agents["writer"].scope == "user"
    in_project = load_registry(ws, proj)
    assert in_project.agents["writer"].prompt == "Project writer."
    assert [(o.name, o.winner, o.loser_scope) for o in in_project.overrides] == [
        ("writer", user, "system"),
        ("writer", mine, "user"),
    ]


def test_claude_agents_folder_is_discovered(tmp_path):
    ws = new_workspace(tmp_path / "ws")
    write_spec(ws.claude_agents_dir, "reviewer2.md", agent_text("reviewer2", tools="Read, Grep"))
    reg = load_registry(ws)
    assert reg.agents["reviewer2"].scope == "claude"


def test_duplicate_names_in_one_scope_name_both_files(tmp_path):
    ws = new_workspace(tmp_path / "ws")
    a = write_spec(ws.user_agents_dir, "a.md", agent_text("twin"))
    b = write_spec(ws.user_agents_dir, "b.md", agent_text("twin"))
    reg = load_registry(ws)
    assert "twin" not in reg.agents
    [err] = reg.errors
    assert str(a) in err.message and str(b) in err.message


def test_agent_listing_an_undefined_tool_is_reported_and_skipped(tmp_path):
    ws = new_workspace(tmp_path / "ws")
    path = write_spec(ws.user_agents_dir, "x.md", agent_text("x", tools="Read, frobnicate"))
    reg = load_registry(ws)
    assert "x" not in reg.agents
    [err] = reg.errors
    assert err.path == str(path) and "frobnicate" in err.message


def test_broken_spec_is_skipped_and_the_rest_boots(tmp_path):
    ws = new_workspace(tmp_path / "ws")
    write_spec(ws.user_agents_dir, "broken.md", "---\nname: broken\n")
    report = boot(ws)
    assert not report.ok
    assert "system-agent" in report.registry.agents
    assert any("not closed" in d.message for d in report.diagnostics)


def test_smart_library_is_stable(tmp_path):
    ws = new_workspace(tmp_path / "ws")
    assert write_smart_library(boot(ws)) is True
    first = ws.smart_library_path.read_text()
    assert "| system-agent | system |" in first
    assert write_smart_library(boot(ws)) is False  # unchanged content: file left alone
    assert ws.smart_library_path.read_text() == first


def test_boot_json_and_exit_codes(tmp_path):
    ws = new_workspace(tmp_path / "ws")
    ok = run_cli("boot", "--json", cwd=ws.root / "projects")  # found by walking up
    assert ok.returncode == 0, ok.stderr
    data = json.loads(ok.stdout)
    assert data["ok"] is True
    assert {a["name"] for a in data["agents"]} >= {"system-agent"}
    assert data["projects"]["default"]["memory"] == {"short_term": 0, "long_term": 0}
    write_spec(ws.user_agents_dir, "bad.md", "---\nname: [x\n---\nB\n")
    bad = run_cli("boot", "--json", cwd=ws.root)
    assert bad.returncode == 1
    [diag] = [d for d in json.loads(bad.stdout)["diagnostics"] if d["severity"] == "error"]
    assert diag["path"].endswith("bad.md") and diag["line"] in (2, 3)


def test_boot_table_shows_override(tmp_path):
    ws = new_workspace(tmp_path / "ws")
    write_spec(ws.user_agents_dir, "Writer.md", agent_text("writer"))
    result = run_cli("boot", cwd=ws.root)
    assert result.returncode == 0, result.stderr
    assert "override: agent 'writer' from agents/Writer.md (user)" in result.stdout
    assert "system-agent" in result.stdout


def test_boot_cache_sees_every_edit(tmp_path):
    ws = new_workspace(tmp_path / "ws")
    path = write_spec(ws.user_agents_dir, "w.md", agent_text("w", body="Version A."))
    assert boot(ws).registry.agents["w"].prompt == "Version A."
    assert (ws.root / ".llmunix" / "spec-cache.marshal").is_file()
    path.write_text(agent_text("w", body="Version B."))  # same size, new content
    assert boot(ws).registry.agents["w"].prompt == "Version B."
    path.write_text("---\nname: w\n")  # broken: reported from the cache path too
    assert not boot(ws).ok
    path.unlink()
    assert "w" not in boot(ws).registry.agents
    (ws.root / ".llmunix" / "spec-cache.marshal").write_bytes(b"not a pickle")
    assert boot(ws).ok  # a damaged cache is rebuilt, never trusted
