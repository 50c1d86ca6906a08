"""Finding things in memory: a full-text index of every tier (SQLite FTS5, ranked by its
`bm25()`), cached on disk and updated incrementally, and goal matching.

Entries indexed, by tier:
- gamma: each short-term trace (its goal; context: status, mode, goal);
- beta: each long-term trace (its goal) and each `## ` section of other notes in long_term/;
- alpha: each entry (`## ` section under `## Entries`) of system/memory_log.md;
- delta: each row of the tables of system/SmartLibrary.md (agents, tools, learned traces).

The index lives in `.llmunix/memory-index.sqlite` (a cache: git ignores it, deleting it is
safe). A query does not re-read memory: it stats the few memory folders and re-reads only the
files of a folder whose mtime changed (every trace write ends with a create or a rename, which
changes its folder's mtime), comparing each file's mtime and size with what was indexed (in
short_term/, a settled trace whose inode is the one indexed is taken as unchanged: traces end
with an atomic rename, so no stat per trace). Such a folder also keeps its listing as of the last
scan (name -> inode of each settled trace, one marshal blob): a query after a new run compares
the folder's names and inodes with it and looks up only what differs, rather than every row of
a 100,000-trace folder.
A folder or file changed within the last RACY_S seconds is re-checked on the next query, since
filesystem timestamps are coarse (the "racy" case git also guards against). Goal matching
checks only the project's long_term/ folder, however many short-term traces there are.

Each entry's words are text.terms(), stored space-separated in an FTS5 table whose tokenizer
keeps `.`, `/`, `-` and `_` inside tokens, so FTS5 sees exactly those terms.
"""

from __future__ import annotations

import marshal
import os
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from llmunix.errors import TraceError
from llmunix.memory.documents import _docs_for
from llmunix.memory.learned_file import load_long_term
from llmunix.memory.longterm import LongTermTrace
from llmunix.memory.text import best_score, goal_signature, similarity, terms
from llmunix.specs.frontmatter import STATE_DIR
from llmunix.workspace.layout import Project, Workspace

INDEX_FILE = "memory-index.sqlite"
# every table any schema version made (dropped when the version changes)
_TABLES = ("vocab", "words", "postings", "dirs", "files", "docs", "goals", "goal_df", "stats")
SCHEMA_VERSION = 5
RACY_S = 2.0
TIER_ORDER = {"beta": 0, "alpha": 1, "delta": 2, "gamma": 3}
SYSTEM_FILES = {"system/memory_log.md": "alpha", "system/SmartLibrary.md": "delta"}

# words: one FTS5 row per entry (rowid = docs.id); vocab: its per-term document counts.
# goals counts, per project, the learned traces (beta) of each goal signature, and goal_df how
# many of those distinct signatures use each word: both kept by deltas as files change.
_SCHEMA = """
CREATE TABLE dirs (path TEXT PRIMARY KEY, mtime_ns INTEGER, listing BLOB);
CREATE TABLE files (path TEXT PRIMARY KEY, dir TEXT, mtime_ns INTEGER, size INTEGER,
                    ino INTEGER);
CREATE INDEX files_dir ON files(dir);
CREATE TABLE docs (id INTEGER PRIMARY KEY, path TEXT, line INTEGER, tier TEXT, project TEXT,
                   kind TEXT, title TEXT, context TEXT, signature TEXT, status TEXT,
                   version INTEGER, length INTEGER);
CREATE INDEX docs_path ON docs(path);
CREATE INDEX docs_match ON docs(tier, kind, project);
CREATE VIRTUAL TABLE words USING fts5(body, tier UNINDEXED, project UNINDEXED,
    tokenize = "unicode61 remove_diacritics 0 tokenchars '._/-'");
CREATE VIRTUAL TABLE vocab USING fts5vocab(words, 'row');
CREATE TABLE goals (project TEXT, signature TEXT, n INTEGER,
                    PRIMARY KEY (project, signature)) WITHOUT ROWID;
CREATE TABLE goal_df (project TEXT, word TEXT, n INTEGER,
                      PRIMARY KEY (project, word)) WITHOUT ROWID;
CREATE TABLE stats (key TEXT PRIMARY KEY, value REAL);
"""


@dataclass(frozen=True)
class Hit:
    tier: str
    score: float
    path: str  # workspace-relative
    line: int
    kind: str  # trace | note | pattern | agent | tool | learned trace
    project: str  # "" for system-wide entries
    title: str
    context: str

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Match:
    score: float  # 1.0 for an exact goal signature, else normalized BM25 (at most 0.99)
    trace: LongTermTrace
    path: Path
    exact: bool


class MemoryIndex:
    """The on-disk search index of a workspace's memory. Use as a context manager."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.root = ws.root
        self.path = self.root / STATE_DIR / INDEX_FILE
        self.db = self._open()

    def __enter__(self) -> MemoryIndex:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = self._connect(str(self.path))
        except (OSError, sqlite3.DatabaseError):
            # an unreadable cache is rebuilt; an unwritable workspace gets one in memory
            try:
                self.path.unlink(missing_ok=True)
                db = self._connect(str(self.path))
            except (OSError, sqlite3.DatabaseError):
                db = self._connect(":memory:")
        return db

    @staticmethod
    def _connect(target: str) -> sqlite3.Connection:
        db = sqlite3.connect(target, timeout=30, isolation_level=None)
        if target != ":memory:":
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            db.execute("BEGIN IMMEDIATE")
            try:
                if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                    for table in _TABLES:
                        db.execute(f"DROP TABLE IF EXISTS {table}")
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            db.execute(statement)
                    db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return db

    # ------------------------------------------------------------ keeping it fresh

    def _watched(self) -> list[tuple[str, str, str]]:
        """(folder, tier, project) of every memory folder."""
        out = []
        for project in self.ws.projects():
            rel = project.root.relative_to(self.root).as_posix()
            out.append((f"{rel}/memory/short_term", "gamma", project.name))
            out.append((f"{rel}/memory/long_term", "beta", project.name))
        return out

    def refresh(self, only: list[tuple[str, str, str]] | None = None) -> int:
        """Bring the index up to date with the files (with `only`, with those (folder, tier,
        project) folders); returns how many files were re-read."""
        now = time.time_ns()
        racy = int(RACY_S * 1e9)
        stored = {path: (mtime, listing) for path, mtime, listing in self.db.execute(
            "SELECT path, mtime_ns, listing FROM dirs")}
        # ("file", rel, tier, project, dir, mtime, size, racy, inode) | ("gone", rel)
        changes: list[tuple] = []
        # folder -> (mtime or None: look again next time, listing blob or None); None: forget
        dir_updates: dict[str, tuple[int | None, bytes | None] | None] = {}
        watched = self._watched() if only is None else only
        for folder, tier, project in watched:
            try:
                mtime = os.stat(self.root / folder).st_mtime_ns
            except OSError:
                mtime = -1
            had_dir = stored.get(folder)
            if had_dir is not None and had_dir[0] is not None and had_dir[0] == mtime:
                continue
            # short-term traces are written once and finished by an atomic rename (a new
            # inode): a settled one whose inode is unchanged is not stat'ed again, so a run
            # does not pay a stat per trace of a big short_term/ folder
            listing = _listing(had_dir[1]) if tier == "gamma" and had_dir else None
            clean, settled = self._scan_folder(folder, tier, project, now, racy, listing,
                                               changes)
            clean = clean and now - mtime > racy
            blob = marshal.dumps(settled) if settled is not None else None
            dir_updates[folder] = (mtime if clean else None, blob)
        if only is None:
            changes += self._system_changes(now, racy)
            live = {f for f, _t, _p in watched} | {"system"}
            for folder in stored:
                if folder not in live:
                    changes += [("gone", rel) for (rel,) in self.db.execute(
                        "SELECT path FROM files WHERE dir = ?", (folder,))]
                    dir_updates[folder] = None  # forget the folder
        if not changes and not dir_updates:
            return 0
        self._apply(changes, dir_updates)
        return sum(1 for c in changes if c[0] == "file")

    def _scan_folder(self, folder: str, tier: str, project: str, now: int, racy: int,
                     listing: dict[str, int] | None, changes: list[tuple]
                     ) -> tuple[bool, dict[str, int] | None]:
        """Add what changed in `folder` to `changes`; returns whether no file in it is racy,
        and (short-term folders) its new listing of settled traces (name -> inode)."""
        by_inode = tier == "gamma"
        prefix = f"{folder}/"
        if listing is None:  # no listing yet: every row of the folder
            known = {p: (m, s, i) for p, m, s, i in self.db.execute(
                "SELECT path, mtime_ns, size, ino FROM files WHERE dir = ?", (folder,))}
        else:  # the listing holds the settled traces; only racy rows are not in it
            known = {p: (m, s, i) for p, m, s, i in self.db.execute(
                "SELECT path, mtime_ns, size, ino FROM files WHERE dir = ? AND mtime_ns = -1",
                (folder,))}
        settled: dict[str, int] | None = {} if by_inode else None
        clean = True
        seen = set()
        for entry in _scan(self.root / folder):
            name = entry.name
            if listing is not None and listing.get(name) == entry.inode():
                settled[name] = listing[name]
                continue
            rel = prefix + name
            seen.add(rel)
            had = known.get(rel)
            if had is None and listing is not None:
                had = self.db.execute("SELECT mtime_ns, size, ino FROM files WHERE path = ?",
                                      (rel,)).fetchone()
            if by_inode and had is not None and had[0] != -1 and had[2] == entry.inode():
                settled[name] = had[2]
                continue
            st = entry.stat()
            is_racy = now - st.st_mtime_ns <= racy
            if had is None or tuple(had[:2]) != (st.st_mtime_ns, st.st_size):
                clean = clean and not is_racy
                changes.append(("file", rel, tier, project, folder, st.st_mtime_ns,
                                st.st_size, is_racy, st.st_ino))
            if settled is not None and not is_racy:
                settled[name] = st.st_ino
        if listing is not None:
            changes += [("gone", prefix + n) for n in listing if n not in settled
                        and prefix + n not in seen]
        changes += [("gone", rel) for rel in known if rel not in seen]
        return clean, settled

    def _system_changes(self, now: int, racy: int) -> list[tuple]:
        changes: list[tuple] = []
        known = {p: (m, s) for p, m, s, _i in self.db.execute(
            "SELECT path, mtime_ns, size, ino FROM files WHERE dir = 'system'")}
        for rel, tier in SYSTEM_FILES.items():
            try:
                st = os.stat(self.root / rel)
            except OSError:
                if rel in known:
                    changes.append(("gone", rel))
                continue
            if known.get(rel) != (st.st_mtime_ns, st.st_size):
                changes.append(("file", rel, tier, "", "system", st.st_mtime_ns, st.st_size,
                                now - st.st_mtime_ns <= racy, st.st_ino))
        return changes

    def _apply(self, changes: list[tuple],
               dir_updates: dict[str, tuple[int | None, bytes | None] | None]) -> None:
        parsed = []
        for change in changes:
            if change[0] != "file":
                continue
            _, rel, tier, project, folder, mtime, size, is_racy, ino = change
            try:
                docs = _docs_for(self.root / rel, tier, rel)
            except (TraceError, OSError, ValueError, TypeError):
                docs = []  # unreadable: indexed as empty until it changes
            parsed.append((rel, tier, project, folder, -1 if is_racy else mtime, size, ino,
                           docs))
        db = self.db
        goals: Counter = Counter()  # (project, signature) -> change in learned traces
        n_docs, total_len = 0, 0
        db.execute("BEGIN IMMEDIATE")
        try:
            for change in changes:
                n, length = self._forget(change[1], goals)
                n_docs, total_len = n_docs - n, total_len - length
            for rel, tier, project, folder, mtime, size, ino, docs in parsed:
                db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)",
                           (rel, folder, mtime, size, ino))
                for doc in docs:
                    cur = db.execute(
                        "INSERT INTO docs (path, line, tier, project, kind, title, context, "
                        "signature, status, version, length) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                        (rel, doc.line, tier, project, doc.kind, doc.title, doc.context,
                         doc.signature, doc.status, doc.version, len(doc.words)))
                    db.execute("INSERT INTO words (rowid, body, tier, project) "
                               "VALUES (?, ?, ?, ?)",
                               (cur.lastrowid, " ".join(doc.words), tier, project))
                    n_docs, total_len = n_docs + 1, total_len + len(doc.words)
                    if tier == "beta" and doc.kind == "trace" and doc.signature:
                        goals[(project, doc.signature)] += 1
            for folder, update in dir_updates.items():
                if update is None:
                    db.execute("DELETE FROM dirs WHERE path = ?", (folder,))
                else:
                    db.execute("INSERT OR REPLACE INTO dirs VALUES (?, ?, ?)",
                               (folder, *update))
            self._count_goals(goals)
            db.executemany(
                "INSERT INTO stats VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET "
                "value = value + excluded.value", (("n_docs", n_docs), ("total_len", total_len)))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _count_goals(self, changes: Counter) -> None:
        """Apply changes in the number of learned traces per (project, signature); a signature
        that appears or disappears moves the document frequency of each of its words."""
        db = self.db
        for (project, signature), delta in changes.items():
            if not delta:
                continue
            row = db.execute("SELECT n FROM goals WHERE project = ? AND signature = ?",
                             (project, signature)).fetchone()
            before = row[0] if row else 0
            after = before + delta
            if after > 0:
                db.execute("INSERT OR REPLACE INTO goals VALUES (?, ?, ?)",
                           (project, signature, after))
            else:
                db.execute("DELETE FROM goals WHERE project = ? AND signature = ?",
                           (project, signature))
            step = (after > 0) - (before > 0)
            if step:
                db.executemany(
                    "INSERT INTO goal_df VALUES (?, ?, ?) ON CONFLICT(project, word) DO UPDATE "
                    "SET n = n + excluded.n", [(project, w, step) for w in signature.split()])
        db.execute("DELETE FROM goal_df WHERE n <= 0")

    def _stat(self, key: str) -> float:
        row = self.db.execute("SELECT value FROM stats WHERE key = ?", (key,)).fetchone()
        return row[0] if row else 0.0

    def _forget(self, rel: str, goals: Counter) -> tuple[int, int]:
        """Drop a file's entries; returns how many there were and their total length."""
        db = self.db
        n, total = 0, 0
        for project, tier, kind, signature, length in db.execute(
                "SELECT project, tier, kind, signature, length FROM docs WHERE path = ?", (rel,)):
            n, total = n + 1, total + length
            if tier == "beta" and kind == "trace" and signature:
                goals[(project, signature)] -= 1
        if n:
            db.execute("DELETE FROM words WHERE rowid IN (SELECT id FROM docs WHERE path = ?)",
                       (rel,))
            db.execute("DELETE FROM docs WHERE path = ?", (rel,))
        db.execute("DELETE FROM files WHERE path = ?", (rel,))
        return n, total

    def rebuild(self) -> int:
        self.db.execute("BEGIN IMMEDIATE")
        for table in ("dirs", "files", "docs", "words", "goals", "goal_df", "stats"):
            self.db.execute(f"DELETE FROM {table}")
        self.db.execute("COMMIT")
        return self.refresh()

    # ------------------------------------------------------------ queries

    def search(self, query: str, *, project: str | None = None, limit: int = 10,
               tiers: tuple[str, ...] | None = None) -> list[Hit]:
        """Entries of every tier ranked by FTS5's bm25() against `query`, each score divided by
        the query's own (best_score), so 1.0 means the entry covers the whole query. With
        `project`, that project's entries and the system-wide ones."""
        self.refresh()
        q = Counter(terms(query))
        if not q:
            return []
        marks = ",".join("?" * len(q))
        df = dict(self.db.execute(f"SELECT term, doc FROM vocab WHERE term IN ({marks})",
                                  tuple(q)))
        if not df:
            return []
        n_docs = int(self._stat("n_docs"))
        avgdl = self._stat("total_len") / n_docs if n_docs else 1.0
        best = best_score(q, df, n_docs, avgdl)
        where, args = "words MATCH ?", [" OR ".join(f'"{t}"' for t in df)]
        if project is not None:
            where += " AND project IN (?, '')"
            args.append(project)
        if tiers:
            where += f" AND tier IN ({','.join('?' * len(tiers))})"
            args += list(tiers)
        rows = self.db.execute(
            f"SELECT rowid, -bm25(words) AS s FROM words WHERE {where} ORDER BY s DESC, rowid "
            "LIMIT ?", (*args, limit * 4)).fetchall()
        scores = {doc: min(1.0, s / best) for doc, s in rows}
        hits = [Hit(r[3], round(scores[r[0]], 4), r[1], r[2], r[5], r[4], r[6], r[7])
                for r in self._rows(list(scores))]
        hits.sort(key=lambda h: (-h.score, TIER_ORDER.get(h.tier, 9), h.path, h.line))
        return hits[:limit]

    def _rows(self, ids: list[int]):
        out = []
        for start in range(0, len(ids), 900):
            chunk = ids[start:start + 900]
            out += self.db.execute(
                "SELECT id, path, line, tier, project, kind, title, context FROM docs "
                f"WHERE id IN ({','.join('?' * len(chunk))})", chunk).fetchall()
        return out

    def goal_candidates(self, project: str, goal: str) -> list[tuple[float, bool, str]]:
        """(score, exact, path) of the project's learned traces for `goal`, best first: the
        newest non-demoted version of each goal signature; an exact signature scores 1.0,
        others the similarity of the two signatures' words (text.similarity, counted over the
        project's learned goals), at most 0.99. Reads only the project's long_term/ folder."""
        self.refresh([w for w in self._watched() if w[1] == "beta" and w[2] == project])
        best: dict[str, tuple[int, str]] = {}  # signature -> (version, path)
        for path, signature, version in self.db.execute(
            "SELECT path, signature, version FROM docs WHERE tier = 'beta' AND "
            "kind = 'trace' AND project = ? AND status != 'demoted'", (project,)
        ):
            if signature not in best or (version, path) > best[signature]:
                best[signature] = (version, path)
        wanted = goal_signature(goal)
        out = [(1.0, True, best[wanted][1])] if wanted in best else []
        query = set(wanted.split())
        related = [sig for sig in best if sig != wanted and query & set(sig.split())]
        if related:
            words = sorted(query.union(*(sig.split() for sig in related)))
            df: dict[str, int] = {}
            for start in range(0, len(words), 900):
                chunk = words[start:start + 900]
                df.update(self.db.execute(
                    "SELECT word, n FROM goal_df WHERE project = ? AND word IN "
                    f"({','.join('?' * len(chunk))})", (project, *chunk)))
            n_goals = self.db.execute("SELECT COUNT(*) FROM goals WHERE project = ?",
                                      (project,)).fetchone()[0]
            for sig in related:
                score = similarity(query, sig.split(), df, n_goals)
                if score > 0:
                    out.append((min(round(score, 4), 0.99), False, best[sig][1]))
        out.sort(key=lambda m: (-m[0], not m[1], m[2]))
        return out


def _listing(blob: bytes | None) -> dict[str, int] | None:
    """A folder's stored listing (name -> inode), None when absent or unreadable."""
    if not blob:
        return None
    try:
        listing = marshal.loads(blob)
    except (EOFError, ValueError, TypeError):
        return None
    return listing if isinstance(listing, dict) else None


def _scan(folder: Path):
    try:
        with os.scandir(folder) as it:
            return [e for e in it if e.name.endswith(".md") and not e.name.startswith(".")
                    and e.is_file()]
    except OSError:
        return []


def _project_name(ws: Workspace, project: Project | str | None) -> str:
    if isinstance(project, Project):
        return project.name
    return project or ws.config.run.project


def search(ws: Workspace, query: str, *, project: str | None = None, limit: int = 10,
           reindex: bool = False) -> list[Hit]:
    """Rank memory entries of every tier against `query` (see MemoryIndex.search). `reindex`
    rebuilds the index first (for memory files edited in place, which no folder mtime shows)."""
    with MemoryIndex(ws) as index:
        if reindex:
            index.rebuild()
        return index.search(query, project=project, limit=limit)


def match_goal(ws: Workspace, project: Project | str | None, goal: str,
               limit: int = 5, skipped: list | None = None) -> list[Match]:
    """The project's learned traces that fit `goal`, best first. score: 1.0 when the goal's
    normalized signature equals the trace's; else the normalized BM25 similarity of the goals
    (0..0.99). Demoted traces and superseded versions are left out."""
    name = _project_name(ws, project)
    with MemoryIndex(ws) as index:
        found = index.goal_candidates(name, goal)
    matches = []
    for score, exact, rel in found:
        if len(matches) >= limit:
            break
        path = ws.root / rel
        try:
            trace = load_long_term(path)
        except TraceError as exc:
            if skipped is not None:  # the caller says so: a broken file is never silent
                skipped.append(exc)
            continue
        if trace.demoted:  # the index can lag a demotion made this very second
            continue
        matches.append(Match(score, trace, path, exact))
    return matches
