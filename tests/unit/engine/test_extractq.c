/*
 * test_extractq.c -- extraction after the write (src/engine/extractq.c):
 * a turn is searchable while its extraction is still running, another
 * user's writes do not wait for it, one user's turns are extracted in the
 * order they were stored, a small queue bound makes writers extract
 * inline without losing a turn, a dm_add's text is extracted too (and
 * not with no_extract), and a crash with turns queued loses none: the
 * next open extracts them, once.
 *
 * Slow extraction is a chat-model endpoint that holds every request until
 * the test lets it answer (with text that is not the JSON asked for, so
 * the built-in reading is kept).
 */
// ctest-labels: concurrency
// ctest-timeout: 120
#include "testutil.h"
#include "tinymodel.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DAY (86400LL * 1000000LL)
#define T0 (1672574400LL * 1000000LL) /* 2023-01-01T12:00:00Z */

/* ------------------------------------------------- a held chat endpoint */

typedef struct held_llm {
    int fd, port;
    char url[64];
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool released;
    int n_requests;
} held_llm;

static void *held_main(void *arg)
{
    held_llm *h = arg;
    for (;;) {
        int c = accept(h->fd, NULL, NULL);
        if (c < 0)
            return NULL;
        char req[16384];
        tu_http_read_request(c, req, sizeof req);
        pthread_mutex_lock(&h->mu);
        h->n_requests++;
        pthread_cond_broadcast(&h->cv);
        while (!h->released)
            pthread_cond_wait(&h->cv, &h->mu);
        pthread_mutex_unlock(&h->mu);
        const char *reply = "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":"
                            "\"not json\"}}],\"usage\":{\"prompt_tokens\":10,"
                            "\"completion_tokens\":2}}";
        tu_http_reply_json(c, reply);
        close(c);
    }
}

static void held_start(held_llm *h)
{
    memset(h, 0, sizeof *h);
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    h->fd = tu_http_listen(&h->port);
    assert_true(h->fd >= 0);
    snprintf(h->url, sizeof h->url, "http://127.0.0.1:%d/v1", h->port);
    assert_int_equal(pthread_create(&h->th, NULL, held_main, h), 0);
}

/* Options whose chat model is h: one call per turn, no timeout in sight. */
static void held_options(const held_llm *h, dm_options *o)
{
    tm_options(o);
    o->llm_base_url = h->url;
    o->llm_model = "held";
    o->llm_max_calls = 1;
    o->llm_timeout_ms = 60000;
}

/* Wait until the endpoint holds at least n requests. */
static void held_wait_requests(held_llm *h, int n)
{
    pthread_mutex_lock(&h->mu);
    while (h->n_requests < n)
        pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
}

static void held_release(held_llm *h)
{
    pthread_mutex_lock(&h->mu);
    h->released = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

static void held_stop(held_llm *h)
{
    held_release(h);
    shutdown(h->fd, SHUT_RDWR);
    close(h->fd);
    pthread_join(h->th, NULL);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
}

/* -------------------------------------------------------------- helpers */

static void remember_async(dm_db *db, const char *user, const char *text, int64_t t)
{
    dm_remember_params p;
    dm_remember_params_init(&p);
    p.user_id = user;
    p.session_id = "s1";
    p.text = text;
    p.time_us = t;
    p.async = 1;
    dm_remember_result r;
    assert_rc(dm_remember(db, &p, &r), DM_OK);
    assert_int_equal(r.n_added, 0); /* nothing is known yet */
}

/* The current value of slot in user's profile ("" when none; static). */
static const char *current(dm_db *db, const char *user, const char *slot)
{
    static char out[128];
    dm_profile_params p = { .user_id = user };
    dm_fact *f;
    size_t n;
    out[0] = 0;
    assert_rc(dm_profile(db, &p, &f, &n), DM_OK);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(f[i].slot, slot) && f[i].state == DM_FACT_CURRENT)
            snprintf(out, sizeof out, "%s", f[i].value);
    dm_facts_free(f, n);
    return out;
}

static size_t n_history(dm_db *db, const char *user, const char *slot)
{
    dm_profile_params p = { .user_id = user, .history = 1 };
    dm_fact *f;
    size_t n, m = 0;
    assert_rc(dm_profile(db, &p, &f, &n), DM_OK);
    for (size_t i = 0; i < n; i++)
        m += !strcmp(f[i].slot, slot);
    dm_facts_free(f, n);
    return m;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------- tests */

static void test_searchable_before_extraction(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("test_extractq_slow");
    held_llm h;
    held_start(&h);
    dm_options o;
    held_options(&h, &o);
    dm_db *db;
    assert_rc(dm_open(dir, &o, &db), DM_OK);

    /* Ann's turn is stored and its extraction is stuck in the model. */
    remember_async(db, "ann", "I live in Denver and I work at Acme Corp.", T0);
    held_wait_requests(&h, 1);
    dm_stats st;
    assert_rc(dm_stats_get(db, &st), DM_OK);
    assert_true(st.extract_queued >= 1);
    assert_int_equal(st.extract_done, 0);

    /* It is searchable all the same. */
    dm_search_params sp = { .user_id = "ann", .query = "Denver" };
    dm_search_result *r;
    assert_rc(dm_search(db, &sp, &r), DM_OK);
    assert_int_equal(r->n, 1);
    dm_search_result_free(r);

    /* Bo's writes do not wait for Ann's extraction. */
    double t = now_s();
    for (int i = 0; i < 20; i++) {
        dm_add_params a;
        dm_add_params_init(&a);
        a.user_id = "bo";
        a.text = i ? "we talked about the weather" : "I live in Austin.";
        a.event_time_us = T0 + i;
        assert_rc(dm_add(db, &a, NULL), DM_OK);
    }
    assert_true(now_s() - t < 5.0); /* the model holds for as long as the test wants */
    assert_rc(dm_stats_get(db, &st), DM_OK);
    assert_int_equal(st.extract_done, 0);

    /* Once the model answers (not JSON: the built-in reading is kept),
     * both users' facts are there. */
    held_release(&h);
    assert_rc(dm_sync_extraction(db), DM_OK);
    assert_rc(dm_stats_get(db, &st), DM_OK);
    assert_int_equal(st.extract_queued, 0);
    assert_int_equal(st.extract_done, 21);
    assert_string_equal(current(db, "ann", "location.city"), "Denver");
    assert_string_equal(current(db, "ann", "work.employer"), "Acme Corp");
    assert_string_equal(current(db, "bo", "location.city"), "Austin");
    assert_rc(dm_close(db), DM_OK);
    held_stop(&h);
    tu_rmrf(dir);
}

static void test_order_bound_and_no_extract(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("test_extractq_order");
    dm_options o;
    tm_options(&o);
    o.extract_queue_max = 3; /* writers soon extract inline */
    dm_db *db;
    assert_rc(dm_open(dir, &o, &db), DM_OK);
    static const char *const cities[] = { "Austin", "Denver", "Boston", "Seattle", "Chicago" };
    char text[128];
    for (int round = 0; round < 4; round++)
        for (int i = 0; i < 5; i++) {
            snprintf(text, sizeof text, "I just moved to %s.", cities[i]);
            remember_async(db, "cy", text, T0 + (round * 5 + i) * DAY);
        }
    /* The facts reader extracts what is queued first; the moves were
     * merged in the order they were said. */
    assert_string_equal(current(db, "cy", "location.city"), "Chicago");
    assert_true(n_history(db, "cy", "location.city") >= 5);

    /* A dm_add is extracted too, unless told not to be. */
    dm_add_params a;
    dm_add_params_init(&a);
    a.user_id = "di";
    a.text = "I work at Globex.";
    a.event_time_us = T0;
    a.no_extract = 1;
    assert_rc(dm_add(db, &a, NULL), DM_OK);
    assert_string_equal(current(db, "di", "work.employer"), "");
    a.text = "I work at Initech.";
    a.no_extract = 0;
    assert_rc(dm_add(db, &a, NULL), DM_OK);
    assert_string_equal(current(db, "di", "work.employer"), "Initech");

    /* A waited-for remember gets its counts. */
    dm_remember_params p;
    dm_remember_params_init(&p);
    p.user_id = "di";
    p.text = "I moved to Denver.";
    p.time_us = T0 + DAY;
    dm_remember_result rr;
    assert_rc(dm_remember(db, &p, &rr), DM_OK);
    assert_true(rr.n_added >= 1);
    assert_rc(dm_close(db), DM_OK);
    tu_rmrf(dir);
}

/* Copy the files of directory src into dst (flat: a database directory). */
static void copy_dir(const char *src, const char *dst)
{
    DIR *d = opendir(src);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char a[512], b[512];
        snprintf(a, sizeof a, "%s/%s", src, e->d_name);
        snprintf(b, sizeof b, "%s/%s", dst, e->d_name);
        FILE *in = fopen(a, "rb"), *out = fopen(b, "wb");
        assert_non_null(in);
        assert_non_null(out);
        char buf[8192];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, in)) > 0)
            assert_int_equal(fwrite(buf, 1, n, out), n);
        fclose(in);
        fclose(out);
    }
    closedir(d);
}

/*
 * A crash with turns queued: the files as they are while the extraction
 * of the first of two stored turns is stuck in the model (every write is
 * synced) are what a crash would leave.  Opened, they extract both turns,
 * once.
 */
static void test_crash_with_queued_turns(void **state)
{
    (void)state;
    char live[256], image[256];
    snprintf(live, sizeof live, "%s", tu_tmpdir("test_extractq_live"));
    snprintf(image, sizeof image, "%s", tu_tmpdir("test_extractq_image"));
    held_llm h;
    held_start(&h);
    dm_options o;
    held_options(&h, &o);
    o.sync = DM_SYNC_ALWAYS;
    dm_db *db;
    assert_rc(dm_open(live, &o, &db), DM_OK);
    remember_async(db, "ed", "I live in Denver.", T0);
    remember_async(db, "ed", "My sister Ann works at Acme Corp.", T0 + DAY);
    held_wait_requests(&h, 1);
    copy_dir(live, image);
    held_release(&h);
    assert_rc(dm_close(db), DM_OK);
    held_stop(&h);

    tm_options(&o);
    assert_rc(dm_open(image, &o, &db), DM_OK);
    dm_stats st;
    assert_rc(dm_stats_get(db, &st), DM_OK);
    assert_true(st.extract_queued + st.extract_done == 2);
    assert_string_equal(current(db, "ed", "location.city"), "Denver");
    dm_profile_params pp = { .user_id = "ed" };
    dm_fact *f;
    size_t n;
    assert_rc(dm_profile(db, &pp, &f, &n), DM_OK);
    bool sister = false;
    for (size_t i = 0; i < n; i++)
        sister |= !strcmp(f[i].slot, "family.sister") && !strcmp(f[i].value, "Ann");
    dm_facts_free(f, n);
    assert_true(sister);
    assert_rc(dm_close(db), DM_OK);

    /* Once, not twice: the queue records went with the facts. */
    assert_rc(dm_open(image, &o, &db), DM_OK);
    assert_rc(dm_stats_get(db, &st), DM_OK);
    assert_int_equal(st.extract_queued, 0);
    assert_int_equal(n_history(db, "ed", "location.city"), 1);
    assert_rc(dm_close(db), DM_OK);
    tu_rmrf(live);
    tu_rmrf(image);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* the held endpoint answers a dead client */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_searchable_before_extraction),
        cmocka_unit_test(test_order_bound_and_no_extract),
        cmocka_unit_test(test_crash_with_queued_turns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
