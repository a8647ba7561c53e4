"""The outbox: what is typed while the hub is away waits, in order, and goes when it is back."""

import threading
from pathlib import Path

import pytest
from conftest import make_settings
from helpers import wait_until

from chatbus import accounts
from chatbus.errors import ChatbusError, UnknownUser
from chatbus.hub import Hub
from chatbus.messages import Mailbox
from chatbus.outbox import Outbox, OutboxFull, Outgoing
from chatbus.server import HubProcess


class Reports:
    """An OutboxListener that keeps what it is told."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.pending: list[tuple[list[str], str]] = []
        self.sent: list[list[str]] = []
        self.failed: list[tuple[list[str], str]] = []

    def on_pending(self, item: Outgoing, reason: str) -> None:
        with self._lock:
            self.pending.append(([e.body for e in item.envelopes], reason))

    def on_sent(self, item: Outgoing) -> None:
        with self._lock:
            self.sent.append([e.body for e in item.envelopes])

    def on_failed(self, item: Outgoing, error: ChatbusError) -> None:
        with self._lock:
            self.failed.append(([e.body for e in item.envelopes], str(error)))


def inbox(hub: Hub, name: str) -> list[str]:
    return [m.envelope.body for m in Mailbox(hub, name).read_after("0-0").messages]


@pytest.fixture
def own(own_hub: HubProcess, tmp_path: Path) -> Hub:
    hub = Hub(make_settings(own_hub, tmp_path))
    for name in ("alice", "bob"):
        accounts.register(hub, name, "password1")
    return hub


def test_a_message_goes_at_once_while_the_hub_answers(hub: Hub) -> None:
    for name in ("alice", "bob"):
        accounts.register(hub, name, "password1")
    reports = Reports()
    outbox = Outbox(Mailbox(hub, "alice"), reports)
    outbox.submit("bob", ["hi", "there"])
    assert inbox(hub, "bob") == ["hi", "there"]
    assert outbox.pending() == []
    assert (reports.pending, reports.sent, reports.failed) == ([], [], [])
    # A refusal of a message sent at once is the caller's to report.
    with pytest.raises(UnknownUser):
        outbox.submit("nobody", ["hello?"])
    assert outbox.pending() == []


def test_messages_typed_while_the_hub_is_down_wait_and_go_in_order_when_it_is_back(
    own: Hub, own_hub: HubProcess
) -> None:
    reports = Reports()
    outbox = Outbox(Mailbox(own, "alice"), reports)
    outbox.submit("bob", ["before"])
    own_hub.stop()
    for text in ("one", "two", "three"):
        outbox.submit("bob", [text])
    assert [bodies for bodies, _ in reports.pending] == [["one"], ["two"], ["three"]]
    assert outbox.waiting() == 3
    own_hub.start()
    wait_until(lambda: len(reports.sent) == 3, 15, "the queued messages to go")
    assert reports.sent == [["one"], ["two"], ["three"]]
    assert inbox(own, "bob") == ["before", "one", "two", "three"]
    assert outbox.pending() == []
    # And the next message goes at once again.
    outbox.submit("bob", ["after"])
    assert inbox(own, "bob")[-1] == "after"


def test_while_the_receiver_says_the_hub_is_away_submit_queues_without_trying(
    own: Hub, own_hub: HubProcess
) -> None:
    reports = Reports()
    outbox = Outbox(Mailbox(own, "alice"), reports)
    outbox.hub_reachable(False)
    outbox.submit("bob", ["queued"])
    assert reports.pending == [(["queued"], "the hub is unreachable")]
    outbox.hub_reachable(True)
    wait_until(lambda: reports.sent, 10, "the queued message to go")
    assert inbox(own, "bob") == ["queued"]


def test_a_queued_message_the_hub_refuses_is_reported_and_the_rest_go_on(
    own: Hub, own_hub: HubProcess
) -> None:
    reports = Reports()
    outbox = Outbox(Mailbox(own, "alice"), reports)
    own_hub.stop()
    outbox.submit("zed", ["to nobody"])
    outbox.submit("bob", ["to bob"])
    own_hub.start()
    wait_until(lambda: reports.sent, 15, "the message to bob to go")
    assert reports.failed == [(["to nobody"], "no account named 'zed'")]
    assert inbox(own, "bob") == ["to bob"]


def test_the_queue_is_capped_and_leaving_says_what_is_left(own: Hub, own_hub: HubProcess) -> None:
    outbox = Outbox(Mailbox(own, "alice"), Reports(), max_pending=3)
    own_hub.stop()
    outbox.submit("bob", ["1", "2"])
    outbox.submit("bob", ["3"])
    with pytest.raises(OutboxFull, match="3 messages are waiting for the hub already"):
        outbox.submit("bob", ["4"])
    left = outbox.close(wait=0)
    assert [[e.body for e in item.envelopes] for item in left] == [["1", "2"], ["3"]]
