"""The child side of :class:`benchmarks.core.Worker`.

``python -m benchmarks.worker MODULE:FUNCTION CONFIG_JSON`` runs
``benchmarks.MODULE.FUNCTION(config, control)``. A worker never outlives the
harness: it exits when its stdin closes (the harness stopped it, or died) and
at ``config["deadline"]`` seconds whatever it is doing, so no loop here can
run unbounded.
"""

import importlib
import json
import os
import queue
import sys
import threading
from collections.abc import Callable
from typing import Any

DEFAULT_DEADLINE = 600.0


class Control:
    """The worker's line protocol with the harness."""

    def __init__(self) -> None:
        self._commands: queue.Queue[str] = queue.Queue()
        self._finished = threading.Event()
        threading.Thread(target=self._read_stdin, name="stdin", daemon=True).start()

    def _read_stdin(self) -> None:
        for line in sys.stdin:
            self._commands.put(line.strip())
        # stdin closed: the harness is done with us (or gone). A worker that
        # has not reported yet was aborted; one that has is exiting anyway.
        if not self._finished.is_set():
            os._exit(3)

    def _say(self, line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def ready(self) -> None:
        self._say("ready")

    def note(self, text: str) -> None:
        self._say(f"note {text}")

    def command(self) -> str:
        """The next command from the harness (blocks)."""
        return self._commands.get()

    def result(self, data: dict[str, Any]) -> None:
        self._finished.set()
        self._say("result " + json.dumps(data))


def _expire(seconds: float) -> None:
    sys.stderr.write(f"worker deadline of {seconds:.0f} s passed; exiting\n")
    sys.stderr.flush()
    os._exit(4)


def main() -> None:
    role, raw_config = sys.argv[1], sys.argv[2]
    config: dict[str, Any] = json.loads(raw_config)
    deadline = float(config.get("deadline", DEFAULT_DEADLINE))
    timer = threading.Timer(deadline, _expire, (deadline,))
    timer.daemon = True
    timer.start()
    module_name, _, function_name = role.partition(":")
    module = importlib.import_module(f"benchmarks.{module_name}")
    function: Callable[[dict[str, Any], Control], None] = getattr(module, function_name)
    function(config, Control())


if __name__ == "__main__":
    main()
