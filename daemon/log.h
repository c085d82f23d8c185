#pragma once
/* log.h - leveled logging to the journal (native fields), systemd's stderr, or a terminal */

#include <inttypes.h>
#include <stdbool.h>
#include <sys/types.h>
#include <syslog.h>

/* Structured context for a message: which client and watch it concerns. Journal output
 * carries them as EVD_CLIENT_ID=, EVD_CLIENT_PID=, EVD_CLIENT_UID=, EVD_WATCH_ID= fields;
 * text output appends them. Zero means "not set" for ids; has_peer gates pid/uid. */
typedef struct LogContext {
        uint64_t client_id;
        uint64_t watch_id;
        pid_t pid;
        uid_t uid;
        bool has_peer;
} LogContext;

typedef enum LogTarget {
        LOG_TARGET_TERMINAL, /* "evd: warning: text" */
        LOG_TARGET_PREFIX,   /* "<4>text": systemd parses the priority off stderr */
        LOG_TARGET_JOURNAL,  /* sd_journal_sendv() with fields */
        _LOG_TARGET_MAX,
} LogTarget;

/** log_setup() - pick the target: the journal when $JOURNAL_STREAM names our stderr,
 * "<N>" prefixes when otherwise started by systemd ($INVOCATION_ID), plain text else. */
void log_setup(void);
LogTarget log_get_target(void);
void log_set_max_level(int level);
int log_get_max_level(void);
/** log_level_from_string() - "err", "warning", "notice", "info", "debug" (or 3..7).
 * Return: the level or -EINVAL. */
int log_level_from_string(const char *s);
const char *log_level_to_string(int level);

/** log_full() - log @format at @level; @error > 0 is an errno, appended as ": strerror".
 * Return: -@error (so callers can `return log_error_errno(r, ...)`), 0 if @error <= 0. */
int log_full(int level, int error, const LogContext *ctx, const char *format, ...)
        __attribute__((format(printf, 4, 5)));

#define log_error(...) log_full(LOG_ERR, 0, NULL, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, 0, NULL, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, 0, NULL, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, 0, NULL, __VA_ARGS__)
#define log_debug(...) log_full(LOG_DEBUG, 0, NULL, __VA_ARGS__)
/* log_error_errno(r, ...) logs with strerror(-r) appended and returns r (negative). */
#define log_error_errno(r, ...) log_full(LOG_ERR, -(r), NULL, __VA_ARGS__)
#define log_warning_errno(r, ...) log_full(LOG_WARNING, -(r), NULL, __VA_ARGS__)
#define log_notice_errno(r, ...) log_full(LOG_NOTICE, -(r), NULL, __VA_ARGS__)
