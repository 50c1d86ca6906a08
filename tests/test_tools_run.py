"""`llmunix tools run`: command and python tools, injection attempts, timeouts, schema errors."""

from __future__ import annotations

import json

import pytest

from tests.support import ADD_TOOL, ECHO_TOOL, new_workspace, run_cli, write_spec

pytestmark = pytest.mark.usefixtures("bubblewrap")  # every tool runs in the sandbox

SLOW_TOOL = """---
name: slow
description: Sleeps with a child process.
command: ["sh", "-c", "sleep 30 & sleep 30"]
timeout: 0.5
---
Slow.
"""

ENV_TOOL = """---
name: env-echo
description: Shell script reading its argument from the environment.
---
```json
{"type": "object", "properties": {"who": {"type": "string"}}, "required": ["who"]}
```
```sh
printf 'hello %s' "$LLMUNIX_ARG_WHO"
```
"""


@pytest.fixture()
def ws(tmp_path):
    ws = new_workspace(tmp_path / "ws")
    project = ws.ensure_project("default")
    for name, text in (("echo.md", ECHO_TOOL), ("add.md", ADD_TOOL), ("slow.md", SLOW_TOOL),
                       ("env.md", ENV_TOOL)):
        write_spec(project.tools_dir, name, text)
    return ws


def test_command_tool_runs_in_workspace(ws):
    result = run_cli("tools", "run", "echo-arg", "--arg", "text=hi there", cwd=ws.root)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hi there|\n"
    assert "echo-arg: ok, exit 0" in result.stderr


def test_shell_injection_is_just_an_argument(ws):
    marker = ws.root / "pwned"
    payload = f"x; touch {marker} && echo $(touch {marker})"
    result = run_cli("tools", "run", "echo-arg", "--arg", f"text={payload}", cwd=ws.root)
    assert result.returncode == 0
    assert result.stdout == payload + "|\n"
    assert not marker.exists()
    env_result = run_cli("tools", "run", "env-echo", "--arg", f"who=`touch {marker}`", cwd=ws.root)
    assert env_result.stdout == f"hello `touch {marker}`\n"
    assert not marker.exists()


def test_python_tool_with_default_and_json_args(ws):
    result = run_cli("tools", "run", "add", "--arg", "a=5", cwd=ws.root)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"sum": 15}
    result = run_cli("tools", "run", "add", "--json-args", '{"a": 1, "b": 2}', cwd=ws.root)
    assert json.loads(result.stdout) == {"sum": 3}


def test_schema_violation_is_refused_before_running(ws):
    result = run_cli("tools", "run", "add", "--json-args", '{"a": "five"}', cwd=ws.root)
    assert result.returncode == 1
    assert "a: 'five' is not of type 'integer'" in result.stderr
    missing = run_cli("tools", "run", "add", cwd=ws.root)
    assert missing.returncode == 1 and "'a' is a required property" in missing.stderr
    unknown = run_cli("tools", "run", "echo-arg", "--arg", "text=x", "--arg", "nope=1",
                      cwd=ws.root)
    assert unknown.returncode == 1 and "nope" in unknown.stderr


def test_timeout_kills_the_process_group(ws):
    result = run_cli("tools", "run", "slow", cwd=ws.root)
    assert result.returncode == 1
    assert "timed out after 0.5 s" in result.stdout
    leftover = run_cli("tools", "run", "echo-arg", "--arg", "text=x", cwd=ws.root)
    assert leftover.returncode == 0
    import subprocess

    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "sleep 30 & sleep 30" not in ps


def test_shipped_tools_run(ws):
    project = ws.project("default")
    (project.workspace_dir / "data.csv").write_text("name,score\nann,3\nbob,5\n")
    csv = run_cli("tools", "run", "csv-summary", "--arg", "path=data.csv", cwd=ws.root)
    assert csv.returncode == 0, csv.stderr + csv.stdout
    assert "score" in csv.stdout and "2" in csv.stdout
    wc = run_cli("tools", "run", "word-count", "--arg", "path=data.csv", cwd=ws.root)
    assert wc.returncode == 0, wc.stderr
    assert wc.stdout.split()[:3] == ["3", "3", "23"]


def test_unknown_tool_and_prompt_tool(ws):
    unknown = run_cli("tools", "run", "nope", cwd=ws.root)
    assert unknown.returncode == 1 and "no tool named 'nope'" in unknown.stderr
    prompt = run_cli("tools", "run", "summarize", "--arg", "source=x", cwd=ws.root)
    assert prompt.returncode == 1 and "prompt tool" in prompt.stderr


def test_path_arguments_are_checked_before_the_tool_runs(ws):
    for value, why in (("../../../llmunix.toml", "is outside the workspace"),
                       ("/etc/passwd", "is outside the workspace"),
                       ("-", "starts with '-'")):
        result = run_cli("tools", "run", "word-count", "--arg", f"path={value}", cwd=ws.root)
        assert result.returncode == 1, value
        assert why in result.stderr and "Traceback" not in result.stderr, value
        assert "[run]" not in result.stdout and "root:" not in result.stdout


def test_a_path_argument_must_be_a_string_with_read_or_write(ws):
    bad = """---
name: bad-path
description: A path argument with an unknown access.
input:
  target: {type: string, format: path, access: delete}
command: ["true"]
---
Bad.
"""
    path = write_spec(ws.ensure_project("default").tools_dir, "bad-path.md", bad)
    result = run_cli("boot", cwd=ws.root)
    assert result.returncode == 1
    assert f"{path.name}:5" in result.stdout + result.stderr
    assert "access read or write" in result.stdout + result.stderr


# ---------------------------------------------------------------- arguments without jsonschema

FLAT = {"type": "object", "properties": {"s": {"type": "string", "format": "path"},
                                         "i": {"type": "integer", "default": 2},
                                         "n": {"type": "number"}, "b": {"type": "boolean"}},
        "required": ["s"]}
CASES = [
    (FLAT, {"s": "a"}), (FLAT, {"s": "a", "i": 3, "n": 1.5, "b": False}), (FLAT, {}),
    (FLAT, {"s": 1}), (FLAT, {"s": "a", "i": True}), (FLAT, {"s": "a", "i": 1.0}),
    (FLAT, {"s": "a", "n": True}), (FLAT, {"s": "a", "b": 0}), (FLAT, {"s": "a", "x": 1}),
    ({**FLAT, "additionalProperties": False}, {"s": "a", "x": 1}),
    ({**FLAT, "additionalProperties": False}, {"s": "a"}),
    ({**FLAT, "additionalProperties": {"type": "string"}}, {"s": "a", "x": 1}),
    ({"type": "object", "properties": {"e": {"type": "string", "enum": ["x"]}}}, {"e": "y"}),
    ({"type": "object", "properties": {"m": {"type": "string", "maxLength": 1}}}, {"m": "yy"}),
    ({"type": "object", "properties": {"l": {"type": "array"}}}, {"l": [1]}),
    ({"type": "object", "properties": {"u": {"type": ["string", "null"]}}}, {"u": None}),
    ({"type": "object", "properties": {"s": {"type": "string"}}, "minProperties": 2}, {"s": "a"}),
    ({"type": "object", "required": "s"}, {"s": "a"}),
    ({"type": "object"}, {"anything": [1, {"x": 2}]}),
]


@pytest.mark.parametrize("schema, args", CASES)
def test_arguments_taken_without_jsonschema_are_ones_jsonschema_takes(schema, args):
    import jsonschema

    from llmunix.tools.spec_exec import _plainly_valid

    props = schema.get("properties", {})
    full = {k: v["default"] for k, v in props.items() if "default" in v} | args
    try:
        valid = not list(jsonschema.Draft202012Validator(schema).iter_errors(full))
    except Exception:  # noqa: BLE001 - a schema jsonschema cannot use
        valid = False
    if _plainly_valid(schema, full):
        assert valid  # it never takes what jsonschema refuses
    flat = schema.keys() <= {"type", "properties", "required", "additionalProperties"} \
        and type(schema.get("additionalProperties", True)) is bool \
        and isinstance(schema.get("required", []), list) \
        and all(p.keys() <= {"type", "default", "format"} and p["type"] in (
            "string", "integer", "number", "boolean") for p in props.values())
    integral_float = any(type(v) is float and props.get(k, {}).get("type") == "integer"
                         for k, v in full.items())
    if flat and valid and not integral_float:
        assert _plainly_valid(schema, full)  # and for the flat kind it takes what it takes


def test_a_crystallized_kind_of_call_loads_no_jsonschema(tmp_path):
    import subprocess
    import sys

    code = ("import sys\nfrom pathlib import Path\n"
            "from llmunix.specs.models import ToolSpec\n"
            "from llmunix.tools.spec_exec import validate_args\n"
            "spec = ToolSpec(name='t', description='', kind='python', path=Path('t.md'),\n"
            "    input_schema={'type': 'object', 'properties': {'name': {'type': 'string'}},\n"
            "                  'required': ['name']})\n"
            "assert validate_args(spec, {'name': 'zeta'}) == {'name': 'zeta'}\n"
            "print('jsonschema' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
