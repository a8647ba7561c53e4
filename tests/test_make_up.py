"""`make up` / `make down` (scripts/hub-up.sh, scripts/hub-down.sh), run as make runs them.

The scripts are run directly with make's PORT and BIN: ``make up`` would first
reinstall .venv whenever pyproject.toml is newer. A fake ``docker`` that finds
no engine keeps them on the ``chatbus server`` path, and XDG_STATE_HOME and
XDG_DATA_HOME keep pid files and hub data in the test's own directory. They
never run on port 6379.
"""

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, suppress
from pathlib import Path

import pytest
import redis
from conftest import free_port, make_settings
from helpers import wait_until

from chatbus import accounts
from chatbus.hub import Hub
from chatbus.server import HubProcess, ServerBinary, find_server
from chatbus.server import ServerError as NoServer

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def script_env(tmp_path: Path, port: int, **extra: str) -> dict[str, str]:
    fake = tmp_path / "fake-bin"
    fake.mkdir(exist_ok=True)
    docker = fake / "docker"
    docker.write_text("#!/bin/sh\nexit 1\n")  # `docker info`: no engine here
    docker.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATBUS_")}
    env.update(
        PORT=str(port),
        BIN=str(BIN),
        PATH=f"{fake}{os.pathsep}{env.get('PATH', '')}",
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        **extra,
    )
    return env


def run_script(name: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        ["sh", f"scripts/{name}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def answers(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_connect_timeout=1).ping())
    except redis.ConnectionError:
        return False


def pid_file(tmp_path: Path, port: int) -> Path:
    return tmp_path / "state" / "chatbus" / f"hub-{port}.pid"


@pytest.fixture
def port(tmp_path: Path) -> Iterator[int]:
    """A free port; whatever `make up` left running on it is stopped at the end."""
    chosen = free_port()
    yield chosen
    left = pid_file(tmp_path, chosen)
    if left.exists():
        pid = int(left.read_text())
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        wait_until(lambda: not Path(f"/proc/{pid}").exists(), 20, f"pid {pid} to stop")


def test_make_up_on_another_port_says_how_to_point_chatbus_at_it_and_make_down_stops_it(
    tmp_path: Path, port: int
) -> None:
    env = script_env(tmp_path, port)
    output = run_script("hub-up.sh", env)
    url = f"redis://localhost:{port}/0"
    pid = int(pid_file(tmp_path, port).read_text())
    assert f"Hub: chatbus server (pid {pid}) at {url}" in output
    assert f"stop it with: make down PORT={port}" in output
    lines = output.splitlines()
    # The export comes before the login, so following the lines in order works.
    assert lines[-2:] == [f"    export CHATBUS_URL={url}", "then: chatbus login alice"]
    assert answers(port)
    # Its data went to the data dir of that port, under XDG_DATA_HOME.
    assert (tmp_path / "data" / "chatbus" / f"hub-{port}").is_dir()

    again = run_script("hub-up.sh", env)  # a second `make up`: nothing new starts
    assert f"Hub: already running (chatbus server, pid {pid}) at {url}" in again
    assert f"    export CHATBUS_URL={url}" in again

    stopped = run_script("hub-down.sh", env)
    assert stopped == f"Hub stopped (pid {pid}); its data stays for the next start.\n"
    assert not Path(f"/proc/{pid}").exists()
    assert not answers(port)
    assert not pid_file(tmp_path, port).exists()


def _binaries() -> list[ServerBinary]:
    found = [find_server("valkey")]
    with suppress(NoServer):  # no redis-server on PATH: the Valkey case still runs
        found.append(find_server("redis"))
    return found


@pytest.mark.parametrize("binary", _binaries(), ids=lambda binary: binary.engine)
def test_make_up_names_a_server_it_finds_on_the_port_and_whether_it_holds_chatbus_data(
    tmp_path: Path, binary: ServerBinary
) -> None:
    hub = HubProcess(binary, free_port(), tmp_path / "hub")
    with hub:
        settings = make_settings(hub, tmp_path / "home")
        info = redis.Redis(port=hub.port).info("server")
        engine, version = (
            ("Valkey", info["valkey_version"])
            if binary.engine == "valkey"
            else ("Redis", info["redis_version"])
        )
        env = script_env(tmp_path, hub.port, CHATBUS_NAMESPACE=settings.namespace)
        url = f"redis://localhost:{hub.port}/0"
        where = f"(namespace {settings.namespace})"

        empty = run_script("hub-up.sh", env)
        assert f"Hub: a server already answers at {url}: {engine} {version}, " in empty
        assert f"with no chatbus data {where}." in empty
        assert "chatbus will use it." in empty
        other = hub.port + 1
        assert (
            f"For a hub of chatbus's own: make up PORT={other}, "
            f"then export CHATBUS_URL=redis://localhost:{other}/0"
        ) in empty

        with closing(Hub(settings)) as connection:
            accounts.register(connection, "alice", "correct horse")
        used = run_script("hub-up.sh", env)
        assert re.search(rf"{engine} {re.escape(version)}, holding chatbus data", used), used
        assert where in used
        # It adopted the server: nothing was started, nothing is for `make down`.
        assert not pid_file(tmp_path, hub.port).exists()
