"""`--output-format stream-json` / `json`: a run in the shapes Claude Code's print mode writes,
so a consumer of `claude -p --output-format stream-json` reads llmunix unchanged.

Claude Code's shapes: `system`/`init` (session id, cwd, model, tools, agents), `assistant`
messages with `text` and `tool_use` blocks, `user` messages with `tool_result` blocks, and one
`result` (subtype, is_error, duration, turns, usage, cost, permission denials) as the last line.
llmunix's own events come as further types a Claude Code consumer skips: `llmunix_mode`,
`llmunix_policy` (a refused call), `llmunix_subagent_start` / `llmunix_subagent_end`, and
`llmunix_<event>` for any other. Every line carries `session_id` (the trace id), `uuid` and
`timestamp`. A run that cannot start still ends with a `result` holding the error.
"""

from __future__ import annotations

import json
import sys
import uuid
from datetime import datetime, timezone
from typing import Any, TextIO

from llmunix.trace.events import (
    AssistantText,
    Event,
    ModeChosen,
    RunFinished,
    RunStarted,
    SubagentFinished,
    SubagentStarted,
    TextDelta,
    ToolCalled,
    ToolStarted,
    UsageUpdated,
)

DELEGATION_TOOL = "Agent"


def timestamp() -> str:
    """UTC with milliseconds, as Claude Code stamps its stream-json lines."""
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def result_subtype(status: str, reason: str) -> str:
    """Claude Code's result subtypes for llmunix's run statuses."""
    if status == "success":
        return "success"
    if status == "stopped" and reason.startswith("max turns"):
        return "error_max_turns"
    if status == "stopped" and reason.startswith("budget"):
        return "error_max_budget_usd"
    return "error_during_execution"


class StreamJsonView:
    """`lines=True`: every message as it happens (stream-json); False: only the result (json)."""

    def __init__(self, out: TextIO | None = None, *, lines: bool = True,
                 partial: bool = False) -> None:
        self.out = out or sys.stdout
        self.lines = lines
        self.partial = partial  # --include-partial-messages: text deltas as stream_event lines
        self.session_id = ""
        self.model = ""
        self.open_calls: dict[str, str] = {}  # tool_use id -> agent, until its result
        self.delegations: list[tuple[str, str]] = []  # (sub-agent, Agent call id), innermost last
        self.denials: list[dict[str, Any]] = []
        self.pending_result: dict[str, Any] | None = None  # held: a fallback run may follow
        self.started = False
        self.early: list[dict[str, Any]] = []  # lines before the run started
        self.ended = False
        self.messages = 0

    # ------------------------------------------------------------ output

    def _emit(self, data: dict[str, Any], *, always: bool = False) -> None:
        if not (self.lines or always):
            return
        if not self.started and data.get("type") != "result":
            data["timestamp"] = timestamp()  # when it happened
            self.early.append(data)  # the mode decision comes before the run: after init
            return
        data.setdefault("session_id", self.session_id)
        data["uuid"] = str(uuid.uuid4())
        data.setdefault("timestamp", timestamp())
        self.out.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")
        self.out.flush()

    def _parent(self, agent: str) -> str | None:
        for name, call_id in reversed(self.delegations):
            if name == agent:
                return call_id
        return None

    def _message_id(self) -> str:
        self.messages += 1
        return f"msg_llmunix_{self.messages:04d}"

    def _assistant(self, agent: str, content: list[dict[str, Any]]) -> None:
        self._emit({
            "type": "assistant",
            "message": {"id": self._message_id(), "type": "message", "role": "assistant",
                        "model": self.model or "", "content": content, "stop_reason": None,
                        "stop_sequence": None, "usage": None},
            "parent_tool_use_id": self._parent(agent),
            "agent": agent,
        })

    def _tool_use(self, agent: str, call_id: str, tool: str, tool_input: Any) -> None:
        self.open_calls[call_id] = agent
        self._assistant(agent, [{"type": "tool_use", "id": call_id, "name": tool,
                                 "input": tool_input}])

    def _tool_result(self, agent: str, call_id: str, content: str, is_error: bool) -> None:
        self.open_calls.pop(call_id, None)
        self._emit({
            "type": "user",
            "message": {"role": "user", "content": [{"type": "tool_result",
                                                     "tool_use_id": call_id,
                                                     "content": content,
                                                     "is_error": is_error}]},
            "parent_tool_use_id": self._parent(agent),
            "agent": agent,
        })

    # ------------------------------------------------------------ events

    def __call__(self, event: Event) -> None:
        if self.pending_result is not None and isinstance(event, (ModeChosen, RunStarted)):
            # A follower run failed and a learner run follows: the first run's end is only a
            # step of this output; the last run's result ends it.
            held, self.pending_result = self.pending_result, None
            self._emit({"type": "llmunix_run_finished", **held["llmunix"]})
        handler = getattr(self, f"_on_{type(event).__name__}", None)
        if handler is not None:
            handler(event)
        elif isinstance(event, TextDelta):
            if self.partial:
                self._emit({"type": "stream_event", "event": {
                    "type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": event.text}},
                    "parent_tool_use_id": self._parent(event.agent), "agent": event.agent})
        elif not isinstance(event, UsageUpdated):
            data = event.to_dict()
            self._emit({"type": "llmunix_" + str(data.pop("event")), **data})

    def _on_RunStarted(self, e: RunStarted) -> None:
        self.model = e.model
        if self.started:
            self._emit({"type": "llmunix_run_started", "trace_id": e.trace_id,
                        "mode": e.mode, "trace_path": e.trace_path})
            return
        self.started = True
        self.session_id = e.trace_id
        self._emit({
            "type": "system", "subtype": "init", "cwd": e.cwd, "session_id": e.trace_id,
            "tools": list(e.tools), "mcp_servers": [], "model": e.model,
            "permissionMode": "default", "slash_commands": [], "apiKeySource": "none",
            "output_style": "default", "agents": list(e.agents),
            "llmunix": {"trace_id": e.trace_id, "goal": e.goal, "project": e.project,
                        "agent": e.agent, "runtime": e.runtime, "mode": e.mode,
                        "trace_path": e.trace_path},
        })
        early, self.early = self.early, []
        for data in early:
            self._emit(data)

    def _on_ModeChosen(self, e: ModeChosen) -> None:
        self._emit({"type": "llmunix_mode", "mode": e.mode, "score": e.score,
                    "trace_id": e.trace_id, "reason": e.reason})

    def _on_AssistantText(self, e: AssistantText) -> None:
        self._assistant(e.agent, [{"type": "text", "text": e.text}])

    def _on_ToolStarted(self, e: ToolStarted) -> None:
        self._tool_use(e.agent, e.call_id, e.tool, e.input)

    def _on_ToolCalled(self, e: ToolCalled) -> None:
        if e.call_id not in self.open_calls:  # refused before it started: Claude Code still
            self._tool_use(e.agent, e.call_id, e.tool, e.input)  # shows the model's call
        if e.decision == "denied":
            self.denials.append({"tool_name": e.tool, "tool_use_id": e.call_id,
                                 "tool_input": e.input})
            self._emit({"type": "llmunix_policy", "decision": "denied", "tool": e.tool,
                        "tool_use_id": e.call_id, "agent": e.agent, "reason": e.reason})
        self._tool_result(e.agent, e.call_id, e.output, e.is_error)

    def _on_SubagentStarted(self, e: SubagentStarted) -> None:
        if e.call_id not in self.open_calls:
            self._tool_use(e.parent, e.call_id, DELEGATION_TOOL,
                           {"subagent_type": e.agent, "prompt": e.prompt})
        self._emit({"type": "llmunix_subagent_start", "agent": e.agent, "parent": e.parent,
                    "tool_use_id": e.call_id, "spec_hash": e.spec_hash})
        self.delegations.append((e.agent, e.call_id))

    def _on_SubagentFinished(self, e: SubagentFinished) -> None:
        if self.delegations and self.delegations[-1][1] == e.call_id:
            self.delegations.pop()
        self._emit({"type": "llmunix_subagent_end", "agent": e.agent, "parent": e.parent,
                    "tool_use_id": e.call_id})
        if e.call_id in self.open_calls:
            self._tool_result(e.parent, e.call_id, e.result, e.result.startswith("Error"))

    def _on_RunFinished(self, e: RunFinished) -> None:
        duration_ms = int(round(e.duration_s * 1000))
        is_error = e.status != "success"
        result: dict[str, Any] = {
            "type": "result", "subtype": result_subtype(e.status, e.reason),
            "is_error": is_error, "duration_ms": duration_ms, "duration_api_ms": duration_ms,
            "num_turns": e.turns, "result": e.result if not is_error else (e.result or e.reason),
            "session_id": self.session_id or e.trace_id, "total_cost_usd": e.cost_usd,
            "usage": {"input_tokens": e.input_tokens, "output_tokens": e.output_tokens,
                      "cache_read_input_tokens": e.cache_read_tokens,
                      "cache_creation_input_tokens": 0},
            "permission_denials": list(self.denials), "stop_reason": None,
            "terminal_reason": "completed" if e.status == "success" else e.status,
            "llmunix": {"trace_id": e.trace_id, "status": e.status, "reason": e.reason,
                        "trace_path": e.trace_path, **e.extra},
        }
        if is_error:
            result["errors"] = [e.reason] if e.reason else []
        self.pending_result = result

    # ------------------------------------------------------------ the end

    def fail(self, message: str) -> None:
        """The run could not start (or broke outside the run): end with an error result."""
        if self.pending_result is not None or self.ended:
            return
        self.pending_result = {
            "type": "result", "subtype": "error_during_execution", "is_error": True,
            "duration_ms": 0, "duration_api_ms": 0, "num_turns": 0, "result": message,
            "total_cost_usd": 0.0,
            "usage": {"input_tokens": 0, "output_tokens": 0, "cache_read_input_tokens": 0,
                      "cache_creation_input_tokens": 0},
            "permission_denials": list(self.denials), "stop_reason": None,
            "terminal_reason": "error", "errors": [message],
            "llmunix": {"status": "error", "reason": message},
        }

    def close(self) -> None:
        if self.ended or self.pending_result is None:
            return
        self.ended = True
        held, self.pending_result = self.pending_result, None
        self._emit(held, always=True)
