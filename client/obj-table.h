#pragma once
/* obj-table.h - the watches and timers by local id (storage only) */

#include "client-internal.h"

Obj *obj_get(struct evd_client *c, uint64_t id);
Obj *obj_new(struct evd_client *c, ObjKind kind);
Obj *obj_free(struct evd_client *c, Obj *o);
void objects_free_all(struct evd_client *c);
