"""Two people chatting full screen, in real pseudo-terminals.

The terminals are emulated (pyte) and read as a person would see them; the
raw output is checked for what a screen does not show: the window title,
and leaving the alternate screen (the terminal restored) on quitting.
"""

import signal

import pexpect
from helpers import wait_until
from terminals import TIMEOUT, Terminal, World

from chatbus.messages import Mailbox

# What Textual sends on leaving: the normal screen back.
LEAVE_ALTERNATE_SCREEN = "\x1b[?1049l"


def on_screen(terminal: Terminal, text: str) -> bool:
    return any(text in row for row in terminal.screen())


def refresh(terminal: Terminal) -> None:
    """Read what the program has written so far."""
    terminal.child.expect([r"(?s).+", pexpect.TIMEOUT], timeout=0.05)


def shows(terminal: Terminal, text: str) -> None:
    def seen() -> bool:
        refresh(terminal)
        return on_screen(terminal, text)

    try:
        wait_until(seen, TIMEOUT, repr(text))
    except AssertionError as missing:
        raise AssertionError(f"{missing}; the screen:\n" + "\n".join(terminal.screen())) from None


def test_two_people_chat_full_screen_switch_get_notified_resize_and_quit(world: World) -> None:
    world.register("alice", "bob", "carol")
    world.logged_in("alice")
    world.logged_in("bob")
    alice = world.terminal("alice", "chat", "bob", full_screen=True, size=(100, 30))
    bob = world.terminal("bob", "login", "bob", full_screen=True, size=(100, 30))
    shows(alice, "connected")
    shows(bob, "connected")
    alice.enter("hi bob")
    shows(alice, "alice: hi bob")
    shows(bob, "alice 1")  # bob's sidebar: alice, with one unread
    bob.type("\x1b1")  # Alt-1: the first conversation in the sidebar
    shows(bob, "alice: hi bob")
    bob.enter("hi! two lines\x1b\rthe second")
    shows(alice, "bob: hi! two lines")
    shows(alice, "the second")

    # A third person writes to alice: her sidebar marks it, the title counts it.
    Mailbox(world.hub, "carol").send("alice", "ping from carol")
    shows(alice, "carol 1")
    wait_until(
        lambda: "\x1b]2;(1) chatbus: alice\x07" in alice.screen_so_far() or refresh(alice),
        TIMEOUT,
        "the unread count in alice's title",
    )
    alice.type("\x0e")  # Ctrl-N: the next conversation
    shows(alice, "carol: ping from carol")

    # A smaller window: drawn again to fit, the status bar on the last row.
    alice.child.setwinsize(24, 80)
    alice.child.display.resize(24, 80)
    wait_until(
        lambda: refresh(alice) or alice.screen()[-1].lstrip().startswith("alice @"),
        TIMEOUT,
        "the status bar on the last row",
    )
    shows(alice, "carol: ping from carol")

    # Ctrl-C leaves and gives the terminal back; SIGTERM too.
    alice.type("\x03")
    alice.child.expect(pexpect.EOF)
    alice.child.close()
    assert alice.child.exitstatus == 0
    assert LEAVE_ALTERNATE_SCREEN in alice.screen_so_far()
    bob.child.kill(signal.SIGTERM)
    bob.child.expect(pexpect.EOF)
    bob.child.close()
    assert bob.child.exitstatus == 0
    assert LEAVE_ALTERNATE_SCREEN in bob.screen_so_far()
