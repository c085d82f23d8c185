/* test-protocol-request.c - jsonrpc.c: request validation (valid, invalid, huge ids, known
 * params)
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

/* ---- jsonrpc.c: request validation ---- */

static int check_req(const char *s, JsonRpcRequest *req, int *code, const char **why,
                     json_t **ret_msg) {
        json_t *msg = parse_ok(s);
        int r;

        *code = 0;
        *why = NULL;
        r = jsonrpc_request_check(msg, req, code, why);
        if (r < 0) {
                ck_assert_int_eq(r, -EINVAL);
                ck_assert_ptr_nonnull(*why);
                ck_assert(*code == EVD_ERR_INVALID_REQUEST || *code == EVD_ERR_INVALID_PARAMS);
        }
        *ret_msg = msg;
        return r;
}

/* Expect failure with @code and an id that is NULL (expect_id NULL) or encodes as @expect_id. */
static void req_fails(const char *s, int expect_code, const char *expect_id) {
        JsonRpcRequest req;
        const char *why;
        json_t *msg;
        int code;

        ck_assert_msg(check_req(s, &req, &code, &why, &msg) == -EINVAL, "accepted: %s", s);
        ck_assert_msg(code == expect_code, "%s: code %d", s, code);
        if (expect_id) {
                char buf[64];
                size_t n = json_dumpb(req.id, buf, sizeof(buf), JSON_ENCODE_ANY);
                ck_assert_msg(req.id && n == strlen(expect_id) && memcmp(buf, expect_id, n) == 0,
                              "%s: wrong id", s);
        } else
                ck_assert_msg(req.id == NULL, "%s: id should be unset", s);
        ck_assert_ptr_null(req.method);
        ck_assert_ptr_null(req.params);
        json_decref(msg);
}

START_TEST(test_request_valid) {
        JsonRpcRequest req;
        const char *why;
        json_t *msg;
        int code;

        ck_assert_int_eq(check_req("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"watch\","
                                   "\"params\":{\"fd\":0,\"events\":[\"in\"]}}",
                                   &req, &code, &why, &msg),
                         0);
        ck_assert(json_is_integer(req.id));
        ck_assert_int_eq(json_integer_value(req.id), 7);
        ck_assert_str_eq(req.method, "watch");
        ck_assert(json_is_object(req.params));
        ck_assert_ptr_eq(req.params, json_object_get(msg, "params"));
        json_decref(msg);

        ck_assert_int_eq(check_req("{\"method\":\"ping\",\"jsonrpc\":\"2.0\",\"id\":\"abc\"}", &req,
                                   &code, &why, &msg),
                         0);
        ck_assert_str_eq(json_string_value(req.id), "abc");
        ck_assert_ptr_null(req.params);
        json_decref(msg);

        /* id null is a request (answered with id null), not a notification. */
        ck_assert_int_eq(check_req("{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}", &req,
                                   &code, &why, &msg),
                         0);
        ck_assert_ptr_nonnull(req.id);
        ck_assert(json_is_null(req.id));
        json_decref(msg);

        /* No id: a notification, no reply. */
        ck_assert_int_eq(check_req("{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"params\":{}}", &req,
                                   &code, &why, &msg),
                         0);
        ck_assert_ptr_null(req.id);
        ck_assert_str_eq(req.method, "ping");
        json_decref(msg);

        ck_assert_int_eq(check_req("{\"jsonrpc\":\"2.0\",\"id\":-9223372036854775808,"
                                   "\"method\":\"x\"}",
                                   &req, &code, &why, &msg),
                         0);
        ck_assert_int_eq(json_integer_value(req.id), INT64_MIN);
        json_decref(msg);
}
END_TEST

START_TEST(test_request_invalid) {
        const int INV = EVD_ERR_INVALID_REQUEST;

        req_fails("[1]", INV, NULL);
        req_fails("{}", INV, NULL);
        req_fails("{\"id\":1,\"method\":\"ping\"}", INV, "1");
        req_fails("{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}", INV, "1");
        req_fails("{\"jsonrpc\":2.0,\"id\":1,\"method\":\"ping\"}", INV, "1");
        req_fails("{\"jsonrpc\":\"2.0 \",\"id\":1,\"method\":\"ping\"}", INV, "1");
        req_fails("{\"jsonrpc\":\"2.0\",\"id\":\"x\"}", INV, "\"x\"");
        req_fails("{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":5}", INV, "2");
        req_fails("{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":null}", INV, "2");
        req_fails("{\"jsonrpc\":\"2.0\",\"method\":[\"ping\"]}", INV, NULL);
        req_fails("{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\",\"params\":\"x\"}", INV, "3");
        req_fails("{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\",\"params\":null}", INV, "3");
        req_fails("{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\",\"params\":7}", INV, "3");
        req_fails("{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"ping\",\"extra\":1}", INV, "4");
        req_fails("{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"param\":{}}", INV, NULL);

        /* Ids: fractional, real-typed, or not scalar are invalid and cannot be echoed. */
        req_fails("{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"ping\"}", INV, NULL);
        req_fails("{\"jsonrpc\":\"2.0\",\"id\":1.0,\"method\":\"ping\"}", INV, NULL);
        req_fails("{\"jsonrpc\":\"2.0\",\"id\":1e3,\"method\":\"ping\"}", INV, NULL);
        req_fails("{\"jsonrpc\":\"2.0\",\"id\":true,\"method\":\"ping\"}", INV, NULL);
        req_fails("{\"jsonrpc\":\"2.0\",\"id\":[1],\"method\":\"ping\"}", INV, NULL);
        req_fails("{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"ping\"}", INV, NULL);

        /* By-position params: a valid JSON-RPC request evd cannot take. */
        req_fails("{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"watch\",\"params\":[0,[\"in\"]]}",
                  EVD_ERR_INVALID_PARAMS, "5");
        req_fails("{\"jsonrpc\":\"2.0\",\"id\":\"p\",\"method\":\"watch\",\"params\":[]}",
                  EVD_ERR_INVALID_PARAMS, "\"p\"");

        /* Optional outputs may be NULL. */
        json_t *msg = parse_ok("{}");
        JsonRpcRequest req;
        ck_assert_int_eq(jsonrpc_request_check(msg, &req, NULL, NULL), -EINVAL);
        json_decref(msg);
}
END_TEST

START_TEST(test_request_huge_id) {
        json_error_t e;
        json_t *v = NULL;
        const char *s = "{\"jsonrpc\":\"2.0\",\"id\":18446744073709551616,\"method\":\"ping\"}";

        /* Never reaches request_check: the whole packet is a Parse error (id null). */
        ck_assert_int_eq(jsonrpc_parse(s, strlen(s), &v, &e), -EBADMSG);
        ck_assert_ptr_null(v);
        ck_assert_int_eq(json_error_code(&e), json_error_numeric_overflow);
}
END_TEST

START_TEST(test_params_known) {
        static const char *const known[] = {"fd", "events", "mode", "tag", NULL};
        const char *key = NULL;
        json_t *p;

        ck_assert_int_eq(jsonrpc_params_check_known(NULL, known, &key), 0);
        p = parse_ok("{\"fd\":0,\"events\":[\"in\"],\"tag\":null}");
        ck_assert_int_eq(jsonrpc_params_check_known(p, known, &key), 0);
        json_decref(p);
        p = parse_ok("{\"fd\":0,\"mdoe\":\"edge\"}");
        ck_assert_int_eq(jsonrpc_params_check_known(p, known, &key), -EINVAL);
        ck_assert_str_eq(key, "mdoe");
        json_decref(p);
        p = parse_ok("[]");
        ck_assert_int_eq(jsonrpc_params_check_known(p, known, &key), -EINVAL);
        ck_assert_ptr_null(key);
        json_decref(p);
}
END_TEST

/* ---- tcase ---------------------------------------------------------------------------- */

void protocol_request_tests(Suite *s) {
        TCase *tc;

        tc = tcase_create("request");
        suite_add_tcase(s, tc);
        tcase_add_test(tc, test_request_valid);
        tcase_add_test(tc, test_request_invalid);
        tcase_add_test(tc, test_request_huge_id);
        tcase_add_test(tc, test_params_known);
}
