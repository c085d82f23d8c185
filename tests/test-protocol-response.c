/* test-protocol-response.c - jsonrpc.c: the client side's classification of responses
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

/* ---- jsonrpc.c: client-side classification ---- */

static int check_resp(const char *s, JsonRpcResponse *r, json_t **ret_msg) {
        json_t *msg = parse_ok(s);
        int ret = jsonrpc_response_check(msg, r);

        *ret_msg = msg;
        return ret;
}

static void resp_bad(const char *s) {
        JsonRpcResponse r;
        json_t *msg;

        ck_assert_msg(check_resp(s, &r, &msg) == -EBADMSG, "accepted: %s", s);
        json_decref(msg);
}

START_TEST(test_response_check) {
        JsonRpcResponse r;
        json_t *msg;

        ck_assert_int_eq(
                check_resp("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"watch\":4}}", &r, &msg), 0);
        ck_assert_int_eq(r.kind, JSONRPC_RESULT);
        ck_assert_int_eq(json_integer_value(r.id), 1);
        ck_assert_int_eq(json_integer_value(json_object_get(r.result, "watch")), 4);
        json_decref(msg);

        ck_assert_int_eq(check_resp("{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,"
                                    "\"message\":\"Parse error\"}}",
                                    &r, &msg),
                         0);
        ck_assert_int_eq(r.kind, JSONRPC_ERROR);
        ck_assert(json_is_null(r.id));
        ck_assert_int_eq(r.code, EVD_ERR_PARSE);
        ck_assert_str_eq(r.message, "Parse error");
        ck_assert_ptr_null(r.data);
        json_decref(msg);

        ck_assert_int_eq(check_resp("{\"jsonrpc\":\"2.0\",\"id\":\"q\",\"error\":{\"code\":-32602,"
                                    "\"message\":\"Invalid params\",\"data\":{\"param\":\"fd\"}},"
                                    "\"future\":1}",
                                    &r, &msg),
                         0);
        ck_assert_int_eq(r.kind, JSONRPC_ERROR);
        ck_assert_str_eq(json_string_value(json_object_get(r.data, "param")), "fd");
        json_decref(msg);

        ck_assert_int_eq(check_resp("{\"jsonrpc\":\"2.0\",\"method\":\"ready\",\"params\":{"
                                    "\"watch\":1,\"tag\":null,\"events\":[\"in\"],\"count\":1}}",
                                    &r, &msg),
                         0);
        ck_assert_int_eq(r.kind, JSONRPC_NOTIFICATION);
        ck_assert_str_eq(r.method, "ready");
        ck_assert_ptr_null(r.id);
        ck_assert(json_is_object(r.params));
        json_decref(msg);

        ck_assert_int_eq(check_resp("{\"jsonrpc\":\"2.0\",\"method\":\"shutdown\"}", &r, &msg), 0);
        ck_assert_int_eq(r.kind, JSONRPC_NOTIFICATION);
        ck_assert_ptr_null(r.params);
        json_decref(msg);

        resp_bad("[]");
        resp_bad("{}");
        resp_bad("{\"id\":1,\"result\":1}");
        resp_bad("{\"jsonrpc\":\"1.0\",\"id\":1,\"result\":1}");
        resp_bad("{\"jsonrpc\":\"2.0\",\"id\":1}");
        resp_bad("{\"jsonrpc\":\"2.0\",\"result\":1}");
        resp_bad("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":1,"
                 "\"error\":{\"code\":1,\"message\":\"\"}}");
        resp_bad("{\"jsonrpc\":\"2.0\",\"id\":1.5,\"result\":1}");
        resp_bad("{\"jsonrpc\":\"2.0\",\"id\":{},\"result\":1}");
        resp_bad("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":\"bad\"}");
        resp_bad("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"message\":\"x\"}}");
        resp_bad("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-1.5,\"message\":\"x\"}}");
        resp_bad("{\"jsonrpc\":\"2.0\",\"id\":1,"
                 "\"error\":{\"code\":4294967296,\"message\":\"x\"}}");
        resp_bad("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1}}");
        resp_bad("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ready\",\"params\":{}}");
        resp_bad("{\"jsonrpc\":\"2.0\",\"method\":7}");
        resp_bad("{\"jsonrpc\":\"2.0\",\"method\":\"ready\",\"params\":3}");
}
END_TEST

/* ---- tcase ---------------------------------------------------------------------------- */

void protocol_response_tests(Suite *s) {
        TCase *tc;

        tc = tcase_create("response");
        suite_add_tcase(s, tc);
        tcase_add_test(tc, test_response_check);
}
