/* test-hostile.c - hostile clients, faults and load: evd serves on, leaks nothing, lets no one in
 *
 * What test-daemon.c proves for well-formed use and the common bad inputs, this file proves
 * for clients that mean harm, for faults (clients killed, the daemon out of fds) and for load
 * sized to this machine's limits. Every test ends the same way: the daemon is still up, a
 * bystander client (another connection with a watch on a pipe) still gets its ping answered
 * and its `ready` delivered, the daemon's fd count is back at its baseline, and the daemon
 * exits 0 on SIGTERM (under ASan, that includes LeakSanitizer's verdict on the daemon).
 * Every reply and notification read here is scanned for pointer-like text (0x and six or
 * more hex digits): an error message must never show the daemon's memory.
 *
 * Sizes come from the limits read at run time (RLIMIT_NOFILE of this process and, from
 * /proc/PID/limits, of the daemon): nothing assumes a bigger machine. RLIMIT_NOFILE is per
 * process, so the test and the daemon each have their own budget; a watched eventfd costs
 * the test 1 fd and the daemon 1, a connection 1 on each side. EVD_UNDER_VALGRIND=1 (set by
 * the valgrind test setup, which runs this binary, not the daemon, under valgrind) scales the
 * load tests down. RSS bounds are not checked under AddressSanitizer: its quarantine keeps
 * freed memory resident by design; LeakSanitizer at the daemon's exit checks leaks instead.
 *
 * To run the daemon under a low RLIMIT_NOFILE, this binary is its own wrapper: started with
 * $EVD_HOSTILE_EXEC set, main() sets the limit from $EVD_HOSTILE_NOFILE and executes the real
 * daemon (fork, setrlimit, exec: test_daemon_start() does the fork).
 *
 * Forked children never call check's asserts (in CK_FORK=no mode a failing assert would
 * longjmp the child into the runner): they report through pipes and exit codes, the parent
 * judges. Every json_t is released and every fd closed, so valgrind sees no leak here.
 *
 * The suite "hostile", one file per concern (in this order):
 *   TCase input:  test-hostile-input.c          extreme numbers, nesting, NUL bytes, batches
 *                 test-hostile-fds.c            fd floods, epoll/io_uring fds, fd cycling
 *                 test-hostile-eof.c            disconnect mid-batch, half-close, shutdown
 *   TCase faults: test-hostile-faults.c         mass client death, slow readers
 *                 test-hostile-fd-exhaustion.c  the daemon out of fds
 *                 test-hostile-load.c           scale, client bursts
 *   TCase access: test-hostile-socket.c         socket modes and path rules
 *                 test-hostile-uids.c           per-uid limits, leaks between uids
 * Helpers: util-hostile.[ch] (scanned replies, the bystander, low rlimits), util-rpc, util-json,
 * util-fd, util-time, util-check.
 */

#include <check.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "test-hostile.h"
#include "util-check.h"
#include "util-hostile.h"
#include "util-rpc.h"

static Suite *hostile_suite(void) {
        Suite *s = suite_create("hostile");
        TCase *tc;

        tc = test_tcase(s, "input", 60);
        hostile_input_tests(tc);
        hostile_fds_tests(tc);
        hostile_eof_tests(tc);

        tc = test_tcase(s, "faults", 120);
        hostile_faults_tests(tc);
        hostile_fd_exhaustion_tests(tc);
        hostile_load_tests(tc);

        tc = test_tcase(s, "access", 60);
        hostile_socket_tests(tc);
        hostile_uids_tests(tc);
        return s;
}

/* The rlimit wrapper (see the top of the file): never returns. */
static _Noreturn void exec_with_nofile(const char *real, char **argv) {
        const char *n = getenv("EVD_HOSTILE_NOFILE");
        struct rlimit rl;

        if (n) {
                rl.rlim_cur = rl.rlim_max = strtoul(n, NULL, 10);
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
                        perror("setrlimit");
                        _exit(127);
                }
        }
        argv[0] = (char *)real;
        unsetenv("EVD_HOSTILE_NOFILE");
        execv(real, argv);
        perror("execv");
        _exit(127);
}

int main(int argc, char **argv) {
        const char *wrap = getenv("EVD_HOSTILE_EXEC");
        struct rlimit rl;
        ssize_t n;

        if (wrap) {
                char *real = strdup(wrap);

                unsetenv("EVD_HOSTILE_EXEC");
                exec_with_nofile(real ? real : wrap, argv);
        }
        (void)argc;
        n = readlink("/proc/self/exe", arg_self, sizeof(arg_self) - 1);
        if (n > 0)
                arg_self[n] = 0;
        else if (!realpath(argv[0], arg_self))
                arg_self[0] = 0;

        /* The measurements printed by the tests must survive a failing (forked) test. */
        setvbuf(stdout, NULL, _IOLBF, 0);
        /* Writes to pipes and sockets whose reader is gone must fail, not kill the test. */
        (void)signal(SIGPIPE, SIG_IGN);
        /* Load tests size themselves to this limit: take all of it. */
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void)setrlimit(RLIMIT_NOFILE, &rl);
        }
        /* Every reply and notification read through the helpers is scanned for addresses. */
        rpc_check_replies(scanned);

        /* Skip (77) only where the kernel refuses io_uring; the epoll run still covers all. */
        if (test_uring_refused())
                return 77;
        return test_run_suite(hostile_suite());
}
