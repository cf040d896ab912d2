/*
 * test_gazetteer.c -- the built-in gazetteer: lookups by name and alias,
 * name normalisation (case, accents, punctuation, "St."), ranking of
 * ambiguous names, containment, the max/count contract, and concurrent
 * first use.
 */
// ctest-labels: concurrency
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "cognitive/gazetteer.h"

#define MAXP 64

/* look -- gz_lookup on a C string; returns the count, results in out. */
static size_t look(const char *name, const gz_place **out)
{
    return gz_lookup(name, strlen(name), out, MAXP);
}

/* only -- the single place of kind `kind` called name in country iso2,
 * failing the test when there is not exactly one. */
static const gz_place *only(const char *name, gz_kind kind, const char *iso2)
{
    const gz_place *r[MAXP];
    size_t n = look(name, r);
    const gz_place *hit = NULL;
    for (size_t i = 0; i < n && i < MAXP; i++) {
        if (r[i]->kind == kind && strcmp(r[i]->iso2, iso2) == 0) {
            if (hit)
                fail_msg("%s: two places of kind %d in %s", name, (int)kind, iso2);
            hit = r[i];
        }
    }
    if (!hit)
        fail_msg("%s: no place of kind %d in %s", name, (int)kind, iso2);
    return hit;
}

/* assert_ranked -- countries, then regions, then cities by population
 * descending. */
static void assert_ranked(const gz_place **r, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        assert_true(r[i - 1]->kind <= r[i]->kind);
        if (r[i - 1]->kind == r[i]->kind)
            assert_true(r[i - 1]->population >= r[i]->population);
    }
}

/* Several threads race to be the first caller; all must see the same
 * complete table.  Listed first so that set-up has not run yet. */
#define N_THREADS 6
static void *first_use_thread(void *arg)
{
    const gz_place **res = arg;
    const gz_place *r[MAXP];
    size_t n = gz_lookup("Austin", 6, r, MAXP);
    res[0] = n > 0 ? r[0] : NULL;
    n = gz_lookup("Georgia", 7, r, MAXP);
    res[1] = n > 1 ? r[1] : NULL;
    return NULL;
}

static void test_concurrent_first_use(void **state)
{
    pthread_t t[N_THREADS];
    const gz_place *res[N_THREADS][2];
    for (int i = 0; i < N_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, first_use_thread, res[i]), 0);
    for (int i = 0; i < N_THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    for (int i = 0; i < N_THREADS; i++) {
        assert_non_null(res[i][0]);
        assert_non_null(res[i][1]);
        assert_ptr_equal(res[i][0], res[0][0]);
        assert_ptr_equal(res[i][1], res[0][1]);
    }
    assert_string_equal(res[0][0]->name, "Austin");
    assert_string_equal(res[0][1]->country, "United States");
}

static void test_count(void **state)
{
    size_t n = gz_count();
    print_message("gazetteer: %zu places\n", n);
    assert_true(n >= 5000 && n <= 20000);
    /* Ids are indexes: the same place comes back for the same name. */
    const gz_place *a[MAXP], *b[MAXP];
    assert_true(look("Texas", a) >= 1);
    assert_true(look("TEXAS", b) >= 1);
    assert_ptr_equal(a[0], b[0]);
    assert_true(a[0]->id < n);
}

static void test_austin(void **state)
{
    const gz_place *r[MAXP];
    size_t n = look("Austin", r);
    assert_true(n >= 1);
    const gz_place *a = r[0];
    assert_int_equal(a->kind, GZ_CITY);
    assert_string_equal(a->name, "Austin");
    assert_string_equal(a->region, "Texas");
    assert_string_equal(a->country, "United States");
    assert_string_equal(a->iso2, "US");
    assert_true(a->population > 500000);
    assert_ranked(r, n);
    /* Case and surrounding blanks do not matter. */
    const gz_place *r2[MAXP];
    assert_int_equal(look("  aUsTiN ", r2), n);
    assert_ptr_equal(r2[0], a);
}

static void test_texas(void **state)
{
    const gz_place *r[MAXP];
    size_t n = look("texas", r);
    assert_true(n >= 1);
    assert_int_equal(r[0]->kind, GZ_REGION);
    assert_string_equal(r[0]->name, "Texas");
    assert_null(r[0]->region);
    assert_string_equal(r[0]->country, "United States");
    assert_string_equal(r[0]->iso2, "US");
    assert_int_equal(r[0]->population, 0);

    const gz_place *us = only("United States", GZ_COUNTRY, "US");
    assert_string_equal(us->country, "United States");
    assert_null(us->region);
}

static void test_within(void **state)
{
    const gz_place *austin = only("Austin", GZ_CITY, "US");
    const gz_place *texas = only("Texas", GZ_REGION, "US");
    const gz_place *us = only("USA", GZ_COUNTRY, "US");
    const gz_place *ca = only("California", GZ_REGION, "US");
    const gz_place *mx = only("Mexico", GZ_COUNTRY, "MX");
    assert_true(gz_within(austin, texas));
    assert_true(gz_within(austin, us));
    assert_true(gz_within(texas, us));
    assert_false(gz_within(texas, austin));
    assert_false(gz_within(us, texas));
    assert_false(gz_within(us, austin));
    assert_false(gz_within(austin, ca));
    assert_false(gz_within(austin, mx));
    assert_false(gz_within(texas, mx));
    assert_false(gz_within(ca, texas));
    /* Not within itself; NULL is nowhere. */
    assert_false(gz_within(austin, austin));
    assert_false(gz_within(texas, texas));
    assert_false(gz_within(us, us));
    assert_false(gz_within(NULL, us));
    assert_false(gz_within(austin, NULL));
    /* A copy of a place works like the place. */
    gz_place copy = *austin;
    assert_true(gz_within(&copy, texas));
    /* A made-up place is in nothing. */
    gz_place fake = {.kind = GZ_CITY, .name = "Nowhere", .id = austin->id};
    assert_false(gz_within(&fake, texas));
    fake.id = UINT32_MAX;
    assert_false(gz_within(&fake, us));
}

static void test_new_york(void **state)
{
    const gz_place *r[MAXP];
    assert_int_equal(look("NYC", r), 1);
    const gz_place *nyc = r[0];
    assert_int_equal(nyc->kind, GZ_CITY);
    assert_string_equal(nyc->name, "New York City");
    assert_string_equal(nyc->region, "New York");
    assert_true(nyc->population > 8000000);
    assert_int_equal(look("new york city", r), 1);
    assert_ptr_equal(r[0], nyc);
    assert_int_equal(look("New York-City", r), 1);
    assert_ptr_equal(r[0], nyc);

    /* "New York": the state first, then the city. */
    size_t n = look("New York", r);
    assert_true(n >= 2);
    assert_int_equal(r[0]->kind, GZ_REGION);
    assert_string_equal(r[0]->name, "New York");
    assert_string_equal(r[0]->iso2, "US");
    assert_ptr_equal(r[1], nyc);
    assert_true(gz_within(nyc, r[0]));
    assert_ranked(r, n);
}

static void test_accents(void **state)
{
    const char *names[] = {"São Paulo", "sao paulo", "SAO PAULO", "Sao-Paulo", "São  Paulo"};
    const gz_place *first[MAXP];
    size_t n0 = look(names[0], first);
    assert_true(n0 >= 2);
    assert_ranked(first, n0);
    const gz_place *city = only("São Paulo", GZ_CITY, "BR");
    const gz_place *state_ = only("Sao Paulo", GZ_REGION, "BR");
    assert_string_equal(city->name, "São Paulo");
    assert_true(city->population > 10000000);
    assert_true(gz_within(city, state_));
    for (size_t i = 1; i < sizeof names / sizeof names[0]; i++) {
        const gz_place *r[MAXP];
        assert_int_equal(look(names[i], r), n0);
        for (size_t j = 0; j < n0 && j < MAXP; j++)
            assert_ptr_equal(r[j], first[j]);
    }
    /* Letters that do not decompose: ł, ø, ß. */
    const gz_place *r[MAXP];
    assert_true(look("Łódź", r) >= 1);
    assert_true(look("lodz", r) >= 1);
    assert_string_equal(only("Lodz", GZ_CITY, "PL")->name, "Lodz");
    assert_ptr_equal(only("Łódź", GZ_CITY, "PL"), only("LODZ", GZ_CITY, "PL"));
    assert_ptr_equal(only("Zürich", GZ_CITY, "CH"), only("zurich", GZ_CITY, "CH"));
    assert_ptr_equal(only("Kraków", GZ_CITY, "PL"), only("Krakow", GZ_CITY, "PL"));
    /* Apostrophes join: "N'Djamena" = "Ndjamena" = "N’Djamena". */
    const gz_place *nd = only("N'Djamena", GZ_CITY, "TD");
    assert_ptr_equal(only("Ndjamena", GZ_CITY, "TD"), nd);
    assert_ptr_equal(only("N\xe2\x80\x99" "Djamena", GZ_CITY, "TD"), nd);
}

static void test_saint(void **state)
{
    const gz_place *a[MAXP], *b[MAXP], *c[MAXP];
    size_t n = look("St. Louis", a);
    assert_true(n >= 1);
    assert_int_equal(look("saint louis", b), n);
    assert_int_equal(look("St Louis", c), n);
    for (size_t i = 0; i < n && i < MAXP; i++) {
        assert_ptr_equal(a[i], b[i]);
        assert_ptr_equal(a[i], c[i]);
    }
    const gz_place *stl = only("Saint Louis", GZ_CITY, "US");
    assert_string_equal(stl->region, "Missouri");
    /* St. Petersburg: Russia's before Florida's, by population. */
    n = look("St. Petersburg", a);
    assert_true(n >= 2);
    assert_ranked(a, n);
    const gz_place *spb = only("St. Petersburg", GZ_CITY, "RU");
    const gz_place *fl = only("Saint Petersburg", GZ_CITY, "US");
    assert_string_equal(fl->region, "Florida");
    assert_true(spb->population > fl->population);
    assert_ptr_equal(only("Leningrad", GZ_CITY, "RU"), spb);
    /* "Ft." and "Mt." too. */
    assert_ptr_equal(only("Ft. Worth", GZ_CITY, "US"), only("Fort Worth", GZ_CITY, "US"));
}

static void test_united_kingdom(void **state)
{
    const char *names[] = {"UK", "U.K.", "United Kingdom", "united kingdom", "Britain",
                           "Great Britain", "the UK"};
    const gz_place *uk = only("United Kingdom", GZ_COUNTRY, "GB");
    assert_string_equal(uk->name, "United Kingdom");
    assert_string_equal(uk->iso2, "GB");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const gz_place *r[MAXP];
        assert_true(look(names[i], r) >= 1);
        assert_ptr_equal(r[0], uk);
    }
    /* England is a region of the United Kingdom. */
    const gz_place *r[MAXP];
    assert_true(look("England", r) >= 1);
    const gz_place *eng = r[0];
    assert_int_equal(eng->kind, GZ_REGION);
    assert_string_equal(eng->name, "England");
    assert_string_equal(eng->country, "United Kingdom");
    assert_true(gz_within(eng, uk));
    const gz_place *london = only("London", GZ_CITY, "GB");
    assert_string_equal(london->region, "England");
    assert_true(gz_within(london, eng));
    assert_true(gz_within(london, uk));
    assert_false(gz_within(london, only("Scotland", GZ_REGION, "GB")));
    assert_true(gz_within(only("Edinburgh", GZ_CITY, "GB"), only("Scotland", GZ_REGION, "GB")));
    assert_true(gz_within(only("Wales", GZ_REGION, "GB"), uk));
    /* London, Ontario comes after London, England. */
    size_t n = look("London", r);
    assert_true(n >= 2);
    assert_ptr_equal(r[0], london);
    assert_ranked(r, n);
}

static void test_georgia(void **state)
{
    const gz_place *r[MAXP];
    size_t n = look("Georgia", r);
    assert_true(n >= 2);
    assert_int_equal(r[0]->kind, GZ_COUNTRY);
    assert_string_equal(r[0]->iso2, "GE");
    assert_int_equal(r[1]->kind, GZ_REGION);
    assert_string_equal(r[1]->country, "United States");
    assert_ranked(r, n);
    const gz_place *atlanta = only("Atlanta", GZ_CITY, "US");
    assert_true(gz_within(atlanta, r[1]));
    assert_false(gz_within(atlanta, r[0]));
    assert_true(gz_within(only("Tbilisi", GZ_CITY, "GE"), r[0]));
}

static void test_aliases(void **state)
{
    static const struct {
        const char *alias, *name, *iso2;
        gz_kind kind;
    } cases[] = {
        {"Bombay", "Mumbai", "IN", GZ_CITY},
        {"Peking", "Beijing", "CN", GZ_CITY},
        {"Calcutta", "Kolkata", "IN", GZ_CITY},
        {"Kiev", "Kyiv", "UA", GZ_CITY},
        {"Saigon", "Ho Chi Minh City", "VN", GZ_CITY},
        {"LA", "Los Angeles", "US", GZ_CITY},
        {"SF", "San Francisco", "US", GZ_CITY},
        {"Washington DC", "Washington, D.C.", "US", GZ_CITY},
        {"Washington, D.C.", "Washington, D.C.", "US", GZ_CITY},
        {"DC", "Washington, D.C.", "US", GZ_CITY},
        {"München", "Munich", "DE", GZ_CITY},
        {"Den Haag", "The Hague", "NL", GZ_CITY},
        {"Hague", "The Hague", "NL", GZ_CITY},
        {"USA", "United States", "US", GZ_COUNTRY},
        {"US", "United States", "US", GZ_COUNTRY},
        {"U.S.", "United States", "US", GZ_COUNTRY},
        {"America", "United States", "US", GZ_COUNTRY},
        {"the States", "United States", "US", GZ_COUNTRY},
        {"United States of America", "United States", "US", GZ_COUNTRY},
        {"Holland", "Netherlands", "NL", GZ_COUNTRY},
        {"the Netherlands", "Netherlands", "NL", GZ_COUNTRY},
        {"Ivory Coast", "Côte d'Ivoire", "CI", GZ_COUNTRY},
        {"Czech Republic", "Czechia", "CZ", GZ_COUNTRY},
        {"Bayern", "Bavaria", "DE", GZ_REGION},
        {"Bavaria", "Bavaria", "DE", GZ_REGION},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const gz_place *p = only(cases[i].alias, cases[i].kind, cases[i].iso2);
        if (strcmp(p->name, cases[i].name) != 0)
            fail_msg("%s -> %s, expected %s", cases[i].alias, p->name, cases[i].name);
    }
    /* "Washington": the state first, then the capital before smaller
     * Washingtons. */
    const gz_place *r[MAXP];
    size_t n = look("Washington", r);
    assert_true(n >= 2);
    assert_int_equal(r[0]->kind, GZ_REGION);
    assert_string_equal(r[0]->name, "Washington");
    assert_string_equal(r[1]->name, "Washington, D.C.");
    assert_ranked(r, n);
    assert_true(gz_within(only("Munich", GZ_CITY, "DE"), only("Bayern", GZ_REGION, "DE")));
    assert_true(gz_within(only("Mumbai", GZ_CITY, "IN"), only("Maharashtra", GZ_REGION, "IN")));
}

static void test_ambiguous(void **state)
{
    const gz_place *r[MAXP];
    size_t n = look("Portland", r);
    assert_true(n >= 2);
    assert_ranked(r, n);
    size_t n_us = 0;
    for (size_t i = 0; i < n; i++) {
        if (r[i]->kind == GZ_CITY && strcmp(r[i]->iso2, "US") == 0) {
            assert_string_equal(r[i]->region, n_us == 0 ? "Oregon" : "Maine");
            n_us++;
        }
    }
    assert_int_equal(n_us, 2);

    n = look("Springfield", r);
    assert_true(n >= 4);
    assert_ranked(r, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(r[i]->name, "Springfield");
    assert_string_equal(r[0]->region, "Missouri");

    /* Regions of one name: the one whose listed cities hold more people
     * first (Pakistan's Punjab, then India's). */
    n = look("Punjab", r);
    assert_true(n >= 2);
    assert_int_equal(r[0]->kind, GZ_REGION);
    assert_int_equal(r[1]->kind, GZ_REGION);
    assert_string_equal(r[0]->iso2, "PK");
    assert_string_equal(r[1]->iso2, "IN");
    assert_true(gz_within(only("Lahore", GZ_CITY, "PK"), r[0]));
    assert_true(gz_within(only("Amritsar", GZ_CITY, "IN"), r[1]));

    n = look("Paris", r);
    assert_true(n >= 1);
    assert_int_equal(r[0]->kind, GZ_CITY);
    assert_string_equal(r[0]->iso2, "FR");
    assert_ranked(r, n);
}

static void test_unknown(void **state)
{
    const gz_place *r[MAXP];
    r[0] = NULL;
    assert_int_equal(look("Xyzzyville", r), 0);
    assert_int_equal(look("Austinn", r), 0);
    assert_int_equal(look("", r), 0);
    assert_int_equal(look("   ", r), 0);
    assert_int_equal(look("!!!", r), 0);
    assert_int_equal(look("the", r), 0);
    assert_int_equal(gz_lookup(NULL, 0, r, MAXP), 0);
    assert_null(r[0]);
    /* Invalid UTF-8 and embedded NULs: no crash, no match. */
    assert_int_equal(gz_lookup("\xff\xfe\x80", 3, r, MAXP), 0);
    assert_int_equal(gz_lookup("Aus\0tin", 7, r, MAXP), 0);
    /* len is honoured: the prefix "Aus" of "Austin" is not Austin. */
    assert_int_equal(gz_lookup("Austin", 3, r, MAXP), 0);
    assert_true(gz_lookup("Austin, Texas", 6, r, MAXP) >= 1);
    assert_string_equal(r[0]->name, "Austin");
    /* A name longer than any key. */
    char big[2000];
    memset(big, 'a', sizeof big);
    assert_int_equal(gz_lookup(big, sizeof big, r, MAXP), 0);
}

static void test_max(void **state)
{
    const gz_place *all[MAXP];
    size_t n = look("Springfield", all);
    assert_true(n > 2);
    const gz_place *r[4];
    const gz_place sentinel = {.name = "sentinel"};
    for (int i = 0; i < 4; i++)
        r[i] = &sentinel;
    assert_int_equal(gz_lookup("Springfield", 11, r, 2), n);
    assert_ptr_equal(r[0], all[0]);
    assert_ptr_equal(r[1], all[1]);
    assert_ptr_equal(r[2], &sentinel);
    /* max 0: only the count, out untouched (may be NULL). */
    assert_int_equal(gz_lookup("Springfield", 11, NULL, 0), n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_first_use),
        cmocka_unit_test(test_count),
        cmocka_unit_test(test_austin),
        cmocka_unit_test(test_texas),
        cmocka_unit_test(test_within),
        cmocka_unit_test(test_new_york),
        cmocka_unit_test(test_accents),
        cmocka_unit_test(test_saint),
        cmocka_unit_test(test_united_kingdom),
        cmocka_unit_test(test_georgia),
        cmocka_unit_test(test_aliases),
        cmocka_unit_test(test_ambiguous),
        cmocka_unit_test(test_unknown),
        cmocka_unit_test(test_max),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
