/*
 * iter.c -- the empty iterator and the merging iterator (iter.h).
 *
 * Merging iterator
 * ----------------
 * The merged stream is the children's entries sorted by the total order
 * (key by cmp, then child index): among equal keys the lower child index
 * comes first going forward, and going backward the stream is exactly the
 * forward stream reversed (equal keys come highest index first).  Within
 * one child its own order is kept.
 *
 * Invariant (direction FORWARD): every valid child is positioned at its
 * first entry that comes after everything already yielded, i.e. each
 * child's cursor is at its smallest not-yet-yielded entry; the current
 * entry is the smallest (key, index) among them.  Direction REVERSE is the
 * mirror image (largest not-yet-yielded entry, current = largest).  The
 * valid children sit in a binary heap keyed by (key, index) -- a min-heap
 * going forward, a max-heap going backward -- so a step costs one child
 * move plus O(log n) comparisons.  Each child's current key is cached
 * (keys[i]) so that heap comparisons do not call through the child's ops;
 * the cache is refreshed whenever that child moves.
 *
 * Changing direction (next after prev or prev after next) restores the
 * invariant for the new direction, as LevelDB's MergingIterator does: the
 * current child just steps, and every other child is repositioned relative
 * to the current entry (K, c):
 *   to FORWARD, child i must sit at its first entry after (K, c): for
 *     i > c the first key >= K, for i < c the first key > K;
 *   to REVERSE, child i must sit at its last entry before (K, c): for
 *     i > c the last key < K, for i < c the last key <= K.
 * Both are a seek(K), a skip over entries equal to K where needed, and for
 * REVERSE one step back (or seek_last when the seek ran off the end).
 *
 * Errors: when a child becomes invalid with a non-OK status, the merged
 * iterator becomes invalid; status() returns the first non-OK status in
 * child order.  A full reposition (seek*) re-evaluates the children.
 *
 * Thread-safety: none (one thread at a time, as every iterator).
 */
#include "storage/iter.h"

#include <assert.h>

#include "base/alloc.h"
#include "base/err.h"

/* ---- empty iterator ---- */

typedef struct empty_iter {
    iter base;
    int status;
} empty_iter;

static bool ei_valid(iter *it) { return false; }
static void ei_seek_first(iter *it) {}
static void ei_seek_last(iter *it) {}
static void ei_seek(iter *it, buf_slice target) {}
static void ei_step(iter *it) { assert(!"step on an invalid iterator"); }
static buf_slice ei_slice(iter *it)
{
    assert(!"key/value of an invalid iterator");
    return buf_slice_of(NULL, 0);
}
static int ei_status(iter *it) { return ((empty_iter *)it)->status; }
static void ei_free(iter *it) { dm_free(it); }

static const iter_ops empty_ops = {
    .valid = ei_valid,
    .seek_first = ei_seek_first,
    .seek_last = ei_seek_last,
    .seek = ei_seek,
    .next = ei_step,
    .prev = ei_step,
    .key = ei_slice,
    .value = ei_slice,
    .status = ei_status,
    .free = ei_free,
};

iter *iter_empty_new(int status)
{
    empty_iter *ei = dm_malloc(sizeof *ei);
    if (!ei)
        return NULL;
    ei->base.ops = &empty_ops;
    ei->status = status;
    return &ei->base;
}

/* ---- merging iterator ---- */

enum { FORWARD = 0, REVERSE = 1 };

typedef struct merge_iter {
    iter base;
    iter_cmp_fn cmp;
    size_t n;
    iter **child;   /* n children, owned */
    buf_slice *key; /* key[i]: child i's current key when it is valid */
    size_t *heap;   /* indices of the valid children, heap-ordered */
    size_t heap_n;
    int dir;        /* FORWARD or REVERSE */
    int err;        /* DM_OK, or an error seen when a child went invalid */
} merge_iter;

/* before -- whether child a's entry comes before child b's in the current
 * direction (the heap's order). */
static inline bool before(const merge_iter *m, size_t a, size_t b)
{
    int c = m->cmp(m->key[a], m->key[b]);
    if (m->dir == FORWARD)
        return c < 0 || (c == 0 && a < b);
    return c > 0 || (c == 0 && a > b);
}

static void sift_down(merge_iter *m, size_t pos)
{
    size_t *h = m->heap;
    size_t x = h[pos];
    for (;;) {
        size_t l = 2 * pos + 1;
        if (l >= m->heap_n)
            break;
        size_t best = l;
        if (l + 1 < m->heap_n && before(m, h[l + 1], h[l]))
            best = l + 1;
        if (!before(m, h[best], x))
            break;
        h[pos] = h[best];
        pos = best;
    }
    h[pos] = x;
}

/* note_invalid -- child i just became invalid; remember its error. */
static void note_invalid(merge_iter *m, size_t i)
{
    if (m->err == DM_OK)
        m->err = iter_status(m->child[i]);
}

/* rebuild -- rebuilds the heap from the children's positions for the
 * current direction. */
static void rebuild(merge_iter *m)
{
    m->heap_n = 0;
    for (size_t i = 0; i < m->n; i++) {
        if (iter_valid(m->child[i])) {
            m->key[i] = iter_key(m->child[i]);
            m->heap[m->heap_n++] = i;
        } else {
            note_invalid(m, i);
        }
    }
    for (size_t i = m->heap_n / 2; i-- > 0;)
        sift_down(m, i);
}

static bool mg_valid(iter *it)
{
    merge_iter *m = (merge_iter *)it;
    return m->heap_n > 0 && m->err == DM_OK;
}

static void mg_seek_first(iter *it)
{
    merge_iter *m = (merge_iter *)it;
    for (size_t i = 0; i < m->n; i++)
        iter_seek_first(m->child[i]);
    m->dir = FORWARD;
    m->err = DM_OK;
    rebuild(m);
}

static void mg_seek_last(iter *it)
{
    merge_iter *m = (merge_iter *)it;
    for (size_t i = 0; i < m->n; i++)
        iter_seek_last(m->child[i]);
    m->dir = REVERSE;
    m->err = DM_OK;
    rebuild(m);
}

static void mg_seek(iter *it, buf_slice target)
{
    merge_iter *m = (merge_iter *)it;
    for (size_t i = 0; i < m->n; i++)
        iter_seek(m->child[i], target);
    m->dir = FORWARD;
    m->err = DM_OK;
    rebuild(m);
}

/* skip_equal -- moves child c forward past entries whose key equals k. */
static void skip_equal(merge_iter *m, iter *c, buf_slice k)
{
    while (iter_valid(c) && m->cmp(iter_key(c), k) == 0)
        iter_next(c);
}

/* switch_direction -- repositions every non-current child for the other
 * direction (see the file comment) and rebuilds the heap; the current
 * child stays put and remains the heap's top. */
static void switch_direction(merge_iter *m, int dir)
{
    size_t cur = m->heap[0];
    /* key[cur] stays valid: child cur does not move here. */
    buf_slice k = m->key[cur];
    for (size_t i = 0; i < m->n; i++) {
        if (i == cur)
            continue;
        iter *c = m->child[i];
        iter_seek(c, k);
        if (i < cur)
            skip_equal(m, c, k);
        if (dir == REVERSE) {
            if (iter_valid(c))
                iter_prev(c);
            else if (iter_status(c) == DM_OK)
                iter_seek_last(c);
            /* A child over a live memtable may have gained entries between
             * the seek and the prev, so prev can land on one that sorts at
             * or after k: step back until it sits where reverse order
             * needs it (strictly before k for later children, at or before
             * k for earlier ones). */
            while (iter_valid(c)) {
                int d = m->cmp(iter_key(c), k);
                if (i > cur ? d < 0 : d <= 0)
                    break;
                iter_prev(c);
            }
        }
    }
    m->dir = dir;
    rebuild(m);
    assert(m->err != DM_OK || m->heap[0] == cur);
}

/* step -- moves the current child one entry in the current direction and
 * restores the heap. */
static void step(merge_iter *m)
{
    size_t cur = m->heap[0];
    iter *c = m->child[cur];
    if (m->dir == FORWARD)
        iter_next(c);
    else
        iter_prev(c);
    if (iter_valid(c)) {
        m->key[cur] = iter_key(c);
    } else {
        note_invalid(m, cur);
        m->heap[0] = m->heap[--m->heap_n];
    }
    if (m->heap_n > 0)
        sift_down(m, 0);
}

static void mg_next(iter *it)
{
    merge_iter *m = (merge_iter *)it;
    assert(mg_valid(it));
    if (m->dir != FORWARD) {
        switch_direction(m, FORWARD);
        if (m->err != DM_OK)
            return;
    }
    step(m);
}

static void mg_prev(iter *it)
{
    merge_iter *m = (merge_iter *)it;
    assert(mg_valid(it));
    if (m->dir != REVERSE) {
        switch_direction(m, REVERSE);
        if (m->err != DM_OK)
            return;
    }
    step(m);
}

static buf_slice mg_key(iter *it)
{
    merge_iter *m = (merge_iter *)it;
    assert(mg_valid(it));
    return m->key[m->heap[0]];
}

static buf_slice mg_value(iter *it)
{
    merge_iter *m = (merge_iter *)it;
    assert(mg_valid(it));
    return iter_value(m->child[m->heap[0]]);
}

static int mg_status(iter *it)
{
    merge_iter *m = (merge_iter *)it;
    for (size_t i = 0; i < m->n; i++) {
        int rc = iter_status(m->child[i]);
        if (rc != DM_OK)
            return rc;
    }
    /* A child may have reported an error when it went invalid and later
     * been repositioned by a direction switch; keep the error sticky. */
    return m->err;
}

static void mg_free(iter *it)
{
    merge_iter *m = (merge_iter *)it;
    for (size_t i = 0; i < m->n; i++)
        iter_free(m->child[i]);
    dm_free(m->child);
    dm_free(m->key);
    dm_free(m->heap);
    dm_free(m);
}

static const iter_ops merge_ops = {
    .valid = mg_valid,
    .seek_first = mg_seek_first,
    .seek_last = mg_seek_last,
    .seek = mg_seek,
    .next = mg_next,
    .prev = mg_prev,
    .key = mg_key,
    .value = mg_value,
    .status = mg_status,
    .free = mg_free,
};

iter *iter_merge_new(iter_cmp_fn cmp, iter **children, size_t n)
{
    merge_iter *m = NULL;
    if (n == 0)
        return iter_empty_new(DM_OK);
    /* One child needs no merging: hand it back as is. */
    if (n == 1)
        return children[0];

    m = dm_calloc(1, sizeof *m);
    if (!m)
        goto fail;
    m->base.ops = &merge_ops;
    m->cmp = cmp;
    m->child = dm_calloc(n, sizeof *m->child);
    m->key = dm_calloc(n, sizeof *m->key);
    m->heap = dm_calloc(n, sizeof *m->heap);
    if (!m->child || !m->key || !m->heap)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        assert(children[i]);
        m->child[i] = children[i];
    }
    m->n = n;
    m->dir = FORWARD;
    m->err = DM_OK;
    m->heap_n = 0; /* not positioned yet: invalid until a seek */
    return &m->base;

fail:
    if (m) {
        dm_free(m->child);
        dm_free(m->key);
        dm_free(m->heap);
        dm_free(m);
    }
    for (size_t i = 0; i < n; i++)
        iter_free(children[i]);
    return NULL;
}
