"""Every run recorded, exactly: a stale git lock recovered, a failed commit reported, SIGTERM and
SIGHUP ending a run like Ctrl-C, a killed run committed `interrupted` by the next command, and
concurrent runs each committing exactly their own files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.examples.hello_notes import GOAL, PROJECT
from tests.scripted.openai_server import OpenAIServer, tool_call
from tests.support import LLMUNIX, processes_matching, run_cli

NO_MODEL = {"ANTHROPIC_API_KEY": "", "OPENAI_API_KEY": ""}


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                          check=True).stdout


def run_commits(root: Path) -> list[tuple[str, list[str]]]:
    """(subject, files) of each run commit, newest first."""
    out = git(root, "log", "--format=@@%s", "--name-only")
    commits = []
    for block in out.split("@@")[1:]:
        lines = [ln for ln in block.strip().splitlines() if ln]
        if lines[0].startswith("run "):
            commits.append((lines[0], lines[1:]))
    return commits


def trace_meta(path: Path) -> dict:
    import yaml

    text = path.read_text(encoding="utf-8")
    return yaml.safe_load(text.split("\n---\n", 1)[0][4:])


@pytest.fixture
def demo(tmp_path) -> Path:
    root = tmp_path / "demo"
    assert run_cli("init", str(root), "--example", PROJECT, cwd=tmp_path).returncode == 0
    return root


# ---------------------------------------------------------------- git you can trust


def test_a_stale_index_lock_is_removed_and_the_run_committed(demo):
    (demo / ".git" / "index.lock").write_text("")  # what a git killed mid-commit leaves
    before = len(run_commits(demo))
    proc = run_cli("run", GOAL, "--project", PROJECT, "--mode", "follower", cwd=demo,
                   env=NO_MODEL)
    assert proc.returncode == 0, proc.stderr
    assert not (demo / ".git" / "index.lock").exists()
    assert len(run_commits(demo)) == before + 1
    assert git(demo, "status", "--porcelain") == ""


def test_a_failed_commit_is_reported_and_made_by_the_next_command(demo):
    config = demo / "llmunix.toml"
    text = config.read_text(encoding="utf-8")
    assert "git_lock_wait_s = 10" in text
    config.write_text(text.replace("git_lock_wait_s = 10", "git_lock_wait_s = 0.2"),
                      encoding="utf-8")
    holder = subprocess.Popen(  # a live process holding the index lock open
        [sys.executable, "-c", "import sys; f = open(sys.argv[1], 'w'); sys.stdin.read()",
         str(demo / ".git" / "index.lock")], stdin=subprocess.PIPE)
    try:
        while not (demo / ".git" / "index.lock").exists():
            time.sleep(0.01)
        before = len(run_commits(demo))
        proc = run_cli("run", GOAL, "--project", PROJECT, "--mode", "follower", cwd=demo,
                       env=NO_MODEL)
    finally:
        holder.communicate(b"")  # it exits; its lock file stays behind, now stale
    assert proc.returncode == 5, proc.stderr
    assert "error: commit: failed — .git/index.lock is held by process" in proc.stderr
    assert len(run_commits(demo)) == before
    trace = next((demo / "projects" / PROJECT / "memory" / "short_term").glob("*.md"))
    assert trace_meta(trace)["commit"].startswith("failed — .git/index.lock is held")
    log = run_cli("log", cwd=demo)  # the next command: the stale lock goes, the run is committed
    assert log.returncode == 0, log.stderr
    assert f"run {trace.stem} (success) committed by this command" in log.stderr
    assert [s for s, _ in run_commits(demo)][0].startswith(f"run {trace.stem}:")
    assert trace_meta(trace)["commit"].startswith("made by a later command (failed — ")
    assert git(demo, "status", "--porcelain") == " M llmunix.toml\n"  # the test's own edit


# ---------------------------------------------------------------- every ending recorded


def _run_until_bash_starts(root: Path, server: OpenAIServer, token: str):
    marker = root / "projects" / "default" / "workspace" / "started.txt"
    server.enqueue(tool_call("Bash", {"command": f"echo go > started.txt; sleep {token}; "
                                                 "echo late > late.txt"}))
    server.enqueue("done")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMUNIX_")}
    env.update(OPENAI_API_KEY="test", NO_COLOR="1")
    proc = subprocess.Popen([LLMUNIX, "run", "a long command", "--mode", "learner", "--runtime",
                             "openai", "--base-url", server.url, "--model", "m"], cwd=root,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the Bash call never started"
        time.sleep(0.02)
    return proc


def _alive_with(token: str) -> list[int]:
    return processes_matching(lambda cmdline: token.encode() in cmdline, zombies=True)


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_end_a_run_like_ctrl_c(tmp_path, sig, code):
    root = tmp_path / "ws"
    assert run_cli("init", str(root), cwd=tmp_path).returncode == 0
    token = "31.4159"
    with OpenAIServer() as server:
        proc = _run_until_bash_starts(root, server, token)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    name = signal.Signals(sig).name
    assert f"interrupted by {name}" in err
    trace = next((root / "projects" / "default" / "memory" / "short_term").glob("*.md"))
    meta = trace_meta(trace)
    assert meta["status"] == "interrupted" and name in meta["reason"]
    subject, files = run_commits(root)[0]
    assert subject.startswith(f"run {trace.stem}:")
    assert "Status: interrupted" in git(root, "show", "-s", "--format=%b", "HEAD")
    assert _alive_with(token) == []  # the command's process did not outlive the run
    assert not (root / "projects" / "default" / "workspace" / "late.txt").exists()
    assert "projects/default/workspace/started.txt" in files  # its output, the run's own


def test_a_killed_run_is_committed_interrupted_by_the_next_command(tmp_path):
    root = tmp_path / "ws"
    assert run_cli("init", str(root), cwd=tmp_path).returncode == 0
    with OpenAIServer() as server:
        proc = _run_until_bash_starts(root, server, "27.1828")
        proc.kill()
        proc.communicate(timeout=60)
    trace = next((root / "projects" / "default" / "memory" / "short_term").glob("*.md"))
    assert trace_meta(trace)["status"] == "running"  # as the kill left it
    before = len(run_commits(root))
    nxt = run_cli("agents", "list", cwd=root)
    assert nxt.returncode == 0, nxt.stderr
    assert f"run {trace.stem} (interrupted) committed by this command" in nxt.stderr
    assert trace_meta(trace)["status"] == "interrupted"
    assert len(run_commits(root)) == before + 1
    subject, files = run_commits(root)[0]
    assert subject.startswith(f"run {trace.stem}:")
    # the file the killed Bash call had written is still that run's, and only that call ran
    assert "projects/default/workspace/started.txt" in files
    assert not (root / "projects" / "default" / "workspace" / "late.txt").exists()
    assert not list((root / ".llmunix" / "runs").iterdir())  # journal and window settled
    again = run_cli("agents", "list", cwd=root)
    assert "committed by this command" not in again.stderr  # once
    assert git(root, "status", "--porcelain", "--", "projects/default/memory") == ""


# ---------------------------------------------------------------- exact attribution


def test_concurrent_runs_commit_exactly_their_own_files(tmp_path):
    """16 runs at once on one project, each writing one file with Write and one with Bash:
    each commit holds exactly its trace and its two files; reverting one run leaves the others
    intact."""
    root = tmp_path / "ws"
    assert run_cli("init", str(root), cwd=tmp_path).returncode == 0
    n = 16

    def first(marker):
        return lambda r: marker in json.dumps(r.body) and '"role": "tool"' not in \
            json.dumps(r.body)

    def second(marker):
        return lambda r: marker in json.dumps(r.body) and json.dumps(r.body).count(
            '"role": "tool"') == 1

    def last(marker):
        return lambda r: marker in json.dumps(r.body) and json.dumps(r.body).count(
            '"role": "tool"') == 2

    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMUNIX_")}
    env.update(OPENAI_API_KEY="test", NO_COLOR="1")
    with OpenAIServer() as server:
        for i in range(n):
            m = f"job-{i:02d}-x"
            server.enqueue(tool_call("Write", {"file_path": f"w{i:02d}.txt", "content": m}),
                           when=first(m))
            server.enqueue(tool_call("Bash", {"command": f"echo {m} > b{i:02d}.txt"}),
                           when=second(m))
            server.enqueue("done", when=last(m))
        procs = [subprocess.Popen([LLMUNIX, "run", f"make job-{i:02d}-x", "--mode", "learner",
                                   "--runtime", "openai", "--base-url", server.url, "--model",
                                   "m", "--quiet"], cwd=root, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for i in range(n)]
        results = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0] * n, [e for _o, e in results]
    commits = run_commits(root)
    assert len(commits) == n
    for subject, files in commits:
        i = subject.split("make job-")[1][:2]
        outputs = sorted(f for f in files if "/workspace/" in f)
        assert outputs == [f"projects/default/workspace/b{i}.txt",
                           f"projects/default/workspace/w{i}.txt"], (subject, files)
        traces = [f for f in files if "/short_term/" in f]
        assert len(traces) == 1 and f"make-job-{i}-x" in traces[0]
    assert git(root, "status", "--porcelain") == ""
    victim = commits[5][0].split()[1].rstrip(":")
    i = commits[5][0].split("make job-")[1][:2]
    assert run_cli("memory", "revert", victim, cwd=root).returncode == 0
    ws = root / "projects" / "default" / "workspace"
    assert not (ws / f"w{i}.txt").exists() and not (ws / f"b{i}.txt").exists()
    left = sorted(p.name for p in ws.iterdir() if p.name != ".gitkeep")
    assert len(left) == 2 * (n - 1)


def _one_bash_call(root: Path, command: str) -> str:
    """A learner run whose model calls Bash once: the tool result it was sent, as JSON."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMUNIX_")}
    env.update(OPENAI_API_KEY="test", NO_COLOR="1")
    with OpenAIServer() as server:
        server.enqueue(tool_call("Bash", {"command": command}))
        server.enqueue("done")
        proc = subprocess.run([LLMUNIX, "run", "flood it", "--mode", "learner", "--runtime",
                               "openai", "--base-url", server.url, "--model", "m"], cwd=root,
                              env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return json.dumps(server.tool_results(server.model_requests()[-1]))


def test_a_long_tool_output_is_cut_for_the_model_and_kept_whole(tmp_path):
    """The model gets [limits] tool_output_chars of a result; the trace's sidecar keeps all."""
    root = tmp_path / "ws"
    assert run_cli("init", str(root), cwd=tmp_path).returncode == 0
    config = root / "llmunix.toml"
    text = config.read_text(encoding="utf-8")
    assert "tool_output_chars = 30000" in text
    config.write_text(text.replace("tool_output_chars = 30000", "tool_output_chars = 1000"),
                      encoding="utf-8")
    sent = _one_bash_call(root, "printf 'x%.0s' $(seq 1 9000)")
    assert "output cut at 1,000 of 9,000 characters" in sent
    assert sent.count("x") < 1100
    trace = next((root / "projects" / "default" / "memory" / "short_term").glob("*.md"))
    sidecar = next(trace.with_suffix("").glob("step-*.txt"))
    assert sidecar.read_text(encoding="utf-8").count("x") == 9000


def test_a_run_killed_inside_bash_keeps_its_files_when_another_run_writes_next(tmp_path):
    """The next run to take the effects lock settles the dead run's window first: what the
    killed call wrote goes to the dead run's journal, what the live run writes to its own."""
    from llmunix.kernel.changes import RunChanges, save_window, snapshot
    from llmunix.run.journal import open_journal, orphans, settle_windows

    root = tmp_path / "ws"
    work = root / "projects" / "p" / "workspace"
    work.mkdir(parents=True)
    (work / "old.txt").write_text("kept")
    lock = root / ".llmunix" / "locks" / "effects-p.lock"
    dead = open_journal(root, "dead-run", {"trace": "t.md", "project": "p"})
    save_window(dead.paths_path.with_suffix(".window"), work, snapshot(work))
    (work / "from-the-dead.txt").write_text("written before the kill")
    dead.close(remove=False)  # its process is gone: the journal lock is free

    live = open_journal(root, "live-run", {"trace": "u.md", "project": "p"})
    changes = RunChanges(root, work, lock, live.paths_path,
                         on_lock=lambda: settle_windows(root, work))
    with changes.opaque():
        (work / "mine.txt").write_text("the live run's")
    assert changes.paths == {"projects/p/workspace/mine.txt"}
    found = {o.json_path.stem: o for o in orphans(root)}
    assert list(found) == ["dead-run"]
    assert found["dead-run"].paths == ["projects/p/workspace/from-the-dead.txt"]
    assert not dead.paths_path.with_suffix(".window").exists()
    assert not live.paths_path.with_suffix(".window").exists()  # its own call ended
    found["dead-run"].release()
    live.close(remove=True)


def test_the_effects_lock_lists_the_runs_folder_again_only_when_it_changed(tmp_path,
                                                                          monkeypatch):
    """Each Write or Bash takes the effects lock, and each time dead runs' windows are looked
    for: a listing of .llmunix/runs, skipped while that folder is as a listing found it (no
    window, and its time well before that listing: a change made since has a later time)."""
    import os
    import time

    from llmunix.kernel.changes import save_window, snapshot
    from llmunix.run import journal
    from llmunix.run.journal import open_journal, orphans

    root = tmp_path / "ws"
    work = root / "projects" / "p" / "workspace"
    work.mkdir(parents=True)
    runs = root / ".llmunix" / "runs"
    runs.mkdir(parents=True)
    listings = []
    real = journal.settle_windows
    monkeypatch.setattr(journal, "settle_windows",
                        lambda r, w: listings.append(1) or real(r, w))
    settler = journal.WindowSettler(root, work)
    long_ago = time.time() - 60
    os.utime(runs, (long_ago, long_ago))
    for _ in range(3):
        settler()
    assert len(listings) == 1

    dead = open_journal(root, "dead-run", {"trace": "t.md", "project": "p"})
    save_window(dead.paths_path.with_suffix(".window"), work, snapshot(work))
    (work / "from-the-dead.txt").write_text("written before the kill")
    dead.close(remove=False)
    settler()  # the folder changed: listed, and the dead run's window settled
    assert len(listings) == 2
    assert not dead.paths_path.with_suffix(".window").exists()
    (orphan,) = orphans(root)
    assert orphan.paths == ["projects/p/workspace/from-the-dead.txt"]
    orphan.release()

    settler()  # changed just now: a change in the same tick would not show, so listed again
    assert len(listings) == 3
    os.utime(runs, (long_ago, long_ago))
    settler()
    settler()
    assert len(listings) == 4


def test_the_trace_keeps_the_start_and_end_of_an_output_past_the_kept_size(tmp_path):
    """[limits] tool_output_kept_chars bounds what a run holds and stores of one output: its
    first and last half, with the count of what was left out between them."""
    root = tmp_path / "ws"
    assert run_cli("init", str(root), cwd=tmp_path).returncode == 0
    config = root / "llmunix.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("tool_output_kept_chars = 1000000",
                                   "tool_output_kept_chars = 4000"), encoding="utf-8")
    sent = _one_bash_call(root, "printf START; head -c 200000 /dev/zero | tr '\\0' x; printf END")
    assert "START" in sent and "END" in sent and "196,008 of 200,008 bytes" in sent
    trace = next((root / "projects" / "default" / "memory" / "short_term").glob("*.md"))
    kept = "".join(p.read_text(encoding="utf-8") for p in trace.with_suffix("").glob("*.txt")) \
        or trace.read_text(encoding="utf-8")
    assert kept.count("x") == 1995 + 1997 and "END" in kept  # 2,000 bytes at each end
