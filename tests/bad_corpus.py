"""A generated corpus of bad spec files: every known key with every wrong type, YAML bombs,
deep nesting, huge numbers, duplicate keys, binary and unreadable files, symlink loops."""

from __future__ import annotations

import os
from pathlib import Path

# A value of each YAML type, as frontmatter text.
VALUES = {
    "text": "'some text'",
    "integer": "7",
    "huge-integer": "9" * 60,
    "float": "2.5",
    "nan": ".nan",
    "boolean": "true",
    "null": "~",
    "list": "[a, 1]",
    "mapping": "{a: 1}",
    "date": "2024-01-02",
}

# What each key accepts (the kinds of VALUES that are fine); every other kind must be an error.
AGENT_KEYS = {
    "name": {"text"}, "description": {"text"}, "model": {"text"},
    "tools": {"text", "list-of-text"}, "disallowedTools": {"text", "list-of-text"},
    "permissionMode": {"text"}, "maxTurns": {"integer"}, "skills": {"text", "list-of-text"},
    "mcpServers": {"text", "list", "mapping"}, "hooks": {"mapping"}, "memory": {"text"},
    "background": {"boolean"}, "color": {"text"}, "allowed-tools": {"text", "list-of-text"},
    "agent_name": {"text"}, "agent_id": {"text"}, "type": {"text"}, "category": {"text"},
    "version": {"text", "integer", "float"}, "mode": {"text", "list-of-text"},
    "status": {"text"}, "capabilities": {"text", "list", "mapping"},
    "constraints": {"mapping"}, "reasoning_guidelines": {"text", "list", "mapping"},
    "error_handling": {"text", "list", "mapping"}, "component_type": {"text"},
    "claude_tools": {"text", "list-of-text"}, "tags": {"text", "list-of-text"},
    "author": {"text"}, "license": {"text"}, "metadata": {"mapping"}, "llmunix": {"mapping"},
}
LLMUNIX_KEYS = {"max_turns": {"integer"}, "budget_usd": {"integer", "float"},
                "timeout_s": {"integer", "float"}, "constraints": {"mapping"}}
TOOL_KEYS = {
    "description": {"text"}, "input": {"mapping"}, "input_schema": {"mapping"},
    "timeout": {"integer", "float"}, "deterministic": {"boolean"}, "version":
    {"text", "integer", "float"}, "status": {"text"}, "category": {"text"},
    "tags": {"text", "list-of-text"}, "author": {"text"}, "license": {"text"},
    "metadata": {"mapping"}, "command": {"text", "list"}, "python": {"text"},
}


def _agent(name: str, extra: str) -> str:
    return f"---\nname: {name}\ndescription: d\n{extra}\n---\nDo the work.\n"


def wrong_type_agents() -> dict[str, str]:
    """file name -> text: one agent per (key, wrong kind)."""
    out = {}
    for key, ok in AGENT_KEYS.items():
        for kind, value in VALUES.items():
            if kind in ok or (kind == "null"):
                continue
            if key in ("name", "description"):
                name = f"wt-{key}-{kind}"
                body = f"---\n{key}: {value}\n" + (
                    "description: d\n" if key == "name" else f"name: {name}\n")
                out[f"{name}.md"] = body + "---\nDo the work.\n"
                continue
            name = f"wt-{key.replace('_', '-')}-{kind}"
            out[f"{name}.md"] = _agent(name, f"{key}: {value}")
    for key, ok in LLMUNIX_KEYS.items():
        for kind, value in VALUES.items():
            if kind in ok or kind == "null":
                continue
            name = f"wt-llmunix-{key.replace('_', '-')}-{kind}"
            out[f"{name}.md"] = _agent(name, f"llmunix:\n  {key}: {value}")
    return out


def wrong_type_tools() -> dict[str, str]:
    out = {}
    for key, ok in TOOL_KEYS.items():
        for kind, value in VALUES.items():
            if kind in ok or kind == "null":
                continue
            name = f"wt-tool-{key.replace('_', '-')}-{kind}"
            run = "" if key in ("command", "python") else "command: [\"true\"]\n"
            out[f"{name}.md"] = f"---\nname: {name}\n{key}: {value}\n{run}---\nA tool.\n"
    return out


def bombs() -> dict[str, str]:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    prev = "a"
    for label in "bcdefghi":
        lines.append(f"{label}: &{label} [" + ", ".join([f"*{prev}"] * 9) + "]")
        prev = label
    laughs = "---\n" + "\n".join(lines) + "\nname: *i\ndescription: bomb\n---\nbody\n"
    deep_schema = '{"type": "object"}'
    for _ in range(300):
        deep_schema = '{"type": "object", "properties": {"a": ' + deep_schema + "}}"
    deep_py = "def f():\n    return " + "-" * 200_000 + "1\n"
    return {
        "bomb-laughs.md": laughs,
        "bomb-recursive.md": "---\nname: &n [*n]\ndescription: d\n---\nbody\n",
        "bomb-huge-int.md": "---\nname: big\ndescription: d\nmaxTurns: " + "9" * 5000
                            + "\n---\nbody\n",
        "bomb-deep-flow.md": "---\nname: deep\ndescription: d\nmetadata: " + "[" * 500
                             + "]" * 500 + "\n---\nbody\n",
        "bomb-dup.md": "---\nname: dup\nname: dup2\ndescription: d\n---\nbody\n",
        "bomb-bad-date.md": "---\nname: when\ndescription: d\nversion: 2024-13-45\n---\nb\n",
        "tool-deep-schema.md": "---\nname: deep-schema\ndescription: d\ninput_schema: "
                               + deep_schema + '\ncommand: ["true"]\n---\nbody\n',
        "tool-deep-json.md": "---\nname: deep-json\ndescription: d\ncommand: [\"true\"]\n---\n"
                             "```json\n" + "[" * 100_000 + "]" * 100_000 + "\n```\n",
        "tool-deep-python.md": "---\nname: deep-py\ndescription: d\npython: f\n---\n```python\n"
                               + deep_py + "```\n",
        "tool-nan-timeout.md": "---\nname: nan-timeout\ndescription: d\ntimeout: .nan\n"
                               'command: ["true"]\n---\nb\n',
        "tool-inf-timeout.md": "---\nname: inf-timeout\ndescription: d\ntimeout: .inf\n"
                               'command: ["true"]\n---\nb\n',
        "tool-bad-schema.md": "---\nname: bad-schema\ndescription: d\ninput_schema: "
                              "{type: object, properties: {a: {type: 5}}}\n"
                              'command: ["true"]\n---\nb\n',
        "tool-bad-pattern.md": "---\nname: bad-pattern\ndescription: d\ninput_schema: "
                               "{type: object, properties: {a: {type: string, pattern: '(('}}}"
                               '\ncommand: ["true"]\n---\nb\n',
    }


def binary_files() -> dict[str, bytes]:
    return {
        "bin-random.md": bytes(range(256)) * 4,
        "bin-latin1.md": "---\nname: caf\xe9\ndescription: d\n---\nb\n".encode("latin-1"),
        "bin-nul.md": b"---\nname: nul\x00\ndescription: d\n---\nb\n",
        "bin-huge.md": b"---\nname: huge\ndescription: d\n---\n" + b"x" * 1_200_000,
    }


def special_files(folder: Path) -> list[str]:
    """Files no reader can use: a symlink loop, a dangling link, a folder and a FIFO named
    like specs. Returns their names."""
    os.symlink("loop-a.md", folder / "loop-b.md")
    os.symlink("loop-b.md", folder / "loop-a.md")
    os.symlink("nowhere.md", folder / "dangling.md")
    (folder / "a-folder.md").mkdir()
    os.mkfifo(folder / "a-fifo.md")
    return ["loop-a.md", "loop-b.md", "dangling.md", "a-folder.md", "a-fifo.md"]
