"""Continuum memory: short-term traces (gamma), learned long-term traces (beta), the memory log
(alpha) and the SmartLibrary (delta); consolidation between them, search across them, and
matching a goal to what was learned.

Names are imported on first use (PEP 562), so reading one learned trace does not load the
search index or consolidation code. May import tools/, trace/, specs/ and lower layers; running a
goal (consolidate --summarize) is handed in from run/.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "ConsolidationReport": "consolidation",
    "consolidate": "consolidation",
    "maybe_auto_consolidate": "consolidation",
    "Hit": "index",
    "Match": "index",
    "MemoryIndex": "index",
    "match_goal": "index",
    "search": "index",
    "DEMOTE_AFTER": "longterm",
    "LongTermStep": "longterm",
    "LongTermTrace": "longterm",
    "load_long_term": "learned_file",
    "record_use": "longterm",
    "goal_signature": "text",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'llmunix.memory' has no attribute {name!r}")
    return getattr(importlib.import_module(f"llmunix.memory.{home}"), name)
