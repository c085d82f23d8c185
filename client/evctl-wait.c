/*
 * evctl-wait.c - the commands that wait on daemon objects: wait (the first of the
 * shell's fds to be ready), sleep (a daemon timer) and timer (a line per expiry). They run
 * in evctl-loop.c's loop; exit 4 on timeout, 130 if interrupted (wait, sleep).
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evctl.h"

/* wait: the first of the fds to become ready. */
typedef struct WaitState {
        uint64_t *watches;
        int *fds;
        size_t n;
} WaitState;

static int on_wait_ready(struct evd_client *c, uint64_t watch, uint32_t revents, void *userdata) {
        WaitState *w = userdata;
        static const struct {
                uint32_t bit;
                const char *name;
        } names[] = {{EVD_IN, "in"},        {EVD_PRI, "pri"}, {EVD_OUT, "out"},
                     {EVD_ERR, "err"},      {EVD_HUP, "hup"}, {EVD_RDHUP, "rdhup"},
                     {EVD_CLOSED, "closed"}};
        json_t *events = json_array();
        char text[FORMAT_MAX];
        int fd = -1;

        if (loop_done)
                return 0;
        for (size_t i = 0; i < w->n; i++)
                if (w->watches[i] == watch)
                        fd = w->fds[i];
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                if (revents & names[i].bit)
                        json_array_append_new(events, json_string(names[i].name));
        if (arg_json)
                print_json_new(json_pack("{s:i,s:o}", "fd", fd, "events", events));
        else {
                printf("%d %s\n", fd, fmt_events(events, text));
                json_decref(events);
        }
        loop_done = true;
        loop_exit = 0;
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

int cmd_wait(int argc, char **argv) {
        static const struct option options[] = {COMMON_OPTIONS{"in", no_argument, NULL, 'I'},
                                                {"out", no_argument, NULL, 'O'},
                                                {"timeout", required_argument, NULL, 't'},
                                                {NULL, 0, NULL, 0}};
        uint32_t events = 0;
        double timeout = -1;
        WaitState w = {0};
        uint64_t timer;
        char **command;
        int c, r = EXIT_FAIL;

        if (split_command(&argc, argv, &command) < 0)
                return usage_error("wait", "which command? \"--\" must be followed by one");
        optind = 0; /* 0, not 1: glibc re-reads the optstring (main parsed with "+") */
        while ((c = getopt_long(argc, argv, COMMON_SHORT "t:", options, NULL)) >= 0)
                switch (c) {
                case 'I':
                        events |= EVD_IN;
                        break;
                case 'O':
                        events |= EVD_OUT;
                        break;
                case 't':
                        timeout = parse_seconds(optarg);
                        if (timeout < 0 || timeout > 2147483647.0)
                                return usage_error(
                                        "wait", "--timeout: expected seconds, got \"%s\"", optarg);
                        break;
                        HANDLE_COMMON(c, "wait")
                }
        if (optind >= argc)
                return usage_error("wait", "which fds? give at least one");
        if (!events)
                events = EVD_IN;
        w.n = (size_t)(argc - optind);
        w.fds = calloc(w.n, sizeof(int));
        w.watches = calloc(w.n, sizeof(uint64_t));
        if (!w.fds || !w.watches)
                return EXIT_FAIL;
        for (size_t i = 0; i < w.n; i++) {
                const char *a = argv[optind + (int)i];
                char *end;
                long fd = strtol(a, &end, 10);
                struct stat st;

                if (*end || end == a || fd < 0 || fd > 1 << 20) {
                        r = usage_error("wait", "expected an fd number, got \"%s\"", a);
                        goto out;
                }
                if (fstat((int)fd, &st) < 0) {
                        errorf("wait: fd %ld is not open in this shell (%s)", fd, strerror(errno));
                        r = EXIT_USAGE;
                        goto out;
                }
                w.fds[i] = (int)fd;
        }
        if (signals_block() < 0 || (r = connect_daemon()))
                goto out;
        for (size_t i = 0; i < w.n; i++) {
                r = evd_watch_add(client, w.fds[i], events, EVD_ONESHOT, on_wait_ready, &w,
                                  CALL_TIMEOUT_MS, &w.watches[i]);
                if (r < 0) {
                        char what[32];

                        snprintf(what, sizeof(what), "wait: fd %d", w.fds[i]);
                        r = call_failed(what, r);
                        goto out;
                }
        }
        if (timeout >= 0) {
                r = evd_timer_after(client, to_usec(timeout), 0, on_wait_timeout, NULL,
                                    CALL_TIMEOUT_MS, &timer);
                if (r < 0) {
                        r = call_failed("wait: timer", r);
                        goto out;
                }
        }
        if (command && (r = run_command(command)))
                goto out;
        r = loop_run(false);
out:
        free(w.fds);
        free(w.watches);
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
                case 'c': {
                        char *end;
                        long long v = strtoll(optarg, &end, 10);

                        if (*end || end == optarg || v < 1)
                                return usage_error("timer",
                                                   "--count: expected a number from 1, got \"%s\"",
                                                   optarg);
                        k.count = (uint64_t)v;
                        break;
                }
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
