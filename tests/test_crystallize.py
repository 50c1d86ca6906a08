"""Crystallization through the installed console script: learned traces of real learner runs
(OpenAI runtime against the scripted server) become python tool specs in tools/crystallized/,
verified in a scratch copy of the workspace, chosen by `--mode auto` with no model server, and
offered to agents as ordinary tools."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from llmunix.crystallize import build
from llmunix.memory import git as gitmem
from llmunix.trace.markdown import find_traces, read_trace
from llmunix.workspace.layout import Workspace
from tests.scripted.openai_server import OpenAIServer, tool_call
from tests.support import run_cli

pytestmark = pytest.mark.usefixtures("bubblewrap")  # crystallized tools run in the sandbox
TOOL = "set-up-the-package-in-pkgs"
INDEX = "# Packages\n\n<!-- end -->\n"


def goal(name: str) -> str:
    return f"Set up the package {name} in pkgs/"


def readme(name: str) -> str:
    return f"# {name}\n\nThe {name} package.\n"


def script(server: OpenAIServer, name: str) -> None:
    server.enqueue(
        tool_call("Read", {"file_path": "index.md"}),
        tool_call("Write", {"file_path": f"pkgs/{name}/README.md", "content": readme(name)}),
        tool_call("Edit", {"file_path": "index.md", "old_string": "<!-- end -->",
                           "new_string": f"- {name}\n<!-- end -->"}),
        f"Set up pkgs/{name}.",
    )


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                          check=True).stdout


@pytest.fixture()
def ws(tmp_path) -> Workspace:
    root = tmp_path / "ws"
    assert run_cli("init", str(root), cwd=tmp_path).returncode == 0
    ws = Workspace(root)
    (ws.project("default").workspace_dir / "index.md").write_text(INDEX)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "the index")
    return ws


def learn(ws: Workspace, server: OpenAIServer, *names: str) -> None:
    for name in names:
        script(server, name)
        done = run_cli("run", goal(name), "--mode", "learner", "--runtime", "openai",
                       "--base-url", server.url, "--model", "m", "--quiet", cwd=ws.root)
        assert done.returncode == 0, done.stderr
    assert run_cli("memory", "consolidate", cwd=ws.root).returncode == 0


def spec_meta(ws: Workspace, name: str = TOOL) -> dict:
    text = (ws.project("default").tools_dir / "crystallized" / f"{name}.md").read_text()
    return yaml.safe_load(text.split("---\n")[1])


def last_trace(ws: Workspace):
    return read_trace(find_traces(ws.project("default").short_term_dir)[-1])


def test_two_traces_give_a_parameter_and_auto_mode_runs_it_without_a_model(ws):
    with OpenAIServer() as server:
        learn(ws, server, "alpha", "beta")
        made = run_cli("memory", "crystallize", cwd=ws.root)
        assert made.returncode == 0, made.stderr
        assert f"crystallized projects/default/tools/crystallized/{TOOL}.md (package)" \
            in made.stdout
        assert "pattern: 'Set up the package {package} in pkgs/'" in made.stdout
        assert "verified against 2 run(s)" in made.stdout
        meta = spec_meta(ws)
        assert meta["python"] == "crystallized" and list(meta["input"]) == ["package"]
        assert meta["crystallized"]["goal_pattern"] == "Set up the package {package} in pkgs/"
        assert len(meta["crystallized"]["learned_traces"]) == 2
        assert git(ws.root, "log", "-1", "--format=%s") == f"memory crystallize: {TOOL}\n"
        text = (ws.project("default").tools_dir / "crystallized" / f"{TOOL}.md").read_text()
        assert "_write('pkgs/' + package + '/README.md', '# ' + package" in text

        # an ordinary tool: boot loads it, `tools run` runs it, agents are offered it
        ran = run_cli("tools", "run", TOOL, "--arg", "package=gamma", cwd=ws.root)
        assert ran.returncode == 0, ran.stderr
        files = ws.project("default").workspace_dir
        assert (files / "pkgs/gamma/README.md").read_text() == readme("gamma")
        server.enqueue("nothing to do")
        assert run_cli("run", "say hi", "--mode", "learner", "--runtime", "openai",
                       "--base-url", server.url, "--model", "m", cwd=ws.root).returncode == 0
        assert TOOL in server.tool_names(server.model_requests()[-1])
        dead = server.url
    # the model server is gone: the goal is matched, bound and run by the crystallized tool
    done = run_cli("run", goal("delta"), "--runtime", "openai", "--base-url", dead,
                   "--model", "m", cwd=ws.root)
    assert done.returncode == 0, done.stderr
    assert 'mode crystallized (the goal fits' in done.stderr
    assert 'arguments {"package": "delta"}' in done.stderr
    assert (files / "pkgs/delta/README.md").read_text() == readme("delta")
    assert (files / "index.md").read_text() == \
        "# Packages\n\n- alpha\n- beta\n- gamma\n- delta\n<!-- end -->\n"
    trace = last_trace(ws)
    assert trace.meta["mode"] == "crystallized" and trace.meta["runtime"] == "crystallized"
    assert trace.meta["mode_decision"]["args"] == {"package": "delta"}
    assert trace.meta["input_tokens"] == 0 and trace.meta["turns"] == 0
    (step,) = trace.tool_steps()
    assert step.tool == TOOL and step.input == {"package": "delta"}
    assert step.fields["decision"] == "allowed"
    record = spec_meta(ws)["crystallized"]
    assert record["usage_count"] == 1 and record["success_count"] == 1
    assert f"run {trace.trace_id}" in git(ws.root, "log", "-1", "--format=%s")
    assert git(ws.root, "status", "--porcelain", "projects/default/tools") == ""


def test_one_trace_gives_a_tool_without_parameters(ws):
    with OpenAIServer() as server:
        learn(ws, server, "alpha")
        made = run_cli("memory", "crystallize", "--json", cwd=ws.root)
        assert made.returncode == 0, made.stderr
        (outcome,) = json.loads(made.stdout)
        assert outcome["params"] == [] and outcome["error"] == ""
        name = outcome["name"]
        meta = spec_meta(ws, name)
        assert "Takes no parameters" in meta["description"]
        assert meta.get("input") == {}
        # only the very goal fits (case and spacing aside)
        (ws.project("default").workspace_dir / "pkgs/alpha/README.md").unlink()
        done = run_cli("run", "set up the  package alpha in pkgs/", "--runtime", "openai",
                       "--base-url", server.url, cwd=ws.root)
        assert done.returncode == 0, done.stderr
        assert last_trace(ws).meta["mode"] == "crystallized"
        server.enqueue("learned nothing")
        other = run_cli("run", goal("beta"), "--runtime", "openai", "--base-url", server.url,
                        "--model", "m", cwd=ws.root)
        assert other.returncode == 0 and last_trace(ws).meta["mode"] != "crystallized"


def test_a_step_that_needs_a_model_is_refused_by_name(ws):
    with OpenAIServer() as server:
        server.enqueue(tool_call("summarize", {"source": "index.md"}), "short notes",
                       tool_call("Write", {"file_path": "summary.md", "content": "short\n"}),
                       "done")
        done = run_cli("run", "Summarize the notes", "--agent", "writer", "--mode", "learner",
                       "--runtime", "openai", "--base-url", server.url, "--model", "m",
                       cwd=ws.root)
        assert done.returncode == 0, done.stderr
    assert run_cli("memory", "consolidate", cwd=ws.root).returncode == 0
    (learned,) = ws.project("default").long_term_dir.glob("execution_trace_*.md")
    made = run_cli("memory", "crystallize", learned.stem, cwd=ws.root)
    assert made.returncode == 1
    assert "(summarize by writer) cannot be reproduced without a model: it is a prompt tool" \
        in made.stderr
    assert not (ws.project("default").tools_dir / "crystallized").exists()


def test_verification_fails_on_a_tampered_scratch_copy(ws):
    with OpenAIServer() as server:
        learn(ws, server, "alpha", "beta")

    def tampered(root, rev, paths, dest):
        gitmem.extract(root, rev, paths, dest)
        index = dest / "projects/default/workspace/index.md"
        index.write_text(index.read_text() + "edited by hand\n")

    (outcome,) = build.crystallize(ws, ws.project("default"), checkout=tampered)
    assert not outcome.ok
    assert "the tool's result differs from the run's: index.md: its content differs" \
        in outcome.error
    assert not (ws.project("default").tools_dir / "crystallized").exists()

    # a learned trace that says something else than the run committed is refused too
    (learned, _) = sorted(ws.project("default").long_term_dir.glob("execution_trace_*.md"))
    learned.write_text(learned.read_text().replace("The alpha package.", "The alpha pkg."))
    made = run_cli("memory", "crystallize", learned.stem, cwd=ws.root)
    assert made.returncode == 1
    assert "pkgs/alpha/README.md: its content differs from the run's" in made.stdout
    assert not (ws.project("default").tools_dir / "crystallized").exists()


def test_failures_in_a_row_demote_a_crystallized_tool(ws):
    with OpenAIServer() as server:
        learn(ws, server, "alpha", "beta")
    assert run_cli("memory", "crystallize", cwd=ws.root).returncode == 0
    (ws.project("default").workspace_dir / "index.md").unlink()  # the tool needs it
    for _ in range(3):
        failed = run_cli("run", goal("gamma"), "--mode", "crystallized", cwd=ws.root)
        assert failed.returncode == 1
        assert "index.md does not exist (the learned runs read it)" in failed.stderr
    record = spec_meta(ws)["crystallized"]
    assert record["status"] == "demoted" and record["consecutive_failures"] == 3
    gone = run_cli("run", goal("gamma"), "--mode", "crystallized", cwd=ws.root)
    assert gone.returncode == 1 and "no crystallized tool fits this goal" in gone.stderr


PROBE_TOOL = """---
name: {name}
description: what a tool's Python had loaded when it returned
input:
  package: {{type: string}}
python: probe
---
```python
{source}

def probe(package):
    import sys
    {call}
    return " ".join(sorted(sys.modules))
```
"""


def test_a_crystallized_run_needs_no_event_loop_and_its_tool_imports_nothing_new(ws, tmp_path):
    from llmunix.tools.process import run_process
    from llmunix.tools.sandbox import Sandbox
    from tests.test_startup import NEVER_ON_A_REPLAY, imported

    with OpenAIServer() as server:
        learn(ws, server, "alpha", "beta")
    assert run_cli("memory", "crystallize", cwd=ws.root).returncode == 0
    assert run_cli("boot", cwd=ws.root).returncode == 0
    modules, done = imported(tmp_path, ws.root, "run", goal("delta"))
    assert done.returncode == 0, done.stderr
    assert "mode crystallized" in done.stderr
    assert sorted(modules & set(NEVER_ON_A_REPLAY)) == []

    # In its sandboxed Python, the tool's own code (the learned Read, Write and Edit) and the
    # runner that calls it load no module a bare Python has not loaded already.
    tools = ws.project("default").tools_dir
    text = (tools / "crystallized" / f"{TOOL}.md").read_text()
    source = text.split("\n```python\n", 1)[1].rsplit("\n```", 1)[0]
    (tools / "probe-crystal.md").write_text(PROBE_TOOL.format(
        name="probe-crystal", source=source, call="crystallized(package)"))
    (tools / "probe-bare.md").write_text(PROBE_TOOL.format(name="probe-bare", source="",
                                                           call="pass"))
    seen = {}
    for name in ("probe-crystal", "probe-bare"):
        ran = run_cli("tools", "run", name, "--arg", "package=epsilon", cwd=ws.root)
        assert ran.returncode == 0, ran.stderr
        seen[name] = set(ran.stdout.split())
    work = ws.project("default").workspace_dir
    assert (work / "pkgs/epsilon/README.md").read_text() == readme("epsilon")
    bare = run_process([sys.executable, "-c", "import sys; print(*sorted(sys.modules))"],
                       sandbox=Sandbox.create(work), timeout_s=60)
    assert bare.exit_code == 0, bare.output
    assert "os" in seen["probe-crystal"]
    assert sorted(seen["probe-crystal"] - seen["probe-bare"]) == []
    assert sorted(seen["probe-bare"] - set(bare.output.split()) - {"marshal"}) == []


def test_a_crystallized_tool_refuses_a_path_outside_the_workspace(ws):
    with OpenAIServer() as server:
        learn(ws, server, "alpha", "beta")
    assert run_cli("memory", "crystallize", cwd=ws.root).returncode == 0
    outside = ws.root / "projects" / "default" / "escaped"
    done = run_cli("run", goal("../../escaped"), "--mode", "crystallized", cwd=ws.root)
    assert done.returncode == 1
    assert "pkgs/../../escaped/README.md is outside the workspace" in done.stderr
    assert not outside.exists()
    assert "- ../../escaped" not in (ws.project("default").workspace_dir / "index.md").read_text()
