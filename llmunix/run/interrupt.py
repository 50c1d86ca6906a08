"""Ctrl-C during a run: the first press stops every running tool at once (its whole process
tree, through tools/process.py) and cancels the run, which then records the interrupted call and
ends `interrupted`; a second press raises KeyboardInterrupt on the spot.

Python's default handling is not enough: a tool runs in a worker thread, and the event loop
waits for that thread (and so for the tool's process, which sits in its own session and never
sees the terminal's SIGINT) before the run could end.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class Interrupted(Exception):
    """The run was cancelled by Ctrl-C (not raised to the user: runner maps it to a status)."""


async def interruptible(work: Awaitable[T]) -> T:
    """Await `work` with Ctrl-C handled as above. Outside the main thread (a library caller's
    worker thread) nothing is installed: signals reach only the main thread anyway."""
    if threading.current_thread() is not threading.main_thread():
        return await work
    import asyncio

    from llmunix.tools import process

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    presses = 0

    def on_sigint(signum, frame) -> None:
        nonlocal presses
        presses += 1
        if presses > 1:
            raise KeyboardInterrupt
        process.kill_all()  # first, so a blocked worker thread returns at once
        if task is not None:
            loop.call_soon_threadsafe(task.cancel)

    try:
        previous = signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # not the main thread of the main interpreter
        return await work
    try:
        return await work
    except BaseException:
        if presses:  # whatever the cancelled run raised on its way out, it was interrupted
            raise Interrupted from None
        raise
    finally:
        with contextlib.suppress(ValueError, TypeError):
            signal.signal(signal.SIGINT, previous)


def call_interruptibly(work: Callable[[], T]) -> T:
    """`work()` (a run with no event loop: the replay) with Ctrl-C handled alike: the first
    press stops every running tool and raises KeyboardInterrupt where the run is (it then ends
    `interrupted`), so nothing of the run goes on after it."""
    if threading.current_thread() is not threading.main_thread():
        return work()
    from llmunix.tools import process

    def on_sigint(signum, frame) -> None:
        process.kill_all()
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # not the main thread of the main interpreter
        return work()
    try:
        return work()
    finally:
        with contextlib.suppress(ValueError, TypeError):
            signal.signal(signal.SIGINT, previous)
