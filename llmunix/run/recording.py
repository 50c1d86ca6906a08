"""Recording a run in git, exactly and whatever happens to it.

A run opens its journal (run/journal.py) as soon as its trace exists, and counts as its own
every file its tools changed (kernel/changes.py). Its commit holds exactly those files, its
trace and the trace's sidecar folder, its memory updates - nothing another run wrote meanwhile.
A commit that fails is reported (stderr, the trace's `commit:` field, exit code 5) and kept in
the journal; a run that never got to commit (SIGKILL, a crash) leaves its journal too. The next
llmunix command finds either, marks a trace still `running` as `interrupted`, and commits it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from llmunix.errors import LlmunixError
from llmunix.kernel.changes import RunChanges
from llmunix.run.journal import (
    Journal,
    WindowSettler,
    open_journal,
    orphans,
    settle_window,
)
from llmunix.workspace.layout import Workspace

LOCKS_DIR = ".llmunix/locks"


def run_message(trace_id: str, goal: str, *, runtime: str, mode: str, status: str,
                cost_usd: float, model: str = "", input_tokens: int = 0,
                output_tokens: int = 0, duration_s: float = 0.0) -> str:
    """The run commit's message: `run <trace_id>: <goal>` and trailers `llmunix log` reads."""
    goal = " ".join(goal.split())
    return (
        f"run {trace_id}: {goal[:72]}\n\nRuntime: {runtime}\nMode: {mode}\nStatus: {status}\n"
        f"Cost-USD: {cost_usd:.6f}\nModel: {model or '-'}\n"
        f"Tokens: {input_tokens} in, {output_tokens} out\nDuration-S: {duration_s:.3f}\n"
    )


def _rel(ws: Workspace, path: Path) -> str:
    return Path(os.path.relpath(path, ws.root)).as_posix()


def trace_files(ws: Workspace, trace: Path) -> list[str]:
    """A trace and every file of its sidecar folder (whole tool results)."""
    out = [_rel(ws, trace)]
    sidecar = trace.with_suffix("")
    if sidecar.is_dir():
        out += [_rel(ws, Path(d) / f) for d, _dirs, files in os.walk(sidecar) for f in files]
    return out


@dataclass
class RunRecord:
    ws: Workspace
    trace_path: Path
    journal: Journal
    changes: RunChanges

    @classmethod
    def open(cls, ws: Workspace, project, trace_id: str, trace_path: Path) -> RunRecord:
        journal = open_journal(ws.root, trace_id, {
            "trace": _rel(ws, trace_path), "project": project.name})
        lock = ws.root / LOCKS_DIR / f"effects-{project.name}.lock"
        changes = RunChanges(ws.root, project.workspace_dir, lock, journal.paths_path,
                             on_lock=WindowSettler(ws.root, project.workspace_dir))
        return cls(ws, trace_path, journal, changes)

    def commit(self, message: str, *, redact=None, left_out: list[str] | None = None
               ) -> str | None:
        """Commit the run's files; GitError when git refuses. With `redact`, files whose
        content holds a secret stay out of git (their names are added to `left_out`)."""
        from llmunix.memory import git as gitmem

        files = trace_files(self.ws, self.trace_path) + sorted(self.changes.paths)
        if redact is not None:
            secret = set(redact.files_holding_secrets(self.ws.root, files))
            if secret:
                files = [f for f in files if f not in secret]
                if left_out is not None:
                    left_out.extend(sorted(secret))
        return gitmem.commit_files(self.ws.root, message, files,
                                   outputs=sorted(self.changes.outputs),
                                   lock_wait_s=self.ws.config.memory.git_lock_wait_s)

    def close(self, *, done: bool) -> None:
        """`done`: recorded (or nothing to record); else the journal stays for the next
        command."""
        self.changes.close()
        self.journal.close(remove=done)


def note_commit_failure(trace: Path, cause: str) -> None:
    """`commit: failed — <cause>` in the trace's frontmatter (the trace is on disk)."""
    from llmunix.trace.markdown import read_meta, rewrite_meta

    try:
        meta = read_meta(trace)
        meta["commit"] = f"failed — {cause}"
        rewrite_meta(trace, meta)
    except LlmunixError:
        pass  # the message on stderr and the journal remain


def recover(ws: Workspace) -> list[str]:
    """Commit the runs whose process ended without committing (killed, or its commit failed):
    one line for each, to show the user. Does nothing (one folder listing) when there are
    none."""
    found = orphans(ws.root)
    notes = []
    for orphan in found:
        try:
            notes.append(_recover_one(ws, orphan))
            orphan.done()
        except LlmunixError as exc:
            notes.append(f"run {orphan.json_path.stem} is still not committed: {exc.message}")
            orphan.release()
        except Exception as exc:  # noqa: BLE001 - recovery must not stop the command the user ran
            notes.append(f"run {orphan.json_path.stem} is still not committed: "
                         f"{type(exc).__name__}: {exc}")
            orphan.release()
    return [n for n in notes if n]


def _recover_one(ws: Workspace, orphan) -> str:
    from llmunix.memory import git as gitmem
    from llmunix.trace.markdown import read_trace, rewrite_meta

    trace_id = orphan.json_path.stem
    rel = orphan.record.get("trace")
    trace = ws.root / rel if isinstance(rel, str) else None
    if trace is None or not trace.is_file():
        return ""  # nothing was written that could be committed
    parsed = read_trace(trace, repair=True)  # a `running` trace of a dead process: interrupted
    meta = dict(parsed.meta)
    first_failure = str(meta.get("commit", ""))
    if first_failure.startswith("failed"):
        meta["commit"] = f"made by a later command ({first_failure})"
        rewrite_meta(trace, meta)
    if not ws.config.memory.commit:
        return ""
    message = run_message(
        trace_id, str(meta.get("goal", "")), runtime=str(meta.get("runtime", "")),
        mode=str(meta.get("mode", "")), status=str(meta.get("status", "interrupted")),
        cost_usd=float(meta.get("cost_usd", 0) or 0), model=str(meta.get("model", "")),
        input_tokens=int(meta.get("input_tokens", 0) or 0),
        output_tokens=int(meta.get("output_tokens", 0) or 0),
        duration_s=float(meta.get("duration_s", 0) or 0))
    paths = list(dict.fromkeys(orphan.paths + _settle_own_window(ws, orphan)))
    files = trace_files(ws, trace) + paths
    outputs = [p for p in paths if p not in files[:1]]
    sha = gitmem.commit_files(ws.root, message, files, outputs=outputs, allow_empty=False,
                              lock_wait_s=ws.config.memory.git_lock_wait_s)
    return f"run {trace_id} ({meta.get('status')}) committed by this command: {sha[:10]}" \
        if sha else ""


def _settle_own_window(ws: Workspace, orphan) -> list[str]:
    """What the opaque tool the run was killed in had changed (under its project's effects
    lock, so no other run's tool is writing there)."""
    window = orphan.json_path.with_suffix(".window")
    if not window.exists():
        return []
    from llmunix.workspace.flock import FileLock

    project = str(orphan.record.get("project", ""))
    lock = ws.root / LOCKS_DIR / f"effects-{project}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock), timeout=ws.config.memory.git_lock_wait_s):
        return settle_window(ws.root, window, orphan.json_path.with_suffix(".paths"))
