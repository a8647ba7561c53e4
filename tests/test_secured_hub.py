"""A secured hub on each server chatbus runs (the bundled Valkey 8.1, and
Debian's Redis 7.0, the one built with TLS): users are added, they chat, and
what the hub acknowledged survives a restart, as on an open hub.

Script effects reach the append-only file wrapped in MULTI/EXEC; when the
server replays them at start, it checks them against the ACL of the
``default`` user, which a secured hub turns off (valkey-io/valkey#3983,
redis/redis#14541): the users.acl it writes must let that replay through.
Redis 7.0 does not know CLIENT SETINFO, so its users' rules leave it out.
"""

import uuid
from pathlib import Path

import pytest
from conftest import free_port
from helpers import Recorder, wait_until
from secured_fixtures import SecuredChat

from chatbus.acl import hub_secret
from chatbus.admin import Admin
from chatbus.config import Settings
from chatbus.envelope import Envelope, new_envelope
from chatbus.hub import Credentials, Hub
from chatbus.messages import INGEST_PAGE, Mailbox
from chatbus.receiver import Receiver
from chatbus.server import HubProcess, ServerBinary, prepare_security


@pytest.fixture(params=["valkey 8.1", "redis 7.0 (TLS build)"])
def engine(
    request: pytest.FixtureRequest, server_binary: ServerBinary, tls_server_binary: ServerBinary
) -> ServerBinary:
    return server_binary if request.param.startswith("valkey") else tls_server_binary


def test_messages_and_read_marks_survive_a_restart_of_a_secured_hub(
    tmp_path: Path, engine: ServerBinary
) -> None:
    port = free_port()
    data_dir = tmp_path / "hub"
    security = prepare_security(data_dir, secure=True, tls=False, bind="127.0.0.1", port=port)
    hub_process = HubProcess(engine, port, data_dir, security=security)
    namespace = "t" + uuid.uuid4().hex[:12]

    def settings(url: str) -> Settings:
        return Settings(url=url, namespace=namespace, home=tmp_path / "home", lease_ttl=2.0)

    def as_user(name: str) -> Hub:
        secret = hub_secret(namespace, name, "password1")
        return Hub(settings(hub_process.url), Credentials(name, secret))

    with hub_process:
        admin = Admin(settings(hub_process.admin_url))
        for name in ("alice", "bob"):
            admin.add_user(name, "password1")
        admin.close()
        alice, bob = as_user("alice"), as_user("bob")
        Mailbox(alice, "alice").send_many("bob", [f"m{i}" for i in range(20)])
        recorder = Recorder()
        receiver = Receiver(bob, "bob", recorder, after_id="0-0")
        receiver.start()
        assert receiver.wait_connected(10)
        assert recorder.wait_for_bodies(20) == [f"m{i}" for i in range(20)]
        receiver.stop()
        Mailbox(bob, "bob").mark_read("alice", 20)
        alice.close()
        bob.close()
        hub_process.stop()
        hub_process.start()  # replays the append-only file
        bob = as_user("bob")
        try:
            kept = Mailbox(bob, "bob").read_after("0-0").messages
            assert [m.envelope.body for m in kept] == [f"m{i}" for i in range(20)]
            assert Mailbox(bob, "bob").unread_counts() == {}
        finally:
            bob.close()


@pytest.mark.parametrize("action", ["reset-password", "remove-user"])
def test_a_running_client_ends_cleanly_when_the_admin_resets_or_removes_its_user(
    tmp_path: Path, server_binary: ServerBinary, action: str
) -> None:
    port = free_port()
    data_dir = tmp_path / "hub"
    security = prepare_security(data_dir, secure=True, tls=False, bind="127.0.0.1", port=port)
    namespace = "t" + uuid.uuid4().hex[:12]
    with HubProcess(server_binary, port, data_dir, security=security) as hub_process:
        admin_settings = Settings(url=hub_process.admin_url, namespace=namespace, home=tmp_path)
        admin = Admin(admin_settings)
        admin.add_user("bob", "password1")
        settings = Settings(url=hub_process.url, namespace=namespace, home=tmp_path, lease_ttl=2.0)
        bob = Hub(settings, Credentials("bob", hub_secret(namespace, "bob", "password1")))
        recorder = Recorder()
        receiver = Receiver(bob, "bob", recorder, after_id="0-0")
        receiver.start()
        try:
            assert receiver.wait_connected(10)
            if action == "reset-password":
                admin.reset_password("bob")
            else:
                admin.remove_user("bob")
            # Ended, said why, and not a crash of the receiving thread.
            wait_until(lambda: recorder.session_ended is not None, 10, "the session to end")
            assert "no longer accepts the key of 'bob'" in str(recorder.session_ended)
            assert receiver.stats.listener_errors == 0
        finally:
            receiver.stop()
            bob.close()
            admin.close()


def test_a_send_retried_after_it_was_taken_in_shows_and_counts_once(
    secured_once: SecuredChat,
) -> None:
    """The retry window sees only the sender's own stream, which the recipient
    empties as it takes messages in: the take-in must not take one twice."""
    alice, bob = secured_once.add_user("alice"), secured_once.add_user("bob")
    alice_hub, bob_hub = secured_once.hub_as(alice), secured_once.hub_as(bob)
    envelope = new_envelope("alice", "bob", "only once", 4096)
    Mailbox(alice_hub, "alice").deliver("bob", [envelope])
    Mailbox(bob_hub, "bob").collect()
    Mailbox(alice_hub, "alice").deliver("bob", [envelope], retry=True)  # its reply was lost
    Mailbox(bob_hub, "bob").collect()
    bodies = [m.envelope.body for m in Mailbox(bob_hub, "bob").read_after("0-0").messages]
    assert bodies == ["only once"]
    assert Mailbox(bob_hub, "bob").unread_counts() == {"alice": 1}


def test_a_page_of_retried_copies_does_not_hide_the_messages_behind_it(
    secured_once: SecuredChat,
) -> None:
    """A full page of ids taken before moves nothing, yet more waits behind it."""
    alice, bob = secured_once.add_user("alice"), secured_once.add_user("bob")
    alice_hub, bob_hub = secured_once.hub_as(alice), secured_once.hub_as(bob)
    sent = [new_envelope("alice", "bob", f"m{i}", 4096) for i in range(INGEST_PAGE)]
    for first in range(0, len(sent), 100):
        Mailbox(alice_hub, "alice").deliver("bob", sent[first : first + 100])
    Mailbox(bob_hub, "bob").collect()
    for first in range(0, len(sent), 100):  # every reply was lost: all sent again
        Mailbox(alice_hub, "alice").deliver("bob", sent[first : first + 100], retry=True)
    Mailbox(alice_hub, "alice").send("bob", "and then this")
    Mailbox(bob_hub, "bob").collect()
    page = Mailbox(bob_hub, "bob").read_after("0-0", count=2 * INGEST_PAGE)
    bodies = [m.envelope.body for m in page.messages]
    assert bodies[-1] == "and then this"
    assert len(bodies) == INGEST_PAGE + 1


def test_a_sender_cannot_pass_a_message_off_as_a_copy_of_anothers(
    secured_once: SecuredChat,
) -> None:
    """Copies are told by sender and id: alice reusing the id of bob's own
    message to her does not replace it in either's view."""
    alice, bob = secured_once.add_user("alice"), secured_once.add_user("bob")
    alice_hub, bob_hub = secured_once.hub_as(alice), secured_once.hub_as(bob)
    mine = Mailbox(bob_hub, "bob").send("alice", "bob's own words")
    forged = Envelope(mine.envelope.id, "alice", "bob", 0, "words put in bob's mouth")
    Mailbox(alice_hub, "alice").deliver("bob", [forged])
    shown = Mailbox(bob_hub, "bob").conversation("alice", 10).messages
    assert [(m.envelope.sender, m.envelope.body) for m in shown] == [
        ("bob", "bob's own words"),
        ("alice", "words put in bob's mouth"),
    ]
