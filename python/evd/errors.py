"""The exceptions evd raises: one hierarchy, rooted at :class:`EvdError`.

Two branches. :class:`DaemonError` is an answer: the daemon replied with a
JSON-RPC error, whose ``code``, ``message`` and ``data`` the exception carries;
each code PROTOCOL.md documents has its own subclass so that callers can catch
``evd.NoSuchWatch`` rather than compare numbers. :class:`EvdConnectionError` is
the absence of an answer: the connection could not be made or went away.
"""

from __future__ import annotations

import builtins
from typing import Any

__all__ = [
    "EvdError", "EvdConnectionError", "DaemonNotRunning", "ConnectionLost",
    "DaemonShutdown", "NotConnected", "ProtocolError", "Timeout", "DaemonError",
    "ParseError", "InvalidRequest", "MethodNotFound", "InvalidParams",
    "InternalError", "NoSuchWatch", "NoSuchTimer", "BadFileDescriptor",
    "QuotaExceeded", "PermissionDenied", "TooManyFileDescriptors",
    "MessageTooLarge", "ShuttingDown", "OutOfFileDescriptors",
    "ReplyBudgetExceeded", "error_from_wire",
]


class EvdError(Exception):
    """Base class of every exception this package raises on purpose."""


class EvdConnectionError(EvdError, builtins.ConnectionError):
    """No answer can come: the connection is missing, broken or was refused."""


class DaemonNotRunning(EvdConnectionError):
    """Connecting failed: nothing listens at :attr:`path` (ENOENT, ECONNREFUSED)."""

    def __init__(self, path: str, cause: OSError):
        super().__init__(f"evd is not running at {path}: {cause.strerror or cause}")
        self.path = path
        self.errno = cause.errno


class ConnectionLost(EvdConnectionError):
    """The daemon closed the connection (or it broke) before answering."""


class DaemonShutdown(ConnectionLost):
    """The connection ended after the daemon announced its shutdown.

    :attr:`reason` is the ``shutdown`` notification's reason (``"signal"``,
    ``"admin"``, or one a newer daemon made up).
    """

    def __init__(self, reason: str):
        super().__init__(f"the daemon announced its shutdown ({reason})")
        self.reason = reason


class NotConnected(EvdConnectionError):
    """A call was made on a client that is closed, or lost its connection
    with reconnect off."""


class ProtocolError(ConnectionLost):
    """The daemon sent something PROTOCOL.md does not allow; the client drops
    the connection rather than guess."""


class Timeout(EvdError, builtins.TimeoutError):
    """The daemon did not answer within the call's timeout.

    As in libevd, the request still takes effect; a watch or timer that the
    timed-out call was creating is removed again once the daemon answers.
    """


class DaemonError(EvdError):
    """The daemon answered with a JSON-RPC error.

    :attr:`code`, :attr:`message` and :attr:`data` are the error object's
    members (``data`` is ``{}`` when absent); :attr:`param` and :attr:`why` are
    read from ``data``. Rely on ``code`` and ``param``, not on ``why``'s wording.
    """

    code: int = 0

    def __init__(self, code: int, message: str, data: Any = None):
        self.code = code
        self.message = message
        self.data = data if isinstance(data, dict) else {}
        detail = ", ".join(f"{k}={v!r}" for k, v in self.data.items())
        super().__init__(f"{message} ({code})" + (f": {detail}" if detail else ""))

    @property
    def param(self) -> str | None:
        """The offending parameter's name, when the daemon named one."""
        return self.data.get("param")

    @property
    def why(self) -> str | None:
        """The daemon's short human-readable reason, if it gave one."""
        return self.data.get("why")


def _code(code: int, name: str, doc: str) -> type[DaemonError]:
    cls = type(name, (DaemonError,), {"code": code, "__doc__": doc})
    _BY_CODE[code] = cls
    return cls


_BY_CODE: dict[int, type[DaemonError]] = {}

ParseError = _code(-32700, "ParseError", "-32700: the packet was not valid JSON.")
InvalidRequest = _code(-32600, "InvalidRequest", "-32600: not a valid request object.")
MethodNotFound = _code(-32601, "MethodNotFound", "-32601: unknown method.")
InvalidParams = _code(-32602, "InvalidParams",
                      "-32602: a missing, unknown, mistyped or out-of-range parameter.")
InternalError = _code(-32603, "InternalError", "-32603: a daemon bug or unexpected system error.")
NoSuchWatch = _code(-32001, "NoSuchWatch", "-32001: no such watch (or another client's).")
NoSuchTimer = _code(-32002, "NoSuchTimer", "-32002: no such timer (finished, or another client's).")
BadFileDescriptor = _code(-32003, "BadFileDescriptor",
                          "-32003: the fd is missing from the packet or cannot be polled.")
QuotaExceeded = _code(-32004, "QuotaExceeded", "-32004: a quota; ``data['limit']`` gives it.")
PermissionDenied = _code(-32005, "PermissionDenied", "-32005: admin-only method or parameter.")
TooManyFileDescriptors = _code(-32006, "TooManyFileDescriptors",
                               "-32006: the packet carried more than 32 fds.")
MessageTooLarge = _code(-32007, "MessageTooLarge",
                        "-32007: the packet (or its reply) exceeds 65,536 bytes.")
ShuttingDown = _code(-32008, "ShuttingDown", "-32008: the daemon is stopping.")
OutOfFileDescriptors = _code(-32009, "OutOfFileDescriptors",
                             "-32009: the daemon ran out of fds; retry later.")
ReplyBudgetExceeded = _code(-32010, "ReplyBudgetExceeded",
                            "-32010: the packet's reply budget was used up; not executed.")


def error_from_wire(error: Any) -> DaemonError:
    """Build the exception for a reply's ``error`` member (any JSON value)."""
    if not isinstance(error, dict) or not isinstance(error.get("code"), int):
        return InternalError(-32603, "Internal error", {"why": f"malformed error {error!r}"})
    code = error["code"]
    cls = _BY_CODE.get(code, DaemonError)
    return cls(code, str(error.get("message", "")), error.get("data"))
