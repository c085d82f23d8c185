#pragma once
/* pending.h - the callback queue evd_client_dispatch() runs */

#include "client-internal.h"

Pending *pending_add(struct evd_client *c, PendingKind kind);
void pending_add_done(struct evd_client *c, evd_done_fn done, void *userdata, int r);
Pending *pending_free(Pending *p);
int client_run_pending(struct evd_client *c);
