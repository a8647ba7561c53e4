"""On a secured hub, every user can still do all that chatbus offers.

The admin adds people (``chatbus admin``); they log in with the password
they were given and use every command, a running chat, and the full-screen
app in a terminal, on one server and on a cluster. What they cannot do is
tests/test_secured_adversarial.py's.
"""

import json
import re
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import replace
from pathlib import Path

import pexpect
import pytest
import redis
from cli_helpers import CLOCK, Chatbus, chatbus_process, one_line_error, process_env
from cluster_fixtures import start_cluster
from helpers import wait_until
from secured_fixtures import SecuredChat, SecuredHub, master_port_of
from terminals import PASSWORD, World

from chatbus import secured_login
from chatbus.errors import ChatbusError, WrongPassword
from chatbus.hub import Hub
from chatbus.identity import IdentityStore
from chatbus.messages import Mailbox
from chatbus.presence import snapshot
from chatbus.server import ServerBinary


@pytest.fixture
def chatbus(secured: SecuredChat) -> Chatbus:
    """``chatbus`` in-process on the secured hub, with the admin URL at hand."""
    runner = Chatbus(secured.settings)
    runner.env["CHATBUS_ADMIN_URL"] = secured.hub.admin_url
    return runner


def add_user(chatbus: Chatbus, secured: SecuredChat, name: str) -> str:
    """``chatbus admin add-user NAME``: the password it prints."""
    out = chatbus.ok("admin", "add-user", name).output
    match = re.search(rf"^Password for {name}: (\S+)$", out, re.MULTILINE)
    assert match, out
    secured.added.add(name.lower())
    return match.group(1)


def users_json(chatbus: Chatbus, name: str) -> dict[str, object]:
    shown: dict[str, object] = json.loads(chatbus.ok("users", "--json", "--as", name).stdout)
    return shown


def test_every_command_works_for_users_of_a_secured_hub(
    chatbus: Chatbus, secured: SecuredChat
) -> None:
    alice_password = add_user(chatbus, secured, "Alice")
    added = chatbus.ok("admin", "add-user", "bob", "--password-stdin", stdin="bobs password\n")
    assert added.output == "Added bob.\n"
    secured.added.add("bob")
    assert chatbus.ok("admin", "list").output == "Alice\nbob\n"

    # Logging in with what the admin gave: no registering, no choosing.
    shown = chatbus.ok("login", "alice", CHATBUS_PASSWORD=alice_password).output
    assert shown.splitlines() == ["Logged in as Alice (secured hub).", "Online now: nobody"]
    shown = chatbus.ok("login", "bob", CHATBUS_PASSWORD="bobs password").output
    assert shown.splitlines()[0] == "Logged in as bob (secured hub)."
    error = one_line_error(chatbus("login", "bob", CHATBUS_PASSWORD="not bobs password"))
    assert "wrong password for 'bob'" in error
    error = one_line_error(chatbus("login", "nobody", CHATBUS_PASSWORD="whatever1"))
    assert "admin adds users" in error

    whoami = chatbus.ok("whoami", "--as", "alice").output
    assert (
        whoami == f"Alice on {secured.hub.url} (secured hub) (namespace {secured.keys.namespace})\n"
    )

    # Sending: one message, and lines from stdin in batches of SEND_BATCH.
    chatbus.ok("send", "bob", "hello", "bob", "--as", "alice")
    lines = "".join(f"line {i}\n" for i in range(150))
    chatbus.ok("send", "bob", stdin=lines, CHATBUS_USER="alice")
    shown_json = users_json(chatbus, "bob")
    assert shown_json["you"] == "bob"
    assert shown_json["unread"] == {"Alice": 151}
    history = chatbus.ok("history", "alice", "--limit", "3", "--as", "bob").stdout.splitlines()
    assert [line.split(" Alice: ", 1)[1] for line in history] == [
        "line 147",
        "line 148",
        "line 149",
    ]
    assert all(re.fullmatch(f"{CLOCK} Alice: line 14[789]", line) for line in history)

    # A piped chat shows what was unread, and sends each line of stdin.
    chat = chatbus.ok("chat", "alice", "--as", "bob", stdin="hi alice\nbye\n").stdout.splitlines()
    assert chat[0].endswith("Alice: hello bob")
    assert chat[-1].endswith("Alice: line 149")
    assert users_json(chatbus, "bob")["unread"] == {}
    assert users_json(chatbus, "alice")["unread"] == {"bob": 2}
    history = chatbus.ok("history", "bob", "--as", "alice", "--limit", "2").stdout.splitlines()
    assert [line.split(": ", 1)[1] for line in history] == ["hi alice", "bye"]

    # Passwords are the admin's: passwd says whom to ask, in one line.
    error = one_line_error(chatbus("passwd", "--as", "alice", CHATBUS_PASSWORD=alice_password))
    assert error == (
        "Error: on a secured hub only its admin changes passwords: "
        "ask them to run 'chatbus admin reset-password Alice'"
    )

    # The user's own Redis URL works with any Redis client, for their own keys.
    url = chatbus.ok("whoami", "--redis-url", "--as", "alice").stdout.strip()
    client: redis.Redis | redis.RedisCluster = (
        redis.RedisCluster.from_url(url) if secured.hub.cluster else redis.Redis.from_url(url)
    )
    try:
        assert client.hget(secured.keys.account("alice"), "name") == b"Alice"
        assert client.xlen(secured.keys.mailbox("alice")) == 153
    finally:
        client.close()

    assert chatbus.ok("logout", "--as", "alice").output == "Logged out Alice.\n"
    error = one_line_error(chatbus("history", "bob", "--as", "alice"))
    assert error == "Error: 'alice' is not logged in here; run 'chatbus login alice'"
    # bob's session is his own: still there.
    assert users_json(chatbus, "bob")["you"] == "bob"


def test_the_admin_resets_and_removes_users(chatbus: Chatbus, secured: SecuredChat) -> None:
    password = add_user(chatbus, secured, "carol")
    add_user(chatbus, secured, "dave")
    chatbus.ok("login", "carol", CHATBUS_PASSWORD=password)
    reset = chatbus.ok("admin", "reset-password", "carol").output
    new = re.search(r"^Password for carol: (\S+)$", reset, re.MULTILINE)
    assert new, reset
    assert "their sessions have ended" in reset
    error = one_line_error(chatbus("users", "--as", "carol"))
    assert "no longer accepts" in error
    chatbus.ok("login", "carol", CHATBUS_PASSWORD=new.group(1))
    chatbus.ok("send", "dave", "after the reset", "--as", "carol")
    assert chatbus.ok("admin", "remove-user", "dave").output == "Removed dave.\n"
    assert chatbus.ok("admin", "list").output == "carol\n"
    error = one_line_error(chatbus("send", "dave", "are you there?", "--as", "carol"))
    assert "no user named 'dave' on this hub" in error


def test_a_user_added_on_a_new_cluster_logs_in_through_any_of_its_nodes(
    tmp_path: Path, server_binary: ServerBinary
) -> None:
    """Any node's URL works for a client (README), replicas included, and a
    replica may become the master: the user must be on every node. A new
    cluster's replicas are not in its slot map (CLUSTER SLOTS) until their
    master has had a write."""
    cluster = start_cluster(server_binary, tmp_path / "cluster", secure=True)
    try:
        hub = SecuredHub(
            "cluster", cluster.url, cluster.admin_url, cluster.ports, master_port_of(cluster)
        )
        secured = SecuredChat(hub, tmp_path / "home")
        try:
            runner = Chatbus(secured.settings)
            runner.env["CHATBUS_ADMIN_URL"] = hub.admin_url
            password = add_user(runner, secured, "alice")
            refused = []
            for port in cluster.ports:
                at_node = replace(secured.settings, url=f"redis://127.0.0.1:{port}/0")
                try:
                    secured_login.login(at_node, "alice", password, saved=None)
                except WrongPassword:
                    refused.append(port)
            assert refused == [], f"alice cannot log in through nodes {refused}"
            assert runner.ok("admin", "list").output == "alice\n"
        finally:
            secured.close()
    finally:
        cluster.stop()


def test_the_same_name_in_another_namespace_leaves_the_first_user_be(
    secured_once: SecuredChat, tmp_path: Path
) -> None:
    """Namespaces let several chats share one hub (README); an admin adding an
    "alice" to one must not lock out the "alice" of another."""
    first = secured_once
    second = SecuredChat(first.hub, tmp_path / "second")
    try:
        alice = first.add_user("alice")
        bob = first.add_user("bob")
        with suppress(ChatbusError):  # refusing the name there would do as well
            second.add_user("alice", "another alice's password")
        session = secured_login.login(first.settings, "alice", alice.password, saved=None)
        hub = Hub(first.settings, session.credentials)
        try:
            Mailbox(hub, "alice").send("bob", "still me")
        finally:
            hub.close()
        assert Mailbox(first.hub_as(bob), "bob").unread_counts() == {"alice": 1}
    finally:
        second.close()


def test_live_delivery_and_presence_through_receivers(secured: SecuredChat) -> None:
    alice = secured.add_user("Alice")
    bob = secured.add_user("Bob")
    bobs = secured.receiver(bob)
    assert bobs.online == ["Bob"]
    alices = secured.receiver(alice)
    wait_until(lambda: "Alice" in bobs.online, 10, "Alice online for Bob")
    assert [(e.kind, e.name) for e in bobs.recorder.events] == [("join", "Alice")]
    Mailbox(secured.hub_as(alice), "Alice").send_many("Bob", ["one", "two", "three"])
    assert bobs.recorder.wait_for_bodies(3) == ["one", "two", "three"]
    Mailbox(secured.hub_as(bob), "Bob").send("Alice", "got them")
    assert alices.recorder.wait_for_bodies(4)[-1] == "got them"  # her own three, then his
    assert bobs.recorder.wait_for_bodies(4)[-1] == "got them"  # his other windows see it
    assert bobs.receiver.stats.dropped == {}
    alices.receiver.stop()
    wait_until(lambda: "Alice" not in bobs.online, 5, "Alice offline for Bob")
    assert [(e.kind, e.name) for e in bobs.recorder.events][-1] == ("leave", "Alice")
    assert snapshot(secured.hub_as(bob))[1] == ["Bob"]


def test_a_running_chat_ends_with_one_line_when_the_admin_resets_the_password(
    secured_once: SecuredChat,
) -> None:
    secured = secured_once
    runner = Chatbus(secured.settings)
    runner.env["CHATBUS_ADMIN_URL"] = secured.hub.admin_url
    password = add_user(runner, secured, "alice")
    add_user(runner, secured, "bob")
    runner.ok("login", "alice", CHATBUS_PASSWORD=password)
    watcher = secured.receiver(secured.add_user("carol"))
    env = process_env(secured.settings, CHATBUS_LEASE_TTL=str(secured.settings.lease_ttl))
    with chatbus_process(["chat", "bob"], env) as process:
        assert process.stderr is not None
        wait_until(lambda: "alice" in watcher.online, 15, "alice online in her chat")
        runner.ok("admin", "reset-password", "alice")
        assert process.wait(timeout=10) == 1
        errors = process.stderr.read()
    assert re.fullmatch(r"Error: .*no longer accepts the key of 'alice'.*\n", errors), errors
    # Her lease, which nobody else may end, runs out.
    wait_until(lambda: "alice" not in watcher.online, 3 * secured.settings.lease_ttl, "offline")


# -- two people at real terminals ---------------------------------------------------


class SecuredWorld(World):
    """A :class:`World` on a secured hub: the admin adds the users, and a
    saved login holds the user's own key."""

    def __init__(self, secured: SecuredChat, tmp_path: Path) -> None:
        super().__init__(secured.settings, tmp_path)
        self.secured = secured

    def register(self, *names: str) -> None:
        for name in names:
            self.secured.add_user(name, PASSWORD)

    def logged_in(self, name: str) -> None:
        session = secured_login.login(self.settings, name, PASSWORD, saved=None)
        IdentityStore(self.home(name), self.settings.url, self.settings.namespace).save(session)


@pytest.fixture
def secured_world(secured_once: SecuredChat, tmp_path: Path) -> Iterator[SecuredWorld]:
    world = SecuredWorld(secured_once, tmp_path)
    try:
        yield world
    finally:
        for terminal in world.opened:
            terminal.close()
        world.hub.close()


def test_two_people_chat_at_terminals_on_a_secured_hub(secured_world: SecuredWorld) -> None:
    world = secured_world
    world.register("alice", "bob")
    alice = world.login("alice")
    alice.expect("nobody else is online")
    alice.expect("chat with>")
    bob = world.login("bob")
    bob.expect(r"1\) alice")
    alice.expect(r"1\) bob")  # her list updated live: bob appeared
    bob.enter("1")
    bob.expect("chat with alice")
    bob.enter("hello alice, on a secured hub")
    bob.expect(rf"{CLOCK} bob: hello alice, on a secured hub")
    alice.expect(r"1\) bob +1 unread")
    alice.enter("bob")
    alice.expect(rf"{CLOCK} bob: hello alice, on a secured hub")
    alice.enter("hi bob")
    bob.expect(rf"{CLOCK} alice: hi bob")
    alice.expect(rf"{CLOCK} alice: hi bob")
    bob.enter("/quit")
    bob.child.expect(pexpect.EOF)
    alice.expect("bob went offline")
    alice.enter("/quit")
    alice.child.expect(pexpect.EOF)
    bobs_mailbox = Mailbox(world.secured.hub_as(world.secured.users["bob"]), "bob")
    assert [m.envelope.body for m in bobs_mailbox.conversation("alice", 10).messages] == [
        "hello alice, on a secured hub",
        "hi bob",
    ]
