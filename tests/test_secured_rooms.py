"""Rooms on a secured hub: the broker itself keeps a room to its members.

Alice and Bob are in #ops (the admin put them there); Carol is not, and
attacks with her own Redis credentials (``chatbus whoami --redis-url``): she
can neither read the room's log, nor subscribe to its channel, nor post, not
directly and not through a script. Each test runs on a secured single server
and a secured cluster (every node, replicas included, holds the rules).
"""

from dataclasses import dataclass

import pytest
import redis
from helpers import wait_until
from secured_fixtures import SecuredChat, User
from test_secured_adversarial import is_refusal

from chatbus import lua
from chatbus.envelope import new_envelope
from chatbus.errors import NotAMember
from chatbus.messages import Mailbox
from chatbus.rooms import Rooms

ROOM = "#ops"


@dataclass
class Room:
    secured: SecuredChat
    alice: User
    bob: User
    carol: User

    def rooms(self, user: User) -> Rooms:
        return Rooms(self.secured.hub_as(user), user.name)

    def post(self, user: User, *bodies: str) -> None:
        Mailbox(self.secured.hub_as(user), user.name).send_many(ROOM, list(bodies))

    def texts(self, user: User) -> list[str]:
        page = self.rooms(user).page(ROOM, 100)
        return [m.envelope.body for m in page.messages if not m.envelope.event]


@pytest.fixture
def room(secured: SecuredChat) -> Room:
    alice, bob, carol = (secured.add_user(n) for n in ("Alice", "Bob", "Carol"))
    assert secured.admin.add_to_room(ROOM, ["Alice", "Bob"]) == ROOM
    return Room(secured, alice, bob, carol)


def test_members_the_admin_added_chat_and_receive_live(room: Room) -> None:
    bob = room.secured.receiver(room.bob)
    room.post(room.alice, "hello @bob")
    wait_until(
        lambda: (
            [m.envelope.body for m in bob.recorder.messages if not m.envelope.event]
            == ["hello @bob"]
        ),
        15,
        "bob's live room message",
    )
    (summary,) = [s for s in room.rooms(room.bob).summaries() if s.name == ROOM]
    assert summary.member and summary.mentions == 1


def test_a_non_member_cannot_read_subscribe_or_post_with_her_own_credentials(
    room: Room,
) -> None:
    room.post(room.alice, "for members only")
    keys = room.secured.keys
    log = keys.room_log(ROOM)
    carol = room.secured.node_for(log, room.carol)
    for command in (
        ("XRANGE", log, "-", "+"),
        ("HGETALL", keys.room_members(ROOM)),
        ("HGET", keys.room(ROOM), "topic"),
        ("XADD", log, "*", "m", new_envelope("Alice", ROOM, "forged", 100).encode()),
        ("HSET", keys.room_members(ROOM), "carol", "Carol"),
        ("SPUBLISH", keys.room_channel(ROOM), "1-1 1 {}"),
        ("EVAL", "return redis.call('XRANGE', KEYS[1], '-', '+')", 1, log),
    ):
        with pytest.raises(redis.ResponseError) as refused:
            carol.execute_command(*command)
        assert is_refusal(refused.value), command
    pubsub = carol.pubsub()
    with pytest.raises(redis.ResponseError) as refused:
        pubsub.ssubscribe(keys.room_channel(ROOM))
        pubsub.get_sharded_message(timeout=2)
    assert is_refusal(refused.value)
    # Through chatbus's own script, as a client would post: refused too.
    with pytest.raises(NotAMember, match="not in #ops"):
        room.post(room.carol, "let me in")
    sha = carol.script_load(lua.load("room_post.lua").source)
    room_keys = [keys.room(ROOM), keys.room_members(ROOM), log]
    room_keys += [keys.room_read(ROOM), keys.room_mentions(ROOM)]
    envelope = new_envelope("Carol", ROOM, "via the script", 100).encode()
    with pytest.raises(redis.ResponseError) as refused:
        carol.evalsha(sha, 5, *room_keys, keys.room_channel(ROOM), 100, "carol", 0, envelope)
    assert is_refusal(refused.value)
    assert room.texts(room.bob) == ["for members only"]


def test_joining_and_leaving_are_the_admins_and_taking_someone_out_cuts_them_off(
    room: Room,
) -> None:
    with pytest.raises(NotAMember, match="chatbus admin room-add \\+ops Carol"):
        room.rooms(room.carol).join(ROOM)
    with pytest.raises(NotAMember, match="admin"):
        room.rooms(room.bob).leave(ROOM)
    bob = room.secured.receiver(room.bob)
    room.secured.admin.remove_from_room(ROOM, ["Bob"])
    # His live subscription is gone, and his own credentials no longer open the room.
    wait_until(
        lambda: bob.receiver.rooms.room_of(room.secured.keys.room_channel(ROOM).encode()) is None,
        15,
        "bob unsubscribed",
    )
    room.post(room.alice, "after bob")
    node = room.secured.node_for(room.secured.keys.room_log(ROOM), room.bob)
    with pytest.raises(redis.ResponseError) as refused:
        node.xrange(room.secured.keys.room_log(ROOM))
    assert is_refusal(refused.value)
    # Cut off from the room, not from the hub: he is back, online, without it.
    wait_until(lambda: bob.receiver.connected, 15, "bob's receiver reconnected")
    assert "after bob" not in [m.envelope.body for m in bob.recorder.messages]
    assert bob.recorder.session_ended is None
