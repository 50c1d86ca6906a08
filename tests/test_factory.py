"""The factory example: its shipped learned trace creates two specialists with CreateAgent and
delegates to each; a follower replay re-creates both specs offline, checking their hashes, and
the run's commit holds them. Learned again from scratch with a scripted model (OpenAI runtime)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from llmunix.trace.markdown import read_trace
from tests.examples import factory
from tests.examples.factory import FAQ, GLOSSARY, GOAL, PROJECT
from tests.scripted.openai_server import OpenAIServer
from tests.support import digest, run_cli

NO_MODEL = {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "ANTHROPIC_API_KEY": ""}
SPECIALISTS = ("faq-writer", "glossary-writer")


@pytest.fixture()
def demo(tmp_path) -> Path:
    root = tmp_path / "demo"
    done = run_cli("init", str(root), "--example", PROJECT, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return root


def project(root: Path) -> Path:
    return root / "projects" / PROJECT


def finished(stdout: str) -> dict:
    events = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return next(e for e in events if e["event"] == "run_finished")


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                          check=True).stdout


def recorded_hashes(root: Path) -> dict[str, str]:
    """The spec hash each CreateAgent call of the shipped learned trace reported."""
    (learned,) = (project(root) / "memory" / "long_term").glob("*.md")
    text = learned.read_text(encoding="utf-8")
    return dict(re.findall(r"Agent '([\w-]+)' created: \S+ \(spec ([0-9a-f]{12})\)", text))


def test_shipped_example_creates_its_team_offline(demo):
    assert not list((project(demo) / "agents").glob("*.md"))  # no specialist to begin with
    hashes = recorded_hashes(demo)
    assert sorted(hashes) == list(SPECIALISTS)
    result = run_cli("run", GOAL, "--project", PROJECT, "--json", cwd=demo, env=NO_MODEL)
    assert result.returncode == 0, result.stderr
    done = finished(result.stdout)
    assert done["status"] == "success" and done["input_tokens"] == 0 and done["turns"] == 0
    for name in SPECIALISTS:  # re-created, byte for byte what the learned run wrote
        spec = project(demo) / "agents" / f"{name}.md"
        assert digest(spec.read_text(encoding="utf-8")) == hashes[name]
    files = project(demo) / "workspace"
    assert (files / "glossary.md").read_text() == GLOSSARY
    assert (files / "faq.md").read_text() == FAQ
    trace = read_trace(Path(done["trace_path"]))
    assert trace.meta["mode"] == "follower"
    creates = [s for s in trace.tool_steps() if s.tool == "CreateAgent"]
    assert [s.input["name"] for s in creates] == ["glossary-writer", "faq-writer"]
    starts = [s.agent for s in trace.steps if s.kind == "subagent start"]
    assert starts == ["glossary-writer", "faq-writer"]
    writes = [(s.agent, s.input["file_path"]) for s in trace.tool_steps() if s.tool == "Write"]
    assert writes == [("glossary-writer", "glossary.md"), ("faq-writer", "faq.md")]
    # the run's commit holds the team; reverting it takes them out again
    shown = git(demo, "show", "--stat", "--format=%s", "HEAD")
    assert shown.startswith(f"run {trace.trace_id}: {GOAL}")
    assert "projects/factory/agents/glossary-writer.md" in shown
    assert git(demo, "status", "--porcelain") == ""
    undone = run_cli("memory", "revert", trace.trace_id, cwd=demo)
    assert undone.returncode == 0, undone.stderr
    assert not list((project(demo) / "agents").glob("*.md"))
    again = run_cli("run", GOAL, "--project", PROJECT, "--quiet", cwd=demo, env=NO_MODEL)
    assert again.returncode == 0, again.stderr  # the team is written again, the same specs
    for name in SPECIALISTS:
        spec = project(demo) / "agents" / f"{name}.md"
        assert digest(spec.read_text(encoding="utf-8")) == hashes[name]


def test_a_replay_that_would_write_another_spec_stops_there(demo):
    (learned,) = (project(demo) / "memory" / "long_term").glob("*.md")
    text = learned.read_text(encoding="utf-8")
    learned.write_text(text.replace("You write FAQs for customers", "You write FAQs for all"),
                       encoding="utf-8")
    result = run_cli("run", GOAL, "--project", PROJECT, "--mode", "follower", cwd=demo,
                     env=NO_MODEL)
    assert result.returncode == 1
    assert "(CreateAgent" in result.stderr and "the recorded run wrote" in result.stderr


def test_learned_from_scratch_then_replayed(demo):
    for path in (project(demo) / "memory" / "long_term").glob("*.md"):
        path.unlink()
    with OpenAIServer() as server:
        factory.script(server)
        learner = run_cli(*factory.learner_args(server), cwd=demo)
        assert learner.returncode == 0, learner.stderr
        server.assert_script_used()
        main = [r for r in server.model_requests() if "system agent" in server.system_prompt(r)]
        offered = [t["function"]["name"] for t in main[4].body["tools"]]
        agent_tool = next(t for t in main[4].body["tools"] if t["function"]["name"] == "Agent")
        assert "CreateAgent" in offered
        assert {"glossary-writer", "faq-writer"} <= set(
            agent_tool["function"]["parameters"]["properties"]["subagent_type"]["enum"])
    assert run_cli("memory", "consolidate", "--project", PROJECT, cwd=demo).returncode == 0
    for name in SPECIALISTS:
        (project(demo) / "agents" / f"{name}.md").unlink()
    (project(demo) / "workspace" / "faq.md").unlink()
    replay = run_cli("run", GOAL, "--project", PROJECT, "--quiet", cwd=demo, env=NO_MODEL)
    assert replay.returncode == 0, replay.stderr
    assert (project(demo) / "workspace" / "faq.md").read_text() == FAQ
    assert (project(demo) / "agents" / "faq-writer.md").is_file()
