"""The one interface every runtime implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from llmunix.kernel.session import RunSession


class Runtime(ABC):
    name: ClassVar[str]
    # True for a runtime whose run() never waits on I/O (the replay): runtimes/drive.py then
    # runs it without an event loop.
    synchronous: ClassVar[bool] = False

    def preflight(self) -> None:
        """Raise RuntimeUnavailable (with how to fix it) if this runtime cannot run at all.
        Called before a trace is opened, so a run that cannot start leaves nothing behind."""
        return None

    @property
    def model(self) -> str:
        """The model this runtime will call ("" when it calls none)."""
        return ""

    @abstractmethod
    async def run(self, session: RunSession) -> str:
        """Run `session.goal` as `session.agent` to the end and return the final answer.

        Report as you go, through the session, which enforces limits and writes the trace:
        - each model response: `session.model_turn(input_tokens=..., output_tokens=...)` — it
          raises LimitReached when a limit is hit; let that propagate;
        - assistant text: `session.text(agent, text)`;
        - tools llmunix runs (built-ins of llmunix's own loop, tool specs): `await
          session.execute(agent, tool, input, call_id)`, which gates, runs and records;
        - tools the runtime runs itself: gate with `session.check(agent, tool, input)` before,
          record with `session.tool_called(...)` after;
        - delegation: `session.subagent_started(...)` / `session.subagent_finished(...)`.
        Raise an LlmunixError for a failure the user can act on.
        """
