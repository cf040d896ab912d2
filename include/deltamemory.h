/*
 * deltamemory.h -- the DeltaMemory public API.
 *
 * This is the only installed header.  Every exported symbol starts with
 * dm_ and every constant with DM_.  Functions that can fail return int:
 * DM_OK (0) on success or one of the negative DM_E* codes below.
 *
 * The memory API (dm_open, dm_add, dm_search, ...) is built on top of the
 * storage engine in src/storage; this header currently exposes the error
 * model and version information that every later surface shares.
 */
#ifndef DELTAMEMORY_H
#define DELTAMEMORY_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(DM_BUILDING_LIBRARY)
#define DM_API __attribute__((visibility("default")))
#else
#define DM_API
#endif

#define DM_VERSION_MAJOR 0
#define DM_VERSION_MINOR 1
#define DM_VERSION_PATCH 0
#define DM_VERSION_STRING "0.1.0"

/*
 * The error list: name, value, message.  Values are stable and part of the
 * ABI; new codes are only ever appended.
 */
#define DM_ERRNO_MAP(X)                                                        \
    X(OK, 0, "success")                                                        \
    X(ENOTFOUND, -1, "not found")                                              \
    X(EEXISTS, -2, "already exists")                                           \
    X(EINVAL, -3, "invalid argument")                                          \
    X(ENOMEM, -4, "out of memory")                                             \
    X(EIO, -5, "input/output error")                                           \
    X(ENOSPC, -6, "no space left on device")                                   \
    X(ECORRUPT, -7, "data is corrupt")                                         \
    X(EBUSY, -8, "resource busy")                                              \
    X(ECLOSED, -9, "handle is closed")                                         \
    X(ETOOBIG, -10, "value too large")                                         \
    X(ECANCELED, -11, "operation canceled")                                    \
    X(EVERSION, -12, "unsupported format version")

#define DM_ERR_ENUM_(name, val, msg) DM_##name = val,
enum dm_error_code { DM_ERRNO_MAP(DM_ERR_ENUM_) };
#undef DM_ERR_ENUM_

/*
 * dm_strerror -- a static English description of an error code.
 * Returns a pointer to static storage; never NULL ("unknown error" for a
 * code not in the list).  Thread-safe.
 */
DM_API const char *dm_strerror(int code);

/*
 * dm_errname -- the symbolic name of an error code, e.g. "DM_ECORRUPT".
 * Returns static storage; never NULL ("DM_EUNKNOWN" for unknown codes).
 * Thread-safe.
 */
DM_API const char *dm_errname(int code);

/*
 * dm_version -- the library version as "MAJOR.MINOR.PATCH".
 * Returns static storage.  Thread-safe.
 */
DM_API const char *dm_version(void);

#ifdef __cplusplus
}
#endif
#endif
