/* timer-heap.c - 4-ary min-heap
 *
 * Nodes hold {deadline, item}: comparisons read only the contiguous node array, and a
 * 4-ary layout puts all children of a node in one 64-byte cache line. Each move writes the
 * node's new position back into its item, so removal by item is O(log n) with no search.
 * Removal uses the bottom-up ("hole") method: the hole walks to a leaf along the smallest
 * children (3 compares a level instead of 4) and the displaced last node sifts up from
 * there, which for timers (the last node is usually late) is almost always zero steps.
 */

#include "timer-heap.h"

#include <errno.h>
#include <stdlib.h>

#define ARITY 4
#define MIN_CAPACITY 64u

static inline void place(TimerHeap *h, uint32_t i, TimerHeapNode node) {
        h->nodes[i] = node;
        node.item->index = i;
}

static void sift_up(TimerHeap *h, uint32_t i, TimerHeapNode node) {
        while (i > 0) {
                uint32_t parent = (i - 1) / ARITY;
                if (h->nodes[parent].at <= node.at)
                        break;
                place(h, i, h->nodes[parent]);
                i = parent;
        }
        place(h, i, node);
}

/* Index of the smallest child of @i; the caller guarantees at least one child exists. */
static inline uint32_t min_child(const TimerHeap *h, uint32_t i) {
        uint32_t first = i * ARITY + 1, last = first + ARITY;
        uint32_t best = first;
        if (last > h->n)
                last = h->n;
        for (uint32_t c = first + 1; c < last; c++)
                if (h->nodes[c].at < h->nodes[best].at)
                        best = c;
        return best;
}

/* Fill the hole at @i with @node, which may belong below or above it. */
static void fill_hole(TimerHeap *h, uint32_t i, TimerHeapNode node) {
        while (i * ARITY + 1 < h->n) {
                uint32_t c = min_child(h, i);
                place(h, i, h->nodes[c]);
                i = c;
        }
        sift_up(h, i, node);
}

static int grow(TimerHeap *h) {
        uint32_t capacity = h->capacity ? h->capacity * 2 : MIN_CAPACITY;
        TimerHeapNode *nodes;

        if (capacity <= h->capacity)
                return -ENOMEM;
        nodes = realloc(h->nodes, (size_t)capacity * sizeof(*nodes));
        if (!nodes)
                return -ENOMEM;
        h->nodes = nodes;
        h->capacity = capacity;
        return 0;
}

/* Give memory back after a burst (a million timers cancelled), with hysteresis. */
static void maybe_shrink(TimerHeap *h) {
        TimerHeapNode *nodes;
        uint32_t capacity = h->capacity / 2;

        if (h->capacity <= 4096 || h->n > h->capacity / 4)
                return;
        nodes = realloc(h->nodes, (size_t)capacity * sizeof(*nodes));
        if (nodes) {
                h->nodes = nodes;
                h->capacity = capacity;
        }
}

void timer_heap_deinit(TimerHeap *h) {
        for (uint32_t i = 0; i < h->n; i++)
                h->nodes[i].item->index = TIMER_HEAP_INVALID;
        free(h->nodes);
        *h = TIMER_HEAP_NULL;
}

int timer_heap_push(TimerHeap *h, TimerHeapItem *item, uint64_t at) {
        if (h->n == h->capacity) {
                int r = grow(h);
                if (r < 0)
                        return r;
        }
        sift_up(h, h->n++, (TimerHeapNode){ .at = at, .item = item });
        return 0;
}

void timer_heap_remove(TimerHeap *h, TimerHeapItem *item) {
        uint32_t i = item->index;
        TimerHeapNode last;

        if (i == TIMER_HEAP_INVALID)
                return;
        item->index = TIMER_HEAP_INVALID;
        last = h->nodes[--h->n];
        if (i < h->n)
                fill_hole(h, i, last);
        maybe_shrink(h);
}

void timer_heap_update(TimerHeap *h, TimerHeapItem *item, uint64_t at) {
        uint32_t i = item->index;
        TimerHeapNode node = { .at = at, .item = item };

        if (i > 0 && h->nodes[(i - 1) / ARITY].at > at)
                sift_up(h, i, node);
        else
                fill_hole(h, i, node);
}
