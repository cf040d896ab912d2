/*
 * hnsw.c -- the per-user vector index: an exact scan while the index is
 * small, a hierarchical navigable small world graph (Malkov & Yashunin,
 * "Efficient and robust approximate nearest neighbor search using
 * Hierarchical Navigable Small World graphs") once it is not.
 *
 * DESIGN
 *
 * Nodes.  Every stored vector is a node with a dense internal id (u32, 0 ..
 * n_nodes-1) in insertion order.  Per node the index keeps the vector (a row of
 * `stride` elements: dim rounded up to a multiple of 8 and zero-padded, so
 * that the kernels never need a tail), its label (node_label) and a meta byte
 * (top layer in bits 0-4, "deleted" in bit 7).  The label map goes the other
 * way, for live nodes only: an open-addressing hash table (linear probing,
 * deletion by backward shift, so no tombstones; UINT32_MAX, the reserved
 * label, marks an empty slot).  Labels are normally dense small integers and an
 * array indexed by label would do, but its size would follow the largest label
 * rather than the number of vectors: one damaged label in a checkpoint, or one
 * huge document number, would cost gigabytes.  The table costs about 11 bytes
 * per live vector and is not on the search path (results carry labels from
 * node_label).
 *
 * Flat mode.  Below params.flat_threshold live vectors there is no graph:
 * search is an exact scan, a replaced label is overwritten in place and a
 * deleted one is removed by moving the last node into its slot, so flat
 * mode never holds deleted nodes.  The add that brings the live count to
 * the threshold builds the graph over every stored vector and the new one.
 * An exact scan of up to EXACT_WORDS nodes (a user's index, usually) packs
 * each hit into one 64-bit word that sorts best first, selects the best k
 * and sorts them: half the comparisons of a heap of k, and each a single
 * integer compare.
 *
 * Element type.  Rows hold float32 (params.elem HNSW_ELEM_F32, the
 * default; rows start on 32-byte boundaries) or IEEE binary16
 * (HNSW_ELEM_F16: half the memory and half the bytes a distance has to
 * fetch; rows start on 16-byte boundaries).  hnsw_add converts with
 * round-to-nearest-even; queries stay float32, and a distance is the
 * float32 . binary16 kernel of distance.c (F16C widening, float32
 * arithmetic).  Where the algorithm needs the distance between two stored
 * vectors (insertion, the neighbour heuristic), one of them is widened to
 * float32 into writer scratch first, so every distance has a float32 side
 * and a stored side.  The similarity a search reports is that of the
 * stored (rounded) vector.
 *
 * Graph mode.  Layer 0 links live in rows of 2M u32 per node (64-byte aligned;
 * the counts are in cnt0), because layer 0 is where searches spend their
 * time.  Upper layers are rare (a node reaches layer l with probability M^-l)
 * and live in one u32 pool, `upper`: a node of top layer L > 0 owns L
 * consecutive lists of 1 + M words (count, then M slots) starting at
 * upper_off[id]; nodes are only ever appended, so the pool is in node order
 * and is written to a checkpoint verbatim.  Unused link slots are always zero
 * (the checkpoint relies on it and hnsw_check verifies it).
 *
 * The algorithm follows the paper: a node's top layer is
 * floor(-ln(U) * mL), mL = 1 / ln(M), from a seeded generator whose state
 * is part of the checkpoint; insertion descends greedily from the entry
 * point through the layers above the node's top layer, then on each layer
 * from min(L, max_level) down to 0 runs a beam search of width
 * ef_construction, keeps M neighbours chosen by the diversity heuristic
 * (a candidate is kept only if it is closer to the new node than to every
 * neighbour kept before it), and links back, shrinking a full neighbour
 * list (M above layer 0, 2M at layer 0) with the same heuristic.  The next
 * layer starts from the closest node found.
 *
 * Distances.  Vectors are unit length (or zero); the distance is -dot
 * (ordering-equivalent to 1 - dot, one subtraction less) and the reported
 * similarity is dot.  The dot kernel is fetched once from distance.c.
 *
 * Deletion in graph mode only sets the deleted bit: the node keeps routing
 * searches and is skipped in results.  Replacing a label marks the old
 * node deleted and inserts a new one.  The space of deleted nodes comes
 * back only when the engine rebuilds the index.
 *
 * Search.  Greedy descent on the upper layers, then a beam search on layer
 * 0 with width max(ef, k) that works from a min-heap of candidates and a
 * max-heap of the best ef results.  Deleted nodes and nodes the filter
 * rejects still enter the candidate heap (they route) but not the results,
 * and while fewer than ef results pass the search keeps expanding: a
 * selective filter widens the beam.  That can degenerate into visiting
 * most of the graph, where the exact scan (one filter call per node, one
 * distance per passing node) is cheaper and exact.  So a filtered search
 * first estimates the passing share from a fixed sample of 128 nodes and
 * takes the exact scan when it predicts it to be cheaper (prefer_exact);
 * and a graph search that computes more than max(n/4, 32 ef) distances,
 * or ends with fewer than k results, is answered by the exact scan too.
 * Below the threshold, and always for hnsw_search_exact, the exact scan
 * runs directly; it needs no memory and keeps its top k in the caller's
 * output array.
 *
 * Memory.  The two big arrays, vector rows and layer-0 link rows, are
 * segmented (segs): a table of segments of 2^shift rows each (about 8 MiB:
 * the largest power of two of rows that fits), all full but the last.
 * Growth reallocates only the last segment while it is short and appends
 * segments after that, so no growth ever copies more than one segment;
 * a contiguous array would be copied whole each time it grows (realloc
 * falls back to malloc + copy + free whenever mremap fails, as it always
 * does on the development VM), and the copy touches fresh pages, which
 * costs more than the copy itself.  Locating a row costs one load
 * from the small segment table, which stays in L1.  Capacity grows by a
 * quarter, as for the small per-node arrays (labels, meta, counts, upper
 * offsets: 11 bytes a node), which stay contiguous and are reallocated.
 * Blocks of 2 MiB and more are advised to use transparent huge pages
 * before anything writes them (a search's random reads over tens of
 * megabytes otherwise miss the TLB; 8 MiB segments keep most of each
 * segment on huge pages), and those filled at once by a load are
 * prefaulted in one call (advise_big).
 *
 * Scratch.  A search needs a visited set (one u16 epoch per node: a new
 * search bumps the epoch instead of clearing the array), the two heaps and
 * a zero-padded float32 copy of the query (the writer's scratch has room
 * for two more rows: a widened base vector and a widened candidate).
 * Searches take a scratch from a small pool and give it back, so after
 * warm-up the search loop allocates nothing.  Writers use their own
 * scratch (h->build) whose capacity is ensured before an add changes
 * anything.
 *
 * INVARIANTS
 *   - n_nodes <= cap (node arrays) and, in graph mode, <= gcap (graph
 *     arrays); entries past n_nodes are uninitialised.  A node's row
 *     padding and the link slots past its counts are zero.  Every segment
 *     of a segs but the last holds 2^shift rows.
 *   - flat mode: no node is deleted; every meta byte is 0.
 *   - the label map holds (l, id) iff node id is live with label l.
 *   - graph mode with n_nodes > 0: entry < n_nodes and its level is
 *     max_level, the largest level of any node; every link points to
 *     another node whose top layer is at least the list's layer; no list
 *     repeats an id.
 *   - hnsw_add either succeeds or returns DM_ENOMEM with the index as it
 *     was: every allocation happens before the first change.  (A candidate
 *     heap that cannot grow in the middle of an insertion drops the
 *     candidate instead of failing, which only costs recall.)
 *
 * LOCKING.  hnsw_search, hnsw_search_exact, hnsw_vector, hnsw_get_vector,
 * hnsw_similarity, hnsw_count and the other getters only read the index,
 * except for the scratch pool, whose free list is guarded by pool->mu.
 * hnsw_add, hnsw_delete and hnsw_serialize need exclusive access (the
 * engine's per-user write lock).
 *
 * FORMAT OWNED: "HNSW index checkpoint" in docs/format.md, constants in
 * hnsw_format.h; written by hnsw_serialize (always the current version,
 * 2, which records the element type), validated field by field by
 * hnsw_deserialize (versions 1 and 2; version 1 is float32 only).
 */
#include "index/hnsw.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "base/alloc.h"
#include "base/crc.h"
#include "base/err.h"
#include "index/distance.h"
#include "index/hnsw_format.h"

/*
 * The live count from which the graph search (ef 64, k 10) beats the exact
 * scan on 100-d unit vectors: measured with bench_vector --threshold (see
 * docs/benchmarks.md), the two cross between 3072 and 3584 nodes (about
 * 30 us each, AVX2).  Below it the exact scan is as fast and exact.
 */
#define HNSW_DEFAULT_FLAT_THRESHOLD 3500u

/* Scratch blocks kept for reuse by searches; more concurrent searches than
 * this allocate and free their own. */
#define POOL_MAX 16u

#define VEC_ALIGN 32u
#define LINK_ALIGN 64u

/* Bytes a full segment may take: 8 MiB, so that even at an arbitrary page
 * offset three of its four 2 MiB stretches can be huge pages. */
#define SEG_MAX_LEN ((size_t)8 << 20)

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HOST_IS_LE 1
#else
#define HOST_IS_LE 0
#endif

typedef struct cand {
    float d;     /* -dot: smaller is closer */
    uint32_t id; /* internal id */
} cand;

typedef struct lslot {
    uint32_t label; /* UINT32_MAX: empty */
    uint32_t id;
} lslot;

typedef struct scratch {
    uint16_t *visited; /* n_visited epochs, one per node */
    size_t n_visited;
    uint16_t epoch;
    cand *cq; /* candidates: min-heap on d */
    uint32_t cq_cap;
    cand *top; /* results: max-heap on d */
    uint32_t top_cap;
    cand *sorted; /* construction: the results in ascending order */
    uint32_t sorted_cap;
    float *q; /* the query, zero-padded to stride floats; in the writer's
               * scratch followed by two more rows (base, cand) */
    void *q_raw;
    uint32_t q_cap; /* floats */
    struct scratch *next;
} scratch;

/*
 * A segmented array of fixed-length rows: row i is at
 * seg[i >> shift].p + (i & (2^shift - 1)) * row_len.  Every segment but
 * the last holds 2^shift rows; the last holds last_rows.
 */
typedef struct seg {
    unsigned char *p; /* aligned start */
    void *raw;        /* what dm_malloc returned */
} seg;

typedef struct segs {
    seg *seg;
    uint32_t n_seg;
    uint32_t tab_cap;   /* slots in seg */
    uint32_t shift;     /* log2 of the rows of a full segment */
    uint32_t last_rows; /* rows of the last segment */
    size_t row_len;     /* bytes per row */
    size_t align;       /* alignment of each segment's start */
} segs;

typedef struct scratch_pool {
    pthread_mutex_t mu; /* guards free_list and n_free */
    scratch *free_list;
    uint32_t n_free;
} scratch_pool;

struct hnsw {
    hnsw_params p;
    uint32_t dim;
    uint32_t stride;    /* elements per row: dim rounded up to 8 */
    uint32_t M0;        /* layer-0 capacity: 2M */
    uint32_t up_stride; /* words per upper-layer list: 1 + M */
    uint32_t efc;       /* max(ef_construction, M) */
    double mult;        /* mL = 1 / ln(M) */
    bool is_f16;        /* rows hold binary16, not float32 */
    dist_fn dot;        /* float32 rows */
    dist_f16_fn dot16;  /* binary16 rows */
    const dist_f16_kernels *f16;

    uint32_t n_nodes;
    uint32_t cap;
    uint32_t n_deleted;
    segs vecs;            /* cap rows of stride elements */
    uint32_t *node_label; /* cap */
    uint8_t *meta;        /* cap */

    bool has_graph;
    uint32_t gcap;        /* capacity of the graph arrays */
    segs links0;          /* gcap rows of M0 u32; no segment in flat mode */
    uint16_t *cnt0;       /* gcap */
    uint32_t *upper_off;  /* gcap */
    uint32_t *upper;      /* upper_cap words, n_upper used */
    size_t n_upper;
    size_t upper_cap;
    uint32_t entry;
    uint32_t max_level;
    uint64_t rng;

    lslot *lmap;     /* the label map: lmap_mask + 1 slots (a power of 2) */
    uint32_t lmap_mask;
    uint32_t lmap_n; /* occupied slots (= live nodes) */

    scratch *build;     /* the writer's scratch */
    scratch_pool *pool; /* the searches' scratch */
};

typedef struct sfilter {
    ix_filter_fn fn;
    void *arg;
} sfilter;

/* ------------------------------------------------------------- helpers */

static inline unsigned char *seg_row(const segs *a, uint32_t i)
{
    return a->seg[i >> a->shift].p +
           (size_t)(i & ((UINT32_C(1) << a->shift) - 1)) * a->row_len;
}

static inline size_t segs_rows(const segs *a)
{
    return a->n_seg ? ((size_t)(a->n_seg - 1) << a->shift) + a->last_rows : 0;
}

/* The stored row of node id (float32 or binary16 by h->is_f16). */
static inline const void *row_of(const hnsw *h, uint32_t id)
{
    return seg_row(&h->vecs, id);
}

static inline const float *row_f32(const hnsw *h, uint32_t id)
{
    return (const float *)(const void *)seg_row(&h->vecs, id);
}

static inline const uint16_t *row_f16(const hnsw *h, uint32_t id)
{
    return (const uint16_t *)(const void *)seg_row(&h->vecs, id);
}

static inline uint32_t *links_of(const hnsw *h, uint32_t id)
{
    return (uint32_t *)(void *)seg_row(&h->links0, id);
}

/*
 * widen -- node id's vector as float32 over the whole stride: the row
 * itself for float32, else converted into tmp (stride floats).  Borrowed
 * until the next write to tmp or to the index.
 */
static inline const float *widen(const hnsw *h, uint32_t id, float *tmp)
{
    if (!h->is_f16)
        return row_f32(h, id);
    h->f16->decode(tmp, row_f16(h, id), h->stride);
    return tmp;
}

static inline uint32_t level_of(const hnsw *h, uint32_t id)
{
    return h->meta[id] & HNSW_META_LEVEL_MASK;
}

static inline bool is_deleted(const hnsw *h, uint32_t id)
{
    return (h->meta[id] & HNSW_META_DELETED) != 0;
}

static inline uint32_t *upper_list(const hnsw *h, uint32_t id, uint32_t level)
{
    return h->upper + h->upper_off[id] + (size_t)(level - 1) * h->up_stride;
}

/* --------------------------------------------------------- label map */

static inline uint32_t lmap_home(uint32_t label, uint32_t mask)
{
    uint32_t x = label * UINT32_C(0x9e3779b1);
    return (x ^ (x >> 16)) & mask;
}

/* lmap_find -- the slot holding label, or the empty slot where it would go. */
static inline uint32_t lmap_find(const hnsw *h, uint32_t label)
{
    uint32_t i = lmap_home(label, h->lmap_mask);
    while (h->lmap[i].label != UINT32_MAX && h->lmap[i].label != label)
        i = (i + 1) & h->lmap_mask;
    return i;
}

static inline uint32_t lookup(const hnsw *h, uint32_t label)
{
    /* UINT32_MAX marks empty slots: it would "find" one. */
    if (!h->lmap || label == UINT32_MAX)
        return HNSW_NO_NODE;
    const lslot *s = &h->lmap[lmap_find(h, label)];
    return s->label == label ? s->id : HNSW_NO_NODE;
}

/* lmap_put -- map label to id (insert or update).  REQUIRES: room for one
 * more (lmap_reserve). */
static void lmap_put(hnsw *h, uint32_t label, uint32_t id)
{
    lslot *s = &h->lmap[lmap_find(h, label)];
    if (s->label != label) {
        s->label = label;
        h->lmap_n++;
    }
    s->id = id;
}

/* lmap_remove -- remove a present label; later members of its probe run
 * move back so that every lookup still finds its key. */
static void lmap_remove(hnsw *h, uint32_t label)
{
    uint32_t mask = h->lmap_mask;
    uint32_t i = lmap_find(h, label);
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (h->lmap[j].label == UINT32_MAX)
            break;
        uint32_t k = lmap_home(h->lmap[j].label, mask);
        /* Slot j may fill the hole at i unless its home lies cyclically
         * in (i, j]. */
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            h->lmap[i] = h->lmap[j];
            i = j;
        }
    }
    h->lmap[i].label = UINT32_MAX;
    h->lmap_n--;
}

/* lmap_reserve -- room for `need` labels at a load factor of at most 3/4. */
static int lmap_reserve(hnsw *h, uint32_t need)
{
    uint64_t cap = h->lmap ? (uint64_t)h->lmap_mask + 1 : 0;
    if ((uint64_t)need * 4 <= cap * 3)
        return DM_OK;
    uint64_t ncap = cap ? cap : 64;
    while ((uint64_t)need * 4 > ncap * 3)
        ncap *= 2;
    if (ncap > ((uint64_t)1 << 32))
        return err_set_msg(DM_ENOMEM, "hnsw: label map full");
    lslot *t = dm_malloc((size_t)ncap * sizeof *t);
    if (!t)
        return err_set_msg(DM_ENOMEM, "hnsw: no memory for the label map");
    for (uint64_t i = 0; i < ncap; i++)
        t[i].label = UINT32_MAX;
    lslot *old = h->lmap;
    h->lmap = t;
    h->lmap_mask = (uint32_t)(ncap - 1);
    h->lmap_n = 0;
    for (uint64_t i = 0; i < cap; i++)
        if (old[i].label != UINT32_MAX)
            lmap_put(h, old[i].label, old[i].id);
    dm_free(old);
    return DM_OK;
}

/* prefetch_rest -- start loading node id's row past its first cache
 * line (which the caller asked for earlier), up to its last byte. */
static inline void prefetch_rest(const hnsw *h, uint32_t id)
{
    const unsigned char *r = row_of(h, id);
    const unsigned char *e = r + h->vecs.row_len - 1;
    for (const unsigned char *x = r + 64; x < e; x += 64)
        __builtin_prefetch(x);
    __builtin_prefetch(e);
}

/* qdist -- the distance (-dot) from q, a float32 vector zero-padded to
 * stride, to node id. */
static inline float qdist(const hnsw *h, const float *q, uint32_t id)
{
    if (h->is_f16)
        return -h->dot16(q, row_f16(h, id), h->stride);
    return -h->dot(q, row_f32(h, id), h->stride);
}

/* sim_dim -- the similarity of q (dim floats, unpadded) and node id. */
static inline float sim_dim(const hnsw *h, const float *q, uint32_t id)
{
    if (h->is_f16)
        return h->dot16(q, row_f16(h, id), h->dim);
    return h->dot(q, row_f32(h, id), h->dim);
}

/* splitmix64: the level generator.  Its whole state is one u64, which the
 * checkpoint stores so that a reloaded index draws the same levels. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static uint32_t draw_level(hnsw *h)
{
    /* u in (0, 1], so the logarithm is finite. */
    double u = (double)((rng_next(&h->rng) >> 11) + 1) * 0x1.0p-53;
    double l = -log(u) * h->mult;
    return l >= (double)HNSW_MAX_LEVEL ? HNSW_MAX_LEVEL : (uint32_t)l;
}

static void *alloc_aligned(size_t n, size_t align, void **raw)
{
    *raw = NULL;
    if (n > SIZE_MAX - align)
        return NULL;
    void *r = dm_malloc(n + align);
    if (!r)
        return NULL;
    *raw = r;
    return (void *)(((uintptr_t)r + align - 1) & ~(uintptr_t)(align - 1));
}

/* ---------------------------------------------------------------- heaps */

/* Min-heap on d (the candidate queue). */
static inline void minheap_up(cand *a, uint32_t i)
{
    cand x = a[i];
    while (i) {
        uint32_t p = (i - 1) / 2;
        if (!(x.d < a[p].d))
            break;
        a[i] = a[p];
        i = p;
    }
    a[i] = x;
}

static inline void minheap_down(cand *a, uint32_t n, uint32_t i)
{
    cand x = a[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && a[c + 1].d < a[c].d)
            c++;
        if (!(a[c].d < x.d))
            break;
        a[i] = a[c];
        i = c;
    }
    a[i] = x;
}

/* Max-heap on d (the results: the worst on top). */
static inline void maxheap_up(cand *a, uint32_t i)
{
    cand x = a[i];
    while (i) {
        uint32_t p = (i - 1) / 2;
        if (!(x.d > a[p].d))
            break;
        a[i] = a[p];
        i = p;
    }
    a[i] = x;
}

static inline void maxheap_down(cand *a, uint32_t n, uint32_t i)
{
    cand x = a[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && a[c + 1].d > a[c].d)
            c++;
        if (!(a[c].d > x.d))
            break;
        a[i] = a[c];
        i = c;
    }
    a[i] = x;
}

/*
 * Top-k hits kept in the caller's output array: a heap with the worst hit
 * at the root, then sorted best first.  "Worse" is a lower similarity, or
 * on equal similarity a larger label, so that results never depend on
 * scan order.
 */
static inline bool hit_worse(hnsw_hit a, hnsw_hit b)
{
    return a.sim < b.sim || (a.sim == b.sim && a.label > b.label);
}

static void hits_down(hnsw_hit *a, uint32_t n, uint32_t i)
{
    hnsw_hit x = a[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && hit_worse(a[c + 1], a[c]))
            c++;
        if (!hit_worse(a[c], x))
            break;
        a[i] = a[c];
        i = c;
    }
    a[i] = x;
}

static void hits_offer(hnsw_hit *a, uint32_t *n, uint32_t k, uint32_t label,
                       float sim)
{
    /* A NaN similarity (a vector holding a NaN) ranks below everything. */
    hnsw_hit x = { label, sim == sim ? sim : -INFINITY };
    if (*n < k) {
        uint32_t i = (*n)++;
        while (i) {
            uint32_t p = (i - 1) / 2;
            if (!hit_worse(x, a[p]))
                break;
            a[i] = a[p];
            i = p;
        }
        a[i] = x;
    } else if (hit_worse(a[0], x)) {
        a[0] = x;
        hits_down(a, *n, 0);
    }
}

/* Heap sort: moving the worst to the end each time leaves the array best
 * first. */
static void hits_sort(hnsw_hit *a, uint32_t n)
{
    while (n > 1) {
        hnsw_hit t = a[0];
        a[0] = a[--n];
        a[n] = t;
        hits_down(a, n, 0);
    }
}

/* -------------------------------------------------------------- scratch */

static void scratch_free(scratch *s)
{
    if (!s)
        return;
    dm_free(s->visited);
    dm_free(s->cq);
    dm_free(s->top);
    dm_free(s->sorted);
    dm_free(s->q_raw);
    dm_free(s);
}

static size_t scratch_size(const scratch *s)
{
    return sizeof *s + s->n_visited * sizeof *s->visited +
           ((size_t)s->cq_cap + s->top_cap + s->sorted_cap) * sizeof(cand) +
           (s->q_raw ? (size_t)s->q_cap * sizeof(float) + VEC_ALIGN : 0);
}

static bool grow_cands(cand **a, uint32_t *cap, uint32_t need)
{
    if (*cap >= need)
        return true;
    uint32_t ncap = need;
    cand *n = dm_malloc((size_t)ncap * sizeof *n);
    if (!n)
        return false;
    dm_free(*a);
    *a = n;
    *cap = ncap;
    return true;
}

/*
 * scratch_ensure -- room for a search of width ef over h's node capacity.
 * The visited array follows h->cap, which grows geometrically, so a writer
 * adding one node at a time reallocates it only now and then.
 */
static int scratch_ensure(scratch *s, const hnsw *h, uint32_t ef, bool is_build)
{
    if (s->n_visited < h->cap) {
        uint16_t *v = dm_calloc(h->cap, sizeof *v);
        if (!v)
            return DM_ENOMEM;
        dm_free(s->visited);
        s->visited = v;
        s->n_visited = h->cap;
        s->epoch = 0;
    }
    if (!grow_cands(&s->top, &s->top_cap, ef + 1))
        return DM_ENOMEM;
    if (!grow_cands(&s->cq, &s->cq_cap, 2 * ef + h->M0 + 16))
        return DM_ENOMEM;
    if (is_build && !grow_cands(&s->sorted, &s->sorted_cap, ef + 1))
        return DM_ENOMEM;
    uint32_t q_need = (is_build ? 3 : 1) * h->stride;
    if (s->q_cap < q_need) {
        void *raw;
        float *q = alloc_aligned((size_t)q_need * sizeof *q, VEC_ALIGN, &raw);
        if (!q)
            return DM_ENOMEM;
        dm_free(s->q_raw);
        s->q_raw = raw;
        s->q = q;
        s->q_cap = q_need;
    }
    return DM_OK;
}

static scratch *scratch_acquire(const hnsw *h, uint32_t ef)
{
    scratch_pool *pool = h->pool;
    pthread_mutex_lock(&pool->mu);
    scratch *s = pool->free_list;
    if (s) {
        pool->free_list = s->next;
        pool->n_free--;
    }
    pthread_mutex_unlock(&pool->mu);
    if (!s && !(s = dm_calloc(1, sizeof *s)))
        return NULL;
    if (scratch_ensure(s, h, ef, false) != DM_OK) {
        scratch_free(s);
        return NULL;
    }
    return s;
}

static void scratch_release(const hnsw *h, scratch *s)
{
    scratch_pool *pool = h->pool;
    pthread_mutex_lock(&pool->mu);
    if (pool->n_free < POOL_MAX) {
        s->next = pool->free_list;
        pool->free_list = s;
        pool->n_free++;
        s = NULL;
    }
    pthread_mutex_unlock(&pool->mu);
    scratch_free(s);
}

static inline uint16_t next_epoch(scratch *s)
{
    if (++s->epoch == 0) {
        memset(s->visited, 0, s->n_visited * sizeof *s->visited);
        s->epoch = 1;
    }
    return s->epoch;
}

/* cq_push -- adds a candidate; if the heap is full and cannot grow, the
 * candidate is dropped (the search loses a little recall, nothing else). */
static inline void cq_push(scratch *s, uint32_t *n, float d, uint32_t id)
{
    if (*n == s->cq_cap) {
        uint64_t ncap = (uint64_t)s->cq_cap * 2;
        if (ncap > UINT32_MAX)
            return;
        cand *a = dm_realloc(s->cq, (size_t)ncap * sizeof *a);
        if (!a)
            return;
        s->cq = a;
        s->cq_cap = (uint32_t)ncap;
    }
    s->cq[*n].d = d;
    s->cq[*n].id = id;
    minheap_up(s->cq, (*n)++);
}

/* --------------------------------------------------------------- search */

static inline bool accept(const hnsw *h, const sfilter *f, uint32_t id)
{
    if (is_deleted(h, id))
        return false;
    return !f->fn || f->fn(f->arg, h->node_label[id]);
}

/* greedy -- on an upper layer, move to the closest neighbour until none is
 * closer. */
static void greedy(const hnsw *h, const float *q, uint32_t *ep, float *ep_d,
                   uint32_t level)
{
    bool changed = true;
    while (changed) {
        changed = false;
        const uint32_t *l = upper_list(h, *ep, level);
        uint32_t n = l[0];
        for (uint32_t j = 0; j < n; j++) {
            uint32_t id = l[1 + j];
            float d = qdist(h, q, id);
            if (d < *ep_d) {
                *ep_d = d;
                *ep = id;
                changed = true;
            }
        }
    }
}

/*
 * search_layer -- beam search of width ef on one layer from ep (distance
 * ep_d).  Leaves the results in s->top, a max-heap, and returns how many;
 * with a filter f only accepted nodes enter the results, and the search
 * returns -1 once it has computed more than `budget` distances (0: no
 * limit).  f == NULL accepts every node, deleted ones included
 * (construction: deleted nodes still route).
 */
static int64_t search_layer(const hnsw *h, scratch *s, const float *q,
                            uint32_t ep, float ep_d, uint32_t ef, uint32_t level,
                            const sfilter *f, uint64_t budget)
{
    uint16_t tag = next_epoch(s);
    uint16_t *vis = s->visited;
    cand *top = s->top;
    uint32_t n_top = 0, n_cq = 0;
    float lower = INFINITY;
    uint64_t n_dist = 0;
    uint32_t todo[2 * HNSW_MAX_M];

    vis[ep] = tag;
    if (!f || accept(h, f, ep)) {
        top[0].d = ep_d;
        top[0].id = ep;
        n_top = 1;
        lower = ep_d;
    }
    cq_push(s, &n_cq, ep_d, ep);

    while (n_cq) {
        cand c = s->cq[0];
        if (c.d > lower && (n_top == ef || !f))
            break;
        s->cq[0] = s->cq[--n_cq];
        if (n_cq) {
            minheap_down(s->cq, n_cq, 0);
            /* The next node to expand is most likely the new best
             * candidate: start fetching its links now. */
            if (level == 0)
                __builtin_prefetch(links_of(h, s->cq[0].id));
        }

        const uint32_t *nb;
        uint32_t cnt;
        if (level == 0) {
            nb = links_of(h, c.id);
            cnt = h->cnt0[c.id];
        } else {
            const uint32_t *l = upper_list(h, c.id, level);
            cnt = l[0];
            nb = l + 1;
        }

        /* First pass: pick the unvisited neighbours (without branches:
         * whether a neighbour was visited is a coin toss the branch
         * predictor loses), then start loading the first line of each
         * one's vector, so that the memory fetches overlap with the
         * distance computations of the second pass, which fetches the
         * rest of the next vector while it computes the current one. */
        uint32_t n_todo = 0;
        for (uint32_t j = 0; j < cnt; j++) {
            uint32_t id = nb[j];
            uint32_t is_new = vis[id] != tag;
            vis[id] = tag;
            todo[n_todo] = id;
            n_todo += is_new;
        }
        for (uint32_t t = 0; t < n_todo; t++)
            __builtin_prefetch(row_of(h, todo[t]));
        for (uint32_t t = 0; t < n_todo; t++) {
            uint32_t id = todo[t];
            if (t + 1 < n_todo)
                prefetch_rest(h, todo[t + 1]);
            float d = qdist(h, q, id);
            if (n_top < ef || d < lower) {
                cq_push(s, &n_cq, d, id);
                if (!f || accept(h, f, id)) {
                    if (n_top < ef) {
                        top[n_top].d = d;
                        top[n_top].id = id;
                        maxheap_up(top, n_top++);
                    } else {
                        top[0].d = d;
                        top[0].id = id;
                        maxheap_down(top, n_top, 0);
                    }
                    lower = top[0].d;
                }
            }
        }
        n_dist += n_todo;
        if (budget && n_dist > budget)
            return -1;
    }
    return n_top;
}

/*
 * A hit as one sortable word, for the exact scan of a small index: the
 * similarity's bits mapped to an unsigned order (negatives flipped whole,
 * positives with the sign bit set), inverted so that ascending words are
 * best first, above the label, which breaks ties as hit_worse does.
 */
static inline uint64_t hit_word(uint32_t label, float sim)
{
    if (!(sim == sim))
        sim = -INFINITY; /* NaN ranks below everything */
    if (sim == 0)
        sim = 0; /* -0 ties +0, as in hit_worse */
    uint32_t b;
    memcpy(&b, &sim, sizeof b);
    b = b & 0x80000000u ? ~b : b | 0x80000000u;
    return (uint64_t)~b << 32 | label;
}

static inline hnsw_hit hit_of_word(uint64_t w)
{
    uint32_t b = ~(uint32_t)(w >> 32);
    b = b & 0x80000000u ? b & 0x7fffffffu : ~b;
    hnsw_hit x = { (uint32_t)w, 0 };
    memcpy(&x.sim, &b, sizeof b);
    return x;
}

static void words_insertion(uint64_t *a, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++) {
        uint64_t x = a[i];
        uint32_t j = i;
        for (; j > 0 && a[j - 1] > x; j--)
            a[j] = a[j - 1];
        a[j] = x;
    }
}

/* Partitions a[0..n) (n >= 3) around the median of three; returns p with
 * a[0..p) <= a[p] <= a[p+1..n). */
static uint32_t words_partition(uint64_t *a, uint32_t n)
{
    uint32_t m = n / 2;
    uint64_t t;
#define WSWAP(i, j) (t = a[i], a[i] = a[j], a[j] = t)
    if (a[m] < a[0])
        WSWAP(m, 0);
    if (a[n - 1] < a[0])
        WSWAP(n - 1, 0);
    if (a[n - 1] < a[m])
        WSWAP(n - 1, m);
    WSWAP(m, n - 1); /* the median is the pivot, at the end */
    uint64_t pivot = a[n - 1];
    uint32_t p = 0;
    for (uint32_t i = 0; i + 1 < n; i++)
        if (a[i] < pivot) {
            WSWAP(i, p);
            p++;
        }
    WSWAP(p, n - 1);
#undef WSWAP
    return p;
}

/* The k smallest words of a[0..n) into a[0..k), in no order. */
static void words_select(uint64_t *a, uint32_t n, uint32_t k)
{
    while (n > 16 && k < n) {
        uint32_t p = words_partition(a, n);
        if (p + 1 == k || p == k)
            return;
        if (p > k) {
            n = p;
        } else {
            a += p + 1;
            n -= p + 1;
            k -= p + 1;
        }
    }
    words_insertion(a, n);
}

static void words_sort(uint64_t *a, uint32_t n)
{
    while (n > 16) {
        uint32_t p = words_partition(a, n);
        /* recurse into the smaller side, loop on the larger */
        if (p < n - p - 1) {
            words_sort(a, p);
            a += p + 1;
            n -= p + 1;
        } else {
            words_sort(a + p + 1, n - p - 1);
            n = p;
        }
    }
    words_insertion(a, n);
}

#define EXACT_WORDS 512 /* the scan of an index this small sorts words */

static void exact_scan(const hnsw *h, const float *q, uint32_t k,
                       ix_filter_fn filter, void *arg, hnsw_hit *out,
                       uint32_t *n_out)
{
    /* A small index: every similarity as a word, then the best k selected
     * and sorted (fewer and cheaper comparisons than a heap of k); a larger
     * one: a heap of k. */
    bool small = h->n_nodes <= EXACT_WORDS;
    uint64_t w[EXACT_WORDS];
    uint32_t n = 0;
    for (uint32_t id = 0; id < h->n_nodes; id++) {
        if (is_deleted(h, id))
            continue;
        uint32_t label = h->node_label[id];
        if (filter && !filter(arg, label))
            continue;
        float sim = sim_dim(h, q, id);
        if (small)
            w[n++] = hit_word(label, sim);
        else
            hits_offer(out, &n, k, label, sim);
    }
    if (!small) {
        hits_sort(out, n);
        *n_out = n;
        return;
    }
    if (n > k) {
        words_select(w, n, k);
        n = k;
    }
    words_sort(w, n);
    for (uint32_t i = 0; i < n; i++)
        out[i] = hit_of_word(w[i]);
    *n_out = n;
}

int hnsw_search_exact(const hnsw *h, const float *q, uint32_t k,
                      ix_filter_fn filter, void *arg, hnsw_hit *out,
                      uint32_t *n_out)
{
    *n_out = 0;
    if (k == 0)
        return DM_OK;
    exact_scan(h, q, k, filter, arg, out, n_out);
    return DM_OK;
}

/*
 * prefer_exact -- decide from a sample whether a filtered search should
 * skip the graph.  An unfiltered search of width ef computes about 12-19
 * ef distances (measured at 20k and 100k nodes), each costing about two
 * distances of a sequential scan (random reads, heap work): 32 ef in scan
 * units.  With a share s of the nodes passing, the beam has to go about
 * 1/s times as far to hold ef passing nodes, but never visits more than
 * the n nodes.  The exact scan costs n filter calls (a quarter of a
 * distance each) and s n distances.  The sample is 128 nodes at ids from
 * a fixed pseudo-random sequence: deterministic, and not fooled by filters
 * that follow a regular pattern of labels (an evenly spaced sample is);
 * should it still misjudge, the distance budget of the graph search
 * bounds the damage.
 */
static bool prefer_exact(const hnsw *h, const sfilter *f, uint32_t ef)
{
    uint32_t n = h->n_nodes;
    uint32_t n_sample = n < 128 ? n : 128, pass = 0;
    uint64_t x = 0;
    for (uint32_t i = 0; i < n_sample; i++) {
        uint32_t id = n <= 128 ? i : (uint32_t)((rng_next(&x) >> 32) * n >> 32);
        pass += accept(h, f, id);
    }
    double share = (pass + 0.5) / (n_sample + 1.0);
    double graph = 32.0 * ef / share;
    if (graph > n)
        graph = n; /* no search visits a node twice */
    return graph > (double)n * (share + 0.25);
}

int hnsw_search(const hnsw *h, const float *q, uint32_t k, uint32_t ef,
                ix_filter_fn filter, void *arg, hnsw_hit *out, uint32_t *n_out)
{
    *n_out = 0;
    uint32_t live = h->n_nodes - h->n_deleted;
    if (k == 0 || live == 0)
        return DM_OK;
    if (ef == 0)
        ef = h->p.ef_search;
    if (ef < k)
        ef = k;
    if (ef > h->n_nodes)
        ef = h->n_nodes;
    /* Deleted nodes are filtered out like rejected ones. */
    bool filtering = filter || h->n_deleted;
    sfilter f = { filter, arg };
    if (!h->has_graph || live < h->p.flat_threshold ||
        (filtering && prefer_exact(h, &f, ef))) {
        exact_scan(h, q, k, filter, arg, out, n_out);
        return DM_OK;
    }

    scratch *s = scratch_acquire(h, ef);
    if (!s)
        return err_set_msg(DM_ENOMEM, "hnsw: no memory for a search of ef %" PRIu32,
                           ef);
    memcpy(s->q, q, (size_t)h->dim * sizeof *q);
    memset(s->q + h->dim, 0, (size_t)(h->stride - h->dim) * sizeof *q);

    uint32_t ep = h->entry;
    float ep_d = qdist(h, s->q, ep);
    for (uint32_t l = h->max_level; l > 0; l--)
        greedy(h, s->q, &ep, &ep_d, l);

    uint64_t budget = 0;
    if (filtering) {
        budget = h->n_nodes / 4;
        if (budget < (uint64_t)32 * ef)
            budget = (uint64_t)32 * ef;
    }
    int64_t n = search_layer(h, s, s->q, ep, ep_d, ef, 0, filtering ? &f : NULL,
                             budget);
    if (n < 0 || (filtering && n < k)) {
        /* The filter passes fewer nodes than the sample suggested: the
         * exact scan is cheaper (budget exceeded) or finds more. */
        scratch_release(h, s);
        exact_scan(h, q, k, filter, arg, out, n_out);
        return DM_OK;
    }
    uint32_t m = 0;
    for (int64_t i = 0; i < n; i++)
        hits_offer(out, &m, k, h->node_label[s->top[i].id], -s->top[i].d);
    scratch_release(h, s);
    hits_sort(out, m);
    *n_out = m;
    return DM_OK;
}

/* ------------------------------------------------------------ insertion */

/*
 * select_neighbors -- the diversity heuristic.  in[0..n) is sorted by
 * distance to the base point, closest first; keeps at most m of them in
 * out: a candidate is kept only if it is closer to the base point than to
 * every candidate kept before it.  With fewer than m candidates all are
 * kept.  tmp: stride floats of writer scratch (binary16 rows are widened
 * there).
 */
static uint32_t select_neighbors(const hnsw *h, const cand *in, uint32_t n,
                                 uint32_t m, cand *out, float *tmp)
{
    if (n < m) {
        memcpy(out, in, (size_t)n * sizeof *in);
        return n;
    }
    uint32_t ns = 0;
    for (uint32_t i = 0; i < n && ns < m; i++) {
        const float *v = widen(h, in[i].id, tmp);
        bool good = true;
        for (uint32_t j = 0; j < ns; j++) {
            if (qdist(h, v, out[j].id) < in[i].d) {
                good = false;
                break;
            }
        }
        if (good)
            out[ns++] = in[i];
    }
    return ns;
}

static void sort_cands(cand *a, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++) {
        cand x = a[i];
        uint32_t j = i;
        while (j && a[j - 1].d > x.d) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = x;
    }
}

/* link_back -- add c (distance d) to node n's list on `level`; a full list
 * is re-chosen with the heuristic from its members and c.  Uses the two
 * spare rows of the writer's scratch. */
static void link_back(hnsw *h, uint32_t n, uint32_t c, float d, uint32_t level)
{
    uint32_t cap, cnt, *ids;
    uint32_t *ul = NULL;
    if (level == 0) {
        cap = h->M0;
        cnt = h->cnt0[n];
        ids = links_of(h, n);
    } else {
        cap = h->p.M;
        ul = upper_list(h, n, level);
        cnt = ul[0];
        ids = ul + 1;
    }
    if (cnt < cap) {
        ids[cnt++] = c;
    } else {
        cand in[2 * HNSW_MAX_M + 1], out[2 * HNSW_MAX_M];
        float *base = h->build->q + h->stride, *tmp = base + h->stride;
        const float *vn = widen(h, n, base);
        in[0].d = d;
        in[0].id = c;
        for (uint32_t j = 0; j < cnt; j++) {
            in[j + 1].d = qdist(h, vn, ids[j]);
            in[j + 1].id = ids[j];
        }
        sort_cands(in, cnt + 1);
        uint32_t ns = select_neighbors(h, in, cnt + 1, cap, out, tmp);
        for (uint32_t j = 0; j < ns; j++)
            ids[j] = out[j].id;
        for (uint32_t j = ns; j < cnt; j++)
            ids[j] = 0;
        cnt = ns;
    }
    if (level == 0)
        h->cnt0[n] = (uint16_t)cnt;
    else
        ul[0] = cnt;
}

/*
 * insert_node -- link node c (vector, level and empty lists already in
 * place) into the graph.  Cannot fail: the caller ensured h->build.
 */
static void insert_node(hnsw *h, uint32_t c)
{
    scratch *s = h->build;
    uint32_t L = level_of(h, c);
    if (h->entry == HNSW_NO_NODE) {
        h->entry = c;
        h->max_level = L;
        return;
    }
    /* s->q is this insertion's query; link_back uses the rows after it. */
    const float *v = widen(h, c, s->q);
    uint32_t ep = h->entry;
    float ep_d = qdist(h, v, ep);
    for (uint32_t l = h->max_level; l > L; l--)
        greedy(h, v, &ep, &ep_d, l);

    cand sel[HNSW_MAX_M];
    for (uint32_t l = L < h->max_level ? L : h->max_level;; l--) {
        int64_t nr = search_layer(h, s, v, ep, ep_d, h->efc, l, NULL, 0);
        /* Pop the max-heap from the back: s->sorted ends up ascending. */
        uint32_t n = (uint32_t)nr;
        for (uint32_t i = n; i > 0; i--) {
            s->sorted[i - 1] = s->top[0];
            s->top[0] = s->top[i - 1];
            if (i - 1)
                maxheap_down(s->top, i - 1, 0);
        }
        ep = s->sorted[0].id;
        ep_d = s->sorted[0].d;
        uint32_t ns = select_neighbors(h, s->sorted, n, h->p.M, sel,
                                       s->q + 2 * (size_t)h->stride);
        uint32_t *own;
        if (l == 0) {
            own = links_of(h, c);
            h->cnt0[c] = (uint16_t)ns;
        } else {
            uint32_t *ul = upper_list(h, c, l);
            ul[0] = ns;
            own = ul + 1;
        }
        for (uint32_t j = 0; j < ns; j++)
            own[j] = sel[j].id;
        for (uint32_t j = 0; j < ns; j++)
            link_back(h, sel[j].id, c, sel[j].d, l);
        if (l == 0)
            break;
    }
    if (L > h->max_level) {
        h->entry = c;
        h->max_level = L;
    }
}

/* ---------------------------------------------------------------- memory */

/*
 * advise_big -- hints for a large block.  Transparent huge pages cut the
 * TLB misses of a search's random reads over tens of megabytes of vectors
 * and links, and the number of page faults while the block is filled;
 * with `populate` the kernel faults the whole range in at once, which on
 * virtual machines is many times cheaper than one trap per 4 KiB page
 * (this is most of what loading a checkpoint costs otherwise).  Hints
 * only: the block is ours while allocated, and failures change nothing.
 */
static void advise_big(void *p, size_t len, bool populate)
{
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    const uintptr_t page = 4096;
    if (len < ((size_t)2 << 20))
        return;
    uintptr_t a = ((uintptr_t)p + page - 1) & ~(page - 1);
    uintptr_t e = ((uintptr_t)p + len) & ~(page - 1);
    if (e <= a)
        return;
    (void)madvise((void *)a, e - a, MADV_HUGEPAGE);
#ifdef MADV_POPULATE_WRITE
    if (populate)
        (void)madvise((void *)a, e - a, MADV_POPULATE_WRITE);
#endif
#else
    (void)p;
    (void)len;
    (void)populate;
#endif
}

/*
 * grow_aligned -- resize an aligned block to n bytes, keeping its first
 * `used` bytes.  On failure the block is unchanged.  A block of 2 MiB or
 * more is a new allocation, advised before the copy writes it: realloc's
 * copy would fault the new block in as small pages before advise_big could
 * ask for huge ones (and an mremap keeps the small pages), which leaves a
 * grown array off huge pages for good.  Smaller blocks go through
 * dm_realloc; if the new block's alignment offset differs, the contents
 * are moved to the new aligned start.
 */
static int grow_aligned(void **raw, void **p, size_t used, size_t n, size_t align)
{
    if (n >= ((size_t)2 << 20)) {
        void *nraw;
        unsigned char *np = alloc_aligned(n, align, &nraw);
        if (!np)
            return DM_ENOMEM;
        advise_big(np, n, false);
        if (used)
            memcpy(np, *p, used);
        dm_free(*raw);
        *raw = nraw;
        *p = np;
        return DM_OK;
    }
    size_t old_off = *raw ? (size_t)((uintptr_t)*p - (uintptr_t)*raw) : 0;
    if (n > SIZE_MAX - align)
        return DM_ENOMEM;
    unsigned char *r = dm_realloc(*raw, n + align);
    if (!r)
        return DM_ENOMEM;
    size_t off = (size_t)((((uintptr_t)r + align - 1) & ~(uintptr_t)(align - 1)) -
                          (uintptr_t)r);
    if (off != old_off && used)
        memmove(r + off, r + old_off, used);
    *raw = r;
    *p = r + off;
    advise_big(r + off, n, false);
    return DM_OK;
}

static int grow_array(void **a, size_t n)
{
    void *b = dm_realloc(*a, n ? n : 1);
    if (!b)
        return DM_ENOMEM;
    *a = b;
    return DM_OK;
}

/* ------------------------------------------------------ segmented rows */

/* segs_init -- an empty array of row_len-byte rows; a full segment holds
 * the largest power of two of rows that fits in SEG_MAX_LEN (at least 1). */
static void segs_init(segs *a, size_t row_len, size_t align)
{
    memset(a, 0, sizeof *a);
    a->row_len = row_len;
    a->align = align;
    while (a->shift < 24 && ((size_t)2 << a->shift) * row_len <= SEG_MAX_LEN)
        a->shift++;
}

static void segs_free(segs *a)
{
    for (uint32_t i = 0; i < a->n_seg; i++)
        dm_free(a->seg[i].raw);
    dm_free(a->seg);
    a->seg = NULL;
    a->n_seg = a->tab_cap = a->last_rows = 0;
}

/* Bytes allocated: the segments (with their alignment slack) and the
 * table. */
static size_t segs_memsize(const segs *a)
{
    return segs_rows(a) * a->row_len + (size_t)a->n_seg * a->align +
           (size_t)a->tab_cap * sizeof(seg);
}

/*
 * seg_rows_for -- how many rows to give a segment that must hold at least
 * `rows` (<= full).  Exactly that for an exact reservation; otherwise a
 * segment that would pass 2 MiB goes straight to full length, so that a
 * large index copies nothing more than its first 2 MiB of each array on
 * its way up, and its segments are long enough for huge pages.  The
 * untouched rest of a segment costs address space, not resident memory.
 */
static size_t seg_rows_for(const segs *a, size_t rows, bool is_exact)
{
    size_t full = (size_t)1 << a->shift;
    if (!is_exact && rows * a->row_len > ((size_t)2 << 20))
        return full;
    return rows;
}

/*
 * segs_reserve -- room for `want` rows, of which the first `used` hold
 * data.  A short last segment is grown first (the only copy, at most one
 * segment), then full segments are appended, the last of them only as
 * long as seg_rows_for says.  On failure the rows and their contents are
 * unchanged, though the table or some appended segments may remain:
 * capacity the caller does not record.
 */
static int segs_reserve(segs *a, size_t want, size_t used, bool is_exact)
{
    size_t have = segs_rows(a);
    if (want <= have)
        return DM_OK;
    size_t full = (size_t)1 << a->shift;
    size_t n_need = (want + full - 1) >> a->shift;
    if (n_need > a->tab_cap) {
        size_t ncap = (size_t)a->tab_cap * 2;
        if (ncap < n_need)
            ncap = n_need;
        seg *t = dm_realloc(a->seg, ncap * sizeof *t);
        if (!t)
            return DM_ENOMEM;
        a->seg = t;
        a->tab_cap = (uint32_t)ncap;
    }
    if (a->n_seg && a->last_rows < full) {
        size_t base = have - a->last_rows;
        size_t rows = seg_rows_for(a, want - base < full ? want - base : full,
                                   is_exact);
        size_t in_use = used > base ? used - base : 0;
        seg *l = &a->seg[a->n_seg - 1];
        void *raw = l->raw, *p = l->p;
        if (grow_aligned(&raw, &p, in_use * a->row_len, rows * a->row_len,
                         a->align) != DM_OK)
            return DM_ENOMEM;
        l->raw = raw;
        l->p = p;
        a->last_rows = (uint32_t)rows;
        have = base + rows;
    }
    while (have < want) {
        size_t rows = seg_rows_for(a, want - have < full ? want - have : full,
                                   is_exact);
        void *raw;
        unsigned char *p = alloc_aligned(rows * a->row_len, a->align, &raw);
        if (!p)
            return DM_ENOMEM;
        advise_big(p, rows * a->row_len, false);
        a->seg[a->n_seg].p = p;
        a->seg[a->n_seg].raw = raw;
        a->n_seg++;
        a->last_rows = (uint32_t)rows;
        have += rows;
    }
    return DM_OK;
}

/* segs_prefault -- the advice of a load: huge pages and prefaulting for
 * the first `rows` rows, which are about to be written at once. */
static void segs_prefault(const segs *a, size_t rows)
{
    size_t full = (size_t)1 << a->shift;
    for (uint32_t i = 0; i < a->n_seg && rows; i++) {
        size_t r = i + 1 < a->n_seg ? full : a->last_rows;
        if (r > rows)
            r = rows;
        advise_big(a->seg[i].p, r * a->row_len, true);
        rows -= r;
    }
}

/*
 * reserve_nodes -- capacity for `need` nodes, and the graph arrays when
 * with_graph.  The node arrays (vectors, labels, meta) share h->cap and
 * the graph arrays (links0, cnt0, upper_off) h->gcap; a capacity is raised
 * only when every array of its group grew, so a failure leaves some
 * arrays larger than their recorded capacity and nothing else changed.
 * Capacity grows by a quarter: at 100k vectors the slack matters more than
 * the extra reallocations, which the segmented rows make cheap (and whose
 * untouched tail costs address space, not resident memory).  Newly gained
 * space is not zeroed; an add initialises its node's row and links.
 */
static int reserve_nodes(hnsw *h, uint32_t need, bool with_graph, bool is_exact)
{
    bool want_graph = with_graph || h->links0.n_seg;
    if (need <= h->cap && (!want_graph || need <= h->gcap))
        return DM_OK;
    size_t ncap = h->cap;
    if (need > h->cap) {
        ncap = (size_t)h->cap + h->cap / 4;
        if (ncap < need || is_exact)
            ncap = need;
        if (ncap < 64 && !is_exact)
            ncap = 64;
        if (ncap > HNSW_MAX_NODES)
            ncap = HNSW_MAX_NODES;
    }
    size_t n = h->n_nodes;
    if (ncap > h->cap) {
        if (segs_reserve(&h->vecs, ncap, n, is_exact) != DM_OK ||
            grow_array((void **)&h->node_label, ncap * sizeof *h->node_label) !=
                DM_OK ||
            grow_array((void **)&h->meta, ncap) != DM_OK)
            goto fail;
        h->cap = (uint32_t)ncap;
    }
    if (want_graph && h->gcap < ncap) {
        if (segs_reserve(&h->links0, ncap, h->has_graph ? n : 0, is_exact) !=
                DM_OK ||
            grow_array((void **)&h->cnt0, ncap * sizeof *h->cnt0) != DM_OK ||
            grow_array((void **)&h->upper_off, ncap * sizeof *h->upper_off) !=
                DM_OK)
            goto fail;
        h->gcap = (uint32_t)ncap;
    }
    return DM_OK;

fail:
    return err_set_msg(DM_ENOMEM, "hnsw: no memory for %" PRIu32 " nodes", need);
}

static int reserve_upper(hnsw *h, size_t need)
{
    if (need <= h->upper_cap)
        return DM_OK;
    if (need > UINT32_MAX)
        return err_set_msg(DM_ENOMEM, "hnsw: upper layers full");
    size_t ncap = h->upper_cap + h->upper_cap / 2;
    if (ncap < need)
        ncap = need;
    if (ncap < 256)
        ncap = 256;
    if (ncap > UINT32_MAX)
        ncap = UINT32_MAX;
    uint32_t *u = dm_realloc(h->upper, ncap * sizeof *u);
    if (!u)
        return err_set_msg(DM_ENOMEM, "hnsw: no memory for upper layers");
    h->upper = u;
    h->upper_cap = ncap;
    return DM_OK;
}

static int ensure_build_scratch(hnsw *h)
{
    if (!h->build && !(h->build = dm_calloc(1, sizeof *h->build)))
        return err_set_msg(DM_ENOMEM, "hnsw: no memory for insertion");
    if (scratch_ensure(h->build, h, h->efc, true) != DM_OK)
        return err_set_msg(DM_ENOMEM, "hnsw: no memory for insertion");
    return DM_OK;
}

/* store_vec -- node id's row from vec (dim floats): copied, or rounded to
 * binary16; the padding zeroed. */
static void store_vec(hnsw *h, uint32_t id, const float *vec)
{
    void *row = seg_row(&h->vecs, id);
    if (h->is_f16) {
        uint16_t *r = row;
        h->f16->encode(r, vec, h->dim);
        memset(r + h->dim, 0, (size_t)(h->stride - h->dim) * sizeof *r);
    } else {
        float *r = row;
        memcpy(r, vec, (size_t)h->dim * sizeof *r);
        memset(r + h->dim, 0, (size_t)(h->stride - h->dim) * sizeof *r);
    }
}

/* ------------------------------------------------------------ lifecycle */

static int check_params(const hnsw_params *p)
{
    if (p->dim < 1 || p->dim > HNSW_MAX_DIM)
        return err_set_msg(DM_EINVAL, "hnsw: dim %" PRIu32 " not in 1..%u", p->dim,
                           HNSW_MAX_DIM);
    if (p->M < HNSW_MIN_M || p->M > HNSW_MAX_M)
        return err_set_msg(DM_EINVAL, "hnsw: M %" PRIu32 " not in %u..%u", p->M,
                           HNSW_MIN_M, HNSW_MAX_M);
    if (p->ef_construction < 1 || p->ef_construction > HNSW_MAX_EF)
        return err_set_msg(DM_EINVAL, "hnsw: ef_construction %" PRIu32
                           " not in 1..%u", p->ef_construction, HNSW_MAX_EF);
    if (p->ef_search < 1 || p->ef_search > HNSW_MAX_EF)
        return err_set_msg(DM_EINVAL, "hnsw: ef_search %" PRIu32 " not in 1..%u",
                           p->ef_search, HNSW_MAX_EF);
    if (p->elem != HNSW_ELEM_F32 && p->elem != HNSW_ELEM_F16)
        return err_set_msg(DM_EINVAL, "hnsw: elem %d is not an element type",
                           (int)p->elem);
    return DM_OK;
}

hnsw_params hnsw_params_default(uint32_t dim)
{
    hnsw_params p = { dim, 16, 200, 64, HNSW_DEFAULT_FLAT_THRESHOLD, 42,
                      HNSW_ELEM_F32 };
    return p;
}

/* alloc_index -- an empty index for valid params (flat mode). */
static int alloc_index(const hnsw_params *p, hnsw **out)
{
    *out = NULL;
    hnsw *h = dm_calloc(1, sizeof *h);
    if (!h)
        goto fail;
    h->pool = dm_calloc(1, sizeof *h->pool);
    if (!h->pool)
        goto fail;
    if (pthread_mutex_init(&h->pool->mu, NULL) != 0) {
        dm_free(h->pool);
        h->pool = NULL;
        goto fail;
    }
    h->p = *p;
    h->dim = p->dim;
    h->stride = (p->dim + 7u) & ~7u;
    h->M0 = 2 * p->M;
    h->up_stride = 1 + p->M;
    h->efc = p->ef_construction > p->M ? p->ef_construction : p->M;
    h->mult = 1.0 / log((double)p->M);
    h->is_f16 = p->elem == HNSW_ELEM_F16;
    h->dot = dist_kernels_active()->dot;
    h->f16 = dist_f16_kernels_active();
    h->dot16 = h->f16->dot;
    segs_init(&h->vecs, (size_t)h->stride * (h->is_f16 ? 2 : 4),
              h->is_f16 ? VEC_ALIGN / 2 : VEC_ALIGN);
    segs_init(&h->links0, (size_t)h->M0 * sizeof(uint32_t), LINK_ALIGN);
    h->entry = HNSW_NO_NODE;
    h->rng = p->seed;
    *out = h;
    return DM_OK;

fail:
    hnsw_free(h);
    return err_set_msg(DM_ENOMEM, "hnsw: no memory for a new index");
}

int hnsw_new(const hnsw_params *p, hnsw **out)
{
    *out = NULL;
    int rc = check_params(p);
    if (rc != DM_OK)
        return rc;
    return alloc_index(p, out);
}

void hnsw_free(hnsw *h)
{
    if (!h)
        return;
    if (h->pool) {
        scratch *s = h->pool->free_list;
        while (s) {
            scratch *next = s->next;
            scratch_free(s);
            s = next;
        }
        pthread_mutex_destroy(&h->pool->mu);
        dm_free(h->pool);
    }
    scratch_free(h->build);
    segs_free(&h->vecs);
    dm_free(h->node_label);
    dm_free(h->meta);
    segs_free(&h->links0);
    dm_free(h->cnt0);
    dm_free(h->upper_off);
    dm_free(h->upper);
    dm_free(h->lmap);
    dm_free(h);
}

/* ------------------------------------------------------------- mutation */

/*
 * build_graph -- leave flat mode: add (label, vec) as a new node and link
 * every node into a new graph.  All allocation first; on failure the index
 * is exactly as before (levels drawn are undone, the generator rewound).
 */
static int build_graph(hnsw *h, uint32_t label, const float *vec)
{
    uint32_t n0 = h->n_nodes;
    uint32_t total = n0 + 1;
    int rc = reserve_nodes(h, total, true, false);
    if (rc == DM_OK)
        rc = lmap_reserve(h, h->lmap_n + 1);
    if (rc != DM_OK)
        return rc;
    uint64_t rng_saved = h->rng;
    size_t words = 0;
    for (uint32_t i = 0; i < total; i++) {
        uint32_t L = draw_level(h);
        h->meta[i] = (uint8_t)L;
        words += (size_t)L * h->up_stride;
    }
    rc = reserve_upper(h, words);
    if (rc == DM_OK)
        rc = ensure_build_scratch(h);
    if (rc != DM_OK) {
        memset(h->meta, 0, total);
        h->rng = rng_saved;
        return rc;
    }

    store_vec(h, n0, vec);
    h->node_label[n0] = label;
    lmap_put(h, label, n0);
    h->n_nodes = total;
    size_t off = 0;
    for (uint32_t i = 0; i < total; i++) {
        h->cnt0[i] = 0;
        h->upper_off[i] = level_of(h, i) ? (uint32_t)off : 0;
        off += (size_t)level_of(h, i) * h->up_stride;
    }
    for (uint32_t i = 0; i < total; i++)
        memset(links_of(h, i), 0, h->links0.row_len);
    if (words)
        memset(h->upper, 0, words * sizeof *h->upper);
    h->n_upper = words;
    h->has_graph = true;
    h->entry = HNSW_NO_NODE;
    h->max_level = 0;
    for (uint32_t i = 0; i < total; i++)
        insert_node(h, i);
    return DM_OK;
}

static int graph_add(hnsw *h, uint32_t label, const float *vec, uint32_t old)
{
    if (h->n_nodes >= HNSW_MAX_NODES)
        return err_set_msg(DM_ENOMEM, "hnsw: index full");
    int rc = reserve_nodes(h, h->n_nodes + 1, true, false);
    if (rc == DM_OK)
        rc = lmap_reserve(h, h->lmap_n + 1);
    if (rc != DM_OK)
        return rc;
    uint64_t rng_saved = h->rng;
    uint32_t L = draw_level(h);
    size_t words = (size_t)L * h->up_stride;
    rc = reserve_upper(h, h->n_upper + words);
    if (rc == DM_OK)
        rc = ensure_build_scratch(h);
    if (rc != DM_OK) {
        h->rng = rng_saved;
        return rc;
    }

    /* Nothing below can fail. */
    uint32_t c = h->n_nodes++;
    store_vec(h, c, vec);
    h->node_label[c] = label;
    h->meta[c] = (uint8_t)L;
    h->cnt0[c] = 0;
    memset(links_of(h, c), 0, h->links0.row_len);
    h->upper_off[c] = L ? (uint32_t)h->n_upper : 0;
    if (words)
        memset(h->upper + h->n_upper, 0, words * sizeof *h->upper);
    h->n_upper += words;
    if (old != HNSW_NO_NODE) {
        h->meta[old] |= HNSW_META_DELETED;
        h->n_deleted++;
    }
    lmap_put(h, label, c);
    insert_node(h, c);
    return DM_OK;
}

int hnsw_add(hnsw *h, uint32_t label, const float *vec)
{
    if (label == UINT32_MAX)
        return err_set_msg(DM_EINVAL, "hnsw: label %" PRIu32 " is reserved", label);
    uint32_t old = lookup(h, label);
    if (h->has_graph)
        return graph_add(h, label, vec, old);
    if (old != HNSW_NO_NODE) {
        store_vec(h, old, vec);
        return DM_OK;
    }
    if (h->n_nodes + 1 >= h->p.flat_threshold)
        return build_graph(h, label, vec);
    int rc = reserve_nodes(h, h->n_nodes + 1, false, false);
    if (rc == DM_OK)
        rc = lmap_reserve(h, h->lmap_n + 1);
    if (rc != DM_OK)
        return rc;
    uint32_t c = h->n_nodes++;
    store_vec(h, c, vec);
    h->node_label[c] = label;
    h->meta[c] = 0;
    lmap_put(h, label, c);
    return DM_OK;
}

int hnsw_reserve(hnsw *h, uint32_t n)
{
    if (n > HNSW_MAX_NODES)
        return err_set_msg(DM_ENOMEM, "hnsw: cannot hold %" PRIu32 " nodes", n);
    int rc = reserve_nodes(h, n, h->has_graph || n >= h->p.flat_threshold, true);
    if (rc == DM_OK)
        rc = lmap_reserve(h, n);
    return rc;
}

int hnsw_delete(hnsw *h, uint32_t label)
{
    uint32_t id = lookup(h, label);
    if (id == HNSW_NO_NODE)
        return DM_ENOTFOUND;
    lmap_remove(h, label);
    if (h->has_graph) {
        h->meta[id] |= HNSW_META_DELETED;
        h->n_deleted++;
        return DM_OK;
    }
    /* Flat mode: move the last node into the hole. */
    uint32_t last = --h->n_nodes;
    if (id != last) {
        memcpy(seg_row(&h->vecs, id), row_of(h, last), h->vecs.row_len);
        h->node_label[id] = h->node_label[last];
        lmap_put(h, h->node_label[id], id);
    }
    memset(seg_row(&h->vecs, last), 0, h->vecs.row_len);
    return DM_OK;
}

/* -------------------------------------------------------------- getters */

const float *hnsw_vector(const hnsw *h, uint32_t label)
{
    if (h->is_f16)
        return NULL;
    uint32_t id = lookup(h, label);
    return id == HNSW_NO_NODE ? NULL : row_f32(h, id);
}

int hnsw_get_vector(const hnsw *h, uint32_t label, float *out)
{
    uint32_t id = lookup(h, label);
    if (id == HNSW_NO_NODE) {
        memset(out, 0, (size_t)h->dim * sizeof *out);
        return DM_ENOTFOUND;
    }
    if (h->is_f16)
        h->f16->decode(out, row_f16(h, id), h->dim);
    else
        memcpy(out, row_f32(h, id), (size_t)h->dim * sizeof *out);
    return DM_OK;
}

int hnsw_similarity(const hnsw *h, const float *q, uint32_t label, float *sim)
{
    uint32_t id = lookup(h, label);
    if (id == HNSW_NO_NODE) {
        *sim = 0.0f;
        return DM_ENOTFOUND;
    }
    *sim = sim_dim(h, q, id);
    return DM_OK;
}

uint32_t hnsw_count(const hnsw *h)
{
    return h->n_nodes - h->n_deleted;
}

uint32_t hnsw_deleted(const hnsw *h)
{
    return h->n_deleted;
}

int hnsw_has_graph(const hnsw *h)
{
    return h->has_graph ? 1 : 0;
}

const hnsw_params *hnsw_get_params(const hnsw *h)
{
    return &h->p;
}

size_t hnsw_memsize(const hnsw *h)
{
    size_t c = h->cap;
    size_t n = sizeof *h + sizeof *h->pool;
    n += segs_memsize(&h->vecs) + segs_memsize(&h->links0);
    if (h->node_label)
        n += c * (sizeof(uint32_t) + 1);
    if (h->cnt0)
        n += (size_t)h->gcap * (sizeof(uint16_t) + sizeof(uint32_t));
    n += h->upper_cap * sizeof(uint32_t);
    if (h->lmap)
        n += ((size_t)h->lmap_mask + 1) * sizeof(lslot);
    if (h->build)
        n += scratch_size(h->build);
    pthread_mutex_lock(&h->pool->mu);
    for (const scratch *s = h->pool->free_list; s; s = s->next)
        n += scratch_size(s);
    pthread_mutex_unlock(&h->pool->mu);
    return n;
}

/* ----------------------------------------------------------- validation */

/*
 * Where a problem is reported: by node and layer (hnsw_check), or by byte
 * offset in a checkpoint (hnsw_deserialize).
 */
typedef struct where {
    bool is_load;
    size_t links0_off; /* offset of the links0 section */
    size_t upper_off;  /* offset of the upper section */
} where;

static int list_error(const hnsw *h, const where *w, uint32_t node,
                      uint32_t level, uint32_t slot, const char *why)
{
    if (!w->is_load)
        return err_set_msg(DM_ECORRUPT, "hnsw: node %" PRIu32 " layer %" PRIu32
                           " slot %" PRIu32 ": %s", node, level, slot, why);
    size_t off;
    if (level == 0)
        off = w->links0_off + ((size_t)node * (1 + h->M0) + slot) * 4;
    else
        off = w->upper_off +
              ((size_t)h->upper_off[node] + (size_t)(level - 1) * h->up_stride +
               slot) * 4;
    return err_set_msg(DM_ECORRUPT, "hnsw checkpoint: offset %zu: node %" PRIu32
                       " layer %" PRIu32 ": %s", off, node, level, why);
}

/*
 * check_lists -- every link list: count within capacity, ids in range,
 * not the node itself, present on the list's layer, no repeats, unused
 * slots zero.  mark has n_nodes entries (zeroed by the caller).  Slot
 * numbers in reports count the count word as slot 0.
 */
static int check_lists(const hnsw *h, const where *w, uint32_t *mark)
{
    uint32_t tag = 0;
    for (uint32_t i = 0; i < h->n_nodes; i++) {
        uint32_t L = level_of(h, i);
        for (uint32_t l = 0; l <= L; l++) {
            const uint32_t *ids;
            uint32_t cnt, cap;
            if (l == 0) {
                ids = links_of(h, i);
                cnt = h->cnt0[i];
                cap = h->M0;
            } else {
                const uint32_t *ul = upper_list(h, i, l);
                cnt = ul[0];
                ids = ul + 1;
                cap = h->p.M;
            }
            if (cnt > cap)
                return list_error(h, w, i, l, 0, "link count exceeds capacity");
            if (++tag == 0) {
                memset(mark, 0, (size_t)h->n_nodes * sizeof *mark);
                tag = 1;
            }
            for (uint32_t j = 0; j < cnt; j++) {
                uint32_t id = ids[j];
                if (id >= h->n_nodes)
                    return list_error(h, w, i, l, 1 + j, "link out of range");
                if (id == i)
                    return list_error(h, w, i, l, 1 + j, "link to itself");
                if (level_of(h, id) < l)
                    return list_error(h, w, i, l, 1 + j,
                                      "link to a node absent from the layer");
                if (mark[id] == tag)
                    return list_error(h, w, i, l, 1 + j, "link repeated");
                mark[id] = tag;
            }
            for (uint32_t j = cnt; j < cap; j++)
                if (ids[j])
                    return list_error(h, w, i, l, 1 + j, "unused slot not zero");
        }
    }
    return DM_OK;
}

int hnsw_check(const hnsw *h)
{
    uint32_t n_del = 0, n_mapped = 0, top = 0;
    for (uint32_t i = 0; i < h->n_nodes; i++) {
        uint8_t m = h->meta[i];
        if (m & HNSW_META_RESERVED)
            return err_set_msg(DM_ECORRUPT, "hnsw: node %" PRIu32 ": bad meta", i);
        if (!h->has_graph && m)
            return err_set_msg(DM_ECORRUPT, "hnsw: node %" PRIu32
                               ": level or deleted mark in flat mode", i);
        /* Deleted nodes keep their levels: the maximum is over all. */
        if (level_of(h, i) > top)
            top = level_of(h, i);
        for (uint32_t j = h->dim; j < h->stride; j++)
            if (h->is_f16 ? row_f16(h, i)[j] != 0 : row_f32(h, i)[j] != 0.0f)
                return err_set_msg(DM_ECORRUPT, "hnsw: node %" PRIu32
                                   ": vector padding not zero", i);
        if (m & HNSW_META_DELETED) {
            n_del++;
            continue;
        }
        uint32_t label = h->node_label[i];
        if (lookup(h, label) != i)
            return err_set_msg(DM_ECORRUPT, "hnsw: node %" PRIu32 ": label %" PRIu32
                               " does not map back", i, label);
    }
    for (size_t i = 0; h->lmap && i <= h->lmap_mask; i++) {
        lslot s = h->lmap[i];
        if (s.label == UINT32_MAX)
            continue;
        n_mapped++;
        if (s.id >= h->n_nodes || h->node_label[s.id] != s.label ||
            is_deleted(h, s.id))
            return err_set_msg(DM_ECORRUPT, "hnsw: label %" PRIu32
                               " maps to a wrong node", s.label);
    }
    if (n_mapped != h->lmap_n)
        return err_set_msg(DM_ECORRUPT, "hnsw: label map count wrong");
    if (n_del != h->n_deleted)
        return err_set_msg(DM_ECORRUPT, "hnsw: %" PRIu32 " nodes marked deleted, "
                           "count says %" PRIu32, n_del, h->n_deleted);
    if (n_mapped != h->n_nodes - h->n_deleted)
        return err_set_msg(DM_ECORRUPT, "hnsw: %" PRIu32 " labels mapped, %" PRIu32
                           " live nodes", n_mapped, h->n_nodes - h->n_deleted);
    if (!h->has_graph)
        return DM_OK;

    if (h->n_nodes == 0)
        return h->entry == HNSW_NO_NODE
                   ? DM_OK
                   : err_set_msg(DM_ECORRUPT, "hnsw: entry point in an empty graph");
    if (h->entry >= h->n_nodes || level_of(h, h->entry) != h->max_level ||
        h->max_level != top)
        return err_set_msg(DM_ECORRUPT, "hnsw: entry point %" PRIu32 " / max level %"
                           PRIu32 " inconsistent", h->entry, h->max_level);
    size_t words = 0;
    for (uint32_t i = 0; i < h->n_nodes; i++) {
        uint32_t L = level_of(h, i);
        if (L && h->upper_off[i] != words)
            return err_set_msg(DM_ECORRUPT, "hnsw: node %" PRIu32
                               ": upper lists out of place", i);
        words += (size_t)L * h->up_stride;
    }
    if (words != h->n_upper)
        return err_set_msg(DM_ECORRUPT, "hnsw: upper pool holds %zu words, levels "
                           "need %zu", h->n_upper, words);
    uint32_t *mark = dm_calloc(h->n_nodes, sizeof *mark);
    if (!mark)
        return err_set_msg(DM_ENOMEM, "hnsw: no memory to check the graph");
    where w = { false, 0, 0 };
    int rc = check_lists(h, &w, mark);
    dm_free(mark);
    return rc;
}

/* -------------------------------------------------------- checkpointing */

static void put_u32s(uint8_t *p, const uint32_t *v, size_t n)
{
    if (!n)
        return;
#if HOST_IS_LE
    memcpy(p, v, n * 4);
#else
    for (size_t i = 0; i < n; i++)
        enc_u32(p + 4 * i, v[i]);
#endif
}

static void get_u32s(uint32_t *v, const uint8_t *p, size_t n)
{
    if (!n)
        return;
#if HOST_IS_LE
    memcpy(v, p, n * 4);
#else
    for (size_t i = 0; i < n; i++)
        v[i] = dec_u32(p + 4 * i);
#endif
}

/* Floats travel as the little-endian bytes of their IEEE-754 binary32
 * bit pattern. */
static void put_f32s(uint8_t *p, const float *v, size_t n)
{
    if (!n)
        return;
#if HOST_IS_LE
    memcpy(p, v, n * 4);
#else
    for (size_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, &v[i], 4);
        enc_u32(p + 4 * i, b);
    }
#endif
}

static void get_f32s(float *v, const uint8_t *p, size_t n)
{
    if (!n)
        return;
#if HOST_IS_LE
    memcpy(v, p, n * 4);
#else
    for (size_t i = 0; i < n; i++) {
        uint32_t b = dec_u32(p + 4 * i);
        memcpy(&v[i], &b, 4);
    }
#endif
}

/* binary16 components travel as little-endian u16 bit patterns. */
static void put_u16s(uint8_t *p, const uint16_t *v, size_t n)
{
    if (!n)
        return;
#if HOST_IS_LE
    memcpy(p, v, n * 2);
#else
    for (size_t i = 0; i < n; i++)
        enc_u16(p + 2 * i, v[i]);
#endif
}

static void get_u16s(uint16_t *v, const uint8_t *p, size_t n)
{
    if (!n)
        return;
#if HOST_IS_LE
    memcpy(v, p, n * 2);
#else
    for (size_t i = 0; i < n; i++)
        v[i] = dec_u16(p + 2 * i);
#endif
}

/* Section layout computed from the header counts (in u64, so that no
 * header value can overflow it).  vec_pad is where the vectors' padding
 * to a multiple of 4 starts (version 2, binary16 with n * dim odd). */
typedef struct layout {
    uint64_t labels, meta, vectors, vec_pad, links0, upper, end; /* offsets */
} layout;

static layout layout_of(uint64_t labels_off, uint64_t n, uint64_t dim,
                        uint64_t elem_len, uint64_t M, uint64_t n_upper,
                        bool has_graph)
{
    layout y;
    y.labels = labels_off;
    y.meta = y.labels + 4 * n;
    y.vectors = y.meta + ((n + 3) & ~(uint64_t)3);
    y.vec_pad = y.vectors + elem_len * n * dim;
    y.links0 = (y.vec_pad + 3) & ~(uint64_t)3;
    y.upper = y.links0 + (has_graph ? 4 * n * (1 + 2 * M) : 0);
    y.end = y.upper + (has_graph ? 4 * n_upper : 0);
    return y;
}

int hnsw_serialize(const hnsw *h, buf *out)
{
    size_t n = h->n_nodes;
    size_t elem_len = h->is_f16 ? 2 : 4;
    layout y = layout_of(HNSW_HEADER_LEN + HNSW_VDESC_LEN, n, h->dim, elem_len,
                         h->p.M, h->n_upper, h->has_graph);
    size_t total = (size_t)y.end + HNSW_TRAILER_LEN;
    if (buf_reserve(out, total) != DM_OK)
        return err_set_msg(DM_ENOMEM, "hnsw: no memory for a %zu-byte checkpoint",
                           total);
    uint8_t *p = out->ptr + out->len;
    advise_big(p, total, true);
    enc_u64(p + HNSW_OFF_MAGIC, HNSW_MAGIC);
    enc_u32(p + HNSW_OFF_VERSION, HNSW_VERSION);
    enc_u32(p + HNSW_OFF_FLAGS, h->has_graph ? HNSW_FLAG_GRAPH : 0);
    enc_u64(p + HNSW_OFF_BODY_LEN, y.end - HNSW_HEADER_LEN);
    enc_u32(p + HNSW_OFF_DIM, h->dim);
    enc_u32(p + HNSW_OFF_M, h->p.M);
    enc_u32(p + HNSW_OFF_EF_CONSTRUCTION, h->p.ef_construction);
    enc_u32(p + HNSW_OFF_N_NODES, h->n_nodes);
    enc_u32(p + HNSW_OFF_N_DELETED, h->n_deleted);
    enc_u32(p + HNSW_OFF_ENTRY, h->has_graph ? h->entry : HNSW_NO_NODE);
    enc_u32(p + HNSW_OFF_MAX_LEVEL, h->has_graph ? h->max_level : 0);
    enc_u32(p + HNSW_OFF_N_UPPER, h->has_graph ? (uint32_t)h->n_upper : 0);
    enc_u64(p + HNSW_OFF_RNG_STATE, h->rng);
    enc_u32(p + HNSW_OFF_ELEM_TYPE,
            h->is_f16 ? HNSW_ELEM_TYPE_F16 : HNSW_ELEM_TYPE_F32);
    enc_u32(p + HNSW_OFF_VDESC_RESERVED, 0);

    put_u32s(p + y.labels, h->node_label, n);
    if (n)
        memcpy(p + y.meta, h->meta, n);
    memset(p + y.meta + n, 0, (size_t)(y.vectors - y.meta - n));
    size_t vrec = elem_len * h->dim;
    for (size_t i = 0; i < n; i++) {
        uint8_t *r = p + y.vectors + i * vrec;
        if (h->is_f16)
            put_u16s(r, row_f16(h, (uint32_t)i), h->dim);
        else
            put_f32s(r, row_f32(h, (uint32_t)i), h->dim);
    }
    memset(p + y.vec_pad, 0, (size_t)(y.links0 - y.vec_pad));
    if (h->has_graph) {
        size_t rec = 4 * ((size_t)1 + h->M0);
        for (size_t i = 0; i < n; i++) {
            uint8_t *r = p + y.links0 + i * rec;
            enc_u32(r, h->cnt0[i]);
            put_u32s(r + 4, links_of(h, (uint32_t)i), h->M0);
        }
        put_u32s(p + y.upper, h->upper, h->n_upper);
    }
    uint8_t *t = p + y.end;
    enc_u32(t, crc_mask(crc32c(p, (size_t)y.end)));
    enc_u32(t + 4, 0);
    enc_u64(t + 8, HNSW_MAGIC);
    out->len += total;
    return DM_OK;
}

#define CORRUPT(off, ...)                                                      \
    do {                                                                       \
        rc = corrupt_at((size_t)(off), __VA_ARGS__);                           \
        goto fail;                                                             \
    } while (0)

__attribute__((format(printf, 2, 3))) static int corrupt_at(size_t off,
                                                            const char *fmt, ...)
{
    char why[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return err_set_msg(DM_ECORRUPT, "hnsw checkpoint: offset %zu: %s", off, why);
}

int hnsw_deserialize(const hnsw_params *p, buf_slice in, hnsw **out)
{
    *out = NULL;
    hnsw *h = NULL;
    uint32_t *mark = NULL;
    int rc = DM_OK;
    const uint8_t *b = in.ptr;
    size_t len = in.len;
    const size_t min_len = HNSW_HEADER_LEN + HNSW_TRAILER_LEN;

    /* The envelope: identical in every version (body_len counts every byte
     * between the 64-byte header and the trailer). */
    if (len < min_len)
        CORRUPT(len, "truncated: %zu bytes, a checkpoint has at least %zu", len,
                min_len);
    if (dec_u64(b + HNSW_OFF_MAGIC) != HNSW_MAGIC)
        CORRUPT(HNSW_OFF_MAGIC, "bad magic");
    if (dec_u64(b + len - HNSW_TRAILER_OFF_MAGIC) != HNSW_MAGIC)
        CORRUPT(len - HNSW_TRAILER_OFF_MAGIC, "bad trailer magic");
    uint64_t body_len = dec_u64(b + HNSW_OFF_BODY_LEN);
    if (body_len != len - min_len)
        CORRUPT(HNSW_OFF_BODY_LEN, "body_len %" PRIu64 " but the checkpoint has %zu "
                "body bytes (truncated or extended)", body_len, len - min_len);
    uint32_t crc = dec_u32(b + len - HNSW_TRAILER_OFF_CRC);
    if (crc != crc_mask(crc32c(b, len - HNSW_TRAILER_LEN)))
        CORRUPT(len - HNSW_TRAILER_OFF_CRC, "checksum mismatch");
    uint32_t version = dec_u32(b + HNSW_OFF_VERSION);
    if (version != HNSW_VERSION && version != HNSW_VERSION_1) {
        rc = err_set_msg(DM_EVERSION, "hnsw checkpoint: version %" PRIu32
                         " (this build reads %u and %u)", version, HNSW_VERSION_1,
                         HNSW_VERSION);
        goto fail;
    }
    if (dec_u32(b + len - HNSW_TRAILER_OFF_RESERVED) != 0)
        CORRUPT(len - HNSW_TRAILER_OFF_RESERVED, "reserved bytes not zero");

    /* The header. */
    uint32_t flags = dec_u32(b + HNSW_OFF_FLAGS);
    uint32_t dim = dec_u32(b + HNSW_OFF_DIM);
    uint32_t M = dec_u32(b + HNSW_OFF_M);
    uint32_t efc = dec_u32(b + HNSW_OFF_EF_CONSTRUCTION);
    uint32_t n = dec_u32(b + HNSW_OFF_N_NODES);
    uint32_t n_del = dec_u32(b + HNSW_OFF_N_DELETED);
    uint32_t entry = dec_u32(b + HNSW_OFF_ENTRY);
    uint32_t max_level = dec_u32(b + HNSW_OFF_MAX_LEVEL);
    uint32_t n_upper = dec_u32(b + HNSW_OFF_N_UPPER);
    bool has_graph = (flags & HNSW_FLAG_GRAPH) != 0;
    if (flags & ~HNSW_FLAGS_KNOWN)
        CORRUPT(HNSW_OFF_FLAGS, "unknown flags 0x%" PRIx32, flags);
    if (dim < 1 || dim > HNSW_MAX_DIM)
        CORRUPT(HNSW_OFF_DIM, "dim %" PRIu32 " not in 1..%u", dim, HNSW_MAX_DIM);
    if (M < HNSW_MIN_M || M > HNSW_MAX_M)
        CORRUPT(HNSW_OFF_M, "M %" PRIu32 " not in %u..%u", M, HNSW_MIN_M,
                HNSW_MAX_M);
    if (efc < 1 || efc > HNSW_MAX_EF)
        CORRUPT(HNSW_OFF_EF_CONSTRUCTION, "ef_construction %" PRIu32
                " not in 1..%u", efc, HNSW_MAX_EF);
    if (n > HNSW_MAX_NODES)
        CORRUPT(HNSW_OFF_N_NODES, "n_nodes %" PRIu32 " too large", n);
    if (n_del > n || (!has_graph && n_del))
        CORRUPT(HNSW_OFF_N_DELETED, "n_deleted %" PRIu32 " impossible", n_del);
    if ((has_graph && n) ? entry >= n : entry != HNSW_NO_NODE)
        CORRUPT(HNSW_OFF_ENTRY, "bad entry point %" PRIu32, entry);
    if ((has_graph && n) ? max_level > HNSW_MAX_LEVEL : max_level != 0)
        CORRUPT(HNSW_OFF_MAX_LEVEL, "bad max_level %" PRIu32, max_level);
    if (!has_graph && n_upper)
        CORRUPT(HNSW_OFF_N_UPPER, "upper layers without a graph");

    /* Version 2's vector descriptor; version 1 is float32. */
    uint32_t elem_type = HNSW_ELEM_TYPE_F32;
    uint64_t labels_off = HNSW_HEADER_LEN;
    if (version == HNSW_VERSION) {
        if (body_len < HNSW_VDESC_LEN)
            CORRUPT(HNSW_OFF_BODY_LEN, "body_len %" PRIu64 " cannot hold the "
                    "vector descriptor", body_len);
        elem_type = dec_u32(b + HNSW_OFF_ELEM_TYPE);
        if (elem_type != HNSW_ELEM_TYPE_F32 && elem_type != HNSW_ELEM_TYPE_F16)
            CORRUPT(HNSW_OFF_ELEM_TYPE, "unknown elem_type %" PRIu32, elem_type);
        if (dec_u32(b + HNSW_OFF_VDESC_RESERVED) != 0)
            CORRUPT(HNSW_OFF_VDESC_RESERVED, "vector descriptor reserved word "
                    "not zero");
        labels_off += HNSW_VDESC_LEN;
    }
    bool is_f16 = elem_type == HNSW_ELEM_TYPE_F16;
    size_t elem_len = is_f16 ? 2 : 4;
    layout y = layout_of(labels_off, n, dim, elem_len, M, n_upper, has_graph);
    if (y.end - HNSW_HEADER_LEN != body_len)
        CORRUPT(HNSW_OFF_BODY_LEN, "body_len %" PRIu64 " but the header's counts "
                "need %" PRIu64, body_len, y.end - HNSW_HEADER_LEN);

    /* Only now, with every size bounded by the input's length, allocate. */
    hnsw_params hp = p ? *p : hnsw_params_default(dim);
    hp.dim = dim;
    hp.M = M;
    hp.ef_construction = efc;
    hp.elem = is_f16 ? HNSW_ELEM_F16 : HNSW_ELEM_F32;
    if (hp.ef_search < 1 || hp.ef_search > HNSW_MAX_EF)
        hp.ef_search = hnsw_params_default(dim).ef_search;
    rc = alloc_index(&hp, &h);
    if (rc != DM_OK)
        goto fail;
    if (n && (rc = reserve_nodes(h, n, has_graph, true)) != DM_OK)
        goto fail;
    h->n_nodes = n;
    h->n_deleted = n_del;
    h->has_graph = has_graph;
    h->entry = has_graph && n ? entry : HNSW_NO_NODE;
    h->max_level = has_graph && n ? max_level : 0;
    h->rng = dec_u64(b + HNSW_OFF_RNG_STATE);

    /* Meta: levels, deleted marks, the upper pool's layout. */
    get_u32s(h->node_label, b + y.labels, n);
    if (n)
        memcpy(h->meta, b + y.meta, n);
    uint32_t seen_del = 0, top = 0;
    uint64_t words = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t m = h->meta[i];
        uint32_t L = m & HNSW_META_LEVEL_MASK;
        if ((m & HNSW_META_RESERVED) || (!has_graph && m))
            CORRUPT(y.meta + i, "bad meta byte 0x%02x of node %" PRIu32, m, i);
        if (h->node_label[i] == UINT32_MAX)
            CORRUPT(y.labels + 4 * (uint64_t)i, "reserved label of node %" PRIu32, i);
        if (m & HNSW_META_DELETED)
            seen_del++;
        if (L > top)
            top = L;
        if (L) {
            h->upper_off[i] = (uint32_t)words;
            words += (uint64_t)L * (1 + M);
            if (words > n_upper)
                CORRUPT(y.meta + i, "levels need more than n_upper %" PRIu32
                        " words", n_upper);
        }
    }
    for (uint64_t o = y.meta + n; o < y.vectors; o++)
        if (b[o])
            CORRUPT(o, "padding not zero");
    for (uint64_t o = y.vec_pad; o < y.links0; o++)
        if (b[o])
            CORRUPT(o, "padding not zero");
    if (seen_del != n_del)
        CORRUPT(HNSW_OFF_N_DELETED, "n_deleted %" PRIu32 " but %" PRIu32
                " nodes are marked", n_del, seen_del);
    if (words != n_upper)
        CORRUPT(HNSW_OFF_N_UPPER, "n_upper %" PRIu32 " but the levels need %" PRIu64,
                n_upper, words);
    if (has_graph && n && (top != max_level || level_of(h, entry) != max_level))
        CORRUPT(HNSW_OFF_MAX_LEVEL, "max_level %" PRIu32 " but the highest node "
                "level is %" PRIu32 " and the entry's %" PRIu32, max_level, top,
                level_of(h, entry));

    /* Labels: every live label exactly once. */
    if ((rc = lmap_reserve(h, n - n_del)) != DM_OK)
        goto fail;
    for (uint32_t i = 0; i < n; i++) {
        if (is_deleted(h, i))
            continue;
        uint32_t l = h->node_label[i];
        uint32_t other = lookup(h, l);
        if (other != HNSW_NO_NODE)
            CORRUPT(y.labels + 4 * (uint64_t)i, "label %" PRIu32 " of node %" PRIu32
                    " also belongs to live node %" PRIu32, l, i, other);
        lmap_put(h, l, i);
    }

    segs_prefault(&h->vecs, n);
    size_t vrec = elem_len * dim;
    for (uint32_t i = 0; i < n; i++) {
        void *row = seg_row(&h->vecs, i);
        const uint8_t *src = b + y.vectors + (size_t)i * vrec;
        if (is_f16) {
            uint16_t *r = row;
            get_u16s(r, src, dim);
            memset(r + dim, 0, (size_t)(h->stride - dim) * sizeof *r);
        } else {
            float *r = row;
            get_f32s(r, src, dim);
            memset(r + dim, 0, (size_t)(h->stride - dim) * sizeof *r);
        }
    }

    if (has_graph) {
        size_t rec = 4 * ((size_t)1 + h->M0);
        segs_prefault(&h->links0, n);
        for (uint32_t i = 0; i < n; i++) {
            const uint8_t *r = b + y.links0 + (size_t)i * rec;
            uint32_t cnt = dec_u32(r);
            if (cnt > h->M0)
                CORRUPT(y.links0 + (uint64_t)i * rec, "node %" PRIu32 " layer 0: "
                        "link count %" PRIu32 " exceeds %" PRIu32, i, cnt, h->M0);
            h->cnt0[i] = (uint16_t)cnt;
            get_u32s(links_of(h, i), r + 4, h->M0);
        }
        if (n_upper && (rc = reserve_upper(h, n_upper)) != DM_OK)
            goto fail;
        get_u32s(h->upper, b + y.upper, n_upper);
        h->n_upper = n_upper;
        if (n) {
            mark = dm_calloc(n, sizeof *mark);
            if (!mark) {
                rc = err_set_msg(DM_ENOMEM, "hnsw: no memory to load a checkpoint");
                goto fail;
            }
            where w = { true, (size_t)y.links0, (size_t)y.upper };
            if ((rc = check_lists(h, &w, mark)) != DM_OK)
                goto fail;
        }
    }
    dm_free(mark);
    *out = h;
    return DM_OK;

fail:
    dm_free(mark);
    hnsw_free(h);
    return rc;
}
