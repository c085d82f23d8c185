#!/bin/sh
# test-readme-tour.sh SRCDIR - README.md's "A five-minute tour", run as written.
#
# The commands are taken from README.md itself (the first sh block after the heading),
# never from a copy, so the tour cannot drift from what the README says. The only change:
# /tmp/ becomes a private temporary directory (the socket, the fifo). It runs in its own
# process group so that whatever it leaves behind on failure (the evd it starts) is
# killed. Passes if every line succeeds and the output shows what the comments promise.
set -eu
src=$(cd "$1" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/evd-tour-XXXXXX")
group=
cleanup() {
    [ -n "$group" ] && kill -KILL -- "-$group" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
fail() {
    echo "not ok: $*" >&2
    echo "--- the tour as run:" >&2
    cat "$tmp/tour.sh" >&2
    echo "--- its output:" >&2
    cat "$tmp/out" >&2
    exit 1
}

awk '/^## A five-minute tour/ { heading = 1 }
     heading && /^```sh/ { inside = 1; next }
     inside && /^```/ { exit }
     inside' "$src/README.md" | sed "s|/tmp/|$tmp/|g" >"$tmp/tour.sh"
[ -s "$tmp/tour.sh" ] || { echo "not ok: no tour found in README.md" >&2; exit 1; }
grep -q "$tmp/evd.sock" "$tmp/tour.sh" || { echo "not ok: the tour no longer uses /tmp/evd.sock" >&2; exit 1; }

cd "$src"
env -u EVD_SOCKET setsid sh -eu "$tmp/tour.sh" >"$tmp/out" 2>&1 </dev/null &
group=$!
status=0
wait "$group" || status=$?
[ "$status" -eq 0 ] || fail "the tour exited $status"
grep -q "^evd .*(protocol" "$tmp/out" || fail "no status block from evctl status"
grep -q "^3 in$" "$tmp/out" || fail "evctl wait did not print \"3 in\""
grep -q '^{' "$tmp/out" || fail "no JSON from evctl --json watches"
[ ! -e "$tmp/evd.sock" ] || fail "evd left its socket behind after SIGTERM"
echo "ok: the README tour ran as written ($(grep -c . "$tmp/tour.sh") lines)"
