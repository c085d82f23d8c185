/*
 * protocol.c - error messages, event names and tag limits of the evd wire format.
 *
 * Pure tables, no state. The event bits are the Linux poll(2) values (checked at
 * compile time below) so the daemon can hand them to poll, epoll or io_uring
 * unchanged, and a client in another language can use its own poll constants.
 * Names on the wire are the lower-case suffixes: "in", "pri", "out", "err",
 * "hup", "rdhup". Event arrays coming from a client are validated strictly
 * (known, unique, requestable, non-empty) so a typo is an error, not a watch
 * that never fires.
 */

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "protocol.h"

_Static_assert(EVD_EVENT_IN == POLLIN, "poll bit");
_Static_assert(EVD_EVENT_PRI == POLLPRI, "poll bit");
_Static_assert(EVD_EVENT_OUT == POLLOUT, "poll bit");
_Static_assert(EVD_EVENT_ERR == POLLERR, "poll bit");
_Static_assert(EVD_EVENT_HUP == POLLHUP, "poll bit");
_Static_assert(EVD_EVENT_RDHUP == POLLRDHUP, "poll bit");
_Static_assert(EVD_MAX_FDS <= 32, "FdList.taken is a 32-bit mask");

static const struct {
        int code;
        const char *message;
} error_table[] = {
        {EVD_ERR_PARSE, "Parse error"},
        {EVD_ERR_INVALID_REQUEST, "Invalid Request"},
        {EVD_ERR_METHOD_NOT_FOUND, "Method not found"},
        {EVD_ERR_INVALID_PARAMS, "Invalid params"},
        {EVD_ERR_INTERNAL, "Internal error"},
        {EVD_ERR_NO_SUCH_WATCH, "No such watch"},
        {EVD_ERR_NO_SUCH_TIMER, "No such timer"},
        {EVD_ERR_BAD_FD, "Bad file descriptor"},
        {EVD_ERR_QUOTA, "Quota exceeded"},
        {EVD_ERR_PERMISSION, "Permission denied"},
        {EVD_ERR_FDS_TRUNCATED, "Too many file descriptors"},
        {EVD_ERR_TOO_LARGE, "Message too large"},
        {EVD_ERR_SHUTTING_DOWN, "Shutting down"},
        {EVD_ERR_NO_FDS, "Out of file descriptors"},
        {EVD_ERR_REPLY_BUDGET, "Reply budget exceeded"},
};

/* Table order is the order protocol_events_to_json() emits: stable for tests and humans. */
static const struct {
        uint32_t bit;
        const char *name;
} event_table[] = {
        {EVD_EVENT_IN, "in"},   {EVD_EVENT_PRI, "pri"}, {EVD_EVENT_OUT, "out"},
        {EVD_EVENT_ERR, "err"}, {EVD_EVENT_HUP, "hup"}, {EVD_EVENT_RDHUP, "rdhup"},
};

/**
 * evd_error_message() - fixed short message for an error code
 * @code: one of the EVD_ERR_* codes
 *
 * Return: a static string ("Parse error", "No such watch", ...), NULL for an unknown code.
 */
const char *evd_error_message(int code) {
        for (size_t i = 0; i < ELEMENTSOF(error_table); i++)
                if (error_table[i].code == code)
                        return error_table[i].message;
        return NULL;
}

/**
 * protocol_event_name() - wire name of one event bit
 * @event: exactly one EVD_EVENT_* bit
 *
 * Return: a static string, NULL if @event is not exactly one known bit.
 */
const char *protocol_event_name(uint32_t event) {
        for (size_t i = 0; i < ELEMENTSOF(event_table); i++)
                if (event_table[i].bit == event)
                        return event_table[i].name;
        return NULL;
}

/**
 * protocol_event_from_name() - event bit for a wire name
 * @name: "in", "pri", "out", "err", "hup" or "rdhup" (case-sensitive)
 *
 * Return: the EVD_EVENT_* bit, 0 for an unknown name or NULL.
 */
uint32_t protocol_event_from_name(const char *name) {
        if (!name)
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(event_table); i++)
                if (strcmp(event_table[i].name, name) == 0)
                        return event_table[i].bit;
        return 0;
}

/**
 * protocol_events_from_json() - validate and convert an array of event names
 * @array: the JSON value from the request (borrowed)
 * @requestable_mask: bits the caller accepts (EVD_EVENTS_REQUESTABLE for requests)
 * @ret_events: OR of the bits, written on success
 * @ret_why: static reason on failure (may be NULL), for the error's data.why
 *
 * The array must be non-empty and hold unique, known strings that are all in
 * @requestable_mask.
 *
 * Return: 0, or -EINVAL with *@ret_why set.
 */
int protocol_events_from_json(const json_t *array, uint32_t requestable_mask, uint32_t *ret_events,
                              const char **ret_why) {
        const char *why;
        uint32_t events = 0;
        size_t i;
        json_t *v;

        if (!json_is_array(array)) {
                why = "must be an array of event names";
                goto fail;
        }
        if (json_array_size(array) == 0) {
                why = "must not be empty";
                goto fail;
        }
        json_array_foreach(array, i, v) {
                uint32_t bit;

                if (!json_is_string(v)) {
                        why = "event names must be strings";
                        goto fail;
                }
                /* No embedded NUL can reach here (jansson rejects \u0000), so strcmp is exact. */
                bit = protocol_event_from_name(json_string_value(v));
                if (bit == 0) {
                        why = "unknown event name";
                        goto fail;
                }
                if (!(bit & requestable_mask)) {
                        why = "event cannot be requested";
                        goto fail;
                }
                if (events & bit) {
                        why = "duplicate event name";
                        goto fail;
                }
                events |= bit;
        }

        *ret_events = events;
        return 0;

fail:
        if (ret_why)
                *ret_why = why;
        return -EINVAL;
}

/**
 * protocol_events_to_json() - array of wire names for a set of event bits
 * @events: OR of EVD_EVENT_* bits; unknown bits are ignored
 *
 * Return: a new reference (possibly an empty array), NULL on OOM.
 */
json_t *protocol_events_to_json(uint32_t events) {
        json_t *array = json_array();

        if (!array)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(event_table); i++) {
                if (!(events & event_table[i].bit))
                        continue;
                if (json_array_append_new(array, json_string(event_table[i].name)) < 0) {
                        json_decref(array);
                        return NULL;
                }
        }
        return array;
}

/**
 * protocol_tag_check() - check a watch/timer tag against EVD_MAX_TAG
 * @tag: any JSON value (borrowed)
 *
 * The tag is echoed in every notification, so its compact size is what counts.
 * json_dumpb() with no buffer only measures, it does not allocate.
 *
 * Return: 0, -EMSGSIZE if larger than EVD_MAX_TAG bytes, -EINVAL if it cannot be encoded.
 */
int protocol_tag_check(const json_t *tag) {
        size_t size;

        if (!tag)
                return -EINVAL;
        size = json_dumpb(tag, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
        if (size == 0)
                return -EINVAL;
        if (size > EVD_MAX_TAG)
                return -EMSGSIZE;
        return 0;
}

int protocol_default_socket_path(char **ret) {
        const char *env = getenv("EVD_SOCKET"), *runtime;
        char *path = NULL;

        if (env && *env)
                path = strdup(env);
        else if (geteuid() == 0)
                path = strdup(EVD_SYSTEM_SOCKET);
        else {
                runtime = getenv("XDG_RUNTIME_DIR");
                if (!runtime || runtime[0] != '/')
                        return -ENXIO;
                if (asprintf(&path, "%s/evd/evd.sock", runtime) < 0)
                        path = NULL;
        }
        if (!path)
                return -ENOMEM;
        *ret = path;
        return 0;
}
