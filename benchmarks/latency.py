"""Scenario 1, DM latency: one paced sender, one receiver, separate processes.

The sender sends at a fixed rate (1,000 msg/s). Each round starts with
``latency_warmup`` messages that reach the receiver but are not counted; the
rounds alternate chatbus and the baselines and their samples are pooled, to
``latency_samples`` per kind. Latency is receive time minus the send time
written in the body, both from ``time.time_ns`` on one machine. chatbus's
figure covers everything from ``Mailbox.send`` being called to the Receiver's
listener being called: the envelope, the Lua script that appends to the
mailbox and publishes, and the receiver's validation.
"""

import math
from typing import Any

from .clients import run_pair
from .core import Context, Row, ScenarioResult, Target, curve, summarize

NAME = "latency"
TITLE = "DM latency at 1,000 msg/s"
KINDS = ("publish", "spublish", "chatbus")


def run(ctx: Context) -> ScenarioResult:
    sizes = ctx.sizes
    per_round = math.ceil(sizes.latency_samples / sizes.latency_rounds)
    count = sizes.latency_warmup + per_round
    pooled: dict[str, dict[str, list[float]]] = {
        kind: {"latency": [], "calls": []} for kind in KINDS
    }
    totals = {kind: {"sent": 0, "received": 0, "duplicates": 0, "round_trips": 0} for kind in KINDS}
    for round_number in range(1, sizes.latency_rounds + 1):
        for kind in KINDS:
            ctx.say(
                f"latency: round {round_number}/{sizes.latency_rounds}, {kind},"
                f" {count} messages at {sizes.latency_rate:g}/s"
            )
            sent, received = run_pair(
                ctx,
                NAME,
                kind,
                count=count,
                skip=sizes.latency_warmup,
                rate=sizes.latency_rate,
                batch=1,
                keep_samples=True,
            )
            pooled[kind]["latency"] += received["samples_us"]
            pooled[kind]["calls"] += sent["call_samples_us"]
            totals[kind]["sent"] += sent["sent"]
            totals[kind]["received"] += received["received"]
            totals[kind]["duplicates"] += received["duplicates"]
            totals[kind]["round_trips"] += sent["round_trips"]
    runs: dict[str, dict[str, Any]] = {
        kind: {
            **totals[kind],
            "latency_us": summarize(pooled[kind]["latency"]),
            "latency_curve_us": curve(pooled[kind]["latency"]),
            "send_call_us": summarize(pooled[kind]["calls"]),
            "round_trips_per_send": totals[kind]["round_trips"] / totals[kind]["sent"],
        }
        for kind in KINDS
    }
    lost = sum(total["sent"] - total["received"] for total in totals.values())

    def figure(kind: str, group: str, key: str) -> float:
        value: float = runs[kind][group][key]
        return value

    rows = [
        Row(
            "latency p50",
            "us",
            figure("chatbus", "latency_us", "p50"),
            figure("publish", "latency_us", "p50"),
            Target("ratio", "<=", 1.3),
        ),
        Row(
            "latency p99",
            "us",
            figure("chatbus", "latency_us", "p99"),
            figure("publish", "latency_us", "p99"),
            Target("ratio", "<=", 1.5),
        ),
        Row(
            "latency p99.9",
            "us",
            figure("chatbus", "latency_us", "p99.9"),
            figure("publish", "latency_us", "p99.9"),
        ),
        Row(
            "latency p50 vs SPUBLISH",
            "us",
            figure("chatbus", "latency_us", "p50"),
            figure("spublish", "latency_us", "p50"),
        ),
        Row(
            "latency p99 vs SPUBLISH",
            "us",
            figure("chatbus", "latency_us", "p99"),
            figure("spublish", "latency_us", "p99"),
        ),
        Row(
            "send call p50 (sender side)",
            "us",
            figure("chatbus", "send_call_us", "p50"),
            figure("publish", "send_call_us", "p50"),
        ),
        Row(
            "round trips per send",
            "",
            runs["chatbus"]["round_trips_per_send"],
            runs["publish"]["round_trips_per_send"],
            Target("value", "==", 1),
        ),
    ]
    return ScenarioResult(NAME, TITLE, rows, lost, {"runs": runs})
