#pragma once
/* util-engine.h - the engine suite's helpers: engines, stepping, clocks, io and timer recorders */

#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/signalfd.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "util-check.h"


#define MSEC(x) ((uint64_t)(x) * NSEC_PER_MSEC)

extern EngineBackend arg_backend;
extern const char *arg_backend_name; /* what engine_backend_name() must say; NULL for auto */
extern unsigned arg_slow;            /* timing slack multiplier (valgrind) */
extern unsigned seq;                 /* orders callbacks of different sources */

/** clock_ns() - @clock now, in ns; mono_ns(), cpu_ns() - of CLOCK_MONOTONIC and
 * CLOCK_PROCESS_CPUTIME_ID. */
uint64_t clock_ns(clockid_t clock);
uint64_t mono_ns(void);
uint64_t cpu_ns(void);
/** busy_wait() - spin for @ns (a callback that takes long). */
void busy_wait(uint64_t ns);
/** watchdog_ns() - how long STEP_UNTIL() waits before it fails (scaled by arg_slow). */
uint64_t watchdog_ns(void);
/** slack_ns() - upper bound on lateness for timing assertions. */
uint64_t slack_ns(void);

/** test_engine_new() - an engine of the backend under test with @opts (NULL: defaults). */
Engine *test_engine_new(const EngineOptions *opts);
bool is_uring(Engine *e);

/* Step (10 ms at a time) until @cond holds; fail after the watchdog. */
#define STEP_UNTIL(e, cond)                                                             \
        do {                                                                            \
                uint64_t _deadline = mono_ns() + watchdog_ns();                         \
                while (!(cond)) {                                                       \
                        int _r;                                                         \
                        if (mono_ns() > _deadline)                                      \
                                ck_abort_msg("timed out waiting for '%s'", #cond);      \
                        _r = engine_step((e), (int64_t)MSEC(10));                       \
                        if (_r < 0)                                                     \
                                ck_abort_msg("engine_step: %s", strerror(-_r));         \
                }                                                                       \
        } while (0)


/** step_for() - run the loop for @ns of wall time: what should not happen gets its chance. */
void step_for(Engine *e, uint64_t ns);
/** get_stats() - engine_get_stats(), on a poisoned struct (every field must be written). */
EngineStats get_stats(Engine *e);

/* ---- io recorder ---- */

typedef struct IoRec {
        uint32_t events;  /* requested: anything else but ERR/HUP/NVAL must never show up */
        unsigned calls;
        unsigned seq;
        int fd;
        uint32_t revents; /* of the last call */
        uint32_t all;     /* all calls' revents */
        bool drain;
        bool rearm;
        int ret;
        EngineSource **self;  /* free_self: where the source handle lives */
        bool free_self;
        EngineSource **free_other;
} IoRec;

int io_rec_cb(EngineSource *s, int fd, uint32_t revents, void *userdata);
/** add_io() - watch @fd for @events in @mode, recording into @r. */
EngineSource *add_io(Engine *e, int fd, uint32_t events, EngineMode mode, IoRec *r);
/** modify() - source_io_modify() @s, and what @r accepts. */
void modify(EngineSource *s, IoRec *r, uint32_t events, EngineMode mode);

/* ---- timer recorder ---- */

#define TIMER_REC_MAX 128

typedef struct TimerRec {
        EngineClock clock;
        unsigned calls;
        unsigned seq;
        uint64_t expirations; /* sum */
        uint64_t at[TIMER_REC_MAX];   /* source_timer_get_at() in each call */
        uint64_t exp[TIMER_REC_MAX];  /* expirations of each call */
        uint64_t now[TIMER_REC_MAX];  /* engine_now() in each call */
        uint64_t real[TIMER_REC_MAX]; /* clock_gettime() in each call */
        uint64_t busy_first;          /* busy-wait this long in the first call */
        uint64_t stop_after;          /* disable once this many expirations were seen */
        bool free_self;
        EngineSource **self;
        EngineSource **free_other;
        bool exit;                    /* engine_exit(exit_code) from the callback */
        int exit_code;
        int ret;
} TimerRec;

int timer_rec_cb(EngineSource *s, uint64_t expirations, void *userdata);
/** add_timer() - a timer on @clock at @at every @interval (0: once), recording into @t. */
EngineSource *add_timer(Engine *e, EngineClock clock, uint64_t at, uint64_t interval,
                        TimerRec *t);
/** add_timer_after() - a monotonic timer @after ns from now, recording into @t. */
EngineSource *add_timer_after(Engine *e, uint64_t after, uint64_t interval, TimerRec *t);

/* Many: @n eventfds, each watched with a counter of its callbacks. */
typedef struct Many {
        unsigned n;
        int *fds;
        unsigned *counts;
        EngineSource **src;
} Many;
int many_cb(EngineSource *s, int fd, uint32_t revents, void *userdata);
void many_init(Many *m, unsigned n);
void many_add(Many *m, Engine *e, EngineMode mode);
void many_bump(Many *m);
unsigned many_sum(const Many *m);
void many_expect_each(Engine *e, Many *m, unsigned times);
void many_expect_between(Engine *e, Many *m, unsigned lo, unsigned hi);
void many_done(Many *m, Engine *e);

typedef struct SigRec {
        unsigned calls;
        struct signalfd_siginfo last;
        bool free_self;
        EngineSource **self;
} SigRec;
int sig_rec_cb(EngineSource *s, const struct signalfd_siginfo *si, void *userdata);
/** signal_blocked() - whether @signo is in this thread's blocked mask. */
bool signal_blocked(int signo);

typedef struct DeferRec {
        unsigned calls;
        unsigned seq;
        EngineSource *enable; /* enable this one from the callback */
        bool disable_self;
        bool free_self;
        EngineSource **self;
        int exit_code;
} DeferRec;
int defer_rec_cb(EngineSource *s, void *userdata);
/** add_defer() - a deferred source (enabled), recording into @d. */
EngineSource *add_defer(Engine *e, DeferRec *d);
