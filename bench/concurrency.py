"""16 concurrent follower runs of the hello-notes goal on one workspace, through the console
script, against one run alone. Goals: total wall <= 2x (one run x 16 / cores); 0 runs lost
(16 run commits, 16 traces); 0 misattributed (each run commit holds its own trace and nothing of
another run's)."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

from _common import llmunix_cmd, median, row

from tests.examples.hello_notes import GOAL, PROJECT

N = 16
ENV = {**os.environ, "ANTHROPIC_API_KEY": "", "OPENAI_API_KEY": "", "NO_COLOR": "1"}


def main() -> None:
    cmd = llmunix_cmd()
    run = [*cmd, "run", GOAL, "--project", PROJECT, "--mode", "follower", "--quiet"]
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        subprocess.run([*cmd, "init", str(root), "--example", PROJECT], env=ENV,
                       capture_output=True, check=True)
        subprocess.run(run, cwd=root, env=ENV, capture_output=True, check=True)  # warm-up
        singles = []
        for _ in range(5):
            start = time.perf_counter()
            subprocess.run(run, cwd=root, env=ENV, capture_output=True, check=True)
            singles.append(time.perf_counter() - start)
        one = median(singles)
        before = set(subprocess.run(["git", "rev-list", "HEAD"], cwd=root, capture_output=True,
                                    text=True, check=True).stdout.split())
        start = time.perf_counter()
        procs = [subprocess.Popen(run, cwd=root, env=ENV, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE) for _ in range(N)]
        codes = [p.wait() for p in procs]
        wall = time.perf_counter() - start
        log = subprocess.run(["git", "log", "--format=@@%H %s", "--name-only"], cwd=root,
                             capture_output=True, text=True, check=True).stdout
        commits = []
        for block in log.split("@@")[1:]:
            lines = [ln for ln in block.strip().splitlines() if ln]
            sha, subject = lines[0].split(" ", 1)
            if sha not in before and subject.startswith("run "):
                commits.append((subject.split()[1].rstrip(":"), lines[1:]))
        traces = {tid for tid, _ in commits}
        misattributed = 0
        for tid, files in commits:
            for f in files:
                other_trace = "/memory/short_term/" in f and tid not in f
                other_output = "/workspace/" in f and not f.endswith("action_items.md")
                misattributed += other_trace or other_output
        lost = N - len(traces)
        floor = one * N / cores
        print(f"one run alone {one:.3f} s; {N} at once {wall:.2f} s on {cores} cores; exit codes "
              f"{sorted(set(codes))}; {len(commits)} run commits, lost {lost}, misattributed "
              f"{misattributed}")
        row(f"{N} concurrent follower runs", f"{wall:.2f} s = {wall / floor:.2f}x of one run "
            f"x {N} / {cores} cores ({one:.3f} s alone); lost {lost}, misattributed "
            f"{misattributed}", "<= 2x, 0, 0")


if __name__ == "__main__":
    main()
