/*
 * handlers_dm.c -- the DeltaMemory dialect of the server: the routes the
 * DeltaMemory SDKs (TypeScript and Python) call, with their exact paths
 * (no trailing slash), bodies, response shapes and error bodies
 * ({"error": "...", "code": "..."}).  docs/api-deltamemory.md is the
 * reference; this comment says how it maps onto the engine.
 *
 * Design.  A collection is one of our users (tenant = the API key's, user
 * = the collection's name); it exists once something is written to it,
 * and reading an unknown one gives zeros and empty arrays, never an
 * error (get and delete say "Memory not found").  ingest is a
 * conversation turn (dm_remember, extraction done before the answer, so
 * that its facts and concepts are real); store is dm_add with the SDK's
 * memory type kept in the metadata under the reserved key "_memory_type"
 * (Fact and Summary also set the engine's kind), which never shows in a
 * memory's metadata on the way out.  A memory without that key (written
 * by ingest or another dialect) has the type of its kind: episodic is
 * Conversation.  Facts, concepts, relations and graph knowledge come from
 * the user's knowledge graph (dm_graph_neighbours from the user's node,
 * dm_graph_search over a text): a node is a concept, an edge a fact.
 * Times on the wire are milliseconds since the epoch.  consolidate and
 * reflect are computed here over the collection's memories (embeddings
 * from dm_export, the newest memories from dm_list); nothing is asked of
 * a language model.
 *
 * Invariants.  Every dm_* call names rq->tenant and the collection as its
 * user, so no request reaches another tenant's or collection's data
 * whatever ids it sends.  Every argument is checked before the first
 * write, so a bad request changes nothing.  The nested objects the Python
 * client builds with Cls(**dict) (facts, concepts of ingest, relations,
 * graph knowledge, profiles, events) have exactly the documented keys.
 *
 * Locking: none here; the handlers hold no state of their own and the
 * dm_* API is thread-safe.
 *
 * Format owned: the reserved metadata key "_memory_type" (a string, one
 * of Conversation, Fact, Insight, Summary).
 */
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"
#include "server/handlers.h"
#include "server/mjson.h"

#define MT_KEY "_memory_type"
#define DEFAULT_COLLECTION "default"
#define USER_NODE "user" /* the user's own node in the graph */
#define GRAPH_DEPTH 5    /* the deepest walk dm_graph_neighbours takes */
#define MAX_PROFILES 100
#define MAX_KNOWLEDGE 20
#define MAX_RELATIONS 20
#define MAX_NAMED 10         /* concepts named in a query that we expand */
#define CONSOLIDATE_MAX 2000 /* newest memories compared by consolidate */

static const char *const mem_types[] = {"Conversation", "Fact", "Insight", "Summary"};
static const char *const event_types[] = {"activity", "plan", "milestone", "preference", "social"};

/* ------------------------------------------------------------ helpers */

static int64_t to_ms(int64_t us)
{
    return us / 1000;
}

/* A float as JSON; a non-finite one (never expected) as 0. */
static json_t *num(float f)
{
    json_t *v = mjson_float(f);
    return v ? v : json_integer(0);
}

static json_t *id_json(const dm_id *id)
{
    char s[DM_ID_STRLEN + 1];
    dm_id_format(id, s);
    return json_string(s);
}

static bool id_eq(const dm_id *a, const dm_id *b)
{
    return !memcmp(a->bytes, b->bytes, sizeof a->bytes);
}

static bool oom(http_resp *rs)
{
    return http_fail(rs, HTTP_E_INTERNAL, NULL, "out of memory");
}

/* Reply with body, or a 500 when building it ran out of memory. */
static void reply(http_resp *rs, json_t *body)
{
    if (body)
        http_reply(rs, 200, body);
    else
        oom(rs);
}

/* The collection of a body ("collection", missing or empty = "default",
 * as the SDKs fall back to their default collection). */
static bool body_collection(http_req *rq, http_resp *rs, json_t *obj, const char **out)
{
    const char *c = NULL;
    if (!http_str_empty(rq, rs, obj, "collection", false, &c))
        return false;
    *out = c && *c ? c : DEFAULT_COLLECTION;
    return true;
}

static const char *query_collection(http_req *rq)
{
    const char *c = http_query(rq, "collection");
    return c && *c ? c : DEFAULT_COLLECTION;
}

static int type_index(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, mem_types[i]))
            return i;
    return -1;
}

/* The SDK's memory type of a memory: the reserved key, else its kind. */
static const char *memory_type(const dm_memory *m, json_t *meta)
{
    json_t *t = meta ? json_object_get(meta, MT_KEY) : NULL;
    if (json_is_string(t) && type_index(json_string_value(t)) >= 0)
        return mem_types[type_index(json_string_value(t))];
    return m->kind == DM_KIND_FACT      ? "Fact"
           : m->kind == DM_KIND_SUMMARY ? "Summary"
                                        : "Conversation";
}

/* A memory as the SDK's Memory: {id, collection, content, memory_type,
 * salience, timestamp (ms), metadata}.  The metadata is the stored object
 * without the reserved key. */
static json_t *memory_json(const dm_memory *m)
{
    json_t *meta = json_loads(m->metadata ? m->metadata : "{}", 0, NULL);
    if (!json_is_object(meta)) {
        json_decref(meta);
        meta = json_object();
    }
    if (!meta)
        return NULL;
    const char *type = memory_type(m, meta);
    json_t *o = json_pack("{s:o, s:s, s:s, s:s, s:o, s:I}", "id", id_json(&m->id), "collection",
                          m->user_id, "content", m->text, "memory_type", type, "salience",
                          num(m->salience), "timestamp", (json_int_t)to_ms(m->event_time_us));
    json_object_del(meta, MT_KEY);
    if (!o || json_object_set_new(o, "metadata", meta)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The metadata of a write: an object whose reserved key is refused. */
static bool body_metadata(http_req *rq, http_resp *rs, json_t *obj, json_t **out)
{
    *out = NULL;
    if (!http_obj(rq, rs, obj, "metadata", false, out))
        return false;
    if (*out && json_object_get(*out, MT_KEY))
        return http_fail(rs, HTTP_E_BAD_REQUEST, "metadata", "metadata key \"%s\" is reserved",
                         MT_KEY);
    return true;
}

/* dm_graph_neighbours of the user's node; an unknown user (or one
 * without facts) gives NULL and DM_OK. */
static int user_graph(http_req *rq, const char *coll, uint32_t depth, dm_graph_result **out)
{
    int rc = dm_graph_neighbours(rq->db, rq->tenant, coll, NULL, depth, out);
    if (rc == DM_ENOTFOUND) {
        *out = NULL;
        return DM_OK;
    }
    return rc;
}

static bool has_source(const dm_graph_edge *e, const dm_id *id)
{
    for (size_t i = 0; i < e->n_sources; i++)
        if (id_eq(&e->sources[i], id))
            return true;
    return false;
}

static const char *node_type(const dm_graph_result *const *gs, size_t n_gs, const char *name)
{
    for (size_t g = 0; g < n_gs; g++)
        for (size_t i = 0; gs[g] && i < gs[g]->n_nodes; i++)
            if (!strcmp(gs[g]->nodes[i].name, name))
                return gs[g]->nodes[i].type;
    return "concept";
}

/* FNV-1a of a string, continuing h, with a separator after it so that
 * ("ab", "c") and ("a", "bc") differ. */
static uint64_t str_hash(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return (h ^ 0xff) * 0x100000001b3ULL;
}

#define HASH_SEED 0xcbf29ce484222325ULL

/* Slots of an open-addressing table for n keys: a power of two, at
 * least twice n. */
static size_t table_size(size_t n)
{
    size_t c = 16;
    while (c < 2 * n)
        c *= 2;
    return c;
}

/* Edges of several results, each (src, rel, dst) once: pointers into
 * the results, in a dm_malloc'd array.  A hash table keeps it linear: a
 * user's graph may hold thousands of edges. */
static int edges_union(const dm_graph_result *const *gs, size_t n_gs, const dm_graph_edge ***out,
                       size_t *n)
{
    size_t cap = 0;
    for (size_t g = 0; g < n_gs; g++)
        cap += gs[g] ? gs[g]->n_edges : 0;
    *n = 0;
    size_t mask = table_size(cap) - 1;
    long *slots = dm_malloc((mask + 1) * sizeof *slots);
    *out = dm_malloc((cap ? cap : 1) * sizeof **out);
    if (!*out || !slots) {
        dm_free(slots);
        dm_free(*out);
        *out = NULL;
        return DM_ENOMEM;
    }
    for (size_t i = 0; i <= mask; i++)
        slots[i] = -1;
    for (size_t g = 0; g < n_gs; g++) {
        for (size_t i = 0; gs[g] && i < gs[g]->n_edges; i++) {
            const dm_graph_edge *e = &gs[g]->edges[i];
            size_t pos = str_hash(str_hash(str_hash(HASH_SEED, e->src), e->rel), e->dst) & mask;
            bool dup = false;
            for (; slots[pos] >= 0 && !dup; pos = (pos + 1) & mask) {
                const dm_graph_edge *o = (*out)[slots[pos]];
                dup = !strcmp(o->src, e->src) && !strcmp(o->rel, e->rel) &&
                      !strcmp(o->dst, e->dst);
            }
            if (!dup) {
                slots[pos] = (long)*n;
                (*out)[(*n)++] = e;
            }
        }
    }
    dm_free(slots);
    return DM_OK;
}

/* A fact as a line: "<slot> = <value>" for the user, "<subject>: <slot>
 * = <value>" for another subject. */
static json_t *fact_text(const dm_graph_edge *e)
{
    char s[1024];
    if (!strcmp(e->src, USER_NODE))
        snprintf(s, sizeof s, "%s = %s", e->rel, e->dst);
    else
        snprintf(s, sizeof s, "%s: %s = %s", e->src, e->rel, e->dst);
    return json_string(s);
}

/* Our slots as the SDK's profile topics and sub-topics. */
static void slot_topic(const char *slot, const char **topic, const char **sub)
{
    static const struct {
        const char *slot, *topic, *sub;
    } map[] = {
        {"name", "basic_info", "name"},
        {"age", "basic_info", "age"},
        {"birthday", "basic_info", "birthday"},
        {"gender", "basic_info", "gender"},
        {"location.city", "basic_info", "city"},
        {"location.region", "basic_info", "region"},
        {"location.country", "basic_info", "country"},
        {"origin", "basic_info", "origin"},
        {"language", "basic_info", "language"},
        {"work.employer", "work", "company"},
        {"work.title", "work", "title"},
        {"work.industry", "work", "industry"},
        {"skill", "work", "skill"},
        {"education.school", "education", "school"},
        {"education", "education", "field"},
        {"hobby", "interests", "hobby"},
        {"preference.likes", "interests", "likes"},
        {"preference.dislikes", "interests", "dislikes"},
        {"pet", "interests", "pet"},
        {"relationship", "relationships", "status"},
        {"diet", "health", "diet"},
        {"allergy", "health", "allergy"},
        {"health", "health", "condition"},
        {"goal", "goals", "goal"},
        {"plan", "goals", "plan"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (!strcmp(slot, map[i].slot)) {
            *topic = map[i].topic;
            *sub = map[i].sub;
            return;
        }
    }
    if (!strncmp(slot, "family.", 7)) {
        *topic = "relationships";
        *sub = slot + 7;
        return;
    }
    *topic = "basic_info";
    *sub = slot;
}

/* The user's current facts (dm_profile); an unknown user has none. */
static int profile_facts(http_req *rq, const char *coll, float min_conf, dm_fact **f, size_t *n)
{
    dm_profile_params pp = {.tenant = rq->tenant, .user_id = coll, .min_confidence = min_conf};
    int rc = dm_profile(rq->db, &pp, f, n);
    if (rc == DM_ENOTFOUND) {
        *f = NULL;
        *n = 0;
        return DM_OK;
    }
    return rc;
}

static json_t *profile_json(const dm_fact *f)
{
    const char *topic, *sub;
    slot_topic(f->slot, &topic, &sub);
    return json_pack("{s:o, s:s, s:s, s:s, s:o, s:I}", "id", id_json(&f->id), "topic", topic,
                     "sub_topic", sub, "content", f->value, "confidence", num(f->confidence),
                     "updated_at", (json_int_t)to_ms(f->mentioned_us));
}

static json_t *event_json(const dm_event *e)
{
    json_t *tags = json_array();
    for (size_t i = 0; tags && i < e->n_who; i++)
        json_array_append_new(tags, json_string(e->who[i]));
    json_t *o = json_pack("{s:o, s:s, s:s, s:I, s:o}", "id", id_json(&e->id), "gist", e->what,
                          "event_type", (unsigned)e->type < 5 ? event_types[e->type] : "activity",
                          "mentioned_at", (json_int_t)to_ms(e->mentioned_us), "tags", tags);
    if (o && e->has_time)
        json_object_set_new(o, "event_at", json_integer(to_ms(e->from_us)));
    return o;
}

/* ------------------------------------------------------------- ingest */

/*
 * The facts and concepts a stored turn gave: the edges of the user's
 * graph (from the user's node, and among the entities the text names)
 * whose sources include the turn, and their ends other than the user.
 */
static int turn_knowledge(http_req *rq, const char *coll, const dm_id *turn, const char *text,
                          json_t *facts, json_t *concepts)
{
    dm_graph_result *g[2] = {NULL, NULL};
    const dm_graph_edge **es = NULL;
    size_t n = 0;
    int rc = user_graph(rq, coll, GRAPH_DEPTH, &g[0]);
    if (!rc) {
        rc = dm_graph_search(rq->db, rq->tenant, coll, text, &g[1]);
        if (rc == DM_ENOTFOUND)
            rc = DM_OK;
    }
    if (!rc)
        rc = edges_union((const dm_graph_result *const *)g, 2, &es, &n);
    for (size_t i = 0; i < n && !rc; i++) {
        const dm_graph_edge *e = es[i];
        if (!has_source(e, turn))
            continue;
        if (json_array_append_new(
                facts, json_pack("{s:o, s:o}", "fact", fact_text(e), "confidence", num(e->weight))))
            rc = DM_ENOMEM;
        const char *ends[2] = {e->src, e->dst};
        for (int k = 0; k < 2 && !rc; k++) {
            const char *type = node_type((const dm_graph_result *const *)g, 2, ends[k]);
            if (!strcmp(type, "user"))
                continue;
            json_t *c = NULL;
            size_t j;
            json_array_foreach(concepts, j, c) {
                if (!strcmp(json_string_value(json_object_get(c, "name")), ends[k]))
                    break;
                c = NULL;
            }
            if (c) {
                if (e->weight > json_number_value(json_object_get(c, "importance")))
                    json_object_set_new(c, "importance", num(e->weight));
            } else if (json_array_append_new(concepts,
                                             json_pack("{s:s, s:s, s:o}", "name", ends[k], "type",
                                                       type, "importance", num(e->weight)))) {
                rc = DM_ENOMEM;
            }
        }
    }
    dm_free(es);
    dm_graph_result_free(g[0]);
    dm_graph_result_free(g[1]);
    return rc;
}

static void h_ingest(http_req *rq, http_resp *rs)
{
    json_t *b = http_body_object(rq, rs);
    const char *coll = NULL, *content = NULL;
    json_t *meta = NULL;
    if (!b || !http_fields_known(rq, rs, b, "collection content metadata") ||
        !body_collection(rq, rs, b, &coll) || !http_str(rq, rs, b, "content", true, &content) ||
        !body_metadata(rq, rs, b, &meta))
        return;
    /* The SDK puts the speaker and the time of the turn in the metadata. */
    const char *role = "user", *speaker = NULL;
    int64_t time_us = 0;
    json_t *sp = meta ? json_object_get(meta, "speaker") : NULL;
    json_t *dt = meta ? json_object_get(meta, "datetime") : NULL;
    if (json_is_string(sp) && json_string_length(sp)) {
        const char *s = json_string_value(sp);
        if (!strcasecmp(s, "user"))
            role = "user";
        else if (!strcasecmp(s, "assistant"))
            role = "assistant";
        else
            speaker = s;
    }
    if (json_is_string(dt) && json_string_length(dt) &&
        dm_time_parse(json_string_value(dt), &time_us)) {
        http_fail(rs, HTTP_E_BAD_REQUEST, "metadata.datetime",
                  "metadata \"datetime\" must be an ISO 8601 time such as "
                  "2024-05-08T13:56:00Z, not \"%.60s\"",
                  json_string_value(dt));
        return;
    }
    char *mtext = meta ? mjson_metadata_dumps(meta) : NULL;
    if (meta && !mtext) {
        oom(rs);
        return;
    }
    dm_remember_params rp;
    dm_remember_params_init(&rp);
    rp.tenant = rq->tenant;
    rp.user_id = coll;
    rp.role = role;
    rp.speaker = speaker;
    rp.text = content;
    rp.time_us = time_us;
    rp.metadata = mtext;
    dm_remember_result res;
    int rc = dm_remember(rq->db, &rp, &res);
    free(mtext);
    if (rc) {
        http_fail_dm(rs, rc, "ingest");
        return;
    }
    json_t *ids = json_pack("[o]", id_json(&res.id));
    json_t *facts = json_array(), *concepts = json_array();
    rc = ids && facts && concepts ? turn_knowledge(rq, coll, &res.id, content, facts, concepts)
                                  : DM_ENOMEM;
    if (rc) {
        json_decref(ids);
        json_decref(facts);
        json_decref(concepts);
        http_fail_dm(rs, rc, "ingest");
        return;
    }
    reply(rs,
          json_pack("{s:o, s:o, s:o}", "memory_ids", ids, "facts", facts, "concepts", concepts));
}

/* -------------------------------------------------------------- store */

static void h_store(http_req *rq, http_resp *rs)
{
    json_t *b = http_body_object(rq, rs);
    const char *coll = NULL, *content = NULL, *type = "Conversation";
    json_t *meta = NULL;
    if (!b || !http_fields_known(rq, rs, b, "collection content memory_type metadata") ||
        !body_collection(rq, rs, b, &coll) || !http_str(rq, rs, b, "content", true, &content) ||
        !http_str(rq, rs, b, "memory_type", false, &type) || !body_metadata(rq, rs, b, &meta))
        return;
    int t = type_index(type);
    if (t < 0) {
        http_fail(rs, HTTP_E_BAD_REQUEST, "memory_type",
                  "memory_type must be Conversation, Fact, Insight or Summary, "
                  "not \"%.40s\"",
                  type);
        return;
    }
    json_t *m = meta ? json_deep_copy(meta) : json_object();
    char *mtext = NULL;
    if (!m || json_object_set_new(m, MT_KEY, json_string(mem_types[t])) ||
        !(mtext = mjson_metadata_dumps(m))) {
        json_decref(m);
        oom(rs);
        return;
    }
    json_decref(m);
    dm_add_params ap;
    dm_add_params_init(&ap);
    ap.tenant = rq->tenant;
    ap.user_id = coll;
    ap.text = content;
    ap.metadata = mtext;
    ap.kind = t == 1 ? DM_KIND_FACT : t == 3 ? DM_KIND_SUMMARY : DM_KIND_EPISODIC;
    dm_id id;
    int rc = dm_add(rq->db, &ap, &id);
    free(mtext);
    if (rc) {
        http_fail_dm(rs, rc, "store");
        return;
    }
    reply(rs, json_pack("{s:o}", "id", id_json(&id)));
}

/* -------------------------------------------------------- get, delete */

/* The collection and id of /v1/memory/{collection}/{id}; a malformed id
 * or collection name is a memory that does not exist. */
static bool memory_path(http_req *rq, http_resp *rs, dm_scope *sc, dm_id *id)
{
    const char *coll = rq->segs[2], *ids = rq->segs[3];
    if (!http_id(rq, rs, ids, id))
        return false;
    if (strlen(coll) > DM_MAX_NAME_LEN)
        return http_fail_code(rs, HTTP_E_NOT_FOUND, "MEMORY_NOT_FOUND", "id",
                              "Memory not found: %.64s", ids);
    sc->tenant = rq->tenant;
    sc->user_id = coll;
    return true;
}

static bool not_found(http_req *rq, http_resp *rs, int rc, const char *what)
{
    if (rc == DM_ENOTFOUND || rc == DM_EINVAL)
        return http_fail_code(rs, HTTP_E_NOT_FOUND, "MEMORY_NOT_FOUND", "id",
                              "Memory not found: %.64s", rq->segs[3]);
    return http_fail_dm(rs, rc, what);
}

static void h_get(http_req *rq, http_resp *rs)
{
    dm_scope sc;
    dm_id id;
    if (!memory_path(rq, rs, &sc, &id))
        return;
    dm_memory *m = NULL;
    int rc = dm_get(rq->db, &sc, &id, DM_WITH_ARCHIVED, &m);
    if (rc) {
        not_found(rq, rs, rc, "get");
        return;
    }
    reply(rs, memory_json(m));
    dm_memory_free(m);
}

static void h_delete(http_req *rq, http_resp *rs)
{
    dm_scope sc;
    dm_id id;
    if (!memory_path(rq, rs, &sc, &id))
        return;
    int rc = dm_delete(rq->db, &sc, &id);
    if (rc) {
        not_found(rq, rs, rc, "delete");
        return;
    }
    reply(rs, json_pack("{s:b}", "success", 1));
}

/* ------------------------------------------------------------- recall */

/* The metadata filter of memory_types: the reserved key among the types,
 * or, without the key, a kind that stands for one of them. */
static int types_filter(const bool want[4], char **out)
{
    *out = NULL;
    json_t *in = json_array(), *kinds = json_array();
    for (int i = 0; in && kinds && i < 4; i++) {
        if (!want[i])
            continue;
        json_array_append_new(in, json_string(mem_types[i]));
        if (i != 2)
            json_array_append_new(kinds, json_string(i == 0   ? "episodic"
                                                     : i == 1 ? "fact"
                                                              : "summary"));
    }
    json_t *f = NULL;
    if (in && kinds) {
        json_t *by_key = json_pack("{s:{s:O}}", MT_KEY, "in", in);
        if (json_array_size(kinds))
            f = json_pack("{s:[o, {s:{s:s}, s:{s:O}}]}", "OR", by_key, "NOT", MT_KEY, "*", "kind",
                          "in", kinds);
        else
            f = by_key;
    }
    json_decref(in);
    json_decref(kinds);
    if (f)
        *out = json_dumps(f, JSON_COMPACT);
    json_decref(f);
    return *out ? DM_OK : DM_ENOMEM;
}

static bool recall_args(http_req *rq, http_resp *rs, json_t *b, dm_search_params *sp, char **filter)
{
    const char *coll = NULL, *query = NULL;
    int64_t limit = 0;
    json_t *w = NULL, *types = NULL;
    *filter = NULL;
    if (!http_fields_known(rq, rs, b, "collection query limit weights memory_types") ||
        !body_collection(rq, rs, b, &coll) || !http_str(rq, rs, b, "query", true, &query) ||
        !http_int(rq, rs, b, "limit", false, 0, rq->cfg->max_top_k, &limit) ||
        !http_obj(rq, rs, b, "weights", false, &w) ||
        !http_arr(rq, rs, b, "memory_types", false, &types))
        return false;
    sp->tenant = rq->tenant;
    sp->user_id = coll;
    sp->query = query;
    sp->k = limit ? (uint32_t)limit : 10;
    sp->flags = DM_EXPLAIN;
    if (w) {
        /* A member left out keeps the engine's default weight. */
        double sim = 0.8, rec = 0.1, sal = 0.1;
        if (!http_fields_known(rq, rs, w, "similarity recency salience") ||
            !http_num(rq, rs, w, "similarity", false, 0, 1e3, &sim) ||
            !http_num(rq, rs, w, "recency", false, 0, 1e3, &rec) ||
            !http_num(rq, rs, w, "salience", false, 0, 1e3, &sal))
            return false;
        sp->weights = (dm_weights){(float)sim, (float)rec, (float)sal};
    }
    if (types && json_array_size(types)) {
        bool want[4] = {false, false, false, false};
        size_t i;
        json_t *v;
        json_array_foreach(types, i, v) {
            int t = json_is_string(v) ? type_index(json_string_value(v)) : -1;
            if (t < 0)
                return http_fail(rs, HTTP_E_BAD_REQUEST, "memory_types",
                                 "memory_types[%zu] must be Conversation, Fact, Insight or "
                                 "Summary",
                                 i);
            want[t] = true;
        }
        if (types_filter(want, filter))
            return oom(rs);
        sp->filter = *filter;
    }
    return true;
}

/* The length of a word without a plural or third-person "s" (and a
 * possessive "'s" is never part of a word here): "lives" and "live",
 * "sisters" and "sister" compare equal. */
static size_t stem_len(const char *w, size_t n)
{
    return n > 3 && (w[n - 1] == 's' || w[n - 1] == 'S') ? n - 1 : n;
}

/* Whether a word of the query names a part of the relation ("work" for
 * work.employer, "sister" or "sister's" for family.sister, "live" for
 * lives_in). */
static bool rel_asked(const char *rel, const char *query)
{
    for (const char *p = rel; *p;) {
        size_t l = strcspn(p, "._");
        size_t pl = stem_len(p, l);
        for (const char *q = query; l >= 3 && *q;) {
            while (*q && !isalnum((unsigned char)*q))
                q++;
            size_t wl = 0;
            while (isalnum((unsigned char)q[wl]))
                wl++;
            if (wl && stem_len(q, wl) == pl && !strncasecmp(q, p, pl))
                return true;
            q += wl;
        }
        p += l;
        if (*p)
            p++;
    }
    return false;
}

typedef struct kgraph {
    dm_graph_result *g[2 + MAX_NAMED]; /* the user's walk, the query's nodes, their
                                          neighbours */
    size_t n_g;
    const dm_graph_edge **es; /* their edges, each once */
    size_t n_es;
    long *parent; /* per edge of es: the edge that reaches its source
                     from the user, -1 = none, -2 = the source is the
                     user */
} kgraph;

static void kgraph_fini(kgraph *k)
{
    for (size_t i = 0; i < k->n_g; i++)
        dm_graph_result_free(k->g[i]);
    dm_free(k->es);
    dm_free(k->parent);
}

/* The node number of a name, interned in the table (slots of node
 * numbers, -1 = free; names[] the interned names). */
static long intern(long *slots, size_t mask, const char **names, size_t *n, const char *name)
{
    size_t pos = str_hash(HASH_SEED, name) & mask;
    for (; slots[pos] >= 0; pos = (pos + 1) & mask)
        if (!strcmp(names[slots[pos]], name))
            return slots[pos];
    names[*n] = name;
    slots[pos] = (long)*n;
    return (long)(*n)++;
}

/* For each edge, the edge that reaches its source from the user's node
 * on a shortest path (breadth first over the edges' directions). */
static int kgraph_paths(kgraph *k)
{
    size_t n_es = k->n_es, n_nodes = 0, mask = table_size(2 * n_es + 1) - 1;
    long *slots = dm_malloc((mask + 1) * sizeof *slots);
    const char **names = dm_malloc((2 * n_es + 1) * sizeof *names);
    long *src = dm_malloc((n_es + 1) * sizeof *src), *dst = dm_malloc((n_es + 1) * sizeof *dst);
    long *reach = dm_malloc((2 * n_es + 1) * sizeof *reach);
    int *level = dm_malloc((2 * n_es + 1) * sizeof *level);
    int rc = slots && names && src && dst && reach && level ? DM_OK : DM_ENOMEM;
    for (size_t i = 0; !rc && i <= mask; i++)
        slots[i] = -1;
    long user = rc ? -1 : intern(slots, mask, names, &n_nodes, USER_NODE);
    for (size_t i = 0; !rc && i < n_es; i++) {
        src[i] = intern(slots, mask, names, &n_nodes, k->es[i]->src);
        dst[i] = intern(slots, mask, names, &n_nodes, k->es[i]->dst);
    }
    for (size_t i = 0; !rc && i < n_nodes; i++) {
        reach[i] = -1;
        level[i] = -1;
    }
    if (!rc)
        level[user] = 0;
    bool changed = !rc;
    for (int l = 0; changed && l < GRAPH_DEPTH; l++) {
        changed = false;
        for (size_t i = 0; i < n_es; i++) {
            if (level[src[i]] == l && level[dst[i]] < 0) {
                level[dst[i]] = l + 1;
                reach[dst[i]] = (long)i;
                changed = true;
            }
        }
    }
    for (size_t i = 0; !rc && i < n_es; i++)
        k->parent[i] = src[i] == user ? -2 : reach[src[i]];
    dm_free(slots);
    dm_free(names);
    dm_free(src);
    dm_free(dst);
    dm_free(reach);
    dm_free(level);
    return rc;
}

/* The graph around the user and around the entities the query names,
 * and for each edge the path that reaches it from the user (breadth
 * first, so the shortest). */
static int kgraph_load(http_req *rq, const char *coll, const char *query, kgraph *k)
{
    memset(k, 0, sizeof *k);
    int rc = user_graph(rq, coll, 3, &k->g[0]);
    if (!rc && k->g[0]) {
        rc = dm_graph_search(rq->db, rq->tenant, coll, query, &k->g[1]);
        if (rc == DM_ENOTFOUND)
            rc = DM_OK;
    }
    k->n_g = 2;
    for (size_t i = 0; !rc && k->g[1] && i < k->g[1]->n_nodes && i < MAX_NAMED; i++)
        rc = dm_graph_neighbours(rq->db, rq->tenant, coll, k->g[1]->nodes[i].name, 1,
                                 &k->g[k->n_g++]);
    if (!rc)
        rc = edges_union((const dm_graph_result *const *)k->g, k->n_g, &k->es, &k->n_es);
    if (!rc && !(k->parent = dm_malloc((k->n_es ? k->n_es : 1) * sizeof *k->parent)))
        rc = DM_ENOMEM;
    if (rc)
        return rc;
    return kgraph_paths(k);
}

static bool named(const kgraph *k, const char *name)
{
    for (size_t i = 0; k->g[1] && i < k->g[1]->n_nodes; i++)
        if (!strcmp(k->g[1]->nodes[i].name, name))
            return true;
    return false;
}

/* One graph_knowledge item for edge i: the path from the user (or from
 * the edge's source when the user does not reach it). */
static json_t *knowledge_json(const kgraph *k, size_t i, const char *source_concept,
                              float *out_conf)
{
    size_t chain[GRAPH_DEPTH + 2];
    size_t n = 0;
    long e = (long)i;
    while (e >= 0 && n < GRAPH_DEPTH + 1) {
        bool loop = false;
        for (size_t j = 0; j < n && !loop; j++)
            loop = chain[j] == (size_t)e;
        if (loop)
            break;
        chain[n++] = (size_t)e;
        e = k->parent[e];
    }
    char path[2048];
    size_t pl = 0;
    float conf = 1;
    path[0] = 0;
    for (size_t j = n; j-- > 0;) {
        const dm_graph_edge *x = k->es[chain[j]];
        if (j == n - 1)
            pl += (size_t)snprintf(path + pl, sizeof path - pl, "%s", x->src);
        if (pl < sizeof path)
            pl += (size_t)snprintf(path + pl, sizeof path - pl, " -[%s]-> %s", x->rel, x->dst);
        if (pl >= sizeof path)
            pl = sizeof path - 1;
        conf *= x->weight;
    }
    const dm_graph_edge *x = k->es[i];
    char rel[256], stmt[1024];
    snprintf(rel, sizeof rel, "%s", x->rel);
    for (char *c = rel; *c; c++)
        if (*c == '.' || *c == '_')
            *c = ' ';
    /* A relation between entities with a verb in it ("lives_in",
     * "works_at") reads as a sentence; a slot ("location.city",
     * "industry") as the subject's attribute. */
    bool is_verb = strchr(x->rel, '_') && !strchr(x->rel, '.');
    const char *subj = strcmp(x->src, USER_NODE) ? x->src : "The user";
    if (is_verb)
        snprintf(stmt, sizeof stmt, "%s %s %s", subj, rel, x->dst);
    else
        snprintf(stmt, sizeof stmt, "%s's %s is %s", subj, rel, x->dst);
    *out_conf = conf;
    return json_pack("{s:s, s:s, s:o, s:I, s:s}", "path", path, "statement", stmt, "confidence",
                     num(conf), "hops", (json_int_t)n, "source_concept",
                     source_concept ? source_concept : k->es[chain[n - 1]]->src);
}

typedef struct kitem {
    json_t *o;   /* the graph_knowledge object */
    float conf;  /* its confidence */
    size_t edge; /* its last edge */
} kitem;

static int by_confidence(const void *a, const void *b)
{
    const kitem *x = a, *y = b;
    return x->conf < y->conf   ? 1
           : x->conf > y->conf ? -1
                               : (x->edge > y->edge) - (x->edge < y->edge);
}

/*
 * graph_knowledge and concepts of a query: an edge is knowledge when it
 * touches an entity the query names or when the query asks about its
 * relation (a word of the query names a part of it, as the graph leg of
 * retrieval decides); its path from the user comes with it.  The
 * concepts are the named entities (relevance 1) and the ends those
 * paths reach (relevance = the path's confidence).
 */
static int query_knowledge(const kgraph *k, const char *query, json_t *know, json_t *concepts)
{
    kitem items[MAX_KNOWLEDGE * 4];
    size_t n_items = 0;
    int rc = DM_OK;
    for (size_t i = 0; i < k->n_es && n_items < sizeof items / sizeof items[0]; i++) {
        const dm_graph_edge *e = k->es[i];
        const char *sc = named(k, e->src) ? e->src : named(k, e->dst) ? e->dst : NULL;
        bool relevant = sc || rel_asked(e->rel, query);
        if (!relevant)
            continue;
        float conf = 0;
        json_t *o = knowledge_json(k, i, sc, &conf);
        if (!o) {
            rc = DM_ENOMEM;
            break;
        }
        items[n_items++] = (kitem){o, conf, i};
    }
    qsort(items, n_items, sizeof items[0], by_confidence);
    /* Concepts: named nodes first, then the ends the knowledge reaches. */
    const char *names[MAX_NAMED + MAX_KNOWLEDGE];
    float rel[MAX_NAMED + MAX_KNOWLEDGE];
    size_t n_names = 0;
    for (size_t i = 0; k->g[1] && i < k->g[1]->n_nodes && n_names < MAX_NAMED; i++) {
        names[n_names] = k->g[1]->nodes[i].name;
        rel[n_names++] = 1;
    }
    for (size_t i = 0; i < n_items; i++) {
        if (rc || i >= MAX_KNOWLEDGE) {
            json_decref(items[i].o);
            continue;
        }
        if (json_array_append_new(know, items[i].o))
            rc = DM_ENOMEM;
        const char *end = k->es[items[i].edge]->dst;
        bool dup = !strcmp(end, USER_NODE);
        for (size_t j = 0; j < n_names && !dup; j++)
            dup = !strcmp(names[j], end);
        if (!dup && n_names < sizeof names / sizeof names[0]) {
            names[n_names] = end;
            rel[n_names++] = items[i].conf;
        }
    }
    for (size_t i = 0; !rc && i < n_names; i++) {
        json_t *rels = json_array();
        if (!rels)
            return DM_ENOMEM;
        for (size_t j = 0; j < k->n_es && json_array_size(rels) < MAX_RELATIONS; j++)
            if (!strcmp(k->es[j]->src, names[i]))
                json_array_append_new(rels, json_pack("{s:s, s:s, s:o}", "target_name",
                                                      k->es[j]->dst, "relation_type", k->es[j]->rel,
                                                      "weight", num(k->es[j]->weight)));
        json_t *c =
            json_pack("{s:s, s:s, s:s, s:o, s:o}", "id", names[i], "name", names[i], "concept_type",
                      node_type((const dm_graph_result *const *)k->g, k->n_g, names[i]),
                      "relevance", num(rel[i]), "relations", rels);
        if (!c || json_array_append_new(concepts, c))
            rc = DM_ENOMEM;
    }
    return rc;
}

/* The Markdown context: the profile, the events, the memories. */
static char *context_text(json_t *profiles, json_t *events, const dm_search_result *sr)
{
    size_t cap = 256, len = 0;
    char *s = dm_malloc(cap);
    bool ok = s != NULL;
#define PUT(...)                                                                                   \
    do {                                                                                           \
        while (ok) {                                                                               \
            int w_ = snprintf(s + len, cap - len, __VA_ARGS__);                                    \
            if (w_ < 0) {                                                                          \
                ok = false;                                                                        \
            } else if ((size_t)w_ < cap - len) {                                                   \
                len += (size_t)w_;                                                                 \
                break;                                                                             \
            } else {                                                                               \
                char *n_ = dm_realloc(s, cap * 2 + (size_t)w_);                                    \
                if (!n_)                                                                           \
                    ok = false;                                                                    \
                else                                                                               \
                    s = n_, cap = cap * 2 + (size_t)w_;                                            \
            }                                                                                      \
        }                                                                                          \
    } while (0)
    PUT("# User Memory\n\n## User Profile\n");
    size_t i;
    json_t *v;
    json_array_foreach(profiles, i, v) {
        PUT("- %s::%s: %s\n", json_string_value(json_object_get(v, "topic")),
            json_string_value(json_object_get(v, "sub_topic")),
            json_string_value(json_object_get(v, "content")));
    }
    if (json_array_size(events)) {
        PUT("\n## Events\n");
        json_array_foreach(events, i, v) {
            json_t *at = json_object_get(v, "event_at");
            char t[40];
            dm_time_format((at ? json_integer_value(at)
                               : json_integer_value(json_object_get(v, "mentioned_at"))) *
                               1000,
                           t);
            t[10] = 0;
            PUT("- %s (%s, %s)\n", json_string_value(json_object_get(v, "gist")),
                json_string_value(json_object_get(v, "event_type")), t);
        }
    }
    if (sr && sr->n) {
        PUT("\n## Relevant Memories\n");
        for (size_t h = 0; h < sr->n; h++) {
            char t[40];
            dm_time_format(sr->hits[h].memory.event_time_us, t);
            t[10] = 0;
            PUT("- [%s] %s\n", t, sr->hits[h].memory.text);
        }
    }
#undef PUT
    if (!ok) {
        dm_free(s);
        return NULL;
    }
    return s;
}

static void h_recall(http_req *rq, http_resp *rs)
{
    json_t *b = http_body_object(rq, rs);
    dm_search_params sp = {0};
    char *filter = NULL;
    if (!b || !recall_args(rq, rs, b, &sp, &filter)) {
        free(filter);
        return;
    }
    dm_search_result *sr = NULL;
    dm_fact *pf = NULL;
    size_t n_pf = 0;
    dm_event *ev = NULL;
    size_t n_ev = 0;
    kgraph kg;
    memset(&kg, 0, sizeof kg);
    json_t *results = json_array(), *concepts = json_array(), *know = json_array();
    json_t *profiles = json_array(), *events = json_array();
    char *ctx = NULL;
    int rc = dm_search(rq->db, &sp, &sr);
    free(filter);
    if (!rc)
        http_observe_search(rq, sr);
    if (rc == DM_ENOTFOUND) {
        /* An unknown collection has nothing to recall. */
        rc = DM_OK;
        sr = NULL;
    }
    if (!results || !concepts || !know || !profiles || !events)
        rc = rc ? rc : DM_ENOMEM;
    for (size_t i = 0; !rc && sr && i < sr->n; i++) {
        const dm_search_hit *h = &sr->hits[i];
        const dm_explain *x = h->explain;
        json_t *r = json_pack(
            "{s:o, s:o, s:o, s:o, s:o}", "memory", memory_json(&h->memory), "similarity",
            num(x ? x->relevance : h->vector_sim), "recency", num(x ? x->recency : 0), "salience",
            num(x ? x->salience : h->memory.salience), "cognitive_score", num(h->score));
        if (!r || json_array_append_new(results, r))
            rc = DM_ENOMEM;
    }
    if (!rc && sr)
        rc = profile_facts(rq, sp.user_id, 0, &pf, &n_pf);
    for (size_t i = 0; !rc && i < n_pf && i < MAX_PROFILES; i++)
        if (json_array_append_new(profiles, profile_json(&pf[i])))
            rc = DM_ENOMEM;
    if (!rc && sr && sr->n) {
        dm_events_params ep = {.tenant = rq->tenant, .user_id = sp.user_id, .limit = 10000};
        rc = dm_events(rq->db, &ep, &ev, &n_ev);
        if (rc == DM_ENOTFOUND)
            rc = DM_OK;
    }
    /* The events the recalled memories reported, in the results' order. */
    for (size_t h = 0; !rc && sr && h < sr->n; h++)
        for (size_t i = 0; !rc && i < n_ev; i++)
            if (id_eq(&ev[i].source, &sr->hits[h].memory.id) &&
                json_array_append_new(events, event_json(&ev[i])))
                rc = DM_ENOMEM;
    if (!rc && sr)
        rc = kgraph_load(rq, sp.user_id, sp.query, &kg);
    if (!rc && sr)
        rc = query_knowledge(&kg, sp.query, know, concepts);
    if (!rc && !(ctx = context_text(profiles, events, sr)))
        rc = DM_ENOMEM;
    if (rc) {
        http_fail_dm(rs, rc, "recall");
    } else {
        reply(rs, json_pack("{s:o, s:o, s:o, s:o, s:o, s:s}", "results", results, "concepts",
                            concepts, "graph_knowledge", know, "profiles", profiles, "events",
                            events, "context", ctx));
        results = concepts = know = profiles = events = NULL;
    }
    json_decref(results);
    json_decref(concepts);
    json_decref(know);
    json_decref(profiles);
    json_decref(events);
    dm_free(ctx);
    kgraph_fini(&kg);
    dm_events_free(ev, n_ev);
    dm_facts_free(pf, n_pf);
    dm_search_result_free(sr);
}

/* -------------------------------------------------------------- decay */

/*
 * decay: `rate` is read as a salience floor: the collection's episodic
 * memories whose current salience (stored, faded by their own decay rate
 * since their last refresh) is below it are archived (dm_decay); facts
 * and summaries never fade.  Archived memories leave recall but stay
 * readable by id.  rate 0 archives nothing.
 */
static void h_decay(http_req *rq, http_resp *rs)
{
    json_t *b = http_body_object(rq, rs);
    const char *coll = NULL;
    double rate = 0.1;
    if (!b || !http_fields_known(rq, rs, b, "collection rate") ||
        !body_collection(rq, rs, b, &coll) || !http_num(rq, rs, b, "rate", false, 0, 1, &rate))
        return;
    uint64_t n = 0;
    if (rate > 0) {
        int rc = dm_decay(rq->db, rq->tenant, coll, 0, (float)rate, &n);
        if (rc == DM_ENOTFOUND)
            n = 0;
        else if (rc) {
            http_fail_dm(rs, rc, "decay");
            return;
        }
    }
    reply(rs, json_pack("{s:I}", "affected_count", (json_int_t)n));
}

/* -------------------------------------------------------- consolidate */

typedef struct cmem {
    dm_id id;
    float salience;
    int64_t time_us;
    int type;
    float *vec;      /* unit length */
    uint64_t *words; /* hashes of the text's words, sorted, each once */
    size_t n_words;
} cmem;

typedef struct cset {
    cmem *m; /* a ring of the newest CONSOLIDATE_MAX */
    size_t n, next;
    uint32_t dim;
    int rc;
} cset;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The set of a text's words (runs of letters, digits and non-ASCII
 * bytes, ASCII lowercased) as sorted unique hashes. */
static int word_set(const char *text, uint64_t **out, size_t *n)
{
    size_t cap = 0, len = strlen(text);
    for (size_t i = 0; i < len; i++)
        cap += !isalnum((unsigned char)text[i]);
    *n = 0;
    *out = dm_malloc((cap + 1) * sizeof **out);
    if (!*out)
        return DM_ENOMEM;
    for (size_t i = 0; i < len;) {
        uint64_t h = HASH_SEED;
        size_t start = i;
        while (i < len && (isalnum((unsigned char)text[i]) || (unsigned char)text[i] >= 0x80))
            h = (h ^ (unsigned char)tolower((unsigned char)text[i++])) * 0x100000001b3ULL;
        if (i > start)
            (*out)[(*n)++] = h;
        else
            i++;
    }
    qsort(*out, *n, sizeof **out, cmp_u64);
    size_t u = 0;
    for (size_t i = 0; i < *n; i++)
        if (!u || (*out)[u - 1] != (*out)[i])
            (*out)[u++] = (*out)[i];
    *n = u;
    return DM_OK;
}

/* |a and b| / |a or b| of two word sets; 1 for two empty ones. */
static double jaccard(const cmem *a, const cmem *b)
{
    size_t i = 0, j = 0, both = 0;
    while (i < a->n_words && j < b->n_words) {
        if (a->words[i] == b->words[j])
            both++, i++, j++;
        else if (a->words[i] < b->words[j])
            i++;
        else
            j++;
    }
    size_t any = a->n_words + b->n_words - both;
    return any ? (double)both / (double)any : 1.0;
}

static int collect(void *arg, const dm_memory *m)
{
    cset *s = arg;
    if (m->state != DM_STATE_ACTIVE || !m->embedding || !m->dim)
        return 0;
    if (!s->dim)
        s->dim = m->dim;
    if (m->dim != s->dim)
        return 0;
    size_t slot = s->n < CONSOLIDATE_MAX ? s->n++ : s->next;
    s->next = (slot + 1) % CONSOLIDATE_MAX;
    cmem *c = &s->m[slot];
    if (!c->vec && !(c->vec = dm_malloc(s->dim * sizeof *c->vec))) {
        s->rc = DM_ENOMEM;
        return 1;
    }
    double norm = 0;
    for (uint32_t i = 0; i < m->dim; i++)
        norm += (double)m->embedding[i] * m->embedding[i];
    norm = norm > 0 ? sqrt(norm) : 1;
    for (uint32_t i = 0; i < m->dim; i++)
        c->vec[i] = (float)(m->embedding[i] / norm);
    dm_free(c->words);
    if (word_set(m->text, &c->words, &c->n_words)) {
        s->rc = DM_ENOMEM;
        return 1;
    }
    c->id = m->id;
    c->salience = m->salience;
    c->time_us = m->event_time_us;
    json_t *meta = json_loads(m->metadata ? m->metadata : "{}", 0, NULL);
    c->type = type_index(memory_type(m, meta));
    json_decref(meta);
    return 0;
}

/* Most salient first, then the newest. */
static int by_salience(const void *a, const void *b)
{
    const cmem *x = a, *y = b;
    if (x->salience != y->salience)
        return x->salience < y->salience ? 1 : -1;
    return x->time_us < y->time_us ? 1 : x->time_us > y->time_us ? -1 : 0;
}

/*
 * consolidate: among the collection's active memories (the newest 2,000),
 * the most salient memory not yet grouped keeps every other ungrouped
 * memory of the same type that is at least `threshold` alike in both
 * meaning and wording -- the cosine similarity of the embeddings and the
 * Jaccard similarity of the word sets -- and those are deleted.  Both,
 * because a deletion cannot be undone: "my friend Ann0 lives in Boston"
 * and "my friend Ann10 lives in Boston" embed alike (names the model does
 * not know weigh nothing) but are two facts.  Grouping around a keeper
 * (not transitively) keeps a chain of small steps from merging memories
 * that are not alike.  consolidated_count = groups merged.
 */
static void h_consolidate(http_req *rq, http_resp *rs)
{
    json_t *b = http_body_object(rq, rs);
    const char *coll = NULL;
    double threshold = 0.8;
    if (!b || !http_fields_known(rq, rs, b, "collection threshold") ||
        !body_collection(rq, rs, b, &coll) ||
        !http_num(rq, rs, b, "threshold", false, 0, 1, &threshold))
        return;
    cset s = {0};
    s.m = dm_calloc(CONSOLIDATE_MAX, sizeof *s.m);
    bool *done = dm_calloc(CONSOLIDATE_MAX, sizeof *done);
    int rc = s.m && done ? dm_export(rq->db, rq->tenant, coll, collect, &s) : DM_ENOMEM;
    if (rc == DM_ECANCELED)
        rc = s.rc;
    uint64_t groups = 0;
    if (!rc)
        qsort(s.m, s.n, sizeof *s.m, by_salience);
    for (size_t i = 0; !rc && i < s.n; i++) {
        if (done[i])
            continue;
        bool merged = false;
        for (size_t j = i + 1; !rc && j < s.n; j++) {
            if (done[j] || s.m[j].type != s.m[i].type)
                continue;
            double dot = 0;
            for (uint32_t d = 0; d < s.dim; d++)
                dot += (double)s.m[i].vec[d] * s.m[j].vec[d];
            if (dot + 1e-6 < threshold || jaccard(&s.m[i], &s.m[j]) + 1e-6 < threshold)
                continue;
            dm_scope sc = {rq->tenant, coll};
            rc = dm_delete(rq->db, &sc, &s.m[j].id);
            if (rc == DM_ENOTFOUND)
                rc = DM_OK; /* deleted meanwhile by another request */
            done[j] = true;
            merged = true;
        }
        groups += merged;
    }
    for (size_t i = 0; s.m && i < CONSOLIDATE_MAX; i++) {
        dm_free(s.m[i].vec);
        dm_free(s.m[i].words);
    }
    dm_free(s.m);
    dm_free(done);
    if (rc) {
        http_fail_dm(rs, rc, "consolidate");
        return;
    }
    reply(rs, json_pack("{s:I}", "consolidated_count", (json_int_t)groups));
}

/* ------------------------------------------------------------ reflect */

typedef struct tally {
    char *name;
    unsigned n;
} tally;

static int by_count(const void *a, const void *b)
{
    const tally *x = a, *y = b;
    if (x->n != y->n)
        return x->n < y->n ? 1 : -1;
    return strcmp(x->name, y->name);
}

/*
 * reflect: over the newest window_size memories, in plain text: the span
 * and the types, the facts they gave (as profile lines), the entities
 * named in two or more of them, and the events they reported.
 */
static void h_reflect(http_req *rq, http_resp *rs)
{
    json_t *b = http_body_object(rq, rs);
    const char *coll = NULL;
    int64_t window = 0;
    if (!b || !http_fields_known(rq, rs, b, "collection window_size") ||
        !body_collection(rq, rs, b, &coll) ||
        !http_int(rq, rs, b, "window_size", false, 0, rq->cfg->max_top_k, &window))
        return;
    if (!window)
        window = 10;
    dm_list_params lp = {.tenant = rq->tenant, .user_id = coll, .limit = (uint32_t)window};
    dm_list_result *lr = NULL;
    dm_graph_result *g = NULL;
    dm_event *ev = NULL;
    size_t n_ev = 0;
    tally *ents = NULL;
    size_t n_ents = 0;
    char *out = NULL;
    size_t len = 0, cap = 0;
    int rc = dm_list(rq->db, &lp, &lr);
    if (rc == DM_ENOTFOUND)
        rc = DM_OK;
    if (rc) {
        http_fail_dm(rs, rc, "reflect");
        return;
    }
    if (!lr || !lr->n) {
        dm_list_result_free(lr);
        char msg[400];
        snprintf(msg, sizeof msg, "No memories in collection \"%s\" to reflect on.", coll);
        reply(rs, json_pack("{s:s}", "reflection", msg));
        return;
    }
#define ADD(...)                                                                                   \
    do {                                                                                           \
        int w_ = snprintf(NULL, 0, __VA_ARGS__);                                                   \
        if (rc || w_ < 0)                                                                          \
            break;                                                                                 \
        if (len + (size_t)w_ + 1 > cap) {                                                          \
            size_t nc = (cap + (size_t)w_ + 1) * 2;                                                \
            char *n_ = dm_realloc(out, nc);                                                        \
            if (!n_) {                                                                             \
                rc = DM_ENOMEM;                                                                    \
                break;                                                                             \
            }                                                                                      \
            out = n_, cap = nc;                                                                    \
        }                                                                                          \
        snprintf(out + len, cap - len, __VA_ARGS__);                                               \
        len += (size_t)w_;                                                                         \
    } while (0)
    char t0[40], t1[40];
    dm_time_format(lr->items[lr->n - 1].event_time_us, t0);
    dm_time_format(lr->items[0].event_time_us, t1);
    unsigned types[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < lr->n; i++) {
        json_t *meta = json_loads(lr->items[i].metadata ? lr->items[i].metadata : "{}", 0, NULL);
        types[type_index(memory_type(&lr->items[i], meta))]++;
        json_decref(meta);
    }
    ADD("Reflection on the last %zu memories of \"%s\" (%s to %s):", lr->n, coll, t0, t1);
    for (int t = 0, first = 1; t < 4; t++) {
        if (types[t]) {
            ADD("%s %u %s", first ? "" : ",", types[t], mem_types[t]);
            first = 0;
        }
    }
    ADD(".\n");
    /* Facts: edges of the graph said by the window's memories. */
    rc = rc ? rc : user_graph(rq, coll, GRAPH_DEPTH, &g);
    size_t n_facts = 0;
    for (size_t e = 0; !rc && g && e < g->n_edges; e++) {
        bool in = false;
        for (size_t i = 0; i < lr->n && !in; i++)
            in = has_source(&g->edges[e], &lr->items[i].id);
        if (!in)
            continue;
        if (!n_facts++)
            ADD("Facts:\n");
        const dm_graph_edge *x = &g->edges[e];
        if (!strcmp(x->src, USER_NODE)) {
            const char *topic, *sub;
            slot_topic(x->rel, &topic, &sub);
            ADD("- %s::%s: %s\n", topic, sub, x->dst);
        } else {
            ADD("- %s: %s = %s\n", x->src, x->rel, x->dst);
        }
    }
    /* Entities named in two or more of the window's memories. */
    for (size_t i = 0; !rc && i < lr->n; i++) {
        dm_graph_result *q = NULL;
        rc = dm_graph_search(rq->db, rq->tenant, coll, lr->items[i].text, &q);
        if (rc == DM_ENOTFOUND)
            rc = DM_OK;
        for (size_t j = 0; !rc && q && j < q->n_nodes; j++) {
            if (!strcmp(q->nodes[j].type, "user"))
                continue;
            size_t k = 0;
            while (k < n_ents && strcmp(ents[k].name, q->nodes[j].name))
                k++;
            if (k < n_ents) {
                ents[k].n++;
                continue;
            }
            tally *ne = dm_realloc(ents, (n_ents + 1) * sizeof *ents);
            char *name = dm_strdup(q->nodes[j].name);
            if (ne)
                ents = ne;
            if (!ne || !name) {
                dm_free(name);
                rc = DM_ENOMEM;
                break;
            }
            ents[n_ents++] = (tally){name, 1};
        }
        dm_graph_result_free(q);
    }
    if (!rc && n_ents)
        qsort(ents, n_ents, sizeof *ents, by_count);
    size_t n_rec = 0;
    for (; !rc && n_rec < n_ents && ents[n_rec].n >= 2 && n_rec < 10; n_rec++)
        ADD("%s%s (%u memories)", n_rec ? ", " : "Recurring: ", ents[n_rec].name, ents[n_rec].n);
    if (n_rec)
        ADD(".\n");
    if (!rc) {
        dm_events_params ep = {.tenant = rq->tenant, .user_id = coll, .limit = 10000};
        rc = dm_events(rq->db, &ep, &ev, &n_ev);
        if (rc == DM_ENOTFOUND)
            rc = DM_OK;
    }
    size_t n_shown = 0;
    for (size_t e = 0; !rc && e < n_ev; e++) {
        bool in = false;
        for (size_t i = 0; i < lr->n && !in; i++)
            in = id_eq(&ev[e].source, &lr->items[i].id);
        if (!in)
            continue;
        char t[40];
        dm_time_format(ev[e].from_us, t);
        t[10] = 0;
        if (!n_shown++)
            ADD("Events:\n");
        ADD("- %s: %s (%s)\n", t, ev[e].what,
            (unsigned)ev[e].type < 5 ? event_types[ev[e].type] : "activity");
    }
    if (!rc && !n_facts && !n_shown && !n_rec)
        ADD("No facts, recurring entities or events stand out.\n");
#undef ADD
    if (!rc)
        reply(rs, json_pack("{s:s}", "reflection", out));
    else
        http_fail_dm(rs, rc, "reflect");
    for (size_t k = 0; k < n_ents; k++)
        dm_free(ents[k].name);
    dm_free(ents);
    dm_free(out);
    dm_events_free(ev, n_ev);
    dm_graph_result_free(g);
    dm_list_result_free(lr);
}

/* -------------------------------------------------------------- stats */

static int count_one(void *arg, const dm_memory *m)
{
    (void)m;
    (*(uint64_t *)arg)++;
    return 0;
}

/*
 * stats: memory_count = the collection's memories (active and archived),
 * vector_count the same (each has its embedding), fact_count = the user's
 * current facts, profile_count = those recall shows (confidence >= 0.5),
 * concept_count / relation_count = the nodes (less the user's own) and
 * edges of the graph the user's node reaches, event_count = the events.
 */
static void h_stats(http_req *rq, http_resp *rs)
{
    const char *coll = query_collection(rq);
    uint64_t n_mem = 0;
    dm_fact *f = NULL;
    size_t n_facts = 0, n_prof = 0;
    dm_graph_result *g = NULL;
    dm_event *ev = NULL;
    size_t n_ev = 0;
    int rc = dm_export(rq->db, rq->tenant, coll, count_one, &n_mem);
    if (!rc)
        rc = profile_facts(rq, coll, -1, &f, &n_facts);
    for (size_t i = 0; i < n_facts; i++)
        n_prof += f[i].confidence >= DM_PROFILE_MIN_CONFIDENCE;
    if (!rc)
        rc = user_graph(rq, coll, GRAPH_DEPTH, &g);
    if (!rc) {
        dm_events_params ep = {.tenant = rq->tenant, .user_id = coll, .limit = 1000000};
        rc = dm_events(rq->db, &ep, &ev, &n_ev);
        if (rc == DM_ENOTFOUND)
            rc = DM_OK;
    }
    size_t n_nodes = 0;
    for (size_t i = 0; g && i < g->n_nodes; i++)
        n_nodes += strcmp(g->nodes[i].type, "user") != 0;
    if (rc)
        http_fail_dm(rs, rc, "stats");
    else
        reply(rs, json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "memory_count",
                            (json_int_t)n_mem, "fact_count", (json_int_t)n_facts, "concept_count",
                            (json_int_t)n_nodes, "relation_count", (json_int_t)(g ? g->n_edges : 0),
                            "vector_count", (json_int_t)n_mem, "profile_count", (json_int_t)n_prof,
                            "event_count", (json_int_t)n_ev));
    dm_events_free(ev, n_ev);
    dm_graph_result_free(g);
    dm_facts_free(f, n_facts);
}

/* -------------------------------------------------------------- graph */

static void h_graph(http_req *rq, http_resp *rs)
{
    const char *coll = query_collection(rq);
    dm_graph_result *g = NULL;
    int rc = user_graph(rq, coll, GRAPH_DEPTH, &g);
    if (rc) {
        http_fail_dm(rs, rc, "graph");
        return;
    }
    json_t *nodes = json_array(), *edges = json_array();
    bool ok = nodes && edges;
    for (size_t i = 0; ok && g && i < g->n_nodes; i++)
        ok = !json_array_append_new(
            nodes, json_pack("{s:s, s:s, s:s, s:s, s:o}", "id", g->nodes[i].name, "name",
                             g->nodes[i].name, "node_type", "concept", "concept_type",
                             g->nodes[i].type, "salience", num(g->nodes[i].score)));
    for (size_t i = 0; ok && g && i < g->n_edges; i++)
        ok = !json_array_append_new(
            edges, json_pack("{s:s, s:s, s:s, s:o}", "from", g->edges[i].src, "to", g->edges[i].dst,
                             "relation_type", g->edges[i].rel, "weight", num(g->edges[i].weight)));
    dm_graph_result_free(g);
    if (!ok) {
        json_decref(nodes);
        json_decref(edges);
        oom(rs);
        return;
    }
    reply(rs, json_pack("{s:o, s:o}", "nodes", nodes, "edges", edges));
}

/* -------------------------------------------------------------- purge */

static void h_purge(http_req *rq, http_resp *rs)
{
    const char *coll = query_collection(rq);
    uint64_t n = 0;
    int rc = dm_erase_user(rq->db, rq->tenant, coll, &n);
    if (rc == DM_ENOTFOUND)
        n = 0;
    else if (rc) {
        http_fail_dm(rs, rc, "purge");
        return;
    }
    reply(rs, json_pack("{s:I}", "deleted_count", (json_int_t)n));
}

/* -------------------------------------------------------- collections */

typedef struct names {
    json_t *arr;
    char last[DM_MAX_NAME_LEN + 1];
} names;

static int add_name(void *arg, const dm_memory *m)
{
    names *n = arg;
    if (!strcmp(n->last, m->user_id))
        return 0;
    snprintf(n->last, sizeof n->last, "%s", m->user_id);
    return json_array_append_new(n->arr, json_string(m->user_id)) ? 1 : 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

/*
 * collections: the engine has no listing of users, so this reads the
 * tenant's memories in key order (one user's memories are contiguous)
 * and keeps each user once, sorted by name.  It costs a pass over the
 * tenant's memories; an optional extra of the SDK's examples, not a call
 * of the SDKs.
 */
static void h_collections(http_req *rq, http_resp *rs)
{
    names n = {.arr = json_array()};
    if (!n.arr) {
        oom(rs);
        return;
    }
    int rc = dm_export(rq->db, rq->tenant, NULL, add_name, &n);
    if (rc) {
        json_decref(n.arr);
        if (rc == DM_ECANCELED)
            oom(rs);
        else
            http_fail_dm(rs, rc, "collections");
        return;
    }
    size_t cnt = json_array_size(n.arr);
    json_t **v = dm_malloc((cnt ? cnt : 1) * sizeof *v);
    json_t *sorted = json_array();
    if (!v || !sorted) {
        dm_free(v);
        json_decref(sorted);
        json_decref(n.arr);
        oom(rs);
        return;
    }
    for (size_t i = 0; i < cnt; i++)
        v[i] = json_array_get(n.arr, i);
    qsort(v, cnt, sizeof *v, by_name);
    for (size_t i = 0; i < cnt; i++)
        json_array_append(sorted, v[i]);
    dm_free(v);
    json_decref(n.arr);
    reply(rs, json_pack("{s:o}", "collections", sorted));
}

/* ------------------------------------------------------------- routes */

const http_route http_routes_dm[] = {
    {"POST", "/v1/ingest", HTTP_DELTAMEMORY, h_ingest, "dm_ingest", false, true},
    {"POST", "/v1/recall", HTTP_DELTAMEMORY, h_recall, "dm_recall", false, false},
    {"POST", "/v1/store", HTTP_DELTAMEMORY, h_store, "dm_store", false, true},
    {"GET", "/v1/memory/{}/{}", HTTP_DELTAMEMORY, h_get, "dm_get", false, false},
    {"DELETE", "/v1/memory/{}/{}", HTTP_DELTAMEMORY, h_delete, "dm_delete", false, true},
    {"POST", "/v1/decay", HTTP_DELTAMEMORY, h_decay, "dm_decay", false, false},
    {"POST", "/v1/consolidate", HTTP_DELTAMEMORY, h_consolidate, "dm_consolidate", false, false},
    {"POST", "/v1/reflect", HTTP_DELTAMEMORY, h_reflect, "dm_reflect", false, false},
    {"GET", "/v1/stats", HTTP_DELTAMEMORY, h_stats, "dm_stats", false, false},
    {"GET", "/v1/graph", HTTP_DELTAMEMORY, h_graph, "dm_graph", false, false},
    {"DELETE", "/v1/purge", HTTP_DELTAMEMORY, h_purge, "dm_purge", false, false},
    {"GET", "/v1/collections", HTTP_DELTAMEMORY, h_collections, "dm_collections", false, false},
    {0},
};
