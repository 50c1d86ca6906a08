"""Verifying a crystallized tool before it is kept: run it in a scratch copy of the workspace as
git held it just before each source run, and compare what it leaves with what the run left
(the run's own commit). Any difference - a file missing, extra or with other bytes - refuses
the tool and names the file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from llmunix.errors import LlmunixError
from llmunix.memory import git as gitmem
from llmunix.specs.document import parse_document
from llmunix.specs.models import CRYSTALLIZED_FOLDER as FOLDER
from llmunix.specs.tools import parse_tool
from llmunix.tools.sandbox import Sandbox
from llmunix.tools.spec_exec import run_tool_spec
from llmunix.workspace.layout import Project, Workspace


class VerificationFailed(LlmunixError):
    """The crystallized tool does not do what the recorded run did."""


@dataclass(frozen=True)
class Case:
    """One source run to reproduce: its short-term trace id and the arguments its goal binds."""

    run: str
    args: dict[str, str]


# Makes the scratch copy of the workspace before a run (replaceable: tests tamper with it).
Checkout = Callable[[Path, str, list[str], Path], None]


def scratch_paths(ws: Workspace, project: Project) -> list[str]:
    """What the scratch copy holds: the project's workspace and what its tools need."""
    rel = [ws.config_path, ws.system_tools_dir, project.tools_dir, project.workspace_dir]
    return [p.relative_to(ws.root).as_posix() for p in rel]


def scratch_sandbox(ws: Workspace, copy: Path, scratch_ws: Path) -> Sandbox:
    """The sandbox a run would use (`[sandbox]`, `[policy] read_paths`), over the copy."""
    conf = ws.config.sandbox
    return Sandbox.create(scratch_ws, read_paths=[copy / p for p in ws.config.policy.read_paths],
                          network=False, env=conf.env, mode=conf.mode, program=conf.program)


def _tree(folder: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in names:
            path = Path(root, name)
            rel = path.relative_to(folder).as_posix()
            files[rel] = os.readlink(path).encode() if path.is_symlink() else path.read_bytes()
    return files


def difference(got: dict[str, bytes], want: dict[str, bytes]) -> str | None:
    """The first differing file and how it differs, or None when the trees are equal."""
    for rel in sorted(set(got) | set(want)):
        if rel not in got:
            return f"{rel}: the run left it, the tool did not make it"
        if rel not in want:
            return f"{rel}: the tool made it, the run did not"
        if got[rel] != want[rel]:
            a, b = got[rel].decode(errors="replace"), want[rel].decode(errors="replace")
            pairs = zip(a.splitlines(), b.splitlines(), strict=False)
            line = next((i for i, (x, y) in enumerate(pairs, start=1) if x != y),
                        min(len(a.splitlines()), len(b.splitlines())) + 1)
            return f"{rel}: its content differs from the run's (first at line {line})"
    return None


def verify(ws: Workspace, project: Project, name: str, text: str, cases: list[Case], *,
           checkout: Checkout = gitmem.extract) -> list[str]:
    """Run the tool (spec `text`) once per case in a scratch copy; returns the run commits it
    was checked against. Raises VerificationFailed naming the first differing file."""
    checked = []
    ws_rel = project.workspace_dir.relative_to(ws.root).as_posix()
    for case in cases:
        try:
            commit = gitmem.find_run_commit(ws.root, case.run)
        except LlmunixError as exc:
            raise VerificationFailed(
                f"cannot verify against run {case.run}: {exc.message}",
                hint="crystallize traces of runs recorded in this workspace's git history "
                     "([memory] commit = true)") from None
        with tempfile.TemporaryDirectory(prefix="llmunix-crystal-") as tmp:
            before, after = Path(tmp, "before"), Path(tmp, "after")
            checkout(ws.root, f"{commit.sha}^", scratch_paths(ws, project), before)
            gitmem.extract(ws.root, commit.sha, [ws_rel], after)
            scratch_ws = before / ws_rel
            scratch_ws.mkdir(parents=True, exist_ok=True)
            spec_path = before / project.tools_dir.relative_to(ws.root) / FOLDER / f"{name}.md"
            spec_path.parent.mkdir(parents=True, exist_ok=True)
            spec_path.write_text(text, encoding="utf-8")
            spec, problems = parse_tool(parse_document(text.encode(), spec_path),
                                        f"project:{project.name}")
            if spec is None:
                raise VerificationFailed("the generated tool spec does not load: "
                                         + "; ".join(p.message for p in problems))
            result = run_tool_spec(spec, case.args, cwd=scratch_ws,
                                   sandbox=scratch_sandbox(ws, before, scratch_ws))
            if result.is_error:
                first = (result.output.strip().splitlines() or ["(no output)"])[-1]
                raise VerificationFailed(
                    f"in a copy of the workspace before run {case.run}, the tool failed: {first}")
            problem = difference(_tree(scratch_ws), _tree(after / ws_rel))
            if problem:
                raise VerificationFailed(
                    f"in a copy of the workspace before run {case.run}, the tool's result "
                    f"differs from the run's: {problem}; nothing was written",
                    hint="the learned trace does not match what the run committed")
        checked.append(commit.sha[:12])
    return checked
