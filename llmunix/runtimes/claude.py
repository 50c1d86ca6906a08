"""The Claude runtime: the Claude Agent SDK and its bundled Claude Code CLI.

The CLI runs the model loop and its own built-in tools; llmunix stays in charge through a
PreToolUse hook (every call, sub-agents included, passes llmunix's policy), serves tool specs as
in-process MCP tools, and reads the message stream to record every step in the trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from llmunix.errors import LimitReached, LlmunixError, RuntimeUnavailable
from llmunix.kernel.session import MCP_PREFIX, RunSession
from llmunix.kernel.skills import SKILL_TOOL
from llmunix.memory.agent_tools import NAMES
from llmunix.memory.agent_tools import definition as memory_definition
from llmunix.policy.gate import Decision
from llmunix.runtimes import claude_mcp, claude_preflight
from llmunix.runtimes import claude_served as served
from llmunix.runtimes.base import Runtime
from llmunix.specs.models import canonical_tool_name

MEMORY_TOOLS = frozenset(NAMES)
# The Claude Code built-ins llmunix lets agents use. Tool specs join them as mcp__llmunix__*.
OFFERED = frozenset(
    {"Read", "Write", "Edit", "Glob", "Grep", "WebFetch", "WebSearch", "TodoWrite",
     "NotebookEdit", "Agent"}
)
# Built-ins that start processes: the CLI's own are never offered (they would run unconfined);
# llmunix's sandboxed versions take their place as mcp__llmunix__<name>.
SANDBOXED = frozenset({"Bash"})
CLI_PROCESS_TOOLS = ("Bash", "BashOutput", "KillShell", "KillBash", "Monitor")
CREDENTIAL_ENV = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_USE_VERTEX",
)


def _sdk():
    try:
        import claude_agent_sdk
    except ImportError as exc:  # pragma: no cover - a hard dependency
        raise RuntimeUnavailable(
            "the Claude Agent SDK is not installed", hint="pip install claude-agent-sdk"
        ) from exc
    return claude_agent_sdk


def has_credentials(environ: dict[str, str] | None = None) -> bool:
    return claude_preflight.has_credentials(environ)


def _block_text(content: Any) -> str:
    """A tool result's content (a string or a list of content blocks) as text."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for block in content:
        if isinstance(block, dict):
            parts.append(block.get("text") or json.dumps(block))
        else:
            parts.append(str(block))
    return "\n".join(parts)


class ClaudeRuntime(Runtime):
    name = "claude"

    def __init__(self, model: str = "") -> None:
        self._model = model
        self._cli_env: dict[str, str] = {}
        self._mcp_servers: dict = {}  # the run's MCP servers, for the CLI's report of them

    @property
    def model(self) -> str:
        return self._model

    def preflight(self) -> None:
        """A credential the CLI accepts and an endpoint that answers, in seconds: the CLI
        itself would end in "Not logged in", or retry an unreachable API for minutes."""
        claude_preflight.check()

    # ------------------------------------------------------------ options

    def _tools_for(self, session: RunSession, agent, *, main: bool = False) -> list[str]:
        names = session.builtin_tools_for(agent, OFFERED)
        if not main:  # sub-agents do not delegate further
            names = [n for n in names if canonical_tool_name(n) != "Agent"]
        names += [MCP_PREFIX + t.name for t in session.tool_specs_for(agent)]
        # llmunix's own memory tools, served in-process like tool specs
        names += [MCP_PREFIX + n for n in session.builtin_tools_for(agent, MEMORY_TOOLS)]
        names += [MCP_PREFIX + n for n in session.builtin_tools_for(agent, SANDBOXED)]
        names += claude_mcp.tool_names(session, agent)  # the agent's MCP servers' tools
        if session.skills.for_agent(agent):  # llmunix's Skill tool, not the CLI's own
            names.append(MCP_PREFIX + SKILL_TOOL)
        return names + served.served_names(agent, main=main)

    def _options(self, session: RunSession, sdk) -> Any:
        agent = session.agent
        tools = self._tools_for(session, agent, main=True)
        can_delegate = "Agent" in tools
        agents = {}
        if can_delegate:
            for name, sub in session.subagents().items():
                agents[name] = sdk.AgentDefinition(
                    description=sub.description,
                    prompt=session.system_prompt(sub),
                    tools=self._tools_for(session, sub),
                    model=sub.model,
                )
        used_specs = {t.name: t for t in session.tool_specs_for(agent)}
        for sub in agents:
            used_specs.update({t.name: t for t in session.tool_specs_for(session.subagents()[sub])})
        names = set(tools).union(*(d.tools or () for d in agents.values()))
        mcp = self._llmunix_server(session, used_specs.values(), sorted(names), sdk)
        self._mcp_servers = claude_mcp.servers(
            session, [agent, *(session.subagents()[n] for n in agents)])
        mcp.update(claude_mcp.sdk_config(session, self._mcp_servers))
        hook = sdk.HookMatcher(matcher=None, hooks=[self._gate(session)])
        return sdk.ClaudeAgentOptions(
            system_prompt=session.system_prompt(agent),
            tools=tools,
            allowed_tools=tools,
            disallowed_tools=list(CLI_PROCESS_TOOLS),
            agents=agents or None,
            mcp_servers=mcp,
            hooks={"PreToolUse": [hook]},
            permission_mode="acceptEdits",  # the CLI refuses bypassPermissions as root
            setting_sources=[],  # nothing from the user's ~/.claude leaks into a run
            cwd=str(session.workspace_dir),
            model=self._model or None,
            # The CLI stops before a request past the limit (the session alone would only see
            # the extra response once it has started).
            max_turns=session.limits.max_turns,
            # Sub-agents otherwise run in the background: the orchestrator would be told
            # "launched" and go on without the result it is meant to check.
            env={"CLAUDE_CODE_DISABLE_BACKGROUND_TASKS": "1", **self._cli_env},
            # Stream events carry each response's final output tokens, which the budget needs
            # while the run goes (an AssistantMessage only has the count at the stream's start).
            include_partial_messages=True,
        )

    def _llmunix_server(self, session: RunSession, specs, names: list[str], sdk) -> dict:
        """The in-process MCP server: tool specs, and the tools llmunix serves itself."""
        tools = [self._mcp_tool(session, spec, sdk) for spec in specs]
        named = {n.removeprefix(MCP_PREFIX) for n in names}
        tools += [self._memory_tool(session, name, sdk) for name in sorted(named & MEMORY_TOOLS)]
        tools += [self._sandboxed_tool(session, name, sdk) for name in sorted(named & SANDBOXED)]
        tools += served.mcp_tools(self, session, sdk, names)
        if SKILL_TOOL in named:
            tools.append(self._skill_tool(session, sdk))
        return {"llmunix": sdk.create_sdk_mcp_server("llmunix", "1.0", tools=tools)} \
            if tools else {}

    def _gate(self, session: RunSession, agent_name: str | None = None):
        native = {n for n in session.subagents()}  # the sub-agents the CLI was given

        async def pre_tool_use(input_data: dict, tool_use_id: str | None, context: Any) -> dict:
            agent = agent_name or input_data.get("agent_type") or session.agent.name
            tool, tool_input = input_data.get("tool_name", ""), input_data.get("tool_input", {})
            decision = session.check(agent, tool, tool_input)
            target = tool_input.get("subagent_type") if isinstance(tool_input, dict) else None
            if decision.allowed and tool in ("Agent", "Task") and target not in native \
                    and target in session.subagents():
                decision = Decision(False, f"{tool} refused: {target} was created during this "
                                           f"run; {served.HOW_TO_DELEGATE}")
            self.callers.note(tool, tool_input, agent, tool_use_id or "")
            self._callers[tool] = agent  # whose sandbox settings a tool handler uses
            self._decisions[tool_use_id or ""] = decision
            self._callers[tool] = agent  # whose sandbox settings a tool handler uses
            out = {"hookEventName": "PreToolUse",
                   "permissionDecision": "allow" if decision.allowed else "deny"}
            if not decision.allowed:
                out["permissionDecisionReason"] = decision.reason
            elif tool not in ("Agent", "Task"):  # a delegation shows as its sub-agent's start
                session.tool_started(tool_use_id or "", agent, tool, input_data.get("tool_input"))
            return {"hookSpecificOutput": out}

        return pre_tool_use

    def _mcp_tool(self, session: RunSession, spec, sdk):
        async def handler(args: dict) -> dict:
            if spec.kind == "prompt":
                text = await self._prompt_tool(session, spec, args, sdk)
                return {"content": [{"type": "text", "text": text}]}
            result = await asyncio.to_thread(session.run_tool, spec.name, args)
            return {"content": [{"type": "text", "text": result.output or "(no output)"}],
                    "is_error": result.is_error}

        return sdk.tool(spec.name, spec.description, spec.input_schema)(handler)

    def _memory_tool(self, session: RunSession, name: str, sdk):
        async def handler(args: dict) -> dict:
            result = await asyncio.to_thread(session.run_tool, name, args)
            return {"content": [{"type": "text", "text": result.output or "(no output)"}],
                    "is_error": result.is_error}

        description, schema = memory_definition(name)
        return sdk.tool(name, description, schema)(handler)

    def _sandboxed_tool(self, session: RunSession, name: str, sdk):
        """llmunix's own `name` (Bash), run in the sandbox, in place of the CLI's."""
        from llmunix.tools.builtin import BUILTIN_SCHEMAS

        schema = dict(BUILTIN_SCHEMAS[name])
        description = schema.pop("description")
        return sdk.tool(name, description, schema)(self._session_handler(session, name))

    def _skill_tool(self, session: RunSession, sdk):
        """llmunix's Skill tool (kernel/skills.py), the same as on the openai runtime."""
        from llmunix.kernel.skills import DESCRIPTION, SCHEMA

        return sdk.tool(SKILL_TOOL, DESCRIPTION, SCHEMA)(
            self._session_handler(session, SKILL_TOOL))

    def _session_handler(self, session: RunSession, name: str):
        """An in-process MCP tool handler that runs `name` through the session for the agent
        that called it."""
        async def handler(args: dict) -> dict:
            agent = self._callers.get(MCP_PREFIX + name)
            result = await asyncio.to_thread(session.run_tool, name, args, agent)
            return {"content": [{"type": "text", "text": result.output or "(no output)"}],
                    "is_error": result.is_error}

        return handler

    async def _prompt_tool(self, session: RunSession, spec, args: dict, sdk) -> str:
        """A prompt tool is a one-shot model call whose system prompt is the tool's body."""
        options = sdk.ClaudeAgentOptions(
            system_prompt=spec.body, tools=[], setting_sources=[], max_turns=1,
            cwd=str(session.workspace_dir), model=self._model or None, env=dict(self._cli_env),
        )
        text = ""
        async for message in sdk.query(prompt=json.dumps(args), options=options):
            if isinstance(message, sdk.AssistantMessage):
                self._count_turn(session, message)
            elif isinstance(message, sdk.ResultMessage):
                text = message.result or text
        return text

    # ------------------------------------------------------------ the run

    async def run(self, session: RunSession) -> str:
        sdk = _sdk()
        self._decisions: dict[str, Any] = {}
        self._callers: dict[str, str] = {}
        self._seen_messages: set[str] = set()
        self.callers = served.Callers()
        with cli_config_dir() as config_dir:
            self._cli_env = {"CLAUDE_CONFIG_DIR": str(config_dir)}
            return await self._run(session, sdk)

    async def _run(self, session: RunSession, sdk) -> str:
        options = self._options(session, sdk)
        stream = _Stream(self, session, sdk)
        try:
            async with sdk.ClaudeSDKClient(options=options) as client:
                try:
                    await client.query(session.goal_message)
                    async for message in client.receive_response():
                        stream.handle(message)
                    # The result is in; llmunix keeps its own trace, so the CLI need not spend
                    # a few hundred ms saving its session file on the way out.
                    _stop_cli(client)
                except asyncio.CancelledError:
                    # Ctrl-C: the CLI and whatever it runs (its Bash commands) end at once, and
                    # the calls that were running go into the trace as interrupted.
                    _stop_cli(client, tree=True)
                    stream.interrupted()
                    raise
                except BaseException:
                    # A limit or an error: stop the CLI now. Left alone it would wait for its
                    # in-flight model request before noticing stdin closed.
                    _stop_cli(client)
                    raise
        except sdk.CLINotFoundError as exc:
            raise RuntimeUnavailable(f"the Claude Code CLI was not found: {exc}") from exc
        except sdk.ProcessError as exc:
            raise LlmunixError(f"the Claude Code CLI failed: {exc}") from exc
        return stream.result

    async def run_nested(self, session: RunSession, sub, prompt: str, sdk) -> str:
        """Run `sub` on `prompt` in a query of its own (an agent the CLI was not given at the
        start): its prompt, tools and tool specs, gated under its name, recorded in the trace."""
        tools = self._tools_for(session, sub)
        hook = sdk.HookMatcher(matcher=None, hooks=[self._gate(session, sub.name)])
        options = sdk.ClaudeAgentOptions(
            system_prompt=session.system_prompt(sub), tools=tools, allowed_tools=tools,
            mcp_servers=self._llmunix_server(session, session.tool_specs_for(sub), tools, sdk),
            hooks={"PreToolUse": [hook]}, permission_mode="acceptEdits", setting_sources=[],
            cwd=str(session.workspace_dir), model=sub.model or self._model or None,
            max_turns=sub.settings.max_turns,
            env={"CLAUDE_CODE_DISABLE_BACKGROUND_TASKS": "1", **self._cli_env},
        )
        stream = _Stream(self, session, sdk, agent=sub.name, nested=True)
        async for message in sdk.query(prompt=prompt, options=options):
            stream.handle(message)
        return stream.result

    def _count_turn(self, session: RunSession, message: Any) -> None:
        # The CLI emits one AssistantMessage per content block; usage belongs to the response,
        # which the main agent's stream events may already have counted.
        key = message.message_id or str(id(message))
        if key in self._seen_messages:
            return
        self._seen_messages.add(key)
        if message.model and not session.model:
            session.model = message.model
        usage = message.usage or {}
        session.model_turn(
            input_tokens=int(usage.get("input_tokens") or 0),
            output_tokens=int(usage.get("output_tokens") or 0),
            cache_read_tokens=int(usage.get("cache_read_input_tokens") or 0),
        )


class _Stream:
    """Turns the CLI's message stream into session steps: text, tool calls (matched with their
    results by id, with the hook's policy decision), and sub-agent starts and ends."""

    def __init__(self, runtime: ClaudeRuntime, session: RunSession, sdk: Any, *,
                 agent: str | None = None, nested: bool = False) -> None:
        self.runtime = runtime
        self.session = session
        self.sdk = sdk
        self.agent = agent or session.agent.name  # whose stream this is
        self.nested = nested  # a created agent's own query (run_nested)
        self.pending: dict[str, tuple[str, str, dict, float]] = {}  # id -> agent, tool, input, t0
        self.delegations: dict[str, str] = {}  # Agent tool_use id -> sub-agent name
        self.started: set[str] = set()  # delegations whose sub-agent has begun
        self.result = ""

    def handle(self, message: Any) -> None:
        sdk = self.sdk
        if isinstance(message, sdk.StreamEvent):
            self._stream_event(message)
        elif isinstance(message, sdk.SystemMessage) and message.subtype == "init":
            claude_mcp.check_started(self.session, (message.data or {}).get("mcp_servers"),
                                     self.runtime._mcp_servers)
        elif isinstance(message, sdk.AssistantMessage):
            self._assistant(message)
        elif isinstance(message, sdk.UserMessage) and isinstance(message.content, list):
            self._subagent_final_turn(getattr(message, "tool_use_result", None))
            for block in message.content:
                if isinstance(block, sdk.ToolResultBlock):
                    self._tool_result(block)
        elif isinstance(message, sdk.ResultMessage):
            self._result(message)
        elif isinstance(message, sdk.SystemMessage) and message.subtype == "compact_boundary":
            # the CLI pages on its own (it compacts the conversation): into the trace with it
            self.session.context_log.cli_compacted(self.session.agent.name, message.data)

    def _stream_event(self, message: Any) -> None:
        """The main agent's responses, counted as they stream: the turn and its input tokens at
        the start, its output tokens at the end."""
        if message.parent_tool_use_id:
            return
        event = message.event or {}
        kind = event.get("type")
        if kind == "message_start":
            msg = event.get("message") or {}
            usage = msg.get("usage") or {}
            self.runtime._seen_messages.add(msg.get("id") or str(id(message)))
            if msg.get("model") and not self.session.model:
                self.session.model = msg["model"]
            self.session.model_turn(
                input_tokens=int(usage.get("input_tokens") or 0),
                cache_read_tokens=int(usage.get("cache_read_input_tokens") or 0),
            )
        elif kind == "message_delta":
            usage = event.get("usage") or {}
            self.session.model_turn(output_tokens=int(usage.get("output_tokens") or 0),
                                    turn=False)
        elif kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta":  # the live view shows text as it streams
                self.session.text_delta(self.session.agent.name, str(delta.get("text") or ""))

    def _subagent_final_turn(self, result: Any) -> None:
        """A sub-agent's last response is folded into the Agent tool's result and never
        streamed; the result's usage is the only record of it."""
        if not isinstance(result, dict) or not result.get("agentType"):
            return
        texts = [b.get("text", "") for b in result.get("content") or [] if isinstance(b, dict)]
        final = "\n".join(t for t in texts if not t.startswith("<tools-used-before-summary>"))
        self.session.text(str(result["agentType"]), final)
        usage = result.get("usage") or {}
        self.session.model_turn(
            input_tokens=int(usage.get("input_tokens") or 0),
            output_tokens=int(usage.get("output_tokens") or 0),
            cache_read_tokens=int(usage.get("cache_read_input_tokens") or 0),
        )

    def _assistant(self, message: Any) -> None:
        parent_id = message.parent_tool_use_id or ""
        agent = self.delegations.get(parent_id, self.agent)
        if parent_id in self.delegations and parent_id not in self.started:
            self._start_subagent(parent_id)
        self.runtime._count_turn(self.session, message)
        for block in message.content:
            if isinstance(block, self.sdk.TextBlock):
                self.session.text(agent, block.text)
            elif isinstance(block, self.sdk.ToolUseBlock):
                self.pending[block.id] = (agent, block.name, block.input, time.perf_counter())
                if block.name in ("Agent", "Task"):
                    self.delegations[block.id] = str(block.input.get("subagent_type", ""))

    def _result(self, message: Any) -> None:
        # Per-model totals include sub-agents; `usage` alone covers the main agent only.
        per_model = list((message.model_usage or {}).values())
        usage = message.usage or {}

        def total(model_key: str, usage_key: str) -> int:
            if per_model:
                return sum(int(m.get(model_key) or 0) for m in per_model)
            return int(usage.get(usage_key) or 0)

        if self.nested:  # its usage was counted turn by turn; totals are the main query's
            return self._finish(message)
        self.session.report_totals(
            cost_usd=message.total_cost_usd,
            input_tokens=total("inputTokens", "input_tokens"),
            output_tokens=total("outputTokens", "output_tokens"),
            cache_read_tokens=total("cacheReadInputTokens", "cache_read_input_tokens"),
        )
        self._finish(message)

    def _finish(self, message: Any) -> None:
        if message.subtype == "error_max_turns" and not self.nested:
            raise LimitReached(f"max turns reached ({self.session.limits.max_turns})",
                               hint="raise it with --max-turns, the agent's llmunix.max_turns "
                                    "or llmunix.toml")
        if message.is_error:
            detail = message.result or ", ".join(message.errors or []) or message.subtype
            raise LlmunixError(f"the Claude runtime reported an error: {detail}")
        self.result = message.result or ""

    def _start_subagent(self, call_id: str) -> None:
        self.started.add(call_id)
        parent, _tool, tool_input, _ = self.pending.get(
            call_id, (self.agent, "", {}, 0.0))
        self.session.subagent_started(self.delegations[call_id], parent, call_id,
                                      str(tool_input.get("prompt", "")))

    def interrupted(self) -> None:
        """Record the calls still running when the run was interrupted."""
        for call_id, (agent, tool, tool_input, t0) in list(self.pending.items()):
            if call_id in self.delegations:
                continue
            decision = self.runtime._decisions.get(call_id)
            if decision is None:
                continue  # never reached the gate: it did not run
            self.pending.pop(call_id)
            self.session.tool_interrupted(call_id, agent, tool, tool_input,
                                          time.perf_counter() - t0, decision)

    def _tool_result(self, block: Any) -> None:
        call_id = block.tool_use_id
        decision = self.runtime._decisions.get(call_id)
        output = _block_text(block.content)
        never_ran = call_id not in self.started and (
            decision is None or not decision.allowed or block.is_error)
        if call_id in self.delegations and never_ran:
            # Refused by the hook, or by the CLI before asking it (an agent that may not
            # delegate, an unknown sub-agent): a denial, not a sub-agent that ran.
            agent, tool, tool_input, _ = self.pending.get(
                call_id, (self.session.agent.name, "Agent", {}, 0.0))
            if decision is None:
                decision = self.session.check(agent, tool, tool_input)
            if decision.allowed:
                decision = Decision(False, f"{tool} refused: {output.strip()}")
            del self.delegations[call_id]
        if call_id in self.delegations and (decision is None or decision.allowed):
            if call_id not in self.started:
                self._start_subagent(call_id)
            parent = self.pending.pop(call_id, (self.agent,))[0]
            self.session.subagent_finished(self.delegations[call_id], parent, call_id, output)
            return
        call = self.pending.pop(call_id, None)
        if call is None:
            return
        agent, tool, tool_input, t0 = call
        if tool == served.SERVED_DELEGATE and (decision is None or decision.allowed):
            return  # recorded by llmunix's own delegation: sub-agent start, its steps, end
        if decision is None:  # the CLI refused it before asking the hook: say why in our terms
            decision = self.session.check(agent, tool, tool_input)
        self.session.tool_called(
            call_id=call_id,
            agent=agent,
            tool=tool,
            tool_input=tool_input,
            output=output,
            is_error=bool(block.is_error),
            duration_s=time.perf_counter() - t0,
            decision=decision,
        )


@contextlib.contextmanager
def cli_config_dir():
    """A config folder for one run of the CLI, removed when the run ends: the CLI keeps its
    transcripts and state there, raw, so nothing of a run outlives it under ~/.claude. A
    `claude login` credential is copied in (and removed with the folder)."""
    source = Path(os.environ.get("CLAUDE_CONFIG_DIR") or Path.home() / ".claude")
    folder = Path(tempfile.mkdtemp(prefix="llmunix-claude-"))
    try:
        credentials = source / ".credentials.json"
        if credentials.is_file():
            shutil.copy2(credentials, folder / ".credentials.json")
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _stop_cli(client: Any, *, tree: bool = False) -> None:
    process = getattr(getattr(client, "_transport", None), "_process", None)
    if process is not None and process.returncode is None:
        if tree:
            from llmunix.tools.process import kill_tree

            kill_tree(process.pid)
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
