/* util-json.c - tests: reading replies (members by type, compact text, comparisons), parsing
 * and encoding as protocol/ does
 *
 * Every reader asserts: a missing member or one of the wrong type fails the test with the
 * whole message in the failure text, so a test reads what it expects without checking.
 */

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "jsonrpc.h"
#include "protocol.h"
#include "util-json.h"

bool streq(const char *a, const char *b) {
        return a && b && strcmp(a, b) == 0;
}

/* Compact text of @v for messages and comparisons; free() it. */
char *dump(const json_t *v) {
        char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("(null)");

        ck_assert_ptr_nonnull(s);
        return s;
}

json_t *member(json_t *o, const char *key) {
        json_t *v = json_object_get(o, key);

        if (!v) {
                char *s = dump(o);
                ck_abort_msg("no member \"%s\" in %s", key, s);
        }
        return v;
}

/* Fails the test: @o's member @key is not of @type. */
static void type_error(json_t *o, const char *key, const char *type) {
        char *s = dump(o);

        ck_abort_msg("member \"%s\" is not %s in %s", key, type, s);
}

json_int_t int_member(json_t *o, const char *key) {
        json_t *v = member(o, key);

        if (!json_is_integer(v))
                type_error(o, key, "an integer");
        return json_integer_value(v);
}

double num_member(json_t *o, const char *key) {
        json_t *v = member(o, key);

        if (!json_is_number(v))
                type_error(o, key, "a number");
        return json_number_value(v);
}

const char *str_member(json_t *o, const char *key) {
        json_t *v = member(o, key);

        if (!json_is_string(v))
                type_error(o, key, "a string");
        return json_string_value(v);
}

bool bool_member(json_t *o, const char *key) {
        json_t *v = member(o, key);

        if (!json_is_boolean(v))
                type_error(o, key, "a boolean");
        return json_is_true(v);
}

/* Whether @v's compact text is exactly @text (ids, event lists, tags). */
bool json_text_is(const json_t *v, const char *text) {
        char *s = dump(v);
        bool r = strcmp(s, text) == 0;

        free(s);
        return r;
}

void assert_json(const json_t *v, const char *text) {
        char *s = dump(v);

        ck_assert_msg(strcmp(s, text) == 0, "expected %s, got %s", text, s);
        free(s);
}

json_t *parse_ok(const char *s) {
        json_error_t error;
        json_t *v = NULL;

        ck_assert_msg(jsonrpc_parse(s, strlen(s), &v, &error) == 0, "parse %s: %s", s, error.text);
        return v;
}

void assert_encodes(const json_t *v, const char *expect) {
        char buf[EVD_MAX_PACKET];
        size_t len = 0;

        ck_assert_ptr_nonnull(v);
        ck_assert_int_eq(jsonrpc_encode(v, buf, sizeof(buf), &len), 0);
        ck_assert_uint_eq(len, strlen(expect));
        ck_assert_mem_eq(buf, expect, len);
}

/* A JSON string of @n times 'x'. */
json_t *string_of(size_t n) {
        char *s = malloc(n + 1);
        json_t *v;

        ck_assert_ptr_nonnull(s);
        memset(s, 'x', n);
        s[n] = '\0';
        v = json_string(s);
        free(s);
        ck_assert_ptr_nonnull(v);
        return v;
}
