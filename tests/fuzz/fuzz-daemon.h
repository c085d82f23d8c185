#pragma once
/* fuzz-daemon.h - the daemon the daemon-level harnesses drive, and what they check after
 * each input (fuzz-dispatch.c, fuzz-state.c) */

#include "config.h"
#include "daemon.h"

/** fuzz_daemon_start() - a daemon without a listening socket, with @cli settings, whose
 * engine already holds everything it keeps for its life (the wall-clock timerfd), quiet
 * below LOG_CRIT. Aborts on failure. */
Daemon *fuzz_daemon_start(const ConfigSetting *cli, size_t n_cli);
/** fuzz_count_fds() - fds open in this process (from /proc/self/fd). */
int fuzz_count_fds(void);
/** fuzz_run_until_idle() - a few loop iterations that never block. */
void fuzz_run_until_idle(Daemon *d);
/** fuzz_assert_holds_nothing() - after the input's client is gone: no client, watch or
 * timer, and @baseline_fds fds open; aborts (libFuzzer reports the input) otherwise. */
void fuzz_assert_holds_nothing(Daemon *d, int baseline_fds);
