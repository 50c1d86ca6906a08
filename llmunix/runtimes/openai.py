"""The OpenAI-compatible runtime: llmunix's own agent loop over chat completions, for Ollama,
llama.cpp's llama-server, vLLM, LM Studio or any server that speaks the OpenAI API.

llmunix runs every tool itself (built-ins, tool specs, delegation to sub-agents) through the
session, so the policy, the limits and the trace are the ones every runtime shares.

Weak local models are expected. Each unusable reply is recorded in the trace and fed back to the
model as an error it can correct: tool arguments that are not JSON, an unknown tool name, an empty
reply, a reply cut off by the length limit (or running away past MAX_REPLY_CHARS), a tool call
written as text. After `[openai] max_retries` such replies in a row the run ends with an error.
A tool call written as text by a model that has native tools is executed when it parses cleanly
as a call of one of its tools (many local models do this); otherwise the model is told to use the
tool-calling interface. `[openai] loop_guard` identical consecutive calls stop the run. Models
without native tool calling get the text protocol of `text_protocol` (`[openai] text_tools`).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from typing import Any
from urllib.parse import urlsplit

from llmunix.context import window
from llmunix.errors import LlmunixError, RuntimeUnavailable
from llmunix.kernel.session import RunSession
from llmunix.runtimes import mcp_tools, text_protocol
from llmunix.runtimes.base import Runtime
from llmunix.runtimes.openai_loop import _AgentLoop, _Call, _Reply
from llmunix.specs.models import AgentSpec
from llmunix.workspace.config import ContextConfig, OpenAIConfig

DEFAULT_BASE_URL = "http://127.0.0.1:11434/v1"  # Ollama
DEFAULT_MODEL = "llama3.2"
NO_KEY = "sk-no-key"  # local servers ignore the key, but the client insists on one
CLAUDE_ALIASES = frozenset({"sonnet", "opus", "haiku", "inherit"})
MAX_REPLY_CHARS = 200_000  # a reply longer than this is a runaway: stop reading it
PREFLIGHT_TIMEOUT_S = 2.0

NO_SERVER = """no OpenAI-compatible server answers at {url} ({cause}). Start one, or point llmunix \
at yours:
  - ollama serve                          (Ollama, the default address; then: ollama pull {model})
  - llama-server -m model.gguf --port 8080   then --base-url http://127.0.0.1:8080/v1
  - vllm serve <model>                    then --base-url http://127.0.0.1:8000/v1
  - LM Studio: start its local server     then --base-url http://127.0.0.1:1234/v1
  - or set base_url in the [openai] section of llmunix.toml, or $OPENAI_BASE_URL"""


def resolve_base_url(flag: str | None, config: OpenAIConfig,
                     environ: dict[str, str] | None = None) -> str:
    """--base-url > llmunix.toml > $OPENAI_BASE_URL > Ollama. A bare host gets http:// and /v1,
    the path every local server serves the API under."""
    env = os.environ if environ is None else environ
    url = (flag or config.base_url or env.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).strip()
    if "://" not in url:
        url = "http://" + url
    url = url.rstrip("/")
    if urlsplit(url).path == "":
        url += "/v1"
    return url


def usable_model(name: str | None) -> bool:
    """A model name an OpenAI-compatible server may know (Claude aliases are not)."""
    return bool(name) and name.strip().lower() not in CLAUDE_ALIASES


def resolve_model(model: str | None, config: OpenAIConfig,
                  environ: dict[str, str] | None = None) -> str:
    """--model or the agent's model > llmunix.toml > $OPENAI_MODEL > llama3.2."""
    env = os.environ if environ is None else environ
    if usable_model(model):
        return str(model).strip()
    return config.model or env.get("OPENAI_MODEL") or DEFAULT_MODEL


def _openai():
    try:
        import openai
    except ImportError as exc:  # pragma: no cover - a hard dependency
        raise RuntimeUnavailable("the openai package is not installed",
                                 hint="pip install openai") from exc
    return openai


class OpenAIRuntime(Runtime):
    name = "openai"

    def __init__(self, model: str = "", config: OpenAIConfig | None = None,
                 base_url: str | None = None, windows: dict[str, int | None] | None = None,
                 paging: ContextConfig | None = None) -> None:
        self.config = config or OpenAIConfig()
        self.windows = windows or {}  # [models."<glob>"] context_window
        self.paging = paging or ContextConfig()  # [context]
        self._windows: dict[str, tuple[int, str]] = {}
        self.base_url = resolve_base_url(base_url, self.config)
        self._model = resolve_model(model, self.config)
        self.api_key = os.environ.get(self.config.api_key_env) or NO_KEY
        self._client: Any = None
        self._call_ids: set[str] = set()
        self.mcp: Any = None  # the run's MCP servers (runtimes/mcp_tools.py), while it runs

    @property
    def model(self) -> str:
        return self._model

    @property
    def max_reply_chars(self) -> int:
        return MAX_REPLY_CHARS

    def model_for(self, agent: AgentSpec, main: bool) -> str:
        """A sub-agent's own model when it names one a server may know, else the run's."""
        if not main and usable_model(agent.model):
            return str(agent.model).strip()
        return self._model

    def uses_text_protocol(self, model: str) -> bool:
        return text_protocol.matches(model, self.config.text_tools)

    def preflight(self) -> None:
        """A TCP connect to the server: quick, and enough to tell that nothing is listening."""
        parts = urlsplit(self.base_url)
        host = parts.hostname or "127.0.0.1"
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise RuntimeUnavailable(f"invalid server URL {self.base_url!r}: {exc}") from exc
        if _through_proxy(parts.scheme, host):
            return  # the client goes through the proxy: a direct connect proves nothing
        try:
            with socket.create_connection((host, port), timeout=PREFLIGHT_TIMEOUT_S):
                pass
        except OSError as exc:
            cause = exc.strerror or str(exc) or type(exc).__name__
            raise RuntimeUnavailable(
                NO_SERVER.format(url=self.base_url, cause=cause.lower(), model=self._model)
            ) from None

    # ------------------------------------------------------------ the run

    async def run(self, session: RunSession) -> str:
        openai = _openai()
        # Over plain http (local servers) no certificate is ever checked: skip building the
        # TLS context, which costs ~60 ms per run.
        plain = self.base_url.startswith("http://")
        http_client = openai.DefaultAsyncHttpxClient(verify=False) if plain else None
        async with openai.AsyncOpenAI(base_url=self.base_url, api_key=self.api_key,
                                      http_client=http_client) as client:
            self._client = client
            self.mcp = await mcp_tools.start_hub(session)
            try:
                loop = _AgentLoop(self, session, session.agent, main=True)
                return await loop.run(session.goal_message)
            finally:
                if self.mcp is not None:
                    await self.mcp.aclose()

    async def context_window(self, model: str) -> tuple[int, str]:
        """The model's context window and where its size came from (context/window.py)."""
        if model not in self._windows:
            self._windows[model] = await window.resolve(model, self.windows, self._get_json)
        return self._windows[model]

    async def _get_json(self, path: str) -> Any:
        """GET a server path: /v1/... under the base URL, others (/props) at its root."""
        base = self.base_url
        url = base + path[3:] if path.startswith("/v1/") else base.removesuffix("/v1") + path
        return await self._client.get(url, cast_to=object, options={
            "timeout": PREFLIGHT_TIMEOUT_S, "max_retries": 0})

    def new_call_id(self, proposed: str | None = None) -> str:
        """The model's call id when it has a fresh one, else one of ours: ids key the trace."""
        call_id = proposed or ""
        n = len(self._call_ids)
        while not call_id or call_id in self._call_ids:
            n += 1
            call_id = f"call_llmunix_{n}"
        self._call_ids.add(call_id)
        return call_id

    async def complete(self, model: str, messages: list[dict], tools: list[dict] | None,
                       on_text=None) -> _Reply:
        """One streamed chat completion, assembled. Server failures become LlmunixError."""
        openai = _openai()
        kwargs: dict[str, Any] = {"model": model, "messages": messages, "stream": True,
                                  "stream_options": {"include_usage": True}}
        if tools:
            kwargs["tools"] = tools
        try:
            # The client's generic post, not chat.completions.create: create() walks the whole
            # history against its type hints on every call and builds a model per chunk, which
            # costs more than the rest of a turn. Same request; chunks come as plain dicts.
            stream = await self._client.post("/chat/completions", body=kwargs, cast_to=object,
                                             stream=True, stream_cls=openai.AsyncStream[object])
            try:
                reply = await self._collect(stream, on_text)
            finally:
                await stream.close()
        except openai.APIStatusError as exc:
            raise self._status_error(exc, model) from None
        except openai.APITimeoutError:
            raise LlmunixError(f"the server at {self.base_url} did not answer in time") from None
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            raise LlmunixError(
                f"lost the connection to the server at {self.base_url}: {cause}",
                hint="is the server still running?",
            ) from None
        except openai.APIError as exc:  # an error event in the stream
            raise LlmunixError(f"the server at {self.base_url} reported an error: "
                               f"{' '.join(str(exc.message).split())[:300]}") from None
        except (LlmunixError, asyncio.CancelledError):
            raise
        except Exception as exc:  # noqa: BLE001 - a malformed stream, whatever the client raises
            raise LlmunixError(f"unreadable reply from the server at {self.base_url}: "
                               f"{type(exc).__name__}: {exc}") from None
        if reply.finish_reason is None and not reply.runaway:
            raise LlmunixError(f"the server at {self.base_url} ended its reply before finishing "
                               "it (no finish_reason)", hint="see the server's log")
        return reply

    async def _collect(self, stream: Any, on_text=None) -> _Reply:
        """Assemble a streamed reply from its chunks (plain dicts)."""
        reply = _Reply()
        text: list[str] = []
        size = 0
        calls: list[list] = []  # [id, name, [argument pieces]] in the order they began
        by_index: dict[int, list] = {}
        usage = None
        async for chunk in stream:
            if not isinstance(chunk, dict):
                continue
            usage = chunk.get("usage") or usage
            for choice in chunk.get("choices") or ():
                delta = choice.get("delta") or {}
                content = delta.get("content")
                if content:
                    text.append(content)
                    size += len(content)
                    if on_text is not None:  # the live view shows text as it arrives
                        on_text(content)
                for tc in delta.get("tool_calls") or ():
                    size += _add_call_delta(tc, calls, by_index)
                if choice.get("finish_reason"):
                    reply.finish_reason = choice["finish_reason"]
            if size > MAX_REPLY_CHARS:
                reply.runaway = True
                break
        reply.text = "".join(text)
        for call_id, name, pieces in calls:
            raw = "".join(pieces)
            arguments, error = text_protocol.decode_arguments(raw)
            reply.calls.append(_Call(call_id, name.strip(), arguments, raw, error))
        if isinstance(usage, dict):
            reply.input_tokens = int(usage.get("prompt_tokens") or 0)
            reply.output_tokens = int(usage.get("completion_tokens") or 0)
        return reply

    def _status_error(self, exc: Any, model: str) -> LlmunixError:
        status = getattr(exc, "status_code", "?")
        body = getattr(exc, "body", None)
        if isinstance(body, dict):
            detail = body.get("message") or body.get("error") or body
            if isinstance(detail, dict):
                detail = detail.get("message") or detail
        else:
            detail = body or getattr(exc, "message", "") or exc
        detail = " ".join(str(detail).split())[:300]
        hint = None
        if status == 404:
            hint = f"is the model {model!r} available on the server? (Ollama: ollama pull {model})"
        elif status in (401, 403):
            hint = f"set ${self.config.api_key_env} to a key this server accepts"
        elif status == 400 and "tool" in detail.lower():
            hint = (f"if {model!r} has no native tool calling, list it in text_tools in the "
                    "[openai] section of llmunix.toml")
        return LlmunixError(f"the server at {self.base_url} answered HTTP {status}: {detail}",
                            hint=hint)


def _add_call_delta(tc: dict, calls: list[list], by_index: dict[int, list]) -> int:
    """Fold one streamed tool-call delta in; returns the characters it added."""
    index = tc.get("index")
    if not isinstance(index, int):
        index = max(by_index, default=0)
    call_id = tc.get("id") or ""
    entry = by_index.get(index)
    # A fresh id at a known index is a new call (some servers number every call 0).
    if entry is None or (call_id and entry[0] and call_id != entry[0]):
        entry = [call_id, "", []]
        by_index[index] = entry
        calls.append(entry)
    elif call_id and not entry[0]:
        entry[0] = call_id
    fn = tc.get("function") or {}
    name, arguments = fn.get("name"), fn.get("arguments")
    if name and name != entry[1]:
        # Names come whole in the first delta; some servers repeat them, a few split them.
        entry[1] = name if entry[1] and name.startswith(entry[1]) else entry[1] + name
    if isinstance(arguments, str) and arguments:
        entry[2].append(arguments)
        return len(arguments)
    if isinstance(arguments, dict):  # a server that sends the arguments as an object
        entry[2].append(json.dumps(arguments))
    return 0


def _through_proxy(scheme: str, host: str) -> bool:
    import urllib.request

    proxies = urllib.request.getproxies()
    if not (proxies.get(scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(host)
