"""The receiver's rooms: their channels, and each room's log read once, in order.

For every room the user is in, the follower keeps the id of the last log
entry it delivered. A live announcement (``<stream id> <n> <envelope>`` lines
on the room's channel) newer than that is delivered; an older one was in a
backfill already. After every (re)subscribe, and on the receiver's timer, each
room's log is read from that id, so a doorbell lost in an outage or a failover
costs nothing but a moment. The rooms followed when the receiver starts start
at their newest entry (a view, opened after, shows what came before from the
log itself); a room joined later starts at the user's read position in it
(their join, for a new member), so nothing posted between a view opening the
room and the receiver following it is missed (the view drops what it showed).

The rooms followed are the user's own list (``NS:{user}:rooms``), read at each
subscribe; :meth:`RoomFollower.changed` tells the receiver when the list on the
hub differs (a join in this or another client), so it subscribes again.
"""

from collections import Counter, OrderedDict
from collections.abc import Callable

from .envelope import BadEnvelope, decode_envelope, is_stream_id
from .errors import HubRefused
from .hub import Hub
from .messages import Message, stream_id_key
from .names import is_room, same_name
from .rooms import Rooms

_BACKFILL_PAGE = 500
# A live entry whose stream id is further ahead of the hub's clock than this
# cannot have been made by the hub yet (as for direct messages).
_FUTURE_SLACK_MS = 2000
_SEEN = 10_000


class RoomFollower:
    """Rooms of ``me`` followed for one receiver; ``deliver`` gets each entry once."""

    def __init__(
        self,
        hub: Hub,
        me: str,
        deliver: Callable[[Message], None],
        dropped: Counter[str],
        hub_now_ms: Callable[[], float],
    ) -> None:
        self.hub = hub
        self.rooms = Rooms(hub, me)
        self._deliver = deliver
        self._dropped = dropped
        self._hub_now_ms = hub_now_ms
        self._last: dict[str, str] = {}  # room (lower-case) -> last stream id delivered
        self._channels: dict[bytes, str] = {}  # channel -> room (lower-case)
        self._refused: set[str] = set()  # listed, but the hub does not let us read them
        self._started = False  # True after the first load
        self._left: set[str] = set()  # rooms left since the last load
        # A post retried after a lost reply can be in the log twice: shown once.
        self._seen: OrderedDict[str, None] = OrderedDict()

    def load(self) -> list[str]:
        """Read the user's rooms from the hub; the channels to subscribe to.

        A room new to the follower starts at its newest entry; one no longer
        listed is dropped."""
        listed = [room.lower() for room in self.rooms.mine()]
        self._left -= set(listed)  # joined again
        self._refused = set()
        for room in listed:
            if room not in self._last:
                try:
                    self._last[room] = self._start(room)
                except HubRefused:
                    # A secured hub no longer opens it to this user (taken
                    # out of it): not followed, and no reason to reconnect.
                    self._refused.add(room)
        self._last = {room: self._last[room] for room in listed if room in self._last}
        self._started = True
        keys = self.hub.keys
        self._channels = {keys.room_channel(room).encode(): room for room in listed}
        return [channel.decode() for channel in self._channels]

    def _start(self, room: str) -> str:
        if not self._started:
            return self.rooms.latest_id(room)
        position, _ = self.rooms.position(room)
        return position.stream_id

    def changed(self) -> bool:
        """True when the user's rooms on the hub are not the ones followed."""
        return {room.lower() for room in self.rooms.mine()} - self._refused != set(self._last)

    def forget(self, room: str) -> None:
        """Deliver nothing more of ``room`` (left); its channel goes at the
        next subscribe. Called from another thread: one set operation."""
        self._left.add(room.lower())

    def room_of(self, channel: bytes) -> str | None:
        return self._channels.get(channel)

    def handle(self, room: str, data: bytes) -> None:
        """An announcement on ``room``'s channel: one line per entry."""
        for line in data.split(b"\n"):
            self._handle_line(room, line)

    def _handle_line(self, room: str, line: bytes) -> None:
        stream_id, _, rest = line.partition(b" ")
        number, _, encoded = rest.partition(b" ")
        try:
            if not is_stream_id(stream_id):
                raise BadEnvelope("stream-id")
            if not (is_room(room) and number.isdigit() and len(number) < 19):
                raise BadEnvelope("seq")
            envelope = decode_envelope(encoded, self.hub.settings.max_body)
        except BadEnvelope as bad:
            self._dropped[bad.reason] += 1
            return
        text_id = stream_id.decode()
        if not same_name(envelope.recipient, room):
            self._dropped["misaddressed"] += 1
            return
        if stream_id_key(text_id)[0] > self._hub_now_ms() + _FUTURE_SLACK_MS:
            self._dropped["future-id"] += 1
            self.backfill(room)
            return
        self._take(room, Message(text_id, envelope, int(number)))

    def backfill(self, only: str | None = None) -> None:
        """Read each room's log (or ``only`` that one) from where it was delivered."""
        for room in [only] if only is not None else list(self._last):
            while room in self._last:
                page = self.rooms.read_after(room, self._last[room], _BACKFILL_PAGE)
                self._dropped.update(page.dropped)
                for message in page.messages:
                    self._take(room, message)
                if page.last_scanned is not None and self._newer(page.last_scanned, room):
                    self._last[room] = page.last_scanned
                if page.last_scanned is None or len(page.messages) + page.dropped.total() < (
                    _BACKFILL_PAGE
                ):
                    break

    def _newer(self, stream_id: str, room: str) -> bool:
        return stream_id_key(stream_id) > stream_id_key(self._last[room])

    def _take(self, room: str, message: Message) -> None:
        """Deliver ``message`` unless an entry at or after it was delivered
        already, or it is a second copy of one that was."""
        if room not in self._last or room in self._left:
            return
        if not self._newer(message.stream_id, room):
            return
        self._last[room] = message.stream_id
        copy = f"{room}/{message.envelope.copy_key}"
        if copy in self._seen:
            return
        self._seen[copy] = None
        if len(self._seen) > _SEEN:
            self._seen.popitem(last=False)
        self._deliver(message)
