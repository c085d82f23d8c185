/* log.c - one message path, three renderings
 *
 * Without journald, sd_journal_sendv() returns success and drops the message, so the
 * journal is chosen only when $JOURNAL_STREAM says our stderr *is* journald's stream (it
 * then certainly listens); otherwise text goes to stderr, with "<N>" priority prefixes when
 * systemd reads it. Messages below the max level are dropped before formatting.
 */

#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "macro.h"

static LogTarget log_target = LOG_TARGET_TERMINAL;
static int log_max_level = LOG_INFO;

static const char *const level_names[] = {
        [LOG_EMERG] = "emerg", [LOG_ALERT] = "alert", [LOG_CRIT] = "crit",   [LOG_ERR] = "err",
        [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_setup(void) {
        if (stderr_is_journal())
                log_target = LOG_TARGET_JOURNAL;
        else if (getenv("INVOCATION_ID") || getenv("JOURNAL_STREAM"))
                log_target = LOG_TARGET_PREFIX;
        else
                log_target = LOG_TARGET_TERMINAL;
}

LogTarget log_get_target(void) {
        return log_target;
}

void log_set_max_level(int level) {
        log_max_level = level;
}

int log_get_max_level(void) {
        return log_max_level;
}

int log_level_from_string(const char *s) {
        char *end;
        long v;

        if (!s)
                return -EINVAL;
        for (int i = 0; i < (int)ELEMENTSOF(level_names); i++)
                if (strcmp(s, level_names[i]) == 0)
                        return i;
        if (strcmp(s, "error") == 0)
                return LOG_ERR;
        if (strcmp(s, "warn") == 0)
                return LOG_WARNING;
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || *end || end == s || v < 0 || v > LOG_DEBUG)
                return -EINVAL;
        return (int)v;
}

const char *log_level_to_string(int level) {
        if (level < 0 || level >= (int)ELEMENTSOF(level_names))
                return "?";
        return level_names[level];
}

static void log_journal(int level, int error, const LogContext *ctx, const char *msg) {
        char fields[8][96];
        struct iovec iov[10];
        _cleanup_free_ char *message = NULL;
        int n = 0, f = 0;

        if (asprintf(&message, "MESSAGE=%s", msg) < 0)
                return;
        iov[n++] = (struct iovec){ message, strlen(message) };
#define FIELD(...)                                                                              \
        do {                                                                                    \
                int _l = snprintf(fields[f], sizeof(fields[f]), __VA_ARGS__);                   \
                iov[n++] = (struct iovec){ fields[f++], (size_t)MIN(_l, (int)sizeof(fields[0]) - 1) }; \
        } while (0)
        FIELD("PRIORITY=%d", level);
        FIELD("SYSLOG_IDENTIFIER=%s", program_invocation_short_name);
        if (error > 0)
                FIELD("ERRNO=%d", error);
        if (ctx && ctx->client_id)
                FIELD("EVD_CLIENT_ID=%" PRIu64, ctx->client_id);
        if (ctx && ctx->has_peer) {
                FIELD("EVD_CLIENT_PID=%d", (int)ctx->pid);
                FIELD("EVD_CLIENT_UID=%u", (unsigned)ctx->uid);
        }
        if (ctx && ctx->watch_id)
                FIELD("EVD_WATCH_ID=%" PRIu64, ctx->watch_id);
#undef FIELD
        (void)sd_journal_sendv(iov, n);
}

int log_full(int level, int error, const LogContext *ctx, const char *format, ...) {
        char msg[2048], suffix[160] = "";
        int saved = errno, n;
        va_list ap;

        if (level > log_max_level)
                goto out;
        va_start(ap, format);
        n = vsnprintf(msg, sizeof(msg), format, ap);
        va_end(ap);
        if (error > 0 && n >= 0 && (size_t)n < sizeof(msg))
                (void)snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", strerror(error));

        if (log_target == LOG_TARGET_JOURNAL) {
                log_journal(level, error, ctx, msg);
                goto out;
        }
        if (ctx && (ctx->client_id || ctx->has_peer)) {
                int l = snprintf(suffix, sizeof(suffix), " (client %" PRIu64, ctx->client_id);
                if (ctx->has_peer)
                        l += snprintf(suffix + l, sizeof(suffix) - (size_t)l, ", pid %d, uid %u", (int)ctx->pid,
                                      (unsigned)ctx->uid);
                if (ctx->watch_id)
                        l += snprintf(suffix + l, sizeof(suffix) - (size_t)l, ", watch %" PRIu64, ctx->watch_id);
                (void)snprintf(suffix + l, sizeof(suffix) - (size_t)l, ")");
        }
        if (log_target == LOG_TARGET_PREFIX)
                fprintf(stderr, "<%d>%s%s\n", level, msg, suffix);
        else
                fprintf(stderr, "%s: %s: %s%s\n", program_invocation_short_name, log_level_to_string(level), msg,
                        suffix);
out:
        errno = saved;
        return error > 0 ? -error : 0;
}
