/* idmap.c - open addressing with linear probing and backward-shift deletion
 *
 * No tombstones: removal shifts the following cluster back, so lookups stay short after
 * heavy churn (clients watch and unwatch all day). Load factor is kept at or below 3/4:
 * the map is part of what every watch and timer costs, and linear probing stays short
 * there. Slots hold only the object (its key is its first member, idmap.h), so a lookup's
 * probe reads the object: the one it finds is the one its caller reads next anyway, and
 * with sequential ids hashed apart most lookups probe once. Inserting reads none (the key
 * is new); growing and the backward shift of a removal read the keys they move.
 */

#include "idmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static inline uint64_t key_of(const void *value) {
        uint64_t key;

        memcpy(&key, value, sizeof(key));
        return key;
}

static inline size_t slot_of(size_t capacity, uint64_t key) {
        /* Fibonacci hashing: ids are sequential, which linear probing alone would cluster. */
        return (size_t)((key * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & (capacity - 1);
}

void idmap_deinit(IdMap *m) {
        free(m->slots);
        *m = IDMAP_NULL;
}

static int resize(IdMap *m, size_t capacity) {
        IdMap bigger = { .capacity = capacity };

        bigger.slots = calloc(capacity, sizeof(*bigger.slots));
        if (!bigger.slots)
                return -ENOMEM;
        for (size_t i = 0; i < m->capacity; i++)
                if (m->slots[i]) {
                        size_t j = slot_of(capacity, key_of(m->slots[i]));
                        while (bigger.slots[j])
                                j = (j + 1) & (capacity - 1);
                        bigger.slots[j] = m->slots[i];
                }
        bigger.n = m->n;
        free(m->slots);
        *m = bigger;
        return 0;
}

int idmap_put(IdMap *m, void *value) {
        uint64_t key;
        size_t i;

        if (!value)
                return -EINVAL;
        key = key_of(value);
        if ((m->n + 1) * 4 > m->capacity * 3) {
                int r = resize(m, m->capacity ? m->capacity * 2 : 16);
                if (r < 0)
                        return r;
        }
        /* The key is not in the map (idmap.h): the first empty slot of its probe sequence
         * is where it goes, and no object on the way needs reading. */
        for (i = slot_of(m->capacity, key); m->slots[i]; i = (i + 1) & (m->capacity - 1))
                ;
        m->slots[i] = value;
        m->n++;
        return 0;
}

static size_t find(const IdMap *m, uint64_t key) {
        for (size_t i = slot_of(m->capacity, key); m->slots[i]; i = (i + 1) & (m->capacity - 1))
                if (key_of(m->slots[i]) == key)
                        return i;
        return SIZE_MAX;
}

void *idmap_get(const IdMap *m, uint64_t key) {
        size_t i;

        if (m->capacity == 0)
                return NULL;
        i = find(m, key);
        return i == SIZE_MAX ? NULL : m->slots[i];
}

void *idmap_remove(IdMap *m, uint64_t key) {
        size_t mask = m->capacity - 1, i, j;
        void *value;

        if (m->capacity == 0 || (i = find(m, key)) == SIZE_MAX)
                return NULL;
        value = m->slots[i];
        /* Backward shift: pull later entries of the cluster into the hole when the hole lies
         * between their home slot and where they sit. */
        for (j = (i + 1) & mask; m->slots[j]; j = (j + 1) & mask) {
                size_t home = slot_of(m->capacity, key_of(m->slots[j]));
                if (((j - home) & mask) >= ((j - i) & mask)) {
                        m->slots[i] = m->slots[j];
                        i = j;
                }
        }
        m->slots[i] = NULL;
        m->n--;
        if (m->capacity > 64 && m->n * 8 < m->capacity)
                (void)resize(m, m->capacity / 2);
        return value;
}
