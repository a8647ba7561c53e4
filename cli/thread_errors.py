"""A background thread that fails prints one line, never a traceback.

The receiver turns its own failures into "lost the hub" notices and
reconnects, but the UI's timers and prompt_toolkit's threads have no such
net; Python would print their tracebacks over the chat. The
details go to a log file in the platform state dir instead.
"""

import threading
import time
import traceback
from contextlib import suppress
from pathlib import Path

import click
import platformdirs


def log_file() -> Path:
    return Path(platformdirs.user_log_dir("chatbus")) / "errors.log"


def _report(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    thread = args.thread.name if args.thread is not None else "a thread"
    path = log_file()
    with suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as log:
            log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} in {thread}:\n")
            traceback.print_exception(args.exc_type, args.exc_value, args.exc_traceback, file=log)
    click.echo(
        f"Error: internal error in {thread} ({args.exc_type.__name__}); details in {path}",
        err=True,
    )


def report_thread_errors() -> None:
    """From now on, a thread's uncaught error is one line here and a traceback in the log."""
    threading.excepthook = _report
