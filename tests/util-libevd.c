/* util-libevd.c - the libevd suite's helpers: a daemon and a connected client per test, a
 * dispatch loop with a deadline, listings and counts, callbacks that record what happened
 *
 * The fixtures (setup, setup_quota, setup_debug; teardown) start evd and connect `client` to
 * it before each test and free both after; run_until() dispatches and polls evd_client_fd()
 * like a program's own event loop would, never longer than asked.
 */

#include <check.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "evd.h"
#include "util-daemon.h"
#include "util-libevd.h"

int arg_slow = 1;

TestDaemon daemon_;
struct evd_client *client;

uint64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Dispatch like a program's loop would until *@flag is set or @timeout_ms passed. */
bool run_until_c(struct evd_client *c, const bool *flag, int timeout_ms) {
        uint64_t deadline = now_ms() + (uint64_t)timeout_ms;

        for (;;) {
                struct pollfd p = {.fd = evd_client_fd(c), .events = POLLIN};
                uint64_t now;
                int r;

                r = evd_client_dispatch(c);
                ck_assert_msg(r >= 0, "dispatch: %s", evd_strerror(r));
                if (*flag)
                        return true;
                now = now_ms();
                if (now >= deadline)
                        return false;
                (void)poll(&p, 1, (int)(deadline - now));
        }
}

bool run_until(const bool *flag, int timeout_ms) {
        return run_until_c(client, flag, timeout_ms);
}

/* Dispatch for @ms, whatever happens (to see that nothing does). */
void run_for(int ms) {
        bool never = false;

        (void)run_until(&never, ms);
}

void setup_args(const char *const *args) {
        int r;

        test_daemon_start(&daemon_, args);
        ck_assert_int_eq(evd_client_new(&client), 0);
        r = evd_client_connect(client, daemon_.socket);
        ck_assert_msg(r == 0, "connect: %s", evd_strerror(r));
}

void setup(void) {
        setup_args(NULL);
}

void teardown(void) {
        client = evd_client_free(client);
        (void)test_daemon_stop(&daemon_);
}

json_t *listing(struct evd_client *c, const char *what) {
        json_t *result = NULL, *items;
        int r;

        r = evd_call(c, what, NULL, WAIT_MS, &result);
        ck_assert_msg(r == 0, "%s: %s", what, evd_strerror(r));
        items = json_incref(json_object_get(result, what));
        ck_assert_ptr_nonnull(items);
        json_decref(result);
        return items;
}

/* Daemon-wide counts from "status" ("watches", "timers"): each test has its own daemon. */
json_int_t status_count(struct evd_client *c, const char *what) {
        json_t *result = NULL;
        json_int_t n;

        ck_assert_int_eq(evd_call(c, "status", NULL, WAIT_MS, &result), 0);
        n = json_integer_value(json_object_get(result, what));
        json_decref(result);
        return n;
}

size_t listing_size(struct evd_client *c, const char *what) {
        json_t *items = listing(c, what);
        size_t n = json_array_size(items);

        json_decref(items);
        return n;
}


int on_watch(struct evd_client *c, uint64_t watch, uint32_t revents, void *userdata) {
        Seen *s = userdata;

        s->calls++;
        s->id = watch;
        s->revents = revents;
        s->flag = true;
        return 0;
}

int on_timer(struct evd_client *c, uint64_t timer, uint64_t expirations, void *userdata) {
        Seen *s = userdata;

        s->calls++;
        s->id = timer;
        s->expirations += expirations;
        s->flag = true;
        return 0;
}

int on_done(struct evd_client *c, int r, json_t *result, void *userdata) {
        Done *d = userdata;
        const struct evd_error *e = evd_client_last_error(c);

        d->calls++;
        d->r = r;
        d->flag = true;
        json_decref(d->result);
        d->result = json_incref(result);
        if (d->order)
                d->seq = ++*d->order;
        if (e) {
                d->code = e->code;
                snprintf(d->message, sizeof(d->message), "%s", e->message);
                snprintf(d->param, sizeof(d->param), "%s", e->param ? e->param : "");
        }
        return 0;
}

void setup_quota(void) {
        static const char *const args[] = {"--max-watches-per-client", "2", NULL};

        setup_args(args);
}

void setup_debug(void) {
        setenv("EVD_DEBUG", "1", 1);
        setup_args(NULL);
        unsetenv("EVD_DEBUG");
}
