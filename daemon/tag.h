#pragma once
/* tag.h - a client's tag (any JSON value), kept as jansson encoded it */

#include <jansson.h>
#include <stdint.h>

/* The tag is kept encoded (compact JSON, as it goes into every notification), inline when
 * it is short: most tags are small integers, and an idle watch or timer should cost as
 * little as possible. Kept parsed, a nested 1 KiB tag would cost tens of KiB of jansson
 * nodes per object. The length lives with its owner (0: no tag), next to its other small
 * fields, so that the union adds only 8 bytes to a Watch, a ClientTimer or a Notice. */
#define TAG_INLINE 8

typedef union TagText {
        char *heap;
        char inline_text[TAG_INLINE];
} TagText;

/** tag_store() - encode @tag (borrowed; NULL or JSON null: no tag) into @t and *@len, which
 * must hold no tag. Return: 0, -EINVAL (cannot be encoded), -ENOMEM. */
int tag_store(TagText *t, uint16_t *len, const json_t *tag);
/** tag_release() - free the tag, if any; *@len becomes 0. */
void tag_release(TagText *t, uint16_t *len);
/** tag_move() - hand the tag of @src to @dst (which must hold none); @src is left empty. */
void tag_move(TagText *dst, uint16_t *dst_len, TagText *src, uint16_t *src_len);
/** tag_text() - the encoded tag, NULL if none (@len 0). */
const char *tag_text(const TagText *t, uint16_t len);
/** tag_json() - the tag parsed back, a new reference; JSON null if none. */
json_t *tag_json(const TagText *t, uint16_t len);
