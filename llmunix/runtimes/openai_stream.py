"""A streamed chat completion assembled into one reply, as real servers stream it.

Servers differ: most send a tool call's id and name once and its arguments in pieces; llama.cpp's
servers repeat the id and name in every delta and send the same pieces again in the old
`function_call` field; a few number every call 0, split names, or send arguments as an object.
Only servers that send `function_call` alone (the pre-tools protocol) have it read.

The stream is read no further than the reply's limits: `max_chars` (a runaway) and
`max_pieces`, the request's max_tokens: servers send at least one token per piece, so more
pieces than max_tokens means the server ignored the limit (llama-cpp-python does when it picks
between text and tools itself), and the reply is cut there as the server should have.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from llmunix.runtimes import text_protocol
from llmunix.runtimes.openai_errors import ServerError
from llmunix.runtimes.openai_loop import _Call, _Reply


async def collect(stream: Any, *, max_chars: int, max_pieces: int | None = None,
                  progress: _Reply | None = None,
                  on_text: Callable[[str], None] | None = None) -> _Reply:
    """Assemble a streamed reply from its chunks (plain dicts), into `progress` if given (so a
    caller can tell how far a stream got that then broke); `on_text` sees each text piece
    (the live view shows text as it arrives)."""
    reply = progress if progress is not None else _Reply()
    text: list[str] = []
    size = 0
    calls: list[list] = []  # [id, name, [argument pieces]] in the order they began
    by_index: dict[int, list] = {}
    usage = None
    async for chunk in stream:
        if not isinstance(chunk, dict):
            continue
        reply.chunks += 1
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if isinstance(content, str) and content:
                text.append(content)
                size += len(content)
                reply.pieces += 1
                if on_text is not None:
                    on_text(content)
            tool_calls = delta.get("tool_calls")
            if not tool_calls and isinstance(delta.get("function_call"), dict):
                tool_calls = [{"index": 0, "function": delta["function_call"]}]
            for tc in tool_calls or ():
                if isinstance(tc, dict):
                    added = _add_call_delta(tc, calls, by_index)
                    size += added
                    reply.pieces += added > 0
            if choice.get("finish_reason"):
                reply.finish_reason = choice["finish_reason"]
        if size > max_chars:
            reply.runaway = True
            break
        if max_pieces is not None and reply.pieces > max_pieces:
            reply.finish_reason = "length"
            break
    reply.text = "".join(text)
    _finish(reply, calls, usage)
    return reply


def reply_from_message(answer: Any, *, max_chars: int, base_url: str) -> _Reply:
    """A non-streamed chat completion as a reply."""
    choices = answer.get("choices") if isinstance(answer, dict) else None
    if not choices or not isinstance(choices[0], dict):
        raise ServerError(f"the server at {base_url} answered without a reply (no choices)",
                          hint="see the server's log")
    choice = choices[0]
    message = choice.get("message") or {}
    reply = _Reply(finish_reason=choice.get("finish_reason"), chunks=1)
    content = message.get("content")
    reply.text = content if isinstance(content, str) else ""
    calls: list[list] = []
    by_index: dict[int, list] = {}
    tool_calls = message.get("tool_calls")
    if not tool_calls and isinstance(message.get("function_call"), dict):
        tool_calls = [{"function": message["function_call"]}]
    for i, tc in enumerate(tool_calls or ()):
        if isinstance(tc, dict):
            _add_call_delta({"index": i, **tc}, calls, by_index)
    reply.runaway = len(reply.text) + sum(len("".join(c[2])) for c in calls) > max_chars
    _finish(reply, calls, answer.get("usage"))
    return reply


def _finish(reply: _Reply, calls: list[list], usage: Any) -> None:
    for call_id, name, pieces in calls:
        raw = "".join(pieces)
        arguments, error = text_protocol.decode_arguments(raw)
        reply.calls.append(_Call(call_id, name.strip(), arguments, raw, error))
    if isinstance(usage, dict) and (usage.get("prompt_tokens") or usage.get("completion_tokens")):
        reply.usage_reported = True
        reply.input_tokens = int(usage.get("prompt_tokens") or 0)
        reply.output_tokens = int(usage.get("completion_tokens") or 0)


def _add_call_delta(tc: dict, calls: list[list], by_index: dict[int, list]) -> int:
    """Fold one streamed tool-call delta in; returns the characters it added."""
    index = tc.get("index")
    if not isinstance(index, int):
        index = max(by_index, default=0)
    call_id = tc.get("id") or ""
    entry = by_index.get(index)
    # A fresh id at a known index is a new call (some servers number every call 0); the same id
    # again (llama.cpp repeats it in every delta) is the same call.
    if entry is None or (call_id and entry[0] and call_id != entry[0]):
        entry = [call_id, "", []]
        by_index[index] = entry
        calls.append(entry)
    elif call_id and not entry[0]:
        entry[0] = call_id
    fn = tc.get("function") or {}
    name, arguments = fn.get("name"), fn.get("arguments")
    if isinstance(name, str) and name and name != entry[1]:
        # Names come whole in the first delta; some servers repeat them, a few split them.
        entry[1] = name if entry[1] and name.startswith(entry[1]) else entry[1] + name
    if isinstance(arguments, str) and arguments:
        entry[2].append(arguments)
        return len(arguments)
    if isinstance(arguments, dict):  # a server that sends the arguments as an object
        entry[2].append(json.dumps(arguments))
    return 0
