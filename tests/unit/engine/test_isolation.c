/*
 * test_isolation.c -- no call ever shows one user's memories to another.
 *
 * Owners (tenant, user) are chosen to trip key encodings: the same user id
 * in several tenants, user ids that are prefixes of others ("u1", "u10",
 * "u1x"), case variants, pairs whose concatenation is equal ("ab"+"c" and
 * "a"+"bc"), separators inside names ("a/b"+"c" and "a"+"b/c"), a trailing
 * space, non-ASCII.  Every owner stores the same texts at the same event
 * times, so only correct scoping tells them apart.  The test then proves,
 * for every owner, that list (paged), search (with and without filters),
 * get with a scope, update and delete with a wrong scope, and export by
 * user and by tenant return exactly that owner's memories; then it erases
 * some owners, reopens, and proves it again, including that an erased
 * owner is unknown and its neighbours are intact.
 */
#include "testutil.h"
#include "tinymodel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define M 12          /* memories per owner */
#define MAX_IDS 64

typedef struct owner {
    const char *tenant;  /* NULL = default */
    const char *user;
    dm_id ids[MAX_IDS];
    int n;               /* live memories */
    int erased;
} owner;

#define O(t, u) { .tenant = (t), .user = (u) }
static owner owners[] = {
    O(NULL, "u1"),      /* 0 */
    O(NULL, "u10"),     /* 1 */
    O(NULL, "u1x"),     /* 2 */
    O(NULL, "U1"),      /* 3 */
    O("acme", "u1"),    /* 4 */
    O("acme", "u10"),   /* 5 */
    O("acme", "u2"),    /* 6 */
    O("globex", "u1"),  /* 7 */
    O("globex", "u2"),  /* 8 */
    O("ab", "c"),       /* 9 */
    O("a", "bc"),       /* 10 */
    O("a/b", "c"),      /* 11 */
    O("a", "b/c"),      /* 12 */
    O("acme ", "u1"),   /* 13 */
    O("acme", "\xc3\xbc" "1"), /* 14 */
    O("a", "b"),        /* 15 */
};
#undef O
#define N_OWNERS ((int)(sizeof owners / sizeof owners[0]))

/* Users nobody has (prefixes and extensions of real ones). */
static const struct {
    const char *tenant, *user;
} strangers[] = {
    { NULL, "u" },     { NULL, "u100" }, { "acme", "u" }, { "acme", "u3" },
    { "a", "bc/" },    { "ab", "" "cc" }, { "acm", "u1" }, { "globex", "U1" },
    { "nobody", "u1" },
};
#define N_STRANGERS ((int)(sizeof strangers / sizeof strangers[0]))

static const char *tenant_name(const char *t)
{
    return t ? t : DM_DEFAULT_TENANT;
}

static int same_tenant(const char *a, const char *b)
{
    return strcmp(tenant_name(a), tenant_name(b)) == 0;
}

static int id_eq(const dm_id *a, const dm_id *b)
{
    return memcmp(a->bytes, b->bytes, 16) == 0;
}

static int owner_has(const owner *o, const dm_id *id)
{
    for (int i = 0; i < o->n; i++)
        if (id_eq(&o->ids[i], id))
            return 1;
    return 0;
}

/* The memory must be o's: fields and id. */
static void assert_owned(const owner *o, const dm_memory *m, const char *how)
{
    if (strcmp(m->tenant, tenant_name(o->tenant)) != 0 ||
        strcmp(m->user_id, o->user) != 0 || !owner_has(o, &m->id)) {
        char s[DM_ID_STRLEN + 1];
        dm_id_format(&m->id, s);
        fail_msg("%s for (%s, %s) returned %s of (%s, %s)", how,
                 tenant_name(o->tenant), o->user, s, m->tenant, m->user_id);
    }
}

static void fill(dm_db *db)
{
    for (int k = 0; k < N_OWNERS; k++) {
        owner *o = &owners[k];
        tu_rng rng;
        tu_rng_seed(&rng, 1234); /* the same texts for everyone */
        for (int j = 0; j < M; j++) {
            char text[256], meta[64];
            tm_sentence(&rng, (unsigned)(j % TM_N_TOPICS), 4, text, sizeof text);
            snprintf(meta, sizeof meta, "{\"owner\": %d, \"j\": %d}", k, j);
            dm_add_params p;
            dm_add_params_init(&p);
            p.tenant = o->tenant;
            p.user_id = o->user;
            p.text = text;
            p.metadata = meta;
            p.event_time_us = 1600000000000000 + (int64_t)j * 1000000;
            assert_rc(dm_add(db, &p, &o->ids[o->n]), DM_OK);
            o->n++;
        }
    }
}

typedef struct exp_acc {
    const owner *o;      /* the owner (user export), or NULL */
    const char *tenant;  /* the tenant (tenant export) */
    int n;
    dm_id ids[N_OWNERS * MAX_IDS];
} exp_acc;

static int collect(void *arg, const dm_memory *m)
{
    exp_acc *a = arg;
    if (a->o)
        assert_owned(a->o, m, "export(user)");
    else if (strcmp(m->tenant, a->tenant) != 0)
        fail_msg("export(tenant %s) returned a memory of tenant %s", a->tenant,
                 m->tenant);
    if (a->n < N_OWNERS * MAX_IDS)
        a->ids[a->n] = m->id;
    a->n++;
    if (!m->embedding)
        fail_msg("export without an embedding");
    return 0;
}

static void check_owner(dm_db *db, int k)
{
    owner *o = &owners[k];
    char what[128];
    snprintf(what, sizeof what, "(%s, %s)", tenant_name(o->tenant), o->user);

    /* list, in pages of 5 */
    dm_list_params lp;
    memset(&lp, 0, sizeof lp);
    lp.tenant = o->tenant;
    lp.user_id = o->user;
    lp.limit = 5;
    char *cursor = NULL;
    int seen = 0;
    for (;;) {
        lp.cursor = cursor;
        dm_list_result *r = NULL;
        int rc = dm_list(db, &lp, &r);
        free(cursor);
        cursor = NULL;
        if (o->erased) {
            if (rc != DM_ENOTFOUND)
                fail_msg("list of erased %s: %s", what, dm_errname(rc));
            break;
        }
        if (rc != DM_OK)
            fail_msg("list %s: %s (%s)", what, dm_errname(rc), dm_errmsg());
        for (size_t i = 0; i < r->n; i++)
            assert_owned(o, &r->items[i], "list");
        seen += (int)r->n;
        if (r->next_cursor)
            cursor = strdup(r->next_cursor);
        dm_list_result_free(r);
        if (!cursor)
            break;
    }
    if (!o->erased && seen != o->n)
        fail_msg("list %s: %d memories, want %d", what, seen, o->n);

    /* search: plain, with its own filter, with another owner's filter */
    static const char *const queries[] = { "pizza pasta", "dog puppy and the vet",
                                           "flight hotel", "the", "zzqqxx" };
    for (size_t q = 0; q < sizeof queries / sizeof queries[0]; q++) {
        for (int fk = -1; fk < 2; fk++) {
            char filter[64];
            dm_search_params sp;
            memset(&sp, 0, sizeof sp);
            sp.tenant = o->tenant;
            sp.user_id = o->user;
            sp.query = queries[q];
            sp.k = 1000;
            if (fk >= 0) {
                snprintf(filter, sizeof filter, "{\"owner\": %d}",
                         fk == 0 ? k : (k + 1) % N_OWNERS);
                sp.filter = filter;
            }
            dm_search_result *r = NULL;
            int rc = dm_search(db, &sp, &r);
            if (o->erased) {
                if (rc != DM_ENOTFOUND)
                    fail_msg("search of erased %s: %s", what, dm_errname(rc));
                continue;
            }
            if (rc != DM_OK)
                fail_msg("search %s: %s (%s)", what, dm_errname(rc), dm_errmsg());
            for (size_t i = 0; i < r->n; i++)
                assert_owned(o, &r->hits[i].memory, "search");
            /* Every query with a known word reaches all of the owner's
             * memories at k = 1000; an unknown word may reach none. */
            size_t want = fk == 1 ? 0 : (size_t)o->n;
            int exact = q < 4 || fk == 1;
            if (exact ? r->n != want : r->n > want)
                fail_msg("search %s \"%s\" filter %d: %zu hits, want %zu", what,
                         queries[q], fk, r->n, want);
            dm_search_result_free(r);
        }
    }

    /* get with a scope: own ids only */
    dm_scope sc = { o->tenant, o->user };
    for (int j = 0; j < N_OWNERS; j++) {
        const owner *x = &owners[j];
        for (int i = 0; i < x->n; i++) {
            dm_memory *m = NULL;
            int rc = dm_get(db, &sc, &x->ids[i], 0, &m);
            int mine = j == k && !o->erased;
            if (mine) {
                if (rc != DM_OK)
                    fail_msg("get own %s: %s", what, dm_errname(rc));
                assert_owned(o, m, "get");
                dm_memory_free(m);
            } else if (rc != DM_ENOTFOUND) {
                fail_msg("get with scope %s of a memory of (%s, %s): %s", what,
                         tenant_name(x->tenant), x->user, dm_errname(rc));
            }
        }
    }

    /* export of the user */
    exp_acc *a = calloc(1, sizeof *a);
    a->o = o;
    int rc = dm_export(db, tenant_name(o->tenant), o->user, collect, a);
    assert_true(rc == DM_OK || (o->erased && rc == DM_ENOTFOUND));
    if (a->n != (o->erased ? 0 : o->n))
        fail_msg("export %s: %d memories, want %d", what, a->n, o->erased ? 0 : o->n);
    free(a);
}

static void check_all(dm_db *db, const char *phase)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int k = 0; k < N_OWNERS; k++)
        check_owner(db, k);

    /* Admin get sees exactly the live memories. */
    for (int k = 0; k < N_OWNERS; k++) {
        for (int i = 0; i < owners[k].n; i++) {
            dm_memory *m = NULL;
            int rc = dm_get(db, NULL, &owners[k].ids[i], 0, &m);
            if (owners[k].erased) {
                assert_int_equal(rc, DM_ENOTFOUND);
            } else {
                assert_int_equal(rc, DM_OK);
                assert_owned(&owners[k], m, "admin get");
                dm_memory_free(m);
            }
        }
    }

    /* Export of each tenant: exactly its owners' memories. */
    for (int k = 0; k < N_OWNERS; k++) {
        const char *t = tenant_name(owners[k].tenant);
        exp_acc *a = calloc(1, sizeof *a);
        a->tenant = t;
        assert_rc(dm_export(db, t, NULL, collect, a), DM_OK);
        int want = 0;
        for (int j = 0; j < N_OWNERS; j++)
            if (same_tenant(owners[j].tenant, t) && !owners[j].erased)
                want += owners[j].n;
        if (a->n != want)
            fail_msg("%s: export of tenant \"%s\": %d, want %d", phase, t, a->n, want);
        for (int i = 0; i < a->n; i++) {
            int found = 0;
            for (int j = 0; j < N_OWNERS && !found; j++)
                found = same_tenant(owners[j].tenant, t) && !owners[j].erased &&
                        owner_has(&owners[j], &a->ids[i]);
            assert_true(found);
        }
        free(a);
    }

    /* Strangers are unknown. */
    for (int s = 0; s < N_STRANGERS; s++) {
        dm_list_params lp;
        memset(&lp, 0, sizeof lp);
        lp.tenant = strangers[s].tenant;
        lp.user_id = strangers[s].user;
        dm_list_result *r = NULL;
        int rc = dm_list(db, &lp, &r);
        if (rc != DM_ENOTFOUND)
            fail_msg("%s: list of stranger (%s, %s): %s, %zu items", phase,
                     tenant_name(lp.tenant), lp.user_id, dm_errname(rc),
                     r ? r->n : 0);
        dm_search_params sp;
        memset(&sp, 0, sizeof sp);
        sp.tenant = strangers[s].tenant;
        sp.user_id = strangers[s].user;
        sp.query = "pizza";
        dm_search_result *sr = NULL;
        rc = dm_search(db, &sp, &sr);
        if (rc != DM_ENOTFOUND)
            fail_msg("%s: search of stranger (%s, %s): %s", phase,
                     tenant_name(sp.tenant), sp.user_id, dm_errname(rc));
    }

    /* The explicit default tenant is the NULL tenant. */
    dm_list_params lp;
    memset(&lp, 0, sizeof lp);
    lp.tenant = DM_DEFAULT_TENANT;
    lp.user_id = "u10";
    dm_list_result *r;
    assert_rc(dm_list(db, &lp, &r), DM_OK);
    assert_int_equal(r->n, owners[1].n);
    for (size_t i = 0; i < r->n; i++)
        assert_owned(&owners[1], &r->items[i], "default tenant list");
    dm_list_result_free(r);

    dm_stats st;
    assert_rc(dm_stats_get(db, &st), DM_OK);
    uint64_t users = 0, mems = 0;
    for (int k = 0; k < N_OWNERS; k++) {
        if (!owners[k].erased) {
            users++;
            mems += (uint64_t)owners[k].n;
        }
    }
    assert_int_equal(st.n_users, users);
    assert_int_equal(st.n_memories, mems);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    print_message("%s: checked in %.2f s\n", phase,
                  (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
}

/* Writes with a wrong scope fail and change nothing. */
static void check_wrong_scope_writes(dm_db *db)
{
    for (int k = 0; k < N_OWNERS; k++) {
        int j = (k + 3) % N_OWNERS;
        dm_scope sc = { owners[j].tenant, owners[j].user };
        const dm_id *victim = &owners[k].ids[0];
        assert_rc(dm_update(db, &sc, victim, "hijacked text", NULL), DM_ENOTFOUND);
        assert_rc(dm_update(db, &sc, victim, NULL, "{\"owner\": -1}"), DM_ENOTFOUND);
        assert_rc(dm_delete(db, &sc, victim), DM_ENOTFOUND);
        dm_memory *m;
        assert_rc(dm_get(db, NULL, victim, 0, &m), DM_OK);
        assert_null(strstr(m->text, "hijacked"));
        assert_null(strstr(m->metadata, "-1"));
        dm_memory_free(m);
    }
}

static void erase(dm_db *db, int k)
{
    uint64_t n = 0;
    assert_rc(dm_erase_user(db, owners[k].tenant, owners[k].user, &n), DM_OK);
    assert_int_equal(n, (uint64_t)owners[k].n);
    owners[k].erased = 1;
}

static void test_isolation(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("test_isolation");
    char path[4200];
    snprintf(path, sizeof path, "%s", dir);
    dm_options o;
    tm_options(&o);
    dm_db *db;
    assert_rc(dm_open(path, &o, &db), DM_OK);
    fill(db);
    check_all(db, "filled");
    check_wrong_scope_writes(db);
    check_all(db, "after wrong-scope writes");

    erase(db, 4);   /* (acme, u1): (default, u1) and (globex, u1) stay */
    erase(db, 9);   /* (ab, c): (a, bc) stays */
    check_all(db, "after erasing (acme,u1) and (ab,c)");

    assert_rc(dm_close(db), DM_OK);
    assert_rc(dm_open(path, &o, &db), DM_OK);
    check_all(db, "reopened");

    erase(db, 0);   /* (default, u1): u10, u1x, U1 stay */
    erase(db, 12);  /* (a, b/c): (a/b, c) stays */
    check_all(db, "after erasing (default,u1) and (a,b/c)");
    assert_rc(dm_close(db), DM_OK);
    assert_rc(dm_open(path, &o, &db), DM_OK);
    check_all(db, "reopened again");

    /* An erased owner starts again from nothing and sees only the new. */
    owners[4].erased = 0;
    owners[4].n = 0;
    dm_add_params p;
    dm_add_params_init(&p);
    p.tenant = owners[4].tenant;
    p.user_id = owners[4].user;
    p.text = "pizza pasta again";
    p.metadata = "{\"owner\": 4}";
    assert_rc(dm_add(db, &p, &owners[4].ids[0]), DM_OK);
    owners[4].n = 1;
    check_all(db, "after re-adding (acme,u1)");
    assert_rc(dm_close(db), DM_OK);
    tu_rmrf(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_isolation),
    };
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    print_message("test_isolation: %.2f s\n",
                  (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9);
    return rc;
}
