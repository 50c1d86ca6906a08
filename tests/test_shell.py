"""`llmunix shell` as a real process driven through a pipe: commands, two goals with an edit in
between (the second runs the new specs: the model gets the new prompt, the trace the new hashes),
and Ctrl-C stopping a goal but not the shell. The model is a scripted server on 127.0.0.1."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from llmunix.trace.markdown import find_traces, read_trace
from tests.scripted.anthropic_server import reply, text, tool_use
from tests.scripted.openai_server import tool_call
from tests.support import LLMUNIX, agent_text, digest, new_workspace, write_spec

TIMEOUT = 120.0
TOOL = """---
name: stamp
description: Print the stamp.
command: ["echo", "{stamp}"]
---
"""


def claude_env(server, home: Path) -> dict[str, str]:
    return {"ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_API_KEY": "test",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "CLAUDE_CODE_MAX_RETRIES": "0",
            "HOME": str(home)}


@pytest.fixture()
def ws(tmp_path):
    return new_workspace(tmp_path / "ws")


class Lines:
    """A process's output, line by line, readable with a timeout."""

    def __init__(self, stream) -> None:
        self.queue: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream) -> None:
        for line in stream:
            self.queue.put(line.rstrip("\n"))

    def until(self, predicate) -> str:
        """The first line (from here on) for which `predicate` holds."""
        while True:
            try:
                line = self.queue.get(timeout=TIMEOUT)
            except queue.Empty:
                pytest.fail(f"no matching output line; saw: {self.seen[-20:]}")
            self.seen.append(line)
            if predicate(line):
                return line


class ShellProcess:
    def __init__(self, ws, *args: str, env: dict[str, str] | None = None) -> None:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("LLMUNIX_")}
        full_env.update({"NO_COLOR": "1", "COLUMNS": "200", "TERM": "dumb", **(env or {})})
        self.proc = subprocess.Popen([LLMUNIX, "shell", *args], cwd=ws.root, env=full_env,
                                     text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.out = Lines(self.proc.stdout)
        self.err = Lines(self.proc.stderr)

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def finish(self) -> int:
        self.send(":quit")
        return self.proc.wait(timeout=TIMEOUT)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def traces_by_goal(ws, project="default"):
    traces = [read_trace(p) for p in find_traces(ws.project(project).short_term_dir)]
    return {t.meta["goal"]: t for t in traces}


def test_commands_work_without_a_model(ws):
    write_spec(ws.user_agents_dir, "broken.md", "---\nname: broken\n---\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMUNIX_")}
    env.update({"NO_COLOR": "1", "COLUMNS": "200", "TERM": "dumb"})
    script = ":help\n:agents\n:reload\n:trace\n:cost\n:nope\n\n:quit\nnever run\n"
    result = subprocess.run([LLMUNIX, "shell"], cwd=ws.root, env=env, input=script, text=True,
                            capture_output=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert ":reload" in out and "Ctrl-C stops the running goal" in out  # :help
    assert "system-agent" in out and "writer" in out  # :agents
    assert "registry: generation 1 · 6 agents · 6 tools · 13 spec files · 1 error(s)" in out
    assert "empty body" in out  # the broken file, in :agents and :reload
    assert "no goal has run in this shell yet" in out  # :trace
    assert "0 goal(s) · 0 turns" in out  # :cost
    assert "unknown command :nope" in result.stderr
    assert "error    agent broken  agents/broken.md" in result.stderr  # reported at start
    assert find_traces(ws.project("default").short_term_dir) == []  # nothing ran


def test_two_goals_with_an_edit_in_between_run_the_new_specs(ws, anthropic_server, tmp_path):
    project = ws.project("default")
    tool_v1, tool_v2 = TOOL.replace("{stamp}", "STAMP-1"), TOOL.replace("{stamp}", "STAMP-2")
    solo_v1 = agent_text("solo", tools="stamp", body="SOLO-V1: stamp, then report.")
    solo_v2 = agent_text("solo", tools="stamp", body="SOLO-V2: stamp, then report.")
    write_spec(project.tools_dir, "stamp.md", tool_v1)
    agent_path = write_spec(ws.user_agents_dir, "solo.md", solo_v1)
    anthropic_server.enqueue(tool_use("mcp__llmunix__stamp", {}), "done one",
                             tool_use("mcp__llmunix__stamp", {}), "done two")
    shell = ShellProcess(ws, "--agent", "solo", "--runtime", "claude",
                         env=claude_env(anthropic_server, tmp_path))
    try:
        shell.send("first goal")
        shell.out.until(lambda line: line == "done one")
        agent_path.write_text(solo_v2)
        (project.tools_dir / "stamp.md").write_text(tool_v2)
        shell.err.until(lambda line: "reloaded agent solo" in line)
        shell.send("second goal")
        shell.out.until(lambda line: line == "done two")
        shell.send(":trace")
        assert shell.out.until(lambda line: line.startswith("trace ")).endswith(".md")
        assert shell.out.until(lambda line: line.startswith("success")).startswith(
            "success · ")
        used = shell.out.until(lambda line: line.startswith("specs used: "))
        assert f"agent:solo {digest(solo_v2)}" in used and f"tool:stamp {digest(tool_v2)}" in used
        shell.send(":cost")
        assert shell.out.until(lambda line: "goal(s)" in line).startswith(
            "2 goal(s) (2 success) · 4 turns")
        assert shell.finish() == 0
    finally:
        shell.kill()
    anthropic_server.assert_script_used()
    prompts = [anthropic_server.system_prompt(r) for r in anthropic_server.model_requests()]
    assert [p.endswith("SOLO-V1: stamp, then report.") for p in prompts] == [True, True,
                                                                             False, False]
    assert all(p.endswith("SOLO-V2: stamp, then report.") for p in prompts[2:])
    traces = traces_by_goal(ws)
    first, second = traces["first goal"], traces["second goal"]
    assert first.meta["specs"]["agent:solo"] == digest(solo_v1)
    assert second.meta["specs"]["agent:solo"] == digest(solo_v2)
    assert first.meta["specs"]["tool:stamp"] == digest(tool_v1)
    assert second.meta["specs"]["tool:stamp"] == digest(tool_v2)
    [step1], [step2] = first.tool_steps(), second.tool_steps()
    assert (step1.fields["spec_hash"], step1.blocks["result"].strip()) == (digest(tool_v1),
                                                                           "STAMP-1")
    assert (step2.fields["spec_hash"], step2.blocks["result"].strip()) == (digest(tool_v2),
                                                                           "STAMP-2")


def test_a_broken_edit_between_goals_runs_the_last_good_version(ws, anthropic_server, tmp_path):
    good = agent_text("solo", tools="Read", body="SOLO-GOOD")
    path = write_spec(ws.user_agents_dir, "solo.md", good)
    anthropic_server.enqueue("done one", "done two")
    shell = ShellProcess(ws, "--agent", "solo", "--runtime", "claude",
                         env=claude_env(anthropic_server, tmp_path))
    try:
        shell.send("first goal")
        shell.out.until(lambda line: line == "done one")
        path.write_text("---\nname: solo\ntools: [Read\n---\nSOLO-BROKEN\n")
        shell.err.until(lambda line: "error    agent solo" in line and "still using" in line)
        shell.send("second goal")
        shell.out.until(lambda line: line == "done two")
        assert shell.finish() == 0
    finally:
        shell.kill()
    prompts = [anthropic_server.system_prompt(r) for r in anthropic_server.model_requests()]
    assert len(prompts) == 2 and all(p.endswith("SOLO-GOOD") for p in prompts)
    assert traces_by_goal(ws)["second goal"].meta["specs"]["agent:solo"] == digest(good)


def test_ctrl_c_stops_the_goal_not_the_shell(ws, anthropic_server, tmp_path):
    write_spec(ws.user_agents_dir, "solo.md", agent_text("solo", tools="Read", body="SOLO"))
    arrived = threading.Event()

    def first_request(req) -> bool:
        arrived.set()
        return True

    anthropic_server.enqueue(reply(text("too late"), delay=60), when=first_request)
    anthropic_server.enqueue("second done")
    shell = ShellProcess(ws, "--agent", "solo", "--runtime", "claude",
                         env=claude_env(anthropic_server, tmp_path))
    try:
        shell.send("slow goal")
        assert arrived.wait(TIMEOUT), "the goal never reached the model"
        shell.proc.send_signal(signal.SIGINT)
        shell.err.until(lambda line: "interrupted" in line)
        shell.send("next goal")
        shell.out.until(lambda line: line == "second done")
        assert shell.finish() == 0
    finally:
        shell.kill()
    traces = traces_by_goal(ws)
    assert traces["slow goal"].status == "interrupted"
    assert traces["next goal"].status == "success"


def test_two_goals_on_the_openai_runtime_see_the_edit(ws, openai_server):
    path = write_spec(ws.user_agents_dir, "solo.md",
                      agent_text("solo", tools="Read", body="OPENAI-V1"))
    openai_server.enqueue("done one", "done two")
    shell = ShellProcess(ws, "--agent", "solo", "--runtime", "openai", "--model", "m",
                         "--base-url", openai_server.url, env={"OPENAI_API_KEY": "test"})
    try:
        shell.send("first goal")
        shell.out.until(lambda line: line == "done one")
        v2 = agent_text("solo", tools="Read", body="OPENAI-V2")
        path.write_text(v2)
        shell.err.until(lambda line: "reloaded agent solo" in line)
        shell.send("second goal")
        shell.out.until(lambda line: line == "done two")
        assert shell.finish() == 0
    finally:
        shell.kill()
    prompts = [openai_server.system_prompt(r) for r in openai_server.model_requests()]
    assert "OPENAI-V1" in prompts[0] and "OPENAI-V2" in prompts[-1]
    assert traces_by_goal(ws)["second goal"].meta["specs"]["agent:solo"] == digest(v2)


def test_an_edit_applies_to_the_next_delegation_of_a_running_goal(ws, openai_server):
    project = ws.project("default")
    write_spec(project.agents_dir, "boss.md",
               agent_text("boss", tools="Agent", body="BOSS-MARKER: delegate."))
    v1 = agent_text("helper", tools="Read", body="HELPER-V1")
    v2 = agent_text("helper", tools="Read", body="HELPER-V2")
    helper = write_spec(project.agents_dir, "helper.md", v1)
    shell = ShellProcess(ws, "--agent", "boss", "--runtime", "openai", "--model", "m",
                         "--base-url", openai_server.url, env={"OPENAI_API_KEY": "test"})

    def edit_while_the_goal_runs(req) -> bool:
        # The boss's first turn: edit the helper, and answer once the shell has reloaded it.
        helper.write_text(v2)
        shell.err.until(lambda line: "reloaded agent helper" in line)
        return True

    openai_server.enqueue(tool_call("Agent", {"subagent_type": "helper", "prompt": "help"}),
                          when=edit_while_the_goal_runs)
    openai_server.enqueue("helped", when="HELPER-V")
    openai_server.enqueue("all done", when="BOSS-MARKER")
    try:
        shell.send("delegate once")
        shell.out.until(lambda line: line == "all done")
        assert shell.finish() == 0
    finally:
        shell.kill()
    openai_server.assert_script_used()
    sub = [r for r in openai_server.model_requests()
           if "HELPER-V" in openai_server.system_prompt(r)]
    assert [openai_server.system_prompt(r) for r in sub] == ["HELPER-V2"]
    trace = traces_by_goal(ws)["delegate once"]
    assert trace.meta["specs"]["agent:helper"] == digest(v1)  # the goal began with version 1
    [start] = [s for s in trace.steps if s.kind == "subagent start"]
    assert start.fields["spec_hash"] == digest(v2)  # and delegated to version 2
