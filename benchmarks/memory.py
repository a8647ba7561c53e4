"""Scenario 5, memory: what an online user and a stored message cost the hub,
and what a receiving client costs its machine.

Hub figures are the change in ``INFO memory`` ``used_memory`` over N joins (or
N messages) divided by N, and ``MEMORY USAGE ... SAMPLES 0`` (every element
counted) of the keys involved. The raw baselines are a bare sorted set of
names for presence and a stream holding the bare body for messages. Client
figures are the resident set (VmRSS) of a receiving process, chatbus's
Receiver with N users online, and a redis-py subscriber, each after receiving
the same messages.
"""

from typing import Any

from chatbus import accounts
from chatbus.messages import Mailbox
from chatbus.presence import Lease

from .clients import channel_for
from .core import Context, Row, ScenarioResult, make_body, new_namespace
from .presence_storm import user_name

NAME = "memory"
TITLE = "Memory: hub bytes per user and per message, client RSS"


def _used(ctx: Context) -> int:
    return int(ctx.hub.info("memory")["used_memory"])


def _usage(ctx: Context, *keys: str) -> int:
    return sum(int(ctx.hub.redis.memory_usage(key, samples=0) or 0) for key in keys)


def _presence(ctx: Context, namespace: str) -> dict[str, Any]:
    users = ctx.sizes.memory_users
    hub = ctx.hub.connect(namespace)
    keys = hub.keys
    before = _used(ctx)
    for i in range(users):
        Lease(hub, user_name(i)).renew()
    after = _used(ctx)
    hub.close()
    raw_key = f"{namespace}:raw-online"
    raw_before = _used(ctx)
    pipe = ctx.hub.redis.pipeline(transaction=False)
    for i in range(users):
        pipe.zadd(raw_key, {user_name(i): i})
    pipe.execute()
    raw_after = _used(ctx)
    return {
        "users": users,
        "used_memory_per_user": (after - before) / users,
        "keys_per_user": _usage(ctx, keys.online, keys.leases, keys.lease_index) / users,
        "by_key": {
            "online": _usage(ctx, keys.online),
            "leases": _usage(ctx, keys.leases),
            "lease_index": _usage(ctx, keys.lease_index),
        },
        "raw_used_memory_per_user": (raw_after - raw_before) / users,
        "raw_keys_per_user": _usage(ctx, raw_key) / users,
    }


def _accounts(ctx: Context, namespace: str) -> dict[str, Any]:
    hub = ctx.hub.connect(namespace)
    keys = hub.keys
    accounts.register(hub, "registered", "correct horse battery staple")
    hub.close()
    ctx.hub.add_accounts(namespace, ["minimal"])
    return {
        "registered_account_bytes": _usage(ctx, keys.account("registered")),
        "session_bytes": _usage(ctx, keys.sessions("registered")),
        "minimal_account_bytes": _usage(ctx, keys.account("minimal")),
    }


def _messages(ctx: Context, namespace: str) -> dict[str, Any]:
    count, size = ctx.sizes.memory_messages, ctx.sizes.body_size
    ctx.hub.add_accounts(namespace, ["alice", "bob"])
    hub = ctx.hub.connect(namespace)
    keys = hub.keys
    before = _used(ctx)
    Mailbox(hub, "alice").send_many("bob", (make_body(i, size) for i in range(count)))
    after = _used(ctx)
    hub.close()
    raw_key = f"{namespace}:raw-stream"
    raw_before = _used(ctx)
    for first in range(0, count, 100):
        pipe = ctx.hub.redis.pipeline(transaction=False)
        for i in range(first, min(first + 100, count)):
            pipe.xadd(raw_key, {"m": make_body(i, size)})
        pipe.execute()
    raw_after = _used(ctx)
    return {
        "messages": count,
        "body_bytes": size,
        # Each message is stored twice: in the recipient's and the sender's mailbox.
        "used_memory_per_message": (after - before) / count,
        "recipient_mailbox_per_entry": _usage(ctx, keys.mailbox("bob")) / count,
        "sender_mailbox_per_entry": _usage(ctx, keys.mailbox("alice")) / count,
        "unread_bytes": _usage(ctx, keys.unread("bob")),
        "raw_used_memory_per_message": (raw_after - raw_before) / count,
        "raw_stream_per_entry": _usage(ctx, raw_key) / count,
    }


def _client_rss(ctx: Context, namespace: str, kind: str) -> dict[str, Any]:
    """A receiving process's memory after ``client_messages`` messages."""
    count, size = ctx.sizes.client_messages, ctx.sizes.body_size
    ctx.hub.add_accounts(namespace, ["carol", "dave"])
    common = ctx.worker_config(namespace=namespace, kind=kind)
    with ctx.workers.group() as start:
        receiver = start(
            "clients:receive", {**common, "name": "carol", "drain_idle": ctx.sizes.drain_idle}
        )
        receiver.ready()
        bodies = (make_body(i, size) for i in range(count))
        if kind == "chatbus":
            hub = ctx.hub.connect(namespace)
            Mailbox(hub, "dave").send_many("carol", bodies)
            hub.close()
        else:
            channel = channel_for(common, "carol")
            for body in bodies:
                ctx.hub.redis.publish(channel, body)
        receiver.tell(f"expect {count}")
        report = receiver.result(timeout=120)
    return {
        "received": report["received"],
        "lost": count - report["received"],
        "rss_kib": report["rss_kib"],
        "peak_kib": report["peak_kib"],
    }


def run(ctx: Context) -> ScenarioResult:
    namespace = new_namespace(NAME)
    ctx.say(f"memory: {ctx.sizes.memory_users} users online, {ctx.sizes.memory_messages} messages")
    presence = _presence(ctx, namespace)
    account = _accounts(ctx, namespace)
    messages = _messages(ctx, namespace)
    # Both clients run while the users above are online: chatbus's holds their list.
    clients = {kind: _client_rss(ctx, namespace, kind) for kind in ("publish", "chatbus")}
    users = presence["users"]
    rows = [
        Row(
            "hub bytes per online user",
            "B",
            presence["used_memory_per_user"],
            presence["raw_used_memory_per_user"],
        ),
        Row(
            "  of which presence keys",
            "B",
            presence["keys_per_user"],
            presence["raw_keys_per_user"],
        ),
        Row(
            "hub bytes per message (2 copies)",
            "B",
            messages["used_memory_per_message"],
            messages["raw_used_memory_per_message"],
        ),
        Row(
            "mailbox bytes per entry",
            "B",
            messages["recipient_mailbox_per_entry"],
            messages["raw_stream_per_entry"],
        ),
        Row(
            "registered account + session",
            "B",
            account["registered_account_bytes"] + account["session_bytes"],
        ),
        Row(
            f"client RSS ({users:,} online)",
            "MiB",
            clients["chatbus"]["rss_kib"] / 1024,
            clients["publish"]["rss_kib"] / 1024,
        ),
    ]
    lost = sum(client["lost"] for client in clients.values())
    details = {"presence": presence, "accounts": account, "messages": messages, "clients": clients}
    return ScenarioResult(NAME, TITLE, rows, lost, details)
