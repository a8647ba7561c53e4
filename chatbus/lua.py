"""Lua scripts kept as .lua files beside this package, run by SHA on the nodes that own their keys.

Calls go out pipelined, one connection per node, written to every node before
any reply is read: one round trip however many calls and nodes (a send's
two copies live on two masters in a cluster, and go out together). redis-py's
``Pipeline`` would send ``SCRIPT EXISTS`` first whenever scripts are queued,
and its ClusterPipeline refuses EVALSHA. Scripts are loaded on a node only
when it answers NOSCRIPT (a fresh or restarted hub, a newly promoted replica).

A call's keys all share one slot (their hash tag): the call goes to the master
of the first key's slot. A MOVED reply (the slot has a new owner) sends the
call again to the owner it names; an ASK reply (the slot is being moved)
sends it to the new owner with ASKING; TRYAGAIN waits a moment. Still
redirected after a few rounds, the call's reply is that error.

With ``confirm``, each master that has a replica is also sent ``WAIT 1
<timeout>`` on the same connection right after the calls: the writes count
as done only once a replica has them, so a failover cannot lose them. A
master whose replicas do not answer in time raises :class:`NotConfirmed`,
unless the cluster has marked every one of them failed (then none will).
"""

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from typing import Any

import redis
from redis.exceptions import AskError, MovedError, NoScriptError, TryAgainError

from .topology import Node, Topology

Arg = str | bytes | int | float

# How long a master waits for a replica's acknowledgement (WAIT), in ms:
# far more than a healthy replica needs, far less than the socket timeout.
WAIT_TIMEOUT_MS = 1000
_REDIRECTS = 5
_TRY_AGAIN_PAUSE = 0.05


class NotConfirmed(Exception):
    """A master ran the calls, but no replica acknowledged them in time."""


class LuaScript:
    """One script file, called by its SHA1."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.source = files("chatbus").joinpath(filename).read_text(encoding="utf-8")
        self.sha = hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest()

    def __call__(self, topology: Topology, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        return run_calls(topology, [ScriptCall(self, keys, args)])[0]


@dataclass(frozen=True)
class ScriptCall:
    """A script with its keys and arguments, ready to go out."""

    script: LuaScript
    keys: Sequence[str]
    args: Sequence[Arg]

    def command(self) -> tuple[Arg, ...]:
        return ("EVALSHA", self.script.sha, len(self.keys), *self.keys, *self.args)


@dataclass(frozen=True)
class PlainCall:
    """A plain command that goes out with the script calls, to its first key's node."""

    keys: Sequence[str]
    args: Sequence[Arg]

    def command(self) -> tuple[Arg, ...]:
        return tuple(self.args)


Call = ScriptCall | PlainCall


@dataclass
class _Batch:
    """The calls that go to one node in one round trip."""

    node: Node
    indexes: list[int] = field(default_factory=list)
    asking: bool = False  # the node is importing the slot: ASKING before each call
    wait: bool = False  # WAIT for a replica after the calls


def run_calls(topology: Topology, calls: Sequence[Call], *, confirm: bool = False) -> list[Any]:
    """Run ``calls`` (in order on each node) in one round trip; their replies, in order.

    Calls that failed with NOSCRIPT had no effect; their scripts are loaded and
    they run again in their original order. The first error reply, if any, is
    raised after every call has run. ``confirm``: see the module docstring.
    """
    if not topology.cluster:
        return _run_single(topology.client_for(calls[0].keys[0]), calls)
    replies: list[Any] = [None] * len(calls)
    todo = list(range(len(calls)))
    redirected: dict[int, Node] = {}  # ASK: the node importing the call's slot
    for _ in range(_REDIRECTS):
        batches = _batches(topology, calls, todo, redirected, confirm)
        for index, reply in _run_batches(topology, calls, batches).items():
            replies[index] = reply
        todo = [i for i in todo if isinstance(replies[i], (AskError, TryAgainError))]
        if not todo:
            break
        for i in todo:
            if type(replies[i]) is MovedError:
                topology.follow(replies[i])
        if any(isinstance(replies[i], TryAgainError) for i in todo):
            time.sleep(_TRY_AGAIN_PAUSE)  # keys of one slot are half moved: soon all
        redirected = {
            i: topology.node_at(replies[i].host, replies[i].port)
            for i in todo
            if type(replies[i]) is AskError
        }
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


def _run_single(node: Node, calls: Sequence[Call]) -> list[Any]:
    """One server: every call on one connection, nothing to route or confirm.

    The hot path of a send: kept apart from the cluster's, which costs a
    send on one server some 6 µs of Python it has no use for.
    """
    commands = [call.command() for call in calls]
    try:
        replies = _round_trip(node.client.connection_pool, commands)
    except redis.ConnectionError:  # a pooled socket the hub closed: once more
        replies = _round_trip(node.client.connection_pool, commands)
    missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
    if missing:
        for index, reply in _load_and_rerun(node, calls, missing).items():
            replies[index] = reply  # one server: nothing to confirm
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


def _batches(
    topology: Topology,
    calls: Sequence[Call],
    todo: list[int],
    redirected: dict[int, Node],
    confirm: bool,
) -> list[_Batch]:
    batches: dict[tuple[str, bool], _Batch] = {}
    for index in todo:
        asked = redirected.get(index)
        node = asked or topology.client_for(calls[index].keys[0])
        batch = batches.setdefault((node.name, asked is not None), _Batch(node))
        batch.asking = asked is not None
        batch.indexes.append(index)
        if confirm and topology.wait_for_replica(calls[index].keys[0]):
            batch.wait = True
    return list(batches.values())


def _run_batches(
    topology: Topology, calls: Sequence[Call], batches: list[_Batch]
) -> dict[int, Any]:
    """Every batch on its node, concurrently; a reply per call index.

    A connection the hub closed (it restarted, say) is retried once on a fresh
    one; a timeout is not, so a stalled hub is reported after one timeout.
    """
    try:
        results = _round_trips([(b.node, _commands(b, calls)) for b in batches])
    except redis.ConnectionError:
        results = _round_trips([(b.node, _commands(b, calls)) for b in batches])
    replies: dict[int, Any] = {}
    for batch, raw in zip(batches, results, strict=True):
        answers = raw[:-1] if batch.wait else raw
        if batch.asking:
            answers = answers[1::2]  # drop each ASKING's OK
        if batch.wait:
            _check_confirmed(topology, calls[batch.indexes[0]], raw[-1])
        replies.update(zip(batch.indexes, answers, strict=True))
        missing = [i for i in batch.indexes if isinstance(replies[i], NoScriptError)]
        if missing:
            # The WAIT above confirmed nothing of these (they wrote nothing):
            # the rerun is confirmed on its own.
            rerun = _Batch(batch.node, missing, batch.asking, batch.wait)
            replies.update(_load_and_rerun(batch.node, calls, missing, rerun, topology))
    return replies


def _commands(batch: _Batch, calls: Sequence[Call]) -> list[tuple[Arg, ...]]:
    commands: list[tuple[Arg, ...]] = []
    for index in batch.indexes:
        if batch.asking:
            commands.append(("ASKING",))
        commands.append(calls[index].command())
    if batch.wait:
        commands.append(("WAIT", 1, WAIT_TIMEOUT_MS))
    return commands


def _check_confirmed(topology: Topology, call: Call, acknowledged: Any) -> None:
    """NotConfirmed unless a replica acknowledged, or the cluster gave up on them all."""
    if isinstance(acknowledged, int) and acknowledged >= 1:
        return
    if not topology.replicas_given_up(call.keys[0]):
        raise NotConfirmed(f"no replica confirmed the write within {WAIT_TIMEOUT_MS} ms")


def _load_and_rerun(
    node: Node,
    calls: Sequence[Call],
    missing: list[int],
    batch: _Batch | None = None,
    topology: Topology | None = None,
) -> dict[int, Any]:
    """Load the scripts ``missing`` calls need on ``node`` and run them again,
    as ``batch`` runs them (ASKING, WAIT) when given."""
    scripts = [call.script for i in missing if isinstance(call := calls[i], ScriptCall)]
    sources = {script.sha: script.source for script in scripts}
    loads: list[tuple[Arg, ...]] = [("SCRIPT", "LOAD", source) for source in sources.values()]
    again = _commands(batch, calls) if batch else [calls[i].command() for i in missing]
    [answers] = _round_trips([(node, loads + again)])
    answers = answers[len(loads) :]
    if batch is not None and batch.wait:
        assert topology is not None
        _check_confirmed(topology, calls[missing[0]], answers[-1])
        answers = answers[:-1]
    if batch is not None and batch.asking:
        answers = answers[1::2]
    return dict(zip(missing, answers, strict=True))


def _round_trip(pool: redis.ConnectionPool, commands: list[tuple[Arg, ...]]) -> list[Any]:
    """One node's commands on one connection, every reply read (errors as values)."""
    connection = pool.get_connection()
    try:
        packed = connection.pack_commands(commands)  # type: ignore[no-untyped-call]
        connection.send_packed_command(packed)  # type: ignore[no-untyped-call]
        return [_reply(connection) for _ in commands]
    except BaseException:
        # Whatever was half sent or half read, the connection is out of step.
        connection.disconnect()  # type: ignore[no-untyped-call]
        raise
    finally:
        pool.release(connection)


def _reply(connection: Any) -> Any:
    try:
        return connection.read_response()
    except redis.exceptions.ResponseError as error:
        return error


def _round_trips(work: list[tuple[Node, list[tuple[Arg, ...]]]]) -> list[list[Any]]:
    """Send each node its commands, then read every reply (errors as values)."""
    taken: list[tuple[redis.ConnectionPool, Any]] = []
    try:
        for node, commands in work:
            pool = node.client.connection_pool
            connection = pool.get_connection()
            taken.append((pool, connection))
            packed = connection.pack_commands(commands)  # type: ignore[no-untyped-call]
            connection.send_packed_command(packed)  # type: ignore[no-untyped-call]
        results: list[list[Any]] = []
        for (_, connection), (_, commands) in zip(taken, work, strict=True):
            results.append([_reply(connection) for _ in commands])
        return results
    except BaseException:
        # Whatever was half sent or half read, these connections are out of step.
        for _, connection in taken:
            connection.disconnect()
        raise
    finally:
        for pool, connection in taken:
            pool.release(connection)


@cache
def load(filename: str) -> LuaScript:
    """The script in ``filename``, read once per process."""
    return LuaScript(filename)
