/*
 * test_http_core.c -- the server's own behaviour, before any dialect:
 * health, metrics, unknown routes, wrong methods, bad paths, the body
 * limit, the nesting limit, malformed JSON, rate limiting, and a stop
 * that lets a request in progress finish.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "srvtest.h"
#include "testutil.h"

static void test_health_metrics(void **state)
{
    (void)state;
    st_server s;
    st_start(&s, "http_core_health", NULL);
    json_t *j = st_json(&s, "GET", "/v1/health", NULL, 200);
    assert_true(json_is_true(json_object_get(j, "healthy")));
    assert_string_equal(json_string_value(json_object_get(j, "version")), dm_version());
    json_decref(j);
    st_resp r = st_call(&s, "GET", "/metrics", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.content_type, "text/plain"));
    assert_non_null(strstr(r.body, "deltamemory_http_requests_total{route=\"health\",code=\"2xx\"} 1"));
    assert_non_null(strstr(r.body, "deltamemory_memories 0"));
    assert_non_null(strstr(r.body, "\ndeltamemory_write_stalls_total 0\n"));
    assert_non_null(strstr(r.body, "\n# TYPE deltamemory_block_cache_hits_total counter\n"));
    assert_non_null(strstr(r.body, "\ndeltamemory_block_cache_misses_total "));
    assert_non_null(strstr(r.body, "\n# TYPE deltamemory_table_bytes gauge\n"));
    const char *heap = strstr(r.body, "\ndeltamemory_heap_bytes ");
    assert_non_null(heap);
    assert_true(strtoull(heap + strlen("\ndeltamemory_heap_bytes "), NULL, 10) > 0);
    assert_non_null(strstr(r.body, "\ndeltamemory_http_user_waiting 0\n"));
    assert_non_null(strstr(r.body, "\n# TYPE deltamemory_wal_sync_seconds histogram\n"));
    assert_non_null(strstr(r.body, "\ndeltamemory_wal_sync_seconds_bucket{le=\"0.00025\"} "));
    assert_non_null(strstr(r.body, "\ndeltamemory_wal_sync_seconds_bucket{le=\"+Inf\"} "));
    assert_non_null(strstr(r.body, "\ndeltamemory_wal_sync_seconds_count "));
    st_resp_free(&r);
    st_stop(&s, false);
}

static void expect_error(const st_server *s, const char *method, const char *path,
                         const char *body, long status, const char *code)
{
    st_resp r = st_call(s, method, path, body, NULL);
    if (r.status != status)
        fail_msg("%s %s: status %ld, want %ld: %s", method, path, r.status, status, r.body);
    json_t *e = json_object_get(r.json, "error");
    if (json_is_object(e))
        e = json_object_get(e, "code");
    else
        e = json_object_get(r.json, "code");
    if (!json_is_string(e) || strcmp(json_string_value(e), code))
        fail_msg("%s %s: error code %s, want %s", method, path, r.body, code);
    st_resp_free(&r);
}

static void test_errors(void **state)
{
    (void)state;
    st_server s;
    http_config c;
    http_config_init(&c);
    c.port = 0;
    c.max_body_len = 1000;
    c.max_depth = 4;
    st_start(&s, "http_core_errors", &c);
    expect_error(&s, "GET", "/no/such/route", NULL, 404, "not_found");
    expect_error(&s, "DELETE", "/metrics", NULL, 405, "method_not_allowed");
    expect_error(&s, "GET", "/metrics/%zz", NULL, 400, "bad_request");
    expect_error(&s, "GET", "/metrics/%00", NULL, 400, "bad_request");
    expect_error(&s, "GET", "/metrics/%ff%fe", NULL, 400, "bad_request");
    char big[2000];
    memset(big, ' ', sizeof big - 1);
    big[sizeof big - 1] = 0;
    expect_error(&s, "GET", "/metrics", big, 413, "too_large");
    expect_error(&s, "GET", "/metrics", "[[[[[1]]]]]", 400, "bad_request");
    expect_error(&s, "GET", "/metrics", "{\"a\": ", 400, "bad_request");
    expect_error(&s, "GET", "/metrics", "\"\xff\"", 400, "bad_request");
    st_stop(&s, false);
}

static void test_rate_limit(void **state)
{
    (void)state;
    st_server s;
    http_config c;
    http_config_init(&c);
    c.port = 0;
    c.rate_per_s = 0.001; /* no refill within the test */
    c.rate_burst = 3;
    st_start(&s, "http_core_rate", &c);
    /* Public routes are not limited. */
    for (int i = 0; i < 5; i++) {
        json_t *j = st_json(&s, "GET", "/v1/health", NULL, 200);
        json_decref(j);
    }
    /* Others take a token from the client address's bucket (no keys
     * here): three pass, the fourth is a 429 with Retry-After and a JSON
     * error, and it changed nothing. */
    for (int i = 0; i < 3; i++) {
        json_t *j = st_json(&s, "GET", "/v1/stats", NULL, 200);
        json_decref(j);
    }
    st_resp r = st_call(&s, "POST", "/v1/memories", "{\"user_id\": \"u\", \"text\": \"x\"}",
                        NULL);
    assert_int_equal(r.status, 429);
    json_t *e = json_object_get(json_object_get(r.json, "error"), "code");
    assert_string_equal(json_string_value(e), "rate_limited");
    st_resp_free(&r);
    dm_stats st;
    assert_int_equal(dm_stats_get(s.db, &st), DM_OK);
    assert_int_equal(st.n_memories, 0);
    st_stop(&s, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_metrics),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_rate_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
