/*
 * err.h -- the engine's error codes.
 *
 * One X-macro list generates the internal enum, dm_strerror() and
 * dm_errname().  Fallible functions return int: DM_OK (0) or a negative
 * DM_E* code.  The public header repeats the same numbers; a static assert
 * in err.c keeps them in step.
 */
#ifndef DM_BASE_ERR_H
#define DM_BASE_ERR_H

#include "deltamemory.h"

/*
 * err_set_msg -- remember a human-readable detail for the calling thread.
 * The message is copied into a thread-local buffer (truncated at 255 bytes)
 * and returned by err_last_msg() until the next err_set_msg() on the same
 * thread.  Returns rc so callers can write `return err_set_msg(rc, ...)`.
 * Thread-safe (thread-local).
 */
int err_set_msg(int rc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* err_last_msg -- the calling thread's last detail; never NULL. */
const char *err_last_msg(void);

/* err_from_errno -- map an errno value to a DM_E* code (ENOSPC ->
 * DM_ENOSPC, ENOMEM -> DM_ENOMEM, ENOENT -> DM_ENOTFOUND, EEXIST ->
 * DM_EEXISTS, everything else -> DM_EIO). */
int err_from_errno(int e);

#endif
