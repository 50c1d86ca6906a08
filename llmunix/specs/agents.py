"""Agent files: Claude Code's frontmatter keys, the LLMunix dialects, and llmunix's own block."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from llmunix.errors import SpecError
from llmunix.policy.gate import Constraints
from llmunix.specs.diagnostics import Diagnostic
from llmunix.specs.document import read_document
from llmunix.specs.models import AGENT_KEYS, AgentSpec, LlmunixSettings
from llmunix.specs.reader import _Reader

# ---------------------------------------------------------------- agents


def load_agent(path: Path, scope: str) -> tuple[AgentSpec | None, list[Diagnostic]]:
    """Parse one agent file. Returns the spec (None when broken) and every problem found."""
    try:
        doc = read_document(path)
    except SpecError as exc:
        return None, [Diagnostic.from_error(exc)]
    return _AgentReader(doc, scope).read()



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
