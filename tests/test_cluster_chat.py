"""chatbus on a Redis Cluster: the same commands and views, and nothing acknowledged lost
through a failover, a crash of a master or a slot moving to another master.

The fault tests share one cluster of their own (module scope), made whole
again after each test; the others use the session's ``cluster``.
"""

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import helpers
import pexpect
import pytest
import redis
from cli_helpers import Chatbus, one_line_error
from cluster_fixtures import fail_over, restore, start_cluster
from conftest import make_settings
from helpers import Recorder, wait_until
from terminals import world_of

from chatbus import accounts
from chatbus.config import Settings
from chatbus.errors import ChatbusError, HubUnavailable
from chatbus.hub import Hub
from chatbus.local_cluster import LocalCluster
from chatbus.messages import Mailbox
from chatbus.outbox import Outbox, Outgoing
from chatbus.presence import Lease, snapshot
from chatbus.receiver import Receiver, Timing
from chatbus.rooms import Rooms
from chatbus.server import ServerBinary

FAST = Timing(
    heartbeat=0.5, ping_after_idle=0.5, pong_deadline=3.0, backoff_max=0.5, topology_check=1.0
)


def names_on_different_masters(cluster: LocalCluster, settings: Settings) -> tuple[str, str]:
    """Two user names whose keys live on two different masters."""
    keys = settings.keys
    first = "alice"
    home = cluster.master_for(keys.mailbox(first)).port
    other = next(
        f"bob{i}" for i in range(100) if cluster.master_for(keys.mailbox(f"bob{i}")).port != home
    )
    return first, other


@pytest.fixture
def settings_on_cluster(cluster: LocalCluster, tmp_path: Path) -> Settings:
    return make_settings(cluster, tmp_path / "home")


@pytest.fixture
def hub_on_cluster(settings_on_cluster: Settings) -> Iterator[Hub]:
    hub = Hub(settings_on_cluster)
    yield hub
    hub.close()


def bodies(hub: Hub, owner: str) -> list[str]:
    return [m.envelope.body for m in Mailbox(hub, owner).read_after("0-0", 10_000).messages]


# -- the same commands and views ----------------------------------------------


def test_every_command_works_on_a_cluster_without_being_told(
    cluster: LocalCluster, settings_on_cluster: Settings, hub_on_cluster: Hub
) -> None:
    alice, bob = names_on_different_masters(cluster, settings_on_cluster)
    chatbus = Chatbus(settings_on_cluster)
    assert hub_on_cluster.cluster
    assert "Registered" in chatbus.ok("login", alice, CHATBUS_PASSWORD="password1").output
    assert "Registered" in chatbus.ok("login", bob, CHATBUS_PASSWORD="password1").output
    chatbus.ok("send", bob, "hello", "across", "masters", CHATBUS_USER=alice)
    lines = "".join(f"line {i}\n" for i in range(150))  # two batches
    chatbus.ok("send", bob, stdin=lines, CHATBUS_USER=alice)
    users = chatbus.ok("users", "--json", CHATBUS_USER=bob).stdout
    assert f'"unread": {{"{alice}": 151}}' in users
    history = chatbus.ok("history", alice, "--limit", "2", CHATBUS_USER=bob).stdout
    assert history.splitlines()[-1].endswith(f"{alice}: line 149")
    shown = chatbus.ok("chat", alice, "--history", "0", stdin="reply\n", CHATBUS_USER=bob).stdout
    assert shown.splitlines()[0].endswith(f"{alice}: hello across masters")
    assert bodies(hub_on_cluster, alice)[-1] == "reply"
    assert Mailbox(hub_on_cluster, bob).unread_counts() == {}
    # Rooms, each on the master of its own slot.
    chatbus.ok("join", "+ops", CHATBUS_USER=alice)
    chatbus.ok("join", "#dev", CHATBUS_USER=alice)
    chatbus.ok("join", "+OPS", CHATBUS_USER=bob)
    chatbus.ok("send", "+ops", f"@{bob}", "look", CHATBUS_USER=alice)
    rooms = chatbus.ok("rooms", "--json", CHATBUS_USER=bob).stdout
    assert '"room": "#ops"' in rooms and '"unread": 1, "mentions": 1' in rooms
    assert '"room": "#dev"' in rooms and '"member": false' in rooms
    members = chatbus.ok("members", "+ops", CHATBUS_USER=bob).stdout
    assert members.startswith("#ops: 2 members")
    room_history = chatbus.ok("history", "+ops", "--limit", "1", CHATBUS_USER=bob).stdout
    assert room_history.rstrip().endswith(f"{alice}: @{bob} look")
    passwd = chatbus.ok(
        "passwd", CHATBUS_USER=alice, CHATBUS_PASSWORD="password1", CHATBUS_NEW_PASSWORD="secret99"
    )
    assert "Changed the password" in passwd.output
    chatbus.ok("logout", CHATBUS_USER=alice)
    assert "is not logged in" in one_line_error(chatbus("whoami", CHATBUS_USER=alice))
    assert chatbus.ok("login", alice, CHATBUS_PASSWORD="secret99").exit_code == 0


def test_a_receiver_on_a_cluster_gets_messages_and_presence_from_two_masters(
    cluster: LocalCluster, settings_on_cluster: Settings, hub_on_cluster: Hub
) -> None:
    alice, bob = names_on_different_masters(cluster, settings_on_cluster)
    keys = settings_on_cluster.keys
    # The user's channel and the presence channel: two slots, here two masters.
    assert cluster.master_for(keys.inbox_channel(bob)).port != cluster.master_for(
        keys.users_channel
    ).port or cluster.master_for(keys.inbox_channel(alice)).port != (
        cluster.master_for(keys.users_channel).port
    )
    for name in (alice, bob):
        accounts.register(hub_on_cluster, name, "password1")
    recorder = Recorder()
    receiver = Receiver(hub_on_cluster, bob, recorder, after_id="0-0", timing=FAST)
    receiver.start()
    try:
        assert receiver.wait_connected(10)
        lease = Lease(hub_on_cluster, alice)
        lease.renew()
        wait_until(lambda: recorder.online == sorted([alice, bob]), 10, "alice online")
        Mailbox(hub_on_cluster, alice).send_many(bob, [f"m{i}" for i in range(150)])
        assert recorder.wait_for_bodies(150) == [f"m{i}" for i in range(150)]
        lease.release()
        wait_until(lambda: recorder.online == [bob], 10, "alice offline")
    finally:
        receiver.stop()
    assert receiver.stats.duplicates == 0


def test_two_people_chat_in_terminals_through_a_cluster(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    with world_of(make_settings(cluster, tmp_path / "home"), tmp_path) as world:
        world.register("alice", "bob")
        alice = world.login("alice")
        alice.expect("nobody else is online")
        bob = world.login("bob")
        bob.expect(r"1\) alice")
        bob.enter("1")
        bob.expect(r"\[alice\]")
        bob.enter("hi from the cluster")
        alice.expect(r"1\) bob  1 unread")
        alice.enter("bob")
        alice.expect(r"\d\d:\d\d bob: hi from the cluster")
        alice.enter("and back")
        bob.expect(r"\d\d:\d\d alice: and back")
        for terminal in (alice, bob):
            terminal.enter("/quit")
            terminal.child.expect(pexpect.EOF)


# -- faults -------------------------------------------------------------------


@pytest.fixture(scope="module")
def fault_cluster(
    tmp_path_factory: pytest.TempPathFactory, server_binary: ServerBinary
) -> Iterator[LocalCluster]:
    """A cluster these tests may damage; each test gets it whole."""
    own = start_cluster(server_binary, tmp_path_factory.mktemp("fault-cluster"))
    try:
        yield own
    finally:
        own.stop()


@pytest.fixture
def faulty(fault_cluster: LocalCluster, tmp_path: Path) -> Iterator[tuple[LocalCluster, Hub]]:
    """The fault cluster, whole, and a hub on it; made whole again afterwards."""
    restore(fault_cluster)
    hub = Hub(make_settings(fault_cluster, tmp_path / "home"))
    try:
        yield fault_cluster, hub
    finally:
        hub.close()
        for node in fault_cluster.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.send_signal(signal.SIGCONT)  # a test that paused one
        restore(fault_cluster)


class Sender(threading.Thread):
    """Sends ``count`` numbered messages one by one, keeping those the hub acknowledged."""

    def __init__(self, hub: Hub, sender: str, recipient: str, count: int, batch: int = 1) -> None:
        super().__init__(daemon=True)
        self.mailbox = Mailbox(hub, sender)
        self.recipient = recipient
        self.count = count
        self.batch = batch
        self.acknowledged: list[str] = []
        self.failed: list[str] = []
        self.errors: list[str] = []
        self.halfway = threading.Event()
        self.done_at = 0.0  # when the last send returned

    def run(self) -> None:
        for start in range(0, self.count, self.batch):
            texts = [f"m{i:04d}" for i in range(start, min(start + self.batch, self.count))]
            try:
                self.mailbox.send_many(self.recipient, texts)
            except ChatbusError as error:
                self.failed.extend(texts)
                self.errors.append(str(error))
            else:
                self.acknowledged.extend(texts)
            if start + self.batch >= self.count // 3:
                self.halfway.set()
            self.done_at = time.monotonic()
            time.sleep(0.005)  # a steady stream, not a burst over before the fault


def receive(hub: Hub, name: str) -> tuple[Recorder, Receiver]:
    return helpers.receive(hub, name, FAST)


def assert_every_acknowledged_message_once_in_order(
    recorder: Recorder, sender: Sender, timeout: float = 30
) -> None:
    sender.join(60)
    assert not sender.is_alive()
    acknowledged = set(sender.acknowledged)
    wait_until(
        lambda: acknowledged <= set(recorder.bodies()), timeout, "every acknowledged message"
    )
    got = recorder.bodies()
    assert len(got) == len(set(got)), "a message arrived twice"
    assert got == sorted(got), "messages out of order"


@dataclass
class Stream:
    """alice writing to bob, on masters of their own, with bob receiving."""

    sender: Sender
    receiver: Receiver
    bob_key: str  # a key in bob's slot


@contextmanager
def stream_through_a_fault(cluster: LocalCluster, hub: Hub) -> Iterator[Stream]:
    """Start the stream; the body makes its fault a third of the way in. Then
    every acknowledged message arrives once, in order, and no send failed."""
    alice, bob = names_on_different_masters(cluster, hub.settings)
    for name in (alice, bob):
        accounts.register(hub, name, "password1")
    recorder, receiver = receive(hub, bob)
    try:
        sender = Sender(hub, alice, bob, 300)
        sender.start()
        assert sender.halfway.wait(30)
        yield Stream(sender, receiver, hub.keys.mailbox(bob))
        assert_every_acknowledged_message_once_in_order(recorder, sender)
        assert sender.errors == []  # a send rides out the fault
        assert set(sender.acknowledged) <= set(bodies(hub, bob))
    finally:
        receiver.stop()


def test_a_receiver_follows_a_manual_failover_of_its_master(
    faulty: tuple[LocalCluster, Hub],
) -> None:
    cluster, hub = faulty
    with stream_through_a_fault(cluster, hub) as stream:
        master = cluster.master_for(stream.bob_key)
        replica = next(r for r in cluster.topology() if r.master_port == master.port)
        with redis.Redis(port=replica.port) as client:
            client.execute_command("CLUSTER", "FAILOVER")
        wait_until(
            lambda: cluster.master_for(stream.bob_key).port == replica.port,
            15,
            "the replica to take over",
        )
    assert stream.receiver.stats.resubscribes + stream.receiver.stats.reconnects >= 1


def test_nothing_acknowledged_is_lost_when_the_recipients_master_is_killed(
    faulty: tuple[LocalCluster, Hub],
) -> None:
    cluster, hub = faulty
    with stream_through_a_fault(cluster, hub) as stream:
        fail_over(cluster, cluster.master_for(stream.bob_key).port)


def test_a_batched_send_rides_out_a_failover(faulty: tuple[LocalCluster, Hub]) -> None:
    cluster, hub = faulty
    alice, bob = names_on_different_masters(cluster, hub.settings)
    for name in (alice, bob):
        accounts.register(hub, name, "password1")
    sender = Sender(hub, alice, bob, 3000, batch=100)
    sender.start()
    assert sender.halfway.wait(30)
    fail_over(cluster, cluster.master_for(hub.keys.mailbox(bob)).port)
    sender.join(60)
    assert sender.failed == []
    stored = bodies(hub, bob)
    assert stored == sorted(set(stored)) == [f"m{i:04d}" for i in range(3000)]
    assert Mailbox(hub, bob).unread_counts() == {alice: 3000}  # each counted once


def test_the_recipients_slot_moves_to_another_master_while_chatting(
    faulty: tuple[LocalCluster, Hub],
) -> None:
    cluster, hub = faulty
    with stream_through_a_fault(cluster, hub) as stream:
        slot = hub.topology.slot(stream.bob_key)
        source = cluster.master_for(stream.bob_key)
        target = next(r for r in cluster.topology() if r.is_master and r.port != source.port)
        migrate_slot(cluster, slot, source.port, target.port)
    assert cluster.master_for(stream.bob_key).port == target.port


def migrate_slot(cluster: LocalCluster, slot: int, source: int, target: int) -> None:
    """Move ``slot`` with its keys from one master to another, as redis-cli --cluster does."""
    roles = {role.port: role for role in cluster.topology()}
    with redis.Redis(port=source) as src, redis.Redis(port=target) as dst:
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", roles[source].node_id)
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", roles[target].node_id)
        while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 10):
            src.execute_command("MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", *keys)
        for port, role in roles.items():
            if role.is_master:
                with redis.Redis(port=port) as node:
                    node.execute_command("CLUSTER", "SETSLOT", slot, "NODE", roles[target].node_id)


def test_presence_survives_a_kill_of_its_master_and_leaves_no_ghost(
    faulty: tuple[LocalCluster, Hub],
) -> None:
    cluster, hub = faulty
    for name in ("alice", "bob", "ghost"):
        accounts.register(hub, name, "password1")
    recorder, receiver = receive(hub, "bob")
    try:
        Lease(hub, "ghost").renew()  # a client that crashes with the master
        _, alice = receive(hub, "alice")
        try:
            wait_until(lambda: recorder.online == ["alice", "bob", "ghost"], 10, "all online")
            fail_over(cluster, cluster.master_for(hub.keys.users_channel).port)
            # The list resyncs, and the ghost's lease runs out with nobody renewing it.
            wait_until(lambda: recorder.online == ["alice", "bob"], 30, "the ghost to leave")
            wait_until(lambda: snapshot(hub)[1] == ["alice", "bob"], 10, "the hub's list")
        finally:
            alice.stop()
        wait_until(lambda: recorder.online == ["bob"], 10, "alice to leave")
    finally:
        receiver.stop()


def test_a_send_is_done_only_once_a_replica_has_it(faulty: tuple[LocalCluster, Hub]) -> None:
    """With the recipient's replica frozen, the send waits: it is not reported
    done before the cluster gives up on that replica (then it has none)."""
    cluster, hub = faulty
    alice, bob = names_on_different_masters(cluster, hub.settings)
    for name in (alice, bob):
        accounts.register(hub, name, "password1")
    master = cluster.master_for(hub.keys.mailbox(bob))
    replica = next(r for r in cluster.topology() if r.master_port == master.port)
    sender = Sender(hub, alice, bob, 1)
    cluster.node(replica.port).process.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]
    sender.start()
    still_listed = 0.0  # the latest moment the replica was seen not failed

    def replica_failed() -> bool:
        nonlocal still_listed
        asked = time.monotonic()
        with redis.Redis(port=master.port, decode_responses=True) as client:
            nodes = client.execute_command("CLUSTER", "NODES")
        line = next(line for line in nodes.splitlines() if line.startswith(replica.node_id))
        if "fail" in line.split()[2].split(","):
            return True
        still_listed = asked
        return False

    wait_until(replica_failed, 15, "the cluster to mark the frozen replica failed")
    sender.join(20)
    assert sender.acknowledged == ["m0000"]
    assert sender.done_at > still_listed, "reported done while a replica had not confirmed it"


def test_a_user_stays_online_while_their_inbox_master_fails_over(
    faulty: tuple[LocalCluster, Hub],
) -> None:
    cluster, hub = faulty
    presence_master = cluster.master_for(hub.keys.users_channel).port
    bob = next(
        f"bob{i}"
        for i in range(100)
        if cluster.master_for(hub.keys.mailbox(f"bob{i}")).port != presence_master
    )
    for name in ("alice", bob):
        accounts.register(hub, name, "password1")
    watcher, alice = receive(hub, "alice")
    _, receiver = receive(hub, bob)
    try:
        wait_until(lambda: watcher.online == ["alice", bob], 10, "bob online")
        fail_over(cluster, cluster.master_for(hub.keys.mailbox(bob)).port)
        wait_until(lambda: receiver.stats.reconnects >= 1 and receiver.connected, 20, "reconnect")
        # Presence never failed: bob's lease was renewed all along.
        assert [e for e in watcher.events if e.name == bob and e.kind == "leave"] == []
    finally:
        receiver.stop()
        alice.stop()


def test_typing_during_a_failover_does_not_wait_for_it(faulty: tuple[LocalCluster, Hub]) -> None:
    """The chat's input thread sends once; what cannot go waits in the outbox."""
    cluster, hub = faulty
    alice, bob = names_on_different_masters(cluster, hub.settings)
    for name in (alice, bob):
        accounts.register(hub, name, "password1")
    sent = threading.Event()

    class Reports:
        def on_pending(self, item: Outgoing, reason: str) -> None:
            """It waits: shown as pending."""

        def on_sent(self, item: Outgoing) -> None:
            sent.set()

        def on_failed(self, item: Outgoing, error: ChatbusError) -> None:
            raise AssertionError(error)

    outbox = Outbox(Mailbox(hub, alice), Reports())
    master = cluster.master_for(hub.keys.mailbox(bob))
    replica = next(r for r in cluster.topology() if r.master_port == master.port)
    cluster.kill_node(master.port)
    outbox.submit(bob, ["typed during the failover"])
    # Back at once, the line waiting: its replica has not taken over yet.
    assert outbox.waiting() == 1
    assert not next(r for r in cluster.topology() if r.port == replica.port).is_master
    assert sent.wait(30)
    assert bodies(hub, bob) == ["typed during the failover"]


def test_a_client_that_has_met_the_cluster_gets_in_with_the_urls_node_down(
    faulty: tuple[LocalCluster, Hub], tmp_path: Path
) -> None:
    cluster, hub = faulty
    accounts.register(hub, "alice", "password1")  # connected once: the nodes are known
    seed = cluster.url.rsplit(":", 1)[1].split("/")[0]
    seed_role = next(role for role in cluster.topology() if role.port == int(seed))
    if seed_role.is_master:
        fail_over(cluster, seed_role.port)
    else:
        cluster.kill_node(seed_role.port)
    again = Hub(hub.settings)
    try:
        assert accounts.registered_name(again, "alice") == "alice"
    finally:
        again.close()
    # A machine that never reached the cluster has only the URL: it says what to do.
    stranger = Hub(make_settings(cluster, tmp_path / "stranger", namespace=hub.settings.namespace))
    try:
        with pytest.raises(HubUnavailable, match=r"for a cluster: any node that is up"):
            accounts.registered_name(stranger, "alice")
    finally:
        stranger.close()


def test_a_room_on_a_cluster_rides_out_a_kill_of_its_master(
    faulty: tuple[LocalCluster, Hub],
) -> None:
    cluster, hub = faulty
    # Rooms spread over the masters: each under its own hash tag.
    owners = {cluster.master_for(hub.keys.room_log(f"#room{i}")).port for i in range(12)}
    assert len(owners) > 1
    alice, bob = names_on_different_masters(cluster, hub.settings)
    for name in (alice, bob):
        accounts.register(hub, name, "password1")
        Rooms(hub, name).join("#ops")
    recorder = Recorder()
    receiver = Receiver(hub, bob, recorder, after_id="0-0", timing=FAST)
    receiver.start()
    assert receiver.wait_connected(10)
    try:
        sender = Sender(hub, alice, "#ops", 300)
        sender.start()
        assert sender.halfway.wait(30)
        fail_over(cluster, cluster.master_for(hub.keys.room_log("#ops")).port)
        sender.join(60)
        assert sender.errors == []  # every post rode out the failover

        def posted() -> list[str]:
            return [m.envelope.body for m in recorder.messages if not m.envelope.event]

        wait_until(lambda: set(sender.acknowledged) <= set(posted()), 30, "every post")
        assert posted() == sorted(set(posted())), "a post twice, or out of order"
        assert Rooms(hub, bob).position("#ops")[1] == 300  # numbered once each
    finally:
        receiver.stop()
