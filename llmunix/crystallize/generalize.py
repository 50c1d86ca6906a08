"""Anti-unification of learned traces: the steps two or more successful runs share, with the
values that differ between them - and also appear in their goals - turned into parameters.

Goals are compared word by word: words equal in every goal are the pattern's literal text, a
position where they differ is a parameter (its name from the nearest meaningful word before
it). A step value equal in every trace is a constant; a value that differs must be rebuilt
from the parameters (the word itself, or its stem without the extension, inside constant
text), else the traces do not generalize and the offending step and field are named.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from llmunix.errors import LlmunixError

_EDGE = "\"'`“”‘’()[]<>,;:!?"
_STOP = frozenset({
    "a", "an", "the", "to", "into", "in", "on", "of", "for", "from", "at", "by", "with", "as",
    "and", "or", "is", "are", "be", "this", "that", "these", "those", "it", "its", "my", "our",
    "your", "their", "named", "called", "file", "files",
})
_IDENT = re.compile(r"[^a-z0-9_]+")


class NotGeneralizable(LlmunixError):
    """The traces cannot be turned into one tool (the message names the step and field)."""


@dataclass(frozen=True)
class Ref:
    """A parameter inside a value: the word itself, or its stem (`notes` of `notes.md`)."""

    param: str
    stem: bool = False


# A value rebuilt from parts: constant text and parameter references, concatenated.
Parts = tuple  # tuple[str | Ref, ...]


@dataclass(frozen=True)
class Template:
    parts: Parts

    def fill(self, values: dict[str, str]) -> str:
        out = []
        for part in self.parts:
            if isinstance(part, Ref):
                value = values[part.param]
                out.append(stem_of(value) if part.stem else value)
            else:
                out.append(part)
        return "".join(out)

    @property
    def params(self) -> set[str]:
        return {p.param for p in self.parts if isinstance(p, Ref)}


@dataclass(frozen=True)
class Number:
    """An integer taken from a parameter."""

    param: str


@dataclass
class Param:
    name: str
    values: list[str]  # one per trace, as the goals have it
    used: bool = False


@dataclass
class Pattern:
    """A goal pattern: literal words and parameter slots."""

    words: list[str | Ref]

    def text(self) -> str:
        return " ".join(f"{{{w.param}}}" if isinstance(w, Ref) else w for w in self.words)

    def bind(self, goal: str) -> dict[str, str] | None:
        """The parameter values a goal gives, or None when it does not fit the pattern."""
        words = goal.split()
        if len(words) != len(self.words):
            return None
        bound: dict[str, str] = {}
        for want, got in zip(self.words, words, strict=True):
            if isinstance(want, Ref):
                value = clean(got)
                if not value or bound.setdefault(want.param, value) != value:
                    return None
            elif clean(want).casefold() != clean(got).casefold():
                return None
        return bound


@dataclass
class Generalization:
    pattern: Pattern
    params: list[Param]
    steps: list[dict[str, Any]]  # each step's input, leaves as constants, Templates or Numbers
    notes: list[str] = field(default_factory=list)

    @property
    def tool_params(self) -> list[Param]:
        return [p for p in self.params if p.used]


def clean(word: str) -> str:
    """A goal word without surrounding quotes and trailing punctuation."""
    word = word.strip(_EDGE)
    return word.rstrip(".") if word.count(".") == 1 and word.endswith(".") else word


def stem_of(value: str) -> str:
    name = value.rsplit("/", 1)[-1]
    if "." in name.strip("."):
        return value[: len(value) - len(name)] + name.rsplit(".", 1)[0]
    return value


def _param_name(words: list[str], at: int, values: list[str], taken: set[str]) -> str:
    """A name from what the values are (file, path, number), else from the word before."""
    base = ""
    if all(v.isdigit() for v in values):
        base = "number"
    elif all("/" in v for v in values):
        base = "path"
    elif all("." in v.strip(".") for v in values):
        base = "file"
    for word in reversed(words[:at] if not base else []):
        w = _IDENT.sub("_", clean(word).casefold()).strip("_")
        if w and w not in _STOP and not w[0].isdigit():
            base = w
            break
    base = base or "value"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def goal_pattern(goals: list[str]) -> tuple[Pattern, list[Param]]:
    """Words shared by every goal are literal; words that differ are parameters."""
    split = [g.split() for g in goals]
    if len({len(w) for w in split}) != 1:
        raise NotGeneralizable(
            "the goals differ in more than single words, so no common pattern fits them: "
            + " | ".join(repr(g) for g in goals),
            hint="crystallize one trace (give its id), or runs of goals that differ only in "
                 "names, paths or numbers",
        )
    words: list[str | Ref] = []
    params: list[Param] = []
    taken: set[str] = set()
    for i, column in enumerate(zip(*split, strict=True)):
        values = [clean(w) for w in column]
        if len({v.casefold() for v in values}) == 1:
            words.append(column[0])
            continue
        name = _param_name(split[0], i, values, taken)
        params.append(Param(name, values))
        words.append(Ref(name))
    return Pattern(words), params


def _template(values: list[str], params: list[Param]) -> Template | None:
    """Constant text and parameter references that give each trace's value, if any do."""
    first = values[0]
    candidates: list[tuple[str, Ref]] = []
    for p in params:
        candidates.append((p.values[0], Ref(p.name)))
        stem = stem_of(p.values[0])
        if stem != p.values[0]:
            candidates.append((stem, Ref(p.name, stem=True)))
    candidates.sort(key=lambda c: -len(c[0]))
    parts: list[str | Ref] = [first]
    for needle, ref in candidates:
        if not needle:
            continue
        nxt: list[str | Ref] = []
        for part in parts:
            if isinstance(part, Ref) or needle not in part:
                nxt.append(part)
                continue
            pieces = part.split(needle)
            for k, piece in enumerate(pieces):
                if k:
                    nxt.append(ref)
                if piece:
                    nxt.append(piece)
        parts = nxt
    template = Template(tuple(parts))
    if not template.params:
        return None
    for i, value in enumerate(values):
        if template.fill({p.name: p.values[i] for p in params}) != value:
            return None
    return template


def _unify(values: list[Any], params: list[Param], where: str) -> Any:
    first = values[0]
    if all(v == first for v in values[1:]):
        return first
    if all(isinstance(v, dict) for v in values) and len({tuple(sorted(v)) for v in values}) == 1:
        return {k: _unify([v[k] for v in values], params, f"{where}.{k}") for k in first}
    if all(isinstance(v, list) for v in values) and len({len(v) for v in values}) == 1:
        return [_unify([v[k] for v in values], params, f"{where}[{k}]")
                for k in range(len(first))]
    if all(isinstance(v, str) for v in values):
        template = _template(values, params)
        if template is not None:
            for p in params:
                p.used = p.used or p.name in template.params
            return template
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        for p in params:
            if [str(v) for v in values] == p.values:
                p.used = True
                return Number(p.name)
    raise NotGeneralizable(
        f"{where} differs between the traces ({_show(values)}) in a way their goals do not "
        "explain: it is not built from the words that differ between the goals",
        hint="a value the model composed differently in each run cannot become a parameter; "
             "crystallize one of the traces on its own",
    )


def _show(values: list[Any]) -> str:
    shown = [repr(v) if len(repr(v)) <= 40 else repr(v)[:37] + "..." for v in values]
    return " vs ".join(shown)


def generalize(goals: list[str], steps: list[list[tuple[str, str, dict]]]) -> Generalization:
    """Anti-unify the tool steps of several traces (each a list of (label, tool, input));
    `label` names a step in messages ("step 3 (Write by writer)")."""
    pattern, params = goal_pattern(goals)
    shapes = [[(tool, tuple(sorted(inp))) for _label, tool, inp in s] for s in steps]
    for i, shape in enumerate(shapes[1:], start=1):
        if shape != shapes[0]:
            k = next((k for k, (a, b) in enumerate(zip(shapes[0], shape, strict=False)) if a != b),
                     min(len(shape), len(shapes[0])))
            raise NotGeneralizable(
                f"the traces do not take the same steps: trace 1 has {len(shapes[0])} and "
                f"trace {i + 1} has {len(shape)}; they first differ at step {k + 1}",
                hint="crystallize the traces one at a time",
            )
    unified = []
    for k in range(len(steps[0])):
        label = steps[0][k][0]
        unified.append(_unify([s[k][2] for s in steps], params, f"{label}: input"))
    return Generalization(pattern, params, unified)
