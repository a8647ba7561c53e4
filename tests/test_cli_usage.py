"""What the commands say about what was typed, and a few of their smaller promises.

The rule (README, Commands): a mistake in what was typed (a name, a setting
from an option or the environment, an option's value) is a usage error, exit 2
in click's format; what goes wrong while doing the request is one ``Error:``
line, exit 1.
"""

import dataclasses
import io
import re

import pexpect
import pytest
from cli_helpers import PASSWORD, Chatbus, one_line_error, pty_env
from click.testing import Result
from conftest import free_port
from helpers import CHATBUS

from chatbus import accounts
from chatbus.config import Settings
from chatbus.hub import Hub
from chatbus.messages import Mailbox

NAME_RULE = "use 1-32 characters: letters A-Z a-z, digits 0-9, '_' and '-'"


@pytest.fixture
def chatbus(settings: Settings) -> Chatbus:
    return Chatbus(settings)


def usage_error(result: Result, usage: str) -> str:
    """Assert ``result`` is click's usage error for ``usage``; return its Error line."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert lines[0] == f"Usage: {usage}", result.output
    assert lines[1].startswith("Try 'chatbus"), result.output
    assert lines[-1].startswith("Error: "), result.output
    return lines[-1]


# -- exit 2: what was typed ---------------------------------------------------


@pytest.mark.parametrize(
    ("args", "usage"),
    [
        (["login", "bad name"], "chatbus login [OPTIONS] NAME"),
        (["chat", "semi;colon"], "chatbus chat [OPTIONS] NAME|ROOM"),
        (["send", "x" * 33, "hi"], "chatbus send [OPTIONS] NAME|ROOM [TEXT]..."),
        (["history", "é"], "chatbus history [OPTIONS] NAME|ROOM"),
    ],
    ids=["login", "chat", "send", "history"],
)
def test_an_invalid_name_is_a_usage_error(chatbus: Chatbus, args: list[str], usage: str) -> None:
    chatbus.login("alice")
    line = usage_error(chatbus(*args, CHATBUS_PASSWORD=PASSWORD), usage)
    what = usage.split()[3]
    assert line == f"Error: Invalid value for '{what}': invalid name {args[1]!r}: {NAME_RULE}"


@pytest.mark.parametrize(
    ("args", "usage"),
    [
        (["join", "#no way"], "chatbus join [OPTIONS] ROOM"),
        (["chat", "+" + "x" * 33], "chatbus chat [OPTIONS] NAME|ROOM"),
        (["members", "ops"], "chatbus members [OPTIONS] ROOM"),
    ],
    ids=["join", "chat", "members"],
)
def test_an_invalid_room_is_a_usage_error(chatbus: Chatbus, args: list[str], usage: str) -> None:
    chatbus.login("alice")
    line = usage_error(chatbus(*args), usage)
    what = usage.split()[3]
    room_rule = (
        "use '#' and 1-32 characters: letters A-Z a-z, digits 0-9, '_' and '-' (or '+' for '#')"
    )
    assert line == f"Error: Invalid value for '{what}': invalid room name {args[1]!r}: {room_rule}"


def test_an_invalid_as_name_names_the_option_or_the_variable(chatbus: Chatbus) -> None:
    typed = usage_error(chatbus("whoami", "--as", "no way"), "chatbus whoami [OPTIONS]")
    assert typed == f"Error: Invalid value for '--as': invalid name 'no way': {NAME_RULE}"
    from_env = usage_error(chatbus("whoami", CHATBUS_USER="no way"), "chatbus whoami [OPTIONS]")
    assert (
        from_env == f"Error: Invalid value for 'CHATBUS_USER': invalid name 'no way': {NAME_RULE}"
    )


URL_RULE = "it must start with redis://, rediss:// or unix://"
NAMESPACE_RULE = "use 1-64 of A-Z a-z 0-9 _ . - (not starting with a dot)"


@pytest.mark.parametrize(
    ("args", "env", "usage", "error"),
    [
        (
            ["users", "--url", "http://localhost:6379"],
            {},
            "chatbus users [OPTIONS]",
            f"Invalid value for '--url': invalid hub URL 'http://localhost:6379': {URL_RULE}",
        ),
        (
            ["--url", "localhost:6379", "users"],
            {},
            "chatbus [OPTIONS] COMMAND [ARGS]...",
            f"Invalid value for '--url': invalid hub URL 'localhost:6379': {URL_RULE}",
        ),
        (
            ["users"],
            {"CHATBUS_URL": "mysql://localhost/chat"},
            "chatbus users [OPTIONS]",
            "Invalid value for 'CHATBUS_URL': invalid hub URL 'mysql://localhost/chat': "
            + URL_RULE,
        ),
        (
            ["whoami"],
            {"CHATBUS_URL": "redis://:pw@localhost:99999/0"},
            "chatbus whoami [OPTIONS]",
            "Invalid value for 'CHATBUS_URL': invalid hub URL 'redis://:***@localhost:99999/0': "
            "the port must be 1-65535",
        ),
        (
            ["users", "--namespace", "two words"],
            {},
            "chatbus users [OPTIONS]",
            f"Invalid value for '--namespace': invalid namespace 'two words': {NAMESPACE_RULE}",
        ),
        (
            ["--namespace", "a:b", "users"],
            {},
            "chatbus [OPTIONS] COMMAND [ARGS]...",
            f"Invalid value for '--namespace': invalid namespace 'a:b': {NAMESPACE_RULE}",
        ),
        (
            ["users"],
            {"CHATBUS_NAMESPACE": ".hidden"},
            "chatbus users [OPTIONS]",
            f"Invalid value for 'CHATBUS_NAMESPACE': invalid namespace '.hidden': {NAMESPACE_RULE}",
        ),
    ],
    ids=["url", "url-before", "url-env", "url-port-env", "ns", "ns-before", "ns-env"],
)
def test_an_invalid_setting_is_a_usage_error_naming_where_it_came_from(
    chatbus: Chatbus, args: list[str], env: dict[str, str], usage: str, error: str
) -> None:
    assert usage_error(chatbus(*args, **env), usage) == f"Error: {error}"


def test_a_valid_setting_typed_before_the_command_wins_over_a_broken_environment(
    chatbus: Chatbus, settings: Settings
) -> None:
    result = chatbus.ok("--url", settings.url, "users", CHATBUS_URL="mysql://localhost/chat")
    assert result.stdout.startswith("Nobody is online.")


@pytest.mark.parametrize(
    ("variable", "value", "error"),
    [
        ("CHATBUS_LEASE_TTL", "abc", "'abc' is not a number of seconds (1 to 3600)"),
        ("CHATBUS_LEASE_TTL", "0", "the lease TTL must be between 1 and 3600 seconds"),
        ("CHATBUS_MAX_BODY", "abc", "'abc' is not a whole number of bytes (1 to 1048576)"),
        ("CHATBUS_MAX_BODY", "0", "the message size limit must be between 1 byte and 1 MiB"),
    ],
)
def test_an_environment_only_setting_names_its_variable_not_a_hidden_option(
    chatbus: Chatbus, variable: str, value: str, error: str
) -> None:
    result = chatbus("users", **{variable: value})
    line = usage_error(result, "chatbus users [OPTIONS]")
    assert line == f"Error: Invalid value for '{variable}': {error}"
    assert "--lease-ttl" not in result.output
    assert "--max-body" not in result.output


# -- exit 1: what went wrong doing it ---------------------------------------------


def test_what_goes_wrong_doing_the_request_is_one_line_and_exit_1(
    chatbus: Chatbus, settings: Settings
) -> None:
    chatbus.login("alice")
    unknown = one_line_error(chatbus("send", "nobody", "hi"))
    assert unknown == "Error: no account named 'nobody'; names are registered by 'chatbus login'"
    wrong = one_line_error(chatbus("login", "alice", CHATBUS_PASSWORD="not the password"))
    assert wrong.startswith("Error: wrong password for 'alice'")
    dead = f"redis://127.0.0.1:{free_port()}/0"
    unreachable = one_line_error(chatbus("users", CHATBUS_URL=dead))
    assert unreachable.startswith(f"Error: cannot reach the hub at {dead} (")
    chatbus.ok("logout")
    assert one_line_error(chatbus("whoami")) == (
        "Error: nobody is logged in here; run 'chatbus login NAME' first"
    )


# -- history: the paging hint and --limit's help ---------------------------------


def _conversation(chatbus: Chatbus) -> None:
    chatbus.login("bob")
    chatbus.login("alice")
    chatbus.ok("send", "bob", stdin="m1\nm2\nm3\nm4\n")
    chatbus.login("carol")  # carol is the default now: alice is only reachable with --as


def _hint(result: Result) -> list[str]:
    match = re.fullmatch(r"\(older: chatbus (.*)\)\n", result.stderr)
    assert match is not None, result.stderr
    return match[1].split()


def test_the_paging_hint_keeps_as_and_the_hub_options_typed(
    chatbus: Chatbus, settings: Settings
) -> None:
    _conversation(chatbus)
    first = chatbus.ok("history", "bob", "--as", "alice", "--limit", "2")
    hint = _hint(first)
    assert hint[:5] == ["history", "bob", "--limit", "2", "--as"]
    assert hint[5] == "alice"
    assert [line.split(": ", 1)[1] for line in chatbus.ok(*hint).stdout.splitlines()] == [
        "m1",
        "m2",
    ]
    # Typed before the command or after it, --url and --namespace are repeated too.
    typed = chatbus.ok(
        "--namespace",
        settings.namespace,
        "history",
        "bob",
        "--url",
        settings.url,
        "--as",
        "alice",
        "--limit",
        "3",
    )
    hint = _hint(typed)
    assert " ".join(hint).startswith(
        f"history bob --limit 3 --url {settings.url} --namespace {settings.namespace} "
        "--as alice --before "
    )
    assert [line.split(": ", 1)[1] for line in chatbus.ok(*hint).stdout.splitlines()] == ["m1"]


def test_the_paging_hint_does_not_repeat_settings_from_the_environment(chatbus: Chatbus) -> None:
    _conversation(chatbus)
    hint = _hint(chatbus.ok("history", "bob", "--limit", "2", CHATBUS_USER="alice"))
    assert hint[:4] == ["history", "bob", "--limit", "2"]
    assert hint[4] == "--before"


def test_history_limit_has_help(chatbus: Chatbus) -> None:
    text = " ".join(chatbus.ok("history", "--help").stdout.split())
    assert "--limit INTEGER RANGE How many messages to show" in text


# -- passwd ------------------------------------------------------------------------------


def test_passwd_says_when_no_other_session_was_logged_in(
    chatbus: Chatbus, settings: Settings
) -> None:
    chatbus.login("alice")
    alone = chatbus.ok("passwd", CHATBUS_PASSWORD=PASSWORD, CHATBUS_NEW_PASSWORD="second secret")
    assert alone.stdout == "Changed the password of alice; no other sessions were logged in.\n"
    other = Chatbus(dataclasses.replace(settings, home=settings.home / "phone"))
    other.login("alice", "second secret")
    one = chatbus.ok("passwd", CHATBUS_PASSWORD="second secret", CHATBUS_NEW_PASSWORD=PASSWORD)
    assert one.stdout == "Changed the password of alice; logged out 1 other session.\n"


def test_repeating_a_password_differently_says_so_in_lower_case_and_asks_again(
    settings: Settings, hub: Hub
) -> None:
    child = pexpect.spawn(
        CHATBUS, ["login", "dora"], env=pty_env(settings), encoding="utf-8", timeout=15
    )
    child.logfile_read = transcript = io.StringIO()
    try:
        child.expect_exact("Password: ")
        child.sendline(PASSWORD)
        child.expect_exact("Repeat the password: ")
        child.sendline("something else")
        child.expect_exact("Error: the two passwords do not match; type them again")
        child.expect_exact("Password: ")  # both again, from the first
        child.sendline(PASSWORD)
        child.expect_exact("Repeat the password: ")
        child.sendline(PASSWORD)
        child.expect_exact("Registered dora and logged in.")
        child.sendcontrol("c")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert "The two entered values do not match" not in transcript.getvalue()
    assert accounts.login(hub, "dora", PASSWORD).name == "dora"


# -- send on a terminal ------------------------------------------------------------------


def test_send_on_a_terminal_says_how_to_type_and_finish(
    chatbus: Chatbus, settings: Settings, hub: Hub
) -> None:
    chatbus.login("bob")
    chatbus.login("alice")
    child = pexpect.spawn(
        CHATBUS, ["send", "bob"], env=pty_env(settings), encoding="utf-8", timeout=15
    )
    try:
        child.expect_exact("type messages, one per line; Ctrl-D to finish")
        child.sendline("hello from a terminal")
        child.sendeof()
        child.expect_exact("Sent 1 message to bob.")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    bodies = [m.envelope.body for m in Mailbox(hub, "bob").conversation("alice", 10).messages]
    assert bodies == ["hello from a terminal"]


def test_send_from_a_pipe_prints_no_typing_hint(chatbus: Chatbus) -> None:
    chatbus.login("bob")
    chatbus.login("alice")
    piped = chatbus.ok("send", "bob", stdin="hi\n")
    assert (piped.stdout, piped.stderr) == ("", "")
