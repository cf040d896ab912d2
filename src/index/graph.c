/*
 * graph.c -- a user's knowledge graph in memory: named nodes, typed
 * weighted edges, lookup of names in free text, and bounded best-path
 * walks.
 *
 * What.  Nodes are entities and concepts (people, organisations, places,
 * the user) with a canonical name and any number of aliases; edges are the
 * user's current facts, subject -rel-> value, each with a weight (the
 * fact's confidence), the time it became true and the memories it came
 * from.  The engine keeps one graph per user and asks three things of it:
 * which node a name means (graph_find), which nodes a query mentions
 * (graph_find_text), and which nodes lie near those (graph_walk).
 *
 * Names.  A name's key is facts_norm(name) (case-folded, accents
 * stripped, punctuation and one leading article dropped) with one trailing
 * company-suffix word removed when another word precedes it ("acme corp"
 * -> "acme").  Two names have equal keys exactly when facts_entity_match
 * says they name the same entity (equal normalized forms have equal
 * stripped forms, and the stripped form is never empty), so the graph and
 * the facts agree on identity.  The key is capped at facts.c's 255 bytes
 * for the same reason.  Canonical names and aliases share one table: a key
 * belongs to one node.
 *
 * Walk score.  From each node u the walk may leave through u's first
 * max_fanout edges in the order (weight descending, edge id ascending),
 * whichever direction they point; a hop over edge e multiplies the score
 * by weight(e) and then by decay, in float, in that order:
 *
 *   score(seed) = 1
 *   score(v)    = max over walks seed = v0, v1, ..., vk = v with
 *                 1 <= k <= max_depth, each hop vi -> vi+1 over one of
 *                 vi's first max_fanout edges, of
 *                 (...((1 * w1) * decay) * w2) * decay ...) * wk) * decay
 *
 * so "user works_at(0.9) Acme Corp industry(0.8) healthcare" with decay
 * 0.5 gives healthcare 0.9 * 0.5 * 0.8 * 0.5 = 0.18 at depth 2.  Weights
 * and decay lie in [0, 1], so no walk beats a seed's 1 and longer walks
 * never score more than their prefixes.  A hit's via is the last edge of
 * its best walk; among equally good walks the one with fewer hops wins,
 * then the smaller last edge id.  Its depth is the number of hops of the
 * shortest walk that reaches it under the same fan-out rule (BFS level).
 * Hits are returned best score first, ties by smaller node id.
 *
 * Design.
 *   - Nodes and edges are arrays indexed by id.  Nodes are never removed;
 *     a removed edge's slot goes on a free list threaded through the dead
 *     slots (src = GRAPH_NONE, dst = next free id) and is reused by the
 *     next new edge, so ids stay dense and removal needs no allocation.
 *   - Each node keeps the edges touching it (both directions, a self-loop
 *     once) as (edge id, other end, weight) entries sorted by (weight
 *     descending, id ascending): a walk's fan-out is then the list's first
 *     max_fanout entries, read from one array with no sorting and no
 *     visit to the edge records.  Merges only raise a weight, so an entry
 *     only moves towards the front.
 *   - Name keys and relation names live in open-addressing string tables
 *     (linear probing, load at most 0.7) whose key bytes sit in one
 *     growing buffer.  The name hash is built word by word
 *     (h = step(h, hash(word))), so graph_find_text can hash any run of a
 *     query's words from per-word hashes without rebuilding strings.
 *   - Edges are found by (src, rel, dst) through a third table of edge ids
 *     (linear probing with backward-shift deletion, load at most 0.5).
 *   - graph_find_text folds the query once (ASCII: lower-casing only,
 *     which is what facts_norm's Unicode folding does to ASCII; otherwise
 *     utf8proc with facts_norm's options) and splits it into words by
 *     facts_norm's rules, except that Unicode punctuation and spaces also
 *     separate words (so a name in curly quotes is found) while a right
 *     single quote inside a word stays in it.  Every run of up to
 *     (longest key in words) + 2 words is then tried against the name
 *     table with the same article and company-suffix dropping as the keys
 *     had; a run ending in a possessive ("Ann's") is also tried without
 *     it.  A one-hash Bloom filter of all key words (1/16 of its bits set
 *     at most) ends a run at the first word no key contains, so most
 *     query words cost one bit test.  Matches are chosen longest first
 *     (then leftmost) among those that do not overlap an already chosen
 *     one.  Nothing scans the names: a 20-word query against 1,000 names
 *     takes about 1 us.
 *   - graph_walk is Bellman-Ford by hop count restricted to the nodes a
 *     round improved: round k relaxes, from every node whose score rose in
 *     round k - 1, its fan-out edges using the score it had at the end of
 *     round k - 1.  That computes exactly the best score over walks of at
 *     most k hops, and each node is expanded at most once per round.
 *     Walk state (a node -> state hash, the states and two frontiers)
 *     starts in stack buffers and moves to the heap only for large walks.
 *     The hits are ranked by one 64-bit key per hit (inverted score bits,
 *     node id), sorted without data-dependent branches (sort_keys).  On a
 *     1,000-node graph, depth 2 and fan-out 16 take about 1 us, depth 3
 *     2.5 us for a hundred nodes reached.
 *
 * Invariants: every live edge's id is in the adjacency of its src and of
 * its dst (once for a self-loop) and in the edge table; adjacency lists
 * are sorted as above; every node's canonical key maps to it in the name
 * table; weights are in [0, 1]; max_key_words is at least the word count
 * of every key.
 *
 * Ownership: graph_node_name, graph_edge_get's rel and sources point into
 * the graph; they are borrowed and valid until the next change of the
 * graph (graph_node, graph_alias, graph_edge_add, graph_edge_remove) or
 * graph_free.
 *
 * Locking: none inside.  The const functions only read the graph (walk
 * and text state lives on the caller's stack or in per-call allocations),
 * so any number of them may run at once while nothing changes it; changes
 * need exclusive access (the engine holds the user's lock).
 *
 * Format owned: none (the engine rebuilds the graph from the user's facts).
 */
#include "index/graph.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "base/alloc.h"
#include "base/err.h"
#include "cognitive/facts.h"

/* facts.c normalizes into 256 bytes (NORM_MAX); names must be cut at the
 * same length to be the same names. */
#define KEY_CAP 256
#define NAME_STACK 512    /* graph_find copies shorter names to the stack */
#define TEXT_STACK 1024   /* graph_find_text folds shorter texts on the stack */
#define WORDS_STACK 128
#define MATCH_STACK 128
#define WALK_STACK 128    /* walk states before moving to the heap */
#define WALK_MAP_SHIFT 24 /* 32 - log2(2 * WALK_STACK) */
#define RADIX_MIN 192     /* hits from which sort_keys uses the radix sort */

/* ------------------------------------------------------------- types */

/* An edge as seen from one of its ends; the other end and the weight are
 * copied here so that a walk reads one array per node it expands. */
typedef struct gadj {
    uint32_t e;     /* edge id */
    uint32_t other; /* the node at the other end (the node itself for a
                       self-loop) */
    float w;        /* the edge's weight */
} gadj;

typedef struct gnode {
    char *name;     /* canonical, as first given */
    gadj *adj;      /* the edges touching the node, heaviest first */
    uint32_t n_adj, cap_adj;
    uint8_t type;   /* graph_node_type */
} gnode;

typedef struct gedge {
    uint32_t src, dst;  /* src GRAPH_NONE: a free slot, dst the next free */
    uint32_t rel;       /* offset of the relation name in rels.keys */
    float weight;
    int64_t time_us;
    uint8_t (*sources)[16];
    uint32_t n_sources, cap_sources;
} gedge;

/* A string table slot; len 0 marks an empty slot (keys are never empty). */
typedef struct slot {
    uint32_t h;   /* low 32 bits of the key's hash */
    uint32_t off; /* key bytes at keys + off, NUL-terminated */
    uint32_t len;
    uint32_t val;
} slot;

typedef struct strmap {
    slot *s;
    uint32_t cap, n; /* cap a power of two, or 0 */
    char *keys;
    size_t keys_len, keys_cap;
} strmap;

struct graph {
    gnode *nodes;
    uint32_t n_nodes, cap_nodes;
    gedge *edges;
    uint32_t n_edges;   /* id range, free slots included */
    uint32_t cap_edges;
    uint32_t n_live;    /* edges in use */
    uint32_t free_head; /* first free slot, GRAPH_NONE = none */
    uint32_t *etab;     /* edge ids by (src, rel, dst); GRAPH_NONE = empty */
    uint32_t etab_cap;
    strmap names;       /* name key -> node id */
    strmap rels;        /* relation name -> its own offset in rels.keys */
    uint32_t max_key_words;
    /* A one-hash Bloom filter of the words of all name keys, so that
     * graph_find_text skips runs of words that cannot name anything. */
    uint64_t *vocab;
    uint32_t vocab_shift; /* 64 - log2(bits) */
    uint32_t n_vocab;     /* words added (repeats included) */
};

/* ------------------------------------------------------------- hashing */

static uint64_t bytes_hash(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
    return h;
}

#define KEY_SEED 0x243f6a8885a308d3ull

static inline uint64_t key_step(uint64_t h, uint64_t word_h)
{
    h = (h ^ word_h) * 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 31);
}

static inline uint64_t key_final(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

/* The hash of a name key: its space-separated words, one step each. */
static uint64_t key_hash(const char *k, size_t len, uint32_t *n_words)
{
    uint64_t h = KEY_SEED;
    uint32_t nw = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || k[i] == ' ') {
            h = key_step(h, bytes_hash(k + start, i - start));
            nw++;
            start = i + 1;
        }
    }
    if (n_words)
        *n_words = nw;
    return key_final(h);
}

static uint64_t edge_hash(uint32_t src, uint32_t rel, uint32_t dst)
{
    uint64_t h = ((uint64_t)src << 32 | dst) * 0x9e3779b97f4a7c15ull;
    h ^= (uint64_t)rel * 0xc2b2ae3d27d4eb4full;
    return key_final(h);
}

/* ------------------------------------------------------------- string tables */

/* The slot holding key, or the empty slot where it would go. */
static uint32_t map_probe(const strmap *m, uint64_t h, const char *k, size_t len)
{
    uint32_t mask = m->cap - 1, i = (uint32_t)h & mask;
    for (;; i = (i + 1) & mask) {
        const slot *s = &m->s[i];
        if (!s->len)
            return i;
        if (s->h == (uint32_t)h && s->len == len && !memcmp(m->keys + s->off, k, len))
            return i;
    }
}

static uint32_t map_get(const strmap *m, uint64_t h, const char *k, size_t len)
{
    if (!m->cap)
        return GRAPH_NONE;
    const slot *s = &m->s[map_probe(m, h, k, len)];
    return s->len ? s->val : GRAPH_NONE;
}

/* map_reserve -- room for one more key of len bytes, so that map_put
 * cannot fail.  On DM_ENOMEM the table is unchanged (a grown key buffer
 * is only spare room). */
static int map_reserve(strmap *m, size_t len, const char *what)
{
    if (m->keys_len + len + 1 > m->keys_cap) {
        size_t cap = m->keys_cap ? m->keys_cap : 256;
        while (cap < m->keys_len + len + 1)
            cap *= 2;
        if (cap > UINT32_MAX)
            return err_set_msg(DM_ENOMEM, "graph: %s table exceeds 4 GiB of keys", what);
        char *k = dm_realloc(m->keys, cap);
        if (!k)
            return err_set_msg(DM_ENOMEM, "graph: no memory for %s key bytes (%zu)", what,
                               cap);
        m->keys = k;
        m->keys_cap = cap;
    }
    if ((uint64_t)(m->n + 1) * 10 > (uint64_t)m->cap * 7) {
        uint32_t cap = m->cap ? m->cap * 2 : 16;
        slot *s = dm_calloc(cap, sizeof *s);
        if (!s)
            return err_set_msg(DM_ENOMEM, "graph: no memory for a %s table of %u slots",
                               what, cap);
        for (uint32_t i = 0; i < m->cap; i++) {
            if (!m->s[i].len)
                continue;
            uint32_t j = m->s[i].h & (cap - 1);
            while (s[j].len)
                j = (j + 1) & (cap - 1);
            s[j] = m->s[i];
        }
        dm_free(m->s);
        m->s = s;
        m->cap = cap;
    }
    return DM_OK;
}

/* map_put -- adds key (absent) -> val; after map_reserve.  Returns the
 * key's offset in the key buffer. */
static uint32_t map_put(strmap *m, uint64_t h, const char *k, size_t len, uint32_t val)
{
    uint32_t i = map_probe(m, h, k, len);
    uint32_t off = (uint32_t)m->keys_len;
    memcpy(m->keys + off, k, len);
    m->keys[off + len] = 0;
    m->keys_len += len + 1;
    m->s[i] = (slot){ .h = (uint32_t)h, .off = off, .len = (uint32_t)len, .val = val };
    m->n++;
    return off;
}

static void map_fini(strmap *m)
{
    dm_free(m->s);
    dm_free(m->keys);
}

/* ------------------------------------------------------------- names */

static bool word_in(const char *w, size_t n, const char *const *list, size_t n_list)
{
    if (!n || n > 12)
        return false;
    /* strncmp stops at the list word's end, so list[i][n] is read only
     * when the list word is at least n long. */
    for (size_t i = 0; i < n_list; i++)
        if (list[i][0] == w[0] && !strncmp(list[i], w, n) && !list[i][n])
            return true;
    return false;
}

/* facts.c drops the same suffixes (strip_company) and articles
 * (facts_norm); the lists must stay equal for identities to agree. */
static const char *const company_words[] = { "corp", "corporation", "inc", "incorporated",
                                             "llc",  "ltd",         "limited", "co",
                                             "company", "group",    "plc",  "gmbh",
                                             "ag",   "sa" };
static const char *const article_words[] = { "the", "a", "an", "my" };
#define N_COMPANY (sizeof company_words / sizeof *company_words)
#define N_ARTICLE (sizeof article_words / sizeof *article_words)

/* name_key -- the key of name into out[KEY_CAP]; its length (0 = empty). */
static size_t name_key(const char *name, char *out)
{
    facts_norm(name, out, KEY_CAP);
    size_t n = strlen(out), sp = n;
    while (sp > 0 && out[sp - 1] != ' ')
        sp--;
    /* sp > 1: a word precedes the space (keys have no leading space). */
    if (sp > 1 && word_in(out + sp, n - sp, company_words, N_COMPANY)) {
        n = sp - 1;
        out[n] = 0;
    }
    return n;
}

static inline bool vocab_has(const graph *g, uint64_t word_h)
{
    uint64_t b = word_h >> g->vocab_shift;
    return g->vocab[b >> 6] >> (b & 63) & 1;
}

static void vocab_add_key(uint64_t *v, uint32_t shift, const char *k, size_t len)
{
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || k[i] == ' ') {
            uint64_t b = bytes_hash(k + start, i - start) >> shift;
            v[b >> 6] |= UINT64_C(1) << (b & 63);
            start = i + 1;
        }
    }
}

/* vocab_reserve -- room for nw more words at no more than 1/16 of the
 * bits set; a larger filter is rebuilt from the keys. */
static int vocab_reserve(graph *g, uint32_t nw)
{
    uint64_t need = ((uint64_t)g->n_vocab + nw) * 16;
    uint64_t bits = g->vocab ? UINT64_C(1) << (64 - g->vocab_shift) : 0;
    if (need <= bits)
        return DM_OK;
    uint32_t shift = 64 - 10; /* 1024 bits at least */
    while ((UINT64_C(1) << (64 - shift)) < need && shift > 33)
        shift--;
    if (g->vocab && shift == g->vocab_shift)
        return DM_OK; /* at the cap (2^31 bits): only fuller */
    uint64_t *v = dm_calloc((size_t)1 << (64 - shift - 6), sizeof *v);
    if (!v)
        return err_set_msg(DM_ENOMEM, "graph: no memory for a word filter of %llu bits",
                           (unsigned long long)(UINT64_C(1) << (64 - shift)));
    for (uint32_t i = 0; i < g->names.cap; i++)
        if (g->names.s[i].len)
            vocab_add_key(v, shift, g->names.keys + g->names.s[i].off, g->names.s[i].len);
    dm_free(g->vocab);
    g->vocab = v;
    g->vocab_shift = shift;
    return DM_OK;
}

static inline bool node_ok(const graph *g, uint32_t node)
{
    return g && node < g->n_nodes;
}

graph *graph_new(void)
{
    graph *g = dm_calloc(1, sizeof *g);
    if (!g) {
        err_set_msg(DM_ENOMEM, "graph: no memory for a new graph");
        return NULL;
    }
    g->free_head = GRAPH_NONE;
    return g;
}

void graph_free(graph *g)
{
    if (!g)
        return;
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        dm_free(g->nodes[i].name);
        dm_free(g->nodes[i].adj);
    }
    for (uint32_t i = 0; i < g->n_edges; i++)
        dm_free(g->edges[i].sources);
    dm_free(g->nodes);
    dm_free(g->edges);
    dm_free(g->etab);
    map_fini(&g->names);
    map_fini(&g->rels);
    dm_free(g->vocab);
    dm_free(g);
}

int graph_node(graph *g, const char *name, graph_node_type type, uint32_t *out)
{
    char key[KEY_CAP];
    char *copy = NULL;
    int rc;
    if (out)
        *out = GRAPH_NONE;
    if (!g || !name || !out)
        return err_set_msg(DM_EINVAL, "graph_node: graph, name and out are required");
    if ((unsigned)type > GRAPH_USER)
        return err_set_msg(DM_EINVAL, "graph_node: node type %d of \"%s\" is not a type",
                           (int)type, name);
    size_t len = name_key(name, key);
    if (!len)
        return err_set_msg(DM_EINVAL, "graph_node: name \"%s\" is empty once normalized", name);
    uint32_t nw;
    uint64_t h = key_hash(key, len, &nw);
    uint32_t id = map_get(&g->names, h, key, len);
    if (id != GRAPH_NONE) {
        /* A more specific reading of a concept wins; other types stay. */
        if (g->nodes[id].type == GRAPH_CONCEPT && type != GRAPH_CONCEPT)
            g->nodes[id].type = (uint8_t)type;
        *out = id;
        return DM_OK;
    }
    if (g->n_nodes == GRAPH_NONE - 1)
        return err_set_msg(DM_ENOMEM, "graph_node: the graph is full (%u nodes)", g->n_nodes);
    if (g->n_nodes == g->cap_nodes) {
        uint32_t cap = g->cap_nodes ? g->cap_nodes * 2 : 16;
        if (cap > GRAPH_NONE - 1)
            cap = GRAPH_NONE - 1;
        gnode *n = dm_realloc(g->nodes, (size_t)cap * sizeof *n);
        if (!n) {
            rc = err_set_msg(DM_ENOMEM, "graph_node: no memory for %u nodes", cap);
            goto fail;
        }
        g->nodes = n;
        g->cap_nodes = cap;
    }
    if ((rc = map_reserve(&g->names, len, "name")) < 0 || (rc = vocab_reserve(g, nw)) < 0)
        goto fail;
    if (!(copy = dm_strdup(name))) {
        rc = err_set_msg(DM_ENOMEM, "graph_node: no memory for the name \"%s\"", name);
        goto fail;
    }
    id = g->n_nodes++;
    g->nodes[id] = (gnode){ .name = copy, .type = (uint8_t)type };
    map_put(&g->names, h, key, len, id);
    vocab_add_key(g->vocab, g->vocab_shift, key, len);
    g->n_vocab += nw;
    if (nw > g->max_key_words)
        g->max_key_words = nw;
    *out = id;
    return DM_OK;
fail:
    dm_free(copy);
    return rc;
}

int graph_alias(graph *g, uint32_t node, const char *name)
{
    char key[KEY_CAP];
    if (!node_ok(g, node))
        return err_set_msg(DM_EINVAL, "graph_alias: node %u does not exist", node);
    if (!name)
        return err_set_msg(DM_EINVAL, "graph_alias: no name for node %u", node);
    size_t len = name_key(name, key);
    if (!len)
        return err_set_msg(DM_EINVAL, "graph_alias: alias \"%s\" is empty once normalized",
                           name);
    uint32_t nw;
    uint64_t h = key_hash(key, len, &nw);
    uint32_t id = map_get(&g->names, h, key, len);
    if (id == node)
        return DM_OK;
    if (id != GRAPH_NONE)
        return err_set_msg(DM_EINVAL,
                           "graph_alias: \"%s\" already names node %u (\"%s\"), not %u (\"%s\")",
                           name, id, g->nodes[id].name, node, g->nodes[node].name);
    int rc = map_reserve(&g->names, len, "name");
    if (rc < 0 || (rc = vocab_reserve(g, nw)) < 0)
        return rc;
    map_put(&g->names, h, key, len, node);
    vocab_add_key(g->vocab, g->vocab_shift, key, len);
    g->n_vocab += nw;
    if (nw > g->max_key_words)
        g->max_key_words = nw;
    return DM_OK;
}

uint32_t graph_find(const graph *g, const char *name, size_t len)
{
    char stack[NAME_STACK], key[KEY_CAP];
    if (!g || !name || !g->n_nodes)
        return GRAPH_NONE;
    char *copy = len < sizeof stack ? stack : dm_malloc(len + 1);
    if (!copy)
        return GRAPH_NONE;
    memcpy(copy, name, len);
    copy[len] = 0;
    size_t kl = name_key(copy, key);
    if (copy != stack)
        dm_free(copy);
    if (!kl)
        return GRAPH_NONE;
    return map_get(&g->names, key_hash(key, kl, NULL), key, kl);
}

const char *graph_node_name(const graph *g, uint32_t node)
{
    return node_ok(g, node) ? g->nodes[node].name : NULL;
}

graph_node_type graph_node_type_of(const graph *g, uint32_t node)
{
    return node_ok(g, node) ? (graph_node_type)g->nodes[node].type : GRAPH_CONCEPT;
}

size_t graph_n_nodes(const graph *g)
{
    return g ? g->n_nodes : 0;
}

size_t graph_n_edges(const graph *g)
{
    return g ? g->n_edges : 0;
}

/* ------------------------------------------------------------- edges */

/* a goes before b in adjacency order: heavier, then smaller id. */
static inline bool adj_before(const gadj *a, const gadj *b)
{
    return a->w > b->w || (a->w == b->w && a->e < b->e);
}

static int adj_reserve(gnode *n)
{
    if (n->n_adj < n->cap_adj)
        return DM_OK;
    uint32_t cap = n->cap_adj ? n->cap_adj * 2 : 4;
    gadj *a = dm_realloc(n->adj, (size_t)cap * sizeof *a);
    if (!a)
        return err_set_msg(DM_ENOMEM, "graph_edge_add: no memory for %u edges of node \"%s\"",
                           cap, n->name);
    n->adj = a;
    n->cap_adj = cap;
    return DM_OK;
}

/* Inserts the entry in its place; after adj_reserve. */
static void adj_insert(gnode *n, gadj x)
{
    uint32_t i = n->n_adj;
    while (i > 0 && adj_before(&x, &n->adj[i - 1])) {
        n->adj[i] = n->adj[i - 1];
        i--;
    }
    n->adj[i] = x;
    n->n_adj++;
}

static void adj_remove(gnode *n, uint32_t e)
{
    for (uint32_t i = 0; i < n->n_adj; i++) {
        if (n->adj[i].e == e) {
            memmove(n->adj + i, n->adj + i + 1, (size_t)(n->n_adj - i - 1) * sizeof *n->adj);
            n->n_adj--;
            return;
        }
    }
}

/* Gives e its new weight w (higher than before) and moves it forward. */
static void adj_raise(gnode *n, uint32_t e, float w)
{
    uint32_t i = 0;
    while (n->adj[i].e != e)
        i++;
    gadj x = n->adj[i];
    x.w = w;
    while (i > 0 && adj_before(&x, &n->adj[i - 1])) {
        n->adj[i] = n->adj[i - 1];
        i--;
    }
    n->adj[i] = x;
}

/* The edge-table slot of (src, rel, dst), or the empty slot for it. */
static uint32_t etab_probe(const graph *g, uint32_t src, uint32_t rel, uint32_t dst)
{
    uint32_t mask = g->etab_cap - 1, i = (uint32_t)edge_hash(src, rel, dst) & mask;
    for (;; i = (i + 1) & mask) {
        uint32_t e = g->etab[i];
        if (e == GRAPH_NONE)
            return i;
        const gedge *x = &g->edges[e];
        if (x->src == src && x->dst == dst && x->rel == rel)
            return i;
    }
}

static uint32_t edge_find(const graph *g, uint32_t src, uint32_t rel, uint32_t dst)
{
    if (!g->etab_cap)
        return GRAPH_NONE;
    return g->etab[etab_probe(g, src, rel, dst)];
}

static int etab_reserve(graph *g)
{
    if ((uint64_t)(g->n_live + 1) * 2 <= g->etab_cap)
        return DM_OK;
    uint32_t cap = g->etab_cap ? g->etab_cap * 2 : 16;
    uint32_t *t = dm_malloc((size_t)cap * sizeof *t);
    if (!t)
        return err_set_msg(DM_ENOMEM, "graph_edge_add: no memory for an edge table of %u slots",
                           cap);
    memset(t, 0xff, (size_t)cap * sizeof *t);
    for (uint32_t i = 0; i < g->etab_cap; i++) {
        uint32_t e = g->etab[i];
        if (e == GRAPH_NONE)
            continue;
        const gedge *x = &g->edges[e];
        uint32_t j = (uint32_t)edge_hash(x->src, x->rel, x->dst) & (cap - 1);
        while (t[j] != GRAPH_NONE)
            j = (j + 1) & (cap - 1);
        t[j] = e;
    }
    dm_free(g->etab);
    g->etab = t;
    g->etab_cap = cap;
    return DM_OK;
}

/* Linear probing deletion by backward shift: later entries of the run
 * move into the hole when their home slot allows it. */
static void etab_delete(graph *g, uint32_t i)
{
    uint32_t mask = g->etab_cap - 1;
    for (uint32_t j = (i + 1) & mask;; j = (j + 1) & mask) {
        uint32_t e = g->etab[j];
        if (e == GRAPH_NONE)
            break;
        const gedge *x = &g->edges[e];
        uint32_t home = (uint32_t)edge_hash(x->src, x->rel, x->dst) & mask;
        /* e may fill the hole at i unless its home lies in (i, j]. */
        if (((j - home) & mask) >= ((j - i) & mask)) {
            g->etab[i] = e;
            i = j;
        }
    }
    g->etab[i] = GRAPH_NONE;
}

static bool id_zero(const uint8_t id[16])
{
    for (int i = 0; i < 16; i++)
        if (id[i])
            return false;
    return true;
}

/* Adds source to e unless it is there already. */
static int add_source(gedge *e, const uint8_t source[16])
{
    for (uint32_t i = 0; i < e->n_sources; i++)
        if (!memcmp(e->sources[i], source, 16))
            return DM_OK;
    if (e->n_sources == e->cap_sources) {
        uint32_t cap = e->cap_sources ? e->cap_sources * 2 : 1;
        uint8_t(*s)[16] = dm_realloc(e->sources, (size_t)cap * 16);
        if (!s)
            return err_set_msg(DM_ENOMEM, "graph_edge_add: no memory for %u sources of an edge",
                               cap);
        e->sources = s;
        e->cap_sources = cap;
    }
    memcpy(e->sources[e->n_sources++], source, 16);
    return DM_OK;
}

int graph_edge_add(graph *g, uint32_t src, const char *rel, uint32_t dst, float weight,
                   int64_t time_us, const uint8_t source[16])
{
    int rc;
    if (!g)
        return err_set_msg(DM_EINVAL, "graph_edge_add: no graph");
    if (!node_ok(g, src) || !node_ok(g, dst))
        return err_set_msg(DM_EINVAL, "graph_edge_add: node %u or %u does not exist (%u nodes)",
                           src, dst, g->n_nodes);
    if (!rel || !*rel)
        return err_set_msg(DM_EINVAL, "graph_edge_add: empty relation from node %u to %u", src,
                           dst);
    if (isnan(weight))
        return err_set_msg(DM_EINVAL, "graph_edge_add: weight of %s edge is not a number", rel);
    /* Confidences are probabilities; outside [0, 1] they would break the
     * walk's bound (no walk beats a seed) and the noisy-or merge. */
    weight = !(weight > 0) ? 0.0f : weight > 1 ? 1 : weight; /* -0 becomes 0 */
    if (source && id_zero(source))
        source = NULL; /* zeros mean "no memory", as in the facts */

    size_t rel_len = strlen(rel);
    if (rel_len >= UINT32_MAX)
        return err_set_msg(DM_EINVAL, "graph_edge_add: relation name of %zu bytes", rel_len);
    uint64_t rh = key_hash(rel, rel_len, NULL);
    uint32_t rel_off = map_get(&g->rels, rh, rel, rel_len);
    if (rel_off != GRAPH_NONE) {
        uint32_t e = edge_find(g, src, rel_off, dst);
        if (e != GRAPH_NONE) {
            gedge *x = &g->edges[e];
            if (source && (rc = add_source(x, source)) < 0)
                return rc;
            float w = 1.0f - (1.0f - x->weight) * (1.0f - weight);
            if (time_us < x->time_us)
                x->time_us = time_us;
            if (w > x->weight) {
                x->weight = w;
                adj_raise(&g->nodes[src], e, w);
                if (dst != src)
                    adj_raise(&g->nodes[dst], e, w);
            }
            return DM_OK;
        }
    } else {
        /* A relation interned here and left unused if a later step fails
         * is harmless: it only takes a few bytes. */
        if ((rc = map_reserve(&g->rels, rel_len, "relation")) < 0)
            return rc;
        rel_off = (uint32_t)g->rels.keys_len;
        map_put(&g->rels, rh, rel, rel_len, rel_off);
    }

    /* Reserve everything, then commit with nothing left to fail. */
    if (g->free_head == GRAPH_NONE && g->n_edges == g->cap_edges) {
        if (g->n_edges == GRAPH_NONE - 1)
            return err_set_msg(DM_ENOMEM, "graph_edge_add: the graph is full (%u edges)",
                               g->n_edges);
        uint32_t cap = g->cap_edges ? g->cap_edges * 2 : 16;
        if (cap > GRAPH_NONE - 1)
            cap = GRAPH_NONE - 1;
        gedge *x = dm_realloc(g->edges, (size_t)cap * sizeof *x);
        if (!x)
            return err_set_msg(DM_ENOMEM, "graph_edge_add: no memory for %u edges", cap);
        g->edges = x;
        g->cap_edges = cap;
    }
    if ((rc = etab_reserve(g)) < 0)
        return rc;
    if ((rc = adj_reserve(&g->nodes[src])) < 0 || (rc = adj_reserve(&g->nodes[dst])) < 0)
        return rc;
    uint8_t(*sources)[16] = NULL;
    if (source) {
        if (!(sources = dm_malloc(16)))
            return err_set_msg(DM_ENOMEM, "graph_edge_add: no memory for the source of %s",
                               rel);
        memcpy(sources[0], source, 16);
    }

    uint32_t e = g->free_head;
    if (e != GRAPH_NONE)
        g->free_head = g->edges[e].dst;
    else
        e = g->n_edges++;
    g->edges[e] = (gedge){ .src = src, .dst = dst, .rel = rel_off, .weight = weight,
                           .time_us = time_us, .sources = sources,
                           .n_sources = source ? 1 : 0, .cap_sources = source ? 1 : 0 };
    g->etab[etab_probe(g, src, rel_off, dst)] = e;
    g->n_live++;
    adj_insert(&g->nodes[src], (gadj){ e, dst, weight });
    if (dst != src)
        adj_insert(&g->nodes[dst], (gadj){ e, src, weight });
    return DM_OK;
}

bool graph_edge_remove(graph *g, uint32_t src, const char *rel, uint32_t dst)
{
    if (!node_ok(g, src) || !node_ok(g, dst) || !rel)
        return false;
    size_t rel_len = strlen(rel);
    uint32_t rel_off = map_get(&g->rels, key_hash(rel, rel_len, NULL), rel, rel_len);
    if (rel_off == GRAPH_NONE || !g->etab_cap)
        return false;
    uint32_t i = etab_probe(g, src, rel_off, dst);
    uint32_t e = g->etab[i];
    if (e == GRAPH_NONE)
        return false;
    etab_delete(g, i);
    adj_remove(&g->nodes[src], e);
    if (dst != src)
        adj_remove(&g->nodes[dst], e);
    gedge *x = &g->edges[e];
    dm_free(x->sources);
    *x = (gedge){ .src = GRAPH_NONE, .dst = g->free_head };
    g->free_head = e;
    g->n_live--;
    return true;
}

bool graph_edge_get(const graph *g, uint32_t i, graph_edge *out)
{
    if (!g || i >= g->n_edges || g->edges[i].src == GRAPH_NONE) {
        if (out)
            memset(out, 0, sizeof *out);
        return false;
    }
    const gedge *x = &g->edges[i];
    if (out)
        *out = (graph_edge){ .src = x->src, .dst = x->dst, .rel = g->rels.keys + x->rel,
                             .weight = x->weight, .time_us = x->time_us,
                             .sources = (const uint8_t(*)[16])x->sources,
                             .n_sources = x->n_sources };
    return true;
}

size_t graph_neighbours(const graph *g, uint32_t node, uint32_t *out, size_t max)
{
    if (!node_ok(g, node))
        return 0;
    const gnode *n = &g->nodes[node];
    size_t k = n->n_adj < max ? n->n_adj : max;
    for (size_t i = 0; i < k; i++)
        out[i] = n->adj[i].e;
    return n->n_adj;
}

/* ------------------------------------------------------------- walk */

typedef struct wstate {
    uint32_t node;
    float score;   /* best so far */
    uint32_t hops; /* of the best walk */
    uint32_t via;  /* its last edge */
    uint32_t depth;
    uint32_t mark; /* the round that last queued it */
} wstate;

/* A frontier entry during the rounds; a sort key afterwards. */
typedef union wfront {
    struct {
        uint32_t st;
        float score; /* the state's score at the end of the previous round */
    } f;
    uint64_t key;
} wfront;

typedef struct walk {
    wstate *st;
    wfront *cur, *next; /* cap entries each */
    uint32_t *map; /* state index by node, GRAPH_NONE = empty */
    uint32_t n, cap, map_cap, n_cur, n_next;
    uint32_t map_shift; /* 32 - log2(map_cap): the hash's top bits index */
    void *heap;    /* the one heap block, once the stack is outgrown */
} walk;

/* Doubles the walk's capacity, moving it to one heap block. */
static int walk_grow(walk *w)
{
    uint32_t cap = w->cap * 2, map_cap = w->map_cap * 2;
    size_t st_b = (size_t)cap * sizeof(wstate), fr_b = (size_t)cap * sizeof(wfront);
    char *blk = dm_malloc(st_b + 2 * fr_b + (size_t)map_cap * sizeof(uint32_t));
    if (!blk)
        return err_set_msg(DM_ENOMEM, "graph_walk: no memory for %u reached nodes", cap);
    wstate *st = (wstate *)blk;
    wfront *cur = (wfront *)(blk + st_b), *next = (wfront *)(blk + st_b + fr_b);
    uint32_t *map = (uint32_t *)(blk + st_b + 2 * fr_b);
    memcpy(st, w->st, (size_t)w->n * sizeof *st);
    memcpy(cur, w->cur, (size_t)w->n_cur * sizeof *cur);
    memcpy(next, w->next, (size_t)w->n_next * sizeof *next);
    memset(map, 0xff, (size_t)map_cap * sizeof *map);
    for (uint32_t i = 0; i < w->n; i++) {
        uint32_t j = (st[i].node * 0x9e3779b1u) >> (w->map_shift - 1);
        while (map[j] != GRAPH_NONE)
            j = (j + 1) & (map_cap - 1);
        map[j] = i;
    }
    dm_free(w->heap);
    *w = (walk){ .st = st, .cur = cur, .next = next, .map = map, .n = w->n, .cap = cap,
                 .map_cap = map_cap, .n_cur = w->n_cur, .n_next = w->n_next,
                 .map_shift = w->map_shift - 1, .heap = blk };
    return DM_OK;
}

/* The state of node, created (score -1) if absent; GRAPH_NONE on
 * DM_ENOMEM. */
static uint32_t walk_state(walk *w, uint32_t node, bool *is_new)
{
    uint32_t j = (node * 0x9e3779b1u) >> w->map_shift;
    for (;; j = (j + 1) & (w->map_cap - 1)) {
        uint32_t i = w->map[j];
        if (i == GRAPH_NONE)
            break;
        if (w->st[i].node == node) {
            *is_new = false;
            return i;
        }
    }
    if (w->n == w->cap) {
        if (walk_grow(w) < 0)
            return GRAPH_NONE;
        j = (node * 0x9e3779b1u) >> w->map_shift;
        while (w->map[j] != GRAPH_NONE)
            j = (j + 1) & (w->map_cap - 1);
    }
    uint32_t i = w->n++;
    w->map[j] = i;
    w->st[i] = (wstate){ .node = node, .score = -1.0f, .via = GRAPH_NONE, .mark = GRAPH_NONE };
    *is_new = true;
    return i;
}

/* The sort key of a hit: ascending keys are best score first, then
 * smaller node id.  Scores are never negative (nor -0), so their bits
 * order like their values. */
static inline uint64_t hit_key(const wstate *s)
{
    uint32_t bits;
    memcpy(&bits, &s->score, sizeof bits);
    return (uint64_t)~bits << 32 | s->node;
}

/* radix_keys -- sorts a[0..n).key ascending, least significant byte
 * first, skipping the bytes all keys share (node ids leave their high
 * bytes zero); tmp (n entries) is scratch. */
static void radix_keys(wfront *a, wfront *tmp, size_t n)
{
    uint32_t cnt[8][256];
    memset(cnt, 0, sizeof cnt);
    for (size_t i = 0; i < n; i++) {
        uint64_t x = a[i].key;
        for (int d = 0; d < 8; d++)
            cnt[d][(x >> (8 * d)) & 255]++;
    }
    wfront *src = a, *dst = tmp;
    for (int d = 0; d < 8; d++) {
        uint32_t *c = cnt[d];
        if (c[(src[0].key >> (8 * d)) & 255] == n)
            continue;
        uint32_t sum = 0;
        for (int b = 0; b < 256; b++) {
            uint32_t t = c[b];
            c[b] = sum;
            sum += t;
        }
        for (size_t i = 0; i < n; i++) {
            uint64_t x = src[i].key;
            dst[c[(x >> (8 * d)) & 255]++].key = x;
        }
        wfront *t = src;
        src = dst;
        dst = t;
    }
    if (src != a)
        memcpy(a, src, n * sizeof *a);
}

/*
 * sort_keys -- the hits' keys into a[0..n), ascending, with tmp (n
 * entries) as scratch.  Comparison sorts lose most of their time to
 * mispredicted or dependent comparisons here (a heap sort made a walk
 * reaching 600 nodes three times slower), so: insertion sort in runs of
 * 4, then a bottom-up merge
 * whose step picks with a conditional move; past RADIX_MIN keys a radix
 * sort, which has no dependent comparisons at all.
 */
static void sort_keys(const wstate *st, size_t n, wfront *a, wfront *tmp)
{
    if (n >= RADIX_MIN) {
        for (size_t i = 0; i < n; i++)
            a[i].key = hit_key(&st[i]);
        radix_keys(a, tmp, n);
        return;
    }
    /* Runs of 4 by insertion, then merges. */
    for (size_t lo = 0; lo < n; lo += 4) {
        size_t hi = lo + 4 < n ? lo + 4 : n;
        for (size_t i = lo; i < hi; i++) {
            uint64_t x = hit_key(&st[i]);
            size_t j = i;
            for (; j > lo && a[j - 1].key > x; j--)
                a[j].key = a[j - 1].key;
            a[j].key = x;
        }
    }
    wfront *src = a, *dst = tmp;
    for (size_t width = 4; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, o = lo;
            while (i < mid && j < hi) {
                uint64_t x = src[i].key, y = src[j].key;
                bool take_j = y < x;
                dst[o++].key = take_j ? y : x;
                j += take_j;
                i += !take_j;
            }
            while (i < mid)
                dst[o++].key = src[i++].key;
            while (j < hi)
                dst[o++].key = src[j++].key;
        }
        wfront *t = src;
        src = dst;
        dst = t;
    }
    if (src != a)
        memcpy(a, src, n * sizeof *a);
}

/* The state index of node (which was reached). */
static uint32_t walk_lookup(const walk *w, uint32_t node)
{
    uint32_t j = (node * 0x9e3779b1u) >> w->map_shift;
    while (w->st[w->map[j]].node != node)
        j = (j + 1) & (w->map_cap - 1);
    return w->map[j];
}

size_t graph_walk(const graph *g, const uint32_t *seeds, size_t n_seeds, uint32_t max_depth,
                  uint32_t max_fanout, float decay, graph_hit *out, size_t max)
{
    wstate st_stack[WALK_STACK];
    wfront cur_stack[WALK_STACK], next_stack[WALK_STACK];
    uint32_t map_stack[2 * WALK_STACK];
    if (!g || !seeds || !n_seeds)
        return 0;
    decay = !(decay > 0) ? 0.0f : decay > 1 ? 1 : decay; /* NaN and -0 too */
    memset(map_stack, 0xff, sizeof map_stack);
    walk w = { .st = st_stack, .cur = cur_stack, .next = next_stack, .map = map_stack,
               .cap = WALK_STACK, .map_cap = 2 * WALK_STACK, .map_shift = WALK_MAP_SHIFT };
    size_t n_out = 0;

    for (size_t i = 0; i < n_seeds; i++) {
        if (seeds[i] >= g->n_nodes)
            continue; /* GRAPH_NONE from a failed lookup: nothing to seed */
        bool is_new;
        uint32_t s = walk_state(&w, seeds[i], &is_new);
        if (s == GRAPH_NONE)
            goto fail;
        if (is_new) {
            w.st[s].score = 1.0f;
            w.st[s].mark = 0;
            w.cur[w.n_cur].f.st = s;
            w.cur[w.n_cur++].f.score = 1.0f;
        }
    }
    for (uint32_t k = 1; k <= max_depth && w.n_cur; k++) {
        w.n_next = 0;
        for (uint32_t f = 0; f < w.n_cur; f++) {
            uint32_t u = w.st[w.cur[f].f.st].node;
            float su = w.cur[f].f.score;
            const gnode *un = &g->nodes[u];
            uint32_t lim = un->n_adj < max_fanout ? un->n_adj : max_fanout;
            for (uint32_t a = 0; a < lim; a++) {
                uint32_t e = un->adj[a].e, v = un->adj[a].other;
                float c = su * un->adj[a].w;
                c = c * decay;
                bool is_new;
                uint32_t s = walk_state(&w, v, &is_new);
                if (s == GRAPH_NONE)
                    goto fail;
                wstate *t = &w.st[s];
                if (is_new)
                    t->depth = k;
                if (c > t->score) {
                    t->score = c;
                    t->hops = k;
                    t->via = e;
                    if (t->mark != k) {
                        t->mark = k;
                        w.next[w.n_next++].f.st = s;
                    }
                } else if (c == t->score && t->hops == k && e < t->via) {
                    t->via = e;
                }
            }
        }
        /* The next round reads the scores as this round left them. */
        for (uint32_t f = 0; f < w.n_next; f++)
            w.next[f].f.score = w.st[w.next[f].f.st].score;
        wfront *t = w.cur;
        w.cur = w.next;
        w.next = t;
        w.n_cur = w.n_next;
    }

    /* The frontier arrays are free now: the best keys go in cur. */
    n_out = w.n;
    size_t k = max < n_out ? max : n_out;
    sort_keys(w.st, w.n, w.cur, w.next);
    for (size_t i = 0; i < k; i++) {
        const wstate *t = &w.st[walk_lookup(&w, (uint32_t)w.cur[i].key)];
        out[i] = (graph_hit){ .node = t->node, .score = t->score, .depth = t->depth,
                              .via = t->via };
    }
    dm_free(w.heap);
    return n_out;
fail:
    dm_free(w.heap);
    return 0;
}

/* ------------------------------------------------------------- text */

typedef struct tword {
    const char *p;
    uint32_t len;      /* bytes */
    uint32_t base_len; /* without a possessive "'s"; == len when none */
    uint64_t h, hb;    /* word hashes of the word and of its base */
    uint8_t is_art, is_suf, base_suf;
    uint8_t is_known, base_known; /* in the word filter (maybe in a key) */
    uint32_t hit;      /* node of the chosen match starting here */
    uint32_t hit_end;  /* its last word */
} tword;

typedef struct tmatch {
    uint32_t i, j, node;
} tmatch;

/* grow_buf -- p (the caller's stack array, or a heap copy of it) with
 * twice *cap elements; NULL on DM_ENOMEM, p then unchanged. */
static void *grow_buf(void *p, uint32_t *cap, size_t elem, const void *stack)
{
    uint32_t ncap = *cap * 2;
    void *q;
    if (p == stack) {
        q = dm_malloc((size_t)ncap * elem);
        if (q)
            memcpy(q, p, (size_t)*cap * elem);
    } else {
        q = dm_realloc(p, (size_t)ncap * elem);
    }
    if (!q) {
        err_set_msg(DM_ENOMEM, "graph_find_text: no memory for %u entries", ncap);
        return NULL;
    }
    *cap = ncap;
    return q;
}

static inline bool ascii_word(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z');
}

/* The length of the character at s[i] (1 for a byte that starts none). */
static size_t char_len(const char *s, size_t n, size_t i)
{
    if ((unsigned char)s[i] < 0x80)
        return 1;
    utf8proc_int32_t cp;
    utf8proc_ssize_t l = utf8proc_iterate((const utf8proc_uint8_t *)s + i,
                                          (utf8proc_ssize_t)(n - i), &cp);
    return l > 0 ? (size_t)l : 1;
}

/* The length of the character at s[i] if it belongs to a word by itself,
 * 0 if it separates words. */
static size_t word_char_plain(const char *s, size_t n, size_t i)
{
    unsigned char c = (unsigned char)s[i];
    if (c < 0x80)
        return ascii_word(c) ? 1 : 0;
    utf8proc_int32_t cp;
    utf8proc_ssize_t l = utf8proc_iterate((const utf8proc_uint8_t *)s + i,
                                          (utf8proc_ssize_t)(n - i), &cp);
    if (l <= 0)
        return 1; /* a stray byte: part of a word, as facts_norm takes it */
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_ZS: case UTF8PROC_CATEGORY_ZL: case UTF8PROC_CATEGORY_ZP:
    case UTF8PROC_CATEGORY_PC: case UTF8PROC_CATEGORY_PD: case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE: case UTF8PROC_CATEGORY_PI: case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
        return 0;
    default:
        return (size_t)l;
    }
}

/* The length of the character at s[i] if it belongs to a word, 0 if it
 * separates words.  inside: the previous character belongs to a word. */
static size_t word_char(const char *s, size_t n, size_t i, bool inside)
{
    size_t l = word_char_plain(s, n, i);
    if (l || !inside)
        return l;
    /* An apostrophe inside a word ("o'brien", "ann's") stays in it. */
    if (s[i] == '\'')
        l = 1;
    else if (n - i >= 3 && !memcmp(s + i, "\xe2\x80\x99", 3)) /* U+2019 */
        l = 3;
    else
        return 0;
    return i + l < n && word_char_plain(s, n, i + l) ? l : 0;
}

/* Does the stored key equal words a..b of w (word j read as its base when
 * poss)? */
static bool key_is_words(const char *k, uint32_t klen, const tword *w, uint32_t a, uint32_t b,
                         uint32_t j, bool poss)
{
    uint32_t o = 0;
    for (uint32_t x = a; x <= b; x++) {
        uint32_t l = x == j && poss ? w[x].base_len : w[x].len;
        if (x > a) {
            if (o >= klen || k[o] != ' ')
                return false;
            o++;
        }
        if (klen - o < l || memcmp(k + o, w[x].p, l))
            return false;
        o += l;
    }
    return o == klen;
}

/* The node named by words i..j (word j read as its base when poss), with
 * the leading article and trailing company word dropped as keys drop
 * them; GRAPH_NONE if none. */
static uint32_t lookup_words(const graph *g, const tword *w, uint32_t i, uint32_t j, bool poss)
{
    uint32_t a = i, b = j;
    if (b > a && w[a].is_art)
        a++;
    if (b > a && (poss && b == j ? w[b].base_suf : w[b].is_suf))
        b--;
    if (b - a + 1 > g->max_key_words)
        return GRAPH_NONE;
    for (uint32_t x = a; x <= b; x++)
        if (!(x == j && poss ? w[x].base_known : w[x].is_known))
            return GRAPH_NONE;
    uint64_t h = KEY_SEED;
    size_t bytes = b - a;
    for (uint32_t x = a; x <= b; x++) {
        bool base = x == j && poss;
        h = key_step(h, base ? w[x].hb : w[x].h);
        bytes += base ? w[x].base_len : w[x].len;
    }
    if (bytes >= KEY_CAP)
        return GRAPH_NONE;
    h = key_final(h);
    const strmap *m = &g->names;
    uint32_t mask = m->cap - 1;
    for (uint32_t s = (uint32_t)h & mask;; s = (s + 1) & mask) {
        const slot *sl = &m->s[s];
        if (!sl->len)
            return GRAPH_NONE;
        if (sl->h == (uint32_t)h && key_is_words(m->keys + sl->off, sl->len, w, a, b, j, poss))
            return sl->val;
    }
}

static int cmp_match(const void *pa, const void *pb)
{
    const tmatch *a = pa, *b = pb;
    uint32_t la = a->j - a->i, lb = b->j - b->i;
    if (la != lb)
        return la > lb ? -1 : 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

size_t graph_find_text(const graph *g, const char *text, size_t len, uint32_t *out,
                       size_t max)
{
    char text_stack[TEXT_STACK];
    tword words_stack[WORDS_STACK];
    tmatch match_stack[MATCH_STACK];
    char *s = NULL;
    bool s_utf8proc = false;
    tword *w = words_stack;
    tmatch *m = match_stack;
    uint32_t w_cap = WORDS_STACK, m_cap = MATCH_STACK, n_w = 0, n_m = 0;
    size_t n = 0, found = 0;
    if (!g || !text || !len || !g->names.n)
        return 0;

    /* Fold the text the way facts_norm folds names. */
    bool ascii = true;
    for (size_t i = 0; i < len && ascii; i++)
        ascii = (unsigned char)text[i] < 0x80;
    if (!ascii) {
        utf8proc_uint8_t *f = NULL;
        utf8proc_ssize_t fl =
            utf8proc_map((const utf8proc_uint8_t *)text, (utf8proc_ssize_t)len, &f,
                         UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_CASEFOLD |
                             UTF8PROC_STRIPMARK);
        if (fl >= 0) {
            s = (char *)f;
            n = (size_t)fl;
            s_utf8proc = true;
        } else if (fl == UTF8PROC_ERROR_NOMEM) {
            err_set_msg(DM_ENOMEM, "graph_find_text: no memory to fold %zu bytes", len);
            goto done;
        }
        /* Invalid UTF-8: like facts_norm, take the bytes as they are. */
    }
    if (!s) {
        s = len <= sizeof text_stack ? text_stack : dm_malloc(len);
        if (!s) {
            err_set_msg(DM_ENOMEM, "graph_find_text: no memory to fold %zu bytes", len);
            goto done;
        }
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)text[i];
            s[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
        n = len;
    }

    /* Words. */
    for (size_t i = 0; i < n;) {
        size_t l = word_char(s, n, i, false);
        if (!l) {
            i += char_len(s, n, i);
            continue;
        }
        size_t start = i;
        while (l) {
            i += l;
            l = i < n ? word_char(s, n, i, true) : 0;
        }
        if (n_w == w_cap) {
            tword *nw = grow_buf(w, &w_cap, sizeof *w, words_stack);
            if (!nw)
                goto done;
            w = nw;
        }
        tword *t = &w[n_w++];
        t->p = s + start;
        t->len = (uint32_t)(i - start);
        t->base_len = t->len;
        if (t->len > 2 && !memcmp(t->p + t->len - 2, "'s", 2))
            t->base_len = t->len - 2;
        else if (t->len > 4 && !memcmp(t->p + t->len - 4, "\xe2\x80\x99s", 4))
            t->base_len = t->len - 4;
        t->h = bytes_hash(t->p, t->len);
        t->hb = t->base_len == t->len ? t->h : bytes_hash(t->p, t->base_len);
        t->is_art = word_in(t->p, t->len, article_words, N_ARTICLE);
        t->is_suf = word_in(t->p, t->len, company_words, N_COMPANY);
        t->base_suf = t->base_len == t->len ? t->is_suf
                                            : word_in(t->p, t->base_len, company_words, N_COMPANY);
        t->is_known = vocab_has(g, t->h);
        t->base_known = t->base_len == t->len ? t->is_known : vocab_has(g, t->hb);
        t->hit = GRAPH_NONE;
    }

    /* Every run of words that names a node (a leading article and a
     * trailing company word may add one word each to the longest key). */
    for (uint32_t i = 0; i < n_w; i++) {
        uint32_t last = i + g->max_key_words + 1;
        if (last >= n_w)
            last = n_w - 1;
        for (uint32_t j = i; j <= last; j++) {
            uint32_t node = lookup_words(g, w, i, j, false);
            if (node == GRAPH_NONE && w[j].base_len != w[j].len)
                node = lookup_words(g, w, i, j, true);
            /* A word no key has ends every longer run from i, unless it
             * is a leading article, which keys drop. */
            bool stop = !w[j].is_known && !(j == i && w[j].is_art);
            if (node == GRAPH_NONE) {
                if (stop)
                    break;
                continue;
            }
            if (n_m == m_cap) {
                tmatch *nm = grow_buf(m, &m_cap, sizeof *m, match_stack);
                if (!nm)
                    goto done;
                m = nm;
            }
            m[n_m++] = (tmatch){ i, j, node };
            if (stop)
                break;
        }
    }

    /* Longest first, then leftmost, each only where no chosen match lies. */
    if (n_m > 1)
        qsort(m, n_m, sizeof *m, cmp_match);
    for (uint32_t x = 0; x < n_m; x++) {
        bool is_free = true;
        /* A chosen match that overlaps this one starts within its span, or
         * is the nearest chosen one to its left and reaches into it
         * (chosen matches do not overlap, so nearer ones end later). */
        for (uint32_t y = m[x].i; y <= m[x].j && is_free; y++)
            is_free = w[y].hit == GRAPH_NONE;
        for (uint32_t y = m[x].i; y-- > 0 && is_free;) {
            if (w[y].hit != GRAPH_NONE) {
                is_free = w[y].hit_end < m[x].i;
                break;
            }
        }
        if (is_free) {
            w[m[x].i].hit = m[x].node;
            w[m[x].i].hit_end = m[x].j;
        }
    }

    /* In text order, each node once; the distinct nodes are gathered in
     * m, whose matches are no longer needed. */
    for (uint32_t i = 0; i < n_w; i++) {
        uint32_t node = w[i].hit;
        if (node == GRAPH_NONE)
            continue;
        bool seen = false;
        for (size_t y = 0; y < found && !seen; y++)
            seen = m[y].node == node;
        if (seen)
            continue;
        m[found].node = node;
        if (found < max)
            out[found] = node;
        found++;
    }

done:
    if (s_utf8proc)
        free(s); /* utf8proc allocates with malloc */
    else if (s != text_stack)
        dm_free(s);
    if (w != words_stack)
        dm_free(w);
    if (m != match_stack)
        dm_free(m);
    return found;
}
