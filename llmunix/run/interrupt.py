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
    """The run was cancelled by Ctrl-C, SIGTERM or SIGHUP (not raised to the user: runner maps
    it to a status)."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signum)
        self.signum = signum


class SignalInterrupt(KeyboardInterrupt):
    """Ctrl-C, SIGTERM or SIGHUP raised where a run without an event loop is (the replay)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


# SIGTERM (kill, systemd, docker stop) and SIGHUP (the terminal closed) end a run as Ctrl-C does.
ENDING_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


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
    first = signal.SIGINT

    def on_sigint(signum, frame) -> None:
        nonlocal presses, first
        presses += 1
        if presses > 1:
            if signum != signal.SIGINT:  # a second TERM/HUP: the run is already ending
                return
            raise KeyboardInterrupt
        first = signum
        process.kill_all()  # first, so a blocked worker thread returns at once
        if task is not None:
            loop.call_soon_threadsafe(task.cancel)

    previous = {}
    try:
        for sig in ENDING_SIGNALS:
            previous[sig] = signal.signal(sig, on_sigint)
    except ValueError:  # not the main thread of the main interpreter
        return await work
    try:
        return await work
    except BaseException:
        if presses:  # whatever the cancelled run raised on its way out, it was interrupted
            raise Interrupted(first) from None
        raise
    finally:
        for sig, handler in previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, handler)


def call_interruptibly(work: Callable[[], T]) -> T:
    """`work()` (a run with no event loop: the replay) with Ctrl-C handled alike: the first
    press stops every running tool and raises KeyboardInterrupt where the run is (it then ends
    `interrupted`), so nothing of the run goes on after it."""
    if threading.current_thread() is not threading.main_thread():
        return work()
    from llmunix.tools import process

    def on_sigint(signum, frame) -> None:
        process.kill_all()
        raise SignalInterrupt(signum)

    previous = {}
    try:
        for sig in ENDING_SIGNALS:
            previous[sig] = signal.signal(sig, on_sigint)
    except ValueError:  # not the main thread of the main interpreter
        return work()
    try:
        return work()
    finally:
        for sig, handler in previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, handler)
