/* test-protocol-constants.c - protocol.c: error codes and messages, event names, events
 * from and to JSON, tags
 *
 * Part of the protocol suite (test-protocol.c runs it); helpers in util-fd.h, util-json.h.
 */

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fd-list.h"
#include "jsonrpc.h"
#include "macro.h"
#include "protocol.h"
#include "test-protocol.h"
#include "util-check.h"
#include "util-fd.h"
#include "util-json.h"
#include "wire.h"

/* ---- protocol.c: error codes, events, tags ---- */

START_TEST(test_error_messages) {
        ck_assert_int_eq(EVD_ERR_PARSE, -32700);
        ck_assert_int_eq(EVD_ERR_NO_FDS, -32009);
        ck_assert_str_eq(evd_error_message(EVD_ERR_PARSE), "Parse error");
        ck_assert_str_eq(evd_error_message(EVD_ERR_INVALID_REQUEST), "Invalid Request");
        ck_assert_str_eq(evd_error_message(EVD_ERR_METHOD_NOT_FOUND), "Method not found");
        ck_assert_str_eq(evd_error_message(EVD_ERR_INVALID_PARAMS), "Invalid params");
        ck_assert_str_eq(evd_error_message(EVD_ERR_INTERNAL), "Internal error");
        ck_assert_str_eq(evd_error_message(EVD_ERR_NO_SUCH_WATCH), "No such watch");
        ck_assert_str_eq(evd_error_message(EVD_ERR_NO_SUCH_TIMER), "No such timer");
        ck_assert_int_eq(EVD_ERR_REPLY_BUDGET, -32010);
        ck_assert_str_eq(evd_error_message(EVD_ERR_REPLY_BUDGET), "Reply budget exceeded");
        for (int code = EVD_ERR_REPLY_BUDGET; code <= EVD_ERR_NO_SUCH_WATCH; code++)
                ck_assert_ptr_nonnull(evd_error_message(code));
        ck_assert_ptr_null(evd_error_message(0));
        ck_assert_ptr_null(evd_error_message(-32000));
        ck_assert_ptr_null(evd_error_message(-32011));
        ck_assert_ptr_null(evd_error_message(-32099));
}
END_TEST

START_TEST(test_event_names) {
        ck_assert_uint_eq(protocol_event_from_name("in"), POLLIN);
        ck_assert_uint_eq(protocol_event_from_name("pri"), POLLPRI);
        ck_assert_uint_eq(protocol_event_from_name("out"), POLLOUT);
        ck_assert_uint_eq(protocol_event_from_name("err"), POLLERR);
        ck_assert_uint_eq(protocol_event_from_name("hup"), POLLHUP);
        ck_assert_uint_eq(protocol_event_from_name("rdhup"), POLLRDHUP);
        ck_assert_uint_eq(protocol_event_from_name("IN"), 0);
        ck_assert_uint_eq(protocol_event_from_name(""), 0);
        ck_assert_uint_eq(protocol_event_from_name(NULL), 0);
        ck_assert_str_eq(protocol_event_name(POLLRDHUP), "rdhup");
        ck_assert_ptr_null(protocol_event_name(POLLIN | POLLOUT));
        ck_assert_ptr_null(protocol_event_name(0));
}
END_TEST

static int events_from(const char *json, uint32_t mask, uint32_t *ret, const char **why) {
        json_error_t error;
        json_t *v = json_loads(json, JSON_DECODE_ANY, &error);
        int r;

        ck_assert_msg(v != NULL, "%s: %s", json, error.text);
        r = protocol_events_from_json(v, mask, ret, why);
        json_decref(v);
        return r;
}

START_TEST(test_events_from_json) {
        const char *why = NULL;
        uint32_t ev = 0xdead;

        ck_assert_int_eq(events_from("[\"in\",\"out\"]", EVD_EVENTS_REQUESTABLE, &ev, &why), 0);
        ck_assert_uint_eq(ev, POLLIN | POLLOUT);
        ck_assert_int_eq(events_from("[\"rdhup\",\"pri\",\"in\",\"out\"]", EVD_EVENTS_REQUESTABLE,
                                     &ev, NULL),
                         0);
        ck_assert_uint_eq(ev, POLLIN | POLLPRI | POLLOUT | POLLRDHUP);

        /* Failures leave the output alone and explain themselves. */
        ev = 0xdead;
        ck_assert_int_eq(events_from("[]", EVD_EVENTS_REQUESTABLE, &ev, &why), -EINVAL);
        ck_assert_str_eq(why, "must not be empty");
        ck_assert_int_eq(events_from("[\"in\",\"in\"]", EVD_EVENTS_REQUESTABLE, &ev, &why),
                         -EINVAL);
        ck_assert_str_eq(why, "duplicate event name");
        ck_assert_int_eq(events_from("[\"in\",\"foo\"]", EVD_EVENTS_REQUESTABLE, &ev, &why),
                         -EINVAL);
        ck_assert_str_eq(why, "unknown event name");
        ck_assert_int_eq(events_from("[\"err\"]", EVD_EVENTS_REQUESTABLE, &ev, &why), -EINVAL);
        ck_assert_str_eq(why, "event cannot be requested");
        ck_assert_int_eq(events_from("[\"hup\"]", EVD_EVENTS_REQUESTABLE, &ev, &why), -EINVAL);
        ck_assert_int_eq(events_from("[\"in\",1]", EVD_EVENTS_REQUESTABLE, &ev, &why), -EINVAL);
        ck_assert_str_eq(why, "event names must be strings");
        ck_assert_int_eq(events_from("\"in\"", EVD_EVENTS_REQUESTABLE, &ev, &why), -EINVAL);
        ck_assert_int_eq(events_from("{\"in\":true}", EVD_EVENTS_REQUESTABLE, &ev, &why), -EINVAL);
        ck_assert_int_eq(events_from("[\"In\"]", EVD_EVENTS_REQUESTABLE, &ev, NULL), -EINVAL);
        ck_assert_int_eq(events_from("[\"out\"]", EVD_EVENT_IN, &ev, &why), -EINVAL);
        ck_assert_uint_eq(ev, 0xdead);
        ck_assert_int_eq(protocol_events_from_json(NULL, EVD_EVENTS_ALL, &ev, &why), -EINVAL);

        /* A wider mask (a client decoding notifications) accepts err and hup. */
        ck_assert_int_eq(events_from("[\"err\",\"hup\"]", EVD_EVENTS_ALL, &ev, &why), 0);
        ck_assert_uint_eq(ev, POLLERR | POLLHUP);
}
END_TEST

START_TEST(test_events_to_json) {
        json_t *v;

        v = protocol_events_to_json(POLLRDHUP | POLLIN | POLLHUP);
        assert_encodes(v, "[\"in\",\"hup\",\"rdhup\"]");
        json_decref(v);
        v = protocol_events_to_json(0);
        assert_encodes(v, "[]");
        json_decref(v);
        /* Bits with no name (POLLNVAL, POLLMSG) are dropped, not invented. */
        v = protocol_events_to_json(POLLNVAL | 0x400 | POLLOUT);
        assert_encodes(v, "[\"out\"]");
        json_decref(v);

        /* Every non-empty requestable set survives a round trip. */
        for (uint32_t set = 1; set < 16; set++) {
                static const uint32_t bits[] = {POLLIN, POLLPRI, POLLOUT, POLLRDHUP};
                uint32_t events = 0, back = 0;

                for (unsigned i = 0; i < 4; i++)
                        if (set & (1u << i))
                                events |= bits[i];
                v = protocol_events_to_json(events);
                ck_assert_ptr_nonnull(v);
                ck_assert_int_eq(protocol_events_from_json(v, EVD_EVENTS_REQUESTABLE, &back, NULL),
                                 0);
                ck_assert_uint_eq(back, events);
                json_decref(v);
        }
}
END_TEST

START_TEST(test_tag_check) {
        json_t *v;

        ck_assert_int_eq(protocol_tag_check(NULL), -EINVAL);
        v = json_null();
        ck_assert_int_eq(protocol_tag_check(v), 0);
        v = json_integer(42);
        ck_assert_int_eq(protocol_tag_check(v), 0);
        json_decref(v);
        /* 1022 characters plus two quotes is exactly EVD_MAX_TAG. */
        v = string_of(EVD_MAX_TAG - 2);
        ck_assert_int_eq(protocol_tag_check(v), 0);
        json_decref(v);
        v = string_of(EVD_MAX_TAG - 1);
        ck_assert_int_eq(protocol_tag_check(v), -EMSGSIZE);
        json_decref(v);
        v = json_pack("{s:[i,i,i], s:s}", "a", 1, 2, 3, "b", "c");
        ck_assert_int_eq(protocol_tag_check(v), 0);
        json_decref(v);
}
END_TEST

/* ---- tcase ---------------------------------------------------------------------------- */

void protocol_constants_tests(Suite *s) {
        TCase *tc;

        tc = tcase_create("constants");
        suite_add_tcase(s, tc);
        tcase_add_test(tc, test_error_messages);
        tcase_add_test(tc, test_event_names);
        tcase_add_test(tc, test_events_from_json);
        tcase_add_test(tc, test_events_to_json);
        tcase_add_test(tc, test_tag_check);
}
