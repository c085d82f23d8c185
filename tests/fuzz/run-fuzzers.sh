#!/bin/sh
# run-fuzzers.sh CORPUS_DIR SECONDS FUZZER... - run each libFuzzer binary for SECONDS.
# New inputs go to a scratch directory (the committed corpus is only read); crashes are
# written to the current directory as crash-*; the exec count is on the last line.
set -eu
corpus=$1 seconds=$2
shift 2
status=0
for fuzzer in "$@"; do
    name=$(basename "$fuzzer" | sed 's/^fuzz-//')
    scratch=$(mktemp -d)
    echo "== $name: ${seconds}s"
    "$fuzzer" -max_total_time="$seconds" -print_final_stats=1 -print_funcs=0 -timeout=10 -rss_limit_mb=4096 \
        "$scratch" "$corpus/$name" 2>&1 | grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|==|SUMMARY|artifact)" || status=1
    rm -rf "$scratch"
done
exit $status
