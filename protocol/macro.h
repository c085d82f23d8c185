#pragma once
/* macro.h - cleanup attributes and ownership hand-off helpers shared by every evd target */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _likely_(x) __builtin_expect(!!(x), 1)
#define _unlikely_(x) __builtin_expect(!!(x), 0)

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - __builtin_offsetof(type, member)))

/* Hand ownership out of a cleanup-guarded variable: the guard sees NULL / -1. */
#define TAKE_PTR(p)                              \
        __extension__({                                       \
                __typeof__(p) *_pp = &(p);       \
                __typeof__(p) _p = *_pp;         \
                *_pp = NULL;                     \
                _p;                              \
        })
#define TAKE_FD(fd)                              \
        __extension__({                                       \
                int *_pfd = &(fd);               \
                int _fd = *_pfd;                 \
                *_pfd = -1;                      \
                _fd;                             \
        })

/* close() that keeps errno and ignores EBADF-free fds below zero; returns -1 for assignment. */
static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                (void)close(fd);
                errno = saved;
        }
        return -1;
}

static inline void closep(int *fd) {
        (void)safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

static inline void freep(void *p) {
        free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline void fclosep(FILE **f) {
        if (*f)
                (void)fclose(*f);
}

/* Define foo_freep() for a foo_free() that returns NULL, for use with _cleanup_(). */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)  \
        static inline void func##p(type *p) {    \
                if (*p)                          \
                        (void)func(*p);          \
        }

/* Negative errno from the last libc failure, never 0 (guards a libc that forgot errno). */
static inline int negative_errno(void) {
        return errno > 0 ? -errno : -EIO;
}
