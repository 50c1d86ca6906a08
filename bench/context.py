"""The context window as RAM: what counting and paging cost per turn, and MemorySearch latency.

    python bench/context.py [--turns 100] [--traces 10000] [--queries 200]

1. Counting + paging per turn: an agent loop's history of `--turns` turns (a tool call and a
   2,000-character result each) is built, then `--turns` more turns run, each timing the
   pager's `before_request()` (count the prompt; page out / fold when above the high-water mark;
   each paging event written to a real trace as the run would). At 8K the pager pages every few
   turns; at 128K it only counts. The floor it is compared with is what every request costs
   anyway: serializing the request body to JSON (the openai client does it for each turn).
   Goal: at most 2 ms per turn.
2. MemorySearch over `--traces` short-term traces (bench/memory_search.py's generator): the tool
   as an agent calls it (index freshness check, ranked search, the lines the model reads), each
   call opening the index afresh. Compared with `llmunix memory search`'s own library call on
   the same index. Goal: p95 at most 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from llmunix.context.pager import Pager  # noqa: E402
from llmunix.kernel.context_log import ContextLog  # noqa: E402
from llmunix.trace.events import ToolCalled  # noqa: E402
from llmunix.trace.markdown import TraceWriter  # noqa: E402
from llmunix.workspace.config import ContextConfig  # noqa: E402

RESULT_CHARS = 2_000
TOOLS = [{"type": "function", "function": {
    "name": name, "description": f"The {name} tool.",
    "parameters": {"type": "object", "properties": {"file_path": {"type": "string"}},
                   "required": ["file_path"]}}} for name in ("Read", "Write", "Grep", "Glob")]


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def _turn(log: ContextLog, writer: TraceWriter, messages: list[dict], n: int) -> None:
    call_id = f"call_{n}"
    args = {"file_path": f"notes/file-{n:04d}.md"}
    messages.append({"role": "assistant", "content": f"Reading file {n}." if n % 3 else None,
                     "tool_calls": [{"id": call_id, "type": "function", "function": {
                         "name": "Read", "arguments": json.dumps(args)}}]})
    line = f"{n:6d}\tline of file {n} with some words in it and a number {n * 7}\n"
    output = (line * (RESULT_CHARS // len(line) + 1))[:RESULT_CHARS]
    writer.tool_called(ToolCalled(call_id, "bench", "Read", args, output, False, 0.01,
                                  "allowed"))
    log.record(call_id, "bench", "Read", args, len(output))
    messages.append({"role": "tool", "tool_call_id": call_id, "content": output})


async def _loop(window: int, turns: int, folder: Path) -> dict:
    writer = TraceWriter(folder / f"bench-{window}.md", {"trace_id": f"bench-{window}",
                                                          "goal": "bench"})
    log = ContextLog(writer, lambda event: None)
    settings = ContextConfig(summarize=False)
    pager = Pager(log, "bench", window, settings)
    messages = [{"role": "system", "content": "You are a careful agent. " * 40},
                {"role": "user", "content": "Read every note and summarize them."}]
    for n in range(turns):  # the history
        _turn(log, writer, messages, n)
        await pager.before_request(messages, TOOLS)
    paged_before = log.paged
    paging, floor = [], []
    for n in range(turns, 2 * turns):
        _turn(log, writer, messages, n)
        t0 = time.perf_counter()
        await pager.before_request(messages, TOOLS)
        t1 = time.perf_counter()
        json.dumps({"model": "m", "messages": messages, "tools": TOOLS})
        t2 = time.perf_counter()
        paging.append(t1 - t0)
        floor.append(t2 - t1)
    writer.finish({"status": "success"}, "")
    return {"paging": paging, "floor": floor, "events": log.paged - paged_before,
            "tokens": await pager.count(messages, TOOLS), "messages": len(messages)}


def bench_paging(turns: int) -> None:
    print(f"counting + paging per turn, a {turns}-turn history then {turns} more turns "
          f"({RESULT_CHARS:,}-character results)")
    print(f"{'window':>8}  {'mean':>8}  {'p50':>8}  {'p95':>8}  {'max':>8}  {'paging events':>13}  "
          f"{'fill':>6}  {'floor (JSON body)':>17}  {'ratio':>5}")
    with tempfile.TemporaryDirectory(prefix="llmunix-bench-") as tmp:
        for window in (8_192, 131_072):
            r = asyncio.run(_loop(window, turns, Path(tmp)))
            mean = statistics.fmean(r["paging"])
            floor = statistics.fmean(r["floor"])
            print(f"{window:>8,}  {mean * 1e3:6.3f}ms  "
                  f"{percentile(r['paging'], 50) * 1e3:6.3f}ms  "
                  f"{percentile(r['paging'], 95) * 1e3:6.3f}ms  {max(r['paging']) * 1e3:6.3f}ms  "
                  f"{r['events']:>13}  "
                  f"{r['tokens'] / window:>6.0%}  {floor * 1e3:15.3f}ms  "
                  f"{mean / floor:5.2f}")
    print("goal: at most 2 ms per turn\n")


def bench_search(traces: int, queries: int) -> None:
    import random

    from memory_search import generate, synthetic_goal, workspace_with

    from llmunix.memory import search
    from llmunix.memory.agent_tools import AgentMemory

    with tempfile.TemporaryDirectory(prefix="llmunix-bench-") as tmp:
        root = Path(tmp)
        clock = time.perf_counter()
        ws = workspace_with(root / "ws", generate(root / "traces", traces))
        print(f"MemorySearch over {traces:,} traces (workspace built in "
              f"{time.perf_counter() - clock:.1f} s)")
        project = ws.project("default")
        memory = AgentMemory(ws, project)
        rng = random.Random(3)
        goals = [synthetic_goal(rng)[0] for _ in range(queries)]
        memory.run("MemorySearch", {"query": goals[0]})  # builds the index once
        tool, library = [], []
        for n, goal in enumerate(goals):
            query = " ".join(goal.split()[:4])
            # the same query twice runs warm the second time: alternate which goes first
            for first in ((True, False) if n % 2 else (False, True)):
                t0 = time.perf_counter()
                if first:
                    result = memory.run("MemorySearch", {"query": query, "limit": 5})
                    assert not result.is_error, result.output
                else:
                    search(ws, query, project="default", limit=5)
                (tool if first else library).append(time.perf_counter() - t0)
        print(f"{'':>22}  {'p50':>8}  {'p95':>8}")
        print(f"{'MemorySearch (tool)':>22}  {percentile(tool, 50) * 1e3:6.1f}ms  "
              f"{percentile(tool, 95) * 1e3:6.1f}ms")
        print(f"{'memory search (CLI)':>22}  {percentile(library, 50) * 1e3:6.1f}ms  "
              f"{percentile(library, 95) * 1e3:6.1f}ms")
        print(f"ratio tool / CLI search at p95: "
              f"{percentile(tool, 95) / percentile(library, 95):.2f}; goal: p95 at most 50 ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=100)
    parser.add_argument("--traces", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    bench_paging(args.turns)
    bench_search(args.traces, args.queries)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
