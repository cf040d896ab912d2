/*
 * httpc.c -- the shared JSON POST client (httpc.h): a pool of libcurl
 * handles per endpoint, one attempt's classification, and the retry loop.
 */
#include "os/httpc.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/err.h"
#include "deltamemory.h"

#define HTTPC_BACKOFF_BASE_MS 100
#define HTTPC_BACKOFF_MAX_MS 5000
#define HTTPC_RETRY_AFTER_MAX_MS 30000

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;

static void curl_init(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

int httpc_init(httpc *c)
{
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return err_set_msg(DM_EIO, "curl_global_init: %s", curl_easy_strerror(curl_init_rc));
    c->n_pool = 0;
    if (pthread_mutex_init(&c->mu, NULL) != 0)
        return err_set_msg(DM_ENOMEM, "pthread_mutex_init failed");
    return DM_OK;
}

void httpc_fini(httpc *c)
{
    for (uint32_t i = 0; i < c->n_pool; i++)
        curl_easy_cleanup(c->pool[i]);
    c->n_pool = 0;
    pthread_mutex_destroy(&c->mu);
}

/* ---------------------------------------------------------- handle pool */

static CURL *take_handle(httpc *hc)
{
    CURL *c = NULL;
    pthread_mutex_lock(&hc->mu);
    if (hc->n_pool > 0)
        c = hc->pool[--hc->n_pool];
    pthread_mutex_unlock(&hc->mu);
    if (c) {
        /* Reset clears the last transfer's options but keeps the handle's
         * live connections. */
        curl_easy_reset(c);
        return c;
    }
    return curl_easy_init();
}

static void give_handle(httpc *hc, CURL *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&hc->mu);
    if (hc->n_pool < HTTPC_POOL_CAP) {
        hc->pool[hc->n_pool++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&hc->mu);
    if (c)
        curl_easy_cleanup(c);
}

/* ------------------------------------------------------------- requests */

typedef struct sink {
    httpc_reply *r;
    size_t max;
} sink;

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
    sink *s = arg;
    httpc_reply *r = s->r;
    size_t n = size * nmemb;
    if (r->len + n > s->max) {
        r->too_big = 1;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 16384;
        while (cap < r->len + n + 1)
            cap *= 2;
        char *d = dm_realloc(r->data, cap);
        if (!d) {
            r->no_mem = 1;
            return 0;
        }
        r->data = d;
        r->cap = cap;
    }
    memcpy(r->data + r->len, p, n);
    r->len += n;
    r->data[r->len] = '\0';
    return n;
}

void httpc_excerpt(const char *text, size_t len, char *dst, size_t cap)
{
    size_t n = len < cap - 1 ? len : cap - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)text[i];
        dst[i] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
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
    ATT_OK,      /* 2xx, body in the reply */
    ATT_RETRY,   /* 429, 5xx, connection error: worth another try */
    ATT_TIMEOUT, /* timed out: retried too, reported as DM_ECANCELED */
    ATT_FATAL,   /* anything else: not retried */
};

/*
 * attempt -- one POST of body.  On anything but ATT_OK the error message
 * is set and *rc_out holds the code to return if no retry follows;
 * *retry_after_ms receives the server's Retry-After (0 when absent).
 */
static enum attempt_kind attempt(httpc *hc, CURL *c, const char *body, size_t body_len,
                                 httpc_reply *r, int *rc_out, uint32_t *retry_after_ms)
{
    char errbuf[CURL_ERROR_SIZE];
    struct curl_slist *hdrs = NULL, *t;
    enum attempt_kind kind = ATT_FATAL;
    sink s = { r, hc->max_reply_len };
    *retry_after_ms = 0;
    *rc_out = DM_EIO;
    r->len = 0;
    r->too_big = r->no_mem = 0;
    errbuf[0] = '\0';
    const char *lines[] = { "Content-Type: application/json",
                            "Accept: application/json",
                            /* No "Expect: 100-continue" round trip. */
                            "Expect:", hc->auth_header };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        if (!lines[i])
            continue;
        t = curl_slist_append(hdrs, lines[i]);
        if (!t) {
            *rc_out = err_set_msg(DM_ENOMEM, "POST %s: out of memory", hc->url);
            goto out;
        }
        hdrs = t;
    }
    curl_easy_setopt(c, CURLOPT_URL, hc->url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)hc->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(hc->timeout_ms < 10000 ? hc->timeout_ms : 10000));
    curl_easy_setopt(c, CURLOPT_USERAGENT, "deltamemory/" DM_VERSION_STRING);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        const char *what = errbuf[0] ? errbuf : curl_easy_strerror(cc);
        if (r->too_big) {
            err_set_msg(DM_EIO, "POST %s: reply larger than %zu bytes", hc->url,
                        hc->max_reply_len);
        } else if (r->no_mem) {
            *rc_out = err_set_msg(DM_ENOMEM, "POST %s: out of memory for the reply", hc->url);
        } else if (cc == CURLE_OPERATION_TIMEDOUT) {
            *rc_out = err_set_msg(DM_ECANCELED, "POST %s: timed out after %u ms (%s)",
                                  hc->url, hc->timeout_ms, what);
            kind = ATT_TIMEOUT;
        } else if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
                   cc == CURLE_SEND_ERROR || cc == CURLE_RECV_ERROR ||
                   cc == CURLE_GOT_NOTHING || cc == CURLE_PARTIAL_FILE ||
                   cc == CURLE_SSL_CONNECT_ERROR) {
            err_set_msg(DM_EIO, "POST %s: %s", hc->url, what);
            kind = ATT_RETRY;
        } else {
            err_set_msg(DM_EIO, "POST %s: %s", hc->url, what);
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
    char ex[HTTPC_EXCERPT_LEN + 1];
    httpc_excerpt(r->data ? r->data : "", r->len, ex, sizeof ex);
    err_set_msg(DM_EIO, "POST %s: HTTP %ld: %s", hc->url, status, ex);
    if (status == 429 || status >= 500) {
        curl_off_t ra = 0;
        if (curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
            *retry_after_ms = ra * 1000 > HTTPC_RETRY_AFTER_MAX_MS
                                  ? HTTPC_RETRY_AFTER_MAX_MS
                                  : (uint32_t)(ra * 1000);
        kind = ATT_RETRY;
    }
out:
    curl_slist_free_all(hdrs);
    return kind;
}

int httpc_post(httpc *hc, const char *body, size_t body_len, httpc_reply *r)
{
    CURL *c = take_handle(hc);
    if (!c)
        return err_set_msg(DM_ENOMEM, "curl_easy_init failed");
    int rc = DM_OK;
    for (uint32_t att = 0;; att++) {
        uint32_t retry_after = 0;
        enum attempt_kind k = attempt(hc, c, body, body_len, r, &rc, &retry_after);
        if (k == ATT_OK || k == ATT_FATAL || att >= hc->retries)
            break;
        uint32_t wait = HTTPC_BACKOFF_BASE_MS << (att < 6 ? att : 6);
        if (wait > HTTPC_BACKOFF_MAX_MS)
            wait = HTTPC_BACKOFF_MAX_MS;
        if (retry_after > wait)
            wait = retry_after;
        sleep_ms(wait);
    }
    give_handle(hc, c);
    return rc;
}
