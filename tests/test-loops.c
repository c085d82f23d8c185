/* test-loops.c - libevd driven by another event loop (examples/loop-*.c) survives a
 * daemon restart
 *
 * $EVD_TEST_LOOP_EXAMPLE names the example (one run per loop and backend). It echoes its
 * standard input through an evd watch and ticks through an evd timer; the test feeds it,
 * restarts evd (SIGTERM, then a new evd on the same socket) and checks: the loss and the
 * restoration are reported, input written while no evd ran is read after, the ticker ticks
 * again, and end of input ends the program with status 0. Every wait is for a line, with a
 * timeout.
 */

#include <check.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util-check.h"
#include "util-daemon.h"
#include "util-fd.h"
#include "util-time.h"

#define LINE_TIMEOUT_MS 10000 /* a reconnect's back-off is at most 5 s */

typedef struct Example {
        pid_t pid;
        int input;  /* its standard input */
        int output; /* its standard output */
        char buf[8192];
        size_t len;
} Example;

static void example_start(Example *e, const char *socket_path) {
        const char *bin = getenv("EVD_TEST_LOOP_EXAMPLE");
        int in[2], out[2];

        ck_assert_msg(bin && *bin, "$EVD_TEST_LOOP_EXAMPLE is not set");
        make_pipe(in);
        make_pipe(out);
        e->len = 0;
        e->pid = fork();
        ck_assert_int_ge(e->pid, 0);
        if (e->pid == 0) {
                if (dup2(in[0], STDIN_FILENO) < 0 || dup2(out[1], STDOUT_FILENO) < 0)
                        _exit(126);
                execl(bin, bin, socket_path, (char *)NULL);
                _exit(127);
        }
        close(in[0]);
        close(out[1]);
        e->input = in[1];
        e->output = out[0];
}

/* The next line that starts with @prefix (earlier lines are passed over); the test fails
 * if none comes within LINE_TIMEOUT_MS. Return: the line, valid until the next call. */
static const char *example_expect(Example *e, const char *prefix) {
        static char line[sizeof(e->buf)];
        long long deadline = ms_now() + LINE_TIMEOUT_MS;

        for (;;) {
                char *nl;

                while ((nl = memchr(e->buf, '\n', e->len))) {
                        size_t n = (size_t)(nl - e->buf);

                        memcpy(line, e->buf, n);
                        line[n] = 0;
                        e->len -= n + 1;
                        memmove(e->buf, nl + 1, e->len);
                        if (strncmp(line, prefix, strlen(prefix)) == 0)
                                return line;
                }
                struct pollfd p = { .fd = e->output, .events = POLLIN };
                long long left = deadline - ms_now();
                ssize_t r;

                ck_assert_msg(left > 0 && e->len < sizeof(e->buf), "no line \"%s...\" came within %d ms", prefix,
                              LINE_TIMEOUT_MS);
                if (poll(&p, 1, (int)left) <= 0)
                        continue;
                r = read(e->output, e->buf + e->len, sizeof(e->buf) - e->len);
                ck_assert_msg(r > 0, "the example's output ended before \"%s...\"", prefix);
                e->len += (size_t)r;
        }
}

static void example_write(Example *e, const char *text) {
        ck_assert_int_eq(write(e->input, text, strlen(text)), (ssize_t)strlen(text));
}

/* End of input, then the exit status (the test fails if it does not exit in time). */
static int example_finish(Example *e) {
        long long deadline = ms_now() + LINE_TIMEOUT_MS;
        int status;

        close(e->input);
        for (;;) {
                pid_t r = waitpid(e->pid, &status, WNOHANG);

                if (r == e->pid)
                        break;
                ck_assert_msg(r == 0 && ms_now() < deadline, "the example did not exit after its input ended");
                (void)poll(NULL, 0, 10);
        }
        close(e->output);
        ck_assert_msg(WIFEXITED(status), "the example died of signal %d", WTERMSIG(status));
        return WEXITSTATUS(status);
}

START_TEST(test_survives_restart) {
        TestDaemon d1, d2;
        TestDaemonSpawn same_socket = { 0 };
        Example e;

        test_daemon_start(&d1, NULL);
        example_start(&e, d1.socket);
        example_expect(&e, "watching standard input");
        example_write(&e, "one\n");
        ck_assert_str_eq(example_expect(&e, "read "), "read one");
        example_expect(&e, "tick ");

        ck_assert_int_eq(kill(d1.pid, SIGTERM), 0);
        ck_assert_int_eq(test_daemon_wait_exit(&d1, TEST_TIMEOUT_MS), 0);
        ck_assert_str_eq(example_expect(&e, "connection "), "connection lost: The daemon announced its shutdown");
        example_write(&e, "two\n"); /* no evd runs: read once the watch is back */

        same_socket.dir = d1.dir;
        test_daemon_start_with(&d2, NULL, &same_socket);
        ck_assert_str_eq(example_expect(&e, "connection "), "connection restored");
        ck_assert_str_eq(example_expect(&e, "read "), "read two");
        example_expect(&e, "tick ");

        example_write(&e, "three\n");
        ck_assert_str_eq(example_expect(&e, "read "), "read three");
        ck_assert_int_eq(example_finish(&e), 0);
        ck_assert_int_eq(test_daemon_stop(&d2), 0);
}
END_TEST

int main(void) {
        Suite *s = suite_create("loops");
        TCase *tc = test_tcase(s, "restart", 60);

        if (test_uring_refused())
                return 77;
        tcase_add_test(tc, test_survives_restart);
        return test_run_suite(s);
}
