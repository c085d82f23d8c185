/* test-daemon-errors.c - errors: JSON, JSON-RPC, params, methods
 *
 * Parse errors, invalid requests, notifications (no id) that still execute, every invalid
 * parameter of every method, and unknown methods: codes, messages and ids as PROTOCOL.md says.
 *
 * Part of the daemon suite: test-daemon.c runs it (see there for how every test starts and
 * stops its daemon); the helpers are in util-rpc.h, util-json.h, util-fd.h.
 */

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jsonrpc.h"
#include "macro.h"
#include "test-daemon.h"
#include "util-check.h"
#include "util-daemon.h"
#include "util-fd.h"
#include "util-json.h"
#include "util-rpc.h"
#include "util-time.h"
#include "wire.h"

/* ---- errors: JSON, JSON-RPC, methods ------------------------------------------------ */

typedef struct RawCase {
        const char *text;
        size_t len; /* may hold NUL bytes */
} RawCase;

#define RAW(s)                                                                                     \
        { s, sizeof(s) - 1 }

START_TEST(test_parse_errors) {
        static const RawCase cases[] = {
                RAW("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\""),
                RAW("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"p\xffing\"}"), /* invalid UTF-8 */
                RAW("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"p\xc0\xafing\"}"), /* overlong */
                RAW("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"p\xed\xa0\x80ing\"}"), /* surrogate
                                                                                        */
                RAW("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"p\\u0000ing\"}"),      /* \u0000 */
                RAW("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"p\x01ing\"}"), /* raw control */
                RAW("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"p\0ing\"}"),   /* raw NUL */
                RAW("{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":2,\"method\":\"ping\"}"), /* duplicate key
                                                                                     */
                RAW("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"timer\",\"params\":{\"after\":1,"
                    "\"after\":2}}"),
                RAW("{\"jsonrpc\":\"2.0\",\"id\":9223372036854775808,\"method\":\"ping\"}"),
                RAW("{\"jsonrpc\":\"2.0\",\"id\":-9223372036854775809,\"method\":\"ping\"}"),
                RAW("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"timer\",\"params\":{\"after\":"
                    "1e400}}"),
                RAW("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"} x"), /* trailing data */
                RAW("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\0"), /* trailing NUL */
                RAW("{'jsonrpc':'2.0'}"),
                RAW("nul"),
        };
        TestDaemon d;
        TestClient c;
        json_t *r;
        char *deep;

        start(&d, &c, NULL);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                r = raw_call(&c, cases[i].text, cases[i].len);
                ck_assert_msg(json_is_object(r), "case %zu: reply is not one object", i);
                check_error(r, -32700, NULL, "null");
                json_decref(r);
        }
        /* Nesting deeper than 2048 levels is a parse error, not a crash. */
        deep = malloc(2 * 2049 + 1);
        ck_assert_ptr_nonnull(deep);
        memset(deep, '[', 2049);
        memset(deep + 2049, ']', 2049);
        r = raw_call(&c, deep, 2 * 2049);
        check_error(r, -32700, NULL, "null");
        json_decref(r);
        free(deep);
        /* Trailing whitespace is fine; the connection survived all of the above. */
        r = raw_call(&c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"} \n\t ",
                     strlen("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"} \n\t "));
        assert_json(r, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}");
        json_decref(r);
        stop(&d, &c);
}
END_TEST

typedef struct InvalidCase {
        const char *text;
        int code;
        const char *id; /* compact text of the id the error must carry */
} InvalidCase;

START_TEST(test_invalid_requests) {
        static const InvalidCase cases[] = {
                { "1", -32600, "null" },
                { "\"x\"", -32600, "null" },
                { "null", -32600, "null" },
                { "true", -32600, "null" },
                { "[]", -32600, "null" },
                { "{}", -32600, "null" },
                { "{\"jsonrpc\":\"1.0\",\"id\":7,\"method\":\"ping\"}", -32600, "7" },
                { "{\"jsonrpc\":2.0,\"id\":7,\"method\":\"ping\"}", -32600, "7" },
                { "{\"id\":7,\"method\":\"ping\"}", -32600, "7" },
                { "{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"ping\"}", -32600, "null" },
                { "{\"jsonrpc\":\"2.0\",\"id\":1.0,\"method\":\"ping\"}", -32600, "null" },
                { "{\"jsonrpc\":\"2.0\",\"id\":1e3,\"method\":\"ping\"}", -32600, "null" },
                { "{\"jsonrpc\":\"2.0\",\"id\":true,\"method\":\"ping\"}", -32600, "null" },
                { "{\"jsonrpc\":\"2.0\",\"id\":[1],\"method\":\"ping\"}", -32600, "null" },
                { "{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"ping\"}", -32600, "null" },
                { "{\"jsonrpc\":\"2.0\",\"id\":7}", -32600, "7" },
                { "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":5}", -32600, "7" },
                { "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\",\"params\":5}", -32600, "7" },
                { "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\",\"params\":\"x\"}", -32600,
                  "7" },
                { "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\",\"params\":null}", -32600,
                  "7" },
                { "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\",\"parmas\":{}}", -32600, "7" },
                /* Answered although it has no id: it is not a valid notification. */
                { "{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"extra\":1}", -32600, "null" },
                { "{\"jsonrpc\":\"2.0\",\"method\":5}", -32600, "null" },
                /* Array params: valid JSON-RPC that evd's methods cannot take. */
                { "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\",\"params\":[]}", -32602, "7" },
                { "{\"jsonrpc\":\"2.0\",\"id\":\"s\",\"method\":\"timer\",\"params\":[1]}", -32602,
                  "\"s\"" },
                { "{\"jsonrpc\":\"2.0\",\"id\":\"abc\",\"method\":\"nope\"}", -32601, "\"abc\"" },
                { "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"Ping\"}", -32601, "8" },
        };
        static const char *const echoes[] = {
                "\"s-1\"",
                "null",
                "0",
                "-5",
                "9007199254740991",
                "9223372036854775807",
                "-9223372036854775808",
                "\"\"",
                "\"\xc3\xa9\"",
        };
        TestDaemon d;
        TestClient c;
        json_t *r;
        char text[256];

        start(&d, &c, NULL);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                r = raw_call(&c, cases[i].text, strlen(cases[i].text));
                ck_assert_msg(json_is_object(r), "%s: the reply is not one object", cases[i].text);
                check_error(r, cases[i].code, NULL, cases[i].id);
                json_decref(r);
        }
        /* Valid ids come back unchanged; "id": null is a request, answered with null. */
        for (size_t i = 0; i < ELEMENTSOF(echoes); i++) {
                snprintf(text, sizeof(text), "{\"jsonrpc\":\"2.0\",\"id\":%s,\"method\":\"ping\"}",
                         echoes[i]);
                r = raw_call(&c, text, strlen(text));
                ck_assert_msg(json_text_is(json_object_get(r, "id"), echoes[i]), "id %s not echoed",
                              echoes[i]);
                ck_assert_ptr_nonnull(json_object_get(r, "result"));
                json_decref(r);
        }
        /* A notification is never answered, even when it fails. */
        send_text(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"nope\"}");
        send_text(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"timer\",\"params\":{\"after\":-1}}");
        send_text(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"ping\"}");
        expect_no_reply(&c);
        ck_assert_int_eq(status_int(&c, "timers"), 0);
        stop(&d, &c);
}
END_TEST

/* A notification is executed: a watch sent without id exists, unnamed, until disconnect. */
START_TEST(test_notification_executes) {
        TestDaemon d;
        TestClient c, admin;
        int p[2];

        start(&d, &c, NULL);
        ck_assert_int_eq(test_client_connect(&admin, d.socket), 0);
        make_pipe(p);
        test_client_send(&c,
                         json_pack("{s:s,s:s,s:{s:i,s:[s],s:s}}", "jsonrpc", "2.0", "method",
                                   "watch", "params", "fd", 0, "events", "in", "mode", "edge"),
                         &p[0], 1);
        expect_no_reply(&c);
        ck_assert_int_eq(status_int(&admin, "watches"), 1);
        ck_assert_int_eq(list_total(&c, "watches", NULL), 1);
        test_client_close(&c);
        wait_status(&admin, "watches", 0);
        close_pair(p);
        stop(&d, &admin);
}
END_TEST

typedef struct ParamCase {
        const char *method;
        /* At top level, "$o", "$e", "$t" stand for the test's watch and timer ids, "$tag" for a
         * string tag of exactly 1,024 bytes encoded (the limit) and "$bigtag" for 1,025. */
        const char *params;
        int code;
        const char *param; /* NULL: not documented, not checked */
} ParamCase;

static const ParamCase param_cases[] = {
        /* watch: one fd (a pipe) rides on every packet */
        { "watch", "{\"events\":[\"in\"],\"mode\":\"oneshot\"}", -32602, "fd" },
        { "watch", "{\"fd\":\"0\",\"events\":[\"in\"],\"mode\":\"oneshot\"}", -32602, "fd" },
        { "watch", "{\"fd\":0.0,\"events\":[\"in\"],\"mode\":\"oneshot\"}", -32602, "fd" },
        { "watch", "{\"fd\":null,\"events\":[\"in\"],\"mode\":\"oneshot\"}", -32602, "fd" },
        { "watch", "{\"fd\":0,\"mode\":\"oneshot\"}", -32602, "events" },
        { "watch", "{\"fd\":0,\"events\":\"in\",\"mode\":\"oneshot\"}", -32602, "events" },
        { "watch", "{\"fd\":0,\"events\":[],\"mode\":\"oneshot\"}", -32602, "events" },
        { "watch", "{\"fd\":0,\"events\":[\"in\",\"in\"],\"mode\":\"oneshot\"}", -32602, "events" },
        { "watch", "{\"fd\":0,\"events\":[\"err\"],\"mode\":\"oneshot\"}", -32602, "events" },
        { "watch", "{\"fd\":0,\"events\":[\"hup\"],\"mode\":\"oneshot\"}", -32602, "events" },
        { "watch", "{\"fd\":0,\"events\":[\"IN\"],\"mode\":\"oneshot\"}", -32602, "events" },
        { "watch", "{\"fd\":0,\"events\":[1],\"mode\":\"oneshot\"}", -32602, "events" },
        { "watch", "{\"fd\":0,\"events\":[\"in\"]}", -32602, "mode" },
        { "watch", "{\"fd\":0,\"events\":[\"in\"],\"mode\":\"level\"}", -32602, "mode" },
        { "watch", "{\"fd\":0,\"events\":[\"in\"],\"mode\":1}", -32602, "mode" },
        { "watch", "{\"fd\":0,\"events\":[\"in\"],\"mode\":\"oneshot\",\"tag\":\"$bigtag\"}",
          -32602, "tag" },
        { "watch", "{\"fd\":0,\"events\":[\"in\"],\"mode\":\"oneshot\",\"flags\":1}", -32602,
          "flags" },
        /* modify */
        { "modify", "{\"events\":[\"in\"]}", -32602, "watch" },
        { "modify", "{\"watch\":\"1\",\"events\":[\"in\"]}", -32602, "watch" },
        { "modify", "{\"watch\":0,\"events\":[\"in\"]}", -32602, "watch" },
        { "modify", "{\"watch\":-1,\"events\":[\"in\"]}", -32602, "watch" },
        { "modify", "{\"watch\":1.5,\"events\":[\"in\"]}", -32602, "watch" },
        { "modify", "{\"watch\":\"$o\"}", -32602, NULL },
        { "modify", "{\"watch\":\"$o\",\"events\":[\"bogus\"]}", -32602, "events" },
        { "modify", "{\"watch\":\"$o\",\"events\":[]}", -32602, "events" },
        { "modify", "{\"watch\":\"$o\",\"events\":[\"err\"]}", -32602, "events" },
        { "modify", "{\"watch\":\"$o\",\"mode\":\"level\"}", -32602, "mode" },
        { "modify", "{\"watch\":\"$o\",\"mode\":null}", -32602, "mode" },
        { "modify", "{\"watch\":\"$o\",\"mode\":\"edge\",\"tag\":1}", -32602, "tag" },
        /* arm, unwatch */
        { "arm", "{}", -32602, "watch" },
        { "arm", "{\"watch\":\"x\"}", -32602, "watch" },
        { "arm", "{\"watch\":0}", -32602, "watch" },
        { "arm", "{\"watch\":\"$e\"}", -32602, "watch" },
        { "arm", "{\"watch\":\"$o\",\"x\":1}", -32602, "x" },
        { "unwatch", "{}", -32602, "watch" },
        { "unwatch", "{\"watch\":true}", -32602, "watch" },
        { "unwatch", "{\"watch\":-3}", -32602, "watch" },
        { "unwatch", "{\"watch\":\"$o\",\"x\":1}", -32602, "x" },
        /* timer */
        { "timer", "{}", -32602, NULL },
        { "timer", "{\"after\":1,\"at\":1}", -32602, NULL },
        { "timer", "{\"after\":-1}", -32602, "after" },
        { "timer", "{\"after\":-0.001}", -32602, "after" },
        { "timer", "{\"after\":\"1\"}", -32602, "after" },
        { "timer", "{\"after\":null}", -32602, "after" },
        { "timer", "{\"after\":2147483649}", -32602, "after" },
        { "timer", "{\"at\":-5}", -32602, "at" },
        { "timer", "{\"at\":\"x\"}", -32602, "at" },
        { "timer", "{\"at\":1e10}", -32602, "at" },
        { "timer", "{\"after\":1,\"interval\":0}", -32602, "interval" },
        { "timer", "{\"after\":1,\"interval\":0.0009}", -32602, "interval" },
        { "timer", "{\"after\":1,\"interval\":-1}", -32602, "interval" },
        { "timer", "{\"after\":1,\"interval\":\"1\"}", -32602, "interval" },
        { "timer", "{\"after\":1,\"interval\":2147483649}", -32602, "interval" },
        { "timer", "{\"after\":1,\"tag\":\"$bigtag\"}", -32602, "tag" },
        { "timer", "{\"after\":1,\"every\":1}", -32602, "every" },
        /* cancel */
        { "cancel", "{}", -32602, "timer" },
        { "cancel", "{\"timer\":\"1\"}", -32602, "timer" },
        { "cancel", "{\"timer\":0}", -32602, "timer" },
        { "cancel", "{\"timer\":[1]}", -32602, "timer" },
        { "cancel", "{\"timer\":\"$t\",\"x\":1}", -32602, "x" },
        /* no-parameter methods */
        { "ping", "{\"x\":1}", -32602, "x" },
        { "status", "{\"verbose\":true}", -32602, "verbose" },
        { "stats", "{\"x\":1}", -32602, "x" },
        { "monitor", "{\"x\":1}", -32602, "x" },
        /* listings */
        { "clients", "{\"offset\":-1}", -32602, "offset" },
        { "clients", "{\"offset\":\"0\"}", -32602, "offset" },
        { "clients", "{\"offset\":1.5}", -32602, "offset" },
        { "clients", "{\"limit\":0}", -32602, "limit" },
        { "clients", "{\"limit\":10001}", -32602, "limit" },
        { "clients", "{\"limit\":\"5\"}", -32602, "limit" },
        { "clients", "{\"client\":1}", -32602, "client" },
        { "watches", "{\"client\":\"x\"}", -32602, "client" },
        { "watches", "{\"client\":0}", -32602, "client" },
        { "watches", "{\"client\":999999}", -32602, "client" },
        { "watches", "{\"offset\":-1}", -32602, "offset" },
        { "watches", "{\"limit\":0}", -32602, "limit" },
        { "watches", "{\"limit\":10001}", -32602, "limit" },
        { "watches", "{\"limit\":null}", -32602, "limit" },
        { "watches", "{\"watch\":\"$o\"}", -32602, "watch" },
        { "timers", "{\"client\":\"x\"}", -32602, "client" },
        { "timers", "{\"client\":-1}", -32602, "client" },
        { "timers", "{\"client\":999999}", -32602, "client" },
        { "timers", "{\"offset\":true}", -32602, "offset" },
        { "timers", "{\"limit\":0}", -32602, "limit" },
        { "timers", "{\"limit\":10001}", -32602, "limit" },
        { "timers", "{\"x\":1}", -32602, "x" },
        /* the edges that are accepted */
        { "watch",
          "{\"fd\":0,\"events\":[\"in\",\"pri\",\"out\",\"rdhup\"],\"mode\":\"edge\",\"tag\":\"$"
          "tag\"}",
          0, NULL },
        { "timer", "{\"after\":2147483648,\"tag\":\"$tag\"}", 0, NULL },
        { "timer", "{\"after\":0.5,\"interval\":0.001}", 0, NULL },
        { "watches", "{\"limit\":10000,\"offset\":0}", 0, NULL },
        { "clients", "{\"limit\":1}", 0, NULL },
};

/* Replace the placeholders of a ParamCase's params. */
static void fill_placeholders(json_t *params, json_int_t o, json_int_t e, json_int_t t) {
        char tag[1024];
        const char *key;
        json_t *v;

        memset(tag, 'x', sizeof(tag) - 1);
        tag[sizeof(tag) - 1] = 0;
        json_object_foreach(params, key, v) {
                const char *s = json_string_value(v);

                if (streq(s, "$o"))
                        json_object_set_new(params, key, json_integer(o));
                else if (streq(s, "$e"))
                        json_object_set_new(params, key, json_integer(e));
                else if (streq(s, "$t"))
                        json_object_set_new(params, key, json_integer(t));
                else if (streq(s, "$tag")) /* 1,022 bytes and two quotes */
                        json_object_set_new(params, key, json_stringn(tag, 1022));
                else if (streq(s, "$bigtag"))
                        json_object_set_new(params, key, json_stringn(tag, 1023));
        }
}

/* -32602 for each parameter of each method: missing, mistyped, out of range, unknown. */
START_TEST(test_invalid_params) {
        TestDaemon d;
        TestClient c;
        json_int_t o, e, t;
        int p[2];

        start(&d, &c, NULL);
        make_pipe(p);
        o = watch_fd(&c, p[0], "in", "oneshot", NULL);
        e = watch_fd(&c, p[0], "in", "edge", NULL);
        t = add_timer(&c, 1000, 0, 0, NULL);
        for (size_t i = 0; i < ELEMENTSOF(param_cases); i++) {
                const ParamCase *pc = &param_cases[i];
                json_error_t jerr;
                json_t *params = json_loads(pc->params, 0, &jerr), *reply, *err;
                char *s;

                ck_assert_msg(params, "case %zu: %s", i, jerr.text);
                fill_placeholders(params, o, e, t);
                reply = test_client_call(&c, pc->method, params, &p[0], 1);
                s = dump(reply);
                err = json_object_get(reply, "error");
                if (pc->code == 0) {
                        ck_assert_msg(json_object_get(reply, "result"), "%s %s: %s", pc->method,
                                      pc->params, s);
                } else {
                        ck_assert_msg(json_integer_value(json_object_get(err, "code")) == pc->code,
                                      "%s %s: expected %d, got %s", pc->method, pc->params,
                                      pc->code, s);
                        if (pc->param)
                                ck_assert_msg(streq(json_string_value(json_object_get(
                                                            json_object_get(err, "data"), "param")),
                                                    pc->param),
                                              "%s %s: expected data.param \"%s\", got %s",
                                              pc->method, pc->params, pc->param, s);
                }
                free(s);
                json_decref(reply);
        }
        /* Nothing that failed was created: 2 watches + 1 accepted, 1 timer + 2 accepted. */
        ck_assert_int_eq(status_int(&c, "watches"), 3);
        ck_assert_int_eq(status_int(&c, "timers"), 3);
        close_pair(p);
        stop(&d, &c);
}
END_TEST

START_TEST(test_method_not_found) {
        TestDaemon d;
        TestClient c;
        json_t *r;

        start(&d, &c, NULL);
        call_error(&c, "nope", NULL, NULL, 0, -32601, NULL);
        call_error(&c, "", NULL, NULL, 0, -32601, NULL);
        call_error(&c, "rpc.discover", json_object(), NULL, 0, -32601, NULL);
        /* A debugging method that must stay hidden unless the daemon runs with EVD_DEBUG=1. */
        call_error(&c, "debug-wedge", json_pack("{s:f}", "seconds", 0.0), NULL, 0, -32601, NULL);
        r = raw_call(&c, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"p\xc3\xafng\"}",
                     strlen("{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"p\xc3\xafng\"}"));
        check_error(r, -32601, NULL, "3");
        json_decref(r);
        stop(&d, &c);
}
END_TEST

/* ---- tcase ---------------------------------------------------------------------------- */

void daemon_errors_tests(Suite *s) {
        TCase *tc;

        tc = test_tcase(s, "errors", 60);
        tcase_add_test(tc, test_parse_errors);
        tcase_add_test(tc, test_invalid_requests);
        tcase_add_test(tc, test_notification_executes);
        tcase_add_test(tc, test_invalid_params);
        tcase_add_test(tc, test_method_not_found);
}
