"""Hostile and broken input, through the real console script: no traceback, no hang (every
command runs under a timeout), one message naming the file and line (or the cause), and one
bad file never stops boot, another agent's run, or any other command."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests import bad_corpus
from tests.examples.hello_notes import GOAL, PROJECT
from tests.support import run_cli

TIMEOUT = 60  # seconds; a command that takes longer counts as a hang


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    try:
        proc = run_cli(*args, cwd=cwd, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`llmunix {' '.join(args)[:80]}` hung for {TIMEOUT} s")
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stdout
    return proc


@pytest.fixture(scope="module")
def corpus_ws(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    """A workspace with the hello-notes example and every bad spec of the corpus beside the
    shipped ones."""
    root = tmp_path_factory.mktemp("bad") / "ws"
    proc = run_cli("init", str(root), "--example", PROJECT, cwd=root.parent)
    assert proc.returncode == 0, proc.stderr
    agents, tools = root / "agents", root / "system" / "tools"
    files: dict[str, Path] = {}
    for name in bad_corpus.wrong_type_agents():
        files[name] = agents / name
    for name in bad_corpus.wrong_type_tools():
        files[name] = tools / name
    for name in bad_corpus.bombs():
        files[name] = (tools if name.startswith("tool-") else agents) / name
    texts = {**bad_corpus.wrong_type_agents(), **bad_corpus.wrong_type_tools(),
             **bad_corpus.bombs()}
    for name, path in files.items():
        path.write_text(texts[name], encoding="utf-8")
    for name, data in bad_corpus.binary_files().items():
        files[name] = agents / name
        files[name].write_bytes(data)
    for name in bad_corpus.special_files(agents):
        files[name] = agents / name
    return root, files


def test_every_bad_spec_is_one_error_with_file_and_line(corpus_ws):
    root, files = corpus_ws
    assert len(files) > 250
    proc = cli("boot", "--json", cwd=root)
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    errors: dict[str, list[dict]] = {}
    for d in report["diagnostics"]:
        if d["severity"] == "error":
            errors.setdefault(Path(d["path"]).name, []).append(d)
    silent = sorted(name for name in files if name not in errors)
    assert silent == [], f"bad files that boot accepted: {silent}"
    # Each file that has a frontmatter to point into names the line of the fault.
    unlocated = sorted(
        name for name in files
        if name.startswith(("wt-", "bomb-", "tool-")) and not any(d["line"] for d in errors[name]))
    assert unlocated == []
    # The shipped agents and the example's are all still there.
    names = {a["name"] for a in report["agents"]}
    assert {"system-agent", "writer"} <= names
    assert len(names) == 6  # the shipped agents; none of the corpus
    assert report["ok"] is False


def test_messages_say_what_is_wrong(corpus_ws):
    root, files = corpus_ws
    report = json.loads(cli("boot", "--json", cwd=root).stdout)
    lines: dict[str, list[str]] = {name: [] for name in files}
    for d in report["diagnostics"]:
        name = Path(d["path"]).name
        if name in lines:
            lines[name].append(f"{d['path']}:{d['line']}: {d['message']}")
    expect = {
        "bomb-laughs.md": "values once aliases are expanded",
        "bomb-recursive.md": "recursive alias",
        "bomb-huge-int.md": "5,000 digits",
        "bomb-dup.md": "duplicate key 'name'",
        "bomb-bad-date.md": "month must be in 1..12",
        "tool-deep-schema.md": "nested more than",
        "tool-deep-json.md": "nested",
        "tool-deep-python.md": "python block cannot be parsed",
        "tool-nan-timeout.md": "'timeout' must be a finite number",
        "tool-bad-pattern.md": "not a regular expression",
        "tool-bad-schema.md": "unknown type 5",
        "wt-maxTurns-text.md": "'maxTurns' must be a whole number, not the text",
        "wt-llmunix-max-turns-text.md": "max_turns",
        "bin-latin1.md": "not valid UTF-8",
        "bin-huge.md": "1,000,000 bytes",
        "loop-a.md": "symbolic links",
        "a-fifo.md": "not a regular file",
        "a-folder.md": "not a regular file",
    }
    for name, words in expect.items():
        assert any(words in ln for ln in lines[name]), (name, lines[name])
    # The wrong-type message names the file and the key's line.
    assert any("wt-background-text.md:4:" in ln and "must be true or false" in ln
               for ln in lines["wt-background-text.md"]), lines["wt-background-text.md"]


def test_a_bad_file_stops_no_other_command(corpus_ws):
    root, _files = corpus_ws
    assert cli("agents", "list", cwd=root).returncode == 0
    assert cli("tools", "list", cwd=root).returncode == 0
    assert cli("agents", "show", "writer", cwd=root).returncode == 0
    notes = root / "projects" / PROJECT / "workspace"
    tool = cli("tools", "run", "word-count", "--project", PROJECT, "--arg",
               f"path={next(notes.glob('meetings/*.md')).relative_to(notes)}", cwd=root)
    assert tool.returncode == 0, tool.stderr
    replay = cli("run", GOAL, "--project", PROJECT, "--mode", "follower", cwd=root)
    assert replay.returncode == 0, replay.stderr
    assert (notes / "action_items.md").is_file()


def test_the_spec_cache_stays_small(corpus_ws):
    root, _files = corpus_ws
    cli("boot", cwd=root)
    cache = root / ".llmunix" / "spec-cache.marshal"
    assert cache.is_file() and cache.stat().st_size < 2_000_000


@pytest.mark.parametrize("args, words", [
    (["trace", "show", "/dev/zero"], ("not a regular file", "no trace with the id")),
    (["trace", "replay", "/dev/zero"], ("not a regular file", "no trace with the id")),
    (["trace", "show", "."], ("not a regular file", "no trace with the id")),
    (["trace", "show", "missing.md"], ("No such file", "no trace with the id")),
    (["trace", "show", "binary.md"], "not UTF-8"),
    (["trace", "replay", "binary.md"], "not UTF-8"),
    (["trace", "show", "fifo.md"], ("not a regular file", "no trace with the id")),
    (["run", os.fsdecode(b"caf\xe9 goal")], "not valid UTF-8"),
    (["run", "   "], "the goal is empty"),
    (["run", "x", "--runtime", "openai", "--base-url", "http://[::1"], "not a valid URL"),
    (["run", "x", "--runtime", "openai", "--base-url", "http://h:99999"], "not a valid URL"),
    (["run", "x", "--runtime", "openai", "--base-url", "file:///etc"], "not an http(s) URL"),
    (["tools", "run", "word-count", "--json-args", "[" * 5000 + "]" * 5000], "JSON"),
    (["tools", "run", "word-count", "--arg", "path"], "not key=value"),
    (["tools", "run", "no-such-tool"], "no tool named"),
    (["memory", "revert", "no-such-run"], "no run commit"),
    (["memory", "diff", "no-such-rev"], "unknown revision"),
])
def test_bad_arguments_are_one_line(tmp_path, args, words):
    root = tmp_path / "ws"
    assert run_cli("init", str(root), cwd=tmp_path).returncode == 0
    (root / "binary.md").write_bytes(b"---\nstatus: \xff\xfe\n---\n")
    os.mkfifo(root / "fifo.md")
    proc = cli(*args, cwd=root)
    assert proc.returncode not in (0, None)
    first = proc.stderr.strip().splitlines()[0]
    assert first.startswith("error:"), proc.stderr
    assert any(w in first for w in ((words,) if isinstance(words, str) else words)), first


@pytest.mark.parametrize("text, words", [
    ("[limits]\nmax_turns = " + "9" * 5000 + "\n", "digits"),
    ("x = " + "[" * 3000 + "]" * 3000 + "\n", "nested too deeply"),
    ("[limits]\ntimeout_s = nan\n", "timeout_s"),
    ("[limits]\nmax_turns = \"12\"\n", "max_turns"),
    ("[policy]\ndeny_commands = ['re:((']\n", "pattern"),
    ("\xff\xfe", "cannot read the configuration"),
    ("[limits\n", "invalid TOML"),
])
def test_a_bad_configuration_is_one_line_naming_the_file(tmp_path, text, words):
    root = tmp_path / "ws"
    assert run_cli("init", str(root), cwd=tmp_path).returncode == 0
    raw = text.encode("latin-1") if text.startswith("\xff") else text.encode()
    (root / "llmunix.toml").write_bytes(raw)
    for args in (["boot"], ["run", "a goal", "--mode", "learner"]):
        proc = cli(*args, cwd=root)
        assert proc.returncode == 1
        first = proc.stderr.strip().splitlines()[0]
        assert "llmunix.toml" in first and words in proc.stderr, proc.stderr
