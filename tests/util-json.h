#pragma once
/* util-json.h - tests: reading replies (members by type, compact text, comparisons) */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/** streq() - @a and @b are both set and equal. */
bool streq(const char *a, const char *b);
/** dump() - compact text of @v (any value, NULL too) for messages; free() it. */
char *dump(const json_t *v);
/** member() - @o's member @key (borrowed); fails the test if there is none. */
json_t *member(json_t *o, const char *key);
/** int_member(), num_member(), str_member(), bool_member() - member() of that type; fails
 * the test if it has another. */
json_int_t int_member(json_t *o, const char *key);
double num_member(json_t *o, const char *key);
const char *str_member(json_t *o, const char *key);
bool bool_member(json_t *o, const char *key);
/** json_text_is() - whether @v's compact text is exactly @text (ids, event lists, tags). */
bool json_text_is(const json_t *v, const char *text);
/** assert_json() - json_text_is(), or fail the test showing both. */
void assert_json(const json_t *v, const char *text);
/** parse_ok() - jsonrpc_parse() of the string @s, asserted to succeed (a new reference). */
json_t *parse_ok(const char *s);
/** assert_encodes() - jsonrpc_encode() of @v is exactly @expect. */
void assert_encodes(const json_t *v, const char *expect);
/** string_of() - a JSON string of @n times 'x' (a new reference). */
json_t *string_of(size_t n);
