"""``python -m benchmarks [--quick] [--only SCENARIO ...] [--out PATH]``.

Starts a hub of its own, runs the scenarios (chatbus and the raw redis-py
baseline each time), prints the table and writes the JSON. The hub and every
worker are stopped by PID on the way out, also on Ctrl-C or SIGTERM.
"""

import argparse
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType, ModuleType

from . import (
    clients_load,
    cluster,
    latency,
    memory,
    presence_storm,
    rooms,
    secured,
    throughput,
)
from .core import FULL, PROJECT_ROOT, QUICK, BenchHub, Context, ScenarioResult, Workers
from .report import cpu_times, cpu_use, machine_info, table, to_json, write_json

SCENARIOS: dict[str, ModuleType] = {
    module.NAME: module
    for module in (
        latency,
        throughput,
        presence_storm,
        clients_load,
        memory,
        cluster,
        secured,
        rooms,
    )
}
DEFAULT_OUT = Path("benchmarks/results/latest.json")  # relative to the project


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="chatbus against raw redis-py pub/sub on one hub of its own.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes: a smoke run of the harness"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=list(SCENARIOS),
        metavar="SCENARIO",
        help=f"run only these scenarios ({', '.join(SCENARIOS)})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=PROJECT_ROOT / DEFAULT_OUT,
        help=f"the JSON file (default {DEFAULT_OUT})",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="run every worker under py-spy and write its samples to DIR",
    )
    return parser.parse_args(argv)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def run(args: argparse.Namespace, names: list[str], say: Callable[[str], None]) -> int:
    sizes = QUICK if args.quick else FULL
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="chatbus-bench-") as work:
        work_dir = Path(work)
        hub = BenchHub(work_dir)
        if args.profile is not None:
            args.profile.mkdir(parents=True, exist_ok=True)
        workers = Workers(work_dir, args.profile)
        try:
            say(f"starting {hub.binary.engine} on {hub.url}")
            hub.start()
            machine = machine_info(hub)
            cpu_before = cpu_times()
            context = Context(hub, sizes, workers, say)
            results: list[ScenarioResult] = []
            for name in names:
                results.append(SCENARIOS[name].run(context))
            machine["during_run"] = cpu_use(cpu_before, cpu_times())
        finally:
            workers.stop_all()
            hub.stop()
    document = to_json(results, machine, sizes, args.quick, time.monotonic() - began)
    write_json(document, args.out)
    print(table(results))
    print(f"\nwritten to {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = [name for name in SCENARIOS if args.only is None or name in args.only]
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)

    def say(text: str) -> None:
        print(f"· {text}", file=sys.stderr, flush=True)

    try:
        return run(args, names, say)
    except KeyboardInterrupt:
        print("interrupted; the hub and the workers were stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
