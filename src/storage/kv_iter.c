/*
 * kv_iter.c -- the iterators the database builds out of table and
 * memtable iterators:
 *
 *   level iterator  concatenates the files of one level >= 1 (sorted and
 *                   non-overlapping), opening one table iterator at a time;
 *   db iterator     turns the merged stream of internal keys into user keys
 *                   as of a sequence number: for each user key only the
 *                   newest entry visible at that sequence counts, and a
 *                   tombstone hides the key.
 *
 * DB iterator state: in the forward direction the internal iterator sits on
 * the entry that gives the current key and value.  In the reverse
 * direction it sits just before every entry of the current user key, whose
 * key and value were copied into saved_key / saved_value while scanning
 * backwards (the newest visible entry of a key is the last one met going
 * backwards, so it must be remembered).
 */
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "storage/ikey.h"
#include "storage/kv_int.h"

/* ----------------------------------------------------------- level iter */

typedef struct level_iter {
    iter base;
    kv_version *v;
    int level;
    size_t idx;   /* current file */
    iter *cur;    /* iterator of file idx, or NULL */
    int status;
} level_iter;

static bool li_open(level_iter *li, size_t idx)
{
    if (li->cur && li->idx == idx)
        return true;
    iter_free(li->cur);
    li->cur = NULL;
    li->idx = idx;
    if (idx >= li->v->n[li->level])
        return false;
    li->cur = sst_iter_new(li->v->files[li->level][idx]->reader);
    if (!li->cur) {
        li->status = DM_ENOMEM;
        return false;
    }
    return true;
}

static bool li_cur_ok(level_iter *li)
{
    if (!li->cur)
        return false;
    if (iter_valid(li->cur))
        return true;
    int rc = iter_status(li->cur);
    if (rc && !li->status)
        li->status = rc;
    return false;
}

static void li_skip_forward(level_iter *li)
{
    while (!li->status && !li_cur_ok(li)) {
        if (li->idx + 1 >= li->v->n[li->level]) {
            iter_free(li->cur);
            li->cur = NULL;
            return;
        }
        if (!li_open(li, li->idx + 1))
            return;
        iter_seek_first(li->cur);
    }
}

static void li_skip_backward(level_iter *li)
{
    while (!li->status && !li_cur_ok(li)) {
        if (li->idx == 0) {
            iter_free(li->cur);
            li->cur = NULL;
            return;
        }
        if (!li_open(li, li->idx - 1))
            return;
        iter_seek_last(li->cur);
    }
}

static bool li_valid(iter *it)
{
    level_iter *li = (level_iter *)it;
    return !li->status && li->cur && iter_valid(li->cur);
}

static void li_seek_first(iter *it)
{
    level_iter *li = (level_iter *)it;
    if (li_open(li, 0))
        iter_seek_first(li->cur);
    li_skip_forward(li);
}

static void li_seek_last(iter *it)
{
    level_iter *li = (level_iter *)it;
    size_t n = li->v->n[li->level];
    if (n && li_open(li, n - 1))
        iter_seek_last(li->cur);
    li_skip_backward(li);
}

static void li_seek(iter *it, buf_slice target)
{
    level_iter *li = (level_iter *)it;
    kv_file **fs = li->v->files[li->level];
    size_t lo = 0, hi = li->v->n[li->level];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ikey_cmp(buf_slice_of(fs[mid]->largest.ptr, fs[mid]->largest.len), target) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (!li_open(li, lo)) {
        iter_free(li->cur);
        li->cur = NULL;
        return;
    }
    iter_seek(li->cur, target);
    li_skip_forward(li);
}

static void li_next(iter *it)
{
    level_iter *li = (level_iter *)it;
    iter_next(li->cur);
    li_skip_forward(li);
}

static void li_prev(iter *it)
{
    level_iter *li = (level_iter *)it;
    iter_prev(li->cur);
    li_skip_backward(li);
}

static buf_slice li_key(iter *it)
{
    return iter_key(((level_iter *)it)->cur);
}

static buf_slice li_value(iter *it)
{
    return iter_value(((level_iter *)it)->cur);
}

static int li_status(iter *it)
{
    level_iter *li = (level_iter *)it;
    if (li->status)
        return li->status;
    return li->cur ? iter_status(li->cur) : DM_OK;
}

static void li_free(iter *it)
{
    level_iter *li = (level_iter *)it;
    iter_free(li->cur);
    kv_version_unref(li->v);
    dm_free(li);
}

static const iter_ops level_iter_ops = {
    li_valid, li_seek_first, li_seek_last, li_seek, li_next, li_prev,
    li_key, li_value, li_status, li_free,
};

iter *kv_level_iter_new(kv_version *v, int level)
{
    level_iter *li = dm_calloc(1, sizeof *li);
    if (!li)
        return NULL;
    li->base.ops = &level_iter_ops;
    li->v = v;
    li->level = level;
    li->idx = SIZE_MAX;
    kv_version_ref(v);
    return &li->base;
}

/* -------------------------------------------------------------- db iter */

typedef struct db_iter {
    iter base;
    iter *in;
    uint64_t seq;
    bool is_reverse;
    bool is_valid;
    int status;
    buf saved_key;
    buf saved_value;
    buf seek_buf;
} db_iter;

/* parse -- the user key, seq and type of the internal entry; false (and
 * status DM_ECORRUPT) when the key is too short to hold a trailer. */
static bool parse(db_iter *d, buf_slice *user, uint64_t *seq, int *type)
{
    buf_slice k = iter_key(d->in);
    if (k.len < IKEY_TRAILER_LEN) {
        d->status = err_set_msg(DM_ECORRUPT, "internal key of %zu bytes", k.len);
        d->is_valid = false;
        return false;
    }
    uint64_t t = ikey_trailer(k);
    *user = ikey_user(k);
    *seq = t >> 8;
    *type = (int)(t & 0xff);
    return true;
}

static bool in_ok(db_iter *d)
{
    if (iter_valid(d->in))
        return true;
    int rc = iter_status(d->in);
    if (rc && !d->status)
        d->status = rc;
    return false;
}

static void save(buf *b, buf_slice s)
{
    buf_clear(b);
    if (buf_append(b, s.ptr, s.len))
        b->len = SIZE_MAX; /* marks out-of-memory; checked by callers */
}

static bool saved_ok(db_iter *d, buf *b)
{
    if (b->len == SIZE_MAX) {
        b->len = 0;
        d->status = DM_ENOMEM;
        d->is_valid = false;
        return false;
    }
    return true;
}

static void find_next_user_entry(db_iter *d, bool is_skipping)
{
    /* saved_key holds the key to skip past when is_skipping. */
    while (in_ok(d)) {
        buf_slice user;
        uint64_t seq;
        int type;
        if (!parse(d, &user, &seq, &type))
            return;
        if (seq <= d->seq) {
            if (type == IKEY_DEL) {
                save(&d->saved_key, user);
                if (!saved_ok(d, &d->saved_key))
                    return;
                is_skipping = true;
            } else if (is_skipping &&
                       buf_slice_cmp(user, buf_slice_of(d->saved_key.ptr, d->saved_key.len)) <= 0) {
                /* hidden by a newer entry or a tombstone */
            } else {
                d->is_valid = true;
                buf_clear(&d->saved_key);
                return;
            }
        }
        iter_next(d->in);
    }
    d->is_valid = false;
    buf_clear(&d->saved_key);
}

static void find_prev_user_entry(db_iter *d)
{
    int value_type = IKEY_DEL;
    while (in_ok(d)) {
        buf_slice user;
        uint64_t seq;
        int type;
        if (!parse(d, &user, &seq, &type))
            return;
        if (seq <= d->seq) {
            if (value_type != IKEY_DEL &&
                buf_slice_cmp(user, buf_slice_of(d->saved_key.ptr, d->saved_key.len)) < 0)
                break; /* passed every entry of saved_key */
            value_type = type;
            if (type == IKEY_DEL) {
                buf_clear(&d->saved_key);
                buf_clear(&d->saved_value);
            } else {
                save(&d->saved_key, user);
                save(&d->saved_value, iter_value(d->in));
                if (!saved_ok(d, &d->saved_key) || !saved_ok(d, &d->saved_value))
                    return;
            }
        }
        iter_prev(d->in);
    }
    if (d->status) {
        d->is_valid = false;
        return;
    }
    if (value_type == IKEY_DEL) {
        d->is_valid = false;
        buf_clear(&d->saved_key);
        buf_clear(&d->saved_value);
        d->is_reverse = false;
    } else {
        d->is_valid = true;
    }
}

static bool di_valid(iter *it)
{
    db_iter *d = (db_iter *)it;
    return d->is_valid && !d->status;
}

static void di_seek_first(iter *it)
{
    db_iter *d = (db_iter *)it;
    d->is_reverse = false;
    buf_clear(&d->saved_value);
    iter_seek_first(d->in);
    find_next_user_entry(d, false);
}

static void di_seek_last(iter *it)
{
    db_iter *d = (db_iter *)it;
    d->is_reverse = true;
    buf_clear(&d->saved_value);
    iter_seek_last(d->in);
    find_prev_user_entry(d);
}

static void di_seek(iter *it, buf_slice target)
{
    db_iter *d = (db_iter *)it;
    d->is_reverse = false;
    buf_clear(&d->saved_value);
    if (ikey_build(&d->seek_buf, target, d->seq, IKEY_SEEK_TYPE)) {
        d->status = DM_ENOMEM;
        d->is_valid = false;
        return;
    }
    iter_seek(d->in, buf_slice_of(d->seek_buf.ptr, d->seek_buf.len));
    find_next_user_entry(d, false);
}

static void di_next(iter *it)
{
    db_iter *d = (db_iter *)it;
    if (d->is_reverse) {
        d->is_reverse = false;
        /* in sits before the entries of saved_key: step into them, then
         * skip them all */
        if (!iter_valid(d->in))
            iter_seek_first(d->in);
        else
            iter_next(d->in);
        if (!in_ok(d)) {
            d->is_valid = false;
            buf_clear(&d->saved_key);
            return;
        }
    } else {
        save(&d->saved_key, ikey_user(iter_key(d->in)));
        if (!saved_ok(d, &d->saved_key))
            return;
        iter_next(d->in);
    }
    find_next_user_entry(d, true);
}

static void di_prev(iter *it)
{
    db_iter *d = (db_iter *)it;
    if (!d->is_reverse) {
        save(&d->saved_key, ikey_user(iter_key(d->in)));
        if (!saved_ok(d, &d->saved_key))
            return;
        for (;;) {
            iter_prev(d->in);
            if (!in_ok(d)) {
                d->is_valid = false;
                buf_clear(&d->saved_key);
                buf_clear(&d->saved_value);
                return;
            }
            buf_slice k = iter_key(d->in);
            if (k.len < IKEY_TRAILER_LEN) {
                d->status = DM_ECORRUPT;
                d->is_valid = false;
                return;
            }
            if (buf_slice_cmp(ikey_user(k),
                              buf_slice_of(d->saved_key.ptr, d->saved_key.len)) < 0)
                break;
        }
        d->is_reverse = true;
    }
    find_prev_user_entry(d);
}

static buf_slice di_key(iter *it)
{
    db_iter *d = (db_iter *)it;
    if (d->is_reverse)
        return buf_slice_of(d->saved_key.ptr, d->saved_key.len);
    return ikey_user(iter_key(d->in));
}

static buf_slice di_value(iter *it)
{
    db_iter *d = (db_iter *)it;
    if (d->is_reverse)
        return buf_slice_of(d->saved_value.ptr, d->saved_value.len);
    return iter_value(d->in);
}

static int di_status(iter *it)
{
    db_iter *d = (db_iter *)it;
    return d->status ? d->status : iter_status(d->in);
}

static void di_free(iter *it)
{
    db_iter *d = (db_iter *)it;
    iter_free(d->in);
    buf_fini(&d->saved_key);
    buf_fini(&d->saved_value);
    buf_fini(&d->seek_buf);
    dm_free(d);
}

static const iter_ops db_iter_ops = {
    di_valid, di_seek_first, di_seek_last, di_seek, di_next, di_prev,
    di_key, di_value, di_status, di_free,
};

iter *kv_db_iter_new(iter *internal, uint64_t seq)
{
    db_iter *d = dm_calloc(1, sizeof *d);
    if (!d) {
        iter_free(internal);
        return NULL;
    }
    d->base.ops = &db_iter_ops;
    d->in = internal;
    d->seq = seq;
    buf_init(&d->saved_key);
    buf_init(&d->saved_value);
    buf_init(&d->seek_buf);
    return &d->base;
}
