#pragma once
/* connection.h - libevd's bottom layer: socket, polled fd, clock, back-off, last error */

#include "client-internal.h"

uint64_t now_usec(clockid_t clock);
void remote_error_clear(RemoteError *e);
void client_begin(struct evd_client *c);
void client_set_last_error(struct evd_client *c, RemoteError *e);
void client_update(struct evd_client *c);
void client_close_socket(struct evd_client *c);
void client_schedule_reconnect(struct evd_client *c);
int client_open_socket(struct evd_client *c, bool blocking);
