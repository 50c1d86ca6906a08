"""Reading a markdown file with YAML frontmatter, keeping each key's line for error messages."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from llmunix.errors import SpecError

MAX_SPEC_BYTES = 1_000_000

try:  # libyaml is ~10x faster; boot parses every spec in the workspace
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader


@dataclass
class Document:
    path: Path
    meta: dict[str, Any]
    body: str
    body_line: int  # line number (1-based) where the body starts
    content_hash: str
    has_frontmatter: bool = True
    key_lines: dict[str, int] = field(default_factory=dict)  # "key" and "key.sub" -> line
    # Keys whose one-line value strict YAML refused and that were read as text, as Claude Code
    # reads them (see lenient.py): (line, key).
    lenient: list[tuple[int, str]] = field(default_factory=list)

    def line_of(self, key: str) -> int | None:
        return self.key_lines.get(key)


def read_document(path: Path) -> Document:
    """Read `path` into frontmatter and body. Raises SpecError naming the file and line."""
    try:
        size = path.stat().st_size
        if size > MAX_SPEC_BYTES:
            raise SpecError(
                f"file is {size:,} bytes; specs are limited to {MAX_SPEC_BYTES:,} bytes",
                path=path,
                hint="move large reference material into the workspace and let the agent Read it",
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError(f"cannot read file: {exc.strerror or exc}", path=path) from exc
    return parse_document(raw, path)


def parse_document(raw: bytes, path: Path) -> Document:
    content_hash = hashlib.sha256(raw).hexdigest()[:12]
    try:
        text = raw.decode("utf-8-sig")  # a BOM is accepted and dropped
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise SpecError(
            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})",
            path=path,
            line=line,
            hint="save the file as UTF-8",
        ) from exc
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if not lines or lines[0].rstrip() != "---":
        return Document(path, {}, text, 1, content_hash, has_frontmatter=False)
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip() in ("---", "...")), None)
    if end is None:
        raise SpecError(
            "frontmatter is not closed: the '---' on line 1 has no closing '---' line",
            path=path,
            line=1,
            hint="add a line with just '---' after the last frontmatter key",
        )
    block = "\n".join(lines[1:end])
    lenient: list[tuple[int, str]] = []
    try:
        meta, key_lines = _parse_yaml(block, path, first_line=2)
    except SpecError as strict:
        from llmunix.specs.lenient import repair

        fixed, changed = repair(block)
        if not changed:
            raise
        try:
            meta, key_lines = _parse_yaml(fixed, path, first_line=2)
        except SpecError:
            raise strict from None  # the file's own error, not one in our repair
        lenient = [(i + 2, key) for i, key in changed]
    body = "\n".join(lines[end + 1 :])
    return Document(path, meta, body, end + 2, content_hash, True, key_lines, lenient)


def _parse_yaml(text: str, path: Path, *, first_line: int) -> tuple[dict[str, Any], dict[str, int]]:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return {}, {}
        if not isinstance(node, yaml.MappingNode):
            kind = "a list" if isinstance(node, yaml.SequenceNode) else "a single value"
            raise SpecError(
                f"frontmatter is {kind}; it must be a mapping of keys to values",
                path=path,
                line=node.start_mark.line + first_line,
                hint="write it as 'name: my-agent' lines",
            )
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + first_line if mark else None
        problem = exc.problem or "syntax error"
        raise SpecError(
            f"YAML syntax error in frontmatter: {problem}",
            path=path,
            line=line,
            hint="check indentation and quote values that contain ':' or '#'",
        ) from exc
    except yaml.YAMLError as exc:
        raise SpecError(f"YAML error in frontmatter: {exc}", path=path) from exc
    finally:
        loader.dispose()
    return data, _key_lines(node, first_line)


def _key_lines(node: yaml.MappingNode, first_line: int) -> dict[str, int]:
    lines: dict[str, int] = {}
    for key_node, value_node in node.value:
        key = str(key_node.value)
        lines[key] = key_node.start_mark.line + first_line
        if isinstance(value_node, yaml.MappingNode):
            for sub_key, _ in value_node.value:
                lines[f"{key}.{sub_key.value}"] = sub_key.start_mark.line + first_line
    return lines
