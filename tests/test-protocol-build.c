/* test-protocol-build.c - jsonrpc.c: building replies, errors, notifications and requests;
 * encoding
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

/* ---- jsonrpc.c: builders and encoding ---- */

START_TEST(test_build_reply) {
        json_t *id = json_integer(7), *m;

        m = jsonrpc_reply(id, json_pack("{s:i}", "watch", 1));
        assert_encodes(m, "{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"watch\":1}}");
        /* The id was borrowed: the reply holds its own reference. */
        ck_assert_int_eq(id->refcount, 2);
        json_decref(m);
        ck_assert_int_eq(id->refcount, 1);
        json_decref(id);

        m = jsonrpc_reply(NULL, json_true());
        assert_encodes(m, "{\"jsonrpc\":\"2.0\",\"id\":null,\"result\":true}");
        json_decref(m);

        /* A failed json_pack() upstream propagates as NULL. */
        ck_assert_ptr_null(jsonrpc_reply(NULL, NULL));
}
END_TEST

START_TEST(test_build_error) {
        json_t *id = json_string("a"), *m;

        m = jsonrpc_error(id, EVD_ERR_NO_SUCH_WATCH, NULL,
                          jsonrpc_error_data("watch", "not one of yours"));
        assert_encodes(m, "{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"error\":{\"code\":-32001,"
                          "\"message\":\"No such watch\",\"data\":{\"param\":\"watch\","
                          "\"why\":\"not one of yours\"}}}");
        json_decref(m);
        json_decref(id);

        m = jsonrpc_error(NULL, EVD_ERR_PARSE, NULL, NULL);
        assert_encodes(m, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,"
                          "\"message\":\"Parse error\"}}");
        json_decref(m);

        m = jsonrpc_error(NULL, -32050, NULL, NULL);
        assert_encodes(m, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32050,"
                          "\"message\":\"Server error\"}}");
        json_decref(m);

        m = jsonrpc_error(json_null(), EVD_ERR_QUOTA, "Too many watches",
                          json_pack("{s:i}", "max", 4));
        assert_encodes(m, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32004,"
                          "\"message\":\"Too many watches\",\"data\":{\"max\":4}}}");
        json_decref(m);

        m = jsonrpc_error_data(NULL, "why only");
        assert_encodes(m, "{\"why\":\"why only\"}");
        json_decref(m);
        m = jsonrpc_error_data("fd", NULL);
        assert_encodes(m, "{\"param\":\"fd\"}");
        json_decref(m);
}
END_TEST

START_TEST(test_build_notification_request) {
        json_t *m;

        m = jsonrpc_notification("ready", json_pack("{s:i,s:n,s:[s],s:i}", "watch", 3, "tag",
                                                    "events", "in", "count", 1));
        assert_encodes(m, "{\"jsonrpc\":\"2.0\",\"method\":\"ready\",\"params\":{\"watch\":3,"
                          "\"tag\":null,\"events\":[\"in\"],\"count\":1}}");
        json_decref(m);
        ck_assert_ptr_null(jsonrpc_notification("ready", NULL));

        m = jsonrpc_request_new(1, "ping", NULL);
        assert_encodes(m, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}");
        json_decref(m);
        m = jsonrpc_request_new(INT64_MAX, "unwatch", json_pack("{s:i}", "watch", 9));
        assert_encodes(m, "{\"jsonrpc\":\"2.0\",\"id\":9223372036854775807,\"method\":\"unwatch\","
                          "\"params\":{\"watch\":9}}");
        json_decref(m);
}
END_TEST

START_TEST(test_build_roundtrip) {
        char buf[EVD_MAX_PACKET];
        JsonRpcRequest req;
        const char *why;
        json_t *m, *back;
        size_t len;
        int code;

        /* What a client builds, the server accepts. */
        m = jsonrpc_request_new(42, "timer",
                                json_pack("{s:f,s:s}", "after", 0.25, "tag", "t\xc3\xa9"));
        ck_assert_int_eq(jsonrpc_encode(m, buf, sizeof(buf), &len), 0);
        ck_assert_int_eq(jsonrpc_parse(buf, len, &back, NULL), 0);
        ck_assert_int_eq(jsonrpc_request_check(back, &req, &code, &why), 0);
        ck_assert_int_eq(json_integer_value(req.id), 42);
        ck_assert_str_eq(req.method, "timer");
        ck_assert(json_equal(req.params, json_object_get(m, "params")));
        /* UTF-8 on the wire, not \u escapes. */
        ck_assert_ptr_nonnull(memmem(buf, len, "t\xc3\xa9", 3));
        json_decref(back);
        json_decref(m);
}
END_TEST

START_TEST(test_encode) {
        static char buf[EVD_MAX_PACKET];
        char *a = NULL, small[8];
        size_t len = 12345;
        json_t *v;

        v = json_pack("[i]", 1234);
        ck_assert_int_eq(jsonrpc_encode(v, small, 6, &len), 0);
        ck_assert_uint_eq(len, 6);
        ck_assert_mem_eq(small, "[1234]", 6);
        len = 12345;
        ck_assert_int_eq(jsonrpc_encode(v, small, 5, &len), -EMSGSIZE);
        ck_assert_uint_eq(len, 12345);
        ck_assert_int_eq(jsonrpc_encode_alloc(v, &a, &len), 0);
        ck_assert_uint_eq(len, 6);
        ck_assert_str_eq(a, "[1234]");
        free(a);
        json_decref(v);

        /* A 70 KB value does not fit a packet. */
        v = json_pack("{s:o}", "tag", string_of(70 * 1024));
        ck_assert_int_eq(jsonrpc_encode(v, buf, sizeof(buf), &len), -EMSGSIZE);
        a = NULL;
        ck_assert_int_eq(jsonrpc_encode_alloc(v, &a, &len), -EMSGSIZE);
        ck_assert_ptr_null(a);
        json_decref(v);

        /* Messages are objects or arrays; a bare scalar is a programming error. */
        v = json_integer(1);
        ck_assert_int_eq(jsonrpc_encode(v, buf, sizeof(buf), &len), -EINVAL);
        ck_assert_int_eq(jsonrpc_encode_alloc(v, &a, &len), -EINVAL);
        json_decref(v);
}
END_TEST

/* ---- tcase ---------------------------------------------------------------------------- */

void protocol_build_tests(Suite *s) {
        TCase *tc;

        tc = tcase_create("build");
        suite_add_tcase(s, tc);
        tcase_add_test(tc, test_build_reply);
        tcase_add_test(tc, test_build_error);
        tcase_add_test(tc, test_build_notification_request);
        tcase_add_test(tc, test_build_roundtrip);
        tcase_add_test(tc, test_encode);
}
