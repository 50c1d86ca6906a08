"""`llmunix memory consolidate`: move what proved itself down the memory tiers, with no model.

- gamma -> beta: each successful short-term trace (status success, at least one allowed tool
  call, not itself a follower replay - replays are counted by `record_use`) is distilled into a
  long-term trace. A goal whose signature is already learned with the same steps bumps that
  trace's record; different steps make a new version (`_v<N+1>`). Trace ids already listed in
  some version's `source_traces` are skipped, so running it twice changes nothing.
  Incremental: the short-term traces turned down for what they hold (failed, a replay, no tool
  call, unreadable) are remembered by name and inode in .llmunix/consolidation-seen.marshal
  and not read again while both stay the same - one new run costs one trace read and no stat
  per trace, however many there are. llmunix writes every trace whole and renames it into place,
  so a trace it changes, or one replaced by an editor that saves by renaming, has a new inode
  and is read again; a deleted one is forgotten. A trace edited in place (same inode) is read
  again by `full=True` (`--full`), which reads every trace, as the memory index's `--reindex`
  does. Distilled traces are known by `source_traces`, so deleting a long-term trace distils
  its runs again.
- beta -> alpha: a goal signature learned (not demoted) in at least ALPHA_PROJECTS projects is
  appended once to system/memory_log.md, in the entry format that file describes.
- delta: system/SmartLibrary.md is regenerated (agents, tools and learned traces; the specs are
  booted only when a spec file or folder changed: memory/library.py).
- retention: short-term traces beyond [memory].keep_short_term per project are deleted, oldest
  first, with their sidecar folders - only ones git already holds (when commits are on), so
  they stay in the history.
All of it happens under the workspace's git lock and ends in one commit
`memory consolidate: N new, M updated`. `--summarize` then lets the memory consolidation agent
(a model run) write human-readable learnings into memory/long_term/learnings.md.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from llmunix import __version__
from llmunix.errors import TraceError, WorkspaceError
from llmunix.memory import learned_file as lf
from llmunix.memory import longterm as lt
from llmunix.memory.promotion import promote
from llmunix.memory.store import memory_lock
from llmunix.memory.text import goal_signature
from llmunix.specs.frontmatter import (
    STATE_DIR,
    atomic_write,
    dump_frontmatter,
    read_frontmatter,
    split_frontmatter,
)
from llmunix.trace.markdown import Trace, trace_listing
from llmunix.workspace.layout import Project, Workspace

STATE_FILE = "memory-state.json"
SEEN_FILE = "consolidation-seen.marshal"
RACY_NS = 2_000_000_000  # a trace changed this recently may change again within the same mtime
NETWORK_TOOLS = {"WebFetch", "WebSearch"}


@dataclass
class ConsolidationReport:
    projects: list[str]
    considered: int = 0  # short-term traces looked at
    read: int = 0  # of them, read: not learned, new or changed since last time (--full: all)
    distilled: int = 0  # successful runs taken into long-term memory
    new: list[str] = field(default_factory=list)  # long-term traces (and versions) written
    updated: list[str] = field(default_factory=list)  # long-term traces whose record grew
    promoted: list[str] = field(default_factory=list)  # memory_log.md entries appended
    pruned: list[str] = field(default_factory=list)  # short-term traces deleted
    library_updated: bool = False
    commit: str | None = None
    summaries: list[dict[str, Any]] = field(default_factory=list)
    sources: dict[str, list[tuple[str, str]]] = field(default_factory=dict, repr=False)
    staged: list[str] = field(default_factory=list, repr=False)  # pruned paths git must drop

    @property
    def message(self) -> str:
        return f"memory consolidate: {len(self.new)} new, {len(self.updated)} updated"

    @property
    def changed(self) -> bool:
        return bool(self.new or self.updated or self.promoted or self.pruned
                    or self.library_updated)

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k not in ("sources", "staged")}
        data["message"] = self.message
        return data


def _rel(ws: Workspace, path: Path) -> str:
    return path.relative_to(ws.root).as_posix()


def _projects(ws: Workspace, project: Project | str | None) -> list[Project]:
    if project is None:
        return ws.projects()
    proj = project if isinstance(project, Project) else ws.project(project)
    if not proj.exists():
        raise WorkspaceError(f"no project named {proj.name!r}",
                             hint="see the projects/ folder of the workspace")
    return [proj]


class Summarizer(Protocol):
    """Writes readable learnings with a model (run/summarize.py): memory cannot run goals itself,
    so the layer above hands one in."""

    def check(self, ws: Workspace, project: str | None) -> None:
        """Raise RuntimeUnavailable before anything is done when no model can run."""

    def summarize(self, ws: Workspace, project: Project,
                  sources: list[tuple[str, str]]) -> dict[str, Any]:
        """Let the consolidation agent read `sources` (name, text) and keep its learnings."""


def consolidate(ws: Workspace, project: Project | str | None = None, *,
                summarizer: Summarizer | None = None, full: bool = False
                ) -> ConsolidationReport:
    """Consolidate one project's memory (all projects when None). Deterministic; see the module
    docstring. With a `summarizer`, a model runtime must be available (checked first: nothing is
    done when it is not). `full`: read every short-term trace, not only new or changed ones."""
    projects = _projects(ws, project)
    if summarizer is not None:
        summarizer.check(ws, projects[0].name if projects else None)
    report = ConsolidationReport([p.name for p in projects])
    with memory_lock(ws.root):
        had = {} if full else _load_seen(ws)
        seen = dict(had)
        listings = {proj.name: trace_listing(proj.short_term_dir) for proj in projects}
        for proj in projects:
            seen[proj.name] = _distil(ws, proj, report, keep_texts=summarizer is not None,
                                      seen=had.get(proj.name) or {},
                                      listing=listings[proj.name])
        promote(ws, report.promoted)
        _refresh_library(ws, report)
        for proj in projects:  # distilling deletes no short-term trace: the listing holds
            _prune(ws, proj, report, listings[proj.name])
        _reset_counters(ws, [p.name for p in projects])
        if ws.config.memory.commit and report.changed:
            report.commit = _commit(ws, report, projects)
        _save_seen(ws, seen, had, [p.name for p in ws.projects()])
    if summarizer is not None:
        for proj in projects:
            if report.sources.get(proj.name):
                report.summaries.append(
                    summarizer.summarize(ws, proj, report.sources[proj.name]))
    return report


# ---------------------------------------------------------------- gamma -> beta


def _read_short_term(path: Path, meta: dict[str, Any]) -> tuple[Trace, str]:
    """A short-term trace whose frontmatter was already read, and its text. (read_trace would
    parse the frontmatter again, with the pure-Python YAML loader: ~8x slower, which shows
    once there are thousands of traces.)"""
    from llmunix.trace.markdown import parse_body

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceError(f"cannot read trace: {exc}", path=path) from exc
    end = text.find("\n---\n", 3) if text.startswith("---\n") else -1
    if end < 0:
        raise TraceError("not a trace: no frontmatter", path=path)
    steps, result = parse_body(text[end + 5:])
    return Trace(path, meta, steps, result), text


@dataclass
class _Learned:
    """One long-term trace being written or updated in this consolidation."""

    path: Path
    meta: dict[str, Any]
    body: str | None  # None: new file, rendered from `trace`
    trace: lt.LongTermTrace | None = None
    steps_key: tuple | None = None


def _distil(ws: Workspace, project: Project, report: ConsolidationReport,
            keep_texts: bool, seen: dict[str, int], listing: dict[str, int]
            ) -> dict[str, int]:
    """Distil the project's new successful runs; returns the traces turned down for what they
    hold (name -> inode), to be skipped next time while their inode holds."""
    files = lt.learned_files(project.long_term_dir)
    known: set[str] = set()
    latest: dict[str, lt.LearnedFile] = {}
    taken: dict[str, str] = {}
    for f in files:
        known.update(str(t) for t in f.meta.get("source_traces") or [])
        taken[lt.slug_of(f.path)] = f.signature
        if f.signature not in latest or f.version > latest[f.signature].version:
            latest[f.signature] = f
    touched: dict[str, _Learned] = {}  # signature -> its newest version, as edited now
    to_write: dict[Path, _Learned] = {}
    new_paths: list[Path] = []
    updated_paths: set[Path] = set()
    # llmunix writes a trace whole and renames it into place (a new inode): a turned-down trace
    # with the same name and inode is unchanged, with no stat to ask; only the others are looked
    # at, oldest first
    turned_down = {n: i for n, i in seen.items() if listing.get(n) == i}
    report.considered += len(listing)
    now = time.time_ns()
    for name in sorted(listing.keys() - turned_down.keys()):
        if name[:-3] in known:
            continue
        path = project.short_term_dir / name
        try:
            st = os.stat(path)
        except OSError:
            continue
        stamp = listing[name]  # the listing's inode, as compared next time (replaced since
        # it was listed: the new inode differs and that one is read next time)
        report.read += 1
        settled = now - st.st_mtime_ns > RACY_NS
        try:
            meta = read_frontmatter(path)
        except TraceError:
            if settled:
                turned_down[path.name] = stamp
            continue
        trace_id = str(meta.get("trace_id") or path.stem)
        if trace_id in known:
            continue
        if meta.get("status") != "success" or meta.get("mode") in ("follower", "crystallized"):
            if settled and meta.get("status") != "running":  # a running one changes anyway
                turned_down[path.name] = stamp
            continue
        try:
            trace, text = _read_short_term(path, meta)
            steps = lt.steps_from_trace(trace)
        except TraceError:
            if settled:
                turned_down[path.name] = stamp
            continue
        goal = str(meta.get("goal", ""))
        signature = goal_signature(goal)
        if not signature or not any(s.kind == "tool" for s in steps):
            if settled:
                turned_down[path.name] = stamp
            continue
        report.distilled += 1
        known.add(trace_id)
        if keep_texts:
            report.sources.setdefault(project.name, []).append((path.name, text))
        current = touched.get(signature) or _open_latest(latest.get(signature))
        key = lt.fingerprint(steps)
        when = str(meta.get("finished_at") or meta.get("started_at") or lt.now_iso())
        if current is not None and current.steps_key == key:
            lt.apply_uses(current.meta, 1, 0, when)
            current.meta["source_traces"] = [*current.meta.get("source_traces", []), trace_id]
            touched[signature] = to_write[current.path] = current
            if current.body is not None:
                updated_paths.add(current.path)
            continue
        previous = current.path if current else latest[signature].path \
            if signature in latest else None  # (the latest may be unreadable: never reuse it)
        slug = lt.slug_of(previous) if previous else lt.new_slug(goal, signature, taken)
        version = int(current.meta.get("version", 1)) + 1 if current else \
            latest[signature].version + 1 if signature in latest else 1
        taken[slug] = signature
        target = project.long_term_dir / lt.file_name(slug, version)
        while target.exists() or target in to_write:
            version += 1
            target = project.long_term_dir / lt.file_name(slug, version)
        learned = _new_learned(target, trace, steps, signature, version, project.name)
        learned.steps_key = key
        touched[signature] = to_write[target] = learned
        new_paths.append(target)
    for learned in to_write.values():
        _write(ws, learned)
    report.new += [_rel(ws, p) for p in new_paths]
    report.updated += sorted(_rel(ws, p) for p in updated_paths if p not in new_paths)
    return turned_down


def _open_latest(found: lt.LearnedFile | None) -> _Learned | None:
    if found is None:
        return None
    try:
        text = found.path.read_text(encoding="utf-8")
        trace = lf.parse(text, found.path)
    except (OSError, UnicodeDecodeError, TraceError):
        return None
    _meta, body = split_frontmatter(text, found.path)
    return _Learned(found.path, dict(trace.meta), body, trace, lt.fingerprint(trace.steps))


def _new_learned(target: Path, trace: Trace, steps: list[lt.LongTermStep], signature: str,
                 version: int, project: str) -> _Learned:
    m = trace.meta
    tools = sorted({s.tool for s in steps if s.kind == "tool"})
    agents = sorted({s.agent for s in steps} | {str(m.get("agent", ""))} - {""})
    used = {f"agent:{a}" for a in agents} | {f"tool:{t}" for t in tools}
    specs = {k: v for k, v in (m.get("specs") or {}).items() if k in used}
    risk = "high" if "Bash" in tools else "medium" if set(tools) - {"Read", "Glob", "Grep"} \
        else "low"
    started = str(m.get("started_at") or lt.now_iso())
    meta: dict[str, Any] = {
        "trace_id": target.stem,
        "goal": str(m.get("goal", "")),
        "goal_signature": signature,
        "status": "active",
        "confidence": 0.0,
        "success_rate": 0.0,
        "usage_count": 0,
        "success_count": 0,
        "failure_count": 0,
        "consecutive_failures": 0,
        "created_at": started,
        "last_used": started,
        "version": version,
        "source_traces": [trace.trace_id],
        "project": project,
        "agent": str(m.get("agent", "")),
        "runtime": str(m.get("runtime", "")),
        "model": str(m.get("model", "")),
        "estimated_cost": float(m.get("cost_usd", 0.0) or 0.0),
        "estimated_time_secs": float(m.get("duration_s", 0.0) or 0.0),
        "metadata": {
            "learned_by": str(m.get("runtime", "")),
            "learned_mode": str(m.get("mode", "")),
            "tools": tools,
            "agents": agents,
            "steps": len(steps),
            "tool_calls": sum(1 for s in steps if s.kind == "tool"),
            "delegations": sum(1 for s in steps if s.kind == "subagent start"),
            "requires_internet": bool(NETWORK_TOOLS & set(tools)),
            "risk_level": risk,
            "specs": specs,
            "consolidated_by": f"llmunix {__version__}",
        },
    }
    lt.apply_uses(meta, 1, 0, str(m.get("finished_at") or started))
    learned = lt.LongTermTrace(target, meta, meta["goal"], steps, trace.result)
    return _Learned(target, meta, None, learned)


def _write(ws: Workspace, learned: _Learned) -> None:
    if learned.body is None:
        assert learned.trace is not None
        text = lf.render(learned.meta, learned.trace.goal, learned.trace.steps,
                         learned.trace.result)
    else:
        text = dump_frontmatter(learned.meta) + learned.body
    learned.path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(learned.path, text, ws.root)


# ---------------------------------------------------------------- delta, retention, commit


def _refresh_library(ws: Workspace, report: ConsolidationReport) -> None:
    from llmunix.memory import library

    report.library_updated = library.refresh_smart_library(ws)


def _prune(ws: Workspace, project: Project, report: ConsolidationReport,
           listing: dict[str, int]) -> None:
    excess = len(listing) - ws.config.memory.keep_short_term
    if excess <= 0:
        return
    import shutil

    from llmunix.memory import git as gitmem
    from llmunix.trace.markdown import _pid_alive

    traces = [project.short_term_dir / n for n in sorted(listing)[:excess]]  # oldest first
    tracked = None
    if ws.config.memory.commit:  # keep what git does not hold yet: pruning must lose nothing
        tracked = gitmem.tracked_files(ws.root, _rel(ws, project.short_term_dir))
    tracked_dirs = {t.rsplit("/", 1)[0] for t in tracked or ()}
    for path in traces:
        rel = _rel(ws, path)
        if tracked is not None and rel not in tracked:
            continue
        try:
            meta = read_frontmatter(path)
        except TraceError:
            meta = {}
        if meta.get("status") == "running" and _pid_alive(meta.get("pid")):
            continue
        path.unlink(missing_ok=True)
        report.staged.append(rel)
        sidecar = path.with_suffix("")
        if sidecar.is_dir():
            shutil.rmtree(sidecar, ignore_errors=True)
            if _rel(ws, sidecar) in tracked_dirs:
                prefix = _rel(ws, sidecar) + "/"
                report.staged += sorted(t for t in tracked or () if t.startswith(prefix))
        report.pruned.append(rel)


def _commit(ws: Workspace, report: ConsolidationReport, projects: list[Project]) -> str | None:
    from llmunix.memory import git as gitmem

    # exactly what consolidation changed (a concurrent run's trace in short_term/ is its
    # own), committed without refreshing the whole index: see gitcommit
    paths = report.new + report.updated + report.staged
    if report.promoted:
        paths.append(_rel(ws, ws.memory_log_path))
    if report.library_updated:
        paths.append(_rel(ws, ws.smart_library_path))
    body = []
    if report.promoted:
        body.append(f"Promoted: {len(report.promoted)} pattern(s) to system/memory_log.md")
    if report.pruned:
        body.append(f"Pruned: {len(report.pruned)} short-term trace(s)")
    message = report.message + ("\n\n" + "\n".join(body) + "\n" if body else "")
    return gitmem.commit_files(ws.root, message, paths, allow_empty=False,
                               lock_wait_s=ws.config.memory.git_lock_wait_s)


# ---------------------------------------------------------------- every N runs


def _state_path(ws: Workspace) -> Path:
    return ws.root / STATE_DIR / STATE_FILE


def _load_state(ws: Workspace) -> dict[str, Any]:
    try:
        data = json.loads(_state_path(ws).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_state(ws: Workspace, state: dict[str, Any]) -> None:
    path = _state_path(ws)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(state, indent=2, sort_keys=True) + "\n", ws.root)


_SEEN_FORMAT = 3  # (3, {project: {trace file name: inode}})


def _load_seen(ws: Workspace) -> dict[str, dict[str, int]]:
    import marshal

    try:
        with open(ws.root / STATE_DIR / SEEN_FILE, "rb") as f:  # whole: marshal.load reads
            version, projects = marshal.loads(f.read())  # a file object piecemeal
    except (OSError, EOFError, ValueError, TypeError):
        return {}  # no record (or a damaged one): every trace is read, as the first time
    if version not in (2, _SEEN_FORMAT) or not isinstance(projects, dict):
        return {}
    found = {k: v for k, v in projects.items() if isinstance(v, dict)}
    if version == 2:  # name -> [size, mtime_ns, inode]: only the inode is compared now
        found = {k: {n: s[2] for n, s in v.items() if isinstance(s, list) and len(s) == 3}
                 for k, v in found.items()}
    return found


def _save_seen(ws: Workspace, seen: dict[str, dict[str, int]], had: dict[str, dict[str, int]],
               names: list[str]) -> None:
    import marshal

    keep = {name: seen[name] for name in sorted(seen) if name in names}
    if keep == had and had:
        return  # as it was read: nothing to write
    path = ws.root / STATE_DIR / SEEN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, marshal.dumps((_SEEN_FORMAT, keep)), ws.root)


def _reset_counters(ws: Workspace, projects: list[str]) -> None:
    state = _load_state(ws)
    runs = state.get("runs_since_consolidation") or {}
    if any(runs.get(p) for p in projects):
        for p in projects:
            runs.pop(p, None)
        state["runs_since_consolidation"] = runs
        _save_state(ws, state)


def maybe_auto_consolidate(ws: Workspace, project: Project | str) -> ConsolidationReport | None:
    """Count one finished run of `project`; every [memory].auto_consolidate_every runs (0 = off),
    consolidate that project and return the report (else None). The count lives in
    .llmunix/memory-state.json and is reset by any consolidation of the project."""
    every = ws.config.memory.auto_consolidate_every
    if every <= 0:
        return None
    name = project.name if isinstance(project, Project) else project
    with memory_lock(ws.root):
        state = _load_state(ws)
        runs = state.setdefault("runs_since_consolidation", {})
        runs[name] = int(runs.get(name, 0)) + 1
        if runs[name] < every:
            _save_state(ws, state)
            return None
        return consolidate(ws, name)
