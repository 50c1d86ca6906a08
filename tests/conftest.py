"""Shared pytest fixtures."""

from __future__ import annotations

import pytest


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
