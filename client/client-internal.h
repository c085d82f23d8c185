#pragma once
/* client-internal.h - libevd's private types: the client, its objects, requests and callbacks */
/* The functions are declared per layer: connection.h, obj-table.h, pending.h, request.h,
 * object.h (ARCHITECTURE-client.md). This header declares types only. */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "evd.h"
#include "list.h"

/* Reconnect back-off: first delay, cap (milliseconds); each delay gets +-25% jitter. */
#define CLIENT_BACKOFF_MIN_MS 50u
#define CLIENT_BACKOFF_MAX_MS 5000u
/* Packets read, and callbacks run, per evd_client_dispatch(): the loop gets a turn. */
#define CLIENT_READ_BUDGET 64u
/* The daemon's cap on the "hello" client name (PROTOCOL.md, hello). */
#define CLIENT_MAX_NAME 64u
/* Timer values the daemon accepts (PROTOCOL.md, timer): durations at most 2^31 s, interval
 * >= 1 ms, dates (`at`) at most 2^33 s after the epoch. */
#define CLIENT_MAX_TIMER_USEC (((uint64_t)1 << 31) * 1000000u)
#define CLIENT_MAX_AT_USEC (((uint64_t)1 << 33) * 1000000u)
#define CLIENT_MIN_INTERVAL_USEC 1000u

typedef struct Request Request;
typedef struct RemoteError RemoteError;
typedef struct ObjOps ObjOps;

typedef enum ObjKind {
        OBJ_WATCH,
        OBJ_TIMER,
        _OBJ_KIND_MAX,
} ObjKind;

typedef enum ObjState {
        OBJ_UNREGISTERED, /* the daemon does not know it: its CREATE is queued, unsent */
        OBJ_PENDING,      /* CREATE sent, reply awaited */
        OBJ_REGISTERED,   /* the daemon knows it as daemon_id */
        OBJ_GONE,         /* the daemon dropped it (fired one-shot timer, closed watch, failed
                           * re-registration); freed once its last callback ran */
        _OBJ_STATE_MAX,
} ObjState;

/*
 * A watch or timer as the program asked for it: the desired state. Requests bring the
 * daemon in line with it; after a reconnect it is registered again from this alone.
 */
typedef struct Obj {
        uint64_t id; /* local, positive, never reused; also the tag sent to the daemon */
        ObjKind kind;
        ObjState state;
        uint64_t daemon_id; /* 0 unless REGISTERED (or GONE after being registered) */
        bool removed;       /* the program removed it: no callbacks, invisible to the API */
        Request *create;    /* its CREATE request, queued or in flight, or NULL */
        struct Obj *hnext;  /* hash chain */
        ListNode link;      /* client->objects, creation order */
        void *userdata;
        /* OBJ_WATCH */
        int fd; /* our duplicate, sent with every (re-)registration */
        uint32_t events;
        enum evd_mode mode;
        bool armed; /* oneshot: a ready is expected; a ready while disarmed is suppressed */
        evd_watch_fn watch_cb;
        /* OBJ_TIMER */
        bool realtime;
        uint64_t next_usec; /* the next expiry on the timer's clock */
        uint64_t interval_usec;
        evd_timer_fn timer_cb;
} Obj;

typedef enum RequestKind {
        REQ_HELLO,
        REQ_CALL,
        REQ_CREATE, /* watch or timer */
        REQ_MODIFY,
        REQ_ARM,
        REQ_REMOVE, /* unwatch or cancel */
        _REQ_KIND_MAX,
} RequestKind;

/* A daemon error reply, owned. */
struct RemoteError {
        int code; /* 0: none */
        char *message;
        json_t *data;
};

/*
 * One request from the program's call to its completion. It sits in client->queue until
 * sent, then in client->inflight until answered; the daemon answers in order. Its JSON is
 * built when it is sent, from the object's state at that moment.
 */
struct Request {
        RequestKind kind;
        ListNode link;
        bool sent;
        json_int_t rpc_id;           /* 0 until first built */
        uint64_t obj;                /* CREATE, MODIFY, ARM, REMOVE: the local id */
        char *method;                /* CALL */
        json_t *params;              /* CALL: owned until sent */
        uint32_t events, old_events; /* MODIFY: new values, and the ones to restore on failure */
        enum evd_mode mode, old_mode;
        bool reregister; /* CREATE queued when the connection came up: counts for RESTORED */
        /* Completion: a synchronous caller (sync) reads r/result/error; else done, if set. */
        evd_done_fn done;
        void *done_userdata;
        bool sync;
        bool complete;
        int r;
        json_t *result;
        RemoteError error;
};

typedef enum PendingKind {
        PENDING_DONE,
        PENDING_WATCH,
        PENDING_TIMER,
        PENDING_NOTIFY,
        PENDING_CONNECTION,
        _PENDING_KIND_MAX,
} PendingKind;

/* A callback to run from evd_client_dispatch(), never from inside a synchronous call. */
typedef struct Pending {
        PendingKind kind;
        ListNode link;
        uint64_t obj;         /* WATCH, TIMER: looked up when run, skipped if removed */
        uint32_t revents;     /* WATCH */
        uint64_t expirations; /* TIMER */
        evd_done_fn done;     /* DONE */
        void *done_userdata;
        int r;          /* DONE: result code; CONNECTION: error */
        json_t *result; /* DONE */
        RemoteError error;
        char *method; /* NOTIFY */
        json_t *params;
        enum evd_connection_event event; /* CONNECTION */
} Pending;

typedef enum ClientState {
        CLIENT_IDLE,         /* never connected, or closed by the program */
        CLIENT_CONNECTED,    /* a socket is up */
        CLIENT_RECONNECTING, /* lost; the back-off timer decides the next attempt */
        CLIENT_DEAD,         /* lost without reconnect: calls fail with -ENOTCONN */
        _CLIENT_STATE_MAX,
} ClientState;

struct evd_client {
        ClientState state;
        int epoll_fd; /* what evd_client_fd() returns: sock and timer_fd inside */
        int timer_fd; /* CLOCK_MONOTONIC: "dispatch now" (pending callbacks) or reconnect */
        int sock;
        uint32_t sock_events; /* what epoll watches on sock */
        uint64_t timer_armed; /* absolute usec the timer is set to, 0: disarmed */
        bool want_out;        /* a send hit EAGAIN */
        unsigned held;        /* batches begun (and dispatches running callbacks): requests wait */
        char *path;
        char *name;
        bool reconnect;
        bool shutting_down;  /* the daemon announced "shutdown": send nothing more */
        bool ever_connected; /* the next connection is a reconnect */
        int lost_reason;     /* DEAD: why the connection ended */
        int refused_code;    /* an error with "id": null: the reason for the close to come */
        int fatal;           /* a reason to drop the connection once the packet is handled */
        unsigned backoff_ms;
        uint64_t reconnect_at; /* CLOCK_MONOTONIC usec */
        unsigned restoring;    /* CREATEs since the reconnect not yet answered */
        bool restore_pending;  /* a RESTORED is owed once restoring reaches 0 */
        int restore_error;
        uint64_t rng;
        uint64_t next_obj_id;
        json_int_t next_rpc_id;
        Obj **buckets;
        size_t n_buckets, n_objs;
        List objects;  /* Obj, creation order */
        List queue;    /* Request, unsent */
        List inflight; /* Request, sent, unanswered, in order */
        List pending;  /* Pending */
        char *recv_buf;
        char *send_buf;
        evd_connection_fn connection_cb;
        void *connection_userdata;
        evd_notify_fn notify_cb;
        void *notify_userdata;
        const ObjOps *obj_ops; /* the watch/timer layer above request.c */
        bool running; /* inside evd_client_run() */
        bool exit_requested;
        int exit_code;
        RemoteError last_remote;
        struct evd_error last_error;
};

/*
 * What request.c (requests and replies) needs from object.c (watches and timers) above it:
 * the lower layer calls up only through these. object.c defines them (obj_ops).
 */
struct ObjOps {
        /* Method, params and fd of a CREATE, MODIFY, ARM or REMOVE, built now. Return: 0 to
         * send; 1 to wait (its object's CREATE is unanswered); 2 settled without the daemon;
         * -ENOENT (its object is gone); -ENOMEM. */
        int (*build_request)(struct evd_client *c, Request *req, const char **ret_method,
                             json_t **ret_params, int *ret_fd);
        /* The daemon answered a CREATE, MODIFY, ARM or REMOVE; completes @req. */
        void (*handle_reply)(struct evd_client *c, Request *req, int r, json_t *result,
                             RemoteError *err);
        /* "ready", "timer", "closed" about one of ours: true if consumed. */
        bool (*handle_notification)(struct evd_client *c, const char *method, json_t *params);
        /* After a loss with reconnect: the CREATEs to queue first on the next connection. */
        void (*prepare_reconnect)(struct evd_client *c, List *ret_creates);
};
