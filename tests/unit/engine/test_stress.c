/*
 * test_stress.c -- many threads, many users, every operation, one model.
 *
 * 16 threads run a random mix of add, batch add, search, update, delete,
 * erase_user, list and get on random users out of 1,000 (a few "hot"
 * users take a tenth of the operations, so that writers of one user really
 * do contend).  Each user has a model of its memories guarded by a
 * per-user mutex that a thread holds across the API call and the model
 * update, so the model applies acknowledged operations in the order the
 * engine acknowledged them.  A batch locks its users in ascending order.
 * Under the lock every answer is checked exactly against the model; some
 * searches run without the lock (concurrent readers of a user being
 * written) and are checked for ownership only: every memory of user u
 * carries the word "usrNNNN" in its text and the user's index in its
 * metadata.
 *
 * At the end, and again after close and reopen, every user's list (paged),
 * get, export and search equal the model, and the statistics add up.
 *
 * Threads never call cmocka: they record the first failure and stop; the
 * main thread asserts after joining.
 *
 * Scale: DM_STRESS_THREADS (16), DM_STRESS_USERS (1000), DM_STRESS_OPS
 * (operations per thread, default chosen to finish well inside a minute
 * under ASan and TSan on two cores), DM_STRESS_SEED.
 */
// ctest-labels: concurrency
// ctest-timeout: 600
#include "testutil.h"
#include "tinymodel.h"

#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_HOT 8
#define MAX_BATCH 4

typedef struct mrec {
    dm_id id;
    int64_t ev;
    char *text;
    char *meta;
} mrec;

typedef struct umodel {
    pthread_mutex_t mu; /* guards everything below and orders the user's
                           API calls with the model updates */
    mrec *v;
    int n, cap;
    uint32_t version;   /* metadata version counter */
} umodel;

static int g_threads, g_users;
static long g_ops;
static uint64_t g_seed;
static dm_db *g_db;
static umodel *g_model;
static _Atomic int g_failed;
static pthread_mutex_t g_err_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_err[2048];

enum { OP_ADD, OP_BATCH, OP_SEARCH, OP_SEARCH_NOLOCK, OP_UPDATE, OP_DELETE,
       OP_ERASE, OP_LIST, OP_GET, N_OPKINDS };
static const char *const op_names[N_OPKINDS] = {
    "add", "batch", "search", "search-unlocked", "update", "delete", "erase",
    "list", "get",
};
static _Atomic uint64_t g_count[N_OPKINDS];

static void failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void failf(const char *fmt, ...)
{
    pthread_mutex_lock(&g_err_mu);
    if (!atomic_load(&g_failed)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(g_err, sizeof g_err, fmt, ap);
        va_end(ap);
        atomic_store(&g_failed, 1);
    }
    pthread_mutex_unlock(&g_err_mu);
}

static const char *tenant_of(int u)
{
    static const char *const t[3] = { NULL, "ta", "tb" };
    return t[u % 3];
}

static const char *tenant_name(int u)
{
    return tenant_of(u) ? tenant_of(u) : DM_DEFAULT_TENANT;
}

static void user_of(int u, char out[16])
{
    snprintf(out, 16, "user-%04u", (unsigned)u % 1000000u);
}

static int id_eq(const dm_id *a, const dm_id *b)
{
    return memcmp(a->bytes, b->bytes, 16) == 0;
}

static int json_same(const char *a, const char *b)
{
    json_error_t e;
    json_t *x = json_loads(a, 0, &e), *y = json_loads(b, 0, &e);
    int same = x && y && json_equal(x, y);
    json_decref(x);
    json_decref(y);
    return same;
}

static void make_text(tu_rng *r, int u, char *out, size_t cap)
{
    char s[200];
    tm_sentence(r, (unsigned)tu_randn(r, TM_N_TOPICS), 2 + (unsigned)tu_randn(r, 4),
                s, sizeof s);
    snprintf(out, cap, "usr%04d %s", u, s);
}

static void make_meta(umodel *m, int u, char *out, size_t cap)
{
    snprintf(out, cap, "{\"u\": %d, \"v\": %u}", u, ++m->version);
}

static int find_rec(const umodel *m, const dm_id *id)
{
    for (int i = 0; i < m->n; i++)
        if (id_eq(&m->v[i].id, id))
            return i;
    return -1;
}

static void model_add(umodel *m, const dm_id *id, int64_t ev, const char *text,
                      const char *meta)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 8;
        m->v = realloc(m->v, (size_t)m->cap * sizeof *m->v);
        if (!m->v)
            abort();
    }
    mrec *r = &m->v[m->n++];
    r->id = *id;
    r->ev = ev;
    r->text = strdup(text);
    r->meta = strdup(meta);
}

static void model_del(umodel *m, int i)
{
    free(m->v[i].text);
    free(m->v[i].meta);
    m->v[i] = m->v[--m->n];
}

static void model_clear(umodel *m)
{
    while (m->n)
        model_del(m, m->n - 1);
}

/* The memory must be user u's and, when m is given (u's lock held), equal
 * to its model record. */
static int check_mem(int u, const umodel *m, const dm_memory *mem, const char *how)
{
    char user[16], tag[16];
    user_of(u, user);
    snprintf(tag, sizeof tag, "usr%04u", (unsigned)u % 1000000u);
    if (strcmp(mem->user_id, user) != 0 || strcmp(mem->tenant, tenant_name(u)) != 0 ||
        strncmp(mem->text, tag, 7) != 0) {
        failf("%s for (%s, %s) returned a memory of (%s, %s): %.40s", how,
              tenant_name(u), user, mem->tenant, mem->user_id, mem->text);
        return -1;
    }
    if (!m)
        return 0;
    int i = find_rec(m, &mem->id);
    if (i < 0) {
        char s[DM_ID_STRLEN + 1];
        dm_id_format(&mem->id, s);
        failf("%s for %s returned %s, which the model does not have (deleted "
              "or never acknowledged): %.60s", how, user, s, mem->text);
        return -1;
    }
    if (strcmp(mem->text, m->v[i].text) != 0 || mem->event_time_us != m->v[i].ev ||
        !json_same(mem->metadata, m->v[i].meta)) {
        failf("%s for %s: memory differs from the model: text \"%s\" vs \"%s\", "
              "ev %" PRId64 " vs %" PRId64 ", meta %s vs %s", how, user, mem->text,
              m->v[i].text, mem->event_time_us, m->v[i].ev, mem->metadata,
              m->v[i].meta);
        return -1;
    }
    return 0;
}

static int cmp_newest(const void *a, const void *b)
{
    const mrec *x = a, *y = b;
    if (x->ev != y->ev)
        return x->ev > y->ev ? -1 : 1;
    return -memcmp(x->id.bytes, y->id.bytes, 16);
}

/* Full paged list of u compared with the model, in order.  u's lock held
 * (or no other thread running). */
static void check_list(int u, umodel *m, uint32_t page, const char *how)
{
    char user[16];
    user_of(u, user);
    mrec *sorted = malloc(((size_t)m->n + 1) * sizeof *sorted);
    if (m->n > 0) {
        memcpy(sorted, m->v, (size_t)m->n * sizeof *sorted);
        qsort(sorted, (size_t)m->n, sizeof *sorted, cmp_newest);
    }
    dm_list_params lp;
    memset(&lp, 0, sizeof lp);
    lp.tenant = tenant_of(u);
    lp.user_id = user;
    lp.limit = page;
    char *cursor = NULL;
    int pos = 0;
    for (;;) {
        lp.cursor = cursor;
        dm_list_result *r = NULL;
        int rc = dm_list(g_db, &lp, &r);
        free(cursor);
        cursor = NULL;
        if (rc == DM_ENOTFOUND && m->n == 0)
            break;
        if (rc != DM_OK) {
            failf("%s: list %s: %s (%s), model has %d", how, user, dm_errname(rc),
                  dm_errmsg(), m->n);
            break;
        }
        for (size_t i = 0; i < r->n; i++, pos++) {
            if (check_mem(u, m, &r->items[i], how) != 0)
                break;
            if (pos >= m->n || !id_eq(&r->items[i].id, &sorted[pos].id)) {
                failf("%s: list %s: item %d is not the model's (model has %d)",
                      how, user, pos, m->n);
                break;
            }
        }
        if (r->next_cursor)
            cursor = strdup(r->next_cursor);
        dm_list_result_free(r);
        if (!cursor || atomic_load(&g_failed))
            break;
    }
    free(cursor);
    if (pos != m->n && !atomic_load(&g_failed))
        failf("%s: list %s: %d items, model has %d", how, user, pos, m->n);
    free(sorted);
}

static void do_search(tu_rng *r, int u, umodel *m)
{
    char user[16], q[128];
    user_of(u, user);
    unsigned t = (unsigned)tu_randn(r, TM_N_TOPICS);
    if (tu_randn(r, 4) == 0)
        snprintf(q, sizeof q, "usr%04d", u);
    else
        snprintf(q, sizeof q, "%s %s", tm_topic_word(t, (unsigned)tu_randn(r, 16)),
                 tm_topic_word(t, (unsigned)tu_randn(r, 16)));
    dm_search_params sp;
    memset(&sp, 0, sizeof sp);
    sp.tenant = tenant_of(u);
    sp.user_id = user;
    sp.query = q;
    sp.k = 1 + (uint32_t)tu_randn(r, 20);
    dm_search_result *res = NULL;
    int rc = dm_search(g_db, &sp, &res);
    if (rc == DM_ENOTFOUND && (!m || m->n == 0))
        return;
    if (rc != DM_OK) {
        failf("search %s: %s (%s)", user, dm_errname(rc), dm_errmsg());
        return;
    }
    for (size_t i = 0; i < res->n; i++)
        if (check_mem(u, m, &res->hits[i].memory, m ? "search" : "unlocked search"))
            break;
    if (m) {
        size_t want = (size_t)m->n < sp.k ? (size_t)m->n : sp.k;
        if (res->n != want)
            failf("search %s k=%u: %zu hits, model has %d", user, sp.k, res->n, m->n);
    }
    dm_search_result_free(res);
}

static int64_t rand_ev(tu_rng *r)
{
    /* A small range, so that equal event times (ordered by id) occur. */
    return 1600000000000000 + (int64_t)tu_randn(r, 400) * 1000000;
}

static void do_add(tu_rng *r, int u, umodel *m)
{
    char user[16], text[256], meta[64];
    user_of(u, user);
    make_text(r, u, text, sizeof text);
    make_meta(m, u, meta, sizeof meta);
    dm_add_params p;
    dm_add_params_init(&p);
    p.tenant = tenant_of(u);
    p.user_id = user;
    p.text = text;
    p.metadata = meta;
    p.event_time_us = rand_ev(r);
    dm_id id;
    int rc = dm_add(g_db, &p, &id);
    if (rc != DM_OK) {
        failf("add %s: %s (%s)", user, dm_errname(rc), dm_errmsg());
        return;
    }
    model_add(m, &id, p.event_time_us, text, meta);
}

static int cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

static void do_batch(tu_rng *r, int first)
{
    int us[MAX_BATCH], n = 2 + (int)tu_randn(r, MAX_BATCH - 1), k = 0;
    us[k++] = first;
    while (k < n) {
        int u = (int)tu_randn(r, (uint64_t)g_users);
        int dup = 0;
        for (int j = 0; j < k; j++)
            dup |= us[j] == u;
        if (!dup)
            us[k++] = u;
    }
    qsort(us, (size_t)n, sizeof us[0], cmp_int);
    for (int j = 0; j < n; j++)
        pthread_mutex_lock(&g_model[us[j]].mu);
    /* One to three memories per user, interleaved. */
    dm_add_params ps[MAX_BATCH * 3];
    char users[MAX_BATCH * 3][16], texts[MAX_BATCH * 3][256], metas[MAX_BATCH * 3][64];
    int owner[MAX_BATCH * 3], np = 0;
    for (int rep = 0; rep < 3; rep++) {
        for (int j = 0; j < n; j++) {
            if (rep > 0 && tu_randn(r, 2))
                continue;
            int u = us[j];
            user_of(u, users[np]);
            make_text(r, u, texts[np], sizeof texts[np]);
            make_meta(&g_model[u], u, metas[np], sizeof metas[np]);
            dm_add_params_init(&ps[np]);
            ps[np].tenant = tenant_of(u);
            ps[np].user_id = users[np];
            ps[np].text = texts[np];
            ps[np].metadata = metas[np];
            ps[np].event_time_us = rand_ev(r);
            owner[np++] = u;
        }
    }
    dm_id ids[MAX_BATCH * 3];
    int rc = dm_add_batch(g_db, ps, (size_t)np, ids);
    if (rc != DM_OK)
        failf("batch of %d: %s (%s)", np, dm_errname(rc), dm_errmsg());
    else
        for (int i = 0; i < np; i++)
            model_add(&g_model[owner[i]], &ids[i], ps[i].event_time_us, texts[i],
                      metas[i]);
    for (int j = n - 1; j >= 0; j--)
        pthread_mutex_unlock(&g_model[us[j]].mu);
}

static void do_update(tu_rng *r, int u, umodel *m)
{
    if (m->n == 0) {
        do_add(r, u, m);
        return;
    }
    char user[16], text[256], meta[64];
    user_of(u, user);
    int i = (int)tu_randn(r, (uint64_t)m->n);
    int what = (int)tu_randn(r, 3); /* 0 text, 1 metadata, 2 both */
    make_text(r, u, text, sizeof text);
    make_meta(m, u, meta, sizeof meta);
    dm_scope sc = { tenant_of(u), user };
    int rc = dm_update(g_db, tu_randn(r, 4) ? &sc : NULL, &m->v[i].id,
                       what != 1 ? text : NULL, what != 0 ? meta : NULL);
    if (rc != DM_OK) {
        failf("update %s: %s (%s)", user, dm_errname(rc), dm_errmsg());
        return;
    }
    if (what != 1) {
        free(m->v[i].text);
        m->v[i].text = strdup(text);
    }
    if (what != 0) {
        free(m->v[i].meta);
        m->v[i].meta = strdup(meta);
    }
}

static void do_delete(tu_rng *r, int u, umodel *m)
{
    char user[16];
    user_of(u, user);
    dm_scope sc = { tenant_of(u), user };
    if (m->n == 0 || tu_randn(r, 10) == 0) {
        /* An id nobody has. */
        dm_id fake;
        for (int b = 0; b < 16; b++)
            fake.bytes[b] = (uint8_t)tu_rand(r);
        int rc = dm_delete(g_db, &sc, &fake);
        if (rc != DM_ENOTFOUND)
            failf("delete of a fake id for %s: %s", user, dm_errname(rc));
        return;
    }
    int i = (int)tu_randn(r, (uint64_t)m->n);
    int rc = dm_delete(g_db, &sc, &m->v[i].id);
    if (rc != DM_OK) {
        failf("delete %s: %s (%s)", user, dm_errname(rc), dm_errmsg());
        return;
    }
    model_del(m, i);
}

static void do_erase(int u, umodel *m)
{
    char user[16];
    user_of(u, user);
    uint64_t n = 12345;
    int rc = dm_erase_user(g_db, tenant_of(u), user, &n);
    if (rc == DM_ENOTFOUND && m->n == 0)
        return;
    if (rc != DM_OK || n != (uint64_t)m->n) {
        failf("erase %s: %s (%s), %" PRIu64 " erased, model has %d", user,
              dm_errname(rc), rc ? dm_errmsg() : "", n, m->n);
        return;
    }
    model_clear(m);
}

static void do_get(tu_rng *r, int u, umodel *m)
{
    char user[16];
    user_of(u, user);
    if (m->n == 0)
        return;
    int i = (int)tu_randn(r, (uint64_t)m->n);
    dm_scope sc = { tenant_of(u), user };
    dm_memory *mem = NULL;
    int rc = dm_get(g_db, tu_randn(r, 2) ? &sc : NULL, &m->v[i].id, 0, &mem);
    if (rc != DM_OK) {
        failf("get %s: %s (%s)", user, dm_errname(rc), dm_errmsg());
        return;
    }
    check_mem(u, m, mem, "get");
    dm_memory_free(mem);
    /* Another user's scope never sees it. */
    char other[16];
    user_of((u + 1) % g_users, other);
    dm_scope wrong = { tenant_of(u), other };
    rc = dm_get(g_db, &wrong, &m->v[i].id, 0, &mem);
    if (rc != DM_ENOTFOUND)
        failf("get with the scope of %s of a memory of %s: %s", other, user,
              dm_errname(rc));
}

static void *worker(void *arg)
{
    int t = (int)(intptr_t)arg;
    tu_rng r;
    /* Far-apart seeds: adjacent ones give shifted copies of one stream. */
    tu_rng_seed(&r, g_seed * 131 + (uint64_t)t * 1000003u);
    for (long i = 0; i < g_ops && !atomic_load(&g_failed); i++) {
        int u = tu_randn(&r, 10) == 0 ? (int)tu_randn(&r, N_HOT)
                                      : (int)tu_randn(&r, (uint64_t)g_users);
        /* Per mille.  Erase is rare: it compacts the user's key ranges, so
         * it costs far more than the others. */
        uint64_t x = tu_randn(&r, 1000);
        int op = x < 370 ? OP_ADD : x < 410 ? OP_BATCH : x < 530 ? OP_SEARCH
               : x < 610 ? OP_SEARCH_NOLOCK : x < 730 ? OP_UPDATE : x < 835 ? OP_DELETE
               : x < 840 ? OP_ERASE : x < 920 ? OP_LIST : OP_GET;
        atomic_fetch_add_explicit(&g_count[op], 1, memory_order_relaxed);
        if (op == OP_BATCH) {
            do_batch(&r, u);
            continue;
        }
        if (op == OP_SEARCH_NOLOCK) {
            do_search(&r, u, NULL);
            continue;
        }
        umodel *m = &g_model[u];
        pthread_mutex_lock(&m->mu);
        switch (op) {
        case OP_ADD: do_add(&r, u, m); break;
        case OP_SEARCH: do_search(&r, u, m); break;
        case OP_UPDATE: do_update(&r, u, m); break;
        case OP_DELETE: do_delete(&r, u, m); break;
        case OP_ERASE: do_erase(u, m); break;
        case OP_LIST: check_list(u, m, 1 + (uint32_t)tu_randn(&r, 8), "list"); break;
        case OP_GET: do_get(&r, u, m); break;
        }
        pthread_mutex_unlock(&m->mu);
    }
    return NULL;
}

typedef struct exp_acc {
    int u;
    const umodel *m;
    int n;
    int bad;
} exp_acc;

static int export_cb(void *arg, const dm_memory *mem)
{
    exp_acc *a = arg;
    a->n++;
    if (!mem->embedding || mem->dim != TM_DEFAULT_DIM)
        a->bad = 1;
    if (check_mem(a->u, a->m, mem, "export") != 0)
        return 1;
    return 0;
}

static int count_cb(void *arg, const dm_memory *mem)
{
    (void)mem;
    (*(uint64_t *)arg)++;
    return 0;
}

/* Everything equals the model; single-threaded. */
static void verify_all(const char *phase)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t total = 0, users = 0;
    tu_rng r;
    tu_rng_seed(&r, g_seed + 5);
    for (int u = 0; u < g_users && !atomic_load(&g_failed); u++) {
        umodel *m = &g_model[u];
        char user[16];
        user_of(u, user);
        check_list(u, m, 1000, phase);
        for (int i = 0; i < m->n; i++) {
            dm_memory *mem = NULL;
            int rc = dm_get(g_db, NULL, &m->v[i].id, 0, &mem);
            if (rc != DM_OK) {
                failf("%s: get %s: %s", phase, user, dm_errname(rc));
                break;
            }
            check_mem(u, m, mem, phase);
            dm_memory_free(mem);
        }
        exp_acc a = { u, m, 0, 0 };
        int rc = dm_export(g_db, tenant_name(u), user, export_cb, &a);
        if ((rc != DM_OK && !(rc == DM_ENOTFOUND && m->n == 0)) || a.n != m->n || a.bad)
            failf("%s: export %s: %s, %d memories (model %d), bad %d", phase, user,
                  dm_errname(rc), a.n, m->n, a.bad);
        if (u % 10 == 0)
            do_search(&r, u, m);
        total += (uint64_t)m->n;
        users += m->n > 0;
    }
    uint64_t n_all = 0;
    assert_int_equal(dm_export(g_db, NULL, NULL, count_cb, &n_all), DM_OK);
    if (n_all != total)
        failf("%s: whole export has %" PRIu64 " memories, model %" PRIu64, phase,
              n_all, total);
    dm_stats st;
    assert_int_equal(dm_stats_get(g_db, &st), DM_OK);
    if (st.n_memories != total)
        failf("%s: stats say %" PRIu64 " memories, model %" PRIu64, phase,
              st.n_memories, total);
    /* Users whose memories were all deleted may or may not still count. */
    if (st.n_users < users)
        failf("%s: stats say %" PRIu64 " users, model has %" PRIu64 " with memories",
              phase, st.n_users, users);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    print_message("%s: %" PRIu64 " memories of %" PRIu64 " users verified in %.2f s\n",
                  phase, total, users,
                  (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
}

static void test_stress(void **state)
{
    (void)state;
    g_threads = (int)tu_env_int("DM_STRESS_THREADS", 16);
    g_users = (int)tu_env_int("DM_STRESS_USERS", 1000);
    g_ops = tu_env_int("DM_STRESS_OPS", 1000);
    g_seed = (uint64_t)tu_env_int("DM_STRESS_SEED", 20240601);
    assert_true(g_users > N_HOT + MAX_BATCH && g_users <= 1000000 && g_threads > 0);
    g_model = calloc((size_t)g_users, sizeof *g_model);
    for (int u = 0; u < g_users; u++)
        pthread_mutex_init(&g_model[u].mu, NULL);

    const char *dir = tu_tmpdir("test_stress");
    char path[4200];
    snprintf(path, sizeof path, "%s", dir);
    dm_options o;
    tm_options(&o);
    o.checkpoint_ops = 16; /* checkpoints race the other operations */
    assert_int_equal(dm_open(path, &o, &g_db), DM_OK);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_t *th = calloc((size_t)g_threads, sizeof *th);
    for (int t = 0; t < g_threads; t++)
        assert_int_equal(pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t), 0);
    for (int t = 0; t < g_threads; t++)
        pthread_join(th[t], NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    uint64_t all = 0;
    char line[512];
    size_t len = 0;
    for (int k = 0; k < N_OPKINDS; k++) {
        uint64_t c = atomic_load(&g_count[k]);
        all += c;
        len += (size_t)snprintf(line + len, sizeof line - len, " %s %" PRIu64,
                                op_names[k], c);
    }
    print_message("%d threads, %d users: %" PRIu64 " ops in %.2f s (%.0f ops/s):%s\n",
                  g_threads, g_users, all, secs, (double)all / secs, line);
    if (atomic_load(&g_failed))
        fail_msg("%s", g_err);

    verify_all("after the run");
    if (atomic_load(&g_failed))
        fail_msg("%s", g_err);
    dm_stats st;
    assert_int_equal(dm_stats_get(g_db, &st), DM_OK);
    print_message("checkpoints %" PRIu64 ", loaded users %" PRIu64 ", disk %" PRIu64
                  " bytes\n", st.n_checkpoints, st.n_loaded_users, st.disk_bytes);

    assert_int_equal(dm_close(g_db), DM_OK);
    assert_int_equal(dm_open(path, &o, &g_db), DM_OK);
    verify_all("after reopen");
    if (atomic_load(&g_failed))
        fail_msg("%s", g_err);

    /* A second, shorter run on the reopened database, then a last check. */
    g_ops = g_ops / 4 + 1;
    for (int t = 0; t < g_threads; t++)
        assert_int_equal(pthread_create(&th[t], NULL, worker, (void *)(intptr_t)(t + 1000)), 0);
    for (int t = 0; t < g_threads; t++)
        pthread_join(th[t], NULL);
    if (atomic_load(&g_failed))
        fail_msg("%s", g_err);
    verify_all("after the second run");
    if (atomic_load(&g_failed))
        fail_msg("%s", g_err);
    assert_int_equal(dm_close(g_db), DM_OK);
    g_db = NULL;

    for (int u = 0; u < g_users; u++) {
        model_clear(&g_model[u]);
        free(g_model[u].v);
        pthread_mutex_destroy(&g_model[u].mu);
    }
    free(g_model);
    free(th);
    tu_rmrf(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stress),
    };
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    print_message("test_stress: %.2f s\n",
                  (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9);
    return rc;
}
