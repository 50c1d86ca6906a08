"""CreateAgent: the one way a run changes specs. An agent that lists it writes (or updates) an
agent spec in the project's `agents/` folder; llmunix validates it with the parser boot uses and
enforces the rules before anything is written:

- the new agent's tools are a subset of its creator's (plus `[create_agent] extra_tools`);
- it does not shadow an agent of a lower scope (system, .claude, user) unless
  `[create_agent] allow_shadowing`; it never replaces the agent running the goal or its creator;
- its constraints are at least as strict as its creator's (the creator's are inherited);
- the spec is at most `[create_agent] max_spec_bytes`.
Refusals name the field and the reason, so the model can fix its call.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from llmunix.checked import Invalid, validate
from llmunix.errors import LlmunixError, SpecError
from llmunix.policy.gate import Constraints
from llmunix.specs.agents import parse_agent
from llmunix.specs.document import parse_document
from llmunix.specs.frontmatter import atomic_write
from llmunix.specs.models import AgentSpec, canonical_tool_name, is_builtin_tool
from llmunix.workspace.config import CreateAgentConfig
from llmunix.workspace.layout import Project

TOOL = "CreateAgent"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": (
        "Create a specialist agent (or update one this project created) as a markdown spec in "
        "the project's agents/ folder. It can be delegated to on your next turn and stays in "
        "memory for later goals. Give it only the tools its task needs (a subset of yours)."
    ),
    "properties": {
        "name": {"type": "string", "description": "Letters, digits, - and _ (e.g. csv-analyst)."},
        "description": {"type": "string",
                        "description": "When to delegate to it: what it does, in one sentence."},
        "tools": {"type": "array", "items": {"type": "string"},
                  "description": "The tools it may use, e.g. [\"Read\", \"Write\"]."},
        "body": {"type": "string",
                 "description": "Its system prompt: role, inputs, how to work, rules, the "
                                "shape of its final answer."},
        "model": {"type": "string", "description": "Optional model, e.g. haiku."},
        "max_turns": {"type": "integer", "minimum": 1, "description": "Optional turn limit."},
        "constraints": {"type": "object",
                        "description": "Optional llmunix constraints (write_paths, "
                                       "allowed_extensions, read_only, max_file_size_mb, "
                                       "deny_commands)."},
    },
    "required": ["name", "description", "tools", "body"],
    "additionalProperties": False,
}


_FIELDS = {2: "name", 3: "description", 4: "tools"}  # lines of the rendered frontmatter


class CreateAgentRefused(LlmunixError):
    """A CreateAgent call that llmunix refuses; the message lists each field and reason."""


@dataclass(frozen=True)
class Created:
    spec: AgentSpec
    path: Path  # workspace-relative in reports
    action: str  # created | updated | unchanged
    diff: str

    def report(self, shown_path: str, how_to_delegate: str) -> str:
        head = (f"Agent '{self.spec.name}' {self.action}: {shown_path} "
                f"(spec {self.spec.content_hash}). {how_to_delegate}")
        return f"{head}\n\n{self.diff}" if self.diff else head


def _refuse(problems: list[str]) -> CreateAgentRefused:
    listing = "\n".join(f"- {p}" for p in problems)
    return CreateAgentRefused(f"CreateAgent refused; nothing was written:\n{listing}\n"
                              "Fix these and call CreateAgent again.")


def _text_field(args: dict, key: str, problems: list[str], *, required: bool = True) -> str:
    """A text field; whether it is a valid name or body is the spec parser's to say."""
    value = args.get(key)
    if value is None and key == "model":
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        problems.append(f"field '{key}': must be {'non-empty ' if required else ''}text")
        return ""
    return value


def _tools_field(args: dict, problems: list[str]) -> list[str]:
    value = args.get("tools")
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        problems.append("field 'tools': must list the tools the agent may use, e.g. "
                        "[\"Read\", \"Write\"] (an agent created in a run never gets every tool)")
        return []
    return [canonical_tool_name(v.split("(", 1)[0].strip()) for v in value]


def _merge_constraints(own: Any, creator: Constraints, problems: list[str]) -> dict | None:
    """The new agent's constraints with its creator's inherited; looser ones are refused."""
    if own is not None and not isinstance(own, dict):
        problems.append("field 'constraints': must be a mapping, e.g. {write_paths: [\"out/**\"]}")
        return None
    own = dict(own or {})
    try:
        mine = validate(Constraints, own, strict=False)
    except Invalid as exc:
        problems.append(f"field 'constraints': {exc}")
        return None
    merged = dict(own)
    if creator.read_only and not mine.read_only:
        if "read_only" in own:
            problems.append("field 'constraints.read_only': the creator is read-only, so the "
                            "agent it creates must be too")
        merged["read_only"] = True
    for key in ("allowed_extensions", "write_paths"):
        theirs = getattr(creator, key)
        if theirs is None:
            continue
        wanted = getattr(mine, key)
        if wanted is None:
            merged[key] = list(theirs)
        elif not set(wanted) <= set(theirs):
            extra = ", ".join(sorted(set(wanted) - set(theirs)))
            problems.append(f"field 'constraints.{key}': {extra} goes beyond the creator's "
                            f"{key} ({', '.join(theirs)})")
    if creator.max_file_size_mb is not None:
        if mine.max_file_size_mb is None:
            merged["max_file_size_mb"] = creator.max_file_size_mb
        elif mine.max_file_size_mb > creator.max_file_size_mb:
            problems.append(f"field 'constraints.max_file_size_mb': above the creator's "
                            f"{creator.max_file_size_mb:g}")
    if creator.deny_commands:
        merged["deny_commands"] = list(dict.fromkeys([*creator.deny_commands,
                                                      *mine.deny_commands]))
    return merged


def render_spec(args: dict, tools: list[str], constraints: dict | None) -> str:
    meta: dict[str, Any] = {"name": args["name"], "description": " ".join(
        args["description"].split()), "tools": ", ".join(tools)}
    if args.get("model"):
        meta["model"] = args["model"]
    settings: dict[str, Any] = {}
    if args.get("max_turns") is not None:
        settings["max_turns"] = args["max_turns"]
    if constraints:
        settings["constraints"] = constraints
    if settings:
        meta["llmunix"] = settings
    head = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=100)
    return f"---\n{head}---\n{args['body'].strip()}\n"


def create_agent(
    args: Any,
    *,
    project: Project,
    agents: dict[str, AgentSpec],
    tool_specs: set[str],
    creator: AgentSpec,
    creator_tools: set[str] | None,
    goal_agent: str,
    config: CreateAgentConfig,
) -> Created:
    """Validate a CreateAgent call and write the spec. Raises CreateAgentRefused (nothing
    written) listing every problem. `creator_tools`: what the creator may use (None: all)."""
    if not isinstance(args, dict):
        raise _refuse(["the input must be an object with name, description, tools and body"])
    problems: list[str] = []
    unknown = sorted(set(args) - set(SCHEMA["properties"]))
    if unknown:
        problems.append(f"field '{unknown[0]}': not a CreateAgent field (fields: "
                        f"{', '.join(SCHEMA['properties'])})")
    name = _text_field(args, "name", problems, required=False)
    _text_field(args, "description", problems)
    _text_field(args, "body", problems, required=False)
    _text_field(args, "model", problems, required=False)
    if args.get("max_turns") is not None and (not isinstance(args["max_turns"], int)
                                              or isinstance(args["max_turns"], bool)
                                              or args["max_turns"] < 1):
        problems.append("field 'max_turns': must be a whole number of turns, at least 1")
    tools = _tools_field(args, problems)
    if creator.settings.constraints.read_only:
        problems.append(f"'{creator.name}' is read-only: it may not create agents")
    missing = [t for t in tools if not is_builtin_tool(t) and t not in tool_specs]
    if missing:
        problems.append(f"field 'tools': no tool named {', '.join(missing)} (built-ins, or "
                        "the tool specs in scope)")
    if creator_tools is not None:
        mine = {canonical_tool_name(t) for t in creator_tools} | set(config.extra_tools)
        beyond = [t for t in tools if t not in mine and t not in missing]
        if beyond:
            problems.append(f"field 'tools': {', '.join(beyond)} beyond what {creator.name} "
                            f"may use ({', '.join(sorted(mine))}); an agent cannot give more "
                            "tools than it has ([create_agent] extra_tools allows more)")
    constraints = _merge_constraints(args.get("constraints"), creator.settings.constraints,
                                     problems)
    existing = agents.get(name) if name else None
    scope = f"project:{project.name}"
    if name and name in (goal_agent, creator.name):
        problems.append(f"field 'name': '{name}' is the agent running now; it cannot be "
                        "rewritten during the run")
    elif existing is not None and existing.scope != scope and not config.allow_shadowing:
        problems.append(f"field 'name': '{name}' is a {existing.scope} agent; a created agent "
                        "may not shadow it (choose another name, or set [create_agent] "
                        "allow_shadowing)")
    if any(not isinstance(args.get(k), str) for k in ("name", "description", "body")):
        raise _refuse(problems)
    text = render_spec(args, tools, constraints)
    size = len(text.encode("utf-8"))
    if size > config.max_spec_bytes:
        problems.append(f"field 'body': the spec is {size:,} bytes; the limit is "
                        f"{config.max_spec_bytes:,} ([create_agent] max_spec_bytes)")
    path = existing.path if existing is not None and existing.scope == scope else \
        project.agents_dir / f"{name}.md"
    try:  # the parser boot uses: the same rules, the same messages
        spec, diagnostics = parse_agent(parse_document(text.encode("utf-8"), path), scope)
    except SpecError as exc:
        spec, diagnostics = None, []
        problems.append(exc.message)
    problems += [f"field '{d.field or _FIELDS.get(d.line, 'body')}': {d.message}"
                 for d in diagnostics if d.severity == "error"]
    if problems or spec is None:
        raise _refuse(problems or ["the spec could not be read"])
    old = path.read_text(encoding="utf-8") if path.is_file() else None
    if old == text:
        return Created(spec, path, "unchanged", "")
    diff = ""
    if old is not None:
        rel = f"agents/{path.name}"
        diff = "".join(difflib.unified_diff(old.splitlines(True), text.splitlines(True),
                                            f"a/{rel}", f"b/{rel}"))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text)
    return Created(spec, path, "created" if old is None else "updated", diff)
