"""MCP server configuration in Claude Code's format, from a workspace's `.mcp.json` and from the
`mcpServers` of agent frontmatter.

    {"mcpServers": {"time": {"command": "mcp-server-time", "args": ["--local-timezone", "UTC"],
                             "env": {"TZ": "UTC"}},
                    "docs": {"type": "http", "url": "https://example.com/mcp",
                             "headers": {"Authorization": "Bearer ${DOCS_TOKEN}"}}}}

`type` is `stdio` (the default when `command` is given), `http` (streamable HTTP) or `sse`.
`${VAR}` and `${VAR:-default}` in command, args, env, url and headers are expanded from the
environment when a server starts, as Claude Code does. llmunix adds `required: true`: a run
stops when that server cannot start or dies, instead of going on without its tools.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from llmunix.specs.diagnostics import Diagnostic

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TYPES = ("stdio", "http", "sse")
KEYS = {
    "stdio": {"type", "command", "args", "env", "required", "cwd", "timeout", "network"},
    "http": {"type", "url", "headers", "required", "timeout"},
    "sse": {"type", "url", "headers", "required", "timeout"},
}
DEFAULT_TIMEOUT_S = 60.0
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class ServerConfig:
    """One MCP server as configured (variables not yet expanded)."""

    name: str
    type: Literal["stdio", "http", "sse"]
    command: str = ""
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict, hash=False)
    url: str = ""
    headers: Mapping[str, str] = field(default_factory=dict, hash=False)
    cwd: str = ""
    required: bool = False
    network: bool = False  # a stdio server's sandbox lets it reach the network
    timeout_s: float = DEFAULT_TIMEOUT_S  # per tool call
    source: str = ""  # the file that defines it
    line: int | None = None

    def expanded(self, environ: Mapping[str, str] | None = None) -> ServerConfig:
        """A copy with `${VAR}` references replaced from `environ` (the process's by default)."""
        env = os.environ if environ is None else environ

        def sub(text: str) -> str:
            return _VAR.sub(lambda m: env.get(m.group(1), m.group(2) or ""), text)

        return replace(
            self,
            command=sub(self.command),
            args=tuple(sub(a) for a in self.args),
            env={k: sub(v) for k, v in self.env.items()},
            url=sub(self.url),
            headers={k: sub(v) for k, v in self.headers.items()},
        )

    def to_sdk(self) -> dict[str, Any]:
        """The Claude Agent SDK's form of this server (expanded)."""
        if self.type == "stdio":
            out: dict[str, Any] = {"type": "stdio", "command": self.command,
                                   "args": list(self.args)}
            if self.env:
                out["env"] = dict(self.env)
            return out
        out = {"type": self.type, "url": self.url}
        if self.headers:
            out["headers"] = dict(self.headers)
        return out

    def describe(self) -> str:
        if self.type == "stdio":
            return " ".join([self.command, *self.args])
        return f"{self.type} {self.url}"


def parse_server(name: Any, raw: Any, *, source: str, line: int | None,
                 problems: list[Diagnostic]) -> ServerConfig | None:
    """One server entry; problems are appended as Diagnostics naming `source` and `line`."""

    def error(message: str, hint: str | None = None) -> None:
        problems.append(Diagnostic("error", source, message, line, "mcpServers", hint))

    name = str(name)
    if not NAME_RE.match(name) or "__" in name:
        error(f"MCP server name {name!r} must be letters, digits, '-' and '_' (no '__')")
        return None
    if name == "llmunix":
        error("the MCP server name 'llmunix' is llmunix's own (its tool specs on the claude "
              "runtime)", "rename the server")
        return None
    if not isinstance(raw, Mapping):
        error(f"MCP server '{name}' must be a mapping (command/args/env, or type/url/headers)")
        return None
    kind = raw.get("type") or ("stdio" if "command" in raw else "http" if "url" in raw else None)
    if kind == "streamable-http":
        kind = "http"
    if kind not in TYPES:
        error(f"MCP server '{name}' has type {kind!r}",
              "use stdio (with command), http or sse (with url)")
        return None
    for key in raw:
        if key not in KEYS[kind]:
            problems.append(Diagnostic("warning", source,
                                       f"MCP server '{name}': unknown key '{key}' is ignored",
                                       line, "mcpServers"))
    strings = _strings(raw.get("args", []))
    env = _string_map(raw.get("env", {}))
    headers = _string_map(raw.get("headers", {}))
    timeout = raw.get("timeout", DEFAULT_TIMEOUT_S)
    required = raw.get("required", False)
    network = raw.get("network", False)
    if kind == "stdio" and (not isinstance(raw.get("command"), str) or not raw["command"].strip()):
        error(f"MCP server '{name}' needs a 'command' (the program that serves it over stdio)")
    elif kind != "stdio" and (not isinstance(raw.get("url"), str) or not raw["url"].strip()):
        error(f"MCP server '{name}' of type {kind} needs a 'url'")
    elif strings is None:
        error(f"MCP server '{name}': 'args' must be a list of strings")
    elif env is None or headers is None:
        error(f"MCP server '{name}': 'env' and 'headers' must map names to strings")
    elif not isinstance(required, bool) or not isinstance(network, bool):
        error(f"MCP server '{name}': 'required' and 'network' must be true or false")
    elif isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        error(f"MCP server '{name}': 'timeout' must be a positive number of seconds")
    else:
        return ServerConfig(
            name=name, type=kind, command=str(raw.get("command", "")).strip(),
            args=tuple(strings), env=env, url=str(raw.get("url", "")).strip(), headers=headers,
            cwd=str(raw.get("cwd", "")), required=required, network=network,
            timeout_s=float(timeout),
            source=source, line=line,
        )
    return None


def _strings(value: Any) -> list[str] | None:
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) and
                                       not isinstance(v, bool) for v in value):
        return [str(v) for v in value]
    return None


def _string_map(value: Any) -> dict[str, str] | None:
    if value is None:
        return {}
    if isinstance(value, Mapping) and all(isinstance(v, (str, int, float)) and
                                          not isinstance(v, bool) for v in value.values()):
        return {str(k): str(v) for k, v in value.items()}
    return None


def load_mcp_json(path: Path) -> tuple[dict[str, ServerConfig], list[Diagnostic]]:
    """The servers of a `.mcp.json` file (none when it does not exist)."""
    problems: list[Diagnostic] = []
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return {}, []
    except (OSError, UnicodeDecodeError) as exc:
        return {}, [Diagnostic("error", str(path), f"cannot read the MCP configuration: {exc}")]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return {}, [Diagnostic("error", str(path), f"not valid JSON: {exc.msg}", exc.lineno,
                               hint="see README, 'MCP servers'")]
    servers = data.get("mcpServers") if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        return {}, [Diagnostic("error", str(path), "expected {\"mcpServers\": {name: {...}}}", 1)]
    lines = _key_lines(text, servers)
    found: dict[str, ServerConfig] = {}
    for name, raw in servers.items():
        server = parse_server(name, raw, source=str(path), line=lines.get(name), problems=problems)
        if server is not None:
            found[server.name] = server
    return found, problems


def _key_lines(text: str, servers: Mapping[str, Any]) -> dict[str, int]:
    """The line where each server's key appears first in the JSON text."""
    lines: dict[str, int] = {}
    for name in servers:
        at = text.find(json.dumps(name) + ":")
        if at < 0:
            at = text.find(json.dumps(name))
        if at >= 0:
            lines[name] = text.count("\n", 0, at) + 1
    return lines


# What an agent's `mcpServers` holds once read: names of servers defined elsewhere, and servers
# defined in the agent itself.
AgentServers = tuple[tuple[str, ...], tuple[ServerConfig, ...]]


def parse_agent_servers(value: Any, *, source: str, line: int | None,
                        problems: list[Diagnostic]) -> AgentServers:
    """An agent's `mcpServers`: a list of names and `{name: config}` items (Claude Code's form),
    or one mapping of names to configs."""
    names: list[str] = []
    inline: list[ServerConfig] = []
    if value is None:
        return (), ()
    items: list[Any]
    if isinstance(value, Mapping):
        items = [{k: v} for k, v in value.items()]
    elif isinstance(value, list):
        items = value
    elif isinstance(value, str):
        items = [v.strip() for v in value.split(",") if v.strip()]
    else:
        problems.append(Diagnostic("error", source, "mcpServers must be a list of server names "
                                   "or of {name: config} entries", line, "mcpServers"))
        return (), ()
    for item in items:
        if isinstance(item, str):
            names.append(item.strip())
        elif isinstance(item, Mapping) and len(item) == 1:
            (name, raw), = item.items()
            server = parse_server(name, raw, source=source, line=line, problems=problems)
            if server is not None:
                inline.append(server)
        else:
            problems.append(Diagnostic("error", source, f"mcpServers entry {item!r} is neither "
                                       "a server name nor {name: config}", line, "mcpServers"))
    return tuple(dict.fromkeys(names)), tuple(inline)

