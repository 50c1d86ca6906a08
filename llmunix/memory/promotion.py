"""beta -> alpha: a goal learned in enough projects is appended once to system/memory_log.md."""

from __future__ import annotations

from datetime import datetime, timezone

from llmunix.errors import TraceError
from llmunix.memory import learned_file as lf
from llmunix.memory import longterm as lt
from llmunix.specs.frontmatter import (
    atomic_write,
)
from llmunix.workspace.layout import Workspace

# ---------------------------------------------------------------- beta -> alpha


ALPHA_PROJECTS = 2  # projects a goal must be learned in to be promoted


def promote(ws: Workspace, promoted: list[str]) -> None:
    """Append the newly proven goals to the memory log; their headings go to `promoted`."""
    by_signature: dict[str, dict[str, list[lt.LearnedFile]]] = {}
    for proj in ws.projects():
        for f in lt.learned_files(proj.long_term_dir):
            if f.meta.get("status") == "demoted" or int(f.meta.get("success_count", 0)) < 1:
                continue
            by_signature.setdefault(f.signature, {}).setdefault(proj.name, []).append(f)
    proven = {s: p for s, p in by_signature.items() if len(p) >= ALPHA_PROJECTS}
    if not proven:
        return
    path = ws.memory_log_path
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = "# Memory log (alpha tier)\n\n## Entries\n"
    entries = []
    for signature in sorted(proven):
        if f"(signature: {signature})" in text:
            continue
        entries.append(_alpha_entry(signature, proven[signature]))
        promoted.append(entries[-1].split("\n", 1)[0][3:])
    if not entries:
        return
    text = text.replace("\n_None yet._\n", "\n", 1).rstrip("\n") + "\n\n" + "\n\n".join(entries)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text + "\n", ws.root)


def _alpha_entry(signature: str, projects: dict[str, list[lt.LearnedFile]]) -> str:
    files = [f for name in sorted(projects) for f in projects[name]]
    best = max(files, key=lambda f: (int(f.meta.get("success_count", 0)), f.version))
    goal = " ".join(str(best.meta.get("goal", "")).split())
    heading = " ".join(goal.split()[:10])
    try:
        tools = [s.tool for s in lf.load_long_term(best.path).steps if s.kind == "tool"]
    except TraceError:
        tools = list(best.meta.get("metadata", {}).get("tools", []))
    chain = " → ".join(tools[:8]) + (" → …" if len(tools) > 8 else "")
    successes = sum(int(f.meta.get("success_count", 0)) for f in files)
    uses = sum(int(f.meta.get("usage_count", 0)) for f in files)
    score = 0.99 if successes >= 20 and uses and successes / uses >= 0.95 else 0.9
    goal_text = goal if len(goal) <= 120 else goal[:119] + "…"
    return "\n".join([
        f"## {heading}",
        f"- pattern: when a goal reads like \"{goal_text}\" (signature: {signature}), replay "
        f"its learned steps: {chain}",
        f"- evidence: traces {', '.join(f.path.stem for f in files)}; "
        f"projects {', '.join(sorted(projects))}",
        f"- confidence: {score}",
        f"- added: {datetime.now(timezone.utc).strftime('%Y-%m-%d')}",
        "- supersedes: none",
    ])
