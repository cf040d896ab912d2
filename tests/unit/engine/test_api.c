/*
 * test_api.c -- the public memory API (include/deltamemory.h), function by
 * function: the happy path of each call, every validation error the header
 * lists (with its code, its out-parameters cleared and an informative
 * dm_errmsg), and the documented behaviour of update, delete, list (order,
 * time range, cursor pagination while memories are added), search (vector
 * leg, keyword leg, time window, metadata filter, k), batches
 * (all-or-nothing), import fields, export, statistics, ids and the id and
 * time helpers.
 *
 * Every test opens a fresh database over the tiny test model
 * (tests/support/tinymodel.h), whose topics make the vector leg
 * predictable: a query of one topic's words is closest to the memories of
 * that topic even without a shared word.
 */
#include "testutil.h"
#include "tinymodel.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* The last error message must contain every one of the given words
 * (case-insensitive). */
static void msg_has(const char *what, const char *word)
{
    const char *m = dm_errmsg();
    if (!m || !strcasestr(m, word))
        fail_msg("%s: dm_errmsg \"%s\" does not mention \"%s\"", what,
                 m ? m : "(null)", word);
}

/*
 * Message checks in table-driven tests are soft: each miss is printed and
 * counted, and the test fails at its end (soft_check), so that one
 * uninformative message does not hide the rest of the table.
 */
static int n_soft_failures;

static void soft_check(void)
{
    int n = n_soft_failures;
    n_soft_failures = 0;
    if (n)
        fail_msg("%d error message(s) above lack the detail they should name", n);
}

/* The last error message must contain at least one of the n words. */
static void msg_has_any(const char *what, const char *const *words, size_t n)
{
    const char *m = dm_errmsg();
    for (size_t i = 0; i < n; i++)
        if (words[i] && strcasestr(m, words[i]))
            return;
    print_message("MESSAGE: %s: dm_errmsg \"%s\" does not mention \"%s\"\n", what, m,
                  words[0]);
    n_soft_failures++;
}

/* The message names position pos (0-based or 1-based) or the text c. */
static void msg_has_pos(const char *what, size_t pos, const char *c)
{
    char a[24], b[24];
    snprintf(a, sizeof a, "%zu", pos);
    snprintf(b, sizeof b, "%zu", pos + 1);
    const char *words[3] = { a, b, c };
    msg_has_any(what, words, c ? 3 : 2);
}

/* The last error message must mention a position (a word for it and a
 * digit). */
static void msg_has_position(const char *what)
{
    const char *m = dm_errmsg();
    static const char *const words[] = { "position", "offset", "column",
                                         "byte", "line", "char", "at " };
    int has_word = 0, has_digit = 0;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcasestr(m, words[i]))
            has_word = 1;
    for (const char *c = m; *c; c++)
        if (*c >= '0' && *c <= '9')
            has_digit = 1;
    if (!has_word || !has_digit)
        fail_msg("%s: dm_errmsg \"%s\" names no position", what, m);
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int id_is_zero(const dm_id *id)
{
    for (int i = 0; i < 16; i++)
        if (id->bytes[i])
            return 0;
    return 1;
}

static int id_eq(const dm_id *a, const dm_id *b)
{
    return memcmp(a->bytes, b->bytes, 16) == 0;
}

/* Metadata JSON texts are compared as JSON values (the engine may
 * normalize white space and key order). */
static void assert_json_eq(const char *got, const char *want)
{
    json_error_t e;
    json_t *g = json_loads(got, 0, &e);
    json_t *w = json_loads(want, 0, &e);
    if (!g || !w || !json_equal(g, w))
        fail_msg("metadata %s, want %s", got ? got : "(null)", want);
    json_decref(g);
    json_decref(w);
}

typedef struct fx {
    dm_db *db;
    dm_options o;
    char dir[4096];
} fx;

static int fx_open(fx *f)
{
    return dm_open(f->dir, &f->o, &f->db);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "%s", tu_tmpdir("test_api"));
    tm_options(&f->o);
    assert_rc(fx_open(f), DM_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    if (f) {
        assert_rc(dm_close(f->db), DM_OK);
        tu_rmrf(f->dir);
        free(f);
    }
    return 0;
}

static int add_full(dm_db *db, const char *tenant, const char *user,
                    const char *text, int64_t event_us, const char *meta,
                    dm_id *out)
{
    dm_add_params p;
    dm_add_params_init(&p);
    p.tenant = tenant;
    p.user_id = user;
    p.text = text;
    p.event_time_us = event_us;
    p.metadata = meta;
    return dm_add(db, &p, out);
}

static dm_id add_ok(dm_db *db, const char *user, const char *text)
{
    dm_id id;
    assert_rc(add_full(db, NULL, user, text, 0, NULL, &id), DM_OK);
    return id;
}

static dm_search_result *search_ok(dm_db *db, const char *user,
                                   const char *query, uint32_t k)
{
    dm_search_params sp;
    memset(&sp, 0, sizeof sp);
    sp.user_id = user;
    sp.query = query;
    sp.k = k;
    /* The legs and the fused relevance; recency, salience, MMR and context
     * neighbours are tested in tests/unit/retrieve. */
    sp.flags = DM_NO_MMR | DM_NO_NEIGHBOURS;
    sp.weights.similarity = 1; /* relevance alone: no recency, no salience */
    dm_search_result *r = NULL;
    assert_rc(dm_search(db, &sp, &r), DM_OK);
    assert_non_null(r);
    for (size_t i = 1; i < r->n; i++)
        assert_true(r->hits[i - 1].score >= r->hits[i].score);
    for (size_t i = 0; i < r->n; i++)
        assert_string_equal(r->hits[i].memory.user_id, user);
    return r;
}

static long hit_index(const dm_search_result *r, const dm_id *id)
{
    for (size_t i = 0; i < r->n; i++)
        if (id_eq(&r->hits[i].memory.id, id))
            return (long)i;
    return -1;
}

static int user_count(dm_db *db, const char *tenant, const char *user,
                      unsigned flags, size_t *n)
{
    dm_list_params lp;
    memset(&lp, 0, sizeof lp);
    lp.tenant = tenant;
    lp.user_id = user;
    lp.limit = 10000;
    lp.flags = flags;
    dm_list_result *r = NULL;
    int rc = dm_list(db, &lp, &r);
    *n = rc == DM_OK ? r->n : 0;
    if (rc == DM_OK)
        assert_null(r->next_cursor);
    dm_list_result_free(r);
    return rc;
}

static double norm_of(const float *v, uint32_t dim)
{
    double s = 0;
    for (uint32_t i = 0; i < dim; i++)
        s += (double)v[i] * v[i];
    return sqrt(s);
}

static double cos_of(const float *a, const float *b, uint32_t dim)
{
    double s = 0, na = norm_of(a, dim), nb = norm_of(b, dim);
    for (uint32_t i = 0; i < dim; i++)
        s += (double)a[i] * b[i];
    return (na > 0 && nb > 0) ? s / (na * nb) : 0;
}

static char *repeat_char(char c, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* ------------------------------------------------------------------ */
/* Errors, version, options, open                                      */
/* ------------------------------------------------------------------ */

static void test_errors_version(void **state)
{
    (void)state;
    assert_string_equal(dm_strerror(DM_ENOTFOUND), "not found");
    assert_string_equal(dm_strerror(DM_EVERSION), "unsupported format version");
    assert_non_null(dm_strerror(-12345));
    assert_string_equal(dm_errname(DM_EEXISTS), "DM_EEXISTS");
    assert_string_equal(dm_errname(12345), "DM_EUNKNOWN");
    assert_string_equal(dm_version(), DM_VERSION_STRING);
    assert_non_null(dm_errmsg());
}

static void test_options_defaults(void **state)
{
    (void)state;
    dm_options o;
    memset(&o, 0x5a, sizeof o);
    dm_options_init(&o);
    assert_int_equal(o.create_if_missing, 1);
    assert_int_equal(o.sync, DM_SYNC_BATCH);
    assert_int_equal(o.sync_interval_ms, 2);
    assert_int_equal(o.memtable_bytes, 16u << 20);
    assert_int_equal(o.block_cache_bytes, 64u << 20);
    assert_int_equal(o.max_text_bytes, 32768);
    assert_int_equal(o.max_metadata_bytes, 65536);
    assert_int_equal(o.embedder, DM_EMBED_BUILTIN);
    assert_null(o.model_path);
    assert_int_equal(o.reembed, 0);
    assert_int_equal(o.http_retries, 2);
    assert_float_equal(o.bm25_k1, 0.8f, 1e-6);
    assert_float_equal(o.bm25_b, 0.5f, 1e-6);
    assert_int_equal(o.checkpoint_ops, 1024);
    assert_float_equal(o.refresh_boost, 0.2f, 1e-6);
    assert_float_equal(o.decay_rates[DM_KIND_EPISODIC], 0.01f, 1e-6);
    assert_float_equal(o.decay_rates[DM_KIND_FACT], 0.0f, 0);
    assert_float_equal(o.decay_rates[DM_KIND_SUMMARY], 0.005f, 1e-6);
    assert_float_equal(o.prune_threshold, 0.05f, 1e-6);
    assert_int_equal(o.decay_interval_s, 3600);

    dm_add_params p;
    memset(&p, 0x5a, sizeof p);
    dm_add_params_init(&p);
    assert_null(p.tenant);
    assert_null(p.user_id);
    assert_null(p.text);
    assert_null(p.role);
    assert_null(p.metadata);
    assert_null(p.id);
    assert_null(p.embedding);
    assert_float_equal(p.salience, 1.0f, 1e-6);
    assert_true(p.decay_rate < 0); /* the default of its kind, user, tenant */
    assert_int_equal(p.kind, DM_KIND_EPISODIC);
    assert_int_equal(p.state, DM_STATE_ACTIVE);
    assert_int_equal(p.event_time_us, 0);
    assert_int_equal(p.record_time_us, 0);
}

static void test_open_errors(void **state)
{
    (void)state;
    char dir[4200], path[4300];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir("test_api_open"));
    dm_options o;
    dm_db *db = (dm_db *)&o; /* must be cleared on failure */

    tm_options(&o);
    assert_rc(dm_open(NULL, &o, &db), DM_EINVAL);
    assert_null(db);

    snprintf(path, sizeof path, "%s/absent", dir);
    o.create_if_missing = 0;
    db = (dm_db *)&o;
    assert_rc(dm_open(path, &o, &db), DM_ENOTFOUND);
    assert_null(db);

    tm_options(&o);
    o.model_path = tu_file_path(dir, "no-such-model.dmm");
    db = (dm_db *)&o;
    assert_rc(dm_open(path, &o, &db), DM_ENOTFOUND);
    assert_null(db);
    assert_true(strlen(dm_errmsg()) > 0);

    tm_options(&o);
    o.sync = (dm_sync_mode)77;
    assert_rc(dm_open(path, &o, &db), DM_EINVAL);
    assert_null(db);
    msg_has("bad sync mode", "sync");

    tm_options(&o);
    o.embedder = (dm_embedder_kind)9;
    assert_rc(dm_open(path, &o, &db), DM_EINVAL);
    assert_null(db);

    /* Open, close and open again; dm_close(NULL) does nothing. */
    tm_options(&o);
    assert_rc(dm_open(path, &o, &db), DM_OK);
    assert_rc(dm_close(db), DM_OK);
    o.create_if_missing = 0;
    assert_rc(dm_open(path, &o, &db), DM_OK);
    assert_rc(dm_close(db), DM_OK);
    assert_rc(dm_close(NULL), DM_OK);
    tu_rmrf(dir);
}

/* Everything the engine allocates is released by dm_close. */
static void test_close_frees_everything(void **state)
{
    (void)state;
    char path[4200];
    snprintf(path, sizeof path, "%s", tu_tmpdir("test_api_leak"));
    dm_options o;
    tm_options(&o);
    (void)tm_default_model();
    int64_t base = alloc_bytes_in_use();
    dm_db *db;
    assert_rc(dm_open(path, &o, &db), DM_OK);
    for (int i = 0; i < 50; i++) {
        char u[16];
        snprintf(u, sizeof u, "u%d", i % 5);
        assert_rc(add_full(db, NULL, u, "pizza and pasta for dinner", 0,
                           "{\"a\":1}", NULL), DM_OK);
    }
    dm_search_result *r = search_ok(db, "u1", "cheese soup", 5);
    assert_int_equal(r->n, 5);
    dm_search_result_free(r);
    assert_rc(dm_close(db), DM_OK);
    assert_int_equal(alloc_bytes_in_use(), base);
    assert_rc(dm_open(path, &o, &db), DM_OK);
    r = search_ok(db, "u2", "cheese soup", 0);
    assert_int_equal(r->n, 10);
    dm_search_result_free(r);
    assert_rc(dm_close(db), DM_OK);
    assert_int_equal(alloc_bytes_in_use(), base);
    tu_rmrf(path);
}

/* ------------------------------------------------------------------ */
/* Add and get                                                         */
/* ------------------------------------------------------------------ */

static void test_add_get_defaults(void **state)
{
    fx *f = *state;
    int64_t t0 = now_us();
    dm_id id;
    memset(&id, 0, sizeof id);
    dm_add_params p;
    dm_add_params_init(&p);
    p.user_id = "alice";
    p.text = "my dog loves the park";
    assert_rc(dm_add(f->db, &p, &id), DM_OK);
    int64_t t1 = now_us();
    assert_false(id_is_zero(&id));

    dm_memory *m = NULL;
    assert_rc(dm_get(f->db, NULL, &id, 0, &m), DM_OK);
    assert_non_null(m);
    assert_true(id_eq(&m->id, &id));
    assert_string_equal(m->tenant, DM_DEFAULT_TENANT);
    assert_string_equal(m->user_id, "alice");
    assert_null(m->agent_id);
    assert_null(m->session_id);
    assert_string_equal(m->role, "user");
    assert_string_equal(m->text, "my dog loves the park");
    assert_int_equal(m->text_len, strlen("my dog loves the park"));
    assert_json_eq(m->metadata, "{}");
    assert_true(m->event_time_us >= t0 - 1000 && m->event_time_us <= t1 + 1000);
    assert_true(m->record_time_us >= t0 - 1000 && m->record_time_us <= t1 + 1000);
    assert_float_equal(m->salience, 1.0f, 1e-6);
    assert_float_equal(m->decay_rate, 0.01f, 1e-6);
    assert_int_equal(m->kind, DM_KIND_EPISODIC);
    assert_int_equal(m->state, DM_STATE_ACTIVE);
    assert_null(m->embedding);
    dm_memory_free(m);
    dm_memory_free(NULL);

    /* With the embedding: the model's dimension, unit length. */
    assert_rc(dm_get(f->db, NULL, &id, DM_WITH_EMBEDDING, &m), DM_OK);
    assert_non_null(m->embedding);
    assert_int_equal(m->dim, TM_DEFAULT_DIM);
    assert_float_equal(norm_of(m->embedding, m->dim), 1.0, 1e-3);
    dm_memory_free(m);

    /* out_id may be NULL. */
    p.text = "a second memory about my cat";
    assert_rc(dm_add(f->db, &p, NULL), DM_OK);
    size_t n;
    assert_rc(user_count(f->db, NULL, "alice", 0, &n), DM_OK);
    assert_int_equal(n, 2);
}

static void test_add_get_all_fields(void **state)
{
    fx *f = *state;
    const char *text = "Café naïve 日本語 🎉 grandmother's birthday cake";
    const char *meta = "{\"mood\": \"happy\", \"n\": 3, \"tags\": [\"a\", \"b\"],"
                       " \"nested\": {\"x\": null, \"y\": 1.5}, \"ok\": true}";
    dm_add_params p;
    dm_add_params_init(&p);
    p.tenant = "acme";
    p.user_id = "bob";
    p.agent_id = "agent-7";
    p.session_id = "sess-42";
    p.role = "assistant";
    p.text = text;
    p.event_time_us = 1683554160123456;
    p.metadata = meta;
    p.salience = 0.25f;
    p.decay_rate = 0.5f;
    p.kind = DM_KIND_FACT;
    dm_id id;
    assert_rc(dm_add(f->db, &p, &id), DM_OK);

    dm_memory *m = NULL;
    dm_scope sc = { "acme", "bob" };
    assert_rc(dm_get(f->db, &sc, &id, 0, &m), DM_OK);
    assert_string_equal(m->tenant, "acme");
    assert_string_equal(m->user_id, "bob");
    assert_string_equal(m->agent_id, "agent-7");
    assert_string_equal(m->session_id, "sess-42");
    assert_string_equal(m->role, "assistant");
    assert_string_equal(m->text, text);
    assert_int_equal(m->text_len, strlen(text));
    assert_json_eq(m->metadata, meta);
    assert_true(m->event_time_us == 1683554160123456);
    assert_float_equal(m->salience, 0.25f, 1e-6);
    assert_float_equal(m->decay_rate, 0.5f, 1e-6);
    assert_int_equal(m->kind, DM_KIND_FACT);
    assert_int_equal(m->state, DM_STATE_ACTIVE);
    dm_memory_free(m);

    /* text_len limits the text: bytes past it are not stored. */
    const char *longer = "pizza and pasta#### not this part";
    dm_add_params_init(&p);
    p.user_id = "bob";
    p.text = longer;
    p.text_len = strlen("pizza and pasta");
    assert_rc(dm_add(f->db, &p, &id), DM_OK);
    assert_rc(dm_get(f->db, NULL, &id, 0, &m), DM_OK);
    assert_string_equal(m->text, "pizza and pasta");
    assert_int_equal(m->text_len, 15);
    assert_string_equal(m->tenant, DM_DEFAULT_TENANT);
    dm_memory_free(m);

    /* Salience at both ends of [0, 1] is accepted. */
    p.text = "salience zero";
    p.text_len = 0;
    p.salience = 0.0f;
    assert_rc(dm_add(f->db, &p, &id), DM_OK);
    p.salience = 1.0f;
    assert_rc(dm_add(f->db, &p, &id), DM_OK);
}

static void test_get_scope(void **state)
{
    fx *f = *state;
    dm_id id;
    assert_rc(add_full(f->db, "t1", "carol", "tennis and soccer", 0, NULL, &id),
              DM_OK);
    dm_memory *m = (dm_memory *)f;
    dm_scope own = { "t1", "carol" };
    dm_scope other_user = { "t1", "dave" };
    dm_scope other_tenant = { "t2", "carol" };
    dm_scope default_tenant = { NULL, "carol" };
    dm_scope admin = { "t1", NULL };

    assert_rc(dm_get(f->db, &own, &id, 0, &m), DM_OK);
    dm_memory_free(m);
    assert_rc(dm_get(f->db, NULL, &id, 0, &m), DM_OK);
    dm_memory_free(m);
    assert_rc(dm_get(f->db, &admin, &id, 0, &m), DM_OK);
    dm_memory_free(m);
    m = (dm_memory *)f;
    assert_rc(dm_get(f->db, &other_user, &id, 0, &m), DM_ENOTFOUND);
    assert_null(m);
    m = (dm_memory *)f;
    assert_rc(dm_get(f->db, &other_tenant, &id, 0, &m), DM_ENOTFOUND);
    assert_null(m);
    assert_rc(dm_get(f->db, &default_tenant, &id, 0, &m), DM_ENOTFOUND);
    assert_null(m);

    /* Ids nobody owns. */
    dm_id zero;
    memset(&zero, 0, sizeof zero);
    m = (dm_memory *)f;
    assert_rc(dm_get(f->db, NULL, &zero, 0, &m), DM_ENOTFOUND);
    assert_null(m);
    dm_id fake = id;
    fake.bytes[15] ^= 0x55;
    assert_rc(dm_get(f->db, NULL, &fake, 0, &m), DM_ENOTFOUND);
    assert_rc(dm_get(f->db, &own, &fake, 0, &m), DM_ENOTFOUND);
    assert_rc(dm_get(f->db, NULL, NULL, 0, &m), DM_EINVAL);
    assert_null(m);
}

/* One invalid add: the code, the message and nothing stored. */
static void add_fails(fx *f, const dm_add_params *p, int want,
                      const char *word)
{
    dm_id id;
    memset(&id, 0xab, sizeof id);
    int rc = dm_add(f->db, p, &id);
    if (rc != want)
        fail_msg("add (%s): got %s, want %s (%s)", word, dm_errname(rc),
                 dm_errname(want), dm_errmsg());
    assert_true(id_is_zero(&id));
    assert_true(strlen(dm_errmsg()) > 0);
    if (word)
        msg_has("add", word);
}

static void test_add_validation(void **state)
{
    fx *f = *state;
    dm_add_params p;
    char buf[256];

    assert_rc(dm_add(f->db, NULL, NULL), DM_EINVAL);

    dm_add_params_init(&p);
    p.text = "hello there";
    add_fails(f, &p, DM_EINVAL, "user");
    p.user_id = "";
    add_fails(f, &p, DM_EINVAL, "user");

    dm_add_params_init(&p);
    p.user_id = "val";
    add_fails(f, &p, DM_EINVAL, "text");
    p.text = "";
    add_fails(f, &p, DM_EINVAL, "text");

    /* Invalid UTF-8 of several kinds; the message has the byte offset. */
    static const struct {
        const char *bad;
        size_t off_in_bad;
    } utf8[] = {
        { "\x80", 0 },              /* lone continuation byte */
        { "\xC0\xAF", 0 },          /* overlong '/' */
        { "\xE0\x80\xAF", 0 },      /* overlong, three bytes */
        { "\xED\xA0\x80", 0 },      /* UTF-16 surrogate */
        { "\xF4\x90\x80\x80", 0 },  /* above U+10FFFF */
        { "\xFF", 0 },              /* never valid */
        { "\xE2\x28\xA1", 0 },      /* bad continuation */
        { "ok\xC3", 2 },            /* truncated at the end */
    };
    for (size_t i = 0; i < sizeof utf8 / sizeof utf8[0]; i++) {
        /* A prefix of 10 + 7i bytes makes each offset distinctive. */
        size_t pre = 10 + 7 * i;
        char *t = repeat_char('a', pre);
        char text[128];
        snprintf(text, sizeof text, "%s%s", t, utf8[i].bad);
        free(t);
        p.text = text;
        add_fails(f, &p, DM_EINVAL, "utf");
        /* The offset of the sequence's first byte, or of the first byte
         * that cannot continue it. */
        snprintf(buf, sizeof buf, "%zu", pre + utf8[i].off_in_bad);
        char buf2[32];
        snprintf(buf2, sizeof buf2, "%zu", pre + utf8[i].off_in_bad + 1);
        const char *offs[2] = { buf, buf2 };
        msg_has_any(text, offs, 2);
    }

    /* Metadata that is not a JSON object, or not JSON at all. */
    p.text = "valid text";
    static const char *const not_object[] = { "[1,2]", "\"str\"", "42", "null",
                                              "true" };
    for (size_t i = 0; i < sizeof not_object / sizeof not_object[0]; i++) {
        p.metadata = not_object[i];
        add_fails(f, &p, DM_EINVAL, "metadata");
    }
    static const char *const malformed[] = { "{\"a\": 1,,}", "{\"a\":", "{a:1}",
                                             "{\"a\":1} x", "",
                                             "{\"a\":\"\xff\"}" };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        p.metadata = malformed[i];
        add_fails(f, &p, DM_EINVAL, "metadata");
        if (i < 4)
            msg_has_position(malformed[i]);
    }
    p.metadata = NULL;

    /* Salience outside [0, 1], negative decay, unknown kind. */
    p.salience = -0.1f;
    add_fails(f, &p, DM_EINVAL, "salience");
    p.salience = 1.5f;
    add_fails(f, &p, DM_EINVAL, "salience");
    p.salience = NAN;
    add_fails(f, &p, DM_EINVAL, "salience");
    p.salience = 1.0f;
    p.decay_rate = NAN;
    add_fails(f, &p, DM_EINVAL, "decay");
    p.decay_rate = INFINITY;
    add_fails(f, &p, DM_EINVAL, "decay");
    p.decay_rate = 0.01f;
    p.kind = (dm_memory_kind)42;
    add_fails(f, &p, DM_EINVAL, "kind");
    p.kind = DM_KIND_EPISODIC;

    /* An embedding of the wrong dimension. */
    float emb[64] = { 1.0f };
    p.embedding = emb;
    p.dim = 16;
    add_fails(f, &p, DM_EINVAL, "dim");
    p.dim = 0;
    add_fails(f, &p, DM_EINVAL, "dim");
    p.dim = 64;
    add_fails(f, &p, DM_EINVAL, "dim");
    p.embedding = NULL;
    p.dim = 0;

    /* Nothing of the above was stored. */
    size_t n;
    assert_rc(user_count(f->db, NULL, "val", 0, &n), DM_ENOTFOUND);
    dm_stats st;
    assert_rc(dm_stats_get(f->db, &st), DM_OK);
    assert_int_equal(st.n_memories, 0);
    assert_int_equal(st.n_users, 0);
    soft_check();
}

static void test_add_limits(void **state)
{
    fx *f = *state;
    dm_add_params p;
    dm_add_params_init(&p);
    p.user_id = "lim";

    /* Text at the default limit is fine, one byte more is too big. */
    char *t = repeat_char('x', 32768);
    p.text = t;
    assert_rc(dm_add(f->db, &p, NULL), DM_OK);
    free(t);
    t = repeat_char('x', 32769);
    p.text = t;
    add_fails(f, &p, DM_ETOOBIG, "32769");
    msg_has("too big text", "32768");
    free(t);

    /* Metadata over 64 KB. */
    char *pad = repeat_char('m', 65536);
    char *meta = malloc(65536 + 32);
    snprintf(meta, 65536 + 32, "{\"k\":\"%s\"}", pad);
    p.text = "fine text";
    p.metadata = meta;
    add_fails(f, &p, DM_ETOOBIG, "metadata");
    free(meta);
    free(pad);
    p.metadata = NULL;

    /* Names: 255 bytes are fine, 256 are not, and the message names the
     * field. */
    char *n255 = repeat_char('n', 255);
    char *n256 = repeat_char('n', 256);
    static const char *const fields[] = { "tenant", "user", "agent", "session",
                                          "role" };
    for (int i = 0; i < 5; i++) {
        for (int big = 0; big < 2; big++) {
            const char *v = big ? n256 : n255;
            dm_add_params_init(&p);
            p.user_id = "lim";
            p.text = "names test";
            switch (i) {
            case 0: p.tenant = v; break;
            case 1: p.user_id = v; break;
            case 2: p.agent_id = v; break;
            case 3: p.session_id = v; break;
            case 4: p.role = v; break;
            }
            if (big) {
                add_fails(f, &p, DM_EINVAL, fields[i]);
                msg_has("long name", "255");
            } else {
                dm_id id;
                assert_rc(dm_add(f->db, &p, &id), DM_OK);
                dm_memory *m;
                assert_rc(dm_get(f->db, NULL, &id, 0, &m), DM_OK);
                const char *got = i == 0 ? m->tenant : i == 1 ? m->user_id
                                  : i == 2 ? m->agent_id : i == 3 ? m->session_id
                                  : m->role;
                assert_string_equal(got, n255);
                dm_memory_free(m);
            }
        }
    }
    free(n255);
    free(n256);

    /* A smaller configured limit is honoured. */
    assert_rc(dm_close(f->db), DM_OK);
    f->o.max_text_bytes = 100;
    f->o.max_metadata_bytes = 50;
    assert_rc(fx_open(f), DM_OK);
    dm_add_params_init(&p);
    p.user_id = "lim";
    t = repeat_char('y', 100);
    p.text = t;
    assert_rc(dm_add(f->db, &p, NULL), DM_OK);
    free(t);
    t = repeat_char('y', 101);
    p.text = t;
    add_fails(f, &p, DM_ETOOBIG, "101");
    msg_has("small limit", "100");
    free(t);
    p.text = "short";
    p.metadata = "{\"key\": \"a value that makes this longer than fifty bytes\"}";
    add_fails(f, &p, DM_ETOOBIG, "metadata");
}

/* ------------------------------------------------------------------ */
/* Update and delete                                                   */
/* ------------------------------------------------------------------ */

static void test_update(void **state)
{
    fx *f = *state;
    const char *u = "upd";
    dm_id a;
    assert_rc(add_full(f->db, NULL, u, "my dog and the puppy with a leash and kitten",
                       1700000000000000, "{\"project\": \"old\", \"x\": 1}", &a),
              DM_OK);
    add_ok(f->db, u, "flight to the airport and a hotel with luggage");
    add_ok(f->db, u, "guitar and piano at the concert with the band");
    add_ok(f->db, u, "teacher gave homework before the exam");
    dm_memory *before;
    assert_rc(dm_get(f->db, NULL, &a, DM_WITH_EMBEDDING, &before), DM_OK);

    /* Before: a pets query without a shared word finds a by vector. */
    dm_search_result *r = search_ok(f->db, u, "vet hamster parrot", 4);
    assert_true(r->n >= 1);
    assert_true(id_eq(&r->hits[0].memory.id, &a));
    assert_true(r->hits[0].vector_sim > 0.6f);
    dm_search_result_free(r);

    /* Text only: re-embedded and re-indexed; metadata, event time, id and
     * user stay. */
    dm_scope sc = { NULL, u };
    assert_rc(dm_update(f->db, &sc, &a, "pizza with pasta and cheese soup", NULL),
              DM_OK);
    dm_memory *m;
    assert_rc(dm_get(f->db, &sc, &a, DM_WITH_EMBEDDING, &m), DM_OK);
    assert_string_equal(m->text, "pizza with pasta and cheese soup");
    assert_int_equal(m->text_len, strlen(m->text));
    assert_json_eq(m->metadata, "{\"project\": \"old\", \"x\": 1}");
    assert_true(m->event_time_us == 1700000000000000);
    assert_true(m->event_time_us == before->event_time_us);
    assert_true(id_eq(&m->id, &a));
    assert_string_equal(m->user_id, u);
    assert_non_null(m->embedding);
    assert_true(cos_of(m->embedding, before->embedding, m->dim) < 0.7);
    dm_memory_free(m);
    dm_memory_free(before);

    /* The old words no longer match: no keyword hit for "dog" ... */
    r = search_ok(f->db, u, "dog", 4);
    for (size_t i = 0; i < r->n; i++) {
        assert_true(r->hits[i].bm25 == 0.0f);
        assert_int_equal(r->hits[i].bm25_rank, 0);
    }
    dm_search_result_free(r);
    /* ... and the old topic is far from it now. */
    r = search_ok(f->db, u, "vet hamster parrot", 4);
    long ia = hit_index(r, &a);
    if (ia >= 0)
        assert_true(r->hits[ia].vector_sim < 0.5f);
    dm_search_result_free(r);
    /* The new words find it, by keyword and by vector. */
    r = search_ok(f->db, u, "pasta", 4);
    assert_true(r->n >= 1);
    assert_true(id_eq(&r->hits[0].memory.id, &a));
    assert_int_equal(r->hits[0].bm25_rank, 1);
    assert_true(r->hits[0].bm25 > 0);
    dm_search_result_free(r);
    r = search_ok(f->db, u, "noodles dessert recipe", 4);
    assert_true(id_eq(&r->hits[0].memory.id, &a));
    assert_true(r->hits[0].vector_sim > 0.6f);
    dm_search_result_free(r);

    /* Metadata only (admin scope): replaced, not merged. */
    assert_rc(dm_update(f->db, NULL, &a, NULL, "{\"project\": \"new\"}"), DM_OK);
    assert_rc(dm_get(f->db, NULL, &a, 0, &m), DM_OK);
    assert_string_equal(m->text, "pizza with pasta and cheese soup");
    assert_json_eq(m->metadata, "{\"project\": \"new\"}");
    dm_memory_free(m);
    dm_search_params sp;
    memset(&sp, 0, sizeof sp);
    sp.user_id = u;
    sp.query = "pizza";
    sp.filter = "{\"project\": \"new\"}";
    assert_rc(dm_search(f->db, &sp, &r), DM_OK);
    assert_int_equal(r->n, 1);
    assert_true(id_eq(&r->hits[0].memory.id, &a));
    dm_search_result_free(r);
    sp.filter = "{\"project\": \"old\"}";
    assert_rc(dm_search(f->db, &sp, &r), DM_OK);
    assert_int_equal(r->n, 0);
    dm_search_result_free(r);

    /* Both at once. */
    assert_rc(dm_update(f->db, &sc, &a, "rain and snow in the forecast",
                        "{\"w\": true}"), DM_OK);
    assert_rc(dm_get(f->db, NULL, &a, 0, &m), DM_OK);
    assert_string_equal(m->text, "rain and snow in the forecast");
    assert_json_eq(m->metadata, "{\"w\": true}");
    dm_memory_free(m);

    /* Errors, each leaving the memory as it was. */
    dm_scope wrong = { NULL, "someone-else" };
    dm_scope wrong_tenant = { "other", u };
    dm_id fake = a;
    fake.bytes[10] ^= 1;
    assert_rc(dm_update(f->db, &sc, &a, NULL, NULL), DM_EINVAL);
    assert_rc(dm_update(f->db, &wrong, &a, "stolen", NULL), DM_ENOTFOUND);
    assert_rc(dm_update(f->db, &wrong_tenant, &a, "stolen", NULL), DM_ENOTFOUND);
    assert_rc(dm_update(f->db, &sc, &fake, "nothing", NULL), DM_ENOTFOUND);
    assert_rc(dm_update(f->db, NULL, NULL, "nothing", NULL), DM_EINVAL);
    assert_rc(dm_update(f->db, &sc, &a, "", NULL), DM_EINVAL);
    msg_has("empty update text", "text");
    assert_rc(dm_update(f->db, &sc, &a, "bad \xC3\x28 utf", NULL), DM_EINVAL);
    msg_has("bad utf-8 update", "4");
    assert_rc(dm_update(f->db, &sc, &a, NULL, "[1]"), DM_EINVAL);
    msg_has("array metadata", "metadata");
    assert_rc(dm_update(f->db, &sc, &a, "fine text", "{broken"), DM_EINVAL);
    msg_has("broken metadata", "metadata");
    char *big = repeat_char('z', 40000);
    assert_rc(dm_update(f->db, &sc, &a, big, NULL), DM_ETOOBIG);
    free(big);
    assert_rc(dm_get(f->db, NULL, &a, 0, &m), DM_OK);
    assert_string_equal(m->text, "rain and snow in the forecast");
    assert_json_eq(m->metadata, "{\"w\": true}");
    dm_memory_free(m);
}

static void test_delete(void **state)
{
    fx *f = *state;
    const char *u = "del";
    dm_id a = add_ok(f->db, u, "zebracorn one with pizza");
    dm_id b = add_ok(f->db, u, "zebracorn two with pasta");
    dm_id c = add_ok(f->db, u, "zebracorn three with bread");
    dm_scope sc = { NULL, u };
    dm_scope wrong = { NULL, "not-del" };

    assert_rc(dm_delete(f->db, &wrong, &b), DM_ENOTFOUND);
    assert_rc(dm_delete(f->db, NULL, NULL), DM_EINVAL);
    assert_rc(dm_delete(f->db, &sc, &b), DM_OK);
    dm_memory *m = (dm_memory *)f;
    assert_rc(dm_get(f->db, NULL, &b, 0, &m), DM_ENOTFOUND);
    assert_null(m);
    assert_rc(dm_get(f->db, &sc, &b, DM_WITH_ARCHIVED, &m), DM_ENOTFOUND);
    assert_rc(dm_delete(f->db, &sc, &b), DM_ENOTFOUND);
    assert_rc(dm_delete(f->db, NULL, &b), DM_ENOTFOUND);
    assert_rc(dm_update(f->db, NULL, &b, "revive", NULL), DM_ENOTFOUND);

    /* Gone from list and search; the others stay. */
    dm_list_params lp;
    memset(&lp, 0, sizeof lp);
    lp.user_id = u;
    dm_list_result *lr;
    assert_rc(dm_list(f->db, &lp, &lr), DM_OK);
    assert_int_equal(lr->n, 2);
    for (size_t i = 0; i < lr->n; i++)
        assert_false(id_eq(&lr->items[i].id, &b));
    dm_list_result_free(lr);
    dm_search_result *r = search_ok(f->db, u, "zebracorn two pasta", 10);
    assert_int_equal(r->n, 2);
    assert_int_equal(hit_index(r, &b), -1);
    assert_true(hit_index(r, &a) >= 0 && hit_index(r, &c) >= 0);
    dm_search_result_free(r);

    /* Admin delete; the last one. */
    assert_rc(dm_delete(f->db, NULL, &a), DM_OK);
    assert_rc(dm_delete(f->db, &sc, &c), DM_OK);
    /* A user whose memories are all deleted has none to find (whether it
     * still counts as a known user is not specified). */
    dm_search_params sp;
    memset(&sp, 0, sizeof sp);
    sp.user_id = u;
    sp.query = "zebracorn";
    int rc = dm_search(f->db, &sp, &r);
    assert_true(rc == DM_OK || rc == DM_ENOTFOUND);
    if (rc == DM_OK) {
        assert_int_equal(r->n, 0);
        dm_search_result_free(r);
    }
    dm_stats st;
    assert_rc(dm_stats_get(f->db, &st), DM_OK);
    assert_int_equal(st.n_memories, 0);
}

/* ------------------------------------------------------------------ */
/* List                                                                */
/* ------------------------------------------------------------------ */

typedef struct page_item {
    dm_id id;
    int64_t ev;
} page_item;

/* (ev, id) of a must come strictly before b: newest first, ties newest id. */
static int list_before(const page_item *a, const page_item *b)
{
    if (a->ev != b->ev)
        return a->ev > b->ev;
    return memcmp(a->id.bytes, b->id.bytes, 16) > 0;
}

static void test_list_order_and_range(void **state)
{
    fx *f = *state;
    const char *u = "lister";
    const int64_t t0 = 1600000000000000;
    enum { N = 50 };
    dm_id ids[N];
    /* Insert in a scrambled order; pairs of memories share an event time. */
    for (int k = 0; k < N; k++) {
        int i = (k * 17) % N;
        char text[64];
        snprintf(text, sizeof text, "memory number %d about soup", i);
        assert_rc(add_full(f->db, NULL, u, text, t0 + (int64_t)(i / 2) * 1000000,
                           NULL, &ids[i]), DM_OK);
    }
    dm_list_params lp;
    memset(&lp, 0, sizeof lp);
    lp.user_id = u;
    dm_list_result *r = (dm_list_result *)f;
    assert_rc(dm_list(f->db, &lp, &r), DM_OK);
    assert_int_equal(r->n, N);
    assert_null(r->next_cursor);
    for (size_t i = 0; i < r->n; i++) {
        assert_null(r->items[i].embedding);
        assert_string_equal(r->items[i].user_id, u);
        if (i > 0) {
            page_item a = { r->items[i - 1].id, r->items[i - 1].event_time_us };
            page_item b = { r->items[i].id, r->items[i].event_time_us };
            assert_true(list_before(&a, &b));
        }
    }
    dm_list_result_free(r);
    dm_list_result_free(NULL);

    /* [from, to): event times of i/2 in [5, 10) are i in [10, 20). */
    lp.from_us = t0 + 5 * 1000000;
    lp.to_us = t0 + 10 * 1000000;
    assert_rc(dm_list(f->db, &lp, &r), DM_OK);
    assert_int_equal(r->n, 10);
    for (size_t i = 0; i < r->n; i++) {
        assert_true(r->items[i].event_time_us >= lp.from_us);
        assert_true(r->items[i].event_time_us < lp.to_us);
    }
    dm_list_result_free(r);
    lp.to_us = 0;
    assert_rc(dm_list(f->db, &lp, &r), DM_OK);
    assert_int_equal(r->n, N - 10);
    dm_list_result_free(r);
    lp.from_us = 0;
    lp.to_us = t0 + 1;
    assert_rc(dm_list(f->db, &lp, &r), DM_OK);
    assert_int_equal(r->n, 2);
    dm_list_result_free(r);
    lp.from_us = lp.to_us = t0 + 3 * 1000000;
    assert_rc(dm_list(f->db, &lp, &r), DM_OK);
    assert_int_equal(r->n, 0);
    dm_list_result_free(r);

    /* Errors. */
    lp.from_us = t0 + 2;
    lp.to_us = t0 + 1;
    r = (dm_list_result *)f;
    assert_rc(dm_list(f->db, &lp, &r), DM_EINVAL);
    assert_null(r);
    lp.from_us = lp.to_us = 0;
    lp.cursor = "garbage";
    r = (dm_list_result *)f;
    assert_rc(dm_list(f->db, &lp, &r), DM_EINVAL);
    assert_null(r);
    msg_has("bad cursor", "cursor");
    lp.cursor = "not a cursor!";
    assert_rc(dm_list(f->db, &lp, &r), DM_EINVAL);
    lp.cursor = NULL;
    lp.user_id = "nobody-here";
    r = (dm_list_result *)f;
    assert_rc(dm_list(f->db, &lp, &r), DM_ENOTFOUND);
    assert_null(r);
    lp.tenant = "no-such-tenant";
    lp.user_id = u;
    assert_rc(dm_list(f->db, &lp, &r), DM_ENOTFOUND);
    lp.tenant = NULL;
    lp.user_id = NULL;
    assert_rc(dm_list(f->db, &lp, &r), DM_EINVAL);
    assert_rc(dm_list(f->db, NULL, &r), DM_EINVAL);
    lp.user_id = u;

    /* The limit: 0 = 100, at most 10,000 (an error or a clamp). */
    lp.limit = 10001;
    int rc = dm_list(f->db, &lp, &r);
    assert_true(rc == DM_OK || rc == DM_EINVAL);
    if (rc == DM_OK)
        assert_true(r->n <= 10000);
    dm_list_result_free(rc == DM_OK ? r : NULL);

    /* With the embedding. */
    lp.limit = 3;
    lp.flags = DM_WITH_EMBEDDING;
    assert_rc(dm_list(f->db, &lp, &r), DM_OK);
    assert_int_equal(r->n, 3);
    assert_non_null(r->next_cursor);
    for (size_t i = 0; i < r->n; i++) {
        assert_non_null(r->items[i].embedding);
        assert_int_equal(r->items[i].dim, TM_DEFAULT_DIM);
    }
    dm_list_result_free(r);
}

/* Pages of 7 visit every memory exactly once, in order, while memories are
 * added between pages (newer than all, older than all, and in the middle);
 * a time range combines with the cursor. */
static void test_list_pagination(void **state)
{
    fx *f = *state;
    const char *u = "pager";
    const int64_t t0 = 1650000000000000;
    enum { N = 60, CAP = 400 };
    dm_id orig[N];
    for (int i = 0; i < N; i++)
        assert_rc(add_full(f->db, NULL, u, "a day at the beach", t0 + (i / 3) * 1000,
                           NULL, &orig[i]), DM_OK);

    for (int ranged = 0; ranged < 2; ranged++) {
        page_item seen[CAP];
        size_t n_seen = 0, n_pages = 0;
        char *cursor = NULL;
        dm_list_params lp;
        memset(&lp, 0, sizeof lp);
        lp.user_id = u;
        lp.limit = 7;
        if (ranged) {
            lp.from_us = t0 + 4 * 1000;   /* i >= 12 */
            lp.to_us = t0 + 15 * 1000;    /* i < 45 */
        }
        for (;;) {
            lp.cursor = cursor;
            dm_list_result *r;
            assert_rc(dm_list(f->db, &lp, &r), DM_OK);
            free(cursor);
            cursor = NULL;
            assert_true(r->n <= 7);
            for (size_t i = 0; i < r->n; i++) {
                assert_true(n_seen < CAP);
                seen[n_seen].id = r->items[i].id;
                seen[n_seen].ev = r->items[i].event_time_us;
                if (ranged) {
                    assert_true(seen[n_seen].ev >= lp.from_us);
                    assert_true(seen[n_seen].ev < lp.to_us);
                }
                n_seen++;
            }
            if (r->next_cursor) {
                assert_int_equal(r->n, 7);
                cursor = strdup(r->next_cursor);
            }
            dm_list_result_free(r);
            n_pages++;
            /* Between pages: one newer than everything, one older than
             * everything, one in the middle of the range. */
            int64_t evs[3] = { t0 + 100000000 + (int64_t)n_pages,
                               t0 - 1000 * (int64_t)n_pages,
                               t0 + 7 * 1000 + (int64_t)n_pages };
            for (int j = 0; j < 3; j++)
                assert_rc(add_full(f->db, NULL, u, "added between pages", evs[j],
                                   NULL, NULL), DM_OK);
            if (!cursor)
                break;
        }
        /* Order across pages, no duplicates, every original exactly once. */
        for (size_t i = 1; i < n_seen; i++)
            assert_true(list_before(&seen[i - 1], &seen[i]));
        int lo = ranged ? 12 : 0, hi = ranged ? 45 : N;
        for (int k = 0; k < N; k++) {
            int count = 0;
            for (size_t i = 0; i < n_seen; i++)
                count += id_eq(&seen[i].id, &orig[k]);
            if (count != (k >= lo && k < hi))
                fail_msg("ranged=%d: original %d seen %d times", ranged, k, count);
        }
        print_message("pagination%s: %zu items in %zu pages\n",
                      ranged ? " (range)" : "", n_seen, n_pages);
    }
}

/* ------------------------------------------------------------------ */
/* Search                                                              */
/* ------------------------------------------------------------------ */

/* One memory per topic: its words 0..5 and a unique tag "zqtagNN". */
static void add_topic_memories(dm_db *db, const char *tenant, const char *user,
                               dm_id ids[TM_N_TOPICS])
{
    for (unsigned t = 0; t < TM_N_TOPICS; t++) {
        char text[256];
        snprintf(text, sizeof text, "zqtag%02u %s and %s with the %s %s %s %s", t,
                 tm_topic_word(t, 0), tm_topic_word(t, 1), tm_topic_word(t, 2),
                 tm_topic_word(t, 3), tm_topic_word(t, 4), tm_topic_word(t, 5));
        assert_rc(add_full(db, tenant, user, text, 0, NULL, &ids[t]), DM_OK);
    }
}

static void test_search_legs(void **state)
{
    fx *f = *state;
    const char *u = "searcher";
    dm_id ids[TM_N_TOPICS];
    add_topic_memories(f->db, NULL, u, ids);

    /* Vector leg: words 8..11 of a topic share no word with any memory,
     * yet the topic's memory comes first. */
    for (unsigned t = 0; t < TM_N_TOPICS; t++) {
        char q[128];
        snprintf(q, sizeof q, "%s %s %s %s", tm_topic_word(t, 8),
                 tm_topic_word(t, 9), tm_topic_word(t, 10), tm_topic_word(t, 11));
        dm_search_result *r = search_ok(f->db, u, q, 5);
        assert_int_equal(r->n, 5);
        if (!id_eq(&r->hits[0].memory.id, &ids[t]))
            fail_msg("query \"%s\" (topic %s): top hit is \"%s\"", q,
                     tm_topic_name(t), r->hits[0].memory.text);
        assert_int_equal(r->hits[0].vector_rank, 1);
        assert_true(r->hits[0].vector_sim > 0.6f);
        for (size_t i = 0; i < r->n; i++) {
            assert_true(r->hits[i].bm25 == 0.0f);
            assert_int_equal(r->hits[i].bm25_rank, 0);
            assert_true(isfinite(r->hits[i].score));
            assert_null(r->hits[i].memory.embedding);
            if (i > 0)
                assert_true(r->hits[i].vector_sim <= r->hits[0].vector_sim);
        }
        dm_search_result_free(r);
    }

    /* Keyword leg: an exact tag that is no model word finds its memory. */
    for (unsigned t = 0; t < TM_N_TOPICS; t++) {
        char q[32];
        snprintf(q, sizeof q, "zqtag%02u", t);
        dm_search_result *r = search_ok(f->db, u, q, 3);
        assert_true(r->n >= 1);
        if (!id_eq(&r->hits[0].memory.id, &ids[t]))
            fail_msg("keyword \"%s\": top hit is \"%s\"", q, r->hits[0].memory.text);
        assert_int_equal(r->hits[0].bm25_rank, 1);
        assert_true(r->hits[0].bm25 > 0);
        for (size_t i = 1; i < r->n; i++)
            assert_int_equal(r->hits[i].bm25_rank, 0);
        dm_search_result_free(r);
    }

    /* The memory matching both legs beats memories matching one. */
    {
        char q[128];
        snprintf(q, sizeof q, "%s %s zqtag07", tm_topic_word(3, 0),
                 tm_topic_word(3, 9));
        dm_search_result *r = search_ok(f->db, u, q, 5);
        if (!id_eq(&r->hits[0].memory.id, &ids[3]))
            fail_msg("query \"%s\": top hit is \"%s\"", q, r->hits[0].memory.text);
        dm_search_result_free(r);
    }

    /* k: 0 = 10; k larger than the user's memories returns all of them. */
    dm_search_result *r = search_ok(f->db, u, "pizza", 0);
    assert_int_equal(r->n, 10);
    dm_search_result_free(r);
    r = search_ok(f->db, u, "pizza", 1);
    assert_int_equal(r->n, 1);
    dm_search_result_free(r);
    r = search_ok(f->db, u, "pizza", 1000);
    assert_int_equal(r->n, TM_N_TOPICS);
    dm_search_result_free(r);
    dm_search_params sp;
    memset(&sp, 0, sizeof sp);
    sp.user_id = u;
    sp.query = "pizza";
    sp.k = 1001;
    int rc = dm_search(f->db, &sp, &r);
    assert_true(rc == DM_OK || rc == DM_EINVAL);
    if (rc == DM_OK)
        dm_search_result_free(r);

    /* Query words nobody knows: fine, just nothing good. */
    r = search_ok(f->db, u, "qwxyzzy plugh", 5);
    dm_search_result_free(r);

    /* With embeddings. */
    sp.k = 3;
    sp.flags = DM_WITH_EMBEDDING;
    assert_rc(dm_search(f->db, &sp, &r), DM_OK);
    assert_int_equal(r->n, 3);
    for (size_t i = 0; i < r->n; i++) {
        assert_non_null(r->hits[i].memory.embedding);
        assert_int_equal(r->hits[i].memory.dim, TM_DEFAULT_DIM);
    }
    dm_search_result_free(r);
    dm_search_result_free(NULL);
}

static void search_fails(dm_db *db, const dm_search_params *sp, int want,
                         const char *word)
{
    dm_search_result *r = (dm_search_result *)db;
    int rc = dm_search(db, sp, &r);
    if (rc != want)
        fail_msg("search (%s): got %s, want %s (%s)", word ? word : "",
                 dm_errname(rc), dm_errname(want), dm_errmsg());
    assert_null(r);
    if (word)
        msg_has("search", word);
}

static void test_search_errors(void **state)
{
    fx *f = *state;
    add_ok(f->db, "se", "some pizza");
    dm_search_params sp;
    memset(&sp, 0, sizeof sp);
    sp.user_id = "se";
    search_fails(f->db, &sp, DM_EINVAL, "query");
    sp.query = "";
    search_fails(f->db, &sp, DM_EINVAL, "query");
    sp.query = "pizza \xC3\x28";
    search_fails(f->db, &sp, DM_EINVAL, "6");
    sp.query = "pizza";
    sp.filter = "[1]";
    search_fails(f->db, &sp, DM_EINVAL, "filter");
    sp.filter = "{\"a\": ";
    search_fails(f->db, &sp, DM_EINVAL, "filter");
    sp.filter = NULL;
    sp.from_us = 20;
    sp.to_us = 10;
    search_fails(f->db, &sp, DM_EINVAL, NULL);
    sp.from_us = sp.to_us = 0;
    sp.user_id = "unknown-user";
    search_fails(f->db, &sp, DM_ENOTFOUND, NULL);
    sp.user_id = "se";
    sp.tenant = "unknown-tenant";
    search_fails(f->db, &sp, DM_ENOTFOUND, NULL);
    sp.tenant = NULL;
    sp.user_id = NULL;
    search_fails(f->db, &sp, DM_EINVAL, "user");
    search_fails(f->db, NULL, DM_EINVAL, NULL);
    sp.user_id = "se";
}

static void test_search_window_and_filter(void **state)
{
    fx *f = *state;
    const char *u = "wf";
    const int64_t day = 86400LL * 1000000;
    const int64_t t0 = 1700000000000000;
    enum { N = 30 };
    dm_id ids[N];
    tu_rng rng;
    tu_rng_seed(&rng, 11);
    for (int i = 0; i < N; i++) {
        char text[256], meta[128];
        tm_sentence(&rng, 0, 4, text, sizeof text);
        snprintf(meta, sizeof meta,
                 "{\"project\": \"%s\", \"n\": %d, \"done\": %s, \"i\": %d}",
                 i % 2 ? "apollo" : "zeus", i % 3, i % 5 == 0 ? "true" : "false", i);
        assert_rc(add_full(f->db, NULL, u, text, t0 + i * day, meta, &ids[i]), DM_OK);
    }
    dm_search_params sp;
    memset(&sp, 0, sizeof sp);
    sp.user_id = u;
    sp.query = "pizza pasta cheese";
    sp.k = 100;

    struct {
        int64_t from, to;
        const char *filter;
    } cases[] = {
        { t0 + 5 * day, t0 + 12 * day, NULL },
        { t0 + 5 * day, 0, NULL },
        { 0, t0 + 3 * day, NULL },
        { 0, 0, "{\"project\": \"apollo\"}" },
        { 0, 0, "{\"project\": \"apollo\", \"n\": 1}" },
        { 0, 0, "{\"done\": true}" },
        { 0, 0, "{}" },
        { 0, 0, "{\"missing\": \"x\"}" },
        { 0, 0, "{\"n\": \"1\"}" },   /* a string never equals a number */
        { 0, 0, "{\"i\": 17}" },
        { t0 + 10 * day, t0 + 20 * day, "{\"project\": \"zeus\"}" },
        { t0 + 10 * day, t0 + 10 * day, NULL },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        sp.from_us = cases[c].from;
        sp.to_us = cases[c].to;
        sp.filter = cases[c].filter;
        dm_search_result *r;
        assert_rc(dm_search(f->db, &sp, &r), DM_OK);
        size_t want = 0;
        for (int i = 0; i < N; i++) {
            int64_t ev = t0 + i * day;
            int in = (!sp.from_us || ev >= sp.from_us) && (!sp.to_us || ev < sp.to_us);
            if (sp.filter && strstr(sp.filter, "apollo"))
                in = in && i % 2;
            if (sp.filter && strstr(sp.filter, "zeus"))
                in = in && !(i % 2);
            if (sp.filter && strstr(sp.filter, "\"n\": 1"))
                in = in && i % 3 == 1;
            if (sp.filter && strstr(sp.filter, "done"))
                in = in && i % 5 == 0;
            if (sp.filter && (strstr(sp.filter, "missing") ||
                              strstr(sp.filter, "\"n\": \"1\"")))
                in = 0;
            if (sp.filter && strstr(sp.filter, "\"i\": 17"))
                in = in && i == 17;
            want += (size_t)in;
            long h = hit_index(r, &ids[i]);
            if (in != (h >= 0))
                fail_msg("case %zu: memory %d in=%d but hit index %ld", c, i, in, h);
        }
        if (r->n != want)
            fail_msg("case %zu: %zu hits, want %zu", c, r->n, want);
        dm_search_result_free(r);
    }
}

/* ------------------------------------------------------------------ */
/* Batch, import, export                                               */
/* ------------------------------------------------------------------ */

static void test_batch(void **state)
{
    fx *f = *state;
    enum { N = 10 };
    dm_add_params ps[N];
    char texts[N][64];
    const char *users[3] = { "b1", "b2", "b3" };
    for (int i = 0; i < N; i++) {
        dm_add_params_init(&ps[i]);
        ps[i].user_id = users[i % 3];
        snprintf(texts[i], sizeof texts[i], "batch item %d about the guitar", i);
        ps[i].text = texts[i];
    }
    dm_id out[N], first[N];
    assert_rc(dm_add_batch(f->db, ps, N, out), DM_OK);
    memcpy(first, out, sizeof first);
    for (int i = 0; i < N; i++) {
        dm_memory *m;
        dm_scope sc = { NULL, users[i % 3] };
        assert_rc(dm_get(f->db, &sc, &out[i], 0, &m), DM_OK);
        assert_string_equal(m->text, texts[i]);
        dm_memory_free(m);
        for (int j = 0; j < i; j++)
            assert_false(id_eq(&out[i], &out[j]));
    }
    assert_rc(dm_add_batch(f->db, ps, 2, NULL), DM_OK);

    size_t n1, n2, n3;
    assert_rc(user_count(f->db, NULL, "b1", 0, &n1), DM_OK);
    assert_rc(user_count(f->db, NULL, "b2", 0, &n2), DM_OK);
    assert_rc(user_count(f->db, NULL, "b3", 0, &n3), DM_OK);
    assert_int_equal(n1 + n2 + n3, N + 2);

    /* One bad item anywhere: nothing is stored, the message names the
     * index, out_ids are zero. */
    struct {
        int idx;
        int want;
        const char *word;
    } bad[] = { { 3, DM_EINVAL, "text" }, { 7, DM_EINVAL, "metadata" },
                { 9, DM_ETOOBIG, NULL }, { 0, DM_EINVAL, "user" },
                { 5, DM_EINVAL, "utf" } };
    char *big = repeat_char('q', 40000);
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        dm_add_params q[N];
        memcpy(q, ps, sizeof q);
        for (int i = 0; i < N; i++)
            q[i].user_id = i % 2 ? "b1" : "fresh-user";
        int k = bad[b].idx;
        switch (b) {
        case 0: q[k].text = ""; break;
        case 1: q[k].metadata = "{\"unterminated\": "; break;
        case 2: q[k].text = big; break;
        case 3: q[k].user_id = NULL; break;
        case 4: q[k].text = "bad \xF0\x28\x8C\x28 bytes"; break;
        }
        memset(out, 0x77, sizeof out);
        int rc = dm_add_batch(f->db, q, N, out);
        if (rc != bad[b].want)
            fail_msg("bad batch %zu: got %s want %s (%s)", b, dm_errname(rc),
                     dm_errname(bad[b].want), dm_errmsg());
        char idx[16];
        snprintf(idx, sizeof idx, "%d", k);
        msg_has("batch index", idx);
        if (bad[b].word)
            msg_has("batch field", bad[b].word);
        for (int i = 0; i < N; i++)
            assert_true(id_is_zero(&out[i]));
        size_t n;
        assert_rc(user_count(f->db, NULL, "fresh-user", 0, &n), DM_ENOTFOUND);
        assert_rc(user_count(f->db, NULL, "b1", 0, &n), DM_OK);
        assert_int_equal(n, n1);
    }
    free(big);

    /* An import id already in use, in the middle of a batch. */
    dm_add_params q[3];
    memcpy(q, ps, sizeof q);
    q[1].id = &first[0];
    assert_rc(dm_add_batch(f->db, q, 3, NULL), DM_EEXISTS);
    dm_stats st;
    assert_rc(dm_stats_get(f->db, &st), DM_OK);
    assert_int_equal(st.n_memories, N + 2);
    assert_rc(dm_add_batch(f->db, NULL, 3, NULL), DM_EINVAL);
}

static void test_import_fields(void **state)
{
    fx *f = *state;
    dm_id src = add_ok(f->db, "imp-src", "rocket planet galaxy telescope");
    dm_memory *sm;
    assert_rc(dm_get(f->db, NULL, &src, DM_WITH_EMBEDDING, &sm), DM_OK);

    dm_id fixed;
    assert_rc(dm_id_parse("0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b", &fixed), DM_OK);
    dm_add_params p;
    dm_add_params_init(&p);
    p.tenant = "imp";
    p.user_id = "target";
    p.agent_id = "ag";
    p.session_id = "se";
    p.role = "system";
    /* Words the model does not know: only the given embedding can put this
     * memory near a space query. */
    p.text = "qqfoo zzbar wwbaz";
    p.event_time_us = 1600000000000001;
    p.metadata = "{\"imported\": true}";
    p.salience = 0.3f;
    p.decay_rate = 0.2f;
    p.kind = DM_KIND_SUMMARY;
    p.id = &fixed;
    p.record_time_us = 1600000000500000;
    p.access_count = 7;
    p.last_access_us = 1600000000900000;
    p.state = DM_STATE_ARCHIVED;
    p.embedding = sm->embedding;
    p.dim = sm->dim;
    dm_id got;
    assert_rc(dm_add(f->db, &p, &got), DM_OK);
    assert_true(id_eq(&got, &fixed));

    dm_memory *m;
    dm_scope sc = { "imp", "target" };
    assert_rc(dm_get(f->db, &sc, &fixed, DM_WITH_EMBEDDING | DM_WITH_ARCHIVED, &m),
              DM_OK);
    assert_true(id_eq(&m->id, &fixed));
    assert_string_equal(m->agent_id, "ag");
    assert_string_equal(m->session_id, "se");
    assert_string_equal(m->role, "system");
    assert_string_equal(m->text, "qqfoo zzbar wwbaz");
    assert_true(m->event_time_us == 1600000000000001);
    assert_true(m->record_time_us == 1600000000500000);
    assert_true(m->access_count >= 7);
    assert_true(m->last_access_us >= 1600000000900000);
    assert_int_equal(m->state, DM_STATE_ARCHIVED);
    assert_int_equal(m->kind, DM_KIND_SUMMARY);
    assert_float_equal(m->salience, 0.3f, 1e-6);
    assert_float_equal(m->decay_rate, 0.2f, 1e-6);
    assert_json_eq(m->metadata, "{\"imported\": true}");
    assert_non_null(m->embedding);
    assert_int_equal(m->dim, sm->dim);
    for (uint32_t i = 0; i < m->dim; i++)
        assert_float_equal(m->embedding[i], sm->embedding[i], 1e-3);
    dm_memory_free(m);

    /* Archived: hidden from list and search unless asked for. */
    size_t n;
    assert_rc(user_count(f->db, "imp", "target", 0, &n), DM_OK);
    assert_int_equal(n, 0);
    assert_rc(user_count(f->db, "imp", "target", DM_WITH_ARCHIVED, &n), DM_OK);
    assert_int_equal(n, 1);
    dm_search_params sp;
    memset(&sp, 0, sizeof sp);
    sp.tenant = "imp";
    sp.user_id = "target";
    sp.query = "astronaut orbit comet";
    dm_search_result *r;
    assert_rc(dm_search(f->db, &sp, &r), DM_OK);
    assert_int_equal(r->n, 0);
    dm_search_result_free(r);
    sp.flags = DM_WITH_ARCHIVED;
    assert_rc(dm_search(f->db, &sp, &r), DM_OK);
    assert_int_equal(r->n, 1);
    /* The stored embedding is the one given, not one of the text. */
    assert_true(r->hits[0].vector_sim > 0.6f);
    dm_search_result_free(r);

    /* The same id again, for any user: DM_EEXISTS. */
    p.state = DM_STATE_ACTIVE;
    dm_id tmp;
    memset(&tmp, 0x3c, sizeof tmp);
    assert_rc(dm_add(f->db, &p, &tmp), DM_EEXISTS);
    assert_true(id_is_zero(&tmp));
    p.tenant = NULL;
    p.user_id = "someone-else";
    assert_rc(dm_add(f->db, &p, NULL), DM_EEXISTS);
    p.id = &src;
    assert_rc(dm_add(f->db, &p, NULL), DM_EEXISTS);
    assert_rc(user_count(f->db, NULL, "someone-else", 0, &n), DM_ENOTFOUND);

    /* Wrong embedding dimension. */
    dm_id fresh;
    assert_rc(dm_id_parse("0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7c", &fresh), DM_OK);
    p.id = &fresh;
    p.dim = sm->dim / 2;
    assert_rc(dm_add(f->db, &p, NULL), DM_EINVAL);
    msg_has("import dim", "dim");
    /* Without an embedding the text is embedded; the id is kept. */
    p.embedding = NULL;
    p.dim = 0;
    p.text = "my cat and kitten";
    assert_rc(dm_add(f->db, &p, &got), DM_OK);
    assert_true(id_eq(&got, &fresh));
    dm_memory_free(sm);
}

typedef struct exp_rec {
    dm_memory m;  /* deep copy */
} exp_rec;

typedef struct exp_acc {
    exp_rec *v;
    size_t n, cap;
    size_t stop_after;  /* 0 = never */
    int bad;            /* a memory without an embedding */
} exp_acc;

static char *dupn(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int collect(void *arg, const dm_memory *m)
{
    exp_acc *a = arg;
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 64;
        a->v = realloc(a->v, a->cap * sizeof *a->v);
    }
    dm_memory *c = &a->v[a->n++].m;
    *c = *m;
    c->tenant = dupn(m->tenant);
    c->user_id = dupn(m->user_id);
    c->agent_id = dupn(m->agent_id);
    c->session_id = dupn(m->session_id);
    c->role = dupn(m->role);
    c->text = malloc(m->text_len + 1);
    memcpy(c->text, m->text, m->text_len + 1);
    c->metadata = dupn(m->metadata);
    if (m->embedding) {
        c->embedding = malloc(m->dim * sizeof(float));
        memcpy(c->embedding, m->embedding, m->dim * sizeof(float));
    } else {
        a->bad = 1;
    }
    return a->stop_after && a->n >= a->stop_after;
}

static void acc_free(exp_acc *a)
{
    for (size_t i = 0; i < a->n; i++) {
        dm_memory *c = &a->v[i].m;
        free(c->tenant);
        free(c->user_id);
        free(c->agent_id);
        free(c->session_id);
        free(c->role);
        free(c->text);
        free(c->metadata);
        free(c->embedding);
    }
    free(a->v);
    memset(a, 0, sizeof *a);
}

static void test_export(void **state)
{
    fx *f = *state;
    static const char *const tenants[2] = { "ta", "tb" };
    tu_rng rng;
    tu_rng_seed(&rng, 3);
    size_t per[2][3] = { { 0 } };
    for (int i = 0; i < 60; i++) {
        int t = (int)tu_randn(&rng, 2), u = (int)tu_randn(&rng, 3);
        char user[8], text[200];
        snprintf(user, sizeof user, "u%d", u);
        tm_sentence(&rng, (unsigned)tu_randn(&rng, TM_N_TOPICS), 3, text, sizeof text);
        assert_rc(add_full(f->db, tenants[t], user, text, 0, "{\"k\": 1}", NULL),
                  DM_OK);
        per[t][u]++;
    }
    /* An archived import is exported too. */
    dm_add_params p;
    dm_add_params_init(&p);
    p.tenant = "ta";
    p.user_id = "u0";
    p.text = "archived one";
    p.state = DM_STATE_ARCHIVED;
    assert_rc(dm_add(f->db, &p, NULL), DM_OK);
    per[0][0]++;

    dm_stats st;
    assert_rc(dm_stats_get(f->db, &st), DM_OK);
    assert_int_equal(st.n_memories, 61);

    exp_acc all = { 0 };
    assert_rc(dm_export(f->db, NULL, NULL, collect, &all), DM_OK);
    assert_int_equal(all.n, 61);
    assert_false(all.bad);
    for (size_t i = 0; i < all.n; i++) {
        assert_int_equal(all.v[i].m.dim, st.dim);
        float nrm = (float)norm_of(all.v[i].m.embedding, all.v[i].m.dim);
        assert_true(fabsf(nrm - 1.0f) < 1e-3f || nrm == 0.0f);
        for (size_t j = 0; j < i; j++)
            assert_false(id_eq(&all.v[i].m.id, &all.v[j].m.id));
    }
    /* Deterministic: a second export is the same sequence. */
    exp_acc again = { 0 };
    assert_rc(dm_export(f->db, NULL, NULL, collect, &again), DM_OK);
    assert_int_equal(again.n, all.n);
    for (size_t i = 0; i < all.n; i++)
        assert_true(id_eq(&again.v[i].m.id, &all.v[i].m.id));
    acc_free(&again);
    acc_free(&all);

    for (int t = 0; t < 2; t++) {
        exp_acc ta = { 0 };
        assert_rc(dm_export(f->db, tenants[t], NULL, collect, &ta), DM_OK);
        assert_int_equal(ta.n, per[t][0] + per[t][1] + per[t][2]);
        for (size_t i = 0; i < ta.n; i++)
            assert_string_equal(ta.v[i].m.tenant, tenants[t]);
        acc_free(&ta);
        for (int u = 0; u < 3; u++) {
            char user[8];
            snprintf(user, sizeof user, "u%d", u);
            exp_acc ua = { 0 };
            assert_rc(dm_export(f->db, tenants[t], user, collect, &ua), DM_OK);
            assert_int_equal(ua.n, per[t][u]);
            for (size_t i = 0; i < ua.n; i++) {
                assert_string_equal(ua.v[i].m.tenant, tenants[t]);
                assert_string_equal(ua.v[i].m.user_id, user);
            }
            acc_free(&ua);
        }
    }

    /* Stopping early: fn is called exactly until it says stop. */
    exp_acc stop = { 0 };
    stop.stop_after = 5;
    assert_rc(dm_export(f->db, NULL, NULL, collect, &stop), DM_ECANCELED);
    assert_int_equal(stop.n, 5);
    acc_free(&stop);

    /* A user nobody has: nothing visited. */
    exp_acc none = { 0 };
    int rc = dm_export(f->db, "ta", "nobody", collect, &none);
    assert_true(rc == DM_OK || rc == DM_ENOTFOUND);
    assert_int_equal(none.n, 0);
    assert_rc(dm_export(f->db, NULL, NULL, NULL, NULL), DM_EINVAL);
}

/* Export everything, import it into a second database, export that: the
 * two exports are equal field by field. */
static void test_export_import_roundtrip(void **state)
{
    fx *f = *state;
    tu_rng rng;
    tu_rng_seed(&rng, 77);
    for (int i = 0; i < 40; i++) {
        char user[8], text[200], meta[64];
        snprintf(user, sizeof user, "r%d", (int)tu_randn(&rng, 4));
        tm_sentence(&rng, (unsigned)tu_randn(&rng, TM_N_TOPICS), 4, text, sizeof text);
        snprintf(meta, sizeof meta, "{\"i\": %d}", i);
        dm_add_params p;
        dm_add_params_init(&p);
        p.tenant = i % 3 ? NULL : "rt";
        p.user_id = user;
        p.text = text;
        p.metadata = meta;
        p.agent_id = i % 2 ? "agent" : NULL;
        p.role = i % 4 ? NULL : "assistant";
        p.salience = (float)(i % 10) / 10.0f;
        p.kind = (dm_memory_kind)(i % 3);
        p.event_time_us = 1500000000000000 + (int64_t)tu_randn(&rng, 1000000000);
        assert_rc(dm_add(f->db, &p, NULL), DM_OK);
    }
    exp_acc a = { 0 };
    assert_rc(dm_export(f->db, NULL, NULL, collect, &a), DM_OK);
    assert_int_equal(a.n, 40);

    const char *dir2 = tu_tmpdir("test_api_import");
    char path2[4200];
    snprintf(path2, sizeof path2, "%s", dir2);
    dm_db *db2;
    assert_rc(dm_open(path2, &f->o, &db2), DM_OK);
    for (size_t i = 0; i < a.n; i++) {
        const dm_memory *m = &a.v[i].m;
        dm_add_params p;
        dm_add_params_init(&p);
        p.tenant = m->tenant;
        p.user_id = m->user_id;
        p.agent_id = m->agent_id;
        p.session_id = m->session_id;
        p.role = m->role;
        p.text = m->text;
        p.text_len = m->text_len;
        p.event_time_us = m->event_time_us;
        p.metadata = m->metadata;
        p.salience = m->salience;
        p.decay_rate = m->decay_rate;
        p.kind = m->kind;
        p.id = &m->id;
        p.record_time_us = m->record_time_us;
        p.access_count = m->access_count;
        p.last_access_us = m->last_access_us;
        p.state = m->state;
        p.embedding = m->embedding;
        p.dim = m->dim;
        assert_rc(dm_add(db2, &p, NULL), DM_OK);
    }
    exp_acc b = { 0 };
    assert_rc(dm_export(db2, NULL, NULL, collect, &b), DM_OK);
    assert_int_equal(b.n, a.n);
    for (size_t i = 0; i < a.n; i++) {
        const dm_memory *x = &a.v[i].m, *y = &b.v[i].m;
        assert_true(id_eq(&x->id, &y->id));
        assert_string_equal(x->tenant, y->tenant);
        assert_string_equal(x->user_id, y->user_id);
        assert_true((x->agent_id == NULL) == (y->agent_id == NULL));
        if (x->agent_id)
            assert_string_equal(x->agent_id, y->agent_id);
        assert_string_equal(x->role, y->role);
        assert_string_equal(x->text, y->text);
        assert_json_eq(y->metadata, x->metadata);
        assert_true(x->event_time_us == y->event_time_us);
        assert_true(x->record_time_us == y->record_time_us);
        assert_true(x->last_access_us == y->last_access_us);
        assert_int_equal(x->access_count, y->access_count);
        assert_float_equal(x->salience, y->salience, 1e-6);
        assert_float_equal(x->decay_rate, y->decay_rate, 1e-6);
        assert_int_equal(x->kind, y->kind);
        assert_int_equal(x->state, y->state);
        assert_int_equal(x->dim, y->dim);
        for (uint32_t j = 0; j < x->dim; j++)
            assert_float_equal(x->embedding[j], y->embedding[j], 1e-6);
    }
    acc_free(&a);
    acc_free(&b);
    assert_rc(dm_close(db2), DM_OK);
    tu_rmrf(path2);
}

/* ------------------------------------------------------------------ */
/* Erase, stats                                                        */
/* ------------------------------------------------------------------ */

static void test_erase_user(void **state)
{
    fx *f = *state;
    dm_id ids[10];
    for (int i = 0; i < 10; i++)
        ids[i] = add_ok(f->db, "eraseme", "a memory about the piano");
    add_ok(f->db, "keepme", "a memory about the piano");
    uint64_t n = 99;
    assert_rc(dm_erase_user(f->db, NULL, "eraseme", &n), DM_OK);
    assert_int_equal(n, 10);
    size_t c;
    assert_rc(user_count(f->db, NULL, "eraseme", 0, &c), DM_ENOTFOUND);
    dm_search_params sp;
    memset(&sp, 0, sizeof sp);
    sp.user_id = "eraseme";
    sp.query = "piano";
    search_fails(f->db, &sp, DM_ENOTFOUND, NULL);
    for (int i = 0; i < 10; i++) {
        dm_memory *m;
        assert_rc(dm_get(f->db, NULL, &ids[i], 0, &m), DM_ENOTFOUND);
    }
    n = 99;
    assert_rc(dm_erase_user(f->db, NULL, "eraseme", &n), DM_ENOTFOUND);
    assert_int_equal(n, 0);
    assert_rc(dm_erase_user(f->db, NULL, "never-was", NULL), DM_ENOTFOUND);
    assert_rc(dm_erase_user(f->db, "no-tenant", "keepme", NULL), DM_ENOTFOUND);
    assert_rc(dm_erase_user(f->db, NULL, NULL, NULL), DM_EINVAL);
    assert_rc(user_count(f->db, NULL, "keepme", 0, &c), DM_OK);
    assert_int_equal(c, 1);

    /* The user can start again from nothing. */
    dm_id again = add_ok(f->db, "eraseme", "a new start with the violin");
    assert_rc(user_count(f->db, NULL, "eraseme", 0, &c), DM_OK);
    assert_int_equal(c, 1);
    dm_search_result *r = search_ok(f->db, "eraseme", "piano", 10);
    assert_int_equal(r->n, 1);
    assert_true(id_eq(&r->hits[0].memory.id, &again));
    dm_search_result_free(r);
    assert_rc(dm_erase_user(f->db, NULL, "eraseme", NULL), DM_OK);
}

static void test_stats(void **state)
{
    fx *f = *state;
    dm_stats st;
    memset(&st, 0x55, sizeof st);
    assert_rc(dm_stats_get(f->db, &st), DM_OK);
    assert_int_equal(st.n_users, 0);
    assert_int_equal(st.n_memories, 0);
    assert_string_equal(st.model, TM_ENGINE_NAME(TM_DEFAULT_NAME));
    assert_int_equal(st.dim, TM_DEFAULT_DIM);

    dm_id ids[5];
    for (int i = 0; i < 5; i++)
        ids[i] = add_ok(f->db, "s1", "soup and salad");
    for (int i = 0; i < 3; i++)
        assert_rc(add_full(f->db, "other", "s1", "soup", 0, NULL, NULL), DM_OK);
    assert_rc(dm_stats_get(f->db, &st), DM_OK);
    assert_int_equal(st.n_users, 2);
    assert_int_equal(st.n_memories, 8);
    assert_true(st.n_loaded_users >= 1 && st.n_loaded_users <= 2);
    assert_true(st.index_bytes > 0);
    assert_true(st.disk_bytes > 0);

    assert_rc(dm_delete(f->db, NULL, &ids[2]), DM_OK);
    assert_rc(dm_stats_get(f->db, &st), DM_OK);
    assert_int_equal(st.n_memories, 7);
    assert_rc(dm_erase_user(f->db, "other", "s1", NULL), DM_OK);
    assert_rc(dm_stats_get(f->db, &st), DM_OK);
    assert_int_equal(st.n_users, 1);
    assert_int_equal(st.n_memories, 4);
}

/* The storage figures of dm_stats: the tables' heap and the block cache,
 * which compressed blocks go through. */
static void test_stats_tables(void **state)
{
    fx *f = *state;
    assert_rc(dm_close(f->db), DM_OK);
    f->o.memtable_bytes = 64 << 10; /* flush after a few dozen adds */
    assert_rc(fx_open(f), DM_OK);
    enum { N = 80 };
    dm_id ids[N];
    char text[1600];
    for (int i = 0; i < N; i++) {
        /* Repetitive, so that its blocks compress and stay compressed. */
        int n = snprintf(text, sizeof text, "note %d:", i);
        while (n < (int)sizeof text - 40)
            n += snprintf(text + n, sizeof text - (size_t)n, " the weekly report on item %d", i);
        ids[i] = add_ok(f->db, "tables", text);
    }
    dm_stats st;
    for (int tries = 0;; tries++) {
        assert_rc(dm_stats_get(f->db, &st), DM_OK);
        if (st.flushes > 0 && !st.background_busy)
            break;
        assert_true(tries < 1000); /* 10 s */
        struct timespec ts = { 0, 10000000 };
        nanosleep(&ts, NULL);
    }
    assert_true(st.table_bytes > 0);
    assert_true(st.table_bytes < st.heap_bytes);
    uint64_t misses0 = st.block_cache_misses, hits0 = st.block_cache_hits;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < N; i++) {
            dm_memory *m = NULL;
            assert_rc(dm_get(f->db, &(dm_scope){ .user_id = "tables" }, &ids[i], 0, &m), DM_OK);
            assert_non_null(strstr(m->text, "the weekly report on item"));
            dm_memory_free(m);
        }
    assert_rc(dm_stats_get(f->db, &st), DM_OK);
    /* The first pass decoded the flushed blocks, the second found them. */
    assert_true(st.block_cache_misses > misses0);
    assert_true(st.block_cache_hits > hits0);
    assert_true(st.block_cache_bytes > 0);
    assert_true(st.block_cache_bytes < st.heap_bytes);
}

/* Wait until a flush has written a table and nothing runs in the
 * background. */
static void wait_flushed(dm_db *db, dm_stats *st)
{
    for (int tries = 0;; tries++) {
        assert_rc(dm_stats_get(db, st), DM_OK);
        if (st->flushes > 0 && !st->background_busy)
            return;
        assert_true(tries < 1000); /* 10 s */
        struct timespec ts = { 0, 10000000 };
        nanosleep(&ts, NULL);
    }
}

/* Tables read with pread: every block goes through the block cache, the
 * ones stored uncompressed too (mapped, those are read in place and never
 * counted), and every memory reads back whole. */
static void test_pread_tables(void **state)
{
    fx *f = *state;
    enum { N = 80 };
    uint64_t reads[2];
    for (int mode = 0; mode < 2; mode++) {
        assert_rc(dm_close(f->db), DM_OK);
        f->db = NULL;
        tu_rmrf(f->dir);
        f->o.memtable_bytes = 64 << 10;
        f->o.pread_tables = mode;
        assert_rc(fx_open(f), DM_OK);
        dm_id ids[N];
        char text[N][1200];
        tu_rng r;
        tu_rng_seed(&r, 7);
        for (int i = 0; i < N; i++) {
            /* Random letters: blocks that do not compress, stored as they are. */
            int n = snprintf(text[i], sizeof text[i], "code %d:", i);
            while (n < (int)sizeof text[i] - 1)
                text[i][n++] = (char)('a' + tu_randn(&r, 26));
            text[i][n] = 0;
            ids[i] = add_ok(f->db, "raw", text[i]);
        }
        dm_stats st;
        wait_flushed(f->db, &st);
        uint64_t misses0 = st.block_cache_misses, hits0 = st.block_cache_hits;
        for (int i = 0; i < N; i++) {
            dm_memory *m = NULL;
            assert_rc(dm_get(f->db, &(dm_scope){ .user_id = "raw" }, &ids[i], 0, &m), DM_OK);
            assert_string_equal(m->text, text[i]);
            dm_memory_free(m);
        }
        assert_rc(dm_stats_get(f->db, &st), DM_OK);
        reads[mode] = st.block_cache_misses + st.block_cache_hits - misses0 - hits0;
    }
    /* The same reads of the same tables; read with pread, the blocks of
     * the records (stored uncompressed) went through the cache as well. */
    if (reads[1] < reads[0] + N / 4)
        fail_msg("block cache reads: %llu mapped, %llu with pread",
                 (unsigned long long)reads[0], (unsigned long long)reads[1]);
    f->o.pread_tables = 0;
}

/* ------------------------------------------------------------------ */
/* Ids and times                                                       */
/* ------------------------------------------------------------------ */

static void test_ids_ordered(void **state)
{
    fx *f = *state;
    enum { N = 300 };
    dm_id ids[N];
    int64_t t0 = now_us();
    for (int i = 0; i < N; i++) {
        char user[16];
        snprintf(user, sizeof user, "idu%d", i % 7);
        /* Event times go backwards: the id order follows creation, not
         * event time. */
        assert_rc(add_full(f->db, i % 2 ? "x" : NULL, user, "same text", 1000000000 - i,
                           NULL, &ids[i]), DM_OK);
    }
    int64_t t1 = now_us();
    dm_add_params ps[20];
    dm_id bids[20];
    for (int i = 0; i < 20; i++) {
        dm_add_params_init(&ps[i]);
        ps[i].user_id = i % 2 ? "idu1" : "idu2";
        ps[i].text = "batch text";
    }
    assert_rc(dm_add_batch(f->db, ps, 20, bids), DM_OK);
    for (int i = 0; i < N; i++) {
        /* UUID version 7, RFC 4122 variant, 48-bit millisecond time. */
        assert_int_equal(ids[i].bytes[6] >> 4, 7);
        assert_int_equal(ids[i].bytes[8] >> 6, 2);
        uint64_t ms = 0;
        for (int b = 0; b < 6; b++)
            ms = ms << 8 | ids[i].bytes[b];
        assert_true((int64_t)ms >= t0 / 1000 - 1 && (int64_t)ms <= t1 / 1000 + 1);
        if (i > 0 && memcmp(ids[i - 1].bytes, ids[i].bytes, 16) >= 0) {
            char a[DM_ID_STRLEN + 1], b[DM_ID_STRLEN + 1];
            dm_id_format(&ids[i - 1], a);
            dm_id_format(&ids[i], b);
            fail_msg("id %d (%s) is not above id %d (%s)", i, b, i - 1, a);
        }
    }
    assert_true(memcmp(ids[N - 1].bytes, bids[0].bytes, 16) < 0);
    for (int i = 1; i < 20; i++)
        assert_true(memcmp(bids[i - 1].bytes, bids[i].bytes, 16) < 0);
}

static void test_id_text(void **state)
{
    (void)state;
    dm_id id;
    for (int i = 0; i < 16; i++)
        id.bytes[i] = (uint8_t)(0x01 + i * 0x11);
    char s[DM_ID_STRLEN + 1];
    memset(s, '#', sizeof s);
    dm_id_format(&id, s);
    assert_string_equal(s, "01122334-4556-6778-899a-abbccddeef00");
    dm_id back;
    assert_rc(dm_id_parse(s, &back), DM_OK);
    assert_true(id_eq(&back, &id));
    assert_rc(dm_id_parse("01122334-4556-6778-899A-ABBCCDDEEF00", &back), DM_OK);
    assert_true(id_eq(&back, &id));

    tu_rng rng;
    tu_rng_seed(&rng, 9);
    for (int k = 0; k < 1000; k++) {
        for (int i = 0; i < 16; i++)
            id.bytes[i] = (uint8_t)tu_rand(&rng);
        dm_id_format(&id, s);
        assert_int_equal(strlen(s), DM_ID_STRLEN);
        for (int i = 0; i < DM_ID_STRLEN; i++) {
            if (i == 8 || i == 13 || i == 18 || i == 23)
                assert_int_equal(s[i], '-');
            else
                assert_true((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'));
        }
        assert_rc(dm_id_parse(s, &back), DM_OK);
        assert_true(id_eq(&back, &id));
    }

    static const struct {
        const char *s;
        int pos;          /* the offending position, -1 = none */
        const char *c;    /* or the offending character */
    } bad[] = {
        { "", -1, NULL },
        { "01122334-4556-6778-899a-abbccddeeff", -1, NULL },
        { "01122334-4556-6778-899a-abbccddeeff00", -1, NULL },
        { "0112#334-4556-6778-899a-abbccddeeff0", 4, "#" },
        { "01122334-4556-6778-899a-abbccddeefg0", 34, "'g'" },
        { "011223344-556-6778-899a-abbccddeeff0", 8, "'4'" },
        { "01122334 4556 6778 899a abbccddeeff0", 8, "' '" },
        { "{1122334-4556-6778-899a-abbccddeeff}", 0, "{" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&back, 0x99, sizeof back);
        int rc = dm_id_parse(bad[i].s, &back);
        if (rc != DM_EINVAL)
            fail_msg("dm_id_parse(\"%s\"): %s", bad[i].s, dm_errname(rc));
        assert_true(id_is_zero(&back));
        assert_true(strlen(dm_errmsg()) > 0);
        if (bad[i].pos >= 0)
            msg_has_pos(bad[i].s, (size_t)bad[i].pos, bad[i].c);
    }
    assert_rc(dm_id_parse(NULL, &back), DM_EINVAL);
    soft_check();
}

static void test_time_text(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t us;
    } good[] = {
        { "2023-05-08", 1683504000000000 },
        { "2023-05-08T13:56", 1683554160000000 },
        { "2023-05-08T13:56:00", 1683554160000000 },
        { "2023-05-08T13:56:00Z", 1683554160000000 },
        { "2023-05-08T13:56:00.5Z", 1683554160500000 },
        { "2023-05-08T13:56:00.123456", 1683554160123456 },
        { "2023-05-08T13:56:07.000001Z", 1683554167000001 },
        { "2023-05-08T15:56:00+02:00", 1683554160000000 },
        { "2023-05-08T11:26:00-02:30", 1683554160000000 },
        { "2023-05-08T13:56Z", 1683554160000000 },
        { "1970-01-01", 0 },
        { "1970-01-01T00:00:00.000001Z", 1 },
        { "1969-12-31T23:59:59.999999Z", -1 },
        { "2000-02-29", 951782400000000 },
        { "2024-12-31T23:59:59Z", 1735689599000000 },
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t us = 12345;
        int rc = dm_time_parse(good[i].s, &us);
        if (rc != DM_OK || us != good[i].us)
            fail_msg("dm_time_parse(\"%s\"): %s, %" PRId64 " want %" PRId64,
                     good[i].s, dm_errname(rc), us, good[i].us);
    }

    static const struct {
        const char *s;
        int pos; /* a position the message should name, or -1 */
    } bad[] = {
        { "", -1 },
        { "2023", -1 },
        { "2023-13-01", 5 },
        { "2023-02-30", 8 },
        { "2021-02-29", 8 },
        { "2023-05-08X13:56", 10 },
        { "2023-05-08T24:01", 11 },
        { "2023-05-08T13:60", 14 },
        { "2023-05-08T13:56:61", -1 },
        { "2023-05-08T13:56:00+25:00", -1 },
        { "2023-05-08T13:56:00Zjunk", 20 },
        { "abcd-ef-gh", 0 },
        { "2023-5-8", -1 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t us = 12345;
        int rc = dm_time_parse(bad[i].s, &us);
        if (rc != DM_EINVAL)
            fail_msg("dm_time_parse(\"%s\"): %s, %" PRId64, bad[i].s,
                     dm_errname(rc), us);
        assert_true(us == 0);
        assert_true(strlen(dm_errmsg()) > 0);
        if (bad[i].pos >= 0)
            msg_has_pos(bad[i].s, (size_t)bad[i].pos, NULL);
    }
    int64_t us;
    assert_rc(dm_time_parse(NULL, &us), DM_EINVAL);
    soft_check();

    char out[40];
    dm_time_format(1683554160000000, out);
    assert_string_equal(out, "2023-05-08T13:56:00Z");
    dm_time_format(1683554160500000, out);
    assert_string_equal(out, "2023-05-08T13:56:00.500000Z");
    dm_time_format(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00Z");
    dm_time_format(-1, out);
    assert_string_equal(out, "1969-12-31T23:59:59.999999Z");
    dm_time_format(951782400000001, out);
    assert_string_equal(out, "2000-02-29T00:00:00.000001Z");

    /* Round trips over 1653..2920, both sides of the epoch, checked
     * against the C library's calendar. */
    tu_rng rng;
    tu_rng_seed(&rng, 21);
    for (int k = 0; k < 5000; k++) {
        int64_t x = (int64_t)tu_randn(&rng, 40000000000000000ull) - 10000000000000000ll;
        if (k % 3 == 0)
            x -= x % 1000000;
        dm_time_format(x, out);
        int64_t y = 0;
        assert_rc(dm_time_parse(out, &y), DM_OK);
        if (y != x)
            fail_msg("round trip %" PRId64 " -> %s -> %" PRId64, x, out, y);
        time_t secs = (time_t)(x >= 0 ? x / 1000000 : -((-x + 999999) / 1000000));
        struct tm tmv;
        gmtime_r(&secs, &tmv);
        char want[40];
        snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d", tmv.tm_year + 1900,
                 tmv.tm_mon + 1, tmv.tm_mday, tmv.tm_hour, tmv.tm_min, tmv.tm_sec);
        assert_memory_equal(out, want, 19);
    }
}

/* ------------------------------------------------------------------ */
/* Messages per thread                                                 */
/* ------------------------------------------------------------------ */

static void *fail_in_thread(void *arg)
{
    dm_id id;
    int *rc = arg;
    *rc = dm_id_parse("not an id at all", &id);
    return NULL;
}

static void test_errmsg_per_thread(void **state)
{
    fx *f = *state;
    dm_add_params p;
    dm_add_params_init(&p);
    p.user_id = "m";
    p.text = "";
    assert_rc(dm_add(f->db, &p, NULL), DM_EINVAL);
    char mine[256];
    snprintf(mine, sizeof mine, "%s", dm_errmsg());
    assert_true(strlen(mine) > 0);
    pthread_t th;
    int rc = 0;
    assert_int_equal(pthread_create(&th, NULL, fail_in_thread, &rc), 0);
    pthread_join(th, NULL);
    assert_int_equal(rc, DM_EINVAL);
    assert_string_equal(dm_errmsg(), mine);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors_version),
        cmocka_unit_test(test_options_defaults),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_close_frees_everything),
        cmocka_unit_test(test_id_text),
        cmocka_unit_test(test_time_text),
        T(test_add_get_defaults),
        T(test_add_get_all_fields),
        T(test_get_scope),
        T(test_add_validation),
        T(test_add_limits),
        T(test_update),
        T(test_delete),
        T(test_list_order_and_range),
        T(test_list_pagination),
        T(test_search_legs),
        T(test_search_errors),
        T(test_search_window_and_filter),
        T(test_batch),
        T(test_import_fields),
        T(test_export),
        T(test_export_import_roundtrip),
        T(test_erase_user),
        T(test_stats),
        T(test_stats_tables),
        T(test_pread_tables),
        T(test_ids_ordered),
        T(test_errmsg_per_thread),
    };
#undef T
    /* DM_TEST_FILTER / DM_TEST_SKIP: run only / skip tests matching a
     * pattern (cmocka's wildcards). */
    if (getenv("DM_TEST_FILTER"))
        cmocka_set_test_filter(getenv("DM_TEST_FILTER"));
    if (getenv("DM_TEST_SKIP"))
        cmocka_set_skip_filter(getenv("DM_TEST_SKIP"));
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    print_message("test_api: %.2f s\n",
                  (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9);
    return rc;
}
