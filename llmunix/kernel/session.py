"""One run in progress. Runtimes report every step here; the session applies the policy and the
limits the same way for every runtime, writes the trace and emits events."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmunix.errors import LimitReached, SandboxUnavailable
from llmunix.kernel.changes import RunChanges
from llmunix.kernel.context_log import ContextLog
from llmunix.kernel.skills import SKILL_TOOL, RunSkills
from llmunix.mcp import scope as mcp_scope
from llmunix.memory.agent_tools import NAMES as MEMORY_TOOLS
from llmunix.memory.agent_tools import AgentMemory
from llmunix.policy.gate import Decision, Policy
from llmunix.specs.claude_code import CLAUDE_CODE_TOOLS, IMPLEMENTED_TOOLS, unimplemented_reason
from llmunix.specs.models import AgentSpec, ToolSpec, canonical_tool_name, is_builtin_tool
from llmunix.specs.registry import Registry
from llmunix.tools.result import ToolResult
from llmunix.tools.sandbox import Sandbox
from llmunix.trace.events import (
    AssistantText,
    Event,
    SubagentFinished,
    SubagentStarted,
    TextDelta,
    ToolCalled,
    ToolStarted,
    UsageUpdated,
)
from llmunix.trace.markdown import TraceWriter
from llmunix.workspace.config import CreateAgentConfig

MCP_PREFIX = "mcp__llmunix__"  # how the Claude runtime names tool specs
RECALL = "Recall"  # the context's page-in tool (context/recall.py)
INTERRUPTED_OUTPUT = "interrupted: the call was stopped by the user (Ctrl-C) while it ran"
CREATE_AGENT = "CreateAgent"
HOW_TO_DELEGATE = "Delegate to it with the Agent tool (subagent_type: its name)."
# Built-ins run on the event loop's thread when their file is at most IN_PLACE_BYTES (see
# RunSession._run_in_place); every other tool runs in a worker thread.
IN_PLACE_TOOLS = frozenset({"Read", "Write", "Edit"})
IN_PLACE_BYTES = 1 << 20


@dataclass(frozen=True)
class Limits:
    max_turns: int
    budget_usd: float
    timeout_s: float


@dataclass(frozen=True)
class Price:
    input: float = 0.0  # USD per million tokens
    output: float = 0.0
    cache_read: float = 0.0


class RunSession:
    # The files this run changes (kernel/changes.py); set by the runner, None for a bare session.
    changes: RunChanges | None = None
    # The most characters of one tool result sent to the model (0: all); set by the runner.
    model_output_chars: int = 0
    kept_output_chars: int = 1_000_000  # [limits] tool_output_kept_chars

    def __init__(
        self,
        *,
        registry: Registry,
        agent: AgentSpec,
        goal: str,
        limits: Limits,
        policy: Policy,
        trace: TraceWriter,
        emit: Callable[[Event], None],
        model: str = "",
        context: str = "",
        live_registry: Callable[[], Registry] | None = None,
        price: Price = Price(),
        bash_timeout_s: float = 120.0,
        sandbox: Sandbox | None = None,
        memory: AgentMemory | None = None,
        caution: str = "",
        create_agent: CreateAgentConfig | None = None,
    ) -> None:
        self.registry = registry
        self.skills = RunSkills(registry)  # which agent may use which skill, and which is active
        self.agent = agent
        self.goal = goal
        self.context = context
        self._live_registry = live_registry
        self._delegated: dict[str, AgentSpec] = {}  # the spec version each delegation used
        self._created: dict[str, AgentSpec] = {}  # agents CreateAgent wrote during this run
        self.written_specs: list[Path] = []  # their files, for the run's commit
        self.limits = limits
        self.policy = policy
        self.trace = trace
        self._emit = emit
        self.model = model
        self.price = price
        self.bash_timeout_s = bash_timeout_s
        # Every process a tool call starts runs in here (tools/sandbox.py).
        self.sandbox = sandbox or Sandbox.create(policy.workspace, read_paths=policy.read_roots)
        self.memory = memory  # MemorySearch, MemoryWrite and core memory
        self.caution = caution  # the kernel state's note for the goal's agent (kernel/state.py)
        self.context_log = ContextLog(trace, emit)  # for the pagers (context/)
        self.refused = 0  # calls the policy refused (the kernel state counts them)
        self.started = time.monotonic()
        self.turns = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.cache_read_tokens = 0
        self.cost_usd = 0.0
        self.context_tokens = 0  # the latest turn's prompt
        self.context_window = 0  # the model's context size, when a runtime knows it
        self._usage_mark = (0, 0, 0, 0.0)  # turns and usage at the last step that showed them
        self.tokens_estimated = False  # some usage was counted by llmunix, not reported
        self._cost_reported: float | None = None  # the runtime's own figure, when it has one
        self.create_agent_config = create_agent or CreateAgentConfig()
        self.generation = 0  # bumped when CreateAgent adds or changes an agent
        self._allowed: dict[str, tuple] = {}  # allowed_tools: agent name -> (spec, ..., set)

    @property
    def goal_message(self) -> str:
        """What the model is first sent: the goal, plus a worked example in mixed mode."""
        return f"{self.goal}\n\n{self.context}" if self.context else self.goal

    def system_prompt(self, agent: AgentSpec) -> str:
        """The agent's prompt as the model gets it, on every runtime: the kernel state's note
        for the agent running the goal, then core memory, pinned for every agent."""
        parts = [agent.prompt]
        if self.caution and agent.name == self.agent.name:
            parts.append(self.caution)
        skills = self.skills.prompt_section(agent)
        if skills:
            parts.append(skills)
        pinned = self.memory.pinned() if self.memory is not None else ""
        if pinned:
            parts.append(pinned)
        return "\n\n".join(parts)

    # ------------------------------------------------------------ scope

    @property
    def project(self):
        return self.registry.project

    @property
    def workspace_dir(self):
        return self.policy.workspace

    def agent_named(self, name: str) -> AgentSpec | None:
        return self._delegated.get(name) or self.registry.agents.get(name)

    def delegation_spec(self, name: str) -> AgentSpec | None:
        """The sub-agent's spec as it is now: an edit made while a goal runs applies to its next
        delegation. The policy gate then uses that same version."""
        source = self._live_registry() if self._live_registry else self.registry
        # An agent created in this run is used as written (the live registry may lag behind).
        spec = self._created.get(name) or source.agents.get(name) or self.registry.agents.get(name)
        if spec is not None:
            self._delegated[name] = spec
        return spec

    def subagents(self) -> dict[str, AgentSpec]:
        """Every agent in scope but the one running the goal: the delegation targets."""
        return {n: a for n, a in self.registry.agents.items() if n != self.agent.name}

    def tool_specs_for(self, agent: AgentSpec) -> list[ToolSpec]:
        if agent.tools is None:
            return list(self.registry.tools.values())
        specs = [self.registry.tools[t] for t in agent.tools if t in self.registry.tools]
        return specs + self._learned_skills(agent)

    def _learned_skills(self, agent: AgentSpec) -> list[ToolSpec]:
        """The goal's agent may call the project's crystallized tools as ordinary tools."""
        if agent.name != self.agent.name:
            return []
        return [t for t in self.registry.tools.values()
                if t.crystallized and t.name not in (agent.tools or ())]

    def builtin_tools_for(self, agent: AgentSpec, offered: frozenset[str]) -> list[str]:
        """The built-in tools of `offered` that `agent` may use, in a stable order."""
        if agent.tools is None:  # every tool, but CreateAgent only for agents that list it
            names = sorted(offered - {CREATE_AGENT})
        else:
            names = [t for t in agent.tools if canonical_tool_name(t) in offered]
        return [n for n in names if n not in agent.disallowed_tools]

    def allowed_tools(self, agent: AgentSpec) -> frozenset[str] | None:
        """The tools `agent` may call (None: any). Kept per agent until its spec, the registry
        or the generation changes: it is asked on every call, and the learned skills among a
        registry's tools take a look at each of them."""
        hit = self._allowed.get(agent.name)
        if hit is not None and hit[0] is agent and hit[1] is self.registry \
                and hit[2] == self.generation:
            return hit[3]
        allowed = self._allowed_now(agent)
        self._allowed[agent.name] = (agent, self.registry, self.generation, allowed)
        return allowed

    def _allowed_now(self, agent: AgentSpec) -> frozenset[str] | None:
        if agent.tools is None and not agent.disallowed_tools:
            return None
        names = set(agent.tools) | {t.name for t in self._learned_skills(agent)} \
            if agent.tools is not None else (
            {n for n in self.registry.tools} | {"Read", "Write", "Edit", "Glob", "Grep", "Bash",
                                                "Agent", "WebFetch", "WebSearch", "TodoWrite",
                                                *MEMORY_TOOLS}
        )
        return frozenset(n for n in names if n not in agent.disallowed_tools)

    # ------------------------------------------------------------ the gate

    def check(self, agent_name: str, tool: str, tool_input: Any) -> Decision:
        """The policy decision for one call by `agent_name`, on every runtime."""
        agent = self.agent_named(agent_name) or self.agent
        name = tool[len(MCP_PREFIX):] if tool.startswith(MCP_PREFIX) else tool
        if not isinstance(tool_input, dict):
            return Decision(False, f"{name} refused: its input must be a JSON object")
        if name == RECALL:  # it only reads this run's own trace: what paging took out
            return Decision(True)
        canonical = canonical_tool_name(name)
        if canonical in CLAUDE_CODE_TOOLS and canonical not in IMPLEMENTED_TOOLS:
            return Decision(False, unimplemented_reason(name))
        if name == CREATE_AGENT and CREATE_AGENT not in (agent.tools or ()):
            return Decision(False, f"{name} refused: only an agent that lists CreateAgent in its "
                                   "tools may create agents")
        skill_decision = self.skills.check(agent, name, tool_input)
        if skill_decision is not None and (name == SKILL_TOOL or not skill_decision.allowed):
            return skill_decision
        if mcp_scope.is_mcp_tool(name):
            if mcp_scope.allows(agent, name, self.registry.mcp_servers):
                return Decision(True)
            return Decision(False, f"{name} refused: this agent may not use it (an agent's MCP "
                                   "tools are those its tools: list names, of its servers)")
        decision = self.policy.check(
            name,
            tool_input,
            allowed_tools=self.allowed_tools(agent),
            constraints=agent.settings.constraints,
            rules=agent.rules,
        )
        spec = self.registry.tools.get(name)
        if decision.allowed and spec is not None:
            decision = self.policy.check_path_args(name, spec.input_schema, tool_input,
                                                   agent.settings.constraints)
        if decision.allowed and self.starts_process(name):
            try:
                self.sandbox.check()
            except SandboxUnavailable as exc:
                return Decision(False, f"{name} refused: {exc}")
        return decision

    def starts_process(self, name: str) -> bool:
        """Whether a call of `name` starts a process (Bash, command and python tool specs)."""
        spec = self.registry.tools.get(name)
        return name == "Bash" if spec is None else spec.kind in ("command", "python")

    def sandbox_for(self, agent_name: str | None) -> Sandbox:
        """The run's sandbox, with the network open for an agent whose constraints allow it."""
        agent = self.agent_named(agent_name) if agent_name else None
        wanted = self.sandbox.network or bool(agent and agent.settings.constraints.network)
        return self.sandbox.with_network(wanted)

    # ------------------------------------------------------------ reporting

    def emit(self, event: Event) -> None:
        self._emit(event)

    def text(self, agent: str, text: str) -> None:
        if text.strip():
            event = AssistantText(agent, text)
            self.trace.assistant_text(event, self._turn_usage())
            self.emit(event)

    def text_delta(self, agent: str, text: str) -> None:
        """A piece of text as the model streams it: for the live view only; the whole text
        comes to `text()` when the response is complete."""
        if text:
            self.emit(TextDelta(agent, text))

    def _turn_usage(self) -> dict[str, Any]:
        """The turn, tokens and cost since the last step that carried them: the first step
        written after a model turn (its text, or its first call) records them in the trace."""
        now = (self.turns, self.input_tokens, self.output_tokens, self.cost_usd)
        before, self._usage_mark = self._usage_mark, now
        if now == before:
            return {}
        return {"turn": now[0], "input_tokens": now[1] - before[1],
                "output_tokens": now[2] - before[2], "cost_usd": round(now[3] - before[3], 6)}

    def tool_called(
        self,
        *,
        call_id: str,
        agent: str,
        tool: str,
        tool_input: Any,
        output: str,
        is_error: bool,
        duration_s: float,
        decision: Decision,
        interrupted: bool = False,
        recorded: bool = False,
    ) -> None:
        """One finished call in the trace; `recorded`: llmunix ran it itself, so the files it
        changed are already this run's (else they are noted from its input)."""
        name = tool[len(MCP_PREFIX):] if tool.startswith(MCP_PREFIX) else tool
        spec = self.registry.tools.get(name)
        if self.changes is not None and decision.allowed and not recorded:
            self.changes.note(name, tool_input)  # the Claude CLI's own Write/Edit
        event = ToolCalled(
            call_id=call_id,
            agent=agent,
            tool=name,
            input=tool_input if isinstance(tool_input, dict) else {"_raw": tool_input},
            output=output,
            is_error=is_error,
            duration_s=duration_s,
            decision="allowed" if decision.allowed else "denied",
            reason=decision.reason,
            spec_hash=spec.content_hash if spec else "",
            interrupted=interrupted,
        )
        self.trace.tool_called(event, self._turn_usage())
        self.context_log.record(call_id, agent, name, event.input, len(output))
        if not decision.allowed and " refused" in decision.reason:
            self.refused += 1  # the policy's refusals (not a model's malformed calls)
        self.emit(event)

    def tool_started(self, call_id: str, agent: str, tool: str, tool_input: Any) -> None:
        name = tool[len(MCP_PREFIX):] if tool.startswith(MCP_PREFIX) else tool
        self.emit(ToolStarted(call_id, agent, name,
                              tool_input if isinstance(tool_input, dict) else {"_raw": tool_input}))

    def tool_interrupted(self, call_id: str, agent: str, tool: str, tool_input: Any,
                         duration_s: float, decision: Decision) -> None:
        """A call stopped by Ctrl-C while it ran: recorded as such, then the run ends."""
        self.tool_called(call_id=call_id, agent=agent, tool=tool, tool_input=tool_input,
                         output=INTERRUPTED_OUTPUT, is_error=True, duration_s=duration_s,
                         decision=decision, interrupted=True)

    def subagent_started(self, agent: str, parent: str, call_id: str, prompt: str = "") -> None:
        spec = self.agent_named(agent)
        event = SubagentStarted(agent, parent, call_id, prompt, spec.content_hash if spec else "")
        self.trace.subagent_started(event, self._turn_usage())
        self.emit(event)

    def subagent_finished(self, agent: str, parent: str, call_id: str, result: str = "") -> None:
        event = SubagentFinished(agent, parent, call_id, result)
        self.trace.subagent_finished(event)
        # the parent's Agent call returns this result: a pager names this step for it
        self.context_log.record(call_id, parent, "Agent", {"subagent_type": agent}, len(result))
        self.emit(event)

    # ------------------------------------------------------------ limits

    def model_turn(
        self,
        *,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cache_read_tokens: int = 0,
        turn: bool = True,
        estimated: bool = False,
    ) -> None:
        """Count one model response and its usage (`turn=False`: more usage of a response
        already counted, e.g. its output tokens once it has streamed; `estimated`: llmunix
        counted the tokens because the server sent no usage). Raises LimitReached past a
        limit."""
        self.tokens_estimated = self.tokens_estimated or estimated
        self.turns += int(turn)
        if turn and input_tokens:
            self.context_tokens = input_tokens + cache_read_tokens
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self.cache_read_tokens += cache_read_tokens
        self.cost_usd += (
            input_tokens * self.price.input
            + output_tokens * self.price.output
            + cache_read_tokens * self.price.cache_read
        ) / 1_000_000
        self._report_usage()
        self.check_limits()

    def report_totals(self, *, cost_usd: float | None = None, input_tokens: int = 0,
                      output_tokens: int = 0, cache_read_tokens: int = 0) -> None:
        """A runtime that knows exact totals (the Claude CLI does, at the end) reports them;
        they replace the running estimate where they are larger."""
        self.input_tokens = max(self.input_tokens, input_tokens)
        self.output_tokens = max(self.output_tokens, output_tokens)
        self.cache_read_tokens = max(self.cache_read_tokens, cache_read_tokens)
        if cost_usd is not None:
            self.cost_usd = max(self.cost_usd, cost_usd)
        self._report_usage()

    def _report_usage(self) -> None:
        self.emit(UsageUpdated(self.turns, self.input_tokens, self.output_tokens,
                               self.cache_read_tokens, round(self.cost_usd, 6),
                               self.context_tokens, self.context_window))

    def check_limits(self, *, next_request: bool = False) -> None:
        """Raise LimitReached past a limit; `next_request`: before sending a model request,
        which the turn limit must leave room for (N turns are N requests, not N + 1)."""
        if self.turns > self.limits.max_turns or (
                next_request and self.turns >= self.limits.max_turns):
            raise LimitReached(
                f"max turns reached ({self.limits.max_turns})",
                hint="raise it with --max-turns, the agent's llmunix.max_turns or llmunix.toml",
            )
        if self.cost_usd > 0 and self.cost_usd >= self.limits.budget_usd:  # $0: nothing paid
            raise LimitReached(
                f"budget reached (${self.cost_usd:.4f} of ${self.limits.budget_usd:.4f})",
                hint="raise it with --budget, the agent's llmunix.budget_usd or llmunix.toml",
            )
        if time.monotonic() - self.started > self.limits.timeout_s:
            raise LimitReached(f"timeout reached ({self.limits.timeout_s:g} s)")

    # ------------------------------------------------------------ running tools

    async def execute(self, agent_name: str, tool: str, tool_input: Any, call_id: str,
                      *, in_thread: bool = True, whole: bool = False) -> ToolResult:
        """Gate, run and record one call of a tool llmunix executes itself. The tool runs in a
        worker thread so a model stream or a hook can be served meanwhile (but for small file
        tools that cannot wait: `_run_in_place`); a runtime with nothing else to serve (replay)
        runs it in place (`in_thread=False`)."""
        decision = self.check(agent_name, tool, tool_input)
        if not decision.allowed:
            result = ToolResult(decision.reason, is_error=True)
        elif tool == CREATE_AGENT:
            result = self.create_agent(agent_name, tool_input)
        elif not in_thread:  # a replay: in place, with no event loop (asyncio not even imported)
            self.tool_started(call_id, agent_name, tool, tool_input)
            started = time.perf_counter()
            try:
                result = self.run_tool(tool, tool_input, agent_name, gated=True)
            except KeyboardInterrupt:  # Ctrl-C (run/interrupt.py: call_interruptibly)
                self.tool_interrupted(call_id, agent_name, tool, tool_input,
                                      time.perf_counter() - started, decision)
                raise
        else:
            self.tool_started(call_id, agent_name, tool, tool_input)
            result = self._run_in_place(tool, tool_input, agent_name)
            if result is None:
                import asyncio

                started = time.perf_counter()
                try:
                    result = await asyncio.to_thread(self.run_tool, tool, tool_input, agent_name,
                                                     gated=True)
                except asyncio.CancelledError:
                    self.tool_interrupted(call_id, agent_name, tool, tool_input,
                                          time.perf_counter() - started, decision)
                    raise
        self.tool_called(call_id=call_id, agent=agent_name, tool=tool, tool_input=tool_input,
                         output=result.output, is_error=result.is_error,
                         duration_s=result.duration_s, decision=decision, recorded=True)
        return result if whole else self.for_model(result)

    def _run_in_place(self, tool: str, tool_input: dict, agent_name: str) -> ToolResult | None:
        """Read, Write or Edit of a small file, run on the event loop's own thread: they take
        microseconds, less than the hop to a worker thread and back (~0.4 ms a call). Only when
        nothing can make them wait: a large file, or the effects lock held by another run (its
        Bash may hold it for minutes), sends the call to the worker thread (None)."""
        if tool not in IN_PLACE_TOOLS or tool in self.registry.tools or not self._small(tool_input):
            return None
        changes = self.changes
        if changes is None or not changes.needs_lock(tool):
            return self.run_tool(tool, tool_input, agent_name, gated=True)
        with changes.effects_now() as held:
            # Held here, the lock is taken again by the call itself without a wait (reentrant).
            return self.run_tool(tool, tool_input, agent_name, gated=True) if held else None

    def _small(self, tool_input: dict) -> bool:
        """The file a call reads is absent or small; the file is checked again, properly, by the
        tool itself (this only picks the thread it runs on)."""
        path = tool_input.get("file_path")
        if not isinstance(path, str):
            return True  # the tool refuses the input at once
        try:
            return os.stat(os.path.join(self.policy.workspace, path)).st_size <= IN_PLACE_BYTES
        except (OSError, ValueError):
            return True  # absent (or unreadable): the tool's answer is quick

    def for_model(self, result: ToolResult) -> ToolResult:
        """What the model is sent: the output cut at `model_output_chars` ([limits]
        tool_output_chars); the trace keeps it whole (its sidecar folder)."""
        limit = self.model_output_chars
        text = result.output
        if not limit or len(text) <= limit:
            return result
        half = limit // 2  # the start and the end: where a long output says what failed
        note = (f"\n[... output cut at {limit:,} of {len(text):,} characters: the first and "
                f"the last {half:,} are sent; the whole output is in the run's trace ...]\n")
        return ToolResult(text[:half] + note + text[len(text) - (limit - half):],
                          result.is_error, result.exit_code, result.duration_s)

    def run_tool(self, tool: str, tool_input: dict, agent_name: str | None = None, *,
                 gated: bool = False) -> ToolResult:
        """Run a built-in or a tool spec, ungated: callers gate first (see `execute`).
        `agent_name` is the caller, whose constraints may open the sandbox's network. `gated`:
        the caller checked this very call just now (`execute`), so a built-in does not check
        the policy's own rules again (the Claude CLI's calls, gated in its hook, are)."""
        name = tool[len(MCP_PREFIX):] if tool.startswith(MCP_PREFIX) else tool
        started = time.perf_counter()
        spec = self.registry.tools.get(name)
        with self._effects(name, tool_input):
            result = self._run_tool(name, spec, tool_input, agent_name, gated)
        if not result.duration_s:
            result = ToolResult(result.output, result.is_error, result.exit_code,
                                time.perf_counter() - started)
        return result

    def _effects(self, name: str, tool_input: Any):
        """Which files the call changes become this run's (kernel/changes.py)."""
        if self.changes is None:
            return contextlib.nullcontext()
        if name in MEMORY_TOOLS and self.memory is not None:
            memory = self.memory
            return self.changes.then(lambda: sorted(memory.changed))  # memory/core.md, ...
        return self.changes.tool(name, tool_input)

    def _run_tool(self, name: str, spec, tool_input: dict, agent_name: str | None,
                  gated: bool = False) -> ToolResult:
        from llmunix.errors import ToolError
        from llmunix.tools import builtin as builtin_tools
        from llmunix.tools import spec_exec as tool_exec

        try:
            if spec is not None:
                result = tool_exec.run_tool_spec(spec, tool_input, cwd=self.workspace_dir,
                                                 sandbox=self.sandbox_for(agent_name),
                                                 max_output_chars=self.kept_output_chars)
            elif name in MEMORY_TOOLS and self.memory is not None:
                result = self.memory.run(name, tool_input)
            elif name == SKILL_TOOL:
                result = self.skills.invoke(agent_name, tool_input)
            elif name == RECALL:
                from llmunix.context.recall import recall

                result = recall(self.trace.path, tool_input)
            elif is_builtin_tool(name) and name in builtin_tools.BUILTIN_SCHEMAS:
                result = builtin_tools.run_builtin(
                    name, tool_input, policy=self.policy, timeout_s=self.bash_timeout_s,
                    sandbox=self.sandbox_for(agent_name),
                    max_output_chars=self.kept_output_chars,
                    gated=gated,
                )
            else:
                result = ToolResult(f"unknown tool {name!r}", is_error=True)
        except (ToolError, SandboxUnavailable) as exc:
            result = ToolResult(str(exc), is_error=True)
        return result

    # ------------------------------------------------------------ agents that write agents

    def create_agent(self, creator_name: str, tool_input: Any, *,
                     how_to_delegate: str = HOW_TO_DELEGATE) -> ToolResult:
        """CreateAgent, ungated (callers gate first): validate and write the spec, then make the
        agent part of this run, so it can be delegated to on the next turn."""
        import dataclasses

        from llmunix.tools.create_agent import CreateAgentRefused, create_agent

        started = time.perf_counter()
        creator = self.agent_named(creator_name) or self.agent
        try:
            made = create_agent(
                tool_input, project=self.project, agents=self.registry.agents,
                tool_specs=set(self.registry.tools), creator=creator,
                creator_tools=self.allowed_tools(creator), goal_agent=self.agent.name,
                config=self.create_agent_config)
        except CreateAgentRefused as exc:
            return ToolResult(exc.message, is_error=True,
                              duration_s=time.perf_counter() - started)
        agents = {**self.registry.agents, made.spec.name: made.spec}
        self.registry = dataclasses.replace(self.registry, agents=dict(sorted(agents.items())))
        self._delegated.pop(made.spec.name, None)
        self._created[made.spec.name] = made.spec
        if made.path not in self.written_specs:
            self.written_specs.append(made.path)
        self.generation += 1
        root = self.registry.workspace.root
        shown = made.path.relative_to(root).as_posix() if made.path.is_relative_to(root) \
            else str(made.path)
        return ToolResult(made.report(shown, how_to_delegate),
                          duration_s=time.perf_counter() - started)
