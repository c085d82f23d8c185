/* config.c - the settings table
 *
 * The file format is deliberately tiny: one "key = value" per line, '#' comments, blank
 * lines; keys are the long command-line options without "--". Unknown keys and bad values
 * are errors, so that a typo on reload keeps the running config instead of silently
 * changing it. The table below is the single list of settings: parsing, --help and the
 * man page all follow it.
 */

#include "config.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "log.h"
#include "macro.h"

typedef enum SettingKind {
        SETTING_UNSIGNED,
        SETTING_SIZE,
        SETTING_LOG_LEVEL,
        SETTING_STRING,
        SETTING_BOOL,
} SettingKind;

typedef struct Setting {
        const char *key;
        SettingKind kind;
        size_t offset;
        unsigned long long min, max;
        const char *help;
} Setting;

#define LIMIT(field) offsetof(Config, limits.field)

static const Setting settings[] = {
        { "log-level", SETTING_LOG_LEVEL, offsetof(Config, log_level), 0, 0, "err, warning, notice, info, debug" },
        { "max-clients", SETTING_UNSIGNED, LIMIT(clients), 1, 1000000, "connections at once (fd limit / 2)" },
        { "max-clients-per-uid", SETTING_UNSIGNED, LIMIT(clients_per_uid), 1, 1000000,
          "connections per user (fd limit / 8)" },
        { "max-watches-per-client", SETTING_UNSIGNED, LIMIT(watches_per_client), 0, 10000000,
          "watches per connection (fd limit / 4)" },
        { "max-watches-per-uid", SETTING_UNSIGNED, LIMIT(watches_per_uid), 0, 10000000, "watches per user (fd limit / 4)" },
        { "max-timers-per-client", SETTING_UNSIGNED, LIMIT(timers_per_client), 0, 100000000, "timers per connection" },
        { "max-timers-per-uid", SETTING_UNSIGNED, LIMIT(timers_per_uid), 0, 100000000, "timers per user" },
        { "max-timer-rate-per-uid", SETTING_UNSIGNED, LIMIT(timer_rate_per_uid), 0, 100000000,
          "timer expirations delivered per second per user, beyond: held and coalesced (0: no limit)" },
        { "max-turn-us", SETTING_UNSIGNED, LIMIT(turn_us), 0, 1000000,
          "microseconds one client's requests may hold the loop before the others' turn (0: one request)" },
        { "max-queued-bytes", SETTING_SIZE, LIMIT(queued_bytes), 65536 * 2, 1ull << 32,
          "unread output per client before it is disconnected" },
        { "admin-group", SETTING_STRING, offsetof(Config, admin_group), 0, 0,
          "group whose members may inspect every client" },
        { "fd-store", SETTING_BOOL, offsetof(Config, fd_store), 0, 0,
          "on SIGTERM, hand clients, watches and timers to systemd's fd store for the next start "
          "(FileDescriptorStoreMax= >= 3)" },
};

/* Every watch and every client costs the daemon an fd. With defaults that are fractions of
 * its fd limit, one user cannot take all of it: a quarter for one user's watches, an
 * eighth for one user's connections. Timers cost memory (about 220 bytes each, plus the
 * tag's encoded length beyond 8 bytes: at most about 1.25 KiB with a 1 KiB tag), so one
 * user's default is capped at a few tens of MiB (about 250 MiB if every tag is 1 KiB). */
void config_init(Config *c) {
        struct rlimit rl;
        unsigned fds = 20000;

        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY)
                fds = (unsigned)MIN(rl.rlim_max, (rlim_t)(1u << 24));
        *c = (Config){
                .log_level = LOG_INFO,
                .limits = {
                        .clients = MAX(fds / 2, 16u),
                        .clients_per_uid = MAX(fds / 8, 8u),
                        .watches_per_client = MAX(fds / 4, 16u),
                        .watches_per_uid = MAX(fds / 4, 16u),
                        .timers_per_client = 100000,
                        .timers_per_uid = 200000,
                        /* Measured (bench/fairness): 100,000/s of held 1 ms timers cost
                         * the daemon 40% of a CPU here; half that keeps one user's timers
                         * at about a fifth, and other users' pings at their baseline. */
                        .timer_rate_per_uid = 50000,
                        .queued_bytes = 4u << 20,
                        /* One client's turn: a ping of another user waits at most about this
                         * long behind it, whatever the client sent (bench/fairness). */
                        .turn_us = 1000,
                },
        };
}

void config_deinit(Config *c) {
        free(c->admin_group);
        c->admin_group = NULL;
}

static const Setting *setting_find(const char *key) {
        for (size_t i = 0; i < ELEMENTSOF(settings); i++)
                if (strcmp(settings[i].key, key) == 0)
                        return &settings[i];
        return NULL;
}

bool config_is_key(const char *key) {
        return setting_find(key) != NULL;
}

static int parse_number(const char *value, bool size_suffix, unsigned long long *ret) {
        unsigned long long v, mult = 1;
        char *end;

        if (!*value || *value == '-')
                return -EINVAL;
        errno = 0;
        v = strtoull(value, &end, 10);
        if (errno || end == value)
                return -EINVAL;
        if (size_suffix && *end) {
                switch (*end++) {
                case 'K': mult = 1ull << 10; break;
                case 'M': mult = 1ull << 20; break;
                case 'G': mult = 1ull << 30; break;
                default: return -EINVAL;
                }
        }
        if (*end || (v && mult > ULLONG_MAX / v))
                return -EINVAL;
        *ret = v * mult;
        return 0;
}

int config_set(Config *c, const char *key, const char *value, const char **ret_why) {
        const Setting *s = setting_find(key);
        void *field;
        unsigned long long v;
        int level;

        if (!s) {
                *ret_why = "unknown setting";
                return -EINVAL;
        }
        field = (char *)c + s->offset;
        switch (s->kind) {
        case SETTING_LOG_LEVEL:
                level = log_level_from_string(value);
                if (level < 0) {
                        *ret_why = "expected err, warning, notice, info or debug";
                        return -EINVAL;
                }
                *(int *)field = level;
                return 0;
        case SETTING_STRING: {
                char *copy = *value ? strdup(value) : NULL;
                if (*value && !copy)
                        return -ENOMEM;
                free(*(char **)field);
                *(char **)field = copy;
                return 0;
        }
        case SETTING_BOOL:
                if (!strcmp(value, "yes") || !strcmp(value, "true") || !strcmp(value, "1"))
                        *(bool *)field = true;
                else if (!strcmp(value, "no") || !strcmp(value, "false") || !strcmp(value, "0"))
                        *(bool *)field = false;
                else {
                        *ret_why = "expected yes or no";
                        return -EINVAL;
                }
                return 0;
        case SETTING_UNSIGNED:
        case SETTING_SIZE:
                if (parse_number(value, s->kind == SETTING_SIZE, &v) < 0) {
                        *ret_why = s->kind == SETTING_SIZE ? "expected a size (bytes, or with K, M, G)"
                                                           : "expected a non-negative integer";
                        return -EINVAL;
                }
                if (v < s->min || v > s->max) {
                        *ret_why = "out of range";
                        return -ERANGE;
                }
                if (s->kind == SETTING_SIZE)
                        *(size_t *)field = (size_t)v;
                else
                        *(unsigned *)field = (unsigned)v;
                return 0;
        }
        return -EINVAL;
}

static char *strip(char *s) {
        char *end;

        while (*s == ' ' || *s == '\t')
                s++;
        end = s + strlen(s);
        while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
                *--end = 0;
        return s;
}

static int load_file(Config *c, const char *path) {
        _cleanup_(fclosep) FILE *f = fopen(path, "re");
        char line[1024];
        unsigned lineno = 0;

        if (!f)
                return log_error_errno(-errno, "Cannot open config file %s", path);
        while (fgets(line, sizeof(line), f)) {
                char *key, *value, *eq;
                const char *why = "malformed line";
                int r;

                lineno++;
                key = strip(line);
                if (!*key || *key == '#')
                        continue;
                eq = strchr(key, '=');
                if (!eq) {
                        log_error("%s:%u: expected \"key = value\"", path, lineno);
                        return -EINVAL;
                }
                *eq = 0;
                value = strip(eq + 1);
                key = strip(key);
                r = config_set(c, key, value, &why);
                if (r < 0) {
                        log_error("%s:%u: %s: %s", path, lineno, key, why);
                        return r;
                }
        }
        if (ferror(f))
                return log_error_errno(-EIO, "Cannot read config file %s", path);
        return 0;
}

static int resolve_admin_group(Config *c) {
        struct group *g;
        char *end;
        unsigned long gid;

        c->has_admin_gid = false;
        if (!c->admin_group)
                return 0;
        errno = 0;
        gid = strtoul(c->admin_group, &end, 10);
        if (!errno && *end == 0 && end != c->admin_group) {
                c->admin_gid = (gid_t)gid;
                c->has_admin_gid = true;
                return 0;
        }
        g = getgrnam(c->admin_group);
        if (!g) {
                log_error("Unknown admin group \"%s\"", c->admin_group);
                return -ENOENT;
        }
        c->admin_gid = g->gr_gid;
        c->has_admin_gid = true;
        return 0;
}

int config_load(Config *ret, const char *path, const ConfigSetting *cli, size_t n_cli) {
        Config c;
        int r;

        config_init(&c);
        if (path) {
                r = load_file(&c, path);
                if (r < 0)
                        goto fail;
        }
        for (size_t i = 0; i < n_cli; i++) {
                const char *why = "invalid";
                r = config_set(&c, cli[i].key, cli[i].value, &why);
                if (r < 0) {
                        log_error("--%s=%s: %s", cli[i].key, cli[i].value, why);
                        goto fail;
                }
        }
        r = resolve_admin_group(&c);
        if (r < 0)
                goto fail;
        config_deinit(ret);
        *ret = c;
        return 0;
fail:
        config_deinit(&c);
        return r;
}

void config_help(void) {
        Config d;

        config_init(&d);
        for (size_t i = 0; i < ELEMENTSOF(settings); i++) {
                const Setting *s = &settings[i];
                const void *field = (const char *)&d + s->offset;
                char def[32] = "";

                if (s->kind == SETTING_UNSIGNED)
                        snprintf(def, sizeof(def), "%u", *(const unsigned *)field);
                else if (s->kind == SETTING_SIZE)
                        snprintf(def, sizeof(def), "%zu", *(const size_t *)field);
                else if (s->kind == SETTING_LOG_LEVEL)
                        snprintf(def, sizeof(def), "%s", log_level_to_string(*(const int *)field));
                else if (s->kind == SETTING_BOOL)
                        snprintf(def, sizeof(def), "%s", *(const bool *)field ? "yes" : "no");
                printf("  --%-24s %s%s%s%s\n", s->key, s->help, *def ? " (default " : "", def, *def ? ")" : "");
        }
}
