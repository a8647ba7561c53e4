"""Sending from a running chat: in order, and nothing typed lost while the hub is away.

A view hands each message the user typed to :meth:`Outbox.submit`. While the
hub answers and nothing is waiting, it goes out at once on the calling (input)
thread, and a refusal (no such user, the hub out of memory) is raised there.
When the hub cannot be reached, or earlier messages are still waiting, it is
queued instead, and a flusher thread sends the queue in order as soon as the
hub is back. Each retry sends the same envelopes (the same ids), so a message
the hub stored before its reply was lost shows once: receivers drop a second
copy by id. The queue is capped, so an outage cannot eat memory unseen.
"""

import random
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from .envelope import TEXT, Envelope, new_envelope
from .errors import ChatbusError, HubUnavailable
from .messages import SEND_BATCH, Mailbox

# Envelopes that may wait for the hub: beyond this, submit refuses.
MAX_PENDING = 1000
_RETRY_FIRST = 0.1
_RETRY_MAX = 3.0


class OutboxFull(ChatbusError):
    """Too many messages are waiting for the hub already."""


@dataclass
class Outgoing:
    """What one submit sends: one or more bodies to one recipient, in order."""

    recipient: str
    envelopes: list[Envelope]
    # How many of the envelopes the hub has confirmed (a retry sends the rest).
    confirmed: int = 0
    # True once the listener was told that it waits for the hub.
    waiting: bool = False
    # True once a try failed: the hub may have stored part of it.
    retrying: bool = False


class OutboxListener(Protocol):
    """What the outbox reports; called on the thread that sent or gave up."""

    def on_pending(self, item: Outgoing, reason: str) -> None:
        """``item`` could not go now (``reason``) and waits for the hub."""

    def on_sent(self, item: Outgoing) -> None:
        """``item``, which had been waiting, is now on the hub."""

    def on_failed(self, item: Outgoing, error: ChatbusError) -> None:
        """The hub refused ``item``, which had been waiting; it is dropped."""


class Outbox:
    """The messages one client sends, in the order they were submitted."""

    def __init__(
        self, mailbox: Mailbox, listener: OutboxListener, *, max_pending: int = MAX_PENDING
    ) -> None:
        self.mailbox = mailbox
        self.listener = listener
        self.max_pending = max_pending
        self._queue: deque[Outgoing] = deque()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        # One sender at a time takes from the queue, so order is kept: the
        # input thread for a message that found the queue empty, else the
        # flusher thread. True while either is at it.
        self._draining = False
        self._hub_up = threading.Event()
        self._hub_up.set()  # until the receiver says otherwise, try
        self._closed = threading.Event()

    # -- for the view -----------------------------------------------------

    def submit(self, recipient: str, bodies: Sequence[str], kind: str = TEXT) -> Outgoing:
        """Send ``bodies`` to ``recipient`` (a name or a room) now, or queue
        them if the hub is away; ``kind``: ``me`` for an action (/me).

        Raises InvalidMessage for a body that cannot be sent, OutboxFull when
        the queue is full, and the hub's refusal of a message sent at once.
        """
        envelopes = [
            new_envelope(self.mailbox.owner, recipient, body, self.mailbox.max_body, kind)
            for body in bodies
        ]
        item = Outgoing(recipient, envelopes)
        with self._lock:
            waiting = self._waiting()
            if waiting and waiting + len(envelopes) > self.max_pending:
                raise OutboxFull(
                    f"{waiting} messages are waiting for the hub already; send more once it is back"
                )
            self._queue.append(item)
            was_draining, self._draining = self._draining, True
            inline = not was_draining and self._hub_up.is_set()
            if not was_draining and not inline:
                self._start_flusher()
        if inline:
            self._send_inline(item)
        else:
            reason = "waiting for earlier messages" if was_draining else "the hub is unreachable"
            self._announce(item, reason)
        return item

    def pending(self) -> list[Outgoing]:
        """What waits for the hub, in order."""
        with self._lock:
            return list(self._queue)

    def waiting(self) -> int:
        """How many messages wait for the hub."""
        with self._lock:
            return self._waiting()

    def _waiting(self) -> int:
        return sum(len(item.envelopes) - item.confirmed for item in self._queue)

    def hub_reachable(self, reachable: bool) -> None:
        """The receiver's word on the hub: while it is away, submit queues at once."""
        if reachable:
            self._hub_up.set()
        else:
            self._hub_up.clear()

    def drain(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the queue to empty; True if it did."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._queue, timeout=timeout)

    def close(self, wait: float = 0.0) -> list[Outgoing]:
        """Give the queue up to ``wait`` seconds to empty, then stop; what is left."""
        self.drain(wait)
        with self._lock:
            self._closed.set()
            return list(self._queue)

    # -- sending ----------------------------------------------------------

    def _send_inline(self, item: Outgoing) -> None:
        try:
            # One try: the input thread must not wait out a failover.
            self._deliver(item, patient=False)
        except HubUnavailable as error:
            self._announce(item, error.reason)
            with self._lock:
                self._start_flusher()
            return
        except ChatbusError:
            self._done(item, handing_on=True)
            raise
        self._done(item, handing_on=True)

    def _start_flusher(self) -> None:
        """Hand the queue to a flusher thread (the caller holds the lock)."""
        self._draining = True
        threading.Thread(target=self._flush, name="chatbus-outbox", daemon=True).start()

    def _flush(self) -> None:
        delay = _RETRY_FIRST
        while True:
            with self._lock:
                if not self._queue or self._closed.is_set():
                    self._draining = False
                    return
                item = self._queue[0]
            if not self._hub_up.is_set():
                # The receiver says when the hub is back; try anyway after a while.
                self._hub_up.wait(_RETRY_MAX)
                if self._closed.is_set():
                    continue
            try:
                self._deliver(item)
            except HubUnavailable as error:
                self._announce(item, error.reason)
                self._closed.wait(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, _RETRY_MAX)
                continue
            except ChatbusError as error:
                self._done(item)
                self.listener.on_failed(item, error)
                continue
            delay = _RETRY_FIRST
            self._done(item)
            if item.waiting:
                self.listener.on_sent(item)

    def _deliver(self, item: Outgoing, *, patient: bool = True) -> None:
        """Send what the hub has not confirmed of ``item``, ``SEND_BATCH`` at a time."""
        while item.confirmed < len(item.envelopes):
            batch = item.envelopes[item.confirmed : item.confirmed + SEND_BATCH]
            try:
                self.mailbox.deliver(item.recipient, batch, retry=item.retrying, patient=patient)
            except HubUnavailable:
                item.retrying = True
                raise
            item.confirmed += len(batch)
            item.retrying = False

    def _announce(self, item: Outgoing, reason: str) -> None:
        """Tell the listener, once per item, that it waits for the hub."""
        if not item.waiting:
            item.waiting = True
            self.listener.on_pending(item, reason)

    def _done(self, item: Outgoing, *, handing_on: bool = False) -> None:
        """``item`` was sent or refused: out of the queue. An inline sender
        (``handing_on``) hands what was queued meanwhile to a flusher."""
        with self._lock:
            if self._queue and self._queue[0] is item:
                self._queue.popleft()
            if handing_on:
                if self._queue:
                    self._start_flusher()
                else:
                    self._draining = False
            self._changed.notify_all()
