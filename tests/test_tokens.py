"""Token counts without a server's usage: the documented estimate, and the counter that asks a
server's tokenizer once per distinct text and falls back to the estimate when it cannot."""

from __future__ import annotations

import asyncio
import math

from llmunix.context import tokens
from llmunix.context.tokens import Count, TokenCounter, estimate_messages, estimate_text

HISTORY = [
    {"role": "system", "content": "You are the writer."},
    {"role": "user", "content": "Write hello to a.txt"},
    {"role": "assistant", "content": "",
     "tool_calls": [{"id": "c1", "type": "function",
                     "function": {"name": "Write",
                                  "arguments": '{"file_path": "a.txt", "content": "hello"}'}}]},
    {"role": "tool", "tool_call_id": "c1", "content": "Wrote a.txt"},
]


def test_estimate_is_characters_over_the_documented_ratio():
    assert estimate_text("") == 0
    assert estimate_text("x") == 1
    text = "The quick brown fox jumps over the lazy dog. " * 10
    assert estimate_text(text) == math.ceil(len(text) / tokens.ESTIMATE_CHARS_PER_TOKEN)


def test_estimate_of_messages_counts_tool_calls_tools_and_template_overhead():
    bare = estimate_messages(HISTORY)
    texts = ["You are the writer.", "Write hello to a.txt",
             'Write\n{"file_path": "a.txt", "content": "hello"}', "Wrote a.txt"]
    assert bare == tokens.REPLY_PRIMING + sum(tokens.MESSAGE_OVERHEAD + estimate_text(t)
                                              for t in texts)
    schema = [{"type": "function", "function": {"name": "Write", "parameters": {}}}]
    assert estimate_messages(HISTORY, schema) > bare


def test_counter_asks_the_tokenizer_once_per_text():
    asked: list[str] = []

    async def tokenize(text: str) -> int:
        asked.append(text)
        return len(text.split())

    counter = TokenCounter(tokenize)

    async def go():
        first = await counter.count_messages(HISTORY)
        second = await counter.count_messages(HISTORY + [{"role": "user", "content": "go on"}])
        return first, second

    first, second = asyncio.run(go())
    assert first.exact and second.exact
    words = sum(len(tokens.message_text(m).split()) for m in HISTORY)
    assert first.tokens == tokens.REPLY_PRIMING + words + tokens.MESSAGE_OVERHEAD * 4
    assert second.tokens == first.tokens + 2 + tokens.MESSAGE_OVERHEAD
    assert asked.count("Write hello to a.txt") == 1 and "go on" in asked


def test_a_tokenizer_that_cannot_count_is_dropped_for_the_estimate():
    calls = 0

    async def broken(text: str) -> None:
        nonlocal calls
        calls += 1
        return None

    counter = TokenCounter(broken)

    async def go():
        return [await counter.count_text(t) for t in ("one text", "another text", "a third")]

    counts = asyncio.run(go())
    assert calls == 1 and not counter.uses_server
    assert counts == [Count(estimate_text(t), False) for t in ("one text", "another text",
                                                               "a third")]


def test_no_tokenizer_means_estimates():
    count = asyncio.run(TokenCounter().count_messages(HISTORY))
    assert count == Count(estimate_messages(HISTORY), False)
