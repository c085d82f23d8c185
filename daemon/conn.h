#pragma once
/* conn.h - one client connection: credentials, input, output queue, its watches and timers */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "fd-list.h"
#include "idmap.h"
#include "jsonrpc.h"
#include "list.h"
#include "log.h"

typedef struct Conn Conn;
typedef struct Daemon Daemon;
typedef struct EngineSource EngineSource;
typedef struct UidUsage UidUsage;

/* What a connection hands up, given at conn_new(): the connection knows packets, framing and
 * queues; what a request does and what a notice says are the layers above (daemon.c wires
 * methods_call() and notify_flush() in here). */
typedef struct ConnOps {
        /* Run one validated request and encode its reply into @buf, as methods_call() says
         * (methods.h). Return: the reply's length, 0 for none. */
        size_t (*dispatch)(Conn *c, const JsonRpcRequest *req, FdList *fds, size_t budget, char *buf,
                           size_t size, size_t *ret_cost);
        /* Encode and send the queued notices (Conn.notices), as notify_flush() says
         * (notify.h). Return: 0 all sent, -EAGAIN blocked, other -errno: broken. */
        int (*flush_notices)(Conn *c);
} ConnOps;

/* An encoded packet waiting for the socket: replies, in request order, and monitor copies. */
typedef struct OutPacket {
        ListNode link;
        bool monitor_copy; /* dropped if the connection stops being a monitor */
        size_t len;
        char data[];
} OutPacket;

struct Conn {
        Daemon *daemon;
        const ConnOps *ops;
        ListNode link;         /* daemon->conns */
        ListNode dirty_link;   /* daemon->dirty */
        ListNode doomed_link;  /* daemon->doomed, once closing */
        ListNode monitor_link; /* daemon->monitors */
        uint64_t id;
        int fd;
        EngineSource *source;

        pid_t pid;
        uid_t uid;
        gid_t gid;
        bool admin;
        gid_t *groups; /* supplementary groups (SO_PEERGROUPS), to re-check admin on reload */
        size_t n_groups;
        char *name; /* from hello */
        uint64_t connected_at; /* monotonic ns */
        UidUsage *usage;

        List watches; /* Watch.link */
        IdMap watch_map;
        List timers;  /* ClientTimer.link */
        IdMap timer_map;

        List out;     /* OutPacket */
        List notices; /* Notice, oldest first */
        size_t queued_bytes;
        bool want_out;      /* a send hit EAGAIN: polling for POLLOUT */
        bool input_pending; /* stopped reading before EAGAIN (bound or backpressure) */
        bool read_this_pass; /* read a budget since the last work pass: others go first */
        bool closing;
        bool eof;           /* the client shut down its side: close once output is sent */
        bool monitor;
        bool monitor_connections; /* the monitor asked for connected/disconnected events too */
        const char *close_reason;

        uint64_t requests;
        uint64_t notifications;
        uint64_t monitor_dropped;

        /* A batch run over several turns (max-turn-us each): the parsed array, the next
         * request, the packet's fds (owned until the batch ends), its budget so far, and
         * the replies made so far that are not sent yet (held: a batch's replies still go
         * out as one array when they fit one packet; notices wait behind them). */
        struct {
                json_t *requests; /* NULL: none in progress */
                size_t next;
                FdList fds;
                int fds_lost;
                size_t charged;
                char *held; /* EVD_MAX_PACKET bytes once needed: "r1,r2,...", no brackets */
                size_t held_len;
                unsigned held_count;
        } batch;
};

/* The longest `client` name hello accepts (characters). */
#define CONN_MAX_NAME 64
/* Stop reading a client's requests while this much output waits for it; resume at half. */
#define CONN_PAUSE_BYTES (256u * 1024u)
/* Packets read from one client per wakeup before others get their turn. */
#define CONN_READ_BUDGET 32
/* What a queued notice counts against the output limit (it is not encoded yet). */
#define CONN_NOTICE_COST 128u

/** conn_new() - a client on accepted socket @fd (consumed, even on failure), its requests
 * and notices handed to @ops. Return: 0, -EDQUOT (a client limit; reply already sent), or
 * -errno. */
int conn_new(Daemon *d, int fd, const ConnOps *ops, Conn **ret);
/** conn_close() - drop the client at the end of this iteration's work pass (safe from any
 * callback); logs @reason at notice level unless it is an ordinary disconnect. */
void conn_close(Conn *c, const char *reason, bool abnormal);
/** conn_free() - free the connection itself. Its watches, timers and notices belong to the
 * layers above and must be gone already (daemon.c frees them first). NULL-safe. */
Conn *conn_free(Conn *c);
/** conn_read() - go on with a batch in progress, then read and answer up to
 * CONN_READ_BUDGET packets, all within the client's turn (max-turn-us). */
void conn_read(Conn *c);
/** conn_flush() - send what is queued until done or EAGAIN. */
void conn_flush(Conn *c);
/** conn_queue_packet() - queue an encoded packet (copied). Return: 0, -ENOBUFS over the
 * limit (the client is then being closed), -ENOMEM. */
int conn_queue_packet(Conn *c, const void *data, size_t len);
/** conn_queue_monitor_copy() - conn_queue_packet() for a monitor copy, which
 * conn_stop_monitor() can still take back. */
int conn_queue_monitor_copy(Conn *c, const void *data, size_t len);
/** conn_stop_monitor() - end @c's monitor subscription: drop the copies not sent yet and
 * tell it (`monitor-ended` with @reason, PROTOCOL.md). No-op if it is not a monitor. */
void conn_stop_monitor(Conn *c, const char *reason);
/* Bytes the replies to one packet may take (at most: a quarter of max-queued-bytes if that
 * is less, one packet at least) before the rest of it is answered with EVD_ERR_REPLY_BUDGET:
 * what one packet may cost the daemon in memory and time. */
#define CONN_REPLY_BUDGET (1024u * 1024u)
/** conn_encode_reply() - encode @reply (stolen; NULL gives 0) into @buf; one too large for
 * it becomes error -32007 for @id (borrowed). Return: its length, 0 if even that failed. */
size_t conn_encode_reply(Conn *c, json_t *id, json_t *reply, char *buf, size_t size);
/** conn_reply_budget() - the reply budget of a packet under the current configuration. */
size_t conn_reply_budget(const Daemon *d);
void conn_mark_dirty(Conn *c);
/** conn_in_batch() - a batch of @c's is being run over several turns. */
static inline bool conn_in_batch(const Conn *c) {
        return c->batch.requests != NULL;
}
/** conn_has_output() */
bool conn_has_output(const Conn *c);
LogContext conn_log_context(const Conn *c);
