/*
 * cmd_eval.c -- deltamemory eval locomo: measures retrieval on the LoCoMo
 * long-conversation benchmark (the format is described in the data's
 * README: one turn a line, one question a line).
 *
 * What it does.  Every conversation becomes one user (user_id = conv_id)
 * and every turn one memory:
 *     text       "<speaker>: <text>", plus " [shares a photo: <caption>]"
 *                when the turn has a blip_caption (the caption is part of
 *                what was said; without it some evidence turns are empty);
 *     event time session_time (ISO 8601 without a zone, read as UTC) plus
 *                the turn's 0-based position within its session, in
 *                microseconds: every turn of a session carries the
 *                session's start, and the offset keeps them in file order
 *                for recency and for the session neighbours of a hit
 *                without moving any turn by a perceptible amount;
 *     session    "<conv_id>/session_<n>", role "user";
 *     metadata   {"dia_id": ..., "speaker": ...}, through which each hit
 *                is mapped back to its turn.
 * Turns go to dm_add_batch 256 at a time, and their facts, events and
 * knowledge graph are extracted behind the adds (the engine's default;
 * the questions wait for dm_sync_extraction), so the graph leg has
 * something to walk; with --no-extract they are stored only (retrieval
 * on the text alone); with --remember they go through dm_remember one by
 * one, each waiting for its own extraction.  Each question with evidence is
 * then asked of its own conversation's user, k deep, and scored per
 * category and overall: frac@k (the mean percentage of the question's
 * evidence turns in the top k), any@k and all@k (the percentage of
 * questions with at least one, or all, of them in the top k).
 *
 * Design.  Both files are read and validated completely before a database
 * is opened, so a bad line (reported as FILE:LINE: reason, exit 1) never
 * leaves a half-filled database behind.  The database is --data DIR when
 * that was given explicitly (kept afterwards; it must not already hold the
 * conversations, or the memories would be stored twice), otherwise a fresh
 * directory made with mkdtemp under $TMPDIR (or /tmp), written without
 * fsync unless --sync says otherwise, and removed at the end, on error
 * paths too.  An interrupted run (a signal) leaves that directory behind.
 *
 * Every search passes DM_NO_REFRESH, so that returning a memory for one
 * question does not raise its salience for the next: the questions are
 * independent and their order does not matter.  The reference time of a
 * search (now_us) is --time when given, else the event time of the last
 * turn of the question's conversation: the questions are asked "at the end
 * of the conversation", which is what relative expressions ("last week")
 * and recency are meant to be measured against, rather than the day the
 * evaluation happens to run.  Each k is its own search with that k, as a
 * user asking for k memories gets them (MMR and the context neighbours
 * depend on k); the --dump search is as deep as the dump.  The search
 * depth is k (the legs' default depth, 50, when k is smaller), so that
 * every leg can fill the top k.  Latency is that of the largest k.
 *
 * Modes (what each stage of retrieval adds):
 *     vector  the vector leg alone, ranked by similarity only (weights
 *             1/0/0), no MMR, no neighbours, no time expressions;
 *     bm25    the same with the BM25 leg;
 *     fused   every leg fused by RRF, time expressions on, similarity
 *             weight only, no MMR, no neighbours;
 *     full    the engine's defaults.
 * --mode all runs the four, in that order, on one ingested database.
 *
 * Evidence.  The field used is "evidence", a list of dia_ids.  In the
 * shared development split it is already clean (the original annotations
 * are kept beside it as evidence_raw / evidence_dropped, e.g. "D8:6; D9:17"
 * in one string, "D:11:26", a bare "D", or an id of a turn that does not
 * exist), but other copies of LoCoMo carry those forms in "evidence"
 * itself, so every entry is split on spaces, tabs, ';' and ',', a "D:"
 * prefix followed by a digit is read as "D" ("D:11:26" is "D11:26"), and
 * repeats within a question count once.  An id that matches no turn of the
 * conversation cannot be retrieved but still counts in the question's
 * denominator (the question is as hard as annotated); how many such ids
 * exist is reported.  A question left with no evidence is skipped and
 * counted.
 *
 * Output: a fixed-width table per mode (and for --mode all a summary of
 * overall frac@k per mode), or with --json one document.  The ingest time
 * (including the wait for the background indexer) and the mean, median
 * and 99th-percentile wall-clock latency of dm_search are printed for
 * information; they depend on the machine.  --dump writes one JSON line per
 * scored question of the last mode run (of "full" with --mode all): qid,
 * category, evidence and the retrieved dia_ids in rank order, at least 25
 * deep (null for a hit that is not one of the file's turns).
 *
 * Locking: none; the command is single-threaded.
 */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/clock.h"

#define N_OPTS(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_KS 8            /* cut-offs in --k */
#define MAX_K 1000u         /* dm_search's limit */
#define MAX_CATEGORY 99     /* categories are small integers (1..5 today) */
#define INGEST_CHUNK 256    /* turns per dm_add_batch */
#define DUMP_DEPTH 25u      /* the dump lists at least this many hits */
#define DEFAULT_DEPTH 50u   /* dm_search's default candidates per leg */
#define WHY_CAP 512

/* ------------------------------------------------------------ the data */

/* How many turns of one session have been read so far. */
typedef struct sess_count {
    int64_t session;
    uint32_t n;
} sess_count;

/* One conversation = one user. */
typedef struct conv {
    char *id;
    int64_t now_us;         /* event time of its last turn */
    uint64_t n_turns;
    sess_count *sessions;
    size_t n_sessions, cap_sessions;
} conv;

/* One turn, ready to be stored. */
typedef struct turn {
    uint32_t conv;          /* index into eval_ctx.convs */
    char *dia_id;
    char *session_id;       /* "<conv_id>/session_<n>" */
    char *text;             /* "<speaker>: <text>[ [shares a photo: ...]]" */
    char *metadata;         /* {"dia_id":...,"speaker":...}, free() */
    char *speaker;
    int64_t event_us;
    uint64_t line_no;
} turn;

/* One evidence id of a question; t is NULL when no turn has that id. */
typedef struct evid {
    char *id;
    const turn *t;
} evid;

/* One question that has evidence (the others are only counted). */
typedef struct question {
    uint32_t conv;
    char *qid;
    char *text;
    int category;
    evid *ev;
    size_t n_ev;
} question;

/* The sums behind one row of a table. */
typedef struct tally {
    uint64_t n;
    double frac[MAX_KS];    /* sum of per-question fractions */
    uint64_t any[MAX_KS];
    uint64_t all[MAX_KS];
} tally;

typedef struct mode_def {
    const char *name;
    const char *what;       /* for the tables */
    unsigned legs;
    unsigned flags;         /* besides DM_NO_REFRESH */
    dm_weights weights;
} mode_def;

typedef struct mode_result {
    const mode_def *mode;
    tally cat[MAX_CATEGORY + 1];
    tally overall;
    double lat_mean_ms, lat_p50_ms, lat_p99_ms;
} mode_result;

typedef struct eval_ctx {
    const char *cmd;
    const char *turns_path;
    conv *convs;
    size_t n_convs, cap_convs;
    size_t last_conv;       /* lookup cache: lines come grouped */
    turn *turns;
    size_t n_turns, cap_turns;
    const turn **by_id;     /* turns sorted by (conv, dia_id, line) */
    question *qs;
    size_t n_qs, cap_qs;
    uint64_t n_skipped;     /* questions without evidence */
    uint64_t n_unmatched;   /* evidence ids that match no turn */
    char *cat_names[MAX_CATEGORY + 1];
    uint32_t ks[MAX_KS];
    size_t n_ks;
    uint32_t search_k;
    bool has_time;
    int64_t time_us;        /* --time */
    double ingest_s;
    bool is_remember;       /* --remember: turns through dm_remember */
    bool is_no_extract;     /* --no-extract: turns stored only */
} eval_ctx;

static const mode_def modes[] = {
    { "vector", "vector leg alone, similarity only", DM_LEG_VECTOR,
      DM_NO_MMR | DM_NO_NEIGHBOURS | DM_NO_TIME_PARSE, { 1, 0, 0 } },
    { "bm25", "BM25 leg alone, keyword score only", DM_LEG_BM25,
      DM_NO_MMR | DM_NO_NEIGHBOURS | DM_NO_TIME_PARSE, { 1, 0, 0 } },
    { "fused", "all legs fused (RRF), query time expressions", 0,
      DM_NO_MMR | DM_NO_NEIGHBOURS, { 1, 0, 0 } },
    { "full", "defaults: + recency, salience, MMR, neighbours", 0, 0,
      { 0, 0, 0 } },
};
#define N_MODES (sizeof modes / sizeof modes[0])

static const char *const default_cat_names[] = {
    NULL, "multi-hop", "temporal", "open-domain", "single-hop", "adversarial",
};

/* ---------------------------------------------------------- small tools */

__attribute__((format(printf, 1, 2)))
static char *str_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *s = dm_malloc((size_t)n + 1);
    if (!s)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* Grows *arr (elements of size sz, *cap of them) to hold at least need;
 * 0, or -1 when out of memory (the array is kept). */
static int reserve(void **arr, size_t *cap, size_t need, size_t sz)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 16;
    while (nc < need)
        nc *= 2;
    void *p = dm_realloc(*arr, nc * sz);
    if (!p)
        return -1;
    *arr = p;
    *cap = nc;
    return 0;
}

/* Room for element n (one more after n elements). */
static int grow(void **arr, size_t *cap, size_t n, size_t sz)
{
    return reserve(arr, cap, n + 1, sz);
}

/* A string member: 0 with *out set (NULL when absent and !is_required),
 * -1 with the reason in why. */
static int get_string(json_t *root, const char *key, bool is_required,
                      const char **out, char *why)
{
    json_t *v = json_object_get(root, key);
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (!is_required)
            return 0;
        snprintf(why, WHY_CAP, "\"%s\" is missing", key);
        return -1;
    }
    if (!json_is_string(v)) {
        snprintf(why, WHY_CAP, "\"%s\" must be a string", key);
        return -1;
    }
    /* The engine takes NUL-terminated text; a \u0000 would cut it short. */
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        snprintf(why, WHY_CAP, "\"%s\" contains a NUL character", key);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

static int get_nonempty(json_t *root, const char *key, const char **out,
                        char *why)
{
    if (get_string(root, key, true, out, why) != 0)
        return -1;
    if (!**out) {
        snprintf(why, WHY_CAP, "\"%s\" is empty", key);
        return -1;
    }
    return 0;
}

static int get_int(json_t *root, const char *key, json_int_t min,
                   json_int_t max, json_int_t *out, char *why)
{
    json_t *v = json_object_get(root, key);
    if (!v) {
        snprintf(why, WHY_CAP, "\"%s\" is missing", key);
        return -1;
    }
    if (!json_is_integer(v) || json_integer_value(v) < min ||
        json_integer_value(v) > max) {
        snprintf(why, WHY_CAP, "\"%s\" must be a whole number from %" PRId64
                 " to %" PRId64, key, (int64_t)min, (int64_t)max);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}


/* ------------------------------------------------------------- reading */

typedef int (*line_fn)(eval_ctx *x, json_t *root, uint64_t line_no,
                       char *why);

/*
 * Reads a JSON Lines file, one object a line, calling fn on each; blank
 * lines are skipped.  fn returns 0, -1 with the reason in why (reported
 * as PATH:LINE: why), or -2 for out of memory.  Returns the exit status.
 */
static int read_jsonl(eval_ctx *x, const char *path, line_fn fn)
{
    char why[WHY_CAP];
    char *line = NULL;
    size_t line_cap = 0;
    uint64_t line_no = 0, n_objects = 0;
    ssize_t n;
    int st = CLI_OK;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return cli_error(x->cmd, "cannot open %s: %s", path, strerror(errno));
    while ((n = getline(&line, &line_cap, fp)) >= 0) {
        line_no++;
        size_t len = (size_t)n;
        while (len > 0 && strchr(" \t\r\n", line[len - 1]))
            len--;
        if (len == 0)
            continue;
        json_error_t je;
        json_t *root = json_loadb(line, len, 0, &je);
        if (!root) {
            st = cli_error(x->cmd, "%s:%" PRIu64 ": not valid JSON at "
                           "column %d: %s", path, line_no, je.column, je.text);
            goto done;
        }
        if (!json_is_object(root)) {
            json_decref(root);
            st = cli_error(x->cmd, "%s:%" PRIu64 ": not a JSON object", path,
                           line_no);
            goto done;
        }
        why[0] = 0;
        int rc = fn(x, root, line_no, why);
        json_decref(root);
        if (rc == -2) {
            st = cli_error(x->cmd, "out of memory");
            goto done;
        }
        if (rc != 0) {
            st = cli_error(x->cmd, "%s:%" PRIu64 ": %s", path, line_no, why);
            goto done;
        }
        n_objects++;
    }
    if (ferror(fp)) {
        st = cli_error(x->cmd, "cannot read %s after line %" PRIu64 ": %s",
                       path, line_no, strerror(errno));
        goto done;
    }
    if (n_objects == 0)
        st = cli_error(x->cmd, "%s: no lines to read", path);

done:
    free(line);
    fclose(fp);
    return st;
}

static int find_conv(const eval_ctx *x, const char *id)
{
    if (x->last_conv < x->n_convs && !strcmp(x->convs[x->last_conv].id, id))
        return (int)x->last_conv;
    for (size_t i = 0; i < x->n_convs; i++)
        if (!strcmp(x->convs[i].id, id))
            return (int)i;
    return -1;
}

/* The position of the next turn of session s in conversation c. */
static int next_position(conv *c, int64_t s, uint32_t *pos)
{
    for (size_t i = 0; i < c->n_sessions; i++) {
        if (c->sessions[i].session == s) {
            *pos = c->sessions[i].n++;
            return 0;
        }
    }
    if (grow((void **)&c->sessions, &c->cap_sessions, c->n_sessions,
             sizeof *c->sessions) != 0)
        return -1;
    c->sessions[c->n_sessions].session = s;
    c->sessions[c->n_sessions].n = 1;
    c->n_sessions++;
    *pos = 0;
    return 0;
}

static int turn_line(eval_ctx *x, json_t *root, uint64_t line_no,
                     char *why)
{
    const char *conv_id, *session_time, *dia_id, *speaker, *text, *caption;
    json_int_t session;
    int64_t start_us;
    if (get_nonempty(root, "conv_id", &conv_id, why) != 0 ||
        get_int(root, "session", 0, 1000000, &session, why) != 0 ||
        get_nonempty(root, "session_time", &session_time, why) != 0 ||
        get_nonempty(root, "dia_id", &dia_id, why) != 0 ||
        get_nonempty(root, "speaker", &speaker, why) != 0 ||
        get_string(root, "text", true, &text, why) != 0 ||
        get_string(root, "blip_caption", false, &caption, why) != 0)
        return -1;
    if (strlen(conv_id) > DM_MAX_NAME_LEN) {
        snprintf(why, WHY_CAP, "\"conv_id\" is longer than %d bytes",
                 DM_MAX_NAME_LEN);
        return -1;
    }
    if (dm_time_parse(session_time, &start_us) != DM_OK) {
        snprintf(why, WHY_CAP, "\"session_time\": \"%.40s\" is not an ISO "
                 "8601 time: %s", session_time, dm_errmsg());
        return -1;
    }

    int ci = find_conv(x, conv_id);
    if (ci < 0) {
        if (grow((void **)&x->convs, &x->cap_convs, x->n_convs,
                 sizeof *x->convs) != 0)
            return -2;
        conv *c = &x->convs[x->n_convs];
        memset(c, 0, sizeof *c);
        if (!(c->id = dm_strdup(conv_id)))
            return -2;
        c->now_us = INT64_MIN;
        ci = (int)x->n_convs++;
    }
    x->last_conv = (size_t)ci;
    conv *c = &x->convs[ci];
    uint32_t pos;
    if (next_position(c, session, &pos) != 0)
        return -2;

    if (grow((void **)&x->turns, &x->cap_turns, x->n_turns,
             sizeof *x->turns) != 0)
        return -2;
    turn *t = &x->turns[x->n_turns];
    memset(t, 0, sizeof *t);
    t->conv = (uint32_t)ci;
    t->event_us = start_us + (int64_t)pos;
    t->line_no = line_no;
    t->dia_id = dm_strdup(dia_id);
    t->speaker = dm_strdup(speaker);
    t->session_id = str_printf("%s/session_%" PRId64, conv_id,
                               (int64_t)session);
    if (caption && *caption)
        t->text = str_printf("%s: %s [shares a photo: %s]", speaker, text,
                             caption);
    else
        t->text = str_printf("%s: %s", speaker, text);
    json_t *meta = json_pack("{s:s,s:s}", "dia_id", dia_id, "speaker",
                             speaker);
    t->metadata = meta ? cli_metadata_dumps(meta) : NULL;
    json_decref(meta);
    /* Counted now so that the cleanup frees whatever was allocated. */
    x->n_turns++;
    if (!t->dia_id || !t->speaker || !t->session_id || !t->text || !t->metadata)
        return -2;
    if (strlen(t->session_id) > DM_MAX_NAME_LEN) {
        snprintf(why, WHY_CAP, "the session id \"%s/session_%" PRId64 "\" "
                 "is longer than %d bytes", conv_id, (int64_t)session,
                 DM_MAX_NAME_LEN);
        return -1;
    }
    c->n_turns++;
    if (t->event_us > c->now_us)
        c->now_us = t->event_us;
    return 0;
}

typedef struct id_key {
    uint32_t conv;
    const char *dia_id;
} id_key;

static int cmp_turn_ptr(const void *a, const void *b)
{
    const turn *ta = *(const turn *const *)a, *tb = *(const turn *const *)b;
    if (ta->conv != tb->conv)
        return ta->conv < tb->conv ? -1 : 1;
    int c = strcmp(ta->dia_id, tb->dia_id);
    if (c)
        return c;
    return ta->line_no < tb->line_no ? -1 : ta->line_no > tb->line_no;
}

static int cmp_key_turn(const void *k, const void *e)
{
    const id_key *key = k;
    const turn *t = *(const turn *const *)e;
    if (key->conv != t->conv)
        return key->conv < t->conv ? -1 : 1;
    return strcmp(key->dia_id, t->dia_id);
}

static const turn *lookup_turn(const eval_ctx *x, uint32_t ci,
                               const char *dia_id)
{
    id_key key = { ci, dia_id };
    const turn **hit = bsearch(&key, x->by_id, x->n_turns, sizeof *x->by_id,
                               cmp_key_turn);
    return hit ? *hit : NULL;
}

/* Sorts the turns by id and refuses an id used twice in a conversation:
 * a hit could not be told apart from its twin. */
static int index_turns(eval_ctx *x)
{
    x->by_id = dm_malloc(x->n_turns * sizeof *x->by_id);
    if (!x->by_id)
        return cli_error(x->cmd, "out of memory");
    for (size_t i = 0; i < x->n_turns; i++)
        x->by_id[i] = &x->turns[i];
    qsort(x->by_id, x->n_turns, sizeof *x->by_id, cmp_turn_ptr);
    for (size_t i = 1; i < x->n_turns; i++) {
        const turn *a = x->by_id[i - 1], *b = x->by_id[i];
        if (a->conv == b->conv && !strcmp(a->dia_id, b->dia_id))
            return cli_error(x->cmd, "%s:%" PRIu64 ": dia_id \"%s\" of "
                             "conversation %s repeats line %" PRIu64,
                             x->turns_path, b->line_no, b->dia_id,
                             x->convs[b->conv].id, a->line_no);
    }
    return CLI_OK;
}

/* Adds the ids in one evidence string (see the top of the file) to q. */
static int add_evidence(eval_ctx *x, question *q, const char *s)
{
    static const char seps[] = " \t\r\n;,";
    while (*s) {
        s += strspn(s, seps);
        size_t len = strcspn(s, seps);
        if (len == 0)
            break;
        const char *tok = s;
        s += len;
        char *id;
        if (len > 2 && tok[0] == 'D' && tok[1] == ':' && tok[2] >= '0' &&
            tok[2] <= '9')
            id = str_printf("D%.*s", (int)(len - 2), tok + 2);
        else
            id = str_printf("%.*s", (int)len, tok);
        if (!id)
            return -2;
        bool is_repeat = false;
        for (size_t i = 0; i < q->n_ev && !is_repeat; i++)
            is_repeat = !strcmp(q->ev[i].id, id);
        if (is_repeat) {
            dm_free(id);
            continue;
        }
        evid *nev = dm_realloc(q->ev, (q->n_ev + 1) * sizeof *q->ev);
        if (!nev) {
            dm_free(id);
            return -2;
        }
        q->ev = nev;
        q->ev[q->n_ev].id = id;
        q->ev[q->n_ev].t = lookup_turn(x, q->conv, id);
        q->n_ev++;
    }
    return 0;
}

static void question_fini(question *q)
{
    dm_free(q->qid);
    dm_free(q->text);
    for (size_t i = 0; i < q->n_ev; i++)
        dm_free(q->ev[i].id);
    dm_free(q->ev);
    memset(q, 0, sizeof *q);
}

static int question_line(eval_ctx *x, json_t *root, uint64_t line_no,
                         char *why)
{
    const char *conv_id, *qid, *text, *cat_name;
    json_int_t category;
    if (get_nonempty(root, "conv_id", &conv_id, why) != 0 ||
        get_nonempty(root, "qid", &qid, why) != 0 ||
        get_nonempty(root, "question", &text, why) != 0 ||
        get_int(root, "category", 1, MAX_CATEGORY, &category, why) != 0 ||
        get_string(root, "category_name", false, &cat_name, why) != 0)
        return -1;
    json_t *ev = json_object_get(root, "evidence");
    if (!json_is_array(ev)) {
        snprintf(why, WHY_CAP, "\"evidence\" must be a list of dia_ids");
        return -1;
    }
    int ci = find_conv(x, conv_id);
    if (ci < 0) {
        snprintf(why, WHY_CAP, "conversation \"%.255s\" has no turns in %s",
                 conv_id, x->turns_path);
        return -1;
    }
    for (size_t i = 0; i < json_array_size(ev); i++) {
        if (!json_is_string(json_array_get(ev, i))) {
            snprintf(why, WHY_CAP, "\"evidence\" item %zu is not a string",
                     i + 1);
            return -1;
        }
    }

    question q;
    memset(&q, 0, sizeof q);
    q.conv = (uint32_t)ci;
    q.category = (int)category;
    for (size_t i = 0; i < json_array_size(ev); i++) {
        if (add_evidence(x, &q, json_string_value(json_array_get(ev, i)))) {
            question_fini(&q);
            return -2;
        }
    }
    if (cat_name && *cat_name && !x->cat_names[category] &&
        !(x->cat_names[category] = dm_strdup(cat_name))) {
        question_fini(&q);
        return -2;
    }
    if (q.n_ev == 0) {
        x->n_skipped++;
        return 0;
    }
    q.qid = dm_strdup(qid);
    q.text = dm_strdup(text);
    if (!q.qid || !q.text ||
        grow((void **)&x->qs, &x->cap_qs, x->n_qs, sizeof *x->qs) != 0) {
        question_fini(&q);
        return -2;
    }
    for (size_t i = 0; i < q.n_ev; i++)
        x->n_unmatched += q.ev[i].t == NULL;
    x->qs[x->n_qs++] = q;
    return 0;
}

static const char *cat_name(const eval_ctx *x, int c)
{
    if (x->cat_names[c])
        return x->cat_names[c];
    if (c < (int)(sizeof default_cat_names / sizeof default_cat_names[0]))
        return default_cat_names[c];
    return "?";
}

/* ------------------------------------------------------------ database */

/* A fresh directory under $TMPDIR or /tmp; NULL after the error report. */

/* An explicit --data DIR must not hold the conversations already. */
static int check_fresh(eval_ctx *x, dm_db *db, const char *dir)
{
    for (size_t i = 0; i < x->n_convs; i++) {
        dm_list_params lp;
        memset(&lp, 0, sizeof lp);
        lp.user_id = x->convs[i].id;
        lp.limit = 1;
        lp.flags = DM_WITH_ARCHIVED;
        dm_list_result *r = NULL;
        int rc = dm_list(db, &lp, &r);
        size_t n = rc == DM_OK ? r->n : 0;
        dm_list_result_free(r);
        if (rc != DM_OK && rc != DM_ENOTFOUND)
            return cli_fail(x->cmd, rc, "cannot list user %s", lp.user_id);
        if (n > 0)
            return cli_usage(x->cmd, "the database in %s already holds "
                             "memories of user %s; evaluate into an empty "
                             "directory, or leave out --data", dir,
                             lp.user_id);
    }
    return CLI_OK;
}

static int ingest(eval_ctx *x, dm_db *db)
{
    int st = CLI_OK;
    uint64_t t0 = clock_mono_us();
    dm_add_params *ps = dm_calloc(INGEST_CHUNK, sizeof *ps);
    if (!ps)
        return cli_error(x->cmd, "out of memory");
    for (size_t i = 0; x->is_remember && i < x->n_turns; i++) {
        /* One turn at a time, its facts, events and graph extracted. */
        const turn *t = &x->turns[i];
        dm_remember_params rp;
        dm_remember_params_init(&rp);
        rp.user_id = x->convs[t->conv].id;
        rp.session_id = t->session_id;
        rp.speaker = t->speaker;
        rp.text = t->text;
        rp.time_us = t->event_us;
        rp.metadata = t->metadata;
        int rc = dm_remember(db, &rp, NULL);
        if (rc != DM_OK) {
            st = cli_fail(x->cmd, rc, "cannot remember the turn of line %" PRIu64 " of %s",
                          t->line_no, x->turns_path);
            goto done;
        }
    }
    for (size_t i = 0; !x->is_remember && i < x->n_turns; i += INGEST_CHUNK) {
        size_t n = x->n_turns - i < INGEST_CHUNK ? x->n_turns - i
                                                  : INGEST_CHUNK;
        for (size_t j = 0; j < n; j++) {
            const turn *t = &x->turns[i + j];
            dm_add_params *p = &ps[j];
            dm_add_params_init(p);
            p->user_id = x->convs[t->conv].id;
            p->session_id = t->session_id;
            p->role = "user";
            p->text = t->text;
            p->event_time_us = t->event_us;
            p->metadata = t->metadata;
            p->no_extract = x->is_no_extract;
        }
        int rc = dm_add_batch(db, ps, n, NULL);
        if (rc != DM_OK) {
            st = cli_fail(x->cmd, rc, "cannot store the turns of lines "
                          "%" PRIu64 "..%" PRIu64 " of %s",
                          x->turns[i].line_no, x->turns[i + n - 1].line_no,
                          x->turns_path);
            goto done;
        }
    }
    /* Search latency should be measured against settled indexes, and
     * the graph leg against every turn's facts. */
    int rc = dm_sync_extraction(db);
    if (rc == DM_OK)
        rc = dm_sync_indexes(db);
    if (rc != DM_OK) {
        st = cli_fail(x->cmd, rc, "waiting for the indexer");
        goto done;
    }
    x->ingest_s = (double)(clock_mono_us() - t0) / 1e6;

done:
    dm_free(ps);
    return st;
}

/* ----------------------------------------------------------- searching */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[0..n). */
static double percentile(const double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t r = (size_t)ceil(p * (double)n);
    return v[r == 0 ? 0 : r - 1];
}

/* Count question q's evidence found within the first x->ks[j] of a result
 * list (rank[e]: 0-based place of evidence e, UINT32_MAX if absent).  The
 * question itself is counted once, by tally_question. */
static void tally_k(tally *t, const eval_ctx *x, const question *q, size_t j,
                    const uint32_t *rank)
{
    size_t found = 0;
    for (size_t e = 0; e < q->n_ev; e++)
        found += rank[e] < x->ks[j];
    t->frac[j] += (double)found / (double)q->n_ev;
    t->any[j] += found > 0;
    t->all[j] += found == q->n_ev;
}

/* One line of the dump file. */
static int dump_line(FILE *fp, const question *q, const turn *const *got,
                     size_t n_got)
{
    json_t *o = json_object();
    json_t *ev = json_array();
    json_t *ret = json_array();
    int bad = !o || !ev || !ret;
    for (size_t i = 0; !bad && i < q->n_ev; i++)
        bad |= json_array_append_new(ev, json_string(q->ev[i].id));
    for (size_t i = 0; !bad && i < n_got; i++)
        bad |= json_array_append_new(
            ret, got[i] ? json_string(got[i]->dia_id) : json_null());
    if (!bad) {
        bad |= json_object_set_new(o, "qid", json_string(q->qid));
        bad |= json_object_set_new(o, "category", json_integer(q->category));
        bad |= json_object_set(o, "evidence", ev);
        bad |= json_object_set(o, "retrieved", ret);
    }
    char *s = bad ? NULL : cli_json_dumps(o);
    json_decref(ev);
    json_decref(ret);
    json_decref(o);
    if (!s)
        return -1;
    fputs(s, fp);
    fputc('\n', fp);
    free(s);
    return 0;
}

/* The turn a hit stands for, through its metadata; NULL if none. */
static const turn *hit_turn(const eval_ctx *x, const question *q,
                            const dm_search_hit *h)
{
    const turn *t = NULL;
    json_t *meta = json_loads(h->memory.metadata ? h->memory.metadata : "{}",
                              0, NULL);
    json_t *id = json_object_get(meta, "dia_id");
    if (json_is_string(id))
        t = lookup_turn(x, q->conv, json_string_value(id));
    json_decref(meta);
    return t;
}

static int run_mode(eval_ctx *x, dm_db *db, const mode_def *m, FILE *dump,
                    mode_result *res)
{
    int st = CLI_OK;
    const turn **got = NULL;
    size_t got_cap = 0;
    uint32_t *rank = NULL;
    size_t rank_cap = 0;
    double *lat = dm_malloc((x->n_qs ? x->n_qs : 1) * sizeof *lat);
    if (!lat)
        return cli_error(x->cmd, "out of memory");
    memset(res, 0, sizeof *res);
    res->mode = m;

    for (size_t i = 0; i < x->n_qs; i++) {
        const question *q = &x->qs[i];
        res->cat[q->category].n++;
        res->overall.n++;
        /* One search per k, as a user asking for k memories would get
         * them (MMR and the context neighbours depend on k), and for the
         * dump one search as deep as it needs. */
        size_t n_runs = x->n_ks + (dump && x->search_k > x->ks[x->n_ks - 1]);
        for (size_t j = 0; j < n_runs; j++) {
            uint32_t k = j < x->n_ks ? x->ks[j] : x->search_k;
            dm_search_params p;
            memset(&p, 0, sizeof p);
            p.user_id = x->convs[q->conv].id;
            p.query = q->text;
            p.k = k;
            p.depth = k > DEFAULT_DEPTH ? k : 0;
            p.flags = DM_NO_REFRESH | m->flags;
            p.legs = m->legs;
            p.weights = m->weights;
            p.now_us = x->has_time ? x->time_us : x->convs[q->conv].now_us;

            dm_search_result *r = NULL;
            uint64_t t0 = clock_mono_ns();
            int rc = dm_search(db, &p, &r);
            if (j == x->n_ks - 1)
                lat[i] = (double)(clock_mono_ns() - t0) / 1e6;
            if (rc != DM_OK) {
                st = cli_fail(x->cmd, rc, "mode %s: search for question %s failed",
                              m->name, q->qid);
                goto done;
            }
            if (reserve((void **)&got, &got_cap, r->n, sizeof *got) != 0 ||
                reserve((void **)&rank, &rank_cap, q->n_ev, sizeof *rank) != 0) {
                dm_search_result_free(r);
                st = cli_error(x->cmd, "out of memory");
                goto done;
            }
            for (size_t h = 0; h < r->n; h++)
                got[h] = hit_turn(x, q, &r->hits[h]);
            size_t n_got = r->n;
            dm_search_result_free(r);
            if (j < x->n_ks) {
                for (size_t e = 0; e < q->n_ev; e++) {
                    rank[e] = UINT32_MAX;
                    for (size_t h = 0; q->ev[e].t && h < n_got; h++) {
                        if (got[h] == q->ev[e].t) {
                            rank[e] = (uint32_t)h;
                            break;
                        }
                    }
                }
                tally_k(&res->cat[q->category], x, q, j, rank);
                tally_k(&res->overall, x, q, j, rank);
            }
            if (dump && j == n_runs - 1 && dump_line(dump, q, got, n_got) != 0) {
                st = cli_error(x->cmd, "out of memory");
                goto done;
            }
        }
    }

    double sum = 0;
    for (size_t i = 0; i < x->n_qs; i++)
        sum += lat[i];
    qsort(lat, x->n_qs, sizeof *lat, cmp_double);
    res->lat_mean_ms = x->n_qs ? sum / (double)x->n_qs : 0;
    res->lat_p50_ms = percentile(lat, x->n_qs, 0.50);
    res->lat_p99_ms = percentile(lat, x->n_qs, 0.99);

done:
    dm_free(rank);
    dm_free(got);
    dm_free(lat);
    return st;
}

/* ------------------------------------------------------------- output */

static double pct(double sum, uint64_t n)
{
    return n ? 100.0 * sum / (double)n : 0;
}

static void print_row(const eval_ctx *x, const char *label, const tally *t)
{
    printf("  %-18s %5" PRIu64, label, t->n);
    for (size_t j = 0; j < x->n_ks; j++)
        printf("  %7.1f %7.1f %7.1f", pct(t->frac[j], t->n),
               pct((double)t->any[j], t->n), pct((double)t->all[j], t->n));
    fputc('\n', stdout);
}

static void print_header(const eval_ctx *x)
{
    printf("LoCoMo retrieval: %zu conversations, %zu turns; %zu questions "
           "scored, %" PRIu64 " skipped (no evidence)\n",
           x->n_convs, x->n_turns, x->n_qs, x->n_skipped);
    printf("evidence ids that match no turn (counted, never found): %" PRIu64
           "\n", x->n_unmatched);
    printf("ingest: %zu turns in %.2f s (%.0f turns/s, including the "
           "indexer)\n", x->n_turns, x->ingest_s,
           x->ingest_s > 0 ? (double)x->n_turns / x->ingest_s : 0);
}

static void print_table(const eval_ctx *x, const mode_result *res)
{
    char col[32];
    printf("\nmode %s (%s)\n", res->mode->name, res->mode->what);
    printf("search latency: mean %.2f ms, p50 %.2f ms, p99 %.2f ms (wall "
           "clock, k = %" PRIu32 ")\n", res->lat_mean_ms, res->lat_p50_ms,
           res->lat_p99_ms, x->search_k);
    printf("  %-18s %5s", "category", "n");
    for (size_t j = 0; j < x->n_ks; j++) {
        printf("  ");
        snprintf(col, sizeof col, "frac@%" PRIu32, x->ks[j]);
        printf("%7s", col);
        snprintf(col, sizeof col, "any@%" PRIu32, x->ks[j]);
        printf(" %7s", col);
        snprintf(col, sizeof col, "all@%" PRIu32, x->ks[j]);
        printf(" %7s", col);
    }
    fputc('\n', stdout);
    for (int c = 0; c <= MAX_CATEGORY; c++) {
        if (!res->cat[c].n)
            continue;
        char label[64];
        snprintf(label, sizeof label, "%d %.15s", c, cat_name(x, c));
        print_row(x, label, &res->cat[c]);
    }
    print_row(x, "overall", &res->overall);
}

static void print_summary(const eval_ctx *x, const mode_result *res,
                          size_t n)
{
    char col[32];
    printf("\nwhat each stage adds (overall frac@k, percent; gain: first "
           "k, against the best\nsingle leg for fused and against fused for "
           "full)\n");
    printf("  %-7s", "mode");
    for (size_t j = 0; j < x->n_ks; j++) {
        snprintf(col, sizeof col, "frac@%" PRIu32, x->ks[j]);
        printf(" %8s", col);
    }
    printf(" %7s %7s  %s\n", "gain", "p50 ms", "what");
    for (size_t i = 0; i < n; i++) {
        const tally *t = &res[i].overall;
        printf("  %-7s", res[i].mode->name);
        for (size_t j = 0; j < x->n_ks; j++)
            printf(" %8.1f", pct(t->frac[j], t->n));
        double base = -1;
        if (i == 2)
            base = fmax(pct(res[0].overall.frac[0], res[0].overall.n),
                        pct(res[1].overall.frac[0], res[1].overall.n));
        else if (i == 3)
            base = pct(res[2].overall.frac[0], res[2].overall.n);
        if (base >= 0)
            printf(" %+7.1f", pct(t->frac[0], t->n) - base);
        else
            printf(" %7s", "");
        printf(" %7.2f  %s\n", res[i].lat_p50_ms, res[i].mode->what);
    }
}

static json_t *tally_json(const eval_ctx *x, const tally *t, int category)
{
    char key[32];
    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad = 0;
    if (category > 0) {
        bad |= json_object_set_new(o, "category", json_integer(category));
        bad |= json_object_set_new(o, "name",
                                   json_string(cat_name(x, category)));
    }
    bad |= json_object_set_new(o, "n", json_integer((json_int_t)t->n));
    for (size_t j = 0; j < x->n_ks; j++) {
        snprintf(key, sizeof key, "frac@%" PRIu32, x->ks[j]);
        bad |= json_object_set_new(o, key, json_real(pct(t->frac[j], t->n)));
        snprintf(key, sizeof key, "any@%" PRIu32, x->ks[j]);
        bad |= json_object_set_new(
            o, key, json_real(pct((double)t->any[j], t->n)));
        snprintf(key, sizeof key, "all@%" PRIu32, x->ks[j]);
        bad |= json_object_set_new(
            o, key, json_real(pct((double)t->all[j], t->n)));
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *mode_json(const eval_ctx *x, const mode_result *res)
{
    json_t *o = json_object();
    json_t *cats = json_array();
    json_t *ks = json_array();
    int bad = !o || !cats || !ks;
    for (size_t j = 0; !bad && j < x->n_ks; j++)
        bad |= json_array_append_new(ks, json_integer(x->ks[j]));
    for (int c = 0; !bad && c <= MAX_CATEGORY; c++)
        if (res->cat[c].n)
            bad |= json_array_append_new(cats,
                                         tally_json(x, &res->cat[c], c));
    if (!bad) {
        bad |= json_object_set_new(o, "mode", json_string(res->mode->name));
        bad |= json_object_set_new(o, "questions",
                                   json_integer((json_int_t)x->n_qs));
        bad |= json_object_set_new(o, "skipped",
                                   json_integer((json_int_t)x->n_skipped));
        bad |= json_object_set_new(o, "unmatched_evidence",
                                   json_integer((json_int_t)x->n_unmatched));
        bad |= json_object_set_new(o, "conversations",
                                   json_integer((json_int_t)x->n_convs));
        bad |= json_object_set_new(o, "turns",
                                   json_integer((json_int_t)x->n_turns));
        bad |= json_object_set(o, "k", ks);
        bad |= json_object_set_new(o, "search_k", json_integer(x->search_k));
        bad |= json_object_set_new(o, "ingest_seconds",
                                   json_real(x->ingest_s));
        bad |= json_object_set_new(
            o, "latency_ms",
            json_pack("{s:f,s:f,s:f}", "mean", res->lat_mean_ms, "p50",
                      res->lat_p50_ms, "p99", res->lat_p99_ms));
        bad |= json_object_set(o, "categories", cats);
        bad |= json_object_set_new(o, "overall",
                                   tally_json(x, &res->overall, 0));
    }
    json_decref(ks);
    json_decref(cats);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ----------------------------------------------------------- arguments */

static const cli_opt eval_opts[] = {
    { "turns", 0, true }, { "questions", 0, true }, { "k", 'k', true },
    { "dump", 0, true },  { "mode", 0, true },      { "time", 0, true },
    { "remember", 0, false }, { "no-extract", 0, false },
};

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* --k 5,10,25: sorted, repeats dropped. */
static int parse_ks(const char *cmd, const char *s, eval_ctx *x)
{
    x->n_ks = 0;
    while (true) {
        size_t len = strcspn(s, ",");
        char tok[16];
        if (len == 0 || len >= sizeof tok)
            return cli_usage(cmd, "--k: \"%.*s\" is not a whole number from "
                             "1 to %u", (int)len, s, MAX_K);
        memcpy(tok, s, len);
        tok[len] = 0;
        if (x->n_ks == MAX_KS)
            return cli_usage(cmd, "--k: at most %d cut-offs", MAX_KS);
        int st = cli_parse_u32(cmd, "--k", tok, 1, MAX_K, &x->ks[x->n_ks]);
        if (st != CLI_OK)
            return st;
        x->n_ks++;
        if (!s[len])
            break;
        s += len + 1;
    }
    qsort(x->ks, x->n_ks, sizeof x->ks[0], cmp_u32);
    size_t n = 1;
    for (size_t i = 1; i < x->n_ks; i++)
        if (x->ks[i] != x->ks[n - 1])
            x->ks[n++] = x->ks[i];
    x->n_ks = n;
    return CLI_OK;
}

static void ctx_fini(eval_ctx *x)
{
    for (size_t i = 0; i < x->n_turns; i++) {
        dm_free(x->turns[i].dia_id);
        dm_free(x->turns[i].speaker);
        dm_free(x->turns[i].session_id);
        dm_free(x->turns[i].text);
        free(x->turns[i].metadata);
    }
    dm_free(x->turns);
    dm_free(x->by_id);
    for (size_t i = 0; i < x->n_convs; i++) {
        dm_free(x->convs[i].id);
        dm_free(x->convs[i].sessions);
    }
    dm_free(x->convs);
    for (size_t i = 0; i < x->n_qs; i++)
        question_fini(&x->qs[i]);
    dm_free(x->qs);
    for (int c = 0; c <= MAX_CATEGORY; c++)
        dm_free(x->cat_names[c]);
}

/* ------------------------------------------------------------- command */

int cli_cmd_eval(const cli_globals *g, int argc, char **argv)
{
    const char *cmd = "eval";
    if (argc > 0 && !strcmp(argv[0], "extraction"))
        return cli_eval_extraction(g, argc - 1, argv + 1);
    cli_args a;
    int st = cli_parse(cmd, g, eval_opts, N_OPTS(eval_opts), argc, argv, &a);
    if (st != CLI_OK)
        return st;
    if (a.is_help)
        return cli_print_help(cli_find_command(cmd));
    if (a.n_pos == 0)
        return cli_usage(cmd, "name the benchmark: eval locomo ...");
    if (strcmp(a.pos[0], "locomo") != 0)
        return cli_usage(cmd, "unknown benchmark \"%s\" (known: locomo, extraction)",
                         a.pos[0]);
    if (a.n_pos > 1)
        return cli_usage(cmd, "unexpected argument \"%s\"", a.pos[1]);

    eval_ctx x;
    memset(&x, 0, sizeof x);
    x.cmd = cmd;
    const char *turns_path = cli_get(&a, "turns");
    const char *questions_path = cli_get(&a, "questions");
    const char *dump_path = cli_get(&a, "dump");
    const char *s;
    if (!turns_path || !*turns_path)
        return cli_usage(cmd, "--turns is required");
    if (!questions_path || !*questions_path)
        return cli_usage(cmd, "--questions is required");
    if (dump_path && !*dump_path)
        return cli_usage(cmd, "--dump needs a file name");
    if ((st = parse_ks(cmd, (s = cli_get(&a, "k")) ? s : "5,10,25", &x)) !=
        CLI_OK)
        return st;
    size_t first_mode = N_MODES - 1, n_run = 1; /* full */
    if ((s = cli_get(&a, "mode"))) {
        if (!strcmp(s, "all")) {
            first_mode = 0;
            n_run = N_MODES;
        } else {
            for (first_mode = 0; first_mode < N_MODES; first_mode++)
                if (!strcmp(s, modes[first_mode].name))
                    break;
            if (first_mode == N_MODES)
                return cli_usage(cmd, "--mode: \"%s\" is not one of vector, "
                                 "bm25, fused, full, all", s);
        }
    }
    if ((s = cli_get(&a, "time"))) {
        if ((st = cli_parse_time(cmd, "--time", s, &x.time_us)) != CLI_OK)
            return st;
        x.has_time = true;
    }
    x.is_remember = cli_get(&a, "remember") != NULL;
    x.is_no_extract = cli_get(&a, "no-extract") != NULL;
    if (x.is_remember && x.is_no_extract)
        return cli_usage(cmd, "--remember and --no-extract exclude each other");
    x.search_k = x.ks[x.n_ks - 1];
    if (dump_path && x.search_k < DUMP_DEPTH)
        x.search_k = DUMP_DEPTH;

    FILE *dump = NULL;
    char *tmp_dir = NULL;
    dm_db *db = NULL;
    mode_result *res = NULL;
    cli_globals lg = *g;
    x.turns_path = turns_path;
    if ((st = read_jsonl(&x, turns_path, turn_line)) != CLI_OK ||
        (st = index_turns(&x)) != CLI_OK ||
        (st = read_jsonl(&x, questions_path, question_line)) != CLI_OK)
        goto done;
    res = dm_calloc(n_run, sizeof *res);
    if (!res) {
        st = cli_error(cmd, "out of memory");
        goto done;
    }
    if (dump_path && !(dump = fopen(dump_path, "w"))) {
        st = cli_error(cmd, "cannot create %s: %s", dump_path,
                       strerror(errno));
        goto done;
    }

    if (!g->has_data) {
        if (!(tmp_dir = cli_make_tmpdir(cmd))) {
            st = CLI_FAILED;
            goto done;
        }
        lg.data_dir = tmp_dir;
        /* A database thrown away at the end needs no fsync. */
        if (g->sync < 0)
            lg.sync = DM_SYNC_NONE;
    }
    if ((st = cli_open(&lg, cmd, true, false, &db)) != CLI_OK)
        goto done;
    if (g->has_data && (st = check_fresh(&x, db, lg.data_dir)) != CLI_OK)
        goto done;
    if ((st = ingest(&x, db)) != CLI_OK)
        goto done;
    for (size_t i = 0; i < n_run; i++) {
        bool is_dumped = i == n_run - 1;
        st = run_mode(&x, db, &modes[first_mode + i], is_dumped ? dump : NULL,
                      &res[i]);
        if (st != CLI_OK)
            goto done;
    }
    if (dump) {
        int rc = fclose(dump);
        dump = NULL;
        if (rc != 0) {
            st = cli_error(cmd, "cannot write %s: %s", dump_path,
                           strerror(errno));
            goto done;
        }
    }

    if (a.is_json) {
        json_t *doc;
        if (n_run == 1) {
            doc = mode_json(&x, &res[0]);
        } else {
            json_t *arr = json_array();
            doc = json_object();
            int bad = !arr || !doc;
            for (size_t i = 0; !bad && i < n_run; i++)
                bad |= json_array_append_new(arr, mode_json(&x, &res[i]));
            if (!bad)
                bad |= json_object_set(doc, "modes", arr);
            json_decref(arr);
            if (bad) {
                json_decref(doc);
                doc = NULL;
            }
        }
        st = cli_print_json(cmd, doc);
    } else {
        print_header(&x);
        for (size_t i = 0; i < n_run; i++)
            print_table(&x, &res[i]);
        if (n_run == N_MODES)
            print_summary(&x, res, n_run);
    }

done:
    if (dump)
        fclose(dump);
    if (db)
        st = cli_close(cmd, db, st);
    if (tmp_dir) {
        if (cli_remove_tree(tmp_dir) != 0) {
            int e = errno;
            cli_error(cmd, "cannot remove the temporary database %s: %s",
                      tmp_dir, strerror(e));
            if (st == CLI_OK)
                st = CLI_FAILED;
        }
        dm_free(tmp_dir);
    }
    dm_free(res);
    ctx_fini(&x);
    return cli_finish_output(cmd, st);
}
