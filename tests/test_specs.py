"""Parsing agent and tool specs: every dialect, and every kind of bad input with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmunix.specs.agents import load_agent
from llmunix.specs.tools import load_tool

DIALECTS = Path(__file__).parent / "fixtures" / "dialects"


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def only_error(problems):
    errors = [p for p in problems if p.severity == "error"]
    assert len(errors) == 1, problems
    return errors[0]


# ---------------------------------------------------------------- dialects


def test_claude_code_subagent_loads_as_is():
    spec, problems = load_agent(DIALECTS / "claude_code_reviewer.md", "claude")
    assert problems == []
    assert spec.name == "code-reviewer"
    assert spec.tools == ("Read", "Grep", "Glob", "Bash")
    assert spec.model is None  # "inherit"
    assert spec.prompt.startswith("You are a senior code reviewer.")
    assert spec.dialect == "claude-code"


def test_claude_code_list_tools_and_extra_keys():
    spec, problems = load_agent(DIALECTS / "claude_code_full.md", "user")
    assert problems == []
    assert spec.tools == ("Bash", "Read", "Write")
    assert spec.disallowed_tools == ("WebSearch",)
    assert spec.model == "sonnet"
    assert spec.permission_mode == "acceptEdits"
    assert spec.settings.max_turns == 12  # maxTurns mapped onto the enforced limit
    assert spec.mcp_servers == (("github",), ())  # names of servers defined in .mcp.json
    assert spec.color == "blue"


def test_llmunix_2025_dialect_maps_agent_name_and_task():
    spec, problems = load_agent(DIALECTS / "llmunix_2025_system.md", "system")
    assert problems == []
    assert spec.name == "system-agent"
    assert spec.dialect == "llmunix"
    assert "Agent" in spec.tools and "Task" not in spec.tools  # Task is the old name of Agent


def test_edge_dialect_constraints_are_enforced_and_guidelines_in_prompt():
    spec, problems = load_agent(DIALECTS / "edge_file_processor.md", "system")
    assert [p.message for p in problems] == [
        "no 'name' key; using 'agent_id' (file-processor) as the name",
        "no 'description'; using the first line of the body",
    ]
    assert problems[0].line == 2
    assert spec.name == "file-processor"
    assert spec.settings.constraints.max_file_size_mb == 2
    assert spec.settings.constraints.allowed_extensions == [".txt", ".md"]
    assert "## Reasoning guidelines" in spec.prompt
    assert "Process one file at a time" in spec.prompt
    assert "## Error handling" in spec.prompt
    assert spec.description == "You process text files in the workspace."


def test_llmunix_block_settings():
    spec, problems = load_agent(DIALECTS / "llmunix_native.md", "project:x")
    assert problems == []
    assert spec.settings.max_turns == 8
    assert spec.settings.budget_usd == 0.25
    assert spec.settings.timeout_s == 120
    assert spec.settings.constraints.write_paths == ["notes/**"]
    assert len(spec.content_hash) == 12


def test_name_falls_back_to_file_name_with_warning(tmp_path):
    path = write(tmp_path, "Helper.md", "---\ndescription: helps\n---\nHelp.\n")
    spec, problems = load_agent(path, "user")
    assert spec.name == "Helper"
    assert problems[0].severity == "warning"
    assert "file name 'Helper'" in problems[0].message


def test_bom_and_crlf_are_accepted(tmp_path):
    text = "---\r\nname: crlf\r\ndescription: d\r\ntools: Read\r\n---\r\nBody line.\r\n"
    path = write(tmp_path, "crlf.md", b"\xef\xbb\xbf" + text.encode())
    spec, problems = load_agent(path, "user")
    assert problems == []
    assert spec.name == "crlf" and spec.prompt == "Body line."


# ---------------------------------------------------------------- bad input


def test_frontmatter_not_closed(tmp_path):
    path = write(tmp_path, "a.md", "---\nname: a\ndescription: b\nBody\n")
    spec, problems = load_agent(path, "user")
    assert spec is None
    err = only_error(problems)
    assert "not closed" in err.message and err.line == 1 and err.path == str(path)


def test_yaml_syntax_error_reports_line(tmp_path):
    path = write(tmp_path, "a.md", "---\nname: a\ndescription: [unclosed\ntools: Read\n---\nBody\n")
    spec, problems = load_agent(path, "user")
    err = only_error(problems)
    assert spec is None
    assert "YAML syntax error" in err.message
    assert err.line in (3, 4, 5)


@pytest.mark.parametrize(
    "frontmatter, kind", [("- a\n- b", "a list"), ("just a string", "a single value")]
)
def test_frontmatter_must_be_a_mapping(tmp_path, frontmatter, kind):
    path = write(tmp_path, "a.md", f"---\n{frontmatter}\n---\nBody\n")
    err = only_error(load_agent(path, "user")[1])
    assert f"frontmatter is {kind}" in err.message and err.line == 2


def test_invalid_name_characters(tmp_path):
    path = write(tmp_path, "a.md", "---\nname: my agent!\ndescription: d\n---\nBody\n")
    spec, problems = load_agent(path, "user")
    err = only_error(problems)
    assert spec is None and "invalid name" in err.message and err.line == 2


def test_empty_body_is_an_error(tmp_path):
    path = write(tmp_path, "a.md", "---\nname: a\ndescription: d\n---\n\n  \n")
    err = only_error(load_agent(path, "user")[1])
    assert "empty body" in err.message


def test_non_utf8_reports_line(tmp_path):
    path = write(tmp_path, "a.md", b"---\nname: a\ndescription: caf\xe9\n---\nBody\n")
    err = only_error(load_agent(path, "user")[1])
    assert "not valid UTF-8" in err.message and err.line == 3


def test_file_over_one_megabyte_is_refused(tmp_path):
    path = write(tmp_path, "a.md", "---\nname: a\ndescription: d\n---\n" + "x" * 1_000_001)
    err = only_error(load_agent(path, "user")[1])
    assert "limited to 1,000,000 bytes" in err.message


def test_unknown_top_level_key_warns_but_loads(tmp_path):
    path = write(tmp_path, "a.md", "---\nname: a\ndescription: d\nfavourite_colour: red\n---\nB\n")
    spec, problems = load_agent(path, "user")
    assert spec is not None
    assert problems[0].severity == "warning" and problems[0].line == 4
    assert "favourite_colour" in problems[0].message


def test_unknown_key_inside_llmunix_block_is_an_error(tmp_path):
    path = write(
        tmp_path, "a.md", "---\nname: a\ndescription: d\nllmunix:\n  max_turn: 3\n---\nB\n"
    )
    spec, problems = load_agent(path, "user")
    err = only_error(problems)
    assert spec is None
    assert "unknown setting 'llmunix.max_turn'" in err.message
    assert err.line == 5 and "max_turns" in err.hint


def test_invalid_llmunix_value(tmp_path):
    path = write(
        tmp_path, "a.md", "---\nname: a\ndescription: d\nllmunix:\n  budget_usd: -1\n---\nB\n"
    )
    err = only_error(load_agent(path, "user")[1])
    assert "llmunix.budget_usd" in err.message and err.line == 5


def test_tools_of_wrong_type(tmp_path):
    path = write(tmp_path, "a.md", "---\nname: a\ndescription: d\ntools: {Read: 1}\n---\nB\n")
    err = only_error(load_agent(path, "user")[1])
    assert "'tools' must be a list" in err.message and err.line == 4


# ---------------------------------------------------------------- tools


def test_command_tool_short_schema(tmp_path):
    path = write(
        tmp_path,
        "wc.md",
        "---\nname: wc\ndescription: count\ninput:\n  path: string\n"
        "  lines: {type: boolean, default: false, description: only lines}\n"
        "command: wc -l {path}\ntimeout: 5\n---\nCounts.\n",
    )
    spec, problems = load_tool(path, "system")
    assert problems == []
    assert spec.kind == "command" and spec.command == ("wc", "-l", "{path}")
    assert spec.input_schema["required"] == ["path"]
    assert spec.input_schema["properties"]["lines"]["default"] is False
    assert spec.timeout_s == 5


def test_python_tool_with_body_block(tmp_path):
    path = write(
        tmp_path,
        "add.md",
        "---\nname: add\ndescription: adds\ninput:\n  a: integer\n  b: integer\npython: add\n---\n"
        "```python\ndef add(a, b):\n    return a + b\n```\n",
    )
    spec, problems = load_tool(path, "system")
    assert problems == []
    assert spec.kind == "python" and spec.python == "add" and "def add" in spec.python_source


def test_python_block_syntax_error_has_file_line(tmp_path):
    path = write(
        tmp_path,
        "bad.md",
        "---\nname: bad\ndescription: d\npython: f\n---\nIntro.\n\n"
        "```python\ndef f(:\n    pass\n```\n",
    )
    err = only_error(load_tool(path, "system")[1])
    assert "syntax error" in err.message and err.line == 9


def test_prompt_tool_and_legacy_dialects(tmp_path):
    prompt = write(tmp_path, "p.md", "---\nname: p\ndescription: d\n---\nDo the thing.\n")
    assert load_tool(prompt, "system")[0].kind == "prompt"
    legacy = write(
        tmp_path,
        "legacy.md",
        "---\ncomponent_type: tool\ntool_name: old-tool\nversion: '1'\nclaude_tools: [Bash]\n"
        "description: legacy\n---\n## Parameters\n- x: text\n",
    )
    spec, problems = load_tool(legacy, "system")
    assert spec.name == "old-tool" and spec.kind == "prompt"
    assert [p for p in problems if p.severity == "error"] == []
    sh = write(
        tmp_path,
        "sh.md",
        "---\nname: greet\ndescription: says hi\n---\n```json\n"
        '{"type": "object", "properties": {"who": {"type": "string"}}}\n```\n'
        '```sh\necho "hello $LLMUNIX_ARG_WHO"\n```\n',
    )
    spec, problems = load_tool(sh, "system")
    assert problems == []
    assert spec.kind == "command" and "LLMUNIX_ARG_WHO" in spec.shell_script
    assert spec.input_schema["properties"]["who"]["type"] == "string"


def test_command_placeholder_must_be_declared(tmp_path):
    path = write(
        tmp_path,
        "t.md",
        "---\nname: t\ndescription: d\ninput:\n  a: string\ncommand: [echo, '{b}']\n---\nx\n",
    )
    err = only_error(load_tool(path, "system")[1])
    assert "{b}" in err.message and err.line == 6


def test_unknown_schema_type(tmp_path):
    path = write(
        tmp_path, "t.md", "---\nname: t\ndescription: d\ninput:\n  a: text\ncommand: echo\n---\nx\n"
    )
    err = only_error(load_tool(path, "system")[1])
    assert "type 'text'" in err.message and err.line == 5
