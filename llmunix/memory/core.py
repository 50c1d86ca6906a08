"""Core memory: a small markdown block per project (`memory/core.md`) and one for the whole
system (`system/core.md`), pinned into every agent's system prompt and edited by agents with
MemoryWrite, one `## ` section at a time. Size-limited (`[memory] core_tokens`), so what is
pinned stays small; versioned in git with the run that changed it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from llmunix.errors import LlmunixError
from llmunix.memory.store import memory_lock
from llmunix.specs.frontmatter import atomic_write

CORE_FILE = "core.md"
TITLE = "# Core memory"
_HEADING = re.compile(r"^## (.+?)\s*$")
MAX_SECTION_NAME = 80


class CoreMemoryError(LlmunixError):
    """A MemoryWrite the core memory cannot take; the message says why and what to do."""


def estimate(text: str) -> int:
    """Tokens of core memory text, estimated as the context package counts them (memory sits
    below it): one token per 3.5 characters, rounded up."""
    return -(-len(text) * 2 // 7)


@dataclass
class Section:
    name: str
    body: str  # without the heading, no trailing blank lines


@dataclass
class CoreBlock:
    scope: str  # "project" | "system"
    path: Path
    rel: str  # workspace-relative
    preamble: str
    sections: list[Section]

    @property
    def text(self) -> str:
        parts = [self.preamble.rstrip() or TITLE]
        for s in self.sections:
            parts.append(f"## {s.name}\n{s.body}".rstrip())
        return "\n\n".join(parts) + "\n"

    @property
    def empty(self) -> bool:
        return not any(s.body.strip() for s in self.sections)

    @property
    def tokens(self) -> int:
        return sum(estimate(f"## {s.name}\n{s.body}") for s in self.sections)

    def section(self, name: str) -> Section | None:
        key = _key(name)
        return next((s for s in self.sections if _key(s.name) == key), None)


def _key(name: str) -> str:
    return " ".join(name.split()).casefold()


def parse(text: str) -> tuple[str, list[Section]]:
    """The preamble and the `## ` sections of a core memory file (headings in code fences are
    text)."""
    preamble: list[str] = []
    sections: list[Section] = []
    current: list[str] | None = None
    fence = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("```") or stripped.startswith("~~~"):
            marker = stripped[:3]
            fence = "" if fence == marker else (fence or marker)
        match = None if fence else _HEADING.match(line)
        if match:
            current = []
            sections.append(Section(match.group(1), ""))
        elif current is not None:
            current.append(line)
            sections[-1].body = "\n".join(current).strip("\n")
        else:
            preamble.append(line)
    return "\n".join(preamble).strip("\n"), sections


def load(path: Path, scope: str, rel: str) -> CoreBlock:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise CoreMemoryError(f"cannot read core memory {rel}: {exc}") from exc
    preamble, sections = parse(text)
    return CoreBlock(scope, path, rel, preamble, sections)


def render(blocks: list[CoreBlock]) -> str:
    """The block pinned into a system prompt ("" when there is nothing in core memory)."""
    parts = []
    for block in blocks:
        if block.empty:
            continue
        body = "\n\n".join(f"### {s.name}\n{s.body}".rstrip() for s in block.sections
                           if s.body.strip())
        parts.append(f'<core_memory scope="{block.scope}" file="{block.rel}">\n{body}\n'
                     "</core_memory>")
    if not parts:
        return ""
    return ("## Core memory\nWhat this system keeps in mind across runs. Change it with the "
            "MemoryWrite tool when you learn something later runs need.\n\n" + "\n\n".join(parts))


def write(block: CoreBlock, section: str, mode: str, content: str, limit_tokens: int,
          lock_root: Path | None) -> str:
    """Append to or replace one section (an empty replace removes it); refuses a write that
    would take the block past `limit_tokens`. Returns what the model is told."""
    name = " ".join(str(section).split())
    if not name or len(name) > MAX_SECTION_NAME or name.startswith("#"):
        raise CoreMemoryError(f"MemoryWrite: `section` must be a heading of 1-{MAX_SECTION_NAME} "
                              "characters, without #")
    if mode not in ("append", "replace"):
        raise CoreMemoryError("MemoryWrite: `mode` must be append or replace")
    content = str(content).strip("\n")
    if any(_HEADING.match(line) or line.startswith("# ") for line in content.splitlines()):
        raise CoreMemoryError("MemoryWrite: `content` cannot hold # or ## headings (each "
                              "section is one MemoryWrite); use ### or a list")
    with memory_lock(lock_root):
        fresh = load(block.path, block.scope, block.rel)  # another run may have written since
        current = fresh.section(name)
        if mode == "append" and not content:
            raise CoreMemoryError("MemoryWrite: nothing to append (`content` is empty)")
        if mode == "append" and current is not None and _ends_with(current.body, content):
            return f"{block.rel}: section {current.name!r} already ends with this; unchanged"
        if current is None and not content:
            return f"{block.rel}: no section {name!r}; nothing to remove"
        if current is None:
            current = Section(name, "")
            fresh.sections.append(current)
        if mode == "append":
            current.body = f"{current.body}\n{content}".strip("\n")
        else:
            current.body = content
        if not current.body:
            fresh.sections.remove(current)
        used = fresh.tokens
        if used > limit_tokens:
            raise CoreMemoryError(
                f"MemoryWrite refused: {block.rel} would hold {used:,} tokens, above its limit of "
                f"{limit_tokens:,} tokens ([memory] core_tokens); replace a section with a shorter "
                "version, or remove one (replace with empty content), first")
        fresh.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(fresh.path, fresh.text, lock_root)
        block.preamble, block.sections = fresh.preamble, fresh.sections
    verb = "removed" if current not in fresh.sections else \
        ("appended to" if mode == "append" else "replaced")
    return (f"{block.rel}: section {name!r} {verb}; core memory ({block.scope}) now holds "
            f"{used:,} of {limit_tokens:,} tokens. Later runs see it in their system prompt.")


def _ends_with(body: str, content: str) -> bool:
    return body.rstrip().endswith(content.strip()) if content.strip() else False
