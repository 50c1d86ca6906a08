"""Glob and Grep: sorted, deterministic results, so a replay can compare them."""

from __future__ import annotations

import bisect
import os
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from llmunix.errors import PolicyDenied
from llmunix.policy.gate import Policy, compile_glob, split_glob
from llmunix.tools.builtin.common import (
    _SNIFF_BYTES,
    MAX_GLOB_RESULTS,
    MAX_GREP_FILE_BYTES,
    MAX_GREP_LINE_CHARS,
    _cap,
    _ToolFailure,
)

# -- Glob and Grep ------------------------------------------------------------------------------


def _walk_files(policy: Policy, base: Path) -> Iterator[Path]:
    """Every file below `base` in sorted order; .git folders and symlinked folders are skipped,
    and so are symlinked files that lead outside what the policy lets the agent read, and files
    with more than one hard link."""
    for root, dirs, files in os.walk(base):
        dirs[:] = sorted(
            d for d in dirs if d != ".git" and not os.path.islink(os.path.join(root, d))
        )
        for name in sorted(files):
            path = Path(root, name)
            try:
                st = path.lstat()
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                try:  # a symlink leading out is skipped
                    policy.resolve(str(path), write=False)
                except PolicyDenied:
                    continue
                if not path.is_file():
                    continue
            elif st.st_nlink > 1:  # a hard link: the same file may have a name outside
                continue
            yield path


def _glob(args: dict, policy: Policy) -> str:
    pattern = args["pattern"]
    base = args.get("path", "")
    prefix, rest = split_glob(os.path.join(base, pattern) if base else pattern)
    root = policy.resolve(prefix or ".", write=False)
    if not rest:  # no wildcard: the named file itself
        found = [policy.relative(root)] if root.is_file() else []
    elif not root.is_dir():
        raise _ToolFailure(f"Folder does not exist: {policy.relative(root)}")
    else:
        regex = compile_glob(rest)
        found = sorted(
            policy.relative(path)
            for path in _walk_files(policy, root)
            if regex.fullmatch(path.relative_to(root).as_posix())
        )
    if not found:
        return "No files found"
    text = "\n".join(found[:MAX_GLOB_RESULTS])
    if len(found) > MAX_GLOB_RESULTS:
        text += (
            f"\n... [{len(found) - MAX_GLOB_RESULTS} more files not shown; "
            "use a narrower pattern or path]"
        )
    return _cap(text)


# ripgrep-like file types for Grep's `type`; any other type name is taken as an extension.
_FILE_TYPES = {
    "py": (".py", ".pyi"),
    "js": (".js", ".mjs", ".cjs", ".jsx"),
    "ts": (".ts", ".tsx", ".mts", ".cts"),
    "md": (".md", ".markdown"),
    "markdown": (".md", ".markdown"),
    "rust": (".rs",),
    "c": (".c", ".h"),
    "cpp": (".cpp", ".cc", ".cxx", ".hpp", ".hh", ".hxx", ".h"),
    "yaml": (".yaml", ".yml"),
    "sh": (".sh", ".bash"),
    "html": (".html", ".htm"),
    "txt": (".txt",),
}


def _file_filter(args: dict) -> Callable[[str], bool]:
    glob = args.get("glob")
    type_ = args.get("type")
    glob_rx = compile_glob(glob) if glob else None
    exts = _FILE_TYPES.get(type_, ("." + type_,)) if type_ else None

    def accept(rel: str) -> bool:
        name = rel.rsplit("/", 1)[-1]
        if exts is not None and not name.endswith(exts):
            return False
        if glob_rx is not None:
            return bool(glob_rx.fullmatch(rel if "/" in glob else name))
        return True

    return accept


def _grep_text(path: Path) -> str | None:
    try:
        if path.stat().st_size > MAX_GREP_FILE_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:_SNIFF_BYTES]:
        return None
    return data.decode("utf-8", errors="replace").replace("\r\n", "\n")


def _split_lines(text: str) -> list[str]:
    lines = text.split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def _matching_lines(regex: re.Pattern[str], text: str, multiline: bool) -> list[int]:
    """0-based numbers of the lines holding a match (with multiline: every line a match spans)."""
    lines = _split_lines(text)
    if not multiline:
        return [i for i, line in enumerate(lines) if regex.search(line)]
    starts = [0]
    for line_end in re.finditer("\n", text):
        starts.append(line_end.end())
    hit: set[int] = set()
    for m in regex.finditer(text):
        first = bisect.bisect_right(starts, m.start()) - 1
        last = bisect.bisect_right(starts, max(m.end() - 1, m.start())) - 1
        hit.update(range(first, min(last, len(lines) - 1) + 1))
    return sorted(hit)


def _grep(args: dict, policy: Policy) -> str:
    flags = re.MULTILINE | (re.IGNORECASE if args.get("-i") else 0)
    multiline = args.get("multiline", False)
    if multiline:
        flags |= re.DOTALL
    try:
        regex = re.compile(args["pattern"], flags)
    except re.error as exc:
        raise _ToolFailure(f"Invalid regular expression {args['pattern']!r}: {exc}") from None
    root = policy.resolve(args.get("path", "."), write=False)
    if root.is_file():
        files = [root]
    elif root.is_dir():
        accept = _file_filter(args)
        by_path = {p.relative_to(root).as_posix(): p for p in _walk_files(policy, root)}
        files = [by_path[rel] for rel in sorted(by_path) if accept(rel)]
    else:
        raise _ToolFailure(f"Path does not exist: {policy.relative(root)}")

    mode = args.get("output_mode", "files_with_matches")
    context = args.get("-C", 0)
    before, after = args.get("-B", context), args.get("-A", context)
    numbers = args.get("-n", True)
    head = args.get("head_limit") or None
    entries: list[str] = []
    for path in files:
        if head is not None and len(entries) >= head:
            break
        text = _grep_text(path)
        if text is None:
            continue
        hits = _matching_lines(regex, text, multiline)
        if not hits:
            continue
        shown = policy.relative(path)
        if mode == "files_with_matches":
            entries.append(shown)
        elif mode == "count":
            entries.append(f"{shown}:{len(hits)}")
        else:
            if entries and (before or after):
                entries.append("--")
            entries.extend(_content_lines(shown, _split_lines(text), hits, before, after, numbers))
    if head is not None:
        entries = entries[:head]
    if not entries:
        return "No files found" if mode == "files_with_matches" else "No matches found"
    if mode == "files_with_matches":
        plural = "s" if len(entries) != 1 else ""
        return _cap(f"Found {len(entries)} file{plural}\n" + "\n".join(entries))
    return _cap("\n".join(entries))


def _content_lines(
    shown: str, lines: list[str], hits: list[int], before: int, after: int, numbers: bool
) -> list[str]:
    hit_set = set(hits)
    wanted: set[int] = set()
    for i in hits:
        wanted.update(range(max(i - before, 0), min(i + after, len(lines) - 1) + 1))
    out: list[str] = []
    previous = None
    for i in sorted(wanted):
        if previous is not None and i != previous + 1 and (before or after):
            out.append("--")
        sep = ":" if i in hit_set else "-"
        line = lines[i]
        if len(line) > MAX_GREP_LINE_CHARS:
            line = line[:MAX_GREP_LINE_CHARS] + " ... [line truncated]"
        out.append(f"{shown}{sep}{i + 1}{sep}{line}" if numbers else f"{shown}{sep}{line}")
        previous = i
    return out
