"""Event names, watch modes, and the notification objects clients receive."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Iterable

__all__ = ["Events", "Mode", "ConnectionState", "Event", "Ready", "TimerExpired",
           "WatchClosed", "Shutdown", "Notification", "IN", "PRI", "OUT", "ERR",
           "HUP", "RDHUP", "ONESHOT", "EDGE"]


class Events(enum.IntFlag):
    """Readiness bits: PROTOCOL.md section 6 names, ``poll(2)`` values."""

    IN = 0x0001
    PRI = 0x0002
    OUT = 0x0004
    ERR = 0x0008
    HUP = 0x0010
    RDHUP = 0x2000

    @classmethod
    def from_names(cls, names: Iterable[str]) -> "Events":
        """Bits for a notification's ``events`` list; unknown names are ignored
        (a newer daemon may add some)."""
        bits = cls(0)
        for name in names:
            bit = _BY_NAME.get(name)
            if bit is not None:
                bits |= bit
        return bits

    def names(self) -> list[str]:
        """Wire names, in PROTOCOL.md's table order."""
        return [name for name, bit in _BY_NAME.items() if self & bit]


_BY_NAME = {"in": Events.IN, "pri": Events.PRI, "out": Events.OUT,
            "err": Events.ERR, "hup": Events.HUP, "rdhup": Events.RDHUP}
_REQUESTABLE = Events.IN | Events.PRI | Events.OUT | Events.RDHUP

IN, PRI, OUT, ERR, HUP, RDHUP = (Events.IN, Events.PRI, Events.OUT, Events.ERR,
                                 Events.HUP, Events.RDHUP)


def request_events(events: "Events | int | str | Iterable[str]") -> list[str]:
    """The ``events`` parameter for ``watch``/``modify``.

    Accepts bits (``evd.IN | evd.OUT``), one name (``"in"``) or names. Checked
    here because the mistake is the caller's; the daemon would say -32602 too.
    """
    if isinstance(events, str):
        events = [events]
    if isinstance(events, int):
        bits = Events(events)
        if not bits or bits & ~_REQUESTABLE:
            raise ValueError(f"events must be a non-empty set of in, pri, out, rdhup: {bits!r}")
        return bits.names()
    names = list(events)
    if not names or any(n not in ("in", "pri", "out", "rdhup") for n in names) \
            or len(set(names)) != len(names):
        raise ValueError(f"events must be unique names among in, pri, out, rdhup: {names!r}")
    return names


class Mode(str, enum.Enum):
    """How a watch reports: ``ONESHOT`` (one event, then :meth:`arm`) or
    ``EDGE`` (one event per wakeup)."""

    ONESHOT = "oneshot"
    EDGE = "edge"


ONESHOT, EDGE = Mode.ONESHOT, Mode.EDGE


class ConnectionState(enum.Enum):
    """What the connection handler is told, like libevd's
    ``EVD_CONNECTION_LOST`` / ``EVD_CONNECTION_RESTORED``."""

    LOST = "lost"
    RESTORED = "restored"


class Event:
    """Base class of everything a client delivers to callbacks and iterators."""


@dataclass(frozen=True)
class Ready(Event):
    """A ``ready`` notification: *watch* (the client's watch object) saw
    *events*; *count* wakeups are covered (>= 1; always 1 for oneshot)."""

    watch: Any
    events: Events
    count: int
    tag: Any = None


@dataclass(frozen=True)
class TimerExpired(Event):
    """A ``timer`` notification: *timer* expired *expirations* times, the
    first *late* seconds after its deadline.

    ``expirations == 0`` means the timer was dropped: it could not be
    re-registered after a reconnect (libevd reports it the same way).
    """

    timer: Any
    expirations: int
    late: float
    tag: Any = None


@dataclass(frozen=True)
class WatchClosed(Event):
    """The watch ended on the daemon's side (``closed``, or a failed
    re-registration after a reconnect: then *error* says why)."""

    watch: Any
    reason: str
    tag: Any = None
    error: Exception | None = None


@dataclass(frozen=True)
class Shutdown(Event):
    """The daemon announced that it is stopping (``shutdown``)."""

    reason: str


@dataclass(frozen=True)
class Notification(Event):
    """Any other notification (``monitor`` copies, ``monitor-ended``, or a
    method a newer daemon sends), as received."""

    method: str
    params: Any = field(default=None)
