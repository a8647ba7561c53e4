"""What the sidebar lists: people and rooms, with unread and mention badges.

Pure bookkeeping, no widgets: the app feeds it the hub's counts, presence
and each message that arrives elsewhere, and asks it for the entries in the
order they are shown.
"""

from dataclasses import dataclass, field

from chatbus.names import is_room, same_name


@dataclass(frozen=True)
class Entry:
    """One line of the sidebar: a person or a room (``#ops``)."""

    name: str
    online: bool = False
    unread: int = 0
    mentions: int = 0
    invited_by: str | None = None  # a room one is invited to, not in yet

    @property
    def room(self) -> bool:
        return is_room(self.name)


@dataclass
class Roster:
    """The sidebar's state for the user ``me``."""

    me: str
    online: list[str] = field(default_factory=list)
    # People and rooms with their counts, keyed by the lower-case name.
    unread: dict[str, int] = field(default_factory=dict)
    mentions: dict[str, int] = field(default_factory=dict)
    rooms: dict[str, str] = field(default_factory=dict)  # lower-case -> as shown
    spelled: dict[str, str] = field(default_factory=dict)  # people: lower-case -> as shown
    current: str | None = None  # the conversation on screen: always listed
    invited: dict[str, str] = field(default_factory=dict)  # room (lower-case) -> by whom

    def set_counts(
        self, people: dict[str, int], rooms: dict[str, tuple[int, int]], current: str | None
    ) -> None:
        """The hub's counts (``people``: name -> unread; ``rooms``: room -> (unread, mentions))."""
        self.unread = {name.lower(): count for name, count in people.items()}
        self.spelled.update({name.lower(): name for name in people})
        self.mentions = {}
        self.rooms = {room.lower(): room for room in rooms}
        for room, (count, mentioned) in rooms.items():
            self.unread[room.lower()] = count
            self.mentions[room.lower()] = mentioned
        if current is not None:
            self.read(current)

    def arrived(self, conversation: str, mention: bool) -> None:
        """A message arrived in ``conversation``, which is not on screen."""
        key = conversation.lower()
        self.unread[key] = self.unread.get(key, 0) + 1
        if mention:
            self.mentions[key] = self.mentions.get(key, 0) + 1
        if is_room(conversation):
            self.rooms.setdefault(key, conversation)
        else:
            self.spelled.setdefault(key, conversation)

    def read(self, conversation: str) -> None:
        """``conversation`` is on screen: nothing in it is unread."""
        self.unread.pop(conversation.lower(), None)
        self.mentions.pop(conversation.lower(), None)

    def joined(self, room: str) -> None:
        self.rooms.setdefault(room.lower(), room)

    def left(self, room: str) -> None:
        self.rooms.pop(room.lower(), None)
        self.read(room)

    @property
    def total_unread(self) -> int:
        return sum(self.unread.values())

    def entries(self) -> list[Entry]:
        """People (online first, then offline ones with unread messages), then
        rooms; busiest first within each; the conversation on screen always."""
        online = {name.lower(): name for name in self.online if not same_name(name, self.me)}
        people: dict[str, str] = dict(online)
        for key, count in self.unread.items():
            if count and not is_room(key) and key not in people:
                people[key] = self.spelled.get(key, key)
        if self.current and not is_room(self.current):
            people.setdefault(self.current.lower(), self.current)

        def entry(key: str, name: str) -> Entry:
            return Entry(
                name,
                online=key in online,
                unread=self.unread.get(key, 0),
                mentions=self.mentions.get(key, 0),
            )

        listed = [entry(key, name) for key, name in people.items()]
        listed.sort(key=lambda e: (not e.online, -e.unread, e.name.lower()))
        rooms = [entry(key, name) for key, name in self.rooms.items()]
        rooms.sort(key=lambda e: (-e.mentions, -e.unread, e.name.lower()))
        invitations = [
            Entry(room, invited_by=by)
            for room, by in sorted(self.invited.items())
            if room not in self.rooms
        ]
        return listed + rooms + invitations
