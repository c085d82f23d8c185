#pragma once
/* timer-heap.h - a 4-ary min-heap of deadlines with O(log n) insert, remove and update */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TIMER_HEAP_INVALID UINT32_MAX

/* Embedded in the owner; the heap keeps `index` current so removal needs no search. */
typedef struct TimerHeapItem {
        uint32_t index;
} TimerHeapItem;
#define TIMER_HEAP_ITEM_NULL ((TimerHeapItem){ .index = TIMER_HEAP_INVALID })

/* The deadline is copied into the node so that sifting never touches the owners. */
typedef struct TimerHeapNode {
        uint64_t at;
        TimerHeapItem *item;
} TimerHeapNode;

typedef struct TimerHeap {
        void *mem; /* the allocation; nodes point into it */
        TimerHeapNode *nodes;
        uint32_t n;
        uint32_t capacity;
        uint32_t floor; /* timer_heap_trim() keeps at least this (a reservation) */
} TimerHeap;
#define TIMER_HEAP_NULL ((TimerHeap){ 0 })

void timer_heap_deinit(TimerHeap *h);
int timer_heap_grow(TimerHeap *h);

/* Inline: inserting is the one heap operation that a burst of timers pays per timer, and
 * for random deadlines it is a compare or two. */
static inline void timer_heap_place(TimerHeap *h, uint32_t i, TimerHeapNode node) {
        h->nodes[i] = node;
        node.item->index = i;
}

static inline void timer_heap_sift_up(TimerHeap *h, uint32_t i, TimerHeapNode node) {
        while (i > 0) {
                uint32_t parent = (i - 1) / 4;
                if (h->nodes[parent].at <= node.at)
                        break;
                timer_heap_place(h, i, h->nodes[parent]);
                i = parent;
        }
        timer_heap_place(h, i, node);
}

/** timer_heap_push() - insert @item (not in a heap) at @at. Return: 0 or -ENOMEM. */
static inline int timer_heap_push(TimerHeap *h, TimerHeapItem *item, uint64_t at) {
        if (__builtin_expect(h->n == h->capacity, 0)) {
                int r = timer_heap_grow(h);
                if (r < 0)
                        return r;
        }
        timer_heap_sift_up(h, h->n++, (TimerHeapNode){ .at = at, .item = item });
        return 0;
}
/** timer_heap_reserve() - room for @n more items, allocated and touched now, and kept by
 * timer_heap_trim() (@n 0 drops the reservation). Return: 0 or -ENOMEM. */
int timer_heap_reserve(TimerHeap *h, uint32_t n);
/** timer_heap_trim() - shrink the array if it is mostly empty (at most to twice its use,
 * never below what timer_heap_reserve() reserved). */
void timer_heap_trim(TimerHeap *h);
/** timer_heap_remove() - remove @item; a no-op if it is not in the heap. */
void timer_heap_remove(TimerHeap *h, TimerHeapItem *item);
/** timer_heap_update() - move @item (in the heap) to @at. */
void timer_heap_update(TimerHeap *h, TimerHeapItem *item, uint64_t at);

static inline bool timer_heap_item_queued(const TimerHeapItem *item) {
        return item->index != TIMER_HEAP_INVALID;
}

/* The earliest item, or NULL; its deadline in *ret_at. */
static inline TimerHeapItem *timer_heap_peek(const TimerHeap *h, uint64_t *ret_at) {
        if (h->n == 0)
                return NULL;
        *ret_at = h->nodes[0].at;
        return h->nodes[0].item;
}
