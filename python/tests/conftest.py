"""Fixtures: a real evd in a private directory, per test.

The daemon is ``$EVD_TEST_DAEMON`` with ``--backend $EVD_TEST_BACKEND``, as in
tests/util-daemon.c. Waiting is always bounded and driven by what can be
observed (a connect that succeeds, a process that exits), never by sleeping
for a guessed time: the suite also runs under ASan on a shared machine.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import evd  # noqa: E402

#: Seconds any single wait in a test may take before the test fails.
TIMEOUT = 20.0


def wait_until(predicate, timeout: float = TIMEOUT, what: str = "condition", step: float = 0.005):
    """Poll *predicate* until true; fail the test after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(step)


class Daemon:
    """One evd process on ``self.socket``; restartable on the same path."""

    def __init__(self, directory: str, args: list[str]):
        self.dir = directory
        self.socket = os.path.join(directory, "evd.sock")
        self.log = os.path.join(directory, "evd.log")
        self.args = list(args)
        self.proc: subprocess.Popen | None = None
        self.binary = os.environ.get("EVD_TEST_DAEMON")
        if not self.binary:
            pytest.fail("EVD_TEST_DAEMON is not set (run through meson test, or set it)")

    def start(self, args: list[str] | None = None) -> "Daemon":
        cmd = [self.binary, "--socket", self.socket, "--log-level", "debug"]
        backend = os.environ.get("EVD_TEST_BACKEND")
        if backend:
            cmd += ["--backend", backend]
        cmd += self.args if args is None else args
        env = {k: v for k, v in os.environ.items()
               if k not in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID")}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         env=env)
        deadline = time.monotonic() + TIMEOUT
        while True:
            # Answered, by this process: a connect alone could reach a listener
            # of the previous one that the kernel has not released yet.
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                probe.settimeout(0.5)
                probe.connect(self.socket)
                probe.send(b'{"jsonrpc":"2.0","id":1,"method":"status"}')
                if json.loads(probe.recv(65536))["result"]["pid"] == self.proc.pid:
                    break
            except (OSError, ValueError, KeyError):
                pass
            finally:
                probe.close()
            if self.proc.poll() is not None:
                pytest.fail(f"evd exited during start-up:\n{self.read_log()}")
            if time.monotonic() > deadline:
                pytest.fail("evd did not start listening")
            time.sleep(0.005)
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def pause(self) -> None:
        """SIGSTOP, and wait until it has taken effect (kill() returns before)."""
        self.proc.send_signal(signal.SIGSTOP)

        def stopped():
            with open(f"/proc/{self.proc.pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] in ("T", "t")

        wait_until(stopped, what="evd to stop")

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> int:
        """SIGTERM and wait; the exit status."""
        if self.proc is None:
            return 0
        # SIGCONT first, in case a test stopped it; never after SIGTERM: a SIGCONT
        # that lands while an ASan evd is exiting flushes the SIGSTOP with which
        # LeakSanitizer's tracer stops it, and evd then spins for ever waiting for it.
        self.proc.send_signal(signal.SIGCONT)
        self.proc.send_signal(signal.SIGTERM)
        try:
            status = self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            where = self._where()
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"evd did not exit after SIGTERM\n{where}\n--- its log:\n{self.read_log()[-6000:]}")
        self.proc = None
        self._wait_released()
        return status

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()  # SIGKILL ends a stopped process too
            self.proc.wait()
            self.proc = None
            self._wait_released()

    def _wait_released(self) -> None:
        """Wait until the kernel has let go of the old listener. With io_uring
        it does so after the process is gone (the ring is torn down by a kernel
        worker); until then a client's connect() succeeds and is reset, which
        would blur what a test sees (a new evd tells the two apart and starts:
        tests/test-hostile-socket.c)."""
        def released():
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                probe.connect(self.socket)
                return False
            except OSError:
                return True
            finally:
                probe.close()

        wait_until(released, what="the old listener to be released")

    def _where(self) -> str:
        """Where a stuck evd is: its signal state, kernel stack and threads' backtraces."""
        pid = self.proc.pid
        out = []
        for name in ("status", "wchan", "syscall", "stack"):
            try:
                with open(f"/proc/{pid}/{name}") as f:
                    text = f.read()
            except OSError as exc:
                text = f"({exc})"
            if name == "status":
                text = "".join(l for l in text.splitlines(True)
                               if l.startswith(("State", "Sig", "Shd", "Threads")))
            out.append(f"--- /proc/{pid}/{name}:\n{text}")
        gdb = shutil.which("gdb")
        if gdb:
            bt = subprocess.run([gdb, "-p", str(pid), "-batch", "-ex", "thread apply all bt"],
                                capture_output=True, text=True, timeout=60)
            out.append("--- gdb:\n" + bt.stdout[-6000:])
        return "\n".join(out)

    def restart(self) -> None:
        self.stop()
        self.start()

    def read_log(self) -> str:
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def client(self, **kw) -> evd.Client:
        kw.setdefault("timeout", TIMEOUT)
        return evd.Client(self.socket, **kw)

    async def aclient(self, **kw) -> evd.AsyncClient:
        kw.setdefault("timeout", TIMEOUT)
        return await evd.AsyncClient.connect(self.socket, **kw)


@pytest.fixture
def make_daemon():
    """A factory: ``make_daemon(*args)`` starts an evd with extra arguments."""
    made = []

    def make(*args: str) -> Daemon:
        d = Daemon(tempfile.mkdtemp(prefix="evd-py-"), list(args))
        made.append(d)
        return d.start()

    yield make
    for d in made:
        d.kill()
        shutil.rmtree(d.dir, ignore_errors=True)


@pytest.fixture
def daemon(make_daemon) -> Daemon:
    """An evd with the default settings."""
    return make_daemon()


@pytest.fixture
def client(daemon):
    """A blocking client of ``daemon``, closed after the test."""
    c = daemon.client(name="pytest")
    yield c
    c.close()


@pytest.fixture
def pipe():
    """A pipe (read end, write end), closed after the test if still open."""
    r, w = os.pipe()
    yield r, w
    for fd in (r, w):
        try:
            os.close(fd)
        except OSError:
            pass
