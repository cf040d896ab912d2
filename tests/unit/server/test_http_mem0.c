/*
 * test_http_mem0.c -- the Mem0 dialect's edges: exact paths with their
 * trailing slash, the add / get / update / history / delete cycle, the
 * filter language (every form the platform documents), pagination,
 * 404s for unknown and malformed ids, percent-encoded ids, DELETE with a
 * body, the scoped deletes and entities, tenant isolation, and a JSON
 * body on every 2xx answer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "srvtest.h"
#include "testutil.h"

/* A call that must answer want with a JSON body (st_json checks both);
 * the body is formatted like printf. */
static json_t *callf(const st_server *s, const char *method, const char *path, long want,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static json_t *callf(const st_server *s, const char *method, const char *path, long want,
                     const char *fmt, ...)
{
    char body[4096];
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(body, sizeof body, fmt, ap);
        va_end(ap);
    }
    return st_json(s, method, path, fmt ? body : NULL, want);
}

/* Add messages (a JSON array or string) with extra top-level members;
 * returns the ids of the results in ids (up to cap). */
static size_t add(const st_server *s, const char *msgs, const char *extra, char ids[][40],
                  size_t cap)
{
    json_t *j = callf(s, "POST", "/v3/memories/add/", 200, "{\"messages\": %s, %s}", msgs,
                      extra);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "SUCCEEDED");
    assert_true(json_is_string(json_object_get(j, "event_id")));
    json_t *res = json_object_get(j, "results");
    size_t n = json_array_size(res);
    for (size_t i = 0; i < n && i < cap; i++) {
        json_t *r = json_array_get(res, i);
        assert_string_equal(json_string_value(json_object_get(r, "event")), "ADD");
        snprintf(ids[i], 40, "%s", json_string_value(json_object_get(r, "id")));
    }
    json_decref(j);
    return n;
}

/* The number of memories a listing with this filter finds. */
static long count(const st_server *s, const char *filters)
{
    json_t *j = callf(s, "POST", "/v3/memories/", 200, "{\"filters\": %s}", filters);
    long n = (long)json_integer_value(json_object_get(j, "count"));
    assert_int_equal(json_array_size(json_object_get(j, "results")), n);
    json_decref(j);
    return n;
}

static void expect_status(const st_server *s, const char *method, const char *path,
                          const char *body, long status)
{
    st_resp r = st_call(s, method, path, body, NULL);
    if (r.status != status)
        fail_msg("%s %s %s: status %ld, want %ld: %s", method, path, body ? body : "",
                 r.status, status, r.body);
    /* Errors are JSON too: the client shows the raw text. */
    assert_non_null(r.json);
    st_resp_free(&r);
}

static void test_ping_paths(void **state)
{
    (void)state;
    st_server s;
    st_start(&s, "mem0_ping", NULL);
    json_t *j = st_json(&s, "GET", "/v1/ping/", NULL, 200);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "ok");
    const char *org = json_string_value(json_object_get(j, "org_id"));
    assert_non_null(org);
    assert_non_null(json_string_value(json_object_get(j, "project_id")));
    assert_null(json_object_get(j, "user_email"));
    json_t *j2 = st_json(&s, "GET", "/v1/ping/", NULL, 200);
    assert_string_equal(org, json_string_value(json_object_get(j2, "org_id")));
    json_decref(j);
    json_decref(j2);
    /* The trailing slash is part of the path. */
    expect_status(&s, "GET", "/v1/ping", NULL, 404);
    expect_status(&s, "POST", "/v3/memories/add", "{}", 404);
    expect_status(&s, "POST", "/v3/memories/search", "{}", 404);
    /* Without the slash the path is the native API's, which needs the
     * memory's user: not a Mem0 route. */
    expect_status(&s, "GET", "/v1/memories/0190a1b2-0000-7000-8000-000000000000", NULL, 400);
    expect_status(&s, "GET", "/v3/memories/", NULL, 405);
    st_stop(&s, false);
}

static void test_cycle(void **state)
{
    (void)state;
    st_server s;
    char ids[4][40], path[256];
    st_start(&s, "mem0_cycle", NULL);
    size_t n = add(&s, "[{\"role\": \"user\", \"content\": \"I love green tea\"}, "
                       "{\"role\": \"assistant\", \"content\": \"Noted, green tea.\"}]",
                   "\"user_id\": \"alice\", \"agent_id\": \"helper\", \"app_id\": \"shop\", "
                   "\"run_id\": \"r1\", \"infer\": false, \"metadata\": {\"k\": 1}",
                   ids, 4);
    assert_int_equal(n, 2);

    snprintf(path, sizeof path, "/v1/memories/%s/", ids[0]);
    json_t *m = st_json(&s, "GET", path, NULL, 200);
    assert_string_equal(json_string_value(json_object_get(m, "memory")), "I love green tea");
    assert_string_equal(json_string_value(json_object_get(m, "user_id")), "alice");
    assert_string_equal(json_string_value(json_object_get(m, "agent_id")), "helper");
    assert_string_equal(json_string_value(json_object_get(m, "app_id")), "shop");
    assert_string_equal(json_string_value(json_object_get(m, "run_id")), "r1");
    assert_string_equal(json_string_value(json_object_get(m, "session_id")), "r1");
    json_t *meta = json_object_get(m, "metadata");
    assert_int_equal(json_object_size(meta), 1); /* no reserved keys */
    assert_int_equal(json_integer_value(json_object_get(meta, "k")), 1);
    assert_true(json_is_null(json_object_get(m, "categories")));
    assert_true(json_is_string(json_object_get(m, "created_at")));
    assert_true(json_is_string(json_object_get(m, "updated_at")));
    assert_null(json_object_get(m, "_u"));
    json_decref(m);

    /* Percent-encoded id: the segment is decoded before lookup. */
    char enc[256];
    snprintf(enc, sizeof enc, "/v1/memories/%%%02x%s/", ids[0][0], ids[0] + 1);
    json_decref(st_json(&s, "GET", enc, NULL, 200));

    m = callf(&s, "PUT", path, 200, "{\"text\": \"I love oolong tea\"}");
    assert_string_equal(json_string_value(json_object_get(m, "memory")), "I love oolong tea");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "metadata"), "k")),
                     1);
    json_decref(m);
    m = callf(&s, "PUT", path, 200, "{\"metadata\": {\"k\": 2}}");
    assert_string_equal(json_string_value(json_object_get(m, "app_id")), "shop");
    json_decref(m);
    m = st_json(&s, "GET", path, NULL, 200);
    assert_string_equal(json_string_value(json_object_get(m, "memory")), "I love oolong tea");
    json_decref(m);

    snprintf(enc, sizeof enc, "/v1/memories/%s/history/", ids[0]);
    json_t *h = st_json(&s, "GET", enc, NULL, 200);
    assert_int_equal(json_array_size(h), 2);
    json_t *h0 = json_array_get(h, 0), *h1 = json_array_get(h, 1);
    assert_string_equal(json_string_value(json_object_get(h0, "event")), "ADD");
    assert_string_equal(json_string_value(json_object_get(h0, "new_memory")), "I love green tea");
    assert_true(json_is_null(json_object_get(h0, "old_memory")));
    assert_string_equal(json_string_value(json_object_get(h1, "event")), "UPDATE");
    assert_string_equal(json_string_value(json_object_get(h1, "old_memory")), "I love green tea");
    assert_string_equal(json_string_value(json_object_get(h1, "new_memory")),
                        "I love oolong tea");
    assert_string_equal(json_string_value(json_object_get(h1, "memory_id")), ids[0]);
    json_decref(h);

    json_t *d = st_json(&s, "DELETE", path, NULL, 200);
    assert_true(json_is_string(json_object_get(d, "message")));
    json_decref(d);
    expect_status(&s, "GET", path, NULL, 404);
    expect_status(&s, "DELETE", path, NULL, 404);
    expect_status(&s, "PUT", path, "{\"text\": \"x\"}", 404);
    expect_status(&s, "GET", "/v1/memories/not-a-uuid/", NULL, 404);
    expect_status(&s, "GET", "/v1/memories/not%20a%20uuid/history/", NULL, 404);
    expect_status(&s, "PUT", "/v1/memories/00000000-0000-7000-8000-000000000000/",
                  "{\"text\": \"x\"}", 404);

    /* Validation. */
    expect_status(&s, "POST", "/v3/memories/add/", "{\"messages\": \"hi\"}", 400);
    expect_status(&s, "POST", "/v3/memories/add/",
                  "{\"messages\": \"hi\", \"user_id\": 5}", 400);
    expect_status(&s, "POST", "/v3/memories/add/",
                  "{\"messages\": [{\"role\": \"robot\", \"content\": \"hi\"}], "
                  "\"user_id\": \"a\"}",
                  400);
    expect_status(&s, "POST", "/v3/memories/add/",
                  "{\"messages\": [{\"role\": \"user\", \"content\": {\"type\": "
                  "\"image_url\"}}], \"user_id\": \"a\"}",
                  422);
    /* infer (the default) extracts the turn's facts; infer:false does not. */
    add(&s, "[{\"role\": \"user\", \"content\": \"I live in Lisbon.\"}]",
        "\"user_id\": \"ines\"", ids, 4);
    add(&s, "[{\"role\": \"user\", \"content\": \"I live in Lisbon.\"}]",
        "\"user_id\": \"joao\", \"infer\": false", ids, 4);
    static const char *const who[] = { "ines", "joao" };
    for (size_t i = 0; i < 2; i++) {
        dm_profile_params pp = { .user_id = who[i] };
        dm_fact *facts = NULL;
        size_t nf = 0;
        assert_int_equal(dm_profile(s.db, &pp, &facts, &nf), DM_OK);
        bool lisbon = false;
        for (size_t k = 0; k < nf; k++)
            lisbon = lisbon || strstr(facts[k].value, "Lisbon") != NULL;
        assert_true(lisbon == (i == 0));
        dm_facts_free(facts, nf);
    }
    /* A plain string is one user message. */
    n = add(&s, "\"plain string memory\"", "\"user_id\": \"bob\", \"infer\": false", ids, 4);
    assert_int_equal(n, 1);
    st_stop(&s, false);
}

static void test_filters(void **state)
{
    (void)state;
    st_server s;
    char ids[8][40], f[512];
    st_start(&s, "mem0_filters", NULL);
    add(&s, "\"pizza with friends\"",
        "\"user_id\": \"alice\", \"agent_id\": \"a1\", \"run_id\": \"r1\", \"infer\": false, "
        "\"metadata\": {\"color\": \"red\", \"n\": 3}",
        ids, 8);
    add(&s, "\"sushi at noon\"",
        "\"user_id\": \"alice\", \"agent_id\": \"a2\", \"infer\": false, "
        "\"metadata\": {\"color\": \"blue\", \"n\": 7}",
        ids + 1, 7);
    add(&s, "\"bob likes chess\"",
        "\"user_id\": \"bob\", \"timestamp\": 1577836800, \"infer\": false", ids + 2, 6);
    add(&s, "\"agent only note\"", "\"agent_id\": \"a3\", \"app_id\": \"shop\", \"infer\": false",
        ids + 3, 5);

    assert_int_equal(count(&s, "{\"user_id\": \"alice\"}"), 2);
    assert_int_equal(count(&s, "{\"user_id\": \"alice\", \"agent_id\": \"a1\"}"), 1);
    assert_int_equal(count(&s, "{\"AND\": [{\"user_id\": \"alice\"}, {\"agent_id\": \"a2\"}]}"), 1);
    assert_int_equal(count(&s, "{\"OR\": [{\"user_id\": \"alice\"}, {\"user_id\": \"bob\"}]}"), 3);
    assert_int_equal(count(&s, "{\"user_id\": {\"in\": [\"alice\", \"bob\", \"zed\"]}}"), 3);
    assert_int_equal(count(&s, "{\"user_id\": \"alice\", \"NOT\": {\"agent_id\": \"a1\"}}"), 1);
    assert_int_equal(count(&s, "{\"user_id\": \"alice\", \"NOT\": [{\"agent_id\": \"a1\"}, "
                               "{\"agent_id\": \"a2\"}]}"),
                     0);
    assert_int_equal(count(&s, "{\"user_id\": \"alice\", \"agent_id\": {\"ne\": \"a1\"}}"), 1);
    assert_int_equal(count(&s, "{\"user_id\": \"*\"}"), 3);
    assert_int_equal(count(&s, "{\"agent_id\": \"*\"}"), 3);
    assert_int_equal(count(&s, "{\"user_id\": \"alice\", \"run_id\": \"*\"}"), 1);
    /* An agent-only memory: found by its agent, shown without a user. */
    json_t *j = callf(&s, "POST", "/v3/memories/", 200, "{\"filters\": {\"agent_id\": \"a3\"}}");
    json_t *m = json_array_get(json_object_get(j, "results"), 0);
    assert_true(json_is_null(json_object_get(m, "user_id")));
    assert_string_equal(json_string_value(json_object_get(m, "app_id")), "shop");
    json_decref(j);
    assert_int_equal(count(&s, "{\"app_id\": \"shop\"}"), 1);
    /* Metadata, text and time conditions. */
    assert_int_equal(count(&s, "{\"user_id\": \"alice\", \"metadata\": {\"color\": \"red\"}}"), 1);
    assert_int_equal(
        count(&s, "{\"user_id\": \"alice\", \"metadata\": {\"color\": {\"ne\": \"red\"}}}"), 1);
    assert_int_equal(
        count(&s, "{\"user_id\": \"alice\", \"metadata\": {\"color\": {\"contains\": \"lu\"}}}"),
        1);
    assert_int_equal(
        count(&s, "{\"user_id\": \"alice\", \"metadata\": {\"n\": {\"gte\": 5}}}"), 1);
    assert_int_equal(count(&s, "{\"user_id\": \"alice\", \"text\": {\"icontains\": \"PIZZA\"}}"),
                     1);
    assert_int_equal(count(&s, "{\"user_id\": \"alice\", \"keywords\": {\"contains\": \"PIZZA\"}}"),
                     0);
    assert_int_equal(
        count(&s, "{\"user_id\": \"bob\", \"created_at\": {\"lt\": \"2021-01-01\"}}"), 1);
    assert_int_equal(
        count(&s, "{\"user_id\": \"bob\", \"timestamp\": {\"gte\": \"2021-01-01T00:00:00Z\"}}"),
        0);
    assert_int_equal(count(&s, "{\"user_id\": \"alice\", \"created_at\": {\"gt\": "
                               "\"2021-01-01\", \"lte\": \"2999-01-01\"}}"),
                     2);
    snprintf(f, sizeof f, "{\"user_id\": \"alice\", \"memory_ids\": [\"%s\"]}", ids[1]);
    assert_int_equal(count(&s, f), 1);
    snprintf(f, sizeof f, "{\"user_id\": \"alice\", \"memory_ids\": {\"in\": [\"%s\"]}}", ids[0]);
    assert_int_equal(count(&s, f), 1);
    assert_int_equal(count(&s, "{\"user_id\": \"alice\", \"categories\": {\"in\": [\"food\"]}}"),
                     0);

    /* Refused: no positive entity, unknown keys and operators. */
    static const char *const bad[] = {
        "{}",
        "{\"agent_id\": {\"ne\": \"a1\"}}",
        "{\"NOT\": {\"user_id\": \"alice\"}}",
        "{\"OR\": [{\"user_id\": \"alice\"}, {\"metadata\": {\"color\": \"red\"}}]}",
        "{\"user_id\": \"alice\", \"colour\": \"red\"}",
        "{\"user_id\": {\"like\": \"al%\"}}",
        "{\"user_id\": \"alice\", \"created_at\": {\"gt\": \"yesterday\"}}",
        "{\"user_id\": \"alice\", \"AND\": []}",
        "{\"user_id\": \"alice\", \"user_id\": \"bob\"}",
        "[\"user_id\"]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char b[600];
        snprintf(b, sizeof b, "{\"filters\": %s}", bad[i]);
        expect_status(&s, "POST", "/v3/memories/", b, 400);
        snprintf(b, sizeof b, "{\"query\": \"pizza\", \"filters\": %s}", bad[i]);
        expect_status(&s, "POST", "/v3/memories/search/", b, 400);
    }
    expect_status(&s, "POST", "/v3/memories/", "{}", 400);
    expect_status(&s, "POST", "/v3/memories/search/",
                  "{\"query\": \"pizza\", \"user_id\": \"alice\"}", 400);
    expect_status(&s, "POST", "/v3/memories/search/",
                  "{\"query\": \"pizza\", \"filters\": {\"user_id\": \"alice\"}, "
                  "\"top_k\": 100000}",
                  422);
    expect_status(&s, "POST", "/v3/memories/search/",
                  "{\"query\": \"pizza\", \"filters\": {\"user_id\": \"alice\"}, "
                  "\"threshold\": 2}",
                  422);

    /* Search: the matching memory first, scores in [0, 1], filters
     * applied, top_k respected. */
    j = callf(&s, "POST", "/v3/memories/search/", 200,
              "{\"query\": \"pizza\", \"output_format\": \"v1.1\", "
              "\"filters\": {\"user_id\": \"alice\"}}");
    json_t *res = json_object_get(j, "results");
    assert_true(json_array_size(res) >= 1);
    m = json_array_get(res, 0);
    assert_string_equal(json_string_value(json_object_get(m, "memory")), "pizza with friends");
    double sc = json_number_value(json_object_get(m, "score"));
    assert_true(sc > 0 && sc <= 1);
    json_decref(j);
    j = callf(&s, "POST", "/v3/memories/search/", 200,
              "{\"query\": \"pizza\", \"top_k\": 1, \"filters\": {\"AND\": [{\"user_id\": "
              "\"alice\"}, {\"agent_id\": \"a2\"}]}}");
    res = json_object_get(j, "results");
    assert_int_equal(json_array_size(res), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(res, 0), "memory")),
                        "sushi at noon");
    json_decref(j);
    j = callf(&s, "POST", "/v3/memories/search/", 200,
              "{\"query\": \"agent only note\", \"filters\": {\"agent_id\": \"*\"}}");
    res = json_object_get(j, "results");
    size_t i;
    json_array_foreach(res, i, m) assert_false(json_is_null(json_object_get(m, "agent_id")));
    assert_true(json_array_size(res) >= 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(res, 0), "memory")),
                        "agent only note");
    json_decref(j);
    j = callf(&s, "POST", "/v3/memories/search/", 200,
              "{\"query\": \"chess\", \"filters\": {\"agent_id\": \"*\"}}");
    json_array_foreach(json_object_get(j, "results"), i, m)
        assert_string_not_equal(json_string_value(json_object_get(m, "memory")),
                                "bob likes chess");
    json_decref(j);
    j = callf(&s, "POST", "/v3/memories/search/", 200,
              "{\"query\": \"pizza\", \"filters\": {\"user_id\": \"nobody\"}}");
    assert_int_equal(json_array_size(json_object_get(j, "results")), 0);
    json_decref(j);
    st_stop(&s, false);
}

static void test_pages(void **state)
{
    (void)state;
    st_server s;
    char ids[8][40];
    st_start(&s, "mem0_pages", NULL);
    assert_int_equal(add(&s, "[{\"content\": \"one\"}, {\"content\": \"two\"}, "
                             "{\"content\": \"three\"}, {\"content\": \"four\"}, "
                             "{\"content\": \"five\"}]",
                         "\"user_id\": \"carol\", \"infer\": false", ids, 8),
                     5);
    const char *f = "{\"filters\": {\"user_id\": \"carol\"}}";
    json_t *j = st_json(&s, "POST", "/v3/memories/?page=1&page_size=2", f, 200);
    assert_int_equal(json_integer_value(json_object_get(j, "count")), 5);
    assert_int_equal(json_array_size(json_object_get(j, "results")), 2);
    assert_non_null(strstr(json_string_value(json_object_get(j, "next")), "page=2"));
    assert_true(json_is_null(json_object_get(j, "previous")));
    json_decref(j);
    j = st_json(&s, "POST", "/v3/memories/?page=3&page_size=2", f, 200);
    assert_int_equal(json_array_size(json_object_get(j, "results")), 1);
    assert_true(json_is_null(json_object_get(j, "next")));
    assert_non_null(strstr(json_string_value(json_object_get(j, "previous")), "page=2"));
    json_decref(j);
    j = st_json(&s, "POST", "/v3/memories/?page=9", f, 200);
    assert_int_equal(json_array_size(json_object_get(j, "results")), 0);
    json_decref(j);
    /* Defaults: page 1 of 100; newest first. */
    j = st_json(&s, "POST", "/v3/memories/", f, 200);
    json_t *res = json_object_get(j, "results");
    assert_int_equal(json_array_size(res), 5);
    json_decref(j);
    expect_status(&s, "POST", "/v3/memories/?page_size=201", f, 400);
    expect_status(&s, "POST", "/v3/memories/?page=0", f, 400);
    st_stop(&s, false);
}

static void test_deletes_batch_entities(void **state)
{
    (void)state;
    st_server s;
    char ids[8][40], b[512];
    st_start(&s, "mem0_deletes", NULL);
    add(&s, "[{\"content\": \"d one\"}, {\"content\": \"d two\"}, {\"content\": \"d three\"}]",
        "\"user_id\": \"dan\", \"agent_id\": \"bot\", \"infer\": false", ids, 8);
    add(&s, "\"erin note\"", "\"user_id\": \"erin\", \"run_id\": \"s9\", \"infer\": false",
        ids + 3, 5);
    add(&s, "\"bot alone\"", "\"agent_id\": \"bot\", \"infer\": false", ids + 4, 4);

    /* Entities: users, agents and runs with their counts. */
    json_t *j = st_json(&s, "GET", "/v1/entities/", NULL, 200);
    json_t *res = json_object_get(j, "results"), *e;
    size_t i;
    int seen = 0;
    json_array_foreach(res, i, e) {
        const char *t = json_string_value(json_object_get(e, "type"));
        const char *nm = json_string_value(json_object_get(e, "name"));
        long n = (long)json_integer_value(json_object_get(e, "total_memories"));
        if (!strcmp(t, "user") && !strcmp(nm, "dan"))
            seen += n == 3;
        if (!strcmp(t, "agent") && !strcmp(nm, "bot"))
            seen += n == 4;
        if (!strcmp(t, "run") && !strcmp(nm, "s9"))
            seen += n == 1;
        assert_false(!strcmp(t, "user") && !strncmp(nm, "agent:", 6));
    }
    assert_int_equal(seen, 3);
    assert_int_equal(json_integer_value(json_object_get(j, "count")), 4);
    json_decref(j);

    /* Batch update with a body on PUT, batch delete with a body on DELETE;
     * an unknown id refuses the whole batch. */
    snprintf(b, sizeof b,
             "{\"memories\": [{\"memory_id\": \"%s\", \"text\": \"D ONE\"}, "
             "{\"memory_id\": \"00000000-0000-7000-8000-000000000000\", \"text\": \"x\"}]}",
             ids[0]);
    expect_status(&s, "PUT", "/v1/batch/", b, 404);
    snprintf(b, sizeof b, "/v1/memories/%s/", ids[0]);
    j = st_json(&s, "GET", b, NULL, 200);
    assert_string_equal(json_string_value(json_object_get(j, "memory")), "d one");
    json_decref(j);
    snprintf(b, sizeof b, "{\"memories\": [{\"memory_id\": \"%s\", \"text\": \"D ONE\"}]}",
             ids[0]);
    json_decref(st_json(&s, "PUT", "/v1/batch/", b, 200));
    snprintf(b, sizeof b, "/v1/memories/%s/", ids[0]);
    j = st_json(&s, "GET", b, NULL, 200);
    assert_string_equal(json_string_value(json_object_get(j, "memory")), "D ONE");
    json_decref(j);
    snprintf(b, sizeof b, "{\"memories\": [{\"memory_id\": \"%s\"}, {\"memory_id\": \"%s\"}]}",
             ids[0], ids[1]);
    j = st_json(&s, "DELETE", "/v1/batch/", b, 200);
    assert_non_null(strstr(json_string_value(json_object_get(j, "message")), "2"));
    json_decref(j);
    assert_int_equal(count(&s, "{\"user_id\": \"dan\"}"), 1);
    expect_status(&s, "DELETE", "/v1/batch/", NULL, 400);
    expect_status(&s, "DELETE", "/v1/batch/", "{\"memories\": []}", 400);

    /* Scoped delete-all: no scope is refused; a bare "?" is a path too. */
    expect_status(&s, "DELETE", "/v1/memories/", NULL, 400);
    expect_status(&s, "DELETE", "/v1/memories/?", NULL, 400);
    j = st_json(&s, "DELETE", "/v1/memories/?run_id=s9", NULL, 200);
    assert_int_equal(json_integer_value(json_object_get(j, "deleted")), 1);
    json_decref(j);
    assert_int_equal(count(&s, "{\"user_id\": \"erin\"}"), 0);
    j = st_json(&s, "DELETE", "/v1/memories/?user_id=dan", NULL, 200);
    json_decref(j);
    assert_int_equal(count(&s, "{\"user_id\": \"dan\"}"), 0);
    json_decref(st_json(&s, "DELETE", "/v1/memories/?user_id=nobody", NULL, 200));

    /* Entities by type and (percent-encoded) name. */
    add(&s, "\"x\"", "\"user_id\": \"frank smith\", \"infer\": false", ids, 1);
    json_decref(st_json(&s, "DELETE", "/v2/entities/user/frank%20smith/", NULL, 200));
    assert_int_equal(count(&s, "{\"user_id\": \"frank smith\"}"), 0);
    json_decref(st_json(&s, "DELETE", "/v2/entities/agent/bot/", NULL, 200));
    assert_int_equal(count(&s, "{\"agent_id\": \"bot\"}"), 0);
    expect_status(&s, "DELETE", "/v2/entities/agent/bot/", NULL, 404);
    expect_status(&s, "DELETE", "/v2/entities/planet/x/", NULL, 400);
    expect_status(&s, "DELETE", "/v2/entities/user/x", NULL, 404);
    st_stop(&s, false);
}

/* Strict mode: the fields the client sends pass, others are a 422. */
static void test_strict(void **state)
{
    (void)state;
    st_server s;
    http_config c;
    http_config_init(&c);
    c.port = 0;
    c.is_strict = true;
    st_start(&s, "mem0_strict", &c);
    json_decref(st_json(&s, "POST", "/v3/memories/add/",
                        "{\"messages\": \"tea\", \"user_id\": \"a\", \"infer\": false, "
                        "\"output_format\": \"v1.1\", \"custom_categories\": []}",
                        200));
    expect_status(&s, "POST", "/v3/memories/add/",
                  "{\"messages\": \"tea\", \"user_id\": \"a\", \"colour\": 1}", 422);
    json_decref(st_json(&s, "POST", "/v3/memories/search/",
                        "{\"query\": \"tea\", \"output_format\": \"v1.1\", \"rerank\": false, "
                        "\"filters\": {\"user_id\": \"a\"}}",
                        200));
    expect_status(&s, "POST", "/v3/memories/search/",
                  "{\"query\": \"tea\", \"filters\": {\"user_id\": \"a\"}, \"k\": 3}", 422);
    expect_status(&s, "POST", "/v3/memories/", "{\"filters\": {\"user_id\": \"a\"}, \"x\": 1}",
                  422);
    st_stop(&s, false);
}

/* Another tenant's memory is invisible whatever id or user is named. */
static void test_tenants(void **state)
{
    (void)state;
    st_server s;
    st_start(&s, "mem0_tenants", NULL);
    dm_add_params p;
    dm_add_params_init(&p);
    p.tenant = "other";
    p.user_id = "alice";
    p.text = "secret of another tenant";
    p.no_extract = 1;
    dm_id id;
    assert_int_equal(dm_add(s.db, &p, &id), DM_OK);
    char ids[DM_ID_STRLEN + 1], path[128], b[256];
    dm_id_format(&id, ids);
    snprintf(path, sizeof path, "/v1/memories/%s/", ids);
    expect_status(&s, "GET", path, NULL, 404);
    expect_status(&s, "PUT", path, "{\"text\": \"changed\"}", 404);
    expect_status(&s, "DELETE", path, NULL, 404);
    snprintf(path, sizeof path, "/v1/memories/%s/history/", ids);
    expect_status(&s, "GET", path, NULL, 404);
    snprintf(b, sizeof b, "{\"memories\": [{\"memory_id\": \"%s\"}]}", ids);
    expect_status(&s, "DELETE", "/v1/batch/", b, 404);
    assert_int_equal(count(&s, "{\"user_id\": \"alice\"}"), 0);
    assert_int_equal(count(&s, "{\"user_id\": \"*\"}"), 0);
    json_t *j = st_json(&s, "GET", "/v1/entities/", NULL, 200);
    assert_int_equal(json_integer_value(json_object_get(j, "count")), 0);
    json_decref(j);
    dm_memory *m = NULL;
    dm_scope sc = { "other", "alice" };
    assert_int_equal(dm_get(s.db, &sc, &id, 0, &m), DM_OK);
    assert_string_equal(m->text, "secret of another tenant");
    dm_memory_free(m);
    st_stop(&s, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ping_paths),
        cmocka_unit_test(test_cycle),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_pages),
        cmocka_unit_test(test_deletes_batch_entities),
        cmocka_unit_test(test_tenants),
        cmocka_unit_test(test_strict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
