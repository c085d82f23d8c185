/*
 * soak-daemon.c - the evd under test: starting it on a fresh socket, its fd count and
 * RSS from /proc, whether it is alive, and calls on the control connection.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "soak.h"

pid_t daemon_pid;

int daemon_fd_count(void) {
        char path[64];
        struct dirent *de;
        DIR *dir;
        int n = 0;

        snprintf(path, sizeof(path), "/proc/%d/fd", (int)daemon_pid);
        dir = opendir(path);
        if (!dir)
                return -1;
        while ((de = readdir(dir)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(dir);
        return n;
}

long daemon_rss_kib(void) {
        char path[64], line[256];
        long kb = -1;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/status", (int)daemon_pid);
        f = fopen(path, "re");
        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
                        break;
        fclose(f);
        return kb;
}

bool daemon_alive(int *ret_status) {
        int status;

        if (waitpid(daemon_pid, &status, WNOHANG) == daemon_pid) {
                *ret_status = status;
                daemon_pid = 0;
                return false;
        }
        return true;
}

int start_daemon(void) {
        pid_t parent = getpid();
        long long deadline;

        snprintf(soak_dir, sizeof(soak_dir), "%s/evd-soak-XXXXXX",
                 getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(soak_dir))
                return -errno;
        snprintf(soak_socket, sizeof(soak_socket), "%s/evd.sock", soak_dir);
        snprintf(soak_log, sizeof(soak_log), "%s/evd.log", soak_dir);
        daemon_pid = fork();
        if (daemon_pid < 0)
                return -errno;
        if (daemon_pid == 0) {
                int log = open(soak_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                const char *argv[16];
                size_t n = 0;

                (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent)
                        _exit(127);
                if (log >= 0)
                        (void)dup2(log, STDERR_FILENO);
                unsetenv("NOTIFY_SOCKET");
                unsetenv("LISTEN_FDS");
                unsetenv("LISTEN_PID");
                argv[n++] = arg_evd;
                argv[n++] = "--socket";
                argv[n++] = soak_socket;
                argv[n++] = "--log-level";
                argv[n++] = "notice";
                argv[n++] = "--max-clients-per-uid=4096";
                if (arg_backend) {
                        argv[n++] = "--backend";
                        argv[n++] = arg_backend;
                }
                argv[n] = NULL;
                execv(arg_evd, (char *const *)argv);
                _exit(127);
        }
        deadline = now_ms() + 5000;
        for (;;) {
                int fd = connect_daemon(), status;

                if (fd >= 0) {
                        close(fd);
                        return 0;
                }
                if (!daemon_alive(&status) || now_ms() > deadline)
                        return -ECHILD;
                (void)usleep(5000);
        }
}

json_t *ctl_call(int ctl, long long *next_id, const char *method, const char *params) {
        char text[256];
        long long id = ++*next_id;
        int ret;

        snprintf(text, sizeof(text), "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"method\":\"%s\"%s%s}", id,
                 method, params ? ",\"params\":" : "", params ? params : "");
        return request(ctl, text, NULL, 0, id, NULL, NULL, &ret);
}

long long status_member(json_t *status, const char *key) {
        return json_integer_value(json_object_get(json_object_get(status, "result"), key));
}
