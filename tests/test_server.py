"""The hub two ways: `chatbus server`, and docker-compose.yml booted without Docker."""

import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis
import yaml
from conftest import free_port
from helpers import CHATBUS

from chatbus import accounts
from chatbus.config import Settings
from chatbus.hub import Hub
from chatbus.server import PERSISTENCE_ARGS, ServerBinary

COMPOSE_FILE = Path(__file__).parent.parent / "docker-compose.yml"


def compose_service() -> dict[str, object]:
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    service: dict[str, object] = compose["services"]["hub"]
    return service


def test_compose_file_runs_valkey_with_persistence_on_loopback_only() -> None:
    service = compose_service()
    command = service["command"]
    assert isinstance(command, list)
    assert command[0] == "valkey-server"
    # The same persistence as `chatbus server`: one hub, two ways to run it.
    assert command[1 : 1 + len(PERSISTENCE_ARGS)] == list(PERSISTENCE_ARGS)
    assert service["ports"] == ["127.0.0.1:${CHATBUS_PORT:-6379}:6379"]
    assert service["volumes"] == ["hub-data:/data"]
    assert "healthcheck" in service


def test_compose_server_arguments_boot_a_real_server(
    server_binary: ServerBinary, tmp_path: Path
) -> None:
    service = compose_service()
    command = [str(c) for c in service["command"]]  # type: ignore[attr-defined]
    port = free_port()
    # The container's own arguments, then what differs outside a container.
    argv = [str(server_binary.path), *command[1:], "--port", str(port), "--bind", "127.0.0.1"]
    argv += ["--dir", str(tmp_path)]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        client = redis.Redis(port=port, socket_timeout=2)
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, process.stdout.read().decode()  # type: ignore[union-attr]
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "the server did not answer"
                time.sleep(0.05)
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
        # The healthcheck's command works against it, too.
        test = service["healthcheck"]["test"]  # type: ignore[index]
        assert test[:2] == ["CMD", "valkey-cli"]
        cli = server_binary.path.with_name("valkey-cli")
        check = subprocess.run(
            [str(cli), "-p", str(port), *test[2:]], capture_output=True, text=True, check=False
        )
        assert check.stdout.strip() == "PONG"
        client.close()
    finally:
        process.terminate()
        process.wait(10)


def start_chatbus_server(
    port: int, data_dir: Path, started: list[tuple[int, int]]
) -> subprocess.Popen[str]:
    server = subprocess.Popen(
        [CHATBUS, "server", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    lines = []
    while not lines or "Press Ctrl-C" not in lines[-1]:
        line = server.stdout.readline()
        assert line, f"chatbus server exited: {lines} {server.stderr.read()}"  # type: ignore[union-attr]
        lines.append(line)
    announced = "".join(lines)
    pid = re.search(r", pid (\d+)", announced)
    assert pid, announced
    started.append((int(pid[1]), port))  # stopped at teardown if the test fails
    assert f"--url redis://127.0.0.1:{port}/0" in announced
    return server


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_chatbus_server_keeps_data_across_a_restart(
    tmp_path: Path, stop_signal: signal.Signals, started_servers: list[tuple[int, int]]
) -> None:
    port = free_port()
    data_dir = tmp_path / "data"
    settings = Settings(url=f"redis://127.0.0.1:{port}/0", namespace="srv", home=tmp_path)
    server = start_chatbus_server(port, data_dir, started_servers)
    hub = Hub(settings)
    accounts.register(hub, "alice", "password1")
    hub.close()
    server.send_signal(stop_signal)  # Ctrl-C, or a service manager stopping it
    out, err = server.communicate(timeout=20)
    assert server.returncode == 0, err
    assert "Hub stopped" in out
    assert (data_dir / "appendonlydir").is_dir()

    server = start_chatbus_server(port, data_dir, started_servers)
    try:
        hub = Hub(settings)
        assert accounts.login(hub, "alice", "password1").name == "alice"
        hub.close()
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=20)
