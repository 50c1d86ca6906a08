"""Per-run cost as history grows: 0, 1,000 and 10,000 previous runs in one workspace (each with
its trace, one output file and its own commit, 20,000 tracked files at 10k).

Measured at each size, through the console script: a follower run of the hello-notes goal
(the whole run, and its git commit alone as the trace records nothing of it: timed in-process
with the same code the run uses), `llmunix log`, and `llmunix memory consolidate` right after one
new run (everything older already consolidated). Goals: per-run overhead at 10k <= 1.2x that
at 0; `llmunix log` of 10k runs <= 0.5 s; consolidation after one new run <= 0.2 s at 10k.
The start-up of the console script (`llmunix --version`) is given beside them: every command
pays it, whatever the history.
History is written with `git fast-import` (one commit per synthetic run).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import llmunix_cmd, median, row

from tests.examples.hello_notes import GOAL, PROJECT

SIZES = [int(a) for a in sys.argv[1:]] or [0, 1000, 10000]
ROUNDS = 5
COMMIT_ROUNDS = 25  # a commit is tens of ms: more rounds against the machine's noise
ENV = {**os.environ, "ANTHROPIC_API_KEY": "", "OPENAI_API_KEY": "", "NO_COLOR": "1"}

TRACE = """---
trace_id: {id}
goal: synthetic run {i}
project: {project}
agent: system-agent
runtime: replay
model: ''
mode: follower
status: success
started_at: '2026-01-01T00:00:00Z'
finished_at: '2026-01-01T00:00:01Z'
duration_s: 0.1
turns: 0
cost_usd: 0.0
---

# Goal

synthetic run {i}

# Result

done
"""


def history(root: Path, n: int) -> None:
    """n run commits, each adding a trace and an output, through one git fast-import."""
    if not n:
        return
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                          text=True, check=True).stdout.strip()
    parts = []
    st = f"projects/{PROJECT}/memory/short_term"
    for i in range(n):
        tid = f"20250101T{i // 3600 % 24:02d}{i // 60 % 60:02d}{i % 60:02d}{i % 1000:03d}Z_run-{i}"
        trace = TRACE.format(id=tid, i=i, project=PROJECT).encode()
        out = f"output {i}\n".encode()
        msg = (f"run {tid}: synthetic run {i}\n\nRuntime: replay\nMode: follower\n"
               f"Status: success\nCost-USD: 0.000000\n").encode()
        parts.append(b"commit refs/heads/main\ncommitter bench <b@x> 1735689600 +0000\n"
                     + b"data %d\n" % len(msg) + msg
                     + (b"from %s\n" % head.encode() if i == 0 else b"")
                     + b"M 100644 inline %s/%s.md\ndata %d\n" % (st.encode(), tid.encode(),
                                                                  len(trace)) + trace
                     + b"M 100644 inline projects/%s/workspace/out/o%05d.txt\ndata %d\n"
                     % (PROJECT.encode(), i, len(out)) + out + b"\n")
    subprocess.run(["git", "fast-import", "--quiet"], cwd=root, input=b"".join(parts),
                   check=True)
    subprocess.run(["git", "reset", "--hard", "-q", "main"], cwd=root, check=True)


CPU: dict[str, list[float]] = {}  # what -> CPU seconds of each timed command (user + system)


def timed(argv, root, what: str | None = None) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=root, env=ENV, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert proc.returncode == 0, proc.stderr[-500:]
    if what:
        CPU.setdefault(what, []).append(after.ru_utime + after.ru_stime
                                        - before.ru_utime - before.ru_stime)
    return elapsed


def _cpu() -> float:
    return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))


def commit_cost(root: Path) -> tuple[float, float]:
    """The run commit alone: one new trace-sized file and one output, as a run commits them.
    Median wall and CPU seconds (this process and its git processes) of COMMIT_ROUNDS."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from llmunix.memory.git import commit_files

    times, cpus = [], []
    for k in range(COMMIT_ROUNDS):
        a = root / "projects" / PROJECT / "memory" / "short_term" / f"zz-bench-{k}.md"
        b = root / "projects" / PROJECT / "workspace" / f"zz-bench-{k}.txt"
        a.write_text("trace\n" * 50)
        b.write_text("out\n")
        start, cpu = time.perf_counter(), _cpu()
        commit_files(root, f"bench {k}", [str(a.relative_to(root)), str(b.relative_to(root))])
        times.append(time.perf_counter() - start)
        cpus.append(_cpu() - cpu)
    return median(times), median(cpus)


def main() -> None:
    cmd = llmunix_cmd()
    results = {}
    start_up = median([timed([*cmd, "--version"], Path.cwd()) for _ in range(ROUNDS)])
    print(f"start-up (llmunix --version): {start_up:.3f} s", flush=True)
    for n in SIZES:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "ws"
            subprocess.run([*cmd, "init", str(root), "--example", PROJECT], env=ENV,
                           capture_output=True, check=True)
            text = (root / "llmunix.toml").read_text()
            (root / "llmunix.toml").write_text(text.replace("keep_short_term = 200",
                                                            "keep_short_term = 1000000"))
            subprocess.run(["git", "commit", "-qam", "bench config"], cwd=root, check=True)
            t0 = time.perf_counter()
            history(root, n)
            made = time.perf_counter() - t0
            run = [*cmd, "run", GOAL, "--project", PROJECT, "--mode", "follower", "--quiet"]
            timed(run, root)  # warm-up
            runs = median([timed(run, root) for _ in range(ROUNDS)])
            git, git_cpu = commit_cost(root)
            timed([*cmd, "memory", "consolidate"], root)  # everything so far
            CPU.clear()
            log = median([timed([*cmd, "log"], root, "log") for _ in range(ROUNDS)])
            consol = []
            for _ in range(5):
                timed(run, root)
                consol.append(timed([*cmd, "memory", "consolidate"], root, "consolidate"))
            results[n] = (runs, git, log, median(consol), git_cpu)
            print(f"{n:>6} previous runs (history written in {made:.1f} s): run {runs:.3f} s, "
                  f"its commit {git * 1000:.1f} ms ({git_cpu * 1000:.1f} ms CPU), log "
                  f"{log:.3f} s ({median(CPU['log']):.3f} s CPU), consolidate after one run "
                  f"{median(consol):.3f} s ({median(CPU['consolidate']):.3f} s CPU), load "
                  f"{os.getloadavg()[0]:.1f}", flush=True)
    base = results[SIZES[0]]
    for n in SIZES[1:]:
        runs, git, log, consol, git_cpu = results[n]
        row(f"history {n:,} runs", f"run {runs:.3f} s ({runs / base[0]:.2f}x of {SIZES[0]}), "
            f"commit {git * 1000:.1f} ms ({git / base[1]:.2f}x; CPU {git_cpu / base[4]:.2f}x), "
            f"log {log:.3f} s, "
            f"consolidate after 1 run {consol:.3f} s")


if __name__ == "__main__":
    main()
