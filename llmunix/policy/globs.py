"""Glob patterns as the policy reads them (**, {a,b}, character classes), compiled to regexes."""

from __future__ import annotations

import re
from functools import lru_cache

_MAGIC = re.compile(r"[*?\[{]")


def split_glob(pattern: str) -> tuple[str, str]:
    """Split a glob into its literal leading directories and the wildcard rest.

    `src/**/*.py` -> (`src`, `**/*.py`); `/etc/*` -> (`/etc`, `*`); `a/b.txt` -> (`a/b.txt`, ``).
    """
    parts = pattern.split("/")
    for i, part in enumerate(parts):
        if _MAGIC.search(part):
            prefix = "/".join(parts[:i])
            if not prefix and pattern.startswith("/"):
                prefix = "/"
            return prefix, "/".join(parts[i:])
    return pattern, ""


@lru_cache(maxsize=256)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """A regex that fullmatches the `/`-separated relative paths `pattern` names.

    `*` and `?` stay within one path component, `**` spans any number of them, `[...]` is a
    character class and `{a,b}` an alternation.
    """
    return re.compile(_translate_glob(pattern), re.DOTALL)


def _translate_glob(p: str) -> str:
    out: list[str] = []
    i, n = 0, len(p)
    while i < n:
        c = p[i]
        if c == "*":
            j = i
            while j < n and p[j] == "*":
                j += 1
            at_component_start = i == 0 or p[i - 1] == "/"
            if j - i >= 2 and at_component_start and j < n and p[j] == "/":
                out.append("(?:.*/)?")
                i = j + 1
            else:
                out.append(".*" if j - i >= 2 else "[^/]*")
                i = j
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[" and (j := p.find("]", i + 2)) > 0:
            body = p[i + 1 : j].replace("\\", "\\\\")
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append(f"[{body}]")
            i = j + 1
        elif c == "{" and (j := _closing_brace(p, i)) > 0:
            alternatives = _split_alternatives(p[i + 1 : j])
            out.append("(?:" + "|".join(_translate_glob(a) for a in alternatives) + ")")
            i = j + 1
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


def _closing_brace(p: str, start: int) -> int:
    depth = 0
    for j in range(start, len(p)):
        if p[j] == "{":
            depth += 1
        elif p[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return -1


def _split_alternatives(body: str) -> list[str]:
    parts, depth, current = [], 0, []
    for ch in body:
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        depth += ch == "{"
        depth -= ch == "}"
        current.append(ch)
    parts.append("".join(current))
    return parts


@lru_cache(maxsize=256)
def _write_path_matcher(pattern: str):
    """A write_paths entry: a glob; `notes/` and a plain `notes` also cover everything below."""
    pattern = pattern.strip().removeprefix("./")
    if pattern.endswith("/"):
        pattern += "**"
    regex = compile_glob(pattern)
    literal = None if _MAGIC.search(pattern) else pattern.rstrip("/") + "/"
    return lambda rel: (
        bool(regex.fullmatch(rel)) or (literal is not None and rel.startswith(literal))
    )
