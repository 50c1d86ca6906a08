"""llmunix's own time per turn on the OpenAI runtime: a 50-turn scripted conversation (49 Write
and Read tool calls, then the final answer) against the scripted OpenAI server on 127.0.0.1.

Own time per turn = (wall time of the run - time the server spent answering) / turns. It counts
everything on llmunix's side between replies: the request sent and the stream read through its
own wire (runtimes/openai_http.py), the policy gate, running the tool, the trace step, the
events. The scripted server runs in its own process (so it does not share the interpreter lock
with the run), keeps connections alive as real model servers do, and adds up the time it spends
answering each request. Start-up (imports, registry, preflight) is paid once by a warm-up run
and left out. Goals: at most 2 ms per turn, and at most 0.5 ms of it llmunix's own share: what
is left once the wire's part (below) and the same file operations done by a bare Python are
taken out.

For scale, the same requests (the exact bodies llmunix sent) are then sent by llmunix's wire
with nothing else around it (the part of the figure that is HTTP alone), and by the bare
`openai` client, which the runtime used before (when it is installed: the test extra has it).
"""

from __future__ import annotations

import multiprocessing
import statistics
import tempfile
import threading
import time
from pathlib import Path

from _common import row, stream_bodies

from llmunix.run import runner
from llmunix.trace.events import RunFinished, RunStarted
from llmunix.workspace.layout import Workspace
from tests.scripted.openai_server import OpenAIServer, tool_call
from tests.support import agent_text, new_workspace, write_spec

TURNS = 50
RUNS = 9
GOAL_MS = 2.0
SHARE_GOAL_MS = 0.5  # beyond the wire and the file operations themselves
CONFIG = '[run]\nruntime = "openai"\n\n[limits]\nmax_turns = 200\n\n[memory]\ncommit = false\n'


class TimedServer(OpenAIServer):
    """The scripted server with keep-alive connections (as Ollama, llama.cpp and vLLM serve),
    adding up the time it spends answering each request."""

    keep_alive = True

    def start(self) -> TimedServer:
        self.busy_s = 0.0
        self._busy_lock = threading.Lock()
        return super().start()

    def _handle(self, handler) -> None:
        start = time.perf_counter()
        try:
            super()._handle(handler)
        finally:
            with self._busy_lock:
                self.busy_s += time.perf_counter() - start


def script(server: TimedServer, turns: int) -> None:
    calls = []
    for i in range(turns - 1):
        name = f"notes/f{i // 2}.txt"
        calls.append(tool_call("Write", {"file_path": name, "content": f"line {i}\n" * 20})
                     if i % 2 == 0 else tool_call("Read", {"file_path": name}))
    server.enqueue(*calls, "All files written and checked.")


def bare_files(folder: Path, turns: int) -> float:
    """The run's file operations done by a bare Python (the same writes and reads of the same
    sizes, in a new folder): the work the tool calls do, without llmunix around it."""
    started = time.perf_counter()
    for i in range(turns - 1):
        path = folder / f"notes/f{i // 2}.txt"
        if i % 2 == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"line {i}\n" * 20, encoding="utf-8")
        else:
            path.read_text(encoding="utf-8")
    return time.perf_counter() - started


def serve(conn) -> None:
    """The server process: scripts conversations, reports its busy time and what it was sent."""
    with TimedServer() as server:
        conn.send(server.url)
        while True:
            command, turns = conn.recv()
            if command == "script":
                script(server, turns)
                server.busy_s = 0.0
                conn.send(None)
            elif command == "report":
                bodies = [r.body for r in server.model_requests()[-turns:]]
                conn.send((server.busy_s, server.pending(), len(server.exhausted), bodies))
            else:
                return


def _report(conn, turns: int) -> tuple[float, list[dict]]:
    conn.send(("report", turns))
    busy, pending, exhausted, bodies = conn.recv()
    if pending or exhausted:
        raise SystemExit(f"the script was not followed: {pending} left, {exhausted} extra")
    return busy, bodies


def llmunix_run(ws: Workspace, conn, url: str, turns: int) -> tuple[float, float, list[dict]]:
    """(seconds of the model loop, seconds the server was busy, bodies sent). The loop is timed
    by the runner around the runtime; the per-run set-up and the final commit are left out."""
    conn.send(("script", turns))
    conn.recv()
    marks: dict[str, float] = {}

    def emit(event) -> None:
        if isinstance(event, (RunStarted, RunFinished)):
            marks[type(event).__name__] = time.perf_counter()

    request = runner.RunRequest(goal="bench", agent="bench", runtime="openai", mode="learner",
                                runtime_options={"base_url": url})
    outcome = runner.run_goal(ws, request, emit)
    if outcome.status != "success" or outcome.turns != turns:
        raise SystemExit(f"bench run failed: {outcome.status} {outcome.reason}")
    busy, bodies = _report(conn, turns)
    assert "RunFinished" in marks and "RunStarted" in marks
    return outcome.duration_s, busy, bodies


def bare_client(conn, url: str, bodies: list[dict], which: str = "wire"
                ) -> tuple[float, float]:
    """The same requests through llmunix's wire alone, or the bare openai client: (wall
    seconds, server busy seconds)."""
    conn.send(("script", len(bodies)))
    conn.recv()

    wall = stream_bodies(url, bodies, which)
    busy, _ = _report(conn, len(bodies))
    return wall, busy


def main() -> None:
    ctx = multiprocessing.get_context("spawn")
    conn, child_conn = ctx.Pipe()
    server = ctx.Process(target=serve, args=(child_conn,), daemon=True)
    server.start()
    ours, bare, official, walls, busies, files = [], [], [], [], [], []
    try:
        import openai  # noqa: F401
        has_openai = True
    except ImportError:
        has_openai = False
    try:
        url = conn.recv()
        with tempfile.TemporaryDirectory() as tmp:
            ws = new_workspace(Path(tmp) / "ws")
            ws.config_path.write_text(CONFIG, encoding="utf-8")
            ws = Workspace(ws.root)
            write_spec(ws.user_agents_dir, "bench.md",
                       agent_text("bench", tools="Read, Write", body="Write the files."))
            _, _, bodies = llmunix_run(ws, conn, url, 3)  # warm-up: imports, first connections
            bare_client(conn, url, bodies)
            if has_openai:
                bare_client(conn, url, bodies, "openai")
            for _ in range(RUNS):
                wall, busy, bodies = llmunix_run(ws, conn, url, TURNS)
                walls.append(wall)
                busies.append(busy)
                ours.append((wall - busy) / TURNS * 1000)
                bare_wall, bare_busy = bare_client(conn, url, bodies)
                bare.append((bare_wall - bare_busy) / TURNS * 1000)
                folder = Path(tmp) / f"bare-{len(files)}"
                files.append(bare_files(folder, TURNS) / TURNS * 1000)
                if has_openai:
                    o_wall, o_busy = bare_client(conn, url, bodies, "openai")
                    official.append((o_wall - o_busy) / TURNS * 1000)
    finally:
        conn.send(("stop", None))
        server.join(timeout=10)
    figure, client = statistics.median(ours), statistics.median(bare)
    print(f"{TURNS} turns ({TURNS - 1} Write/Read tool calls + final answer), "
          f"median of {RUNS} runs")
    row("wall time of the run loop", f"{statistics.median(walls) * 1000:.1f} ms")
    row("time the server spent answering", f"{statistics.median(busies) * 1000:.1f} ms")
    row("llmunix's own time per turn", f"{figure:.2f} ms", f"goal <= {GOAL_MS:g} ms",
        "ok" if figure <= GOAL_MS else "over")
    row("  the same requests by llmunix's wire alone", f"{client:.2f} ms")
    row("  the rest: loop, policy, tools, trace, events", f"{figure - client:.2f} ms")
    work = statistics.median(files)
    share = figure - client - work
    row("  of which the file operations by a bare Python", f"{work:.2f} ms")
    row("llmunix's own share beyond the wire and the files", f"{share:.2f} ms",
        f"goal <= {SHARE_GOAL_MS:g} ms", "ok" if share <= SHARE_GOAL_MS else "over")
    if official:
        row("  the same requests by the bare openai client",
            f"{statistics.median(official):.2f} ms", "(what the runtime used before)")


if __name__ == "__main__":
    main()
