"""The replay runtime: follows a recorded trace's tool calls in order, with no model at all.

Every call goes through the same policy gate and the same tool implementations as a live run
(llmunix's own built-ins and tool specs), whichever runtime recorded the trace. The first step
that does not do what the recording did stops the replay with a precise report.
"""

from __future__ import annotations

from llmunix.kernel.session import RunSession
from llmunix.memory.replay import ReplayMismatch, ReplaySource, check_step
from llmunix.runtimes.base import Runtime


class ReplayRuntime(Runtime):
    name = "replay"
    synchronous = True  # every step runs in place: no event loop needed

    def __init__(self, source: ReplaySource) -> None:
        self.source = source

    async def run(self, session: RunSession) -> str:
        for step in self.source.steps:
            if step.kind == "subagent start":
                session.subagent_started(step.agent, step.parent, step.call_id)
                continue
            if step.kind == "subagent end":
                session.subagent_finished(step.agent, step.parent, step.call_id)
                continue
            result = await session.execute(step.agent, step.tool, step.input,
                                           f"replay-{step.number}", in_thread=False,
                                           whole=True)
            spec = session.registry.tools.get(step.tool)
            problem = check_step(step, result, session.workspace_dir,
                                 deterministic=bool(spec and spec.deterministic))
            if problem:
                raise ReplayMismatch(
                    f"{step.describe()} of {self.source.trace_id}: {problem}",
                    path=self.source.path,
                    hint="the workspace changed since the trace was recorded; run the goal as "
                    "a learner (--mode learner) to record a new one",
                )
            session.check_limits()
        return self.source.result
