/* idmap.c - open addressing with linear probing and backward-shift deletion
 *
 * No tombstones: removal shifts the following cluster back, so lookups stay short after
 * heavy churn (clients watch and unwatch all day). Load factor is kept at or below 3/4:
 * the map is part of what every watch costs, and linear probing stays short there.
 */

#include "idmap.h"

#include <errno.h>
#include <stdlib.h>

static inline size_t slot_of(const IdMap *m, uint64_t key) {
        /* Fibonacci hashing: ids are sequential, which linear probing alone would cluster. */
        return (size_t)((key * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & (m->capacity - 1);
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
                if (m->slots[i].key) {
                        size_t j = slot_of(&bigger, m->slots[i].key);
                        while (bigger.slots[j].key)
                                j = (j + 1) & (capacity - 1);
                        bigger.slots[j] = m->slots[i];
                }
        bigger.n = m->n;
        free(m->slots);
        *m = bigger;
        return 0;
}

int idmap_put(IdMap *m, uint64_t key, void *value) {
        size_t i;

        if (key == 0)
                return -EINVAL;
        if ((m->n + 1) * 4 > m->capacity * 3) {
                int r = resize(m, m->capacity ? m->capacity * 2 : 16);
                if (r < 0)
                        return r;
        }
        for (i = slot_of(m, key); m->slots[i].key; i = (i + 1) & (m->capacity - 1))
                if (m->slots[i].key == key) {
                        m->slots[i].value = value;
                        return 0;
                }
        m->slots[i] = (IdMapSlot){ key, value };
        m->n++;
        return 0;
}

void *idmap_get(const IdMap *m, uint64_t key) {
        if (m->capacity == 0 || key == 0)
                return NULL;
        for (size_t i = slot_of(m, key); m->slots[i].key; i = (i + 1) & (m->capacity - 1))
                if (m->slots[i].key == key)
                        return m->slots[i].value;
        return NULL;
}

void *idmap_remove(IdMap *m, uint64_t key) {
        size_t mask = m->capacity - 1, i, j;
        void *value;

        if (m->capacity == 0 || key == 0)
                return NULL;
        for (i = slot_of(m, key); m->slots[i].key != key; i = (i + 1) & mask)
                if (!m->slots[i].key)
                        return NULL;
        value = m->slots[i].value;
        /* Backward shift: pull later entries of the cluster into the hole when the hole lies
         * between their home slot and where they sit. */
        for (j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
                size_t home = slot_of(m, m->slots[j].key);
                if (((j - home) & mask) >= ((j - i) & mask)) {
                        m->slots[i] = m->slots[j];
                        i = j;
                }
        }
        m->slots[i] = (IdMapSlot){ 0 };
        m->n--;
        if (m->capacity > 64 && m->n * 8 < m->capacity)
                (void)resize(m, m->capacity / 2);
        return value;
}

void *idmap_next(const IdMap *m, size_t *pos, uint64_t *ret_key) {
        for (; *pos < m->capacity; (*pos)++)
                if (m->slots[*pos].key) {
                        if (ret_key)
                                *ret_key = m->slots[*pos].key;
                        return m->slots[(*pos)++].value;
                }
        return NULL;
}
