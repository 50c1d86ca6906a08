"""Learner overhead against peer frameworks: the same 10-turn tool-calling run (9 file writes,
then the answer) on an instant OpenAI-compatible server, each as a whole process.

    python bench/peers.py [--python /path/to/peers-venv/bin/python] [--rounds 5]

The scripted server (tests/scripted/openai_server.py) answers every request at once, so what
is measured is each framework's own cost: start-up, building requests, parsing replies,
running tools, and exiting. llmunix runs `llmunix run` in a fresh workspace (its runtime
`openai`, the built-in Write tool through the policy gate, a markdown trace and a git commit);
each peer writes the files with a plain Python function tool. Peers are not llmunix
dependencies: install them in their own environment and point --python (or
$LLMUNIX_PEERS_PYTHON) at its interpreter, e.g.

    python -m venv /tmp/peers && /tmp/peers/bin/pip install openai-agents \\
        'pydantic-ai-slim[openai]' 'smolagents[openai]' llm

A peer whose package is missing there is skipped with a note. Rounds alternate the
contenders; figures are medians, with each process's own peak RSS (from wait4). Goals (issue
17): llmunix <= 0.5x the fastest peer; a learner run's peak RSS <= 60 MB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from _common import ROOT, child, llmunix_cmd, llmunix_rss_cmd, median, row, self_rss_mb

from tests.scripted.openai_server import OpenAIServer, tool_call

TURNS = 10  # model calls: 9 tool calls, then the answer
GOAL = "Write the nine files f0.txt to f8.txt, one line each."
GOAL_RATIO = 0.5
GOAL_RSS_MB = 60

PRELUDE = '''
import os, sys
URL, OUT, GOAL, TURNS = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def write_file(path: str, content: str) -> str:
    """Write text to a file.

    Args:
        path: the file to write, relative to the output folder
        content: the text to write
    """
    with open(os.path.join(OUT, path), "w", encoding="utf-8") as f:
        f.write(content)
    return f"wrote {len(content)} characters to {path}"
'''
# name: (module that must import, script)
PEERS = {
    "openai-agents": ("agents", PRELUDE + '''
from agents import Agent, OpenAIChatCompletionsModel, Runner, function_tool, set_tracing_disabled
from openai import AsyncOpenAI
set_tracing_disabled(True)
model = OpenAIChatCompletionsModel(model="scripted-model",
                                   openai_client=AsyncOpenAI(base_url=URL, api_key="x"))
agent = Agent(name="writer", instructions="Write the files you are asked for.",
              tools=[function_tool(write_file)], model=model)
print(Runner.run_sync(agent, GOAL, max_turns=TURNS + 5).final_output)
'''),
    "pydantic-ai": ("pydantic_ai", PRELUDE + '''
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider
model = OpenAIChatModel("scripted-model", provider=OpenAIProvider(base_url=URL, api_key="x"))
agent = Agent(model, instructions="Write the files you are asked for.", tools=[write_file])
print(agent.run_sync(GOAL).output)
'''),
    "smolagents": ("smolagents", PRELUDE + '''
from smolagents import OpenAIServerModel, ToolCallingAgent, tool
model = OpenAIServerModel(model_id="scripted-model", api_base=URL, api_key="x")
agent = ToolCallingAgent(tools=[tool(write_file)], model=model, max_steps=TURNS + 5,
                         verbosity_level=0)
print(agent.run(GOAL))
'''),
    "llm": ("llm", PRELUDE + '''
import llm
model = llm.get_model("scripted")
print(model.chain(GOAL, tools=[write_file]).text())
'''),
}


def replies(tool: str, args_of, final) -> list:
    return [*[tool_call(tool, args_of(i)) for i in range(TURNS - 1)], final]


def llmunix_run(server: OpenAIServer, ws: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall s, peak RSS MB of the llmunix process itself, not of the git it starts)."""
    server.enqueue(*replies("Write", lambda i: {"file_path": f"f{i}.txt", "content": f"{i}\n"},
                            "Wrote the nine files."))
    out = ws.parent / "rss.txt"
    argv = [*llmunix_rss_cmd(out), "run", GOAL, "--runtime", "openai", "--base-url",
            server.url, "--model", "scripted-model", "--mode", "learner", "--quiet"]
    done = child(argv, ws, env)
    if done.code != 0 or server.pending():
        raise SystemExit(f"llmunix failed ({done.code}): {done.stderr[-1500:]}")
    return done.wall, self_rss_mb(out)


def peer_run(name: str, python: str, script: Path, server: OpenAIServer, out: Path,
             env: dict[str, str]) -> tuple[float, float]:
    final = tool_call("final_answer", {"answer": "done"}) if name == "smolagents" else "done"
    server.enqueue(*replies("write_file", lambda i: {"path": f"f{i}.txt", "content": f"{i}\n"},
                            final))
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    done = child([python, str(script), server.url, str(out), GOAL, str(TURNS)], None, env)
    written = len(list(out.glob("f*.txt")))
    if done.code != 0 or written != TURNS - 1 or server.pending():
        raise RuntimeError(f"{name} failed ({done.code}, {written} files): "
                           f"{done.stderr[-1500:]}")
    return done.wall, done.rss_mb  # wait4's: its Python, or a child it reaped if larger


def available(python: str | None) -> tuple[dict[str, str], list[str]]:
    """Peers whose package imports in `python`: name -> version; and notes for the rest."""
    if not python:
        return {}, ["no peers environment: give --python or set LLMUNIX_PEERS_PYTHON "
                    "(see this script's docstring)"]
    found, notes = {}, []
    for name, (module, _code) in PEERS.items():
        probe = subprocess.run(
            [python, "-c", f"import importlib.metadata as m, {module}; "
             f"print(m.version({'pydantic-ai-slim' if name == 'pydantic-ai' else name!r}))"],
            capture_output=True, text=True)
        if probe.returncode == 0:
            found[name] = probe.stdout.strip()
        else:
            notes.append(f"{name}: skipped, not installed in {python}")
    return found, notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=os.environ.get("LLMUNIX_PEERS_PYTHON"))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    peers, notes = available(args.python)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHONPATH=str(ROOT), OPENAI_API_KEY="x")
    with tempfile.TemporaryDirectory(prefix="llmunix-peers-") as tmp, OpenAIServer() as server:
        tmp_path = Path(tmp)
        ws = tmp_path / "ws"
        subprocess.run([*llmunix_cmd(), "init", str(ws)], check=True, capture_output=True,
                       env=env)
        llm_home = tmp_path / "llm-home"  # simonw/llm: the scripted model as an extra model
        llm_home.mkdir()
        (llm_home / "extra-openai-models.yaml").write_text(
            f"- model_id: scripted\n  model_name: scripted-model\n  api_base: {server.url}\n"
            "  supports_tools: true\n  api_key_name: scripted\n", encoding="utf-8")
        (llm_home / "keys.json").write_text('{"scripted": "x"}', encoding="utf-8")
        peer_env = {**env, "LLM_USER_PATH": str(llm_home)}
        peer_env.pop("PYTHONPATH")
        scripts = {}
        for name in peers:
            scripts[name] = tmp_path / f"peer_{name.replace('-', '_')}.py"
            scripts[name].write_text(PEERS[name][1], encoding="utf-8")
        times: dict[str, list[float]] = {"llmunix": [], **{name: [] for name in peers}}
        rss: dict[str, list[float]] = {name: [] for name in times}
        for round_no in range(args.rounds + 1):  # the first round warms caches, not counted
            got = {"llmunix": llmunix_run(server, ws, env)}
            for name in list(peers):
                try:
                    got[name] = peer_run(name, args.python, scripts[name], server,
                                         tmp_path / f"out-{name}", peer_env)
                except RuntimeError as exc:
                    notes.append(f"{name}: dropped, {exc}")
                    peers.pop(name)
                    times.pop(name)
                    rss.pop(name)
                    with server._lock:  # what the failed peer left unanswered
                        server._entries.clear()
            if round_no:
                for name, (elapsed, peak) in got.items():
                    if name in times:
                        times[name].append(elapsed)
                        rss[name].append(peak)
    ours = median(times["llmunix"])
    print(f"{TURNS}-turn tool-calling run on an instant OpenAI-compatible server, whole "
          f"process, median of {args.rounds} alternated rounds")
    row("llmunix run (openai runtime, learner)", f"{ours:.3f} s", "",
        "Write through the policy gate, trace, git commit")
    ours_rss = median(rss["llmunix"])
    row("  its peak RSS", f"{ours_rss:.1f} MB", f"goal <= {GOAL_RSS_MB} MB",
        "ok" if ours_rss <= GOAL_RSS_MB else "over")
    fastest = None
    for name, version in peers.items():
        theirs = median(times[name])
        fastest = theirs if fastest is None else min(fastest, theirs)
        row(f"{name} {version}", f"{theirs:.3f} s", "",
            f"llmunix {ours / theirs:.2f}x of it; peak RSS {median(rss[name]):.1f} MB")
    if fastest is not None:
        row("llmunix vs the fastest peer", f"{ours / fastest:.2f}x", f"goal <= {GOAL_RATIO}x")
    for note in notes:
        print("note:", note)


if __name__ == "__main__":
    main()
