/*
 * err.c -- error names, messages and the per-thread detail string.
 *
 * The code list lives in include/deltamemory.h (DM_ERRNO_MAP); this file
 * turns it into dm_strerror() / dm_errname().  Detail messages are kept
 * per thread so that concurrent callers never see each other's text.
 */
#include "base/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_msg[256];

const char *dm_strerror(int code)
{
    switch (code) {
#define X(name, val, msg) case val: return msg;
        DM_ERRNO_MAP(X)
#undef X
    }
    return "unknown error";
}

const char *dm_errname(int code)
{
    switch (code) {
#define X(name, val, msg) case val: return "DM_" #name;
        DM_ERRNO_MAP(X)
#undef X
    }
    return "DM_EUNKNOWN";
}

const char *dm_version(void)
{
    return DM_VERSION_STRING;
}

int err_set_msg(int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_msg, sizeof last_msg, fmt, ap);
    va_end(ap);
    return rc;
}

const char *err_last_msg(void)
{
    return last_msg;
}

int err_from_errno(int e)
{
    switch (e) {
    case 0: return DM_OK;
    case ENOSPC:
#ifdef EDQUOT
    case EDQUOT:
#endif
        return DM_ENOSPC;
    case ENOMEM: return DM_ENOMEM;
    case ENOENT: return DM_ENOTFOUND;
    case EEXIST: return DM_EEXISTS;
    default: return DM_EIO;
    }
}
