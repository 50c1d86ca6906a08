"""The one redactor: every text a run writes or shows (trace and sidecars, --json events, the
live view, the goal, trace file names, commit messages) passes through it.

It hides the values of environment variables whose names look secret (4+ characters), in the
forms a value is seen in outside a shell: as is, JSON-escaped, URL-encoded and base64-encoded
(at each of the three byte alignments a value can have inside a longer base64 text), and the
password of any URL with credentials (`postgres://user:pass@host`), in any variable or text.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from urllib.parse import quote, quote_plus, unquote

from llmunix.trace.events import TextDelta
from llmunix.workspace.config import secret_name

__all__ = ["MASK", "Redactor", "redact_event", "redacting_emit", "secret_values"]

MASK = "[REDACTED]"
MIN_SECRET_CHARS = 4
# Values that say nothing: redacting them would only garble ordinary text.
_NOT_SECRET = frozenset({"true", "false", "none", "null", "nil", "yes", "no", "test", "dummy",
                         "unset", "empty", "changeme"})
# user:password@ in a URL; the password is what matters (the user name stays readable).
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/:@]*:)(?P<pw>[^\s/@]+)(?=@)")
_MIN_B64_CHARS = 8  # shorter base64 fragments would match ordinary words


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """The secret values of an environment: secret-looking variables' values, and the
    password of every URL with credentials in any variable; longest first."""
    env = os.environ if environ is None else environ
    found: set[str] = set()
    for name, value in env.items():
        if secret_name(name):
            found.add(value.strip())
        for match in _URL_PASSWORD.finditer(value):
            found.add(match.group("pw"))
            found.add(unquote(match.group("pw")))
    return sorted((v for v in found if len(v) >= MIN_SECRET_CHARS
                   and v.lower() not in _NOT_SECRET), key=len, reverse=True)


def _forms(secret: str) -> set[str]:
    """How a value can appear once encoded for a wire or a file."""
    forms = {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1],
             quote(secret, safe=""), quote_plus(secret), quote(secret)}
    raw = secret.encode("utf-8")
    for shift in range(3):
        data = b"\0" * shift + raw
        groups = len(data) // 3  # whole 3-byte groups: their 4 characters depend on nothing else
        first = 1 if shift else 0
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(data).decode("ascii")
            core = text[first * 4: groups * 4]
            if len(core) >= _MIN_B64_CHARS:
                forms.add(core)
            if shift == 0:
                forms.add(text)  # the whole value encoded on its own, padding included
                forms.add(text.rstrip("="))
    return {f for f in forms if len(f) >= MIN_SECRET_CHARS}


class Redactor:
    """Callable: text in, text with every secret form replaced by MASK out."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = [s for s in secrets if len(s) >= MIN_SECRET_CHARS]
        self.secrets = tuple(sorted(set(values), key=len, reverse=True))
        forms: set[str] = set()
        for secret in self.secrets:
            forms |= _forms(secret)
        ordered = sorted(forms, key=len, reverse=True)
        self._forms = tuple(ordered)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None,
                         extra: Iterable[str] = ()) -> Redactor:
        return cls([*secret_values(environ), *extra])

    def __call__(self, text: str) -> str:
        if not text:
            return text
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
        if "://" in text:
            text = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
        return text

    def contains_secret(self, data: bytes | str) -> bool:
        """Whether `data` holds a secret in any of its forms (a file about to be committed)."""
        if self._pattern is None:
            return False
        if isinstance(data, bytes):
            data = data.decode("utf-8", "replace")
        return self._pattern.search(data) is not None

    def files_holding_secrets(self, root: Path, names: Iterable[str]) -> list[str]:
        """Those of `names` (files relative to `root`) whose content holds a secret in any of
        its forms: what must not be committed. Read in blocks, so a big file costs no memory."""
        if self._pattern is None:
            return []
        overlap = max(len(f) for f in self._forms)
        found = []
        for name in names:
            path = root / name
            if path.is_symlink() or not path.is_file():
                continue  # git records a link's target path, not what it points to
            try:
                with open(path, "rb") as f:
                    tail = b""
                    while block := f.read(1 << 20):
                        if self.contains_secret(tail + block):
                            found.append(name)
                            break
                        tail = block[-overlap * 4:]
            except OSError:
                continue
        return found

    def value(self, obj):
        """Redact every string inside a JSON-like value (dicts, lists, strings)."""
        if isinstance(obj, str):
            return self(obj)
        if isinstance(obj, dict):
            return {self(k) if isinstance(k, str) else k: self.value(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return type(obj)(self.value(v) for v in obj)
        return obj

    def __bool__(self) -> bool:
        return True


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}  # an event class's fields, looked up once


def redact_event(event, redact: Redactor):
    """A copy of a run event (a dataclass) with every string in it redacted."""
    kind = type(event)
    names = _FIELD_NAMES.get(kind)
    if names is None:
        names = _FIELD_NAMES[kind] = tuple(f.name for f in dataclasses.fields(event))
    changes = {}
    for name in names:
        value = getattr(event, name)
        if isinstance(value, (str, dict, list, tuple)):
            clean = redact.value(value)
            if clean != value:
                changes[name] = clean
    return dataclasses.replace(event, **changes) if changes else event


def redacting_emit(emit: Callable, redact: Redactor) -> Callable:
    """`emit` behind the redactor: the live view, --json and every other listener only ever
    see redacted events. Wrapping twice wraps once."""
    if getattr(emit, "redactor", None) is not None:
        return emit
    return _RedactingEmit(emit, redact)


class _RedactingEmit:
    """Streamed text comes in pieces, and a secret can be cut between two of them: the last
    characters of the stream (as many as the longest form a secret takes, less one) are held
    back until more text or the next event shows what they are."""

    def __init__(self, emit: Callable, redact: Redactor) -> None:
        self.emit = emit
        self.redactor = redact
        self.hold = max((len(f) for f in redact._forms), default=1) - 1
        self.pending: dict[str, str] = {}  # agent -> streamed text not sent yet

    def __call__(self, event) -> None:
        if isinstance(event, TextDelta) and self.hold:
            self._delta(event)
            return
        for agent in list(self.pending):  # the text's end, before whatever follows it
            text = self.pending.pop(agent)
            if text:
                self.emit(TextDelta(agent, self.redactor(text)))
        self.emit(redact_event(event, self.redactor))

    def _delta(self, event) -> None:
        text = self.pending.get(event.agent, "") + event.text
        cut = len(text) - self.hold
        if cut <= 0:
            self.pending[event.agent] = text
            return
        pattern = self.redactor._pattern
        for match in pattern.finditer(text) if pattern is not None else ():
            if match.start() < cut < match.end():
                cut = match.end()  # a whole secret straddles the cut: send it (masked)
        self.pending[event.agent] = text[cut:]
        self.emit(dataclasses.replace(event, text=self.redactor(text[:cut])))
