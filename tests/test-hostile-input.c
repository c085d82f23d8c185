/* test-hostile-input.c - bad input: extreme numbers, deep nesting, NUL bytes, batch sizes
 *
 * Part of the hostile suite: test-hostile.c runs it (see there for what every test proves
 * at its end: the bystander, the fd baseline, exit 0); helpers in util-hostile.h, util-rpc.h.
 */

#include <check.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <liburing.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jsonrpc.h"
#include "macro.h"
#include "test-hostile.h"
#include "util-daemon.h"
#include "util-fd.h"
#include "util-hostile.h"
#include "util-json.h"
#include "util-rpc.h"
#include "util-time.h"
#include "wire.h"

/* ---- bad input ---------------------------------------------------------------------- */

typedef struct NumberCase {
        const char *params; /* a timer's */
        int code;           /* 0: accepted */
        const char *param;
        bool fires; /* accepted and due at once */
} NumberCase;

static const NumberCase timer_numbers[] = {
        { "{\"after\":-0}", 0, NULL, true },     /* an integer: 0 */
        { "{\"after\":-0.0}", 0, NULL, true },   /* IEEE -0 is not below 0 */
        { "{\"after\":5e-324}", 0, NULL, true }, /* the smallest denormal */
        { "{\"after\":1e-400}", 0, NULL, true }, /* underflow is 0, not a parse error */
        { "{\"after\":1e-10}", 0, NULL, true },  /* rounds to 0 ns */
        { "{\"at\":0}", 0, NULL, true },
        { "{\"at\":-0.0}", 0, NULL, true },
        { "{\"at\":2147483648}", 0, NULL, false }, /* 2038 */
        { "{\"at\":8589934592}", 0, NULL, false }, /* 2242: the largest allowed */
        { "{\"after\":1e-9,\"interval\":2147483648}", 0, NULL, true },
        { "{\"after\":1.7976931348623157e308}", -32602, "after", false },
        { "{\"after\":-1.7976931348623157e308}", -32602, "after", false },
        { "{\"after\":9223372036854775807}", -32602, "after", false },
        { "{\"after\":-9223372036854775808}", -32602, "after", false },
        { "{\"after\":2147483648.000001}", -32602, "after", false },
        { "{\"after\":-5e-324}", -32602, "after", false },
        { "{\"after\":true}", -32602, "after", false },
        { "{\"after\":[1]}", -32602, "after", false },
        { "{\"after\":{\"s\":1}}", -32602, "after", false },
        { "{\"after\":\"\"}", -32602, "after", false },
        { "{\"after\":\"NaN\"}", -32602, "after", false },
        { "{\"after\":\"Infinity\"}", -32602, "after", false },
        { "{\"at\":1e308}", -32602, "at", false },
        { "{\"at\":-1e-300}", -32602, "at", false },
        { "{\"at\":8589934592.5}", -32602, "at", false },
        { "{\"after\":1,\"interval\":1e308}", -32602, "interval", false },
        { "{\"after\":1,\"interval\":5e-324}", -32602, "interval", false },
        { "{\"after\":1,\"interval\":-0.0}", -32602, "interval", false },
        { "{\"after\":1,\"interval\":9223372036854775807}", -32602, "interval", false },
        { "{\"after\":1,\"interval\":false}", -32602, "interval", false },
};

/* Not JSON (RFC 8259 has no NaN, no infinities, no hex, no leading + or . or 0): -32700. */
static const char *const number_parse_errors[] = {
        "NaN",  "-NaN", "nan", "Infinity", "-Infinity", "inf", "1e400", "-1e400", "1e999999999999",
        "0x10", "+1",   ".5",  "01",       "-",         "1.",  "1e",    "--1",    "1e+",
};

/* Ids that never named anything of this client, for every method that takes one. */
static const char *const never_ids[] = {
        "1",
        "2",
        "4096",
        "9007199254740991",
        "9007199254740992",
        "9007199254740993",
        "9223372036854775807",
};

START_TEST(test_extreme_numbers) {
        TestDaemon d;
        Bystander b;
        TestClient c;
        json_int_t fired[ELEMENTSOF(timer_numbers)], live[ELEMENTSOF(timer_numbers)];
        size_t n_fired = 0, n_live = 0;
        json_t *r, *m;
        char text[512];
        int base, p[2];

        base = start_with_bystander(&d, NULL, &b);
        ck_assert_int_eq(test_client_connect(&c, d.socket), 0);

        /* Delays: negative, zero, denormal, enormous, non-numeric. */
        for (size_t i = 0; i < ELEMENTSOF(timer_numbers); i++) {
                const NumberCase *nc = &timer_numbers[i];
                json_int_t t;

                snprintf(text, sizeof(text),
                         "{\"jsonrpc\":\"2.0\",\"id\":%zu,\"method\":\"timer\",\"params\":%s}", i,
                         nc->params);
                r = raw_call(&c, text, strlen(text));
                if (nc->code) {
                        check_error(r, nc->code, nc->param, NULL);
                        json_decref(r);
                        continue;
                }
                ck_assert_msg(json_object_get(r, "result"), "%s refused", nc->params);
                t = int_member(member(r, "result"), "timer");
                json_decref(r);
                if (nc->fires)
                        fired[n_fired++] = t;
                if (!nc->fires || strstr(nc->params, "interval"))
                        live[n_live++] = t;
        }
        for (size_t i = 0; i < n_fired; i++) {
                m = wait_for(&c, "timer", "timer", fired[i], TIMEOUT);
                ck_assert_msg(m, "timer %lld, due at once, did not fire", (long long)fired[i]);
                json_decref(m);
        }
        ck_assert_int_eq(status_int(&c, "timers"), (json_int_t)n_live);
        for (size_t i = 0; i < n_live; i++)
                call_ok(&c, "cancel", json_pack("{s:I}", "timer", live[i]), NULL, 0);

        for (size_t i = 0; i < ELEMENTSOF(number_parse_errors); i++) {
                snprintf(text, sizeof(text),
                         "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"timer\",\"params\":{\"after\":"
                         "%s}}",
                         number_parse_errors[i]);
                r = raw_call(&c, text, strlen(text));
                check_error(r, -32700, NULL, "null");
                json_decref(r);
        }

        /* Request ids: -0 is the integer 0; a real -0.0 is not an id. */
        r = raw_call(&c, "{\"jsonrpc\":\"2.0\",\"id\":-0,\"method\":\"ping\"}",
                     strlen("{\"jsonrpc\":\"2.0\",\"id\":-0,\"method\":\"ping\"}"));
        ck_assert_msg(json_text_is(json_object_get(r, "id"), "0") && json_object_get(r, "result"),
                      "id -0 is not answered as 0");
        json_decref(r);
        r = raw_call(&c, "{\"jsonrpc\":\"2.0\",\"id\":-0.0,\"method\":\"ping\"}",
                     strlen("{\"jsonrpc\":\"2.0\",\"id\":-0.0,\"method\":\"ping\"}"));
        check_error(r, -32600, NULL, "null");
        json_decref(r);

        /* Watch and timer ids that never existed, as large as JSON integers go. */
        for (size_t i = 0; i < ELEMENTSOF(never_ids); i++) {
                static const char *const methods[] = { "unwatch", "arm", "modify", "cancel" };

                for (size_t j = 0; j < ELEMENTSOF(methods); j++) {
                        bool timer = streq(methods[j], "cancel");

                        snprintf(text, sizeof(text),
                                 "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"%s\",\"params\":{"
                                 "\"%s\":%s%s}}",
                                 methods[j], timer ? "timer" : "watch", never_ids[i],
                                 streq(methods[j], "modify") ? ",\"mode\":\"edge\"" : "");
                        r = raw_call(&c, text, strlen(text));
                        check_error(r, timer ? -32002 : -32001, timer ? "timer" : "watch", "1");
                        json_decref(r);
                }
        }
        r = raw_call(&c,
                     "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"unwatch\",\"params\":{\"watch\":-"
                     "9223372036854775808}}",
                     strlen("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"unwatch\",\"params\":{"
                            "\"watch\":-9223372036854775808}}"));
        check_error(r, -32602, "watch", "1");
        json_decref(r);

        /* fd indices: -0 is index 0; the extremes name no fd; a real is not an index. */
        make_pipe(p);
        {
                static const struct {
                        const char *index;
                        int code;
                } idx[] = {
                        { "9223372036854775807", -32003 },
                        { "-9223372036854775808", -32003 },
                        { "1e0", -32602 },
                        { "-0", 0 },
                };

                for (size_t i = 0; i < ELEMENTSOF(idx); i++) {
                        snprintf(text, sizeof(text),
                                 "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"watch\",\"params\":{"
                                 "\"fd\":%s,\"events\":[\"in\"],\"mode\":\"edge\"}}",
                                 idx[i].index);
                        test_client_send_raw(&c, text, strlen(text), &p[0], 1);
                        r = next_reply(&c, text);
                        if (idx[i].code)
                                check_error(r, idx[i].code, "fd", "1");
                        else
                                call_ok(&c, "unwatch",
                                        json_pack("{s:I}", "watch",
                                                  int_member(member(r, "result"), "watch")),
                                        NULL, 0);
                        json_decref(r);
                }
        }
        close_pair(p);

        /* Listings asked to skip more than could ever exist: an empty page, no overflow. */
        {
                static const char *const lists[] = { "watches", "timers", "clients" };

                for (size_t i = 0; i < ELEMENTSOF(lists); i++) {
                        snprintf(text, sizeof(text),
                                 "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"%s\",\"params\":{"
                                 "\"offset\":9223372036854775807,\"limit\":10000}}",
                                 lists[i]);
                        r = raw_call(&c, text, strlen(text));
                        ck_assert_int_eq(json_array_size(member(member(r, "result"), lists[i])), 0);
                        ck_assert(json_is_null(member(member(r, "result"), "next")));
                        json_decref(r);
                        snprintf(text, sizeof(text),
                                 "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"%s\",\"params\":{"
                                 "\"limit\":9223372036854775807}}",
                                 lists[i]);
                        r = raw_call(&c, text, strlen(text));
                        check_error(r, -32602, "limit", "1");
                        json_decref(r);
                }
        }
        ck_assert_int_eq(status_int(&c, "timers"), 0);
        ck_assert_int_eq(status_int(&c, "watches"), 1); /* the bystander's */
        test_client_close(&c);
        finish(&d, &b, base);
}
END_TEST

/* Nesting far beyond jansson's 2,048 levels is a parse error, never a stack overflow; up to
 * the limit it is valid JSON and handled as such, deep tags included. */
START_TEST(test_deep_nesting) {
        static const char req[] =
                "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{\"x\":";
        static const char batch_item[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}";
        TestDaemon d;
        Bystander b;
        TestClient c;
        json_t *r, *m;
        char *text, *tag;
        size_t len, tag_len;
        json_int_t t;
        int base;

        base = start_with_bystander(&d, NULL, &b);
        ck_assert_int_eq(test_client_connect(&c, d.socket), 0);
        {
                struct {
                        const char *prefix, *open, *core, *close, *suffix;
                } deep[] = {
                        { "", "[", "", "]", "" },          /* 10,000 arrays */
                        { "", "[", "", "", "" },           /* never closed */
                        { "", "{\"a\":", "0", "}", "" },   /* 10,000 objects */
                        { req, "[", "", "]", "}}" },       /* inside params */
                        { "", "[", batch_item, "]", "" },  /* around a request */
                        { "", "{\"a\":[", "0", "]}", "" }, /* alternating */
                };

                for (size_t i = 0; i < ELEMENTSOF(deep); i++) {
                        size_t depth = streq(deep[i].open, "{\"a\":[") ? 5000 : 10000;

                        text = nest(deep[i].prefix, deep[i].open, deep[i].core, deep[i].close,
                                    depth, deep[i].suffix, &len);
                        ck_assert_int_le(len, EVD_MAX_PACKET);
                        r = raw_call(&c, text, len);
                        ck_assert_msg(json_is_object(r), "case %zu: not one error object", i);
                        check_error(r, -32700, NULL, "null");
                        json_decref(r);
                        free(text);
                }
        }
        /* 2,000 levels in an unknown parameter: valid JSON, the parameter is the error. */
        text = nest(req, "[", "", "]", 2000, "}}", &len);
        r = raw_call(&c, text, len);
        check_error(r, -32602, "x", "1");
        json_decref(r);
        free(text);
        /* Exactly 2,048 levels is valid: a batch whose one element is not a request. */
        text = nest("", "[", "", "]", 2048, "", &len);
        r = raw_call(&c, text, len);
        ck_assert_msg(json_is_array(r) && json_array_size(r) == 1, "2,048 levels: bad reply");
        check_error(json_array_get(r, 0), -32600, NULL, "null");
        json_decref(r);
        free(text);

        /* A tag 500 levels deep (1,000 bytes) is stored and echoed intact; 1,000 is too big. */
        tag = nest("", "[", "", "]", 500, "", &tag_len);
        text = malloc(tag_len + 128);
        ck_assert_ptr_nonnull(text);
        len = (size_t)sprintf(text,
                              "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"timer\",\"params\":{"
                              "\"after\":0,\"tag\":%s}}",
                              tag);
        r = raw_call(&c, text, len);
        t = int_member(member(r, "result"), "timer");
        json_decref(r);
        m = wait_for(&c, "timer", "timer", t, TIMEOUT);
        ck_assert_msg(m, "a timer with a deep tag did not fire");
        ck_assert_msg(json_text_is(json_object_get(json_object_get(m, "params"), "tag"), tag),
                      "the deep tag came back changed");
        json_decref(m);
        free(text);
        free(tag);
        tag = nest("", "[", "", "]", 1000, "", &tag_len);
        text = malloc(tag_len + 128);
        ck_assert_ptr_nonnull(text);
        len = (size_t)sprintf(text,
                              "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"timer\",\"params\":{"
                              "\"after\":0,\"tag\":%s}}",
                              tag);
        r = raw_call(&c, text, len);
        check_error(r, -32602, "tag", "1");
        json_decref(r);
        free(text);
        free(tag);
        ck_assert_int_eq(status_int(&c, "timers"), 0);
        test_client_close(&c);
        finish(&d, &b, base);
}
END_TEST

/* NUL bytes where test-daemon.c does not put them: before, between and instead of tokens,
 * and escaped inside a tag or a member name. Each is one -32700. */
START_TEST(test_nul_bytes) {
        static const struct {
                const char *text;
                size_t len;
        } cases[] = {
#define NUL_CASE(s) { s, sizeof(s) - 1 }
                NUL_CASE("\0{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}"),
                NUL_CASE("{\"jsonrpc\":\"2.0\",\0\"id\":1,\"method\":\"ping\"}"),
                NUL_CASE("{\"jsonrpc\":\"2.0\",\"id\":1\0,\"method\":\"ping\"}"),
                NUL_CASE("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"timer\",\"params\":{"
                         "\"after\":0\0,\"tag\":true\0}}"),
                NUL_CASE("[{\"jsonrpc\":\"2.0\",\"id\":null\0,\"method\":\"ping\"}]"),
                NUL_CASE("{\"json\0rpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}"),
                NUL_CASE("\0"),
                NUL_CASE("\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"),
                NUL_CASE("[\0]"),
                NUL_CASE("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"timer\",\"params\":{"
                         "\"after\":1,\"tag\":\"a\\u0000b\"}}"),
                NUL_CASE("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"timer\",\"params\":{"
                         "\"after\":1,\"tag\":{\"k\\u0000\":1}}}"),
                NUL_CASE("{\"jsonrpc\":\"2.0\",\"id\":\"\\u0000\",\"method\":\"ping\"}"),
#undef NUL_CASE
        };
        TestDaemon d;
        Bystander b;
        TestClient c;
        int base;

        base = start_with_bystander(&d, NULL, &b);
        ck_assert_int_eq(test_client_connect(&c, d.socket), 0);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                json_t *r = raw_call(&c, cases[i].text, cases[i].len);
                char *s = dump(r);

                ck_assert_msg(json_is_object(r) && error_code(r) == -32700,
                              "NUL case %zu: a packet with a NUL byte outside any string is not "
                              "JSON, yet the daemon answered %s",
                              i, s);
                check_error(r, -32700, NULL, "null");
                free(s);
                json_decref(r);
        }
        ck_assert_int_eq(status_int(&c, "timers"), 0);
        test_client_close(&c);
        finish(&d, &b, base);
}
END_TEST

/* A 10,000-element batch is refused whole with one error (with 32 fds on it: all closed);
 * 1,024 invalid elements are each answered, in order, over as many packets as it takes. */
START_TEST(test_batch_sizes) {
        static const char *const elements[] = { "1", "{}", "[]", "null",
                                                "{\"jsonrpc\":\"2.0\",\"method\":\"timer\","
                                                "\"params\":{\"after\":9}}" };
        TestDaemon d;
        Bystander b;
        TestClient c;
        char *buf = malloc(EVD_MAX_PACKET);
        int fds[EVD_MAX_FDS], base;
        json_t *r;

        ck_assert_ptr_nonnull(buf);
        base = start_with_bystander(&d, NULL, &b);
        ck_assert_int_eq(test_client_connect(&c, d.socket), 0);
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                fds[i] = make_eventfd();
        for (size_t e = 0; e < ELEMENTSOF(elements); e++) {
                size_t len = 0, el = strlen(elements[e]);
                /* 10,000, or as many as fit in one packet (more than the limit of 1,024). */
                size_t n = MIN((size_t)10000, (EVD_MAX_PACKET - 2) / (el + 1));

                ck_assert_int_gt(n, 1024);
                buf[len++] = '[';
                for (size_t i = 0; i < n; i++) {
                        if (i)
                                buf[len++] = ',';
                        memcpy(buf + len, elements[e], el);
                        len += el;
                }
                buf[len++] = ']';
                test_client_send_raw(&c, buf, len, fds, ELEMENTSOF(fds));
                r = next_reply(&c, "a batch of more than 1,024");
                ck_assert_msg(json_is_object(r), "a batch of %zu is not answered with one object",
                              n);
                check_error(r, -32600, NULL, "null");
                json_decref(r);
        }
        ck_assert_int_eq(status_int(&c, "timers"), 0);
        expect_fd_count(&d, base + 1, TIMEOUT);

        /* 1,024 invalid requests: 1,024 errors, none with an id, in one or more packets. */
        for (size_t e = 0; e < 3; e++) {
                size_t len = 0, got = 0, packets = 0;

                buf[len++] = '[';
                for (size_t i = 0; i < 1024; i++) {
                        if (i)
                                buf[len++] = ',';
                        len += (size_t)sprintf(buf + len, "%s", elements[e]);
                }
                buf[len++] = ']';
                test_client_send_raw(&c, buf, len, NULL, 0);
                while (got < 1024) {
                        json_t *item;
                        size_t i;

                        r = next_reply(&c, "1,024 invalid requests");
                        ck_assert_msg(json_is_array(r), "a batch reply part is not an array");
                        json_array_foreach(r, i, item)
                                check_error(item, -32600, NULL, "null");
                        got += json_array_size(r);
                        packets++;
                        json_decref(r);
                }
                ck_assert_int_eq(got, 1024);
                ck_assert_int_gt(packets, 1); /* 1,024 errors do not fit one packet */
        }
        expect_no_reply(&c);
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                close(fds[i]);
        free(buf);
        test_client_close(&c);
        finish(&d, &b, base);
}
END_TEST

/* ---- tests --------------------------------------------------------------------------- */

void hostile_input_tests(TCase *tc) {
        tcase_add_test(tc, test_extreme_numbers);
        tcase_add_test(tc, test_deep_nesting);
        tcase_add_test(tc, test_nul_bytes);
        tcase_add_test(tc, test_batch_sizes);
}
