"""A test-only HTTP proxy in front of a real model server that forces a tool call on the first
chat request only (by setting `tool_choice`), and records what passed through.

A tiny model rarely calls a tool on its own; forcing the first call lets a test drive a real
multi-turn run. Everything else llmunix sends is forwarded unchanged, so the real server judges
it, and every answer is relayed unchanged (buffered: a test needs no incremental relay).

    with ToolChoiceProxy(upstream="http://127.0.0.1:8080", tool="Write") as proxy:
        ... point llmunix at proxy.url (ends in /v1) ...
        proxy.exchanges  # [(path, request body, status, response bytes), ...]
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from tests.scripted import read_body

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass
class Exchange:
    method: str
    path: str
    body: Any  # the request's JSON as forwarded (None when not JSON)
    status: int
    response: bytes
    server_s: float = 0.0  # from forwarding the request to the response's last byte

    def chunks(self) -> list[dict]:
        """The JSON events of a streamed response."""
        out = []
        for line in self.response.decode("utf-8", "replace").splitlines():
            if line.startswith("data: ") and line[6:].strip() != "[DONE]":
                out.append(json.loads(line[6:]))
        return out


class ToolChoiceProxy:
    def __init__(self, upstream: str, tool: str | None) -> None:
        parts = urlsplit(upstream)
        self.host, self.port_up = parts.hostname or "127.0.0.1", parts.port or 80
        self.tool = tool
        self.exchanges: list[Exchange] = []
        self._forced = tool is None  # None: force nothing, only relay and time
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def chat_exchanges(self) -> list[Exchange]:
        return [e for e in self.exchanges if e.path.endswith("/chat/completions")]

    def __enter__(self) -> ToolChoiceProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                proxy._relay(self)

            do_POST = do_GET

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def _relay(self, handler: BaseHTTPRequestHandler) -> None:
        raw, body = read_body(handler)
        if handler.path.endswith("/chat/completions") and isinstance(body, dict):
            with self._lock:
                first, self._forced = not self._forced, True
            if first and body.get("tools"):
                body["tool_choice"] = {"type": "function", "function": {"name": self.tool}}
                raw = json.dumps(body).encode()
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in HOP_HEADERS}
        upstream = http.client.HTTPConnection(self.host, self.port_up, timeout=600)
        started = time.perf_counter()
        try:
            upstream.request(handler.command, handler.path, body=raw or None, headers=headers)
            response = upstream.getresponse()
            data = response.read()
            status, resp_headers = response.status, response.getheaders()
        except (OSError, http.client.HTTPException) as exc:
            status, resp_headers = 502, [("Content-Type", "text/plain")]
            data = f"proxy: upstream failed: {exc}".encode()
        finally:
            upstream.close()
        took = time.perf_counter() - started
        with self._lock:
            self.exchanges.append(Exchange(handler.command, handler.path, body, status, data,
                                           took))
        handler.send_response(status)
        for name, value in resp_headers:
            if name.lower() not in HOP_HEADERS:
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("Connection", "close")
        handler.close_connection = True
        handler.end_headers()
        handler.wfile.write(data)
