/* test-idmap.c - the id map against a reference model
 *
 * The map holds objects keyed by their first member (idmap.h). A model array says, per
 * object, whether it is in the map; random puts and removals over keys
 * that collide on purpose (sequential ids, multiples of the capacity, 0 and UINT64_MAX) are
 * checked against it after each step, and every key is looked up periodically, so a
 * backward shift that leaves an entry where its probe cannot reach it fails here. Seeded
 * (EVD_TEST_SEED overrides) so that a failure can be replayed.
 */

#include "idmap.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>

#include "util-check.h"

typedef struct Obj {
        uint64_t key;
        char rest[24]; /* the rest of an object: the map reads only the key */
} Obj;
_Static_assert(IDMAP_KEYED(Obj, key), "the map reads the key there");

static void rng_seed(uint64_t fallback) {
        const char *s = getenv("EVD_TEST_SEED");

        rng_state = s ? strtoull(s, NULL, 0) : fallback;
}

START_TEST(test_empty) {
        IdMap m = IDMAP_NULL;
        Obj o = { .key = 0 };

        ck_assert_ptr_null(idmap_get(&m, 0));
        ck_assert_ptr_null(idmap_get(&m, 1));
        ck_assert_ptr_null(idmap_remove(&m, 1));
        ck_assert_int_eq(idmap_put(&m, NULL), -EINVAL);
        /* Key 0 is a key like any other: an empty slot is NULL. */
        ck_assert_int_eq(idmap_put(&m, &o), 0);
        ck_assert_ptr_eq(idmap_get(&m, 0), &o);
        ck_assert_ptr_eq(idmap_remove(&m, 0), &o);
        ck_assert_uint_eq(m.n, 0);
        idmap_deinit(&m);
        idmap_deinit(&m); /* safe twice */
        ck_assert_ptr_null(m.slots);
}
END_TEST

#define N_KEYS 4096
#define N_STEPS 400000 /* a tenth under valgrind, where this test took 143 s of CI */

/* Keys that crowd each other: runs of sequential ids, multiples of large powers of two
 * (the same low bits), and the extremes. */
static uint64_t key_at(size_t i) {
        switch (i % 4) {
        case 0:
                return i / 4;
        case 1:
                return (uint64_t)(i / 4 + 1) << 20;
        case 2:
                return UINT64_MAX - i / 4;
        default:
                return UINT64_C(1) << 40 | (i / 4);
        }
}

static void check_all(const IdMap *m, Obj *objs, const bool *in, size_t n_in) {
        ck_assert_uint_eq(m->n, n_in);
        for (size_t i = 0; i < N_KEYS; i++) {
                Obj *found = idmap_get(m, objs[i].key);

                if (in[i])
                        ck_assert_msg(found == &objs[i], "key %zu: found %p, not its object", i, (void *)found);
                else
                        ck_assert_msg(!found, "key %zu: found after removal", i);
        }
        /* At most 3/4 full: the load every watch's and timer's cost is figured at. */
        ck_assert_uint_le(m->n * 4, m->capacity * 3);
}

START_TEST(test_random) {
        Obj *objs = calloc(N_KEYS, sizeof(*objs));
        bool *in = calloc(N_KEYS, sizeof(*in));
        IdMap m = IDMAP_NULL;
        size_t n_in = 0;

        ck_assert_ptr_nonnull(objs);
        ck_assert_ptr_nonnull(in);
        rng_seed(0x1d3a9);
        for (size_t i = 0; i < N_KEYS; i++)
                objs[i].key = key_at(i);
        for (size_t step = 0, steps = getenv("EVD_UNDER_VALGRIND") ? N_STEPS / 10 : N_STEPS; step < steps; step++) {
                /* Phases that grow the map and phases that drain it, so it shrinks too. */
                bool growing = (step / 20000) % 2 == 0;
                size_t i = (size_t)(rng_next() % N_KEYS);

                if (!in[i] && (growing || rng_next() % 4 == 0)) {
                        ck_assert_int_eq(idmap_put(&m, &objs[i]), 0);
                        in[i] = true;
                        n_in++;
                } else if (in[i] && (!growing || rng_next() % 4 == 0)) {
                        ck_assert_ptr_eq(idmap_remove(&m, objs[i].key), &objs[i]);
                        in[i] = false;
                        n_in--;
                } else {
                        ck_assert_ptr_eq(idmap_get(&m, objs[i].key), in[i] ? &objs[i] : NULL);
                }
                if (step % 5000 == 0)
                        check_all(&m, objs, in, n_in);
        }
        check_all(&m, objs, in, n_in);
        for (size_t i = 0; i < N_KEYS; i++)
                if (in[i])
                        ck_assert_ptr_eq(idmap_remove(&m, objs[i].key), &objs[i]);
        ck_assert_uint_eq(m.n, 0);
        ck_assert_uint_le(m.capacity, 64);
        idmap_deinit(&m);
        free(objs);
        free(in);
}
END_TEST

/* What a million ids cost: one pointer per slot, 2^21 slots (8 MB per 2^20 slots less than
 * a key beside each pointer). */
START_TEST(test_million) {
        /* Under valgrind 3/4 of 2^17 (it took 100 s there): the same bounds, at full load. */
        const size_t n = getenv("EVD_UNDER_VALGRIND") ? 98304 : 1000000;
        size_t want = 1;
        Obj *objs = calloc(n, sizeof(*objs));
        IdMap m = IDMAP_NULL;

        while (want * 3 / 4 < n) /* the smallest power of two at <= 3/4 load */
                want *= 2;

        ck_assert_ptr_nonnull(objs);
        for (size_t i = 0; i < n; i++) {
                objs[i].key = i + 1;
                ck_assert_int_eq(idmap_put(&m, &objs[i]), 0);
        }
        ck_assert_uint_eq(m.capacity, want);
        ck_assert(n != 1000000 || want == (size_t)1 << 21);
        ck_assert_uint_le(m.capacity * sizeof(*m.slots) / n, 17);
        for (size_t i = 0; i < n; i++)
                ck_assert_ptr_eq(idmap_get(&m, i + 1), &objs[i]);
        idmap_deinit(&m);
        free(objs);
}
END_TEST

static Suite *idmap_suite(void) {
        Suite *s = suite_create("idmap");
        TCase *tc;

        tc = tcase_create("basic");
        tcase_add_test(tc, test_empty);
        suite_add_tcase(s, tc);

        tc = test_tcase(s, "random", 120);
        tcase_add_test(tc, test_random);
        tcase_add_test(tc, test_million);
        return s;
}

int main(void) {
        return test_run_suite(idmap_suite());
}
