"""What answers on a local port, for `make up` (scripts/hub-up.sh).

Usage: python scripts/hub_probe.py PORT

Prints one line such as ``Valkey 8.1.8, holding chatbus data (namespace
chatbus)``. Exit status: 0 when a Redis-compatible server answers that chatbus
can use, 2 when one answers that it cannot (too old, or it needs a password),
1 when nothing does. Chatbus data is found without KEYS: the namespace's
presence sequence key, else a bounded SCAN for account keys; key names come
from chatbus.keys. The namespace is CHATBUS_NAMESPACE's, or the default.
"""

import os
import sys

import redis

from chatbus.keys import DEFAULT_NAMESPACE, Keys

# Keys a SCAN looks at, at most: someone else's Redis may hold millions.
SCAN_BUDGET = 10_000
SCAN_COUNT = 1_000
ASKS_FOR_AUTH = "a server that needs a password (put it in the URL: redis://:PASSWORD@host:port/0)"


def engine(info: dict[str, object]) -> tuple[str, str]:
    """("Valkey", "8.1.8") or ("Redis", "7.0.15") from INFO server.

    Valkey also reports a ``redis_version`` (7.2.4, for compatibility); its
    own version is ``valkey_version``.
    """
    if info.get("server_name") == "valkey" or "valkey_version" in info:
        return "Valkey", str(info.get("valkey_version", info.get("redis_version", "?")))
    return "Redis", str(info.get("redis_version", "?"))


def too_old(name: str, version: str) -> bool:
    """Older than chatbus needs: sharded pub/sub came with Redis 7.0 and Valkey 7.2."""
    try:
        major, minor = (int(part) for part in version.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) < ((7, 0) if name == "Redis" else (7, 2))


def chatbus_data(client: redis.Redis, keys: Keys) -> str:
    """Whether the hub holds data of the namespace ``keys`` names."""
    where = f"(namespace {keys.namespace})"
    if client.exists(keys.presence_seq):
        return f"holding chatbus data {where}"
    cursor, seen = 0, 0
    while True:
        cursor, found = client.scan(cursor, match=keys.account("*"), count=SCAN_COUNT)
        if found:
            return f"holding chatbus data {where}"
        seen += SCAN_COUNT
        if cursor == 0:
            return f"with no chatbus data {where}"
        if seen >= SCAN_BUDGET:
            return f"with no chatbus data in the first {SCAN_BUDGET} keys {where}"


def probe(port: int, namespace: str) -> int:
    client = redis.Redis(port=port, socket_connect_timeout=1, socket_timeout=2)
    try:
        info = client.info("server")
    except (redis.ConnectionError, redis.TimeoutError, redis.InvalidResponse) as error:
        if "NOAUTH" in str(error) or isinstance(error, redis.AuthenticationError):
            print(ASKS_FOR_AUTH)
            return 2
        return 1  # nothing answers, or not a Redis server
    except redis.ResponseError as error:
        if "NOAUTH" in str(error):
            print(ASKS_FOR_AUTH)
            return 2
        print(f"a server that refuses INFO ({str(error).splitlines()[0]})")
        return 2
    name, version = engine(info)
    if too_old(name, version):
        print(f"{name} {version}, too old for chatbus (it needs Redis 7+ or Valkey 7.2+)")
        return 2
    try:
        data = chatbus_data(client, Keys(namespace))
    except redis.RedisError as error:
        data = f"whether it holds chatbus data is unknown ({str(error).splitlines()[0]})"
    print(f"{name} {version}, {data}")
    return 0


if __name__ == "__main__":
    namespace = os.environ.get("CHATBUS_NAMESPACE") or DEFAULT_NAMESPACE
    sys.exit(probe(int(sys.argv[1]), namespace))
