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
import fnmatch
import os
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from llmunix.context import window
from llmunix.context.tokens import TokenCounter
from llmunix.errors import LlmunixError, RuntimeUnavailable
from llmunix.kernel.session import RunSession
from llmunix.runtimes import mcp_tools, text_protocol
from llmunix.runtimes.base import Runtime
from llmunix.runtimes.openai_errors import (
    MAX_ATTEMPTS,
    ServerError,
    detail_of,
    http_error,
    parse_retry_after,
    retry_delay,
)
from llmunix.runtimes.openai_loop import RequestShape, _AgentLoop, _Reply
from llmunix.runtimes.openai_server import list_models, pick_model, server_tokenizer
from llmunix.runtimes.openai_stream import collect, reply_from_message
from llmunix.specs.models import AgentSpec
from llmunix.workspace.config import ContextConfig, OpenAIConfig, RequestSettings

DEFAULT_BASE_URL = "http://127.0.0.1:11434/v1"  # Ollama
DEFAULT_MODEL = "llama3.2"
NO_KEY = "sk-no-key"  # local servers ignore the key, but the client insists on one
CLAUDE_ALIASES = frozenset({"sonnet", "opus", "haiku", "inherit"})
MAX_REPLY_CHARS = 200_000  # a reply longer than this is a runaway: stop reading it
PREFLIGHT_TIMEOUT_S = 2.0
DEFAULT_MAX_TOKENS = 2048
DEFAULT_REQUEST_TIMEOUT_S = 300.0
_TIMEOUT = getattr(asyncio, "timeout", None)  # 3.11+

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
        self._model_given = bool(usable_model(model) or self.config.model
                                 or os.environ.get("OPENAI_MODEL"))
        self.api_key = os.environ.get(self.config.api_key_env) or NO_KEY
        self._client: Any = None
        self._encoder: Any = None  # request bodies, their messages encoded once (openai_http)
        self._call_ids: set[str] = set()
        self.mcp: Any = None  # the run's MCP servers (runtimes/mcp_tools.py), while it runs
        self._include_usage = True  # dropped for a server that refuses stream_options
        self.notes: list[str] = []  # said at the start of the run (e.g. which model is used)
        # Token counts for replies without usage; shared with whatever else counts the context.
        self.counter: TokenCounter | None = None

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

    def shape_for(self, agent: AgentSpec | None, model: str) -> RequestShape:
        """max_tokens, temperature and timeout of `agent`'s requests to `model`: the agent's
        `llmunix:` block > [openai.models."<model>"] (a name or glob) > [openai] > defaults."""
        models = self.config.models
        per_model = models.get(model) or next(
            (v for k, v in models.items() if fnmatch.fnmatchcase(model, k)), RequestSettings())
        sources = [s for s in (agent.settings if agent else None, per_model, self.config) if s]

        def pick(name: str, default: Any) -> Any:
            return next((getattr(s, name) for s in sources if getattr(s, name) is not None),
                        default)

        return RequestShape(max_tokens=pick("max_tokens", DEFAULT_MAX_TOKENS),
                            temperature=pick("temperature", None),
                            timeout_s=pick("request_timeout_s", DEFAULT_REQUEST_TIMEOUT_S))

    @property
    def model_given(self) -> bool:
        """Whether a model was configured (else the server's only model, or the default)."""
        return self._model_given

    def preflight(self) -> None:
        """Fails fast when no server listens; with no model configured, asks the server which
        it serves."""
        self.preflight_connect()
        if not self._model_given:
            self._pick_served_model()

    def preflight_connect(self) -> None:
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

    def _pick_served_model(self) -> None:
        """No model configured: a server that serves exactly one has it used (and said so)."""
        try:
            models = list_models(self.base_url, self.api_key, api_key_env=self.config.api_key_env,
                                 timeout=PREFLIGHT_TIMEOUT_S)
        except (OSError, LlmunixError):
            return  # no model list here: the default stands, and the run says what fails
        try:
            self._model, note = pick_model(models, DEFAULT_MODEL, self.base_url)
        except LlmunixError as exc:
            raise RuntimeUnavailable(exc.message, hint=exc.hint) from None
        if note:
            self.notes.append(note)

    # ------------------------------------------------------------ the run

    async def run(self, session: RunSession) -> str:
        from llmunix.runtimes.openai_http import Client

        # Retries are llmunix's own (complete()), so they are bounded and shown.
        async with Client(self.base_url, self.api_key) as client:
            self._client = client
            self.counter = TokenCounter(server_tokenizer(client, self.base_url, self._model))
            for note in self.notes:
                session.text(session.agent.name, f"[llmunix] {note}")
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
        return await self._client.get(url, timeout=PREFLIGHT_TIMEOUT_S)

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
                       on_text: Callable[[str], None] | None = None, *,
                       shape: RequestShape | None = None,
                       notify: Callable[[str], None] | None = None) -> _Reply:
        """One streamed chat completion, assembled and counted (`on_text` sees the text as it
        streams). Server failures become ServerError; 429/502/503 are retried (told through
        `notify`) within bounds."""
        shape = shape or self.shape_for(None, model)
        body: dict[str, Any] = {"model": model, "messages": messages, "stream": True,
                                "max_tokens": shape.max_tokens}
        if self._include_usage:
            body["stream_options"] = {"include_usage": True}
        if shape.temperature is not None:
            body["temperature"] = shape.temperature
        if tools:
            body["tools"] = tools
        if self._encoder is None:
            from llmunix.runtimes.openai_http import BodyEncoder

            self._encoder = BodyEncoder()
        attempt = 1
        while True:
            try:
                reply = await self._timed(self._stream(self._encoder.body(body), shape, model,
                                                       on_text), shape)
                if reply.chunks == 0:
                    reply = await self._timed(self._unstreamed(body, shape, model), shape)
                break
            except ServerError as exc:
                if "stream_options" in body and exc.status in (400, 422) and \
                        "stream_options" in exc.message:
                    # A server that refuses the field: ask without it from now on.
                    self._include_usage = False
                    body.pop("stream_options")
                    continue
                delay = retry_delay(exc.status, exc.retry_after, attempt)
                if delay is None:
                    raise
                if notify is not None:
                    notify(f"[llmunix] the server answered HTTP {exc.status}; retry "
                           f"{attempt} of {MAX_ATTEMPTS - 1} in {delay:g} s")
                await asyncio.sleep(delay)
                attempt += 1
        if reply.finish_reason is None and not reply.runaway:
            raise ServerError(f"the server at {self.base_url} ended its reply before finishing "
                              f"it (no finish_reason, {reply.chunks} chunks)",
                              hint="see the server's log")
        if not reply.usage_reported:
            await self._count(reply, messages, tools)
        return reply

    async def _timed(self, request: Any, shape: RequestShape) -> _Reply:
        try:
            if _TIMEOUT is not None:  # Python 3.11+: the request stays in this task
                async with _TIMEOUT(shape.timeout_s):
                    return await request
            return await asyncio.wait_for(request, shape.timeout_s)  # a task per request
        except asyncio.TimeoutError:
            raise ServerError(
                f"the server at {self.base_url} did not finish a reply within "
                f"{shape.timeout_s:g} s",
                hint="a slow model or a reply that never ends: lower max_tokens, or raise "
                     "request_timeout_s ([openai] in llmunix.toml or the agent's llmunix: block)",
            ) from None

    async def _stream(self, body: bytes, shape: RequestShape, model: str,
                      on_text: Callable[[str], None] | None) -> _Reply:
        from llmunix.runtimes import openai_http as wire

        progress = _Reply()
        try:
            async with self._client.stream("/chat/completions", body,
                                           timeout=shape.timeout_s) as stream:
                return await collect(stream, max_chars=MAX_REPLY_CHARS,
                                     max_pieces=shape.max_tokens, progress=progress,
                                     on_text=on_text)
        except wire.StatusError as exc:
            raise self._status_error(exc, model) from None
        except wire.TimedOut:
            raise ServerError(f"the server at {self.base_url} did not answer in time",
                              hint="see the server's log; raise request_timeout_s if it is "
                                   "just slow") from None
        except wire.Disconnected as exc:
            cause = exc.__cause__ or exc
            raise self._broken(progress, f"{cause}", ServerError(
                f"lost the connection to the server at {self.base_url}: {cause}",
                hint="is the server still running? see its log")) from None
        except wire.StreamError as exc:  # an error event in the stream
            raise ServerError(f"the server at {self.base_url} reported an error: "
                              f"{detail_of(exc.body, str(exc.message))}",
                              hint="see the server's log") from None
        except (LlmunixError, asyncio.CancelledError):
            raise
        except Exception as exc:  # noqa: BLE001 - a broken stream, whatever the client raises
            cause = f"{type(exc).__name__}: {exc}"
            raise self._broken(progress, cause, ServerError(
                f"unreadable reply from the server at {self.base_url}: {cause}",
                hint="see the server's log")) from None

    def _broken(self, progress: _Reply, cause: str, before_any: ServerError) -> ServerError:
        """A stream that failed: cut off midway once chunks had come, else `before_any`."""
        if not progress.chunks:
            return before_any
        return ServerError(f"the server at {self.base_url} broke off its reply after "
                           f"{progress.chunks} chunks ({cause})",
                           hint="see the server's log: it may have crashed or been stopped")

    async def _unstreamed(self, body: dict, shape: RequestShape, model: str) -> _Reply:
        """The same request without streaming, after a stream that ended with no data at all:
        servers that fail inside a stream (llama-cpp-python does: context overflow, a tool
        choice it cannot stream) send nothing, and only a plain request returns their error."""
        from llmunix.runtimes import openai_http as wire

        plain = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
        try:
            try:
                answer = await self._client.post("/chat/completions", plain,
                                                 timeout=shape.timeout_s)
            except wire.Disconnected:  # a server that failed inside a stream may have
                # dropped the pooled connection this request went out on: once more
                answer = await self._client.post("/chat/completions", plain,
                                                 timeout=shape.timeout_s)
        except wire.StatusError as exc:
            error = self._status_error(exc, model)
            error.message = ("the server sent an empty stream; asked again without streaming, "
                             + error.message.replace(f"the server at {self.base_url} ", "it ", 1))
            raise error from None
        except (wire.TimedOut, wire.Disconnected) as exc:
            raise ServerError(f"the server at {self.base_url} sent an empty stream, and no "
                              f"answer without streaming either: {exc}",
                              hint="see the server's log") from None
        return reply_from_message(answer, max_chars=MAX_REPLY_CHARS, base_url=self.base_url)

    async def _count(self, reply: _Reply, messages: list[dict], tools: list[dict] | None
                     ) -> None:
        """Tokens for a reply whose server sent no usage: counted by the server's tokenizer
        where it has one, else estimated (context/tokens.py)."""
        if self.counter is None:
            self.counter = TokenCounter(server_tokenizer(self._client, self.base_url,
                                                         self._model))
        prompt = await self.counter.count_messages(messages, tools)
        out = reply.text + "".join(f"\n{c.name}\n{c.raw}" for c in reply.calls)
        reply.input_tokens = prompt.tokens
        reply.output_tokens = (await self.counter.count_text(out)).tokens

    def _status_error(self, exc: Any, model: str) -> ServerError:
        headers = exc.headers
        return http_error(
            exc.status, exc.body,
            base_url=self.base_url, model=model, api_key_env=self.config.api_key_env,
            retry_after=parse_retry_after(headers.get("retry-after")),
            fallback=str(getattr(exc, "message", "") or exc),
        )


def _through_proxy(scheme: str, host: str) -> bool:
    import urllib.request

    proxies = urllib.request.getproxies()
    if not (proxies.get(scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(host)
