/* test-restart-scale.c - 100 clients, 10,000 watches, 1,000 timers through a re-exec and a
 * restart through the fd store, with nothing lost
 *
 * The watch count is scaled to the fd limit (each watch is an fd here and one in the
 * daemon). After the trigger every watched eventfd is written once and every client sends
 * a request; then: no connection ends and each keeps its client id, every request is
 * answered, every watch reports (a oneshot exactly once), every one-shot timer fires once
 * (those due in the fd store's gap late, with their lateness), every repeating timer's
 * expirations add up to the time that passed. Nothing is timed against a bound: the
 * waits are for events, within generous timeouts.
 */

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "macro.h"
#include "util-check.h"
#include "util-daemon.h"
#include "util-manager.h"
#include "util-time.h"

#define CLIENTS 100
#define MAX_WATCHES 10000
#define TIMERS_PER_CLIENT 10 /* half repeating, half one-shot */
#define INTERVAL 0.1
#define ONESHOT_AFTER 0.2
#define STORE_GAP_MS 300 /* how long no evd runs in the fd store case */
#define COLLECT_MS 30000 /* x10 under valgrind, which slows this test (not the daemon) many times */

typedef struct Client {
        TestClient c;
        json_int_t id;
        int n_watches;
        int *efd;          /* the test's eventfd of each watch */
        json_int_t *watch; /* watch ids */
        bool *oneshot;
        unsigned *ready;   /* ready notifications per watch */
        json_int_t timer[TIMERS_PER_CLIENT];
        long long set_ms[TIMERS_PER_CLIENT]; /* when the daemon answered `timer` */
        long long due_ms[TIMERS_PER_CLIENT]; /* the one-shots' */
        uint64_t expirations[TIMERS_PER_CLIENT];
        unsigned fired[TIMERS_PER_CLIENT];
        double max_late[TIMERS_PER_CLIENT];
        bool answered; /* the request sent during the gap */
        unsigned synced; /* replies to sync_all()'s pings */
} Client;

static Client clients[CLIENTS];

static long long collect_ms(void) {
        return getenv("EVD_UNDER_VALGRIND") ? 10 * COLLECT_MS : COLLECT_MS;
}
static char buf[65536 + 1];
/* Read as systemd reads its notify socket: all the time. Unread, its queue holds
 * net.unix.max_dgram_qlen (10 without systemd's sysctl) datagrams, and evd's next
 * sd_notify() then blocks until one is read: a slow run (valgrind) queued enough of the
 * once-a-second STATUS= updates to leave evd asleep in sd_notify("STOPPING=1") at the
 * stop. */
static Manager manager;

static int watches_per_client(void) {
        struct rlimit rl;
        long room;

        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
        rl.rlim_cur = rl.rlim_max;
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
        /* The daemon's limit is the same: its watches, the connections, and some room. */
        room = (long)MIN(rl.rlim_max, (rlim_t)1 << 20) - CLIENTS - 500;
        ck_assert_int_gt(room, CLIENTS * 10);
        return (int)MIN(room, MAX_WATCHES) / CLIENTS;
}

static Client *by_watch(json_int_t id, int *ret_index) {
        for (int k = 0; k < CLIENTS; k++)
                for (int i = 0; i < clients[k].n_watches; i++)
                        if (clients[k].watch[i] == id) {
                                *ret_index = i;
                                return &clients[k];
                        }
        return NULL;
}

/* Register @n watches of @cl, 32 fds to a packet, half edge, half oneshot. */
static void add_watches(Client *cl, int n) {
        cl->n_watches = n;
        cl->efd = calloc((size_t)n, sizeof(int));
        cl->watch = calloc((size_t)n, sizeof(json_int_t));
        cl->oneshot = calloc((size_t)n, sizeof(bool));
        cl->ready = calloc((size_t)n, sizeof(unsigned));
        ck_assert(cl->efd && cl->watch && cl->oneshot && cl->ready);
        for (int at = 0; at < n; at += 32) {
                int k = MIN(32, n - at);
                json_t *batch = json_array(), *replies;

                for (int i = 0; i < k; i++) {
                        cl->efd[at + i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                        ck_assert_int_ge(cl->efd[at + i], 0);
                        cl->oneshot[at + i] = (at + i) % 2;
                        json_array_append_new(batch, json_pack("{s:s,s:i,s:s,s:{s:i,s:[s],s:s}}", "jsonrpc", "2.0", "id",
                                                               at + i, "method", "watch", "params", "fd", i, "events",
                                                               "in", "mode", cl->oneshot[at + i] ? "oneshot" : "edge"));
                }
                test_client_send(&cl->c, batch, cl->efd + at, (size_t)k);
                replies = test_client_reply(&cl->c, TEST_TIMEOUT_MS);
                ck_assert_msg(json_is_array(replies) && json_array_size(replies) == (size_t)k, "watch batch failed");
                for (int i = 0; i < k; i++) {
                        json_t *r = json_array_get(replies, (size_t)i);
                        json_int_t id = json_integer_value(json_object_get(r, "id"));

                        ck_assert_msg(json_object_get(r, "result"), "a watch was refused");
                        cl->watch[id] = json_integer_value(json_object_get(json_object_get(r, "result"), "watch"));
                }
                json_decref(replies);
        }
}

static void add_timers(Client *cl) {
        for (int i = 0; i < TIMERS_PER_CLIENT; i++) {
                bool repeating = i < TIMERS_PER_CLIENT / 2;
                json_t *r = test_client_result(&cl->c, "timer",
                                               repeating ? json_pack("{s:f,s:f}", "after", INTERVAL, "interval", INTERVAL)
                                                         : json_pack("{s:f}", "after", ONESHOT_AFTER),
                                               NULL, 0);

                cl->timer[i] = json_integer_value(json_object_get(r, "timer"));
                cl->set_ms[i] = ms_now();
                cl->due_ms[i] = cl->set_ms[i] + (long long)(ONESHOT_AFTER * 1000);
                json_decref(r);
        }
}

static void count_message(Client *cl, json_t *m) {
        const char *method = json_string_value(json_object_get(m, "method"));
        json_t *p = json_object_get(m, "params"), *id = json_object_get(m, "id");

        if (!method) {
                ck_assert_msg(json_object_get(m, "result"), "a request failed");
                if (json_is_string(id) && strcmp(json_string_value(id), "gap") == 0)
                        cl->answered = true;
                else if (json_is_string(id) && strcmp(json_string_value(id), "sync") == 0)
                        cl->synced++;
                return;
        }
        if (strcmp(method, "ready") == 0) {
                int i;
                Client *owner = by_watch(json_integer_value(json_object_get(p, "watch")), &i);

                ck_assert_msg(owner == cl, "a ready for a watch of another client");
                cl->ready[i]++;
        } else if (strcmp(method, "timer") == 0) {
                json_int_t t = json_integer_value(json_object_get(p, "timer"));

                for (int i = 0; i < TIMERS_PER_CLIENT; i++)
                        if (cl->timer[i] == t) {
                                cl->fired[i]++;
                                cl->expirations[i] += (uint64_t)json_integer_value(json_object_get(p, "expirations"));
                                cl->max_late[i] = MAX(cl->max_late[i], json_number_value(json_object_get(p, "late")));
                        }
        } else
                ck_abort_msg("unexpected notification %s", method);
}

/* Read whatever waits on every connection, for @ms; a closed connection fails the test. */
static void collect(int ms) {
        struct pollfd pfd[CLIENTS];
        long long deadline = ms_now() + ms;

        for (int k = 0; k < CLIENTS; k++)
                pfd[k] = (struct pollfd){ .fd = clients[k].c.fd, .events = POLLIN };
        while (ms_now() < deadline) {
                int n;

                manager_read_all(&manager);
                n = poll(pfd, CLIENTS, (int)MAX(deadline - ms_now(), 0));

                ck_assert_int_ge(n, 0);
                for (int k = 0; k < CLIENTS && n > 0; k++) {
                        ssize_t len;
                        json_t *v;

                        if (!pfd[k].revents)
                                continue;
                        len = recv(pfd[k].fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
                        if (len < 0 && errno == EAGAIN)
                                continue;
                        ck_assert_msg(len > 0, "client %d's connection was closed", k);
                        v = json_loadb(buf, (size_t)len, 0, NULL);
                        ck_assert_ptr_nonnull(v);
                        if (json_is_array(v))
                                for (size_t i = 0; i < json_array_size(v); i++)
                                        count_message(&clients[k], json_array_get(v, i));
                        else
                                count_message(&clients[k], v);
                        json_decref(v);
                }
        }
}

static bool all_delivered(void) {
        for (int k = 0; k < CLIENTS; k++) {
                Client *cl = &clients[k];

                if (!cl->answered)
                        return false;
                for (int i = 0; i < cl->n_watches; i++)
                        if (cl->ready[i] == 0)
                                return false;
                for (int i = TIMERS_PER_CLIENT / 2; i < TIMERS_PER_CLIENT; i++)
                        if (cl->fired[i] == 0)
                                return false;
        }
        return true;
}

/* What all_delivered() still waits for, for the failure message. */
static const char *missing(void) {
        static char text[256];
        int unanswered = 0, silent = 0, silent_oneshot = 0, unfired = 0, first_client = -1, first_watch = -1;

        for (int k = 0; k < CLIENTS; k++) {
                Client *cl = &clients[k];

                unanswered += !cl->answered;
                for (int i = 0; i < cl->n_watches; i++)
                        if (cl->ready[i] == 0) {
                                silent++;
                                silent_oneshot += cl->oneshot[i];
                                if (first_client < 0) {
                                        first_client = k;
                                        first_watch = (int)cl->watch[i];
                                }
                        }
                for (int i = TIMERS_PER_CLIENT / 2; i < TIMERS_PER_CLIENT; i++)
                        unfired += cl->fired[i] == 0;
        }
        snprintf(text, sizeof(text),
                 "%d requests unanswered, %d watches without a ready (%d oneshot; first: client %d watch %d), "
                 "%d one-shot timers not fired",
                 unanswered, silent, silent_oneshot, first_client, first_watch, unfired);
        return text;
}

/* Two rounds of pings, each waited for: every notification queued before the first
 * round's reply is sent before the second round is answered (PROTOCOL.md, section 4). */
static void sync_all(void) {
        for (unsigned round = 1; round <= 2; round++) {
                bool done = false;

                for (int k = 0; k < CLIENTS; k++)
                        test_client_send(&clients[k].c,
                                         json_pack("{s:s,s:s,s:s}", "jsonrpc", "2.0", "id", "sync", "method", "ping"), NULL, 0);
                for (long long end = ms_now() + collect_ms(); !done && ms_now() < end;) {
                        collect(50);
                        done = true;
                        for (int k = 0; k < CLIENTS; k++)
                                done = done && clients[k].synced >= round;
                }
                ck_assert_msg(done, "the pings of round %u were not all answered", round);
        }
}

typedef enum Via { VIA_REEXEC, VIA_FD_STORE } Via;

/* SIGTERM, and the exit status, reading the notify socket meanwhile (evd's STOPPING=1,
 * STATUS= and, with the fd store, FDSTORE=1 come now). The folder stays. */
static int terminate(TestDaemon *d) {
        int status = -1;

        ck_assert_int_eq(kill(d->pid, SIGTERM), 0);
        for (long long end = ms_now() + TEST_TIMEOUT_MS * 4; status < 0 && ms_now() < end;) {
                manager_read_all(&manager);
                status = test_daemon_wait_exit(d, 20);
        }
        manager_read_all(&manager); /* what came just before the exit */
        ck_assert_msg(status >= 0, "evd did not exit within %d s of SIGTERM", TEST_TIMEOUT_MS * 4 / 1000);
        return status;
}

static void run(Via via) {
        int per_client = watches_per_client();
        char limit[16];
        /* The fd store case adds "--fd-store yes"; the re-exec case ends at its NULL. */
        const char *args[] = { "--max-watches-per-uid", limit, "--max-watches-per-client", limit,
                               "--log-level", "info", via == VIA_FD_STORE ? "--fd-store" : NULL, "yes", NULL };
        TestDaemon d, d2;
        TestDaemonSpawn first = { .setup = manager_with_notify_socket, .userdata = &manager };
        TestDaemonSpawn next = { .setup = manager_pass_store, .userdata = &manager };
        long long timers_at, before_final, after_final, gap_from = 0, gap_to = 0, collect_from;
        json_t *s;
        unsigned late_checked = 0;

        snprintf(limit, sizeof(limit), "%d", per_client * CLIENTS + 100);
        manager_open(&manager);
        test_daemon_start_with(&d, args, &first);
        memset(clients, 0, sizeof(clients));
        for (int k = 0; k < CLIENTS; k++) {
                json_t *r;
                char name[16];

                ck_assert_int_eq(test_client_connect(&clients[k].c, d.socket), 0);
                snprintf(name, sizeof(name), "c%d", k);
                r = test_client_result(&clients[k].c, "hello", json_pack("{s:i,s:s}", "protocol", 1, "client", name),
                                       NULL, 0);
                clients[k].id = json_integer_value(json_object_get(r, "client_id"));
                json_decref(r);
                add_watches(&clients[k], per_client);
                manager_read_all(&manager);
        }
        timers_at = ms_now();
        for (int k = 0; k < CLIENTS; k++) {
                add_timers(&clients[k]);
                manager_read_all(&manager);
        }

        if (via == VIA_REEXEC)
                ck_assert_int_eq(kill(d.pid, SIGUSR2), 0);
        else {
                ck_assert_int_eq(terminate(&d), 0);
                gap_from = ms_now();
                manager_read_all(&manager);
                ck_assert_int_eq(manager.n_stored, 3);
        }
        /* The gap's events and requests (after a SIGUSR2, some land before the exec). */
        for (int k = 0; k < CLIENTS; k++) {
                for (int i = 0; i < clients[k].n_watches; i++)
                        ck_assert_int_eq(eventfd_write(clients[k].efd[i], 1), 0);
                test_client_send(&clients[k].c,
                                 json_pack("{s:s,s:s,s:s}", "jsonrpc", "2.0", "id", "gap", "method", "ping"), NULL, 0);
        }
        if (via == VIA_FD_STORE) {
                (void)poll(NULL, 0, STORE_GAP_MS); /* the gap itself: no evd runs */
                gap_to = ms_now();
                next.dir = d.dir;
                test_daemon_start_with(&d2, args, &next);
        }
        collect_from = ms_now();
        for (long long end = collect_from + collect_ms(); !all_delivered() && ms_now() < end;)
                collect(100);
        ck_assert_msg(all_delivered(), "not everything was delivered %lld ms after the %s: %s",
                      ms_now() - collect_from, via == VIA_REEXEC ? "re-exec" : "restart", missing());

        /* The repeating timers: every expiry since they were set, counted in notifications
         * up to a ping that follows them. */
        before_final = ms_now();
        sync_all();
        after_final = ms_now();
        for (int k = 0; k < CLIENTS; k++) {
                Client *cl = &clients[k];
                json_t *r = test_client_result(&cl->c, "hello", json_pack("{s:i}", "protocol", 1), NULL, 0);

                ck_assert_int_eq(json_integer_value(json_object_get(r, "client_id")), cl->id);
                json_decref(r);
                for (int i = 0; i < cl->n_watches; i++)
                        ck_assert_msg(!cl->oneshot[i] || cl->ready[i] == 1, "oneshot reported %u times", cl->ready[i]);
                for (int i = 0; i < TIMERS_PER_CLIENT; i++) {
                        /* Set between timers_at and set_ms: its first expiry came INTERVAL after. */
                        double lo = (double)(before_final - cl->set_ms[i]) / 1000.0 / INTERVAL - 2,
                               hi = (double)(after_final - timers_at) / 1000.0 / INTERVAL + 1;

                        if (i < TIMERS_PER_CLIENT / 2) {
                                ck_assert_msg((double)cl->expirations[i] >= lo && (double)cl->expirations[i] <= hi,
                                              "a repeating timer counted %llu expirations, expected %.0f..%.0f",
                                              (unsigned long long)cl->expirations[i], lo, hi);
                        } else {
                                ck_assert_uint_eq(cl->fired[i], 1);
                                ck_assert_uint_eq(cl->expirations[i], 1);
                                if (cl->due_ms[i] >= gap_from && cl->due_ms[i] < gap_to && ++late_checked) /* no evd ran */
                                        ck_assert_msg(cl->max_late[i] >= (double)(gap_to - cl->due_ms[i]) / 1000 - 0.002,
                                                      "a timer due in the gap was %.3f s late, not %.3f",
                                                      cl->max_late[i], (double)(gap_to - cl->due_ms[i]) / 1000);
                        }
                }
        }
        s = test_client_result(&clients[0].c, "status", NULL, NULL, 0);
        ck_assert_int_eq(json_integer_value(json_object_get(s, "clients")), CLIENTS);
        ck_assert_int_eq(json_integer_value(json_object_get(s, "watches")), per_client * CLIENTS);
        ck_assert_int_eq(json_integer_value(json_object_get(s, "timers")), CLIENTS * TIMERS_PER_CLIENT / 2);
        ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(s, "reexec"), "generation")), 1);
        json_decref(s);
        printf("%s: %d clients, %d watches, %d timers: nothing lost (%u one-shots due in the gap, fired late)\n",
               via == VIA_REEXEC ? "re-exec" : "fd store", CLIENTS, per_client * CLIENTS, CLIENTS * TIMERS_PER_CLIENT,
               late_checked);

        for (int k = 0; k < CLIENTS; k++) {
                test_client_close(&clients[k].c);
                for (int i = 0; i < clients[k].n_watches; i++)
                        close(clients[k].efd[i]);
                free(clients[k].efd);
                free(clients[k].watch);
                free(clients[k].oneshot);
                free(clients[k].ready);
        }
        ck_assert_int_eq(terminate(via == VIA_REEXEC ? &d : &d2), 0);
        ck_assert_msg(manager.stopping, "no STOPPING=1 came");
        (void)test_daemon_stop(via == VIA_REEXEC ? &d : &d2);
        manager_close(&manager);
}

START_TEST(test_reexec_at_scale) {
        run(VIA_REEXEC);
}
END_TEST

START_TEST(test_fd_store_at_scale) {
        run(VIA_FD_STORE);
}
END_TEST

static Suite *suite(void) {
        Suite *s = suite_create("restart-scale");
        TCase *tc = test_tcase(s, "scale", 240);

        tcase_add_test(tc, test_reexec_at_scale);
        tcase_add_test(tc, test_fd_store_at_scale);
        return s;
}

int main(void) {
        return test_run_suite(suite());
}
