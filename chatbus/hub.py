"""The connection to the Redis hub: one pool for commands, pub/sub on demand."""

from collections.abc import Iterator
from contextlib import contextmanager

import redis
import redis.exceptions
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.client import PubSub
from redis.retry import Retry

from .config import Settings, display_url
from .errors import HubRefused, HubUnavailable
from .keys import Keys

# A command that gets no answer in this time means the hub is gone or stopped;
# it bounds how long any call can hang on a silently dead connection.
SOCKET_TIMEOUT = 5.0
CONNECT_TIMEOUT = 3.0


def as_text(value: bytes | str) -> str:
    """A reply as text (replies are bytes: the clients do not decode). Bytes that
    are not UTF-8 become U+FFFD, which every validator then refuses."""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def describe_failure(error: BaseException) -> str:
    """A short reason for a connection failure, without a traceback."""
    text = str(error).strip().rstrip(".") or type(error).__name__
    # redis-py prefixes socket errors with the address; the URL is named already.
    if "Error " in text and "connecting to" in text:
        text = text.split(". ", 1)[-1] if ". " in text else text
    return text.splitlines()[0]


class Hub:
    """A namespace on one Redis server, as seen by one chatbus process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys: Keys = settings.keys
        # Commands retry once on a broken connection (a pooled socket the hub
        # closed while it restarted) but never on a timeout: a hub that stopped
        # answering should be reported after one SOCKET_TIMEOUT, not four.
        self.redis: redis.Redis = self._client(
            Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), 1, (redis.ConnectionError,))
        )
        # Pub/sub never reconnects on its own: redis-py would resubscribe
        # silently, and the messages published meanwhile would be missed.
        # The receiver reconnects itself and reads the gap from the mailbox.
        self._pubsub_client = self._client(Retry(NoBackoff(), 0))

    def _client(self, retry: Retry) -> redis.Redis:
        return redis.Redis.from_url(
            self.settings.url,
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=CONNECT_TIMEOUT,
            decode_responses=False,
            retry=retry,
        )

    @property
    def url(self) -> str:
        return display_url(self.settings.url)

    def pubsub(self) -> PubSub:
        """A new pub/sub connection; the caller owns and closes it."""
        pubsub: PubSub = self._pubsub_client.pubsub()  # type: ignore[no-untyped-call]
        return pubsub

    def time_ms(self) -> int:
        """The hub's clock, in ms since the epoch."""
        with self.errors():
            seconds, micros = self.redis.time()
        return int(seconds) * 1000 + int(micros) // 1000

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Turn redis-py's connection errors into one-line HubUnavailable."""
        try:
            yield
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as error:
            stalled = isinstance(error, redis.exceptions.TimeoutError)
            raise HubUnavailable(self.url, describe_failure(error), stalled=stalled) from error
        except redis.exceptions.InvalidResponse as error:
            raise HubUnavailable(
                self.url, "what answers there is not a Redis server; is it the right port?"
            ) from error
        except redis.exceptions.ResponseError as error:
            text = describe_failure(error)
            if "unknown command" in text.lower():
                raise HubUnavailable(
                    self.url, f"the server is too old ({text}); chatbus needs Redis 7+ or Valkey"
                ) from error
            raise HubRefused(f"the hub at {self.url} refused the request: {text}") from error

    def close(self) -> None:
        self.redis.close()
        self._pubsub_client.close()
