/*
 * test_http_dm.c -- conformance of the DeltaMemory dialect with what the
 * DeltaMemory SDKs send and expect (the wire contract of their clients
 * and the expectations of the SDK's own test suite): paths, bodies, the
 * exact key sets the Python client needs (it builds nested objects with
 * Cls(**dict), so one key too many or too few is an error), metadata
 * round trips, epoch-millisecond times, the error bodies, and what
 * decay, consolidate, reflect, stats, graph and purge really do.
 */
// ctest-timeout: 120
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "srvtest.h"
#include "testutil.h"

/* Assert that obj has exactly the keys in the space-separated list; a key
 * ending in '?' may be absent. */
static void assert_keys(const json_t *obj, const char *keys, const char *what)
{
    if (!json_is_object(obj))
        fail_msg("%s: not an object", what);
    size_t n_required = 0, n_present = 0;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", keys);
    for (char *save = NULL, *k = strtok_r(buf, " ", &save); k; k = strtok_r(NULL, " ", &save)) {
        size_t l = strlen(k);
        bool optional = k[l - 1] == '?';
        if (optional)
            k[l - 1] = 0;
        bool has = json_object_get(obj, k) != NULL;
        if (!has && !optional) {
            char *d = json_dumps(obj, JSON_COMPACT);
            fail_msg("%s: key \"%s\" missing in %s", what, k, d);
        }
        n_required += !optional;
        n_present += has;
    }
    if (json_object_size(obj) != n_present) {
        char *d = json_dumps(obj, JSON_COMPACT);
        fail_msg("%s: extra keys beyond \"%s\" in %s", what, keys, d);
    }
    (void)n_required;
}

static void assert_each_keys(const json_t *arr, const char *keys, const char *what)
{
    assert_true(json_is_array(arr));
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        assert_keys(v, keys, what);
    }
}

/* A DeltaMemory error: status, code and (if given) the exact message. */
static void expect_dm_error(const st_server *s, const char *method, const char *path,
                            const char *body, long status, const char *code, const char *msg)
{
    st_resp r = st_call(s, method, path, body, NULL);
    if (r.status != status)
        fail_msg("%s %s: status %ld, want %ld: %s", method, path, r.status, status, r.body);
    assert_non_null(r.json);
    assert_keys(r.json, "error code", "error body");
    assert_string_equal(json_string_value(json_object_get(r.json, "code")), code);
    if (msg)
        assert_string_equal(json_string_value(json_object_get(r.json, "error")), msg);
    st_resp_free(&r);
}

static char *store(const st_server *s, const char *coll, const char *content, const char *type,
                   const char *meta)
{
    char body[1024];
    snprintf(body, sizeof body,
             "{\"collection\":\"%s\",\"content\":\"%s\",\"memory_type\":\"%s\",\"metadata\":%s}",
             coll, content, type, meta ? meta : "{}");
    json_t *j = st_json(s, "POST", "/v1/store", body, 200);
    assert_keys(j, "id", "store response");
    char *id = strdup(json_string_value(json_object_get(j, "id")));
    json_decref(j);
    return id;
}

static json_t *get_memory(const st_server *s, const char *coll, const char *id)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/memory/%s/%s", coll, id);
    json_t *j = st_json(s, "GET", path, NULL, 200);
    assert_keys(j, "id collection content memory_type salience timestamp metadata", "memory");
    return j;
}

static json_int_t stat_of(const st_server *s, const char *coll, const char *key)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/stats?collection=%s", coll);
    json_t *j = st_json(s, "GET", path, NULL, 200);
    assert_keys(j,
                "memory_count fact_count concept_count relation_count vector_count "
                "profile_count event_count",
                "stats");
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v) {
        assert_true(json_is_integer(v));
    }
    json_int_t n = json_integer_value(json_object_get(j, key));
    json_decref(j);
    return n;
}

/* §2.8 (1): health without a key. */
static void test_health(void **state)
{
    (void)state;
    st_server s;
    st_start(&s, "http_dm_health", NULL);
    json_t *j = st_json(&s, "GET", "/v1/health", NULL, 200);
    assert_true(json_is_true(json_object_get(j, "healthy")));
    assert_true(json_is_string(json_object_get(j, "version")));
    json_decref(j);
    st_stop(&s, false);
}

/* §2.8 (2), (3): store, get (exact metadata, type, collection), delete,
 * and the 404 shapes. */
static void test_store_get_delete(void **state)
{
    (void)state;
    st_server s;
    st_start(&s, "http_dm_store", NULL);
    int64_t before_ms = (int64_t)time(NULL) * 1000 - 5000;
    const char *meta = "{\"source\":\"unit test\",\"n\":\"1\",\"empty\":\"\",\"ü\":\"ä\"}";
    char *id = store(&s, "coll a", "Remember the milk", "Fact", meta);
    json_t *m = get_memory(&s, "coll%20a", id);
    assert_string_equal(json_string_value(json_object_get(m, "id")), id);
    assert_string_equal(json_string_value(json_object_get(m, "collection")), "coll a");
    assert_string_equal(json_string_value(json_object_get(m, "content")), "Remember the milk");
    assert_string_equal(json_string_value(json_object_get(m, "memory_type")), "Fact");
    assert_true(json_is_number(json_object_get(m, "salience")));
    json_int_t ts = json_integer_value(json_object_get(m, "timestamp"));
    assert_true(ts >= before_ms && ts <= before_ms + 60000); /* epoch ms */
    json_t *want = json_loads(meta, 0, NULL);
    assert_true(json_equal(json_object_get(m, "metadata"), want));
    json_decref(want);
    json_decref(m);

    /* Every type is kept; the default is Conversation; empty metadata. */
    const char *types[] = {"Conversation", "Insight", "Summary"};
    for (int i = 0; i < 3; i++) {
        char *id2 = store(&s, "c2", "A note about the garden", types[i], NULL);
        json_t *m2 = get_memory(&s, "c2", id2);
        assert_string_equal(json_string_value(json_object_get(m2, "memory_type")), types[i]);
        assert_int_equal(json_object_size(json_object_get(m2, "metadata")), 0);
        json_decref(m2);
        free(id2);
    }
    json_t *j =
        st_json(&s, "POST", "/v1/store", "{\"collection\":\"c2\",\"content\":\"x y\"}", 200);
    json_t *m3 = get_memory(&s, "c2", json_string_value(json_object_get(j, "id")));
    assert_string_equal(json_string_value(json_object_get(m3, "memory_type")), "Conversation");
    json_decref(m3);
    json_decref(j);

    /* Bad input: 400 INVALID_REQUEST, and nothing stored. */
    json_int_t n = stat_of(&s, "c2", "memory_count");
    assert_int_equal(n, 4);
    expect_dm_error(&s, "POST", "/v1/store",
                    "{\"collection\":\"c2\",\"content\":\"x\",\"memory_type\":\"Episode\"}", 400,
                    "INVALID_REQUEST", NULL);
    expect_dm_error(&s, "POST", "/v1/store",
                    "{\"collection\":\"c2\",\"content\":\"x\",\"metadata\":{\"_memory_type\":"
                    "\"Fact\"}}",
                    400, "INVALID_REQUEST", NULL);
    expect_dm_error(&s, "POST", "/v1/store", "{\"collection\":\"c2\"}", 400, "INVALID_REQUEST",
                    NULL);
    expect_dm_error(&s, "POST", "/v1/store", "{\"collection\":\"c2\",\"content\":7}", 400,
                    "INVALID_REQUEST", NULL);
    expect_dm_error(&s, "POST", "/v1/store", "{\"content\":\"x\",\"metadata\":[1]}", 400,
                    "INVALID_REQUEST", NULL);
    assert_int_equal(stat_of(&s, "c2", "memory_count"), n);

    /* Another collection does not see the memory. */
    char path[256], msg[128];
    snprintf(msg, sizeof msg, "Memory not found: %s", id);
    snprintf(path, sizeof path, "/v1/memory/c2/%s", id);
    expect_dm_error(&s, "GET", path, NULL, 404, "MEMORY_NOT_FOUND", msg);
    expect_dm_error(&s, "DELETE", path, NULL, 404, "MEMORY_NOT_FOUND", msg);
    snprintf(path, sizeof path, "/v1/memory/nosuchcollection/%s", id);
    expect_dm_error(&s, "GET", path, NULL, 404, "MEMORY_NOT_FOUND", msg);
    expect_dm_error(&s, "GET", "/v1/memory/c2/not-a-uuid", NULL, 404, "MEMORY_NOT_FOUND",
                    "Memory not found: not-a-uuid");
    expect_dm_error(&s, "DELETE", "/v1/memory/c2/not-a-uuid", NULL, 404, "MEMORY_NOT_FOUND",
                    "Memory not found: not-a-uuid");

    /* Delete: {"success": true}, then 404 for get and delete. */
    snprintf(path, sizeof path, "/v1/memory/coll%%20a/%s", id);
    j = st_json(&s, "DELETE", path, NULL, 200);
    assert_true(json_is_true(json_object_get(j, "success")));
    json_decref(j);
    expect_dm_error(&s, "GET", path, NULL, 404, "MEMORY_NOT_FOUND", msg);
    expect_dm_error(&s, "DELETE", path, NULL, 404, "MEMORY_NOT_FOUND", msg);
    const char *unknown = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
    snprintf(path, sizeof path, "/v1/memory/c2/%s", unknown);
    snprintf(msg, sizeof msg, "Memory not found: %s", unknown);
    expect_dm_error(&s, "DELETE", path, NULL, 404, "MEMORY_NOT_FOUND", msg);
    free(id);
    st_stop(&s, false);
}

/* §2.8 (4): ingest gives memory ids, real facts and concepts with their
 * exact key sets; speaker and datetime come from the metadata. */
static void test_ingest(void **state)
{
    (void)state;
    st_server s;
    st_start(&s, "http_dm_ingest", NULL);
    json_t *j = st_json(&s, "POST", "/v1/ingest",
                        "{\"collection\":\"u1\",\"content\":\"I work at Acme Corp and I live in "
                        "Boston.\",\"metadata\":{\"speaker\":\"user\",\"datetime\":"
                        "\"2024-05-08T10:00:00Z\",\"k\":\"v\"}}",
                        200);
    assert_keys(j, "memory_ids facts concepts", "ingest");
    json_t *ids = json_object_get(j, "memory_ids");
    assert_true(json_array_size(ids) >= 1);
    json_t *facts = json_object_get(j, "facts"), *concepts = json_object_get(j, "concepts");
    assert_each_keys(facts, "fact confidence", "fact");
    assert_each_keys(concepts, "name type importance", "ingest concept");
    bool employer = false, acme = false;
    size_t i;
    json_t *v;
    json_array_foreach(facts, i, v) {
        assert_true(json_is_number(json_object_get(v, "confidence")));
        employer |= strstr(json_string_value(json_object_get(v, "fact")), "work.employer") &&
                    strstr(json_string_value(json_object_get(v, "fact")), "Acme");
    }
    json_array_foreach(concepts, i, v) {
        acme |= strstr(json_string_value(json_object_get(v, "name")), "Acme") != NULL;
        assert_true(json_is_string(json_object_get(v, "type")));
        assert_true(json_is_number(json_object_get(v, "importance")));
    }
    assert_true(employer);
    assert_true(acme);
    json_t *m = get_memory(&s, "u1", json_string_value(json_array_get(ids, 0)));
    assert_int_equal(json_integer_value(json_object_get(m, "timestamp")), 1715162400000LL);
    assert_string_equal(json_string_value(json_object_get(m, "memory_type")), "Conversation");
    json_t *want = json_loads("{\"speaker\":\"user\",\"datetime\":\"2024-05-08T10:00:00Z\","
                              "\"k\":\"v\"}",
                              0, NULL);
    assert_true(json_equal(json_object_get(m, "metadata"), want));
    json_decref(want);
    json_decref(m);
    json_decref(j);

    /* A turn with nothing to extract still answers with arrays. */
    j = st_json(&s, "POST", "/v1/ingest", "{\"collection\":\"u1\",\"content\":\"ok\"}", 200);
    assert_int_equal(json_array_size(json_object_get(j, "memory_ids")), 1);
    assert_true(json_is_array(json_object_get(j, "facts")));
    assert_true(json_is_array(json_object_get(j, "concepts")));
    json_decref(j);

    expect_dm_error(&s, "POST", "/v1/ingest",
                    "{\"collection\":\"u1\",\"content\":\"x\",\"metadata\":{\"datetime\":"
                    "\"yesterday-ish\"}}",
                    400, "INVALID_REQUEST", NULL);
    expect_dm_error(&s, "POST", "/v1/ingest", "{\"collection\":\"u1\",\"content\":\"\"}", 400,
                    "INVALID_REQUEST", NULL);
    expect_dm_error(&s, "POST", "/v1/ingest", NULL, 400, "INVALID_REQUEST", NULL);
    assert_int_equal(stat_of(&s, "u1", "memory_count"), 2);
    st_stop(&s, false);
}

static json_t *recall(const st_server *s, const char *body)
{
    json_t *j = st_json(s, "POST", "/v1/recall", body, 200);
    assert_keys(j, "results concepts graph_knowledge profiles events context", "recall");
    assert_each_keys(json_object_get(j, "results"),
                     "memory similarity recency salience cognitive_score", "result");
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(j, "results"), i, v) {
        assert_keys(json_object_get(v, "memory"),
                    "id collection content memory_type salience timestamp metadata", "memory");
        assert_true(json_is_number(json_object_get(v, "cognitive_score")));
    }
    assert_each_keys(json_object_get(j, "concepts"), "id name concept_type relevance relations",
                     "recall concept");
    json_array_foreach(json_object_get(j, "concepts"), i, v) {
        assert_each_keys(json_object_get(v, "relations"), "target_name relation_type weight",
                         "relation");
    }
    assert_each_keys(json_object_get(j, "graph_knowledge"),
                     "path statement confidence hops source_concept", "graph_knowledge");
    assert_each_keys(json_object_get(j, "profiles"),
                     "id topic sub_topic content confidence updated_at", "profile");
    assert_each_keys(json_object_get(j, "events"), "id gist event_type mentioned_at tags event_at?",
                     "event");
    const char *ctx = json_string_value(json_object_get(j, "context"));
    assert_non_null(ctx);
    assert_true(!strncmp(ctx, "# User Memory\n\n## User Profile\n", 31));
    return j;
}

static bool has_type_only(const json_t *j, const char *a, const char *b)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(j, "results"), i, v) {
        const char *t =
            json_string_value(json_object_get(json_object_get(v, "memory"), "memory_type"));
        if (strcmp(t, a) && (!b || strcmp(t, b)))
            return false;
    }
    return true;
}

/* §2.8 (5): recall's shapes, limits, weights and memory types. */
static void test_recall(void **state)
{
    (void)state;
    st_server s;
    st_start(&s, "http_dm_recall", NULL);
    const char *turns[] = {
        "I work at Acme Corp as a software programmer.",
        "My sister Ann lives in Boston.",
        "I went to a jazz concert last Saturday with my brother.",
        "I love pizza and pasta for dinner.",
    };
    for (size_t i = 0; i < 4; i++) {
        char body[512];
        snprintf(body, sizeof body,
                 "{\"collection\":\"r\",\"content\":\"%s\",\"metadata\":{\"speaker\":\"user\","
                 "\"datetime\":\"2024-05-0%zuT10:00:00Z\"}}",
                 turns[i], i + 4);
        json_decref(st_json(&s, "POST", "/v1/ingest", body, 200));
    }
    free(store(&s, "r", "The user prefers code reviews in the morning", "Fact", NULL));
    free(store(&s, "r", "A summary of the dinner and pizza talks", "Summary", NULL));
    free(store(&s, "r", "The user seems to enjoy music and jazz", "Insight", NULL));

    json_t *j = recall(&s, "{\"collection\":\"r\",\"query\":\"where does the user work?\","
                           "\"limit\":2}");
    assert_true(json_array_size(json_object_get(j, "results")) <= 2);
    assert_true(json_array_size(json_object_get(j, "results")) >= 1);
    /* The profile is real and mapped onto the SDK's topics. */
    bool company = false;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(j, "profiles"), i, v) {
        company |= !strcmp(json_string_value(json_object_get(v, "topic")), "work") &&
                   !strcmp(json_string_value(json_object_get(v, "sub_topic")), "company") &&
                   strstr(json_string_value(json_object_get(v, "content")), "Acme");
        assert_true(json_integer_value(json_object_get(v, "updated_at")) > 1000000000000LL);
    }
    assert_true(company);
    assert_non_null(
        strstr(json_string_value(json_object_get(j, "context")), "- work::company: Acme"));
    /* "work" asks about work.employer: graph knowledge from the user. */
    bool path = false;
    json_array_foreach(json_object_get(j, "graph_knowledge"), i, v) {
        path |= strstr(json_string_value(json_object_get(v, "path")), "-[work.employer]->") != NULL;
        assert_true(json_integer_value(json_object_get(v, "hops")) >= 1);
    }
    assert_true(path);
    json_decref(j);

    /* Two hops: the sister, then where she lives; nothing about work. */
    j = recall(&s, "{\"collection\":\"r\",\"query\":\"where does my sister live?\"}");
    bool two_hops = false;
    json_array_foreach(json_object_get(j, "graph_knowledge"), i, v) {
        const char *p = json_string_value(json_object_get(v, "path"));
        assert_null(strstr(p, "work."));
        if (!strcmp(p, "user -[family.sister]-> Ann -[lives_in]-> Boston")) {
            two_hops = true;
            assert_int_equal(json_integer_value(json_object_get(v, "hops")), 2);
            assert_string_equal(json_string_value(json_object_get(v, "statement")),
                                "Ann lives in Boston");
        }
    }
    assert_true(two_hops);
    json_decref(j);

    /* A concept the query names, with its relations. */
    j = recall(&s, "{\"collection\":\"r\",\"query\":\"What about Ann?\"}");
    bool ann = false;
    json_array_foreach(json_object_get(j, "concepts"), i, v) {
        ann |= !strcmp(json_string_value(json_object_get(v, "name")), "Ann") &&
               json_array_size(json_object_get(v, "relations")) >= 1;
    }
    assert_true(ann);
    assert_true(json_array_size(json_object_get(j, "results")) <= 10);
    json_decref(j);

    /* Events come from the recalled turns, times in epoch ms. */
    j = recall(&s, "{\"collection\":\"r\",\"query\":\"jazz concert\",\"limit\":3}");
    bool concert = false;
    json_array_foreach(json_object_get(j, "events"), i, v) {
        concert |= strstr(json_string_value(json_object_get(v, "gist")), "concert") != NULL;
        assert_true(json_integer_value(json_object_get(v, "mentioned_at")) ==
                    1715162400000LL - 86400000LL * 2);
    }
    assert_true(concert);
    json_decref(j);

    /* Weights: any subset; memory_types: [] and lists. */
    const char *bodies[] = {
        "{\"collection\":\"r\",\"query\":\"pizza\",\"weights\":{\"similarity\":1}}",
        "{\"collection\":\"r\",\"query\":\"pizza\",\"weights\":{\"recency\":0.5,\"salience\":0.5}}",
        ("{\"collection\":\"r\",\"query\":\"pizza\",\"weights\":{\"similarity\":0.5,"
         "\"recency\":0.3,\"salience\":0.2}}"),
        "{\"collection\":\"r\",\"query\":\"pizza\",\"weights\":{}}",
        "{\"collection\":\"r\",\"query\":\"pizza\",\"memory_types\":[]}",
    };
    for (size_t b = 0; b < sizeof bodies / sizeof bodies[0]; b++) {
        j = recall(&s, bodies[b]);
        assert_true(json_array_size(json_object_get(j, "results")) >= 1);
        json_decref(j);
    }
    j = recall(&s, "{\"collection\":\"r\",\"query\":\"pizza dinner music code\",\"limit\":20,"
                   "\"memory_types\":[\"Fact\"]}");
    assert_int_equal(json_array_size(json_object_get(j, "results")), 1);
    assert_true(has_type_only(j, "Fact", NULL));
    json_decref(j);
    j = recall(&s, "{\"collection\":\"r\",\"query\":\"pizza dinner music jazz\",\"limit\":20,"
                   "\"memory_types\":[\"Summary\",\"Insight\"]}");
    assert_int_equal(json_array_size(json_object_get(j, "results")), 2);
    assert_true(has_type_only(j, "Summary", "Insight"));
    json_decref(j);
    j = recall(&s, "{\"collection\":\"r\",\"query\":\"pizza dinner jazz\",\"limit\":20,"
                   "\"memory_types\":[\"Conversation\"]}");
    assert_true(json_array_size(json_object_get(j, "results")) >= 2);
    assert_true(has_type_only(j, "Conversation", NULL));
    json_decref(j);

    /* An unknown collection recalls nothing, without an error. */
    j = recall(&s, "{\"collection\":\"nobody\",\"query\":\"pizza\"}");
    assert_int_equal(json_array_size(json_object_get(j, "results")), 0);
    json_decref(j);

    expect_dm_error(&s, "POST", "/v1/recall",
                    "{\"collection\":\"r\",\"query\":\"x\",\"limit\":1001}", 422, "INVALID_REQUEST",
                    NULL);
    expect_dm_error(&s, "POST", "/v1/recall", "{\"collection\":\"r\",\"query\":\"x\",\"limit\":-1}",
                    422, "INVALID_REQUEST", NULL);
    expect_dm_error(&s, "POST", "/v1/recall",
                    "{\"collection\":\"r\",\"query\":\"x\",\"weights\":{\"recency\":-1}}", 422,
                    "INVALID_REQUEST", NULL);
    expect_dm_error(&s, "POST", "/v1/recall",
                    "{\"collection\":\"r\",\"query\":\"x\",\"memory_types\":[\"Episode\"]}", 400,
                    "INVALID_REQUEST", NULL);
    expect_dm_error(&s, "POST", "/v1/recall", "{\"collection\":\"r\"}", 400, "INVALID_REQUEST",
                    NULL);
    st_stop(&s, false);
}

/* §2.8 (6), (7): stats, decay, graph, purge. */
static void test_stats_graph_purge(void **state)
{
    (void)state;
    st_server s;
    st_start(&s, "http_dm_stats", NULL);
    /* An unknown collection: zeros and empty arrays. */
    const char *zero[] = {"memory_count", "fact_count",    "concept_count", "relation_count",
                          "vector_count", "profile_count", "event_count"};
    for (size_t i = 0; i < 7; i++)
        assert_int_equal(stat_of(&s, "none", zero[i]), 0);
    json_t *j = st_json(&s, "GET", "/v1/graph?collection=none", NULL, 200);
    assert_keys(j, "nodes edges", "graph");
    assert_int_equal(json_array_size(json_object_get(j, "nodes")), 0);
    json_decref(j);
    j = st_json(&s, "DELETE", "/v1/purge?collection=none", NULL, 200);
    assert_int_equal(json_integer_value(json_object_get(j, "deleted_count")), 0);
    json_decref(j);
    j = st_json(&s, "POST", "/v1/decay", "{\"collection\":\"none\",\"rate\":0.1}", 200);
    assert_keys(j, "affected_count", "decay");
    assert_int_equal(json_integer_value(json_object_get(j, "affected_count")), 0);
    json_decref(j);

    json_decref(st_json(&s, "POST", "/v1/ingest",
                        "{\"collection\":\"my coll\",\"content\":\"My sister Ann works at Globex. "
                        "I went hiking last Saturday.\",\"metadata\":{}}",
                        200));
    free(store(&s, "my coll", "First stored memory", "Conversation", NULL));
    assert_int_equal(stat_of(&s, "my+coll", "memory_count"), 2);
    assert_int_equal(stat_of(&s, "my%20coll", "vector_count"), 2);
    assert_true(stat_of(&s, "my+coll", "fact_count") >= 1);
    assert_true(stat_of(&s, "my+coll", "concept_count") >= 1);
    assert_true(stat_of(&s, "my+coll", "relation_count") >= 1);
    assert_true(stat_of(&s, "my+coll", "event_count") >= 1);

    j = st_json(&s, "GET", "/v1/graph?collection=my+coll", NULL, 200);
    assert_keys(j, "nodes edges", "graph");
    assert_each_keys(json_object_get(j, "nodes"), "id name node_type concept_type? salience?",
                     "node");
    assert_each_keys(json_object_get(j, "edges"), "from to relation_type weight", "edge");
    assert_true(json_array_size(json_object_get(j, "edges")) >= 1);
    /* Every edge joins two listed nodes. */
    size_t i, k;
    json_t *e, *n;
    json_array_foreach(json_object_get(j, "edges"), i, e) {
        int ends = 0;
        json_array_foreach(json_object_get(j, "nodes"), k, n) {
            const char *id = json_string_value(json_object_get(n, "id"));
            ends += !strcmp(id, json_string_value(json_object_get(e, "from")));
            ends += !strcmp(id, json_string_value(json_object_get(e, "to")));
        }
        assert_int_equal(ends, 2);
    }
    json_decref(j);

    j = st_json(&s, "POST", "/v1/decay", "{\"collection\":\"my coll\",\"rate\":0.1}", 200);
    assert_int_equal(json_integer_value(json_object_get(j, "affected_count")), 0);
    json_decref(j);
    expect_dm_error(&s, "POST", "/v1/decay", "{\"collection\":\"my coll\",\"rate\":2}", 422,
                    "INVALID_REQUEST", NULL);

    j = st_json(&s, "DELETE", "/v1/purge?collection=my+coll", NULL, 200);
    assert_keys(j, "deleted_count", "purge");
    assert_int_equal(json_integer_value(json_object_get(j, "deleted_count")), 2);
    json_decref(j);
    for (size_t z = 0; z < 7; z++)
        assert_int_equal(stat_of(&s, "my+coll", zero[z]), 0);
    st_stop(&s, false);
}

/* consolidate merges two near-identical memories and keeps a different
 * one; reflect describes the window; collections lists them. */
static void test_consolidate_reflect(void **state)
{
    (void)state;
    st_server s;
    st_start(&s, "http_dm_consolidate", NULL);
    char *a = store(&s, "c", "I love pizza and pasta for dinner", "Conversation", NULL);
    char *b = store(&s, "c", "i love pizza and pasta for dinner!", "Conversation", NULL);
    char *c = store(&s, "c", "The flight to the airport hotel was long", "Conversation", NULL);
    char *d = store(&s, "c", "I love pizza and pasta for dinner", "Fact", NULL);
    free(store(&s, "other", "I love pizza and pasta for dinner", "Conversation", NULL));
    json_t *j =
        st_json(&s, "POST", "/v1/consolidate", "{\"collection\":\"c\",\"threshold\":0.95}", 200);
    assert_keys(j, "consolidated_count", "consolidate");
    assert_int_equal(json_integer_value(json_object_get(j, "consolidated_count")), 1);
    json_decref(j);
    assert_int_equal(stat_of(&s, "c", "memory_count"), 3);
    assert_int_equal(stat_of(&s, "other", "memory_count"), 1);
    /* One of the pair is left; the different one and the Fact stay. */
    char path[256];
    int left = 0;
    const char *pair[] = {a, b};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "/v1/memory/c/%s", pair[i]);
        st_resp r = st_call(&s, "GET", path, NULL, NULL);
        left += r.status == 200;
        st_resp_free(&r);
    }
    assert_int_equal(left, 1);
    json_decref(get_memory(&s, "c", c));
    json_decref(get_memory(&s, "c", d));
    j = st_json(&s, "POST", "/v1/consolidate", "{\"collection\":\"c\",\"threshold\":0.95}", 200);
    assert_int_equal(json_integer_value(json_object_get(j, "consolidated_count")), 0);
    json_decref(j);
    j = st_json(&s, "POST", "/v1/consolidate", "{\"collection\":\"nobody\"}", 200);
    assert_int_equal(json_integer_value(json_object_get(j, "consolidated_count")), 0);
    json_decref(j);
    expect_dm_error(&s, "POST", "/v1/consolidate", "{\"collection\":\"c\",\"threshold\":\"high\"}",
                    400, "INVALID_REQUEST", NULL);

    /* Alike in meaning but not in wording: two facts, kept at 0.9; at
     * 0.7 both similarities pass (5 of 7 words shared). */
    free(store(&s, "pets", "My dog Rex loves the vet", "Conversation", NULL));
    free(store(&s, "pets", "My dog Max loves the vet", "Conversation", NULL));
    j = st_json(&s, "POST", "/v1/consolidate", "{\"collection\":\"pets\",\"threshold\":0.9}", 200);
    assert_int_equal(json_integer_value(json_object_get(j, "consolidated_count")), 0);
    json_decref(j);
    assert_int_equal(stat_of(&s, "pets", "memory_count"), 2);
    j = st_json(&s, "POST", "/v1/consolidate", "{\"collection\":\"pets\",\"threshold\":0.7}", 200);
    assert_int_equal(json_integer_value(json_object_get(j, "consolidated_count")), 1);
    json_decref(j);
    assert_int_equal(stat_of(&s, "pets", "memory_count"), 1);

    /* reflect */
    json_decref(st_json(&s, "POST", "/v1/ingest",
                        "{\"collection\":\"c\",\"content\":\"My sister Ann lives in Boston.\"}",
                        200));
    json_decref(st_json(&s, "POST", "/v1/ingest",
                        "{\"collection\":\"c\",\"content\":\"Ann visited me last week.\"}", 200));
    j = st_json(&s, "POST", "/v1/reflect", "{\"collection\":\"c\",\"window_size\":10}", 200);
    assert_keys(j, "reflection", "reflect");
    const char *text = json_string_value(json_object_get(j, "reflection"));
    assert_non_null(strstr(text, "Reflection on the last 5 memories"));
    assert_non_null(strstr(text, "relationships::sister: Ann"));
    assert_non_null(strstr(text, "Recurring: Ann (2 memories)"));
    json_decref(j);
    j = st_json(&s, "POST", "/v1/reflect", "{\"collection\":\"c\",\"window_size\":1}", 200);
    assert_non_null(
        strstr(json_string_value(json_object_get(j, "reflection")), "the last 1 memories"));
    json_decref(j);
    j = st_json(&s, "POST", "/v1/reflect", "{\"collection\":\"nobody\"}", 200);
    assert_non_null(strstr(json_string_value(json_object_get(j, "reflection")), "No memories"));
    json_decref(j);

    j = st_json(&s, "GET", "/v1/collections", NULL, 200);
    assert_keys(j, "collections", "collections");
    json_t *want = json_loads("[\"c\",\"other\",\"pets\"]", 0, NULL); /* sorted */
    assert_true(json_equal(json_object_get(j, "collections"), want));
    json_decref(want);
    json_decref(j);
    free(a);
    free(b);
    free(c);
    free(d);
    st_stop(&s, false);
}

/* Tenant isolation: a memory of another tenant's user of the same name
 * is invisible to every route and survives a purge. */
static void test_tenants(void **state)
{
    (void)state;
    st_server s;
    st_start(&s, "http_dm_tenants", NULL);
    dm_add_params ap;
    dm_add_params_init(&ap);
    ap.tenant = "acme";
    ap.user_id = "c";
    ap.text = "I love pizza and pasta for dinner";
    ap.no_extract = 1;
    dm_id other;
    assert_int_equal(dm_add(s.db, &ap, &other), DM_OK);
    char oid[DM_ID_STRLEN + 1], path[256], msg[128];
    dm_id_format(&other, oid);
    free(store(&s, "c", "I love pizza and pasta for dinner", "Conversation", NULL));
    snprintf(path, sizeof path, "/v1/memory/c/%s", oid);
    snprintf(msg, sizeof msg, "Memory not found: %s", oid);
    expect_dm_error(&s, "GET", path, NULL, 404, "MEMORY_NOT_FOUND", msg);
    expect_dm_error(&s, "DELETE", path, NULL, 404, "MEMORY_NOT_FOUND", msg);
    assert_int_equal(stat_of(&s, "c", "memory_count"), 1);
    json_t *j = recall(&s, "{\"collection\":\"c\",\"query\":\"pizza\"}");
    assert_int_equal(json_array_size(json_object_get(j, "results")), 1);
    json_decref(j);
    j = st_json(&s, "GET", "/v1/collections", NULL, 200);
    assert_int_equal(json_array_size(json_object_get(j, "collections")), 1);
    json_decref(j);
    j = st_json(&s, "POST", "/v1/consolidate", "{\"collection\":\"c\",\"threshold\":0.5}", 200);
    assert_int_equal(json_integer_value(json_object_get(j, "consolidated_count")), 0);
    json_decref(j);
    j = st_json(&s, "DELETE", "/v1/purge?collection=c", NULL, 200);
    assert_int_equal(json_integer_value(json_object_get(j, "deleted_count")), 1);
    json_decref(j);
    dm_scope sc = {"acme", "c"};
    dm_memory *m = NULL;
    assert_int_equal(dm_get(s.db, &sc, &other, 0, &m), DM_OK);
    dm_memory_free(m);
    st_stop(&s, false);
}

/* Strict mode: the SDKs' bodies, every field present, pass; an unknown
 * field is 422. */
static void test_strict(void **state)
{
    (void)state;
    st_server s;
    http_config c;
    http_config_init(&c);
    c.port = 0;
    c.is_strict = true;
    st_start(&s, "http_dm_strict", &c);
    json_decref(st_json(&s, "POST", "/v1/ingest",
                        "{\"collection\":\"s\",\"content\":\"I live in Paris\",\"metadata\":{}}",
                        200));
    free(store(&s, "s", "A note", "Insight", "{\"a\":\"b\"}"));
    json_decref(recall(&s, "{\"collection\":\"s\",\"query\":\"Paris\",\"limit\":3,\"weights\":"
                           "{\"similarity\":0.5,\"recency\":0.3,\"salience\":0.2},"
                           "\"memory_types\":[\"Conversation\"]}"));
    const char *ok[][2] = {
        {"/v1/decay", "{\"collection\":\"s\",\"rate\":0.1}"},
        {"/v1/consolidate", "{\"collection\":\"s\",\"threshold\":0.8}"},
        {"/v1/reflect", "{\"collection\":\"s\",\"window_size\":10}"},
    };
    for (size_t i = 0; i < 3; i++)
        json_decref(st_json(&s, "POST", ok[i][0], ok[i][1], 200));
    expect_dm_error(&s, "POST", "/v1/store", "{\"collection\":\"s\",\"content\":\"x\",\"tags\":[]}",
                    422, "INVALID_REQUEST", NULL);
    expect_dm_error(&s, "POST", "/v1/recall",
                    "{\"collection\":\"s\",\"query\":\"x\",\"weights\":{\"novelty\":1}}", 422,
                    "INVALID_REQUEST", NULL);
    assert_int_equal(stat_of(&s, "s", "memory_count"), 2);
    st_stop(&s, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health),
        cmocka_unit_test(test_store_get_delete),
        cmocka_unit_test(test_ingest),
        cmocka_unit_test(test_recall),
        cmocka_unit_test(test_stats_graph_purge),
        cmocka_unit_test(test_consolidate_reflect),
        cmocka_unit_test(test_tenants),
        cmocka_unit_test(test_strict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
