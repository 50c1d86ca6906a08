"""The LLMunix dialect without frontmatter: settings written as bold fields at the top of the
markdown (`**Agent Name**: writer`, `**Tools**: Read, Write`, `**Claude Tool Mapping**: Bash`),
read into the same keys the frontmatter dialects use. The whole text stays the prompt or the
tool's documentation."""

from __future__ import annotations

import re
from dataclasses import replace

from llmunix.specs.document import Document

_FIELD = re.compile(r"^\s*[-*]?\s*\*\*([A-Za-z][A-Za-z ]{0,40}?)\*\*\s*:\s*(.+?)\s*$")
LABELS = {
    "agent name": "agent_name",
    "name": "name",
    "description": "description",
    "tools": "tools",
    "type": "type",
    "model": "model",
    "category": "category",
    "version": "version",
    "status": "status",
    "mode": "mode",
    "capabilities": "capabilities",
    "tool name": "tool_name",
    "component type": "component_type",
    "claude tool mapping": "claude_tools",
    "claude tools": "claude_tools",
}
SCAN_LINES = 60  # fields live at the top of the file


def with_bold_fields(doc: Document) -> Document | None:
    """`doc` with the bold fields of its first lines as its settings, or None when it has none
    (or has frontmatter, which always wins)."""
    if doc.has_frontmatter:
        return None
    meta: dict[str, str] = {}
    lines: dict[str, int] = {}
    for i, line in enumerate(doc.body.split("\n")[:SCAN_LINES]):
        if line.startswith("```"):
            break
        m = _FIELD.match(line)
        if m is None:
            continue
        key = LABELS.get(m.group(1).strip().lower())
        if key is not None and key not in meta:
            meta[key] = m.group(2).strip().strip("`")
            lines[key] = doc.body_line + i
    return replace(doc, meta=meta, key_lines=lines) if meta else None
