#pragma once
/* usage.h - per-user accounting: what one uid holds across its connections, and who is admin */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "idmap.h"
#include "pace.h"

typedef struct Config Config;

/* What one uid holds across all its connections: per-user limits are checked here. */
typedef struct UidUsage {
        uint64_t uid; /* a uid_t; first, 64 bits: the map's key (idmap.h) */
        unsigned clients;
        unsigned watches;
        unsigned timers;
        Pace timer_pace; /* max-timer-rate-per-uid over all its timers */
} UidUsage;

/** usage_get() - the uid's record in @uids (uid -> UidUsage), created on first use.
 * Return: NULL on OOM. */
UidUsage *usage_get(IdMap *uids, uid_t uid);
/** usage_put() - forget @u once it holds nothing (no clients, watches or timers). */
void usage_put(IdMap *uids, UidUsage *u);
/** usage_is_admin() - uid 0, the daemon's own uid, or a member of @config's admin group
 * (primary @gid or one of @groups). */
bool usage_is_admin(const Config *config, uid_t uid, gid_t gid, const gid_t *groups,
                    size_t n_groups);
