"""The table on the terminal, the JSON file, and the machine they came from."""

import datetime
import json
import math
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import redis.utils

from .core import PROJECT_ROOT, BenchHub, ScenarioResult, Sizes, sizes_json


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def _git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except OSError:
        return None
    return done.stdout.strip() or None


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


_CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def cpu_times() -> dict[str, int]:
    """The machine's CPU time by kind since boot, in ticks (Linux /proc/stat)."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except OSError:
        return {}
    return dict(zip(_CPU_FIELDS, map(int, first[1:]), strict=False))


def cpu_use(before: dict[str, int], after: dict[str, int]) -> dict[str, Any]:
    """Busy and stolen (by the hypervisor) shares of all cores between two readings.

    A run whose steal is high, or whose busy share is far above what its own
    processes need, was disturbed and its figures are worth less.
    """
    spent = {kind: after[kind] - before.get(kind, 0) for kind in after}
    total = sum(spent.values()) or 1
    idle = spent.get("idle", 0) + spent.get("iowait", 0)
    return {
        "busy_percent": round(100 * (total - idle) / total, 1),
        "steal_percent": round(100 * spent.get("steal", 0) / total, 2),
        "load_average_at_end": list(os.getloadavg()),
    }


def machine_info(hub: BenchHub) -> dict[str, Any]:
    server = hub.info("server")
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "load_average_at_start": list(os.getloadavg()),
        "os": platform.platform(),
        "python": platform.python_version(),
        "redis_py": _version("redis"),
        "hiredis": _version("hiredis") if redis.utils.HIREDIS_AVAILABLE else None,
        "chatbus": _version("chatbus"),
        "commit": _git_commit(),
        "server": f"{hub.binary.engine} {server.get('valkey_version') or server['redis_version']}",
        "server_binary": str(hub.binary.path),
        "server_persistence": "appendonly yes, appendfsync everysec",
    }


def to_json(
    results: list[ScenarioResult],
    machine: dict[str, Any],
    sizes: Sizes,
    quick: bool,
    seconds: float,
) -> dict[str, Any]:
    return {
        "schema": 1,
        "quick": quick,
        "machine": machine,
        "sizes": sizes_json(sizes),
        "duration_s": round(seconds, 1),
        "scenarios": {result.name: result.as_json() for result in results},
    }


def write_json(document: dict[str, Any], path: Path) -> None:
    """Write through a temporary file, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(json.dumps(document, indent=2) + "\n")
    partial.replace(path)


def number(value: float | None) -> str:
    """A figure with as many digits as it deserves."""
    if value is None or math.isnan(value):
        return "-"
    size = abs(value)
    if size >= 100 or value == int(value):
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "MISSED", None: ""}[met]


def _ratio(value: float | None) -> str:
    """A ratio to two decimals, or two significant digits below 0.01 (not "0.00x")."""
    if value is None:
        return "-"
    return f"{value:.2g}x" if 0 < abs(value) < 0.01 else f"{value:.2f}x"


# Sections whose two columns are not chatbus and raw redis-py: what each holds
# (the ratio is the first over the second). Rooms: one room of N members
# against the same messages sent to each member as a DM.
COLUMNS: dict[str, tuple[str, str]] = {"rooms": ("room", "DMs")}


def table(results: list[ScenarioResult]) -> str:
    """The figures as a plain text table, one section per scenario."""
    header = ("metric", "unit", "chatbus", "raw", "ratio", "target", "")
    lines: list[tuple[str, ...]] = []
    for result in results:
        lost = "" if result.lost is None else f"  (lost: {result.lost})"
        lines.append((f"[{result.title}]{lost}",))
        if result.name in COLUMNS:
            first, second = COLUMNS[result.name]
            lines.append(("  (columns)", "", first, second, f"{first}/{second}", "", ""))
        for row in result.rows:
            ratio = _ratio(row.ratio)
            lines.append(
                (
                    "  " + row.metric,
                    row.unit,
                    number(row.chatbus),
                    number(row.raw),
                    ratio,
                    str(row.target) if row.target else "",
                    _verdict(row.met),
                )
            )
    widths = [
        max(len(line[i]) for line in [header, *lines] if len(line) > 1) for i in range(len(header))
    ]
    right = {2, 3, 4}

    def render(line: tuple[str, ...]) -> str:
        if len(line) == 1:
            return line[0]
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(line)
        ]
        return "  ".join(cells).rstrip()

    rule = "-" * len(render(header))
    return "\n".join([render(header), rule, *(render(line) for line in lines)])
