"""The asyncio client: the socket is a reader (and, when the daemon applies
back-pressure, a writer) of the running loop. No threads, no blocking call:
the socket is non-blocking, connecting to an ``AF_UNIX`` listener completes at
once or fails with ``EAGAIN``, and sends that do not fit wait in a queue (with
their own fd duplicates) until the loop says the socket is writable.

Events are delivered as they are read: to the object's callback (a coroutine
function's result is run as a task), else ``on_notification``, else to the
first waiter that wants it (``await watch.wait()``, ``async for``), else kept
for a later one. Reconnecting runs as one task with the back-off of libevd;
calls made meanwhile wait for the restoration, within their timeout.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import socket
import time
import weakref
from collections import deque
from typing import Any, AsyncIterator, Callable

from . import wire
from .batch import Batch
from .client import BACKOFF_MAX, BACKOFF_MIN, _fileno, _jitter, check_timer_args, receive_burst
from .errors import (ConnectionLost, DaemonNotRunning, EvdConnectionError, NoSuchTimer,
                     NoSuchWatch, NotConnected, Timeout)
from .events import ConnectionState, Event, Events, Mode, ONESHOT, request_events
from .methods import Methods
from .objects import Timer, Watch
from .session import DEFAULT, Request, Session, _owner, pack

#: How long re-registration may take before the attempt counts as failed.
RESTORE_TIMEOUT = 30.0


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


class AsyncClient(Methods):
    """An asyncio connection to evd; arguments as for :class:`evd.Client`.

    Create it with ``await AsyncClient.connect(...)`` (or
    :func:`evd.connect_async`), inside the loop that will use it. Its methods
    are coroutines, and so are those of its watches and timers. Callbacks
    (``callback``, ``on_notification``, ``on_connection``) run in the loop and
    must not block; coroutine functions are scheduled as tasks.
    """

    def __init__(self, path: str | None = None, *, name: str | None = None,
                 reconnect: bool = False, on_connection: Callable | None = None,
                 on_notification: Callable | None = None, timeout: float | None = None):
        self.path = path or wire.default_socket_path()
        self.name = name
        self.reconnect = reconnect
        self.on_connection = on_connection
        self.on_notification = on_notification
        self.timeout = timeout
        #: The daemon's ``hello`` result for the current connection.
        self.server_info: dict = {}
        self._session = Session()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sock: socket.socket | None = None
        self._state = "down"
        self._up: asyncio.Event | None = None
        self._outq: deque = deque()
        self._writing = False
        self._queue: deque = deque()
        self._waiters: list = []
        self._loss: BaseException | None = None
        self._last_exc: BaseException = NotConnected("not connected")
        self._closed = False
        self._reconnect_task: asyncio.Task | None = None
        self._tasks: set = set()

    @classmethod
    async def connect(cls, path: str | None = None, **kw) -> "AsyncClient":
        """Connect; raises :class:`DaemonNotRunning` if nothing listens."""
        client = cls(path, **kw)
        await client._open(time.monotonic() + (client.timeout or RESTORE_TIMEOUT))
        return client

    # -- the connection ------------------------------------------------------

    async def _open(self, deadline: float | None) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._up = asyncio.Event()
            self._gone = asyncio.Event()
        try:
            sock = wire.open_socket(self.path)
        except (FileNotFoundError, ConnectionRefusedError, BlockingIOError) as exc:
            raise DaemonNotRunning(self.path, exc) from None
        self._sock = sock
        self._gone.clear()
        self._state = "opening"
        self._session.connected()
        self._loop.add_reader(sock.fileno(), self._on_readable)
        try:
            hello = self._session.hello(self.name)
            await self._transact([hello], deadline)
            self.server_info = hello.pending.value()
            for packet in self._session.restore():
                await self._transact(packet, deadline)
            if self._sock is None:
                raise self._last_exc
        except BaseException as exc:
            if self._sock is not None:
                self._drop(exc if isinstance(exc, EvdConnectionError) else ConnectionLost(str(exc)))
            self._state = "down"
            raise
        self._state = "up"
        self._up.set()
        self._deliver(self._session.take_events())

    def _drop(self, exc: BaseException) -> None:
        sock, self._sock = self._sock, None
        self._loop.remove_reader(sock.fileno())
        if self._writing:
            self._loop.remove_writer(sock.fileno())
            self._writing = False
        sock.close()
        for _, fds in self._outq:
            for fd in fds:
                os.close(fd)
        self._outq.clear()
        self._up.clear()
        self._gone.set()
        self._last_exc = exc
        self._session.lost(exc)

    def _lost(self, exc: BaseException | None = None) -> None:
        exc = exc or self._session.loss()
        self._deliver(self._session.take_events())
        opening = self._state == "opening"
        self._drop(exc)
        if opening:
            return  # _open() sees its requests fail and reports
        self._state = "down"
        self._loss = exc
        self._fire(ConnectionState.LOST, exc)
        if self.reconnect and not self._closed:
            self._reconnect_task = self._loop.create_task(self._reconnect_loop())
        else:
            self._fail_waiters(exc)

    async def _reconnect_loop(self) -> None:
        delay = BACKOFF_MIN
        while not self._closed:
            await asyncio.sleep(_jitter(delay))
            try:
                await self._open(time.monotonic() + RESTORE_TIMEOUT)
            except (EvdConnectionError, Timeout, OSError):
                delay = min(delay * 2, BACKOFF_MAX)
                continue
            self._reconnect_task = None
            self._fire(ConnectionState.RESTORED, self._session.restore_error)
            return

    def _run(self, result: Any) -> None:
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _fire(self, state: ConnectionState, reason: BaseException | None) -> None:
        if self.on_connection is not None:
            self._run(self.on_connection(state, reason))

    def _fail_waiters(self, exc: BaseException) -> None:
        waiters, self._waiters = self._waiters, []
        for _, fut, _obj in waiters:
            if not fut.done():
                fut.set_exception(exc)

    async def _ensure_connected(self, deadline: float | None) -> None:
        if self._closed:
            raise NotConnected("the client is closed")
        if self._state == "up" and self._session.shutdown_reason is not None:
            # Announced: the daemon takes no new work, and the end follows.
            try:
                await asyncio.wait_for(self._gone.wait(), _remaining(deadline))
            except asyncio.TimeoutError:
                raise Timeout("the daemon announced its shutdown and did not close") from None
        while self._state != "up":
            if not self.reconnect:
                raise NotConnected(f"not connected: {self._loss}") from self._loss
            try:
                await asyncio.wait_for(self._up.wait(), _remaining(deadline))
            except asyncio.TimeoutError:
                raise Timeout(f"not reconnected to {self.path} within the timeout") from None
            if self._closed:
                raise NotConnected("the client is closed")

    @property
    def connected(self) -> bool:
        """Whether the client is connected (and re-registered) right now."""
        return self._state == "up"

    async def close(self) -> None:
        """Disconnect; the daemon drops this client's watches and timers. The
        library's fd duplicates are closed; the caller's fds are untouched."""
        if self._closed:
            return
        self._closed = True
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
        if self._sock is not None:
            self._drop(NotConnected("the client is closed"))
        self._state = "down"
        self._session.close()
        self._queue.clear()
        self._fail_waiters(NotConnected("the client is closed"))
        if self._up is not None:
            self._up.set()  # wake calls waiting for a reconnect: they see _closed

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # -- moving bytes ----------------------------------------------------------

    def _on_readable(self) -> None:
        if self._sock is None:
            return
        ended, why = receive_burst(self._sock, self._session)
        if ended:
            self._lost(why)
            return
        self._deliver(self._session.take_events())

    def _write(self, data: bytes, fds: list[int]) -> None:
        if self._sock is None:
            raise self._last_exc
        if not self._outq:
            try:
                wire.send_packet(self._sock, data, fds)
                return
            except BlockingIOError:
                pass
            except OSError as exc:
                self._send_failed(exc)
                raise self._last_exc from None
        # The caller's fds may be closed before the loop sends: keep copies.
        self._outq.append((data, [os.dup(fd) for fd in fds]))
        if not self._writing:
            self._loop.add_writer(self._sock.fileno(), self._on_writable)
            self._writing = True

    def _send_failed(self, exc: OSError) -> None:
        if not wire.is_disconnect(exc):
            raise exc
        self._on_readable()  # what the daemon said before it went
        if self._sock is not None:
            self._lost(ConnectionLost(f"sending failed: {exc.strerror}"))

    def _on_writable(self) -> None:
        while self._outq and self._sock is not None:
            data, fds = self._outq[0]
            try:
                wire.send_packet(self._sock, data, fds)
            except BlockingIOError:
                return
            except OSError as exc:
                self._send_failed(exc)
                return
            self._outq.popleft()
            for fd in fds:
                os.close(fd)
        if self._writing and self._sock is not None:
            self._loop.remove_writer(self._sock.fileno())
        self._writing = False

    async def _transact(self, reqs: list[Request], deadline: float | None) -> list[Request]:
        if not reqs:
            return reqs
        data, fds = pack(reqs)
        while self._session.outbox:
            self._write(self._session.outbox.pop(0), [])
        self._write(data, fds)
        self._session.sent(reqs)
        pendings = [r.pending for r in reqs if r.pending is not None]
        if not pendings:
            return reqs
        last = pendings[-1]
        fut = self._loop.create_future()
        # Replies come in order, and a lost connection fails all at once:
        # the last one done means all are.
        last.waker = lambda p: fut.done() or fut.set_result(None)
        if last.done:
            return reqs
        try:
            await asyncio.wait_for(fut, _remaining(deadline))
        except asyncio.TimeoutError:
            for p in pendings:
                p.abandoned = True
            raise Timeout(f"no reply to {pendings[0].method} within the timeout") from None
        except asyncio.CancelledError:
            for p in pendings:
                p.abandoned = True
            raise
        return reqs

    def _deadline(self, timeout: Any) -> float | None:
        timeout = self.timeout if timeout is DEFAULT else timeout
        return None if timeout is None else time.monotonic() + max(0.0, timeout)

    async def _roundtrip(self, make: Callable[[], list[Request]], timeout: Any) -> list[Request]:
        deadline = self._deadline(timeout)
        await self._ensure_connected(deadline)
        return await self._transact(make(), deadline)

    async def _call_value(self, make: Callable[[], Request], timeout: Any) -> Any:
        return (await self._roundtrip(lambda: [make()], timeout))[0].pending.value()

    # -- delivering events -------------------------------------------------------

    def _deliver(self, events: list) -> None:
        for ev in events:
            owner = _owner(ev)
            callback = owner.callback if owner is not None else None
            if callback is not None:
                self._run(callback(ev))
                continue
            if self.on_notification is not None:
                self._run(self.on_notification(ev))
                continue
            for entry in self._waiters:
                match, fut, _obj = entry
                if not fut.done() and match(ev):
                    fut.set_result(ev)
                    self._waiters.remove(entry)
                    break
            else:
                self._queue.append(ev)

    async def _next_event(self, match: Callable[[Event], bool], timeout: float | None,
                          obj: Any = None) -> Event | None:
        for i, ev in enumerate(self._queue):
            if match(ev):
                del self._queue[i]
                return ev
        if obj is not None and not obj.active:
            return None
        if self._closed:
            raise NotConnected("the client is closed")
        if self._state != "up" and not self.reconnect and self._loss is not None:
            raise self._loss
        fut = self._loop.create_future()
        entry = (match, fut, obj)
        self._waiters.append(entry)
        handle = None
        if timeout is not None:
            handle = self._loop.call_later(timeout, lambda: fut.done() or fut.set_result(None))
        try:
            return await fut
        finally:
            if handle is not None:
                handle.cancel()
            if entry in self._waiters:
                self._waiters.remove(entry)

    def events(self, timeout: float | None = None) -> AsyncIterator[Event]:
        """``async for ev in client.events()``: the events no callback takes,
        in arrival order. Ends after *timeout* seconds without one; raises the
        loss when the connection ends without reconnect."""
        return self._aiter(lambda e: True, timeout, None)

    async def next_event(self, timeout: float | None = None) -> Event | None:
        """The next event no callback takes, or ``None`` after *timeout*."""
        return await self._next_event(lambda e: True, timeout)

    async def _aiter(self, match, timeout, obj) -> AsyncIterator[Event]:
        while True:
            ev = await self._next_event(match, timeout, obj)
            if ev is None:
                return
            yield ev

    async def _wait_object(self, obj: Any, timeout: float | None) -> Event | None:
        return await self._next_event(lambda e: _owner(e) is obj, timeout, obj)

    def _aiter_object(self, obj: Any) -> AsyncIterator[Event]:
        return self._aiter(lambda e: _owner(e) is obj, None, obj)

    def _iter_object(self, obj: Any, timeout: float | None):
        raise TypeError("an asyncio client's objects are iterated with async for")

    # -- watches and timers ------------------------------------------------------------

    async def watch(self, fd: Any, events: Any = "in", mode: Mode | str = ONESHOT, *,
                    tag: Any = None, callback: Callable | None = None,
                    timeout: Any = DEFAULT) -> Watch:
        """As :meth:`evd.Client.watch`; ``async for ev in watch`` iterates its
        events (ending when the watch ends)."""
        w = Watch(self, _fileno(fd), request_events(events), Mode(mode), tag, callback)
        try:
            return await self._call_value(lambda: self._session.watch(w, new=True), timeout)
        except BaseException:
            w._release()
            raise

    async def _modify(self, w: Watch, events: Any = None, mode: Any = None, *,
                      timeout: Any = DEFAULT) -> None:
        if not w.active:
            raise NoSuchWatch(-32001, "No such watch", {"why": "unwatched or closed"})
        if events is None and mode is None:
            raise ValueError("modify needs events or mode")
        names = request_events(events) if events is not None else None
        new_mode = Mode(mode) if mode is not None else None

        def make() -> list[Request]:
            req = self._session.modify(w, names, new_mode)
            return [req] if req is not None else []

        for req in await self._roundtrip(make, timeout):
            req.pending.value()

    async def _arm(self, w: Watch, *, timeout: Any = DEFAULT) -> None:
        if not w.active:
            raise NoSuchWatch(-32001, "No such watch", {"why": "unwatched or closed"})
        await self._call_value(lambda: self._session.arm(w), timeout)

    async def _forget(self, obj: Any, timeout: Any, gone: type) -> None:
        if not obj.active:
            return
        self._queue = deque(e for e in self._queue if _owner(e) is not obj)
        req = self._session.forget(obj)
        for entry in list(self._waiters):
            if entry[2] is obj:
                self._waiters.remove(entry)
                if not entry[1].done():
                    entry[1].set_result(None)
        if req is None or self._sock is None or self._state != "up":
            return
        try:
            await self._transact([req], self._deadline(timeout))
            req.pending.value()
        except (EvdConnectionError, gone):
            pass

    async def _unwatch(self, w: Watch, *, timeout: Any = DEFAULT) -> None:
        await self._forget(w, timeout, NoSuchWatch)

    def _new_timer(self, after, at, interval, tag, callback) -> Timer:
        check_timer_args(after, at, interval)
        return Timer(self, after, at, interval, tag, callback)

    async def timer(self, after: float | None = None, *, at: float | None = None,
                    interval: float | None = None, tag: Any = None,
                    callback: Callable | None = None, timeout: Any = DEFAULT) -> Timer:
        """As :meth:`evd.Client.timer`."""
        t = self._new_timer(after, at, interval, tag, callback)
        return await self._call_value(lambda: self._session.timer(t, new=True), timeout)

    async def _cancel(self, t: Timer, *, timeout: Any = DEFAULT) -> None:
        await self._forget(t, timeout, NoSuchTimer)

    # -- conveniences ----------------------------------------------------------------

    async def wait_readable(self, fd: Any, timeout: float | None = None) -> Events:
        """Wait until *fd* is readable; the events seen. Raises the builtin
        ``TimeoutError`` after *timeout* seconds."""
        return await self._wait_fd(fd, "in", timeout)

    async def wait_writable(self, fd: Any, timeout: float | None = None) -> Events:
        """Wait until *fd* is writable, as :meth:`wait_readable`."""
        return await self._wait_fd(fd, "out", timeout)

    async def _wait_fd(self, fd: Any, events: str, timeout: float | None) -> Events:
        w = await self.watch(fd, events, ONESHOT)
        try:
            ev = await w.wait(timeout)
        finally:
            await w.unwatch()
        if ev is None:
            raise TimeoutError(f"fd {w.fd} not ready within {timeout} s")
        if not hasattr(ev, "events"):
            raise ConnectionLost(f"the daemon closed the watch: {ev}")
        return ev.events

    async def wait_pid(self, pid: int, timeout: float | None = None) -> None:
        """Wait until process *pid* has exited (a pidfd watch; the process is
        not reaped; one that no longer exists has exited). Raises ``TimeoutError`` after *timeout* seconds."""
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return  # gone already (and reaped)
        try:
            await self._wait_fd(pidfd, "in", timeout)
        finally:
            os.close(pidfd)

    # -- any method ----------------------------------------------------------------------

    async def call(self, method: str, params: dict | None = None, *, fds: Any = (),
                   timeout: Any = DEFAULT) -> Any:
        """As :meth:`evd.Client.call`."""
        fds = [_fileno(f) for f in fds]
        return await self._call_value(
            lambda: self._session.request(method, params, fds=fds), timeout)

    async def notify(self, method: str, params: dict | None = None) -> None:
        """Send a request without id: executed, never answered."""
        deadline = self._deadline(DEFAULT)
        await self._ensure_connected(deadline)
        await self._transact([self._session.request(method, params, notify=True)], deadline)

    async def hello(self, name: str | None = None, *, timeout: Any = DEFAULT) -> dict:
        """``hello`` again; the result is also kept as :attr:`server_info`."""
        if name is not None:
            self.name = name
        self.server_info = await self._call_value(lambda: self._session.hello(self.name),
                                                  timeout)
        return self.server_info

    async def _all(self, method: str, key: str, client: int | None, **kw) -> list:
        items, offset = [], 0
        while True:
            page = await self._page(method, client, offset, None, **kw)
            items.extend(page[key])
            if page.get("next") is None:
                return items
            offset = page["next"]

    async def clients(self, **kw) -> list[dict]:
        """Every connection the caller may see (all pages of ``clients``)."""
        return await self._all("clients", "clients", None, **kw)

    async def watches(self, client: int | None = None, **kw) -> list[dict]:
        """The watches of *client* (default: this one), all pages."""
        return await self._all("watches", "watches", client, **kw)

    async def timers(self, client: int | None = None, **kw) -> list[dict]:
        """The timers of *client* (default: this one), all pages."""
        return await self._all("timers", "timers", client, **kw)

    async def _send_batch(self, batch: Batch, timeout: Any) -> list:
        deadline = self._deadline(timeout)
        await self._ensure_connected(deadline)
        for reqs in batch._rounds():
            await self._transact(reqs, deadline)
        return batch._outcomes()


async def connect_async(path: str | None = None, **kw) -> AsyncClient:
    """Connect an :class:`AsyncClient` (same arguments as :class:`evd.Client`)."""
    return await AsyncClient.connect(path, **kw)


# One shared client per event loop for the module-level conveniences.
_shared: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Future]" = \
    weakref.WeakKeyDictionary()


async def _shared_client() -> AsyncClient:
    loop = asyncio.get_running_loop()
    fut = _shared.get(loop)
    if fut is not None:
        try:
            client = await asyncio.shield(fut)
            if client.connected:
                return client
        except EvdConnectionError:
            pass
        if _shared.get(loop) is not fut:
            return await _shared_client()
    fut = loop.create_task(AsyncClient.connect(name="python-evd"))
    _shared[loop] = fut
    return await asyncio.shield(fut)


async def wait_readable(fd: Any, timeout: float | None = None, *,
                        client: AsyncClient | None = None) -> Events:
    """``await evd.wait_readable(fd, timeout=...)``: wait, through evd, until
    *fd* is readable. Uses *client*, else one shared client per event loop on
    the default socket. Raises ``TimeoutError`` after *timeout* seconds."""
    return await (client or await _shared_client()).wait_readable(fd, timeout)


async def wait_writable(fd: Any, timeout: float | None = None, *,
                        client: AsyncClient | None = None) -> Events:
    """As :func:`wait_readable`, until *fd* is writable."""
    return await (client or await _shared_client()).wait_writable(fd, timeout)


async def wait_pid(pid: int, timeout: float | None = None, *,
                   client: AsyncClient | None = None) -> None:
    """``await evd.wait_pid(pid)``: wait until process *pid* exits (a pidfd
    watch), as :func:`wait_readable`."""
    await (client or await _shared_client()).wait_pid(pid, timeout)
