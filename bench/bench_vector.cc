/*
 * bench_vector.cc -- our HNSW index (src/index/hnsw.h) against hnswlib on
 * the same vectors, side by side in one process; and the measurement of
 * the flat-scan threshold (hnsw_params_default).
 *
 * DESIGN.  One data set at a time is generated (or embedded, or read), then
 * each engine builds its index single-threaded with the same M and
 * ef_construction (build time and memory reported); then for every
 * ef_search in {16, 32, 64, 128, 256} both run the same 1,000 queries,
 * k = 10, in three rounds where the engines take turns, each query timed
 * with CLOCK_MONOTONIC; each engine's figures are its fastest round.
 * Recall@10 is scored against a brute-force scan.  Both engines work in inner-product space on unit vectors
 * (hnswlib::InnerProductSpace; ours is inner product by design).
 *
 * Data sets:
 *   synthetic  clustered unit vectors: 1,000 Gaussian centres in --dim
 *              dimensions, each point a centre plus Gaussian noise
 *              (sigma 0.6 per coordinate), normalised; fixed seed.
 *   real       sentence embeddings: generated English sentences (topic
 *              word lists mixed with function words, deduplicated)
 *              embedded with the built-in GloVe embedder (src/embed/
 *              embed.h, --model, default models/glove-6b-100d.dmm).
 *              Skipped with a note if the model cannot be opened.
 *   file       --vectors FILE: raw little-endian float32 rows of --dim
 *              floats; the last --queries rows are the queries.
 *
 * Recall@10 of a query = |{returned hits with similarity >= the exact
 * 10th similarity - 1e-5}| / 10: a distance criterion, so that ties and
 * duplicate vectors cannot make a correct answer count as a miss.
 *
 * Memory: ours is hnsw_memsize(); for both engines the bench also reports
 * the growth of the malloc heap across the build (mallinfo2: bytes in
 * use, which unlike RSS does not depend on what earlier phases freed), and
 * for hnswlib an estimate from its own structures.
 *
 * --threshold runs the flat-threshold sweep instead: for growing n it
 * builds our index with the graph forced on, and compares the mean latency
 * of hnsw_search (ef 64, k 10) with the exact scan (hnsw_search_exact) on
 * 100-d clustered vectors.
 *
 * --f16 adds our index with half-precision storage (HNSW_ELEM_F16, engine
 * "ours-f16") to every case of a data set: build, checkpoint, search,
 * filtered.  Its similarities are those of the rounded vectors, so for
 * recall each returned label is rescored with the exact float32 inner
 * product (outside the timed call): the question is whether the right
 * neighbours come back.
 *
 * --sweep runs the ef_construction sweep instead of the comparison: for
 * every ef_construction of --efc-list and element type of --elems it
 * builds our index by incremental adds (no hnsw_reserve, as the engine
 * adds) and reports build time and hnsw_memsize per vector, then recall@10,
 * p50 and QPS for every ef_search of --ef-list (best of three rounds), and
 * for the exact scan of the same index (ef 0 in JSON, "exact" in the
 * table): the recall ceiling that the element type leaves (below 1 for
 * half precision, whose rounding reorders near ties).  "vs own"
 * (recall_own) is recall@10 judged by the index's own similarities
 * against its own exact scan: the graph's loss alone.
 *
 * Benchmarks are tools, not engine code: plain malloc, abort on error.
 */
#include <malloc.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_set>
#include <vector>

extern "C" {
#include "base/err.h"
#include "embed/embed.h"
#include "index/distance.h"
#include "index/hnsw.h"
}

/* bench_util.h defines static helpers this file does not use; clang's
 * C++ front end warns about those. */
#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wunneeded-internal-declaration"
#endif
#include "bench_util.h"
#if defined(__clang__)
#pragma clang diagnostic pop
#endif

#include <hnswlib/hnswlib.h>

namespace {

struct config {
    uint32_t n = 100000;
    uint32_t dim = 256;
    uint32_t n_queries = 1000;
    uint32_t M = 16;
    uint32_t efc = 200;
    bool is_json = false;
    bool with_hnswlib = true;
    bool is_threshold = false;
    bool with_f16 = false;
    bool is_sweep = false;
    std::vector<uint32_t> efc_list = { 200, 128, 100, 64 };
    std::vector<uint32_t> ef_list = { 32, 64, 100 };
    std::vector<hnsw_elem> elems = { HNSW_ELEM_F32, HNSW_ELEM_F16 };
    std::string sets = "synthetic,real";
    std::string vectors_path;
    std::string model_path = "models/glove-6b-100d.dmm";
};

config cfg;

const uint32_t K = 10;
const uint32_t EFS[] = { 16, 32, 64, 128, 256 };
const double RECALL_EPS = 1e-5;

/* A data set: n base rows then n_queries query rows, unit length. */
struct dataset {
    std::string name;
    uint32_t dim = 0;
    uint32_t n = 0;
    uint32_t n_queries = 0;
    std::vector<float> rows;
    std::vector<float> gt_sim; /* n_queries * K exact similarities, best first */

    const float *base(uint32_t i) const { return &rows[(size_t)i * dim]; }
    const float *query(uint32_t q) const { return &rows[(size_t)(n + q) * dim]; }
};

FILE *info_out() { return cfg.is_json ? stderr : stdout; }

__attribute__((format(printf, 1, 2))) void note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    FILE *f = info_out();
    fputs("# ", f);
    vfprintf(f, fmt, ap);
    fputc('\n', f);
    fflush(f);
    va_end(ap);
}

double gauss(bench_rng *r)
{
    double u = ((double)(bench_rng_next(r) >> 11) + 1.0) * 0x1.0p-53;
    double v = (double)(bench_rng_next(r) >> 11) * 0x1.0p-53;
    return std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * v);
}

void make_clustered(dataset &d, uint32_t dim, uint32_t n, uint32_t nq,
                    uint64_t seed)
{
    const uint32_t n_centres = 1000;
    const double sigma = 0.6;
    bench_rng r = { seed };
    std::vector<float> centres((size_t)n_centres * dim);
    for (auto &c : centres)
        c = (float)gauss(&r);
    d.dim = dim;
    d.n = n;
    d.n_queries = nq;
    d.rows.resize((size_t)(n + nq) * dim);
    for (uint32_t i = 0; i < n + nq; i++) {
        const float *c = &centres[(size_t)bench_rng_below(&r, n_centres) * dim];
        float *row = &d.rows[(size_t)i * dim];
        for (uint32_t j = 0; j < dim; j++)
            row[j] = c[j] + (float)(sigma * gauss(&r));
        dist_normalize(row, dim);
    }
}

/* ------------------------------------------------------------ sentences */

const char *const topics[][24] = {
    { "coffee", "tea", "breakfast", "bread", "cheese", "pasta", "soup", "salad",
      "chicken", "rice", "dinner", "lunch", "recipe", "kitchen", "oven",
      "garlic", "tomato", "chocolate", "cake", "wine", "restaurant", "vegetarian",
      "spicy", "sugar" },
    { "flight", "airport", "hotel", "beach", "mountain", "passport", "train",
      "ticket", "vacation", "island", "museum", "luggage", "city", "tour",
      "border", "map", "travel", "cruise", "paris", "tokyo", "camping", "trip",
      "journey", "visa" },
    { "doctor", "hospital", "medicine", "fever", "headache", "allergy",
      "surgery", "vaccine", "pain", "sleep", "exercise", "diet", "therapy",
      "injury", "nurse", "blood", "heart", "clinic", "dentist", "vitamin",
      "health", "symptoms", "insurance", "pharmacy" },
    { "meeting", "project", "deadline", "manager", "salary", "office", "client",
      "report", "contract", "budget", "team", "promotion", "interview",
      "colleague", "presentation", "email", "schedule", "company", "career",
      "startup", "invoice", "hiring", "strategy", "quarter" },
    { "python", "database", "server", "software", "code", "bug", "compiler",
      "network", "laptop", "keyboard", "linux", "cloud", "algorithm", "memory",
      "website", "password", "backup", "update", "browser", "api", "kernel",
      "cache", "encryption", "terminal" },
    { "football", "soccer", "basketball", "tennis", "match", "coach", "goal",
      "season", "league", "stadium", "marathon", "swimming", "bike", "race",
      "training", "fans", "score", "championship", "player", "gym", "golf",
      "olympics", "hockey", "referee" },
    { "guitar", "piano", "concert", "song", "album", "band", "jazz", "movie",
      "novel", "painting", "poetry", "theater", "singer", "film", "director",
      "actor", "gallery", "music", "orchestra", "opera", "drawing", "camera",
      "photography", "festival" },
    { "mother", "father", "sister", "brother", "daughter", "son", "wedding",
      "birthday", "grandmother", "cousin", "family", "baby", "children",
      "husband", "wife", "friend", "neighbor", "uncle", "aunt", "parents",
      "anniversary", "holiday", "party", "gift" },
    { "money", "bank", "loan", "mortgage", "tax", "savings", "investment",
      "stock", "rent", "credit", "debt", "price", "pension", "account",
      "payment", "bills", "budget", "cash", "wallet", "expenses", "market",
      "interest", "fund", "dollars" },
    { "garden", "flowers", "trees", "dog", "cat", "rain", "snow", "weather",
      "river", "forest", "birds", "lake", "sunset", "winter", "summer", "spring",
      "autumn", "farm", "horse", "ocean", "plants", "storm", "wind", "park" },
    { "car", "bus", "traffic", "road", "engine", "fuel", "parking", "driver",
      "truck", "bicycle", "highway", "repair", "tires", "garage", "license",
      "accident", "commute", "subway", "station", "speed", "vehicle", "brake",
      "route", "bridge" },
    { "school", "university", "teacher", "student", "exam", "homework",
      "lecture", "degree", "math", "history", "science", "library", "book",
      "class", "professor", "research", "thesis", "grammar", "language",
      "course", "study", "physics", "chemistry", "biology" },
};
const size_t n_topics = sizeof topics / sizeof topics[0];

const char *const subjects[] = { "i", "my friend", "my sister", "we", "she",
                                 "he", "the user", "my boss", "they",
                                 "my partner" };
const char *const verbs[] = { "likes", "hates", "bought", "planned", "talked about",
                              "remembered", "forgot", "wants", "needs",
                              "recommended", "booked", "cancelled", "enjoyed",
                              "prefers", "asked about", "mentioned" };
const char *const fillers[] = { "the", "a", "new", "old", "good", "bad", "big",
                                "small", "last", "next", "every", "some",
                                "favorite", "expensive", "cheap", "early",
                                "late", "with", "and", "for", "before", "after",
                                "during", "near", "today", "yesterday",
                                "tomorrow", "week", "month", "year" };

template <size_t N> const char *pick(bench_rng *r, const char *const (&a)[N])
{
    return a[bench_rng_below(r, N)];
}

std::string make_sentence(bench_rng *r)
{
    const char *const *t = topics[bench_rng_below(r, n_topics)];
    const char *const *t2 = topics[bench_rng_below(r, n_topics)];
    std::string s = pick(r, subjects);
    s += ' ';
    s += pick(r, verbs);
    uint32_t words = 4 + (uint32_t)bench_rng_below(r, 9);
    for (uint32_t i = 0; i < words; i++) {
        s += ' ';
        uint64_t x = bench_rng_below(r, 10);
        if (x < 5)
            s += t[bench_rng_below(r, 24)];
        else if (x < 6)
            s += t2[bench_rng_below(r, 24)];
        else
            s += pick(r, fillers);
    }
    return s;
}

bool make_real(dataset &d, uint32_t n, uint32_t nq)
{
    embedder *e = nullptr;
    int rc = embed_builtin_open(cfg.model_path.c_str(), &e);
    if (rc != DM_OK) {
        note("real set skipped: cannot open %s: %s (%s)", cfg.model_path.c_str(),
             dm_errname(rc), err_last_msg());
        return false;
    }
    d.dim = embedder_dim(e);
    d.n = n;
    d.n_queries = nq;
    d.rows.resize((size_t)(n + nq) * d.dim);
    bench_rng r = { 20240601 };
    std::unordered_set<std::string> seen;
    std::vector<std::string> texts;
    texts.reserve(n + nq);
    while (texts.size() < (size_t)n + nq) {
        std::string s = make_sentence(&r);
        if (seen.insert(s).second)
            texts.push_back(std::move(s));
    }
    uint64_t t0 = bench_now_ns();
    const size_t batch = 256;
    std::vector<const char *> ptrs(batch);
    std::vector<size_t> lens(batch);
    for (size_t i = 0; i < texts.size(); i += batch) {
        size_t m = std::min(batch, texts.size() - i);
        for (size_t j = 0; j < m; j++) {
            ptrs[j] = texts[i + j].data();
            lens[j] = texts[i + j].size();
        }
        rc = embedder_embed(e, ptrs.data(), lens.data(), m, &d.rows[i * d.dim]);
        if (rc != DM_OK)
            bench_die("embed: %s (%s)", dm_errname(rc), err_last_msg());
    }
    note("real set: %zu sentences embedded by %s (%u-d) in %.1f s",
         texts.size(), embedder_name(e), d.dim,
         (double)(bench_now_ns() - t0) / 1e9);
    embedder_close(e);
    return true;
}

bool read_file(dataset &d, const std::string &path, uint32_t dim, uint32_t n,
               uint32_t nq)
{
    FILE *f = fopen(path.c_str(), "rb");
    if (!f)
        bench_die("open %s: %s", path.c_str(), strerror(errno));
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    size_t rows = (size_t)size / (4 * (size_t)dim);
    if (rows < (size_t)nq + 1)
        bench_die("%s: %zu rows of %u floats, need more than %u", path.c_str(),
                  rows, dim, nq);
    if (rows > (size_t)n + nq)
        rows = (size_t)n + nq;
    d.dim = dim;
    d.n_queries = nq;
    d.n = (uint32_t)(rows - nq);
    d.rows.resize(rows * dim);
    if (fread(d.rows.data(), 4 * (size_t)dim, rows, f) != rows)
        bench_die("read %s failed", path.c_str());
    fclose(f);
    for (size_t i = 0; i < rows; i++)
        dist_normalize(&d.rows[i * dim], dim);
    return true;
}

/* ---------------------------------------------------------- ground truth */

void ground_truth(dataset &d)
{
    uint64_t t0 = bench_now_ns();
    d.gt_sim.assign((size_t)d.n_queries * K, -INFINITY);
    for (uint32_t q = 0; q < d.n_queries; q++) {
        float *best = &d.gt_sim[(size_t)q * K];
        const float *qv = d.query(q);
        for (uint32_t i = 0; i < d.n; i++) {
            float s = dist_dot(qv, d.base(i), d.dim);
            if (s <= best[K - 1])
                continue;
            uint32_t j = K - 1;
            while (j > 0 && best[j - 1] < s) {
                best[j] = best[j - 1];
                j--;
            }
            best[j] = s;
        }
    }
    note("%s: ground truth for %u queries in %.1f s", d.name.c_str(),
         d.n_queries, (double)(bench_now_ns() - t0) / 1e9);
}

double recall_of(const dataset &d, uint32_t q, const float *sims, uint32_t n)
{
    float kth = d.gt_sim[(size_t)q * K + K - 1];
    uint32_t hit = 0;
    for (uint32_t i = 0; i < n && i < K; i++)
        hit += sims[i] >= kth - RECALL_EPS;
    return (double)hit / K;
}

/* ------------------------------------------------------------- engines */

size_t heap_in_use()
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

struct search_result {
    double recall, p50_us, p99_us, qps;
    double recall_own; /* against the index's own exact scan (run_queries' own_kth) */
};

void print_build(const dataset &d, const char *engine, double build_s,
                 size_t mem_bytes, size_t heap_bytes)
{
    if (cfg.is_json)
        printf("{\"suite\":\"vector\",\"set\":\"%s\",\"engine\":\"%s\","
               "\"case\":\"build\",\"n\":%u,\"dim\":%u,\"M\":%u,\"efc\":%u,"
               "\"build_s\":%.3f,\"mem_bytes\":%zu,\"heap_bytes\":%zu}\n",
               d.name.c_str(), engine, d.n, d.dim, cfg.M, cfg.efc, build_s,
               mem_bytes, heap_bytes);
    else
        printf("%-10s %-9s build %8.2f s   memory %7.1f MB   heap growth %7.1f MB\n",
               d.name.c_str(), engine, build_s, (double)mem_bytes / 1e6,
               (double)heap_bytes / 1e6);
    fflush(stdout);
}

void print_search(const dataset &d, const char *engine, uint32_t ef,
                  const search_result &r)
{
    if (cfg.is_json)
        printf("{\"suite\":\"vector\",\"set\":\"%s\",\"engine\":\"%s\","
               "\"case\":\"search\",\"ef\":%u,\"k\":%u,\"recall\":%.4f,"
               "\"p50_us\":%.1f,\"p99_us\":%.1f,\"qps\":%.0f}\n",
               d.name.c_str(), engine, ef, K, r.recall, r.p50_us, r.p99_us, r.qps);
    else
        printf("%-10s %-9s ef %4u  recall@10 %.4f  p50 %7.1f us  p99 %7.1f us"
               "  %8.0f QPS\n",
               d.name.c_str(), engine, ef, r.recall, r.p50_us, r.p99_us, r.qps);
    fflush(stdout);
}

/* Runs all queries through `fn` (which fills sims and labels, returns
 * count).  With rescore, recall is judged on the exact float32 similarity
 * of each returned label instead of the engine's own (computed after the
 * timed call).  With own_kth (per query, the 10th similarity of the
 * index's own exact scan), recall_own judges the engine's similarities
 * against it. */
template <typename F>
search_result run_queries(const dataset &d, F fn, bool rescore = false,
                          const std::vector<float> *own_kth = nullptr)
{
    bench_lat lat;
    bench_lat_init(&lat, d.n_queries);
    float sims[K];
    uint32_t labels[K];
    double rec = 0, rec_own = 0;
    uint64_t total = 0;
    for (uint32_t q = 0; q < d.n_queries; q++) {
        uint64_t t0 = bench_now_ns();
        uint32_t n = fn(d.query(q), sims, labels);
        uint64_t dt = bench_now_ns() - t0;
        total += dt;
        bench_lat_add(&lat, dt);
        if (own_kth)
            for (uint32_t i = 0; i < n && i < K; i++)
                rec_own += sims[i] >= (*own_kth)[q] - RECALL_EPS;
        if (rescore)
            for (uint32_t i = 0; i < n; i++)
                sims[i] = dist_dot(d.query(q), d.base(labels[i]), d.dim);
        rec += recall_of(d, q, sims, n);
    }
    search_result r;
    r.recall = rec / d.n_queries;
    r.recall_own = own_kth ? rec_own / ((double)d.n_queries * K) : r.recall;
    r.p50_us = bench_lat_pct_us(&lat, 0.50);
    r.p99_us = bench_lat_pct_us(&lat, 0.99);
    r.qps = total ? (double)d.n_queries * 1e9 / (double)total : 0;
    bench_lat_fini(&lat);
    return r;
}

bool keep_multiple(void *arg, uint32_t doc)
{
    return doc % *(const uint32_t *)arg == 0;
}

/* Filtered search (ours only: hnswlib 0.6 has no filter): labels that are
 * multiples of `every` pass; ground truth is the filtered exact scan (of
 * the same index, so also for ours-f16 both sides use its similarities). */
void run_filtered(const dataset &d, const hnsw *h, uint32_t every,
                  const char *engine)
{
    bench_lat lat;
    bench_lat_init(&lat, d.n_queries);
    double rec = 0;
    uint64_t total = 0;
    for (uint32_t q = 0; q < d.n_queries; q++) {
        hnsw_hit w[K], x[K];
        uint32_t n = 0, nx = 0;
        uint64_t t0 = bench_now_ns();
        hnsw_search(h, d.query(q), K, 64, keep_multiple, &every, w, &n);
        uint64_t dt = bench_now_ns() - t0;
        total += dt;
        bench_lat_add(&lat, dt);
        hnsw_search_exact(h, d.query(q), K, keep_multiple, &every, x, &nx);
        uint32_t hit = 0;
        for (uint32_t i = 0; i < n; i++)
            hit += nx && w[i].sim >= x[nx - 1].sim - RECALL_EPS;
        rec += nx ? (double)hit / nx : 1.0;
    }
    double r = rec / d.n_queries, p50 = bench_lat_pct_us(&lat, 0.5),
           p99 = bench_lat_pct_us(&lat, 0.99),
           qps = total ? (double)d.n_queries * 1e9 / (double)total : 0;
    if (cfg.is_json)
        printf("{\"suite\":\"vector\",\"set\":\"%s\",\"engine\":\"%s\","
               "\"case\":\"filtered\",\"pass_pct\":%.0f,\"ef\":64,\"k\":%u,"
               "\"recall\":%.4f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"qps\":%.0f}\n",
               d.name.c_str(), engine, 100.0 / every, K, r, p50, p99, qps);
    else
        printf("%-10s %-9s filter %4.0f%% pass, ef 64  recall@10 %.4f  p50 %7.1f us"
               "  p99 %7.1f us  %8.0f QPS\n",
               d.name.c_str(), engine, 100.0 / every, r, p50, p99, qps);
    fflush(stdout);
    bench_lat_fini(&lat);
}

/* build_ours -- build, report, check a checkpoint round trip. */
hnsw *build_ours(const dataset &d, hnsw_elem elem, const char *engine)
{
    hnsw_params p = hnsw_params_default(d.dim);
    p.M = cfg.M;
    p.ef_construction = cfg.efc;
    p.elem = elem;
    hnsw *h = nullptr;
    size_t heap0 = heap_in_use();
    int rc = hnsw_new(&p, &h);
    if (rc != DM_OK)
        bench_die("hnsw_new: %s", err_last_msg());
    /* Sized up front, as hnswlib is (max_elements), so that neither
     * carries growth slack in the memory figures. */
    if ((rc = hnsw_reserve(h, d.n)) != DM_OK)
        bench_die("hnsw_reserve: %s", err_last_msg());
    uint64_t t0 = bench_now_ns();
    for (uint32_t i = 0; i < d.n; i++)
        if ((rc = hnsw_add(h, i, d.base(i))) != DM_OK)
            bench_die("hnsw_add: %s", err_last_msg());
    double build_s = (double)(bench_now_ns() - t0) / 1e9;
    /* Warm the scratch pool so that its one-time allocation is counted. */
    hnsw_hit hits[K];
    uint32_t nh;
    hnsw_search(h, d.query(0), K, 256, nullptr, nullptr, hits, &nh);
    print_build(d, engine, build_s, hnsw_memsize(h), heap_in_use() - heap0);

    /* Checkpoint round trip: size, save and load times, same answers. */
    buf b;
    buf_init(&b);
    t0 = bench_now_ns();
    if (hnsw_serialize(h, &b) != DM_OK)
        bench_die("hnsw_serialize: %s", err_last_msg());
    double save_ms = (double)(bench_now_ns() - t0) / 1e6;
    /* The first load takes memory the process never touched, which on a
     * virtual machine can cost more than the load itself; later loads
     * reuse pages.  Both are reported. */
    hnsw *h2 = nullptr;
    double load_first_ms = 0, load_ms = 0;
    for (int rep = 0; rep < 3; rep++) {
        hnsw_free(h2);
        h2 = nullptr;
        t0 = bench_now_ns();
        if (hnsw_deserialize(&p, buf_slice_of(b.ptr, b.len), &h2) != DM_OK)
            bench_die("hnsw_deserialize: %s", err_last_msg());
        double ms = (double)(bench_now_ns() - t0) / 1e6;
        if (rep == 0)
            load_first_ms = load_ms = ms;
        else if (ms < load_ms)
            load_ms = ms;
    }
    for (uint32_t q = 0; q < std::min<uint32_t>(d.n_queries, 100); q++) {
        hnsw_hit a[K], c[K];
        uint32_t na, nc;
        hnsw_search(h, d.query(q), K, 64, nullptr, nullptr, a, &na);
        hnsw_search(h2, d.query(q), K, 64, nullptr, nullptr, c, &nc);
        if (na != nc || memcmp(a, c, na * sizeof *a))
            bench_die("reloaded index answers differently (query %u)", q);
    }
    if (cfg.is_json)
        printf("{\"suite\":\"vector\",\"set\":\"%s\",\"engine\":\"%s\","
               "\"case\":\"checkpoint\",\"bytes\":%zu,\"save_ms\":%.1f,"
               "\"load_first_ms\":%.1f,\"load_ms\":%.1f,\"mem_bytes\":%zu}\n",
               d.name.c_str(), engine, b.len, save_ms, load_first_ms, load_ms,
               hnsw_memsize(h2));
    else
        printf("%-10s %-9s checkpoint %.1f MB  save %.1f ms  load %.1f ms (first "
               "%.1f ms)  memory after load %.1f MB; same answers\n",
               d.name.c_str(), engine, (double)b.len / 1e6, save_ms, load_ms,
               load_first_ms, (double)hnsw_memsize(h2) / 1e6);
    hnsw_free(h2);
    buf_fini(&b);

    return h;
}

/* hnswlib keeps no byte count; this adds up its allocations by structure. */
size_t hnswlib_estimate(const hnswlib::HierarchicalNSW<float> &a)
{
    size_t n = a.max_elements_;
    size_t bytes = n * a.size_data_per_element_;     /* level 0: links, vector, label */
    bytes += n * sizeof(void *);                     /* linkLists_ */
    for (size_t i = 0; i < a.cur_element_count; i++) /* upper layers */
        bytes += (size_t)a.element_levels_[i] * a.size_links_per_element_;
    bytes += n * sizeof(int);                        /* element_levels_ */
    bytes += n * sizeof(std::mutex);                 /* link_list_locks_ */
    bytes += a.max_update_element_locks * sizeof(std::mutex);
    bytes += a.label_lookup_.size() * 32 + a.label_lookup_.bucket_count() * 8;
    bytes += n * sizeof(hnswlib::vl_type);           /* one visited list */
    return bytes;
}

hnswlib::HierarchicalNSW<float> *build_hnswlib(const dataset &d,
                                               hnswlib::InnerProductSpace &space)
{
    size_t heap0 = heap_in_use();
    auto *a = new hnswlib::HierarchicalNSW<float>(&space, d.n, cfg.M, cfg.efc, 100);
    uint64_t t0 = bench_now_ns();
    for (uint32_t i = 0; i < d.n; i++)
        a->addPoint(d.base(i), i);
    double build_s = (double)(bench_now_ns() - t0) / 1e9;
    print_build(d, "hnswlib", build_s, hnswlib_estimate(*a), heap_in_use() - heap0);
    return a;
}

/*
 * search_both -- for every ef, ROUNDS rounds of the query set, the engines
 * taking turns within each round; each engine's figures are those of its
 * fastest round.  Taking turns puts both under the same machine load (the
 * machine may be shared), and the best round filters out interference.
 */
const int ROUNDS = 3;

/* A query function for run_queries over our index. */
auto ours_fn(const hnsw *h, uint32_t ef)
{
    return [=](const float *q, float *sims, uint32_t *labels) {
        hnsw_hit w[K];
        uint32_t n = 0;
        hnsw_search(h, q, K, ef, nullptr, nullptr, w, &n);
        for (uint32_t i = 0; i < n; i++) {
            sims[i] = w[i].sim;
            labels[i] = w[i].label;
        }
        return n;
    };
}

void search_both(const dataset &d, const hnsw *h, const hnsw *h16,
                 hnswlib::HierarchicalNSW<float> *a)
{
    auto theirs = [&](const float *q, float *sims, uint32_t *labels) {
        auto pq = a->searchKnn(q, K);
        uint32_t n = (uint32_t)pq.size();
        for (uint32_t i = n; i-- > 0;) {
            sims[i] = 1.0f - pq.top().first;
            labels[i] = (uint32_t)pq.top().second;
            pq.pop();
        }
        return n;
    };
    /* Warm-up: scratch pools, caches, page tables. */
    run_queries(d, ours_fn(h, 16));
    if (h16)
        run_queries(d, ours_fn(h16, 16), true);
    if (a) {
        a->setEf(16);
        run_queries(d, theirs);
    }
    for (uint32_t ef : EFS) {
        search_result best_o{}, best_t{}, best_h{};
        for (int r = 0; r < ROUNDS; r++) {
            search_result o = run_queries(d, ours_fn(h, ef));
            if (r == 0 || o.qps > best_o.qps)
                best_o = o;
            if (h16) {
                search_result x = run_queries(d, ours_fn(h16, ef), true);
                if (r == 0 || x.qps > best_h.qps)
                    best_h = x;
            }
            if (a) {
                a->setEf(ef);
                search_result t = run_queries(d, theirs);
                if (r == 0 || t.qps > best_t.qps)
                    best_t = t;
            }
        }
        print_search(d, "ours", ef, best_o);
        if (h16)
            print_search(d, "ours-f16", ef, best_h);
        if (a)
            print_search(d, "hnswlib", ef, best_t);
    }
}

void run_set(dataset &d)
{
    note("%s: %u vectors + %u queries, %u-d, M %u, ef_construction %u, k %u, "
         "one thread, kernel %s",
         d.name.c_str(), d.n, d.n_queries, d.dim, cfg.M, cfg.efc, K,
         dist_kernel_name());
    ground_truth(d);
    hnsw *h = build_ours(d, HNSW_ELEM_F32, "ours");
    hnsw *h16 = cfg.with_f16 ? build_ours(d, HNSW_ELEM_F16, "ours-f16") : nullptr;
    hnswlib::InnerProductSpace space(d.dim);
    hnswlib::HierarchicalNSW<float> *a = nullptr;
    if (cfg.with_hnswlib)
        a = build_hnswlib(d, space);
    search_both(d, h, h16, a);
    run_filtered(d, h, 10, "ours");
    run_filtered(d, h, 100, "ours");
    if (h16) {
        run_filtered(d, h16, 10, "ours-f16");
        run_filtered(d, h16, 100, "ours-f16");
    }
    delete a;
    hnsw_free(h16);
    hnsw_free(h);
}

/* ---------------------------------------------------------------- sweep */

/*
 * sweep_set -- for every ef_construction and element type: build by
 * incremental adds (the engine's way: no hnsw_reserve, so the memory
 * figure includes growth slack), then every ef_search of the list, best
 * of ROUNDS rounds.  Recall is rescored with exact float32 similarities
 * for both element types, so the rows compare the labels returned.
 */
void sweep_set(dataset &d)
{
    note("%s: ef_construction sweep, %u vectors + %u queries, %u-d, M %u, k %u, "
         "one thread, kernel %s",
         d.name.c_str(), d.n, d.n_queries, d.dim, cfg.M, K, dist_kernel_name());
    ground_truth(d);
    if (!cfg.is_json)
        printf("%-10s %-5s %5s %9s %9s %5s %9s %9s %9s %9s\n", "set", "elem",
               "efc", "build s", "B/vector", "ef", "recall@10", "vs own", "p50 us",
               "QPS");
    for (uint32_t efc : cfg.efc_list) {
        for (hnsw_elem elem : cfg.elems) {
            const char *ename = elem == HNSW_ELEM_F16 ? "f16" : "f32";
            hnsw_params p = hnsw_params_default(d.dim);
            p.M = cfg.M;
            p.ef_construction = efc;
            p.elem = elem;
            hnsw *h = nullptr;
            if (hnsw_new(&p, &h) != DM_OK)
                bench_die("hnsw_new: %s", err_last_msg());
            uint64_t t0 = bench_now_ns();
            for (uint32_t i = 0; i < d.n; i++)
                if (hnsw_add(h, i, d.base(i)) != DM_OK)
                    bench_die("hnsw_add: %s", err_last_msg());
            double build_s = (double)(bench_now_ns() - t0) / 1e9;
            run_queries(d, ours_fn(h, 16), true); /* warm-up */
            double per_vec = (double)hnsw_memsize(h) / d.n;
            auto exact = [=](const float *q, float *sims, uint32_t *labels) {
                hnsw_hit w[K];
                uint32_t n = 0;
                hnsw_search_exact(h, q, K, nullptr, nullptr, w, &n);
                for (uint32_t i = 0; i < n; i++) {
                    sims[i] = w[i].sim;
                    labels[i] = w[i].label;
                }
                return n;
            };
            /* The index's own exact answers: the 10th similarity. */
            std::vector<float> own_kth(d.n_queries, -INFINITY);
            for (uint32_t q = 0; q < d.n_queries; q++) {
                hnsw_hit w[K];
                uint32_t n = 0;
                hnsw_search_exact(h, d.query(q), K, nullptr, nullptr, w, &n);
                if (n)
                    own_kth[q] = w[n - 1].sim;
            }
            std::vector<uint32_t> efs = cfg.ef_list;
            efs.push_back(0);
            for (uint32_t ef : efs) {
                search_result best{};
                for (int r = 0; r < (ef ? ROUNDS : 1); r++) {
                    search_result x =
                        ef ? run_queries(d, ours_fn(h, ef), true, &own_kth)
                           : run_queries(d, exact, true, &own_kth);
                    if (r == 0 || x.qps > best.qps)
                        best = x;
                }
                if (cfg.is_json)
                    printf("{\"suite\":\"vector\",\"set\":\"%s\",\"engine\":"
                           "\"%s\",\"case\":\"sweep\",\"n\":%u,\"dim\":%u,"
                           "\"M\":%u,\"efc\":%u,\"ef\":%u,\"k\":%u,"
                           "\"build_s\":%.3f,\"mem_per_vector\":%.1f,"
                           "\"recall\":%.4f,\"recall_own\":%.4f,\"p50_us\":%.1f,"
                           "\"p99_us\":%.1f,\"qps\":%.0f}\n",
                           d.name.c_str(),
                           elem == HNSW_ELEM_F16 ? "ours-f16" : "ours", d.n, d.dim,
                           cfg.M, efc, ef, K, build_s, per_vec, best.recall,
                           best.recall_own, best.p50_us, best.p99_us, best.qps);
                else
                    printf("%-10s %-5s %5u %9.2f %9.0f %5s %9.4f %9.4f %9.1f "
                           "%9.0f\n",
                           d.name.c_str(), ename, efc, build_s, per_vec,
                           ef ? std::to_string(ef).c_str() : "exact", best.recall,
                           best.recall_own, best.p50_us, best.qps);
                fflush(stdout);
            }
            hnsw_free(h);
        }
    }
}

/* ------------------------------------------------------------ threshold */

void threshold_sweep()
{
    const uint32_t dim = 100, nq = 1000;
    const uint32_t sizes[] = { 256,  512,  1024, 2048, 2560, 3072,
                               3584, 4096, 5120, 6144, 8192, 16384 };
    note("flat threshold: hnsw_search (graph, ef 64, k 10) vs exact scan, "
         "%u-d clustered unit vectors, %u queries, kernel %s",
         dim, nq, dist_kernel_name());
    if (!cfg.is_json)
        printf("%8s %12s %12s %8s %8s\n", "n", "graph us", "exact us", "ratio",
               "recall");
    for (uint32_t n : sizes) {
        dataset d;
        d.name = "threshold";
        make_clustered(d, dim, n, nq, 7 + n);
        ground_truth(d);
        hnsw_params p = hnsw_params_default(dim);
        p.flat_threshold = 1;
        hnsw *h = nullptr;
        if (hnsw_new(&p, &h) != DM_OK)
            bench_die("hnsw_new");
        for (uint32_t i = 0; i < n; i++)
            if (hnsw_add(h, i, d.base(i)) != DM_OK)
                bench_die("hnsw_add: %s", err_last_msg());
        double g_us = 0, e_us = 0, rec = 0;
        for (int rep = 0; rep < 3; rep++) {
            uint64_t tg = 0, te = 0;
            rec = 0;
            for (uint32_t q = 0; q < nq; q++) {
                hnsw_hit w[K];
                uint32_t nw;
                float sims[K];
                uint64_t t0 = bench_now_ns();
                hnsw_search(h, d.query(q), K, 64, nullptr, nullptr, w, &nw);
                uint64_t t1 = bench_now_ns();
                for (uint32_t i = 0; i < nw; i++)
                    sims[i] = w[i].sim;
                rec += recall_of(d, q, sims, nw);
                hnsw_search_exact(h, d.query(q), K, nullptr, nullptr, w, &nw);
                uint64_t t2 = bench_now_ns();
                tg += t1 - t0;
                te += t2 - t1;
            }
            /* Best of three: the machine is shared. */
            double g = (double)tg / 1e3 / nq, e = (double)te / 1e3 / nq;
            if (rep == 0 || g < g_us)
                g_us = g;
            if (rep == 0 || e < e_us)
                e_us = e;
        }
        rec /= nq;
        if (cfg.is_json)
            printf("{\"suite\":\"vector\",\"case\":\"threshold\",\"n\":%u,"
                   "\"dim\":%u,\"graph_us\":%.2f,\"exact_us\":%.2f,"
                   "\"recall\":%.4f}\n",
                   n, dim, g_us, e_us, rec);
        else
            printf("%8u %12.2f %12.2f %8.2f %8.4f\n", n, g_us, e_us, g_us / e_us,
                   rec);
        fflush(stdout);
        hnsw_free(h);
    }
}

void usage()
{
    fprintf(stderr,
            "usage: bench_vector [-n N] [--dim D] [--queries Q] [--json]\n"
            "                    [--sets synthetic,real,file] [--vectors FILE]\n"
            "                    [--model PATH] [--M M] [--efc EF] [--no-hnswlib]\n"
            "                    [--f16] [--threshold]\n"
            "                    [--sweep [--efc-list A,B,..] [--ef-list A,B,..]\n"
            "                             [--elems f32,f16]]\n");
    exit(2);
}

/* A comma list of positive integers. */
std::vector<uint32_t> parse_list(const char *s)
{
    std::vector<uint32_t> v;
    std::string a = std::string(s) + ",";
    for (size_t pos = 0; pos < a.size();) {
        size_t end = a.find(',', pos);
        std::string x = a.substr(pos, end - pos);
        pos = end + 1;
        if (x.empty())
            continue;
        uint32_t u = (uint32_t)strtoul(x.c_str(), nullptr, 10);
        if (!u)
            usage();
        v.push_back(u);
    }
    if (v.empty())
        usage();
    return v;
}

std::vector<hnsw_elem> parse_elems(const char *s)
{
    std::vector<hnsw_elem> v;
    std::string a = std::string(s) + ",";
    for (size_t pos = 0; pos < a.size();) {
        size_t end = a.find(',', pos);
        std::string x = a.substr(pos, end - pos);
        pos = end + 1;
        if (x == "f32")
            v.push_back(HNSW_ELEM_F32);
        else if (x == "f16")
            v.push_back(HNSW_ELEM_F16);
        else if (!x.empty())
            usage();
    }
    if (v.empty())
        usage();
    return v;
}

} // namespace

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        bool has_val = i + 1 < argc;
        if (a == "--json")
            cfg.is_json = true;
        else if (a == "--no-hnswlib")
            cfg.with_hnswlib = false;
        else if (a == "--threshold")
            cfg.is_threshold = true;
        else if (a == "--f16")
            cfg.with_f16 = true;
        else if (a == "--sweep")
            cfg.is_sweep = true;
        else if (a == "--efc-list" && has_val)
            cfg.efc_list = parse_list(argv[++i]);
        else if (a == "--ef-list" && has_val)
            cfg.ef_list = parse_list(argv[++i]);
        else if (a == "--elems" && has_val)
            cfg.elems = parse_elems(argv[++i]);
        else if (a == "-n" && has_val)
            cfg.n = (uint32_t)strtoul(argv[++i], nullptr, 10);
        else if (a == "--dim" && has_val)
            cfg.dim = (uint32_t)strtoul(argv[++i], nullptr, 10);
        else if (a == "--queries" && has_val)
            cfg.n_queries = (uint32_t)strtoul(argv[++i], nullptr, 10);
        else if (a == "--M" && has_val)
            cfg.M = (uint32_t)strtoul(argv[++i], nullptr, 10);
        else if (a == "--efc" && has_val)
            cfg.efc = (uint32_t)strtoul(argv[++i], nullptr, 10);
        else if (a == "--sets" && has_val)
            cfg.sets = argv[++i];
        else if (a == "--vectors" && has_val) {
            cfg.vectors_path = argv[++i];
            if (cfg.sets == "synthetic,real")
                cfg.sets = "file";
        } else if (a == "--model" && has_val)
            cfg.model_path = argv[++i];
        else
            usage();
    }
    if (cfg.n < 1 || cfg.dim < 1 || cfg.n_queries < 1)
        usage();
    if (cfg.is_threshold) {
        threshold_sweep();
        return 0;
    }
    std::string sets = cfg.sets + ",";
    for (size_t pos = 0; pos < sets.size();) {
        size_t end = sets.find(',', pos);
        std::string s = sets.substr(pos, end - pos);
        pos = end + 1;
        if (s.empty())
            continue;
        dataset d;
        d.name = s;
        if (s == "synthetic")
            make_clustered(d, cfg.dim, cfg.n, cfg.n_queries, 42);
        else if (s == "real") {
            if (!make_real(d, cfg.n, cfg.n_queries))
                continue;
        } else if (s == "file") {
            if (cfg.vectors_path.empty())
                bench_die("--sets file needs --vectors FILE");
            read_file(d, cfg.vectors_path, cfg.dim, cfg.n, cfg.n_queries);
        } else {
            fprintf(stderr, "unknown set '%s'\n", s.c_str());
            usage();
        }
        if (cfg.is_sweep)
            sweep_set(d);
        else
            run_set(d);
    }
    return 0;
}
