"""`llmunix.toml`: parsed into a strict model so a typo is reported, not silently ignored.

The configuration in effect is, highest first: `LLMUNIX_RUNTIME` / `LLMUNIX_MODEL` /
`LLMUNIX_PROJECT`, the workspace's `llmunix.toml`, the user's
`$XDG_CONFIG_HOME/llmunix/config.toml` (default `~/.config/llmunix/config.toml`), the defaults.
Command-line flags win over all of them.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from llmunix.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

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


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunConfig(_Section):
    runtime: Literal["claude", "openai", "replay"] = "claude"
    model: str = ""
    project: str = "default"
    agent: str = "system-agent"


class LimitsConfig(_Section):
    max_turns: int = Field(40, gt=0)
    budget_usd: float = Field(2.0, ge=0)
    timeout_s: float = Field(1800, gt=0)
    tool_output_chars: int = Field(30_000, ge=0)  # of one tool result, sent to the model
    # of one Bash, command or python tool output, kept in the trace (its first and last half)
    tool_output_kept_chars: int = Field(1_000_000, ge=1_000, le=100_000_000)


class PolicyConfig(_Section):
    deny_commands: list[str] = []
    allow_commands: list[str] = []
    read_paths: list[str] = ["system", "agents"]


class SandboxConfig(_Section):
    """How processes an agent starts are confined (see llmunix/tools/sandbox.py)."""

    mode: Literal["bubblewrap", "off"] = "bubblewrap"
    network: Literal["deny", "allow"] = "deny"
    env: list[str] = []  # extra variable names passed into the sandbox
    program: str = "bwrap"

    @field_validator("env")
    @classmethod
    def _no_secrets(cls, names: list[str]) -> list[str]:
        for name in names:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"{name!r} is not an environment variable name")
            if secret_name(name):
                raise ValueError(f"{name} looks like a secret; secrets never enter the sandbox")
        return names


class RequestSettings(_Section):
    """How each model request is shaped; None: the next source decides (see `OpenAIConfig`)."""

    max_tokens: int | None = Field(None, gt=0)  # the longest reply a request may get
    temperature: float | None = Field(None, ge=0, le=2)  # None: the server's own default
    request_timeout_s: float | None = Field(None, gt=0)  # one request, first byte to last


class OpenAIConfig(RequestSettings):
    """`[openai]`. Request settings come from the agent's `llmunix:` block, else
    `[openai.models."<model or glob>"]`, else these."""

    max_tokens: int = Field(2048, gt=0)
    request_timeout_s: float = Field(300.0, gt=0)
    base_url: str = ""
    api_key_env: str = "OPENAI_API_KEY"
    model: str = ""
    loop_guard: int = Field(4, gt=1)
    max_retries: int = Field(3, ge=0)
    text_tools: list[str] = []  # models (globs) that get the text tool-call protocol
    models: dict[str, RequestSettings] = {}  # per-model request settings


class Price(_Section):
    input: float = Field(0.0, ge=0)
    output: float = Field(0.0, ge=0)


class MemoryConfig(_Section):
    auto_consolidate_every: int = Field(0, ge=0)
    keep_short_term: int = Field(200, ge=1)
    follower_threshold: float = Field(0.92, ge=0, le=1)
    mixed_threshold: float = Field(0.75, ge=0, le=1)
    commit: bool = True
    core_tokens: int = Field(1024, gt=0)  # the most each core memory block may hold
    git_lock_wait_s: float = Field(10.0, ge=0, le=3600)  # a live git's index.lock, waited for


class TelemetryConfig(_Section):
    otlp_endpoint: str = ""  # empty: $OTEL_EXPORTER_OTLP_ENDPOINT, else no export
    service_name: str = "llmunix"


class ModelConfig(_Section):
    """`[models."<name or glob>"]`: what llmunix knows about a model."""

    context_window: int | None = Field(None, ge=256)  # tokens; else the server's, else 8192


class ContextConfig(_Section):
    """`[context]`: paging of the context window on the openai runtime (context/pager.py)."""

    enabled: bool = True
    high_water: float = Field(0.75, gt=0, le=1)  # page out above this share of the window
    low_water: float = Field(0.5, gt=0, le=1)  # ... down to this share
    keep_turns: int = Field(3, ge=1)  # the newest turns, never paged while they fit
    summarize: bool = True  # fold old turns by the model (false: by fixed rules)

    @model_validator(mode="after")
    def _marks_in_order(self) -> ContextConfig:
        if self.low_water >= self.high_water:
            raise ValueError("low_water must be below high_water")
        return self


class StateConfig(_Section):
    """`[state]`: the kernel's state (kernel/state.py)."""

    enabled: bool = True


class CreateAgentConfig(_Section):
    """What the CreateAgent tool may do during a run."""

    extra_tools: list[str] = []  # tools a created agent may have beyond its creator's
    allow_shadowing: bool = False  # may a created agent take a system or user agent's name
    max_spec_bytes: int = Field(32_000, gt=0, le=1_000_000)


class Config(_Section):
    run: RunConfig = RunConfig()
    limits: LimitsConfig = LimitsConfig()
    policy: PolicyConfig = PolicyConfig()
    sandbox: SandboxConfig = SandboxConfig()
    openai: OpenAIConfig = OpenAIConfig()
    prices: dict[str, Price] = {}
    memory: MemoryConfig = MemoryConfig()
    telemetry: TelemetryConfig = TelemetryConfig()
    models: dict[str, ModelConfig] = {}
    context: ContextConfig = ContextConfig()
    state: StateConfig = StateConfig()
    create_agent: CreateAgentConfig = CreateAgentConfig()


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


def load_config(path: Path, environ: dict[str, str] | None = None) -> Config:
    """The configuration in effect for the workspace whose llmunix.toml is `path`."""
    env = os.environ if environ is None else environ
    layers = []
    for source in (user_config_path(env), path):
        text = _read(source)
        if text is not None:
            parse_config(text, source)  # each file's own mistakes are reported with its name
            layers.append(tomllib.loads(text))
    data: dict = {}
    for layer in layers:
        data = _merge(data, layer)
    for name, key in RUN_ENV.items():
        if env.get(name):
            data = _merge(data, {"run": {key: env[name]}})
            try:
                RunConfig.model_validate(data["run"])
            except ValidationError as exc:
                raise ConfigError(f"${name}: {exc.errors()[0]['msg']}",
                                  hint=f"unset {name} or give it a valid value") from exc
    return Config.model_validate(data) if data else Config()


def parse_config(text: str, path: Path) -> Config:
    if len(text) > MAX_CONFIG_CHARS:
        raise ConfigError(f"the configuration is over {MAX_CONFIG_CHARS:,} characters", path=path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None)
        raise ConfigError(f"invalid TOML: {exc}", path=path, line=line) from exc
    except (ValueError, RecursionError, MemoryError) as exc:  # 5,000-digit ints, deep arrays
        why = "nested too deeply" if isinstance(exc, RecursionError) else \
            str(exc).split(";")[0] or type(exc).__name__
        raise ConfigError(f"invalid TOML: {why}", path=path,
                          hint="llmunix.toml holds short values; see a fresh `llmunix init`"
                          ) from None
    try:
        return Config.model_validate(data, strict=True)
    except ValidationError as exc:
        err = exc.errors()[0]
        dotted = ".".join(str(p) for p in err["loc"])
        key = str(err["loc"][-1]) if err["loc"] else ""
        raise ConfigError(
            f"{dotted}: {err['msg']}",
            path=path,
            line=_line_of_key(text, key),
            hint="see the comments in a fresh `llmunix init` for every valid key",
        ) from exc


def _line_of_key(text: str, key: str) -> int | None:
    """TOML parsers don't report positions of valid-but-wrong keys; find the key's first line."""
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith((f"{key} ", f"{key}=")) or stripped == f"[{key}]":
            return number
    return None
