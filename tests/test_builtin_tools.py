"""llmunix's own Read, Write, Edit, Glob, Grep and Bash."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from llmunix.policy.gate import Policy
from llmunix.tools.builtin import (
    BUILTIN_SCHEMAS,
    MAX_READ_CHARS,
    openai_tools,
    run_builtin,
)
from llmunix.tools.process import MAX_OUTPUT_CHARS
from llmunix.tools.result import ToolResult
from tests.support import processes_gone


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    workspace = tmp_path / "workspace"
    (workspace / "docs" / "deep").mkdir(parents=True)
    (workspace / "src").mkdir()
    (workspace / "notes.txt").write_text("alpha\nbeta\ngamma\nBeta again\n")
    (workspace / "docs" / "guide.md").write_text("# Guide\nuse beta here\n")
    (workspace / "docs" / "deep" / "faq.md").write_text("no match\n")
    (workspace / "src" / "app.py").write_text("def beta():\n    return 1\n")
    (workspace / "src" / "util.js").write_text("const beta = 2;\n")
    return workspace


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text("beta secret\n")
    return folder


@pytest.fixture
def policy(ws: Path) -> Policy:
    return Policy(ws)


def run(policy: Policy, name: str, **tool_input) -> ToolResult:
    return run_builtin(name, tool_input, policy=policy)


# -- schemas and argument validation --------------------------------------------------------------


def test_schemas_cover_the_builtins_with_descriptions():
    assert set(BUILTIN_SCHEMAS) == {"Read", "Write", "Edit", "Glob", "Grep", "Bash"}
    for schema in BUILTIN_SCHEMAS.values():
        assert schema["type"] == "object"
        assert schema["description"] and "\n" not in schema["description"]
        assert set(schema["required"]) <= set(schema["properties"])


def test_openai_tools_shape():
    tools = openai_tools(["Read", "Agent", "Bash"])
    assert [t["function"]["name"] for t in tools] == ["Read", "Bash"]
    read = tools[0]
    assert read["type"] == "function"
    assert read["function"]["description"] == BUILTIN_SCHEMAS["Read"]["description"]
    assert "description" not in read["function"]["parameters"]
    assert read["function"]["parameters"]["required"] == ["file_path"]
    assert len(openai_tools()) == 6


@pytest.mark.parametrize(
    ("name", "tool_input", "message"),
    [
        ("Read", {}, "Read: missing required argument(s) file_path"),
        ("Read", {"file_path": 5}, "Read: file_path must be a string"),
        ("Read", {"file_path": "a", "limit": "many"}, "Read: limit must be an integer"),
        ("Read", {"file_path": "a", "limit": 0}, "Read: limit must be at least 1"),
        ("Read", {"file_path": "a", "pages": "1"}, "Read: unknown argument(s) pages"),
        ("Write", {"file_path": "a"}, "Write: missing required argument(s) content"),
        (
            "Edit",
            {"file_path": "a", "old_string": "x", "new_string": "y", "replace_all": "yes"},
            "Edit: replace_all must be true or false",
        ),
        ("Grep", {"pattern": "x", "output_mode": "lines"}, "Grep: output_mode must be one of"),
        ("Bash", {"command": ["ls"]}, "Bash: command must be a string"),
        ("Bash", "ls", "Bash: the arguments must be a JSON object"),
        ("Frobnicate", {}, "Unknown built-in tool 'Frobnicate'"),
    ],
)
def test_model_mistakes_are_error_results(policy, name, tool_input, message):
    result = run_builtin(name, tool_input, policy=policy)
    assert result.is_error
    assert result.output.startswith(message)


def test_lenient_scalars_are_accepted(policy):
    result = run(policy, "Read", file_path="notes.txt", offset="2", limit=1.0)
    assert result.output.splitlines()[0] == "     2\tbeta"
    result = run(
        policy, "Edit", file_path="notes.txt", old_string="a", new_string="A", replace_all="true"
    )
    assert not result.is_error


def test_null_optional_arguments_are_ignored(policy):
    result = run(policy, "Read", file_path="notes.txt", offset=None, limit=None)
    assert not result.is_error


# -- Read ---------------------------------------------------------------------------------------


def test_read_numbers_lines_like_cat_n(policy):
    result = run(policy, "Read", file_path="notes.txt")
    assert result == ToolResult(
        "     1\talpha\n     2\tbeta\n     3\tgamma\n     4\tBeta again",
        duration_s=result.duration_s,
    )


def test_read_offset_and_limit(policy):
    result = run(policy, "Read", file_path="notes.txt", offset=2, limit=2)
    assert result.output == (
        "     2\tbeta\n     3\tgamma\n... [more lines follow; read on with offset=4]"
    )
    assert run(policy, "Read", file_path="notes.txt", offset=4).output == "     4\tBeta again"


def test_read_past_the_end_and_empty_file(policy, ws):
    result = run(policy, "Read", file_path="notes.txt", offset=10)
    assert result.output == "notes.txt has only 4 lines; offset 10 is past the end."
    (ws / "empty.txt").write_text("")
    assert run(policy, "Read", file_path="empty.txt").output == "empty.txt is empty."


def test_read_caps_long_lines_and_total_size(policy, ws):
    (ws / "wide.txt").write_text("x" * 5000 + "\nshort\n")
    lines = run(policy, "Read", file_path="wide.txt").output.splitlines()
    assert lines[0].endswith(" ... [line truncated]") and len(lines[0]) < 2100
    assert lines[1] == "     2\tshort"
    (ws / "big.txt").write_text(("y" * 999 + "\n") * 500)
    result = run(policy, "Read", file_path="big.txt")
    assert len(result.output) <= MAX_READ_CHARS + 100
    shown = result.output.count("\n")  # lines shown before the note
    assert result.output.endswith(f"read on with offset={shown + 1}]")


def test_read_keeps_other_line_endings_readable(policy, ws):
    (ws / "crlf.txt").write_bytes(b"one\r\ntwo\r\n")
    assert run(policy, "Read", file_path="crlf.txt").output == "     1\tone\n     2\ttwo"


def test_read_shows_a_small_and_a_large_file_the_same_way(policy, ws):
    # a file within the first block is decoded at once, a larger one read through a wrapper
    lines = b"one\r\ntwo\rthree\n\xff bad \xe2\x80\xa8 sep\n\nlast"
    (ws / "small.txt").write_bytes(lines)
    (ws / "large.txt").write_bytes(lines + b"\n" + b"x" * 9000)
    small = run(policy, "Read", file_path="small.txt").output
    large = run(policy, "Read", file_path="large.txt").output
    assert small == "     1\tone\n     2\ttwo\n     3\tthree\n     4\t\ufffd bad \u2028 sep\n" \
        "     5\t\n     6\tlast"
    assert large.startswith(small + "\n     7\txxx")
    assert run(policy, "Read", file_path="sub/../nope/x.txt").output.startswith(
        "File does not exist")
    assert run(policy, "Read", file_path="small.txt/x").output == \
        "File does not exist: small.txt/x"


def test_read_refuses_binary_files(policy, ws):
    (ws / "img.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    result = run(policy, "Read", file_path="img.png")
    assert (
        result.is_error and result.output == "img.png is a binary file; Read shows text files only"
    )


def test_read_errors(policy, outside):
    missing = run(policy, "Read", file_path="nope.txt")
    assert missing.is_error and missing.output == "File does not exist: nope.txt"
    folder = run(policy, "Read", file_path="docs")
    assert folder.is_error and "docs is a directory" in folder.output
    escaped = run(policy, "Read", file_path=str(outside / "secret.txt"))
    assert escaped.is_error and escaped.output.startswith("Read refused: ")
    assert "outside the workspace" in escaped.output


def test_read_from_a_read_root_shows_the_absolute_path(ws, outside):
    policy = Policy(ws, read_roots=[outside])
    result = run(policy, "Read", file_path=str(outside / "secret.txt"))
    assert result.output == "     1\tbeta secret"


# -- Write --------------------------------------------------------------------------------------


def test_write_creates_parents_and_writes_exactly(policy, ws):
    content = "héllo\r\nno final newline"
    result = run(policy, "Write", file_path="out/new/file.md", content=content)
    data = (ws / "out" / "new" / "file.md").read_bytes()
    assert data == content.encode("utf-8")
    assert result.output == f"Wrote {len(data)} bytes to out/new/file.md"
    assert not result.is_error


def test_write_replaces_and_accepts_absolute_paths(policy, ws):
    result = run(policy, "Write", file_path=str(ws / "notes.txt"), content="")
    assert result.output == "Wrote 0 bytes to notes.txt"
    assert (ws / "notes.txt").read_bytes() == b""


def test_write_errors(policy, ws, outside):
    escaped = run(policy, "Write", file_path="../outside/evil.txt", content="x")
    assert escaped.is_error and "outside the workspace" in escaped.output
    assert not (outside / "evil.txt").exists()
    folder = run(policy, "Write", file_path="docs", content="x")
    assert folder.is_error and "docs is a directory" in folder.output
    blocked = run(policy, "Write", file_path="notes.txt/child.md", content="x")
    assert blocked.is_error and blocked.output.startswith("Write failed: ")
    surrogate = run(policy, "Write", file_path="s.txt", content="\ud800")
    assert surrogate.is_error and "UTF-8" in surrogate.output


def test_write_through_a_symlinked_dir_leading_outside_is_refused(policy, ws, outside):
    (ws / "out").symlink_to(outside, target_is_directory=True)
    result = run(policy, "Write", file_path="out/new.txt", content="x")
    assert result.is_error and "outside" in result.output
    assert not (outside / "new.txt").exists()


# -- Edit ---------------------------------------------------------------------------------------


def test_edit_replaces_a_unique_string(policy, ws):
    result = run(policy, "Edit", file_path="notes.txt", old_string="gamma", new_string="GAMMA")
    assert result.output == "Edited notes.txt: replaced 1 occurrence"
    assert (ws / "notes.txt").read_text() == "alpha\nbeta\nGAMMA\nBeta again\n"


def test_edit_refuses_an_ambiguous_string_unless_replace_all(policy, ws):
    (ws / "dup.txt").write_text("x = 1\nx = 1\n")
    ambiguous = run(policy, "Edit", file_path="dup.txt", old_string="x = 1", new_string="y")
    assert ambiguous.is_error and "occurs 2 times in dup.txt" in ambiguous.output
    assert (ws / "dup.txt").read_text() == "x = 1\nx = 1\n"
    result = run(
        policy, "Edit", file_path="dup.txt", old_string="x = 1", new_string="y", replace_all=True
    )
    assert result.output == "Edited dup.txt: replaced 2 occurrences"
    assert (ws / "dup.txt").read_text() == "y\ny\n"


def test_edit_errors(policy, ws):
    missing = run(policy, "Edit", file_path="notes.txt", old_string="delta", new_string="x")
    assert missing.is_error and missing.output == "old_string was not found in notes.txt"
    same = run(policy, "Edit", file_path="notes.txt", old_string="beta", new_string="beta")
    assert same.is_error and "the same" in same.output
    nofile = run(policy, "Edit", file_path="nope.txt", old_string="a", new_string="b")
    assert nofile.is_error and nofile.output == "File does not exist: nope.txt"
    empty_old = run(policy, "Edit", file_path="notes.txt", old_string="", new_string="b")
    assert empty_old.is_error and "use Write" in empty_old.output
    (ws / "bin.dat").write_bytes(b"a\x00b")
    binary = run(policy, "Edit", file_path="bin.dat", old_string="a", new_string="b")
    assert binary.is_error and "binary" in binary.output
    (ws / "latin.txt").write_bytes("café".encode("latin-1"))
    latin = run(policy, "Edit", file_path="latin.txt", old_string="caf", new_string="x")
    assert latin.is_error and "not UTF-8" in latin.output


def test_edit_keeps_crlf_line_endings(policy, ws):
    (ws / "win.txt").write_bytes(b"one\r\ntwo\r\n")
    run(policy, "Edit", file_path="win.txt", old_string="two", new_string="2")
    assert (ws / "win.txt").read_bytes() == b"one\r\n2\r\n"


def test_edit_with_empty_old_string_creates_a_file(policy, ws):
    result = run(policy, "Edit", file_path="fresh/new.md", old_string="", new_string="# New\n")
    assert result.output == "Created fresh/new.md"
    assert (ws / "fresh" / "new.md").read_text() == "# New\n"


def test_edit_outside_is_refused(policy, outside):
    result = run(
        policy, "Edit", file_path=str(outside / "secret.txt"), old_string="beta", new_string="x"
    )
    assert result.is_error and "outside" in result.output
    assert (outside / "secret.txt").read_text() == "beta secret\n"


# -- Glob ---------------------------------------------------------------------------------------


def test_glob_lists_sorted_relative_paths(policy):
    assert run(policy, "Glob", pattern="**/*.md").output == "docs/deep/faq.md\ndocs/guide.md"
    assert run(policy, "Glob", pattern="*").output == "notes.txt"
    assert run(policy, "Glob", pattern="**/*.{py,js}").output == "src/app.py\nsrc/util.js"


def test_glob_with_a_path_or_a_literal_prefix(policy):
    assert run(policy, "Glob", pattern="*.md", path="docs").output == "docs/guide.md"
    assert run(policy, "Glob", pattern="docs/**").output == "docs/deep/faq.md\ndocs/guide.md"
    assert run(policy, "Glob", pattern="src/app.py").output == "src/app.py"


def test_glob_is_deterministic_regardless_of_modification_time(policy, ws):
    os.utime(ws / "src" / "util.js", (1, 1))
    first = run(policy, "Glob", pattern="src/*").output
    os.utime(ws / "src" / "app.py", (2, 2))
    assert run(policy, "Glob", pattern="src/*").output == first == "src/app.py\nsrc/util.js"


def test_glob_no_match_and_errors(policy, outside):
    none = run(policy, "Glob", pattern="**/*.rs")
    assert none.output == "No files found" and not none.is_error
    missing = run(policy, "Glob", pattern="*.md", path="nowhere")
    assert missing.is_error and "does not exist" in missing.output
    escaped = run(policy, "Glob", pattern="*", path=str(outside))
    assert escaped.is_error and "outside" in escaped.output
    assert run(policy, "Glob", pattern="../outside/*").is_error


def test_glob_skips_symlinks_leading_outside_and_git(policy, ws, outside):
    (ws / "leak.txt").symlink_to(outside / "secret.txt")
    (ws / "linkdir").symlink_to(outside, target_is_directory=True)
    (ws / ".git").mkdir()
    (ws / ".git" / "config.txt").write_text("x")
    (ws / "inside.txt").symlink_to(ws / "notes.txt")
    assert run(policy, "Glob", pattern="**/*.txt").output == "inside.txt\nnotes.txt"


# -- Grep ---------------------------------------------------------------------------------------


def test_grep_files_with_matches_by_default(policy):
    result = run(policy, "Grep", pattern="beta")
    assert result.output == "Found 4 files\ndocs/guide.md\nnotes.txt\nsrc/app.py\nsrc/util.js"


def test_grep_content_mode_with_line_numbers(policy):
    result = run(policy, "Grep", pattern="^beta|Beta", output_mode="content")
    assert result.output == "notes.txt:2:beta\nnotes.txt:4:Beta again"
    plain = run(policy, "Grep", pattern="gamma", output_mode="content", **{"-n": False})
    assert plain.output == "notes.txt:gamma"


def test_grep_case_insensitive_and_count(policy):
    result = run(
        policy, "Grep", pattern="BETA", output_mode="count", path="notes.txt", **{"-i": True}
    )
    assert result.output == "notes.txt:2"
    assert run(policy, "Grep", pattern="BETA", path="notes.txt").output == "No files found"


def test_grep_context_lines(policy, ws):
    (ws / "ctx.txt").write_text("1\n2\nhit\n4\n5\n6\n7\nhit\n9\n")
    result = run(policy, "Grep", pattern="hit", path="ctx.txt", output_mode="content", **{"-C": 1})
    assert result.output == (
        "ctx.txt-2-2\nctx.txt:3:hit\nctx.txt-4-4\n--\nctx.txt-7-7\nctx.txt:8:hit\nctx.txt-9-9"
    )
    after = run(
        policy, "Grep", pattern="hit", path="ctx.txt", output_mode="content", **{"-A": 1, "-B": 0}
    )
    assert after.output == "ctx.txt:3:hit\nctx.txt-4-4\n--\nctx.txt:8:hit\nctx.txt-9-9"


def test_grep_glob_and_type_filters(policy):
    assert run(policy, "Grep", pattern="beta", glob="*.py").output == "Found 1 file\nsrc/app.py"
    assert run(policy, "Grep", pattern="beta", glob="src/*.js").output == (
        "Found 1 file\nsrc/util.js"
    )
    assert run(policy, "Grep", pattern="beta", type="md").output == "Found 1 file\ndocs/guide.md"
    assert run(policy, "Grep", pattern=".", type="js").output == "Found 1 file\nsrc/util.js"


def test_grep_head_limit(policy):
    result = run(policy, "Grep", pattern="beta", head_limit=2)
    assert result.output == "Found 2 files\ndocs/guide.md\nnotes.txt"
    lines = run(policy, "Grep", pattern="a", output_mode="content", head_limit=3)
    assert len(lines.output.splitlines()) == 3


def test_grep_multiline(policy):
    result = run(
        policy, "Grep", pattern=r"beta\(\):\n\s+return", output_mode="content", multiline=True
    )
    assert result.output == "src/app.py:1:def beta():\nsrc/app.py:2:    return 1"
    assert run(policy, "Grep", pattern=r"beta\(\):\n").output == "No files found"


def test_grep_skips_binary_files_and_symlinks_outside(policy, ws, outside):
    (ws / "blob.bin").write_bytes(b"beta\x00\x01")
    (ws / "leak.txt").symlink_to(outside / "secret.txt")
    result = run(policy, "Grep", pattern="beta", output_mode="count")
    assert result.output == ("docs/guide.md:1\nnotes.txt:1\nsrc/app.py:1\nsrc/util.js:1")


def test_grep_errors(policy, outside):
    bad = run(policy, "Grep", pattern="(unclosed")
    assert bad.is_error and bad.output.startswith("Invalid regular expression '(unclosed'")
    escaped = run(policy, "Grep", pattern="beta", path=str(outside))
    assert escaped.is_error and "outside" in escaped.output
    missing = run(policy, "Grep", pattern="beta", path="nowhere")
    assert missing.is_error and "does not exist" in missing.output
    assert run(policy, "Grep", pattern="zzz", output_mode="content").output == "No matches found"


# -- Bash ---------------------------------------------------------------------------------------


def test_bash_runs_in_the_workspace(bubblewrap, policy, ws):
    result = run(policy, "Bash", command="pwd; cat notes.txt | wc -l")
    assert result.output == f"{os.path.realpath(ws)}\n4"
    assert not result.is_error and result.exit_code == 0


def test_bash_combines_stdout_and_stderr_and_reports_failure(bubblewrap, policy):
    result = run(policy, "Bash", command="echo out; echo err >&2; exit 3")
    assert result.output == "out\nerr\nexit code 3"
    assert result.is_error and result.exit_code == 3


def test_bash_without_output(bubblewrap, policy):
    result = run(policy, "Bash", command="true", description="nothing")
    assert result.output == "(no output)" and not result.is_error






def _marker() -> str:
    return f"llmunix-probe-{uuid.uuid4().hex[:12]}"


def test_bash_timeout_kills_every_process_it_started(bubblewrap, policy, ws):
    mark = _marker()
    result = run_builtin(
        "Bash",
        {"command": f"(exec -a {mark} sleep 30) & (setsid bash -c 'exec -a {mark}-s sleep 30' &);"
                    f" echo started; sleep 30", "timeout": 500},
        policy=policy,
    )
    assert result.is_error
    assert result.output.startswith("started\n")
    assert "timed out after 0.5 s; every process it started was killed" in result.output
    assert processes_gone(mark)


def test_bash_default_timeout_comes_from_the_caller(bubblewrap, policy):
    result = run_builtin("Bash", {"command": "sleep 30 & sleep 30"}, policy=policy, timeout_s=0.5)
    assert result.is_error and result.output == (
        "Command timed out after 0.5 s; every process it started was killed"
    )


def test_bash_returns_when_the_shell_ends_and_nothing_survives_it(bubblewrap, policy, ws):
    """Background and setsid children, which could otherwise outlive the call, die with it."""
    mark = _marker()
    command = (f"(exec -a {mark} sleep 30) & (setsid bash -c 'exec -a {mark}-s sleep 30' &) ;"
               f" nohup bash -c 'exec -a {mark}-n sleep 30' >/dev/null 2>&1 & echo done")
    result = run(policy, "Bash", command=command)
    assert result.output == "done" and not result.is_error
    assert processes_gone(mark)


def test_bash_output_keeps_its_start_and_end_within_the_limit(bubblewrap, policy):
    """Past the limit the middle is left out, counted; where a long output says what failed
    (its end) is kept."""
    command = "printf START; head -c 100000 /dev/zero | tr '\\0' x; printf END"
    result = run_builtin("Bash", {"command": command}, policy=policy, max_output_chars=10_000)
    assert result.output.startswith("START" + "x" * 4995 + "\n[... 90,008 of 100,008 bytes")
    assert result.output.endswith("x" * 4997 + "END")
    assert "the first and the last 5,000 are kept ...]" in result.output
    assert len(result.output) < 10_000 + 200


def test_bash_output_under_the_limit_is_whole(bubblewrap, policy):
    result = run(policy, "Bash", command="head -c 100000 /dev/zero | tr '\\0' x")
    assert result.output == "x" * 100_000 and MAX_OUTPUT_CHARS > 100_000


def test_bash_deny_list_applies(bubblewrap, policy, ws):
    result = run(policy, "Bash", command="touch made.txt && sudo id")
    assert result.is_error and result.output.startswith("Bash refused: ")
    assert not (ws / "made.txt").exists()


def test_bash_reports_a_missing_workspace(bubblewrap, tmp_path):
    policy = Policy(tmp_path / "gone")
    result = run(policy, "Bash", command="ls")
    assert result.is_error and "does not exist" in result.output


def test_bash_timeout_is_capped_by_the_caller(bubblewrap, policy):
    result = run_builtin(
        "Bash", {"command": "sleep 30", "timeout": 600000}, policy=policy, max_timeout_s=0.25
    )
    assert result.is_error and "timed out after 0.25 s" in result.output


def test_grep_handles_crlf_files(policy, ws):
    (ws / "win.txt").write_bytes(b"one\r\ntwo\r\nthree\r\n")
    result = run(policy, "Grep", pattern="^two$", path="win.txt", output_mode="content")
    assert result.output == "win.txt:2:two"


# A process that dies in the middle of writing a file (as under SIGKILL: no clean-up runs).
_DIES_WRITING = r"""
import os, sys
from pathlib import Path
from llmunix.policy.gate import Policy
from llmunix.tools.builtin import common
workspace, name = Path(sys.argv[1]), sys.argv[2]
if sys.argv[3] == "named":
    common._unnamed_files[0] = False
common._fill = lambda fd, data, mode: (os.write(fd, data[:10]), os._exit(9))
common.write_atomic(Policy(workspace), workspace / name, b"new content " * 100)
"""


@pytest.mark.parametrize("target", ["fresh.txt", "notes.txt"])
def test_a_write_killed_halfway_leaves_the_file_as_it_was_and_nothing_else(ws, target):
    import subprocess
    import sys

    before = sorted(os.listdir(ws))
    old = (ws / target).read_bytes() if (ws / target).exists() else None
    done = subprocess.run([sys.executable, "-c", _DIES_WRITING, str(ws), target, "unnamed"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 9, done.stderr
    assert sorted(os.listdir(ws)) == before  # no temporary file left in the workspace
    assert ((ws / target).read_bytes() if (ws / target).exists() else None) == old


def test_without_unnamed_files_a_write_goes_through_a_named_temporary(ws, policy, monkeypatch):
    import subprocess
    import sys

    from llmunix.tools.builtin import common

    monkeypatch.setattr(common, "_unnamed_files", [False])
    (ws / "notes.txt").chmod(0o640)
    written = run(policy, "Write", file_path="notes.txt", content="replaced\n")
    assert not written.is_error, written.output
    assert (ws / "notes.txt").read_text() == "replaced\n"
    assert (ws / "notes.txt").stat().st_mode & 0o777 == 0o640
    assert run(policy, "Write", file_path="docs/new.md", content="new\n").output == \
        "Wrote 4 bytes to docs/new.md"
    assert sorted(os.listdir(ws / "docs")) == ["deep", "guide.md", "new.md"]
    # the named way, killed halfway, is what leaves its temporary file behind
    done = subprocess.run([sys.executable, "-c", _DIES_WRITING, str(ws), "fresh.txt", "named"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 9, done.stderr
    assert [n for n in os.listdir(ws) if n.startswith(".fresh.txt.llmunix-")]
