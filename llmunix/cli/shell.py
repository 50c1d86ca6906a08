"""`llmunix shell` and `llmunix watch`: the interactive front-ends of the live registry.

Like cli.py, this module talks to the terminal: it reads lines and prints. A shell line is a goal,
run with the specs as they are at that moment; a line starting with ':' is a shell command.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.markup import escape

from llmunix.errors import LlmunixError
from llmunix.specs.live import LiveRegistry, ReloadEvent
from llmunix.workspace.layout import Workspace

PROMPT = "llmunix> "
HISTORY_FILE = Path(".llmunix") / "shell_history"  # in the workspace; .llmunix/ is git-ignored
EVENT_STYLE = {"added": "green", "reloaded": "cyan", "error": "red", "removed": "yellow"}


# ---------------------------------------------------------------- watch


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _write_line(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()  # one line per change, at once, even into a pipe


def run_watch(ws: Workspace, project: str | None, *, json_lines: bool) -> None:
    """Print one line per change until Ctrl-C or SIGTERM (both end it quietly)."""
    proj = ws.project(project) if project else None
    live = LiveRegistry(ws, proj, all_projects=proj is None)
    if json_lines:
        live.subscribe(lambda e: _write_line(json.dumps(e.to_dict(), ensure_ascii=False)))
    else:
        live.subscribe(lambda e: _write_line(e.describe(ws.root)))
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        live.start()
        status = live.status()
        if json_lines:
            _write_line(json.dumps({
                "event": "ready", "path": str(ws.root), "project": project,
                "files": status.files, "errors": len(status.errors),
                "watching": [str(p) for p in status.watching],
            }))
        else:
            scope = f"project {project}" if project else "every project"
            sys.stderr.write(
                f"watching {status.files} spec files (system, user, {scope}); "
                f"{len(status.errors)} error(s). Ctrl-C to stop.\n"
            )
            sys.stderr.flush()
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        live.stop()


# ---------------------------------------------------------------- shell


@dataclass
class ShellOptions:
    project: str | None = None
    agent: str | None = None
    runtime: str | None = None
    model: str | None = None
    base_url: str | None = None


@dataclass
class Totals:
    goals: int = 0
    turns: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    duration_s: float = 0.0
    statuses: Counter = field(default_factory=Counter)

    def add(self, outcome) -> None:
        self.goals += 1
        self.turns += outcome.turns
        self.input_tokens += outcome.input_tokens
        self.output_tokens += outcome.output_tokens
        self.cost_usd += outcome.cost_usd
        self.duration_s += outcome.duration_s
        self.statuses[outcome.status] += 1


HELP = """\
Type a goal to run it with the specs as they are now. Commands:
  :agents   the agents in effect (and any spec errors)
  :reload   look at every spec file now; show the registry: counts, errors, latest changes
  :trace    the last goal's trace: where it is, status, steps, spec versions used
  :cost     this session's totals: goals, turns, tokens, cost
  :history  the goals run in this session
  :mode     show or set how goals run: :mode auto|learner|follower|mixed
  :runtime  show or set the runtime: :runtime claude|openai
  :clear    clear the screen (also clear)
  :help     this text
  :quit     leave (also :q, :exit, Ctrl-D)
Ctrl-C stops the running goal, not the shell. Lines typed while a goal runs wait their turn."""

# Words typed out of habit from a system shell: a hint, never a model turn.
HABITS = {
    "ls": "files", "ll": "files", "dir": "files", "cd": "files", "pwd": "files", "cat": "files",
    "exit": "quit", "quit": "quit", "logout": "quit", "bye": "quit", "q": "quit",
    "help": "help", "?": "help", "history": "history", "clear": "clear", "cls": "clear",
}
FILES_HINT = ("this shell runs each line as a goal for the agent, not as a system command; ask "
              "in words (\"list the files in the workspace\"), or use your own terminal")
MODES = ("auto", "learner", "follower", "mixed")
RUNTIMES = ("claude", "openai")


class Shell:
    def __init__(self, ws: Workspace, live: LiveRegistry, options: ShellOptions, *,
                 out: Console, err: Console) -> None:
        self.ws = ws
        self.live = live
        self.options = options
        self.out = out
        self.err = err
        self.totals = Totals()
        self.last_trace: Path | None = None
        self.goals: list[str] = []
        self.interactive = False  # reading from a prompt on a terminal
        self.mode = "learner"  # :mode auto lets learned traces replay
        self.commands: dict[str, Callable[[str], bool | None]] = {
            "agents": self.cmd_agents, "reload": self.cmd_reload, "trace": self.cmd_trace,
            "cost": self.cmd_cost, "help": self.cmd_help, "h": self.cmd_help,
            "quit": self.cmd_quit, "q": self.cmd_quit, "exit": self.cmd_quit,
            "history": self.cmd_history, "mode": self.cmd_mode, "runtime": self.cmd_runtime,
            "clear": self.cmd_clear,
        }

    def on_event(self, event: ReloadEvent) -> None:
        style = EVENT_STYLE.get(event.event, "white")
        self.err.print(f"[{style}]↻[/] {escape(event.describe(self.ws.root))}", soft_wrap=True)

    def handle(self, line: str) -> bool:
        """Run one line; False when the shell should end."""
        line = line.strip()
        if not line:
            return True
        if line.startswith(":"):
            name, _, arg = line[1:].partition(" ")
            command = self.commands.get(name.lower())
            if command is None:
                self.err.print(unknown_command(name, self.commands), markup=False)
                return True
            return command(arg.strip()) is not False
        words = line.split()
        habit = HABITS.get(words[0].lower()) if len(words) <= 2 else None
        if habit == "files" or (habit and len(words) == 1):
            return self.habit(habit, words[0])
        self.run_goal(line)
        return True

    def habit(self, kind: str, word: str) -> bool:
        if kind == "files":
            self.err.print(f"{word}: {FILES_HINT}", markup=False, soft_wrap=True)
        elif kind == "quit":
            self.err.print(f"{word}: leave with :quit or Ctrl-D", markup=False)
        elif kind == "help":
            self.cmd_help("")
        elif kind == "history":
            self.cmd_history("")
        elif kind == "clear":
            self.cmd_clear("")
        return True

    # ------------------------------------------------------------ goals

    def run_goal(self, goal: str) -> None:
        from llmunix.cli import ui, view
        from llmunix.run import runner

        snapshot = self.live.sync()  # the specs as they are now, whatever events are in flight
        opts = self.options
        # A run takes the shell's snapshot (last good versions included) and, for delegations
        # inside a running goal, the live registry.
        request = runner.RunRequest(
            goal=goal, project=self.live.project.name if self.live.project else None,
            agent=opts.agent, runtime=opts.runtime, model=opts.model,
            runtime_options={"base_url": opts.base_url} if opts.base_url else {},
            registry=snapshot, live_registry=self.live.current, mode=self.mode,
        )
        self.goals.append(goal)
        start = runner.run if self.mode in ("auto", "follower") else runner.run_goal
        live_view = view.LiveView(self.err) if self.err.is_terminal and view.is_live_terminal(
            sys.stderr) else view.PlainView(self.err.file)
        try:
            with keep_typeahead(sys.stdin if self.interactive else None):
                outcome = start(self.ws, request, live_view)
        except KeyboardInterrupt:
            self.err.print("[yellow]interrupted[/]")
            return
        except LlmunixError as exc:
            ui.print_error(exc)
            return
        finally:
            live_view.close()
        self.last_trace = Path(outcome.trace_path)
        self.totals.add(outcome)
        if outcome.result:
            self.out.print(outcome.result, markup=False, highlight=False, soft_wrap=True)

    # ------------------------------------------------------------ commands

    def cmd_agents(self, arg: str = "") -> None:
        from llmunix.cli import ui

        ui.print_agents(self.live.current())

    def cmd_reload(self, arg: str = "") -> None:
        from llmunix.cli import ui

        self.live.sync()
        st = self.live.status()
        self.out.print(
            f"registry: generation {st.generation} · {st.agents} agents · {st.tools} tools · "
            f"{st.files} spec files · {len(st.errors)} error(s) · "
            f"watching {len(st.watching)} folders", soft_wrap=True)
        ui.print_diagnostics(st.errors)
        if st.recent:
            self.out.print("latest changes:")
            for event in st.recent[-10:]:
                self.out.print(f"  {event.describe(self.ws.root)}", markup=False, soft_wrap=True)

    def cmd_trace(self, arg: str = "") -> None:
        from llmunix.trace.markdown import read_trace

        if self.last_trace is None:
            self.out.print("no goal has run in this shell yet")
            return
        trace = read_trace(self.last_trace)
        m = trace.meta
        tools = len(trace.tool_steps())
        subs = sum(1 for s in trace.steps if s.kind == "subagent start")
        reason = f" ({m['reason']})" if m.get("reason") else ""
        lines = [
            f"trace {trace.path}",
            f"{trace.status}{reason} · {len(trace.steps)} steps ({tools} tool calls, "
            f"{subs} delegations) · {m.get('turns', 0)} turns · "
            f"{m.get('input_tokens', 0):,} in / {m.get('output_tokens', 0):,} out tokens · "
            f"${float(m.get('cost_usd') or 0):.4f} · {m.get('duration_s', 0)}s",
        ]
        specs = m.get("specs") or {}
        used = {f"agent:{m.get('agent')}": specs.get(f"agent:{m.get('agent')}", "")}
        for step in trace.steps:
            if step.fields.get("spec_hash"):
                name = step.agent if step.kind == "subagent start" else step.tool
                kind = "agent" if step.kind == "subagent start" else "tool"
                used[f"{kind}:{name}"] = step.fields["spec_hash"]
        lines.append("specs used: " + ", ".join(f"{k} {v}" for k, v in used.items() if v))
        for line in lines:
            self.out.print(line, markup=False, soft_wrap=True)

    def cmd_cost(self, arg: str = "") -> None:
        t = self.totals
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(t.statuses.items()))
        self.out.print(
            f"{t.goals} goal(s){f' ({statuses})' if statuses else ''} · {t.turns} turns · "
            f"{t.input_tokens:,} in / {t.output_tokens:,} out tokens · ${t.cost_usd:.4f} · "
            f"{t.duration_s:.1f}s", markup=False, soft_wrap=True)

    def cmd_help(self, arg: str = "") -> None:
        self.out.print(HELP, markup=False)

    def cmd_quit(self, arg: str = "") -> bool:
        return False

    def cmd_history(self, arg: str = "") -> None:
        if not self.goals:
            self.out.print("no goal has run in this shell yet")
        for n, goal in enumerate(self.goals[-20:], start=max(1, len(self.goals) - 19)):
            self.out.print(f"{n:>4}  {goal}", markup=False, soft_wrap=True)

    def cmd_mode(self, arg: str = "") -> None:
        if arg:
            if arg not in MODES:
                self.err.print(f"unknown mode {arg!r}: choose {', '.join(MODES)}", markup=False)
                return
            self.mode = arg
        self.out.print(f"mode {self.mode}", markup=False)

    def cmd_runtime(self, arg: str = "") -> None:
        if arg:
            if arg not in RUNTIMES:
                self.err.print(f"unknown runtime {arg!r}: choose {', '.join(RUNTIMES)}",
                               markup=False)
                return
            self.options.runtime = arg
        self.out.print(f"runtime {self.options.runtime or self.ws.config.run.runtime}",
                       markup=False)

    def cmd_clear(self, arg: str = "") -> None:
        if self.out.is_terminal:
            self.out.clear()


@contextlib.contextmanager
def keep_typeahead(stdin):
    """While a goal runs, lines typed ahead wait for the next prompt: not echoed into the live
    view, and not flushed by the terminal when Ctrl-C is pressed (NOFLSH)."""
    if stdin is None:
        yield
        return
    import termios

    try:
        fd = stdin.fileno()
        saved = termios.tcgetattr(fd)
    except (OSError, ValueError, termios.error):
        yield
        return
    quiet = list(saved)
    quiet[3] = (quiet[3] | termios.NOFLSH) & ~termios.ECHO
    try:
        termios.tcsetattr(fd, termios.TCSANOW, quiet)
        yield
    finally:
        with contextlib.suppress(OSError, termios.error):
            termios.tcsetattr(fd, termios.TCSANOW, saved)


def unknown_command(name: str, commands) -> str:
    import difflib

    close = difflib.get_close_matches(name.lower(), list(commands), n=1)
    hint = f"; did you mean :{close[0]}?" if close else ""
    return f"unknown command :{name}{hint} (:help lists them)"


def _piped_lines(stream: TextIO) -> Iterator[str]:
    while True:
        try:
            line = stream.readline()
        except KeyboardInterrupt:
            continue  # Ctrl-C between goals ends nothing
        if not line:
            return
        yield line.rstrip("\n")


def _terminal_lines(ws: Workspace) -> Iterator[str]:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory, InMemoryHistory
    from prompt_toolkit.patch_stdout import patch_stdout

    path = ws.root / HISTORY_FILE
    try:
        path.parent.mkdir(exist_ok=True)
        history = FileHistory(str(path))
    except OSError:
        history = InMemoryHistory()
    session: PromptSession = PromptSession(history=history)
    while True:
        try:
            with patch_stdout(raw=True):  # reload notices print above the prompt
                line = session.prompt(PROMPT)
        except KeyboardInterrupt:
            continue
        except EOFError:
            return
        yield line


def run_shell(ws: Workspace, options: ShellOptions, stdin: TextIO | None = None) -> int:
    """The read-run loop. Lines come from a prompt with history when stdin and stdout are a
    terminal, else one per line from stdin (scripts, tests)."""
    stream = stdin or sys.stdin
    project = ws.ensure_project(options.project or ws.config.run.project)
    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    live = LiveRegistry(ws, project)
    shell = Shell(ws, live, options, out=out, err=err)
    live.subscribe(shell.on_event)
    with live:
        agent = options.agent or ws.config.run.agent
        runtime = options.runtime or ws.config.run.runtime
        err.print(f"[bold]llmunix shell[/] · project {escape(project.name)} · agent "
                  f"{escape(agent)} · runtime {escape(runtime)} · :help for commands",
                  soft_wrap=True)
        interactive = stream.isatty() and sys.stdout.isatty()
        shell.interactive = interactive
        for line in _terminal_lines(ws) if interactive else _piped_lines(stream):
            if not shell.handle(line):
                break
    return 0
