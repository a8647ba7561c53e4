"""``chatbus server``: the hub without Docker, in the foreground."""

import signal
from pathlib import Path
from types import FrameType

import click

from chatbus.config import DEFAULT_URL
from chatbus.server import (
    ENGINES,
    HubProcess,
    ServerBinary,
    data_dir_lock,
    default_data_dir,
    find_server,
)

from .context import friendly_errors

_LOOPBACK = ("127.0.0.1", "::1", "localhost")


@click.command()
@click.option("--port", type=click.IntRange(1, 65535), default=6379, show_default=True)
@click.option("--bind", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the append-only file lives [default: hub-PORT in the platform data dir].",
)
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="auto",
    show_default=True,
    help="valkey: the bundled valkey-server (or one on PATH); redis: redis-server on PATH.",
)
@friendly_errors
def server(port: int, bind: str, data_dir: Path | None, engine: str) -> None:
    """Run a hub in the foreground until Ctrl-C.

    It runs a real server binary with the append-only file on, so messages,
    accounts and unread counts survive a restart.
    """
    binary = find_server(engine)  # type: ignore[arg-type]
    hub = HubProcess(binary, port, data_dir or default_data_dir(port), bind=bind)
    hub.check_port()  # before the data dir is touched: a refusal changes nothing
    with data_dir_lock(hub.data_dir) as lock:
        hub.inherited_fds = (lock,)
        _run(hub, binary)


def _run(hub: HubProcess, binary: ServerBinary) -> None:
    """Run ``hub`` until Ctrl-C, SIGTERM or SIGHUP, or until it exits by itself."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    try:
        hub.start()
        _announce(hub, binary)
        code = hub.wait()
    except KeyboardInterrupt:
        hub.stop()
        click.echo("Hub stopped; its data is saved for the next start.")
        return
    finally:
        hub.stop()  # whatever ended us (a closed pipe, say), the server goes too
    raise click.ClickException(f"the server exited on its own (status {code}); see {hub.log_file}")


def _announce(hub: HubProcess, binary: ServerBinary) -> None:
    origin = "bundled with chatbus" if binary.bundled else str(binary.path)
    pid = hub.process.pid if hub.process else "?"
    click.echo(f"chatbus hub: {binary.engine} {binary.version()} ({origin}), pid {pid}")
    click.echo(f"Data: {hub.data_dir}  (server log: {hub.log_file})")
    default = hub.url == DEFAULT_URL.replace("localhost", "127.0.0.1")
    note = "  (the default: no --url needed)" if default else ""
    click.echo(f"Clients connect with: --url {hub.url}{note}")
    if hub.bind not in _LOOPBACK:
        click.echo(
            "Warning: listening beyond this machine with no password: "
            "anyone who can reach it can read and write the chat."
        )
    click.echo("Press Ctrl-C to stop.")
