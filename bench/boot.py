"""`llmunix boot --json` over a workspace with 1,000 agent specs, 200 tool specs, 300 skills and
100 slash commands.

Generates its own workspace in a temporary folder. Goals (issue 17): at most 0.3 s wall warm
(the spec cache in place), 0.6 s on a first boot (no cache). Wall and CPU seconds of the whole
process are both printed: on a loaded machine the CPU figure is the steadier one.
"""

from __future__ import annotations

import os
import resource
import subprocess
import tempfile
import time
from pathlib import Path

from _common import llmunix_cmd, median, row

from llmunix.specs.cache import CACHE_FILE
from llmunix.specs.registry import boot
from llmunix.workspace.layout import Workspace
from llmunix.workspace.scaffold import init_workspace

AGENTS, TOOLS, SKILLS, COMMANDS, RUNS = 1000, 200, 300, 100, 7


def make_workspace(root: Path) -> Workspace:
    init_workspace(root)
    ws = Workspace(root)
    tools = ws.system_tools_dir
    for i in range(TOOLS):
        kind = i % 3
        run = ('command: ["wc", "-l", "{path}"]' if kind == 0 else
               "python: count" if kind == 1 else "")
        block = "\n```python\ndef count(path):\n    return len(open(path).read())\n```\n" \
            if kind == 1 else "\nCount the lines of the file and answer with the number.\n"
        (tools / f"tool-{i:04d}.md").write_text(
            f"---\nname: tool-{i:04d}\ndescription: Synthetic tool number {i}.\n"
            f"input:\n  path: {{type: string, description: a file}}\n{run}\ntimeout: 10\n---\n"
            f"{block}"
        )
    for i in range(SKILLS):
        folder = root / (".claude/skills" if i % 2 else "skills") / f"skill-{i:04d}"
        folder.mkdir(parents=True)
        (folder / "SKILL.md").write_text(
            f"---\nname: skill-{i:04d}\ndescription: Synthetic skill {i}: use it for job {i}.\n"
            "allowed-tools: Read, Grep\n---\n" + "Follow these steps carefully. " * 200 + "\n")
        (folder / "reference.md").write_text("Reference material.\n" * 50)
    for i in range(COMMANDS):
        folder = root / ".claude" / "commands" / f"group-{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"command-{i:04d}.md").write_text(
            f"---\ndescription: Synthetic command {i}.\nargument-hint: [file] [mode]\n---\n"
            f"Do task {i} on $1 in mode $2.\n")
    for i in range(AGENTS):
        folder = ws.user_agents_dir if i % 2 else ws.system_agents_dir
        (folder / f"Agent{i:04d}.md").write_text(
            f"---\nname: agent-{i:04d}\ndescription: Synthetic agent {i}; use it for task {i}.\n"
            f"tools: Read, Write, Grep, tool-{i % TOOLS:04d}\nmodel: sonnet\n"
            f"llmunix:\n  max_turns: {10 + i % 20}\n  constraints:\n    write_paths: "
            f"[\"out/{i}/**\"]\n---\nYou are synthetic agent {i}.\n\n" + "Be precise. " * 40 + "\n"
        )
    return ws


def wall_and_cpu(argv: list[str], runs: int, cwd: Path, env: dict | None = None,
                 before=None) -> tuple[list[float], list[float]]:
    """Wall and CPU (user + system) seconds of each of `runs` runs (after one untimed)."""
    full_env = {**os.environ, **(env or {})}
    subprocess.run(argv, cwd=cwd, env=full_env, capture_output=True, check=False)
    walls, cpus = [], []
    for _ in range(runs):
        if before is not None:
            before()
        r0, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        subprocess.run(argv, cwd=cwd, env=full_env, capture_output=True, check=False)
        walls.append(time.perf_counter() - start)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    return walls, cpus


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ws = make_workspace(Path(tmp) / "ws")
        cache = ws.root / CACHE_FILE
        cold, warm = [], []
        for _ in range(RUNS):
            cache.unlink(missing_ok=True)
            start = time.perf_counter()
            report = boot(ws)
            cold.append(time.perf_counter() - start)
            start = time.perf_counter()
            boot(ws)
            warm.append(time.perf_counter() - start)
        assert report.ok, report.diagnostics[:3]
        assert len(report.registry.agents) >= AGENTS
        assert len(report.registry.skills) == SKILLS
        assert len(report.registry.commands) == COMMANDS
        wall, cpu = wall_and_cpu([*llmunix_cmd(), "boot", "--json"], RUNS, ws.root)
        cold_wall, cold_cpu = wall_and_cpu([*llmunix_cmd(), "boot", "--json"], 3, ws.root,
                                           before=lambda: cache.unlink(missing_ok=True))
        specs = AGENTS + TOOLS + SKILLS + COMMANDS
        print(f"{AGENTS} agent specs + {TOOLS} tool specs + {SKILLS} skills + {COMMANDS} "
              f"commands, median of {RUNS} runs; load average {os.getloadavg()[0]:.1f}")
        row("boot() in-process, every file parsed", f"{median(cold):.3f} s", "",
            f"{median(cold) / specs * 1e3:.3f} ms per spec")
        row("boot() in-process, unchanged files cached", f"{median(warm):.3f} s")
        row("llmunix boot --json (wall, whole CLI)", f"{median(wall):.3f} s", "goal <= 0.3 s",
            f"{median(wall) / 0.3:.2f} of goal; CPU {median(cpu):.3f} s")
        row("  the same with no spec cache (first boot)", f"{median(cold_wall):.3f} s",
            "goal <= 0.6 s", f"{median(cold_wall) / 0.6:.2f} of goal; CPU {median(cold_cpu):.3f} s")

if __name__ == "__main__":
    main()
