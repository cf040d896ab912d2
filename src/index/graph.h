/*
 * graph.h -- a user's knowledge graph in memory: entities and concepts as
 * nodes (with aliases), typed weighted edges between them with time and
 * the memories they came from, and bounded multi-hop traversal.
 *
 * The engine builds one graph per user from the user's facts (every
 * current fact subject -slot-> value is an edge; subject "" is the user's
 * own node) and keeps it up to date as facts change.  Retrieval's graph
 * leg seeds a walk with the entities named in the query (graph_find_text)
 * plus the user's node, and turns the edges it crosses into candidate
 * memories (their sources), scored by the walk.
 *
 * Names are matched in normalized form: case-folded, accents stripped,
 * punctuation and leading articles dropped, and company suffixes ignored
 * ("Acme" = "Acme Corp" = "ACME Inc.").  Resolution by embedding
 * similarity is the caller's business (graph_alias ties a name to a node).
 *
 * Thread safety: none inside; the engine guards a user's graph with the
 * user's lock (readers share it: every const function is safe to call
 * from several threads at once while no one writes).
 */
#ifndef DM_INDEX_GRAPH_H
#define DM_INDEX_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GRAPH_NONE UINT32_MAX

typedef struct graph graph;

typedef enum graph_node_type {
    GRAPH_PERSON = 0,
    GRAPH_ORG = 1,
    GRAPH_PLACE = 2,
    GRAPH_PRODUCT = 3,
    GRAPH_CONCEPT = 4,
    GRAPH_USER = 5, /* the user the graph belongs to */
} graph_node_type;

/* One edge as stored. */
typedef struct graph_edge {
    uint32_t src, dst;       /* node ids */
    const char *rel;         /* "works_at", "location.city", "family.sister" */
    float weight;            /* 0..1: the confidence of the fact */
    int64_t time_us;         /* when it became true */
    const uint8_t (*sources)[16]; /* memory ids; borrowed from the graph */
    uint32_t n_sources;
} graph_edge;

/* A node reached by a walk. */
typedef struct graph_hit {
    uint32_t node;
    float score;    /* 1 for a seed; times edge weight times decay per hop,
                       the best path's */
    uint32_t depth; /* hops from the nearest seed */
    uint32_t via;   /* the edge (graph_edge_get index) it was reached by;
                       GRAPH_NONE for a seed */
} graph_hit;

/* graph_new -- an empty graph; NULL on DM_ENOMEM. */
graph *graph_new(void);
void graph_free(graph *g); /* NULL does nothing */

/*
 * graph_node -- the node called name, created with type if there is none
 * (an existing node keeps its type, except that CONCEPT is upgraded to a
 * more specific type).  *out its id.  Errors: DM_EINVAL (empty name after
 * normalization), DM_ENOMEM.
 */
int graph_node(graph *g, const char *name, graph_node_type type, uint32_t *out);

/* graph_alias -- name also refers to node.  Errors: DM_EINVAL (empty, or
 * already the name or alias of another node), DM_ENOMEM. */
int graph_alias(graph *g, uint32_t node, const char *name);

/* graph_find -- the node called name (or with that alias); GRAPH_NONE. */
uint32_t graph_find(const graph *g, const char *name, size_t len);

/* The node's canonical name (as first given) and type. */
const char *graph_node_name(const graph *g, uint32_t node);
graph_node_type graph_node_type_of(const graph *g, uint32_t node);
size_t graph_n_nodes(const graph *g);
size_t graph_n_edges(const graph *g);

/*
 * graph_edge_add -- the edge src -rel-> dst; the same (src, rel, dst)
 * again merges: weight = 1 - (1 - a)(1 - b), the time kept the earliest,
 * the source added once.  source may be NULL.  Errors: DM_EINVAL (bad node
 * ids, empty rel), DM_ENOMEM.
 */
int graph_edge_add(graph *g, uint32_t src, const char *rel, uint32_t dst, float weight,
                   int64_t time_us, const uint8_t source[16]);

/* graph_edge_remove -- drops the edge src -rel-> dst (a fact that ended);
 * false when there was none. */
bool graph_edge_remove(graph *g, uint32_t src, const char *rel, uint32_t dst);

/* graph_edge_get -- edge i (0 <= i < graph_n_edges; ids may have holes
 * after removals: false for a removed one). */
bool graph_edge_get(const graph *g, uint32_t i, graph_edge *out);

/*
 * graph_neighbours -- the edges touching node (both directions), into out
 * (edge indexes), up to max; returns how many there are in all.
 */
size_t graph_neighbours(const graph *g, uint32_t node, uint32_t *out, size_t max);

/*
 * graph_walk -- breadth-first from the seeds over edges in both
 * directions, at most max_depth hops and max_fanout edges per node (the
 * heaviest first), each hop multiplying the score by the edge's weight and
 * by decay.  Writes the reached nodes (seeds included) into out, best
 * score first, up to max; returns how many were reached.  Deterministic:
 * ties are broken by node id.  Errors reported as 0 results (DM_ENOMEM is
 * the only possible one; err_last_msg says so).
 */
size_t graph_walk(const graph *g, const uint32_t *seeds, size_t n_seeds, uint32_t max_depth,
                  uint32_t max_fanout, float decay, graph_hit *out, size_t max);

/*
 * graph_find_text -- the nodes whose name or an alias occurs in text as
 * whole words (normalized; the longest match wins where names overlap),
 * into out up to max; returns how many were found.  For seeding a walk
 * from a query.
 */
size_t graph_find_text(const graph *g, const char *text, size_t len, uint32_t *out,
                       size_t max);

#endif
