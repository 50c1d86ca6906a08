"""Memory versioned in git: the one module that talks to git (GitPython, imported lazily)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from llmunix.errors import GitError
from llmunix.memory.gitlocks import clear_stale_locks
from llmunix.memory.runlog import (  # noqa: F401 - the runs in the history, for callers
    RunCommit,
    find_run_commit,
    run_commits,
)
from llmunix.workspace.flock import FileLock

FALLBACK_NAME = "llmunix"
FALLBACK_EMAIL = "llmunix@localhost"
LOCK_FILE = ".llmunix/git.lock"


def _git():
    try:
        import git
    except ImportError as exc:  # pragma: no cover - gitpython is a hard dependency
        raise GitError("GitPython is not installed", hint="pip install gitpython") from exc
    return git


def open_repo(root: Path, *, create: bool = False):
    git = _git()
    try:
        return git.Repo(root)
    except git.InvalidGitRepositoryError:
        if not create:
            raise GitError(f"{root} is not a git repository", hint="run `git init` there") from None
        return git.Repo.init(root, initial_branch="main")
    except git.GitCommandNotFound as exc:
        raise GitError("git is not installed", hint="install git to version memory") from exc


def _actor(repo):
    git = _git()
    reader = repo.config_reader()
    name = reader.get_value("user", "name", default="") or FALLBACK_NAME
    email = reader.get_value("user", "email", default="") or FALLBACK_EMAIL
    return git.Actor(str(name), str(email))


_locks: dict[str, FileLock] = {}
_locks_guard = threading.Lock()
# Read-only commands must not take .git/index.lock (git refreshes the index "if able").
_READ_ENV = {"GIT_OPTIONAL_LOCKS": "0"}


@contextmanager
def workspace_lock(root: Path) -> Iterator[None]:
    """The workspace's git lock: serializes commits and memory writes across processes.
    Reentrant within a thread (one FileLock object per workspace), so a memory operation can
    hold it across its writes and its commit."""
    lock_path = root / LOCK_FILE
    with _locks_guard:
        lock = _locks.get(str(lock_path))
        if lock is None:
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            lock = _locks[str(lock_path)] = FileLock(str(lock_path))
    with lock:
        yield


def commit_paths(root: Path, message: str, paths: list[str] | None = None, *,
                 create: bool = False, allow_empty: bool = False,
                 exclude: Sequence[str] = ()) -> str | None:
    """Stage `paths` (all changes when None) and commit them - only them: changes staged
    elsewhere stay staged. Returns the sha, or None if nothing changed (unless `allow_empty`:
    then a commit is made anyway, so a run whose files another process already committed still
    gets its own commit). Commits from concurrent processes are serialized by a lock file in
    the workspace. The git command line does the work: GitPython's index code is pure Python
    and takes over a second per commit once a workspace tracks ~10,000 files. `exclude`: files
    under `paths` left out (neither staged nor committed)."""
    with workspace_lock(root):
        repo = open_repo(root, create=create)
        clear_stale_locks(root, Path(repo.git_dir))
        try:
            if paths is None:
                _retry(repo.git.add, "--all")
                spec: list[str] = []
            else:
                # a path with nothing on disk nor in git, or an empty folder, is no error:
                # callers name the folders a run may have touched
                wanted = [p for p in paths if _has_files(root / p)]
                missing = [p for p in paths if not (root / p).exists()]
                wanted += _known(repo, missing) if missing else []
                left_out = [f":(exclude){p}" for p in exclude] if wanted else []
                if wanted:
                    _retry(repo.git.add, "--all", "--", *wanted, *left_out)
                spec = ["--", *wanted, *left_out] if wanted else []
                if not spec:
                    if not allow_empty:
                        return None
                    spec = ["--only"]  # with --allow-empty: an empty commit, staged work aside
            if not allow_empty and repo.head.is_valid() and _unchanged(repo, spec):
                return None
            if not repo.head.is_valid() and not repo.git.ls_files() and not allow_empty:
                return None
            actor = _actor(repo)
            env = {"GIT_AUTHOR_NAME": actor.name, "GIT_AUTHOR_EMAIL": actor.email,
                   "GIT_COMMITTER_NAME": actor.name, "GIT_COMMITTER_EMAIL": actor.email}
            flags = ["--no-verify", "--quiet", "-m", message]
            if allow_empty:
                flags.append("--allow-empty")
            try:
                _retry(repo.git.commit, *flags, *spec, env=env)
            except _git().GitCommandError as exc:
                if "did not match" not in _stderr(exc) or len(spec) < 2:
                    raise
                # a folder holding only ignored files: commit what git knows of them
                known = _known(repo, spec[1:])
                if not known and not allow_empty:
                    return None
                _retry(repo.git.commit, *flags, *(["--", *known] if known else ["--only"]),
                       env=env)
            return repo.head.commit.hexsha  # read from .git, no subprocess
        except _git().GitCommandError as exc:
            raise GitError(f"git failed: {_stderr(exc)}") from exc


def pending_files(root: Path, paths: list[str]) -> list[str]:
    """Files under `paths` (relative to `root`) a commit of them would record: new or changed,
    not deleted. All files there when `root` is no repository yet."""
    git = _git()
    try:
        repo = git.Repo(root)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        files = [p for p in paths if (root / p).is_file()]
        files += [Path(dirpath, name).relative_to(root).as_posix()
                  for p in paths for dirpath, _dirs, names in os.walk(root / p) for name in names]
        return files
    out = repo.git.status("--porcelain", "-z", "--untracked-files=all", "--no-renames",
                          "--ignored=no", "--", *paths, env=_READ_ENV)
    return [entry[3:] for entry in out.split("\0") if len(entry) > 3 and "D" not in entry[:2]]


def commit_files(root: Path, message: str, files: list[str], *, outputs: list[str] = (),
                 allow_empty: bool = True, lock_wait_s: float = 10.0) -> str | None:
    """One commit of exactly `files` (workspace-relative; a missing one is recorded as deleted)
    and nothing else - the run commit. `outputs`: those of them a run's tools wrote, left out
    when .gitignore ignores them. Stale git locks of dead processes are removed first. The cost
    does not grow with the history (see gitcommit). GitError says why when it fails."""
    from llmunix.memory.gitcommit import commit_exact

    with workspace_lock(root):
        if not (root / ".git").exists():
            _init(root)
        clear_stale_locks(root, root / ".git", wait_s=lock_wait_s)
        return commit_exact(root, message, list(files), allow_empty=allow_empty,
                            check_ignored=list(outputs))


def _init(root: Path) -> None:
    """`git init` (branch main) with one git process, not GitPython: a run's commit needs no
    more, and GitPython costs a replay ~30 ms of imports and ~5 MB."""
    import subprocess

    try:
        done = subprocess.run(["git", "init", "-q", "--initial-branch=main", str(root)],
                              capture_output=True, text=True)
    except FileNotFoundError as exc:
        raise GitError("git is not installed", hint="install git to version memory") from exc
    if done.returncode != 0:
        raise GitError(f"git init failed: {done.stderr.strip() or done.returncode}")


def _has_files(path: Path) -> bool:
    """A file, or a folder with a file somewhere below (git does not track empty folders)."""
    if path.is_file() or path.is_symlink():
        return True
    return any(files for _dirpath, _dirs, files in os.walk(path))


def _known(repo, paths: list[str]) -> list[str]:
    """The paths git knows something under (in the index, or in HEAD: deleted since)."""
    if not paths:
        return []
    names = set(repo.git.ls_files("-z", "--cached", "--", *paths).split("\0"))
    if repo.head.is_valid():
        names.update(repo.git.ls_tree("-r", "-z", "--name-only", "HEAD", "--", *paths)
                     .split("\0"))
    names.discard("")
    prefixes = {p.rstrip("/") for p in paths}
    hit = set()
    for name in names:
        parts = name.split("/")
        for i in range(1, len(parts) + 1):
            if "/".join(parts[:i]) in prefixes:
                hit.add("/".join(parts[:i]))
    return [p for p in paths if p.rstrip("/") in hit]


def _unchanged(repo, spec: list[str]) -> bool:
    try:
        repo.git.diff("--cached", "--quiet", *[a for a in spec if a != "--only"])
    except _git().GitCommandError as exc:
        if exc.status == 1:
            return False
        raise
    return True


def _retry(command, *args, **kwargs):
    """Run a git command, waiting out an index.lock another git program (not llmunix: llmunix
    processes hold the workspace lock) briefly holds."""
    import time

    for attempt in range(40):
        try:
            return command(*args, **kwargs)
        except _git().GitCommandError as exc:
            if "index.lock" not in _stderr(exc) or attempt == 39:
                raise
            time.sleep(0.05)
    return None  # pragma: no cover - the loop returns or raises


def _stderr(exc) -> str:
    return (getattr(exc, "stderr", "") or "").strip().removeprefix("stderr:").strip().strip("'") \
        or str(exc)


def revert_commit(root: Path, sha: str, keep_current=lambda path: False) -> str:
    """`git revert` one commit. On a conflict (or any failure) the revert is aborted, the
    repository is left as it was, and GitError names the conflicting files. Conflicting files
    for which `keep_current(path)` holds keep their current version instead (running tallies
    such as the kernel state: undoing a run does not undo what came after it)."""
    with workspace_lock(root):
        repo = open_repo(root)
        actor = _actor(repo)
        env = {"GIT_AUTHOR_NAME": actor.name, "GIT_AUTHOR_EMAIL": actor.email,
               "GIT_COMMITTER_NAME": actor.name, "GIT_COMMITTER_EMAIL": actor.email}
        try:
            repo.git.revert("--no-edit", sha, env=env)
        except _git().GitCommandError as exc:
            conflicts = repo.git.diff("--name-only", "--diff-filter=U").split()
            if conflicts and all(keep_current(c) for c in conflicts):
                try:
                    repo.git.checkout("HEAD", "--", *conflicts)
                    repo.git.revert("--continue", env={**env, "GIT_EDITOR": "true"})
                    return repo.head.commit.hexsha
                except _git().GitCommandError:
                    pass  # aborted below, as any failed revert
            if (Path(repo.git_dir) / "REVERT_HEAD").exists() or \
                    (Path(repo.git_dir) / "sequencer").exists():
                try:
                    repo.git.revert("--abort")
                except _git().GitCommandError:
                    repo.git.reset("--merge")
            if conflicts:
                real = [c for c in conflicts if not keep_current(c)] or conflicts
                raise GitError(
                    f"reverting {sha[:10]} conflicts with later changes to "
                    f"{', '.join(real)}; the revert was aborted and nothing changed",
                    hint="revert the later runs that touched those files first, or edit them "
                    "by hand",
                ) from exc
            raise GitError(f"git revert failed: {_stderr(exc)}; nothing changed") from exc
        return repo.head.commit.hexsha


def diff(root: Path, rev: str, paths: list[str], *, stat: bool = False) -> str:
    """`git diff REV -- paths`: what changed in those paths since REV (working tree included)."""
    repo = open_repo(root)
    try:
        repo.git.rev_parse("--verify", "--quiet", f"{rev}^{{commit}}", env=_READ_ENV)
    except _git().GitCommandError:
        raise GitError(f"unknown revision {rev!r}",
                       hint="give a commit, e.g. HEAD~3 or a sha from `llmunix log`") from None
    args = ["--stat"] if stat else []
    try:
        return repo.git.diff(*args, rev, "--", *paths, env=_READ_ENV)
    except _git().GitCommandError as exc:
        raise GitError(f"git diff failed: {_stderr(exc)}") from exc


def tracked_files(root: Path, folder: str) -> set[str]:
    """Workspace-relative paths git holds under `folder` (empty when not a repository)."""
    git = _git()
    try:
        repo = git.Repo(root)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return set()
    if not repo.head.is_valid():
        return set()
    out = repo.git.ls_tree("-r", "--name-only", "-z", "HEAD", "--", folder, env=_READ_ENV)
    return {p for p in out.split("\0") if p}


def extract(root: Path, rev: str, paths: list[str], dest: Path) -> None:
    """Write the files `paths` held at `rev` below `dest` (a scratch copy of the workspace as it
    was then); paths git did not hold at `rev` are left out."""
    import io
    import tarfile

    repo = open_repo(root)
    try:
        present = repo.git.ls_tree("--name-only", rev, "--", *paths, env=_READ_ENV).split()
    except _git().GitCommandError as exc:
        raise GitError(f"git cannot read {rev}: {_stderr(exc)}") from exc
    dest.mkdir(parents=True, exist_ok=True)
    if not present:
        return
    data = repo.git.archive("--format=tar", rev, "--", *present, env=_READ_ENV,
                            stdout_as_string=False)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():  # git writes only files, folders and links it holds
            if member.name.startswith("/") or ".." in Path(member.name).parts:
                raise GitError(f"refusing the unsafe path {member.name!r} in {rev}")
        tar.extractall(dest)  # noqa: S202 - members checked above
