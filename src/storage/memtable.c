/*
 * memtable.c -- the in-memory sorted table of recent writes (memtable.h).
 *
 * Design
 * ------
 * A skiplist (Pugh) of internal keys ordered by ikey_cmp: user key bytewise
 * ascending, then larger trailer ((seq << 8) | type) first.  Every node is
 * one arena allocation and is never freed or moved before the table itself
 * is freed, which is what makes lock-free reading possible.
 *
 * Node layout.  A node of height h is laid out in the arena as
 *
 *     link[h-1] .. link[1] link[0] | varint ikey_len, ikey, varint vlen, value
 *                                  ^
 *               node handle -------'   (the address of link[0]; link[i] is
 *                                        handle[-i])
 *
 * i.e. the forward links are stored in reverse order *before* the handle
 * and the encoded entry immediately after link[0].  A search step reads
 * link[i] of one node and then the key of the next node, and for most
 * nodes (75% have height 1) both sit in the same cache line.  The height
 * is not stored: only the inserting writer needs it.  ikey is
 * user_key || trailer (ikey.h); the varints are LEB128 (buf.h).
 *
 * Skiplist parameters: maximum height MT_MAX_HEIGHT (12), branching factor
 * 4 (a node reaches level i+1 with probability 1/4), heights drawn from a
 * per-table xorshift generator with a fixed seed so that runs are
 * reproducible.
 *
 * Insert.  The writer finds the predecessor of the new key at every level
 * (or reuses the "splice" of the previous insert when the new key falls
 * right after the previously inserted node -- sequential inserts then cost
 * O(1) comparisons instead of O(log n)), then links the node bottom-up.
 *
 * Concurrency and memory ordering
 * -------------------------------
 * One writer at a time (the caller serialises mt_add); any number of
 * readers (mt_get, iterators) run concurrently with it and with each
 * other, without locks:
 *   - the writer fills the node (entry bytes and its own links, with
 *     relaxed stores) before publishing it with a release store into the
 *     predecessor's link; readers load links with acquire, so a node
 *     reached through a link is fully initialised;
 *   - a node is linked at level 0 first, so a reader that sees it at a
 *     higher level will also find it at level 0; a reader that misses a
 *     half-linked node at some level just walks a little longer;
 *   - max_height is read and written relaxed: a reader that sees the new
 *     height before the head's new links sees NULL there and descends;
 *     one that sees the old height just starts lower;
 *   - count/first_seq/last_seq and the arena usage are relaxed atomics:
 *     statistics, not synchronisation;
 *   - the splice hint and the height generator belong to the writer.
 * Nodes are never removed, so a reader never follows a dangling link.
 *
 * Filter.  Most point lookups are for keys the memtable does not hold (a
 * record written before the last flush), and a miss walks the whole
 * skiplist: a dozen cache misses.  Each table therefore keeps a blocked
 * Bloom filter of its user keys: MT_FILTER_LINES lines of 512 bits, the
 * line chosen by the key's hash, MT_FILTER_PROBES bits set in it.  mt_get
 * answers MT_NONE at once when one of the key's bits is clear.  The
 * writer sets the bits (relaxed loads and stores: it is the only one
 * writing them) before it publishes the node; a reader whose snapshot
 * includes the entry acquired that snapshot after the writer's release
 * (the storage engine's last sequence number), so it sees the bits too.
 * A clear bit is never wrong; a set one may be (about 1 in 50,000 lookups
 * at 30,000 keys, 1 in 10 at 200,000), and then the skiplist decides.
 *
 * Lifetime: reference counted (atomic).  Every iterator holds a reference.
 * The last mt_unref frees the arena and therefore every node, so borrowed
 * slices (mt_get values, iterator keys/values) die with the last reference.
 *
 * Format owned: none on disk; the node layout above is private to this
 * file.
 */
#include "storage/memtable.h"

#include <assert.h>
#include <stdalign.h>
#include <stdatomic.h>

#include "base/alloc.h"
#include "base/arena.h"
#include "base/err.h"
#include "storage/ikey.h"
#include "storage/sstable_int.h"

#define MT_MAX_HEIGHT 12
#define MT_BRANCH_BITS 2 /* branching factor 4 = 2^2 */
#define MT_FILTER_LINES 2048 /* 128 KiB a table */
#define MT_FILTER_PROBES 6

/* A link holds a node handle: the address of that node's link[0].  Stored
 * as void * because a C type cannot name an atomic pointer to itself. */
typedef _Atomic(void *) mt_link;

/* A search target: a user key and a trailer, never materialised as a
 * heap ikey (compared directly against node entries). */
typedef struct mt_key {
    const uint8_t *user;
    size_t user_len;
    uint64_t trailer;
} mt_key;

struct mt_table {
    _Atomic int refs;
    _Atomic int max_height;     /* levels in use, 1..MT_MAX_HEIGHT */
    mt_link *head;              /* MT_MAX_HEIGHT links, no entry */
    arena arena;                /* every node; written by the writer only */
    _Atomic uint64_t count;
    _Atomic uint64_t first_seq; /* smallest seq added; 0 when empty */
    _Atomic uint64_t last_seq;  /* largest seq added; 0 when empty */
    _Atomic uint64_t *filter;   /* MT_FILTER_LINES lines of 8 words */
    /* Writer-only state. */
    uint64_t rng;                    /* height generator */
    mt_link *hint_node;              /* last inserted node, or NULL */
    int hint_height;                 /* its height */
    mt_link *hint_prev[MT_MAX_HEIGHT]; /* its predecessor at each level */
};

/* ---- node access ---- */

static inline mt_link *link_at(mt_link *n, int level) { return n - level; }

static inline mt_link *load_next(mt_link *n, int level)
{
    return atomic_load_explicit(link_at(n, level), memory_order_acquire);
}

static inline const uint8_t *node_entry(const mt_link *n)
{
    return (const uint8_t *)(n + 1);
}

/* Decodes a length varint written by this file (so known well formed);
 * one byte in the common case. */
static inline size_t get_len(const uint8_t **pp)
{
    const uint8_t *p = *pp;
    if (p[0] < 0x80) {
        *pp = p + 1;
        return p[0];
    }
    uint64_t v = 0;
    *pp = dec_varint(p, p + BUF_VARINT64_MAX, &v);
    return (size_t)v;
}

static inline buf_slice node_ikey(const mt_link *n)
{
    const uint8_t *p = node_entry(n);
    size_t len = get_len(&p);
    return buf_slice_of(p, len);
}

static inline buf_slice node_value(const mt_link *n)
{
    const uint8_t *p = node_entry(n);
    size_t klen = get_len(&p);
    p += klen;
    size_t vlen = get_len(&p);
    return buf_slice_of(p, vlen);
}

/* Bytewise comparison of n bytes (memcmp's sign).  Inlined 8 bytes at a
 * time: keys are short (tens of bytes), so the call into libc's memcmp
 * and its dispatch cost more than the comparison itself. */
static inline int cmp_bytes(const uint8_t *a, const uint8_t *b, size_t n)
{
    while (n >= 8) {
        uint64_t x, y;
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        if (x != y) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            x = __builtin_bswap64(x);
            y = __builtin_bswap64(y);
#endif
            return x < y ? -1 : 1;
        }
        a += 8;
        b += 8;
        n -= 8;
    }
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return a[i] < b[i] ? -1 : 1;
    return 0;
}

/* Orders node n against target k in ikey_cmp order (<0: n sorts first). */
static inline int node_cmp(const mt_link *n, const mt_key *k)
{
    const uint8_t *p = node_entry(n);
    size_t ulen = get_len(&p) - IKEY_TRAILER_LEN;
    size_t m = ulen < k->user_len ? ulen : k->user_len;
    int c = cmp_bytes(p, k->user, m);
    if (c)
        return c;
    if (ulen != k->user_len)
        return ulen < k->user_len ? -1 : 1;
    uint64_t tr = dec_u64(p + ulen);
    return tr > k->trailer ? -1 : tr < k->trailer ? 1 : 0;
}

static inline mt_key key_of_node(const mt_link *n)
{
    buf_slice ik = node_ikey(n);
    mt_key k = { ik.ptr, ik.len - IKEY_TRAILER_LEN, ikey_trailer(ik) };
    return k;
}

/* ---- searches (safe for concurrent readers) ---- */

static inline int get_max_height(const mt_table *t)
{
    return atomic_load_explicit((_Atomic int *)&t->max_height,
                                memory_order_relaxed);
}

/*
 * find_ge -- the first node >= k, or NULL.  When prev is not NULL, fills
 * prev[i] with the last node < k at level i for every level (the head for
 * levels above the current height); used by the writer.
 */
static mt_link *find_ge(mt_table *t, const mt_key *k, mt_link **prev)
{
    mt_link *x = t->head;
    mt_link *known_ge = NULL; /* a node already found to be >= k */
    int level = get_max_height(t) - 1;
    if (prev)
        for (int i = level + 1; i < MT_MAX_HEIGHT; i++)
            prev[i] = t->head;
    for (;;) {
        mt_link *next = load_next(x, level);
        /* When descending, the next node is often the same one just
         * compared at the level above; skip the repeated comparison. */
        if (next && next != known_ge && node_cmp(next, k) < 0) {
            x = next;
            continue;
        }
        known_ge = next;
        if (prev)
            prev[level] = x;
        if (level == 0)
            return next;
        level--;
    }
}

/* find_lt -- the last node < k, or the head when there is none. */
static mt_link *find_lt(mt_table *t, const mt_key *k)
{
    mt_link *x = t->head;
    mt_link *known_ge = NULL;
    int level = get_max_height(t) - 1;
    for (;;) {
        mt_link *next = load_next(x, level);
        if (next && next != known_ge && node_cmp(next, k) < 0) {
            x = next;
            continue;
        }
        known_ge = next;
        if (level == 0)
            return x;
        level--;
    }
}

/* find_last -- the last node, or the head when the table is empty. */
static mt_link *find_last(mt_table *t)
{
    mt_link *x = t->head;
    int level = get_max_height(t) - 1;
    for (;;) {
        mt_link *next = load_next(x, level);
        if (next) {
            x = next;
            continue;
        }
        if (level == 0)
            return x;
        level--;
    }
}

/* ---- lifecycle ---- */

int mt_new(mt_table **out)
{
    mt_table *t = dm_malloc(sizeof *t);
    if (!t)
        goto fail;
    atomic_init(&t->refs, 1);
    atomic_init(&t->max_height, 1);
    atomic_init(&t->count, 0);
    atomic_init(&t->first_seq, 0);
    atomic_init(&t->last_seq, 0);
    arena_init(&t->arena);
    t->rng = UINT64_C(0x9E3779B97F4A7C15);
    t->hint_node = NULL;
    t->hint_height = 0;

    mt_link *links = arena_alloc_aligned(&t->arena,
                                         MT_MAX_HEIGHT * sizeof(mt_link),
                                         alignof(mt_link));
    if (!links)
        goto fail;
    t->filter = dm_calloc((size_t)MT_FILTER_LINES * 8, sizeof *t->filter);
    if (!t->filter)
        goto fail;
    t->head = links + (MT_MAX_HEIGHT - 1);
    for (int i = 0; i < MT_MAX_HEIGHT; i++) {
        atomic_init(link_at(t->head, i), NULL);
        t->hint_prev[i] = t->head;
    }
    *out = t;
    return DM_OK;

fail:
    if (t)
        arena_fini(&t->arena);
    dm_free(t);
    *out = NULL;
    return DM_ENOMEM;
}

void mt_ref(mt_table *t)
{
    atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

void mt_unref(mt_table *t)
{
    if (!t)
        return;
    /* acq_rel: every use of the table by other holders happens before the
     * free done by whoever drops the last reference. */
    int old = atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel);
    assert(old > 0);
    if (old != 1)
        return;
    arena_fini(&t->arena);
    dm_free(t->filter);
    dm_free(t);
}

/* ---- filter ---- */

/* The key's filter line, and in g the bits that pick the probes. */
static _Atomic uint64_t *filter_line(const mt_table *t, buf_slice key, uint64_t *g)
{
    /* The tables' filter hash (fully mixed); a second mix of it picks
     * the probes, so that they do not repeat the line's bits. */
    uint64_t h = sst_hash64(key.ptr, key.len);
    uint64_t p = (h ^ (h >> 29)) * UINT64_C(0xbf58476d1ce4e5b9);
    *g = p ^ (p >> 32);
    return t->filter + (size_t)(h & (MT_FILTER_LINES - 1)) * 8;
}

static void filter_add(mt_table *t, buf_slice key)
{
    uint64_t g;
    _Atomic uint64_t *line = filter_line(t, key, &g);
    for (int i = 0; i < MT_FILTER_PROBES; i++, g >>= 9) {
        _Atomic uint64_t *w = &line[(g >> 6) & 7];
        uint64_t bit = UINT64_C(1) << (g & 63);
        uint64_t old = atomic_load_explicit(w, memory_order_relaxed);
        if (!(old & bit))
            atomic_store_explicit(w, old | bit, memory_order_relaxed);
    }
}

static bool filter_may_hold(const mt_table *t, buf_slice key)
{
    uint64_t g;
    _Atomic uint64_t *line = filter_line(t, key, &g);
    for (int i = 0; i < MT_FILTER_PROBES; i++, g >>= 9)
        if (!(atomic_load_explicit(&line[(g >> 6) & 7], memory_order_relaxed) &
              (UINT64_C(1) << (g & 63))))
            return false;
    return true;
}

/* ---- writer ---- */

static int random_height(mt_table *t)
{
    /* xorshift64: cheap, and the low bits are good enough for this. */
    uint64_t x = t->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    t->rng = x;
    int h = 1;
    while (h < MT_MAX_HEIGHT && (x & ((1u << MT_BRANCH_BITS) - 1)) == 0) {
        h++;
        x >>= MT_BRANCH_BITS;
    }
    return h;
}

/* hint_fits -- true when k belongs right after the previously inserted
 * node, in which case that insert's splice is reusable (see mt_add). */
static bool hint_fits(const mt_table *t, const mt_key *k)
{
    mt_link *last = t->hint_node;
    if (!last || node_cmp(last, k) >= 0)
        return false;
    /* Only the writer stores links, so relaxed is enough for itself. */
    mt_link *next = atomic_load_explicit(link_at(last, 0),
                                         memory_order_relaxed);
    return !next || node_cmp(next, k) > 0;
}

int mt_add(mt_table *t, uint64_t seq, int type, buf_slice key, buf_slice value)
{
    assert(seq <= IKEY_MAX_SEQ);
    assert(type == IKEY_PUT || type == IKEY_DEL);
    /* Sizes this large cannot be allocated anyway; refusing them here
     * keeps the sums below from overflowing. */
    if (key.len > SIZE_MAX / 4 || value.len > SIZE_MAX / 4)
        return DM_ENOMEM;
    size_t ikey_len = key.len + IKEY_TRAILER_LEN;
    size_t entry_len = varint_len(ikey_len) + ikey_len +
                       varint_len(value.len) + value.len;
    int height = random_height(t);
    size_t links_len = (size_t)height * sizeof(mt_link);
    uint8_t *mem = arena_alloc_aligned(&t->arena, links_len + entry_len,
                                       alignof(mt_link));
    if (!mem)
        return DM_ENOMEM;

    mt_link *n = (mt_link *)mem + (height - 1);
    uint8_t *p = (uint8_t *)(n + 1);
    p += enc_varint(p, ikey_len);
    if (key.len)
        memcpy(p, key.ptr, key.len);
    p += key.len;
    uint64_t trailer = ikey_pack(seq, type);
    enc_u64(p, trailer);
    p += IKEY_TRAILER_LEN;
    p += enc_varint(p, value.len);
    if (value.len)
        memcpy(p, value.ptr, value.len);

    filter_add(t, key); /* before the node is published */
    mt_key k = { key.ptr, key.len, trailer };
    mt_link *prev[MT_MAX_HEIGHT];
    if (hint_fits(t, &k)) {
        /* The previous node X was inserted between hint_prev[i] and its
         * successor at every level i, and k lies between X and X's level-0
         * successor (which is <= every later successor of X).  So k's
         * predecessor is X on X's levels and hint_prev[i] above them. */
        for (int i = 0; i < MT_MAX_HEIGHT; i++)
            prev[i] = i < t->hint_height ? t->hint_node : t->hint_prev[i];
    } else {
        mt_link *ge = find_ge(t, &k, prev);
        (void)ge;
        assert(!ge || node_cmp(ge, &k) != 0); /* (key, seq) must be new */
    }

    /* Levels above the old height have the head as predecessor already
     * (find_ge and the hint both guarantee it). */
    if (height > get_max_height(t))
        atomic_store_explicit(&t->max_height, height, memory_order_relaxed);

    for (int i = 0; i < height; i++) {
        mt_link *succ = atomic_load_explicit(link_at(prev[i], i),
                                             memory_order_relaxed);
        atomic_store_explicit(link_at(n, i), succ, memory_order_relaxed);
        /* Publish: the entry bytes and n's own links are visible to any
         * reader that acquires this link. */
        atomic_store_explicit(link_at(prev[i], i), n, memory_order_release);
    }

    t->hint_node = n;
    t->hint_height = height;
    for (int i = 0; i < MT_MAX_HEIGHT; i++)
        t->hint_prev[i] = prev[i];

    uint64_t cnt = atomic_load_explicit(&t->count, memory_order_relaxed);
    if (cnt == 0 ||
        seq < atomic_load_explicit(&t->first_seq, memory_order_relaxed))
        atomic_store_explicit(&t->first_seq, seq, memory_order_relaxed);
    if (cnt == 0 ||
        seq > atomic_load_explicit(&t->last_seq, memory_order_relaxed))
        atomic_store_explicit(&t->last_seq, seq, memory_order_relaxed);
    atomic_store_explicit(&t->count, cnt + 1, memory_order_relaxed);
    return DM_OK;
}

/* ---- readers ---- */

enum mt_get_result mt_get(mt_table *t, buf_slice key, uint64_t snap_seq,
                          buf_slice *value)
{
    if (!filter_may_hold(t, key))
        return MT_NONE;
    if (snap_seq > IKEY_MAX_SEQ)
        snap_seq = IKEY_MAX_SEQ;
    mt_key k = { key.ptr, key.len, ikey_pack(snap_seq, IKEY_SEEK_TYPE) };
    mt_link *n = find_ge(t, &k, NULL);
    if (!n)
        return MT_NONE;
    const uint8_t *p = node_entry(n);
    size_t ikey_len = get_len(&p);
    size_t ulen = ikey_len - IKEY_TRAILER_LEN;
    if (ulen != key.len || (ulen && memcmp(p, key.ptr, ulen) != 0))
        return MT_NONE;
    /* n >= (key, snap_seq) with the same user key, so n.seq <= snap_seq
     * and it is the newest such entry. */
    if ((dec_u64(p + ulen) & 0xff) == IKEY_DEL)
        return MT_DELETED;
    p += ikey_len;
    size_t vlen = get_len(&p);
    *value = buf_slice_of(p, vlen);
    return MT_FOUND;
}

size_t mt_mem_usage(const mt_table *t) { return arena_mem_usage(&t->arena); }

uint64_t mt_count(const mt_table *t)
{
    return atomic_load_explicit((_Atomic uint64_t *)&t->count,
                                memory_order_relaxed);
}

uint64_t mt_first_seq(const mt_table *t)
{
    return atomic_load_explicit((_Atomic uint64_t *)&t->first_seq,
                                memory_order_relaxed);
}

uint64_t mt_last_seq(const mt_table *t)
{
    return atomic_load_explicit((_Atomic uint64_t *)&t->last_seq,
                                memory_order_relaxed);
}

/*
 * mt_check -- verifies the skiplist's structure: every level is strictly
 * increasing in ikey order, every node of level i > 0 is on level i-1,
 * and level 0 holds mt_count nodes.  DM_OK or DM_ECORRUPT.  O(n * height).
 * REQUIRES: no concurrent mt_add.  A test hook (declared by the tests, not
 * in memtable.h): a wrong link can leave every search correct but slow, so
 * only a structural check catches it.
 */
int mt_check(mt_table *t);
int mt_check(mt_table *t)
{
    int height = get_max_height(t);
    if (height < 1 || height > MT_MAX_HEIGHT)
        return DM_ECORRUPT;
    for (int level = 0; level < height; level++) {
        mt_link *below = t->head; /* cursor on level-1 */
        mt_link *prev = NULL;
        uint64_t n = 0;
        for (mt_link *x = load_next(t->head, level); x;
             x = load_next(x, level)) {
            if (prev) {
                mt_key pk = key_of_node(prev);
                if (node_cmp(x, &pk) <= 0)
                    return DM_ECORRUPT;
            }
            if (level > 0) {
                while (below && below != x)
                    below = load_next(below, level - 1);
                if (!below)
                    return DM_ECORRUPT;
            }
            prev = x;
            n++;
        }
        if (level == 0 && n != mt_count(t))
            return DM_ECORRUPT;
    }
    for (int level = height; level < MT_MAX_HEIGHT; level++)
        if (load_next(t->head, level))
            return DM_ECORRUPT;
    return DM_OK;
}

/* ---- iterator ----
 *
 * Forward steps follow level-0 links.  prev() searches for the last node
 * smaller than the current one (O(log n), no back links to maintain under
 * concurrency); seek_last() walks down from the top level.  The iterator
 * never fails: status() is always DM_OK.
 */

typedef struct mt_iter {
    iter base;
    mt_table *t;
    mt_link *node; /* current node, NULL when not valid */
} mt_iter;

static bool mi_valid(iter *it) { return ((mt_iter *)it)->node != NULL; }

static void mi_seek_first(iter *it)
{
    mt_iter *mi = (mt_iter *)it;
    mi->node = load_next(mi->t->head, 0);
}

static void mi_seek_last(iter *it)
{
    mt_iter *mi = (mt_iter *)it;
    mt_link *n = find_last(mi->t);
    mi->node = n == mi->t->head ? NULL : n;
}

static void mi_seek(iter *it, buf_slice target)
{
    mt_iter *mi = (mt_iter *)it;
    mt_key k;
    if (target.len >= IKEY_TRAILER_LEN) {
        k.user = target.ptr;
        k.user_len = target.len - IKEY_TRAILER_LEN;
        k.trailer = ikey_trailer(target);
    } else {
        /* Not an internal key: treat it as a bare user key, which sorts
         * before every entry of that user key. */
        k.user = target.ptr;
        k.user_len = target.len;
        k.trailer = UINT64_MAX;
    }
    mi->node = find_ge(mi->t, &k, NULL);
}

static void mi_next(iter *it)
{
    mt_iter *mi = (mt_iter *)it;
    assert(mi->node);
    mi->node = load_next(mi->node, 0);
}

static void mi_prev(iter *it)
{
    mt_iter *mi = (mt_iter *)it;
    assert(mi->node);
    mt_key k = key_of_node(mi->node);
    mt_link *n = find_lt(mi->t, &k);
    mi->node = n == mi->t->head ? NULL : n;
}

static buf_slice mi_key(iter *it)
{
    mt_iter *mi = (mt_iter *)it;
    assert(mi->node);
    return node_ikey(mi->node);
}

static buf_slice mi_value(iter *it)
{
    mt_iter *mi = (mt_iter *)it;
    assert(mi->node);
    return node_value(mi->node);
}

static int mi_status(iter *it) { return DM_OK; }

static void mi_free(iter *it)
{
    mt_iter *mi = (mt_iter *)it;
    mt_unref(mi->t);
    dm_free(mi);
}

static const iter_ops mt_iter_ops = {
    .valid = mi_valid,
    .seek_first = mi_seek_first,
    .seek_last = mi_seek_last,
    .seek = mi_seek,
    .next = mi_next,
    .prev = mi_prev,
    .key = mi_key,
    .value = mi_value,
    .status = mi_status,
    .free = mi_free,
};

iter *mt_iter_new(mt_table *t)
{
    mt_iter *mi = dm_malloc(sizeof *mi);
    if (!mi)
        return NULL;
    mi->base.ops = &mt_iter_ops;
    mi->t = t;
    mi->node = NULL;
    mt_ref(t);
    return &mi->base;
}
