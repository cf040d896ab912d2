/*
 * bench_embed.c -- the built-in embedding model: speed of sentence
 * embedding, and vector-only retrieval quality on LoCoMo.
 *
 *   bench_embed [--model PATH] [--locomo DIR] [--seconds S]
 *
 * SPEED.  One thread embeds sentences one per call (the latency a single
 * memory write or query pays) and then 64 per call, for about S seconds
 * each (default 2), and reports sentences per second, the mean wall and
 * thread-CPU microseconds per sentence, and the p50/p99 of each call's
 * time divided by its sentences.  The sentences are the LoCoMo turns
 * when --locomo is given (real conversational text, 2,760 turns), else a
 * fixed built-in list.
 *
 * LOCOMO (--locomo DIR, the folder of turns.dev.jsonl/questions.dev.jsonl;
 * see its README.md).  Each conversation is one user's memory: every turn
 * (its text, plus the image caption when there is one) is embedded; for
 * each question with evidence, the turns of its own conversation are ranked
 * by cosine with the question's embedding (ties: earlier turn first), and
 * frac@k (share of the evidence turns in the top k), any@k and all@k are
 * averaged over questions, for k = 5, 10, 25, overall and per category.
 * When the model stores a common component the measurement runs twice,
 * with and without removing it, which is how the converter's default was
 * chosen (docs/format.md, "Embedding model file", rationale).
 *
 * Default model path: $DM_SOURCE_DIR/models/glove-6b-100d.dmm, else
 * models/glove-6b-100d.dmm relative to the working directory.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
/* bench_util.h also holds directory helpers this benchmark does not use. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "bench_util.h"
#pragma GCC diagnostic pop
#include "deltamemory.h"
#include "embed/embed.h"
#include "embed/embed_int.h"

static const char *const builtin_sentences[] = {
    "My wife and I are going hiking in the mountains this weekend.",
    "I started learning Python last month and I love it.",
    "Our team moved the database from MySQL to SQLite.",
    "She is allergic to peanuts, so we never order Thai food.",
    "The deadline for the project was moved to next Friday.",
    "I adopted a dog from the shelter; his name is Max.",
    "We celebrated my daughter's birthday at the beach.",
    "He works as a nurse at the children's hospital downtown.",
    "I've been running every morning to train for a marathon.",
    "The meeting with the investors went better than expected.",
    "Can you remind me to call my mother on Sunday?",
    "I prefer tea over coffee, especially green tea.",
    "They bought a small house near the lake last year.",
    "My favorite book is a well-known novel about a whale.",
    "We deploy everything with Docker containers on GitHub Actions.",
    "I'm nervous about the job interview tomorrow.",
};

/* ------------------------------------------------------------- LoCoMo */

typedef struct turn {
    int conv;
    char *dia_id;
    char *text;
} turn;

typedef struct question {
    int conv;
    int category;
    char *text;
    char **evidence;
    int n_evidence;
} question;

typedef struct corpus {
    turn *turns;
    size_t n_turns, cap_turns;
    question *qs;
    size_t n_qs, cap_qs;
    char **convs;
    int n_convs;
} corpus;

static int conv_index(corpus *c, const char *id)
{
    for (int i = 0; i < c->n_convs; i++)
        if (strcmp(c->convs[i], id) == 0)
            return i;
    c->convs = realloc(c->convs, (size_t)(c->n_convs + 1) * sizeof *c->convs);
    c->convs[c->n_convs] = strdup(id);
    return c->n_convs++;
}

static FILE *open_in(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f)
        bench_die("cannot open %s", path);
    return f;
}

static void load_locomo(const char *dir, corpus *c)
{
    memset(c, 0, sizeof *c);
    char *line = NULL;
    size_t cap = 0;
    FILE *f = open_in(dir, "turns.dev.jsonl");
    while (getline(&line, &cap, f) > 0) {
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        if (!o)
            bench_die("turns.dev.jsonl: %s", je.text);
        const char *text = json_string_value(json_object_get(o, "text"));
        const char *cap_s = json_string_value(json_object_get(o, "blip_caption"));
        if (c->n_turns == c->cap_turns) {
            c->cap_turns = c->cap_turns ? 2 * c->cap_turns : 1024;
            c->turns = realloc(c->turns, c->cap_turns * sizeof *c->turns);
        }
        turn *t = &c->turns[c->n_turns++];
        t->conv = conv_index(c, json_string_value(json_object_get(o, "conv_id")));
        t->dia_id = strdup(json_string_value(json_object_get(o, "dia_id")));
        size_t n = strlen(text ? text : "") + (cap_s ? strlen(cap_s) + 2 : 0) + 1;
        t->text = bench_xmalloc(n);
        snprintf(t->text, n, "%s%s%s", text ? text : "", cap_s ? ". " : "",
                 cap_s ? cap_s : "");
        json_decref(o);
    }
    fclose(f);
    f = open_in(dir, "questions.dev.jsonl");
    while (getline(&line, &cap, f) > 0) {
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        if (!o)
            bench_die("questions.dev.jsonl: %s", je.text);
        if (c->n_qs == c->cap_qs) {
            c->cap_qs = c->cap_qs ? 2 * c->cap_qs : 1024;
            c->qs = realloc(c->qs, c->cap_qs * sizeof *c->qs);
        }
        question *q = &c->qs[c->n_qs++];
        q->conv = conv_index(c, json_string_value(json_object_get(o, "conv_id")));
        q->category = (int)json_integer_value(json_object_get(o, "category"));
        q->text = strdup(json_string_value(json_object_get(o, "question")));
        json_t *ev = json_object_get(o, "evidence");
        q->n_evidence = (int)json_array_size(ev);
        q->evidence = bench_xmalloc((size_t)(q->n_evidence + 1) * sizeof(char *));
        for (int i = 0; i < q->n_evidence; i++)
            q->evidence[i] = strdup(json_string_value(json_array_get(ev, (size_t)i)));
        json_decref(o);
    }
    free(line);
    fclose(f);
}

static void free_corpus(corpus *c)
{
    for (size_t i = 0; i < c->n_turns; i++) {
        free(c->turns[i].dia_id);
        free(c->turns[i].text);
    }
    for (size_t i = 0; i < c->n_qs; i++) {
        for (int k = 0; k < c->qs[i].n_evidence; k++)
            free(c->qs[i].evidence[k]);
        free(c->qs[i].evidence);
        free(c->qs[i].text);
    }
    for (int i = 0; i < c->n_convs; i++)
        free(c->convs[i]);
    free(c->convs);
    free(c->turns);
    free(c->qs);
}

static void embed_all(embedder *e, char *const *texts, size_t n, float *out)
{
    uint32_t dim = embedder_dim(e);
    size_t *lens = bench_xmalloc(n * sizeof *lens);
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(texts[i]);
    for (size_t i = 0; i < n; i += 256) {
        size_t k = n - i < 256 ? n - i : 256;
        int rc = embedder_embed(e, (const char *const *)texts + i, lens + i, k,
                                out + i * dim);
        if (rc != DM_OK)
            bench_die("embed: %s: %s", dm_errname(rc), err_last_msg());
    }
    free(lens);
}

#define N_K 3
static const int ks[N_K] = { 5, 10, 25 };
#define N_CAT 6 /* index 0 = all, 1..5 = categories */

typedef struct scores {
    double frac[N_CAT][N_K], any[N_CAT][N_K], all[N_CAT][N_K];
    int n[N_CAT];
} scores;

static void locomo_eval(embedder *e, const corpus *c, scores *s)
{
    uint32_t dim = embedder_dim(e);
    char **tt = bench_xmalloc(c->n_turns * sizeof *tt);
    char **qt = bench_xmalloc(c->n_qs * sizeof *qt);
    for (size_t i = 0; i < c->n_turns; i++)
        tt[i] = c->turns[i].text;
    for (size_t i = 0; i < c->n_qs; i++)
        qt[i] = c->qs[i].text;
    float *tv = bench_xmalloc(c->n_turns * dim * sizeof *tv);
    float *qv = bench_xmalloc(c->n_qs * dim * sizeof *qv);
    embed_all(e, tt, c->n_turns, tv);
    embed_all(e, qt, c->n_qs, qv);
    memset(s, 0, sizeof *s);
    int kmax = ks[N_K - 1];
    size_t *top = bench_xmalloc((size_t)kmax * sizeof *top);
    float *topv = bench_xmalloc((size_t)kmax * sizeof *topv);
    for (size_t qi = 0; qi < c->n_qs; qi++) {
        const question *q = &c->qs[qi];
        if (q->n_evidence == 0)
            continue;
        /* Top kmax turns of the question's conversation, best first; a
         * strictly greater score is needed to pass an earlier turn. */
        int nt = 0;
        for (size_t ti = 0; ti < c->n_turns; ti++) {
            if (c->turns[ti].conv != q->conv)
                continue;
            float d = 0;
            for (uint32_t j = 0; j < dim; j++)
                d += qv[qi * dim + j] * tv[ti * dim + j];
            if (nt == kmax && !(d > topv[nt - 1]))
                continue;
            int p = nt < kmax ? nt++ : kmax - 1;
            while (p > 0 && d > topv[p - 1]) {
                top[p] = top[p - 1];
                topv[p] = topv[p - 1];
                p--;
            }
            top[p] = ti;
            topv[p] = d;
        }
        int cat = q->category >= 1 && q->category <= 5 ? q->category : 0;
        for (int ki = 0; ki < N_K; ki++) {
            int found = 0;
            for (int ev = 0; ev < q->n_evidence; ev++)
                for (int r = 0; r < ks[ki] && r < nt; r++)
                    if (strcmp(c->turns[top[r]].dia_id, q->evidence[ev]) == 0) {
                        found++;
                        break;
                    }
            double fr = (double)found / q->n_evidence;
            for (int g = 0; g < 2; g++) {
                int b = g == 0 ? 0 : cat;
                if (g == 1 && cat == 0)
                    continue;
                s->frac[b][ki] += fr;
                s->any[b][ki] += found > 0;
                s->all[b][ki] += found == q->n_evidence;
            }
        }
        s->n[0]++;
        if (cat)
            s->n[cat]++;
    }
    for (int b = 0; b < N_CAT; b++)
        for (int ki = 0; ki < N_K; ki++)
            if (s->n[b]) {
                s->frac[b][ki] *= 100.0 / s->n[b];
                s->any[b][ki] *= 100.0 / s->n[b];
                s->all[b][ki] *= 100.0 / s->n[b];
            }
    free(topv);
    free(top);
    free(qv);
    free(tv);
    free(qt);
    free(tt);
}

static void print_scores(const char *label, const scores *s)
{
    printf("  %s (%d questions with evidence)\n", label, s->n[0]);
    printf("    k    frac   any   all  | frac by category: 1 multi-hop, 2 temporal, "
           "3 open-domain, 4 single-hop, 5 adversarial\n");
    for (int ki = 0; ki < N_K; ki++) {
        printf("    %-3d %5.1f %5.1f %5.1f  |", ks[ki], s->frac[0][ki],
               s->any[0][ki], s->all[0][ki]);
        for (int b = 1; b < N_CAT; b++)
            printf(" %d:%5.1f", b, s->frac[b][ki]);
        printf("\n");
    }
}

/* -------------------------------------------------------------- speed */

/* The thread's CPU time: on a shared machine it stays meaningful when the
 * wall clock includes time the benchmark spent preempted. */
static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void speed(embedder *e, char *const *texts, size_t n, double seconds,
                  size_t per_call)
{
    uint32_t dim = embedder_dim(e);
    size_t *lens = bench_xmalloc(n * sizeof *lens);
    uint64_t bytes = 0, words = 0;
    for (size_t i = 0; i < n; i++) {
        lens[i] = strlen(texts[i]);
        bytes += lens[i];
        words += embedder_known_words(e, texts[i], lens[i]);
    }
    float *out = bench_xmalloc(per_call * dim * sizeof *out);
    /* Warm-up: one pass, so page faults on the mapping are not timed. */
    for (size_t i = 0; i < n; i++)
        embedder_embed(e, (const char *const *)&texts[i], &lens[i], 1, out);
    bench_lat lat;
    bench_lat_init(&lat, 4u << 20);
    uint64_t c0 = thread_cpu_ns();
    uint64_t done = 0, t0 = bench_now_ns(), deadline = t0 + (uint64_t)(seconds * 1e9);
    size_t i = 0;
    for (;;) {
        size_t k = per_call < n - i ? per_call : n - i;
        uint64_t a = bench_now_ns();
        int rc = embedder_embed(e, (const char *const *)texts + i, lens + i, k, out);
        uint64_t b = bench_now_ns();
        if (rc != DM_OK)
            bench_die("embed: %s", err_last_msg());
        bench_lat_add(&lat, (b - a) / k);
        done += k;
        i += k;
        if (i == n)
            i = 0;
        if (b >= deadline)
            break;
    }
    double dt = (double)(bench_now_ns() - t0) / 1e9;
    double cpu = (double)(thread_cpu_ns() - c0) / 1e9;
    printf("  %3zu text%s per call: %8.0f sentences/s  %6.2f us/sentence "
           "(wall), %6.2f us/sentence (thread CPU); per call, per sentence: "
           "p50 %.2f, p99 %.2f us\n",
           per_call, per_call == 1 ? " " : "s", (double)done / dt,
           dt * 1e6 / (double)done, cpu * 1e6 / (double)done,
           bench_lat_pct_us(&lat, 0.5), bench_lat_pct_us(&lat, 0.99));
    if (per_call == 1)
        printf("  corpus: %zu sentences, %.1f bytes and %.1f known words per "
               "sentence\n",
               n, (double)bytes / n, (double)words / n);
    bench_lat_fini(&lat);
    free(out);
    free(lens);
}

int main(int argc, char **argv)
{
    const char *model = NULL, *locomo = NULL;
    double seconds = 2.0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--model") == 0 && i + 1 < argc)
            model = argv[++i];
        else if (strcmp(argv[i], "--locomo") == 0 && i + 1 < argc)
            locomo = argv[++i];
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_embed [--model PATH] [--locomo DIR] "
                            "[--seconds S]\n");
            return 2;
        }
    }
    char defpath[4096];
    if (!model) {
        const char *src = getenv("DM_SOURCE_DIR");
        snprintf(defpath, sizeof defpath, "%s%smodels/glove-6b-100d.dmm",
                 src ? src : "", src ? "/" : "");
        model = defpath;
    }
    embedder *e = NULL;
    uint64_t t0 = bench_now_ns();
    int rc = embed_builtin_open(model, &e);
    uint64_t t1 = bench_now_ns();
    if (rc != DM_OK)
        bench_die("%s: %s", dm_errname(rc), err_last_msg());
    printf("model %s: %s, dim %u, %u words, opened (validated) in %.1f ms\n",
           model, embedder_name(e), embedder_dim(e), embed_builtin_n_words(e),
           (double)(t1 - t0) / 1e6);

    corpus c;
    memset(&c, 0, sizeof c);
    char **texts;
    size_t n;
    if (locomo) {
        load_locomo(locomo, &c);
        n = c.n_turns;
        texts = bench_xmalloc(n * sizeof *texts);
        for (size_t i = 0; i < n; i++)
            texts[i] = c.turns[i].text;
    } else {
        n = sizeof builtin_sentences / sizeof builtin_sentences[0];
        texts = bench_xmalloc(n * sizeof *texts);
        for (size_t i = 0; i < n; i++)
            texts[i] = (char *)builtin_sentences[i];
    }
    printf("speed, one thread (%s sentences):\n", locomo ? "LoCoMo turn" : "built-in");
    speed(e, texts, n, seconds, 1);
    speed(e, texts, n, seconds, 64);

    if (locomo) {
        printf("LoCoMo vector-only retrieval (%d conversations, %zu turns, "
               "%zu questions):\n",
               c.n_convs, c.n_turns, c.n_qs);
        scores s;
        if (embed_builtin_common(e)) {
            const int order[2] = { 1, 0 };
            for (int v = 0; v < 2; v++) {
                embed_builtin_set_common_removal(e, order[v]);
                locomo_eval(e, &c, &s);
                print_scores(order[v] ? "common component removed"
                                      : "common component kept",
                             &s);
            }
        } else {
            locomo_eval(e, &c, &s);
            print_scores("model without a common component", &s);
        }
    }
    free(texts);
    free_corpus(&c);
    embedder_close(e);
    return 0;
}
