"""The receiver thread: live messages and presence, kept alive across outages.

It owns the client's one pub/sub connection and its presence lease. Each time
it (re)connects it runs the same steps, in an order that loses nothing:

1. subscribe to the user's inbox channel, the users channel and the
   channel of each room the user is in, on the nodes that own them (a
   cluster's slot map is read again first);
2. take the presence lease (a ``join`` event if the user was offline);
3. take a presence snapshot, then apply the events that follow it;
4. read the mailbox, and each room's log, from the last stream id it
   delivered (messages sent while it was away), then deliver live messages
   as they come.

Anything published after step 1 is read from the socket after step 4, so a
message is either in the backfill or arrives live; one that comes both ways
(an envelope id seen before) is dropped as a duplicate. The listener therefore
sees every accepted message once, in mailbox order.

Live stream ids come from the network, so they are not trusted blindly: one
further ahead than the hub's clock allows makes the receiver read the mailbox
instead of delivering the announcement.

A dead connection is noticed by errors, by a heartbeat that times out, or by a
PING on a pub/sub connection that gets no answer in time; then the thread
reconnects with capped, jittered backoff. On a cluster, pub/sub is only a
doorbell: when the hub drops a subscription by itself (a failover, a slot
move), or the slot map read on a timer names another owner, the thread
subscribes again at once, and reads the mailbox from where it stopped, on
that timer too.

When the user's rooms change (a join here or in another client, seen at a
heartbeat, or :meth:`Receiver.rooms_changed`), the thread subscribes again,
quietly, to the new set of rooms (:mod:`chatbus.room_follower`).

Given the session it receives for, the receiver checks at every connect and
heartbeat that the hub still accepts it: after a logout or a password change
elsewhere, a running client stops within one heartbeat instead of staying
online as a user who has been logged out.
"""

import logging
import random
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis.exceptions

from . import accounts
from .accounts import Session
from .envelope import BadEnvelope, decode_envelope, max_payload, split_delivery
from .errors import AccessRefused, HubRefused, HubUnavailable, SessionEnded
from .hub import SOCKET_TIMEOUT, Hub, describe_failure
from .messages import SEND_BATCH, Mailbox, Message, stream_id_key
from .names import same_name
from .presence import Lease, OnlineList, PresenceEvent
from .presence_follower import PresenceFollower
from .room_follower import RoomFollower
from .subscriber import ChannelMoved, DeadConnection, Subscriber

log = logging.getLogger(__name__)

_CONNECTION_ERRORS = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    OSError,
    HubUnavailable,
    HubRefused,
)
# A live message whose stream id is further ahead of the hub's clock than this
# cannot have been made by the hub yet.
_FUTURE_SLACK_MS = 2000
_SEEN_IDS = 10_000
_BACKFILL_PAGE = 500
# A bell is answered once nothing more has arrived, or after this long (s).
_BELL_WAIT = 0.05


class Listener(Protocol):
    """What the receiver reports; called on the receiver thread."""

    def on_message(self, message: Message) -> None:
        """A message to or from the user, each one once, in mailbox order;
        or an entry of a room's log (``message.room``), once, in log order."""

    def on_presence(self, online: OnlineList, event: PresenceEvent | None) -> None:
        """The online list changed: by ``event``, or by a new snapshot (None)."""

    def on_connection(self, connected: bool, detail: str) -> None:
        """The hub became reachable, or stopped being (``detail`` says why)."""

    def on_session_ended(self, ended: SessionEnded) -> None:
        """The hub no longer accepts the session; the receiver has stopped."""


@dataclass
class ReceiverStats:
    delivered: int = 0
    duplicates: int = 0
    reconnects: int = 0
    resubscribes: int = 0  # quiet ones, after the hub moved a channel
    listener_errors: int = 0
    # Payloads from the network that were not valid, by reason.
    dropped: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Timing:
    """How eagerly the receiver checks on the hub (seconds)."""

    heartbeat: float
    ping_after_idle: float = 3.0
    pong_deadline: float = 3.0
    poll: float = 0.2
    backoff_first: float = 0.1
    backoff_max: float = 3.0
    # On a cluster: how often the slot map is read again, and the mailbox
    # with it, in case a doorbell was lost in a failover.
    topology_check: float = 10.0

    @classmethod
    def for_lease(cls, lease_ttl: float) -> "Timing":
        # Three heartbeats per lease: a lease survives two lost ones.
        return cls(heartbeat=lease_ttl / 3)


class Receiver:
    """Receives for ``name`` on a thread of its own until :meth:`stop`."""

    def __init__(
        self,
        hub: Hub,
        name: str,
        listener: Listener,
        after_id: str,
        *,
        timing: Timing | None = None,
        session: Session | None = None,
    ) -> None:
        self.hub = hub
        self.name = name
        self.session = session
        self.listener = listener
        self.timing = timing or Timing.for_lease(hub.settings.lease_ttl)
        self.stats = ReceiverStats()
        self.lease = Lease(hub, name)
        self.mailbox = Mailbox(hub, name)
        self.presence = PresenceFollower(hub, self._notify_presence, self.stats.dropped)
        self._last_id = after_id
        self._last_key = stream_id_key(after_id)
        self._users_channel = hub.keys.users_channel.encode()
        self._bell_channel = hub.keys.bell_channel(name).encode()
        self.rooms = RoomFollower(
            hub, name, self._deliver_room, self.stats.dropped, self._hub_now_ms
        )
        self._rooms_changed = threading.Event()
        self._rung: dict[str, None] = {}  # senders whose bell rang, in order
        self._rung_since = 0.0
        self._max_announcement = SEND_BATCH * (max_payload(hub.settings.max_body) + 32)
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._clock_offset_ms = 0.0  # the hub's clock minus ours, read at each connect
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._holds_lease = False
        self._last_heartbeat = 0.0
        self._reported_down = False
        self._thread = threading.Thread(
            target=self._run, name=f"chatbus-receiver-{name}", daemon=True
        )

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def online(self) -> OnlineList:
        return self.presence.online

    def start(self) -> None:
        self._thread.start()

    def wait_connected(self, timeout: float) -> bool:
        """Block until the first (or next) connection is up; False on timeout."""
        return self._connected.wait(timeout)

    def rooms_changed(self, left: str | None = None) -> None:
        """The user joined or left a room: follow the new set now, not at the
        next heartbeat. A room ``left`` delivers nothing more from now on,
        even before its subscription is gone."""
        if left is not None:
            self.rooms.forget(left)
        self._rooms_changed.set()

    def stop(self) -> None:
        """Stop receiving and give up the presence lease at once."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2 * SOCKET_TIMEOUT)
        self._release_lease()

    def _release_lease(self) -> None:
        if self._holds_lease:
            try:
                self.lease.release()
            except (*_CONNECTION_ERRORS, AccessRefused):
                # Unreachable, or a secured hub no longer takes this user's key:
                # the lease runs out by itself.
                log.info("could not release the lease; it will expire by itself")
            self._holds_lease = False

    # -- the thread -------------------------------------------------------

    def _run(self) -> None:
        delay = self.timing.backoff_first
        while not self._stop.is_set():
            try:
                self._serve()
            except SessionEnded as ended:
                self._end_session(ended)
                return
            except (AccessRefused, redis.exceptions.AuthenticationError):
                # A secured hub refused this user's key: removed, or reset.
                self._end_session(SessionEnded(str(self.hub.access_refused())))
                return
            except ChannelMoved:
                # Not an outage: subscribe again on the new owner, quietly.
                self.stats.resubscribes += 1
                if self._stop.wait(self.timing.backoff_first):
                    return
                continue
            except Exception as error:
                detail = self._failure(error)
            else:
                return
            if self._connected.is_set() or not self._reported_down:
                if self._connected.is_set():
                    self.stats.reconnects += 1
                    delay = self.timing.backoff_first
                self._connected.clear()
                self._reported_down = True
                self._notify_connection(False, detail)
            try:
                self._keep_lease()
            except SessionEnded as ended:
                self._end_session(ended)
                return
            if self._stop.wait(delay * random.uniform(0.8, 1.2)):
                return
            delay = min(delay * 2, self.timing.backoff_max)

    def _failure(self, error: Exception) -> str:
        """Why the connection ended, in a few words; a bug is logged in full
        (it must not end receiving for good: the thread reconnects)."""
        if isinstance(error, HubUnavailable):
            return error.reason
        if isinstance(error, (*_CONNECTION_ERRORS, DeadConnection)):
            return describe_failure(error)
        log.exception("receiver failed; reconnecting")
        return f"internal error: {type(error).__name__}"

    def _keep_lease(self) -> None:
        """Renew the lease while reconnecting, when a heartbeat is due.

        On a cluster, presence lives on another master than the user's inbox:
        while that one fails over, the user is still online, and says so."""
        due = self._last_heartbeat + self.timing.heartbeat
        if not self._holds_lease or time.monotonic() < due:
            return
        try:
            self._heartbeat()
        except (AccessRefused, redis.exceptions.AuthenticationError):
            raise SessionEnded(str(self.hub.access_refused())) from None
        except _CONNECTION_ERRORS:
            pass  # the hub is away too: the lease runs out

    def _serve(self) -> None:
        """One connection's life: set up, then read until stop or failure."""
        self.hub.refresh()
        topology = self.hub.topology
        keys = self.hub.keys
        channels = [keys.inbox_channel(self.name), keys.users_channel]
        if self.hub.secured:
            channels.append(keys.bell_channel(self.name))  # senders ring it
        self._rooms_changed.clear()
        channels.extend(self.rooms.load())
        subscriber = Subscriber(
            topology,
            channels,
            ping_after_idle=self.timing.ping_after_idle,
            pong_deadline=self.timing.pong_deadline,
        )
        try:
            with self.hub.errors():
                subscriber.open(SOCKET_TIMEOUT)
            self._clock_offset_ms = self.hub.time_ms() - time.monotonic() * 1000
            self._heartbeat()
            self._holds_lease = True
            self.presence.resync()
            self._rung.clear()  # the collect below answers every bell
            self._collect()
            self._backfill()
            self.rooms.backfill()
            if not self._connected.is_set():  # a quiet resubscribe says nothing
                self._connected.set()
                self._reported_down = False
                self._notify_connection(True, "")
            self._read_live(subscriber)
        finally:
            subscriber.close()

    def _heartbeat(self) -> None:
        """Renew the lease; SessionEnded if the hub no longer accepts the session."""
        if self.session is not None:
            accounts.verify(self.hub, self.session)
        self.lease.renew()
        self._last_heartbeat = time.monotonic()

    def _end_session(self, ended: SessionEnded) -> None:
        stopping_anyway = self._stop.is_set()
        self._stop.set()
        self._connected.clear()
        self._release_lease()
        if not stopping_anyway:  # else the listener is already leaving: let it
            self._call_listener(self.listener.on_session_ended, ended)

    def _read_live(self, subscriber: Subscriber) -> None:
        timing = self.timing
        now = time.monotonic()
        next_heartbeat = now + timing.heartbeat
        next_topology_check = now + timing.topology_check
        next_liveness_check = now
        while not self._stop.is_set():
            # With bells rung, take what else has arrived, then answer them all.
            reply = subscriber.get_message(0 if self._rung else timing.poll)
            if reply is not None:
                self._handle(reply)
            now = time.monotonic()
            if self._rung and (reply is None or now - self._rung_since > _BELL_WAIT):
                self._collect(list(self._rung))
                self._rung.clear()
            if now >= next_heartbeat:
                self._heartbeat()
                self.presence.resync_if_due()
                if self.rooms.changed():
                    self._rooms_changed.set()
                next_heartbeat = now + timing.heartbeat
            if self._rooms_changed.is_set():
                raise ChannelMoved("the user's rooms changed")
            if (self.hub.cluster or self.hub.secured) and now >= next_topology_check:
                self._check_topology(subscriber)
                next_topology_check = now + timing.topology_check
            if reply is None or now >= next_liveness_check:  # not for every message
                subscriber.check_alive()
                next_liveness_check = now + timing.poll

    def _check_topology(self, subscriber: Subscriber) -> None:
        """The doorbell's safety net on a cluster or a secured hub: a channel
        that moved without a word is subscribed again, a message announced on
        a demoted master (which takes SPUBLISH without complaint) is read from
        the mailbox, and senders' streams whose bell was lost are taken in."""
        if self.hub.cluster:
            self.hub.refresh()
            if subscriber.owners_changed():
                raise ChannelMoved("the slot map names another owner")
        self._collect()  # a secured hub: a bell may have been lost too
        self._backfill()
        self.rooms.backfill()

    def _handle(self, reply: dict[str, Any]) -> None:
        if reply["type"] != "smessage":
            return
        data: bytes = reply["data"]
        if reply["channel"] == self._users_channel:
            self.presence.handle(data)
        elif reply["channel"] == self._bell_channel:
            # Answered once nothing more is waiting: a burst of sends, one collect.
            if not self._rung:
                self._rung_since = time.monotonic()
            self._rung[data.decode(errors="replace")] = None
        elif len(data) > self._max_announcement:
            self.stats.dropped["oversized"] += 1
            # What it announced, if real, is in the mailbox or the room's log.
            room = self.rooms.room_of(reply["channel"])
            if room is not None:
                self.rooms.backfill(room)
            else:
                self._backfill()
        elif (room := self.rooms.room_of(reply["channel"])) is not None:
            self.rooms.handle(room, data)
        else:
            # One line per message: a batch sent in one call comes as one payload.
            for line in data.split(b"\n"):
                self._handle_delivery(line)

    # -- messages ---------------------------------------------------------

    def _collect(self, senders: list[str] | None = None) -> None:
        """A secured hub: take what senders wrote into the mailbox (announced
        on the inbox channel, so it arrives below); ``senders`` from a bell."""
        self.stats.dropped.update(self.mailbox.collect(senders))

    def _backfill(self) -> None:
        while True:
            page = self.mailbox.read_after(self._last_id, _BACKFILL_PAGE)
            self.stats.dropped.update(page.dropped)
            for message in page.messages:
                self._deliver(message)
            if page.last_scanned is not None:
                self._advance(page.last_scanned)
            if (
                page.last_scanned is None
                or len(page.messages) + page.dropped.total() < _BACKFILL_PAGE
            ):
                return

    def _handle_delivery(self, raw: bytes) -> None:
        try:
            stream_id, encoded = split_delivery(raw)
            envelope = decode_envelope(encoded, self.hub.settings.max_body)
        except BadEnvelope as bad:
            self.stats.dropped[bad.reason] += 1
            return
        if not (same_name(envelope.recipient, self.name) or same_name(envelope.sender, self.name)):
            self.stats.dropped["misaddressed"] += 1
            return
        if stream_id_key(stream_id)[0] > self._hub_now_ms() + _FUTURE_SLACK_MS:
            # Forged, or the mailbox's ids ran ahead of the clock: only the
            # mailbox can tell, so read it rather than trust the announcement
            # (a forged far-future id would otherwise hide every later message).
            self.stats.dropped["future-id"] += 1
            self._backfill()
            return
        self._deliver(Message(stream_id, envelope))

    def _hub_now_ms(self) -> float:
        return time.monotonic() * 1000 + self._clock_offset_ms

    def _advance(self, stream_id: str) -> None:
        key = stream_id_key(stream_id)
        if key > self._last_key:
            self._last_id, self._last_key = stream_id, key

    def _deliver(self, message: Message) -> None:
        # A message can come twice: in the backfill and live, or stored twice
        # by a sender that retried after a lost reply. Its envelope id tells.
        message_id = message.envelope.copy_key
        if message_id in self._seen:
            self.stats.duplicates += 1
            return
        self._advance(message.stream_id)
        self._seen[message_id] = None
        if len(self._seen) > _SEEN_IDS:
            self._seen.popitem(last=False)
        self.stats.delivered += 1
        self._call_listener(self.listener.on_message, message)

    def _deliver_room(self, message: Message) -> None:
        self.stats.delivered += 1
        self._call_listener(self.listener.on_message, message)

    # -- listener calls ---------------------------------------------------

    def _notify_presence(self, online: OnlineList, event: PresenceEvent | None) -> None:
        self._call_listener(self.listener.on_presence, online, event)

    def _notify_connection(self, connected: bool, detail: str) -> None:
        self._call_listener(self.listener.on_connection, connected, detail)

    def _call_listener(self, callback: Any, *args: Any) -> None:
        try:
            callback(*args)
        except Exception:
            self.stats.listener_errors += 1
            log.exception("listener %s failed", getattr(callback, "__name__", callback))
