#!/bin/sh
# test-install-prefix.sh BUILD_DIR - `meson install` writes only under the prefix.
#
# Installs the whole tree into a temporary DESTDIR and fails if any file or link lands
# outside DESTDIR/PREFIX: systemd units once went to systemd.pc's absolute /lib/systemd
# and /usr/lib/systemd whatever the prefix, changing the host when run as root and failing
# as a user. Also: the units are there (under the prefix), so they are installed at all.
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
