"""Writing the viewer's pages: one run, or an index of runs with a page per run (pages already
newer than their trace are kept, so the index of a large workspace is quick to refresh)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from llmunix.trace.markdown import read_meta, read_trace
from llmunix.viewer import html, model

if TYPE_CHECKING:
    from llmunix.workspace.layout import Workspace

HTML_DIR = Path(".llmunix") / "html"  # .llmunix/ is git-ignored in a workspace


def render(trace_path: Path) -> str:
    return html.render_run(model.build(read_trace(trace_path, repair=False)))


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def default_folder() -> Path:
    from llmunix.errors import WorkspaceError
    from llmunix.workspace.layout import find_workspace

    try:
        return find_workspace().root / HTML_DIR
    except WorkspaceError:
        return Path.cwd()


def write_run(trace_path: Path, output: Path | None = None) -> Path:
    target = output if output is not None else default_folder() / f"{trace_path.stem}.html"
    if target.is_dir():
        target = target / f"{trace_path.stem}.html"
    _write(target, render(trace_path))
    return target


def write_index(ws: Workspace, output: Path | None = None, project: str | None = None) -> Path:
    from llmunix.trace.locate import all_traces  # the workspace layout: only for the index

    folder = output if output is not None else ws.root / HTML_DIR
    runs = []
    for trace_path in all_traces(ws, project):
        page = folder / "runs" / f"{trace_path.stem}.html"
        try:
            fresh = page.stat().st_mtime >= trace_path.stat().st_mtime
        except OSError:
            fresh = False
        if not fresh:
            _write(page, render(trace_path))
        row = html.run_summary(read_meta(trace_path))
        row.setdefault("trace_id", trace_path.stem)
        row["trace_id"] = row["trace_id"] or trace_path.stem
        row["href"] = f"runs/{page.name}"
        runs.append(row)
    index = folder / "index.html"
    _write(index, html.render_index(runs, f"llmunix runs · {ws.root.name}"))
    return index
