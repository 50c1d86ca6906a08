"""What an OpenAI-compatible server offers besides chat completions: the models it serves
(`GET /v1/models`, for `llmunix models` and for picking the only model served) and a tokenizer
(for token counts when its streams carry no usage).

Tokenize endpoints differ by server; the first that answers is kept for the run:
- llama-cpp-python: POST /extras/tokenize/count {"input"} -> {"count"}
- llama.cpp's llama-server: POST /tokenize {"content"} -> {"tokens": [...]}
- vLLM: POST /tokenize {"model", "prompt"} -> {"count", "tokens"}
All live beside /v1, not under it. Ollama has none: llmunix then estimates (context/tokens.py).
"""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from llmunix.errors import LlmunixError
from llmunix.runtimes.openai_errors import ServerError, http_error

MODELS_TIMEOUT_S = 5.0


def server_root(base_url: str) -> str:
    """The server's root: base_url without its trailing /v1 (tokenize endpoints live there)."""
    parts = urlsplit(base_url)
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[: -len("/v1")]
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def list_models(base_url: str, api_key: str, *, api_key_env: str = "OPENAI_API_KEY",
                timeout: float = MODELS_TIMEOUT_S) -> list[str]:
    """The ids of the models the server serves. Raises ServerError (HTTP) or OSError
    (no connection)."""
    request = urllib.request.Request(base_url.rstrip("/") + "/models",
                                     headers={"Authorization": f"Bearer {api_key}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = json.load(response)
    except urllib.error.HTTPError as exc:
        body: Any = exc.read().decode("utf-8", "replace")
        with contextlib.suppress(ValueError):
            body = json.loads(body)
        raise http_error(exc.code, body, base_url=base_url, model="", api_key_env=api_key_env,
                         fallback=str(exc.reason)) from None
    except ValueError as exc:
        raise ServerError(f"the server at {base_url} answered /models with something that is "
                          f"not JSON: {exc}", hint="is this an OpenAI-compatible server?") from None
    entries = data.get("data") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ServerError(f"the server at {base_url} answered /models without a model list",
                          hint="is this an OpenAI-compatible server?")
    return [str(e["id"]) for e in entries if isinstance(e, dict) and e.get("id")]


# (path, request body, count from the answer)
_ENDPOINTS: list[tuple[str, Callable[[str, str], dict], Callable[[Any], int | None]]] = [
    ("/extras/tokenize/count", lambda text, model: {"input": text},
     lambda d: d.get("count") if isinstance(d.get("count"), int) else None),
    ("/tokenize", lambda text, model: {"content": text, "prompt": text, "model": model,
                                       "add_special": False},
     lambda d: d["count"] if isinstance(d.get("count"), int)
     else len(d["tokens"]) if isinstance(d.get("tokens"), list) else None),
]


def server_tokenizer(client: Any, base_url: str, model: str
                     ) -> Callable[[str], Awaitable[int | None]]:
    """A tokenizer (text -> count, None when the server has none) over the runtime's client.
    The first call probes the endpoints; the one that worked is used from then on."""
    root = server_root(base_url)
    chosen: list[int] = []  # the index of the working endpoint, once known
    dead = False

    async def tokenize(text: str) -> int | None:
        nonlocal dead
        if dead:
            return None
        order = chosen or list(range(len(_ENDPOINTS)))
        for i in order:
            path, body, read = _ENDPOINTS[i]
            try:
                answer = await client.post(root + path, body(text, model), timeout=10.0)
            except Exception:  # noqa: BLE001 - no such endpoint, or a server that failed it
                continue
            count = read(answer) if isinstance(answer, dict) else None
            if count is not None:
                chosen[:] = [i]
                return count
        dead = True
        return None

    return tokenize


def pick_model(models: list[str], default: str, base_url: str) -> tuple[str, str]:
    """The model to use when none is configured, and what to tell the user about it."""
    if len(models) == 1:
        return models[0], (f"no model configured: using {models[0]!r}, the only model the "
                           f"server at {base_url} serves")
    if default in models or not models:
        return default, ""
    listing = ", ".join(models[:10]) + (", ..." if len(models) > 10 else "")
    raise LlmunixError(
        f"no model configured, and the server at {base_url} serves {len(models)}: {listing}",
        hint="pick one with --model, or set model in the [openai] section of llmunix.toml",
    )
