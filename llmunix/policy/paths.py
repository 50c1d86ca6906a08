"""Path helpers of the gate: the path a tool input names, directory prefixes, and the size a write
leaves."""

from __future__ import annotations

import os
from pathlib import Path

from llmunix.errors import PolicyDenied

# -- helpers: paths ------------------------------------------------------------------------------


def _dir_prefix(path: str) -> str:
    return path if path.endswith(os.sep) else path + os.sep


def _path_arg(tool_input: dict, key: str) -> str:
    value = tool_input.get(key)
    if not isinstance(value, str) or not value:
        raise PolicyDenied(f"no {key} given")
    return value


def _optional_path(tool_input: dict) -> str:
    value = tool_input.get("path")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise PolicyDenied("path must be a string")
    return value


def _size_after(tool: str, tool_input: dict, real: Path) -> int | None:
    """The size a write leaves the file at (for Edit: assuming one replacement)."""
    if tool == "Write":
        content = tool_input.get("content")
        return len(content.encode("utf-8", "surrogatepass")) if isinstance(content, str) else None
    if tool in ("Edit", "MultiEdit"):
        old, new = tool_input.get("old_string"), tool_input.get("new_string")
        if not (isinstance(old, str) and isinstance(new, str)):
            return None
        try:
            current = os.stat(real).st_size
        except OSError:
            current = 0
        return (
            current
            + len(new.encode("utf-8", "surrogatepass"))
            - len(old.encode("utf-8", "surrogatepass"))
        )
    return None
