"""Reading one conversation: from the first unread message, back to the first.

Unread messages are counted per sender (``NS:{u}:unread``), and the unread
ones are always the newest a sender sent. So a reader that shows a
conversation newest first knows which messages were unread without any
per-message state: a conversation with 25 unread from carol opens far enough
back to show carol's 25 newest messages, and the count drops by the number
it showed. When there are more than :data:`UNREAD_SHOWN_MAX`, the older ones
are not put on screen at once; they stay unread until the reader pages back
to them (:meth:`ConversationReader.older`), so nothing is marked read that
nobody saw.

Each view of a conversation (the line chat, the full-screen app) holds one
:class:`ConversationReader`. The view serialises its calls, except that
:meth:`ConversationReader.flush_read` may run on a timer thread.
"""

import threading
from dataclasses import dataclass, field

from .messages import Mailbox, Message, in_conversation, stream_id_key
from .names import same_name

# The most unread messages put on screen when a conversation opens.
UNREAD_SHOWN_MAX = 200
# Read messages shown above the first unread one, for context.
UNREAD_CONTEXT = 3


@dataclass
class Opening:
    """What a conversation shows when it opens, oldest first."""

    messages: list[Message] = field(default_factory=list)
    # Index in ``messages`` of the first unread one, or None when none is.
    first_unread: int | None = None
    # Unread messages older than ``messages``: still unread, reached by paging back.
    unread_not_shown: int = 0


@dataclass
class OlderPage:
    """Messages before everything shown so far, oldest first."""

    messages: list[Message]
    # False once the page reaches the beginning of the conversation.
    more: bool


class ConversationReader:
    """One conversation of ``mailbox``'s owner with ``peer``, as one view reads it."""

    def __init__(self, mailbox: Mailbox, peer: str) -> None:
        self.mailbox = mailbox
        self.peer = peer
        self.unread_left = 0  # unread messages of the peer older than all shown
        # Cursor for the next older page: "" before anything was shown (start
        # from the newest), None once the beginning has been shown.
        self._older: str | None = ""
        self._newest = (0, 0)  # the newest stream id shown, as a key
        self._ids: set[str] = set()  # copy keys shown: a retried copy shows once
        self._read_unmarked = 0  # peer messages shown live, not yet marked read
        self._unmarked_lock = threading.Lock()
        self._unread_field = peer

    @property
    def me(self) -> str:
        return self.mailbox.owner

    def includes(self, message: Message) -> bool:
        return in_conversation(self.me, self.peer, message.envelope)

    def _from_peer(self, message: Message) -> bool:
        return same_name(message.envelope.sender, self.peer) and not same_name(self.peer, self.me)

    def unread(self) -> int:
        """The peer's unread count (the count's field is spelled as the sender spells it)."""
        for name, count in self.mailbox.unread_counts().items():
            if same_name(name, self.peer):
                self._unread_field = name
                return count
        return 0

    def open(self, history: int) -> Opening:
        """The newest ``history`` messages, or more: back to the first unread
        one (at most :data:`UNREAD_SHOWN_MAX` unread). Marks what it shows read."""
        unread = self.unread()
        target = min(unread, UNREAD_SHOWN_MAX)
        if max(history, target) == 0:
            return Opening()
        messages: list[Message] = []
        from_peer = 0
        before: str | None = None
        # Context above the first unread, unless what is above it is unread too.
        context = UNREAD_CONTEXT if 0 < unread <= UNREAD_SHOWN_MAX else 0
        limit = max(history, target + context)
        while True:
            page = self.mailbox.conversation(self.peer, limit, before)
            fresh = self._keep_new(page.messages)
            messages[:0] = fresh
            from_peer += sum(1 for m in fresh if self._from_peer(m))
            before = page.older
            if from_peer >= target or before is None:
                break
            limit = max(target - from_peer, 20)  # at least that many more messages
        self._older = before
        if messages:
            self._newest = max(stream_id_key(m.stream_id) for m in messages)
        opening = Opening(messages)
        shown_unread = min(unread, from_peer)
        if before is None:
            # The whole conversation is on screen: whatever was counted is read.
            self._mark(unread)
        else:
            self.unread_left = opening.unread_not_shown = unread - shown_unread
            self._mark(shown_unread)
        opening.first_unread = self._index_of_nth_from_peer(messages, shown_unread)
        return opening

    def _index_of_nth_from_peer(self, messages: list[Message], n: int) -> int | None:
        """Index of the ``n``-th newest message from the peer (None for n = 0)."""
        if n <= 0:
            return None
        seen = 0
        for index in range(len(messages) - 1, -1, -1):
            if self._from_peer(messages[index]):
                seen += 1
                if seen == n:
                    return index
        return None

    def older(self, limit: int) -> OlderPage:
        """Up to ``limit`` messages before the oldest shown; marks the unread among them read."""
        if self._older is None:
            return OlderPage([], more=False)
        page = self.mailbox.conversation(self.peer, limit, self._older or None)
        self._older = page.older
        messages = self._keep_new(page.messages)
        read = min(self.unread_left, sum(1 for m in messages if self._from_peer(m)))
        if read:
            self.unread_left -= read
            self._mark(read)
        return OlderPage(messages, more=page.older is not None)

    def latest(self, limit: int) -> list[Message]:
        """The newest ``limit`` messages, for showing again."""
        return self.mailbox.conversation(self.peer, limit).messages

    def take_live(self, message: Message) -> bool:
        """True when a live ``message`` of this conversation is not on screen yet;
        a message from the peer then counts as read at the next :meth:`flush_read`."""
        if not self.includes(message) or message.envelope.copy_key in self._ids:
            return False
        key = stream_id_key(message.stream_id)
        if key <= self._newest:
            return False  # in what was shown already
        self._newest = key
        self._ids.add(message.envelope.copy_key)
        if self._from_peer(message):
            with self._unmarked_lock:
                self._read_unmarked += 1
        return True

    def flush_read(self) -> None:
        """Mark the peer's messages shown live since the last call read."""
        with self._unmarked_lock:
            count, self._read_unmarked = self._read_unmarked, 0
        if count:
            self._mark(count)

    def _keep_new(self, messages: list[Message]) -> list[Message]:
        fresh = [m for m in messages if m.envelope.copy_key not in self._ids]
        self._ids.update(m.envelope.copy_key for m in fresh)
        return fresh

    def _mark(self, count: int) -> None:
        if count > 0 and not same_name(self.peer, self.me):
            self.mailbox.mark_read(self._unread_field, count)
