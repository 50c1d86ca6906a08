"""llmunix's own Read, Write, Edit, Glob, Grep and Bash, with Claude Code's names and inputs.

Used by the OpenAI runtime and by trace replay; the Claude runtime uses the CLI's own file tools
and this Bash (the CLI's Bash is never offered). Bash runs in the sandbox (tools/sandbox.py).
Outputs are deterministic for the same files (sorted paths, no timestamps) because replay compares
them with the recorded ones. Model mistakes become error results, never exceptions.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable

from llmunix.errors import PolicyDenied
from llmunix.policy.gate import Policy
from llmunix.tools.builtin.bash import _bash
from llmunix.tools.builtin.common import MAX_BASH_TIMEOUT_S, _ToolFailure
from llmunix.tools.builtin.files import _edit, _read, _write
from llmunix.tools.builtin.search import _glob, _grep
from llmunix.tools.process import MAX_OUTPUT_CHARS
from llmunix.tools.result import ToolResult
from llmunix.tools.sandbox import Sandbox

__all__ = ["BUILTIN_SCHEMAS", "openai_tools", "run_builtin"]


def _schema(description: str, properties: dict, required: list[str]) -> dict:
    return {
        "type": "object",
        "description": description,
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _p(type_: str, description: str, **extra: object) -> dict:
    return {"type": type_, "description": description, **extra}


BUILTIN_SCHEMAS: dict[str, dict] = {
    "Read": _schema(
        "Read a text file from the workspace; lines are numbered like `cat -n`.",
        {
            "file_path": _p("string", "File to read, relative to the workspace or absolute."),
            "offset": _p("integer", "Line number to start from (1 = first line).", minimum=0),
            "limit": _p("integer", "How many lines to read (default 2000).", minimum=1),
        },
        ["file_path"],
    ),
    "Write": _schema(
        "Write a file in the workspace, replacing it if it exists; parent folders are created.",
        {
            "file_path": _p("string", "File to write, relative to the workspace or absolute."),
            "content": _p("string", "The complete new content of the file."),
        },
        ["file_path", "content"],
    ),
    "Edit": _schema(
        "Replace an exact string in a file; it must occur exactly once unless replace_all is set.",
        {
            "file_path": _p("string", "File to edit, relative to the workspace or absolute."),
            "old_string": _p("string", "The exact text to replace."),
            "new_string": _p("string", "The text to put in its place."),
            "replace_all": _p(
                "boolean", "Replace every occurrence (default false).", default=False
            ),
        },
        ["file_path", "old_string", "new_string"],
    ),
    "Glob": _schema(
        "List files matching a glob pattern such as `**/*.md`, sorted by path.",
        {
            "pattern": _p("string", "Glob: * and ? within a folder, ** across folders, {a,b}."),
            "path": _p("string", "Folder to search in (default: the workspace)."),
        },
        ["pattern"],
    ),
    "Grep": _schema(
        "Search file contents with a regular expression (Python syntax).",
        {
            "pattern": _p("string", "Regular expression to search for."),
            "path": _p("string", "File or folder to search (default: the workspace)."),
            "glob": _p("string", "Only search files matching this glob, e.g. `*.py`."),
            "type": _p("string", "Only search files of this type, e.g. `py`, `md`, `js`."),
            "output_mode": _p(
                "string",
                "content: matching lines; files_with_matches: file paths (default); "
                "count: matches per file.",
                enum=["content", "files_with_matches", "count"],
            ),
            "-i": _p("boolean", "Case-insensitive search."),
            "-n": _p("boolean", "Show line numbers in content mode (default true)."),
            "-A": _p("integer", "Lines of context after each match (content mode).", minimum=0),
            "-B": _p("integer", "Lines of context before each match (content mode).", minimum=0),
            "-C": _p("integer", "Lines of context around each match (content mode).", minimum=0),
            "multiline": _p("boolean", "Let the pattern span lines (. matches newlines)."),
            "head_limit": _p("integer", "Show only the first N lines or entries.", minimum=0),
        },
        ["pattern"],
    ),
    "Bash": _schema(
        "Run a shell command with bash in the workspace; returns its combined stdout and stderr.",
        {
            "command": _p("string", "The command to run."),
            "timeout": _p("integer", "Timeout in milliseconds (max 600000).", minimum=1),
            "description": _p("string", "A few words saying what the command does."),
        },
        ["command"],
    ),
}


def openai_tools(names: Iterable[str] | None = None) -> list[dict]:
    """The built-ins (all, or those in `names`) as OpenAI chat-completions tool definitions."""
    wanted = BUILTIN_SCHEMAS if names is None else [n for n in names if n in BUILTIN_SCHEMAS]
    tools = []
    for name in wanted:
        schema = dict(BUILTIN_SCHEMAS[name])
        description = schema.pop("description")
        tools.append(
            {
                "type": "function",
                "function": {"name": name, "description": description, "parameters": schema},
            }
        )
    return tools


_RUNNERS: dict[str, Callable[[dict, Policy], str | ToolResult]] = {
    "Read": _read,
    "Write": _write,
    "Edit": _edit,
    "Glob": _glob,
    "Grep": _grep,
    "Bash": _bash,  # called with the sandbox by run_builtin
}


def run_builtin(
    name: str,
    tool_input: dict,
    *,
    policy: Policy,
    timeout_s: float = 120,
    max_timeout_s: float = MAX_BASH_TIMEOUT_S,
    sandbox: Sandbox | None = None,
    max_output_chars: int = MAX_OUTPUT_CHARS,
    gated: bool = False,
) -> ToolResult:
    """Run built-in tool `name`. Paths go through `policy.resolve`, and the policy's own rules
    (workspace, deny list) are checked again here, unless `gated`: the caller has just checked
    this call with this policy (RunSession.check: tool scoping and the agent's constraints too).

    Bash's timeout is the model's `timeout` (ms) or else `timeout_s`, never above `max_timeout_s`
    (pass the run's remaining time there to keep a command within the run's time limit). Bash
    runs in `sandbox` (default: bubblewrap over the policy's workspace and read roots); of its
    output, the first and last half of `max_output_chars` are kept."""
    started = time.monotonic()
    try:
        if name not in _RUNNERS:
            known = ", ".join(BUILTIN_SCHEMAS)
            raise _ToolFailure(f"Unknown built-in tool {name!r} (built-ins: {known})")
        args = _validate(name, tool_input)
        if not gated:
            decision = policy.check(name, args)
            if not decision.allowed:
                raise _ToolFailure(decision.reason)
        if name == "Bash":
            seconds = args["timeout"] / 1000 if "timeout" in args else timeout_s
            args["timeout"] = max(min(seconds, max_timeout_s), 0.001) * 1000
        runner = _RUNNERS[name]
        output = _bash(args, policy, sandbox, max_output_chars) if name == "Bash" else \
            runner(args, policy)
    except _ToolFailure as exc:
        return ToolResult(str(exc), is_error=True, duration_s=time.monotonic() - started)
    except PolicyDenied as exc:
        return ToolResult(
            f"{name} refused: {exc.message}", is_error=True, duration_s=time.monotonic() - started
        )
    except OSError as exc:
        message = exc.strerror or str(exc)
        where = f": {exc.filename}" if exc.filename else ""
        return ToolResult(
            f"{name} failed: {message}{where}", is_error=True, duration_s=time.monotonic() - started
        )
    if isinstance(output, ToolResult):
        return ToolResult(
            output.output, output.is_error, output.exit_code, time.monotonic() - started
        )
    return ToolResult(output, duration_s=time.monotonic() - started)


# -- argument validation --------------------------------------------------------------------------

_JSON_TYPES = {"string": "a string", "integer": "an integer", "boolean": "true or false"}


def _validate(name: str, tool_input: object) -> dict:
    """Check the arguments against the tool's schema; tolerate "3" for 3 and "true" for true."""
    if not isinstance(tool_input, dict):
        raise _ToolFailure(f"{name}: the arguments must be a JSON object")
    schema = BUILTIN_SCHEMAS[name]
    props = schema["properties"]
    unknown = sorted(set(tool_input) - set(props))
    if unknown:
        raise _ToolFailure(
            f"{name}: unknown argument(s) {', '.join(unknown)}; accepted: {', '.join(props)}"
        )
    missing = [key for key in schema["required"] if tool_input.get(key) is None]
    if missing:
        raise _ToolFailure(f"{name}: missing required argument(s) {', '.join(missing)}")
    args = {}
    for key, value in tool_input.items():
        if value is None:
            continue
        spec = props[key]
        value = _coerce(value, spec["type"])
        if value is None:
            raise _ToolFailure(f"{name}: {key} must be {_JSON_TYPES[spec['type']]}")
        if "enum" in spec and value not in spec["enum"]:
            raise _ToolFailure(f"{name}: {key} must be one of {', '.join(spec['enum'])}")
        if "minimum" in spec and value < spec["minimum"]:
            raise _ToolFailure(f"{name}: {key} must be at least {spec['minimum']}")
        args[key] = value
    return args


def _coerce(value: object, type_: str) -> object:
    if type_ == "string":
        return value if isinstance(value, str) else None
    if type_ == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        return None
    if type_ == "integer":
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            return int(value)
        return None
    return value

