#pragma once
/* daemon-internal.h - what daemon.c shares with its re-exec half (daemon-reexec.c) */

#include "conn.h"
#include "daemon.h"
#include "fdset.h"
#include "state.h"

extern const ConnOps daemon_conn_ops;

/** daemon_reexec() - save the state and exec the binary at d->exe_path with the same
 * arguments, keeping the fds the state names. Returns only if that failed (logged,
 * counted): this image then goes on serving, unchanged. */
void daemon_reexec(Daemon *d);
/** daemon_restore() - rebuild the previous image's state from @state_fd (consumed); every fd
 * of @inherited that it does not name is closed. On a state that cannot be read, this is a
 * fresh start: every inherited connection is closed, and its client sees EOF. */
void daemon_restore(Daemon *d, int state_fd, FdSet *inherited);
