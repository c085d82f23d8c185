#pragma once
/* soak.h - what the soak's files share: options, limits, the daemon, the wire client */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#ifndef EVD_SOAK_DAEMON
#define EVD_SOAK_DAEMON "evd"
#endif

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

#define MAX_WORKERS 16
#define MAX_CONNS 6
#define MAX_WATCHES 12
#define MAX_TIMERS 8
#define REPLY_TIMEOUT_MS 5000

/* soak-options.c */
extern const char *arg_evd;
extern unsigned arg_seconds;
extern unsigned arg_workers;
extern const char *arg_backend;
extern unsigned arg_pace_us;
extern long arg_rss_slack_kib;
extern unsigned arg_kill_every;
extern bool arg_keep;
extern bool arg_fd_cycles;
int parse_argv(int argc, char **argv);

/* soak-client.c */
extern char soak_dir[64], soak_socket[128], soak_log[128];
long long now_ms(void);
int connect_daemon(void);
json_t *recv_packet(int fd, int timeout_ms, int *ret);
json_t *wait_reply(int fd, long long id, void (*on_note)(json_t *m, void *ud), void *ud,
                   int *ret);
json_t *request(int fd, const char *text, const int *fds, size_t n_fds, long long id,
                void (*on_note)(json_t *m, void *ud), void *ud, int *ret);
int error_code(json_t *reply);

/* soak-worker.c */
_Noreturn void worker_run(int report, unsigned seed);

/* soak-daemon.c */
extern pid_t daemon_pid;
int daemon_fd_count(void);
long daemon_rss_kib(void);
bool daemon_alive(int *ret_status);
int start_daemon(void);
json_t *ctl_call(int ctl, long long *next_id, const char *method, const char *params);
long long status_member(json_t *status, const char *key);
