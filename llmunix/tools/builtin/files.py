"""Read, Write and Edit."""

from __future__ import annotations

from llmunix.policy.gate import Policy
from llmunix.tools.builtin.common import (
    MAX_LINE_CHARS,
    MAX_READ_CHARS,
    READ_DEFAULT_LIMIT,
    _existing_file,
    _is_binary,
    _ToolFailure,
)

# -- Read ---------------------------------------------------------------------------------------


def _read(args: dict, policy: Policy) -> str:
    real = _existing_file(policy, args["file_path"], write=False)
    shown = policy.relative(real)
    if _is_binary(real):
        raise _ToolFailure(f"{shown} is a binary file; Read shows text files only")
    start = max(args.get("offset", 1), 1)
    limit = args.get("limit", READ_DEFAULT_LIMIT)
    out: list[str] = []
    size = 0
    number = 0
    next_line = None  # where to read on when the output was cut short
    with open(real, encoding="utf-8", errors="replace") as f:
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
    if real.is_dir():
        raise _ToolFailure(f"{policy.relative(real)} is a directory, not a file")
    data = _encode(args["content"])
    real.parent.mkdir(parents=True, exist_ok=True)
    with open(real, "wb") as f:
        f.write(data)
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
        real.parent.mkdir(parents=True, exist_ok=True)
        real.write_bytes(_encode(new))
        return f"Created {shown}"
    real = _existing_file(policy, args["file_path"], write=True)
    if old == new:
        raise _ToolFailure("old_string and new_string are the same; nothing to change")
    if old == "":
        raise _ToolFailure(f"old_string is empty; use Write to replace all of {shown}")
    if _is_binary(real):
        raise _ToolFailure(f"{shown} is a binary file; Edit changes text files only")
    try:
        with open(real, encoding="utf-8", newline="") as f:  # newline="" keeps \r\n as is
            text = f.read()
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
    real.write_bytes(_encode(text.replace(old, new)))
    return f"Edited {shown}: replaced {count} occurrence{'s' if count > 1 else ''}"
