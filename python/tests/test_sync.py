"""The blocking client's API against a real daemon."""

import json
import os
import socket
import time

import pytest

import evd
from conftest import TIMEOUT, wait_until


def test_hello_and_server_info(client):
    info = client.server_info
    assert info["server"] == "evd" and info["protocol"] == 1
    assert info["backend"] == os.environ.get("EVD_TEST_BACKEND", info["backend"])
    assert info["limits"]["max_fds"] == 32
    again = client.hello("renamed")
    assert again["client_id"] == info["client_id"]
    me = [c for c in client.clients() if c["client"] == info["client_id"]]
    assert me and me[0]["name"] == "renamed"


def test_default_socket_rules(monkeypatch, tmp_path):
    monkeypatch.setenv("EVD_SOCKET", "/x/y.sock")
    assert evd.default_socket_path() == "/x/y.sock"
    monkeypatch.delenv("EVD_SOCKET")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert evd.default_socket_path() == "/run/evd/evd.sock"
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert evd.default_socket_path() == str(tmp_path / "evd" / "evd.sock")


def test_connect_uses_evd_socket(daemon, monkeypatch):
    monkeypatch.setenv("EVD_SOCKET", daemon.socket)
    with evd.connect() as c:
        assert c.path == daemon.socket
        assert c.ping() == {}


def test_not_running(tmp_path):
    with pytest.raises(evd.DaemonNotRunning) as e:
        evd.Client(str(tmp_path / "nothing.sock"))
    assert e.value.path.endswith("nothing.sock")
    assert isinstance(e.value, ConnectionError)


def test_inspection_methods(client, pipe):
    w = client.watch(pipe[0], "in", tag="t")
    t = client.timer(3600, tag=7)
    status = client.status()
    assert status["watches"] >= 1 and status["timers"] >= 1 and status["pid"] > 0
    assert client.ping() == {}
    stats = client.stats()
    assert stats["engine"]["backend"] == client.server_info["backend"]
    assert stats["daemon"]["requests"] >= 4
    [lw] = client.watches()
    assert lw["watch"] == w.id and lw["tag"] == "t" and lw["fd_type"] == "pipe"
    [lt] = client.timers()
    assert lt["timer"] == t.id and lt["tag"] == 7 and lt["clock"] == "monotonic"
    assert 3500 < lt["next"] <= 3600  # never above `after` (PROTOCOL.md: timers)
    assert any(c["client"] == client.server_info["client_id"] for c in client.clients())


def test_listings_page(client):
    fds = [os.pipe() for _ in range(5)]
    try:
        watches = [client.watch(r, "in") for r, _ in fds]
        page = client.watches_page(limit=2)
        assert page["total"] == 5 and len(page["watches"]) == 2 and page["next"] == 2
        page = client.watches_page(offset=4, limit=2)
        assert len(page["watches"]) == 1 and page["next"] is None
        # The whole listing follows "next" over as many pages as it takes.
        assert sorted(x["watch"] for x in client.watches()) == sorted(w.id for w in watches)
        assert client.timers_page()["total"] == 0
        assert client.clients_page(limit=1)["total"] >= 1
    finally:
        for r, w in fds:
            os.close(r)
            os.close(w)


def test_oneshot_fires_once_per_arm(client, pipe):
    r, w = pipe
    watch = client.watch(r, evd.IN, evd.ONESHOT, tag={"k": [1, 2]})
    assert watch.armed and watch.mode is evd.Mode.ONESHOT
    os.write(w, b"x")
    ev = watch.wait(TIMEOUT)
    assert isinstance(ev, evd.Ready) and ev.watch is watch
    assert ev.events == evd.IN and ev.count == 1 and ev.tag == {"k": [1, 2]}
    assert not watch.armed
    # Still readable, but disarmed: nothing until arm().
    client.ping()
    assert watch.wait(0.2) is None
    watch.arm()
    assert watch.wait(TIMEOUT).events & evd.IN


def test_edge_reports_new_readiness(client, pipe):
    r, w = pipe
    watch = client.watch(r, ["in"], evd.EDGE)
    os.write(w, b"a")
    assert watch.wait(TIMEOUT).events == evd.IN
    # Level-ready but no new edge: no event.
    assert watch.wait(0.2) is None
    os.write(w, b"b")
    ev = watch.wait(TIMEOUT)
    assert ev.events == evd.IN and ev.count >= 1
    with pytest.raises(evd.InvalidParams):
        watch.arm()  # arm on an edge watch is an error (PROTOCOL.md)


def test_modify_events_and_mode(client, pipe):
    r, w = pipe
    watch = client.watch(w, "in", evd.ONESHOT)
    assert watch.wait(0.2) is None  # a pipe's write end is never readable
    watch.modify(events=evd.OUT)
    assert watch.events == evd.OUT
    assert watch.wait(TIMEOUT).events & evd.OUT
    watch.modify(mode=evd.EDGE)
    assert watch.mode is evd.Mode.EDGE
    [listed] = client.watches()
    assert listed["events"] == ["out"] and listed["mode"] == "edge"
    with pytest.raises(ValueError):
        watch.modify()
    with pytest.raises(ValueError):
        watch.modify(events=["bogus"])


def test_hup_rdhup_pri(client):
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:
        watch = client.watch(a, evd.IN | evd.RDHUP, evd.ONESHOT)
        b.shutdown(socket.SHUT_WR)
        ev = watch.wait(TIMEOUT)
        assert ev.events & evd.RDHUP
    r, w = os.pipe()
    watch = client.watch(r, "in")
    os.close(w)
    assert watch.wait(TIMEOUT).events & evd.HUP
    os.close(r)
    # Out-of-band data: "pri".
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    out = socket.create_connection(lsock.getsockname())
    inn, _ = lsock.accept()
    with lsock, out, inn:
        watch = client.watch(inn, "pri")
        out.send(b"!", socket.MSG_OOB)
        assert watch.wait(TIMEOUT).events & evd.PRI


def test_unwatch_stops_events(client, pipe):
    r, w = pipe
    watch = client.watch(r, "in", evd.EDGE)
    os.write(w, b"x")
    # The event may be read (during ping) but not yet delivered: unwatch drops it.
    client.ping()
    watch.unwatch()
    assert not watch.active and watch.id is None
    os.write(w, b"y")
    client.ping()
    assert client.next_event(0.2) is None
    assert client.watches() == []
    watch.unwatch()  # twice is fine
    with pytest.raises(evd.NoSuchWatch):
        watch.arm()


def test_timers_after_interval_at_cancel(client):
    t = client.after(0.01, tag="once")
    ev = t.wait(TIMEOUT)
    assert isinstance(ev, evd.TimerExpired) and ev.timer is t
    assert ev.expirations == 1 and ev.late >= 0 and ev.tag == "once"
    assert not t.active and t.wait(0) is None
    t.cancel()  # finished: cancelled again without error

    rep = client.every(0.01)
    total = 0
    for ev in rep:
        total += ev.expirations
        if total >= 3:
            break
    rep.cancel()
    client.ping()
    assert rep.wait(0.1) is None
    assert client.timers() == []

    at = client.at(time.time() + 0.01, tag="wall")
    [listed] = client.timers()
    assert listed["clock"] == "realtime"
    assert at.wait(TIMEOUT).tag == "wall"

    with pytest.raises(ValueError):
        client.timer()
    with pytest.raises(ValueError):
        client.timer(1, at=time.time())
    with pytest.raises(evd.InvalidParams) as e:
        client.timer(1, interval=0.0001)
    assert e.value.param == "interval"


def test_daemon_errors_carry_code_message_data(client):
    with pytest.raises(evd.MethodNotFound) as e:
        client.call("no-such-method")
    assert e.value.code == -32601 and e.value.message == "Method not found"
    with pytest.raises(evd.InvalidParams) as e:
        client.call("watch", {"fd": 0, "events": ["bogus"], "mode": "edge"}, fds=[0])
    assert e.value.code == -32602 and e.value.param == "events" and e.value.why
    with pytest.raises(evd.NoSuchWatch):
        client.call("unwatch", {"watch": 123456})
    with pytest.raises(evd.NoSuchTimer):
        client.call("cancel", {"timer": 123456})
    with pytest.raises(evd.BadFileDescriptor):
        client.call("watch", {"fd": 3, "events": ["in"], "mode": "edge"})
    with open("/dev/null") as f:
        with pytest.raises(evd.BadFileDescriptor):
            client.watch(f, "in")
    with open(__file__) as f:
        with pytest.raises(evd.InvalidParams):
            client.watch(f, "in")  # a regular file
    with pytest.raises(evd.InvalidParams) as e:
        client.call("timer", {"after": 1, "tag": "x" * 2000})
    assert e.value.param == "tag"
    assert isinstance(e.value, evd.DaemonError) and isinstance(e.value, evd.EvdError)
    # Local checks before anything is sent.
    with pytest.raises(evd.MessageTooLarge):
        client.call("ping", {"pad": "x" * 70000})
    with pytest.raises(ValueError):
        client.watch(0, [])
    assert client.ping() == {}  # the connection survived all of it


def test_callbacks_run_at_dispatch_not_inside_calls(client, pipe):
    r, w = pipe
    seen = []
    watch = client.watch(r, "in", evd.EDGE, callback=seen.append)
    os.write(w, b"x")
    wait_until(lambda: client.status() and client.watches()[0]["count"] >= 1, what="wakeup")
    client.ping()  # the ready has been read by now, or will be by dispatch
    assert seen == []
    wait_until(lambda: client.dispatch(0.05) or seen, what="callback")
    assert seen[0].watch is watch
    assert client.next_event(0) is None  # callbacks take their events


def test_run_and_stop(client):
    hits = []

    def tick(ev):
        hits.append(ev.expirations)
        if sum(hits) >= 3:
            client.stop()

    client.every(0.01, callback=tick)
    client.run(TIMEOUT)
    assert sum(hits) >= 3


def test_on_notification_and_iterator(daemon, pipe):
    got = []
    with daemon.client(on_notification=got.append) as c:
        t = c.after(0)
        wait_until(lambda: c.dispatch(0.05) or got, what="notification")
        assert got[0].timer is t
    with daemon.client() as c:
        t1 = c.after(0, tag=1)
        t2 = c.after(0, tag=2)
        tags = sorted(ev.tag for ev in c.events(timeout=0.5))
        assert tags == [1, 2] and not t1.active and not t2.active


def test_timeout_undoes_creation(daemon, pipe):
    with daemon.client() as c:
        daemon.pause()
        try:
            with pytest.raises(evd.Timeout):
                c.watch(pipe[0], "in", timeout=0.3)
        finally:
            daemon.resume()
        # The daemon made the watch after all; the client removes it again.
        assert c.ping() == {}
        wait_until(lambda: c.watches() == [], what="abandoned watch removed")
        assert isinstance(evd.Timeout("x"), TimeoutError)


def test_wait_readable_writable_pid(client, pipe):
    r, w = pipe
    assert client.wait_writable(w, TIMEOUT) & evd.OUT
    with pytest.raises(TimeoutError):
        client.wait_readable(r, 0.1)
    os.write(w, b"x")
    assert client.wait_readable(r, TIMEOUT) == evd.IN
    proc = __import__("subprocess").Popen(["cat"], stdin=__import__("subprocess").PIPE)
    with pytest.raises(TimeoutError):
        client.wait_pid(proc.pid, 0.1)
    proc.stdin.close()
    client.wait_pid(proc.pid, TIMEOUT)
    # Exited (a zombie until reaped: wait_pid does not reap).
    assert os.waitpid(proc.pid, os.WNOHANG)[0] == proc.pid
    assert client.watches() == []


def test_notify_and_monitor(daemon):
    with daemon.client() as mon, daemon.client(name="watched") as c:
        assert mon.server_info["admin"]  # the test runs as the daemon's uid
        mon.monitor()
        c.notify("timer", {"after": 0, "tag": "n"})  # no reply, still executed
        ev = wait_until(lambda: mon.next_event(0.05), what="monitor copy")
        assert isinstance(ev, evd.Notification) and ev.method == "monitor"
        assert ev.params["message"]["method"] == "timer"
        assert ev.params["name"] == "watched"


def test_closed_client(daemon):
    c = daemon.client()
    c.close()
    with pytest.raises(evd.NotConnected):
        c.ping()
    c.close()


def test_json_roundtrip_of_tags(client):
    tag = {"s": "é✓", "n": 12, "l": [None, True]}
    t = client.after(0, tag=tag)
    assert t.wait(TIMEOUT).tag == tag
    assert json.dumps(tag)
