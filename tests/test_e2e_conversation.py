"""End to end in real pseudo-terminals: unread messages, outages, long and multi-line text."""

from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest
from conftest import make_settings
from helpers import wait_until
from terminals import TIMEOUT, Terminal, World, world_of

from chatbus.messages import Mailbox
from chatbus.reading import UNREAD_SHOWN_MAX
from chatbus.server import HubProcess

CLOCK = r"\d\d:\d\d"


@pytest.fixture
def own_world(own_hub: HubProcess, tmp_path: Path) -> Iterator[World]:
    """A world on a hub of its own, which the test may stop and start again."""
    with world_of(make_settings(own_hub, tmp_path / "home"), tmp_path) as state:
        yield state


def chat_with_the_hub_gone(world: World, hub: HubProcess) -> Terminal:
    """alice chatting with bob, and the hub just stopped under her."""
    world.register("alice", "bob")
    world.logged_in("alice")
    alice = world.terminal("alice", "chat", "bob")
    alice.expect(r"\[bob\]")
    hub.stop()
    alice.expect("lost the hub")
    return alice


def test_a_chat_opens_at_the_first_unread_message_and_reads_them_all(world: World) -> None:
    world.register("bob", "carol")
    carol = Mailbox(world.hub, "carol")
    carol.send_many("bob", ["yesterday 1", "yesterday 2"])
    Mailbox(world.hub, "bob").mark_read("carol")
    carol.send_many("bob", [f"unread {i}" for i in range(25)])
    world.logged_in("bob")
    bob = world.terminal("bob", "chat", "carol")
    bob.expect(rf"{CLOCK} carol: yesterday 2")
    bob.expect("-- 25 new messages:")
    for i in range(25):  # every one, though the default history is 20
        bob.expect(rf"{CLOCK} carol: unread {i}\r")
    bob.expect(r"\[carol\]")
    bob.enter("/quit")
    bob.child.expect(pexpect.EOF)
    assert Mailbox(world.hub, "bob").unread_counts() == {}


def test_unread_messages_beyond_one_screen_stay_unread_until_paged_back_to(
    world: World,
) -> None:
    world.register("bob", "carol")
    total = UNREAD_SHOWN_MAX + 30
    Mailbox(world.hub, "carol").send_many("bob", [f"m{i}" for i in range(total)])
    world.logged_in("bob")
    bob = world.terminal("bob", "chat", "carol")
    bob.expect(f"{UNREAD_SHOWN_MAX} new messages:")
    bob.expect(rf"{CLOCK} carol: m{total - 1}\r")
    # Said below the messages, so that it is on screen, not scrolled away.
    bob.expect("30 more unread messages from carol are older than these: /older pages back")
    bob.expect(r"\[carol\]")
    assert Mailbox(world.hub, "bob").unread_counts() == {"carol": 30}
    bob.enter("/older 20")
    bob.expect("older messages with carol:")
    bob.expect(rf"{CLOCK} carol: m10\r")
    bob.expect(r"end of older messages \(/older for more\)")
    bob.enter("/older")
    bob.expect(rf"{CLOCK} carol: m0\r")
    bob.expect(r"end of older messages \(that was the first message\)")
    bob.enter("/older")
    bob.expect("that was the first message with carol")
    wait_until(lambda: Mailbox(world.hub, "bob").unread_counts() == {}, 5, "all read")
    bob.enter("/quit")
    bob.child.expect(pexpect.EOF)


def test_a_line_typed_while_the_hub_is_down_is_pending_then_sent(
    own_world: World, own_hub: HubProcess
) -> None:
    alice = chat_with_the_hub_gone(own_world, own_hub)
    # The status bar no longer says whether bob is online.
    alice.expect_on_screen("alice -> bob (presence unknown: the hub is unreachable")
    alice.enter("typed while down")
    alice.expect(r"alice: typed while down  \(pending: .*; sent when the hub is back\)")
    alice.enter("and a second")
    alice.expect(r"alice: and a second  \(pending")
    own_hub.start()
    # Both go, in order, once; and the screen shows them as the hub has them.
    mailbox = Mailbox(own_world.hub, "bob")
    wait_until(lambda: len(mailbox.read_after("0-0").messages) == 2, TIMEOUT, "both sent")
    assert [m.envelope.body for m in mailbox.read_after("0-0").messages] == [
        "typed while down",
        "and a second",
    ]
    alice.expect_row(rf"{CLOCK} alice: typed while down")
    alice.expect_row(rf"{CLOCK} alice: and a second")
    alice.expect_row("-- sent the message that was pending to bob")
    alice.enter("/quit")
    alice.child.expect(pexpect.EOF)
    alice.child.close()
    assert alice.child.exitstatus == 0


def test_quitting_with_lines_still_pending_warns_then_says_what_was_not_sent(
    own_world: World, own_hub: HubProcess
) -> None:
    alice = chat_with_the_hub_gone(own_world, own_hub)
    alice.enter("never sent")
    alice.expect(r"\(pending")
    alice.enter("/quit")
    alice.expect("1 message is still waiting for the hub, to go when it is back; /quit again")
    alice.enter("/quit")
    alice.expect("Not sent to bob: never sent")
    alice.expect("Error: 1 message was not sent: the hub was unreachable")
    alice.child.expect(pexpect.EOF)
    alice.child.close()
    assert alice.child.exitstatus == 1


def test_a_pasted_multi_line_message_keeps_its_lines_and_a_long_one_is_split(
    world: World,
) -> None:
    world.register("alice", "bob")
    world.logged_in("alice")
    alice = world.terminal("alice", "chat", "bob")
    alice.expect(r"\[bob\]")
    # A terminal wraps a paste in bracketed-paste markers.
    alice.type("\x1b[200~first line\r\nsecond line\r\nthird line\x1b[201~")
    alice.enter()
    alice.expect(rf"{CLOCK} alice: first line\r\n +second line\r\n +third line\r")
    # Alt-Enter (Esc, Enter) starts a new line too.
    alice.type("top\x1b\rbottom")
    alice.enter()
    alice.expect(rf"{CLOCK} alice: top\r\n +bottom\r")
    long_text = " ".join(f"word{i:04d}" for i in range(500))  # 4,499 bytes
    alice.enter(long_text)
    alice.expect("longer than 4096 bytes: sending as 2 messages")
    alice.expect(r"alice: word0000 ")
    alice.expect(r"alice: word0\d\d\d ")
    bodies = [m.envelope.body for m in Mailbox(world.hub, "bob").read_after("0-0").messages]
    assert bodies[:2] == ["first line\nsecond line\nthird line", "top\nbottom"]
    assert len(bodies) == 4
    assert " ".join(bodies[2:]) == long_text
    assert all(len(body.encode()) <= 4096 for body in bodies)
    alice.enter("/quit")
    alice.child.expect(pexpect.EOF)
