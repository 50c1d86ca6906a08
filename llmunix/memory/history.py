"""Memory through git: the runs in the history, what memory changed, undoing one run.
Every git call is in llmunix.gitmem; this module decides what to ask it."""

from __future__ import annotations

from llmunix.memory import git as gitmem
from llmunix.memory.git import GitError, RunCommit
from llmunix.workspace.layout import Workspace

ALL_MEMORY = ["system", ":(glob)projects/*/memory/**"]


def runs(ws: Workspace, project: str | None = None, limit: int | None = None
         ) -> list[RunCommit]:
    """The runs git recorded (newest first), optionally only one project's."""
    paths = [ws.project(project).root.relative_to(ws.root).as_posix()] if project else None
    return gitmem.run_commits(ws.root, paths=paths, limit=limit)


def memory_diff(ws: Workspace, rev: str = "HEAD~1", project: str | None = None, *,
                stat: bool = False) -> str:
    """What changed in memory (system/ and every project's memory/) since `rev`."""
    if project:
        paths = [ws.project(project).root.relative_to(ws.root).as_posix() + "/memory"]
    else:
        paths = ALL_MEMORY
    return gitmem.diff(ws.root, rev, paths, stat=stat)


def revert_run(ws: Workspace, trace_id: str) -> tuple[RunCommit, str]:
    """Undo one run's commit with `git revert`; returns the run and the new commit's sha."""
    run = gitmem.find_run_commit(ws.root, trace_id)
    if run.reverted_by:
        raise GitError(f"run {run.trace_id} was already reverted by {run.reverted_by[:10]}")
    # the kernel state is a running tally of every run: it keeps its current values
    return run, gitmem.revert_commit(ws.root, run.sha,
                                     keep_current=lambda p: p.endswith("/memory/state.md"))
