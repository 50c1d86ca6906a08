"""Before the Claude Code CLI starts: a credential it will accept, and an endpoint that answers.

The CLI itself, given no credential, ends in "Not logged in" with exit 1; given a key and an
unreachable API, it retries for minutes. Both are known in a few seconds here, before a trace is
opened, so the run ends with exit code EXIT_NO_RUNTIME and the how-to-fix list instead.

A base URL alone is no credential: the CLI wants a key or token for it too (any value, for an
endpoint that checks none). Bedrock and Vertex bring their own credentials and endpoints: they
are left to the CLI.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

from llmunix.errors import RuntimeUnavailable

DEFAULT_ENDPOINT = "https://api.anthropic.com"
REACH_TIMEOUT_S = 3.0
KEYS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN")
CLOUDS = ("CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX")

HOW_TO_FIX = """  - export ANTHROPIC_API_KEY=...            (an Anthropic API key)
  - claude login                            (a Claude subscription, via the Claude Code CLI)
  - ANTHROPIC_BASE_URL=<gateway> plus ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN (any value for
    a gateway that checks none)
  - llmunix run "<goal>" --runtime openai   (a local OpenAI-compatible server: Ollama, llama.cpp,
                                             vLLM, LM Studio)
  - llmunix trace replay <trace.md>         (replay a recorded trace, no model at all)"""


def has_credentials(environ: dict[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    if any(env.get(name) for name in (*KEYS, *CLOUDS)):
        return True
    config_dir = Path(env.get("CLAUDE_CONFIG_DIR") or Path.home() / ".claude")
    return (config_dir / ".credentials.json").is_file()


def check(environ: dict[str, str] | None = None, timeout: float = REACH_TIMEOUT_S) -> None:
    """Raise RuntimeUnavailable (with how to fix it) unless the CLI can run."""
    env = os.environ if environ is None else environ
    base = (env.get("ANTHROPIC_BASE_URL") or "").strip()
    if not has_credentials(env):
        what = (f"ANTHROPIC_BASE_URL is set ({base}), but the Claude Code CLI also needs a key or "
                "token for it" if base else "no Claude credentials found")
        raise RuntimeUnavailable(f"{what}. Any of these gives llmunix a runtime:\n{HOW_TO_FIX}")
    if any(env.get(name) for name in CLOUDS):
        return
    endpoint = base or DEFAULT_ENDPOINT
    cause = unreachable(endpoint, timeout)
    if cause:
        raise RuntimeUnavailable(
            f"the Claude API at {endpoint} does not answer ({cause}). Check the network (or "
            f"ANTHROPIC_BASE_URL), or use another runtime:\n{HOW_TO_FIX}")


def unreachable(url: str, timeout: float) -> str:
    """Why nothing answers at `url` ("" when a TCP connection opens, or a proxy is in the
    way: the CLI then goes through it and a direct connect proves nothing)."""
    import urllib.request

    parts = urlsplit(url if "://" in url else "https://" + url)
    host = parts.hostname or ""
    try:
        port = parts.port or (80 if parts.scheme == "http" else 443)
    except ValueError as exc:
        return f"invalid URL: {exc}"
    proxies = urllib.request.getproxies()
    if (proxies.get(parts.scheme) or proxies.get("all")) and not urllib.request.proxy_bypass(host):
        return ""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return ""
    except OSError as exc:
        return (exc.strerror or str(exc) or type(exc).__name__).lower()
