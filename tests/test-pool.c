/* test-pool.c - the object pool: zeroed, aligned, distinct objects, reused once put back
 *
 * Under ASan the pool hands out calloc()ed objects (pool.h), so what is specific to
 * chunks (reuse, the stride that makes a pooled timer cost its own size) is checked only
 * where the pool runs; the rest holds either way.
 */

#include "pool.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util-check.h"

/* A ClientTimer's size, for which malloc takes a 96-byte chunk. */
#define OBJ_SIZE 74

START_TEST(test_objects) {
        unsigned char zero[128] = { 0 }, want[128];
        unsigned char **objs;
        size_t n;
        Pool p;

        pool_init(&p, OBJ_SIZE, 8);
        n = 3 * p.per_chunk + 5;
        objs = calloc(n, sizeof(*objs));
        ck_assert_ptr_nonnull(objs);
        ck_assert_uint_eq(p.size, 80);
        ck_assert_uint_le(p.size, sizeof(zero));
        for (size_t i = 0; i < n; i++) {
                objs[i] = pool_alloc(&p);
                ck_assert_ptr_nonnull(objs[i]);
                ck_assert_uint_eq((uintptr_t)objs[i] % 8, 0);
                ck_assert_msg(memcmp(objs[i], zero, p.size) == 0, "object %zu not zeroed", i);
                memset(objs[i], (int)(i & 0xff), p.size);
        }
        ck_assert_uint_eq(p.live, n);
        /* Nothing handed out twice: every object still holds what was written to it. */
        for (size_t i = 0; i < n; i++) {
                memset(want, (int)(i & 0xff), p.size);
                ck_assert_msg(memcmp(objs[i], want, p.size) == 0, "object %zu overwritten", i);
        }
        if (!p.malloc_only)
                /* No header between objects: a chunk's objects follow each other. */
                ck_assert_uint_eq((uintptr_t)objs[1] - (uintptr_t)objs[0], p.size);
        for (size_t i = 0; i < n; i++)
                pool_put(&p, objs[i]);
        pool_put(&p, NULL);
        ck_assert_uint_eq(p.live, 0);
        pool_deinit(&p);
        pool_deinit(&p); /* safe twice */
        free(objs);
}
END_TEST

START_TEST(test_reuse) {
        Pool p;
        unsigned char *a, *b, *c;

        pool_init(&p, OBJ_SIZE, 8);
        a = pool_alloc(&p);
        b = pool_alloc(&p);
        ck_assert_ptr_nonnull(a);
        ck_assert_ptr_nonnull(b);
        memset(a, 0xa5, p.size);
        pool_put(&p, a);
        c = pool_alloc(&p);
        ck_assert_ptr_nonnull(c);
        if (!p.malloc_only)
                ck_assert_ptr_eq(c, a); /* the freed one first, before any new one */
        /* Zeroed again: the free list's link and the old contents are gone. */
        ck_assert(c[0] == 0 && memcmp(c, c + 1, p.size - 1) == 0);
        pool_put(&p, b);
        pool_put(&p, c);
        pool_deinit(&p);
}
END_TEST

/* Chunks go back to the system as they empty, but for one spare: a million timers gone
 * leave no 80 MB behind. */
START_TEST(test_chunks_released) {
        unsigned char **objs;
        size_t n;
        Pool p;

        pool_init(&p, OBJ_SIZE, 8);
        if (p.malloc_only) {
                pool_deinit(&p);
                return;
        }
        n = 4 * p.per_chunk;
        objs = calloc(n, sizeof(*objs));
        ck_assert_ptr_nonnull(objs);
        for (size_t i = 0; i < n; i++)
                ck_assert_ptr_nonnull(objs[i] = pool_alloc(&p));
        ck_assert_uint_eq(p.chunks, 4);
        /* A full chunk with one object freed is used again, for that object. */
        pool_put(&p, objs[7]);
        ck_assert_ptr_eq(pool_alloc(&p), objs[7]);
        /* The second chunk emptied: kept as the spare. */
        for (size_t i = p.per_chunk; i < 2 * p.per_chunk; i++)
                pool_put(&p, objs[i]);
        ck_assert_uint_eq(p.chunks, 4);
        ck_assert_ptr_nonnull(p.spare);
        /* The fourth: unmapped, the pool has a spare. */
        for (size_t i = 3 * p.per_chunk; i < n; i++)
                pool_put(&p, objs[i]);
        ck_assert_uint_eq(p.chunks, 3);
        /* No chunk has room: new objects take the spare before anything is mapped. */
        for (size_t i = 3 * p.per_chunk; i < n; i++)
                ck_assert_ptr_nonnull(objs[i] = pool_alloc(&p));
        ck_assert_uint_eq(p.chunks, 3);
        ck_assert_ptr_null(p.spare);
        for (size_t i = 0; i < n; i++)
                if (i < p.per_chunk || i >= 2 * p.per_chunk)
                        pool_put(&p, objs[i]);
        ck_assert_uint_eq(p.live, 0);
        ck_assert_uint_eq(p.chunks, 1);
        pool_deinit(&p);
        ck_assert_uint_eq(p.chunks, 0);
        free(objs);
}
END_TEST

/* A ClientTimer holds an engine source, which is 64-byte aligned: so is every object, in
 * every chunk, new or reused, and none overlaps the next. */
START_TEST(test_aligned) {
        unsigned char **objs;
        size_t n;
        Pool p;

        pool_init(&p, 72, 64);
        ck_assert_uint_eq(p.size, 128);
        n = 2 * p.per_chunk + 3;
        objs = calloc(n, sizeof(*objs));
        ck_assert_ptr_nonnull(objs);
        for (size_t i = 0; i < n; i++) {
                ck_assert_ptr_nonnull(objs[i] = pool_alloc(&p));
                ck_assert_uint_eq((uintptr_t)objs[i] % 64, 0);
                memset(objs[i], (int)(i & 0xff), p.size);
        }
        for (size_t i = 0; i < n; i++)
                for (size_t k = 0; k < p.size; k++)
                        ck_assert_uint_eq(objs[i][k], i & 0xff);
        for (size_t i = 0; i < n; i += 2)
                pool_put(&p, objs[i]);
        for (size_t i = 0; i < n; i += 2) {
                ck_assert_ptr_nonnull(objs[i] = pool_alloc(&p));
                ck_assert_uint_eq((uintptr_t)objs[i] % 64, 0);
        }
        for (size_t i = 0; i < n; i++)
                pool_put(&p, objs[i]);
        ck_assert_uint_eq(p.live, 0);
        pool_deinit(&p);
        free(objs);
}
END_TEST

static Suite *pool_suite(void) {
        Suite *s = suite_create("pool");
        TCase *tc = test_tcase(s, "pool", 60); /* 12,000 callocs are slow under ASan */

        tcase_add_test(tc, test_objects);
        tcase_add_test(tc, test_reuse);
        tcase_add_test(tc, test_chunks_released);
        tcase_add_test(tc, test_aligned);
        return s;
}

int main(void) {
        return test_run_suite(pool_suite());
}
