"""Continuum memory: short-term traces (gamma), learned long-term traces (beta), the memory log
(alpha) and the SmartLibrary (delta); consolidation between them, search across them, and
matching a goal to what was learned."""

from __future__ import annotations

from llmunix.memory.consolidation import ConsolidationReport, consolidate, maybe_auto_consolidate
from llmunix.memory.index import Hit, Match, MemoryIndex, match_goal, search
from llmunix.memory.longterm import (
    DEMOTE_AFTER,
    LongTermStep,
    LongTermTrace,
    load_long_term,
    record_use,
)
from llmunix.memory.text import goal_signature

__all__ = [
    "DEMOTE_AFTER",
    "ConsolidationReport",
    "Hit",
    "LongTermStep",
    "LongTermTrace",
    "Match",
    "MemoryIndex",
    "consolidate",
    "goal_signature",
    "load_long_term",
    "match_goal",
    "maybe_auto_consolidate",
    "record_use",
    "search",
]
