"""The receiver against real hubs: live delivery, outages, hostile input."""

import json
import os
import random
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_settings
from helpers import Recorder, wait_until

from chatbus import accounts
from chatbus.config import Settings
from chatbus.envelope import new_envelope
from chatbus.errors import ChatbusError
from chatbus.hub import Hub
from chatbus.messages import Mailbox
from chatbus.presence import snapshot
from chatbus.receiver import Receiver, Timing
from chatbus.server import HubProcess

# Quick to ping and reconnect, but patient enough for an answer that a busy
# machine does not make it reconnect for nothing (tests count what arrives).
FAST = Timing(heartbeat=0.5, ping_after_idle=0.5, pong_deadline=3.0, backoff_max=0.5)


def register(hub: Hub, *names: str) -> None:
    for name in names:
        accounts.register(hub, name, "password1")


def start_bob(hub: Hub) -> tuple[Recorder, Receiver]:
    """Register alice and bob; bob's receiver runs, connected."""
    register(hub, "alice", "bob")
    recorder = Recorder()
    receiver = Receiver(hub, "bob", recorder, after_id="0-0", timing=FAST)
    receiver.start()
    assert receiver.wait_connected(10)
    return recorder, receiver


@pytest.fixture
def bob_receiving(hub: Hub) -> Iterator[tuple[Recorder, Receiver]]:
    recorder, receiver = start_bob(hub)
    yield recorder, receiver
    receiver.stop()


def test_live_messages_arrive_once_in_order(
    hub: Hub, bob_receiving: tuple[Recorder, Receiver]
) -> None:
    recorder, _ = bob_receiving
    Mailbox(hub, "alice").send_many("bob", [f"hello {i}" for i in range(50)])
    assert recorder.wait_for_bodies(50) == [f"hello {i}" for i in range(50)]


def test_messages_sent_before_the_receiver_started_are_backfilled(hub: Hub) -> None:
    register(hub, "alice", "bob")
    Mailbox(hub, "alice").send_many("bob", ["while you were out", "second"])
    recorder = Recorder()
    receiver = Receiver(hub, "bob", recorder, after_id="0-0")
    receiver.start()
    try:
        assert recorder.wait_for_bodies(2) == ["while you were out", "second"]
    finally:
        receiver.stop()


def test_a_redelivered_envelope_is_shown_once(
    hub: Hub, bob_receiving: tuple[Recorder, Receiver]
) -> None:
    recorder, receiver = bob_receiving
    envelope = new_envelope("alice", "bob", "retried", hub.settings.max_body)
    alice = Mailbox(hub, "alice")
    alice.deliver("bob", [envelope])
    alice.deliver("bob", [envelope])  # as after a reply lost in an outage
    alice.send("bob", "after")
    assert recorder.wait_for_bodies(2) == ["retried", "after"]
    assert receiver.stats.duplicates == 1


GARBAGE = [
    os.urandom(64).replace(b"\n", b"."),  # one line: a line break would make it two payloads
    b"not json at all",
    b"1-1 not json",
    b"1-1 []",
    b'1-1 {"v":1,"id":42,"from":"alice","to":"bob","ts":1,"body":"x"}',
    b'1-1 {"v":1,"id":"' + b"a" * 32 + b'","from":"alice","to":"bob","ts":"soon","body":"x"}',
    b"1-1 " + b"x" * 1_048_576,
    b"\x1b]0;pwned\x07\x1b[2J",
    b'9999999999999-0 {"v":1,"id":"'
    + b"b" * 32
    + b'","from":"mallory","to":"carol","ts":1,"body":"hi"}',
]


def test_garbage_on_the_inbox_channel_is_dropped_counted_and_receiving_goes_on(
    hub: Hub, bob_receiving: tuple[Recorder, Receiver]
) -> None:
    recorder, receiver = bob_receiving
    channel = hub.keys.inbox_channel("bob")
    for payload in GARBAGE:
        hub.redis.spublish(channel, payload)
    hub.redis.spublish(hub.keys.users_channel, b"\xff\xfe garbage")
    Mailbox(hub, "alice").send("bob", "still here?")
    assert recorder.wait_for_bodies(1) == ["still here?"]
    assert receiver.stats.dropped.total() == len(GARBAGE) + 1
    assert receiver.stats.dropped["oversized"] == 1
    assert receiver.stats.dropped["misaddressed"] == 1


def test_garbage_in_the_mailbox_is_skipped_on_backfill(hub: Hub) -> None:
    register(hub, "alice", "bob")
    hub.redis.xadd(hub.keys.mailbox("bob"), {"m": b"\x00\x01 junk"})
    hub.redis.xadd(hub.keys.mailbox("bob"), {"other": b"field"})
    Mailbox(hub, "alice").send("bob", "real one")
    recorder = Recorder()
    receiver = Receiver(hub, "bob", recorder, after_id="0-0")
    receiver.start()
    try:
        assert recorder.wait_for_bodies(1) == ["real one"]
        assert receiver.stats.dropped.total() == 2
    finally:
        receiver.stop()


def test_escape_sequences_reach_the_listener_as_data_only(
    hub: Hub, bob_receiving: tuple[Recorder, Receiver]
) -> None:
    recorder, _ = bob_receiving
    Mailbox(hub, "alice").send("bob", "\x1b[2Jhi")
    # The library hands over the text as sent; the terminal UI sanitizes it.
    assert recorder.wait_for_bodies(1) == ["\x1b[2Jhi"]


@pytest.mark.slow
def test_hub_killed_and_restarted_mid_stream_loses_nothing_and_shows_nothing_twice(
    own_hub: HubProcess, tmp_path: Path
) -> None:
    settings = make_settings(own_hub, tmp_path)
    hub = Hub(settings)
    recorder, receiver = start_bob(hub)

    acked: list[str] = []
    stop = threading.Event()

    def send_stream() -> None:
        sender = Mailbox(Hub(settings), "alice")
        for i in range(400):
            envelope = new_envelope("alice", "bob", f"msg {i}", settings.max_body)
            while not stop.is_set():
                try:
                    sender.deliver("bob", [envelope])  # the same envelope until acked
                except ChatbusError:
                    stop.wait(0.05)
                else:
                    acked.append(envelope.body)
                    break

    sender = threading.Thread(target=send_stream)
    sender.start()
    wait_until(lambda: len(acked) >= 100, 20, "100 messages sent")
    own_hub.kill()
    own_hub.start()
    sender.join(60)
    stop.set()
    try:
        assert len(acked) == 400
        received = recorder.wait_for_bodies(400, timeout=30)
        assert received == [f"msg {i}" for i in range(400)]
        assert any(not up for up, _ in recorder.connections)  # it did see the outage
    finally:
        receiver.stop()


@pytest.mark.slow
def test_a_silent_hub_is_noticed_and_the_receiver_recovers_after_it_resumes(
    own_hub: HubProcess, tmp_path: Path
) -> None:
    settings = make_settings(own_hub, tmp_path)
    hub = Hub(settings)
    recorder, receiver = start_bob(hub)
    assert own_hub.process is not None
    own_hub.process.send_signal(signal.SIGSTOP)
    try:
        # No socket error ever comes: only the missing PONG or heartbeat tells.
        wait_until(lambda: not receiver.connected, 10, "the stall to be noticed")
    finally:
        own_hub.process.send_signal(signal.SIGCONT)
    assert receiver.wait_connected(20)
    Mailbox(hub, "alice").send("bob", "back again")
    assert recorder.wait_for_bodies(1) == ["back again"]
    receiver.stop()


def test_a_receiver_stops_within_a_heartbeat_when_its_session_is_revoked(hub: Hub) -> None:
    register(hub, "alice")
    session = accounts.login(hub, "alice", "password1")
    recorder = Recorder()
    receiver = Receiver(hub, "alice", recorder, after_id="0-0", timing=FAST, session=session)
    receiver.start()
    assert receiver.wait_connected(10)
    assert snapshot(hub)[1] == ["alice"]
    accounts.logout(hub, session)  # from another window, say
    wait_until(lambda: recorder.session_ended is not None, 5, "the session end noticed")
    assert "no longer accepts the session of 'alice'" in str(recorder.session_ended)
    assert not receiver.connected
    assert snapshot(hub)[1] == []  # offline at once, not when the lease runs out
    receiver.stop()


def test_presence_is_released_at_once_when_the_receiver_stops(hub: Hub, settings: Settings) -> None:
    register(hub, "alice")
    receiver = Receiver(hub, "alice", Recorder(), after_id="0-0")
    receiver.start()
    assert receiver.wait_connected(10)
    assert snapshot(hub)[1] == ["alice"]
    receiver.stop()
    assert snapshot(hub)[1] == []


def test_random_json_objects_never_stop_the_receiver(
    hub: Hub, bob_receiving: tuple[Recorder, Receiver]
) -> None:
    recorder, receiver = bob_receiving
    rng = random.Random(7)
    values: list[object] = [None, True, 1, -1, 2**64, 1.5, "", "x", [], {}, "a" * 40]
    for _ in range(300):
        fields = {
            k: rng.choice(values) for k in rng.sample(["v", "id", "from", "to", "ts", "body"], 4)
        }
        hub.redis.spublish(hub.keys.inbox_channel("bob"), b"1-1 " + json.dumps(fields).encode())
    Mailbox(hub, "alice").send("bob", "survived")
    assert recorder.wait_for_bodies(1) == ["survived"]
    assert receiver.stats.dropped.total() == 300


def test_a_batch_announcement_delivers_each_valid_line_and_drops_the_bad_one(
    hub: Hub, bob_receiving: tuple[Recorder, Receiver]
) -> None:
    recorder, receiver = bob_receiving
    first, second = (new_envelope("alice", "bob", text, 4096) for text in ("one", "two"))
    lines = [
        b"1000-1 " + first.encode(),
        b"\x1b[2J junk",
        b"1000-2 " + second.encode(),
    ]
    hub.redis.spublish(hub.keys.inbox_channel("bob"), b"\n".join(lines))
    Mailbox(hub, "alice").send_many("bob", [f"batch {i}" for i in range(250)])
    assert recorder.wait_for_bodies(2)[:2] == ["one", "two"]
    # The 250 sent in three announcements have newer ids: all are delivered.
    assert recorder.wait_for_bodies(252)[2:] == [f"batch {i}" for i in range(250)]
    assert receiver.stats.dropped.total() == 1


@pytest.mark.parametrize("forged_id", [b"18446744073709551615-0", b"99999999999999999999-0"])
def test_a_forged_far_future_stream_id_cannot_hide_later_messages(
    hub: Hub, bob_receiving: tuple[Recorder, Receiver], forged_id: bytes
) -> None:
    recorder, receiver = bob_receiving
    forged = new_envelope("alice", "bob", "forged", hub.settings.max_body)
    hub.redis.spublish(hub.keys.inbox_channel("bob"), forged_id + b" " + forged.encode())
    Mailbox(hub, "alice").send_many("bob", ["real one", "real two"])
    assert recorder.wait_for_bodies(2) == ["real one", "real two"]
    assert receiver.stats.dropped.total() == 1


def test_a_mailbox_whose_ids_ran_ahead_of_the_clock_still_delivers(
    hub: Hub, bob_receiving: tuple[Recorder, Receiver]
) -> None:
    recorder, _ = bob_receiving
    # Someone XADDs with an explicit id far in the future: every later id follows it.
    junk = new_envelope("alice", "bob", "from the future", hub.settings.max_body)
    hub.redis.xadd(hub.keys.mailbox("bob"), {"m": junk.encode()}, id="9000000000000-0")
    Mailbox(hub, "alice").send("bob", "after it")
    # The announcement's id is ahead of the clock, so the receiver reads the
    # mailbox instead, which holds both.
    assert recorder.wait_for_bodies(2) == ["from the future", "after it"]
