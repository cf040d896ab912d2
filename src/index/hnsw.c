/*
 * hnsw.c -- the per-user vector index: an exact scan while the index is
 * small, a hierarchical navigable small world graph (Malkov & Yashunin,
 * "Efficient and robust approximate nearest neighbor search using
 * Hierarchical Navigable Small World graphs") once it is not.
 *
 * DESIGN
 *
 * Nodes.  Every stored vector is a node with a dense internal id (u32,
 * 0 .. n_nodes-1) in insertion order.  Per node the index keeps the vector
 * (vecs, a row of `stride` floats: dim rounded up to a multiple of 8 and
 * zero-padded, so that every row starts on a 32-byte boundary and the
 * kernels never need a tail), its label (node_label) and a meta byte (top
 * layer in bits 0-4, "deleted" in bit 7).  The label map goes the other
 * way, for live nodes only: an open-addressing hash table (linear probing,
 * deletion by backward shift, so no tombstones; UINT32_MAX, the reserved
 * label, marks an empty slot).  Labels are normally dense small integers
 * and an array indexed by label would do, but its size would follow the
 * largest label rather than the number of vectors: one damaged label in a
 * checkpoint, or one huge document number, would cost gigabytes.  The
 * table costs about 11 bytes per live vector and is not on the search
 * path (results carry labels from node_label).
 *
 * Flat mode.  Below params.flat_threshold live vectors there is no graph:
 * search is an exact scan, a replaced label is overwritten in place and a
 * deleted one is removed by moving the last node into its slot, so flat
 * mode never holds deleted nodes.  The add that brings the live count to
 * the threshold builds the graph over every stored vector and the new one.
 *
 * Graph mode.  Layer 0 links live in one array, links0, with a fixed slot
 * of 2M u32 per node (64-byte aligned; the counts are in cnt0), because
 * layer 0 is where searches spend their time.  Upper layers are rare (a
 * node reaches layer l with probability M^-l) and live in one u32 pool,
 * `upper`: a node of top layer L > 0 owns L consecutive lists of 1 + M
 * words (count, then M slots) starting at upper_off[id]; nodes are only
 * ever appended, so the pool is in node order and is written to a
 * checkpoint verbatim.  Unused link slots are always zero (the checkpoint
 * relies on it and hnsw_check verifies it).
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
 * Memory.  Arrays grow by a quarter through dm_realloc, which lets glibc
 * move large blocks with mremap instead of copying them; blocks of 2 MiB
 * and more are advised to use transparent huge pages (a search's random
 * reads over tens of megabytes otherwise miss the TLB), and those filled
 * at once by a load are prefaulted in one call (advise_big).
 *
 * Scratch.  A search needs a visited set (one u16 epoch per node: a new
 * search bumps the epoch instead of clearing the array), the two heaps and
 * a zero-padded copy of the query.  Searches take a scratch from a small
 * pool and give it back, so after warm-up the search loop allocates
 * nothing.  Writers use their own scratch (h->build) whose capacity is
 * ensured before an add changes anything.
 *
 * INVARIANTS
 *   - n_nodes <= cap (node arrays) and, in graph mode, <= gcap (graph
 *     arrays); entries past n_nodes are uninitialised.  A node's row
 *     padding and the link slots past its counts are zero.
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
 * LOCKING.  hnsw_search, hnsw_search_exact, hnsw_vector, hnsw_count and
 * the other getters only read the index, except for the scratch pool,
 * whose free list is guarded by pool->mu.  hnsw_add, hnsw_delete and
 * hnsw_serialize need exclusive access (the engine's per-user write lock).
 *
 * FORMAT OWNED: "HNSW index checkpoint" in docs/format.md, constants in
 * hnsw_format.h; written by hnsw_serialize, validated field by field by
 * hnsw_deserialize.
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
    float *q; /* the query, zero-padded to stride floats */
    void *q_raw;
    uint32_t q_cap;
    struct scratch *next;
} scratch;

typedef struct scratch_pool {
    pthread_mutex_t mu; /* guards free_list and n_free */
    scratch *free_list;
    uint32_t n_free;
} scratch_pool;

struct hnsw {
    hnsw_params p;
    uint32_t dim;
    uint32_t stride;    /* floats per row: dim rounded up to 8 */
    uint32_t M0;        /* layer-0 capacity: 2M */
    uint32_t up_stride; /* words per upper-layer list: 1 + M */
    uint32_t efc;       /* max(ef_construction, M) */
    double mult;        /* mL = 1 / ln(M) */
    dist_fn dot;

    uint32_t n_nodes;
    uint32_t cap;
    uint32_t n_deleted;
    float *vecs; /* cap * stride, VEC_ALIGN-aligned */
    void *vecs_raw;
    uint32_t *node_label; /* cap */
    uint8_t *meta;        /* cap */

    bool has_graph;
    uint32_t gcap;    /* capacity of the three graph arrays */
    uint32_t *links0; /* gcap * M0, LINK_ALIGN-aligned; NULL in flat mode */
    void *links0_raw;
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

static inline const float *vec_of(const hnsw *h, uint32_t id)
{
    return h->vecs + (size_t)id * h->stride;
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
    if (!h->lmap)
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

static inline float neg_dot(const hnsw *h, const float *a, const float *b)
{
    return -h->dot(a, b, h->stride);
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
    if (s->q_cap < h->stride) {
        void *raw;
        float *q = alloc_aligned((size_t)h->stride * sizeof *q, VEC_ALIGN, &raw);
        if (!q)
            return DM_ENOMEM;
        dm_free(s->q_raw);
        s->q_raw = raw;
        s->q = q;
        s->q_cap = h->stride;
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
            float d = neg_dot(h, q, vec_of(h, id));
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
                __builtin_prefetch(h->links0 + (size_t)s->cq[0].id * h->M0);
        }

        const uint32_t *nb;
        uint32_t cnt;
        if (level == 0) {
            nb = h->links0 + (size_t)c.id * h->M0;
            cnt = h->cnt0[c.id];
        } else {
            const uint32_t *l = upper_list(h, c.id, level);
            cnt = l[0];
            nb = l + 1;
        }

        /* First pass: pick the unvisited neighbours and start loading
         * their vectors, so that the memory fetches overlap with the
         * distance computations of the second pass. */
        uint32_t n_todo = 0;
        for (uint32_t j = 0; j < cnt; j++) {
            uint32_t id = nb[j];
            if (vis[id] != tag) {
                vis[id] = tag;
                todo[n_todo++] = id;
                __builtin_prefetch(vec_of(h, id));
            }
        }
        for (uint32_t t = 0; t < n_todo; t++) {
            uint32_t id = todo[t];
            if (t + 1 < n_todo)
                __builtin_prefetch(vec_of(h, todo[t + 1]) + 16);
            float d = neg_dot(h, q, vec_of(h, id));
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

static void exact_scan(const hnsw *h, const float *q, uint32_t k,
                       ix_filter_fn filter, void *arg, hnsw_hit *out,
                       uint32_t *n_out)
{
    uint32_t n = 0;
    for (uint32_t id = 0; id < h->n_nodes; id++) {
        if (is_deleted(h, id))
            continue;
        uint32_t label = h->node_label[id];
        if (filter && !filter(arg, label))
            continue;
        hits_offer(out, &n, k, label, h->dot(q, vec_of(h, id), h->dim));
    }
    hits_sort(out, n);
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
    float ep_d = neg_dot(h, s->q, vec_of(h, ep));
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
 * kept.
 */
static uint32_t select_neighbors(const hnsw *h, const cand *in, uint32_t n,
                                 uint32_t m, cand *out)
{
    if (n < m) {
        memcpy(out, in, (size_t)n * sizeof *in);
        return n;
    }
    uint32_t ns = 0;
    for (uint32_t i = 0; i < n && ns < m; i++) {
        const float *v = vec_of(h, in[i].id);
        bool good = true;
        for (uint32_t j = 0; j < ns; j++) {
            if (neg_dot(h, v, vec_of(h, out[j].id)) < in[i].d) {
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
 * is re-chosen with the heuristic from its members and c. */
static void link_back(hnsw *h, uint32_t n, uint32_t c, float d, uint32_t level)
{
    uint32_t cap, cnt, *ids;
    uint32_t *ul = NULL;
    if (level == 0) {
        cap = h->M0;
        cnt = h->cnt0[n];
        ids = h->links0 + (size_t)n * h->M0;
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
        const float *vn = vec_of(h, n);
        in[0].d = d;
        in[0].id = c;
        for (uint32_t j = 0; j < cnt; j++) {
            in[j + 1].d = neg_dot(h, vn, vec_of(h, ids[j]));
            in[j + 1].id = ids[j];
        }
        sort_cands(in, cnt + 1);
        uint32_t ns = select_neighbors(h, in, cnt + 1, cap, out);
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
    const float *v = vec_of(h, c);
    if (h->entry == HNSW_NO_NODE) {
        h->entry = c;
        h->max_level = L;
        return;
    }
    uint32_t ep = h->entry;
    float ep_d = neg_dot(h, v, vec_of(h, ep));
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
        uint32_t ns = select_neighbors(h, s->sorted, n, h->p.M, sel);
        uint32_t *own;
        if (l == 0) {
            own = h->links0 + (size_t)c * h->M0;
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
 * `used` bytes.  Through dm_realloc, so that glibc can move a large block
 * with mremap instead of copying it; if the new block's alignment offset
 * differs, the contents are moved to the new aligned start.  On failure
 * the block is unchanged.
 */
static int grow_aligned(void **raw, void **p, size_t used, size_t n, size_t align)
{
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

/*
 * reserve_nodes -- capacity for `need` nodes, and the graph arrays when
 * with_graph.  The node arrays (vectors, labels, meta) share h->cap and
 * the graph arrays (links0, cnt0, upper_off) h->gcap; a capacity is raised
 * only when every array of its group grew, so a failure leaves some
 * arrays larger than their recorded capacity and nothing else changed.
 * Capacity grows by a quarter: at 100k vectors the slack matters more than
 * the extra reallocations, which mremap makes cheap.  Newly gained space
 * is not zeroed; an add initialises its node's row and links.
 */
static int reserve_nodes(hnsw *h, uint32_t need, bool with_graph, bool is_exact)
{
    bool want_graph = with_graph || h->links0;
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
        size_t row = (size_t)h->stride * sizeof(float);
        if (grow_aligned(&h->vecs_raw, (void **)&h->vecs, n * row, ncap * row,
                         VEC_ALIGN) != DM_OK ||
            grow_array((void **)&h->node_label, ncap * sizeof *h->node_label) !=
                DM_OK ||
            grow_array((void **)&h->meta, ncap) != DM_OK)
            goto fail;
        h->cap = (uint32_t)ncap;
    }
    if (want_graph && h->gcap < ncap) {
        size_t row = (size_t)h->M0 * sizeof(uint32_t);
        size_t used = h->links0 ? n : 0;
        if (grow_aligned(&h->links0_raw, (void **)&h->links0, used * row,
                         ncap * row, LINK_ALIGN) != DM_OK ||
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

static void store_vec(hnsw *h, uint32_t id, const float *vec)
{
    float *row = h->vecs + (size_t)id * h->stride;
    memcpy(row, vec, (size_t)h->dim * sizeof *row);
    memset(row + h->dim, 0, (size_t)(h->stride - h->dim) * sizeof *row);
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
    return DM_OK;
}

hnsw_params hnsw_params_default(uint32_t dim)
{
    hnsw_params p = { dim, 16, 200, 64, HNSW_DEFAULT_FLAT_THRESHOLD, 42 };
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
    h->dot = dist_kernels_active()->dot;
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
    dm_free(h->vecs_raw);
    dm_free(h->node_label);
    dm_free(h->meta);
    dm_free(h->links0_raw);
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
    memset(h->links0, 0, (size_t)total * h->M0 * sizeof *h->links0);
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
    memset(h->links0 + (size_t)c * h->M0, 0, (size_t)h->M0 * sizeof *h->links0);
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
        memcpy(h->vecs + (size_t)id * h->stride, vec_of(h, last),
               (size_t)h->stride * sizeof *h->vecs);
        h->node_label[id] = h->node_label[last];
        lmap_put(h, h->node_label[id], id);
    }
    memset(h->vecs + (size_t)last * h->stride, 0,
           (size_t)h->stride * sizeof *h->vecs);
    return DM_OK;
}

/* -------------------------------------------------------------- getters */

const float *hnsw_vector(const hnsw *h, uint32_t label)
{
    uint32_t id = lookup(h, label);
    return id == HNSW_NO_NODE ? NULL : vec_of(h, id);
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
    if (h->vecs_raw)
        n += c * h->stride * sizeof(float) + VEC_ALIGN;
    if (h->node_label)
        n += c * (sizeof(uint32_t) + 1);
    if (h->links0_raw)
        n += (size_t)h->gcap *
                 (h->M0 * sizeof(uint32_t) + sizeof(uint16_t) + sizeof(uint32_t)) +
             LINK_ALIGN;
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
                ids = h->links0 + (size_t)i * h->M0;
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
            if (vec_of(h, i)[j] != 0.0f)
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

/* Section layout computed from the header counts (in u64, so that no
 * header value can overflow it). */
typedef struct layout {
    uint64_t labels, meta, vectors, links0, upper, end; /* offsets */
} layout;

static layout layout_of(uint64_t n, uint64_t dim, uint64_t M, uint64_t n_upper,
                        bool has_graph)
{
    layout y;
    y.labels = HNSW_HEADER_LEN;
    y.meta = y.labels + 4 * n;
    y.vectors = y.meta + ((n + 3) & ~(uint64_t)3);
    y.links0 = y.vectors + 4 * n * dim;
    y.upper = y.links0 + (has_graph ? 4 * n * (1 + 2 * M) : 0);
    y.end = y.upper + (has_graph ? 4 * n_upper : 0);
    return y;
}

int hnsw_serialize(const hnsw *h, buf *out)
{
    size_t n = h->n_nodes;
    layout y = layout_of(n, h->dim, h->p.M, h->n_upper, h->has_graph);
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

    put_u32s(p + y.labels, h->node_label, n);
    if (n)
        memcpy(p + y.meta, h->meta, n);
    memset(p + y.meta + n, 0, (size_t)(y.vectors - y.meta - n));
    for (size_t i = 0; i < n; i++)
        put_f32s(p + y.vectors + 4 * i * h->dim, vec_of(h, (uint32_t)i), h->dim);
    if (h->has_graph) {
        size_t rec = 4 * ((size_t)1 + h->M0);
        for (size_t i = 0; i < n; i++) {
            uint8_t *r = p + y.links0 + i * rec;
            enc_u32(r, h->cnt0[i]);
            put_u32s(r + 4, h->links0 + i * h->M0, h->M0);
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

    /* The envelope: identical in every version. */
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
    if (version != HNSW_VERSION) {
        rc = err_set_msg(DM_EVERSION, "hnsw checkpoint: version %" PRIu32
                         " (this build reads %u)", version, HNSW_VERSION);
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
    layout y = layout_of(n, dim, M, n_upper, has_graph);
    if (y.end - HNSW_HEADER_LEN != body_len)
        CORRUPT(HNSW_OFF_BODY_LEN, "body_len %" PRIu64 " but the header's counts "
                "need %" PRIu64, body_len, y.end - HNSW_HEADER_LEN);

    /* Only now, with every size bounded by the input's length, allocate. */
    hnsw_params hp = p ? *p : hnsw_params_default(dim);
    hp.dim = dim;
    hp.M = M;
    hp.ef_construction = efc;
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

    advise_big(h->vecs, (size_t)n * h->stride * sizeof *h->vecs, true);
    for (uint32_t i = 0; i < n; i++) {
        float *row = h->vecs + (size_t)i * h->stride;
        get_f32s(row, b + y.vectors + 4 * (size_t)i * dim, dim);
        memset(row + dim, 0, (size_t)(h->stride - dim) * sizeof *row);
    }

    if (has_graph) {
        size_t rec = 4 * ((size_t)1 + h->M0);
        advise_big(h->links0, (size_t)n * h->M0 * sizeof *h->links0, true);
        for (uint32_t i = 0; i < n; i++) {
            const uint8_t *r = b + y.links0 + (size_t)i * rec;
            uint32_t cnt = dec_u32(r);
            if (cnt > h->M0)
                CORRUPT(y.links0 + (uint64_t)i * rec, "node %" PRIu32 " layer 0: "
                        "link count %" PRIu32 " exceeds %" PRIu32, i, cnt, h->M0);
            h->cnt0[i] = (uint16_t)cnt;
            get_u32s(h->links0 + (size_t)i * h->M0, r + 4, h->M0);
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
