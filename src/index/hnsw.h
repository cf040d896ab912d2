/*
 * hnsw.h -- per-user vector index: exact scan when small, HNSW when large.
 *
 * Vectors are L2-normalized by the caller (or all zero); similarity is the
 * inner product and the distance 1 - dot.  Each vector carries a label (the
 * engine's per-user document number).  Below params.flat_threshold live
 * vectors the index answers by exact scan and keeps no graph; when the count
 * reaches the threshold the graph is built from the stored vectors and
 * maintained from then on (Malkov & Yashunin's HNSW: layered graph,
 * heuristic neighbour selection, M / ef_construction / ef_search).
 * Deletion marks the label deleted: it is never returned, but keeps routing
 * until the index is rebuilt.  Adding a label that exists replaces its
 * vector (the old node is marked deleted, a new node inserted).
 *
 * Memory: vectors are stored once, as float32 or, with params.elem
 * HNSW_ELEM_F16, as IEEE half precision (rounded to nearest even by
 * hnsw_add; queries stay float32, similarities are computed against the
 * stored half-precision values).
 * Thread safety: any number of concurrent hnsw_search calls are safe;
 * hnsw_add / hnsw_delete / hnsw_serialize need exclusive access (the engine
 * holds the user's write lock).
 * File format: "HNSW index checkpoint" in docs/format.md, written by
 * hnsw_serialize and validated by hnsw_deserialize.
 */
#ifndef DM_INDEX_HNSW_H
#define DM_INDEX_HNSW_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "index/ix_filter.h"

typedef struct hnsw hnsw;

/* The stored element type of the vectors. */
typedef enum hnsw_elem {
    HNSW_ELEM_F32 = 0, /* float32: 4 bytes a component (the default) */
    HNSW_ELEM_F16 = 1, /* IEEE-754 binary16: 2 bytes a component; relative
                        * error at most 2^-11 in the normal range, absolute
                        * at most 2^-25 below 2^-14 (subnormals); from 65520
                        * up a magnitude becomes infinity */
} hnsw_elem;

typedef struct hnsw_params {
    uint32_t dim;             /* vector dimension (1..4096) */
    uint32_t M;               /* links per node above layer 0 (layer 0: 2M); default 16 */
    uint32_t ef_construction; /* default 200 */
    uint32_t ef_search;       /* default 64; a search uses max(ef, k) */
    uint32_t flat_threshold;  /* exact scan below this many live vectors */
    uint64_t seed;            /* level generator seed (determinism) */
    hnsw_elem elem;           /* stored element type; default HNSW_ELEM_F32 */
} hnsw_params;

/* Defaults for dim: M 16, ef_construction 200, ef_search 64,
 * flat_threshold as measured (see docs/benchmarks.md), seed 42, elem
 * HNSW_ELEM_F32. */
hnsw_params hnsw_params_default(uint32_t dim);

typedef struct hnsw_hit {
    uint32_t label;
    float sim;  /* inner product, higher is closer */
} hnsw_hit;

/* Errors: DM_EINVAL (bad params, message says which; elem not an
 * hnsw_elem), DM_ENOMEM. */
int hnsw_new(const hnsw_params *p, hnsw **out);
void hnsw_free(hnsw *h); /* NULL does nothing */

/*
 * hnsw_add -- insert (or replace) label's vector (dim floats, copied; with
 * HNSW_ELEM_F16 converted to half precision, round to nearest even).
 * Errors: DM_EINVAL (label UINT32_MAX is reserved), DM_ENOMEM (index
 * unchanged).
 */
int hnsw_add(hnsw *h, uint32_t label, const float *vec);

/*
 * hnsw_reserve -- room for n nodes (live plus deleted), so that the next
 * adds up to that count allocate nothing more for vectors, labels and
 * (when n reaches the flat threshold) links; for rebuilds of a known size.
 * Without it capacity grows by a quarter at a time.  Errors: DM_ENOMEM
 * (index unchanged).
 */
int hnsw_reserve(hnsw *h, uint32_t n);

/* hnsw_delete -- mark label deleted.  DM_ENOTFOUND if absent. */
int hnsw_delete(hnsw *h, uint32_t label);

/*
 * hnsw_search -- the k nearest live labels to q, best first, that pass
 * filter (NULL = all).  ef 0 = params.ef_search.  out has room for k hits;
 * *n_out receives how many were written.  With a filter that rejects most
 * labels the graph search widens its beam; below the threshold the scan is
 * exact.  Errors: DM_ENOMEM only.
 */
int hnsw_search(const hnsw *h, const float *q, uint32_t k, uint32_t ef,
                ix_filter_fn filter, void *arg, hnsw_hit *out, uint32_t *n_out);

/* Exact top-k by full scan (the ground truth for recall tests). */
int hnsw_search_exact(const hnsw *h, const float *q, uint32_t k,
                      ix_filter_fn filter, void *arg, hnsw_hit *out,
                      uint32_t *n_out);

/* The stored vector of a live label, or NULL.  Borrowed until the next
 * hnsw_add / hnsw_delete / hnsw_free.  Always NULL for an HNSW_ELEM_F16
 * index, which stores no float32 copy: use hnsw_get_vector or
 * hnsw_similarity, which work for every element type. */
const float *hnsw_vector(const hnsw *h, uint32_t label);

/*
 * hnsw_get_vector -- copy label's stored vector into out (dim floats),
 * widened to float32 for HNSW_ELEM_F16 (exact: the half-precision value).
 * Errors: DM_ENOTFOUND when label is not live (out is zeroed).  Reads
 * only: safe concurrently with searches.
 */
int hnsw_get_vector(const hnsw *h, uint32_t label, float *out);

/*
 * hnsw_similarity -- *sim = the inner product of q (dim floats) with
 * label's stored vector, as an exact scan computes it (hnsw_search's sim
 * for the same label agrees to float rounding).  Errors: DM_ENOTFOUND when
 * label is not live (*sim = 0).  Reads only.
 */
int hnsw_similarity(const hnsw *h, const float *q, uint32_t label, float *sim);

uint32_t hnsw_count(const hnsw *h);      /* live labels */
uint32_t hnsw_deleted(const hnsw *h);    /* nodes marked deleted */
int hnsw_has_graph(const hnsw *h);       /* 1 once past the threshold */
size_t hnsw_memsize(const hnsw *h);      /* bytes allocated by the index */
const hnsw_params *hnsw_get_params(const hnsw *h);

/*
 * hnsw_serialize -- append the index (element type, vectors as stored,
 * labels, deleted marks, graph) to out in the checkpoint format, version
 * 2.  Errors: DM_ENOMEM.
 */
int hnsw_serialize(const hnsw *h, buf *out);

/*
 * hnsw_deserialize -- rebuild an index from a checkpoint (version 1, which is
 * float32, or 2).  p gives the search-time parameters (ef_search,
 * flat_threshold); dim, M, ef_construction, the element type and the graph
 * come from the bytes (p->elem is ignored).  Every field is validated (a
 * damaged checkpoint is DM_ECORRUPT with the offset in the message, never a
 * crash); DM_EVERSION for an unknown version; DM_ENOMEM.
 */
int hnsw_deserialize(const hnsw_params *p, buf_slice in, hnsw **out);

/* hnsw_check -- verify internal invariants (links in range, no self links,
 * levels consistent); DM_OK or DM_ECORRUPT with a message.  Tests only. */
int hnsw_check(const hnsw *h);

#endif
