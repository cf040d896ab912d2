/*
 * knowledge.c -- dm_graph_neighbours and dm_graph_search: a user's
 * knowledge graph (built from its facts in cognition.c) as the API shows
 * it.
 *
 * A result is a set of nodes (a walk from the starting entity, or the
 * entities a text names) and every edge of the graph between two of them,
 * copied out under the user's read lock so that the caller owns it.
 */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "engine/engine_int.h"

#define MAX_NODES 1024

static const char *type_name(graph_node_type t)
{
    static const char *const n[] = { "person", "org", "place", "product", "concept", "user" };
    return (unsigned)t < 6 ? n[t] : "concept";
}

void dm_graph_result_free(dm_graph_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_nodes; i++) {
        dm_free(r->nodes[i].name);
        dm_free(r->nodes[i].type);
    }
    for (size_t i = 0; i < r->n_edges; i++) {
        dm_free(r->edges[i].src);
        dm_free(r->edges[i].rel);
        dm_free(r->edges[i].dst);
        dm_free(r->edges[i].sources);
    }
    dm_free(r->nodes);
    dm_free(r->edges);
    dm_free(r);
}

/* The nodes of hits and the edges among them, copied into a result. */
static int copy_out(const graph *g, const graph_hit *hits, size_t n, dm_graph_result **out)
{
    dm_graph_result *r = dm_calloc(1, sizeof *r);
    if (!r)
        return err_set_msg(DM_ENOMEM, "out of memory");
    r->nodes = dm_calloc(n ? n : 1, sizeof *r->nodes);
    int rc = r->nodes ? DM_OK : DM_ENOMEM;
    for (size_t i = 0; i < n && !rc; i++) {
        dm_graph_node *d = &r->nodes[r->n_nodes++];
        d->depth = hits[i].depth;
        d->score = hits[i].score;
        d->name = dm_strdup(graph_node_name(g, hits[i].node));
        d->type = dm_strdup(type_name(graph_node_type_of(g, hits[i].node)));
        if (!d->name || !d->type)
            rc = DM_ENOMEM;
    }
    /* Edges whose two ends are both among the nodes, each once. */
    size_t cap = 0;
    uint32_t *adj = n ? dm_malloc(sizeof *adj * 256) : NULL;
    for (size_t i = 0; i < n && !rc; i++) {
        size_t na = graph_neighbours(g, hits[i].node, adj, 256);
        if (na > 256)
            na = 256;
        for (size_t j = 0; j < na && !rc; j++) {
            graph_edge e;
            if (!graph_edge_get(g, adj[j], &e) || e.src != hits[i].node)
                continue; /* each edge from its source's side */
            bool in = false;
            for (size_t k = 0; k < n && !in; k++)
                in = hits[k].node == e.dst;
            if (!in)
                continue;
            if (r->n_edges == cap) {
                size_t nc = cap ? cap * 2 : 16;
                dm_graph_edge *ne = dm_realloc(r->edges, nc * sizeof *ne);
                if (!ne) {
                    rc = DM_ENOMEM;
                    break;
                }
                r->edges = ne;
                cap = nc;
            }
            dm_graph_edge *d = &r->edges[r->n_edges++];
            memset(d, 0, sizeof *d);
            d->weight = e.weight;
            d->time_us = e.time_us;
            d->src = dm_strdup(graph_node_name(g, e.src));
            d->rel = dm_strdup(e.rel);
            d->dst = dm_strdup(graph_node_name(g, e.dst));
            d->sources = e.n_sources ? dm_malloc(e.n_sources * sizeof *d->sources) : NULL;
            if (!d->src || !d->rel || !d->dst || (e.n_sources && !d->sources)) {
                rc = DM_ENOMEM;
                break;
            }
            for (uint32_t s = 0; s < e.n_sources; s++)
                memcpy(d->sources[s].bytes, e.sources[s], 16);
            d->n_sources = e.n_sources;
        }
    }
    dm_free(adj);
    if (rc || (n && !adj)) {
        dm_graph_result_free(r);
        return err_set_msg(DM_ENOMEM, "out of memory");
    }
    *out = r;
    return DM_OK;
}

static int with_graph(dm_db *db, const char *tenant, const char *user_id, const char *entity,
                      const char *text, uint32_t depth, dm_graph_result **out)
{
    if (out)
        *out = NULL;
    if (!db || !out)
        return err_set_msg(DM_EINVAL, "graph: no database or output");
    eng_user *u = NULL;
    int rc = eng_scope_user(db, tenant, user_id, &u);
    if (!rc)
        rc = eng_user_lock_facts(db, u);
    if (rc)
        return rc;
    if (!u->exists) {
        eng_user_unlock(u);
        return eng_unknown_user(tenant ? tenant : DM_DEFAULT_TENANT, user_id);
    }
    const graph *g = u->graph;
    graph_hit *hits = dm_malloc(sizeof *hits * MAX_NODES);
    size_t n = 0;
    if (!hits) {
        eng_user_unlock(u);
        return err_set_msg(DM_ENOMEM, "out of memory");
    }
    if (g && text) {
        uint32_t found[MAX_NODES];
        n = graph_find_text(g, text, strlen(text), found, MAX_NODES);
        if (n > MAX_NODES)
            n = MAX_NODES;
        for (size_t i = 0; i < n; i++)
            hits[i] = (graph_hit){ found[i], 1.0f, 0, GRAPH_NONE };
    } else if (g) {
        const char *name = entity && entity[0] ? entity : ENG_USER_NODE;
        uint32_t start = graph_find(g, name, strlen(name));
        if (start != GRAPH_NONE) {
            n = graph_walk(g, &start, 1, depth, 64, 1.0f, hits, MAX_NODES);
            if (n > MAX_NODES)
                n = MAX_NODES;
        }
    }
    rc = copy_out(g, hits, g ? n : 0, out);
    eng_user_unlock(u);
    dm_free(hits);
    return rc;
}

int dm_graph_neighbours(dm_db *db, const char *tenant, const char *user_id, const char *entity,
                        uint32_t depth, dm_graph_result **out)
{
    if (depth < 1 || depth > 5) {
        if (out)
            *out = NULL;
        return err_set_msg(DM_EINVAL, "graph: depth %u is not in 1..5", depth);
    }
    return with_graph(db, tenant, user_id, entity, NULL, depth, out);
}

int dm_graph_search(dm_db *db, const char *tenant, const char *user_id, const char *text,
                    dm_graph_result **out)
{
    if (!text) {
        if (out)
            *out = NULL;
        return err_set_msg(DM_EINVAL, "graph: no text to search");
    }
    return with_graph(db, tenant, user_id, NULL, text, 0, out);
}
