"""The pager wired to one agent loop of the OpenAI-compatible runtime. The loop calls
`before_request()` before each model request and `observed()` with each reply's usage; this
module owns everything else (the window, the summarizer's request, offering Recall)."""

from __future__ import annotations

import json
import re
from typing import Any

from llmunix.context.pager import Pager
from llmunix.context.recall import SCHEMA as RECALL_SCHEMA

RECALL = "Recall"
_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.S)


def recall_tool() -> dict:
    schema = dict(RECALL_SCHEMA)
    description = schema.pop("description")
    return {"type": "function",
            "function": {"name": RECALL, "description": description, "parameters": schema}}


class LoopContext:
    """`loop` is the agent loop (runtimes/openai_loop._AgentLoop): its messages, tools, the
    names it offers, its model, runtime and session."""

    def __init__(self, loop: Any, pager: Pager) -> None:
        self.loop = loop
        self.pager = pager

    @classmethod
    async def attach(cls, loop: Any) -> LoopContext | None:
        settings = getattr(loop.rt, "paging", None)
        if settings is None or not settings.enabled:
            return None  # paging off ([context] enabled = false)
        window, source = await loop.rt.context_window(loop.model)
        log = loop.session.context_log
        log.window_known(loop.agent.name, loop.model, window, source)
        reserve = int(getattr(loop.rt, "reply_reserve", lambda _m: 0)(loop.model) or 0)
        counter = getattr(loop.rt, "counter", None)

        async def summarize(messages: list[dict]) -> str:
            reply = await loop.rt.complete(loop.model, messages, None)
            loop.session.model_turn(input_tokens=reply.input_tokens,
                                    output_tokens=reply.output_tokens, turn=False)
            return _THINK.sub("", reply.text or "").strip()

        pager = Pager(log, loop.agent.name, window, settings, summarizer=summarize,
                      reserve=reserve, mark=len(log.step_log), counter=counter)
        return cls(loop, pager)

    async def before_request(self) -> None:
        loop = self.loop
        loop.session.context_window = self.pager.window  # the status line's fill
        await self.pager.before_request(loop.messages, None if loop.text_mode else loop.tools)
        if self.pager.paged_once and RECALL not in loop.offered:
            self._offer_recall()  # then count again: the request now carries Recall too
            await self.pager.before_request(loop.messages,
                                            None if loop.text_mode else loop.tools)

    def observed(self, prompt_tokens: int) -> None:
        self.pager.observed(prompt_tokens)

    def _offer_recall(self) -> None:
        """Once something is paged out, the agent gets Recall to read it back (it only reads
        this run's own trace, so every agent may have it)."""
        loop = self.loop
        tool = recall_tool()
        loop.tools.append(tool)
        loop.offered.add(RECALL)
        if loop.text_mode:  # the tool list ends the system prompt: Recall joins it
            fn = tool["function"]
            loop.messages[0]["content"] += (f"\n\n## {RECALL}\n{fn['description']}\nArguments "
                                            f"(JSON Schema): {json.dumps(fn['parameters'])}")
