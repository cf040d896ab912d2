/*
 * test_graph.c -- the in-memory knowledge graph: nodes, aliases and name
 * matching (agreeing with facts_entity_match), edges (merge, removal,
 * adjacency order), walks (depth, fan-out, decay arithmetic, best path,
 * determinism, and a comparison with a plain reference on random graphs),
 * names found in text, and allocation failure at every step.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "cognitive/facts.h"
#include "index/graph.h"

/* ------------------------------------------------------------- helpers */

static uint32_t node(graph *g, const char *name, graph_node_type t)
{
    uint32_t id = 0;
    assert_int_equal(graph_node(g, name, t, &id), DM_OK);
    assert_true(id != GRAPH_NONE);
    return id;
}

static uint32_t find(const graph *g, const char *name)
{
    return graph_find(g, name, strlen(name));
}

static void src_id(uint8_t id[16], int v)
{
    memset(id, 0, 16);
    id[0] = (uint8_t)v;
    id[15] = 0xAB;
}

static void edge(graph *g, uint32_t s, const char *rel, uint32_t d, float w)
{
    assert_int_equal(graph_edge_add(g, s, rel, d, w, 100, NULL), DM_OK);
}

/* The edge id of (s, rel, d), via the edge list; GRAPH_NONE if absent. */
static uint32_t edge_id(const graph *g, uint32_t s, const char *rel, uint32_t d)
{
    graph_edge e;
    for (uint32_t i = 0; i < graph_n_edges(g); i++)
        if (graph_edge_get(g, i, &e) && e.src == s && e.dst == d && !strcmp(e.rel, rel))
            return i;
    return GRAPH_NONE;
}

static int cmp_triple(const void *pa, const void *pb)
{
    const graph_edge *a = pa, *b = pb;
    if (a->src != b->src)
        return a->src < b->src ? -1 : 1;
    if (a->dst != b->dst)
        return a->dst < b->dst ? -1 : 1;
    return strcmp(a->rel, b->rel);
}

/*
 * check -- the structural invariants, seen through the interface: every
 * live edge is listed once by each of its ends (a self-loop once), every
 * listed edge is live and touches the node, lists are heaviest first with
 * ties by edge id, and no edge appears twice with the same (src, rel, dst).
 */
static void check(const graph *g)
{
    size_t nn = graph_n_nodes(g), ne = graph_n_edges(g);
    size_t listed = 0, ends = 0;
    uint32_t *adj = malloc((ne + 1) * sizeof *adj);
    assert_non_null(adj);
    for (uint32_t v = 0; v < nn; v++) {
        assert_non_null(graph_node_name(g, v));
        assert_int_equal(find(g, graph_node_name(g, v)), v);
        size_t k = graph_neighbours(g, v, adj, ne + 1);
        assert_true(k <= ne);
        listed += k;
        for (size_t i = 0; i < k; i++) {
            graph_edge e;
            assert_true(graph_edge_get(g, adj[i], &e));
            assert_true(e.src == v || e.dst == v);
            assert_true(e.weight >= 0 && e.weight <= 1);
            for (size_t j = 0; j < i; j++)
                assert_true(adj[j] != adj[i]);
            if (i > 0) {
                graph_edge p;
                assert_true(graph_edge_get(g, adj[i - 1], &p));
                assert_true(p.weight > e.weight || (p.weight == e.weight && adj[i - 1] < adj[i]));
            }
        }
    }
    graph_edge *all = malloc((ne + 1) * sizeof *all);
    assert_non_null(all);
    size_t n_all = 0;
    for (uint32_t i = 0; i < ne; i++) {
        graph_edge e;
        if (!graph_edge_get(g, i, &e))
            continue;
        assert_true(e.src < nn && e.dst < nn);
        ends += e.src == e.dst ? 1 : 2;
        all[n_all++] = e;
    }
    assert_int_equal(listed, ends);
    qsort(all, n_all, sizeof *all, cmp_triple);
    for (size_t i = 1; i < n_all; i++)
        assert_true(cmp_triple(&all[i - 1], &all[i]) != 0);
    free(all);
    free(adj);
}

/* ------------------------------------------------------------- nodes */

static void test_nodes_and_aliases(void **state)
{
    graph *g = graph_new();
    assert_non_null(g);
    assert_int_equal(graph_n_nodes(g), 0);
    assert_int_equal(find(g, "Ann"), GRAPH_NONE);

    uint32_t ann = node(g, "Ann Lee", GRAPH_PERSON);
    uint32_t bob = node(g, "Bob", GRAPH_PERSON);
    assert_int_equal(ann, 0);
    assert_int_equal(bob, 1);
    /* The same name, differently written, is the same node; the canonical
     * name stays as first given. */
    assert_int_equal(node(g, "  ann   LEE!", GRAPH_PERSON), ann);
    assert_string_equal(graph_node_name(g, ann), "Ann Lee");
    assert_int_equal(graph_n_nodes(g), 2);
    assert_int_equal(find(g, "ANN LEE"), ann);
    /* graph_find reads exactly len bytes. */
    assert_int_equal(graph_find(g, "Bobby", 3), bob);
    assert_int_equal(graph_find(g, "Bob", 0), GRAPH_NONE);

    /* Aliases. */
    assert_int_equal(graph_alias(g, ann, "Annie"), DM_OK);
    assert_int_equal(graph_alias(g, ann, "annie"), DM_OK); /* already hers */
    assert_int_equal(graph_alias(g, ann, "Ann Lee"), DM_OK);
    assert_int_equal(find(g, "Annie"), ann);
    assert_int_equal(node(g, "ANNIE", GRAPH_CONCEPT), ann);
    assert_int_equal(graph_n_nodes(g), 2);
    /* Conflicts: the name or alias of another node. */
    assert_int_equal(graph_alias(g, bob, "Annie"), DM_EINVAL);
    assert_non_null(strstr(err_last_msg(), "Annie"));
    assert_int_equal(graph_alias(g, bob, "ann lee"), DM_EINVAL);
    assert_int_equal(find(g, "Annie"), ann);
    /* Empty names, bad nodes and types. */
    uint32_t id = 7;
    assert_int_equal(graph_node(g, "", GRAPH_PERSON, &id), DM_EINVAL);
    assert_int_equal(id, GRAPH_NONE);
    assert_int_equal(graph_node(g, " ?! ", GRAPH_PERSON, &id), DM_EINVAL);
    assert_non_null(strstr(err_last_msg(), "empty"));
    assert_int_equal(graph_node(g, "x", (graph_node_type)9, &id), DM_EINVAL);
    assert_int_equal(graph_node(g, NULL, GRAPH_PERSON, &id), DM_EINVAL);
    assert_int_equal(graph_alias(g, bob, "..."), DM_EINVAL);
    assert_int_equal(graph_alias(g, 2, "Carl"), DM_EINVAL);
    assert_non_null(strstr(err_last_msg(), "node 2"));
    assert_int_equal(graph_alias(g, GRAPH_NONE, "Carl"), DM_EINVAL);
    assert_int_equal(find(g, "Carl"), GRAPH_NONE);
    assert_null(graph_node_name(g, 5));
    assert_int_equal(graph_n_nodes(g), 2);

    /* A long name is found through the heap copy in graph_find. */
    char longname[900];
    memset(longname, 'z', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    uint32_t lz = node(g, longname, GRAPH_CONCEPT);
    assert_int_equal(find(g, longname), lz);
    check(g);
    graph_free(g);
    graph_free(NULL);
}

static void test_company_suffix(void **state)
{
    graph *g = graph_new();
    assert_non_null(g);
    uint32_t acme = node(g, "Acme", GRAPH_ORG);
    assert_int_equal(node(g, "Acme Corp", GRAPH_ORG), acme);
    assert_int_equal(node(g, "ACME Inc.", GRAPH_ORG), acme);
    assert_int_equal(find(g, "acme, incorporated"), acme);
    assert_int_equal(find(g, "The Acme Company"), acme);
    assert_string_equal(graph_node_name(g, acme), "Acme");
    assert_true(node(g, "Acme Holdings", GRAPH_ORG) != acme);
    /* A suffix word alone is a name. */
    uint32_t co = node(g, "Co", GRAPH_CONCEPT);
    assert_true(co != acme);
    assert_int_equal(find(g, "CO."), co);
    graph_free(g);

    /* Identity agrees with facts_entity_match on every pair. */
    static const char *const names[] = {
        "Acme", "Acme Corp", "ACME Inc.", "Acme Corporation", "acme co", "Acme Group",
        "Acme Holdings", "The Acme", "Foo Co Inc", "Foo Co", "Foo", "foo inc",
        "Corp", "the corp", "Co", "Inc", "Café Zürich", "cafe zurich", "Cafe Zurich AG",
        "O'Brien Ltd", "o'brien", "OBrien", "My Sister", "sister", "an apple", "Apple Inc",
        "apple", "Big Co LLC", "Big Co", "Big", "Globex GmbH", "Globex S.A.", "globex sa",
        "New York", "new-york", "New York City", "A", "a b", "b",
    };
    size_t n = sizeof names / sizeof *names;
    g = graph_new();
    assert_non_null(g);
    uint32_t ids[sizeof names / sizeof *names];
    for (size_t i = 0; i < n; i++)
        ids[i] = node(g, names[i], GRAPH_CONCEPT);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            bool same = ids[i] == ids[j];
            if (same != facts_entity_match(names[i], names[j]))
                fail_msg("\"%s\" and \"%s\": graph says %s", names[i], names[j],
                         same ? "same" : "different");
            assert_int_equal(find(g, names[j]), ids[j]);
        }
    }
    graph_free(g);
}

static void test_type_upgrade(void **state)
{
    graph *g = graph_new();
    assert_non_null(g);
    uint32_t a = node(g, "Paris", GRAPH_CONCEPT);
    assert_int_equal(graph_node_type_of(g, a), GRAPH_CONCEPT);
    assert_int_equal(node(g, "paris", GRAPH_PLACE), a);
    assert_int_equal(graph_node_type_of(g, a), GRAPH_PLACE);
    /* A specific type is kept, against both another type and concept. */
    assert_int_equal(node(g, "Paris", GRAPH_PERSON), a);
    assert_int_equal(graph_node_type_of(g, a), GRAPH_PLACE);
    assert_int_equal(node(g, "Paris", GRAPH_CONCEPT), a);
    assert_int_equal(graph_node_type_of(g, a), GRAPH_PLACE);
    uint32_t u = node(g, "me", GRAPH_USER);
    assert_int_equal(graph_node_type_of(g, u), GRAPH_USER);
    uint32_t c = node(g, "jazz", GRAPH_CONCEPT);
    assert_int_equal(node(g, "Jazz", GRAPH_USER), c);
    assert_int_equal(graph_node_type_of(g, c), GRAPH_USER);
    graph_free(g);
}

/* ------------------------------------------------------------- edges */

static void test_edge_merge(void **state)
{
    graph *g = graph_new();
    assert_non_null(g);
    uint32_t u = node(g, "user", GRAPH_USER), a = node(g, "Acme Corp", GRAPH_ORG);
    uint8_t s1[16], s2[16], zero[16] = { 0 };
    src_id(s1, 1);
    src_id(s2, 2);
    assert_int_equal(graph_edge_add(g, u, "works_at", a, 0.5f, 2000, s1), DM_OK);
    assert_int_equal(graph_n_edges(g), 1);
    graph_edge e;
    assert_true(graph_edge_get(g, 0, &e));
    assert_int_equal(e.src, u);
    assert_int_equal(e.dst, a);
    assert_string_equal(e.rel, "works_at");
    assert_true(e.weight == 0.5f);
    assert_int_equal(e.time_us, 2000);
    assert_int_equal(e.n_sources, 1);
    assert_memory_equal(e.sources[0], s1, 16);

    /* Again: noisy-or weight, earliest time, the source once. */
    assert_int_equal(graph_edge_add(g, u, "works_at", a, 0.6f, 1000, s1), DM_OK);
    assert_int_equal(graph_n_edges(g), 1);
    assert_true(graph_edge_get(g, 0, &e));
    assert_true(e.weight == 1.0f - (1.0f - 0.5f) * (1.0f - 0.6f));
    assert_float_equal(e.weight, 0.8, 1e-6);
    assert_int_equal(e.time_us, 1000);
    assert_int_equal(e.n_sources, 1);
    /* A later time is not kept; a new source is added; NULL and zero ids
     * add none. */
    assert_int_equal(graph_edge_add(g, u, "works_at", a, 0.5f, 5000, s2), DM_OK);
    assert_int_equal(graph_edge_add(g, u, "works_at", a, 0.0f, 5000, NULL), DM_OK);
    assert_int_equal(graph_edge_add(g, u, "works_at", a, 0.0f, 5000, zero), DM_OK);
    assert_true(graph_edge_get(g, 0, &e));
    assert_true(e.weight == 1.0f - (1.0f - 0.8f) * (1.0f - 0.5f));
    assert_int_equal(e.time_us, 1000);
    assert_int_equal(e.n_sources, 2);
    assert_memory_equal(e.sources[0], s1, 16);
    assert_memory_equal(e.sources[1], s2, 16);

    /* A different relation or direction is another edge. */
    assert_int_equal(graph_edge_add(g, u, "founded", a, 0.3f, 10, NULL), DM_OK);
    assert_int_equal(graph_edge_add(g, a, "works_at", u, 0.3f, 10, zero), DM_OK);
    assert_int_equal(graph_n_edges(g), 3);
    assert_true(graph_edge_get(g, 2, &e));
    assert_int_equal(e.n_sources, 0);
    assert_null(e.sources);

    /* Weights are clamped into [0, 1]. */
    assert_int_equal(graph_edge_add(g, a, "x", a, 7.0f, 10, NULL), DM_OK);
    assert_int_equal(graph_edge_add(g, a, "y", a, -2.0f, 10, NULL), DM_OK);
    assert_true(graph_edge_get(g, edge_id(g, a, "x", a), &e) && e.weight == 1.0f);
    assert_true(graph_edge_get(g, edge_id(g, a, "y", a), &e) && e.weight == 0.0f);

    /* Bad arguments. */
    assert_int_equal(graph_edge_add(g, u, "r", 9, 0.5f, 0, NULL), DM_EINVAL);
    assert_non_null(strstr(err_last_msg(), "node"));
    assert_int_equal(graph_edge_add(g, GRAPH_NONE, "r", a, 0.5f, 0, NULL), DM_EINVAL);
    assert_int_equal(graph_edge_add(g, u, "", a, 0.5f, 0, NULL), DM_EINVAL);
    assert_non_null(strstr(err_last_msg(), "relation"));
    assert_int_equal(graph_edge_add(g, u, NULL, a, 0.5f, 0, NULL), DM_EINVAL);
    assert_int_equal(graph_edge_add(g, u, "r", a, NAN, 0, NULL), DM_EINVAL);
    assert_int_equal(graph_edge_add(NULL, u, "r", a, 0.5f, 0, NULL), DM_EINVAL);
    assert_int_equal(graph_n_edges(g), 5);
    assert_false(graph_edge_get(g, 5, &e));
    check(g);
    graph_free(g);
}

static void test_edge_remove(void **state)
{
    graph *g = graph_new();
    assert_non_null(g);
    uint32_t u = node(g, "user", GRAPH_USER), a = node(g, "Acme", GRAPH_ORG),
             b = node(g, "Boston", GRAPH_PLACE);
    uint8_t s1[16];
    src_id(s1, 1);
    assert_int_equal(graph_edge_add(g, u, "works_at", a, 0.9f, 1, s1), DM_OK);
    edge(g, u, "lives_in", b, 0.8f);
    edge(g, a, "located_in", b, 0.7f);
    assert_int_equal(graph_n_edges(g), 3);

    assert_false(graph_edge_remove(g, u, "works_at", b)); /* no such edge */
    assert_false(graph_edge_remove(g, a, "works_at", u)); /* wrong direction */
    assert_false(graph_edge_remove(g, u, "knows", a));    /* unknown relation */
    assert_false(graph_edge_remove(g, u, "works_at", 9));
    assert_true(graph_edge_remove(g, u, "works_at", a));
    assert_false(graph_edge_remove(g, u, "works_at", a));
    graph_edge e;
    assert_false(graph_edge_get(g, 0, &e));
    assert_int_equal(graph_n_edges(g), 3); /* a hole */
    uint32_t adj[8];
    assert_int_equal(graph_neighbours(g, u, adj, 8), 1);
    assert_int_equal(adj[0], 1);
    assert_int_equal(graph_neighbours(g, a, adj, 8), 1);
    assert_int_equal(adj[0], 2);
    check(g);

    /* The hole is reused, with none of the old edge's data. */
    edge(g, b, "near", a, 0.1f);
    assert_int_equal(graph_n_edges(g), 3);
    assert_true(graph_edge_get(g, 0, &e));
    assert_int_equal(e.src, b);
    assert_int_equal(e.n_sources, 0);
    assert_true(e.weight == 0.1f);
    /* Re-adding a removed fact is a fresh edge. */
    assert_int_equal(graph_edge_add(g, u, "works_at", a, 0.2f, 7, NULL), DM_OK);
    assert_int_equal(graph_n_edges(g), 4);
    assert_true(graph_edge_get(g, 3, &e));
    assert_true(e.weight == 0.2f);
    assert_int_equal(e.time_us, 7);
    check(g);

    /* Remove many, in an order other than insertion, then add again. */
    uint32_t hub = node(g, "hub", GRAPH_CONCEPT);
    char rel[32];
    for (int i = 0; i < 40; i++) {
        snprintf(rel, sizeof rel, "r%d", i);
        edge(g, hub, rel, i % 2 ? a : b, (float)(i % 7) / 7.0f);
    }
    check(g);
    for (int i = 0; i < 40; i += 3) {
        snprintf(rel, sizeof rel, "r%d", i);
        assert_true(graph_edge_remove(g, hub, rel, i % 2 ? a : b));
    }
    check(g);
    assert_int_equal(graph_neighbours(g, hub, adj, 0), 40 - 14);
    for (int i = 0; i < 40; i += 3) {
        snprintf(rel, sizeof rel, "r%d", i);
        assert_int_equal(edge_id(g, hub, rel, i % 2 ? a : b), GRAPH_NONE);
        edge(g, hub, rel, i % 2 ? a : b, 0.5f);
    }
    assert_int_equal(graph_neighbours(g, hub, adj, 0), 40);
    assert_int_equal(graph_n_edges(g), 44);
    check(g);
    graph_free(g);
}

static void test_neighbours(void **state)
{
    graph *g = graph_new();
    assert_non_null(g);
    uint32_t x = node(g, "x", GRAPH_CONCEPT), a = node(g, "a1", GRAPH_CONCEPT),
             b = node(g, "b1", GRAPH_CONCEPT), c = node(g, "c1", GRAPH_CONCEPT);
    edge(g, x, "r", a, 0.2f);  /* 0 */
    edge(g, b, "r", x, 0.9f);  /* 1: into x */
    edge(g, x, "s", c, 0.5f);  /* 2 */
    edge(g, c, "t", x, 0.5f);  /* 3: ties 2, later id */
    edge(g, x, "self", x, 0.7f); /* 4: a self-loop, listed once */
    uint32_t adj[8];
    assert_int_equal(graph_neighbours(g, x, adj, 8), 5);
    uint32_t want[] = { 1, 4, 2, 3, 0 };
    assert_memory_equal(adj, want, sizeof want);
    /* Fewer slots: the heaviest, and the total. */
    memset(adj, 0xee, sizeof adj);
    assert_int_equal(graph_neighbours(g, x, adj, 2), 5);
    assert_int_equal(adj[0], 1);
    assert_int_equal(adj[1], 4);
    assert_int_equal(adj[2], 0xeeeeeeeeu);
    assert_int_equal(graph_neighbours(g, b, adj, 8), 1);
    assert_int_equal(adj[0], 1);
    assert_int_equal(graph_neighbours(g, 99, adj, 8), 0);
    /* A merge that raises a weight moves the edge forward. */
    edge(g, x, "r", a, 0.95f); /* 1 - 0.8 * 0.05 = 0.96 */
    assert_int_equal(graph_neighbours(g, x, adj, 8), 5);
    assert_int_equal(adj[0], 0);
    assert_int_equal(adj[1], 1);
    check(g);
    graph_free(g);
}

/* ------------------------------------------------------------- walk */

static const graph_hit *hit_of(const graph_hit *h, size_t n, uint32_t node_id)
{
    for (size_t i = 0; i < n; i++)
        if (h[i].node == node_id)
            return &h[i];
    return NULL;
}

static void test_walk_example(void **state)
{
    /* "user works_at Acme Corp" + "Acme Corp industry healthcare". */
    graph *g = graph_new();
    assert_non_null(g);
    uint32_t u = node(g, "user", GRAPH_USER), a = node(g, "Acme Corp", GRAPH_ORG),
             h = node(g, "healthcare", GRAPH_CONCEPT);
    const float w1 = 0.9f, w2 = 0.8f, decay = 0.5f;
    edge(g, u, "works_at", a, w1);
    edge(g, a, "industry", h, w2);
    graph_hit out[8];
    size_t n = graph_walk(g, &u, 1, 2, 16, decay, out, 8);
    assert_int_equal(n, 3);
    assert_int_equal(out[0].node, u);
    assert_true(out[0].score == 1.0f);
    assert_int_equal(out[0].depth, 0);
    assert_int_equal(out[0].via, GRAPH_NONE);
    assert_int_equal(out[1].node, a);
    assert_true(out[1].score == w1 * decay);
    assert_int_equal(out[1].depth, 1);
    assert_int_equal(out[1].via, 0);
    assert_int_equal(out[2].node, h);
    /* score = ((w1 * decay) * w2) * decay, in float */
    float want = 1.0f * w1;
    want = want * decay;
    want = want * w2;
    want = want * decay;
    assert_true(out[2].score == want);
    assert_float_equal(out[2].score, 0.18, 1e-6);
    assert_int_equal(out[2].depth, 2);
    assert_int_equal(out[2].via, 1);
    /* One hop does not reach it; zero hops only the seed. */
    assert_int_equal(graph_walk(g, &u, 1, 1, 16, decay, out, 8), 2);
    assert_null(hit_of(out, 2, h));
    assert_int_equal(graph_walk(g, &u, 1, 0, 16, decay, out, 8), 1);
    assert_int_equal(out[0].node, u);
    /* Seeded from the industry, the walk runs against edge direction. */
    assert_int_equal(graph_walk(g, &h, 1, 2, 16, decay, out, 8), 3);
    assert_int_equal(out[2].node, u);
    assert_true(out[2].score == want);
    /* Nothing to seed. */
    uint32_t none = GRAPH_NONE;
    assert_int_equal(graph_walk(g, &none, 1, 2, 16, decay, out, 8), 0);
    assert_int_equal(graph_walk(g, &u, 0, 2, 16, decay, out, 8), 0);
    graph_free(g);
}

static void test_walk_limits(void **state)
{
    /* A chain s - c1 - c2 - c3 - c4 and a star around s. */
    graph *g = graph_new();
    assert_non_null(g);
    uint32_t s = node(g, "s", GRAPH_CONCEPT);
    uint32_t ch[5] = { s };
    char name[16];
    for (int i = 1; i <= 4; i++) {
        snprintf(name, sizeof name, "c%d", i);
        ch[i] = node(g, name, GRAPH_CONCEPT);
        edge(g, ch[i - 1], "next", ch[i], 1.0f);
    }
    graph_hit out[32];
    for (uint32_t d = 0; d <= 5; d++) {
        size_t n = graph_walk(g, &s, 1, d, 16, 0.5f, out, 32);
        assert_int_equal(n, (d < 4 ? d : 4) + 1);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(out[i].node, ch[i]);
            assert_int_equal(out[i].depth, i);
            assert_true(out[i].score == ldexpf(1.0f, -(int)i)); /* 0.5^i exactly */
        }
    }

    /* Star: s linked to leaves of weights 0.1 .. 0.8, two of them tied. */
    const float ws[] = { 0.3f, 0.8f, 0.1f, 0.6f, 0.6f, 0.2f, 0.7f };
    uint32_t leaf[7];
    for (int i = 0; i < 7; i++) {
        snprintf(name, sizeof name, "leaf%d", i);
        leaf[i] = node(g, name, GRAPH_CONCEPT);
        if (i % 2)
            edge(g, s, "has", leaf[i], ws[i]);
        else
            edge(g, leaf[i], "of", s, ws[i]);
    }
    /* s's edges by weight: c1 (1.0), leaf1 .8, leaf6 .7, leaf3 .6, leaf4
     * .6 (later id), leaf0 .3, ... */
    size_t n = graph_walk(g, &s, 1, 1, 4, 1.0f, out, 32);
    assert_int_equal(n, 5);
    assert_int_equal(out[0].node, s);
    assert_int_equal(out[1].node, ch[1]);
    assert_int_equal(out[2].node, leaf[1]);
    assert_int_equal(out[3].node, leaf[6]);
    assert_int_equal(out[4].node, leaf[3]);
    assert_true(out[4].score == 0.6f);
    n = graph_walk(g, &s, 1, 1, 5, 1.0f, out, 32);
    assert_int_equal(n, 6);
    assert_int_equal(out[4].node, leaf[3]); /* tie: smaller node id first */
    assert_int_equal(out[5].node, leaf[4]);
    /* Fan-out 0: only the seeds. */
    assert_int_equal(graph_walk(g, &s, 1, 3, 0, 1.0f, out, 32), 1);
    /* The fan-out of the nodes further out counts too: c1's heaviest two
     * edges are to s and c2 (both weight 1), so c2 is reached, and with
     * fan-out 1 c1 only goes back to s. */
    n = graph_walk(g, &s, 1, 2, 1, 1.0f, out, 32);
    assert_int_equal(n, 2);
    n = graph_walk(g, &ch[1], 1, 2, 1, 1.0f, out, 32);
    assert_int_equal(n, 2); /* c1 -> s (edge 0, smaller id than c1 - c2) -> c1 */
    assert_non_null(hit_of(out, n, s));
    assert_null(hit_of(out, n, ch[2]));
    /* Fewer output slots than hits: the best, and the total. */
    n = graph_walk(g, &s, 1, 1, 16, 1.0f, out, 3);
    assert_int_equal(n, 9);
    assert_int_equal(out[2].node, leaf[1]);
    graph_free(g);
}

static void test_walk_best_path(void **state)
{
    /* a - b directly (0.1), and a - c - b (0.9 each). */
    graph *g = graph_new();
    assert_non_null(g);
    uint32_t a = node(g, "a", GRAPH_CONCEPT), b = node(g, "b", GRAPH_CONCEPT),
             c = node(g, "c", GRAPH_CONCEPT);
    edge(g, a, "r", b, 0.1f); /* 0 */
    edge(g, a, "r", c, 0.9f); /* 1 */
    edge(g, c, "r", b, 0.9f); /* 2 */
    graph_hit out[8];
    /* No decay: the two-hop path is better; depth stays the nearest. */
    size_t n = graph_walk(g, &a, 1, 2, 16, 1.0f, out, 8);
    assert_int_equal(n, 3);
    const graph_hit *hb = hit_of(out, n, b);
    assert_non_null(hb);
    assert_true(hb->score == 0.9f * 0.9f);
    assert_int_equal(hb->via, 2);
    assert_int_equal(hb->depth, 1);
    /* Limited to one hop, only the direct edge. */
    n = graph_walk(g, &a, 1, 1, 16, 1.0f, out, 8);
    hb = hit_of(out, n, b);
    assert_true(hb->score == 0.1f);
    assert_int_equal(hb->via, 0);
    /* Strong decay: the direct edge wins (0.01 > 0.0081). */
    n = graph_walk(g, &a, 1, 2, 16, 0.1f, out, 8);
    hb = hit_of(out, n, b);
    float direct = 0.1f;
    direct = direct * 0.1f;
    assert_true(hb->score == direct);
    assert_int_equal(hb->via, 0);
    /* Several seeds: each node takes its best. */
    uint32_t seeds[] = { b, a, b };
    n = graph_walk(g, seeds, 3, 2, 16, 0.5f, out, 8);
    assert_int_equal(n, 3);
    assert_true(out[0].score == 1.0f && out[1].score == 1.0f);
    assert_int_equal(out[0].node, a); /* tie by node id */
    assert_int_equal(out[1].node, b);
    assert_int_equal(out[2].node, c);
    assert_true(out[2].score == 0.9f * 0.5f);
    assert_int_equal(out[2].via, 1); /* equal scores: the smaller edge id */

    /* Equal scores by paths of different length: fewer hops wins. */
    uint32_t d = node(g, "d", GRAPH_CONCEPT), e = node(g, "e", GRAPH_CONCEPT);
    edge(g, a, "q", e, 1.0f); /* 3 */
    edge(g, e, "q", d, 1.0f); /* 4 */
    edge(g, a, "q", d, 1.0f); /* 5 */
    n = graph_walk(g, &a, 1, 3, 16, 1.0f, out, 8);
    const graph_hit *hd = hit_of(out, n, d);
    assert_true(hd->score == 1.0f);
    assert_int_equal(hd->via, 5);
    assert_int_equal(hd->depth, 1);
    graph_free(g);
}

/* The plain reference: Bellman-Ford over all nodes, one round per hop. */
typedef struct ref_state {
    bool reached;
    float score;
    uint32_t hops, via, depth;
} ref_state;

static const graph *cmp_g;
static int cmp_edge(const void *pa, const void *pb)
{
    graph_edge a, b;
    uint32_t ia = *(const uint32_t *)pa, ib = *(const uint32_t *)pb;
    graph_edge_get(cmp_g, ia, &a);
    graph_edge_get(cmp_g, ib, &b);
    if (a.weight != b.weight)
        return a.weight > b.weight ? -1 : 1;
    return ia < ib ? -1 : ia > ib;
}

static size_t ref_walk(const graph *g, const uint32_t *seeds, size_t n_seeds, uint32_t depth,
                       uint32_t fanout, float decay, graph_hit *out)
{
    size_t nn = graph_n_nodes(g), ne = graph_n_edges(g);
    /* Each node's fan-out edges, sorted here from the edge list. */
    uint32_t **top = calloc(nn, sizeof *top);
    size_t *n_top = calloc(nn, sizeof *n_top);
    ref_state *prev = calloc(nn, sizeof *prev), *cur = calloc(nn, sizeof *cur);
    assert_true(top && n_top && prev && cur);
    for (uint32_t v = 0; v < nn; v++) {
        top[v] = malloc((ne + 1) * sizeof **top);
        assert_non_null(top[v]);
        size_t k = 0;
        for (uint32_t i = 0; i < ne; i++) {
            graph_edge e;
            if (graph_edge_get(g, i, &e) && (e.src == v || e.dst == v))
                top[v][k++] = i;
        }
        cmp_g = g;
        qsort(top[v], k, sizeof **top, cmp_edge);
        n_top[v] = k < fanout ? k : fanout;
    }
    for (size_t i = 0; i < n_seeds; i++)
        if (seeds[i] < nn)
            prev[seeds[i]] = (ref_state){ true, 1.0f, 0, GRAPH_NONE, 0 };
    for (uint32_t k = 1; k <= depth; k++) {
        memcpy(cur, prev, nn * sizeof *cur);
        for (uint32_t u = 0; u < nn; u++) {
            if (!prev[u].reached)
                continue;
            for (size_t a = 0; a < n_top[u]; a++) {
                graph_edge e;
                graph_edge_get(g, top[u][a], &e);
                uint32_t v = e.src == u ? e.dst : e.src;
                float c = prev[u].score * e.weight;
                c = c * decay;
                ref_state *t = &cur[v];
                if (!t->reached)
                    *t = (ref_state){ true, c, k, top[u][a], k };
                else if (c > t->score ||
                         (c == t->score && t->hops == k && top[u][a] < t->via))
                    *t = (ref_state){ true, c, k, top[u][a], t->depth };
            }
        }
        memcpy(prev, cur, nn * sizeof *cur);
    }
    size_t n = 0;
    for (uint32_t v = 0; v < nn; v++)
        if (prev[v].reached)
            out[n++] = (graph_hit){ v, prev[v].score, prev[v].depth, prev[v].via };
    /* best first, ties by node id (a stable insertion sort on id order) */
    for (size_t i = 1; i < n; i++) {
        graph_hit t = out[i];
        size_t j = i;
        while (j > 0 && out[j - 1].score < t.score) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = t;
    }
    for (uint32_t v = 0; v < nn; v++)
        free(top[v]);
    free(top);
    free(n_top);
    free(prev);
    free(cur);
    return n;
}

static void test_walk_random_vs_reference(void **state)
{
    tu_rng r;
    tu_rng_seed(&r, 20240607);
    static const float wset[] = { 0.25f, 0.5f, 0.75f, 1.0f, 0.5f };
    static const float dset[] = { 1.0f, 0.5f, 0.3f, 0.9f, 0.0f };
    char name[32], rel[8];
    size_t total_hits = 0, most_hits = 0;
    for (int round = 0; round < 300; round++) {
        graph *g = graph_new();
        assert_non_null(g);
        /* Every tenth round: a large walk over continuous weights, whose
         * scores differ in every bit. */
        bool big = round % 10 == 9;
        uint32_t nn = big ? 200 + (uint32_t)tu_randn(&r, 200)
                          : 1 + (uint32_t)tu_randn(&r, round < 150 ? 12 : 300);
        for (uint32_t i = 0; i < nn; i++) {
            snprintf(name, sizeof name, "n%u", i);
            assert_int_equal(node(g, name, GRAPH_CONCEPT), i);
        }
        uint32_t ne = (uint32_t)tu_randn(&r, 4 * nn + 1);
        bool discrete = !big && tu_randn(&r, 2);
        for (uint32_t i = 0; i < ne; i++) {
            uint32_t s = (uint32_t)tu_randn(&r, nn), d = (uint32_t)tu_randn(&r, nn);
            snprintf(rel, sizeof rel, "r%u", (unsigned)tu_randn(&r, 3));
            float w = discrete ? wset[tu_randn(&r, 5)] : (float)tu_randn(&r, 1001) / 1000.0f;
            assert_int_equal(graph_edge_add(g, s, rel, d, w, 0, NULL), DM_OK);
            if (tu_randn(&r, 8) == 0) {
                s = (uint32_t)tu_randn(&r, nn);
                d = (uint32_t)tu_randn(&r, nn);
                snprintf(rel, sizeof rel, "r%u", (unsigned)tu_randn(&r, 3));
                graph_edge_remove(g, s, rel, d);
            }
        }
        if (round % 50 == 0)
            check(g);
        uint32_t seeds[4];
        size_t n_seeds = 1 + tu_randn(&r, 4);
        for (size_t i = 0; i < n_seeds; i++)
            seeds[i] = tu_randn(&r, 10) ? (uint32_t)tu_randn(&r, nn) : GRAPH_NONE;
        uint32_t depth = (uint32_t)tu_randn(&r, 5), fanout = (uint32_t)tu_randn(&r, 7);
        if (tu_randn(&r, 4) == 0 || big)
            fanout = 1000;
        if (big)
            depth = 3;
        float decay = dset[tu_randn(&r, 5)];

        graph_hit *got = malloc((nn + 1) * sizeof *got), *want = malloc((nn + 1) * sizeof *want);
        assert_true(got && want);
        size_t ng = graph_walk(g, seeds, n_seeds, depth, fanout, decay, got, nn + 1);
        size_t nw = ref_walk(g, seeds, n_seeds, depth, fanout, decay, want);
        if (ng != nw)
            fail_msg("round %d: %zu hits, reference %zu", round, ng, nw);
        for (size_t i = 0; i < nw; i++) {
            if (got[i].node != want[i].node || got[i].score != want[i].score ||
                got[i].depth != want[i].depth || got[i].via != want[i].via)
                fail_msg("round %d hit %zu: node %u score %g depth %u via %u; reference node "
                         "%u score %g depth %u via %u",
                         round, i, got[i].node, (double)got[i].score, got[i].depth, got[i].via,
                         want[i].node, (double)want[i].score, want[i].depth, want[i].via);
        }
        /* Determinism: again, and with the seeds in another order. */
        uint32_t rs[4];
        for (size_t i = 0; i < n_seeds; i++)
            rs[i] = seeds[n_seeds - 1 - i];
        graph_hit *again = malloc((nn + 1) * sizeof *again);
        assert_non_null(again);
        assert_int_equal(graph_walk(g, rs, n_seeds, depth, fanout, decay, again, nn + 1), ng);
        assert_memory_equal(again, got, ng * sizeof *got);
        /* A short output holds the best prefix. */
        if (ng > 2) {
            assert_int_equal(graph_walk(g, seeds, n_seeds, depth, fanout, decay, again, 2), ng);
            assert_memory_equal(again, got, 2 * sizeof *got);
        }
        total_hits += ng;
        most_hits = ng > most_hits ? ng : most_hits;
        free(again);
        free(got);
        free(want);
        graph_free(g);
    }
    print_message("random walks: %zu hits compared, at most %zu in one walk\n", total_hits,
                  most_hits);
    assert_true(total_hits > 3000);
    assert_true(most_hits > 200); /* large walks sort differently */
}

/* ------------------------------------------------------------- text */

static size_t ft(const graph *g, const char *text, uint32_t *out, size_t max)
{
    return graph_find_text(g, text, strlen(text), out, max);
}

static void test_find_text(void **state)
{
    graph *g = graph_new();
    assert_non_null(g);
    uint32_t ann = node(g, "Ann", GRAPH_PERSON), acme = node(g, "Acme Corp", GRAPH_ORG),
             ny = node(g, "New York", GRAPH_PLACE), nyc = node(g, "New York City", GRAPH_PLACE),
             york = node(g, "York", GRAPH_PLACE), city = node(g, "City Hall", GRAPH_PLACE),
             ob = node(g, "O'Brien", GRAPH_PERSON), zur = node(g, "Zürich", GRAPH_PLACE),
             hague = node(g, "The Hague", GRAPH_PLACE), big = node(g, "Big Apple", GRAPH_PLACE);
    assert_int_equal(graph_alias(g, nyc, "NYC"), DM_OK);
    uint32_t out[16];

    assert_int_equal(ft(g, "Ann works at Acme Corp.", out, 16), 2);
    assert_int_equal(out[0], ann);
    assert_int_equal(out[1], acme);
    /* Company suffixes, absent or other. */
    assert_int_equal(ft(g, "what does acme do", out, 16), 1);
    assert_int_equal(out[0], acme);
    assert_int_equal(ft(g, "ACME, Inc. is hiring", out, 16), 1);
    assert_int_equal(out[0], acme);
    /* Whole words only. */
    assert_int_equal(ft(g, "Anna is planning a trip; annual leave", out, 16), 0);
    assert_int_equal(ft(g, "ann.", out, 16), 1);
    assert_int_equal(ft(g, "(Ann)", out, 16), 1);
    /* Overlapping names: the longest. */
    assert_int_equal(ft(g, "I moved to New York City last year", out, 16), 1);
    assert_int_equal(out[0], nyc);
    assert_int_equal(ft(g, "new york is big", out, 16), 1);
    assert_int_equal(out[0], ny);
    assert_int_equal(ft(g, "York, then New York", out, 16), 2);
    assert_int_equal(out[0], york);
    assert_int_equal(out[1], ny);
    /* "New York City Hall": the three-word name wins over the two-word
     * one it overlaps. */
    assert_int_equal(ft(g, "at New York City Hall", out, 16), 1);
    assert_int_equal(out[0], nyc);
    assert_int_equal(ft(g, "at York City Hall", out, 16), 2);
    assert_int_equal(out[0], york);
    assert_int_equal(out[1], city);
    /* Aliases, articles, possessives, apostrophes, accents, quotes. */
    assert_int_equal(ft(g, "NYC or the big apple?", out, 16), 2);
    assert_int_equal(out[0], nyc);
    assert_int_equal(out[1], big);
    assert_int_equal(ft(g, "flights to the hague", out, 16), 1);
    assert_int_equal(out[0], hague);
    assert_int_equal(ft(g, "Hague", out, 16), 1);
    assert_int_equal(ft(g, "What is Ann's job at Acme Corp's office?", out, 16), 2);
    assert_int_equal(out[0], ann);
    assert_int_equal(out[1], acme);
    assert_int_equal(ft(g, "Ann\xe2\x80\x99s sister", out, 16), 1);
    assert_int_equal(out[0], ann);
    assert_int_equal(ft(g, "ask o'brien about it", out, 16), 1);
    assert_int_equal(out[0], ob);
    assert_int_equal(ft(g, "ZURICH and Z\xc3\xbcrich", out, 16), 1);
    assert_int_equal(out[0], zur);
    assert_int_equal(ft(g, "\xe2\x80\x9c" "Ann\xe2\x80\x9d moved\xe2\x80\x94to Zu\xcc\x88rich",
                        out, 16), 2);
    assert_int_equal(out[0], ann);
    assert_int_equal(out[1], zur);
    /* Each node once, in text order; a short out still counts all. */
    assert_int_equal(ft(g, "Acme, Ann, acme corp, York and Ann", out, 16), 3);
    assert_int_equal(out[0], acme);
    assert_int_equal(out[1], ann);
    assert_int_equal(out[2], york);
    memset(out, 0xee, sizeof out);
    assert_int_equal(ft(g, "Acme, Ann, acme corp, York and Ann", out, 1), 3);
    assert_int_equal(out[0], acme);
    assert_int_equal(out[1], 0xeeeeeeeeu);
    /* Nothing. */
    assert_int_equal(ft(g, "", out, 16), 0);
    assert_int_equal(ft(g, "  ...  ", out, 16), 0);
    assert_int_equal(graph_find_text(g, "Ann", 2, out, 16), 0);
    assert_int_equal(ft(g, "\xff\xfe Ann \xc3", out, 16), 1); /* invalid UTF-8 */
    /* Letters beyond Latin are word characters; whole words still. */
    uint32_t msk = node(g, "\xd0\x9c\xd0\xbe\xd1\x81\xd0\xba\xd0\xb2\xd0\xb0", GRAPH_PLACE);
    assert_int_equal(ft(g, "\xd0\xb2 \xd0\x9c\xd0\x9e\xd0\xa1\xd0\x9a\xd0\x92\xd0\x90!", out, 16), 1);
    assert_int_equal(out[0], msk);
    assert_int_equal(ft(g, "\xd0\x9c\xd0\xbe\xd1\x81\xd0\xba\xd0\xb2\xd1\x8b", out, 16), 0);
    graph_free(g);

    g = graph_new();
    assert_non_null(g);
    assert_int_equal(ft(g, "Ann", out, 16), 0); /* an empty graph */
    graph_free(g);
}

/* A pronounceable name from a number: distinct numbers, distinct names. */
static void make_name(char *out, size_t cap, unsigned v)
{
    static const char *const syl[] = { "ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo",
                                       "ber", "dan", "gor", "hel", "jun", "pra", "wes", "zil" };
    size_t o = 0;
    do {
        o += (size_t)snprintf(out + o, cap - o, "%s", syl[v % 16]);
        v /= 16;
    } while (v && o + 4 < cap);
}

static void test_find_text_large(void **state)
{
    /* 1,000 nodes of one to three words; every one is found in a text
     * naming it, and long texts take the heap paths. */
    graph *g = graph_new();
    assert_non_null(g);
    enum { N = 1000 };
    static char names[N][64];
    char w1[20], w2[20];
    for (unsigned i = 0; i < N; i++) {
        make_name(w1, sizeof w1, i + 16);
        make_name(w2, sizeof w2, i * 7 + 5);
        if (i % 3 == 0)
            snprintf(names[i], sizeof names[i], "%s", w1);
        else if (i % 3 == 1)
            snprintf(names[i], sizeof names[i], "%s %s", w1, w2);
        else
            snprintf(names[i], sizeof names[i], "%s %s Inc", w1, w2);
        uint32_t id = 0;
        int rc = graph_node(g, names[i], GRAPH_CONCEPT, &id);
        assert_int_equal(rc, DM_OK);
        assert_int_equal(id, i);
    }
    uint32_t out[64];
    char text[256];
    for (unsigned i = 0; i < N; i++) {
        snprintf(text, sizeof text, "please tell me what you know about %s and the rest",
                 names[i]);
        size_t n = ft(g, text, out, 64);
        assert_true(n >= 1);
        bool found = false;
        for (size_t k = 0; k < n && k < 64; k++)
            found |= out[k] == i;
        if (!found)
            fail_msg("\"%s\" not found in \"%s\"", names[i], text);
    }
    /* A long text: 400 names, about 5 KB. */
    size_t cap = 32768, o = 0;
    char *big = malloc(cap);
    assert_non_null(big);
    for (unsigned i = 0; i < 400; i++)
        o += (size_t)snprintf(big + o, cap - o, "then %s; ", names[(i * 37) % N]);
    uint32_t *many = malloc(N * sizeof *many);
    assert_non_null(many);
    size_t n = graph_find_text(g, big, o, many, N);
    assert_true(n >= 350 && n <= 400);
    for (size_t k = 0; k < n; k++)
        for (size_t j = 0; j < k; j++)
            assert_true(many[k] != many[j]);
    assert_int_equal(many[0], 0);
    assert_int_equal(many[1], 37);
    free(many);
    free(big);
    graph_free(g);
}

/* ------------------------------------------------------------- memory */

/* A fingerprint of the whole graph, for comparing two builds. */
static void fingerprint(const graph *g, char *out, size_t cap)
{
    size_t o = 0;
    uint64_t h = 1469598103934665603ull;
#define MIX(p, n)                                                                           \
    do {                                                                                    \
        const unsigned char *q_ = (const unsigned char *)(p);                               \
        for (size_t i_ = 0; i_ < (n); i_++)                                                 \
            h = (h ^ q_[i_]) * 1099511628211ull;                                            \
    } while (0)
    for (uint32_t v = 0; v < graph_n_nodes(g); v++) {
        graph_node_type t = graph_node_type_of(g, v);
        MIX(graph_node_name(g, v), strlen(graph_node_name(g, v)));
        MIX(&t, sizeof t);
        uint32_t adj[256];
        size_t k = graph_neighbours(g, v, adj, 256);
        MIX(adj, (k < 256 ? k : 256) * sizeof *adj);
    }
    for (uint32_t i = 0; i < graph_n_edges(g); i++) {
        graph_edge e;
        if (!graph_edge_get(g, i, &e))
            continue;
        MIX(&e.src, 4);
        MIX(&e.dst, 4);
        MIX(e.rel, strlen(e.rel));
        MIX(&e.weight, 4);
        MIX(&e.time_us, 8);
        MIX(e.sources, 16 * (size_t)e.n_sources);
    }
#undef MIX
    o += (size_t)snprintf(out + o, cap - o, "%zu/%zu/%016llx", graph_n_nodes(g),
                          graph_n_edges(g), (unsigned long long)h);
}

/*
 * The scenario for the allocation-failure tests: each step returns DM_OK
 * or DM_ENOMEM; with retry set, a step that fails is checked for
 * consistency and repeated (the failure is one-shot), so the end state
 * must equal that of a run without failures.  Returns the number of
 * failed steps, or -1 when graph_new itself failed.
 */
static int scenario(graph **pg, bool retry, char *fp, size_t fp_cap)
{
    int failed = 0;
    graph *g = graph_new();
    if (!g) {
        assert_int_equal(strstr(err_last_msg(), "memory") != NULL, 1);
        return -1;
    }
    *pg = g;
#define STEP(expr)                                                                          \
    do {                                                                                    \
        for (;;) {                                                                          \
            int rc_ = (expr);                                                               \
            if (rc_ == DM_OK)                                                               \
                break;                                                                      \
            assert_int_equal(rc_, DM_ENOMEM);                                               \
            assert_non_null(strstr(err_last_msg(), "memory"));                              \
            failed++;                                                                       \
            check(g);                                                                       \
            if (!retry)                                                                     \
                break;                                                                      \
        }                                                                                   \
    } while (0)
    char name[64], rel[16];
    uint32_t ids[30];
    uint8_t src[16];
    for (int i = 0; i < 30; i++) {
        snprintf(name, sizeof name, "Entity %d Corp", i);
        ids[i] = GRAPH_NONE;
        STEP(graph_node(g, name, i % 5 ? GRAPH_ORG : GRAPH_CONCEPT, &ids[i]));
        if (ids[i] == GRAPH_NONE)
            return failed; /* without retry, the rest needs the node */
        snprintf(name, sizeof name, "E%d", i);
        STEP(graph_alias(g, ids[i], name));
        snprintf(name, sizeof name, "Entity %d %d %d %d", i, i, i, i);
        STEP(graph_alias(g, ids[i], name));
    }
    for (int i = 0; i < 200; i++) {
        snprintf(rel, sizeof rel, "rel%d", i % 23);
        src_id(src, i % 7 + 1);
        STEP(graph_edge_add(g, ids[(i * 13) % 30], rel, ids[(i * 7 + i / 7) % 30],
                            (float)(i % 10) / 10.0f, 1000 - i, i % 3 ? src : NULL));
    }
    for (int i = 0; i < 200; i += 4) {
        snprintf(rel, sizeof rel, "rel%d", i % 23);
        graph_edge_remove(g, ids[(i * 13) % 30], rel, ids[(i * 7 + i / 7) % 30]);
    }
    for (int i = 0; i < 80; i++) {
        snprintf(rel, sizeof rel, "again%d", i % 5);
        src_id(src, i % 11 + 1);
        STEP(graph_edge_add(g, ids[i % 30], rel, ids[(i * 11) % 30], 0.5f, i, src));
    }
    check(g);
    /* Queries big enough to leave their stack buffers. */
    graph_hit hits[64];
    size_t n_hits;
    for (;;) {
        n_hits = graph_walk(g, ids, 3, 4, 16, 0.9f, hits, 64);
        if (n_hits)
            break;
        assert_non_null(strstr(err_last_msg(), "memory"));
        failed++;
        if (!retry)
            break;
    }
    char *text = malloc(8192);
    assert_non_null(text);
    size_t o = 0;
    for (int i = 0; i < 200; i++)
        o += (size_t)snprintf(text + o, 8192 - o, "and Entity %d Corp with E%d; ", i % 30,
                              (i * 3) % 30);
    uint32_t found[64];
    size_t n_found;
    for (;;) {
        n_found = graph_find_text(g, text, o, found, 64);
        if (n_found)
            break;
        assert_non_null(strstr(err_last_msg(), "memory"));
        failed++;
        if (!retry)
            break;
    }
    free(text);
    if (retry) {
        assert_int_equal(n_found, 30);
        if (n_hits < 10)
            fail_msg("walk reached %zu", n_hits);
    }
    if (fp) {
        fingerprint(g, fp, fp_cap);
        size_t l = strlen(fp);
        snprintf(fp + l, fp_cap - l, "/%zu/%u/%g/%zu", n_hits, hits[n_hits - 1].node,
                 (double)hits[n_hits - 1].score, n_found);
    }
#undef STEP
    return failed;
}

static void test_out_of_memory(void **state)
{
    int64_t base = alloc_bytes_in_use();
    char want[128], got[128];
    graph *g = NULL;
    alloc_fail_after(0, 0);
    assert_int_equal(scenario(&g, true, want, sizeof want), 0);
    graph_free(g);
    assert_int_equal(alloc_bytes_in_use(), base);

    /* Fail the k-th allocation once, for every k the scenario reaches:
     * the failing step reports DM_ENOMEM, leaves the graph consistent and
     * succeeds when repeated, and the end state is the same. */
    int64_t k;
    for (k = 1;; k++) {
        int64_t before = alloc_failures();
        g = NULL;
        alloc_fail_after(k, 0);
        int failed = scenario(&g, true, got, sizeof got);
        alloc_fail_after(0, 0);
        int64_t fired = alloc_failures() - before;
        if (failed >= 0) {
            assert_string_equal(got, want);
            graph_free(g);
        }
        assert_int_equal(alloc_bytes_in_use(), base);
        if (!fired)
            break;
        assert_true(failed != 0);
    }
    print_message("allocation failure at each of %lld allocations\n", (long long)(k - 1));
    assert_true(k > 30);

    /* Fail every allocation from the k-th on: each step fails cleanly,
     * and freeing what was built leaks nothing. */
    for (int64_t j = 1; j < k; j += 4) {
        g = NULL;
        alloc_fail_after(j, 1);
        int failed = scenario(&g, false, NULL, 0);
        alloc_fail_after(0, 0);
        assert_true(failed != 0);
        if (failed >= 0) {
            check(g);
            graph_free(g);
        }
        assert_int_equal(alloc_bytes_in_use(), base);
    }
}

static void test_walk_out_of_memory(void **state)
{
    /* A walk reaching more nodes than fit its stack buffers. */
    int64_t base = alloc_bytes_in_use();
    graph *g = graph_new();
    assert_non_null(g);
    char name[16];
    uint32_t hub = node(g, "hub", GRAPH_CONCEPT), prev = hub;
    for (int i = 0; i < 600; i++) {
        snprintf(name, sizeof name, "v%d", i);
        uint32_t v = node(g, name, GRAPH_CONCEPT);
        edge(g, i % 3 ? hub : prev, "r", v, 0.5f + (float)(i % 5) / 10.0f);
        prev = v;
    }
    int64_t with_graph = alloc_bytes_in_use();
    graph_hit *want = malloc(700 * sizeof *want), *got = malloc(700 * sizeof *got);
    assert_true(want && got);
    size_t n = graph_walk(g, &hub, 1, 3, 1000, 0.8f, want, 700);
    assert_true(n > 500);
    assert_int_equal(alloc_bytes_in_use(), with_graph);
    int64_t k;
    for (k = 1;; k++) {
        int64_t before = alloc_failures();
        alloc_fail_after(k, 0);
        size_t m = graph_walk(g, &hub, 1, 3, 1000, 0.8f, got, 700);
        alloc_fail_after(0, 0);
        assert_int_equal(alloc_bytes_in_use(), with_graph);
        if (alloc_failures() == before) {
            assert_int_equal(m, n);
            assert_memory_equal(got, want, n * sizeof *got);
            break;
        }
        assert_int_equal(m, 0);
        assert_non_null(strstr(err_last_msg(), "memory"));
    }
    assert_true(k > 2); /* the state moved to the heap and grew */
    free(want);
    free(got);
    graph_free(g);
    assert_int_equal(alloc_bytes_in_use(), base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nodes_and_aliases),
        cmocka_unit_test(test_company_suffix),
        cmocka_unit_test(test_type_upgrade),
        cmocka_unit_test(test_edge_merge),
        cmocka_unit_test(test_edge_remove),
        cmocka_unit_test(test_neighbours),
        cmocka_unit_test(test_walk_example),
        cmocka_unit_test(test_walk_limits),
        cmocka_unit_test(test_walk_best_path),
        cmocka_unit_test(test_walk_random_vs_reference),
        cmocka_unit_test(test_find_text),
        cmocka_unit_test(test_find_text_large),
        cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_walk_out_of_memory),
    };
    if (getenv("DM_TEST_FILTER"))
        cmocka_set_test_filter(getenv("DM_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
