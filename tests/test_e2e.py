"""End to end: real chatbus processes in real pseudo-terminals, a real hub.

These drive the installed ``chatbus`` command the way a person would: type,
press Enter, read the screen. NO_COLOR keeps the expected text free of colour
codes; prompt_toolkit still draws its input line with escape sequences, so
assertions look for the lines chatbus prints.
"""

import signal
import subprocess

import pexpect
import pytest
from helpers import CHATBUS, wait_until
from terminals import PASSWORD, TIMEOUT, World, user_env

from chatbus import accounts
from chatbus.messages import Mailbox
from chatbus.presence import snapshot


def test_two_users_pick_each_other_from_the_list_and_talk_both_ways(world: World) -> None:
    world.register("alice", "bob")
    alice = world.login("alice")
    alice.expect("nobody else is online")
    alice.expect("chat with>")
    bob = world.login("bob")
    bob.expect(r"1\) alice")
    alice.expect(r"1\) bob")  # her list updated live: bob appeared
    bob.enter("1")
    bob.expect("chat with alice")
    bob.enter("Привет, Алиса! 👋")
    bob.expect(r"\d\d:\d\d bob: Привет, Алиса! 👋")
    alice.expect(r"1\) bob +1 unread")  # the lobby counts what arrives
    alice.enter("bob")
    alice.expect(r"\d\d:\d\d bob: Привет, Алиса! 👋")
    alice.enter("你好 bob 🎉")
    bob.expect(r"\d\d:\d\d alice: 你好 bob 🎉")
    alice.expect(r"\d\d:\d\d alice: 你好 bob 🎉")
    # bob goes back to the lobby; alice's chat says he is still online, then
    # that he left when he quits.
    bob.enter("/back")
    bob.expect(r"1\) alice")
    bob.enter("/quit")
    bob.child.expect(pexpect.EOF)
    alice.expect("bob went offline")
    world.logged_in("bob")
    world.terminal("bob", "chat", "alice")
    alice.expect("bob is online")


def test_a_message_arriving_mid_typing_leaves_the_typed_text_intact(world: World) -> None:
    world.register("alice", "bob")
    world.logged_in("alice")
    alice = world.terminal("alice", "chat", "bob")
    alice.expect("chat with bob")
    alice.expect(r"\[bob\]")
    alice.type("half-way through")
    Mailbox(world.hub, "bob").send("alice", "interrupting!")
    alice.expect(r"\d\d:\d\d bob: interrupting!")
    alice.enter(" a sentence")
    alice.expect(r"\d\d:\d\d alice: half-way through a sentence")
    bob_sees = Mailbox(world.hub, "bob").conversation("alice", 5).messages
    assert [m.envelope.body for m in bob_sees] == ["interrupting!", "half-way through a sentence"]


def test_what_arrives_in_the_open_chat_is_not_listed_as_unread(world: World) -> None:
    world.register("alice", "bob")
    world.logged_in("alice")
    alice = world.terminal("alice", "chat", "bob")
    alice.expect(r"\[bob\]")
    Mailbox(world.hub, "bob").send("alice", "just now")
    alice.expect(r"\d\d:\d\d bob: just now")
    alice.enter("/users")  # at once: before the read mark would go out by itself
    alice.expect(r"online \(1\): alice")
    alice.enter("/history 1")
    alice.expect("history with bob")
    since_users = alice.screen_so_far().rsplit("online (1): alice", 1)[1]
    assert "unread" not in since_users
    assert Mailbox(world.hub, "alice").unread_counts() == {}


def test_escape_sequences_in_a_message_show_as_harmless_text(world: World) -> None:
    world.register("alice", "mallory")
    world.logged_in("alice")
    alice = world.terminal("alice", "chat", "mallory")
    alice.expect(r"\[mallory\]")
    hostile = "look \x1b]0;pwned\x07\x1b[2J\x1b[31mred\x1b[0m \x9b6n here"
    Mailbox(world.hub, "mallory").send("alice", hostile)
    alice.expect(r"\d\d:\d\d mallory: look red  here")
    screen = alice.screen_so_far()
    for sequence in ("\x1b]0;pwned", "\x1b[31m", "\x9b6n", "\x1b[2J"):
        assert sequence not in screen


def test_an_offline_user_finds_waiting_messages_and_unread_counts_at_next_login(
    world: World,
) -> None:
    world.register("alice", "bob")
    world.logged_in("bob")
    bob = world.terminal("bob", "chat", "alice")
    bob.expect("alice is offline; your messages will wait for them")
    bob.enter("are you there?")
    bob.enter("ping me when you are back")
    bob.expect(r"bob: ping me when you are back")
    bob.enter("/quit")
    bob.child.expect(pexpect.EOF)
    alice = world.login("alice")
    alice.expect(r"1\) bob +2 unread, offline")
    alice.enter("1")
    alice.expect(r"\d\d:\d\d bob: are you there\?")
    alice.expect(r"\d\d:\d\d bob: ping me when you are back")
    assert Mailbox(world.hub, "alice").unread_counts() == {}  # reading clears them


def test_ctrl_c_leaves_at_once_and_releases_presence(world: World) -> None:
    world.register("alice", "bob")
    world.logged_in("alice")
    alice = world.terminal("alice", "chat", "bob")
    alice.expect(r"\[bob\]")
    wait_until(lambda: snapshot(world.hub)[1] == ["alice"], TIMEOUT, "alice online")
    alice.child.sendintr()
    alice.child.expect(pexpect.EOF)
    alice.child.close()
    assert alice.child.exitstatus == 0
    assert "Traceback" not in str(alice.child.before)
    assert snapshot(world.hub)[1] == []


def test_send_from_a_pipe_of_1000_lines_delivers_all_in_order(world: World) -> None:
    world.register("alice", "bob")
    world.logged_in("alice")
    lines = "".join(f"line {i}\n" for i in range(1000))
    result = subprocess.run(
        [CHATBUS, "send", "bob"],
        input=lines,
        text=True,
        capture_output=True,
        env=user_env(world.settings, world.home("alice")),
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    received = Mailbox(world.hub, "bob").read_after("0-0", count=2000).messages
    assert [m.envelope.body for m in received] == [f"line {i}" for i in range(1000)]


def test_chat_without_a_terminal_prints_one_line_per_message(world: World) -> None:
    world.register("alice", "bob")
    world.logged_in("alice")
    chat = subprocess.Popen(
        [CHATBUS, "chat", "bob", "--history", "0"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=user_env(world.settings, world.home("alice")),
    )
    assert chat.stdin is not None and chat.stdout is not None
    wait_until(lambda: "alice" in snapshot(world.hub)[1], TIMEOUT, "alice online")
    Mailbox(world.hub, "bob").send("alice", "hello \x1b[2Jthere")
    assert chat.stdout.readline().rstrip("\n").endswith(" bob: hello there")
    chat.stdin.write("hi bob\n")
    chat.stdin.close()
    assert chat.wait(TIMEOUT) == 0
    bob_sees = Mailbox(world.hub, "bob").conversation("alice", 5).messages
    assert [m.envelope.body for m in bob_sees][-1] == "hi bob"


def test_registering_on_a_terminal_asks_for_the_password_twice(world: World) -> None:
    carol = world.terminal("carol", "login", "carol")
    carol.expect("carol is a new name: choose a password")
    carol.expect("Password: ")
    carol.enter("first-try-1")
    carol.expect("Repeat the password: ")
    carol.enter("first-try-2")
    carol.expect("do not match")
    carol.expect("Password: ")
    carol.enter("second-try")
    carol.expect("Repeat the password: ")
    carol.enter("second-try")
    carol.expect("Registered carol and logged in.")
    carol.expect("nobody else is online")
    carol.enter("/quit")
    carol.child.expect(pexpect.EOF)
    assert accounts.login(world.hub, "carol", "second-try").name == "carol"
    assert "second-try" not in carol.screen_so_far()  # the password was never echoed


def test_a_running_chat_ends_when_the_password_is_changed_elsewhere(world: World) -> None:
    world.register("alice", "bob")
    world.logged_in("alice")
    alice = world.terminal("alice", "chat", "bob")
    alice.expect(r"\[bob\]")
    alice.type("half a thought")
    # Alice, on another machine, changes her password: this chat was that
    # other session, so it must stop rather than keep speaking as alice.
    other = accounts.login(world.hub, "alice", PASSWORD)
    accounts.change_password(world.hub, other, PASSWORD, "a new password")
    alice.child.expect(pexpect.EOF)
    alice.child.close()
    assert alice.child.exitstatus == 1
    assert (
        "Error: the hub no longer accepts the session of 'alice'; "
        "log in again with 'chatbus login alice'"
    ) in alice.screen_so_far()
    assert "Traceback" not in alice.screen_so_far()
    assert snapshot(world.hub)[1] == []


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGHUP])
def test_a_terminated_chat_releases_presence_at_once(world: World, how: signal.Signals) -> None:
    world.register("alice", "bob")
    world.logged_in("alice")
    alice = world.terminal("alice", "chat", "bob")
    alice.expect(r"\[bob\]")
    wait_until(lambda: snapshot(world.hub)[1] == ["alice"], TIMEOUT, "alice online")
    alice.child.kill(how)
    alice.child.expect(pexpect.EOF)
    assert "Traceback" not in alice.screen_so_far()
    assert snapshot(world.hub)[1] == []


def test_chat_commands_history_switch_and_help(world: World) -> None:
    world.register("alice", "bob", "carol")
    bob = Mailbox(world.hub, "bob")
    bob.send_many("alice", [f"old {i}" for i in range(5)])
    world.logged_in("alice")
    alice = world.terminal("alice", "chat", "bob", "--history", "2")
    alice.expect(r"\d\d:\d\d bob: old 3")
    alice.expect(r"\d\d:\d\d bob: old 4")
    alice.expect(r"\[bob\]")
    alice.enter("/history 4")
    alice.expect("history with bob, the last 4 at most:")
    for i in range(1, 5):  # shown again, on request, even though on screen
        alice.expect(rf"\d\d:\d\d bob: old {i}")
    alice.expect("end of history; live again")
    Mailbox(world.hub, "carol").send("alice", "psst")
    alice.expect(r"new message from carol \(1 unread\): /switch carol")
    alice.enter("/switch carol")
    alice.expect("chat with carol")
    alice.expect(r"\d\d:\d\d carol: psst")
    alice.enter("/help")
    alice.expect(r"/history \[N\]")
    alice.enter("/nonsense")
    alice.expect("unknown command /nonsense")
    alice.enter("//slash at the start")
    alice.expect(r"\d\d:\d\d alice: /slash at the start")
    alice.enter("/switch nobody")
    alice.expect("no account named 'nobody'")
    alice.enter("/quit")
    alice.child.expect(pexpect.EOF)
    assert Mailbox(world.hub, "alice").unread_counts() == {}


def test_the_lobby_takes_odd_input_calmly_and_ctrl_d_leaves(world: World) -> None:
    world.register("alice", "123")
    alice = world.login("alice")
    alice.expect("nobody else is online")
    alice.enter("²")  # a digit to Python, not a number to us
    alice.expect("invalid name '²'")
    alice.enter("7")
    alice.expect("no number 7 in the list")
    alice.enter("/help")
    alice.expect("type a number from the list or any name to chat")
    alice.enter("/whatever")
    alice.expect("unknown command /whatever; type a number")
    alice.enter("123")  # a name made of digits is still a name
    alice.expect("chat with 123")
    alice.enter("/back")
    alice.expect("nobody else is online")
    alice.expect("chat with>")  # the input line is up: Ctrl-D now goes to it
    alice.child.sendcontrol("d")
    alice.child.expect(pexpect.EOF)
    alice.child.close()
    assert alice.child.exitstatus == 0
    assert "Traceback" not in alice.screen_so_far()
