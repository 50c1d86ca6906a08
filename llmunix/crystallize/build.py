"""`llmunix memory crystallize`: learned traces become python tool specs in
`projects/<p>/tools/crystallized/<name>.md` that redo the traces' work with no model.

Learned traces of a project that take the same steps are crystallized together: their goals
give the parameters (see generalize.py). Only reproducible steps qualify; a trace with a step
that is not (a prompt tool, the network, a spec change) is refused with the step named. The
tool is verified in a scratch copy of the workspace (verify.py) before it is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from llmunix.crystallize import codegen
from llmunix.crystallize.generalize import Generalization, NotGeneralizable, generalize
from llmunix.crystallize.verify import Case, Checkout, VerificationFailed, verify
from llmunix.errors import LlmunixError
from llmunix.memory import git as gitmem
from llmunix.memory.learned_file import load_long_term
from llmunix.memory.longterm import LongTermTrace, learned_files
from llmunix.specs.frontmatter import atomic_write
from llmunix.specs.models import CRYSTALLIZED_FOLDER as FOLDER
from llmunix.specs.models import ToolSpec
from llmunix.specs.registry import load_registry
from llmunix.trace.markdown import iso, slugify, utc_now
from llmunix.workspace.layout import Project, Workspace

EFFECT_TOOLS = frozenset({"Read", "Write", "Edit", "MultiEdit", "Bash"})
NOT_REPRODUCIBLE = {
    "WebFetch": "it reads the network, whose answer can differ every time",
    "WebSearch": "it reads the network, whose answer can differ every time",
    "CreateAgent": "it changes specs; a crystallized tool only redoes work in the workspace",
    "NotebookEdit": "llmunix cannot redo notebook edits without the Claude Code CLI",
}


class Refused(LlmunixError):
    """A trace (or group of traces) that cannot be crystallized; the message says why."""


@dataclass
class Outcome:
    name: str
    path: str  # workspace-relative
    traces: list[str]
    pattern: str
    params: list[str]
    verified_against: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class _Op:
    label: str
    tool: str
    input: dict[str, Any]
    spec: ToolSpec | None  # the tool spec it calls


def crystallized_dir(project: Project) -> Path:
    return project.tools_dir / FOLDER


def operations(trace: LongTermTrace, tools: dict[str, ToolSpec]) -> list[_Op]:
    """The steps a crystallized tool redoes; Refused names the first that cannot be redone."""
    ops = []
    for step in trace.steps:
        if step.kind != "tool" or step.is_error or step.tool in codegen.READ_ONLY:
            continue
        label = f"step {step.source_step or step.number} ({step.tool} by {step.agent})"
        why = NOT_REPRODUCIBLE.get(step.tool)
        spec = tools.get(step.tool)
        if why is None and step.tool not in EFFECT_TOOLS:
            if spec is None:
                why = "no tool of that name is in scope any more" if not step.tool.startswith(
                    "mcp__") else "it is a tool of an MCP server llmunix cannot call offline"
            elif spec.kind == "prompt":
                why = "it is a prompt tool: a model follows its instructions"
            elif spec.kind == "python" and spec.python_source is None:
                why = (f"its code is the module {spec.python}, outside the spec, which a "
                       "crystallized tool cannot take along")
        if why:
            raise Refused(f"{trace.trace_id}: {label} cannot be reproduced without a model: "
                          f"{why}", hint="only traces of file reads, writes, edits, shell "
                          "commands and command/python tool specs crystallize")
        ops.append(_Op(label, step.tool, step.input,
                       spec if step.tool not in EFFECT_TOOLS else None))
    if not any(op.tool != "Read" for op in ops):
        raise Refused(f"{trace.trace_id}: it changes nothing in the workspace, so there is "
                      "nothing to crystallize")
    return ops


def shape(ops: list[_Op]) -> tuple:
    return tuple((op.tool, tuple(sorted(op.input))) for op in ops)


def _name(gen: Generalization, single: LongTermTrace | None, taken: set[str]) -> str:
    if single is not None:
        base = slugify(single.goal)
    else:
        literal = [w for w in gen.pattern.words if isinstance(w, str)]
        base = slugify(" ".join(literal))
    base = (base or "crystallized")[:48].strip("-")
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    return name


def render_spec(name: str, gen: Generalization, group: list[LongTermTrace],
                ops: list[_Op], tool_digests: dict[str, str]) -> str:
    params = gen.tool_params
    pattern = gen.pattern.text()
    if params:
        what = f"Crystallized from {len(group)} runs of: {pattern}."
    else:
        what = (f"Crystallized from one run of: {pattern}. Takes no parameters (one run "
                "shows no values to vary; crystallize again once a similar goal is learned).")
    meta: dict[str, Any] = {
        "name": name,
        "description": f"{what} Redoes the learned steps directly: no model, no tokens.",
        "input": {p.name: {"type": "string",
                           "description": f"learned values: {', '.join(p.values)}"}
                  for p in params},
        "python": codegen.FUNCTION,
        "deterministic": True,
        "crystallized": {
            "goal_pattern": pattern,
            "learned_traces": [t.trace_id for t in group],
            "runs": [t.source_traces[0] for t in group if t.source_traces],
            "tool_specs": tool_digests,
            "created_at": iso(utc_now()),
            "status": "active",
            "usage_count": 0,
            "success_count": 0,
            "failure_count": 0,
            "consecutive_failures": 0,
        },
    }
    lines = [f"# {name}", "", what, "", "Steps:"]
    lines += [f"- {op.label}" for op in ops]
    code = codegen.render(gen, [(op.label, op.tool, op.spec) for op in ops], what)
    head = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=100)
    return f"---\n{head}---\n" + "\n".join(lines) + f"\n\n```python\n{code}```\n"


def _group_for(seed: LongTermTrace, learned: list[LongTermTrace],
               ops: dict[str, list[_Op]]) -> list[LongTermTrace]:
    key = (shape(ops[seed.trace_id]), len(seed.goal.split()))
    group = [seed]
    for other in learned:
        if other is seed or other.trace_id not in ops:
            continue
        if (shape(ops[other.trace_id]), len(other.goal.split())) == key:
            group.append(other)
    return group


def _find(learned: list[LongTermTrace], trace_id: str) -> LongTermTrace:
    for t in learned:
        if trace_id in (t.trace_id, t.path.stem) or trace_id in t.source_traces:
            return t
    hits = [t for t in learned if t.trace_id.startswith(trace_id)
            or any(s.startswith(trace_id) for s in t.source_traces)]
    if len(hits) == 1:
        return hits[0]
    raise Refused(f"no learned trace {trace_id!r} in this project" if not hits else
                  f"{trace_id!r} matches several learned traces",
                  hint="see `llmunix memory show`; a learned trace's id or one of its "
                       "source runs' ids")


def crystallize(ws: Workspace, project: Project, trace_id: str | None = None, *,
                checkout: Checkout = gitmem.extract) -> list[Outcome]:
    """Crystallize one learned trace (with every learned trace that takes the same steps) or,
    with no id, every group of the project's learned traces. Verified before written."""
    registry = load_registry(ws, project)
    learned = [load_long_term(f.path) for f in learned_files(project.long_term_dir)
               if f.meta.get("status", "active") != "demoted"]
    if not learned:
        raise Refused(f"project {project.name!r} has no learned traces",
                      hint="run a goal, then `llmunix memory consolidate`")
    ops: dict[str, list[_Op]] = {}
    refused: dict[str, str] = {}
    for t in learned:
        try:
            ops[t.trace_id] = operations(t, registry.tools)
        except Refused as exc:
            refused[t.trace_id] = str(exc)
    if trace_id is not None:
        seed = _find(learned, trace_id)
        if seed.trace_id in refused:
            raise Refused(refused[seed.trace_id])
        seeds = [seed]
    else:
        seeds = [t for t in learned if t.trace_id in ops]
    outcomes: list[Outcome] = []
    done: set[str] = set()
    taken = {s.name for s in registry.tools.values()}
    for seed in seeds:
        if seed.trace_id in done:
            continue
        group = _group_for(seed, learned, ops)
        done.update(t.trace_id for t in group)
        outcomes.append(_crystallize_group(ws, project, group, ops, taken, checkout))
    for tid, why in refused.items():
        if trace_id is None:
            outcomes.append(Outcome("", "", [tid], "", [], error=why))
    made = [o for o in outcomes if o.ok]
    if made and ws.config.memory.commit:
        names = ", ".join(o.name for o in made)
        gitmem.commit_paths(ws.root, f"memory crystallize: {names}", [o.path for o in made],
                            create=True)
    return outcomes


def _crystallize_group(ws, project, group, ops, taken, checkout) -> Outcome:
    notes = []
    try:
        gen = generalize([t.goal for t in group],
                         [[(o.label, o.tool, o.input) for o in ops[t.trace_id]] for t in group])
    except NotGeneralizable as exc:
        if len(group) == 1:
            raise
        notes.append(f"the {len(group)} traces do not generalize ({exc.message}); "
                     f"crystallized {group[0].trace_id} alone")
        group = group[:1]
        gen = generalize([group[0].goal], [[(o.label, o.tool, o.input)
                                             for o in ops[group[0].trace_id]]])
    seed_ops = ops[group[0].trace_id]
    name = _name(gen, group[0] if len(group) == 1 else None, set())
    target = crystallized_dir(project) / f"{name}.md"
    digests = {o.tool: o.spec.content_hash for o in seed_ops if o.spec}
    text = render_spec(name, gen, group, seed_ops, digests)
    outcome = Outcome(name, target.relative_to(ws.root).as_posix(),
                      [t.trace_id for t in group], gen.pattern.text(),
                      [p.name for p in gen.tool_params], notes=notes)
    cases = []
    for i, t in enumerate(group):
        if not t.source_traces:
            outcome.error = f"{t.trace_id} names no source run to verify against"
            return outcome
        cases.append(Case(t.source_traces[0], {p.name: p.values[i] for p in gen.tool_params}))
    try:
        outcome.verified_against = verify(ws, project, name, text, cases, checkout=checkout)
    except VerificationFailed as exc:
        outcome.error = str(exc)
        return outcome
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, text, ws.root)
    return outcome


def describe(outcome: Outcome) -> str:
    if not outcome.ok:
        return f"refused {', '.join(outcome.traces)}: {outcome.error}"
    params = ", ".join(outcome.params) or "no parameters"
    return (f"crystallized {outcome.path} ({params}) from {len(outcome.traces)} trace(s); "
            f"pattern: {outcome.pattern!r}; verified against {len(outcome.verified_against)} "
            f"run(s): {', '.join(outcome.verified_against)}")


def as_json(outcomes: list[Outcome]) -> str:
    return json.dumps([o.to_dict() for o in outcomes], indent=2)
