"""Read, Write and Edit. Files are opened without following a last symlink and checked after
opening (a regular file of one link, still inside what the policy allows); writes go to a new
file renamed into place."""

from __future__ import annotations

import io

from llmunix.policy.gate import Policy
from llmunix.tools.builtin.common import (
    _SNIFF_BYTES,
    MAX_LINE_CHARS,
    MAX_READ_CHARS,
    READ_DEFAULT_LIMIT,
    _existing_file,
    _ToolFailure,
    open_checked,
    write_atomic,
)

# -- Read ---------------------------------------------------------------------------------------


def _read(args: dict, policy: Policy) -> str:
    real = policy.resolve(args["file_path"], write=False)
    shown = policy.relative(real)
    try:
        raw = open_checked(policy, real)
    except (FileNotFoundError, NotADirectoryError):
        raise _ToolFailure(f"File does not exist: {shown}") from None
    head = raw.read(_SNIFF_BYTES)
    if b"\0" in head:
        raw.close()
        raise _ToolFailure(f"{shown} is a binary file; Read shows text files only")
    if len(head) < _SNIFF_BYTES:  # all of it: decoded as the wrapper below would (\r\n, \r -> \n)
        raw.close()
        source = io.StringIO(head.decode("utf-8", "replace"), newline=None)
    else:
        raw.seek(0)
        source = io.TextIOWrapper(raw, encoding="utf-8", errors="replace")
    start = max(args.get("offset", 1), 1)
    limit = args.get("limit", READ_DEFAULT_LIMIT)
    out: list[str] = []
    size = 0
    number = 0
    next_line = None  # where to read on when the output was cut short
    with source as f:
        for number, line in enumerate(f, 1):
            if number < start:
                continue
            if number >= start + limit:
                next_line = number
                break
            line = line.rstrip("\n")
            if len(line) > MAX_LINE_CHARS:
                line = line[:MAX_LINE_CHARS] + " ... [line truncated]"
            entry = f"{number:>6}\t{line}"
            if out and size + len(entry) + 1 > MAX_READ_CHARS:
                next_line = number
                break
            out.append(entry)
            size += len(entry) + 1
    if number == 0:
        return f"{shown} is empty."
    if not out:
        return f"{shown} has only {number} lines; offset {start} is past the end."
    text = "\n".join(out)
    if next_line is not None:
        text += f"\n... [more lines follow; read on with offset={next_line}]"
    return text


# -- Write and Edit -----------------------------------------------------------------------------


def _write(args: dict, policy: Policy) -> str:
    real = policy.resolve(args["file_path"], write=True)
    data = _encode(args["content"])  # write_atomic refuses a folder by that name
    write_atomic(policy, real, data)
    return f"Wrote {len(data)} bytes to {policy.relative(real)}"


def _encode(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _ToolFailure(f"the text cannot be written as UTF-8: {exc.reason}") from None


def _edit(args: dict, policy: Policy) -> str:
    old, new = args["old_string"], args["new_string"]
    real = policy.resolve(args["file_path"], write=True)
    shown = policy.relative(real)
    if old == "" and not real.exists():  # Claude Code's way of creating a file with Edit
        write_atomic(policy, real, _encode(new))
        return f"Created {shown}"
    real = _existing_file(policy, args["file_path"], write=True)
    if old == new:
        raise _ToolFailure("old_string and new_string are the same; nothing to change")
    if old == "":
        raise _ToolFailure(f"old_string is empty; use Write to replace all of {shown}")
    with open_checked(policy, real, write=True) as raw:
        data = raw.read()
    if b"\0" in data[:_SNIFF_BYTES]:
        raise _ToolFailure(f"{shown} is a binary file; Edit changes text files only")
    try:
        text = data.decode("utf-8")  # \r\n stays as it is
    except UnicodeDecodeError:
        raise _ToolFailure(f"{shown} is not UTF-8 text; Edit changes UTF-8 files only") from None
    count = text.count(old)
    if count == 0:
        raise _ToolFailure(f"old_string was not found in {shown}")
    if count > 1 and not args.get("replace_all", False):
        raise _ToolFailure(
            f"old_string occurs {count} times in {shown}; include more surrounding text to make "
            "it unique, or set replace_all to replace every occurrence"
        )
    write_atomic(policy, real, _encode(text.replace(old, new)))
    return f"Edited {shown}: replaced {count} occurrence{'s' if count > 1 else ''}"
