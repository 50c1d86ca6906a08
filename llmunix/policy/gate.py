"""The policy gate: the one place that decides whether a tool call may run.

Every runtime (the Claude Agent SDK hook, llmunix's own OpenAI tool loop, trace replay) asks
`Policy.check` with the same plain (tool name, input dict) in Claude Code's naming, so the rules
are identical everywhere. The built-in tools also call `Policy.resolve` for every path they touch.

The shell rules are a deny list, not a sandbox: they stop the well-known destructive commands a
model may emit by mistake, and they err on the side of refusing when a command is ambiguous.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from llmunix.errors import ConfigError, PolicyDenied

__all__ = [
    "DEFAULT_DENY_COMMANDS",
    "Constraints",
    "Decision",
    "Policy",
    "canonical_tool",
    "compile_glob",
    "split_glob",
]

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

# Tools that write the file named by the given input key, and tools that only read one.
_WRITE_TOOLS = {
    "Write": "file_path",
    "Edit": "file_path",
    "MultiEdit": "file_path",
    "NotebookEdit": "notebook_path",
}
_READ_TOOLS = {"Read": "file_path", "NotebookRead": "notebook_path", "LS": "path"}
# Task is Claude Code's old name for Agent; allowing one allows the other.
_ALIASES = {"Task": "Agent"}


def canonical_tool(name: str) -> str:
    """The name a tool is scoped under (`Task` and `Agent` are one tool)."""
    return _ALIASES.get(name, name)


class Constraints(BaseModel):
    """An agent's `llmunix: constraints:` block, enforced by `Policy.check`."""

    model_config = ConfigDict(extra="forbid")

    read_only: bool = False
    allowed_extensions: list[str] | None = None
    max_file_size_mb: float | None = Field(default=None, ge=0)
    write_paths: list[str] | None = None
    deny_commands: list[str] = Field(default_factory=list)

    @field_validator("allowed_extensions")
    @classmethod
    def _normalize_extensions(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        out = []
        for ext in value:
            ext = ext.strip().lower()
            if not ext or ext == ".":
                raise ValueError("an allowed extension cannot be empty")
            out.append(ext if ext.startswith(".") else "." + ext)
        return out

    @field_validator("write_paths")
    @classmethod
    def _check_write_paths(cls, value: list[str] | None) -> list[str] | None:
        for pattern in value or ():
            if not pattern.strip():
                raise ValueError("a write path cannot be empty")
        return value

    @field_validator("deny_commands")
    @classmethod
    def _check_deny_commands(cls, value: list[str]) -> list[str]:
        for pattern in value:
            _compile_command_pattern(pattern)  # raises ValueError on a bad regex
        return value


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""  # what the model is told when refused


_ALLOW = Decision(True)


class Policy:
    """Decides whether a tool call may run: tool scoping, workspace sandbox, shell deny list."""

    def __init__(
        self,
        workspace: Path,
        *,
        read_roots: Sequence[Path] = (),
        deny_commands: Sequence[str] = DEFAULT_DENY_COMMANDS,
        allow_commands: Sequence[str] | None = None,
    ) -> None:
        self.workspace = Path(os.path.realpath(workspace))
        self.read_roots = tuple(
            Path(os.path.realpath(os.path.expanduser(str(root)))) for root in read_roots
        )
        self._ws = str(self.workspace)
        self._write_prefixes = (_dir_prefix(self._ws),)
        self._read_prefixes = self._write_prefixes + tuple(
            _dir_prefix(str(root)) for root in self.read_roots
        )
        try:
            self._deny = tuple(_compile_command_pattern(p) for p in deny_commands)
            self._allow = (
                None
                if allow_commands is None
                else tuple(_compile_allow_pattern(p) for p in allow_commands)
            )
        except ValueError as exc:
            raise ConfigError(str(exc), hint="fix the command pattern in llmunix.toml") from exc
        self._allow_sources = tuple(allow_commands or ())

    # -- paths ---------------------------------------------------------------------------------

    def resolve(self, path: str, *, write: bool) -> Path:
        """The real path `path` names (relative paths are inside the workspace).

        Raises PolicyDenied when it leads outside the workspace (or, for reads, outside the
        workspace and the read roots), after `..` and every symlink on the way are resolved.
        """
        try:
            given = os.path.expanduser(os.fspath(path))
            full = given if os.path.isabs(given) else os.path.join(self._ws, given)
            real = os.path.realpath(full)
        except (TypeError, ValueError, OSError) as exc:
            raise PolicyDenied(f"invalid path {path!r}: {exc}") from exc
        prefixes = self._write_prefixes if write else self._read_prefixes
        if any(real == p.rstrip(os.sep) or real.startswith(p) for p in prefixes):
            return Path(real)
        where = f"the workspace {self._ws}"
        if not write and self.read_roots:
            where += " and the read roots " + ", ".join(str(r) for r in self.read_roots)
        via = f" (it resolves to {real})" if os.path.normpath(full) != real else ""
        raise PolicyDenied(f"{path} is outside {where}{via}")

    def relative(self, real: Path | str) -> str:
        """How a resolved path is shown: relative to the workspace if inside it, else absolute."""
        text = str(real)
        if text == self._ws:
            return "."
        if text.startswith(self._write_prefixes[0]):
            return Path(os.path.relpath(text, self._ws)).as_posix()
        return text

    # -- the gate ------------------------------------------------------------------------------

    def check(
        self,
        tool: str,
        tool_input: dict,
        *,
        allowed_tools: Collection[str] | None = None,
        constraints: Constraints | None = None,
    ) -> Decision:
        """Whether `tool` may run with `tool_input`; the reason tells the model why not."""
        if allowed_tools is not None:
            allowed = {canonical_tool(t) for t in allowed_tools}
            if canonical_tool(tool) not in allowed:
                if not allowed:
                    return Decision(False, f"{tool} refused: this agent may not use any tools")
                names = ", ".join(sorted(allowed))
                return Decision(False, f"{tool} refused: this agent may only use {names}")
        if not isinstance(tool_input, dict):
            return Decision(False, f"{tool} refused: its input must be an object")
        try:
            if tool in _WRITE_TOOLS:
                return self._check_write(tool, tool_input, constraints)
            if tool in _READ_TOOLS:
                self.resolve(_path_arg(tool_input, _READ_TOOLS[tool]), write=False)
            elif tool == "Grep":
                self.resolve(_optional_path(tool_input), write=False)
            elif tool == "Glob":
                self._check_glob(tool_input)
            elif tool == "Bash":
                return self._check_bash(tool_input, constraints)
        except PolicyDenied as exc:
            return Decision(False, f"{tool} refused: {exc.message}")
        return _ALLOW

    def _check_write(self, tool: str, tool_input: dict, c: Constraints | None) -> Decision:
        real = self.resolve(_path_arg(tool_input, _WRITE_TOOLS[tool]), write=True)
        if c is None:
            return _ALLOW
        if c.read_only:
            return Decision(False, f"{tool} refused: this agent is read-only")
        rel = self.relative(real)
        if c.allowed_extensions is not None:
            name = real.name.lower()
            if not any(name.endswith(ext) for ext in c.allowed_extensions):
                exts = ", ".join(c.allowed_extensions) or "none"
                return Decision(
                    False, f"{tool} refused: {rel} does not have an allowed extension ({exts})"
                )
        if c.write_paths is not None and not any(
            _write_path_matcher(p)(rel) for p in c.write_paths
        ):
            paths = ", ".join(c.write_paths) or "none"
            return Decision(
                False, f"{tool} refused: {rel} is outside this agent's write paths ({paths})"
            )
        if c.max_file_size_mb is not None:
            size = _size_after(tool, tool_input, real)
            limit = c.max_file_size_mb * 1024 * 1024
            if size is not None and size > limit:
                return Decision(
                    False,
                    f"{tool} refused: {rel} would be {size} bytes, above this agent's limit of "
                    f"{c.max_file_size_mb:g} MB",
                )
        return _ALLOW

    def _check_glob(self, tool_input: dict) -> None:
        pattern = tool_input.get("pattern")
        if not isinstance(pattern, str) or not pattern:
            raise PolicyDenied("no pattern given")
        base = _optional_path(tool_input)
        prefix, rest = split_glob(os.path.join(base, pattern) if base else pattern)
        if ".." in rest.split("/"):
            raise PolicyDenied(f"pattern {pattern!r} may not use '..' after a wildcard")
        self.resolve(prefix or ".", write=False)

    def _check_bash(self, tool_input: dict, c: Constraints | None) -> Decision:
        command = tool_input.get("command")
        if not isinstance(command, str) or not command.strip():
            return Decision(False, "Bash refused: no command given")
        whole, segments = _analyze(command)
        simple = [v for seg in segments for v in (seg.text, seg.stripped)]
        extra = tuple(_compile_command_pattern(p) for p in (c.deny_commands if c else ()))
        for pattern in self._deny + extra:
            if pattern.matches(whole, simple):
                label = _DENY_LABELS.get(pattern.source)
                what = f"looks like {label}" if label else f"matches {pattern.source!r}"
                return Decision(False, f"Bash refused: the command {what}, which is not allowed")
        if self._allow is not None:
            for seg in segments:
                if not seg.words or seg.words[0] in _NOT_A_COMMAND:
                    continue
                if not any(p.allows(seg) for p in self._allow):
                    allowed = ", ".join(self._allow_sources) or "none"
                    return Decision(
                        False,
                        f"Bash refused: {seg.words[0]!r} is not an allowed command "
                        f"(allowed: {allowed})",
                    )
        return _ALLOW


# -- helpers: paths ------------------------------------------------------------------------------


def _dir_prefix(path: str) -> str:
    return path if path.endswith(os.sep) else path + os.sep


def _path_arg(tool_input: dict, key: str) -> str:
    value = tool_input.get(key)
    if not isinstance(value, str) or not value:
        raise PolicyDenied(f"no {key} given")
    return value


def _optional_path(tool_input: dict) -> str:
    value = tool_input.get("path")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise PolicyDenied("path must be a string")
    return value


def _size_after(tool: str, tool_input: dict, real: Path) -> int | None:
    """The size a write leaves the file at (for Edit: assuming one replacement)."""
    if tool == "Write":
        content = tool_input.get("content")
        return len(content.encode("utf-8", "surrogatepass")) if isinstance(content, str) else None
    if tool in ("Edit", "MultiEdit"):
        old, new = tool_input.get("old_string"), tool_input.get("new_string")
        if not (isinstance(old, str) and isinstance(new, str)):
            return None
        try:
            current = os.stat(real).st_size
        except OSError:
            current = 0
        return (
            current
            + len(new.encode("utf-8", "surrogatepass"))
            - len(old.encode("utf-8", "surrogatepass"))
        )
    return None


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
