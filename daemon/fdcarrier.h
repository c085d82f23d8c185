#pragma once
/* fdcarrier.h - many fds, each with the number it had, through one socket: how a restart
 * through systemd's fd store carries the daemon's connections and watched fds
 *
 * systemd's store is the wrong tool for thousands of fds: every FDSTORE=1 fd is compared
 * with every fd already stored (same_fd(), a kcmp() each: quadratic), an fd that shares
 * its open file with a stored one is silently dropped, and one FDNAME= covers all the fds of
 * a message, so a name cannot say which fd is which. Instead the fds are queued, in
 * messages of at most SCM_MAX_FD, on a stream socket pair; the store keeps the reading end
 * (one fd), and the kernel keeps the queued fds open, in order, for as long as that end
 * lives. A stop that is not a restart closes it, and with it every queued fd.
 */

#include <stddef.h>

#include "fdset.h"

/* The kernel's per-message limit on SCM_RIGHTS fds (SCM_MAX_FD). */
#define FDCARRIER_CHUNK 253

/** fdcarrier_new() - a carrier for at least @n fds: *@ret_write (send into it) and
 * *@ret_read (what the next process reads), both close-on-exec. Return: 0 or -errno. */
int fdcarrier_new(size_t n, int *ret_write, int *ret_read);
/** fdcarrier_send() - queue @fds (borrowed: the caller's stay open), in order, each with
 * its number (the fd itself). Never blocks. Return: 0, -EAGAIN (the socket buffer is too
 * small for this many: net.core.wmem_max), -ETOOMANYREFS (over the fds a user may have in
 * flight), -errno. */
int fdcarrier_send(int write_fd, const int *fds, size_t n);
/** fdcarrier_receive() - read every fd queued on @read_fd (borrowed; the writer must have
 * closed its end) into @ret (as fdset_add_as(): by their numbers). On error every fd that
 * arrived is closed and @ret is empty. Return: how many, -EBADMSG (not a carrier, cut
 * short, a number twice), -errno. */
int fdcarrier_receive(int read_fd, FdSet *ret);
