"""What a user of a secured hub cannot do with a Redis client of their own.

Alice holds her own credentials, as ``chatbus whoami --redis-url`` gives
them, and attacks; Bob and Carol are the victims. Each test runs on a real
secured hub, one server and a cluster of 3 masters and 3 replicas (a
cluster's ACLs are per node, so what alice may run is tried on every node),
and checks what a victim would notice: Bob's history, unread counts and
live view through a running :class:`~chatbus.receiver.Receiver`, his online
list, his login; not only the refusal's text.

What a user may do in others' space, by design (docs/SECURITY.md), and is
shown here to be harmless: write their own stream in a recipient's slot
(``NS:{bob}:from:alice``), ``SADD`` any name to a recipient's ``senders``
set, ring a recipient's bell with any payload, read the directory and
everyone's presence, and publish on the users channel (a claim, checked
against the named user's own lease). ``PUBSUB`` is refused: chatbus never
needs it, and it would tell who has which channel open.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from cli_helpers import Chatbus
from helpers import wait_until
from secured_fixtures import FAST, Running, SecuredChat, User

from chatbus import accounts, lua, secured_login
from chatbus.acl import hub_secret
from chatbus.envelope import new_envelope
from chatbus.errors import AccessRefused, ChatbusError, HubRefused, WrongPassword
from chatbus.hub import Credentials, Hub
from chatbus.messages import Mailbox
from chatbus.presence import Lease, snapshot

MAX_BODY = 4096


# -- the cast ---------------------------------------------------------------------


@dataclass
class Cast:
    """Alice the attacker, with her raw client; Bob and Carol, the victims."""

    secured: SecuredChat
    alice: User
    bob: User
    carol: User
    raw: "redis.Redis | redis.RedisCluster"  # alice's, on her --redis-url

    def mailbox(self, user: User) -> Mailbox:
        """``user``'s mailbox through chatbus, as that user."""
        return Mailbox(self.secured.hub_as(user), user.name)

    def history(self, owner: User, peer: User) -> list[tuple[str, str]]:
        """(sender, body) of the conversation ``owner`` sees with ``peer``."""
        page = self.mailbox(owner).conversation(peer.name, 100)
        return [(m.envelope.sender, m.envelope.body) for m in page.messages]


@pytest.fixture
def cast(secured: SecuredChat) -> Cast:
    alice = secured.add_user("Alice")
    bob = secured.add_user("Bob")
    carol = secured.add_user("Carol")
    return Cast(secured, alice, bob, carol, secured.raw(alice))


# -- refusals -----------------------------------------------------------------------

Command = tuple[Any, ...]


def is_refusal(error: Exception) -> bool:
    """NOPERM, whether for a command, a key or a channel, or inside a script."""
    return "no permissions" in str(error).lower()


def is_protected(error: Exception) -> bool:
    """DEBUG and MODULE: refused to everyone, the admin too, unless the server's
    config allows them (``enable-debug-command``, ``enable-module-command``)."""
    return "command not allowed. If the enable-" in str(error)


def not_refused(
    client: Any, commands: Sequence[Command], *, protected: bool = False
) -> dict[str, str]:
    """Run each command as ``client``; those the hub did not refuse (NOPERM; or
    with ``protected``, a protected command's refusal), and what happened instead."""
    failures: dict[str, str] = {}
    for command in commands:
        what = " ".join(str(word) for word in command)[:120]
        try:
            reply = client.execute_command(*command)
        except redis.exceptions.ResponseError as error:
            if not (is_refusal(error) or (protected and is_protected(error))):
                failures[what] = f"not a refusal: {error}"
        else:
            failures[what] = f"ran: {reply!r:.100}"
    return failures


def assert_refused(client: Any, commands: Sequence[Command]) -> None:
    failures = not_refused(client, commands)
    assert not failures, f"allowed to {len(failures)} of {len(commands)} commands: {failures}"


def assert_refused_everywhere(
    secured: SecuredChat, user: User, commands: Sequence[Command]
) -> None:
    """Each command refused on every node (masters and replicas), as ``user``:
    tried for real, and asked of the node's ACL (``ACL DRYRUN``), which must
    refuse it whatever else would (DEBUG and MODULE are also refused to
    everyone by the server's config)."""
    failures = {}
    for client, admin in zip(secured.nodes(user), secured.admin_nodes(), strict=True):
        port = client.connection_pool.connection_kwargs["port"]
        for what, why in not_refused(client, commands, protected=True).items():
            failures[f"node {port}: {what}"] = why
        dry = round_trip(admin, [("ACL", "DRYRUN", user.name.lower(), *c) for c in commands])
        for command, verdict in zip(commands, dry, strict=True):
            if verdict == b"OK" or isinstance(verdict, Exception):
                failures[f"node {port}: ACL DRYRUN {command}"] = repr(verdict)
    assert not failures, failures


def round_trip(client: redis.Redis, commands: Sequence[Command]) -> list[Any]:
    """Commands pipelined on one connection, replies raw (errors as values):
    redis-py's reply parsers do not know COMMAND GETKEYS or ACL DRYRUN."""
    pool = client.connection_pool
    connection = pool.get_connection()
    try:
        connection.send_packed_command(connection.pack_commands(commands))
        replies: list[Any] = []
        for _ in commands:
            try:
                replies.append(connection.read_response())
            except redis.exceptions.ResponseError as error:
                replies.append(error)
        return replies
    finally:
        pool.release(connection)


def command_table(admin: redis.Redis) -> list[tuple[str, int, set[str]]]:
    """Every command and subcommand of the hub: name, arity, ACL categories."""
    [reply] = round_trip(admin, [("COMMAND",)])
    table: list[tuple[str, int, set[str]]] = []

    def walk(entries: list[Any]) -> None:
        for entry in entries:
            table.append((entry[0].decode(), entry[1], {c.decode() for c in entry[6]}))
            walk(entry[9] if len(entry) > 9 else [])

    walk(reply)
    return table


# How the hub says a command uses a key (COMMAND GETKEYSANDFLAGS), in the terms
# its ACLs check: reading it (its value, or anything about it), or changing it.
READS = frozenset({b"RO", b"access"})
WRITES = frozenset({b"insert", b"update", b"delete"})


def permitted_on(
    secured: SecuredChat, user: User, keys: Sequence[str], uses: frozenset[bytes]
) -> list[str]:
    """Every command that ``user`` may run on any of ``keys`` in one of the
    ways ``uses`` names (:data:`READS`, :data:`WRITES`), by ``ACL DRYRUN`` on
    every node: "COMMAND KEY" for each.

    Every command of the hub is tried with the key in all its arguments: those
    in which the hub finds that key alone (``COMMAND GETKEYSANDFLAGS``, as the
    admin), used that way, are asked about. Commands whose keys this cannot
    place (XREAD, SORT ... STORE, EVAL, FCALL) are tried for real elsewhere.
    """
    admin = secured.admin_nodes()[0]
    cases: list[tuple[str, Command]] = []
    for name, arity, _ in command_table(admin):
        words = name.split("|")
        count = arity - len(words) if arity > 0 else max(-arity - len(words), 1)
        if count >= 1:
            cases += [(f"{name} {key}", (*words, *[key] * count)) for key in keys]
    found = round_trip(admin, [("COMMAND", "GETKEYSANDFLAGS", *case) for _, case in cases])
    checked = [
        (what, case)
        for (what, case), got in zip(cases, found, strict=True)
        if isinstance(got, list)
        and got
        and {key for key, _ in got} == {case[-1].encode()}
        and any(uses.intersection(flags) for _, flags in got)
    ]
    assert len(checked) > 20 * len(keys), f"only {len(checked)} commands to check"
    allowed: set[str] = set()
    for node in secured.admin_nodes():
        port = node.connection_pool.connection_kwargs["port"]
        answers = round_trip(
            node, [("ACL", "DRYRUN", user.name.lower(), *case) for _, case in checked]
        )
        for (what, _), answer in zip(checked, answers, strict=True):
            if answer == b"OK":
                allowed.add(what)
            elif not is_refusal(Exception(answer)):  # "User 'alice' not found", say
                allowed.add(f"{what} (node {port}: {answer!r})")
    return sorted(allowed)


# -- waiting for what a victim sees -------------------------------------------------


def sync_through(cast: Cast, watcher: Running, body: str) -> None:
    """Alice sends ``body`` to the watcher's owner the way chatbus does, and
    the watcher shows it: whatever alice did before has been seen too."""
    cast.mailbox(cast.alice).send(watcher.receiver.name, body)
    wait_until(lambda: body in watcher.recorder.bodies(), 10, f"{body!r} shown")


def shown(watcher: Running) -> list[tuple[str, str]]:
    """(sender, body) of every message the watcher's live view was given."""
    return [(m.envelope.sender, m.envelope.body) for m in list(watcher.recorder.messages)]


def forged(sender: str, recipient: str, body: str) -> bytes:
    return new_envelope(sender, recipient, body, MAX_BODY).encode()


def admin_cli(secured: SecuredChat) -> Chatbus:
    """``chatbus admin ...`` in-process, with the admin URL in CHATBUS_ADMIN_URL."""
    chatbus = Chatbus(secured.settings)
    chatbus.env["CHATBUS_ADMIN_URL"] = secured.hub.admin_url
    return chatbus


# == reading ==========================================================================


def victims_keys(cast: Cast) -> list[str]:
    """Everything of Bob's, and the messages waiting between Bob and Carol."""
    keys = cast.secured.keys
    return [
        keys.mailbox("bob"),
        keys.unread("bob"),
        keys.sessions("bob"),
        keys.account("bob"),
        keys.senders("bob"),
        keys.login_failures("bob"),
        keys.from_stream("bob", "carol"),  # Carol's messages Bob has not taken in yet
        keys.from_stream("carol", "bob"),  # and Bob's to Carol
    ]


def test_no_read_command_opens_another_users_keys(cast: Cast) -> None:
    assert permitted_on(cast.secured, cast.alice, victims_keys(cast), READS) == []


def test_reading_another_users_mailbox_counts_sessions_or_account_is_refused(
    cast: Cast,
) -> None:
    keys = cast.secured.keys
    cast.mailbox(cast.carol).send("Bob", "for bob only")
    assert cast.mailbox(cast.bob).unread_counts() == {"Carol": 1}  # in his mailbox now
    cast.mailbox(cast.carol).send("Bob", "still waiting")  # in Carol's stream to Bob
    cast.mailbox(cast.bob).send("Carol", "bob to carol")  # in Bob's stream to Carol
    mailbox, pending = keys.mailbox("bob"), keys.from_stream("bob", "carol")
    assert_refused(
        cast.raw,
        [
            ("XRANGE", mailbox, "-", "+"),
            ("XREVRANGE", mailbox, "+", "-"),
            ("XLEN", mailbox),
            ("XREAD", "STREAMS", mailbox, "0-0"),
            ("XINFO", "STREAM", mailbox, "FULL"),
            ("HGETALL", keys.unread("bob")),
            ("HGET", keys.unread("bob"), "Carol"),
            ("HKEYS", keys.unread("bob")),
            ("HGETALL", keys.sessions("bob")),
            ("HGETALL", keys.account("bob")),
            ("HGET", keys.account("bob"), "name"),
            ("SMEMBERS", keys.senders("bob")),
            ("XRANGE", pending, "-", "+"),
            ("XRANGE", keys.from_stream("carol", "bob"), "-", "+"),
            ("EXISTS", mailbox),
            ("TYPE", mailbox),
            ("DUMP", mailbox),
            ("OBJECT", "ENCODING", mailbox),
            ("MEMORY", "USAGE", mailbox),
            ("SORT_RO", keys.senders("bob"), "ALPHA"),
        ],
    )
    # chatbus itself, pointed at Bob's mailbox with Alice's key, is refused too.
    alice_hub = cast.secured.hub_as(cast.alice)
    with pytest.raises(HubRefused, match="does not allow"):
        Mailbox(alice_hub, "Bob").read_after("0-0")
    with pytest.raises(HubRefused, match="does not allow"):
        Mailbox(alice_hub, "Bob").unread_counts()
    # What there was to read: Bob's view is whole (what waited, taken in last).
    assert cast.history(cast.bob, cast.carol) == [
        ("Carol", "for bob only"),
        ("Bob", "bob to carol"),
        ("Carol", "still waiting"),
    ]


def test_scripts_cannot_read_another_users_keys(cast: Cast) -> None:
    keys = cast.secured.keys
    cast.mailbox(cast.carol).send("Bob", "secret")
    assert cast.mailbox(cast.bob).unread_counts() == {"Carol": 1}
    mailbox = keys.mailbox("bob")
    read = "return redis.call('XRANGE', KEYS[1], '-', '+')"
    undeclared = "return redis.call('XRANGE', ARGV[1], '-', '+')"
    guarded = "return redis.pcall('XRANGE', ARGV[1], '-', '+')"
    behind_own = "redis.call('EXISTS', KEYS[1]); return redis.call('HGETALL', ARGV[1])"
    # On the node that serves Bob's keys, where the script could reach them.
    node = cast.secured.node_for(mailbox, cast.alice)
    shas = {source: node.script_load(source) for source in (read, undeclared, guarded, behind_own)}
    assert_refused(
        node,
        [
            ("EVAL", read, 1, mailbox),
            ("EVAL_RO", read, 1, mailbox),
            ("EVAL", undeclared, 0, mailbox),
            ("EVALSHA", shas[read], 1, mailbox),
            ("EVALSHA_RO", shas[read], 1, mailbox),
            ("EVALSHA", shas[undeclared], 0, mailbox),
            ("EVALSHA", shas[guarded], 0, mailbox),
            # Declaring a key of her own in Bob's slot: her stream to him.
            ("EVALSHA", shas[behind_own], 1, keys.from_stream("bob", "alice"), keys.unread("bob")),
            ("EVALSHA", shas[undeclared], 0, keys.from_stream("bob", "carol")),
            ("EVALSHA", shas[undeclared], 0, keys.sessions("bob")),
        ],
    )
    # chatbus's own take-in script, run by Alice on Bob's keys, moves nothing.
    ingest = lua.load("ingest.lua")
    node.script_load(ingest.source)
    ingest_keys = [
        mailbox,
        keys.unread("bob"),
        keys.from_stream("bob", "carol"),
        keys.senders("bob"),
    ]
    assert_refused(
        node,
        [("EVALSHA", ingest.sha, 4, *ingest_keys, keys.inbox_channel("bob"), 100, "carol", "bob",
          30000, 500)],
    )  # fmt: skip
    assert cast.history(cast.bob, cast.carol) == [("Carol", "secret")]


def test_functions_cannot_be_loaded_or_called(cast: Cast) -> None:
    keys = cast.secured.keys
    mailbox = keys.mailbox("bob")
    library = f"reader{cast.secured.settings.namespace}"
    code = (
        f"#!lua name={library}\n"
        "redis.register_function('readit', function(keys, args) "
        "return redis.call('XRANGE', keys[1], '-', '+') end)"
    )
    # The admin has loaded a function that reads a key, on the node serving Bob's.
    admin = cast.secured.admin_for(mailbox)
    admin.execute_command("FUNCTION", "LOAD", code)
    try:
        node = cast.secured.node_for(mailbox, cast.alice)
        assert_refused(
            node,
            [
                ("FUNCTION", "LOAD", code.replace(library, library + "x")),
                ("FUNCTION", "LOAD", "REPLACE", code),
                ("FCALL", "readit", 1, mailbox),
                ("FCALL_RO", "readit", 1, mailbox),
                ("FCALL", "readit", 1, keys.account("alice")),
                ("FUNCTION", "LIST", "WITHCODE"),
                ("FUNCTION", "DUMP"),
                ("FUNCTION", "DELETE", library),
                ("FUNCTION", "FLUSH"),
                ("FUNCTION", "KILL"),
                ("FUNCTION", "STATS"),
                ("FUNCTION", "RESTORE", b"\x00", "REPLACE"),
            ],
        )
        listed = admin.execute_command("FUNCTION", "LIST", "LIBRARYNAME", library)
        assert len(listed) == 1  # still there, and alone
    finally:
        admin.execute_command("FUNCTION", "DELETE", library)


# == subscribing ======================================================================


def subscribe(client: redis.Redis, command: str, channel: str) -> Any:
    """A connection of ``client`` that sent ``command channel``: the connection
    if subscribed, else the error the hub answered."""
    connection = client.connection_pool.make_connection()
    connection.connect()
    connection.send_command(command, channel)
    try:
        connection.read_response()
    except redis.exceptions.ResponseError as error:
        connection.disconnect()
        return error
    return connection


def test_another_users_channels_cannot_be_subscribed_to(cast: Cast) -> None:
    keys = cast.secured.keys
    bob = cast.secured.receiver(cast.bob)
    inbox, bell = keys.inbox_channel("bob"), keys.bell_channel("bob")
    # On the node Bob's channels are on; RESP2, where what is heard is a plain reply.
    node = cast.secured.node(cast.secured.hub.master_port(inbox), cast.alice, protocol=2)
    attempts = {
        f"{command} {channel}": subscribe(node, command, channel)
        for command, channel in [
            ("SSUBSCRIBE", inbox),
            ("SSUBSCRIBE", bell),
            ("SUBSCRIBE", inbox),
            ("SUBSCRIBE", bell),
            ("PSUBSCRIBE", "*"),
            ("PSUBSCRIBE", f"{keys.namespace}:{{bob}}:*"),
        ]
    }
    cast.mailbox(cast.carol).send("Bob", "private words")
    wait_until(lambda: "private words" in bob.recorder.bodies(), 10, "Bob gets Carol's message")
    listening = {
        what: connection.can_read(timeout=0.5)  # heard the delivery
        for what, connection in attempts.items()
        if not isinstance(connection, Exception)
    }
    for connection in attempts.values():
        if not isinstance(connection, Exception):
            connection.disconnect()
    assert listening == {}, f"subscribed: {listening}"
    refusals = {what: is_refusal(error) for what, error in attempts.items()}
    assert all(refusals.values()), attempts
    # Which channels are open, and by how many, is not for users to see either.
    assert_refused(
        node,
        [
            ("PUBSUB", "CHANNELS"),
            ("PUBSUB", "SHARDCHANNELS"),
            ("PUBSUB", "NUMSUB", inbox),
            ("PUBSUB", "SHARDNUMSUB", inbox),
            ("PUBSUB", "NUMPAT"),
        ],
    )


# == forging a sender ===================================================================


def test_an_envelope_in_ones_own_stream_claiming_another_sender_is_dropped(
    cast: Cast,
) -> None:
    """Alice may write her stream to Bob, and writes envelopes that lie."""
    keys = cast.secured.keys
    bob = cast.secured.receiver(cast.bob)
    stream = keys.from_stream("bob", "alice")
    cast.raw.sadd(keys.senders("bob"), "alice")
    cast.raw.xadd(stream, {"m": forged("Carol", "Bob", "from carol, honest")})
    cast.raw.xadd(stream, {"m": forged("carol", "bob", "lower case carol")})
    cast.raw.xadd(stream, {"m": forged("Alice", "Carol", "misaddressed to carol")})
    cast.raw.spublish(keys.bell_channel("bob"), "alice")
    sync_through(cast, bob, "genuine from alice")
    # Bob's live view, history, and unread counts show Alice's own message only.
    assert shown(bob) == [("Alice", "genuine from alice")]
    assert bob.receiver.stats.dropped["forged-sender"] == 3
    assert cast.history(cast.bob, cast.carol) == []
    assert cast.history(cast.bob, cast.alice) == [("Alice", "genuine from alice")]
    assert cast.mailbox(cast.bob).unread_counts() == {"Alice": 1}
    # Carol got nothing, and Bob's client left nothing of it behind.
    assert cast.mailbox(cast.carol).unread_counts() == {}
    assert cast.history(cast.carol, cast.alice) == []
    assert cast.secured.admin_for(stream).exists(stream) == 0


def test_only_carol_writes_carols_stream_and_a_bell_naming_her_brings_nothing_else(
    cast: Cast,
) -> None:
    keys = cast.secured.keys
    bob = cast.secured.receiver(cast.bob)
    cast.mailbox(cast.carol).send("Bob", "carol's real words")
    wait_until(lambda: "carol's real words" in bob.recorder.bodies(), 10, "Carol's message")
    carols = keys.from_stream("bob", "carol")
    deliver = lua.load("deliver.lua")
    cast.raw.script_load(deliver.source)
    assert_refused(
        cast.raw,
        [
            ("XADD", carols, "*", "m", forged("Carol", "Bob", "alice writing as carol")),
            ("EVALSHA", deliver.sha, 1, carols, keys.bell_channel("bob"), 100, "", 0, "carol",
             forged("Carol", "Bob", "alice writing as carol, by script")),
        ],
    )  # fmt: skip
    # What anyone may do: name Carol in Bob's senders and ring his bell for her
    # (and ring it with junk). Bob's client then reads Carol's stream: only hers.
    cast.raw.sadd(keys.senders("bob"), "carol", "nobody", "not a name!")
    for payload in ("carol", "Carol", "x" * 100_000, "\x1b[2J", "", "bob"):
        cast.raw.spublish(keys.bell_channel("bob"), payload)
    sync_through(cast, bob, "marker")
    assert shown(bob) == [("Carol", "carol's real words"), ("Alice", "marker")]
    assert cast.history(cast.bob, cast.carol) == [("Carol", "carol's real words")]
    assert cast.mailbox(cast.bob).unread_counts() == {"Carol": 1, "Alice": 1}
    assert bob.receiver.connected


def test_another_users_mailbox_counts_and_inbox_cannot_be_written(cast: Cast) -> None:
    """The open hub's way of sending (into the recipient's mailbox, announced
    on their inbox) and a fake announcement are all refused."""
    keys = cast.secured.keys
    bob = cast.secured.receiver(cast.bob)
    mailbox, unread, inbox = keys.mailbox("bob"), keys.unread("bob"), keys.inbox_channel("bob")
    fake = forged("Carol", "Bob", "fake carol")
    deliver, ingest = lua.load("deliver.lua"), lua.load("ingest.lua")
    cast.raw.script_load(deliver.source)
    cast.raw.script_load(ingest.source)
    far_future = f"{int(time.time() * 1000) + 1000}-0"
    # A lie waits in her own stream to Bob; she would take it in herself, as Carol's.
    cast.raw.xadd(keys.from_stream("bob", "alice"), {"m": fake})
    assert_refused(
        cast.raw,
        [
            ("XADD", mailbox, "*", "m", fake),
            ("HINCRBY", unread, "Carol", 5),
            ("HSET", unread, "Carol", 5),
            ("SPUBLISH", inbox, f"{far_future} ".encode() + fake),
            ("SPUBLISH", inbox, b"1-1 " + fake),
            ("PUBLISH", inbox, b"1-1 " + fake),
            ("EVALSHA", deliver.sha, 3, mailbox, unread, keys.account("bob"), inbox, 100, "Carol",
             0, "", fake),
            ("EVALSHA", ingest.sha, 4, mailbox, unread, keys.from_stream("bob", "alice"),
             keys.senders("bob"), inbox, 100, "carol", "bob", 30000, 500),
        ],
    )  # fmt: skip
    sync_through(cast, bob, "marker")  # (Bob's client drops the lie as it takes it in)
    assert shown(bob) == [("Alice", "marker")]
    assert cast.history(cast.bob, cast.carol) == []
    assert cast.mailbox(cast.bob).unread_counts() == {"Alice": 1}


# == deleting, trimming, overwriting ==================================================


def test_no_write_command_touches_another_users_keys(cast: Cast) -> None:
    keys = cast.secured.keys
    others = [
        *victims_keys(cast),
        keys.directory,
        keys.online_until("carol"),
        keys.lease_of("carol"),
    ]
    # Adding a name to a recipient's senders set is what delivery needs (and
    # all it may do there: SREM, DEL and the rest are refused).
    assert permitted_on(cast.secured, cast.alice, others, WRITES) == [f"sadd {keys.senders('bob')}"]


def test_another_users_data_cannot_be_deleted_trimmed_or_overwritten(cast: Cast) -> None:
    keys = cast.secured.keys
    carol = cast.mailbox(cast.carol)
    carol.send("Bob", "c1")
    assert cast.mailbox(cast.bob).unread_counts() == {"Carol": 1}  # taken in
    carol.send("Bob", "c2")  # waiting in Carol's stream to Bob
    mailbox, unread, pending = (
        keys.mailbox("bob"),
        keys.unread("bob"),
        keys.from_stream("bob", "carol"),
    )
    bobs = [
        mailbox,
        unread,
        keys.sessions("bob"),
        keys.account("bob"),
        keys.senders("bob"),
        pending,
    ]
    commands: list[Command] = [
        ("XADD", mailbox, "MAXLEN", "0", "*", "m", "x"),
        ("XADD", pending, "MAXLEN", "0", "*", "m", "x"),
        ("XTRIM", mailbox, "MAXLEN", "0"),
        ("XTRIM", pending, "MAXLEN", "0"),
        ("XTRIM", pending, "MINID", "99999999999999"),
        ("XDEL", mailbox, "0-1"),
        ("XDEL", pending, "0-1"),
        ("XSETID", mailbox, "99999999999999-0"),
        ("HDEL", unread, "Carol"),
        ("HSET", unread, "Carol", "0"),
        ("HSET", keys.account("bob"), "name", "Mallory"),
        ("HDEL", keys.sessions("bob"), "x"),
        ("SREM", keys.senders("bob"), "carol"),
        ("SET", mailbox, "overwritten"),
        ("HDEL", keys.directory, "bob"),
        ("HSET", keys.directory, "bob", "Mallory"),
        ("RENAME", mailbox, mailbox + "x"),
        ("PEXPIREAT", mailbox, 1),
        ("EXPIRE", unread, 1),
        ("PERSIST", mailbox),
        *[("DEL", key) for key in bobs],
        *[("UNLINK", key) for key in bobs],
        ("DEL", keys.directory),
    ]
    if not cast.secured.hub.cluster:  # across slots a cluster refuses these anyway
        commands += [
            ("COPY", keys.account("alice"), keys.account("bob"), "REPLACE"),
            ("RENAME", keys.account("alice"), keys.account("bob")),
            ("SUNIONSTORE", keys.senders("bob"), keys.senders("alice")),
        ]
    assert_refused(cast.raw, commands)
    alice_hub = cast.secured.hub_as(cast.alice)
    with pytest.raises(HubRefused, match="does not allow"):
        Mailbox(alice_hub, "Bob").mark_read("Carol")
    # Bob's history, counts, login and name are as they were.
    assert cast.history(cast.bob, cast.carol) == [("Carol", "c1"), ("Carol", "c2")]
    assert cast.mailbox(cast.bob).unread_counts() == {"Carol": 2}
    accounts.verify(cast.secured.hub_as(cast.bob), cast.bob.session)
    assert accounts.registered_name(cast.secured.hub_as(cast.carol), "bob") == "Bob"
    assert secured_login.login(cast.secured.settings, "bob", cast.bob.password, saved=None)


# == presence ==========================================================================


def claim(kind: str, name: str) -> str:
    return f'{{"type":"{kind}","name":"{name}"}}'


def test_nobody_else_can_take_a_user_offline(cast: Cast) -> None:
    keys = cast.secured.keys
    carol = cast.secured.receiver(cast.carol)  # online, and stays
    bob = cast.secured.receiver(cast.bob)
    wait_until(lambda: "Carol" in bob.online, 10, "Carol online for Bob")
    until, lease = keys.online_until("carol"), keys.lease_of("carol")
    lease_id = carol.receiver.lease.lease_id
    own_lease = lua.load("own_lease.lua")
    cast.raw.script_load(own_lease.source)
    assert_refused(
        cast.raw,
        [
            ("DEL", until),
            ("DEL", lease),
            ("SET", until, "0"),
            ("HDEL", lease, lease_id),
            ("HSET", lease, lease_id, "0"),
            ("PEXPIREAT", until, 1),
            ("EVALSHA", own_lease.sha, 2, lease, until, "leave", keys.users_channel, "Carol",
             lease_id, 1000),
        ],
    )  # fmt: skip
    # Anyone may publish on the users channel: a claim Bob's client checks.
    cast.raw.spublish(keys.users_channel, claim("leave", "Carol"))
    cast.raw.spublish(keys.users_channel, claim("leave", "carol"))
    # Alice coming online herself is the last event Bob's client reads.
    Lease(cast.secured.hub_as(cast.alice), "Alice").renew()
    wait_until(lambda: "Alice" in bob.online, 10, "Alice online for Bob")
    assert "Carol" in bob.online
    assert [e for e in bob.recorder.events if e.name.lower() == "carol" and e.kind == "leave"] == []
    assert bob.receiver.stats.dropped["presence-claim"] >= 2
    assert "Carol" in snapshot(cast.secured.hub_as(cast.bob))[1]


def test_nobody_can_be_shown_online_who_is_not(cast: Cast) -> None:
    keys = cast.secured.keys
    dave = cast.secured.add_user("Dave")  # never online
    bob = cast.secured.receiver(cast.bob)
    until, lease = keys.online_until("dave"), keys.lease_of("dave")
    forever = int(time.time() * 1000) + 3_600_000
    own_lease = lua.load("own_lease.lua")
    cast.raw.script_load(own_lease.source)
    users = keys.users_channel
    assert_refused(
        cast.raw,
        [
            ("SET", until, forever),
            ("HSET", lease, "x", forever),
            ("EVALSHA", own_lease.sha, 2, lease, until, "join", users, "Dave", "x", 3_600_000),
        ],
    )
    # Claims: on the users channel, and through Alice's own lease under Dave's name.
    for name in ("Dave", "dave", "Mallory"):
        cast.raw.spublish(users, claim("join", name))
    own = [keys.lease_of("alice"), keys.online_until("alice")]
    cast.raw.evalsha(own_lease.sha, 2, *own, "join", users, "Dave", "l1", 60_000)
    cast.raw.evalsha(own_lease.sha, 2, *own, "leave", users, "Dave", "l1", 60_000)
    Lease(cast.secured.hub_as(cast.alice), "Alice").renew()  # the last event
    wait_until(lambda: "Alice" in bob.online, 10, "Alice online for Bob")
    assert [e.name for e in bob.recorder.events if e.kind == "join"] == ["Alice"]
    assert bob.online == ["Alice", "Bob"]
    assert bob.receiver.stats.dropped["presence-claim"] >= 3
    assert snapshot(cast.secured.hub_as(dave))[1] == ["Alice", "Bob"]


@pytest.mark.parametrize("name", ["presence", "directory"])
def test_a_user_named_like_a_shared_key_gets_no_more_than_anyone(
    secured: SecuredChat, name: str
) -> None:
    """Names share the hash-tag syntax of the hub's shared keys: a user called
    "presence" or "directory" must not own everyone's presence or the directory."""
    bob = secured.add_user("Bob")
    carol = secured.add_user("Carol")
    try:
        mallory = secured.add_user(name)
    except ChatbusError:
        return  # the admin may not give that name: nothing to fear from it
    keys = secured.keys
    watcher = secured.receiver(bob)
    secured.receiver(carol)
    wait_until(lambda: "Carol" in watcher.online, 10, "Carol online")
    raw = secured.raw(mallory)
    assert_refused(
        raw,
        [
            ("DEL", keys.online_until("carol")),
            ("SET", keys.online_until("dave"), int(time.time() * 1000) + 3_600_000),
            ("HDEL", keys.directory, "bob"),
            ("HSET", keys.directory, "mallory", "Mallory"),
        ],
    )
    assert accounts.registered_name(secured.hub_as(carol), "bob") == "Bob"
    assert "Carol" in snapshot(secured.hub_as(bob))[1]


# == keys, scans and the server's own commands ======================================

# Each: what Alice tries on every node, and what a victim would notice if it ran.
SERVER_COMMANDS: dict[str, list[Command]] = {
    "keys-and-scans": [
        ("KEYS", "*"),
        ("KEYS", "*{bob}*"),
        ("SCAN", 0),
        ("SCAN", 0, "MATCH", "*", "COUNT", 1000),
        ("SCAN", 0, "TYPE", "stream"),
        ("RANDOMKEY",),
        ("DBSIZE",),
        ("CLUSTER", "GETKEYSINSLOT", 0, 10),
        ("CLUSTER", "COUNTKEYSINSLOT", 0),
    ],
    "flushall": [("FLUSHALL",), ("FLUSHALL", "ASYNC"), ("FLUSHALL", "SYNC")],
    "flushdb": [("FLUSHDB",), ("FLUSHDB", "ASYNC"), ("SWAPDB", 0, 1), ("SELECT", 1)],
    "config": [
        ("CONFIG", "GET", "*"),
        ("CONFIG", "SET", "appendonly", "no"),
        ("CONFIG", "SET", "dir", "/tmp"),
        ("CONFIG", "REWRITE"),
        ("CONFIG", "RESETSTAT"),
    ],
    "acl": [
        ("ACL", "WHOAMI"),
        ("ACL", "LIST"),
        ("ACL", "USERS"),
        ("ACL", "GETUSER", "bob"),
        ("ACL", "SETUSER", "alice", "~*", "&*", "+@all"),
        ("ACL", "SETUSER", "bob", "resetpass", ">guessed"),
        ("ACL", "SETUSER", "mallory", "on", ">x", "~*", "+@all"),
        ("ACL", "DELUSER", "bob"),
        ("ACL", "LOG"),
        ("ACL", "SAVE"),
        ("ACL", "LOAD"),
        ("ACL", "DRYRUN", "bob", "get", "x"),
    ],
    "script-flush-kill": [
        ("SCRIPT", "FLUSH"),
        ("SCRIPT", "FLUSH", "ASYNC"),
        ("SCRIPT", "KILL"),
        ("FUNCTION", "KILL"),
    ],
    "debug": [
        ("DEBUG", "SLEEP", 0),
        ("DEBUG", "OBJECT", "x"),
        ("DEBUG", "SET-ACTIVE-EXPIRE", 0),
        ("DEBUG", "RELOAD"),
        ("DEBUG", "SEGFAULT"),
    ],
    "shutdown": [("SHUTDOWN", "NOSAVE"), ("SHUTDOWN", "ABORT"), ("SHUTDOWN",)],
    "client-kill": [
        ("CLIENT", "KILL", "USER", "bob"),
        ("CLIENT", "KILL", "TYPE", "pubsub"),
        ("CLIENT", "KILL", "SKIPME", "yes"),
        ("CLIENT", "LIST"),
        ("CLIENT", "INFO"),
        ("CLIENT", "PAUSE", 10_000),
        ("CLIENT", "NO-EVICT", "on"),
        ("CLIENT", "TRACKING", "on"),
    ],
    "snooping": [
        ("INFO",),
        ("INFO", "commandstats"),
        ("SLOWLOG", "GET"),
        ("COMMANDLOG", "GET", 10, "slow"),
        ("LATENCY", "LATEST"),
        ("MEMORY", "STATS"),
        ("MONITOR",),
        ("OBJECT", "FREQ", "x"),
    ],
    "persistence-replication-cluster": [
        ("SAVE",),
        ("BGSAVE",),
        ("BGREWRITEAOF",),
        ("REPLICAOF", "127.0.0.1", 1),
        ("REPLICAOF", "NO", "ONE"),
        ("CLUSTER", "RESET"),
        ("CLUSTER", "FAILOVER", "TAKEOVER"),
        ("CLUSTER", "FLUSHSLOTS"),
        ("CLUSTER", "SETSLOT", 0, "STABLE"),
        ("CLUSTER", "MEET", "127.0.0.1", 1),
        ("MIGRATE", "127.0.0.1", 1, "", 0, 1000, "KEYS", "x"),
        ("MODULE", "LIST"),
        ("MODULE", "LOAD", "/tmp/evil.so"),
        ("MULTI",),
    ],
}


@dataclass
class Scene:
    """Bob with a message from Carol and a running receiver, for a server-command test."""

    cast: Cast
    bob: Running
    port_of_bob: int


@pytest.fixture
def scene(cast: Cast) -> Scene:
    cast.mailbox(cast.carol).send("Bob", "before the attack")
    bob = cast.secured.receiver(cast.bob)
    wait_until(lambda: "before the attack" in bob.recorder.bodies(), 10, "Bob's message")
    return Scene(cast, bob, cast.secured.hub.master_port(cast.secured.keys.mailbox("bob")))


def bob_is_untouched(scene: Scene) -> None:
    """What Bob would notice: his message, his counts, his running client."""
    cast = scene.cast
    assert cast.history(cast.bob, cast.carol) == [("Carol", "before the attack")]
    assert cast.mailbox(cast.bob).unread_counts() == {"Carol": 1}
    sync_through(cast, scene.bob, "after the attack")
    assert scene.bob.receiver.stats.reconnects == 0
    assert scene.bob.receiver.connected


def hub_state(secured: SecuredChat) -> dict[int, tuple[Any, ...]]:
    """Per node, what the admin set up: its config, the users' rules, chatbus's
    send script (loaded there by the sends so far, if it serves a recipient)."""
    deliver = lua.load("deliver.lua")
    state = {}
    for node in secured.admin_nodes():
        port = node.connection_pool.connection_kwargs["port"]
        state[port] = (
            node.config_get("appendonly"),
            node.config_get("dir"),
            sorted(node.acl_users()),
            [node.acl_getuser(name) for name in ("alice", "bob", "carol")],
            node.script_exists(deliver.sha),
        )
    return state


@pytest.mark.parametrize("case", SERVER_COMMANDS)
def test_server_commands_are_refused(scene: Scene, case: str) -> None:
    secured = scene.cast.secured
    before = hub_state(secured)
    assert_refused_everywhere(secured, scene.cast.alice, SERVER_COMMANDS[case])
    bob_is_untouched(scene)
    # Every node up, and as its admin left it.
    assert all(node.ping() for node in secured.admin_nodes())
    assert hub_state(secured) == before


def test_monitor_shows_nothing(scene: Scene) -> None:
    """MONITOR would show every command a node runs, messages included."""
    cast = scene.cast
    node = cast.secured.node(scene.port_of_bob, cast.alice, protocol=2)
    connection = node.connection_pool.make_connection()
    connection.connect()
    connection.send_command("MONITOR")
    try:
        answer: Any = connection.read_response()
    except redis.exceptions.ResponseError as error:
        answer = error
    cast.mailbox(cast.carol).send("Bob", "watched?")
    wait_until(lambda: "watched?" in scene.bob.recorder.bodies(), 10, "Bob gets it")
    heard = not isinstance(answer, Exception) and connection.can_read(timeout=0.5)
    connection.disconnect()
    assert isinstance(answer, Exception), f"MONITOR answered {answer!r}"
    assert is_refusal(answer), answer
    assert not heard


# == connecting =========================================================================


def answer(connection: Any, *command: Any) -> Any:
    """What the hub answers ``command`` on ``connection``: the reply, or the error."""
    connection.send_command(*command)
    try:
        return connection.read_response()
    except redis.exceptions.RedisError as error:
        return error


def raw_connection(secured: SecuredChat, port: int, user: User | None = None) -> Any:
    """A connection of its own to one node (as ``user``, else with no credentials:
    then RESP2 and no CLIENT SETINFO, or redis-py could not even connect)."""
    options = {} if user is not None else {"protocol": 2, "driver_info": None}
    connection = secured.node(port, user, **options).connection_pool.make_connection()
    connection.connect()
    return connection


def test_without_credentials_nothing_but_logging_in(cast: Cast) -> None:
    keys = cast.secured.keys
    cast.mailbox(cast.carol).send("Bob", "not for strangers")
    commands: list[Command] = [
        ("PING",),
        ("GET", keys.online_until("bob")),
        ("HGETALL", keys.account("bob")),
        ("XRANGE", keys.from_stream("bob", "carol"), "-", "+"),
        ("SSUBSCRIBE", keys.users_channel),
        ("KEYS", "*"),
        ("FLUSHALL",),
        ("EVAL", "return 1", 0),
        ("HELLO", "3"),
        ("AUTH", "default", ""),
        ("AUTH", "default", "nopass"),
        ("AUTH", ""),
        ("AUTH", "bob", ""),
    ]
    failures = {}
    for port in cast.secured.hub.ports:
        anonymous = raw_connection(cast.secured, port)
        try:
            for command in commands:
                reply = answer(anonymous, *command)
                # NOAUTH or WRONGPASS: redis-py raises both as AuthenticationError.
                if not isinstance(reply, redis.exceptions.AuthenticationError):
                    failures[f"node {port}: {command}"] = f"{type(reply).__name__}: {reply!s:.80}"
        finally:
            anonymous.disconnect()
    assert not failures, failures
    # chatbus without a login is told the hub is secured, and to log in.
    stranger = Hub(cast.secured.settings)
    try:
        with pytest.raises(AccessRefused, match="secured: log in"):
            accounts.registered_name(stranger, "bob")
    finally:
        stranger.close()
    result = Chatbus(cast.secured.settings)("users")
    assert result.exit_code == 1
    assert "is secured: log in" in result.stderr
    assert cast.history(cast.bob, cast.carol) == [("Carol", "not for strangers")]


def test_another_users_name_with_ones_own_secret_is_refused(cast: Cast) -> None:
    secured = cast.secured
    keys = secured.keys
    namespace = secured.settings.namespace
    alice_secret = cast.alice.credentials.secret
    attempts = [
        ("bob", alice_secret),
        ("bob", hub_secret(namespace, "bob", cast.alice.password)),
        ("bob", cast.alice.password),
        ("Bob", alice_secret),
        ("carol", hub_secret(namespace, "alice", cast.alice.password)),
        ("admin", alice_secret),
        ("replicator", alice_secret),
        ("default", alice_secret),
    ]
    failures = {}
    for port in secured.hub.ports:
        own = raw_connection(secured, port, cast.alice)
        try:
            for name, secret in attempts:
                for command in (("AUTH", name, secret), ("HELLO", 2, "AUTH", name, secret)):
                    reply = answer(own, *command)
                    if not isinstance(reply, redis.exceptions.AuthenticationError):
                        failures[f"node {port}: {command[0]} as {name}"] = repr(reply)[:80]
            # The connection is still Alice's, and no more (on a cluster, a
            # node that does not serve her slot sends her there: allowed).
            mine = answer(own, "HGET", keys.account("alice"), "name")
            assert mine == b"Alice" or isinstance(mine, redis.exceptions.MovedError), mine
            assert is_refusal(answer(own, "HGET", keys.account("bob"), "name"))
        finally:
            own.disconnect()
    assert not failures, failures
    # As chatbus does it: Bob's name with Alice's key, or with her password.
    pretender = Hub(secured.settings, Credentials("bob", alice_secret))
    try:
        with pytest.raises(AccessRefused):
            accounts.registered_name(pretender, "bob")
    finally:
        pretender.close()
    with pytest.raises(WrongPassword):
        secured_login.login(secured.settings, "bob", cast.alice.password, saved=None)
    forged_url = secured.redis_url(cast.alice).replace("alice:", "bob:", 1)
    client = redis.Redis.from_url(forged_url)
    try:
        with pytest.raises(redis.exceptions.AuthenticationError):
            client.ping()
    finally:
        client.close()


# == the admin's actions ================================================================


def test_a_removed_users_running_receiver_stops_within_a_heartbeat(cast: Cast) -> None:
    secured = cast.secured
    alice = secured.receiver(cast.alice)
    bob = secured.receiver(cast.bob)
    wait_until(lambda: "Alice" in bob.online, 10, "Alice online for Bob")
    raw = secured.node(secured.hub.ports[0], cast.alice)
    assert raw.hget(secured.keys.account("alice"), "name") == b"Alice"
    assert admin_cli(secured).ok("admin", "remove-user", "alice").output == "Removed alice.\n"
    removed = time.monotonic()
    wait_until(lambda: alice.recorder.session_ended is not None, FAST.heartbeat + 2, "ended")
    took = time.monotonic() - removed
    assert took <= FAST.heartbeat + 1.0, f"stopped {took:.2f} s after the removal"
    assert "no longer accepts the key of 'alice'" in str(alice.recorder.session_ended).lower()
    assert not alice.receiver.connected
    # Her key opens nothing any more: not the connection she had, not a new one.
    with pytest.raises((redis.exceptions.ConnectionError, redis.exceptions.AuthenticationError)):
        raw.hget(secured.keys.account("alice"), "name")
    # (A Hub's first connection is made outside Hub.errors(): redis-py's own error.)
    with pytest.raises((AccessRefused, redis.exceptions.AuthenticationError)):
        cast.mailbox(cast.alice).send("Bob", "still here?")
    with pytest.raises(WrongPassword):
        secured_login.login(secured.settings, "alice", cast.alice.password, saved=None)
    # Bob sees her go (her lease is gone with her data) within a lease period.
    wait_until(lambda: "Alice" not in bob.online, secured.settings.lease_ttl + 2, "Alice gone")
    assert "still here?" not in bob.recorder.bodies()


def test_reset_password_ends_every_session(cast: Cast) -> None:
    secured = cast.secured
    alice = secured.receiver(cast.alice)
    raw = secured.node(secured.hub.ports[0], cast.alice)
    assert raw.ping()
    result = admin_cli(secured).ok(
        "admin", "reset-password", "alice", "--password-stdin", stdin="a new password\n"
    )
    assert "their sessions have ended" in result.output
    wait_until(lambda: alice.recorder.session_ended is not None, FAST.heartbeat + 2, "ended")
    with pytest.raises((redis.exceptions.ConnectionError, redis.exceptions.AuthenticationError)):
        raw.ping()
    with pytest.raises(AccessRefused):
        accounts.verify(Hub(secured.settings, cast.alice.credentials), cast.alice.session)
    with pytest.raises(WrongPassword):
        secured_login.login(secured.settings, "alice", cast.alice.password, saved=None)
    # The new password works, and a fresh session with it.
    session = secured_login.login(secured.settings, "alice", "a new password", saved=None)
    assert session.token != cast.alice.session.token
    fresh = Hub(secured.settings, session.credentials)
    try:
        Mailbox(fresh, "Alice").send("Bob", "back again")
    finally:
        fresh.close()
    assert cast.history(cast.bob, cast.alice) == [("Alice", "back again")]
