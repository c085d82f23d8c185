/*
 * engine-bench-json.c - the --json report: machine facts, every pipes configuration
 * and every timer contender, written as one document.
 */

#include <inttypes.h>

#include "engine-bench.h"
#include "macro.h"

/* JSON */

void json_write(FILE *f, const Facts *facts, const IoConfig *cfgs, size_t ncfg,
                const TimerResult *timers, size_t n_timers) {
        fprintf(f, "{\n  \"machine\": {\"kernel\": \"%s\", \"cpus\": %ld, \"cpu_model\": \"%s\", "
                   "\"nofile\": %llu, \"engine_features\": \"%s\", \"libraries\": \"%s\", "
                   "\"pinned_cpu\": %d, \"loadavg_start\": %.2f, \"loadavg_end\": %.2f},\n",
                facts->kernel, facts->cpus, facts->cpu_model,
                (unsigned long long)facts->nofile_soft, facts->features, facts->versions,
                arg_cpu, facts->load_start, loadavg());
        fprintf(f, "  \"pipes\": [");
        for (size_t i = 0; i < ncfg; i++) {
                const IoConfig *cfg = &cfgs[i];

                fprintf(f, "%s\n    {\"n\": %u, \"active\": %u, \"writes\": %" PRIu64
                           ", \"reps\": %u, \"rounds\": %u, \"contenders\": [",
                        i ? "," : "", cfg->n, cfg->active, cfg->target, cfg->reps, cfg->rounds);
                for (size_t c = 0; c < IO_N; c++) {
                        const IoResult *res = &cfg->results[c];

                        fprintf(f, "%s\n      {\"name\": \"%s\", ", c ? "," : "",
                                io_contenders[c]->name);
                        if (!io_result_ok(res)) {
                                fprintf(f, "\"available\": false, \"failed\": %s}",
                                        res->failed ? "true" : "false");
                                continue;
                        }
                        fprintf(f, "\"available\": true, \"median_round_ns\": %.0f, "
                                   "\"setup_ns\": %.0f, \"teardown_ns\": %.0f, "
                                   "\"ratio_libev_epoll\": %.4f, "
                                   "\"best_rep_ratio_libev_epoll\": %.4f, "
                                   "\"cpu_median_round_ns\": %.0f, "
                                   "\"cpu_ratio_libev_epoll\": %.4f, "
                                   "\"poll_cost_ns_per_read\": %.2f, "
                                   "\"poll_cost_ratio_libev_epoll\": %.4f, "
                                   "\"poll_cost_ratio_libev_epoll_paired\": %.4f, \"rep_median_ns\": [",
                                res->median_ns, res->setup_ns, res->teardown_ns,
                                io_ratio(cfg, c, IO_BASELINE), io_ratio_best(cfg, c, IO_BASELINE),
                                res->cpu_median_ns, io_ratio_cpu(cfg, c, IO_BASELINE),
                                io_poll_cost_ns(cfg, c), io_poll_cost_ratio(cfg, c, IO_BASELINE),
                                io_poll_cost_ratio_paired(cfg, c, IO_BASELINE));
                        for (unsigned r = 0; r < res->reps_done; r++)
                                fprintf(f, "%s%" PRIu64, r ? ", " : "", res->rep_median[r]);
                        fprintf(f, "]");
                        if (res->has_waits)
                                fprintf(f, ", \"iterations_per_round\": %.2f",
                                        (double)res->waits / (double)res->rounds_done);
                        if (res->has_syscalls)
                                fprintf(f, ", \"syscalls_per_round\": %.2f",
                                        (double)res->syscalls / (double)res->rounds_done);
                        fprintf(f, ", \"empty_wakeups\": %" PRIu64 "}", res->spurious);
                }
                fprintf(f, "\n    ], \"engine_uring_vs_libev_iouring\": %.4f}",
                        io_ratio(cfg, 0, IO_URING_PEER));
        }
        fprintf(f, "\n  ],\n  \"timers\": {\"count\": %zu, \"reps\": %u, \"contenders\": [",
                n_timers, arg_timer_reps);
        for (size_t c = 0; timers && c < TIMER_N; c++) {
                static const char *const keys[_T_MAX] = {
                        "insert_cold", "cancel",        "insert_warm",
                        "fire_due",    "fire_live_cpu", "fire_live_wall_total",
                };
                const TimerResult *res = &timers[c];

                fprintf(f, "%s\n    {\"name\": \"%s\", \"available\": %s", c ? "," : "",
                        timer_contenders[c]->name, timer_ok(res) ? "true" : "false");
                for (unsigned t = 0; timer_ok(res) && t < _T_MAX; t++) {
                        fprintf(f, ", \"%s_ns\": %.2f", keys[t], res->median[t]);
                        if (t != T_LIVE_WALL && t != T_LIVE_CPU)
                                fprintf(f, ", \"%s_minor_faults\": %.0f", keys[t],
                                        res->median_faults[t]);
                        if (t != T_LIVE_WALL && timer_ok(&timers[TIMER_BASELINE]))
                                fprintf(f, ", \"%s_ratio_libev\": %.4f", keys[t],
                                        res->median[t] / timers[TIMER_BASELINE].median[t]);
                }
                fprintf(f, "}");
        }
        fprintf(f, "\n  ]}\n}\n");
}
