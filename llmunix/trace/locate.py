"""Finding a run's trace from what a user types: a path, a trace id (as `llmunix log` prints it,
or a unique prefix of one), or `last` (the newest run of any project)."""

from __future__ import annotations

from pathlib import Path

from llmunix.errors import TraceError
from llmunix.workspace.layout import Workspace


def all_traces(ws: Workspace, project: str | None = None) -> list[Path]:
    """Every short-term trace of the workspace (or of one project), newest first: trace file
    names start with the run's UTC start time."""
    projects = [ws.project(project)] if project else ws.projects()
    paths = []
    for proj in projects:
        folder = proj.short_term_dir
        if folder.is_dir():
            paths += [p for p in folder.glob("*.md") if not p.name.startswith(".")]
    return sorted(paths, key=lambda p: (p.stem, str(p)), reverse=True)


def resolve(ws: Workspace | None, ref: str, project: str | None = None) -> Path:
    path = Path(ref).expanduser()
    if path.is_file():
        return path
    if ws is None:
        raise TraceError(f"no trace file {ref}",
                         hint="give a trace's path, or run inside a workspace to use ids")
    traces = all_traces(ws, project)
    if ref == "last":
        if not traces:
            raise TraceError("no run has been recorded in this workspace yet",
                             hint='run a goal first: llmunix run "<goal>"')
        return traces[0]
    exact = [p for p in traces if p.stem == ref]
    found = exact or [p for p in traces if p.stem.startswith(ref)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise TraceError(f"no trace with the id {ref!r}",
                         hint="`llmunix log` lists runs and their trace ids; `last` is the "
                              "newest; a path to a trace file works too")
    names = ", ".join(p.stem for p in found[:5])
    raise TraceError(f"{len(found)} traces start with {ref!r}: {names}",
                     hint="give more of the id")
