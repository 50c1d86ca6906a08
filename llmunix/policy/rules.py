"""Permission rules in Claude Code's syntax, as narrow rules that are never widened.

An entry of an agent's `tools` / `allowed-tools` / `disallowedTools` is a tool name (`Read`,
`mcp__srv__tool`) or a rule `Tool(specifier)`:

- `Bash(git status)` one exact command; `Bash(npm run test:*)` that command and any arguments;
  `Bash(git * main)` a glob over the command's words. Every simple command of a command line
  (`a && b`, `$(...)`, pipes, `sh -c '...'`) must match an allow rule; one match of a deny rule
  refuses the line. A command with leading assignments or wrappers (`FOO=1 git status`,
  `env git status`) matches only a rule written with them.
- `Read(./docs/**)` / `Read(src/*.py)`: gitignore-style paths for Read, Glob and Grep;
  `Edit(src/**)` for every tool that writes a file (Write, Edit, MultiEdit, NotebookEdit).
  `./x` and `x` are relative to the workspace, `/x` too (the workspace is the project root),
  `//x` is the absolute path /x, `~/x` is below the home folder. `*.md` matches at any depth.
- `WebFetch(domain:example.com)` that host (`*.example.com` also its subdomains).
- `Agent(writer)` / `Task(writer)` delegation to that sub-agent only.

`Tool(*)` and `Tool()` are the whole tool, as in Claude Code. Anything else is a RuleError,
reported with the spec's file and line.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from llmunix.policy.commands import _NOT_A_COMMAND, _analyze
from llmunix.policy.globs import compile_glob

__all__ = ["PATH_READ_TOOLS", "PATH_WRITE_TOOLS", "Rule", "RuleError", "ToolRules",
           "parse_rule", "split_entries"]

_RULE_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_-]*)\s*\((.*)\)\s*$", re.S)
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
PATH_WRITE_TOOLS = {"Write": "file_path", "Edit": "file_path", "MultiEdit": "file_path",
                    "NotebookEdit": "notebook_path"}
PATH_READ_TOOLS = {"Read": "file_path", "NotebookRead": "notebook_path", "LS": "path",
                   "Glob": "path", "Grep": "path"}
_ALIASES = {"Task": "Agent"}
_KINDS = {"Bash": "command", "Read": "read", "Edit": "write", "Write": "write",
          "WebFetch": "domain", "Agent": "agent", "Task": "agent"}


class RuleError(ValueError):
    """A permission rule llmunix cannot read."""


@dataclass(frozen=True)
class Rule:
    source: str  # as written
    tool: str  # the tool family it names: Bash, Read, Edit, WebFetch, Agent
    kind: str  # command | read | write | domain | agent
    pattern: str

    def covers(self, tool: str) -> bool:
        """Whether this rule speaks about calls of `tool`: a path rule about every tool of its
        family (Edit: every tool that writes a file; Read: Read, Glob and Grep), so a deny rule
        cannot be gone around with a sibling tool."""
        tool = _ALIASES.get(tool, tool)
        if self.kind == "write":
            return tool in PATH_WRITE_TOOLS
        if self.kind == "read":
            return tool in PATH_READ_TOOLS
        return tool == self.tool

    # -- matching ---------------------------------------------------------------------------

    def matches_command(self, text: str) -> bool:
        """`text`: one simple command, its words joined by single spaces."""
        return bool(_command_regex(self.pattern).fullmatch(text))

    def matches_path(self, real: Path | str, workspace: Path, *, folder: bool = False) -> bool:
        """Whether a resolved path is one this rule names; a `folder` (Glob, Grep) matches when
        everything below it would."""
        anchor, regex = _path_regex(self.pattern)
        real = str(real)
        if anchor == "/":
            rel = real.lstrip("/")
        else:
            base = str(workspace) if anchor == "." else os.path.expanduser("~")
            if real == base:
                rel = ""
            elif real.startswith(base.rstrip("/") + "/"):
                rel = real[len(base.rstrip("/")) + 1:]
            else:
                return False
        if folder:
            probe = f"{rel}/\0" if rel else "\0"
            return bool(regex.fullmatch(probe))
        return bool(regex.fullmatch(rel))

    def matches_url(self, url: str) -> bool:
        try:
            host = (urlsplit(url).hostname or "").lower().rstrip(".")
        except ValueError:
            return False
        want = self.pattern.lower()
        if want.startswith("*."):
            return host == want[2:] or host.endswith(want[1:])
        return host == want

    def matches_agent(self, name: str) -> bool:
        return name == self.pattern


def parse_rule(text: str) -> tuple[str, Rule | None]:
    """(tool name, rule) for one entry; rule is None for a bare name or `Tool(*)`.
    Raises RuleError for anything else llmunix cannot enforce exactly."""
    entry = text.strip()
    if "(" not in entry and ")" not in entry:
        if not _NAME_RE.match(entry):
            raise RuleError(f"{entry!r} is not a tool name")
        return _ALIASES.get(entry, entry), None
    match = _RULE_RE.match(entry)
    if not match:
        raise RuleError(f"cannot read the permission rule {entry!r}: write Tool(specifier), "
                        "e.g. Bash(git status:*) or Read(./docs/**)")
    tool, spec = match.group(1), match.group(2).strip()
    name = _ALIASES.get(tool, tool)
    if spec in ("", "*"):
        return name, None
    kind = _KINDS.get(tool)
    if kind is None:
        raise RuleError(f"{entry!r}: llmunix cannot narrow {tool} by a specifier; name the "
                        "whole tool, or use Bash(...), Read(...), Edit(...), WebFetch(domain:...)"
                        " or Agent(...)")
    if kind == "command":
        if "\n" in spec:
            raise RuleError(f"{entry!r}: a command rule is one line")
        if ":*" in spec[:-2]:
            raise RuleError(f"{entry!r}: ':*' may only end a command rule")
    elif kind == "domain":
        if not spec.startswith("domain:") or not spec[7:].strip():
            raise RuleError(f"{entry!r}: write WebFetch(domain:example.com)")
        spec = spec[7:].strip()
        if "/" in spec or " " in spec or "*" in spec[1:]:
            raise RuleError(f"{entry!r}: a domain is a host name, optionally '*.' first")
    elif kind in ("read", "write"):
        if "\0" in spec:
            raise RuleError(f"{entry!r}: invalid path")
        _path_regex(spec)
    elif kind == "agent" and not _NAME_RE.match(spec):
        raise RuleError(f"{entry!r}: name one sub-agent, e.g. Agent(writer)")
    return name, Rule(entry, name, kind, spec)


@lru_cache(maxsize=512)
def _command_regex(pattern: str) -> re.Pattern[str]:
    words = " ".join(pattern.split())
    if words.endswith(":*"):
        base = words[:-2].rstrip()
        return re.compile(re.escape(base) + r"(?: .*)?", re.S)
    return re.compile(_glob(words), re.S)


def _glob(words: str) -> str:
    out = []
    for ch in words:
        out.append(".*" if ch == "*" else re.escape(ch))
    return "".join(out)


@lru_cache(maxsize=512)
def _path_regex(pattern: str) -> tuple[str, re.Pattern[str]]:
    """(anchor, regex over the path below it): anchor '.' workspace, '/' root, '~' home."""
    if pattern.startswith("//"):
        anchor, rest = "/", pattern[2:]
    elif pattern.startswith("~/"):
        anchor, rest = "~", pattern[2:]
    elif pattern.startswith("./"):
        anchor, rest = ".", pattern[2:]
    elif pattern.startswith("/"):
        anchor, rest = ".", pattern[1:]
    else:
        anchor, rest = ".", pattern
        if "/" not in rest.rstrip("/"):
            rest = "**/" + rest  # gitignore: a bare name matches at any depth
    if ".." in rest.split("/"):
        raise RuleError(f"{pattern!r}: '..' is not allowed in a path rule")
    if rest.endswith("/"):
        rest += "**"
    if rest in ("", "."):
        rest = "**"
    return anchor, compile_glob(rest)


def split_entries(text: str) -> list[str]:
    """A comma-separated tool list, where a rule may hold commas: `Read(src/{a,b}/**), Bash`."""
    items, depth, current = [], 0, []
    for ch in text:
        if ch == "," and depth == 0:
            items.append("".join(current).strip())
            current = []
            continue
        depth += (ch == "(") - (ch == ")")
        current.append(ch)
    items.append("".join(current).strip())
    return [item for item in items if item]


@dataclass(frozen=True)
class ToolRules:
    """An agent's narrow rules: `allow` for tools it lists only through rules (a call of such
    a tool must match one of them), `deny` from disallowedTools (a call matching one is
    refused)."""

    allow: tuple[Rule, ...] = ()
    deny: tuple[Rule, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.allow or self.deny)

    def refusal(self, tool: str, tool_input: dict, resolve) -> str | None:
        """Why a call breaks the rules, or None. `resolve(path, write)` is the policy's."""
        tool = _ALIASES.get(tool, tool)
        for rule in self.deny:
            if rule.covers(tool) and _matches(rule, tool, tool_input, resolve, deny=True):
                return f"it matches the rule {rule.source} in disallowedTools"
        narrow = [r for r in self.allow if _ALIASES.get(r.tool, r.tool) == tool]
        if narrow and not any(_matches(r, tool, tool_input, resolve) for r in narrow):
            if tool == "Bash" and len(narrow) and _bash_is_compound(tool_input):
                return (f"every command of the line must match one of {_sources(narrow)} "
                        "(each command of a pipeline, list or substitution is checked)")
            return f"this agent may only use {tool} as in {_sources(narrow)}"
        return None


def _sources(rules) -> str:
    return ", ".join(r.source for r in rules)


def _bash_is_compound(tool_input: dict) -> bool:
    command = tool_input.get("command")
    return isinstance(command, str) and len(_analyze(command)[1]) > 1


def _matches(rule: Rule, tool: str, tool_input: dict, resolve, *, deny: bool = False) -> bool:
    if rule.kind == "command":
        command = tool_input.get("command")
        if not isinstance(command, str):
            return False
        texts = [seg.text for seg in _analyze(command)[1]
                 if seg.words and seg.words[0] not in _NOT_A_COMMAND]
        if not texts:
            return False
        hits = [rule.matches_command(t) for t in texts]
        return any(hits) if deny else all(hits)
    if rule.kind in ("read", "write"):
        key = PATH_WRITE_TOOLS.get(tool) or PATH_READ_TOOLS.get(tool)
        value = tool_input.get(key) if key else None
        folder = tool in ("Glob", "Grep", "LS")
        if value is None and folder:
            value = "."
        if not isinstance(value, str) or not value:
            return False
        try:
            real = resolve(value, tool in PATH_WRITE_TOOLS)
        except Exception:  # noqa: BLE001 - a path the policy refuses matches no allow rule
            return deny
        return rule.matches_path(real, resolve(".", False), folder=folder)
    if rule.kind == "domain":
        url = tool_input.get("url")
        return isinstance(url, str) and rule.matches_url(url)
    if rule.kind == "agent":
        name = tool_input.get("subagent_type")
        return isinstance(name, str) and rule.matches_agent(name)
    return False
