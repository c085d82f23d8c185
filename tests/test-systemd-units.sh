#!/bin/bash
# test-systemd-units.sh - the installed units: systemd-analyze verify (system and user
# manager) must print nothing, and the system service must rate SAFE in
# `systemd-analyze security --offline=true`.
#
# Usage: test-systemd-units.sh BUILD_DIR
# ($MESON, $SYSTEMD_ANALYZE, $EVD_TEST_DAEMON: from meson.) The units are installed with
# `meson install --destdir --tags systemd` into a private temporary directory; the built
# daemon is copied to where ExecStart= says (verify checks that it is executable), so the
# test does not depend on every other target of the tree being installable.
set -euo pipefail

# Under `meson test --setup valgrind` the wrapped program is this shell, which is not what
# that setup checks (and the programs it starts are not traced): go on without valgrind.
if [[ ${LD_PRELOAD:-} == *vgpreload* ]]; then
        exec env -u LD_PRELOAD bash "$0" "$@"
fi

BUILD=${1:?usage: $0 BUILD_DIR}
MESON=${MESON:-$(command -v meson || true)}
ANALYZE=${SYSTEMD_ANALYZE:-$(command -v systemd-analyze || true)}
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
[ -n "$MESON" ] || skip "meson not found"
[ -n "$ANALYZE" ] || skip "systemd-analyze not found"
[ -x "${EVD_TEST_DAEMON:-}" ] || fail "EVD_TEST_DAEMON is not set"

W=$(mktemp -d "${TMPDIR:-/tmp}/evd-units.XXXXXX")
trap 'rm -rf "$W"' EXIT
DEST=$W/dest

# --no-rebuild: meson test already built what it needs, and tests run in parallel.
"$MESON" install -C "$BUILD" --no-rebuild --quiet --destdir "$DEST" --tags systemd \
        >"$W"/install.log 2>&1 ||
        { cat "$W"/install.log; fail "meson install failed"; }
system_service=$(find "$DEST" -path '*/systemd/system/evd.service')
system_socket=$(find "$DEST" -path '*/systemd/system/evd.socket')
user_service=$(find "$DEST" -path '*/systemd/user/evd.service')
user_socket=$(find "$DEST" -path '*/systemd/user/evd.socket')
for f in "$system_service" "$system_socket" "$user_service" "$user_socket"; do
        [ -n "$f" ] && [ -f "$f" ] || { find "$DEST"; fail "a unit was not installed"; }
done
echo "installed: ${system_service#$DEST} ${system_socket#$DEST}" \
        "${user_service#$DEST} ${user_socket#$DEST}"

# ExecStart= names the daemon at its installed path (sbindir).
exec_start=$(sed -n 's/^ExecStart=//p' "$system_service")
[ "$(sed -n 's/^ExecStart=//p' "$user_service")" = "$exec_start" ] ||
        fail "system and user ExecStart= differ"
case $exec_start in "/"*"/sbin/evd --fd-store=yes") ;; *) fail "ExecStart=$exec_start is not sbindir/evd --fd-store=yes" ;; esac
# The fd store that --fd-store hands the clients to on a restart.
for unit in "$system_service" "$user_service"; do
        grep -x 'FileDescriptorStoreMax=[3-9]' "$unit" >/dev/null ||
                fail "${unit##*/}: no FileDescriptorStoreMax= for --fd-store"
done
grep -qE '@[A-Za-z_]+@' "$system_service" "$user_service" &&
        fail "unsubstituted @...@ left in a unit"
install -D -m 755 "$EVD_TEST_DAEMON" "$DEST${exec_start%% *}"
# The rest of the operating system, as far as the units use it: ExecReload= runs kill(1).
kill_bin=$(command -v kill 2>/dev/null | grep / || true)
[ -z "$kill_bin" ] && [ -x /bin/kill ] && kill_bin=/bin/kill
[ -n "$kill_bin" ] || skip "no kill(1) binary to put into the test root"
install -D -m 755 "$kill_bin" "$DEST/usr/bin/kill"

# verify exits 0 on warnings (unknown keys, bad values): any output is a failure.
# --root: unit paths and ExecStart= are looked up in the installed tree.
check_quiet() {
        local what=$1; shift
        echo "\$ $*"
        if ! "$@" >"$W"/out.txt 2>&1 || [ -s "$W"/out.txt ]; then
                cat "$W"/out.txt
                fail "systemd-analyze verify complained about the $what units"
        fi
}
check_quiet system "$ANALYZE" verify --man=no --recursive-errors=no --root="$DEST" \
        "${system_socket#$DEST}" "${system_service#$DEST}"
# User mode has no --root (systemd 252), so ExecStart= would be looked up on this host:
# verify copies of the user units whose ExecStart= points into the test root instead (the
# path itself was checked above: the same as the system unit's, verified with --root).
mkdir -m 700 "$W"/xdg "$W"/user
sed "s|^ExecStart=$exec_start|ExecStart=$DEST$exec_start|" "$user_service" >"$W"/user/evd.service
cp "$user_socket" "$W"/user/evd.socket
check_quiet user env XDG_RUNTIME_DIR="$W"/xdg XDG_CONFIG_HOME="$W"/config HOME="$W" \
        "$ANALYZE" verify --user --man=no --recursive-errors=no \
        "$W"/user/evd.socket "$W"/user/evd.service

# Sandbox rating of the system service.
"$ANALYZE" security --offline=true --no-pager "$system_service" >"$W"/security.txt 2>&1 || true
line=$(grep 'Overall exposure level' "$W"/security.txt || true)
echo "$line"
[ -n "$line" ] || { cat "$W"/security.txt; fail "no rating from systemd-analyze security"; }
score=$(echo "$line" | sed -n 's/.*: \([0-9][0-9.]*\) \([A-Z]*\).*/\1/p')
rating=$(echo "$line" | sed -n 's/.*: \([0-9][0-9.]*\) \([A-Z]*\).*/\2/p')
[ "$rating" = SAFE ] || { cat "$W"/security.txt; fail "rated $rating, not SAFE"; }
awk -v s="$score" 'BEGIN { exit !(s < 1.0) }' || fail "exposure $score is not below 1.0"
echo "PASS"
