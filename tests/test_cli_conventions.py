"""The conventions a command-line user expects, through the real console script: -h, exit codes,
`run -` and piped input, the user config and LLMUNIX_* variables, shell completion evaluated in
real bash and zsh, `llmunix log` columns, readable `agents show`, `tools run` saying where."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from llmunix.errors import EXIT_NO_RUNTIME, EXIT_USAGE
from llmunix.trace.markdown import find_traces, read_trace
from tests.scripted.openai_server import reply, text
from tests.support import LLMUNIX, agent_text, new_workspace, require, run_cli, write_spec

WRITER = "You are the writer. WRITER-MARKER."


@pytest.fixture()
def ws(tmp_path):
    base = new_workspace(tmp_path / "ws")
    base.config_path.write_text('[memory]\ncommit = false\n', encoding="utf-8")
    write_spec(base.user_agents_dir, "writer.md", agent_text("writer", body=WRITER))
    return base


def openai_args(server) -> list[str]:
    return ["--runtime", "openai", "--base-url", server.url, "--agent", "writer"]


def user_text(server, req) -> str:
    return "\n".join(str(m.get("content")) for m in server.messages(req) if m["role"] == "user")


def only_trace(ws, project: str = "default"):
    (path,) = find_traces(ws.project(project).short_term_dir)
    return read_trace(path)


# ---------------------------------------------------------------- help and exit codes


def test_dash_h_is_help_everywhere(ws):
    for args in (["-h"], ["run", "-h"], ["trace", "html", "-h"], ["memory", "search", "-h"]):
        result = run_cli(*args, cwd=ws.root)
        assert result.returncode == 0, (args, result.stderr)
        assert result.stdout.startswith("Usage: llmunix"), args


def test_usage_errors_exit_2_and_no_runtime_its_own_code(ws, tmp_path):
    assert run_cli("run", cwd=ws.root).returncode == EXIT_USAGE  # missing goal (Click)
    assert run_cli("no-such-command", cwd=ws.root).returncode == EXIT_USAGE
    bad = run_cli("run", "x", "--output-format", "yaml", cwd=ws.root)
    assert bad.returncode == EXIT_USAGE and "unknown output format 'yaml'" in bad.stderr
    env = {"HOME": str(tmp_path), "ANTHROPIC_API_KEY": "", "ANTHROPIC_BASE_URL": "",
           "ANTHROPIC_AUTH_TOKEN": "", "CLAUDE_CODE_OAUTH_TOKEN": ""}
    none = run_cli("run", "anything", "--runtime", "claude", cwd=ws.root, env=env)
    assert none.returncode == EXIT_NO_RUNTIME == 4 and "no Claude credentials" in none.stderr
    assert EXIT_USAGE != EXIT_NO_RUNTIME


# ---------------------------------------------------------------- stdin


def test_run_dash_reads_the_goal_from_stdin(ws, openai_server):
    openai_server.enqueue("done")
    result = run_cli("run", "-", *openai_args(openai_server), cwd=ws.root,
                     input="write the summary of notes.md\n")
    assert result.returncode == 0, result.stderr
    [req] = openai_server.model_requests()
    assert user_text(openai_server, req) == "write the summary of notes.md"
    assert only_trace(ws).meta["goal"] == "write the summary of notes.md"


def test_piped_input_reaches_the_model_as_context(ws, openai_server):
    openai_server.enqueue("summarized")
    notes = "# Notes\nPIPED-NOTES-42: ship on Friday\n"
    result = run_cli("run", "summarize this", *openai_args(openai_server), cwd=ws.root,
                     input=notes)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "summarized"
    [req] = openai_server.model_requests()
    sent = user_text(openai_server, req)
    assert sent.startswith("summarize this\n\n<stdin>\n") and sent.endswith("</stdin>")
    assert "PIPED-NOTES-42: ship on Friday" in sent
    trace = only_trace(ws)
    assert trace.meta["goal"] == "summarize this"
    assert trace.meta["piped_input_chars"] == len(notes)


def test_no_goal_on_stdin_is_a_usage_error(ws):
    result = run_cli("run", "-", cwd=ws.root, input="  \n")
    assert result.returncode == EXIT_USAGE and "no goal on standard input" in result.stderr


# ---------------------------------------------------------------- user config and variables


def test_user_config_sits_below_the_workspace_config(ws, openai_server, tmp_path):
    xdg = tmp_path / "xdg"
    write_spec(xdg / "llmunix", "config.toml",
               f'[run]\nruntime = "openai"\nagent = "someone-else"\n\n'
               f'[openai]\nbase_url = "{openai_server.url}"\n\n[limits]\nmax_turns = 7\n')
    ws.config_path.write_text('[run]\nagent = "writer"\n\n[memory]\ncommit = false\n')
    openai_server.enqueue("from the user config")
    result = run_cli("run", "hello", cwd=ws.root, env={"XDG_CONFIG_HOME": str(xdg)})
    assert result.returncode == 0, result.stderr
    [req] = openai_server.model_requests()  # runtime and server from the user config
    assert "WRITER-MARKER" in openai_server.system_prompt(req)  # the workspace's agent wins
    assert only_trace(ws).meta["limits"]["max_turns"] == 7


def test_a_broken_user_config_names_its_file_and_line(ws, tmp_path):
    xdg = tmp_path / "xdg"
    path = write_spec(xdg / "llmunix", "config.toml", '[run]\n\nruntime = "gpt"\n')
    result = run_cli("run", "hello", cwd=ws.root, env={"XDG_CONFIG_HOME": str(xdg)})
    assert result.returncode == 1
    assert f"{path}:3: run.runtime" in result.stderr and "Traceback" not in result.stderr


def test_llmunix_variables_choose_runtime_model_and_project(ws, openai_server):
    openai_server.enqueue("env run", "flag run")
    env = {"LLMUNIX_RUNTIME": "openai", "LLMUNIX_MODEL": "env-model",
           "LLMUNIX_PROJECT": "from-env", "OPENAI_BASE_URL": openai_server.url}
    first = run_cli("run", "hello", "--agent", "writer", cwd=ws.root, env=env)
    assert first.returncode == 0, first.stderr
    assert only_trace(ws, "from-env").meta["model"] == "env-model"
    second = run_cli("run", "hello", "--agent", "writer", "--model", "flag-model",
                     "--project", "flagged", cwd=ws.root, env=env)
    assert second.returncode == 0, second.stderr
    models = [r.body["model"] for r in openai_server.model_requests()]
    assert models == ["env-model", "flag-model"]  # a flag beats the variable
    assert only_trace(ws, "flagged").meta["project"] == "flagged"
    bad = run_cli("run", "hello", cwd=ws.root, env={"LLMUNIX_RUNTIME": "gpt"})
    assert bad.returncode == 1 and "$LLMUNIX_RUNTIME" in bad.stderr


# ---------------------------------------------------------------- completion


def completion_env(ws) -> dict[str, str]:
    import os

    return {**os.environ, "PATH": f"{Path(LLMUNIX).parent}:{os.environ['PATH']}",
            "LLMUNIX_HOME": str(ws.root), "XDG_CONFIG_HOME": "/nonexistent"}


def _seed_completion_targets(ws) -> str:
    write_spec(ws.user_agents_dir, "wrangler.md", agent_text("wrangler"))
    ws.ensure_project("alpha")
    ws.ensure_project("albatross")
    folder = ws.project("alpha").short_term_dir
    folder.mkdir(parents=True, exist_ok=True)
    trace_id = "20260101T000000000Z_first-run"
    (folder / f"{trace_id}.md").write_text("---\ntrace_id: x\n---\n", encoding="utf-8")
    write_spec(ws.root / ".claude" / "commands", "review.md", "Review the diff.\n")
    return trace_id


def test_bash_completion_completes_agents_projects_and_trace_ids(ws):
    trace_id = _seed_completion_targets(ws)
    script = run_cli("completion", "bash", cwd=ws.root)
    assert script.returncode == 0 and "complete " in script.stdout
    probe = script.stdout + """
complete_words() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1));
  _llmunix_completion llmunix; printf '%s\\n' "${COMPREPLY[@]}"; echo ---; }
complete_words llmunix agents show wr
complete_words llmunix run x --project al
complete_words llmunix trace show 2026
complete_words llmunix tr
complete_words llmunix run /re
"""
    done = subprocess.run(["bash", "--norc", "-c", probe], capture_output=True, text=True,
                          env=completion_env(ws), timeout=60)
    assert done.returncode == 0, done.stderr
    agents, projects, traces, commands, slash, _ = done.stdout.split("---\n")
    assert agents.split() == ["wrangler", "writer"]
    assert projects.split() == ["albatross", "alpha"]
    assert traces.split() == [trace_id]
    assert commands.split() == ["trace"]
    assert slash.split() == ["/review"]


def test_zsh_completion_script_evaluates_and_completes(ws):
    require("zsh", shutil.which("zsh") is not None, "apt-get install zsh")
    _seed_completion_targets(ws)
    script = run_cli("completion", "zsh", cwd=ws.root)
    assert script.returncode == 0 and "compdef _llmunix_completion llmunix" in script.stdout
    # compsys proper needs a terminal; its entry points are stubbed to print what the
    # generated function hands them, the rest is the real script in real zsh.
    probe = """
compdef() { print -r -- "compdef $*" }
_arguments() { print -r -- "$@" }
""" + script.stdout + """
words=(llmunix agents show wr); CURRENT=4; _llmunix_completion
words=(llmunix trace html --project al); CURRENT=5; _llmunix_completion
"""
    done = subprocess.run(["zsh", "-f", "-c", probe], capture_output=True, text=True,
                          env=completion_env(ws), timeout=60)
    assert done.returncode == 0, done.stderr
    assert "compdef _llmunix_completion llmunix" in done.stdout
    assert '"wrangler"' in done.stdout and '"writer"' in done.stdout
    assert '"alpha"' in done.stdout and '"albatross"' in done.stdout


def test_install_completion_writes_the_shell_rc(ws, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {**completion_env(ws), "HOME": str(home), "SHELL": "/bin/bash"}
    # "; true": bash stays the parent (no exec), so the shell is detected as bash
    done = subprocess.run(["bash", "--norc", "-c", "llmunix --install-completion; true"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "completion" in (home / ".bashrc").read_text()


# ---------------------------------------------------------------- log, agents show, tools run


def test_log_shows_model_tokens_and_duration_and_keeps_ids_whole(tmp_path, openai_server):
    base = new_workspace(tmp_path / "logged")
    write_spec(base.user_agents_dir, "writer.md", agent_text("writer", body=WRITER))
    openai_server.enqueue(reply(text("done"), usage={"prompt_tokens": 1234,
                                                      "completion_tokens": 56}))
    ran = run_cli("run", "a goal long enough to make a narrow table wrap its columns and ids",
                  *openai_args(openai_server), "--model", "tiny-model", cwd=base.root)
    assert ran.returncode == 0, ran.stderr
    log = run_cli("log", cwd=base.root, env={"COLUMNS": "60"})
    assert log.returncode == 0, log.stderr
    header, row = log.stdout.splitlines()
    assert header.split() == ["date", "trace", "status", "mode", "model", "tokens", "time",
                              "cost", "goal"]
    trace = only_trace(base)
    assert trace.trace_id in row  # whole, on one line
    assert " tiny-model " in row and " 1,234/56 " in row and row.endswith("columns and ids")
    [entry] = json.loads(run_cli("log", "--json", cwd=base.root).stdout)
    assert entry["model"] == "tiny-model" and entry["input_tokens"] == 1234
    assert entry["output_tokens"] == 56 and entry["duration_s"] > 0
    assert entry["trace_id"] == trace.trace_id


def test_agents_show_is_readable(ws):
    write_spec(ws.user_agents_dir, "careful.md", agent_text(
        "careful", tools="Read, Write",
        extra="llmunix:\n  max_turns: 5\n  constraints:\n    write_paths: [\"notes/**\"]\n"))
    result = run_cli("agents", "show", "careful", cwd=ws.root)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "['" not in result.stdout and "{'" not in result.stdout and "None" not in result.stdout
    assert any(line.split() == ["tools", "Read,", "Write"] for line in lines)
    assert any(line.split() == ["max", "turns", "5"] for line in lines)
    assert any(line.split() == ["constraint", "write", "paths", "notes/**"] for line in lines)


def test_tools_run_says_where_it_runs_and_takes_a_project(ws):
    result = run_cli("tools", "run", "file-tree", "--project", "elsewhere", cwd=ws.root)
    assert result.returncode == 0, result.stderr
    assert "in project elsewhere, folder projects/elsewhere/workspace/" in result.stderr
    assert ws.project("elsewhere").workspace_dir.is_dir()
