/*
 * obj-table.c - the watches and timers by local id: a hash table plus the creation-order
 * list. Storage only: what an Obj means, and the requests about it, are object.c's.
 * Ids are sequential, so the low bits spread well. It calls nothing else in client/.
 */

#include <errno.h>
#include <stdlib.h>

#include "macro.h"
#include "obj-table.h"

Obj *obj_get(struct evd_client *c, uint64_t id) {
        if (c->n_buckets == 0)
                return NULL;
        for (Obj *o = c->buckets[id & (c->n_buckets - 1)]; o; o = o->hnext)
                if (o->id == id)
                        return o;
        return NULL;
}

static int table_grow(struct evd_client *c) {
        size_t n = c->n_buckets ? c->n_buckets * 2 : 64;
        Obj **b;

        if (c->n_objs < c->n_buckets)
                return 0;
        b = calloc(n, sizeof(*b));
        if (!b)
                return -ENOMEM;
        for (size_t i = 0; i < c->n_buckets; i++)
                while (c->buckets[i]) {
                        Obj *o = c->buckets[i];

                        c->buckets[i] = o->hnext;
                        o->hnext = b[o->id & (n - 1)];
                        b[o->id & (n - 1)] = o;
                }
        free(c->buckets);
        c->buckets = b;
        c->n_buckets = n;
        return 0;
}

Obj *obj_new(struct evd_client *c, ObjKind kind) {
        Obj *o;
        size_t i;

        if (table_grow(c) < 0)
                return NULL;
        o = calloc(1, sizeof(*o));
        if (!o)
                return NULL;
        o->id = ++c->next_obj_id;
        o->kind = kind;
        o->fd = -1;
        i = o->id & (c->n_buckets - 1);
        o->hnext = c->buckets[i];
        c->buckets[i] = o;
        c->n_objs++;
        list_append(&c->objects, &o->link);
        return o;
}

/** obj_free() - unlink and free @o (closing the fd duplicate). Return: NULL. */
Obj *obj_free(struct evd_client *c, Obj *o) {
        Obj **p;

        if (!o)
                return NULL;
        for (p = &c->buckets[o->id & (c->n_buckets - 1)]; *p; p = &(*p)->hnext)
                if (*p == o) {
                        *p = o->hnext;
                        break;
                }
        c->n_objs--;
        list_remove(&c->objects, &o->link);
        (void)safe_close(o->fd);
        free(o);
        return NULL;
}

void objects_free_all(struct evd_client *c) {
        ListNode *n;

        while ((n = list_first(&c->objects)))
                (void)obj_free(c, container_of(n, Obj, link));
}
