"""Helpers shared by tests: fresh workspaces and the installed console script."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from llmunix.workspace.layout import Workspace
from llmunix.workspace.scaffold import init_workspace

LLMUNIX = shutil.which("llmunix", path=str(Path(sys.executable).parent)) or "llmunix"


def require(component: str, available: bool, how: str) -> None:
    """Skip a test whose real component (bubblewrap, a llama.cpp server, Chromium, an MCP
    server, ...) is missing here; under CI=true fail instead, so CI never passes by skipping.
    `how` says how to install it."""
    import pytest

    if available:
        return
    message = f"needs {component}: {how}"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{message} (CI must run every real-component test)", pytrace=False)
    pytest.skip(message)


def new_workspace(root: Path, *, example: str | None = None) -> Workspace:
    """A workspace laid out as `llmunix init` makes it (without the git commit)."""
    init_workspace(root, example=example)
    return Workspace(root)


def write_spec(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def agent_text(name: str, *, tools: str = "Read, Write", body: str = "Do the work.",
               extra: str = "") -> str:
    return f"---\nname: {name}\ndescription: {name} agent\ntools: {tools}\n{extra}---\n{body}\n"


NO_USER_CONFIG = "/nonexistent/llmunix-test-config"  # XDG_CONFIG_HOME with no config.toml


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None,
            timeout: float = 120, input: str | None = None) -> subprocess.CompletedProcess:
    """Run the installed `llmunix` console script as a real subprocess: no LLMUNIX_* variables
    and no user config unless `env` sets them; stdin is `input`, else empty (/dev/null)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LLMUNIX_")}
    full_env.update({"NO_COLOR": "1", "COLUMNS": "200", "TERM": "dumb",
                     "XDG_CONFIG_HOME": NO_USER_CONFIG})
    full_env.update(env or {})
    return subprocess.run(
        [LLMUNIX, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout,
        input=input, stdin=subprocess.DEVNULL if input is None else None,
    )


def digest(text: str) -> str:
    """A spec's content hash, as llmunix computes it."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]


ECHO_TOOL = """---
name: echo-arg
description: Echo one argument.
input:
  text: {type: string, description: what to print}
command: ["printf", "%s|", "{text}"]
---
Echoes.
"""

ADD_TOOL = """---
name: add
description: Add two integers.
input:
  a: integer
  b: {type: integer, default: 10}
python: add
---
```python
def add(a, b):
    return {"sum": a + b}
```
"""


def processes_matching(match, *, zombies: bool = False) -> list[int]:
    """Host pids of processes whose command line (bytes) `match` accepts; zombies (ended,
    not yet reaped) only with `zombies`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{entry}/stat") as f:
                zombie = f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            continue
        if match(cmdline) and (zombies or not zombie):
            found.append(int(entry))
    return found


def processes_with_marker(marker: str) -> list[int]:
    """Host pids of live (not zombie) processes whose command line starts with `marker`. Pids
    inside the sandbox are its own PID namespace's, so a child is found by a marker set as its
    argv[0] (`exec -a`) instead."""
    return processes_matching(lambda cmdline: cmdline.startswith(marker.encode()))


def processes_gone(marker: str) -> bool:
    """Whether every process with `marker` has ended, allowing 10 s: SIGKILL is delivered
    asynchronously, so the kernel may need a moment to finish a child off."""
    import time

    deadline = time.monotonic() + 10
    while processes_with_marker(marker) and time.monotonic() < deadline:
        time.sleep(0.01)
    return not processes_with_marker(marker)

