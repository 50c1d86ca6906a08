"""The memory index on SQLite FTS5: scores are BM25 over exactly text.terms() of each entry,
updates are incremental (a changed file is re-read, nothing else), and goal matching reads only
the project's learned traces, never the short-term ones."""

from __future__ import annotations

import math
import os
import sqlite3
from collections import Counter

import pytest

from llmunix import memory
from llmunix.memory.text import K1, B, goal_signature, terms
from llmunix.workspace.layout import Workspace
from tests.support import new_workspace
from tests.test_memory import age_memory, make_trace  # the real TraceWriter, real files

GOALS = [
    "write a python script printing fibonacci numbers to fib.py",
    "re-run the failing tests in notes/a.txt",
    "convert snake_case names in the café menu",
    "resize the png images for the café site",
    "compress the log archive of March",
    "translate the readme into French",
    "plot the sales chart from sales.csv",
    "backup the database to backup.sql",
    "fibonacci numbers again, to fib2.py",
]


@pytest.fixture
def ws(tmp_path) -> Workspace:
    return new_workspace(tmp_path / "ws")


def _reference(db: sqlite3.Connection, query: str) -> dict[int, float]:
    """BM25 as documented in memory/text.py, computed in Python from each entry's terms."""
    bodies = {rowid: body.split() for rowid, body in db.execute("SELECT rowid, body FROM words")}
    n = len(bodies)
    avgdl = sum(len(w) for w in bodies.values()) / n
    q = Counter(terms(query))
    df = {t: sum(1 for w in bodies.values() if t in w) for t in q}

    def idf(t: str) -> float:
        value = math.log((n - df[t] + 0.5) / (df[t] + 0.5))
        return value if value > 0 else 1e-6

    def score(words: list[str], counts: Counter) -> float:
        return sum(idf(t) * counts[t] * (K1 + 1) / (counts[t] + K1 * (1 - B + B * len(words)
                   / avgdl)) for t in q if counts[t])

    best = sum(idf(t) * tf * (K1 + 1) / (tf + K1 * (1 - B + B * sum(q.values()) / avgdl))
               for t, tf in q.items())
    out = {}
    for rowid, words in bodies.items():
        s = score(words, Counter(words))
        if s > 0:
            out[rowid] = round(min(1.0, s / best), 4)
    return out


@pytest.mark.parametrize("query", ["fibonacci fib.py", "café", "snake_case names",
                                   "notes/a.txt", "re-run", "sales chart png", "the backup"])
def test_search_scores_are_bm25_over_each_entrys_terms(ws, query):
    for goal in GOALS:
        make_trace(ws, goal)
    memory.consolidate(ws)
    hits = memory.search(ws, query, limit=100)
    with memory.MemoryIndex(ws) as index:
        # FTS5 keeps each of our terms whole (compound tokens, accents, underscores)
        for (title, body) in index.db.execute(
                "SELECT docs.title, words.body FROM docs JOIN words ON words.rowid = docs.id "
                "WHERE docs.tier = 'gamma'"):
            assert body.split() == terms(title)
        expected = _reference(index.db, query)
        ids = {(path, line): rowid for rowid, path, line in index.db.execute(
            "SELECT id, path, line FROM docs")}
    assert hits, query
    assert {ids[(h.path, h.line)]: h.score for h in hits} == expected
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_index_is_updated_by_the_files_that_changed_only(ws):
    for goal in GOALS[:4]:
        make_trace(ws, goal)
    memory.consolidate(ws)
    age_memory(ws)
    with memory.MemoryIndex(ws) as index:
        index.refresh()
        assert index.refresh() == 0
    added = make_trace(ws, "water the bonsai trees")
    with memory.MemoryIndex(ws) as index:
        assert index.refresh() == 1  # the new trace, not its folder's other files
        n_docs = index.db.execute("SELECT COUNT(*) FROM docs").fetchone()[0]
        assert index._stat("n_docs") == n_docs
        total = index.db.execute("SELECT TOTAL(length) FROM docs").fetchone()[0]
        assert index._stat("total_len") == total
    assert memory.search(ws, "bonsai")[0].path.endswith(added.name)
    added.unlink()
    assert memory.search(ws, "bonsai") == []
    with memory.MemoryIndex(ws) as index:
        assert index._stat("n_docs") == index.db.execute("SELECT COUNT(*) FROM docs").fetchone()[0]


def _recount(db: sqlite3.Connection) -> tuple[dict, dict]:
    goals: Counter = Counter()
    for project, sig in db.execute("SELECT project, signature FROM docs WHERE tier = 'beta' "
                                   "AND kind = 'trace' AND signature != ''"):
        goals[(project, sig)] += 1
    df: Counter = Counter()
    for project, sig in goals:
        df.update((project, w) for w in sig.split())
    return dict(goals), dict(df)


def test_goal_word_counts_follow_learned_traces_incrementally(ws):
    for goal in GOALS[:5]:
        make_trace(ws, goal)
    for goal in GOALS[5:]:
        make_trace(ws, goal, project="other")
    memory.consolidate(ws)
    [match] = memory.match_goal(ws, "default", GOALS[0])[:1]
    with memory.MemoryIndex(ws) as index:
        index.refresh()
        goals = {(p, s): n for p, s, n in index.db.execute("SELECT * FROM goals")}
        df = {(p, w): n for p, w, n in index.db.execute("SELECT * FROM goal_df")}
        assert (goals, df) == _recount(index.db)
        assert ("default", goal_signature(GOALS[0])) in goals
    match.path.unlink()  # a learned trace goes: its words stop counting, others stay
    with memory.MemoryIndex(ws) as index:
        index.refresh()
        goals = {(p, s): n for p, s, n in index.db.execute("SELECT * FROM goals")}
        df = {(p, w): n for p, w, n in index.db.execute("SELECT * FROM goal_df")}
        assert (goals, df) == _recount(index.db)
        assert ("default", goal_signature(GOALS[0])) not in goals
        assert ("default", "fibonacci") not in df
        assert df[("other", "fibonacci")] == 1


def test_goal_matching_never_reads_short_term_traces(ws):
    make_trace(ws, GOALS[0])
    memory.consolidate(ws)
    newer = [make_trace(ws, f"{GOALS[0]} number {i}") for i in range(5)]
    [best, *_] = memory.match_goal(ws, "default", GOALS[0])
    assert best.exact and best.score == 1.0
    with memory.MemoryIndex(ws) as index:
        indexed = {p for (p,) in index.db.execute("SELECT path FROM files")}
    assert not any(p.endswith(t.name) for p in indexed for t in newer)
    hits = memory.search(ws, "number fibonacci", limit=20)  # a search does read them
    assert {t.name for t in newer} <= {h.path.rsplit("/", 1)[1] for h in hits}


def test_an_index_of_the_previous_format_is_rebuilt(ws):
    make_trace(ws, "sort the bookmarks")
    path = ws.root / ".llmunix" / "memory-index.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE postings (term TEXT, doc INTEGER)")
    db.execute("PRAGMA user_version=2")
    db.commit()
    db.close()
    assert memory.search(ws, "bookmarks")[0].title == "sort the bookmarks"
    db = sqlite3.connect(path)
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
    db.close()
    assert "postings" not in tables and "words" in tables


def test_a_settled_trace_rewritten_by_rename_is_read_again(ws):
    trace = make_trace(ws, "sort the bookmarks")
    age_memory(ws)
    assert memory.search(ws, "bookmarks")[0].title == "sort the bookmarks"
    with memory.MemoryIndex(ws) as index:
        assert index.refresh() == 0  # settled: nothing to re-read
    # how llmunix rewrites a trace (markdown_meta.atomic_write): a new file renamed over it
    tmp = trace.with_name(".rewrite.tmp")
    tmp.write_text(trace.read_text().replace("sort the bookmarks", "sort the recipes"))
    os.replace(tmp, trace)
    age_memory(ws)
    hits = memory.search(ws, "recipes")
    assert hits and hits[0].path.endswith(trace.name) and hits[0].title == "sort the recipes"
    assert memory.search(ws, "bookmarks") == []


def test_a_short_term_folder_keeps_its_listing_and_survives_a_broken_one(ws):
    """The listing (name -> inode of each settled trace) is what a query after a new run
    compares; a damaged one is ignored and the folder's rows are compared instead."""
    import marshal

    traces = [make_trace(ws, goal) for goal in GOALS[:3]]
    age_memory(ws)
    folder = traces[0].parent
    rel = folder.relative_to(ws.root).as_posix()
    with memory.MemoryIndex(ws) as index:
        index.refresh()
        (blob,) = index.db.execute("SELECT listing FROM dirs WHERE path = ?", (rel,)).fetchone()
    assert marshal.loads(blob) == {t.name: t.stat().st_ino for t in traces}
    with memory.MemoryIndex(ws) as index:
        index.db.execute("UPDATE dirs SET listing = ?, mtime_ns = NULL WHERE path = ?",
                         (b"\x00not marshal", rel))
    traces[1].unlink()
    added = make_trace(ws, "water the bonsai trees")
    assert memory.search(ws, "bonsai")[0].path.endswith(added.name)
    assert memory.search(ws, "fibonacci")[0].path.endswith(traces[0].name)
    assert memory.search(ws, "failing tests") == []  # the deleted trace is forgotten
