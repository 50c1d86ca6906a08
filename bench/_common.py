"""Shared helpers for the benchmark scripts (run them as `python bench/<name>.py`)."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def llmunix_cmd() -> list[str]:
    exe = shutil.which("llmunix", path=str(Path(sys.executable).parent)) or shutil.which("llmunix")
    return [exe] if exe else [sys.executable, "-m", "llmunix"]


def time_command(argv: list[str], runs: int, cwd: Path | None = None,
                 env: dict[str, str] | None = None, before=None) -> list[float]:
    """Wall-clock seconds of `runs` runs of argv (after one warm-up run); `before` runs
    untimed before each."""
    full_env = {**os.environ, **(env or {})}
    subprocess.run(argv, cwd=cwd, env=full_env, capture_output=True, check=False)
    times = []
    for _ in range(runs):
        if before is not None:
            before()
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, env=full_env, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return times


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def row(label: str, value: str, goal: str = "", note: str = "") -> None:
    print(f"{label:<44} {value:>12}  {goal:<14} {note}")


def stream_bodies(url: str, bodies: list[dict], client: str = "openai") -> float:
    """Send chat-completion `bodies` one after the other, streamed and read to the end, with
    the bare `openai` client or llmunix's own wire (`client="wire"`): wall seconds."""
    import asyncio

    async def send_all() -> None:
        if client == "wire":
            from llmunix.runtimes.openai_http import Client

            async with Client(url, "bench") as wire:
                for body in bodies:
                    async with wire.stream("/chat/completions", body, timeout=60) as stream:
                        async for _ in stream:
                            pass
            return
        import openai

        async with openai.AsyncOpenAI(base_url=url, api_key="bench", max_retries=0) as bare:
            for body in bodies:
                stream = await bare.post("/chat/completions", body=body, cast_to=object,
                                         stream=True, stream_cls=openai.AsyncStream[object])
                async for _ in stream:
                    pass

    start = time.perf_counter()
    asyncio.run(send_all())
    return time.perf_counter() - start


class Finished(NamedTuple):
    wall: float  # seconds
    cpu: float  # user + system seconds, the children it reaped included
    rss_mb: float  # the largest of it and the children it reaped (wait4's figure)
    code: int
    stderr: str


def child(argv: list[str], cwd: Path | None, env: dict[str, str] | None) -> Finished:
    """One process run to its end, with its rusage from wait4: its own and its reaped
    children's (the children's rusage of this process would be the largest child so far)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    stderr = proc.stderr.read().decode("utf-8", "replace")
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    proc.stderr.close()
    return Finished(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
                    proc.returncode, stderr)


# Runs the CLI in this Python and writes its own peak RSS (kB) to argv[1] as it exits (exit
# handlers run before llmunix ends the process): wait4's figure would include the children it
# reaped, the Claude CLI's ~240 MB among them.
_SELF_RSS = r"""
import atexit, resource, sys
out = sys.argv[1]
peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
atexit.register(lambda: open(out, "w").write(str(peak())))
sys.argv = ["llmunix", *sys.argv[2:]]
from llmunix.cli.main import main
main()
"""


def llmunix_rss_cmd(out: Path) -> list[str]:
    """`llmunix` that leaves its own peak RSS in kB in `out` (see `self_rss_mb`)."""
    return [sys.executable, "-c", _SELF_RSS, str(out)]


def self_rss_mb(out: Path) -> float:
    return int(out.read_text()) / 1024
