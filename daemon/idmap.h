#pragma once
/* idmap.h - uint64 key -> pointer hash map (open addressing, linear probing) */

#include <stddef.h>
#include <stdint.h>

/* Key 0 is reserved (empty slot): evd ids start at 1, uids are stored as uid + 1. */
typedef struct IdMapSlot {
        uint64_t key;
        void *value;
} IdMapSlot;

typedef struct IdMap {
        IdMapSlot *slots;
        size_t capacity; /* a power of two, or 0 */
        size_t n;
} IdMap;
#define IDMAP_NULL ((IdMap){ 0 })

void idmap_deinit(IdMap *m);
/** idmap_put() - insert or replace. Return: 0 or -ENOMEM. */
int idmap_put(IdMap *m, uint64_t key, void *value);
void *idmap_get(const IdMap *m, uint64_t key);
/** idmap_remove() - Return: the removed value, or NULL. */
void *idmap_remove(IdMap *m, uint64_t key);
/** idmap_next() - iterate: start with *@pos = 0; returns NULL at the end. Removal of the
 * entry just returned is allowed (backward-shift deletion may move a later entry before
 * *pos, so callers that remove while iterating must restart or tolerate a miss). */
void *idmap_next(const IdMap *m, size_t *pos, uint64_t *ret_key);
