"""Every Redis key and channel name chatbus uses, and nothing else builds one.

Layout (``ns`` is the namespace, ``user`` a canonical, lower-case name)::

    ns:{user}:account        hash    display name, password hash and its parameters
    ns:{user}:sessions       hash    sha256(token) -> issued-at (ms)
    ns:{user}:mailbox        stream  every message to or from the user
    ns:{user}:unread         hash    sender display name -> unread count
    ns:{user}:inbox          channel live copy of what lands in the mailbox
    ns:{user}:login-failures hash    wrong passwords in a row, and when the next try may be
    ns:{presence}:online     zset    display name -> latest lease expiry (ms)
    ns:{presence}:leases     zset    "Name:lease" -> that lease's expiry (ms)
    ns:{presence}:lease-index zset   "Name:lease", all scored 0, for prefix look-ups
    ns:{presence}:seq        string  sequence number of the last presence event
    ns:{presence}:users      channel presence events

Rooms (``room`` is ``#`` and a canonical, lower-case name, so its keys share
the hash tag ``{#room}``, apart from every user's)::

    ns:{#room}:room          hash    name as created, owner, private, topic, created, seq
    ns:{#room}:members       hash    member -> display name
    ns:{#room}:invited       hash    invited name -> who invited them (private rooms)
    ns:{#room}:log           stream  every message and event of the room, once
    ns:{#room}:read          hash    member -> "<seq> <stream id>" read up to
    ns:{#room}:mentions      hash    member -> unread messages that mention them
    ns:{#room}:live          channel live copy of what lands in the log
    ns:{user}:rooms          hash    room -> name, the rooms the user is in
    ns:{user}:invites        hash    room -> who invited the user
    ns:{rooms}:public        hash    room -> name, every public room

On a secured hub (docs/SECURITY.md), where each user may write only their own
keys, also::

    ns:{user}:from:sender    stream  messages from sender to user, written by sender only
    ns:{user}:senders        set     who has written a from-stream to user (SADD by anyone)
    ns:{user}:taken          zset    "sender:envelope id" the user has taken in, newest kept
    ns:{user}:bell           channel "look at your from-streams" (published by anyone)
    ns:{directory}:users     hash    user -> display name, written by the admin only
    ns:{presence}:lease:user hash    lease id -> expiry (ms) of each running client
    ns:{presence}:until:user string  the latest of those expiries (ms)

The part in braces is the Redis Cluster hash tag: everything a Lua script touches
in one call shares a slot. Names may only hold ``A-Z a-z 0-9 _ -``, so a name can
never contain a brace, a colon or a glob character, and ACL rules can be written
as patterns such as ``~ns:{alice}:*``.
"""

from dataclasses import dataclass

DEFAULT_NAMESPACE = "chatbus"


@dataclass(frozen=True)
class Keys:
    """Key and channel names inside one namespace."""

    namespace: str = DEFAULT_NAMESPACE

    def _user(self, name: str, suffix: str) -> str:
        return f"{self.namespace}:{{{name.lower()}}}:{suffix}"

    def _presence(self, suffix: str) -> str:
        return f"{self.namespace}:{{presence}}:{suffix}"

    def pattern(self, tag: str, suffix: str) -> str:
        """An ACL key or channel pattern: ``tag`` and ``suffix`` may hold ``*``."""
        return f"{self.namespace}:{{{tag}}}:{suffix}"

    def account(self, name: str) -> str:
        return self._user(name, "account")

    def sessions(self, name: str) -> str:
        return self._user(name, "sessions")

    def mailbox(self, name: str) -> str:
        return self._user(name, "mailbox")

    def unread(self, name: str) -> str:
        return self._user(name, "unread")

    def inbox_channel(self, name: str) -> str:
        return self._user(name, "inbox")

    def login_failures(self, name: str) -> str:
        return self._user(name, "login-failures")

    @property
    def online(self) -> str:
        return self._presence("online")

    @property
    def leases(self) -> str:
        return self._presence("leases")

    @property
    def lease_index(self) -> str:
        return self._presence("lease-index")

    @property
    def presence_seq(self) -> str:
        return self._presence("seq")

    @property
    def users_channel(self) -> str:
        return self._presence("users")

    # -- rooms ---------------------------------------------------------------

    def _room(self, room: str, suffix: str) -> str:
        return f"{self.namespace}:{{{room.lower()}}}:{suffix}"

    def room(self, room: str) -> str:
        return self._room(room, "room")

    def room_members(self, room: str) -> str:
        return self._room(room, "members")

    def room_invited(self, room: str) -> str:
        return self._room(room, "invited")

    def room_log(self, room: str) -> str:
        return self._room(room, "log")

    def room_read(self, room: str) -> str:
        return self._room(room, "read")

    def room_mentions(self, room: str) -> str:
        return self._room(room, "mentions")

    def room_channel(self, room: str) -> str:
        return self._room(room, "live")

    def rooms_of(self, name: str) -> str:
        return self._user(name, "rooms")

    def invites(self, name: str) -> str:
        return self._user(name, "invites")

    @property
    def public_rooms(self) -> str:
        return f"{self.namespace}:{{rooms}}:public"

    # -- the secured hub -----------------------------------------------------

    def from_stream(self, recipient: str, sender: str) -> str:
        return self._user(recipient, f"from:{sender.lower()}")

    def senders(self, name: str) -> str:
        return self._user(name, "senders")

    def taken(self, name: str) -> str:
        return self._user(name, "taken")

    def bell_channel(self, name: str) -> str:
        return self._user(name, "bell")

    @property
    def directory(self) -> str:
        return f"{self.namespace}:{{directory}}:users"

    def lease_of(self, name: str) -> str:
        return self._presence(f"lease:{name.lower()}")

    def online_until(self, name: str) -> str:
        return self._presence(f"until:{name.lower()}")
