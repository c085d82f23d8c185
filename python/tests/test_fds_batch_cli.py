"""fd ownership, batches, and ``python -m evd``."""

import fcntl
import json
import os
import socket
import subprocess
import sys

import pytest

import evd
from conftest import TIMEOUT

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fd_state(fd):
    """What the library must leave alone: the file, its flags, close-on-exec."""
    st = os.fstat(fd)
    return (st.st_dev, st.st_ino, fcntl.fcntl(fd, fcntl.F_GETFL), fcntl.fcntl(fd, fcntl.F_GETFD))


def test_fds_are_never_closed_or_changed(daemon, pipe):
    r, w = pipe
    os.set_inheritable(r, True)  # a flag the library could clobber by mistake
    before = fd_state(r), fd_state(w)
    c = daemon.client(reconnect=True)
    watch = c.watch(r, "in", evd.EDGE)
    assert (fd_state(r), fd_state(w)) == before
    os.write(w, b"x")
    assert watch.wait(TIMEOUT)
    watch.unwatch()
    assert (fd_state(r), fd_state(w)) == before
    again = c.watch(r, "in", evd.EDGE)
    daemon.restart()
    assert c.ping() == {}  # reconnected, re-registered with the library's own copy
    assert again.id is not None
    c.close()
    assert (fd_state(r), fd_state(w)) == before
    assert os.read(r, 1) == b"x"  # still the caller's, still open


def test_caller_may_close_its_fd_at_once(client):
    r, w = os.pipe()
    watch = client.watch(r, "in")
    os.close(r)  # the daemon holds its own copy (PROTOCOL.md section 2)
    os.write(w, b"x")
    assert watch.wait(TIMEOUT).events & evd.IN
    os.close(w)
    watch.unwatch()


def test_library_copies_are_released(daemon):
    def open_fds():
        return len(os.listdir("/proc/self/fd"))

    base = open_fds()
    with daemon.client() as c:
        r, w = os.pipe()
        watches = [c.watch(r, "in") for _ in range(10)]
        assert open_fds() == base + 1 + 2 + 10  # the socket, the pipe, the copies
        for x in watches[:5]:
            x.unwatch()
        assert open_fds() == base + 1 + 2 + 5
    assert open_fds() == base + 2
    os.close(r)
    os.close(w)


def test_batch_is_one_packet(client, pipe):
    r, w = pipe
    a, b = socket.socketpair()
    with a, b:
        before = client.stats()["daemon"]["packets_in"]
        batch = client.batch()
        i_watch = batch.watch(r, "in", tag="pipe")
        i_sock = batch.watch(a, ["in", "rdhup"], evd.EDGE)
        i_timer = batch.timer(0, tag="t")
        i_ping = batch.ping()
        batch.notify("ping")
        i_bad = batch.call("arm", {"watch": 999999})
        results = batch.send()
        after = client.stats()["daemon"]["packets_in"]
        assert after - before == 2  # the batch and this stats call
        assert len(results) == 5  # the notification has no outcome
        watch, sock_watch, timer, pong, bad = results
        assert isinstance(watch, evd.Watch) and i_watch.result() is watch
        assert isinstance(sock_watch, evd.Watch) and i_sock.result() is sock_watch
        assert isinstance(timer, evd.Timer) and i_timer.result() is timer
        assert pong == {} and i_ping.result() == {}
        assert isinstance(bad, evd.NoSuchWatch) and i_bad.error is bad
        with pytest.raises(evd.NoSuchWatch):
            i_bad.result()
        assert {x["tag"] for x in client.watches() if "tag" in x} == {"pipe"}
        assert timer.wait(TIMEOUT).tag == "t"
        b.shutdown(socket.SHUT_WR)
        assert sock_watch.wait(TIMEOUT).events & evd.RDHUP
        with pytest.raises(RuntimeError):
            batch.send()


def test_batch_limits_are_checked_before_sending(client, pipe):
    batch = client.batch()
    for _ in range(33):
        batch.watch(pipe[0], "in")
    with pytest.raises(ValueError):
        batch.send()
    assert client.watches() == []


def test_batch_resends_what_the_reply_budget_refused(make_daemon):
    d = make_daemon("--max-queued-bytes", "131072")  # a 65,536-byte reply budget
    with d.client() as c:
        assert c.server_info["limits"]["max_reply_bytes"] == 65536
        r, w = os.pipe()
        try:
            for i in range(40):
                c.watch(r, "in", tag="x" * 1000)
            errors = c.stats()["daemon"]["errors"]
            batch = c.batch()
            items = [batch.call("watches", {"limit": 40}) for _ in range(12)]
            results = batch.send()
            # Every one answered (pages shortened to fit the budget, PROTOCOL.md 7).
            assert len(results) == 12
            assert all(i.result()["total"] == 40 and i.result()["watches"] for i in items)
            # Proof the budget was hit and the refused requests sent again.
            assert c.stats()["daemon"]["errors"] > errors
        finally:
            os.close(r)
            os.close(w)


def test_call_with_fds(client, pipe):
    r, w = pipe
    result = client.call("watch", {"fd": 0, "events": ["in"], "mode": "edge"}, fds=[r])
    assert isinstance(result["watch"], int)
    assert fd_state(r)


def run_cli(daemon, *args, env=None):
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = PYTHON_DIR
    return subprocess.run([sys.executable, "-m", "evd", *args], capture_output=True, text=True,
                          env=env, timeout=TIMEOUT * 3)


def test_cli_status(daemon):
    out = run_cli(daemon, "--socket", daemon.socket, "status")
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)
    assert status["server"] == "evd" and status["pid"] == daemon.pid
    env = dict(os.environ, EVD_SOCKET=daemon.socket)
    out = run_cli(daemon, env=env)  # default method status, default socket $EVD_SOCKET
    assert out.returncode == 0 and json.loads(out.stdout)["pid"] == daemon.pid


def test_cli_not_running(tmp_path, daemon):
    out = run_cli(daemon, "--socket", str(tmp_path / "none.sock"))
    assert out.returncode == 3 and "not running" in out.stderr
