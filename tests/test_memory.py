"""Continuum memory: consolidation into long-term traces, their record and demotion, retention,
alpha promotion, the SmartLibrary, goal matching and search across tiers."""

from __future__ import annotations

import json
import marshal
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import git
import pytest
import yaml

from llmunix import memory
from llmunix.errors import EXIT_NO_RUNTIME, RuntimeUnavailable
from llmunix.memory import git as gitmem
from llmunix.memory.longterm import DEMOTE_AFTER, confidence
from llmunix.memory.text import goal_signature, similarity, terms
from llmunix.run import summarize
from llmunix.trace.events import AssistantText, SubagentFinished, SubagentStarted, ToolCalled
from llmunix.trace.markdown import MAX_INLINE_RESULT, TraceWriter, iso, new_trace_path
from llmunix.workspace.layout import Workspace
from tests.support import agent_text, new_workspace, run_cli, write_spec

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
_clock = {"n": 0}


def call(tool: str, tool_input: dict, output: str = "ok", *, agent: str = "system-agent",
         decision: str = "allowed", is_error: bool = False) -> ToolCalled:
    _clock["n"] += 1
    return ToolCalled(f"call-{_clock['n']}", agent, tool, tool_input, output, is_error, 0.01,
                      decision, "refused by policy" if decision == "denied" else "")


def make_trace(ws: Workspace, goal: str, events: list | None = None, *, project: str = "default",
               status: str = "success", mode: str = "learner", at: datetime | None = None,
               result: str = "done") -> Path:
    """A short-term trace in the real format, written by the real TraceWriter."""
    proj = ws.ensure_project(project)
    _clock["n"] += 1
    started = at or T0 + timedelta(seconds=_clock["n"])
    trace_id, path = new_trace_path(proj.short_term_dir, goal, started)
    writer = TraceWriter(path, {
        "trace_id": trace_id, "goal": goal, "project": project, "agent": "system-agent",
        "runtime": "claude", "model": "claude-sonnet", "mode": mode, "started_at": iso(started),
        "specs": {"agent:system-agent": "a1", "agent:writer": "b2", "tool:Other": "c3"},
    })
    if events is None:
        events = [call("Write", {"file_path": "out.txt", "content": goal})]
    for event in events:
        if isinstance(event, ToolCalled):
            writer.tool_called(event)
        elif isinstance(event, SubagentStarted):
            writer.subagent_started(event)
        elif isinstance(event, SubagentFinished):
            writer.subagent_finished(event)
        else:
            writer.assistant_text(event)
    writer.finish({"status": status, "finished_at": iso(started + timedelta(seconds=1)),
                   "duration_s": 1.0, "cost_usd": 0.0123}, result)
    return path


def frontmatter(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    return yaml.safe_load(text[4:text.index("\n---\n", 4)])


def long_term(ws: Workspace, project: str = "default") -> list[Path]:
    return sorted(ws.project(project).long_term_dir.glob("execution_trace_*.md"))


def set_memory_config(ws: Workspace, **values) -> Workspace:
    text = ws.config_path.read_text(encoding="utf-8")
    for key, value in values.items():
        lines = [ln for ln in text.splitlines() if not ln.startswith(f"{key} ")]
        text = "\n".join(lines) + "\n"
        text = text.replace("[memory]\n", f"[memory]\n{key} = {json.dumps(value)}\n")
    ws.config_path.write_text(text, encoding="utf-8")
    return Workspace(ws.root)  # config is cached per object


def age_memory(ws: Workspace, seconds: float = 3600) -> None:
    """Move the memory files' and folders' mtimes into the past."""
    when = time.time() - seconds
    for path in [*ws.projects_dir.glob("*/memory/**/*"), *ws.projects_dir.glob("*/memory/*"),
                 *ws.system_dir.glob("*.md")]:
        os.utime(path, (when, when))


@pytest.fixture
def ws(tmp_path) -> Workspace:
    return new_workspace(tmp_path / "ws")


# ---------------------------------------------------------------- goal signature


def test_goal_signature_is_normalized_and_keeps_what_changes_a_goal():
    a = goal_signature("Please write a haiku about the sea to haiku.md!")
    assert a == "haiku haiku.md sea write"
    assert goal_signature("write haiku.md: a haiku about THE sea") == a
    assert goal_signature("Write a haiku, about the sea, to haiku.md") == a
    assert goal_signature("write a haiku about the sea to poem.md") != a  # file names count
    assert goal_signature("do not delete old logs") != goal_signature("delete old logs")
    assert goal_signature("write 3 haikus") != goal_signature("write 5 haikus")
    assert goal_signature("the of and") == ""
    assert "haiku" in terms("save haiku.md") and "md" in terms("save haiku.md")


def test_similarity_is_symmetric_and_one_extra_word_is_not_enough_to_follow():
    base = goal_signature("write a haiku about the sea").split()
    more = goal_signature("write a haiku about the sea, quickly").split()
    df = {"write": 1, "haiku": 1, "sea": 1}
    one_way, other_way = similarity(base, more, df, 1), similarity(more, base, df, 1)
    assert one_way == other_way and 0.75 <= one_way < 0.92
    assert similarity(base, base, df, 1) == pytest.approx(1.0)
    assert similarity(base, ["list", "python", "files"], df, 1) == 0.0
    two_more = goal_signature("write a haiku about the sea quickly tonight").split()
    assert similarity(base, two_more, df, 1) < one_way


# ---------------------------------------------------------------- consolidation


def delegating_run() -> list:
    long_output = "line\n" * (MAX_INLINE_RESULT // 4)
    return [
        AssistantText("system-agent", "I will write the poem, then have it reviewed."),
        call("Write", {"file_path": "haiku.md", "content": "waves ```fold``` — écume\n"},
             "File created"),
        call("Bash", {"command": "sudo rm -rf /"}, "denied", decision="denied", is_error=True),
        SubagentStarted("writer", "system-agent", "deleg-1", "Polish haiku.md"),
        call("Read", {"file_path": "haiku.md"}, long_output, agent="writer"),
        call("Edit", {"file_path": "haiku.md", "old_string": "fold", "new_string": "fall"},
             "edited", agent="writer"),
        SubagentFinished("writer", "system-agent", "deleg-1", "Polished."),
        SubagentStarted("writer", "system-agent", "deleg-2", "Say hi"),  # nothing replayable
        SubagentFinished("writer", "system-agent", "deleg-2", "hi"),
        call("Glob", {"pattern": "*.md"}, "haiku.md"),
    ]


def test_consolidation_writes_a_long_term_trace_in_the_schema(ws):
    source = make_trace(ws, "Write a haiku about the sea to haiku.md", delegating_run())
    report = memory.consolidate(ws)
    assert report.message == "memory consolidate: 1 new, 0 updated"
    [path] = long_term(ws)
    assert path.name == "execution_trace_write-a-haiku-about-the-sea-to-haiku-md_v1.md"
    meta = frontmatter(path)
    for key in ("trace_id", "goal", "goal_signature", "confidence", "success_rate", "usage_count",
                "success_count", "failure_count", "created_at", "last_used", "version",
                "source_traces", "project", "agent", "runtime", "metadata"):
        assert key in meta, key
    assert meta["trace_id"] == path.stem
    assert meta["goal_signature"] == "haiku haiku.md sea write"
    assert meta["source_traces"] == [source.stem]
    assert (meta["usage_count"], meta["success_count"], meta["failure_count"]) == (1, 1, 0)
    assert meta["success_rate"] == 1.0 and meta["confidence"] == 0.5
    assert meta["version"] == 1 and meta["status"] == "active"
    assert meta["project"] == "default" and meta["runtime"] == "claude"
    assert meta["created_at"] == frontmatter(source)["started_at"]  # when the run started
    assert meta["metadata"]["tools"] == ["Edit", "Glob", "Read", "Write"]
    assert meta["metadata"]["specs"] == {"agent:system-agent": "a1", "agent:writer": "b2"}
    text = path.read_text(encoding="utf-8")
    assert "### Step 1: Write by system-agent" in text
    assert "### Step 2: delegate to writer by system-agent" in text
    assert "sudo" not in text  # a denied call is not replayable

    learned = memory.load_long_term(path)
    shape = [(s.kind, s.agent, s.tool, s.within, s.depth) for s in learned.steps]
    assert shape == [
        ("tool", "system-agent", "Write", "", 0),
        ("subagent start", "writer", "Agent", "", 0),
        ("tool", "writer", "Read", "deleg-1", 1),
        ("tool", "writer", "Edit", "deleg-1", 1),
        ("subagent end", "writer", "", "", 0),
        ("tool", "system-agent", "Glob", "", 0),
    ]
    write, start, read = learned.steps[0], learned.steps[1], learned.steps[2]
    assert write.input == {"file_path": "haiku.md", "content": "waves ```fold``` — écume\n"}
    assert write.expected == "File created"
    assert start.parent == "system-agent" and start.input["prompt"] == "Polish haiku.md"
    assert read.expected == "line\n" * (MAX_INLINE_RESULT // 4)  # whole, not the cut copy
    assert learned.steps[4].expected == "Polished."
    assert learned.result == "done"
    replay = learned.replay_steps()
    assert [(s.kind, s.tool) for s in replay] == [
        ("tool", "Write"), ("subagent start", ""), ("tool", "Read"), ("tool", "Edit"),
        ("subagent end", ""), ("tool", "Glob")]
    assert replay[1].parent == "system-agent" and replay[1].call_id == "deleg-1"


def test_consolidation_is_idempotent_and_takes_only_successful_learned_runs(ws):
    make_trace(ws, "write notes")
    make_trace(ws, "broken goal", status="error")
    make_trace(ws, "stopped goal", status="stopped")
    make_trace(ws, "replayed goal", mode="follower")
    make_trace(ws, "only refused", [call("Bash", {"command": "sudo x"}, decision="denied")])
    make_trace(ws, "only talk", [AssistantText("system-agent", "nothing to do")])
    first = memory.consolidate(ws)
    assert (len(first.new), first.distilled, first.considered) == (1, 1, 6)
    assert first.commit is not None
    snapshot = {p: p.read_bytes() for p in long_term(ws)}
    library = ws.smart_library_path.read_bytes()
    head = git.Repo(ws.root).head.commit.hexsha
    second = memory.consolidate(ws)
    assert (second.new, second.updated, second.distilled, second.commit) == ([], [], 0, None)
    assert {p: p.read_bytes() for p in long_term(ws)} == snapshot
    assert ws.smart_library_path.read_bytes() == library
    assert git.Repo(ws.root).head.commit.hexsha == head
    assert git.Repo(ws.root).head.commit.message.startswith("memory consolidate: 1 new, 0 up")


def settled(path: Path) -> Path:
    """A trace last written an hour ago (one changed within seconds is always read again)."""
    when = time.time() - 3600
    os.utime(path, (when, when))
    return path


def test_consolidation_reads_only_new_or_changed_traces_and_loses_nothing(ws):
    failed = make_trace(ws, "broken goal", status="error")
    make_trace(ws, "replayed goal", mode="follower")
    make_trace(ws, "only talk", [AssistantText("system-agent", "nothing to do")])
    make_trace(ws, "write notes")
    age_memory(ws)
    first = memory.consolidate(ws)
    assert (first.considered, first.read, first.distilled, len(first.new)) == (4, 4, 1, 1)
    settled(make_trace(ws, "count the words of notes.txt"))
    second = memory.consolidate(ws)  # one new run: that trace alone is read, and taken
    assert (second.considered, second.read, second.distilled, len(second.new)) == (5, 1, 1, 1)
    assert memory.consolidate(ws).read == 0
    # a turned-down trace edited into a success by an editor that saves by renaming (a new
    # inode, as llmunix's own rewrites) is read again and distilled
    edited = failed.with_name(".edit.tmp")
    edited.write_text(failed.read_text().replace("status: error", "status: success"))
    os.replace(edited, failed)
    settled(failed)
    third = memory.consolidate(ws)
    assert (third.read, third.distilled, len(third.new)) == (1, 1, 1)
    # a deleted trace is forgotten; nothing else is read
    (ws.project("default").short_term_dir / next(
        p for p in os.listdir(ws.project("default").short_term_dir)
        if "replayed-goal" in p)).unlink()
    fourth = memory.consolidate(ws)
    assert (fourth.considered, fourth.read) == (4, 0)
    _version, seen = marshal.loads((ws.root / ".llmunix" / "consolidation-seen.marshal")
                                   .read_bytes())
    assert sorted(n.split("_", 1)[1] for n in seen["default"]) == ["only-talk.md"]
    # deleting what was learned is no reason to lose it: its runs are distilled again, once
    learned = {p.name: p.read_text() for p in long_term(ws)}
    for p in long_term(ws):
        p.unlink()
    again = memory.consolidate(ws)
    assert (again.read, again.distilled) == (3, 3)
    assert {p.name: frontmatter(p)["source_traces"] for p in long_term(ws)} == {
        name: yaml.safe_load(text[4:text.index("\n---\n", 4)])["source_traces"]
        for name, text in learned.items()}
    full = run_cli("memory", "consolidate", "--full", cwd=ws.root)
    assert full.returncode == 0, full.stderr
    # every trace not yet learned is read again (here the one turned down)
    assert "0 new, 0 updated (0 successful run(s) distilled from 4 short-term trace(s), 1 " \
        "read)" in full.stdout


def test_a_trace_edited_in_place_is_read_again_by_full(ws):
    failed = make_trace(ws, "broken goal", status="error")
    age_memory(ws)
    assert memory.consolidate(ws).read == 1
    failed.write_text(failed.read_text().replace("status: error", "status: success"))  # same inode
    settled(failed)
    assert memory.consolidate(ws).read == 0  # name and inode unchanged: not read (see --full)
    full = memory.consolidate(ws, full=True)
    assert (full.read, full.distilled, len(full.new)) == (1, 1, 1)


@pytest.mark.parametrize("damage", [b"", b"\x00\x01 not marshal", marshal.dumps((1, {}))])
def test_a_damaged_or_older_seen_record_means_reading_every_trace_again(ws, damage):
    make_trace(ws, "broken goal", status="error")
    make_trace(ws, "write notes")
    age_memory(ws)
    assert memory.consolidate(ws).read == 2
    assert memory.consolidate(ws).read == 0
    (ws.root / ".llmunix" / "consolidation-seen.marshal").write_bytes(damage)
    again = memory.consolidate(ws)
    assert (again.read, again.distilled, again.new) == (1, 0, [])  # the turned-down one
    assert len(long_term(ws)) == 1


def test_a_seen_record_of_the_previous_format_is_kept(ws):
    make_trace(ws, "broken goal", status="error")
    age_memory(ws)
    assert memory.consolidate(ws).read == 1
    record = ws.root / ".llmunix" / "consolidation-seen.marshal"
    _version, seen = marshal.loads(record.read_bytes())
    record.write_bytes(marshal.dumps((2, {p: {n: [1, 2, ino] for n, ino in names.items()}
                                         for p, names in seen.items()})))
    assert memory.consolidate(ws).read == 0  # (name -> [size, mtime, inode]): the same inodes


def _age_everything(root: Path) -> None:
    when = time.time() - 3600
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in files + dirs:
            os.utime(os.path.join(folder, name), (when, when))
    os.utime(root, (when, when))


def test_consolidation_boots_the_specs_only_when_one_changed(ws, monkeypatch):
    from llmunix.memory import library as smart_library
    from llmunix.specs import registry

    _age_everything(ws.root)
    memory.consolidate(ws)  # booted: the agents and tools tables are remembered
    boots = []
    real_boot = registry.boot
    monkeypatch.setattr(registry, "boot", lambda w: boots.append(1) or real_boot(w))
    settled(make_trace(ws, "write notes"))
    assert memory.consolidate(ws).library_updated
    library = ws.smart_library_path.read_text()
    assert "| write notes | default |" in library and boots == []  # no spec changed
    assert library == smart_library.render_smart_library(real_boot(ws))  # as a boot renders it
    # a new agent, then its description edited in place: each shows at the next consolidation
    agent = write_spec(ws.user_agents_dir, "scribe.md", agent_text("scribe"))
    assert memory.consolidate(ws).library_updated and len(boots) == 1
    assert "| scribe | user |" in ws.smart_library_path.read_text()
    agent.write_text(agent.read_text().replace("description: ", "description: Careful "))
    assert memory.consolidate(ws).library_updated
    assert "Careful" in ws.smart_library_path.read_text()
    agent.unlink()
    memory.consolidate(ws)
    assert "| scribe |" not in ws.smart_library_path.read_text()


@pytest.mark.parametrize("record", [
    b"garbage", marshal.dumps(("0.0", "/elsewhere", [], "| stale |")),
    None,  # this version and root, but stamps of another shape
])
def test_a_damaged_spec_record_means_a_boot_and_a_true_library(ws, record):
    from llmunix import __version__
    from llmunix.memory import library as smart_library
    from llmunix.specs import registry

    _age_everything(ws.root)
    memory.consolidate(ws)
    path = ws.root / smart_library.SPEC_MEMO
    path.write_bytes(record if record is not None else marshal.dumps(
        (__version__, str(ws.root), [("a", "b", "c"), 5], "| stale |")))
    settled(make_trace(ws, "write notes"))
    assert memory.consolidate(ws).library_updated
    text = ws.smart_library_path.read_text()
    assert "| stale |" not in text
    assert text == smart_library.render_smart_library(registry.boot(ws))


def test_same_goal_bumps_the_record_and_new_steps_make_a_new_version(ws):
    steps = [call("Write", {"file_path": "a.txt", "content": "A"})]
    first = make_trace(ws, "Create a.txt holding A", steps)
    memory.consolidate(ws)
    second = make_trace(ws, "create a.txt, holding A", [call("Write", {"file_path": "a.txt",
                                                                        "content": "A"})])
    report = memory.consolidate(ws)
    assert report.new == [] and len(report.updated) == 1
    [v1] = long_term(ws)
    meta = frontmatter(v1)
    assert meta["usage_count"] == 2 and meta["success_count"] == 2
    assert meta["confidence"] == 0.75 and meta["source_traces"] == [first.stem, second.stem]

    make_trace(ws, "create a.txt holding A", [call("Bash", {"command": "echo A > a.txt"})])
    report = memory.consolidate(ws)
    assert len(report.new) == 1 and report.updated == []
    v1_again, v2 = long_term(ws)
    assert v1_again == v1 and frontmatter(v1)["usage_count"] == 2
    assert v2.name.endswith("_v2.md") and frontmatter(v2)["version"] == 2
    assert [s.tool for s in memory.load_long_term(v2).steps] == ["Bash"]
    [best] = memory.match_goal(ws, "default", "Create a.txt holding A")
    assert best.path == v2 and best.exact and best.score == 1.0


def test_two_goals_with_the_same_slug_get_distinct_files(ws):
    make_trace(ws, "write a.txt")  # signature "a.txt write"
    make_trace(ws, "write a txt")  # signature "txt write", same slug "write-a-txt"
    memory.consolidate(ws)
    names = [p.name for p in long_term(ws)]
    assert len(names) == 2 and len(set(names)) == 2


def test_a_damaged_learned_trace_is_never_overwritten(ws):
    make_trace(ws, "export the calendar")
    memory.consolidate(ws)
    [v1] = long_term(ws)
    damaged = v1.read_text().replace("```json call", "```json call\n{not json", 1)
    v1.write_text(damaged)
    make_trace(ws, "export the calendar")
    report = memory.consolidate(ws)
    assert [Path(p).name for p in report.new] == [v1.name.replace("_v1", "_v2")]
    assert v1.read_text() == damaged


# ---------------------------------------------------------------- record and demotion


def test_record_use_updates_the_record_and_demotes_after_repeated_failures(ws):
    make_trace(ws, "tidy the inbox folder")
    memory.consolidate(ws)
    [path] = long_term(ws)
    meta = memory.record_use(path, True)
    assert (meta["usage_count"], meta["success_count"], meta["success_rate"]) == (2, 2, 1.0)
    assert meta["confidence"] == 0.75 and meta["last_used"] != frontmatter(path)["created_at"]
    seen = [meta["confidence"]]
    for n in range(DEMOTE_AFTER):
        assert memory.match_goal(ws, "default", "tidy the inbox folder")  # still matched
        meta = memory.record_use(path, False)
        seen.append(meta["confidence"])
        assert meta["consecutive_failures"] == n + 1
    assert seen == sorted(seen, reverse=True) and seen[-1] < 0.1
    assert meta["status"] == "demoted" and frontmatter(path)["status"] == "demoted"
    assert meta["usage_count"] == 2 + DEMOTE_AFTER and meta["failure_count"] == DEMOTE_AFTER
    assert memory.match_goal(ws, "default", "tidy the inbox folder") == []
    hits = memory.search(ws, "tidy inbox")
    assert any(h.tier == "beta" and "demoted" in h.context for h in hits)


def test_a_success_resets_the_failure_streak():
    assert confidence(1, 1) == 0.5
    assert confidence(3, 3) == 0.75
    assert confidence(10, 10) == 0.85
    assert confidence(20, 20) == 0.99 and confidence(20, 22) < 0.85
    assert confidence(3, 4, 1) < confidence(3, 4, 0)
    assert confidence(0, 3) == 0.0


def test_a_demoted_version_falls_back_to_the_previous_one(ws):
    make_trace(ws, "build the site", [call("Bash", {"command": "make site"})])
    memory.consolidate(ws)
    make_trace(ws, "build the site", [call("Bash", {"command": "make all"})])
    memory.consolidate(ws)
    v1, v2 = long_term(ws)
    for _ in range(DEMOTE_AFTER):
        memory.record_use(v2, False)
    [best] = memory.match_goal(ws, "default", "build the site")
    assert best.path == v1


# ---------------------------------------------------------------- retention


def test_retention_prunes_the_oldest_committed_traces_and_their_sidecars(ws):
    ws = set_memory_config(ws, keep_short_term=2)
    big = "x" * (MAX_INLINE_RESULT + 10)
    paths = [make_trace(ws, f"goal number {i}", [call("Read", {"file_path": "f"}, big)])
             for i in range(5)]
    assert all(p.with_suffix("").is_dir() for p in paths)  # whole results in sidecars
    rel = [p.relative_to(ws.root).as_posix() for p in paths]
    sidecars = [p.with_suffix("").relative_to(ws.root).as_posix() for p in paths]
    gitmem.commit_paths(ws.root, "runs", rel[1:] + sidecars[1:], create=True)  # not the oldest
    report = memory.consolidate(ws)
    assert report.pruned == rel[1:3]  # the oldest is not in git yet: kept
    assert [p.exists() for p in paths] == [True, False, False, True, True]
    assert not paths[1].with_suffix("").exists() and paths[0].with_suffix("").exists()
    repo = git.Repo(ws.root)
    assert "Pruned: 2 short-term trace(s)" in repo.head.commit.message
    assert repo.git.show(f"HEAD~1:{rel[1]}").startswith("---")  # still in the history
    assert len(long_term(ws)) == 5  # all were distilled before pruning


# ---------------------------------------------------------------- alpha and delta


def test_a_goal_learned_in_two_projects_is_promoted_once_to_the_memory_log(ws):
    make_trace(ws, "Convert the CSV report to JSON", project="alpha")
    memory.consolidate(ws)
    assert "Convert the CSV" not in ws.memory_log_path.read_text()
    make_trace(ws, "convert the csv report to json", project="beta")
    report = memory.consolidate(ws, "beta")
    assert report.promoted == ["Convert the CSV report to JSON"]
    log = ws.memory_log_path.read_text()
    assert "_None yet._" not in log
    entry = log[log.index("## Convert the CSV report to JSON"):]
    lines = entry.strip().splitlines()
    assert [ln.split(":")[0] for ln in lines[1:]] == [
        "- pattern", "- evidence", "- confidence", "- added", "- supersedes"]
    assert "(signature: convert csv json report)" in lines[1] and "Write" in lines[1]
    assert "projects alpha, beta" in lines[2] and lines[3] == "- confidence: 0.9"
    assert lines[4] == f"- added: {datetime.now(timezone.utc):%Y-%m-%d}"
    make_trace(ws, "Convert the CSV report to JSON", project="gamma")
    again = memory.consolidate(ws)
    assert again.promoted == []
    assert ws.memory_log_path.read_text().count("## Convert the CSV report to JSON") == 1
    assert any(h.tier == "alpha" for h in memory.search(ws, "csv json report"))


def test_smart_library_lists_learned_traces(ws):
    from llmunix.memory import library
    from llmunix.specs import registry

    make_trace(ws, "Summarize the meeting notes")
    report = memory.consolidate(ws)
    assert report.library_updated
    text = ws.smart_library_path.read_text()
    section = text[text.index("## Learned traces"):]
    assert "| Summarize the meeting notes | default | 1 | active | 0.50 | 1.00 | 1 |" in section
    assert library.render_smart_library(registry.boot(ws)) == text  # stable
    hits = memory.search(ws, "meeting notes summarize", limit=20)
    assert {"gamma", "beta", "delta"} <= {h.tier for h in hits}


# ---------------------------------------------------------------- matching


def test_match_goal_scores_exact_near_and_unrelated_goals(ws):
    goals = ["Write a haiku about the sea to haiku.md", "List the python files by size",
             "Convert notes.md to HTML", "Count the words in report.txt",
             "Download the weather forecast", "Rename every jpg photo by date"]
    for goal in goals:
        make_trace(ws, goal)
    make_trace(ws, "Write a haiku about the sea to haiku.md", project="other")
    memory.consolidate(ws)

    [exact, *_] = memory.match_goal(ws, "default", "write haiku.md: a haiku about the sea!")
    assert exact.exact and exact.score == 1.0 and exact.trace.goal == goals[0]
    near = memory.match_goal(ws, "default",
                             "write a haiku about the sea to haiku.md, in French")
    assert not near[0].exact and near[0].trace.goal == goals[0]
    assert 0.75 <= near[0].score < 0.92  # mixed, not follower
    loose = memory.match_goal(ws, "default", "write a poem about mountains")
    assert all(m.score < 0.75 for m in loose)
    assert memory.match_goal(ws, "default", "compile the kernel") == []
    scores = [m.score for m in memory.match_goal(ws, "default", "count the words in notes.md")]
    assert scores == sorted(scores, reverse=True)
    assert all(m.trace.project == "default" for m in near)
    assert memory.match_goal(ws, "empty-project", goals[0]) == []


# ---------------------------------------------------------------- search


def test_search_ranks_the_right_trace_first_across_tiers(ws):
    topics = ["resize the png images", "compress the log archive", "translate the readme",
              "fibonacci script in python", "plot the sales chart", "backup the database"]
    for i in range(30):
        make_trace(ws, f"{topics[i % len(topics)]} for client {i}")
    target = make_trace(ws, "write a python script printing fibonacci numbers to fib.py")
    memory.consolidate(ws)
    hits = memory.search(ws, "fibonacci numbers fib.py")
    # the learned trace first (same words: beta before gamma), then the run it came from
    assert hits[0].tier == "beta" and hits[0].path.endswith("_v1.md")
    assert hits[0].title == "write a python script printing fibonacci numbers to fib.py"
    assert hits[1].tier == "gamma" and hits[1].path == target.relative_to(ws.root).as_posix()
    assert hits[1].score == hits[0].score and hits[2].score < hits[1].score
    assert hits == sorted(hits, key=lambda h: -h.score)
    assert all(0 < h.score <= 1 for h in hits)
    agents = memory.search(ws, "consolidation traces learnings")
    assert agents and agents[0].tier == "delta" and "memory-consolidation" in agents[0].title
    assert memory.search(ws, "the of and") == []


def test_search_index_is_cached_and_follows_changes(ws):
    make_trace(ws, "sort the bookmarks")
    assert memory.search(ws, "bookmarks")
    index_file = ws.root / ".llmunix" / "memory-index.sqlite"
    assert index_file.is_file()
    age_memory(ws)  # as if written an hour ago: past the window where mtimes are not trusted
    with memory.MemoryIndex(ws) as index:
        assert index.refresh() > 0
        assert index.refresh() == 0  # nothing re-read when nothing changed
    with memory.MemoryIndex(ws) as index:
        assert index.refresh() == 0  # the cache is on disk
    added = make_trace(ws, "water the bonsai trees")
    assert memory.search(ws, "bonsai")[0].path.endswith(added.name)
    added.unlink()
    assert memory.search(ws, "bonsai") == []
    memory.consolidate(ws)
    log = ws.memory_log_path
    log.write_text(log.read_text() + "\n## Prefer rsync for bonsai photos\n- pattern: x\n")
    assert memory.search(ws, "rsync bonsai")[0].tier == "alpha"


def test_search_filters_by_project_and_keeps_system_tiers(ws):
    make_trace(ws, "index the recipes", project="kitchen")
    make_trace(ws, "index the invoices", project="office")
    memory.consolidate(ws)
    hits = memory.search(ws, "index", project="kitchen", limit=50)
    assert {h.project for h in hits} <= {"kitchen", ""}
    assert any("recipes" in h.title for h in hits)
    assert not any("invoices" in h.title and h.tier != "delta" for h in hits)


def test_memory_search_command_prints_tier_score_path_and_context(ws):
    make_trace(ws, "archive the old tickets")
    result = run_cli("memory", "search", "old tickets", cwd=ws.root)
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0].split()
    assert first[0] == "gamma" and float(first[1]) > 0.5 and first[2].endswith(".md")
    assert "archive the old tickets" in result.stdout
    result = run_cli("memory", "search", "old tickets", "--json", "--limit", "1", cwd=ws.root)
    [hit] = json.loads(result.stdout)
    assert {"tier", "score", "path", "context", "line", "project"} <= set(hit)
    # an in-place edit keeps the folder's mtime: --reindex sees it anyway
    age_memory(ws)
    assert memory.search(ws, "tickets")
    trace = ws.root / hit["path"]
    text = trace.read_text().replace("archive the old tickets", "archive the old invoices")
    with open(trace, "r+", encoding="utf-8") as fh:
        fh.write(text)
    result = run_cli("memory", "search", "invoices", "--reindex", "--json", cwd=ws.root)
    assert json.loads(result.stdout)[0]["path"] == hit["path"]


# ---------------------------------------------------------------- automatic and --summarize


def test_auto_consolidation_runs_every_n_runs(ws):
    assert memory.maybe_auto_consolidate(ws, "default") is None  # 0 = off
    ws = set_memory_config(ws, auto_consolidate_every=2)
    make_trace(ws, "feed the cat")
    assert memory.maybe_auto_consolidate(ws, "default") is None
    assert long_term(ws) == []
    report = memory.maybe_auto_consolidate(ws, "default")
    assert report is not None and len(report.new) == 1
    make_trace(ws, "feed the dog")
    assert memory.maybe_auto_consolidate(ws, "default") is None  # counting again from 0
    memory.consolidate(ws)  # a manual one resets the count too
    state = json.loads((ws.root / ".llmunix" / "memory-state.json").read_text())
    assert state["runs_since_consolidation"] == {}


def test_summarize_runs_the_consolidation_agent_and_keeps_its_learnings(ws, monkeypatch):
    from llmunix.run import runner

    calls = []

    def fake_prepare(ws_, request):
        calls.append(("prepare", request.agent, request.runtime))

    def fake_run_goal(ws_, request, emit):
        calls.append(("run", request.agent, request.project))
        staging = ws_.project(request.project).workspace_dir / ".memory-consolidation"
        assert sorted(p.name for p in (staging / "traces").iterdir()) == [source.name]
        assert ".memory-consolidation/learnings.md" in request.goal
        (staging / "learnings.md").write_text("# Learnings\n\n## 2026-01-01 - feed the fish\n")
        return runner.RunOutcome("sum-1", "", "success", "ok", "", 1, 10, 5, 0.0, 0.1)

    monkeypatch.setattr(runner, "prepare", fake_prepare)
    monkeypatch.setattr(runner, "run_goal", fake_run_goal)
    source = make_trace(ws, "feed the fish")
    from llmunix.run.summarize import Summarizer

    report = memory.consolidate(ws, summarizer=Summarizer(runtime="claude"))
    assert calls == [("prepare", "memory-consolidation-agent", "claude"),
                     ("run", "memory-consolidation-agent", "default")]
    learnings = ws.project("default").long_term_dir / "learnings.md"
    assert learnings.read_text().startswith("# Learnings")
    assert not (ws.project("default").workspace_dir / ".memory-consolidation").exists()
    assert report.summaries == [{"project": "default", "trace_id": "sum-1", "status": "success",
                                 "learnings": "projects/default/memory/long_term/learnings.md"}]
    assert any(h.kind == "note" for h in memory.search(ws, "feed fish"))


def test_summarize_without_a_runtime_fails_before_doing_anything(ws, tmp_path):
    make_trace(ws, "feed the bird")
    gitmem.commit_paths(ws.root, "seed", create=True)
    with pytest.raises(RuntimeUnavailable):
        summarize.check_runtime(ws, "default", "replay", None, {})
    from llmunix.runtimes.claude import CREDENTIAL_ENV

    env = {"HOME": str(tmp_path), "CLAUDE_CONFIG_DIR": str(tmp_path / "none"),
           **{name: "" for name in CREDENTIAL_ENV}}
    result = run_cli("memory", "consolidate", "--summarize", cwd=ws.root, env=env)
    assert result.returncode == EXIT_NO_RUNTIME, result.stdout + result.stderr
    assert "--summarize needs a model runtime" in result.stderr
    assert "without --summarize" in result.stderr
    assert long_term(ws) == [] and not git.Repo(ws.root).is_dirty(untracked_files=True)


def test_consolidate_command_reports_and_commits(ws):
    make_trace(ws, "water the plants")
    result = run_cli("memory", "consolidate", "--json", cwd=ws.root)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["message"] == "memory consolidate: 1 new, 0 updated" and data["commit"]
    assert git.Repo(ws.root).head.commit.summary == "memory consolidate: 1 new, 0 updated"
    result = run_cli("memory", "consolidate", "--project", "nope", cwd=ws.root)
    assert result.returncode == 1 and "no project named 'nope'" in result.stderr


def test_a_steps_bullets_read_back_as_they_were_written(ws):
    from llmunix.trace.markdown import read_trace

    odd = 'quote " backslash \\ tab \t newline \n nul \x00 é 中 \u2028 end'
    event = ToolCalled(odd, "system-agent", "Write", {"file_path": "x.txt", "content": odd},
                       odd, True, 1.23456789, "denied", odd, "hash-" + odd, True)
    path = make_trace(ws, "odd bullets", [event])
    (step,) = read_trace(path).tool_steps()
    assert step.fields["call_id"] == odd and step.fields["reason"] == odd
    assert step.fields["spec_hash"] == "hash-" + odd
    assert step.fields["is_error"] is True and step.fields["interrupted"] is True
    assert step.fields["duration_s"] == 1.2346 and step.fields["decision"] == "denied"
    assert step.input == {"file_path": "x.txt", "content": odd}
