"""What the built-in tools share: output limits, the failure a model mistake becomes, and file
checks through the policy."""

from __future__ import annotations

from pathlib import Path

from llmunix.policy.gate import Policy

MAX_OUTPUT_CHARS = 30_000  # Bash, Glob and Grep output
MAX_READ_CHARS = 100_000  # one Read call
READ_DEFAULT_LIMIT = 2000  # lines
MAX_LINE_CHARS = 2000  # longer lines are cut in Read output
MAX_GREP_LINE_CHARS = 500
MAX_GLOB_RESULTS = 1000
MAX_GREP_FILE_BYTES = 20 * 1024 * 1024
MAX_BASH_TIMEOUT_S = 600.0
_SNIFF_BYTES = 8192

class _ToolFailure(Exception):
    """A model mistake or a failed operation, reported to the model as an error result."""



# -- file helpers -------------------------------------------------------------------------------


def _is_binary(path: Path) -> bool:
    with open(path, "rb") as f:
        return b"\0" in f.read(_SNIFF_BYTES)


def _cap(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n... [output truncated: showing {limit} of {len(text)} characters]"


def _existing_file(policy: Policy, path: str, *, write: bool) -> Path:
    real = policy.resolve(path, write=write)
    if not real.exists():
        raise _ToolFailure(f"File does not exist: {policy.relative(real)}")
    if real.is_dir():
        raise _ToolFailure(f"{policy.relative(real)} is a directory, not a file")
    return real
