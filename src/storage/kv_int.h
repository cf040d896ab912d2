/*
 * kv_int.h -- private structures of the storage engine, shared by kv.c
 * (open, recovery, write path, reads), kv_iter.c (the database iterator)
 * and compaction.c (flush and compaction).  No other module includes it.
 *
 * Locking (lock order: man_mu before mu; cmp_mu before man_mu):
 *   mu      guards the writer queue, mem/imm lists, the current version
 *           pointer, snapshots, counters, the sticky error and bg state.
 *   man_mu  serialises version installs (compute edit -> write MANIFEST ->
 *           install), so `current` only changes under man_mu + mu.
 *   cmp_mu  serialises compactions (background and kv_compact_range).
 * Memtables are written by the group-commit leader only (outside mu) and
 * read lock-free.  Versions, file metadata, memtables and SSTable readers
 * are reference-counted; readers pin what they use under mu and then read
 * without any lock.
 */
#ifndef DM_STORAGE_KV_INT_H
#define DM_STORAGE_KV_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "storage/kv.h"
#include "storage/manifest.h"
#include "storage/memtable.h"
#include "storage/sstable.h"
#include "storage/wal.h"

/* One live SSTable. */
typedef struct kv_file {
    _Atomic int refs;
    uint64_t number;
    uint64_t size;
    uint64_t n_entries;
    int level;             /* level it was installed at */
    buf smallest, largest; /* internal keys */
    sst_reader *reader;
    struct kv_db *db;      /* for obsolete-file deletion */
} kv_file;

/* An immutable set of live files, one array per level; L0 newest first,
 * levels >= 1 sorted by smallest key and non-overlapping. */
typedef struct kv_version {
    _Atomic int refs;
    size_t n[KV_MAX_LEVELS];
    kv_file **files[KV_MAX_LEVELS];
} kv_version;

/* What a reader needs, pinned with one reference: the active memtable,
 * the immutable ones (newest first) and the current version.  Rebuilt
 * under mu whenever any of them changes. */
typedef struct kv_super {
    _Atomic int refs;
    mt_table *mem;
    size_t n_imm;
    mt_table **imm;
    struct kv_version *version;
} kv_super;

/* A memtable and the WAL file its first record came from. */
typedef struct kv_mem {
    mt_table *table;
    uint64_t log_number;
    struct kv_mem *next; /* imm list: oldest first */
} kv_mem;

struct kv_snapshot {
    uint64_t seq;
    struct kv_snapshot *prev, *next;
};

struct kv_batch {
    buf rep;        /* count u32 then entries: docs/format.md "Write batch" */
    uint32_t count;
    uint64_t user_bytes;
};

typedef struct kv_writer {
    const kv_batch *batch;
    int sync;
    int rc;
    bool is_done;
    pthread_cond_t cv;
    struct kv_writer *next;
} kv_writer;

/* A change to the live file set, applied to `current` at install time. */
typedef struct kv_edit_entry {
    kv_file *file; /* an owned reference */
    int level;
} kv_edit_entry;

typedef struct kv_edit {
    size_t n_add, cap_add;
    kv_edit_entry *add;
    size_t n_del, cap_del;
    uint64_t *del;       /* file numbers */
    bool has_log_number;
    uint64_t log_number;
    bool has_flushed_seq;
    uint64_t flushed_seq;
} kv_edit;

struct kv_db {
    char *dir;
    char *canon_dir;      /* realpath of dir, for the open-directory table */
    bool is_dir_claimed;
    kv_options opt;
    vfs *vfs;
    vfs_file *lock;
    sst_cache *cache;
    _Atomic uint16_t page_clock; /* every table's (kv_tick_page_clock) */

    pthread_mutex_t mu;
    pthread_cond_t bg_cv;      /* background work available / state change */
    pthread_cond_t bg_done_cv; /* a flush or compaction finished */
    pthread_mutex_t man_mu;
    pthread_mutex_t cmp_mu;

    /* write path */
    kv_writer *wq_head, *wq_tail;
    wal_writer *wal;
    uint64_t wal_number;
    uint64_t last_sync_us;
    kv_mem *mem;
    kv_mem *imm_head, *imm_tail;
    int n_imm;
    _Atomic uint64_t last_seq; /* visible to readers */

    /* files */
    kv_version *current;
    kv_super *super;      /* guarded by mu; rebuilt by kv_super_rebuild */
    uint64_t next_file;
    uint64_t log_number;  /* in the MANIFEST */
    uint64_t flushed_seq; /* MANIFEST last_seq */
    uint64_t *live_wals;  /* WAL numbers not yet deleted, ascending */
    size_t n_live_wals, cap_live_wals;
    /* Obsolete files waiting to be deleted (kv_reap): a table whose last
     * reference dropped, a log every memtable of which was flushed.  An
     * unlink of a large file takes milliseconds (the file system frees
     * its blocks and cached pages), so it is done by the flush and
     * compaction threads after an install, never under mu and never by a
     * reader that happened to drop a table's last reference. */
    pthread_mutex_t doom_mu;
    struct kv_doomed {
        uint64_t number;
        int type;         /* FN_SST or FN_WAL */
    } *doom;
    size_t n_doom, cap_doom;
    buf compact_ptr[KV_MAX_LEVELS]; /* round-robin position per level */

    kv_snapshot snap_list; /* sentinel of a circular list, oldest first */

    /* background */
    pthread_t flush_thread, cmp_thread;
    bool has_threads;
    bool is_closing;
    bool is_flushing;
    bool is_compacting;      /* the compaction thread is running one */
    int bg_error;            /* sticky */
    _Atomic bool is_shutdown_keep_files; /* close: never unlink */
    int manual_compactions;  /* running kv_compact_range calls */

    kv_stats st;
};

/* ---- kv.c ---- */
void kv_file_ref(kv_file *f);
void kv_file_unref(kv_file *f);
void kv_version_ref(kv_version *v);
void kv_version_unref(kv_version *v);
/* kv_set_bg_error -- REQUIRES mu held; records the first error. */
void kv_set_bg_error(kv_db *db, int rc);
/* kv_install -- applies edit to current, writes the MANIFEST, installs the
 * result.  REQUIRES: man_mu held, mu NOT held.  Consumes edit->add refs on
 * success and failure. */
int kv_install(kv_db *db, kv_edit *edit);
void kv_edit_fini(kv_edit *e);
int kv_edit_add(kv_edit *e, kv_file *f, int level);
int kv_edit_del(kv_edit *e, uint64_t number);
/* kv_file_new -- wraps a finished table: opens its reader. */
int kv_file_new(kv_db *db, uint64_t number, int level, const sst_info *info,
                kv_file **out);
/* kv_reap -- deletes the obsolete files queued so far (none while
 * is_shutdown_keep_files is set).  REQUIRES: mu NOT held. */
void kv_reap(kv_db *db);
/* kv_reap_pending -- whether files wait for kv_reap.  Any lock state. */
bool kv_reap_pending(kv_db *db);

/* kv_super_rebuild -- REQUIRES mu.  DM_OK or DM_ENOMEM (old one kept). */
int kv_super_rebuild(kv_db *db);
void kv_super_unref(kv_super *sv);
/* kv_smallest_snapshot -- REQUIRES mu. */
uint64_t kv_smallest_snapshot(kv_db *db);
/* kv_version_get -- point lookup through a version's files; pins (may be
 * NULL) as in sst_reader_get_pinned. */
int kv_version_get(kv_db *db, kv_version *v, sst_pins *pins, buf_slice key, uint64_t seq,
                   buf *value, bool *is_found);

/* ---- compaction.c ---- */
/* Background thread bodies. */
void *cpt_flush_main(void *arg);
void *cpt_compact_main(void *arg);
/* cpt_needs_compaction -- REQUIRES mu. */
bool cpt_needs_compaction(kv_db *db);
/* cpt_compact_range -- the work of kv_compact_range after its flush. */
int cpt_compact_range(kv_db *db, const buf_slice *begin, const buf_slice *end);
/* cpt_max_bytes_for_level -- size target of level >= 1. */
uint64_t cpt_max_bytes_for_level(const kv_db *db, int level);

/* ---- kv_iter.c ---- */
/* kv_level_iter_new -- concatenating iterator over a sorted, non-overlapping
 * file array (holds a version reference). */
iter *kv_level_iter_new(kv_version *v, int level);
/* kv_db_iter_new -- user-key iterator over an internal iterator at seq;
 * takes ownership of internal. */
iter *kv_db_iter_new(iter *internal, uint64_t seq);

#endif
