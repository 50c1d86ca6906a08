"""Learning end to end: learner -> consolidate -> follower with no model, the auto decision,
fallback to learner, a precise report for a tampered workspace, and the shipped example."""

from __future__ import annotations

import json
from pathlib import Path

import git
import pytest

from llmunix.memory import load_long_term
from llmunix.trace.markdown import find_traces, read_trace
from tests.examples import hello_notes
from tests.examples.hello_notes import ACTION_ITEMS, GOAL, PROJECT
from tests.scripted.openai_server import OpenAIServer
from tests.support import run_cli

NO_MODEL = {"HOME": "/nonexistent", "ANTHROPIC_API_KEY": "", "ANTHROPIC_BASE_URL": "",
            "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}


def events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def subjects(root: Path) -> list[str]:
    return [c.message.splitlines()[0] for c in git.Repo(root).iter_commits()]


@pytest.fixture()
def demo(tmp_path):
    """A workspace with the hello-notes example, as `llmunix init --example` makes it."""
    root = tmp_path / "demo"
    done = run_cli("init", str(root), "--example", PROJECT, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return root


def workspace_dir(root: Path) -> Path:
    return root / "projects" / PROJECT / "workspace"


def long_term(root: Path) -> list[Path]:
    return sorted((root / "projects" / PROJECT / "memory" / "long_term").glob("*.md"))


def test_shipped_example_replays_offline(demo):
    result = run_cli("run", GOAL, "--project", PROJECT, "--json", cwd=demo, env=NO_MODEL)
    assert result.returncode == 0, result.stderr
    evs = events(result.stdout)
    [chosen] = [e for e in evs if e["event"] == "mode_chosen"]
    assert chosen["mode"] == "follower" and chosen["score"] == 1.0
    [finished] = [e for e in evs if e["event"] == "run_finished"]
    assert finished["status"] == "success" and finished["turns"] == 0
    assert finished["input_tokens"] == 0 and finished["cost_usd"] == 0
    assert (workspace_dir(demo) / "action_items.md").read_text() == ACTION_ITEMS
    trace = read_trace(Path(finished["trace_path"]))
    assert trace.meta["mode"] == "follower" and trace.meta["runtime"] == "replay"
    assert trace.meta["source_trace"].startswith("execution_trace_turn-the-meeting-notes")
    kinds = [s.kind for s in trace.steps]
    assert kinds.count("tool") == 6 and "subagent start" in kinds
    [learned] = long_term(demo)
    assert load_long_term(learned).usage_count == 2  # the replay was counted ...
    assert subjects(demo)[0].startswith(f"run {trace.trace_id}: {GOAL}")  # ... and committed
    assert not git.Repo(demo).is_dirty(untracked_files=True)


def test_learner_then_consolidate_then_follower_with_no_server(demo):
    for path in long_term(demo):  # start with nothing learned
        path.unlink()
    with OpenAIServer() as server:
        hello_notes.script(server)
        learner = run_cli(*hello_notes.learner_args(server), cwd=demo)
        assert learner.returncode == 0, learner.stderr
        server.assert_script_used()
    output = workspace_dir(demo) / "action_items.md"
    assert output.read_text() == ACTION_ITEMS
    consolidated = run_cli("memory", "consolidate", "--project", PROJECT, cwd=demo)
    assert consolidated.returncode == 0, consolidated.stderr
    [learned] = long_term(demo)
    output.unlink()
    # The server is gone: only a replay can produce the file again.
    follower = run_cli("run", GOAL, "--project", PROJECT, "--json", cwd=demo, env=NO_MODEL)
    assert follower.returncode == 0, follower.stderr
    assert output.read_text() == ACTION_ITEMS
    [finished] = [e for e in events(follower.stdout) if e["event"] == "run_finished"]
    assert finished["input_tokens"] == finished["output_tokens"] == 0
    history = subjects(demo)
    assert [s.split(":")[0].split(" ")[0] for s in history[:3]] == ["run", "memory", "run"]
    assert sum(s.startswith("run ") for s in history) == 2  # one commit per run
    assert learned.name in git.Repo(demo).git.ls_files()


def test_auto_decision_at_each_threshold(demo):
    def decide(goal: str) -> dict:
        result = run_cli("run", goal, "--project", PROJECT, "--json", "--runtime", "openai",
                         "--base-url", server.url, "--model", "m", cwd=demo)
        [chosen] = [e for e in events(result.stdout) if e["event"] == "mode_chosen"]
        return chosen

    with OpenAIServer() as server:
        assert decide(GOAL)["mode"] == "follower"
        server.enqueue("ok")
        mixed = decide("Turn the meeting notes in meetings/ into action_items.md today")
        assert mixed["mode"] == "mixed" and 0.75 <= mixed["score"] < 0.92
        first = server.model_requests()[0]
        user = [m["content"] for m in first.body["messages"] if m["role"] == "user"][0]
        assert "A worked example from memory" in user
        assert "meetings/2025-03-03-kickoff.md" in user
        server.enqueue("ok")
        learner = decide("Write a haiku about the sea")
        assert learner["mode"] == "learner" and learner["score"] < 0.75


def test_tampered_workspace_fails_the_step_that_differs(demo):
    note = workspace_dir(demo) / "meetings" / "2025-03-10-design-review.md"
    note.write_text(note.read_text().replace("Lena", "Leon"))
    [learned] = long_term(demo)
    result = run_cli("trace", "replay", str(learned), "--project", PROJECT, cwd=demo,
                     env=NO_MODEL)
    assert result.returncode == 1
    assert "step 3 (Read meetings/2025-03-10-design-review.md by system-agent)" in result.stderr
    assert "recorded" in result.stderr and "Leon" in result.stderr
    assert not (workspace_dir(demo) / "action_items.md").exists()  # nothing after it ran
    trace = read_trace(find_traces(demo / "projects" / PROJECT / "memory" / "short_term")[-1])
    assert trace.status == "error" and len(trace.tool_steps()) == 3


def test_follower_failure_falls_back_to_learner_and_both_are_recorded(demo):
    note = workspace_dir(demo) / "meetings" / "2025-03-17-weekly-sync.md"
    note.write_text(note.read_text() + "\n- Extra item added later.\n")
    with OpenAIServer() as server:
        server.enqueue("Learned it again.")
        result = run_cli("run", GOAL, "--project", PROJECT, "--json", "--runtime", "openai",
                         "--base-url", server.url, "--model", "m", cwd=demo)
        assert result.returncode == 0, result.stderr
        server.assert_script_used()
    modes = [e["mode"] for e in events(result.stdout) if e["event"] == "mode_chosen"]
    assert modes == ["follower", "learner"]
    finished = [e for e in events(result.stdout) if e["event"] == "run_finished"]
    assert [e["status"] for e in finished] == ["error", "success"]
    follower, learner = (read_trace(Path(e["trace_path"])) for e in finished)
    assert follower.meta["mode"] == "follower" and learner.meta["mode"] == "learner"
    assert learner.meta["fallback_from"] == follower.trace_id
    assert sum(s.startswith("run ") for s in subjects(demo)) == 2


def test_repeated_failures_demote_the_trace(demo):
    note = workspace_dir(demo) / "meetings" / "2025-03-03-kickoff.md"
    note.write_text("rewritten\n")
    for _ in range(3):
        result = run_cli("run", GOAL, "--project", PROJECT, "--mode", "follower", cwd=demo,
                         env=NO_MODEL)
        assert result.returncode == 1
    [learned] = long_term(demo)
    assert load_long_term(learned).demoted
    after = run_cli("run", GOAL, "--project", PROJECT, "--mode", "follower", cwd=demo,
                    env=NO_MODEL)
    assert after.returncode == 1 and "no learned trace matches" in after.stderr


@pytest.mark.parametrize("deterministic", [True, False])
@pytest.mark.usefixtures("bubblewrap")  # it starts processes
def test_replay_compares_tool_specs_marked_deterministic(tmp_path, deterministic):
    root = tmp_path / "ws"
    assert run_cli("init", str(root), cwd=tmp_path).returncode == 0
    project = root / "projects" / "default"
    (project / "tools" / "show.md").write_text(
        "---\nname: show\ndescription: Print a file.\ninput:\n  path: string\n"
        f"command: [cat, '{{path}}']\ndeterministic: {str(deterministic).lower()}\n---\nShows.\n")
    (project / "agents" / "shower.md").write_text(
        "---\nname: shower\ndescription: shows files\ntools: show\n---\nShow files.\n")
    (project / "workspace" / "a.txt").write_text("first\n")
    with OpenAIServer() as server:
        from tests.scripted.openai_server import tool_call

        server.enqueue(tool_call("show", {"path": "a.txt"}), "shown")
        learner = run_cli("run", "show a.txt", "--agent", "shower", "--mode", "learner",
                          "--runtime", "openai", "--base-url", server.url, "--model", "m",
                          cwd=root)
        assert learner.returncode == 0, learner.stderr
    [trace] = find_traces(project / "memory" / "short_term")
    (project / "workspace" / "a.txt").write_text("second\n")
    replay = run_cli("trace", "replay", str(trace), cwd=root, env=NO_MODEL)
    if deterministic:
        assert replay.returncode == 1
        assert "recorded 'first'" in replay.stderr and "'second'" in replay.stderr
    else:
        assert replay.returncode == 0, replay.stderr
