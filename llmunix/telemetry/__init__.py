"""Exporting runs as OpenTelemetry spans (GenAI semantic conventions) over OTLP. The SDK is
imported only when an endpoint is configured. May import trace/ and lower layers."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from llmunix.errors import ConfigError
from llmunix.workspace.config import Config

TRACES_PATH = "/v1/traces"


def endpoint(config: Config, environ: Mapping[str, str] | None = None) -> str:
    """Where spans go: `[telemetry] otlp_endpoint`, else $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (a
    full URL), else $OTEL_EXPORTER_OTLP_ENDPOINT (a base URL); "" when none is set or
    $OTEL_SDK_DISABLED is true."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return ""
    base = config.telemetry.otlp_endpoint or env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
    full = "" if config.telemetry.otlp_endpoint else env.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
    if full:
        return full
    if not base:
        return ""
    base = base.rstrip("/")
    return base if base.endswith(TRACES_PATH) else base + TRACES_PATH


def recorder(config: Config, redact: Callable[[str], str] = lambda s: s):
    """A SpanRecorder for the configured endpoint, or None when nothing is configured."""
    url = endpoint(config)
    if not url:
        return None
    try:
        from llmunix.telemetry.otlp import SpanRecorder
    except ImportError as exc:
        raise ConfigError(
            f"an OTLP endpoint is set ({url}) but the OpenTelemetry SDK is not installed",
            hint="pip install 'llmunix[telemetry]', or unset the endpoint") from exc
    return SpanRecorder(url, service_name=config.telemetry.service_name, redact=redact)
