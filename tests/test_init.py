"""`llmunix init`: the layout, the first commit, and never overwriting a user's file."""

from __future__ import annotations

import git

from llmunix.workspace.config import Config, default_config_text, parse_config
from tests.support import run_cli


def test_init_creates_layout_and_first_commit(tmp_path):
    target = tmp_path / "ws"
    result = run_cli("init", str(target), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for rel in (
        "llmunix.toml",
        "system/agents/SystemAgent.md",
        "system/agents/MemoryConsolidationAgent.md",
        "system/memory_log.md",
        "system/SmartLibrary.md",
        "agents",
        "projects/default/agents",
        "projects/default/tools",
        "projects/default/workspace",
        "projects/default/output",
        "projects/default/memory/short_term",
        "projects/default/memory/long_term",
    ):
        assert (target / rel).exists(), rel
    assert len(list((target / "system" / "tools").glob("*.md"))) >= 2
    repo = git.Repo(target)
    assert [c.message.strip() for c in repo.iter_commits()] == ["llmunix init"]
    assert not repo.is_dirty(untracked_files=True)


def test_init_into_non_empty_folder_stops_and_names_what_exists(tmp_path):
    target = tmp_path / "ws"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    result = run_cli("init", str(target), cwd=tmp_path)
    assert result.returncode == 1
    assert "is not empty" in result.stderr and "notes.txt" in result.stderr
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]


def test_init_force_merges_and_keeps_existing_files(tmp_path):
    target = tmp_path / "ws"
    (target / "system" / "agents").mkdir(parents=True)
    mine = target / "system" / "agents" / "SystemAgent.md"
    mine.write_text("---\nname: system-agent\ndescription: mine\n---\nMy own.\n")
    result = run_cli("init", str(target), "--force", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert mine.read_text().endswith("My own.\n")
    assert "kept system/agents/SystemAgent.md" in result.stdout
    assert (target / "llmunix.toml").is_file()


def test_init_example_installs_project(tmp_path):
    result = run_cli("init", str(tmp_path / "ws"), "--example", "hello-notes", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "ws" / "projects" / "hello-notes" / "workspace").is_dir()
    unknown = run_cli("init", str(tmp_path / "ws2"), "--example", "nope", cwd=tmp_path)
    assert unknown.returncode == 1 and "hello-notes" in unknown.stderr


def test_commands_outside_a_workspace_say_how_to_fix_it(tmp_path):
    result = run_cli("boot", cwd=tmp_path)
    assert result.returncode == 1
    assert "not inside an llmunix workspace" in result.stderr
    assert "llmunix init" in result.stderr
    assert "Traceback" not in result.stderr


def test_home_option_and_env(tmp_path):
    run_cli("init", str(tmp_path / "ws"), cwd=tmp_path)
    by_flag = run_cli("--home", str(tmp_path / "ws"), "agents", "list", cwd=tmp_path)
    assert by_flag.returncode == 0 and "system-agent" in by_flag.stdout
    by_env = run_cli("agents", "list", cwd=tmp_path, env={"LLMUNIX_HOME": str(tmp_path / "ws")})
    assert by_env.returncode == 0 and "system-agent" in by_env.stdout
    wrong = run_cli("--home", str(tmp_path), "boot", cwd=tmp_path)
    assert wrong.returncode == 1 and "not an llmunix workspace" in wrong.stderr


def test_default_config_template_matches_model_defaults(tmp_path):
    assert parse_config(default_config_text(), tmp_path / "llmunix.toml") == Config()


def test_config_errors_name_file_and_line(tmp_path):
    ws = tmp_path / "ws"
    run_cli("init", str(ws), cwd=tmp_path)
    (ws / "llmunix.toml").write_text("[limits]\nmax_turns = 'many'\n")
    result = run_cli("boot", cwd=ws)
    assert result.returncode == 1
    assert "llmunix.toml:2" in result.stderr and "limits.max_turns" in result.stderr


def test_version_and_module_entry(tmp_path):
    import subprocess
    import sys

    from llmunix import __version__

    assert run_cli("--version", cwd=tmp_path).stdout.strip() == f"llmunix {__version__}"
    module = subprocess.run([sys.executable, "-m", "llmunix", "--version"], capture_output=True,
                            text=True, check=True)
    assert module.stdout.strip() == f"llmunix {__version__}"
