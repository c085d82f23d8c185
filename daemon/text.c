/* text.c - hand-assembled JSON pieces
 *
 * `ready`, `timer` and the watch and timer listings go out in bulk, and building them with
 * jansson (objects, an snprintf per integer, the encoder, and a parse of every stored tag)
 * cost most of the daemon's CPU (perf, in bench/README.md). These pieces write the same
 * bytes jansson would; stored tags are already encoded (tag.h) and go in as they are.
 */

#include "text.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "protocol.h"

#define EVENT_COMBINATIONS 64

char *text_put_u64(char *p, const char *end, uint64_t v) {
        char digits[20];
        size_t n = 0;

        do
                digits[sizeof(digits) - ++n] = (char)('0' + v % 10);
        while ((v /= 10) > 0);
        return text_put(p, end, digits + sizeof(digits) - n, n);
}

/* jansson 2.14's jsonp_dtostr(), for the "C" locale the daemon runs in. */
char *text_put_real(char *p, const char *end, double v) {
        char buf[40], *e;
        int n = snprintf(buf, sizeof(buf) - 2, "%.17g", v);
        size_t len;

        if (n < 0 || (size_t)n >= sizeof(buf) - 2)
                return NULL;
        len = (size_t)n;
        if (!strchr(buf, '.') && !strchr(buf, 'e')) {
                buf[len++] = '.';
                buf[len++] = '0';
                buf[len] = 0;
        }
        e = strchr(buf, 'e');
        if (e) {
                char *start = e + 1, *digits = start + 1;

                if (*start == '-')
                        start++;
                while (*digits == '0')
                        digits++;
                if (digits != start) {
                        memmove(start, digits, len - (size_t)(digits - buf) + 1);
                        len -= (size_t)(digits - start);
                }
        }
        return text_put(p, end, buf, len);
}

char *text_put_bool(char *p, const char *end, int v) {
        return v ? text_put_lit(p, end, "true") : text_put_lit(p, end, "false");
}

static unsigned event_index(uint32_t events) {
        return (events & 0x1f) | ((events & EVD_EVENT_RDHUP) ? 0x20 : 0);
}

const char *text_events(uint32_t events, size_t *ret_len) {
        static char text[EVENT_COMBINATIONS][64];
        static uint8_t len[EVENT_COMBINATIONS];
        unsigned i = event_index(events);

        if (!len[i]) {
                json_t *a = protocol_events_to_json(events);
                size_t n = a ? json_dumpb(a, text[i], sizeof(text[i]), JSON_COMPACT) : 0;

                json_decref(a);
                if (n == 0 || n >= sizeof(text[i]))
                        return NULL;
                len[i] = (uint8_t)n;
        }
        *ret_len = len[i];
        return text[i];
}
