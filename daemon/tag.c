/* tag.c - tags kept encoded: one mechanism for watches, timers and queued notices
 *
 * Invariant: len == 0 means no tag; len <= TAG_INLINE means the text is in inline_text;
 * otherwise heap points at len bytes (not NUL-terminated) owned by the holder.
 */

#include "tag.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

int tag_store(TagText *t, uint16_t *len, const json_t *tag) {
        _cleanup_free_ char *text = NULL;
        size_t n;

        if (!tag || json_is_null(tag))
                return 0;
        /* Any JSON value may be a tag: scalars need JSON_ENCODE_ANY. */
        n = json_dumpb(tag, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
        if (n == 0 || n > UINT16_MAX)
                return -EINVAL;
        text = malloc(n);
        if (!text)
                return -ENOMEM;
        if (json_dumpb(tag, text, n, JSON_COMPACT | JSON_ENCODE_ANY) != n)
                return -EINVAL;
        *len = (uint16_t)n;
        if (n <= TAG_INLINE)
                memcpy(t->inline_text, text, n);
        else
                t->heap = TAKE_PTR(text);
        return 0;
}

void tag_release(TagText *t, uint16_t *len) {
        if (*len > TAG_INLINE)
                free(t->heap);
        *len = 0;
}

void tag_move(TagText *dst, uint16_t *dst_len, TagText *src, uint16_t *src_len) {
        *dst = *src;
        *dst_len = *src_len;
        *src_len = 0;
}

const char *tag_text(const TagText *t, uint16_t len) {
        if (len == 0)
                return NULL;
        return len <= TAG_INLINE ? t->inline_text : t->heap;
}

json_t *tag_json(const TagText *t, uint16_t len) {
        const char *text = tag_text(t, len);
        json_t *v = text ? json_loadb(text, len, JSON_DECODE_ANY, NULL) : NULL;

        return v ? v : json_null();
}
