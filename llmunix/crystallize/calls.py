"""Tool-spec calls from inside a crystallized tool: the tool runs as a child process in the
project's workspace, so it finds its workspace from there, loads the named spec, checks it is
the version the trace used, and runs it through llmunix's tool executor."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def call_tool_spec(name: str, args: dict[str, Any], digest: str) -> str | None:
    """Run tool spec `name`; returns why it could not be done, or None when it succeeded."""
    from llmunix.errors import LlmunixError
    from llmunix.specs.registry import load_registry
    from llmunix.tools.spec_exec import run_tool_spec
    from llmunix.workspace.config import CONFIG_FILE
    from llmunix.workspace.layout import Workspace

    here = Path.cwd().resolve()
    root = next((p for p in [here, *here.parents] if (p / CONFIG_FILE).is_file()), None)
    if root is None or here.parent.parent.name != "projects":
        return f"cannot call tool {name}: {here} is not a project's workspace"
    ws = Workspace(root)
    registry = load_registry(ws, ws.project(here.parent.name))
    spec = registry.tools.get(name)
    if spec is None:
        return f"tool {name} is no longer in scope"
    if spec.content_hash != digest:
        return (f"tool {name} changed since it was crystallized (spec {spec.content_hash}, "
                f"learned with {digest}); crystallize the trace again")
    try:
        result = run_tool_spec(spec, args, cwd=here)
    except LlmunixError as exc:
        return f"tool {name}: {exc.message}"
    if result.is_error:
        return f"tool {name} failed: {result.output.strip()[:300]}"
    return None
