/*
 * test_keys.c -- the API key store (src/server/keys.c): a created key
 * maps to its tenant; wrong secrets, a right id with a wrong tail and
 * revoked keys are refused; the file holds a salted hash and never the
 * secret; a handle picks up another writer's change; a damaged file is
 * DM_ECORRUPT with a message saying where; bad tenant names are refused;
 * checks from many threads while the file changes.
 */
// ctest-labels: concurrency
// ctest-timeout: 60
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "base/alloc.h"
#include "deltamemory.h"
#include "server/keys.h"
#include "testutil.h"

#define SECRET_LEN 59

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    p[n] = 0;
    fclose(f);
    return p;
}

static void spit(const char *path, const char *text)
{
    /* Through a rename, as a careful editor would: a new inode, so that a
     * running handle sees the change whatever the clock's granularity. */
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.edit", path);
    FILE *f = fopen(tmp, "wb");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, path), 0);
}

static char *create(const char *dir, const char *tenant, const char *label,
                    char id[HTTP_KEY_ID_LEN + 1])
{
    char *secret = NULL;
    int rc = http_keys_create(dir, tenant, label, &secret, id);
    if (rc)
        fail_msg("http_keys_create %s: %s (%s)", tenant, dm_errname(rc), dm_errmsg());
    assert_non_null(secret);
    return secret;
}

static bool check(http_keys *k, const char *secret, char tenant[HTTP_TENANT_CAP])
{
    char id[HTTP_KEY_ID_LEN + 1];
    bool ok = http_keys_check(k, secret, tenant, id);
    if (!ok) {
        assert_string_equal(tenant, "");
        assert_string_equal(id, "");
    } else if (secret && strlen(secret) >= 3 + HTTP_KEY_ID_LEN) {
        assert_memory_equal(id, secret + 3, HTTP_KEY_ID_LEN);
    }
    return ok;
}

static void test_create_check(void **state)
{
    (void)state;
    char dir[4096], tenant[HTTP_TENANT_CAP], id1[HTTP_KEY_ID_LEN + 1], id2[HTTP_KEY_ID_LEN + 1];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir("keys_create"));

    /* No file: no keys, nothing passes; a NULL handle has no keys. */
    http_keys *k = NULL;
    assert_int_equal(http_keys_open(dir, &k), DM_OK);
    assert_false(http_keys_any(k));
    assert_false(http_keys_any(NULL));
    http_keys_close(k);

    char *s1 = create(dir, "acme", "ci runner", id1);
    char *s2 = create(dir, "globex", NULL, id2);
    assert_int_equal(strlen(s1), SECRET_LEN);
    assert_memory_equal(s1, "dm_", 3);
    assert_memory_equal(s1 + 3, id1, HTTP_KEY_ID_LEN);
    assert_int_equal(s1[15], '_');
    assert_string_not_equal(id1, id2);
    assert_string_not_equal(s1 + 16, s2 + 16);

    assert_int_equal(http_keys_open(dir, &k), DM_OK);
    assert_true(http_keys_any(k));
    assert_true(check(k, s1, tenant));
    assert_string_equal(tenant, "acme");
    assert_true(check(k, s2, tenant));
    assert_string_equal(tenant, "globex");

    /* The listing: both keys, newest last, never a hash or a salt. */
    json_t *l = NULL;
    assert_int_equal(http_keys_list(dir, &l), DM_OK);
    json_t *arr = json_object_get(l, "keys");
    assert_int_equal(json_array_size(arr), 2);
    json_t *e = json_array_get(arr, 0);
    assert_string_equal(json_string_value(json_object_get(e, "id")), id1);
    assert_string_equal(json_string_value(json_object_get(e, "tenant")), "acme");
    assert_string_equal(json_string_value(json_object_get(e, "label")), "ci runner");
    assert_true(json_is_null(json_object_get(e, "revoked")));
    assert_int_equal(strlen(json_string_value(json_object_get(e, "created"))), 20);
    assert_null(json_object_get(e, "hash"));
    assert_null(json_object_get(e, "salt"));
    assert_true(json_is_null(json_object_get(json_array_get(arr, 1), "label")));
    json_decref(l);

    http_keys_close(k);
    dm_free(s1);
    dm_free(s2);
    tu_rmrf(dir);
}

static void test_refusals(void **state)
{
    (void)state;
    char dir[4096], tenant[HTTP_TENANT_CAP], id[HTTP_KEY_ID_LEN + 1], id2[HTTP_KEY_ID_LEN + 1];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir("keys_refusals"));
    char *s = create(dir, "acme", NULL, id);
    char *s2 = create(dir, "globex", NULL, id2);
    http_keys *k = NULL;
    assert_int_equal(http_keys_open(dir, &k), DM_OK);
    assert_true(check(k, s, tenant));

    char bad[128];
    /* The right id with another tail, one character changed anywhere. */
    for (size_t pos = 16; pos < SECRET_LEN; pos += 7) {
        snprintf(bad, sizeof bad, "%s", s);
        bad[pos] = bad[pos] == 'A' ? 'B' : 'A';
        assert_false(check(k, bad, tenant));
    }
    /* Another key's tail under this id, and this tail under an unknown id. */
    snprintf(bad, sizeof bad, "dm_%s_%s", id, s2 + 16);
    assert_false(check(k, bad, tenant));
    snprintf(bad, sizeof bad, "dm_%s_%s", "000000000000", s + 16);
    assert_false(check(k, bad, tenant));
    /* Malformed: cut, one more character, an upper-case id, other prefix,
     * empty, NULL. */
    snprintf(bad, sizeof bad, "%.*s", SECRET_LEN - 1, s);
    assert_false(check(k, bad, tenant));
    snprintf(bad, sizeof bad, "%sA", s);
    assert_false(check(k, bad, tenant));
    snprintf(bad, sizeof bad, "%s", s);
    for (int i = 3; i < 15; i++)
        if (bad[i] >= 'a')
            bad[i] = (char)(bad[i] - 'a' + 'A');
    if (strcmp(bad, s))
        assert_false(check(k, bad, tenant));
    snprintf(bad, sizeof bad, "xx%s", s + 2);
    assert_false(check(k, bad, tenant));
    assert_false(check(k, "", tenant));
    assert_false(check(k, NULL, tenant));

    /* Revoked: refused by a fresh handle; the other key still works. */
    assert_int_equal(http_keys_revoke(dir, id), DM_OK);
    json_t *l = NULL;
    assert_int_equal(http_keys_list(dir, &l), DM_OK);
    json_t *first_key = json_array_get(json_object_get(l, "keys"), 0);
    const char *when = json_string_value(json_object_get(first_key, "revoked"));
    assert_non_null(when);
    char first[32];
    snprintf(first, sizeof first, "%s", when);
    json_decref(l);
    http_keys *k2 = NULL;
    assert_int_equal(http_keys_open(dir, &k2), DM_OK);
    assert_false(check(k2, s, tenant));
    assert_true(check(k2, s2, tenant));
    assert_string_equal(tenant, "globex");
    http_keys_close(k2);

    /* Revoking again keeps the first time; unknown and malformed ids. */
    sleep_ms(1100);
    assert_int_equal(http_keys_revoke(dir, id), DM_OK);
    assert_int_equal(http_keys_list(dir, &l), DM_OK);
    first_key = json_array_get(json_object_get(l, "keys"), 0);
    assert_string_equal(json_string_value(json_object_get(first_key, "revoked")), first);
    json_decref(l);
    assert_int_equal(http_keys_revoke(dir, "0123456789ab"), DM_ENOTFOUND);
    assert_int_equal(http_keys_revoke(dir, "nothex"), DM_EINVAL);
    assert_int_equal(http_keys_revoke(dir, "0123456789AB"), DM_EINVAL);

    /* Every key revoked: a fresh handle has no keys. */
    assert_int_equal(http_keys_revoke(dir, id2), DM_OK);
    assert_int_equal(http_keys_open(dir, &k2), DM_OK);
    assert_false(http_keys_any(k2));
    assert_false(check(k2, s2, tenant));
    http_keys_close(k2);

    http_keys_close(k);
    dm_free(s);
    dm_free(s2);
    tu_rmrf(dir);
}

static void test_file(void **state)
{
    (void)state;
    char dir[4096], path[4200], id[HTTP_KEY_ID_LEN + 1];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir("keys_file"));
    snprintf(path, sizeof path, "%s/keys.json", dir);
    char *s = create(dir, "acme", "label \"quoted\"", id);

    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_int_not_equal(access(tmp, F_OK), 0);

    /* Neither the secret nor its random tail is in the file. */
    char *text = slurp(path);
    assert_non_null(text);
    assert_null(strstr(text, s));
    assert_null(strstr(text, s + 16));

    /* The documented fields, and hash = SHA-256(salt || secret). */
    json_t *doc = json_loads(text, 0, NULL);
    assert_non_null(doc);
    assert_int_equal(json_integer_value(json_object_get(doc, "version")), 1);
    json_t *e = json_array_get(json_object_get(doc, "keys"), 0);
    assert_int_equal(json_object_size(e), 7);
    assert_string_equal(json_string_value(json_object_get(e, "id")), id);
    assert_string_equal(json_string_value(json_object_get(e, "tenant")), "acme");
    assert_string_equal(json_string_value(json_object_get(e, "label")), "label \"quoted\"");
    assert_true(json_is_null(json_object_get(e, "revoked")));
    const char *salt_hex = json_string_value(json_object_get(e, "salt"));
    const char *hash_hex = json_string_value(json_object_get(e, "hash"));
    assert_int_equal(strlen(salt_hex), 32);
    assert_int_equal(strlen(hash_hex), 64);
    unsigned char buf[16 + SECRET_LEN], md[32];
    for (int i = 0; i < 16; i++) {
        unsigned v;
        assert_int_equal(sscanf(salt_hex + 2 * i, "%2x", &v), 1);
        buf[i] = (unsigned char)v;
    }
    memcpy(buf + 16, s, SECRET_LEN);
    unsigned int mdl = 0;
    assert_int_equal(EVP_Digest(buf, sizeof buf, md, &mdl, EVP_sha256(), NULL), 1);
    char want[65];
    for (int i = 0; i < 32; i++)
        snprintf(want + 2 * i, 3, "%02x", md[i]);
    assert_string_equal(hash_hex, want);
    json_decref(doc);
    free(text);

    /* Fields this version does not know survive a rewrite, and a key
     * without a label is read. */
    spit(path, "{\"version\": 1, \"note\": \"kept\", \"keys\": [{\"id\": \"00000000000a\", "
               "\"tenant\": \"t\", \"created\": \"2026-01-01T00:00:00Z\", \"salt\": "
               "\"00000000000000000000000000000000\", \"hash\": "
               "\"0000000000000000000000000000000000000000000000000000000000000000\", "
               "\"x-extra\": [1, 2]}]}");
    char *s2 = create(dir, "acme", NULL, id);
    text = slurp(path);
    doc = json_loads(text, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(doc, "note")), "kept");
    e = json_array_get(json_object_get(doc, "keys"), 0);
    assert_int_equal(json_array_size(json_object_get(e, "x-extra")), 2);
    assert_int_equal(json_array_size(json_object_get(doc, "keys")), 2);
    json_decref(doc);
    free(text);
    http_keys *k = NULL;
    char tenant[HTTP_TENANT_CAP];
    assert_int_equal(http_keys_open(dir, &k), DM_OK);
    assert_true(check(k, s2, tenant));
    assert_false(check(k, s, tenant));
    http_keys_close(k);

    /* A key file in a directory that does not exist yet is made with it. */
    char sub[4300];
    snprintf(sub, sizeof sub, "%s/new", dir);
    char *s3 = create(sub, "acme", NULL, id);
    assert_int_equal(stat(sub, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    /* but revoke and list do not make it. */
    snprintf(sub, sizeof sub, "%s/absent", dir);
    assert_int_not_equal(http_keys_revoke(sub, id), DM_OK);
    json_t *l = NULL;
    assert_int_equal(http_keys_list(sub, &l), DM_OK);
    assert_int_equal(json_array_size(json_object_get(l, "keys")), 0);
    json_decref(l);
    assert_int_not_equal(access(sub, F_OK), 0);

    dm_free(s);
    dm_free(s2);
    dm_free(s3);
    tu_rmrf(dir);
}

/* The worked example of docs/format.md, "API keys": the documented
 * secret opens the documented file. */
static void test_worked_example(void **state)
{
    (void)state;
    char dir[4096], path[4200], tenant[HTTP_TENANT_CAP];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir("keys_example"));
    snprintf(path, sizeof path, "%s/keys.json", dir);
    const char *secret = "dm_0123456789ab_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    const char *file =
        "{\n  \"version\": 1,\n  \"keys\": [\n    {\n      \"id\": \"0123456789ab\",\n"
        "      \"tenant\": \"acme\",\n      \"label\": \"ci runner\",\n"
        "      \"created\": \"2026-11-26T10:24:01Z\",\n      \"revoked\": null,\n"
        "      \"salt\": \"000102030405060708090a0b0c0d0e0f\",\n      \"hash\": "
        "\"c286c0c0f74909d99485062401ebb6e08a8301c99485b4bdb9fca1667459bfb4\"\n    }\n  ]\n}\n";
    spit(path, file);
    http_keys *k = NULL;
    assert_int_equal(http_keys_open(dir, &k), DM_OK);
    assert_true(check(k, secret, tenant));
    assert_string_equal(tenant, "acme");
    http_keys_close(k);
    /* One salt digit changed: the same secret no longer opens it. */
    char *edited = strdup(file);
    *strstr(edited, "0f\"") = '1';
    spit(path, edited);
    free(edited);
    assert_int_equal(http_keys_open(dir, &k), DM_OK);
    assert_false(check(k, secret, tenant));
    http_keys_close(k);
    tu_rmrf(dir);
}

static void test_reload(void **state)
{
    (void)state;
    char dir[4096], path[4200], tenant[HTTP_TENANT_CAP], id[HTTP_KEY_ID_LEN + 1];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir("keys_reload"));
    snprintf(path, sizeof path, "%s/keys.json", dir);
    http_keys *k = NULL;
    assert_int_equal(http_keys_open(dir, &k), DM_OK);
    assert_false(http_keys_any(k));

    /* Another writer adds a key: seen within a second (and not before the
     * next look at the file, which is at most once a second). */
    char *s = create(dir, "acme", NULL, id);
    sleep_ms(1100);
    assert_true(http_keys_any(k));
    assert_true(check(k, s, tenant));
    assert_string_equal(tenant, "acme");

    /* A damaged file on reload leaves the keys in force. */
    char *good = slurp(path);
    spit(path, "{\"version\": 1, \"keys\": [");
    sleep_ms(1100);
    assert_true(check(k, s, tenant));
    spit(path, good);
    free(good);

    /* Revoked by another writer: refused within a second; the handle
     * stays keyed, so a server that had keys does not open up. */
    assert_int_equal(http_keys_revoke(dir, id), DM_OK);
    sleep_ms(1100);
    assert_false(check(k, s, tenant));
    assert_true(http_keys_any(k));

    /* The file removed: still keyed, still refused. */
    assert_int_equal(unlink(path), 0);
    sleep_ms(1100);
    assert_true(http_keys_any(k));
    assert_false(check(k, s, tenant));
    http_keys_close(k);
    dm_free(s);
    tu_rmrf(dir);
}

static void expect_corrupt(const char *dir, const char *path, const char *text, int want,
                           const char *msg_part)
{
    spit(path, text);
    http_keys *k = (http_keys *)1;
    int rc = http_keys_open(dir, &k);
    if (rc != want)
        fail_msg("%s: open gave %s (%s), want %s", text, dm_errname(rc), dm_errmsg(),
                 dm_errname(want));
    assert_null(k);
    if (!strstr(dm_errmsg(), "keys.json") || !strstr(dm_errmsg(), msg_part))
        fail_msg("%s: message \"%s\" lacks the file or \"%s\"", text, dm_errmsg(), msg_part);
    json_t *l = (json_t *)1;
    assert_int_equal(http_keys_list(dir, &l), want);
    assert_null(l);
    /* A writer never replaces a file it cannot read. */
    char *secret = (char *)1, id[HTTP_KEY_ID_LEN + 1];
    assert_int_equal(http_keys_create(dir, "acme", NULL, &secret, id), want);
    assert_null(secret);
    assert_int_equal(http_keys_revoke(dir, "00000000000a"), want);
    char *now = slurp(path);
    assert_string_equal(now, text);
    free(now);
}

static void test_corrupt(void **state)
{
    (void)state;
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir("keys_corrupt"));
    snprintf(path, sizeof path, "%s/keys.json", dir);
    const char *k0 = "{\"id\": \"00000000000a\", \"tenant\": \"t\", \"created\": \"x\", "
                     "\"salt\": \"00000000000000000000000000000000\", \"hash\": "
                     "\"0000000000000000000000000000000000000000000000000000000000000000\"";
    char buf[1024];
    expect_corrupt(dir, path, "", DM_ECORRUPT, "line");
    expect_corrupt(dir, path, "{\"version\": 1, \"keys\": [", DM_ECORRUPT, "line 1");
    expect_corrupt(dir, path, "[]", DM_ECORRUPT, "not a JSON object");
    expect_corrupt(dir, path, "{\"keys\": []}", DM_ECORRUPT, "version");
    expect_corrupt(dir, path, "{\"version\": 2, \"keys\": []}", DM_EVERSION, "version 2");
    expect_corrupt(dir, path, "{\"version\": 1}", DM_ECORRUPT, "\"keys\"");
    expect_corrupt(dir, path, "{\"version\": 1, \"keys\": [3]}", DM_ECORRUPT, "keys[0]");
    expect_corrupt(dir, path, "{\"version\": 1, \"version\": 1, \"keys\": []}", DM_ECORRUPT,
                   "duplicate");
    snprintf(buf, sizeof buf, "{\"version\": 1, \"keys\": [%s}, %s}]}", k0, k0);
    expect_corrupt(dir, path, buf, DM_ECORRUPT, "keys[1].id");
    snprintf(buf, sizeof buf,
             "{\"version\": 1, \"keys\": [%s, \"revoked\": \"2026-01-01T00:00:00Z\"}, %s}, "
             "%s}]}", k0, k0, k0);
    expect_corrupt(dir, path, buf, DM_ECORRUPT, "keys[1].id is used by keys[0]");
    snprintf(buf, sizeof buf, "{\"version\": 1, \"keys\": [%s, \"tenant\": 5}]}", k0);
    expect_corrupt(dir, path, buf, DM_ECORRUPT, "duplicate"); /* a repeated member */
    const char *bad_members[][2] = {
        { "\"id\": \"00000000000A\"", "keys[0].id" },
        { "\"id\": \"abc\"", "keys[0].id" },
        { "\"tenant\": \"a/b\"", "keys[0].tenant" },
        { "\"tenant\": null", "keys[0].tenant" },
        { "\"salt\": \"00\"", "keys[0].salt" },
        { "\"hash\": \"zz00000000000000000000000000000000000000000000000000000000000000\"",
          "keys[0].hash" },
        { "\"created\": 7", "keys[0].created" },
        { "\"label\": 7", "keys[0].label" },
        { "\"revoked\": false", "keys[0].revoked" },
    };
    for (size_t i = 0; i < sizeof bad_members / sizeof bad_members[0]; i++) {
        /* The member replaces the good one of the same name. */
        char member[256];
        snprintf(member, sizeof member, "{%s}", bad_members[i][0]);
        json_t *m = json_loads(member, 0, NULL);
        snprintf(buf, sizeof buf, "%s}", k0);
        json_t *o = json_loads(buf, 0, NULL);
        assert_non_null(m);
        assert_non_null(o);
        json_object_update(o, m);
        json_t *doc = json_pack("{s:i, s:[O]}", "version", 1, "keys", o);
        char *t = json_dumps(doc, JSON_PRESERVE_ORDER);
        expect_corrupt(dir, path, t, DM_ECORRUPT, bad_members[i][1]);
        free(t);
        json_decref(doc);
        json_decref(o);
        json_decref(m);
    }
    tu_rmrf(dir);
}

static void test_bad_tenants(void **state)
{
    (void)state;
    char dir[4096], path[4200], id[HTTP_KEY_ID_LEN + 1];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir("keys_tenants"));
    snprintf(path, sizeof path, "%s/keys.json", dir);
    char long_name[200];
    memset(long_name, 'x', sizeof long_name);
    long_name[128] = 0;
    const char *bad[] = { "", long_name, "a/b", "/", "a\nb", "tab\there", "del\x7f",
                          "\xff\xfe", "caf\xc3", "\xc0\xaf" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *secret = (char *)1;
        int rc = http_keys_create(dir, bad[i], NULL, &secret, id);
        if (rc != DM_EINVAL)
            fail_msg("tenant #%zu: %s, want DM_EINVAL", i, dm_errname(rc));
        assert_non_null(strstr(dm_errmsg(), "tenant"));
        assert_null(secret);
        assert_string_equal(id, "");
    }
    char *secret = (char *)1;
    assert_int_equal(http_keys_create(dir, NULL, NULL, &secret, id), DM_EINVAL);
    char bad_label[] = "ok\xff";
    assert_int_equal(http_keys_create(dir, "acme", bad_label, &secret, id), DM_EINVAL);
    assert_int_not_equal(access(path, F_OK), 0); /* nothing was written */

    /* The limits themselves are accepted: 127 bytes, UTF-8, spaces. */
    long_name[127] = 0;
    const char *good[] = { long_name, "caf\xc3\xa9", "a b", "x" };
    http_keys *k = NULL;
    char *secrets[4];
    for (size_t i = 0; i < 4; i++)
        secrets[i] = create(dir, good[i], NULL, id);
    assert_int_equal(http_keys_open(dir, &k), DM_OK);
    for (size_t i = 0; i < 4; i++) {
        char tenant[HTTP_TENANT_CAP];
        assert_true(check(k, secrets[i], tenant));
        assert_string_equal(tenant, good[i]);
        dm_free(secrets[i]);
    }
    http_keys_close(k);
    tu_rmrf(dir);
}

/* Checks from several threads while another writer adds keys: every
 * check of the first key passes, and the new key is seen. */
typedef struct race {
    http_keys *k;
    const char *s1;
    char s2[SECRET_LEN + 1];
    atomic_bool is_published, stop;
    atomic_int n_bad, n_seen2;
} race;

static void *checker(void *arg)
{
    race *r = arg;
    char tenant[HTTP_TENANT_CAP], id[HTTP_KEY_ID_LEN + 1];
    while (!atomic_load(&r->stop)) {
        if (!http_keys_check(r->k, r->s1, tenant, id) || strcmp(tenant, "one"))
            atomic_fetch_add(&r->n_bad, 1);
        if (atomic_load(&r->is_published) && http_keys_check(r->k, r->s2, tenant, id) &&
            !strcmp(tenant, "two"))
            atomic_fetch_add(&r->n_seen2, 1);
        if (http_keys_check(r->k, "dm_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                            tenant, id))
            atomic_fetch_add(&r->n_bad, 1);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    char dir[4096], id[HTTP_KEY_ID_LEN + 1];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir("keys_threads"));
    race r = { 0 };
    char *s1 = create(dir, "one", NULL, id);
    r.s1 = s1;
    assert_int_equal(http_keys_open(dir, &r.k), DM_OK);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, checker, &r), 0);
    sleep_ms(200);
    char *s2 = create(dir, "two", NULL, id);
    memcpy(r.s2, s2, SECRET_LEN + 1);
    atomic_store(&r.is_published, true);
    for (int i = 0; i < 40 && atomic_load(&r.n_seen2) == 0; i++)
        sleep_ms(100);
    /* And a few more reloads under load. */
    for (int i = 0; i < 3; i++) {
        char *x = create(dir, "three", NULL, id);
        dm_free(x);
        sleep_ms(400);
    }
    atomic_store(&r.stop, true);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&r.n_bad), 0);
    assert_true(atomic_load(&r.n_seen2) > 0);
    http_keys_close(r.k);
    dm_free(s1);
    dm_free(s2);
    tu_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_check), cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_file),         cmocka_unit_test(test_worked_example),
        cmocka_unit_test(test_reload),
        cmocka_unit_test(test_corrupt),      cmocka_unit_test(test_bad_tenants),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
