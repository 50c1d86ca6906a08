"""`llmunix run`: resolve the agent, limits and policy, open the trace, drive a runtime, and close
everything cleanly however the run ends."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from llmunix import __version__
from llmunix.errors import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_NOT_RECORDED,
    EXIT_OK,
    EXIT_STOPPED,
    ConfigError,
    LimitReached,
    LlmunixError,
    SpecError,
    TraceError,
)
from llmunix.kernel.redact import Redactor, redacting_emit
from llmunix.kernel.session import Limits, Price, RunSession
from llmunix.kernel.state import RunFacts, StateRun
from llmunix.memory.agent_tools import AgentMemory, kernel_files
from llmunix.policy.gate import DEFAULT_DENY_COMMANDS, Policy
from llmunix.run import endings
from llmunix.run.interrupt import Interrupted, call_interruptibly, interruptible
from llmunix.run.recording import RunRecord, note_commit_failure, run_message
from llmunix.runtimes import get_runtime
from llmunix.runtimes.base import Runtime
from llmunix.runtimes.drive import run_now
from llmunix.specs.registry import Registry, load_registry
from llmunix.tools.sandbox import Sandbox
from llmunix.trace.events import Event, KernelState, RunFinished, RunStarted
from llmunix.trace.markdown import TraceWriter, iso, new_trace_path, utc_now
from llmunix.workspace.layout import Workspace, relative_path

EXIT_BY_STATUS = {
    "success": EXIT_OK,
    "error": EXIT_ERROR,
    "stopped": EXIT_STOPPED,
    "interrupted": EXIT_INTERRUPTED,
}

# USD per million tokens for the Claude families, used to enforce the budget while a run goes;
# the CLI's own total replaces the estimate when the run ends.
CLAUDE_PRICES = {"opus": Price(15.0, 75.0, 1.5), "sonnet": Price(3.0, 15.0, 0.3),
                 "haiku": Price(1.0, 5.0, 0.1)}


@dataclass
class RunRequest:
    goal: str
    project: str | None = None
    agent: str | None = None
    runtime: str | None = None
    model: str | None = None
    max_turns: int | None = None
    budget_usd: float | None = None
    timeout_s: float | None = None
    mode: str = "learner"  # learner | follower | mixed (auto is resolved by `run`)
    runtime_options: dict = field(default_factory=dict)
    source: Path | None = None  # follower: the trace to replay
    example: str = ""  # mixed: a learned trace shown to the model as a worked example
    piped_input: str = ""  # what was piped into `llmunix run`, given to the model with the goal
    meta: dict = field(default_factory=dict)  # extra trace frontmatter (decision, source...)
    registry: Registry | None = None  # specs as they are now (the shell's live registry)
    live_registry: Callable[[], Registry] | None = None  # read again at each delegation
    crystal: Any = None  # crystallized mode: the tool (crystallize.match.CrystalMatch)
    tools: tuple[str, ...] | None = None  # a slash command's allowed-tools: the agent's, narrowed


@dataclass
class RunOutcome:
    trace_id: str
    trace_path: str
    status: str
    result: str
    reason: str
    turns: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    duration_s: float
    commit: str | None = None
    model: str = ""
    # Specs llmunix itself wrote for the run (CreateAgent, a crystallized tool's record): the
    # only files under agents/ and tools/ its commit takes.
    spec_files: list[Path] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # files not committed: they hold a secret
    commit_error: str = ""  # why the run's commit failed (the trace is on disk)
    exit_signal: int | None = None  # SIGINT/SIGTERM/SIGHUP that ended it

    @property
    def exit_code(self) -> int:
        if self.exit_signal:
            return 128 + int(self.exit_signal)
        code = EXIT_BY_STATUS.get(self.status, EXIT_ERROR)
        return EXIT_NOT_RECORDED if self.commit_error and code == EXIT_OK else code


def piped_block(text: str) -> str:
    return f"<stdin>\n{text.rstrip()}\n</stdin>" if text.strip() else ""


def resolve_limits(ws: Workspace, request: RunRequest, agent) -> Limits:
    """Flag > the agent's `llmunix:` block > llmunix.toml."""
    conf = ws.config.limits
    s = agent.settings

    def pick(flag, own, default):
        return flag if flag is not None else own if own is not None else default

    return Limits(
        max_turns=pick(request.max_turns, s.max_turns, conf.max_turns),
        budget_usd=pick(request.budget_usd, s.budget_usd, conf.budget_usd),
        timeout_s=pick(request.timeout_s, s.timeout_s, conf.timeout_s),
    )


def skill_folders(ws: Workspace, workspace_dir) -> list[Path]:
    """The skill folders a run may read (a skill's own files and scripts), outside the
    workspace: the workspace's `skills/` and `.claude/skills/`, the project's `skills/`."""
    found = [ws.root / "skills", ws.root / ".claude" / "skills",
             Path(workspace_dir).parent / "skills"]
    return [p for p in found if p.is_dir()]


def build_policy(ws: Workspace, workspace_dir) -> Policy:
    conf = ws.config.policy
    try:
        return Policy(
            workspace_dir,
            read_roots=[ws.root / p for p in conf.read_paths] + skill_folders(ws, workspace_dir),
            deny_commands=[*DEFAULT_DENY_COMMANDS, *conf.deny_commands],
            allow_commands=conf.allow_commands or None,
        )
    except (ValueError, ConfigError) as exc:  # a command pattern that is not one
        raise ConfigError(f"[policy]: {getattr(exc, 'message', exc)}", path=ws.config_path,
                          hint="fix the pattern in llmunix.toml") from None


def build_sandbox(ws: Workspace, workspace_dir) -> Sandbox:
    """The sandbox every process of a run starts in: `[sandbox]` and `[policy] read_paths`."""
    conf = ws.config.sandbox
    read_paths = [ws.root / p for p in ws.config.policy.read_paths]
    read_paths += skill_folders(ws, workspace_dir)
    return Sandbox.create(workspace_dir, read_paths=read_paths,
                          network=conf.network == "allow", env=conf.env, mode=conf.mode,
                          program=conf.program).masking_hard_links()


def describe_sandbox(sandbox: Sandbox, registry: Registry) -> str:
    """The run header's sandbox line; names the agents whose constraints open the network."""
    text = sandbox.describe()
    opened = sorted(a.name for a in registry.agents.values() if a.opens_network)
    if sandbox.confined and opened and not sandbox.network:
        text += f"; network allowed for {', '.join(opened)}"
    return text


def price_for(ws: Workspace, runtime: str, model: str) -> Price:
    configured = ws.config.prices.get(model)
    if configured is not None:
        return Price(configured.input, configured.output)
    if runtime == "claude":
        family = next((f for f in CLAUDE_PRICES if f in (model or "sonnet")), "sonnet")
        return CLAUDE_PRICES[family]
    return Price()


def prepare(ws: Workspace, request: RunRequest) -> tuple[Registry, object, Runtime]:
    config = ws.config
    project = ws.ensure_project(request.project or config.run.project)
    build_policy(ws, project.workspace_dir)  # a bad [policy] pattern stops the run before it starts
    given = request.registry
    registry = given if given is not None and given.project == project else \
        load_registry(ws, project)
    agent_name = request.agent or config.run.agent
    agent = registry.agents.get(agent_name)
    if agent is None:
        broken = [d for d in registry.errors if agent_name in d.message or
                  d.path.endswith(f"{agent_name}.md")]
        raise SpecError(
            f"no usable agent named {agent_name!r} in project {project.name!r}"
            + (f": {broken[0]}" if broken else ""),
            hint="see `llmunix agents list --project " + project.name + "` and `llmunix boot`",
        )
    if request.tools is not None:
        own = agent.tools
        agent = replace(agent, tools=tuple(t for t in request.tools if own is None or t in own))
    if request.mode == "crystallized":
        from llmunix.runtimes.crystallized import CrystallizedRuntime

        return registry, agent, CrystallizedRuntime(request.crystal.name, request.crystal.args)
    if request.mode == "follower":
        from llmunix.memory.replay import load_source
        from llmunix.runtimes.replay import ReplayRuntime

        if request.source is None:
            raise LlmunixError("follower mode needs a trace to follow")
        source = load_source(request.source)
        source.check(registry)  # a changed, incomplete or out-of-date recording runs nothing
        return registry, agent, ReplayRuntime(source)
    runtime_name = request.runtime or config.run.runtime
    if runtime_name == "replay":
        raise LlmunixError(
            "the replay runtime follows a recorded trace",
            hint="use `llmunix trace replay <trace.md>` or `llmunix run \"<goal>\" "
            "--mode follower`",
        )
    options = dict(request.runtime_options)
    if runtime_name != "openai":
        options.pop("base_url", None)
    if runtime_name in ("claude", "openai"):
        model = request.model or _cheaper_model(ws, project, agent, runtime_name)
        options.setdefault("model", model or agent.model or config.run.model or "")
    if runtime_name == "openai":
        options.setdefault("config", config.openai)
        options.setdefault("windows", {k: m.context_window for k, m in config.models.items()})
        options.setdefault("paging", config.context)
    runtime = get_runtime(runtime_name, **options)
    runtime.preflight()
    return registry, agent, runtime


def _cheaper_model(ws: Workspace, project, agent, runtime: str) -> str | None:
    """Low energy: the cheapest of the models the agent lists (kernel/state.py)."""
    if not agent.settings.models:
        return None
    from llmunix.kernel import state

    def price(model: str) -> float:
        p = price_for(ws, runtime, model)
        return p.input + p.output

    return state.pick_model(state.current(ws, project), agent.settings.models, price)[0]


def run_goal(ws: Workspace, request: RunRequest, emit: Callable[[Event], None]) -> RunOutcome:
    registry, agent, runtime = prepare(ws, request)
    project = registry.project
    kernel_state = StateRun.begin(ws, project)  # None with [state] enabled = false
    limits = resolve_limits(ws, request, agent)
    started_at = utc_now()
    # The model gets the goal as typed; everything written or shown gets it redacted.
    redact = Redactor.from_environment()
    emit = redacting_emit(emit, redact)
    goal_shown = redact(request.goal)
    trace_id, trace_path = new_trace_path(project.short_term_dir, goal_shown, started_at)
    sandbox = build_sandbox(ws, project.workspace_dir)
    meta = {
        "trace_id": trace_id,
        "goal": goal_shown,
        "project": project.name,
        "agent": agent.name,
        "runtime": runtime.name,
        "model": runtime.model,
        "mode": request.mode,
        "status": "running",
        "started_at": iso(started_at),
        "limits": {"max_turns": limits.max_turns, "budget_usd": limits.budget_usd,
                   "timeout_s": limits.timeout_s},
        "sandbox": describe_sandbox(sandbox, registry),
        **request.meta,
        **({"piped_input_chars": len(request.piped_input)} if request.piped_input else {}),
        "specs": registry.spec_hashes(),
        **({"kernel_state": kernel_state.at_start()} if kernel_state else {}),
        "llmunix_version": __version__,
    }
    writer = TraceWriter(trace_path, meta, redact)
    record = _open_record(ws, project, trace_id, trace_path)
    session = RunSession(
        registry=registry,
        agent=agent,
        goal=request.goal,
        context="\n\n".join(part for part in (piped_block(request.piped_input),
                                                request.example) if part),
        live_registry=request.live_registry,
        limits=limits,
        policy=build_policy(ws, project.workspace_dir),
        trace=writer,
        emit=emit,
        model=runtime.model,
        price=price_for(ws, runtime.name, runtime.model),
        sandbox=sandbox,
        memory=AgentMemory(ws, project, ws.config.memory.core_tokens,
                           exclude=relative_path(trace_path, ws.root)),
        create_agent=ws.config.create_agent,
        caution=kernel_state.caution if kernel_state else "",
    )
    session.changes = record.changes if record else None
    session.model_output_chars = ws.config.limits.tool_output_chars
    session.kept_output_chars = ws.config.limits.tool_output_kept_chars
    emit(RunStarted(trace_id, goal_shown, project.name, agent.name, runtime.name,
                    runtime.model, request.mode, str(trace_path), str(project.workspace_dir),
                    sorted(session.allowed_tools(agent) or
                           {"Read", "Write", "Edit", "Glob", "Grep", "Bash", "Agent",
                            *registry.tools}),
                    sorted(session.subagents()), sandbox=meta["sandbox"]))
    if kernel_state:
        emit(KernelState(kernel_state.state.values(), kernel_state.effects))
    clock = time.monotonic()
    status, result, reason, exit_signal = "success", "", "", None
    try:
        result = _drive(runtime, session, limits.timeout_s)
    except LimitReached as exc:
        status, reason = "stopped", exc.message
    except (KeyboardInterrupt, Interrupted) as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        status, reason, exit_signal = "interrupted", endings.reason(signum), signum
    except LlmunixError as exc:
        status, reason = "error", str(exc)
    except Exception as exc:  # noqa: BLE001 - any failure ends the run with its trace intact
        status, reason = "error", f"{type(exc).__name__}: {exc}"
    duration = time.monotonic() - clock
    result, reason = redact(result), redact(reason)
    finished_at = utc_now()
    with endings.held_signals() as held:
        outcome = _finish(ws, project, request, runtime, session, writer, record, status,
                          result, reason, duration, finished_at, goal_shown, redact,
                          kernel_state, limits)
    outcome.exit_signal = exit_signal or held.first
    emit(RunFinished(trace_id, status, result, reason, round(duration, 3), session.turns,
                     session.input_tokens, session.output_tokens, round(session.cost_usd, 6),
                     str(trace_path), {"commit": outcome.commit,
                                       **({"left_out": outcome.left_out}
                                          if outcome.left_out else {}),
                                       **({"commit_error": outcome.commit_error}
                                          if outcome.commit_error else {}),
                                       **({"tokens_estimated": True}
                                          if session.tokens_estimated else {})},
                     session.cache_read_tokens))
    _auto_consolidate(ws, project)
    return outcome


def _finish(ws, project, request, runtime, session, writer, record, status, result, reason,
            duration, finished_at, goal_shown, redact, kernel_state, limits) -> RunOutcome:
    """Finish the trace and record the run (signals held by the caller)."""
    trace_id = writer.meta["trace_id"]
    writer.finish(
        {
            "status": status,
            **({"reason": reason} if reason else {}),
            "model": session.model,
            "finished_at": iso(finished_at),
            "duration_s": round(duration, 3),
            "turns": session.turns,
            "input_tokens": session.input_tokens,
            "output_tokens": session.output_tokens,
            "cache_read_tokens": session.cache_read_tokens,
            "cost_usd": round(session.cost_usd, 6),
            **session.context_log.summary(),
            **({"kernel_state": kernel_state.finish(RunFacts(
                trace_id, status, request.mode, session.refused, session.cost_usd,
                limits.budget_usd), iso(finished_at))} if kernel_state else {}),
            # The server sent no usage: the counts are llmunix's (context/tokens.py).
            **({"tokens_estimated": True} if session.tokens_estimated else {}),
        },
        result,
    )
    outcome = RunOutcome(writer.meta["trace_id"], str(writer.path), status, result, reason,
                         session.turns, session.input_tokens, session.output_tokens,
                         session.cost_usd, duration, model=session.model)
    if _record_follower_use(request, outcome) and record:
        record.changes.add(request.source)
    if request.crystal is not None:
        from llmunix.run.crystallized import record_use

        with contextlib.suppress(LlmunixError):  # memory upkeep never fails a finished run
            record_use(request, outcome.status)
        outcome.spec_files.append(request.crystal.path)
    outcome.spec_files += session.written_specs
    if record is None:
        return outcome
    record.changes.add(*outcome.spec_files)  # the specs llmunix wrote: a sanctioned change
    if kernel_state:  # memory/state.md, rewritten at the end of every run
        record.changes.add(*(p for p in kernel_files(ws, project) if p.name == "state.md"))
    done = True
    if ws.config.memory.commit:
        try:
            outcome.commit = record.commit(run_message(
                outcome.trace_id, goal_shown, runtime=runtime.name, mode=request.mode,
                status=status, cost_usd=outcome.cost_usd, model=outcome.model,
                input_tokens=outcome.input_tokens, output_tokens=outcome.output_tokens,
                duration_s=duration), redact=redact, left_out=outcome.left_out)
        except LlmunixError as exc:  # the trace is on disk; the journal keeps the run for later
            outcome.commit_error = exc.message
            note_commit_failure(writer.path, exc.message)
            done = False
    record.close(done=done)
    return outcome


def _open_record(ws: Workspace, project, trace_id: str, trace_path: Path) -> RunRecord | None:
    try:
        return RunRecord.open(ws, project, trace_id, trace_path)
    except OSError:  # a read-only .llmunix: the run goes on, committed as folders were
        return None


def _auto_consolidate(ws: Workspace, project) -> None:
    if not ws.config.memory.auto_consolidate_every:
        return
    from llmunix.memory import maybe_auto_consolidate

    with contextlib.suppress(LlmunixError):  # memory upkeep never fails a finished run
        maybe_auto_consolidate(ws, project)


def _drive(runtime: Runtime, session: RunSession, timeout_s: float) -> str:
    price = session.price
    if session.limits.budget_usd <= 0 and runtime.name != "replay" and (
            price.input or price.output or price.cache_read):
        raise LimitReached(  # before any call: a budget of $0 means no paid call at all
            f"budget is ${session.limits.budget_usd:g}: no paid model call is made "
            f"({runtime.name}, model {runtime.model or 'default'})",
            hint="raise it with --budget, or use a replay (--mode follower) or a model priced "
            "at 0 in [prices]")
    if runtime.synchronous:  # the replay: no event loop (runtimes/drive.py)
        return call_interruptibly(lambda: run_now(runtime, session))
    import asyncio

    async def bounded() -> str:
        try:
            return await interruptible(asyncio.wait_for(runtime.run(session), timeout=timeout_s))
        except asyncio.TimeoutError:
            raise LimitReached(f"timeout reached ({timeout_s:g} s)") from None

    return asyncio.run(bounded())


def run(ws: Workspace, request: RunRequest, emit: Callable[[Event], None]) -> RunOutcome:
    """Run a goal in the requested mode. `auto` picks one from the learned traces, and a
    follower run that fails is run again as learner; both runs are recorded."""
    from llmunix.run.modes import choose_mode, worked_example
    from llmunix.trace.events import ModeChosen

    if request.mode in ("auto", "crystallized") and request.source is None:
        from llmunix.run.crystallized import run_crystallized

        outcome = run_crystallized(ws, request, emit, run_goal)
        if outcome is not None and (outcome.status != "error" or request.mode != "auto"):
            return outcome
        if outcome is not None:
            emit(ModeChosen("auto", 0.0, outcome.trace_id,
                            f"crystallized tool failed ({outcome.reason.splitlines()[0]}); "
                            "choosing again from the learned traces"))
            request = replace(request, meta={**request.meta, "fallback_from": outcome.trace_id})
    if request.mode not in ("auto", "follower") or request.source is not None:
        return _run_recorded_use(ws, request, emit)
    project = ws.ensure_project(request.project or ws.config.run.project)
    decision = choose_mode(ws, project, request.goal)
    if request.mode == "follower" and decision.path is None or (
        request.mode == "follower" and decision.mode == "learner"
    ):
        raise LlmunixError(
            f"no learned trace matches this goal well enough to follow ({decision.reason})",
            hint="run it as a learner first, then `llmunix memory consolidate`",
        )
    mode = "follower" if request.mode == "follower" else decision.mode
    emit(ModeChosen(mode, decision.score, decision.trace_id, decision.reason))
    chosen = {"mode_decision": {"mode": mode, "score": decision.score,
                                "trace": decision.trace_id, "reason": decision.reason}}
    if mode == "follower":
        follow = replace(request, mode="follower", source=decision.path,
                         meta={**request.meta, **chosen})
        try:
            outcome = _run_recorded_use(ws, follow, emit)
        except TraceError as exc:  # refused before anything ran (memory/replay_check.py)
            if request.mode == "follower":
                raise
            emit(ModeChosen("learner", decision.score, decision.trace_id,
                            f"learned trace not replayed: {exc}; running as learner"))
            return run_goal(ws, replace(request, mode="learner", meta={
                **request.meta, **chosen, "replay_refused": str(exc)}), emit)
        if outcome.status != "error" or request.mode == "follower":
            return outcome
        emit(ModeChosen("learner", decision.score, decision.trace_id,
                        f"follower failed ({outcome.reason.splitlines()[0]}); running as learner"))
        return run_goal(ws, replace(request, mode="learner", meta={
            **request.meta, "fallback_from": outcome.trace_id}), emit)
    if mode == "mixed":
        return run_goal(ws, replace(request, mode="mixed", example=worked_example(decision.path),
                                    meta={**request.meta, **chosen,
                                          "example_trace": decision.trace_id}), emit)
    return run_goal(ws, replace(request, mode="learner", meta={**request.meta, **chosen}), emit)


def _run_recorded_use(ws: Workspace, request: RunRequest, emit) -> RunOutcome:
    if request.mode == "auto":
        request = replace(request, mode="learner")
    if request.mode == "follower" and request.source is not None:
        from llmunix.memory.replay import load_source

        source = load_source(request.source)
        request = replace(request, goal=request.goal or source.goal,
                          meta={"source_trace": source.trace_id, **request.meta})
    return run_goal(ws, request, emit)


def _record_follower_use(request: RunRequest, outcome: RunOutcome) -> bool:
    """A replay of a learned trace updates its record (usage, success rate, confidence)."""
    from llmunix.trace.markdown import read_meta

    if request.mode == "follower" and request.source is not None and outcome.status in (
        "success", "error"
    ) and "goal_signature" in read_meta(request.source):
        from llmunix.memory import record_use

        record_use(request.source, outcome.status == "success")
        return True
    return False
