"""What every scenario shares: the hub, worker processes, statistics and results."""

import json
import math
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import redis

from chatbus.config import Settings
from chatbus.hub import Hub
from chatbus.keys import Keys
from chatbus.server import HubProcess, find_server

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Leases outlive every scenario, so no presence change comes from an expiry the
# scenario did not ask for (a 10,000-user storm takes longer than the default).
BENCH_LEASE_TTL = 600.0


# -- sizes --------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    """How much each scenario does; :data:`FULL` is what the issue asks for."""

    # Measurements are split into rounds that alternate chatbus and the
    # baselines, so a disturbance of the machine hits all of them alike.
    latency_rounds: int = 5
    latency_warmup: int = 500  # per round
    latency_samples: int = 5_000  # in all
    latency_rate: float = 1_000.0
    throughput_rounds: int = 3
    throughput_single: int = 10_000  # per round
    throughput_batched: int = 30_000  # per round
    batch: int = 100
    presence_users: int = 10_000
    snapshot_repeats: int = 50
    clients_users: int = 500
    clients_rate: float = 2.0
    clients_duration: float = 60.0
    clients_workers: int = 2
    memory_users: int = 10_000
    memory_messages: int = 5_000
    client_messages: int = 1_000
    # Scenario 6, on 4 layouts (one server, clusters of 1 and 3 masters, 3
    # masters with replicas) in rounds; the spread run once per layout.
    cluster_rounds: int = 3
    cluster_latency_warmup: int = 200  # per round
    cluster_latency_samples: int = 3_000  # in all, per layout
    cluster_single: int = 4_000  # per round
    cluster_batched: int = 20_000  # per round
    cluster_users: int = 300
    cluster_messages: int = 3_000
    # Scenario 7, open and secured hubs (one server, 3 masters) in rounds.
    secured_rounds: int = 3
    secured_latency_warmup: int = 200  # per round
    secured_latency_samples: int = 2_400  # in all, per layout
    secured_single: int = 3_000  # per round
    secured_batched: int = 10_000  # per round
    secured_parts: int = 1_500  # per round, one server only: each side apart
    body_size: int = 64
    # A receiver that got nothing for this long has everything it will get.
    drain_idle: float = 2.0


FULL = Sizes()
QUICK = Sizes(
    latency_rounds=1,
    latency_warmup=20,
    latency_samples=100,
    throughput_rounds=1,
    throughput_single=300,
    throughput_batched=500,
    presence_users=200,
    snapshot_repeats=5,
    clients_users=20,
    clients_duration=1.0,
    memory_users=200,
    memory_messages=200,
    client_messages=50,
    cluster_rounds=1,
    cluster_latency_warmup=10,
    cluster_latency_samples=40,
    cluster_single=60,
    cluster_batched=200,
    cluster_users=20,
    cluster_messages=60,
    secured_rounds=1,
    secured_latency_warmup=10,
    secured_latency_samples=40,
    secured_single=60,
    secured_batched=200,
    secured_parts=50,
    drain_idle=0.5,
)


# -- statistics ---------------------------------------------------------------

PERCENTILE_POINTS = (
    *range(0, 90, 5),
    90, 91, 92, 93, 94, 95, 96, 97, 98, 99, 99.5, 99.9, 100,
)  # fmt: skip


def percentile(ordered: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list (``p`` in 0..100)."""
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summarize(samples: Iterable[float]) -> dict[str, float]:
    """Count, mean and the usual percentiles of ``samples`` (same unit out)."""
    ordered = sorted(samples)
    if not ordered:
        return {"n": 0}
    return {
        "n": len(ordered),
        "mean": sum(ordered) / len(ordered),
        "p50": percentile(ordered, 50),
        "p90": percentile(ordered, 90),
        "p99": percentile(ordered, 99),
        "p99.9": percentile(ordered, 99.9),
        "max": ordered[-1],
    }


def curve(samples: Iterable[float]) -> dict[str, float]:
    """The distribution at :data:`PERCENTILE_POINTS`, for charts."""
    ordered = sorted(samples)
    return {f"{p:g}": percentile(ordered, p) for p in PERCENTILE_POINTS} if ordered else {}


def rss_kib() -> dict[str, int]:
    """This process's resident memory now and at its peak (Linux /proc)."""
    figures = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                figures[key] = int(value.split()[0])
    except OSError:
        return {}
    return {"rss_kib": figures.get("VmRSS", 0), "peak_kib": figures.get("VmHWM", 0)}


def make_body(index: int, size: int, tag: str = "") -> str:
    """A message body that carries its index and send time, padded to ``size``.

    ``time.time_ns`` is comparable between processes on one machine, so a
    receiver in another process computes the latency from the body alone.
    """
    head = f"{tag}{index} {time.time_ns()} "
    return head + "x" * max(1, size - len(head))


def parse_body(body: bytes | str) -> tuple[str, int]:
    """(index with its tag, send time in ns) from a body made by :func:`make_body`."""
    text = body.decode() if isinstance(body, bytes) else body
    index, stamp, _ = text.split(" ", 2)
    return index, int(stamp)


# -- results ------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A goal from the issue: ``on`` the chatbus figure or on chatbus/raw."""

    on: Literal["ratio", "value"]
    op: Literal["<=", ">=", "<", "=="]
    limit: float

    def check(self, value: float | None) -> bool | None:
        if value is None or math.isnan(value):
            return None
        return {
            "<=": value <= self.limit,
            ">=": value >= self.limit,
            "<": value < self.limit,
            "==": value == self.limit,
        }[self.op]

    def __str__(self) -> str:
        subject = "x raw" if self.on == "ratio" else ""
        return f"{self.op} {self.limit:g}{subject}"


@dataclass
class Row:
    """One figure of a scenario, for chatbus and (where it has one) the baseline."""

    metric: str
    unit: str
    chatbus: float | None
    raw: float | None = None
    target: Target | None = None

    @property
    def ratio(self) -> float | None:
        if self.chatbus is None or not self.raw:
            return None
        return self.chatbus / self.raw

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.target.check(self.ratio if self.target.on == "ratio" else self.chatbus)

    def as_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "unit": self.unit,
            "chatbus": self.chatbus,
            "raw": self.raw,
            "ratio": self.ratio,
            "target": str(self.target) if self.target else None,
            "met": self.met,
        }


@dataclass
class ScenarioResult:
    """What one scenario measured. ``lost`` is None where nothing is delivered."""

    name: str
    title: str
    rows: list[Row] = field(default_factory=list)
    lost: int | None = 0
    details: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "lost": self.lost,
            "rows": [row.as_json() for row in self.rows],
            "details": self.details,
        }


# -- the hub ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class BenchHub:
    """A valkey-server for this run only, on a free loopback port.

    It is started like every chatbus hub (append-only file, fsync every
    second), so chatbus's figures include the persistence it runs with.
    """

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.binary = find_server("valkey")
        self.process = HubProcess(self.binary, free_port(), work_dir / "hub")
        self.url = self.process.url
        self.redis: redis.Redis = redis.Redis.from_url(self.url)

    def start(self) -> None:
        self.process.start()

    def stop(self) -> None:
        self.redis.close()
        self.process.stop()

    def settings(self, namespace: str) -> Settings:
        return Settings(
            url=self.url,
            namespace=namespace,
            home=self.work_dir / "home",
            lease_ttl=BENCH_LEASE_TTL,
        )

    def connect(self, namespace: str) -> Hub:
        return Hub(self.settings(namespace))

    def add_accounts(self, namespace: str, names: Iterable[str]) -> None:
        """Minimal accounts: delivery only checks that the hash exists.

        Registering for real costs a scrypt hash (~50 ms) per name, which is
        not what these scenarios measure.
        """
        keys = Keys(namespace)
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.hset(keys.account(name), "name", name)
        pipe.execute()

    def info(self, section: str) -> dict[str, Any]:
        reply: dict[str, Any] = self.redis.info(section)
        return reply

    def cpu_seconds(self) -> float:
        cpu = self.info("cpu")
        return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def new_namespace(scenario: str) -> str:
    """A namespace of its own per measurement: no run sees another's keys."""
    return f"bench-{scenario}-{uuid.uuid4().hex[:8]}"


# -- worker processes ---------------------------------------------------------


class WorkerFailed(RuntimeError):
    """A worker process exited, or did not answer in time."""


def profiler_command(output: Path) -> list[str]:
    """py-spy sampling a command it starts; py-spy is a tool, not a dependency."""
    beside_python = Path(sys.executable).parent / "py-spy"
    py_spy = str(beside_python) if beside_python.exists() else shutil.which("py-spy")
    if py_spy is None:
        raise RuntimeError("--profile needs py-spy: pip install py-spy")
    return [py_spy, "record", "--rate", "250", "--format", "raw", "--output", str(output)]


class Worker:
    """A ``python -m benchmarks.worker`` process, spoken to by lines.

    The worker prints ``ready``, ``note ...`` and finally ``result <json>``;
    it reads commands from its stdin and exits when stdin closes.
    """

    def __init__(
        self, role: str, config: dict[str, Any], log_dir: Path, profile_dir: Path | None = None
    ) -> None:
        self.role = role
        label = "-".join(str(config[key]) for key in ("kind", "batch") if key in config)
        stem = f"{role.replace(':', '-')}-{label}-{uuid.uuid4().hex[:6]}"
        self.log_path = log_dir / f"{stem}.log"
        self._lines: queue.Queue[str | None] = queue.Queue()
        command = [sys.executable, "-m", "benchmarks.worker", role, json.dumps(config)]
        if profile_dir is not None:
            command = [*profiler_command(profile_dir / f"{stem}.txt"), "--", *command]
        with self.log_path.open("wb") as log:
            # A session of its own: Ctrl-C reaches the harness, which stops
            # the workers by PID, and never a worker halfway through a line.
            self.process = subprocess.Popen(
                command,
                cwd=PROJECT_ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                start_new_session=True,
            )
        threading.Thread(target=self._read, name=f"read-{role}", daemon=True).start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _fail(self, why: str) -> WorkerFailed:
        try:
            tail = self.log_path.read_text(errors="replace").strip().splitlines()[-15:]
        except OSError:
            tail = []
        detail = "\n    ".join(tail) or "(no output)"
        return WorkerFailed(f"worker {self.role} (pid {self.pid}) {why}:\n    {detail}")

    def wait_for(self, word: str, timeout: float) -> str:
        """The rest of the next line starting with ``word``."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._fail(f"sent no {word!r} within {timeout:.0f} s")
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self.process.wait()
                raise self._fail(f"exited with status {self.process.returncode}")
            head, _, rest = line.partition(" ")
            if head == word:
                return rest

    def ready(self, timeout: float = 60.0) -> None:
        self.wait_for("ready", timeout)

    def result(self, timeout: float) -> dict[str, Any]:
        answer: dict[str, Any] = json.loads(self.wait_for("result", timeout))
        return answer

    def tell(self, command: str) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            raise self._fail("is gone") from None

    def stop(self) -> None:
        """Close its stdin (it exits), then SIGTERM and SIGKILL by PID if it lingers."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            with suppress(BrokenPipeError):
                self.process.stdin.close()
        for sig, grace in ((None, 3.0), (signal.SIGTERM, 3.0), (signal.SIGKILL, 10.0)):
            if sig is not None:
                try:
                    os.kill(self.pid, sig)
                except ProcessLookupError:
                    break
            try:
                self.process.wait(grace)
                break
            except subprocess.TimeoutExpired:
                continue


class Workers:
    """Starts workers and guarantees that each one is stopped.

    With a ``profile_dir``, each worker runs under py-spy, which writes its
    samples there as collapsed stacks (see :mod:`benchmarks.profiles`).
    """

    def __init__(self, log_dir: Path, profile_dir: Path | None = None) -> None:
        self.log_dir = log_dir
        self.profile_dir = profile_dir
        self._started: list[Worker] = []

    def start(self, role: str, config: dict[str, Any]) -> Worker:
        worker = Worker(role, config, self.log_dir, self.profile_dir)
        self._started.append(worker)
        return worker

    @contextmanager
    def group(self) -> Iterator[Callable[[str, dict[str, Any]], Worker]]:
        """Workers started inside the block are stopped when it ends."""
        mark = len(self._started)
        try:
            yield self.start
        finally:
            for worker in self._started[mark:]:
                worker.stop()
            del self._started[mark:]

    def stop_all(self) -> None:
        for worker in self._started:
            worker.stop()
        self._started.clear()


@dataclass
class Context:
    """What a scenario gets: the hub, the sizes, and a way to start workers."""

    hub: BenchHub
    sizes: Sizes
    workers: Workers
    say: Callable[[str], None]

    def worker_config(self, **config: Any) -> dict[str, Any]:
        """``config`` plus what every worker needs to reach the hub."""
        return {"url": self.hub.url, "lease_ttl": BENCH_LEASE_TTL, **config}


def sizes_json(sizes: Sizes) -> dict[str, Any]:
    return asdict(sizes)
