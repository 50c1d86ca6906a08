"""Agent files: Claude Code's frontmatter keys, the LLMunix dialects, and llmunix's own block."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from llmunix.checked import Invalid, field_names, validate
from llmunix.errors import SpecError
from llmunix.policy.gate import Constraints
from llmunix.policy.rules import ToolRules, split_entries
from llmunix.specs.claude_code import (
    CLAUDE_CODE_TOOLS,
    IGNORED_AGENT_KEYS,
    IMPLEMENTED_TOOLS,
    PERMISSION_MODES,
)
from llmunix.specs.diagnostics import Diagnostic
from llmunix.specs.dialects import with_bold_fields
from llmunix.specs.document import Document, read_document
from llmunix.specs.keytypes import AGENT_TYPES
from llmunix.specs.mcp_servers import parse_agent_servers
from llmunix.specs.models import (
    AGENT_KEYS,
    AGENT_NAME_RE,
    AgentSpec,
    LlmunixSettings,
    canonical_tool_name,
)
from llmunix.specs.reader import _Reader

# ---------------------------------------------------------------- agents


def load_agent(path: Path, scope: str) -> tuple[AgentSpec | None, list[Diagnostic]]:
    """Parse one agent file. Returns the spec (None when broken) and every problem found."""
    try:
        doc = read_document(path)
    except SpecError as exc:
        return None, [Diagnostic.from_error(exc)]
    fields = with_bold_fields(doc)
    if fields is not None and ("agent_name" in fields.meta or "name" in fields.meta):
        return _AgentReader(fields, scope, bold=True).read()
    return _AgentReader(doc, scope).read()


def parse_agent(doc: Document, scope: str) -> tuple[AgentSpec | None, list[Diagnostic]]:
    """An agent from a document already read (CreateAgent checks a spec before writing it)."""
    return _AgentReader(doc, scope).read()


def _bare_entries(value) -> list[str]:
    """The entries of a tool list written without a rule."""
    if isinstance(value, str):
        items = split_entries(value)
    elif isinstance(value, list):
        items = [str(v).strip() for v in value]
    else:
        return []
    return [item for item in items if "(" not in item]


class _AgentReader(_Reader):
    name_re = AGENT_NAME_RE
    name_chars = "letters, digits, '-', '_' and '.'"

    def __init__(self, doc, scope: str, *, bold: bool = False) -> None:
        super().__init__(doc, scope)
        self.bold = bold  # the LLMunix dialect of bold fields, no frontmatter

    def read(self) -> tuple[AgentSpec | None, list[Diagnostic]]:
        meta = self.meta
        self.unknown_keys(AGENT_KEYS)
        self._ignored_keys()
        if not self.check_types(AGENT_TYPES):
            return None, self.problems
        name = self.name(("name", "agent_name"), ("agent_id",))
        description = self.description()
        prompt = self._prompt()
        tools_key = next((k for k in ("tools", "claude_tools", "allowed-tools") if k in meta), None)
        tools = self.tool_list(tools_key) if tools_key else None
        disallowed = self.tool_list("disallowedTools") or ()
        if tools_key and tools:
            self._unimplemented(tools, tools_key)
        permission_mode = self._permission_mode()
        settings = self._settings(read_only=permission_mode == "plan")
        model = meta.get("model")
        if model is not None and not isinstance(model, str):
            self.error("model must be text, e.g. 'sonnet' or a full model id", key="model")
        skills = self._skills()
        servers = parse_agent_servers(meta.get("mcpServers"), source=str(self.doc.path),
                                      line=self.doc.line_of("mcpServers"),
                                      problems=self.problems)
        color = meta.get("color")
        if self.failed() or name is None or settings is None:
            return None, self.problems
        if meta.get("disabled") is True:
            self.warn("disabled: true: the agent is not loaded", key="disabled")
            return None, self.problems
        # A tool listed by a rule only is held to its rules; one also listed bare is whole.
        bare = {canonical_tool_name(t) for t in _bare_entries(meta.get(tools_key))}
        allow = tuple(r for r in self.rules.get(tools_key or "", ())
                      if canonical_tool_name(r.tool) not in bare)
        deny = self.rules.get("disallowedTools", ())
        # a tool named in disallowedTools by a rule only is refused where the rule matches
        whole = {canonical_tool_name(t) for t in _bare_entries(meta.get("disallowedTools"))}
        spec = AgentSpec(
            name=name,
            description=description,
            prompt=prompt,
            tools=tools,
            disallowed_tools=tuple(t for t in disallowed if t in whole),
            rules=ToolRules(allow, deny),
            model=model if model not in (None, "inherit") else None,
            permission_mode=permission_mode,
            mcp_servers=servers if servers != ((), ()) else None,
            skills=skills,
            color=str(color) if isinstance(color, (str, int)) else None,
            settings=settings,
            dialect=self._dialect(),
            path=self.doc.path,
            scope=self.scope,
            content_hash=self.doc.content_hash,
        )
        return spec, self.problems

    def _ignored_keys(self) -> None:
        for key, why in IGNORED_AGENT_KEYS.items():
            if key in self.meta and key != "disabled":
                self.warn(f"'{key}' is a Claude Code setting llmunix does not apply: {why}",
                          key=key)

    def _unimplemented(self, tools: tuple[str, ...], key: str) -> None:
        missing = [t for t in tools if t in CLAUDE_CODE_TOOLS and t not in IMPLEMENTED_TOOLS]
        if missing:
            self.warn(
                f"Claude Code tool(s) llmunix does not implement: {', '.join(missing)}; the "
                "agent loads, and a call of one is refused with the reason", key=key)

    def _permission_mode(self) -> str | None:
        mode = self.meta.get("permissionMode")
        if mode is None:
            return None
        if mode not in PERMISSION_MODES:
            self.warn(f"permissionMode {mode!r} is not a Claude Code mode and is ignored",
                      key="permissionMode", hint="one of: " + ", ".join(PERMISSION_MODES))
            return None
        if mode == "bypassPermissions":
            self.warn("permissionMode bypassPermissions: llmunix's policy still gates every "
                      "call (nothing to ask a user about: calls are allowed or refused)",
                      key="permissionMode")
        return str(mode)

    def _skills(self) -> tuple[str, ...] | None:
        value = self.meta.get("skills")
        if value is None:
            return None
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",")]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.error("'skills' must be a list of skill names", key="skills")
            return None
        return tuple(dict.fromkeys(v.strip() for v in value if v.strip()))

    def _dialect(self) -> Literal["claude-code", "llmunix", "edge"]:
        if "agent_id" in self.meta or "reasoning_guidelines" in self.meta:
            return "edge"
        if self.bold or "agent_name" in self.meta or "category" in self.meta or \
                "type" in self.meta:
            return "llmunix"
        return "claude-code"

    def _prompt(self) -> str:
        body = self.doc.body.strip()
        if not self.doc.has_frontmatter and not self.bold:
            self.error(
                "no frontmatter: an agent file starts with a '---' line, its keys, and '---'",
                hint="or, in the LLMunix dialect, a '**Agent Name**: <name>' line; see README, "
                     "'Agent specs'",
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

    def _settings(self, *, read_only: bool = False) -> LlmunixSettings | None:
        raw = self.meta.get("llmunix", {})
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            self.error("'llmunix' must be a mapping of settings", key="llmunix")
            return None
        data = dict(raw)
        legacy = self.meta.get("constraints")
        if isinstance(legacy, dict) and "constraints" not in data:
            known = set(field_names(Constraints))
            data["constraints"] = {k: v for k, v in legacy.items() if k in known}
        max_turns = self.meta.get("maxTurns")
        if max_turns is not None and "max_turns" not in data:
            data["max_turns"] = max_turns
        if read_only:  # permissionMode: plan — Claude Code's plan mode changes no files
            cons = data.get("constraints")
            cons = dict(cons) if isinstance(cons, dict) else {}
            cons.setdefault("read_only", True)
            data["constraints"] = cons
        try:
            return validate(LlmunixSettings, data, strict=True)
        except Invalid as exc:
            for err in exc.errors:
                loc = [str(p) for p in err["loc"]]
                key = f"llmunix.{loc[0]}" if loc else "llmunix"
                if not self.doc.line_of(key):
                    key = "maxTurns" if loc == ["max_turns"] and "maxTurns" in self.meta else key
                where = ".".join(["llmunix", *loc])
                msg = err["msg"]
                if err["type"] == "extra_forbidden":
                    msg = f"unknown setting '{where}'"
                    model = LlmunixSettings if len(loc) == 1 else Constraints
                    allowed = field_names(model)
                    hint = "valid: " + ", ".join(allowed)
                else:
                    msg = f"{where}: {msg}"
                    hint = None
                self.error(msg, key=key if self.doc.line_of(key) else "llmunix", hint=hint)
            return None
