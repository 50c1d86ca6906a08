"""The kernel's state: four numbers in [0, 1] per project (`memory/state.md`) that every run
updates by fixed rules and that bias how the next runs work, each change and effect explained.

Updates, after every run (in this order; values are clamped to [0, 1] and rounded to 3 places):
- safety: +0.15 per refused call (denied by the policy or the sandbox), at most +0.45 a run; a
  run with no refusal moves it 0.05 back toward 0.5.
- confidence: +0.05 after a success, −0.15 after an error, −0.10 after a run stopped by a limit
  (an interrupted run changes nothing: the user chose to stop it).
- curiosity: each follower (replayed) run in a row after the second adds 0.05; a learner or
  mixed run moves it 0.05 back toward 0.5.
- energy: −0.5 × (cost / budget) of the run (a run at its budget costs half the energy); a run
  that cost nothing recovers 0.05.

Effects, at the start of every run:
- confidence shifts the goal-match thresholds: once it is outside [0.4, 0.6], the follower and
  mixed thresholds each move by 0.1 × (0.5 − confidence) (confident: replay sooner; unsure:
  learn more), clamped to [0.5, 1].
- safety ≥ 0.7 makes the orchestrator's system prompt stricter (a paragraph saying so).
- energy < 0.3 picks the cheapest model among the ones an agent lists (`llmunix: models`).

`[state] enabled = false` turns all of it off: no file is written, nothing shifts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmunix.errors import LlmunixError, TraceError
from llmunix.memory.store import memory_lock
from llmunix.specs.frontmatter import atomic_write, dump_frontmatter, split_frontmatter

STATE_FILE = "state.md"
NAMES = ("safety", "curiosity", "energy", "confidence")
DEFAULTS = {"safety": 0.5, "curiosity": 0.5, "energy": 1.0, "confidence": 0.5}
HISTORY = 20  # recent changes kept in the file's body (git keeps all of them)
STRICT_SAFETY = 0.7
LOW_ENERGY = 0.3
DEAD_ZONE = 0.1  # confidence within 0.1 of 0.5 shifts nothing
STRICT_PROMPT = (
    "## Kernel state: caution\n"
    "Recent runs in this project had tool calls refused (safety {safety:.2f}). Before a call "
    "that deletes, overwrites or runs a shell command, make sure the goal needs it; prefer "
    "reading to writing; never retry a refused call in another form."
)


class StateError(LlmunixError):
    """memory/state.md cannot be read."""


@dataclass(frozen=True)
class RunFacts:
    """What a finished run contributes to the state."""

    trace_id: str
    status: str  # success | error | stopped | interrupted
    mode: str  # learner | mixed | follower
    refused: int
    cost_usd: float
    budget_usd: float


@dataclass
class State:
    safety: float = DEFAULTS["safety"]
    curiosity: float = DEFAULTS["curiosity"]
    energy: float = DEFAULTS["energy"]
    confidence: float = DEFAULTS["confidence"]
    replay_streak: int = 0
    runs: int = 0
    history: list[str] = field(default_factory=list)

    def values(self) -> dict[str, float]:
        return {n: getattr(self, n) for n in NAMES}


@dataclass(frozen=True)
class Change:
    name: str
    before: float
    after: float
    why: str

    def line(self) -> str:
        return f"{self.name} {self.before:.2f} → {self.after:.2f} ({self.why})"


def _clamp(x: float) -> float:
    return round(min(1.0, max(0.0, x)), 3)


def _toward(x: float, target: float, step: float) -> float:
    return min(target, x + step) if x < target else max(target, x - step)


def update(state: State, facts: RunFacts) -> list[Change]:
    """Apply the rules to `state` in place; the changes, each with its reason."""
    changes: list[Change] = []

    def set_(name: str, value: float, why: str) -> None:
        before = getattr(state, name)
        value = _clamp(value)
        if value != before:
            setattr(state, name, value)
            changes.append(Change(name, before, value, why))

    if facts.refused:
        set_("safety", state.safety + min(0.45, 0.15 * facts.refused),
             f"{facts.refused} refused call(s)")
    else:
        set_("safety", _toward(state.safety, 0.5, 0.05), "no refused call")
    delta = {"success": 0.05, "error": -0.15, "stopped": -0.10}.get(facts.status)
    if delta:
        set_("confidence", state.confidence + delta, f"the run ended {facts.status}")
    if facts.mode == "follower":
        state.replay_streak += 1
        if state.replay_streak > 2:
            set_("curiosity", state.curiosity + 0.05,
                 f"{state.replay_streak} replayed runs in a row")
    else:
        state.replay_streak = 0
        set_("curiosity", _toward(state.curiosity, 0.5, 0.05), f"a {facts.mode} run")
    if facts.cost_usd > 0 and facts.budget_usd > 0:
        share = min(1.0, facts.cost_usd / facts.budget_usd)
        set_("energy", state.energy - 0.5 * share,
             f"cost ${facts.cost_usd:.4f} of a ${facts.budget_usd:g} budget")
    elif facts.cost_usd <= 0:
        set_("energy", state.energy + 0.05, "a run that cost nothing")
    state.runs += 1
    return changes


# ---------------------------------------------------------------- effects


@dataclass(frozen=True)
class Thresholds:
    follower: float
    mixed: float
    why: str  # "" when unchanged


def thresholds(state: State | None, follower: float, mixed: float) -> Thresholds:
    if state is None:
        return Thresholds(follower, mixed, "")
    if abs(state.confidence - 0.5) < DEAD_ZONE:
        return Thresholds(follower, mixed, "")
    shift = round(0.1 * (0.5 - state.confidence), 3)
    if not shift:
        return Thresholds(follower, mixed, "")

    def moved(x: float) -> float:
        return round(min(1.0, max(0.5, x + shift)), 3)

    f, m = moved(follower), moved(mixed)
    return Thresholds(f, m, f"confidence {state.confidence:.2f} moves the thresholds by "
                            f"{shift:+.3f}: follower {follower:g} → {f:g}, mixed {mixed:g} → {m:g}")


def strict_prompt(state: State | None) -> str:
    if state is None or state.safety < STRICT_SAFETY:
        return ""
    return STRICT_PROMPT.format(safety=state.safety)


def pick_model(state: State | None, models: list[str], price_of) -> tuple[str | None, str]:
    """With low energy, the cheapest of an agent's listed models (by `price_of(model)`, USD
    per million input+output tokens); else None (the agent's usual model)."""
    if state is None or state.energy >= LOW_ENERGY or len(models) < 2:
        return None, ""
    cheapest = min(models, key=lambda m: (price_of(m), models.index(m)))
    return cheapest, (f"energy {state.energy:.2f} < {LOW_ENERGY}: the cheapest listed model, "
                      f"{cheapest}")


def effects(state: State | None, follower: float, mixed: float) -> list[str]:
    """Each effect in force, as a sentence (for the run header and `llmunix status`)."""
    if state is None:
        return []
    out = []
    t = thresholds(state, follower, mixed)
    if t.why:
        out.append(t.why)
    if strict_prompt(state):
        out.append(f"safety {state.safety:.2f} ≥ {STRICT_SAFETY}: the orchestrator's prompt is "
                   "stricter")
    if state.energy < LOW_ENERGY:
        out.append(f"energy {state.energy:.2f} < {LOW_ENERGY}: agents that list models use "
                   "the cheapest")
    return out


# ---------------------------------------------------------------- the file

TITLE = "# Kernel state"
INTRO = ("Four numbers llmunix's rules move after every run of this project and that bias the "
         "next runs (see `llmunix status`). Recent changes, newest first; git has all of them.")


def load(path: Path) -> State:
    """The state in `path`; the defaults when there is none yet. A damaged file is an error
    naming it (the user may have edited it)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return State()
    except (OSError, UnicodeDecodeError) as exc:
        raise StateError(f"cannot read the kernel state: {exc}", path=path) from exc
    try:
        meta, body = split_frontmatter(text, path)
    except TraceError as exc:
        raise StateError(f"the kernel state is damaged: {exc.message}", path=path,
                         hint="fix it, or delete it to start again from the defaults") from None
    state = State()
    for name in NAMES:
        value = meta.get(name, DEFAULTS[name])
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise StateError(f"{name} must be a number from 0 to 1, not {value!r}", path=path,
                             hint="fix it, or delete the file to start again from the defaults")
        setattr(state, name, float(value))
    for name in ("replay_streak", "runs"):
        value = meta.get(name, 0)
        setattr(state, name, value if isinstance(value, int) and value >= 0 else 0)
    state.history = [line[2:] for line in body.splitlines() if line.startswith("- ")]
    return state


def save(path: Path, state: State) -> None:
    meta: dict[str, Any] = {**state.values(), "replay_streak": state.replay_streak,
                            "runs": state.runs}
    lines = "\n".join(f"- {h}" for h in state.history[:HISTORY])
    text = dump_frontmatter(meta) + f"\n{TITLE}\n\n{INTRO}\n\n{lines}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text)


def after_run(path: Path, facts: RunFacts, when: str, lock_root: Path | None) -> dict[str, Any]:
    """Apply the rules for one finished run to the file; returns what the trace records."""
    with memory_lock(lock_root):
        state = load(path)
        before = state.values()
        changes = update(state, facts)
        what = "; ".join(c.line() for c in changes) or "no change"
        state.history.insert(0, f"{when} run {facts.trace_id} ({facts.status}, {facts.mode}): "
                                f"{what}")
        save(path, state)
    return {"before": before, "after": state.values(),
            "changes": [c.line() for c in changes]}


# ---------------------------------------------------------------- one run


def state_path(project_root: Path) -> Path:
    return project_root / "memory" / STATE_FILE


def current(ws, project) -> State | None:
    """The project's state, or None when `[state] enabled = false`."""
    if not ws.config.state.enabled:
        return None
    return load(state_path(project.root))


class StateRun:
    """The kernel state around one run: what it was and did at the start, what the run changed."""

    def __init__(self, ws, project, state: State) -> None:
        self.ws = ws
        self.project = project
        self.state = state
        conf = ws.config.memory
        self.effects = effects(state, conf.follower_threshold, conf.mixed_threshold)

    @classmethod
    def begin(cls, ws, project) -> StateRun | None:
        state = current(ws, project)
        return None if state is None else cls(ws, project, state)

    @property
    def caution(self) -> str:
        return strict_prompt(self.state)

    def at_start(self) -> dict[str, Any]:
        return {"at_start": self.state.values(), "effects": self.effects}

    def finish(self, facts: RunFacts, when: str) -> dict[str, Any]:
        """Apply the rules; what the trace records (an error, never raised: the run is over)."""
        try:
            change = after_run(state_path(self.project.root), facts, when, self.ws.root)
        except LlmunixError as exc:
            return {**self.at_start(), "error": exc.message}
        return {**self.at_start(), "after": change["after"], "changes": change["changes"]}
