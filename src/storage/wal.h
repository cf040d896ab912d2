/*
 * wal.h -- the write-ahead log: an append-only file of checksummed records.
 *
 * Each record carries a type, the first sequence number of its batch and
 * a payload; a CRC32C covers the header and the payload (format:
 * docs/format.md "WAL").  The writer buffers appends in memory; wal_flush
 * hands them to the OS and wal_sync makes them durable.  Group commit is
 * the caller's (kv.c): one leader appends the records of many writers and
 * syncs once.
 *
 * Replay reads a file front to back.  A record that fails its checks is
 * either a torn tail (no valid record follows it: ignored quietly, and the
 * file may be truncated there) or damage in the middle (a valid record
 * follows: the bad bytes are skipped, counted, and reported through the
 * damage callback with file, offset and reason; replay continues).
 * Replay of the same bytes always yields the same records and reports.
 */
#ifndef DM_STORAGE_WAL_H
#define DM_STORAGE_WAL_H

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "os/vfs.h"

typedef struct wal_writer wal_writer;

/*
 * wal_writer_open -- creates (truncating) the log file at path, writes and
 * syncs its file header, and returns a writer.  log_number is recorded in
 * the header.  Errors: DM_EIO, DM_ENOSPC, DM_ENOMEM.  Not thread-safe:
 * one thread (the group-commit leader) uses a writer at a time.
 */
int wal_writer_open(vfs *v, const char *path, uint64_t log_number,
                    wal_writer **out);

/* wal_add -- appends one record to the writer's buffer (not yet written to
 * the OS).  DM_ETOOBIG when payload.len > WAL_MAX_RECORD_LEN, DM_ENOMEM. */
int wal_add(wal_writer *w, uint64_t seq, uint8_t type, buf_slice payload);

/* wal_flush -- writes the buffer to the file (one append call).  On error
 * the writer is failed: every later call returns the same error. */
int wal_flush(wal_writer *w);

/* wal_sync -- wal_flush, then sync the file.  Same sticky error rule: a
 * failed sync is never retried. */
int wal_sync(wal_writer *w);

/* wal_size -- bytes in the file including the buffered tail. */
uint64_t wal_size(const wal_writer *w);

/* wal_writer_close -- flushes (no sync) and closes; returns the first error
 * seen.  wal_writer_close(NULL) is DM_OK. */
int wal_writer_close(wal_writer *w);

typedef struct wal_replay_stats {
    uint64_t records;        /* valid records delivered */
    uint64_t bytes;          /* bytes of valid records */
    uint64_t damaged;        /* damaged regions skipped in the middle */
    uint64_t damaged_bytes;  /* bytes in those regions */
    uint64_t tail_bytes;     /* bytes ignored as a torn tail */
    uint64_t valid_end;      /* offset just past the last valid record */
    uint64_t log_number;     /* from the file header */
} wal_replay_stats;

/* Called for each valid record, in file order.  A non-zero return stops
 * replay and becomes its return value. */
typedef int (*wal_record_fn)(void *arg, uint64_t seq, uint8_t type,
                             buf_slice payload);
/* Called for each damaged region in the middle of the file. */
typedef void (*wal_damage_fn)(void *arg, const char *path, uint64_t off,
                              uint64_t len, const char *reason);

/*
 * wal_replay -- reads the log at path.  With truncate_tail, a torn tail is
 * cut off the file (and the file synced) so that later appends follow the
 * last valid record.  A damaged or missing file header is DM_ECORRUPT
 * (reported through on_damage too); DM_ENOTFOUND if the file is missing.
 * on_damage may be NULL.  *st is filled even on error.
 */
int wal_replay(vfs *v, const char *path, bool truncate_tail,
               wal_record_fn on_record, wal_damage_fn on_damage, void *arg,
               wal_replay_stats *st);

#endif
