"""Sharded pub/sub on the nodes that own the channels.

A connection per node, an SSUBSCRIBE per slot.

One server has one connection for every channel. On a Redis Cluster a channel
lives on the master that owns its slot, and one SSUBSCRIBE may only name
channels of one slot (else CROSSSLOT). redis-py's ClusterPubSub is not used:
it stays on a demoted master after a failover, and reads its nodes one after
the other, each with the whole timeout. This waits on all of its connections
at once (``select``), after taking what their parsers have already buffered,
which ``select`` cannot see.

Pub/sub is only a doorbell: when the hub drops a subscription by itself (an
unsolicited ``sunsubscribe``: a failover or a slot move) this raises
:class:`ChannelMoved`, and the receiver subscribes again on the new owner and
reads what it missed from the streams.
"""

import select
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.exceptions
from redis.client import PubSub

from .topology import Node, Topology


class DeadConnection(Exception):
    """The hub stopped answering on a pub/sub connection."""


class ChannelMoved(Exception):
    """The hub ended a subscription by itself: the channel's slot has a new owner."""


@dataclass
class _Link:
    """One pub/sub connection, to one node, and how lively it is."""

    node: Node
    pubsub: PubSub
    channels: list[str]
    last_traffic: float
    ping_sent: float | None = None

    def socket(self) -> Any:
        connection = self.pubsub.connection
        return None if connection is None else connection._sock


class Subscriber:
    """Subscribed to ``channels`` on their owners until :meth:`close`."""

    def __init__(
        self,
        topology: Topology,
        channels: Sequence[str],
        *,
        ping_after_idle: float,
        pong_deadline: float,
    ) -> None:
        self.topology = topology
        self.channels = list(channels)
        self.ping_after_idle = ping_after_idle
        self.pong_deadline = pong_deadline
        self._links: list[_Link] = []

    def open(self, timeout: float) -> None:
        """Subscribe on every owner and wait for every confirmation."""
        by_node: dict[str, tuple[Node, dict[int, list[str]]]] = {}
        for channel in self.channels:
            node = self.topology.subscriber_for(channel)
            slots = by_node.setdefault(node.name, (node, {}))[1]
            slots.setdefault(self.topology.slot(channel), []).append(channel)
        now = time.monotonic()
        for node, slots in by_node.values():
            pubsub: PubSub = node.client.pubsub()  # type: ignore[no-untyped-call]
            link = _Link(node, pubsub, [c for group in slots.values() for c in group], now)
            self._links.append(link)
            for group in slots.values():
                pubsub.ssubscribe(*group)
        self._await_confirmations(now + timeout)

    def _await_confirmations(self, deadline: float) -> None:
        for link in self._links:
            confirmed = 0
            while confirmed < len(link.channels):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise DeadConnection("the hub did not confirm the subscription")
                reply = link.pubsub.get_message(timeout=remaining)
                if reply is not None and reply["type"] == "ssubscribe":
                    confirmed += 1

    def get_message(self, timeout: float) -> dict[str, Any] | None:
        """The next message from any node, waiting up to ``timeout`` seconds.

        Raises ChannelMoved when the hub drops a subscription by itself, and
        redis-py's ConnectionError when a connection breaks.
        """
        if len(self._links) == 1:
            # One node (a single server, say): redis-py waits on its socket itself.
            link = self._links[0]
            try:
                reply = link.pubsub.get_message(timeout=timeout)
            except redis.exceptions.TimeoutError:
                return None  # half a message has arrived; the rest comes next time
            return None if reply is None else self._arrived(link, reply)
        message = self._buffered()
        if message is not None:
            return message
        sockets = [sock for link in self._links if (sock := link.socket()) is not None]
        if len(sockets) < len(self._links):
            raise DeadConnection("a pub/sub connection closed")
        readable, _, _ = select.select(sockets, [], [], timeout)
        return self._buffered() if readable else None

    def _buffered(self) -> dict[str, Any] | None:
        for link in self._links:
            try:
                message = link.pubsub.get_message(timeout=0)
            except redis.exceptions.TimeoutError:
                continue  # half a message has arrived; the rest wakes select()
            if message is None:
                continue
            return self._arrived(link, message)
        return None

    def _arrived(self, link: _Link, message: dict[str, Any]) -> dict[str, Any]:
        link.last_traffic = time.monotonic()
        link.ping_sent = None
        if message["type"] == "sunsubscribe":
            raise ChannelMoved(f"the hub moved {message['channel']!r}")
        return message

    def check_alive(self) -> None:
        """PING connections that have been quiet; DeadConnection if one does not answer."""
        now = time.monotonic()
        for link in self._links:
            if link.ping_sent is None and now - link.last_traffic >= self.ping_after_idle:
                link.pubsub.ping()
                link.ping_sent = now
            elif link.ping_sent is not None and now - link.ping_sent > self.pong_deadline:
                quiet = now - link.last_traffic
                raise DeadConnection(f"no answer from {link.node.name} for {quiet:.0f} s")

    def owners_changed(self) -> bool:
        """True when the slot map (as last read) puts a channel on another node."""
        return any(
            self.topology.subscriber_for(channel).name != link.node.name
            for link in self._links
            for channel in link.channels
        )

    def close(self) -> None:
        for link in self._links:
            link.pubsub.close()
        self._links.clear()
