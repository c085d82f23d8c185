"""evd: a pure-Python client for evd, the fd-readiness daemon.

Two clients over the same protocol (PROTOCOL.md): :class:`Client` blocks,
:class:`AsyncClient` runs in an asyncio loop without threads. Both watch fds
(``watch``), run daemon timers (``timer``), call any method, send batches, and
with ``reconnect=True`` survive a daemon restart by registering everything
again, as libevd does. Errors are :class:`EvdError` subclasses; daemon errors
carry the JSON-RPC ``code``, ``message`` and ``data``.

File descriptors passed to the library are never closed or modified by it.
"""

from .aio import AsyncClient, connect_async, wait_pid, wait_readable, wait_writable
from .batch import Batch, BatchItem
from .client import Client, connect
from .errors import *  # noqa: F401,F403 - the exception hierarchy is public
from .errors import __all__ as _errors_all
from .events import (EDGE, ERR, HUP, IN, ONESHOT, OUT, PRI, RDHUP, ConnectionState, Event,
                     Events, Mode, Notification, Ready, Shutdown, TimerExpired, WatchClosed)
from .objects import Timer, Watch
from .wire import default_socket_path

__version__ = "0.1.0"

__all__ = ["AsyncClient", "Batch", "BatchItem", "Client", "ConnectionState", "EDGE", "ERR",
           "Event", "Events", "HUP", "IN", "Mode", "Notification", "ONESHOT", "OUT", "PRI",
           "RDHUP", "Ready", "Shutdown", "Timer", "TimerExpired", "Watch", "WatchClosed",
           "connect", "connect_async", "default_socket_path", "wait_pid", "wait_readable",
           "wait_writable"] + _errors_all
