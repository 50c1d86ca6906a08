"""What a command loads and leaves behind: a replayed goal imports no model client, no HTTP or
TLS stack and no event loop; `--version` not even the command modules; the process exits at
once with its output flushed, and `boot --json` is one JSON document either way."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.examples import hello_notes
from tests.support import new_workspace, run_cli

# Runs the CLI in-process and writes the modules it imported when it exits (exit handlers run
# before llmunix ends the process).
PROBE = r"""
import atexit, json, os, sys
out = sys.argv[1]
def children():
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            cmd = open(f"/proc/{pid}/cmdline").read().replace(chr(0), " ").strip()
            ppid = int(stat[1])
        except (OSError, IndexError, ValueError):  # a process that ended meanwhile
            continue
        if ppid == os.getpid():
            found.append(cmd)
    return found
def report():
    data = {"modules": sorted(sys.modules), "children": children()}
    with open(out, "w") as f:
        json.dump(data, f)
atexit.register(report)
sys.argv = ["llmunix", *sys.argv[2:]]
from llmunix.cli.main import main
main()
"""

NEVER_ON_A_REPLAY = ("openai", "anthropic", "claude_agent_sdk", "httpx", "httpcore", "ssl",
                     "asyncio", "watchdog", "prompt_toolkit", "jsonschema", "opentelemetry",
                     "git", "gitdb", "filelock", "typer", "click", "pydantic", "pydantic_core",
                     "annotated_types", "tomllib")


def probe(tmp_path: Path, cwd: Path, *args: str) -> tuple[dict, subprocess.CompletedProcess]:
    """What the CLI had imported, and which of its child processes were still there, when it
    ended."""
    out = tmp_path / "probe.json"
    done = subprocess.run([sys.executable, "-c", PROBE, str(out), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    return json.loads(out.read_text()), done


def imported(tmp_path: Path, cwd: Path, *args: str) -> tuple[set[str], subprocess.CompletedProcess]:
    found, done = probe(tmp_path, cwd, *args)
    return {m.split(".")[0] for m in found["modules"]}, done


@pytest.fixture
def notes(tmp_path):
    return new_workspace(tmp_path / "ws", example=hello_notes.PROJECT)


def test_a_replay_imports_no_model_client_no_network_stack_no_event_loop(tmp_path, notes):
    # a workspace's first command parses its specs (YAML) and checks them (pydantic); from then
    # on both come from the caches in .llmunix/
    assert run_cli("boot", cwd=notes.root).returncode == 0
    modules, done = imported(tmp_path, notes.root, "run", hello_notes.GOAL, "--project",
                             hello_notes.PROJECT)
    assert done.returncode == 0, done.stderr
    assert "mode follower" in done.stderr  # it was a replay
    assert (notes.project(hello_notes.PROJECT).workspace_dir / "action_items.md").is_file()
    assert sorted(modules & set(NEVER_ON_A_REPLAY)) == []


@pytest.mark.parametrize("command", [["memory", "consolidate"], ["log"], ["boot", "--json"]])
def test_short_commands_load_no_typer_and_no_pydantic(tmp_path, command):
    root = tmp_path / "ws"
    assert run_cli("init", str(root), cwd=tmp_path).returncode == 0  # a git repository too
    assert run_cli("boot", cwd=root).returncode == 0  # specs read and checked once
    modules, done = imported(tmp_path, root, *command)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()  # it did its work
    assert sorted(modules & {"typer", "click", "pydantic", "pydantic_core", "git"}) == []


def test_a_run_leaves_no_process_behind(tmp_path, notes):
    found, done = probe(tmp_path, notes.root, "run", hello_notes.GOAL, "--project",
                        hello_notes.PROJECT)
    assert done.returncode == 0, done.stderr
    assert "run " in subprocess.run(["git", "log", "-1", "--format=%s"], cwd=notes.root,
                                    capture_output=True, text=True).stdout  # it committed
    assert found["children"] == []  # no `git cat-file` (or anything) outlives the CLI


def test_a_learner_run_still_uses_the_event_loop(tmp_path, notes, openai_server):
    hello_notes.script(openai_server)
    modules, done = imported(
        tmp_path, notes.root, "run", hello_notes.GOAL, "--project", hello_notes.PROJECT,
        "--mode", "learner", "--runtime", "openai", "--model", hello_notes.MODEL,
        "--base-url", openai_server.url)
    assert done.returncode == 0, done.stderr
    assert {"asyncio", "httpx2"} <= modules
    assert "openai" not in modules  # its own wire (runtimes/openai_http.py), not the package


def test_version_imports_no_command_module(tmp_path):
    modules, done = imported(tmp_path, tmp_path, "--version")
    assert done.returncode == 0 and done.stdout.startswith("llmunix ")
    assert not modules & {"pydantic", "yaml", "rich", "git", "asyncio", "openai"}


def test_output_is_complete_when_the_process_ends_at_once(notes):
    # many lines through a pipe, then the immediate exit: nothing may be lost
    result = run_cli("agents", "list", "--json", cwd=notes.root)
    assert result.returncode == 0, result.stderr
    agents = json.loads(result.stdout)
    assert {"system-agent", "writer"} <= {a["name"] for a in agents}


def test_boot_json_is_one_document_for_a_program(notes):
    result = run_cli("boot", "--json", cwd=notes.root)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1  # compact when not printed to a terminal
    report = json.loads(lines[0])
    assert report["ok"] is True and report["agents"]
    assert all(not a["path"].startswith("/") for a in report["agents"])  # workspace-relative


@pytest.mark.parametrize("block", [
    {}, {"max_turns": 3}, {"budget_usd": 0.5, "timeout_s": 9.0},
    {"constraints": {"read_only": True}},
    {"constraints": {"write_paths": ["out/**"], "deny_commands": ["rm *"]}, "max_turns": 2},
    {"constraints": {"allowed_extensions": [".md"], "max_file_size_mb": 1.0}},
])
def test_boot_reports_agent_settings_that_differ_from_the_defaults(block):
    from llmunix.checked import non_defaults, validate
    from llmunix.specs.models import LlmunixSettings

    assert non_defaults(validate(LlmunixSettings, block, strict=False)) == block
