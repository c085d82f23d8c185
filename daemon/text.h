#pragma once
/* text.h - JSON assembled by hand for the daemon's bulk messages, as jansson encodes it */

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * The writers append to [p, end) and return the new end, or NULL when it does not fit;
 * NULL in is NULL out, so a message is a chain of calls checked once at the end.
 * tests/test-notify.c holds their output to jansson's encoding of the same values.
 */
/* Inline: most pieces are literals, whose copies then compile to a few moves rather than a
 * call to memcpy() (a tenth of the daemon's time when it only sends `ready`, scenario 10). */
static inline char *text_put(char *p, const char *end, const char *text, size_t len) {
        if (!p || (size_t)(end - p) < len)
                return NULL;
        memcpy(p, text, len);
        return p + len;
}
#define text_put_lit(p, end, lit) text_put(p, end, lit, sizeof(lit) - 1)
char *text_put_u64(char *p, const char *end, uint64_t v);
/** text_put_real() - @v (finite) as jansson writes a real: "%.17g", then ".0" if that looks
 * like an integer, and an exponent without '+' or leading zeros. */
char *text_put_real(char *p, const char *end, double v);
/** text_put_bool() */
char *text_put_bool(char *p, const char *end, int v);
/** text_events() - the event names array for @events as jansson encodes it (cached per
 * combination). Return: NULL on OOM. */
const char *text_events(uint32_t events, size_t *ret_len);
