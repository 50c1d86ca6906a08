"""The crystallized runtime: a goal that fits a crystallized tool's pattern is done by calling
that tool once, with the arguments bound from the goal - no model, no replay of steps. The call
goes through the session like any tool call: the same gate, the same executor, one trace step."""

from __future__ import annotations

from llmunix.errors import LlmunixError
from llmunix.kernel.session import RunSession
from llmunix.runtimes.base import Runtime


class CrystallizedRuntime(Runtime):
    name = "crystallized"
    synchronous = True  # one tool call, run in place: no event loop needed (runtimes/drive.py)

    def __init__(self, tool: str, args: dict[str, str]) -> None:
        self.tool = tool
        self.args = args

    async def run(self, session: RunSession) -> str:
        result = await session.execute(session.agent.name, self.tool, self.args,
                                       "crystallized-1", in_thread=False)
        if result.is_error:
            lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
            raise LlmunixError(f"crystallized tool {self.tool} failed: "
                               f"{lines[-1] if lines else '(no output)'}")
        return result.output
