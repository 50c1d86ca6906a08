"""`llmunix models`: what an OpenAI-compatible server serves."""

from __future__ import annotations

import typer

from llmunix.cli.app import _workspace, app


@app.command()
def models(
    base_url: str | None = typer.Option(
        None, "--base-url", help="OpenAI-compatible server URL (default: as `run` finds it)."),
) -> None:
    """List the models an OpenAI-compatible server serves (GET /v1/models)."""
    from llmunix.errors import WorkspaceError
    from llmunix.runtimes.openai import OpenAIRuntime
    from llmunix.runtimes.openai_server import list_models
    from llmunix.workspace.config import OpenAIConfig

    try:
        config = _workspace().config.openai
    except WorkspaceError:
        config = OpenAIConfig()  # no workspace here: the flag and the environment decide
    runtime = OpenAIRuntime(config=config, base_url=base_url)
    runtime.preflight_connect()
    served = list_models(runtime.base_url, runtime.api_key, api_key_env=config.api_key_env)
    if not served:
        typer.echo(f"the server at {runtime.base_url} serves no model", err=True)
    for name in served:
        if runtime.model_given and name == runtime.model:
            typer.echo(f"{name}  (configured)")
        elif not runtime.model_given and len(served) == 1:
            typer.echo(f"{name}  (used: the only model served)")
        else:
            typer.echo(name)
