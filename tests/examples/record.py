"""Recording an example's shipped learned trace: a learner run of the example's goal against the
scripted model server in a fresh workspace, consolidated, and its long-term traces copied over
the ones the templates ship."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests.scripted.openai_server import OpenAIServer


def record(project: str, script: Callable[[OpenAIServer], None],
           learner_args: Callable[[OpenAIServer], list[str]]) -> None:
    from llmunix.memory import consolidate
    from llmunix.workspace.layout import Workspace
    from llmunix.workspace.scaffold import templates_root
    from tests.support import run_cli

    with tempfile.TemporaryDirectory() as tmp, OpenAIServer() as server:
        root = Path(tmp) / "ws"
        run_cli("init", str(root), "--example", project, cwd=Path(tmp))
        for old in (root / "projects" / project / "memory" / "long_term").glob("*.md"):
            old.unlink()  # learned afresh, from the specs as they are now
        script(server)
        done = run_cli(*learner_args(server), cwd=root)
        if done.returncode != 0:
            sys.exit(f"learner run failed: {done.stderr}")
        server.assert_script_used()
        ws = Workspace(root)
        consolidate(ws, ws.project(project))
        learned = sorted(ws.project(project).long_term_dir.glob("*.md"))
        target = templates_root() / "projects" / project / "memory" / "long_term"
        for old in target.glob("*.md"):
            old.unlink()
        for path in learned:
            shutil.copyfile(path, target / path.name)
            print(f"wrote {target / path.name}")
