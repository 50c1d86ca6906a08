"""What a failing OpenAI-compatible server said, in one line, with what to check.

A server's error is the server's: an HTTP error, a validation dump or a stream that stops midway
is summarized as such (status, the one relevant detail, the server's log / the model name / the
key to check), never blamed on the model. 429, 502 and 503 are worth retrying: `retry_delay`
says how long to wait, honouring the server's Retry-After, within bounds.
"""

from __future__ import annotations

import ast
import email.utils
import re
import time
from typing import Any

from llmunix.errors import LlmunixError

RETRY_STATUSES = frozenset({429, 502, 503})
MAX_ATTEMPTS = 4  # a request and up to three retries
BACKOFF_S = (1.0, 2.0, 4.0)  # when the server gives no Retry-After
MAX_RETRY_AFTER_S = 30.0  # a longer Retry-After is not waited for: the run ends with the error
DETAIL_CHARS = 200

_VALIDATION = re.compile(r"^\s*(\d+) validation errors?:", re.I)


class ServerError(LlmunixError):
    """The model server failed a request (HTTP error, broken stream, no answer)."""

    def __init__(self, message: str, *, hint: str | None = None, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.retry_after = retry_after


def retry_delay(status: int | None, retry_after: float | None, attempt: int) -> float | None:
    """Seconds to wait before retry number `attempt` (1-based), or None: do not retry."""
    if status not in RETRY_STATUSES or attempt >= MAX_ATTEMPTS:
        return None
    if retry_after is not None:
        return retry_after if 0 <= retry_after <= MAX_RETRY_AFTER_S else None
    return BACKOFF_S[min(attempt, len(BACKOFF_S)) - 1]


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds: a number of seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def detail_of(body: Any, fallback: str = "") -> str:
    """The one relevant sentence of an error body (OpenAI-style, FastAPI, plain text)."""
    detail: Any = body
    if isinstance(body, dict):
        detail = body.get("error") if body.get("error") is not None else body.get("detail", body)
        if isinstance(detail, dict):
            detail = detail.get("message") or detail.get("msg") or detail
        if isinstance(body.get("message"), str) and not isinstance(detail, str):
            detail = body["message"]
    if isinstance(detail, list):  # FastAPI: [{"loc": [...], "msg": ...}, ...]
        detail = _pick_validation([e for e in detail if isinstance(e, dict)]) or detail
    if not detail:
        detail = fallback
    text = str(detail)
    match = _VALIDATION.match(text)
    if match:  # pydantic's "N validation errors:\n  {...}\n  {...}" as one string
        errors = []
        for line in text.splitlines()[1:]:
            try:
                parsed = ast.literal_eval(line.strip())
            except (ValueError, SyntaxError):
                continue
            if isinstance(parsed, dict):
                errors.append(parsed)
        text = _pick_validation(errors) or text
    text = " ".join(text.split())
    return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 1] + "…"


def _pick_validation(errors: list[dict]) -> str:
    """A union of message types fails once per member; the member that matched the role is the
    one that says what is wrong, so role mismatches are skipped."""
    useful = [e for e in errors if not (e.get("type") == "literal_error"
                                        and list(e.get("loc") or ())[-1:] == ["role"])]
    for error in useful or errors:
        loc = [p for p in (error.get("loc") or ()) if p != "body"]
        path = ""
        for part in loc:
            if isinstance(part, int):
                path += f"[{part}]"
            elif isinstance(part, str) and not part[:1].isupper():  # skip type names
                path += f".{part}" if path else part
        got = f" (got {error['input']!r})" if "input" in error and not isinstance(
            error["input"], (dict, list)) else ""
        return f"{path}: {error.get('msg', '')}{got}" if path else str(error.get("msg", ""))
    return ""


def http_error(status: int, body: Any, *, base_url: str, model: str, api_key_env: str,
               retry_after: float | None = None, fallback: str = "") -> ServerError:
    detail = detail_of(body, fallback)
    low = detail.lower()
    if status == 404:
        hint = (f"is the model {model!r} served there? `llmunix models --base-url {base_url}` "
                "lists what it serves")
    elif status in (401, 403):
        hint = f"set ${api_key_env} to a key this server accepts"
    elif status == 429:
        hint = "the server is rate-limiting: wait, or lower the load on it"
    elif status in (502, 503, 504):
        hint = "the server (or a proxy in front of it) is not ready: see its log"
    elif "context" in low and ("length" in low or "window" in low or "exceed" in low):
        hint = "the conversation no longer fits the model's context: raise the server's " \
               "context size, or lower max_tokens"
    elif status == 400 and "tool" in low:
        hint = (f"if {model!r} has no native tool calling, list it in text_tools in the "
                "[openai] section of llmunix.toml")
    else:
        hint = "see the server's log for the cause"
    return ServerError(f"the server at {base_url} answered HTTP {status}: {detail}", hint=hint,
                       status=status, retry_after=retry_after)
