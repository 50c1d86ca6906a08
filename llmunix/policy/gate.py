"""The policy gate: the one place that decides whether a tool call may run.

Every runtime (the Claude Agent SDK hook, llmunix's own OpenAI tool loop, trace replay) asks
`Policy.check` with the same plain (tool name, input dict) in Claude Code's naming, so the rules
are identical everywhere. The built-in tools also call `Policy.resolve` for every path they touch.

The shell rules are a deny list, not a sandbox: they stop the well-known destructive commands a
model may emit by mistake, and they err on the side of refusing when a command is ambiguous.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from llmunix.checked import Rule
from llmunix.errors import ConfigError, PolicyDenied
from llmunix.policy.commands import (
    _DENY_LABELS,
    _NOT_A_COMMAND,
    DEFAULT_DENY_COMMANDS,
    _analyze,
    _CommandPattern,
    _compile_allow_pattern,
    _compile_command_pattern,
)
from llmunix.policy.globs import _write_path_matcher, compile_glob, split_glob
from llmunix.policy.paths import _dir_prefix, _optional_path, _path_arg, _size_after
from llmunix.policy.rules import ToolRules
from llmunix.workspace.paths import realpath_below

__all__ = [
    "DEFAULT_DENY_COMMANDS",
    "Constraints",
    "Decision",
    "Policy",
    "canonical_tool",
    "compile_glob",
    "split_glob",
]

_DEFAULT_DENY_SET = frozenset(DEFAULT_DENY_COMMANDS)
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


def _normalize_extensions(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    out = []
    for ext in value:
        ext = ext.strip().lower()
        if not ext or ext == ".":
            raise ValueError("an allowed extension cannot be empty")
        out.append(ext if ext.startswith(".") else "." + ext)
    return out


def _check_write_paths(value: list[str] | None) -> list[str] | None:
    for pattern in value or ():
        if not pattern.strip():
            raise ValueError("a write path cannot be empty")
    return value


def _check_deny_commands(value: list[str]) -> list[str]:
    for pattern in value:
        _compile_command_pattern(pattern)  # raises ValueError on a bad regex
    return value


@dataclass
class Constraints:
    """An agent's `llmunix: constraints:` block, enforced by `Policy.check`. A plain dataclass
    (llmunix/checked.py): `checked.validate(Constraints, data)` checks input."""

    read_only: bool = False
    allowed_extensions: Annotated[list[str] | None, Rule(after=_normalize_extensions)] = None
    max_file_size_mb: Annotated[float | None, Rule(ge=0)] = None
    write_paths: Annotated[list[str] | None, Rule(after=_check_write_paths)] = None
    deny_commands: Annotated[list[str], Rule(after=_check_deny_commands)] = field(
        default_factory=list)
    network: bool = False  # processes this agent starts may use the network


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""  # what the model is told when refused


_ALLOW = Decision(True)


def refuse_hard_link(path: str, real: str, links: int | None = None) -> None:
    """A regular file with more than one name may have one outside the workspace (a hard link
    `realpath` cannot see): it is neither read nor written."""
    if links is None:
        try:
            st = os.stat(real)
        except OSError:
            return
        if not stat.S_ISREG(st.st_mode):
            return
        links = st.st_nlink
    if links > 1:
        raise PolicyDenied(
            f"{path} has {links} hard links: another name of the same file may be outside the "
            "workspace, so llmunix neither reads nor writes it (copy it to a new file to use it)")


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
        # The built-in deny list is compiled at the first Bash call (a replay of file tools
        # never needs it); other patterns now, so a bad one is reported before the run.
        self._deny_sources = tuple(deny_commands)
        self._deny_compiled: tuple[_CommandPattern, ...] | None = None
        try:
            for pattern in self._deny_sources:
                if pattern not in _DEFAULT_DENY_SET:
                    _compile_command_pattern(pattern)
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
            real = realpath_below(self._ws, full)
        except (TypeError, ValueError, OSError) as exc:
            raise PolicyDenied(f"invalid path {path!r}: {exc}") from exc
        if self.holds(real, write=write):
            refuse_hard_link(path, real)
            return Path(real)
        via = f" (it resolves to {real})" if os.path.normpath(full) != real else ""
        raise PolicyDenied(f"{self.outside(path, write=write)}{via}")

    def relative(self, real: Path | str) -> str:
        """How a resolved path is shown: relative to the workspace if inside it, else absolute."""
        text = str(real)
        if text == self._ws:
            return "."
        prefix = self._write_prefixes[0]
        if text.startswith(prefix):
            rest = text[len(prefix):]
            if os.sep == "/" and "//" not in rest and "/." not in f"/{rest}":
                return rest  # already normal (a resolved path): what relpath would say
            return Path(os.path.relpath(text, self._ws)).as_posix()
        return text

    def holds(self, real: str, *, write: bool) -> bool:
        """Whether `real`, a path with no link or `..` in it (as the kernel reports an open
        file's), is inside the workspace (or, for reads, a read root)."""
        prefixes = self._write_prefixes if write else self._read_prefixes
        return any(real == p.rstrip(os.sep) or real.startswith(p) for p in prefixes)

    def outside(self, path: str, *, write: bool) -> str:
        """Why `path` may not be used: where it is not."""
        where = f"the workspace {self._ws}"
        if not write and self.read_roots:
            where += " and the read roots " + ", ".join(str(r) for r in self.read_roots)
        return f"{path} is outside {where}"

    # -- the gate ------------------------------------------------------------------------------

    def check(
        self,
        tool: str,
        tool_input: dict,
        *,
        allowed_tools: Collection[str] | None = None,
        constraints: Constraints | None = None,
        rules: ToolRules | None = None,
    ) -> Decision:
        """Whether `tool` may run with `tool_input`; the reason tells the model why not.
        `rules`: the agent's permission rules (`Bash(git status:*)`, ...), never widened."""
        if allowed_tools is not None:
            allowed = {canonical_tool(t) for t in allowed_tools}
            if canonical_tool(tool) not in allowed:
                if not allowed:
                    return Decision(False, f"{tool} refused: this agent may not use any tools")
                names = ", ".join(sorted(allowed))
                return Decision(False, f"{tool} refused: this agent may only use {names}")
        if not isinstance(tool_input, dict):
            return Decision(False, f"{tool} refused: its input must be an object")
        if rules:
            why = rules.refusal(tool, tool_input, lambda p, w: self.resolve(p, write=w))
            if why:
                return Decision(False, f"{tool} refused: {why}")
        if tool == "MemoryWrite" and constraints is not None and constraints.read_only:
            return Decision(False, f"{tool} refused: this agent is read-only")
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

    def check_path_args(self, tool: str, schema: dict, args: dict,
                        constraints: Constraints | None = None) -> Decision:
        """A tool spec's arguments declared `format: path` (`access: read`, the default, or
        `write`) pass the same checks as Read's or Write's path, before the tool runs; a path
        that starts with `-` is refused (a program would take it for an option)."""
        for name, prop in (schema.get("properties") or {}).items():
            value = args.get(name, prop.get("default") if isinstance(prop, dict) else None)
            if not isinstance(prop, dict) or prop.get("format") != "path" or value is None:
                continue
            if not isinstance(value, str) or not value:
                return Decision(False, f"{tool} refused: {name} must be a path")
            if value.startswith("-"):
                return Decision(False, f"{tool} refused: {name} {value!r} starts with '-', which "
                                "a program reads as an option; write ./{value} instead")
            write = prop.get("access") == "write"
            as_tool = "Write" if write else "Read"
            probe = {"file_path": value, "content": ""} if write else {"file_path": value}
            decision = self.check(as_tool, probe, constraints=constraints)
            if not decision.allowed:
                why = decision.reason.removeprefix(f"{as_tool} refused: ")
                return Decision(False, f"{tool} refused: {name}: {why}")
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
        if self._deny_compiled is None:
            self._deny_compiled = tuple(_compile_command_pattern(p) for p in self._deny_sources)
        for pattern in self._deny_compiled + extra:
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



