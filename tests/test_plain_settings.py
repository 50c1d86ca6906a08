"""An agent from the spec cache keeps its `llmunix:` settings as their plain form until they are
read: what it shows (`boot --json`, the network check of a run's header) and what it builds on
first read are what the parser makes; an edit, a stored value of another shape and a broken
file are all seen as without the cache."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest

from llmunix.checked import non_defaults
from llmunix.specs.cache import CACHE_FILE, read_cache, write_cache
from llmunix.specs.models import PLAIN_SETTINGS, LlmunixSettings, settings_shown
from llmunix.specs.registry import boot, load_registry
from tests.support import agent_text, new_workspace, run_cli, write_spec

BLOCKS = [
    "",
    "llmunix:\n  max_turns: 3\n",
    "llmunix:\n  constraints:\n    read_only: true\n    network: true\n",
    "llmunix:\n  models: [m, n]\n  constraints:\n    write_paths: ['a/**']\n"
    "    deny_commands: ['^x']\n    allowed_extensions: [md]\n",
    "llmunix:\n  budget_usd: 0.0\n  temperature: 1.5\n  constraints:\n    max_file_size_mb: 2\n",
    "llmunix:\n  max_turns: null\n  constraints:\n    read_only: false\n",  # the defaults
]


def cached_agent(ws, name: str = "a"):
    """The agent as the second boot gets it: from the cache."""
    parsed = boot(ws).registry.agents[name]
    assert PLAIN_SETTINGS not in vars(parsed)  # parsed: real settings
    return parsed, boot(ws).registry.agents[name]


@pytest.mark.parametrize("block", BLOCKS)
def test_plain_settings_show_and_build_what_the_parser_made(tmp_path, block):
    ws = new_workspace(tmp_path / "ws")
    write_spec(ws.user_agents_dir, "a.md", agent_text("a", extra=block))
    parsed, cached = cached_agent(ws)
    assert PLAIN_SETTINGS in vars(cached) and "settings" not in vars(cached)
    assert settings_shown(cached) == non_defaults(parsed.settings)
    assert cached.opens_network == parsed.settings.constraints.network
    assert "settings" not in vars(cached)  # neither built them
    assert isinstance(cached.settings, LlmunixSettings)
    assert cached.settings == parsed.settings and cached == parsed
    assert cached.settings is cached.settings  # built once, then kept
    assert settings_shown(cached) == non_defaults(parsed.settings)


def test_built_settings_are_the_truth_once_read(tmp_path):
    ws = new_workspace(tmp_path / "ws")
    write_spec(ws.user_agents_dir, "a.md", agent_text("a", extra=BLOCKS[1]))
    _, cached = cached_agent(ws)
    cached.settings.max_turns = 9
    cached.settings.constraints.network = True
    assert settings_shown(cached) == {"max_turns": 9, "constraints": {"network": True}}
    assert cached.opens_network


def test_copies_of_a_cached_agent_have_its_settings(tmp_path):
    ws = new_workspace(tmp_path / "ws")
    write_spec(ws.user_agents_dir, "a.md", agent_text("a", extra=BLOCKS[3]))
    parsed, cached = cached_agent(ws)
    assert copy.copy(cached).settings == parsed.settings
    assert copy.deepcopy(cached) == parsed
    renamed = dataclasses.replace(cached, name="b")
    assert renamed.settings == parsed.settings and renamed.name == "b"


def test_an_edit_after_the_cache_was_written_is_seen(tmp_path):
    ws = new_workspace(tmp_path / "ws")
    spec = write_spec(ws.user_agents_dir, "a.md", agent_text("a", extra=BLOCKS[1]))
    boot(ws)
    boot(ws)  # the cache holds it, stamp and all
    spec.write_text(agent_text("a", extra="llmunix:\n  max_turns: 12\n  constraints:\n"
                                          "    network: true\n"))
    agent = load_registry(ws).agents["a"]
    assert settings_shown(agent) == {"max_turns": 12, "constraints": {"network": True}}
    assert agent.opens_network and agent.settings.max_turns == 12
    again = boot(ws).registry.agents["a"]  # now from the cache, with the new values
    assert PLAIN_SETTINGS in vars(again) and settings_shown(again)["max_turns"] == 12


@pytest.mark.parametrize("damage", [
    lambda s: {k: v for k, v in s.items() if k != "max_turns"},  # a field missing
    lambda s: {**s, "surprise": 1},  # a field more
    lambda s: {**s, "constraints": {"read_only": True}},  # nested fields missing
    lambda s: {**s, "constraints": None},
    lambda s: ["not", "a", "dict"],
])
def test_stored_settings_of_another_shape_mean_the_file_is_parsed(tmp_path, damage):
    ws = new_workspace(tmp_path / "ws")
    write_spec(ws.user_agents_dir, "a.md", agent_text("a", extra=BLOCKS[2]))
    parsed = boot(ws).registry.agents["a"]
    path = ws.root / CACHE_FILE
    entries = read_cache(path)
    from llmunix.specs import plain

    where = plain._FIELDS["agent"].index("settings")
    for key, (stamp, row, problems) in list(entries.items()):
        if key[0].endswith("a.md"):
            row = (*row[:where], damage(row[where]), *row[where + 1:])
            entries[key] = (stamp, row, problems)
    write_cache(path, entries)
    again = boot(ws).registry.agents["a"]
    assert PLAIN_SETTINGS not in vars(again)  # parsed again, not taken from the cache
    assert again == parsed and settings_shown(again) == non_defaults(parsed.settings)


def test_a_broken_file_is_still_reported_beside_cached_agents(tmp_path):
    ws = new_workspace(tmp_path / "ws")
    write_spec(ws.user_agents_dir, "a.md", agent_text("a", extra=BLOCKS[3]))
    write_spec(ws.user_agents_dir, "broken.md", "---\nname: broken\nllmunix:\n  max_turns: -1\n"
                                                "---\nx\n")
    first = run_cli("boot", "--json", cwd=ws.root)
    again = run_cli("boot", "--json", cwd=ws.root)
    assert first.returncode == again.returncode == 1
    assert first.stdout == again.stdout
    report = json.loads(again.stdout)
    shown = {a["name"]: a["settings"] for a in report["agents"]}
    assert shown["a"]["constraints"]["write_paths"] == ["a/**"] and "broken" not in shown
    assert any("broken.md" in d["path"] and d["severity"] == "error"
               for d in report["diagnostics"])
