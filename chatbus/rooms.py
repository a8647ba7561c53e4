"""Rooms: group chat, fanned out on read.

A room is one log (a stream) and one channel under its own hash tag
(``NS:{#ops}:...``), so rooms spread over a cluster's masters: a message to a
room of 1,000 members is one ``XADD`` and one ``SPUBLISH`` (``room_post.lua``,
sent like a direct message: see :func:`chatbus.messages.delivery_calls`), and
each member reads the log from their own read position. Messages are numbered
by the room (``n``), so a member's unread count is the room's last number
minus the one they have read up to; mentions are counted per member as they
are posted.

Joining, leaving, inviting and the topic are events in the log
(``room_event.lua``), shown in the room like messages and never counted as
unread. Which rooms a user is in is kept on their side too
(``NS:{user}:rooms``), so a client knows what to follow without a scan.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from . import lua
from .envelope import is_stream_id, new_envelope
from .errors import HubRefused, NotAMember
from .hub import Hub, as_text
from .messages import MailboxPage, Message, StreamEntries, valid_envelopes
from .names import is_room, room_name, same_name, valid_names

_EVENT = lua.load("room_event.lua")
# The most of a topic shown: it is set with a message's size limit, but
# anyone who can write the room hash could store more.
TOPIC_SHOWN = 300
_READ = lua.load("room_read.lua")


@dataclass(frozen=True)
class JoinOutcome:
    """What ``join`` did: ``room`` as its creator spelled it."""

    room: str
    created: bool
    already_member: bool
    private: bool


@dataclass(frozen=True)
class ReadPosition:
    """Where a member has read a room up to: a message number and its stream id."""

    seq: int
    stream_id: str


@dataclass
class RoomSummary:
    """One line of ``chatbus rooms``."""

    name: str
    private: bool
    topic: str
    members: list[str]
    member: bool
    unread: int = 0
    mentions: int = 0
    online: int = 0
    invited_by: str | None = None


def decode_room_entries(
    room: str, entries: StreamEntries, max_body: int, page: MailboxPage
) -> None:
    """Append the valid entries of ``room``'s log to ``page.messages``; count the others."""
    for stream_id, fields, envelope in valid_envelopes(entries, max_body, page.dropped):
        number = fields.get(b"n", b"")
        if not same_name(envelope.recipient, room) or not (number.isdigit() and len(number) < 19):
            page.dropped["misaddressed" if number.isdigit() else "seq"] += 1
            continue
        page.messages.append(Message(stream_id, envelope, int(number)))
    if entries:
        page.last_scanned = entries[-1][0].decode()


def room_from_reply(value: bytes | str | None, fallback: str) -> str:
    """A room name as the hub stored it, if it is one; else ``fallback``."""
    name = as_text(value) if value is not None else ""
    return name if is_room(name) and same_name(name, fallback) else fallback


class Rooms:
    """The rooms as ``me`` sees them: joining, leaving, reading, unread counts."""

    def __init__(self, hub: Hub, me: str) -> None:
        self.hub = hub
        self.me = me
        self.keys = hub.keys
        self.max_body = hub.settings.max_body

    # -- membership -------------------------------------------------------

    def _event(
        self, room: str, kind: str, body: str, target: str = "", private: bool = False
    ) -> tuple[str, str, bool]:
        keys = self.keys
        with self.hub.errors():  # the event names the room as its creator spelled it
            stored = self.hub.redis.hget(keys.room(room), "name")
        room = room_from_reply(stored, room)
        envelope = new_envelope(self.me, room, body, self.max_body, kind)
        call_keys = [
            keys.room(room),
            keys.room_members(room),
            keys.room_invited(room),
            keys.room_log(room),
            keys.room_read(room),
            keys.room_mentions(room),
        ]
        args: list[lua.Arg] = [
            keys.room_channel(room),
            self.hub.settings.mailbox_maxlen,
            kind,
            self.me.lower(),
            self.me,
            envelope.encode(),
            target,
            "1" if private else "0",
        ]
        with self.hub.errors():
            outcome, name, is_private = _EVENT(self.hub.topology, call_keys, args)
        return as_text(outcome), room_from_reply(name, room), is_private == b"1"

    def _admins_only(self, room: str, what: str) -> NotAMember:
        """On a secured hub, membership is an ACL change: the admin's to make."""
        command = "room-remove" if "out of" in what else "room-add"
        return NotAMember(
            f"on this secured hub the admin {what} (their Redis rules open a room): "
            f"ask them to run 'chatbus admin {command} +{room[1:]} {self.me}'"
        )

    def join(self, room: str, *, private: bool = False) -> JoinOutcome:
        """Join ``room``, creating it (public, or ``private``) if it is new.

        NotAMember for a private room without an invitation, and on a
        secured hub for any room the admin has not put the user in."""
        if self.hub.secured:
            if not self._is_member(room):
                raise self._admins_only(room, "puts people in rooms")
            return JoinOutcome(self.room(room), False, True, False)
        outcome, name, is_private = self._event(room, "join", room, room, private)
        if outcome == "private":
            raise NotAMember(f"{name} is private: a member must invite you")
        keys = self.keys
        with self.hub.errors():
            pipe = self.hub.redis.pipeline(transaction=False)  # one round trip
            pipe.hset(keys.rooms_of(self.me), name.lower(), name)
            pipe.hdel(keys.invites(self.me), name.lower())
            if outcome == "created" and not is_private:
                pipe.hset(keys.public_rooms, name.lower(), name)
            pipe.execute()
        return JoinOutcome(name, outcome == "created", outcome == "member", is_private)

    def leave(self, room: str) -> str:
        """Leave ``room``: its messages stop coming. Returns its name as created."""
        if self.hub.secured:
            raise self._admins_only(room, "takes people out of rooms")
        outcome, name, _ = self._event(room, "leave", room)
        with self.hub.errors():
            self.hub.redis.hdel(self.keys.rooms_of(self.me), room.lower())
        if outcome == "not-member":
            raise NotAMember(f"you are not in {name}")
        if outcome == "no-room":
            raise NotAMember(f"there is no room {room}")
        return name

    def invite(self, room: str, name: str) -> tuple[str, bool]:
        """Let ``name`` (registered, as spelled) join ``room``, private or not:
        the room's name, and False if they were invited already (nothing done)."""
        if self.hub.secured:
            raise NotAMember(
                f"on this secured hub the admin puts people in rooms: ask them to run "
                f"'chatbus admin room-add +{room[1:]} {name}'"
            )
        outcome, shown, _ = self._event(room, "invite", name, name.lower())
        if outcome in ("not-member", "no-room"):
            raise NotAMember(f"you are not in {room}: only its members invite")
        if outcome == "member":
            raise NotAMember(f"{name} is in {shown} already")
        if outcome == "invited-already":
            return shown, False
        with self.hub.errors():
            self.hub.redis.hset(self.keys.invites(name), shown.lower(), self.me)
        return shown, True

    def set_topic(self, room: str, topic: str) -> None:
        outcome, shown, _ = self._event(room, "topic", topic, topic)
        if outcome != "topic":
            raise NotAMember(f"you are not in {shown}: only its members set the topic")

    # -- what there is ----------------------------------------------------

    def _hash_of_rooms(self, key: str) -> dict[str, str]:
        """A hash of room -> something (lower-case rooms as fields), the valid rooms only."""
        with self.hub.errors():
            raw = cast(dict[bytes, bytes], self.hub.redis.hgetall(key))
        found = {}
        for field, value in raw.items():
            room = as_text(field)
            if is_room(room):
                found[room.lower()] = as_text(value)
        return found

    def mine(self) -> list[str]:
        """The rooms ``me`` is in, as their creators spelled them."""
        return sorted(
            (
                room_from_reply(v.encode(), r)
                for r, v in self._hash_of_rooms(self.keys.rooms_of(self.me)).items()
            ),
            key=str.lower,
        )

    def invitations(self) -> dict[str, str]:
        """Rooms ``me`` is invited to, by whom."""
        invites = self._hash_of_rooms(self.keys.invites(self.me))
        return {room: by for room, by in invites.items() if valid_names([by.encode()])}

    def summaries(self, online: Iterable[str] = ()) -> list[RoomSummary]:
        """The rooms ``me`` is in, is invited to, and the public ones, by name."""
        mine = set(self._hash_of_rooms(self.keys.rooms_of(self.me)))
        invited = self.invitations()
        public = self._hash_of_rooms(self.keys.public_rooms)
        rooms = sorted(mine | set(invited) | set(public))
        if not rooms:
            return []
        keys, me = self.keys, self.me.lower()
        with self.hub.errors():
            pipe = self.hub.redis.pipeline(transaction=False)
            for room in rooms:
                pipe.hmget(keys.room(room), ["name", "private", "topic", "seq"])
                pipe.hgetall(keys.room_members(room))
                pipe.hget(keys.room_read(room), me)
                pipe.hget(keys.room_mentions(room), me)
            replies = pipe.execute(raise_on_error=False)
        online_now = {name.lower() for name in online}
        summaries = []
        for index, room in enumerate(rooms):
            row = replies[4 * index : 4 * index + 4]
            if any(isinstance(reply, Exception) for reply in row):
                # A secured hub opens a room to its members only: of the
                # others, the list of public rooms says the name.
                if room in public:
                    shown = room_from_reply(public[room], room)
                    summaries.append(RoomSummary(shown, False, "", [], False))
                continue
            (name, private, topic, seq), members, read, mentions = row
            if name is None:
                continue  # a stale listing of a room that is gone
            member_names = valid_names(sorted(cast(dict[bytes, bytes], members).values()))
            is_member = me.encode() in members
            if private == b"1" and not is_member and room not in invited:
                continue  # private rooms are not listed to others
            summary = RoomSummary(
                room_from_reply(name, room),
                private == b"1",
                as_text(topic or b"")[:TOPIC_SHOWN],
                sorted(member_names, key=str.lower),
                is_member,
                invited_by=invited.get(room),
            )
            summary.online = sum(1 for m in member_names if m.lower() in online_now)
            if is_member:
                summary.unread = max(0, _number(seq) - _position(read).seq)
                summary.mentions = _number(mentions)
            summaries.append(summary)
        return summaries

    def unread_counts(self) -> dict[str, tuple[int, int]]:
        """For each room ``me`` is in (as created): unread messages and mentions."""
        rooms = self.mine()
        if not rooms:
            return {}
        keys, me = self.keys, self.me.lower()
        with self.hub.errors():
            pipe = self.hub.redis.pipeline(transaction=False)
            for room in rooms:
                pipe.hget(keys.room(room), "seq")
                pipe.hget(keys.room_read(room), me)
                pipe.hget(keys.room_mentions(room), me)
            replies = pipe.execute()
        counts = {}
        for index, room in enumerate(rooms):
            seq, read, mentions = replies[3 * index : 3 * index + 3]
            counts[room] = (max(0, _number(seq) - _position(read).seq), _number(mentions))
        return counts

    def topic(self, room: str) -> str:
        """The room's topic ("" for none)."""
        with self.hub.errors():
            topic = self.hub.redis.hget(self.keys.room(room), "topic")
        return as_text(topic or b"")[:TOPIC_SHOWN]

    def members(self, room: str) -> list[str]:
        """Who is in ``room``; a private room's members are listed to its members only."""
        keys = self.keys
        with self.hub.errors():
            pipe = self.hub.redis.pipeline(transaction=False)
            pipe.hmget(keys.room(room), ["name", "private"])
            pipe.hgetall(keys.room_members(room))
            replies = pipe.execute(raise_on_error=False)
        if any(isinstance(reply, Exception) for reply in replies):  # a secured hub's refusal
            raise NotAMember(f"{room}: only its members see who is in it")
        (name, private), members = replies
        if name is None:
            raise NotAMember(f"there is no room {room}; joining makes it", join=room)
        if private == b"1" and self.me.lower().encode() not in members:
            raise NotAMember(f"{as_text(name)} is private: only its members see who is in it")
        return sorted(valid_names(list(members.values())), key=str.lower)

    def room(self, typed: str) -> str:
        """``typed`` as the room's name as created; NotAMember if there is no such room."""
        room = room_name(typed) or typed
        try:
            with self.hub.errors():
                name = self.hub.redis.hget(self.keys.room(room), "name")
        except HubRefused:
            if not self.hub.secured:
                raise
            raise self._admins_only(room, "puts people in rooms") from None
        if name is None:
            raise NotAMember(f"there is no room {room}; joining makes it", join=room)
        return room_from_reply(name, room)

    # -- reading ----------------------------------------------------------

    def position(self, room: str) -> tuple[ReadPosition, int]:
        """Where ``me`` has read ``room`` up to, and the room's last message number."""
        keys = self.keys
        with self.hub.errors():
            pipe = self.hub.redis.pipeline(transaction=False)
            pipe.hget(keys.room_read(room), self.me.lower())
            pipe.hget(keys.room(room), "seq")
            read, seq = pipe.execute()
        return _position(read), _number(seq)

    def mark_read(self, room: str, message: Message) -> None:
        """``me`` has read ``room`` up to ``message`` (never moves back)."""
        keys = self.keys
        call_keys = [
            keys.room_read(room),
            keys.room_mentions(room),
            keys.room_members(room),
            keys.room_log(room),
            keys.room(room),
        ]
        with self.hub.errors():
            _READ(self.hub.topology, call_keys, [self.me.lower(), message.seq, message.stream_id])

    def read_after(self, room: str, after_id: str, count: int = 500) -> MailboxPage:
        """Up to ``count`` entries of the log newer than ``after_id``, oldest first."""
        with self.hub.errors():
            entries = cast(
                StreamEntries,
                self.hub.redis.xrange(self.keys.room_log(room), f"({after_id}", "+", count=count),
            )
        page = MailboxPage()
        decode_room_entries(room, entries, self.max_body, page)
        return page

    def latest_id(self, room: str) -> str:
        """The id of the log's newest entry, or "0-0" for an empty log."""
        with self.hub.errors():
            newest = cast(
                StreamEntries, self.hub.redis.xrevrange(self.keys.room_log(room), count=1)
            )
        return newest[0][0].decode() if newest else "0-0"

    def page(self, room: str, limit: int, before: str | None = None) -> MailboxPage:
        """The newest ``limit`` entries (before ``before``), oldest first; a
        second copy of a retried message is left out."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        upper = f"({before}" if before else "+"
        with self.hub.errors():
            entries = cast(
                StreamEntries,
                self.hub.redis.xrevrange(self.keys.room_log(room), upper, "-", count=limit + 1),
            )
        scanned = MailboxPage()
        decode_room_entries(room, entries, self.max_body, scanned)
        seen: set[str] = set()
        found = []
        for message in scanned.messages:
            if message.envelope.copy_key not in seen:
                seen.add(message.envelope.copy_key)
                found.append(message)
        messages = found[:limit][::-1]
        older = messages[0].stream_id if len(entries) > limit and messages else None
        return MailboxPage(messages, scanned.dropped, older)

    def _is_member(self, room: str) -> bool:
        """Whether ``me`` is in ``room`` (a secured hub refuses a non-member to ask)."""
        try:
            with self.hub.errors():
                return bool(self.hub.redis.hexists(self.keys.room_members(room), self.me.lower()))
        except HubRefused:
            if self.hub.secured:
                return False
            raise

    def check_member(self, room: str) -> None:
        """NotAMember unless ``me`` is in ``room``."""
        if not self._is_member(room):
            if self.hub.secured:
                raise self._admins_only(room, "puts people in rooms")
            with self.hub.errors():
                private = self.hub.redis.hget(self.keys.room(room), "private") == b"1"
                invited = self.hub.redis.hexists(self.keys.room_invited(room), self.me.lower())
            if invited:
                raise NotAMember(f"you are invited to {room}, not in it yet", join=room)
            if private:
                raise NotAMember(f"you are not in {room}, a private room: a member must invite you")
            raise NotAMember(f"you are not in {room}", join=room)


def _number(value: Any) -> int:
    text = as_text(value) if value is not None else "0"
    return int(text) if text.isdigit() and len(text) < 19 else 0


def _position(value: Any) -> ReadPosition:
    """A stored read position, "<n> <stream id>"; the start for none (or junk)."""
    text = as_text(value) if value is not None else ""
    number, _, stream_id = text.partition(" ")
    if number.isdigit() and len(number) < 19 and is_stream_id(stream_id):
        return ReadPosition(int(number), stream_id)
    return ReadPosition(0, "0-0")
