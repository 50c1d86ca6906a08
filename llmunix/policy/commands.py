"""Shell command analysis: the default deny list, the deny and allow patterns, and how a command
line is split into the programs it runs (through wrappers, sh -c, substitutions)."""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

# Block devices that writing to destroys a disk (Linux and macOS names).
_DEV = r"/dev/(?:sd|hd|vd|xvd|nvme|mmcblk|disk|rdisk|loop|dm-|md|mapper/)"
# Targets whose recursive removal or chmod wrecks the machine or the user's home, and `..`, which
# climbs out of the workspace.
_ROOTISH = r"(?:/+\.?\*?|~/?\*?|\$\{?HOME\}?/?\*?|(?:\.\./?)+\*?)"
_RECURSIVE = r"(?:-[a-zA-Z]*[rR][a-zA-Z]*|--recursive)"
# `[^;&|]*` instead of `.*` so a pattern cannot reach across command separators when it is
# searched in the whole command line.
_ARGS = r"(?:[^;&|]*\s)?"

# (what the model is told the command looks like, pattern)
_DEFAULT_DENY: tuple[tuple[str, str], ...] = (
    # rm -rf /, rm -fr ~, rm -r -f /*, rm --recursive $HOME, rm -rf .. (any flag order)
    (
        "recursive rm of /, ~ or ..",
        rf"re:^rm\s(?={_ARGS}{_RECURSIVE}(?:\s|$))(?={_ARGS}{_ROOTISH}(?:\s|$))",
    ),
    ("rm --no-preserve-root", r"re:--no-preserve-root"),
    ("privilege escalation (sudo/su)", r"re:^(?:sudo|su|doas|pkexec)(?:\s|$)"),
    (
        "a download piped into a shell",
        r"re:\b(?:curl|wget)\b[^;&]*\|\s*(?:\S*/)?(?:sudo\s+)?(?:\S*/)?(?:ba|z|da|k|c|tc|fi)?sh\b",
    ),
    ("a download run by a shell", r"re:\b(?:ba|z|da|k)?sh\s+<\(\s*(?:curl|wget)\b"),
    ("a download run by a shell", r"re:(?:^|[\s;&|(])(?:source|\.)\s+<\(\s*(?:curl|wget)\b"),
    (
        "a download run by a shell",
        r"re:\b(?:ba|z|da|k)?sh\s+-\w*c\w*\s+[\"']?\$\(\s*(?:curl|wget)\b",
    ),
    ("writing to a block device", rf"re:>\|?\s*{_DEV}"),
    (
        "dd onto a device",
        r"re:^dd\s(?:[^;&|]*\s)?of=/dev/(?!null\b|zero\b|stdout\b|stderr\b|fd/|tty)",
    ),
    ("writing to a block device", rf"re:^(?:tee|cp|mv|shred)\s{_ARGS}{_DEV}"),
    ("making a filesystem", r"re:^(?:mkfs(?:\.\w+)?|mke2fs|mkswap|wipefs)(?:\s|$)"),
    # `:(){ :|:& };:` and named variants
    ("a fork bomb", r"re:(?<![\w:.])([\w:.]+)\s*\(\s*\)\s*\{\s*\1\s*\|\s*\1\s*&"),
    ("a fork bomb", r"re:\bfunction\s+([\w:.]+)\s*(?:\(\s*\))?\s*\{\s*\1\s*\|\s*\1\s*&"),
    ("shutting the machine down", r"re:^(?:shutdown|reboot|halt|poweroff)(?:\s|$)"),
    (
        "shutting the machine down",
        r"re:^(?:systemctl|loginctl)\s(?:[^;&|]*\s)?(?:poweroff|reboot|halt|kexec)(?:\s|$)",
    ),
    ("shutting the machine down", r"re:^(?:init|telinit)\s+[06](?:\s|$)"),
    # chmod -R 777 /, chown -R me ~
    (
        "a recursive chmod/chown of /, ~ or ..",
        rf"re:^(?:chmod|chown|chgrp)\s(?={_ARGS}{_RECURSIVE}(?:\s|$))(?={_ARGS}{_ROOTISH}(?:\s|$))",
    ),
)
DEFAULT_DENY_COMMANDS: tuple[str, ...] = tuple(pattern for _, pattern in _DEFAULT_DENY)
_DENY_LABELS = {pattern: label for label, pattern in _DEFAULT_DENY}


# -- helpers: shell commands ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Segment:
    """One simple command of a command line."""

    text: str  # its words joined by single spaces, quotes removed
    stripped: str  # the same without leading assignments/wrappers, command word as a basename
    words: tuple[str, ...]  # the words from the command word on


@dataclass(frozen=True)
class _CommandPattern:
    source: str
    regexes: tuple[re.Pattern[str], ...]
    is_regex: bool

    def matches(self, whole: str, simple: Sequence[str]) -> bool:
        if self.is_regex:
            rx = self.regexes[0]
            return bool(rx.search(whole)) or any(rx.search(v) for v in simple)
        return any(rx.match(v) for rx in self.regexes for v in simple)


@lru_cache(maxsize=512)
def _compile_command_pattern(pattern: str) -> _CommandPattern:
    """`re:<regex>` is searched in each simple command and the whole line; anything else is a
    glob that matches a simple command equal to it or extending it by more words, so `curl` and
    `curl *` both refuse every curl command."""
    if pattern.startswith("re:"):
        try:
            return _CommandPattern(pattern, (re.compile(pattern[3:]),), True)
        except re.error as exc:
            raise ValueError(f"invalid command pattern {pattern!r}: {exc}") from None
    core = " ".join(pattern.split())
    if core.endswith(" *"):
        core = core[:-2]
    if not core:
        raise ValueError(f"empty command pattern {pattern!r}")
    regexes = (re.compile(fnmatch.translate(core)), re.compile(fnmatch.translate(core + " *")))
    return _CommandPattern(pattern, regexes, False)


@dataclass(frozen=True)
class _AllowPattern:
    regex: re.Pattern[str]

    def allows(self, seg: _Segment) -> bool:
        raw = " ".join(seg.words)
        return bool(self.regex.match(seg.stripped) or self.regex.match(raw))


def _compile_allow_pattern(pattern: str) -> _AllowPattern:
    """An allow pattern names a command (`ls`, `git*`) or a command with leading words
    (`git status`); it must match at the start of a simple command and end at a word boundary."""
    if pattern.startswith("re:"):
        body = pattern[3:]
    else:
        core = " ".join(pattern.split())
        if not core:
            raise ValueError(f"empty command pattern {pattern!r}")
        body = re.sub(r"\\[Zz]$", "", fnmatch.translate(core))
    try:
        return _AllowPattern(re.compile(rf"(?:{body})(?:\s|$)", re.DOTALL))
    except re.error as exc:
        raise ValueError(f"invalid command pattern {pattern!r}: {exc}") from None


# Words that only prefix the real command (their options are skipped too), and for each the
# options that take a value.
_WRAPPERS: dict[str, frozenset[str]] = {
    w: frozenset(opts)
    for w, opts in {
        "!": (),
        "{": (),
        "then": (),
        "do": (),
        "else": (),
        "elif": (),
        "if": (),
        "while": (),
        "until": (),
        "time": (),
        "exec": ("-a",),
        "nohup": (),
        "command": (),
        "builtin": (),
        "setsid": (),
        "coproc": (),
        "env": ("-u", "--unset", "-C", "--chdir"),
        "nice": ("-n", "--adjustment"),
        "timeout": ("-s", "--signal", "-k", "--kill-after"),
        "stdbuf": ("-i", "-o", "-e"),
        "ionice": ("-c", "-n", "-p", "-t"),
        "xargs": ("-I", "-n", "-P", "-L", "-d", "-a", "-s", "-E"),
    }.items()
}
# Segments starting with these run no command of their own.
_NOT_A_COMMAND = frozenset(
    {"for", "select", "case", "in", "done", "fi", "esac", "}", ";;", "(...)"}
)
_SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "ash"})
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\[[^\]]*\])?\+?=")
_REDIRECTION = re.compile(r"(?:\d+|&)?(?:>>?|<<<|<<|<>|<|>&|<&|>\|)")
_MAX_NESTING = 4


@lru_cache(maxsize=512)
def _analyze(command: str) -> tuple[str, tuple[_Segment, ...]]:
    """The whole line (whitespace collapsed) and its simple commands, including those inside
    `$(...)`, backticks, subshells and `sh -c`/`eval` strings."""
    segments: list[_Segment] = []
    _collect(command, segments, 0)
    return " ".join(command.split()), tuple(segments)


def _collect(command: str, out: list[_Segment], depth: int) -> None:
    for text in _split_segments(command):
        try:
            words = shlex.split(text)
        except ValueError:  # unbalanced quotes: fall back to plain words
            words = text.split()
        if not words:
            continue
        rest = _strip_wrappers(words)
        base = [os.path.basename(rest[0]) or rest[0], *rest[1:]] if rest else []
        out.append(_Segment(" ".join(words), " ".join(base), tuple(rest)))
        if depth >= _MAX_NESTING or not base:
            continue
        if base[0] == "eval":
            _collect(" ".join(base[1:]), out, depth + 1)
        elif base[0] in _SHELLS:
            inner = _shell_c_argument(base)
            if inner is not None:
                _collect(inner, out, depth + 1)


def _shell_c_argument(words: list[str]) -> str | None:
    """The command string of `bash [options] -c STRING`, if that is what `words` is."""
    i = 1
    while i < len(words):
        w = words[i]
        if w in ("-o", "+o", "-O", "+O"):
            i += 2
            continue
        if not w.startswith(("-", "+")) or w == "--":
            return None
        if not w.startswith("--") and "c" in w[1:]:
            return words[i + 1] if i + 1 < len(words) else None
        i += 1
    return None


def _strip_wrappers(words: list[str]) -> list[str]:
    i, n = 0, len(words)
    while i < n:
        w = words[i]
        if _ASSIGNMENT.match(w):
            i += 1
        elif m := _REDIRECTION.match(w):
            i += 2 if m.end() == len(w) else 1  # a bare operator is followed by its target
        elif w in _WRAPPERS:
            value_options = _WRAPPERS[w]
            i += 1
            while i < n and (
                words[i].startswith("-") or (w == "env" and _ASSIGNMENT.match(words[i]))
            ):
                i += 2 if words[i] in value_options else 1
            if w == "timeout" and i < n:
                i += 1  # the duration
        else:
            break
    return words[i:]


def _split_segments(command: str) -> list[str]:
    """Split a command line into simple commands at `;`, `&`, `|`, `&&`, `||` and newlines
    outside quotes, and pull out the commands inside `$(...)`, backticks and `(...)` (also within
    double quotes, where bash runs them too). Nested content is replaced by a placeholder."""
    segments: list[str] = []
    stack: list[tuple[list[str], str | None, str, str]] = []
    buf: list[str] = []
    quote: str | None = None  # the open quote character, if any
    closer = ""  # what ends the current nested context: ")" or "`"; "" at top level
    i, n = 0, len(command)

    def flush(chunk: list[str]) -> None:
        text = "".join(chunk).strip()
        if text:
            segments.append(text)

    while i < n:
        c = command[i]
        if quote == "'":
            buf.append(c)
            if c == "'":
                quote = None
            i += 1
            continue
        if c == "\\":
            buf.append(command[i : i + 2])
            i += 2
            continue
        opening = None
        if command.startswith("$(", i):
            opening = (")", 2, "$(...)")
        elif c == "`" and closer != "`":
            opening = ("`", 1, "$(...)")
        elif c == "(" and quote is None:
            opening = (")", 1, "(...)")
        if opening:
            stack.append((buf, quote, closer, opening[2]))
            buf, quote, closer = [], None, opening[0]
            i += opening[1]
            continue
        if quote is None and stack and c == closer:
            flush(buf)
            buf, quote, closer, placeholder = stack.pop()
            buf.append(placeholder)
            i += 1
            continue
        if quote == '"':
            buf.append(c)
            if c == '"':
                quote = None
            i += 1
            continue
        if c in "'\"":
            quote = c
            buf.append(c)
            i += 1
            continue
        if c == "#" and (not buf or buf[-1][-1:].isspace()):
            end = command.find("\n", i)
            i = n if end < 0 else end
            continue
        if c in ";\n&|)":
            prev = buf[-1][-1:] if buf else ""
            nxt = command[i + 1 : i + 2]
            # redirections such as 2>&1, &>file, >&2 and >|file belong to the command
            if (c == "&" and (prev in ("<", ">") or nxt == ">")) or (c == "|" and prev == ">"):
                buf.append(c)
            else:
                flush(buf)
                buf = []
            i += 1
            continue
        buf.append(c)
        i += 1
    flush(buf)
    while stack:
        buf = stack.pop()[0]
        flush(buf)
    return segments
