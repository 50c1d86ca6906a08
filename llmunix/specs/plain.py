"""Specs as plain values (tuples, dicts, strings, numbers) for the spec cache, and back again
without validating a second time: what the parser checked once is stored as it came out.

Each spec class is written as the tuple of its fields in declaration order; the few fields that
hold objects (the path, permission rules, MCP servers, the pydantic settings) have their own
codec. `SIGNATURE` names every field of every class involved, so a cache written before a
field was added, removed or renamed is never read as if it were current."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from llmunix.policy.rules import Rule, ToolRules
from llmunix.specs.diagnostics import Diagnostic
from llmunix.specs.mcp_servers import ServerConfig
from llmunix.specs.models import AgentSpec, LlmunixSettings, ToolSpec
from llmunix.specs.skills import CommandSpec, SkillSpec

CLASSES = {"agent": AgentSpec, "tool": ToolSpec, "skill": SkillSpec, "command": CommandSpec}


def _names(cls) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _model_names(cls) -> tuple[str, ...]:
    return tuple(cls.model_fields)


_FIELDS = {kind: _names(cls) for kind, cls in CLASSES.items()}
_RULE, _SERVER, _DIAG = _names(Rule), _names(ServerConfig), _names(Diagnostic)
_EMPTY_RULES = ToolRules()


class PlainError(ValueError):
    """A value the plain form cannot hold (the file is then parsed at each boot instead)."""


# ---------------------------------------------------------------- pydantic settings

def _model_out(model: BaseModel) -> tuple:
    """(plain field values, the fields set, nested models by field) of an already validated
    model; nested models of a field whose declared type is that model's class only."""
    cls = type(model)
    if model.__pydantic_extra__ or model.__pydantic_private__:
        raise PlainError(f"{cls.__name__} holds extra or private values")
    values, nested = {}, {}
    for name, value in model.__dict__.items():
        if isinstance(value, BaseModel):
            if cls.model_fields[name].annotation is not type(value):
                raise PlainError(f"{cls.__name__}.{name} is not of its declared model")
            nested[name] = _model_out(value)
            values[name] = None  # keeps the field's place: the order of fields is kept
        else:
            values[name] = value
    return values, tuple(sorted(model.__pydantic_fields_set__)), nested


_MODEL_FIELDS: dict[type, tuple[frozenset, dict]] = {}  # class -> (field names, their types)


def _model_in(cls: type[BaseModel], row: tuple) -> BaseModel:
    """What `model_construct` does for a complete set of values, minus its per-field default
    copying (the values are those of a model validated before)."""
    known = _MODEL_FIELDS.get(cls)
    if known is None:
        fields = cls.__pydantic_fields__
        known = _MODEL_FIELDS[cls] = (frozenset(fields),
                                      {n: f.annotation for n, f in fields.items()})
    values, fields_set, nested = row
    data = dict(values)  # the cache keeps its own to write again
    for name, sub in nested.items():
        data[name] = _model_in(known[1][name], sub)
    if data.keys() != known[0]:
        raise PlainError(f"{cls.__name__}: fields differ")
    model = cls.__new__(cls)
    _set(model, "__dict__", data)
    _set(model, "__pydantic_fields_set__", set(fields_set))
    _set(model, "__pydantic_extra__", None)
    _set(model, "__pydantic_private__", None)
    return model


_set = object.__setattr__  # pydantic's own __setattr__ validates: not wanted here


def _can_construct(cls: type[BaseModel]) -> bool:
    return (not cls.__pydantic_post_init__ and not cls.__pydantic_root_model__
            and cls.model_config.get("extra") != "allow" and not cls.__private_attributes__)


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


def _settings_out(value: BaseModel) -> tuple:
    return _model_out(value)


def _settings_in(row: tuple) -> BaseModel:
    return _model_in(LlmunixSettings, row)


_CODECS = {  # field -> (to plain, from plain); the path is never stored: it is the cache key
    "rules": (_rules_out, _rules_in),
    "mcp_servers": (_servers_out, _servers_in),
    "settings": (_settings_out, _settings_in),
}


def _signature() -> str:
    from llmunix.policy.gate import Constraints

    parts = [f"{kind}:{','.join(names)}" for kind, names in _FIELDS.items()]
    parts += [f"rule:{','.join(_RULE)}", f"server:{','.join(_SERVER)}",
              f"diagnostic:{','.join(_DIAG)}",
              f"settings:{','.join(_model_names(LlmunixSettings))}",
              f"constraints:{','.join(_model_names(Constraints))}"]
    return ";".join(parts)


SIGNATURE = _signature()


def _usable() -> bool:
    from llmunix.policy.gate import Constraints

    return all(_can_construct(c) for c in (LlmunixSettings, Constraints)) and not any(
        hasattr(c, "__post_init__") for c in (*CLASSES.values(), Rule, ServerConfig))


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
    return CLASSES[kind], names, codecs, names.index("path")


_PLANS = {kind: _plan(kind) for kind in CLASSES}


def spec_in(kind: str, row: tuple, path: Path) -> Any:
    """The spec again, for the file at `path`, without running the parser's checks."""
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
