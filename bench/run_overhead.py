"""llmunix's overhead on the Claude runtime: the same scripted 10-tool-call conversation run by
`llmunix run` and by a bare `claude_agent_sdk.query()` call, alternated in one run.

Both go through the real bundled Claude Code CLI against a scripted Anthropic server on
127.0.0.1, so the ratio isolates what llmunix adds (policy hook on every call, trace written as
it goes, the git commit, the CLI start-up) and what it saves (it stops the CLI as soon as the
result is in, and skips Python's teardown; the bare script does neither, as a plain SDK user
would not). Goal: ratio at most 1.15.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

from _common import child, llmunix_rss_cmd, median, row, self_rss_mb

from tests.scripted.anthropic_server import AnthropicServer, tool_use
from tests.support import agent_text, new_workspace, write_spec

PAIRS = 5
CALLS = 10
PROMPT = "BENCH-AGENT: write the files you are asked to."


def script(server: AnthropicServer) -> None:
    server.enqueue(
        *[tool_use("Write", {"file_path": f"f{i}.txt", "content": f"{i}\n"}) for i in range(CALLS)],
        "done",
    )


def env_for(server: AnthropicServer, home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "ANTHROPIC_BASE_URL": server.url,
        "ANTHROPIC_API_KEY": "bench",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "CLAUDE_CODE_DISABLE_BACKGROUND_TASKS": "1",
        "HOME": str(home),
    }


def run_llmunix(server: AnthropicServer, ws_root: Path, home: Path) -> tuple[float, float]:
    """(wall s, peak RSS MB of the llmunix process itself: the CLI it starts counts apart)."""
    script(server)
    out = home / "rss.txt"
    done = child([*llmunix_rss_cmd(out), "run", "bench", "--agent", "bench", "--mode",
                  "learner", "--quiet"], ws_root, env_for(server, home))
    if done.code != 0:
        raise SystemExit(f"llmunix run failed: {done.stderr}")
    return done.wall, self_rss_mb(out)


def run_bare(server: AnthropicServer, cwd: Path, home: Path) -> tuple[float, float]:
    """The same conversation through claude_agent_sdk.query() alone (in a fresh process, as
    `llmunix run` is, so both pay the Python start-up and the SDK import): (wall s, its own
    peak RSS MB)."""
    script(server)
    out = home / "bare-rss.txt"
    code = f"""
import asyncio, atexit, resource
atexit.register(lambda: open({str(out)!r}, "w").write(
    str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)))
from claude_agent_sdk import ClaudeAgentOptions, query
async def main():
    options = ClaudeAgentOptions(system_prompt={PROMPT!r}, tools=["Write"],
        allowed_tools=["Write"], permission_mode="acceptEdits", setting_sources=[],
        cwd={str(cwd)!r})
    async for _ in query(prompt="bench", options=options):
        pass
asyncio.run(main())
"""
    done = child([sys.executable, "-c", code], None, env_for(server, home))
    if done.code != 0:
        raise SystemExit(f"bare query() failed: {done.stderr}")
    return done.wall, self_rss_mb(out)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, AnthropicServer() as server:
        root = Path(tmp)
        ws = new_workspace(root / "ws")
        write_spec(ws.user_agents_dir, "bench.md", agent_text("bench", tools="Write",
                                                              body=PROMPT))
        bare_dir = root / "bare"
        bare_dir.mkdir()
        ours, bare, rss, bare_rss = [], [], [], []
        for _ in range(PAIRS):
            elapsed, peak = run_llmunix(server, ws.root, root)
            ours.append(elapsed)
            rss.append(peak)
            elapsed, peak = run_bare(server, bare_dir, root)
            bare.append(elapsed)
            bare_rss.append(peak)
        ratio = median(ours) / median(bare)
        print(f"{CALLS} tool calls + final answer, {PAIRS} alternated pairs, median wall time")
        row("bare claude_agent_sdk.query()", f"{median(bare):.3f} s")
        row("llmunix run (policy hook, trace, git commit)", f"{median(ours):.3f} s")
        row("ratio llmunix / bare", f"{ratio:.3f}", "goal <= 1.15")
        row("peak RSS of the llmunix process", f"{median(rss):.1f} MB", "goal <= 60 MB",
            f"the bare query() process {median(bare_rss):.1f} MB")


if __name__ == "__main__":
    asyncio.run(asyncio.sleep(0))
    main()
