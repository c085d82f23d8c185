/* test-engine-timer-mem.c - timers in the caller's memory (engine_init_timer()): they fire
 * and repeat as pooled ones do, the memory is the caller's again once source_free() returns
 * (inside the timer's own callback too), and engine_free() leaves it alone
 *
 * Part of the engine suite: test-engine.c runs it once per backend.
 */

#include "engine.h"
#include "macro.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "test-engine.h"
#include "util-check.h"
#include "util-engine.h"

#define POISON 0xa5

/* What a daemon embeds: the engine's room for the source, beside the caller's own fields. */
typedef struct Owner {
        EngineTimerMem mem;
        unsigned calls;
        uint64_t expirations;
        bool release_in_callback; /* source_free(), then the memory is poisoned or freed */
        bool free_memory;         /* free() the Owner rather than poison it */
        bool *released;
} Owner;

static int owner_cb(EngineSource *s, uint64_t expirations, void *userdata) {
        Owner *o = userdata;

        ck_assert_ptr_eq(engine_timer_mem(s), &o->mem);
        o->calls++;
        o->expirations += expirations;
        if (o->release_in_callback) {
                bool free_memory = o->free_memory;
                bool *released = o->released;

                ck_assert_ptr_null(source_free(s));
                /* The memory is ours again: anything the engine still did with it would
                 * read garbage (or, freed, trip ASan). */
                if (free_memory)
                        free(o);
                else
                        memset(&o->mem, POISON, sizeof(o->mem));
                *released = true;
        }
        return 0;
}

static bool all_poison(const EngineTimerMem *m) {
        for (size_t i = 0; i < sizeof(m->opaque); i++)
                if (m->opaque[i] != POISON)
                        return false;
        return true;
}

START_TEST(test_timer_mem_repeats) {
        const uint64_t interval = MSEC(5);
        Owner o = { 0 };
        EngineSource *s = NULL;
        EngineStats st;
        uint64_t at0;

        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        at0 = engine_now(e, ENGINE_CLOCK_MONOTONIC) + interval;
        ck_assert_int_eq(engine_init_timer(e, &o.mem, &s, ENGINE_CLOCK_MONOTONIC, at0, interval,
                                           owner_cb, &o),
                         0);
        ck_assert_ptr_eq(engine_timer_mem(s), &o.mem);
        engine_get_stats(e, &st);
        ck_assert_uint_eq(st.timer_sources, 1);
        STEP_UNTIL(e, o.expirations >= 5);
        /* Rescheduled from the planned deadline, as a pooled timer is. */
        ck_assert_uint_eq(source_timer_get_at(s), at0 + o.expirations * interval);
        ck_assert(source_get_enabled(s));
        ck_assert_int_eq(source_timer_set(s, engine_now(e, ENGINE_CLOCK_MONOTONIC) + MSEC(1), 0), 0);
        o.calls = 0;
        STEP_UNTIL(e, o.calls >= 1);
        ck_assert(!source_get_enabled(s));
        ck_assert_ptr_null(source_free(s));
        engine_get_stats(e, &st);
        ck_assert_uint_eq(st.timer_sources, 0);
        /* Freed: the memory can be used again, for another timer. */
        o.calls = 0;
        ck_assert_int_eq(engine_init_timer(e, &o.mem, &s, ENGINE_CLOCK_MONOTONIC,
                                           engine_now(e, ENGINE_CLOCK_MONOTONIC) + MSEC(1), 0,
                                           owner_cb, &o),
                         0);
        STEP_UNTIL(e, o.calls >= 1);
        ck_assert_ptr_null(source_free(s));
}
END_TEST

/* _i: 0 poisons the memory after source_free() in the callback, 1 frees it (ASan sees a
 * touch of freed memory; the plain build, a reschedule of the poisoned bytes). */
START_TEST(test_timer_mem_release_in_callback) {
        TimerRec dog = { 0 };
        bool released = false;
        Owner *o = calloc(1, sizeof(*o));
        EngineSource *s = NULL;

        ck_assert_ptr_nonnull(o);
        *o = (Owner){ .release_in_callback = true, .free_memory = _i == 1, .released = &released };
        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        ck_assert_int_eq(engine_init_timer(e, &o->mem, &s, ENGINE_CLOCK_MONOTONIC,
                                           engine_now(e, ENGINE_CLOCK_MONOTONIC) + MSEC(2), MSEC(2),
                                           owner_cb, o),
                         0);
        add_timer_after(e, MSEC(40), 0, &dog);
        STEP_UNTIL(e, dog.calls >= 1);
        ck_assert(released);
        if (_i == 0) {
                ck_assert_uint_eq(o->calls, 1);
                ck_assert(all_poison(&o->mem));
                free(o);
        }
}
END_TEST

/* A pooled periodic timer that frees itself and adds another in its callback: the new one
 * may get the same memory, and must keep the deadline it was given (the timer phase must
 * not take it for the one it just ran and reschedule it). */
typedef struct Replace {
        EngineSource *self, *replacement;
        uint64_t replacement_at;
        unsigned calls;
} Replace;

static int replacement_cb(EngineSource *s, uint64_t expirations, void *userdata) {
        (void)s, (void)expirations, (void)userdata;
        return 0;
}

static int replace_cb(EngineSource *s, uint64_t expirations, void *userdata) {
        Replace *r = userdata;
        Engine *e = source_get_engine(s);

        (void)expirations;
        r->calls++;
        r->self = source_free(r->self);
        r->replacement_at = engine_now(e, ENGINE_CLOCK_MONOTONIC) + NSEC_PER_SEC;
        ck_assert_int_eq(engine_add_timer(e, &r->replacement, ENGINE_CLOCK_MONOTONIC, r->replacement_at,
                                          3 * NSEC_PER_SEC, replacement_cb, NULL),
                         0);
        return 0;
}

START_TEST(test_timer_replaced_in_callback) {
        Replace r = { 0 };
        TimerRec dog = { 0 };

        _cleanup_(engine_freep) Engine *e = test_engine_new(NULL);
        ck_assert_int_eq(engine_add_timer_after(e, &r.self, MSEC(2), MSEC(2), replace_cb, &r), 0);
        add_timer_after(e, MSEC(30), 0, &dog);
        STEP_UNTIL(e, dog.calls >= 1);
        ck_assert_uint_eq(r.calls, 1);
        ck_assert_ptr_nonnull(r.replacement);
        ck_assert_uint_eq(source_timer_get_at(r.replacement), r.replacement_at);
        ck_assert_ptr_null(source_free(r.replacement));
}
END_TEST

/* engine_free() detaches a timer still in the caller's memory and never frees that memory
 * (on the stack here: free() of it would abort). */
START_TEST(test_timer_mem_outlives_engine) {
        Owner o = { 0 };
        EngineSource *s = NULL;
        Engine *e = test_engine_new(NULL);

        ck_assert_int_eq(engine_init_timer(e, &o.mem, &s, ENGINE_CLOCK_MONOTONIC,
                                           engine_now(e, ENGINE_CLOCK_MONOTONIC) + NSEC_PER_SEC, 0,
                                           owner_cb, &o),
                         0);
        ck_assert_int_eq(engine_init_timer(e, &(Owner){ 0 }.mem, NULL, ENGINE_CLOCK_MONOTONIC, 0, 0,
                                           NULL, NULL),
                         -EINVAL);
        ck_assert_int_eq(engine_init_timer(e, NULL, NULL, ENGINE_CLOCK_MONOTONIC, 0, 0, owner_cb, &o),
                         -EINVAL);
        ck_assert_int_eq(engine_init_timer(e, &(Owner){ 0 }.mem, NULL, _ENGINE_CLOCK_MAX, 0, 0,
                                           owner_cb, &o),
                         -EINVAL);
        (void)engine_free(e);
        ck_assert_uint_eq(o.calls, 0);
}
END_TEST

void engine_timer_mem_tests(Suite *s) {
        TCase *tc = test_tcase(s, "timer-mem", 30);

        tcase_add_test(tc, test_timer_mem_repeats);
        tcase_add_loop_test(tc, test_timer_mem_release_in_callback, 0, 2);
        tcase_add_test(tc, test_timer_replaced_in_callback);
        tcase_add_test(tc, test_timer_mem_outlives_engine);
}
