"""No signal cuts a run's ending in half. While a run finishes its trace and makes its commit,
SIGINT, SIGTERM and SIGHUP are held back (a git killed mid-commit would leave `index.lock` and
a half-recorded run); the first one held is reported when the block ends, and the caller exits
with its code (128 + the signal's number)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

from llmunix.run.interrupt import ENDING_SIGNALS

NAMES = {signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP"}


def reason(signum: int) -> str:
    return f"interrupted by {NAMES.get(signum, f'signal {signum}')}"


class Held:
    """The signals that arrived while they were held."""

    def __init__(self) -> None:
        self.signals: list[int] = []

    @property
    def first(self) -> int | None:
        return self.signals[0] if self.signals else None


@contextlib.contextmanager
def held_signals() -> Iterator[Held]:
    held = Held()
    if threading.current_thread() is not threading.main_thread():
        yield held  # signals reach the main thread only
        return

    def hold(signum, frame) -> None:
        held.signals.append(signum)

    previous = {}
    try:
        for sig in ENDING_SIGNALS:
            previous[sig] = signal.signal(sig, hold)
    except ValueError:
        pass
    try:
        yield held
    finally:
        for sig, handler in previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, handler)
