"""What the memory index holds: each memory file cut into searchable entries (sections,
SmartLibrary rows, trace steps)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from llmunix.memory.longterm import is_long_term_name
from llmunix.memory.text import goal_signature, terms
from llmunix.specs.frontmatter import read_frontmatter


@dataclass
class _Doc:
    line: int
    kind: str
    title: str
    context: str
    words: list[str]
    signature: str = ""
    status: str = ""
    version: int = 0


def _one_line(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _sections(text: str, start_after: str | None = None) -> list[tuple[int, str, str]]:
    """(line, heading, text) of each `## ` section outside code fences."""
    out: list[tuple[int, str, str]] = []
    lines = text.split("\n")
    fence = ""
    started = start_after is None or start_after not in lines
    current: list | None = None
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if stripped.startswith("```"):
            fence = "" if fence and stripped.startswith(fence) else (fence or stripped[:3])
        if not fence and line.startswith("## "):
            if not started:
                started = line == start_after
                continue
            current = [number, line[3:].strip(), []]
            out.append(current)  # type: ignore[arg-type]
        elif current is not None:
            current[2].append(line)
    return [(n, h, "\n".join(body)) for n, h, body in out]


def _docs_for(path: Path, tier: str, rel: str) -> list[_Doc]:
    """The entries one memory file contributes to the index."""
    name = path.name
    if tier == "gamma":
        meta = read_frontmatter(path)
        goal = str(meta.get("goal", ""))
        status = str(meta.get("status", ""))
        context = f"{status} · {meta.get('mode', '')} · {goal}"
        return [_Doc(1, "trace", goal, _one_line(context), terms(goal), goal_signature(goal),
                     status)]
    if tier == "beta" and is_long_term_name(name):
        meta = read_frontmatter(path)
        goal = str(meta.get("goal", ""))
        status = str(meta.get("status", "active"))
        version = int(meta.get("version", 1) or 1)
        context = (f"v{version} · {status} · confidence {float(meta.get('confidence', 0)):.2f}"
                   f" · used {meta.get('usage_count', 0)}x · {goal}")
        signature = str(meta.get("goal_signature") or goal_signature(goal))
        return [_Doc(1, "trace", goal, _one_line(context), terms(goal), signature, status,
                     version)]
    text = path.read_text(encoding="utf-8", errors="replace")
    if tier == "delta":
        return _library_rows(text)
    kind = "pattern" if tier == "alpha" else "note"
    docs = []
    for line, heading, body in _sections(text, "## Entries" if tier == "alpha" else None):
        detail = next((ln[2:] for ln in body.split("\n") if ln.startswith("- pattern:")), "")
        context = f"{heading} — {detail.removeprefix('pattern:').strip()}" if detail else heading
        docs.append(_Doc(line, kind, heading, _one_line(context), terms(heading + "\n" + body)))
    return docs


_KINDS = {"agents": "agent", "tools": "tool", "learned traces": "learned trace"}


def _library_rows(text: str) -> list[_Doc]:
    docs: list[_Doc] = []
    kind, header = "", []
    for number, line in enumerate(text.split("\n"), start=1):
        if line.startswith("## "):
            kind, header = _KINDS.get(line[3:].strip().lower(), ""), []
        elif kind and line.startswith("|") and not re.match(r"^\|[-| :]+\|$", line):
            cells = [c.strip().replace("\\|", "|") for c in
                     re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if not header:
                header = [c.lower() for c in cells]
                continue
            row = dict(zip(header, cells, strict=False))
            name = row.get("name") or row.get("goal") or (cells[0] if cells else "")
            words = " ".join(row.get(k, "") for k in ("name", "goal", "description", "tools",
                                                      "project"))
            about = row.get("description") or row.get("project", "")
            docs.append(_Doc(number, kind, name, _one_line(f"{kind} {name}: {about}"),
                             terms(words)))
    return docs
