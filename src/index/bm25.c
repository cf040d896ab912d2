/*
 * bm25.c -- per-user in-memory inverted index with BM25 ranking.
 *
 * What: documents (numbered by the caller) are analyzed (analyze.h) into
 * terms; the index keeps, per term, the list of (doc, tf) postings sorted
 * by doc, plus one length per document.  Search ranks with Okapi BM25
 *
 *   score(d) = sum over distinct query terms t of
 *              idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))
 *   idf(t)   = ln(1 + (N - df + 0.5) / (df + 0.5))
 *
 * and returns the exact top k (best first, ties by smaller doc).
 *
 * Design.
 *   - Term dictionary: an open-addressing hash table (linear probing, load
 *     at most 0.7) of 32-bit term ids into a dense array of term records;
 *     term bytes live in one string arena.  A term whose last posting is
 *     deleted keeps its record (df 0, no postings, not counted by
 *     bm25_term_count) so that ids stay stable; checkpoints drop it.
 *   - Postings: a term with a single posting stores it inline in its
 *     record (most terms of a personal memory occur once, and a separate
 *     allocation would triple their cost).  Larger lists are one
 *     allocation holding an array of block descriptors followed by the
 *     encoded blocks.  A block holds up to BLOCK_MAX postings; each posting
 *     is varint((doc - prev) << 1 | (tf > 1)) followed by varint(tf - 2)
 *     when tf > 1, prev starting at the block's first doc.  The
 *     descriptor keeps first/last doc, the byte offset, the count and the
 *     block's largest tf, so a search can skip a block, or bound its
 *     score, without decoding it.  Appends (the usual case: document
 *     numbers grow) extend the last block in place; an insertion or a
 *     deletion elsewhere re-encodes one block, splitting it in two when it
 *     overflows.  Measured on 500,000 changelog lines (3.3 million
 *     postings): 1.7 bytes per posting encoded, 3.2 with descriptors and
 *     spare capacity, against 8 for plain (doc, tf) u32 arrays.
 *   - Top k uses MaxScore: query terms are sorted by their score upper
 *     bound; the terms whose bounds together cannot reach the current k-th
 *     score are "non-essential" and are only probed for documents found
 *     through the others, and a probe can stop early using the bounds of
 *     the remaining terms and of the current block (block-max).  The bound
 *     of a term is its contribution at its largest tf and its smallest
 *     document length (both kept per term; after deletes they may be
 *     stale, which keeps them valid bounds, only looser).
 *   - MaxScore cannot skip much when every query term is common and of
 *     similar idf (a small vocabulary: each query visits most of its
 *     postings, and pays a loop over all cursors per candidate).  So the
 *     document numbers are walked in windows of 8192, and a window whose
 *     postings are dense and mostly essential is scored term at a time
 *     instead: each term adds its contributions into a dense array of
 *     doubles, then one scan offers the sums that can enter the top k.
 *     A cost model on the window's posting counts (from the block
 *     descriptors) picks the mode per window; a query whose postings are
 *     sparse over the whole index skips the windows.  Measured on 100,000
 *     short generated sentences over ~100 terms: about 3x faster than
 *     MaxScore alone, with unchanged speed on rare-term queries.
 *   - Exactness: pruning only compares bounds (inflated by a relative
 *     1e-6 to cover rounding) with the k-th score.  Every admitted
 *     document's score is then computed the canonical way -- per-term
 *     contributions in double, summed in query order, rounded to float --
 *     which bm25_score also uses, so search equals exhaustive scoring bit
 *     for bit (tested against a brute-force scorer).  The term-at-a-time
 *     sums are the same sums (added in query order from 0.0), and the
 *     per-query tables of norm() and contrib() values by document length
 *     hold what those out-of-line functions return, so every path yields
 *     the same bits.
 *   - Adds are all-or-nothing: terms are looked up or created first (a
 *     created term that ends up unused is a harmless df-0 record), then
 *     every posting list reserves room, then the postings are written with
 *     no allocation left to fail.  Deletes first verify that the given
 *     text's terms match the document's postings exactly, then remove them
 *     without allocating.
 *
 * Invariants (checked by bm25_check in tests): postings of a term are
 * strictly increasing by doc, every doc in a posting list is indexed,
 * df equals the number of postings, the tfs of a document add up to its
 * length, the lengths add up to total_len, and none exceeds max_dl (the
 * search's per-length tables stop there).
 *
 * Locking: none inside.  Searches only read the index (cursors, tables
 * and the window accumulator are allocated per call and freed before it
 * returns; there is no thread-local state here, the stemmer's is in
 * analyze.c), so any number may run at once; bm25_add / bm25_delete /
 * bm25_serialize / bm25_set_strategy need exclusive access (the caller
 * holds the user's lock).
 *
 * Format owned: the BM25 index checkpoint (docs/format.md, "BM25 index
 * checkpoint"; constants in bm25_format.h).
 */
#include "index/bm25.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "base/alloc.h"
#include "base/crc.h"
#include "base/err.h"
#include "index/analyze.h"
#include "index/bm25_format.h"

#define BLOCK_MAX 128
#define DL_ABSENT UINT32_MAX
#define CUR_END UINT32_MAX
/* Longest encoded posting: a 33-bit code (5 bytes) and a 32-bit tf. */
#define POSTING_MAX_BYTES 10
#define BOUND_SLACK 1e-6 /* relative inflation of every score bound */

typedef struct blk {
    uint32_t first_doc, last_doc;
    uint32_t off;    /* byte offset of the block in the list's data */
    uint16_t n;      /* postings, 1..BLOCK_MAX */
    uint16_t max_tf; /* largest tf in the block, saturated at UINT16_MAX */
} blk;

/* One allocation: the header, blk_cap descriptors, then data_cap bytes. */
typedef struct plist {
    uint32_t n_blk, blk_cap;
    uint32_t data_len, data_cap;
    blk blks[];
} plist;

typedef struct term {
    uint32_t str_off, len; /* bytes in the arena, NUL-terminated */
    uint32_t hash;
    uint32_t df;
    uint32_t max_tf;       /* bound: >= every tf in the list */
    uint32_t min_dl;       /* bound: <= every listed document's length */
    uint32_t one_doc, one_tf; /* the posting when df == 1 and !pl */
    plist *pl;
} term;

struct bm25 {
    bm25_params p;
    term *terms;
    uint32_t n_terms, terms_cap; /* records, df-0 ones included */
    uint32_t n_live_terms;       /* records with df > 0 */
    uint32_t *slots;             /* term id + 1, 0 = empty */
    uint32_t slot_mask;
    char *strs;
    size_t strs_len, strs_cap;
    uint32_t *dl; /* length of doc d, DL_ABSENT when not indexed */
    uint32_t dl_cap;
    uint32_t n_docs;
    uint32_t max_dl; /* bound: >= every document's length (never lowered) */
    uint64_t total_len;
    size_t pl_bytes; /* bytes held by posting-list allocations */
    bm25_strategy strategy; /* bm25_set_strategy; AUTO by default */
    /* Scratch for add / delete (exclusive access). */
    tok_list toks;
    uint32_t *ids, *tfs;
    uint32_t ids_cap;
};

/* ---------------------------------------------------------------- basics */

bm25_params bm25_params_default(void)
{
    bm25_params p = { 1.2f, 0.75f };
    return p;
}

static int params_ok(const bm25_params *p)
{
    return p->k1 >= 0.0f && isfinite(p->k1) && p->b >= 0.0f && p->b <= 1.0f;
}

static uint32_t hash_term(const char *s, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
        s += 8;
        n -= 8;
    }
    /* The last 0..7 bytes with fixed-size loads (a memcpy of a variable
     * length would be a library call on the hot path of every add): two
     * overlapping 4-byte words, or the first, middle and last byte.
     * Either determines the tail, given its length (mixed in above). */
    uint64_t w = 0;
    if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        w = a | (uint64_t)b << 32;
    } else if (n > 0) {
        w = (uint64_t)(uint8_t)s[0] | (uint64_t)(uint8_t)s[n / 2] << 8 |
            (uint64_t)(uint8_t)s[n - 1] << 16;
    }
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 29;
    h *= 0x94D049BB133111EBull;
    return (uint32_t)(h >> 32);
}

static inline const char *term_str(const bm25 *ix, const term *t)
{
    return ix->strs + t->str_off;
}

/* same_bytes -- memcmp(a, b, n) == 0 for the short strings terms are,
 * without a library call. */
static inline int same_bytes(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

/* lookup -- the id of term s, or UINT32_MAX. */
static uint32_t lookup(const bm25 *ix, const char *s, size_t n, uint32_t h)
{
    if (!ix->slots)
        return UINT32_MAX;
    uint32_t i = h & ix->slot_mask;
    for (;;) {
        uint32_t v = ix->slots[i];
        if (!v)
            return UINT32_MAX;
        const term *t = &ix->terms[v - 1];
        if (t->hash == h && t->len == n && same_bytes(term_str(ix, t), s, n))
            return v - 1;
        i = (i + 1) & ix->slot_mask;
    }
}

static int slots_grow(bm25 *ix)
{
    uint32_t cap = ix->slots ? (ix->slot_mask + 1) * 2 : 64;
    if (cap == 0 || cap > (1u << 31))
        return err_set_msg(DM_ENOMEM, "bm25: term table full");
    uint32_t *s = dm_calloc(cap, sizeof *s);
    if (!s)
        return DM_ENOMEM;
    uint32_t mask = cap - 1;
    for (uint32_t id = 0; id < ix->n_terms; id++) {
        uint32_t i = ix->terms[id].hash & mask;
        while (s[i])
            i = (i + 1) & mask;
        s[i] = id + 1;
    }
    dm_free(ix->slots);
    ix->slots = s;
    ix->slot_mask = mask;
    return DM_OK;
}

/* intern -- the id of term s, created (df 0) if new.  Errors: DM_ENOMEM. */
static int intern(bm25 *ix, const char *s, size_t n, uint32_t *id)
{
    uint32_t h = hash_term(s, n);
    uint32_t found = lookup(ix, s, n, h);
    if (found != UINT32_MAX) {
        *id = found;
        return DM_OK;
    }
    int rc;
    if (!ix->slots || (uint64_t)(ix->n_terms + 1) * 10 > (uint64_t)(ix->slot_mask + 1) * 7)
        if ((rc = slots_grow(ix)))
            return rc;
    if (ix->n_terms == ix->terms_cap) {
        uint32_t nc = ix->terms_cap ? ix->terms_cap + ix->terms_cap / 2 : 64;
        term *t = dm_realloc(ix->terms, (size_t)nc * sizeof *t);
        if (!t)
            return DM_ENOMEM;
        ix->terms = t;
        ix->terms_cap = nc;
    }
    if (ix->strs_len + n + 1 > ix->strs_cap) {
        size_t nc = ix->strs_cap ? ix->strs_cap + ix->strs_cap / 2 : 4096;
        while (nc < ix->strs_len + n + 1)
            nc *= 2;
        if (nc > UINT32_MAX)
            return err_set_msg(DM_ENOMEM, "bm25: term arena over 4 GiB");
        char *p = dm_realloc(ix->strs, nc);
        if (!p)
            return DM_ENOMEM;
        ix->strs = p;
        ix->strs_cap = nc;
    }
    term *t = &ix->terms[ix->n_terms];
    memset(t, 0, sizeof *t);
    t->str_off = (uint32_t)ix->strs_len;
    t->len = (uint32_t)n;
    t->hash = h;
    t->min_dl = UINT32_MAX;
    memcpy(ix->strs + ix->strs_len, s, n);
    ix->strs[ix->strs_len + n] = '\0';
    ix->strs_len += n + 1;
    uint32_t i = h & ix->slot_mask;
    while (ix->slots[i])
        i = (i + 1) & ix->slot_mask;
    ix->slots[i] = ix->n_terms + 1;
    *id = ix->n_terms++;
    return DM_OK;
}

/* analyze -- an_text minus the terms too long to index. */
static int analyze(const char *text, size_t len, tok_list *l)
{
    int rc = an_text(text, len, l);
    if (rc)
        return rc;
    uint32_t w = 0;
    for (uint32_t i = 0; i < l->n; i++)
        if (l->toks[i].len <= BM25_MAX_TERM_LEN)
            l->toks[w++] = l->toks[i];
    l->n = w;
    return DM_OK;
}

/* --------------------------------------------------------- posting lists */

static inline uint8_t *pl_data(plist *pl)
{
    return (uint8_t *)(pl->blks + pl->blk_cap);
}

static inline const uint8_t *pl_cdata(const plist *pl)
{
    return (const uint8_t *)(pl->blks + pl->blk_cap);
}

static inline uint32_t blk_len(const plist *pl, uint32_t bi)
{
    uint32_t end = bi + 1 < pl->n_blk ? pl->blks[bi + 1].off : pl->data_len;
    return end - pl->blks[bi].off;
}

static size_t pl_size(uint32_t blk_cap, uint32_t data_cap)
{
    return sizeof(plist) + (size_t)blk_cap * sizeof(blk) + data_cap;
}

/* pl_reserve -- make *plp hold at least need_blk descriptors and need_data
 * bytes; creates the list when *plp is NULL.  Errors: DM_ENOMEM (list
 * unchanged). */
static int pl_reserve(bm25 *ix, plist **plp, uint32_t need_blk,
                      uint32_t need_data)
{
    plist *pl = *plp;
    if (pl && pl->blk_cap >= need_blk && pl->data_cap >= need_data)
        return DM_OK;
    uint32_t bc = pl ? pl->blk_cap : 0, dc = pl ? pl->data_cap : 0;
    if (bc < need_blk)
        bc = need_blk > bc * 2 ? need_blk : bc * 2;
    if (dc < need_data) {
        uint64_t g = (uint64_t)dc + dc / 2;
        dc = need_data > g ? need_data : (uint32_t)(g > UINT32_MAX ? UINT32_MAX : g);
    }
    plist *np = dm_malloc(pl_size(bc, dc));
    if (!np)
        return DM_ENOMEM;
    np->blk_cap = bc;
    np->data_cap = dc;
    if (pl) {
        np->n_blk = pl->n_blk;
        np->data_len = pl->data_len;
        memcpy(np->blks, pl->blks, (size_t)pl->n_blk * sizeof(blk));
        memcpy(pl_data(np), pl_data(pl), pl->data_len);
        ix->pl_bytes -= pl_size(pl->blk_cap, pl->data_cap);
        dm_free(pl);
    } else {
        np->n_blk = 0;
        np->data_len = 0;
    }
    ix->pl_bytes += pl_size(bc, dc);
    *plp = np;
    return DM_OK;
}

/* pl_shrink -- give back the spare capacity of a list that is complete
 * (used after loading a checkpoint, where lists are built by appends). */
static void pl_shrink(bm25 *ix, plist **plp)
{
    plist *pl = *plp;
    if (pl->blk_cap == pl->n_blk && pl->data_cap == pl->data_len)
        return;
    memmove((uint8_t *)(pl->blks + pl->n_blk), pl_data(pl), pl->data_len);
    size_t old = pl_size(pl->blk_cap, pl->data_cap);
    pl->blk_cap = pl->n_blk;
    pl->data_cap = pl->data_len;
    size_t nsz = pl_size(pl->blk_cap, pl->data_cap);
    plist *np = dm_realloc(pl, nsz);
    if (np) /* a failed shrink keeps the larger block, which is fine */
        *plp = np;
    ix->pl_bytes = ix->pl_bytes - old + nsz;
}

static inline size_t enc_posting(uint8_t *p, uint32_t gap, uint32_t tf)
{
    size_t n = enc_varint(p, ((uint64_t)gap << 1) | (tf > 1));
    if (tf > 1)
        n += enc_varint(p + n, tf - 2);
    return n;
}

/* get_varint_trusted -- decode a varint this file wrote (or that was
 * validated at load): no bounds to check. */
static inline const uint8_t *get_varint_trusted(const uint8_t *p, uint64_t *v)
{
    uint64_t x = *p++;
    if (x & 0x80) {
        x &= 0x7f;
        unsigned sh = 7;
        uint8_t c;
        do {
            c = *p++;
            x |= (uint64_t)(c & 0x7f) << sh;
            sh += 7;
        } while (c & 0x80);
    }
    *v = x;
    return p;
}

/* decode_block -- the postings of block bi into docs/tfs; returns n. */
static uint32_t decode_block(const plist *pl, uint32_t bi, uint32_t *docs,
                             uint32_t *tfs)
{
    const blk *b = &pl->blks[bi];
    const uint8_t *p = pl_cdata(pl) + b->off;
    uint32_t doc = b->first_doc, n = b->n;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t code, t;
        p = get_varint_trusted(p, &code);
        doc += (uint32_t)(code >> 1);
        docs[i] = doc;
        if (code & 1) {
            p = get_varint_trusted(p, &t);
            tfs[i] = (uint32_t)t + 2;
        } else {
            tfs[i] = 1;
        }
    }
    return n;
}

static size_t enc_block(const uint32_t *docs, const uint32_t *tfs, uint32_t n,
                        uint8_t *out, blk *b)
{
    size_t len = 0;
    uint32_t prev = docs[0], max_tf = 0;
    for (uint32_t i = 0; i < n; i++) {
        len += enc_posting(out + len, docs[i] - prev, tfs[i]);
        prev = docs[i];
        if (tfs[i] > max_tf)
            max_tf = tfs[i];
    }
    b->first_doc = docs[0];
    b->last_doc = docs[n - 1];
    b->n = (uint16_t)n;
    b->max_tf = max_tf > UINT16_MAX ? UINT16_MAX : (uint16_t)max_tf;
    return len;
}

/* splice -- replace old_len bytes at off with new_len bytes from src and
 * shift the offsets of blocks from first_after on.  Capacity reserved. */
static void splice(plist *pl, uint32_t off, uint32_t old_len,
                   const uint8_t *src, uint32_t new_len, uint32_t first_after)
{
    uint8_t *d = pl_data(pl);
    assert(pl->data_len - old_len + new_len <= pl->data_cap);
    memmove(d + off + new_len, d + off + old_len, pl->data_len - off - old_len);
    if (new_len)
        memcpy(d + off, src, new_len);
    pl->data_len = pl->data_len - old_len + new_len;
    for (uint32_t i = first_after; i < pl->n_blk; i++)
        pl->blks[i].off = pl->blks[i].off - old_len + new_len;
}

/*
 * rewrite -- replace block bi by the n postings in docs/tfs: removes it
 * when n is 0 and splits it in two when n exceeds BLOCK_MAX.  Never grows
 * the data by more than the caller reserved (POSTING_MAX_BYTES + 1 per
 * inserted posting; shrinks on removal).
 */
static void rewrite(plist *pl, uint32_t bi, const uint32_t *docs,
                    const uint32_t *tfs, uint32_t n)
{
    uint8_t tmp[(BLOCK_MAX + 1) * POSTING_MAX_BYTES];
    uint32_t off = pl->blks[bi].off, old_len = blk_len(pl, bi);
    if (n == 0) {
        splice(pl, off, old_len, NULL, 0, bi + 1);
        memmove(&pl->blks[bi], &pl->blks[bi + 1],
                (size_t)(pl->n_blk - bi - 1) * sizeof(blk));
        pl->n_blk--;
        return;
    }
    if (n <= BLOCK_MAX) {
        blk b;
        size_t len = enc_block(docs, tfs, n, tmp, &b);
        b.off = off;
        splice(pl, off, old_len, tmp, (uint32_t)len, bi + 1);
        pl->blks[bi] = b;
        return;
    }
    uint32_t h = n / 2;
    blk a, c;
    size_t la = enc_block(docs, tfs, h, tmp, &a);
    size_t lc = enc_block(docs + h, tfs + h, n - h, tmp + la, &c);
    assert(pl->n_blk < pl->blk_cap);
    memmove(&pl->blks[bi + 2], &pl->blks[bi + 1],
            (size_t)(pl->n_blk - bi - 1) * sizeof(blk));
    pl->n_blk++;
    a.off = off;
    c.off = off + (uint32_t)la;
    pl->blks[bi] = a;
    pl->blks[bi + 1] = c;
    splice(pl, off, old_len, tmp, (uint32_t)(la + lc), bi + 2);
}

/* find_block -- the first block whose last doc is >= doc, or n_blk. */
static uint32_t find_block(const plist *pl, uint32_t from, uint32_t doc)
{
    uint32_t lo = from, hi = pl->n_blk;
    /* Gallop first: cursors usually move a little forward. */
    uint32_t step = 1;
    while (lo + step < hi && pl->blks[lo + step].last_doc < doc) {
        lo += step;
        step *= 2;
    }
    if (lo + step < hi)
        hi = lo + step + 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (pl->blks[mid].last_doc < doc)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* term_reserve -- make sure term t can take one more posting without
 * allocating.  Converts an inline posting into a list when needed. */
static int term_reserve(bm25 *ix, term *t)
{
    if (!t->pl) {
        if (t->df == 0)
            return DM_OK; /* will be stored inline */
        plist *pl = NULL;
        int rc = pl_reserve(ix, &pl, 2, 2 * (POSTING_MAX_BYTES + 1));
        if (rc)
            return rc;
        uint32_t d = t->one_doc, f = t->one_tf;
        pl->n_blk = 1;
        pl->data_len = (uint32_t)enc_block(&d, &f, 1, pl_data(pl), &pl->blks[0]);
        pl->blks[0].off = 0;
        t->pl = pl;
        return DM_OK;
    }
    return pl_reserve(ix, &t->pl, t->pl->n_blk + 1,
                      t->pl->data_len + POSTING_MAX_BYTES + 1);
}

/* term_insert -- add posting (doc, tf); room was reserved; doc is not in
 * the list. */
static void term_insert(bm25 *ix, term *t, uint32_t doc, uint32_t tf,
                        uint32_t dl)
{
    if (tf > t->max_tf)
        t->max_tf = tf;
    if (dl < t->min_dl)
        t->min_dl = dl;
    if (t->df++ == 0)
        ix->n_live_terms++;
    plist *pl = t->pl;
    if (!pl) {
        t->one_doc = doc;
        t->one_tf = tf;
        return;
    }
    if (pl->n_blk == 0 || doc > pl->blks[pl->n_blk - 1].last_doc) {
        uint8_t *d = pl_data(pl);
        blk *last = pl->n_blk ? &pl->blks[pl->n_blk - 1] : NULL;
        if (last && last->n < BLOCK_MAX) {
            pl->data_len += (uint32_t)enc_posting(d + pl->data_len,
                                                  doc - last->last_doc, tf);
            last->last_doc = doc;
            last->n++;
            if (tf > last->max_tf)
                last->max_tf = tf > UINT16_MAX ? UINT16_MAX : (uint16_t)tf;
        } else {
            blk *b = &pl->blks[pl->n_blk++];
            b->off = pl->data_len;
            b->first_doc = b->last_doc = doc;
            b->n = 1;
            b->max_tf = tf > UINT16_MAX ? UINT16_MAX : (uint16_t)tf;
            pl->data_len += (uint32_t)enc_posting(d + pl->data_len, 0, tf);
        }
        return;
    }
    uint32_t docs[BLOCK_MAX + 1], tfs[BLOCK_MAX + 1];
    uint32_t bi = find_block(pl, 0, doc);
    uint32_t n = decode_block(pl, bi, docs, tfs), i = 0;
    while (i < n && docs[i] < doc)
        i++;
    assert(i == n || docs[i] != doc);
    memmove(docs + i + 1, docs + i, (n - i) * sizeof *docs);
    memmove(tfs + i + 1, tfs + i, (n - i) * sizeof *tfs);
    docs[i] = doc;
    tfs[i] = tf;
    rewrite(pl, bi, docs, tfs, n + 1);
}

/* term_tf -- tf of doc in t's postings, 0 if absent.  Read-only. */
static uint32_t term_tf(const term *t, uint32_t doc)
{
    if (t->df == 0)
        return 0;
    if (!t->pl)
        return t->one_doc == doc ? t->one_tf : 0;
    const plist *pl = t->pl;
    uint32_t bi = find_block(pl, 0, doc);
    if (bi == pl->n_blk || pl->blks[bi].first_doc > doc)
        return 0;
    uint32_t docs[BLOCK_MAX], tfs[BLOCK_MAX];
    uint32_t n = decode_block(pl, bi, docs, tfs);
    for (uint32_t i = 0; i < n; i++)
        if (docs[i] == doc)
            return tfs[i];
    return 0;
}

/* term_remove -- drop doc (present) from t's postings.  No allocation. */
static void term_remove(bm25 *ix, term *t, uint32_t doc)
{
    if (t->pl) {
        plist *pl = t->pl;
        uint32_t docs[BLOCK_MAX], tfs[BLOCK_MAX];
        uint32_t bi = find_block(pl, 0, doc);
        assert(bi < pl->n_blk);
        uint32_t n = decode_block(pl, bi, docs, tfs), i = 0;
        while (i < n && docs[i] != doc)
            i++;
        assert(i < n);
        memmove(docs + i, docs + i + 1, (n - i - 1) * sizeof *docs);
        memmove(tfs + i, tfs + i + 1, (n - i - 1) * sizeof *tfs);
        rewrite(pl, bi, docs, tfs, n - 1);
    } else {
        assert(t->df == 1 && t->one_doc == doc);
    }
    if (--t->df == 0) {
        if (t->pl) {
            ix->pl_bytes -= pl_size(t->pl->blk_cap, t->pl->data_cap);
            dm_free(t->pl);
            t->pl = NULL;
        }
        t->max_tf = 0;
        t->min_dl = UINT32_MAX;
        ix->n_live_terms--;
    }
}

/* ------------------------------------------------------------ lifecycle */

int bm25_new(const bm25_params *p, bm25 **out)
{
    *out = NULL;
    bm25_params prm = p ? *p : bm25_params_default();
    if (!params_ok(&prm))
        return err_set_msg(DM_EINVAL, "bm25: k1 %g must be >= 0 and b %g in "
                           "[0, 1]", (double)prm.k1, (double)prm.b);
    bm25 *ix = dm_calloc(1, sizeof *ix);
    if (!ix)
        return DM_ENOMEM;
    ix->p = prm;
    tok_list_init(&ix->toks);
    *out = ix;
    return DM_OK;
}

void bm25_free(bm25 *ix)
{
    if (!ix)
        return;
    for (uint32_t i = 0; i < ix->n_terms; i++)
        dm_free(ix->terms[i].pl);
    dm_free(ix->terms);
    dm_free(ix->slots);
    dm_free(ix->strs);
    dm_free(ix->dl);
    dm_free(ix->ids);
    dm_free(ix->tfs);
    tok_list_fini(&ix->toks);
    dm_free(ix);
}

void bm25_set_strategy(bm25 *ix, bm25_strategy s)
{
    ix->strategy = s;
}

uint32_t bm25_doc_count(const bm25 *ix)
{
    return ix->n_docs;
}

uint32_t bm25_term_count(const bm25 *ix)
{
    return ix->n_live_terms;
}

size_t bm25_memsize(const bm25 *ix)
{
    return sizeof *ix + (size_t)ix->terms_cap * sizeof(term) +
           (ix->slots ? ((size_t)ix->slot_mask + 1) * sizeof(uint32_t) : 0) +
           ix->strs_cap + (size_t)ix->dl_cap * sizeof(uint32_t) +
           ix->pl_bytes + (size_t)ix->ids_cap * 2 * sizeof(uint32_t) +
           ix->toks.text_cap + (size_t)ix->toks.cap * sizeof(tok_token);
}

static int dl_reserve(bm25 *ix, uint32_t doc)
{
    if (doc < ix->dl_cap)
        return DM_OK;
    uint64_t nc = ix->dl_cap ? (uint64_t)ix->dl_cap * 2 : 256;
    while (nc <= doc)
        nc *= 2;
    if (nc > BM25_DOC_LIMIT)
        nc = BM25_DOC_LIMIT;
    uint32_t *d = dm_realloc(ix->dl, (size_t)nc * sizeof *d);
    if (!d)
        return DM_ENOMEM;
    for (uint64_t i = ix->dl_cap; i < nc; i++)
        d[i] = DL_ABSENT;
    ix->dl = d;
    ix->dl_cap = (uint32_t)nc;
    return DM_OK;
}

static inline int doc_present(const bm25 *ix, uint32_t doc)
{
    return doc < ix->dl_cap && ix->dl[doc] != DL_ABSENT;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/*
 * doc_terms -- analyze text into ix->ids / ix->tfs: distinct term ids with
 * their counts, sorted by id; *n_out distinct, *len_out total.  With
 * create, unknown terms are interned; without, an unknown term makes
 * *missing 1 (and is left out).
 */
static int doc_terms(bm25 *ix, const char *text, size_t len, int create,
                     uint32_t *n_out, uint32_t *len_out, int *missing)
{
    int rc = analyze(text, len, &ix->toks);
    if (rc)
        return rc;
    tok_list *l = &ix->toks;
    if (l->n > ix->ids_cap) {
        uint32_t nc = l->n > 64 ? l->n : 64;
        uint32_t *a = dm_malloc((size_t)nc * sizeof *a);
        uint32_t *b = dm_malloc((size_t)nc * sizeof *b);
        if (!a || !b) {
            dm_free(a);
            dm_free(b);
            return DM_ENOMEM;
        }
        dm_free(ix->ids);
        dm_free(ix->tfs);
        ix->ids = a;
        ix->tfs = b;
        ix->ids_cap = nc;
    }
    uint32_t n = 0;
    if (missing)
        *missing = 0;
    for (uint32_t i = 0; i < l->n; i++) {
        const char *s = tok_str(l, i);
        uint32_t id;
        if (create) {
            if ((rc = intern(ix, s, l->toks[i].len, &id)))
                return rc;
        } else {
            id = lookup(ix, s, l->toks[i].len, hash_term(s, l->toks[i].len));
            if (id == UINT32_MAX) {
                *missing = 1;
                continue;
            }
        }
        ix->ids[n++] = id;
    }
    *len_out = l->n;
    if (n > 32) {
        qsort(ix->ids, n, sizeof *ix->ids, cmp_u32);
    } else {
        /* A memory has few terms: insertion sort beats qsort's calls. */
        for (uint32_t i = 1; i < n; i++) {
            uint32_t v = ix->ids[i], j = i;
            for (; j > 0 && ix->ids[j - 1] > v; j--)
                ix->ids[j] = ix->ids[j - 1];
            ix->ids[j] = v;
        }
    }
    uint32_t w = 0;
    for (uint32_t i = 0; i < n;) {
        uint32_t j = i + 1;
        while (j < n && ix->ids[j] == ix->ids[i])
            j++;
        ix->ids[w] = ix->ids[i];
        ix->tfs[w++] = j - i;
        i = j;
    }
    *n_out = w;
    return DM_OK;
}

int bm25_add(bm25 *ix, uint32_t doc, const char *text, size_t len)
{
    uint32_t n, dl;
    int rc;
    if (doc >= BM25_DOC_LIMIT)
        return err_set_msg(DM_EINVAL, "bm25: document number %u reserved", doc);
    if (doc_present(ix, doc))
        return err_set_msg(DM_EEXISTS, "bm25: document %u already indexed",
                           doc);
    if ((rc = doc_terms(ix, text, len, 1, &n, &dl, NULL)))
        return rc;
    if (ix->total_len + dl < ix->total_len)
        return err_set_msg(DM_EINVAL, "bm25: total length overflow");
    if ((rc = dl_reserve(ix, doc)))
        return rc;
    for (uint32_t i = 0; i < n; i++)
        if ((rc = term_reserve(ix, &ix->terms[ix->ids[i]])))
            return rc;
    /* Nothing below can fail. */
    for (uint32_t i = 0; i < n; i++)
        term_insert(ix, &ix->terms[ix->ids[i]], doc, ix->tfs[i], dl);
    ix->dl[doc] = dl;
    if (dl > ix->max_dl)
        ix->max_dl = dl;
    ix->n_docs++;
    ix->total_len += dl;
    return DM_OK;
}

int bm25_delete(bm25 *ix, uint32_t doc, const char *text, size_t len)
{
    uint32_t n, dl;
    int missing, rc;
    if (!doc_present(ix, doc))
        return err_set_msg(DM_ENOTFOUND, "bm25: document %u not indexed", doc);
    if ((rc = doc_terms(ix, text, len, 0, &n, &dl, &missing)))
        return rc;
    int ok = !missing && dl == ix->dl[doc];
    for (uint32_t i = 0; ok && i < n; i++)
        ok = term_tf(&ix->terms[ix->ids[i]], doc) == ix->tfs[i];
    if (!ok)
        return err_set_msg(DM_EINVAL, "bm25: text does not match indexed "
                           "document %u", doc);
    for (uint32_t i = 0; i < n; i++)
        term_remove(ix, &ix->terms[ix->ids[i]], doc);
    ix->dl[doc] = DL_ABSENT;
    ix->n_docs--;
    ix->total_len -= dl;
    return DM_OK;
}

/* --------------------------------------------------------------- scoring */

/* The per-query view of one distinct query term. */
typedef struct qterm {
    uint32_t id;   /* term id */
    uint32_t qidx; /* position among the distinct query terms */
    double idf;
    double w;      /* idf * (k1 + 1) */
    double ub;     /* upper bound of the contribution, inflated */
} qterm;

typedef struct scorer {
    double k1, b, avgdl;
    double n_docs;
} scorer;

static void scorer_init(const bm25 *ix, scorer *sc)
{
    sc->k1 = ix->p.k1;
    sc->b = ix->p.b;
    sc->n_docs = ix->n_docs;
    sc->avgdl = ix->n_docs ? (double)ix->total_len / ix->n_docs : 0.0;
}

static double idf_of(const scorer *sc, uint32_t df)
{
    return log(1.0 + (sc->n_docs - df + 0.5) / (df + 0.5));
}

/* norm -- k1 * (1 - b + b * dl / avgdl).  Kept out of line so that every
 * caller computes bit-identical values (no contraction into fused
 * multiply-adds that differ between call sites). */
__attribute__((noinline)) static double norm(const scorer *sc, uint32_t dl)
{
    double rel = sc->avgdl > 0 ? ((double)dl * sc->b) / sc->avgdl : 0.0;
    return sc->k1 * ((1.0 - sc->b) + rel);
}

__attribute__((noinline)) static double contrib(double w, uint32_t tf,
                                                double nrm)
{
    return (w * tf) / (tf + nrm);
}

static double bound(const scorer *sc, double w, uint32_t max_tf,
                    uint32_t min_dl, int tf_saturated)
{
    if (tf_saturated)
        return w * (1.0 + BOUND_SLACK);
    return contrib(w, max_tf, norm(sc, min_dl)) * (1.0 + BOUND_SLACK);
}

static void qterm_init(const bm25 *ix, const scorer *sc, qterm *q,
                       uint32_t id, uint32_t qidx)
{
    const term *t = &ix->terms[id];
    q->id = id;
    q->qidx = qidx;
    q->idf = idf_of(sc, t->df);
    q->w = q->idf * (sc->k1 + 1.0);
    q->ub = bound(sc, q->w, t->max_tf, t->min_dl, 0);
}

/*
 * query_terms -- analyze the query; fill ids (distinct known terms with
 * df > 0, in query order).  l keeps every analyzed term for explain.
 * *ids is dm_malloc'd (caller frees).
 */
static int query_terms(const bm25 *ix, const char *q, size_t len, tok_list *l,
                       uint32_t **ids, uint32_t *n_ids)
{
    *ids = NULL;
    *n_ids = 0;
    int rc = analyze(q, len, l);
    if (rc)
        return rc;
    if (l->n == 0)
        return DM_OK;
    uint32_t *a = dm_malloc((size_t)l->n * sizeof *a);
    if (!a)
        return DM_ENOMEM;
    uint32_t n = 0;
    for (uint32_t i = 0; i < l->n; i++) {
        const char *s = tok_str(l, i);
        uint32_t id = lookup(ix, s, l->toks[i].len,
                             hash_term(s, l->toks[i].len));
        if (id == UINT32_MAX || ix->terms[id].df == 0)
            continue;
        uint32_t j = 0;
        while (j < n && a[j] != id)
            j++;
        if (j == n)
            a[n++] = id;
    }
    *ids = a;
    *n_ids = n;
    return DM_OK;
}

int bm25_score_many(const bm25 *ix, const char *query, size_t len,
                    const uint32_t *docs, uint32_t n_docs, float *scores)
{
    tok_list l;
    uint32_t *ids = NULL, n = 0;
    for (uint32_t d = 0; d < n_docs; d++)
        scores[d] = 0.0f;
    tok_list_init(&l);
    /* The query is analyzed once for all documents. */
    int rc = query_terms(ix, query, len, &l, &ids, &n);
    if (rc)
        goto fail;
    scorer sc;
    scorer_init(ix, &sc);
    for (uint32_t d = 0; d < n_docs; d++) {
        uint32_t doc = docs[d];
        if (!doc_present(ix, doc))
            continue;
        double nrm = norm(&sc, ix->dl[doc]), s = 0.0;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t tf = term_tf(&ix->terms[ids[i]], doc);
            if (tf) {
                qterm q;
                qterm_init(ix, &sc, &q, ids[i], i);
                s += contrib(q.w, tf, nrm);
            }
        }
        scores[d] = (float)s;
    }
fail:
    dm_free(ids);
    tok_list_fini(&l);
    return rc;
}

int bm25_score(const bm25 *ix, const char *query, size_t len, uint32_t doc,
               float *score)
{
    return bm25_score_many(ix, query, len, &doc, 1, score);
}

int bm25_explain(const bm25 *ix, const char *query, size_t len, uint32_t doc,
                 bm25_term_explain *out, uint32_t cap, uint32_t *n_out)
{
    tok_list l;
    *n_out = 0;
    tok_list_init(&l);
    int rc = analyze(query, len, &l);
    if (rc)
        goto fail;
    scorer sc;
    scorer_init(ix, &sc);
    int present = doc_present(ix, doc);
    double nrm = present ? norm(&sc, ix->dl[doc]) : 0.0;
    uint32_t n = 0;
    for (uint32_t i = 0; i < l.n && n < cap; i++) {
        const char *s = tok_str(&l, i);
        uint32_t slen = l.toks[i].len, j;
        /* Repeated terms are reported once. */
        for (j = 0; j < i; j++)
            if (l.toks[j].len == slen && memcmp(tok_str(&l, j), s, slen) == 0)
                break;
        if (j < i)
            continue;
        bm25_term_explain *e = &out[n++];
        memset(e, 0, sizeof *e);
        size_t cl = slen < sizeof e->term - 1 ? slen : sizeof e->term - 1;
        /* Truncate on a code point boundary. */
        while (cl > 0 && cl < slen && ((uint8_t)s[cl] & 0xC0) == 0x80)
            cl--;
        memcpy(e->term, s, cl);
        uint32_t id = lookup(ix, s, slen, hash_term(s, slen));
        uint32_t df = id == UINT32_MAX ? 0 : ix->terms[id].df;
        e->df = df;
        e->idf = (float)idf_of(&sc, df);
        if (df && present) {
            e->tf = term_tf(&ix->terms[id], doc);
            if (e->tf) {
                qterm q;
                qterm_init(ix, &sc, &q, id, 0);
                e->score = (float)contrib(q.w, e->tf, nrm);
            }
        }
    }
    *n_out = n;
fail:
    tok_list_fini(&l);
    return rc;
}

/* ---------------------------------------------------------------- search */

/*
 * Search runs over the document numbers in windows of WIN_DOCS, from the
 * smallest document an essential term still holds.  Each window is scored
 * one of two ways, chosen from its posting counts (window_mode):
 *
 *   - MaxScore, document at a time (daat_window): the candidates are the
 *     documents of the essential terms; the others are probed.  Best when
 *     the bounds let most postings be skipped (a rare term next to common
 *     ones, or a high k-th score).
 *   - Term at a time (taat_window): every query term, in query order, adds
 *     its contributions into a dense array of WIN_DOCS doubles; a scan then
 *     offers each document whose sum can enter the heap.  Best when nearly
 *     every posting must be visited anyway (common terms of similar idf),
 *     where it replaces the per-candidate loops over all cursors with one
 *     add per posting.
 *
 * Both produce the canonical score: the term-at-a-time sum starts at 0.0
 * and adds the contributions in query order, which is exactly the
 * canonical sum (a missing term adds 0.0, which changes nothing), and the
 * contributions come from the same norm() and contrib() calls, cached per
 * query in tables indexed by document length.  The filter is called only
 * for documents that would enter the heap.  Windows are visited in
 * increasing document order in both modes, so theta and the essential set
 * carry over from one window to the next.
 */
#define WIN_DOCS 8192 /* documents per window; the accumulator is 64 KiB */
#define NORM_TAB 256  /* norm() cached for document lengths below this */
#define C1_TAB 64     /* tf-1 contributions cached for lengths below this */

typedef struct cursor {
    const plist *pl; /* NULL: the term's inline posting is in one */
    blk one;
    uint32_t one_tf;
    uint32_t n_blk;
    const blk *blks;
    uint32_t bi;       /* current block */
    uint32_t pos;      /* position in the decoded block */
    int decoded;       /* docs/tfs hold block bi */
    uint32_t doc;      /* current doc, CUR_END when exhausted */
    qterm q;
    double c;          /* this candidate's contribution */
    double cum;        /* sum of ub over this and every lower-bound term */
    uint32_t min_dl;   /* the term's min_dl, for block bounds */
    uint32_t bub_tf;   /* the max_tf bub was computed for, 0 = none */
    double bub;        /* block bound for a block whose max_tf is bub_tf */
    uint32_t docs[BLOCK_MAX], tfs[BLOCK_MAX];
    int is_c1_full;    /* c1 holds every length the term's documents have */
    double c1[C1_TAB]; /* contrib(w, 1, norm(dl)) by dl; < 0 = not yet */
} cursor;

/* The state of one bm25_search call. */
typedef struct search {
    const bm25 *ix;
    scorer sc;
    cursor *cur;       /* m cursors, ascending bound */
    uint32_t m;
    uint32_t p;        /* cursors [0, p) are non-essential */
    uint32_t *byq;     /* byq[qidx]: the cursor of query term qidx */
    double *cq;        /* per-qidx contributions of a DAAT candidate */
    double *acc;       /* win sums, 0.0 outside taat_window; NULL until
                        * the first window scored term at a time */
    uint32_t win;      /* documents per window: WIN_DOCS, or fewer when
                        * the index's numbers span fewer */
    uint32_t nt_lim;   /* nt covers lengths below this (no document is
                        * longer than max_dl, so the rest is not set up) */
    uint32_t c1_lim;   /* the cursors' c1 likewise */
    double theta;      /* k-th score lowered by 1e-9, -1 until k hits */
    bm25_hit *out;     /* the heap, n_heap of k */
    uint32_t k, n_heap;
    ix_filter_fn filter;
    void *arg;
    double nt[NORM_TAB]; /* norm() by dl; < 0 = not yet computed */
} search;

static void cursor_open(cursor *c, const term *t, uint32_t c1_lim)
{
    c->pl = t->pl;
    if (t->pl) {
        c->blks = t->pl->blks;
        c->n_blk = t->pl->n_blk;
    } else {
        c->one.first_doc = c->one.last_doc = t->one_doc;
        c->one.off = 0;
        c->one.n = 1;
        c->one.max_tf = t->one_tf > UINT16_MAX ? UINT16_MAX : (uint16_t)t->one_tf;
        c->one_tf = t->one_tf;
        c->blks = &c->one;
        c->n_blk = 1;
    }
    c->bi = 0;
    c->pos = 0;
    c->decoded = 0;
    c->doc = c->n_blk ? c->blks[0].first_doc : CUR_END;
    c->min_dl = t->min_dl;
    c->bub_tf = 0;
    c->is_c1_full = 0;
    for (uint32_t i = 0; i < c1_lim; i++)
        c->c1[i] = -1.0;
}

static inline void cursor_decode(cursor *c)
{
    if (c->decoded)
        return;
    if (c->pl) {
        decode_block(c->pl, c->bi, c->docs, c->tfs);
    } else {
        c->docs[0] = c->one.first_doc;
        c->tfs[0] = c->one_tf;
    }
    c->decoded = 1;
    c->pos = 0;
}

static inline uint32_t cursor_tf(cursor *c)
{
    cursor_decode(c);
    return c->tfs[c->pos];
}

/* cursor_next_block -- move to the first posting of the next block. */
static inline void cursor_next_block(cursor *c)
{
    if (c->bi + 1 < c->n_blk) {
        c->bi++;
        c->decoded = 0;
        c->pos = 0;
        c->doc = c->blks[c->bi].first_doc;
        return;
    }
    c->doc = CUR_END;
}

static inline void cursor_next(cursor *c)
{
    cursor_decode(c);
    if (++c->pos < c->blks[c->bi].n) {
        c->doc = c->docs[c->pos];
        return;
    }
    cursor_next_block(c);
}

/* cursor_seek_block -- move to the block that may hold target (current doc
 * < target) without decoding it; c->doc becomes that block's first doc. */
static void cursor_seek_block(cursor *c, uint32_t target)
{
    if (target <= c->blks[c->bi].last_doc)
        return;
    uint32_t bi = c->pl ? find_block(c->pl, c->bi + 1, target) : c->n_blk;
    if (bi >= c->n_blk) {
        c->doc = CUR_END;
        return;
    }
    c->bi = bi;
    c->decoded = 0;
    c->pos = 0;
    c->doc = c->blks[bi].first_doc;
}

/* cursor_geq -- advance to the first doc >= target. */
static void cursor_geq(cursor *c, uint32_t target)
{
    if (c->doc >= target)
        return;
    cursor_seek_block(c, target);
    if (c->doc >= target)
        return;
    cursor_decode(c);
    uint32_t p = c->pos;
    while (c->docs[p] < target)
        p++;
    c->pos = p;
    c->doc = c->docs[p];
}

/* cursor_count_below -- about how many postings from the cursor on are
 * below end: whole blocks that start below end, less the postings already
 * passed in the current one. */
static uint32_t cursor_count_below(const cursor *c, uint32_t end)
{
    if (c->doc >= end)
        return 0;
    uint32_t n = c->decoded ? (uint32_t)c->blks[c->bi].n - c->pos
                            : c->blks[c->bi].n;
    for (uint32_t bi = c->bi + 1; bi < c->n_blk && c->blks[bi].first_doc < end;
         bi++)
        n += c->blks[bi].n;
    return n;
}

/* norm_at -- norm(dl), from the per-query table when dl is small.  The
 * table holds values norm() computed, so they are bit-identical. */
static inline double norm_at(search *s, uint32_t dl)
{
    if (dl < s->nt_lim) {
        double v = s->nt[dl];
        if (v < 0.0)
            v = s->nt[dl] = norm(&s->sc, dl);
        return v;
    }
    return norm(&s->sc, dl);
}

/* term_contrib -- contrib(w, tf, norm(dl)) for cursor c's term; the tf-1
 * values of short documents come from the cursor's table. */
static inline double term_contrib(search *s, cursor *c, uint32_t tf,
                                  uint32_t dl)
{
    if (tf == 1 && dl < s->c1_lim) {
        double v = c->c1[dl];
        if (v < 0.0)
            v = c->c1[dl] = contrib(c->q.w, 1, norm_at(s, dl));
        return v;
    }
    return contrib(c->q.w, tf, norm_at(s, dl));
}

/* block_bound -- bound of cursor c's contribution in its current block. */
static inline double block_bound(search *s, cursor *c)
{
    uint32_t mt = c->blks[c->bi].max_tf;
    if (mt != c->bub_tf) {
        c->bub = bound(&s->sc, c->q.w, mt, c->min_dl, mt == UINT16_MAX);
        c->bub_tf = mt;
    }
    return c->bub;
}

/* Heap of the best k so far in out[0..n): the worst hit at the root. */
static inline int worse(const bm25_hit *a, const bm25_hit *b)
{
    return a->score < b->score || (a->score == b->score && a->doc > b->doc);
}

static void sift_down(bm25_hit *h, uint32_t n, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && worse(&h[l], &h[m]))
            m = l;
        if (r < n && worse(&h[r], &h[m]))
            m = r;
        if (m == i)
            return;
        bm25_hit t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void sift_up(bm25_hit *h, uint32_t i)
{
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!worse(&h[i], &h[p]))
            return;
        bm25_hit t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

static int cmp_hit(const void *a, const void *b)
{
    const bm25_hit *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->doc < y->doc ? -1 : x->doc > y->doc;
}

static int cmp_qterm_ub(const void *a, const void *b)
{
    const qterm *x = a, *y = b;
    if (x->ub != y->ub)
        return x->ub < y->ub ? -1 : 1;
    return x->qidx < y->qidx ? -1 : x->qidx > y->qidx;
}

/* offer -- document d with its canonical score: into the heap if it beats
 * the worst hit and passes the filter; then theta and the essential set
 * follow the new k-th score. */
static void offer(search *s, uint32_t d, float score)
{
    bm25_hit h = { d, score };
    if (s->n_heap == s->k && !worse(&s->out[0], &h))
        return;
    if (s->filter && !s->filter(s->arg, d))
        return;
    if (s->n_heap < s->k) {
        s->out[s->n_heap] = h;
        sift_up(s->out, s->n_heap++);
    } else {
        s->out[0] = h;
        sift_down(s->out, s->n_heap, 0);
    }
    if (s->n_heap == s->k) {
        /* Lowered by a relative 1e-9 to cover the rounding difference
         * between MaxScore's partial sums and the canonical sum. */
        s->theta = (double)s->out[0].score * (1.0 - 1e-9);
        while (s->p < s->m && s->cur[s->p].cum < s->theta)
            s->p++;
    }
}

/* daat_window -- MaxScore over the essential terms' documents below end. */
static void daat_window(search *s, uint32_t end)
{
    cursor *cur = s->cur;
    const uint32_t m = s->m;
    while (s->p < m) {
        const uint32_t p = s->p;
        /* The next candidate: the smallest doc among essential cursors. */
        uint32_t d = CUR_END;
        for (uint32_t i = p; i < m; i++)
            if (cur[i].doc < d)
                d = cur[i].doc;
        if (d >= end)
            return;
        assert(doc_present(s->ix, d));
        uint32_t dl = s->ix->dl[d];
        double sum = 0.0;
        for (uint32_t i = p; i < m; i++) {
            cursor *c = &cur[i];
            if (c->doc == d) {
                c->c = term_contrib(s, c, cursor_tf(c), dl);
                sum += c->c;
                cursor_next(c);
            } else {
                c->c = 0.0;
            }
        }
        /* Probe non-essential terms, best bound first, while the rest can
         * still lift d above theta. */
        int pruned = 0;
        for (uint32_t i = p; i-- > 0;) {
            cursor *c = &cur[i];
            c->c = 0.0;
            if (sum + c->cum < s->theta) {
                pruned = 1;
                break;
            }
            if (c->doc < d) {
                cursor_seek_block(c, d);
                if (c->doc == CUR_END || c->doc > d)
                    continue;
                double below = i ? cur[i - 1].cum : 0.0;
                if (sum + block_bound(s, c) + below < s->theta) {
                    pruned = 1;
                    break;
                }
                cursor_geq(c, d);
            }
            if (c->doc == d) {
                c->c = term_contrib(s, c, cursor_tf(c), dl);
                sum += c->c;
            }
        }
        if (pruned)
            continue;
        /* The canonical score: contributions summed in query order. */
        for (uint32_t i = 0; i < m; i++)
            s->cq[cur[i].q.qidx] = cur[i].c;
        double exact = 0.0;
        for (uint32_t i = 0; i < m; i++)
            exact += s->cq[i];
        offer(s, d, (float)exact);
    }
}

/* any_above8 -- 1 if one of a[0..8) is above thr. */
static inline int any_above8(const double *a, double thr)
{
#ifdef __SSE2__
    __m128d t = _mm_set1_pd(thr);
    __m128d x = _mm_or_pd(_mm_cmpgt_pd(_mm_loadu_pd(a), t),
                          _mm_cmpgt_pd(_mm_loadu_pd(a + 2), t));
    __m128d y = _mm_or_pd(_mm_cmpgt_pd(_mm_loadu_pd(a + 4), t),
                          _mm_cmpgt_pd(_mm_loadu_pd(a + 6), t));
    return _mm_movemask_pd(_mm_or_pd(x, y)) != 0;
#else
    return (a[0] > thr) | (a[1] > thr) | (a[2] > thr) | (a[3] > thr) |
           (a[4] > thr) | (a[5] > thr) | (a[6] > thr) | (a[7] > thr);
#endif
}

/* zero8 -- a[0..8) = 0.0. */
static inline void zero8(double *a)
{
#ifdef __SSE2__
    __m128d z = _mm_setzero_pd();
    _mm_storeu_pd(a, z);
    _mm_storeu_pd(a + 2, z);
    _mm_storeu_pd(a + 4, z);
    _mm_storeu_pd(a + 6, z);
#else
    memset(a, 0, 8 * sizeof *a);
#endif
}

/* scan_threshold -- a double below which no sum can enter the heap: its
 * float rounding would be below the worst hit.  0 while the heap fills
 * (every scored document has a positive sum). */
static inline double scan_threshold(const search *s)
{
    if (s->n_heap < s->k)
        return 0.0;
    /* Any x that rounds to a float >= r is >= r * (1 - 2^-24); the
     * margin is four times that, and offer() makes the exact test. */
    return (double)s->out[0].score * (1.0 - 0x1p-22);
}

/* c1_fill -- complete cursor c's tf-1 table for every length its
 * documents can have (from the term's min_dl to the index's max_dl), so
 * that the term-at-a-time loop needs no "not yet" test. */
static void c1_fill(search *s, cursor *c)
{
    for (uint32_t dl = c->min_dl; dl < s->c1_lim; dl++)
        if (c->c1[dl] < 0.0)
            c->c1[dl] = contrib(c->q.w, 1, norm_at(s, dl));
    c->is_c1_full = 1;
}

/* taat_contrib -- term_contrib once c1_fill ran. */
static inline double taat_contrib(search *s, cursor *c, uint32_t tf,
                                  uint32_t dl)
{
    if (tf == 1 && dl < s->c1_lim) {
        assert(c->c1[dl] >= 0.0);
        return c->c1[dl];
    }
    return contrib(c->q.w, tf, norm_at(s, dl));
}

/* taat_block -- add the contributions of cursor c's current block, which
 * lies inside the window starting at w, straight from its encoding, and
 * move to the next block. */
static void taat_block(search *s, cursor *c, uint32_t w)
{
    double *acc = s->acc;
    const uint32_t *dls = s->ix->dl;
    if (c->decoded || !c->pl) {
        cursor_decode(c);
        uint32_t n = c->blks[c->bi].n;
        for (uint32_t pos = c->pos; pos < n; pos++) {
            uint32_t d = c->docs[pos];
            acc[d - w] += taat_contrib(s, c, c->tfs[pos], dls[d]);
        }
    } else {
        const blk *b = &c->blks[c->bi];
        const uint8_t *p = pl_cdata(c->pl) + b->off;
        uint32_t d = b->first_doc, n = b->n;
        for (uint32_t i = 0; i < n; i++) {
            uint64_t code = *p++, tf = 1;
            if (code & 0x80) {
                p--;
                p = get_varint_trusted(p, &code);
            }
            d += (uint32_t)(code >> 1);
            if (code & 1) {
                p = get_varint_trusted(p, &tf);
                tf += 2;
            }
            acc[d - w] += taat_contrib(s, c, (uint32_t)tf, dls[d]);
        }
    }
    cursor_next_block(c);
}

/* taat_window -- score every document in [w, end) term at a time. */
static void taat_window(search *s, uint32_t w, uint32_t end)
{
    double *acc = s->acc;
    const uint32_t *dls = s->ix->dl;
    for (uint32_t qi = 0; qi < s->m; qi++) {
        cursor *c = &s->cur[s->byq[qi]];
        if (c->doc < w)
            cursor_geq(c, w); /* a non-essential term left behind */
        if (c->doc >= end)
            continue;
        if (!c->is_c1_full)
            c1_fill(s, c);
        while (c->doc < end) {
            if (c->blks[c->bi].last_doc < end) {
                taat_block(s, c, w);
                continue;
            }
            /* The block straddles the window's end. */
            cursor_decode(c);
            const uint32_t *docs = c->docs, *tfs = c->tfs;
            uint32_t pos = c->pos;
            for (; docs[pos] < end; pos++) {
                uint32_t d = docs[pos];
                acc[d - w] += taat_contrib(s, c, tfs[pos], dls[d]);
            }
            c->pos = pos;
            c->doc = docs[pos];
        }
    }
    /* The scan: nearly every sum fails the threshold, so eight are
     * tested at once (with SSE2 where the target has it). */
    uint32_t lim = end - w, i = 0;
    double thr = scan_threshold(s);
    for (; i + 8 <= lim; i += 8) {
        if (any_above8(acc + i, thr)) {
            for (uint32_t j = i; j < i + 8; j++) {
                if (acc[j] > thr) {
                    offer(s, w + j, (float)acc[j]);
                    thr = scan_threshold(s);
                }
            }
        }
        zero8(acc + i);
    }
    for (; i < lim; i++) {
        if (acc[i] > thr) {
            offer(s, w + i, (float)acc[i]);
            thr = scan_threshold(s);
        }
        acc[i] = 0.0;
    }
}

/*
 * The cost model behind the choice, in eighths of a nanosecond as fitted
 * to single-query timings on three corpora of short documents (generated
 * sentences, Zipfian made-up words, changelog lines): term at a time pays
 * about 1.1 ns per posting and 0.25 ns per document number scanned;
 * MaxScore pays per essential posting about 3 ns, plus 2.7 ns for each
 * essential term it merges and 0.75 ns for each non-essential one it may
 * probe.
 */
static inline uint64_t taat_cost(uint64_t n_post, uint64_t n_docs)
{
    return 9 * n_post + 2 * n_docs;
}

static inline uint64_t daat_cost(uint64_t n_ess, uint32_t m, uint32_t p)
{
    return n_ess * (24 + 22 * (uint64_t)(m - p) + 6 * (uint64_t)p);
}

/* window_mode -- 1 to score [w, end) term at a time, 0 for MaxScore. */
static int window_mode(search *s, uint32_t w, uint32_t end)
{
    if (s->ix->strategy != BM25_STRATEGY_AUTO)
        return s->ix->strategy == BM25_STRATEGY_WINDOW;
    uint64_t all = 0, ess = 0;
    for (uint32_t i = 0; i < s->m; i++) {
        cursor *c = &s->cur[i];
        if (c->doc < w)
            cursor_seek_block(c, w);
        uint32_t n = cursor_count_below(c, end);
        all += n;
        if (i >= s->p)
            ess += n;
    }
    return taat_cost(all, end - w) < daat_cost(ess, s->m, s->p);
}

int bm25_search(const bm25 *ix, const char *query, size_t len, uint32_t k,
                ix_filter_fn filter, void *arg, bm25_hit *out, uint32_t *n_out)
{
    tok_list l;
    uint32_t *ids = NULL, m = 0;
    search *s = NULL;
    *n_out = 0;
    tok_list_init(&l);
    int rc = query_terms(ix, query, len, &l, &ids, &m);
    if (rc || m == 0 || k == 0 || ix->n_docs == 0)
        goto done;
    /* One allocation for the state, the cursors, cq, the query terms and
     * byq.  The accumulator comes later, with the first window that needs
     * it. */
    size_t off_cur = sizeof *s;
    size_t off_cq = off_cur + (size_t)m * sizeof(cursor);
    size_t off_qs = off_cq + (size_t)m * sizeof(double);
    size_t off_byq = off_qs + (size_t)m * sizeof(qterm);
    uint8_t *mem = dm_malloc(off_byq + (size_t)m * sizeof(uint32_t));
    if (!mem) {
        rc = DM_ENOMEM;
        goto done;
    }
    s = (search *)mem;
    memset(s, 0, offsetof(search, nt));
    s->cur = (cursor *)(mem + off_cur);
    s->cq = (double *)(mem + off_cq);
    s->byq = (uint32_t *)(mem + off_byq);
    qterm *qs = (qterm *)(mem + off_qs);
    s->ix = ix;
    s->m = m;
    s->k = k;
    s->out = out;
    s->filter = filter;
    s->arg = arg;
    s->theta = -1.0;
    /* Every document number is below dl_cap. */
    s->win = ix->dl_cap < WIN_DOCS ? (ix->dl_cap + 7) & ~7u : WIN_DOCS;
    scorer_init(ix, &s->sc);
    s->nt_lim = ix->max_dl < NORM_TAB ? ix->max_dl + 1 : NORM_TAB;
    s->c1_lim = ix->max_dl < C1_TAB ? ix->max_dl + 1 : C1_TAB;
    for (uint32_t i = 0; i < s->nt_lim; i++)
        s->nt[i] = -1.0;
    /* Cursors in ascending bound order; cum[i] = ub[0] + ... + ub[i]. */
    for (uint32_t i = 0; i < m; i++)
        qterm_init(ix, &s->sc, &qs[i], ids[i], i);
    qsort(qs, m, sizeof *qs, cmp_qterm_ub);
    cursor *cur = s->cur;
    double acc = 0.0;
    for (uint32_t i = 0; i < m; i++) {
        cursor_open(&cur[i], &ix->terms[qs[i].id], s->c1_lim);
        cur[i].q = qs[i];
        acc += cur[i].q.ub;
        cur[i].cum = acc * (1.0 + BOUND_SLACK);
        s->byq[cur[i].q.qidx] = i;
        s->cq[i] = 0.0;
    }

    /* Postings too sparse for any window scan to pay over the whole index
     * (assuming they spread evenly): MaxScore in one pass, without the
     * per-window bookkeeping. */
    uint64_t n_post = 0;
    uint32_t lo = CUR_END, hi = 0;
    for (uint32_t i = 0; i < m; i++) {
        n_post += ix->terms[cur[i].q.id].df;
        lo = cur[i].blks[0].first_doc < lo ? cur[i].blks[0].first_doc : lo;
        hi = cur[i].blks[cur[i].n_blk - 1].last_doc > hi
                 ? cur[i].blks[cur[i].n_blk - 1].last_doc : hi;
    }
    if (ix->strategy == BM25_STRATEGY_AUTO &&
        taat_cost(n_post, (uint64_t)hi - lo + 1) >= daat_cost(n_post, m, 0))
        daat_window(s, CUR_END);
    while (s->p < m) {
        uint32_t w = CUR_END;
        for (uint32_t i = s->p; i < m; i++)
            if (cur[i].doc < w)
                w = cur[i].doc;
        if (w == CUR_END)
            break;
        uint32_t end = w > CUR_END - s->win ? CUR_END : w + s->win;
        /* Out of memory for the accumulator, MaxScore does the window:
         * once the filter may have been called, nothing fails. */
        if (window_mode(s, w, end) &&
            (s->acc || (s->acc = dm_calloc(s->win, sizeof *s->acc))))
            taat_window(s, w, end);
        else
            daat_window(s, end);
    }
    qsort(out, s->n_heap, sizeof *out, cmp_hit);
    *n_out = s->n_heap;
done:
    if (s)
        dm_free(s->acc);
    dm_free(s);
    dm_free(ids);
    tok_list_fini(&l);
    if (rc)
        *n_out = 0;
    return rc;
}

/* ------------------------------------------------------------ checkpoint */

static int cmp_term_ids(const void *a, const void *b, void *arg)
{
    const bm25 *ix = arg;
    const term *x = &ix->terms[*(const uint32_t *)a];
    const term *y = &ix->terms[*(const uint32_t *)b];
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(term_str(ix, x), term_str(ix, y), n);
    if (c)
        return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

int bm25_serialize(const bm25 *ix, buf *out)
{
    uint32_t *order = NULL;
    size_t start = out->len;
    int rc = DM_OK;
    uint8_t hdr[BM25_HEADER_LEN];
    enc_u64(hdr + BM25_OFF_MAGIC, BM25_MAGIC);
    enc_u32(hdr + BM25_OFF_VERSION, BM25_VERSION);
    enc_u32(hdr + BM25_OFF_RESERVED, 0);
    if ((rc = buf_append(out, hdr, sizeof hdr)))
        goto fail;
    if ((rc = buf_put_varint(out, ix->n_docs)) ||
        (rc = buf_put_varint(out, ix->total_len)))
        goto fail;
    int64_t prev = -1;
    for (uint32_t d = 0; d < ix->dl_cap; d++) {
        if (ix->dl[d] == DL_ABSENT)
            continue;
        if ((rc = buf_put_varint(out, (uint64_t)((int64_t)d - prev - 1))) ||
            (rc = buf_put_varint(out, ix->dl[d])))
            goto fail;
        prev = d;
    }
    if ((rc = buf_put_varint(out, ix->n_live_terms)))
        goto fail;
    if (ix->n_live_terms) {
        order = dm_malloc((size_t)ix->n_live_terms * sizeof *order);
        if (!order) {
            rc = DM_ENOMEM;
            goto fail;
        }
    }
    uint32_t n = 0;
    for (uint32_t i = 0; i < ix->n_terms; i++)
        if (ix->terms[i].df)
            order[n++] = i;
    assert(n == ix->n_live_terms);
    if (n > 1)
        qsort_r(order, n, sizeof *order, cmp_term_ids, (void *)ix);
    const term *pt = NULL;
    uint32_t docs[BLOCK_MAX], tfs[BLOCK_MAX];
    for (uint32_t i = 0; i < n; i++) {
        const term *t = &ix->terms[order[i]];
        const char *s = term_str(ix, t);
        uint32_t shared = 0;
        if (pt) {
            const char *ps = term_str(ix, pt);
            while (shared < t->len && shared < pt->len && s[shared] == ps[shared])
                shared++;
        }
        if ((rc = buf_put_varint(out, shared)) ||
            (rc = buf_put_lenbytes(out, s + shared, t->len - shared)) ||
            (rc = buf_put_varint(out, t->df)))
            goto fail;
        if ((rc = buf_reserve(out, (size_t)t->df * POSTING_MAX_BYTES)))
            goto fail;
        int64_t pd = -1;
        uint32_t nb = t->pl ? t->pl->n_blk : 1;
        for (uint32_t bi = 0; bi < nb; bi++) {
            uint32_t bn;
            if (t->pl) {
                bn = decode_block(t->pl, bi, docs, tfs);
            } else {
                docs[0] = t->one_doc;
                tfs[0] = t->one_tf;
                bn = 1;
            }
            for (uint32_t j = 0; j < bn; j++) {
                uint32_t gap = (uint32_t)((int64_t)docs[j] - pd - 1);
                out->len += enc_posting(out->ptr + out->len, gap, tfs[j]);
                pd = docs[j];
            }
        }
        pt = t;
    }
    size_t body_len = out->len - start - BM25_HEADER_LEN;
    if (body_len > UINT32_MAX) {
        rc = err_set_msg(DM_ETOOBIG, "bm25: checkpoint body over 4 GiB");
        goto fail;
    }
    if ((rc = buf_put_u32(out, (uint32_t)body_len)))
        goto fail;
    uint32_t crc = crc_mask(crc32c(out->ptr + start, out->len - start));
    if ((rc = buf_put_u32(out, crc)) || (rc = buf_put_u64(out, BM25_MAGIC)))
        goto fail;
    dm_free(order);
    return DM_OK;
fail:
    dm_free(order);
    out->len = start;
    return rc;
}

/* A decoding cursor that knows the checkpoint offset of every field. */
typedef struct rd {
    const uint8_t *base, *p, *end;
} rd;

static int corrupt(const rd *r, const uint8_t *at, const char *why)
{
    return err_set_msg(DM_ECORRUPT, "bm25 checkpoint: offset %zu: %s",
                       (size_t)(at - r->base), why);
}

static int rd_varint(rd *r, uint64_t *v, const char *what)
{
    const uint8_t *q = dec_varint(r->p, r->end, v);
    if (!q)
        return err_set_msg(DM_ECORRUPT, "bm25 checkpoint: offset %zu: bad or "
                           "truncated varint (%s)", (size_t)(r->p - r->base),
                           what);
    r->p = q;
    return DM_OK;
}

int bm25_deserialize(const bm25_params *p, buf_slice in, bm25 **out)
{
    bm25 *ix = NULL;
    uint32_t *sum = NULL;
    char *prev_term = NULL;
    int rc;
    *out = NULL;
    rd r = { in.ptr, in.ptr, in.ptr + in.len };

    /* The envelope: sizes, both magics, body_len, checksum, version. */
    if (in.len < BM25_HEADER_LEN + BM25_TRAILER_LEN)
        return err_set_msg(DM_ECORRUPT, "bm25 checkpoint: offset 0: %zu "
                           "bytes is shorter than the %d-byte envelope",
                           in.len, BM25_HEADER_LEN + BM25_TRAILER_LEN);
    if (dec_u64(in.ptr + BM25_OFF_MAGIC) != BM25_MAGIC)
        return corrupt(&r, in.ptr, "bad magic");
    const uint8_t *tr = in.ptr + in.len;
    if (dec_u64(tr - BM25_TRAILER_OFF_MAGIC) != BM25_MAGIC)
        return corrupt(&r, tr - BM25_TRAILER_OFF_MAGIC, "bad trailer magic");
    if (dec_u32(tr - BM25_TRAILER_OFF_BODY_LEN) !=
        in.len - BM25_HEADER_LEN - BM25_TRAILER_LEN)
        return corrupt(&r, tr - BM25_TRAILER_OFF_BODY_LEN,
                       "body_len does not match the size");
    uint32_t crc = crc_mask(crc32c(in.ptr, in.len - BM25_TRAILER_OFF_CRC));
    if (dec_u32(tr - BM25_TRAILER_OFF_CRC) != crc)
        return corrupt(&r, tr - BM25_TRAILER_OFF_CRC, "checksum mismatch");
    uint32_t version = dec_u32(in.ptr + BM25_OFF_VERSION);
    if (version != BM25_VERSION)
        return err_set_msg(DM_EVERSION, "bm25 checkpoint: offset %d: version "
                           "%u, this build reads %u", BM25_OFF_VERSION,
                           version, BM25_VERSION);
    if (dec_u32(in.ptr + BM25_OFF_RESERVED) != 0)
        return corrupt(&r, in.ptr + BM25_OFF_RESERVED, "reserved is not 0");
    r.p = in.ptr + BM25_HEADER_LEN;
    r.end = tr - BM25_TRAILER_LEN;

    if ((rc = bm25_new(p, &ix)))
        return rc;
    uint64_t n_docs = 0, total_len = 0, v = 0;
    const uint8_t *at = r.p;
    if ((rc = rd_varint(&r, &n_docs, "n_docs")))
        goto fail;
    if (n_docs > (uint64_t)(r.end - r.p) / BM25_MIN_DOC_LEN) {
        rc = corrupt(&r, at, "n_docs exceeds the bytes left");
        goto fail;
    }
    const uint8_t *total_at = r.p;
    if ((rc = rd_varint(&r, &total_len, "total_len")))
        goto fail;

    /* Documents: increasing numbers and their lengths. */
    int64_t prev = -1;
    uint64_t total = 0;
    for (uint64_t i = 0; i < n_docs; i++) {
        at = r.p;
        if ((rc = rd_varint(&r, &v, "doc gap")))
            goto fail;
        if (v >= (uint64_t)BM25_DOC_LIMIT - (uint64_t)(prev + 1)) {
            rc = corrupt(&r, at, "document number out of range");
            goto fail;
        }
        uint32_t doc = (uint32_t)(prev + 1 + (int64_t)v);
        at = r.p;
        if ((rc = rd_varint(&r, &v, "doc length")))
            goto fail;
        if (v >= DL_ABSENT) {
            rc = corrupt(&r, at, "document length out of range");
            goto fail;
        }
        if ((rc = dl_reserve(ix, doc)))
            goto fail;
        ix->dl[doc] = (uint32_t)v;
        if (v > ix->max_dl)
            ix->max_dl = (uint32_t)v;
        total += v;
        prev = doc;
    }
    ix->n_docs = (uint32_t)n_docs;
    if (total != total_len) {
        rc = corrupt(&r, total_at, "total_len is not the sum of the lengths");
        goto fail;
    }
    ix->total_len = total;
    if (ix->dl_cap) {
        sum = dm_calloc(ix->dl_cap, sizeof *sum);
        if (!sum) {
            rc = DM_ENOMEM;
            goto fail;
        }
    }
    prev_term = dm_malloc(BM25_MAX_TERM_LEN + 1);
    if (!prev_term) {
        rc = DM_ENOMEM;
        goto fail;
    }

    /* Terms in strict byte order, each with its postings. */
    uint64_t n_terms = 0;
    at = r.p;
    if ((rc = rd_varint(&r, &n_terms, "n_terms")))
        goto fail;
    if (n_terms > (uint64_t)(r.end - r.p) / BM25_MIN_TERM_LEN) {
        rc = corrupt(&r, at, "n_terms exceeds the bytes left");
        goto fail;
    }
    size_t prev_len = 0;
    uint32_t docs[BLOCK_MAX], tfs[BLOCK_MAX];
    for (uint64_t ti = 0; ti < n_terms; ti++) {
        const uint8_t *term_at = r.p;
        uint64_t shared = 0, suf = 0;
        if ((rc = rd_varint(&r, &shared, "shared prefix")))
            goto fail;
        if (shared > prev_len) {
            rc = corrupt(&r, term_at, "shared prefix longer than the "
                         "previous term");
            goto fail;
        }
        at = r.p;
        if ((rc = rd_varint(&r, &suf, "suffix length")))
            goto fail;
        if (suf > (uint64_t)(r.end - r.p)) {
            rc = corrupt(&r, at, "suffix runs past the body");
            goto fail;
        }
        if (shared + suf == 0 || shared + suf > BM25_MAX_TERM_LEN) {
            rc = corrupt(&r, at, "term length out of range");
            goto fail;
        }
        size_t tl = (size_t)(shared + suf);
        /* Strictly after the previous term. */
        int c = suf ? memcmp(r.p, prev_term + shared,
                             suf < prev_len - shared ? suf : prev_len - shared)
                    : 0;
        if (ti > 0 && (c < 0 || (c == 0 && tl <= prev_len))) {
            rc = corrupt(&r, term_at, "terms out of order or repeated");
            goto fail;
        }
        memcpy(prev_term + shared, r.p, suf);
        prev_len = tl;
        r.p += suf;
        size_t bad;
        if (!tok_utf8_valid(prev_term, tl, &bad) || memchr(prev_term, 0, tl)) {
            rc = corrupt(&r, term_at, "term is not valid UTF-8");
            goto fail;
        }
        uint32_t id;
        if ((rc = intern(ix, prev_term, tl, &id)))
            goto fail;
        uint64_t df = 0;
        at = r.p;
        if ((rc = rd_varint(&r, &df, "df")))
            goto fail;
        if (df == 0 || df > n_docs || df > (uint64_t)(r.end - r.p)) {
            rc = corrupt(&r, at, "df out of range");
            goto fail;
        }
        term *t = &ix->terms[id];
        if (df > 1) {
            uint64_t nb = (df + BLOCK_MAX - 1) / BLOCK_MAX;
            uint64_t need = df * 2 + 16; /* typical; grows if needed */
            if ((rc = pl_reserve(ix, &t->pl, (uint32_t)nb,
                                 (uint32_t)(need > UINT32_MAX / 2 ? UINT32_MAX / 2 : need))))
                goto fail;
        }
        int64_t pd = -1;
        uint32_t nbuf = 0;
        for (uint64_t j = 0; j < df; j++) {
            at = r.p;
            uint64_t code = 0, tf = 1;
            if ((rc = rd_varint(&r, &code, "posting")))
                goto fail;
            if (code & 1) {
                if ((rc = rd_varint(&r, &tf, "tf")))
                    goto fail;
                if (tf > UINT32_MAX - 2) {
                    rc = corrupt(&r, at, "tf out of range");
                    goto fail;
                }
                tf += 2;
            }
            uint64_t gap = code >> 1;
            if (gap >= (uint64_t)ix->dl_cap - (uint64_t)(pd + 1) ||
                ix->dl[pd + 1 + (int64_t)gap] == DL_ABSENT) {
                rc = corrupt(&r, at, "posting names a document not in the "
                             "checkpoint");
                goto fail;
            }
            uint32_t doc = (uint32_t)(pd + 1 + (int64_t)gap);
            if (tf > ix->dl[doc] - sum[doc]) {
                rc = corrupt(&r, at, "term counts exceed the document length");
                goto fail;
            }
            sum[doc] += (uint32_t)tf;
            pd = doc;
            if (df == 1) {
                t->one_doc = doc;
                t->one_tf = (uint32_t)tf;
                t->df = 1;
                t->max_tf = (uint32_t)tf;
                t->min_dl = ix->dl[doc];
                ix->n_live_terms++;
                continue;
            }
            docs[nbuf] = doc;
            tfs[nbuf++] = (uint32_t)tf;
            if (nbuf == BLOCK_MAX || j + 1 == df) {
                /* Append one whole block. */
                plist *pl = t->pl;
                if ((rc = pl_reserve(ix, &t->pl, pl->n_blk + 1,
                                     pl->data_len + nbuf * POSTING_MAX_BYTES)))
                    goto fail;
                pl = t->pl;
                blk *b = &pl->blks[pl->n_blk];
                size_t bl = enc_block(docs, tfs, nbuf, pl_data(pl) + pl->data_len, b);
                b->off = pl->data_len;
                pl->data_len += (uint32_t)bl;
                pl->n_blk++;
                for (uint32_t q = 0; q < nbuf; q++) {
                    if (tfs[q] > t->max_tf)
                        t->max_tf = tfs[q];
                    if (ix->dl[docs[q]] < t->min_dl)
                        t->min_dl = ix->dl[docs[q]];
                }
                if (t->df == 0)
                    ix->n_live_terms++;
                t->df += nbuf;
                nbuf = 0;
            }
        }
        if (t->pl)
            pl_shrink(ix, &t->pl);
    }
    if (r.p != r.end) {
        rc = corrupt(&r, r.p, "bytes left after the last term");
        goto fail;
    }
    for (uint32_t d = 0; d < ix->dl_cap; d++) {
        if (ix->dl[d] != DL_ABSENT && sum[d] != ix->dl[d]) {
            rc = err_set_msg(DM_ECORRUPT, "bm25 checkpoint: offset %d: "
                             "document %u: term counts add up to %u, its "
                             "length is %u", BM25_HEADER_LEN, d, sum[d],
                             ix->dl[d]);
            goto fail;
        }
    }
    dm_free(sum);
    dm_free(prev_term);
    *out = ix;
    return DM_OK;
fail:
    dm_free(sum);
    dm_free(prev_term);
    bm25_free(ix);
    return rc;
}

/* ----------------------------------------------------------------- check */

static int bad(const char *what, uint32_t a, uint32_t b)
{
    return err_set_msg(DM_ECORRUPT, "bm25_check: %s (%u, %u)", what, a, b);
}

int bm25_check(const bm25 *ix)
{
    uint32_t *sum = NULL, n_live = 0, n_docs = 0;
    uint64_t total = 0;
    int rc = DM_OK;
    if (ix->dl_cap && !(sum = dm_calloc(ix->dl_cap, sizeof *sum)))
        return DM_ENOMEM;
    for (uint32_t d = 0; d < ix->dl_cap; d++) {
        if (ix->dl[d] != DL_ABSENT) {
            n_docs++;
            total += ix->dl[d];
            if (ix->dl[d] > ix->max_dl) {
                rc = bad("document longer than max_dl", d, ix->dl[d]);
                goto done;
            }
        }
    }
    if (n_docs != ix->n_docs || total != ix->total_len) {
        rc = bad("document count or total length", n_docs, ix->n_docs);
        goto done;
    }
    uint32_t docs[BLOCK_MAX], tfs[BLOCK_MAX];
    for (uint32_t id = 0; id < ix->n_terms && !rc; id++) {
        const term *t = &ix->terms[id];
        const char *s = term_str(ix, t);
        if (lookup(ix, s, t->len, hash_term(s, t->len)) != id ||
            t->hash != hash_term(s, t->len) || t->len == 0) {
            rc = bad("term not found in the table", id, t->len);
            break;
        }
        if (t->df)
            n_live++;
        if (t->df == 0) {
            if (t->pl)
                rc = bad("df-0 term holds a list", id, 0);
            continue;
        }
        uint32_t nb = t->pl ? t->pl->n_blk : 1, count = 0, off = 0;
        int64_t prev = -1;
        for (uint32_t bi = 0; bi < nb && !rc; bi++) {
            uint32_t n;
            if (t->pl) {
                const blk *b = &t->pl->blks[bi];
                if (b->n == 0 || b->n > BLOCK_MAX || b->off != off) {
                    rc = bad("block shape", id, bi);
                    break;
                }
                n = decode_block(t->pl, bi, docs, tfs);
                off += blk_len(t->pl, bi);
                uint32_t mx = 0;
                for (uint32_t j = 0; j < n; j++)
                    mx = tfs[j] > mx ? tfs[j] : mx;
                if (b->first_doc != docs[0] || b->last_doc != docs[n - 1] ||
                    b->max_tf != (mx > UINT16_MAX ? UINT16_MAX : mx)) {
                    rc = bad("block descriptor", id, bi);
                    break;
                }
            } else {
                docs[0] = t->one_doc;
                tfs[0] = t->one_tf;
                n = 1;
            }
            for (uint32_t j = 0; j < n; j++) {
                uint32_t d = docs[j];
                if ((int64_t)d <= prev || !doc_present(ix, d) || tfs[j] == 0 ||
                    tfs[j] > t->max_tf || ix->dl[d] < t->min_dl) {
                    rc = bad("posting", id, d);
                    break;
                }
                sum[d] += tfs[j];
                prev = d;
            }
            count += n;
        }
        if (!rc && t->pl && off != t->pl->data_len)
            rc = bad("list length", id, off);
        if (!rc && count != t->df)
            rc = bad("df", id, count);
    }
    if (!rc && n_live != ix->n_live_terms)
        rc = bad("live term count", n_live, ix->n_live_terms);
    for (uint32_t d = 0; !rc && d < ix->dl_cap; d++)
        if (ix->dl[d] != DL_ABSENT && sum[d] != ix->dl[d])
            rc = bad("document length", d, sum[d]);
done:
    dm_free(sum);
    return rc;
}
