/*
 * engine-bench-facts.c - machine facts printed with (and stored in) every run: kernel,
 * CPUs, load average, fd limit (raised here), engine features, library versions.
 */

#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "engine-bench.h"
#include "macro.h"

/* machine facts */

/* The 1-minute load average: the bench shares 2 CPUs with whatever else runs. */
double loadavg(void) {
        double l = -1;
        FILE *f = fopen("/proc/loadavg", "re");

        if (f) {
                if (fscanf(f, "%lf", &l) != 1)
                        l = -1;
                (void)fclose(f);
        }
        return l;
}

int raise_nofile(Facts *f) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return -errno;
        if (rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                        return -errno;
        }
        f->nofile_soft = rl.rlim_cur;
        f->nofile_hard = rl.rlim_max;
        return 0;
}

void facts_collect(Facts *f) {
        struct utsname u;
        FILE *cpuinfo;
        char line[256];
        size_t len = 0;

        if (uname(&u) == 0)
                (void)snprintf(f->kernel, sizeof(f->kernel), "%s %s %s", u.sysname, u.release,
                               u.machine);
        f->cpus = sysconf(_SC_NPROCESSORS_ONLN);
        (void)snprintf(f->cpu_model, sizeof(f->cpu_model), "unknown");
        cpuinfo = fopen("/proc/cpuinfo", "re");
        if (cpuinfo) {
                while (fgets(line, sizeof(line), cpuinfo)) {
                        char *colon = strchr(line, ':');

                        if (strncmp(line, "model name", 10) != 0 || !colon)
                                continue;
                        colon += strspn(colon + 1, " \t") + 1;
                        colon[strcspn(colon, "\n")] = '\0';
                        (void)snprintf(f->cpu_model, sizeof(f->cpu_model), "%s", colon);
                        break;
                }
                (void)fclose(cpuinfo);
        }
        f->load_start = loadavg();
        f->features_r = bench_engine_facts(f->features, sizeof(f->features));
        for (size_t i = 0; i < IO_N && len < sizeof(f->versions); i++) {
                const char *v = io_contenders[i]->version ? io_contenders[i]->version() : NULL;

                if (!v || strstr(f->versions, v))
                        continue;
                len += (size_t)snprintf(f->versions + len, sizeof(f->versions) - len, "%s%s",
                                        len ? ", " : "", v);
        }
}

void facts_print(const Facts *f) {
        printf("engine-bench: kernel %s, %ld CPUs (%s), RLIMIT_NOFILE %llu/%llu\n", f->kernel,
               f->cpus, f->cpu_model, (unsigned long long)f->nofile_soft,
               (unsigned long long)f->nofile_hard);
        printf("  engine io_uring features: %s\n", f->features);
        printf("  libraries: %s\n", f->versions);
        if (arg_cpu >= 0)
                printf("  pinned to CPU %d", arg_cpu);
        else
                printf("  not pinned");
        printf(", load average %.2f at start\n", f->load_start);
}
