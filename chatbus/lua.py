"""Lua scripts kept as .lua files beside this package, run by SHA.

redis-py's own ``Script`` objects send ``SCRIPT EXISTS`` before every pipeline,
which would double the round trips of a send. These run ``EVALSHA`` directly
and load the script only when the server answers NOSCRIPT (a fresh or
restarted hub).
"""

import hashlib
from collections.abc import Sequence
from functools import cache
from importlib.resources import files
from typing import Any

import redis
from redis.client import Pipeline
from redis.exceptions import NoScriptError

Arg = str | bytes | int | float


class LuaScript:
    """One script file, called by its SHA1."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.source = files("chatbus").joinpath(filename).read_text(encoding="utf-8")
        self.sha = hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest()

    def __call__(self, client: redis.Redis, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            client.script_load(self.source)
            return client.evalsha(self.sha, len(keys), *keys, *args)

    def queue(self, pipe: Pipeline, keys: Sequence[str], args: Sequence[Arg]) -> None:
        """Add a call to ``pipe``; run the pipeline with :func:`run_pipeline`."""
        pipe.evalsha(self.sha, len(keys), *keys, *args)


def run_pipeline(pipe: Pipeline, scripts: Sequence[LuaScript]) -> list[Any]:
    """Execute ``pipe`` whose queued calls are ``scripts``, in order.

    Calls that failed with NOSCRIPT had no effect; they are loaded and run again
    in their original order, so the result is as if the scripts had been loaded.
    """
    queued = list(pipe.command_stack)
    results = pipe.execute(raise_on_error=False)
    missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
    if missing:
        for script in {id(scripts[i]): scripts[i] for i in missing}.values():
            pipe.script_load(script.source)
        for i in missing:
            args, options = queued[i]
            pipe.execute_command(*args, **options)  # type: ignore[no-untyped-call]
        retried = pipe.execute(raise_on_error=False)[-len(missing) :]
        for i, result in zip(missing, retried, strict=True):
            results[i] = result
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results


@cache
def load(filename: str) -> LuaScript:
    """The script in ``filename``, read once per process."""
    return LuaScript(filename)
