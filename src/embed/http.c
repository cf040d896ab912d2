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
 * LOCKING.  The POSTs, their retries and the pool of libcurl handles are
 * the shared client's (src/os/httpc.c), which is safe from many threads.
 * All other state is immutable after open, so embedder_embed is safe from
 * many threads too.
 *
 * Memory: our own allocations go through dm_malloc; jansson and libcurl
 * allocate internally with malloc (json_dumps output is released with
 * free, as jansson requires).
 */
#include "embed/embed.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "embed/embed_int.h"
#include "embed/tokenize.h"
#include "os/httpc.h"

#define HTTP_DEFAULT_BATCH 64
#define HTTP_DEFAULT_TIMEOUT_MS 30000
#define HTTP_MAX_REPLY_LEN ((size_t)256 << 20)
#define HTTP_MAX_DIM 65536u
#define HTTP_PROBE_TEXT "dimension probe"

typedef struct http_emb {
    embedder base;
    char *url;            /* base_url + "/embeddings" */
    char *model;
    char *auth_header;    /* "Authorization: Bearer ..." or NULL */
    uint32_t batch, timeout_ms, retries;
    int send_dimensions;
    httpc hc;             /* the pooled client (src/os/httpc.c) */
} http_emb;

/*
 * parse_reply -- validates the reply to a request of n texts and stores
 * the n normalized rows into out (n * *dim floats).  When *dim is 0 (the
 * probe at open) it is learned from the first embedding; the probe passes
 * out = NULL, so only the validation runs.
 */
static int parse_reply(const http_emb *h, const httpc_reply *r, size_t n,
                       uint32_t *dim, float *out)
{
    json_error_t jerr;
    int rc = DM_OK;
    uint8_t *seen = NULL;
    char ex[HTTPC_EXCERPT_LEN + 1];
    json_t *root = json_loadb(r->data ? r->data : "", r->len, 0, &jerr);
    if (!root) {
        httpc_excerpt(r->data ? r->data : "", r->len, ex, sizeof ex);
        rc = err_set_msg(DM_EIO, "POST %s: reply is not JSON (%s at %d): %s",
                         h->url, jerr.text, jerr.position, ex);
        goto out;
    }
    json_t *data = json_object_get(root, "data");
    if (!json_is_array(data)) {
        httpc_excerpt(r->data ? r->data : "", r->len, ex, sizeof ex);
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
    httpc_reply r = { 0 };
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
    if ((rc = httpc_post(&h->hc, body, strlen(body), &r)) == DM_OK)
        rc = parse_reply(h, &r, n, dim, out);
out:
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
    httpc_fini(&h->hc);
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
    h = dm_calloc(1, sizeof *h);
    if (!h)
        return DM_ENOMEM;
    if ((rc = httpc_init(&h->hc)) != DM_OK) {
        dm_free(h);
        return rc;
    }
    h->base.ops = &http_ops;
    snprintf(h->base.name, sizeof h->base.name, "http:%s", cfg->model);
    h->batch = cfg->batch ? cfg->batch : HTTP_DEFAULT_BATCH;
    h->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : HTTP_DEFAULT_TIMEOUT_MS;
    h->retries = cfg->retries;
    h->send_dimensions = cfg->send_dimensions;
    h->hc.timeout_ms = h->timeout_ms;
    h->hc.retries = h->retries;
    h->hc.max_reply_len = HTTP_MAX_REPLY_LEN;
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
    h->hc.url = h->url;
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
        h->hc.auth_header = h->auth_header;
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
