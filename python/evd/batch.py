"""Batches: several requests in one packet (PROTOCOL.md section 4).

A :class:`Batch` records requests and sends them together with
``send()`` (blocking client) or ``await send()`` (asyncio client). The
requests share the packet's fd array (at most 32 fds) and are executed in
order. Requests the daemon refused for the packet's reply budget (-32010) are
sent again, automatically, in later packets, as PROTOCOL.md asks of clients.
"""

from __future__ import annotations

from typing import Any, Callable

from .errors import EvdError, ReplyBudgetExceeded
from .events import Mode, ONESHOT, request_events
from .objects import Watch
from .session import DEFAULT, Request


class BatchItem:
    """One request of a batch; its outcome once the batch was sent."""

    def __init__(self, make: Callable[[], Request], reply: bool = True,
                 release: Callable[[], None] | None = None):
        self._make = make
        self._reply = reply
        self._release = release
        self.done = False
        self._value: Any = None
        self._error: BaseException | None = None

    def _settle(self, req: Request) -> None:
        p = req.pending
        self.done = True
        if p is not None:
            self._value, self._error = p.result, p.error

    def result(self) -> Any:
        """The value (as the single call would return it), or raise its error."""
        if not self.done:
            raise RuntimeError("the batch has not been sent")
        if self._error is not None:
            raise self._error
        return self._value

    @property
    def error(self) -> BaseException | None:
        """The exception this request failed with, else ``None``."""
        return self._error


class Batch:
    """Requests to send in one packet. Made by ``client.batch()``.

    Each method returns a :class:`BatchItem`; ``send()`` returns the list of
    outcomes of the items that expect a reply, in order: the value, or the
    exception instance (not raised; ``item.result()`` raises it).
    """

    def __init__(self, client: Any):
        self._client = client
        self._items: list[BatchItem] = []
        self._sent = False

    def _add(self, item: BatchItem) -> BatchItem:
        if self._sent:
            raise RuntimeError("this batch was already sent")
        self._items.append(item)
        return item

    def call(self, method: str, params: dict | None = None) -> BatchItem:
        """Any method; the item's result is the raw ``result`` member."""
        session = self._client._session
        return self._add(BatchItem(lambda: session.request(method, params)))

    def notify(self, method: str, params: dict | None = None) -> BatchItem:
        """A request without id: executed, never answered (no outcome)."""
        session = self._client._session
        return self._add(BatchItem(lambda: session.request(method, params, notify=True),
                                   reply=False))

    def watch(self, fd: int, events: Any = "in", mode: Mode | str = ONESHOT, *,
              tag: Any = None, callback: Callable | None = None) -> BatchItem:
        """As ``client.watch()``; the item's result is the :class:`Watch`."""
        w = Watch(self._client, fd, request_events(events), Mode(mode), tag, callback)
        session = self._client._session
        return self._add(BatchItem(lambda: session.watch(w, new=True), release=w._release))

    def timer(self, after: float | None = None, *, at: float | None = None,
              interval: float | None = None, tag: Any = None,
              callback: Callable | None = None) -> BatchItem:
        """As ``client.timer()``; the item's result is the :class:`Timer`."""
        t = self._client._new_timer(after, at, interval, tag, callback)
        session = self._client._session
        return self._add(BatchItem(lambda: session.timer(t, new=True)))

    def ping(self) -> BatchItem:
        """``ping``."""
        return self.call("ping")

    def status(self) -> BatchItem:
        """``status``."""
        return self.call("status")

    def stats(self) -> BatchItem:
        """``stats``."""
        return self.call("stats")

    def send(self, timeout: Any = DEFAULT):
        """Send the batch; the outcomes of the items that expect a reply, in
        order (a coroutine on an asyncio client). *timeout* bounds the wait for
        all replies (default: the client's)."""
        return self._client._send_batch(self, timeout)

    def __len__(self) -> int:
        return len(self._items)

    def _rounds(self):
        """Yield the requests of each packet to send; after each packet the
        caller has waited for its replies. Ends when nothing is refused."""
        if self._sent:
            raise RuntimeError("this batch was already sent")
        self._sent = True
        todo = self._items
        try:
            while todo:
                reqs = [item._make() for item in todo]
                yield reqs
                again = []
                for item, req in zip(todo, reqs):
                    if isinstance(req.pending and req.pending.error, ReplyBudgetExceeded):
                        again.append(item)
                    else:
                        item._settle(req)
                todo = again
        finally:
            for item in self._items:
                if not item.done and item._release is not None:
                    item._release()

    def _outcomes(self) -> list:
        return [item._error if item._error is not None else item._value
                for item in self._items if item._reply]


__all__ = ["Batch", "BatchItem", "EvdError"]
