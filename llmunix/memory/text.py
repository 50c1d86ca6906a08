"""Words of a goal: the normalized goal signature, search terms, and a small BM25.

Goal signature (exact matching): the goal lowercased; split into word tokens, where a token may
keep inner `.`, `/`, `-` between word characters so file names and paths stay whole
(`notes/a.txt`, `v1.2`, `re-run`); all other punctuation dropped; English function words
(STOPWORDS: articles, prepositions, pronouns, auxiliaries, "please"...) removed; the remaining
tokens de-duplicated, sorted and joined by one space. "Please write a haiku about the sea to
haiku.md!" and "write haiku.md: a haiku about the sea" both give "haiku haiku.md sea write".
Words that change what a goal does ("not", "all", numbers, file names) are kept on purpose: two
goals with the same signature are treated as the same goal and may be replayed for each other.

Search terms: the signature's tokens (with repeats) plus the parts of compound tokens
(`haiku.md` -> `haiku`, `md`), so "haiku" finds a goal that names `haiku.md`.

Scores: BM25 (k1 = 1.2, b = 0.75).
- search (SQLite FTS5's bm25() in index.MemoryIndex.search, idf = ln((N - n + 0.5) / (n + 0.5)),
  at least 1e-6): an entry's score divided by the score the query would get against an entry
  made of exactly its own terms (`best_score`), clamped to 1: "how much of the query this
  entry covers".
- goal matching (`similarity`, idf = ln(1 + (N - n + 0.5) / (n + 0.5))), over the words of
  the two goal signatures, with b = 0 (no length normalization; a word counts once, so each
  word scores its idf): score(q, d) / sqrt(self(q) * self(d)), where self(x) is x scored
  against itself. Symmetric, so a learned goal that does more than asked ("... and commit it")
  is penalized as much as a query that asks for more. N and document frequencies count the
  distinct goal signatures of the project's learned traces (repeated runs of one goal do not
  make its words look common) plus BACKGROUND_GOALS imaginary goals sharing no word, so a
  workspace with few learned goals still weighs words sensibly: one extra word on either side
  of three or four shared ones gives 0.83-0.87, two about 0.76 (mixed with the default
  thresholds, never follower).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable

K1 = 1.2
B = 0.75
BACKGROUND_GOALS = 10

_STOPWORD_TEXT = """
    a an the and or but if then so as
    of to in on at by for with from into onto about over under via per
    is are was were be been being am do does did doing done have has had having
    it its this that these those there here
    i me my mine we us our you your he him his she her they them their
    can could would should will shall may might must
    please kindly just also
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())

_TOKEN = re.compile(r"\w+(?:[./-]\w+)*")
_PARTS = re.compile(r"[./_-]+")


def tokens(text: str) -> list[str]:
    """Word tokens of `text`, lowercased, without stopwords, in order (repeats kept)."""
    return [t for t in _TOKEN.findall(text.lower()) if t not in STOPWORDS and t.strip("_")]


def goal_signature(goal: str) -> str:
    """The normalized signature of a goal (see the module docstring)."""
    return " ".join(sorted(set(tokens(goal))))


def terms(text: str) -> list[str]:
    """Search terms: tokens plus the parts of compound tokens."""
    out: list[str] = []
    for tok in tokens(text):
        out.append(tok)
        if _PARTS.search(tok):
            out.extend(p for p in _PARTS.split(tok) if p and p not in STOPWORDS and p != tok)
    return out


def idf(n_docs: int, df: int) -> float:
    return math.log(1 + (n_docs - df + 0.5) / (df + 0.5))


def fts5_idf(n_docs: int, df: int) -> float:
    """The idf of SQLite FTS5's bm25(): a term in more than half the entries weighs ~0."""
    value = math.log((n_docs - df + 0.5) / (df + 0.5)) if n_docs else 0.0
    return value if value > 0 else 1e-6


def best_score(query: Counter, df: dict[str, int], n_docs: int, avgdl: float) -> float:
    """What bm25() gives an entry made of exactly the query's terms (the query's own score)."""
    length = sum(query.values())
    return sum(fts5_idf(n_docs, df.get(t, 0)) * tf * (K1 + 1)
               / (tf + K1 * (1 - B + B * length / avgdl)) for t, tf in query.items())


def similarity(query: Iterable[str], doc: Iterable[str], df: dict[str, int],
               n_docs: int) -> float:
    """Symmetric normalized BM25 of two goals' word sets (0..1; see the module docstring).
    `df`/`n_docs` are counted in distinct goals; BACKGROUND_GOALS is added here."""
    q, d = set(query), set(doc)
    n = n_docs + BACKGROUND_GOALS

    def weight(words: set[str]) -> float:
        return sum(idf(n, df.get(t, 0)) for t in words)

    norm = math.sqrt(weight(q) * weight(d))
    return min(1.0, weight(q & d) / norm) if norm > 0 else 0.0
