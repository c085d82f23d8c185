/*
 * evd-bench.c - evd end to end: latency, throughput, registration, memory, timers
 *
 * The bench starts the real daemon (EVD_BENCH_DAEMON, $EVD_BENCH_DAEMON or --evd) once per
 * backend, each in its own mkdtemp() directory, and talks to it only through libevd from
 * forked client processes: daemon, clients, writers and the bench's bookkeeping are
 * separate processes as in real use, and the bench's own connection (`ctl`, for `status`
 * and `stats`) stays idle while something is timed. What the kernel sets the floor for is
 * measured in the same run: a SOCK_SEQPACKET ping-pong between two plain processes.
 *
 * Fairness on a noisy shared machine: both daemons are up at once and the latency and
 * throughput blocks alternate between the floor and the backends (rotated, ABBA), so a
 * change of load hits every contender alike. The memory figures use a fresh daemon each,
 * so no contender inherits what another's allocator kept.
 *
 * Children report through MAP_SHARED memory set up before fork(); the parent prints the
 * tables and the JSON from it. Every child and daemon gets PR_SET_PDEATHSIG, so an
 * aborted bench leaves no process behind (and its atexit() handler removes the
 * directories).
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "evd.h"
#include "macro.h"

#ifndef EVD_BENCH_DAEMON
#define EVD_BENCH_DAEMON "evd"
#endif

#define NSEC_PER_SEC 1000000000ull
#define MAX_BACKENDS 2
#define LAT_WARMUP 100u       /* latency samples dropped at the start of each block */
#define WINDOW 128u           /* async requests a client keeps in flight */
#define STEP_TIMEOUT_MS 60000 /* no single step of a scenario may take longer */
#define FD_SLACK 256u         /* fds the daemon keeps for itself at the fd limit */

enum {
        SCEN_LATENCY = 1 << 0,
        SCEN_THROUGHPUT = 1 << 1,
        SCEN_REGISTER = 1 << 2,
        SCEN_SCALE = 1 << 3,
        SCEN_TIMERS = 1 << 4,
        SCEN_ALL = (1 << 5) - 1,
};

static const char *const scenario_names[] = {"latency", "throughput", "register", "scale",
                                             "timers"};

/* ---- options ------------------------------------------------------------------------ */

static const char *arg_evd;
static const char *arg_json;
static bool arg_quick;
static unsigned arg_scenarios = SCEN_ALL;
static const char *arg_backends[MAX_BACKENDS] = {"io_uring", "epoll"};
static size_t arg_n_backends = 2;
static int arg_cpu = 0;
static unsigned arg_samples = 10000; /* per target and pinning */
static unsigned arg_rounds = 5;
static unsigned arg_clients = 4, arg_watches = 64, arg_fanout = 8;
static double arg_duration = 2.0; /* throughput seconds per backend */
static bool arg_tp_split;         /* throughput: evd alone on one CPU, the clients on the others */
static unsigned arg_reg_watches = 5000, arg_reg_reps = 3;
static unsigned arg_scale_watches; /* 0: as many as the fd limit allows */
static unsigned arg_scale_timers = 1000000;
static unsigned arg_timers = 100000, arg_timer_clients = 4;
static double arg_timer_spread = 1.0, arg_timer_lead = 1.0; /* lead: at least */

/* ---- small helpers ------------------------------------------------------------------ */

static bool in_child;

static void cleanup_daemons(void);

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
        va_list ap;

        fflush(stdout);
        fprintf(stderr, "evd-bench%s: ", in_child ? " (child)" : "");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        if (in_child)
                _exit(1);
        cleanup_daemons();
        exit(1);
}

/* die() with ": strerror(errno)" appended. */
static void die_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die_errno(const char *fmt, ...) {
        const char *err = strerror(errno);
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        die("%s: %s", msg, err);
}

static uint64_t now_ns(void) {
        struct timespec ts;

        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns) {
        struct timespec ts = {.tv_sec = (time_t)(ns / NSEC_PER_SEC),
                              .tv_nsec = (long)(ns % NSEC_PER_SEC)};

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static uint64_t cpu_ns_self(void) {
        struct rusage ru;

        (void)getrusage(RUSAGE_SELF, &ru);
        return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * NSEC_PER_SEC +
               (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000u;
}

/* Memory the children fill and the parent reads: it must exist before fork(). */
static void *shm_new(size_t size) {
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

        if (p == MAP_FAILED)
                die_errno("mmap %zu bytes", size);
        return p;
}

static void shm_free(void *p, size_t size) {
        if (p)
                (void)munmap(p, size);
}

/* fork() with the bench's rules: a child dies with the bench and never returns to main. */
static pid_t child_fork(void) {
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
static uint64_t child_wait_cpu(pid_t pid, const char *what) {
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

static void child_wait(pid_t pid, const char *what) {
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

static void pin_self(int cpu) {
        cpu_set_t set;

        cpu_set_for(cpu, &set);
        if (sched_setaffinity(0, sizeof(set), &set) < 0)
                die_errno("sched_setaffinity(%d)", cpu);
}

/* Every thread of @pid (io_uring may add its own); kernel-owned ones refuse, that is fine. */
static void pin_process(pid_t pid, int cpu) {
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

static long proc_rss_kb(pid_t pid) {
        char path[64];
        long kb = -1;

        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        if (!proc_read_field(path, "VmRSS:", &kb))
                die("no VmRSS in %s", path);
        return kb;
}

/* RSS of the io_uring rings (SQ/CQ and SQE arrays the kernel maps into the process):
 * counted in VmRSS, but kernel memory sized by the ring, not by the daemon's own data. */
static long proc_ring_rss_kb(pid_t pid) {
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
static void proc_cpu_ticks(pid_t pid, uint64_t *ret_user_ns, uint64_t *ret_sys_ns) {
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
static uint64_t proc_runtime_ns(pid_t pid) {
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

static int pipe_nb(int fds[2]) {
        return pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0 ? -errno : 0;
}

/* ---- JSON: one member per line keeps the field lists readable ----------------------- */

static void jreal(json_t *o, const char *key, double v) {
        json_object_set_new(o, key, json_real(v));
}

static void jint(json_t *o, const char *key, uint64_t v) {
        json_object_set_new(o, key, json_integer((json_int_t)v));
}

static void jbool(json_t *o, const char *key, bool v) {
        json_object_set_new(o, key, json_boolean(v));
}

static void jstr(json_t *o, const char *key, const char *v) {
        json_object_set_new(o, key, json_string(v));
}

/* ---- distributions ---------------------------------------------------------------- */

/* Microseconds. Percentiles are nearest-rank. Samples are signed: a timer may fire early. */
typedef struct Dist {
        size_t n;
        double min, p50, p99, p999, max, mean;
} Dist;

static int cmp_i64(const void *a, const void *b) {
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

        return x < y ? -1 : x > y;
}

static double rank_us(const int64_t *sorted, size_t n, double q) {
        size_t i = (size_t)ceil(q * (double)n);

        return (double)sorted[i > 0 ? i - 1 : 0] / 1e3;
}

/* Sorts @ns in place. */
static Dist dist_of(int64_t *ns, size_t n) {
        Dist d = {.n = n};
        double sum = 0;

        if (n == 0)
                return d;
        qsort(ns, n, sizeof(*ns), cmp_i64);
        for (size_t i = 0; i < n; i++)
                sum += (double)ns[i];
        d.min = (double)ns[0] / 1e3;
        d.max = (double)ns[n - 1] / 1e3;
        d.mean = sum / (double)n / 1e3;
        d.p50 = rank_us(ns, n, 0.50);
        d.p99 = rank_us(ns, n, 0.99);
        d.p999 = rank_us(ns, n, 0.999);
        return d;
}

static json_t *dist_json(const Dist *d) {
        json_t *j = json_object();

        jint(j, "samples", d->n);
        jreal(j, "min_us", d->min);
        jreal(j, "p50_us", d->p50);
        jreal(j, "p99_us", d->p99);
        jreal(j, "p99.9_us", d->p999);
        jreal(j, "max_us", d->max);
        jreal(j, "mean_us", d->mean);
        return j;
}

/* ---- the daemon ------------------------------------------------------------------- */

/* The daemon's `stats` counters the bench uses, and its latency histogram. */
typedef struct DaemonStats {
        uint64_t notifications, packets_out, coalesced;
        uint64_t iterations, events, timers, syscalls, submissions;
        struct {
                double le_us;
                uint64_t count;
        } bucket[64];
        size_t n_buckets;
} DaemonStats;

/* The daemon's own latency figure (event seen -> handed to the socket): upper bounds of
 * power-of-two buckets, over what happened between two `stats` calls. */
typedef struct HistQ {
        uint64_t count;
        double p50_le, p99_le;
} HistQ;

typedef struct BenchDaemon {
        const char *backend;
        pid_t pid;
        char dir[64], socket[96], log[96];
        struct evd_client *ctl; /* the bench's own connection: status, stats, ping */
        char features[256];
        char version[32];
} BenchDaemon;

static BenchDaemon *live_daemons[8];

static struct evd_client *client_connect(const char *socket_path) {
        struct evd_client *c = NULL;
        int r;

        r = evd_client_new(&c);
        if (r < 0)
                die("evd_client_new: %s", evd_strerror(r));
        (void)evd_client_set_name(c, "evd-bench");
        r = evd_client_connect(c, socket_path);
        if (r < 0)
                die("connect %s: %s", socket_path, evd_strerror(r));
        return c;
}

/* Wait for the client's fd at most @timeout_ms, then dispatch. */
static void client_pump(struct evd_client *c, int timeout_ms) {
        struct pollfd p = {.fd = evd_client_fd(c), .events = POLLIN};
        int r;

        r = poll(&p, 1, timeout_ms);
        if (r < 0 && errno != EINTR)
                die_errno("poll");
        r = evd_client_dispatch(c);
        if (r < 0)
                die("evd_client_dispatch: %s", evd_strerror(r));
}

/* Dispatch until *@counter reaches @target (a bounded wait: a lost reply is an error). */
static void client_pump_until(struct evd_client *c, const unsigned *counter, unsigned target,
                              const char *what) {
        uint64_t deadline = now_ns() + STEP_TIMEOUT_MS * 1000000ull;

        while (*counter < target) {
                if (now_ns() > deadline)
                        die("%s: %u of %u after %d s", what, *counter, target,
                            STEP_TIMEOUT_MS / 1000);
                client_pump(c, 100);
        }
}

/* Completion counter for pipelined requests: a failure is fatal, the bench measures
 * success paths only. */
typedef struct Done {
        unsigned n;
        const char *what;
} Done;

static int done_count(struct evd_client *c, int r, json_t *result, void *userdata) {
        Done *d = userdata;
        const struct evd_error *e;

        if (r < 0) {
                e = evd_client_last_error(c);
                die("%s: %s%s%s", d->what, evd_strerror(r), e && e->why ? ": " : "",
                    e && e->why ? e->why : "");
        }
        d->n++;
        return 0;
}

static json_t *ctl_call(BenchDaemon *d, const char *method) {
        json_t *res = NULL;
        int r;

        r = evd_call(d->ctl, method, NULL, STEP_TIMEOUT_MS, &res);
        if (r < 0)
                die("%s: %s: %s", d->backend, method, evd_strerror(r));
        return res;
}

static uint64_t json_u64(json_t *o, const char *section, const char *key) {
        json_t *v = json_object_get(json_object_get(o, section), key);

        return json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0;
}

static void daemon_stats(BenchDaemon *d, DaemonStats *ret) {
        json_t *s = ctl_call(d, "stats"), *b;
        size_t i;

        *ret = (DaemonStats){0};
        ret->notifications = json_u64(s, "daemon", "notifications");
        ret->packets_out = json_u64(s, "daemon", "packets_out");
        ret->coalesced = json_u64(s, "daemon", "coalesced");
        ret->iterations = json_u64(s, "engine", "iterations");
        ret->events = json_u64(s, "engine", "events");
        ret->timers = json_u64(s, "engine", "timers");
        ret->syscalls = json_u64(s, "engine", "syscalls");
        ret->submissions = json_u64(s, "engine", "submissions");
        json_array_foreach(json_object_get(json_object_get(s, "latency"), "buckets"), i, b) {
                if (ret->n_buckets >= ELEMENTSOF(ret->bucket))
                        break;
                ret->bucket[ret->n_buckets].le_us = json_number_value(json_object_get(b, "le_us"));
                ret->bucket[ret->n_buckets].count =
                        (uint64_t)json_integer_value(json_object_get(b, "count"));
                ret->n_buckets++;
        }
        json_decref(s);
}

static uint64_t stats_bucket(const DaemonStats *s, double le) {
        for (size_t i = 0; i < s->n_buckets; i++)
                if (s->bucket[i].le_us == le)
                        return s->bucket[i].count;
        return 0;
}

/* Percentiles of what the daemon recorded between @a and @b. */
static HistQ hist_between(const DaemonStats *a, const DaemonStats *b) {
        HistQ q = {0};
        uint64_t diff[64], total = 0, run = 0;

        for (size_t i = 0; i < b->n_buckets; i++) {
                diff[i] = b->bucket[i].count - stats_bucket(a, b->bucket[i].le_us);
                total += diff[i];
        }
        q.count = total;
        for (size_t i = 0; i < b->n_buckets && total > 0; i++) {
                run += diff[i];
                if (q.p50_le == 0 && run * 2 >= total)
                        q.p50_le = b->bucket[i].le_us;
                if (run * 100 >= total * 99) {
                        q.p99_le = b->bucket[i].le_us;
                        break;
                }
        }
        return q;
}

static json_t *histq_json(const HistQ *q) {
        json_t *j = json_object();

        jint(j, "count", q->count);
        jreal(j, "p50_le_us", q->p50_le);
        jreal(j, "p99_le_us", q->p99_le);
        return j;
}

static void daemon_exec(const BenchDaemon *d, const char *const *extra) {
        const char *argv[32];
        size_t n = 0;
        int log;

        argv[n++] = arg_evd;
        argv[n++] = "--socket";
        argv[n++] = d->socket;
        argv[n++] = "--backend";
        argv[n++] = d->backend;
        argv[n++] = "--log-level";
        argv[n++] = "warning";
        for (size_t i = 0; extra && extra[i] && n < ELEMENTSOF(argv) - 1; i++)
                argv[n++] = extra[i];
        argv[n] = NULL;
        log = open(d->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (log >= 0)
                (void)dup2(log, STDERR_FILENO);
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_PID");
        unsetenv("NOTIFY_SOCKET");
        execv(arg_evd, (char *const *)argv);
        _exit(127);
}

static void daemon_register(BenchDaemon *d, bool add) {
        for (size_t i = 0; i < ELEMENTSOF(live_daemons); i++)
                if (add ? !live_daemons[i] : live_daemons[i] == d) {
                        live_daemons[i] = add ? d : NULL;
                        return;
                }
}

/* Start evd for @backend; return once it answers `status` with that backend. */
static void daemon_start(BenchDaemon *d, const char *backend, const char *const *extra) {
        uint64_t deadline = now_ns() + 10 * NSEC_PER_SEC;
        const char *running, *version;
        json_t *st, *f;
        size_t i;

        *d = (BenchDaemon){.backend = backend};
        snprintf(d->dir, sizeof(d->dir), "%s/evd-bench-XXXXXX",
                 getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(d->dir))
                die_errno("mkdtemp");
        snprintf(d->socket, sizeof(d->socket), "%s/evd.sock", d->dir);
        snprintf(d->log, sizeof(d->log), "%s/evd.log", d->dir);
        d->pid = child_fork();
        if (d->pid == 0)
                daemon_exec(d, extra);
        daemon_register(d, true);

        for (;;) {
                int status, r;

                if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
                        d->pid = 0;
                        die("evd (%s) exited during start-up; see %s", backend, d->log);
                }
                r = evd_client_new(&d->ctl);
                if (r >= 0)
                        r = evd_client_connect(d->ctl, d->socket);
                if (r >= 0)
                        break;
                d->ctl = evd_client_free(d->ctl);
                if (now_ns() > deadline)
                        die("evd (%s) is not listening after 10 s; see %s", backend, d->log);
                sleep_ns(5000000);
        }
        /* The daemon falls back to epoll where io_uring is refused: that would compare epoll
         * with itself. */
        st = ctl_call(d, "status");
        running = json_string_value(json_object_get(st, "backend"));
        if (!running || strcmp(running, backend) != 0)
                die("evd was asked for %s but runs %s; see %s", backend, running ? running : "?",
                    d->log);
        version = json_string_value(json_object_get(st, "version"));
        snprintf(d->version, sizeof(d->version), "%s", version ? version : "?");
        json_array_foreach(json_object_get(st, "features"), i, f) {
                const char *name = json_string_value(f);
                size_t len = strlen(d->features);

                if (name && len + strlen(name) + 2 < sizeof(d->features))
                        snprintf(d->features + len, sizeof(d->features) - len, "%s%s",
                                 len ? " " : "", name);
        }
        json_decref(st);
}

static void daemon_stop(BenchDaemon *d) {
        uint64_t deadline = now_ns() + 5 * NSEC_PER_SEC;
        int status = 0;
        bool clean = false;

        if (!d->pid)
                return;
        d->ctl = evd_client_free(d->ctl);
        (void)kill(d->pid, SIGTERM);
        for (;;) {
                pid_t r = waitpid(d->pid, &status, WNOHANG);

                if (r == d->pid) {
                        clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
                        break;
                }
                if (r < 0 || now_ns() > deadline) {
                        (void)kill(d->pid, SIGKILL);
                        (void)waitpid(d->pid, &status, 0);
                        break;
                }
                sleep_ns(2000000);
        }
        d->pid = 0;
        daemon_register(d, false);
        (void)unlink(d->socket);
        if (!clean) {
                fprintf(stderr, "evd-bench: evd (%s) did not exit cleanly; its log is %s\n",
                        d->backend, d->log);
                return;
        }
        (void)unlink(d->log);
        (void)rmdir(d->dir);
}

static void cleanup_daemons(void) {
        for (size_t i = 0; i < ELEMENTSOF(live_daemons); i++)
                if (live_daemons[i])
                        daemon_stop(live_daemons[i]);
}

/* ---- 1. latency ------------------------------------------------------------------- */

/*
 * One sample at a time. evd: a writer process, woken by a byte on the "go" pipe, takes
 * CLOCK_MONOTONIC and writes it (8 bytes) into the data pipe; the client, which watches
 * the data pipe through evd (edge), takes the clock on entering its callback and drains
 * the pipe. It sends the next "go" right before it blocks in poll(), so each sample
 * starts from a sleeping daemon and a sleeping client.
 * Floor: process A takes the clock, sends it on a SOCK_SEQPACKET socketpair, B echoes it,
 * A takes the clock again: two wake-ups, like write -> evd -> client.
 * Relay: the evd set-up with evd replaced by the least a readiness daemon can do
 * (epoll_wait() on the pipe, edge, then send() of a notification-sized packet; the client
 * blocks in recv()): what the three-process topology itself costs, so that evd - relay is
 * what evd and libevd add.
 */

enum { TARGET_FLOOR, TARGET_RELAY, _TARGET_FIXED }; /* then one per backend */
#define MAX_TARGETS (_TARGET_FIXED + MAX_BACKENDS)
#define NOTIFICATION_SIZE 89 /* bytes of a `ready` as evd sends it, for the relay */

/* CPU time of the processes on the path, summed over blocks: where a sample's time goes.
 * server: the daemon (schedstat), the relay or the echo process; client: the process that
 * takes the second clock; writer: the one that takes the first (evd and relay only). */
typedef struct LatCpu {
        uint64_t server_ns, client_ns, writer_ns, samples;
} LatCpu;

static double per_sample_us(uint64_t ns, const LatCpu *c) {
        return c->samples ? (double)ns / (double)c->samples / 1e3 : 0;
}

typedef struct LatClient {
        int data_fd;
        int64_t *out;
        size_t i, n;
        bool fired;
} LatClient;

/* The data pipe holds the writer's clock; @t1 is when the client got the news. */
static void lat_record(LatClient *lc, uint64_t t1) {
        char buf[64];
        ssize_t k = read(lc->data_fd, buf, sizeof(buf));
        uint64_t t0;

        if (k != sizeof(t0))
                die("latency: read %zd bytes from the data pipe, expected 8", k);
        memcpy(&t0, buf, sizeof(t0));
        if (lc->i >= LAT_WARMUP)
                lc->out[lc->i - LAT_WARMUP] = (int64_t)(t1 - t0);
        lc->i++;
}

static int lat_ready(struct evd_client *c, uint64_t watch, uint32_t revents, void *userdata) {
        LatClient *lc = userdata;

        lat_record(lc, now_ns());
        lc->fired = true;
        return 0;
}

static void lat_writer(int cpu, int go_fd, int data_fd) {
        pin_self(cpu);
        for (;;) {
                uint64_t t0;
                char g;

                if (read(go_fd, &g, 1) != 1 || g == 'q')
                        _exit(0);
                t0 = now_ns();
                if (write(data_fd, &t0, sizeof(t0)) != sizeof(t0))
                        die_errno("latency writer: write");
        }
}

static void lat_go(int go_fd) {
        if (write(go_fd, "g", 1) != 1)
                die_errno("latency: write go");
}

static void lat_client_evd(const BenchDaemon *d, int cpu, int go_fd, int data_fd, int64_t *out,
                           size_t n) {
        LatClient lc = {.data_fd = data_fd, .out = out, .n = n};
        struct evd_client *c;
        int r;

        pin_self(cpu);
        c = client_connect(d->socket);
        r = evd_watch_add(c, data_fd, EVD_IN, EVD_EDGE, lat_ready, &lc, STEP_TIMEOUT_MS, NULL);
        if (r < 0)
                die("latency: watch: %s", evd_strerror(r));
        while (lc.i < n + LAT_WARMUP) {
                uint64_t deadline = now_ns() + 5 * NSEC_PER_SEC;

                lc.fired = false;
                lat_go(go_fd);
                while (!lc.fired) {
                        if (now_ns() > deadline)
                                die("latency: no notification within 5 s (sample %zu)", lc.i);
                        client_pump(c, 1000);
                }
        }
        (void)write(go_fd, "q", 1);
        (void)evd_client_free(c);
        _exit(0);
}

static void lat_client_relay(int cpu, int go_fd, int data_fd, int sock, int64_t *out, size_t n) {
        LatClient lc = {.data_fd = data_fd, .out = out, .n = n};
        char buf[256];

        pin_self(cpu);
        while (lc.i < n + LAT_WARMUP) {
                lat_go(go_fd);
                if (recv(sock, buf, sizeof(buf), 0) <= 0)
                        die_errno("relay client: recv");
                lat_record(&lc, now_ns());
        }
        (void)write(go_fd, "q", 1);
        _exit(0);
}

/* Exits when the writer is gone (the pipe hangs up). */
static void lat_relay(int cpu, int data_fd, int sock) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLET};
        char msg[NOTIFICATION_SIZE];
        int ep;

        pin_self(cpu);
        memset(msg, ' ', sizeof(msg));
        ep = epoll_create1(EPOLL_CLOEXEC);
        if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, data_fd, &ev) < 0)
                die_errno("relay: epoll");
        for (;;) {
                if (epoll_wait(ep, &ev, 1, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        die_errno("relay: epoll_wait");
                }
                if (ev.events & (EPOLLHUP | EPOLLERR))
                        _exit(0);
                if (send(sock, msg, sizeof(msg), 0) != sizeof(msg))
                        die_errno("relay: send");
        }
}

/* @d NULL: the relay. */
static void lat_block_3proc(BenchDaemon *d, int cpu, int64_t *out, size_t n, LatCpu *acc) {
        int data[2], go[2], sv[2] = {-1, -1};
        pid_t writer, relay = 0, client;
        uint64_t evd0 = d ? proc_runtime_ns(d->pid) : 0;

        /* The read end is nonblocking: a spurious wakeup must never block the client. */
        if (pipe2(data, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0 ||
            fcntl(data[0], F_SETFL, O_NONBLOCK) < 0)
                die_errno("pipe2");
        if (!d && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                die_errno("socketpair");
        if (d)
                pin_process(d->pid, cpu);
        writer = child_fork();
        if (writer == 0)
                lat_writer(cpu, go[0], data[1]);
        if (!d) {
                relay = child_fork();
                if (relay == 0) {
                        close(data[1]);
                        lat_relay(cpu, data[0], sv[0]);
                }
        }
        client = child_fork();
        if (client == 0) {
                close(data[1]);
                if (d)
                        lat_client_evd(d, cpu, go[1], data[0], out, n);
                lat_client_relay(cpu, go[1], data[0], sv[1], out, n);
        }
        close(data[0]);
        close(data[1]);
        close(go[0]);
        close(go[1]);
        (void)safe_close(sv[0]);
        (void)safe_close(sv[1]);
        acc->client_ns += child_wait_cpu(client, "latency client");
        acc->writer_ns += child_wait_cpu(writer, "latency writer");
        if (relay)
                acc->server_ns += child_wait_cpu(relay, "relay");
        else
                acc->server_ns += proc_runtime_ns(d->pid) - evd0;
        acc->samples += n + LAT_WARMUP;
}

static void lat_block_floor(int cpu, int64_t *out, size_t n, LatCpu *acc) {
        int sv[2];
        pid_t echo, meas;

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                die_errno("socketpair");
        echo = child_fork();
        if (echo == 0) {
                char buf[64];
                ssize_t k;

                close(sv[0]);
                pin_self(cpu);
                while ((k = recv(sv[1], buf, sizeof(buf), 0)) > 0)
                        if (send(sv[1], buf, (size_t)k, 0) != k)
                                _exit(1);
                _exit(0);
        }
        meas = child_fork();
        if (meas == 0) {
                close(sv[1]);
                pin_self(cpu);
                for (size_t i = 0; i < n + LAT_WARMUP; i++) {
                        uint64_t t0 = now_ns(), back;

                        if (send(sv[0], &t0, sizeof(t0), 0) != sizeof(t0) ||
                            recv(sv[0], &back, sizeof(back), 0) != sizeof(back))
                                die_errno("ping-pong");
                        if (i >= LAT_WARMUP)
                                out[i - LAT_WARMUP] = (int64_t)(now_ns() - t0);
                }
                _exit(0);
        }
        close(sv[0]);
        close(sv[1]);
        acc->client_ns += child_wait_cpu(meas, "ping-pong");
        acc->server_ns += child_wait_cpu(echo, "ping-pong echo");
        acc->samples += n + LAT_WARMUP;
}

typedef struct LatencyResult {
        Dist d[2][MAX_TARGETS]; /* [pinned, unpinned][floor, relay, backends...] */
        LatCpu cpu[2][MAX_TARGETS];
        HistQ internal[2][MAX_BACKENDS];
} LatencyResult;

static void lat_block(BenchDaemon *daemons, size_t target, int cpu, int64_t *out, size_t n,
                      LatCpu *acc) {
        if (target == TARGET_FLOOR)
                lat_block_floor(cpu, out, n, acc);
        else if (target == TARGET_RELAY)
                lat_block_3proc(NULL, cpu, out, n, acc);
        else
                lat_block_3proc(&daemons[target - _TARGET_FIXED], cpu, out, n, acc);
}

/* Targets take turns in blocks, the first one rotating, so drift in the machine's load
 * is shared out evenly. */
static void lat_pass(BenchDaemon *daemons, int cpu, Dist *ret, LatCpu *ret_cpu,
                     HistQ *ret_internal) {
        size_t nt = _TARGET_FIXED + arg_n_backends,
               per = (arg_samples + arg_rounds - 1) / arg_rounds;
        int64_t *buf = shm_new(per * sizeof(int64_t));
        int64_t *all[MAX_TARGETS];
        size_t have[MAX_TARGETS] = {0};
        DaemonStats s0[MAX_BACKENDS], s1[MAX_BACKENDS];

        for (size_t t = 0; t < nt; t++)
                if (!(all[t] = calloc(per * arg_rounds, sizeof(int64_t))))
                        die("out of memory");
        for (size_t b = 0; b < arg_n_backends; b++)
                daemon_stats(&daemons[b], &s0[b]);
        for (unsigned r = 0; r < arg_rounds; r++)
                for (size_t k = 0; k < nt; k++) {
                        size_t t = (k + r) % nt;

                        lat_block(daemons, t, cpu, buf, per, &ret_cpu[t]);
                        memcpy(all[t] + have[t], buf, per * sizeof(int64_t));
                        have[t] += per;
                }
        for (size_t b = 0; b < arg_n_backends; b++) {
                daemon_stats(&daemons[b], &s1[b]);
                ret_internal[b] = hist_between(&s0[b], &s1[b]);
                pin_process(daemons[b].pid, -1);
        }
        for (size_t t = 0; t < nt; t++) {
                ret[t] = dist_of(all[t], have[t]);
                free(all[t]);
        }
        shm_free(buf, per * sizeof(int64_t));
}

static const char *verdict(bool met) {
        return met ? "met" : "MISSED";
}

/* ---- the targets, collected for the summary at the end ------------------------------- */

#define MAX_SUMMARY 32

typedef struct SummaryRow {
        const char *target;
        char value[MAX_BACKENDS][24];
        bool met[MAX_BACKENDS], has[MAX_BACKENDS];
        bool across; /* one value for the backends together (a ratio) */
} SummaryRow;

static SummaryRow summary[MAX_SUMMARY];
static size_t n_summary;

static SummaryRow *summary_row(const char *target) {
        for (size_t i = 0; i < n_summary; i++)
                if (strcmp(summary[i].target, target) == 0)
                        return &summary[i];
        if (n_summary == MAX_SUMMARY)
                die("too many summary rows");
        summary[n_summary].target = target;
        return &summary[n_summary++];
}

/* @backend SIZE_MAX: a row about the backends together. */
static void summary_add(const char *target, size_t backend, bool met, const char *fmt,
                        double value) {
        SummaryRow *r = summary_row(target);
        size_t b = backend == SIZE_MAX ? 0 : backend;

        r->across = backend == SIZE_MAX;
        snprintf(r->value[b], sizeof(r->value[b]), fmt, value);
        r->met[b] = met;
        r->has[b] = true;
}

static json_t *summary_print(void) {
        json_t *j = json_array();

        if (n_summary == 0)
                return j;
        printf("\nTargets%-37s", "");
        for (size_t b = 0; b < arg_n_backends; b++)
                printf(" %-20s", arg_backends[b]);
        printf("\n");
        for (size_t i = 0; i < n_summary; i++) {
                const SummaryRow *r = &summary[i];

                printf("  %-42s", r->target);
                for (size_t b = 0; b < (r->across ? 1 : arg_n_backends); b++) {
                        char cell[48] = "-";

                        if (r->has[b])
                                snprintf(cell, sizeof(cell), "%s %s", r->value[b],
                                         verdict(r->met[b]));
                        printf(" %-20s", cell);
                        json_array_append_new(j, json_pack("{s:s,s:s,s:s,s:b}", "target", r->target,
                                                           "backend",
                                                           r->across ? "all" : arg_backends[b],
                                                           "value", r->value[b], "met", r->met[b]));
                }
                printf("\n");
        }
        return j;
}

static void lat_print_row(const char *name, const Dist *d, const LatCpu *c, const Dist *floor) {
        printf("   %-18s %6.1f %6.1f %6.1f %6.1f %7.1f %5.1f/%4.1f", name, d->min, d->p50, d->p99,
               d->p999, d->max, per_sample_us(c->server_ns, c), per_sample_us(c->client_ns, c));
        if (d != floor)
                printf("  %8.2fx %8.2fx", d->p50 / floor->p50, d->p99 / floor->p99);
}

static json_t *lat_json(const Dist *d, const LatCpu *c, const Dist *floor) {
        json_t *j = dist_json(d);

        jreal(j, "server_cpu_us_per_sample", per_sample_us(c->server_ns, c));
        jreal(j, "client_cpu_us_per_sample", per_sample_us(c->client_ns, c));
        jreal(j, "writer_cpu_us_per_sample", per_sample_us(c->writer_ns, c));
        json_object_set_new(j, "p50_over_floor", json_real(d->p50 / floor->p50));
        json_object_set_new(j, "p99_over_floor", json_real(d->p99 / floor->p99));
        return j;
}

/* One evd row of pass @p (0 pinned, 1 unpinned): printed, judged, and as JSON. */
static json_t *lat_backend(const LatencyResult *res, int p, size_t b) {
        static const char *const t50[] = {"latency p50 <= 1.3x floor, pinned",
                                          "latency p50 <= 1.3x floor, unpinned"};
        static const char *const t99[] = {"latency p99 <= 1.5x floor, pinned",
                                          "latency p99 <= 1.5x floor, unpinned"};
        const Dist *d = &res->d[p][_TARGET_FIXED + b], *f = &res->d[p][TARGET_FLOOR];
        const LatCpu *c = &res->cpu[p][_TARGET_FIXED + b];
        const HistQ *q = &res->internal[p][b];
        bool m50 = d->p50 <= 1.3 * f->p50, m99 = d->p99 <= 1.5 * f->p99;
        char name[32], tgt[32];
        json_t *jb = lat_json(d, c, f);

        snprintf(name, sizeof(name), "  %s", arg_backends[b]);
        snprintf(tgt, sizeof(tgt), "%s/%s", verdict(m50), verdict(m99));
        lat_print_row(name, d, c, f);
        printf("  %-13s <=%g/<=%g\n", tgt, q->p50_le, q->p99_le);
        summary_add(t50[p], b, m50, "%.2fx", d->p50 / f->p50);
        summary_add(t99[p], b, m99, "%.2fx", d->p99 / f->p99);
        jbool(jb, "p50_target_met", m50);
        jbool(jb, "p99_target_met", m99);
        jreal(jb, "p50_over_relay", d->p50 / res->d[p][TARGET_RELAY].p50);
        json_object_set_new(jb, "evd_internal", histq_json(q));
        return jb;
}

static json_t *lat_print_pass(const LatencyResult *res, int p) {
        const Dist *f = &res->d[p][TARGET_FLOOR];
        json_t *jp = json_object();

        if (p == 0)
                printf("   pinned (everything on CPU %d)\n", arg_cpu);
        else
                printf("   unpinned\n");
        lat_print_row("  floor (ping-pong)", f, &res->cpu[p][TARGET_FLOOR], f);
        printf("\n");
        lat_print_row("  relay (epoll)", &res->d[p][TARGET_RELAY], &res->cpu[p][TARGET_RELAY], f);
        printf("\n");
        json_object_set_new(jp, "floor", lat_json(f, &res->cpu[p][TARGET_FLOOR], f));
        json_object_set_new(jp, "relay",
                            lat_json(&res->d[p][TARGET_RELAY], &res->cpu[p][TARGET_RELAY], f));
        for (size_t b = 0; b < arg_n_backends; b++)
                json_object_set_new(jp, arg_backends[b], lat_backend(res, p, b));
        return jp;
}

static json_t *run_latency(BenchDaemon *daemons) {
        unsigned samples = arg_rounds * ((arg_samples + arg_rounds - 1) / arg_rounds);
        LatencyResult res;
        json_t *j = json_object();

        memset(&res, 0, sizeof(res));
        lat_pass(daemons, arg_cpu, res.d[0], res.cpu[0], res.internal[0]);
        lat_pass(daemons, -1, res.d[1], res.cpu[1], res.internal[1]);

        printf("\n1. Latency: write() on a pipe -> the client's callback (edge watch), one\n"
               "   sample at a time; %u samples per row in %u rotated blocks. floor:\n"
               "   SOCK_SEQPACKET ping-pong round trip between two processes; relay: evd's\n"
               "   topology with a minimal epoll relay in its place. Targets: p50 <= 1.3x\n"
               "   floor, p99 <= 1.5x floor, same pinning. Times in us.\n",
               samples, arg_rounds);
        printf("   %-18s %6s %6s %6s %6s %7s %10s  %9s %9s  %-13s %s\n", "", "min", "p50", "p99",
               "p99.9", "max", "cpu srv/cl", "p50/floor", "p99/floor", "target",
               "evd-internal p50/p99");
        json_object_set_new(j, "pinned", lat_print_pass(&res, 0));
        json_object_set_new(j, "unpinned", lat_print_pass(&res, 1));
        printf("   cpu srv/cl: CPU per sample of the middle process (evd, the relay, the echo)\n"
               "   and of the client; evd-internal: the daemon's `stats` latency (event seen ->\n"
               "   handed to the client's socket), upper bounds of power-of-two buckets.\n");
        jint(j, "samples", samples);
        jint(j, "blocks", arg_rounds);
        jint(j, "pinned_cpu", (uint64_t)arg_cpu);
        return j;
}

/* ---- 2. throughput ---------------------------------------------------------------- */

/*
 * C client processes with W watches each (edge), on W/K pipes: each pipe is watched K
 * times (K duplicates of its read end, K watches: what the daemon does is the same as for
 * K pipes, one wakeup and one notification per watch per write). Closed loop: a pipe
 * holds one token; when all K callbacks of a pipe ran, the last one drains it and writes
 * the next byte, so every watch always has one wakeup in flight and the daemon never runs
 * out of work while the clients keep up. K > 1 shares the client's read() + write() among
 * K notifications: on a small machine the load generator, not the daemon, is otherwise
 * the bottleneck. Counted: callbacks (one per notification), the daemon's CPU
 * (utime+stime from /proc/PID/stat) and the clients' (getrusage).
 */

enum { TP_SETUP, TP_RUN, TP_MEASURE, TP_END, TP_STOP };

typedef struct TpSlot {
        atomic_int state; /* TP_* the client has reached */
        uint64_t t0, t1, n0, n1, cpu0, cpu1;
} TpSlot;

typedef struct TpShared {
        atomic_int phase;
        TpSlot slot[];
} TpShared;

typedef struct TpPipe {
        int rfd, wfd;
        unsigned waiting; /* callbacks still due for the byte in the pipe */
        unsigned fanout;
        uint64_t *count;
} TpPipe;

static int tp_ready(struct evd_client *c, uint64_t watch, uint32_t revents, void *userdata) {
        TpPipe *p = userdata;
        char buf[256];

        (*p->count)++;
        if (--p->waiting > 0)
                return 0;
        p->waiting = p->fanout;
        (void)read(p->rfd, buf, sizeof(buf));
        if (write(p->wfd, "x", 1) != 1 && errno != EAGAIN)
                die_errno("throughput: write");
        return 0;
}

static void tp_snapshot(TpSlot *slot, int state, uint64_t count) {
        uint64_t t = now_ns(), cpu = cpu_ns_self();

        if (state == TP_MEASURE)
                slot->t0 = t, slot->n0 = count, slot->cpu0 = cpu;
        else
                slot->t1 = t, slot->n1 = count, slot->cpu1 = cpu;
        atomic_store(&slot->state, state);
}

static void tp_client(const BenchDaemon *d, TpShared *sh, TpSlot *slot, int cpu) {
        unsigned np = arg_watches / arg_fanout;
        TpPipe *pipes = calloc(np, sizeof(*pipes));
        Done done = {.what = "throughput: watch"};
        struct evd_client *c;
        uint64_t count = 0;
        int ph;

        if (!pipes)
                die("out of memory");
        pin_self(cpu);
        c = client_connect(d->socket);
        for (unsigned i = 0; i < np; i++) {
                int fds[2];

                if (pipe_nb(fds) < 0)
                        die_errno("pipe2");
                pipes[i] = (TpPipe){.rfd = fds[0],
                                    .wfd = fds[1],
                                    .waiting = arg_fanout,
                                    .fanout = arg_fanout,
                                    .count = &count};
                for (unsigned k = 0; k < arg_fanout; k++) {
                        int r = evd_watch_add_async(c, fds[0], EVD_IN, EVD_EDGE, tp_ready,
                                                    &pipes[i], done_count, &done, NULL);

                        if (r < 0)
                                die("throughput: watch: %s", evd_strerror(r));
                }
        }
        client_pump_until(c, &done.n, np * arg_fanout, done.what);
        atomic_store(&slot->state, TP_RUN);
        while (atomic_load(&sh->phase) < TP_RUN)
                sleep_ns(1000000);
        for (unsigned i = 0; i < np; i++)
                if (write(pipes[i].wfd, "x", 1) != 1)
                        die_errno("throughput: write");
        while ((ph = atomic_load(&sh->phase)) != TP_STOP) {
                if (ph >= TP_MEASURE && atomic_load(&slot->state) < TP_MEASURE)
                        tp_snapshot(slot, TP_MEASURE, count);
                if (ph >= TP_END && atomic_load(&slot->state) < TP_END)
                        tp_snapshot(slot, TP_END, count);
                client_pump(c, 10);
        }
        (void)evd_client_free(c);
        _exit(0);
}

#define TP_BLOCKS 4 /* per backend, alternating ABBA BAAB */

typedef struct TpResult {
        double block_rate[TP_BLOCKS];
        unsigned n_blocks;
        double seconds;       /* measured, summed over blocks */
        double notifications; /* callbacks run */
        double rate_sum;      /* per block: rate x seconds, for the time-weighted mean rate */
        uint64_t evd_user_ns, evd_sys_ns, client_ns;
        DaemonStats delta; /* summed differences of the daemon's counters */
        HistQ internal;
} TpResult;

static void tp_wait_state(TpShared *sh, unsigned n, int state) {
        uint64_t deadline = now_ns() + STEP_TIMEOUT_MS * 1000000ull;

        for (unsigned i = 0; i < n; i++)
                while (atomic_load(&sh->slot[i].state) < state) {
                        if (now_ns() > deadline)
                                die("throughput: client %u stuck before phase %d", i, state);
                        sleep_ns(1000000);
                }
}

/* What the parent saw of the daemon across one block's measured window. */
typedef struct TpWindow {
        uint64_t t0, t1, user0, sys0, user1, sys1;
        DaemonStats a, b;
} TpWindow;

static void tp_accumulate(TpResult *res, const TpShared *sh, const TpWindow *w) {
        double secs = (double)(w->t1 - w->t0) / 1e9;
        HistQ q = hist_between(&w->a, &w->b);

        res->seconds += secs;
        res->evd_user_ns += w->user1 - w->user0;
        res->evd_sys_ns += w->sys1 - w->sys0;
        res->block_rate[res->n_blocks] = 0;
        for (unsigned i = 0; i < arg_clients; i++) {
                const TpSlot *s = &sh->slot[i];
                /* Each client's count over its own window (it saw the phases a little
                 * after the parent set them), weighted by the parent's. */
                double rate = (double)(s->n1 - s->n0) / ((double)(s->t1 - s->t0) / 1e9);

                res->notifications += (double)(s->n1 - s->n0);
                res->rate_sum += rate * secs;
                res->block_rate[res->n_blocks] += rate;
                res->client_ns += s->cpu1 - s->cpu0;
        }
        res->n_blocks++;
#define ACC(f) res->delta.f += w->b.f - w->a.f
        ACC(notifications);
        ACC(packets_out);
        ACC(coalesced);
        ACC(iterations);
        ACC(events);
        ACC(syscalls);
        ACC(submissions);
#undef ACC
        /* Blocks are alike: keep the worse of their percentiles. */
        res->internal.count += q.count;
        res->internal.p50_le = MAX(res->internal.p50_le, q.p50_le);
        res->internal.p99_le = MAX(res->internal.p99_le, q.p99_le);
}

static void tp_block(BenchDaemon *d, double seconds, TpResult *res) {
        size_t size = sizeof(TpShared) + arg_clients * sizeof(TpSlot);
        TpShared *sh = shm_new(size);
        int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
        int evd_cpu = ncpu > 1 && arg_tp_split ? ncpu - 1 : -1;
        pid_t pids[arg_clients];
        TpWindow w;

        pin_process(d->pid, evd_cpu);
        for (unsigned i = 0; i < arg_clients; i++) {
                pids[i] = child_fork();
                if (pids[i] == 0)
                        tp_client(d, sh, &sh->slot[i],
                                  evd_cpu >= 0 ? (int)(i % (unsigned)(ncpu - 1)) : -1);
        }
        tp_wait_state(sh, arg_clients, TP_RUN);
        atomic_store(&sh->phase, TP_RUN);
        sleep_ns(200000000); /* warm-up: the loop reaches its steady state */
        daemon_stats(d, &w.a);
        proc_cpu_ticks(d->pid, &w.user0, &w.sys0);
        w.t0 = now_ns();
        atomic_store(&sh->phase, TP_MEASURE);
        sleep_ns((uint64_t)(seconds * 1e9));
        atomic_store(&sh->phase, TP_END);
        w.t1 = now_ns();
        proc_cpu_ticks(d->pid, &w.user1, &w.sys1);
        daemon_stats(d, &w.b);
        tp_wait_state(sh, arg_clients, TP_END);
        atomic_store(&sh->phase, TP_STOP);
        for (unsigned i = 0; i < arg_clients; i++)
                child_wait(pids[i], "throughput client");
        pin_process(d->pid, -1);
        tp_accumulate(res, sh, &w);
        shm_free(sh, size);
}

static double tp_rate(const TpResult *r) {
        return r->seconds > 0 ? r->rate_sum / r->seconds : 0;
}

static json_t *tp_json(const TpResult *r) {
        double n = r->notifications, evd_ns = (double)(r->evd_user_ns + r->evd_sys_ns);
        const DaemonStats *st = &r->delta;
        json_t *j = json_object(), *blocks = json_array();

        for (unsigned k = 0; k < r->n_blocks; k++)
                json_array_append_new(blocks, json_real(r->block_rate[k]));
        jreal(j, "seconds", r->seconds);
        jreal(j, "notifications", n);
        jreal(j, "notifications_per_s", tp_rate(r));
        json_object_set_new(j, "block_rates_per_s", blocks);
        jbool(j, "target_met", tp_rate(r) >= 300000);
        jreal(j, "evd_cpu_fraction", evd_ns / (r->seconds * 1e9));
        jreal(j, "evd_us_per_notification", evd_ns / n / 1e3);
        jreal(j, "evd_user_us_per_notification", (double)r->evd_user_ns / n / 1e3);
        jreal(j, "evd_sys_us_per_notification", (double)r->evd_sys_ns / n / 1e3);
        jreal(j, "evd_capacity_per_s", n / (evd_ns / 1e9));
        jreal(j, "client_us_per_notification", (double)r->client_ns / n / 1e3);
        jreal(j, "notifications_per_packet",
              st->packets_out ? (double)st->notifications / (double)st->packets_out : 0);
        jreal(j, "evd_syscalls_per_notification", (double)st->syscalls / n);
        jreal(j, "evd_iterations_per_notification", (double)st->iterations / n);
        jint(j, "evd_notifications", st->notifications);
        jint(j, "evd_packets_out", st->packets_out);
        jint(j, "evd_coalesced", st->coalesced);
        jint(j, "evd_iterations", st->iterations);
        jint(j, "evd_syscalls", st->syscalls);
        jint(j, "evd_events", st->events);
        json_object_set_new(j, "evd_internal", histq_json(&r->internal));
        return j;
}

static void tp_print_row(const char *backend, const TpResult *r) {
        double n = r->notifications, rate = tp_rate(r);
        double evd_ns = (double)(r->evd_user_ns + r->evd_sys_ns);
        double lo = r->block_rate[0], hi = r->block_rate[0];
        char split[32], range[32];

        for (unsigned k = 1; k < r->n_blocks; k++)
                lo = MIN(lo, r->block_rate[k]), hi = MAX(hi, r->block_rate[k]);
        snprintf(split, sizeof(split), "%.2f/%.2f", (double)r->evd_user_ns / n / 1e3,
                 (double)r->evd_sys_ns / n / 1e3);
        snprintf(range, sizeof(range), "%.0f-%.0f", lo / 1e3, hi / 1e3);
        printf("   %-9s %9.0f %9s %6s %7.0f%% %8.2f %9s %11.0f %9.2f %9.1f %8.3f %8.3f  "
               "<=%g/<=%g\n",
               backend, rate, range, verdict(rate >= 300000), evd_ns / (r->seconds * 1e9) * 100,
               evd_ns / n / 1e3, split, n / (evd_ns / 1e9), (double)r->client_ns / n / 1e3,
               r->delta.packets_out ? (double)r->delta.notifications / (double)r->delta.packets_out
                                    : 0,
               (double)r->delta.syscalls / n, (double)r->delta.iterations / n, r->internal.p50_le,
               r->internal.p99_le);
}

/* io_uring / epoll, by the rate and by the daemon's CPU per notification. */
static void tp_ratio(const TpResult *res, json_t *j) {
        double ratio, cap[2];

        if (arg_n_backends != 2 || strcmp(arg_backends[0], "io_uring") != 0 ||
            tp_rate(&res[1]) <= 0)
                return;
        ratio = tp_rate(&res[0]) / tp_rate(&res[1]);
        for (int b = 0; b < 2; b++)
                cap[b] = res[b].notifications / (double)(res[b].evd_user_ns + res[b].evd_sys_ns);
        printf("   %s/%s: %.2fx notif/s (target >= 1.2x: %s), %.2fx capacity\n", arg_backends[0],
               arg_backends[1], ratio, verdict(ratio >= 1.2), cap[0] / cap[1]);
        summary_add("throughput io_uring/epoll >= 1.2x", SIZE_MAX, ratio >= 1.2, "%.2fx", ratio);
        jreal(j, "ratio", ratio);
        jbool(j, "ratio_target_met", ratio >= 1.2);
        jreal(j, "capacity_ratio", cap[0] / cap[1]);
}

static json_t *run_throughput(BenchDaemon *daemons) {
        TpResult res[MAX_BACKENDS] = {0};
        json_t *j = json_object();

        /* ABBA BAAB: every backend runs at every position equally often. */
        for (int k = 0; k < TP_BLOCKS; k++)
                for (size_t i = 0; i < arg_n_backends; i++) {
                        bool reverse = (k == 1 || k == 2);
                        size_t b = reverse ? arg_n_backends - 1 - i : i;

                        tp_block(&daemons[b], arg_duration / TP_BLOCKS, &res[b]);
                }

        printf("\n2. Throughput: %u clients x %u edge watches (%u pipes x %u watches each),\n"
               "   closed loop: the last callback of a pipe drains it and writes the next byte;\n"
               "   %.1f s per backend in %d alternating blocks; %s. Target >= 300,000/s.\n",
               arg_clients, arg_watches, arg_watches / arg_fanout, arg_fanout, arg_duration,
               TP_BLOCKS,
               arg_tp_split ? "evd alone on the last CPU, the clients on the others"
                            : "nothing pinned");
        printf("   %-9s %9s %9s %6s %8s %8s %9s %11s %9s %9s %8s %8s  %s\n", "", "notif/s",
               "blocks k", "target", "evd CPU", "evd us/n", "usr/sys", "capacity/s", "client us",
               "notif/pkt", "sysc/n", "iter/n", "evd-internal p50/p99");
        for (size_t b = 0; b < arg_n_backends; b++) {
                tp_print_row(arg_backends[b], &res[b]);
                summary_add("notifications/s >= 300,000", b, tp_rate(&res[b]) >= 300000, "%.0f",
                            tp_rate(&res[b]));
                json_object_set_new(j, arg_backends[b], tp_json(&res[b]));
        }
        tp_ratio(res, j);
        printf("   blocks k: the slowest and fastest block, thousands per second (wide: noisy).\n"
               "   evd us/n: daemon CPU per notification (utime+stime, /proc/PID/stat; the\n"
               "   user/sys split is by ticks); capacity/s: 1 / that, what evd could reach with\n"
               "   a whole CPU if the clients kept up; client us: the clients' CPU per\n"
               "   notification (getrusage: libevd, pipe read+write); sysc/n, iter/n: the\n"
               "   engine's syscalls and loop iterations per notification (`stats`).\n");
        jint(j, "clients", arg_clients);
        jint(j, "watches_per_client", arg_watches);
        jint(j, "watches_per_pipe", arg_fanout);
        jbool(j, "evd_on_own_cpu", arg_tp_split);
        return j;
}

/* ---- 3. registration -------------------------------------------------------------- */

/*
 * One client pipelines N watch requests (each carrying its pipe's read end as SCM_RIGHTS,
 * WINDOW in flight) and then N unwatch requests. Timed: from the first call to the last
 * completion. The pipes exist before the clock starts.
 */

typedef struct RegShared {
        uint64_t add_ns, rm_ns, add_client_ns, rm_client_ns, add_evd_ns, rm_evd_ns;
} RegShared;

static int reg_noop(struct evd_client *c, uint64_t watch, uint32_t revents, void *userdata) {
        return 0;
}

static void window_wait(struct evd_client *c, const Done *done, unsigned issued) {
        while (issued - done->n >= WINDOW)
                client_pump(c, 100);
}

static void reg_client(const BenchDaemon *d, RegShared *out, unsigned n) {
        int(*fds)[2] = calloc(n, sizeof(*fds));
        uint64_t *ids = calloc(n, sizeof(*ids));
        Done add = {.what = "register: watch"}, rm = {.what = "register: unwatch"};
        struct evd_client *c;
        uint64_t t0, c0, e0;

        if (!fds || !ids)
                die("out of memory");
        c = client_connect(d->socket);
        if (evd_call(c, "ping", NULL, STEP_TIMEOUT_MS, NULL) < 0)
                die("register: ping failed");
        for (unsigned i = 0; i < n; i++)
                if (pipe_nb(fds[i]) < 0)
                        die_errno("pipe2 (%u pipes)", i);

        t0 = now_ns(), c0 = cpu_ns_self(), e0 = proc_runtime_ns(d->pid);
        for (unsigned i = 0; i < n; i++) {
                int r = evd_watch_add_async(c, fds[i][0], EVD_IN, EVD_EDGE, reg_noop, NULL,
                                            done_count, &add, &ids[i]);

                if (r < 0)
                        die("register: watch: %s", evd_strerror(r));
                window_wait(c, &add, i + 1);
        }
        client_pump_until(c, &add.n, n, add.what);
        out->add_ns = now_ns() - t0;
        out->add_client_ns = cpu_ns_self() - c0;
        out->add_evd_ns = proc_runtime_ns(d->pid) - e0;

        for (unsigned i = 0; i < n; i++)
                (void)safe_close(fds[i][0]);
        t0 = now_ns(), c0 = cpu_ns_self(), e0 = proc_runtime_ns(d->pid);
        for (unsigned i = 0; i < n; i++) {
                int r = evd_watch_remove_async(c, ids[i], done_count, &rm);

                if (r < 0)
                        die("register: unwatch: %s", evd_strerror(r));
                window_wait(c, &rm, i + 1);
        }
        client_pump_until(c, &rm.n, n, rm.what);
        out->rm_ns = now_ns() - t0;
        out->rm_client_ns = cpu_ns_self() - c0;
        out->rm_evd_ns = proc_runtime_ns(d->pid) - e0;
        (void)evd_client_free(c);
        _exit(0);
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;

        return x < y ? -1 : x > y;
}

static double median(double *v, size_t n) {
        qsort(v, n, sizeof(*v), cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static json_t *run_register(BenchDaemon *daemons) {
        unsigned reps = arg_reg_reps, n = arg_reg_watches;
        double add[MAX_BACKENDS][16], rm[MAX_BACKENDS][16];
        RegShared sum[MAX_BACKENDS] = {0};
        RegShared *sh = shm_new(sizeof(RegShared));
        json_t *j = json_object();

        reps = MIN(reps, 16u);
        for (unsigned r = 0; r < reps; r++)
                for (size_t i = 0; i < arg_n_backends; i++) {
                        size_t b = (i + r) % arg_n_backends;
                        pid_t pid = child_fork();

                        if (pid == 0)
                                reg_client(&daemons[b], sh, n);
                        child_wait(pid, "register client");
                        add[b][r] = n / ((double)sh->add_ns / 1e9);
                        rm[b][r] = n / ((double)sh->rm_ns / 1e9);
                        sum[b].add_client_ns += sh->add_client_ns;
                        sum[b].add_evd_ns += sh->add_evd_ns;
                        sum[b].rm_client_ns += sh->rm_client_ns;
                        sum[b].rm_evd_ns += sh->rm_evd_ns;
                }
        shm_free(sh, sizeof(RegShared));

        printf("\n3. Registration: one client pipelines %u watch requests (pipe read end passed\n"
               "   with SCM_RIGHTS, %u in flight), then %u unwatch; median of %u runs; CPU per\n"
               "   request.\n",
               n, WINDOW, n, reps);
        printf("   %-9s %10s %10s %10s   %10s %10s %10s\n", "", "watch/s", "evd us", "client us",
               "unwatch/s", "evd us", "client us");
        for (size_t b = 0; b < arg_n_backends; b++) {
                double total = (double)n * reps, a = median(add[b], reps), u = median(rm[b], reps);
                double add_evd = (double)sum[b].add_evd_ns / total / 1e3;
                double add_client = (double)sum[b].add_client_ns / total / 1e3;
                double rm_evd = (double)sum[b].rm_evd_ns / total / 1e3;
                double rm_client = (double)sum[b].rm_client_ns / total / 1e3;
                json_t *jb = json_object();

                printf("   %-9s %10.0f %10.2f %10.2f   %10.0f %10.2f %10.2f\n", arg_backends[b], a,
                       add_evd, add_client, u, rm_evd, rm_client);
                jreal(jb, "watch_per_s", a);
                jreal(jb, "watch_evd_us", add_evd);
                jreal(jb, "watch_client_us", add_client);
                jreal(jb, "unwatch_per_s", u);
                jreal(jb, "unwatch_evd_us", rm_evd);
                jreal(jb, "unwatch_client_us", rm_client);
                json_object_set_new(j, arg_backends[b], jb);
        }
        printf("   evd us: the daemon's CPU (/proc/PID/task/*/schedstat) per request.\n");
        jint(j, "watches", n);
        jint(j, "runs", reps);
        jint(j, "in_flight", WINDOW);
        return j;
}

/* ---- 4. scale: memory per idle watch and per timer --------------------------------- */

/*
 * A fresh daemon each time. Clients connect first (their connections are part of the
 * baseline), then register everything; RSS delta / count. The clients close their read
 * ends once the daemon has its copy (libevd keeps a duplicate): a watch costs the client
 * 2 fds (the write end, which keeps the pipe from hanging up, and libevd's copy).
 */

enum { SC_CONNECTED = 1, SC_GO, SC_DONE, SC_STOP };

typedef struct ScaleShared {
        atomic_int phase;
        atomic_int state[16];
        uint64_t t0[16], t1[16];
} ScaleShared;

static int timer_noop(struct evd_client *c, uint64_t timer, uint64_t expirations, void *userdata) {
        return 0;
}

static void scale_client(const BenchDaemon *d, ScaleShared *sh, unsigned idx, unsigned n,
                         bool timers) {
        Done done = {.what = timers ? "scale: timer" : "scale: watch"};
        int(*fds)[2] = timers ? NULL : calloc(n, sizeof(*fds));
        struct evd_client *c;

        if (!timers && !fds)
                die("out of memory");
        c = client_connect(d->socket);
        if (evd_call(c, "ping", NULL, STEP_TIMEOUT_MS, NULL) < 0)
                die("scale: ping failed");
        for (unsigned i = 0; !timers && i < n; i++)
                if (pipe_nb(fds[i]) < 0)
                        die_errno("pipe2 (%u pipes)", i);
        atomic_store(&sh->state[idx], SC_CONNECTED);
        while (atomic_load(&sh->phase) < SC_GO)
                sleep_ns(1000000);

        sh->t0[idx] = now_ns();
        for (unsigned i = 0; i < n; i++) {
                int r;

                /* Timers an hour away (spread over a second so the heap is not degenerate). */
                if (timers)
                        r = evd_timer_after_async(c, 3600 * 1000000ull + i % 1000000u, 0,
                                                  timer_noop, NULL, done_count, &done, NULL);
                else
                        r = evd_watch_add_async(c, fds[i][0], EVD_IN, EVD_EDGE, reg_noop, NULL,
                                                done_count, &done, NULL);
                if (r < 0)
                        die("%s: %s", done.what, evd_strerror(r));
                window_wait(c, &done, i + 1);
        }
        client_pump_until(c, &done.n, n, done.what);
        sh->t1[idx] = now_ns();
        for (unsigned i = 0; !timers && i < n; i++)
                (void)safe_close(fds[i][0]);
        atomic_store(&sh->state[idx], SC_DONE);
        while (atomic_load(&sh->phase) < SC_STOP)
                client_pump(c, 100);
        _exit(0);
}

typedef struct ScaleResult {
        unsigned count, clients;
        long base_kb, full_kb, ring_base_kb, ring_full_kb;
        double per_object, per_object_rings, rate;
        double evd_us, evd_cpu; /* daemon CPU per registration; its share of the wall time */
} ScaleResult;

static void scale_wait(ScaleShared *sh, unsigned n, int state) {
        uint64_t deadline = now_ns() + STEP_TIMEOUT_MS * 1000000ull;

        for (unsigned i = 0; i < n; i++)
                while (atomic_load(&sh->state[i]) < state) {
                        if (now_ns() > deadline)
                                die("scale: client %u stuck", i);
                        sleep_ns(1000000);
                }
}

static ScaleResult scale_run(const char *backend, unsigned count, unsigned clients, bool timers) {
        char per_client[32], per_uid[32];
        const char *extra[] = {
                timers ? "--max-timers-per-client" : "--max-watches-per-client", per_client,
                timers ? "--max-timers-per-uid" : "--max-watches-per-uid", per_uid, NULL};
        ScaleShared *sh = shm_new(sizeof(ScaleShared));
        ScaleResult res = {.count = count, .clients = clients};
        unsigned each = (count + clients - 1) / clients;
        uint64_t t0 = UINT64_MAX, t1 = 0, cpu0, cpu1;
        pid_t pids[16];
        BenchDaemon d;

        /* Watches keep the daemon's defaults (the fd limit binds first); timer quotas are
         * raised to the count so they never do. */
        snprintf(per_client, sizeof(per_client), "%u", timers ? MAX(each, 1000000u) : 16384u);
        snprintf(per_uid, sizeof(per_uid), "%u",
                 timers ? MAX(count, 2000000u) : MAX(count, 32768u));
        daemon_start(&d, backend, extra);
        for (unsigned i = 0; i < clients; i++) {
                unsigned n = MIN(each, count - MIN(count, i * each));

                pids[i] = child_fork();
                if (pids[i] == 0)
                        scale_client(&d, sh, i, n, timers);
        }
        scale_wait(sh, clients, SC_CONNECTED);
        (void)json_decref(ctl_call(&d, "ping"));
        res.base_kb = proc_rss_kb(d.pid);
        res.ring_base_kb = proc_ring_rss_kb(d.pid);
        cpu0 = proc_runtime_ns(d.pid);
        atomic_store(&sh->phase, SC_GO);
        scale_wait(sh, clients, SC_DONE);
        cpu1 = proc_runtime_ns(d.pid);
        (void)json_decref(ctl_call(&d, "ping"));
        res.full_kb = proc_rss_kb(d.pid);
        res.ring_full_kb = proc_ring_rss_kb(d.pid);
        atomic_store(&sh->phase, SC_STOP);
        for (unsigned i = 0; i < clients; i++) {
                child_wait(pids[i], "scale client");
                t0 = MIN(t0, sh->t0[i]);
                t1 = MAX(t1, sh->t1[i]);
        }
        daemon_stop(&d);
        res.per_object = (double)(res.full_kb - res.base_kb) * 1024.0 / count;
        res.per_object_rings = (double)(res.ring_full_kb - res.ring_base_kb) * 1024.0 / count;
        res.rate = count / ((double)(t1 - t0) / 1e9);
        res.evd_us = (double)(cpu1 - cpu0) / count / 1e3;
        res.evd_cpu = (double)(cpu1 - cpu0) / (double)(t1 - t0);
        shm_free(sh, sizeof(ScaleShared));
        return res;
}

/* The daemon needs one fd per watch: take the fd limit it will run with (it raises its
 * soft limit to the hard one), minus slack for its own sockets and files. */
static unsigned scale_watch_count(void) {
        struct rlimit rl;

        if (arg_scale_watches)
                return arg_scale_watches;
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_max == RLIM_INFINITY ||
            rl.rlim_max > 1u << 20)
                return 16384;
        return rl.rlim_max > FD_SLACK * 2 ? (unsigned)rl.rlim_max - FD_SLACK
                                          : (unsigned)rl.rlim_max / 2;
}

static json_t *scale_json(const ScaleResult *r, const char *per_name) {
        json_t *j = json_object();

        jint(j, "count", r->count);
        jint(j, "clients", r->clients);
        jint(j, "base_rss_kb", (uint64_t)r->base_kb);
        jint(j, "rss_kb", (uint64_t)r->full_kb);
        jint(j, "base_ring_rss_kb", (uint64_t)r->ring_base_kb);
        jint(j, "ring_rss_kb", (uint64_t)r->ring_full_kb);
        jreal(j, per_name, r->per_object);
        jreal(j, "bytes_each_in_rings", r->per_object_rings);
        jbool(j, "target_met", r->per_object <= 256);
        jreal(j, "registered_per_s", r->rate);
        jreal(j, "evd_us_per_registration", r->evd_us);
        jreal(j, "evd_cpu_fraction", r->evd_cpu);
        return j;
}

static void scale_print_row(const char *backend, const char *what, const ScaleResult *r) {
        printf("   %-9s %-7s %8u %8ld %8ld %8.0f %9.0f %7s %10.0f %8.2f %7.0f%%\n", backend, what,
               r->count, r->base_kb, r->full_kb, r->per_object, r->per_object_rings,
               verdict(r->per_object <= 256), r->rate, r->evd_us, r->evd_cpu * 100);
}

static json_t *run_scale(BenchDaemon *unused) {
        unsigned nw = scale_watch_count(), nt = arg_scale_timers;
        /* Clients within the per-client watch quota, and each within its own fd limit
         * (3 fds per watch while registering). */
        unsigned cw = MAX((nw + 4999) / 5000, 1u), ct = 4;
        ScaleResult w[MAX_BACKENDS], t[MAX_BACKENDS];
        json_t *j = json_object();

        for (size_t b = 0; b < arg_n_backends; b++) {
                w[b] = scale_run(arg_backends[b], nw, cw, false);
                t[b] = scale_run(arg_backends[b], nt, ct, true);
        }
        printf("\n4. Scale: daemon RSS per idle watch (%u clients) and per timer (%u clients), a\n"
               "   fresh daemon each: (VmRSS after registering - VmRSS with the clients\n"
               "   connected) / count. Kernel objects (pipes, poll entries) are not in RSS; the\n"
               "   io_uring rings the kernel maps into the daemon are, and are shown apart.\n"
               "   Target <= 256 bytes each.\n",
               cw, ct);
        printf("   %-9s %-7s %8s %8s %8s %8s %9s %7s %10s %8s %8s\n", "", "", "count", "base kB",
               "RSS kB", "B each", "in rings", "target", "added/s", "evd us", "evd CPU");
        for (size_t b = 0; b < arg_n_backends; b++) {
                summary_add("daemon bytes per idle watch <= 256", b, w[b].per_object <= 256, "%.0f",
                            w[b].per_object);
                summary_add("daemon bytes per timer <= 256", b, t[b].per_object <= 256, "%.0f",
                            t[b].per_object);
                scale_print_row(arg_backends[b], "watches", &w[b]);
                scale_print_row("", "timers", &t[b]);
                json_object_set_new(j, arg_backends[b],
                                    json_pack("{s:o,s:o}", "watches",
                                              scale_json(&w[b], "bytes_per_watch"), "timers",
                                              scale_json(&t[b], "bytes_per_timer")));
        }
        printf("   in rings: the part of \"B each\" in the io_uring ring mappings; added/s:\n"
               "   registration rate of all the clients together, through libevd (the pipes\n"
               "   are made before the clock starts); evd us, evd CPU: the daemon's CPU per\n"
               "   registration (schedstat), its share of the wall time.\n");
        return j;
}

/* ---- 5. timers -------------------------------------------------------------------- */

/*
 * N one-shot timers over C clients, deadlines spread evenly over `spread` seconds that
 * start `lead` seconds after the clients begin registering (interleaved across clients);
 * the lead comes from a calibration (each client first registers TIMER_CALIBRATION timers
 * an hour away, which stay idle), so registration is over before the first deadline.
 * The timers are created with evd_call_async("timer", {after, tag}) rather than
 * evd_timer_after_async(): libevd's timer callback gives only the expirations, while a
 * timer libevd does not own reaches the notify handler with all its params, `late`
 * included. Both views are kept: `late` as the daemon reports it, and the client's
 * (callback time - (time before the request was sent + after)): that adds the request's
 * trip to the daemon and the notification's trip back, and it is negative only if the
 * timer fired before `after` had passed since the request was sent, i.e. early. Few
 * requests are in flight (TIMER_WINDOW per client) so that the request's trip stays short.
 */

#define TIMER_WINDOW 16u
#define TIMER_CALIBRATION 1000u /* per client */

enum { TS_DAEMON, TS_CLIENT, TS_RTT, _TS_MAX }; /* sample arrays, N each */

enum { TG_WAIT, TG_CALIBRATE, TG_REGISTER };

typedef struct TimerShared {
        atomic_int go;  /* TG_* */
        uint64_t start; /* CLOCK_MONOTONIC: deadlines are start + lead + k * spread / N */
        double lead;    /* seconds, chosen from the calibration */
        atomic_int calibrated[16];
        uint64_t cal_end[16], reg_end[16], fired[16], multi[16];
        uint64_t *sent;     /* [N] by timer: CLOCK_MONOTONIC before the request was made */
        uint64_t *deadline; /* [N] by timer: sent + after */
        int64_t samples[];  /* [_TS_MAX][N], by timer; INT64_MIN until seen */
} TimerShared;

typedef struct TimerClient {
        TimerShared *sh;
        unsigned n, idx, fired;
        uint64_t *sent, *deadline; /* sh's */
} TimerClient;

typedef struct TimerReq {
        TimerClient *tc;
        unsigned k;
        Done *done;
} TimerReq;

static int64_t *timer_sample(TimerShared *sh, unsigned n, int kind, size_t k) {
        return &sh->samples[(size_t)kind * n + k];
}

static int timer_notify(struct evd_client *c, const char *method, json_t *params, void *userdata) {
        uint64_t now = now_ns();
        TimerClient *tc = userdata;
        json_t *tag = json_object_get(params, "tag");
        json_int_t k;

        if (strcmp(method, "timer") != 0 || !json_is_integer(tag))
                return 0;
        k = json_integer_value(tag);
        if (k < 0 || (uint64_t)k >= tc->n)
                die("timers: a timer notification with an unknown tag %lld", (long long)k);
        *timer_sample(tc->sh, tc->n, TS_DAEMON, (size_t)k) =
                llround(json_number_value(json_object_get(params, "late")) * 1e9);
        *timer_sample(tc->sh, tc->n, TS_CLIENT, (size_t)k) =
                (int64_t)now - (int64_t)tc->deadline[k];
        if (json_integer_value(json_object_get(params, "expirations")) != 1)
                tc->sh->multi[tc->idx]++;
        tc->fired++;
        return 0;
}

static int timer_done(struct evd_client *c, int r, json_t *result, void *userdata) {
        TimerReq *req = userdata;

        *timer_sample(req->tc->sh, req->tc->n, TS_RTT, req->k) =
                (int64_t)(now_ns() - req->tc->sent[req->k]);
        return done_count(c, r, result, req->done);
}

/* TIMER_CALIBRATION timers an hour away, which stay idle: how fast this daemon takes
 * timer requests right now, so that the lead can be chosen to cover the registration. */
static void timer_calibrate(struct evd_client *c) {
        Done done = {.what = "timers: calibration timer"};

        for (unsigned i = 0; i < TIMER_CALIBRATION; i++) {
                int r = evd_call_async(c, "timer", json_pack("{s:i}", "after", 3600), done_count,
                                       &done);

                if (r < 0)
                        die("timers: %s", evd_strerror(r));
                while (i + 1 - done.n >= TIMER_WINDOW)
                        client_pump(c, 100);
        }
        client_pump_until(c, &done.n, TIMER_CALIBRATION, done.what);
}

static void timer_client(const BenchDaemon *d, TimerShared *sh, unsigned idx, unsigned clients) {
        TimerClient tc = {.sh = sh, .n = arg_timers, .idx = idx};
        Done done = {.what = "timers: timer"};
        TimerReq *reqs = calloc(arg_timers / clients + 1, sizeof(*reqs));
        struct evd_client *c;
        unsigned mine = 0;
        uint64_t end;

        tc.sent = sh->sent;
        tc.deadline = sh->deadline;
        if (!reqs)
                die("out of memory");
        c = client_connect(d->socket);
        evd_client_set_notify_handler(c, timer_notify, &tc);
        if (evd_call(c, "ping", NULL, STEP_TIMEOUT_MS, NULL) < 0)
                die("timers: ping failed");
        while (atomic_load(&sh->go) < TG_CALIBRATE)
                sleep_ns(100000);
        timer_calibrate(c);
        sh->cal_end[idx] = now_ns();
        atomic_store(&sh->calibrated[idx], 1);
        while (atomic_load(&sh->go) < TG_REGISTER)
                sleep_ns(100000);

        for (unsigned k = idx; k < tc.n; k += clients, mine++) {
                uint64_t at = sh->start + (uint64_t)(sh->lead * 1e9) +
                              (uint64_t)((double)k * arg_timer_spread * 1e9 / tc.n);
                uint64_t now = now_ns(), after = at > now ? at - now : 0;
                json_t *params =
                        json_pack("{s:f,s:I}", "after", (double)after / 1e9, "tag", (json_int_t)k);
                int r;

                tc.sent[k] = now;
                tc.deadline[k] = now + after;
                reqs[mine] = (TimerReq){.tc = &tc, .k = k, .done = &done};
                r = evd_call_async(c, "timer", params, timer_done, &reqs[mine]);
                if (r < 0)
                        die("timers: %s", evd_strerror(r));
                while (mine + 1 - done.n >= TIMER_WINDOW)
                        client_pump(c, 100);
        }
        client_pump_until(c, &done.n, mine, done.what);
        sh->reg_end[idx] = now_ns();
        end = sh->start + (uint64_t)((sh->lead + arg_timer_spread + 5) * 1e9);
        while (tc.fired < mine && now_ns() < end)
                client_pump(c, 50);
        sh->fired[idx] = tc.fired;
        (void)evd_client_free(c);
        _exit(0);
}

/* The timer that fired earliest relative to its request: evidence for a bug report. */
typedef struct TimerEarly {
        double after_s, sent_s; /* `after` asked; when it was sent, from the scenario's start */
        double early_s;         /* callback this long before sent + after */
        double late_s;          /* the daemon's `late` for it */
} TimerEarly;

typedef struct TimerResult {
        unsigned n, fired, multi, early;
        double lead_s, cal_rate; /* the lead chosen, from the calibration's timers per second */
        TimerEarly worst;
        double reg_s, margin_s; /* registration time; first deadline - end of registration */
        Dist daemon, client, rtt;
        DaemonStats delta;
        HistQ internal;
} TimerResult;

/* The samples of @kind for the timers that fired. */
static Dist timer_dist(TimerShared *sh, unsigned n, int kind, unsigned *ret_negative) {
        int64_t *v = calloc(n, sizeof(int64_t));
        size_t m = 0;
        Dist d;

        if (!v)
                die("out of memory");
        for (unsigned k = 0; k < n; k++)
                if (*timer_sample(sh, n, TS_DAEMON, k) != INT64_MIN) {
                        v[m] = *timer_sample(sh, n, kind, k);
                        if (ret_negative && v[m] < 0)
                                (*ret_negative)++;
                        m++;
                }
        d = dist_of(v, m);
        free(v);
        return d;
}

/* Registration must be over before the first deadline, else the timers fire into a daemon
 * busy taking the rest: allow 1.5 times what the calibration predicts (and at least
 * --timer-lead). */
static void timer_choose_lead(TimerShared *sh, unsigned clients, TimerResult *res) {
        uint64_t t0 = now_ns(), t1 = 0, deadline = t0 + STEP_TIMEOUT_MS * 1000000ull;

        atomic_store(&sh->go, TG_CALIBRATE);
        for (unsigned i = 0; i < clients; i++) {
                while (!atomic_load(&sh->calibrated[i])) {
                        if (now_ns() > deadline)
                                die("timers: client %u did not calibrate", i);
                        sleep_ns(1000000);
                }
                t1 = MAX(t1, sh->cal_end[i]);
        }
        res->cal_rate = (double)clients * TIMER_CALIBRATION / ((double)(t1 - t0) / 1e9);
        res->lead_s = sh->lead = MAX(arg_timer_lead, 1.5 * arg_timers / res->cal_rate + 0.2);
}

/* The timer whose callback ran earliest relative to its request, if any did. */
static TimerEarly timer_earliest(TimerShared *sh, unsigned n) {
        TimerEarly e = {0};
        int64_t worst = 0;

        for (unsigned k = 0; k < n; k++) {
                int64_t cl = *timer_sample(sh, n, TS_CLIENT, k);

                if (*timer_sample(sh, n, TS_DAEMON, k) == INT64_MIN || cl >= worst)
                        continue;
                worst = cl;
                e = (TimerEarly){.after_s = (double)(sh->deadline[k] - sh->sent[k]) / 1e9,
                                 .sent_s = (double)(sh->sent[k] - sh->start) / 1e9,
                                 .early_s = (double)-cl / 1e9,
                                 .late_s = (double)*timer_sample(sh, n, TS_DAEMON, k) / 1e9};
        }
        return e;
}

static void timer_results(TimerShared *sh, const DaemonStats *s0, const DaemonStats *s1,
                          TimerResult *res) {
        unsigned n = res->n;

        res->internal = hist_between(s0, s1);
        res->delta.iterations = s1->iterations - s0->iterations;
        res->delta.timers = s1->timers - s0->timers;
        res->delta.events = s1->events - s0->events;
        res->delta.packets_out = s1->packets_out - s0->packets_out;
        res->delta.notifications = s1->notifications - s0->notifications;
        res->worst = timer_earliest(sh, n);
        res->daemon = timer_dist(sh, n, TS_DAEMON, NULL);
        res->client = timer_dist(sh, n, TS_CLIENT, &res->early);
        res->rtt = timer_dist(sh, n, TS_RTT, NULL);
}

static TimerResult timers_run(BenchDaemon *d) {
        unsigned clients = arg_timer_clients, n = arg_timers;
        size_t size = sizeof(TimerShared) + _TS_MAX * (size_t)n * sizeof(int64_t);
        size_t times = 2 * (size_t)n * sizeof(uint64_t);
        TimerShared *sh = shm_new(size);
        TimerResult res = {.n = n};
        uint64_t reg_end = 0;
        DaemonStats s0, s1;
        pid_t pids[16];

        sh->sent = shm_new(times);
        sh->deadline = sh->sent + n;
        for (size_t i = 0; i < _TS_MAX * (size_t)n; i++)
                sh->samples[i] = INT64_MIN;
        for (unsigned i = 0; i < clients; i++) {
                pids[i] = child_fork();
                if (pids[i] == 0)
                        timer_client(d, sh, i, clients);
        }
        timer_choose_lead(sh, clients, &res);
        daemon_stats(d, &s0);
        sh->start = now_ns();
        atomic_store(&sh->go, TG_REGISTER);
        for (unsigned i = 0; i < clients; i++) {
                child_wait(pids[i], "timer client");
                res.fired += (unsigned)sh->fired[i];
                res.multi += (unsigned)sh->multi[i];
                reg_end = MAX(reg_end, sh->reg_end[i]);
        }
        daemon_stats(d, &s1);
        res.reg_s = (double)(reg_end - sh->start) / 1e9;
        res.margin_s = sh->lead - res.reg_s;
        timer_results(sh, &s0, &s1, &res);
        shm_free(sh->sent, times);
        shm_free(sh, size);
        return res;
}

static json_t *timer_json(const TimerResult *t) {
        json_t *j = json_object(), *c = json_object();

        jint(j, "timers", t->n);
        jint(j, "fired", t->fired);
        jint(j, "expirations_gt_1", t->multi);
        jint(j, "early", t->early);
        jreal(j, "registration_s", t->reg_s);
        jreal(j, "lead_s", t->lead_s);
        jreal(j, "lead_margin_s", t->margin_s);
        jreal(j, "calibration_timers_per_s", t->cal_rate);
        json_object_set_new(j, "late_daemon", dist_json(&t->daemon));
        json_object_set_new(j, "late_client", dist_json(&t->client));
        json_object_set_new(j, "request_rtt", dist_json(&t->rtt));
        jbool(j, "target_met", t->daemon.p99 <= 200 && t->fired == t->n);
        json_object_set_new(j, "evd_internal", histq_json(&t->internal));
        jint(c, "iterations", t->delta.iterations);
        jint(c, "timer_callbacks", t->delta.timers);
        jint(c, "io_callbacks", t->delta.events);
        jint(c, "packets_out", t->delta.packets_out);
        jint(c, "notifications", t->delta.notifications);
        json_object_set_new(j, "evd_counters", c);
        if (t->early) {
                json_t *e = json_object();

                jreal(e, "after_s", t->worst.after_s);
                jreal(e, "sent_s", t->worst.sent_s);
                jreal(e, "early_s", t->worst.early_s);
                jreal(e, "late_s", t->worst.late_s);
                json_object_set_new(j, "earliest", e);
        }
        return j;
}

/* A fresh daemon per backend: a heap and a loop that served nothing before. */
static void timer_print_row(const char *backend, const TimerResult *t) {
        bool met = t->daemon.p99 <= 200 && t->fired == t->n;

        printf("   %-9s %8.1f %8.1f %8.1f %8.1f %7s  %9.1f %8.1f %8.1f %8.1f %6u  %7u %6.2f "
               "%6.2f %7.1f  <=%g/<=%g\n",
               backend, t->daemon.p50, t->daemon.p99, t->daemon.p999, t->daemon.max, verdict(met),
               t->client.min, t->client.p50, t->client.p99, t->client.max, t->early, t->fired,
               t->reg_s, t->lead_s, t->rtt.p50, t->internal.p50_le, t->internal.p99_le);
        if (t->margin_s < 0)
                printf("   %-9s registration ran %.2f s into the firing window\n"
                       "   %-9s (busier than calibrated): rerun, or raise --timer-lead\n",
                       "", -t->margin_s, "");
        if (t->multi)
                printf("   %-9s %u notifications covered more than one expiry\n", "", t->multi);
        if (t->early)
                printf("   %-9s EARLY: e.g. {\"after\": %.6f} sent at +%.3f s fired\n"
                       "   %-9s %.3f ms before sent + after, with \"late\": %.6f\n",
                       "", t->worst.after_s, t->worst.sent_s, "", t->worst.early_s * 1e3,
                       t->worst.late_s);
}

/* A fresh daemon per backend: a heap and a loop that served nothing before. */
static json_t *run_timers(BenchDaemon *unused) {
        TimerResult r[MAX_BACKENDS];
        json_t *j = json_object();

        for (size_t b = 0; b < arg_n_backends; b++) {
                BenchDaemon d;

                daemon_start(&d, arg_backends[b], NULL);
                r[b] = timers_run(&d);
                daemon_stop(&d);
        }
        printf("\n5. Timers: %u one-shot timers over %u clients (%u requests in flight each),\n"
               "   deadlines spread over %.1f s, starting `lead` s after registration begins\n"
               "   (1.5x the registration time a calibration predicts). late: the daemon's\n"
               "   `late` field (deadline -> noticed); client: callback - (send time + after),\n"
               "   < 0 = fired early. Target: late p99 <= 200 us. Times in us.\n",
               arg_timers, arg_timer_clients, TIMER_WINDOW, arg_timer_spread);
        printf("   %-9s %8s %8s %8s %8s %7s  %9s %8s %8s %8s %6s  %7s %6s %6s %7s  %s\n", "",
               "late p50", "p99", "p99.9", "max", "target", "client min", "p50", "p99", "max",
               "early", "fired", "reg s", "lead s", "rtt p50", "evd-internal p50/p99");
        for (size_t b = 0; b < arg_n_backends; b++) {
                const TimerResult *t = &r[b];

                timer_print_row(arg_backends[b], t);
                summary_add("timer late p99 <= 200 us (daemon's `late`)", b,
                            t->daemon.p99 <= 200 && t->fired == t->n, "%.0f us", t->daemon.p99);
                summary_add("timers never fire early", b, t->early == 0, "%.0f early", t->early);
                json_object_set_new(j, arg_backends[b], timer_json(t));
        }
        printf("   early: timers whose callback ran before `after` had passed since the request\n"
               "   was sent; rtt: request -> reply as the client saw it; reg s: registration\n"
               "   time.\n");
        jint(j, "clients", arg_timer_clients);
        jint(j, "in_flight", TIMER_WINDOW);
        jreal(j, "spread_s", arg_timer_spread);
        jreal(j, "min_lead_s", arg_timer_lead);
        return j;
}

/* ---- main ------------------------------------------------------------------------- */

static void help(void) {
        printf("Usage: evd-bench [OPTIONS]\n\n"
               "evd end to end against the kernel's floor, both backends (bench/README.md).\n\n"
               "  --evd PATH         the daemon (default: $EVD_BENCH_DAEMON, else the built one)\n"
               "  --json FILE        write every number to FILE\n"
               "  --quick            a ~20 s run: fewer samples, shorter runs, smaller counts\n"
               "  --only LIST        scenarios: latency,throughput,register,scale,timers\n"
               "  --backends LIST    io_uring,epoll (default both)\n"
               "latency:\n"
               "  --cpu N            the CPU of the pinned runs (default 0)\n"
               "  --samples N        samples per row (default %u)\n"
               "  --rounds N         blocks per row (default %u)\n"
               "throughput:\n"
               "  --clients C        clients (default %u)\n"
               "  --watches W        watches per client (default %u)\n"
               "  --fanout K         watches per pipe (default %u; W must be a multiple)\n"
               "  --duration S       seconds per backend (default %.1f)\n"
               "  --tp-split         evd alone on the last CPU, the clients on the others\n"
               "register:\n"
               "  --reg-watches N    watches (default %u)\n"
               "  --reg-runs N       runs per backend (default %u)\n"
               "scale:\n"
               "  --scale-watches N  watches (default: the fd limit - %u)\n"
               "  --scale-timers N   timers (default %u)\n"
               "timers:\n"
               "  --timers N         timers (default %u)\n"
               "  --timer-clients C  clients (default %u)\n"
               "  --timer-spread S   seconds the deadlines spread over (default %.1f)\n"
               "  --timer-lead S     at least S seconds before the first deadline (default\n"
               "                     %.1f; the calibration may choose more)\n",
               arg_samples, arg_rounds, arg_clients, arg_watches, arg_fanout, arg_duration,
               arg_reg_watches, arg_reg_reps, FD_SLACK, arg_scale_timers, arg_timers,
               arg_timer_clients, arg_timer_spread, arg_timer_lead);
}

static unsigned parse_uint(const char *s, const char *what, unsigned min) {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || end == s || *end || v < min || v > UINT32_MAX)
                die("%s: bad value \"%s\"", what, s);
        return (unsigned)v;
}

static double parse_seconds(const char *s, const char *what) {
        char *end;
        double v = strtod(s, &end);

        if (end == s || *end || !(v > 0) || v > 3600)
                die("%s: bad value \"%s\"", what, s);
        return v;
}

static unsigned parse_scenarios(char *list) {
        unsigned mask = 0;

        for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
                size_t i;

                for (i = 0; i < ELEMENTSOF(scenario_names); i++)
                        if (strcmp(tok, scenario_names[i]) == 0)
                                break;
                if (i == ELEMENTSOF(scenario_names))
                        die("--only: unknown scenario \"%s\"", tok);
                mask |= 1u << i;
        }
        return mask;
}

static void parse_backends(char *list) {
        arg_n_backends = 0;
        for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
                if (strcmp(tok, "io_uring") != 0 && strcmp(tok, "epoll") != 0)
                        die("--backends: unknown backend \"%s\"", tok);
                if (arg_n_backends == MAX_BACKENDS)
                        die("--backends: at most %d", MAX_BACKENDS);
                arg_backends[arg_n_backends++] =
                        strcmp(tok, "io_uring") == 0 ? "io_uring" : "epoll";
        }
        if (arg_n_backends == 0)
                die("--backends: empty list");
}

enum {
        OPT_EVD = 0x100,
        OPT_JSON,
        OPT_QUICK,
        OPT_ONLY,
        OPT_BACKENDS,
        OPT_CPU,
        OPT_SAMPLES,
        OPT_ROUNDS,
        OPT_CLIENTS,
        OPT_WATCHES,
        OPT_DURATION,
        OPT_TP_SPLIT,
        OPT_FANOUT,
        OPT_REG_WATCHES,
        OPT_REG_RUNS,
        OPT_SCALE_WATCHES,
        OPT_SCALE_TIMERS,
        OPT_TIMERS,
        OPT_TIMER_CLIENTS,
        OPT_TIMER_SPREAD,
        OPT_TIMER_LEAD,
};

/* --quick first sets smaller defaults; explicit options given with it still win. */
static void apply_quick(int argc, char **argv) {
        for (int i = 1; i < argc; i++)
                if (strcmp(argv[i], "--quick") == 0) {
                        arg_quick = true;
                        arg_samples = 2000;
                        arg_rounds = 2;
                        arg_duration = 1.0;
                        arg_reg_watches = 2000;
                        arg_reg_reps = 1;
                        arg_scale_watches = 8000;
                        arg_scale_timers = 200000;
                        arg_timers = 25000;
                        arg_timer_spread = 1.0;
                }
}

static void parse_argv(int argc, char **argv) {
        struct rlimit rl;
        static const struct option opts[] = {
                {"help", no_argument, NULL, 'h'},
                {"evd", required_argument, NULL, OPT_EVD},
                {"json", required_argument, NULL, OPT_JSON},
                {"quick", no_argument, NULL, OPT_QUICK},
                {"only", required_argument, NULL, OPT_ONLY},
                {"backends", required_argument, NULL, OPT_BACKENDS},
                {"cpu", required_argument, NULL, OPT_CPU},
                {"samples", required_argument, NULL, OPT_SAMPLES},
                {"rounds", required_argument, NULL, OPT_ROUNDS},
                {"clients", required_argument, NULL, OPT_CLIENTS},
                {"watches", required_argument, NULL, OPT_WATCHES},
                {"duration", required_argument, NULL, OPT_DURATION},
                {"tp-split", no_argument, NULL, OPT_TP_SPLIT},
                {"fanout", required_argument, NULL, OPT_FANOUT},
                {"reg-watches", required_argument, NULL, OPT_REG_WATCHES},
                {"reg-runs", required_argument, NULL, OPT_REG_RUNS},
                {"scale-watches", required_argument, NULL, OPT_SCALE_WATCHES},
                {"scale-timers", required_argument, NULL, OPT_SCALE_TIMERS},
                {"timers", required_argument, NULL, OPT_TIMERS},
                {"timer-clients", required_argument, NULL, OPT_TIMER_CLIENTS},
                {"timer-spread", required_argument, NULL, OPT_TIMER_SPREAD},
                {"timer-lead", required_argument, NULL, OPT_TIMER_LEAD},
                {NULL, 0, NULL, 0}};
        int c;

        arg_evd = getenv("EVD_BENCH_DAEMON");
        if (!arg_evd || !*arg_evd)
                arg_evd = EVD_BENCH_DAEMON;
        apply_quick(argc, argv);
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        exit(0);
                case OPT_EVD:
                        arg_evd = optarg;
                        break;
                case OPT_JSON:
                        arg_json = optarg;
                        break;
                case OPT_QUICK:
                        break; /* apply_quick() */
                case OPT_ONLY:
                        arg_scenarios = parse_scenarios(optarg);
                        break;
                case OPT_BACKENDS:
                        parse_backends(optarg);
                        break;
                case OPT_CPU:
                        arg_cpu = (int)parse_uint(optarg, "--cpu", 0);
                        break;
                case OPT_SAMPLES:
                        arg_samples = parse_uint(optarg, "--samples", 1);
                        break;
                case OPT_ROUNDS:
                        arg_rounds = parse_uint(optarg, "--rounds", 1);
                        break;
                case OPT_CLIENTS:
                        arg_clients = parse_uint(optarg, "--clients", 1);
                        break;
                case OPT_WATCHES:
                        arg_watches = parse_uint(optarg, "--watches", 1);
                        break;
                case OPT_DURATION:
                        arg_duration = parse_seconds(optarg, "--duration");
                        break;
                case OPT_FANOUT:
                        arg_fanout = parse_uint(optarg, "--fanout", 1);
                        break;
                case OPT_TP_SPLIT:
                        arg_tp_split = true;
                        break;
                case OPT_REG_WATCHES:
                        arg_reg_watches = parse_uint(optarg, "--reg-watches", 1);
                        break;
                case OPT_REG_RUNS:
                        arg_reg_reps = parse_uint(optarg, "--reg-runs", 1);
                        break;
                case OPT_SCALE_WATCHES:
                        arg_scale_watches = parse_uint(optarg, "--scale-watches", 1);
                        break;
                case OPT_SCALE_TIMERS:
                        arg_scale_timers = parse_uint(optarg, "--scale-timers", 1);
                        break;
                case OPT_TIMERS:
                        arg_timers = parse_uint(optarg, "--timers", 1);
                        break;
                case OPT_TIMER_CLIENTS:
                        arg_timer_clients = parse_uint(optarg, "--timer-clients", 1);
                        break;
                case OPT_TIMER_SPREAD:
                        arg_timer_spread = parse_seconds(optarg, "--timer-spread");
                        break;
                case OPT_TIMER_LEAD:
                        arg_timer_lead = parse_seconds(optarg, "--timer-lead");
                        break;
                default:
                        exit(2);
                }
        if (optind < argc)
                die("unexpected argument \"%s\" (see --help)", argv[optind]);
        if (arg_clients > 64)
                die("--clients: at most 64");
        if (arg_reg_watches > 16384)
                die("--reg-watches: at most 16384 (the daemon's default per-client quota)");
        /* The registering client holds both ends of each pipe and libevd's duplicate. */
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 3 * (rlim_t)arg_reg_watches + 64)
                die("--reg-watches %u needs %u fds, RLIMIT_NOFILE is %llu", arg_reg_watches,
                    3 * arg_reg_watches + 64, (unsigned long long)rl.rlim_cur);
        if (arg_watches % arg_fanout != 0)
                die("--watches %u is not a multiple of --fanout %u", arg_watches, arg_fanout);
        if (arg_timer_clients > 16)
                die("--timer-clients: at most 16");
        if (arg_cpu >= sysconf(_SC_NPROCESSORS_ONLN))
                die("--cpu %d: no such CPU", arg_cpu);
        if (access(arg_evd, X_OK) < 0)
                die_errno("%s (build it: ninja -C <builddir> daemon/evd, or pass --evd)", arg_evd);
}

static void read_loadavg(char *buf, size_t size) {
        _cleanup_(fclosep) FILE *f = fopen("/proc/loadavg", "re");

        double a, b, c;

        if (!f || fscanf(f, "%lf %lf %lf", &a, &b, &c) != 3)
                snprintf(buf, size, "?");
        else
                snprintf(buf, size, "%.2f %.2f %.2f", a, b, c);
}

static json_t *machine_json(const BenchDaemon *daemons, const char *load) {
        json_t *j = json_object(), *feat = json_object();
        struct utsname u;
        struct rlimit rl;

        (void)uname(&u);
        (void)getrlimit(RLIMIT_NOFILE, &rl);
        for (size_t b = 0; b < arg_n_backends; b++)
                jstr(feat, arg_backends[b], daemons[b].features);
        jstr(j, "kernel", u.release);
        jstr(j, "machine", u.machine);
        jint(j, "cpus", (uint64_t)sysconf(_SC_NPROCESSORS_ONLN));
        jint(j, "rlimit_nofile", rl.rlim_max);
        jstr(j, "daemon", arg_evd);
        jstr(j, "evd_version", daemons[0].version);
        jstr(j, "loadavg_start", load);
        json_object_set_new(j, "features", feat);
        jbool(j, "quick", arg_quick);
        return j;
}

static json_t *config_json(void) {
        json_t *j = json_object(), *only = json_array(), *backends = json_array();

        for (size_t i = 0; i < ELEMENTSOF(scenario_names); i++)
                if (arg_scenarios & (1u << i))
                        json_array_append_new(only, json_string(scenario_names[i]));
        for (size_t b = 0; b < arg_n_backends; b++)
                json_array_append_new(backends, json_string(arg_backends[b]));
        json_object_set_new(j, "scenarios", only);
        json_object_set_new(j, "backends", backends);
        jint(j, "latency_samples", arg_samples);
        jint(j, "latency_blocks", arg_rounds);
        jint(j, "pinned_cpu", (uint64_t)arg_cpu);
        jint(j, "clients", arg_clients);
        jint(j, "watches_per_client", arg_watches);
        jint(j, "watches_per_pipe", arg_fanout);
        jreal(j, "duration_s", arg_duration);
        jbool(j, "evd_on_own_cpu", arg_tp_split);
        jint(j, "register_watches", arg_reg_watches);
        jint(j, "register_runs", arg_reg_reps);
        jint(j, "scale_watches", scale_watch_count());
        jint(j, "scale_timers", arg_scale_timers);
        jint(j, "timers", arg_timers);
        jint(j, "timer_clients", arg_timer_clients);
        jreal(j, "timer_spread_s", arg_timer_spread);
        jreal(j, "timer_min_lead_s", arg_timer_lead);
        return j;
}

/* Run one scenario if selected; its JSON gets its wall time. */
static void run_scenario(json_t *root, unsigned which, json_t *(*run)(BenchDaemon *),
                         BenchDaemon *daemons) {
        uint64_t t0 = now_ns();
        size_t i = (size_t)__builtin_ctz(which);
        json_t *j;
        double secs;

        if (!(arg_scenarios & which))
                return;
        j = run(daemons);
        secs = (double)(now_ns() - t0) / 1e9;
        printf("   (%.1f s)\n", secs);
        json_object_set_new(j, "seconds", json_real(secs));
        json_object_set_new(root, scenario_names[i], j);
}

/* Children inherit it, and the daemon raises its own soft limit likewise. */
static void raise_fd_limit(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void)setrlimit(RLIMIT_NOFILE, &rl);
        }
}

int main(int argc, char **argv) {
        BenchDaemon daemons[MAX_BACKENDS];
        json_t *root = json_object();
        uint64_t t_start = now_ns();
        char load[128], load_end[128];
        struct utsname u;
        struct rlimit rl;

        raise_fd_limit();
        parse_argv(argc, argv);
        (void)signal(SIGPIPE, SIG_IGN);
        (void)atexit(cleanup_daemons);
        read_loadavg(load, sizeof(load));
        (void)uname(&u);

        for (size_t b = 0; b < arg_n_backends; b++)
                daemon_start(&daemons[b], arg_backends[b], NULL);
        (void)getrlimit(RLIMIT_NOFILE, &rl);
        printf("evd-bench: evd %s (%s), kernel %s, %ld CPUs,\n"
               "   RLIMIT_NOFILE %llu, load average %s%s\n",
               daemons[0].version, arg_evd, u.release, sysconf(_SC_NPROCESSORS_ONLN),
               (unsigned long long)rl.rlim_max, load, arg_quick ? " [--quick]" : "");
        for (size_t b = 0; b < arg_n_backends; b++)
                printf("  %s features: %s\n", arg_backends[b],
                       *daemons[b].features ? daemons[b].features : "-");
        json_object_set_new(root, "machine", machine_json(daemons, load));
        json_object_set_new(root, "config", config_json());

        run_scenario(root, SCEN_LATENCY, run_latency, daemons);
        run_scenario(root, SCEN_THROUGHPUT, run_throughput, daemons);
        run_scenario(root, SCEN_REGISTER, run_register, daemons);
        /* Scale and timers start daemons of their own: the shared ones go first. */
        for (size_t b = 0; b < arg_n_backends; b++)
                daemon_stop(&daemons[b]);
        run_scenario(root, SCEN_SCALE, run_scale, NULL);
        run_scenario(root, SCEN_TIMERS, run_timers, NULL);
        json_object_set_new(root, "targets", summary_print());
        read_loadavg(load_end, sizeof(load_end));
        printf("\nload average %s -> %s; %.1f s\n", load, load_end,
               (double)(now_ns() - t_start) / 1e9);
        json_object_set_new(json_object_get(root, "machine"), "loadavg_end", json_string(load_end));
        json_object_set_new(root, "seconds", json_real((double)(now_ns() - t_start) / 1e9));
        if (arg_json && json_dump_file(root, arg_json, JSON_INDENT(2)) < 0)
                die("cannot write %s", arg_json);
        json_decref(root);
        return 0;
}
