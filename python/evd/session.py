"""The protocol state of one client, without any I/O (shared by both clients).

The session numbers requests, matches replies to them, turns notifications
into :mod:`evd.events` objects routed to their Watch or Timer, and knows what
to send again after a reconnect. The blocking and asyncio clients only move
bytes: they hand received packets to :meth:`Session.feed` and send what the
request builders return.

Invariants: ``pending`` holds every request sent on the current connection
and not yet answered, in send order (the daemon answers in order); a watch or
timer is in ``by_watch_id``/``by_timer_id`` exactly while the daemon holds it
for us on this connection; ``objects`` holds every live object, registered or
waiting to be (a oneshot watch that fired and was not re-armed when the
connection dropped is registered again only when armed, so it stays quiet).
"""

from __future__ import annotations

from typing import Any, Callable

from . import wire
from .errors import (ConnectionLost, DaemonError, DaemonShutdown, EvdConnectionError,
                     ProtocolError, ReplyBudgetExceeded, error_from_wire)
from .events import (Events, Mode, Notification, Ready, Shutdown, TimerExpired,
                     WatchClosed)
from .objects import Timer, Watch

PROTOCOL = 1


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


#: A call's ``timeout`` when none is given: the client's ``timeout``.
DEFAULT: Any = _Default()


class Pending:
    """One request awaiting its reply. ``on_result`` turns the raw result into
    the caller's value; ``on_error`` sees a failure first; ``waker`` runs once
    either is known (the asyncio client resolves a future there)."""

    __slots__ = ("id", "method", "done", "result", "error", "on_result", "on_error",
                 "waker", "abandoned")

    def __init__(self, rid: int, method: str):
        self.id = rid
        self.method = method
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None
        self.on_result: Callable[[Any], Any] | None = None
        self.on_error: Callable[[BaseException], None] | None = None
        self.waker: Callable[["Pending"], None] | None = None
        # A blocking call gave up waiting (timeout): what it created is undone.
        self.abandoned = False

    def finish(self, result: Any = None, error: BaseException | None = None) -> None:
        if self.done:
            return
        if error is None and self.on_result is not None:
            try:
                result = self.on_result(result)
            except (KeyError, TypeError, ValueError) as exc:
                error = ProtocolError(f"malformed {self.method} result {result!r}: {exc}")
        if error is not None and self.on_error is not None:
            self.on_error(error)
        self.done, self.result, self.error = True, result, error
        if self.waker is not None:
            self.waker(self)

    def value(self) -> Any:
        """The result, or raise the error."""
        if self.error is not None:
            raise self.error
        return self.result


class Request:
    """A message to send, its fds (indices are positions in this list), and
    its Pending (``None`` for a JSON-RPC notification)."""

    __slots__ = ("message", "fds", "pending")

    def __init__(self, message: dict, fds: list[int], pending: Pending | None):
        self.message, self.fds, self.pending = message, fds, pending


def pack(requests: list[Request]) -> tuple[bytes, list[int]]:
    """One packet for *requests*: a bare object for one, a batch for more; fd
    indices are renumbered onto the packet's shared fd array."""
    fds: list[int] = []
    messages = []
    for req in requests:
        msg = req.message
        if req.fds:
            params = dict(msg["params"])
            params["fd"] = len(fds) + params["fd"]
            msg = dict(msg, params=params)
            fds.extend(req.fds)
        messages.append(msg)
    if len(fds) > wire.MAX_FDS:
        raise ValueError(f"a packet carries at most {wire.MAX_FDS} fds, not {len(fds)}")
    if len(messages) > wire.MAX_BATCH:
        raise ValueError(f"a batch holds at most {wire.MAX_BATCH} requests")
    data = wire.encode(messages[0] if len(messages) == 1 else messages)
    if len(data) > wire.MAX_PACKET:
        from .errors import MessageTooLarge
        raise MessageTooLarge(-32007, "Message too large",
                              {"why": f"the packet would be {len(data)} bytes (at most 65,536)"})
    return data, fds


class Session:
    """See the module docstring."""

    def __init__(self):
        self.next_id = 1
        self.pending: dict[int, Pending] = {}
        self.by_watch_id: dict[int, Watch] = {}
        self.by_timer_id: dict[int, Timer] = {}
        self.objects: dict[Watch | Timer, None] = {}
        self.outbox: list[bytes] = []
        self.events: list = []
        self.shutdown_reason: str | None = None
        self.refusal: DaemonError | None = None
        self.restore_error: BaseException | None = None

    # -- requests -----------------------------------------------------------

    def request(self, method: str, params: dict | None = None, *, notify: bool = False,
                fds: list[int] | None = None) -> Request:
        """A request (or, with *notify*, a JSON-RPC notification) for any method."""
        msg: dict = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        pending = None
        if not notify:
            msg["id"] = self.next_id
            pending = Pending(self.next_id, method)
            self.next_id += 1
        return Request(msg, list(fds or ()), pending)

    def sent(self, requests: list[Request]) -> None:
        """Record that *requests* went out on the current connection."""
        for req in requests:
            if req.pending is not None:
                self.pending[req.pending.id] = req.pending

    def hello(self, name: str | None) -> Request:
        params: dict = {"protocol": PROTOCOL}
        if name is not None:
            params["client"] = name
        return self.request("hello", params)

    def watch(self, w: Watch, new: bool = False) -> Request:
        """Register *w* (*new*: for the first time; a failure then releases it)."""
        req = self.request("watch", w._params(0), fds=[w._dup])
        pending = req.pending
        if new:
            pending.on_error = lambda error: _unless_retried(error, w)

        def registered(result: Any) -> Watch:
            wid = result["watch"]
            if not isinstance(wid, int):
                raise TypeError("watch id is not an integer")
            if pending.abandoned or not w.active:
                # Nobody holds it (a timed-out call, or unwatched meanwhile).
                self.outbox.append(wire.encode(self.request("unwatch", {"watch": wid},
                                                            notify=True).message))
                if pending.abandoned:
                    w._release()
                return w
            w.id = wid
            self.by_watch_id[wid] = w
            self.objects[w] = None
            return w

        pending.on_result = registered
        return req

    def timer(self, t: Timer, new: bool = False) -> Request:
        """Register *t* (again after a reconnect: with its remaining time)."""
        req = self.request("timer", t._params())
        pending = req.pending
        if new:
            pending.on_error = lambda error: _unless_retried(error, t)

        def registered(result: Any) -> Timer:
            tid = result["timer"]
            if not isinstance(tid, int):
                raise TypeError("timer id is not an integer")
            if pending.abandoned or not t.active:
                self.outbox.append(wire.encode(self.request("cancel", {"timer": tid},
                                                            notify=True).message))
                if pending.abandoned:
                    t._release()
                return t
            t.id = tid
            self.by_timer_id[tid] = t
            self.objects[t] = None
            return t

        pending.on_result = registered
        return req

    def modify(self, w: Watch, events: list[str] | None, mode: Mode | None) -> Request | None:
        """``modify``, or ``None`` when *w* is not registered (then the new
        settings are only recorded, for its registration)."""
        def apply(result: Any = None) -> None:
            if events is not None:
                w._names = events
            if mode is not None:
                if mode is Mode.EDGE:
                    w.armed = True
                w.mode = mode

        if w.id is None:
            apply()
            return None
        params: dict = {"watch": w.id}
        if events is not None:
            params["events"] = events
        if mode is not None:
            params["mode"] = mode.value
        req = self.request("modify", params)
        req.pending.on_result = apply
        return req

    def arm(self, w: Watch) -> Request:
        """``arm``, or ``watch`` for a oneshot watch left unregistered by a
        reconnect (a new watch starts armed)."""
        if w.id is None:
            req = self.watch(w)

            def dead(error: BaseException) -> None:
                if not isinstance(error, EvdConnectionError):
                    self.objects.pop(w, None)
                    w._release()

            req.pending.on_error = dead
        else:
            req = self.request("arm", {"watch": w.id})

        def armed(result: Any, inner=req.pending.on_result) -> None:
            if inner is not None:
                inner(result)
            w.armed = True

        req.pending.on_result = armed
        return req

    def forget(self, obj: Watch | Timer) -> Request | None:
        """Remove *obj* locally at once (no event is delivered after this) and
        return the request that removes it from the daemon, if it holds it."""
        self.objects.pop(obj, None)
        oid = obj.id
        if isinstance(obj, Watch):
            self.by_watch_id.pop(oid, None)
            method, key = "unwatch", "watch"
        else:
            self.by_timer_id.pop(oid, None)
            method, key = "cancel", "timer"
        obj._release()
        self.events = [e for e in self.events if _owner(e) is not obj]
        if oid is None:
            return None
        return self.request(method, {key: oid})

    # -- what arrives -------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Handle one packet: replies finish their Pending, notifications are
        appended to ``events``. Raises :class:`ProtocolError` on garbage."""
        try:
            messages = wire.decode(data)
        except ValueError as exc:
            raise ProtocolError(f"the daemon sent an invalid packet: {exc}") from None
        for msg in messages:
            if "method" in msg and "id" not in msg:
                self._notification(msg.get("method"), msg.get("params"))
            elif "id" in msg:
                self._reply(msg)
            else:
                raise ProtocolError(f"neither reply nor notification: {msg!r}")

    def _reply(self, msg: dict) -> None:
        error = msg.get("error")
        if msg["id"] is None:
            # Not an answer to any request of ours (we send only valid packets
            # within the limits): the daemon refusing the connection.
            if error is not None:
                self.refusal = error_from_wire(error)
            return
        pending = self.pending.pop(msg["id"], None)
        if pending is None:
            return
        if error is not None:
            pending.finish(error=error_from_wire(error))
        elif "result" in msg:
            pending.finish(msg["result"])
        else:
            pending.finish(error=ProtocolError(f"reply without result or error: {msg!r}"))

    def _notification(self, method: Any, params: Any) -> None:
        p = params if isinstance(params, dict) else {}
        if method == "ready":
            w = self.by_watch_id.get(p.get("watch"))
            if w is None:
                return  # removed by us; the daemon's copy was already queued
            if w.mode is Mode.ONESHOT:
                w.armed = False
            self.events.append(Ready(w, Events.from_names(p.get("events", ())),
                                     int(p.get("count", 1)), p.get("tag")))
        elif method == "timer":
            t = self.by_timer_id.get(p.get("timer"))
            if t is None:
                return
            n = int(p.get("expirations", 1))
            t._expired(n)
            if not t.active:
                self.by_timer_id.pop(p.get("timer"), None)
                self.objects.pop(t, None)
            self.events.append(TimerExpired(t, n, float(p.get("late", 0.0)), p.get("tag")))
        elif method == "closed":
            w = self.by_watch_id.pop(p.get("watch"), None)
            if w is None:
                return
            self.objects.pop(w, None)
            w._release()
            self.events.append(WatchClosed(w, str(p.get("reason", "error")), p.get("tag")))
        elif method == "shutdown":
            self.shutdown_reason = str(p.get("reason", "unknown"))
            self.events.append(Shutdown(self.shutdown_reason))
        else:
            self.events.append(Notification(str(method), params))

    def take_events(self) -> list:
        events, self.events = self.events, []
        return events

    # -- connection changes -------------------------------------------------

    def loss(self) -> ConnectionLost:
        """The exception that explains the end of the current connection."""
        if self.shutdown_reason is not None:
            return DaemonShutdown(self.shutdown_reason)
        if self.refusal is not None:
            exc = ConnectionLost(f"the daemon refused the connection: {self.refusal}")
            exc.refusal = self.refusal
            return exc
        return ConnectionLost("the daemon closed the connection")

    def lost(self, exc: BaseException) -> None:
        """The connection is gone: fail what was in flight, unregister all."""
        pending, self.pending = self.pending, {}
        for p in pending.values():
            p.finish(error=exc)
        self.by_watch_id.clear()
        self.by_timer_id.clear()
        for obj in self.objects:
            obj.id = None
        self.outbox.clear()

    def connected(self) -> None:
        """A new connection: forget what the previous one said about itself."""
        self.shutdown_reason = None
        self.refusal = None
        self.restore_error = None

    def restore(self) -> list[list[Request]]:
        """Packets that register every live object again (libevd's rules: a
        oneshot watch that fired and was not re-armed stays unregistered until
        armed). A failure other than a lost connection drops the object and
        reports it as libevd does: ``WatchClosed`` / zero expirations."""
        watches, timers = [], []
        for obj in list(self.objects):
            if isinstance(obj, Watch):
                if obj.mode is Mode.EDGE or obj.armed:
                    watches.append(self._restoring(obj, self.watch(obj)))
            else:
                timers.append(self._restoring(obj, self.timer(obj)))
        packets = [watches[i:i + wire.MAX_FDS] for i in range(0, len(watches), wire.MAX_FDS)]
        packets += [timers[i:i + 256] for i in range(0, len(timers), 256)]
        return packets

    def _restoring(self, obj: Watch | Timer, req: Request) -> Request:
        def failed(error: BaseException) -> None:
            if isinstance(error, EvdConnectionError):
                return  # tried again on the next connection
            if self.restore_error is None:
                self.restore_error = error
            self.objects.pop(obj, None)
            tag = obj.tag
            obj._release()
            if isinstance(obj, Watch):
                self.events.append(WatchClosed(obj, "error", tag, error))
            else:
                self.events.append(TimerExpired(obj, 0, 0.0, tag))

        req.pending.on_error = failed
        return req

    def close(self) -> None:
        """Release every object (the client is closing for good)."""
        for obj in list(self.objects):
            obj._release()
        self.objects.clear()
        self.by_watch_id.clear()
        self.by_timer_id.clear()


def _unless_retried(error: BaseException, obj: Watch | Timer) -> None:
    # A batch sends a request refused for the reply budget again, same object.
    if not isinstance(error, ReplyBudgetExceeded):
        obj._release()


def _owner(event: Any) -> Any:
    return getattr(event, "watch", None) or getattr(event, "timer", None)
