"""Memory versioned in git: the one module that talks to git (GitPython, imported lazily)."""

from __future__ import annotations

from pathlib import Path

from llmunix.errors import LlmunixError

FALLBACK_NAME = "llmunix"
FALLBACK_EMAIL = "llmunix@localhost"
LOCK_FILE = ".llmunix/git.lock"


class GitError(LlmunixError):
    """Git could not record or read the workspace's memory."""


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


def commit_paths(root: Path, message: str, paths: list[str] | None = None, *,
                 create: bool = False) -> str | None:
    """Stage `paths` (all changes when None) and commit them. Returns the sha, or None if nothing
    changed. Commits from concurrent processes are serialized by a lock file in the workspace."""
    from filelock import FileLock

    lock_path = root / LOCK_FILE
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock_path)):
        repo = open_repo(root, create=create)
        try:
            if paths is None:
                repo.git.add("--all")
            else:
                repo.git.add("--all", "--", *paths)
            if repo.head.is_valid() and not repo.index.diff("HEAD"):
                return None
            actor = _actor(repo)
            commit = repo.index.commit(message, author=actor, committer=actor)
        except _git().GitCommandError as exc:
            raise GitError(f"git failed: {exc.stderr.strip() or exc}") from exc
        return commit.hexsha
