"""The agent loop of the OpenAI-compatible runtime: one agent (the goal's, or a sub-agent it
delegated to) working on one prompt. Every tool call goes through the session (policy, limits,
trace); unusable replies of weak models are fed back (see runtimes/openai.py)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from llmunix.context.loop import LoopContext
from llmunix.errors import LimitReached, LlmunixError, ToolError
from llmunix.kernel.session import CREATE_AGENT, RunSession
from llmunix.kernel.skills import DESCRIPTION as SKILL_DESCRIPTION
from llmunix.kernel.skills import SCHEMA as SKILL_SCHEMA
from llmunix.kernel.skills import SKILL_TOOL
from llmunix.memory.agent_tools import NAMES as MEMORY_TOOLS
from llmunix.memory.agent_tools import openai_definitions
from llmunix.policy.gate import Decision
from llmunix.runtimes import mcp_tools, text_protocol
from llmunix.specs.models import AgentSpec, ToolSpec, canonical_tool_name, is_builtin_tool
from llmunix.tools.create_agent import SCHEMA as CREATE_SCHEMA
from llmunix.tools.result import ToolResult
from llmunix.workspace.config import OpenAIConfig

# The built-ins llmunix runs itself on this runtime (Agent is the delegation tool below).
OFFERED = frozenset({"Read", "Write", "Edit", "Glob", "Grep", "Bash", "Agent", CREATE_AGENT,
                     *MEMORY_TOOLS})

EMPTY_REPLY = ("Your last reply was empty. Continue with the task: call a tool, or, if the task "
               "is done, reply with your final answer as text.")
CUT_REPLY = ("Your last reply was cut off because it was too long, and it was discarded. Reply "
             "again, more briefly; split a large piece of work (such as a long file) into several "
             "smaller tool calls.")
TEXT_CALL = ("You wrote a tool call as text ({problem}). Text is not executed: call tools through "
             "the tool-calling (function calling) interface you were given. Your tools: {tools}.")
TEXT_FORMAT = ('Write each call as <tool_call>{"name": "TOOL_NAME", "arguments": {...}}'
               "</tool_call>.")


class _Stopped(LlmunixError):
    """A sub-agent ended early (its own limits, or unusable replies): its parent is told."""


class _GaveUp(_Stopped):
    """Too many unusable replies in a row."""


@dataclass
class _Call:
    id: str
    name: str
    arguments: dict | None  # None when unusable; `error` says why
    raw: str  # the arguments as the model sent them
    error: str | None = None


@dataclass
class _Reply:
    text: str = ""
    calls: list[_Call] = field(default_factory=list)
    finish_reason: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    usage_reported: bool = False  # False: the tokens are llmunix's count (see context/tokens)
    runaway: bool = False
    chunks: int = 0  # stream events received
    pieces: int = 0  # of them, those that carried text or tool-call arguments


@dataclass(frozen=True)
class RequestShape:
    """How one agent's model requests are shaped (see OpenAIRuntime.shape_for)."""

    max_tokens: int
    temperature: float | None  # None: the server's default
    timeout_s: float  # one request, from sending it to its last byte


class Connection(Protocol):
    """What the loop needs of the server connection (runtimes/openai.py's OpenAIRuntime)."""

    config: OpenAIConfig
    max_reply_chars: int  # a longer reply is a runaway: the connection stops reading it

    def model_for(self, agent: AgentSpec, main: bool) -> str: ...

    def uses_text_protocol(self, model: str) -> bool: ...

    def new_call_id(self, proposed: str | None = None) -> str: ...

    def shape_for(self, agent: AgentSpec | None, model: str) -> RequestShape: ...

    async def complete(self, model: str, messages: list[dict], tools: list[dict] | None,
                       on_text: Callable[[str], None] | None = None, *,
                       shape: RequestShape | None = None,
                       notify: Callable[[str], None] | None = None) -> _Reply: ...

    async def context_window(self, model: str) -> tuple[int, str]: ...


def _tool_content(result: ToolResult) -> str:
    output = result.output or "(no output)"
    return f"Error: {output}" if result.is_error else output


def _function(name: str, description: str, parameters: dict) -> dict:
    return {"type": "function",
            "function": {"name": name, "description": description, "parameters": parameters}}


class _AgentLoop:
    """One agent working on one prompt: the goal's agent, or a sub-agent it delegated to."""

    def __init__(self, runtime: Connection, session: RunSession, agent: AgentSpec, *,
                 main: bool) -> None:
        self.rt = runtime
        self.session = session
        self.agent = agent
        self.main = main
        self.model = runtime.model_for(agent, main)
        self.shape = runtime.shape_for(agent, self.model)
        self.text_mode = runtime.uses_text_protocol(self.model)
        self._build_tools()
        self.messages: list[dict] = []
        self.turns = 0
        self.strikes = 0  # unusable replies in a row
        self.last_call: tuple[str, str] | None = None
        self.repeats = 0
        self.cost_at_start = session.cost_usd

    def _build_tools(self) -> None:
        """The tools offered; built again when CreateAgent adds an agent to the run."""
        from llmunix.tools.builtin import openai_tools

        session, agent = self.session, self.agent
        self.generation = session.generation
        builtins = [canonical_tool_name(n)
                    for n in session.builtin_tools_for(agent, OFFERED)]
        self.specs: dict[str, ToolSpec] = {
            s.name: s for s in session.tool_specs_for(agent)
            if s.name not in agent.disallowed_tools
        }
        # Sub-agents do not delegate further (as in Claude Code): no recursion to bound.
        self.subagents = session.subagents() if self.main and "Agent" in builtins else {}
        self.tools = openai_tools(builtins) + openai_definitions(builtins)
        if CREATE_AGENT in builtins:
            self.tools.append(_function(CREATE_AGENT, CREATE_SCHEMA["description"],
                                        {k: v for k, v in CREATE_SCHEMA.items()
                                         if k != "description"}))
        self.tools += [_function(s.name, s.description, s.input_schema)
                       for s in self.specs.values()]
        if session.skills.for_agent(agent):
            self.tools.append(_function(SKILL_TOOL, SKILL_DESCRIPTION, SKILL_SCHEMA))
        self.mcp = mcp_tools.tools_for(getattr(self.rt, "mcp", None), session, agent)
        self.tools += [_function(t.full_name, t.description, t.input_schema)
                       for t in self.mcp.values()]
        if self.subagents:
            self.tools.append(self._agent_tool())
        self.offered = {t["function"]["name"] for t in self.tools}

    def _agent_tool(self) -> dict:
        names = sorted(self.subagents)
        listing = "\n".join(f"- {n}: {self.subagents[n].description}" for n in names)
        return _function(
            "Agent",
            "Delegate a task to a sub-agent. It works on its own with its own tools and returns "
            "its final answer, so give it everything it needs in `prompt`. Sub-agents:\n"
            + listing,
            {
                "type": "object",
                "properties": {
                    "subagent_type": {"type": "string", "enum": names,
                                      "description": "The sub-agent's name."},
                    "prompt": {"type": "string",
                               "description": "The task, with all the context it needs."},
                    "description": {"type": "string",
                                    "description": "A short (3-5 word) summary of the task."},
                },
                "required": ["subagent_type", "prompt"],
            },
        )

    # ------------------------------------------------------------ the loop

    async def run(self, prompt: str) -> str:
        system = self.session.system_prompt(self.agent)
        if self.text_mode and self.tools:
            system = f"{system}\n\n{text_protocol.instructions(self.tools)}"
        self.messages = [{"role": "system", "content": system},
                         {"role": "user", "content": prompt}]
        context = await LoopContext.attach(self)  # the window, paged like RAM (context/)
        while True:
            self._check_own_limits()
            self.session.check_limits()
            if self.generation != self.session.generation:  # an agent was created: offer it
                self._build_tools()
                if self.text_mode and self.tools:
                    self.messages[0]["content"] = (
                        f"{self.session.system_prompt(self.agent)}\n\n"
                        f"{text_protocol.instructions(self.tools)}")
            tools = None if self.text_mode else self.tools
            if context is not None:
                await context.before_request()
            # Streamed text is shown live, except the text protocol's (its calls are markup).
            on_text = None if self.text_mode else self._stream_text
            reply = await self._complete(self.messages, tools, on_text)
            if context is not None:
                context.observed(reply.input_tokens)
            self.turns += 1
            answer = await self._handle(reply)
            if answer is not None:
                return answer

    async def _complete(self, messages: list[dict], tools: list[dict] | None,
                        on_text: Callable[[str], None] | None = None) -> _Reply:
        """One model request, counted: --max-turns N allows exactly N requests."""
        self.session.check_limits(next_request=True)
        reply = await self.rt.complete(self.model, messages, tools, on_text, shape=self.shape,
                                       notify=self._note)
        self.session.model_turn(input_tokens=reply.input_tokens,
                                output_tokens=reply.output_tokens,
                                estimated=not reply.usage_reported)
        return reply

    def _note(self, text: str) -> None:
        self.session.text(self.agent.name, text)

    def _stream_text(self, piece: str) -> None:
        self.session.text_delta(self.agent.name, piece)

    async def run_as_subagent(self, prompt: str) -> str:
        timeout = self.agent.settings.timeout_s
        if not timeout:
            return await self.run(prompt)
        try:
            return await asyncio.wait_for(self.run(prompt), timeout)
        except asyncio.TimeoutError:
            raise _Stopped(f"its time limit ({timeout:g} s) was reached") from None

    def _check_own_limits(self) -> None:
        """A sub-agent's own max_turns and budget (the run's limits are the session's)."""
        if self.main:
            return
        s = self.agent.settings
        if s.max_turns is not None and self.turns >= s.max_turns:
            raise _Stopped(f"its max turns ({s.max_turns}) were reached")
        if s.budget_usd and self.session.cost_usd - self.cost_at_start >= s.budget_usd:
            raise _Stopped(f"its budget (${s.budget_usd:g}) was reached")

    async def _handle(self, reply: _Reply) -> str | None:
        """Act on one reply. Returns the final answer, or None to go on."""
        if reply.runaway or reply.finish_reason == "length":
            why = (f"longer than {self.rt.max_reply_chars:,} characters" if reply.runaway
                   else "the server's length limit")
            self._strike("a reply cut off by the length limit",
                         f"the reply was cut off ({why}) and discarded")
            self._add_user(CUT_REPLY)
            return None
        if self.text_mode:
            parsed = text_protocol.parse(reply.text)
            text = parsed.text
            calls = [_Call(self.rt.new_call_id(), c.name, c.arguments, c.raw, c.error)
                     for c in parsed.calls]
        else:
            text = text_protocol.strip_thinking(reply.text)
            calls = [_Call(self.rt.new_call_id(c.id), c.name, c.arguments, c.raw, c.error)
                     for c in reply.calls]
            if not calls and text:
                adopted = self._calls_written_as_text(reply.text)
                if adopted is None:
                    return None
                text, calls = adopted
        self.session.text(self.agent.name, text)
        if not calls:
            if not text:
                self._strike("an empty reply", "the reply was empty")
                self._add_user(EMPTY_REPLY)
                return None
            self.strikes = 0
            return text
        return await self._run_calls(reply, text, calls)

    def _calls_written_as_text(self, content: str) -> tuple[str, list[_Call]] | None:
        """A model with native tools that wrote its calls in the text: run them if they are
        clean calls of its tools, else tell it to use the interface (None: go on)."""
        parsed = text_protocol.parse(content)
        if not parsed.calls or not (parsed.tagged
                                    or any(c.name in self.offered for c in parsed.calls)):
            return text_protocol.strip_thinking(content), []  # plain text after all
        bad = next((c for c in parsed.calls if c.error or c.name not in self.offered), None)
        if bad is None:
            return parsed.text, [_Call(self.rt.new_call_id(), c.name, c.arguments,
                                       json.dumps(c.arguments), None) for c in parsed.calls]
        problem = bad.error or f"unknown tool {bad.name!r}"
        self.session.text(self.agent.name, text_protocol.strip_thinking(content))
        self._strike("a tool call written as text",
                     f"a tool call written as text was not run: {problem}")
        self.messages.append({"role": "assistant", "content": content})
        self._add_user(TEXT_CALL.format(problem=problem, tools=", ".join(sorted(self.offered))))
        return None

    async def _run_calls(self, reply: _Reply, text: str, calls: list[_Call]) -> None:
        if self.text_mode:
            self.messages.append({"role": "assistant", "content": reply.text})
        else:
            self.messages.append({
                "role": "assistant",
                # "" and never null: servers that validate the history (llama.cpp's) refuse
                # null content with HTTP 500 on every later turn.
                "content": text or "",
                "tool_calls": [
                    {"id": c.id, "type": "function",
                     # Servers may re-parse the history: never send them broken JSON back.
                     "function": {"name": c.name or "unknown",
                                  "arguments": c.raw if c.error is None else "{}"}}
                    for c in calls
                ],
            })
        problems: list[str] = []
        results: list[tuple[str, str]] = []
        for call in calls:
            output, problem = await self._run_call(call)
            results.append((call.name, output))
            if problem:
                problems.append(problem)
        if self.text_mode:
            self._add_user(text_protocol.results_message(results))
        else:
            self.messages.extend({"role": "tool", "tool_call_id": c.id, "content": output}
                                 for c, (_, output) in zip(calls, results, strict=True))
        if problems:
            self._strike(problems[-1], f"{len(problems)} of the reply's calls could not be run")
        else:
            self.strikes = 0
        return None

    async def _run_call(self, call: _Call) -> tuple[str, str | None]:
        """Run one call; returns what the model is told and the problem with the call, if any."""
        session, agent = self.session, self.agent.name
        if call.error is not None or call.arguments is None:
            self.last_call = None
            reason = f"{call.name or 'the call'} was not run: {call.error}"
            if self.text_mode:
                reason += ". " + TEXT_FORMAT
            self._record(call, reason, call.raw)
            return f"Error: {reason}", "tool arguments that are not valid JSON"
        if call.name not in self.offered:
            self.last_call = None
            # A tool llmunix knows but did not offer gets the policy's refusal, so the model
            # learns it is out of scope; any other name is unknown.
            known = is_builtin_tool(call.name) or call.name in session.registry.tools
            decision = session.check(agent, call.name, call.arguments)
            reason = decision.reason if known and not decision.allowed else \
                f"unknown tool {call.name!r}"
            reason += f"; the tools you can call are: {', '.join(sorted(self.offered))}"
            self._record(call, reason, call.arguments)
            return f"Error: {reason}", "an unknown tool name"
        self._loop_guard(call)
        if call.name == "Agent":
            return await self._delegate(call), None
        if call.name in self.mcp:
            result = await mcp_tools.call(self.rt.mcp, session, agent, call.id, call.name,
                                          call.arguments)
            return _tool_content(result), None
        spec = self.specs.get(call.name)
        if spec is not None and spec.kind == "prompt":
            return await self._prompt_tool(spec, call), None
        result = await session.execute(agent, call.name, call.arguments, call.id)
        return _tool_content(result), None

    def _record(self, call: _Call, reason: str, tool_input: Any) -> None:
        """A call that was not run, in the trace: refused, with the reason the model is told."""
        self.session.tool_called(
            call_id=call.id, agent=self.agent.name, tool=call.name or "(none)",
            tool_input=tool_input, output=reason, is_error=True, duration_s=0.0,
            decision=Decision(False, reason),
        )

    def _loop_guard(self, call: _Call) -> None:
        key = (call.name, json.dumps(call.arguments, sort_keys=True, ensure_ascii=False))
        self.repeats = self.repeats + 1 if key == self.last_call else 1
        self.last_call = key
        limit = self.rt.config.loop_guard
        if self.repeats >= limit:
            reason = (f"loop guard: {call.name} called {limit} times in a row with the same "
                      "arguments")
            self._record(call, reason, call.arguments)
            raise LimitReached(reason, hint="raise loop_guard in the [openai] section of "
                                            "llmunix.toml, or use a stronger model")

    # ------------------------------------------------------------ delegation and prompt tools

    async def _delegate(self, call: _Call) -> str:
        session, parent = self.session, self.agent.name
        args = call.arguments or {}
        decision = session.check(parent, "Agent", args)
        name = args.get("subagent_type")
        prompt = args.get("prompt")
        if decision.allowed and name not in self.subagents:
            decision = Decision(False, f"Agent refused: unknown sub-agent {name!r}; the sub-agents "
                                       f"are: {', '.join(sorted(self.subagents))}")
        elif decision.allowed and (not isinstance(prompt, str) or not prompt.strip()):
            decision = Decision(False, "Agent refused: `prompt` must be the task, as text")
        if not decision.allowed:
            self._record(call, decision.reason, args)
            return f"Error: {decision.reason}"
        sub = session.delegation_spec(name) or self.subagents[name]
        session.subagent_started(name, parent, call.id, prompt)
        loop = _AgentLoop(self.rt, session, sub, main=False)
        try:
            result = await loop.run_as_subagent(prompt)
        except _Stopped as exc:
            result = f"Error: sub-agent {name} stopped without finishing: {exc.message}"
        except BaseException as exc:
            detail = getattr(exc, "message", "") or type(exc).__name__
            session.subagent_finished(name, parent, call.id, f"(the run ended: {detail})")
            raise
        session.subagent_finished(name, parent, call.id, result)
        return result

    async def _prompt_tool(self, spec: ToolSpec, call: _Call) -> str:
        """A prompt tool is a one-shot model call whose system prompt is the tool's body."""
        from llmunix.tools import spec_exec as tool_exec

        started = time.perf_counter()
        args = call.arguments or {}
        decision = self.session.check(self.agent.name, spec.name, args)
        if not decision.allowed:
            result = ToolResult(decision.reason, is_error=True)
        else:
            try:
                full = tool_exec.validate_args(spec, args)
            except ToolError as exc:
                result = ToolResult(str(exc), is_error=True)
            else:
                reply = await self._complete(
                    [{"role": "system", "content": spec.body},
                     {"role": "user", "content": json.dumps(full, ensure_ascii=False)}],
                    None,
                )
                text = text_protocol.strip_thinking(reply.text)
                result = ToolResult(text or "(the model returned no text)", is_error=not text)
        self.session.tool_called(
            call_id=call.id, agent=self.agent.name, tool=spec.name, tool_input=args,
            output=result.output, is_error=result.is_error,
            duration_s=time.perf_counter() - started, decision=decision,
        )
        return _tool_content(result)

    # ------------------------------------------------------------ corrections

    def _strike(self, problem: str, note: str) -> None:
        """Count an unusable reply, noting in the trace (and live view) what llmunix did."""
        self.strikes += 1
        limit = self.rt.config.max_retries
        if self.strikes > limit:
            self.session.text(self.agent.name, f"[llmunix] {note}; giving up")
            raise _GaveUp(
                f"the model sent {self.strikes} unusable replies in a row (the last: {problem})",
                hint="try a stronger model; for a model without native tool calling, list it in "
                     "text_tools in the [openai] section of llmunix.toml",
            )
        self.session.text(self.agent.name,
                          f"[llmunix] {note}; told the model ({self.strikes}/{limit})")

    def _add_user(self, text: str) -> None:
        """A message to the model; merged into a trailing user message, because some chat
        templates refuse two user messages in a row."""
        last = self.messages[-1]
        if last["role"] == "user" and isinstance(last.get("content"), str):
            last["content"] = f"{last['content']}\n\n{text}"
        else:
            self.messages.append({"role": "user", "content": text})
