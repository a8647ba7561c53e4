"""`chatbus login NAME` with a saved session the hub still accepts: no password.

On a terminal it goes straight to the lobby; without one it prints the online
list. A password given explicitly (CHATBUS_PASSWORD, --password-stdin) is
still checked: the choice written in `chatbus login --help`.
"""

import io

import pexpect
import pytest
from cli_helpers import PASSWORD, Chatbus, one_line_error, pty_env
from helpers import CHATBUS, wait_until

from chatbus import accounts
from chatbus.config import Settings
from chatbus.hub import Hub
from chatbus.identity import IdentityStore
from chatbus.presence import snapshot

NO_PASSWORD = (
    "Error: no password: type it on a terminal, or pass CHATBUS_PASSWORD or --password-stdin"
)


@pytest.fixture
def chatbus(settings: Settings) -> Chatbus:
    return Chatbus(settings)


def saved(settings: Settings) -> IdentityStore:
    return IdentityStore(settings.home, settings.url, settings.namespace)


def test_on_a_terminal_a_live_saved_session_goes_straight_to_the_lobby(
    chatbus: Chatbus, settings: Settings, hub: Hub
) -> None:
    chatbus.login("alice")
    token = saved(settings).load("alice").token
    child = pexpect.spawn(
        CHATBUS,
        ["login", "Alice"],
        env=pty_env(settings),
        encoding="utf-8",
        timeout=15,
        dimensions=(24, 100),
    )
    child.logfile_read = transcript = io.StringIO()
    try:
        child.expect_exact("Logged in as alice (saved session).")
        child.expect_exact("nobody else is online, alice")
        wait_until(lambda: "alice" in snapshot(hub)[1], 10, "alice online in the lobby")
        child.sendcontrol("c")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert "Password" not in transcript.getvalue()
    assert saved(settings).load("alice").token == token  # the same session, no new one
    assert len(hub.redis.hgetall(hub.keys.sessions("alice"))) == 1


def test_on_a_terminal_a_session_the_hub_ended_asks_for_the_password(
    chatbus: Chatbus, settings: Settings, hub: Hub
) -> None:
    chatbus.login("alice")
    accounts.logout(hub, saved(settings).load("alice"))
    child = pexpect.spawn(
        CHATBUS, ["login", "alice"], env=pty_env(settings), encoding="utf-8", timeout=15
    )
    try:
        child.expect_exact("Password: ")
        child.sendline(PASSWORD)
        child.expect_exact("Logged in as alice.")
        child.expect_exact("nobody else is online, alice")
        child.sendcontrol("c")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    accounts.verify(hub, saved(settings).load("alice"))  # a new session, saved


def test_without_a_terminal_a_live_saved_session_prints_who_is_online(
    chatbus: Chatbus, settings: Settings
) -> None:
    chatbus.login("alice")
    chatbus.login("bob")  # bob is now the default; login alice still finds hers
    again = chatbus.ok("login", "alice")
    assert again.stdout.splitlines() == [
        "Logged in as alice (saved session).",
        "Online now: nobody",
    ]
    assert chatbus.ok("whoami").stdout.startswith("alice on ")  # and she is the default again


def test_without_a_terminal_an_ended_or_missing_session_still_needs_a_password(
    chatbus: Chatbus, settings: Settings, hub: Hub
) -> None:
    chatbus.login("alice")
    accounts.logout(hub, saved(settings).load("alice"))
    assert one_line_error(chatbus("login", "alice")) == NO_PASSWORD
    saved(settings).remove(saved(settings).load("alice"))
    assert one_line_error(chatbus("login", "alice")) == NO_PASSWORD


def test_a_password_given_explicitly_is_checked_even_with_a_live_session(
    chatbus: Chatbus, settings: Settings
) -> None:
    chatbus.login("alice")
    token = saved(settings).load("alice").token
    wrong = chatbus("login", "alice", CHATBUS_PASSWORD="not the password")
    assert one_line_error(wrong).startswith("Error: wrong password for 'alice'")
    wrong = chatbus("login", "alice", "--password-stdin", stdin="not the password\n")
    assert one_line_error(wrong).startswith("Error: wrong password for 'alice'")
    right = chatbus.ok("login", "alice", "--password-stdin", stdin=f"{PASSWORD}\n")
    assert right.stdout.startswith("Logged in as alice.\n")
    assert saved(settings).load("alice").token == token  # the live session is kept


def test_login_help_says_when_a_password_is_asked_for(chatbus: Chatbus) -> None:
    text = " ".join(chatbus.ok("login", "--help").stdout.split())
    for promise in (
        "While the hub accepts the session saved here, logging in again asks for no password",
        "a password given with --password-stdin or CHATBUS_PASSWORD is checked all the same",
    ):
        assert promise in text
