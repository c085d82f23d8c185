#!/bin/sh
# test-evctl-docs.sh EVCTL SOURCE_DIR - evctl's help, evctl(1) and the bash completion
# name the same commands and options.
#
# The commands are the ones `evctl --help` lists; the options, every --long one that a
# command's --help shows. Each must appear in doc/evctl.1.scd (a command as *name* at the
# start of a line, an option in bold: *--name*, *-n, --name*) and in client/evctl.bash-completion.
set -eu
evctl=$1
src=$2
man=$src/doc/evctl.1.scd
completion=$src/client/evctl.bash-completion
bad=0
miss() { echo "not ok: $*" >&2; bad=1; }

# Command lines start at column 3; a summary's later lines are indented under it.
commands=$("$evctl" --help | awk '/^Commands:/ { on = 1; next } on && /^$/ { exit } on && /^  [^ ]/ { print $1 }')
[ -n "$commands" ] || { echo "not ok: evctl --help lists no commands" >&2; exit 1; }
completion_commands=$(sed -n 's/^ *local commands="\(.*\)"$/\1/p' "$completion")
for c in $commands; do
    grep -q "^\*$c\*" "$man" || miss "evctl(1) has no entry for the command $c"
    case " $completion_commands " in *" $c "*) ;; *) miss "the bash completion does not offer the command $c" ;; esac
    for o in $("$evctl" "$c" --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
        grep -Eq -- "\*[^*]*$o([^a-z*-][^*]*)?\*" "$man" || miss "evctl(1) does not describe $o (evctl $c --help shows it)"
        grep -q -- "$o\b" "$completion" || miss "the bash completion does not offer $o (evctl $c)"
    done
done
[ "$bad" -eq 0 ] && echo "ok: $(echo $commands | wc -w) commands, their options in evctl(1) and the completion"
exit "$bad"
