"""Where the openai runtime runs a call, and what it sends: Read, Write and Edit of small files
run on the event loop's thread (no hop to a worker thread), every other call and any call that
would wait (a large file, the effects lock held by another run) in the worker thread; request
bodies are built from messages encoded once, byte for byte what encoding them whole gives."""

from __future__ import annotations

import asyncio
import threading

import pytest

from llmunix.run import runner
from llmunix.runtimes.openai_http import BodyEncoder, encode
from llmunix.trace.events import ToolStarted
from llmunix.workspace.flock import FileLock
from llmunix.workspace.layout import Workspace
from tests.scripted.openai_server import tool_call
from tests.support import agent_text, new_workspace, write_spec

CONFIG = '[run]\nruntime = "openai"\n\n[memory]\ncommit = false\n'


@pytest.fixture()
def ws(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_MODEL", "scripted-model")
    base = new_workspace(tmp_path / "ws")
    base.config_path.write_text(CONFIG, encoding="utf-8")
    project = base.ensure_project("default")
    write_spec(project.agents_dir, "writer.md", agent_text("writer", tools="Read, Write, Edit"))
    return Workspace(base.root)


@pytest.fixture()
def hops(monkeypatch):
    """The tools sent to a worker thread, by name."""
    sent: list[str] = []
    real = asyncio.to_thread

    async def counted(func, *args, **kwargs):
        sent.append(args[0])
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", counted)
    return sent


def run(ws, server, emit=lambda event: None):
    request = runner.RunRequest(goal="go", agent="writer", runtime="openai",
                                runtime_options={"base_url": server.url})
    return runner.run_goal(ws, request, emit)


def test_small_file_tools_run_in_place_and_a_large_read_in_the_worker(ws, openai_server, hops):
    folder = ws.project("default").workspace_dir
    (folder / "big.txt").write_text("line\n" * 300_000, encoding="utf-8")  # 1.5 MB
    openai_server.enqueue(
        tool_call("Write", {"file_path": "a.txt", "content": "one\n"}),
        tool_call("Edit", {"file_path": "a.txt", "old_string": "one", "new_string": "two"}),
        tool_call("Read", {"file_path": "a.txt"}),
        tool_call("Read", {"file_path": "big.txt", "limit": 1}),
        "done")
    outcome = run(ws, openai_server)
    assert outcome.status == "success", outcome.reason
    assert (folder / "a.txt").read_text(encoding="utf-8") == "two\n"
    assert hops == ["Read"]  # the large file's
    results = [m["content"] for m in openai_server.model_requests()[-1].body["messages"]
               if m["role"] == "tool"]
    assert results[2] == "     1\ttwo" and results[3].startswith("     1\tline\n")


def test_a_write_waits_for_the_effects_lock_off_the_event_loop(ws, openai_server, hops):
    """While another holder (another run's Bash) has the project's effects lock, a Write waits
    for it in the worker thread: the loop goes on, and here runs the callback that lets the
    holder go (were the Write waiting on the loop's thread, it never would)."""
    openai_server.enqueue(tool_call("Write", {"file_path": "a.txt", "content": "x"}), "done")
    path = ws.root / ".llmunix" / "locks" / "effects-default.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    held, go, released = threading.Event(), threading.Event(), []

    def holder() -> None:
        with FileLock(path):
            held.set()
            released.append(go.wait(timeout=60))  # a guard against a hang, not a timing

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait()

    def emit(event) -> None:
        if isinstance(event, ToolStarted) and event.tool == "Write":
            asyncio.get_running_loop().call_soon(go.set)

    try:
        outcome = run(ws, openai_server, emit)
    finally:
        go.set()
        thread.join()
    assert released == [True]
    assert outcome.status == "success", outcome.reason
    assert (ws.project("default").workspace_dir / "a.txt").read_text(encoding="utf-8") == "x"
    assert hops == ["Write"]


def test_try_acquire_takes_a_free_lock_and_never_waits_for_a_held_one(tmp_path):
    path = tmp_path / "effects.lock"
    mine, other = FileLock(path), FileLock(path)
    assert mine.try_acquire() and mine.try_acquire() and mine.depth == 2  # reentrant
    seen: list[bool] = []
    thread = threading.Thread(target=lambda: seen.append(other.try_acquire()))
    thread.start()
    thread.join()
    assert seen == [False] and not other.is_locked
    mine.release()
    mine.release()
    assert other.try_acquire()
    other.release()


def test_bodies_from_encoded_messages_are_the_whole_encoding():
    encoder = BodyEncoder()
    messages = [{"role": "system", "content": "prompt é ✓"}, {"role": "user", "content": "go"}]
    tools = [{"type": "function", "function": {"name": "Read", "parameters": {}}}]
    body = {"model": "m", "messages": messages, "stream": True, "max_tokens": 10,
            "tools": tools}
    assert encoder.body(body) == encode(body)
    messages.append({"role": "assistant", "content": "", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "Read", "arguments": "{}"}}]})
    messages.append({"role": "tool", "tool_call_id": "c1", "content": "a result"})
    assert encoder.body(body) == encode(body)
    messages[1]["content"] += "\n\nmore"  # a merged user message
    messages[3]["content"] = "[paged out]"  # the pager's stub
    tools.append({"type": "function", "function": {"name": "Recall", "parameters": {}}})
    assert encoder.body(body) == encode(body)
    del messages[2:]  # folded into a summary
    assert encoder.body(body) == encode(body)
