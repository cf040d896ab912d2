/*
 * filename.h -- names of the files in a database directory
 * (docs/format.md "Directory layout").
 *
 *   LOCK            advisory lock held while a process has the db open
 *   MANIFEST        the live file set (replaced atomically)
 *   MANIFEST.tmp    a MANIFEST being written (ignored and removed at open)
 *   NNNNNN.wal      write-ahead log number N (decimal, at least 6 digits)
 *   NNNNNN.sst      SSTable number N
 *   NNNNNN.sst.tmp  never used: SSTables are written under their final
 *                   name and only become live through the MANIFEST
 *
 * File numbers come from one counter (MANIFEST next_file), so a number is
 * never reused.
 */
#ifndef DM_STORAGE_FILENAME_H
#define DM_STORAGE_FILENAME_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FN_LOCK "LOCK"
#define FN_MANIFEST "MANIFEST"
#define FN_PATH_MAX 4096

enum fn_kind { FN_OTHER = 0, FN_WAL, FN_SST };

/* fn_make -- "dir/NNNNNN.ext" into out (FN_PATH_MAX bytes). */
static inline void fn_make(char *out, const char *dir, uint64_t number,
                           enum fn_kind kind)
{
    snprintf(out, FN_PATH_MAX, "%s/%06llu.%s", dir, (unsigned long long)number,
             kind == FN_WAL ? "wal" : "sst");
}

/* fn_parse -- recognises "NNNNNN.wal" / "NNNNNN.sst"; FN_OTHER otherwise. */
static inline enum fn_kind fn_parse(const char *name, uint64_t *number)
{
    char *end = NULL;
    if (name[0] < '0' || name[0] > '9')
        return FN_OTHER;
    unsigned long long n = strtoull(name, &end, 10);
    if (!end || end == name)
        return FN_OTHER;
    *number = n;
    if (!strcmp(end, ".wal"))
        return FN_WAL;
    if (!strcmp(end, ".sst"))
        return FN_SST;
    return FN_OTHER;
}

#endif
