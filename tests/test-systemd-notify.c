/* test-systemd-notify.c - what evd tells the service manager (sd_notify)
 *
 * The test is the service manager: it owns NOTIFY_SOCKET (AF_UNIX datagram, SO_PASSCRED,
 * so every message carries the sender's pid, as systemd checks it) and sets WATCHDOG_USEC
 * and WATCHDOG_PID in the daemon's environment, between fork and exec. Checked: READY=1
 * only once the socket accepts connections, STATUS= with the counts and refreshed at most
 * once a second, RELOADING=1 + MONOTONIC_USEC then READY=1 around SIGHUP (also when the
 * new configuration is refused), STOPPING=1 at SIGTERM, WATCHDOG=1 every WATCHDOG_USEC/2,
 * none when the watchdog is not ours, and none while the loop is wedged (debug-wedge).
 * Timing windows are wide enough for a loaded machine and sanitizers.
 */

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jsonrpc.h"
#include "macro.h"
#include "util-check.h"
#include "util-daemon.h"

/* Every test's directory lives in one per-run directory that main() removes at the end,
 * and every daemon is killed when its test's process dies: a failing check (which ends
 * that process at once) leaves nothing behind. */
static char run_dir[64];

static void make_test_dir(char *dir, size_t size) {
        ck_assert_int_lt(snprintf(dir, size, "%s/t-XXXXXX", run_dir), (int)size);
        ck_assert_ptr_nonnull(mkdtemp(dir));
}

#define WATCHDOG_USEC 200000
#define MAX_MSGS 512

typedef struct Msg {
        char text[1024];
        pid_t pid;      /* sender, from SCM_CREDENTIALS */
        long long t_us; /* CLOCK_MONOTONIC at reception */
} Msg;

typedef struct Fixture {
        TestDaemon d;
        char config_path[128];
        char notify_path[128];
        int notify_fd;
} Fixture;

typedef enum WatchdogPid {
        WATCHDOG_PID_UNSET,
        WATCHDOG_PID_SELF,  /* the daemon's own pid, set in the child */
        WATCHDOG_PID_OTHER, /* another process: the watchdog is not the daemon's */
} WatchdogPid;

typedef struct StartOptions {
        long long watchdog_usec; /* 0: WATCHDOG_USEC unset */
        WatchdogPid watchdog_pid;
        bool debug;         /* EVD_DEBUG=1 */
        const char *config; /* written to DIR/evd.conf, passed as --config */
} StartOptions;

static long long now_us(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static bool has_prefix(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void write_file(const char *path, const char *text) {
        FILE *f = fopen(path, "we");

        ck_assert_ptr_nonnull(f);
        ck_assert_int_ge(fputs(text, f), 0);
        ck_assert_int_eq(fclose(f), 0);
}

static void fixture_start(Fixture *f, const StartOptions *o) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        const char *bin = getenv("EVD_TEST_DAEMON");
        const char *backend = getenv("EVD_TEST_BACKEND");
        const char *argv[16];
        size_t n = 0;
        int one = 1;
        pid_t parent = getpid();

        ck_assert_msg(bin && *bin, "EVD_TEST_DAEMON is not set");
        memset(f, 0, sizeof(*f));
        make_test_dir(f->d.dir, sizeof(f->d.dir));
        snprintf(f->d.socket, sizeof(f->d.socket), "%s/evd.sock", f->d.dir);
        snprintf(f->d.log, sizeof(f->d.log), "%s/evd.log", f->d.dir);
        snprintf(f->notify_path, sizeof(f->notify_path), "%s/notify", f->d.dir);
        snprintf(f->config_path, sizeof(f->config_path), "%s/evd.conf", f->d.dir);
        if (o->config)
                write_file(f->config_path, o->config);

        f->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(f->notify_fd, 0);
        strcpy(sa.sun_path, f->notify_path);
        ck_assert_int_eq(bind(f->notify_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        ck_assert_int_eq(setsockopt(f->notify_fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)), 0);

        argv[n++] = bin;
        argv[n++] = "--socket";
        argv[n++] = f->d.socket;
        argv[n++] = "--log-level";
        argv[n++] = "debug";
        if (backend && *backend) {
                argv[n++] = "--backend";
                argv[n++] = backend;
        }
        if (o->config) {
                argv[n++] = "--config";
                argv[n++] = f->config_path;
        }
        argv[n] = NULL;

        f->d.pid = fork();
        ck_assert_int_ge(f->d.pid, 0);
        if (f->d.pid == 0) {
                char num[32];
                int log = open(f->d.log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

                test_die_with_parent(parent);
                if (log < 0 || dup2(log, STDERR_FILENO) < 0)
                        _exit(126);
                unsetenv("INVOCATION_ID");
                unsetenv("JOURNAL_STREAM");
                unsetenv("LISTEN_FDS");
                unsetenv("LISTEN_PID");
                unsetenv("LISTEN_FDNAMES");
                unsetenv("WATCHDOG_USEC");
                unsetenv("WATCHDOG_PID");
                unsetenv("EVD_DEBUG");
                setenv("NOTIFY_SOCKET", f->notify_path, 1);
                if (o->watchdog_usec > 0) {
                        snprintf(num, sizeof(num), "%lld", o->watchdog_usec);
                        setenv("WATCHDOG_USEC", num, 1);
                }
                if (o->watchdog_pid != WATCHDOG_PID_UNSET) {
                        snprintf(num, sizeof(num), "%d",
                                 o->watchdog_pid == WATCHDOG_PID_SELF ? (int)getpid()
                                                                      : (int)parent);
                        setenv("WATCHDOG_PID", num, 1);
                }
                if (o->debug)
                        setenv("EVD_DEBUG", "1", 1);
                execv(bin, (char *const *)argv);
                _exit(127);
        }
}

/* Reap the daemon once it exits on its own. Return: its exit status, 128 + signal if killed. */
static int wait_exit(Fixture *f, int timeout_ms) {
        long long deadline = now_us() + (long long)timeout_ms * 1000;
        int status;

        for (;;) {
                pid_t r = waitpid(f->d.pid, &status, WNOHANG);

                if (r == f->d.pid) {
                        f->d.pid = 0;
                        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                }
                ck_assert_msg(r == 0 && now_us() < deadline, "evd did not exit");
                (void)poll(NULL, 0, 10);
        }
}

static int fixture_stop(Fixture *f) {
        int r = test_daemon_stop(&f->d);

        f->notify_fd = safe_close(f->notify_fd);
        return r;
}

/* The next message within @timeout_ms, or false. Every message must come from the daemon. */
static bool next_msg(Fixture *f, Msg *m, int timeout_ms) {
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(struct ucred))];
        } control;
        struct iovec iov = {.iov_base = m->text, .iov_len = sizeof(m->text) - 1};
        struct msghdr mh = {.msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = &control,
                            .msg_controllen = sizeof(control)};
        struct pollfd p = {.fd = f->notify_fd, .events = POLLIN};
        struct cmsghdr *c;
        ssize_t len;

        if (timeout_ms < 0)
                timeout_ms = 0;
        if (poll(&p, 1, timeout_ms) <= 0)
                return false;
        len = recvmsg(f->notify_fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        ck_assert_int_ge(len, 0);
        m->text[len] = 0;
        m->t_us = now_us();
        m->pid = 0;
        for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
                        struct ucred cred;
                        memcpy(&cred, CMSG_DATA(c), sizeof(cred));
                        m->pid = cred.pid;
                }
        ck_assert_msg(m->pid == f->d.pid, "\"%s\" came from pid %d, not from the daemon (%d)",
                      m->text, (int)m->pid, (int)f->d.pid);
        return true;
}

/* Wait for a message starting with @prefix, skipping others. */
static void expect_msg(Fixture *f, const char *prefix, Msg *ret, int timeout_ms) {
        long long deadline = now_us() + (long long)timeout_ms * 1000;

        for (;;) {
                ck_assert_msg(next_msg(f, ret, (int)((deadline - now_us()) / 1000)),
                              "no %s message within %d ms", prefix, timeout_ms);
                if (has_prefix(ret->text, prefix))
                        return;
        }
}

/* Collect every message for @ms milliseconds. Returns how many. */
static size_t collect(Fixture *f, Msg *msgs, size_t max, int ms) {
        long long deadline = now_us() + (long long)ms * 1000;
        size_t n = 0;

        while (n < max && now_us() < deadline)
                if (next_msg(f, &msgs[n], (int)((deadline - now_us()) / 1000)))
                        n++;
        return n;
}

/* Times (us) of the messages equal to @text among @msgs. */
static size_t select_times(const Msg *msgs, size_t n, const char *text, long long *ret_t) {
        size_t k = 0;

        for (size_t i = 0; i < n; i++)
                if (strcmp(msgs[i].text, text) == 0)
                        ret_t[k++] = msgs[i].t_us;
        return k;
}

/* The message right after start-up: READY=1, sent only once the socket listens. */
static void expect_ready(Fixture *f) {
        TestClient c;
        Msg m;

        ck_assert_msg(next_msg(f, &m, TEST_TIMEOUT_MS), "no READY=1 within 5 s (see %s)", f->d.log);
        ck_assert_str_eq(m.text, "READY=1");
        ck_assert_msg(test_client_connect(&c, f->d.socket) == 0,
                      "READY=1 came before the socket listened");
        test_client_close(&c);
}

START_TEST(test_ready_status_stopping) {
        StartOptions o = {0};
        Fixture f;
        TestClient c;
        json_t *r;
        Msg m;
        int p[2];

        fixture_start(&f, &o);
        expect_ready(&f);
        ck_assert(next_msg(&f, &m, TEST_TIMEOUT_MS));
        ck_assert_msg(has_prefix(m.text, "STATUS=0 clients, 0 watches, 0 timers ("),
                      "unexpected: %s", m.text);
        ck_assert_msg(strstr(m.text, "(io_uring)") || strstr(m.text, "(epoll)"), "no backend in %s",
                      m.text);

        /* The counts follow the clients (within the one-second refresh). */
        ck_assert_int_eq(test_client_connect(&c, f.d.socket), 0);
        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        r = test_client_result(
                &c, "watch", json_pack("{s:i,s:[s],s:s}", "fd", 0, "events", "in", "mode", "edge"),
                &p[0], 1);
        json_decref(r);
        expect_msg(&f, "STATUS=1 clients, 1 watches, 0 timers (", &m, 3000);

        ck_assert_int_eq(kill(f.d.pid, SIGTERM), 0);
        expect_msg(&f, "STOPPING=1", &m, TEST_TIMEOUT_MS);
        ck_assert_str_eq(m.text, "STOPPING=1");
        ck_assert(next_msg(&f, &m, TEST_TIMEOUT_MS));
        ck_assert_msg(has_prefix(m.text, "STATUS=Shutting down: "),
                      "unexpected after STOPPING=1: %s", m.text);
        test_client_close(&c);
        close(p[0]);
        close(p[1]);
        /* It exits by itself: a second SIGTERM (fixture_stop()) could hit it after it has
         * let go of its signals. */
        ck_assert_int_eq(wait_exit(&f, 10000), 0);
        ck_assert_int_eq(fixture_stop(&f), 0);
}
END_TEST

/* Clients come and go every 20 ms: STATUS= follows, but only from the once-a-second refresh
 * timer (a late firing may bring two closer than a second, never much closer). */
START_TEST(test_status_rate_limited) {
        StartOptions o = {0};
        long long t[MAX_MSGS], end;
        size_t n = 0, k;
        Msg m[MAX_MSGS];
        Fixture f;

        fixture_start(&f, &o);
        expect_ready(&f);
        expect_msg(&f, "STATUS=", &m[0], TEST_TIMEOUT_MS);
        end = now_us() + 3200000;
        while (now_us() < end && n < MAX_MSGS) {
                TestClient c;

                ck_assert_int_eq(test_client_connect(&c, f.d.socket), 0);
                test_client_close(&c);
                if (next_msg(&f, &m[n], 20))
                        n++;
        }
        n += collect(&f, m + n, MAX_MSGS - n, 300);
        k = 0;
        for (size_t i = 0; i < n; i++)
                if (has_prefix(m[i].text, "STATUS="))
                        t[k++] = m[i].t_us;
        ck_assert_msg(k >= 2, "STATUS= was refreshed %zu times in 3.5 s of client churn", k);
        ck_assert_msg(k <= 5, "STATUS= was sent %zu times in 3.5 s: not rate-limited", k);
        for (size_t i = 1; i < k; i++)
                ck_assert_msg(t[i] - t[i - 1] >= 500000, "two STATUS= %lld ms apart",
                              (t[i] - t[i - 1]) / 1000);
        ck_assert_int_eq(fixture_stop(&f), 0);
}
END_TEST

/* WATCHDOG_USEC=200 ms: a ping about every 100 ms, never a gap the manager would punish. */
START_TEST(test_watchdog_cadence) {
        StartOptions o = {.watchdog_usec = WATCHDOG_USEC};
        long long t[MAX_MSGS], max_gap = 0, min_gap = 1LL << 60, mean;
        Msg m[MAX_MSGS];
        Fixture f;
        size_t n, k;

        fixture_start(&f, &o);
        expect_ready(&f);
        n = collect(&f, m, MAX_MSGS, 2000);
        k = select_times(m, n, "WATCHDOG=1", t);
        ck_assert_msg(k >= 14 && k <= 26, "%zu WATCHDOG=1 in 2 s, expected about 20", k);
        for (size_t i = 1; i < k; i++) {
                max_gap = MAX(max_gap, t[i] - t[i - 1]);
                min_gap = MIN(min_gap, t[i] - t[i - 1]);
        }
        mean = (t[k - 1] - t[0]) / (long long)(k - 1);
        printf("watchdog pings: %zu in 2 s, gaps mean %lld us, min %lld us, max %lld us\n", k, mean,
               min_gap, max_gap);
        ck_assert_msg(mean >= 80000 && mean <= 125000,
                      "mean ping interval %lld us, expected ~100 ms", mean);
        ck_assert_msg(max_gap < WATCHDOG_USEC,
                      "a %lld us gap: the manager would have fired the watchdog", max_gap);
        ck_assert_msg(min_gap >= 30000, "pings %lld us apart: more often than needed", min_gap);
        ck_assert_int_eq(fixture_stop(&f), 0);
}
END_TEST

/* The watchdog is only the daemon's when WATCHDOG_USEC is set and WATCHDOG_PID, if set,
 * names it. Loop index: 0 WATCHDOG_PID=self (pings), 1 WATCHDOG_PID=other, 2 no USEC. */
START_TEST(test_watchdog_owner) {
        static const StartOptions opts[] = {
                {.watchdog_usec = WATCHDOG_USEC, .watchdog_pid = WATCHDOG_PID_SELF},
                {.watchdog_usec = WATCHDOG_USEC, .watchdog_pid = WATCHDOG_PID_OTHER},
                {.watchdog_usec = 0},
        };
        long long t[MAX_MSGS];
        Msg m[MAX_MSGS];
        Fixture f;
        size_t n, k;

        fixture_start(&f, &opts[_i]);
        expect_ready(&f);
        n = collect(&f, m, MAX_MSGS, 600);
        k = select_times(m, n, "WATCHDOG=1", t);
        if (_i == 0)
                ck_assert_msg(k >= 3, "WATCHDOG_PID is the daemon's, but only %zu pings in 600 ms",
                              k);
        else
                ck_assert_msg(k == 0, "%zu WATCHDOG=1 for a watchdog that is not the daemon's", k);
        ck_assert_int_eq(fixture_stop(&f), 0);
}
END_TEST

/* A wedged loop sends no pings: that is what lets the manager's watchdog catch it. */
START_TEST(test_watchdog_wedged) {
        StartOptions o = {.watchdog_usec = WATCHDOG_USEC, .debug = true};
        long long t[MAX_MSGS], sent, max_gap = 0, min_gap_after = 1LL << 60, during = 0, after = 0;
        Msg m[MAX_MSGS];
        Fixture f;
        TestClient c;
        json_t *reply;
        size_t n, k;

        fixture_start(&f, &o);
        expect_ready(&f);
        ck_assert_int_eq(test_client_connect(&c, f.d.socket), 0);
        /* 350 ms: the wedge then starts half a ping interval off the pings' phase, so that
         * the old schedule would put a ping about 50 ms after the late one. */
        n = collect(&f, m, MAX_MSGS, 350);

        sent = now_us();
        test_client_send(&c,
                         jsonrpc_request_new(1, "debug-wedge", json_pack("{s:f}", "seconds", 0.8)),
                         NULL, 0);
        n += collect(&f, m + n, MAX_MSGS - n, 1500);
        k = select_times(m, n, "WATCHDOG=1", t);
        for (size_t i = 0; i < k; i++) {
                if (i > 0)
                        max_gap = MAX(max_gap, t[i] - t[i - 1]);
                if (t[i] > sent + 100000 && t[i] < sent + 750000)
                        during++;
                if (t[i] > sent + 900000)
                        after++;
                /* After the late ping that ends the wedge, the next comes a full 100 ms
                 * later, not on the old schedule (which put it anywhere from 0 to 100 ms). */
                if (i > 0 && t[i - 1] > sent + 750000)
                        min_gap_after = MIN(min_gap_after, t[i] - t[i - 1]);
        }
        printf("wedged for 800 ms: longest gap between pings %lld us, %lld pings after\n", max_gap,
               after);
        ck_assert_msg(during == 0, "%lld WATCHDOG=1 while the loop was wedged", during);
        ck_assert_msg(max_gap >= 700000, "the longest gap between pings was %lld us", max_gap);
        ck_assert_msg(after >= 3, "pings did not resume after the wedge (%lld)", after);
        ck_assert_msg(min_gap_after >= 80000, "pings %lld us apart after the wedge", min_gap_after);

        reply = test_client_recv(&c, TEST_TIMEOUT_MS);
        ck_assert_ptr_nonnull(reply);
        ck_assert_msg(json_object_get(reply, "result"), "debug-wedge failed");
        json_decref(reply);
        test_client_close(&c);
        ck_assert_int_eq(fixture_stop(&f), 0);
}
END_TEST

/* Without EVD_DEBUG=1 there is no such method. */
START_TEST(test_wedge_needs_debug) {
        StartOptions o = {.watchdog_usec = WATCHDOG_USEC};
        Fixture f;
        TestClient c;

        fixture_start(&f, &o);
        expect_ready(&f);
        ck_assert_int_eq(test_client_connect(&c, f.d.socket), 0);
        ck_assert_int_eq(test_client_error_code(&c, "debug-wedge",
                                                json_pack("{s:f}", "seconds", 1.0), NULL, 0),
                         -32601);
        test_client_close(&c);
        ck_assert_int_eq(fixture_stop(&f), 0);
}
END_TEST

/* SIGHUP, the next messages: RELOADING=1 with MONOTONIC_USEC taken during the reload, then
 * READY=1 and STATUS=. */
static void expect_reload(Fixture *f) {
        unsigned long long usec = 0;
        long long before, after;
        Msg m;

        before = now_us();
        ck_assert_int_eq(kill(f->d.pid, SIGHUP), 0);
        do
                ck_assert_msg(next_msg(f, &m, TEST_TIMEOUT_MS), "no RELOADING=1 after SIGHUP");
        while (has_prefix(m.text, "STATUS="));
        after = now_us();
        ck_assert_msg(sscanf(m.text, "RELOADING=1\nMONOTONIC_USEC=%llu", &usec) == 1,
                      "unexpected: %s", m.text);
        ck_assert_msg((long long)usec >= before && (long long)usec <= after,
                      "MONOTONIC_USEC=%llu is not between %lld and %lld", usec, before, after);
        do
                ck_assert_msg(next_msg(f, &m, TEST_TIMEOUT_MS), "no READY=1 after RELOADING=1");
        while (has_prefix(m.text, "STATUS="));
        ck_assert_str_eq(m.text, "READY=1");
        ck_assert(next_msg(f, &m, TEST_TIMEOUT_MS));
        ck_assert_msg(has_prefix(m.text, "STATUS="), "no STATUS= after the reload: %s", m.text);
}

START_TEST(test_reload) {
        StartOptions o = {.config = "log-level = debug\n"};
        TestClient c;
        Fixture f;
        json_t *r;

        fixture_start(&f, &o);
        expect_ready(&f);

        expect_reload(&f);
        ck_assert_msg(test_daemon_log_contains(&f.d, "Configuration reloaded from"),
                      "no reload logged");

        /* A configuration it refuses: still RELOADING=1 ... READY=1, and it keeps serving. */
        write_file(f.config_path, "no-such-setting = 1\n");
        expect_reload(&f);
        ck_assert_msg(test_daemon_log_contains(&f.d, "Reload failed"),
                      "the failed reload was not logged");
        ck_assert_int_eq(test_client_connect(&c, f.d.socket), 0);
        r = test_client_result(&c, "ping", NULL, NULL, 0);
        json_decref(r);
        test_client_close(&c);
        ck_assert_int_eq(fixture_stop(&f), 0);
}
END_TEST

static Suite *notify_suite(void) {
        Suite *s = suite_create("systemd-notify");
        TCase *tc;

        tc = test_tcase(s, "lifecycle", 30);
        tcase_add_test(tc, test_ready_status_stopping);
        tcase_add_test(tc, test_status_rate_limited);
        tcase_add_test(tc, test_reload);

        tc = test_tcase(s, "watchdog", 30);
        tcase_add_test(tc, test_watchdog_cadence);
        tcase_add_loop_test(tc, test_watchdog_owner, 0, 3);
        tcase_add_test(tc, test_watchdog_wedged);
        tcase_add_test(tc, test_wedge_needs_debug);
        return s;
}

int main(void) {
        return test_run_suite_in_dir(notify_suite(), run_dir, sizeof(run_dir), "evd-sd-notify");
}
