/*
 * test_http_auth.c -- API keys through the running server: without keys
 * every request is the default tenant's and a key sent is ignored; with
 * keys the three header forms (X-API-Key, Authorization: Bearer and
 * Token) name the key, wrong and revoked keys do not; a key created or
 * revoked while the server runs takes effect within about a second; keys
 * allow a non-loopback address, no keys refuse it unless is_open.
 *
 * Which key a request was served under is read from the access log's
 * "who" field ("key:<id>", or "addr:<client>" when no key was accepted).
 * The built-in routes are all public; a route that needs a key is checked
 * on GET /v1/stats.
 */
// ctest-timeout: 60
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <time.h>

#include "base/alloc.h"
#include "server/keys.h"
#include "srvtest.h"
#include "testutil.h"
#include "tinymodel.h"

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static size_t count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    size_t n = 0;
    int c;
    if (!f)
        return 0;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

/* The "who" of the access log's line number i (0-based), waiting up to
 * 3 s for it to be written (the log is written after the response). */
static const char *who_of_line(const char *log, size_t i)
{
    static char who[128];
    for (int t = 0; t < 300 && count_lines(log) <= i; t++)
        sleep_ms(10);
    FILE *f = fopen(log, "r");
    assert_non_null(f);
    char line[4096];
    size_t n = 0;
    who[0] = 0;
    while (fgets(line, sizeof line, f)) {
        if (n++ != i)
            continue;
        json_t *j = json_loads(line, 0, NULL);
        assert_non_null(j);
        snprintf(who, sizeof who, "%s", json_string_value(json_object_get(j, "who")));
        json_decref(j);
        break;
    }
    fclose(f);
    if (!who[0])
        fail_msg("access log %s has no line %zu", log, i);
    return who;
}

/* GET /v1/health with one header (or none): a public route, so 200
 * whatever the key; returns under whom the log says it was served. */
static const char *health_who(const st_server *s, const char *log, const char *header)
{
    size_t before = count_lines(log);
    const char *h[] = { header, NULL };
    st_resp r = st_call(s, "GET", "/v1/health", NULL, header ? h : NULL);
    assert_int_equal(r.status, 200);
    st_resp_free(&r);
    return who_of_line(log, before);
}

static char *header(const char *fmt, const char *secret)
{
    static char buf[4][256];
    static int next;
    char *b = buf[next++ % 4];
    snprintf(b, sizeof buf[0], fmt, secret);
    return b;
}

/* The status of GET /v1/stats with one header; its error code in code
 * (either dialect's place for it). */
static long stats_status(const st_server *s, const char *hdr, char code[64])
{
    const char *h[] = { hdr, NULL };
    st_resp r = st_call(s, "GET", "/v1/stats", NULL, hdr ? h : NULL);
    long status = r.status;
    json_t *c = json_object_get(r.json, "code");
    if (!c)
        c = json_object_get(json_object_get(r.json, "error"), "code");
    snprintf(code, 64, "%s", json_is_string(c) ? json_string_value(c) : "");
    st_resp_free(&r);
    return status;
}

static void test_without_keys(void **state)
{
    (void)state;
    char logdir[4096], log[4200], code[64];
    snprintf(logdir, sizeof logdir, "%s", tu_tmpdir("http_auth_nokeys_log"));
    snprintf(log, sizeof log, "%s/access.log", logdir);
    http_config c;
    http_config_init(&c);
    c.port = 0;
    c.access_log = log;
    st_server s;
    st_start(&s, "http_auth_nokeys", &c);
    const char *fake = "dm_0123456789ab_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    assert_non_null(strstr(health_who(&s, log, NULL), "addr:"));
    assert_non_null(strstr(health_who(&s, log, header("X-API-Key: %s", fake)), "addr:"));
    assert_non_null(strstr(health_who(&s, log, header("Authorization: Token %s", fake)), "addr:"));
    /* A route that needs a key when there are keys serves without one. */
    long st = stats_status(&s, header("X-API-Key: %s", fake), code);
    assert_int_not_equal(st, 401);
    st = stats_status(&s, NULL, code);
    assert_int_not_equal(st, 401);
    st_resp r = st_call(&s, "GET", "/v1/nope", NULL, NULL);
    assert_int_equal(r.status, 404);
    st_resp_free(&r);
    st_stop(&s, false);
    tu_rmrf(logdir);
}

static void test_with_keys(void **state)
{
    (void)state;
    char dir[4096], log[4200], code[64];
    char id1[HTTP_KEY_ID_LEN + 1], id2[HTTP_KEY_ID_LEN + 1], id3[HTTP_KEY_ID_LEN + 1];
    char *s1 = NULL, *s2 = NULL, *s3 = NULL;
    snprintf(dir, sizeof dir, "%s", tu_tmpdir("http_auth_keys"));
    snprintf(log, sizeof log, "%s/access.log", dir);
    assert_int_equal(http_keys_create(dir, "acme", NULL, &s1, id1), DM_OK);
    assert_int_equal(http_keys_create(dir, "globex", NULL, &s2, id2), DM_OK);
    assert_int_equal(http_keys_create(dir, "acme", "old", &s3, id3), DM_OK);
    assert_int_equal(http_keys_revoke(dir, id3), DM_OK);

    http_config c;
    http_config_init(&c);
    c.port = 0;
    c.access_log = log;
    c.data_dir = dir;
    st_server s;
    st_start(&s, "http_auth_keyed", &c);
    char want1[32], want2[32];
    snprintf(want1, sizeof want1, "key:%s", id1);
    snprintf(want2, sizeof want2, "key:%s", id2);

    /* Public route: 200 with any key or none; the log names the key. */
    assert_non_null(strstr(health_who(&s, log, NULL), "addr:"));
    assert_string_equal(health_who(&s, log, header("X-API-Key: %s", s1)), want1);
    assert_string_equal(health_who(&s, log, header("Authorization: Bearer %s", s2)), want2);
    assert_string_equal(health_who(&s, log, header("Authorization: Token %s", s1)), want1);
    assert_string_equal(health_who(&s, log, header("authorization: bearer %s", s2)), want2);
    assert_string_equal(health_who(&s, log, header("x-api-key: %s", s2)), want2);
    char bad[128];
    snprintf(bad, sizeof bad, "%s", s1);
    bad[30] = bad[30] == 'A' ? 'B' : 'A';
    assert_non_null(strstr(health_who(&s, log, header("X-API-Key: %s", bad)), "addr:"));
    assert_non_null(strstr(health_who(&s, log, header("X-API-Key: %s", s3)), "addr:"));
    assert_non_null(strstr(health_who(&s, log, header("Authorization: Basic %s", s1)), "addr:"));

    /* An unknown route is a 404 with or without a key. */
    const char *h[] = { header("X-API-Key: %s", bad), NULL };
    st_resp r = st_call(&s, "GET", "/v1/nope", NULL, h);
    assert_int_equal(r.status, 404);
    st_resp_free(&r);
    r = st_call(&s, "GET", "/v1/nope", NULL, NULL);
    assert_int_equal(r.status, 404);
    st_resp_free(&r);

    /* A route that needs a key. */
    long st = stats_status(&s, NULL, code);
    assert_int_equal(st, 401);
    {
        assert_string_equal(code, "MISSING_API_KEY");
        assert_int_equal(stats_status(&s, header("X-API-Key: %s", bad), code), 401);
        assert_string_equal(code, "INVALID_API_KEY");
        assert_int_equal(stats_status(&s, header("Authorization: Token %s", s3), code), 401);
        assert_string_equal(code, "INVALID_API_KEY");
        assert_int_not_equal(stats_status(&s, header("Authorization: Token %s", s1), code), 401);
    }
    st_stop(&s, false);
    dm_free(s1);
    dm_free(s2);
    dm_free(s3);
    tu_rmrf(dir);
}

/* Waits up to 3 s for a request with hdr to be served as want (a prefix
 * of "who"). */
static bool becomes(const st_server *s, const char *log, const char *hdr, const char *want)
{
    for (int i = 0; i < 30; i++) {
        if (!strncmp(health_who(s, log, hdr), want, strlen(want)))
            return true;
        sleep_ms(100);
    }
    return false;
}

static void test_live_changes(void **state)
{
    (void)state;
    char logdir[4096], log[4200], code[64], id[HTTP_KEY_ID_LEN + 1], want[32];
    snprintf(logdir, sizeof logdir, "%s", tu_tmpdir("http_auth_live_log"));
    snprintf(log, sizeof log, "%s/access.log", logdir);
    http_config c;
    http_config_init(&c);
    c.port = 0;
    c.access_log = log;
    st_server s;
    st_start(&s, "http_auth_live", &c);
    char *secret = NULL;
    /* Created while the server runs, in its data directory. */
    assert_int_equal(http_keys_create(s.dir, "acme", NULL, &secret, id), DM_OK);
    snprintf(want, sizeof want, "key:%s", id);
    const char *hdr = header("X-API-Key: %s", secret);
    assert_true(becomes(&s, log, hdr, want));
    long st = stats_status(&s, NULL, code);
    assert_int_equal(st, 401);
    /* Revoked while it runs: refused; the server stays keyed. */
    assert_int_equal(http_keys_revoke(s.dir, id), DM_OK);
    assert_true(becomes(&s, log, hdr, "addr:"));
    st = stats_status(&s, hdr, code);
    assert_int_equal(st, 401);
    assert_string_equal(code, "INVALID_API_KEY");
    st_stop(&s, false);
    dm_free(secret);
    tu_rmrf(logdir);
}

static void test_bind(void **state)
{
    (void)state;
    char dir[4096], id[HTTP_KEY_ID_LEN + 1];
    char *secret = NULL;
    snprintf(dir, sizeof dir, "%s", tu_tmpdir("http_auth_bind_keys"));
    assert_int_equal(http_keys_create(dir, "acme", NULL, &secret, id), DM_OK);

    /* With a key: any address. */
    http_config c;
    http_config_init(&c);
    c.port = 0;
    c.host = "0.0.0.0";
    c.data_dir = dir;
    st_server s;
    st_start(&s, "http_auth_bind", &c);
    json_t *j = st_json(&s, "GET", "/v1/health", NULL, 200);
    json_decref(j);
    st_stop(&s, false);

    /* Without: refused, unless is_open; revoked keys do not count. */
    char dbdir[4096];
    snprintf(dbdir, sizeof dbdir, "%s", tu_tmpdir("http_auth_bind_db"));
    dm_options o;
    tm_options(&o);
    dm_db *db = NULL;
    assert_int_equal(dm_open(dbdir, &o, &db), DM_OK);
    c.data_dir = dbdir;
    http_server *srv = (http_server *)1;
    assert_int_equal(http_start(db, &c, &srv), DM_EINVAL);
    assert_null(srv);
    assert_non_null(strstr(dm_errmsg(), "loopback"));
    c.data_dir = NULL;
    assert_int_equal(http_start(db, &c, &srv), DM_EINVAL);
    assert_int_equal(http_keys_revoke(dir, id), DM_OK);
    c.data_dir = dir;
    assert_int_equal(http_start(db, &c, &srv), DM_EINVAL);
    c.is_open = true;
    assert_int_equal(http_start(db, &c, &srv), DM_OK);
    http_stop(srv, 1000);
    assert_int_equal(dm_close(db), DM_OK);
    dm_free(secret);
    tu_rmrf(dbdir);
    tu_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_without_keys),
        cmocka_unit_test(test_with_keys),
        cmocka_unit_test(test_live_changes),
        cmocka_unit_test(test_bind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
