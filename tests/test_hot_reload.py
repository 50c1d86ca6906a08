"""The live registry: edits, broken edits, fixes, deletes, renames, editor-style saves, bursts,
new folders, cross-file effects, and `llmunix watch` as a real process. Tests wait on the
registry's condition (never on time) with a generous timeout."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading

import pytest

from llmunix.specs.live import LiveRegistry
from llmunix.specs.registry import build_registry, load_folder
from tests.support import LLMUNIX, agent_text, digest, new_workspace, write_spec

TIMEOUT = 30.0
TOOL = """---
name: stamp
description: Print a stamp.
command: ["echo", "{stamp}"]
---
"""


@pytest.fixture()
def ws(tmp_path):
    return new_workspace(tmp_path / "ws")


@pytest.fixture()
def live(ws):
    registry = LiveRegistry(ws, ws.project("default")).start()
    yield registry
    registry.stop()


def wait(live, predicate, what="the registry to catch up"):
    assert live.wait_for(predicate, TIMEOUT), f"timed out waiting for {what}: {live.events()}"


def agent_hash(live, name):
    spec = live.current().agents.get(name)
    return spec.content_hash if spec is not None else None


def events_after(live, generation):
    return [e for e in live.events() if e.generation > generation]


def test_first_load_is_the_registry_load_registry_builds(ws, live):
    # Read from disk without the spec cache: saving it would create .llmunix/ in the watched
    # workspace root, a folder event that may land before the snapshot.
    disk = build_registry(ws, ws.project("default"), load_folder)
    snap = live.snapshot()
    assert snap.spec_hashes() == disk.spec_hashes()
    assert snap.diagnostics == disk.diagnostics
    assert live.generation == 1 and live.events() == []
    assert ws.user_agents_dir in live.watching()


def test_an_edit_reparses_only_that_file(ws, live):
    path = write_spec(ws.user_agents_dir, "scribe.md", agent_text("scribe", body="First."))
    wait(live, lambda r: agent_hash(r, "scribe") == digest(path.read_text()))
    untouched = live.current().agents["system-agent"]
    before = live.snapshot()
    text = agent_text("scribe", body="Second.")
    path.write_text(text)
    wait(live, lambda r: agent_hash(r, "scribe") == digest(text))
    assert live.current().agents["scribe"].prompt == "Second."
    assert live.current().agents["system-agent"] is untouched  # not parsed again
    assert before.agents["scribe"].prompt == "First."  # a snapshot never changes
    last = live.events()[-1]
    assert (last.event, last.kind, last.name, last.hash) == ("reloaded", "agent", "scribe",
                                                             digest(text))
    assert last.path == str(path) and last.active_hash == digest(text) and last.error is None


def test_a_broken_edit_keeps_the_last_good_version_until_fixed(ws, live):
    good = agent_text("scribe", body="Good.")
    path = write_spec(ws.user_agents_dir, "scribe.md", good)
    wait(live, lambda r: agent_hash(r, "scribe") == digest(good))
    broken = "---\nname: scribe\ndescription: [unclosed\ntools: Read\n---\nBroken.\n"
    path.write_text(broken)
    wait(live, lambda r: r.events()[-1].event == "error")
    event = live.events()[-1]
    assert event.name == "scribe" and event.hash == digest(broken)
    assert event.error.file == str(path) and event.error.line in (3, 4)
    assert "YAML syntax error" in event.error.cause
    assert event.active_hash == digest(good)
    assert live.current().agents["scribe"].prompt == "Good."  # still in effect
    assert any(d.path == str(path) for d in live.current().errors)  # and reported
    fixed = agent_text("scribe", body="Fixed.")
    path.write_text(fixed)
    wait(live, lambda r: agent_hash(r, "scribe") == digest(fixed))
    assert live.events()[-1].event == "reloaded"
    assert live.current().errors == []


def test_a_file_broken_from_the_start_is_reported_and_not_loaded(ws, live):
    path = write_spec(ws.user_agents_dir, "bad.md", "---\nname: bad\n---\n")
    wait(live, lambda r: r.events() and r.events()[-1].path == str(path))
    event = live.events()[-1]
    assert event.event == "error" and event.active_hash == ""
    assert "empty body" in event.error.cause
    assert "bad" not in live.current().agents


def test_delete_removes_the_spec(ws, live):
    path = write_spec(ws.user_agents_dir, "scribe.md", agent_text("scribe"))
    wait(live, lambda r: "scribe" in r.current().agents)
    path.unlink()
    wait(live, lambda r: "scribe" not in r.current().agents)
    last = live.events()[-1]
    assert (last.event, last.name, last.path, last.hash) == ("removed", "scribe", str(path), "")


def test_deleting_an_override_brings_back_the_lower_scope(ws, live):
    mine = write_spec(ws.user_agents_dir, "my-writer.md", agent_text("writer", body="Mine."))
    wait(live, lambda r: r.current().agents["writer"].scope == "user")
    mine.unlink()
    wait(live, lambda r: r.current().agents["writer"].scope == "system")


def test_rename_moves_the_spec_to_its_new_path(ws, live):
    old = write_spec(ws.user_agents_dir, "a.md", agent_text("scribe"))
    wait(live, lambda r: "scribe" in r.current().agents)
    new = old.with_name("b.md")
    gen = live.generation
    old.rename(new)
    wait(live, lambda r: "scribe" in r.current().agents
         and r.current().agents["scribe"].path == new)
    kinds = {(e.event, e.path) for e in events_after(live, gen)}
    assert kinds == {("removed", str(old)), ("added", str(new))}


def test_write_temp_then_rename_is_one_reload(ws, live):
    path = write_spec(ws.user_agents_dir, "scribe.md", agent_text("scribe", body="One."))
    wait(live, lambda r: "scribe" in r.current().agents)
    gen = live.generation
    text = agent_text("scribe", body="Two.")
    tmp = path.with_name(".scribe.md.tmp-1234")
    tmp.write_text(text)
    os.replace(tmp, path)
    wait(live, lambda r: agent_hash(r, "scribe") == digest(text))
    assert [(e.event, e.hash) for e in events_after(live, gen)] == [("reloaded", digest(text))]


def test_backup_style_save_ends_on_the_new_content(ws, live):
    path = write_spec(ws.user_agents_dir, "scribe.md", agent_text("scribe", body="One."))
    wait(live, lambda r: "scribe" in r.current().agents)
    gen = live.generation
    backup = path.with_name("scribe.md~")
    os.rename(path, backup)  # vim's default: keep the original as a backup, write anew
    text = agent_text("scribe", body="Two.")
    path.write_text(text)
    backup.unlink()
    wait(live, lambda r: agent_hash(r, "scribe") == digest(text))
    assert all(e.event != "error" for e in events_after(live, gen))


def test_fifty_writes_in_a_burst_end_on_the_final_content(ws, live):
    path = write_spec(ws.user_agents_dir, "scribe.md", agent_text("scribe", body="v-start"))
    wait(live, lambda r: "scribe" in r.current().agents)
    gen = live.generation
    versions = [agent_text("scribe", body=f"Version {i}. " + "x" * (i * 40)) for i in range(50)]
    for text in versions:
        path.write_text(text)
    wait(live, lambda r: agent_hash(r, "scribe") == digest(versions[-1]))
    assert live.current().agents["scribe"].prompt.startswith("Version 49.")
    seen = events_after(live, gen)
    assert seen and all(e.event == "reloaded" for e in seen), seen  # never a partial file
    assert {e.hash for e in seen} <= {digest(t) for t in versions}


def test_a_new_file_in_a_new_project_folder(ws):
    project = ws.project("later")
    assert not project.root.exists()
    with LiveRegistry(ws, project) as live:
        write_spec(project.agents_dir, "helper.md", agent_text("helper", body="Help."))
        write_spec(project.tools_dir, "stamp.md", TOOL.replace("{stamp}", "S1"))
        wait(live, lambda r: "helper" in r.current().agents and "stamp" in r.current().tools)
        assert live.current().agents["helper"].scope == "project:later"
        assert project.agents_dir in live.watching()


def test_every_project_is_watched_when_asked(ws):
    with LiveRegistry(ws, None, all_projects=True) as live:
        fresh = ws.project("fresh")
        path = write_spec(fresh.agents_dir, "x.md", agent_text("x", tools="Read, nope"))
        wait(live, lambda r: any(e.path == str(path) for e in r.events()))
        [event] = [e for e in live.events() if e.path == str(path)]
        assert event.event == "error" and event.scope == "project:fresh"
        assert "nope" in event.error.cause  # checked against that project's tools
        assert "x" not in live.current().agents  # the base registry stays the base


def test_removing_a_tool_reports_the_agents_that_use_it(ws, live):
    project = ws.project("default")
    tool = write_spec(project.tools_dir, "stamp.md", TOOL.replace("{stamp}", "S1"))
    agent = write_spec(project.agents_dir, "stamper.md", agent_text("stamper", tools="stamp"))
    wait(live, lambda r: "stamper" in r.current().agents)
    gen = live.generation
    tool.unlink()
    wait(live, lambda r: "stamper" not in r.current().agents)
    seen = {(e.event, e.path) for e in events_after(live, gen)}
    assert seen == {("removed", str(tool)), ("error", str(agent))}
    gen = live.generation
    write_spec(project.tools_dir, "stamp.md", TOOL.replace("{stamp}", "S2"))
    wait(live, lambda r: "stamper" in r.current().agents)
    seen = {(e.event, e.path) for e in events_after(live, gen)}
    assert seen == {("added", str(tool)), ("reloaded", str(agent))}


def test_sync_reads_what_is_on_disk_now(ws, live):
    text = agent_text("quick", body="Now.")
    write_spec(ws.user_agents_dir, "quick.md", text)
    snap = live.sync()
    assert "quick" in snap.agents, (live._pending, live.events())
    assert snap.agents["quick"].content_hash == digest(text)


def test_subscribers_get_every_event_and_a_failing_one_does_not_stop_reloads(ws, live):
    got = []
    live.subscribe(lambda e: 1 / 0)
    unsubscribe = live.subscribe(got.append)
    path = write_spec(ws.user_agents_dir, "one.md", agent_text("one"))
    wait(live, lambda r: "one" in r.current().agents)
    path.write_text(agent_text("one", body="Again."))
    wait(live, lambda r: r.current().agents["one"].prompt == "Again.")
    assert [e.event for e in got] == ["added", "reloaded"]
    unsubscribe()
    path.unlink()
    wait(live, lambda r: "one" not in r.current().agents)
    assert len(got) == 2


# ---------------------------------------------------------------- `llmunix watch`


class Lines:
    """A process's output, line by line, readable with a timeout."""

    def __init__(self, stream) -> None:
        self.queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream) -> None:
        for line in stream:
            self.queue.put(line)

    def next(self) -> str:
        try:
            return self.queue.get(timeout=TIMEOUT)
        except queue.Empty:
            pytest.fail("no output line in time")


def start_watch(ws, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMUNIX_")}
    env.update({"NO_COLOR": "1", "TERM": "dumb"})
    return subprocess.Popen([LLMUNIX, "watch", *args], cwd=ws.root, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_watch_json_prints_one_object_per_change(ws):
    path = write_spec(ws.user_agents_dir, "scribe.md", agent_text("scribe", body="One."))
    proc = start_watch(ws, "--json", "--project", "default")
    out = Lines(proc.stdout)
    try:
        ready = json.loads(out.next())
        assert ready["event"] == "ready" and ready["errors"] == 0 and ready["files"] > 10
        text = agent_text("scribe", body="Two.")
        path.write_text(text)
        event = json.loads(out.next())
        assert {k: event[k] for k in ("event", "path", "kind", "name", "hash", "error")} == {
            "event": "reloaded", "path": str(path), "kind": "agent", "name": "scribe",
            "hash": digest(text), "error": None}
        path.write_text("---\nname: scribe\nmodel: [1, 2]\n---\nBody.\n")
        event = json.loads(out.next())
        assert event["event"] == "error" and event["name"] == "scribe"
        assert event["error"]["file"] == str(path) and event["error"]["line"] == 3
        assert "model" in event["error"]["cause"]
        assert event["active_hash"] == digest(text)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=TIMEOUT)
    assert code == 0
    assert proc.stderr.read() == ""


def test_watch_text_reports_broken_files_at_start_and_ctrl_c_exits_0(ws):
    bad = write_spec(ws.project("default").agents_dir, "bad.md", "no frontmatter here\n")
    proc = start_watch(ws)
    out = Lines(proc.stdout)
    err = Lines(proc.stderr)
    try:
        first = out.next()
        assert first.startswith("error    agent bad  projects/default/agents/bad.md: no front")
        assert "not loaded" in first
        assert "watching" in err.next()
        other = write_spec(ws.project("other").tools_dir, "t.md", TOOL.replace("{stamp}", "T"))
        assert out.next().split() == ["added", "tool", "stamp", "projects/other/tools/t.md",
                                      digest(other.read_text())]
        bad.unlink()
        assert out.next().split() == ["removed", "agent", "bad",
                                      "projects/default/agents/bad.md"]
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=TIMEOUT)
    assert code == 0


def test_claude_agents_in_sub_folders_reload_too(ws, live):
    # Claude Code reads .claude/agents/**/*.md; so does llmunix, live included.
    nested = ws.claude_agents_dir / "team" / "backend"
    write_spec(nested, "api.md", agent_text("api", body="First."))
    wait(live, lambda r: "api" in r.current().agents)
    assert live.current().agents["api"].scope == "claude"
    write_spec(nested, "api.md", agent_text("api", body="Second."))
    wait(live, lambda r: r.current().agents["api"].prompt == "Second.")
    (nested / "api.md").unlink()
    wait(live, lambda r: "api" not in r.current().agents)
