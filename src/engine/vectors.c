/*
 * vectors.c -- a user's vector leg: the HNSW index plus the pending tail.
 *
 * Below the flat threshold the index is an exact scan and an add is a copy.
 * Past it, linking a vector into the graph costs ~100 µs at 100k vectors,
 * so an add only appends the vector to the user's pending tail (a plain
 * float32 array, docs[].pend = slot + 1) and the indexer thread moves
 * pending vectors into the graph later (eng_vec_link, indexer.c).  Every
 * search scans the tail exactly and merges it with the graph's answer, so
 * a memory is searchable, exactly, from the moment its add returns.  The
 * tail is bounded (ENG_PENDING_MAX) by the writers themselves.
 *
 * A checkpoint holds the graph only: eng_user_checkpoint links the tail
 * first.  After a reload, replayed vectors go to the tail again.
 *
 * Locking: the user's rwlock; every function here that changes state
 * REQUIRES the write lock, the readers the read lock.
 */
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "engine/engine_int.h"
#include "index/distance.h"

void eng_vec_fini(eng_user *u)
{
    dm_free(u->pend_vecs);
    dm_free(u->pend_docs);
    u->pend_vecs = NULL;
    u->pend_docs = NULL;
    u->n_pend = u->pend_cap = 0;
}

int eng_vec_add(dm_db *db, eng_user *u, uint32_t doc, const float *vec)
{
    eng_doc *d = &u->docs[doc];
    if (d->pend || (d->flags & DOC_HAS_VEC))
        eng_vec_remove(u, doc); /* replace */
    if (!hnsw_has_graph(u->vec)) {
        int rc = hnsw_add(u->vec, doc, vec);
        if (!rc)
            d->flags |= DOC_HAS_VEC;
        return rc;
    }
    if (u->n_pend == u->pend_cap) {
        uint32_t ncap = u->pend_cap ? u->pend_cap * 2 : 64;
        float *nv = dm_realloc(u->pend_vecs, (size_t)ncap * db->dim * sizeof *nv);
        if (!nv)
            return err_set_msg(DM_ENOMEM, "out of memory for pending vectors");
        u->pend_vecs = nv;
        uint32_t *nd = dm_realloc(u->pend_docs, (size_t)ncap * sizeof *nd);
        if (!nd)
            return err_set_msg(DM_ENOMEM, "out of memory for pending vectors");
        u->pend_docs = nd;
        u->pend_cap = ncap;
    }
    uint32_t slot = u->n_pend++;
    memcpy(u->pend_vecs + (size_t)slot * db->dim, vec, db->dim * sizeof *vec);
    u->pend_docs[slot] = doc;
    d->pend = slot + 1;
    d->flags |= DOC_HAS_VEC;
    return DM_OK;
}

/* Move the last pending slot into slot s (swap-remove). */
static void pend_drop(eng_user *u, uint32_t dim, uint32_t s)
{
    uint32_t last = --u->n_pend;
    u->docs[u->pend_docs[s]].pend = 0;
    if (s != last) {
        memcpy(u->pend_vecs + (size_t)s * dim, u->pend_vecs + (size_t)last * dim,
               dim * sizeof(float));
        u->pend_docs[s] = u->pend_docs[last];
        u->docs[u->pend_docs[s]].pend = s + 1;
    }
}

void eng_vec_remove(eng_user *u, uint32_t doc)
{
    eng_doc *d = &u->docs[doc];
    if (d->pend) {
        pend_drop(u, hnsw_get_params(u->vec)->dim, d->pend - 1);
    } else if (d->flags & DOC_HAS_VEC) {
        hnsw_delete(u->vec, doc);
    }
    d->flags &= ~(uint32_t)DOC_HAS_VEC;
}

int eng_vec_link(dm_db *db, eng_user *u, uint32_t max)
{
    /* From the end of the tail: each link is then a swap-remove of the last
     * slot, and the order vectors join the graph in does not matter. */
    while (max-- && u->n_pend) {
        uint32_t s = u->n_pend - 1, doc = u->pend_docs[s];
        int rc = hnsw_add(u->vec, doc, u->pend_vecs + (size_t)s * db->dim);
        if (rc)
            return rc; /* still pending, still searched */
        u->n_pend--;
        u->docs[doc].pend = 0;
    }
    return DM_OK;
}

int eng_vec_search(const dm_db *db, const eng_user *u, const float *q, uint32_t k,
                   ix_filter_fn filter, void *arg, hnsw_hit *out, uint32_t *n_out)
{
    int rc = hnsw_search(u->vec, q, k, 0, filter, arg, out, n_out);
    if (rc || !u->n_pend)
        return rc;
    /* Merge the tail's exact similarities into the best-first list. */
    uint32_t n = *n_out;
    for (uint32_t s = 0; s < u->n_pend; s++) {
        uint32_t doc = u->pend_docs[s];
        if (filter && !filter(arg, doc))
            continue;
        float sim = dist_dot(q, u->pend_vecs + (size_t)s * db->dim, db->dim);
        if (n == k && !(sim > out[n - 1].sim))
            continue;
        uint32_t i = n < k ? n++ : n - 1;
        while (i > 0 && out[i - 1].sim < sim) {
            out[i] = out[i - 1];
            i--;
        }
        out[i] = (hnsw_hit){ .label = doc, .sim = sim };
    }
    *n_out = n;
    return DM_OK;
}

bool eng_vec_sim(const dm_db *db, const eng_user *u, const float *q, uint32_t doc,
                 float *sim)
{
    const eng_doc *d = &u->docs[doc];
    if (!(d->flags & DOC_HAS_VEC))
        return false;
    if (d->pend) {
        *sim = dist_dot(q, u->pend_vecs + (size_t)(d->pend - 1) * db->dim, db->dim);
        return true;
    }
    return hnsw_similarity(u->vec, q, doc, sim) == DM_OK;
}

bool eng_vec_get(const dm_db *db, const eng_user *u, uint32_t doc, float *out)
{
    const eng_doc *d = &u->docs[doc];
    if (!(d->flags & DOC_HAS_VEC))
        return false;
    if (d->pend) {
        memcpy(out, u->pend_vecs + (size_t)(d->pend - 1) * db->dim, sizeof *out * db->dim);
        return true;
    }
    return hnsw_get_vector(u->vec, doc, out) == DM_OK;
}

size_t eng_vec_memsize(const dm_db *db, const eng_user *u)
{
    return (u->vec ? hnsw_memsize(u->vec) : 0) +
           (size_t)u->pend_cap * (db->dim * sizeof(float) + sizeof(uint32_t));
}
