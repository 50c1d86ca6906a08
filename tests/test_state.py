"""The kernel's state (memory/state.md): updated by fixed rules after every run, used by fixed
rules in the next ones, each change and effect recorded — all asserted from the files."""

from __future__ import annotations

import subprocess

from llmunix.specs.frontmatter import read_frontmatter
from llmunix.trace.markdown import find_traces, read_trace
from llmunix.workspace.layout import Workspace
from tests.scripted.openai_server import reply, tool_call
from tests.support import agent_text, new_workspace, run_cli, write_spec

MODEL = "local-model"
BODY = "STATE-MARKER: you read files."


def _run(ws: Workspace, server, goal: str, *args: str, project: str = "default"):
    return run_cli("run", goal, "--runtime", "openai", "--base-url", server.url, "--model",
                   MODEL, "--project", project, *args, cwd=ws.root,
                   env={"OPENAI_API_KEY": "sk-test"})


def _traces(ws: Workspace, project: str = "default"):
    return [read_trace(p) for p in find_traces(ws.project(project).short_term_dir)]


def _state(ws: Workspace, project: str = "default") -> dict:
    return read_frontmatter(ws.project(project).root / "memory" / "state.md")


def test_state_moves_after_success_denial_and_stop(openai_server, tmp_path):
    ws = new_workspace(tmp_path / "ws")
    write_spec(ws.user_agents_dir, "reader.md", agent_text("reader", tools="Read", body=BODY))
    args = ("--agent", "reader", "--mode", "learner")
    # 1. a success: confidence up
    openai_server.enqueue("All good.")
    first = _run(ws, openai_server, "say all good", *args)
    assert first.returncode == 0, first.stderr
    assert "state safety 0.50 · curiosity 0.50 · energy 1.00 · confidence 0.50" in first.stderr
    state = _state(ws)
    assert (state["safety"], state["confidence"], state["curiosity"], state["energy"]) == (
        0.5, 0.55, 0.5, 1.0)
    (trace,) = _traces(ws)
    recorded = trace.meta["kernel_state"]
    assert recorded["at_start"]["confidence"] == 0.5 and recorded["after"]["confidence"] == 0.55
    assert recorded["changes"] == ["confidence 0.50 → 0.55 (the run ended success)"]
    committed = subprocess.run(["git", "show", "--name-only", "--format=", "HEAD"], cwd=ws.root,
                               capture_output=True, text=True, check=True).stdout.split()
    assert "projects/default/memory/state.md" in committed

    # 2. two refused calls: safety up by 0.3, and the next orchestrator prompt is stricter
    openai_server.enqueue(
        reply(tool_call("Write", {"file_path": "a.md", "content": "x"}),
              tool_call("Bash", {"command": "rm -rf notes"})),
        "I may only read.",
    )
    second = _run(ws, openai_server, "write a file", *args)
    assert second.returncode == 0, second.stderr
    assert _state(ws)["safety"] == 0.8
    trace = max(_traces(ws), key=lambda t: t.meta["started_at"] + t.trace_id)
    assert "safety 0.50 → 0.80 (2 refused call(s))" in trace.meta["kernel_state"]["changes"]
    assert "Kernel state: caution" not in openai_server.system_prompt(
        openai_server.model_requests()[1])

    # 3. stopped by a limit: confidence down; this run's prompt carries the caution
    openai_server.enqueue(reply(tool_call("Read", {"file_path": "missing.md"})), "never sent")
    third = _run(ws, openai_server, "read forever", *args, "--max-turns", "1")
    assert third.returncode == 3, third.stderr
    assert "state: safety 0.80 ≥ 0.7: the orchestrator's prompt is stricter" in third.stderr
    prompt = openai_server.system_prompt(openai_server.model_requests()[3])
    assert prompt.startswith(BODY) and "## Kernel state: caution" in prompt
    state = _state(ws)
    assert state["confidence"] == 0.5 and state["safety"] == 0.75 and state["runs"] == 3

    status = run_cli("status", cwd=ws.root)
    assert status.returncode == 0, status.stderr
    assert "kernel state of project default (projects/default/memory/state.md, 3 run(s))" in \
        status.stdout
    assert "  safety      0.75" in status.stdout and "  confidence  0.50" in status.stdout
    assert "safety 0.75 ≥ 0.7: the orchestrator's prompt is stricter" in status.stdout
    changes = status.stdout.split("last changes:\n")[1].splitlines()
    assert len(changes) == 3 and "(stopped, learner): safety 0.80 → 0.75 (no refused call); " \
        "confidence 0.60 → 0.50 (the run ended stopped)" in changes[0]
    assert "(success, learner): confidence 0.50 → 0.55" in changes[2]

    # reverting an old run keeps the state as it is now: later runs happened all the same
    before = (ws.project("default").root / "memory" / "state.md").read_text(encoding="utf-8")
    oldest = min(_traces(ws), key=lambda t: t.meta["started_at"] + t.trace_id)
    reverted = run_cli("memory", "revert", oldest.trace_id, cwd=ws.root)
    assert reverted.returncode == 0, reverted.stderr
    assert (ws.project("default").root / "memory" / "state.md").read_text(
        encoding="utf-8") == before


def test_confidence_shifts_the_threshold_that_picks_the_mode(openai_server, tmp_path):
    """A goal scoring 0.894 against the learned trace is below the follower threshold (0.92):
    mixed. With confidence 1.0 the threshold moves down 0.05 and the same goal is replayed."""
    goal = "Turn the notes in meetings/ into action_items.md please"
    ws = new_workspace(tmp_path / "ws", example="hello-notes")
    openai_server.enqueue("Done, with the worked example.")
    mixed = _run(ws, openai_server, goal, project="hello-notes")
    assert mixed.returncode == 0, mixed.stderr
    (trace,) = _traces(ws, "hello-notes")
    decision = trace.meta["mode_decision"]
    assert (decision["mode"], decision["score"]) == ("mixed", 0.894)

    state_file = ws.project("hello-notes").root / "memory" / "state.md"
    state_file.write_text("---\nconfidence: 1.0\n---\n# Kernel state\n", encoding="utf-8")
    follower = _run(ws, openai_server, goal, project="hello-notes")
    assert follower.returncode == 0, follower.stderr
    newest = [t for t in _traces(ws, "hello-notes") if t.trace_id != trace.trace_id]
    (replayed,) = newest
    decision = replayed.meta["mode_decision"]
    assert (decision["mode"], decision["score"]) == ("follower", 0.894)
    assert "score 0.894 ≥ 0.87" in decision["reason"]
    assert "confidence 1.00 moves the thresholds by -0.050" in decision["reason"]
    assert replayed.meta["mode"] == "follower" and replayed.meta["input_tokens"] == 0
    assert len(openai_server.model_requests()) == 1  # the replay asked no model


def test_low_energy_picks_the_cheapest_listed_model(openai_server, tmp_path):
    ws = new_workspace(tmp_path / "ws")
    write_spec(ws.user_agents_dir, "reader.md", agent_text(
        "reader", tools="Read", body=BODY,
        extra="llmunix:\n  models: [big-model, small-model]\n"))
    with ws.config_path.open("a", encoding="utf-8") as fh:
        fh.write('\n[prices."big-model"]\ninput = 10.0\noutput = 30.0\n'
                 '[prices."small-model"]\ninput = 0.1\noutput = 0.4\n')
    text = ws.config_path.read_text(encoding="utf-8")
    assert "[prices]\n" in text
    ws.config_path.write_text(text.replace("[prices]\n", "", 1), encoding="utf-8")
    state_file = ws.project("default").root / "memory" / "state.md"
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_text("---\nenergy: 0.1\n---\n", encoding="utf-8")
    openai_server.enqueue("cheap answer")
    result = run_cli("run", "say something", "--runtime", "openai", "--base-url",
                     openai_server.url, "--agent", "reader", "--mode", "learner", cwd=ws.root,
                     env={"OPENAI_API_KEY": "sk-test"})
    assert result.returncode == 0, result.stderr
    assert openai_server.model_requests()[0].body["model"] == "small-model"
    assert "energy 0.10 < 0.3: agents that list models use the cheapest" in result.stderr


def test_state_off_and_a_damaged_state_file(openai_server, tmp_path):
    ws = new_workspace(tmp_path / "ws")
    with ws.config_path.open("a", encoding="utf-8") as fh:
        fh.write("\n[state]\nenabled = false\n")
    openai_server.enqueue("fine")
    result = _run(ws, openai_server, "say fine", "--mode", "learner")
    assert result.returncode == 0, result.stderr
    assert not (ws.project("default").root / "memory" / "state.md").exists()
    assert "kernel_state" not in _traces(ws)[0].meta and "state safety" not in result.stderr
    off = run_cli("status", cwd=ws.root)
    assert off.returncode == 0 and "off ([state] enabled = false)" in off.stdout

    ws2 = new_workspace(tmp_path / "ws2")
    state_file = ws2.project("default").root / "memory" / "state.md"
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_text("---\nsafety: high\n---\n", encoding="utf-8")
    for args in (["status"], ["run", "x", "--runtime", "openai", "--base-url", openai_server.url,
                              "--mode", "learner"]):
        bad = run_cli(*args, cwd=ws2.root, env={"OPENAI_API_KEY": "sk-test"})
        assert bad.returncode == 1, bad.stderr
        assert "projects/default/memory/state.md" in bad.stderr
        assert "safety must be a number from 0 to 1" in bad.stderr
        assert "Traceback" not in bad.stderr
    assert _traces(ws2) == []  # the run stopped before it began
