/*
 * jsonrpc.c - JSON-RPC 2.0 on top of jansson: parse, validate, build, encode.
 *
 * Model: one packet holds one JSON-RPC value, an object (one message) or an
 * array (a batch). Parsing enforces the wire limits before jansson sees the
 * bytes (EVD_MAX_PACKET) and keeps jansson's own defences: invalid UTF-8,
 * "\u0000" and raw NUL bytes are rejected, duplicate keys are rejected
 * (JSON_REJECT_DUPLICATES, so two "fd" members cannot disagree), integers that
 * do not fit int64 are parse errors ("too big integer"), and nesting deeper
 * than JSON_PARSER_MAX_DEPTH (2048 in jansson 2.14) fails cleanly instead of
 * recursing the stack away.
 *
 * Validation is strict on what a server accepts (requests) and liberal on what
 * a client accepts (responses: unknown members are ignored so the daemon can
 * add some). Nothing here allocates a copy of a message: checked views
 * (JsonRpcRequest, JsonRpcResponse) borrow from the parsed json_t, which must
 * outlive them.
 */

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "jsonrpc.h"
#include "macro.h"

static bool jsonrpc_is_version(const json_t *v) {
        return json_is_string(v) && strcmp(json_string_value(v), "2.0") == 0;
}

/* JSON-RPC 2.0: "String, Number, or NULL ... Numbers SHOULD NOT contain fractional parts". */
static bool jsonrpc_id_valid(const json_t *id) {
        return json_is_string(id) || json_is_integer(id) || json_is_null(id);
}

static void jsonrpc_error_set(json_error_t *error, const char *text) {
        if (!error)
                return;
        memset(error, 0, sizeof(*error));
        error->line = -1;
        error->column = -1;
        (void)snprintf(error->source, sizeof(error->source), "<packet>");
        (void)snprintf(error->text, sizeof(error->text), "%s", text);
}

/**
 * jsonrpc_parse() - parse one packet into a JSON-RPC value
 * @buf: the packet's bytes (borrowed; need not be NUL-terminated)
 * @len: number of bytes
 * @ret: the parsed object or array, a new reference
 * @ret_error: jansson's diagnostic on failure (may be NULL)
 *
 * Nesting is bounded by jansson's JSON_PARSER_MAX_DEPTH (2048 in 2.14): deeper
 * input is a parse error, not a crash. Trailing whitespace is allowed, any other
 * trailing byte (including NUL) is a parse error.
 *
 * Return: 0; -EMSGSIZE if @len > EVD_MAX_PACKET (reply EVD_ERR_TOO_LARGE);
 *         -EBADMSG if not valid JSON, including integers outside int64 (reply
 *         EVD_ERR_PARSE); -EINVAL if valid JSON but not an object or array (reply
 *         EVD_ERR_INVALID_REQUEST); -ENOMEM.
 */
int jsonrpc_parse(const void *buf, size_t len, json_t **ret, json_error_t *ret_error) {
        json_error_t error;
        json_t *v;

        if (len > EVD_MAX_PACKET) {
                jsonrpc_error_set(ret_error, "message larger than EVD_MAX_PACKET");
                return -EMSGSIZE;
        }

        /* JSON never contains a raw NUL, and jansson 2.14 drops one that directly follows a
         * number or a literal (`1\0,` parses): refuse them all before it sees the text. */
        if (len > 0 && memchr(buf, 0, len)) {
                jsonrpc_error_set(ret_error, "NUL byte in the message");
                return -EBADMSG;
        }
        /* DECODE_ANY so a bare scalar is told apart from broken JSON (-32600, not -32700). */
        v = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &error);
        if (!v) {
                if (ret_error)
                        *ret_error = error;
                return json_error_code(&error) == json_error_out_of_memory ? -ENOMEM : -EBADMSG;
        }
        if (!json_is_object(v) && !json_is_array(v)) {
                json_decref(v);
                jsonrpc_error_set(ret_error, "top-level value must be an object or an array");
                return -EINVAL;
        }

        *ret = v;
        return 0;
}

/**
 * jsonrpc_request_check() - validate one JSON-RPC 2.0 request object
 * @msg: one element of the parsed packet (borrowed)
 * @ret: the checked view, borrowing from @msg
 * @ret_code: on failure, the error code to reply with (may be NULL)
 * @ret_why: on failure, a static reason for the error's data.why (may be NULL)
 *
 * Accepted: an object with exactly the members "jsonrpc" ("2.0"), "method" (a
 * string), optionally "params" (an object) and "id" (a string, an integer that
 * fits int64, or null). Anything else is rejected: a real id (1.5, but also 1.0
 * or 1e3) since ids SHOULD NOT have fractions and evd compares ids exactly;
 * by-position (array) params with EVD_ERR_INVALID_PARAMS since the request is
 * otherwise valid JSON-RPC, evd just names every parameter; unknown members.
 *
 * Unlike other ret_ parameters, @ret is also written on failure: @ret->id is the
 * request's id when that id itself was valid, else NULL, and the error reply
 * must echo it (NULL: reply with "id": null). Per JSON-RPC an invalid request
 * is answered even when it has no id.
 *
 * Return: 0, or -EINVAL with *@ret_code (EVD_ERR_INVALID_REQUEST or
 *         EVD_ERR_INVALID_PARAMS) and *@ret_why set.
 */
int jsonrpc_request_check(json_t *msg, JsonRpcRequest *ret, int *ret_code, const char **ret_why) {
        JsonRpcRequest req = {.id = NULL};
        int code = EVD_ERR_INVALID_REQUEST;
        const char *why, *key;
        json_t *v;

        if (!json_is_object(msg)) {
                why = "request must be a JSON object";
                goto fail;
        }

        /* The id first, so every later failure can still be answered to the right id. */
        v = json_object_get(msg, "id");
        if (v) {
                if (!jsonrpc_id_valid(v)) {
                        why = "id must be a string, an integer or null";
                        goto fail;
                }
                req.id = v;
        }

        v = json_object_get(msg, "jsonrpc");
        if (!v) {
                why = "missing \"jsonrpc\": \"2.0\"";
                goto fail;
        }
        if (!jsonrpc_is_version(v)) {
                why = "\"jsonrpc\" must be \"2.0\"";
                goto fail;
        }

        v = json_object_get(msg, "method");
        if (!v) {
                why = "missing method";
                goto fail;
        }
        if (!json_is_string(v)) {
                why = "method must be a string";
                goto fail;
        }
        req.method = json_string_value(v);

        v = json_object_get(msg, "params");
        if (v) {
                if (json_is_array(v)) {
                        code = EVD_ERR_INVALID_PARAMS;
                        why = "params must be an object (evd takes parameters by name)";
                        goto fail;
                }
                if (!json_is_object(v)) {
                        why = "params must be an object";
                        goto fail;
                }
                req.params = v;
        }

        json_object_foreach(msg, key, v) {
                if (strcmp(key, "jsonrpc") != 0 && strcmp(key, "method") != 0 &&
                    strcmp(key, "params") != 0 && strcmp(key, "id") != 0) {
                        why = "unknown member in request";
                        goto fail;
                }
        }

        *ret = req;
        return 0;

fail:
        *ret = (JsonRpcRequest){.id = req.id};
        if (ret_code)
                *ret_code = code;
        if (ret_why)
                *ret_why = why;
        return -EINVAL;
}

/**
 * jsonrpc_response_check() - classify one message received by a client
 * @msg: one element of the parsed packet (borrowed)
 * @ret: the checked view, borrowing from @msg
 *
 * A response is "id" plus exactly one of "result" or "error" (an object with an
 * integer "code" that fits int, a string "message" and optional "data"). A
 * notification is "method" (string) with optional "params" (object or array)
 * and no "id". Unknown members are ignored.
 *
 * Return: 0, or -EBADMSG if @msg is neither.
 */
int jsonrpc_response_check(json_t *msg, JsonRpcResponse *ret) {
        JsonRpcResponse r = {.kind = _JSONRPC_KIND_MAX};
        json_t *id, *result, *error, *method;

        if (!json_is_object(msg) || !jsonrpc_is_version(json_object_get(msg, "jsonrpc")))
                return -EBADMSG;

        id = json_object_get(msg, "id");
        result = json_object_get(msg, "result");
        error = json_object_get(msg, "error");
        method = json_object_get(msg, "method");

        if (method) {
                /* method + id would be a server-to-client call: evd never makes one. */
                if (id || result || error || !json_is_string(method))
                        return -EBADMSG;
                r.params = json_object_get(msg, "params");
                if (r.params && !json_is_object(r.params) && !json_is_array(r.params))
                        return -EBADMSG;
                r.kind = JSONRPC_NOTIFICATION;
                r.method = json_string_value(method);
        } else {
                if (!jsonrpc_id_valid(id) || !result == !error)
                        return -EBADMSG;
                r.id = id;
                if (result) {
                        r.kind = JSONRPC_RESULT;
                        r.result = result;
                } else {
                        json_t *code, *message;
                        json_int_t c;

                        if (!json_is_object(error))
                                return -EBADMSG;
                        code = json_object_get(error, "code");
                        message = json_object_get(error, "message");
                        if (!json_is_integer(code) || !json_is_string(message))
                                return -EBADMSG;
                        c = json_integer_value(code);
                        if (c < INT_MIN || c > INT_MAX)
                                return -EBADMSG;
                        r.kind = JSONRPC_ERROR;
                        r.code = (int)c;
                        r.message = json_string_value(message);
                        r.data = json_object_get(error, "data");
                }
        }

        *ret = r;
        return 0;
}

/**
 * jsonrpc_params_check_known() - reject parameter names a method does not know
 * @params: the request's params object, or NULL (borrowed)
 * @known: NULL-terminated list of accepted names
 * @ret_key: on failure, the first unknown name, borrowed from @params (may be NULL)
 *
 * Methods call this first so that a misspelt optional parameter ("mdoe") is an
 * error instead of being silently ignored.
 *
 * Return: 0, or -EINVAL (@ret_key set; NULL if @params is not an object).
 */
int jsonrpc_params_check_known(const json_t *params, const char *const *known,
                               const char **ret_key) {
        const char *key;
        json_t *v;

        if (!params)
                return 0;
        if (!json_is_object(params)) {
                if (ret_key)
                        *ret_key = NULL;
                return -EINVAL;
        }

        /* json_object_foreach() takes a non-const object but only reads it. */
        json_object_foreach((json_t *)params, key, v) {
                size_t i;

                for (i = 0; known[i]; i++)
                        if (strcmp(key, known[i]) == 0)
                                break;
                if (!known[i]) {
                        if (ret_key)
                                *ret_key = key;
                        return -EINVAL;
                }
        }
        return 0;
}

/* A fresh {"jsonrpc": "2.0"}, the start of every message. */
static json_t *jsonrpc_message_new(void) {
        json_t *m = json_object();

        if (!m)
                return NULL;
        if (json_object_set_new(m, "jsonrpc", json_string("2.0")) < 0) {
                json_decref(m);
                return NULL;
        }
        return m;
}

/* Like json_object_set_new(): @value is stolen even on failure, and @m is freed then. */
static json_t *jsonrpc_set_new(json_t *m, const char *key, json_t *value) {
        if (!m) {
                json_decref(value);
                return NULL;
        }
        if (!value || json_object_set_new(m, key, value) < 0) {
                json_decref(m);
                return NULL;
        }
        return m;
}

/* The id to echo: borrowed from the request, so the reply takes its own reference. */
static json_t *jsonrpc_id_ref(json_t *id) {
        return id ? json_incref(id) : json_null();
}

/**
 * jsonrpc_reply() - build a success response
 * @id: the request's id (borrowed; NULL is written as null)
 * @result: the result (stolen; NULL makes this return NULL)
 *
 * Return: a new reference, NULL on OOM.
 */
json_t *jsonrpc_reply(json_t *id, json_t *result) {
        json_t *m;

        if (!result)
                return NULL;
        m = jsonrpc_set_new(jsonrpc_message_new(), "id", jsonrpc_id_ref(id));
        return jsonrpc_set_new(m, "result", result);
}

/**
 * jsonrpc_error() - build an error response
 * @id: the request's id (borrowed; NULL is written as null, for unreadable requests)
 * @code: EVD_ERR_* code
 * @message: copied; NULL uses evd_error_message(@code) ("Server error" if unknown)
 * @data: stolen; NULL omits "data" (evd uses jsonrpc_error_data())
 *
 * Return: a new reference, NULL on OOM.
 */
json_t *jsonrpc_error(json_t *id, int code, const char *message, json_t *data) {
        json_t *error, *m;

        if (!message)
                message = evd_error_message(code);
        if (!message)
                message = "Server error";

        error = jsonrpc_set_new(json_object(), "code", json_integer(code));
        error = jsonrpc_set_new(error, "message", json_string(message));
        if (data)
                error = jsonrpc_set_new(error, "data", data);
        if (!error)
                return NULL;

        m = jsonrpc_set_new(jsonrpc_message_new(), "id", jsonrpc_id_ref(id));
        return jsonrpc_set_new(m, "error", error);
}

/**
 * jsonrpc_error_data() - build the {"param": ..., "why": ...} data of an error
 * @param: the offending parameter's name (copied; NULL omits it)
 * @why: a short human reason (copied; NULL omits it)
 *
 * Return: a new reference, NULL on OOM.
 */
json_t *jsonrpc_error_data(const char *param, const char *why) {
        json_t *data = json_object();

        if (param)
                data = jsonrpc_set_new(data, "param", json_string(param));
        if (why)
                data = jsonrpc_set_new(data, "why", json_string(why));
        return data;
}

/**
 * jsonrpc_notification() - build a notification (a message with no id)
 * @method: notification name (copied)
 * @params: stolen; NULL makes this return NULL (evd notifications always have params)
 *
 * Return: a new reference, NULL on OOM.
 */
json_t *jsonrpc_notification(const char *method, json_t *params) {
        json_t *m;

        if (!params)
                return NULL;
        m = jsonrpc_set_new(jsonrpc_message_new(), "method", json_string(method));
        return jsonrpc_set_new(m, "params", params);
}

/**
 * jsonrpc_request_new() - build a request (client side)
 * @id: the request id; the client picks it, responses echo it
 * @method: method name (copied)
 * @params: stolen; NULL omits "params"
 *
 * Return: a new reference, NULL on OOM.
 */
json_t *jsonrpc_request_new(json_int_t id, const char *method, json_t *params) {
        json_t *m;

        m = jsonrpc_set_new(jsonrpc_message_new(), "id", json_integer(id));
        m = jsonrpc_set_new(m, "method", json_string(method));
        if (params)
                m = jsonrpc_set_new(m, "params", params);
        return m;
}

/**
 * jsonrpc_encode() - serialize a message compactly into a caller buffer
 * @v: an object or array (borrowed)
 * @buf: destination, not NUL-terminated; its content is undefined on failure
 * @size: size of @buf; EVD_MAX_PACKET for something wire_send() will take
 * @ret_len: bytes written
 *
 * UTF-8 on the wire, so no JSON_ENSURE_ASCII.
 *
 * Return: 0; -EMSGSIZE if the encoding is larger than @size; -EINVAL if @v is a
 *         scalar or cannot be encoded.
 */
int jsonrpc_encode(const json_t *v, char *buf, size_t size, size_t *ret_len) {
        size_t n;

        n = json_dumpb(v, buf, size, JSON_COMPACT);
        if (n == 0)
                return -EINVAL;
        if (n > size)
                return -EMSGSIZE;
        *ret_len = n;
        return 0;
}

/**
 * jsonrpc_encode_alloc() - serialize a message compactly into a new buffer
 * @v: an object or array (borrowed)
 * @ret: malloc()ed, NUL-terminated for convenience (the NUL is not counted)
 * @ret_len: bytes of JSON, at most EVD_MAX_PACKET
 *
 * Return: 0; -EMSGSIZE if larger than EVD_MAX_PACKET; -EINVAL as jsonrpc_encode(); -ENOMEM.
 */
int jsonrpc_encode_alloc(const json_t *v, char **ret, size_t *ret_len) {
        _cleanup_free_ char *buf = NULL;
        size_t n;

        /* A NULL buffer only measures; nothing is allocated for an oversize message. */
        n = json_dumpb(v, NULL, 0, JSON_COMPACT);
        if (n == 0)
                return -EINVAL;
        if (n > EVD_MAX_PACKET)
                return -EMSGSIZE;

        buf = malloc(n + 1);
        if (!buf)
                return -ENOMEM;
        if (json_dumpb(v, buf, n, JSON_COMPACT) != n)
                return -EINVAL;
        buf[n] = '\0';

        *ret = TAKE_PTR(buf);
        *ret_len = n;
        return 0;
}
