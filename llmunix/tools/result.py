"""What every tool returns, whoever runs it: built-in tools, command and python tool specs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ToolResult:
    output: str
    is_error: bool = False
    exit_code: int | None = None  # for command and python tools
    duration_s: float = 0.0
