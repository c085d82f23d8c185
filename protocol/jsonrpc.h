#pragma once
/* jsonrpc.h - JSON-RPC 2.0 messages: parse, validate, build, encode (jansson) */

#include <jansson.h>
#include <stddef.h>

#include "protocol.h"

/*
 * Ownership follows jansson: a json_t * returned by a function here is a new
 * reference the caller must json_decref(); a parameter marked "stolen" is
 * consumed even on failure (like json_object_set_new()); "borrowed" is not
 * touched. Passing NULL for a required "stolen" value (a failed json_pack()
 * upstream) makes the builder return NULL, so OOM propagates without checks in
 * between: jsonrpc_reply(id, json_pack(...)).
 */

/* One validated request; every pointer borrows from the message it came from. */
typedef struct JsonRpcRequest {
        json_t *id;         /* NULL: notification, no reply; else string, integer or null */
        const char *method; /* NUL-free UTF-8 */
        json_t *params;     /* NULL if absent, else an object */
} JsonRpcRequest;

typedef enum JsonRpcKind {
        JSONRPC_RESULT,       /* id + result */
        JSONRPC_ERROR,        /* id (null if the server could not read it) + error */
        JSONRPC_NOTIFICATION, /* method + params, no id */
        _JSONRPC_KIND_MAX,
} JsonRpcKind;

/* One classified message as a client receives it; every pointer borrows from the message. */
typedef struct JsonRpcResponse {
        JsonRpcKind kind;
        json_t *id;          /* RESULT, ERROR: string, integer or null */
        json_t *result;      /* RESULT: any value */
        int code;            /* ERROR */
        const char *message; /* ERROR */
        json_t *data;        /* ERROR: NULL if absent */
        const char *method;  /* NOTIFICATION */
        json_t *params;      /* NOTIFICATION: NULL if absent, else object or array */
} JsonRpcResponse;

/* @buf borrowed; *@ret a new reference (object or array). */
int jsonrpc_parse(const void *buf, size_t len, json_t **ret, json_error_t *ret_error);

/* @msg borrowed; *@ret borrows from @msg. */
int jsonrpc_request_check(json_t *msg, JsonRpcRequest *ret, int *ret_code, const char **ret_why);
/* @msg borrowed; *@ret borrows from @msg. */
int jsonrpc_response_check(json_t *msg, JsonRpcResponse *ret);
/* @params borrowed; *@ret_key borrows from @params. */
int jsonrpc_params_check_known(const json_t *params, const char *const *known,
                               const char **ret_key);

/* @id borrowed (NULL: null), @result stolen (required: NULL returns NULL).
 * Returns a new reference or NULL. */
json_t *jsonrpc_reply(json_t *id, json_t *result);
/* @id borrowed (NULL: null), @message copied (NULL: evd_error_message(code)),
 * @data stolen (NULL: omitted). Returns a new reference or NULL. */
json_t *jsonrpc_error(json_t *id, int code, const char *message, json_t *data);
/* @param, @why copied (NULL: member omitted). Returns a new reference or NULL. */
json_t *jsonrpc_error_data(const char *param, const char *why);
/* @method copied, @params stolen (required: NULL returns NULL).
 * Returns a new reference or NULL. */
json_t *jsonrpc_notification(const char *method, json_t *params);
/* @method copied, @params stolen (NULL: omitted). Returns a new reference or NULL. */
json_t *jsonrpc_request_new(json_int_t id, const char *method, json_t *params);

/* @v borrowed; @buf written, not NUL-terminated. */
int jsonrpc_encode(const json_t *v, char *buf, size_t size, size_t *ret_len);
/* @v borrowed; *@ret malloc()ed, NUL-terminated, owned by the caller (free()). */
int jsonrpc_encode_alloc(const json_t *v, char **ret, size_t *ret_len);
