"""Running a synchronous runtime's `run()` coroutine without an event loop.

A runtime that never waits on I/O (the replay: every step runs in place) is marked
`synchronous`; run/runner.py then calls `run_now` instead of `asyncio.run`: importing asyncio
(and the ssl it pulls in) is ~15 ms and ~8 MB of a replay that would use none of it. Its timeout
is the session's `check_limits()` after each step, as it was under the event loop (a coroutine
that never yields cannot be timed out by asyncio either).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmunix.errors import LlmunixError

if TYPE_CHECKING:
    from llmunix.kernel.session import RunSession
    from llmunix.runtimes.base import Runtime


def run_now(runtime: Runtime, session: RunSession) -> str:
    """Drive `runtime.run(session)` to its end in this thread and return its answer."""
    coro = runtime.run(session)
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise LlmunixError(f"the {runtime.name} runtime waited on I/O, so it cannot run without an "
                       "event loop (it must not be marked synchronous)")
