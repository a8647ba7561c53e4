"""Scenario 2, DM throughput: one sender to one receiver, as fast as it goes.

Unpipelined: one ``Mailbox.send`` (or one PUBLISH) per round trip. Batched:
``Mailbox.send_many``, the path of ``chatbus send`` reading lines from stdin,
which pipelines ``SEND_BATCH`` messages per round trip, against PUBLISH
pipelined by the same number. The rate is end to end: messages the receiver
got, over the time from the first send to the last receipt. Each figure is
the median of ``throughput_rounds`` rounds that alternate chatbus and the
baselines. A run that lost anything would show it in ``lost``.
"""

import statistics
from typing import Any

from chatbus.messages import SEND_BATCH

from .clients import run_pair
from .core import Context, Row, ScenarioResult, Target

NAME = "throughput"
TITLE = "DM throughput, one sender to one receiver"
KINDS = ("publish", "spublish", "chatbus")
MODES = ("single", "batched")


def _one(ctx: Context, kind: str, mode: str) -> dict[str, Any]:
    sizes = ctx.sizes
    count = sizes.throughput_single if mode == "single" else sizes.throughput_batched
    per_trip = 1 if mode == "single" else SEND_BATCH if kind == "chatbus" else sizes.batch
    sent, received = run_pair(ctx, NAME, kind, count=count, skip=0, rate=0.0, batch=per_trip)
    elapsed = (received["last_ns"] - sent["start_ns"]) / 1e9
    sending = (sent["end_ns"] - sent["start_ns"]) / 1e9
    return {
        "sent": sent["sent"],
        "received": received["received"],
        "duplicates": received["duplicates"],
        "per_round_trip": per_trip,
        "round_trips": sent["round_trips"],
        "end_to_end_per_s": received["received"] / elapsed,
        "sender_per_s": sent["sent"] / sending,
        "latency_us": received["latency_us"],
        # CPU time per message (us) of each process: where the time goes.
        "cpu_us_per_message": {
            "sender": 1e6 * sent["cpu_s"] / sent["sent"],
            "hub": 1e6 * received["hub_cpu_s"] / sent["sent"],
            "receiver": 1e6 * received["cpu_s"] / sent["sent"],
        },
    }


def run(ctx: Context) -> ScenarioResult:
    rounds = ctx.sizes.throughput_rounds
    measured: dict[str, list[dict[str, Any]]] = {}
    for round_number in range(1, rounds + 1):
        for mode in MODES:
            for kind in KINDS:
                ctx.say(f"throughput: round {round_number}/{rounds}, {kind}, {mode}")
                measured.setdefault(f"{kind}/{mode}", []).append(_one(ctx, kind, mode))
    runs: dict[str, dict[str, Any]] = {
        key: {
            "sent": sum(one["sent"] for one in ones),
            "received": sum(one["received"] for one in ones),
            "duplicates": sum(one["duplicates"] for one in ones),
            "per_round_trip": ones[0]["per_round_trip"],
            "end_to_end_per_s": statistics.median(one["end_to_end_per_s"] for one in ones),
            "sender_per_s": statistics.median(one["sender_per_s"] for one in ones),
            "cpu_us_per_message": {
                process: statistics.median(one["cpu_us_per_message"][process] for one in ones)
                for process in ("sender", "hub", "receiver")
            },
            "rounds": ones,
        }
        for key, ones in measured.items()
    }
    lost = sum(run["sent"] - run["received"] for run in runs.values())

    def rate(kind: str, mode: str, key: str = "end_to_end_per_s") -> float:
        value: float = runs[f"{kind}/{mode}"][key]
        return value

    rows = [
        Row(
            "unpipelined msg/s",
            "msg/s",
            rate("chatbus", "single"),
            rate("publish", "single"),
            Target("ratio", ">=", 0.7),
        ),
        Row(
            f"batched ({SEND_BATCH}/trip) msg/s",
            "msg/s",
            rate("chatbus", "batched"),
            rate("publish", "batched"),
            Target("ratio", ">=", 0.5),
        ),
        Row(
            "unpipelined vs SPUBLISH",
            "msg/s",
            rate("chatbus", "single"),
            rate("spublish", "single"),
        ),
        Row(
            "batched vs SPUBLISH", "msg/s", rate("chatbus", "batched"), rate("spublish", "batched")
        ),
        Row(
            "unpipelined, sender side",
            "msg/s",
            rate("chatbus", "single", "sender_per_s"),
            rate("publish", "single", "sender_per_s"),
        ),
        Row(
            "batched, sender side",
            "msg/s",
            rate("chatbus", "batched", "sender_per_s"),
            rate("publish", "batched", "sender_per_s"),
        ),
    ]
    for mode in MODES:
        for process in ("sender", "hub", "receiver"):
            rows.append(
                Row(
                    f"{mode}: {process} CPU per message",
                    "us",
                    runs[f"chatbus/{mode}"]["cpu_us_per_message"][process],
                    runs[f"publish/{mode}"]["cpu_us_per_message"][process],
                )
            )
    return ScenarioResult(NAME, TITLE, rows, lost, {"runs": runs})
