#pragma once
/* util-libevd.h - the libevd suite's helpers: fixtures, a bounded dispatch loop, recorders */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evd.h"
#include "util-daemon.h"

extern int arg_slow; /* valgrind: everything takes longer */

#define WAIT_MS (TEST_TIMEOUT_MS * arg_slow)

extern TestDaemon daemon_;          /* this test's daemon (the fixtures start and stop it) */
extern struct evd_client *client;   /* connected to it */

uint64_t now_ms(void);
/** run_until_c() - dispatch @c like a program's loop would until *@flag is set or
 * @timeout_ms passed. Return: whether *@flag was set. run_until() - the same for `client`. */
bool run_until_c(struct evd_client *c, const bool *flag, int timeout_ms);
bool run_until(const bool *flag, int timeout_ms);
/** run_for() - dispatch for @ms, whatever happens (to see that nothing does). */
void run_for(int ms);
/** setup_args() - start a daemon with @args and connect `client`; setup(), setup_quota()
 * (--max-watches-per-client 2), setup_debug() (EVD_DEBUG=1) are the fixtures, teardown()
 * frees both. */
void setup_args(const char *const *args);
void setup(void);
void setup_quota(void);
void setup_debug(void);
void teardown(void);
/** listing() - the daemon's view of @c's watches (or timers): the listing's items. */
json_t *listing(struct evd_client *c, const char *what);
/** status_count() - a daemon-wide count from "status" ("watches", "timers"). */
json_int_t status_count(struct evd_client *c, const char *what);
size_t listing_size(struct evd_client *c, const char *what);

/* Callbacks recording what happened. */
typedef struct Seen {
        unsigned calls;
        uint64_t id;
        uint32_t revents;
        uint64_t expirations;
        bool flag;
} Seen;
int on_watch(struct evd_client *c, uint64_t watch, uint32_t revents, void *userdata);
int on_timer(struct evd_client *c, uint64_t timer, uint64_t expirations, void *userdata);

typedef struct Done {
        unsigned calls;
        int r;
        int code;
        char message[64];
        char param[32];
        json_t *result;
        bool flag;
        unsigned *order; /* shared sequence counter, for pipelining */
        unsigned seq;
} Done;
int on_done(struct evd_client *c, int r, json_t *result, void *userdata);
