"""The wire of the openai runtime: JSON requests and server-sent-event streams to an
OpenAI-compatible server, over one pooled httpx2 connection.

Four calls are all the runtime needs (a streamed and a plain chat completion, a GET, a tokenize
POST), so it speaks them itself rather than through the `openai` package, whose import alone
(its generated type modules) costs about 0.75 s of CPU: more than a whole 10-turn run against a
local server. Chunks come as plain dicts; failures as the four errors below, which the runtime
turns into one-line ServerErrors (runtimes/openai_errors.py)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2

from llmunix import __version__

MAX_ERROR_BODY = 64 * 1024  # of an error answer: enough for any message, never a flood
_STREAM = {"Accept": "text/event-stream"}
_STREAM_RAW = {**_STREAM, "Content-Type": "application/json"}  # a body encoded beforehand


class StatusError(Exception):
    """The server answered with an HTTP error status."""

    def __init__(self, status: int, body: Any, headers: dict[str, str], text: str) -> None:
        super().__init__(f"HTTP {status}: {text[:500]}")
        self.status = status
        self.body = body  # parsed JSON when it is JSON, else the text
        self.headers = headers
        self.message = f"Error code: {status} - {text[:500]}"


class TimedOut(Exception):
    """No answer (or no next piece of one) within the request's timeout."""


class Disconnected(Exception):
    """No connection, or it broke; `__cause__` says how."""


class StreamError(Exception):
    """An error event inside a stream that had started well."""

    def __init__(self, body: Any) -> None:
        message = body.get("message") if isinstance(body, dict) else None
        super().__init__(str(message or body))
        self.body = body
        self.message = str(message or body)


def encode(value: Any) -> bytes:
    """JSON as a request body: compact UTF-8, no NaN (servers refuse it)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False).encode("utf-8")


class BodyEncoder:
    """Chat request bodies built from the messages encoded once each: a turn adds two or three
    messages to a history the request sends whole, so re-encoding all of it every turn grows
    with the run (~0.15 ms a request at 100 messages). A message is known by its identity and
    its content's (the agent loop and the pager replace a message's content when they change
    it, as for token counting in context/pager.py); the tool list by its items."""

    def __init__(self) -> None:
        self._messages: dict[int, tuple[dict, Any, Any, bytes]] = {}
        self._tools: tuple[list, bytes] = ([], b"[]")

    def body(self, fields: dict) -> bytes:
        """`fields` encoded as `encode(fields)` would, its messages and tools from the cache."""
        parts = []
        for key, value in fields.items():
            if key == "messages":
                piece = b"[" + b",".join(self._message(m) for m in value) + b"]"
            elif key == "tools":
                piece = self._tool_list(value)
            else:
                piece = encode(value)
            parts.append(encode(key) + b":" + piece)
        if len(self._messages) > 4 * len(fields.get("messages", ())) + 64:
            self._messages.clear()  # messages the pager folded away, or another agent's
        return b"{" + b",".join(parts) + b"}"

    def _message(self, msg: dict) -> bytes:
        content, calls = msg.get("content"), msg.get("tool_calls")
        known = self._messages.get(id(msg))
        if known is not None and known[0] is msg and known[1] is content and known[2] is calls:
            return known[3]
        data = encode(msg)
        self._messages[id(msg)] = (msg, content, calls, data)
        return data

    def _tool_list(self, tools: list) -> bytes:
        known, data = self._tools
        if len(known) == len(tools) and all(a is b for a, b in zip(known, tools, strict=True)):
            return data
        data = encode(tools)
        self._tools = (list(tools), data)
        return data


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


class Client:
    """Requests to one server: `base_url` for relative paths, absolute URLs as they are."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self.base_url = base_url.rstrip("/")
        # Over plain http (local servers) no certificate is ever checked: no TLS context is
        # built, which costs ~60 ms per run.
        verify = not self.base_url.startswith("http://")
        self._http = httpx2.AsyncClient(
            verify=verify, follow_redirects=True,
            headers={"Authorization": f"Bearer {api_key}",
                     "User-Agent": f"llmunix/{__version__}"})

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def _url(self, path: str) -> str:
        return path if "://" in path else self.base_url + path

    async def post(self, path: str, body: dict, *, timeout: float) -> Any:
        """POST JSON, the answer's JSON (or text)."""
        return await self._request("POST", path, body, timeout)

    async def get(self, path: str, *, timeout: float) -> Any:
        return await self._request("GET", path, None, timeout)

    async def _request(self, method: str, path: str, body: dict | None, timeout: float) -> Any:
        try:
            async with self._http.stream(method, self._url(path), json=body,
                                         timeout=timeout) as response:
                await _raise_for_status(response)
                return _parse((await response.aread()).decode("utf-8", "replace"))
        except httpx2.TimeoutException as exc:
            raise TimedOut(str(exc)) from exc
        except httpx2.TransportError as exc:
            raise Disconnected(str(exc) or type(exc).__name__) from exc

    @asynccontextmanager
    async def stream(self, path: str, body: dict | bytes, *, timeout: float
                     ) -> AsyncIterator[AsyncIterator[Any]]:
        """POST JSON (a dict, or already encoded) and read the answer as server-sent events: the
        data of each event, parsed, until `[DONE]` or the end. An event carrying `error` raises
        StreamError."""
        if isinstance(body, bytes):
            sent: dict[str, Any] = {"content": body, "headers": _STREAM_RAW}
        else:
            sent = {"json": body, "headers": _STREAM}
        try:
            async with self._http.stream("POST", self._url(path), timeout=timeout,
                                         **sent) as response:
                await _raise_for_status(response)
                yield _events(response)
        except httpx2.TimeoutException as exc:
            raise TimedOut(str(exc)) from exc
        except httpx2.TransportError as exc:
            raise Disconnected(str(exc) or type(exc).__name__) from exc


async def _raise_for_status(response: httpx2.Response) -> None:
    if response.status_code < 400:
        return
    raw = bytearray()
    async for piece in response.aiter_bytes():
        raw += piece
        if len(raw) >= MAX_ERROR_BODY:
            break
    text = bytes(raw[:MAX_ERROR_BODY]).decode("utf-8", "replace")
    headers = {k.lower(): v for k, v in response.headers.items()}
    raise StatusError(response.status_code, _parse(text), headers, text)


async def _lines(response: httpx2.Response) -> AsyncIterator[str]:
    async for line in response.aiter_lines():
        yield line
    yield ""  # ends a last event that the body ended without its blank line


async def _events(response: httpx2.Response) -> AsyncIterator[Any]:
    """The SSE framing (data lines joined, a blank line ends an event, `:` comments). After
    `[DONE]` the rest of the body is still read: a response read to its end leaves its
    connection open for the next request (else every turn connects anew)."""
    data: list[str] = []
    done = False
    async for line in _lines(response):
        if done:
            continue
        if line:
            if line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
            continue  # event:, id:, retry: and comments carry nothing the runtime uses
        if not data:
            continue
        payload = "\n".join(data)
        data = []
        if payload.startswith("[DONE]"):
            done = True
            continue
        chunk = json.loads(payload)  # not JSON: the runtime reports an unreadable reply
        if isinstance(chunk, dict) and chunk.get("error") is not None:
            raise StreamError(chunk["error"])
        yield chunk
