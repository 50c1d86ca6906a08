"""One self-contained HTML page per run, and an index of runs. Everything is inline (styles, a
few lines of script, no fonts or images): the page works from a file, offline, and a Content
Security Policy forbids it any request at all."""

from __future__ import annotations

from html import escape
from typing import Any

from llmunix.viewer.model import RunView

CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
       "img-src data:; base-uri 'none'; form-action 'none'")
MAX_SHOWN = 20_000  # characters of one input or result in the page; the trace has the rest

STYLE = """
:root{--fg:#1d232b;--dim:#66707c;--line:#dde2e8;--bg:#fff;--ok:#2f8f46;--err:#c4352b;
--deny:#b23ab0;--warn:#b7791f;--bar:#4a7fd0;--sub:#f4f6fa}
*{box-sizing:border-box}body{font:14px/1.45 system-ui,sans-serif;color:var(--fg);
background:var(--bg);margin:0;padding:20px 28px}h1{font-size:20px;margin:0 0 4px}
h2{font-size:15px;margin:22px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}
.dim{color:var(--dim)}.meta{display:flex;flex-wrap:wrap;gap:6px 18px;margin:8px 0}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-weight:600}
.s-success{background:var(--ok)}.s-error{background:var(--err)}.s-stopped{background:var(--warn)}
.s-interrupted{background:var(--warn)}.s-running{background:var(--dim)}.s-unknown{background:#888}
table{border-collapse:collapse;width:100%;margin:4px 0}td,th{border-bottom:1px solid var(--line);
padding:3px 8px;text-align:left;vertical-align:top}th{font-weight:600;background:var(--sub)}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.tl{position:relative;height:14px;background:var(--sub);border-radius:3px;min-width:120px}
.tl span{position:absolute;top:2px;height:10px;border-radius:2px;background:var(--bar);
min-width:2px}.tl .error span,.tl span.error{background:var(--err)}
.tl span.denied{background:var(--deny)}.tl span.interrupted{background:var(--warn)}
.tl span.mark{background:var(--dim);width:2px}
.k-ok{color:var(--ok)}.k-error,.k-interrupted{color:var(--err)}.k-denied{color:var(--deny)}
details{margin:0}summary{cursor:pointer}pre{background:var(--sub);padding:6px 8px;
border-radius:4px;white-space:pre-wrap;word-break:break-word;margin:4px 0;max-height:360px;
overflow:auto;font:12px/1.4 ui-monospace,monospace}
.step td:first-child{color:var(--dim);width:3em}.indent{display:inline-block}
input[type=search]{padding:4px 8px;width:22em}select{padding:3px}
.decision{background:var(--sub);padding:8px 12px;border-radius:4px}
"""

FILTER_SCRIPT = """
(function(){var q=document.getElementById('q'),s=document.getElementById('status'),
rows=document.querySelectorAll('tbody.runs tr');function f(){var t=q.value.toLowerCase(),
v=s.value,n=0;rows.forEach(function(r){var ok=(!t||r.textContent.toLowerCase().indexOf(t)>=0)
&&(!v||r.dataset.status===v);r.style.display=ok?'':'none';n+=ok?1:0;});
document.getElementById('shown').textContent=n;}
var h=new URLSearchParams(location.hash.slice(1));q.value=h.get('q')||'';
s.value=h.get('status')||'';q.addEventListener('input',f);s.addEventListener('change',f);f();})();
"""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _cut(text: str) -> str:
    if len(text) <= MAX_SHOWN:
        return text
    return text[:MAX_SHOWN] + f"\n[... {len(text) - MAX_SHOWN:,} more characters in the trace]"


def _money(value: Any) -> str:
    try:
        return f"${float(value or 0):.4f}"
    except (TypeError, ValueError):
        return "$0.0000"


def _int(value: Any) -> str:
    try:
        return f"{int(value or 0):,}"
    except (TypeError, ValueError):
        return "0"


def _page(title: str, body: str, script: str = "") -> str:
    tail = f"<script>{script}</script>" if script else ""
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">"
        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
        f"<title>{_e(title)}</title><style>{STYLE}</style></head>\n<body>\n{body}\n{tail}"
        "</body></html>\n"
    )


def _badge(status: str) -> str:
    known = status if status in ("success", "error", "stopped", "interrupted",
                                 "running") else "unknown"
    return f"<span class=\"badge s-{known}\">{_e(status)}</span>"


def _bar(start: float | None, duration: float, total: float, status: str) -> str:
    if start is None or total <= 0:
        return "<div class=\"tl\"></div>"
    left = min(100.0, max(0.0, start / total * 100))
    if duration <= 0:
        return f"<div class=\"tl\"><span class=\"mark\" style=\"left:{left:.2f}%\"></span></div>"
    width = min(100.0 - left, max(0.3, duration / total * 100))
    return (f"<div class=\"tl\"><span class=\"{status}\" style=\"left:{left:.2f}%;"
            f"width:{width:.2f}%\" title=\"{duration:.3f} s\"></span></div>")


def _header(view: RunView) -> str:
    m = view.meta
    facts = [
        ("trace", m.get("trace_id", view.trace.path.stem)), ("project", m.get("project")),
        ("agent", m.get("agent")), ("runtime", m.get("runtime")),
        ("model", m.get("model") or "-"), ("mode", m.get("mode")),
        ("started", m.get("started_at")), ("finished", m.get("finished_at") or "-"),
        ("duration", f"{float(m.get('duration_s') or 0):.2f} s"), ("turns", m.get("turns", 0)),
        ("tokens", f"{_int(m.get('input_tokens'))} in / {_int(m.get('output_tokens'))} out"),
        ("cost", _money(m.get("cost_usd"))), ("llmunix", m.get("llmunix_version", "")),
    ]
    items = "".join(f"<span><span class=\"dim\">{_e(k)}</span> {_e(v)}</span>" for k, v in facts)
    reason = f"<p>{_e(m['reason'])}</p>" if m.get("reason") else ""
    return (f"<h1>{_e(m.get('goal', ''))}</h1><div>{_badge(str(m.get('status', 'unknown')))}"
            f"</div><div class=\"meta\">{items}</div>{reason}")


def _decision(view: RunView) -> str:
    m = view.meta
    decision = m.get("mode_decision")
    parts = []
    if isinstance(decision, dict):
        parts.append(
            f"<p class=\"decision\">mode <b>{_e(decision.get('mode'))}</b> · score "
            f"{_e(decision.get('score'))} · learned trace {_e(decision.get('trace') or '-')}"
            f"<br><span class=\"dim\">{_e(decision.get('reason'))}</span></p>")
    for key in ("source_trace", "example_trace", "fallback_from"):
        if m.get(key):
            parts.append(f"<p><span class=\"dim\">{_e(key)}</span> {_e(m[key])}</p>")
    if not parts:
        return ""
    return "<h2>Mode decision</h2>" + "".join(parts)


def _agents(view: RunView) -> str:
    head = ("<tr><th>agent</th><th class=\"n\">turns</th><th class=\"n\">tool calls</th>"
            "<th class=\"n\">denied</th><th class=\"n\">errors</th><th class=\"n\">tool time</th>"
            "<th class=\"n\">tokens in</th><th class=\"n\">tokens out</th>"
            "<th class=\"n\">cost</th></tr>")
    rows = "".join(
        f"<tr><td>{_e(a.agent)}</td><td class=\"n\">{a.turns}</td>"
        f"<td class=\"n\">{a.tool_calls}</td><td class=\"n\">{a.denied}</td>"
        f"<td class=\"n\">{a.errors}</td><td class=\"n\">{a.tool_time_s:.2f} s</td>"
        f"<td class=\"n\">{a.input_tokens:,}</td><td class=\"n\">{a.output_tokens:,}</td>"
        f"<td class=\"n\">{_money(a.cost_usd)}</td></tr>"
        for a in view.agents.values())
    return f"<h2>Agents</h2><table class=\"agents\">{head}{rows}</table>"


def _step_detail(row) -> str:
    step = row.step
    blocks = step.blocks
    if step.kind == "tool":
        fields = step.fields
        mark = {"ok": "ok", "error": "error", "denied": "denied",
                "interrupted": "interrupted"}[row.status]
        reason = f" — {_e(fields.get('reason'))}" if fields.get("reason") else ""
        summary = (f"<b>{_e(step.tool)}</b> <span class=\"k-{mark}\">{mark}</span>"
                   f"{reason} <span class=\"dim\">{row.duration_s:.3f} s</span>")
        inner = (f"<div class=\"dim\">input</div><pre>{_e(_cut(blocks.get('input', '')))}</pre>"
                 f"<div class=\"dim\">result</div><pre>{_e(_cut(blocks.get('result', '')))}"
                 "</pre>")
        if fields.get("full_result"):
            inner += f"<div class=\"dim\">whole result: {_e(fields['full_result'])}</div>"
        return f"<details><summary>{summary}</summary>{inner}</details>"
    if step.kind == "assistant":
        text = blocks.get("text", "")
        first = " ".join(text.split())[:160]
        return (f"<details><summary>{_e(first)}</summary><pre>{_e(_cut(text))}</pre>"
                "</details>")
    if step.kind == "subagent start":
        prompt = blocks.get("prompt", "")
        return (f"<details><summary>→ delegated to <b>{_e(step.agent)}</b> by "
                f"{_e(step.fields.get('parent'))}</summary><pre>{_e(_cut(prompt))}</pre>"
                "</details>")
    result = blocks.get("result", "")
    return (f"<details><summary>← <b>{_e(step.agent)}</b> finished</summary>"
            f"<pre>{_e(_cut(result))}</pre></details>")


def _turn(step) -> str:
    """The model turn this step began, with its tokens and cost."""
    fields = step.fields
    if "turn" not in fields:
        return ""
    return (f"{_e(fields['turn'])}<div class=\"dim\">{_int(fields.get('input_tokens'))} in / "
            f"{_int(fields.get('output_tokens'))} out<br>{_money(fields.get('cost_usd'))}</div>")


def _timeline(view: RunView) -> str:
    total = view.duration_s
    head = ("<tr><th>#</th><th>kind</th><th>agent</th><th style=\"width:42%\">step</th>"
            "<th class=\"n\">turn</th><th class=\"n\">at</th>"
            "<th style=\"width:18%\">timeline</th></tr>")
    out = []
    for row in view.rows:
        step = row.step
        at = "" if row.start_s is None else f"{row.start_s:.2f} s"
        pad = f"<span class=\"indent\" style=\"width:{row.depth * 1.2:.1f}em\"></span>"
        out.append(
            f"<tr class=\"step k-{_e(step.kind.replace(' ', '-'))}\" "
            f"data-status=\"{row.status}\"><td>{step.number}</td><td>{_e(step.kind)}</td>"
            f"<td>{pad}{_e(step.agent)}</td><td>{_step_detail(row)}</td>"
            f"<td class=\"n\">{_turn(step)}</td><td class=\"n\">{at}</td>"
            f"<td>{_bar(row.start_s, row.duration_s, total, row.status)}</td></tr>")
    return (f"<h2>Steps <span class=\"dim\">({len(view.rows)})</span></h2>"
            f"<table class=\"steps\">{head}{''.join(out)}</table>")


def _specs(view: RunView) -> str:
    specs = view.meta.get("specs") or {}
    if not specs and not view.specs_used:
        return ""
    rows = "".join(
        f"<tr><td>{_e(name)}</td><td><code>{_e(digest)}</code></td>"
        f"<td>{'used' if name in view.specs_used else ''}</td></tr>"
        for name, digest in sorted({**specs, **view.specs_used}.items()))
    return ("<h2>Spec versions</h2><table class=\"specs\"><tr><th>spec</th><th>content hash</th>"
            f"<th></th></tr>{rows}</table>")


def render_run(view: RunView) -> str:
    result = view.trace.result
    body = "".join([
        _header(view), _decision(view), _agents(view), _timeline(view),
        f"<h2>Result</h2><pre class=\"result\">{_e(_cut(result) or '(no result)')}</pre>",
        _specs(view),
        f"<p class=\"dim\">trace file: {_e(view.trace.path)}</p>",
    ])
    return _page(f"llmunix · {view.meta.get('goal', view.trace.path.stem)}", body)


def render_index(runs: list[dict[str, Any]], title: str = "llmunix runs") -> str:
    """`runs`: one dict per run (trace_id, goal, project, status, mode, runtime, model,
    started_at, duration_s, turns, input_tokens, output_tokens, cost_usd, href)."""
    statuses = sorted({str(r.get("status", "")) for r in runs})
    options = "".join(f"<option value=\"{_e(s)}\">{_e(s)}</option>" for s in statuses)
    head = ("<tr><th>started</th><th>goal</th><th>project</th><th>status</th><th>mode</th>"
            "<th>runtime</th><th>model</th><th class=\"n\">turns</th><th class=\"n\">tokens</th>"
            "<th class=\"n\">cost</th><th class=\"n\">duration</th></tr>")
    rows = []
    for r in runs:
        link = (f"<a href=\"{_e(r['href'])}\">{_e(r.get('goal'))}</a>" if r.get("href")
                else _e(r.get("goal")))
        tokens = f"{_int(r.get('input_tokens'))} / {_int(r.get('output_tokens'))}"
        rows.append(
            f"<tr data-status=\"{_e(r.get('status'))}\"><td>{_e(r.get('started_at'))}</td>"
            f"<td>{link}<div class=\"dim\">{_e(r.get('trace_id'))}</div></td>"
            f"<td>{_e(r.get('project'))}</td><td>{_badge(str(r.get('status', 'unknown')))}</td>"
            f"<td>{_e(r.get('mode'))}</td><td>{_e(r.get('runtime'))}</td>"
            f"<td>{_e(r.get('model') or '-')}</td><td class=\"n\">{_int(r.get('turns'))}</td>"
            f"<td class=\"n\">{tokens}</td><td class=\"n\">{_money(r.get('cost_usd'))}</td>"
            f"<td class=\"n\">{float(r.get('duration_s') or 0):.2f} s</td></tr>")
    body = (
        f"<h1>{_e(title)}</h1><p><input type=\"search\" id=\"q\" placeholder=\"filter: goal, "
        f"project, model, trace id\"> <select id=\"status\"><option value=\"\">any status</option>"
        f"{options}</select> <span class=\"dim\"><span id=\"shown\">{len(runs)}</span> of "
        f"{len(runs)} runs</span></p><table class=\"index\">{head}<tbody class=\"runs\">"
        f"{''.join(rows)}</tbody></table>"
    )
    return _page(title, body, FILTER_SCRIPT)


def run_summary(meta: dict[str, Any]) -> dict[str, Any]:
    """The index row of one trace's frontmatter."""
    keys = ("trace_id", "goal", "project", "status", "mode", "runtime", "model", "started_at",
            "duration_s", "turns", "input_tokens", "output_tokens", "cost_usd")
    return {k: meta.get(k) for k in keys}

