"""How big a model's context window is: `[models."<glob>"] context_window` in llmunix.toml,
else what the server reports (llama.cpp's `GET /props` n_ctx; `GET /v1/models` where a server
lists it, as vLLM's max_model_len), else DEFAULT_WINDOW."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from fnmatch import fnmatchcase
from typing import Any

DEFAULT_WINDOW = 8192
# Keys servers use for the window in /v1/models entries (vLLM, LM Studio, llama.cpp's meta).
_MODEL_KEYS = ("max_model_len", "context_length", "max_context_length", "n_ctx",
               "context_window")

Fetch = Callable[[str], Awaitable[Any]]  # GET a path (relative to the server root) -> JSON


def configured(model: str, windows: Mapping[str, int | None]) -> int | None:
    """The window llmunix.toml gives `model`: an exact name first, then the first matching glob
    in file order."""
    if windows.get(model):
        return windows[model]
    for pattern, value in windows.items():
        if value and fnmatchcase(model, pattern):
            return value
    return None


def _positive(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 \
        else None


def from_props(body: Any) -> int | None:
    if not isinstance(body, dict):
        return None
    settings = body.get("default_generation_settings")
    if isinstance(settings, dict) and _positive(settings.get("n_ctx")):
        return settings["n_ctx"]
    return _positive(body.get("n_ctx"))


def from_models(body: Any, model: str) -> int | None:
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        return None
    entries = [e for e in data if isinstance(e, dict)]
    chosen = [e for e in entries if e.get("id") == model] or (entries if len(entries) == 1
                                                              else [])
    for entry in chosen:
        for where in (entry, entry.get("meta") or {}):
            if not isinstance(where, dict):
                continue
            for key in _MODEL_KEYS:
                if _positive(where.get(key)):
                    return where[key]
            if _positive(where.get("n_ctx_train")):
                return where["n_ctx_train"]
    return None


async def resolve(model: str, windows: Mapping[str, int | None], fetch: Fetch | None
                  ) -> tuple[int, str]:
    """(window, where it came from) for `model`."""
    value = configured(model, windows)
    if value:
        return value, "llmunix.toml"
    if fetch is not None:
        for path, read in (("/props", from_props),
                           ("/v1/models", lambda body: from_models(body, model))):
            try:
                value = read(await fetch(path))
            except Exception:  # noqa: BLE001 - any failure: the server does not say
                value = None
            if value:
                return value, f"the server's {path}"
    return DEFAULT_WINDOW, "the default"
