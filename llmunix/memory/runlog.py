"""The runs git recorded, read from the commit messages (`runner.commit_run`: subject and
trailers) with one `git log` that is stopped once enough runs are read: `llmunix log -n 20`
costs the same with 10 or 10,000 runs in the history. No GitPython: its import alone costs more
than reading a page of runs."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from llmunix.errors import GitError

_RUN_SUBJECT = re.compile(r"^run (\S+): (.*)$")
_REVERT_SUBJECT = re.compile(r'^Revert "run (\S+): ')
_REVERTS = re.compile(r"This reverts commit ([0-9a-f]{7,40})")
_TRAILER = re.compile(r"^([A-Za-z-]+): (.*)$", re.M)
_TOKENS = re.compile(r"^(\d+) in, (\d+) out$")
_FORMAT = "--format=%H%x1f%aI%x1f%s%x1f%b%x1e"
_RUNS_AND_REVERTS = r'--grep=^(run [^ ]+: |Revert "run )'


@dataclass(frozen=True)
class RunCommit:
    """One run as git recorded it."""

    sha: str
    date: str  # author date, ISO 8601
    trace_id: str
    goal: str
    runtime: str
    mode: str
    status: str
    cost_usd: float | None
    reverted_by: str | None = None
    model: str = ""
    input_tokens: int | None = None
    output_tokens: int | None = None
    duration_s: float | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def _records(root: Path, args: list[str]):
    """(sha, date, subject, body) of the commits `git log <args>` lists, newest first, read as
    git writes them; git is stopped when the caller stops reading."""
    if not (root / ".git").exists():
        raise GitError(f"{root} is not a git repository", hint="run `git init` there")
    env = {k: v for k, v in os.environ.items()
           if k not in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE")}
    env["GIT_OPTIONAL_LOCKS"] = "0"  # a read must not take .git/index.lock
    try:
        proc = subprocess.Popen(["git", "log", _FORMAT, *args], cwd=root, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except FileNotFoundError as exc:
        raise GitError("git is not installed", hint="install git to version memory") from exc
    assert proc.stdout is not None
    pending = b""
    finished = False
    try:
        while True:
            chunk = proc.stdout.read1(1 << 16)
            if not chunk:
                break
            *done, pending = (pending + chunk).split(b"\x1e")
            for record in done:
                parts = record.decode("utf-8", "replace").strip("\n").split("\x1f")
                if len(parts) == 4:
                    yield parts[0], parts[1], parts[2], parts[3]
        finished = True
    finally:
        if not finished:
            proc.kill()
        proc.stdout.close()
        err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
        code = proc.wait()
    if code != 0 and "does not have any commits" not in err:
        cause = err.strip().splitlines()[-1] if err.strip() else f"exit code {code}"
        raise GitError(f"git log failed: {cause.removeprefix('fatal: ')}")


def _parse(rows, limit: int | None) -> list[RunCommit]:
    reverted: dict[str, str] = {}
    runs: list[RunCommit] = []
    for sha, date, subject, body in rows:
        if _REVERT_SUBJECT.match(subject):  # newer than what it reverts: seen first
            hit = _REVERTS.search(body)
            if hit:
                reverted.setdefault(hit.group(1), sha)
            continue
        match = _RUN_SUBJECT.match(subject)
        if not match:
            continue
        trailers = {k.lower(): v.strip() for k, v in _TRAILER.findall(body)}
        tokens = _TOKENS.match(trailers.get("tokens", ""))
        runs.append(RunCommit(
            sha, date, match.group(1), match.group(2), trailers.get("runtime", ""),
            trailers.get("mode", ""), trailers.get("status", ""),
            _float(trailers.get("cost-usd")) if "cost-usd" in trailers else None,
            next((r for s, r in reverted.items() if sha.startswith(s)), None),
            "" if trailers.get("model") == "-" else trailers.get("model", ""),
            int(tokens.group(1)) if tokens else None, int(tokens.group(2)) if tokens else None,
            _float(trailers.get("duration-s"))))
        if limit is not None and len(runs) >= limit:
            break
    return runs


def run_commits(root: Path, *, paths: list[str] | None = None,
                limit: int | None = None) -> list[RunCommit]:
    """Runs recorded in the history (newest first, at most `limit`), optionally only those
    touching `paths`; a run undone by `git revert` carries the reverting commit's sha."""
    records = _records(root, ["-E", _RUNS_AND_REVERTS, "--", *(paths or [])])
    try:
        return _parse(records, limit)
    finally:
        records.close()


def find_run_commit(root: Path, trace_id: str) -> RunCommit:
    """The commit of the run `trace_id` (a unique prefix of it is enough). git picks the
    commits naming it (its run, and a revert of it) - no walk through every run in Python."""
    records = _records(root, ["-F", f"--grep=run {trace_id}"])
    try:
        runs = _parse(records, None)
    finally:
        records.close()
    exact = [r for r in runs if r.trace_id == trace_id]
    found = exact or [r for r in runs if r.trace_id.startswith(trace_id)]
    if not found:
        raise GitError(f"no run commit for trace {trace_id!r} in the git history",
                       hint="see `llmunix log` for the runs git knows")
    if len({r.trace_id for r in found}) > 1:
        names = ", ".join(sorted({r.trace_id for r in found})[:5])
        raise GitError(f"{trace_id!r} matches several runs: {names}",
                       hint="give more of the trace id")
    return found[0]
