/*
 * test_cognition.c -- dm_remember, dm_profile and dm_history through the
 * public API, with the built-in extractor: a move supersedes the city and
 * keeps it in history, derived region and country, as_of, merge of a fact
 * said again, the facts surviving a reopen, erase removing them, events
 * with their times resolved, the graph leg finding what two turns say
 * together, dm_perceive's order and budget, dm_chat without a chat model
 * and with one (a local HTTP server answering as an OpenAI-compatible
 * endpoint does), and the argument errors.
 */
// ctest-labels: concurrency
#include "testutil.h"
#include "tinymodel.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DAY (86400LL * 1000000LL)
#define T0 (1672574400LL * 1000000LL) /* 2023-01-01T12:00:00Z */

static void remember(dm_db *db, const char *user, const char *text, int64_t t,
                     dm_remember_result *out)
{
    dm_remember_params p;
    dm_remember_params_init(&p);
    p.user_id = user;
    p.session_id = "s1";
    p.text = text;
    p.time_us = t;
    assert_rc(dm_remember(db, &p, out), DM_OK);
}

/* The current value of slot, or NULL. */
static const dm_fact *slot_of(const dm_fact *f, size_t n, const char *slot)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(f[i].slot, slot) && f[i].state == DM_FACT_CURRENT)
            return &f[i];
    return NULL;
}

static void profile(dm_db *db, const char *user, int64_t as_of, int history, dm_fact **f,
                    size_t *n)
{
    dm_profile_params p = { .user_id = user, .as_of_us = as_of, .history = history };
    assert_rc(dm_profile(db, &p, f, n), DM_OK);
}

static void test_move_history_as_of(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("test_cognition");
    dm_options o;
    tm_options(&o);
    dm_db *db;
    assert_rc(dm_open(dir, &o, &db), DM_OK);
    dm_remember_result r;
    remember(db, "ann", "I live in Austin.", T0, &r);
    assert_true(r.n_added >= 1);
    dm_fact *f;
    size_t n;
    profile(db, "ann", 0, 0, &f, &n);
    assert_non_null(slot_of(f, n, "location.city"));
    assert_string_equal(slot_of(f, n, "location.city")->value, "Austin");
    assert_non_null(slot_of(f, n, "location.region"));
    assert_string_equal(slot_of(f, n, "location.region")->value, "Texas");
    assert_true(slot_of(f, n, "location.region")->derived);
    dm_id austin = slot_of(f, n, "location.city")->id;
    dm_facts_free(f, n);

    remember(db, "ann", "I moved from Austin to Denver.", T0 + 100 * DAY, &r);
    assert_true(r.n_superseded >= 1);
    profile(db, "ann", 0, 0, &f, &n);
    assert_string_equal(slot_of(f, n, "location.city")->value, "Denver");
    assert_string_equal(slot_of(f, n, "location.region")->value, "Colorado");
    dm_facts_free(f, n);

    /* As of a day in between: Austin, as known then (the only city then;
     * its state is superseded now). */
    profile(db, "ann", T0 + 50 * DAY, 0, &f, &n);
    size_t n_city = 0;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(f[i].slot, "location.city")) {
            assert_string_equal(f[i].value, "Austin");
            n_city++;
        }
    assert_int_equal(n_city, 1);
    dm_facts_free(f, n);
    /* Before anything was said: nothing. */
    profile(db, "ann", T0 - DAY, 0, &f, &n);
    assert_int_equal(n, 0);
    dm_facts_free(f, n);

    /* History: every city, the old one superseded by the new. */
    dm_profile_params hp = { .user_id = "ann", .history = 1, .slot = "location.city" };
    assert_rc(dm_profile(db, &hp, &f, &n), DM_OK);
    assert_int_equal(n, 2);
    assert_string_equal(f[0].value, "Austin");
    assert_int_equal(f[0].state, DM_FACT_SUPERSEDED);
    assert_memory_equal(f[0].superseded_by.bytes, f[1].id.bytes, 16);
    assert_int_equal(f[1].state, DM_FACT_CURRENT);
    dm_facts_free(f, n);
    dm_change *c;
    size_t nc;
    assert_rc(dm_history(db, NULL, "ann", &austin, &c, &nc), DM_OK);
    assert_int_equal(nc, 2);
    assert_int_equal(c[0].kind, DM_CHANGE_ADD);
    assert_int_equal(c[1].kind, DM_CHANGE_SUPERSEDE);
    assert_string_equal(c[1].old_value, "Austin");
    assert_string_equal(c[1].new_value, "Denver");
    assert_int_equal(c[1].at_us, T0 + 100 * DAY);
    dm_changes_free(c, nc);

    /* Said again: merged, one more source. */
    remember(db, "ann", "I live in Denver.", T0 + 120 * DAY, &r);
    assert_true(r.n_merged >= 1);
    assert_int_equal(r.n_added, 0);
    profile(db, "ann", 0, 0, &f, &n);
    const dm_fact *den = slot_of(f, n, "location.city");
    assert_int_equal(den->n_sources, 2);
    float conf = den->confidence;
    dm_facts_free(f, n);

    /* Everything survives a reopen. */
    assert_rc(dm_close(db), DM_OK);
    assert_rc(dm_open(dir, &o, &db), DM_OK);
    profile(db, "ann", 0, 0, &f, &n);
    assert_string_equal(slot_of(f, n, "location.city")->value, "Denver");
    assert_true(slot_of(f, n, "location.city")->confidence == conf);
    dm_facts_free(f, n);
    profile(db, "ann", 0, 1, &f, &n);
    assert_true(n >= 4); /* two cities, two regions at least */
    dm_facts_free(f, n);
    /* The turn itself is a memory like any other. */
    dm_search_params sp = { .user_id = "ann", .query = "Denver", .k = 5 };
    dm_search_result *res;
    assert_rc(dm_search(db, &sp, &res), DM_OK);
    assert_true(res->n >= 2);
    dm_search_result_free(res);

    /* Erase removes the facts and their history too. */
    assert_rc(dm_erase_user(db, NULL, "ann", NULL), DM_OK);
    dm_profile_params pp = { .user_id = "ann" };
    assert_rc(dm_profile(db, &pp, &f, &n), DM_ENOTFOUND);
    assert_rc(dm_history(db, NULL, "ann", &austin, &c, &nc), DM_ENOTFOUND);
    remember(db, "ann", "Hello there.", T0 + 200 * DAY, &r);
    profile(db, "ann", 0, 1, &f, &n);
    assert_int_equal(n, 0);
    dm_facts_free(f, n);
    assert_rc(dm_close(db), DM_OK);
    tu_rmrf(dir);
}

static bool has_text(const dm_search_result *r, const char *text)
{
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->hits[i].memory.text, text))
            return true;
    return false;
}

static void test_events_graph_perceive(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("test_cognition_graph");
    dm_options o;
    tm_options(&o);
    dm_db *db;
    assert_rc(dm_open(dir, &o, &db), DM_OK);
    /* 2023-05-08 is a Monday: last Saturday is the 6th. */
    int64_t mon = (1683547200LL) * 1000000LL; /* 2023-05-08T12:00:00Z */
    remember(db, "cy", "I went hiking last Saturday.", mon, NULL);
    dm_events_params ep = { .user_id = "cy" };
    dm_event *e;
    size_t ne;
    assert_rc(dm_events(db, &ep, &e, &ne), DM_OK);
    bool found = false;
    for (size_t i = 0; i < ne; i++)
        if (strstr(e[i].what, "hiking") && e[i].from_us == mon - 2 * DAY - 12 * 3600000000LL &&
            e[i].to_us == e[i].from_us + DAY && e[i].has_time)
            found = true;
    assert_true(found);
    dm_events_free(e, ne);
    /* The temporal leg finds the turn by its event's day, though it was
     * said two days later. */
    remember(db, "cy", "Nothing much happened today.", mon + DAY / 2, NULL);
    dm_search_params tq = { .user_id = "cy", .query = "what did I do on May 6, 2023?", .k = 5,
                            .now_us = mon + 2 * DAY, .legs = DM_LEG_TEMPORAL,
                            .flags = DM_NO_REFRESH | DM_NO_NEIGHBOURS };
    dm_search_result *tr;
    assert_rc(dm_search(db, &tq, &tr), DM_OK);
    assert_int_equal(tr->n, 1);
    assert_string_equal(tr->hits[0].memory.text, "I went hiking last Saturday.");
    dm_search_result_free(tr);
    /* A window that ends before it: none. */
    ep.to_us = mon - 3 * DAY;
    assert_rc(dm_events(db, &ep, &e, &ne), DM_OK);
    assert_int_equal(ne, 0);
    dm_events_free(e, ne);
    ep.from_us = mon;
    ep.to_us = mon - DAY;
    assert_rc(dm_events(db, &ep, &e, &ne), DM_EINVAL);

    /* Two turns that answer one question only together. */
    remember(db, "cy", "I work at Acme Corp.", mon + DAY, NULL);
    const char *filler[] = { "The weather was lovely today.", "We watched a movie about space.",
                             "My neighbour painted the fence blue.", "Dinner was pasta again." };
    /* (In another session: the context neighbours of the first turn would
     * otherwise fill the top 5 with its session's next turns.) */
    for (int i = 0; i < 4; i++) {
        dm_remember_params fp;
        dm_remember_params_init(&fp);
        fp.user_id = "cy";
        fp.session_id = "s2";
        fp.text = filler[i];
        fp.time_us = mon + (2 + i) * DAY;
        assert_rc(dm_remember(db, &fp, NULL), DM_OK);
    }
    remember(db, "cy", "Acme Corp is in the healthcare space.", mon + 8 * DAY, NULL);
    dm_fact *f;
    size_t n;
    profile(db, "cy", 0, 0, &f, &n);
    assert_non_null(slot_of(f, n, "work.industry"));
    assert_string_equal(slot_of(f, n, "work.industry")->value, "healthcare");
    assert_int_equal(slot_of(f, n, "work.industry")->n_sources, 2);
    dm_facts_free(f, n);
    dm_search_params sp = { .user_id = "cy", .query = "what industry does the user work in?",
                            .k = 5, .now_us = mon + 9 * DAY, .flags = DM_NO_REFRESH };
    dm_search_result *res;
    assert_rc(dm_search(db, &sp, &res), DM_OK);
    assert_true(has_text(res, "I work at Acme Corp."));
    assert_true(has_text(res, "Acme Corp is in the healthcare space."));
    dm_search_result_free(res);
    /* Without the graph leg the first turn has nothing in common with the
     * question but "work". */
    sp.legs = DM_LEG_GRAPH;
    assert_rc(dm_search(db, &sp, &res), DM_OK);
    assert_true(res->n >= 2);
    assert_true(has_text(res, "I work at Acme Corp."));
    dm_search_result_free(res);

    /* perceive: profile first, then memories, then the session's turns,
     * within the budget. */
    dm_perceive_params pp = { .user_id = "cy", .session_id = "s1", .query = "Acme healthcare",
                              .max_tokens = 400, .recent_turns = 3, .now_us = mon + 9 * DAY };
    dm_context *c;
    assert_rc(dm_perceive(db, &pp, &c), DM_OK);
    assert_true(c->n_profile >= 2);
    assert_int_equal(c->n_recent, 3);
    assert_string_equal(c->recent[2].text, "Acme Corp is in the healthcare space.");
    assert_true(c->recent[0].time_us < c->recent[1].time_us);
    for (size_t i = 0; i < c->n_memories; i++)
        for (size_t j = 0; j < c->n_recent; j++)
            assert_memory_not_equal(&c->memories[i].id, &c->recent[j].id, sizeof(dm_id));
    const char *a = strstr(c->text, "# About the user"), *m = strstr(c->text, "# Relevant");
    const char *t = strstr(c->text, "# This conversation");
    assert_non_null(a);
    assert_non_null(t);
    assert_true(a < t && (!m || (a < m && m < t)));
    assert_true(c->tokens <= 400);
    assert_int_equal(c->tokens, dm_estimate_tokens(c->text, strlen(c->text)));
    dm_context_free(c);
    /* A tiny budget: less, never more. */
    pp.max_tokens = 60;
    assert_rc(dm_perceive(db, &pp, &c), DM_OK);
    assert_true(c->tokens <= 60);
    dm_context_free(c);
    pp.user_id = "nobody";
    assert_rc(dm_perceive(db, &pp, &c), DM_ENOTFOUND);
    assert_null(c);
    assert_rc(dm_close(db), DM_OK);
    tu_rmrf(dir);
}

/* A one-connection-at-a-time chat endpoint: every POST gets the same
 * completion; the first request body is kept for the test to look at. */
typedef struct fake_llm {
    int fd;
    int port;
    pthread_t th;
    char first[8192]; /* the first request's body: the chat's */
    int n_requests;
} fake_llm;

static void *fake_main(void *arg)
{
    fake_llm *f = arg;
    for (;;) {
        int c = accept(f->fd, NULL, NULL);
        if (c < 0)
            return NULL;
        char req[16384];
        tu_http_read_request(c, req, sizeof req);
        char *body = strstr(req, "\r\n\r\n");
        if (!f->n_requests++)
            snprintf(f->first, sizeof f->first, "%s", body ? body + 4 : "");
        const char *reply = "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":"
                            "\"You work at Acme Corp, in healthcare.\"}}],"
                            "\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":9}}";
        tu_http_reply_json(c, reply);
        close(c);
    }
}

static void fake_start(fake_llm *f)
{
    memset(f, 0, sizeof *f);
    f->fd = tu_http_listen(&f->port);
    assert_true(f->fd >= 0);
    assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
}

static void fake_stop(fake_llm *f)
{
    shutdown(f->fd, SHUT_RDWR);
    close(f->fd);
    pthread_join(f->th, NULL);
}

static void test_chat(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("test_cognition_chat");
    dm_options o;
    tm_options(&o);
    dm_db *db;
    assert_rc(dm_open(dir, &o, &db), DM_OK);
    /* Without a chat model: the context, no reply, the message stored. */
    remember(db, "bo", "I work at Acme Corp.", T0, NULL);
    dm_chat_params cp = { .user_id = "bo", .session_id = "s1", .text = "Where do I work?",
                          .time_us = T0 + DAY };
    dm_chat_result *r;
    assert_rc(dm_chat(db, &cp, &r), DM_OK);
    assert_null(r->reply);
    assert_non_null(strstr(r->context->text, "Acme Corp"));
    assert_null(strstr(r->context->text, "Where do I work?")); /* built before it */
    dm_chat_result_free(r);
    cp.session_id = NULL;
    assert_rc(dm_chat(db, &cp, &r), DM_EINVAL);
    assert_null(r);
    assert_rc(dm_close(db), DM_OK);

    /* With one: the context goes to the model; the reply is stored. */
    fake_llm f;
    fake_start(&f);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1", f.port);
    o.llm_base_url = url;
    o.llm_model = "test-model";
    o.llm_timeout_ms = 5000;
    assert_rc(dm_open(dir, &o, &db), DM_OK);
    cp.session_id = "s1";
    cp.text = "And what industry is that?";
    cp.time_us = T0 + 2 * DAY;
    assert_rc(dm_chat(db, &cp, &r), DM_OK);
    assert_string_equal(r->reply, "You work at Acme Corp, in healthcare.");
    assert_non_null(strstr(f.first, "test-model"));
    assert_non_null(strstr(f.first, "Acme Corp"));    /* the context */
    assert_non_null(strstr(f.first, "what industry")); /* the message */
    /* Then the turns' extraction asked the model too; its answers are not
     * JSON, so the built-in reading was kept, and counted as invalid. */
    assert_true(f.n_requests > 1);
    dm_id reply_turn = r->reply_turn;
    dm_chat_result_free(r);
    dm_memory *m;
    assert_rc(dm_get(db, NULL, &reply_turn, 0, &m), DM_OK);
    assert_string_equal(m->role, "assistant");
    assert_string_equal(m->session_id, "s1");
    dm_memory_free(m);
    dm_stats st;
    assert_rc(dm_stats_get(db, &st), DM_OK);
    assert_true(st.llm_calls >= 1);
    assert_true(st.llm_prompt_tokens >= 100);
    assert_true(st.llm_invalid >= 1);
    assert_rc(dm_close(db), DM_OK);
    fake_stop(&f);
    tu_rmrf(dir);
}

/* What an assistant says about the user is kept but not shown until the
 * user says it. */
static void test_assistant_echo(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("test_cognition_echo");
    dm_options o;
    tm_options(&o);
    dm_db *db;
    assert_rc(dm_open(dir, &o, &db), DM_OK);
    dm_remember_params p;
    dm_remember_params_init(&p);
    p.user_id = "di";
    p.session_id = "s1";
    p.role = "assistant";
    p.text = "You live in Lisbon.";
    p.time_us = T0;
    assert_rc(dm_remember(db, &p, NULL), DM_OK);
    dm_fact *f;
    size_t n;
    profile(db, "di", 0, 0, &f, &n);
    assert_null(slot_of(f, n, "location.city"));
    dm_facts_free(f, n);
    profile(db, "di", 0, 1, &f, &n);
    const dm_fact *echo = slot_of(f, n, "location.city");
    assert_non_null(echo);
    assert_true(echo->confidence < DM_PROFILE_MIN_CONFIDENCE);
    dm_facts_free(f, n);
    dm_profile_params all = { .user_id = "di", .min_confidence = -1 };
    assert_rc(dm_profile(db, &all, &f, &n), DM_OK);
    assert_non_null(slot_of(f, n, "location.city"));
    dm_facts_free(f, n);
    /* The user says it: one fact, two sources, shown. */
    remember(db, "di", "I live in Lisbon.", T0 + DAY, NULL);
    profile(db, "di", 0, 0, &f, &n);
    assert_non_null(slot_of(f, n, "location.city"));
    assert_int_equal(slot_of(f, n, "location.city")->n_sources, 2);
    dm_facts_free(f, n);
    assert_rc(dm_close(db), DM_OK);
    tu_rmrf(dir);
}

/* Two names of one organization that the embedding model puts together
 * (here the same words in another order) are one node of the graph:
 * what is said of one is reached from the other. */
static void test_entity_resolution(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("test_cognition_resolve");
    dm_options o;
    tm_options(&o);
    dm_db *db;
    assert_rc(dm_open(dir, &o, &db), DM_OK);
    remember(db, "cy", "I work at Pizza Pasta Labs.", T0, NULL);
    remember(db, "cy", "Pasta Pizza Labs is in the healthcare space.", T0 + DAY, NULL);
    remember(db, "cy", "My sister Ann works at Jazz Band Labs.", T0 + 2 * DAY, NULL);
    dm_graph_result *g;
    assert_rc(dm_graph_neighbours(db, NULL, "cy", "Pizza Pasta Labs", 1, &g), DM_OK);
    bool industry = false, user = false;
    for (size_t i = 0; i < g->n_nodes; i++) {
        industry |= !strcmp(g->nodes[i].name, "healthcare");
        user |= !strcmp(g->nodes[i].name, "user");
    }
    dm_graph_result_free(g);
    assert_true(industry);
    assert_true(user);
    /* A different organization stays apart. */
    assert_rc(dm_graph_neighbours(db, NULL, "cy", "Jazz Band Labs", 1, &g), DM_OK);
    for (size_t i = 0; i < g->n_nodes; i++)
        assert_string_not_equal(g->nodes[i].name, "healthcare");
    dm_graph_result_free(g);
    /* The same after a reopen, when the graph is built from the facts. */
    assert_rc(dm_close(db), DM_OK);
    assert_rc(dm_open(dir, &o, &db), DM_OK);
    assert_rc(dm_graph_neighbours(db, NULL, "cy", "Pasta Pizza Labs", 1, &g), DM_OK);
    industry = user = false;
    for (size_t i = 0; i < g->n_nodes; i++) {
        industry |= !strcmp(g->nodes[i].name, "healthcare");
        user |= !strcmp(g->nodes[i].name, "user");
    }
    dm_graph_result_free(g);
    assert_true(industry && user);
    assert_rc(dm_close(db), DM_OK);
    tu_rmrf(dir);
}

/* The graph leg prefers the path the question describes: "my
 * brother's wife" is Tom's wife, not the sister's husband, though both
 * are a spouse two hops from the user. */
static void test_graph_path(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("test_cognition_path");
    dm_options o;
    tm_options(&o);
    dm_db *db;
    assert_rc(dm_open(dir, &o, &db), DM_OK);
    /* Everything else favours Kevin: his turns are stored first (ties go
     * to the first) and said last (recency); every turn is a session of
     * its own, so that no turn comes in as another's neighbour. */
    static const char *const turns[] = { "My sister Jen is married to Kevin.",
                                         "Kevin works at Globex.",
                                         "My brother Tom is married to Priya.",
                                         "Priya works at Initech." };
    static const int days[] = { 2, 3, 0, 1 };
    for (int i = 0; i < 4; i++) {
        char session[8];
        snprintf(session, sizeof session, "s%d", i);
        dm_remember_params p;
        dm_remember_params_init(&p);
        p.user_id = "di";
        p.session_id = session;
        p.text = turns[i];
        p.time_us = T0 + days[i] * DAY;
        assert_rc(dm_remember(db, &p, NULL), DM_OK);
    }
    dm_search_params sp = { .user_id = "di", .query = "Where does my brother's wife work?",
                            .k = 10, .legs = DM_LEG_GRAPH };
    dm_search_result *res;
    assert_rc(dm_search(db, &sp, &res), DM_OK);
    int priya = -1, kevin = -1;
    for (size_t i = 0; i < res->n; i++) {
        if (!strcmp(res->hits[i].memory.text, "Priya works at Initech."))
            priya = (int)i;
        if (!strcmp(res->hits[i].memory.text, "Kevin works at Globex."))
            kevin = (int)i;
    }
    dm_search_result_free(res);
    assert_true(priya >= 0);
    assert_true(kevin < 0 || priya < kevin);
    assert_rc(dm_close(db), DM_OK);
    tu_rmrf(dir);
}

/* The graph's answer to a two-relation question comes before the turns
 * said next to the memories that have the question's words, although it
 * shares none of them and was said in another session. */
static void test_graph_answer(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("test_cognition_answer");
    dm_options o;
    tm_options(&o);
    dm_db *db;
    assert_rc(dm_open(dir, &o, &db), DM_OK);
    static const char *const turns[] = { "My brother Tom lives in Seattle.",
                                         "Tom's wife, Priya, is a nurse at Mercy Hospital.",
                                         "My sister Jen just had a baby boy!",
                                         "We are all so happy for the family this year.",
                                         "Jen's husband Kevin works at Globex." };
    for (int i = 0; i < 5; i++)
        remember(db, "pa", turns[i], T0 + i * 60000000LL, NULL);
    dm_remember_params p;
    dm_remember_params_init(&p);
    p.user_id = "pa";
    p.session_id = "s2";
    p.text = "They love it there. Priya switched to Initech.";
    p.time_us = T0 + 200 * DAY;
    assert_rc(dm_remember(db, &p, NULL), DM_OK);
    dm_search_params sp = { .user_id = "pa", .query = "Where does my brother's wife work?",
                            .k = 3, .now_us = T0 + 400 * DAY, .flags = DM_EXPLAIN };
    dm_search_result *res;
    assert_rc(dm_search(db, &sp, &res), DM_OK);
    int answer = -1;
    for (size_t i = 0; i < res->n; i++)
        if (!strcmp(res->hits[i].memory.text, p.text)) {
            answer = (int)i;
            assert_int_equal(res->hits[i].explain->graph_answer, 1);
            assert_true(res->hits[i].explain->leg_rank[3] == 1);
        }
    dm_search_result_free(res);
    assert_true(answer >= 0);
    assert_rc(dm_close(db), DM_OK);
    tu_rmrf(dir);
}

/* A turn that continues the one before it is read with it, also after a
 * reopen (the earlier turns come from storage then); a turn of another
 * session, or said much later, is read alone. */
static void test_context(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("test_cognition_context");
    dm_options o;
    tm_options(&o);
    dm_db *db;
    assert_rc(dm_open(dir, &o, &db), DM_OK);
    remember(db, "ed", "I'm allergic to peanuts.", T0, NULL);
    assert_rc(dm_close(db), DM_OK);
    assert_rc(dm_open(dir, &o, &db), DM_OK);
    remember(db, "ed", "Also shellfish, forgot to mention.", T0 + 60000000LL, NULL);
    /* Another session: no context. */
    dm_remember_params p;
    dm_remember_params_init(&p);
    p.user_id = "ed";
    p.session_id = "s2";
    p.text = "Also cats.";
    p.time_us = T0 + 120000000LL;
    assert_rc(dm_remember(db, &p, NULL), DM_OK);
    /* Hours later in the same session: no context either. */
    remember(db, "ed", "Also kiwi.", T0 + DAY, NULL);
    dm_fact *f;
    size_t n;
    profile(db, "ed", 0, 0, &f, &n);
    bool shellfish = false, cats = false, kiwi = false;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(f[i].slot, "allergy"))
            continue;
        shellfish |= !strcmp(f[i].value, "shellfish");
        cats |= !strcmp(f[i].value, "cats");
        kiwi |= !strcmp(f[i].value, "kiwi");
    }
    dm_facts_free(f, n);
    assert_true(shellfish);
    assert_false(cats);
    assert_false(kiwi);
    assert_rc(dm_close(db), DM_OK);
    tu_rmrf(dir);
}

static void test_errors(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("test_cognition_err");
    dm_options o;
    tm_options(&o);
    dm_db *db;
    assert_rc(dm_open(dir, &o, &db), DM_OK);
    dm_remember_params p;
    dm_remember_params_init(&p);
    assert_rc(dm_remember(db, NULL, NULL), DM_EINVAL);
    assert_rc(dm_remember(db, &p, NULL), DM_EINVAL); /* no user, no text */
    p.user_id = "bob";
    p.text = "I live in Paris.";
    p.role = "narrator";
    assert_rc(dm_remember(db, &p, NULL), DM_EINVAL);
    p.role = "assistant";
    p.metadata = "[1]";
    p.speaker = "Bob";
    assert_rc(dm_remember(db, &p, NULL), DM_EINVAL);
    dm_fact *f = (dm_fact *)&p;
    size_t n = 7;
    dm_profile_params pp = { .user_id = "nobody" };
    assert_rc(dm_profile(db, &pp, &f, &n), DM_ENOTFOUND);
    assert_null(f);
    assert_int_equal(n, 0);
    assert_rc(dm_profile(db, NULL, &f, &n), DM_EINVAL);
    pp.user_id = NULL;
    assert_rc(dm_profile(db, &pp, &f, &n), DM_EINVAL);
    dm_id id = { { 1 } };
    dm_change *c;
    size_t nc;
    assert_rc(dm_history(db, NULL, "bob", NULL, &c, &nc), DM_EINVAL);
    assert_rc(dm_history(db, NULL, "bob", &id, &c, &nc), DM_ENOTFOUND);
    assert_rc(dm_close(db), DM_OK);
    tu_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_move_history_as_of),
        cmocka_unit_test(test_events_graph_perceive),
        cmocka_unit_test(test_chat),
        cmocka_unit_test(test_assistant_echo),
        cmocka_unit_test(test_entity_resolution),
        cmocka_unit_test(test_graph_path),
        cmocka_unit_test(test_graph_answer),
        cmocka_unit_test(test_context),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
