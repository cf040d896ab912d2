/*
 * test_http_native.c -- the native dialect through the real server:
 * memories (add, get, patch, search, list pages, delete, batch), sessions
 * (messages, context with the profile first, chat without a model),
 * knowledge shapes (profile, events, graph, history), export then import
 * into another user (lossless: text, time, metadata, embedding), erase,
 * user isolation, and bad arguments: each gives its status and names its
 * field, and changes nothing.
 */
// ctest-timeout: 120
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "srvtest.h"
#include "testutil.h"

static const char *str(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_string(v))
        fail_msg("member %s is not a string", k);
    return json_string_value(v);
}

/* Every memory of user u (archived too). */
static size_t count(const st_server *s, const char *u)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/users/%s/memories?limit=10000&archived=true", u);
    json_t *j = st_json(s, "GET", path, NULL, 200);
    size_t n = json_array_size(json_object_get(j, "items"));
    assert_true(json_is_null(json_object_get(j, "next_cursor")));
    json_decref(j);
    return n;
}

/* The request fails with status and names field (NULL = any). */
static void expect_err(const st_server *s, const char *method, const char *path,
                       const char *body, long status, const char *field)
{
    st_resp r = st_call(s, method, path, body, NULL);
    if (r.status != status)
        fail_msg("%s %s %s: status %ld, want %ld: %s", method, path, body ? body : "", r.status,
                 status, r.body);
    json_t *e = json_object_get(r.json, "error");
    if (!json_is_object(e) || !json_is_string(json_object_get(e, "code")) ||
        !json_is_string(json_object_get(e, "message")))
        fail_msg("%s %s: not a native error body: %s", method, path, r.body);
    if (field) {
        json_t *f = json_object_get(e, "field");
        if (!json_is_string(f) || strcmp(json_string_value(f), field))
            fail_msg("%s %s %s: field %s, want %s", method, path, body ? body : "", r.body,
                     field);
    }
    st_resp_free(&r);
}

static void test_memories(void **state)
{
    (void)state;
    st_server s;
    st_start(&s, "http_native_mem", NULL);
    json_t *m = st_json(&s, "POST", "/v1/memories",
                        "{\"user_id\":\"alice\",\"text\":\"I adopted a cat named Miso\","
                        "\"metadata\":{\"topic\":\"pets\",\"n\":1.5},"
                        "\"time\":\"2024-05-08T13:56:00Z\",\"extract\":false}",
                        201);
    char id[64];
    snprintf(id, sizeof id, "%s", str(m, "id"));
    assert_string_equal(str(m, "text"), "I adopted a cat named Miso");
    assert_string_equal(str(m, "user_id"), "alice");
    assert_string_equal(str(m, "tenant"), "default");
    assert_string_equal(str(m, "time"), "2024-05-08T13:56:00Z");
    assert_string_equal(str(m, "kind"), "episodic");
    assert_string_equal(str(m, "state"), "active");
    assert_string_equal(str(json_object_get(m, "metadata"), "topic"), "pets");
    json_decref(m);

    char path[256];
    snprintf(path, sizeof path, "/v1/memories/%s?user_id=alice", id);
    m = st_json(&s, "GET", path, NULL, 200);
    assert_string_equal(str(m, "id"), id);
    assert_string_equal(str(m, "text"), "I adopted a cat named Miso");
    assert_null(json_object_get(m, "embedding"));
    json_decref(m);
    /* Another user's id is not found, for every verb. */
    snprintf(path, sizeof path, "/v1/memories/%s?user_id=bob", id);
    expect_err(&s, "GET", path, NULL, 404, "id");
    expect_err(&s, "DELETE", path, NULL, 404, "id");
    snprintf(path, sizeof path, "/v1/memories/%s", id);
    expect_err(&s, "PATCH", path, "{\"user_id\":\"bob\",\"text\":\"stolen\"}", 404, "id");

    m = st_json(&s, "PATCH", path,
                "{\"user_id\":\"alice\",\"text\":\"I adopted a cat named Mochi\"}", 200);
    assert_string_equal(str(m, "text"), "I adopted a cat named Mochi");
    assert_string_equal(str(json_object_get(m, "metadata"), "topic"), "pets");
    json_decref(m);

    json_t *b = st_json(&s, "POST", "/v1/memories/batch",
                        "{\"memories\":["
                        "{\"user_id\":\"alice\",\"text\":\"I work at Initech\",\"extract\":false},"
                        "{\"user_id\":\"alice\",\"text\":\"My sister is Ann\",\"extract\":false},"
                        "{\"user_id\":\"alice\",\"text\":\"I like green tea\",\"kind\":\"fact\"},"
                        "{\"user_id\":\"alice\",\"text\":\"Ran 5 km today\",\"salience\":0.5}]}",
                        201);
    assert_int_equal(json_array_size(json_object_get(b, "ids")), 4);
    json_decref(b);

    json_t *r = st_json(&s, "POST", "/v1/search",
                        "{\"user_id\":\"alice\",\"query\":\"cat named Mochi\",\"k\":3,"
                        "\"explain\":true}",
                        200);
    json_t *hits = json_object_get(r, "results");
    assert_true(json_array_size(hits) >= 1 && json_array_size(hits) <= 3);
    json_t *h0 = json_array_get(hits, 0);
    assert_string_equal(str(h0, "id"), id);
    assert_true(json_is_number(json_object_get(h0, "score")));
    assert_true(json_is_number(json_object_get(h0, "vector_sim")));
    assert_true(json_is_number(json_object_get(h0, "bm25")));
    assert_true(json_is_object(json_object_get(h0, "explain")));
    json_decref(r);
    /* The metadata filter applies. */
    r = st_json(&s, "POST", "/v1/search",
                "{\"user_id\":\"alice\",\"query\":\"cat\",\"filter\":{\"topic\":\"work\"}}", 200);
    assert_int_equal(json_array_size(json_object_get(r, "results")), 0);
    json_decref(r);

    /* Pages of two, newest first, each memory once. */
    char cursor[200] = "";
    size_t seen = 0, pages = 0;
    for (;;) {
        if (cursor[0])
            snprintf(path, sizeof path, "/v1/users/alice/memories?limit=2&cursor=%s", cursor);
        else
            snprintf(path, sizeof path, "/v1/users/alice/memories?limit=2");
        json_t *pg = st_json(&s, "GET", path, NULL, 200);
        seen += json_array_size(json_object_get(pg, "items"));
        pages++;
        json_t *nc = json_object_get(pg, "next_cursor");
        if (json_is_null(nc)) {
            json_decref(pg);
            break;
        }
        /* Cursors are URL-safe (base64url or hex); send it as is. */
        assert_true(strlen(json_string_value(nc)) < sizeof cursor);
        snprintf(cursor, sizeof cursor, "%s", json_string_value(nc));
        json_decref(pg);
        assert_true(pages < 10);
    }
    assert_int_equal(seen, 5);
    assert_int_equal(pages, 3);

    snprintf(path, sizeof path, "/v1/memories/%s?user_id=alice", id);
    m = st_json(&s, "DELETE", path, NULL, 200);
    assert_string_equal(str(m, "id"), id);
    assert_true(json_is_true(json_object_get(m, "deleted")));
    json_decref(m);
    expect_err(&s, "GET", path, NULL, 404, "id");
    expect_err(&s, "DELETE", path, NULL, 404, "id");
    assert_int_equal(count(&s, "alice"), 4);
    /* A user nobody wrote to has an empty list and no results. */
    assert_int_equal(count(&s, "nobody"), 0);
    r = st_json(&s, "POST", "/v1/search", "{\"user_id\":\"nobody\",\"query\":\"cat\"}", 200);
    assert_int_equal(json_array_size(json_object_get(r, "results")), 0);
    json_decref(r);

    json_t *st = st_json(&s, "GET", "/v1/stats", NULL, 200);
    assert_true(json_integer_value(json_object_get(st, "n_memories")) >= 4);
    json_decref(st);
    json_t *d = st_json(&s, "POST", "/v1/users/alice/decay", "{\"now\":\"2040-01-01T00:00:00Z\"}",
                        200);
    assert_true(json_integer_value(json_object_get(d, "affected")) >= 1);
    json_decref(d);
    /* Decayed memories are archived, not lost. */
    assert_int_equal(count(&s, "alice"), 4);
    st_stop(&s, false);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    st_server s;
    http_config c;
    http_config_init(&c);
    c.port = 0;
    c.max_text_len = 400;
    c.max_batch = 5;
    c.max_top_k = 50;
    st_start(&s, "http_native_bad", &c);
    json_t *m = st_json(&s, "POST", "/v1/memories", "{\"user_id\":\"u\",\"text\":\"hello there\"}",
                        201);
    char id[64], path[512];
    snprintf(id, sizeof id, "%s", str(m, "id"));
    json_decref(m);
    size_t before = count(&s, "u");

    static const struct {
        const char *body;
        long status;
        const char *field;
    } adds[] = {
        { "{}", 400, "user_id" },
        { "{\"user_id\":\"u\"}", 400, "text" },
        { "{\"user_id\":5,\"text\":\"x\"}", 400, "user_id" },
        { "{\"user_id\":\"u\",\"text\":\"\"}", 400, "text" },
        { "{\"user_id\":\"u\",\"text\":\"x\",\"metadata\":\"m\"}", 400, "metadata" },
        { "{\"user_id\":\"u\",\"text\":\"x\",\"time\":\"soonish\"}", 400, "time" },
        { "{\"user_id\":\"u\",\"text\":\"x\",\"kind\":\"dream\"}", 422, "kind" },
        { "{\"user_id\":\"u\",\"text\":\"x\",\"salience\":2}", 422, "salience" },
        { "{\"user_id\":\"u\",\"text\":\"x\",\"extract\":\"yes\"}", 400, "extract" },
        { "{\"user_id\":\"u\",\"text\":\"x\",\"agent_id\":[]}", 400, "agent_id" },
        { "[1,2]", 400, NULL },
        { "{\"user_id\":\"u\",\"text\":\"x\"", 400, NULL },
    };
    for (size_t i = 0; i < sizeof adds / sizeof adds[0]; i++)
        expect_err(&s, "POST", "/v1/memories", adds[i].body, adds[i].status, adds[i].field);
    char big[600], body[1024];
    memset(big, 'a', 401);
    big[401] = 0;
    snprintf(body, sizeof body, "{\"user_id\":\"u\",\"text\":\"%s\"}", big);
    expect_err(&s, "POST", "/v1/memories", body, 413, "text");
    memset(big, 'u', 300);
    big[300] = 0;
    snprintf(body, sizeof body, "{\"user_id\":\"%s\",\"text\":\"x\"}", big);
    expect_err(&s, "POST", "/v1/memories", body, 422, "user_id");

    /* Batches: all or nothing. */
    expect_err(&s, "POST", "/v1/memories/batch", "{\"memories\":{}}", 400, "memories");
    expect_err(&s, "POST", "/v1/memories/batch", "{\"memories\":[]}", 400, "memories");
    expect_err(&s, "POST", "/v1/memories/batch",
               "{\"memories\":[{\"user_id\":\"u\",\"text\":\"a\"},{\"user_id\":\"u\","
               "\"text\":\"b\"},{\"user_id\":\"u\",\"text\":\"c\"},{\"user_id\":\"u\",\"text\":"
               "\"d\"},{\"user_id\":\"u\",\"text\":\"e\"},{\"user_id\":\"u\",\"text\":\"f\"}]}",
               413, "memories");
    expect_err(&s, "POST", "/v1/memories/batch",
               "{\"memories\":[{\"user_id\":\"u\",\"text\":\"fine\"},{\"user_id\":\"u\","
               "\"text\":\"\"}]}",
               400, "memories[1].text");
    expect_err(&s, "POST", "/v1/memories/batch",
               "{\"memories\":[{\"user_id\":\"u\",\"text\":\"fine\"},7]}", 400, "memories[1]");

    /* Search. */
    expect_err(&s, "POST", "/v1/search", "{\"user_id\":\"u\",\"query\":\"x\",\"k\":51}", 422, "k");
    expect_err(&s, "POST", "/v1/search", "{\"user_id\":\"u\",\"query\":\"x\",\"k\":0}", 422, "k");
    expect_err(&s, "POST", "/v1/search", "{\"user_id\":\"u\",\"query\":\"x\",\"k\":2.5}", 400, "k");
    expect_err(&s, "POST", "/v1/search", "{\"user_id\":\"u\"}", 400, "query");
    expect_err(&s, "POST", "/v1/search", "{\"query\":\"x\"}", 400, "user_id");
    expect_err(&s, "POST", "/v1/search", "{\"user_id\":\"u\",\"query\":\"x\",\"filter\":\"a\"}",
               400, "filter");
    expect_err(&s, "POST", "/v1/search",
               "{\"user_id\":\"u\",\"query\":\"x\",\"weights\":{\"similarity\":-1}}", 422,
               "weights.similarity");
    expect_err(&s, "POST", "/v1/search",
               "{\"user_id\":\"u\",\"query\":\"x\",\"from\":\"2024-02-01\",\"to\":\"2024-01-01\"}",
               422, "from");
    memset(big, 'q', 401);
    big[401] = 0;
    snprintf(body, sizeof body, "{\"user_id\":\"u\",\"query\":\"%s\"}", big);
    expect_err(&s, "POST", "/v1/search", body, 413, "query");

    /* One memory. */
    expect_err(&s, "GET", "/v1/memories/not-an-id?user_id=u", NULL, 404, "id");
    snprintf(path, sizeof path, "/v1/memories/%s", id);
    expect_err(&s, "GET", path, NULL, 400, "user_id");
    expect_err(&s, "DELETE", path, NULL, 400, "user_id");
    expect_err(&s, "PATCH", path, "{\"user_id\":\"u\"}", 400, "text");
    expect_err(&s, "PATCH", path, "{\"text\":\"y\"}", 400, "user_id");
    expect_err(&s, "PATCH", path, "{\"user_id\":\"u\",\"metadata\":[1]}", 400, "metadata");
    expect_err(&s, "POST", path, "{}", 405, NULL);

    /* Lists and knowledge. */
    expect_err(&s, "GET", "/v1/users/u/memories?limit=0", NULL, 400, "limit");
    expect_err(&s, "GET", "/v1/users/u/memories?limit=x", NULL, 400, "limit");
    expect_err(&s, "GET", "/v1/users/u/memories?cursor=garbage!", NULL, 400, "cursor");
    expect_err(&s, "GET", "/v1/users/u/memories?from=notatime", NULL, 400, "from");
    expect_err(&s, "GET", "/v1/users/u/memories?from=2024-02-01&to=2024-01-01", NULL, 422,
               "from");
    expect_err(&s, "GET", "/v1/users/u/profile?as_of=never", NULL, 400, "as_of");
    expect_err(&s, "GET", "/v1/users/u/graph?depth=9", NULL, 400, "depth");
    expect_err(&s, "GET", "/v1/users/u/graph/search", NULL, 400, "q");
    expect_err(&s, "GET", "/v1/users/u/history/xyz", NULL, 404, "id");
    snprintf(path, sizeof path, "/v1/users/other/history/%s", id);
    expect_err(&s, "GET", path, NULL, 404, "id");
    expect_err(&s, "GET", "/v1/sessions/s1/context", NULL, 400, "user_id");
    expect_err(&s, "GET", "/v1/sessions/s1/context?user_id=u&max_tokens=1", NULL, 400,
               "max_tokens");

    /* Sessions: every message is checked before any is stored. */
    expect_err(&s, "POST", "/v1/sessions", "{}", 400, "user_id");
    expect_err(&s, "POST", "/v1/sessions/s1/messages", "{\"user_id\":\"u\"}", 400, "messages");
    expect_err(&s, "POST", "/v1/sessions/s1/messages",
               "{\"user_id\":\"u\",\"messages\":[{\"role\":\"robot\",\"content\":\"hi\"}]}", 422,
               "messages[0].role");
    expect_err(&s, "POST", "/v1/sessions/s1/messages",
               "{\"user_id\":\"u\",\"messages\":[{\"role\":\"user\",\"content\":\"I live in "
               "Paris.\"},{\"role\":\"user\"}]}",
               400, "messages[1].content");
    expect_err(&s, "POST", "/v1/sessions/s1/messages",
               "{\"user_id\":\"u\",\"messages\":[1,2,3,4,5,6]}", 413, "messages");
    expect_err(&s, "POST", "/v1/sessions/s1/chat", "{\"user_id\":\"u\"}", 400, "message");

    /* Import. */
    expect_err(&s, "POST", "/v1/users/u/import", "{\"memories\":[{\"text\":5}]}", 400,
               "memories[0].text");
    expect_err(&s, "POST", "/v1/users/u/import",
               "{\"memories\":[{\"text\":\"a\"},{\"text\":\"b\",\"time\":\"nope\"}]}", 400,
               "memories[1].time");
    expect_err(&s, "POST", "/v1/users/u/import",
               "{\"memories\":[{\"text\":\"a\"},{\"text\":\"b\",\"embedding\":[1,2,3]}]}",
               400, "memories[1]");
    snprintf(body, sizeof body, "{\"memories\":[{\"text\":\"dup\",\"id\":\"%s\"}]}", id);
    expect_err(&s, "POST", "/v1/users/u/import", body, 409, "memories[0]");
    expect_err(&s, "POST", "/v1/users/u/decay", "{\"threshold\":7}", 422, "threshold");

    assert_int_equal(count(&s, "u"), before);
    json_t *ctx = st_json(&s, "GET", "/v1/users/u/profile", NULL, 200);
    assert_int_equal(json_array_size(json_object_get(ctx, "facts")), 0);
    json_decref(ctx);
    st_stop(&s, false);
}

static const char *fact_value(json_t *facts, const char *slot)
{
    for (size_t i = 0; i < json_array_size(facts); i++) {
        json_t *f = json_array_get(facts, i);
        if (!strcmp(str(f, "slot"), slot))
            return str(f, "value");
    }
    return NULL;
}

static void test_sessions_knowledge(void **state)
{
    (void)state;
    st_server s;
    st_start(&s, "http_native_sess", NULL);
    json_t *ss = st_json(&s, "POST", "/v1/sessions", "{\"user_id\":\"carol\"}", 201);
    char sid[64], path[512];
    snprintf(sid, sizeof sid, "%s", str(ss, "session_id"));
    assert_int_equal(strlen(sid), 36);
    assert_string_equal(str(ss, "user_id"), "carol");
    json_decref(ss);

    snprintf(path, sizeof path, "/v1/sessions/%s/messages", sid);
    json_t *r = st_json(&s, "POST", path,
                        "{\"user_id\":\"carol\",\"messages\":["
                        "{\"role\":\"user\",\"content\":\"I live in Austin.\","
                        "\"time\":\"2024-03-01T10:00:00Z\"},"
                        "{\"role\":\"assistant\",\"content\":\"Good to know.\","
                        "\"time\":\"2024-03-01T10:00:05Z\"}]}",
                        201);
    json_t *ids = json_object_get(r, "ids");
    assert_int_equal(json_array_size(ids), 2);
    /* A turn over the text limit fails the whole request: the first turn
     * is not stored either. */
    size_t big_len = 40 * 1024;
    char *big = malloc(big_len + 256);
    assert_non_null(big);
    int off = snprintf(big, 256,
                       "{\"user_id\":\"carol\",\"messages\":[{\"role\":\"user\",\"content\":"
                       "\"I work at Initech.\"},{\"role\":\"user\",\"content\":\"");
    memset(big + off, 'z', big_len);
    strcpy(big + off + big_len, "\"}]}");
    expect_err(&s, "POST", path, big, 413, "messages[1].content");
    free(big);
    assert_true(json_integer_value(json_object_get(r, "facts_added")) >= 1);
    char turn[64];
    snprintf(turn, sizeof turn, "%s", json_string_value(json_array_get(ids, 0)));
    json_decref(r);

    snprintf(path, sizeof path,
             "/v1/sessions/%s/context?user_id=carol&query=where+do+I+live&time=2024-03-02", sid);
    json_t *c = st_json(&s, "GET", path, NULL, 200);
    json_t *prof = json_object_get(c, "profile");
    assert_true(json_array_size(prof) >= 1);
    assert_string_equal(fact_value(prof, "location.city"), "Austin");
    assert_int_equal(json_array_size(json_object_get(c, "recent")), 2);
    assert_string_equal(str(json_array_get(json_object_get(c, "recent"), 0), "text"),
                        "I live in Austin.");
    const char *text = str(c, "context");
    const char *pa = strstr(text, "Austin"), *pr = strstr(text, "Good to know.");
    assert_non_null(pa);
    assert_non_null(pr);
    assert_true(pa < pr); /* the profile comes before the recent turns */
    assert_true(json_is_integer(json_object_get(c, "tokens")));
    json_decref(c);
    /* A user with nothing yet has an empty context, not an error. */
    c = st_json(&s, "GET", "/v1/sessions/x/context?user_id=newcomer", NULL, 200);
    assert_int_equal(json_array_size(json_object_get(c, "profile")), 0);
    assert_string_equal(str(c, "context"), "");
    json_decref(c);

    json_t *p = st_json(&s, "GET", "/v1/users/carol/profile", NULL, 200);
    json_t *facts = json_object_get(p, "facts");
    assert_string_equal(fact_value(facts, "location.city"), "Austin");
    char fid[64] = "";
    for (size_t i = 0; i < json_array_size(facts); i++) {
        json_t *f = json_array_get(facts, i);
        if (!strcmp(str(f, "slot"), "location.city")) {
            snprintf(fid, sizeof fid, "%s", str(f, "id"));
            assert_string_equal(str(f, "state"), "current");
            assert_true(json_is_null(json_object_get(f, "valid_to")));
            assert_string_equal(json_string_value(json_array_get(json_object_get(f, "sources"), 0)),
                                turn);
        }
    }
    json_decref(p);
    p = st_json(&s, "GET", "/v1/users/carol/profile?history=true", NULL, 200);
    assert_true(json_array_size(json_object_get(p, "facts")) >= 1);
    json_decref(p);

    snprintf(path, sizeof path, "/v1/users/carol/history/%s", fid);
    json_t *h = st_json(&s, "GET", path, NULL, 200);
    json_t *ch = json_array_get(json_object_get(h, "changes"), 0);
    assert_string_equal(str(ch, "event"), "add");
    assert_string_equal(str(ch, "new_value"), "Austin");
    assert_true(json_is_null(json_object_get(ch, "old_value")));
    json_decref(h);
    /* A memory's history: the fact changes it caused. */
    snprintf(path, sizeof path, "/v1/users/carol/history/%s", turn);
    h = st_json(&s, "GET", path, NULL, 200);
    json_t *chs = json_object_get(h, "changes");
    assert_true(json_array_size(chs) >= 1);
    for (size_t i = 0; i < json_array_size(chs); i++)
        assert_string_equal(str(json_array_get(chs, i), "source"), turn);
    json_decref(h);

    json_t *e = st_json(&s, "GET", "/v1/users/carol/events", NULL, 200);
    assert_true(json_is_array(json_object_get(e, "events")));
    json_decref(e);
    json_t *g = st_json(&s, "GET", "/v1/users/carol/graph?depth=2", NULL, 200);
    assert_true(json_is_array(json_object_get(g, "nodes")));
    assert_true(json_is_array(json_object_get(g, "edges")));
    assert_int_equal(json_integer_value(json_object_get(g, "depth")), 2);
    assert_true(json_array_size(json_object_get(g, "edges")) >= 1);
    json_decref(g);
    g = st_json(&s, "GET", "/v1/users/carol/graph/search?q=Austin", NULL, 200);
    assert_true(json_is_array(json_object_get(g, "nodes")));
    json_decref(g);

    /* Chat without a model: the context, no reply, the turn remembered. */
    snprintf(path, sizeof path, "/v1/sessions/%s/chat", sid);
    json_t *ct = st_json(&s, "POST", path,
                         "{\"user_id\":\"carol\",\"message\":\"Which city do I live in?\"}", 200);
    assert_true(json_is_null(json_object_get(ct, "reply")));
    assert_true(json_is_null(json_object_get(ct, "model")));
    json_t *cc = json_object_get(ct, "context");
    assert_string_equal(fact_value(json_object_get(cc, "profile"), "location.city"), "Austin");
    assert_true(json_is_string(json_object_get(ct, "user_turn")));
    json_decref(ct);
    assert_int_equal(count(&s, "carol"), 3);
    st_stop(&s, false);
}

/* Lines of an NDJSON body, parsed. */
static json_t *ndjson(const st_resp *r)
{
    json_t *arr = json_array();
    const char *p = r->body;
    while (*p) {
        const char *e = strchr(p, '\n');
        assert_non_null(e); /* every line ends */
        json_error_t je;
        json_t *o = json_loadb(p, (size_t)(e - p), 0, &je);
        if (!o)
            fail_msg("bad line: %s", je.text);
        json_array_append_new(arr, o);
        p = e + 1;
    }
    return arr;
}

static json_t *by_text(json_t *arr, const char *text)
{
    for (size_t i = 0; i < json_array_size(arr); i++)
        if (!strcmp(str(json_array_get(arr, i), "text"), text))
            return json_array_get(arr, i);
    fail_msg("no memory \"%s\"", text);
    return NULL;
}

static void test_export_import_erase(void **state)
{
    (void)state;
    st_server s;
    st_start(&s, "http_native_io", NULL);
    json_t *b = st_json(&s, "POST", "/v1/memories/batch",
                        "{\"memories\":["
                        "{\"user_id\":\"dave\",\"text\":\"Booked a flight to Lisbon\","
                        "\"time\":\"2023-11-02T08:30:00.123456Z\",\"metadata\":{\"pi\":"
                        "3.141592653589793,\"tags\":[\"travel\"],\"deep\":{\"x\":null}}},"
                        "{\"user_id\":\"dave\",\"text\":\"Lisbon hotel is near the river\","
                        "\"salience\":0.3,\"kind\":\"fact\"},"
                        "{\"user_id\":\"dave\",\"text\":\"Packed the blue suitcase\","
                        "\"agent_id\":\"trip\",\"session_id\":\"t1\",\"role\":\"assistant\"}]}",
                        201);
    json_decref(b);

    st_resp r = st_call(&s, "GET", "/v1/users/dave/export", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.content_type, "application/x-ndjson"));
    json_t *orig = ndjson(&r);
    st_resp_free(&r);
    assert_int_equal(json_array_size(orig), 3);
    size_t dim = json_array_size(json_object_get(json_array_get(orig, 0), "embedding"));
    assert_true(dim > 0);

    json_t *req = json_pack("{s:O, s:b}", "memories", orig, "new_ids", 1);
    char *body = json_dumps(req, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(req);
    json_t *im = st_json(&s, "POST", "/v1/users/erin/import", body, 200);
    assert_int_equal(json_integer_value(json_object_get(im, "imported")), 3);
    json_decref(im);
    /* The same ids again (the original user still has them): refused. */
    req = json_pack("{s:O}", "memories", orig);
    char *body2 = json_dumps(req, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(req);
    expect_err(&s, "POST", "/v1/users/dave/import", body2, 409, "memories[0]");
    assert_int_equal(count(&s, "dave"), 3);

    r = st_call(&s, "GET", "/v1/users/erin/export", NULL, NULL);
    assert_int_equal(r.status, 200);
    json_t *copy = ndjson(&r);
    st_resp_free(&r);
    assert_int_equal(json_array_size(copy), 3);
    static const char *const same[] = { "time",   "record_time", "metadata", "embedding",
                                        "salience", "decay_rate", "kind",     "state",
                                        "agent_id", "session_id", "role",     "access_count" };
    for (size_t i = 0; i < 3; i++) {
        json_t *a = json_array_get(orig, i);
        json_t *c = by_text(copy, str(a, "text"));
        assert_string_equal(str(c, "user_id"), "erin");
        assert_string_not_equal(str(c, "id"), str(a, "id"));
        for (size_t k = 0; k < sizeof same / sizeof same[0]; k++)
            if (!json_equal(json_object_get(a, same[k]), json_object_get(c, same[k])))
                fail_msg("memory %zu: %s differs", i, same[k]);
    }
    json_decref(copy);

    /* Erase: gone from the list, the search and the export. */
    json_t *er = st_json(&s, "DELETE", "/v1/users/dave?wait=true", NULL, 200);
    assert_int_equal(json_integer_value(json_object_get(er, "erased")), 3);
    assert_string_equal(str(er, "user_id"), "dave");
    json_decref(er);
    assert_int_equal(count(&s, "dave"), 0);
    json_t *sr = st_json(&s, "POST", "/v1/search", "{\"user_id\":\"dave\",\"query\":\"Lisbon\"}",
                         200);
    assert_int_equal(json_array_size(json_object_get(sr, "results")), 0);
    json_decref(sr);
    r = st_call(&s, "GET", "/v1/users/dave/export", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    st_resp_free(&r);
    /* erin's copy is untouched. */
    assert_int_equal(count(&s, "erin"), 3);
    sr = st_json(&s, "POST", "/v1/search", "{\"user_id\":\"erin\",\"query\":\"Lisbon hotel\"}",
                 200);
    assert_true(json_array_size(json_object_get(sr, "results")) >= 1);
    json_decref(sr);

    free(body);
    free(body2);
    json_decref(orig);
    st_stop(&s, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memories),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_sessions_knowledge),
        cmocka_unit_test(test_export_import_erase),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
