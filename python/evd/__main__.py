"""``python -m evd [--socket PATH] [status|ping|stats|clients|watches|timers]``:
print a method's result as JSON (default: ``status``). Exits 3 when evd is not
running, like evctl, and 1 on a daemon error."""

from __future__ import annotations

import argparse
import json
import sys

from . import Client, DaemonError, DaemonNotRunning, EvdConnectionError

_METHODS = ("status", "ping", "stats", "clients", "watches", "timers")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evd", description=__doc__.split("\n")[0])
    parser.add_argument("--socket", help="the daemon's socket (default: as libevd)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait (10)")
    parser.add_argument("method", nargs="?", default="status", choices=_METHODS)
    args = parser.parse_args(argv)
    try:
        with Client(args.socket, name="python -m evd", timeout=args.timeout) as client:
            result = getattr(client, args.method)()
    except DaemonNotRunning as exc:
        print(f"python -m evd: {exc}", file=sys.stderr)
        return 3
    except (DaemonError, EvdConnectionError) as exc:
        print(f"python -m evd: {exc}", file=sys.stderr)
        return 1
    json.dump(result, sys.stdout, indent=2, ensure_ascii=False)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
