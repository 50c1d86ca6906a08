"""Costs as a workspace grows: boot over more specs, memory search and goal matching over more
traces. Each curve prints its figures at each size and the ratio to the smallest size.

    python bench/scale.py [--agents 1000,5000,20000] [--traces 1000,10000,100000]

- boot: `llmunix boot --json` as a whole process, warm spec cache, over N agent specs + 200
  tool specs (bench/boot.py's generator); goal: 20,000 agents <= 1 s.
- memory: one workspace grown to each size with synthetic short-term traces over 4 projects
  (bench/memory_search.py's generator: repeated goals, 85% successful), some of them learned;
  at each size: search p50/p95 (the index opened afresh per query, as a CLI call does),
  match_goal p50/p95, and both right after a new run (one more trace on disk: what each real
  run pays). Goal: search and goal matching p95 <= 50 ms at 100,000 traces.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import boot as boot_bench
import memory_search as gen
from _common import ROOT, llmunix_cmd, percentile

from llmunix.memory import MemoryIndex, consolidate, match_goal
from llmunix.specs.cache import CACHE_FILE
from llmunix.workspace.layout import Workspace
from llmunix.workspace.scaffold import init_workspace

QUERIES = 100
GOALS = 50


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:7.1f} ms"


def boot_curve(sizes: list[int], tmp: Path) -> None:
    print("boot --json, whole CLI, warm spec cache (median of 3); CPU = user + system seconds")
    print(f"{'agents':>8}  {'wall':>8}  {'CPU':>7}  {'per spec':>9}  {'vs smallest':>11}  "
          f"first boot (CPU)  load")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(ROOT)
    first = None
    for n in sizes:
        boot_bench.AGENTS = n
        ws = boot_bench.make_workspace(tmp / f"boot-{n}")
        argv = [*llmunix_cmd(), "boot", "--json"]
        cold, cold_cpu = boot_bench.wall_and_cpu(
            argv, 1, ws.root, env,
            before=lambda ws=ws: (ws.root / CACHE_FILE).unlink(missing_ok=True))
        walls, cpus = boot_bench.wall_and_cpu(argv, 3, ws.root, env)
        wall, cpu = statistics.median(walls), statistics.median(cpus)
        first = first or wall
        print(f"{n:>8,}  {wall:>6.3f} s  {cpu:>5.3f} s  {wall / (n + 200) * 1e3:>6.3f} ms  "
              f"{wall / first:>10.2f}x  {cold[0]:.3f} s ({cold_cpu[0]:.3f} s)  "
              f"{os.getloadavg()[0]:.1f}")
        shutil.rmtree(ws.root)
    print("goal: 20,000 agents <= 1 s\n")


def timed_queries(ws: Workspace, queries: list[str]) -> list[float]:
    out = []
    for query in queries:
        start = time.perf_counter()
        with MemoryIndex(ws) as index:
            index.search(query, limit=10)
        out.append(time.perf_counter() - start)
    return out


def timed_matches(ws: Workspace, goals: list[tuple[str, str]]) -> list[float]:
    out = []
    for project, goal in goals:
        start = time.perf_counter()
        match_goal(ws, project, goal)
        out.append(time.perf_counter() - start)
    return out


def after_a_run(ws: Workspace, rng: random.Random, n: int, what) -> float:
    """Median time of `what()` right after one more trace lands in a project."""
    out = []
    for i in range(n):
        project = gen.PROJECTS[i % len(gen.PROJECTS)]
        gen.write_trace(ws.project(project).short_term_dir, project, f"Water bonsai number {i}",
                        "bonsai.md", gen.T0, rng)
        start = time.perf_counter()
        what(project)
        out.append(time.perf_counter() - start)
    return statistics.median(out)


def memory_curve(sizes: list[int], tmp: Path) -> None:
    rng = random.Random(3)
    clock = time.perf_counter()
    traces = gen.generate(tmp / "traces", sizes[-1])
    print(f"memory: generated {len(traces):,} traces in {time.perf_counter() - clock:.0f} s")
    init_workspace(tmp / "mem")
    ws = Workspace(tmp / "mem")
    config = ws.config_path.read_text(encoding="utf-8")
    ws.config_path.write_text(config.replace("keep_short_term = 200", "keep_short_term = 10000000"),
                              encoding="utf-8")
    ws = Workspace(ws.root)
    for project in gen.PROJECTS:
        ws.ensure_project(project)
    # learned traces: the first 500 runs consolidated (distinct goals), the rest stays short-term
    moved = 0
    queries = [" ".join(rng.sample((*gen.VERBS, *gen.THINGS, *gen.FORMATS, "client"),
                                   rng.randrange(1, 4))) for _ in range(QUERIES)]
    goals = [(rng.choice(gen.PROJECTS), gen.synthetic_goal(rng)[0]) for _ in range(GOALS)]
    print(f"{'traces':>8}  {'index':>9}  {'search p50':>10}  {'p95':>10}  {'match p50':>10}  "
          f"{'p95':>10}  {'search after a run':>18}  {'match after a run':>17}")
    base = None
    for n in sizes:
        for project, path in traces[moved:n]:
            shutil.move(path, ws.project(project).short_term_dir / path.name)
        if moved == 0:
            consolidate(ws)  # learned traces of the goals seen so far
        moved = n
        clock = time.perf_counter()
        with MemoryIndex(ws) as index:
            index.refresh()
        build = time.perf_counter() - clock
        search = timed_queries(ws, queries)
        matches = timed_matches(ws, goals)
        s_after = after_a_run(ws, rng, 5, lambda p: timed_queries(ws, ["bonsai water"]))
        m_after = after_a_run(ws, rng, 5, lambda p: match_goal(ws, p, "Water bonsai number 1"))
        p95 = (percentile(search, 95), percentile(matches, 95))
        base = base or p95
        print(f"{n:>8,}  {build:>7.2f} s  {ms(statistics.median(search))}  {ms(p95[0])}  "
              f"{ms(statistics.median(matches))}  {ms(p95[1])}  {ms(s_after):>18}  "
              f"{ms(m_after):>17}")
    print(f"p95 at the largest size vs the smallest: search {p95[0] / base[0]:.1f}x, "
          f"goal matching {p95[1] / base[1]:.1f}x; goal: both <= 50 ms at 100,000 traces")
    with MemoryIndex(ws) as index:
        size = os.path.getsize(index.path)
    print(f"index file at {sizes[-1]:,} traces: {size / 2**20:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", default="1000,5000,20000")
    parser.add_argument("--traces", default="1000,10000,100000")
    args = parser.parse_args()
    agents = [int(x) for x in args.agents.split(",") if x]
    traces = sorted(int(x) for x in args.traces.split(",") if x)
    with tempfile.TemporaryDirectory(prefix="llmunix-scale-") as tmp:
        if agents:
            boot_curve(agents, Path(tmp))
        if traces:
            memory_curve(traces, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
