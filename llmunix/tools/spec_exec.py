"""Running `command` and `python` tool specs: arguments validated against the spec's schema, then
passed as separate argv items and environment variables, never through a shell string."""

from __future__ import annotations

import json
import marshal
import re
import sys
from pathlib import Path
from typing import Any

from llmunix.errors import ToolError
from llmunix.specs.models import ToolSpec
from llmunix.tools.process import MAX_OUTPUT_CHARS, run_process
from llmunix.tools.result import ToolResult
from llmunix.tools.sandbox import Sandbox

_PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
ENV_PREFIX = "LLMUNIX_ARG_"

# Runs in the child: calls the tool's function with the arguments read from stdin. They come
# marshalled (the child is the same Python): `marshal` is built in, where `json` would cost the
# child ~9 ms of imports (re, enum, ...) before the tool's first line.
_PYTHON_RUNNER = """\
import marshal, sys
req = marshal.loads(sys.stdin.buffer.read())
if req["source"] is not None:
    ns = {"__name__": "llmunix_tool"}
    exec(compile(req["source"], req["filename"], "exec"), ns)
    fn = ns[req["function"]]
else:
    import importlib
    sys.path.insert(0, req["tool_dir"])
    module, _, name = req["function"].partition(":")
    fn = getattr(importlib.import_module(module), name)
result = fn(**req["args"])
if result is not None:
    if not isinstance(result, str):
        import json
        result = json.dumps(result, indent=2, default=str)
    sys.stdout.write(result)
"""


def coerce_cli_args(spec: ToolSpec, pairs: list[str]) -> dict[str, Any]:
    """`key=value` strings from the command line, typed by the spec's schema."""
    props = spec.input_schema.get("properties", {})
    args: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ToolError(f"argument {pair!r} is not key=value", hint="e.g. --arg path=notes.md")
        kind = props.get(key, {}).get("type", "string")
        if kind == "string":
            args[key] = raw
            continue
        try:
            args[key] = json.loads(raw)
        except json.JSONDecodeError:
            raise ToolError(
                f"argument {key}={raw!r} is not a valid {kind}",
                hint="numbers, booleans, arrays and objects are written as JSON",
            ) from None
    return args


# What `_plainly_valid` knows: a flat object of scalar properties, the schema most tool specs
# (and every crystallized tool) have; JSON Schema's type of each Python value, exactly.
_SCALAR_TYPES = {"string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,)}
_PLAIN_SCHEMA_KEYS = {"type", "properties", "required", "additionalProperties", "description",
                      "title"}
_PLAIN_PROPERTY_KEYS = {"type", "description", "title", "default", "format", "access"}


def _plainly_valid(schema: dict[str, Any], args: dict[str, Any]) -> bool:
    """True only when `args` certainly satisfies a schema of the flat kind above; False means
    "ask jsonschema", imported then (~90 ms: most of a crystallized tool's own time). `format`
    and `access` constrain nothing here: jsonschema checks no format unless asked, and path
    arguments are checked by the policy."""
    if not schema.keys() <= _PLAIN_SCHEMA_KEYS or schema.get("type") != "object":
        return False
    props = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    required = schema.get("required", [])
    if not isinstance(props, dict) or type(extra) is not bool \
            or not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        return False
    if any(name not in args for name in required):
        return False
    for name, value in args.items():
        prop = props.get(name)
        if prop is None:
            if not extra:
                return False
            continue
        if not isinstance(prop, dict) or not prop.keys() <= _PLAIN_PROPERTY_KEYS:
            return False
        kind = prop.get("type")
        kinds = _SCALAR_TYPES.get(kind) if isinstance(kind, str) else None
        if kinds is None or isinstance(value, bool) and bool not in kinds \
                or not isinstance(value, kinds):
            return False
    return True


def validate_args(spec: ToolSpec, args: dict[str, Any]) -> dict[str, Any]:
    """Apply defaults and check `args` against the spec's JSON Schema."""
    props = spec.input_schema.get("properties", {})
    full = {k: v["default"] for k, v in props.items() if isinstance(v, dict) and "default" in v}
    full.update(args)
    if _plainly_valid(spec.input_schema, full):
        return full
    import jsonschema

    try:
        validator = jsonschema.Draft202012Validator(spec.input_schema)
        errors = sorted(validator.iter_errors(full), key=lambda e: list(e.path))
    except Exception as exc:  # noqa: BLE001 - a schema jsonschema cannot use (bad type, regex)
        raise ToolError(f"tool '{spec.name}': its input schema cannot be used: "
                        f"{str(exc).splitlines()[0][:200]}", path=spec.path,
                        hint="fix 'input_schema' in the tool's file") from None
    if errors:
        err = errors[0]
        where = ".".join(str(p) for p in err.absolute_path) or "arguments"
        raise ToolError(
            f"tool '{spec.name}': {where}: {err.message}",
            path=spec.path,
            hint=f"expected arguments: {_describe(props)}",
        )
    return full


def _describe(props: dict[str, Any]) -> str:
    return ", ".join(f"{k} ({v.get('type', 'any')})" for k, v in props.items()) or "none"


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value) if not isinstance(value, (int, float)) or isinstance(value, bool) \
        else str(value)


def tool_env(args: dict[str, Any]) -> dict[str, str]:
    """The arguments as variables; the sandbox adds its allow-listed environment to them."""
    env: dict[str, str] = {}
    for key, value in args.items():
        env[ENV_PREFIX + key.upper()] = _as_text(value)
    return env


def build_argv(spec: ToolSpec, args: dict[str, Any]) -> list[str]:
    """Each placeholder fills part of exactly one argv item; nothing is ever re-split."""
    if spec.shell_script is not None:
        return ["sh", "-c", spec.shell_script, spec.name]
    assert spec.command is not None
    return [_PLACEHOLDER_RE.sub(lambda m: _as_text(args.get(m.group(1), "")), item)
            for item in spec.command]


def run_tool_spec(spec: ToolSpec, args: dict[str, Any], *, sandbox: Sandbox,
                  cwd: Path | None = None, timeout_s: float | None = None,
                  max_output_chars: int = MAX_OUTPUT_CHARS) -> ToolResult:
    """Run a command or python tool in `sandbox`. Bad arguments raise ToolError, a sandbox that
    cannot start SandboxUnavailable; a failing tool is a result."""
    if spec.kind == "prompt":
        raise ToolError(
            f"tool '{spec.name}' is a prompt tool: a model follows its instructions",
            hint="run it inside `llmunix run`, where the runtime executes it",
        )
    args = validate_args(spec, args)
    timeout = timeout_s or spec.timeout_s
    env = tool_env(args)
    try:
        if spec.kind == "command":
            proc = run_process(build_argv(spec, args), sandbox=sandbox, cwd=cwd,
                               timeout_s=timeout, env=env, read_only=[spec.path.parent],
                               max_chars=max_output_chars)
        else:
            request = {
                "source": spec.python_source,
                "filename": str(spec.path),
                "function": spec.python,
                "tool_dir": str(spec.path.parent),
                "args": args,
            }
            proc = run_process([sys.executable, "-c", _PYTHON_RUNNER], sandbox=sandbox, cwd=cwd,
                               timeout_s=timeout, env=env, stdin_text=marshal.dumps(request),
                               read_only=[spec.path.parent], max_chars=max_output_chars)
    except FileNotFoundError as exc:
        raise ToolError(f"tool '{spec.name}': program not found: {exc.filename}",
                        path=spec.path, hint="install it or fix 'command:'") from exc
    except OSError as exc:
        raise ToolError(f"tool '{spec.name}' could not start: {exc}", path=spec.path) from exc
    output = proc.output  # past max_output_chars: its first and last half, marked between
    if proc.timed_out:
        return ToolResult(
            f"{output}\n[tool '{spec.name}' timed out after {timeout:g} s and was killed]"
            .lstrip(),
            is_error=True,
            exit_code=None,
            duration_s=proc.duration_s,
        )
    return ToolResult(output, proc.exit_code != 0, proc.exit_code, proc.duration_s)
