"""`llmunix.toml`: parsed into a strict model so a typo is reported, not silently ignored.

The configuration in effect is, highest first: `LLMUNIX_RUNTIME` / `LLMUNIX_MODEL` /
`LLMUNIX_PROJECT`, the workspace's `llmunix.toml`, the user's
`$XDG_CONFIG_HOME/llmunix/config.toml` (default `~/.config/llmunix/config.toml`), the defaults.
Command-line flags win over all of them.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Annotated, Literal

from llmunix import __version__
from llmunix.checked import Invalid, Rule, from_plain, to_plain, validate
from llmunix.errors import ConfigError


def _toml():
    """The TOML parser, loaded only when a configuration is new to the cache."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    return tomllib

CONFIG_FILE = "llmunix.toml"
USER_CONFIG = Path("llmunix") / "config.toml"
RUN_ENV = {"LLMUNIX_RUNTIME": "runtime", "LLMUNIX_MODEL": "model", "LLMUNIX_PROJECT": "project"}
# Environment variable names that look like they hold a secret: their values never enter a
# sandbox (tools/sandbox.py) and are redacted from every output (kernel/redact.py).
_SECRET_NAME = re.compile(
    r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL|AUTH|COOKIE|PRIVATE", re.I)
# Names that match but hold a path or a setting, which redacting would only garble.
_NOT_SECRET_NAMES = frozenset({"XAUTHORITY", "SSH_AUTH_SOCK", "KEYTIMEOUT", "GPG_AGENT_INFO",
                               "GNOME_KEYRING_CONTROL", "GNOME_KEYRING_PID"})


def secret_name(name: str) -> bool:
    """Whether an environment variable's name looks like it holds a secret."""
    return bool(_SECRET_NAME.search(name)) and name.upper() not in _NOT_SECRET_NAMES


# Each section is a plain dataclass (llmunix/checked.py): read on every command, checked by
# pydantic only when the text is new (see load_config's cache).
_section = dataclass


@_section
class RunConfig:
    runtime: Literal["claude", "openai", "replay"] = "claude"
    model: str = ""
    project: str = "default"
    agent: str = "system-agent"


@_section
class LimitsConfig:
    max_turns: Annotated[int, Rule(gt=0)] = 40
    budget_usd: Annotated[float, Rule(ge=0)] = 2.0
    timeout_s: Annotated[float, Rule(gt=0)] = 1800
    tool_output_chars: Annotated[int, Rule(ge=0)] = 30_000  # of one tool result, to the model
    # of one Bash, command or python tool output, kept in the trace (its first and last half)
    tool_output_kept_chars: Annotated[int, Rule(ge=1_000, le=100_000_000)] = 1_000_000


@_section
class PolicyConfig:
    deny_commands: list[str] = field(default_factory=list)
    allow_commands: list[str] = field(default_factory=list)
    read_paths: list[str] = field(default_factory=lambda: ["system", "agents"])


def _no_secrets(names: list[str]) -> list[str]:
    for name in names:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"{name!r} is not an environment variable name")
        if secret_name(name):
            raise ValueError(f"{name} looks like a secret; secrets never enter the sandbox")
    return names


@_section
class SandboxConfig:
    """How processes an agent starts are confined (see llmunix/tools/sandbox.py)."""

    mode: Literal["bubblewrap", "off"] = "bubblewrap"
    network: Literal["deny", "allow"] = "deny"
    # extra variable names passed into the sandbox
    env: Annotated[list[str], Rule(after=_no_secrets)] = field(default_factory=list)
    program: str = "bwrap"


@_section
class RequestSettings:
    """How each model request is shaped; None: the next source decides (see `OpenAIConfig`)."""

    max_tokens: Annotated[int | None, Rule(gt=0)] = None  # the longest reply a request may get
    temperature: Annotated[float | None, Rule(ge=0, le=2)] = None  # None: the server's default
    request_timeout_s: Annotated[float | None, Rule(gt=0)] = None  # first byte to last


@_section
class OpenAIConfig(RequestSettings):
    """`[openai]`. Request settings come from the agent's `llmunix:` block, else
    `[openai.models."<model or glob>"]`, else these."""

    max_tokens: Annotated[int, Rule(gt=0)] = 2048
    request_timeout_s: Annotated[float, Rule(gt=0)] = 300.0
    base_url: str = ""
    api_key_env: str = "OPENAI_API_KEY"
    model: str = ""
    loop_guard: Annotated[int, Rule(gt=1)] = 4
    max_retries: Annotated[int, Rule(ge=0)] = 3
    text_tools: list[str] = field(default_factory=list)  # models (globs): text tool calls
    models: dict[str, RequestSettings] = field(default_factory=dict)  # per-model settings


@_section
class Price:
    input: Annotated[float, Rule(ge=0)] = 0.0
    output: Annotated[float, Rule(ge=0)] = 0.0


@_section
class MemoryConfig:
    auto_consolidate_every: Annotated[int, Rule(ge=0)] = 0
    keep_short_term: Annotated[int, Rule(ge=1)] = 200
    follower_threshold: Annotated[float, Rule(ge=0, le=1)] = 0.92
    mixed_threshold: Annotated[float, Rule(ge=0, le=1)] = 0.75
    commit: bool = True
    core_tokens: Annotated[int, Rule(gt=0)] = 1024  # the most each core memory block may hold
    # a live git's index.lock, waited for
    git_lock_wait_s: Annotated[float, Rule(ge=0, le=3600)] = 10.0


@_section
class TelemetryConfig:
    otlp_endpoint: str = ""  # empty: $OTEL_EXPORTER_OTLP_ENDPOINT, else no export
    service_name: str = "llmunix"


@_section
class ModelConfig:
    """`[models."<name or glob>"]`: what llmunix knows about a model."""

    # tokens; else the server's, else 8192
    context_window: Annotated[int | None, Rule(ge=256)] = None


@_section
class ContextConfig:
    """`[context]`: paging of the context window on the openai runtime (context/pager.py)."""

    enabled: bool = True
    high_water: Annotated[float, Rule(gt=0, le=1)] = 0.75  # page out above this share
    low_water: Annotated[float, Rule(gt=0, le=1)] = 0.5  # ... down to this share
    keep_turns: Annotated[int, Rule(ge=1)] = 3  # the newest turns, never paged while they fit
    summarize: bool = True  # fold old turns by the model (false: by fixed rules)

    def __check__(self) -> None:
        if self.low_water >= self.high_water:
            raise ValueError("low_water must be below high_water")


@_section
class StateConfig:
    """`[state]`: the kernel's state (kernel/state.py)."""

    enabled: bool = True


@_section
class CreateAgentConfig:
    """What the CreateAgent tool may do during a run."""

    extra_tools: list[str] = field(default_factory=list)  # beyond its creator's
    allow_shadowing: bool = False  # may a created agent take a system or user agent's name
    max_spec_bytes: Annotated[int, Rule(gt=0, le=1_000_000)] = 32_000


@_section
class Config:
    run: RunConfig = field(default_factory=RunConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    openai: OpenAIConfig = field(default_factory=OpenAIConfig)
    prices: dict[str, Price] = field(default_factory=dict)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    telemetry: TelemetryConfig = field(default_factory=TelemetryConfig)
    models: dict[str, ModelConfig] = field(default_factory=dict)
    context: ContextConfig = field(default_factory=ContextConfig)
    state: StateConfig = field(default_factory=StateConfig)
    create_agent: CreateAgentConfig = field(default_factory=CreateAgentConfig)


_SECTIONS = [RunConfig, LimitsConfig, PolicyConfig, SandboxConfig, RequestSettings, OpenAIConfig,
             Price, MemoryConfig, TelemetryConfig, ModelConfig, ContextConfig, StateConfig,
             CreateAgentConfig]


def default_config_text() -> str:
    """The commented default `llmunix.toml` that `init` writes."""
    from importlib import resources  # only `init` needs it; ~7% of a replay's start-up

    return resources.files("llmunix").joinpath("data", CONFIG_FILE).read_text(encoding="utf-8")


MAX_CONFIG_CHARS = 1_000_000


def user_config_path(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or os.path.join(env.get("HOME") or str(Path.home()),
                                                       ".config")
    return Path(base).expanduser() / USER_CONFIG


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the configuration: {exc}", path=path) from exc


def _merge(low: dict, high: dict) -> dict:
    out = dict(low)
    for key, value in high.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(
            out.get(key), dict) else value
    return out


CACHE_FILE = Path(".llmunix") / "config.marshal"  # in the workspace; ignored by git
_CACHE_FORMAT = 1


def load_config(path: Path, environ: dict[str, str] | None = None) -> Config:
    """The configuration in effect for the workspace whose llmunix.toml is `path`.

    The checked result is kept in `.llmunix/config.marshal`, keyed by the texts it came from
    and the environment values that bear on it: a command whose configuration did not change
    reads it back without parsing TOML or loading pydantic."""
    env = os.environ if environ is None else environ
    sources = [(str(src), _read(src)) for src in (user_config_path(env), path)]
    key = (_CACHE_FORMAT, __version__, _SIGNATURE, tuple(text for _, text in sources),
           tuple(env.get(name) or "" for name in RUN_ENV))
    cache = path.parent / CACHE_FILE
    cached = _cached(cache, key)
    if cached is not None:
        return cached
    config = _load(sources, env)
    if sources[1][1] is not None:  # a workspace's own file: keep the result beside it
        _store(cache, key, config)
    return config


def _load(sources: list[tuple[str, str | None]], env) -> Config:
    layers = []
    for source, text in sources:
        if text is not None:
            parse_config(text, Path(source))  # each file's own mistakes reported with its name
            layers.append(_toml().loads(text))
    data: dict = {}
    for layer in layers:
        data = _merge(data, layer)
    for name, key in RUN_ENV.items():
        if env.get(name):
            data = _merge(data, {"run": {key: env[name]}})
            try:
                validate(RunConfig, data["run"])
            except Invalid as exc:
                raise ConfigError(f"${name}: {exc.errors[0]['msg']}",
                                  hint=f"unset {name} or give it a valid value") from None
    return validate(Config, data, strict=False) if data else Config()


def _signature() -> str:
    """Every section's fields, types and defaults: a cache written by a version whose sections
    differ is not read."""
    parts = []
    for cls in (*_SECTIONS, Config):
        parts.append(f"{cls.__name__}:" + ",".join(
            f"{f.name}:{f.type}="
            + (repr(f.default) if f.default_factory is MISSING else repr(f.default_factory()))
            for f in fields(cls)))
    return ";".join(parts)


_SIGNATURE = _signature()


def _cached(cache: Path, key: tuple) -> Config | None:
    import marshal

    try:
        with open(cache, "rb") as f:  # whole: marshal.load reads a file object piecemeal
            stored_key, data = marshal.loads(f.read())
        if stored_key != key:
            return None
        return from_plain(Config, data)
    except (OSError, EOFError, ValueError, TypeError, KeyError):
        return None  # none yet, or unreadable: checked again and rewritten


def _store(cache: Path, key: tuple, config: Config) -> None:
    import marshal

    tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
    try:
        data = marshal.dumps((key, to_plain(config)))
        cache.parent.mkdir(exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, cache)
    except (OSError, ValueError):
        with contextlib.suppress(OSError):  # read-only workspace or full disk: checked each time
            tmp.unlink(missing_ok=True)


def parse_config(text: str, path: Path) -> Config:
    if len(text) > MAX_CONFIG_CHARS:
        raise ConfigError(f"the configuration is over {MAX_CONFIG_CHARS:,} characters", path=path)
    tomllib = _toml()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # its line is an attribute from Python 3.14 only
        at = re.search(r"\(at line (\d+)", str(exc))
        line = getattr(exc, "lineno", None) or (int(at.group(1)) if at else None)
        raise ConfigError(f"invalid TOML: {exc}", path=path, line=line) from exc
    except (ValueError, RecursionError, MemoryError) as exc:  # 5,000-digit ints, deep arrays
        why = "nested too deeply" if isinstance(exc, RecursionError) else \
            str(exc).split(";")[0] or type(exc).__name__
        raise ConfigError(f"invalid TOML: {why}", path=path,
                          hint="llmunix.toml holds short values; see a fresh `llmunix init`"
                          ) from None
    try:
        return validate(Config, data, strict=True)
    except Invalid as exc:
        err = exc.errors[0]
        dotted = ".".join(str(p) for p in err["loc"])
        key = str(err["loc"][-1]) if err["loc"] else ""
        raise ConfigError(
            f"{dotted}: {err['msg']}",
            path=path,
            line=_line_of_key(text, key),
            hint="see the comments in a fresh `llmunix init` for every valid key",
        ) from None


def _line_of_key(text: str, key: str) -> int | None:
    """TOML parsers don't report positions of valid-but-wrong keys; find the key's first line."""
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith((f"{key} ", f"{key}=")) or stripped == f"[{key}]":
            return number
    return None
