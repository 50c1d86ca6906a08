"""Reading a markdown file with YAML frontmatter, keeping each key's line for error messages."""

from __future__ import annotations

import hashlib
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmunix.errors import SpecError

MAX_SPEC_BYTES = 1_000_000


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
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise SpecError("not a regular file (a folder, device or pipe named like a spec)",
                            path=path, hint="move it out of the specs folder")
        size = st.st_size
        if size > MAX_SPEC_BYTES:
            raise SpecError(
                f"file is {size:,} bytes; specs are limited to {MAX_SPEC_BYTES:,} bytes",
                path=path,
                hint="move large reference material into the workspace and let the agent Read it",
            )
        with open(path, "rb") as fh:  # read no more than the limit, whatever stat said
            raw = fh.read(size + 1)  # not read(limit): that allocates a megabyte per spec
            if len(raw) > size:  # it grew since the stat: read on, up to the limit
                raw += fh.read(MAX_SPEC_BYTES + 1 - len(raw))
        if len(raw) > MAX_SPEC_BYTES:
            raise SpecError(f"file is over {MAX_SPEC_BYTES:,} bytes", path=path)
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
        if getattr(strict, "bounded", False):  # over a bound: no reading of it is lenient
            raise
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
    import yaml  # here: a boot whose specs all come from the spec cache reads no YAML

    from llmunix.specs import safe_yaml

    loader = None
    try:
        loader, node = safe_yaml.compose(text, first_line=first_line)
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
    except safe_yaml.BoundError as exc:
        mark = exc.problem_mark
        raise _bounded(SpecError(
            f"frontmatter refused: {exc.problem}",
            path=path,
            line=mark.line + first_line if mark else None,
            hint="specs are small documents: no alias bombs, deep nesting, huge numbers or "
            "repeated keys",
        )) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + first_line if mark else None
        problem = exc.problem or "syntax error"
        raise SpecError(
            f"YAML syntax error in frontmatter: {problem}",
            path=path,
            line=line,
            hint="check indentation and quote values that contain ':' or '#'",
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"YAML error in frontmatter: {exc}", path=path) from exc
    except (RecursionError, MemoryError) as exc:  # libyaml's own limits come first; belt
        raise SpecError(f"frontmatter too complex to read ({type(exc).__name__})",
                        path=path) from None
    finally:
        if loader is not None:
            loader.dispose()
    return data, _key_lines(node, first_line)


def _bounded(error: SpecError) -> SpecError:
    error.bounded = True  # type: ignore[attr-defined]
    return error


def _key_lines(node, first_line: int) -> dict[str, int]:
    import yaml

    lines: dict[str, int] = {}
    for key_node, value_node in node.value:
        key = str(key_node.value)
        lines[key] = key_node.start_mark.line + first_line
        if isinstance(value_node, yaml.MappingNode):
            for sub_key, _ in value_node.value:
                lines[f"{key}.{sub_key.value}"] = sub_key.start_mark.line + first_line
    return lines
