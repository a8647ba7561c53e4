"""Coalesced actions: pure logic, no hub."""

from chatbus_cli.ui.coalesce import Coalesced


def test_a_burst_of_triggers_runs_the_action_once() -> None:
    calls: list[int] = []
    later = Coalesced(60, lambda: calls.append(1))
    for _ in range(100):
        later.trigger()
    later.flush()
    later.flush()  # nothing pending any more
    assert calls == [1]


def test_a_cancelled_action_never_runs() -> None:
    calls: list[int] = []
    later = Coalesced(60, lambda: calls.append(1))
    later.trigger()
    later.cancel()
    later.flush()
    assert calls == []
    later.trigger()  # a new burst after the cancel is pending again
    later.flush()
    assert calls == [1]
