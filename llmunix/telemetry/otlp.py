"""A run's events as OpenTelemetry spans, exported over OTLP/HTTP, following the GenAI semantic
conventions: `invoke_agent {agent}` for the goal's agent and each delegation (nested),
`chat {model}` for each model turn, `execute_tool {tool}` for each tool call.

The OpenTelemetry SDK is imported here only, and only when an endpoint is configured.
Telemetry never fails a run: an exporter that cannot reach its receiver gives up quietly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from llmunix import __version__
from llmunix.trace.events import (
    AssistantText,
    Event,
    RunFinished,
    RunStarted,
    SubagentFinished,
    SubagentStarted,
    ToolCalled,
    ToolStarted,
    UsageUpdated,
)

EXPORT_TIMEOUT_S = 5.0  # a receiver that is down must not hold the end of a run for long
PROVIDERS = {"claude": "anthropic", "openai": "openai", "replay": "llmunix.replay"}


class SpanRecorder:
    """Subscribes to a run's events; builds and exports its spans."""

    def __init__(self, endpoint: str, *, service_name: str = "llmunix",
                 redact: Callable[[str], str] = lambda s: s, provider: Any = None) -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        self.redact = redact
        if provider is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider = TracerProvider(resource=Resource.create({
                "service.name": service_name, "service.version": __version__}))
            provider.add_span_processor(BatchSpanProcessor(
                OTLPSpanExporter(endpoint=endpoint, timeout=EXPORT_TIMEOUT_S)))
        self.provider = provider
        self.tracer = provider.get_tracer("llmunix", __version__)
        self.runtime = ""
        self.model = ""
        self.agents: list[tuple[str, Any]] = []  # (agent, its invoke_agent span), innermost last
        self.tools: dict[str, Any] = {}  # call id -> execute_tool span
        self.chat: Any = None  # the model turn in progress
        self.chat_usage = [0, 0]  # tokens of that turn: input, output
        self.usage = (0, 0, 0)  # turns, input, output: the run's totals at the last update
        self.last_activity = time.time_ns()

    # ------------------------------------------------------------ helpers

    def _context(self):
        from opentelemetry import trace

        return trace.set_span_in_context(self.agents[-1][1]) if self.agents else None

    def _start(self, name: str, attributes: dict[str, Any], *, kind=None,
               start: int | None = None):
        from opentelemetry.trace import SpanKind

        return self.tracer.start_span(name, context=self._context(),
                                      kind=kind if kind is not None else SpanKind.INTERNAL,
                                      attributes=attributes, start_time=start or time.time_ns())

    def _end_chat(self, now: int) -> None:
        if self.chat is None:
            return
        self.chat.set_attribute("gen_ai.usage.input_tokens", self.chat_usage[0])
        self.chat.set_attribute("gen_ai.usage.output_tokens", self.chat_usage[1])
        self.chat.end(end_time=now)
        self.chat = None
        self.chat_usage = [0, 0]

    def _activity(self) -> int:
        now = time.time_ns()
        self._end_chat(now)
        self.last_activity = now
        return now

    # ------------------------------------------------------------ events

    def __call__(self, event: Event) -> None:
        try:
            handler = getattr(self, f"_on_{type(event).__name__}", None)
            if handler is not None:
                handler(event)
        except Exception:  # noqa: BLE001 - telemetry never breaks a run
            pass

    def _agent_attributes(self, agent: str) -> dict[str, Any]:
        attrs = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent,
                 "gen_ai.provider.name": PROVIDERS.get(self.runtime, self.runtime)}
        if self.model:
            attrs["gen_ai.request.model"] = self.model
        return attrs

    def _on_RunStarted(self, e: RunStarted) -> None:
        self.runtime, self.model = e.runtime, e.model
        now = self._activity()
        attrs = self._agent_attributes(e.agent)
        attrs.update({"gen_ai.conversation.id": e.trace_id, "llmunix.project": e.project,
                      "llmunix.mode": e.mode, "llmunix.runtime": e.runtime,
                      "llmunix.goal": self.redact(e.goal)})
        self.agents.append((e.agent, self._start(f"invoke_agent {e.agent}", attrs, start=now)))

    def _on_SubagentStarted(self, e: SubagentStarted) -> None:
        now = self._activity()
        attrs = self._agent_attributes(e.agent)
        attrs["gen_ai.tool.call.id"] = e.call_id
        if e.spec_hash:
            attrs["llmunix.spec_hash"] = e.spec_hash
        self.agents.append((e.agent, self._start(f"invoke_agent {e.agent}", attrs, start=now)))

    def _on_SubagentFinished(self, e: SubagentFinished) -> None:
        now = self._activity()
        for i in range(len(self.agents) - 1, 0, -1):  # never the root: the run ends it
            if self.agents[i][0] == e.agent:
                _, span = self.agents.pop(i)
                span.end(end_time=now)
                break

    def _on_UsageUpdated(self, e: UsageUpdated) -> None:
        turns, before_in, before_out = self.usage
        self.usage = (e.turns, e.input_tokens, e.output_tokens)
        if e.turns > turns:
            from opentelemetry.trace import SpanKind

            self._end_chat(time.time_ns())
            attrs = {"gen_ai.operation.name": "chat",
                     "gen_ai.provider.name": PROVIDERS.get(self.runtime, self.runtime)}
            if self.model:
                attrs["gen_ai.request.model"] = self.model
            if self.agents:
                attrs["gen_ai.agent.name"] = self.agents[-1][0]
            self.chat = self._start(f"chat {self.model}".strip(), attrs, kind=SpanKind.CLIENT,
                                    start=self.last_activity)
        if self.chat is not None:
            self.chat_usage[0] += max(0, e.input_tokens - before_in)
            self.chat_usage[1] += max(0, e.output_tokens - before_out)

    def _on_AssistantText(self, e: AssistantText) -> None:
        self._activity()

    def _tool_attributes(self, call_id: str, tool: str, tool_input: Any) -> dict[str, Any]:
        arguments = json.dumps(tool_input, ensure_ascii=False, default=str)
        return {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool,
                "gen_ai.tool.call.id": call_id, "gen_ai.tool.type": "function",
                "gen_ai.tool.call.arguments": self.redact(arguments)}

    def _on_ToolStarted(self, e: ToolStarted) -> None:
        now = self._activity()
        self.tools[e.call_id] = self._start(
            f"execute_tool {e.tool}", self._tool_attributes(e.call_id, e.tool, e.input), start=now)

    def _on_ToolCalled(self, e: ToolCalled) -> None:
        from opentelemetry.trace import Status, StatusCode

        now = self._activity()
        span = self.tools.pop(e.call_id, None)
        if span is None:  # refused before it started
            span = self._start(f"execute_tool {e.tool}",
                               self._tool_attributes(e.call_id, e.tool, e.input), start=now)
        span.set_attribute("llmunix.decision", e.decision)
        if e.reason:
            span.set_attribute("llmunix.reason", self.redact(e.reason))
        if e.is_error or e.decision == "denied":
            kind = "interrupted" if e.interrupted else \
                "denied" if e.decision == "denied" else "tool_error"
            span.set_attribute("error.type", kind)
            span.set_status(Status(StatusCode.ERROR, self.redact(e.reason or e.output[:200])))
        span.end(end_time=now)

    def _on_RunFinished(self, e: RunFinished) -> None:
        from opentelemetry.trace import Status, StatusCode

        now = self._activity()
        for span in self.tools.values():
            span.end(end_time=now)
        self.tools.clear()
        while len(self.agents) > 1:
            self.agents.pop()[1].end(end_time=now)
        if self.agents:
            _, root = self.agents.pop()
            root.set_attribute("gen_ai.usage.input_tokens", e.input_tokens)
            root.set_attribute("gen_ai.usage.output_tokens", e.output_tokens)
            root.set_attribute("llmunix.turns", e.turns)
            root.set_attribute("llmunix.cost_usd", e.cost_usd)
            root.set_attribute("llmunix.status", e.status)
            if e.status != "success":
                root.set_attribute("error.type", e.status)
                root.set_status(Status(StatusCode.ERROR, self.redact(e.reason)))
            root.end(end_time=now)

    def close(self) -> None:
        """Send what is left; at most EXPORT_TIMEOUT_S when the receiver does not answer."""
        try:
            self.provider.force_flush(int(EXPORT_TIMEOUT_S * 1000))
            self.provider.shutdown()
        except Exception:  # noqa: BLE001 - telemetry never breaks a run
            pass
