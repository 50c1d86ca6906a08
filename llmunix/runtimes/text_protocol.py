"""The text tool-call protocol, for models served without native tool calling.

Selected per model in llmunix.toml (`[openai] text_tools = ["phi3*", ...]`, shell-style globs).
The request then carries no `tools`; instead the system prompt ends with the tool list and this
format, which is the one many open models were trained on:

    <tool_call>
    {"name": "Write", "arguments": {"file_path": "notes.md", "content": "hello"}}
    </tool_call>

A reply may hold several blocks; they run in order. Their results come back in one user message,
one block per call:

    <tool_result name="Write">
    Wrote 5 bytes to notes.md
    </tool_result>

A reply without a block is the final answer. The parser is lenient where weak models slip: a
missing closing tag at the end, a ```json fence inside the block, "parameters" instead of
"arguments", arguments sent as a JSON string, OpenAI's {"type": "function", "function": {...}}
wrapper, and a reply that is nothing but such a JSON object (or a list of them). The same parser
spots models with native tools that write a call as text instead of making it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

_TAGGED = re.compile(r"<tool_call>(.*?)(?:</tool_call>|\Z)", re.S)
_FENCE = re.compile(r"^```[a-zA-Z]*\s*\n?(.*?)\n?```$", re.S)
_THINK = re.compile(r"<think>.*?(?:</think>|\Z)", re.S)


@dataclass(frozen=True)
class TextCall:
    """One call written as text: `arguments` is None when `error` says why it is unusable."""

    name: str
    arguments: dict | None
    raw: str
    error: str | None = None


@dataclass(frozen=True)
class ParsedText:
    calls: list[TextCall] = field(default_factory=list)
    text: str = ""  # what the reply says outside the calls
    tagged: bool = False  # the calls were in <tool_call> tags (not a bare JSON reply)


def strip_thinking(text: str) -> str:
    """Drop <think> blocks that reasoning models put in the content."""
    return _THINK.sub("", text).strip() if "<think>" in text else text.strip()


def parse(text: str) -> ParsedText:
    """Find tool calls written as text in a reply."""
    text = strip_thinking(text)
    if "<tool_call>" in text:
        calls = [_call_from(block) for block in _TAGGED.findall(text)]
        outside = _TAGGED.sub("", text).strip()
        return ParsedText(calls, outside, tagged=True)
    bare = _bare_calls(text)
    if bare:
        return ParsedText(bare, "", tagged=False)
    return ParsedText([], text)


def _unfence(text: str) -> str:
    text = text.strip()
    match = _FENCE.match(text)
    return match.group(1).strip() if match else text


def _bare_calls(text: str) -> list[TextCall]:
    """A reply that is only a JSON call (or a list of them); anything else is plain text."""
    body = _unfence(text)
    if not body.startswith(("{", "[")):
        return []
    try:
        value = json.loads(body)
    except json.JSONDecodeError:
        return []
    items = value if isinstance(value, list) else [value]
    if not items or not all(_looks_like_call(item) for item in items):
        return []
    return [_call_from_value(item, json.dumps(item)) for item in items]


def _looks_like_call(value: object) -> bool:
    if not isinstance(value, dict):
        return False
    if isinstance(value.get("function"), dict):
        value = value["function"]
    return isinstance(value.get("name"), str) and ("arguments" in value or "parameters" in value)


def _call_from(block: str) -> TextCall:
    raw = _unfence(block)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        return TextCall("", None, raw, f"the <tool_call> block is not valid JSON ({exc.msg} at "
                                       f"character {exc.pos})")
    return _call_from_value(value, raw)


def _call_from_value(value: object, raw: str) -> TextCall:
    if isinstance(value, dict) and isinstance(value.get("function"), dict):
        value = value["function"]
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        return TextCall("", None, raw, 'a call must be a JSON object with "name" and "arguments"')
    name = value["name"].strip()
    args = value.get("arguments", value.get("parameters", {}))
    arguments, error = decode_arguments(args)
    return TextCall(name, arguments, raw, error)


def decode_arguments(args: object) -> tuple[dict | None, str | None]:
    """Tool arguments as a dict, from a dict or a JSON string; else (None, what is wrong)."""
    if args is None or (isinstance(args, str) and not args.strip()):
        return {}, None  # servers send "" for a call without arguments
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except json.JSONDecodeError as exc:
            return None, f"the arguments are not valid JSON ({exc.msg} at character {exc.pos})"
    if not isinstance(args, dict):
        return None, "the arguments must be a JSON object"
    return args, None


# ---------------------------------------------------------------- what the model is told


def instructions(tools: Iterable[dict]) -> str:
    """The system-prompt section that describes the tools and the format, for `tools` given as
    OpenAI function definitions."""
    parts = [
        "# Tools",
        "",
        "You can call tools. To call one, write a block like this, with the tool's arguments as "
        "a JSON object:",
        "",
        "<tool_call>",
        '{"name": "TOOL_NAME", "arguments": {"ARGUMENT": "VALUE"}}',
        "</tool_call>",
        "",
        "You may write several blocks in one reply; they run in order. Then stop and wait: the "
        "results come back in the next message, one <tool_result name=\"TOOL_NAME\"> block per "
        "call. When the task is done, reply with your final answer and no <tool_call> block.",
        "",
        "Available tools:",
    ]
    for tool in tools:
        fn = tool["function"]
        parts += ["", f"## {fn['name']}", fn.get("description") or "",
                  "Arguments (JSON Schema): " + json.dumps(fn.get("parameters") or {})]
    return "\n".join(parts)


def results_message(results: Iterable[tuple[str, str]]) -> str:
    """The user message carrying (tool name, output) results back to the model."""
    return "\n\n".join(f'<tool_result name="{name or "?"}">\n{output}\n</tool_result>'
                       for name, output in results)


def matches(model: str, patterns: Collection[str]) -> bool:
    """Whether `model` is listed in `text_tools` (exactly or by a shell-style glob)."""
    from fnmatch import fnmatchcase

    return any(fnmatchcase(model, p) for p in patterns)
