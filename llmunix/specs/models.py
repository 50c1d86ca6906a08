"""Agent and tool specs: markdown files parsed into strict models, in every dialect users have.

Agent dialects: Claude Code sub-agents (`name`, `tools`, `model`, ...), LLMunix 2025 (`agent_name`,
`type`, `category`, ...) and edge agents (`agent_id`, `constraints`, `reasoning_guidelines`, ...).
Tool dialects: llmunix (`command`/`python`/prompt), LLMunix 2025 (`tool_name`, `claude_tools`), and
markdown tools with a ```sh block and a ```json schema. Every problem becomes a Diagnostic with the
file, the line of the key and what to do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from llmunix.checked import Rule, from_plain, non_defaults, to_plain
from llmunix.policy.gate import Constraints
from llmunix.policy.rules import ToolRules
from llmunix.specs.claude_code import (
    CLAUDE_CODE_TOOLS,
    HONOURED_AGENT_KEYS,
    IGNORED_AGENT_KEYS,
    TOOL_ALIASES,
)

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")  # tools: OpenAI function names
AGENT_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # Claude Code allows dots

# llmunix's own built-ins join Claude Code's: memory, paging, and CreateAgent (agent specs
# written during a run).
LLMUNIX_TOOLS = frozenset({"MemorySearch", "MemoryWrite", "Recall", "CreateAgent"})
BUILTIN_TOOLS = CLAUDE_CODE_TOOLS | LLMUNIX_TOOLS
CLAUDE_CODE_KEYS = HONOURED_AGENT_KEYS | frozenset(IGNORED_AGENT_KEYS)
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
        "crystallized",  # the record of a tool crystallized from learned traces
    }
)
CRYSTALLIZED_FOLDER = "crystallized"  # projects/<p>/tools/crystallized/: learned python tools
SCHEMA_TYPES = ("string", "integer", "number", "boolean", "array", "object")
DEFAULT_TOOL_TIMEOUT_S = 60.0


@dataclass
class LlmunixSettings:
    """The `llmunix:` block of an agent: settings llmunix enforces. A plain dataclass, checked
    by `checked.validate` when the spec file is parsed."""

    __checked_config__: ClassVar[dict] = {"allow_inf_nan": False}

    max_turns: Annotated[int | None, Rule(gt=0)] = None
    budget_usd: Annotated[float | None, Rule(ge=0)] = None
    timeout_s: Annotated[float | None, Rule(gt=0)] = None
    # Model requests of this agent (openai runtime); None: llmunix.toml decides.
    max_tokens: Annotated[int | None, Rule(gt=0)] = None
    temperature: Annotated[float | None, Rule(ge=0, le=2)] = None
    request_timeout_s: Annotated[float | None, Rule(gt=0)] = None
    constraints: Constraints = field(default_factory=Constraints)
    # models the agent may run on, preferred first: with low energy the kernel state picks the
    # cheapest of them (kernel/state.py)
    models: Annotated[list[str] | None, Rule(min_length=1, max_length=16)] = None


@dataclass(frozen=True, kw_only=True)
class AgentSpec:
    """A validated agent. Built only by the reader below, which checks every field, so a plain
    dataclass suffices (boot builds thousands)."""

    name: str
    description: str
    prompt: str
    tools: tuple[str, ...] | None  # None: every tool (Claude Code's meaning of an omitted list)
    disallowed_tools: tuple[str, ...] = ()
    rules: ToolRules = ToolRules()  # permission rules in Claude Code's syntax (policy/rules.py)
    model: str | None = None
    permission_mode: str | None = None
    mcp_servers: Any = None  # (names of servers defined elsewhere, servers defined here)
    skills: tuple[str, ...] | None = None  # None: every skill in scope
    color: str | None = None
    settings: LlmunixSettings = field(default_factory=LlmunixSettings)
    dialect: Literal["claude-code", "llmunix", "edge"] = "claude-code"
    path: Path
    scope: str = "system"
    content_hash: str = ""

    @property
    def max_turns(self) -> int | None:
        return self.settings.max_turns

    @property
    def opens_network(self) -> bool:
        """Whether its constraints let its processes use the network (without building the
        settings of a spec from the cache: a run's header asks it of every agent)."""
        stored = self.__dict__.get(PLAIN_SETTINGS)
        if stored is None or "settings" in self.__dict__:
            return self.settings.constraints.network
        return bool(stored["constraints"]["network"])


# A spec rebuilt from the spec cache (specs/plain.py) holds its settings as the plain dict they
# were stored as, under this key, until `settings` is first read: a boot builds thousands of
# specs and reads the settings of none (`boot --json` shows them from the plain form).
PLAIN_SETTINGS = "_plain_settings"


class _SettingsOnFirstRead:
    """`AgentSpec.settings` when it is not in the instance yet: built from the plain form, then
    kept in the instance (which is looked up first from then on)."""

    def __get__(self, spec: AgentSpec | None, owner: type | None = None):
        if spec is None:
            return self
        value = from_plain(LlmunixSettings, spec.__dict__[PLAIN_SETTINGS])
        spec.__dict__["settings"] = value
        return value


AgentSpec.settings = _SettingsOnFirstRead()  # after @dataclass, which would take it as a default

_SHOWN_DEFAULTS: dict = {}  # the plain form of LlmunixSettings() (made on first use)


def settings_shown(agent: AgentSpec) -> dict[str, Any]:
    """`non_defaults(agent.settings)` (what `boot --json` shows), read from the plain form when
    the settings were not built: no object per agent."""
    stored = agent.__dict__.get(PLAIN_SETTINGS)
    if stored is None or "settings" in agent.__dict__:
        return non_defaults(agent.settings)
    if not _SHOWN_DEFAULTS:
        _SHOWN_DEFAULTS.update(to_plain(LlmunixSettings()))
    return _plain_non_defaults(stored, _SHOWN_DEFAULTS)


def _plain_non_defaults(value: dict, default: dict) -> dict[str, Any]:
    out = {k: v for k, v in value.items() if v != default[k]}  # one pass in C, mostly
    for name, item in out.items():
        base = default[name]
        if type(base) is dict:  # a nested settings dataclass (constraints)
            out[name] = _plain_non_defaults(item, base)
        elif type(item) is list:  # a copy: the stored value is the cache's
            out[name] = list(item)
    return out


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

    @property
    def crystallized(self) -> bool:
        """Crystallized from learned traces (`llmunix memory crystallize`)."""
        return self.path.parent.name == CRYSTALLIZED_FOLDER and self.scope.startswith("project:")


def canonical_tool_name(name: str) -> str:
    return TOOL_ALIASES.get(name, name)


def is_builtin_tool(name: str) -> bool:
    return canonical_tool_name(name) in BUILTIN_TOOLS or name.startswith("mcp__")


