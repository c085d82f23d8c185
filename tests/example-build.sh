#!/bin/sh
# example-build.sh - libevd as a user gets it: install into a temporary DESTDIR, check
# the shared library (soname, exactly the evd_* API exported) and libevd.pc, then build
# client/example.c against the installed files with pkg-config and run it on a daemon.
#
# Usage: example-build.sh BUILD_DIR SOURCE_DIR [B_SANITIZE]; $EVD_TEST_DAEMON is the daemon.
set -eu

# Under meson's valgrind setup this shell itself runs under valgrind, which would check
# dash, not libevd: run natively, and put the example program under valgrind instead.
if [ -n "${EVD_UNDER_VALGRIND:-}" ] && [ -z "${EXAMPLE_BUILD_NATIVE:-}" ]; then
    EXAMPLE_BUILD_NATIVE=1 exec /bin/sh "$0" "$@"
fi
run=
if [ -n "${EVD_UNDER_VALGRIND:-}" ]; then
    run="valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99"
fi

build=$1
src=$2
sanitize=${3:-none}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/evd-example-XXXXXX")
daemon_pid=
cleanup() {
    [ -z "$daemon_pid" ] || kill "$daemon_pid" 2>/dev/null || true
    [ -z "$daemon_pid" ] || wait "$daemon_pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
fail() { echo "FAIL: $*" >&2; exit 1; }

meson install -C "$build" --no-rebuild --quiet --destdir "$tmp/root" >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log" >&2; fail "meson install"; }

pc=$(find "$tmp/root" -name libevd.pc | head -n 1)
[ -n "$pc" ] || fail "libevd.pc not installed"
so=$(find "$tmp/root" -name 'libevd.so.0.*' -type f | head -n 1)
[ -n "$so" ] || fail "libevd.so.0.* not installed"
[ -L "$(dirname "$so")/libevd.so.0" ] || fail "libevd.so.0 symlink missing"
[ -L "$(dirname "$so")/libevd.so" ] || fail "libevd.so symlink missing"
header=$(find "$tmp/root" -name evd.h | head -n 1)
[ -n "$header" ] || fail "evd.h not installed"
for page in man1/evctl.1 man8/evd.8 man3/libevd.3; do
    if command -v scdoc >/dev/null; then
        find "$tmp/root" -path "*/$page" | grep -q . || fail "man page $page not installed"
    fi
done
find "$tmp/root" -path '*/bash-completion/completions/evctl' | grep -q . || fail "bash completion not installed"

# The soname, and the dynamic symbol table: the EVD_EXPORT functions of evd.h, nothing else.
soname=$(objdump -p "$so" | awk '$1 == "SONAME" { print $2 }')
[ "$soname" = "libevd.so.0" ] || fail "soname is '$soname', want libevd.so.0"
nm -D --defined-only "$so" | awk '$2 == "T" || $2 == "D" || $2 == "B" || $2 == "R" || $2 == "W" { sub(/@.*/, "", $3); print $3 }' |
    sort >"$tmp/exported"
sed -n 's/^EVD_EXPORT .*[ *]\([a-z_][a-z0-9_]*\)(.*/\1/p' "$header" | sort >"$tmp/declared"
if ! cmp -s "$tmp/exported" "$tmp/declared"; then
    diff "$tmp/declared" "$tmp/exported" >&2 || true
    fail "exported symbols differ from evd.h's EVD_EXPORT declarations (< declared, > exported)"
fi
grep -qv '^evd_' "$tmp/exported" && fail "a symbol without the evd_ prefix is exported"
echo "libevd: soname $soname, $(wc -l <"$tmp/exported") symbols exported, all declared in evd.h"

# Build the example as a user would: only pkg-config and the installed files.
export PKG_CONFIG_PATH="$(dirname "$pc")"
export PKG_CONFIG_SYSROOT_DIR="$tmp/root"
cflags=$(pkg-config --cflags libevd)
libs=$(pkg-config --libs libevd)
extra=
[ "$sanitize" = none ] || [ -z "$sanitize" ] || extra="-fsanitize=$sanitize"
# shellcheck disable=SC2086
cc -std=c11 -Wall -Wextra -Werror $extra $cflags "$src/client/example.c" -o "$tmp/example" $libs ||
    fail "the example does not build against the installed library"
echo "example: built with $(printf '%s ' $cflags $libs)"

# Run it against a daemon.
"$EVD_TEST_DAEMON" --socket "$tmp/evd.sock" --backend "${EVD_TEST_BACKEND:-epoll}" 2>"$tmp/evd.log" &
daemon_pid=$!
i=0
while [ ! -S "$tmp/evd.sock" ]; do
    i=$((i + 1))
    [ $i -lt 500 ] || fail "evd did not start"
    sleep 0.01
done
export EVD_SOCKET="$tmp/evd.sock"
export LD_LIBRARY_PATH="$(dirname "$so")"
out=$(echo hello | $run "$tmp/example" 5) || fail "example exited $? with input ready"
case $out in "stdin is readable"*) ;; *) fail "example said '$out'" ;; esac
mkfifo "$tmp/fifo"
set +e
out=$($run "$tmp/example" 0.2 <>"$tmp/fifo")  # open, never written: never readable
rc=$?
set -e
[ $rc -eq 1 ] && [ "$out" = "timed out" ] || fail "example timeout: exit $rc, '$out'"
ldd "$tmp/example" | grep -q "$(dirname "$so")/libevd.so.0" || fail "the example did not use the installed library"
echo "example: ran against the installed libevd.so.0"
