/* test-daemon.c - the daemon and its protocol, end to end (protocol/PROTOCOL.md is the contract)
 *
 * Every test starts the built evd ($EVD_TEST_DAEMON) on a socket in its own mkdtemp()
 * directory with the backend of $EVD_TEST_BACKEND, talks to it as a real client does
 * (SOCK_SEQPACKET, SCM_RIGHTS, JSON-RPC 2.0) and stops it with SIGTERM: test_daemon_stop()
 * returning 0 is part of every test. meson runs the binary once per backend.
 *
 * Waiting is always bounded: replies through the helpers' 5 s deadline, "nothing more
 * arrives" by reading for a fixed window, asynchronous clean-up (fds after a disconnect) by
 * polling with a deadline. Ordering is taken from the protocol rather than from time: replies
 * come in request order, so a ping answered means every earlier request was handled.
 *
 * Other users: tests run as root, which is an admin; a non-admin peer is a connection made by
 * a child that switched to uid/gid 65534 (test_client_connect_as()). Forked children never
 * call check's asserts (in CK_FORK=no mode a failing assert would longjmp the child into the
 * runner): they report through pipes and exit codes, and the parent judges.
 *
 * Every json_t is released and every fd closed, so the valgrind setup (CK_FORK=no) sees no
 * leak in the test binary.
 *
 * The suite "daemon", one file per concern (each adds its TCase, in this order):
 *   test-daemon-session.c    hello, ping, status, stats               (TCase session)
 *   test-daemon-watch.c      watches: modes, coalescing, modify, unwatch (watch)
 *   test-daemon-fds.c        fd indices, clean-up, fd types, refused fds (fds)
 *   test-daemon-timers.c     timers                                    (timer)
 *   test-daemon-listings.c   listings and paging; monitor              (listings, monitor)
 *   test-daemon-errors.c     JSON, JSON-RPC and params errors          (errors)
 *   test-daemon-batches.c    batches and their limits                  (batch)
 *   test-daemon-access.c     other uids, isolation; quotas             (access, quota)
 *   test-daemon-lifecycle.c  reload, disconnects, SHUT_WR, shutdown    (lifecycle)
 * Shared helpers: util-rpc.[ch] (calls and expectations), util-json, util-fd, util-time,
 * util-check (the runner), util-daemon (the daemon and the client).
 */

#include <check.h>
#include <signal.h>

#include "test-daemon.h"
#include "util-check.h"

static Suite *daemon_suite(void) {
        Suite *s = suite_create("daemon");

        daemon_session_tests(s);
        daemon_watch_tests(s);
        daemon_fds_tests(s);
        daemon_timers_tests(s);
        daemon_listings_tests(s);
        daemon_errors_tests(s);
        daemon_batches_tests(s);
        daemon_access_tests(s);
        daemon_lifecycle_tests(s);
        return s;
}

int main(void) {
        /* Writes to pipes and sockets whose reader is gone must fail, not kill the test. */
        (void)signal(SIGPIPE, SIG_IGN);

        /* Skip (77) only where the kernel refuses io_uring; the epoll run still covers all. */
        if (test_uring_refused())
                return 77;
        return test_run_suite(daemon_suite());
}
