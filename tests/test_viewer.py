"""Looking at a run: `llmunix trace show` in the terminal and `llmunix trace html` in a real
browser (headless Chromium): what the page renders, that it is a real picture, that it makes no
request, and the index of runs with its filters."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from llmunix.run import runner
from llmunix.trace.markdown import find_traces, read_trace
from tests import browser
from tests.scripted.openai_server import reply, text, tool_call
from tests.support import agent_text, new_workspace, require, run_cli, write_spec

BOSS = "You are the boss. BOSS-MARKER."
WRITER = "You are the writer. WRITER-MARKER."


def needs_chromium() -> None:
    require("chromium", browser.available(), "apt-get install chromium")


def run_delegating_goal(ws, server, goal: str) -> Path:
    """A learner run on the openai runtime with a read, a refused write, a delegation to a
    sub-agent that writes a file, and token usage on every turn."""
    server.enqueue(
        reply(tool_call("Read", {"file_path": "notes.md"}),
              usage={"prompt_tokens": 120, "completion_tokens": 11}),
        reply(text("Writing outside is refused."), tool_call(
            "Write", {"file_path": "../outside.txt", "content": "x"}),
            usage={"prompt_tokens": 150, "completion_tokens": 12}),
        reply(tool_call("Agent", {"subagent_type": "writer", "prompt": "write out.md"}),
              usage={"prompt_tokens": 180, "completion_tokens": 13}),
        reply(text("All done: out.md written."),
              usage={"prompt_tokens": 260, "completion_tokens": 14}),
    )
    server.enqueue(reply(tool_call("Write", {"file_path": "out.md", "content": "# Out\n"}),
                         usage={"prompt_tokens": 90, "completion_tokens": 9}),
                   when="WRITER-MARKER")
    server.enqueue(reply(text("out.md is written"),
                         usage={"prompt_tokens": 95, "completion_tokens": 7}),
                   when="WRITER-MARKER")
    request = runner.RunRequest(goal=goal, agent="boss", runtime="openai", model="tiny-model",
                                runtime_options={"base_url": server.url})
    outcome = runner.run_goal(ws, request, lambda event: None)
    assert outcome.status == "success", outcome.reason
    return Path(outcome.trace_path)


@pytest.fixture()
def ws(tmp_path):
    base = new_workspace(tmp_path / "ws")
    base.config_path.write_text('[memory]\ncommit = false\n', encoding="utf-8")
    project = base.ensure_project("default")
    write_spec(project.agents_dir, "boss.md", agent_text("boss", tools="Agent, Read, Write",
                                                        body=BOSS))
    write_spec(project.agents_dir, "writer.md", agent_text("writer", tools="Write",
                                                          body=WRITER))
    (project.workspace_dir / "notes.md").write_text("notes\n", encoding="utf-8")
    return base


@pytest.fixture()
def traced(ws, openai_server):
    return run_delegating_goal(ws, openai_server, "Write out.md from the notes")


def visible_text(dom: str) -> str:
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


# ---------------------------------------------------------------- terminal


def test_trace_show_takes_an_id_a_prefix_last_or_a_path(ws, traced):
    by_path = run_cli("trace", "show", str(traced), cwd=ws.root)
    assert by_path.returncode == 0, by_path.stderr
    assert by_path.stdout.startswith(traced.stem)
    for ref in (traced.stem, traced.stem[:12], "last"):
        shown = run_cli("trace", "show", ref, cwd=ws.root)
        assert shown.returncode == 0, (ref, shown.stderr)
        assert shown.stdout == by_path.stdout, ref
    lines = by_path.stdout.splitlines()
    assert any("Write" in line and "denied" in line for line in lines)
    assert any("subagent start" in line and "writer" in line for line in lines)
    missing = run_cli("trace", "show", "nope", cwd=ws.root)
    assert missing.returncode == 1 and "no trace with the id 'nope'" in missing.stderr
    assert "llmunix log" in missing.stderr


# ---------------------------------------------------------------- the page, in Chromium


def test_trace_html_renders_the_run_in_a_real_browser(ws, traced, tmp_path):
    needs_chromium()
    page = tmp_path / "run.html"
    written = run_cli("trace", "html", "last", "-o", str(page), cwd=ws.root)
    assert written.returncode == 0, written.stderr
    assert written.stdout.strip() == str(page)
    netlog = tmp_path / "net.json"
    dom = browser.dump_dom(page, tmp_path, netlog=netlog)
    shown = visible_text(dom)
    trace = read_trace(traced)
    assert "Write out.md from the notes" in shown and trace.trace_id in shown
    assert "success" in shown and "tiny-model" in shown and "openai" in shown
    # per-agent totals: boss made 4 turns and 3 calls (one refused), writer 2 turns, 1 call
    rows = re.findall(r"<tr><td>(boss|writer)</td>(.*?)</tr>", dom)
    cells = {agent: re.findall(r">([^<]*)</td>", rest) for agent, rest in rows}
    assert cells["boss"][:4] == ["4", "2", "1", "0"]  # turns, tool calls, denied, errors
    assert cells["writer"][:4] == ["2", "1", "0", "0"]
    assert cells["boss"][5:7] == ["710", "50"] and cells["writer"][5:7] == ["185", "16"]
    # steps: the refused write is marked with its reason, the sub-agent's step is nested
    assert re.search(r"Write</b> <span class=\"k-denied\">denied</span> — [^<]*outside", dom)
    nested = re.search(r'width:1\.2em"></span>writer</td>', dom)
    assert nested, "the sub-agent's steps are indented under the delegation"
    assert '"file_path": "out.md"' in dom  # a tool input, as text
    assert "Spec versions" in shown and "agent:writer" in shown
    assert browser.page_requests(netlog) == []


def test_the_page_is_a_real_picture(ws, traced, tmp_path):
    needs_chromium()
    page = tmp_path / "run.html"
    assert run_cli("trace", "html", traced.stem, "-o", str(page), cwd=ws.root).returncode == 0
    blank = tmp_path / "blank.html"
    blank.write_text("<!doctype html><title>blank</title>", encoding="utf-8")
    shot = browser.screenshot(page, tmp_path, width=1280, height=900)
    empty = browser.screenshot(blank, tmp_path, width=1280, height=900)
    assert browser.png_size(shot) == (1280, 900)
    # text, tables and bars compress far worse than an empty white page
    assert shot.stat().st_size > 4 * empty.stat().st_size


def test_the_request_check_sees_a_page_that_fetches(tmp_path):
    """The no-request assertion above would catch a page that loads anything."""
    needs_chromium()
    page = tmp_path / "fetching.html"
    page.write_text('<!doctype html><img src="http://127.0.0.1:9/pixel.png">', encoding="utf-8")
    netlog = tmp_path / "net.json"
    browser.dump_dom(page, tmp_path, netlog=netlog)
    assert browser.page_requests(netlog) == ["http://127.0.0.1:9/pixel.png"]


def test_index_of_runs_links_every_run_and_filters_in_the_browser(ws, openai_server, tmp_path):
    needs_chromium()
    first = run_delegating_goal(ws, openai_server, "Alpha goal about notes")
    second = run_delegating_goal(ws, openai_server, "Beta goal about reports")
    out = tmp_path / "site"
    written = run_cli("trace", "html", "-o", str(out), cwd=ws.root)
    assert written.returncode == 0, written.stderr
    index = Path(written.stdout.strip())
    assert index == out / "index.html"
    for trace in (first, second):
        assert (out / "runs" / f"{trace.stem}.html").is_file()
    dom = browser.dump_dom(index, tmp_path)
    assert f'href="runs/{first.stem}.html"' in dom and f'href="runs/{second.stem}.html"' in dom
    assert re.search(r'<span id="shown">2</span> of 2 runs', dom)
    filtered = browser.dump_dom(index, tmp_path, fragment="q=beta")
    assert re.search(r'<span id="shown">1</span> of 2 runs', filtered)
    hidden = re.findall(r'<tr data-status="success" style="display: none;">.*?</tr>', filtered,
                        flags=re.S)
    assert len(hidden) == 1 and "Alpha goal" in hidden[0]


def test_a_run_page_needs_no_workspace_and_a_bad_id_says_so(ws, traced, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    page = run_cli("trace", "html", str(traced), cwd=outside)
    assert page.returncode == 0, page.stderr
    assert Path(page.stdout.strip()) == outside / f"{traced.stem}.html"
    bad = run_cli("trace", "html", "20990101", cwd=ws.root)
    assert bad.returncode == 1 and "no trace with the id" in bad.stderr
    assert find_traces(ws.project("default").short_term_dir) == [traced]
