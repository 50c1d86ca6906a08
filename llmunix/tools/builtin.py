"""llmunix's own Read, Write, Edit, Glob, Grep and Bash, with Claude Code's names and inputs.

Used by the OpenAI runtime and by trace replay (the Claude runtime uses the CLI's own tools).
Outputs are deterministic for the same files (sorted paths, no timestamps) because replay compares
them with the recorded ones. Model mistakes become error results, never exceptions.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import re
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from llmunix.errors import PolicyDenied
from llmunix.policy.gate import Policy, compile_glob, split_glob
from llmunix.tools.result import ToolResult

__all__ = ["BUILTIN_SCHEMAS", "openai_tools", "run_builtin"]

MAX_OUTPUT_CHARS = 30_000  # Bash, Glob and Grep output
MAX_READ_CHARS = 100_000  # one Read call
READ_DEFAULT_LIMIT = 2000  # lines
MAX_LINE_CHARS = 2000  # longer lines are cut in Read output
MAX_GREP_LINE_CHARS = 500
MAX_GLOB_RESULTS = 1000
MAX_GREP_FILE_BYTES = 20 * 1024 * 1024
MAX_BASH_TIMEOUT_S = 600.0
_SNIFF_BYTES = 8192
_KILL_GRACE_S = 2.0  # how long to wait for output after killing a command's process group


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


class _ToolFailure(Exception):
    """A model mistake or a failed operation, reported to the model as an error result."""


def run_builtin(
    name: str,
    tool_input: dict,
    *,
    policy: Policy,
    timeout_s: float = 120,
    max_timeout_s: float = MAX_BASH_TIMEOUT_S,
) -> ToolResult:
    """Run built-in tool `name`. Paths go through `policy.resolve`, and the policy's own rules
    (workspace, deny list) are checked again here; the caller checks tool scoping and the agent's
    constraints with `policy.check` first.

    Bash's timeout is the model's `timeout` (ms) or else `timeout_s`, never above `max_timeout_s`
    (pass the run's remaining time there to keep a command within the run's time limit)."""
    started = time.monotonic()
    try:
        if name not in _RUNNERS:
            known = ", ".join(BUILTIN_SCHEMAS)
            raise _ToolFailure(f"Unknown built-in tool {name!r} (built-ins: {known})")
        args = _validate(name, tool_input)
        decision = policy.check(name, args)
        if not decision.allowed:
            raise _ToolFailure(decision.reason)
        if name == "Bash":
            seconds = args["timeout"] / 1000 if "timeout" in args else timeout_s
            args["timeout"] = max(min(seconds, max_timeout_s), 0.001) * 1000
        output = _RUNNERS[name](args, policy)
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


# -- file helpers -------------------------------------------------------------------------------


def _is_binary(path: Path) -> bool:
    with open(path, "rb") as f:
        return b"\0" in f.read(_SNIFF_BYTES)


def _cap(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n... [output truncated: showing {limit} of {len(text)} characters]"


def _existing_file(policy: Policy, path: str, *, write: bool) -> Path:
    real = policy.resolve(path, write=write)
    if not real.exists():
        raise _ToolFailure(f"File does not exist: {policy.relative(real)}")
    if real.is_dir():
        raise _ToolFailure(f"{policy.relative(real)} is a directory, not a file")
    return real


# -- Read ---------------------------------------------------------------------------------------


def _read(args: dict, policy: Policy) -> str:
    real = _existing_file(policy, args["file_path"], write=False)
    shown = policy.relative(real)
    if _is_binary(real):
        raise _ToolFailure(f"{shown} is a binary file; Read shows text files only")
    start = max(args.get("offset", 1), 1)
    limit = args.get("limit", READ_DEFAULT_LIMIT)
    out: list[str] = []
    size = 0
    number = 0
    next_line = None  # where to read on when the output was cut short
    with open(real, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if number < start:
                continue
            if number >= start + limit:
                next_line = number
                break
            line = line.rstrip("\n")
            if len(line) > MAX_LINE_CHARS:
                line = line[:MAX_LINE_CHARS] + " ... [line truncated]"
            entry = f"{number:>6}\t{line}"
            if out and size + len(entry) + 1 > MAX_READ_CHARS:
                next_line = number
                break
            out.append(entry)
            size += len(entry) + 1
    if number == 0:
        return f"{shown} is empty."
    if not out:
        return f"{shown} has only {number} lines; offset {start} is past the end."
    text = "\n".join(out)
    if next_line is not None:
        text += f"\n... [more lines follow; read on with offset={next_line}]"
    return text


# -- Write and Edit -----------------------------------------------------------------------------


def _write(args: dict, policy: Policy) -> str:
    real = policy.resolve(args["file_path"], write=True)
    if real.is_dir():
        raise _ToolFailure(f"{policy.relative(real)} is a directory, not a file")
    data = _encode(args["content"])
    real.parent.mkdir(parents=True, exist_ok=True)
    with open(real, "wb") as f:
        f.write(data)
    return f"Wrote {len(data)} bytes to {policy.relative(real)}"


def _encode(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _ToolFailure(f"the text cannot be written as UTF-8: {exc.reason}") from None


def _edit(args: dict, policy: Policy) -> str:
    old, new = args["old_string"], args["new_string"]
    real = policy.resolve(args["file_path"], write=True)
    shown = policy.relative(real)
    if old == "" and not real.exists():  # Claude Code's way of creating a file with Edit
        real.parent.mkdir(parents=True, exist_ok=True)
        real.write_bytes(_encode(new))
        return f"Created {shown}"
    real = _existing_file(policy, args["file_path"], write=True)
    if old == new:
        raise _ToolFailure("old_string and new_string are the same; nothing to change")
    if old == "":
        raise _ToolFailure(f"old_string is empty; use Write to replace all of {shown}")
    if _is_binary(real):
        raise _ToolFailure(f"{shown} is a binary file; Edit changes text files only")
    try:
        with open(real, encoding="utf-8", newline="") as f:  # newline="" keeps \r\n as is
            text = f.read()
    except UnicodeDecodeError:
        raise _ToolFailure(f"{shown} is not UTF-8 text; Edit changes UTF-8 files only") from None
    count = text.count(old)
    if count == 0:
        raise _ToolFailure(f"old_string was not found in {shown}")
    if count > 1 and not args.get("replace_all", False):
        raise _ToolFailure(
            f"old_string occurs {count} times in {shown}; include more surrounding text to make "
            "it unique, or set replace_all to replace every occurrence"
        )
    real.write_bytes(_encode(text.replace(old, new)))
    return f"Edited {shown}: replaced {count} occurrence{'s' if count > 1 else ''}"


# -- Glob and Grep ------------------------------------------------------------------------------


def _walk_files(policy: Policy, base: Path) -> Iterator[Path]:
    """Every file below `base` in sorted order; .git folders and symlinked folders are skipped,
    and so are symlinked files that lead outside what the policy lets the agent read."""
    for root, dirs, files in os.walk(base):
        dirs[:] = sorted(
            d for d in dirs if d != ".git" and not os.path.islink(os.path.join(root, d))
        )
        for name in sorted(files):
            path = Path(root, name)
            if path.is_symlink():
                try:
                    policy.resolve(str(path), write=False)
                except PolicyDenied:
                    continue
                if not path.is_file():
                    continue
            yield path


def _glob(args: dict, policy: Policy) -> str:
    pattern = args["pattern"]
    base = args.get("path", "")
    prefix, rest = split_glob(os.path.join(base, pattern) if base else pattern)
    root = policy.resolve(prefix or ".", write=False)
    if not rest:  # no wildcard: the named file itself
        found = [policy.relative(root)] if root.is_file() else []
    elif not root.is_dir():
        raise _ToolFailure(f"Folder does not exist: {policy.relative(root)}")
    else:
        regex = compile_glob(rest)
        found = sorted(
            policy.relative(path)
            for path in _walk_files(policy, root)
            if regex.fullmatch(path.relative_to(root).as_posix())
        )
    if not found:
        return "No files found"
    text = "\n".join(found[:MAX_GLOB_RESULTS])
    if len(found) > MAX_GLOB_RESULTS:
        text += (
            f"\n... [{len(found) - MAX_GLOB_RESULTS} more files not shown; "
            "use a narrower pattern or path]"
        )
    return _cap(text)


# ripgrep-like file types for Grep's `type`; any other type name is taken as an extension.
_FILE_TYPES = {
    "py": (".py", ".pyi"),
    "js": (".js", ".mjs", ".cjs", ".jsx"),
    "ts": (".ts", ".tsx", ".mts", ".cts"),
    "md": (".md", ".markdown"),
    "markdown": (".md", ".markdown"),
    "rust": (".rs",),
    "c": (".c", ".h"),
    "cpp": (".cpp", ".cc", ".cxx", ".hpp", ".hh", ".hxx", ".h"),
    "yaml": (".yaml", ".yml"),
    "sh": (".sh", ".bash"),
    "html": (".html", ".htm"),
    "txt": (".txt",),
}


def _file_filter(args: dict) -> Callable[[str], bool]:
    glob = args.get("glob")
    type_ = args.get("type")
    glob_rx = compile_glob(glob) if glob else None
    exts = _FILE_TYPES.get(type_, ("." + type_,)) if type_ else None

    def accept(rel: str) -> bool:
        name = rel.rsplit("/", 1)[-1]
        if exts is not None and not name.endswith(exts):
            return False
        if glob_rx is not None:
            return bool(glob_rx.fullmatch(rel if "/" in glob else name))
        return True

    return accept


def _grep_text(path: Path) -> str | None:
    try:
        if path.stat().st_size > MAX_GREP_FILE_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:_SNIFF_BYTES]:
        return None
    return data.decode("utf-8", errors="replace").replace("\r\n", "\n")


def _split_lines(text: str) -> list[str]:
    lines = text.split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def _matching_lines(regex: re.Pattern[str], text: str, multiline: bool) -> list[int]:
    """0-based numbers of the lines holding a match (with multiline: every line a match spans)."""
    lines = _split_lines(text)
    if not multiline:
        return [i for i, line in enumerate(lines) if regex.search(line)]
    starts = [0]
    for line_end in re.finditer("\n", text):
        starts.append(line_end.end())
    hit: set[int] = set()
    for m in regex.finditer(text):
        first = bisect.bisect_right(starts, m.start()) - 1
        last = bisect.bisect_right(starts, max(m.end() - 1, m.start())) - 1
        hit.update(range(first, min(last, len(lines) - 1) + 1))
    return sorted(hit)


def _grep(args: dict, policy: Policy) -> str:
    flags = re.MULTILINE | (re.IGNORECASE if args.get("-i") else 0)
    multiline = args.get("multiline", False)
    if multiline:
        flags |= re.DOTALL
    try:
        regex = re.compile(args["pattern"], flags)
    except re.error as exc:
        raise _ToolFailure(f"Invalid regular expression {args['pattern']!r}: {exc}") from None
    root = policy.resolve(args.get("path", "."), write=False)
    if root.is_file():
        files = [root]
    elif root.is_dir():
        accept = _file_filter(args)
        by_path = {p.relative_to(root).as_posix(): p for p in _walk_files(policy, root)}
        files = [by_path[rel] for rel in sorted(by_path) if accept(rel)]
    else:
        raise _ToolFailure(f"Path does not exist: {policy.relative(root)}")

    mode = args.get("output_mode", "files_with_matches")
    context = args.get("-C", 0)
    before, after = args.get("-B", context), args.get("-A", context)
    numbers = args.get("-n", True)
    head = args.get("head_limit") or None
    entries: list[str] = []
    for path in files:
        if head is not None and len(entries) >= head:
            break
        text = _grep_text(path)
        if text is None:
            continue
        hits = _matching_lines(regex, text, multiline)
        if not hits:
            continue
        shown = policy.relative(path)
        if mode == "files_with_matches":
            entries.append(shown)
        elif mode == "count":
            entries.append(f"{shown}:{len(hits)}")
        else:
            if entries and (before or after):
                entries.append("--")
            entries.extend(_content_lines(shown, _split_lines(text), hits, before, after, numbers))
    if head is not None:
        entries = entries[:head]
    if not entries:
        return "No files found" if mode == "files_with_matches" else "No matches found"
    if mode == "files_with_matches":
        plural = "s" if len(entries) != 1 else ""
        return _cap(f"Found {len(entries)} file{plural}\n" + "\n".join(entries))
    return _cap("\n".join(entries))


def _content_lines(
    shown: str, lines: list[str], hits: list[int], before: int, after: int, numbers: bool
) -> list[str]:
    hit_set = set(hits)
    wanted: set[int] = set()
    for i in hits:
        wanted.update(range(max(i - before, 0), min(i + after, len(lines) - 1) + 1))
    out: list[str] = []
    previous = None
    for i in sorted(wanted):
        if previous is not None and i != previous + 1 and (before or after):
            out.append("--")
        sep = ":" if i in hit_set else "-"
        line = lines[i]
        if len(line) > MAX_GREP_LINE_CHARS:
            line = line[:MAX_GREP_LINE_CHARS] + " ... [line truncated]"
        out.append(f"{shown}{sep}{i + 1}{sep}{line}" if numbers else f"{shown}{sep}{line}")
        previous = i
    return out


# -- Bash ---------------------------------------------------------------------------------------


def _bash(args: dict, policy: Policy) -> ToolResult:
    timeout = args["timeout"] / 1000  # run_builtin has settled it
    if not policy.workspace.is_dir():
        raise _ToolFailure(f"the workspace {policy.workspace} does not exist")
    data, returncode, timed_out = _run_shell(args["command"], policy.workspace, timeout)
    text = data.decode("utf-8", errors="replace").rstrip("\n")
    if len(text) > MAX_OUTPUT_CHARS:
        text = text[:MAX_OUTPUT_CHARS] + (
            f"\n... [output truncated: showing the first {MAX_OUTPUT_CHARS} characters]"
        )
    notes = []
    if timed_out:
        notes.append(f"Command timed out after {timeout:g} s; its process group was killed")
    elif returncode != 0:
        killed = f" (killed by signal {-returncode})" if returncode < 0 else ""
        notes.append(f"exit code {returncode}{killed}")
    text = "\n".join([text, *notes] if text else notes) or "(no output)"
    return ToolResult(text, is_error=timed_out or returncode != 0, exit_code=returncode)


def _run_shell(command: str, cwd: Path, timeout: float) -> tuple[bytes, int, bool]:
    """Run `bash -c command` in its own process group; return (output, exit code, timed out).

    The whole group is killed when the shell ends or the time is up, so background children
    neither outlive the call nor keep its output pipe open.
    """
    proc = subprocess.Popen(
        ["bash", "-c", command],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    kept = bytearray()
    limit = MAX_OUTPUT_CHARS * 4 + 4  # bytes; enough for MAX_OUTPUT_CHARS characters of UTF-8
    deadline = time.monotonic() + timeout
    timed_out = False
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        pipe_open = True

        def read_available(wait: float) -> None:
            nonlocal pipe_open
            if not pipe_open:  # the shell closed its output but runs on: poll its exit
                time.sleep(min(wait, 0.005))
                return
            if sel.select(wait):
                chunk = os.read(fd, 65536)
                if not chunk:
                    pipe_open = False
                    sel.unregister(fd)
                elif len(kept) < limit:
                    kept.extend(chunk[: limit - len(kept)])

        try:
            while not _has_exited(proc):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    timed_out = True
                    break
                read_available(min(remaining, 0.05))
        finally:
            # The shell is not reaped yet, so its process group id cannot have been reused.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            grace_end = time.monotonic() + _KILL_GRACE_S
            while pipe_open and time.monotonic() < grace_end:
                read_available(0.05)
            proc.wait()
            proc.stdout.close()
    return bytes(kept), proc.returncode, timed_out


def _has_exited(proc: subprocess.Popen) -> bool:
    """Whether the shell has ended, without reaping it where the OS allows that."""
    if hasattr(os, "waitid"):
        try:
            return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True
    return proc.poll() is not None


_RUNNERS: dict[str, Callable[[dict, Policy], str | ToolResult]] = {
    "Read": _read,
    "Write": _write,
    "Edit": _edit,
    "Glob": _glob,
    "Grep": _grep,
    "Bash": _bash,
}
