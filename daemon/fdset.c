/* fdset.c - the fds a process found open at start, and how many it has open now
 *
 * Both questions are answered from the fd table itself, never from bookkeeping: the
 * libraries evd uses open fds of their own (the journal's socket, sd_notify()'s), and
 * what a process inherited is by definition unknown to it.
 */

#include "fdset.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "macro.h"

#define FDSET_PROBE_CHUNK 1024

static int grow(FdSet *s, int number) {
        int size = MAX(number + 1, s->size * 2);
        size_t words = ((size_t)size + 63) / 64, old = ((size_t)s->size + 63) / 64;
        uint64_t *bits = realloc(s->bits, words * sizeof(*bits));

        if (!bits)
                return -ENOMEM;
        for (size_t i = old; i < words; i++)
                bits[i] = 0;
        s->bits = bits;
        if (s->map) {
                int *map = realloc(s->map, words * 64 * sizeof(*map));

                if (!map)
                        return -ENOMEM;
                for (size_t i = (size_t)s->size; i < words * 64; i++)
                        map[i] = -1;
                s->map = map;
        }
        s->size = (int)(words * 64);
        return 0;
}

int fdset_add(FdSet *s, int fd) {
        int r;

        if (fd >= s->size && (r = grow(s, fd)) < 0)
                return r;
        if (!fdset_has(s, fd)) {
                s->bits[fd / 64] |= UINT64_C(1) << (fd % 64);
                s->count++;
        }
        return 0;
}

int fdset_add_as(FdSet *s, int number, int fd) {
        int r;

        if (!s->map) {
                if (s->count > 0)
                        return -EINVAL; /* a set of plain fds */
                free(s->bits);
                *s = (FdSet){ .map = malloc(sizeof(int)) };
                if (!s->map)
                        return -ENOMEM;
        }
        if (number >= s->size && (r = grow(s, number)) < 0)
                return r;
        if (fdset_has(s, number))
                return -EEXIST;
        s->bits[number / 64] |= UINT64_C(1) << (number % 64);
        s->map[number] = fd;
        s->count++;
        return 0;
}

/* The size of this process's fd table (every open fd is below it), from /proc/self/status;
 * the fd limit where that cannot be read. */
static int fd_table_size(void) {
        FILE *f = fopen("/proc/self/status", "re");
        char line[256];
        long size = -1;
        struct rlimit rl;

        while (f && size < 0 && fgets(line, sizeof(line), f))
                if (strncmp(line, "FDSize:", 7) == 0)
                        size = strtol(line + 7, NULL, 10);
        if (f)
                (void)fclose(f);
        if (size > 0)
                return (int)MIN(size, (long)INT32_MAX);
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return 1024;
        return (int)MIN(rl.rlim_cur, (rlim_t)1 << 20);
}

/* Which of the numbers [@from, @from + @n) are open fds, in one poll() with timeout 0
 * (POLLNVAL: no fd there): a fifth of one fcntl() per number, 2 ms of a re-exec's start at
 * 10,000 fds. Each goes into @s (if not NULL) and is counted in *@n_open. */
static int probe(FdSet *s, int from, int n, unsigned *n_open) {
        struct pollfd p[FDSET_PROBE_CHUNK];
        int r;

        for (int i = 0; i < n; i++)
                p[i] = (struct pollfd){ .fd = from + i };
        while (poll(p, (nfds_t)n, 0) < 0) {
                if (errno == EINTR)
                        continue;
                /* EINVAL: @n above a tiny fd limit. Ask number by number. */
                for (int i = 0; i < n; i++)
                        p[i].revents = fcntl(from + i, F_GETFD) < 0 ? POLLNVAL : 0;
                break;
        }
        for (int i = 0; i < n; i++) {
                if (p[i].revents & POLLNVAL)
                        continue;
                (*n_open)++;
                if (s && (r = fdset_add(s, from + i)) < 0)
                        return r;
        }
        return 0;
}

/* Probing is cheaper than reading /proc/self/fd: a fresh process with 10,000 fds takes
 * 30 ms to list them (a dentry each). */
static int probe_table(FdSet *s, int from, unsigned *ret_open) {
        int size = fd_table_size(), r = 0;
        unsigned n = 0;

        for (int fd = from; fd < size && r >= 0; fd += FDSET_PROBE_CHUNK)
                r = probe(s, fd, MIN(FDSET_PROBE_CHUNK, size - fd), &n);
        if (r < 0)
                return r;
        *ret_open = n;
        return 0;
}

int fdset_collect(FdSet *s) {
        unsigned n;

        *s = (FdSet){ 0 };
        return probe_table(s, 3, &n);
}

int fdset_probe_open(FdCount *c, unsigned *ret) {
        uint64_t start = monotonic_ns();
        unsigned n;
        int r;

        if (c->at_ns && start - c->at_ns < 100 * c->cost_ns) {
                *ret = c->n;
                return 0;
        }
        r = probe_table(NULL, 0, &n);
        if (r < 0)
                return r;
        *c = (FdCount){ .at_ns = monotonic_ns(), .n = n };
        c->cost_ns = c->at_ns - start;
        *ret = n;
        return 0;
}

int fdset_count_open(FdCount *c, unsigned *ret) {
        struct stat st;

        /* Linux 6.2 and later report the number of open fds as the directory's size (a
         * popcount of the fd table's bitmap: microseconds at any count); before, it is 0. A
         * process that asks has at least one fd open, so 0 means "not told". */
        if (stat("/proc/self/fd", &st) == 0 && st.st_size > 0 && (uint64_t)st.st_size <= UINT_MAX) {
                *ret = (unsigned)st.st_size;
                return 0;
        }
        return fdset_probe_open(c, ret);
}

bool fdset_has(const FdSet *s, int number) {
        return number >= 0 && number < s->size && (s->bits[number / 64] >> (number % 64)) & 1;
}

bool fdset_claim(FdSet *s, int number) {
        if (!fdset_has(s, number))
                return false;
        s->bits[number / 64] &= ~(UINT64_C(1) << (number % 64));
        s->count--;
        return true;
}

int fdset_take(FdSet *s, int number) {
        if (!fdset_claim(s, number))
                return -1;
        return s->map ? s->map[number] : number;
}

unsigned fdset_close_rest(FdSet *s) {
        unsigned n = 0;

        for (int number = 0; number < s->size && s->count > 0; number++) {
                int fd = fdset_take(s, number);

                if (fd >= 0) {
                        (void)close(fd);
                        n++;
                }
        }
        return n;
}

void fdset_done(FdSet *s) {
        free(s->bits);
        free(s->map);
        *s = (FdSet){ 0 };
}
