"""Reports as plain data, for `--json` output and the printers in ui.py. No rich here: the JSON
paths stay light."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from llmunix.workspace.layout import relative_path as _rel


def print_json(data: Any) -> None:
    """Indented for a person at a terminal; one line for a program (json's C encoder only
    serves unindented output: 10x faster over thousands of specs). Reports are trees of fresh
    dicts and lists, never a cycle: no need to track every container to look for one."""
    indent = 2 if sys.stdout.isatty() else None
    sys.stdout.write(json.dumps(data, indent=indent, default=str, check_circular=False) + "\n")


def agent_to_dict(a, root: Path) -> dict[str, Any]:
    from llmunix.specs.models import settings_shown  # loaded already wherever there are agents

    return {
        "name": a.name,
        "description": a.description,
        "scope": a.scope,
        "dialect": a.dialect,
        "model": a.model,
        "tools": list(a.tools) if a.tools is not None else None,
        "disallowed_tools": list(a.disallowed_tools),
        "settings": settings_shown(a),
        "path": _rel(a.path, root),
        "hash": a.content_hash,
    }


def tool_to_dict(t, root: Path) -> dict[str, Any]:
    return {
        "name": t.name,
        "description": t.description,
        "scope": t.scope,
        "kind": t.kind,
        "input_schema": t.input_schema,
        "timeout_s": t.timeout_s,
        "path": _rel(t.path, root),
        "hash": t.content_hash,
    }


def boot_to_dict(report) -> dict[str, Any]:
    reg = report.registry
    root = reg.workspace.root
    return {
        "workspace": str(root),
        "ok": report.ok,
        "agents": [agent_to_dict(a, root) for a in reg.agents.values()],
        "tools": [tool_to_dict(t, root) for t in reg.tools.values()],
        "skills": [{"name": s.name, "scope": s.scope, "path": _rel(s.path, root),
                    "description": s.description,
                    "allowed_tools": list(s.allowed_tools) if s.allowed_tools is not None
                    else None} for s in reg.skills.values()],
        "commands": [{"name": c.name, "scope": c.scope, "path": _rel(c.path, root),
                      "description": c.description, "argument_hint": c.argument_hint}
                     for c in reg.commands.values()],
        "projects": {
            name: {
                "agents": [a.name for a in p.agents.values() if a.scope.startswith("project:")],
                "tools": [t.name for t in p.tools.values() if t.scope.startswith("project:")],
                "memory": memory_counts(p.project),
            }
            for name, p in report.projects.items()
        },
        "overrides": [
            {
                "kind": o.kind,
                "name": o.name,
                "winner": _rel(o.winner, root),
                "winner_scope": o.winner_scope,
                "overridden": _rel(o.loser, root),
                "overridden_scope": o.loser_scope,
            }
            for o in all_overrides(report)
        ],
        "diagnostics": [d.to_dict() for d in report.diagnostics],
    }


def all_overrides(report):
    seen = {}
    for reg in (report.registry, *report.projects.values()):
        for o in reg.overrides:
            seen.setdefault((o.kind, o.name, str(o.winner)), o)
    return list(seen.values())


def memory_counts(project) -> dict[str, int]:
    def count(folder: Path) -> int:
        return sum(1 for _ in folder.glob("*.md")) if folder.is_dir() else 0

    return {"short_term": count(project.short_term_dir), "long_term": count(project.long_term_dir)}
