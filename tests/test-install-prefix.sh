#!/bin/sh
# test-install-prefix.sh BUILD_DIR - `meson install` writes only under the prefix.
#
# Installs the whole tree into a temporary DESTDIR and fails if any file or link lands
# outside DESTDIR/PREFIX: systemd units once went to systemd.pc's absolute /lib/systemd
# and /usr/lib/systemd whatever the prefix, changing the host when run as root and failing
# as a user. Also: the units are there (under the prefix), so they are installed at all.
# Then the same for a temporary prefix of its own (a second, configure-only build dir:
# the units and libevd.pc come from configure, so nothing needs compiling), because the
# build's own prefix is usually /usr/local and a path hard-coded to it would pass above.
set -eu
build=$1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/evd-install-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "not ok: $*" >&2; exit 1; }

prefix=$(meson introspect "$build" --buildoptions |
    python3 -c 'import json, sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"))')
meson install -C "$build" --no-rebuild --quiet --destdir "$tmp/root" >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log" >&2; fail "meson install"; }
(cd "$tmp/root" && find . ! -type d) | sed 's|^\.||' | sort >"$tmp/files"
[ -s "$tmp/files" ] || fail "nothing installed"
if grep -v "^$prefix/" "$tmp/files" >"$tmp/outside"; then
    cat "$tmp/outside" >&2
    fail "installed outside the prefix $prefix (above)"
fi
for unit in systemd/system/evd.service systemd/system/evd.socket systemd/user/evd.service systemd/user/evd.socket; do
    grep -q "^$prefix/.*/$unit$" "$tmp/files" || fail "$unit not installed under $prefix"
done
echo "ok: $(wc -l <"$tmp/files") files, all under $prefix"

src=$(cd "$(dirname "$0")/.." && pwd)
own="$tmp/own-prefix"
meson setup --prefix="$own" -Dtests=disabled -Dbench=disabled "$src" "$tmp/own-build" \
    >"$tmp/setup.log" 2>&1 || { cat "$tmp/setup.log" >&2; fail "meson setup --prefix"; }
meson install -C "$tmp/own-build" --no-rebuild --tags systemd --destdir "$tmp/own-root" \
    >"$tmp/own-install.log" 2>&1 || { cat "$tmp/own-install.log" >&2; fail "meson install --tags systemd"; }
(cd "$tmp/own-root" && find . ! -type d) | sed 's|^\.||' | sort >"$tmp/own-files"
[ "$(wc -l <"$tmp/own-files")" -eq 4 ] || { cat "$tmp/own-files" >&2; fail "expected the 4 units"; }
if grep -v "^$own/lib/systemd/" "$tmp/own-files" >"$tmp/outside"; then
    cat "$tmp/outside" >&2
    fail "units installed outside the prefix $own/lib/systemd (above)"
fi
for unit in system/evd.service user/evd.service; do
    grep -qx "ExecStart=$own/sbin/evd .*" "$tmp/own-root$own/lib/systemd/$unit" ||
        fail "$unit does not start $own/sbin/evd"
done
grep -qx "prefix=$own" "$tmp/own-build/meson-private/libevd.pc" || fail "libevd.pc's prefix is not $own"
echo "ok: units and libevd.pc under a prefix of its own"
