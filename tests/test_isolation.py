"""Attacks through `llmunix run`, on both runtimes (the real Claude CLI and the openai loop,
each against its scripted model): a model that tries to write, read, phone home, leak keys,
leave processes behind, change its own rules or delegate where it may not. Each probe has a
canary outside the workspace (or a listener on 127.0.0.1) and asserts the effect did not happen
and what the trace says."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import uuid

import pytest

from llmunix.trace.markdown import find_traces
from tests import test_scenarios as scenarios
from tests.support import agent_text, processes_gone, run_cli, write_spec
from tests.test_scenarios import SECRET, files, only_trace

ws = scenarios.ws  # with conftest's `model`: the two runtimes, as in the common scenarios

pytestmark = pytest.mark.usefixtures("bubblewrap")






def test_bash_is_confined(model, ws, tmp_path, listener):
    write_spec(ws.user_agents_dir, "sheller.md", agent_text("sheller", tools="Bash"))
    port, received = listener
    canary = tmp_path / "canary.txt"
    canary.write_text("untouched\n")
    key = tmp_path / "home-of-someone" / ".ssh" / "id_rsa"
    key.parent.mkdir(parents=True)
    key.write_text("PRIVATE-KEY-CANARY\n")
    config = ws.config_path.read_text()
    mark = f"llmunix-probe-{uuid.uuid4().hex[:10]}"
    egress = (f"python3 -c \"import socket; s=socket.create_connection(('127.0.0.1', {port}), 3);"
              " s.sendall(b'leak'); print('connected')\"")
    model.enqueue(
        model.call("Bash", {"command": f"echo pwned > {canary}; echo done"}, id="c_write"),
        model.call("Bash", {"command": f"cat {key} ~/.ssh/id_rsa"}, id="c_read"),
        model.call("Bash", {"command": egress}, id="c_net"),
        model.call("Bash", {"command": "env"}, id="c_env"),
        model.call("Bash", {"command": f"(setsid bash -c 'exec -a {mark} sleep 60' &); "
                                       f"nohup bash -c 'exec -a {mark}-n sleep 60' "
                                       ">/dev/null 2>&1 & echo started"}, id="c_bg"),
        model.call("Bash", {"command": f"echo '[run]' >> {ws.config_path}; "
                                       f"echo '---' > {ws.user_agents_dir}/evil.md; "
                                       f"ls {ws.root}/.git"}, id="c_rules"),
        "done",
    )
    planted = ws.project("default").agents_dir / "planted.md"  # appears while the run goes
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.write_text(agent_text("planted"))
    result = model.run(ws, "probe the shell", "--agent", "sheller")
    assert result.returncode == 0, result.stderr
    model.assert_script_used()
    assert "sandbox bubblewrap (network off)" in result.stderr  # the run header
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"],
                            cwd=ws.root, text=True, capture_output=True, check=True).stdout
    assert "?? projects/default/agents/planted.md" in status  # the run commit left it alone

    assert canary.read_text() == "untouched\n"  # it wrote into its private /tmp, now gone
    read = model.fed_back("c_read").text
    assert "PRIVATE-KEY-CANARY" not in read and "No such file or directory" in read
    assert "connected" not in model.fed_back("c_net").text and received == []
    env = model.fed_back("c_env").text
    assert SECRET not in env and "API_KEY" not in env and "HOME=/tmp/home" in env
    assert "started" in model.fed_back("c_bg").text and processes_gone(mark)
    assert ws.config_path.read_text() == config
    assert not (ws.user_agents_dir / "evil.md").exists()
    assert "No such file or directory" in model.fed_back("c_rules").text

    trace = only_trace(ws)
    assert trace.meta["sandbox"] == "bubblewrap (network off)"
    steps = {s.fields["call_id"]: s for s in trace.tool_steps()}
    assert [s.tool for s in steps.values()] == ["Bash"] * 6
    assert "No such file or directory" in steps["c_read"].blocks["result"]
    assert SECRET not in trace.path.read_text()


def test_processes_are_refused_when_the_sandbox_cannot_start(model, ws, tmp_path):
    text = ws.config_path.read_text().replace('program = "bwrap"',
                                              'program = "/nonexistent/bwrap"')
    ws.config_path.write_text(text)
    write_spec(ws.user_agents_dir, "sheller.md",
               agent_text("sheller", tools="Bash, word-count, Write"))
    marker = tmp_path / "ran"
    model.enqueue(
        model.call("Bash", {"command": f"touch {marker}"}, id="c_bash"),
        model.call("word-count", {"path": "x.md"}, id="c_tool"),
        model.call("Write", {"file_path": "ok.md", "content": "fine\n"}, id="c_write"),
        "done",
    )
    result = model.run(ws, "try anyway", "--agent", "sheller")
    assert result.returncode == 0, result.stderr
    assert not marker.exists()
    assert (files(ws) / "ok.md").read_text() == "fine\n"  # what starts no process still works
    steps = {s.fields["call_id"]: s for s in only_trace(ws).tool_steps()}
    for call in ("c_bash", "c_tool"):
        step = steps[call]
        assert step.fields["decision"] == "denied"
        assert "bubblewrap ('/nonexistent/bwrap') is not installed" in step.fields["reason"]
        assert "apt-get install bubblewrap" in step.fields["reason"]
        assert 'mode = "off"' in model.fed_back(call).text
    assert steps["c_write"].fields["decision"] == "allowed"


def test_mode_off_is_shown_in_the_header_and_trace(model, ws):
    ws.config_path.write_text(ws.config_path.read_text().replace('mode = "bubblewrap"',
                                                                 'mode = "off"'))
    model.enqueue("nothing to do")
    result = model.run(ws, "hello", "--agent", "solo")
    assert result.returncode == 0, result.stderr
    assert "sandbox off (UNSAFE" in result.stderr
    assert only_trace(ws).meta["sandbox"].startswith("off (UNSAFE")


TOKEN = "tok-7f3a9c2e51"  # a value of a secret-looking variable, typed into the goal as well


def test_secrets_reach_no_output(model, ws):
    """The goal, the model's text, tool inputs and results, in plain, JSON-escaped, URL-encoded
    and base64 forms, and a password in a URL: none of it in --json, the trace, its file name,
    the live view or the commit message."""
    write_spec(ws.user_agents_dir, "sheller.md", agent_text("sheller", tools="Bash, Write"))
    (files(ws) / ".env").write_text(f"API_KEY={SECRET}\n")  # a key the user left there
    (files(ws) / "plain.md").write_text("nothing secret\n")
    b64 = base64.b64encode(f"user:{TOKEN}".encode()).decode()
    model.enqueue(
        model.reply(f"I will use {TOKEN}.",
                    model.call("Bash", {"command": f"echo {b64}; echo {TOKEN} | base64; "
                                                   "echo 'tok-7f3a9c2e51%21'"}, id="c_echo")),
        model.reply(model.call("Bash", {"command": 'echo "db postgres://app:s3cr3t-pw@db/x"'},
                               id="c_url")),
        model.call("Write", {"file_path": "deploy.md", "content": f"token: {TOKEN}\n"}),
        f"done with {TOKEN}",
    )
    env = {**model.env, "SERVICE_TOKEN": TOKEN}
    result = run_cli(*model.command(f"deploy with {TOKEN}", "--agent", "sheller", "--json"),
                     cwd=ws.root, env=env)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[0]["event"] == "run_started" and "[REDACTED]" in events[0]["goal"]
    (trace_path,) = find_traces(ws.project("default").short_term_dir)
    log = subprocess.run(["git", "log", "--format=%B", "-1"], cwd=ws.root, text=True,
                         capture_output=True, check=True).stdout
    outputs = {"--json": result.stdout, "stderr": result.stderr, "trace": trace_path.read_text(),
               "trace name": trace_path.name, "commit": log}
    for where, text in outputs.items():
        assert TOKEN not in text, where
        assert base64.b64encode(TOKEN.encode()).decode()[:12] not in text, where
        assert "s3cr3t-pw" not in text, where
    assert "[REDACTED]" in outputs["trace"] and "[REDACTED]" in log
    # files holding a secret stay on disk, out of git, with a warning naming them
    committed = subprocess.run(["git", "show", "--name-only", "--format=", "HEAD"], cwd=ws.root,
                               text=True, capture_output=True, check=True).stdout.split()
    work = "projects/default/workspace"
    # the run's commit holds only what the run changed: not the files the user left there
    assert f"{work}/plain.md" not in committed and trace_path.name in " ".join(committed)
    assert f"{work}/.env" not in committed and f"{work}/deploy.md" not in committed
    assert (files(ws) / "deploy.md").read_text() == f"token: {TOKEN}\n"
    assert sorted(events[-1]["extra"]["left_out"]) == [f"{work}/deploy.md"]
    assert "postgres://app:[REDACTED]@db/x" in outputs["trace"]


def test_a_refused_delegation_is_a_denial(model, ws):
    write_spec(ws.user_agents_dir, "scribe.md", agent_text("scribe", tools="Write"))
    model.enqueue(
        model.call("Agent", {"subagent_type": "scribe", "description": "write",
                             "prompt": "write x"}, id="c_agent"),
        "could not delegate",
    )
    result = model.run(ws, "delegate", "--agent", "solo")  # solo may use Read, Write only
    assert result.returncode == 0, result.stderr
    trace = only_trace(ws)
    assert [s.kind for s in trace.steps if s.kind.startswith("subagent")] == []
    (step,) = trace.tool_steps()
    assert step.tool in ("Agent", "Task") and step.fields["decision"] == "denied"
    assert "may only use Read, Write" in step.fields["reason"]
    assert model.fed_back("c_agent").is_error


def test_the_claude_cli_keeps_nothing_after_the_run(model, ws, tmp_path):
    if model.runtime != "claude":
        pytest.skip("the Claude CLI's own state")
    temp = tmp_path / "tmp"
    temp.mkdir()
    model.enqueue(model.call("Write", {"file_path": "a.md", "content": "x\n"}), "ok")
    result = run_cli(*model.command("write it", "--agent", "solo"), cwd=ws.root,
                     env={**model.env, "TMPDIR": str(temp)})
    assert result.returncode == 0, result.stderr
    assert (files(ws) / "a.md").read_text() == "x\n"
    assert not (model.home / ".claude" / "projects").exists()
    assert list(temp.glob("llmunix-claude-*")) == []
    leftovers = [p for p in model.home.rglob("*") if p.is_file() and SECRET in p.read_text(
        errors="replace")]
    assert leftovers == []


def test_hard_links_lead_nowhere(model, ws, tmp_path):
    """A hard link planted in the workspace is refused by every file tool (the CLI's own on the
    claude runtime, through the gate), and the model cannot make one to a file outside."""
    write_spec(ws.user_agents_dir, "linker.md",
               agent_text("linker", tools="Read, Write, Edit, Grep, Bash"))
    outside = tmp_path / "outside.txt"
    outside.write_text("OUTSIDE-CANARY\n")
    os.link(outside, files(ws) / "planted.txt")
    model.enqueue(
        model.call("Read", {"file_path": "planted.txt"}, id="c_read"),
        model.call("Write", {"file_path": "planted.txt", "content": "pwned\n"}, id="c_write"),
        model.call("Edit", {"file_path": "planted.txt", "old_string": "OUTSIDE",
                            "new_string": "pwned"}, id="c_edit"),
        model.call("Grep", {"pattern": "CANARY", "path": "planted.txt"}, id="c_grep"),
        model.call("Bash", {"command": f"ln {outside} made.txt"}, id="c_ln"),
        model.call("Bash", {"command": "cat planted.txt; echo x >> planted.txt"}, id="c_cat"),
        "done",
    )
    result = model.run(ws, "use the link", "--agent", "linker")
    assert result.returncode == 0, result.stderr
    assert outside.read_text() == "OUTSIDE-CANARY\n" and outside.stat().st_nlink == 2
    steps = {s.fields["call_id"]: s for s in only_trace(ws).tool_steps()}
    for call in ("c_read", "c_write", "c_edit", "c_grep"):
        assert steps[call].fields["decision"] == "denied", call
        assert "has 2 hard links" in steps[call].fields["reason"], call
        assert "CANARY" not in model.fed_back(call).text
    assert not (files(ws) / "made.txt").exists()
    assert "No such file or directory" in model.fed_back("c_ln").text
    cat = model.fed_back("c_cat").text  # inside the sandbox a hard-linked file is masked
    assert "CANARY" not in cat and "planted.txt: Permission denied" in cat


SORT_TOOL = """---
name: sorter
description: Sort the lines of a file (written without `--`, its argument not declared a path).
input:
  file: string
command: ["sort", "{file}"]
---
Sorts.
"""


PY_WRITER = """---
name: py-writer
description: Write a text to a file (its argument not declared a path).
input:
  target: string
python: write
---
```python
def write(target):
    with open(target, "w") as f:
        f.write("pwned")
    return "written"
```
"""


def test_tool_spec_paths_hold(model, ws, tmp_path):
    """Path arguments of the shipped specs pass the gate before the tool runs; an undeclared
    one (option injection into `sort`) meets the sandbox."""
    write_spec(ws.user_agents_dir, "specs.md",
               agent_text("specs", tools="json-query, csv-summary, word-count, sorter, "
                                         "py-writer"))
    write_spec(ws.project("default").tools_dir, "sorter.md", SORT_TOOL)
    write_spec(ws.project("default").tools_dir, "py-writer.md", PY_WRITER)
    canary = ws.root / "system" / "memory_log.md"
    before = canary.read_text()
    (files(ws) / "data.txt").write_text("b\na\n")
    target = tmp_path / "injected.txt"
    model.enqueue(
        model.call("json-query", {"path": str(ws.config_path)}, id="c_abs"),
        model.call("csv-summary", {"path": "../../../llmunix.toml"}, id="c_up"),
        model.call("word-count", {"path": "--files0-from=/etc/passwd"}, id="c_opt"),
        model.call("sorter", {"file": f"--output={target}"}, id="c_inject"),
        model.call("word-count", {"path": "data.txt"}, id="c_ok"),
        model.call("py-writer", {"target": str(canary)}, id="c_py"),
        "done",
    )
    result = model.run(ws, "paths", "--agent", "specs")
    assert result.returncode == 0, result.stderr
    steps = {s.fields["call_id"]: s for s in only_trace(ws).tool_steps()}
    assert "is outside the workspace" in steps["c_abs"].fields["reason"]
    assert "is outside the workspace" in steps["c_up"].fields["reason"]
    assert "starts with '-'" in steps["c_opt"].fields["reason"]
    for call in ("c_abs", "c_up", "c_opt"):
        assert steps[call].fields["decision"] == "denied"
        assert "[run]" not in model.fed_back(call).text
    assert steps["c_inject"].fields["decision"] == "allowed"  # the sandbox is the backstop:
    assert not target.exists()  # its /tmp is private
    assert model.fed_back("c_ok").text.split()[:3] == ["2", "2", "4"]
    assert canary.read_text() == before  # a read path: read-only inside the sandbox
    assert "Read-only file system" in model.fed_back("c_py").text


def test_permission_rules_are_never_widened(model, ws):
    write_spec(ws.user_agents_dir, "gitter.md",
               agent_text("gitter", tools='"Bash(git status:*), Read(./docs/**)"'))
    (files(ws) / "docs").mkdir()
    (files(ws) / "docs" / "a.md").write_text("doc\n")
    (files(ws) / "private.md").write_text("PRIVATE\n")
    model.enqueue(
        model.call("Bash", {"command": "git status --short"}, id="c_ok"),
        model.call("Bash", {"command": "git status && touch pwned"}, id="c_chain"),
        model.call("Bash", {"command": "touch pwned"}, id="c_other"),
        model.call("Read", {"file_path": "docs/a.md"}, id="c_doc"),
        model.call("Read", {"file_path": "private.md"}, id="c_private"),
        "done",
    )
    result = model.run(ws, "rules", "--agent", "gitter")
    assert result.returncode == 0, result.stderr
    assert not (files(ws) / "pwned").exists()
    steps = {s.fields["call_id"]: s for s in only_trace(ws).tool_steps()}
    assert [steps[c].fields["decision"] for c in ("c_ok", "c_chain", "c_other", "c_doc",
                                                   "c_private")] == \
        ["allowed", "denied", "denied", "allowed", "denied"]
    assert "Bash(git status:*)" in steps["c_chain"].fields["reason"]
    assert "Read(./docs/**)" in steps["c_private"].fields["reason"]
    assert "PRIVATE" not in model.fed_back("c_private").text
    assert "doc" in model.fed_back("c_doc").text


def test_an_agent_may_be_given_the_network(model, ws, listener):
    port, received = listener
    write_spec(ws.user_agents_dir, "netter.md", agent_text(
        "netter", tools="Bash", extra="llmunix:\n  constraints:\n    network: true\n"))
    egress = (f"python3 -c \"import socket; s=socket.create_connection(('127.0.0.1', {port}), 3);"
              " s.sendall(b'hello'); print('connected')\"")
    model.enqueue(model.call("Bash", {"command": egress}, id="c_net"), "done")
    result = model.run(ws, "phone home", "--agent", "netter")
    assert result.returncode == 0, result.stderr
    assert "connected" in model.fed_back("c_net").text and received == [b"hello"]
    assert "network allowed for netter" in result.stderr
    assert only_trace(ws).meta["sandbox"] == "bubblewrap (network off); network allowed for netter"


def test_disallowed_tool_rules_refuse_only_what_they_match(model, ws):
    write_spec(ws.user_agents_dir, "careful.md", agent_text(
        "careful", tools="Bash, Write", extra='disallowedTools: "Bash(rm:*), Edit(keep/**)"\n'))
    (files(ws) / "keep").mkdir()
    (files(ws) / "keep" / "a.md").write_text("kept\n")
    model.enqueue(
        model.call("Bash", {"command": "ls keep && rm keep/a.md"}, id="c_rm"),
        model.call("Write", {"file_path": "keep/a.md", "content": "gone\n"}, id="c_write"),
        model.call("Bash", {"command": "ls keep"}, id="c_ls"),
        "done",
    )
    result = model.run(ws, "tidy", "--agent", "careful")
    assert result.returncode == 0, result.stderr
    assert (files(ws) / "keep" / "a.md").read_text() == "kept\n"
    steps = {s.fields["call_id"]: s for s in only_trace(ws).tool_steps()}
    assert "Bash(rm:*) in disallowedTools" in steps["c_rm"].fields["reason"]
    assert "Edit(keep/**) in disallowedTools" in steps["c_write"].fields["reason"]
    assert steps["c_ls"].fields["decision"] == "allowed"
    assert "a.md" in model.fed_back("c_ls").text


def test_a_sub_agent_runs_bash_in_the_sandbox_with_its_own_rules(model, ws):
    write_spec(ws.user_agents_dir, "boss.md", agent_text("boss", tools="Agent"))
    write_spec(ws.user_agents_dir, "worker.md", agent_text(
        "worker", tools='"Bash(echo:*)"', body="WORKER-MARKER: run commands."))
    model.enqueue(
        model.call("Agent", {"subagent_type": "worker", "description": "run",
                             "prompt": "run it"}, id="c_agent"),
        "worker done",
    )
    model.enqueue(model.call("Bash", {"command": "echo home=$HOME"}, id="c_echo"),
                  model.call("Bash", {"command": "touch made.txt"}, id="c_touch"),
                  "ran", when="WORKER-MARKER")
    result = model.run(ws, "delegate", "--agent", "boss")
    assert result.returncode == 0, result.stderr
    steps = {s.fields["call_id"]: s for s in only_trace(ws).tool_steps()}
    assert steps["c_echo"].agent == "worker" and steps["c_echo"].fields["decision"] == "allowed"
    assert "home=/tmp/home" in model.fed_back("c_echo").text
    assert steps["c_touch"].fields["decision"] == "denied"  # the worker's rule, not the boss's
    assert not (files(ws) / "made.txt").exists()
