"""The Python a crystallized tool runs: the learned steps as straight-line code - file reads,
writes and edits, shell commands, tool-spec calls - with constants inlined and parameters
spliced in. No model and no replay engine: the tool is an ordinary python tool spec."""

from __future__ import annotations

import keyword
from typing import Any

from llmunix.crystallize.generalize import Generalization, Number, Ref, Template
from llmunix.specs.models import ToolSpec

FUNCTION = "crystallized"

# What each reproducible built-in does in the generated code; read-only searches change
# nothing, so they leave only a comment.
READ_ONLY = frozenset({"Glob", "Grep", "LS", "TodoWrite", "NotebookRead"})

# Only `os` at the top (already loaded when Python starts): the child runs in a fresh sandboxed
# Python for each use, so what a step does not need is not imported (json, re, subprocess and
# pathlib together are ~20 ms of a ~50 ms tool).
HELPERS = r'''import os

_DONE = []


class _Failed(Exception):
    pass


def _path(name):
    root = os.path.realpath(os.getcwd())
    target = os.path.realpath(os.path.join(root, name))
    if target != root and not target.startswith(root.rstrip(os.sep) + os.sep):
        raise _Failed(f"{name} is outside the workspace")
    return target


def _need(name):
    if not os.path.isfile(_path(name)):
        raise _Failed(f"{name} does not exist (the learned runs read it)")


def _put(target, data):
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "wb") as f:
        f.write(data)


def _write(name, text):
    _put(_path(name), text.encode("utf-8"))
    _DONE.append(f"wrote {name}")


def _edit(name, old, new, replace_all=False):
    target = _path(name)
    if old == "" and not os.path.exists(target):
        _put(target, new.encode("utf-8"))
        _DONE.append(f"created {name}")
        return
    with open(target, encoding="utf-8", newline="") as f:
        text = f.read()
    count = text.count(old)
    if count == 0 or (count > 1 and not replace_all):
        raise _Failed(f"{name}: the text to replace occurs {count} times, not once")
    _put(target, text.replace(old, new).encode("utf-8"))
    _DONE.append(f"edited {name}")


def _bash(command):
    import subprocess

    done = subprocess.run(["bash", "-c", command], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise _Failed(f"`{command}` exited with {done.returncode}: {done.stderr.strip()}")
    _DONE.append(f"ran {command}")


def _text(value):
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    import json

    return json.dumps(value)


def _command(name, argv, args):
    """A command tool spec, as llmunix runs it: each {arg} fills part of one argv item."""
    import re
    import subprocess

    filled = [re.sub(r"\{([A-Za-z_][A-Za-z0-9_]*)\}",
                     lambda m: _text(args.get(m.group(1), "")), item) for item in argv]
    env = dict(os.environ, **{"LLMUNIX_ARG_" + k.upper(): _text(v) for k, v in args.items()})
    done = subprocess.run(filled, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          env=env)
    if done.returncode != 0:
        raise _Failed(f"tool {name} exited with {done.returncode}: {done.stderr.strip()}")
    _DONE.append(f"called {name}")


def _python(name, source, function, args):
    """A python tool spec whose function is in its own ```python block."""
    namespace = {"__name__": "llmunix_tool"}
    exec(compile(source, name, "exec"), namespace)
    namespace[function](**args)
    _DONE.append(f"called {name}")


def _q(value):
    import shlex

    return shlex.quote(value)


def _stem(value):
    head, _, name = value.rpartition("/")
    if "." in name.strip("."):
        name = name.rsplit(".", 1)[0]
    return f"{head}/{name}" if head else name
'''


def identifier(name: str) -> str:
    return f"{name}_" if keyword.iskeyword(name) or name.startswith("_") else name


def _expr(value: Any, *, shell: bool = False) -> str:
    if isinstance(value, Template):
        pieces = []
        for part in value.parts:
            if isinstance(part, Ref):
                ref = identifier(part.param)
                ref = f"_stem({ref})" if part.stem else ref
                pieces.append(f"_q({ref})" if shell else ref)
            else:
                pieces.append(repr(part))
        return " + ".join(pieces) or "''"
    if isinstance(value, Number):
        return f"int({identifier(value.param)})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_expr(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_expr(v) for v in value) + "]"
    return repr(value)


def step_code(label: str, tool: str, args: dict[str, Any], spec: ToolSpec | None) -> list[str]:
    """The statements of one step (`spec`: the tool spec it calls, copied into the code: a
    crystallized tool runs confined, where the workspace's specs are out of reach)."""
    head = f"    # {label}"
    if tool in READ_ONLY:
        return [f"{head}: reads only, nothing to redo"]
    if tool == "Read":
        return [head, f"    _need({_expr(args['file_path'])})"]
    if tool == "Write":
        return [head, f"    _write({_expr(args['file_path'])}, {_expr(args['content'])})"]
    if tool == "Edit":
        flag = _expr(args.get("replace_all", False))
        return [head, f"    _edit({_expr(args['file_path'])}, {_expr(args['old_string'])}, "
                      f"{_expr(args['new_string'])}, {flag})"]
    if tool == "MultiEdit":
        lines = [head]
        for edit in args.get("edits", []):
            flag = _expr(edit.get("replace_all", False))
            lines.append(f"    _edit({_expr(args['file_path'])}, {_expr(edit['old_string'])}, "
                         f"{_expr(edit['new_string'])}, {flag})")
        return lines
    if tool == "Bash":
        return [head, f"    _bash({_expr(args['command'], shell=True)})"]
    assert spec is not None, tool
    full = {**spec_defaults(spec), **args}
    if spec.kind == "command":
        argv = list(spec.command) if spec.command is not None else \
            ["sh", "-c", spec.shell_script, spec.name]
        return [head, f"    _command({tool!r}, {argv!r}, {_expr(full)})"]
    return [head, f"    _python({tool!r}, {spec.python_source!r}, {spec.python!r}, "
                  f"{_expr(full)})"]


def spec_defaults(spec: ToolSpec) -> dict[str, Any]:
    props = spec.input_schema.get("properties", {})
    return {k: v["default"] for k, v in props.items() if isinstance(v, dict) and "default" in v}


def render(gen: Generalization, steps: list[tuple[str, str, ToolSpec | None]], doc: str) -> str:
    """The ```python block: helpers, then `crystallized(<params>)` doing each step in order.
    `steps`: (label, tool, the tool spec it calls) per step, aligned with gen.steps."""
    params = [identifier(p.name) for p in gen.tool_params]
    lines = [HELPERS, "", f"def {FUNCTION}({', '.join(params)}):", f"    {doc!r}"]
    for p in params:
        lines.append(f"    if not isinstance({p}, str) or not {p} or '\\n' in {p}:")
        lines.append(f"        raise SystemExit('{p} must be one line of text')")
    lines.append("    try:")
    body = []
    for (label, tool, spec), args in zip(steps, gen.steps, strict=True):
        body += step_code(label, tool, args, spec)
    lines += ["    " + line for line in body] or ["        pass"]
    lines += [
        "    except (_Failed, OSError) as exc:",
        "        raise SystemExit(f'crystallized tool failed: {exc}') from None",
        "    return '\\n'.join(_DONE) or 'nothing to change'",
    ]
    return "\n".join(lines) + "\n"
