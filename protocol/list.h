#pragma once
/* list.h - intrusive doubly linked lists, shared by the daemon and libevd (header only) */

#include <stdbool.h>
#include <stddef.h>

typedef struct ListNode {
        struct ListNode *prev, *next;
} ListNode;

/* An empty list is a node pointing at itself; entries are never NULL-linked while listed. */
typedef struct List {
        ListNode head;
        size_t n;
} List;

static inline void list_init(List *l) {
        l->head.prev = l->head.next = &l->head;
        l->n = 0;
}

static inline bool list_node_linked(const ListNode *n) {
        return n->next != NULL;
}

static inline void list_append(List *l, ListNode *n) {
        n->prev = l->head.prev;
        n->next = &l->head;
        l->head.prev->next = n;
        l->head.prev = n;
        l->n++;
}

static inline void list_remove(List *l, ListNode *n) {
        if (!n->next)
                return;
        n->prev->next = n->next;
        n->next->prev = n->prev;
        n->prev = n->next = NULL;
        l->n--;
}

static inline ListNode *list_first(const List *l) {
        return l->head.next == &l->head ? NULL : l->head.next;
}

static inline ListNode *list_next(const List *l, const ListNode *n) {
        return n->next == &l->head ? NULL : n->next;
}

static inline void list_prepend(List *l, ListNode *n) {
        n->next = l->head.next;
        n->prev = &l->head;
        l->head.next->prev = n;
        l->head.next = n;
        l->n++;
}

/* Move every entry of @src to the end of @dst. */
static inline void list_splice(List *dst, List *src) {
        if (!src->n)
                return;
        src->head.next->prev = dst->head.prev;
        dst->head.prev->next = src->head.next;
        src->head.prev->next = &dst->head;
        dst->head.prev = src->head.prev;
        dst->n += src->n;
        list_init(src);
}

/* Safe against removal of the current entry. */
#define LIST_FOREACH(type, member, var, list)                                                 \
        for (ListNode *_n = list_first(list), *_next = _n ? list_next(list, _n) : NULL;        \
             _n && ((var) = (type *)((char *)_n - offsetof(type, member)), 1);                \
             _n = _next, _next = _n ? list_next(list, _n) : NULL)
