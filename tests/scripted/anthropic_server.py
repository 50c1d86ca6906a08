"""A scripted Anthropic Messages API server on 127.0.0.1, for driving the real Claude Code CLI.

Usage::

    from tests.scripted.anthropic_server import AnthropicServer, reply, text, tool_use

    with AnthropicServer() as server:            # or the ``anthropic_server`` fixture
        server.enqueue(
            tool_use("Write", {"file_path": "a.txt", "content": "hi"}),  # reply 1: one block
            reply(text("Writing."), tool_use("Read", {"file_path": "a.txt"}),
                  usage={"input_tokens": 120, "output_tokens": 30}),      # reply 2: two blocks
            "done",                                                     # reply 3: text
        )
        server.enqueue(tool_use("Write", {...}), "sub done", when="MARKER-7")  # routed
        env = {"ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_API_KEY": "test",
               "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "HOME": str(tmp_path)}
        ... run the SDK with ClaudeAgentOptions(env=env, ...) ...
        server.assert_script_used()
        req = server.model_requests()[0]
        server.system_prompt(req), server.tool_names(req), server.messages(req)

Each ``enqueue`` item is one reply: a ``Message`` from ``reply()`` / ``error()``, a single block
from ``text()`` / ``tool_use()`` / ``thinking()``, a list of blocks, or a str (a text reply). The
stop reason is ``tool_use`` when the reply holds a tool call, else ``end_turn``. Replies are
streamed as server-sent events when the request says ``"stream": true`` (the CLI always does),
else returned as one JSON message.

Routing: ``when=`` is a predicate on the recorded ``Request`` or a str that must occur in the
request's system prompt (a sub-agent's system prompt holds its ``AgentDefinition.prompt``, so
put a marker there; ``is_subagent`` / ``is_main_agent`` are ready-made predicates). Routed
replies are tried before unrouted ones.

Auxiliary requests (answered "ok" without consuming the script, ``kind == "aux"``): those
``is_auxiliary`` recognises (``max_tokens: 1`` probes such as the quota check, the
agent-summary side call) and anything matched by ``server.mark_auxiliary(when)``.
``POST /v1/messages/count_tokens`` answers an estimate; other paths are recorded and get 404.
When the script is empty a model request gets the text ``EXHAUSTED_TEXT`` with ``end_turn`` (so a
run ends instead of hanging) and is recorded in ``server.exhausted``.

What the bundled CLI (2.1.330) was seen to send: only agent turns, ``POST
/v1/messages?beta=true`` with ``stream: true`` and model ``claude-opus-5-5`` (an
``AgentDefinition(model="haiku")`` sub-agent sends ``claude-haiku-5-5``); no count_tokens, title,
quota or other side calls, in plain, multi-turn, Bash and sub-agent runs, even without
CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC. The system blocks are an attribution line
("x-anthropic-billing-header: ...; cc_is_subagent=true;" in a sub-agent), the SDK preamble, then
the configured prompt; the environment text comes as a ``role: system`` message. Tools always
include a ``DeferredToolPlaceholder`` (``defer_loading``), which ``tool_names`` leaves out.
Sub-agents run in the background by default: the main agent then gets an "agent launched"
tool result at once, an extra notification turn later, and the number of main-agent turns
depends on timing. Script ``"run_in_background": False`` in the ``Agent`` tool input (or set
CLAUDE_CODE_DISABLE_BACKGROUND_TASKS=1) for a deterministic run: main turn (Agent call),
sub-agent turns, main turn with the sub-agent's report as the tool result.
Errors: 403 ends the run at once; 400 makes the CLI re-send with fewer beta headers (up to 3
more requests); 408/409/429/5xx are retried with back-off unless CLAUDE_CODE_MAX_RETRIES=0.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from tests.scripted import (
    AUX,
    COUNT_TOKENS,
    EXHAUSTED_TEXT,
    MODEL,
    OTHER,
    ReplyBase,
    Request,
    ScriptedServer,
)

__all__ = [
    "AnthropicServer",
    "EXHAUSTED_TEXT",
    "Message",
    "Request",
    "error",
    "is_auxiliary",
    "is_main_agent",
    "is_subagent",
    "reply",
    "text",
    "thinking",
    "tool_use",
]

DEFAULT_USAGE = {"input_tokens": 10, "output_tokens": 5}
_ids = itertools.count(1)


# ---- reply helpers -----------------------------------------------------------------------
def text(s: str) -> dict[str, Any]:
    return {"type": "text", "text": s}


def tool_use(
    name: str, input: dict[str, Any] | None = None, id: str | None = None
) -> dict[str, Any]:
    return {
        "type": "tool_use",
        "id": id or f"toolu_scripted_{next(_ids):04d}",
        "name": name,
        "input": input or {},
    }


def thinking(s: str, signature: str = "scripted-signature") -> dict[str, Any]:
    return {"type": "thinking", "thinking": s, "signature": signature}


@dataclass
class Message(ReplyBase):
    """One scripted assistant message (or an HTTP error when ``status`` is set)."""

    blocks: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str | None = None  # None: tool_use if a block is a tool call, else end_turn
    usage: dict[str, int] | None = None
    model: str | None = None  # None: echo the request's model

    def final_stop_reason(self) -> str:
        if self.stop_reason:
            return self.stop_reason
        return "tool_use" if any(b["type"] == "tool_use" for b in self.blocks) else "end_turn"


def reply(
    *blocks: dict[str, Any] | str,
    stop_reason: str | None = None,
    usage: dict[str, int] | None = None,
    delay: float = 0.0,
    model: str | None = None,
) -> Message:
    """A message made of ``blocks`` (str items become text blocks)."""
    return Message(
        blocks=[text(b) if isinstance(b, str) else b for b in blocks],
        stop_reason=stop_reason,
        usage=usage,
        delay=delay,
        model=model,
    )


def error(
    status: int = 500,
    message: str = "scripted error",
    type: str = "api_error",
    delay: float = 0.0,
) -> Message:
    """An HTTP error reply. The CLI retries 5xx with back-off: to fail a run with one request,
    set CLAUDE_CODE_MAX_RETRIES=0 (or use 403; a 400 is re-sent with fewer beta headers)."""
    body = {"type": "error", "error": {"type": type, "message": message}}
    return Message(status=status, error_body=body, delay=delay)


# ---- classification ----------------------------------------------------------------------
def _system_text(body: Any) -> str:
    system = body.get("system") if isinstance(body, dict) else None
    if isinstance(system, str):
        return system
    if isinstance(system, list):
        return "\n".join(b.get("text", "") for b in system if isinstance(b, dict))
    return ""


# Side calls the CLI can make (not seen in the plain / sub-agent / Bash / multi-turn SDK runs
# of CLI 2.1.330, which send only agent turns, but known to exist): each is matched on the text
# of the request's last user message.
_SIDE_CALL_SIGNATURES = {
    "most recent action in 3-5 words": "agent-summary",
}


def _last_user_text(body: Any) -> str:
    messages = body.get("messages") if isinstance(body, dict) else None
    for msg in reversed(messages or []):
        if not isinstance(msg, dict) or msg.get("role") != "user":
            continue
        content = msg.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "\n".join(
                b.get("text", "")
                for b in content
                if isinstance(b, dict) and b.get("type") == "text"
            )
        return ""
    return ""


def is_auxiliary(req: Request) -> str | None:
    """Why a /v1/messages request is a CLI side call rather than an agent turn, or None.

    Quota checks and model validation ask for ``max_tokens: 1`` (the quota check's prompt is
    the word "quota"); the agent-summary fork asks for a 3-5 word description. Anything else
    a test needs to keep out of its script: ``server.mark_auxiliary(when)``."""
    body = req.body if isinstance(req.body, dict) else {}
    if body.get("max_tokens") == 1:
        return "probe (max_tokens=1)"
    last = _last_user_text(body)
    if last.strip() == "quota":
        return "quota-check"
    for signature, reason in _SIDE_CALL_SIGNATURES.items():
        if signature in last:
            return reason
    return None


def is_subagent(req: Request) -> bool:
    """A request made by a sub-agent (the CLI marks them in its attribution system block)."""
    return "cc_is_subagent=true" in _system_text(req.body)


def is_main_agent(req: Request) -> bool:
    return not is_subagent(req)


# ---- server ------------------------------------------------------------------------------
class AnthropicServer(ScriptedServer):
    """Scripted Anthropic Messages API. ``url`` is the base url for ANTHROPIC_BASE_URL."""

    @property
    def url(self) -> str:
        return self.base

    # ---- inspection ----------------------------------------------------------------------
    def system_prompt(self, req: Request) -> str:
        """The top-level system blocks joined by newlines. With the CLI the first block is its
        attribution line ("x-anthropic-billing-header: ..."), then its preamble, then ours."""
        return _system_text(req.body)

    def tool_names(self, req: Request, *, deferred: bool = False) -> list[str]:
        """Names of the tools offered. Tools marked ``defer_loading`` (the CLI always adds a
        ``DeferredToolPlaceholder``) are left out unless ``deferred``."""
        body = req.body if isinstance(req.body, dict) else {}
        return [
            t.get("name", "")
            for t in body.get("tools") or []
            if deferred or not t.get("defer_loading")
        ]

    def messages(self, req: Request) -> list[dict[str, Any]]:
        body = req.body if isinstance(req.body, dict) else {}
        return list(body.get("messages") or [])

    def last_user_text(self, req: Request) -> str:
        return _last_user_text(req.body)

    def tool_results(self, req: Request) -> list[dict[str, Any]]:
        """The tool_result blocks of the request's last message."""
        msgs = self.messages(req)
        if not msgs or not isinstance(msgs[-1].get("content"), list):
            return []
        return [b for b in msgs[-1]["content"] if b.get("type") == "tool_result"]

    # ---- subclass hooks ------------------------------------------------------------------
    def _classify(self, req: Request) -> tuple[str, str | None]:
        if req.method == "POST" and req.path == "/v1/messages":
            reason = is_auxiliary(req)
            return (AUX, reason) if reason else (MODEL, None)
        if req.method == "POST" and req.path == "/v1/messages/count_tokens":
            return COUNT_TOKENS, None
        return OTHER, None

    def _coerce(self, item: Any) -> Message:
        if isinstance(item, Message):
            return item
        if isinstance(item, str):
            return reply(item)
        if isinstance(item, dict):
            return reply(item)
        if isinstance(item, (list, tuple)):
            return reply(*item)
        raise TypeError(f"cannot script {item!r} as an Anthropic reply")

    def _default_aux_reply(self, req: Request) -> Message:
        return reply("ok", usage={"input_tokens": 1, "output_tokens": 1})

    def _respond_other(self, handler: Any, req: Request) -> None:
        if req.kind == COUNT_TOKENS:
            self._send_json(handler, 200, {"input_tokens": max(1, len(req.raw) // 4)})
            return
        assert req.kind == OTHER
        body = {"type": "error", "error": {"type": "not_found_error", "message": req.path}}
        self._send_json(handler, 404, body)

    def _respond(self, handler: Any, req: Request, msg: Message) -> None:
        body = req.body if isinstance(req.body, dict) else {}
        model = msg.model or body.get("model") or "scripted-model"
        usage = {**DEFAULT_USAGE, **(msg.usage or {})}
        message_id = f"msg_scripted_{req.index:04d}"
        stop = msg.final_stop_reason()
        if not body.get("stream"):
            self._send_json(
                handler,
                200,
                {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": msg.blocks,
                    "stop_reason": stop,
                    "stop_sequence": None,
                    "usage": usage,
                },
            )
            return
        self._start_sse(handler)

        def send(event: str, data: dict[str, Any]) -> None:
            self._write_sse(handler, json.dumps({"type": event, **data}), event=event)

        start_usage = {**usage, "output_tokens": 1}
        send(
            "message_start",
            {
                "message": {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": start_usage,
                }
            },
        )
        for i, block in enumerate(msg.blocks):
            kind = block["type"]
            if kind == "text":
                send("content_block_start", {"index": i, "content_block": text("")})
                for piece in _halves(block["text"]):
                    delta = {"type": "text_delta", "text": piece}
                    send("content_block_delta", {"index": i, "delta": delta})
            elif kind == "tool_use":
                start = {**block, "input": {}}
                send("content_block_start", {"index": i, "content_block": start})
                for piece in _halves(json.dumps(block["input"])):
                    delta = {"type": "input_json_delta", "partial_json": piece}
                    send("content_block_delta", {"index": i, "delta": delta})
            elif kind == "thinking":
                start = {"type": "thinking", "thinking": "", "signature": ""}
                send("content_block_start", {"index": i, "content_block": start})
                delta = {"type": "thinking_delta", "thinking": block["thinking"]}
                send("content_block_delta", {"index": i, "delta": delta})
                delta = {"type": "signature_delta", "signature": block["signature"]}
                send("content_block_delta", {"index": i, "delta": delta})
            else:  # any other block is sent whole
                send("content_block_start", {"index": i, "content_block": block})
            send("content_block_stop", {"index": i})
        send(
            "message_delta",
            {"delta": {"stop_reason": stop, "stop_sequence": None}, "usage": usage},
        )
        send("message_stop", {})


def _halves(s: str) -> list[str]:
    """Split a payload in two deltas so clients really exercise incremental assembly."""
    if len(s) < 2:
        return [s]
    mid = len(s) // 2
    return [s[:mid], s[mid:]]
