"""The message envelope: the JSON every message travels in.

``{"v": 1, "id": "<32 hex>", "from": NAME, "to": NAME, "ts": <ms>, "body": TEXT}``

``to`` is a user's name, or a room's (``#ops``). An optional ``kind`` says
what it is when it is not plain text: ``me`` (an action, "/me waves"), or in
a room one of its events, ``join``, ``leave``, ``invite`` (the body names who
was invited) and ``topic`` (the body is the new topic).

Encoding is strict and decoding is stricter: a peer may send anything, so
:func:`decode_envelope` checks every field and says why it refused, and never
raises anything but :class:`BadEnvelope`.
"""

import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from .errors import InvalidMessage
from .names import is_room, is_valid_name

VERSION = 1
TEXT = "text"
ME = "me"
# What a room's log holds besides messages; never counted as unread.
ROOM_EVENTS = frozenset({"join", "leave", "invite", "topic"})
KINDS = frozenset({TEXT, ME}) | ROOM_EVENTS
_MESSAGE_ID = re.compile(r"[0-9a-f]{32}")
_STREAM_ID = re.compile(rb"[0-9]{1,20}-[0-9]{1,20}")
_MAX_TS = 2**53
_MAX_STREAM_PART = 2**64  # both halves of a stream id are unsigned 64-bit
# One encoder for every message: json.dumps with options builds a new one each call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


class BadEnvelope(ValueError):
    """A payload from the network that is not a valid envelope; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Envelope:
    """One direct message. ``sender`` and ``recipient`` are display names."""

    id: str
    sender: str
    recipient: str
    ts: int
    body: str
    kind: str = TEXT

    @property
    def event(self) -> bool:
        """A room's join, leave, invite or topic: news, not a message."""
        return self.kind in ROOM_EVENTS

    @property
    def copy_key(self) -> str:
        """What two copies of one message share: the sender and the id. Not the
        id alone, which any sender can choose: on a secured hub it could make
        someone's message pass for a copy of another's."""
        return f"{self.sender.lower()}:{self.id}"

    def encode(self) -> bytes:
        fields = {
            "v": VERSION,
            "id": self.id,
            "from": self.sender,
            "to": self.recipient,
            "ts": self.ts,
            "body": self.body,
        }
        if self.kind != TEXT:
            fields["kind"] = self.kind
        return _ENCODER.encode(fields).encode()


def check_body(body: str, max_body: int) -> None:
    """Raise InvalidMessage unless ``body`` may be sent."""
    if not body.strip():
        raise InvalidMessage("empty message: type some text to send")
    try:
        size = len(body.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidMessage("the message is not valid UTF-8 text") from None
    if size > max_body:
        raise InvalidMessage(f"message too long: {size} bytes, the limit is {max_body}")


def new_envelope(
    sender: str, recipient: str, body: str, max_body: int, kind: str = TEXT
) -> Envelope:
    """An envelope for a new message, with a fresh id; the body is checked."""
    check_body(body, max_body)
    ts = time.time_ns() // 1_000_000
    return Envelope(secrets.token_hex(16), sender, recipient, ts, body, kind)


def max_payload(max_body: int) -> int:
    """The largest encoded envelope a body of ``max_body`` bytes can make.

    JSON may spell one byte as six (``\\u001b``); the rest is the fixed fields.
    """
    return 6 * max_body + 512


def decode_envelope(raw: bytes, max_body: int) -> Envelope:
    """Parse and check one encoded envelope."""
    if len(raw) > max_payload(max_body):
        raise BadEnvelope("oversized")
    try:
        # Decoding first is faster than letting json detect the encoding.
        data: Any = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        raise BadEnvelope("not-json") from None
    if not isinstance(data, dict):
        raise BadEnvelope("not-an-object")
    version = data.get("v")
    if type(version) is not int or version != VERSION:  # not True, not 1.0
        raise BadEnvelope("version")
    message_id, sender, recipient = data.get("id"), data.get("from"), data.get("to")
    ts, body = data.get("ts"), data.get("body")
    if not isinstance(message_id, str) or not _MESSAGE_ID.fullmatch(message_id):
        raise BadEnvelope("id")
    if not is_valid_name(sender) or not (is_valid_name(recipient) or is_room(recipient)):
        raise BadEnvelope("name")
    kind = data.get("kind", TEXT)
    if (
        not isinstance(kind, str)
        or kind not in KINDS
        or (kind in ROOM_EVENTS and not is_room(recipient))
    ):
        raise BadEnvelope("kind")
    if not isinstance(ts, int) or isinstance(ts, bool) or not 0 <= ts < _MAX_TS:
        raise BadEnvelope("timestamp")
    if not isinstance(body, str):
        raise BadEnvelope("body")
    try:
        check_body(body, max_body)
    except InvalidMessage:
        raise BadEnvelope("body") from None
    return Envelope(message_id, sender, recipient, ts, body, kind)


def is_stream_id(text: bytes | str) -> bool:
    """True for a whole stream id, ``<ms>-<seq>``, that the hub could have made."""
    raw = text.encode(errors="replace") if isinstance(text, str) else text
    return _STREAM_ID.fullmatch(raw) is not None and all(
        int(part) < _MAX_STREAM_PART for part in raw.split(b"-")
    )


def split_delivery(raw: bytes) -> tuple[str, bytes]:
    """Split one line of a live payload, ``<stream id> <envelope>``, in two."""
    stream_id, sep, envelope = raw.partition(b" ")
    if not sep or not is_stream_id(stream_id):
        raise BadEnvelope("stream-id")
    return stream_id.decode(), envelope
