"""Terminal output of the memory commands (`llmunix log`, `llmunix memory ...`), on the CLI's
consoles from llmunix.ui. Only the CLI calls these."""

from __future__ import annotations

import sys

from llmunix.cli.report import print_json


def _out():
    """The terminal console (rich), loaded by the views that style their output."""
    from llmunix.cli.ui import out

    return out


def _money(cost: float | None) -> str:
    return "-" if cost is None else f"${cost:.4f}"


def _tokens(r) -> str:
    if r.input_tokens is None:
        return "-"
    return f"{r.input_tokens:,}/{r.output_tokens:,}"


def _duration(r) -> str:
    return "-" if r.duration_s is None else f"{r.duration_s:.1f}s"


LOG_COLUMNS = ("date", "trace", "status", "mode", "model", "tokens", "time", "cost", "goal")


def _log_row(r) -> list[str]:
    status = r.status + (f" (reverted {r.reverted_by[:8]})" if r.reverted_by else "")
    return [r.date.replace("T", " ")[:19], r.trace_id, status, r.mode or "-", r.model or "-",
            _tokens(r), _duration(r), _money(r.cost_usd), " ".join(r.goal.split())]


def print_runs(runs, as_json: bool) -> None:
    if as_json:
        print_json([r.to_dict() for r in runs])
        return
    out = _out()
    if not runs:
        out.print("no runs in the git history yet")
        return
    rows = [_log_row(r) for r in runs]
    if not out.is_terminal:
        # Piped: one run per line, columns aligned, nothing wrapped or cut (ids stay whole).
        widths = [max(len(c), *(len(row[i]) for row in rows))
                  for i, c in enumerate(LOG_COLUMNS[:-1])]
        for row in [list(LOG_COLUMNS), *rows]:
            cells = [cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)] + [row[-1]]
            sys.stdout.write("  ".join(cells).rstrip() + "\n")
        return
    from rich.table import Table

    table = Table(title="Runs", title_justify="left")
    for col in LOG_COLUMNS:
        table.add_column(col, no_wrap=col != "goal", overflow="fold" if col == "goal" else
                         "ellipsis", justify="right" if col in ("tokens", "time", "cost")
                         else "left")
    for row in rows:
        table.add_row(*row)
    out.print(table)


def print_more_runs(shown: int) -> None:
    """On stderr, so piped and JSON output stay the runs alone."""
    from llmunix.cli.ui import err

    err.print(f"the {shown} most recent runs; older ones: `llmunix log --all` or `-n N`")


def print_consolidation(report, as_json: bool) -> None:
    if as_json:
        print_json(report.to_dict())
        return
    lines = [f"{report.message} ({report.distilled} successful run(s) distilled from "
             f"{report.considered} short-term trace(s), {report.read} read)"]
    lines += [f"  new      {rel}" for rel in report.new]
    lines += [f"  updated  {rel}" for rel in report.updated]
    lines += [f"  promoted to system/memory_log.md: {h}" for h in report.promoted]
    if report.pruned:
        lines.append(f"  pruned   {len(report.pruned)} short-term trace(s) (kept in git history)")
    if report.library_updated:
        lines.append("  system/SmartLibrary.md updated")
    for s in report.summaries:
        where = s["learnings"] or "no learnings written"
        lines.append(f"  summary  {s['project']}: run {s['trace_id']} {s['status']}, {where}")
    lines.append(f"  git: {report.commit[:10]}" if report.commit else "  git: nothing to commit")
    sys.stdout.write("\n".join(lines) + "\n")  # plain lines: no rich to load for them


def print_hits(hits, as_json: bool) -> None:
    if as_json:
        print_json([h.to_dict() for h in hits])
        return
    out = _out()
    if not hits:
        out.print("no match in memory")
        return
    for h in hits:
        where = h.path if h.line <= 1 else f"{h.path}:{h.line}"
        out.print(f"{h.tier:<5}  {h.score:.3f}  {where}", markup=False, soft_wrap=True)
        out.print(f"       {h.context}", markup=False, style="dim", soft_wrap=True)


def print_text(text: str) -> None:
    if text:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def print_revert(run, sha: str) -> None:
    out = _out()
    out.print(f"reverted run {run.trace_id} ({run.sha[:10]}): {run.goal}", markup=False,
              soft_wrap=True)
    out.print(f"  git: {sha[:10]}")


def print_core(blocks, limit_tokens: int, as_json: bool) -> None:
    if as_json:
        print_json([{"scope": b.scope, "path": b.rel, "tokens": b.tokens, "limit": limit_tokens,
                     "sections": {s.name: s.body for s in b.sections}} for b in blocks])
        return
    out = _out()
    for block in blocks:
        out.print(f"{block.rel} · {block.scope} · {block.tokens:,} of {limit_tokens:,} tokens",
                  markup=False, style="bold", soft_wrap=True)
        if block.empty:
            out.print("  (empty: agents add to it with MemoryWrite)", markup=False, style="dim")
            continue
        for section in block.sections:
            out.print(f"## {section.name}", markup=False, soft_wrap=True)
            out.print(section.body, markup=False, soft_wrap=True)
