"""`llmunix memory consolidate --summarize`: the memory consolidation agent, a model run, reads
the traces a consolidation distilled and appends readable learnings to
memory/long_term/learnings.md. It lives here, above memory/, because it runs a goal."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from llmunix.errors import LlmunixError, RuntimeUnavailable
from llmunix.memory import git as gitmem
from llmunix.run import runner
from llmunix.specs.frontmatter import atomic_write
from llmunix.workspace.layout import Project, Workspace

SUMMARY_AGENT = "memory-consolidation-agent"
STAGING = ".memory-consolidation"
LEARNINGS = "learnings.md"


@dataclass
class Summarizer:
    """What memory.consolidate() calls when --summarize is given."""

    runtime: str | None = None
    model: str | None = None
    runtime_options: dict = field(default_factory=dict)
    emit: Callable = lambda _event: None

    def check(self, ws: Workspace, project: str | None) -> None:
        check_runtime(ws, project, self.runtime, self.model, self.runtime_options)

    def summarize(self, ws: Workspace, project: Project,
                  sources: list[tuple[str, str]]) -> dict[str, Any]:
        return _summarize(ws, project, sources, self.runtime, self.model,
                          self.runtime_options, self.emit)


def _rel(ws: Workspace, path) -> str:
    return path.relative_to(ws.root).as_posix()


def check_runtime(ws: Workspace, project: str | None, runtime: str | None, model: str | None,
                  runtime_options: dict) -> None:
    """RuntimeUnavailable, with a clear message, unless a model runtime can run the agent."""
    name = runtime or ws.config.run.runtime
    hint = ("the deterministic part needs no model: run `llmunix memory consolidate` without "
            "--summarize")
    if name == "replay":
        raise RuntimeUnavailable(
            "--summarize needs a model runtime (claude or openai); replay has no model",
            hint=hint)
    request = runner.RunRequest(goal="summarize memory", project=project, agent=SUMMARY_AGENT,
                                runtime=name, model=model, runtime_options=dict(runtime_options))
    try:
        runner.prepare(ws, request)
    except RuntimeUnavailable as exc:
        raise RuntimeUnavailable(
            f"--summarize needs a model runtime, and {name} is not available: {exc.message}",
            hint=hint) from exc


def _summarize(ws: Workspace, project: Project, sources: list[tuple[str, str]],
               runtime: str | None, model: str | None, runtime_options: dict,
               emit: Callable) -> dict[str, Any]:
    """Let the memory consolidation agent read this consolidation's traces and append learnings.
    The agent may only touch its project's workspace/, so the traces are copied into a staging
    folder there and its learnings file is moved into memory/long_term/ afterwards."""
    staging = project.workspace_dir / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "traces").mkdir(parents=True)
    for name, text in sources:
        (staging / "traces" / name).write_text(text, encoding="utf-8")
    learnings = project.long_term_dir / LEARNINGS
    before = learnings.read_text(encoding="utf-8") if learnings.is_file() else None
    if before is not None:
        (staging / LEARNINGS).write_text(before, encoding="utf-8")
    goal = (f"Consolidate the {len(sources)} execution trace(s) in {STAGING}/traces/ into "
            f"learnings: append your entries to {STAGING}/{LEARNINGS} (create it with the "
            "heading `# Learnings` if it does not exist), as your instructions describe. "
            "Skip traces the file already covers.")
    request = runner.RunRequest(goal=goal, project=project.name, agent=SUMMARY_AGENT,
                                runtime=runtime, model=model,
                                runtime_options=dict(runtime_options))
    written = None
    try:
        outcome = runner.run_goal(ws, request, emit)
        staged = staging / LEARNINGS
        after = staged.read_text(encoding="utf-8") if staged.is_file() else None
        if outcome.status == "success" and after and after != before:
            atomic_write(learnings, after, ws.root)
            written = _rel(ws, learnings)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if ws.config.memory.commit:
        with contextlib.suppress(LlmunixError):  # on disk anyway; the next commit takes them
            gitmem.commit_paths(ws.root, f"memory summarize: {project.name} "
                                f"({outcome.trace_id})",
                                [_rel(ws, project.long_term_dir), _rel(ws, project.workspace_dir)],
                                create=True)
    return {"project": project.name, "trace_id": outcome.trace_id, "status": outcome.status,
            "learnings": written}
