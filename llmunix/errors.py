"""The one error family llmunix raises. Only the CLI turns these into messages and exit codes."""

from __future__ import annotations

from pathlib import Path

# Exit codes, documented in README ("Exit codes").
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2  # a wrong command line (Click's own code for usage errors)
EXIT_STOPPED = 3
EXIT_NO_RUNTIME = 4
EXIT_NOT_RECORDED = 5  # the run ended but its commit failed; the next command retries it
EXIT_INTERRUPTED = 130


class LlmunixError(Exception):
    """Base of every error llmunix raises on purpose.

    `message` says what went wrong, `hint` what to do about it. `path`/`line` locate the cause
    in a user's file where there is one.
    """

    exit_code = EXIT_ERROR

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        path: str | Path | None = None,
        line: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.path = str(path) if path is not None else None
        self.line = line

    def location(self) -> str:
        if self.path is None:
            return ""
        return f"{self.path}:{self.line}" if self.line else self.path

    def __str__(self) -> str:
        where = self.location()
        text = f"{where}: {self.message}" if where else self.message
        return f"{text} ({self.hint})" if self.hint else text


class UsageError(LlmunixError):
    """A command line that cannot be run as given (a value the options cannot check)."""

    exit_code = EXIT_USAGE


class WorkspaceError(LlmunixError):
    """No workspace found, or a workspace that cannot be created as asked."""


class ConfigError(LlmunixError):
    """`llmunix.toml` is malformed or holds an invalid value."""


class SpecError(LlmunixError):
    """An agent or tool spec cannot be used."""


class ToolError(LlmunixError):
    """A tool could not be run (bad arguments, timeout, failure to start)."""


class PolicyDenied(LlmunixError):
    """A tool call that the policy refuses."""


class SandboxUnavailable(LlmunixError):
    """Processes cannot be confined here (no bubblewrap, no user namespaces, not Linux)."""


class TraceError(LlmunixError):
    """A trace file cannot be read or followed."""


class RuntimeUnavailable(LlmunixError):
    """No model runtime can be reached (no credentials, no server)."""

    exit_code = EXIT_NO_RUNTIME


class LimitReached(LlmunixError):
    """A run hit one of its limits (turns, budget, time, loop guard)."""

    exit_code = EXIT_STOPPED


class GitError(LlmunixError):
    """Git could not record or read the workspace's memory."""
