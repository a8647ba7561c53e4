"""The local Redis Cluster: the test harness, `chatbus server --cluster`, and
docker-compose.yml's cluster profile booted without Docker."""

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import yaml
from click.testing import CliRunner
from cluster_fixtures import (
    NODE_TIMEOUT_MS,
    ClusterCommand,
    StartedCommands,
    fail_over,
    free_base_port,
    restore,
    running_node,
)
from helpers import CHATBUS, wait_until
from redis.cluster import RedisCluster

from chatbus.local_cluster import (
    BUS_PORT_OFFSET,
    LocalCluster,
    cluster_node_args,
    cluster_problem,
    stop_servers,
)
from chatbus.server import PERSISTENCE_ARGS, ServerBinary, ServerError
from chatbus_cli.main import cli

COMPOSE_FILE = Path(__file__).parent.parent / "docker-compose.yml"


def node_id(port: int) -> str:
    with redis.Redis(port=port, decode_responses=True) as client:
        found: str = client.execute_command("CLUSTER", "MYID")
        return found


def config(port: int, name: str) -> str:
    with redis.Redis(port=port, decode_responses=True) as client:
        value: str = client.config_get(name)[name]
        return value


# --- the harness ---------------------------------------------------------------


def test_the_session_cluster_has_three_masters_each_with_a_synced_replica(
    cluster: LocalCluster,
) -> None:
    assert cluster_problem(cluster.bind, cluster.ports, masters=3) is None
    roles = cluster.topology()
    masters = [role for role in roles if role.is_master]
    assert [m.port for m in masters] == list(cluster.ports[:3])
    assert sorted(r for m in masters for r in m.slots) == [(0, 5460), (5461, 10921), (10922, 16383)]
    assert {role.port: role.master_port for role in roles if not role.is_master} == {
        cluster.ports[3 + i]: cluster.ports[i] for i in range(3)
    }
    for port in cluster.ports:
        # Its cluster bus answers on port + 10000, and it has its own folder.
        socket.create_connection(("127.0.0.1", port + BUS_PORT_OFFSET), timeout=2).close()
        assert (cluster.data_dir / f"node-{port}" / "nodes.conf").is_file()
        assert config(port, "cluster-node-timeout") == str(NODE_TIMEOUT_MS)
        assert config(port, "repl-diskless-sync-delay") == "0"
        assert config(port, "appendonly") == "yes"
    assert cluster.url == f"redis://127.0.0.1:{cluster.ports[0]}/0"


def test_a_killed_master_fails_over_to_its_replica_and_comes_back_as_a_replica(
    own_cluster: LocalCluster,
) -> None:
    key = "failover-test"
    master = own_cluster.master_for(key)
    with redis.Redis(port=master.port) as client:
        client.set(key, "kept")
        assert client.wait(1, 5000) == 1  # the replica has it

    promoted = fail_over(own_cluster, master.port)

    assert own_cluster.master_for(key).port == promoted.port
    with redis.Redis(port=promoted.port) as client:
        assert client.get(key) == b"kept"
    restore(own_cluster)
    back = next(role for role in own_cluster.topology() if role.port == master.port)
    assert back.master_port == promoted.port
    assert cluster_problem(own_cluster.bind, own_cluster.ports, masters=3) is None


def test_a_data_dir_holding_a_cluster_of_another_shape_is_refused_before_any_start(
    server_binary: ServerBinary, tmp_path: Path
) -> None:
    base = free_base_port(6)
    for port in range(base, base + 6):
        (tmp_path / f"node-{port}").mkdir()
        (tmp_path / f"node-{port}" / "nodes.conf").write_text("")
    smaller = LocalCluster(server_binary, base, tmp_path, masters=3)
    with pytest.raises(ServerError, match=f"holds a cluster of nodes {base}, .*same --port"):
        smaller.start()
    assert smaller.running() == []


TURNS_DOWN_THE_FIRST_SIGTERM = """
import signal, sys
asked = []
def on_term(*_):
    if asked:
        sys.exit(0)
    asked.append(1)
signal.signal(signal.SIGTERM, on_term)
print("ready", flush=True)
while True:
    signal.pause()
"""


def test_stop_servers_asks_again_a_server_that_turned_sigterm_down() -> None:
    # Like a replica writing its first append-only file just after a sync.
    process = subprocess.Popen(
        [sys.executable, "-c", TURNS_DOWN_THE_FIRST_SIGTERM], stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    assert process.stdout.readline() == b"ready\n"
    stop_servers([process], timeout=30)
    assert process.returncode == 0  # it exited by itself: not SIGKILLed after 30 s


# --- chatbus server --cluster ----------------------------------------------------


@pytest.fixture
def base_port() -> int:
    return free_base_port(6)


def test_chatbus_server_cluster_keeps_data_and_node_ids_across_ctrl_c_and_a_restart(
    tmp_path: Path, base_port: int, started: StartedCommands
) -> None:
    data_dir = tmp_path / "cluster"
    first = ClusterCommand(base_port, data_dir, started)
    assert (
        f"Clients connect with: --url redis://127.0.0.1:{base_port}/0; any node's URL works"
        in first.text
    )
    assert "formed\n" in first.lines[1]
    assert len(first.pids) == 6
    for port, pid in first.pids.items():
        with redis.Redis(port=port) as client:
            assert int(client.info("server")["process_id"]) == pid
    ids = {port: node_id(port) for port in first.ports}
    with RedisCluster(host="127.0.0.1", port=base_port) as client:
        client.set("greeting", "hello")

    # A node that dies is said, and started again: it rejoins the cluster.
    replica = base_port + 5
    os.kill(first.pids[replica], signal.SIGKILL)
    said = first.stderr_line(timeout=30)
    assert f"node {replica} exited on its own (status -9); restarted it (pid " in said
    first.pids[replica] = int(re.search(r"\(pid (\d+)\)", said).group(1))  # type: ignore[union-attr]
    started.servers.append((first.pids[replica], replica))
    wait_until(lambda: cluster_problem("127.0.0.1", first.ports, masters=3) is None, 30, "healed")

    out, _ = first.interrupt()
    assert "Hub stopped; its data is saved for the next start." in out
    assert not [port for port, pid in first.pids.items() if running_node(pid, port)]

    again = ClusterCommand(base_port, data_dir, started)
    assert "re-formed from its node configs" in again.lines[1]
    assert {port: node_id(port) for port in again.ports} == ids
    with RedisCluster(host="127.0.0.1", port=base_port + 4) as client:
        assert client.get("greeting") == b"hello"
    again.interrupt()
    assert not [port for port, pid in again.pids.items() if running_node(pid, port)]


@pytest.mark.parametrize("busy_offset", [2, BUS_PORT_OFFSET + 4], ids=["node port", "bus port"])
def test_chatbus_server_cluster_refuses_a_busy_port_in_one_line_and_starts_nothing(
    tmp_path: Path, base_port: int, busy_offset: int
) -> None:
    busy = base_port + busy_offset
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", busy))
        squatter.listen()
        argv = [CHATBUS, "server", "--cluster", "3", "--replicas", "1", "--port", str(base_port)]
        argv += ["--data-dir", str(tmp_path / "cluster")]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"Error: port {busy} on 127.0.0.1")
    if busy_offset > BUS_PORT_OFFSET:
        assert f"the cluster bus of node {busy - BUS_PORT_OFFSET}" in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "cluster").exists()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--replicas", "1"], 2, "--replicas needs --cluster N"),
        (["--cluster", "2", "--replicas", "1"], 1, "replicas need at least 3 masters"),
        (["--cluster", "3", "--bind", "0.0.0.0"], 1, "cannot listen on 0.0.0.0"),  # noqa: S104
        (["--cluster", "3", "--bind", "localhost"], 1, "listens on an IP address, not 'localhost'"),
        (["--cluster", "3", "--port", "55534"], 1, "choose a port from 1 to 55533"),
    ],
)
def test_chatbus_server_cluster_rejects_what_cannot_work(
    args: list[str], code: int, message: str, tmp_path: Path
) -> None:
    result = CliRunner().invoke(cli, ["server", *args, "--data-dir", str(tmp_path / "d")])
    assert result.exit_code == code
    assert message in result.output
    assert not (tmp_path / "d").exists()


# --- docker-compose.yml's cluster profile ------------------------------------------


def compose_services() -> dict[str, dict[str, object]]:
    services: dict[str, dict[str, object]] = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    return services


COMPOSE_NODES = {f"cluster-{7000 + i}": 7000 + i for i in range(6)}


def test_compose_cluster_profile_is_the_topology_of_chatbus_server_cluster() -> None:
    services = compose_services()
    assert "profiles" not in services["hub"]  # plain `docker compose up` is unchanged
    in_profile = {
        name for name, service in services.items() if "cluster" in service.get("profiles", [])
    }
    assert in_profile == {"cluster-create", *COMPOSE_NODES}
    for name, port in COMPOSE_NODES.items():
        service = services[name]
        assert service["profiles"] == ["cluster"]
        assert service["network_mode"] == "host"
        assert service["volumes"] == [f"{name}:/data"]
        # The same node as `chatbus server --cluster` runs, on its own port.
        assert service["command"] == [
            "valkey-server", "--port", str(port), "--bind", "127.0.0.1",
            *cluster_node_args(), *PERSISTENCE_ARGS,
        ]  # fmt: skip
    assert services["cluster-create"]["profiles"] == ["cluster"]


def remapped(text: str, ports: dict[int, int]) -> str:
    """Compose's text for the host's shell: other ports, ``$$`` unescaped."""
    text = re.sub(r"\b700[0-5]\b", lambda m: str(ports[int(m[0])]), text)
    return text.replace("$$", "$")


@pytest.fixture
def compose_nodes(server_binary: ServerBinary, tmp_path: Path) -> Iterator[dict[int, int]]:
    """The compose cluster's nodes with their own arguments, on free ports: {7000: port}."""
    base = free_base_port(6)
    ports = {port: base + i for i, port in enumerate(COMPOSE_NODES.values())}
    services = compose_services()
    processes = []
    try:
        for name in COMPOSE_NODES:
            command = [str(arg) for arg in services[name]["command"]]  # type: ignore[attr-defined]
            # The container's own arguments, on other ports; its /data is a folder here.
            argv = [str(server_binary.path), *(remapped(arg, ports) for arg in command[1:])]
            argv += ["--dir", str(tmp_path / name)]
            (tmp_path / name).mkdir()
            with (tmp_path / f"{name}.log").open("w") as log:
                processes.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT))
        yield ports
    finally:
        stop_servers(processes)


def test_compose_cluster_profile_forms_a_healthy_cluster_and_leaves_it_alone_on_the_next_up(
    server_binary: ServerBinary, compose_nodes: dict[int, int]
) -> None:
    services = compose_services()
    creator = services["cluster-create"]
    assert creator["entrypoint"] == ["sh", "-c"]
    script = remapped(creator["command"][0], compose_nodes)  # type: ignore[index]
    env = {**os.environ, "PATH": f"{server_binary.path.parent}:{os.environ['PATH']}"}

    def create() -> str:
        done = subprocess.run(
            ["sh", "-c", script], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    create()
    ports = list(compose_nodes.values())
    wait_until(
        lambda: cluster_problem("127.0.0.1", ports, masters=3) is None, 30, "a healthy cluster"
    )
    for name in COMPOSE_NODES:
        test = services[name]["healthcheck"]["test"]  # type: ignore[index]
        assert test[0] == "CMD-SHELL"
        check = subprocess.run(["sh", "-c", remapped(test[1], compose_nodes)], env=env, check=False)
        assert check.returncode == 0, f"{name}'s healthcheck failed"
    assert "formed before" in create()
    assert cluster_problem("127.0.0.1", ports, masters=3) is None
