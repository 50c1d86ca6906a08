"""Agent and tool specs: markdown files parsed into strict models, in every dialect users have.

Agent dialects: Claude Code sub-agents (`name`, `tools`, `model`, ...), LLMunix 2025 (`agent_name`,
`type`, `category`, ...) and edge agents (`agent_id`, `constraints`, `reasoning_guidelines`, ...).
Tool dialects: llmunix (`command`/`python`/prompt), LLMunix 2025 (`tool_name`, `claude_tools`), and
markdown tools with a ```sh block and a ```json schema. Every problem becomes a Diagnostic with the
file, the line of the key and what to do.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llmunix.errors import SpecError
from llmunix.policy.gate import Constraints
from llmunix.specs.diagnostics import Diagnostic
from llmunix.specs.document import Document, read_document

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")

# Claude Code's built-in tools, by the names users know. `Task` is the older name of `Agent`.
BUILTIN_TOOLS = frozenset(
    {
        "Agent", "Bash", "BashOutput", "Edit", "ExitPlanMode", "Glob", "Grep", "KillShell", "LS",
        "MultiEdit", "NotebookEdit", "NotebookRead", "Read", "Skill", "SlashCommand", "TodoWrite",
        "WebFetch", "WebSearch", "Write", "AskUserQuestion",
    }
)
TOOL_ALIASES = {"Task": "Agent"}

CLAUDE_CODE_KEYS = frozenset(
    {
        "name", "description", "tools", "disallowedTools", "model", "permissionMode", "maxTurns",
        "skills", "mcpServers", "hooks", "memory", "background", "color", "allowed-tools",
    }
)
LLMUNIX_DIALECT_KEYS = frozenset(
    {
        "agent_name", "agent_id", "type", "category", "version", "mode", "status", "capabilities",
        "constraints", "reasoning_guidelines", "error_handling", "component_type", "claude_tools",
        "tags", "author", "license", "metadata",
    }
)
AGENT_KEYS = CLAUDE_CODE_KEYS | LLMUNIX_DIALECT_KEYS | {"llmunix"}
TOOL_KEYS = frozenset(
    {
        "name", "description", "input", "input_schema", "parameters", "command", "python",
        "timeout", "deterministic", "tool_name", "component_type", "version", "status",
        "claude_tools", "category", "mode", "tags", "author", "license", "metadata",
    }
)
SCHEMA_TYPES = ("string", "integer", "number", "boolean", "array", "object")
DEFAULT_TOOL_TIMEOUT_S = 60.0


class LlmunixSettings(BaseModel):
    """The `llmunix:` block of an agent: settings llmunix enforces."""

    model_config = ConfigDict(extra="forbid")

    max_turns: int | None = Field(None, gt=0)
    budget_usd: float | None = Field(None, ge=0)
    timeout_s: float | None = Field(None, gt=0)
    constraints: Constraints = Constraints()


@dataclass(frozen=True, kw_only=True)
class AgentSpec:
    """A validated agent. Built only by the reader below, which checks every field, so a plain
    dataclass suffices (boot builds thousands)."""

    name: str
    description: str
    prompt: str
    tools: tuple[str, ...] | None  # None: every tool (Claude Code's meaning of an omitted list)
    disallowed_tools: tuple[str, ...] = ()
    model: str | None = None
    permission_mode: str | None = None
    mcp_servers: Any = None
    settings: LlmunixSettings = field(default_factory=LlmunixSettings)
    dialect: Literal["claude-code", "llmunix", "edge"] = "claude-code"
    path: Path
    scope: str = "system"
    content_hash: str = ""

    @property
    def max_turns(self) -> int | None:
        return self.settings.max_turns


@dataclass(frozen=True, kw_only=True)
class ToolSpec:
    """A validated tool spec (see AgentSpec)."""

    name: str
    description: str
    kind: Literal["command", "python", "prompt"]
    input_schema: dict[str, Any] = field(hash=False)
    command: tuple[str, ...] | None = None  # argv template
    shell_script: str | None = None  # legacy ```sh block: run by `sh -c`, arguments only in env
    python: str | None = None  # "module:function", or a function in `python_source`
    python_source: str | None = None
    timeout_s: float = DEFAULT_TOOL_TIMEOUT_S
    deterministic: bool = False  # same arguments and files, same output: replays compare it
    body: str = ""
    path: Path
    scope: str = "system"
    content_hash: str = ""


def canonical_tool_name(name: str) -> str:
    return TOOL_ALIASES.get(name, name)


def is_builtin_tool(name: str) -> bool:
    return canonical_tool_name(name) in BUILTIN_TOOLS or name.startswith("mcp__")


# ---------------------------------------------------------------- agents


def load_agent(path: Path, scope: str) -> tuple[AgentSpec | None, list[Diagnostic]]:
    """Parse one agent file. Returns the spec (None when broken) and every problem found."""
    try:
        doc = read_document(path)
    except SpecError as exc:
        return None, [Diagnostic.from_error(exc)]
    return _AgentReader(doc, scope).read()


class _Reader:
    def __init__(self, doc: Document, scope: str) -> None:
        self.doc = doc
        self.scope = scope
        self.meta = doc.meta
        self.problems: list[Diagnostic] = []

    def error(self, message: str, *, key: str | None = None, hint: str | None = None) -> None:
        self._add("error", message, key, hint)

    def warn(self, message: str, *, key: str | None = None, hint: str | None = None) -> None:
        self._add("warning", message, key, hint)

    def _add(self, severity, message, key, hint) -> None:
        line = self.doc.line_of(key) if key else None
        field_name = key.split(".")[0] if key else None
        self.problems.append(
            Diagnostic(severity, str(self.doc.path), message, line, field_name, hint)
        )

    def failed(self) -> bool:
        return any(p.severity == "error" for p in self.problems)

    def unknown_keys(self, known: frozenset[str]) -> None:
        for key in self.meta:
            if key not in known:
                self.warn(f"unknown key '{key}' is ignored", key=str(key))

    def name(self, keys: tuple[str, ...], fallbacks: tuple[str, ...] = ()) -> str | None:
        """The first of `keys`; else a fallback key or the file name, with a warning."""
        for key in keys + fallbacks:
            value = self.meta.get(key)
            if value is None:
                continue
            if key in fallbacks:
                self.warn(f"no 'name' key; using '{key}' ({value}) as the name", key=key)
            return self._valid_name(str(value), key)
        stem = self.doc.path.stem
        self.warn(
            f"no 'name' key; using the file name '{stem}' as the name",
            hint="add 'name: <name>' to the frontmatter",
        )
        return self._valid_name(stem, None)

    def _valid_name(self, name: str, key: str | None) -> str | None:
        if NAME_RE.match(name):
            return name
        self.error(
            f"invalid name {name!r}: use letters, digits, '-' and '_' (at most 64, no spaces)",
            key=key,
        )
        return None

    def description(self) -> str:
        value = self.meta.get("description")
        if isinstance(value, str) and value.strip():
            return " ".join(value.split())
        if value is not None and not isinstance(value, str):
            self.error("description must be text", key="description")
            return ""
        lines = (ln.strip() for ln in self.doc.body.splitlines())
        first = next((ln for ln in lines if ln and not ln.startswith("#")), "")
        self.warn(
            "no 'description'; using the first line of the body",
            hint="add 'description: <when to use it>' so orchestrators know when to delegate",
        )
        return first[:200]

    def tool_list(self, key: str) -> tuple[str, ...] | None:
        value = self.meta.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            items = [item.strip() for item in value.split(",")]
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            items = [item.strip() for item in value]
        else:
            self.error(f"'{key}' must be a list of tool names or a comma-separated string", key=key)
            return None
        # Claude Code permission rules such as `Bash(git:*)` name the tool before the parenthesis.
        names = [canonical_tool_name(item.split("(", 1)[0].strip()) for item in items if item]
        return tuple(dict.fromkeys(names))


class _AgentReader(_Reader):
    def read(self) -> tuple[AgentSpec | None, list[Diagnostic]]:
        meta = self.meta
        self.unknown_keys(AGENT_KEYS)
        name = self.name(("name", "agent_name"), ("agent_id",))
        description = self.description()
        prompt = self._prompt()
        tools_key = next((k for k in ("tools", "claude_tools", "allowed-tools") if k in meta), None)
        tools = self.tool_list(tools_key) if tools_key else None
        disallowed = self.tool_list("disallowedTools") or ()
        settings = self._settings()
        model = meta.get("model")
        if model is not None and not isinstance(model, str):
            self.error("model must be text, e.g. 'sonnet' or a full model id", key="model")
        if self.failed() or name is None or settings is None:
            return None, self.problems
        spec = AgentSpec(
            name=name,
            description=description,
            prompt=prompt,
            tools=tools,
            disallowed_tools=disallowed,
            model=model if model not in (None, "inherit") else None,
            permission_mode=meta.get("permissionMode"),
            mcp_servers=meta.get("mcpServers"),
            settings=settings,
            dialect=self._dialect(),
            path=self.doc.path,
            scope=self.scope,
            content_hash=self.doc.content_hash,
        )
        return spec, self.problems

    def _dialect(self) -> Literal["claude-code", "llmunix", "edge"]:
        if "agent_id" in self.meta or "reasoning_guidelines" in self.meta:
            return "edge"
        if "agent_name" in self.meta or "category" in self.meta or "type" in self.meta:
            return "llmunix"
        return "claude-code"

    def _prompt(self) -> str:
        body = self.doc.body.strip()
        if not self.doc.has_frontmatter:
            self.error(
                "no frontmatter: an agent file starts with a '---' line, its keys, and '---'",
                hint="see README, 'Agent specs'",
            )
        elif not body:
            self.error(
                "empty body: the text after the frontmatter is the agent's system prompt",
                hint="write the agent's instructions below the closing '---'",
            )
        # Edge agents kept part of their instructions in frontmatter; they belong in the prompt.
        sections = [body]
        for key, title in (
            ("reasoning_guidelines", "Reasoning guidelines"),
            ("error_handling", "Error handling"),
        ):
            text = self.meta.get(key)
            if isinstance(text, str) and text.strip():
                sections.append(f"## {title}\n\n{text.strip()}")
        return "\n\n".join(sections)

    def _settings(self) -> LlmunixSettings | None:
        raw = self.meta.get("llmunix", {})
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            self.error("'llmunix' must be a mapping of settings", key="llmunix")
            return None
        data = dict(raw)
        legacy = self.meta.get("constraints")
        if isinstance(legacy, dict) and "constraints" not in data:
            known = set(Constraints.model_fields)
            data["constraints"] = {k: v for k, v in legacy.items() if k in known}
        max_turns = self.meta.get("maxTurns")
        if max_turns is not None and "max_turns" not in data:
            data["max_turns"] = max_turns
        try:
            return LlmunixSettings.model_validate(data)
        except ValidationError as exc:
            for err in exc.errors():
                loc = [str(p) for p in err["loc"]]
                key = f"llmunix.{loc[0]}" if loc else "llmunix"
                if not self.doc.line_of(key):
                    key = "maxTurns" if loc == ["max_turns"] and "maxTurns" in self.meta else key
                where = ".".join(["llmunix", *loc])
                msg = err["msg"]
                if err["type"] == "extra_forbidden":
                    msg = f"unknown setting '{where}'"
                    model = LlmunixSettings if len(loc) == 1 else Constraints
                    allowed = model.model_fields
                    hint = "valid: " + ", ".join(allowed)
                else:
                    msg = f"{where}: {msg}"
                    hint = None
                self.error(msg, key=key if self.doc.line_of(key) else "llmunix", hint=hint)
            return None


# ---------------------------------------------------------------- tools

_FENCE_RE = re.compile(r"^```[ \t]*(\w+)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
_PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def load_tool(path: Path, scope: str) -> tuple[ToolSpec | None, list[Diagnostic]]:
    """Parse one tool file. Returns the spec (None when broken) and every problem found."""
    try:
        doc = read_document(path)
    except SpecError as exc:
        return None, [Diagnostic.from_error(exc)]
    return _ToolReader(doc, scope).read()


def fenced_blocks(body: str) -> list[tuple[str, str, int]]:
    """(language, code, line offset of the code within the body) for each fenced block."""
    return [
        (m.group(1).lower(), m.group(2), body.count("\n", 0, m.start(2)))
        for m in _FENCE_RE.finditer(body)
    ]


class _ToolReader(_Reader):
    def read(self) -> tuple[ToolSpec | None, list[Diagnostic]]:
        meta = self.meta
        if not self.doc.has_frontmatter:
            self.error("no frontmatter: a tool file starts with '---', its keys, and '---'")
            return None, self.problems
        self.unknown_keys(TOOL_KEYS)
        name = self.name(("name", "tool_name"))
        description = self.description()
        blocks = fenced_blocks(self.doc.body)
        schema = self._schema(blocks)
        timeout = self._timeout()
        fields: dict[str, Any] = {}
        if "command" in meta and "python" in meta:
            self.error("a tool has either 'command' or 'python', not both", key="python")
        elif "command" in meta:
            fields = {"kind": "command", "command": self._command(schema)}
        elif "python" in meta:
            fields = {"kind": "python", **self._python(blocks)}
        elif sh := next((c for lang, c, _ in blocks if lang in ("sh", "bash", "shell")), None):
            fields = {"kind": "command", "shell_script": sh}
        else:
            fields = {"kind": "prompt"}
            if not self.doc.body.strip():
                self.error(
                    "empty body: a prompt tool's body holds the instructions the model follows",
                    hint="or add 'command:' or 'python:' to make it an executable tool",
                )
        if self.failed() or name is None or schema is None:
            return None, self.problems
        spec = ToolSpec(
            name=name,
            description=description,
            input_schema=schema,
            timeout_s=timeout,
            deterministic=self._deterministic(),
            body=self.doc.body.strip(),
            path=self.doc.path,
            scope=self.scope,
            content_hash=self.doc.content_hash,
            **fields,
        )
        return spec, self.problems

    def _deterministic(self) -> bool:
        value = self.meta.get("deterministic", False)
        if not isinstance(value, bool):
            self.error("deterministic must be true or false", key="deterministic")
            return False
        return value

    def _timeout(self) -> float:
        value = self.meta.get("timeout", DEFAULT_TOOL_TIMEOUT_S)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            self.error("timeout must be a positive number of seconds", key="timeout")
            return DEFAULT_TOOL_TIMEOUT_S
        return float(value)

    def _schema(self, blocks: list[tuple[str, str, int]]) -> dict[str, Any] | None:
        for key in ("input_schema", "parameters"):
            value = self.meta.get(key)
            if isinstance(value, dict) and ("properties" in value or value.get("type") == "object"):
                return self._json_schema(value, key)
        key = next((k for k in ("input", "parameters") if k in self.meta), None)
        if key is not None:
            return self._short_schema(self.meta[key], key)
        for lang, code, offset in blocks:
            if lang == "json":
                try:
                    value = json.loads(code)
                except json.JSONDecodeError as exc:
                    self.problems.append(
                        Diagnostic(
                            "error",
                            str(self.doc.path),
                            f"the ```json input schema is not valid JSON: {exc.msg}",
                            self.doc.body_line + offset + exc.lineno - 1,
                        )
                    )
                    return None
                if isinstance(value, dict):
                    return self._json_schema(value, None)
        return {"type": "object", "properties": {}}

    def _json_schema(self, value: dict[str, Any], key: str | None) -> dict[str, Any] | None:
        if value.get("type", "object") != "object" or not isinstance(
            value.get("properties", {}), dict
        ):
            self.error("the input schema must be a JSON Schema of type 'object'", key=key)
            return None
        return {"type": "object", **value}

    def _short_schema(self, value: Any, key: str) -> dict[str, Any] | None:
        if value is None:
            return {"type": "object", "properties": {}}
        if not isinstance(value, dict):
            self.error(
                f"'{key}' must map each argument to a type, e.g. 'path: string'",
                key=key,
            )
            return None
        properties: dict[str, Any] = {}
        required: list[str] = []
        for arg, decl in value.items():
            arg = str(arg)
            if isinstance(decl, str):
                decl = {"type": decl}
            if not isinstance(decl, dict):
                self.error(
                    f"argument '{arg}' must be a type name or a mapping", key=f"{key}.{arg}"
                )
                continue
            prop = dict(decl)
            is_required = bool(prop.pop("required", "default" not in prop))
            if prop.get("type") not in SCHEMA_TYPES:
                self.error(
                    f"argument '{arg}' has type {prop.get('type')!r}",
                    key=f"{key}.{arg}",
                    hint="use one of: " + ", ".join(SCHEMA_TYPES),
                )
                continue
            properties[arg] = prop
            if is_required:
                required.append(arg)
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        schema["additionalProperties"] = False
        return schema

    def _command(self, schema: dict[str, Any] | None) -> tuple[str, ...] | None:
        value = self.meta["command"]
        if isinstance(value, str):
            try:
                argv = shlex.split(value)
            except ValueError as exc:
                self.error(f"command cannot be split into arguments: {exc}", key="command")
                return None
        elif isinstance(value, list) and value and all(
            isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value
        ):
            argv = [str(v) for v in value]
        else:
            self.error("command must be a non-empty list of arguments or a string", key="command")
            return None
        if not argv:
            self.error("command is empty", key="command")
            return None
        known = set((schema or {}).get("properties", {}))
        for item in argv:
            for placeholder in _PLACEHOLDER_RE.findall(item):
                if schema is not None and placeholder not in known:
                    self.error(
                        f"command uses {{{placeholder}}} but the input defines no such argument",
                        key="command",
                        hint="declare it under 'input:'",
                    )
        return tuple(argv)

    def _python(self, blocks: list[tuple[str, str, int]]) -> dict[str, Any]:
        target = self.meta["python"]
        if not isinstance(target, str) or not target.strip():
            self.error("python must be 'module:function' or a function name", key="python")
            return {}
        target = target.strip()
        if ":" in target:
            module, _, function = target.partition(":")
            valid = all(p.isidentifier() for p in module.split(".")) and function.isidentifier()
            if not valid:
                self.error(f"python {target!r} is not 'package.module:function'", key="python")
            return {"python": target}
        code_blocks = [(code, offset) for lang, code, offset in blocks if lang in ("python", "py")]
        if not code_blocks:
            self.error(
                f"python: {target} names a function but the body has no ```python block",
                key="python",
            )
            return {}
        source, offset = code_blocks[0]
        try:
            tree = ast.parse(source)
        except SyntaxError as exc:
            self.problems.append(
                Diagnostic(
                    "error",
                    str(self.doc.path),
                    f"python block has a syntax error: {exc.msg}",
                    self.doc.body_line + offset + (exc.lineno or 1) - 1,
                    "python",
                )
            )
            return {}
        defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        if target not in defined:
            self.error(
                f"the ```python block defines no function '{target}'",
                key="python",
                hint=f"defined: {', '.join(sorted(defined)) or 'none'}",
            )
        return {"python": target, "python_source": source}
