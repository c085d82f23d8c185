"""Watch and Timer: the client-side record of what the daemon holds for us.

Each object keeps what re-registration after a reconnect needs (libevd does the
same): a watch keeps its own duplicate of the caller's fd, its events, mode,
tag and armed state; a timer keeps its clock, next deadline and interval. The
daemon's id changes with every connection; the object stays the same, so
callers hold objects, never ids.

Methods forward to the client that made the object. On a :class:`evd.Client`
they block and return; on an :class:`evd.AsyncClient` they return coroutines.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable

from .events import Events, Mode


class Watch:
    """A watch on one fd. Made by ``client.watch()``; do not construct.

    Attributes: ``fd`` (the caller's fd number, as given: the library never
    closes or changes it), ``events`` (:class:`Events` asked for), ``mode``,
    ``tag``, ``armed`` (oneshot: whether an event may come before :meth:`arm`),
    ``id`` (the daemon's id on the current connection, ``None`` while not
    registered), ``active`` (false once unwatched or closed by the daemon).
    """

    def __init__(self, client: Any, fd: int, events: list[str], mode: Mode, tag: Any,
                 callback: Callable | None):
        self._client = client
        fd = fd if isinstance(fd, int) else fd.fileno()
        self.fd = fd
        # Our own duplicate: the caller may close its fd at once (PROTOCOL.md
        # section 2), and a reconnect must pass the same open file again.
        self._dup = os.dup(fd)
        self._names = events
        self.mode = Mode(mode)
        self.tag = tag
        self.callback = callback
        self.armed = True
        self.id: int | None = None
        self.active = True

    @property
    def events(self) -> Events:
        """The events this watch asks for."""
        return Events.from_names(self._names)

    def _release(self) -> None:
        self.active = False
        self.id = None
        if self._dup >= 0:
            os.close(self._dup)
            self._dup = -1

    def _params(self, index: int) -> dict:
        params = {"fd": index, "events": list(self._names), "mode": self.mode.value}
        if self.tag is not None:
            params["tag"] = self.tag
        return params

    def modify(self, events=None, mode=None, **kw):
        """Change the events and/or mode (at least one); see PROTOCOL.md ``modify``."""
        return self._client._modify(self, events, mode, **kw)

    def arm(self, **kw):
        """Re-arm a oneshot watch (an event comes at once if the fd is still ready)."""
        return self._client._arm(self, **kw)

    def unwatch(self, **kw):
        """Remove the watch. No event for it is delivered after this call, and
        it never raises a connection error (a lost connection removed the
        watch anyway). The caller's fd stays open."""
        return self._client._unwatch(self, **kw)

    close = unwatch

    def wait(self, timeout: float | None = None):
        """The next event of this watch (sync: blocks; async: a coroutine);
        ``None`` (sync) or ``TimeoutError`` (async) if *timeout* passes first."""
        return self._client._wait_object(self, timeout)

    def __iter__(self):
        return self._client._iter_object(self, None)

    def __aiter__(self):
        return self._client._aiter_object(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.unwatch()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.unwatch()

    def __repr__(self):
        return (f"<evd.Watch fd={self.fd} events={'|'.join(self._names)} "
                f"mode={self.mode.value} id={self.id} active={self.active}>")


class Timer:
    """A daemon timer. Made by ``client.timer()``; do not construct.

    Attributes: ``interval`` (seconds or ``None``), ``tag``, ``clock``
    (``"monotonic"`` for ``after``, ``"realtime"`` for ``at``), ``id`` (the
    daemon's, per connection), ``active`` (false once cancelled or, without
    interval, expired).
    """

    def __init__(self, client: Any, after: float | None, at: float | None,
                 interval: float | None, tag: Any, callback: Callable | None):
        self._client = client
        self.clock = "realtime" if at is not None else "monotonic"
        # The next expiry, on the timer's clock: what re-registration resumes.
        self._next = at if at is not None else time.monotonic() + after
        self.interval = interval
        self.tag = tag
        self.callback = callback
        self.id: int | None = None
        self.active = True

    def _release(self) -> None:
        self.active = False
        self.id = None

    def _expired(self, expirations: int) -> None:
        if self.interval:
            self._next += expirations * self.interval
        else:
            self._release()

    def _params(self) -> dict:
        if self.clock == "realtime":
            params = {"at": self._next}
        else:
            # A oneshot timer that should have expired meanwhile fires at once.
            params = {"after": max(0.0, self._next - time.monotonic())}
        if self.interval:
            params["interval"] = self.interval
        if self.tag is not None:
            params["tag"] = self.tag
        return params

    def cancel(self, **kw):
        """Remove the timer; no event for it is delivered after this call. An
        expired or cancelled timer is cancelled again without error."""
        return self._client._cancel(self, **kw)

    close = cancel

    def wait(self, timeout: float | None = None):
        """The next expiry of this timer, as for :meth:`Watch.wait`."""
        return self._client._wait_object(self, timeout)

    def __iter__(self):
        return self._client._iter_object(self, None)

    def __aiter__(self):
        return self._client._aiter_object(self)

    def __repr__(self):
        return f"<evd.Timer clock={self.clock} interval={self.interval} id={self.id} active={self.active}>"
