/*
 * httpc.h -- POST a JSON body to one URL, with retries: the HTTP client
 * the embedding endpoint (src/embed/http.c) and the chat model
 * (src/cognitive/llm.c) share.
 *
 * One httpc per endpoint.  A call takes a libcurl handle from a small pool
 * (or makes one) and gives it back afterwards, which keeps its live
 * connections (keep-alive) for the next call.  429, 5xx, connection
 * errors and timeouts are retried up to `retries` times with exponential
 * backoff (100 ms doubling to 5 s), or after the server's Retry-After
 * (capped at 30 s) when that is longer; anything else fails at once.
 *
 * Thread safety: httpc_post may be called from any number of threads; the
 * pool's mutex is held only to take or give a handle.
 */
#ifndef DM_OS_HTTPC_H
#define DM_OS_HTTPC_H
#include <curl/curl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define HTTPC_POOL_CAP 8
#define HTTPC_EXCERPT_LEN 200

typedef struct httpc {
    const char *url;         /* borrowed: lives as long as the httpc */
    const char *auth_header; /* "Authorization: Bearer ..." or NULL; borrowed */
    uint32_t timeout_ms;     /* per attempt */
    uint32_t retries;
    size_t max_reply_len;    /* a longer reply fails the call (not retried) */
    pthread_mutex_t mu;      /* guards pool and n_pool */
    CURL *pool[HTTPC_POOL_CAP];
    uint32_t n_pool;
} httpc;

/* A reply body, NUL-terminated; free data with dm_free. */
typedef struct httpc_reply {
    char *data;
    size_t len, cap;
    int too_big, no_mem;
} httpc_reply;

/*
 * httpc_init -- set up c for url (the fields above are the caller's to
 * fill before: url, auth_header, timeout_ms, retries, max_reply_len).
 * Errors: DM_EIO (libcurl's global init failed), DM_ENOMEM.
 */
int httpc_init(httpc *c);
void httpc_fini(httpc *c); /* frees the pooled handles */

/*
 * httpc_post -- POST body (body_len bytes of JSON) with retries.  On DM_OK
 * *r holds the 2xx reply's body.  Errors (with a message naming the URL):
 * DM_EIO (HTTP error with an excerpt of the body, connection failure,
 * reply too long), DM_ECANCELED (the last attempt timed out), DM_ENOMEM.
 * r->data is the caller's to free either way.
 */
int httpc_post(httpc *c, const char *body, size_t body_len, httpc_reply *r);

/* httpc_excerpt -- the first bytes of text, on one line, printable, into
 * dst (cap bytes), for error messages. */
void httpc_excerpt(const char *text, size_t len, char *dst, size_t cap);

#endif
