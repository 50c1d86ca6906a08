"""Commits of exactly the files given, at a cost that does not grow with the history.

`git commit -- <paths>` refreshes the whole index and builds a temporary one from HEAD: at
20,000 tracked files that is ~0.3 s a run. Here the index is updated for the given paths only
(`git update-index`), the tree written from it (`git write-tree`, which rewrites only the trees
on those paths), the commit made with `git commit-tree` and the branch moved with a
compare-and-swap `git update-ref`: four git processes, none of which stats the worktree.

The index used is the repository's own when llmunix can tell it holds nothing but HEAD (its
stamp is the one llmunix left after its last commit, or `git diff-index --cached` says so);
else - someone staged changes by hand - a private index built from HEAD, so their staging
neither rides along nor is lost; the repository's index then gets the same paths.
Runs are serialized by the caller (the workspace lock).

Two costs still grow with the repository, and are kept down here: every git command that
writes the index rewrites all of it (2.4 MB at 20,000 files, twice a commit), so an index past
SPLIT_INDEX_BYTES is switched to git's split index once (`update-index --split-index`: the
commits then write only the entries that changed; a repository whose config names
core.splitIndex is left as its owner set it); and plumbing never runs git's automatic
housekeeping as `git commit` does, so when git's own estimate says there are enough loose
objects (as many in objects/17 as `gc --auto` counts) `git gc --auto` runs, in the commit -
without it every commit of a big folder's tree would stay a loose object forever."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from llmunix.errors import GitError
from llmunix.workspace.paths import file_stamp

STAMP_FILE = ".llmunix/git-index-stamp.json"
PRIVATE_INDEX = ".llmunix/git-index"
ZERO = "0" * 40
SPLIT_INDEX_BYTES = 1 << 20  # ~9,000 files
GC_SAMPLE = 27  # loose objects in objects/17 at which `gc --auto` packs (gc.auto 6700 / 256)
# Who commits when git has no user.name/user.email configured (a fresh machine, CI).
FALLBACK_IDENTITY = {"GIT_AUTHOR_NAME": "llmunix", "GIT_AUTHOR_EMAIL": "llmunix@localhost",
                     "GIT_COMMITTER_NAME": "llmunix", "GIT_COMMITTER_EMAIL": "llmunix@localhost"}


class CommitFailed(GitError):
    """git refused to record a commit."""


def _run(root: Path, args: list[str], *, env: dict | None = None, input_: bytes | None = None,
         check: bool = True) -> subprocess.CompletedProcess:
    full = dict(os.environ)
    full.pop("GIT_INDEX_FILE", None)
    full.update(env or {})
    try:
        proc = subprocess.run(["git", *args], cwd=root, env=full, input=input_,
                              capture_output=True)
    except FileNotFoundError as exc:
        raise CommitFailed("git is not installed", hint="install git to version memory") \
            from exc
    if check and proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        cause = next((ln for ln in err if ln.startswith(("fatal:", "error:"))), None) or \
            (err[0] if err else f"git {args[0]} exited with {proc.returncode}")
        raise CommitFailed(cause.removeprefix("fatal: ").removeprefix("error: "))
    return proc


def _git_dir(root: Path) -> Path:
    return root / ".git"


def read_head(root: Path) -> tuple[str, str | None]:
    """(the ref HEAD names, its commit sha or None before the first commit), read from the
    files without running git when the ref is a loose one."""
    git_dir = _git_dir(root)
    try:
        head = (git_dir / "HEAD").read_text().strip()
    except OSError as exc:
        raise CommitFailed(f"{root} is not a git repository") from exc
    if not head.startswith("ref: "):
        return "HEAD", head or None
    ref = head[5:]
    try:
        return ref, (git_dir / ref).read_text().strip() or None
    except FileNotFoundError:
        pass
    try:
        for line in (git_dir / "packed-refs").read_text().splitlines():
            sha, _, name = line.partition(" ")
            if name == ref:
                return ref, sha
    except FileNotFoundError:
        pass
    return ref, None


def _index_stamp(path: Path) -> list[int] | None:
    stamp = file_stamp(path)  # a list: the record is JSON
    return None if stamp is None else list(stamp)


def _load_stamp(root: Path) -> dict:
    try:
        data = json.loads((root / STAMP_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_stamp(root: Path, data: dict) -> None:
    path = root / STAMP_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)
    except OSError:
        pass  # only a shortcut: without it the next commit checks the index with git


def _not_ignored(root: Path, paths: list[str]) -> list[str]:
    if not paths:
        return []
    proc = _run(root, ["check-ignore", "-z", "--stdin", "--no-index"],
                input_="\0".join(paths).encode() + b"\0", check=False)
    if proc.returncode not in (0, 1):
        return paths
    ignored = set(proc.stdout.decode("utf-8", "surrogateescape").split("\0"))
    return [p for p in paths if p not in ignored]


def commit_exact(root: Path, message: str, paths: list[str], *, env: dict | None = None,
                 allow_empty: bool = False, check_ignored: list[str] | None = None
                 ) -> str | None:
    """Commit the current content of `paths` (workspace-relative files; a missing one is
    recorded as deleted) and nothing else. `check_ignored`: paths to drop when .gitignore
    ignores them (files a run's tools wrote). Returns the sha, or None when nothing changed and
    not `allow_empty`. The caller holds the workspace lock."""
    env = env or {}
    paths = sorted(set(paths))
    if check_ignored:
        keep = set(_not_ignored(root, sorted(set(check_ignored) & set(paths))))
        paths = [p for p in paths if p not in check_ignored or p in keep]
    ref, head = read_head(root)
    main_index = _git_dir(root) / "index"
    stamp = _load_stamp(root)
    clean = bool(head) and stamp.get("head") == head and \
        stamp.get("index") == _index_stamp(main_index)
    if not clean and head:
        clean = _run(root, ["diff-index", "--cached", "--quiet", head, "--"],
                     check=False).returncode == 0
    elif not head:
        clean = not main_index.exists()
    index_env: dict = {}
    if not clean:
        private = str(root / PRIVATE_INDEX)
        index_env = {"GIT_INDEX_FILE": private}
        Path(private).parent.mkdir(parents=True, exist_ok=True)
        if head:
            _run(root, ["read-tree", head], env=index_env)
        else:
            Path(private).unlink(missing_ok=True)
    listing = ("\0".join(paths) + "\0").encode("utf-8", "surrogateescape") if paths else b""
    split = ["--split-index"] if clean and _should_split(root, main_index) else []
    if paths or split:
        _run(root, ["update-index", *split, "--add", "--remove", "-z", "--stdin"],
             env=index_env, input_=listing)
    tree = _run(root, ["write-tree"], env=index_env).stdout.decode().strip()
    if head and not allow_empty:
        old_tree = stamp.get("tree") if stamp.get("head") == head else None
        if old_tree is None:
            old_tree = _run(root, ["rev-parse", f"{head}^{{tree}}"]).stdout.decode().strip()
        if old_tree == tree:
            _after(root, head, tree, clean, main_index)
            return None
    parents = ["-p", head] if head else []
    body = message.encode("utf-8", "surrogateescape")
    try:
        sha = _run(root, ["commit-tree", tree, *parents], env=env, input_=body)
    except CommitFailed as exc:
        if not any(w in exc.message.lower() for w in ("ident", "who you are", "email", "name")):
            raise
        sha = _run(root, ["commit-tree", tree, *parents], env={**env, **FALLBACK_IDENTITY},
                   input_=body)
    sha = sha.stdout.decode().strip()
    subject = message.split("\n", 1)[0]
    _run(root, ["update-ref", "-m", f"commit: {subject}", ref, sha, head or ZERO])
    if not clean and paths:  # the repository's index gets the same paths, staging kept
        _run(root, ["update-index", "--add", "--remove", "-z", "--stdin"], input_=listing)
    _after(root, sha, tree, clean, main_index)
    _housekeeping(root)
    return sha


def _should_split(root: Path, index: Path) -> bool:
    try:
        if os.stat(index).st_size < SPLIT_INDEX_BYTES:
            return False  # small, or already split (the split part is what changed)
        config = (_git_dir(root) / "config").read_text(errors="replace").lower()
    except OSError:
        return False
    return "splitindex" not in config


def _housekeeping(root: Path) -> None:
    try:
        loose = len(os.listdir(_git_dir(root) / "objects" / "17"))
    except OSError:
        return
    if loose > GC_SAMPLE:  # git decides (gc.auto), packs, and prunes what it packed
        _run(root, ["-c", "gc.autoDetach=false", "gc", "--auto", "--quiet"], check=False)


def _after(root: Path, head: str, tree: str, clean: bool, main_index: Path) -> None:
    _save_stamp(root, {"head": head, "tree": tree,
                       "index": _index_stamp(main_index) if clean else None})
