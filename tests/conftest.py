"""Shared pytest fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_user_config(monkeypatch):
    """A developer's own ~/.config/llmunix/config.toml and LLMUNIX_* variables never reach a
    test (tests that need them set their own)."""
    from tests.support import NO_USER_CONFIG

    monkeypatch.setenv("XDG_CONFIG_HOME", NO_USER_CONFIG)
    for name in ("LLMUNIX_RUNTIME", "LLMUNIX_MODEL", "LLMUNIX_PROJECT"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def anthropic_server():
    """A scripted Anthropic Messages API on 127.0.0.1 (see tests/scripted/anthropic_server.py)."""
    from tests.scripted.anthropic_server import AnthropicServer

    with AnthropicServer() as server:
        yield server


@pytest.fixture
def openai_server():
    """A scripted OpenAI chat-completions API on 127.0.0.1 (see tests/scripted/openai_server.py)."""
    from tests.scripted.openai_server import OpenAIServer

    with OpenAIServer() as server:
        yield server
