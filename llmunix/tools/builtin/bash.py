"""Bash: one shell command in the workspace, run in the sandbox; when it ends or its time is up,
every process it started is killed with it."""

from __future__ import annotations

from llmunix.errors import SandboxUnavailable
from llmunix.policy.gate import Policy
from llmunix.tools.builtin.common import _ToolFailure
from llmunix.tools.process import MAX_OUTPUT_CHARS, run_process
from llmunix.tools.result import ToolResult
from llmunix.tools.sandbox import Sandbox


def _bash(args: dict, policy: Policy, sandbox: Sandbox | None = None,
          max_chars: int = MAX_OUTPUT_CHARS) -> ToolResult:
    """Output beyond `max_chars` keeps its first and last half (tools/process.py)."""
    timeout = args["timeout"] / 1000  # run_builtin has settled it
    if not policy.workspace.is_dir():
        raise _ToolFailure(f"the workspace {policy.workspace} does not exist")
    if sandbox is None:
        sandbox = Sandbox.create(policy.workspace, read_paths=policy.read_roots)
    try:
        proc = run_process(["bash", "-c", args["command"]], sandbox=sandbox, timeout_s=timeout,
                           merge_stderr=True, max_chars=max_chars)
    except SandboxUnavailable as exc:
        raise _ToolFailure(f"Bash refused: {exc}") from None
    text = proc.output.rstrip("\n")
    returncode = proc.exit_code
    notes = []
    if proc.timed_out:
        notes.append(f"Command timed out after {timeout:g} s; every process it started was "
                     "killed")
    elif returncode != 0:
        killed = f" (killed by signal {-returncode})" if returncode < 0 else ""
        notes.append(f"exit code {returncode}{killed}")
    text = "\n".join([text, *notes] if text else notes) or "(no output)"
    return ToolResult(text, is_error=proc.timed_out or returncode != 0, exit_code=returncode)
