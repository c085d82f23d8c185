/* engine-signal.c - signal sources over one signalfd
 *
 * Each signal has at most one source; the engine's signalfd carries the mask of all of them,
 * and a signal is blocked only once the signalfd covers it, so no instance is delivered the
 * old way. Detaching swallows a pending instance before unblocking it.
 */

#include "engine-internal.h"

#include <errno.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"

static int signal_cb(EngineSource *source, int fd, uint32_t revents, void *userdata) {
        Engine *e = userdata;
        struct signalfd_siginfo si;

        while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                EngineSource *s;
                int r;

                if (si.ssi_signo >= _NSIG || !(s = e->signal_sources[si.ssi_signo]))
                        continue;
                engine_source_ref(s);
                if (!s->dead && s->enabled) {
                        r = s->signal.cb(s, &si, s->userdata);
                        if (r < 0)
                                engine_fail(e, r);
                }
                engine_source_unref(s);
        }
        return 0;
}

int engine_add_signal(Engine *e, EngineSource **ret, int signo, engine_signal_cb cb, void *userdata) {
        sigset_t one;
        EngineSource *s;
        int fd, r;

        if (!e || !cb || signo <= 0 || signo >= _NSIG || signo == SIGKILL || signo == SIGSTOP)
                return -EINVAL;
        if (e->signal_sources[signo])
                return -EEXIST;
        s = engine_source_alloc(e, SOURCE_SIGNAL);
        if (!s)
                return -ENOMEM;
        sigemptyset(&one);
        sigaddset(&one, signo);
        sigaddset(&e->signal_mask, signo);
        fd = signalfd(e->signal_fd, &e->signal_mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                goto fail;
        }
        if (e->signal_fd < 0) {
                r = engine_add_io(e, &e->signal_source, fd, ENGINE_IN, ENGINE_EDGE, signal_cb, e);
                if (r < 0) {
                        (void)safe_close(fd);
                        goto fail;
                }
                e->stats.io_sources--; /* internal */
                e->signal_fd = fd;
        }
        /* Block after the signalfd exists, so no instance is delivered the old way. */
        if (sigprocmask(SIG_BLOCK, &one, NULL) < 0) {
                r = -errno;
                goto fail;
        }
        s->userdata = userdata;
        s->signal.cb = cb;
        s->signal.signo = signo;
        s->enabled = true;
        e->signal_sources[signo] = s;
        if (ret)
                *ret = s;
        return 0;
fail:
        sigdelset(&e->signal_mask, signo);
        if (e->signal_fd >= 0)
                (void)signalfd(e->signal_fd, &e->signal_mask, SFD_NONBLOCK | SFD_CLOEXEC);
        s->dead = true;
        engine_source_unref(s);
        return r;
}

void engine_signal_detach(Engine *e, EngineSource *s) {
        int signo = s->signal.signo;
        struct timespec zero = { 0 };
        sigset_t one;

        e->signal_sources[signo] = NULL;
        sigdelset(&e->signal_mask, signo);
        if (e->signal_fd >= 0)
                (void)signalfd(e->signal_fd, &e->signal_mask, SFD_NONBLOCK | SFD_CLOEXEC);
        /* Swallow an instance still pending, or unblocking would deliver it with its default
         * action (which, for most signals, kills the process). */
        sigemptyset(&one);
        sigaddset(&one, signo);
        while (sigtimedwait(&one, NULL, &zero) == signo)
                ;
        (void)sigprocmask(SIG_UNBLOCK, &one, NULL);
}
