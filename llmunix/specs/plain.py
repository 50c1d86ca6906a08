"""Specs as plain values (tuples, dicts, strings, numbers) for the spec cache, and back again
without validating a second time: what the parser checked once is stored as it came out.

Each spec class is written as the tuple of its fields in declaration order; the few fields that
hold objects (the path, permission rules, MCP servers, the agent's settings) have their own
codec. `SIGNATURE` names every field of every class involved, so a cache written before a
field was added, removed or renamed is never read as if it were current."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from llmunix.checked import to_plain
from llmunix.policy.gate import Constraints
from llmunix.policy.rules import Rule, ToolRules
from llmunix.specs.diagnostics import Diagnostic
from llmunix.specs.mcp_servers import ServerConfig
from llmunix.specs.models import PLAIN_SETTINGS, AgentSpec, LlmunixSettings, ToolSpec
from llmunix.specs.skills import CommandSpec, SkillSpec

CLASSES = {"agent": AgentSpec, "tool": ToolSpec, "skill": SkillSpec, "command": CommandSpec}


def _names(cls) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


_FIELDS = {kind: _names(cls) for kind, cls in CLASSES.items()}
_RULE, _SERVER, _DIAG = _names(Rule), _names(ServerConfig), _names(Diagnostic)
_EMPTY_RULES = ToolRules()
_SETTINGS_KEYS = frozenset(_names(LlmunixSettings))
_CONSTRAINTS_KEYS = frozenset(_names(Constraints))


class PlainError(ValueError):
    """A value the plain form cannot hold (the file is then parsed at each boot instead)."""


# ---------------------------------------------------------------- field codecs

def _rules_out(rules: ToolRules) -> tuple:
    return tuple(tuple(tuple(getattr(r, n) for n in _RULE) for r in side)
                 for side in (rules.allow, rules.deny))


def _rules_in(row: tuple) -> ToolRules:
    allow, deny = row
    if not allow and not deny:
        return _EMPTY_RULES
    return ToolRules(tuple(Rule(*r) for r in allow), tuple(Rule(*r) for r in deny))


def _servers_out(value: Any) -> Any:
    if value is None:
        return None
    names, servers = value
    return tuple(names), tuple(tuple(dict(v) if n in ("env", "headers") else v
                                     for n, v in ((n, getattr(s, n)) for n in _SERVER))
                               for s in servers)


def _servers_in(row: Any) -> Any:
    if row is None:
        return None
    names, servers = row
    return names, tuple(ServerConfig(*s) for s in servers)


def _settings_out(value: LlmunixSettings) -> dict:
    return to_plain(value)


def _settings_checked(row: dict) -> dict:
    """An agent's settings stay plain until read (models.PLAIN_SETTINGS); only their shape is
    checked here, so a stored value of another shape still means: parse the file."""
    if type(row) is not dict or row.keys() != _SETTINGS_KEYS:
        raise PlainError("stored settings of another shape")
    constraints = row["constraints"]
    if type(constraints) is not dict or constraints.keys() != _CONSTRAINTS_KEYS:
        raise PlainError("stored constraints of another shape")
    return row


_CODECS = {  # field -> (to plain, from plain); the path is never stored: it is the cache key
    "rules": (_rules_out, _rules_in),
    "mcp_servers": (_servers_out, _servers_in),
    "settings": (_settings_out, _settings_checked),
}


def _signature() -> str:
    parts = [f"{kind}:{','.join(names)}" for kind, names in _FIELDS.items()]
    parts += [f"rule:{','.join(_RULE)}", f"server:{','.join(_SERVER)}",
              f"diagnostic:{','.join(_DIAG)}",
              f"settings:{','.join(_names(LlmunixSettings))}",
              f"constraints:{','.join(_names(Constraints))}"]
    return ";".join(parts)


SIGNATURE = _signature()


def _usable() -> bool:
    return not any(hasattr(c, "__post_init__") for c in (
        *CLASSES.values(), Rule, ServerConfig, LlmunixSettings, Constraints))


USABLE = _usable()  # False: a class grew set-up code the plain form would skip; no cache


# ---------------------------------------------------------------- specs and problems

def spec_out(kind: str, spec: Any) -> tuple:
    """The plain form of a spec of `kind` (its path left out). PlainError when it holds a
    value the form cannot."""
    if type(spec) is not CLASSES[kind]:
        raise PlainError(f"not a {kind} spec: {type(spec).__name__}")
    row = []
    for name in _FIELDS[kind]:
        value = getattr(spec, name)
        if name == "path":
            value = None
        elif name in _CODECS:
            value = _CODECS[name][0](value)
        row.append(value)
    return tuple(row)


def _plan(kind: str) -> tuple:
    names = _FIELDS[kind]
    codecs = tuple((i, _CODECS[n][1]) for i, n in enumerate(names) if n in _CODECS)
    # an agent's settings go in as their plain form, built when first read (models.py)
    keys = tuple(PLAIN_SETTINGS if n == "settings" else n for n in names)
    return CLASSES[kind], keys, codecs, names.index("path")


_PLANS = {kind: _plan(kind) for kind in CLASSES}


def spec_in(kind: str, row: tuple, path: Path) -> Any:
    """The spec again, for the file at `path`, without running the parser's checks (an agent's
    settings not even built: models.PLAIN_SETTINGS)."""
    cls, names, codecs, path_index = _PLANS[kind]
    if len(row) != len(names):
        raise PlainError("a stored spec of another shape")
    values = list(row)
    for i, into in codecs:
        values[i] = into(values[i])
    values[path_index] = path
    spec = object.__new__(cls)
    spec.__dict__.update(zip(names, values, strict=True))
    return spec


def problems_out(problems: list[Diagnostic]) -> tuple:
    return tuple(tuple(getattr(d, n) for n in _DIAG) for d in problems)


def problems_in(rows: tuple) -> list[Diagnostic]:
    return [Diagnostic(*row) for row in rows]
