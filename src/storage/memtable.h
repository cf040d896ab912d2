/*
 * memtable.h -- the in-memory sorted table of recent writes.
 *
 * A skiplist of internal keys (ikey.h) whose nodes live in an arena until
 * the whole table is freed.  One writer at a time (the caller serialises
 * mt_add); any number of readers run concurrently with that writer and
 * with each other without locks (release/acquire publication of links).
 * Reference-counted: mt_new returns a table with one reference.
 */
#ifndef DM_STORAGE_MEMTABLE_H
#define DM_STORAGE_MEMTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "storage/iter.h"

typedef struct mt_table mt_table;

/* mt_new -- an empty table with one reference.  DM_OK or DM_ENOMEM. */
int mt_new(mt_table **out);
/* mt_ref / mt_unref -- the last unref frees the table and its arena.
 * Thread-safe.  mt_unref(NULL) does nothing. */
void mt_ref(mt_table *t);
void mt_unref(mt_table *t);

/*
 * mt_add -- inserts (key, seq, type) -> value.  Key and value are copied.
 * REQUIRES: the caller serialises all mt_add calls on a table; (key, seq)
 * is not already present.  DM_OK or DM_ENOMEM (table unchanged).
 */
int mt_add(mt_table *t, uint64_t seq, int type, buf_slice key, buf_slice value);

enum mt_get_result { MT_NONE = 0, MT_FOUND = 1, MT_DELETED = 2 };
/*
 * mt_get -- looks up the newest entry for user key `key` with sequence
 * number <= snap_seq.  Returns MT_FOUND (with *value borrowed from the
 * table, valid while the caller holds a reference), MT_DELETED (a
 * tombstone is the newest visible entry) or MT_NONE.  Thread-safe.
 */
enum mt_get_result mt_get(mt_table *t, buf_slice key, uint64_t snap_seq,
                          buf_slice *value);

/* mt_iter_new -- an internal-key iterator over the table (holds a
 * reference until freed).  Sees entries added after its creation too.
 * NULL when out of memory. */
iter *mt_iter_new(mt_table *t);

/* Approximate bytes used (arena), number of entries, and the smallest and
 * largest sequence numbers added (0 when empty).  Thread-safe. */
size_t mt_mem_usage(const mt_table *t);
uint64_t mt_count(const mt_table *t);
uint64_t mt_first_seq(const mt_table *t);
uint64_t mt_last_seq(const mt_table *t);

#endif
