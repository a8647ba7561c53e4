"""The ``chatbus`` command, end to end against a real test hub.

Most tests run the commands in-process with click's CliRunner (which is not a
terminal); what needs a real process (a live chat, Ctrl-C, the server) or a
real terminal (password prompts, the lobby, colour) runs the installed
console script with pipes or a pty.
"""

import dataclasses
import io
import json
import re
import signal
import socketserver
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pexpect
import pytest
from cli_helpers import (
    CLOCK,
    PASSWORD,
    Chatbus,
    Lines,
    chatbus_process,
    one_line_error,
    process_env,
)
from conftest import free_port
from helpers import CHATBUS, Recorder, wait_until

from chatbus import accounts
from chatbus.accounts import Session
from chatbus.config import Settings
from chatbus.hub import Hub
from chatbus.identity import IdentityStore
from chatbus.messages import Mailbox
from chatbus.presence import Lease, snapshot
from chatbus.receiver import Receiver
from chatbus.server import HubProcess

COMMANDS = (
    "server", "login", "chat", "users", "send", "history", "passwd", "logout", "whoami", "admin",
    "rooms", "join", "leave", "members", "invite",
)  # fmt: skip
NOT_LOGGED_IN = "Error: nobody is logged in here; run 'chatbus login NAME' first"
TOO_LONG = "x" * 4097  # the default limit is 4096 bytes


@pytest.fixture
def chatbus(settings: Settings) -> Chatbus:
    return Chatbus(settings)


@pytest.fixture
def dead_url() -> str:
    """A hub URL with nothing listening."""
    return f"redis://127.0.0.1:{free_port()}/0"


@pytest.fixture
def restore_signals() -> Iterator[None]:
    """``chatbus server`` installs SIGTERM/SIGHUP handlers; keep pytest's own."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def online(hub: Hub) -> list[str]:
    return snapshot(hub)[1]


def bodies(hub: Hub, owner: str, peer: str, limit: int = 100) -> list[str]:
    """What ``owner`` has in the conversation with ``peer``, oldest first."""
    return [m.envelope.body for m in Mailbox(hub, owner).conversation(peer, limit).messages]


def history_json(chatbus: Chatbus, *args: str) -> Any:
    return json.loads(chatbus.ok("history", *args, "--json").stdout)


def history_bodies(chatbus: Chatbus, *args: str) -> list[str]:
    return [m["body"] for m in history_json(chatbus, *args)["messages"]]


def users_json(chatbus: Chatbus, *args: str) -> Any:
    return json.loads(chatbus.ok("users", "--json", *args).stdout)


# -- help and completion ----------------------------------------------------


def test_help_lists_every_command(chatbus: Chatbus) -> None:
    result = chatbus.ok("--help")
    assert result.output.startswith("Usage: chatbus [OPTIONS] COMMAND [ARGS]...")
    listed = re.findall(r"^  (\w+)  ", result.output.split("Commands:")[1], flags=re.M)
    assert sorted(listed) == sorted(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_every_command_has_help(chatbus: Chatbus, command: str, flag: str) -> None:
    result = chatbus.ok(command, flag)
    assert result.output.startswith(f"Usage: chatbus {command} [OPTIONS]")
    assert "Options:" in result.output
    if command == "admin":  # it reaches the hub with its own URL
        assert "--admin-url" in result.output
    elif command != "server":
        assert "--url" in result.output
    if command != "server":
        assert "--namespace" in result.output


@pytest.mark.parametrize(
    ("words", "cword", "offered"),
    [
        ("chatbus lo", "1", {"login", "logout"}),
        ("chatbus h", "1", {"history"}),
        ("chatbus history --l", "2", {"--limit"}),
        ("chatbus server --engine ", "3", {"auto", "valkey", "redis"}),
    ],
)
def test_shell_completion_offers_commands_and_options(
    chatbus: Chatbus, words: str, cword: str, offered: set[str]
) -> None:
    result = chatbus.ok(_CHATBUS_COMPLETE="bash_complete", COMP_WORDS=words, COMP_CWORD=cword)
    assert {line.split(",", 1)[1] for line in result.stdout.splitlines()} == offered


def test_shell_completion_offers_online_names_and_unread_senders(
    chatbus: Chatbus, hub: Hub
) -> None:
    chatbus.login("carla")
    chatbus.login("bob")
    chatbus.ok("send", "carla", "hi", "--as", "bob")
    chatbus.login("carol")
    chatbus.ok("send", "carol", "hello", "--as", "carla")
    lease = Lease(hub, "bob")
    lease.renew()  # bob online
    result = chatbus.ok(
        _CHATBUS_COMPLETE="bash_complete", COMP_WORDS="chatbus chat ", COMP_CWORD="2"
    )
    # carol has an unread message from carla and sees bob online.
    assert {line.split(",", 1)[1] for line in result.stdout.splitlines()} == {"bob", "carla"}
    result = chatbus.ok(
        _CHATBUS_COMPLETE="bash_complete", COMP_WORDS="chatbus send CA", COMP_CWORD="2"
    )
    assert {line.split(",", 1)[1] for line in result.stdout.splitlines()} == {"carla"}
    lease.release()


def test_shell_completion_works_with_the_installed_command(settings: Settings) -> None:
    env = process_env(
        settings, _CHATBUS_COMPLETE="bash_complete", COMP_WORDS="chatbus lo", COMP_CWORD="1"
    )
    done = subprocess.run(
        [CHATBUS],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["plain,login", "plain,logout"]
    script = subprocess.run(
        [CHATBUS],
        env=process_env(settings, _CHATBUS_COMPLETE="bash_source"),
        capture_output=True,
        check=False,
        text=True,
        timeout=30,
    )
    assert "complete -o nosort -F _chatbus_completion chatbus" in script.stdout


# -- login ------------------------------------------------------------------


def test_first_login_registers_saves_the_session_and_lists_who_is_online(
    chatbus: Chatbus, settings: Settings, hub: Hub
) -> None:
    result = chatbus.login("alice")
    assert result.stdout.splitlines() == ["Registered alice and logged in.", "Online now: nobody"]
    saved = IdentityStore(settings.home, settings.url, settings.namespace).directory / "alice.json"
    assert saved.is_file()
    assert json.loads(saved.read_text())["name"] == "alice"
    # The saved session is what later commands use, with no password.
    assert chatbus.ok("whoami").stdout == (
        f"alice on {settings.url} (namespace {settings.namespace})\n"
    )

    bob = Receiver(hub, "bob", Recorder(), after_id="0-0")
    bob.start()
    try:
        assert bob.wait_connected(10)
        again = chatbus("login", "ALICE", CHATBUS_PASSWORD=PASSWORD, color=True)
        assert again.exit_code == 0, again.output
        assert again.stdout.splitlines() == ["Logged in as alice.", "Online now: bob"]
        assert "\x1b" not in again.output
    finally:
        bob.stop()


def test_login_reads_the_password_from_stdin(chatbus: Chatbus) -> None:
    result = chatbus.ok("login", "alice", "--password-stdin", stdin=f"{PASSWORD}\n")
    assert "Registered alice and logged in." in result.stdout
    assert chatbus.ok(
        "login", "alice", "--password-stdin", stdin=f"{PASSWORD}\n"
    ).stdout.startswith("Logged in as alice.")
    wrong = chatbus("login", "alice", "--password-stdin", stdin="not the password\n")
    assert one_line_error(wrong).startswith("Error: wrong password for 'alice'")


def test_login_with_password_stdin_but_no_input_is_an_error(chatbus: Chatbus) -> None:
    result = chatbus("login", "alice", "--password-stdin", stdin="")
    assert one_line_error(result) == (
        "Error: --password-stdin was given but standard input had no password"
    )


def test_login_without_a_terminal_or_password_is_an_error(chatbus: Chatbus) -> None:
    result = chatbus("login", "alice")
    assert one_line_error(result) == (
        "Error: no password: type it on a terminal, or pass CHATBUS_PASSWORD or --password-stdin"
    )
    # Nothing was registered: the name is still free to take.
    assert chatbus.login("alice").stdout.startswith("Registered alice")


def test_wrong_password_is_refused_and_the_saved_login_stays(chatbus: Chatbus) -> None:
    chatbus.login("alice")
    result = chatbus("login", "Alice", CHATBUS_PASSWORD="not the password")
    assert one_line_error(result).startswith("Error: wrong password for 'alice'")
    assert chatbus.ok("whoami").stdout.startswith("alice on ")


def test_a_short_password_is_refused_and_registers_nothing(chatbus: Chatbus) -> None:
    result = chatbus("login", "alice", CHATBUS_PASSWORD="short")
    assert one_line_error(result) == "Error: the password must be at least 8 characters long"
    assert one_line_error(chatbus("whoami")) == NOT_LOGGED_IN
    assert chatbus.login("alice").stdout.startswith("Registered alice")


def test_a_name_taken_while_registering_is_an_error(
    chatbus: Chatbus, hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    accounts.register(hub, "alice", "someone else's password")
    # Someone registers the name between our look-up and our registration.
    monkeypatch.setattr(accounts, "registered_name", lambda hub, name: None)
    result = chatbus("login", "alice", CHATBUS_PASSWORD=PASSWORD)
    assert one_line_error(result) == (
        "Error: the name 'alice' was registered a moment ago; log in with its password"
    )


def _pty_env(settings: Settings, **extra: str) -> dict[str, str]:
    return process_env(
        settings, TERM="xterm-256color", PROMPT_TOOLKIT_NO_CPR="1", CHATBUS_PLAIN="1", **extra
    )


def test_login_on_a_terminal_asks_twice_hides_the_password_then_ctrl_c_leaves_the_lobby(
    settings: Settings, hub: Hub
) -> None:
    child = pexpect.spawn(
        CHATBUS,
        ["login", "carol"],
        env=_pty_env(settings),
        encoding="utf-8",
        timeout=15,
        dimensions=(24, 100),
    )
    child.logfile_read = transcript = io.StringIO()
    try:
        child.expect_exact("carol is a new name: choose a password (8+ characters).")
        child.expect_exact("Password: ")
        child.sendline(PASSWORD)
        child.expect_exact("Repeat the password: ")
        child.sendline(PASSWORD)
        child.expect_exact("Registered carol and logged in.")
        child.expect_exact("nobody else is online, carol")
        wait_until(lambda: "carol" in online(hub), 10, "carol online while in the lobby")
        child.sendcontrol("c")
        child.expect(pexpect.EOF)
        rest = child.before
    finally:
        child.close(force=True)
    assert PASSWORD not in transcript.getvalue()  # hidden as it was typed, both times
    assert child.exitstatus == 0
    assert "Traceback" not in rest
    # Presence is released at once, not when the lease runs out.
    assert "carol" not in online(hub)
    assert accounts.registered_name(hub, "carol") == "carol"


def test_login_on_a_terminal_asks_once_for_a_known_name(settings: Settings, hub: Hub) -> None:
    accounts.register(hub, "alice", PASSWORD)
    status, output = _type_a_wrong_password(settings, ["login", "alice"], "Password: ")
    assert "Repeat" not in output
    assert "new name" not in output
    [line] = output.strip().splitlines()
    assert line.startswith("Error: wrong password for 'alice'")
    assert status == 1


def _type_a_wrong_password(settings: Settings, args: list[str], prompt: str) -> tuple[int, str]:
    """Run ``chatbus ARGS`` on a terminal, answer ``prompt`` wrongly: (exit status, output)."""
    child = pexpect.spawn(CHATBUS, args, env=_pty_env(settings), encoding="utf-8", timeout=15)
    try:
        child.expect_exact(prompt)
        child.sendline("not the password")
        child.expect(pexpect.EOF)
        output: str = child.before
    finally:
        child.close(force=True)
    return child.exitstatus, output


# -- whoami, logout, --as -----------------------------------------------------


def test_logout_ends_the_session_on_the_hub_and_here(chatbus: Chatbus, settings: Settings) -> None:
    chatbus.login("alice")
    saved = IdentityStore(settings.home, settings.url, settings.namespace).directory
    copy = {path.name: path.read_text() for path in saved.iterdir()}

    assert chatbus.ok("logout").stdout == "Logged out alice.\n"
    assert one_line_error(chatbus("whoami")) == NOT_LOGGED_IN
    assert one_line_error(chatbus("logout")) == NOT_LOGGED_IN

    # A copy of the session taken before logging out is no use any more.
    for name, text in copy.items():
        (saved / name).write_text(text)
    assert one_line_error(chatbus("whoami")) == (
        "Error: the hub no longer accepts the session of 'alice'; "
        "log in again with 'chatbus login alice'"
    )


def test_as_picks_among_users_logged_in_from_one_home(chatbus: Chatbus) -> None:
    chatbus.login("alice")
    chatbus.login("bob")
    assert chatbus.ok("whoami").stdout.startswith("bob on ")  # the last login
    assert chatbus.ok("whoami", "--as", "alice").stdout.startswith("alice on ")
    assert chatbus.ok("whoami", "--as", "ALICE").stdout.startswith("alice on ")
    assert chatbus.ok("whoami", CHATBUS_USER="alice").stdout.startswith("alice on ")
    assert chatbus.ok("whoami", "--as", "bob", CHATBUS_USER="alice").stdout.startswith("bob on ")

    chatbus.ok("send", "bob", "from", "alice", "--as", "alice")
    chatbus.ok("send", "alice", "from bob")
    assert history_bodies(chatbus, "alice") == ["from alice", "from bob"]
    received = history_json(chatbus, "bob", "--as", "alice")["messages"]
    assert [(m["from"], m["to"], m["body"]) for m in received] == [
        ("alice", "bob", "from alice"),
        ("bob", "alice", "from bob"),
    ]

    assert one_line_error(chatbus("whoami", "--as", "carol")) == (
        "Error: 'carol' is not logged in here; run 'chatbus login carol'"
    )
    bad_as = chatbus("whoami", "--as", "no way")  # a usage error: tests/test_cli_usage.py
    assert bad_as.exit_code == 2, bad_as.output
    assert bad_as.stderr.splitlines()[-1].startswith(
        "Error: Invalid value for '--as': invalid name 'no way'"
    )

    assert chatbus.ok("logout", "--as", "alice").stdout == "Logged out alice.\n"
    assert chatbus.ok("whoami").stdout.startswith("bob on ")
    assert one_line_error(chatbus("whoami", "--as", "alice")) == (
        "Error: 'alice' is not logged in here; run 'chatbus login alice'"
    )


# -- passwd -------------------------------------------------------------------

NEW_PASSWORD = "a brand new secret"


def test_passwd_changes_the_password_and_logs_out_the_other_sessions(
    chatbus: Chatbus, settings: Settings, tmp_path: Path
) -> None:
    laptop = chatbus
    phone = Chatbus(dataclasses.replace(settings, home=tmp_path / "phone"))
    laptop.login("alice")
    phone.login("alice")
    changed = laptop.ok("passwd", CHATBUS_PASSWORD=PASSWORD, CHATBUS_NEW_PASSWORD=NEW_PASSWORD)
    assert changed.stdout == "Changed the password of alice; logged out 1 other session.\n"
    assert laptop.ok("whoami").stdout.startswith("alice on ")
    ended = (
        "the hub no longer accepts the session of 'alice'; log in again with 'chatbus login alice'"
    )
    assert one_line_error(phone("whoami")) == f"Error: {ended}"
    # Listing who is online still works, and says why there are no unread counts.
    listing = phone.ok("users")
    assert listing.stderr == f"Note: {ended}\n"
    assert listing.stdout.startswith("Nobody is online.")
    assert one_line_error(phone("login", "alice", CHATBUS_PASSWORD=PASSWORD)).startswith(
        "Error: wrong password for 'alice'"
    )
    phone.login("alice", NEW_PASSWORD)
    # Scripts give both passwords on stdin, the current one first.
    again = laptop.ok("passwd", "--password-stdin", stdin=f"{NEW_PASSWORD}\n{PASSWORD}\n")
    assert again.stdout == "Changed the password of alice; logged out 1 other session.\n"
    laptop.login("alice")


@pytest.mark.parametrize(
    ("env", "stdin", "error"),
    [
        (
            {"CHATBUS_PASSWORD": "not the password", "CHATBUS_NEW_PASSWORD": NEW_PASSWORD},
            None,
            "Error: wrong password for 'alice'",
        ),
        (
            {"CHATBUS_PASSWORD": PASSWORD, "CHATBUS_NEW_PASSWORD": "short"},
            None,
            "Error: the password must be at least 8 characters long",
        ),
        (
            {},
            "",
            "Error: no current password: type it on a terminal, "
            "or pass CHATBUS_PASSWORD or --password-stdin",
        ),
        (
            {"CHATBUS_PASSWORD": PASSWORD},
            "",
            "Error: no new password: type it on a terminal, "
            "or pass CHATBUS_NEW_PASSWORD or --password-stdin",
        ),
    ],
    ids=["wrong-current", "weak-new", "no-current", "no-new"],
)
def test_passwd_refusals_are_one_line_and_change_nothing(
    chatbus: Chatbus, hub: Hub, env: dict[str, str], stdin: str | None, error: str
) -> None:
    chatbus.login("alice")
    before = hub.redis.hgetall(hub.keys.account("alice"))
    assert one_line_error(chatbus("passwd", stdin=stdin, **env)) == error
    assert hub.redis.hgetall(hub.keys.account("alice")) == before
    chatbus.ok("whoami")


def test_passwd_on_a_terminal_checks_the_current_password_first(
    chatbus: Chatbus, settings: Settings
) -> None:
    chatbus.login("alice")
    status, output = _type_a_wrong_password(settings, ["passwd"], "Current password: ")
    assert status == 1
    assert "New password" not in output
    assert output.strip().splitlines() == ["Error: wrong password for 'alice'"]


def test_logging_in_again_here_keeps_the_session_while_the_hub_accepts_it(
    chatbus: Chatbus, settings: Settings, hub: Hub
) -> None:
    store = IdentityStore(settings.home, settings.url, settings.namespace)
    chatbus.login("alice")
    first = store.load("alice")
    chatbus.login("alice")  # a second window, say: the first goes on
    assert store.load("alice") == first
    assert len(hub.redis.hgetall(hub.keys.sessions("alice"))) == 1
    accounts.logout(hub, first)  # ended elsewhere: the next login makes a new one
    chatbus.login("alice")
    assert store.load("alice") != first
    accounts.verify(hub, store.load("alice"))
    assert one_line_error(chatbus("login", "alice", CHATBUS_PASSWORD="not it")).startswith(
        "Error: wrong password for 'alice'"
    )


def test_passwd_with_password_stdin_needs_both_lines(chatbus: Chatbus) -> None:
    chatbus.login("alice")
    assert one_line_error(chatbus("passwd", "--password-stdin", stdin=f"{PASSWORD}\n")) == (
        "Error: --password-stdin was given but standard input had no new password"
    )


def test_passwd_on_a_terminal_hides_both_and_asks_for_the_new_one_twice(
    chatbus: Chatbus, settings: Settings, hub: Hub
) -> None:
    chatbus.login("alice")
    child = pexpect.spawn(CHATBUS, ["passwd"], env=_pty_env(settings), encoding="utf-8", timeout=15)
    child.logfile_read = transcript = io.StringIO()
    try:
        child.expect_exact("Current password: ")
        child.sendline(PASSWORD)
        child.expect_exact("The new password: 8+ characters.")
        child.expect_exact("New password: ")
        child.sendline("short")  # asked again at once, not after the repeat
        child.expect_exact("Error: the password must be at least 8 characters long")
        child.expect_exact("New password: ")
        child.sendline(NEW_PASSWORD)
        child.expect_exact("Repeat the new password: ")
        child.sendline(NEW_PASSWORD)
        child.expect_exact("Changed the password of alice; no other sessions were logged in.")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert PASSWORD not in transcript.getvalue()
    assert NEW_PASSWORD not in transcript.getvalue()
    assert accounts.login(hub, "alice", NEW_PASSWORD).name == "alice"


@pytest.mark.parametrize(
    "args",
    [
        ["whoami"],
        ["logout"],
        ["send", "bob", "hi"],
        ["history", "bob"],
        ["chat", "bob"],
        ["passwd"],
    ],
    ids=lambda args: args[0],
)
def test_commands_that_need_a_login_say_so(chatbus: Chatbus, args: list[str]) -> None:
    assert one_line_error(chatbus(*args, stdin="hi\n")) == NOT_LOGGED_IN


# -- settings: --url and --namespace ------------------------------------------


def test_url_before_the_command_works_and_one_after_it_wins(
    chatbus: Chatbus, settings: Settings, dead_url: str
) -> None:
    chatbus.login("alice")
    real = settings.url
    # Before the command: it beats the environment...
    before = chatbus("--url", real, "users", "--json", CHATBUS_URL=dead_url)
    assert before.exit_code == 0, before.output
    assert json.loads(before.stdout)["you"] == "alice"
    unreachable = chatbus("--url", dead_url, "users")
    assert one_line_error(unreachable).startswith(f"Error: cannot reach the hub at {dead_url} ")
    # ...and after it, it wins over the one before.
    after = chatbus.ok("--url", dead_url, "whoami", "--url", real)
    assert after.stdout.startswith(f"alice on {real} ")
    assert one_line_error(chatbus("--url", real, "users", "--url", dead_url)).startswith(
        f"Error: cannot reach the hub at {dead_url} "
    )


def test_logins_to_two_hubs_from_one_home_are_kept_apart(
    chatbus: Chatbus, settings: Settings
) -> None:
    other_db = settings.url.rsplit("/", 1)[0] + "/3"  # another hub, as far as chatbus knows
    chatbus.login("alice")
    chatbus.ok("login", "bob", CHATBUS_URL=other_db, CHATBUS_PASSWORD=PASSWORD)
    assert chatbus.ok("whoami").stdout.startswith(f"alice on {settings.url} ")
    assert chatbus.ok("whoami", CHATBUS_URL=other_db).stdout.startswith(f"bob on {other_db} ")
    assert one_line_error(chatbus("whoami", "--as", "alice", CHATBUS_URL=other_db)) == (
        "Error: 'alice' is not logged in here; run 'chatbus login alice'"
    )


def test_namespace_before_the_command_works_and_one_after_it_wins(
    chatbus: Chatbus, settings: Settings
) -> None:
    chatbus.login("alice")
    ns = settings.namespace
    result = chatbus.ok("--namespace", ns, "whoami", CHATBUS_NAMESPACE="elsewhere")
    assert result.stdout.endswith(f"(namespace {ns})\n")
    result = chatbus.ok("--namespace", "elsewhere", "whoami", "--namespace", ns)
    assert result.stdout.endswith(f"(namespace {ns})\n")
    # Nobody is logged in to the other namespace.
    assert one_line_error(chatbus("--namespace", "elsewhere", "whoami")) == NOT_LOGGED_IN


@pytest.mark.parametrize(
    "args",
    [
        ["users"],
        ["login", "alice"],
        ["whoami"],
        ["send", "bob", "hi"],
        ["history", "bob"],
        ["chat", "bob"],
        ["logout"],
    ],
    ids=lambda args: args[0],
)
def test_an_unreachable_hub_is_one_line(
    chatbus: Chatbus, settings: Settings, dead_url: str, args: list[str]
) -> None:
    # A session saved earlier, so each command gets as far as the hub.
    IdentityStore(settings.home, dead_url, settings.namespace).save(Session("alice", "token"))
    result = chatbus(*args, stdin="hi\n", CHATBUS_URL=dead_url, CHATBUS_PASSWORD=PASSWORD)
    assert result.stdout == ""
    line = one_line_error(result)
    assert line.startswith(f"Error: cannot reach the hub at {dead_url} (")
    assert "chatbus server" in line


def test_a_url_pointing_at_something_else_than_redis_says_so(chatbus: Chatbus) -> None:
    class WebServer(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.recv(1024)
            self.request.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n<html></html>")

    with socketserver.TCPServer(("127.0.0.1", 0), WebServer) as web:
        threading.Thread(target=web.serve_forever, daemon=True).start()
        url = f"redis://127.0.0.1:{web.server_address[1]}/0"
        line = one_line_error(chatbus("users", CHATBUS_URL=url))
        web.shutdown()
    assert line.startswith(
        f"Error: cannot reach the hub at {url} (what answers there is not a Redis server; "
        "is it the right port?)"
    )


# -- users ------------------------------------------------------------------


def test_users_without_a_login_lists_who_is_online(chatbus: Chatbus, hub: Hub) -> None:
    assert users_json(chatbus) == {"online": [], "you": None, "unread": None, "rooms": None}
    assert chatbus.ok("users").stdout == "Nobody is online.\n"
    bob = Receiver(hub, "bob", Recorder(), after_id="0-0")
    bob.start()
    try:
        assert bob.wait_connected(10)
        assert users_json(chatbus) == {
            "online": ["bob"],
            "you": None,
            "unread": None,
            "rooms": None,
        }
        assert chatbus.ok("users").stdout == "Online (1):\n  bob\n"
    finally:
        bob.stop()
    assert users_json(chatbus)["online"] == []


def test_users_marks_you_and_has_no_colour_without_a_terminal(chatbus: Chatbus, hub: Hub) -> None:
    chatbus.login("bob")
    chatbus.login("alice")
    chatbus.ok("send", "bob", "psst")
    bob = Receiver(hub, "bob", Recorder(), after_id="0-0")
    bob.start()
    try:
        assert bob.wait_connected(10)
        as_bob = chatbus("users", "--as", "bob", color=True)
        assert as_bob.exit_code == 0, as_bob.output
        assert as_bob.stdout == (
            "Online (1):\n  bob (you)\nUnread: alice 1  (read them with: chatbus chat alice)\n"
        )
        as_alice = chatbus("users", color=True)
        assert as_alice.stdout == "Online (1):\n  bob\nNo unread messages.\n"
        assert "\x1b" not in as_bob.output + as_alice.output
    finally:
        bob.stop()


def test_users_counts_unread_and_mentions_in_rooms_too(chatbus: Chatbus) -> None:
    for name in ("alice", "bob"):
        chatbus.login(name)
        chatbus.ok("join", "+ops")
    chatbus.ok("send", "+ops", "hi @bob", "--as", "alice")
    chatbus.ok("send", "+ops", "and all", "--as", "alice")
    assert users_json(chatbus)["rooms"] == {"#ops": {"unread": 2, "mentions": 1}}
    assert chatbus.ok("users").stdout.splitlines()[-1] == (
        "Unread in rooms: #ops 2 (1 mentioning you)  (chatbus chat +ROOM)"
    )
    chatbus.ok("chat", "+ops", stdin="")  # read
    assert users_json(chatbus)["rooms"] == {}


def test_a_room_typed_without_its_hash_is_suggested_and_hints_say_how_to_join(
    chatbus: Chatbus,
) -> None:
    chatbus.login("alice")
    chatbus.ok("join", "+ops")
    chatbus.login("bob")
    # `chatbus chat #ops` unquoted: the shell drops "#ops"; `ops` is no one's name.
    assert one_line_error(chatbus("chat", "ops")) == (
        "Error: no account named 'ops'; names are registered by 'chatbus login'; "
        "or the room #ops? (type +ops)"
    )
    assert one_line_error(chatbus("send", "+ops", "hi")) == (
        "Error: you are not in #ops (chatbus join +ops)"
    )
    chatbus.ok("join", "+secret", "--private", "--as", "alice")
    assert one_line_error(chatbus("history", "+secret")) == (
        "Error: you are not in #secret, a private room: a member must invite you"
    )


def test_unread_counts_show_per_sender_and_clear_when_the_chat_is_read(chatbus: Chatbus) -> None:
    for name in ("alice", "carol", "bob"):
        chatbus.login(name)
    chatbus.ok("send", "bob", "one", "--as", "alice")
    chatbus.ok("send", "bob", "two", "--as", "alice")
    chatbus.ok("send", "bob", "three", "--as", "carol")

    assert users_json(chatbus) == {
        "online": [],
        "you": "bob",
        "unread": {"alice": 2, "carol": 1},
        "rooms": {},
    }
    assert chatbus.ok("users").stdout.splitlines()[-1] == (
        "Unread: alice 2, carol 1  (read them with: chatbus chat NAME)"
    )

    # Reading the history does not count as reading the chat...
    assert chatbus.ok("history", "alice").stdout.count("alice:") == 2
    assert users_json(chatbus)["unread"] == {"alice": 2, "carol": 1}

    # ...opening the chat does: the non-terminal chat shows the history.
    shown = chatbus("chat", "alice", stdin="", color=True)
    assert shown.exit_code == 0, shown.output
    assert "\x1b" not in shown.output
    lines = shown.stdout.splitlines()
    assert len(lines) == 2
    assert re.fullmatch(f"{CLOCK} alice: one", lines[0])
    assert re.fullmatch(f"{CLOCK} alice: two", lines[1])
    assert users_json(chatbus)["unread"] == {"carol": 1}
    assert chatbus.ok("users").stdout.splitlines()[-1] == (
        "Unread: carol 1  (read them with: chatbus chat carol)"
    )

    chatbus.ok("chat", "carol", stdin="")
    assert users_json(chatbus)["unread"] == {}
    assert chatbus.ok("users").stdout.splitlines()[-1] == "No unread messages."


# -- send -------------------------------------------------------------------


def test_send_joins_its_words_into_one_message(chatbus: Chatbus) -> None:
    chatbus.login("bob")
    chatbus.login("alice")
    chatbus.ok("send", "BOB", "hello,", "bob  --", "how", "are you?")
    assert history_bodies(chatbus, "alice", "--as", "bob") == ["hello, bob  -- how are you?"]
    assert users_json(chatbus, "--as", "bob")["unread"] == {"alice": 1}


def test_send_from_stdin_delivers_a_thousand_lines_in_order(chatbus: Chatbus) -> None:
    chatbus.login("bob")
    chatbus.login("alice")
    lines = [f"line {n:04d} ünïcödé" for n in range(1000)]
    result = chatbus("send", "bob", stdin="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    assert history_bodies(chatbus, "alice", "--as", "bob", "--limit", "1000") == lines
    assert users_json(chatbus, "--as", "bob")["unread"] == {"alice": 1000}


def test_send_sends_each_line_as_it_comes_and_ctrl_c_stops_it_cleanly(
    chatbus: Chatbus, settings: Settings, hub: Hub
) -> None:
    chatbus.login("bob")
    chatbus.login("alice")
    with chatbus_process(["send", "bob"], process_env(settings)) as process:
        assert process.stdin is not None
        assert process.stderr is not None
        # A slow producer (tail -f, say): each line goes out without waiting for more.
        process.stdin.write("first\n")
        process.stdin.flush()
        wait_until(lambda: bodies(hub, "bob", "alice") == ["first"], 10, "'first' sent")
        process.stdin.write("second\n")
        process.stdin.flush()
        wait_until(lambda: bodies(hub, "bob", "alice") == ["first", "second"], 10, "'second'")
        process.send_signal(signal.SIGINT)
        process.wait(timeout=15)
        errors = process.stderr.read()
    assert "Traceback" not in errors
    assert len(errors.strip().splitlines()) <= 1, errors


def test_send_from_stdin_skips_blank_lines_and_needs_no_final_newline(chatbus: Chatbus) -> None:
    chatbus.login("bob")
    chatbus.login("alice")
    chatbus.ok("send", "bob", stdin="first\r\n\n   \nsecond\nlast without newline")
    assert history_bodies(chatbus, "bob") == ["first", "second", "last without newline"]


@pytest.mark.parametrize("good", [3, 150], ids=["same-batch", "later-batch"])
def test_a_too_long_line_on_stdin_names_it_and_the_lines_before_it_are_sent(
    chatbus: Chatbus, good: int
) -> None:
    chatbus.login("bob")
    chatbus.login("alice")
    before = [f"ok {n}" for n in range(1, good + 1)]
    stdin = "\n".join([*before, TOO_LONG, "never sent"]) + "\n"
    result = chatbus("send", "bob", stdin=stdin)
    assert one_line_error(result) == (
        f"Error: message {good + 1}: message too long: 4097 bytes, the limit is 4096 "
        f"({good} sent before it)"
    )
    assert history_bodies(chatbus, "bob", "--limit", "1000") == before


def test_send_splits_a_too_long_text_and_refuses_an_empty_one(chatbus: Chatbus) -> None:
    chatbus.login("bob")
    chatbus.login("alice")
    assert one_line_error(chatbus("send", "bob", "   ")) == (
        "Error: empty message: type some text to send"
    )
    assert history_bodies(chatbus, "bob") == []
    # TEXT over the limit goes as two messages; a stdin line stays one message.
    chatbus.ok("send", "bob", TOO_LONG)
    assert history_bodies(chatbus, "bob") == [TOO_LONG[:4096], TOO_LONG[4096:]]
    assert one_line_error(chatbus("send", "bob", stdin=TOO_LONG + "\n")) == (
        "Error: message 1: message too long: 4097 bytes, the limit is 4096 (0 sent before it)"
    )
    chatbus.ok("send", "bob", "clear")
    # chat skips a line it cannot send, says which, goes on, and exits 1.
    chat = chatbus("chat", "bob", stdin=TOO_LONG + "\nstill here\n")
    assert one_line_error(chat) == (
        "Error: message 1 not sent: message too long: 4097 bytes, the limit is 4096"
    )
    assert history_bodies(chatbus, "bob")[-1] == "still here"


def test_send_refuses_text_that_is_not_utf8(chatbus: Chatbus) -> None:
    chatbus.login("bob")
    chatbus.login("alice")
    result = chatbus("send", "bob", stdin=b"caf\xe9\n")
    assert one_line_error(result) == "Error: standard input is not UTF-8 text"


@pytest.mark.parametrize(
    "args",
    [["chat", "nobody"], ["send", "nobody", "hi"], ["history", "nobody"]],
    ids=lambda args: args[0],
)
def test_a_name_that_does_not_exist_is_a_clear_error(chatbus: Chatbus, args: list[str]) -> None:
    chatbus.login("alice")
    assert one_line_error(chatbus(*args, stdin="hi\n")) == (
        "Error: no account named 'nobody'; names are registered by 'chatbus login'"
    )


# -- history ----------------------------------------------------------------


def test_history_pages_back_with_the_cursor_it_prints(chatbus: Chatbus) -> None:
    chatbus.login("bob")
    chatbus.login("alice")
    chatbus.ok("send", "bob", stdin="m1\nm2\nm3\nm4\nm5\n")
    chatbus.ok("send", "alice", "reply", "--as", "bob")

    assert history_bodies(chatbus, "bob") == ["m1", "m2", "m3", "m4", "m5", "reply"]
    first = history_json(chatbus, "bob", "--limit", "2")
    messages = first["messages"]
    assert [(m["from"], m["to"], m["body"]) for m in messages] == [
        ("alice", "bob", "m5"),
        ("bob", "alice", "reply"),
    ]
    assert first["older"] == messages[0]["stream_id"]
    second = history_json(chatbus, "bob", "--limit", "2", "--before", first["older"])
    assert [m["body"] for m in second["messages"]] == ["m3", "m4"]
    third = history_json(chatbus, "bob", "--limit", "2", "--before", second["older"])
    assert [m["body"] for m in third["messages"]] == ["m1", "m2"]

    # The plain form prints the lines and, on stderr, how to see older ones.
    text = chatbus("history", "bob", "--limit", "2", color=True)
    assert text.exit_code == 0, text.output
    assert "\x1b" not in text.output
    lines = text.stdout.splitlines()
    assert re.fullmatch(f"{CLOCK} alice: m5", lines[0])
    assert re.fullmatch(f"{CLOCK} bob: reply", lines[1])
    assert len(lines) == 2
    hint = re.fullmatch(r"\(older: chatbus (history bob --limit 2 --before \S+)\)\n", text.stderr)
    assert hint is not None, text.stderr
    # Following the hint as printed gives the next page of the same size.
    older = chatbus.ok(*hint[1].split())
    assert [line.split(": ", 1)[1] for line in older.stdout.splitlines()] == ["m3", "m4"]
    # Past the oldest message, and before the smallest id there is, nothing older.
    for cursor in (third["messages"][0]["stream_id"], "0-0"):
        oldest = chatbus.ok("history", "bob", "--before", cursor)
        assert (oldest.stdout, oldest.stderr) == ("", "No older messages with bob.\n")


def test_history_of_an_empty_conversation_says_so(chatbus: Chatbus) -> None:
    chatbus.login("bob")
    chatbus.login("alice")
    result = chatbus.ok("history", "bob")
    assert result.stdout == ""
    assert result.stderr == "No messages with bob yet.\n"
    assert history_json(chatbus, "bob") == {"messages": [], "older": None}


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--before", "yesterday"], "Invalid value for --before"),
        (["--before", "123"], "Invalid value for --before"),
        (["--before", f"{2**64}-0"], "Invalid value for --before"),
        (["--before", "\udcff-1"], "Invalid value for --before"),  # a non-UTF-8 byte
        (["--limit", "0"], "Invalid value for '--limit'"),
        (["--limit", "many"], "Invalid value for '--limit'"),
    ],
)
def test_history_usage_errors_exit_2(chatbus: Chatbus, args: list[str], complaint: str) -> None:
    chatbus.login("bob")
    chatbus.login("alice")
    result = chatbus("history", "bob", *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stderr.splitlines()[-1].startswith(f"Error: {complaint}")


def test_usage_errors_exit_2(chatbus: Chatbus) -> None:
    for args in (["send"], ["chat"], ["login"], ["frobnicate"], ["users", "--bogus"]):
        result = chatbus(*args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.splitlines()[-1].startswith("Error: "), (args, result.output)


# -- chat without a terminal ------------------------------------------------


def test_chat_sends_each_stdin_line_to_an_offline_user_and_the_messages_wait(
    chatbus: Chatbus, hub: Hub
) -> None:
    chatbus.login("bob")
    chatbus.login("alice")
    assert "bob" not in online(hub)
    result = chatbus("chat", "bob", stdin="hi\nthere\n")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert bodies(hub, "bob", "alice") == ["hi", "there"]
    # When bob comes to read them, they are there, in order.
    shown = chatbus.ok("chat", "alice", "--as", "bob", stdin="").stdout.splitlines()
    assert [line.split(" alice: ", 1)[1] for line in shown] == ["hi", "there"]
    assert all(re.fullmatch(f"{CLOCK} alice: .*", line) for line in shown)
    # The chat took alice online only while it ran.
    assert "alice" not in online(hub)


def test_chat_history_option_limits_the_earlier_messages_shown_but_not_the_unread(
    chatbus: Chatbus,
) -> None:
    chatbus.login("bob")
    chatbus.login("alice")
    chatbus.ok("send", "alice", stdin="a\nb\nc\n", CHATBUS_USER="bob")
    # Unread messages show however few earlier ones were asked for...
    shown = chatbus.ok("chat", "bob", "--history", "0", stdin="").stdout.splitlines()
    assert [line.split(" bob: ", 1)[1] for line in shown] == ["a", "b", "c"]
    # ...and once read, --history is what counts.
    shown = chatbus.ok("chat", "bob", "--history", "2", stdin="").stdout.splitlines()
    assert [line.split(" bob: ", 1)[1] for line in shown] == ["b", "c"]
    assert chatbus.ok("chat", "bob", "--history", "0", stdin="").stdout == ""


def test_chat_prints_incoming_messages_live_one_per_line(
    chatbus: Chatbus, settings: Settings, hub: Hub
) -> None:
    chatbus.login("bob")
    chatbus.login("alice")
    env = process_env(settings)
    with chatbus_process(["chat", "bob"], env) as process:
        assert process.stdin is not None
        assert process.stdout is not None
        assert process.stderr is not None
        out = Lines(process.stdout)
        wait_until(lambda: "alice" in online(hub), 15, "alice online in the chat")
        chatbus.ok("send", "alice", "hello alice", "--as", "bob")
        out.expect(f"{CLOCK} bob: hello alice")
        chatbus.ok("send", "alice", stdin="second\nthird\n", CHATBUS_USER="bob")
        out.expect(f"{CLOCK} bob: second")
        assert out.expect(f"{CLOCK} bob: .*")[0].endswith("bob: third")

        process.stdin.write("bye bob\n")
        process.stdin.flush()
        wait_until(lambda: "bye bob" in bodies(hub, "bob", "alice"), 10, "bob gets 'bye bob'")

        process.stdin.close()
        assert process.wait(timeout=15) == 0
        assert out.rest() == []
        errors = process.stderr.read()
    # Presence goes with the process, not when the lease runs out.
    assert "alice" not in online(hub)
    assert errors == ""
    assert all("\x1b" not in line for line in out.seen)
    # What alice saw live counts as read.
    assert users_json(chatbus, "--as", "alice")["unread"] == {}


ENDED = (
    "Error: the hub no longer accepts the session of 'alice'; "
    "log in again with 'chatbus login alice'\n"
)


@pytest.mark.parametrize(
    ("end", "outcome"),
    [
        (lambda process, chatbus: process.send_signal(signal.SIGINT), (0, "")),
        # The same session logged out from another shell: stdin stays open, so
        # only the session check can end this chat.
        (lambda process, chatbus: chatbus.ok("logout"), (1, ENDED)),
    ],
    ids=["ctrl-c", "logged-out-elsewhere"],
)
def test_a_piped_chat_ends_cleanly_and_releases_presence(
    chatbus: Chatbus,
    settings: Settings,
    hub: Hub,
    end: Callable[[subprocess.Popen[str], Chatbus], object],
    outcome: tuple[int, str],
) -> None:
    status, stderr = outcome
    chatbus.login("bob")
    chatbus.login("alice")
    with chatbus_process(["chat", "bob"], process_env(settings)) as process:
        assert process.stderr is not None
        wait_until(lambda: "alice" in online(hub), 15, "alice online in the chat")
        end(process, chatbus)
        assert process.wait(timeout=15) == status
        errors = process.stderr.read()
    assert errors == stderr
    assert "alice" not in online(hub)  # at once, not when the lease runs out


def test_interactive_chat_sends_what_is_typed_and_shows_what_arrives(
    chatbus: Chatbus, settings: Settings, hub: Hub
) -> None:
    chatbus.login("bob")
    chatbus.login("alice")
    child = pexpect.spawn(
        CHATBUS,
        ["chat", "bob"],
        env=_pty_env(settings, NO_COLOR="1"),
        encoding="utf-8",
        timeout=15,
        dimensions=(24, 100),
    )
    try:
        child.expect_exact("bob is offline; your messages will wait for them")
        child.sendline("hello bob")
        wait_until(lambda: "hello bob" in bodies(hub, "bob", "alice"), 10, "bob gets it")
        Mailbox(hub, "bob").send("alice", "hi alice")
        child.expect(f"{CLOCK} bob: hi alice")
        child.sendline("/quit")
        child.expect(pexpect.EOF)
        rest = child.before
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert "Traceback" not in rest
    assert "alice" not in online(hub)


# -- colour -----------------------------------------------------------------


def test_colour_on_a_terminal_unless_no_color_is_set(chatbus: Chatbus, settings: Settings) -> None:
    chatbus.login("bob")
    chatbus.login("alice")
    chatbus.ok("send", "bob", "hello")

    def history_on_a_terminal(**extra: str) -> str:
        output, status = pexpect.run(
            CHATBUS,
            args=["history", "bob"],
            env=_pty_env(settings, **extra),
            encoding="utf-8",
            withexitstatus=True,
            timeout=15,
        )
        assert status == 0, output
        assert re.search(r"alice\S*: hello", output), output
        return str(output)

    assert "\x1b[" in history_on_a_terminal()
    assert "\x1b" not in history_on_a_terminal(NO_COLOR="1")


# -- server -----------------------------------------------------------------


def test_server_refuses_a_port_in_use(
    chatbus: Chatbus, shared_hub: HubProcess, tmp_path: Path, restore_signals: None
) -> None:
    result = chatbus("server", "--port", str(shared_hub.port), "--data-dir", str(tmp_path / "data"))
    assert one_line_error(result) == (
        f"Error: port {shared_hub.port} on 127.0.0.1 is already in use "
        "(another Redis or chatbus hub?); choose another with --port"
    )
    assert not (tmp_path / "data").exists()


def test_server_without_redis_server_on_path_says_so(chatbus: Chatbus, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    result = chatbus("server", "--engine", "redis", "--port", str(free_port()), PATH=str(empty))
    line = one_line_error(result)
    assert line.startswith("Error: no redis-server on PATH: ")
    assert "--engine valkey" in line


@contextmanager
def running_server(
    settings: Settings, port: int, data: Path, started: list[tuple[int, int]]
) -> Iterator[tuple[subprocess.Popen[str], Lines, str]]:
    """``chatbus server`` in a process, up and announced: (process, its output, URL)."""
    args = ["server", "--port", str(port), "--data-dir", str(data)]
    with chatbus_process(args, process_env(settings), stdin=subprocess.DEVNULL) as process:
        assert process.stdout is not None
        out = Lines(process.stdout)
        server_pid = int(out.expect(r"chatbus hub: valkey .*, pid (\d+)", timeout=30)[1])
        started.append((server_pid, port))
        url = out.expect(r"Clients connect with: --url (\S+)")[1]
        out.expect(r"Press Ctrl-C to stop\.")
        yield process, out, url


def test_server_runs_a_hub_until_ctrl_c_and_keeps_its_data(
    chatbus: Chatbus, settings: Settings, tmp_path: Path, started_servers: list[tuple[int, int]]
) -> None:
    port = free_port()
    data = tmp_path / "hub-data"
    with running_server(settings, port, data, started_servers) as (process, out, url):
        assert url == f"redis://127.0.0.1:{port}/0"
        # Clients can use it.
        on_it = chatbus("login", "dora", CHATBUS_URL=url, CHATBUS_PASSWORD=PASSWORD)
        assert on_it.stdout.startswith("Registered dora"), on_it.output

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert out.rest() == ["Hub stopped; its data is saved for the next start."]
        assert process.stderr is not None
        assert "Traceback" not in process.stderr.read()
    # The hub went with it...
    assert one_line_error(chatbus("users", CHATBUS_URL=url)).startswith(
        f"Error: cannot reach the hub at {url} "
    )
    # ...and the next start has the account registered before.
    with running_server(settings, port, data, started_servers) as (process, _out, url):
        again = chatbus("login", "dora", CHATBUS_URL=url, CHATBUS_PASSWORD=PASSWORD)
        assert again.stdout.startswith("Logged in as dora."), again.output
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0


def test_a_second_server_on_the_same_data_dir_is_refused(
    chatbus: Chatbus, settings: Settings, tmp_path: Path, started_servers: list[tuple[int, int]]
) -> None:
    data = tmp_path / "hub-data"
    with running_server(settings, free_port(), data, started_servers) as (process, _out, url):
        # Another port, the same files: two servers would mix one append-only file.
        refused = chatbus("server", "--port", str(free_port()), "--data-dir", str(data))
        assert one_line_error(refused) == (
            f"Error: another hub is using {data}; stop it, or give this one its own --data-dir"
        )
        chatbus.ok("users", CHATBUS_URL=url)  # the first one runs on
        # The server itself holds the lock too: with chatbus killed, the
        # valkey-server it started still has the files, and still refuses.
        process.kill()
        process.wait()
        chatbus.ok("users", CHATBUS_URL=url)
        refused = chatbus("server", "--port", str(free_port()), "--data-dir", str(data))
        assert one_line_error(refused).startswith("Error: another hub is using")


def test_each_port_gets_its_own_default_data_dir(
    settings: Settings, tmp_path: Path, started_servers: list[tuple[int, int]]
) -> None:
    port = free_port()
    env = {**process_env(settings), "XDG_DATA_HOME": str(tmp_path / "xdg")}
    with chatbus_process(["server", "--port", str(port)], env, stdin=subprocess.DEVNULL) as process:
        assert process.stdout is not None
        out = Lines(process.stdout)
        started_servers.append(
            (int(out.expect(r"chatbus hub: .*, pid (\d+)", timeout=30)[1]), port)
        )
        data = out.expect(r"Data: (\S+)  .*")[1]
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    assert Path(data) == tmp_path / "xdg" / "chatbus" / f"hub-{port}"


def test_json_output_escapes_what_a_terminal_would_act_on(chatbus: Chatbus, hub: Hub) -> None:
    chatbus.login("bob")
    chatbus.login("alice")
    Mailbox(hub, "bob").send("alice", "8-bit csi \x9b2J, override \u202eevil, кот 🐈")
    output = chatbus.ok("history", "bob", "--json").stdout
    assert "\x9b" not in output
    assert "\u202e" not in output
    assert "\\u009b" in output and "\\u202e" in output
    body = json.loads(output)["messages"][0]["body"]
    assert body == "8-bit csi \x9b2J, override \u202eevil, кот 🐈"  # exact for programs


def test_server_refuses_an_address_that_is_not_this_machines(chatbus: Chatbus) -> None:
    result = chatbus("server", "--bind", "nosuchhost.invalid", "--port", str(free_port()))
    assert one_line_error(result) == (
        "Error: cannot listen on 'nosuchhost.invalid': not an address of this machine"
    )
