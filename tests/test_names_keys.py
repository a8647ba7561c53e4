"""Names and key layout: pure logic."""

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot

from chatbus.config import Settings
from chatbus.errors import InvalidName, InvalidSetting
from chatbus.keys import Keys
from chatbus.names import is_valid_name, same_name, valid_names, validate_name


@pytest.mark.parametrize("name", ["a", "Alice", "bob_2", "x-y", "A" * 32, "0"])
def test_valid_names_are_accepted(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "A" * 33, "al ice", "alice!", "Алиса", "a:b", "{a}", "a*", "bob\n", "é"]
)
def test_invalid_names_are_refused_with_the_rule(name: str) -> None:
    with pytest.raises(InvalidName, match="letters A-Z a-z, digits 0-9"):
        validate_name(name)


def test_names_compare_without_case() -> None:
    assert same_name("Alice", "aLICE")
    assert not same_name("alice", "alicia")


@given(st.from_regex(r"[A-Za-z0-9_-]{1,32}", fullmatch=True))
def test_a_users_keys_share_one_cluster_slot(name: str) -> None:
    keys = Keys("chatbus")
    slots = {
        key_slot(k.encode())
        for k in (
            keys.account(name),
            keys.sessions(name),
            keys.mailbox(name),
            keys.unread(name),
            keys.inbox_channel(name),
            keys.account(name.upper()),
        )
    }
    assert len(slots) == 1


def test_presence_keys_share_one_cluster_slot() -> None:
    keys = Keys("ns")
    names = [keys.online, keys.leases, keys.lease_index, keys.presence_seq, keys.users_channel]
    assert len({key_slot(k.encode()) for k in names}) == 1


def test_every_key_lives_under_the_namespace() -> None:
    keys = Keys("team-a")
    assert keys.mailbox("Bob") == "team-a:{bob}:mailbox"
    assert keys.users_channel == "team-a:{presence}:users"


@given(st.text(max_size=40))
def test_is_valid_name_never_raises(text: str) -> None:
    assert is_valid_name(text) in (True, False)


@pytest.mark.parametrize("namespace", [".", "..", ".hidden", "a/b", "", "x" * 65])
def test_namespaces_that_could_escape_the_home_directory_are_refused(
    namespace: str, tmp_path: Path
) -> None:
    with pytest.raises(InvalidSetting, match="invalid namespace"):
        Settings(namespace=namespace, home=tmp_path)


def test_an_invalid_url_error_does_not_show_its_password(tmp_path: Path) -> None:
    with pytest.raises(InvalidSetting) as raised:
        Settings(url="http://:hunter2@example/0", home=tmp_path)
    assert "hunter2" not in str(raised.value)


@given(
    st.lists(
        st.one_of(
            st.from_regex(r"[A-Za-z0-9_-]{1,32}", fullmatch=True).map(str.encode),
            st.binary(max_size=40),
        ),
        max_size=20,
    )
)
def test_a_list_of_names_from_the_hub_keeps_exactly_the_valid_ones(stored: list[bytes]) -> None:
    one_by_one = [n for n in (s.decode(errors="replace") for s in stored) if is_valid_name(n)]
    assert valid_names(stored) == one_by_one


def test_an_entry_holding_a_line_break_is_not_taken_for_two_names() -> None:
    assert valid_names([b"alice", b"bob\ncarol"]) == ["alice"]


@pytest.mark.parametrize("name", ["presence", "Directory", "PRESENCE"])
def test_the_tags_of_shared_keys_are_nobodys_name(name: str) -> None:
    with pytest.raises(InvalidName, match="is reserved"):
        validate_name(name)
    assert not is_valid_name(name)
    assert valid_names([b"alice", name.encode(), b"bob"]) == ["alice", "bob"]
