"""A learned goal over many inputs: 100 follower runs of the hello-notes goal on one workspace,
in a row and then in parallel (one worker per core), each a whole `llmunix run` process.

    python bench/batch.py [--runs 100] [--workers N]

Prints the total wall time and the per-run figure of each, the speed-up of the parallel batch,
and checks the git history afterwards: every run has its own commit holding its own trace and
no other run's (0 lost, 0 misattributed). Goal (issue 17): <= 0.3 s per run in a row,
near-linear speed-up with cores, 0 lost or misattributed commits.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _common import ROOT, llmunix_cmd, row

from tests.examples import hello_notes


def one_run(ws: Path, env: dict[str, str]) -> None:
    done = subprocess.run([*llmunix_cmd(), "run", hello_notes.GOAL, "--project",
                           hello_notes.PROJECT, "--quiet"], cwd=ws, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"a run failed ({done.returncode}): {done.stderr[-1500:]}")


def batch(ws: Path, env: dict[str, str], runs: int, workers: int) -> float:
    start = time.perf_counter()
    if workers == 1:
        for _ in range(runs):
            one_run(ws, env)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda _: one_run(ws, env), range(runs)))
    return time.perf_counter() - start


def audit(ws: Path) -> tuple[int, int, int]:
    """(run commits, traces on disk, commits whose files are not exactly their own trace's)."""
    log = subprocess.run(["git", "log", "--name-only", "--format=%x1e%s"], cwd=ws,
                         capture_output=True, text=True, check=True).stdout
    commits, wrong = 0, 0
    for record in log.split("\x1e")[1:]:
        subject, *files = [line for line in record.splitlines() if line]
        match = re.match(r"run (\S+): ", subject)
        if not match:
            continue
        commits += 1
        traces = {f for f in files if "/memory/short_term/" in f and f.endswith(".md")}
        if traces != {f"projects/{hello_notes.PROJECT}/memory/short_term/{match.group(1)}.md"}:
            wrong += 1
    on_disk = len(list((ws / "projects" / hello_notes.PROJECT / "memory" / "short_term")
                       .glob("*.md")))
    return commits, on_disk, wrong


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(ROOT)
    with tempfile.TemporaryDirectory(prefix="llmunix-batch-") as tmp:
        ws = Path(tmp) / "ws"
        subprocess.run([*llmunix_cmd(), "init", str(ws), "--example", hello_notes.PROJECT],
                       check=True, capture_output=True, env=env)
        # the example ships 200 as keep_short_term: keep every trace, so each can be audited
        config = ws / "llmunix.toml"
        config.write_text(re.sub(r"keep_short_term = \d+", "keep_short_term = 100000",
                                 config.read_text(encoding="utf-8")), encoding="utf-8")
        one_run(ws, env)  # warm-up: bytecode, spec cache, memory index
        serial = batch(ws, env, args.runs, 1)
        parallel = batch(ws, env, args.runs, args.workers)
        commits, on_disk, wrong = audit(ws)
    total = 2 * args.runs + 1
    print(f"{args.runs} follower runs of the hello-notes goal on one workspace, whole processes")
    row("in a row: total", f"{serial:.1f} s", "", f"{serial / args.runs:.3f} s per run "
        "(goal <= 0.3 s)")
    row(f"in parallel, {args.workers} workers: total", f"{parallel:.1f} s", "",
        f"{parallel / args.runs:.3f} s per run")
    row("speed-up", f"{serial / parallel:.2f}x", f"near {args.workers}x")
    row("run commits / runs", f"{commits} / {total}", "all", f"{on_disk} traces on disk")
    row("commits not holding exactly their own trace", str(wrong), "goal 0")


if __name__ == "__main__":
    main()
