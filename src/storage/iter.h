/*
 * iter.h -- the iterator interface shared by memtables, SSTables, merging
 * and the database iterator.
 *
 * An iterator is a struct whose first member is `iter` (a pointer to its
 * operations).  Internal iterators yield internal keys (ikey.h) in
 * ikey_cmp order; the database iterator (kv.h) yields user keys.
 *
 * Slices returned by key()/value() are borrowed: valid until the next call
 * that moves the iterator or frees it.  After an error the iterator becomes
 * invalid and status() returns the error (DM_ECORRUPT, DM_EIO, DM_ENOMEM);
 * running off either end is not an error (valid() false, status() DM_OK).
 * An iterator is used by one thread at a time.
 */
#ifndef DM_STORAGE_ITER_H
#define DM_STORAGE_ITER_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

typedef struct iter iter;
typedef int (*iter_cmp_fn)(buf_slice a, buf_slice b);

typedef struct iter_ops {
    bool (*valid)(iter *it);
    void (*seek_first)(iter *it);
    void (*seek_last)(iter *it);
    /* seek -- position at the first entry whose key >= target. */
    void (*seek)(iter *it, buf_slice target);
    void (*next)(iter *it); /* REQUIRES: valid */
    void (*prev)(iter *it); /* REQUIRES: valid */
    buf_slice (*key)(iter *it);   /* REQUIRES: valid */
    buf_slice (*value)(iter *it); /* REQUIRES: valid */
    int (*status)(iter *it);
    void (*free)(iter *it);
} iter_ops;

struct iter {
    const iter_ops *ops;
};

static inline bool iter_valid(iter *it) { return it->ops->valid(it); }
static inline void iter_seek_first(iter *it) { it->ops->seek_first(it); }
static inline void iter_seek_last(iter *it) { it->ops->seek_last(it); }
static inline void iter_seek(iter *it, buf_slice t) { it->ops->seek(it, t); }
static inline void iter_next(iter *it) { it->ops->next(it); }
static inline void iter_prev(iter *it) { it->ops->prev(it); }
static inline buf_slice iter_key(iter *it) { return it->ops->key(it); }
static inline buf_slice iter_value(iter *it) { return it->ops->value(it); }
static inline int iter_status(iter *it) { return it->ops->status(it); }
/* iter_free -- iter_free(NULL) does nothing. */
static inline void iter_free(iter *it)
{
    if (it)
        it->ops->free(it);
}

/*
 * iter_empty_new -- an iterator with no entries whose status() is `status`
 * (DM_OK for a plain empty one).  Returns NULL only when out of memory.
 */
iter *iter_empty_new(int status);

/*
 * iter_merge_new -- merges n child iterators ordered by cmp into one
 * ordered stream (duplicates across children are all yielded; among equal
 * keys the child with the lower index comes first).  Takes ownership of the
 * children array's elements (freed with the merged iterator) but not of the
 * array itself.  Forward and reverse iteration and direction changes are
 * supported.  status() is the first non-OK child status.  Returns NULL when
 * out of memory, in which case the children have been freed.
 */
iter *iter_merge_new(iter_cmp_fn cmp, iter **children, size_t n);

#endif
