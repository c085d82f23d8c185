#pragma once
/* config.h - limits and settings from defaults, an optional file, and the command line */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct Limits {
        unsigned clients;             /* connections at once, all users */
        unsigned clients_per_uid;
        unsigned watches_per_client;
        unsigned watches_per_uid;
        unsigned timers_per_client;
        unsigned timers_per_uid;
        unsigned timer_rate_per_uid;  /* expirations delivered per second, per user; 0: no limit */
        size_t queued_bytes;          /* output a client may leave unread before it is dropped */
        unsigned turn_us;             /* one client's requests hold the loop this long, then others go */
} Limits;

typedef struct Config {
        int log_level;
        Limits limits;
        char *admin_group; /* NULL: none; resolved to admin_gid by config_resolve() */
        gid_t admin_gid;
        bool has_admin_gid;
        bool fd_store; /* SIGTERM hands the state to systemd's fd store (daemon-fdstore.c) */
} Config;

/* One "key = value" setting; the command line keeps a list of them so that it can be
 * re-applied on top of the file at every reload (command line wins). */
typedef struct ConfigSetting {
        char *key;
        char *value;
} ConfigSetting;

void config_init(Config *c);
void config_deinit(Config *c);
/** config_set() - apply one setting. Return: 0, or -EINVAL with a reason in *@ret_why. */
int config_set(Config *c, const char *key, const char *value, const char **ret_why);
/** config_is_key() - whether @key names a setting (for --KEY=VALUE on the command line). */
bool config_is_key(const char *key);
/** config_load() - defaults, then @path (may be NULL; a missing file is an error only if
 * @path was given explicitly), then @cli. On error nothing in *@ret is touched.
 * Return: 0 or -errno (logged with file:line). */
int config_load(Config *ret, const char *path, const ConfigSetting *cli, size_t n_cli);
/** config_help() - print the settings with their defaults (for --help). */
void config_help(void);
