"""The methods both clients spell the same way: each forwards to ``call()``
or ``timer()``, so on the asyncio client it returns the coroutine those do."""

from __future__ import annotations

from typing import Any

from .batch import Batch


class Methods:
    """Mixed into :class:`evd.Client` and :class:`evd.AsyncClient`."""

    def ping(self, **kw) -> Any:
        """``ping`` (result ``{}``): every earlier request has been answered."""
        return self.call("ping", **kw)

    def status(self, **kw) -> Any:
        """``status``: daemon-wide figures (version, backend, counts, reexec)."""
        return self.call("status", **kw)

    def stats(self, **kw) -> Any:
        """``stats``: counters since start."""
        return self.call("stats", **kw)

    def monitor(self, connections: bool = False, **kw) -> Any:
        """``monitor`` (admin): copies of every notification the daemon sends
        arrive as :class:`evd.Notification` events with method ``"monitor"``."""
        return self.call("monitor", {"connections": connections}, **kw)

    def reexec(self, **kw) -> Any:
        """``reexec`` (admin): the daemon replaces its image in place."""
        return self.call("reexec", **kw)

    def _page(self, method: str, client: int | None, offset: int, limit: int | None,
              **kw) -> Any:
        params: dict = {"offset": offset}
        if client is not None:
            params["client"] = client
        if limit is not None:
            params["limit"] = limit
        return self.call(method, params, **kw)

    def clients_page(self, offset: int = 0, limit: int | None = None, **kw) -> Any:
        """One page of ``clients``: the raw result (``clients``, ``total``, ``next``)."""
        return self._page("clients", None, offset, limit, **kw)

    def watches_page(self, client: int | None = None, offset: int = 0,
                     limit: int | None = None, **kw) -> Any:
        """One page of ``watches`` of *client* (default: this one): the raw result."""
        return self._page("watches", client, offset, limit, **kw)

    def timers_page(self, client: int | None = None, offset: int = 0,
                    limit: int | None = None, **kw) -> Any:
        """One page of ``timers`` of *client* (default: this one): the raw result."""
        return self._page("timers", client, offset, limit, **kw)

    def after(self, seconds: float, **kw) -> Any:
        """A timer that expires once, *seconds* from now."""
        return self.timer(seconds, **kw)

    def at(self, when: float, **kw) -> Any:
        """A timer that expires at *when* (seconds since the epoch, wall clock)."""
        return self.timer(at=when, **kw)

    def every(self, interval: float, **kw) -> Any:
        """A timer that expires every *interval* seconds, first in *interval*."""
        return self.timer(interval, interval=interval, **kw)

    def batch(self) -> Batch:
        """A :class:`evd.Batch` of requests to send in one packet."""
        return Batch(self)
