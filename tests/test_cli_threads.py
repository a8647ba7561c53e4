"""The CLI's background threads: coalesced actions, and what a failing one shows."""

import threading
from pathlib import Path

import pytest

from chatbus_cli.thread_errors import report_thread_errors
from chatbus_cli.ui.coalesce import Coalesced


def test_a_burst_of_triggers_runs_the_action_once() -> None:
    calls: list[int] = []
    later = Coalesced(60, lambda: calls.append(1))
    for _ in range(100):
        later.trigger()
    later.flush()
    later.flush()  # nothing pending any more
    assert calls == [1]


def test_a_cancelled_pending_action_does_not_run() -> None:
    calls: list[int] = []
    later = Coalesced(60, lambda: calls.append(1))
    later.trigger()
    later.cancel()
    later.flush()
    assert calls == []
    later.trigger()  # a new burst after the cancel is pending again
    later.flush()
    assert calls == [1]


def test_a_failing_background_thread_prints_one_line_and_logs_the_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)  # restored afterwards
    report_thread_errors()

    def redraw() -> None:
        raise RuntimeError("the screen went away")

    thread = threading.Thread(target=redraw, name="redraw")
    thread.start()
    thread.join()
    log = tmp_path / "chatbus" / "log" / "errors.log"
    assert capsys.readouterr().err == (
        f"Error: internal error in redraw (RuntimeError); details in {log}\n"
    )
    assert "Traceback" in log.read_text()
    assert "RuntimeError: the screen went away" in log.read_text()
