"""A learned goal replayed as a whole process: `llmunix run "<goal>"` of the hello-notes example
(follower mode, no model: 6 tool calls, one delegation, a trace, a git commit), against the floor
of a bare Python doing the same file operations and one `git add` + `git commit`.

    python bench/replay.py [--rounds 15]

Both run in a fresh `llmunix init --example hello-notes` workspace, alternated; figures are
medians of wall time, CPU time (user + system, the part load on a shared machine does not
inflate) and peak RSS. Python caches bytecode as it would for an installed package (a run with
PYTHONDONTWRITEBYTECODE set would compile every module each time). Also printed: the Python
modules a replay imports that it should not (model clients, GitPython, typer, telemetry) and the
processes left behind. Goals (issue 17): <= 0.25 s wall, <= 6x the floor; RSS <= 40 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, child, llmunix_cmd, median, row

from tests.examples import hello_notes

# The floor: what the replay does, done by hand (read 3 notes, glob, write, read back, commit).
FLOOR = r"""
import glob, os, subprocess, sys
os.chdir(sys.argv[1])
work = "projects/hello-notes/workspace"
notes = sorted(glob.glob(work + "/meetings/*.md"))
texts = [open(p, encoding="utf-8").read() for p in notes]
with open(work + "/action_items.md", "w", encoding="utf-8") as f:
    f.write(sys.argv[2])
open(work + "/action_items.md", encoding="utf-8").read()
subprocess.run(["git", "add", "--", work], check=True)
subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "floor", "--", work], check=True)
"""

# Run the CLI in-process and report what it imported (atexit runs before llmunix exits).
PROBE = r"""
import atexit, json, sys
from llmunix.cli.main import main
out = sys.argv[1]
def report():
    with open(out, "w") as f:
        json.dump(sorted(sys.modules), f)
atexit.register(report)
sys.argv = ["llmunix", *sys.argv[2:]]
main()
"""

UNWANTED = ("openai", "anthropic", "claude_agent_sdk", "httpx", "git", "opentelemetry", "ssl",
            "asyncio", "watchdog", "prompt_toolkit", "jsonschema", "filelock", "typer", "pydantic")


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, float]:
    """(wall s, cpu s, peak RSS MB) of one child process (`_common.child`): the git processes a
    run starts (and reaps) count in its CPU time; its RSS is the largest of them and it."""
    done = child(argv, cwd, env)
    if done.code != 0:
        raise SystemExit(f"{argv[:3]} failed ({done.code}): {done.stderr[-2000:]}")
    return done.wall, done.cpu, done.rss_mb


def leftovers(pid_before: set[int], where: Path) -> list[str]:
    """Processes started since `pid_before` still running (or unreaped) in `where`."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in pid_before:
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if cwd == str(where) or cwd.startswith(f"{where}/"):
            out.append(f"{entry} {cmd.strip()}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(ROOT)
    cli = llmunix_cmd()
    with tempfile.TemporaryDirectory(prefix="llmunix-replay-") as tmp:
        ws = Path(tmp) / "ws"
        subprocess.run([*cli, "init", str(ws), "--example", hello_notes.PROJECT], check=True,
                       capture_output=True, env=env)
        goal = ["run", hello_notes.GOAL, "--project", hello_notes.PROJECT]
        floor_script = Path(tmp) / "floor.py"
        floor_script.write_text(FLOOR, encoding="utf-8")
        floor = [sys.executable, "-S", str(floor_script), str(ws), hello_notes.ACTION_ITEMS]
        for _ in range(2):  # warm-up: bytecode caches, spec cache, memory index
            timed([*cli, *goal], ws, env)
            timed(floor, ws, env)
        runs, floors = [], []
        for _ in range(args.rounds):
            runs.append(timed([*cli, *goal], ws, env))
            floors.append(timed(floor, ws, env))
        modules_file = Path(tmp) / "modules.json"
        pids = {int(p) for p in os.listdir("/proc") if p.isdigit()}
        subprocess.run([sys.executable, "-c", PROBE, str(modules_file), *goal], cwd=ws, env=env,
                       check=True, capture_output=True)
        time.sleep(0.2)  # let an orphan show up in /proc before looking
        left = leftovers(pids, ws)
        modules = json.loads(modules_file.read_text())
        log = subprocess.run(["git", "log", "--oneline"], cwd=ws, capture_output=True, text=True)
    wall, cpu, rss = (median([r[i] for r in runs]) for i in range(3))
    f_wall, f_cpu = (median([r[i] for r in floors]) for i in range(2))
    print(f"hello-notes follower run, whole process, median of {args.rounds} alternated rounds")
    row("llmunix run (replay, wall)", f"{wall:.3f} s", "goal <= 0.25 s",
        f"{wall / f_wall:.1f}x the floor (goal <= 6x)")
    row("  CPU time (user + system)", f"{cpu:.3f} s", "", f"floor {f_cpu:.3f} s")
    row("  peak RSS", f"{rss:.1f} MB", "goal <= 40 MB")
    row("floor: bare Python, same file ops + git commit", f"{f_wall:.3f} s")
    unwanted = sorted({m.split(".")[0] for m in modules} & set(UNWANTED))
    row("modules a replay should not import", str(len(unwanted)), "goal 0",
        ", ".join(unwanted) or "none")
    row("modules imported in all", str(len(modules)))
    row("processes left after the run", str(len(left)), "goal 0", "; ".join(left))
    row("run commits in git", str(log.stdout.count(" run ")), "",
        f"{args.rounds + 3} runs made")


if __name__ == "__main__":
    main()
