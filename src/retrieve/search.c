/*
 * search.c -- the retrieval pipeline behind dm_search.
 *
 * Stages (include/deltamemory.h, docs/retrieval.md):
 *   1. understand the query: embed it; find its time expression (timex.c);
 *      compile the metadata filter (filter.c);
 *   2. candidates: the vector leg (HNSW or exact, with the pending tail),
 *      the BM25 leg, the temporal leg (memories inside the query's time
 *      window, or whose reported events are, ranked by their BM25 and
 *      similarity; or, for "recently", the
 *      other legs' candidates newest first), the graph leg (the memories
 *      behind the user's facts that a walk from the query's entities and
 *      the user reaches, where the query asks about them), each `depth`
 *      deep;
 *   3. Reciprocal Rank Fusion over the legs (fuse.c);
 *   4. the cognitive score: relevance (fused over best fused), recency
 *      relative to the reference time, current salience;
 *   5. context neighbours: the memories up to NB_SPAN places before and
 *      after the best k in their sessions join the candidates with a
 *      share of their score;
 *   6. MMR over the embeddings of the best candidates.
 *
 * Filters inside the legs: every leg asks admit() for each document it
 * would return.  State and the explicit time range are read from the
 * in-memory doc table; scopes (agent, session) and the metadata filter
 * need the memory's record, which admit() reads once per document and
 * remembers for the rest of the request (memo[]).
 *
 * Salience needs the record too.  Records are read for the candidates in
 * order of their score without salience (relevance and recency); reading
 * stops once the next candidate could not enter the MMR pool even with
 * the highest salience (its partial score plus w_salience is below the
 * pool's lowest full score), so the cut is exact.
 *
 * Locking: the user's read lock for stages 2-5 (indexes and doc table);
 * records are read from the storage engine's own snapshots.
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/err.h"
#include "engine/engine_int.h"
#include "engine/record.h"
#include "index/distance.h"
#include "retrieve/filter.h"
#include "retrieve/fuse.h"
#include "retrieve/timex.h"

/* Defaults, each measured on conversations (docs/retrieval.md). */
#define DEF_DEPTH 50
/* RRF's k.  60 (the value of the original paper, for web runs of similar
 * strength) flattens the head so much that agreement of a weak leg beats
 * BM25's first place; with legs of unequal strength a smaller k keeps each
 * leg's best on top.  LoCoMo frac@5: 55.7 at 60, 65.9 at 10. */
#define DEF_RRF_K 10.0f
/* Leg weights: BM25 1; the temporal leg 0.3 (it ranks inside a
 * window: a preference, not evidence); the vector leg 1 with an embedding
 * endpoint, 0.3 with the built-in word-vector model, a weak retriever on
 * its own (LoCoMo frac@5 alone: 33.6 against BM25's 57.6). */
#define DEF_LW_VEC_BUILTIN 0.3f
#define DEF_LW_TIME 0.3f
/* The graph leg 0.5: its evidence is as good as the extracted facts it
 * walks (precision about 0.9, and most of what a conversation says is not
 * a fact).  On LoCoMo turns stored with dm_remember, frac@5/@10/@25 were
 * 63.7/74.9/84.3 at weight 1, 66.0/75.4/84.6 at 0.5, 66.1/75.0/84.5 at
 * 0.3, against 66.4/75.1/84.3 with no facts at all. */
#define DEF_LW_GRAPH 0.5f
#define DEF_HALF_LIFE_DAYS 30.0f
#define DEF_LAMBDA 0.7f
#define DEF_W_SIM 0.8f
#define DEF_W_REC 0.1f
#define DEF_W_SAL 0.1f
/* The temporal leg scores every memory inside the window up to this many;
 * past it, the best of a BM25 and a vector search restricted to the window
 * (bench_retrieval: scoring 4,096 cost the 100k-memory user ~1.3 ms). */
#define TEMPORAL_EXACT_MAX 512

enum { LEG_VEC = 0, LEG_BM25 = 1, LEG_TIME = 2, LEG_GRAPH = 3 };

typedef struct cand {
    uint32_t doc;
    uint32_t rank[DM_N_LEGS];
    float leg_score[DM_N_LEGS];
    float sim, bm;          /* cosine and BM25 whether a leg found it or not */
    float fused, relevance, recency, salience, partial, score;
    float mmr_score, max_sim;
    uint32_t neighbour_of;  /* 1-based rank of the hit it neighbours */
    bool graph_answer;      /* the graph leg reached it by following the
                               question (graph_leg) */
    uint32_t graph_lead;    /* then the best other leg's hit behind the
                               path; UINT32_MAX = none */
    int64_t ts;
    uint8_t id[16];
    char *rec;              /* the record, once read (dm_malloc'd) */
    size_t rec_len;
    bool dropped;           /* deleted meanwhile, or filtered by its record */
    bool scored;            /* salience and score are set */
} cand;

typedef struct req {
    dm_db *db;
    eng_user *u;
    const dm_search_params *p;
    key_tu tu;
    unsigned flags, legs;
    uint32_t k, depth;
    float rrf_k, lw[DM_N_LEGS];
    float w_sim, w_rec, w_sal, half_life, lambda;
    int64_t now;
    int64_t from, to;        /* hard window: explicit parameters */
    int64_t tfrom, tto;      /* soft window: the temporal leg's */
    timex tx;
    mf_filter *filter;
    uint8_t *memo;           /* per doc: 0 unknown, 1 admitted, 2 not */
    uint32_t memo_n;
    bool needs_record;       /* scopes or filter */
    float *q;
    bool has_q;
    buf v;
    int err;                 /* first error inside admit() */
    cand *c;
    uint32_t nc, cap;
    uint32_t *slot;          /* doc -> cand index + 1, open addressing */
    uint32_t slot_mask;
    cand *extra;             /* context neighbours */
    uint32_t n_extra;
    kv_view *view;           /* every record read of the request */
} req;

/* ------------------------------------------------------------ records */

static int read_record(req *r, int64_t ts, const uint8_t id[16], buf *out)
{
    uint8_t key[KEY_MAX];
    size_t kl = key_memory(key, &r->tu, ts, id);
    return kv_view_get(r->view, buf_slice_of(key, kl), out);
}

typedef struct fields {
    const rec_memory *m;
    json_t *meta;   /* parsed metadata object */
    json_t *own;    /* the memory's own fields, built on demand */
    int64_t ts;
} fields;

static json_t *slice_str(buf_slice s)
{
    return s.ptr ? json_stringn((const char *)s.ptr, s.len) : NULL;
}

static const json_t *lookup(void *arg, const char *name)
{
    fields *f = arg;
    if (!f->own)
        f->own = json_object();
    if (!f->own)
        return NULL;
    json_t *v = json_object_get(f->own, name);
    if (v)
        return v;
    if (!strcmp(name, "agent_id"))
        v = slice_str(f->m->agent_id);
    else if (!strcmp(name, "session_id") || !strcmp(name, "run_id"))
        v = slice_str(f->m->session_id);
    else if (!strcmp(name, "role"))
        v = slice_str(f->m->role);
    else if (!strcmp(name, "created_at") || !strcmp(name, "timestamp") ||
             !strcmp(name, "event_time")) {
        char t[40];
        dm_time_format(f->ts, t);
        v = json_string(t);
    } else if (!strcmp(name, "kind")) {
        static const char *const kinds[] = { "episodic", "fact", "summary" };
        v = f->m->kind < 3 ? json_string(kinds[f->m->kind]) : NULL;
    } else {
        return f->meta ? json_object_get(f->meta, name) : NULL;
    }
    if (!v)
        return NULL;
    json_object_set_new(f->own, name, v);
    return json_object_get(f->own, name);
}

static bool slice_eq(buf_slice s, const char *want)
{
    return s.ptr && s.len == strlen(want) && !memcmp(s.ptr, want, s.len);
}

/* Whether the memory in record value v passes the scopes and the filter. */
static bool record_admits(req *r, buf_slice v, int64_t ts)
{
    rec_memory m;
    if (rec_memory_decode(v, &m) != DM_OK)
        return false;
    if (r->p->agent_id && !slice_eq(m.agent_id, r->p->agent_id))
        return false;
    if (r->p->session_id && !slice_eq(m.session_id, r->p->session_id))
        return false;
    if (!r->filter)
        return true;
    fields f = { &m, NULL, NULL, ts };
    f.meta = json_loadb((const char *)m.metadata.ptr, m.metadata.len, 0, NULL);
    bool ok = mf_match(r->filter, lookup, &f);
    json_decref(f.meta);
    json_decref(f.own);
    return ok;
}

/* The filter of every leg.  REQUIRES: the user's read lock. */
static bool admit(void *arg, uint32_t doc)
{
    req *r = arg;
    const eng_user *u = r->u;
    if (doc >= u->n_docs)
        return false;
    const eng_doc *d = &u->docs[doc];
    if (!(d->flags & DOC_LIVE))
        return false;
    if ((d->flags & DOC_ARCHIVED) && !(r->flags & DM_WITH_ARCHIVED))
        return false;
    if (r->from && d->ts < r->from)
        return false;
    if (r->to && d->ts >= r->to)
        return false;
    if (!r->needs_record)
        return true;
    if (doc < r->memo_n && r->memo[doc])
        return r->memo[doc] == 1;
    int rc = read_record(r, d->ts, d->id, &r->v);
    bool ok = rc == DM_OK && record_admits(r, buf_slice_of(r->v.ptr, r->v.len), d->ts);
    if (rc && rc != DM_ENOTFOUND && !r->err)
        r->err = rc;
    if (doc < r->memo_n)
        r->memo[doc] = ok ? 1 : 2;
    return ok;
}

/* --------------------------------------------------------- candidates */

/* The candidate for doc, or NULL when no leg has found it. */
static cand *cand_find(req *r, uint32_t doc)
{
    for (uint32_t i = (doc * 2654435761u) & r->slot_mask; r->slot[i]; i = (i + 1) & r->slot_mask)
        if (r->c[r->slot[i] - 1].doc == doc)
            return &r->c[r->slot[i] - 1];
    return NULL;
}

static cand *cand_of(req *r, uint32_t doc)
{
    uint32_t i = (doc * 2654435761u) & r->slot_mask;
    while (r->slot[i]) {
        cand *c = &r->c[r->slot[i] - 1];
        if (c->doc == doc)
            return c;
        i = (i + 1) & r->slot_mask;
    }
    if (r->nc == r->cap)
        return NULL;
    cand *c = &r->c[r->nc++];
    memset(c, 0, sizeof *c);
    c->doc = doc;
    c->sim = NAN;
    c->bm = NAN;
    r->slot[i] = r->nc;
    return c;
}

static cand *leg_hit(req *r, int leg, uint32_t doc, uint32_t rank, float score)
{
    cand *c = cand_of(r, doc);
    if (!c || c->rank[leg])
        return NULL;
    c->rank[leg] = rank;
    c->leg_score[leg] = score;
    if (leg == LEG_VEC)
        c->sim = score;
    else if (leg == LEG_BM25)
        c->bm = score;
    return c;
}

typedef struct scored {
    uint32_t doc;
    float s;
} scored;

static int cmp_scored(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    if (x->s != y->s)
        return x->s > y->s ? -1 : 1;
    return x->doc < y->doc ? -1 : x->doc > y->doc;
}

/*
 * The temporal leg.  REQUIRES: the user's read lock; runs after the other
 * legs.
 *   A window (from the query, or given): the memories inside it, ranked by
 *   their own relevance to the query -- BM25 over the window's best BM25,
 *   plus cosine similarity -- so that "what did I cook in May" puts May's
 *   cooking first, not just anything from May.  Past TEMPORAL_EXACT_MAX
 *   memories in the window, the union of a BM25 and a vector search
 *   restricted to it, scored the same way.
 *   "Recently": the candidates the other legs found, newest first -- a
 *   preference among relevant memories, not the newest whatever they say.
 */
static int temporal_leg(req *r, size_t qlen)
{
    const eng_user *u = r->u;
    bool recent = r->tx.kind == TIMEX_RECENT && !r->tfrom && !r->tto;
    if (!recent && !r->tfrom && !r->tto)
        return DM_OK;
    if (recent) {
        scored *s = dm_malloc(sizeof *s * (r->nc ? r->nc : 1));
        if (!s)
            return err_set_msg(DM_ENOMEM, "out of memory");
        uint32_t n = r->nc;
        for (uint32_t i = 0; i < n; i++)
            s[i] = (scored){ r->c[i].doc, (float)((double)u->docs[r->c[i].doc].ts / 1e6) };
        qsort(s, n, sizeof *s, cmp_scored);
        for (uint32_t i = 0, rank = 0; i < n && i < r->depth; i++) {
            if (!i || s[i].s != s[i - 1].s)
                rank = i + 1;
            leg_hit(r, LEG_TIME, s[i].doc, rank, 1.0f);
        }
        dm_free(s);
        return DM_OK;
    }
    uint32_t cap = u->n_docs < TEMPORAL_EXACT_MAX ? u->n_docs : TEMPORAL_EXACT_MAX;
    uint32_t room = cap > 2 * r->depth ? cap : 2 * r->depth; /* the overflow union */
    scored *s = dm_malloc(sizeof *s * (room ? room : 1));
    uint32_t *docs = dm_malloc(sizeof *docs * (room ? room : 1));
    float *bms = dm_malloc(sizeof *bms * (room ? room : 1));
    int rc = DM_OK;
    if (!s || !docs || !bms) {
        rc = err_set_msg(DM_ENOMEM, "out of memory");
        goto out;
    }
    uint32_t n = 0;
    bool overflow = false;
    for (uint32_t d = 0; d < u->n_docs; d++) {
        const eng_doc *e = &u->docs[d];
        if (!(e->flags & DOC_LIVE) || (r->tfrom && e->ts < r->tfrom) ||
            (r->tto && e->ts >= r->tto))
            continue;
        if (n == cap) {
            overflow = true;
            break;
        }
        docs[n++] = d;
    }
    /* Turns whose events happened in the window, though said outside it
     * ("I went hiking last Saturday", said on Monday). */
    uint32_t n_said = n;
    for (uint32_t i = 0; !overflow && i < u->n_spans; i++) {
        const eng_span *sp = &u->spans[i];
        const eng_doc *e = &u->docs[sp->doc];
        if ((r->tto && sp->from_us >= r->tto) || (r->tfrom && sp->to_us <= r->tfrom) ||
            !(e->flags & DOC_LIVE) ||
            ((!r->tfrom || e->ts >= r->tfrom) && (!r->tto || e->ts < r->tto)))
            continue; /* outside the window, gone, or already in by its own time */
        bool dup = false;
        for (uint32_t j = n_said; j < n && !dup; j++)
            dup = docs[j] == sp->doc;
        if (dup)
            continue;
        if (n == cap) {
            overflow = true;
            break;
        }
        docs[n++] = sp->doc;
    }
    if (overflow) {
        /* Too many to score one by one: the window's own best by BM25 and
         * by the vector index, each a search restricted to the window;
         * their union is scored below like a small window. */
        uint32_t d = r->depth;
        hnsw_hit *h = dm_malloc(sizeof *h * (d ? d : 1));
        bm25_hit *bh = dm_malloc(sizeof *bh * (d ? d : 1));
        uint32_t nh = 0, nb = 0;
        int64_t f0 = r->from, t0 = r->to;
        if (!r->from || r->tfrom > r->from)
            r->from = r->tfrom;
        if (!r->to || (r->tto && r->tto < r->to))
            r->to = r->tto;
        rc = h && bh ? DM_OK : err_set_msg(DM_ENOMEM, "out of memory");
        if (!rc && r->has_q && u->vec)
            rc = eng_vec_search(r->db, u, r->q, d, admit, r, h, &nh);
        if (!rc && u->text)
            rc = bm25_search(u->text, r->p->query, qlen, d, admit, r, bh, &nb);
        r->from = f0;
        r->to = t0;
        n = 0;
        for (uint32_t i = 0; !rc && i < nb; i++)
            docs[n++] = bh[i].doc;
        for (uint32_t i = 0; !rc && i < nh; i++) {
            uint32_t j = 0;
            while (j < nb && docs[j] != h[i].label)
                j++;
            if (j == nb)
                docs[n++] = h[i].label;
        }
        dm_free(h);
        dm_free(bh);
        for (uint32_t i = 0; !rc && i < u->n_spans && n < room; i++) {
            const eng_span *sp = &u->spans[i];
            if ((r->tto && sp->from_us >= r->tto) || (r->tfrom && sp->to_us <= r->tfrom) ||
                !(u->docs[sp->doc].flags & DOC_LIVE))
                continue;
            bool dup = false;
            for (uint32_t j = 0; j < n && !dup; j++)
                dup = docs[j] == sp->doc;
            if (!dup)
                docs[n++] = sp->doc;
        }
        if (rc)
            goto out;
    }
    float best_bm = 0;
    if (n && u->text && (rc = bm25_score_many(u->text, r->p->query, qlen, docs, n, bms)))
        goto out;
    for (uint32_t i = 0; i < n; i++) {
        if (!u->text)
            bms[i] = 0;
        if (bms[i] > best_bm)
            best_bm = bms[i];
    }
    for (uint32_t i = 0; i < n; i++) {
        float sim = 0;
        if (!r->has_q || !eng_vec_sim(r->db, u, r->q, docs[i], &sim) || sim < 0)
            sim = 0;
        s[i] = (scored){ docs[i], (best_bm > 0 ? bms[i] / best_bm : 0) + sim };
    }
    qsort(s, n, sizeof *s, cmp_scored);
    uint32_t taken = 0, rank = 0;
    for (uint32_t i = 0; i < n && taken < r->depth; i++) {
        if (!admit(r, s[i].doc))
            continue;
        taken++;
        if (taken == 1 || s[i].s != s[i - 1].s)
            rank = taken;
        leg_hit(r, LEG_TIME, s[i].doc, rank, s[i].s);
    }
    rc = r->err;
out:
    dm_free(s);
    dm_free(docs);
    dm_free(bms);
    return rc;
}

/* -------------------------------------------------------------- MMR */

typedef struct mmr_ctx {
    float *vecs;   /* pool size x dim, unit length (zero rows stay zero) */
    uint32_t dim;
} mmr_ctx;

static float mmr_sim(void *arg, uint32_t i, uint32_t j)
{
    const mmr_ctx *m = arg;
    return dist_dot(m->vecs + (size_t)i * m->dim, m->vecs + (size_t)j * m->dim, m->dim);
}

static void unit(float *v, uint32_t dim)
{
    double n = 0;
    for (uint32_t d = 0; d < dim; d++)
        n += (double)v[d] * v[d];
    if (n <= 0)
        return;
    float inv = (float)(1.0 / sqrt(n));
    for (uint32_t d = 0; d < dim; d++)
        v[d] *= inv;
}

/* Ties go to the newer memory, then by id: an order that, unlike document
 * numbers, survives a reload. */
static int cmp_identity(const cand *x, const cand *y)
{
    if (x->ts != y->ts)
        return x->ts > y->ts ? -1 : 1;
    return memcmp(x->id, y->id, 16);
}

static int cmp_partial(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->partial != y->partial)
        return x->partial > y->partial ? -1 : 1;
    return cmp_identity(x, y);
}

static int cmp_score(const void *a, const void *b)
{
    const cand *x = *(cand *const *)a, *y = *(cand *const *)b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return cmp_identity(x, y);
}

/* -------------------------------------------------------- parameters */

static int check_params(dm_db *db, const dm_search_params *p, req *r)
{
    int rc;
    size_t qlen = p->query ? strlen(p->query) : 0;
    if ((rc = eng_validate_text(db, "query", p->query, qlen)))
        return rc;
    if (p->k > 1000)
        return err_set_msg(DM_EINVAL, "search: k %u is over 1000", p->k);
    if (p->depth > 1000)
        return err_set_msg(DM_EINVAL, "search: depth %u is over 1000", p->depth);
    if (p->from_us && p->to_us && p->from_us > p->to_us)
        return err_set_msg(DM_EINVAL, "search: from is after to");
    if (p->legs & ~(unsigned)(DM_LEG_VECTOR | DM_LEG_BM25 | DM_LEG_TEMPORAL | DM_LEG_GRAPH))
        return err_set_msg(DM_EINVAL, "search: unknown leg bits 0x%x", p->legs);
    if (p->weights.similarity < 0 || p->weights.recency < 0 || p->weights.salience < 0 ||
        !isfinite(p->weights.similarity) || !isfinite(p->weights.recency) ||
        !isfinite(p->weights.salience))
        return err_set_msg(DM_EINVAL, "search: weights must be finite and >= 0");
    if (p->rrf_k < 0 || !isfinite(p->rrf_k))
        return err_set_msg(DM_EINVAL, "search: rrf_k must be finite and >= 0");
    if (p->half_life_days < 0 || !isfinite(p->half_life_days))
        return err_set_msg(DM_EINVAL, "search: half_life_days must be finite and >= 0");
    if (p->mmr_lambda < 0 || p->mmr_lambda > 1 || !isfinite(p->mmr_lambda))
        return err_set_msg(DM_EINVAL, "search: mmr_lambda must be in [0, 1]");
    bool any_lw = false;
    for (int i = 0; i < DM_N_LEGS; i++) {
        if (p->leg_weight[i] < 0 || !isfinite(p->leg_weight[i]))
            return err_set_msg(DM_EINVAL, "search: leg_weight[%d] must be finite and >= 0", i);
        any_lw |= p->leg_weight[i] > 0;
    }
    size_t nl;
    if ((p->agent_id && (rc = eng_validate_name("agent_id", p->agent_id, false, &nl))) ||
        (p->session_id && (rc = eng_validate_name("session_id", p->session_id, false, &nl))))
        return rc;
    r->flags = p->flags;
    r->legs = p->legs ? p->legs : DM_LEG_VECTOR | DM_LEG_BM25 | DM_LEG_TEMPORAL | DM_LEG_GRAPH;
    r->k = p->k ? p->k : 10;
    r->depth = p->depth ? p->depth : DEF_DEPTH;
    r->rrf_k = p->rrf_k > 0 ? p->rrf_k : DEF_RRF_K;
    bool builtin = !strncmp(embedder_name(db->emb), "builtin:", 8);
    const float def_lw[DM_N_LEGS] = { builtin ? DEF_LW_VEC_BUILTIN : 1.0f, 1.0f, DEF_LW_TIME,
                                      DEF_LW_GRAPH };
    for (int i = 0; i < DM_N_LEGS; i++)
        r->lw[i] = any_lw ? p->leg_weight[i] : def_lw[i];
    bool any_w = p->weights.similarity > 0 || p->weights.recency > 0 || p->weights.salience > 0;
    r->w_sim = any_w ? p->weights.similarity : DEF_W_SIM;
    r->w_rec = any_w ? p->weights.recency : DEF_W_REC;
    r->w_sal = any_w ? p->weights.salience : DEF_W_SAL;
    r->half_life = p->half_life_days > 0 ? p->half_life_days : DEF_HALF_LIFE_DAYS;
    r->lambda = p->mmr_lambda > 0 ? p->mmr_lambda : DEF_LAMBDA;
    r->now = p->now_us ? p->now_us : (int64_t)clock_wall_us();
    r->from = p->from_us;
    r->to = p->to_us;
    return DM_OK;
}

/* ------------------------------------------------------------ output */

void dm_search_result_free(dm_search_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        eng_memory_fini(&r->hits[i].memory);
        dm_free(r->hits[i].explain);
    }
    dm_free(r->hits);
    dm_free(r);
}

static void reason_of(const req *r, const cand *c, uint32_t pos, char *out, size_t cap)
{
    if (c->neighbour_of) {
        snprintf(out, cap, "next to candidate %u in its session", c->neighbour_of);
        return;
    }
    if ((r->flags & DM_NO_MMR) || r->lambda >= 1) {
        snprintf(out, cap, "rank %u by score (MMR off)", pos);
        return;
    }
    if (pos == 1)
        snprintf(out, cap, "best score");
    else if (c->max_sim >= 0.9f)
        snprintf(out, cap, "close to a result above (similarity %.2f) but still the best left",
                 (double)c->max_sim);
    else
        snprintf(out, cap, "best score left after diversity (similarity to results above %.2f)",
                 (double)c->max_sim);
}

static int emit(req *r, cand **pick, uint32_t n, dm_search_result *res)
{
    res->hits = dm_calloc(n ? n : 1, sizeof *res->hits);
    if (!res->hits)
        return err_set_msg(DM_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < n; i++) {
        cand *c = pick[i];
        dm_search_hit *h = &res->hits[res->n];
        int rc = eng_memory_fill(&h->memory, &r->tu, c->ts, c->id,
                                 buf_slice_of((const uint8_t *)c->rec, c->rec_len),
                                 r->flags & (DM_WITH_EMBEDDING));
        if (rc)
            return rc;
        res->n++;
        h->score = c->score;
        h->vector_sim = isnan(c->sim) ? 0 : c->sim;
        h->bm25 = isnan(c->bm) ? 0 : c->bm;
        h->vector_rank = c->rank[LEG_VEC];
        h->bm25_rank = c->rank[LEG_BM25];
        if (r->flags & DM_EXPLAIN) {
            dm_explain *e = dm_calloc(1, sizeof *e);
            if (!e)
                return err_set_msg(DM_ENOMEM, "out of memory");
            h->explain = e;
            memcpy(e->leg_rank, c->rank, sizeof e->leg_rank);
            memcpy(e->leg_score, c->leg_score, sizeof e->leg_score);
            e->fused = c->fused;
            e->relevance = c->relevance;
            e->recency = c->recency;
            e->salience = c->salience;
            e->score = c->score;
            e->mmr_score = c->mmr_score;
            e->max_sim = c->max_sim;
            e->neighbour_of = c->neighbour_of;
            e->graph_answer = c->graph_answer;
            reason_of(r, c, i + 1, e->reason, sizeof e->reason);
        }
    }
    return DM_OK;
}

/* Read c's record (once); false when it is gone or fails the filter. */
static int load_cand(req *r, cand *c)
{
    if (c->rec || c->dropped)
        return DM_OK;
    int rc = read_record(r, c->ts, c->id, &r->v);
    if (rc == DM_ENOTFOUND) {
        c->dropped = true; /* deleted after the indexes were read */
        return DM_OK;
    }
    if (rc)
        return rc;
    c->rec = dm_malloc(r->v.len ? r->v.len : 1);
    if (!c->rec)
        return err_set_msg(DM_ENOMEM, "out of memory");
    memcpy(c->rec, r->v.ptr, r->v.len);
    c->rec_len = r->v.len;
    rec_memory m;
    if ((rc = rec_memory_decode(buf_slice_of((const uint8_t *)c->rec, c->rec_len), &m)))
        return rc;
    int64_t at = rec_memory_refreshed_us(&m);
    eng_doc_salience_set(r->u, c->doc, m.salience, m.decay_rate, at);
    if (!c->scored) {
        c->salience = (float)eng_salience(m.salience, m.decay_rate, at, r->now);
        c->score = (float)((double)c->partial + r->w_sal * c->salience);
        c->scored = true;
    }
    return DM_OK;
}

/* c's salience and full score: from the document table when it knows the
 * record's salience state, else from the record. */
static int score_cand(req *r, cand *c)
{
    double s;
    if (c->rec || c->dropped || !eng_doc_salience(r->u, c->doc, r->now, &s))
        return load_cand(r, c);
    c->salience = (float)s;
    c->score = (float)((double)c->partial + r->w_sal * c->salience);
    c->scored = true;
    return DM_OK;
}

/* Read the records of by[0..n) and drop the candidates whose record is
 * gone from the list; *n is the count left.  Errors: storage, DM_ENOMEM. */
static int load_all(req *r, cand **by, uint32_t *n)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < *n; i++) {
        int rc = load_cand(r, by[i]);
        if (rc)
            return rc;
        if (!by[i]->dropped)
            by[kept++] = by[i];
    }
    *n = kept;
    return DM_OK;
}

/*
 * Context neighbours: in a conversation the turn that answers is often not
 * the turn that matches ("How long have you been married?" matches; the
 * reply "5 years already!" is the evidence), and sometimes the answer is
 * two turns away.  For each of the best k candidates with a session, the
 * memories up to NB_SPAN places before and after it in time order, of the
 * same session and passing the filters, become candidates with a share of
 * its score: NB_NEXT after it, NB_PREV before it, times NB_STEP for each
 * further place; a memory that already scores higher keeps its score.
 * They then compete in MMR like every other candidate.  (LoCoMo, frac@5 /
 * @10: 57.7 / 66.5 without; one place each way 65.4 / 74.0; two 66.4 /
 * 75.1.)
 */
#define NB_SPAN 2
#define NB_NEXT 0.9f
#define NB_PREV 0.8f
#define NB_STEP 0.9f

/* The candidate for doc among out[0..n); NULL if none. */
static cand *pool_find(cand **out, uint32_t n, uint32_t doc)
{
    for (uint32_t i = 0; i < n; i++)
        if (out[i]->doc == doc)
            return out[i];
    return NULL;
}

/* Offer the memory with key nk and record nv as a neighbour, with score s,
 * of the candidate at place i whose record is hm.  *stop is set when the
 * memory is not of that session: the walk ends there.  Errors: DM_ENOMEM. */
static int offer_neighbour(req *r, cand **out, uint32_t *no, const rec_memory *hm, uint32_t i,
                           float s, buf_slice nk, buf_slice nv, size_t plen, bool *stop)
{
    rec_memory nm;
    *stop = false;
    if (rec_memory_decode(nv, &nm) || !nm.session_id.ptr ||
        nm.session_id.len != hm->session_id.len ||
        memcmp(nm.session_id.ptr, hm->session_id.ptr, nm.session_id.len)) {
        *stop = true;
        return DM_OK;
    }
    uint8_t nid[16];
    memcpy(nid, nk.ptr + plen + 8, 16);
    uint32_t doc = eng_doc_find(r->u, nid);
    if (doc == UINT32_MAX || !admit(r, doc))
        return DM_OK;
    cand *c = pool_find(out, *no, doc);
    if (c) {
        if (s > c->score) {
            c->score = s;
            c->neighbour_of = i + 1;
        }
        return DM_OK;
    }
    c = &r->extra[r->n_extra++];
    memset(c, 0, sizeof *c);
    c->doc = doc;
    c->ts = key_ts_decode(dec_be64(nk.ptr + plen));
    memcpy(c->id, nid, 16);
    c->rec = dm_malloc(nv.len ? nv.len : 1);
    if (!c->rec)
        return err_set_msg(DM_ENOMEM, "out of memory");
    memcpy(c->rec, nv.ptr, nv.len);
    c->rec_len = nv.len;
    float sim = 0;
    c->sim = r->has_q && eng_vec_sim(r->db, r->u, r->q, doc, &sim) ? sim : 0;
    if (r->u->text &&
        bm25_score_many(r->u->text, r->p->query, strlen(r->p->query), &doc, 1, &c->bm))
        c->bm = 0;
    c->recency = (float)rt_recency(c->ts, r->now, r->half_life);
    c->salience =
        (float)eng_salience(nm.salience, nm.decay_rate, rec_memory_refreshed_us(&nm), r->now);
    c->score = s;
    c->scored = true;
    c->neighbour_of = i + 1;
    out[(*no)++] = c;
    return DM_OK;
}

static int expand_neighbours(req *r, cand ***byp, uint32_t *np, uint32_t n_src)
{
    cand **by = *byp;
    uint32_t n = *np;
    if (n_src > n)
        n_src = n;
    /* Memories stored without a session have no neighbours: no iterator. */
    bool any = false;
    for (uint32_t i = 0; i < n_src && !any; i++) {
        rec_memory hm;
        any = !rec_memory_decode(buf_slice_of((const uint8_t *)by[i]->rec, by[i]->rec_len),
                                 &hm) &&
              hm.session_id.ptr;
    }
    if (!any)
        return DM_OK;
    iter *it = NULL;
    int rc = kv_iter_new(r->db->kv, NULL, &it);
    if (rc)
        return rc;
    uint8_t lo[KEY_MAX];
    size_t plen = key_user_kind(lo, KEY_MEMORY, &r->tu);
    uint32_t most = n_src * 2 * NB_SPAN;
    r->extra = dm_calloc(most + 1, sizeof *r->extra);
    cand **out = dm_malloc(sizeof *out * (n + most + 1));
    if (!r->extra || !out) {
        dm_free(out);
        iter_free(it);
        return err_set_msg(DM_ENOMEM, "out of memory");
    }
    memcpy(out, by, sizeof *out * n);
    uint32_t no = n;
    for (uint32_t i = 0; i < n_src && !rc; i++) {
        cand *h = by[i];
        rec_memory hm;
        if (rec_memory_decode(buf_slice_of((const uint8_t *)h->rec, h->rec_len), &hm) ||
            !hm.session_id.ptr)
            continue;
        for (int dir = -1; dir <= 1 && !rc; dir += 2) {
            uint8_t key[KEY_MAX];
            size_t kl = key_memory(key, &r->tu, h->ts, h->id);
            iter_seek(it, buf_slice_of(key, kl));
            float s = h->score * (dir > 0 ? NB_NEXT : NB_PREV);
            for (int step = 0; step < NB_SPAN && !rc && iter_valid(it); step++, s *= NB_STEP) {
                if (dir < 0)
                    iter_prev(it);
                else
                    iter_next(it);
                if (!iter_valid(it))
                    break;
                buf_slice nk = iter_key(it);
                if (nk.len != plen + 24 || memcmp(nk.ptr, lo, plen))
                    break; /* past the user's memories */
                bool stop;
                rc = offer_neighbour(r, out, &no, &hm, i, s, nk, iter_value(it), plen, &stop);
                if (stop)
                    break; /* past the session */
            }
        }
    }
    iter_free(it);
    if (rc) {
        dm_free(out);
        return rc;
    }
    dm_free(by);
    *byp = out;
    *np = no;
    qsort(out, no, sizeof *out, cmp_score);
    return DM_OK;
}

/* ------------------------------------------------------------ the pipeline */

/* A min-heap of the pool's full scores: its top is the lowest. */
static void heap_push(float *h, uint32_t *n, uint32_t cap, float v)
{
    if (*n == cap) {
        if (v <= h[0])
            return;
        h[0] = v;
    } else {
        uint32_t i = (*n)++;
        h[i] = v;
        while (i && h[(i - 1) / 2] > h[i]) {
            float t = h[i];
            h[i] = h[(i - 1) / 2];
            h[(i - 1) / 2] = t;
            i = (i - 1) / 2;
        }
        return;
    }
    for (uint32_t i = 0;;) {
        uint32_t l = 2 * i + 1, m = i;
        if (l < *n && h[l] < h[m])
            m = l;
        if (l + 1 < *n && h[l + 1] < h[m])
            m = l + 1;
        if (m == i)
            break;
        float t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

/* ------------------------------------------------------------ graph leg */

/*
 * The graph leg.  A walk over the user's knowledge graph (src/index/
 * graph.h) from the entities the query names and the user's own node, at
 * most GRAPH_DEPTH hops, each hop multiplying the score by the edge's
 * confidence and GRAPH_DECAY.  An edge the walk crosses is a fact; its
 * source memories are candidates when the question is about that fact:
 * the edge touches an entity the query names, or the query has a word of
 * the edge's relation ("work" for works_at, "sister" for family.sister).
 * Without that test every question would bring the user's whole profile.
 * A hit's score is the walk's times path_fit: the path must follow the
 * question too.
 * "Where does my sister's husband work?" walks user -family.sister-> Ann
 * -married_to-> Bob -works_at-> Globex and returns the three memories
 * that said so.
 * Such a hit is the question's answer when its path follows the question
 * edge by edge over two relations or more that the question asks about
 * (sister, husband, work): no other leg can find "Bob moved to Initech",
 * which shares no word with the question.  The leg ranks answers first,
 * those that follow more of the question's relations first, and each
 * answer's fused score is at least GRAPH_LEAD of that of the best hit of
 * the other legs behind its path ("Ann is married to Bob", which has the
 * question's words).  A one-hop question ("where do I work?") has no such
 * answers: its words find the memory.
 */
#define GRAPH_DEPTH 3
#define GRAPH_FANOUT 32
#define GRAPH_DECAY 0.7f
#define GRAPH_SEEDS 16
#define GRAPH_REACH 128
#define GRAPH_LEAD 0.9f

/* Words that ask about a relation, by relation prefix. */
static const struct {
    const char *rel;
    const char *words;
} rel_words[] = {
    { "location.", " live lives living lived city town where based moved move home state country region place " },
    { "lives_in", " live lives living lived city town where based moved move home " },
    { "origin", " from grew hometown born origin raised " },
    { "from", " from grew hometown born origin raised " },
    { "work.employer", " work works working worked job employer company employed " },
    { "works_at", " work works working worked job employer company employed " },
    { "work.title", " job title role position work works does profession " },
    { "work.industry", " industry field sector space business work works " },
    { "industry", " industry field sector space business " },
    { "located_in", " where located office based headquartered " },
    { "education", " school study studied studies college university degree graduate graduated " },
    { "studied_at", " school study studied college university degree graduate graduated " },
    { "family.spouse", " spouse husband wife married " },
    { "family.partner", " partner boyfriend girlfriend " },
    { "family.child", " child children kid kids " },
    { "married_to", " married husband wife spouse " },
    { "partner_of", " partner boyfriend girlfriend " },
    { "friend_of", " friend friends " },
    { "pet", " pet pets dog dogs cat cats " },
    { "has_pet", " pet pets dog dogs cat cats " },
    { "preference.likes", " like likes love loves enjoy enjoys favorite favourite " },
    { "likes", " like likes love loves enjoy enjoys favorite favourite " },
    { "preference.dislikes", " dislike dislikes hate hates stand " },
    { "dislikes", " dislike dislikes hate hates stand " },
    { "hobby", " hobby hobbies fun enjoy enjoys free " },
    { "diet", " eat eats diet food vegetarian vegan " },
    { "allergy", " allergic allergy allergies " },
    { "health", " health condition sick illness " },
    { "goal", " goal goals want wants hope dream " },
    { "plan", " plan plans planning going will " },
    { "language", " speak speaks language languages " },
    { "name", " name called " },
    { "age", " old age " },
    { "birthday", " birthday born " },
    { "member_of", " member belongs group club " },
    { "owns", " own owns has " },
};

/* The query (lowercased words, each between spaces) asks about rel. */
static bool asks_about(const char *words, const char *rel)
{
    if (!strncmp(rel, "family.", 7)) {
        /* The relation's own word, and its plural. */
        char w[40];
        int n = snprintf(w, sizeof w, " %s ", rel + 7);
        if (n > 0 && (size_t)n < sizeof w && strstr(words, w))
            return true;
        n = snprintf(w, sizeof w, " %ss ", rel + 7);
        if (n > 0 && (size_t)n < sizeof w && strstr(words, w))
            return true;
    }
    for (size_t i = 0; i < sizeof rel_words / sizeof rel_words[0]; i++) {
        size_t l = strlen(rel_words[i].rel);
        if (strncmp(rel, rel_words[i].rel, l))
            continue;
        for (const char *p = rel_words[i].words; *p;) {
            const char *e = strchr(p + 1, ' ');
            if (!e)
                break;
            char w[40];
            size_t wl = (size_t)(e - p) + 1;
            if (wl > 2 && wl < sizeof w) {
                memcpy(w, p, wl);
                w[wl] = 0;
                if (strstr(words, w))
                    return true;
            }
            p = e;
        }
    }
    return false;
}

typedef struct ghit {
    uint32_t doc;
    float score;
    uint32_t answer; /* 0, or how many relations its path follows that the
                        question asks about */
    uint32_t lead;   /* an answer's best hit behind its path */
} ghit;

/* The edge touches an entity the query names (other than the user). */
static bool edge_named(const graph_edge *e, const uint32_t *named, size_t n_named, uint32_t un)
{
    for (size_t j = 0; j < n_named; j++)
        if (named[j] != un && (named[j] == e->src || named[j] == e->dst))
            return true;
    return false;
}

/*
 * How well the path the walk took to hits[i] follows the question: each
 * edge on it that the question neither names nor asks about halves the
 * score.  "Where does my brother's wife work?" then prefers user
 * -brother-> Tom -wife-> Priya -works_at-> X to user -sister-> Jen
 * -husband-> Kevin -works_at-> Y, which the walk alone scores the same.
 * *asked: how many of the path's edges the question asks about by a word
 * of their relation.
 */
static float path_fit(req *r, const graph_hit *hits, size_t nh, size_t i, const char *words,
                      const uint32_t *named, size_t n_named, uint32_t un, uint32_t *asked,
                      uint32_t *lead)
{
    const graph *g = r->u->graph;
    float fit = 1;
    double lead_rrf = 0;
    *asked = 0;
    *lead = UINT32_MAX;
    for (int hop = 0; hop <= GRAPH_DEPTH && hits[i].via != GRAPH_NONE; hop++) {
        graph_edge e;
        if (!graph_edge_get(g, hits[i].via, &e))
            break;
        if (asks_about(words, e.rel))
            ++*asked;
        else if (!edge_named(&e, named, n_named, un))
            fit *= 0.5f;
        for (uint32_t k = 0; hop && k < e.n_sources; k++) {
            uint32_t doc = eng_doc_find(r->u, e.sources[k]);
            cand *c = doc == UINT32_MAX ? NULL : cand_find(r, doc);
            double f = c ? rt_rrf(c->rank, r->lw, DM_N_LEGS, r->rrf_k) : 0;
            if (f > lead_rrf) {
                lead_rrf = f;
                *lead = doc;
            }
        }
        uint32_t parent = e.src == hits[i].node ? e.dst : e.src;
        size_t j = 0;
        while (j < nh && hits[j].node != parent)
            j++;
        if (j == nh)
            break;
        i = j;
    }
    return fit;
}

/* Answers first, the deepest first ("my brother's wife's employer" over
 * "my brother's wife"); then by score. */
static int cmp_ghit(const void *a, const void *b)
{
    const ghit *x = a, *y = b;
    if (x->answer != y->answer)
        return x->answer > y->answer ? -1 : 1;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->doc < y->doc ? -1 : x->doc > y->doc;
}

static int graph_leg(req *r, size_t qlen)
{
    const eng_user *u = r->u;
    const graph *g = u->graph;
    if (!g || !graph_n_edges(g))
        return DM_OK;
    uint32_t seeds[GRAPH_SEEDS + 1];
    size_t n_named = graph_find_text(g, r->p->query, qlen, seeds, GRAPH_SEEDS);
    if (n_named > GRAPH_SEEDS)
        n_named = GRAPH_SEEDS;
    size_t n_seeds = n_named;
    uint32_t un = graph_find(g, ENG_USER_NODE, strlen(ENG_USER_NODE));
    bool has_user = false;
    for (size_t i = 0; i < n_named; i++)
        has_user |= seeds[i] == un;
    if (un != GRAPH_NONE && !has_user)
        seeds[n_seeds++] = un;
    /* The query's words, lowercased, each between spaces. */
    char *words = dm_malloc(qlen + 3); /* " " words " " NUL */
    graph_hit *hits = dm_malloc(sizeof *hits * GRAPH_REACH);
    ghit *gh = NULL;
    size_t n_gh = 0, cap_gh = 0;
    int rc = words && hits ? DM_OK : err_set_msg(DM_ENOMEM, "out of memory");
    if (!rc) {
        size_t o = 0;
        words[o++] = ' ';
        for (size_t i = 0; i < qlen; i++) {
            char ch = r->p->query[i];
            /* An apostrophe ends a word: "brother's" asks about the
             * brother. */
            bool w = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
            char lc = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
            if (w)
                words[o++] = lc;
            else if (words[o - 1] != ' ')
                words[o++] = ' ';
        }
        if (words[o - 1] != ' ')
            words[o++] = ' ';
        words[o] = 0;
    }
    size_t nh = rc ? 0 : graph_walk(g, seeds, n_seeds, GRAPH_DEPTH, GRAPH_FANOUT, GRAPH_DECAY,
                                    hits, GRAPH_REACH);
    if (nh > GRAPH_REACH)
        nh = GRAPH_REACH;
    for (size_t i = 0; i < nh && !rc; i++) {
        graph_edge e;
        if (hits[i].via == GRAPH_NONE || !graph_edge_get(g, hits[i].via, &e))
            continue;
        bool asked_last = asks_about(words, e.rel);
        if (!asked_last && !edge_named(&e, seeds, n_named, un))
            continue;
        uint32_t asked, lead;
        float fit = path_fit(r, hits, nh, i, words, seeds, n_named, un, &asked, &lead);
        float score = hits[i].score * fit;
        uint32_t answer = asked_last && fit == 1 && asked >= 2 ? asked : 0;
        for (uint32_t k = 0; k < e.n_sources; k++) {
            uint32_t doc = eng_doc_find(u, e.sources[k]);
            if (doc == UINT32_MAX || !admit(r, doc))
                continue;
            size_t j = 0;
            while (j < n_gh && gh[j].doc != doc)
                j++;
            if (j < n_gh) {
                if (answer > gh[j].answer || (answer == gh[j].answer && score > gh[j].score))
                    gh[j] = (ghit){ doc, score, answer, lead };
                continue;
            }
            if (n_gh == cap_gh) {
                size_t nc = cap_gh ? cap_gh * 2 : 32;
                ghit *ng = dm_realloc(gh, nc * sizeof *ng);
                if (!ng) {
                    rc = err_set_msg(DM_ENOMEM, "out of memory");
                    break;
                }
                gh = ng;
                cap_gh = nc;
            }
            gh[n_gh++] = (ghit){ doc, score, answer, lead };
        }
    }
    if (!rc && n_gh) {
        qsort(gh, n_gh, sizeof *gh, cmp_ghit);
        if (n_gh > r->depth)
            n_gh = r->depth;
        for (uint32_t i = 0, rank = 0; i < n_gh; i++) {
            if (!i || gh[i].score != gh[i - 1].score || gh[i].answer != gh[i - 1].answer)
                rank = i + 1;
            cand *c = leg_hit(r, LEG_GRAPH, gh[i].doc, rank, gh[i].score);
            if (c && gh[i].answer) {
                c->graph_answer = true;
                c->graph_lead = gh[i].lead;
            }
        }
    }
    dm_free(words);
    dm_free(hits);
    dm_free(gh);
    return rc ? rc : r->err;
}

/* Stages 2-4 under the user's read lock: the legs, the union, the scores. */
static int gather(req *r, size_t qlen)
{
    dm_db *db = r->db;
    eng_user *u = r->u;
    int rc = DM_OK;
    uint32_t depth = r->depth;
    r->cap = depth * 4 + 1;
    uint32_t slots = 16;
    while (slots < r->cap * 2)
        slots *= 2;
    r->c = dm_malloc(sizeof *r->c * r->cap);
    r->slot = dm_calloc(slots, sizeof *r->slot);
    r->slot_mask = slots - 1;
    hnsw_hit *vh = dm_malloc(sizeof *vh * depth);
    bm25_hit *bh = dm_malloc(sizeof *bh * depth);
    if (!r->c || !r->slot || !vh || !bh) {
        rc = err_set_msg(DM_ENOMEM, "out of memory");
        goto out;
    }
    if (r->needs_record) {
        r->memo_n = u->n_docs;
        r->memo = dm_calloc(u->n_docs ? u->n_docs : 1, 1);
        if (!r->memo) {
            rc = err_set_msg(DM_ENOMEM, "out of memory");
            goto out;
        }
    }
    uint32_t nv = 0, nb = 0;
    if ((r->legs & DM_LEG_BM25) && u->text &&
        (rc = bm25_search(u->text, r->p->query, qlen, depth, admit, r, bh, &nb)))
        goto out;
    /* Equal scores share a rank (1, 2, 2, 4): the fused score must not
     * depend on how a leg happens to order ties (document numbers change
     * when a user is reloaded). */
    for (uint32_t i = 0, rank = 0; i < nb; i++) {
        if (!i || bh[i].score != bh[i - 1].score)
            rank = i + 1;
        leg_hit(r, LEG_BM25, bh[i].doc, rank, bh[i].score);
    }
    if ((r->legs & DM_LEG_VECTOR) && r->has_q && u->vec &&
        (rc = eng_vec_search(db, u, r->q, depth, admit, r, vh, &nv)))
        goto out;
    for (uint32_t i = 0, rank = 0; i < nv; i++) {
        if (!i || vh[i].sim != vh[i - 1].sim)
            rank = i + 1;
        leg_hit(r, LEG_VEC, vh[i].label, rank, vh[i].sim);
    }
    if ((r->legs & DM_LEG_TEMPORAL) && (rc = temporal_leg(r, qlen)))
        goto out;
    if ((r->legs & DM_LEG_GRAPH) && (rc = graph_leg(r, qlen)))
        goto out;
    if ((rc = r->err))
        goto out;

    /* Every candidate's similarity and BM25 score, for the explanation and
     * the hit's fields; then the fused and partial scores. */
    uint32_t m = 0;
    uint32_t *docs = dm_malloc(sizeof *docs * (r->nc ? r->nc : 1));
    float *bms = dm_malloc(sizeof *bms * (r->nc ? r->nc : 1));
    if (!docs || !bms) {
        dm_free(docs);
        dm_free(bms);
        rc = err_set_msg(DM_ENOMEM, "out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < r->nc; i++)
        if (isnan(r->c[i].bm))
            docs[m++] = r->c[i].doc;
    if (m && u->text)
        rc = bm25_score_many(u->text, r->p->query, qlen, docs, m, bms);
    for (uint32_t i = 0, j = 0; !rc && i < r->nc; i++)
        if (isnan(r->c[i].bm))
            r->c[i].bm = u->text ? bms[j++] : 0;
    dm_free(docs);
    dm_free(bms);
    if (rc)
        goto out;
    double best = 0;
    for (uint32_t i = 0; i < r->nc; i++) {
        cand *c = &r->c[i];
        if (isnan(c->sim)) {
            float s = 0;
            c->sim = r->has_q && eng_vec_sim(db, u, r->q, c->doc, &s) ? s : 0;
        }
        c->fused = (float)rt_rrf(c->rank, r->lw, DM_N_LEGS, r->rrf_k);
        if (c->fused > best)
            best = c->fused;
        c->ts = u->docs[c->doc].ts;
        memcpy(c->id, u->docs[c->doc].id, 16);
    }
    /* An answer of the graph leg (graph_leg) takes GRAPH_LEAD of the fused
     * score of the best hit behind its path, as a session neighbour does
     * of its hit: the path is its evidence. */
    for (uint32_t i = 0; i < r->nc; i++) {
        cand *c = &r->c[i];
        const cand *l = c->graph_answer && c->graph_lead != UINT32_MAX
                            ? cand_find(r, c->graph_lead)
                            : NULL;
        if (l) {
            float f = GRAPH_LEAD * (float)rt_rrf(l->rank, r->lw, DM_N_LEGS, r->rrf_k);
            if (f > c->fused)
                c->fused = f;
        }
    }
    for (uint32_t i = 0; i < r->nc; i++) {
        cand *c = &r->c[i];
        c->relevance = best > 0 ? (float)(c->fused / best) : 0;
        c->recency = (float)rt_recency(c->ts, r->now, r->half_life);
        c->partial = (float)rt_score(r->w_sim, r->w_rec, 0, c->relevance, c->recency, 0);
    }
out:
    dm_free(vh);
    dm_free(bh);
    return rc;
}

/* Stages 4 (salience) and 5: the pool by full score, then MMR.  Records
 * are read only for what needs them: a candidate whose salience the
 * document table does not know, the hits whose session neighbours join
 * the pool, and the picks.  *pick receives the chosen candidates, best
 * first. */
static int choose(req *r, cand ***pick, uint32_t *n_pick)
{
    int rc = DM_OK;
    uint32_t k = r->k;
    uint32_t pool = k * 3 > k + 20 ? k * 3 : k + 20;
    qsort(r->c, r->nc, sizeof *r->c, cmp_partial); /* the slot table is stale now */
    float *heap = dm_malloc(sizeof *heap * pool);
    cand **got = dm_malloc(sizeof *got * (r->nc ? r->nc : 1));
    float *score = NULL, *work = NULL, *mmr = NULL, *maxs = NULL;
    uint32_t *order = NULL;
    mmr_ctx mc = { NULL, r->db->dim };
    uint32_t nh = 0, ng = 0;
    if (!heap || !got) {
        rc = err_set_msg(DM_ENOMEM, "out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < r->nc; i++) {
        cand *c = &r->c[i];
        if (nh == pool && (double)c->partial + r->w_sal < (double)heap[0])
            break; /* neither this one nor any after it can enter the pool */
        if ((rc = score_cand(r, c)))
            goto out;
        if (c->dropped)
            continue;
        got[ng++] = c;
        heap_push(heap, &nh, pool, c->score);
    }
    cand **by = got;
    got = NULL;
    qsort(by, ng, sizeof *by, cmp_score);
    if (ng > pool)
        ng = pool;
    if (!(r->flags & DM_NO_NEIGHBOURS) && ng) {
        /* The hits whose neighbours may join need their sessions. */
        uint32_t ns = ng < k ? ng : k, left = ns;
        if ((rc = load_all(r, by, &left))) {
            dm_free(by);
            goto out;
        }
        if (left < ns) {
            memmove(by + left, by + ns, sizeof *by * (ng - ns));
            ng -= ns - left;
        }
        if (ng && (rc = expand_neighbours(r, &by, &ng, k))) {
            dm_free(by);
            goto out;
        }
    }
    got = by;
    *pick = dm_malloc(sizeof **pick * (k ? k : 1));
    if (!*pick) {
        rc = err_set_msg(DM_ENOMEM, "out of memory");
        goto out;
    }
    if ((r->flags & DM_NO_MMR) || r->lambda >= 1 || ng <= 1 || !r->db->dim) {
        uint32_t n = 0;
        for (uint32_t i = 0; i < ng && n < k; i++) {
            if ((rc = load_cand(r, by[i])))
                goto out;
            if (!by[i]->dropped)
                (*pick)[n++] = by[i];
        }
        *n_pick = n;
        goto out;
    }
    uint32_t dim = r->db->dim;
    score = dm_malloc(sizeof *score * ng);
    work = dm_malloc(sizeof *work * ng);
    mmr = dm_malloc(sizeof *mmr * ng);
    maxs = dm_malloc(sizeof *maxs * ng);
    order = dm_malloc(sizeof *order * ng);
    mc.vecs = dm_malloc(sizeof *mc.vecs * (size_t)ng * dim);
    if (!score || !work || !mmr || !maxs || !order || !mc.vecs) {
        rc = err_set_msg(DM_ENOMEM, "out of memory");
        goto out;
    }
    for (;;) {
        float top = by[0]->score > 0 ? by[0]->score : 1;
        for (uint32_t i = 0; i < ng; i++) {
            float *v = mc.vecs + (size_t)i * dim;
            score[i] = by[i]->score / top;
            /* The index holds the vector the record holds (same element
             * type); a memory without one stays a zero row. */
            if (eng_vec_get(r->db, r->u, by[i]->doc, v))
                unit(v, dim);
            else
                memset(v, 0, sizeof *v * dim);
        }
        uint32_t np = rt_mmr(score, ng, k, r->lambda, mmr_sim, &mc, work, order, mmr, maxs);
        bool gone = false;
        for (uint32_t i = 0; i < np; i++) {
            if ((rc = load_cand(r, by[order[i]])))
                goto out;
            gone |= by[order[i]]->dropped;
        }
        if (gone) { /* a record vanished under the index: choose again without it */
            uint32_t kept = 0;
            for (uint32_t i = 0; i < ng; i++)
                if (!by[i]->dropped)
                    by[kept++] = by[i];
            ng = kept;
            if (ng)
                continue;
            np = 0;
        }
        for (uint32_t i = 0; i < np; i++) {
            cand *c = by[order[i]];
            c->mmr_score = mmr[order[i]];
            c->max_sim = maxs[order[i]];
            (*pick)[i] = c;
        }
        *n_pick = np;
        break;
    }
out:
    if (rc) {
        dm_free(*pick);
        *pick = NULL;
    }
    dm_free(heap);
    dm_free(got);
    dm_free(score);
    dm_free(work);
    dm_free(mmr);
    dm_free(maxs);
    dm_free(order);
    dm_free(mc.vecs);
    return rc;
}

int dm_search(dm_db *db, const dm_search_params *p, dm_search_result **out)
{
    if (out)
        *out = NULL;
    if (!db || !p || !out)
        return err_set_msg(DM_EINVAL, "search: no database, parameters or result");
    req r;
    memset(&r, 0, sizeof r);
    buf_init(&r.v);
    r.db = db;
    r.p = p;
    dm_search_result *res = NULL;
    cand **pick = NULL;
    uint32_t n_pick = 0;
    bool locked = false;
    uint64_t t0 = clock_mono_us(), t1 = 0, t2 = 0, t3 = 0;
    int rc = eng_scope_user(db, p->tenant, p->user_id, &r.u);
    if (!rc)
        rc = check_params(db, p, &r);
    if (rc)
        goto out;
    size_t qlen = strlen(p->query);
    if (p->filter) {
        if ((rc = mf_compile(p->filter, 0, &r.filter)))
            goto out;
        const char *const *names;
        size_t nn;
        mf_fields(r.filter, &names, &nn);
        if (!nn) {
            mf_free(r.filter);
            r.filter = NULL;
        }
    }
    r.needs_record = r.filter || p->agent_id || p->session_id;
    res = dm_calloc(1, sizeof *res);
    r.q = dm_malloc(sizeof(float) * (db->dim ? db->dim : 1));
    if (!res || !r.q) {
        rc = err_set_msg(DM_ENOMEM, "out of memory");
        goto out;
    }
    if ((r.legs & (DM_LEG_VECTOR | DM_LEG_TEMPORAL)) || !(r.flags & DM_NO_MMR)) {
        if ((rc = embedder_embed(db->emb, &p->query, &qlen, 1, r.q)))
            goto out;
        r.has_q = db->dim && !eng_vec_is_zero(r.q, db->dim);
    }
    if (p->from_us || p->to_us) {
        r.tfrom = p->from_us;
        r.tto = p->to_us;
    } else if (!(r.flags & DM_NO_TIME_PARSE) && (r.legs & DM_LEG_TEMPORAL)) {
        timex_ctx tc = { .ref_us = r.now };
        if ((rc = timex_parse(p->query, qlen, &tc, &r.tx)))
            goto out;
        if (r.tx.kind == TIMEX_WINDOW) {
            r.tfrom = r.tx.from_us;
            r.tto = r.tx.to_us;
        }
        if (r.tx.kind != TIMEX_NONE)
            snprintf(res->time_label, sizeof res->time_label, "%s", r.tx.label);
    }
    res->window_from_us = r.tfrom;
    res->window_to_us = r.tto;

    t1 = clock_mono_us();
    if ((rc = eng_user_lock_read(db, r.u)))
        goto out;
    locked = true;
    if (!r.u->exists) {
        rc = eng_unknown_user(p->tenant, p->user_id);
        goto out;
    }
    r.tu = r.u->tu;
    if ((rc = kv_view_open(db->kv, &r.view)) || (rc = gather(&r, qlen)))
        goto out;
    t2 = clock_mono_us();
    if ((rc = choose(&r, &pick, &n_pick)))
        goto out;
    t3 = clock_mono_us();
    eng_user_unlock(r.u);
    locked = false;
    rc = emit(&r, pick, n_pick, res);
    if (!rc && !(r.flags & DM_NO_REFRESH) && n_pick) {
        int64_t *ts = dm_malloc(sizeof *ts * n_pick);
        uint8_t(*ids)[16] = dm_malloc(sizeof *ids * n_pick);
        uint32_t n_due = 0;
        for (uint32_t i = 0; ts && ids && i < n_pick; i++) {
            /* Refreshed a moment ago: not queued (eng_refresh_too_soon). */
            rec_memory m;
            if (pick[i]->rec &&
                !rec_memory_decode(buf_slice_of((const uint8_t *)pick[i]->rec, pick[i]->rec_len),
                                   &m) &&
                eng_refresh_too_soon(db, m.last_access_us, r.now))
                continue;
            ts[n_due] = pick[i]->ts;
            memcpy(ids[n_due++], pick[i]->id, 16);
        }
        if (ts && ids && n_due) /* out of memory: no refresh, the results stand */
            eng_refresh_push(db, r.u, ts, (const uint8_t(*)[16])ids, n_due, r.now);
        dm_free(ts);
        dm_free(ids);
    }
    if (!rc) {
        uint64_t t4 = clock_mono_us();
        res->stage_us[DM_STAGE_QUERY] = (uint32_t)(t1 - t0);
        res->stage_us[DM_STAGE_CANDIDATES] = (uint32_t)(t2 - t1);
        res->stage_us[DM_STAGE_RANK] = (uint32_t)(t3 - t2);
        res->stage_us[DM_STAGE_FETCH] = (uint32_t)(t4 - t3);
    }
out:
    if (locked)
        eng_user_unlock(r.u);
    for (uint32_t i = 0; i < r.nc; i++)
        dm_free(r.c[i].rec);
    for (uint32_t i = 0; i < r.n_extra; i++)
        dm_free(r.extra[i].rec);
    dm_free(r.extra);
    kv_view_close(r.view);
    dm_free(r.c);
    dm_free(r.slot);
    dm_free(r.memo);
    dm_free(r.q);
    dm_free(pick);
    mf_free(r.filter);
    buf_fini(&r.v);
    if (rc) {
        dm_search_result_free(res);
        return rc;
    }
    *out = res;
    return DM_OK;
}
