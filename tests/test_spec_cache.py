"""The spec cache: what comes out of it equals what the parser makes, an edited, added or
removed file is read again, a damaged or foreign cache file is ignored and rebuilt; and
SmartLibrary.md is rewritten exactly when what it shows may have changed."""

from __future__ import annotations

import json
import marshal
import os
import shutil
from pathlib import Path

import pytest

from llmunix.checked import non_defaults, validate
from llmunix.specs import cache as spec_cache
from llmunix.specs.cache import CACHE_FILE, MAGIC, read_cache
from llmunix.specs.models import LlmunixSettings
from llmunix.specs.registry import boot, load_registry
from llmunix.specs.scopes import ScopeDir
from tests.support import agent_text, new_workspace, run_cli, write_spec

FIXTURES = Path(__file__).parent / "fixtures"

RULED = agent_text(
    "ruled", tools="Read, Bash(git status:*), Edit(src/**), mcp__clock",
    extra="disallowedTools: Bash(rm:*), WebFetch\nmodel: sonnet\npermissionMode: plan\n"
          "skills: [notes]\ncolor: blue\nmcpServers:\n  - clock:\n      command: clock-server\n"
          "      args: [--utc]\n      env: {TZ: UTC}\n"
          "llmunix:\n  max_turns: 7\n  budget_usd: 0.5\n  models: [a, b]\n  constraints:\n"
          "    write_paths: ['out/**']\n    allowed_extensions: [md, txt]\n"
          "    deny_commands: ['^curl']\n")
TOOL = ("---\nname: count\ndescription: Count.\ninput:\n  path: {type: string, format: path, "
        "access: read}\n  mode: {type: string, enum: [a, b], default: a}\n"
        "command: [wc, -l, '{path}']\ntimeout: 5\ndeterministic: true\n---\nCounts lines.\n")


def rich_workspace(root: Path):
    """Every dialect and field the parser knows: the shipped specs, the Claude Code corpus (in
    sub-folders too), the dialect fixtures, rules, MCP servers, settings, skills, commands, a
    broken file and warnings."""
    ws = new_workspace(root)
    shutil.copytree(FIXTURES / "claude_corpus", ws.claude_agents_dir, dirs_exist_ok=True)
    for f in (FIXTURES / "dialects").glob("*.md"):
        folder = ws.system_tools_dir if "tool" in f.name else ws.user_agents_dir
        shutil.copy(f, folder / f.name)
    write_spec(ws.user_agents_dir, "ruled.md", RULED)
    write_spec(ws.user_agents_dir, "broken.md", "---\nname: broken\ntools: [\n---\nx\n")
    write_spec(ws.system_tools_dir, "count.md", TOOL)
    write_spec(ws.root / "skills" / "notes", "SKILL.md",
               "---\nname: notes\ndescription: Take notes.\nallowed-tools: Read, Write\n---\nDo.\n")
    write_spec(ws.root / "commands" / "docs", "sum.md",
               "---\ndescription: Sum up.\nargument-hint: [file]\nmodel: haiku\n---\nSum $1.\n")
    proj = ws.ensure_project("p1")
    write_spec(proj.agents_dir, "ruled.md", RULED.replace("Do the work.", "Project ruled."))
    return ws


def registries(report):
    return [report.registry, *report.projects.values()]


def same_reports(a, b) -> None:
    for ra, rb in zip(registries(a), registries(b), strict=True):
        for kind in ("agents", "tools", "skills", "commands"):
            left, right = getattr(ra, kind), getattr(rb, kind)
            assert list(left) == list(right)
            for name in left:
                assert left[name] == right[name], (kind, name)
                assert type(left[name].path) is type(right[name].path)
        assert ra.overrides == rb.overrides
        assert ra.diagnostics == rb.diagnostics
    assert a.diagnostics == b.diagnostics


def test_specs_from_the_cache_equal_the_parsed_ones(tmp_path, monkeypatch):
    ws = rich_workspace(tmp_path / "ws")
    parsed = boot(ws)
    assert any(d.severity == "error" for d in parsed.diagnostics)  # the broken file
    assert parsed.registry.agents["ruled"].rules and parsed.registry.agents["ruled"].mcp_servers
    assert read_cache(ws.root / CACHE_FILE)

    def no_parsing(self, path):
        raise AssertionError(f"parsed again: {path}")

    monkeypatch.setattr(ScopeDir, "load", no_parsing)  # every file must come from the cache
    cached = boot(ws)
    same_reports(parsed, cached)
    ruled = cached.registry.agents["ruled"]
    assert ruled.settings.constraints.allowed_extensions == [".md", ".txt"]
    assert ruled.settings == parsed.registry.agents["ruled"].settings
    assert load_registry(ws, ws.project("p1")).agents["ruled"].prompt == "Project ruled."


def test_boot_json_is_the_same_from_the_cache(tmp_path):
    ws = rich_workspace(tmp_path / "ws")
    first = run_cli("boot", "--json", cwd=ws.root)
    assert (ws.root / CACHE_FILE).is_file()
    again = run_cli("boot", "--json", cwd=ws.root)
    assert first.returncode == again.returncode == 1  # the broken file
    assert first.stdout == again.stdout
    assert json.loads(again.stdout)["agents"]
    table, table_again = run_cli("boot", cwd=ws.root), run_cli("boot", cwd=ws.root)
    assert table.stdout == table_again.stdout


def test_edited_added_and_removed_files_are_read_again(tmp_path):
    ws = new_workspace(tmp_path / "ws")
    boot(ws)
    nested = write_spec(ws.claude_agents_dir / "team" / "deep", "helper.md", agent_text("helper"))
    assert "helper" in boot(ws).registry.agents  # added, in a sub-folder
    nested.write_text(agent_text("helper", tools="Read, no-such-tool"))
    report = boot(ws)
    assert "helper" not in report.registry.agents and not report.ok
    nested.write_text(agent_text("helper", body="Other words."))
    os.utime(nested, ns=(1, 1))  # an old modification time: the change time still differs
    assert boot(ws).registry.agents["helper"].prompt == "Other words."
    nested.unlink()
    assert "helper" not in boot(ws).registry.agents
    assert not any("helper" in key[0] for key in read_cache(ws.root / CACHE_FILE))


def damaged(path: Path) -> list[bytes]:
    good = path.read_bytes()
    header = good[:good.index(b"\n", len(MAGIC)) + 1]
    body = good[len(header) + 9:]
    return [
        b"",
        b"not a cache at all",
        good[: len(good) // 2],  # truncated
        good[:-1] + bytes([good[-1] ^ 1]),  # one bit flipped: the checksum disagrees
        MAGIC + b"0.0.0+specs.1 py2.7 00000000\n" + good[len(header):],  # an older format
        header + b"%08x\n" % 0 + body,  # a wrong checksum
        *(header + b"%08x\n" % __import__("zlib").crc32(p) + p  # ours, but of another shape
          for p in (marshal.dumps([1, 2]), marshal.dumps({("x", "agent", "system"): 5}),
                    marshal.dumps({k: (v[0], ("short",), ()) for k, v in
                                   marshal.loads(body).items()}))),
    ]


@pytest.mark.parametrize("case", range(9))
def test_a_damaged_or_foreign_cache_is_ignored_and_rebuilt(tmp_path, case):
    ws = rich_workspace(tmp_path / "ws")
    fresh = boot(ws)
    cache = ws.root / CACHE_FILE
    bad = damaged(cache)[case]
    cache.write_bytes(bad)
    same_reports(fresh, boot(ws))
    assert cache.read_bytes() != bad or case >= 6  # rewritten (a misshapen entry is re-parsed)
    assert read_cache(cache)
    same_reports(fresh, boot(ws))


def test_an_old_pickle_cache_is_never_read_and_goes(tmp_path):
    ws = new_workspace(tmp_path / "ws")
    old = ws.root / ".llmunix" / "spec-cache.pickle"
    old.parent.mkdir(parents=True, exist_ok=True)
    old.write_bytes(b"\x80\x05 would run code if unpickled")
    assert boot(ws).ok
    assert not old.exists()


def test_a_value_the_cache_cannot_hold_is_parsed_each_time(tmp_path, monkeypatch):
    ws = new_workspace(tmp_path / "ws")
    write_spec(ws.system_tools_dir, "dated.md", TOOL.replace("name: count", "name: dated")
               .replace("default: a}", "default: a, examples: [2024-01-02]}"))
    first = boot(ws).registry.tools["dated"]
    assert first.input_schema["properties"]["mode"]["examples"][0].year == 2024
    cache = ws.root / CACHE_FILE
    assert not any("dated" in key[0] for key in read_cache(cache))
    written = cache.stat().st_mtime_ns
    assert boot(ws).registry.tools["dated"] == first
    assert cache.stat().st_mtime_ns == written  # nothing new to store: not written again


def test_a_read_only_workspace_boots_without_the_cache(tmp_path, monkeypatch):
    ws = new_workspace(tmp_path / "ws")

    def refuse(path, data):
        raise PermissionError(13, "read-only", str(path))

    monkeypatch.setattr(spec_cache.os, "replace", refuse)
    assert boot(ws).ok
    assert not (ws.root / CACHE_FILE).exists()
    assert not list((ws.root / ".llmunix").glob(".spec-cache*"))  # no temporary file left


@pytest.mark.parametrize("settings, shown", [
    ({}, {}), ({"max_turns": 3}, {"max_turns": 3}),
    ({"constraints": {"read_only": True}}, {"constraints": {"read_only": True}}),
    ({"constraints": {"write_paths": ["a/**"], "deny_commands": ["^x"]}, "models": ["m"]},
     {"constraints": {"write_paths": ["a/**"], "deny_commands": ["^x"]}, "models": ["m"]}),
    ({"budget_usd": 0.0, "temperature": 1.5, "constraints": {"max_file_size_mb": 2}},
     {"budget_usd": 0.0, "temperature": 1.5, "constraints": {"max_file_size_mb": 2.0}}),
    ({"constraints": {"read_only": False}, "max_turns": None}, {}),  # given, but the defaults
])
def test_settings_in_boot_json_are_the_non_defaults(settings, shown):
    assert non_defaults(validate(LlmunixSettings, settings)) == shown


def library_mtime(ws) -> int:
    return ws.smart_library_path.stat().st_mtime_ns


def test_smart_library_is_rewritten_only_when_something_changed(tmp_path):
    ws = new_workspace(tmp_path / "ws")
    assert run_cli("boot", cwd=ws.root).returncode == 0
    text, stamp = ws.smart_library_path.read_text(), library_mtime(ws)
    assert run_cli("boot", cwd=ws.root).returncode == 0
    assert library_mtime(ws) == stamp  # nothing changed: not even rendered

    write_spec(ws.user_agents_dir, "scribe.md", agent_text("scribe"))
    run_cli("boot", cwd=ws.root)
    assert "| scribe | user |" in ws.smart_library_path.read_text()

    ws.smart_library_path.write_text("edited by hand\n")
    run_cli("boot", cwd=ws.root)
    assert "| scribe | user |" in ws.smart_library_path.read_text()  # made again

    learned = ws.project("default").long_term_dir / "execution_trace_water-plants_v1.md"
    learned.parent.mkdir(parents=True, exist_ok=True)
    learned.write_text("---\ngoal: water the plants\ngoal_signature: water plants\n"
                       "confidence: 0.9\n---\n# Steps\n")
    run_cli("boot", cwd=ws.root)
    assert "| water the plants | default |" in ws.smart_library_path.read_text()
    assert text != ws.smart_library_path.read_text()
