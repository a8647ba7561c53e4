"""A secured hub (`chatbus server --secure`) and a TLS hub (`--tls`), alone and as
a cluster, and docker-compose.yml's secure profile booted without Docker.

TLS runs a server built with it (``tls_server_binary``: Debian's redis-server;
the test command installs it when missing); the rest the bundled valkey-server.
"""

import re
import signal
import socket
import stat
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
import yaml
from click.testing import CliRunner
from cluster_fixtures import ClusterCommand, StartedCommands, free_base_port, start_cluster
from conftest import free_port
from cryptography import x509
from helpers import CHATBUS, wait_until
from redis.cluster import RedisCluster

from chatbus import accounts
from chatbus.config import Settings
from chatbus.errors import HubUnavailable
from chatbus.hub import Hub
from chatbus.local_cluster import LocalCluster
from chatbus.server import (
    PERSISTENCE_ARGS,
    Credentials,
    HubProcess,
    HubSecurity,
    ServerBinary,
    certificate_names,
    find_server,
    no_retry,
    prepare_security,
    read_security,
)
from chatbus.tls import TlsFiles, certificate_hosts, hub_tls_files, make_tls_files
from chatbus_cli.main import cli

COMPOSE_FILE = Path(__file__).parent.parent / "docker-compose.yml"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")


class HubCommand:
    """`chatbus server ARGS` for one hub, run as a user would run it."""

    def __init__(
        self, port: int, data_dir: Path, started: list[tuple[int, int]], *args: str
    ) -> None:
        argv = [CHATBUS, "server", *args, "--port", str(port), "--data-dir", str(data_dir)]
        self.process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        lines: list[str] = []
        while not lines or "Press Ctrl-C" not in lines[-1]:
            line = self.process.stdout.readline()
            if not line:
                self.process.wait(10)
                raise AssertionError(f"chatbus server exited: {lines} {self.process.stderr.read()}")  # type: ignore[union-attr]
            lines.append(line)
        self.text = "".join(lines)
        found = re.search(r", pid (\d+)", self.text)
        assert found, self.text
        self.pid = int(found[1])
        started.append((self.pid, port))  # stopped at teardown if the test fails

    @property
    def url(self) -> str:
        found = re.search(r"Clients connect with: --url (\S+)", self.text)
        assert found, self.text
        return found[1]

    def stop(self) -> str:
        """Ctrl-C; what it printed after."""
        self.process.send_signal(signal.SIGINT)
        out, err = self.process.communicate(timeout=30)
        assert self.process.returncode == 0, err
        assert "Hub stopped" in out
        return out


def refused_anonymously(port: int, tls_ca: Path | None = None) -> bool:
    """True when a client with no user is turned away (the default user is off)."""
    options = {"ssl": True, "ssl_ca_certs": str(tls_ca)} if tls_ca else {}
    with redis.Redis(port=port, socket_timeout=5, retry=no_retry(), **options) as anonymous:  # type: ignore[arg-type]
        try:
            anonymous.ping()
        except redis.AuthenticationError:
            return True
    return False


# --- a secured hub ---------------------------------------------------------------


def test_a_secured_hub_writes_a_private_admin_url_and_keeps_its_acl_users_across_a_restart(
    tmp_path: Path, started_servers: list[tuple[int, int]]
) -> None:
    port = free_port()
    data_dir = tmp_path / "hub"
    first = HubCommand(port, data_dir, started_servers, "--secure")

    admin_file = data_dir / "admin.url"
    assert mode(data_dir) == 0o700
    assert mode(admin_file) == 0o600
    admin_url = admin_file.read_text().strip()
    secret = urlsplit(admin_url).password
    assert secret and re.fullmatch(r"[0-9a-f]{64}", secret)
    assert admin_url == f"redis://admin:{secret}@127.0.0.1:{port}/0"
    # The path and how to use it are said; the secret itself never is.
    assert f"Admin URL (a secret) in {admin_file}; add people with:" in first.text
    assert "export CHATBUS_ADMIN_URL=" in first.text  # not on a command line
    assert secret not in first.text
    assert f"Clients connect with: --url redis://127.0.0.1:{port}/0" in first.text
    # On no command line, nor in the ACL file (a SHA-256 there) or the config.
    assert secret not in cmdline(first.pid)
    assert mode(data_dir / "users.acl") == 0o600
    assert mode(data_dir / "server.conf") == 0o600
    assert secret not in (data_dir / "users.acl").read_text()
    assert secret not in (data_dir / "server.conf").read_text()

    assert refused_anonymously(port)
    with pytest.raises(redis.AuthenticationError):
        redis.Redis.from_url(admin_url.replace(secret, "0" * 64), retry=no_retry()).ping()
    with redis.Redis.from_url(admin_url, decode_responses=True) as admin:
        assert admin.acl_whoami() == "admin"
        assert "off" in admin.acl_getuser("default")["flags"]
        assert sorted(admin.acl_users()) == ["admin", "default"]
        # A user added as `chatbus admin` adds one: set, then saved to the aclfile.
        admin.acl_setuser(
            "carol", enabled=True, passwords=["+carol-secret"], keys=["carol:*"], commands=["+ping"]
        )
        admin.execute_command("ACL", "SAVE")
    first.stop()

    again = HubCommand(port, data_dir, started_servers, "--secure")
    try:
        assert admin_file.read_text().strip() == admin_url  # the same admin
        with redis.Redis.from_url(admin_url, decode_responses=True) as admin:
            assert sorted(admin.acl_users()) == ["admin", "carol", "default"]
        with redis.Redis(port=port, username="carol", password="carol-secret") as carol:
            assert carol.ping()
    finally:
        again.stop()


def make_secured(data_dir: Path, binary: ServerBinary) -> None:
    prepare_security(data_dir, secure=True, tls=False, bind="127.0.0.1", port=free_port())


def make_open(data_dir: Path, binary: ServerBinary) -> None:
    with HubProcess(binary, free_port(), data_dir):
        pass  # a hub that ran: its append-only file is there


def make_tls(data_dir: Path, binary: ServerBinary) -> None:
    prepare_security(data_dir, secure=False, tls=True, bind="127.0.0.1", port=free_port())


def make_nothing(data_dir: Path, binary: ServerBinary) -> None:
    pass


Made = Callable[[Path, ServerBinary], None]
REFUSALS: dict[str, tuple[Made, list[str], str]] = {
    "secured-opened": (make_secured, [], "holds a secured hub (its admin URL is in "),
    "secured-cluster-opened": (make_secured, ["--cluster", "3"], "start it with --secure"),
    "open-secured": (make_open, ["--secure"], "holds a hub made without --secure"),
    "tls-plain": (make_tls, [], "holds a TLS hub (its CA is "),
    "no-tls-binary": (make_nothing, ["--tls", "--engine", "valkey"], "apt install redis-server"),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_a_hub_made_otherwise_or_tls_without_a_binary_for_it_is_refused_in_one_line(
    tmp_path: Path, server_binary: ServerBinary, case: str
) -> None:
    made, args, says = REFUSALS[case]
    data_dir = tmp_path / "hub"
    made(data_dir, server_binary)
    before = sorted(data_dir.rglob("*")) if data_dir.exists() else None
    port = str(free_base_port(3))
    result = CliRunner().invoke(cli, ["server", *args, "--port", port, "--data-dir", str(data_dir)])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ")
    assert says in result.output
    assert result.output.count("\n") == 1, result.output
    after = sorted(data_dir.rglob("*")) if data_dir.exists() else None
    assert after == before  # a refusal changes nothing


def test_own_tls_files_are_given_all_three_together(tmp_path: Path) -> None:
    args = ["server", "--tls-cert", "x.pem", "--data-dir", str(tmp_path / "hub")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert "--tls-cert, --tls-key and --tls-ca go together" in result.output
    assert not (tmp_path / "hub").exists()


def test_a_binary_built_with_tls_is_told_apart_from_one_without(
    server_binary: ServerBinary, tls_server_binary: ServerBinary
) -> None:
    assert server_binary.bundled
    assert not server_binary.supports_tls()  # "Failed finding TLS support"
    assert tls_server_binary.supports_tls()
    assert find_server("auto", tls=True).supports_tls()


# --- TLS files -------------------------------------------------------------------


def test_the_hub_ca_is_made_once_and_a_server_certificate_is_signed_again_for_a_new_address(
    tmp_path: Path,
) -> None:
    tls_dir = tmp_path / "tls"
    files = hub_tls_files(tls_dir, ["127.0.0.1"])
    assert mode(tls_dir) == 0o700
    assert mode(tls_dir / "ca.key") == 0o600
    assert mode(files.key) == 0o600
    assert certificate_hosts(files.cert) == {"127.0.0.1", "::1", "localhost"}
    made = {path: path.read_bytes() for path in tls_dir.iterdir()}

    assert hub_tls_files(tls_dir, ["127.0.0.1"]) == files
    assert {path: path.read_bytes() for path in tls_dir.iterdir()} == made  # reused

    # Listening on another address now: reached by it, or by this machine's name.
    hub_tls_files(tls_dir, certificate_names("10.1.2.3"))
    assert files.ca.read_bytes() == made[files.ca]  # clients keep their CA
    assert certificate_hosts(files.cert) == {
        "127.0.0.1", "::1", "localhost", "10.1.2.3", socket.gethostname(), socket.getfqdn()
    }  # fmt: skip
    ca = x509.load_pem_x509_certificate(files.ca.read_bytes())
    x509.load_pem_x509_certificate(files.cert.read_bytes()).verify_directly_issued_by(ca)


# --- a TLS hub -------------------------------------------------------------------


def client_settings(url: str, home: Path) -> Settings:
    return Settings(url=url, namespace="t" + uuid.uuid4().hex[:12], home=home)


def test_a_tls_hub_takes_its_printed_rediss_url_and_turns_away_plain_and_an_unknown_ca(
    tmp_path: Path, started_servers: list[tuple[int, int]], tls_server_binary: ServerBinary
) -> None:
    port = free_port()
    data_dir = tmp_path / "hub"
    first = HubCommand(port, data_dir, started_servers, "--tls")
    ca = data_dir / "tls" / "ca.pem"
    assert first.url == f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}"
    assert f"TLS only: clients check the hub with the CA certificate {ca}" in first.text
    assert str(tls_server_binary.path) in first.text
    settings = client_settings(first.url, tmp_path / "home")
    hub = Hub(settings)
    try:
        accounts.register(hub, "alice", "password1")
    finally:
        hub.close()

    other_ca = make_tls_files(tmp_path / "other").ca
    for url, says in [
        (f"redis://127.0.0.1:{port}/0", "use a rediss:// URL"),
        (f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={other_ca}", "not signed by a CA"),
    ]:
        wrong = Hub(client_settings(url, tmp_path / "home"))
        try:
            with pytest.raises(HubUnavailable) as refused:
                accounts.registered_name(wrong, "alice")
            assert says in str(refused.value)
            assert "\n" not in str(refused.value)
        finally:
            wrong.close()
    made = ca.read_bytes()
    first.stop()

    again = HubCommand(port, data_dir, started_servers, "--tls")
    try:
        assert ca.read_bytes() == made  # the same CA: clients keep working
        hub = Hub(settings)
        try:
            assert accounts.login(hub, "alice", "password1").name == "alice"
        finally:
            hub.close()
    finally:
        again.stop()


def test_a_secured_tls_hub_runs_with_the_certificate_key_and_ca_given(
    tmp_path: Path, started_servers: list[tuple[int, int]], tls_server_binary: ServerBinary
) -> None:
    mine = make_tls_files(tmp_path / "mine")
    port = free_port()
    data_dir = tmp_path / "hub"
    args = ["--secure", "--tls-cert", str(mine.cert), "--tls-key", str(mine.key)]
    hub = HubCommand(port, data_dir, started_servers, *args, "--tls-ca", str(mine.ca))
    try:
        assert hub.url == f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={mine.ca}"
        assert not (data_dir / "tls").exists()  # no CA of its own
        admin_url = (data_dir / "admin.url").read_text().strip()
        assert admin_url.startswith("rediss://admin:")
        assert admin_url.endswith(f"@127.0.0.1:{port}/0?ssl_ca_certs={mine.ca}")
        with redis.Redis.from_url(admin_url, decode_responses=True) as admin:
            assert admin.acl_whoami() == "admin"
        assert refused_anonymously(port, mine.ca)
    finally:
        hub.stop()


# --- a secured cluster -------------------------------------------------------------


@pytest.fixture(scope="module")
def secure_cluster(
    tmp_path_factory: pytest.TempPathFactory, server_binary: ServerBinary
) -> Iterator[LocalCluster]:
    """3 masters and a replica of each, ACLs on. Its nodes keep their argv as
    given (``set-proc-title no``), so /proc shows what they were started with."""
    cluster = start_cluster(
        server_binary,
        tmp_path_factory.mktemp("secure-cluster"),
        secure=True,
        node_args=("--set-proc-title", "no"),
    )
    try:
        yield cluster
    finally:
        cluster.stop()


def acl_users(cluster: LocalCluster, port: int) -> list[str]:
    with cluster.client(port, decode_responses=True) as client:
        users: list[str] = client.acl_users()
        return sorted(users)


def test_every_node_of_a_secured_cluster_has_the_acl_users_and_replicas_log_in(
    secure_cluster: LocalCluster,
) -> None:
    for port in secure_cluster.ports:
        assert {"admin", "default", "replicator"} <= set(acl_users(secure_cluster, port))
        assert acl_users(secure_cluster, port) == acl_users(secure_cluster, secure_cluster.ports[0])
        assert refused_anonymously(port)
        with secure_cluster.client(port, decode_responses=True) as client:
            assert "off" in client.acl_getuser("default")["flags"]
            replication = client.info("replication")
        if port in secure_cluster.ports[3:]:
            # In sync: the replica logged in to its master as the replicator.
            assert replication["role"] == "slave"
            assert replication["master_link_status"] == "up"
    with RedisCluster.from_url(secure_cluster.admin_url) as admin:
        for i in range(20):  # keys over every master
            admin.set(f"key-{i}", i)
        assert [admin.get(f"key-{i}") for i in range(20)] == [str(i).encode() for i in range(20)]


def test_no_secret_is_on_a_node_command_line_only_in_its_private_files(
    secure_cluster: LocalCluster,
) -> None:
    security = secure_cluster.security
    assert security.admin and security.replicator
    data_dir = secure_cluster.data_dir
    assert mode(data_dir) == 0o700
    assert mode(data_dir / "admin.url") == 0o600
    assert mode(data_dir / "replicator.secret") == 0o600
    assert read_security(data_dir) == security
    for node in secure_cluster.nodes:
        assert node.process is not None
        argv = cmdline(node.process.pid)  # as started: set-proc-title is off
        assert str(node.config_file) in argv
        for secret in (security.admin.password, security.replicator.password):
            assert secret not in argv
            assert secret not in " ".join(node.command())
        assert mode(node.config_file) == 0o600
        assert f'masterauth "{security.replicator.password}"' in node.config_file.read_text()


def on_every_node(cluster: LocalCluster, *command: str) -> None:
    """What `chatbus admin` does: a change on every running node, then ACL SAVE."""
    for node in cluster.running():
        with node.client() as client:
            client.execute_command(*command)
            client.execute_command("ACL", "SAVE")


def test_acl_users_survive_a_restart_and_a_node_that_was_down_catches_up(
    secure_cluster: LocalCluster,
) -> None:
    on_every_node(
        secure_cluster, "ACL", "SETUSER", "dave", "on", ">dave-secret", "~dave:*", "+ping"
    )
    replica = secure_cluster.ports[4]
    secure_cluster.kill_node(replica)
    # Made while that replica was down: only the others have it.
    on_every_node(
        secure_cluster, "ACL", "SETUSER", "erin", "on", ">erin-secret", "~erin:*", "+ping"
    )
    secure_cluster.restart_node(replica)  # its users.acl is replaced by the newest first
    secure_cluster.wait_healthy(30)  # every node has the same ACL users again
    assert {"dave", "erin"} <= set(acl_users(secure_cluster, replica))

    secure_cluster.stop()
    secure_cluster.start(timeout=60)
    assert not secure_cluster.formed  # re-formed from nodes.conf
    for port in secure_cluster.ports:
        assert {"admin", "dave", "erin", "replicator"} <= set(acl_users(secure_cluster, port))
    with redis.Redis(port=replica, username="erin", password="erin-secret") as erin:
        assert erin.ping()


def test_chatbus_server_secure_tls_cluster_with_replicas_is_healthy_and_locked(
    tmp_path: Path, started: StartedCommands, tls_server_binary: ServerBinary
) -> None:
    base = free_base_port(6)
    data_dir = tmp_path / "cluster"
    command = ClusterCommand(base, data_dir, started, ("--secure", "--tls"))
    ca = data_dir / "tls" / "ca.pem"
    assert (
        f"Clients connect with: --url rediss://127.0.0.1:{base}/0?ssl_ca_certs={ca}; "
        "any node's URL works" in command.text
    )
    assert f"Admin URL (a secret) in {data_dir / 'admin.url'}" in command.text
    assert "node-PORT/users.acl on every node" in command.text
    security = read_security(data_dir)
    assert security.admin and security.replicator and security.tls
    assert security.admin.password not in command.text
    assert command.problem() is None  # replicas in sync over TLS, same users everywhere

    admin_url = (data_dir / "admin.url").read_text().strip()
    assert admin_url.startswith(f"rediss://admin:{security.admin.password}@127.0.0.1:{base}/0?")
    with RedisCluster.from_url(admin_url) as admin:
        admin.set("locked", "yes")
        assert admin.get("locked") == b"yes"
    for port in command.ports:
        assert refused_anonymously(port, ca)
        with (
            pytest.raises(redis.ConnectionError),
            redis.Redis(port=port, retry=no_retry()) as plain,
        ):
            plain.ping()
    command.interrupt()


# --- docker-compose.yml's secure profile --------------------------------------------


def compose_services() -> dict[str, dict[str, object]]:
    services: dict[str, dict[str, object]] = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    return services


def test_compose_secure_profile_runs_the_hub_of_chatbus_server_secure_tls() -> None:
    services = compose_services()
    in_profile = {
        name for name, service in services.items() if "secure" in service.get("profiles", [])
    }  # type: ignore[operator]
    assert in_profile == {"secure-setup", "secure-hub"}
    hub = services["secure-hub"]
    tls = TlsFiles(
        Path("/data/tls/ca.pem"), Path("/data/tls/server.pem"), Path("/data/tls/server.key")
    )
    # The same server as `chatbus server --secure --tls`: its config file first,
    # TLS only, the same persistence.
    assert hub["command"] == [
        "valkey-server", "/data/server.conf", *HubSecurity(tls=tls).port_args(6379),
        *PERSISTENCE_ARGS,
    ]  # fmt: skip
    assert hub["ports"] == ["127.0.0.1:${CHATBUS_SECURE_PORT:-6380}:6379"]
    assert hub["volumes"] == services["secure-setup"]["volumes"] == ["secure-data:/data"]
    assert hub["depends_on"] == {"secure-setup": {"condition": "service_completed_successfully"}}


def remapped(text: str, data_dir: Path, port: int) -> str:
    """Compose's text for the host's shell: its /data here, another port, ``$$`` unescaped."""
    text = text.replace("${CHATBUS_SECURE_PORT:-6380}", str(port)).replace("$$", "$")
    return re.sub(r"/data\b", str(data_dir), text)


@pytest.fixture
def compose_secure_hub(
    tmp_path: Path, tls_server_binary: ServerBinary
) -> Iterator[tuple[Path, int]]:
    """secure-setup's script run here, then secure-hub's command: (its /data, its port)."""
    services = compose_services()
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    port = free_port()
    setup = services["secure-setup"]
    assert setup["entrypoint"] == ["sh", "-c"]
    script = remapped(setup["command"][0], data_dir, port)  # type: ignore[index]
    for _ in range(2):  # the second `up` leaves what the first made alone
        done = subprocess.run(
            ["sh", "-c", script], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
    assert "Made before" in done.stdout
    command = [
        str(port) if arg == "6379" else remapped(str(arg), data_dir, port)
        for arg in services["secure-hub"]["command"]  # type: ignore[attr-defined]
    ]
    # The container's own arguments, on another port, then what differs outside one.
    argv = [str(tls_server_binary.path), *command[1:], "--bind", "127.0.0.1"]
    argv += ["--dir", str(data_dir)]
    with (tmp_path / "server.log").open("w") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield data_dir, port
    finally:
        process.terminate()
        process.wait(15)


def test_compose_secure_profile_boots_a_locked_tls_hub_with_chatbus_server_files(
    compose_secure_hub: tuple[Path, int],
) -> None:
    data_dir, port = compose_secure_hub
    ca = data_dir / "tls" / "ca.pem"
    admin_url = (data_dir / "admin.url").read_text().strip()
    secret = urlsplit(admin_url).password
    assert secret and admin_url == f"rediss://admin:{secret}@127.0.0.1:{port}/0"
    # The files `chatbus server --secure --tls` would write for that admin.
    security = HubSecurity(
        admin=Credentials("admin", secret),
        tls=TlsFiles(ca, data_dir / "tls" / "server.pem", data_dir / "tls" / "server.key"),
    )
    assert (data_dir / "users.acl").read_text() == security.acl_file_text()
    assert (data_dir / "server.conf").read_text().splitlines() == security.config_lines(data_dir)
    for private in ("admin.url", "users.acl", "server.conf", "tls/ca.key", "tls/server.key"):
        assert mode(data_dir / private) == 0o600, private
    assert certificate_hosts(security.tls.cert) == {"127.0.0.1", "::1", "localhost"}  # type: ignore[union-attr]

    def answers() -> bool:
        try:
            with redis.Redis.from_url(f"{admin_url}?ssl_ca_certs={ca}") as admin:
                return bool(admin.ping())
        except redis.ConnectionError:
            return False

    wait_until(answers, 20, "the secure hub")
    with redis.Redis.from_url(f"{admin_url}?ssl_ca_certs={ca}", decode_responses=True) as admin:
        assert admin.acl_whoami() == "admin"
        assert admin.config_get("appendonly") == {"appendonly": "yes"}
        assert admin.config_get("port") == {"port": "0"}  # TLS only
    assert refused_anonymously(port, ca)
    # The healthcheck's command works against it (valkey-cli there, redis-cli here).
    test = compose_services()["secure-hub"]["healthcheck"]["test"]  # type: ignore[index]
    assert test[0] == "CMD-SHELL"
    check = remapped(test[1], data_dir, port).replace("valkey-cli", "redis-cli")
    check = check.replace("-p 6379", f"-p {port}")
    assert subprocess.run(["sh", "-c", check], check=False, timeout=30).returncode == 0
