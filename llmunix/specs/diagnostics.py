"""Problems found while reading specs: collected, not raised, so one broken file cannot stop
boot."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from llmunix.errors import LlmunixError

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Diagnostic:
    severity: Severity
    path: str
    message: str
    line: int | None = None
    field: str | None = None
    hint: str | None = None

    @classmethod
    def from_error(cls, exc: LlmunixError, *, field: str | None = None) -> Diagnostic:
        return cls("error", exc.path or "", exc.message, exc.line, field, exc.hint)

    def location(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path

    def __str__(self) -> str:
        where = self.location()
        what = f"{self.field}: {self.message}" if self.field else self.message
        text = f"{where}: {self.severity}: {what}"
        return f"{text} ({self.hint})" if self.hint else text

    def to_dict(self) -> dict:
        return asdict(self)
