"""Run an action once for a burst of triggers: a batch of 100 messages makes
one redraw of the lobby, one "read" mark on the hub, not a hundred."""

import threading
from collections.abc import Callable


class Coalesced:
    """Calls ``action`` ``delay`` seconds after the first of a burst of triggers."""

    def __init__(self, delay: float, action: Callable[[], None]) -> None:
        self.delay = delay
        self.action = action
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def trigger(self) -> None:
        with self._lock:
            if self._timer is None:
                self._timer = threading.Timer(self.delay, self._fire)
                self._timer.daemon = True
                self._timer.start()

    def flush(self) -> None:
        """Run the pending action now (if one is pending), on this thread."""
        if self._take_pending():
            self.action()

    def cancel(self) -> None:
        """Drop the pending action, if any: its view has left the screen."""
        self._take_pending()

    def _take_pending(self) -> bool:
        with self._lock:
            pending, self._timer = self._timer, None
        if pending is None:
            return False
        pending.cancel()
        return True

    def _fire(self) -> None:
        with self._lock:
            self._timer = None
        self.action()
