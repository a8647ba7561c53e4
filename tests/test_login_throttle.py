"""Wrong passwords are slowed down per name, on the hub (login_failures.lua).

Real hub throughout: the delay is timed by the hub's clock inside the script.
Tests that must not wait use a long delay and check the refusal; the one that
waits uses a short one and polls with a deadline.
"""

import re

import pytest
from cli_helpers import PASSWORD, Chatbus, one_line_error
from helpers import wait_until

from chatbus import accounts
from chatbus.accounts import Session, Throttle
from chatbus.config import Settings
from chatbus.errors import TooManyWrongPasswords, WrongPassword
from chatbus.hub import Hub

WRONG = "not the password"
# After 3 failures, 30 s to wait: far longer than any test takes.
SLOW = Throttle(base_ms=30_000, longest_ms=60_000)


def fail(hub: Hub, times: int, throttle: Throttle = SLOW) -> list[str]:
    """Log in as alice ``times`` with a wrong password; the errors."""
    errors = []
    for _ in range(times):
        with pytest.raises(WrongPassword) as wrong:
            accounts.login(hub, "alice", WRONG, throttle=throttle)
        errors.append(str(wrong.value))
    return errors


def test_three_wrong_passwords_cost_nothing_then_a_try_too_soon_is_refused_unchecked(
    hub: Hub,
) -> None:
    accounts.register(hub, "alice", PASSWORD)
    advice = "wrong password for 'alice' (if that name is not yours, choose another)"
    assert fail(hub, 3) == [advice, advice, f"{advice}; wait 30 s before the next try"]
    record = hub.redis.hgetall(hub.keys.login_failures("alice"))
    sessions = hub.redis.hgetall(hub.keys.sessions("alice"))
    # The right password, too soon: refused without being checked, and nothing changes.
    with pytest.raises(TooManyWrongPasswords) as refused:
        accounts.login(hub, "alice", PASSWORD, throttle=SLOW)
    assert re.fullmatch(
        r"too many wrong passwords for 'alice': try again in (29|30) s", str(refused.value)
    )
    assert hub.redis.hgetall(hub.keys.login_failures("alice")) == record
    assert hub.redis.hgetall(hub.keys.sessions("alice")) == sessions
    # The record is in alice's own slot and forgotten 15 minutes after the last failure.
    assert hub.keys.login_failures("alice").startswith(f"{hub.keys.namespace}:{{alice}}:")
    assert 0 < hub.redis.pttl(hub.keys.login_failures("alice")) <= 15 * 60_000


def test_after_the_delay_the_right_password_works_and_clears_the_record(hub: Hub) -> None:
    quick = Throttle(base_ms=300, longest_ms=1_000)
    accounts.register(hub, "alice", PASSWORD)
    fail(hub, 3, quick)

    def log_in() -> Session | None:
        try:
            return accounts.login(hub, "alice", PASSWORD, throttle=quick)
        except TooManyWrongPasswords:
            return None

    assert wait_until(log_in, 10, "a login after the delay").name == "alice"
    assert not hub.redis.exists(hub.keys.login_failures("alice"))


def test_a_right_password_starts_the_count_again(hub: Hub) -> None:
    accounts.register(hub, "alice", PASSWORD)
    for _ in range(3):
        fail(hub, 2)
        accounts.login(hub, "alice", PASSWORD, throttle=SLOW)  # 6 wrong in all, never 3 in a row
    assert not hub.redis.exists(hub.keys.login_failures("alice"))


def test_each_failure_past_the_free_ones_doubles_the_delay_up_to_the_longest(hub: Hub) -> None:
    """The script's rule, in milliseconds instead of seconds so each delay can be waited out."""
    record = [hub.keys.login_failures("alice")]
    tiny = ["attempt", 3, 1, 20, 60_000]  # free, base ms, longest ms, kept ms

    def attempt() -> tuple[int] | None:
        """(the delay a failure now sets,) or None while a try must wait."""
        allowed, delay = accounts._LOGIN_FAILURES(hub.topology, record, tiny)
        return (delay,) if allowed else None

    delays = [wait_until(attempt, 10, "a try to be allowed")[0] for _ in range(9)]
    assert delays == [0, 0, 1, 2, 4, 8, 16, 20, 20]
    count, next_try = hub.redis.hmget(record[0], "count", "next")
    assert int(count) == 9
    assert int(next_try) > 0
    assert accounts._LOGIN_FAILURES(hub.topology, record, ["clear"]) == 1
    assert not hub.redis.exists(record[0])


def test_the_current_password_of_passwd_is_slowed_down_too(hub: Hub) -> None:
    session = accounts.register(hub, "alice", PASSWORD)
    for _ in range(3):
        with pytest.raises(WrongPassword):
            accounts.confirm_password(hub, session, WRONG, throttle=SLOW)
    account = hub.redis.hgetall(hub.keys.account("alice"))
    with pytest.raises(TooManyWrongPasswords):
        accounts.confirm_password(hub, session, PASSWORD, throttle=SLOW)
    with pytest.raises(TooManyWrongPasswords):
        accounts.change_password(hub, session, PASSWORD, "a new password", throttle=SLOW)
    assert hub.redis.hgetall(hub.keys.account("alice")) == account


def test_the_commands_refuse_a_try_too_soon_in_one_line(hub: Hub, settings: Settings) -> None:
    chatbus = Chatbus(settings)
    chatbus.login("alice")
    fail(hub, 3)
    refused = r"Error: too many wrong passwords for 'alice': try again in (29|30) s"
    login = chatbus("login", "alice", CHATBUS_PASSWORD=PASSWORD)
    assert re.fullmatch(refused, one_line_error(login))
    passwd = chatbus("passwd", CHATBUS_PASSWORD=PASSWORD, CHATBUS_NEW_PASSWORD="a new password")
    assert re.fullmatch(refused, one_line_error(passwd))
    # The session saved by the first login still works: only password tries wait.
    assert chatbus.ok("whoami").stdout.startswith("alice on ")
