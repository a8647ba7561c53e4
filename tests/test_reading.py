"""Opening a conversation at its first unread message, and paging back to its first."""

import pytest

from chatbus import accounts
from chatbus.hub import Hub
from chatbus.messages import Mailbox, Message
from chatbus.reading import UNREAD_SHOWN_MAX, ConversationReader


@pytest.fixture
def bob(hub: Hub) -> Mailbox:
    for name in ("bob", "Carol", "dave"):
        accounts.register(hub, name, "password1")
    return Mailbox(hub, "bob")


def bodies(messages: list[Message]) -> list[str]:
    return [m.envelope.body for m in messages]


def test_a_conversation_opens_at_its_first_unread_message(hub: Hub, bob: Mailbox) -> None:
    carol = Mailbox(hub, "Carol")
    carol.send_many("bob", [f"old {i}" for i in range(5)])
    bob.mark_read("Carol")
    bob.send("Carol", "my reply")
    carol.send_many("bob", [f"new {i}" for i in range(25)])
    opening = ConversationReader(bob, "carol").open(history=20)
    shown = bodies(opening.messages)
    # All 25 unread, though 20 earlier messages were asked for, and no more.
    assert shown[-25:] == [f"new {i}" for i in range(25)]
    assert opening.first_unread is not None
    assert shown[opening.first_unread] == "new 0"
    assert opening.unread_not_shown == 0
    assert bob.unread_counts() == {}


def test_without_unread_messages_the_newest_history_shows(hub: Hub, bob: Mailbox) -> None:
    Mailbox(hub, "Carol").send_many("bob", [f"m{i}" for i in range(30)])
    bob.mark_read("Carol")
    opening = ConversationReader(bob, "Carol").open(history=10)
    assert bodies(opening.messages) == [f"m{i}" for i in range(20, 30)]
    assert opening.first_unread is None


def test_more_unread_than_one_screen_leaves_the_older_ones_unread_until_paged_to(
    hub: Hub, bob: Mailbox
) -> None:
    total = UNREAD_SHOWN_MAX + 50
    sent = [f"m{i}" for i in range(total)]
    Mailbox(hub, "Carol").send_many("bob", sent)
    Mailbox(hub, "dave").send("bob", "noise")  # another conversation is not touched
    reader = ConversationReader(bob, "Carol")
    opening = reader.open(history=20)
    assert bodies(opening.messages) == sent[-UNREAD_SHOWN_MAX:]
    assert opening.unread_not_shown == 50
    assert bob.unread_counts() == {"Carol": 50, "dave": 1}
    # Paging back reaches every message, each once, and reads the rest.
    seen = bodies(opening.messages)
    while True:
        page = reader.older(30)
        seen[:0] = bodies(page.messages)
        if not page.more:
            break
    assert seen == sent
    assert bob.unread_counts() == {"dave": 1}
    assert reader.older(30).messages == []


def test_a_message_arriving_after_the_opening_stays_unread_until_shown(
    hub: Hub, bob: Mailbox
) -> None:
    carol = Mailbox(hub, "Carol")
    carol.send_many("bob", ["a", "b"])
    reader = ConversationReader(bob, "Carol")
    reader.open(history=20)
    late = carol.send("bob", "c")
    assert bob.unread_counts() == {"Carol": 1}
    assert reader.take_live(late)
    assert not reader.take_live(late)  # once
    reader.flush_read()
    assert bob.unread_counts() == {}


def test_a_live_message_already_in_the_opening_is_not_shown_again(hub: Hub, bob: Mailbox) -> None:
    sent = Mailbox(hub, "Carol").send("bob", "both ways")
    reader = ConversationReader(bob, "Carol")
    assert bodies(reader.open(history=5).messages) == ["both ways"]
    assert not reader.take_live(sent)


def test_mark_read_lowers_the_count_and_never_below_zero(hub: Hub, bob: Mailbox) -> None:
    Mailbox(hub, "Carol").send_many("bob", ["1", "2", "3"])
    assert bob.mark_read("Carol", 2) == 1
    assert bob.unread_counts() == {"Carol": 1}
    assert bob.mark_read("Carol", 5) == 0
    assert bob.unread_counts() == {}
    # A count that no chatbus client wrote is cleared, not a crash.
    hub.redis.hset(hub.keys.unread("bob"), "Carol", "junk")
    assert bob.mark_read("Carol", 1) == 0
    assert bob.unread_counts() == {}
