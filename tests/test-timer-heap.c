/* test-timer-heap.c - the 4-ary timer heap against a reference model
 *
 * The model keeps, per item, whether it is queued and at which deadline, plus a min segment
 * tree over item ids: an independent O(log n) answer to "what is the earliest deadline" to
 * compare timer_heap_peek() with after every operation. After each operation the touched
 * nodes (the item and, on removal, the node that filled the hole) are checked against their
 * parent, children and back-pointer, and the path to the root is checked; the whole heap is
 * checked periodically and at the end, where every item is also popped in order. Sequences
 * are random but seeded (EVD_TEST_SEED overrides), so a failure can be replayed.
 */

#include "timer-heap.h"

#include <check.h>
#include <stdlib.h>

#include "util-check.h"

#define ARITY 4

static uint32_t rng_below(uint32_t n) {
        return (uint32_t)(rng_next() % n);
}

static void rng_seed(uint64_t fallback) {
        const char *s = getenv("EVD_TEST_SEED");

        rng_state = s ? strtoull(s, NULL, 0) : fallback;
}

typedef struct Model {
        uint32_t n;            /* items */
        uint32_t leaves;       /* power of two >= n */
        uint32_t n_queued;
        TimerHeapItem *items;
        uint64_t *at;          /* valid while queued */
        bool *queued;
        uint64_t *tree;        /* 2 * leaves; tree[1] is the minimum, UINT64_MAX if empty */
} Model;

static void model_init(Model *m, uint32_t n) {
        *m = (Model){ .n = n, .leaves = 1 };
        while (m->leaves < n)
                m->leaves *= 2;
        m->items = malloc(sizeof(*m->items) * n);
        m->at = calloc(n, sizeof(*m->at));
        m->queued = calloc(n, sizeof(*m->queued));
        m->tree = malloc(sizeof(*m->tree) * 2 * m->leaves);
        CHECK(m->items && m->at && m->queued && m->tree);
        for (uint32_t i = 0; i < n; i++)
                m->items[i] = TIMER_HEAP_ITEM_NULL;
        for (uint32_t i = 0; i < 2 * m->leaves; i++)
                m->tree[i] = UINT64_MAX;
}

static void model_deinit(Model *m) {
        free(m->items);
        free(m->at);
        free(m->queued);
        free(m->tree);
        *m = (Model){ 0 };
}

static void model_set(Model *m, uint32_t i, bool queued, uint64_t at) {
        uint32_t t = m->leaves + i;

        if (queued != m->queued[i])
                m->n_queued = queued ? m->n_queued + 1 : m->n_queued - 1;
        m->queued[i] = queued;
        m->at[i] = at;
        m->tree[t] = queued ? at : UINT64_MAX;
        for (t /= 2; t >= 1; t /= 2) {
                uint64_t l = m->tree[2 * t], r = m->tree[2 * t + 1];

                m->tree[t] = l < r ? l : r;
        }
}

static uint32_t model_id(const Model *m, const TimerHeapItem *item) {
        if (item < m->items || item >= m->items + m->n)
                ck_abort_msg("foreign item pointer in heap");
        return (uint32_t)(item - m->items);
}

/* Node @i: back-pointer, model agreement, and order against parent and children. */
static void check_node(const TimerHeap *h, const Model *m, uint32_t i) {
        const TimerHeapNode *node = &h->nodes[i];
        uint32_t id, first = i * ARITY + 1;

        CHECK_U(i, <, h->n);
        id = model_id(m, node->item);
        CHECK_U(node->item->index, ==, i);
        if (!m->queued[id])
                ck_abort_msg("item %u in heap but not queued in the model", id);
        CHECK_U(node->at, ==, m->at[id]);
        if (i > 0)
                CHECK_U(h->nodes[(i - 1) / ARITY].at, <=, node->at);
        for (uint32_t c = first; c < first + ARITY && c < h->n; c++)
                CHECK_U(node->at, <=, h->nodes[c].at);
}

static void check_path(const TimerHeap *h, const Model *m, uint32_t i) {
        for (;;) {
                check_node(h, m, i);
                if (i == 0)
                        break;
                i = (i - 1) / ARITY;
        }
}

static void check_item(const TimerHeap *h, const Model *m, uint32_t id) {
        const TimerHeapItem *item = &m->items[id];

        CHECK_U(timer_heap_item_queued(item), ==, m->queued[id]);
        if (m->queued[id]) {
                CHECK(h->nodes[item->index].item == item);
                check_path(h, m, item->index);
        }
}

static void check_peek(const TimerHeap *h, const Model *m) {
        TimerHeapItem *top;
        uint64_t at = 0;

        CHECK_U(h->n, ==, m->n_queued);
        top = timer_heap_peek(h, &at);
        if (m->n_queued == 0) {
                CHECK(!top);
                return;
        }
        CHECK(top);
        CHECK_U(at, ==, m->tree[1]);
        CHECK_U(m->at[model_id(m, top)], ==, m->tree[1]);
        CHECK_U(top->index, ==, 0);
}

/* Indices are distinct (each node's item points back at it) and the counts agree, so the
 * nodes and the queued model items are the same set. */
static void check_full(const TimerHeap *h, const Model *m) {
        CHECK_U(h->n, ==, m->n_queued);
        CHECK_U(h->n, <=, h->capacity);
        for (uint32_t i = 0; i < h->n; i++)
                check_node(h, m, i);
        for (uint32_t id = 0; id < m->n; id++)
                CHECK_U(timer_heap_item_queued(&m->items[id]), ==, m->queued[id]);
        check_peek(h, m);
}

typedef enum DeadlineKind {
        DEADLINE_NARROW, /* 0..15: many ties */
        DEADLINE_WIDE,   /* the full range, extremes included */
        DEADLINE_TIMER,  /* ns within a minute of a base, like real timers */
} DeadlineKind;

static uint64_t random_deadline(DeadlineKind kind) {
        switch (kind) {
        case DEADLINE_NARROW:
                return rng_below(16);
        case DEADLINE_WIDE:
                switch (rng_below(16)) {
                case 0:
                        return 0;
                case 1:
                        return UINT64_MAX;
                default:
                        return rng_next();
                }
        case DEADLINE_TIMER:
        default:
                return UINT64_C(1000000000000) + rng_next() % (60 * UINT64_C(1000000000));
        }
}

static void op_push(TimerHeap *h, Model *m, uint32_t id, uint64_t at) {
        CHECK_U(timer_heap_push(h, &m->items[id], at), ==, 0);
        model_set(m, id, true, at);
        check_item(h, m, id);
}

static void op_remove(TimerHeap *h, Model *m, uint32_t id) {
        TimerHeapItem *moved = h->n > 0 ? h->nodes[h->n - 1].item : NULL;

        timer_heap_remove(h, &m->items[id]);
        model_set(m, id, false, 0);
        check_item(h, m, id);
        /* The last node filled the hole somewhere: check where it landed. */
        if (moved && moved != &m->items[id])
                check_item(h, m, model_id(m, moved));
}

static void op_update(TimerHeap *h, Model *m, uint32_t id, uint64_t at) {
        timer_heap_update(h, &m->items[id], at);
        model_set(m, id, true, at);
        check_item(h, m, id);
}

/* One random operation on a random item: push if idle, else update, remove, or a removal
 * of something not queued (must be a no-op). */
static void random_op(TimerHeap *h, Model *m, DeadlineKind kind) {
        uint32_t id = rng_below(m->n);

        if (!m->queued[id]) {
                if (rng_below(8) == 0) {
                        timer_heap_remove(h, &m->items[id]);
                        CHECK(!timer_heap_item_queued(&m->items[id]));
                } else
                        op_push(h, m, id, random_deadline(kind));
        } else {
                switch (rng_below(5)) {
                case 0:
                case 1:
                        op_remove(h, m, id);
                        break;
                case 2:
                        op_update(h, m, id, m->at[id]);
                        break;
                case 3:
                        /* Earlier: sifts up. */
                        op_update(h, m, id, m->at[id] / 2);
                        break;
                default:
                        op_update(h, m, id, random_deadline(kind));
                }
        }
        check_peek(h, m);
}

/* Pop everything through peek + remove: non-decreasing, and it empties the heap. */
static void drain_in_order(TimerHeap *h, Model *m) {
        uint64_t last = 0;

        while (m->n_queued > 0) {
                uint64_t at = 0;
                TimerHeapItem *top = timer_heap_peek(h, &at);

                CHECK(top);
                CHECK_U(at, >=, last);
                last = at;
                op_remove(h, m, model_id(m, top));
                check_peek(h, m);
        }
        CHECK_U(h->n, ==, 0);
}

START_TEST(test_empty) {
        TimerHeap h = TIMER_HEAP_NULL;
        TimerHeapItem item = TIMER_HEAP_ITEM_NULL;
        uint64_t at = 42;

        CHECK(!timer_heap_peek(&h, &at));
        CHECK_U(at, ==, 42);
        CHECK(!timer_heap_item_queued(&item));
        /* Removing something that is not queued is a no-op, also on an empty heap. */
        timer_heap_remove(&h, &item);
        CHECK_U(h.n, ==, 0);

        CHECK(timer_heap_push(&h, &item, 7) == 0);
        CHECK(timer_heap_item_queued(&item));
        CHECK(timer_heap_peek(&h, &at) == &item);
        CHECK_U(at, ==, 7);
        timer_heap_update(&h, &item, 3);
        CHECK(timer_heap_peek(&h, &at) == &item);
        CHECK_U(at, ==, 3);
        timer_heap_remove(&h, &item);
        CHECK(!timer_heap_item_queued(&item));
        CHECK(!timer_heap_peek(&h, &at));
        timer_heap_remove(&h, &item);
        CHECK_U(h.n, ==, 0);

        timer_heap_deinit(&h);
        timer_heap_deinit(&h); /* safe twice */
        CHECK(!h.nodes);
}
END_TEST

START_TEST(test_deinit_resets_items) {
        TimerHeap h = TIMER_HEAP_NULL;
        TimerHeapItem items[300];
        uint64_t at = 0;

        for (unsigned i = 0; i < 300; i++) {
                items[i] = TIMER_HEAP_ITEM_NULL;
                CHECK(timer_heap_push(&h, &items[i], 1000 - i) == 0);
        }
        CHECK_U(h.n, ==, 300);
        CHECK(timer_heap_peek(&h, &at) == &items[299]);
        CHECK_U(at, ==, 701);

        /* Owners may outlive the heap: deinit must leave their items reusable. */
        timer_heap_deinit(&h);
        for (unsigned i = 0; i < 300; i++)
                CHECK(!timer_heap_item_queued(&items[i]));
        CHECK_U(h.n, ==, 0);
        CHECK(!timer_heap_peek(&h, &at));

        CHECK(timer_heap_push(&h, &items[5], 9) == 0);
        CHECK(timer_heap_peek(&h, &at) == &items[5]);
        timer_heap_deinit(&h);
        CHECK(!timer_heap_item_queued(&items[5]));
}
END_TEST

/* Small heaps, where a full check after every operation is cheap: every shape near the
 * arity boundaries (1..70 nodes) goes through push, remove from every position, and
 * updates both ways. */
static void run_small(uint32_t n_items, unsigned ops, DeadlineKind kind) {
        TimerHeap h = TIMER_HEAP_NULL;
        Model m;

        model_init(&m, n_items);
        for (unsigned k = 0; k < ops; k++) {
                random_op(&h, &m, kind);
                check_full(&h, &m);
        }
        drain_in_order(&h, &m);
        check_full(&h, &m);
        timer_heap_deinit(&h);
        model_deinit(&m);
}

START_TEST(test_small_random) {
        rng_seed(UINT64_C(0x5eed0001) + (uint64_t)_i);
        for (uint32_t n = 1; n <= 70; n++)
                run_small(n, 2000, (DeadlineKind)_i);
}
END_TEST

START_TEST(test_sorted_inputs) {
        TimerHeap h = TIMER_HEAP_NULL;
        Model m;
        const uint32_t n = 5000;

        /* Ascending, descending and constant inputs: the sift paths' extremes. */
        model_init(&m, n);
        for (uint32_t i = 0; i < n; i++)
                op_push(&h, &m, i, i);
        check_full(&h, &m);
        drain_in_order(&h, &m);
        for (uint32_t i = 0; i < n; i++)
                op_push(&h, &m, i, n - i);
        check_full(&h, &m);
        /* Every item to the same deadline, then back to distinct ones. */
        for (uint32_t i = 0; i < n; i++)
                op_update(&h, &m, i, 77);
        check_full(&h, &m);
        for (uint32_t i = 0; i < n; i++)
                op_update(&h, &m, i, (uint64_t)(i * 7919u % n));
        check_full(&h, &m);
        /* Remove from the root repeatedly and from the last slot repeatedly. */
        for (uint32_t k = 0; k < n / 4; k++) {
                uint64_t at;
                op_remove(&h, &m, model_id(&m, timer_heap_peek(&h, &at)));
                op_remove(&h, &m, model_id(&m, h.nodes[h.n - 1].item));
        }
        check_full(&h, &m);
        drain_in_order(&h, &m);
        timer_heap_deinit(&h);
        model_deinit(&m);
}
END_TEST

/* A million items: push all, a million random operations, cancel half (the heap shrinks),
 * then pop the rest in order. Local checks and peek after each operation, full checks
 * every FULL_CHECK_EVERY operations and between phases. */
#define MILLION 1000000u
#define FULL_CHECK_EVERY 16384u

START_TEST(test_million) {
        TimerHeap h = TIMER_HEAP_NULL;
        uint32_t *order;
        uint32_t capacity_full;
        Model m;

        rng_seed(UINT64_C(0x5eed1000));
        model_init(&m, MILLION);

        for (uint32_t id = 0; id < MILLION; id++) {
                op_push(&h, &m, id, random_deadline(DEADLINE_TIMER));
                check_peek(&h, &m);
                if (id % FULL_CHECK_EVERY == 0)
                        check_full(&h, &m);
        }
        check_full(&h, &m);

        for (uint32_t k = 0; k < MILLION; k++) {
                random_op(&h, &m, k % 3 == 0 ? DEADLINE_NARROW : DEADLINE_TIMER);
                if (k % FULL_CHECK_EVERY == 0)
                        check_full(&h, &m);
        }
        check_full(&h, &m);

        /* Refill, then cancel a random half in random order. */
        for (uint32_t id = 0; id < MILLION; id++)
                if (!m.queued[id])
                        op_push(&h, &m, id, random_deadline(DEADLINE_TIMER));
        CHECK_U(h.n, ==, MILLION);
        capacity_full = h.capacity;
        order = malloc(sizeof(*order) * MILLION);
        CHECK(order);
        for (uint32_t i = 0; i < MILLION; i++)
                order[i] = i;
        for (uint32_t i = MILLION - 1; i > 0; i--) {
                uint32_t j = rng_below(i + 1), t = order[i];
                order[i] = order[j];
                order[j] = t;
        }
        for (uint32_t k = 0; k < MILLION / 2; k++) {
                op_remove(&h, &m, order[k]);
                check_peek(&h, &m);
                if (k % FULL_CHECK_EVERY == 0)
                        check_full(&h, &m);
        }
        free(order);
        check_full(&h, &m);
        CHECK_U(h.n, ==, MILLION / 2);
        CHECK_U(h.capacity, <=, capacity_full);

        drain_in_order(&h, &m);
        CHECK_U(h.n, ==, 0);
        /* Removal never shrinks (a new burst must not fault pages in again); trimming,
         * which the engine does when a burst is over, gives the memory back. */
        CHECK_U(h.capacity, ==, capacity_full);
        timer_heap_trim(&h);
        CHECK_U(h.capacity, <, capacity_full);
        check_full(&h, &m);

        /* Still usable after shrinking. */
        for (uint32_t id = 0; id < 10000; id++)
                op_push(&h, &m, id, random_deadline(DEADLINE_WIDE));
        check_full(&h, &m);
        drain_in_order(&h, &m);

        timer_heap_deinit(&h);
        model_deinit(&m);
}
END_TEST

static Suite *timer_heap_suite(void) {
        Suite *s = suite_create("timer-heap");
        TCase *tc;

        tc = tcase_create("basic");
        tcase_add_test(tc, test_empty);
        tcase_add_test(tc, test_deinit_resets_items);
        suite_add_tcase(s, tc);

        tc = tcase_create("random");
        /* _i selects the DeadlineKind: ties, full range, timer-like. */
        tcase_add_loop_test(tc, test_small_random, DEADLINE_NARROW, DEADLINE_TIMER + 1);
        tcase_add_test(tc, test_sorted_inputs);
        suite_add_tcase(s, tc);

        tc = test_tcase(s, "scale", 120);
        tcase_add_test(tc, test_million);

        return s;
}

int main(void) {
        return test_run_suite(timer_heap_suite());
}
