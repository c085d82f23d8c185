/*
 * evd-bench-util.c - evd-bench's process plumbing: dying (with every daemon and child
 * cleaned up), clocks, MAP_SHARED result memory, forked children that die with the bench,
 * CPU pinning, and what /proc says about a process (RSS, io_uring ring memory, CPU time).
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "evd-bench.h"
#include "macro.h"

/* ---- small helpers ------------------------------------------------------------------ */

static bool in_child;

/* Run by die() in the parent before it exits: evd-bench-daemon.c stops the live daemons
 * there (set with the first one, so this layer does not call up into that one). */
void (*die_hook)(void);

void die(const char *fmt, ...) {
        va_list ap;

        fflush(stdout);
        fprintf(stderr, "evd-bench%s: ", in_child ? " (child)" : "");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        if (in_child)
                _exit(1);
        if (die_hook)
                die_hook();
        exit(1);
}

void die_errno(const char *fmt, ...) {
        const char *err = strerror(errno);
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        die("%s: %s", msg, err);
}

uint64_t now_ns(void) {
        struct timespec ts;

        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

void sleep_ns(uint64_t ns) {
        struct timespec ts = {.tv_sec = (time_t)(ns / NSEC_PER_SEC),
                              .tv_nsec = (long)(ns % NSEC_PER_SEC)};

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

uint64_t cpu_ns_self(void) {
        struct rusage ru;

        (void)getrusage(RUSAGE_SELF, &ru);
        return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * NSEC_PER_SEC +
               (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000u;
}

/* Memory the children fill and the parent reads: it must exist before fork(). */
void *shm_new(size_t size) {
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

        if (p == MAP_FAILED)
                die_errno("mmap %zu bytes", size);
        return p;
}

void shm_free(void *p, size_t size) {
        if (p)
                (void)munmap(p, size);
}

/* fork() with the bench's rules: a child dies with the bench and never returns to main. */
pid_t child_fork(void) {
        pid_t parent = getpid(), pid;

        fflush(stdout);
        fflush(stderr);
        pid = fork();
        if (pid < 0)
                die_errno("fork");
        if (pid == 0) {
                in_child = true;
                (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent)
                        _exit(1);
        }
        return pid;
}

/* Reap @pid, which must have exited 0. Return: its CPU time (user + system), in ns. */
uint64_t child_wait_cpu(pid_t pid, const char *what) {
        struct rusage ru;
        int status;

        while (wait4(pid, &status, 0, &ru) < 0)
                if (errno != EINTR)
                        die_errno("waitpid (%s)", what);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                die("%s failed (%s %d)", what, WIFEXITED(status) ? "exit" : "signal",
                    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * NSEC_PER_SEC +
               (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000u;
}

void child_wait(pid_t pid, const char *what) {
        (void)child_wait_cpu(pid, what);
}

/* @cpu < 0: every CPU. */
static void cpu_set_for(int cpu, cpu_set_t *set) {
        CPU_ZERO(set);
        if (cpu >= 0) {
                CPU_SET(cpu, set);
                return;
        }
        for (long i = 0, n = sysconf(_SC_NPROCESSORS_ONLN); i < n && i < CPU_SETSIZE; i++)
                CPU_SET(i, set);
}

void pin_self(int cpu) {
        cpu_set_t set;

        cpu_set_for(cpu, &set);
        if (sched_setaffinity(0, sizeof(set), &set) < 0)
                die_errno("sched_setaffinity(%d)", cpu);
}

/* Every thread of @pid (io_uring may add its own); kernel-owned ones refuse, that is fine. */
void pin_process(pid_t pid, int cpu) {
        char path[64];
        struct dirent *de;
        cpu_set_t set;
        DIR *dir;

        cpu_set_for(cpu, &set);
        snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
        dir = opendir(path);
        if (!dir)
                die_errno("%s", path);
        while ((de = readdir(dir)))
                if (de->d_name[0] != '.')
                        (void)sched_setaffinity((pid_t)atoi(de->d_name), sizeof(set), &set);
        closedir(dir);
}

/* The first line of @path that starts with @key, parsed after it. */
static bool proc_read_field(const char *path, const char *key, long *ret) {
        _cleanup_(fclosep) FILE *f = fopen(path, "re");
        char line[512];
        size_t n = strlen(key);

        while (f && fgets(line, sizeof(line), f))
                if (strncmp(line, key, n) == 0)
                        return sscanf(line + n, "%ld", ret) == 1;
        return false;
}

long proc_rss_kb(pid_t pid) {
        char path[64];
        long kb = -1;

        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        if (!proc_read_field(path, "VmRSS:", &kb))
                die("no VmRSS in %s", path);
        return kb;
}

/* RSS of the io_uring rings (SQ/CQ and SQE arrays the kernel maps into the process):
 * counted in VmRSS, but kernel memory sized by the ring, not by the daemon's own data. */
long proc_ring_rss_kb(pid_t pid) {
        char path[64], line[512];
        bool ring = false;
        long kb, sum = 0;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
        f = fopen(path, "re");
        if (!f)
                die_errno("%s", path);
        while (fgets(line, sizeof(line), f)) {
                const char *space = strchr(line, ' '), *colon = strchr(line, ':');

                /* A mapping's header line ("addr-addr perms ... path") has no "Key:" first. */
                if (space && (!colon || colon > space))
                        ring = strstr(line, "[io_uring]") != NULL;
                else if (ring && sscanf(line, "Rss: %ld kB", &kb) == 1)
                        sum += kb;
        }
        fclose(f);
        return sum;
}

/* utime and stime of the whole process (all threads) from /proc/PID/stat: clock ticks. */
void proc_cpu_ticks(pid_t pid, uint64_t *ret_user_ns, uint64_t *ret_sys_ns) {
        char path[64], buf[1024];
        unsigned long ut = 0, st = 0;
        long tck = sysconf(_SC_CLK_TCK);
        const char *p;
        int fd;
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
        (void)safe_close(fd);
        if (n <= 0)
                die_errno("%s", path);
        buf[n] = 0;
        /* comm may hold spaces and parentheses: fields count from the last ')'. */
        p = strrchr(buf, ')');
        if (!p ||
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
                die("cannot parse %s", path);
        *ret_user_ns = (uint64_t)ut * NSEC_PER_SEC / (uint64_t)tck;
        *ret_sys_ns = (uint64_t)st * NSEC_PER_SEC / (uint64_t)tck;
}

/* Time on CPU in ns, summed over the threads (/proc/PID/task/TID/schedstat): exact where
 * the 10 ms ticks of /proc/PID/stat are too coarse for a short phase. */
uint64_t proc_runtime_ns(pid_t pid) {
        char path[300];
        struct dirent *de;
        uint64_t sum = 0;
        DIR *dir;

        snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
        dir = opendir(path);
        if (!dir)
                die_errno("%s", path);
        while ((de = readdir(dir))) {
                unsigned long long ns = 0;
                FILE *f;

                if (de->d_name[0] == '.')
                        continue;
                snprintf(path, sizeof(path), "/proc/%d/task/%s/schedstat", (int)pid, de->d_name);
                f = fopen(path, "re");
                if (f && fscanf(f, "%llu", &ns) == 1)
                        sum += ns;
                if (f)
                        fclose(f);
        }
        closedir(dir);
        return sum;
}

int pipe_nb(int fds[2]) {
        return pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0 ? -errno : 0;
}
