/* conn.c - one client connection
 *
 * Input: the socket is an edge-mode source; each wakeup reads up to CONN_READ_BUDGET
 * packets (fairness between clients) and stops early while the client's unsent output
 * exceeds CONN_PAUSE_BYTES (back-pressure: a client that pipelines requests without
 * reading replies is paused, not fed memory). Left-over input is picked up by the
 * daemon's work pass, since an edge source will not report it again.
 *
 * Output: a reply is sent at once when nothing is queued before it, else appended to `out`
 * (replies keep request order); notifications are queued structured and sent by the work
 * pass, once per iteration. The replies to a batch are encoded one by one as its requests
 * run and packed into packets as they fill, so a batch never exists as one jansson tree;
 * their bytes are charged to the packet's reply budget (conn_reply_budget()) and, once it
 * is spent, the rest of the batch is not run but answered with EVD_ERR_REPLY_BUDGET: one
 * packet costs the daemon at most about that much memory and time.
 *
 * A request that parses is handed to the dispatcher the connection was given (ConnOps,
 * methods_call() in evd), and queued notices are flushed through it too: this file knows
 * packets, framing, queues and credentials, not what a method does or a notice says.
 *
 * Every fd of a packet is owned by its FdList until a request takes it; whatever is left is
 * closed when the packet is done.
 *
 * Closing is deferred to the end of the work pass of the same iteration (conn_close()), so
 * that no callback, list walk or batch ever sees a freed connection.
 */

#include "conn.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "engine.h"
#include "jsonrpc.h"
#include "macro.h"
#include "state.h"
#include "usage.h"
#include "wire.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

/* Larger batches are refused whole: each request costs a reply, and the replies of a
 * batch must come back in (at most a few) packets. */
#define MAX_BATCH 1024
/* SO_PEERGROUPS room for a first try: most peers have a handful of groups. */
#define GROUPS_GUESS 64

LogContext conn_log_context(const Conn *c) {
        return (LogContext){ .client_id = c->id, .pid = c->pid, .uid = c->uid, .has_peer = true };
}

bool conn_has_output(const Conn *c) {
        return list_first(&c->out) || list_first(&c->notices);
}

void conn_mark_dirty(Conn *c) {
        if (!list_node_linked(&c->dirty_link))
                list_append(&c->daemon->dirty, &c->dirty_link);
        daemon_schedule(c->daemon);
}

static void set_want_out(Conn *c, bool on) {
        if (c->want_out == on || c->closing)
                return;
        c->want_out = on;
        (void)source_io_modify(c->source, ENGINE_IN | ENGINE_RDHUP | (on ? ENGINE_OUT : 0), ENGINE_EDGE);
}

static int queue_packet(Conn *c, const void *data, size_t len, bool monitor_copy) {
        Daemon *d = c->daemon;
        OutPacket *p;

        if (c->closing)
                return -ECONNRESET;
        if (c->queued_bytes + len > d->config.limits.queued_bytes) {
                conn_close(c, "output limit exceeded: the client does not read its replies", true);
                return -ENOBUFS;
        }
        p = malloc(sizeof(*p) + len);
        if (!p) {
                conn_close(c, "out of memory queueing a reply", true);
                return -ENOMEM;
        }
        p->len = len;
        p->monitor_copy = monitor_copy;
        memcpy(p->data, data, len);
        list_append(&c->out, &p->link);
        c->queued_bytes += len;
        conn_mark_dirty(c);
        return 0;
}

int conn_queue_packet(Conn *c, const void *data, size_t len) {
        return queue_packet(c, data, len, false);
}

int conn_queue_monitor_copy(Conn *c, const void *data, size_t len) {
        return queue_packet(c, data, len, true);
}

void conn_stop_monitor(Conn *c, const char *reason) {
        json_auto_t *note = NULL;
        char buf[256]; /* {"jsonrpc":"2.0","method":"monitor-ended","params":{"reason":...}} */
        size_t len;
        ListNode *node, *next;

        if (!c->monitor)
                return;
        c->monitor = false;
        list_remove(&c->daemon->monitors, &c->monitor_link);
        /* Copies still queued were meant for a monitor this connection no longer is; a
         * SEQPACKET packet is sent whole or not at all, so none of them is half sent. */
        for (node = list_first(&c->out); node; node = next) {
                OutPacket *p = container_of(node, OutPacket, link);

                next = list_next(&c->out, node);
                if (!p->monitor_copy)
                        continue;
                list_remove(&c->out, node);
                c->queued_bytes -= p->len;
                free(p);
        }
        note = jsonrpc_notification("monitor-ended", json_pack("{s:s}", "reason", reason));
        if (note && jsonrpc_encode(note, buf, sizeof(buf), &len) >= 0)
                (void)conn_queue_packet(c, buf, len);
        else
                conn_close(c, "out of memory ending a monitor", true);
}

static int conn_send_or_queue(Conn *c, const void *data, size_t len) {
        Daemon *d = c->daemon;
        int r;

        if (c->closing)
                return -ECONNRESET;
        if (list_first(&c->out) || c->want_out)
                return conn_queue_packet(c, data, len);
        r = wire_send(c->fd, data, len, NULL, 0);
        if (r == -EAGAIN)
                return conn_queue_packet(c, data, len);
        if (r < 0) {
                conn_close(c, "send failed", r != -EPIPE && r != -ECONNRESET);
                return r;
        }
        d->stats.packets_out++;
        d->stats.bytes_out += len;
        return 0;
}

static json_t *error_reply(Conn *c, json_t *id, int code, const char *param, const char *why) {
        c->daemon->stats.errors++;
        return jsonrpc_error(id, code, NULL, why || param ? jsonrpc_error_data(param, why) : NULL);
}

size_t conn_encode_reply(Conn *c, json_t *id, json_t *reply, char *buf, size_t size) {
        json_auto_t *r = reply;
        size_t len;
        int k;

        if (!r)
                return 0;
        k = jsonrpc_encode(r, buf, size, &len);
        if (k == -EMSGSIZE) {
                json_decref(r);
                c->daemon->stats.errors++;
                r = jsonrpc_error(id, EVD_ERR_TOO_LARGE, NULL,
                                  jsonrpc_error_data(NULL, "the reply does not fit in one packet"));
                k = r ? jsonrpc_encode(r, buf, size, &len) : -ENOMEM;
        }
        return k < 0 ? 0 : len;
}

/* Whether the client whose turn began at @turn has had it (config max-turn-us). */
static bool turn_over(const Daemon *d, uint64_t turn) {
        return monotonic_ns() - turn >= (uint64_t)d->config.limits.turn_us * NSEC_PER_USEC;
}

size_t conn_reply_budget(const Daemon *d) {
        return MAX((size_t)EVD_MAX_PACKET, MIN((size_t)CONN_REPLY_BUDGET, d->config.limits.queued_bytes / 4));
}

/* The replies of one packet as they are made: a batch's are packed into arrays in
 * d->reply_buf ([0] is kept for '['), a single one goes out as it is. */
typedef struct Replies {
        Conn *c;
        bool batch;
        size_t len;
        unsigned count;
        size_t charged; /* against budget */
        size_t budget;
} Replies;

static void replies_flush(Replies *rs) {
        char *buf = rs->c->daemon->reply_buf;

        if (rs->count == 0)
                return;
        buf[0] = '[';
        buf[rs->len++] = ']';
        (void)conn_send_or_queue(rs->c, buf, rs->len);
        rs->len = 1;
        rs->count = 0;
}

/* The error for every request of a packet whose fds were lost (PROTOCOL.md 2.1), or 0. */
static int fds_lost_error(const WirePacket *pkt) {
        if (!pkt->fds_truncated)
                return 0;
        return pkt->fds_no_room ? EVD_ERR_NO_FDS : EVD_ERR_FDS_TRUNCATED;
}

static const char *fds_lost_why(int code) {
        return code == EVD_ERR_NO_FDS ? "the daemon is out of file descriptors; no fd was kept"
                                      : "more than 32 fds on the packet; none was kept";
}

/* @len bytes at @item: one encoded reply, small enough for "[item]" to fit a packet. */
static void replies_add(Replies *rs, const char *item, size_t len) {
        char *buf = rs->c->daemon->reply_buf;

        if (len == 0 || rs->c->closing)
                return;
        if (!rs->batch) {
                (void)conn_send_or_queue(rs->c, item, len);
                return;
        }
        if (rs->count > 0 && rs->len + 1 + len + 1 > EVD_MAX_PACKET)
                replies_flush(rs);
        if (rs->count > 0)
                buf[rs->len++] = ',';
        memcpy(buf + rs->len, item, len);
        rs->len += len;
        rs->count++;
}

/* One request object of a packet, its reply encoded into @buf. Returns the reply's length
 * (0: none); *@cost is what it charges to the packet's budget, of which @budget is left
 * (0: spent, the request is not run). */
static size_t handle_request(Conn *c, json_t *msg, FdList *fds, int fds_lost, size_t budget, char *buf,
                             size_t size, size_t *cost) {
        Daemon *d = c->daemon;
        JsonRpcRequest req = { 0 };
        const char *why = NULL;
        int code = EVD_ERR_INVALID_REQUEST;
        json_t *err;

        *cost = 0;
        if (jsonrpc_request_check(msg, &req, &code, &why) < 0)
                return conn_encode_reply(c, req.id, error_reply(c, req.id, code, NULL, why), buf, size);
        c->requests++;
        d->stats.requests++;
        if (fds_lost)
                /* The kernel dropped fds: running the request could act on the wrong ones. */
                return req.id ? conn_encode_reply(c, req.id,
                                               error_reply(c, req.id, fds_lost, NULL, fds_lost_why(fds_lost)),
                                               buf, size)
                              : 0;
        if (d->shutting_down)
                return req.id ? conn_encode_reply(c, req.id, error_reply(c, req.id, EVD_ERR_SHUTTING_DOWN, NULL, NULL),
                                               buf, size)
                              : 0;
        if (budget == 0) {
                /* Not run: the client sends it again, in a packet of its own budget. */
                if (!req.id)
                        return 0;
                err = error_reply(c, req.id, EVD_ERR_REPLY_BUDGET, NULL,
                                  "the replies to this packet reached their budget: send the rest again");
                if (err && json_object_set_new(json_object_get(json_object_get(err, "error"), "data"), "limit",
                                               json_integer((json_int_t)conn_reply_budget(d))) < 0)
                        err = (json_decref(err), NULL);
                return conn_encode_reply(c, req.id, err, buf, size);
        }
        return c->ops->dispatch(c, &req, fds, budget, buf, size, cost);
}

/* @requests (stolen) become @c's batch in progress, with the packet's @fds (taken: @fds is
 * left empty). */
static void batch_begin(Conn *c, json_t *requests, FdList *fds, int fds_lost) {
        c->batch.requests = requests;
        c->batch.next = 0;
        c->batch.fds = *fds;
        *fds = (FdList)FD_LIST_NULL;
        c->batch.fds_lost = fds_lost;
        c->batch.charged = 0;
        c->daemon->batches_running++;
}

static void batch_end(Conn *c) {
        if (!c->batch.requests)
                return;
        c->batch.requests = (json_decref(c->batch.requests), NULL);
        fd_list_close(&c->batch.fds);
        free(c->batch.held);
        c->batch.held = NULL;
        c->batch.held_len = 0;
        c->batch.held_count = 0;
        c->daemon->batches_running--;
}

/* The batch's unsent replies, from d->reply_buf into the batch till its next turn; if no
 * room can be had for them, they go out now (a batch's replies may span packets). */
static void batch_hold(Conn *c, Replies *rs) {
        if (rs->count == 0)
                return;
        if (!c->batch.held && !(c->batch.held = malloc(EVD_MAX_PACKET))) {
                replies_flush(rs);
                return;
        }
        c->batch.held_len = rs->len - 1;
        c->batch.held_count = rs->count;
        memcpy(c->batch.held, c->daemon->reply_buf + 1, c->batch.held_len);
}

/* Run the batch in progress until it ends or @c's turn (begun at @turn) is over; the
 * replies made meanwhile go out, the rest follow in later turns. A batch of 1,024 listings
 * held the loop 4-16 ms in one go, and every other client waited for all of it. Return:
 * whether it ended. */
static bool batch_run(Conn *c, uint64_t turn) {
        Daemon *d = c->daemon;
        Replies rs = { .c = c, .len = 1, .budget = conn_reply_budget(d), .batch = true };
        size_t n = json_array_size(c->batch.requests), cost, len;

        if (c->batch.held_count > 0) {
                memcpy(d->reply_buf + 1, c->batch.held, c->batch.held_len);
                rs.len = 1 + c->batch.held_len;
                rs.count = c->batch.held_count;
                c->batch.held_len = 0;
                c->batch.held_count = 0;
        }
        while (c->batch.next < n && !c->closing) {
                json_t *req = json_array_get(c->batch.requests, c->batch.next++);

                /* Room for "[reply]": one reply always fits a packet of its own. */
                len = handle_request(c, req, &c->batch.fds, c->batch.fds_lost,
                                     c->batch.charged < rs.budget ? rs.budget - c->batch.charged : 0,
                                     d->encode_buf, sizeof(d->encode_buf) - 2, &cost);
                c->batch.charged += cost;
                replies_add(&rs, d->encode_buf, len);
                if (turn_over(d, turn))
                        break;
        }
        if (c->batch.next < n && !c->closing) {
                batch_hold(c, &rs);
                return false;
        }
        replies_flush(&rs);
        batch_end(c);
        return true;
}

static void handle_packet(Conn *c, const WirePacket *pkt, FdList *fds, uint64_t turn) {
        Daemon *d = c->daemon;
        json_auto_t *msg = NULL;
        json_t *reply = NULL;
        json_error_t jerr;
        Replies rs = { .c = c, .len = 1, .budget = conn_reply_budget(d) };
        int fds_lost = fds_lost_error(pkt), r;
        size_t cost, len;

        d->stats.packets_in++;
        d->stats.bytes_in += pkt->len;
        d->stats.fds_in += fds->n;
        if (pkt->truncated) {
                reply = error_reply(c, NULL, EVD_ERR_TOO_LARGE, NULL, "packet larger than 65536 bytes");
                goto out;
        }
        if (pkt->len == 0)
                return; /* an empty packet carries no request (PROTOCOL.md 1.1) */
        r = jsonrpc_parse(d->recv_buf, pkt->len, &msg, &jerr);
        if (r == -EINVAL) {
                reply = error_reply(c, NULL, EVD_ERR_INVALID_REQUEST, NULL, "not an object or an array");
                goto out;
        }
        if (r < 0) {
                reply = error_reply(c, NULL, fds_lost ? fds_lost : EVD_ERR_PARSE, NULL,
                                    r == -EBADMSG ? jerr.text : "cannot parse");
                goto out;
        }
        if (json_is_object(msg)) {
                len = handle_request(c, msg, fds, fds_lost, rs.budget, d->encode_buf,
                                     sizeof(d->encode_buf), &cost);
                replies_add(&rs, d->encode_buf, len);
                return;
        }
        if (json_array_size(msg) == 0) {
                reply = error_reply(c, NULL, EVD_ERR_INVALID_REQUEST, NULL, "empty batch");
                goto out;
        }
        if (json_array_size(msg) > MAX_BATCH) {
                reply = error_reply(c, NULL, EVD_ERR_INVALID_REQUEST, NULL, "batch of more than 1024 requests");
                goto out;
        }
        batch_begin(c, TAKE_PTR(msg), fds, fds_lost);
        (void)batch_run(c, turn);
        return;
out:
        len = conn_encode_reply(c, NULL, reply, d->encode_buf, sizeof(d->encode_buf));
        replies_add(&rs, d->encode_buf, len);
}

void conn_read(Conn *c) {
        Daemon *d = c->daemon;
        uint64_t turn = monotonic_ns();

        c->read_this_pass = true;
        for (int i = 0; i < CONN_READ_BUDGET; i++) {
                _cleanup_fd_list_ FdList fds = FD_LIST_NULL;
                WirePacket pkt;
                uint64_t start;
                int r;

                if (c->closing || c->eof)
                        return;
                start = monotonic_ns();
                /* A batch goes on before anything the client sent after it is read, even
                 * with output waiting (its replies are bounded by the budget, and the
                 * notices waiting behind them would otherwise wait for ever); a part of one
                 * counts in packet_cost as the time it held the loop. */
                if (conn_in_batch(c)) {
                        bool ended = batch_run(c, turn);

                        histogram_add(&d->packet_cost, monotonic_ns() - start);
                        if (!ended)
                                break;
                        continue;
                }
                if (c->queued_bytes >= CONN_PAUSE_BYTES) {
                        c->input_pending = true; /* resumed by conn_flush() */
                        return;
                }
                if (i > 0 && turn_over(d, turn))
                        break;
                /* A re-exec or fd-store hand-over waits for the batches in progress; no new
                 * one may start meanwhile (a client could keep it waiting for ever). What is
                 * not read stays in the socket for the next image. */
                if (d->reexec_requested || d->store_requested) {
                        c->input_pending = true;
                        conn_mark_dirty(c); /* read on if the exec fails */
                        return;
                }
                r = wire_recv(c->fd, d->recv_buf, sizeof(d->recv_buf) - 1, &fds, &pkt);
                if (r == -EAGAIN) {
                        c->input_pending = false;
                        return;
                }
                if (r < 0) {
                        conn_close(c, "receive failed", r != -ECONNRESET);
                        return;
                }
                if (pkt.eof) {
                        c->eof = true;
                        c->input_pending = false;
                        if (!conn_has_output(c))
                                conn_close(c, "disconnected", false);
                        return;
                }
                handle_packet(c, &pkt, &fds, turn);
                histogram_add(&d->packet_cost, monotonic_ns() - start);
                if (conn_in_batch(c))
                        break; /* the turn is over: the rest of the batch next time */
        }
        c->input_pending = true;
        conn_mark_dirty(c);
}

void conn_flush(Conn *c) {
        Daemon *d = c->daemon;
        ListNode *node;
        int r;

        if (c->closing)
                return;
        while ((node = list_first(&c->out))) {
                OutPacket *p = container_of(node, OutPacket, link);

                r = wire_send(c->fd, p->data, p->len, NULL, 0);
                if (r == -EAGAIN) {
                        set_want_out(c, true);
                        return;
                }
                if (r < 0) {
                        conn_close(c, "send failed", r != -EPIPE && r != -ECONNRESET);
                        return;
                }
                d->stats.packets_out++;
                d->stats.bytes_out += p->len;
                list_remove(&c->out, node);
                c->queued_bytes -= p->len;
                free(p);
        }
        /* Not while a batch holds replies: a notice never overtakes a reply made before it
         * (PROTOCOL.md, section 4). */
        if (list_first(&c->notices) && c->batch.held_count == 0) {
                r = c->ops->flush_notices(c);
                if (r == -EAGAIN) {
                        set_want_out(c, true);
                        return;
                }
                if (r < 0) {
                        if (!c->closing)
                                conn_close(c, "send failed", r != -EPIPE && r != -ECONNRESET);
                        return;
                }
        }
        set_want_out(c, false);
        if (c->eof)
                conn_close(c, "disconnected", false);
        else if (c->input_pending)
                conn_mark_dirty(c); /* paused or over budget: the work pass reads on */
}

static int conn_io_cb(EngineSource *s, int fd, uint32_t revents, void *userdata) {
        Conn *c = userdata;

        if (c->closing)
                return 0;
        if (revents & ENGINE_OUT)
                conn_flush(c);
        if (revents & (ENGINE_IN | ENGINE_HUP | ENGINE_ERR | ENGINE_RDHUP))
                conn_read(c);
        return 0;
}

/* Race-free pid where the kernel has SO_PEERPIDFD (6.5): the pidfd pins the process, and
 * its fdinfo says which pid it has in our namespace (-1 once it exited). */
static pid_t peer_pid_from_pidfd(int fd, pid_t fallback) {
        _cleanup_close_ int pidfd = -1;
        _cleanup_(fclosep) FILE *f = NULL;
        socklen_t len = sizeof(pidfd);
        char path[64], line[128];
        int pid;

        if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) < 0 || pidfd < 0)
                return fallback;
        snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
        f = fopen(path, "re");
        if (!f)
                return fallback;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "Pid: %d", &pid) == 1)
                        return pid > 0 ? pid : fallback;
        return fallback;
}

/* The peer's supplementary groups, as many as it has (up to the kernel's NGROUPS_MAX,
 * 65536): a short buffer gets ERANGE and the size needed, and dropping the rest would
 * drop admin-group membership. *ret is NULL when there are none. */
static int peer_groups(int fd, gid_t **ret, size_t *ret_n) {
        _cleanup_free_ gid_t *groups = NULL;
        socklen_t len = GROUPS_GUESS * sizeof(gid_t);

        for (;;) {
                socklen_t room = len;
                gid_t *g = realloc(groups, room);

                if (!g)
                        return -ENOMEM;
                groups = g;
                if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0)
                        break;
                if (errno != ERANGE || len <= room)
                        return -errno;
        }
        *ret_n = len / sizeof(gid_t);
        *ret = *ret_n > 0 ? TAKE_PTR(groups) : NULL;
        return 0;
}

/* A connection over a quota: one -32004 with data.limit, as for every quota (PROTOCOL.md 9). */
static void refuse(Daemon *d, int fd, const char *why, unsigned limit) {
        json_t *data = jsonrpc_error_data(NULL, why);
        json_auto_t *err = NULL;
        size_t len;

        d->stats.refused++;
        if (!data || json_object_set_new(data, "limit", json_integer((json_int_t)limit)) < 0) {
                json_decref(data);
                return;
        }
        err = jsonrpc_error(NULL, EVD_ERR_QUOTA, NULL, data);
        if (err && jsonrpc_encode(err, d->encode_buf, sizeof(d->encode_buf), &len) >= 0)
                (void)wire_send(fd, d->encode_buf, len, NULL, 0);
}

int conn_new(Daemon *d, int fd_consumed, const ConnOps *ops, Conn **ret) {
        _cleanup_close_ int fd = fd_consumed;
        struct ucred cred;
        socklen_t len = sizeof(cred);
        _cleanup_free_ gid_t *groups = NULL;
        size_t n_groups = 0;
        UidUsage *usage;
        Conn *c;
        int r;

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                return -errno;
        r = peer_groups(fd, &groups, &n_groups);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                log_full(LOG_WARNING, -r,
                         &(LogContext){ .pid = cred.pid, .uid = cred.uid, .has_peer = true },
                         "Cannot get a client's supplementary groups: admin only by uid or gid");
        if (d->conns.n >= d->config.limits.clients) {
                refuse(d, fd, "too many clients (max-clients)", d->config.limits.clients);
                log_full(LOG_WARNING, 0, &(LogContext){ .pid = cred.pid, .uid = cred.uid, .has_peer = true },
                         "Refusing a client: %u clients connected (max-clients)", d->config.limits.clients);
                return -EDQUOT;
        }
        usage = usage_get(&d->uids, cred.uid);
        if (!usage)
                return -ENOMEM;
        if (usage->clients >= d->config.limits.clients_per_uid) {
                refuse(d, fd, "too many clients for this user (max-clients-per-uid)",
                       d->config.limits.clients_per_uid);
                log_full(LOG_WARNING, 0, &(LogContext){ .pid = cred.pid, .uid = cred.uid, .has_peer = true },
                         "Refusing a client: its user has %u connections (max-clients-per-uid)", usage->clients);
                usage_put(&d->uids, usage);
                return -EDQUOT;
        }

        c = calloc(1, sizeof(*c));
        if (!c) {
                usage_put(&d->uids, usage);
                return -ENOMEM;
        }
        c->daemon = d;
        c->ops = ops;
        c->fd = -1;
        c->id = ++d->next_client_id;
        c->pid = peer_pid_from_pidfd(fd, cred.pid);
        c->uid = cred.uid;
        c->gid = cred.gid;
        c->usage = usage;
        usage->clients++;
        c->connected_at = engine_now(d->engine, ENGINE_CLOCK_MONOTONIC);
        list_init(&c->watches);
        list_init(&c->timers);
        list_init(&c->out);
        list_init(&c->notices);
        list_append(&d->conns, &c->link);
        c->groups = TAKE_PTR(groups);
        c->n_groups = n_groups;
        c->admin = usage_is_admin(&d->config, c->uid, c->gid, c->groups, c->n_groups);
        r = engine_add_io(d->engine, &c->source, fd, ENGINE_IN | ENGINE_RDHUP, ENGINE_EDGE, conn_io_cb, c);
        if (r < 0) {
                (void)conn_free(c);
                return r;
        }
        c->fd = TAKE_FD(fd);
        d->stats.accepted++;
        daemon_counts_changed(d);
        log_full(LOG_DEBUG, 0, &(LogContext){ .client_id = c->id, .pid = c->pid, .uid = c->uid, .has_peer = true },
                 "Client connected%s", c->admin ? " (admin)" : "");
        if (ret)
                *ret = c;
        return 0;
}

void conn_close(Conn *c, const char *reason, bool abnormal) {
        Daemon *d = c->daemon;
        LogContext ctx = conn_log_context(c);

        if (c->closing)
                return;
        c->closing = true;
        c->close_reason = reason;
        if (abnormal) {
                d->stats.disconnected++;
                log_full(LOG_NOTICE, 0, &ctx, "Dropping client: %s", reason);
        } else
                log_full(LOG_DEBUG, 0, &ctx, "Client %s", reason);
        /* No more wakeups; the watches' callbacks check `closing` until the work pass. */
        (void)source_set_enabled(c->source, false);
        list_append(&d->doomed, &c->doomed_link);
        daemon_schedule(d);
}

Conn *conn_free(Conn *c) {
        Daemon *d;
        ListNode *node;

        if (!c)
                return NULL;
        d = c->daemon;
        assert(!list_first(&c->watches) && !list_first(&c->timers) && !list_first(&c->notices));
        batch_end(c);
        while ((node = list_first(&c->out))) {
                list_remove(&c->out, node);
                free(container_of(node, OutPacket, link));
        }
        (void)source_free(c->source);
        (void)safe_close(c->fd);
        list_remove(&d->conns, &c->link);
        list_remove(&d->dirty, &c->dirty_link);
        list_remove(&d->doomed, &c->doomed_link);
        list_remove(&d->monitors, &c->monitor_link);
        c->usage->clients--;
        usage_put(&d->uids, c->usage);
        idmap_deinit(&c->watch_map);
        idmap_deinit(&c->timer_map);
        daemon_counts_changed(d);
        free(c->groups);
        free(c->name);
        free(c);
        return NULL;
}
