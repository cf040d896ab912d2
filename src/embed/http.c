/*
 * http.c -- the HTTP embedding provider: any OpenAI-compatible endpoint
 * (Ollama, llama.cpp server, vLLM, OpenAI) through libcurl.
 *
 * PROTOCOL.  POST {base_url}/embeddings with the JSON body
 *     {"model": M, "input": [t0, t1, ...]}            (+ "dimensions": D)
 * and "Authorization: Bearer KEY" when the key's environment variable is
 * set.  The reply must be {"data": [{"index": i, "embedding": [...]}, ...]}
 * with exactly one item per input; items may come in any order and are
 * placed by "index" (an item without "index" takes its position).  Every
 * embedding must have `dim` finite numbers.  Rows are L2-normalized here,
 * because not every server does it.
 *
 * DESIGN.  Texts are sent in batches of cfg->batch.  Empty texts are not
 * sent (several servers reject them): their rows are zero.  Each request
 * gets up to 1 + retries attempts; an attempt that fails with a connection
 * error, a timeout, HTTP 429 or HTTP 5xx is retried after a backoff of
 * 100 ms * 2^attempt (capped at 5 s), or after the server's Retry-After
 * when that is given and at most 30 s.  Other HTTP errors (400, 401, 404,
 * ...) and malformed replies are not retried: repeating the same request
 * would get the same answer.  Errors name the URL, the HTTP status or curl
 * error, and an excerpt of the reply body.
 *
 * LOCKING.  A CURL easy handle may serve one transfer at a time, so each
 * call takes a handle from a small pool (or makes one) and gives it back
 * afterwards; `mu` guards only the pool array.  Keeping handles keeps their
 * connections alive across calls.  All other state is immutable after
 * open, so embedder_embed is safe from many threads.  curl_global_init is
 * run once per process (pthread_once) and never undone, because other
 * libcurl users in the process may still need it.
 *
 * Memory: our own allocations go through dm_malloc; jansson and libcurl
 * allocate internally with malloc (json_dumps output is released with
 * free, as jansson requires).
 */
#include "embed/embed.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/err.h"
#include "embed/embed_int.h"
#include "embed/tokenize.h"

#define HTTP_POOL_CAP 8
#define HTTP_DEFAULT_BATCH 64
#define HTTP_DEFAULT_TIMEOUT_MS 30000
#define HTTP_BACKOFF_BASE_MS 100
#define HTTP_BACKOFF_MAX_MS 5000
#define HTTP_RETRY_AFTER_MAX_MS 30000
#define HTTP_MAX_REPLY_LEN ((size_t)256 << 20)
#define HTTP_MAX_DIM 65536u
#define HTTP_EXCERPT_LEN 200
#define HTTP_PROBE_TEXT "dimension probe"

typedef struct http_emb {
    embedder base;
    char *url;            /* base_url + "/embeddings" */
    char *model;
    char *auth_header;    /* "Authorization: Bearer ..." or NULL */
    uint32_t batch, timeout_ms, retries;
    int send_dimensions;
    pthread_mutex_t mu;   /* guards pool and n_pool */
    CURL *pool[HTTP_POOL_CAP];
    uint32_t n_pool;
} http_emb;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---------------------------------------------------------- handle pool */

static CURL *take_handle(http_emb *h)
{
    CURL *c = NULL;
    pthread_mutex_lock(&h->mu);
    if (h->n_pool > 0)
        c = h->pool[--h->n_pool];
    pthread_mutex_unlock(&h->mu);
    if (c) {
        /* Reset clears the options of the last transfer but keeps the
         * handle's live connections. */
        curl_easy_reset(c);
        return c;
    }
    return curl_easy_init();
}

static void give_handle(http_emb *h, CURL *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&h->mu);
    if (h->n_pool < HTTP_POOL_CAP) {
        h->pool[h->n_pool++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&h->mu);
    if (c)
        curl_easy_cleanup(c);
}

/* ------------------------------------------------------------- requests */

typedef struct reply {
    char *data;
    size_t len, cap;
    int too_big;
} reply;

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
    reply *r = arg;
    size_t n = size * nmemb;
    if (r->len + n > HTTP_MAX_REPLY_LEN) {
        r->too_big = 1;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 16384;
        while (cap < r->len + n + 1)
            cap *= 2;
        char *d = dm_realloc(r->data, cap);
        if (!d)
            return 0;
        r->data = d;
        r->cap = cap;
    }
    memcpy(r->data + r->len, p, n);
    r->len += n;
    r->data[r->len] = '\0';
    return n;
}

/* excerpt -- the first bytes of a reply body, one line, printable. */
static void excerpt(const reply *r, char *dst, size_t cap)
{
    size_t n = r->len < cap - 1 ? r->len : cap - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)r->data[i];
        dst[i] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    dst[n] = '\0';
}

static void sleep_ms(uint32_t ms)
{
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Outcome of one attempt. */
enum attempt_kind {
    ATT_OK,          /* 2xx, body in the reply */
    ATT_RETRY,       /* 429, 5xx, connection error: worth another try */
    ATT_TIMEOUT,     /* timed out: retried too, reported as DM_ECANCELED */
    ATT_FATAL,       /* anything else: not retried */
};

/*
 * attempt -- one POST of body.  On anything but ATT_OK the error message
 * is already set (err_set_msg) and *rc_out holds the code to return if no
 * retry follows; *retry_after_ms receives the server's Retry-After (0 when
 * absent).
 */
static enum attempt_kind attempt(http_emb *h, CURL *c, const char *body,
                                 size_t body_len, reply *r, int *rc_out,
                                 uint32_t *retry_after_ms)
{
    char errbuf[CURL_ERROR_SIZE];
    struct curl_slist *hdrs = NULL, *t;
    enum attempt_kind kind = ATT_FATAL;
    *retry_after_ms = 0;
    *rc_out = DM_EIO;
    r->len = 0;
    r->too_big = 0;
    errbuf[0] = '\0';
    const char *lines[] = { "Content-Type: application/json",
                            "Accept: application/json",
                            /* No "Expect: 100-continue" round trip. */
                            "Expect:", h->auth_header };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        if (!lines[i])
            continue;
        t = curl_slist_append(hdrs, lines[i]);
        if (!t) {
            *rc_out = DM_ENOMEM;
            goto out;
        }
        hdrs = t;
    }
    curl_easy_setopt(c, CURLOPT_URL, h->url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)h->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(h->timeout_ms < 10000 ? h->timeout_ms : 10000));
    curl_easy_setopt(c, CURLOPT_USERAGENT, "deltamemory/" DM_VERSION_STRING);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        const char *what = errbuf[0] ? errbuf : curl_easy_strerror(cc);
        if (r->too_big) {
            err_set_msg(DM_EIO, "POST %s: reply larger than %zu bytes", h->url,
                        HTTP_MAX_REPLY_LEN);
            kind = ATT_FATAL;
        } else if (cc == CURLE_OPERATION_TIMEDOUT) {
            err_set_msg(DM_ECANCELED, "POST %s: timed out after %u ms (%s)",
                        h->url, h->timeout_ms, what);
            *rc_out = DM_ECANCELED;
            kind = ATT_TIMEOUT;
        } else if (cc == CURLE_WRITE_ERROR) {
            err_set_msg(DM_ENOMEM, "POST %s: out of memory for the reply",
                        h->url);
            *rc_out = DM_ENOMEM;
            kind = ATT_FATAL;
        } else if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
                   cc == CURLE_SEND_ERROR || cc == CURLE_RECV_ERROR ||
                   cc == CURLE_GOT_NOTHING || cc == CURLE_PARTIAL_FILE ||
                   cc == CURLE_SSL_CONNECT_ERROR) {
            err_set_msg(DM_EIO, "POST %s: %s", h->url, what);
            kind = ATT_RETRY;
        } else {
            err_set_msg(DM_EIO, "POST %s: %s", h->url, what);
            kind = ATT_FATAL;
        }
        goto out;
    }
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300) {
        kind = ATT_OK;
        *rc_out = DM_OK;
        goto out;
    }
    char ex[HTTP_EXCERPT_LEN + 1];
    excerpt(r, ex, sizeof ex);
    err_set_msg(DM_EIO, "POST %s: HTTP %ld: %s", h->url, status, ex);
    if (status == 429 || status >= 500) {
        curl_off_t ra = 0;
        if (curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
            *retry_after_ms = ra * 1000 > HTTP_RETRY_AFTER_MAX_MS
                                  ? HTTP_RETRY_AFTER_MAX_MS
                                  : (uint32_t)(ra * 1000);
        kind = ATT_RETRY;
    }
out:
    curl_slist_free_all(hdrs);
    return kind;
}

/*
 * parse_reply -- validates the reply to a request of n texts and stores
 * the n normalized rows into out (n * *dim floats).  When *dim is 0 (the
 * probe at open) it is learned from the first embedding; the probe passes
 * out = NULL, so only the validation runs.
 */
static int parse_reply(const http_emb *h, const reply *r, size_t n,
                       uint32_t *dim, float *out)
{
    json_error_t jerr;
    int rc = DM_OK;
    uint8_t *seen = NULL;
    char ex[HTTP_EXCERPT_LEN + 1];
    json_t *root = json_loadb(r->data ? r->data : "", r->len, 0, &jerr);
    if (!root) {
        excerpt(r, ex, sizeof ex);
        rc = err_set_msg(DM_EIO, "POST %s: reply is not JSON (%s at %d): %s",
                         h->url, jerr.text, jerr.position, ex);
        goto out;
    }
    json_t *data = json_object_get(root, "data");
    if (!json_is_array(data)) {
        excerpt(r, ex, sizeof ex);
        rc = err_set_msg(DM_EIO, "POST %s: reply has no \"data\" array: %s",
                         h->url, ex);
        goto out;
    }
    if (json_array_size(data) != n) {
        rc = err_set_msg(DM_EIO, "POST %s: reply has %zu embeddings for %zu "
                         "inputs", h->url, json_array_size(data), n);
        goto out;
    }
    seen = dm_calloc(n, 1);
    if (!seen) {
        rc = DM_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_array_get(data, i);
        json_t *jidx = json_object_get(item, "index");
        json_t *emb = json_object_get(item, "embedding");
        size_t idx = i;
        if (jidx) {
            if (!json_is_integer(jidx) || json_integer_value(jidx) < 0 ||
                (size_t)json_integer_value(jidx) >= n) {
                rc = err_set_msg(DM_EIO, "POST %s: data[%zu].index is missing "
                                 "from 0..%zu", h->url, i, n - 1);
                goto out;
            }
            idx = (size_t)json_integer_value(jidx);
        }
        if (seen[idx]) {
            rc = err_set_msg(DM_EIO, "POST %s: data[%zu].index %zu repeats",
                             h->url, i, idx);
            goto out;
        }
        seen[idx] = 1;
        if (!json_is_array(emb)) {
            rc = err_set_msg(DM_EIO, "POST %s: data[%zu].embedding is not an "
                             "array (base64 replies are not supported)",
                             h->url, i);
            goto out;
        }
        size_t len = json_array_size(emb);
        if (*dim == 0) {
            if (len == 0 || len > HTTP_MAX_DIM) {
                rc = err_set_msg(DM_EIO, "POST %s: embedding length %zu out of "
                                 "range 1..%u", h->url, len, HTTP_MAX_DIM);
                goto out;
            }
            *dim = (uint32_t)len;
        }
        if (len != *dim) {
            rc = err_set_msg(DM_EIO, "POST %s: data[%zu].embedding has %zu "
                             "numbers, expected %u", h->url, i, len, *dim);
            goto out;
        }
        double n2 = 0.0;
        float *row = out ? out + idx * *dim : NULL;
        for (size_t j = 0; j < len; j++) {
            json_t *x = json_array_get(emb, j);
            double v = json_number_value(x);
            if (!json_is_number(x) || !isfinite(v) || !isfinite((float)v)) {
                rc = err_set_msg(DM_EIO, "POST %s: data[%zu].embedding[%zu] is "
                                 "not a finite number", h->url, i, j);
                goto out;
            }
            n2 += v * v;
            if (row)
                row[j] = (float)v;
        }
        if (!isfinite(n2)) {
            rc = err_set_msg(DM_EIO, "POST %s: data[%zu].embedding overflows",
                             h->url, i);
            goto out;
        }
        if (row) {
            if (n2 > 0.0) {
                float inv = (float)(1.0 / sqrt(n2));
                for (size_t j = 0; j < len; j++)
                    row[j] *= inv;
            } else {
                memset(row, 0, len * sizeof *row);
            }
        }
    }
out:
    dm_free(seen);
    json_decref(root);
    return rc;
}

/*
 * request -- one batch of n non-empty texts, with retries; rows go to out
 * (n * *dim floats) or, for the probe, only *dim is learned.
 */
static int request(http_emb *h, const char *const *texts, const size_t *lens,
                   size_t n, uint32_t *dim, float *out)
{
    int rc = DM_OK;
    char *body = NULL;
    CURL *c = NULL;
    reply r = { NULL, 0, 0, 0 };
    json_t *obj = json_object();
    json_t *arr = json_array();
    if (!obj || !arr) {
        json_decref(arr);
        rc = DM_ENOMEM;
        goto out;
    }
    if (json_object_set_new(obj, "model", json_string(h->model)) != 0 ||
        json_object_set_new(obj, "input", arr) != 0) {
        rc = DM_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_stringn(texts[i], lens[i]);
        if (!s || json_array_append_new(arr, s) != 0) {
            rc = s ? DM_ENOMEM : err_set_msg(DM_EINVAL, "text is not UTF-8");
            goto out;
        }
    }
    if (h->send_dimensions && *dim > 0 &&
        json_object_set_new(obj, "dimensions", json_integer(*dim)) != 0) {
        rc = DM_ENOMEM;
        goto out;
    }
    body = json_dumps(obj, JSON_COMPACT);
    if (!body) {
        rc = DM_ENOMEM;
        goto out;
    }
    c = take_handle(h);
    if (!c) {
        rc = err_set_msg(DM_ENOMEM, "curl_easy_init failed");
        goto out;
    }
    size_t body_len = strlen(body);
    for (uint32_t att = 0;; att++) {
        uint32_t retry_after = 0;
        enum attempt_kind k = attempt(h, c, body, body_len, &r, &rc,
                                      &retry_after);
        if (k == ATT_OK) {
            rc = parse_reply(h, &r, n, dim, out);
            break;
        }
        if (k == ATT_FATAL || att >= h->retries)
            break;
        uint32_t wait = HTTP_BACKOFF_BASE_MS << (att < 6 ? att : 6);
        if (wait > HTTP_BACKOFF_MAX_MS)
            wait = HTTP_BACKOFF_MAX_MS;
        if (retry_after > wait)
            wait = retry_after;
        sleep_ms(wait);
    }
out:
    give_handle(h, c);
    dm_free(r.data);
    free(body); /* json_dumps allocates with malloc */
    json_decref(obj);
    return rc;
}

/* ------------------------------------------------------------ embedding */

static int http_embed(embedder *e, const char *const *texts,
                      const size_t *lens, size_t n, float *out)
{
    http_emb *h = (http_emb *)e;
    uint32_t dim = e->dim;
    int rc = DM_OK;
    size_t bad;
    for (size_t i = 0; i < n; i++)
        if (!tok_utf8_valid(texts[i], lens[i], &bad))
            return err_set_msg(DM_EINVAL, "text %zu: invalid UTF-8 at byte %zu",
                               i, bad);
    const char **bt = dm_malloc(h->batch * sizeof *bt);
    size_t *bl = dm_malloc(h->batch * sizeof *bl);
    size_t *bi = dm_malloc(h->batch * sizeof *bi);
    float *rows = dm_malloc((size_t)h->batch * dim * sizeof *rows);
    if (!bt || !bl || !bi || !rows) {
        rc = DM_ENOMEM;
        goto out;
    }
    size_t i = 0;
    while (i < n) {
        size_t k = 0;
        for (; i < n && k < h->batch; i++) {
            if (lens[i] == 0) {
                memset(out + i * dim, 0, (size_t)dim * sizeof *out);
                continue;
            }
            bt[k] = texts[i];
            bl[k] = lens[i];
            bi[k] = i;
            k++;
        }
        if (k == 0)
            break;
        uint32_t d = dim;
        if ((rc = request(h, bt, bl, k, &d, rows)) != DM_OK)
            goto out;
        for (size_t j = 0; j < k; j++)
            memcpy(out + bi[j] * dim, rows + j * dim, (size_t)dim * sizeof *out);
    }
out:
    dm_free(rows);
    dm_free(bi);
    dm_free(bl);
    dm_free(bt);
    return rc;
}

static void http_close(embedder *e)
{
    http_emb *h = (http_emb *)e;
    for (uint32_t i = 0; i < h->n_pool; i++)
        curl_easy_cleanup(h->pool[i]);
    pthread_mutex_destroy(&h->mu);
    if (h->auth_header) {
        /* The key does not outlive the embedder in our memory. */
        explicit_bzero(h->auth_header, strlen(h->auth_header));
        dm_free(h->auth_header);
    }
    dm_free(h->model);
    dm_free(h->url);
    dm_free(h);
}

static const embedder_ops http_ops = {
    .close = http_close,
    .embed = http_embed,
    .known_words = NULL,
};

int embed_http_open(const embed_http_config *cfg, embedder **out)
{
    http_emb *h = NULL;
    int rc;
    if (out)
        *out = NULL;
    if (!cfg || !out)
        return err_set_msg(DM_EINVAL, "embed_http_open: NULL argument");
    if (!cfg->base_url || !cfg->base_url[0])
        return err_set_msg(DM_EINVAL, "embed_http_open: base_url is required");
    if (!cfg->model || !cfg->model[0])
        return err_set_msg(DM_EINVAL, "embed_http_open: model is required");
    if (strlen(cfg->model) + 5 >= EMBED_NAME_MAX)
        return err_set_msg(DM_EINVAL, "embed_http_open: model name longer than "
                           "%d bytes", EMBED_NAME_MAX - 6);
    if (cfg->dim > HTTP_MAX_DIM)
        return err_set_msg(DM_EINVAL, "embed_http_open: dim %u above %u",
                           cfg->dim, HTTP_MAX_DIM);
    if (strncmp(cfg->base_url, "http://", 7) != 0 &&
        strncmp(cfg->base_url, "https://", 8) != 0)
        return err_set_msg(DM_EINVAL, "embed_http_open: base_url must start "
                           "with http:// or https://");
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return err_set_msg(DM_EIO, "curl_global_init: %s",
                           curl_easy_strerror(curl_init_rc));
    h = dm_calloc(1, sizeof *h);
    if (!h)
        return DM_ENOMEM;
    if (pthread_mutex_init(&h->mu, NULL) != 0) {
        dm_free(h);
        return err_set_msg(DM_ENOMEM, "pthread_mutex_init failed");
    }
    h->base.ops = &http_ops;
    snprintf(h->base.name, sizeof h->base.name, "http:%s", cfg->model);
    h->batch = cfg->batch ? cfg->batch : HTTP_DEFAULT_BATCH;
    h->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : HTTP_DEFAULT_TIMEOUT_MS;
    h->retries = cfg->retries;
    h->send_dimensions = cfg->send_dimensions;
    size_t ul = strlen(cfg->base_url);
    while (ul > 0 && cfg->base_url[ul - 1] == '/')
        ul--;
    h->url = dm_malloc(ul + sizeof "/embeddings");
    h->model = dm_strdup(cfg->model);
    if (!h->url || !h->model) {
        rc = DM_ENOMEM;
        goto fail;
    }
    memcpy(h->url, cfg->base_url, ul);
    memcpy(h->url + ul, "/embeddings", sizeof "/embeddings");
    const char *key = getenv(cfg->api_key_env ? cfg->api_key_env : "OPENAI_API_KEY");
    if (key && key[0]) {
        size_t kl = strlen(key);
        h->auth_header = dm_malloc(sizeof "Authorization: Bearer " + kl);
        if (!h->auth_header) {
            rc = DM_ENOMEM;
            goto fail;
        }
        memcpy(h->auth_header, "Authorization: Bearer ", sizeof "Authorization: Bearer " - 1);
        memcpy(h->auth_header + sizeof "Authorization: Bearer " - 1, key, kl + 1);
    }
    if (cfg->dim) {
        h->base.dim = cfg->dim;
    } else {
        const char *probe = HTTP_PROBE_TEXT;
        size_t plen = strlen(probe);
        uint32_t d = 0;
        if ((rc = request(h, &probe, &plen, 1, &d, NULL)) != DM_OK) {
            if (rc != DM_ENOMEM) {
                char why[256];
                snprintf(why, sizeof why, "%s", err_last_msg());
                rc = err_set_msg(DM_EIO, "embed_http_open: dimension probe "
                                 "failed: %s", why);
            }
            goto fail;
        }
        h->base.dim = d;
    }
    *out = &h->base;
    return DM_OK;
fail:
    http_close(&h->base);
    return rc;
}
