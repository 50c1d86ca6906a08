"""Runtimes: what turns a goal into model calls. Each lives in its own module, imported only when
chosen, so the heavy SDKs cost nothing on other paths. May import kernel/ and lower layers; a
runtime reports every step to the session and never decides policy itself."""

from __future__ import annotations

from llmunix.errors import LlmunixError
from llmunix.runtimes.base import Runtime

RUNTIMES = ("claude", "openai", "replay")


def get_runtime(name: str, **options) -> Runtime:
    if name == "claude":
        from llmunix.runtimes.claude import ClaudeRuntime

        return ClaudeRuntime(**options)
    if name == "openai":
        from llmunix.runtimes.openai import OpenAIRuntime

        return OpenAIRuntime(**options)
    if name == "replay":
        from llmunix.runtimes.replay import ReplayRuntime

        return ReplayRuntime(**options)
    raise LlmunixError(f"unknown runtime {name!r}", hint=f"choose one of: {', '.join(RUNTIMES)}")
