/*
 * bench_bm25.c -- our BM25 index (src/index/bm25.h) against SQLite FTS5
 * with bm25() ranking, on the same corpus and the same queries.
 *
 * DESIGN.  The corpus is short real English lines: by default every
 * Debian changelog on the machine (`zcat /usr/share/doc/x/changelog*.gz`,
 * read through popen), or one line per document from --corpus FILE.  A
 * line is kept when, with surrounding white space removed, it is 20..200
 * bytes long, holds an ASCII letter and is valid UTF-8; exact duplicates
 * are dropped.  The kept lines are shuffled with a fixed seed (so one
 * package's changelog does not form a run of documents) and the first
 * --docs (default 500,000) become documents 0, 1, 2, ...
 *
 * Queries: 2..4 distinct words drawn with a fixed seed from the
 * corpus's mid-frequency vocabulary -- lower-case ASCII words of 3..20
 * letters that are not stop words and occur in between N/10,000 and N/200
 * documents (counted on the raw text, before stemming).  Terms are OR-ed:
 * our query is the words separated by spaces; the FTS5 query is
 * `"w1" OR "w2" OR ...` with `ORDER BY bm25(t) LIMIT 10`.
 *
 * FTS5 settings: tokenize = 'porter unicode61' (stemming, like our
 * analyzer), default k1 = 1.2 and b = 0.75 (ours too), a file database
 * with journal_mode OFF and synchronous OFF during the build, all rows
 * inserted in one transaction, then the 'optimize' command (merging the
 * index into one b-tree: its fastest layout for queries; timed
 * separately).  For queries the page cache is 1 GiB and the file is
 * memory-mapped, so FTS5 reads from memory as our in-memory index does.
 *
 * Timing: CLOCK_MONOTONIC around each call (bm25_search; sqlite3_bind +
 * stepping every row + sqlite3_reset).  Each engine runs the whole query
 * list once untimed (warm-up), then once timed; percentiles are
 * nearest-rank.  The engines run one after the other in one process.  The
 * overlap line reports how many of FTS5's top 10 documents are also in
 * ours (the analyzers differ slightly, so the rankings are close, not
 * equal).
 *
 * Nothing here is part of the test run; an engine error aborts the
 * benchmark with a message.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "base/buf.h"
#include "base/err.h"
#include "embed/tokenize.h"
#include "index/analyze.h"
#include "index/bm25.h"

#include "bench_util.h"

#define SEED_SHUFFLE 20240501u
#define SEED_QUERIES 7u
#define TOP_K 10

static struct {
    const char *corpus; /* NULL: the changelogs */
    const char *dir;
    size_t n_docs;
    size_t n_queries;
    bool is_json;
} cfg = { NULL, "/tmp", 500000, 1000, false };

/* ------------------------------------------------------------- corpus */

typedef struct strvec {
    char **s;
    size_t n, cap;
} strvec;

static void strvec_push(strvec *v, char *s)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 1024;
        v->s = realloc(v->s, v->cap * sizeof *v->s);
        if (!v->s)
            bench_die("out of memory");
    }
    v->s[v->n++] = s;
}

/* A set of strings for deduplication (open addressing, FNV-1a). */
typedef struct strset {
    char **slot;
    size_t cap, n;
} strset;

static uint64_t fnv(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

/* strset_add -- true if s was new (the set then owns s). */
static bool strset_add(strset *t, char *s)
{
    if ((t->n + 1) * 2 > t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 1 << 16;
        char **ns = calloc(nc, sizeof *ns);
        if (!ns)
            bench_die("out of memory");
        for (size_t i = 0; i < t->cap; i++) {
            if (!t->slot[i])
                continue;
            size_t j = fnv(t->slot[i], strlen(t->slot[i])) & (nc - 1);
            while (ns[j])
                j = (j + 1) & (nc - 1);
            ns[j] = t->slot[i];
        }
        free(t->slot);
        t->slot = ns;
        t->cap = nc;
    }
    size_t j = fnv(s, strlen(s)) & (t->cap - 1);
    while (t->slot[j]) {
        if (!strcmp(t->slot[j], s))
            return false;
        j = (j + 1) & (t->cap - 1);
    }
    t->slot[j] = s;
    t->n++;
    return true;
}

static void load_corpus(strvec *docs, size_t *n_lines_kept)
{
    FILE *f;
    bool is_pipe = cfg.corpus == NULL;
    if (is_pipe)
        f = popen("zcat /usr/share/doc/*/changelog*.gz 2>/dev/null", "r");
    else
        f = fopen(cfg.corpus, "r");
    if (!f)
        bench_die("cannot read the corpus");
    strvec all = { 0 };
    strset seen = { 0 };
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    while ((got = getline(&line, &cap, f)) >= 0) {
        char *s = line, *e = line + got;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        while (e > s && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' ||
                         e[-1] == '\t'))
            e--;
        size_t n = (size_t)(e - s);
        if (n < 20 || n > 200 || !tok_utf8_valid(s, n, NULL))
            continue;
        bool has_letter = false;
        for (size_t i = 0; i < n && !has_letter; i++)
            has_letter = (s[i] >= 'a' && s[i] <= 'z') ||
                         (s[i] >= 'A' && s[i] <= 'Z');
        if (!has_letter || memchr(s, '\0', n))
            continue;
        char *copy = bench_xmalloc(n + 1);
        memcpy(copy, s, n);
        copy[n] = '\0';
        if (strset_add(&seen, copy))
            strvec_push(&all, copy);
        else
            free(copy);
    }
    free(line);
    if (is_pipe)
        pclose(f);
    else
        fclose(f);
    *n_lines_kept = all.n;
    /* Fixed-seed shuffle, then the first n_docs. */
    bench_rng r = { SEED_SHUFFLE };
    for (size_t i = all.n; i > 1; i--) {
        size_t j = bench_rng_below(&r, i);
        char *t = all.s[i - 1];
        all.s[i - 1] = all.s[j];
        all.s[j] = t;
    }
    size_t n = all.n < cfg.n_docs ? all.n : cfg.n_docs;
    for (size_t i = 0; i < n; i++)
        strvec_push(docs, all.s[i]);
    /* The strings are owned by `seen`'s slots; those not used stay
     * allocated until exit (a benchmark, not engine code). */
    free(all.s);
    free(seen.slot);
}

/* ------------------------------------------------------------ queries */

typedef struct wcount {
    char *w;
    uint32_t df, last_doc;
} wcount;

typedef struct wmap {
    wcount *slot;
    size_t cap, n;
} wmap;

static wcount *wmap_get(wmap *m, const char *w, size_t n)
{
    if ((m->n + 1) * 2 > m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 1 << 16;
        wcount *ns = calloc(nc, sizeof *ns);
        if (!ns)
            bench_die("out of memory");
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->slot[i].w)
                continue;
            size_t j = fnv(m->slot[i].w, strlen(m->slot[i].w)) & (nc - 1);
            while (ns[j].w)
                j = (j + 1) & (nc - 1);
            ns[j] = m->slot[i];
        }
        free(m->slot);
        m->slot = ns;
        m->cap = nc;
    }
    size_t j = fnv(w, n) & (m->cap - 1);
    while (m->slot[j].w) {
        if (strlen(m->slot[j].w) == n && !memcmp(m->slot[j].w, w, n))
            return &m->slot[j];
        j = (j + 1) & (m->cap - 1);
    }
    char *c = bench_xmalloc(n + 1);
    memcpy(c, w, n);
    c[n] = '\0';
    m->slot[j].w = c;
    m->slot[j].df = 0;
    m->slot[j].last_doc = UINT32_MAX;
    m->n++;
    return &m->slot[j];
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void make_queries(const strvec *docs, strvec *queries,
                         uint32_t *lo_out, uint32_t *hi_out, size_t *n_mid)
{
    wmap m = { 0 };
    for (size_t d = 0; d < docs->n; d++) {
        const char *s = docs->s[d];
        while (*s) {
            while (*s && !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
                s++;
            const char *b = s;
            while ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))
                s++;
            size_t n = (size_t)(s - b);
            /* Whole words only: not glued to digits or other bytes. */
            if (n < 3 || n > 20 || (*s && ((uint8_t)*s >= 0x80 ||
                                            (*s >= '0' && *s <= '9'))))
                continue;
            char w[24];
            for (size_t i = 0; i < n; i++)
                w[i] = (char)(b[i] | 0x20);
            if (an_is_stopword(w, n))
                continue;
            wcount *c = wmap_get(&m, w, n);
            if (c->last_doc != d) {
                c->df++;
                c->last_doc = (uint32_t)d;
            }
        }
    }
    uint32_t lo = (uint32_t)(docs->n / 10000), hi = (uint32_t)(docs->n / 200);
    if (lo < 2)
        lo = 2;
    strvec mid = { 0 };
    for (size_t i = 0; i < m.cap; i++)
        if (m.slot[i].w && m.slot[i].df >= lo && m.slot[i].df <= hi)
            strvec_push(&mid, m.slot[i].w);
    if (mid.n < 4)
        bench_die("only %zu mid-frequency words", mid.n);
    qsort(mid.s, mid.n, sizeof *mid.s, cmp_str);
    bench_rng r = { SEED_QUERIES };
    for (size_t q = 0; q < cfg.n_queries; q++) {
        size_t k = 2 + bench_rng_below(&r, 3), pick[4];
        char text[128];
        size_t len = 0;
        for (size_t i = 0; i < k; i++) {
            bool dup;
            do {
                pick[i] = bench_rng_below(&r, mid.n);
                dup = false;
                for (size_t j = 0; j < i; j++)
                    dup |= pick[j] == pick[i];
            } while (dup);
            len += (size_t)snprintf(text + len, sizeof text - len, "%s%s",
                                    i ? " " : "", mid.s[pick[i]]);
        }
        strvec_push(queries, strdup(text));
    }
    *lo_out = lo;
    *hi_out = hi;
    *n_mid = mid.n;
    free(mid.s);
}

/* --------------------------------------------------------------- ours */

typedef struct result {
    double build_s, optimize_s;
    uint64_t mem_bytes, disk_bytes, serialize_bytes, loaded_mem_bytes;
    double serialize_s, load_s;
    double p50_us, p99_us, mean_us;
    uint32_t (*top)[TOP_K]; /* per query, UINT32_MAX padded */
} result;

static void run_ours(const strvec *docs, const strvec *queries, result *res)
{
    bm25 *ix;
    int rc = bm25_new(NULL, &ix);
    if (rc)
        bench_die("bm25_new: %s", dm_errname(rc));
    uint64_t t0 = bench_now_ns();
    for (size_t d = 0; d < docs->n; d++) {
        rc = bm25_add(ix, (uint32_t)d, docs->s[d], strlen(docs->s[d]));
        if (rc)
            bench_die("bm25_add(%zu): %s: %s", d, dm_errname(rc),
                      err_last_msg());
    }
    res->build_s = (double)(bench_now_ns() - t0) / 1e9;
    res->mem_bytes = bm25_memsize(ix);

    buf b;
    buf_init(&b);
    t0 = bench_now_ns();
    if ((rc = bm25_serialize(ix, &b)))
        bench_die("bm25_serialize: %s", dm_errname(rc));
    res->serialize_s = (double)(bench_now_ns() - t0) / 1e9;
    res->serialize_bytes = b.len;
    bm25 *back;
    t0 = bench_now_ns();
    if ((rc = bm25_deserialize(NULL, buf_slice_of(b.ptr, b.len), &back)))
        bench_die("bm25_deserialize: %s: %s", dm_errname(rc), err_last_msg());
    res->load_s = (double)(bench_now_ns() - t0) / 1e9;
    res->loaded_mem_bytes = bm25_memsize(back);
    bm25_free(back);
    buf_fini(&b);

    bench_lat lat;
    bench_lat_init(&lat, queries->n);
    bm25_hit h[TOP_K];
    uint64_t total = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t q = 0; q < queries->n; q++) {
            uint32_t n;
            const char *s = queries->s[q];
            uint64_t a = bench_now_ns();
            rc = bm25_search(ix, s, strlen(s), TOP_K, NULL, NULL, h, &n);
            uint64_t e = bench_now_ns() - a;
            if (rc)
                bench_die("bm25_search: %s", dm_errname(rc));
            if (pass == 1) {
                bench_lat_add(&lat, e);
                total += e;
                for (uint32_t i = 0; i < TOP_K; i++)
                    res->top[q][i] = i < n ? h[i].doc : UINT32_MAX;
            }
        }
    }
    res->p50_us = bench_lat_pct_us(&lat, 0.50);
    res->p99_us = bench_lat_pct_us(&lat, 0.99);
    res->mean_us = (double)total / (double)queries->n / 1000.0;
    bench_lat_fini(&lat);
    bm25_free(ix);
}

/* --------------------------------------------------------------- FTS5 */

static void sql_exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        bench_die("sqlite: %s: %s", sql, err ? err : "?");
}

static void run_fts5(const strvec *docs, const strvec *queries, result *res)
{
    char dir[2048], path[4096];
    snprintf(dir, sizeof dir, "%s/bench_bm25-%d", cfg.dir, (int)getpid());
    bench_rm_rf(dir);
    if (mkdir(dir, 0755) != 0)
        bench_die("mkdir %s", dir);
    snprintf(path, sizeof path, "%s/fts5.db", dir);
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        bench_die("sqlite3_open %s", path);
    sql_exec(db, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
                 "PRAGMA cache_size=-1048576; PRAGMA mmap_size=4294967296;");
    sql_exec(db, "CREATE VIRTUAL TABLE t USING fts5(body, "
                 "tokenize='porter unicode61')");
    sqlite3_stmt *ins;
    if (sqlite3_prepare_v2(db, "INSERT INTO t(rowid, body) VALUES(?, ?)", -1,
                           &ins, NULL) != SQLITE_OK)
        bench_die("prepare insert: %s", sqlite3_errmsg(db));
    uint64_t t0 = bench_now_ns();
    sql_exec(db, "BEGIN");
    for (size_t d = 0; d < docs->n; d++) {
        sqlite3_bind_int64(ins, 1, (sqlite3_int64)d);
        sqlite3_bind_text(ins, 2, docs->s[d], -1, SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE)
            bench_die("insert: %s", sqlite3_errmsg(db));
        sqlite3_reset(ins);
    }
    sql_exec(db, "COMMIT");
    res->build_s = (double)(bench_now_ns() - t0) / 1e9;
    sqlite3_finalize(ins);
    t0 = bench_now_ns();
    sql_exec(db, "INSERT INTO t(t) VALUES('optimize')");
    res->optimize_s = (double)(bench_now_ns() - t0) / 1e9;
    sqlite3_close(db);
    res->disk_bytes = bench_dir_bytes(dir); /* the database file alone */

    if (sqlite3_open(path, &db) != SQLITE_OK)
        bench_die("sqlite3_open %s", path);
    sql_exec(db, "PRAGMA cache_size=-1048576; PRAGMA mmap_size=4294967296;");
    sqlite3_stmt *sel;
    if (sqlite3_prepare_v2(db, "SELECT rowid, bm25(t) FROM t WHERE t MATCH ? "
                               "ORDER BY bm25(t) LIMIT 10", -1, &sel,
                           NULL) != SQLITE_OK)
        bench_die("prepare select: %s", sqlite3_errmsg(db));
    /* FTS5 query strings, built outside the timed loop. */
    char **fq = bench_xmalloc(queries->n * sizeof *fq);
    for (size_t q = 0; q < queries->n; q++) {
        char out[256];
        size_t len = 0;
        const char *s = queries->s[q];
        while (*s) {
            const char *e = strchr(s, ' ');
            size_t n = e ? (size_t)(e - s) : strlen(s);
            len += (size_t)snprintf(out + len, sizeof out - len, "%s\"%.*s\"",
                                    len ? " OR " : "", (int)n, s);
            s += n + (e != NULL);
        }
        fq[q] = strdup(out);
    }
    bench_lat lat;
    bench_lat_init(&lat, queries->n);
    uint64_t total = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t q = 0; q < queries->n; q++) {
            uint32_t got[TOP_K], n = 0;
            uint64_t a = bench_now_ns();
            sqlite3_bind_text(sel, 1, fq[q], -1, SQLITE_STATIC);
            int src;
            while ((src = sqlite3_step(sel)) == SQLITE_ROW)
                if (n < TOP_K)
                    got[n++] = (uint32_t)sqlite3_column_int64(sel, 0);
            sqlite3_reset(sel);
            uint64_t e = bench_now_ns() - a;
            if (src != SQLITE_DONE)
                bench_die("query %s: %s", fq[q], sqlite3_errmsg(db));
            if (pass == 1) {
                bench_lat_add(&lat, e);
                total += e;
                for (uint32_t i = 0; i < TOP_K; i++)
                    res->top[q][i] = i < n ? got[i] : UINT32_MAX;
            }
        }
    }
    res->p50_us = bench_lat_pct_us(&lat, 0.50);
    res->p99_us = bench_lat_pct_us(&lat, 0.99);
    res->mean_us = (double)total / (double)queries->n / 1000.0;
    bench_lat_fini(&lat);
    for (size_t q = 0; q < queries->n; q++)
        free(fq[q]);
    free(fq);
    sqlite3_finalize(sel);
    sqlite3_close(db);
    bench_rm_rf(dir);
}

/* --------------------------------------------------------------- main */

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_bm25 [--json] [--docs N] [--queries N] "
            "[--corpus FILE] [--dir DIR]\n"
            "  --docs N      documents (default 500000)\n"
            "  --queries N   queries (default 1000)\n"
            "  --corpus FILE one document per line (default: the Debian "
            "changelogs under /usr/share/doc)\n"
            "  --dir DIR     where the FTS5 database is built (default /tmp)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--json"))
            cfg.is_json = true;
        else if (!strcmp(a, "--docs") && i + 1 < argc)
            cfg.n_docs = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--queries") && i + 1 < argc)
            cfg.n_queries = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--corpus") && i + 1 < argc)
            cfg.corpus = argv[++i];
        else if (!strcmp(a, "--dir") && i + 1 < argc)
            cfg.dir = argv[++i];
        else
            usage();
    }
    if (cfg.n_docs == 0 || cfg.n_queries == 0)
        usage();
    FILE *f = cfg.is_json ? stderr : stdout;

    strvec docs = { 0 }, queries = { 0 };
    size_t kept;
    uint64_t t0 = bench_now_ns();
    load_corpus(&docs, &kept);
    uint64_t text_bytes = 0;
    for (size_t d = 0; d < docs.n; d++)
        text_bytes += strlen(docs.s[d]);
    uint32_t lo, hi;
    size_t n_mid;
    make_queries(&docs, &queries, &lo, &hi, &n_mid);
    fprintf(f, "bm25 benchmark: %zu documents (%zu distinct lines available, "
               "%.1f MB of text, mean %.0f bytes) loaded in %.1f s\n",
            docs.n, kept, (double)text_bytes / 1e6,
            (double)text_bytes / (double)docs.n,
            (double)(bench_now_ns() - t0) / 1e9);
    fprintf(f, "queries: %zu of 2-4 OR-ed words from %zu mid-frequency words "
               "(df %u..%u), top %d; e.g. \"%s\"\n",
            queries.n, n_mid, lo, hi, TOP_K, queries.s[0]);
    fprintf(f, "sqlite %s, fts5 tokenize='porter unicode61'\n",
            sqlite3_libversion());
    fflush(f);

    result ours = { 0 }, fts = { 0 };
    ours.top = bench_xmalloc(queries.n * sizeof *ours.top);
    fts.top = bench_xmalloc(queries.n * sizeof *fts.top);
    run_ours(&docs, &queries, &ours);
    run_fts5(&docs, &queries, &fts);

    /* Overlap of the top 10s. */
    uint64_t common = 0, fts_hits = 0;
    for (size_t q = 0; q < queries.n; q++) {
        for (int i = 0; i < TOP_K; i++) {
            if (fts.top[q][i] == UINT32_MAX)
                continue;
            fts_hits++;
            for (int j = 0; j < TOP_K; j++)
                common += ours.top[q][j] == fts.top[q][i];
        }
    }
    double overlap = fts_hits ? (double)common / (double)fts_hits : 0.0;

    if (cfg.is_json) {
        printf("{\"suite\":\"bm25\",\"engine\":\"deltamemory\",\"docs\":%zu,"
               "\"queries\":%zu,\"build_s\":%.3f,\"mem_bytes\":%" PRIu64 ","
               "\"serialized_bytes\":%" PRIu64 ",\"serialize_s\":%.3f,"
               "\"load_s\":%.3f,\"loaded_mem_bytes\":%" PRIu64 ","
               "\"p50_us\":%.2f,\"p99_us\":%.2f,\"mean_us\":%.2f}\n",
               docs.n, queries.n, ours.build_s, ours.mem_bytes,
               ours.serialize_bytes, ours.serialize_s, ours.load_s,
               ours.loaded_mem_bytes,
               ours.p50_us, ours.p99_us, ours.mean_us);
        printf("{\"suite\":\"bm25\",\"engine\":\"fts5\",\"docs\":%zu,"
               "\"queries\":%zu,\"build_s\":%.3f,\"optimize_s\":%.3f,"
               "\"db_bytes\":%" PRIu64 ",\"p50_us\":%.2f,\"p99_us\":%.2f,"
               "\"mean_us\":%.2f}\n",
               docs.n, queries.n, fts.build_s, fts.optimize_s, fts.disk_bytes,
               fts.p50_us, fts.p99_us, fts.mean_us);
        printf("{\"suite\":\"bm25\",\"case\":\"top10_overlap\",\"value\":%.4f}\n",
               overlap);
    } else {
        printf("\n%-12s %10s %12s %14s %10s %10s %10s\n", "engine", "build s",
               "memory MB", "size on disk MB", "p50 us", "p99 us", "mean us");
        printf("%-12s %10.2f %12.1f %14.1f %10.1f %10.1f %10.1f\n",
               "deltamemory", ours.build_s, (double)ours.mem_bytes / 1e6,
               (double)ours.serialize_bytes / 1e6, ours.p50_us, ours.p99_us,
               ours.mean_us);
        printf("%-12s %10.2f %12s %14.1f %10.1f %10.1f %10.1f\n", "fts5",
               fts.build_s, "-", (double)fts.disk_bytes / 1e6, fts.p50_us,
               fts.p99_us, fts.mean_us);
        printf("\ndeltamemory: checkpoint written in %.2f s, loaded in %.2f s "
               "(%.1f MB in memory after loading); fts5: optimize %.2f s "
               "(not in build s)\n",
               ours.serialize_s, ours.load_s,
               (double)ours.loaded_mem_bytes / 1e6, fts.optimize_s);
        printf("p50 ratio deltamemory/fts5: %.3f; top-10 overlap with fts5: "
               "%.1f%%\n", fts.p50_us > 0 ? ours.p50_us / fts.p50_us : 0.0,
               100.0 * overlap);
    }
    free(ours.top);
    free(fts.top);
    return 0;
}
