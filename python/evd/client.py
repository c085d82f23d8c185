"""The blocking client: one socket, waits bounded by poll(), no threads.

A call sends its request and reads until its reply is in. Notifications read
meanwhile are kept and delivered only at the dispatch points -
:meth:`Client.dispatch`, :meth:`Client.run`, :meth:`Client.events` and the
``wait()``/iteration of watches and timers - never inside a call, as in
libevd. An event goes to its object's callback if it has one, else to the
client's ``on_notification``, else it waits for an iterator.

With ``reconnect=True`` a lost connection is retried with back-off (50 ms
doubling to 5 s, with jitter) from the dispatch points and from calls, which
wait for it within their timeout; every watch and timer is then registered
again (see :mod:`evd.session`) before any new request goes out.
"""

from __future__ import annotations

import os
import random
import select
import socket
import time
from collections import deque
from typing import Any, Callable, Iterator

from . import wire
from .batch import Batch
from .methods import Methods
from .errors import (ConnectionLost, DaemonNotRunning, EvdConnectionError, NoSuchTimer,
                     NoSuchWatch, NotConnected, ProtocolError, Timeout)
from .events import ConnectionState, Event, Events, Mode, ONESHOT, request_events
from .objects import Timer, Watch
from .session import DEFAULT, Request, Session, _owner, pack

BACKOFF_MIN = 0.05
BACKOFF_MAX = 5.0
_READ_BURST = 64


class _StateChange:
    __slots__ = ("state", "reason")

    def __init__(self, state: ConnectionState, reason: BaseException | None):
        self.state, self.reason = state, reason


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + max(0.0, timeout)


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _fileno(fd: Any) -> int:
    return fd if isinstance(fd, int) else fd.fileno()


def _jitter(delay: float) -> float:
    return delay * random.uniform(0.75, 1.25)


def check_timer_args(after: Any, at: Any, interval: Any) -> None:
    """Exactly one of *after* and *at*; checked here, the daemon would too."""
    if (after is None) == (at is None):
        raise ValueError("give exactly one of after and at")
    if interval is not None and interval <= 0:
        raise ValueError("interval must be > 0")



def receive_burst(sock: socket.socket, session: Session) -> tuple[bool, BaseException | None]:
    """Feed *session* what *sock* holds, up to _READ_BURST packets, without
    blocking (both clients read this way). Returns (ended, why): *ended* when
    the connection is over, *why* None for a plain EOF (the session knows
    whether a shutdown or a refusal preceded it)."""
    for _ in range(_READ_BURST):
        try:
            data = wire.recv_packet(sock)
        except BlockingIOError:
            break
        except ValueError as exc:
            return True, ProtocolError(str(exc))
        except OSError as exc:
            return True, ConnectionLost(f"receiving failed: {exc}")
        if data is wire.EOF:
            return True, None
        if data is None:
            continue
        try:
            session.feed(data)
        except ProtocolError as exc:
            return True, exc
    return False, None

class Client(Methods):
    """A blocking connection to evd.

    *path*: the daemon's socket (default: :func:`evd.default_socket_path`).
    *name*: sent with ``hello``, shown to admins. *reconnect*: reconnect and
    re-register after the connection is lost. *on_connection(state, reason)*:
    told :attr:`ConnectionState.LOST` with the exception that explains it and
    :attr:`ConnectionState.RESTORED` with ``None`` or the first
    re-registration failure. *on_notification(event)*: events whose object has
    no callback (and the object-less ones: shutdown, monitor copies).
    *timeout*: default seconds a call waits for its reply (``None``: forever).

    Connecting raises :class:`DaemonNotRunning` if nothing listens there.
    The client's fds are never closed or changed: a watch sends the daemon a
    duplicate and keeps one for re-registration, closed when the watch ends.
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
        self._sock: socket.socket | None = None
        self._incoming: deque = deque()   # read, not yet dispatched
        self._queue: deque = deque()      # dispatched, no callback took them
        self._loss: BaseException | None = None
        self._raise_loss = False
        self._closed = False
        self._opening = False
        self._delay = BACKOFF_MIN
        self._next_attempt = 0.0
        self._stop = False
        self._last_exc: BaseException = NotConnected("not connected")
        self._open(_deadline(timeout))

    # -- the connection ------------------------------------------------------

    def _open(self, deadline: float | None) -> None:
        try:
            sock = wire.open_socket(self.path)
        except (FileNotFoundError, ConnectionRefusedError, BlockingIOError) as exc:
            raise DaemonNotRunning(self.path, exc) from None
        self._sock = sock
        self._opening = True
        self._session.connected()
        try:
            hello = self._session.hello(self.name)
            self._transact([hello], deadline)
            self.server_info = hello.pending.value()
            for packet in self._session.restore():
                self._transact(packet, deadline)
            if self._sock is None:
                raise self._session.loss()
        except BaseException as exc:
            if self._sock is not None:
                self._drop(exc if isinstance(exc, EvdConnectionError) else ConnectionLost(str(exc)))
            raise
        finally:
            self._opening = False
        self._incoming.extend(self._session.take_events())

    def _drop(self, exc: BaseException) -> None:
        self._sock.close()
        self._sock = None
        self._session.lost(exc)

    def _lost(self, exc: BaseException | None = None) -> BaseException:
        """The connection ended: *exc* says why (default: EOF, after a
        ``shutdown`` notification or a refusal if one came)."""
        exc = exc or self._session.loss()
        self._incoming.extend(self._session.take_events())
        self._drop(exc)
        self._last_exc = exc
        if not self._opening:
            self._loss = exc
            self._incoming.append(_StateChange(ConnectionState.LOST, exc))
            if self.reconnect:
                self._delay = BACKOFF_MIN
                self._next_attempt = time.monotonic() + _jitter(self._delay)
            else:
                self._raise_loss = True
        return exc

    def _try_reconnect(self, deadline: float | None, wait: bool = True) -> None:
        now = time.monotonic()
        if now < self._next_attempt:
            if not wait:
                return
            pause = self._next_attempt - now
            left = _remaining(deadline)
            time.sleep(pause if left is None else min(pause, left))
            if time.monotonic() < self._next_attempt:
                return
        try:
            self._open(deadline)
        except (EvdConnectionError, Timeout, OSError):
            self._delay = min(self._delay * 2, BACKOFF_MAX)
            self._next_attempt = time.monotonic() + _jitter(self._delay)
            return
        self._incoming.append(_StateChange(ConnectionState.RESTORED, self._session.restore_error))

    def _ensure_connected(self, deadline: float | None) -> None:
        if self._closed:
            raise NotConnected("the client is closed")
        if self._sock is not None and self._poll(select.POLLIN, 0):
            # An end already here (a restart) is noticed before a request is
            # sent into it: with reconnect on, the request goes to the new evd.
            self._read()
        if self._sock is not None and self._session.shutdown_reason is not None:
            # Announced: the daemon takes no new work, and the end follows.
            if not self._pump(deadline, lambda: self._sock is None):
                raise Timeout("the daemon announced its shutdown and did not close")
        while self._sock is None:
            if not self.reconnect:
                raise NotConnected(f"not connected: {self._loss}") from self._loss
            if _remaining(deadline) == 0:
                raise Timeout(f"not reconnected to {self.path} within the timeout")
            self._try_reconnect(deadline)

    @property
    def connected(self) -> bool:
        """Whether the client has a connection right now."""
        return self._sock is not None

    def fileno(self) -> int:
        """The socket's fd (-1 while disconnected). It changes when the client
        reconnects; poll it for input and call :meth:`dispatch`."""
        return self._sock.fileno() if self._sock is not None else -1

    def close(self) -> None:
        """Disconnect: the daemon drops this client's watches and timers. The
        library's fd duplicates are closed; the caller's fds are untouched."""
        if self._closed:
            return
        self._closed = True
        self._session.close()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._incoming.clear()
        self._queue.clear()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # -- moving bytes ----------------------------------------------------------

    def _poll(self, events: int, timeout: float | None) -> int:
        p = select.poll()
        p.register(self._sock, events)
        ms = -1 if timeout is None else int(timeout * 1000 + 0.999)
        ready = p.poll(ms)
        return ready[0][1] if ready else 0

    def _read(self) -> None:
        if self._sock is None:
            return
        ended, why = receive_burst(self._sock, self._session)
        if ended:
            self._lost(why)
            return
        self._incoming.extend(self._session.take_events())

    def _pump(self, deadline: float | None, done: Callable[[], bool]) -> bool:
        """Read until *done()* or the deadline; whether *done()* came true."""
        polled = False
        while not done():
            if self._sock is None:
                return False
            wait = _remaining(deadline)
            if wait == 0 and polled:
                return False
            polled = True
            if self._poll(select.POLLIN, wait):
                self._read()
        return True

    def _send_bytes(self, data: bytes, fds: list[int], deadline: float | None) -> None:
        while True:
            if self._sock is None:
                raise self._last_exc
            try:
                wire.send_packet(self._sock, data, fds)
                return
            except BlockingIOError:
                # The daemon is not reading us (back-pressure) until we read it.
                ready = self._poll(select.POLLIN | select.POLLOUT, _remaining(deadline))
                if not ready:
                    raise Timeout("the daemon did not take the request within the timeout")
                if ready & (select.POLLIN | select.POLLHUP | select.POLLERR):
                    self._read()
            except OSError as exc:
                if not wire.is_disconnect(exc):
                    raise
                self._read()  # what the daemon said before it went: shutdown, EOF
                if self._sock is not None:
                    self._lost(ConnectionLost(f"sending failed: {exc.strerror}"))
                raise self._last_exc from None

    def _transact(self, reqs: list[Request], deadline: float | None) -> list[Request]:
        """Send *reqs* in one packet and wait for their replies (not raising
        their errors: see ``Pending.value()``)."""
        if not reqs:
            return reqs
        data, fds = pack(reqs)
        while self._session.outbox:
            self._send_bytes(self._session.outbox.pop(0), [], deadline)
        self._send_bytes(data, fds, deadline)
        self._session.sent(reqs)
        pendings = [r.pending for r in reqs if r.pending is not None]
        if not self._pump(deadline, lambda: all(p.done for p in pendings)):
            for p in pendings:
                p.abandoned = True
            raise Timeout(f"no reply to {pendings[0].method} within the timeout")
        return reqs

    def _timeout(self, timeout: Any) -> float | None:
        return self.timeout if timeout is DEFAULT else timeout

    def _roundtrip(self, make: Callable[[], list[Request]], timeout: Any) -> list[Request]:
        deadline = _deadline(self._timeout(timeout))
        self._ensure_connected(deadline)
        return self._transact(make(), deadline)

    def _call_value(self, make: Callable[[], Request], timeout: Any) -> Any:
        return self._roundtrip(lambda: [make()], timeout)[0].pending.value()

    # -- delivering events -------------------------------------------------------

    def _deliver_all(self) -> int:
        n = 0
        while self._incoming:
            ev = self._incoming.popleft()
            n += 1
            if isinstance(ev, _StateChange):
                if self.on_connection is not None:
                    self.on_connection(ev.state, ev.reason)
                continue
            owner = _owner(ev)
            callback = owner.callback if owner is not None else None
            if callback is not None:
                callback(ev)
            elif self.on_notification is not None:
                self.on_notification(ev)
            else:
                self._queue.append(ev)
        return n

    def _next_event(self, match: Callable[[Event], bool], timeout: float | None,
                    obj: Any = None) -> Event | None:
        deadline = _deadline(timeout)
        while True:
            self._deliver_all()
            for i, ev in enumerate(self._queue):
                if match(ev):
                    del self._queue[i]
                    return ev
            if obj is not None and not obj.active:
                return None
            if self._raise_loss:
                self._raise_loss = False
                raise self._loss
            if self._closed:
                raise NotConnected("the client is closed")
            if self._sock is None:
                if not self.reconnect:
                    raise NotConnected(f"not connected: {self._loss}") from self._loss
                if _remaining(deadline) == 0:
                    return None
                self._try_reconnect(deadline)
                continue
            if not self._pump(deadline, lambda: bool(self._incoming)) and self._sock is not None:
                return None

    def dispatch(self, timeout: float | None = 0) -> int:
        """Read what arrived (waiting up to *timeout* for something), reconnect
        if due, and run the callbacks. Returns how many events were handled.

        Raises the loss (:class:`ConnectionLost`, :class:`DaemonShutdown`)
        once when the connection ends without reconnect; later,
        :class:`NotConnected`.
        """
        if self._closed:
            raise NotConnected("the client is closed")
        deadline = _deadline(timeout)
        if self._sock is None and self.reconnect:
            self._try_reconnect(deadline, wait=timeout != 0)
        if self._sock is not None and not self._incoming:
            self._pump(deadline, lambda: bool(self._incoming))
        n = self._deliver_all()
        if self._raise_loss:
            self._raise_loss = False
            raise self._loss
        if self._sock is None and not self.reconnect and not n:
            raise NotConnected(f"not connected: {self._loss}") from self._loss
        return n

    def run(self, timeout: float | None = None) -> None:
        """Dispatch until a callback calls :meth:`stop` or *timeout* passes."""
        deadline = _deadline(timeout)
        self._stop = False
        while not self._stop:
            left = _remaining(deadline)
            if left == 0:
                return
            self.dispatch(left if left is not None else 1.0)

    def stop(self) -> None:
        """Make :meth:`run` return after the current callback."""
        self._stop = True

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """Iterate over the events no callback takes, in arrival order. Ends
        when *timeout* seconds pass without one; raises the loss when the
        connection ends without reconnect."""
        while True:
            ev = self._next_event(lambda e: True, timeout)
            if ev is None:
                return
            yield ev

    def next_event(self, timeout: float | None = None) -> Event | None:
        """The next event no callback takes, or ``None`` after *timeout*."""
        return self._next_event(lambda e: True, timeout)

    def _wait_object(self, obj: Any, timeout: float | None) -> Event | None:
        return self._next_event(lambda e: _owner(e) is obj, timeout, obj)

    def _iter_object(self, obj: Any, timeout: float | None) -> Iterator[Event]:
        while True:
            ev = self._wait_object(obj, timeout)
            if ev is None:
                return
            yield ev

    def _aiter_object(self, obj: Any):
        raise TypeError("a blocking client's objects are iterated with for, not async for")

    # -- watches -------------------------------------------------------------------

    def watch(self, fd: Any, events: Any = "in", mode: Mode | str = ONESHOT, *,
              tag: Any = None, callback: Callable | None = None,
              timeout: Any = DEFAULT) -> Watch:
        """Watch *fd* (an int or an object with ``fileno()``) for *events*
        (``evd.IN | evd.OUT``, ``"in"`` or ``["in", "rdhup"]``) in *mode*
        (``evd.ONESHOT`` or ``evd.EDGE``). *tag*: any JSON value, echoed in
        events. *callback(event)*: where its events go (else: iterators).

        The daemon gets a duplicate of *fd*; the caller's fd is not touched.
        """
        w = Watch(self, _fileno(fd), request_events(events), Mode(mode), tag, callback)
        try:
            return self._call_value(lambda: self._session.watch(w, new=True), timeout)
        except BaseException:
            w._release()
            raise

    def _check_live(self, w: Watch) -> None:
        if not w.active:
            raise NoSuchWatch(-32001, "No such watch", {"why": "unwatched or closed"})

    def _modify(self, w: Watch, events: Any = None, mode: Any = None, *,
                timeout: Any = DEFAULT) -> None:
        self._check_live(w)
        if events is None and mode is None:
            raise ValueError("modify needs events or mode")
        names = request_events(events) if events is not None else None
        new_mode = Mode(mode) if mode is not None else None

        def make() -> list[Request]:
            req = self._session.modify(w, names, new_mode)
            return [req] if req is not None else []

        for req in self._roundtrip(make, timeout):
            req.pending.value()

    def _arm(self, w: Watch, *, timeout: Any = DEFAULT) -> None:
        self._check_live(w)
        self._call_value(lambda: self._session.arm(w), timeout)

    def _forget(self, obj: Any, timeout: Any, gone: type) -> None:
        if not obj.active:
            return
        self._incoming = deque(e for e in self._incoming if _owner(e) is not obj)
        self._queue = deque(e for e in self._queue if _owner(e) is not obj)
        req = self._session.forget(obj)
        if req is None or self._sock is None:
            return
        try:
            self._transact([req], _deadline(self._timeout(timeout)))
            req.pending.value()
        except (EvdConnectionError, gone):
            pass  # gone with the connection, or already gone on its own

    def _unwatch(self, w: Watch, *, timeout: Any = DEFAULT) -> None:
        self._forget(w, timeout, NoSuchWatch)

    # -- timers --------------------------------------------------------------------

    def _new_timer(self, after, at, interval, tag, callback) -> Timer:
        check_timer_args(after, at, interval)
        return Timer(self, after, at, interval, tag, callback)

    def timer(self, after: float | None = None, *, at: float | None = None,
              interval: float | None = None, tag: Any = None,
              callback: Callable | None = None, timeout: Any = DEFAULT) -> Timer:
        """A daemon timer: first expiry *after* seconds (monotonic clock) or
        *at* a time in seconds since the epoch (wall clock), then every
        *interval* seconds if given. Events are :class:`TimerExpired`."""
        t = self._new_timer(after, at, interval, tag, callback)
        return self._call_value(lambda: self._session.timer(t, new=True), timeout)

    def _cancel(self, t: Timer, *, timeout: Any = DEFAULT) -> None:
        self._forget(t, timeout, NoSuchTimer)

    # -- conveniences ----------------------------------------------------------------

    def wait_readable(self, fd: Any, timeout: float | None = None) -> Events:
        """Block until *fd* is readable; the events seen. Raises the builtin
        ``TimeoutError`` after *timeout* seconds."""
        return self._wait_fd(fd, "in", timeout)

    def wait_writable(self, fd: Any, timeout: float | None = None) -> Events:
        """Block until *fd* is writable, as :meth:`wait_readable`."""
        return self._wait_fd(fd, "out", timeout)

    def _wait_fd(self, fd: Any, events: str, timeout: float | None) -> Events:
        w = self.watch(fd, events, ONESHOT)
        try:
            ev = w.wait(timeout)
        finally:
            w.unwatch()
        if ev is None:
            raise TimeoutError(f"fd {w.fd} not ready within {timeout} s")
        if not hasattr(ev, "events"):
            raise ConnectionLost(f"the daemon closed the watch: {ev}")
        return ev.events

    def wait_pid(self, pid: int, timeout: float | None = None) -> None:
        """Block until process *pid* has exited (through a pidfd watch; the
        process is not reaped; one that no longer exists has exited). Raises ``TimeoutError`` after *timeout*."""
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return  # gone already (and reaped)
        try:
            self._wait_fd(pidfd, "in", timeout)
        finally:
            os.close(pidfd)

    # -- any method ----------------------------------------------------------------------

    def call(self, method: str, params: dict | None = None, *, fds: Any = (),
             timeout: Any = DEFAULT) -> Any:
        """Call any method; returns its ``result``, raises its error as a
        :class:`DaemonError` subclass. *fds* go with the request (name them by
        index in *params*, e.g. ``{"fd": 0}``); they are only read."""
        fds = [_fileno(f) for f in fds]
        return self._call_value(lambda: self._session.request(method, params, fds=fds), timeout)

    def notify(self, method: str, params: dict | None = None) -> None:
        """Send a request without id: executed, never answered."""
        deadline = _deadline(self.timeout)
        self._ensure_connected(deadline)
        self._transact([self._session.request(method, params, notify=True)], deadline)

    def hello(self, name: str | None = None, **kw) -> dict:
        """``hello`` again (e.g. to change the name); the result is also kept
        as :attr:`server_info`."""
        if name is not None:
            self.name = name
        self.server_info = self._call_value(lambda: self._session.hello(self.name),
                                            kw.get("timeout", DEFAULT))
        return self.server_info

    def _all(self, method: str, key: str, client: int | None, **kw) -> list:
        items, offset = [], 0
        while True:
            page = self._page(method, client, offset, None, **kw)
            items.extend(page[key])
            if page.get("next") is None:
                return items
            offset = page["next"]

    def clients(self, **kw) -> list[dict]:
        """Every connection the caller may see (all pages of ``clients``)."""
        return self._all("clients", "clients", None, **kw)

    def watches(self, client: int | None = None, **kw) -> list[dict]:
        """The watches of *client* (default: this one), all pages."""
        return self._all("watches", "watches", client, **kw)

    def timers(self, client: int | None = None, **kw) -> list[dict]:
        """The timers of *client* (default: this one), all pages."""
        return self._all("timers", "timers", client, **kw)

    def _send_batch(self, batch: Batch, timeout: Any) -> list:
        deadline = _deadline(self._timeout(timeout))
        self._ensure_connected(deadline)
        for reqs in batch._rounds():
            self._transact(reqs, deadline)
        return batch._outcomes()


def connect(path: str | None = None, **kw) -> Client:
    """Connect a blocking :class:`Client` (same arguments)."""
    return Client(path, **kw)
