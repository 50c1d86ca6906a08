"""The one door for child processes an agent causes: every one starts confined by a Sandbox,
its output is bounded, and it dies with everything it started when the call returns, times out
or is interrupted (`kill_all` ends every live one at once, e.g. on Ctrl-C).

Output is read as it comes and only its first and last `max_chars / 2` bytes are kept, with a
count of the rest: memory stays flat whatever a program prints, and the end of a long output
(where a build or a test run says what failed) is not lost."""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from llmunix.errors import SandboxUnavailable
from llmunix.tools.sandbox import HOW_TO_FIX, Sandbox

__all__ = ["MAX_OUTPUT_CHARS", "ProcessResult", "kill_all", "kill_tree", "run_process",
           "start_process", "stop_process"]

MAX_OUTPUT_CHARS = 1_000_000
# How bubblewrap says it could not set a sandbox up (as opposed to the program's own output).
_SETUP_FAILURES = ("bwrap: Can't", "bwrap: No permissions", "bwrap: Creating new namespace",
                   "bwrap: setting up uid map", "bwrap: Failed", "bwrap: Unexpected capabilities")
_KILL_GRACE_S = 2.0  # how long to read output still in the pipes after a kill

_live: set[subprocess.Popen] = set()
_live_lock = threading.Lock()


@dataclass(frozen=True)
class ProcessResult:
    output: str  # stdout then stderr (or both interleaved when merged), decoded leniently
    exit_code: int | None  # None when it timed out
    timed_out: bool
    duration_s: float
    truncated: bool = False
    total_bytes: int = 0  # everything it printed, kept or not


class _Bounded:
    """The first and the last `half` bytes of a stream, and how many bytes it had."""

    def __init__(self, half: int) -> None:
        self.half = half
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.half - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            if len(self.tail) > self.half:
                del self.tail[: len(self.tail) - self.half]

    @property
    def omitted(self) -> int:
        return self.total - len(self.head) - len(self.tail)

    def __bool__(self) -> bool:
        return self.total > 0

    def text(self) -> str:
        if not self.omitted:  # one piece: decoded together so no character is split
            return (self.head + self.tail).decode("utf-8", "replace")
        return (f"{self.head.decode('utf-8', 'replace')}\n[... {self.omitted:,} of "
                f"{self.total:,} bytes of output left out here: the first and the last "
                f"{self.half:,} are kept ...]\n{self.tail.decode('utf-8', 'replace')}")


def _spawn(argv: Sequence[str], sandbox: Sandbox, *, cwd, env, read_only, stdin, stdout,
           stderr) -> subprocess.Popen:
    sandbox.check()
    full_argv, full_env = sandbox.command(argv, cwd=cwd, env=env, read_only=read_only)
    proc = subprocess.Popen(full_argv, cwd=cwd or sandbox.workspace, env=full_env, stdin=stdin,
                            stdout=stdout, stderr=stderr,
                            start_new_session=True)  # Ctrl-C on the terminal is ours to pass
    with _live_lock:
        _live.add(proc)
    return proc


def run_process(
    argv: Sequence[str],
    *,
    sandbox: Sandbox,
    timeout_s: float,
    cwd: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
    stdin_text: str | bytes | None = None,
    merge_stderr: bool = False,
    read_only: Iterable[Path | str] = (),
    max_chars: int = MAX_OUTPUT_CHARS,
) -> ProcessResult:
    """Run argv (never through a shell) confined by `sandbox`; `env` adds variables to the
    sandbox's allow-listed environment. Raises SandboxUnavailable when it cannot be confined,
    FileNotFoundError/OSError when it cannot start."""
    started = time.perf_counter()
    proc = _spawn(argv, sandbox, cwd=cwd, env=env, read_only=read_only,
                  stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
                  stdout=subprocess.PIPE,
                  stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE)
    half = max(max_chars // 2, 1)
    out, err = _Bounded(half), _Bounded(half)
    timed_out = False
    try:
        streams = {proc.stdout.fileno(): out}
        if proc.stderr is not None:
            streams[proc.stderr.fileno()] = err
        pending = stdin_text.encode() if isinstance(stdin_text, str) else stdin_text or b""
        deadline = time.monotonic() + timeout_s
        with selectors.DefaultSelector() as sel:
            for fd in streams:
                sel.register(fd, selectors.EVENT_READ)
            if proc.stdin is not None:
                if pending:
                    os.set_blocking(proc.stdin.fileno(), False)
                    sel.register(proc.stdin.fileno(), selectors.EVENT_WRITE)
                else:
                    proc.stdin.close()

            def pump(wait: float) -> None:
                nonlocal pending
                for key, _ in sel.select(wait):
                    fd = key.fd
                    if fd in streams:
                        chunk = os.read(fd, 65536)
                        if not chunk:
                            sel.unregister(fd)
                            del streams[fd]
                            continue
                        streams[fd].add(chunk)
                    else:
                        try:
                            sent = os.write(fd, pending[:65536])
                        except BlockingIOError:
                            sent = 0
                        except BrokenPipeError:
                            sent = len(pending)
                        pending = pending[sent:]
                        if not pending:
                            sel.unregister(fd)
                            proc.stdin.close()

            while not _exited(proc):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    timed_out = True
                    break
                if sel.get_map():
                    pump(min(remaining, 0.05))
                else:  # it closed its output but runs on: poll for its end
                    time.sleep(min(remaining, 0.005))
            # The main process is done (or out of time): end the whole tree, then take what is
            # left in the pipes. Not reaped yet, so its process group id cannot be reused.
            _kill(proc)
            grace_end = time.monotonic() + _KILL_GRACE_S
            while streams and time.monotonic() < grace_end:
                pump(0.05)
    except BaseException:
        _kill(proc)
        raise
    finally:
        proc.wait()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        with _live_lock:
            _live.discard(proc)
    if sandbox.confined and proc.returncode == 1:
        _raise_start_failure(argv, bytes((err or out).head))
    text = out.text()
    if err:
        sep = "" if not text or text.endswith("\n") else "\n"
        text = f"{text}{sep}{err.text()}"
    return ProcessResult(text, None if timed_out else proc.returncode, timed_out,
                         time.perf_counter() - started, bool(out.omitted or err.omitted),
                         out.total + err.total)


def start_process(argv: Sequence[str], *, sandbox: Sandbox, cwd=None,
                  env: Mapping[str, str] | None = None,
                  read_only: Iterable[Path | str] = ()) -> subprocess.Popen:
    """A long-lived confined process with pipes on stdin, stdout and stderr (e.g. a stdio
    server). Start it from a thread that outlives it (the kernel ends the sandbox when the
    starting thread exits); end it with `stop_process`."""
    return _spawn(argv, sandbox, cwd=cwd, env=env, read_only=read_only, stdin=subprocess.PIPE,
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def stop_process(proc: subprocess.Popen) -> None:
    """Kill a process from `start_process` and everything it started; reap it."""
    _kill(proc)
    proc.wait()
    with _live_lock:
        _live.discard(proc)


def kill_all() -> int:
    """Kill every live process started through this module (and all they started); returns
    how many there were. Safe from any thread and from a signal handler's aftermath."""
    with _live_lock:
        procs = list(_live)
    for proc in procs:
        _kill(proc)
    return len(procs)


def _raise_start_failure(argv: Sequence[str], stderr: bytes) -> None:
    """bwrap reports what a direct Popen would raise: a missing program, a sandbox that
    could not be set up."""
    if not stderr.startswith(b"bwrap: "):
        return
    first = stderr.decode("utf-8", "replace").splitlines()[0]
    if first.startswith(f"bwrap: execvp {argv[0]}:"):
        raise FileNotFoundError(errno.ENOENT, first.rsplit(": ", 1)[-1], argv[0])
    if first.startswith(_SETUP_FAILURES):  # not a program that happens to print "bwrap: "
        raise SandboxUnavailable(f"the sandbox could not start: {first}", hint=HOW_TO_FIX)


def _kill(proc: subprocess.Popen) -> None:
    # bwrap is the group leader; inside, its PID 1 dies with it and takes the namespace along.
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


def _exited(proc: subprocess.Popen) -> bool:
    """Whether the process has ended, without reaping it (so its group id stays ours)."""
    if hasattr(os, "waitid"):
        try:
            return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True
    return proc.poll() is not None


def _children(pid: int) -> list[int]:
    found = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(c) for c in f.read().split()]
    return found


def kill_tree(pid: int) -> None:
    """SIGKILL every descendant of `pid` (deepest first, before they can be re-parented),
    then `pid`: for a process that starts children of its own, such as the Claude Code CLI."""
    order, todo = [], [pid]
    while todo:
        current = todo.pop()
        order.append(current)
        todo += _children(current)
    for target in reversed(order):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(target, signal.SIGKILL)
