/* timer-heap.c - 4-ary min-heap
 *
 * Nodes hold {deadline, item}: comparisons read only the contiguous node array, and a
 * 4-ary layout puts all children of a node in one 64-byte cache line: the children of i
 * are 4i+1..4i+4, so the array starts 48 bytes into a 64-byte aligned block (as libev
 * puts its root at index 3) and every group of four siblings fills exactly one line. Each move writes the
 * node's new position back into its item, so removal by item is O(log n) with no search.
 * Removal uses the bottom-up ("hole") method: the hole walks to a leaf along the smallest
 * children (3 compares a level instead of 4) and the displaced last node sifts up from
 * there, which for timers (the last node is usually late) is almost always zero steps.
 * Removal never shrinks the array, so a burst of timers after a burst of cancels does not
 * pay for page faults again; timer_heap_trim() gives memory back once a burst is over.
 */

#include "timer-heap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

#define ARITY 4
#define MIN_CAPACITY 64u
#define LINE 64
#define SKEW (LINE - sizeof(TimerHeapNode)) /* node 1, the first child group, on a line */


/* Index of the smallest child of @i; the caller guarantees at least one child exists. */
static inline uint32_t min_child(const TimerHeap *h, uint32_t i) {
        uint32_t first = i * ARITY + 1, last = first + ARITY;
        const TimerHeapNode *c = h->nodes + first;
        uint32_t a, b;

        if (_likely_(last <= h->n)) {
                /* All four in one cache line: a small tournament, no loop. */
                a = c[1].at < c[0].at ? 1 : 0;
                b = c[3].at < c[2].at ? 3 : 2;
                return first + (c[b].at < c[a].at ? b : a);
        }
        a = 0;
        for (uint32_t k = 1; k < h->n - first; k++)
                if (c[k].at < c[a].at)
                        a = k;
        return first + a;
}

/* Fill the hole at @i with @node, which may belong below or above it. */
static void fill_hole(TimerHeap *h, uint32_t i, TimerHeapNode node) {
        while (i * ARITY + 1 < h->n) {
                uint32_t c = min_child(h, i);
                timer_heap_place(h, i, h->nodes[c]);
                i = c;
        }
        timer_heap_sift_up(h, i, node);
}

/* realloc() would lose the alignment: allocate, copy, free. Touching the new part now
 * keeps page faults out of the inserts that follow. */
static int resize(TimerHeap *h, uint32_t capacity) {
        void *mem;
        TimerHeapNode *nodes;

        if (posix_memalign(&mem, LINE, SKEW + (size_t)capacity * sizeof(TimerHeapNode)) != 0)
                return -ENOMEM;
        nodes = (TimerHeapNode *)((char *)mem + SKEW);
        if (h->n)
                memcpy(nodes, h->nodes, (size_t)h->n * sizeof(*nodes));
        memset(nodes + h->n, 0, (size_t)(capacity - h->n) * sizeof(*nodes));
        free(h->mem);
        h->mem = mem;
        h->nodes = nodes;
        h->capacity = capacity;
        return 0;
}

int timer_heap_grow(TimerHeap *h) {
        uint32_t capacity = h->capacity ? h->capacity * 2 : MIN_CAPACITY;

        if (capacity <= h->capacity || capacity > UINT32_MAX / 2)
                return -ENOMEM;
        return resize(h, capacity);
}

void timer_heap_trim(TimerHeap *h) {
        uint32_t capacity = MAX(MAX(h->n * 2, 4096u), h->floor);

        if (h->capacity > capacity && h->n < h->capacity / 8)
                (void)resize(h, capacity);
}

int timer_heap_reserve(TimerHeap *h, uint32_t n) {
        uint64_t want = (uint64_t)h->n + n;

        int r = 0;

        if (want > UINT32_MAX / 2)
                return -ENOMEM;
        if (want > h->capacity)
                r = resize(h, (uint32_t)want);
        if (r >= 0)
                h->floor = n ? (uint32_t)want : 0;
        return r;
}

void timer_heap_deinit(TimerHeap *h) {
        for (uint32_t i = 0; i < h->n; i++)
                h->nodes[i].item->index = TIMER_HEAP_INVALID;
        free(h->mem);
        *h = TIMER_HEAP_NULL;
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
}

void timer_heap_update(TimerHeap *h, TimerHeapItem *item, uint64_t at) {
        uint32_t i = item->index;
        TimerHeapNode node = { .at = at, .item = item };

        if (i > 0 && h->nodes[(i - 1) / ARITY].at > at)
                timer_heap_sift_up(h, i, node);
        else
                fill_hole(h, i, node);
}
