"""Accounts, sessions and the local identity, against a real hub."""

import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from chatbus import accounts
from chatbus.config import DEFAULT_URL
from chatbus.errors import (
    DamagedRecord,
    InvalidName,
    NameTaken,
    NotLoggedIn,
    UnknownUser,
    WeakPassword,
    WrongPassword,
)
from chatbus.hub import Hub
from chatbus.identity import IdentityStore, hub_folder

PASSWORD = "correct horse"


def test_first_login_registers_and_later_logins_need_the_password(hub: Hub) -> None:
    session = accounts.register(hub, "Alice", PASSWORD)
    assert session.name == "Alice"
    again = accounts.login(hub, "Alice", PASSWORD)
    assert again.name == "Alice"
    assert again.token != session.token
    with pytest.raises(WrongPassword, match="wrong password for 'Alice'"):
        accounts.login(hub, "Alice", "not the password")


def test_names_are_one_account_regardless_of_case(hub: Hub) -> None:
    accounts.register(hub, "Alice", PASSWORD)
    with pytest.raises(NameTaken):
        accounts.register(hub, "ALICE", "another password")
    assert accounts.registered_name(hub, "alice") == "Alice"
    # Logging in with any case gives the name as registered.
    assert accounts.login(hub, "aLiCe", PASSWORD).name == "Alice"


def test_invalid_names_are_refused_and_nothing_is_stored(hub: Hub) -> None:
    with pytest.raises(InvalidName, match="use 1-32 characters"):
        accounts.register(hub, "bad name!", PASSWORD)
    assert list(hub.redis.scan_iter(match=f"{hub.keys.namespace}:*")) == []


def test_short_passwords_are_refused(hub: Hub) -> None:
    with pytest.raises(WeakPassword, match="at least 8 characters"):
        accounts.register(hub, "bob", "short")
    assert accounts.registered_name(hub, "bob") is None


def test_login_to_an_unknown_name_says_so(hub: Hub) -> None:
    with pytest.raises(UnknownUser, match="no account named 'nobody'"):
        accounts.login(hub, "nobody", PASSWORD)


def test_the_hub_keeps_only_a_hash_of_the_token_and_logout_revokes_it(hub: Hub) -> None:
    session = accounts.register(hub, "carol", PASSWORD)
    stored = hub.redis.hgetall(hub.keys.sessions("carol"))
    assert session.token.encode() not in b"".join([*stored.keys(), *stored.values()])
    assert hub.redis.hget(hub.keys.account("carol"), "hash") is not None
    assert PASSWORD.encode() not in b"".join(hub.redis.hgetall(hub.keys.account("carol")).values())
    accounts.verify(hub, session)
    accounts.logout(hub, session)
    with pytest.raises(NotLoggedIn, match="log in again"):
        accounts.verify(hub, session)


def test_a_password_change_ends_the_other_sessions_and_keeps_this_one(hub: Hub) -> None:
    laptop = accounts.register(hub, "alice", PASSWORD)
    phone = accounts.login(hub, "alice", PASSWORD)
    stolen = accounts.login(hub, "alice", PASSWORD)
    assert accounts.change_password(hub, laptop, PASSWORD, "a new secret") == 2
    accounts.verify(hub, laptop)
    for ended in (phone, stolen):
        with pytest.raises(NotLoggedIn):
            accounts.verify(hub, ended)
    with pytest.raises(WrongPassword):
        accounts.login(hub, "alice", PASSWORD)
    assert accounts.login(hub, "alice", "a new secret").name == "alice"


def test_a_password_change_needs_the_current_password_and_a_valid_new_one(hub: Hub) -> None:
    session = accounts.register(hub, "alice", PASSWORD)
    other = accounts.login(hub, "alice", PASSWORD)
    before = hub.redis.hgetall(hub.keys.account("alice"))
    with pytest.raises(WrongPassword, match="wrong password for 'alice'"):
        accounts.change_password(hub, session, "a guess at it", "a new secret")
    with pytest.raises(WeakPassword, match="at least 8 characters"):
        accounts.change_password(hub, session, PASSWORD, "short")
    accounts.logout(hub, session)
    with pytest.raises(NotLoggedIn, match="log in again"):
        accounts.change_password(hub, session, PASSWORD, "a new secret")
    # Nothing changed: same hash, and the other session still works.
    assert hub.redis.hgetall(hub.keys.account("alice")) == before
    accounts.verify(hub, other)


def test_a_password_change_racing_another_change_or_a_logout_changes_nothing(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = accounts.register(hub, "alice", PASSWORD)
    elsewhere = accounts.login(hub, "alice", PASSWORD)
    check = accounts._check_password

    def then(meanwhile: Callable[[], object]) -> None:
        """Run ``meanwhile`` after the password check, before the change is stored."""

        def checked(account: accounts._Account, password: str) -> None:
            check(account, password)
            monkeypatch.setattr(accounts, "_check_password", check)
            meanwhile()

        monkeypatch.setattr(accounts, "_check_password", checked)

    then(lambda: accounts.logout(hub, here))
    with pytest.raises(NotLoggedIn, match="log in again"):
        accounts.change_password(hub, here, PASSWORD, "changed here")
    accounts.verify(hub, elsewhere)

    here = accounts.login(hub, "alice", PASSWORD)
    then(lambda: accounts.change_password(hub, elsewhere, PASSWORD, "changed elsewhere"))
    with pytest.raises(WrongPassword, match="changed elsewhere a moment ago"):
        accounts.change_password(hub, here, PASSWORD, "changed here")
    assert accounts.login(hub, "alice", "changed elsewhere").name == "alice"


def test_identity_file_is_private_and_names_the_current_user(tmp_path: Path) -> None:
    store = IdentityStore(tmp_path / "home", DEFAULT_URL, "chatbus")
    alice = accounts.Session("Alice", "token-a")
    bob = accounts.Session("bob", "token-b")
    path = store.save(alice)
    store.save(bob)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert store.load() == bob
    assert store.load("alice") == alice
    store.remove(bob)
    with pytest.raises(NotLoggedIn, match="nobody is logged in"):
        store.load()
    assert store.load("Alice") == alice


def test_a_damaged_identity_file_asks_for_a_new_login(tmp_path: Path) -> None:
    store = IdentityStore(tmp_path, DEFAULT_URL, "chatbus")
    store.save(accounts.Session("dave", "t"))
    (store.directory / "dave.json").write_text("{not json")
    with pytest.raises(NotLoggedIn, match="damaged; run 'chatbus login dave'"):
        store.load()


@pytest.mark.parametrize(
    "damage",
    [
        {"name": b"\xff\xfe"},
        {"name": "Mallory"},  # not the name the key belongs to
        {"salt": "not hex"},
        {"n": str(2**30)},  # would make every login hang
        {"p": "0"},
    ],
)
def test_a_damaged_account_record_is_one_clear_error(hub: Hub, damage: dict[str, object]) -> None:
    accounts.register(hub, "alice", PASSWORD)
    hub.redis.hset(hub.keys.account("alice"), mapping=damage)  # type: ignore[arg-type]
    with pytest.raises(DamagedRecord, match="account record of 'alice' on the hub is damaged"):
        accounts.login(hub, "alice", PASSWORD)


def test_an_account_without_fields_is_damaged(hub: Hub) -> None:
    hub.redis.hset(hub.keys.account("bob"), "name", "bob")
    assert accounts.registered_name(hub, "bob") == "bob"
    with pytest.raises(DamagedRecord):
        accounts.login(hub, "bob", PASSWORD)


def test_a_stale_readable_temporary_file_cannot_make_the_token_readable(tmp_path: Path) -> None:
    store = IdentityStore(tmp_path, DEFAULT_URL, "chatbus")
    store.save(accounts.Session("alice", "t1"))
    for leftover in ("alice.json.tmp", ".alice.json.x"):
        (store.directory / leftover).write_text("old")
        (store.directory / leftover).chmod(0o644)
    path = store.save(accounts.Session("alice", "t2"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_an_unreadable_identity_is_a_clear_error(tmp_path: Path) -> None:
    store = IdentityStore(tmp_path, DEFAULT_URL, "chatbus")
    store.save(accounts.Session("alice", "t"))
    path = store.directory / "alice.json"
    path.unlink()
    path.mkdir()  # a directory where the file should be
    with pytest.raises(NotLoggedIn, match="cannot read the saved session of 'alice'"):
        store.load("alice")


@pytest.mark.parametrize(
    ("url", "readable"),
    [
        ("redis://localhost:6379/0", "localhost-6379-0-"),
        ("redis://:s3cret@10.0.0.5:6380/2", "10.0.0.5-6380-2-"),
        ("rediss://alice:s3cret@hub.example.com", "hub.example.com-6379-0-"),
        ("redis://localhost:6379/0?db=3&password=s3cret", "localhost-6379-3-"),
        ("unix:///run/valkey/valkey.sock?db=1", "run_valkey_valkey.sock-1-"),
    ],
)
def test_saved_sessions_are_kept_per_hub_and_never_under_a_password(
    tmp_path: Path, url: str, readable: str
) -> None:
    store = IdentityStore(tmp_path, url, "chatbus")
    store.save(accounts.Session("alice", "token"))
    assert store.directory.parent.name.startswith(readable)
    assert "s3cret" not in str(store.directory)


def test_two_hubs_never_share_a_folder_and_one_hub_has_one() -> None:
    different = [
        "redis://localhost:6379/0",
        "redis://localhost:6379/0?db=3",
        "redis://[::1]:6379/0",
        "redis://1:6379/0",
        "unix:///tmp/a/b.sock",
        "unix:///tmp/a_b.sock",
        "unix:///tmp/a-6379",
        "redis://tmp_a:6379/0",
    ]
    assert len({hub_folder(url) for url in different}) == len(different)
    same = ["redis://localhost:6379/0", "rediss://:pw@localhost", "redis://LOCALHOST:6379/00"]
    assert len({hub_folder(url) for url in same}) == 1
