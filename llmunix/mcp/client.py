"""Connections to MCP servers for llmunix's own loop (the `openai` runtime, `llmunix mcp list`),
through the official `mcp` Python SDK: stdio servers as child processes, `http` servers over
streamable HTTP (`sse` too, the older transport).

A server that cannot start, or dies while a run goes on, is reported in one line that names it
and ends with the tail of its stderr; the run goes on without its tools unless the server is
`required`, in which case `McpServerFailed` stops it. Every connection is closed by `aclose()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from llmunix.errors import LlmunixError
from llmunix.mcp.scope import split_tool_name, tool_name
from llmunix.specs.mcp_servers import ServerConfig
from llmunix.tools.result import ToolResult
from llmunix.tools.sandbox import Sandbox

START_TIMEOUT_S = 30.0
STDERR_TAIL = 300
CLOSE_TIMEOUT_S = 10.0
REQUIRED_HINT = "it is marked required: true; fix it, or drop required to run without it"


class McpServerFailed(LlmunixError):
    """A required MCP server could not start or stopped during the run."""


@dataclass
class McpTool:
    server: str
    name: str  # as the server names it
    description: str
    input_schema: dict[str, Any]

    @property
    def full_name(self) -> str:
        return tool_name(self.server, self.name)


@dataclass
class ServerState:
    config: ServerConfig
    status: str = "stopped"  # stopped | running | failed | died
    error: str = ""  # the one-line report, once failed or died
    tools: list[McpTool] = field(default_factory=list)
    start_s: float = 0.0  # process start to initialize answered
    list_s: float = 0.0  # the first tools/list
    session: Any = None
    errlog: Any = None
    lost: str = ""  # why the connection ended while running
    task: Any = None
    ready: Any = None
    closing: Any = None

    def stderr_tail(self) -> str:
        if self.errlog is None:
            return ""
        with contextlib.suppress(OSError, ValueError):
            self.errlog.flush()
            self.errlog.seek(0)
            text = self.errlog.read()
            lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
            tail = " | ".join(lines[-3:])
            return tail[-STDERR_TAIL:]
        return ""


def _cause(exc: BaseException) -> str:
    """The innermost useful message of an exception (task groups wrap them)."""
    while getattr(exc, "exceptions", None):  # an exception group
        exc = exc.exceptions[0]
    if isinstance(exc, FileNotFoundError):
        return f"command not found ({exc.filename or exc})"
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


class McpHub:
    """The MCP servers of one run (or of `llmunix mcp list`)."""

    def __init__(self, servers: Iterable[ServerConfig], *, cwd: str,
                 report: Callable[[str], None] = lambda line: None,
                 sandbox: Sandbox | None = None) -> None:
        self.servers = {s.name: ServerState(s.expanded()) for s in servers}
        self.cwd = cwd
        self.report = report
        self.sandbox = sandbox  # stdio servers start confined in it (tools/sandbox.py)

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start every server, side by side; failures are reported (and raised at the end for a
        required server)."""
        await asyncio.gather(*(self._start(s) for s in self.servers.values()))
        failed = [s for s in self.servers.values() if s.status == "failed" and s.config.required]
        if failed:
            raise McpServerFailed(failed[0].error, hint=REQUIRED_HINT)

    async def _start(self, state: ServerState) -> None:
        # Each connection lives in a task of its own, which enters and leaves the SDK's
        # transport and session: their task groups then fail or close there, never in the run.
        state.ready = asyncio.Event()
        state.closing = asyncio.Event()
        state.task = asyncio.create_task(self._serve(state), name=f"mcp:{state.config.name}")
        try:
            await asyncio.wait_for(state.ready.wait(), START_TIMEOUT_S)
        except asyncio.TimeoutError:
            state.task.cancel()
            with contextlib.suppress(BaseException):
                await state.task
            self._failed(state, "failed", f"did not answer within {START_TIMEOUT_S:g} s",
                         raise_required=False)

    async def _serve(self, state: ServerState) -> None:
        from mcp import ClientSession

        cfg = state.config
        started = time.perf_counter()
        try:
            async with self._transport(state) as (read, write), ClientSession(
                    read, write, read_timeout_seconds=START_TIMEOUT_S) as session:
                await session.initialize()
                state.start_s = time.perf_counter() - started
                listed = time.perf_counter()
                tools = (await session.list_tools()).tools
                state.list_s = time.perf_counter() - listed
                state.tools = [McpTool(cfg.name, t.name, t.description or "",
                                       _schema(t.input_schema)) for t in tools]
                state.session, state.status = session, "running"
                state.ready.set()
                await state.closing.wait()
        except asyncio.CancelledError:
            if not state.closing.is_set() and not state.ready.is_set():
                raise
        except Exception as exc:  # noqa: BLE001 - whatever the server did, it is reported
            if state.status == "running":
                state.lost = _cause(exc)
            else:
                cause = "it exited before answering" if _connection_lost(exc) else _cause(exc)
                self._failed(state, "failed", f"failed to start: {cause}", raise_required=False)
        finally:
            state.session = None
            state.ready.set()

    def _transport(self, state: ServerState):
        cfg = state.config
        if cfg.type == "stdio":
            from mcp import StdioServerParameters, stdio_client

            argv, env = sandboxed(cfg, self.sandbox, self.cwd)
            # Kept open while the server runs; closed by aclose().
            state.errlog = tempfile.TemporaryFile(  # noqa: SIM115
                mode="w+", encoding="utf-8", errors="replace")
            params = StdioServerParameters(command=argv[0], args=argv[1:], env=env or None,
                                           cwd=cfg.cwd or self.cwd)
            return stdio_client(params, errlog=state.errlog)
        if cfg.type == "sse":
            from mcp.client.sse import sse_client

            return sse_client(cfg.url, headers=dict(cfg.headers) or None)
        return _http_transport(cfg)

    def _failed(self, state: ServerState, status: str, what: str, *,
                raise_required: bool = True) -> None:
        tail = state.stderr_tail()
        state.status = status
        state.error = f"MCP server '{state.config.name}' {what}" + (
            f"; stderr: {tail}" if tail else "")
        self.report(state.error)
        if raise_required and state.config.required:
            raise McpServerFailed(state.error, hint=REQUIRED_HINT)

    async def aclose(self) -> None:
        """Close every connection (stdio servers are stopped by the SDK: stdin closed, then
        terminated, then killed)."""
        tasks = []
        for state in self.servers.values():
            if state.closing is not None:
                state.closing.set()
            if state.task is not None:
                tasks.append(state.task)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT_S)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=CLOSE_TIMEOUT_S)
        for state in self.servers.values():
            if state.errlog is not None:
                with contextlib.suppress(OSError):
                    state.errlog.close()
            if state.status == "running":
                state.status = "stopped"

    # ------------------------------------------------------------ tools

    def tools(self) -> list[McpTool]:
        return [t for s in self.servers.values() if s.status == "running" for t in s.tools]

    def find(self, full_name: str) -> tuple[ServerState, str] | None:
        parts = split_tool_name(full_name)
        if parts is None or parts[0] not in self.servers:
            return None
        return self.servers[parts[0]], parts[1]

    async def call(self, full_name: str, arguments: dict[str, Any]) -> ToolResult:
        """Call one MCP tool. A failed connection marks the server dead (reported once)."""
        started = time.perf_counter()
        found = self.find(full_name)
        if found is None:
            return ToolResult(f"unknown MCP tool {full_name!r}", is_error=True)
        state, tool = found
        if state.status == "running" and state.session is None:
            self._failed(state, "died", f"stopped during the run ({state.lost or 'exited'})")
        if state.status != "running":
            why = state.error or f"MCP server '{state.config.name}' is not running"
            return ToolResult(why, is_error=True, duration_s=time.perf_counter() - started)
        try:
            result = await state.session.call_tool(tool, arguments,
                                                   read_timeout_seconds=state.config.timeout_s)
        except Exception as exc:  # noqa: BLE001 - the connection failed, not the tool
            if not _connection_lost(exc):
                return ToolResult(f"{full_name} failed: {_cause(exc)}", is_error=True,
                                  duration_s=time.perf_counter() - started)
            self._failed(state, "died", f"stopped during the run ({_cause(exc)})")
            return ToolResult(state.error, is_error=True, duration_s=time.perf_counter() - started)
        return ToolResult(_content_text(result), is_error=bool(result.is_error),
                          duration_s=time.perf_counter() - started)


def sandboxed(cfg: ServerConfig, sandbox: Sandbox | None,
              cwd: str) -> tuple[list[str], dict[str, str]]:
    """The argv and environment that start a stdio server in `sandbox` (as configured when
    there is none). Its network is open only when the server says `network: true`."""
    argv = [cfg.command, *cfg.args]
    if sandbox is None:
        return argv, dict(cfg.env)
    sb = sandbox.with_network(cfg.network or sandbox.network)
    sb.check()
    # The server's own program and any file it is given by absolute path stay readable.
    command = shutil.which(cfg.command) or cfg.command
    extra = [os.path.dirname(os.path.realpath(p)) if os.path.isfile(p) else p
             for p in (command, *cfg.args) if os.path.isabs(p) and os.path.exists(p)]
    return sb.command(argv, cwd=cfg.cwd or cwd, env=cfg.env, read_only=extra)


def _connection_lost(exc: BaseException) -> bool:
    """Whether a failed call means the server is gone (a timeout or a refused call leaves the
    connection up)."""
    import anyio

    while getattr(exc, "exceptions", None):
        exc = exc.exceptions[0]
    if isinstance(exc, (anyio.ClosedResourceError, anyio.BrokenResourceError,
                        anyio.EndOfStream, ConnectionError, EOFError)):
        return True
    return "connection closed" in str(exc).lower()


async def _list_all(session: Any) -> list[Any]:
    tools: list[Any] = []
    result = await session.list_tools()
    tools.extend(result.tools)
    return tools


def _schema(schema: Any) -> dict[str, Any]:
    if isinstance(schema, dict) and schema.get("type", "object") == "object":
        return {"type": "object", "properties": {}, **schema}
    return {"type": "object", "properties": {}}


def _content_text(result: Any) -> str:
    parts: list[str] = []
    for block in result.content or []:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)
        elif kind == "resource":
            res = block.resource
            parts.append(getattr(res, "text", None) or f"[resource {res.uri}]")
        else:
            parts.append(f"[{kind} content]")
    if not parts and result.structured_content is not None:
        import json

        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    return "\n".join(parts)


@contextlib.asynccontextmanager
async def _http_transport(cfg: ServerConfig):
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    async with create_mcp_http_client(headers=dict(cfg.headers) or None) as http, \
            streamable_http_client(cfg.url, http_client=http) as streams:
        yield streams
