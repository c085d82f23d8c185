/* snapshot-load.c - the daemon's state, restored by the image an exec started
 *
 * The state file was written by an evd (snapshot-save.c), but it is parsed as if it were
 * hostile: a corrupt or foreign file must cost a fresh start, never a crash, a leak or an fd
 * adopted twice. So every record is checked, and every fd it names claimed from a scratch
 * copy of the inherited set, before anything is built; only then is the state rebuilt.
 */

#include "snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "notify.h"
#include "watch.h"

int snapshot_read(int fd, char **ret_buf, size_t *ret_len) {
        struct stat st;
        char *buf;
        size_t len = 0;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (st.st_size < 0 || (uint64_t)st.st_size > SNAPSHOT_MAX_BYTES)
                return -EFBIG;
        buf = malloc((size_t)st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        while (len < (size_t)st.st_size) {
                ssize_t n = pread(fd, buf + len, (size_t)st.st_size - len, (off_t)len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        int r = n < 0 ? -errno : -EIO;

                        free(buf);
                        return r;
                }
                len += (size_t)n;
        }
        buf[len] = 0;
        *ret_buf = buf;
        *ret_len = len;
        return 0;
}

static bool get_u64(const json_t *o, const char *key, bool required, uint64_t *ret) {
        const json_t *v = json_object_get(o, key);

        if (!v) {
                *ret = 0;
                return !required;
        }
        if (!json_is_integer(v) || json_integer_value(v) < 0)
                return false;
        *ret = (uint64_t)json_integer_value(v);
        return true;
}

static bool get_bool(const json_t *o, const char *key, bool *ret) {
        const json_t *v = json_object_get(o, key);

        *ret = v && json_is_true(v);
        return !v || json_is_boolean(v);
}

static bool get_fd(const json_t *o, int *ret) {
        uint64_t v;

        if (!get_u64(o, "fd", true, &v) || v < 3 || v > INT32_MAX)
                return false;
        *ret = (int)v;
        return true;
}

static bool u64_at(const json_t *a, size_t i, uint64_t *ret) {
        const json_t *v = json_array_get(a, i);

        if (!json_is_integer(v) || json_integer_value(v) < 0)
                return false;
        *ret = (uint64_t)json_integer_value(v);
        return true;
}

/* Version 1: [id, fd, events, "edge"|"oneshot", flags (1 armed, 2 passrights), wakeups (, tag)].
 * Version 2: [id, fd, events, flags (those, 4 edge, bits 4-7 the fd kind), wakeups (, tag)]. */
static bool parse_watch(const json_t *a, unsigned version, WatchRecord *w) {
        const unsigned known = SNAPSHOT_WATCH_ARMED | SNAPSHOT_WATCH_PASSRIGHTS |
                               (version >= 2 ? SNAPSHOT_WATCH_EDGE | 0xfu << SNAPSHOT_WATCH_KIND_SHIFT : 0u);
        size_t n = json_array_size(a), at = version >= 2 ? 3 : 4;
        uint64_t events, fd, flags;
        const char *mode = NULL;

        *w = (WatchRecord){ .tag = json_array_get(a, at + 2), .fd = -1 };
        if (!json_is_array(a) || (n != at + 2 && n != at + 3) || !u64_at(a, 0, &w->id) || w->id == 0 ||
            !u64_at(a, 1, &fd) || fd < 3 || fd > INT32_MAX || !u64_at(a, 2, &events) ||
            (events & ~(uint64_t)ENGINE_EVENTS_REQUESTABLE) || !u64_at(a, at, &flags) || (flags & ~(uint64_t)known) ||
            (flags >> SNAPSHOT_WATCH_KIND_SHIFT) >= _WATCH_KIND_MAX || !u64_at(a, at + 1, &w->wakeups))
                return false;
        w->fd = (int)fd;
        w->events = (uint32_t)events;
        w->armed = flags & SNAPSHOT_WATCH_ARMED;
        w->holds_passrights = flags & SNAPSHOT_WATCH_PASSRIGHTS;
        w->kind = (uint8_t)(flags >> SNAPSHOT_WATCH_KIND_SHIFT);
        if (version >= 2) {
                w->mode = flags & SNAPSHOT_WATCH_EDGE ? ENGINE_EDGE : ENGINE_ONESHOT;
                return true;
        }
        mode = json_string_value(json_array_get(a, 3));
        if (mode && strcmp(mode, "edge") == 0)
                w->mode = ENGINE_EDGE;
        else if (mode && strcmp(mode, "oneshot") == 0)
                w->mode = ENGINE_ONESHOT;
        else
                return false;
        return true;
}

/* [id, "monotonic"|"realtime", at_ns, interval_ns, expirations, held_due_ns|null (, tag)] */
static bool parse_timer(const json_t *a, TimerRecord *t) {
        const char *clock = json_string_value(json_array_get(a, 1));
        const json_t *held = json_array_get(a, 5);
        size_t n = json_array_size(a);

        *t = (TimerRecord){ .tag = json_array_get(a, 6) };
        if (!json_is_array(a) || (n != 6 && n != 7) || !u64_at(a, 0, &t->id) || t->id == 0 || !clock ||
            !u64_at(a, 2, &t->at_ns) || !u64_at(a, 3, &t->interval_ns) || !u64_at(a, 4, &t->expirations) ||
            !(json_is_null(held) || u64_at(a, 5, &t->held_due_ns)))
                return false;
        t->held = !json_is_null(held);
        if (strcmp(clock, "monotonic") == 0)
                t->clock = ENGINE_CLOCK_MONOTONIC;
        else if (strcmp(clock, "realtime") == 0)
                t->clock = ENGINE_CLOCK_REALTIME;
        else
                return false;
        return true;
}

static bool check_packets(const json_t *out) {
        size_t i;
        const json_t *p;

        if (!json_is_array(out))
                return false;
        json_array_foreach(out, i, p) {
                bool monitor_copy;
                size_t len = json_string_length(json_object_get(p, "data"));

                if (!json_is_string(json_object_get(p, "data")) || len == 0 || len > EVD_MAX_PACKET ||
                    !get_bool(p, "monitor_copy", &monitor_copy))
                        return false;
        }
        return true;
}

/* Check one client and claim its fds from @scratch. */
static bool check_client(const json_t *o, unsigned version, FdSet *scratch) {
        const json_t *name = json_object_get(o, "name"), *watches = json_object_get(o, "watches"),
                     *timers = json_object_get(o, "timers"), *item;
        uint64_t v;
        bool b;
        int fd;
        size_t i;

        if (!json_is_object(o) || !get_u64(o, "id", true, &v) || v == 0 || !get_fd(o, &fd) ||
            !fdset_claim(scratch, fd) || (name && (!json_is_string(name) || json_string_length(name) > CONN_MAX_NAME)) ||
            !get_u64(o, "connected_at_ns", false, &v) || !get_u64(o, "requests", false, &v) ||
            !get_u64(o, "notifications", false, &v) || !get_u64(o, "monitor_dropped", false, &v) ||
            !get_bool(o, "monitor", &b) || !get_bool(o, "monitor_connections", &b) || !check_packets(json_object_get(o, "out")) || !json_is_array(watches) ||
            !json_is_array(timers))
                return false;
        json_array_foreach(watches, i, item) {
                WatchRecord w;

                if (!parse_watch(item, version, &w) || !fdset_claim(scratch, w.fd))
                        return false;
        }
        json_array_foreach(timers, i, item) {
                TimerRecord t;

                if (!parse_timer(item, &t))
                        return false;
        }
        return true;
}

static bool check_histogram(const json_t *root, const char *key, bool required) {
        const json_t *h = json_object_get(root, key), *buckets = json_object_get(h, "buckets"), *item;
        uint64_t v;
        size_t i;

        if (!h)
                return !required;
        if (!json_is_array(buckets) || json_array_size(buckets) != HISTOGRAM_BUCKETS)
                return false;
        json_array_foreach(buckets, i, item)
                if (!json_is_integer(item) || json_integer_value(item) < 0)
                        return false;
        return get_u64(h, "count", false, &v) && get_u64(h, "sum_ns", false, &v) && get_u64(h, "max_ns", false, &v);
}

/* Absent (a state written before the histogram existed) leaves @h empty. */
static void restore_histogram(const json_t *o, Histogram *h) {
        const json_t *item;
        size_t i;

        json_array_foreach(json_object_get(o, "buckets"), i, item)
                h->buckets[i] = (uint64_t)json_integer_value(item);
        (void)get_u64(o, "count", false, &h->count);
        (void)get_u64(o, "sum_ns", false, &h->sum_ns);
        (void)get_u64(o, "max_ns", false, &h->max_ns);
}

static bool check_daemon(const json_t *root, unsigned version, const FdSet *fds) {
        const json_t *clients = json_object_get(root, "clients"), *stats = json_object_get(root, "stats"), *item;
        FdSet scratch = *fds;
        uint64_t v;
        size_t i;
        bool ok = true;

        if (!json_is_array(clients) || !json_is_object(stats) || !check_histogram(root, "latency", true) ||
            !check_histogram(root, "packet_cost", false) || !check_histogram(root, "timer_lateness", false) || !get_u64(root, "generation", true, &v) ||
            v >= UINT32_MAX)
                return false;
        for (const char *const *k = (const char *const[]){ "started_monotonic_ns", "started_realtime_ns",
                                                           "next_client_id", "next_watch_id", "next_timer_id",
                                                           "reexec_failures", NULL };
             *k; k++)
                if (!get_u64(root, *k, false, &v))
                        return false;
        for (size_t f = 0; f < daemon_stats_n_fields; f++)
                if (!get_u64(stats, daemon_stats_fields[f].name, false, &v))
                        return false;
        /* Claims go to a copy of the bitmap: nothing is taken from @fds until all is well. */
        scratch.bits = malloc(((size_t)fds->size + 63) / 64 * sizeof(uint64_t) + 1);
        if (!scratch.bits)
                return false;
        if (fds->size > 0)
                memcpy(scratch.bits, fds->bits, ((size_t)fds->size + 63) / 64 * sizeof(uint64_t));
        json_array_foreach(clients, i, item)
                if (!check_client(item, version, &scratch)) {
                        ok = false;
                        break;
                }
        free(scratch.bits);
        return ok;
}

static void restore_watch(Conn *c, const json_t *o, unsigned version, FdSet *fds, SnapshotCounts *counts) {
        WatchRecord rec;
        Watch *w;
        int r;

        (void)parse_watch(o, version, &rec);
        rec.fd = fdset_take(fds, rec.fd); /* checked: it is there */
        r = c->closing ? -ECONNRESET : watch_restore(c, &rec, &w);
        if (r >= 0) {
                counts->watches++;
                return;
        }
        (void)close(rec.fd);
        counts->dropped++;
        if (!c->closing) {
                /* The client believes in this watch: say it is gone. */
                TagText tag = { 0 };
                uint16_t tag_len = 0;
                LogContext ctx = conn_log_context(c);

                ctx.watch_id = rec.id;
                log_full(LOG_WARNING, -r, &ctx, "Cannot restore a watch; reporting it closed");
                (void)tag_store(&tag, &tag_len, rec.tag);
                notify_closed(c, rec.id, &tag, &tag_len, "error");
                tag_release(&tag, &tag_len);
        }
}

static void restore_client(Daemon *d, const json_t *o, unsigned version, FdSet *fds, const ConnOps *ops,
                           SnapshotCounts *counts) {
        const json_t *name = json_object_get(o, "name"), *item;
        uint64_t id = 0;
        bool monitor;
        size_t i;
        Conn *c = NULL;
        int fd = -1, r;

        (void)get_u64(o, "id", true, &id);
        (void)get_fd(o, &fd);
        fd = fdset_take(fds, fd); /* checked: it is there */
        /* The daemon must never block on a client: whoever handed the socket over may have
         * left it blocking (O_NONBLOCK is the file's, and an exec keeps it). */
        if (sd_is_socket_unix(fd, SOCK_SEQPACKET, 0, NULL, 0) <= 0) {
                (void)close(fd);
                r = -ENOTSOCK;
        } else if ((r = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, r | O_NONBLOCK) < 0) {
                r = -errno;
                (void)close(fd);
        } else
                r = conn_new(d, fd, ops, &c); /* consumes fd; applies today's client limits */
        if (r < 0) {
                log_full(LOG_WARNING, -r, NULL, "Cannot restore client %llu: dropping it", (unsigned long long)id);
                counts->dropped++;
                /* Its watched fds go too. */
                json_array_foreach(json_object_get(o, "watches"), i, item) {
                        WatchRecord rec;

                        (void)parse_watch(item, version, &rec);
                        (void)safe_close(fdset_take(fds, rec.fd));
                }
                return;
        }
        c->id = id;
        d->next_client_id = MAX(d->next_client_id, id);
        if (name && !(c->name = strdup(json_string_value(name))))
                log_warning("Out of memory restoring a client's name");
        (void)get_u64(o, "connected_at_ns", false, &c->connected_at);
        (void)get_u64(o, "requests", false, &c->requests);
        (void)get_u64(o, "notifications", false, &c->notifications);
        (void)get_u64(o, "monitor_dropped", false, &c->monitor_dropped);
        counts->clients++;

        json_array_foreach(json_object_get(o, "out"), i, item) {
                const json_t *data = json_object_get(item, "data");
                bool monitor_copy;

                (void)get_bool(item, "monitor_copy", &monitor_copy);
                r = monitor_copy ? conn_queue_monitor_copy(c, json_string_value(data), json_string_length(data))
                                 : conn_queue_packet(c, json_string_value(data), json_string_length(data));
                if (r < 0)
                        break; /* over today's max-queued-bytes: the client is being closed */
                counts->packets++;
        }
        (void)get_bool(o, "monitor", &monitor);
        if (monitor && !c->closing) {
                c->monitor = true;
                (void)get_bool(o, "monitor_connections", &c->monitor_connections);
                list_append(&d->monitors, &c->monitor_link);
                if (!c->admin)
                        conn_stop_monitor(c, "permission"); /* a reload took its rights away */
        }
        json_array_foreach(json_object_get(o, "watches"), i, item)
                restore_watch(c, item, version, fds, counts);
        json_array_foreach(json_object_get(o, "timers"), i, item) {
                TimerRecord rec;
                ClientTimer *t;

                (void)parse_timer(item, &rec);
                if (c->closing || (r = client_timer_restore(c, &rec, &t)) < 0) {
                        counts->dropped++;
                        continue;
                }
                counts->timers++;
        }
        /* Requests that came during the gap wait in the socket; output waits in `out`. */
        c->input_pending = true;
        conn_mark_dirty(c);
}

int snapshot_restore(Daemon *d, const char *buf, size_t len, FdSet *fds, const ConnOps *ops,
                     SnapshotCounts *ret) {
        json_auto_t *root = NULL;
        json_error_t error;
        const json_t *item;
        SnapshotCounts counts = { 0 };
        uint64_t version, v = 0;
        size_t i;

        root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &error);
        if (!json_is_object(root) || !json_is_string(json_object_get(root, "format")) ||
            strcmp(json_string_value(json_object_get(root, "format")), "evd-state") != 0 ||
            !get_u64(root, "version", true, &version) || version == 0)
                return -EBADMSG;
        if (version > SNAPSHOT_VERSION)
                return -EPROTONOSUPPORT;
        if (!check_daemon(root, (unsigned)version, fds))
                return -EBADMSG;

        json_array_foreach(json_object_get(root, "clients"), i, item)
                restore_client(d, item, (unsigned)version, fds, ops, &counts);

        (void)get_u64(root, "generation", true, &v);
        d->generation = (unsigned)v + 1;
        (void)get_u64(root, "reexec_failures", false, &d->reexec_failures);
        (void)get_u64(root, "started_monotonic_ns", false, &d->started_mono);
        (void)get_u64(root, "started_realtime_ns", false, &d->started_real);
        (void)get_u64(root, "next_client_id", false, &v);
        d->next_client_id = MAX(d->next_client_id, v);
        (void)get_u64(root, "next_watch_id", false, &v);
        d->next_watch_id = MAX(d->next_watch_id, v);
        (void)get_u64(root, "next_timer_id", false, &v);
        d->next_timer_id = MAX(d->next_timer_id, v);
        for (size_t f = 0; f < daemon_stats_n_fields; f++)
                (void)get_u64(json_object_get(root, "stats"), daemon_stats_fields[f].name,
                              false, (uint64_t *)((char *)&d->stats + daemon_stats_fields[f].offset));
        restore_histogram(json_object_get(root, "latency"), &d->latency);
        restore_histogram(json_object_get(root, "packet_cost"), &d->packet_cost);
        restore_histogram(json_object_get(root, "timer_lateness"), &d->timer_lateness);
        daemon_counts_changed(d);
        if (ret)
                *ret = counts;
        return 0;
}
