"""Claude Code's leniency with frontmatter, and only that: a one-line value that strict YAML
refuses because of an unquoted `: ` inside it (or a trailing `:`), or a bracketed hint such as
`argument-hint: [file] [message]` (from Claude Code's own documentation), is read as the text it
plainly is, the way Claude Code reads it. Anything else strict YAML refuses stays an error.

Used only after a strict parse has failed. Only top-level `key: value` lines are touched, and
only when the value does not parse on its own line; block scalars, quoted values, lists and
nested mappings are left alone, so a real structural error still fails with its own line.
"""

from __future__ import annotations

import json
import re

import yaml

from llmunix.specs import safe_yaml

_KEY_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_.-]*):[ \t]+(\S.*?)[ \t]*$")
_STRUCTURE = ("|", ">", "&", "*", "!")  # block scalars, anchors, aliases, tags: not plain text
_BRACKETS = re.compile(r"^\[[^\[\]]*\](\s+\S.*)$")  # "[a] [b]", "[DRAFT] text"
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def repair(text: str) -> tuple[str, list[tuple[int, str]]]:
    """`text` with each top-level one-line value that strict YAML refuses quoted as a string,
    and the (0-based line, key) of every value changed."""
    lines = text.split("\n")
    changed: list[tuple[int, str]] = []
    for i, line in enumerate(lines):
        m = _KEY_LINE.match(line)
        if m is None:
            continue
        key, value = m.groups()
        if value.startswith(_STRUCTURE) or _continues(lines, i) or _parses_alone(value):
            continue
        if not (": " in value or value.endswith(":") or _BRACKETS.match(value)):
            continue
        lines[i] = f"{key}: {json.dumps(value, ensure_ascii=False)}"
        changed.append((i, key))
    return "\n".join(lines), changed


def _parses_alone(value: str) -> bool:
    try:
        safe_yaml.load(f"k: {value}\n")  # bounded: a repair must not expand a bomb
    except yaml.YAMLError:
        return False
    return True


def _continues(lines: list[str], i: int) -> bool:
    """Whether the value goes on over indented lines (then it is not a one-line value)."""
    for nxt in lines[i + 1:]:
        if nxt.strip():
            return nxt[:1] in (" ", "\t")
    return False
