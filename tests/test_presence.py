"""Presence: leases, events with seq, snapshots, crashes."""

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import Recorder, wait_until

from chatbus import accounts, lua
from chatbus.config import Settings
from chatbus.hub import Hub
from chatbus.presence import (
    Lease,
    OnlineList,
    PresenceEvent,
    parse_event,
    presence_call,
    snapshot,
)
from chatbus.receiver import Receiver

AGENT = Path(__file__).parent / "agents" / "receiver_agent.py"


@pytest.fixture
def watcher(hub: Hub) -> Iterator[Recorder]:
    """A logged-in observer whose receiver follows the users channel."""
    accounts.register(hub, "watcher", "password1")
    recorder = Recorder()
    receiver = Receiver(hub, "watcher", recorder, after_id="0-0")
    receiver.start()
    assert receiver.wait_connected(10)
    yield recorder
    receiver.stop()


def test_join_and_leave_events_carry_consecutive_seq_and_the_count(
    hub: Hub, watcher: Recorder
) -> None:
    lease = Lease(hub, "alice")
    assert lease.renew() is True
    assert lease.renew() is False  # a heartbeat, not a second join
    assert lease.release() is True
    wait_until(lambda: len(watcher.events) >= 2, 5, "join and leave")
    join, leave = watcher.events[:2]
    assert (join.kind, join.name, join.online) == ("join", "alice", 2)
    assert (leave.kind, leave.name, leave.online) == ("leave", "alice", 1)
    assert leave.seq == join.seq + 1
    assert watcher.online == ["watcher"]


def test_a_name_stays_online_while_any_of_its_leases_lives(hub: Hub) -> None:
    laptop, phone = Lease(hub, "bob"), Lease(hub, "bob")
    assert laptop.renew() is True
    assert phone.renew() is False
    assert laptop.release() is False
    assert snapshot(hub)[1] == ["bob"]
    assert phone.release() is True
    assert snapshot(hub)[1] == []


def test_the_snapshot_lists_names_alphabetically_whatever_the_lease_order(hub: Hub) -> None:
    # Leases taken later expire later; the hub keeps expiry order, users read names.
    for name in ("zoe", "Bob", "alice"):
        Lease(hub, name).renew()
    assert snapshot(hub)[1] == ["alice", "Bob", "zoe"]


def test_an_expired_lease_is_reaped_on_the_next_read(hub: Hub, settings: Settings) -> None:
    Lease(hub, "ghost").renew()
    seq_before, names = snapshot(hub)
    assert "ghost" in names
    time.sleep(settings.lease_ttl + 0.1)  # the lease must really expire in server time
    seq_after, names = snapshot(hub)
    assert names == []
    assert seq_after == seq_before + 1  # the reap published a leave event


def test_events_never_carry_the_whole_list(hub: Hub) -> None:
    sizes = []
    pubsub = hub.topology.subscriber_for(hub.keys.users_channel).client.pubsub()
    pubsub.ssubscribe(hub.keys.users_channel)
    for i in range(200):
        Lease(hub, f"user{i:03d}").renew()
    deadline = time.monotonic() + 5
    while len(sizes) < 200 and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=1)
        if message and message["type"] == "smessage":
            sizes.append(len(message["data"]))
    pubsub.close()
    assert len(sizes) == 200
    assert max(sizes) < 100  # constant size: type, name, seq and count only


def test_online_list_applies_events_in_order_and_asks_for_a_snapshot_on_a_gap() -> None:
    online = OnlineList(5, ["alice"])
    assert online.apply(PresenceEvent("join", "bob", 6, 2)) == "applied"
    assert online.apply(PresenceEvent("join", "bob", 6, 2)) == "stale"
    assert online.apply(PresenceEvent("leave", "alice", 4, 0)) == "stale"
    assert online.apply(PresenceEvent("leave", "alice", 8, 1)) == "gap"
    assert online.names == ["alice", "bob"]
    assert "BOB" in online


def test_the_receiver_resyncs_when_it_sees_a_gap(hub: Hub, watcher: Recorder) -> None:
    snapshots_before = watcher.snapshots
    Lease(hub, "alice").renew()
    wait_until(lambda: "alice" in watcher.online, 5, "alice online")
    # Lose an event: bump the sequence without publishing, then change presence.
    hub.redis.incr(hub.keys.presence_seq)
    Lease(hub, "bob").renew()
    wait_until(lambda: watcher.snapshots > snapshots_before, 5, "a new snapshot")
    assert watcher.online == ["alice", "bob", "watcher"]


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"null",
        b"[]",
        b'{"type":"join"}',
        b'{"type":"kick","name":"a","seq":1,"online":1}',
        b'{"type":"join","name":"a b","seq":1,"online":1}',
        b'{"type":"join","name":"a","seq":"1","online":1}',
    ],
)
def test_malformed_presence_events_are_refused(raw: bytes) -> None:
    with pytest.raises(ValueError):
        parse_event(raw)


def start_agent(settings: Settings, name: str) -> subprocess.Popen[str]:
    agent = subprocess.Popen(
        [
            sys.executable,
            str(AGENT),
            settings.url,
            settings.namespace,
            name,
            str(settings.lease_ttl),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert agent.stdout is not None
    assert agent.stdout.readline().strip() == "connected"
    return agent


@pytest.mark.slow
def test_a_client_killed_with_sigkill_leaves_within_the_lease_ttl(
    hub: Hub, settings: Settings, watcher: Recorder
) -> None:
    agent = start_agent(settings, "crasher")
    wait_until(lambda: "crasher" in watcher.online, 5, "crasher online")
    killed_at = time.monotonic()
    agent.send_signal(signal.SIGKILL)
    agent.wait()
    # The watcher's own heartbeats reap the dead lease: within the TTL plus one
    # heartbeat interval of the watcher (a third of the TTL), plus a second for
    # a busy machine. Reaping only at the next lease's end (2 x TTL) fails this.
    wait_until(lambda: "crasher" not in watcher.online, settings.lease_ttl * 2, "crasher gone")
    assert time.monotonic() - killed_at <= settings.lease_ttl * 4 / 3 + 1.0
    assert any(e.kind == "leave" and e.name == "crasher" for e in watcher.events)
    # ... and the user can come back at once.
    start_agent(settings, "crasher").communicate("")
    wait_until(
        lambda: any(e.kind == "join" and e.name == "crasher" for e in watcher.events[-3:]),
        5,
        "crasher back",
    )


def test_two_processes_of_one_user_one_exits_the_user_stays_online(
    settings: Settings, watcher: Recorder
) -> None:
    first = start_agent(settings, "twin")
    second = start_agent(settings, "twin")
    first.communicate("")  # clean exit: releases its own lease only
    assert first.returncode == 0
    assert snapshot(Hub(settings))[1] == ["twin", "watcher"]
    second.communicate("")
    wait_until(lambda: "twin" not in watcher.online, 5, "twin gone at once")


def test_junk_in_the_online_set_is_ignored_by_every_client(hub: Hub) -> None:
    hub.redis.zadd(hub.keys.online, {b"\xff\xfe": 9e15, "bad name!": 9e15, "\x1b[2J": 9e15})
    Lease(hub, "alice").renew()
    assert snapshot(hub)[1] == ["alice"]
    recorder = Recorder()
    receiver = Receiver(hub, "alice", recorder, after_id="0-0")
    receiver.start()
    try:
        assert receiver.wait_connected(10)
        assert recorder.online == ["alice"]
    finally:
        receiver.stop()


def test_a_snapshot_never_lists_an_expired_lease_even_past_one_reap(hub: Hub) -> None:
    ttl_ms = 500
    joins = [presence_call(hub.keys, "join", f"gone{i:03d}", "lease", ttl_ms) for i in range(150)]
    lua.run_calls(hub.topology, joins)  # more leases than one call reaps
    expired_at = hub.time_ms() + ttl_ms
    seq_before = int(hub.redis.get(hub.keys.presence_seq) or 0)
    wait_until(lambda: hub.time_ms() > expired_at, 5, "the leases to expire in the hub's clock")
    assert snapshot(hub)[1] == []
    snapshot(hub)  # the next call reaps the rest
    assert int(hub.redis.get(hub.keys.presence_seq) or 0) == seq_before + 150
    assert hub.redis.zcard(hub.keys.online) == 0
