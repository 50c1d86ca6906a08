"""What the sandbox costs: one built-in Bash call (`true`, and `ls` of the workspace) in
bubblewrap against the same call unconfined (`[sandbox] mode = "off"`), alternated call by call
in one run through llmunix's own Bash (tools/builtin), so both pay the same Python overhead.
Goal: at most 15 ms added per call (median)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from _common import median

from llmunix.policy.gate import Policy
from llmunix.tools.builtin import run_builtin
from llmunix.tools.sandbox import Sandbox

CALLS = 200
GOAL_MS = 15.0


def timed(policy: Policy, sandbox: Sandbox, command: str) -> float:
    start = time.perf_counter()
    result = run_builtin("Bash", {"command": command}, policy=policy, sandbox=sandbox)
    elapsed = time.perf_counter() - start
    assert not result.is_error, result.output
    return elapsed


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "workspace"
        work.mkdir()
        for i in range(50):
            (work / f"file-{i:02d}.md").write_text("notes\n")
        policy = Policy(work)
        confined = Sandbox.create(work)
        confined.check()
        plain = Sandbox.create(work, mode="off")
        print(f"{CALLS} calls each, alternated; medians")
        for command in ("true", "ls"):
            timed(policy, confined, command)  # warm caches once
            timed(policy, plain, command)
            inside, outside = [], []
            for _ in range(CALLS):
                inside.append(timed(policy, confined, command))
                outside.append(timed(policy, plain, command))
            a, b = median(inside) * 1000, median(outside) * 1000
            added = a - b
            verdict = "ok" if added <= GOAL_MS else "MISSED"
            print(f"Bash `{command}`: sandboxed {a:.1f} ms, unconfined {b:.1f} ms, "
                  f"added {added:.1f} ms (ratio {a / b:.2f}x; goal <= {GOAL_MS:g} ms added: "
                  f"{verdict})")


if __name__ == "__main__":
    main()
