"""Starting an MCP stdio server: `mcp-server-time` (PyPI) through llmunix's client (McpHub: the
run's sandbox, stderr capture, its own connection task) against the floor of the bare `mcp`
SDK (`stdio_client` + `ClientSession`, unconfined). Reports the time to an answered
`initialize` and the first `tools/list`, medians of RUNS starts."""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from _common import median, row

from llmunix.mcp.client import McpHub
from llmunix.specs.mcp_servers import ServerConfig
from llmunix.tools.sandbox import Sandbox

RUNS = 7
ARGS = ["-m", "mcp_server_time", "--local-timezone", "UTC"]


async def bare() -> tuple[float, float]:
    from mcp import ClientSession, StdioServerParameters, stdio_client

    start = time.perf_counter()
    params = StdioServerParameters(command=sys.executable, args=ARGS)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        started = time.perf_counter() - start
        listed = time.perf_counter()
        await session.list_tools()
        return started, time.perf_counter() - listed


async def hub(workspace: Path, confined: bool) -> tuple[float, float]:
    sandbox = Sandbox.create(workspace, mode="bubblewrap" if confined else "off")
    server = ServerConfig(name="time", type="stdio", command=sys.executable, args=tuple(ARGS))
    mcp = McpHub([server], cwd=str(workspace), sandbox=sandbox)
    try:
        await mcp.start()
        state = mcp.servers["time"]
        assert state.status == "running", state.error
        return state.start_s, state.list_s
    finally:
        await mcp.aclose()


def measure(make) -> tuple[float, float]:
    starts, lists = [], []
    asyncio.run(make())  # warm the page cache
    for _ in range(RUNS):
        s, listed = asyncio.run(make())
        starts.append(s)
        lists.append(listed)
    return median(starts), median(lists)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        floor_start, floor_list = measure(bare)
        open_start, open_list = measure(lambda: hub(Path(tmp), False))
        boxed_start, boxed_list = measure(lambda: hub(Path(tmp), True))
    print(f"mcp-server-time over stdio, median of {RUNS} starts")
    row("bare mcp SDK: start to initialize / first tools/list",
        f"{floor_start:.3f} s / {floor_list * 1e3:.1f} ms", "floor")
    row("llmunix McpHub, sandbox off", f"{open_start:.3f} s / {open_list * 1e3:.1f} ms", "",
        f"{open_start / floor_start:.2f}x the floor")
    row("llmunix McpHub, in the bubblewrap sandbox",
        f"{boxed_start:.3f} s / {boxed_list * 1e3:.1f} ms", "",
        f"{boxed_start / floor_start:.2f}x the floor")


if __name__ == "__main__":
    main()
