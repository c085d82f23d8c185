#pragma once
/* idmap.h - uint64 key -> object hash map (open addressing, linear probing) */

#include <stddef.h>
#include <stdint.h>

/* The map holds only pointers: each object begins with its uint64_t key (a Watch's or a
 * ClientTimer's id, a UidUsage's uid), which the map reads there. A slot is then 8 bytes,
 * not 16: at a million timers that is 17 MB less. NULL marks an empty slot, so any key,
 * 0 included, is allowed; NULL is not a value. */
typedef struct IdMap {
        void **slots;
        size_t capacity; /* a power of two, or 0 */
        size_t n;
} IdMap;
#define IDMAP_NULL ((IdMap){ 0 })

/* For the objects a map holds: `_Static_assert(IDMAP_KEYED(Watch, id), ...)`. */
#define IDMAP_KEYED(type, member) \
        (offsetof(type, member) == 0 && sizeof(((type *)0)->member) == sizeof(uint64_t))

void idmap_deinit(IdMap *m);
/** idmap_put() - insert @value under the key it holds, which must not be in the map yet
 * (a fresh id, or one idmap_get() did not find): a second object with the same key would
 * shadow or be shadowed. Return: 0, -EINVAL (NULL), -ENOMEM. */
int idmap_put(IdMap *m, void *value);
void *idmap_get(const IdMap *m, uint64_t key);
/** idmap_remove() - Return: the removed value, or NULL. */
void *idmap_remove(IdMap *m, uint64_t key);
