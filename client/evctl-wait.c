/*
 * evctl-wait.c - the commands that wait on daemon objects: wait (the first of the
 * shell's fds to be ready), sleep (a daemon timer) and timer (a line per expiry). They run
 * in evctl-loop.c's loop; exit 4 on timeout, 130 if interrupted (wait, sleep).
 */

#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "evctl.h"

/* wait: the shell's fds and processes (pidfds: readable once the process exited), the
 * first of them (--any, the default) or every one (--all). */
typedef struct WaitTarget {
        int fd;    /* the shell's fd, or the pidfd evctl opened */
        pid_t pid; /* > 0: a process */
        uint64_t watch;
        bool done;
} WaitTarget;

typedef struct WaitState {
        WaitTarget *targets;
        size_t n, left;
        bool all;
} WaitState;

static void print_ready(const WaitTarget *t, uint32_t revents) {
        static const struct {
                uint32_t bit;
                const char *name;
        } names[] = {{EVD_IN, "in"},   {EVD_PRI, "pri"}, {EVD_OUT, "out"},      {EVD_ERR, "err"},
                     {EVD_HUP, "hup"}, {EVD_RDHUP, "rdhup"}, {EVD_CLOSED, "closed"}};
        json_t *events = json_array();
        char text[FORMAT_MAX];

        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                if (revents & names[i].bit)
                        json_array_append_new(events, json_string(names[i].name));
        if (arg_json)
                print_json_new(t->pid > 0 ? json_pack("{s:i,s:b}", "pid", (int)t->pid, "exited", true)
                                          : json_pack("{s:i,s:o}", "fd", t->fd, "events", events));
        else if (t->pid > 0)
                printf("pid %d exited\n", (int)t->pid);
        else
                printf("%d %s\n", t->fd, fmt_events(events, text));
        if (!arg_json || t->pid > 0) /* else "o" took it */
                json_decref(events);
        fflush(stdout);
}

static int on_wait_ready(struct evd_client *c, uint64_t watch, uint32_t revents, void *userdata) {
        WaitState *w = userdata;

        if (loop_done)
                return 0;
        for (size_t i = 0; i < w->n; i++) {
                WaitTarget *t = &w->targets[i];

                if (t->watch != watch || t->done)
                        continue;
                t->done = true;
                w->left--;
                print_ready(t, revents);
        }
        if (!w->all || w->left == 0) {
                loop_done = true;
                loop_exit = 0;
        }
        return 0;
}

static int on_wait_timeout(struct evd_client *c, uint64_t timer, uint64_t expirations,
                           void *userdata) {
        if (loop_done)
                return 0;
        if (arg_json)
                print_json_new(json_pack("{s:b}", "timeout", true));
        loop_done = true;
        loop_exit = EXIT_TIMEOUT;
        return 0;
}

/* `wait ... -- CMD ARGS`: run CMD once the watches are armed, so that what it causes is
 * seen. It runs alongside (evctl does not wait for it, and its exit status is not
 * evctl's), with the shell's fds and signal mask, not evctl's. Return: 0, or the exit
 * code for a CMD that cannot be run (127 not found, 126 otherwise, as timeout(1)). */
static int run_command(char **cmd) {
        int report[2], err = 0;
        ssize_t n;
        pid_t pid;

        if (pipe2(report, O_CLOEXEC) < 0) {
                errorf("wait: pipe: %s", strerror(errno));
                return EXIT_FAIL;
        }
        fflush(stdout);
        pid = fork();
        if (pid < 0) {
                errorf("wait: fork: %s", strerror(errno));
                close(report[0]);
                close(report[1]);
                return EXIT_FAIL;
        }
        if (pid == 0) {
                sigset_t none;

                sigemptyset(&none);
                (void)sigprocmask(SIG_SETMASK, &none, NULL);
                execvp(cmd[0], cmd);
                err = errno;
                (void)!write(report[1], &err, sizeof(err));
                _exit(127);
        }
        close(report[1]);
        /* EOF: the exec closed the pipe, CMD runs. */
        while ((n = read(report[0], &err, sizeof(err))) < 0 && errno == EINTR)
                ;
        close(report[0]);
        if (n <= 0)
                return 0;
        errorf("wait: cannot run %s: %s", cmd[0], strerror(err));
        return err == ENOENT ? 127 : 126;
}

/* --in / --out of wait and watch. Return: whether @c was one. */
static bool events_option(int c, uint32_t *events) {
        if (c == 'I')
                *events |= EVD_IN;
        else if (c == 'O')
                *events |= EVD_OUT;
        return c == 'I' || c == 'O';
}

static int parse_fd(const char *a, WaitTarget *t) {
        char *end;
        long fd = strtol(a, &end, 10);
        struct stat st;

        if (*end || end == a || fd < 0 || fd > 1 << 20)
                return usage_error("wait", "expected an fd number, got \"%s\"", a);
        if (fstat((int)fd, &st) < 0) {
                errorf("wait: fd %ld is not open in this shell (%s)", fd, strerror(errno));
                return EXIT_USAGE;
        }
        *t = (WaitTarget){ .fd = (int)fd };
        return 0;
}

/* A pidfd for @a: race-free (the pid cannot be reused while it is open). A process that
 * is already gone is an error, or done at once with --exited (as waitpid(1)). Return: 0,
 * or an exit code. */
static int open_pid(const char *a, bool exited_ok, WaitTarget *t) {
        char *end;
        long pid = strtol(a, &end, 10);
        int fd;

        if (*end || end == a || pid <= 0 || pid > INT32_MAX)
                return usage_error("wait", "--pid: expected a process id, got \"%s\"", a);
        *t = (WaitTarget){ .fd = -1, .pid = (pid_t)pid };
        fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
        if (fd >= 0) {
                (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
                t->fd = fd;
                return 0;
        }
        if (errno == ESRCH && exited_ok) {
                t->done = true;
                return 0;
        }
        errorf("wait: pid %ld: %s", pid,
               errno == ESRCH    ? "no such process (--exited: count it as exited)"
               : errno == ENOSYS ? "pidfd_open() is not available (Linux 5.3 or later; not under valgrind 3.19)"
                                 : strerror(errno));
        return EXIT_FAIL;
}

int cmd_wait(int argc, char **argv) {
        static const struct option options[] = {COMMON_OPTIONS{"in", no_argument, NULL, 'I'},
                                                {"out", no_argument, NULL, 'O'},
                                                {"timeout", required_argument, NULL, 't'},
                                                {"pid", required_argument, NULL, 'p'},
                                                {"any", no_argument, NULL, 'a'},
                                                {"all", no_argument, NULL, 'A'},
                                                {"exited", no_argument, NULL, 'e'},
                                                {NULL, 0, NULL, 0}};
        uint32_t events = 0;
        double timeout = -1;
        WaitState w = {0};
        uint64_t timer;
        char **command, **pids = NULL;
        size_t n_pids = 0;
        bool exited_ok = false, any = false;
        int c, r = EXIT_FAIL;

        if (split_command(&argc, argv, &command) < 0)
                return usage_error("wait", "which command? \"--\" must be followed by one");
        pids = calloc((size_t)argc, sizeof(char *));
        if (!pids)
                return EXIT_FAIL;
        optind = 0; /* 0, not 1: glibc re-reads the optstring (main parsed with "+") */
        while ((c = getopt_long(argc, argv, COMMON_SHORT "t:p:", options, NULL)) >= 0)
                switch (events_option(c, &events) ? 0 : c) {
                case 0:
                        break;
                case 'p':
                        pids[n_pids++] = optarg;
                        break;
                case 'a':
                        any = true;
                        break;
                case 'A':
                        w.all = true;
                        break;
                case 'e':
                        exited_ok = true;
                        break;
                case 't':
                        timeout = parse_seconds(optarg);
                        if (timeout < 0 || timeout > 2147483647.0) {
                                r = usage_error("wait", "--timeout: expected seconds, got \"%s\"", optarg);
                                goto out;
                        }
                        break;
                default: {
                        int h = common_option(c, "wait");

                        r = h == 1 ? 0 : h == 2 ? EXIT_USAGE : h < 0 ? bad_option("wait", c, argv) : -1;
                        if (r >= 0)
                                goto out;
                        break;
                }
                }
        /* Not the last one given winning: which one the script meant is a guess. */
        if (any && w.all) {
                r = usage_error("wait", "--any and --all exclude each other: give one");
                goto out;
        }
        if (optind >= argc && n_pids == 0) {
                r = usage_error("wait", "what for? give at least one fd or --pid PID");
                goto out;
        }
        if (!events)
                events = EVD_IN;
        w.n = (size_t)(argc - optind) + n_pids;
        w.targets = calloc(w.n, sizeof(WaitTarget));
        if (!w.targets)
                goto out;
        for (size_t i = 0; i < w.n; i++)
                w.targets[i].fd = -1;
        for (size_t i = 0; i < (size_t)(argc - optind); i++)
                if ((r = parse_fd(argv[optind + (int)i], &w.targets[i])))
                        goto out;
        for (size_t i = 0; i < n_pids; i++)
                if ((r = open_pid(pids[i], exited_ok, &w.targets[(size_t)(argc - optind) + i])))
                        goto out;
        if (signals_block() < 0 || (r = connect_daemon()))
                goto out;
        for (size_t i = 0; i < w.n; i++) {
                WaitTarget *t = &w.targets[i];

                if (t->done) { /* --exited: gone before evctl looked */
                        print_ready(t, EVD_IN);
                        continue;
                }
                w.left++;
                r = evd_watch_add(client, t->fd, t->pid > 0 ? EVD_IN : events, EVD_ONESHOT, on_wait_ready, &w,
                                  CALL_TIMEOUT_MS, &t->watch);
                if (r < 0) {
                        char what[48];

                        if (t->pid > 0)
                                snprintf(what, sizeof(what), "wait: pid %d", (int)t->pid);
                        else
                                snprintf(what, sizeof(what), "wait: fd %d", t->fd);
                        r = call_failed(what, r);
                        goto out;
                }
        }
        if (w.left == 0 || (!w.all && w.left < w.n)) {
                r = 0; /* --exited processes already answer it */
                goto out;
        }
        if (timeout >= 0) {
                r = evd_timer_after(client, to_usec(timeout), 0, on_wait_timeout, NULL, CALL_TIMEOUT_MS, &timer);
                if (r < 0) {
                        r = call_failed("wait: timer", r);
                        goto out;
                }
        }
        if (command && (r = run_command(command)))
                goto out;
        r = loop_run(false);
out:
        for (size_t i = 0; w.targets && i < w.n; i++)
                if (w.targets[i].pid > 0 && w.targets[i].fd >= 0)
                        close(w.targets[i].fd);
        free(w.targets);
        free(pids);
        return r;
}

/* watch: a line per event on the shell's fds (edge watches), for `while read` loops. */
typedef struct Stream {
        WaitTarget *targets;
        size_t n;
        uint64_t lines, count;
} Stream;

static int on_stream_event(struct evd_client *c, uint64_t watch, uint32_t revents, void *userdata) {
        Stream *k = userdata;

        for (size_t i = 0; i < k->n; i++)
                if (k->targets[i].watch == watch)
                        print_ready(&k->targets[i], revents);
        if (k->count && ++k->lines >= k->count) {
                loop_done = true;
                loop_exit = 0;
        }
        return 0;
}

int cmd_watch(int argc, char **argv) {
        static const struct option options[] = {COMMON_OPTIONS{"in", no_argument, NULL, 'I'},
                                                {"out", no_argument, NULL, 'O'},
                                                {"count", required_argument, NULL, 'c'},
                                                {NULL, 0, NULL, 0}};
        Stream k = {0};
        uint32_t events = 0;
        int c, r = EXIT_FAIL;

        optind = 0; /* 0, not 1: glibc re-reads the optstring (main parsed with "+") */
        while ((c = getopt_long(argc, argv, COMMON_SHORT "c:", options, NULL)) >= 0)
                switch (events_option(c, &events) ? 0 : c) {
                case 0:
                        break;
                case 'c':
                        if (parse_count("watch", optarg, &k.count) < 0)
                                return EXIT_USAGE;
                        break;
                        HANDLE_COMMON(c, "watch")
                }
        if (optind >= argc)
                return usage_error("watch", "which fds? give at least one");
        k.n = (size_t)(argc - optind);
        k.targets = calloc(k.n, sizeof(WaitTarget));
        if (!k.targets)
                return EXIT_FAIL;
        for (size_t i = 0; i < k.n; i++)
                if ((r = parse_fd(argv[optind + (int)i], &k.targets[i])))
                        goto out;
        if (signals_block() < 0 || (r = connect_daemon()))
                goto out;
        for (size_t i = 0; i < k.n; i++) {
                r = evd_watch_add(client, k.targets[i].fd, events ? events : EVD_IN, EVD_EDGE, on_stream_event, &k,
                                  CALL_TIMEOUT_MS, &k.targets[i].watch);
                if (r < 0) {
                        char what[32];

                        snprintf(what, sizeof(what), "watch: fd %d", k.targets[i].fd);
                        r = call_failed(what, r);
                        goto out;
                }
        }
        r = loop_run(true);
out:
        free(k.targets);
        return r;
}

static int on_sleep_done(struct evd_client *c, uint64_t timer, uint64_t expirations,
                         void *userdata) {
        loop_done = true;
        loop_exit = 0;
        return 0;
}

int cmd_sleep(int argc, char **argv) {
        double seconds, t0;
        uint64_t timer;
        int r = 0;

        PARSE_SIMPLE("sleep", 1);
        if (optind >= argc)
                return usage_error("sleep", "how long? give SECONDS");
        seconds = parse_seconds(argv[optind]);
        if (seconds < 0 || seconds > 2147483647.0)
                return usage_error("sleep", "expected seconds, got \"%s\"", argv[optind]);
        if (signals_block() < 0 || (r = connect_daemon()))
                return r ? r : EXIT_FAIL;
        t0 = now_mono();
        r = evd_timer_after(client, to_usec(seconds), 0, on_sleep_done, NULL, CALL_TIMEOUT_MS,
                            &timer);
        if (r < 0)
                return call_failed("sleep", r);
        r = loop_run(false);
        if (r == 0 && arg_json)
                print_json_new(
                        json_pack("{s:f,s:f}", "seconds", seconds, "elapsed", round_decimals(now_mono() - t0, 6)));
        return r;
}

typedef struct Ticker {
        uint64_t ticks, count, expirations;
        double start;
} Ticker;

static int on_tick(struct evd_client *c, uint64_t timer, uint64_t expirations, void *userdata) {
        Ticker *k = userdata;
        double elapsed = now_mono() - k->start;
        char b[FORMAT_MAX];

        k->ticks++;
        k->expirations += expirations;
        if (arg_json)
                print_json_new(json_pack("{s:I,s:I,s:f}", "tick", (json_int_t)k->ticks,
                                         "expirations", (json_int_t)expirations, "elapsed",
                                         round_decimals(elapsed, 6)));
        else {
                printf("tick %llu  at +%s", (unsigned long long)k->ticks,
                       format_duration(elapsed, b));
                if (expirations > 1)
                        printf("  (%llu expirations: evctl was late)",
                               (unsigned long long)expirations);
                printf("\n");
                fflush(stdout);
        }
        if (k->count && k->ticks >= k->count) {
                loop_done = true;
                loop_exit = 0;
        }
        return 0;
}

int cmd_timer(int argc, char **argv) {
        static const struct option options[] = {
                COMMON_OPTIONS{"every", required_argument, NULL, 'e'},
                {"count", required_argument, NULL, 'c'},
                {NULL, 0, NULL, 0}};
        Ticker k = {0};
        double every = -1;
        uint64_t timer;
        int c, r = 0;

        optind = 0; /* 0, not 1: glibc re-reads the optstring (main parsed with "+") */
        while ((c = getopt_long(argc, argv, COMMON_SHORT "e:c:", options, NULL)) >= 0)
                switch (c) {
                case 'e':
                        every = parse_seconds(optarg);
                        if (every < 0.001 || every > 2147483647.0)
                                return usage_error(
                                        "timer",
                                        "--every: expected seconds (at least 0.001), got \"%s\"",
                                        optarg);
                        break;
                case 'c':
                        if (parse_count("timer", optarg, &k.count) < 0)
                                return EXIT_USAGE;
                        break;
                        HANDLE_COMMON(c, "timer")
                }
        if (optind < argc)
                return usage_error("timer", "unexpected argument \"%s\"", argv[optind]);
        if (every < 0)
                return usage_error("timer", "how often? give --every SECONDS");
        if (signals_block() < 0 || (r = connect_daemon()))
                return r ? r : EXIT_FAIL;
        k.start = now_mono();
        r = evd_timer_after(client, to_usec(every), to_usec(every), on_tick, &k, CALL_TIMEOUT_MS,
                            &timer);
        if (r < 0)
                return call_failed("timer", r);
        return loop_run(true);
}
