"""The asyncio client: same daemon, no threads, the loop never blocked."""

import asyncio
import logging
import os
import signal
import subprocess
import time

import pytest

import evd
from conftest import TIMEOUT


def run(coro):
    async def bounded():
        return await asyncio.wait_for(coro, TIMEOUT * 3)
    return asyncio.run(bounded())


def test_watch_iterate_modify_unwatch(daemon, pipe):
    r, w = pipe

    async def main():
        async with await daemon.aclient(name="aio") as c:
            assert c.server_info["server"] == "evd" and c.connected
            watch = await c.watch(r, evd.IN, evd.EDGE, tag="p")
            os.write(w, b"x")
            async for ev in watch:
                assert isinstance(ev, evd.Ready) and ev.watch is watch and ev.tag == "p"
                break
            await watch.modify(mode=evd.ONESHOT)
            [listed] = await c.watches()
            assert listed["mode"] == "oneshot"
            # Switching to oneshot leaves it armed: the readable pipe fires once.
            assert (await watch.wait(TIMEOUT)).events & evd.IN
            assert not watch.armed
            await c.ping()
            assert await watch.wait(0.1) is None  # disarmed
            await watch.arm()
            assert (await watch.wait(TIMEOUT)).events & evd.IN
            await watch.unwatch()
            assert await c.watches() == [] and not watch.active
            async for _ in watch:  # an ended watch's iteration ends at once
                pytest.fail("event after unwatch")
    run(main())


def test_timers_callbacks_and_client_events(daemon):
    async def main():
        c = await daemon.aclient()
        seen = asyncio.Event()
        got = []

        async def on_timer(ev):  # a coroutine callback runs as a task
            got.append(ev)
            seen.set()

        await c.after(0, callback=on_timer)
        await asyncio.wait_for(seen.wait(), TIMEOUT)
        assert got[0].expirations == 1
        t = await c.every(0.01, tag="rep")
        n = 0
        async for ev in c.events():
            assert ev.timer is t
            n += ev.expirations
            if n >= 3:
                break
        await t.cancel()
        at = await c.at(time.time() + 0.01, tag="wall")
        assert (await at.wait(TIMEOUT)).tag == "wall"
        assert await c.next_event(0.05) is None
        await c.close()
        with pytest.raises(evd.NotConnected):
            await c.ping()
    run(main())


def test_errors_and_batches(daemon, pipe):
    async def main():
        async with await daemon.aclient() as c:
            with pytest.raises(evd.InvalidParams) as e:
                await c.call("watches", {"limit": 0})
            assert e.value.param == "limit"
            with pytest.raises(evd.NoSuchTimer):
                await c.call("cancel", {"timer": 424242})
            b = c.batch()
            b.watch(pipe[0], "in")
            b.timer(3600)
            b.status()
            b.call("bogus")
            watch, timer, status, bad = await b.send()
            assert isinstance(watch, evd.Watch) and isinstance(timer, evd.Timer)
            assert status["watches"] == 1 and status["timers"] == 1
            assert isinstance(bad, evd.MethodNotFound)
            assert (await c.stats())["daemon"]["requests"] >= 5
            assert len(await c.clients()) >= 1 and (await c.timers())[0]["timer"] == timer.id
    run(main())


def test_loop_is_never_blocked(daemon, pipe, caplog):
    r, w = pipe

    async def main():
        loop = asyncio.get_running_loop()
        loop.set_debug(True)
        loop.slow_callback_duration = 0.05
        c = await daemon.aclient()
        ticks = 0
        stop = asyncio.Event()

        async def ticker():
            nonlocal ticks
            while not stop.is_set():
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        # Everything here waits on the daemon; none of it may hold the loop.
        watch = await c.watch(r, "in")
        timer = await c.after(0.5)
        assert (await timer.wait(TIMEOUT)).expirations == 1
        assert ticks >= 5, ticks  # ~50 expected; 0 if the client blocked the loop
        before = ticks
        writer = loop.call_later(0.2, os.write, w, b"x")
        assert await watch.wait(TIMEOUT)
        assert ticks > before
        writer.cancel()
        with pytest.raises(TimeoutError):
            await c.wait_readable(w, timeout=0.2)  # a write end: never readable
        stop.set()
        await task
        await c.close()

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        run(main())
    slow = [rec.getMessage() for rec in caplog.records if "took" in rec.getMessage()]
    assert not slow, slow


def test_wait_readable_and_wait_pid_module_level(daemon, pipe, monkeypatch):
    monkeypatch.setenv("EVD_SOCKET", daemon.socket)
    r, w = pipe

    async def main():
        loop = asyncio.get_running_loop()
        loop.call_soon(os.write, w, b"x")
        assert await evd.wait_readable(r, timeout=TIMEOUT) == evd.IN
        with pytest.raises(TimeoutError):
            await evd.wait_writable(r, timeout=0.1)
        proc = subprocess.Popen(["cat"], stdin=subprocess.PIPE)
        waiter = asyncio.create_task(evd.wait_pid(proc.pid, timeout=TIMEOUT))
        await asyncio.sleep(0)
        assert not waiter.done()
        proc.stdin.close()
        await waiter
        assert proc.wait(TIMEOUT) == 0
    run(main())


def test_pending_call_fails_when_daemon_dies(daemon):
    async def main():
        c = await daemon.aclient()
        daemon.pause()
        call = asyncio.create_task(c.ping())
        await asyncio.sleep(0)  # sent
        daemon.kill()
        with pytest.raises(evd.ConnectionLost):
            await call
        with pytest.raises(evd.NotConnected):
            await c.ping()
        await c.close()
    run(main())


def test_timeout_and_cancellation_undo_creation(daemon, pipe):
    async def main():
        c = await daemon.aclient()
        daemon.pause()
        try:
            with pytest.raises(evd.Timeout):
                await c.watch(pipe[0], "in", timeout=0.2)
            task = asyncio.create_task(c.timer(3600))
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            daemon.resume()
        assert await c.ping() == {}

        async def undone():
            while await c.watches() or await c.timers():
                await asyncio.sleep(0.01)
        await asyncio.wait_for(undone(), TIMEOUT)
        await c.close()
    run(main())


def test_shutdown_then_reconnect_and_reregister(daemon, pipe):
    r, w = pipe

    async def main():
        states = []
        restored = asyncio.Event()

        def on_connection(state, reason):
            states.append((state, reason))
            if state is evd.ConnectionState.RESTORED:
                restored.set()

        shutdowns = []
        c = await daemon.aclient(reconnect=True, on_connection=on_connection)
        watch = await c.watch(r, "in", evd.EDGE, tag="e")
        ticker = await c.every(0.05, tag="t")
        daemon.signal(signal.SIGTERM)
        shutdowns.append(await c.next_event(TIMEOUT))
        assert isinstance(shutdowns[0], evd.Shutdown)
        await asyncio.get_running_loop().run_in_executor(None, daemon.proc.wait, TIMEOUT)
        daemon.proc = None
        daemon._wait_released()
        daemon.start()
        await asyncio.wait_for(restored.wait(), TIMEOUT)
        (lost, why), (back, err) = states
        assert lost is evd.ConnectionState.LOST and isinstance(why, evd.DaemonShutdown)
        assert back is evd.ConnectionState.RESTORED and err is None
        assert {x["tag"] for x in await c.watches()} == {"e"}
        os.write(w, b"x")
        assert (await watch.wait(TIMEOUT)).tag == "e"
        assert (await ticker.wait(TIMEOUT)).tag == "t"
        await c.close()
    run(main())
