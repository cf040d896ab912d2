/*
 * manifest.h -- the MANIFEST: which SSTables are live, at which level, and
 * the counters recovery needs.  The whole state is rewritten on every
 * change and committed atomically (temp file -> sync -> rename -> sync
 * directory), so there is never a partial manifest to repair.  Format:
 * docs/format.md "MANIFEST".
 */
#ifndef DM_STORAGE_MANIFEST_H
#define DM_STORAGE_MANIFEST_H

#include <stdint.h>

#include "base/buf.h"
#include "os/vfs.h"

typedef struct man_file {
    uint32_t level;
    uint64_t number;    /* file number: NNNNNN.sst */
    uint64_t size;      /* bytes */
    uint64_t n_entries;
    buf smallest;       /* smallest internal key (owned) */
    buf largest;        /* largest internal key (owned) */
} man_file;

typedef struct man_state {
    uint64_t next_file;  /* next unused file number */
    uint64_t last_seq;   /* every sequence number <= this is in the SSTables
                            listed or in a live WAL */
    uint64_t log_number; /* WAL files with number >= this are live */
    uint32_t n_files;
    man_file *files;     /* owned; n_files entries */
} man_state;

/* man_state_fini -- frees the files array and its keys; leaves zeros. */
void man_state_fini(man_state *s);

/* man_encode -- appends the encoding of s to out.  DM_OK or DM_ENOMEM. */
int man_encode(const man_state *s, buf *out);

/*
 * man_decode -- parses a MANIFEST image into *s (zeroed first; caller
 * frees with man_state_fini).  DM_ECORRUPT (err_last_msg: offset and what
 * is wrong, prefixed with `path` when not NULL), DM_EVERSION, DM_ENOMEM.
 */
int man_decode(buf_slice data, const char *path, man_state *s);

/* man_write -- encodes s and commits it as dir/MANIFEST atomically. */
int man_write(vfs *v, const char *dir, const man_state *s);

/* man_read -- reads and decodes dir/MANIFEST.  DM_ENOTFOUND when there
 * is none; otherwise as man_decode, or DM_EIO. */
int man_read(vfs *v, const char *dir, man_state *s);

#endif
