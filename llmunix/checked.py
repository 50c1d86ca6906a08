"""Settings as plain dataclasses, checked by pydantic only where input enters.

`llmunix.toml`'s sections and an agent's `llmunix:` block are read on every command, but
checked only when their text is new: pydantic's import and its per-class schema building were
half of a replayed run's start-up. So the classes are stdlib dataclasses whose annotations
carry their limits (`Annotated[int, Rule(gt=0)]`), `validate` builds the equivalent strict
pydantic model the first time a class is checked in a process, and `to_plain` / `from_plain`
store a checked value for the next process (workspace/config.py, specs/plain.py).

A dataclass may define `__check__(self)`, raising ValueError, for a rule over several fields;
it runs after its fields are checked.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

__all__ = ["Invalid", "Rule", "field_names", "from_plain", "non_defaults", "to_plain",
           "validate"]


class Rule:
    """What a field must satisfy: pydantic `Field` limits (gt=0, le=2, min_length=1, ...) and
    an optional `after(value) -> value` that raises ValueError to refuse, or normalizes."""

    __slots__ = ("after", "limits")

    def __init__(self, after: typing.Callable[[Any], Any] | None = None, **limits: Any):
        self.after = after
        self.limits = limits

    def __repr__(self) -> str:  # shown in signatures of the cache formats
        return f"Rule({self.limits})"


class Invalid(ValueError):
    """Input a settings class refuses: `errors` in pydantic's shape (loc, msg, type), first
    problem first. The boundary that validated turns it into a ConfigError or Diagnostic."""

    def __init__(self, errors: list[dict[str, Any]]):
        self.errors = errors
        first = errors[0] if errors else {"loc": (), "msg": "invalid"}
        where = ".".join(str(p) for p in first["loc"])
        super().__init__(f"{where}: {first['msg']}" if where else first["msg"])


def field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def validate(cls: type, data: Any, *, strict: bool = True) -> Any:
    """An instance of the dataclass `cls` from plain `data` (a mapping), checked as a strict
    pydantic model with unknown keys refused would; Invalid when it is not."""
    if type(data) is dict and not data:
        return cls()  # nothing given: the defaults, which are valid by construction
    model = _model_for(cls)
    from pydantic import ValidationError

    try:
        checked = model.model_validate(data, strict=strict)
    except ValidationError as exc:
        raise Invalid([{"loc": tuple(e["loc"]), "msg": e["msg"], "type": e["type"]}
                       for e in exc.errors(include_url=False)]) from None
    return _back(checked, ())


# ---------------------------------------------------------------- pydantic, built on first use

_MODELS: dict[type, type] = {}  # dataclass -> its pydantic model
_CLASSES: dict[type, type] = {}  # pydantic model -> its dataclass


def _model_for(cls: type) -> type:
    model = _MODELS.get(cls)
    if model is not None:
        return model
    from pydantic import ConfigDict, Field, create_model

    hints = typing.get_type_hints(cls, include_extras=True)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        # unset fields are never read back (the dataclass's own default applies), so no
        # default is built here
        fields[f.name] = (_swap(hints[f.name]), Field(None))
    config = ConfigDict(extra="forbid", **getattr(cls, "__checked_config__", {}))
    model = create_model(cls.__name__, __config__=config, __module__=cls.__module__, **fields)
    _MODELS[cls], _CLASSES[model] = model, cls
    return model


def _swap(tp: Any) -> Any:
    """`tp` with each dataclass replaced by its model and each Rule by pydantic's markers."""
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _model_for(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        from pydantic import AfterValidator, Field

        marks: list[Any] = []
        for mark in tp.__metadata__:
            if isinstance(mark, Rule):
                if mark.limits:
                    marks.append(Field(**mark.limits))
                if mark.after is not None:
                    marks.append(AfterValidator(mark.after))
            else:
                marks.append(mark)
        return typing.Annotated[(_swap(args[0]), *marks)]
    if origin in (typing.Union, types.UnionType):
        return typing.Union[tuple(_swap(a) for a in args)]  # noqa: UP007 - built at run time
    if origin in (list, dict, tuple, set, frozenset) and args:
        return origin[tuple(_swap(a) for a in args)] if len(args) > 1 else origin[_swap(args[0])]
    return tp


def _back(value: Any, loc: tuple) -> Any:
    """Checked pydantic values as the dataclasses they stand for."""
    cls = _CLASSES.get(type(value))
    if cls is not None:
        obj = cls(**{name: _back(getattr(value, name), (*loc, name))
                     for name in value.model_fields_set})
        check = getattr(obj, "__check__", None)
        if check is not None:
            try:
                check()
            except ValueError as exc:
                raise Invalid([{"loc": loc, "msg": f"Value error, {exc}",
                                "type": "value_error"}]) from None
        return obj
    if type(value) is dict:
        return {k: _back(v, (*loc, k)) for k, v in value.items()}
    if type(value) is list:
        return [_back(v, (*loc, i)) for i, v in enumerate(value)]
    return value


# ---------------------------------------------------------------- plain values, for caches
# (boot turns 20,000 agents' settings from and to plain values: these avoid dataclasses.fields
# and is_dataclass per call, which cost more than the work)

_NAMES: dict[type, tuple[str, ...] | None] = {}  # type -> its field names (None: no dataclass)
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _names_of(cls: type) -> tuple[str, ...] | None:
    names = _NAMES.get(cls, False)
    if names is False:
        names = _NAMES[cls] = field_names(cls) if dataclasses.is_dataclass(cls) else None
    return names


def to_plain(obj: Any) -> Any:
    """A checked value as dicts, lists and scalars only (marshal can store it): each dataclass
    becomes {field: value}."""
    kind = type(obj)
    if kind in _SCALARS:
        return obj
    names = _names_of(kind)
    if names is not None:
        values = obj.__dict__
        return {name: to_plain(values[name]) for name in names}
    if kind is dict:
        return {k: to_plain(v) for k, v in obj.items()}
    if kind is list or kind is tuple:
        return [to_plain(v) for v in obj]
    return obj


_PLANS: dict[type, tuple[int, list[tuple[str, Any]]]] = {}  # dataclass -> (fields, converters)


def from_plain(cls: type, data: dict[str, Any]) -> Any:
    """`to_plain`'s output as the instance of `cls` it was, without checking again."""
    plan = _PLANS.get(cls)
    if plan is None:
        hints = typing.get_type_hints(cls)
        fields = dataclasses.fields(cls)
        converters = [(f.name, into) for f in fields
                      if (into := _plan(hints[f.name])) is not None]
        plan = _PLANS[cls] = (len(fields), converters)
    count, converters = plan
    if len(data) != count:
        raise KeyError("fields differ")
    values = dict(data)
    for name, into in converters:
        value = values[name]
        if value is not None:
            values[name] = into(value)
    obj = cls.__new__(cls)
    obj.__dict__.update(values)
    return obj


def _plan(tp: Any) -> Any:
    """None when a plain value is already what the field holds, else the function to make it."""
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return lambda v: from_plain(tp, v)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _plan(inner[0]) if len(inner) == 1 else None
    if origin is dict and len(args) == 2:
        sub = _plan(args[1])
        return None if sub is None else (lambda v: {k: sub(x) for k, x in v.items()})
    if origin is list and args:
        sub = _plan(args[0])
        return list if sub is None else (lambda v: [sub(x) for x in v])
    if origin is tuple:
        return tuple
    return None


# ---------------------------------------------------------------- reporting

_DEFAULTS: dict[type, Any] = {}


def non_defaults(obj: Any) -> dict[str, Any]:
    """The fields of a settings dataclass that differ from its defaults, nested ones by their
    own differing fields (what `llmunix boot --json` and `agents export` show)."""
    cls = type(obj)
    default = _DEFAULTS.get(cls)
    if default is None:
        default = _DEFAULTS[cls] = cls()
    if obj == default:
        return {}
    values, base = obj.__dict__, default.__dict__
    out = {}
    for name in _names_of(cls):
        value = values[name]
        if value == base[name]:
            continue
        out[name] = non_defaults(value) if _names_of(type(value)) is not None \
            else to_plain(value)
    return out
