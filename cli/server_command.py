"""``chatbus server``: the hub without Docker, in the foreground."""

import shlex
import signal
import time
from pathlib import Path
from types import FrameType

import click

from chatbus.config import DEFAULT_URL
from chatbus.local_cluster import LocalCluster, default_cluster_data_dir
from chatbus.server import (
    ACL_FILE,
    ADMIN_URL_FILE,
    ENGINES,
    HubProcess,
    HubSecurity,
    ServerBinary,
    ServerError,
    check_security_matches,
    data_dir_lock,
    default_data_dir,
    find_server,
    prepare_security,
)
from chatbus.tls import given_tls_files

from .context import friendly_errors

_LOOPBACK = ("127.0.0.1", "::1", "localhost")
# A node that exits more than this many times in the window is left down.
_RESTARTS_PER_WINDOW = 3
_RESTART_WINDOW = 60.0
_WATCH_INTERVAL = 0.2
DEFAULT_PORT = 6379
# The usual first port of a Redis Cluster, clear of a single hub on 6379.
DEFAULT_CLUSTER_PORT = 7000


@click.command()
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help=f"Port to listen on [default: {DEFAULT_PORT}]; with --cluster, the first node's "
    f"[default: {DEFAULT_CLUSTER_PORT}], the others take the ports after it.",
)
@click.option("--bind", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the append-only file lives [default: hub-PORT, or cluster-PORT with "
    "--cluster, in the platform data dir].",
)
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="auto",
    show_default=True,
    help="valkey: the bundled valkey-server (or one on PATH); redis: redis-server on PATH.",
)
@click.option(
    "--cluster",
    "masters",
    type=click.IntRange(1, 100),
    metavar="N",
    help="Run a Redis Cluster of N masters (3 or more for failover) instead of one server.",
)
@click.option(
    "--replicas",
    type=click.IntRange(0, 5),
    help="With --cluster: replicas per master [default: 0].",
)
@click.option(
    "--secure",
    is_flag=True,
    help="ACLs on: the default user off, an admin made on the first start (its URL, a "
    "secret, in DATA_DIR/admin.url). Every start of that data dir needs it.",
)
@click.option(
    "--tls",
    is_flag=True,
    help="TLS only (rediss://), with a private CA made in DATA_DIR/tls on the first start. "
    "Needs a server built with TLS (Debian's redis-server is; the bundled one is not).",
)
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --tls-key and --tls-ca: your own server certificate instead (implies --tls).",
)
@click.option("--tls-key", type=click.Path(dir_okay=False, path_type=Path), help="Its private key.")
@click.option(
    "--tls-ca",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The CA certificate clients check the hub against.",
)
@friendly_errors
def server(
    *,
    port: int | None,
    bind: str,
    data_dir: Path | None,
    engine: str,
    masters: int | None,
    replicas: int | None,
    secure: bool,
    tls: bool,
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_ca: Path | None,
) -> None:
    """Run a hub in the foreground until Ctrl-C.

    It runs a real server binary with the append-only file on, so messages,
    accounts and unread counts survive a restart. With --cluster it runs a
    local Redis Cluster the same way: formed on the first start, re-formed
    from its node configs on the next. --secure and --tls work with both.
    """
    if masters is None and replicas is not None:
        raise click.UsageError("--replicas needs --cluster N")
    own = (tls_cert, tls_key, tls_ca)
    if any(own) and not all(own):
        raise click.UsageError("--tls-cert, --tls-key and --tls-ca go together")
    tls_files = (
        given_tls_files(tls_cert, tls_key, tls_ca) if tls_cert and tls_key and tls_ca else None
    )
    tls = tls or tls_files is not None
    binary = find_server(engine, tls=tls)  # type: ignore[arg-type]

    def security(data_dir: Path, first_port: int, replication: bool) -> HubSecurity:
        return prepare_security(
            data_dir,
            secure=secure,
            tls=tls,
            bind=bind,
            port=first_port,
            replication=replication,
            tls_files=tls_files,
        )

    if masters is not None:
        base = port or DEFAULT_CLUSTER_PORT
        cluster = LocalCluster(
            binary,
            base,
            data_dir or default_cluster_data_dir(base),
            masters=masters,
            replicas=replicas or 0,
            bind=bind,
        )
        cluster.check_ports()  # before the data dir is touched: a refusal changes nothing
        check_security_matches(cluster.data_dir, secure=secure, tls=tls)
        with data_dir_lock(cluster.data_dir) as lock:
            cluster.inherited_fds = (lock,)
            cluster.security = security(cluster.data_dir, base, bool(replicas))
            _run_cluster(cluster, binary)
        return
    port = port or DEFAULT_PORT
    hub = HubProcess(binary, port, data_dir or default_data_dir(port), bind=bind)
    hub.check_port()  # before the data dir is touched: a refusal changes nothing
    check_security_matches(hub.data_dir, secure=secure, tls=tls)
    with data_dir_lock(hub.data_dir) as lock:
        hub.inherited_fds = (lock,)
        hub.security = security(hub.data_dir, port, False)
        _run(hub, binary)


def _stop_on_signals() -> None:
    """SIGTERM and SIGHUP (a service manager, a closed terminal) stop us like Ctrl-C."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)


def _run(hub: HubProcess, binary: ServerBinary) -> None:
    """Run ``hub`` until Ctrl-C, SIGTERM or SIGHUP, or until it exits by itself."""
    _stop_on_signals()
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


def _run_cluster(cluster: LocalCluster, binary: ServerBinary) -> None:
    """Run ``cluster`` until Ctrl-C, SIGTERM or SIGHUP, or until no node is left.

    A node that exits on its own is started again: it rejoins the cluster (a
    master whose replica took over comes back as its replica), as a service
    manager would restart it. One that keeps exiting is left down, said once.
    """
    _stop_on_signals()
    size = len(cluster.nodes)
    click.echo(f"Starting a cluster of {size} nodes in {cluster.data_dir} ...")
    try:
        cluster.start()
        for port, source in sorted(cluster.acl_copied.items()):
            click.echo(
                f"ACLs: node {port}'s {ACL_FILE} was not node {source}'s, the newest: "
                "replaced by it, so every node has the same users"
            )
        _announce_cluster(cluster, binary)
        _keep_nodes_running(cluster)
    except KeyboardInterrupt:
        cluster.stop()
        click.echo("Hub stopped; its data is saved for the next start.")
        return
    finally:
        cluster.stop()  # whatever ended us (a closed pipe, say), the nodes go too
    raise click.ClickException("every node of the cluster has exited; see their server.log files")


def _keep_nodes_running(cluster: LocalCluster) -> None:
    """Restart nodes as they exit, until every one has been given up on."""
    exits: dict[int, list[float]] = {}
    given_up: set[int] = set()
    while len(given_up) < len(cluster.nodes):
        for node in cluster.nodes:
            if node.port in given_up or node.process is None or node.process.poll() is None:
                continue
            now = time.monotonic()
            recent = [t for t in exits.get(node.port, []) if now - t < _RESTART_WINDOW]
            exits[node.port] = [*recent, now]
            what = f"node {node.port} exited on its own (status {node.process.returncode})"
            if len(recent) >= _RESTARTS_PER_WINDOW:
                given_up.add(node.port)
                click.echo(f"Warning: {what} again; left down, see {node.log_file}", err=True)
                continue
            try:
                cluster.restart_node(node.port)
            except ServerError as error:
                given_up.add(node.port)
                click.echo(f"Warning: {what}; restarting it failed: {error}", err=True)
                continue
            pid = node.process.pid if node.process else "?"
            click.echo(f"Warning: {what}; restarted it (pid {pid}): it rejoins", err=True)
        time.sleep(_WATCH_INTERVAL)


def _announce(hub: HubProcess, binary: ServerBinary) -> None:
    origin = "bundled with chatbus" if binary.bundled else str(binary.path)
    pid = hub.process.pid if hub.process else "?"
    click.echo(f"chatbus hub: {binary.engine} {binary.version()} ({origin}), pid {pid}")
    click.echo(f"Data: {hub.data_dir}  (server log: {hub.log_file})")
    _announce_security(hub.security, hub.data_dir)
    default = hub.url == DEFAULT_URL.replace("localhost", "127.0.0.1")
    note = "  (the default: no --url needed)" if default else ""
    click.echo(f"Clients connect with: --url {hub.url}{note}")
    _warn_if_open(hub.bind, hub.security)
    click.echo("Press Ctrl-C to stop.")


def _announce_cluster(cluster: LocalCluster, binary: ServerBinary) -> None:
    origin = "bundled with chatbus" if binary.bundled else str(binary.path)
    how = "formed" if cluster.formed else "re-formed from its node configs"
    click.echo(
        f"chatbus hub: a Redis Cluster of {len(cluster.nodes)} {binary.engine} "
        f"{binary.version()} nodes ({origin}) on {cluster.bind}, {how}"
    )
    for role in cluster.topology():
        click.echo(f"  node {role.port}: {role.describe()}, pid {role.pid}")
    click.echo(f"Data: {cluster.data_dir}  (node-PORT: nodes.conf, append-only file, server.log)")
    _announce_security(cluster.security, cluster.data_dir, cluster=True)
    click.echo(f"Clients connect with: --url {cluster.url}; any node's URL works")
    _warn_if_open(cluster.bind, cluster.security)
    click.echo("Press Ctrl-C to stop.")


def _announce_security(security: HubSecurity, data_dir: Path, *, cluster: bool = False) -> None:
    """What a secured or TLS hub's users need to know; never a secret itself."""
    if security.acl:
        where = f"node-PORT/{ACL_FILE} on every node" if cluster else f"{ACL_FILE} in the data dir"
        click.echo(f"Secured: ACLs on, the default user off; {where} keeps the users.")
        admin_url = shlex.quote(str(data_dir / ADMIN_URL_FILE))
        click.echo(f"Admin URL (a secret) in {data_dir / ADMIN_URL_FILE}; add people with:")
        # In the environment, not on a command line, which others can read (ps).
        click.echo(f'  export CHATBUS_ADMIN_URL="$(cat {admin_url})"; chatbus admin add-user NAME')
    if security.tls is not None:
        click.echo(f"TLS only: clients check the hub with the CA certificate {security.tls.ca}")


def _warn_if_open(bind: str, security: HubSecurity) -> None:
    if bind in _LOOPBACK:
        return
    if not security.acl:
        click.echo(
            "Warning: listening beyond this machine with no password: "
            "anyone who can reach it can read and write the chat."
        )
    elif security.tls is None:
        click.echo(
            "Warning: listening beyond this machine without TLS: passwords and messages "
            "cross the network in the clear (add --tls)."
        )
