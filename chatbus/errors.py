"""The errors the library raises; each message is one line a user can act on."""


class ChatbusError(Exception):
    """Base of every error chatbus reports to a user."""


class InvalidName(ChatbusError):
    """A user name that is not 1-32 of letters, digits, ``_`` and ``-``."""


class InvalidSetting(ChatbusError):
    """A setting (namespace, URL, size limit...) that cannot be used."""


class WeakPassword(ChatbusError):
    """A password that is too short or too long to register."""


class NameTaken(ChatbusError):
    """The name was registered by someone else first."""


class WrongPassword(ChatbusError):
    """The password does not match the registered account."""


class TooManyWrongPasswords(ChatbusError):
    """A password try refused unchecked: too many wrong ones in a row for that name."""


class UnknownUser(ChatbusError):
    """No account is registered under that name."""


class NotLoggedIn(ChatbusError):
    """There is no saved session, or the hub no longer accepts it."""


class SessionEnded(NotLoggedIn):
    """A saved session the hub no longer accepts (logged out, or the password changed)."""


class AccessRefused(NotLoggedIn):
    """A secured hub refused the credentials: none given, a removed user, a reset password."""


class NotAMember(ChatbusError):
    """The user is not in the room (or it does not exist, or it is private).

    ``join``: the room, when joining it is the way on (a view or the CLI says
    how, each in its own words: ``/join #ops`` or ``chatbus join +ops``).
    """

    def __init__(self, message: str, join: str | None = None) -> None:
        super().__init__(message)
        self.join = join


class InvalidMessage(ChatbusError):
    """A message body that cannot be sent: empty, too long, or not text."""


class HubRefused(ChatbusError):
    """The hub answered a command with an error (out of memory, read-only, ...)."""


class DamagedRecord(ChatbusError):
    """Data on the hub that no chatbus client wrote: an account, a list, a count."""


class HubUnavailable(ChatbusError):
    """The Redis hub cannot be reached or refused the connection."""

    # What to do when nothing (or nothing chatbus can use) answers at the URL.
    START_ONE = (
        "Start one with 'chatbus server' or 'docker compose up -d', or point "
        "--url/CHATBUS_URL at yours (for a cluster: any node that is up)"
    )

    def __init__(
        self, url: str, reason: str, *, stalled: bool = False, advice: str | None = START_ONE
    ) -> None:
        self.url = url
        self.reason = reason
        # True when the hub stopped answering (a timeout): unlike a refused
        # connection, the last command may have been carried out.
        self.stalled = stalled
        then = f". {advice}" if advice else ""
        super().__init__(f"cannot reach the hub at {url} ({reason}){then}")


class Unconfirmed(HubUnavailable):
    """A cluster did not confirm a send in time (a failover that went on too long).

    The messages may have been stored: the hub may have taken them, with no
    replica confirming before the time was up.
    """

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(url, reason, stalled=True)
        self.args = (f"not confirmed by the hub at {url}: {reason}",)
