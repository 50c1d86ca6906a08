"""What the built-in tools share: output limits, the failure a model mistake becomes, and file
checks through the policy."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from llmunix.errors import PolicyDenied
from llmunix.policy.gate import Policy, refuse_hard_link

MAX_OUTPUT_CHARS = 30_000  # Glob and Grep output (Bash: tools/process.py)
MAX_READ_CHARS = 100_000  # one Read call
READ_DEFAULT_LIMIT = 2000  # lines
MAX_LINE_CHARS = 2000  # longer lines are cut in Read output
MAX_GREP_LINE_CHARS = 500
MAX_GLOB_RESULTS = 1000
MAX_GREP_FILE_BYTES = 20 * 1024 * 1024
MAX_BASH_TIMEOUT_S = 600.0
_SNIFF_BYTES = 8192

class _ToolFailure(Exception):
    """A model mistake or a failed operation, reported to the model as an error result."""



# -- file helpers -------------------------------------------------------------------------------


def _opened_path(fd: int) -> str | None:
    """Where an open file really is (None where the OS cannot say)."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


def _check_opened(policy: Policy, fd: int, shown: str, *, write: bool) -> None:
    """The file or folder behind `fd` is still one the policy allows: nothing was swapped for a
    link to elsewhere between the path check and the open."""
    where = _opened_path(fd)
    if where is None:
        return
    # The kernel's name for it has no link and no `..` left: a prefix check is the whole check
    # (its links were counted by the caller, from the open file).
    if not policy.holds(where, write=write):
        raise _ToolFailure(f"{shown} changed while it was opened: "
                           f"{policy.outside(where, write=write)}")


def open_checked(policy: Policy, real: Path, *, write: bool = False):
    """`real` (resolved by the policy) opened for reading in binary, without following a final
    symlink, as a regular file of one link, where the policy allows it."""
    shown = policy.relative(real)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(real, flags)
    except OSError as exc:
        if exc.errno == 40:  # ELOOP: it became a symlink
            raise _ToolFailure(f"{shown} is a symbolic link now; it was not followed") from None
        raise
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise _ToolFailure(f"{shown} is a directory, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise _ToolFailure(f"{shown} is not a regular file")
        try:
            refuse_hard_link(shown, str(real), st.st_nlink)
        except PolicyDenied as exc:
            raise _ToolFailure(exc.message) from None
        _check_opened(policy, fd, shown, write=write)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def write_atomic(policy: Policy, real: Path, data: bytes) -> None:
    """Write `real` as a new file beside it, then give it its name, in a folder checked to be
    inside the workspace: the old file's other names (hard links) and symlinks are never
    written through, and a reader never sees half a file. The new file has no name while it is
    written (O_TMPFILE, where the file system has it): a run killed meanwhile leaves nothing
    behind, where a named temporary file would stay in the workspace."""
    flags = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)
    try:
        dfd = os.open(real.parent, flags)
    except FileNotFoundError:  # a new folder: made first (most writes go to one that is there)
        real.parent.mkdir(parents=True, exist_ok=True)
        dfd = os.open(real.parent, flags)
    try:
        _check_opened(policy, dfd, policy.relative(real.parent), write=True)
        exists, mode = False, None  # the old file's mode is kept when it is a regular file
        with contextlib.suppress(FileNotFoundError):
            old = os.stat(real.name, dir_fd=dfd, follow_symlinks=False)
            exists = True
            if stat.S_ISDIR(old.st_mode):
                raise _ToolFailure(f"{policy.relative(real)} is a directory, not a file")
            if stat.S_ISREG(old.st_mode):
                mode = stat.S_IMODE(old.st_mode)
        if not _write_unnamed(dfd, real.name, data, exists, mode):
            _write_named(dfd, real.name, data, mode)
    finally:
        os.close(dfd)


_unnamed_files = [hasattr(os, "O_TMPFILE")]  # false once the file system or /proc says no


def _write_unnamed(dfd: int, name: str, data: bytes, exists: bool, mode: int | None) -> bool:
    """`data` into a file with no name in folder `dfd`, then linked in as `name` (when nothing
    is there) or under a temporary name renamed over it. False where unnamed files cannot be
    made or linked (then nothing was written)."""
    if not _unnamed_files[0]:
        return False
    try:
        fd = os.open(".", os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o666, dir_fd=dfd)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
            _unnamed_files[0] = False
            return False
        raise
    try:
        _fill(fd, data, mode)
        source = f"/proc/self/fd/{fd}"
        try:
            if not exists:  # the file appears whole under its name
                with contextlib.suppress(FileExistsError):  # made meanwhile: replaced below
                    os.link(source, name, dst_dir_fd=dfd, follow_symlinks=True)
                    return True
            temp = _temporary_name(name)
            os.link(source, temp, dst_dir_fd=dfd, follow_symlinks=True)
        except FileExistsError:  # the temporary name taken: an error, as for a named one
            raise
        except OSError:  # no /proc, or a file system that cannot link such a file
            _unnamed_files[0] = False
            return False
    finally:
        os.close(fd)
    _rename_into_place(dfd, temp, name)
    return True


def _write_named(dfd: int, name: str, data: bytes, mode: int | None) -> None:
    """The same through a named temporary file, renamed into place."""
    temp = _temporary_name(name)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o666, dir_fd=dfd)
    try:
        try:
            _fill(fd, data, mode)
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp, dir_fd=dfd)
        raise
    _rename_into_place(dfd, temp, name)


def _temporary_name(name: str) -> str:
    return f".{name}.llmunix-{os.urandom(4).hex()}"


def _fill(fd: int, data: bytes, mode: int | None) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    if mode is not None:
        os.fchmod(fd, mode)


def _rename_into_place(dfd: int, temp: str, name: str) -> None:
    try:
        os.replace(temp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp, dir_fd=dfd)
        raise


def _is_binary(path: Path) -> bool:
    with open(path, "rb") as f:
        return b"\0" in f.read(_SNIFF_BYTES)


def _cap(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n... [output truncated: showing {limit} of {len(text)} characters]"


def _existing_file(policy: Policy, path: str, *, write: bool) -> Path:
    real = policy.resolve(path, write=write)
    if not real.exists():
        raise _ToolFailure(f"File does not exist: {policy.relative(real)}")
    if real.is_dir():
        raise _ToolFailure(f"{policy.relative(real)} is a directory, not a file")
    return real
