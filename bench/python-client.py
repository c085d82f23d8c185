#!/usr/bin/python3
"""python-client.py - evd-bench scenario 6, the Python side (bench/evd-bench-python.c).

The same workload as the bench's libevd client, with python/evd's blocking Client:
latency (write the monotonic time into a pipe watched in edge mode, read the clock in
the callback, one sample at a time) and throughput (N pipes with one byte each, every
callback reads it and writes it back, for --duration seconds). Then a shorter throughput
pass under cProfile: where the time goes. Prints one JSON line on stdout.
"""

import argparse
import cProfile
import json
import os
import pstats
import resource
import struct
import time

import evd


def cpu_s():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def percentile(samples, q):
    s = sorted(samples)
    return s[min(len(s) - 1, max(0, int(round(q * len(s) + 0.5)) - 1))]


def latency(client, n):
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    samples = []

    def ready(event):
        now = time.monotonic_ns()
        try:
            data = os.read(r, 4096)
        except BlockingIOError:
            return
        for (sent,) in struct.iter_unpack("=Q", data[: len(data) - len(data) % 8]):
            if len(samples) < n:
                samples.append((now - sent) / 1000)
        if len(samples) < n:
            os.write(w, struct.pack("=Q", time.monotonic_ns()))
        else:
            client.stop()

    watch = client.watch(r, "in", evd.EDGE, callback=ready)
    os.write(w, struct.pack("=Q", time.monotonic_ns()))
    client.run(timeout=60)
    watch.unwatch()
    os.close(r)
    os.close(w)
    return samples


def throughput(client, pipes, seconds):
    count = [0]
    ends = []

    def make(r, w):
        def ready(event):
            try:
                os.read(r, 1)
            except BlockingIOError:
                return
            count[0] += 1
            os.write(w, b"x")
        return ready

    watches = []
    for _ in range(pipes):
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        ends.append((r, w))
        watches.append(client.watch(r, "in", evd.EDGE, callback=make(r, w)))
    for _, w in ends:
        os.write(w, b"x")
    t0, c0 = time.monotonic(), cpu_s()
    client.run(timeout=seconds)
    secs, cpu = time.monotonic() - t0, cpu_s() - c0
    n = count[0]
    for watch in watches:
        watch.unwatch()
    for r, w in ends:
        os.close(r)
        os.close(w)
    return n, secs, cpu


def category(func):
    """Group cProfile's functions into what a reader can act on."""
    filename, _, name = func
    if "recvmsg" in name or "recv" in name:
        return "socket receive (recvmsg)"
    if "sendmsg" in name or name in ("send", "sendall"):
        return "socket send"
    if name in ("loads", "decode", "raw_decode") or "json" in filename:
        return "JSON decode/encode"
    if name in ("poll", "select"):
        return "waiting (poll)"
    if "bench/python-client.py" in filename:
        return "the program's callbacks (read + write)"
    if name in ("read", "write"):
        return "the program's callbacks (read + write)"
    if "/evd/" in filename:
        return "python/evd itself (" + os.path.basename(filename) + ")"
    return "other"


def profile(client, pipes, seconds):
    prof = cProfile.Profile()
    prof.enable()
    throughput(client, pipes, seconds)
    prof.disable()
    stats = pstats.Stats(prof)
    shares = {}
    for func, (_, _, tottime, _, _) in stats.stats.items():
        shares[category(func)] = shares.get(category(func), 0.0) + tottime
    total = sum(shares.values()) or 1.0
    return [{"what": k, "share": v / total} for k, v in sorted(shares.items(), key=lambda kv: -kv[1])][:10]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--duration", type=float, default=2.0)
    ap.add_argument("--watches", type=int, default=64)
    args = ap.parse_args()

    with evd.Client(args.socket, name="evd-bench-python") as client:
        samples = latency(client, args.samples)
        n, secs, cpu = throughput(client, args.watches, args.duration)
        prof = profile(client, args.watches, min(args.duration, 1.0))
    print(json.dumps({"lat_p50_us": percentile(samples, 0.50), "lat_p99_us": percentile(samples, 0.99),
                      "notifications": n, "seconds": secs, "cpu_s": cpu, "profile": prof}))


if __name__ == "__main__":
    main()
