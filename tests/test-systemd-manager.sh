#!/bin/bash
# test-systemd-manager.sh - evd's units under real systemd service managers
#
# PID 1 need not be systemd. The test makes a private mount namespace whose /run is a
# fresh tmpfs with /run/systemd/system in it (else: "system has not been booted with
# systemd"), starts journald there, and runs two real user managers in it, each from a
# cgroup of its own (a manager adopts every process of its cgroup; the cleanup kills what
# is left in them and removes them):
#
# 1. `systemd --user` as root with XDG_RUNTIME_DIR=/run: %t/evd/evd.sock is
#    /run/evd/evd.sock and the notify socket /run/systemd/notify, as for the system
#    manager. It runs the system units (evd.socket, the sandboxed evd.service) and checks
#    socket activation and the socket's mode, READY (ActiveState), STATUS, fds of every
#    kind watched from inside the sandbox, a dynamic uid without capabilities that still
#    sees clients' real uids (root is admin, uid 65534 is not), the journal's EVD_CLIENT_*
#    fields, reload, a watchdog restart after debug-wedge, and a clean stop.
# 2. `systemd --user` as uid 65534 with XDG_RUNTIME_DIR=/run/user/65534, as a user's own
#    manager: the user units (evd-user.service.in as evd.service): activation, READY,
#    STATUS, fds, the seccomp sandbox, the journal, reload, a clean stop.
#
# Test drop-ins point ExecStart= at the built daemon (copied into /run: PrivateTmp= and
# ProtectHome= hide /tmp and /home, where builds live) and set WatchdogSec=1s,
# EVD_DEBUG=1, --log-level=debug. Env (from meson): EVD_TEST_DAEMON, EVD_TEST_CLIENT,
# EVD_TEST_SYSTEM_SERVICE, EVD_TEST_USER_SERVICE, EVD_TEST_SOCKET_UNIT. Needs root,
# util-linux (unshare, nsenter, setpriv) and systemd; exits 77 where they are missing.
# Takes about 15 s.
set -euo pipefail

# Under `meson test --setup valgrind` the wrapped program is this shell, which is not what
# that setup checks (and the programs it starts are not traced): go on without valgrind.
if [[ ${LD_PRELOAD:-} == *vgpreload* ]]; then
        exec env -u LD_PRELOAD bash "$0" "$@"
fi

skip() { echo "SKIP: $*"; exit 77; }
SYSTEMD=/lib/systemd/systemd
JOURNALD=/lib/systemd/systemd-journald
NOBODY=65534
[ "$(id -u)" = 0 ] || skip "needs root"
for cmd in unshare nsenter setpriv setsid timeout systemctl journalctl; do
        command -v "$cmd" >/dev/null || skip "$cmd not found"
done
[ -x "$SYSTEMD" ] && [ -x "$JOURNALD" ] || skip "systemd is not installed"
for v in EVD_TEST_DAEMON EVD_TEST_CLIENT EVD_TEST_SYSTEM_SERVICE EVD_TEST_USER_SERVICE \
        EVD_TEST_SOCKET_UNIT; do
        [ -e "${!v:-}" ] || { echo "FAIL: $v is not set"; exit 1; }
done

W=$(mktemp -d "${TMPDIR:-/tmp}/evd-sd-manager.XXXXXX")
chmod 755 "$W"
U=$W/root/config/systemd/user  # the root manager's units
UU=$W/user/config/systemd/user # the unprivileged manager's units
mkdir -p "$U" "$UU" "$W"/root/home "$W"/user/home
SOCK=/run/evd/evd.sock
USOCK=/run/user/$NOBODY/evd/evd.sock
MGR_PID=      # root manager; its mount namespace is the test's
USER_MGR_PID= # uid 65534's manager
CGDIRS=()
STEP=setup

# ---- helpers ------------------------------------------------------------------------------

log() { echo "[$(date +%T.%N | cut -c1-12)] $*"; }
in_ns() { timeout 20 nsenter --target "$MGR_PID" --mount -- "$@"; }
as_nobody() { in_ns setpriv --reuid="$NOBODY" --regid="$NOBODY" --clear-groups "$@"; }
sctl() { in_ns env XDG_RUNTIME_DIR=/run systemctl --user --no-pager "$@"; }
usctl() { as_nobody env XDG_RUNTIME_DIR=/run/user/$NOBODY systemctl --user --no-pager "$@"; }
jctl() { in_ns journalctl --no-pager "$@"; }
client() { in_ns /run/evd-test/client "$SOCK" "$@"; }
# CTL UNIT PROPERTY
prop() { "$1" show -P "$3" "$2"; }
prop_is() { [ "$(prop "$1" "$2" "$3")" = "$4" ]; }
manager_up() { [ "$("$1" show -P SystemState)" = running ]; }
proc_field() { awk -v f="$2:" '$1 == f { print $2 }' /proc/"$1"/status; }

# Poll for up to $1 seconds until the rest of the command line succeeds.
wait_for() {
        local tries=$(($1 * 10))
        shift
        for _ in $(seq "$tries"); do
                "$@" >/dev/null 2>&1 && return 0
                sleep 0.1
        done
        return 1
}

# (grep >/dev/null, not grep -q: an early exit would fail the writer with SIGPIPE, and
# with it the pipeline.)
journal_has() { jctl -o cat "$@" | grep . >/dev/null; }
journal_grep() { local pat=$1; shift; jctl -o cat "$@" | grep -F -- "$pat" >/dev/null; }
status_ok() { prop "$1" evd.service StatusText |
        grep -E '^[0-9]+ clients, [0-9]+ watches, [0-9]+ timers \((io_uring|epoll)\)$' >/dev/null; }

fail() {
        echo "FAIL ($STEP): $*"
        if [ -n "$MGR_PID" ] && kill -0 "$MGR_PID" 2>/dev/null; then
                echo "--- root manager"
                sctl status evd.socket evd.service 2>&1 | tail -25 || true
                if [ -n "$USER_MGR_PID" ]; then
                        echo "--- uid $NOBODY's manager"
                        usctl status evd.socket evd.service 2>&1 | tail -25 || true
                fi
                echo "--- journal (last 60)"
                jctl -o short-monotonic -n 60 2>&1 || true
        fi
        echo "--- output of the namespace's first process (last 20)"
        tail -20 "$W"/manager.out 2>/dev/null || true
        exit 1
}

stop_manager() { # PID CTL
        [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 0
        "$2" exit >/dev/null 2>&1
        for _ in $(seq 30); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
        kill -KILL "$1" 2>/dev/null
}

cleanup() {
        local rc=$?
        set +e
        stop_manager "$USER_MGR_PID" usctl
        stop_manager "$MGR_PID" sctl
        # Whatever is left in our cgroups goes (journald, stragglers); then the cgroups,
        # bottom-up. The mount namespace goes with its last process.
        for d in "${CGDIRS[@]}"; do
                for _ in $(seq 50); do
                        find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
                        [ -d "$d" ] || break
                        find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null |
                                xargs -r kill -KILL 2>/dev/null
                        sleep 0.1
                done
                [ -d "$d" ] && { echo "cleanup: cannot remove cgroup $d"; rc=1; }
        done
        rm -rf "$W"
        exit "$rc"
}
trap cleanup EXIT
# A meson timeout is a SIGTERM: say where it struck (stdout is all meson keeps).
trap 'echo "FAIL ($STEP): terminated at $(date +%T) (a timeout?)"; exit 1' INT TERM

# A cgroup of its own for a manager, in every hierarchy systemd uses: SUFFIX OWNER. The
# directories go to $NEW_CGROUPS (space-separated) and CGDIRS (for the cleanup).
make_cgroups() {
        local id ctrl path base d dirs=()
        while IFS=: read -r id ctrl path; do
                case "$id:$ctrl" in
                0:)
                        base=/sys/fs/cgroup
                        [ "$(stat -fc %T "$base")" = cgroup2fs ] || base=/sys/fs/cgroup/unified
                        ;;
                *:name=systemd) base=/sys/fs/cgroup/systemd ;;
                *) continue ;;
                esac
                [ -d "$base" ] || continue
                d=$base${path%/}/evd-test-manager-$$-${W##*.}-$1
                mkdir "$d" 2>/dev/null || skip "cannot create a cgroup under $base"
                CGDIRS+=("$d")
                chown -R "$2" "$d" # delegated, as systemd does for user@.service
                dirs+=("$d")
        done </proc/self/cgroup
        [ ${#dirs[@]} -gt 0 ] || skip "no cgroup hierarchy for systemd"
        NEW_CGROUPS="${dirs[*]}"
}

# ---- the units ----------------------------------------------------------------------------

# The managers start nothing by themselves (not even the host's sockets.target.wants).
for dir in "$U" "$UU"; do
        printf '[Unit]\nDescription=evd test: start nothing by default\n' >"$dir"/evd-test.target
done
install_units() { # DIR SERVICE_FILE EXTRA_SERVICE_SETTINGS
        cp "$EVD_TEST_SOCKET_UNIT" "$1"/evd.socket
        cp "$2" "$1"/evd.service
        mkdir -p "$1"/evd.service.d
        # In sanitizer builds, LeakSanitizer would need ptrace(), which the system call
        # filter denies.
        cat >"$1"/evd.service.d/test.conf <<EOF
[Service]
ExecStart=
ExecStart=/run/evd-test/evd --log-level=debug --fd-store=yes
Environment=EVD_DEBUG=1 ASAN_OPTIONS=detect_leaks=0
WatchdogSec=1s
RestartSec=100ms
LimitCORE=0
$3
EOF
}
# ExecStopPost= records how each run ended ("+": outside the sandbox).
record='echo "$$SERVICE_RESULT $$EXIT_CODE $$EXIT_STATUS" >>/run/evd-test/runs'
install_units "$U" "$EVD_TEST_SYSTEM_SERVICE" "ExecStopPost=+/bin/sh -c '$record'"
install_units "$UU" "$EVD_TEST_USER_SERVICE" ""
chown -R "$NOBODY:$NOBODY" "$W"/user

# The backend evd picks outside any sandbox: the sandboxed ones must pick the same (the
# system call filters must let io_uring through).
STEP=backend-probe
# Not under timeout(1): it follows its SIGTERM with a SIGCONT, which flushes the SIGSTOP
# that LeakSanitizer's exit-time tracer sends to stop the threads it scans, so an ASan evd
# then waits for its tracer for ever. Its stdout goes to the log too: a straggler holding
# this script's stdout would keep meson waiting for it.
env -u NOTIFY_SOCKET -u LISTEN_FDS -u LISTEN_PID -u WATCHDOG_USEC -u INVOCATION_ID \
        -u JOURNAL_STREAM "$EVD_TEST_DAEMON" --socket "$W"/probe.sock >"$W"/probe.log 2>&1 &
probe=$!
wait_for 5 grep "listening on" "$W"/probe.log ||
        { kill -KILL "$probe"; fail "evd did not start outside the sandbox"; }
kill "$probe"
(sleep 10 && kill -KILL "$probe") >/dev/null 2>&1 &
killer=$!
rc=0
wait "$probe" || rc=$?
kill "$killer" 2>/dev/null || true
[ "$rc" -eq 0 ] || fail "the unsandboxed evd ended with status $rc on SIGTERM (137: it did not" \
        "exit within 10 s): $(tail -3 "$W"/probe.log | tr '\n' ';')"
backend=$(sed -n 's/.*listening on .* (\(.*\) backend).*/\1/p' "$W"/probe.log)
log "unsandboxed evd uses $backend"

# ---- the namespace and the root manager ---------------------------------------------------

STEP=manager
make_cgroups root 0:0
# In the new mount namespace: /run private; journald (volatile, off the kernel log)
# started first, so that the managers log into it (their other targets are /dev/console
# and kmsg, the host's); evd and the client copied where every sandbox can execute them.
cat >"$W"/start-manager.sh <<EOF
set -e
mount -n -t tmpfs -o mode=755 tmpfs /run
mkdir -p /run/systemd/system /run/systemd/journald.conf.d /run/evd-test /run/user/$NOBODY
chown $NOBODY:$NOBODY /run/user/$NOBODY
chmod 700 /run/user/$NOBODY
printf '[Journal]\\nStorage=volatile\\nReadKMsg=no\\nForwardToSyslog=no\\nForwardToKMsg=no\\n' \\
        >/run/systemd/journald.conf.d/evd-test.conf
printf 'ForwardToConsole=no\\nForwardToWall=no\\n' >>/run/systemd/journald.conf.d/evd-test.conf
if [ -d /var/log/journal ]; then mount -n -t tmpfs tmpfs /var/log/journal; fi
install -m 755 "$EVD_TEST_DAEMON" /run/evd-test/evd
install -m 755 "$EVD_TEST_CLIENT" /run/evd-test/client
$JOURNALD </dev/null &
for i in \$(seq 100); do [ -S /run/systemd/journal/socket ] && break; sleep 0.05; done
[ -S /run/systemd/journal/socket ]
exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME="$W/root/home" \\
        XDG_RUNTIME_DIR=/run XDG_CONFIG_HOME="$W/root/config" XDG_DATA_HOME="$W/root/data" \\
        $SYSTEMD --user --unit=evd-test.target --log-target=journal --log-level=info
EOF
setsid bash -c 'for d in '"$NEW_CGROUPS"'; do echo $$ >"$d"/cgroup.procs; done
        exec unshare --mount --propagation private sh '"$W"'/start-manager.sh' \
        </dev/null >"$W"/manager.out 2>&1 &
MGR_PID=$!
wait_for 10 manager_up sctl || fail "the root manager did not come up"
# The system manager's notify socket is 0777; a user manager makes its own 0755, which a
# dynamic user could not write to. Make it like the system manager's.
in_ns chmod 0777 /run/systemd/notify
version=$(systemctl --version | sed -n '1s/systemd \([0-9]*\).*/\1/p')
log "root manager $MGR_PID running (systemd $version)"

# ---- 1. the system units ------------------------------------------------------------------

STEP=system-activation
sctl start evd.socket
prop_is sctl evd.socket ActiveState active || fail "evd.socket is not active"
prop_is sctl evd.service ActiveState inactive || fail "evd.service started before any client"
mode=$(in_ns stat -c %a "$SOCK")
[ "$mode" = 666 ] || fail "socket mode $mode, expected 666"
[ "$(in_ns stat -c %a "${SOCK%/*}")" = 755 ] || fail "socket directory mode is not 755"

# The first client starts the service; everything it passes must work in the sandbox.
out=$(client fds) || fail "the client failed: $out"
log "root client: $(echo "$out" | tr '\n' ' ')"
echo "$out" | grep "admin=true" >/dev/null ||
        fail "root is not admin: the daemon does not see the real uid"
echo "$out" | grep "backend=$backend" >/dev/null ||
        fail "sandboxed evd does not use $backend: the sandbox blocks it"
echo "$out" | grep "ready: pipe pty pidfd inet" >/dev/null || fail "a passed fd did not work"
echo "$out" | grep "own connection: refused" >/dev/null ||
        fail "evd watched a client's own connection"
client_pid=$(echo "$out" | sed -n 's/^pid=\([0-9]*\) .*/\1/p')

# Another user: the daemon sees its real uid and does not make it an admin.
STEP=system-other-user
out=$(as_nobody /run/evd-test/client "$SOCK" hello) ||
        fail "uid $NOBODY could not use the socket: $out"
log "uid $NOBODY client: $out"
echo "$out" | grep "admin=false" >/dev/null || fail "uid $NOBODY is admin"
nobody_pid=$(echo "$out" | sed -n 's/^pid=\([0-9]*\) .*/\1/p')

STEP=system-state
prop_is sctl evd.service ActiveState active ||
        fail "evd.service is $(prop sctl evd.service ActiveState)"
prop_is sctl evd.service SubState running || fail "evd.service is not running"
wait_for 3 status_ok sctl || fail "StatusText is \"$(prop sctl evd.service StatusText)\""
log "StatusText: $(prop sctl evd.service StatusText)"
main_pid=$(prop sctl evd.service MainPID)
log "evd: pid $main_pid uid $(proc_field "$main_pid" Uid) CapEff $(proc_field "$main_pid" CapEff)" \
        "NoNewPrivs $(proc_field "$main_pid" NoNewPrivs) Seccomp $(proc_field "$main_pid" Seccomp)"
[ "$(proc_field "$main_pid" Uid)" != 0 ] || fail "DynamicUser= did not apply"
[ "$(proc_field "$main_pid" CapEff)" = 0000000000000000 ] &&
        [ "$(proc_field "$main_pid" NoNewPrivs)" = 1 ] &&
        [ "$(proc_field "$main_pid" Seccomp)" = 2 ] || fail "the sandbox did not apply"

STEP=system-journal
wait_for 3 journal_has SYSLOG_IDENTIFIER=evd EVD_CLIENT_PID="$client_pid" EVD_CLIENT_UID=0 ||
        fail "no journal entry with EVD_CLIENT_PID=$client_pid EVD_CLIENT_UID=0"
entry=$(jctl -o export -n 1 SYSLOG_IDENTIFIER=evd EVD_CLIENT_PID="$client_pid" |
        grep -aE '^(MESSAGE|PRIORITY|EVD_[A-Z_]+|_UID)=' || true)
log "journal: $(echo "$entry" | tr '\n' ' ')"
journal_grep "Client connected (admin)" SYSLOG_IDENTIFIER=evd EVD_CLIENT_PID="$client_pid" \
        PRIORITY=7 ||
        fail "the client's connection was not logged at debug level with its fields"
echo "$entry" | grep '^EVD_CLIENT_ID=[1-9]' >/dev/null || fail "no EVD_CLIENT_ID="
wait_for 3 journal_grep "Client connected" SYSLOG_IDENTIFIER=evd EVD_CLIENT_PID="$nobody_pid" \
        EVD_CLIENT_UID="$NOBODY" || fail "no journal entry with EVD_CLIENT_UID=$NOBODY"
journal_grep "evd listening on $SOCK ($backend backend)" SYSLOG_IDENTIFIER=evd PRIORITY=6 ||
        fail "no start-up message in the journal"

STEP=system-reload
sctl reload evd.service || fail "reload failed"
wait_for 3 journal_grep "Configuration reloaded" SYSLOG_IDENTIFIER=evd _PID="$main_pid" ||
        fail "reload not logged"
wait_for 3 prop_is sctl evd.service ActiveState active || fail "not active after reload"
prop_is sctl evd.service MainPID "$main_pid" || fail "reload restarted the daemon"

STEP=system-reexec
# In place, inside the sandbox (the system call filter must allow memfd_create and
# execve): the pid, the unit's state and the client's connection and watch all stay.
restarts=$(prop sctl evd.service NRestarts)
out=$(client reexec) || fail "reexec: $out"
log "$out"
wait_for 3 prop_is sctl evd.service ActiveState active || fail "not active after the re-exec"
prop_is sctl evd.service MainPID "$main_pid" || fail "the re-exec changed MainPID"
prop_is sctl evd.service NRestarts "$restarts" || fail "the re-exec counted as a restart"
wait_for 3 journal_grep "Restored 1 clients" SYSLOG_IDENTIFIER=evd _PID="$main_pid" ||
        fail "the restore is not in the journal"

STEP=system-restart
# Through the fd store: a new process, the same connection and watch (and what happened
# while no evd ran is reported after it). systemd 252 keeps the store across a restart job.
out=$(client restart env XDG_RUNTIME_DIR=/run systemctl --user --no-pager restart evd.service) ||
        fail "restart: $out"
log "$out"
new_pid=$(prop sctl evd.service MainPID)
[ "$new_pid" != "$main_pid" ] || fail "the restart kept MainPID"
journal_grep "Handed 1 clients" SYSLOG_IDENTIFIER=evd _PID="$main_pid" ||
        fail "the old process did not hand its clients to the fd store"
journal_grep "Restored 1 clients" SYSLOG_IDENTIFIER=evd _PID="$new_pid" ||
        fail "the new process did not restore them"
prop_is sctl evd.service NFileDescriptorStore 0 ||
        fail "the new process left $(prop sctl evd.service NFileDescriptorStore) fds in the store"
main_pid=$new_pid

STEP=system-watchdog
restarts=$(prop sctl evd.service NRestarts)
out=$(client wedge 3) || fail "debug-wedge: $out"
log "$out (WatchdogSec=1s)"
restarted() {
        local pid
        pid=$(prop sctl evd.service MainPID)
        prop_is sctl evd.service ActiveState active && [ "$pid" != "$main_pid" ] && [ "$pid" != 0 ]
}
wait_for 8 restarted || fail "evd was not restarted after the watchdog fired"
[ "$(prop sctl evd.service NRestarts)" -gt "$restarts" ] || fail "NRestarts did not increase"
in_ns grep -xE "watchdog (killed|dumped) ABRT" /run/evd-test/runs >/dev/null ||
        fail "no run ended by the watchdog: $(in_ns cat /run/evd-test/runs | tr '\n' ';')"
journal_grep "evd.service: Watchdog timeout" || fail "the manager did not log a watchdog timeout"
log "watchdog: NRestarts $restarts -> $(prop sctl evd.service NRestarts)," \
        "MainPID $main_pid -> $(prop sctl evd.service MainPID)"
out=$(client hello) || fail "the restarted evd does not serve the socket: $out"

STEP=system-stop
main_pid=$(prop sctl evd.service MainPID)
# A stop is no restart: systemd 252 closes the store once the unit is down with no job
# queued, so a connected client sees EOF.
out=$(client stop env XDG_RUNTIME_DIR=/run systemctl --user --no-pager stop evd.socket evd.service) ||
        fail "stop: $out"
log "$out"
prop_is sctl evd.service ActiveState inactive ||
        fail "evd.service is $(prop sctl evd.service ActiveState)"
prop_is sctl evd.service Result success || fail "evd.service Result=$(prop sctl evd.service Result)"
prop_is sctl evd.service ExecMainStatus 0 ||
        fail "evd exited with $(prop sctl evd.service ExecMainStatus)"
prop_is sctl evd.socket ActiveState inactive || fail "evd.socket is still active"
journal_grep "to systemd's fd store" SYSLOG_IDENTIFIER=evd _PID="$main_pid" ||
        fail "no hand-over message"
prop_is sctl evd.service NFileDescriptorStore 0 || fail "the store outlived the stop"
[ "$(in_ns tail -1 /run/evd-test/runs)" = "success exited 0" ] ||
        fail "the last run ended with $(in_ns tail -1 /run/evd-test/runs)"
in_ns test ! -e "$SOCK" || fail "the socket file was left behind"
log "system units: PASS"

# ---- 2. the user units, under uid 65534's own manager -----------------------------------

STEP=user-manager
make_cgroups user "$NOBODY:$NOBODY"
cat >"$W"/start-user-manager.sh <<EOF
exec setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups \\
        env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
        HOME="$W/user/home" XDG_RUNTIME_DIR=/run/user/$NOBODY \\
        XDG_CONFIG_HOME="$W/user/config" XDG_DATA_HOME="$W/user/data" \\
        $SYSTEMD --user --unit=evd-test.target --log-target=journal --log-level=info
EOF
setsid bash -c 'for d in '"$NEW_CGROUPS"'; do echo $$ >"$d"/cgroup.procs; done
        exec nsenter --target '"$MGR_PID"' --mount -- sh '"$W"'/start-user-manager.sh' \
        </dev/null >>"$W"/manager.out 2>&1 &
USER_MGR_PID=$!
wait_for 10 manager_up usctl || fail "uid $NOBODY's manager did not come up"
log "uid $NOBODY's manager $USER_MGR_PID running"

STEP=user-units
usctl start evd.socket
[ "$(in_ns stat -c %u "$USOCK")" = "$NOBODY" ] || fail "the socket does not belong to the user"
out=$(as_nobody /run/evd-test/client "$USOCK" fds) || fail "the client failed: $out"
log "uid $NOBODY client: $(echo "$out" | tr '\n' ' ')"
echo "$out" | grep "admin=true" >/dev/null || fail "the user is not admin of their own daemon"
echo "$out" | grep "backend=$backend" >/dev/null || fail "the user unit's evd does not use $backend"
echo "$out" | grep "ready: pipe pty pidfd inet" >/dev/null || fail "a passed fd did not work"
echo "$out" | grep "own connection: refused" >/dev/null ||
        fail "evd watched a client's own connection"
user_client_pid=$(echo "$out" | sed -n 's/^pid=\([0-9]*\) .*/\1/p')
wait_for 3 prop_is usctl evd.service ActiveState active || fail "evd.service is not active"
wait_for 3 status_ok usctl || fail "StatusText is \"$(prop usctl evd.service StatusText)\""
main_pid=$(prop usctl evd.service MainPID)
[ "$(proc_field "$main_pid" Uid)" = "$NOBODY" ] && [ "$(proc_field "$main_pid" NoNewPrivs)" = 1 ] &&
        [ "$(proc_field "$main_pid" Seccomp)" = 2 ] || fail "the user unit's sandbox did not apply"
wait_for 3 journal_grep "Client connected (admin)" SYSLOG_IDENTIFIER=evd _UID="$NOBODY" \
        EVD_CLIENT_PID="$user_client_pid" EVD_CLIENT_UID="$NOBODY" ||
        fail "no client entry in the journal"
usctl reload evd.service || fail "reload failed"
wait_for 3 journal_grep "Configuration reloaded" SYSLOG_IDENTIFIER=evd _PID="$main_pid" ||
        fail "reload not logged"
out=$(as_nobody /run/evd-test/client "$USOCK" restart env XDG_RUNTIME_DIR=/run/user/$NOBODY \
        systemctl --user --no-pager restart evd.service) || fail "restart: $out"
log "uid $NOBODY: $out"
out=$(as_nobody /run/evd-test/client "$USOCK" stop env XDG_RUNTIME_DIR=/run/user/$NOBODY \
        systemctl --user --no-pager stop evd.socket evd.service) || fail "stop: $out"
log "uid $NOBODY: $out"
prop_is usctl evd.service Result success ||
        fail "evd.service Result=$(prop usctl evd.service Result)"
prop_is usctl evd.service ExecMainStatus 0 ||
        fail "evd exited with $(prop usctl evd.service ExecMainStatus)"
in_ns test ! -e "$USOCK" || fail "the socket file was left behind"
log "user units: PASS"
STEP=done
echo PASS
