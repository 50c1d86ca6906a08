"""Scripted model servers for tests: machinery shared by the Anthropic and OpenAI servers.

A test enqueues replies; the server answers each model request with the next reply whose
route matches, records every request it saw, and never touches the network beyond 127.0.0.1.
See ``anthropic_server`` and ``openai_server`` for the wire formats and the reply helpers.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

EXHAUSTED_TEXT = "[scripted server: script exhausted]"

# Request kinds.
MODEL = "model"  # a real chat / messages call that consumes the script
AUX = "aux"  # a side call made by the client (title, quota check...): default answer
COUNT_TOKENS = "count_tokens"
OTHER = "other"  # any other path: recorded, answered 404 or a harmless JSON


def read_body(handler: BaseHTTPRequestHandler) -> tuple[bytes, Any]:
    """A request's body: its bytes, and its JSON (None when it has none or is not JSON)."""
    length = int(handler.headers.get("Content-Length") or 0)
    raw = handler.rfile.read(length) if length else b""
    try:
        return raw, json.loads(raw) if raw else None
    except ValueError:
        return raw, None


@dataclass
class Request:
    """One HTTP request as the server saw it."""

    index: int
    method: str
    path: str  # without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON, or None
    raw: bytes
    kind: str = OTHER
    aux_reason: str | None = None  # why it was classed auxiliary
    reply: Any = None  # the Reply answered (model / aux requests)
    scripted: bool = False  # answered from the script (not a default / exhausted reply)
    route: str | None = None  # label of the route that supplied the reply
    peer: tuple = ()  # the client's (host, port): one port per connection it opened

    def json(self) -> Any:
        return self.body


@dataclass
class _Entry:
    reply: Any
    when: Callable[[Request], bool] | None
    label: str | None


@dataclass
class _AuxRule:
    predicate: Callable[[Request], bool]
    reason: str
    reply: Any = None  # None: the server's default auxiliary reply


@dataclass
class ReplyBase:
    """Fields common to every scripted reply."""

    delay: float = 0.0  # seconds to sleep before answering (benchmarks only)
    status: int | None = None  # an HTTP error status instead of a model reply
    error_body: Any = None  # the JSON (or str) sent with ``status``
    raw: bytes | str | None = None  # sent verbatim (with ``status`` or 200)
    content_type: str = "application/json"
    headers: dict[str, str] | None = None  # extra response headers (e.g. Retry-After)


class ScriptError(AssertionError):
    """A script was not used as the test expected."""


class ScriptedServer:
    """Base class: lifecycle, recording, script queue and routing.

    Subclasses implement ``_classify(req)`` (kind + aux reason), ``_coerce(item)`` (turn a block,
    str or list into a reply), ``_respond(handler, req, reply)`` and ``_default_aux_reply(req)``.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._entries: list[_Entry] = []
        self._aux_rules: list[_AuxRule] = []
        self.requests: list[Request] = []
        self.exhausted: list[Request] = []  # model requests answered with EXHAUSTED_TEXT
        self.errors: list[str] = []  # exceptions raised while answering (a server bug)

    # ---- lifecycle -----------------------------------------------------------------------
    def start(self) -> ScriptedServer:
        if self._httpd is not None:
            return self
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # small SSE writes must not wait for delayed ACKs

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output quiet

            def do_GET(self) -> None:
                server._handle(self)

            do_POST = do_GET
            do_PUT = do_GET
            do_DELETE = do_GET
            do_HEAD = do_GET
            do_PATCH = do_GET

        self._httpd = ThreadingHTTPServer((self._host, self._port), Handler)
        self._httpd.daemon_threads = True
        # A short poll interval keeps stop() (which waits for the next poll) fast.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=type(self).__name__,
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return self._httpd.server_address[1]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- scripting -----------------------------------------------------------------------
    def enqueue(
        self,
        *items: Any,
        when: Callable[[Request], bool] | str | None = None,
        label: str | None = None,
    ) -> ScriptedServer:
        """Queue replies, in order. Each item is one reply (a reply object, a block, a list of
        blocks or a str). ``when`` routes them: a predicate on the Request, or a str that must
        occur in the request's system prompt. A model request takes the first queued reply whose
        ``when`` matches it; routed replies are tried before unrouted ones, so an unrouted
        script is never eaten by, say, a sub-agent that has its own routed script."""
        pred = self._predicate(when)
        if label is None and isinstance(when, str):
            label = when
        with self._lock:
            for item in items:
                self._entries.append(_Entry(self._coerce(item), pred, label))
        return self

    def mark_auxiliary(
        self,
        when: Callable[[Request], bool] | str,
        reply: Any = None,
        reason: str = "custom",
    ) -> ScriptedServer:
        """Treat matching model-path requests as auxiliary: answered with ``reply`` (or the
        default auxiliary reply) without consuming the script."""
        pred = self._predicate(when)
        assert pred is not None
        with self._lock:
            self._aux_rules.append(
                _AuxRule(pred, reason, None if reply is None else self._coerce(reply))
            )
        return self

    def pending(self) -> int:
        """Replies still queued."""
        with self._lock:
            return len(self._entries)

    def assert_script_used(self) -> None:
        """Fail unless every queued reply was consumed and no request found the script empty."""
        problems = []
        with self._lock:
            if self._entries:
                labels = [e.label or "-" for e in self._entries]
                problems.append(f"{len(self._entries)} scripted repl(ies) not consumed {labels}")
        if self.exhausted:
            problems.append(f"{len(self.exhausted)} model request(s) found the script exhausted")
        if self.errors:
            problems.append("server errors: " + "; ".join(self.errors))
        if problems:
            raise ScriptError("; ".join(problems))

    # ---- inspection ----------------------------------------------------------------------
    def model_requests(self, route: str | None = None) -> list[Request]:
        """The real model calls (not auxiliary ones), optionally only those a route served."""
        return [
            r
            for r in list(self.requests)
            if r.kind == MODEL and (route is None or r.route == route)
        ]

    def aux_requests(self) -> list[Request]:
        return [r for r in list(self.requests) if r.kind == AUX]

    def other_requests(self) -> list[Request]:
        return [r for r in list(self.requests) if r.kind in (OTHER, COUNT_TOKENS)]

    def system_prompt(self, req: Request) -> str:  # pragma: no cover - subclass
        raise NotImplementedError

    def tool_names(self, req: Request) -> list[str]:  # pragma: no cover - subclass
        raise NotImplementedError

    # ---- internals -----------------------------------------------------------------------
    def _predicate(
        self, when: Callable[[Request], bool] | str | None
    ) -> Callable[[Request], bool] | None:
        if when is None or callable(when):
            return when
        marker = when
        return lambda req: marker in self.system_prompt(req)

    def _take(self, req: Request) -> _Entry | None:
        with self._lock:
            for routed in (True, False):
                for i, entry in enumerate(self._entries):
                    if (entry.when is not None) != routed:
                        continue
                    if entry.when is None or entry.when(req):
                        return self._entries.pop(i)
        return None

    def _aux_rule(self, req: Request) -> _AuxRule | None:
        with self._lock:
            rules = list(self._aux_rules)
        for rule in rules:
            if rule.predicate(req):
                return rule
        return None

    keep_alive = False  # True: HTTP/1.1 keep-alive with chunked streams, as real servers do

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        # Default: one request per connection, simple and leak-free. Benchmarks keep the
        # connection open like a real model server, so connection set-up is not measured.
        handler.close_connection = not self.keep_alive
        handler.chunked = False
        raw, body = read_body(handler)
        parts = urlsplit(handler.path)
        with self._lock:
            req = Request(
                index=len(self.requests),
                method=handler.command,
                path=parts.path,
                query=parse_qs(parts.query),
                headers={k.lower(): v for k, v in handler.headers.items()},
                body=body,
                raw=raw,
                peer=tuple(handler.client_address),
            )
            self.requests.append(req)
        try:
            req.kind, req.aux_reason = self._classify(req)
            if req.kind == MODEL:
                rule = self._aux_rule(req)
                if rule is not None:
                    req.kind, req.aux_reason = AUX, rule.reason
                    req.reply = rule.reply or self._default_aux_reply(req)
                else:
                    entry = self._take(req)
                    if entry is None:
                        req.reply = self._coerce(EXHAUSTED_TEXT)
                        with self._lock:
                            self.exhausted.append(req)
                    else:
                        req.reply, req.scripted, req.route = entry.reply, True, entry.label
                self._answer(handler, req, req.reply)
                if handler.chunked:
                    handler.wfile.write(b"0\r\n\r\n")  # the end of a chunked stream
                    handler.wfile.flush()
            elif req.kind == AUX:
                req.reply = self._default_aux_reply(req)
                self._answer(handler, req, req.reply)
            else:
                self._respond_other(handler, req)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away (e.g. an interrupted run)
        except Exception as exc:  # a server bug: record it so the test fails loudly
            self.errors.append(f"{type(exc).__name__}: {exc}")
            with contextlib.suppress(OSError):
                self._send_json(handler, 500, {"error": f"scripted server bug: {exc}"})

    def _answer(self, handler: BaseHTTPRequestHandler, req: Request, reply: Any) -> None:
        if getattr(reply, "delay", 0):
            time.sleep(reply.delay)
        extra = reply.headers
        if reply.raw is not None:
            data = reply.raw.encode() if isinstance(reply.raw, str) else reply.raw
            self._send_bytes(handler, reply.status or 200, data, reply.content_type, extra)
            return
        if reply.status is not None:
            body = reply.error_body if reply.error_body is not None else {}
            if isinstance(body, str):
                self._send_bytes(handler, reply.status, body.encode(), "text/plain", extra)
            else:
                self._send_bytes(handler, reply.status, json.dumps(body).encode(),
                                 "application/json", extra)
            return
        self._respond(handler, req, reply)

    @staticmethod
    def _send_bytes(
        handler: BaseHTTPRequestHandler, status: int, data: bytes, content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data)))
        if handler.close_connection:
            handler.send_header("Connection", "close")
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(data)

    @classmethod
    def _send_json(cls, handler: BaseHTTPRequestHandler, status: int, obj: Any) -> None:
        cls._send_bytes(handler, status, json.dumps(obj).encode(), "application/json")

    @staticmethod
    def _start_sse(handler: BaseHTTPRequestHandler, chunked: bool = False) -> None:
        """``chunked``: chunked encoding even on a closing connection, so that a stream cut
        off midway is a broken body, as when a real server dies mid-reply."""
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-cache")
        if handler.close_connection and not chunked:
            handler.send_header("Connection", "close")
        else:
            handler.send_header("Transfer-Encoding", "chunked")
            handler.chunked = True
        handler.end_headers()

    @staticmethod
    def _write_sse(handler: BaseHTTPRequestHandler, data: str, event: str | None = None) -> None:
        chunk = ((f"event: {event}\n" if event else "") + f"data: {data}\n\n").encode()
        if handler.chunked:
            chunk = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        handler.wfile.write(chunk)
        handler.wfile.flush()

    # ---- subclass hooks ------------------------------------------------------------------
    def _classify(self, req: Request) -> tuple[str, str | None]:  # pragma: no cover
        raise NotImplementedError

    def _coerce(self, item: Any) -> Any:  # pragma: no cover
        raise NotImplementedError

    def _respond(
        self, handler: BaseHTTPRequestHandler, req: Request, reply: Any
    ) -> None:  # pragma: no cover
        raise NotImplementedError

    def _respond_other(
        self, handler: BaseHTTPRequestHandler, req: Request
    ) -> None:  # pragma: no cover
        raise NotImplementedError

    def _default_aux_reply(self, req: Request) -> Any:  # pragma: no cover
        raise NotImplementedError
