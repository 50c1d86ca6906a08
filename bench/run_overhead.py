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
import subprocess
import tempfile
import time
from pathlib import Path

from _common import llmunix_cmd, median, row

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


def run_llmunix(server: AnthropicServer, ws_root: Path, home: Path) -> float:
    script(server)
    start = time.perf_counter()
    done = subprocess.run([*llmunix_cmd(), "run", "bench", "--agent", "bench", "--mode",
                           "learner", "--quiet"], cwd=ws_root, env=env_for(server, home),
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"llmunix run failed: {done.stderr}")
    return elapsed


def run_bare(server: AnthropicServer, cwd: Path, home: Path) -> float:
    """The same conversation through claude_agent_sdk.query() alone (in a fresh process, as
    `llmunix run` is, so both pay the Python start-up and the SDK import)."""
    script(server)
    code = f"""
import asyncio
from claude_agent_sdk import ClaudeAgentOptions, query
async def main():
    options = ClaudeAgentOptions(system_prompt={PROMPT!r}, tools=["Write"],
        allowed_tools=["Write"], permission_mode="acceptEdits", setting_sources=[],
        cwd={str(cwd)!r})
    async for _ in query(prompt="bench", options=options):
        pass
asyncio.run(main())
"""
    import sys

    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], env=env_for(server, home),
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"bare query() failed: {done.stderr}")
    return elapsed


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, AnthropicServer() as server:
        root = Path(tmp)
        ws = new_workspace(root / "ws")
        write_spec(ws.user_agents_dir, "bench.md", agent_text("bench", tools="Write",
                                                              body=PROMPT))
        bare_dir = root / "bare"
        bare_dir.mkdir()
        ours, bare = [], []
        for _ in range(PAIRS):
            ours.append(run_llmunix(server, ws.root, root))
            bare.append(run_bare(server, bare_dir, root))
        ratio = median(ours) / median(bare)
        print(f"{CALLS} tool calls + final answer, {PAIRS} alternated pairs, median wall time")
        row("bare claude_agent_sdk.query()", f"{median(bare):.3f} s")
        row("llmunix run (policy hook, trace, git commit)", f"{median(ours):.3f} s")
        row("ratio llmunix / bare", f"{ratio:.3f}", "goal <= 1.15")


if __name__ == "__main__":
    asyncio.run(asyncio.sleep(0))
    main()
