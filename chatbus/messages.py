"""Direct messages: mailboxes (durable), inbox channels (live), unread counts.

A send runs ``deliver.lua`` twice in one pipelined round trip: once for the
recipient's mailbox (which also bumps their unread count for the sender) and
once for the sender's own mailbox, so history and the sender's other windows
see it too. Each call appends to the stream first and then publishes the
entries with their stream ids, so a live reader and a reader catching up from
the stream see the same ids. A batch of messages costs the same two calls.
On a cluster the two calls go to their masters at the same time, and the send
waits for a replica of each (see :meth:`Mailbox.deliver`).
"""

import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, cast

from . import lua
from .envelope import TEXT, BadEnvelope, Envelope, decode_envelope, max_payload, new_envelope
from .errors import (
    ChatbusError,
    HubRefused,
    HubUnavailable,
    NotAMember,
    Unconfirmed,
    UnknownUser,
)
from .hub import Hub, as_text
from .keys import Keys
from .names import is_room, is_valid_name, same_name, valid_names

_DELIVER = lua.load("deliver.lua")
_ROOM_POST = lua.load("room_post.lua")
_MARK_READ = lua.load("mark_read.lua")
_INGEST = lua.load("ingest.lua")
# Entries one ingest.lua call takes from one sender's stream.
INGEST_PAGE = 500
# Envelope ids taken in that a secured hub's user remembers, so that a send
# retried after its first try was taken in is not taken twice.
TAKEN_REMEMBERED = 2000
# Messages per round trip, and the most one delivery (one announcement) holds.
SEND_BATCH = 100
# A retried delivery looks for its envelopes among this many newest entries.
RETRY_WINDOW = 1000
# On a cluster, how long a send keeps trying (a failover takes a few seconds)
# before it says what was not confirmed.
FAILOVER_WINDOW = 15.0

# XRANGE/XREVRANGE replies: (stream id, fields) pairs, in bytes.
StreamEntries = list[tuple[bytes, dict[bytes, bytes]]]


@dataclass(frozen=True)
class Message:
    """A message as stored in a mailbox or a room's log: its stream id and its
    envelope, and in a room its number (``n``: the room's messages are
    numbered 1, 2, ...; an event carries the number of the message before it)."""

    stream_id: str
    envelope: Envelope
    seq: int = 0

    @property
    def room(self) -> str | None:
        """The room it was posted to; None for a direct message."""
        recipient = self.envelope.recipient
        return recipient if is_room(recipient) else None

    @property
    def accepted_ms(self) -> int:
        """When the hub accepted it, in ms since the epoch (the hub's clock)."""
        return int(self.stream_id.partition("-")[0])


@dataclass
class MailboxPage:
    """Messages read from a mailbox, oldest first, and what was dropped."""

    messages: list[Message] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)
    # Pass as ``before`` to read the next older page; None when there is none.
    older: str | None = None
    # The newest entry read, valid or not: where reading forward resumes.
    last_scanned: str | None = None


def stream_id_key(stream_id: str) -> tuple[int, int]:
    """Order stream ids numerically ("10-0" comes after "9-5")."""
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def delivery_calls(
    keys: Keys,
    maxlen: int,
    sender: str,
    recipient: str,
    payloads: list[bytes],
    *,
    retry: bool = False,
    secured: bool = False,
) -> list[lua.Call]:
    """The calls that send ``payloads``, the recipient's first, then the
    sender's own copy (``deliver.lua`` into the sender's mailbox: history and
    the sender's other windows see it). A message to oneself is that copy
    alone, never unread. A ``retry`` stores none of the envelopes an earlier
    try stored (the script looks for their ids).

    To a room: one ``room_post.lua`` call on the room's log, announced on
    its channel (members read the log: nothing is copied per member).

    The recipient's part: on an open hub, ``deliver.lua`` into their mailbox,
    bumping their unread count for ``sender``; on a secured hub, where a
    sender may not touch the recipient's mailbox, ``deliver.lua`` into the
    sender's own stream in the recipient's slot, ringing their bell, then
    ``SADD`` of the sender to the recipient's ``senders`` set.
    """
    window = RETRY_WINDOW if retry else 0
    if is_room(recipient):
        room_keys = [
            keys.room(recipient),
            keys.room_members(recipient),
            keys.room_log(recipient),
            keys.room_read(recipient),
            keys.room_mentions(recipient),
        ]
        channel = keys.room_channel(recipient)
        args: list[lua.Arg] = [channel, maxlen, sender.lower(), window, *payloads]
        return [lua.ScriptCall(_ROOM_POST, room_keys, args)]

    def into(stream_keys: list[str], channel: str, unread: str, bell: str = "") -> lua.ScriptCall:
        return lua.ScriptCall(
            _DELIVER, stream_keys, [channel, maxlen, unread, window, bell, *payloads]
        )

    def mailbox_of(owner: str, unread: str) -> lua.ScriptCall:
        owned = [keys.mailbox(owner), keys.unread(owner), keys.account(owner)]
        return into(owned, keys.inbox_channel(owner), unread)

    own_copy = mailbox_of(sender, "")
    if same_name(sender, recipient):
        return [own_copy]
    if not secured:
        return [mailbox_of(recipient, sender), own_copy]
    stream = keys.from_stream(recipient, sender)
    # The stream first: a take-in between the two finds the entries, never
    # an empty stream it would drop the sender's name for.
    return [
        into([stream], keys.bell_channel(recipient), "", bell=sender.lower()),
        lua.PlainCall([keys.senders(recipient)], ["SADD", keys.senders(recipient), sender.lower()]),
        own_copy,
    ]


def in_conversation(owner: str, peer: str, envelope: Envelope) -> bool:
    """True when ``envelope`` went from ``peer`` to ``owner`` or the other way."""
    if same_name(envelope.sender, peer):
        return same_name(envelope.recipient, owner)
    return same_name(envelope.sender, owner) and same_name(envelope.recipient, peer)


def valid_envelopes(
    entries: StreamEntries, max_body: int, dropped: Counter[str]
) -> Iterator[tuple[str, dict[bytes, bytes], Envelope]]:
    """(stream id, fields, envelope) of each entry whose field ``m`` is a valid
    envelope, in order; the others counted in ``dropped`` by reason."""
    for raw_id, fields in entries:
        try:
            envelope = decode_envelope(fields.get(b"m", b""), max_body)
        except BadEnvelope as bad:
            dropped[bad.reason] += 1
            continue
        yield raw_id.decode(), fields, envelope


def decode_entries(entries: StreamEntries, max_body: int, page: MailboxPage) -> None:
    """Append the valid entries to ``page.messages``; count the others as dropped."""
    for stream_id, _, envelope in valid_envelopes(entries, max_body, page.dropped):
        page.messages.append(Message(stream_id, envelope))


class Mailbox:
    """One user's mailbox, unread counts and outgoing messages."""

    def __init__(self, hub: Hub, owner: str) -> None:
        self.hub = hub
        self.owner = owner
        self.max_body = hub.settings.max_body
        self._displays: dict[str, str] = {}  # a secured hub's senders, as spelled

    def send(self, recipient: str, body: str) -> Message:
        """Send one message; returns it as stored in the recipient's mailbox."""
        return self.send_many(recipient, [body])[0]

    def send_many(self, recipient: str, bodies: Iterable[str], kind: str = TEXT) -> list[Message]:
        """Send messages in order, ``SEND_BATCH`` per round trip.

        Every body is checked before its batch goes out, so an invalid one
        (InvalidMessage) stops the sending with the earlier batches sent.
        ``recipient`` must be a registered name, as the account spells it,
        or a room the owner is in (``#ops``; NotAMember otherwise).
        """
        sent: list[Message] = []
        pending = iter(bodies)
        while batch := list(islice(pending, SEND_BATCH)):
            envelopes = [
                new_envelope(self.owner, recipient, body, self.max_body, kind) for body in batch
            ]
            sent.extend(self.deliver(recipient, envelopes))
        return sent

    def deliver(
        self,
        recipient: str,
        envelopes: Sequence[Envelope],
        *,
        retry: bool = False,
        patient: bool = True,
    ) -> list[Message]:
        """Store and publish ``envelopes`` in one round trip, in order.

        One script call puts them all in the recipient's mailbox (with one
        unread bump and one announcement), a second in the sender's own.
        ``retry``: an earlier try of these envelopes may have been stored;
        they are not stored, counted or announced twice.

        On a cluster the two calls go to their two masters at once, and a
        send is done only when a replica of each has it (WAIT); through a
        failover it is tried again, for up to ``FAILOVER_WINDOW`` seconds,
        before Unconfirmed says what was not confirmed. Not ``patient``: one
        try only, for a caller that must not block (an input line) and keeps
        the envelopes to try again itself.
        """
        if len(envelopes) > SEND_BATCH:
            raise ValueError(f"at most {SEND_BATCH} envelopes per delivery")
        try:
            return self._deliver(recipient, envelopes, retry, patient)
        except HubRefused:
            if is_room(recipient) and self.hub.secured:  # the hub keeps a room to its members
                raise self._not_in(recipient) from None
            raise

    def _not_in(self, room: str) -> NotAMember:
        if self.hub.secured:
            return NotAMember(f"you are not in {room}: its members are the admin's to choose")
        return NotAMember(f"you are not in {room}", join=room)

    def _deliver(
        self, recipient: str, envelopes: Sequence[Envelope], retry: bool, patient: bool
    ) -> list[Message]:
        payloads = [envelope.encode() for envelope in envelopes]
        with self.hub.errors():  # the first use of the hub connects: errors said as ours
            cluster = self.hub.cluster
            if not (cluster and patient):
                calls = self._calls(recipient, payloads, retry)
                replies = lua.run_calls(self.hub.topology, calls, confirm=cluster)
                return self._stored(recipient, envelopes, replies)
        replies = self._through_failover(recipient, payloads, retry)
        return self._stored(recipient, envelopes, replies)

    def _calls(self, recipient: str, payloads: list[bytes], retry: bool) -> list[lua.Call]:
        settings = self.hub.settings
        return delivery_calls(
            settings.keys,
            settings.mailbox_maxlen,
            self.owner,
            recipient,
            payloads,
            retry=retry,
            secured=self.hub.secured,
        )

    def _through_failover(self, recipient: str, payloads: list[bytes], retry: bool) -> list[Any]:
        """The replies of a cluster send, tried again (as a retry) until it is
        confirmed or ``FAILOVER_WINDOW`` has passed."""
        deadline = time.monotonic() + FAILOVER_WINDOW
        pause = 0.05
        while True:
            try:
                with self.hub.errors():
                    calls = self._calls(recipient, payloads, retry)
                    return lua.run_calls(self.hub.topology, calls, confirm=True)
            except HubUnavailable as error:
                if time.monotonic() + pause > deadline:
                    raise self._unconfirmed(recipient, len(payloads), error) from error
            time.sleep(pause)
            pause = min(pause * 2, 1.0)
            retry = True
            with suppress(ChatbusError):
                self.hub.refresh()

    def _stored(
        self, recipient: str, envelopes: Sequence[Envelope], replies: list[Any]
    ) -> list[Message]:
        """The messages as sent, from the calls' replies; UnknownUser if there
        is no such recipient (then the sender's copy is taken back), NotAMember
        if the recipient is a room the sender is not in."""
        if is_room(recipient):
            if replies[0] is None:
                raise self._not_in(recipient)
        elif self.hub.secured:
            # The recipient's account is the admin's to check (the directory);
            # the ids that matter to this client are its own copy's.
            stream_ids = replies[-1]
            if stream_ids is None:  # the sender's own account is gone (a half-made user)
                raise UnknownUser(f"no account named {self.owner!r} on this hub: ask its admin")
            return [Message(i.decode(), env) for i, env in zip(stream_ids, envelopes, strict=True)]
        stream_ids = replies[0]
        if stream_ids is None:
            if len(replies) == 2 and replies[1]:
                # The sender's copy went out in the same round trip; take it
                # back out of the mailbox so history shows no message that
                # nobody received. Best effort: the error to report is this one.
                with suppress(ChatbusError), self.hub.errors():
                    self.hub.redis.xdel(self.hub.keys.mailbox(self.owner), *replies[1])
            raise UnknownUser(f"no account named {recipient!r}")
        return [Message(sid.decode(), env) for sid, env in zip(stream_ids, envelopes, strict=True)]

    def _unconfirmed(self, recipient: str, count: int, error: HubUnavailable) -> Unconfirmed:
        """What a cluster send says after trying through a failover in vain."""
        what = "message" if count == 1 else f"{count} messages"
        return Unconfirmed(
            self.hub.url,
            f"the {what} to {recipient} not confirmed within {FAILOVER_WINDOW:.0f} s "
            f"({error.reason}); check with 'chatbus history {recipient}' before sending again",
        )

    def collect(self, senders: Iterable[str] | None = None) -> Counter[str]:
        """On a secured hub: move what senders wrote to this user into the
        mailbox (``ingest.lua``); envelopes that lie about their sender are
        dropped and counted. ``senders``: only those (a bell names one);
        default: every name in the user's ``senders`` set. On an open hub
        senders write to the mailbox themselves: nothing to do."""
        dropped: Counter[str] = Counter()
        if not self.hub.secured:
            return dropped
        keys = self.hub.keys
        if senders is None:
            with self.hub.errors():
                members = self.hub.redis.smembers(keys.senders(self.owner))
            senders = valid_names(sorted(cast(set[bytes], members)))
        todo = [name.lower() for name in senders if is_valid_name(name)]
        while todo:
            with self.hub.errors():
                shown = self._display_names(todo)
                calls = [self._ingest(sender, shown[sender]) for sender in todo]
                replies = lua.run_calls(self.hub.topology, calls)
            if forged := sum(int(bad) for _, bad, _ in replies):
                dropped["forged-sender"] += forged
            # A full page read: that sender has written more meanwhile.
            taken = zip(todo, replies, strict=True)
            todo = [sender for sender, (_, _, read) in taken if read >= INGEST_PAGE]
        return dropped

    def _display_names(self, senders: list[str]) -> dict[str, str]:
        """The directory's spelling of each sender (key form if it has none: a
        removed user), asked once per sender and kept."""
        unknown = [s for s in senders if s not in self._displays]
        if unknown:
            found = self.hub.redis.hmget(self.hub.keys.directory, unknown)
            for sender, display in zip(unknown, found, strict=True):
                spelled = as_text(display) if display is not None else sender
                self._displays[sender] = spelled if same_name(spelled, sender) else sender
        return {s: self._displays[s] for s in senders}

    def _ingest(self, sender: str, display: str) -> lua.ScriptCall:
        keys, settings = self.hub.keys, self.hub.settings
        stream_keys = [
            keys.mailbox(self.owner),
            keys.unread(self.owner),
            keys.from_stream(self.owner, sender),
            keys.senders(self.owner),
            keys.taken(self.owner),
        ]
        return lua.ScriptCall(
            _INGEST,
            stream_keys,
            [
                keys.inbox_channel(self.owner),
                settings.mailbox_maxlen,
                sender,
                self.owner.lower(),
                max_payload(self.max_body),
                INGEST_PAGE,
                display,
                TAKEN_REMEMBERED,
            ],
        )

    def read_after(self, after_id: str, count: int = 500) -> MailboxPage:
        """Up to ``count`` entries newer than ``after_id``, oldest first."""
        with self.hub.errors():
            entries = cast(
                StreamEntries,
                self.hub.redis.xrange(
                    self.hub.keys.mailbox(self.owner), f"({after_id}", "+", count=count
                ),
            )
        page = MailboxPage()
        decode_entries(entries, self.max_body, page)
        if entries:
            page.last_scanned = entries[-1][0].decode()
        return page

    def latest_id(self) -> str:
        """The id of the newest entry, or "0-0" for an empty mailbox."""
        with self.hub.errors():
            newest = cast(
                StreamEntries, self.hub.redis.xrevrange(self.hub.keys.mailbox(self.owner), count=1)
            )
        return newest[0][0].decode() if newest else "0-0"

    def conversation(self, peer: str, limit: int, before: str | None = None) -> MailboxPage:
        """The newest ``limit`` messages between the owner and ``peer``, oldest first.

        ``before`` (a stream id, exclusive) pages back in time; the returned
        page's ``older`` is the cursor for the next page.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if before is not None and stream_id_key(before) == (0, 0):
            return MailboxPage()  # nothing is older than the smallest id
        if before is None:
            self.collect()  # the newest page includes what waits in senders' streams
        key = self.hub.keys.mailbox(self.owner)
        found: list[Message] = []
        ids: set[str] = set()
        dropped: Counter[str] = Counter()
        upper = f"({before}" if before else "+"
        chunk = 100
        # One message more than asked for tells whether an older page exists.
        while len(found) <= limit:
            with self.hub.errors():
                entries = cast(
                    StreamEntries, self.hub.redis.xrevrange(key, upper, "-", count=chunk)
                )
            scanned = MailboxPage()
            decode_entries(entries, self.max_body, scanned)
            dropped += scanned.dropped
            for message in scanned.messages:
                # A send retried after a lost reply can be stored twice: show it once.
                if in_conversation(self.owner, peer, message.envelope) and (
                    message.envelope.copy_key not in ids
                ):
                    ids.add(message.envelope.copy_key)
                    found.append(message)
                    if len(found) > limit:
                        break
            if len(entries) < chunk:
                break
            upper = "(" + entries[-1][0].decode()
            chunk = min(2 * chunk, 1000)  # a rare peer in a busy mailbox: fewer round trips
        messages = found[:limit][::-1]
        older = messages[0].stream_id if len(found) > limit else None
        return MailboxPage(messages, dropped, older)

    def unread_counts(self) -> dict[str, int]:
        """Unread messages per sender, as the senders spell their names (on a
        secured hub after collecting what waits in senders' streams)."""
        self.collect()
        with self.hub.errors():
            raw = self.hub.redis.hgetall(self.hub.keys.unread(self.owner))
        counts = {as_text(k): as_text(v) for k, v in raw.items()}
        # Only what deliver.lua could have written: a sender's name, a count.
        return {
            name: int(count)
            for name, count in counts.items()
            if is_valid_name(name) and count.isascii() and count.isdigit() and int(count) > 0
        }

    def mark_read(self, peer: str, count: int | None = None) -> int:
        """``count`` more messages from ``peer`` have been read (None: all of
        them); how many are left unread.

        Unread messages of a sender are the newest ones from them, so a
        reader that shows them newest first can say how many it showed; the
        rest stay unread. Lowering the count, rather than setting it, keeps
        a message that arrives meanwhile unread.
        """
        key = self.hub.keys.unread(self.owner)
        with self.hub.errors():
            if count is None:
                self.hub.redis.hdel(key, peer)
                return 0
            return int(_MARK_READ(self.hub.topology, [key], [peer, count]))
