"""The envelope codec: strict encoding, stricter decoding."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatbus.envelope import (
    BadEnvelope,
    Envelope,
    decode_envelope,
    max_payload,
    new_envelope,
    split_delivery,
)
from chatbus.errors import InvalidMessage

MAX = 4096
names = st.from_regex(r"[A-Za-z0-9_-]{1,32}", fullmatch=True)
bodies = st.text(min_size=1, max_size=300).filter(lambda b: b.strip() != "")


@given(names, names, bodies)
def test_what_is_encoded_decodes_to_the_same_envelope(
    sender: str, recipient: str, body: str
) -> None:
    envelope = new_envelope(sender, recipient, body, MAX)
    assert decode_envelope(envelope.encode(), MAX) == envelope


@given(st.binary(max_size=2000))
def test_random_bytes_never_raise_anything_but_bad_envelope(raw: bytes) -> None:
    with pytest.raises(BadEnvelope):
        decode_envelope(raw, MAX)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)


@given(st.dictionaries(st.sampled_from(["v", "id", "from", "to", "ts", "body", "x"]), json_values))
def test_wrong_types_in_any_field_are_refused(fields: dict[str, object]) -> None:
    raw = json.dumps(fields).encode()
    try:
        envelope = decode_envelope(raw, MAX)
    except BadEnvelope:
        return
    assert isinstance(envelope, Envelope)  # only a fully valid object gets here


def valid_fields() -> dict[str, object]:
    return {"v": 1, "id": "a" * 32, "from": "alice", "to": "bob", "ts": 1, "body": "hi"}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"v": 2}, "version"),
        ({"v": True}, "version"),
        ({"id": "not-hex"}, "id"),
        ({"from": "al ice"}, "name"),
        ({"to": None}, "name"),
        ({"ts": "yesterday"}, "timestamp"),
        ({"ts": -1}, "timestamp"),
        ({"ts": True}, "timestamp"),
        ({"body": 42}, "body"),
        ({"body": ""}, "body"),
        ({"body": "x" * (MAX + 1)}, "body"),
        ({"body": "\ud800"}, "body"),
    ],
)
def test_each_invalid_field_is_named(change: dict[str, object], reason: str) -> None:
    fields = valid_fields() | change
    with pytest.raises(BadEnvelope) as raised:
        decode_envelope(json.dumps(fields).encode(), MAX)
    assert raised.value.reason == reason


def test_oversized_payloads_are_refused_before_parsing() -> None:
    with pytest.raises(BadEnvelope, match="oversized"):
        decode_envelope(b"[" * (max_payload(MAX) + 1), MAX)


def test_deep_nesting_is_refused_not_crashing() -> None:
    with pytest.raises(BadEnvelope):
        decode_envelope(b"[" * 50_000 + b"]" * 50_000, 100_000)


def test_a_body_at_the_limit_is_sent_and_one_byte_more_is_refused() -> None:
    assert new_envelope("a", "b", "é" * (MAX // 2), MAX).body
    with pytest.raises(InvalidMessage, match="message too long: 4097 bytes, the limit is 4096"):
        new_envelope("a", "b", "x" * (MAX + 1), MAX)


@pytest.mark.parametrize("body", ["", "   ", "\n"])
def test_empty_messages_are_refused(body: str) -> None:
    with pytest.raises(InvalidMessage, match="empty message"):
        new_envelope("a", "b", body, MAX)


def test_control_characters_survive_encoding_within_the_size_bound() -> None:
    body = "\x1b" * MAX
    encoded = new_envelope("a", "b", body, MAX).encode()
    assert len(encoded) <= max_payload(MAX)
    assert decode_envelope(encoded, MAX).body == body


@pytest.mark.parametrize("raw", [b"", b"nospace", b"12 {}"[:2], b"abc-1 {}", b"1-1{}"])
def test_live_payloads_without_a_stream_id_are_refused(raw: bytes) -> None:
    with pytest.raises(BadEnvelope, match="stream-id"):
        split_delivery(raw)


def test_live_payload_splits_into_stream_id_and_envelope() -> None:
    assert split_delivery(b"1700000000000-3 {}") == ("1700000000000-3", b"{}")
