/*
 * cognition.c -- dm_remember, dm_profile, dm_history: a user's facts in
 * the engine.
 *
 * Design.  A user's facts live in F records ('F' tu id, docs/format.md)
 * and, once needed, in memory (eng_user.facts), loaded by one range scan
 * under the user's write lock.  dm_remember stores the turn with dm_add
 * (durable and searchable as any memory), runs the built-in extractor on
 * it outside every lock, then takes the user's write lock, merges the
 * result into the facts (src/cognitive/facts.c) and writes every fact the
 * merge touched plus one history entry ('Y' tu fact_id change_id) per
 * change in one batch.  The in-memory facts change only if that batch is
 * written; on a failed write they are dropped and reloaded on next use,
 * so memory never runs ahead of the disk.
 *
 * Re-running extraction on the same turn changes nothing: a fact never
 * takes the same source twice (facts.c).
 *
 * With a chat model configured (dm_options.llm_*), the turn is read by the
 * model too (src/cognitive/llm.c, outside every lock); its answer, when
 * valid, replaces the built-in reading, and its facts say extractor
 * "llm".
 *
 * Locking: the user's rwlock guards facts and facts_loaded.  Readers that
 * find the facts not loaded take the write lock instead of the read lock.
 */
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "cognitive/extract.h"
#include "cognitive/facts.h"
#include "cognitive/llm.h"
#include "engine/engine_int.h"
#include "engine/keys.h"
#include "engine/record.h"

static const char *tenant_name(const char *t) { return t && t[0] ? t : DM_DEFAULT_TENANT; }

/* ---------------------------------------------------------------- graph */

/* The node type a slot's value is. */
static graph_node_type value_type(const char *slot)
{
    if (!strncmp(slot, "location.", 9) || !strcmp(slot, "origin") ||
        !strcmp(slot, "lives_in") || !strcmp(slot, "located_in") || !strcmp(slot, "from"))
        return GRAPH_PLACE;
    if (!strcmp(slot, "work.employer") || !strcmp(slot, "works_at") ||
        !strcmp(slot, "education.school") || !strcmp(slot, "studied_at") ||
        !strcmp(slot, "member_of"))
        return GRAPH_ORG;
    if (!strncmp(slot, "family.", 7) || !strcmp(slot, "married_to") ||
        !strcmp(slot, "partner_of") || !strcmp(slot, "friend_of"))
        return GRAPH_PERSON;
    return GRAPH_CONCEPT;
}

void eng_graph_drop(eng_user *u)
{
    graph_free(u->graph);
    u->graph = NULL;
    dm_free(u->gvecs);
    u->gvecs = NULL;
    u->n_gvecs = 0;
}

/* Keep v as the embedding of node (gvecs grows to hold it); without
 * memory the node is just not compared later. */
static void gvec_put(const dm_db *db, eng_user *u, uint32_t node, const float *v)
{
    if (node >= u->n_gvecs) {
        uint32_t n = node + 1 > u->n_gvecs * 2 ? node + 1 : u->n_gvecs * 2;
        float *nv = dm_realloc(u->gvecs, (size_t)n * db->dim * sizeof *nv);
        if (!nv)
            return;
        memset(nv + (size_t)u->n_gvecs * db->dim, 0,
               (size_t)(n - u->n_gvecs) * db->dim * sizeof *nv);
        u->gvecs = nv;
        u->n_gvecs = n;
    }
    memcpy(u->gvecs + (size_t)node * db->dim, v, db->dim * sizeof *v);
}

/* Organizations, products and concepts (which a subject not yet known
 * as a person is) resolve by embedding; people and places do not. */
static bool resolvable(graph_node_type t)
{
    return t == GRAPH_ORG || t == GRAPH_CONCEPT || t == GRAPH_PRODUCT;
}

/*
 * The node called name.  Names resolve first by normalized name and
 * alias (graph_node).  A new organization, concept or product is then
 * compared by embedding with the user's nodes of those types: at cosine
 * FACT_SIM_DUP or more ("NYU" and "New York University" with an embedding
 * model that knows both) the name becomes an alias of that node instead
 * of a node of its own.  People are never resolved this way (two names
 * close in embedding space are two people) nor places (the gazetteer
 * knows them).
 */
static int value_node(dm_db *db, eng_user *u, const char *value, graph_node_type t,
                      uint32_t *out)
{
    graph *g = u->graph;
    if (graph_find(g, value, strlen(value)) != GRAPH_NONE || !resolvable(t) || !db ||
        !db->emb || !db->dim || db->dim > 4096)
        return graph_node(g, value, t, out);
    float v[4096];
    const char *texts[1] = { value };
    size_t lens[1] = { strlen(value) };
    if (embedder_embed(db->emb, texts, lens, 1, v) || eng_vec_is_zero(v, db->dim))
        return graph_node(g, value, t, out);
    uint32_t best = GRAPH_NONE;
    double best_sim = FACT_SIM_DUP;
    for (uint32_t n = 0; n < u->n_gvecs; n++) {
        const float *w = u->gvecs + (size_t)n * db->dim;
        if (!resolvable(graph_node_type_of(g, n)) || eng_vec_is_zero(w, db->dim))
            continue;
        double d = 0;
        for (uint32_t i = 0; i < db->dim; i++)
            d += (double)v[i] * w[i];
        if (d >= best_sim) {
            best_sim = d;
            best = n;
        }
    }
    if (best != GRAPH_NONE && graph_alias(g, best, value) == DM_OK) {
        *out = best;
        return DM_OK;
    }
    int rc = graph_node(g, value, t, out);
    if (!rc)
        gvec_put(db, u, *out, v);
    return rc;
}

/* The node of a fact's subject. */
static int subject_node(dm_db *db, eng_user *u, const fact *f, uint32_t *out)
{
    if (!f->subject[0])
        return graph_node(u->graph, ENG_USER_NODE, GRAPH_USER, out);
    return value_node(db, u, f->subject, GRAPH_CONCEPT, out);
}

/* Put a current fact into u's graph, or take an ended one out. */
static int graph_put(dm_db *db, eng_user *u, const fact *f)
{
    graph *g = u->graph;
    uint32_t s, d;
    int rc = subject_node(db, u, f, &s);
    if (rc)
        return rc;
    if (!f->subject[0] && !strcmp(f->slot, "name")) {
        /* The user's name names the user's node (a clash with another
         * node of that name leaves both as they are). */
        if (f->state == FACT_CURRENT)
            (void)graph_alias(g, s, f->value);
        return DM_OK;
    }
    if (f->state != FACT_CURRENT) {
        uint32_t dn = graph_find(g, f->value, strlen(f->value));
        if (dn != GRAPH_NONE)
            graph_edge_remove(g, s, f->slot, dn);
        return DM_OK;
    }
    if ((rc = value_node(db, u, f->value, value_type(f->slot), &d)))
        return rc == DM_EINVAL ? DM_OK : rc; /* a value with no name in it */
    /* The edge is the fact as it is now: put anew, not merged again. */
    graph_edge_remove(g, s, f->slot, d);
    if (!f->n_sources)
        return graph_edge_add(g, s, f->slot, d, f->confidence, f->valid_from_us, NULL);
    /* The first source brings the weight; the others add themselves with
     * weight 0, which leaves a merged weight as it is (1 - (1 - w) * 1). */
    for (uint32_t i = 0; i < f->n_sources && !rc; i++)
        rc = graph_edge_add(g, s, f->slot, d, i ? 0.0f : f->confidence, f->valid_from_us,
                            f->sources[i]);
    return rc;
}

/* REQUIRES: u's write lock.  The graph of u's current facts, anew. */
static int graph_build(dm_db *db, eng_user *u)
{
    eng_graph_drop(u);
    if (!(u->graph = graph_new()))
        return err_set_msg(DM_ENOMEM, "out of memory building a graph");
    uint32_t un;
    int rc = graph_node(u->graph, ENG_USER_NODE, GRAPH_USER, &un);
    for (size_t i = 0; i < u->facts.n && !rc; i++)
        if (u->facts.f[i].state == FACT_CURRENT)
            rc = graph_put(db, u, &u->facts.f[i]);
    if (rc)
        eng_graph_drop(u);
    return rc;
}

/* REQUIRES: u's write lock.  The plan's facts into the graph; on any
 * failure the graph is built anew. */
static int graph_apply(dm_db *db, eng_user *u, const fact_plan *p)
{
    int rc = u->graph ? DM_OK : DM_ENOMEM;
    for (size_t i = 0; i < p->n && !rc; i++)
        rc = graph_put(db, u, &u->facts.f[p->c[i].f]);
    return rc ? graph_build(db, u) : DM_OK;
}

/* REQUIRES: u's write lock.  One more event span of the turn id. */
static int span_add(eng_user *u, const uint8_t id[16], int64_t from, int64_t to)
{
    uint32_t doc = eng_doc_find(u, id);
    if (doc == UINT32_MAX || to <= from)
        return DM_OK; /* the turn is gone: nothing to find */
    if (u->n_spans == u->spans_cap) {
        uint32_t cap = u->spans_cap ? u->spans_cap * 2 : 16;
        eng_span *n = dm_realloc(u->spans, cap * sizeof *n);
        if (!n)
            return err_set_msg(DM_ENOMEM, "out of memory");
        u->spans = n;
        u->spans_cap = cap;
    }
    u->spans[u->n_spans++] = (eng_span){ from, to, doc };
    return DM_OK;
}

/* REQUIRES: u's write lock.  The spans of every E record of u. */
static int spans_load(dm_db *db, eng_user *u)
{
    uint8_t lo[KEY_MAX];
    size_t lo_len = key_user_kind(lo, KEY_EVENT, &u->tu);
    iter *it = NULL;
    int rc = kv_iter_new(db->kv, NULL, &it);
    u->n_spans = 0;
    for (eng_seek(it, buf_slice_of(lo, lo_len)); !rc && eng_valid(it); iter_next(it)) {
        buf_slice k = iter_key(it), v = iter_value(it);
        if (k.len < lo_len || memcmp(k.ptr, lo, lo_len))
            break;
        /* version, type, flags, confidence, from, to, mentioned, source */
        if (v.len < 3 + 4 + 24 + 16) {
            rc = err_set_msg(DM_ECORRUPT, "event record of %zu bytes is too short", v.len);
            break;
        }
        int64_t from = (int64_t)dec_u64(v.ptr + 7), to = (int64_t)dec_u64(v.ptr + 15);
        rc = span_add(u, v.ptr + 31, from, to);
    }
    if (!rc && it)
        rc = iter_status(it);
    iter_free(it);
    return rc;
}

/* REQUIRES: u's write lock.  Reads every F record of u into u->facts and
 * builds its graph. */
int eng_facts_load(dm_db *db, eng_user *u)
{
    if (u->facts_loaded)
        return DM_OK;
    uint8_t lo[KEY_MAX];
    size_t lo_len = key_user_kind(lo, KEY_FACT, &u->tu);
    iter *it = NULL;
    int rc = kv_iter_new(db->kv, NULL, &it);
    fact_set s = { 0 };
    for (eng_seek(it, buf_slice_of(lo, lo_len)); !rc && eng_valid(it); iter_next(it)) {
        buf_slice k = iter_key(it);
        if (k.len < lo_len || memcmp(k.ptr, lo, lo_len))
            break;
        fact *f = fact_set_push(&s);
        if (!f) {
            rc = err_set_msg(DM_ENOMEM, "out of memory loading facts");
            break;
        }
        if (k.len != lo_len + 16) {
            s.n--;
            rc = err_set_msg(DM_ECORRUPT, "fact key of %zu bytes is malformed", k.len);
            break;
        }
        if ((rc = fact_decode(iter_value(it), f))) {
            s.n--;
            break;
        }
        memcpy(f->id, k.ptr + lo_len, 16);
    }
    if (!rc && it)
        rc = iter_status(it);
    iter_free(it);
    if (rc) {
        fact_set_fini(&s);
        return rc;
    }
    fact_set_fini(&u->facts);
    u->facts = s;
    if ((rc = graph_build(db, u)) || (rc = spans_load(db, u))) {
        fact_set_fini(&u->facts);
        return rc;
    }
    u->facts_loaded = true;
    return DM_OK;
}

/* REQUIRES: u's write lock.  Writes the facts the plan touched and one
 * history entry per change, in one batch. */
/* The E record of one event (docs/format.md). */
static int event_encode(const ex_event *e, int64_t mentioned_us, const uint8_t source[16],
                        buf *out)
{
    uint32_t conf;
    memcpy(&conf, &e->confidence, 4);
    int rc = buf_put_u8(out, 1) | buf_put_u8(out, (uint8_t)e->type) |
             buf_put_u8(out, e->has_time ? 1 : 0) | buf_put_u32(out, conf) |
             buf_put_u64(out, (uint64_t)e->from_us) | buf_put_u64(out, (uint64_t)e->to_us) |
             buf_put_u64(out, (uint64_t)mentioned_us) | buf_append(out, source, 16) |
             buf_put_lenbytes(out, e->what ? e->what : "", e->what ? strlen(e->what) : 0) |
             buf_put_varint(out, e->n_who);
    for (size_t i = 0; i < e->n_who; i++)
        rc |= buf_put_lenbytes(out, e->who[i], strlen(e->who[i]));
    return rc ? err_set_msg(DM_ENOMEM, "out of memory encoding an event") : DM_OK;
}

/* REQUIRES: u's write lock.  Puts the facts the plan touched, one
 * history entry per change and the turn's events into b. */
static int plan_put(dm_db *db, eng_user *u, kv_batch *b, const fact_plan *p,
                    const ex_result *ex, const uint8_t source[16], int64_t mentioned_us,
                    const char *extractor, int64_t recorded_us)
{
    if (!p->n && !ex->n_events)
        return DM_OK;
    buf v;
    buf_init(&v);
    uint8_t k[KEY_MAX];
    bool *done = dm_calloc(u->facts.n, sizeof *done);
    int rc = done || !u->facts.n ? DM_OK : err_set_msg(DM_ENOMEM, "out of memory writing facts");
    for (size_t i = 0; i < p->n && !rc; i++) {
        const fact_change *c = &p->c[i];
        const fact *f = &u->facts.f[c->f];
        if (!done[c->f]) {
            done[c->f] = true;
            buf_clear(&v);
            size_t kl = key_fact(k, &u->tu, f->id);
            if (!(rc = fact_encode(f, &v)))
                rc = kv_batch_put(b, buf_slice_of(k, kl), buf_slice_of(v.ptr, v.len));
        }
        uint8_t cid[16];
        eng_new_id(db, cid);
        buf_clear(&v);
        size_t kl = key_change(k, &u->tu, f->id, cid);
        if (!rc && !(rc = fact_change_encode(c, f, f->extractor ? f->extractor : extractor,
                                             recorded_us, &v)))
            rc = kv_batch_put(b, buf_slice_of(k, kl), buf_slice_of(v.ptr, v.len));
    }
    for (size_t i = 0; i < ex->n_events && !rc; i++) {
        /* The id is derived from the turn and the event's place in it, so
         * that remembering the same turn again rewrites, not repeats. */
        uint8_t id[16];
        memcpy(id, source, 16);
        id[15] ^= (uint8_t)(i + 1);
        id[14] ^= (uint8_t)((i + 1) >> 8);
        buf_clear(&v);
        size_t kl = key_event(k, &u->tu, ex->events[i].from_us, id);
        if (!(rc = event_encode(&ex->events[i], mentioned_us, source, &v)))
            rc = kv_batch_put(b, buf_slice_of(k, kl), buf_slice_of(v.ptr, v.len));
    }
    dm_free(done);
    buf_fini(&v);
    return rc;
}

static void new_id_cb(void *arg, uint8_t out[16]) { eng_new_id(arg, out); }

/* Cosine similarity of two short values with the database's embedder;
 * -1 when either cannot be embedded (no known word, an error). */
static float similar_cb(void *arg, const char *a, const char *b)
{
    dm_db *db = arg;
    if (!db->emb || !db->dim || db->dim > 4096)
        return -1;
    float *v = dm_malloc(2 * (size_t)db->dim * sizeof *v);
    if (!v)
        return -1;
    const char *texts[2] = { a, b };
    size_t lens[2] = { strlen(a), strlen(b) };
    float sim = -1;
    if (!embedder_embed(db->emb, texts, lens, 2, v) && !eng_vec_is_zero(v, db->dim) &&
        !eng_vec_is_zero(v + db->dim, db->dim)) {
        double d = 0;
        for (uint32_t i = 0; i < db->dim; i++)
            d += (double)v[i] * v[db->dim + i];
        sim = (float)d;
    }
    dm_free(v);
    return sim;
}

/* ------------------------------------------------------------ remember */

void dm_remember_params_init(dm_remember_params *p)
{
    if (p)
        memset(p, 0, sizeof *p);
}

/* The metadata to store: the caller's, with "speaker" when given. */
static int remember_metadata(const dm_remember_params *p, char **out)
{
    *out = NULL;
    if (!p->speaker || !p->speaker[0])
        return DM_OK;
    json_error_t je;
    json_t *j = p->metadata ? json_loads(p->metadata, JSON_REJECT_DUPLICATES, &je)
                            : json_object();
    if (!j || !json_is_object(j)) {
        json_decref(j);
        return err_set_msg(DM_EINVAL, "remember: metadata is not a JSON object");
    }
    if (json_object_set_new(j, "speaker", json_string(p->speaker))) {
        json_decref(j);
        return err_set_msg(DM_EINVAL, "remember: speaker is not valid UTF-8");
    }
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    if (!s)
        return err_set_msg(DM_ENOMEM, "out of memory");
    *out = s;
    return DM_OK;
}

static void count_changes(const fact_plan *p, dm_remember_result *r)
{
    for (size_t i = 0; i < p->n; i++) {
        switch (p->c[i].event) {
        case FEV_ADD: r->n_added++; break;
        case FEV_MERGE: r->n_merged++; break;
        case FEV_UPDATE: r->n_updated++; break;
        case FEV_SUPERSEDE: r->n_superseded++; break;
        case FEV_RETRACT: r->n_retracted++; break;
        default: break;
        }
    }
}

/* One job's extraction, done with no lock held. */
typedef struct xwork {
    ex_result ex;
    const char *extractor;
    int rc;
} xwork;

/* How far back a turn is context of the next: a conversation's pause. */
#define CONTEXT_WINDOW_US (30LL * 60 * 1000000)

void eng_xrecent_fini(eng_user *u)
{
    for (uint32_t i = 0; i < u->n_xrecent; i++)
        eng_xjob_free(u->xrecent[i]);
    u->n_xrecent = 0;
}

/* A copy of a turn for the recent ring; NULL on DM_ENOMEM. */
static eng_xjob *recent_copy(const char *text, size_t len, const char *session,
                             size_t session_len, bool assistant, int64_t ts)
{
    eng_xjob *c = dm_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->ts = ts;
    c->assistant = assistant;
    c->text = dm_strndup(text, len);
    c->text_len = len;
    c->session = session ? dm_strndup(session, session_len) : NULL;
    if (!c->text || (session && !c->session)) {
        eng_xjob_free(c);
        return NULL;
    }
    return c;
}

/* Make c (owned; NULL does nothing) the latest turn of u's recent ring. */
static void recent_take(eng_user *u, eng_xjob *c)
{
    if (!c)
        return;
    if (u->n_xrecent == EX_CONTEXT_MAX) {
        eng_xjob_free(u->xrecent[0]);
        memmove(u->xrecent, u->xrecent + 1, (EX_CONTEXT_MAX - 1) * sizeof *u->xrecent);
        u->n_xrecent--;
    }
    u->xrecent[u->n_xrecent++] = c;
}

/* Remember j as the latest turn extracted (on DM_ENOMEM the context of
 * the next turn is just shorter). */
static void recent_push(eng_user *u, const eng_xjob *j)
{
    recent_take(u, recent_copy(j->text, j->text_len, j->session,
                               j->session ? strlen(j->session) : 0, j->assistant, j->ts));
}

/*
 * The ring knows nothing of j's session (the database was reopened: each
 * CLI command is a process of its own): read the turns before j in that
 * session from storage, newest first from j's own key back, over at most
 * 64 memories of the user and CONTEXT_WINDOW_US, and put them in the ring
 * oldest first.  Best effort: a failure leaves less context.
 */
static void recent_load(dm_db *db, eng_user *u, const eng_xjob *j)
{
    uint8_t k[KEY_MAX], lo[KEY_MAX];
    size_t kl = key_memory(k, &u->tu, j->ts, j->id);
    size_t lo_len = key_user_kind(lo, KEY_MEMORY, &u->tu);
    size_t sl = strlen(j->session);
    eng_xjob *found[EX_CONTEXT_MAX];
    size_t nf = 0;
    iter *it = NULL;
    if (kv_iter_new(db->kv, NULL, &it))
        return;
    iter_seek(it, buf_slice_of(k, kl));
    if (iter_valid(it))
        iter_prev(it);
    for (int seen = 0; iter_valid(it) && seen < 64 && nf < EX_CONTEXT_MAX;
         seen++, iter_prev(it)) {
        buf_slice key = iter_key(it);
        if (key.len != lo_len + 24 || memcmp(key.ptr, lo, lo_len))
            break;
        int64_t ts = key_ts_decode(dec_be64(key.ptr + lo_len));
        if (j->ts - ts > CONTEXT_WINDOW_US)
            break;
        rec_memory m;
        if (rec_memory_decode(iter_value(it), &m) || !m.session_id.ptr ||
            m.session_id.len != sl || memcmp(m.session_id.ptr, j->session, sl))
            continue;
        bool assistant = m.role.len == 9 && !memcmp(m.role.ptr, "assistant", 9);
        eng_xjob *c = recent_copy((const char *)m.text.ptr, m.text.len, j->session, sl,
                                  assistant, ts);
        if (c)
            found[nf++] = c;
    }
    iter_free(it);
    while (nf)
        recent_take(u, found[--nf]);
}

static bool recent_has_session(const eng_user *u, const char *session)
{
    for (uint32_t i = 0; i < u->n_xrecent; i++)
        if (u->xrecent[i]->session && !strcmp(u->xrecent[i]->session, session))
            return true;
    return false;
}

/* The turns before j in its session, said within CONTEXT_WINDOW_US,
 * oldest first, into ctx (EX_CONTEXT_MAX); returns how many.  Turns
 * without a session have no context. */
static size_t context_of(const eng_user *u, const eng_xjob *j, ex_turn *ctx)
{
    size_t n = 0;
    if (!j->session)
        return 0;
    for (uint32_t i = 0; i < u->n_xrecent; i++) {
        const eng_xjob *r = u->xrecent[i];
        if (!r->session || strcmp(r->session, j->session) || r->ts > j->ts ||
            j->ts - r->ts > CONTEXT_WINDOW_US)
            continue;
        ctx[n++] = (ex_turn){ .text = r->text, .role = r->assistant ? "assistant" : "user",
                              .time_us = r->ts };
    }
    return n;
}

static void extract_one(dm_db *db, const eng_xjob *j, const ex_turn *ctx, size_t n_ctx,
                        xwork *w)
{
    /* A transcript's "Name: " label in front of the speaker's own words is
     * not part of what was said. */
    ex_input in = { .text = j->text, .len = j->text_len, .speaker = j->speaker,
                    .role = j->assistant ? "assistant" : "user", .time_us = j->ts,
                    .context = n_ctx ? ctx : NULL, .n_context = n_ctx };
    size_t sl = j->speaker ? strlen(j->speaker) : 0;
    if (sl && in.len > sl + 1 && !strncmp(in.text, j->speaker, sl) && in.text[sl] == ':') {
        in.text += sl + 1;
        in.len -= sl + 1;
        while (in.len && in.text[0] == ' ') {
            in.text++;
            in.len--;
        }
    }
    w->extractor = "builtin";
    if ((w->rc = ex_extract(&in, &w->ex)))
        return;
    if (db->llm) {
        /* The chat model's reading, checked; the built-in one when the
         * model cannot give a valid answer. */
        ex_result lx;
        bool used = false;
        uint32_t calls = db->opt.llm_max_calls ? db->opt.llm_max_calls : 2;
        if (!llm_extract(db->llm, &in, &w->ex, calls, &lx, &used)) {
            ex_result_free(&w->ex);
            w->ex = lx;
            w->extractor = used ? "llm" : "builtin";
        }
    }
}

int eng_extract_batch(dm_db *db, eng_user *u, eng_xjob *const *jobs, size_t n)
{
    xwork *w = dm_calloc(n ? n : 1, sizeof *w);
    if (!w)
        return err_set_msg(DM_ENOMEM, "out of memory extracting %zu turns", n);
    /* In order: each turn is the context of the next ones (u->xrecent is
     * this thread's while it holds u's batch). */
    for (size_t i = 0; i < n; i++) {
        ex_turn ctx[EX_CONTEXT_MAX];
        if (jobs[i]->session && !recent_has_session(u, jobs[i]->session))
            recent_load(db, u, jobs[i]);
        size_t n_ctx = context_of(u, jobs[i], ctx);
        extract_one(db, jobs[i], ctx, n_ctx, &w[i]);
        recent_push(u, jobs[i]);
    }
    int rc = eng_user_lock_write(db, u);
    if (rc) {
        for (size_t i = 0; i < n; i++)
            ex_result_free(&w[i].ex);
        dm_free(w);
        return rc;
    }
    kv_batch *b = kv_batch_new();
    fact_plan *plans = dm_calloc(n ? n : 1, sizeof *plans);
    if (!b || !plans)
        rc = err_set_msg(DM_ENOMEM, "out of memory merging facts");
    if (!rc)
        rc = eng_facts_load(db, u);
    int64_t now = (int64_t)clock_wall_us();
    for (size_t i = 0; i < n && !rc; i++) {
        const eng_xjob *j = jobs[i];
        uint8_t k[KEY_MAX];
        size_t kl = key_pending(k, &u->tu, j->id);
        if ((rc = kv_batch_delete(b, buf_slice_of(k, kl))))
            break;
        uint32_t doc = eng_doc_find(u, j->id);
        if (doc == UINT32_MAX || w[i].rc) {
            /* The memory was deleted before its turn came, or the text
             * could not be read (the extractor said why): nothing to
             * merge.  A failure is not retried: it would fail again. */
            if (w[i].rc)
                log_msg(LOG_WARN, "extraction of a turn failed: %s", err_last_msg());
            continue;
        }
        fact_ctx c = { .mentioned_us = j->ts, .recorded_us = now, .extractor = w[i].extractor,
                       .new_id = new_id_cb, .id_arg = db,
                       .similar = similar_cb, .sim_arg = db };
        memcpy(c.source, j->id, 16);
        rc = facts_apply(&u->facts, &w[i].ex, &c, &plans[i]);
        if (!rc)
            rc = plan_put(db, u, b, &plans[i], &w[i].ex, j->id, j->ts, w[i].extractor, now);
        if (!rc)
            rc = graph_apply(db, u, &plans[i]);
        for (size_t e = 0; !rc && e < w[i].ex.n_events; e++)
            rc = span_add(u, j->id, w[i].ex.events[e].from_us, w[i].ex.events[e].to_us);
    }
    if (!rc && n)
        rc = eng_write(db, b);
    if (rc) {
        /* Memory must not run ahead of the disk: reload on next use. */
        fact_set_fini(&u->facts);
        u->facts_loaded = false;
        eng_graph_drop(u);
    }
    eng_user_unlock(u);
    for (size_t i = 0; i < n; i++) {
        if (!rc && jobs[i]->wait) {
            eng_xwait *x = jobs[i]->wait;
            count_changes(&plans[i], &x->r);
            x->rc = w[i].rc;
            /* The waiter reads it after xq.mu (extractq.c). */
        }
        if (plans)
            fact_plan_fini(&plans[i]);
        ex_result_free(&w[i].ex);
    }
    dm_free(plans);
    dm_free(w);
    kv_batch_free(b);
    return rc;
}

int dm_remember(dm_db *db, const dm_remember_params *p, dm_remember_result *out)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!db || !p)
        return err_set_msg(DM_EINVAL, "remember: no database or parameters");
    if (p->role && strcmp(p->role, "user") && strcmp(p->role, "assistant"))
        return err_set_msg(DM_EINVAL, "remember: role '%s' is neither user nor assistant",
                           p->role);
    char *meta = NULL;
    int rc = remember_metadata(p, &meta);
    if (rc)
        return rc;
    dm_add_params a;
    dm_add_params_init(&a);
    a.tenant = p->tenant;
    a.user_id = p->user_id;
    a.agent_id = p->agent_id;
    a.session_id = p->session_id;
    a.role = p->role ? p->role : "user";
    a.text = p->text;
    a.text_len = p->text_len;
    a.event_time_us = p->time_us ? p->time_us : (int64_t)clock_wall_us();
    a.metadata = meta ? meta : p->metadata;
    eng_xwait wait;
    memset(&wait, 0, sizeof wait);
    dm_id id;
    rc = eng_add_wait(db, &a, &id, p->async ? NULL : &wait);
    free(meta); /* jansson's */
    if (rc)
        return rc;
    if (!p->async) {
        eng_user *u = NULL;
        if ((rc = eng_scope_user(db, p->tenant, p->user_id, &u)))
            return rc;
        eng_xq_run(db, u, &wait);
        rc = wait.rc;
    }
    if (out) {
        *out = wait.r;
        out->id = id;
    }
    return rc;
}

/* ------------------------------------------------------------- profile */

int eng_user_lock_facts(dm_db *db, eng_user *u)
{
    /* A reader of facts sees every turn stored before it asked. */
    eng_xq_run(db, u, NULL);
    int rc = eng_user_lock_read(db, u);
    if (rc || u->facts_loaded || !u->exists)
        return rc;
    eng_user_unlock(u);
    if ((rc = eng_user_lock_write(db, u)))
        return rc;
    if (u->exists && (rc = eng_facts_load(db, u)))
        eng_user_unlock(u);
    return rc;
}

static int fill_fact(dm_fact *d, const fact *f)
{
    memset(d, 0, sizeof *d);
    memcpy(d->id.bytes, f->id, 16);
    memcpy(d->superseded_by.bytes, f->other, 16);
    d->confidence = f->confidence;
    d->valid_from_us = f->valid_from_us;
    d->valid_to_us = f->valid_to_us;
    d->mentioned_us = f->mentioned_us;
    d->recorded_us = f->recorded_us;
    d->state = (dm_fact_state)f->state;
    d->derived = (f->flags & FACT_DERIVED) != 0;
    d->subject = dm_malloc(strlen(f->subject) + 1);
    d->slot = dm_malloc(strlen(f->slot) + 1);
    d->value = dm_malloc(strlen(f->value) + 1);
    d->extractor = dm_malloc(strlen(f->extractor) + 1);
    d->sources = f->n_sources ? dm_malloc(f->n_sources * sizeof *d->sources) : NULL;
    if (!d->subject || !d->slot || !d->value || !d->extractor || (f->n_sources && !d->sources))
        return DM_ENOMEM;
    strcpy(d->subject, f->subject);
    strcpy(d->slot, f->slot);
    strcpy(d->value, f->value);
    strcpy(d->extractor, f->extractor);
    for (uint32_t i = 0; i < f->n_sources; i++)
        memcpy(d->sources[i].bytes, f->sources[i], 16);
    d->n_sources = f->n_sources;
    return DM_OK;
}

static int cmp_fact(const void *a, const void *b)
{
    const dm_fact *x = a, *y = b;
    int c = strcmp(x->slot, y->slot);
    if (c)
        return c;
    if (x->valid_from_us != y->valid_from_us)
        return x->valid_from_us < y->valid_from_us ? -1 : 1;
    if (x->mentioned_us != y->mentioned_us)
        return x->mentioned_us < y->mentioned_us ? -1 : 1;
    return memcmp(x->id.bytes, y->id.bytes, 16);
}

void dm_facts_free(dm_fact *f, size_t n)
{
    if (!f)
        return;
    for (size_t i = 0; i < n; i++) {
        dm_free(f[i].subject);
        dm_free(f[i].slot);
        dm_free(f[i].value);
        dm_free(f[i].extractor);
        dm_free(f[i].sources);
    }
    dm_free(f);
}

int dm_profile(dm_db *db, const dm_profile_params *p, dm_fact **out, size_t *n)
{
    if (out)
        *out = NULL;
    if (n)
        *n = 0;
    if (!db || !p || !out || !n)
        return err_set_msg(DM_EINVAL, "profile: no database, parameters or output");
    eng_user *u = NULL;
    int rc = eng_scope_user(db, p->tenant, p->user_id, &u);
    if (!rc)
        rc = eng_user_lock_facts(db, u);
    if (rc)
        return rc;
    if (!u->exists) {
        eng_user_unlock(u);
        return eng_unknown_user(tenant_name(p->tenant), p->user_id);
    }
    const char *subject = p->subject ? p->subject : "";
    float min_conf = p->min_confidence ? p->min_confidence : DM_PROFILE_MIN_CONFIDENCE;
    dm_fact *r = dm_calloc(u->facts.n ? u->facts.n : 1, sizeof *r);
    size_t m = 0;
    rc = r ? DM_OK : err_set_msg(DM_ENOMEM, "out of memory");
    for (size_t i = 0; i < u->facts.n && !rc; i++) {
        const fact *f = &u->facts.f[i];
        bool same_subject = subject[0] ? f->subject[0] && facts_entity_match(f->subject, subject)
                                       : !f->subject[0];
        if (!same_subject || (p->slot && strcmp(p->slot, f->slot)))
            continue;
        bool holds = !p->as_of_us       ? f->state == FACT_CURRENT
                     : p->as_known_now ? facts_valid_at(f, p->as_of_us)
                                       : facts_current_at(f, p->as_of_us);
        if (!p->history && !holds)
            continue;
        if (!p->history && f->confidence < min_conf)
            continue; /* kept: a later mention can confirm it */
        if (fill_fact(&r[m++], f))
            rc = err_set_msg(DM_ENOMEM, "out of memory");
    }
    eng_user_unlock(u);
    if (rc) {
        dm_facts_free(r, m);
        return rc;
    }
    qsort(r, m, sizeof *r, cmp_fact);
    *out = r;
    *n = m;
    return DM_OK;
}

/* ------------------------------------------------------------- history */

void dm_changes_free(dm_change *c, size_t n)
{
    if (!c)
        return;
    for (size_t i = 0; i < n; i++) {
        dm_free(c[i].slot);
        dm_free(c[i].old_value);
        dm_free(c[i].new_value);
        dm_free(c[i].extractor);
    }
    dm_free(c);
}

/* One Y record into *c (docs/format.md). */
static int change_decode(buf_slice v, dm_change *c)
{
    buf_slice s = v, subj, slot, oldv = { 0 }, newv, ex;
    uint8_t ver = 0, ev = 0, has_old = 0;
    uint64_t at, rec;
    memset(c, 0, sizeof *c);
    if (!get_u8(&s, &ver) || ver != 1 || !get_u8(&s, &ev) || !get_u64(&s, &at) ||
        !get_u64(&s, &rec) || s.len < 32)
        return err_set_msg(DM_ECORRUPT, "change record: damaged header");
    memcpy(c->source.bytes, s.ptr, 16);
    memcpy(c->other.bytes, s.ptr + 16, 16);
    s.ptr += 32;
    s.len -= 32;
    if (!get_lenbytes(&s, &subj) || !get_lenbytes(&s, &slot) || !get_u8(&s, &has_old) ||
        has_old > 1 || (has_old && !get_lenbytes(&s, &oldv)) || !get_lenbytes(&s, &newv) ||
        !get_lenbytes(&s, &ex) || s.len || ev < 1 || ev > 6 || ev == 3)
        return err_set_msg(DM_ECORRUPT, "change record: damaged at offset %zu",
                           (size_t)(s.ptr - v.ptr));
    c->kind = (dm_change_kind)ev;
    c->at_us = (int64_t)at;
    c->recorded_us = (int64_t)rec;
    c->slot = dm_strndup(slot.ptr, slot.len);
    c->new_value = dm_strndup(newv.ptr, newv.len);
    c->extractor = dm_strndup(ex.ptr, ex.len);
    if (has_old)
        c->old_value = dm_strndup(oldv.ptr, oldv.len);
    if (!c->slot || !c->new_value || !c->extractor || (has_old && !c->old_value))
        return err_set_msg(DM_ENOMEM, "out of memory");
    return DM_OK;
}

int dm_history(dm_db *db, const char *tenant, const char *user_id, const dm_id *id,
               dm_change **out, size_t *n)
{
    if (out)
        *out = NULL;
    if (n)
        *n = 0;
    if (!db || !id || !out || !n)
        return err_set_msg(DM_EINVAL, "history: no database, id or output");
    eng_user *u = NULL;
    int rc = eng_scope_user(db, tenant, user_id, &u);
    if (!rc)
        eng_xq_run(db, u, NULL); /* the facts of every turn stored so far */
    if (rc)
        return rc;
    uint8_t lo[KEY_MAX];
    size_t lo_len = key_user_kind(lo, KEY_CHANGE, &u->tu);
    memcpy(lo + lo_len, id->bytes, 16);
    lo_len += 16;
    iter *it = NULL;
    dm_change *r = NULL;
    size_t m = 0, cap = 0;
    rc = kv_iter_new(db->kv, NULL, &it);
    for (eng_seek(it, buf_slice_of(lo, lo_len)); !rc && eng_valid(it); iter_next(it)) {
        buf_slice k = iter_key(it);
        if (k.len < lo_len || memcmp(k.ptr, lo, lo_len))
            break;
        if (m == cap) {
            size_t nc = cap ? cap * 2 : 8;
            dm_change *g = dm_realloc(r, nc * sizeof *g);
            if (!g) {
                rc = err_set_msg(DM_ENOMEM, "out of memory");
                break;
            }
            r = g;
            cap = nc;
        }
        rc = change_decode(iter_value(it), &r[m++]);
    }
    if (!rc && it)
        rc = iter_status(it);
    iter_free(it);
    if (!rc && !m) {
        char s[DM_ID_STRLEN + 1];
        dm_id_format(id, s);
        rc = err_set_msg(DM_ENOTFOUND, "user '%s' has no fact with id %s", user_id, s);
    }
    if (rc) {
        dm_changes_free(r, m);
        return rc;
    }
    *out = r;
    *n = m;
    return DM_OK;
}

/* -------------------------------------------------------------- events */

static void event_fini(dm_event *e)
{
    dm_free(e->what);
    for (size_t j = 0; j < e->n_who; j++)
        dm_free(e->who[j]);
    dm_free(e->who);
    memset(e, 0, sizeof *e);
}

void dm_events_free(dm_event *e, size_t n)
{
    if (!e)
        return;
    for (size_t i = 0; i < n; i++)
        event_fini(&e[i]);
    dm_free(e);
}

static int event_decode(buf_slice v, dm_event *e)
{
    buf_slice s = v, what;
    uint8_t ver = 0, type = 0, flags = 0;
    uint32_t conf;
    uint64_t from, to, ment, n_who;
    memset(e, 0, sizeof *e);
    if (!get_u8(&s, &ver) || ver != 1 || !get_u8(&s, &type) || type > 4 ||
        !get_u8(&s, &flags) || flags > 1 || !get_u32(&s, &conf) || !get_u64(&s, &from) ||
        !get_u64(&s, &to) || !get_u64(&s, &ment) || s.len < 16)
        return err_set_msg(DM_ECORRUPT, "event record: damaged header");
    memcpy(e->source.bytes, s.ptr, 16);
    s.ptr += 16;
    s.len -= 16;
    if (!get_lenbytes(&s, &what) || !get_varint(&s, &n_who) || n_who > s.len)
        return err_set_msg(DM_ECORRUPT, "event record: damaged at offset %zu",
                           (size_t)(s.ptr - v.ptr));
    e->type = (dm_event_type)type;
    e->has_time = flags & 1;
    memcpy(&e->confidence, &conf, 4);
    e->from_us = (int64_t)from;
    e->to_us = (int64_t)to;
    e->mentioned_us = (int64_t)ment;
    if (!(e->what = dm_strndup(what.ptr, what.len)) ||
        (n_who && !(e->who = dm_calloc(n_who, sizeof *e->who))))
        return err_set_msg(DM_ENOMEM, "out of memory");
    for (uint64_t i = 0; i < n_who; i++) {
        buf_slice w;
        if (!get_lenbytes(&s, &w))
            return err_set_msg(DM_ECORRUPT, "event record: damaged name %" PRIu64, i);
        if (!(e->who[i] = dm_strndup(w.ptr, w.len)))
            return err_set_msg(DM_ENOMEM, "out of memory");
        e->n_who++;
    }
    if (s.len)
        return err_set_msg(DM_ECORRUPT, "event record: %zu bytes left over", s.len);
    return DM_OK;
}

int dm_events(dm_db *db, const dm_events_params *p, dm_event **out, size_t *n)
{
    if (out)
        *out = NULL;
    if (n)
        *n = 0;
    if (!db || !p || !out || !n)
        return err_set_msg(DM_EINVAL, "events: no database, parameters or output");
    if (p->from_us && p->to_us && p->from_us > p->to_us)
        return err_set_msg(DM_EINVAL, "events: from is after to");
    eng_user *u = NULL;
    int rc = eng_scope_user(db, p->tenant, p->user_id, &u);
    if (!rc)
        eng_xq_run(db, u, NULL); /* the events of every turn stored so far */
    if (!rc)
        rc = eng_user_lock_read(db, u);
    if (rc)
        return rc;
    bool exists = u->exists;
    eng_user_unlock(u);
    if (!exists)
        return eng_unknown_user(tenant_name(p->tenant), p->user_id);
    uint32_t limit = p->limit ? p->limit : 1000;
    uint8_t lo[KEY_MAX];
    size_t lo_len = key_user_kind(lo, KEY_EVENT, &u->tu);
    iter *it = NULL;
    dm_event *r = NULL;
    size_t m = 0, cap = 0;
    rc = kv_iter_new(db->kv, NULL, &it);
    for (eng_seek(it, buf_slice_of(lo, lo_len)); !rc && eng_valid(it) && m < limit;
         iter_next(it)) {
        buf_slice k = iter_key(it);
        if (k.len < lo_len || memcmp(k.ptr, lo, lo_len))
            break;
        if (k.len != lo_len + 24) {
            rc = err_set_msg(DM_ECORRUPT, "event key of %zu bytes is malformed", k.len);
            break;
        }
        int64_t from = key_ts_decode(dec_be64(k.ptr + lo_len));
        if (p->to_us && from >= p->to_us)
            break; /* by start time: the rest start later */
        if (m == cap) {
            size_t nc = cap ? cap * 2 : 16;
            dm_event *g = dm_realloc(r, nc * sizeof *g);
            if (!g) {
                rc = err_set_msg(DM_ENOMEM, "out of memory");
                break;
            }
            r = g;
            cap = nc;
        }
        rc = event_decode(iter_value(it), &r[m]);
        m++;
        if (!rc) {
            memcpy(r[m - 1].id.bytes, k.ptr + lo_len + 8, 16);
            if (p->from_us && r[m - 1].to_us <= p->from_us)
                event_fini(&r[--m]); /* ended before the window */
        }
    }
    if (!rc && it)
        rc = iter_status(it);
    iter_free(it);
    if (rc) {
        dm_events_free(r, m);
        return rc;
    }
    *out = r;
    *n = m;
    return DM_OK;
}
