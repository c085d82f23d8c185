#pragma once
/* daemon-internal.h - what daemon.c shares with its halves that hand the state on: re-exec
 * (daemon-reexec.c) and restart through systemd's fd store (daemon-fdstore.c) */

#include "conn.h"
#include "daemon.h"
#include "fdset.h"
#include "server.h"
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

/** daemon_fdstore_wanted() - whether SIGTERM hands the state to the fd store: `fd-store` or
 * $FDSTORE, and a service manager ($NOTIFY_SOCKET). */
bool daemon_fdstore_wanted(const Daemon *d);
/** daemon_fdstore_push() - save the state and push it, the connections and watched fds (in
 * a carrier) and an unactivated listener to the fd store, then leave them as they are for
 * the next process: nothing may be sent or read after it succeeds. Return: 0, or -errno
 * (logged; nothing stays in the store, and the daemon can shut down as usual). */
int daemon_fdstore_push(Daemon *d);
