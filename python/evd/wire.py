"""Packets on the wire (PROTOCOL.md sections 1-3): paths, framing, fds, EOF.

No state and no waiting: every function here works on a non-blocking
``SOCK_SEQPACKET`` socket and either completes at once or raises
``BlockingIOError``, so the blocking client and the asyncio client share it.
"""

from __future__ import annotations

import array
import errno
import fcntl
import json
import os
import select
import socket
import termios
from typing import Any, Sequence

MAX_PACKET = 65536
MAX_FDS = 32
MAX_BATCH = 1024

#: What one ``recv_packet()`` call returns when the peer has hung up.
EOF = object()


def default_socket_path() -> str:
    """The socket libevd and evctl use: ``$EVD_SOCKET``, else
    ``/run/evd/evd.sock`` for root, else ``$XDG_RUNTIME_DIR/evd/evd.sock``."""
    env = os.environ.get("EVD_SOCKET")
    if env:
        return env
    if os.geteuid() == 0:
        return "/run/evd/evd.sock"
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if not runtime:
        # Where a login session's runtime directory would be: an error then
        # names a plausible path instead of a relative one.
        runtime = f"/run/user/{os.geteuid()}"
    return os.path.join(runtime, "evd", "evd.sock")


def open_socket(path: str) -> socket.socket:
    """A non-blocking, close-on-exec socket connected to *path*.

    ``EAGAIN`` (the listen backlog is full) surfaces as ``BlockingIOError``
    like any other ``OSError``; the caller decides whether to retry.
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        sock.setblocking(False)
        sock.connect(path)
    except BaseException:
        sock.close()
        raise
    return sock


def encode(message: Any) -> bytes:
    """Compact UTF-8 JSON, as the daemon expects (NaN is not JSON)."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def send_packet(sock: socket.socket, data: bytes, fds: Sequence[int] = ()) -> None:
    """Send one packet with *fds* as ``SCM_RIGHTS``; the fds are only read.

    Raises ``BlockingIOError`` if the socket buffer is full (nothing was sent:
    a ``SOCK_SEQPACKET`` packet goes whole or not at all).
    """
    if fds:
        socket.send_fds(sock, [data], list(fds), socket.MSG_NOSIGNAL | socket.MSG_DONTWAIT)
    else:
        sock.send(data, socket.MSG_NOSIGNAL | socket.MSG_DONTWAIT)


def _close_received_fds(ancdata: list) -> bool:
    got = False
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
            for fd in fds:
                os.close(fd)
        got = True
    return got


def _peer_gone(sock: socket.socket) -> bool:
    """Section 1.1: a 0-byte read is EOF only if the peer hung up and nothing
    with bytes is still queued."""
    p = select.poll()
    p.register(sock, select.POLLIN | select.POLLRDHUP)
    hung_up = any(ev & (select.POLLHUP | select.POLLRDHUP) for _, ev in p.poll(0))
    if not hung_up:
        return False
    queued = array.array("i", [0])
    fcntl.ioctl(sock, termios.FIONREAD, queued, True)
    return queued[0] == 0


def recv_packet(sock: socket.socket) -> bytes | object | None:
    """Read one packet: its bytes, ``EOF``, or ``None`` for an empty packet.

    The daemon never sends fds; any that arrive are closed. A packet longer
    than 65,536 bytes cannot come from a conforming daemon and raises
    ``ValueError``. ``ECONNRESET`` (the daemon closed with our requests
    unread) comes before the packets sent until then, which are still read.
    """
    for _ in range(2):
        try:
            data, ancdata, flags, _ = sock.recvmsg(
                MAX_PACKET + 1, socket.CMSG_SPACE(MAX_FDS * 4),
                socket.MSG_CMSG_CLOEXEC | socket.MSG_DONTWAIT)
            break
        except ConnectionResetError:
            # Reported (once) before the packets still queued: read those,
            # a refusal's error among them.
            continue
    else:
        return EOF
    had_control = _close_received_fds(ancdata)
    if flags & socket.MSG_TRUNC or len(data) > MAX_PACKET:
        raise ValueError("the daemon sent a packet over 65,536 bytes")
    if data:
        return data
    if had_control or not _peer_gone(sock):
        return None
    return EOF


def decode(data: bytes) -> list[dict]:
    """The messages of one packet (an object or an array of objects).

    Raises ``ValueError`` for anything else: a daemon that sends it is broken.
    """
    value = json.loads(data)
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(m, dict) for m in items):
        raise ValueError(f"not a message or batch: {data[:200]!r}")
    return items


def is_disconnect(exc: OSError) -> bool:
    """Whether a send failure means the daemon is gone (not a local bug)."""
    return exc.errno in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.ECONNREFUSED)
