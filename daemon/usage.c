/* usage.c - per-user accounting and admin rights
 *
 * A UidUsage counts what one uid holds over all its connections (clients, watches, timers)
 * and paces its timers; the per-uid limits of the configuration are checked against it by
 * whoever creates the object. Records are kept in an IdMap keyed by uid and exist only
 * while the uid holds something: many short-lived users leave nothing behind. Admin rights
 * are a pure function of the peer's credentials and the configuration, so a reload can
 * recompute them.
 */

#include "usage.h"

#include <stdlib.h>
#include <unistd.h>

#include "config.h"

_Static_assert(IDMAP_KEYED(UidUsage, uid), "the uid map reads the key there");

UidUsage *usage_get(IdMap *uids, uid_t uid) {
        UidUsage *u = idmap_get(uids, uid);

        if (u)
                return u;
        u = calloc(1, sizeof(*u));
        if (!u)
                return NULL;
        u->uid = uid;
        if (idmap_put(uids, u) < 0) {
                free(u);
                return NULL;
        }
        return u;
}

/* Forget a uid's record once it holds nothing, so that many short-lived users do not
 * leave records behind. */
void usage_put(IdMap *uids, UidUsage *u) {
        if (u->clients == 0 && u->watches == 0 && u->timers == 0) {
                (void)idmap_remove(uids, u->uid);
                free(u);
        }
}

bool usage_is_admin(const Config *config, uid_t uid, gid_t gid, const gid_t *groups,
                    size_t n_groups) {
        if (uid == 0 || uid == geteuid())
                return true;
        if (!config->has_admin_gid)
                return false;
        if (gid == config->admin_gid)
                return true;
        for (size_t i = 0; i < n_groups; i++)
                if (groups[i] == config->admin_gid)
                        return true;
        return false;
}
