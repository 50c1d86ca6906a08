"""The command line's entry point: registers every command group on the app, and `main()` is the
one place that turns an LlmunixError into a message and an exit code."""

from __future__ import annotations

import sys


def _app():
    """The typer app with every command registered."""
    from llmunix.cli.app import app

    # Importing a command module registers its commands; this order is the order of `--help`.
    # isort: off
    from llmunix.cli import boot, run, watch, memory, agents, tools, trace, complete  # noqa: F401
    from llmunix.cli import mcp, status, export  # noqa: F401
    from llmunix.cli import models  # noqa: F401
    # isort: on
    return app


def main() -> None:
    from llmunix.errors import EXIT_ERROR, EXIT_INTERRUPTED, LlmunixError

    try:
        from llmunix.cli import launch

        direct = launch.direct_args(sys.argv[1:])
        if direct is not None:  # a plain `llmunix run`: no typer to start
            import gc

            gc.disable()  # until the run starts (launch.run_request): start-up makes no garbage
            code = launch.start_run(**direct)
        else:
            from llmunix.cli.direct import direct_command

            command = direct_command(sys.argv[1:])  # consolidate, log, boot: no typer either
            if command is not None:
                code = command()
            else:
                _app()(prog_name="llmunix")
                code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except LlmunixError as exc:
        from llmunix.cli import ui

        ui.print_error(exc)
        code = exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        code = EXIT_INTERRUPTED
    except BrokenPipeError:  # `llmunix log | head`: the reader has gone, nothing to say
        _quiet_stdout()
        code = EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, never a trace
        code = _internal_error(exc)
    _exit(code)


def _internal_error(exc: Exception) -> int:
    """A failure llmunix did not foresee: one line on stderr, exit 1; the traceback only when
    LLMUNIX_DEBUG is set."""
    import os

    from llmunix.errors import EXIT_ERROR

    if os.environ.get("LLMUNIX_DEBUG"):
        import traceback

        traceback.print_exception(exc)
    text = " ".join(str(exc).split())[:300] or "no details"
    try:
        sys.stderr.write(f"error: llmunix failed unexpectedly: {type(exc).__name__}: {text} "
                         "(set LLMUNIX_DEBUG=1 to see where)\n")
        sys.stderr.flush()
    except Exception:  # noqa: BLE001 - stderr itself is gone
        pass
    return EXIT_ERROR


def _quiet_stdout() -> None:
    import os

    try:  # point stdout at /dev/null so the interpreter's final flush cannot fail again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _exit(code: int) -> None:
    """Exit with `code`, skipping Python's teardown of every module (~50 ms after a replay,
    ~0.3 s once a model SDK is loaded) with nothing left to do: every file is closed and every
    commit made. The exit handlers run and the output is flushed first; a non-daemon thread
    still at work gets the normal exit, which waits for it."""
    import threading

    main_thread = threading.main_thread()
    if any(t is not main_thread and not t.daemon and t.is_alive()
           for t in threading.enumerate()):
        sys.exit(code)
    import atexit
    import contextlib
    import os

    if "git" in sys.modules:
        # GitPython keeps a `git cat-file` process per repository until the repository object
        # is collected; collect it now, so that process ends with us instead of as an orphan
        import gc

        gc.collect()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (`| head`) or stream
            stream.flush()
    os._exit(code)
