"""A smoke run of the benchmark harness at tiny sizes.

Benchmarks are not tests: nothing here looks at a timing. It checks that
``python -m benchmarks --quick`` starts its own hub (and, for the cluster
scenario, its own clusters; for the secured one, open and secured hubs and
clusters), runs every scenario for chatbus and the baseline, writes the
JSON, stops what it started, and that no message or presence event was lost
on the way.
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = {"latency", "throughput", "presence", "clients", "memory", "cluster", "secured"}


def test_quick_run_writes_every_scenario_with_nothing_lost(tmp_path: Path) -> None:
    out = tmp_path / "quick.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
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
