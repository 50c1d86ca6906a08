"""Token counts of chat messages, for servers that report no usage and for anything that must
know how full a context is before sending it.

Two ways to count, one interface:
- `estimate_text` / `estimate_messages`: a documented estimate, no I/O. Text costs one token per
  ESTIMATE_CHARS_PER_TOKEN characters (rounded up); each message adds MESSAGE_OVERHEAD tokens for
  the chat template's role markers, and a request adds REPLY_PRIMING for the reply's header.
  It errs on the high side for English and code with byte-level BPE tokenizers: SmolLM2's
  tokenizer gives 3.6 characters a token on README.md, 3.8 on Python, 3.9 on tool JSON, 4.5 on
  English prose (but 2.4 on German).
- `TokenCounter`: counts through a tokenizer callable (a server's own tokenize endpoint) when one
  is given and works, else by the estimate; each message is counted once and cached, so a turn
  only tokenizes what is new. A count says whether it is `exact` (every piece tokenized by the
  server) or estimated. Even an exact count leaves out the chat template's own tokens, which no
  tokenize endpoint sees; they are the MESSAGE_OVERHEAD estimate either way.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

ESTIMATE_CHARS_PER_TOKEN = 3.5
MESSAGE_OVERHEAD = 4  # <|im_start|>role\n ... <|im_end|>\n and the like
REPLY_PRIMING = 3  # the assistant header the template adds before the reply

# A tokenizer: text -> its token count, or None when it cannot count (then the estimate is used).
Tokenize = Callable[[str], Awaitable["int | None"]]


@dataclass(frozen=True)
class Count:
    tokens: int
    exact: bool  # False: (partly) estimated


def estimate_text(text: str) -> int:
    """The estimated token count of `text` (0 for empty text)."""
    if not text:
        return 0
    return math.ceil(len(text) / ESTIMATE_CHARS_PER_TOKEN)


def message_text(message: dict[str, Any]) -> str:
    """What of a chat message reaches the model as text: its content, its tool calls' names and
    arguments. Content given as a list of parts counts its text parts."""
    parts: list[str] = []
    content = message.get("content")
    if isinstance(content, str):
        parts.append(content)
    elif isinstance(content, list):
        parts.extend(p.get("text", "") for p in content if isinstance(p, dict))
    for call in message.get("tool_calls") or ():
        fn = (call.get("function") or {}) if isinstance(call, dict) else {}
        parts.append(f"{fn.get('name', '')}\n{fn.get('arguments', '')}")
    return "\n".join(p for p in parts if p)


def tools_text(tools: list[dict] | None) -> str:
    """Tool definitions as a chat template renders them, near enough: their JSON."""
    return json.dumps(tools, ensure_ascii=False, separators=(",", ":")) if tools else ""


def estimate_messages(messages: list[dict[str, Any]], tools: list[dict] | None = None) -> int:
    """The estimated prompt tokens of a request with these messages and tools."""
    total = REPLY_PRIMING + estimate_text(tools_text(tools))
    for message in messages:
        total += MESSAGE_OVERHEAD + estimate_text(message_text(message))
    return total


class TokenCounter:
    """Counts messages and texts, through `tokenize` when it works, else by estimate.

    A tokenizer that fails (returns None) once is not asked again: a server without a tokenize
    endpoint costs one probe, not one per message."""

    def __init__(self, tokenize: Tokenize | None = None, *, cache_size: int = 4096) -> None:
        self._tokenize = tokenize
        self._cache: dict[str, Count] = {}
        self._cache_size = cache_size

    @property
    def uses_server(self) -> bool:
        return self._tokenize is not None

    async def count_text(self, text: str) -> Count:
        if not text:
            return Count(0, True)
        key = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        count = None
        if self._tokenize is not None:
            count = await self._tokenize(text)
            if count is None:
                self._tokenize = None
        result = Count(count, True) if count is not None else Count(estimate_text(text), False)
        if len(self._cache) >= self._cache_size:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = result
        return result

    async def count_messages(self, messages: list[dict[str, Any]],
                             tools: list[dict] | None = None) -> Count:
        """The prompt tokens of a request: every message's text, the tools, the template's
        overhead (estimated: MESSAGE_OVERHEAD per message, REPLY_PRIMING per request)."""
        exact = True
        total = REPLY_PRIMING
        for text in [tools_text(tools), *(message_text(m) for m in messages)]:
            count = await self.count_text(text)
            total += count.tokens
            exact = exact and count.exact
        return Count(total + MESSAGE_OVERHEAD * len(messages), exact)
