/* engine-bench.c - evd's engine against libev, libuv, libevent and a raw epoll loop
 *
 * Two benches in one run, every contender interleaved so that machine noise (other builds,
 * frequency changes) spreads over all of them instead of biasing one:
 *
 * pipes: libevent's classic test/bench.c. N nonblocking pipes, A active: a round writes a
 * byte into A pipes spread over N, each read callback reads its byte and writes one into
 * the next pipe until W = 10 * A bytes went in; the round ends when all W are read (the
 * work is bench_pipes_readable(), shared by every contender, and "floor(no poll)" runs it
 * without any poller to show what the pollers add). Only
 * the event loop is timed (the A seed writes are not, as in bench.c). Each repetition runs
 * every contender once, in rotated order (rep r starts with contender r), and a contender's
 * block is: create the loop and watch N pipes (timed separately as "setup"), one untimed
 * warm-up round, R timed rounds, teardown. Only one contender is registered on the pipes
 * at any time: a second poller on the same pipe would add its wakeup to every write.
 *
 * timers: 1,000,000 one-shot timers, engine vs libev's ev_timer (user-allocated array):
 * insert with random deadlines 1..1000 s into a fresh loop ("cold": the loop's memory
 * grows), cancel all, insert with deadlines 0..100 ms into the emptied loop ("warm"),
 * wait until all are due, then run the loop until all fired; and a "live" pass where the
 * loop runs while the 0..100 ms deadlines come due (its CPU time, not its wall time, is
 * the cost). The deadlines come from a seeded PRNG and are the same for every contender.
 *
 * This file: main(). engine-bench-pipes.c and engine-bench-timers.c: the two benches;
 * engine-bench-options.c: the contender lists and the options; engine-bench-facts.c:
 * machine facts; engine-bench-json.c: the JSON report; engine-bench-util.c: small shared
 * helpers. engine-bench.h declares what they share; bench.h (with bench.c, the pipe set)
 * is the contenders' interface. Calls go downward only (tools/check-layers --dir bench).
 */

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "engine-bench.h"
#include "macro.h"

int main(int argc, char **argv) {
        IoConfig cfgs[MAX_LIST * MAX_LIST];
        TimerResult *timers = NULL;
        size_t ncfg = 0;
        unsigned max_n;
        Facts facts = { .cpus = 0 };
        int r;

        parse_argv(argc, argv);
        if (arg_cpu >= 0) {
                cpu_set_t set;

                CPU_ZERO(&set);
                CPU_SET(arg_cpu, &set);
                if (sched_setaffinity(0, sizeof(set), &set) < 0) {
                        fprintf(stderr, "engine-bench: sched_setaffinity(%d): %s\n", arg_cpu,
                                strerror(errno));
                        return 1;
                }
        }
        r = raise_nofile(&facts);
        if (r < 0) {
                fprintf(stderr, "engine-bench: RLIMIT_NOFILE: %s\n", strerror(-r));
                return 1;
        }
        (void)signal(SIGALRM, watchdog);
        (void)signal(SIGPIPE, SIG_IGN);
        facts_collect(&facts);
        facts_print(&facts);
        max_n = facts.nofile_soft > 2 * FD_SLACK ? (unsigned)((facts.nofile_soft - FD_SLACK) / 2)
                                                 : 1;
        max_n = MIN(max_n, 1000000u);

        if (arg_io) {
                for (unsigned i = 0; i < arg_n_count; i++) {
                        unsigned n = arg_n[i] ? MIN(arg_n[i], max_n) : max_n;

                        for (unsigned j = 0; j < arg_a_count; j++) {
                                unsigned a = arg_a[j] ? arg_a[j] : MAX(n / 10, 1u);
                                bool dup = false;

                                a = MIN(a, n);
                                for (size_t k = 0; k < ncfg; k++)
                                        dup |= cfgs[k].n == n && cfgs[k].active == a;
                                if (dup)
                                        continue;
                                cfgs[ncfg] = (IoConfig){ .n = n, .active = a, .reps = arg_reps,
                                                         .target = 10 * (uint64_t)a };
                                cfgs[ncfg].rounds = arg_rounds ? arg_rounds
                                                               : rounds_for(cfgs[ncfg].target);
                                ncfg++;
                        }
                }
                printf("  pipes: pipe2(O_NONBLOCK), largest N here %u; engine contenders edge-"
                       "triggered, the rest level-triggered\n",
                       max_n);
                fflush(stdout);
                for (size_t i = 0; i < ncfg; i++) {
                        r = pipes_open(cfgs[i].n);
                        if (r < 0)
                                return 1;
                        fprintf(stderr, "pipes N=%u A=%u ", cfgs[i].n, cfgs[i].active);
                        io_config_run(&cfgs[i]);
                        pipes_close(cfgs[i].n);
                        io_config_print(&cfgs[i]);
                        fflush(stdout);
                }
        }
        if (arg_timer) {
                timers = calloc(TIMER_N, sizeof(*timers));
                if (!timers)
                        return 1;
                fprintf(stderr, "timers ");
                r = timers_run(timers, arg_timers);
                if (r < 0) {
                        fprintf(stderr, "engine-bench: timers: %s\n", strerror(-r));
                        return 1;
                }
                timers_print(timers, arg_timers);
        }
        printf("\nload average %.2f at the end (this bench adds ~1; well above 1 means other "
               "processes shared the CPUs: rerun)\n",
               loadavg());
        if (arg_json) {
                FILE *f = fopen(arg_json, "we");

                if (!f) {
                        fprintf(stderr, "engine-bench: %s: %s\n", arg_json, strerror(errno));
                        return 1;
                }
                json_write(f, &facts, cfgs, ncfg, timers, arg_timers);
                if (fclose(f) != 0) {
                        fprintf(stderr, "engine-bench: %s: %s\n", arg_json, strerror(errno));
                        return 1;
                }
        }
        for (size_t i = 0; i < ncfg; i++)
                for (size_t c = 0; c < IO_N; c++) {
                        free(cfgs[i].results[c].samples);
                        free(cfgs[i].results[c].cpu_samples);
                }
        free(timers);
        return 0;
}
