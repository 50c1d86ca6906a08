"""A scripted OpenAI chat-completions server on 127.0.0.1, for driving OpenAI-compatible clients.

Usage::

    from tests.scripted.openai_server import OpenAIServer, error, raw, reply, text, tool_call

    with OpenAIServer() as server:               # or the ``openai_server`` fixture
        server.enqueue(
            tool_call("write_file", {"path": "a.txt", "content": "hi"}),  # reply 1
            reply(text("Two calls:"), tool_call("read", {"path": "a"}),
                  tool_call("read", '{"path": broken'),                   # arguments kept as-is
                  usage={"prompt_tokens": 50, "completion_tokens": 7}),   # reply 2
            "done",                                                       # reply 3: text
        )
        client = openai.OpenAI(base_url=server.url, api_key="test")      # url ends in /v1
        ...
        server.assert_script_used()
        req = server.model_requests()[0]
        server.system_prompt(req), server.tool_names(req), server.messages(req)

Each ``enqueue`` item is one reply: a ``Completion`` from ``reply()`` / ``error()`` / ``raw()``,
a single block from ``text()`` / ``tool_call()``, a list of blocks, or a str (a text reply).
Text blocks are joined into ``message.content``; ``reply()`` with no blocks has content null
and ``reply("")`` an empty string. ``tool_call`` arguments given as a dict are JSON-encoded; a
str is sent verbatim, so invalid JSON can be scripted. ``finish_reason`` is ``tool_calls``
when the reply holds a tool call, else ``stop``. ``delay=`` sleeps before answering;
``error(status, retry_after=)`` answers an HTTP error; ``raw(body, status=, content_type=)``
sends bytes as-is (e.g. a truncated SSE stream). ``reply(..., cut_after=N)`` streams N content
pieces and then drops the connection mid-body (a server that died); ``endless()`` streams text
until the client goes away (a reply that never ends).

``OpenAIServer(quirks="llama.cpp")`` behaves like llama-cpp-python's server (0.3.x) with
``--chat_format chatml-function-calling``: an assistant message with ``"content": null`` is
refused with HTTP 500 and a pydantic dump; streams carry no usage (``stream_options`` is
ignored); every tool-call delta repeats the call's id and name and copies itself into the old
``function_call`` field; ``POST /extras/tokenize/count`` counts whitespace-separated words;
``GET /v1/models`` lists a .gguf path. Non-streamed replies keep their usage.

Streaming (``"stream": true``) sends ``chat.completion.chunk`` events: the role, the content in
pieces, each tool call's id/name then its arguments in pieces, a final chunk with
``finish_reason``, a usage chunk if ``stream_options.include_usage``, then ``data: [DONE]``.

Routing: ``when=`` is a predicate on the recorded ``Request`` or a str that must occur in the
request's system messages; routed replies are tried before unrouted ones. When the script is
empty a request gets the text ``EXHAUSTED_TEXT`` (finish_reason ``stop``) and is recorded in
``server.exhausted``. ``GET /v1/models`` lists ``server.models``; other paths get 404.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from tests.scripted import (
    EXHAUSTED_TEXT,
    MODEL,
    OTHER,
    ReplyBase,
    Request,
    ScriptedServer,
)

__all__ = [
    "EXHAUSTED_TEXT",
    "Completion",
    "OpenAIServer",
    "Request",
    "error",
    "raw",
    "reply",
    "text",
    "tool_call",
]

DEFAULT_USAGE = {"prompt_tokens": 10, "completion_tokens": 5}
_ids = itertools.count(1)


# ---- reply helpers -----------------------------------------------------------------------
def text(s: str) -> dict[str, Any]:
    return {"type": "text", "text": s}


def tool_call(
    name: str, arguments: dict[str, Any] | str | None = None, id: str | None = None
) -> dict[str, Any]:
    """A tool call; ``arguments`` as a dict is JSON-encoded, as a str is sent verbatim."""
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments)
    return {
        "id": id or f"call_scripted_{next(_ids):04d}",
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


@dataclass
class Completion(ReplyBase):
    """One scripted assistant message (or an HTTP error / raw body when set)."""

    content: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    reasoning: str | None = None  # sent as ``reasoning_content`` (llama.cpp / vLLM style)
    finish_reason: str | None = None  # None: tool_calls if any tool call, else stop
    usage: dict[str, int] | None = None
    model: str | None = None  # None: echo the request's model
    cut_after: int | None = None  # stream this many content pieces, then drop the connection
    endless: bool = False  # stream content until the client goes away

    def final_finish_reason(self) -> str:
        if self.finish_reason:
            return self.finish_reason
        return "tool_calls" if self.tool_calls else "stop"

    def final_usage(self) -> dict[str, int]:
        usage = {**DEFAULT_USAGE, **(self.usage or {})}
        if "total_tokens" not in (self.usage or {}):
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return usage


def reply(
    *blocks: dict[str, Any] | str,
    finish_reason: str | None = None,
    usage: dict[str, int] | None = None,
    delay: float = 0.0,
    model: str | None = None,
    reasoning: str | None = None,
    cut_after: int | None = None,
) -> Completion:
    """A message made of ``blocks`` (str items are text)."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in blocks:
        if isinstance(block, str):
            texts.append(block)
        elif block.get("type") == "text":
            texts.append(block["text"])
        elif block.get("type") == "function":
            calls.append(block)
        else:
            raise TypeError(f"cannot script block {block!r}")
    return Completion(
        content="".join(texts) if texts else None,
        tool_calls=calls,
        reasoning=reasoning,
        finish_reason=finish_reason,
        usage=usage,
        delay=delay,
        model=model,
        cut_after=cut_after,
    )


def endless(piece: str = "and on ") -> Completion:
    """A streamed reply that never ends: ``piece`` again and again until the client leaves."""
    return Completion(content=piece, endless=True)


def error(
    status: int = 500,
    message: str = "scripted error",
    type: str = "server_error",
    delay: float = 0.0,
    retry_after: str | None = None,
) -> Completion:
    """An HTTP error reply with an OpenAI-style error body (and a Retry-After header). A client
    that retries takes the next scripted reply with each retry."""
    body = {"error": {"message": message, "type": type, "param": None, "code": None}}
    headers = {"Retry-After": retry_after} if retry_after is not None else None
    return Completion(status=status, error_body=body, delay=delay, headers=headers)


def raw(
    body: bytes | str,
    status: int = 200,
    content_type: str = "application/json",
    delay: float = 0.0,
) -> Completion:
    """Send ``body`` verbatim (malformed JSON, a truncated event stream...)."""
    return Completion(raw=body, status=status, content_type=content_type, delay=delay)


# ---- server ------------------------------------------------------------------------------
class OpenAIServer(ScriptedServer):
    """Scripted OpenAI chat-completions API. ``url`` ends in /v1 (an OpenAI ``base_url``)."""

    def __init__(self, *, models: list[str] | None = None, quirks: str | None = None,
                 **kw: Any) -> None:
        super().__init__(**kw)
        assert quirks in (None, "llama.cpp"), quirks
        self.quirks = quirks
        default = "/models/SmolLM2-135M-Instruct.Q4_1.gguf" if quirks else "scripted-model"
        self.models = list(models or [default])

    @property
    def llama(self) -> bool:
        return self.quirks == "llama.cpp"

    def tokenize_requests(self) -> list[Request]:
        return [r for r in self.other_requests() if r.path == "/extras/tokenize/count"]

    @property
    def url(self) -> str:
        return self.base + "/v1"

    # ---- inspection ----------------------------------------------------------------------
    def messages(self, req: Request) -> list[dict[str, Any]]:
        body = req.body if isinstance(req.body, dict) else {}
        return list(body.get("messages") or [])

    def system_prompt(self, req: Request) -> str:
        """The text of the system (and developer) messages, joined by newlines."""
        return "\n".join(
            _content_text(m.get("content"))
            for m in self.messages(req)
            if m.get("role") in ("system", "developer")
        )

    def tool_names(self, req: Request) -> list[str]:
        body = req.body if isinstance(req.body, dict) else {}
        names = []
        for tool in body.get("tools") or []:
            fn = tool.get("function") if isinstance(tool, dict) else None
            names.append(fn.get("name", "") if isinstance(fn, dict) else "")
        return names

    def tool_results(self, req: Request) -> list[dict[str, Any]]:
        """The ``role: tool`` messages that follow the last assistant message."""
        out: list[dict[str, Any]] = []
        for msg in reversed(self.messages(req)):
            if msg.get("role") != "tool":
                break
            out.append(msg)
        return out[::-1]

    # ---- subclass hooks ------------------------------------------------------------------
    def _classify(self, req: Request) -> tuple[str, str | None]:
        if req.method == "POST" and req.path == "/v1/chat/completions":
            return MODEL, None
        return OTHER, None

    def _coerce(self, item: Any) -> Completion:
        if isinstance(item, Completion):
            return item
        if isinstance(item, (str, dict)):
            return reply(item)
        if isinstance(item, (list, tuple)):
            return reply(*item)
        raise TypeError(f"cannot script {item!r} as an OpenAI reply")

    def _default_aux_reply(self, req: Request) -> Completion:
        return reply("ok", usage={"prompt_tokens": 1, "completion_tokens": 1})

    def _respond_other(self, handler: Any, req: Request) -> None:
        if req.method == "GET" and req.path == "/v1/models":
            data = [
                {"id": m, "object": "model", "created": 0, "owned_by": "scripted"}
                for m in self.models
            ]
            self._send_json(handler, 200, {"object": "list", "data": data})
            return
        if self.llama and req.method == "POST" and req.path == "/extras/tokenize/count":
            text = req.body.get("input", "") if isinstance(req.body, dict) else ""
            self._send_json(handler, 200, {"count": len(str(text).split())})
            return
        if self.llama:
            self._send_json(handler, 404, {"detail": "Not Found"})
            return
        body = {"error": {"message": f"no route {req.path}", "type": "not_found", "code": None}}
        self._send_json(handler, 404, body)

    def _refuse_null_content(self, handler: Any, body: dict[str, Any]) -> bool:
        errors = _null_content_errors(list(body.get("messages") or []))
        if not errors:
            return False
        message = f"{len(errors)} validation errors:\n" + "\n".join(f"  {e}" for e in errors)
        error = {"message": message, "type": "internal_server_error", "param": None,
                 "code": None}
        self._send_json(handler, 500, {"error": error})
        return True

    def _respond(self, handler: Any, req: Request, c: Completion) -> None:
        body = req.body if isinstance(req.body, dict) else {}
        model = c.model or body.get("model") or self.models[0]
        cid = f"chatcmpl-scripted-{req.index:04d}"
        created = int(time.time())
        finish = c.final_finish_reason()
        usage = c.final_usage()
        if self.llama and self._refuse_null_content(handler, body):
            return
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": c.content}
            if c.reasoning is not None:
                message["reasoning_content"] = c.reasoning
            if c.tool_calls:
                message["tool_calls"] = c.tool_calls
            choice = {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
            self._send_json(
                handler,
                200,
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [choice],
                    "usage": usage,
                },
            )
            return

        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        include_usage = include_usage and not self.llama
        self._start_sse(handler, chunked=c.cut_after is not None)

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> None:
            data: dict[str, Any] = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [
                    {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
                ],
            }
            if include_usage:
                data["usage"] = None
            self._write_sse(handler, json.dumps(data))

        if self.llama:
            chunk({"role": "assistant", "content": None, "function_call": None,
                   "tool_calls": None} if c.tool_calls else {"role": "assistant"})
        else:
            chunk({"role": "assistant", "content": "" if c.content is not None else None})
        if c.endless:
            while True:  # until the client goes away (a broken pipe ends the handler)
                chunk({"content": c.content})
                time.sleep(0.01)
        if c.cut_after is not None:
            for piece in list(c.content or "")[: c.cut_after]:
                chunk({"content": piece})
            handler.chunked = False  # no terminating chunk: the body is broken off
            handler.close_connection = True
            return
        if c.reasoning:
            for piece in _halves(c.reasoning):
                chunk({"reasoning_content": piece})
        if c.content:
            for piece in _halves(c.content):
                chunk({"content": piece})
        if self.llama:
            for i, call in enumerate(c.tool_calls):
                for piece in _halves(call["function"]["arguments"]):
                    fn = {"name": call["function"]["name"], "arguments": piece}
                    chunk({"role": None, "content": None, "function_call": fn,
                           "tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                           "function": fn}]})
        for i, call in enumerate([] if self.llama else c.tool_calls):
            head = {
                "index": i,
                "id": call["id"],
                "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""},
            }
            chunk({"tool_calls": [head]})
            for piece in _halves(call["function"]["arguments"]):
                chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
        if self.llama and c.tool_calls:
            chunk({"role": None, "content": None, "function_call": None, "tool_calls": None},
                  finish)
        else:
            chunk({}, finish)
        if include_usage:
            last = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [],
                "usage": usage,
            }
            self._write_sse(handler, json.dumps(last))
        self._write_sse(handler, "[DONE]")


def _null_content_errors(messages: list[Any]) -> list[str]:
    """llama-cpp-python's validation of a message list, for the one rule that bites: assistant
    content must be a string when present. One error per union member, as pydantic reports."""
    errors = []
    for i, msg in enumerate(messages):
        if isinstance(msg, dict) and msg.get("role") == "assistant" and "content" in msg \
                and msg["content"] is None:
            for kind, role in (("System", "system"), ("User", "user"), ("Tool", "tool")):
                errors.append(str({"type": "literal_error",
                                   "loc": ("body", "messages", i,
                                           f"ChatCompletionRequest{kind}Message", "role"),
                                   "msg": f"Input should be '{role}'", "input": "assistant"}))
            errors.append(str({"type": "string_type",
                               "loc": ("body", "messages", i,
                                       "ChatCompletionRequestAssistantMessage", "content"),
                               "msg": "Input should be a valid string", "input": None}))
    return errors


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def _halves(s: str) -> list[str]:
    """Split a payload in two deltas so clients really exercise incremental assembly."""
    if len(s) < 2:
        return [s] if s else []
    mid = len(s) // 2
    return [s[:mid], s[mid:]]
