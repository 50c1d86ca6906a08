"""Start-up time of the CLI: `llmunix --version` and `llmunix --help`, median wall time.

Floor: bare `python -c pass`. Peer: `llm --version` (simonw/llm) when it is installed.
Goal: at most 0.15 s for both.
"""

from __future__ import annotations

import shutil
import sys

from _common import llmunix_cmd, median, row, time_command

RUNS = 20


def main() -> None:
    cmd = llmunix_cmd()
    floor = median(time_command([sys.executable, "-c", "pass"], RUNS))
    version = median(time_command([*cmd, "--version"], RUNS))
    help_ = median(time_command([*cmd, "--help"], RUNS))
    sdk = median(time_command([sys.executable, "-c", "import claude_agent_sdk"], 5))
    print(f"median of {RUNS} runs each, after a warm-up run")
    row("python -c pass (floor)", f"{floor:.3f} s")
    row("llmunix --version", f"{version:.3f} s", "goal <= 0.15 s", f"{version / floor:.1f}x floor")
    row("llmunix --help", f"{help_:.3f} s", "goal <= 0.15 s", f"{help_ / floor:.1f}x floor")
    row("python -c 'import claude_agent_sdk' (avoided)", f"{sdk:.3f} s")
    peer = shutil.which("llm")
    if peer:
        llm = median(time_command([peer, "--version"], RUNS))
        row("llm --version (peer)", f"{llm:.3f} s", "", f"llmunix is {llm / version:.1f}x faster")
    else:
        row("llm --version (peer)", "not installed", "", "pip install llm to compare")


if __name__ == "__main__":
    main()
