"""The run commit (memory/gitcommit.py) in a repository that has grown: a big index is split
once and stays exact, and loose objects are packed by git's own housekeeping."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from llmunix.memory import gitcommit
from llmunix.memory.git import commit_files


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture
def repo(tmp_path) -> Path:
    root = tmp_path / "ws"
    (root / "old").mkdir(parents=True)
    for i in range(40):
        (root / "old" / f"f{i}.txt").write_text(f"{i}\n")
    (root / ".gitignore").write_text(".llmunix/\n")  # as in a workspace
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-qm", "start")
    return root


def files_of(root: Path, rev: str = "HEAD") -> list[str]:
    return git(root, "show", "--format=", "--name-only", rev).split()


def test_a_big_index_is_split_once_and_commits_stay_exact(repo, monkeypatch):
    monkeypatch.setattr(gitcommit, "SPLIT_INDEX_BYTES", 1)  # every index counts as big here
    (repo / "left.txt").write_text("the user's, not the run's\n")
    for k in range(3):
        (repo / f"run{k}.txt").write_text(f"{k}\n")
        assert commit_files(repo, f"run {k}", [f"run{k}.txt"])
        assert files_of(repo) == [f"run{k}.txt"]
    assert git(repo, "rev-parse", "--shared-index-path").strip()  # split, and still so
    assert git(repo, "status", "--porcelain") == "?? left.txt\n"
    assert len(git(repo, "ls-files").split()) == 44
    (repo / "run0.txt").unlink()
    commit_files(repo, "run 3", ["run0.txt"])
    assert files_of(repo) == ["run0.txt"] and git(repo, "status", "--porcelain") == \
        "?? left.txt\n"


def test_a_repository_that_names_split_index_is_left_as_set(repo, monkeypatch):
    monkeypatch.setattr(gitcommit, "SPLIT_INDEX_BYTES", 1)
    git(repo, "config", "core.splitIndex", "false")
    (repo / "a.txt").write_text("a\n")
    commit_files(repo, "run a", ["a.txt"])
    assert git(repo, "rev-parse", "--shared-index-path").strip() == ""
    assert files_of(repo) == ["a.txt"]


def test_loose_objects_are_packed_as_git_commit_would(repo):
    """Blob contents chosen so that their objects land in objects/17, the folder git samples
    to estimate how many loose objects there are: one commit past the mark, and gc packs."""
    contents, i = [], 0
    while len(contents) <= gitcommit.GC_SAMPLE:
        data = f"content {i}\n".encode()
        if hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest().startswith("17"):
            contents.append(data)
        i += 1
    names = []
    for n, data in enumerate(contents):
        (repo / f"o{n}.txt").write_bytes(data)
        names.append(f"o{n}.txt")
    sha = commit_files(repo, "run many", names)
    assert sha and sorted(files_of(repo)) == sorted(names)
    loose = repo / ".git" / "objects" / "17"
    assert not loose.exists() or len(list(loose.iterdir())) <= gitcommit.GC_SAMPLE
    assert list((repo / ".git" / "objects" / "pack").glob("*.pack"))
    git(repo, "fsck", "--no-progress")
    assert git(repo, "rev-parse", "HEAD").strip() == sha
