"""The one redactor: which values are secret and every form they are hidden in."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

from llmunix.kernel.redact import MASK, Redactor, redact_event, secret_values
from llmunix.trace.events import ToolCalled

ENV = {"OPENAI_API_KEY": 'sk-abc/def+gh"i', "GH_TOKEN": "abcd", "FLAG_TOKEN": "true",
       "DATABASE_URL": "postgres://bob:hunter2pw@db:5432/x", "XAUTHORITY": "/run/x/Xauth",
       "DESKTOP_SESSION": "ubuntu", "PATH": "/usr/bin", "SHORT_SECRET": "abc"}


def test_which_values_are_secret():
    assert secret_values(ENV) == ['sk-abc/def+gh"i', "hunter2pw", "abcd"]


def test_every_form_is_hidden():
    redact = Redactor.from_environment(ENV)
    key = 'sk-abc/def+gh"i'
    for text in (key, json.dumps({"k": key}), quote(key, safe=""), quote_plus(key),
                 "see abcd here", "hunter2pw"):
        assert MASK in redact(text) and key not in redact(text), text
    for prefix in ("", "a", "ab"):  # base64 at each of the three alignments
        encoded = base64.b64encode(f"{prefix}Authorization: Bearer {key}!".encode()).decode()
        out = redact(encoded)
        assert MASK in out and base64.b64encode(key.encode()).decode()[4:16] not in out
    assert redact("db postgres://alice:other-pw@host/db") == f"db postgres://alice:{MASK}@host/db"
    for harmless in ("true stays", "/run/x/Xauth is a path", "ubuntu", "abc"):
        assert redact(harmless) == harmless


def test_events_and_files():
    redact = Redactor.from_environment(ENV)
    event = ToolCalled("c1", "a", "Bash", {"command": "echo abcd"}, "abcd", False, 0.1, "allowed")
    clean = redact_event(event, redact)
    assert clean.input == {"command": f"echo {MASK}"} and clean.output == MASK
    assert event.output == "abcd"  # the original is left alone
    assert redact.contains_secret(b"x hunter2pw y") and not redact.contains_secret("nothing")


def test_streamed_text_never_shows_a_secret_cut_in_pieces():
    from llmunix.kernel.redact import redacting_emit
    from llmunix.trace.events import AssistantText, TextDelta

    redact = Redactor(["tok-7f3a9c2e51"])
    seen = []
    emit = redacting_emit(seen.append, redact)
    text = "the token is tok-7f3a9c2e51, keep it; " * 3
    for i in range(0, len(text), 3):  # three characters a piece
        emit(TextDelta("a", text[i:i + 3]))
    emit(AssistantText("a", text))
    streamed = "".join(e.text for e in seen if isinstance(e, TextDelta))
    assert streamed == redact(text)
    assert "7f3a" not in streamed and streamed.count(MASK) == 3
    assert seen[-1] == AssistantText("a", redact(text))
