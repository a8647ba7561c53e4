"""A smoke run of the benchmark harness at tiny sizes.

Benchmarks are not tests: nothing here looks at a timing. It checks that
``python -m benchmarks --quick`` starts its own hub (and, for the cluster
scenario, its own clusters; for the secured one, open and secured hubs and
clusters), runs every scenario for chatbus and the baseline, writes the
JSON, stops what it started, and that no message or presence event was lost
on the way. The room scenario also runs alone (``--only rooms``): a room of
20 members against the same messages sent to each of them as DMs.
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = {
    "latency",
    "throughput",
    "presence",
    "clients",
    "memory",
    "cluster",
    "secured",
    "rooms",
}


def run_quick(out: Path, *options: str, timeout: float) -> "subprocess.CompletedProcess[str]":
    """``python -m benchmarks --quick`` writing to ``out``; it must succeed."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", *options, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_quick_run_writes_every_scenario_with_nothing_lost(tmp_path: Path) -> None:
    out = tmp_path / "quick.json"
    done = run_quick(out, timeout=240)
    document = json.loads(out.read_text())
    assert document["quick"] is True
    assert set(document["scenarios"]) == SCENARIOS
    for name, scenario in document["scenarios"].items():
        assert scenario["lost"] == 0, (name, scenario["lost"])
        assert scenario["rows"], name
    machine = document["machine"]
    for field in ("cpu_model", "cores", "python", "redis_py", "server", "date"):
        assert machine[field], field
    clients = document["scenarios"]["clients"]["details"]["runs"]
    assert all(run["received"] == run["sent"] > 0 for run in clients.values())
    assert clients["chatbus"]["own_copies"] == clients["chatbus"]["sent"]
    presence = document["scenarios"]["presence"]["details"]["runs"]["chatbus"]
    assert presence["outcomes"]["gap"] == 0
    cluster = document["scenarios"]["cluster"]["details"]["runs"]
    assert set(cluster) == {"single", "1m", "3m", "3m+r"}
    for layout in cluster.values():
        assert layout["received"] == layout["sent"] > 0
        assert layout["spread"]["lost"] == 0
    # Only the masters with replicas wait (WAIT 1), once per master a send touches.
    assert cluster["3m+r"]["single"]["wait_calls_per_message"] > 0
    assert cluster["3m"]["single"]["wait_calls_per_message"] == 0
    assert len(cluster["3m+r"]["nodes"]) == 6
    secured = document["scenarios"]["secured"]["details"]["runs"]
    assert set(secured) == {"open", "secured", "open-3m", "secured-3m"}
    for layout in secured.values():
        assert layout["received"] == layout["sent"] > 0
    # The secured path: SADD with every send, and the receiver's collect (ingest.lua)
    # on every bell, a round trip the open hub's receiver does not make.
    for key in ("secured", "secured-3m"):
        assert secured[key]["latency"]["commands_by_name_per_message"]["sadd"] > 0
        assert secured[key]["latency"]["receiver_round_trips_per_message"] > 0
    for key in ("open", "open-3m"):
        assert "sadd" not in secured[key]["latency"]["commands_by_name_per_message"]
        assert secured[key]["latency"]["receiver_round_trips_per_message"] == 0
    # The table names every scenario.
    for scenario in document["scenarios"].values():
        assert scenario["title"] in done.stdout


def test_quick_room_scenario_delivers_every_message_to_every_member(tmp_path: Path) -> None:
    out = tmp_path / "rooms.json"
    done = run_quick(out, "--only", "rooms", timeout=60)
    scenario = json.loads(out.read_text())["scenarios"]["rooms"]
    assert scenario["lost"] == 0
    runs = scenario["details"]["runs"]
    assert set(runs) == {"room", "dms"}
    for kind, run in runs.items():
        assert run["members"] == 20, kind
        assert run["sent"] > 0, kind
        assert run["delivered"] == run["expected"] == run["sent"] * run["members"], kind
        assert run["lost"] == run["duplicates"] == run["unexpected"] == 0, kind
        assert run["latency_ms"]["n"] == run["delivered"], kind
    # A room post is one script call whatever the room's size; DMs are two per
    # member (the member's mailbox and the poster's own copy).
    assert runs["room"]["script_calls_per_message"] == 1
    assert runs["dms"]["script_calls_per_message"] == 2 * 20
    assert scenario["title"] in done.stdout
