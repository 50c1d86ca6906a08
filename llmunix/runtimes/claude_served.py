"""Tools llmunix serves the Claude runtime itself, as in-process MCP tools: `CreateAgent`, and
`Agent` for the agents created during the run.

The Claude Agent SDK fixes a session's sub-agents when it starts (an Agent call naming another
type reaches the PreToolUse hook, then the CLI answers "Agent type 'x' not found"), so an agent
created mid-run is run by llmunix: `mcp__llmunix__Agent` starts a nested `query()` - a CLI
process of its own with the agent's prompt, tools and tool specs, gated by the same policy
under the agent's name - and records it in the trace as any delegation (sub-agent start, its
steps, end). The cost is that CLI's start, ~0.3 s more per delegation than a native one.
"""

from __future__ import annotations

import json
from typing import Any

from llmunix.kernel.session import MCP_PREFIX, RunSession
from llmunix.specs.models import canonical_tool_name
from llmunix.tools.create_agent import SCHEMA as CREATE_SCHEMA
from llmunix.tools.create_agent import TOOL as CREATE

DELEGATE = "Agent"  # served as mcp__llmunix__Agent, gated as the Agent tool
DELEGATE_SCHEMA = {
    "type": "object",
    "properties": {
        "subagent_type": {"type": "string", "description": "The created agent's name."},
        "prompt": {"type": "string", "description": "The task, with all the context it needs."},
        "description": {"type": "string", "description": "A short summary of the task."},
    },
    "required": ["subagent_type", "prompt"],
}
DELEGATE_DESCRIPTION = (
    "Delegate a task to an agent created during this run with CreateAgent (the Agent tool "
    "knows only the agents that existed when the run started). It works on its own and "
    "returns its final answer, so give it everything it needs in `prompt`."
)
SERVED_DELEGATE = MCP_PREFIX + DELEGATE
HOW_TO_DELEGATE = f"Delegate to it with {MCP_PREFIX}{DELEGATE} (subagent_type: its name)."


def served_names(agent, *, main: bool) -> list[str]:
    """The llmunix-served tools `agent` gets, as the CLI names them: CreateAgent when it lists
    it, and the delegation to created agents for the goal's agent when it may delegate too."""
    allowed = {canonical_tool_name(t) for t in agent.tools or ()}
    if CREATE not in allowed:
        return []
    names = [MCP_PREFIX + CREATE]
    if main and "Agent" in allowed and "Agent" not in agent.disallowed_tools:
        names.append(MCP_PREFIX + DELEGATE)
    return names


class Callers:
    """Who made each llmunix-served call: the hook sees the agent and the call id, the MCP
    handler only the arguments."""

    def __init__(self) -> None:
        self._calls: dict[tuple[str, str], list[tuple[str, str]]] = {}

    @staticmethod
    def _key(tool: str, args: Any) -> tuple[str, str]:
        return tool.removeprefix(MCP_PREFIX), json.dumps(args, sort_keys=True, default=str)

    def note(self, tool: str, args: Any, agent: str, call_id: str) -> None:
        if tool.startswith(MCP_PREFIX):
            self._calls.setdefault(self._key(tool, args), []).append((agent, call_id))

    def take(self, tool: str, args: Any, default_agent: str) -> tuple[str, str]:
        queue = self._calls.get(self._key(tool, args))
        return queue.pop(0) if queue else (default_agent, "")


def mcp_tools(runtime: Any, session: RunSession, sdk, names: list[str]) -> list:
    tools = []
    if MCP_PREFIX + CREATE in names:
        async def create(args: dict) -> dict:
            agent, call_id = runtime.callers.take(CREATE, args, session.agent.name)
            result = session.create_agent(agent, args, how_to_delegate=HOW_TO_DELEGATE)
            return {"content": [{"type": "text", "text": result.output}],
                    "is_error": result.is_error}

        schema = {k: v for k, v in CREATE_SCHEMA.items() if k != "description"}
        tools.append(sdk.tool(CREATE, CREATE_SCHEMA["description"], schema)(create))
    if MCP_PREFIX + DELEGATE in names:
        async def delegate(args: dict) -> dict:
            parent, call_id = runtime.callers.take(DELEGATE, args, session.agent.name)
            text, ok = await run_created(runtime, session, sdk, parent, call_id, args)
            return {"content": [{"type": "text", "text": text}], "is_error": not ok}

        tools.append(sdk.tool(DELEGATE, DELEGATE_DESCRIPTION, DELEGATE_SCHEMA)(delegate))
    return tools


async def run_created(runtime: Any, session: RunSession, sdk, parent: str,
                      call_id: str, args: dict) -> tuple[str, bool]:
    """Run a sub-agent in a nested query of its own; recorded as a delegation."""
    name, prompt = args.get("subagent_type"), args.get("prompt")
    sub = session.delegation_spec(name) if isinstance(name, str) else None
    if sub is None or name == session.agent.name:
        known = ", ".join(sorted(session.subagents()))
        return f"Error: no agent named {name!r} to delegate to (agents: {known})", False
    if not isinstance(prompt, str) or not prompt.strip():
        return "Error: `prompt` must be the task, as text", False
    session.subagent_started(name, parent, call_id, prompt)
    try:
        text = await runtime.run_nested(session, sub, prompt, sdk)
    except BaseException as exc:
        detail = getattr(exc, "message", "") or type(exc).__name__
        session.subagent_finished(name, parent, call_id, f"(the run ended: {detail})")
        raise
    session.subagent_finished(name, parent, call_id, text)
    return text, True
