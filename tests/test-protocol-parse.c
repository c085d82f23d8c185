/* test-protocol-parse.c - jsonrpc.c: parsing (valid, invalid, UTF-8 and NUL, duplicate keys,
 * depth, size, integers)
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

/* ---- jsonrpc.c: parse ---- */

static int parse_n(const void *buf, size_t len, json_error_t *error) {
        json_t *v = NULL;
        int r;

        r = jsonrpc_parse(buf, len, &v, error);
        if (r == 0)
                ck_assert(json_is_object(v) || json_is_array(v));
        else
                ck_assert_ptr_null(v);
        json_decref(v);
        return r;
}

static int parse_s(const char *s, json_error_t *error) {
        return parse_n(s, strlen(s), error);
}

START_TEST(test_parse_valid) {
        json_error_t e;
        json_t *v;

        v = parse_ok("{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"id\":1}");
        ck_assert(json_is_object(v));
        json_decref(v);
        v = parse_ok(" [ {\"a\": 1}, 2 ] \n");
        ck_assert_uint_eq(json_array_size(v), 2);
        json_decref(v);
        ck_assert_int_eq(parse_s("{\"s\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}", &e), 0);
        ck_assert_int_eq(parse_s("[9223372036854775807, -9223372036854775808]", &e), 0);
}
END_TEST

START_TEST(test_parse_invalid) {
        json_error_t e;

        ck_assert_int_eq(parse_s("{", &e), -EBADMSG);
        ck_assert_str_ne(e.text, "");
        ck_assert_int_eq(parse_s("{\"a\":}", &e), -EBADMSG);
        ck_assert_int_eq(parse_s("[1,]", &e), -EBADMSG);
        ck_assert_int_eq(parse_s("{'a':1}", &e), -EBADMSG);
        ck_assert_int_eq(parse_s("[1] [2]", &e), -EBADMSG);
        ck_assert_int_eq(parse_s("", &e), -EBADMSG);
        ck_assert_int_eq(parse_n(NULL, 0, &e), -EBADMSG);
        ck_assert_int_eq(parse_s("[NaN]", &e), -EBADMSG);
        ck_assert_int_eq(parse_s("[1e400]", &e), -EBADMSG);
        ck_assert_int_eq(parse_s("{\"a\":1}", NULL), 0);
        ck_assert_int_eq(parse_s("{", NULL), -EBADMSG);

        /* Valid JSON, but not a message or batch: Invalid Request, not Parse error. */
        ck_assert_int_eq(parse_s("1", &e), -EINVAL);
        ck_assert_int_eq(parse_s("\"str\"", &e), -EINVAL);
        ck_assert_int_eq(parse_s("null", &e), -EINVAL);
        ck_assert_int_eq(parse_s("true", NULL), -EINVAL);
}
END_TEST

START_TEST(test_parse_utf8_nul) {
        json_error_t e;

        ck_assert_int_eq(parse_s("[\"\xff\"]", &e), -EBADMSG);
        ck_assert_int_eq(json_error_code(&e), json_error_invalid_utf8);
        ck_assert_int_eq(parse_s("[\"\xc0\xaf\"]", &e), -EBADMSG);     /* overlong '/' */
        ck_assert_int_eq(parse_s("[\"\xed\xa0\x80\"]", &e), -EBADMSG); /* a surrogate */
        ck_assert_int_eq(parse_s("[\"\xc3\"]", &e), -EBADMSG);         /* cut short */
        ck_assert_int_eq(parse_s("{\"\xfe\":1}", &e), -EBADMSG);       /* in a key */

        ck_assert_int_eq(parse_s("[\"a\\u0000b\"]", &e), -EBADMSG);
        ck_assert_int_eq(json_error_code(&e), json_error_null_character);
        ck_assert_int_eq(parse_s("{\"a\\u0000b\":1}", &e), -EBADMSG);
        ck_assert_int_eq(parse_n("[\"a\0b\"]", 7, &e), -EBADMSG);
        ck_assert_int_eq(parse_n("{\"a\0\":1}", 8, &e), -EBADMSG);
        /* A NUL after a complete value is trailing garbage, not an end marker. */
        ck_assert_int_eq(parse_n("[1]\0", 4, &e), -EBADMSG);
}
END_TEST

START_TEST(test_parse_duplicates) {
        json_error_t e;

        ck_assert_int_eq(parse_s("{\"fd\":0,\"fd\":1}", &e), -EBADMSG);
        ck_assert_int_eq(json_error_code(&e), json_error_duplicate_key);
        ck_assert_int_eq(parse_s("[{\"params\":{\"a\":1,\"b\":2,\"a\":3}}]", &e), -EBADMSG);
        ck_assert_int_eq(parse_s("[{\"a\":1},{\"a\":1}]", &e), 0);
}
END_TEST

static char *nested(size_t depth, char open, char close) {
        char *s = malloc(2 * depth + 1);

        ck_assert_ptr_nonnull(s);
        memset(s, open, depth);
        memset(s + depth, close, depth);
        s[2 * depth] = '\0';
        return s;
}

START_TEST(test_parse_deep) {
        json_error_t e;
        char *s;

        s = nested(10000, '[', ']');
        ck_assert_int_eq(parse_s(s, &e), -EBADMSG);
        ck_assert_int_eq(json_error_code(&e), json_error_stack_overflow);
        free(s);

        /* 10,000 objects deep: {"a":{"a":...}} */
        size_t depth = 10000, off = 0;
        s = malloc(depth * 5 + depth + 2);
        ck_assert_ptr_nonnull(s);
        for (size_t i = 0; i < depth; i++, off += 5)
                memcpy(s + off, "{\"a\":", 5);
        s[off++] = '1';
        memset(s + off, '}', depth);
        off += depth;
        s[off] = '\0';
        ck_assert_int_eq(parse_s(s, &e), -EBADMSG);
        ck_assert_int_eq(json_error_code(&e), json_error_stack_overflow);
        free(s);

        /* The documented bound: JSON_PARSER_MAX_DEPTH levels parse, one more does not. */
        s = nested(JSON_PARSER_MAX_DEPTH, '[', ']');
        ck_assert_int_eq(parse_s(s, &e), 0);
        free(s);
        s = nested(JSON_PARSER_MAX_DEPTH + 1, '[', ']');
        ck_assert_int_eq(parse_s(s, &e), -EBADMSG);
        free(s);
}
END_TEST

START_TEST(test_parse_size) {
        static char buf[EVD_MAX_PACKET + 1];
        json_error_t e;

        /* A valid array of spaces: only the size decides. */
        memset(buf, ' ', sizeof(buf));
        buf[0] = '[';
        buf[EVD_MAX_PACKET - 1] = ']';
        ck_assert_int_eq(parse_n(buf, EVD_MAX_PACKET, &e), 0);
        buf[EVD_MAX_PACKET - 1] = ' ';
        buf[EVD_MAX_PACKET] = ']';
        ck_assert_int_eq(parse_n(buf, EVD_MAX_PACKET + 1, &e), -EMSGSIZE);
        ck_assert_str_ne(e.text, "");
}
END_TEST

START_TEST(test_parse_integers) {
        json_error_t e;

        /* jansson reports int64 overflow as a parse error, not as a real. */
        ck_assert_int_eq(parse_s("{\"id\":9223372036854775808}", &e), -EBADMSG);
        ck_assert_int_eq(json_error_code(&e), json_error_numeric_overflow);
        ck_assert_int_eq(parse_s("{\"id\":-9223372036854775809}", &e), -EBADMSG);
        ck_assert_int_eq(json_error_code(&e), json_error_numeric_overflow);
        ck_assert_int_eq(parse_s("{\"id\":123456789012345678901234567890}", &e), -EBADMSG);
}
END_TEST

/* ---- tcase ---------------------------------------------------------------------------- */

void protocol_parse_tests(Suite *s) {
        TCase *tc;

        tc = tcase_create("parse");
        suite_add_tcase(s, tc);
        tcase_add_test(tc, test_parse_valid);
        tcase_add_test(tc, test_parse_invalid);
        tcase_add_test(tc, test_parse_utf8_nul);
        tcase_add_test(tc, test_parse_duplicates);
        tcase_add_test(tc, test_parse_deep);
        tcase_add_test(tc, test_parse_size);
        tcase_add_test(tc, test_parse_integers);
}
