"""Memory in git: `llmunix log`, `memory diff`, `memory revert` through the real console script,
and commits from concurrent processes (no lost file, no index.lock error)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import git
import pytest

from llmunix.memory import git as gitmem
from llmunix.workspace.layout import Workspace
from tests.support import run_cli
from tests.test_memory import call, make_trace


@pytest.fixture
def ws(tmp_path) -> Workspace:
    result = run_cli("init", str(tmp_path / "ws"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return Workspace(tmp_path / "ws")


def learned_run(ws: Workspace, goal: str, file: str, content: str) -> Path:
    """A recorded run that wrote `file`, committed as its own run would have been."""
    path = make_trace(ws, goal, [call("Write", {"file_path": file, "content": content},
                                      "File created")])
    gitmem.commit_paths(ws.root, f"seed {goal}", [path.relative_to(ws.root).as_posix()])
    return path


def replay(ws: Workspace, trace: Path) -> str:
    """Replay a trace through the CLI (a real run: trace, outputs, one commit); its trace id."""
    result = run_cli("trace", "replay", str(trace), "--json", cwd=ws.root)
    assert result.returncode == 0, result.stdout + result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return next(e["trace_id"] for e in events if e["event"] == "run_started")


def log(ws: Workspace, *args: str) -> list[dict]:
    result = run_cli("log", "--json", *args, cwd=ws.root)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def repo_is_clean(ws: Workspace) -> bool:
    repo = git.Repo(ws.root)
    return not repo.is_dirty(untracked_files=True) and \
        not (Path(repo.git_dir) / "REVERT_HEAD").exists()


# ---------------------------------------------------------------- log


def test_log_lists_runs_from_the_history(ws):
    seeded = learned_run(ws, "Write hello to notes.txt", "notes.txt", "hello\n")
    first = replay(ws, seeded)
    second = replay(ws, seeded)
    runs = log(ws)
    assert [r["trace_id"] for r in runs] == [second, first]  # newest first
    for r in runs:
        assert r["goal"] == "Write hello to notes.txt"
        assert (r["mode"], r["status"], r["runtime"], r["cost_usd"]) == (
            "follower", "success", "replay", 0.0)
        assert r["date"][:4].isdigit() and "T" in r["date"] and r["reverted_by"] is None
    assert [r["trace_id"] for r in log(ws, "--limit", "1")] == [second]
    assert log(ws, "--project", "default", "--limit", "5") == runs
    assert log(ws, "--project", "elsewhere") == []
    text = run_cli("log", cwd=ws.root)
    assert text.returncode == 0 and "Write hello to notes.txt" in text.stdout
    assert "follower" in text.stdout and "$0.0000" in text.stdout


def test_log_shows_the_newest_runs_and_more_on_request(ws):
    """A long history: `llmunix log` lists the newest 20 and says how to see the rest; a revert
    newer than its run still marks it; `--all` and `-n` list what they ask for."""
    def commit(message: str) -> str:
        subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", message], cwd=ws.root,
                       check=True)
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ws.root, check=True,
                              capture_output=True, text=True).stdout.strip()

    shas = [commit(f"run t{i:02d}: goal {i}\n\nMode: learner\nStatus: success\n")
            for i in range(25)]
    revert = commit(f'Revert "run t22: goal 22"\n\nThis reverts commit {shas[22]}.\n')
    result = run_cli("log", "--json", cwd=ws.root)
    assert result.returncode == 0, result.stderr
    runs = json.loads(result.stdout)
    assert [r["trace_id"] for r in runs] == [f"t{i:02d}" for i in range(24, 4, -1)]
    assert runs[2]["reverted_by"] == revert and runs[1]["reverted_by"] is None
    assert "20 most recent runs" in result.stderr and "--all" in result.stderr
    assert len(log(ws, "--all")) == 25
    few = run_cli("log", "-n", "3", cwd=ws.root)
    assert few.returncode == 0 and few.stderr == ""
    assert [line.split()[2] for line in few.stdout.splitlines()[1:]] == ["t24", "t23", "t22"]


def test_log_outside_git_says_so(tmp_path):
    from tests.support import new_workspace

    new_workspace(tmp_path / "plain")
    result = run_cli("log", cwd=tmp_path / "plain")
    assert result.returncode == 1 and "not a git repository" in result.stderr


# ---------------------------------------------------------------- diff


def test_memory_diff_shows_what_memory_changed(ws):
    learned_run(ws, "Count the lines of notes.txt", "count.txt", "3\n")
    assert run_cli("memory", "consolidate", cwd=ws.root).returncode == 0
    result = run_cli("memory", "diff", cwd=ws.root)  # HEAD~1: the consolidation
    assert result.returncode == 0, result.stderr
    assert "+++ b/projects/default/memory/long_term/execution_trace_count-the-lines" in \
        result.stdout
    assert "+goal_signature: count lines notes.txt" in result.stdout
    # SmartLibrary.md, in system/, gained the learned trace's row
    assert "+++ b/system/SmartLibrary.md" in result.stdout
    assert any(line.startswith("+| ") and "execution_trace_count-the-lines" in line
               for line in result.stdout.splitlines())
    stat = run_cli("memory", "diff", "HEAD~1", "--stat", "--project", "default", cwd=ws.root)
    assert stat.returncode == 0 and "execution_trace_count-the-lines" in stat.stdout
    assert "SmartLibrary" not in stat.stdout
    ws.memory_log_path.write_text(ws.memory_log_path.read_text() + "\n## A hand-written note\n")
    uncommitted = run_cli("memory", "diff", "HEAD", cwd=ws.root)
    assert "+## A hand-written note" in uncommitted.stdout
    bad = run_cli("memory", "diff", "no-such-rev", cwd=ws.root)
    assert bad.returncode == 1 and "unknown revision 'no-such-rev'" in bad.stderr


# ---------------------------------------------------------------- revert


def test_memory_revert_undoes_one_run(ws):
    seeded = learned_run(ws, "Write hello to notes.txt", "notes.txt", "hello\n")
    trace_id = replay(ws, seeded)
    notes = ws.project("default").workspace_dir / "notes.txt"
    trace = ws.project("default").short_term_dir / f"{trace_id}.md"
    assert notes.read_text() == "hello\n" and trace.is_file()
    result = run_cli("memory", "revert", trace_id, cwd=ws.root)
    assert result.returncode == 0, result.stderr
    assert f"reverted run {trace_id}" in result.stdout
    assert not notes.exists() and not trace.exists()
    assert repo_is_clean(ws)
    head = git.Repo(ws.root).head.commit
    assert head.summary.startswith('Revert "run ') and head.parents[0].summary.startswith("run ")
    [run] = log(ws)
    assert run["trace_id"] == trace_id and run["reverted_by"] == head.hexsha
    again = run_cli("memory", "revert", trace_id, cwd=ws.root)
    assert again.returncode == 1 and "already reverted" in again.stderr
    unknown = run_cli("memory", "revert", "20990101T000000000Z_nothing", cwd=ws.root)
    assert unknown.returncode == 1 and "no run commit for trace" in unknown.stderr


def test_memory_revert_that_conflicts_is_aborted_and_changes_nothing(ws):
    one = learned_run(ws, "Write one to x.txt", "x.txt", "one\n")
    two = learned_run(ws, "Write two to x.txt", "x.txt", "two\n")
    first = replay(ws, one)
    replay(ws, two)  # changes the file the first run created
    head = git.Repo(ws.root).head.commit.hexsha
    result = run_cli("memory", "revert", first, cwd=ws.root)
    assert result.returncode == 1
    assert "conflicts with later changes to projects/default/workspace/x.txt" in result.stderr
    assert "aborted" in result.stderr
    assert git.Repo(ws.root).head.commit.hexsha == head
    assert repo_is_clean(ws)
    assert (ws.project("default").workspace_dir / "x.txt").read_text() == "two\n"


# ---------------------------------------------------------------- concurrency

CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from llmunix.memory import git as gitmem
    root, i = Path(sys.argv[1]), sys.argv[2]
    rel = f"projects/default/workspace/out-{i}.txt"
    (root / rel).write_text(f"output {i}\\n")
    gitmem.commit_paths(root, f"run t{i}: goal {i}", [rel])
""")


def test_eight_processes_committing_at_once_lose_nothing(ws):
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(ws.root), str(i)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(8)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert all(code == 0 and not err for code, err in results), results
    repo = git.Repo(ws.root)
    subjects = [c.summary for c in repo.iter_commits()]
    assert sorted(s for s in subjects if s.startswith("run t")) == [
        f"run t{i}: goal {i}" for i in range(8)]
    tracked = set(repo.git.ls_files("projects/default/workspace").split())
    assert {f"projects/default/workspace/out-{i}.txt" for i in range(8)} <= tracked
    assert repo_is_clean(ws)


def test_eight_runs_at_once_on_one_workspace_lose_nothing(ws):
    seeds = [learned_run(ws, f"Write file {i}", f"file-{i}.txt", f"content {i}\n")
             for i in range(8)]
    procs = [subprocess.Popen(["llmunix", "trace", "replay", str(seed), "--json"],
                              cwd=ws.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=_cli_env())
             for seed in seeds]
    outputs = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    assert all(code == 0 for code, _out, _err in outputs), outputs
    assert not any("index.lock" in out + err for _code, out, err in outputs)
    repo = git.Repo(ws.root)
    assert repo_is_clean(ws)
    tracked = set(repo.git.ls_files("projects/default").split())
    for i in range(8):
        assert f"projects/default/workspace/file-{i}.txt" in tracked
    started = [json.loads(line)["trace_id"] for _c, out, _e in outputs
               for line in out.splitlines() if '"run_started"' in line]
    assert len(set(started)) == 8
    for trace_id in started:
        assert f"projects/default/memory/short_term/{trace_id}.md" in tracked
    runs = log(ws)
    assert sorted(r["trace_id"] for r in runs) == sorted(started)  # one commit per run
    assert all(r["status"] == "success" for r in runs)


def _cli_env() -> dict[str, str]:
    import os

    from tests.support import LLMUNIX

    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMUNIX_")}
    env["PATH"] = str(Path(LLMUNIX).parent) + os.pathsep + env.get("PATH", "")
    env.update({"NO_COLOR": "1", "TERM": "dumb"})
    return env


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    target = Path(sys.argv[1])
    with open(target, "w") as fh:
        for n in range(100_000):
            fh.write(f"line {n}\\n")
            fh.flush()
    print("done")
""")


def test_committing_a_project_while_another_process_writes_in_it_is_safe(ws):
    target = ws.project("default").workspace_dir / "growing.txt"
    target.write_text("")
    rel = ws.project("default").root.relative_to(ws.root).as_posix()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(target)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    commits = 0
    while writer.poll() is None:
        if gitmem.commit_paths(ws.root, f"snapshot {commits}", [rel]):
            commits += 1
    out, err = writer.communicate()
    assert writer.returncode == 0 and out.strip() == "done" and not err
    gitmem.commit_paths(ws.root, "final", [rel])
    repo = git.Repo(ws.root)
    final = "".join(f"line {n}\n" for n in range(100_000))
    assert target.read_text() == final
    assert repo.git.show(f"HEAD:{rel}/workspace/growing.txt", strip_newline_in_stdout=False) \
        == final
    assert repo_is_clean(ws)
    repo.git.fsck("--no-dangling")  # every snapshot, partial or not, is a sound object
