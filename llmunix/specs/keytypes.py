"""The type of every frontmatter key llmunix knows, checked before anything reads the value: a
wrong type is an error naming the key, its line, what it must be and what it is."""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable
from typing import Any


def _text(v: Any) -> bool:
    return isinstance(v, str)


def _names(v: Any) -> bool:
    return isinstance(v, str) or isinstance(v, list) and all(isinstance(i, str) for i in v)


def _whole(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(v))


def _flag(v: Any) -> bool:
    return isinstance(v, bool)


def _mapping(v: Any) -> bool:
    return isinstance(v, dict)


def _version(v: Any) -> bool:
    return isinstance(v, str) or _number(v)


def _document(v: Any) -> bool:
    return isinstance(v, (str, list, dict))


def _servers(v: Any) -> bool:
    return isinstance(v, (str, list, dict))


def _command(v: Any) -> bool:
    return isinstance(v, (str, list))


KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "text": (_text, "text"),
    "names": (_names, "a list of names or a comma-separated text"),
    "whole": (_whole, "a whole number"),
    "number": (_number, "a finite number"),
    "flag": (_flag, "true or false"),
    "mapping": (_mapping, "a mapping of keys to values"),
    "version": (_version, "text or a number"),
    "document": (_document, "text, a list or a mapping"),
    "servers": (_servers, "a list or a mapping of servers"),
    "command": (_command, "a list of arguments or a text"),
}

AGENT_TYPES = {
    "name": "text", "description": "text", "tools": "names", "disallowedTools": "names",
    "model": "text", "permissionMode": "text", "maxTurns": "whole", "skills": "names",
    "mcpServers": "servers", "hooks": "mapping", "memory": "text", "background": "flag",
    "color": "text", "allowed-tools": "names", "agent_name": "text", "agent_id": "text",
    "type": "text", "category": "text", "version": "version", "mode": "names", "status": "text",
    "capabilities": "document", "constraints": "mapping", "reasoning_guidelines": "document",
    "error_handling": "document", "component_type": "text", "claude_tools": "names",
    "tags": "names", "author": "text", "license": "text", "metadata": "mapping",
    "llmunix": "mapping",
}
TOOL_TYPES = {
    "name": "text", "description": "text", "input": "mapping", "input_schema": "mapping",
    "parameters": "mapping", "command": "command", "python": "text", "timeout": "number",
    "deterministic": "flag", "tool_name": "text", "component_type": "text",
    "version": "version", "status": "text", "claude_tools": "names", "category": "text",
    "mode": "names", "tags": "names", "author": "text", "license": "text", "metadata": "mapping",
    "crystallized": "mapping",
}


def describe(value: Any) -> str:
    """What a YAML value is, in a user's words."""
    if isinstance(value, bool):
        return f"{str(value).lower()} (true/false)"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"[:60]
    if isinstance(value, str):
        shown = value if len(value) <= 30 else value[:27] + "..."
        return f"the text {shown!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return f"the date {value.isoformat()}"
    return type(value).__name__


def type_errors(meta: dict[str, Any], types: dict[str, str]) -> list[tuple[str, str]]:
    """(key, message) for each known key whose value has the wrong type. An empty value
    (`key:` alone) counts as not given."""
    out = []
    for key, kind in types.items():
        if key not in meta or meta[key] is None:
            continue
        check, expected = KINDS[kind]
        if not check(meta[key]):
            out.append((key, f"'{key}' must be {expected}, not {describe(meta[key])}"))
    return out
