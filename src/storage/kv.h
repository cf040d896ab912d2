/*
 * kv.h -- the storage engine: a sorted, durable key/value store (LSM tree).
 *
 * Writes go to the write-ahead log (group commit: concurrent writers share
 * one append and one sync) and then to the memtable; a full memtable becomes
 * immutable and a background thread writes it to an SSTable while writes
 * continue; a background compaction keeps the levels in shape and drops
 * deleted and overwritten data for good.  The set of live files is the
 * MANIFEST, replaced atomically.  Design: docs/design.md; formats:
 * docs/format.md.
 *
 * Thread safety: every function on a kv_db may be called from any number
 * of threads at once, except kv_close (no other call may be running or
 * start).  Iterators and batches are used by one thread at a time.
 *
 * Errors common to all calls: DM_EINVAL (bad argument), DM_ENOMEM.  After
 * a failed WAL write or sync, or a failed background flush/compaction
 * write, the database is in a failed state: every later write returns
 * that error (DM_EIO or DM_ENOSPC) until it is closed and reopened; a
 * failed sync is never retried.
 */
#ifndef DM_STORAGE_KV_H
#define DM_STORAGE_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "deltamemory.h"
#include "os/vfs.h"
#include "storage/iter.h"
#include "storage/sstable.h"

typedef struct kv_db kv_db;
typedef struct kv_batch kv_batch;
typedef struct kv_snapshot kv_snapshot;

enum kv_sync {
    KV_SYNC_NONE = 0,   /* acknowledged once in the OS page cache */
    KV_SYNC_BATCH = 1,  /* acknowledged after the next periodic sync, taken
                           at most every sync_interval_ms */
    KV_SYNC_ALWAYS = 2, /* acknowledged after a sync covering the write */
};

#define KV_MAX_LEVELS 7
#define KV_MAX_KEY_LEN (64u << 10)
#define KV_MAX_VALUE_LEN (16u << 20)

typedef struct kv_options {
    vfs *vfs;                   /* NULL = vfs_posix() */
    bool create_if_missing;     /* true */
    bool error_if_exists;       /* false */
    size_t write_buffer_size;   /* memtable size before a flush; 16 MB */
    int max_immutable;          /* full memtables waiting for flush before
                                   writers stall; 4 */
    int sync;                   /* default enum kv_sync; KV_SYNC_BATCH */
    int sync_interval_ms;       /* for KV_SYNC_BATCH; 10 */
    size_t block_cache_size;    /* bytes; 64 MB */
    sst_options table;          /* block size (4 KB), compression (LZ4),
                                   bloom bits (10) */
    int compaction_lz4_hc_level; /* with LZ4 tables: LZ4 HC level for
                                   compaction outputs (flushes always use
                                   the fast compressor); 0 = fast; 4 */
    int l0_compaction_trigger;  /* L0 files that start a compaction; 4 */
    int l0_stop_trigger;        /* L0 files at which writers stall; 20 */
    uint64_t level1_max_bytes;  /* size target of level 1; 64 MB; each
                                   further level is 10x larger */
    uint64_t target_file_size;  /* compaction output file size; 16 MB */
    bool disable_auto_compaction; /* only kv_compact_range compacts */
    bool paranoid_checks;       /* refuse to open when the WAL has damage in
                                   the middle (default false: skip it and
                                   report it in kv_stats) */
    bool pread_tables;          /* read tables with pread into the block
                                   cache instead of mapping them (default
                                   false; sst_reader_open_ex) */
} kv_options;

/* kv_options_default -- the defaults written above. */
kv_options kv_options_default(void);

typedef struct kv_write_options {
    int sync; /* enum kv_sync, or -1 for the database default */
} kv_write_options;

/*
 * kv_open -- opens (creating if allowed) the database in directory dir,
 * takes its lock file, reads the MANIFEST, replays the WAL files that are
 * still live and starts the background thread.  WAL damage in the middle
 * is skipped and reported (logged, and counted in kv_stats) unless
 * opt->paranoid_checks.  opt may be NULL for defaults.
 * Errors: DM_ENOTFOUND (missing and !create_if_missing), DM_EEXISTS,
 * DM_EBUSY (another process has it open), DM_ECORRUPT (MANIFEST or an
 * SSTable damaged; err_last_msg names the file and offset), DM_EVERSION,
 * DM_EIO, DM_ENOSPC, DM_ENOMEM.  *out is NULL on failure.
 */
int kv_open(const char *dir, const kv_options *opt, kv_db **out);

/*
 * kv_close -- waits for running background work, writes nothing new
 * (the WAL already holds every acknowledged write), frees everything.
 * Returns the database's sticky error if it had one, DM_OK otherwise.
 * kv_close(NULL) is DM_OK.  REQUIRES: no iterator or snapshot is alive and
 * no other call is running.
 */
int kv_close(kv_db *db);

/* kv_put / kv_delete -- single-entry writes (a batch of one).  wo may be
 * NULL.  Errors: DM_EINVAL (key empty or longer than KV_MAX_KEY_LEN,
 * value longer than KV_MAX_VALUE_LEN), DM_EIO, DM_ENOSPC, DM_ECLOSED. */
int kv_put(kv_db *db, const kv_write_options *wo, buf_slice key,
           buf_slice value);
int kv_delete(kv_db *db, const kv_write_options *wo, buf_slice key);

/*
 * kv_write -- applies a batch atomically: after a crash either all of it
 * or none of it is present.  The batch is not modified and may be reused.
 * Returns once the batch is durable per the sync policy and visible to
 * readers.
 */
int kv_write(kv_db *db, const kv_write_options *wo, const kv_batch *b);

/*
 * kv_get -- the value of key as of snap (NULL = latest).  On DM_OK the
 * value is copied into *value (cleared first).  DM_ENOTFOUND when absent
 * or deleted.  Errors: DM_ECORRUPT, DM_EIO.
 */
int kv_get(kv_db *db, const kv_snapshot *snap, buf_slice key, buf *value);

/*
 * A read view: the engine's state as of kv_view_open, pinned (memtables and
 * files stay alive) until kv_view_close.  kv_view_get is kv_get in it,
 * without the lock kv_get takes on every call to pin the current state:
 * for a burst of reads by one thread (a search reads its candidates'
 * records) that would otherwise contend with every other reader.  It also
 * keeps the last 16 cached blocks its gets read referenced, so that gets
 * near each other (one user's records) reach the shared block cache, and
 * its locks, once per block.  Keep a view short-lived: it holds memory,
 * files that compactions replaced and blocks the cache cannot evict.
 * A view is used by one thread at a time; it must be closed before
 * kv_close.  Errors: as kv_get; kv_view_open DM_ENOMEM.
 */
typedef struct kv_view kv_view;
int kv_view_open(kv_db *db, kv_view **out);
int kv_view_get(kv_view *v, buf_slice key, buf *value);
void kv_view_close(kv_view *v);

/*
 * kv_iter_new -- an iterator over user keys as of snap (NULL = a snapshot
 * taken now), forward and reverse, with seek.  Keys and values are
 * borrowed (iter.h).  Holds the data it reads alive until freed with
 * iter_free; must be freed before kv_close.
 */
int kv_iter_new(kv_db *db, const kv_snapshot *snap, iter **out);

/* kv_snapshot_new -- a consistent read view as of now; release it with
 * kv_snapshot_release before kv_close.  NULL when out of memory. */
const kv_snapshot *kv_snapshot_new(kv_db *db);
void kv_snapshot_release(kv_db *db, const kv_snapshot *snap);
uint64_t kv_snapshot_seq(const kv_snapshot *snap);

/* kv_flush -- makes the current memtable immutable and waits until every
 * immutable memtable is written to an SSTable. */
int kv_flush(kv_db *db);

/*
 * kv_compact_range -- flushes, then compacts every file overlapping
 * [begin, end] (NULL = unbounded) down to the bottom level, dropping
 * overwritten and deleted entries that no snapshot can see; waits until
 * done.
 */
int kv_compact_range(kv_db *db, const buf_slice *begin, const buf_slice *end);

/*
 * Mapped table pages.  Every table notes in each data block when its
 * mapped bytes were last read, by a page clock of the database's
 * (sst_reader_page_ages), which kv_tick_page_clock advances: the owner
 * ticks it about once a second.  Thread-safe.
 */
void kv_tick_page_clock(kv_db *db);

/*
 * kv_drop_table_pages -- gives back resident pages of the current tables'
 * mappings (sst_reader_drop_pages): those of the blocks read longest ago,
 * at least `bytes` of them as far as the page clock tells (UINT64_MAX:
 * all), with those of the blocks not known to be mapped between them
 * (which a read of a neighbouring page can map again).  The process's
 * resident set shrinks by them; the data stays in the files (and in the
 * page cache while the kernel keeps it there), and reads go on: a page
 * read again is mapped again.  Does nothing with pread_tables.  Counted in
 * kv_stats.n_page_drops.  Errors: the first table's error (the others are
 * still dropped).  Thread-safe.
 */
int kv_drop_table_pages(kv_db *db, uint64_t bytes);

typedef struct kv_level_stats {
    uint64_t files;
    uint64_t bytes;
} kv_level_stats;

/* WAL sync times are counted in KV_SYNC_BUCKETS buckets: bucket i < last
 * holds the syncs that took at most kv_sync_bucket_us[i] microseconds (and
 * more than the bound before it); the last holds the rest. */
#define KV_SYNC_BUCKETS DM_WAL_SYNC_BUCKETS /* dm_stats passes them on */
extern const uint32_t kv_sync_bucket_us[KV_SYNC_BUCKETS - 1];

typedef struct kv_stats {
    kv_level_stats levels[KV_MAX_LEVELS];
    uint64_t memtable_bytes;      /* active + immutable memtables */
    uint64_t n_immutable;
    uint64_t last_seq;
    uint64_t user_bytes_written;  /* key + value bytes of all writes */
    uint64_t wal_bytes_written;   /* since open */
    uint64_t flush_bytes_written; /* SSTable bytes written by flushes */
    uint64_t compact_bytes_read;
    uint64_t compact_bytes_written;
    double write_amplification;   /* (wal + flush + compaction bytes) /
                                     user bytes; 0 before any write */
    uint64_t n_flushes;
    uint64_t n_compactions;
    uint64_t n_syncs;             /* WAL syncs since open */
    uint64_t sync_us;             /* time they took, in all */
    uint64_t sync_buckets[KV_SYNC_BUCKETS]; /* ... counted by duration */
    uint64_t n_group_commits;     /* WAL appends (each may carry many
                                     writers' batches) */
    uint64_t n_writes;            /* kv_write calls */
    uint64_t n_stalls;            /* times the writers waited for a flush or
                                     an L0 compaction (make room) */
    uint64_t stall_us;            /* time they waited, in all */
    uint64_t table_bytes;         /* heap the current tables' readers hold:
                                     decoded index blocks, filters read
                                     out of their files
                                     (sst_reader_memsize) */
    uint64_t cache_bytes;         /* block cache: bytes held now */
    uint64_t cache_hits;          /* block lookups that found the block */
    uint64_t cache_misses;        /* ... that read it from its table */
    uint64_t n_page_drops;        /* kv_drop_table_pages calls */
    /* what recovery found at open */
    uint64_t recovered_records;
    uint64_t recovered_wal_files;
    uint64_t recovery_damaged;        /* damaged WAL regions skipped */
    uint64_t recovery_damaged_bytes;
    uint64_t recovery_tail_bytes;     /* torn-tail bytes dropped */
    uint64_t recovery_us;             /* time spent replaying */
    int background_error;             /* sticky error, DM_OK if none */
    bool is_background_busy;          /* a flush or compaction is running
                                         or due */
} kv_stats;

int kv_stats_get(kv_db *db, kv_stats *out);

/* ------------------------------------------------------------- batches */

/* kv_batch_new -- an empty batch.  NULL when out of memory.  Free with
 * kv_batch_free (NULL does nothing). */
kv_batch *kv_batch_new(void);
void kv_batch_free(kv_batch *b);
void kv_batch_clear(kv_batch *b);
/* Append a put or delete; keys/values are copied.  Same limits as kv_put.
 * DM_OK, DM_EINVAL or DM_ENOMEM (batch unchanged). */
int kv_batch_put(kv_batch *b, buf_slice key, buf_slice value);
int kv_batch_delete(kv_batch *b, buf_slice key);
uint32_t kv_batch_count(const kv_batch *b);
/* Approximate encoded size in bytes. */
size_t kv_batch_size(const kv_batch *b);
/*
 * kv_batch_validate -- whether rep is a well-formed encoded batch
 * (docs/format.md "Write batch"): DM_OK with *count set, or DM_ECORRUPT.
 * Used on WAL payloads by recovery and by kv_check.  Thread-safe.
 */
int kv_batch_validate(buf_slice rep, uint32_t *count);

/* --------------------------------------------------- offline checking */

/* Called by kv_check for each problem found. */
typedef void (*kv_check_fn)(void *arg, const char *file, uint64_t off,
                            const char *reason);

typedef struct kv_check_stats {
    uint64_t files_checked;
    uint64_t sst_entries;
    uint64_t wal_records;
    uint64_t problems;
} kv_check_stats;

/*
 * kv_check -- reads every file of the database in dir without opening it
 * for writing (no lock, no recovery, nothing modified): the MANIFEST, every
 * live SSTable (every block checksum, key order), every live WAL file
 * (every record; a torn tail is not a problem), and reports each problem
 * and any file the MANIFEST names that is missing.  Returns DM_OK when
 * clean, DM_ECORRUPT when anything is damaged or missing, DM_ENOTFOUND
 * when dir holds no database.
 */
int kv_check(const char *dir, vfs *v, kv_check_fn on_problem, void *arg,
             kv_check_stats *st);

#endif
