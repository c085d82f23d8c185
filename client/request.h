#pragma once
/* request.h - requests from call to completion, replies, and the session */

#include "client-internal.h"

Request *request_new(RequestKind kind);
Request *request_free(Request *req);
void request_enqueue(struct evd_client *c, Request *req);
void request_complete(struct evd_client *c, Request *req, int r, json_t *result, RemoteError *err);
int request_wait(struct evd_client *c, Request *req, int timeout_ms, json_t **ret_result);
int request_finish(struct evd_client *c, Request *req, bool sync, int timeout_ms,
                   json_t **ret_result);
void client_flush(struct evd_client *c);
unsigned client_read(struct evd_client *c, unsigned max);
void client_requests_reset(struct evd_client *c, int reason);
void client_lost(struct evd_client *c, int reason);
void client_connected(struct evd_client *c);
int client_try_reconnect(struct evd_client *c);
