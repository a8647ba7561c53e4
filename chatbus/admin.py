"""Running a secured hub: chat users as Redis ACL users, on every node.

ACLs are per node and never propagate through a cluster (Redis #7988, Valkey
#699), so every change is made on every node, masters and replicas, saved to
each node's aclfile (``ACL SAVE``), and then checked: a node whose rules for
the user differ from the others' is given them again. The directory of names
and the user's account live in the keyspace, written through the cluster as
any data.
"""

import json
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, cast

import redis

from .acl import OPTIONAL_RULES, access_rules, hub_secret, user_rules
from .config import Settings, display_url
from .errors import ChatbusError, HubRefused, NameTaken, NotAMember, UnknownUser
from .hub import Hub, as_text
from .known_nodes import at
from .names import is_room, valid_names, validate_name, validate_room
from .rooms import Rooms

ADMIN_USER = "admin"


class OpenHub(ChatbusError):
    """The admin commands were pointed at a hub with no ACL users to manage."""


@dataclass
class UserRow:
    """One chat user as ``chatbus admin list`` shows them."""

    name: str
    # Nodes where the ACL user is missing (they cannot log in through those).
    missing_on: list[str] = field(default_factory=list)


class Admin:
    """The admin's view of a secured hub, through the admin URL."""

    def __init__(self, settings: Settings) -> None:
        """``settings.url`` is the admin URL (with the admin's credentials)."""
        self.settings = settings
        self.hub = Hub(settings)
        self.keys = settings.keys

    def close(self) -> None:
        self.hub.close()

    # -- the hub and its nodes ---------------------------------------------

    def check_secured(self) -> None:
        """OpenHub unless the admin URL logs in as a user of a hub whose
        ``default`` user is off (else there is nothing to keep apart)."""
        with self.hub.errors():
            whoami = as_text(self.hub.redis.execute_command("ACL", "WHOAMI"))  # type: ignore[no-untyped-call]
        if whoami == "default":
            raise OpenHub(
                f"the hub at {self.hub.url} is open: anyone who reaches it can read and write "
                "every user's messages, so there are no users to manage. 'chatbus server "
                "--secure' starts a hub with a Redis user per person (docs/SECURITY.md)"
            )

    @contextmanager
    def _node_clients(self) -> Iterator[list[tuple[str, redis.Redis]]]:
        """A client for every node of the hub (one server: itself)."""
        url = self.settings.url
        with self.hub.errors():
            cluster = self.hub.cluster
            names = self._every_node() if cluster else []
        urls = [(name, at(url, name)) for name in names] if cluster else [(display_url(url), url)]
        options: dict[str, Any] = {"socket_timeout": 5, "socket_connect_timeout": 3}
        if self.settings.tls_ca is not None and url.startswith("rediss://"):
            options["ssl_ca_certs"] = str(self.settings.tls_ca)
        clients = [(name, redis.Redis.from_url(node_url, **options)) for name, node_url in urls]
        try:
            yield clients
        finally:
            for _, client in clients:
                client.close()

    def _every_node(self) -> list[str]:
        """``host:port`` of every node of the cluster, replicas included, as
        CLUSTER NODES lists them: the slot map leaves out a replica until its
        master has been written to, and an ACL it misses locks its users out."""
        text = as_text(self.hub.redis.execute_command("CLUSTER", "NODES"))  # type: ignore[no-untyped-call]
        names = []
        for row in text.splitlines():
            fields = row.split()
            if len(fields) > 2 and "noaddr" not in fields[2].split(","):
                names.append(fields[1].split("@")[0])
        return sorted(names)

    def _on_every_node(self, *commands: tuple[Any, ...]) -> None:
        """Run ``commands`` then ACL SAVE on every node; every failure is said."""
        failed: list[str] = []
        with self._node_clients() as nodes:
            for name, client in nodes:
                try:
                    for command in commands:
                        _run_acl_command(client, command)
                    client.execute_command("ACL", "SAVE")  # type: ignore[no-untyped-call]
                except redis.RedisError as error:
                    failed.append(f"{name}: {str(error).splitlines()[0]}")
        if not failed:
            return
        if len(failed) == 1 and len(nodes) == 1:
            raise HubRefused(f"the hub refused the change: {failed[0]}")
        raise HubRefused(
            "the change did not reach every node, so they are out of step: "
            + "; ".join(failed)
            + " (run the command again once every node answers)"
        )

    def _acl_everywhere(self, name: str) -> dict[str, Any]:
        """``ACL GETUSER name`` on every node, by node (None where missing)."""
        with self._node_clients() as nodes:
            return {
                node: client.execute_command("ACL", "GETUSER", name)  # type: ignore[no-untyped-call]
                for node, client in nodes
            }

    # -- users -------------------------------------------------------------

    def add_user(self, name: str, password: str | None = None) -> str:
        """Create ``name``'s account and ACL user; the password (a generated
        one unless given)."""
        validate_name(name)
        password = password or generate_password()
        keys = self.keys
        if any(self._acl_everywhere(name.lower()).values()):
            # ACL users are the hub's, not a namespace's: one name, one person.
            raise NameTaken(
                f"the hub has a user named {name!r} already (perhaps in another namespace: "
                "a secured hub's user names are the hub's); choose another name"
            )
        with self.hub.errors():
            if not self.hub.redis.hsetnx(keys.directory, name.lower(), name):
                raise NameTaken(f"there is a user named {name!r} already")
        try:
            secret = hub_secret(self.settings.namespace, name, password)
            self._on_every_node(("ACL", "SETUSER", name.lower(), *user_rules(keys, name, secret)))
            with self.hub.errors():
                self.hub.redis.hset(
                    keys.account(name),
                    mapping={"name": name, "created": time.time_ns() // 1_000_000},
                )
        except BaseException:
            # Undone everywhere it was done, so that running it again can work.
            with suppress(ChatbusError):
                self._on_every_node(("ACL", "DELUSER", name.lower()))
            with self.hub.errors():
                self.hub.redis.hdel(keys.directory, name.lower())
            raise
        return password

    def remove_user(self, name: str) -> None:
        """Remove ``name``'s ACL user everywhere (its running clients are cut
        off at once and cannot come back) and its account and data."""
        display = self._existing(name)
        self._on_every_node(("ACL", "DELUSER", name.lower()))
        self._take_offline(display)
        keys = self.keys
        for room in self._rooms_of(display):
            with suppress(NotAMember):  # the room shows that they left
                Rooms(self.hub, display).leave(room)
        with self.hub.errors():
            senders = cast(set[bytes], self.hub.redis.smembers(keys.senders(name)))
            for sender in valid_names(sorted(senders)):
                self.hub.redis.delete(keys.from_stream(name, sender))
            for key in (
                keys.account(name),
                keys.sessions(name),
                keys.mailbox(name),
                keys.unread(name),
                keys.senders(name),
                keys.login_failures(name),
                keys.lease_of(name),
                keys.online_until(name),
                keys.taken(name),
                keys.rooms_of(name),
                keys.invites(name),
            ):
                self.hub.redis.delete(key)
            self.hub.redis.hdel(keys.directory, display.lower())
            # Nothing of theirs is left with anyone: no unread count, and no
            # message waiting to be taken in (a next user of the name would
            # otherwise own it).
            others = cast(list[bytes], self.hub.redis.hkeys(keys.directory))
            for other in valid_names(sorted(others)):
                self.hub.redis.hdel(keys.unread(other), display)
                self.hub.redis.delete(keys.from_stream(other, name))
                self.hub.redis.srem(keys.senders(other), name.lower())

    # -- rooms: membership is an ACL change, so it is the admin's ----------

    def add_to_room(self, typed_room: str, names: list[str], *, private: bool = False) -> str:
        """Put ``names`` in the room (made if new: ``private`` or public, owned
        by the first name): their ACL rules open the room on every node, then
        each joins it, as a client would. Returns the room's name as created."""
        room = validate_room(typed_room)
        people = [self._existing(name) for name in names]
        for person in people:
            self._grant(person, {*self._rooms_of(person), room.lower()})
        for person in people:
            room = Rooms(self.hub, person).join(room, private=private).room
        return room

    def remove_from_room(self, typed_room: str, names: list[str]) -> str:
        """Take ``names`` out of the room: each leaves it (the room says so),
        and their ACL rules close it on every node, which cuts off their
        subscription at once (their clients subscribe again without it)."""
        room = validate_room(typed_room)
        people = [self._existing(name) for name in names]
        for person in people:
            with suppress(NotAMember):
                room = Rooms(self.hub, person).leave(room)
            self._grant(person, self._rooms_of(person) - {room.lower()})
        return room

    def _rooms_of(self, person: str) -> set[str]:
        """The rooms ``person`` is in, by their own list (lower-case)."""
        with self.hub.errors():
            listed = cast(list[bytes], self.hub.redis.hkeys(self.keys.rooms_of(person)))
        return {as_text(room) for room in listed if is_room(as_text(room))}

    def _grant(self, person: str, rooms: set[str]) -> None:
        """Make ``person``'s key and channel rules those of a member of ``rooms``."""
        rules = access_rules(self.keys, person, sorted(rooms))
        reset = ("resetkeys", "resetchannels", "clearselectors")
        self._on_every_node(("ACL", "SETUSER", person.lower(), *reset, *rules))

    def reset_password(self, name: str, password: str | None = None) -> str:
        """Give ``name`` a new password (generated unless given), end every
        session and cut off every running client; the password."""
        display = self._existing(name)
        password = password or generate_password()
        secret = hub_secret(self.settings.namespace, name, password)
        self._on_every_node(
            ("ACL", "SETUSER", name.lower(), "resetpass", f">{secret}"),
            ("CLIENT", "KILL", "USER", name.lower()),
        )
        with self.hub.errors():
            self.hub.redis.delete(self.keys.sessions(name))
        self._take_offline(display)
        return password

    def _take_offline(self, display: str) -> None:
        """End ``display``'s presence now (their clients were cut off), and say so."""
        keys = self.keys
        with self.hub.errors():
            self.hub.redis.delete(keys.lease_of(display))
            if self.hub.redis.delete(keys.online_until(display)):
                claim = json.dumps({"type": "leave", "name": display})
                self.hub.redis.execute_command("SPUBLISH", keys.users_channel, claim)  # type: ignore[no-untyped-call]

    def list_users(self) -> list[UserRow]:
        """Every user in the directory, and the nodes that lack their ACL user."""
        with self.hub.errors():
            directory = cast(dict[bytes, bytes], self.hub.redis.hgetall(self.keys.directory))
        names = sorted(valid_names(sorted(directory.values())), key=str.lower)
        rows = []
        for name in names:
            missing = [
                node for node, rules in self._acl_everywhere(name.lower()).items() if not rules
            ]
            rows.append(UserRow(name, missing))
        return rows

    def _existing(self, name: str) -> str:
        """``name`` as the directory spells it; UnknownUser if it is not there."""
        validate_name(name)
        with self.hub.errors():
            stored = self.hub.redis.hget(self.keys.directory, name.lower())
        if stored is None:
            raise UnknownUser(f"no user named {name!r} on this hub")
        return as_text(stored)


def _run_acl_command(client: redis.Redis, command: tuple[Any, ...]) -> None:
    """``command`` on one node, without the optional rules that node does not know."""
    while True:
        try:
            client.execute_command(*command)  # type: ignore[no-untyped-call]
            return
        except redis.ResponseError as error:
            unknown = _unknown_rule(str(error))
            if unknown not in OPTIONAL_RULES or unknown not in command:
                raise
            command = tuple(part for part in command if part != unknown)


def _unknown_rule(message: str) -> str | None:
    """The rule an ACL SETUSER refused as unknown ("... modifier '+x|y': Unknown ...")."""
    if "Unknown command" not in message or "'" not in message:
        return None
    return message.split("'")[1]


def generate_password() -> str:
    """16 random URL-safe characters (96 bits): too many to guess, few to type."""
    return secrets.token_urlsafe(12)


def admin_session(settings: Settings, work: Callable[[Admin], Any]) -> Any:
    """Run ``work`` with an Admin on ``settings`` (checked to be secured), then close it."""
    admin = Admin(settings)
    try:
        admin.check_secured()
        return work(admin)
    finally:
        admin.close()
