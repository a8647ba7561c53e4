"""Rooms against a real hub: membership, posting, unread and mention counts,
live delivery to members only, and nothing lost or twice across outages."""

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_settings
from helpers import Recorder, receive, wait_until
from test_receiver import FAST, register

from chatbus.envelope import new_envelope
from chatbus.errors import ChatbusError, InvalidName, NotAMember
from chatbus.hub import Hub
from chatbus.messages import Mailbox, Message
from chatbus.names import room_name, validate_room
from chatbus.receiver import Receiver
from chatbus.rooms import Rooms
from chatbus.server import HubProcess
from chatbus_cli.ui.render import Style, message_line


def post(hub: Hub, who: str, room: str, *bodies: str) -> None:
    Mailbox(hub, who).send_many(room, list(bodies))


def receiving(hub: Hub, name: str) -> tuple[Recorder, Receiver]:
    return receive(hub, name, FAST)


@pytest.fixture
def ops(hub: Hub) -> Iterator[str]:
    """#ops, made by alice, with bob in it; carol registered, not in it."""
    register(hub, "alice", "bob", "carol")
    assert Rooms(hub, "alice").join("#ops").created
    Rooms(hub, "bob").join("#OPS")
    yield "#ops"


def room_texts(recorder: Recorder) -> list[str]:
    return [m.envelope.body for m in recorder.messages if m.room and not m.envelope.event]


def test_room_names_take_hash_or_plus_and_say_what_is_allowed() -> None:
    assert room_name("+ops") == "#ops" and room_name("#Ops") == "#Ops"
    assert room_name("ops") is None and room_name("#" + "a" * 33) is None
    with pytest.raises(InvalidName, match="'#' and 1-32 characters"):
        validate_room("#no spaces")


def test_names_are_unique_regardless_of_case_and_keep_the_creators_spelling(
    hub: Hub, ops: str
) -> None:
    outcome = Rooms(hub, "carol").join("#oPs")
    assert outcome.room == "#ops" and not outcome.created
    assert Rooms(hub, "carol").members("#OPS") == ["alice", "bob", "carol"]


def test_members_receive_live_and_non_members_do_not(hub: Hub, ops: str) -> None:
    bob, bob_receiver = receiving(hub, "bob")
    carol, carol_receiver = receiving(hub, "carol")
    try:
        post(hub, "alice", "#ops", "one", "two")
        wait_until(lambda: room_texts(bob) == ["one", "two"], 10, "bob's room messages")
        Mailbox(hub, "alice").send("carol", "a direct one")
        carol.wait_for_bodies(1)
        assert room_texts(carol) == []
    finally:
        bob_receiver.stop()
        carol_receiver.stop()


def test_a_non_member_cannot_post(hub: Hub, ops: str) -> None:
    with pytest.raises(NotAMember, match="not in #ops"):
        post(hub, "carol", "#ops", "let me in")
    kinds = [m.envelope.kind for m in Rooms(hub, "alice").page("#ops", 10).messages]
    assert kinds == ["join", "join"]  # nothing else


def test_unread_counts_survive_and_mentions_are_counted_apart(hub: Hub, ops: str) -> None:
    post(hub, "alice", "#ops", "morning", "@BOB look", "mail@bob.example is no mention", "@bobby")
    (summary,) = [s for s in Rooms(hub, "bob").summaries() if s.name == "#ops"]
    assert (summary.unread, summary.mentions) == (4, 1)
    # alice posted: she has read the room up to her message
    (own,) = [s for s in Rooms(hub, "alice").summaries() if s.name == "#ops"]
    assert (own.unread, own.mentions) == (0, 0)


def test_marking_read_moves_forward_and_recounts_mentions(hub: Hub, ops: str) -> None:
    post(hub, "alice", "#ops", "@bob one", "two", "@bob three")
    rooms = Rooms(hub, "bob")
    first = rooms.page("#ops", 3).messages[0]
    rooms.mark_read("#ops", first)
    (summary,) = [s for s in rooms.summaries() if s.name == "#ops"]
    assert (summary.unread, summary.mentions) == (2, 1)
    last = rooms.page("#ops", 1).messages[0]
    rooms.mark_read("#ops", last)
    rooms.mark_read("#ops", first)  # never back
    (summary,) = [s for s in rooms.summaries() if s.name == "#ops"]
    assert (summary.unread, summary.mentions) == (0, 0)


def test_leaving_stops_delivery_and_shows_in_the_room(hub: Hub, ops: str) -> None:
    bob, bob_receiver = receiving(hub, "bob")
    alice, alice_receiver = receiving(hub, "alice")
    try:
        Rooms(hub, "bob").leave("#ops")
        bob_receiver.rooms_changed(left="#ops")
        wait_until(
            lambda: any(m.envelope.kind == "leave" for m in alice.messages), 10, "the leave event"
        )
        post(hub, "alice", "#ops", "after bob left")
        wait_until(lambda: "after bob left" in room_texts(alice), 10, "alice's own post")
        assert wait_until(lambda: bob_receiver.rooms.changed() is False, 10, "bob unfollowed")
        assert "after bob left" not in room_texts(bob)
        assert Rooms(hub, "bob").mine() == []
    finally:
        bob_receiver.stop()
        alice_receiver.stop()


def test_private_rooms_are_unlisted_and_joined_by_invitation(hub: Hub) -> None:
    register(hub, "alice", "bob", "carol")
    assert Rooms(hub, "alice").join("#secret", private=True).private
    assert [s.name for s in Rooms(hub, "carol").summaries()] == []
    with pytest.raises(NotAMember, match="private"):
        Rooms(hub, "carol").join("#secret")
    with pytest.raises(NotAMember, match="private"):
        Rooms(hub, "carol").members("#secret")
    assert Rooms(hub, "alice").invite("#secret", "carol") == ("#secret", True)
    assert Rooms(hub, "alice").invite("#secret", "carol") == ("#secret", False)  # once
    invites = [m for m in Rooms(hub, "alice").page("#secret", 10).messages if m.envelope.event]
    assert [m.envelope.kind for m in invites] == ["join", "invite"]
    (listed,) = Rooms(hub, "carol").summaries()
    assert (listed.name, listed.invited_by, listed.member) == ("#secret", "alice", False)
    Rooms(hub, "carol").join("#secret")
    assert Rooms(hub, "carol").mine() == ["#secret"]
    with pytest.raises(NotAMember, match="private"):
        Rooms(hub, "bob").join("#secret")
    # bob's way in is an invitation: nothing suggests joining
    with pytest.raises(NotAMember, match="a private room: a member must invite you") as refused:
        Rooms(hub, "bob").check_member("#secret")
    assert refused.value.join is None
    with pytest.raises(NotAMember) as not_in:
        post(hub, "carol", "#ops", "x")  # no such room here: joining makes it
    assert not_in.value.join == "#ops"


def test_a_member_joining_a_room_while_receiving_gets_its_messages(hub: Hub, ops: str) -> None:
    carol, carol_receiver = receiving(hub, "carol")
    try:
        Rooms(hub, "carol").join("#ops")
        carol_receiver.rooms_changed()
        wait_until(lambda: not carol_receiver.rooms.changed(), 10, "carol following #ops")
        post(hub, "alice", "#ops", "welcome carol")
        wait_until(lambda: "welcome carol" in room_texts(carol), 10, "carol's first room message")
    finally:
        carol_receiver.stop()


def test_a_retried_post_is_stored_once(hub: Hub, ops: str) -> None:
    mailbox = Mailbox(hub, "alice")
    envelope = new_envelope("alice", "#ops", "once", hub.settings.max_body)
    first = mailbox.deliver("#ops", [envelope])
    again = mailbox.deliver("#ops", [envelope], retry=True)
    assert first[0].stream_id == again[0].stream_id
    assert Rooms(hub, "bob").position("#ops")[1] == 1


def test_hostile_entries_in_a_room_channel_are_dropped_and_counted(hub: Hub, ops: str) -> None:
    bob, bob_receiver = receiving(hub, "bob")
    channel = hub.keys.room_channel("#ops")
    forged_room = new_envelope("alice", "#other", "elsewhere", 100).encode().decode()
    lines = [
        "not a line",
        f"1-1 x {forged_room}",
        f"1-2 1 {forged_room}",
        "1-3 1 " + json.dumps({"v": 1, "id": "0" * 32, "from": "a", "to": "#ops", "kind": "x"}),
    ]
    try:
        hub.redis.spublish(channel, "\n".join(lines))
        post(hub, "alice", "#ops", "real")
        wait_until(lambda: "real" in room_texts(bob), 10, "the real message")
        dropped = bob_receiver.stats.dropped
        assert dropped["stream-id"] == 1 and dropped["seq"] == 1
        assert dropped["misaddressed"] == 1 and dropped["kind"] == 1
        assert room_texts(bob) == ["real"]
    finally:
        bob_receiver.stop()


def test_hub_killed_and_restarted_mid_room_stream_loses_nothing_and_shows_nothing_twice(
    own_hub: HubProcess, tmp_path: Path
) -> None:
    settings = make_settings(own_hub, tmp_path)
    hub = Hub(settings)
    register(hub, "alice", "bob")
    Rooms(hub, "alice").join("#ops")
    Rooms(hub, "bob").join("#ops")
    bob, receiver = receiving(hub, "bob")
    acked: list[str] = []
    stop = threading.Event()

    def post_stream() -> None:
        sender = Mailbox(Hub(settings), "alice")
        for i in range(300):
            envelope = new_envelope("alice", "#ops", f"msg {i}", settings.max_body)
            retry = False
            while not stop.is_set():
                try:  # the same envelope until acknowledged, as the outbox does
                    sender.deliver("#ops", [envelope], retry=retry)
                except ChatbusError:
                    retry = True
                    stop.wait(0.05)
                else:
                    acked.append(envelope.body)
                    break

    poster = threading.Thread(target=post_stream)
    poster.start()
    wait_until(lambda: len(acked) >= 100, 20, "100 messages posted")
    own_hub.kill()
    own_hub.start()
    poster.join(60)
    stop.set()
    try:
        assert len(acked) == 300
        wait_until(lambda: len(room_texts(bob)) >= 300, 30, "300 room messages")
        assert room_texts(bob) == [f"msg {i}" for i in range(300)]
        assert any(not up for up, _ in bob.connections)  # it did see the outage
    finally:
        receiver.stop()


def test_mentions_of_the_reader_are_highlighted_and_events_read_as_sentences() -> None:
    mention = Message("1-0", new_envelope("alice", "#ops", "hi @Bob, and @bobby", 100))
    shown = message_line(mention, "bob", Style(colour=True))
    assert "\x1b[7m" in shown and shown.count("\x1b[7m") == 1  # @Bob only, not @bobby
    plain = message_line(mention, "carol", Style(colour=True))
    assert "\x1b[7m" not in plain
    topic = Message("2-0", new_envelope("bob", "#ops", "ship \x1b[31mit", 100, "topic"))
    assert message_line(topic, "carol", Style(colour=False)).endswith(
        "-- bob set the topic of #ops: ship it"  # the escape sequence removed whole
    )
    action = Message("3-0", new_envelope("bob", "#ops", "waves", 100, "me"))
    assert message_line(action, "carol", Style(colour=False)).endswith("* bob waves")
