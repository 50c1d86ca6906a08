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


@pytest.fixture(params=["claude", "openai"])
def model(request, tmp_path):
    """The scripted model of one runtime (tests/test_scenarios.py: Model): a test that takes
    it runs once on each runtime. A module may define its own `model` instead."""
    from tests.test_scenarios import Model

    fixture = "anthropic_server" if request.param == "claude" else "openai_server"
    home = tmp_path / "home"
    home.mkdir()
    return Model(request.param, request.getfixturevalue(fixture), home)


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


@pytest.fixture
def bubblewrap():
    """Bubblewrap works here (every process an agent starts runs in it): skip, or fail on CI."""
    from llmunix.tools.sandbox import probe
    from tests.support import require

    require("bubblewrap", not probe("bwrap"), "apt-get install bubblewrap (Debian/Ubuntu)")


@pytest.fixture
def listener():
    """A TCP listener on 127.0.0.1 recording what each connection sends: (port, received)."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.1)
    got: list[bytes] = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    got.append(conn.recv(1000))
                except OSError:
                    got.append(b"")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], got
    stop.set()
    thread.join(5)
    server.close()
