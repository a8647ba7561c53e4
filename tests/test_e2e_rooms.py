"""Rooms end to end in real pseudo-terminals: three people, one offline and back."""

import os
import signal

import pexpect
from helpers import wait_until
from terminals import TIMEOUT, World

from chatbus.messages import Mailbox
from chatbus.rooms import Rooms

CLOCK = r"\d\d:\d\d"


def alice_and_bob_in_ops(world: World) -> None:
    """alice and bob, both in #ops; bob logged in here."""
    world.register("alice", "bob")
    world.logged_in("bob")
    Rooms(world.hub, "alice").join("#ops")
    Rooms(world.hub, "bob").join("#ops")


def test_three_people_chat_in_a_room_and_one_comes_back_to_unread_and_mentions(
    world: World,
) -> None:
    world.register("alice", "bob", "carol")
    for name in ("alice", "bob", "carol"):
        world.logged_in(name)
    for name in ("alice", "bob", "carol"):
        Rooms(world.hub, name).join("#ops")
    alice = world.terminal("alice", "chat", "+ops")
    alice.expect(r"room #ops: 3 members")
    bob = world.terminal("bob", "chat", "#ops")
    bob.expect(r"\[#ops\]")
    alice.enter("morning all")
    bob.expect_row(rf"{CLOCK} alice: morning all")
    bob.enter("/me waves")
    alice.expect_row(rf"{CLOCK} \* bob waves")
    bob.enter("/topic release on friday")
    alice.expect_row(rf"{CLOCK} -- bob set the topic of #ops: release on friday")
    # carol is offline meanwhile: two more, one of them naming her.
    alice.enter("@carol can you check the logs?")
    alice.enter("and one more")
    bob.expect_row(rf"{CLOCK} alice: and one more")
    (summary,) = Rooms(world.hub, "carol").summaries()
    assert (summary.unread, summary.mentions) == (4, 1)

    carol = world.terminal("carol", "chat", "+ops")
    carol.expect("4 new messages:")
    carol.expect_row(rf"{CLOCK} alice: morning all")
    carol.expect_row(rf"{CLOCK} alice: @carol can you check the logs\?")
    carol.expect_on_screen("topic: release on friday")
    carol.enter("/members")
    carol.expect("#ops: 3 members; online: ")
    # Opening the room read it: no unread left, no mention left.
    wait_until(
        lambda: Rooms(world.hub, "carol").unread_counts() == {"#ops": (0, 0)}, TIMEOUT, "read"
    )
    carol.enter("/quit")
    carol.child.expect(pexpect.EOF)
    for terminal in (alice, bob):
        terminal.enter("/quit")
        terminal.child.expect(pexpect.EOF)


def test_a_member_killed_with_sigkill_gets_every_room_message_once_on_return(
    world: World,
) -> None:
    alice_and_bob_in_ops(world)
    bob = world.terminal("bob", "chat", "+ops")
    bob.expect(r"\[#ops\]")
    Mailbox(world.hub, "alice").send("#ops", "before the crash")
    bob.expect_row(rf"{CLOCK} alice: before the crash")
    # Shown is read, a moment later; then the crash.
    wait_until(lambda: Rooms(world.hub, "bob").unread_counts() == {"#ops": (0, 0)}, TIMEOUT, "read")
    os.kill(bob.child.pid, signal.SIGKILL)
    bob.child.expect(pexpect.EOF)
    Mailbox(world.hub, "alice").send_many("#ops", [f"while away {i}" for i in range(5)])

    again = world.terminal("bob", "chat", "+ops", "--history", "0")
    again.expect("5 new messages:")
    for i in range(5):
        again.expect_row(rf"{CLOCK} alice: while away {i}")
    shown = "\n".join(again.screen())
    assert all(shown.count(f"while away {i}") == 1 for i in range(5))
    again.enter("/quit")
    again.child.expect(pexpect.EOF)


def test_the_lobby_lists_rooms_and_the_chat_view_joins_invites_and_leaves(
    world: World,
) -> None:
    alice_and_bob_in_ops(world)
    Mailbox(world.hub, "alice").send_many("#ops", ["one", "two @bob"])
    bob = world.terminal("bob", "login", "bob")
    bob.expect_row(r" +1\) #ops  2 unread, 1 mentioning you")
    bob.enter("1")
    bob.expect("2 new messages:")
    bob.expect_row(rf"{CLOCK} alice: two @bob")
    bob.enter("/join #dev")
    bob.expect("created #dev; you own it")
    bob.expect(r"\[#dev\]")
    bob.enter("/invite alice")
    bob.expect_row(rf"{CLOCK} -- bob invited alice to #dev")
    assert Rooms(world.hub, "alice").invitations() == {"#dev": "bob"}
    bob.enter("/leave")
    bob.expect("you left #dev")
    bob.enter("/back")
    bob.expect_row(r" +1\) #ops")
    assert Rooms(world.hub, "bob").mine() == ["#ops"]
    bob.enter("/quit")
    bob.child.expect(pexpect.EOF)


def test_a_busy_room_elsewhere_says_so_once_and_again_for_each_mention(world: World) -> None:
    world.register("alice", "bob")
    world.logged_in("bob")
    for room in ("#ops", "#dev"):
        Rooms(world.hub, "alice").join(room)
        Rooms(world.hub, "bob").join(room)
    bob = world.terminal("bob", "chat", "+ops")
    bob.expect(r"\[#ops\]")
    alice = Mailbox(world.hub, "alice")
    for text in ("one", "two", "three"):
        alice.send("#dev", text)
    bob.expect_row(r"-- alice wrote in #dev \([1-3] unread\): /switch #dev")
    alice.send("#dev", "@bob over here")
    bob.expect_row(r"-- alice mentioned you in #dev \(4 unread\): /switch #dev")
    notices = [row for row in bob.screen() if "in #dev" in row]
    assert len(notices) == 2
    bob.expect_on_screen("unread: #dev 4")  # the status bar
    bob.enter("/quit")
    bob.child.expect(pexpect.EOF)


def test_an_invitation_shows_in_the_lobby_and_picking_it_joins(world: World) -> None:
    world.register("alice", "carol")
    world.logged_in("carol")
    Rooms(world.hub, "alice").join("#secret", private=True)
    Rooms(world.hub, "alice").invite("#secret", "carol")
    carol = world.terminal("carol", "login", "carol")
    carol.expect_row(r" +1\) #secret  invited by alice: pick it to join")
    carol.enter("1")
    carol.expect(r"room #secret: 2 members")
    assert Rooms(world.hub, "carol").mine() == ["#secret"]
    carol.enter("/quit")
    carol.child.expect(pexpect.EOF)
