"""The workspace a command works in (`--home`, else $LLMUNIX_HOME, else found upwards), with
the runs a killed process left unrecorded committed first. Free of typer, so `llmunix run`'s
direct path (cli/launch.py) can use it."""

from __future__ import annotations

import sys

STATE: dict[str, str | None] = {"home": None}


def workspace():
    from llmunix.workspace.layout import find_workspace

    ws = find_workspace(home=STATE["home"])
    recover_runs(ws)
    return ws


def recover_runs(ws) -> None:
    """Runs a killed process left unrecorded are committed by the next command (one line each
    on stderr). Costs one listing of .llmunix/runs when there are none."""
    if not (ws.root / ".llmunix" / "runs").is_dir():
        return
    from llmunix.run.recording import recover

    for note in recover(ws):
        sys.stderr.write(f"llmunix: {note}\n")
