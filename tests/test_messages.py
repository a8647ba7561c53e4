"""Direct messages: mailboxes, unread counts, history, limits."""

import dataclasses

import pytest

from chatbus import accounts
from chatbus.envelope import new_envelope
from chatbus.errors import InvalidMessage, UnknownUser
from chatbus.hub import Hub
from chatbus.messages import SEND_BATCH, Mailbox


@pytest.fixture
def users(hub: Hub) -> tuple[Mailbox, Mailbox]:
    for name in ("Alice", "bob"):
        accounts.register(hub, name, "password1")
    return Mailbox(hub, "Alice"), Mailbox(hub, "bob")


def test_messages_to_an_offline_user_wait_in_their_mailbox(users: tuple[Mailbox, Mailbox]) -> None:
    alice, bob = users
    alice.send("bob", "are you there?")
    alice.send("bob", "call me")
    page = bob.read_after("0-0")
    assert [m.envelope.body for m in page.messages] == ["are you there?", "call me"]
    assert {m.envelope.sender for m in page.messages} == {"Alice"}


def test_unread_counts_per_sender_survive_and_clear_when_read(
    hub: Hub, users: tuple[Mailbox, Mailbox]
) -> None:
    alice, bob = users
    accounts.register(hub, "carol", "password1")
    carol = Mailbox(hub, "carol")
    for text in ("one", "two", "three"):
        alice.send("bob", text)
    carol.send("bob", "hi")
    assert bob.unread_counts() == {"Alice": 3, "carol": 1}
    # A new process (a later login) sees the same counts: they live in the hub.
    assert Mailbox(Hub(hub.settings), "bob").unread_counts() == {"Alice": 3, "carol": 1}
    bob.mark_read("Alice")
    assert bob.unread_counts() == {"carol": 1}
    assert alice.unread_counts() == {}  # sending does not count as unread for the sender


def test_the_sender_keeps_a_copy_in_their_own_mailbox(users: tuple[Mailbox, Mailbox]) -> None:
    alice, _ = users
    sent = alice.send("bob", "copy me")
    mine = alice.read_after("0-0").messages
    assert [(m.envelope.id, m.envelope.recipient) for m in mine] == [(sent.envelope.id, "bob")]


def test_history_shows_the_newest_messages_of_one_conversation_with_paging(
    hub: Hub, users: tuple[Mailbox, Mailbox]
) -> None:
    alice, bob = users
    accounts.register(hub, "carol", "password1")
    for i in range(25):
        (alice if i % 2 == 0 else bob).send("bob" if i % 2 == 0 else "Alice", f"m{i}")
        Mailbox(hub, "carol").send("bob", f"noise{i}")
    page = bob.conversation("alice", limit=10)
    assert [m.envelope.body for m in page.messages] == [f"m{i}" for i in range(15, 25)]
    assert page.older is not None
    older = bob.conversation("Alice", limit=10, before=page.older)
    assert [m.envelope.body for m in older.messages] == [f"m{i}" for i in range(5, 15)]
    oldest = bob.conversation("Alice", limit=10, before=older.older)
    assert [m.envelope.body for m in oldest.messages] == [f"m{i}" for i in range(5)]
    assert oldest.older is None


def test_sending_to_a_name_without_an_account_fails_clearly(users: tuple[Mailbox, Mailbox]) -> None:
    alice, _ = users
    with pytest.raises(UnknownUser, match="no account named 'zed'"):
        alice.send("zed", "hello?")
    # Nor does the sender's own history keep a message nobody received.
    assert alice.conversation("zed", limit=10).messages == []
    assert alice.latest_id() == "0-0"


def test_too_long_message_is_refused_and_nothing_is_stored(users: tuple[Mailbox, Mailbox]) -> None:
    alice, bob = users
    with pytest.raises(InvalidMessage, match="message too long"):
        alice.send("bob", "x" * 5000)
    assert bob.read_after("0-0").messages == []
    assert bob.unread_counts() == {}


def test_many_messages_arrive_in_order_in_batched_round_trips(
    users: tuple[Mailbox, Mailbox],
) -> None:
    alice, bob = users
    count = SEND_BATCH * 3 + 7
    alice.send_many("bob", (f"line {i}" for i in range(count)))
    received = [m.envelope.body for m in bob.read_after("0-0", count=count + 10).messages]
    assert received == [f"line {i}" for i in range(count)]
    assert bob.unread_counts() == {"Alice": count}


def test_a_bad_line_in_a_batch_stops_before_its_batch_is_sent(
    users: tuple[Mailbox, Mailbox],
) -> None:
    alice, bob = users
    lines = [f"ok {i}" for i in range(SEND_BATCH)] + ["fine", "x" * 5000]
    with pytest.raises(InvalidMessage):
        alice.send_many("bob", lines)
    assert len(bob.read_after("0-0", count=1000).messages) == SEND_BATCH


def test_the_mailbox_is_trimmed_to_about_its_configured_length(hub: Hub) -> None:
    small = Hub(dataclasses.replace(hub.settings, mailbox_maxlen=50))
    accounts.register(small, "Alice", "password1")
    accounts.register(small, "bob", "password1")
    Mailbox(small, "Alice").send_many("bob", (f"m{i}" for i in range(1000)))
    assert small.redis.xlen(small.keys.mailbox("bob")) < 200


def test_messages_to_yourself_are_stored_once(users: tuple[Mailbox, Mailbox]) -> None:
    alice, _ = users
    alice.send("alice", "note to self")
    assert [m.envelope.body for m in alice.read_after("0-0").messages] == ["note to self"]
    assert alice.unread_counts() == {}


def test_a_page_that_ends_exactly_at_the_first_message_offers_no_older_page(
    users: tuple[Mailbox, Mailbox],
) -> None:
    alice, bob = users
    alice.send_many("bob", [f"m{i}" for i in range(10)])
    assert bob.conversation("Alice", limit=10).older is None
    first = bob.conversation("Alice", limit=5)
    assert first.older is not None
    second = bob.conversation("Alice", limit=5, before=first.older)
    assert [m.envelope.body for m in second.messages] == [f"m{i}" for i in range(5)]
    assert second.older is None


def test_junk_in_the_unread_counts_is_ignored(hub: Hub, users: tuple[Mailbox, Mailbox]) -> None:
    alice, bob = users
    alice.send("bob", "hi")
    hub.redis.hset(
        hub.keys.unread("bob"),
        mapping={b"\xff": "1", "carol": "many", "\x1b[2J": "3", "dave": "-2"},
    )
    assert bob.unread_counts() == {"Alice": 1}


def test_history_shows_a_message_stored_twice_once(
    hub: Hub, users: tuple[Mailbox, Mailbox]
) -> None:
    alice, bob = users
    envelope = new_envelope("Alice", "bob", "said once", hub.settings.max_body)
    alice.deliver("bob", [envelope])
    alice.deliver("bob", [envelope])  # a retry after a lost reply
    assert [m.envelope.body for m in bob.conversation("Alice", 10).messages] == ["said once"]


def test_history_finds_a_rare_peer_deep_in_a_busy_mailbox(
    hub: Hub, users: tuple[Mailbox, Mailbox]
) -> None:
    alice, bob = users
    accounts.register(hub, "carol", "password1")
    alice.send("bob", "long ago")
    Mailbox(hub, "carol").send_many("bob", (f"chatter {i}" for i in range(3000)))
    page = bob.conversation("Alice", 5)
    assert [m.envelope.body for m in page.messages] == ["long ago"]
    assert page.older is None
