#pragma once
/* snapshot.h - the daemon's whole state as it crosses an exec (protocol/STATE.md) */

#include <stddef.h>

#include "conn.h"
#include "fdset.h"
#include "state.h"

/* The version this build writes; it reads this one and every older one. */
#define SNAPSHOT_VERSION 2
/* A watch record's flags (STATE.md): version 1 had only the first two, and the mode as a
 * string of its own. */
#define SNAPSHOT_WATCH_ARMED 1u
#define SNAPSHOT_WATCH_PASSRIGHTS 2u
#define SNAPSHOT_WATCH_EDGE 4u
#define SNAPSHOT_WATCH_KIND_SHIFT 4 /* bits 4-7: WATCH_KIND_* */

/* Refused above this: a state file larger than any the limits allow is not ours. */
#define SNAPSHOT_MAX_BYTES (1024u * 1024u * 1024u)

typedef struct SnapshotCounts {
        unsigned clients, watches, timers, packets;
        unsigned dropped; /* objects the new image could not take over (logged) */
} SnapshotCounts;

/** snapshot_save() - park every client's queued notices as packets (notify_park()) and
 * write the state into a new memfd, *@ret_fd (close-on-exec, offset 0). The daemon goes on
 * unchanged if the exec then fails. Return: 0 or -errno. */
int snapshot_save(Daemon *d, int *ret_fd, SnapshotCounts *ret);

/** snapshot_for_each_fd() - call @fn on every fd the state names (connections, watched
 * fds): what must stay open across the exec. Stops at, and returns, @fn's first error. */
int snapshot_for_each_fd(Daemon *d, int (*fn)(int fd, void *userdata), void *userdata);

/** snapshot_read() - the contents of state fd @fd (borrowed), in *@ret_buf (freed by the
 * caller), bounded by SNAPSHOT_MAX_BYTES. Return: 0, -EFBIG, -errno. */
int snapshot_read(int fd, char **ret_buf, size_t *ret_len);

/** snapshot_restore() - rebuild clients, watches, timers, queued packets, counters and ids
 * from @buf. Every fd it names must be in @fds (inherited, unclaimed) and is claimed there;
 * connections go to @ops. All is checked before anything is built: a state that is not
 * well-formed, or names an fd twice or one not inherited, is refused whole (-EBADMSG) and
 * nothing is claimed. Later failures (a limit, the engine refusing an fd) drop that object
 * only, logged, counted in @ret->dropped; a dropped watch is reported `closed`.
 * Return: 0, -EBADMSG, -EPROTONOSUPPORT (a newer version), -ENOMEM. */
int snapshot_restore(Daemon *d, const char *buf, size_t len, FdSet *fds, const ConnOps *ops,
                     SnapshotCounts *ret);
