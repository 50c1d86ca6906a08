"""The sandbox itself (real bubblewrap): what a confined process can see, write, reach and leave
behind. Each probe has a canary outside the workspace, or a listener on 127.0.0.1, and asserts
the effect did not happen. The same probes through `llmunix run` on both runtimes are in
tests/test_isolation.py."""

from __future__ import annotations

import time
import uuid

import pytest

from llmunix.errors import SandboxUnavailable
from llmunix.tools.process import kill_all, run_process, start_process, stop_process
from llmunix.tools.sandbox import HOME, Sandbox
from tests.support import new_workspace, processes_with_marker, run_cli

pytestmark = pytest.mark.usefixtures("bubblewrap")


@pytest.fixture()
def place(tmp_path):
    """A workspace with a read path, and canaries around it: a fake home with an SSH key, a
    file next to the workspace, the workspace root's llmunix.toml."""
    ws = new_workspace(tmp_path / "ws")
    work = ws.ensure_project("default").workspace_dir
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text("PRIVATE-KEY-CANARY\n")
    outside = tmp_path / "outside.txt"
    outside.write_text("untouched\n")
    sandbox = Sandbox.create(work, read_paths=[ws.root / "system"])
    return ws, work, home, outside, sandbox


def set_sandbox(ws, key: str, value: str) -> None:
    """Set one `[sandbox]` key of the workspace's llmunix.toml (TOML text as `value`)."""
    text = ws.config_path.read_text()
    head, section = text.split("[sandbox]\n", 1)
    lines = section.split("\n")
    for i, line in enumerate(lines):
        if line.startswith(f"{key} ="):
            lines[i] = f"{key} = {value}"
            break
    else:
        raise AssertionError(f"no {key} in [sandbox]")
    ws.config_path.write_text(head + "[sandbox]\n" + "\n".join(lines))


def sh(sandbox: Sandbox, command: str, **kw):
    return run_process(["bash", "-c", command], sandbox=sandbox, timeout_s=30,
                       merge_stderr=True, **kw)


def test_writes_reach_the_workspace_only(place):
    ws, work, _home, outside, sandbox = place
    config = ws.config_path.read_text()
    r = sh(sandbox, f"echo ok > made.txt; echo x > {outside}; echo x >> {ws.config_path}; "
                    f"mkdir -p {ws.root}/agents && echo '---' > {ws.root}/agents/evil.md; "
                    f"echo x > {ws.root}/system/tools/planted.md; echo x > /usr/planted; "
                    "echo x > ../../../llmunix.toml")
    assert (work / "made.txt").read_text() == "ok\n"
    assert outside.read_text() == "untouched\n"
    assert ws.config_path.read_text() == config
    assert not (ws.root / "agents" / "evil.md").exists()
    assert not (ws.root / "system" / "tools" / "planted.md").exists()
    assert "Read-only file system" in r.output  # the read path is there, read-only


def test_outside_the_workspace_nothing_private_is_visible(place, monkeypatch):
    ws, _work, home, outside, sandbox = place
    monkeypatch.setenv("HOME", str(home))
    r = sh(sandbox, f"cat {home}/.ssh/id_rsa; cat ~/.ssh/id_rsa; cat {outside}; "
                    f"ls {ws.root}/.git; cat {ws.config_path}; ls /root /home /run /var; "
                    "cat /etc/shadow; echo HOME=$HOME")
    assert "PRIVATE-KEY-CANARY" not in r.output and "untouched" not in r.output
    assert "[run]" not in r.output  # llmunix.toml's content
    assert f"HOME={HOME}" in r.output
    for path in (f"{home}/.ssh/id_rsa", str(outside), f"{ws.root}/.git", "/home", "/run",
                 "/etc/shadow"):
        assert f"{path}: No such file or directory" in r.output or \
            f"'{path}': No such file or directory" in r.output, path
    # what a program needs is there
    assert sh(sandbox, "python3 -c 'print(6*7)'; ls /usr/bin/env; date +%Y >/dev/null && "
                       "echo date-ok").output.split() == ["42", "/usr/bin/env", "date-ok"]


def test_the_read_paths_are_readable(place):
    ws, _work, _home, _outside, sandbox = place
    r = sh(sandbox, f"cat {ws.root}/system/tools/word-count.md | head -2")
    assert r.output.startswith("---\nname: word-count")


EGRESS = ("python3 -c \"import socket,sys; s=socket.create_connection(('127.0.0.1', {port}), "
          "timeout=3); s.sendall(b'leak'); print('connected')\"")


def test_no_network_by_default(place, listener):
    _ws, _work, _home, _outside, sandbox = place
    port, got = listener
    r = sh(sandbox, EGRESS.format(port=port) + f"; curl -s -m 3 http://127.0.0.1:{port}/x")
    assert "connected" not in r.output
    assert "Connection refused" in r.output or "Network is unreachable" in r.output
    assert got == []


def test_network_when_allowed(place, listener):
    _ws, _work, _home, _outside, sandbox = place
    port, got = listener
    r = sh(sandbox.with_network(True), EGRESS.format(port=port))
    assert "connected" in r.output
    assert b"leak" in got


def test_environment_is_an_allow_list(place, monkeypatch):
    ws, work, _home, _outside, _sandbox = place
    monkeypatch.setenv("OPENAI_API_KEY", "sk-canary-openai-1234")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-canary-anthropic-5678")
    monkeypatch.setenv("PROJECT_COLOR", "teal")
    monkeypatch.setenv("UNLISTED", "hidden")
    sandbox = Sandbox.create(work, env=["PROJECT_COLOR", "GITHUB_TOKEN"])
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-canary")
    r = sh(sandbox, "env", env={"LLMUNIX_ARG_X": "1"})
    names = {line.split("=", 1)[0] for line in r.output.splitlines()}
    assert "canary" not in r.output and "hidden" not in r.output
    assert {"PATH", "HOME", "PROJECT_COLOR", "LLMUNIX_ARG_X"} <= names
    assert "GITHUB_TOKEN" not in names  # a secret-looking name is never passed




def test_no_process_outlives_a_long_lived_one(place):
    """A long-lived process (a stdio server) and what it started die with stop_process, and
    kill_all ends every live one at once."""
    _ws, _work, _home, _outside, sandbox = place
    mark = f"llmunix-probe-{uuid.uuid4().hex[:10]}"
    script = f"(setsid bash -c 'exec -a {mark}-a sleep 60' &); exec -a {mark}-b sleep 60"
    proc = start_process(["bash", "-c", script], sandbox=sandbox)
    other = start_process(["bash", "-c", f"exec -a {mark}-c sleep 60"], sandbox=sandbox)
    assert proc.stdout is not None
    deadline = time.monotonic() + 10
    while len(processes_with_marker(mark)) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)  # waiting for the processes to exist, not for timing
    assert len(processes_with_marker(mark)) == 3
    stop_process(proc)
    assert kill_all() == 1
    other.wait(10)
    deadline = time.monotonic() + 10
    while processes_with_marker(mark) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert processes_with_marker(mark) == []


def test_a_missing_bubblewrap_is_refused_with_how_to_fix(place):
    _ws, work, _home, _outside, _sandbox = place
    sandbox = Sandbox.create(work, program="/nonexistent/bwrap")
    with pytest.raises(SandboxUnavailable) as err:
        sh(sandbox, "echo never > never.txt")
    assert "bubblewrap ('/nonexistent/bwrap') is not installed" in str(err.value)
    assert "apt-get install bubblewrap" in err.value.hint
    assert 'mode = "off"' in err.value.hint
    assert not (work / "never.txt").exists()


def test_mode_off_runs_unconfined_and_says_so(place):
    _ws, work, _home, outside, _sandbox = place
    sandbox = Sandbox.create(work, mode="off")
    assert sandbox.describe().startswith("off (UNSAFE")
    sh(sandbox, f"cat {outside} > seen.txt")
    assert (work / "seen.txt").read_text() == "untouched\n"


def test_tools_run_refuses_without_a_sandbox(place):
    ws, work, _home, _outside, _sandbox = place
    set_sandbox(ws, "program", '"/nonexistent/bwrap"')
    (work / "notes.md").write_text("a b c\n")
    r = run_cli("tools", "run", "word-count", "--arg", "path=notes.md", cwd=ws.root)
    assert r.returncode == 1
    assert "bubblewrap ('/nonexistent/bwrap') is not installed" in r.stderr
    assert "apt-get install bubblewrap" in r.stderr and "Traceback" not in r.stderr


def test_a_secret_looking_name_in_sandbox_env_is_a_config_error(place):
    ws, _work, _home, _outside, _sandbox = place
    set_sandbox(ws, "env", '["HOME_COLOR", "AWS_SECRET_ACCESS_KEY"]')
    r = run_cli("tools", "run", "word-count", "--arg", "path=x", cwd=ws.root)
    assert r.returncode == 1
    assert "llmunix.toml" in r.stderr and "AWS_SECRET_ACCESS_KEY looks like a secret" in r.stderr


def _logging_bwrap(folder, exit_code: int | None = None):
    """A `bwrap` that writes a line to calls.log each time it starts, then runs the real one
    (or exits with `exit_code`)."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "calls.log"
    program = folder / "bwrap"
    body = f"exit {exit_code}" if exit_code is not None else f'exec {shutil.which("bwrap")} "$@"'
    program.write_text(f"#!/bin/sh\necho \"$*\" >> {log}\n{body}\n")
    program.chmod(0o755)
    return program, log


def test_a_working_sandbox_is_probed_once_per_program_across_processes(tmp_path, monkeypatch):
    from llmunix.tools import sandbox as sandbox_module

    monkeypatch.setattr(sandbox_module, "_probe_results", {})  # this process's, restored
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    program, log = _logging_bwrap(tmp_path / "bin")
    record = tmp_path / "cache" / "llmunix" / "sandbox-probe"

    def probe_anew() -> str:  # as a new llmunix process would
        sandbox_module._probe_results.clear()
        return sandbox_module.probe(str(program))

    assert probe_anew() == ""
    assert log.read_text().count("-- true") == 1
    assert str(program) in record.read_text()
    assert probe_anew() == "" and probe_anew() == ""
    assert log.read_text().count("-- true") == 1  # the record stood for the probe
    program.write_text(program.read_text() + "# changed\n")  # another program: probed again
    assert probe_anew() == ""
    assert log.read_text().count("-- true") == 2
    record.write_text("someone else's stamp\n")
    assert probe_anew() == ""
    assert log.read_text().count("-- true") == 3


def test_a_failed_probe_is_not_kept(tmp_path, monkeypatch):
    from llmunix.tools import sandbox as sandbox_module

    monkeypatch.setattr(sandbox_module, "_probe_results", {})
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    program, log = _logging_bwrap(tmp_path / "bin", exit_code=1)
    for _ in range(2):
        sandbox_module._probe_results.clear()
        assert "the sandbox cannot start" in sandbox_module.probe(str(program))
    assert log.read_text().count("-- true") == 2
    assert not (tmp_path / "cache" / "llmunix" / "sandbox-probe").exists()


def test_an_unwritable_cache_only_means_probing_again(tmp_path, monkeypatch):
    from llmunix.tools import sandbox as sandbox_module

    monkeypatch.setattr(sandbox_module, "_probe_results", {})
    (tmp_path / "cache").write_text("a file where the cache folder would be\n")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    program, log = _logging_bwrap(tmp_path / "bin")
    for _ in range(2):
        sandbox_module._probe_results.clear()
        assert sandbox_module.probe(str(program)) == ""
    assert log.read_text().count("-- true") == 2


def test_folders_of_private_keys_are_empty_inside(place):
    import os

    _ws, _work, _home, _outside, sandbox = place
    for folder in ("/etc/ssl/private", "/etc/pki/tls/private"):
        r = sh(sandbox, f"ls -A {folder}; grep ' {folder} ' /proc/self/mountinfo; "
                        f"touch {folder}/planted && echo WROTE")
        if not os.path.isdir(folder):
            assert "No such file or directory" in r.output
            continue
        lines = r.output.splitlines()
        assert lines and " - tmpfs " in lines[0] and " ro," in f" {lines[0].split()[5]},"
        assert "WROTE" not in r.output and "Read-only file system" in r.output
    certs = sh(sandbox, "ls /etc/ssl/certs | head -3")
    assert certs.exit_code == 0 and certs.output.strip()  # the public certificates are there


def test_no_home_means_no_probe_record(tmp_path, monkeypatch):
    from llmunix.tools import sandbox as sandbox_module

    monkeypatch.setattr(sandbox_module, "_probe_results", {})
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", "relative-home")  # not absolute: nowhere to keep it
    monkeypatch.chdir(tmp_path)
    program, log = _logging_bwrap(tmp_path / "bin")
    for _ in range(2):
        sandbox_module._probe_results.clear()
        assert sandbox_module.probe(str(program)) == ""
    assert log.read_text().count("-- true") == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin"]  # no cache folder made here
