#pragma once
/* methods-internal.h - what methods.c shares with the listings (methods-list.c) */

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engine.h"
#include "fd-list.h"
#include "jsonrpc.h"
#include "protocol.h"

typedef struct Conn Conn;

/* A listing stops before its reply would outgrow a packet; the rest comes with `offset`. */
#define LIST_BYTE_BUDGET (EVD_MAX_PACKET - 1024)
/* Room kept for a listing's tail: `],"total":N,"next":N}}`. */
#define LIST_TAIL_ROOM 64

typedef struct MethodError {
        int code;
        const char *param;
        const char *why;
        json_t *data; /* extra members (limit), stolen */
} MethodError;

typedef int (*method_fn)(Conn *c, json_t *params, FdList *fds, json_t **ret, MethodError *err);

static inline int fail(MethodError *err, int code, const char *param, const char *why) {
        err->code = code;
        err->param = param;
        err->why = why;
        return -1;
}

static inline int fail_errno(MethodError *err, int r) {
        switch (r) {
        case -ENOMEM:
                return fail(err, EVD_ERR_INTERNAL, NULL, "out of memory");
        case -EMFILE:
        case -ENFILE:
                return fail(err, EVD_ERR_NO_FDS, NULL, "the daemon is out of file descriptors");
        default:
                return fail(err, EVD_ERR_INTERNAL, NULL, strerror(-r));
        }
}

static inline int check_known(json_t *params, const char *const *known, MethodError *err) {
        const char *key = NULL;

        if (params && jsonrpc_params_check_known(params, known, &key) < 0)
                return fail(err, EVD_ERR_INVALID_PARAMS, key, "unknown parameter");
        return 0;
}

/* A positive integer id: watch, timer or client. */
static inline int get_id(json_t *params, const char *key, bool required, uint64_t *ret, MethodError *err) {
        json_t *v = params ? json_object_get(params, key) : NULL;

        if (!v) {
                if (required)
                        return fail(err, EVD_ERR_INVALID_PARAMS, key, "missing");
                *ret = 0;
                return 0;
        }
        if (!json_is_integer(v) || json_integer_value(v) <= 0)
                return fail(err, EVD_ERR_INVALID_PARAMS, key, "expected a positive integer id");
        *ret = (uint64_t)json_integer_value(v);
        return 0;
}

static inline const char *mode_name(EngineMode m) {
        return m == ENGINE_EDGE ? "edge" : "oneshot";
}

/* Paging for listings: `offset` (items to skip) and `limit`; the reply says `total` and,
 * when more remain (limit, packet size or the packet's reply budget), `next` = the offset
 * to ask for. The reply is written in place: head, items, tail. */
typedef struct Page {
        size_t offset, limit, index, count, skipped;
        char *buf, *p;
        const char *soft; /* no item ends past this (packet, budget), but the first one may */
        const char *hard; /* nothing ends past this: the buffer, less the tail's room */
        bool full;
} Page;

typedef int (*list_fn)(Conn *c, json_t *params, json_t *id, Page *p, MethodError *err);

/* The listings (methods-list.c): each writes its encoded reply into @p itself. */
int methods_list_watches(Conn *c, json_t *params, json_t *id, Page *p, MethodError *err);
int methods_list_timers(Conn *c, json_t *params, json_t *id, Page *p, MethodError *err);
int methods_list_clients(Conn *c, json_t *params, json_t *id, Page *p, MethodError *err);
