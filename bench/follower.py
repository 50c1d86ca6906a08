"""Follower vs learner on the same goal: the hello-notes example (6 tool calls, one delegation).

The learner runs the OpenAI runtime against a scripted model on 127.0.0.1 that answers at once
(no realistic model delay, so the figure is llmunix against itself, not against model latency);
the follower replays the learned trace with no model. Both run in-process through
`runner.run`, alternated. Goals: 100% of tokens saved; follower at least 20x faster.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from _common import median, row

from llmunix.memory import consolidate
from llmunix.run.runner import RunRequest, run
from llmunix.workspace.layout import Workspace
from llmunix.workspace.scaffold import init_workspace
from tests.examples import hello_notes
from tests.scripted.openai_server import OpenAIServer

ROUNDS = 7


def timed(ws: Workspace, request: RunRequest):
    start = time.perf_counter()
    outcome = run(ws, request, lambda event: None)
    elapsed = time.perf_counter() - start
    assert outcome.status == "success", outcome.reason
    return elapsed, outcome


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, OpenAIServer() as server:
        ws_root = Path(tmp) / "ws"
        init_workspace(ws_root, example=hello_notes.PROJECT)
        ws = Workspace(ws_root)
        project = ws.project(hello_notes.PROJECT)
        for path in project.long_term_dir.glob("*.md"):
            path.unlink()
        learner = RunRequest(goal=hello_notes.GOAL, project=project.name, mode="learner",
                             runtime="openai", model=hello_notes.MODEL,
                             runtime_options={"base_url": server.url})
        follower = RunRequest(goal=hello_notes.GOAL, project=project.name, mode="auto")
        hello_notes.script(server)
        timed(ws, learner)  # warm-up, and the run that is learned
        consolidate(ws, project)
        learn_times, follow_times, learn_loop, follow_loop = [], [], [], []
        for _ in range(ROUNDS):
            hello_notes.script(server)
            elapsed, learned = timed(ws, learner)
            learn_times.append(elapsed)
            learn_loop.append(learned.duration_s)
            elapsed, followed = timed(ws, follower)
            follow_times.append(elapsed)
            follow_loop.append(followed.duration_s)
            assert followed.input_tokens == followed.output_tokens == 0
        tokens = learned.input_tokens + learned.output_tokens
        ratio = median(learn_times) / median(follow_times)
        print(f"hello-notes goal, {ROUNDS} alternated rounds, in-process, median")
        row("learner (scripted model, no delay)", f"{median(learn_times) * 1e3:.1f} ms",
            "", f"{learned.turns} turns, {tokens} tokens")
        row("follower (replay, no model)", f"{median(follow_times) * 1e3:.1f} ms", "",
            f"{followed.turns} turns, 0 tokens")
        row("tokens saved", "100%" if tokens else "n/a", "goal 100%")
        row("follower speed-up, whole run", f"{ratio:.1f}x", "goal >= 20x")
        loop_ratio = median(learn_loop) / median(follow_loop)
        row("  of which the loop (model or replay)", f"{median(learn_loop) * 1e3:.1f} ms",
            "", f"vs {median(follow_loop) * 1e3:.1f} ms: {loop_ratio:.1f}x")
        fixed = median(follow_times) - median(follow_loop)
        row("  fixed per-run cost (both modes)", f"{fixed * 1e3:.1f} ms", "",
            "registry, goal matching, trace, git commit")
        print("With a model that takes 1 s per turn (typical of a hosted model), the learner "
              f"would take ~{median(learn_times) + learned.turns:.1f} s: "
              f"{(median(learn_times) + learned.turns) / median(follow_times):.0f}x the follower.")


if __name__ == "__main__":
    main()
