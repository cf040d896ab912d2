/*
 * server.h -- the HTTP/JSON server (deltamemory serve): its configuration
 * and its lifecycle.  What the deltamemory command and the tests call; the
 * handlers see handlers.h instead.
 *
 * One server serves one open database.  It runs libmicrohttpd's thread
 * pool (epoll, keep-alive); every request is parsed, checked against the
 * limits, authenticated (API key -> tenant), rate-limited per key, routed
 * to a handler over the dm_* API and answered with JSON.  The routes and
 * their three dialects (DeltaMemory, Mem0, the native one) are in
 * docs/api.md.
 */
#ifndef DM_SERVER_H
#define DM_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "deltamemory.h"

typedef struct http_config {
    const char *host;          /* address to bind; "127.0.0.1" by default */
    uint16_t port;             /* 6969 (http_config_init); 0 = any free port */
    unsigned n_threads;        /* request threads; 0 = 12 per core, at least 16 */
    unsigned n_write_threads;  /* threads that run the writes (routes whose
                                  answer waits for a WAL sync) while their
                                  connections are suspended; 0 = 32 per core,
                                  at least 64 */
    unsigned max_connections;  /* 0 = 4096 */
    unsigned timeout_s;        /* idle connection timeout; 0 = 30 s */
    size_t max_body_len;       /* request body; 0 = 8 MiB */
    size_t max_text_len;       /* one string field; 0 = 32 KiB (the engine's
                                  default limit of a memory's text) */
    uint32_t max_batch;        /* items in one batch or messages array; 0 = 1000 */
    uint32_t max_top_k;        /* top_k / limit of a search; 0 = 1000 */
    uint32_t max_depth;        /* JSON nesting depth; 0 = 32 */
    double rate_per_s;         /* requests per second per key (or per
                                  address without keys); 0 = 1000,
                                  negative = unlimited */
    double rate_burst;         /* bucket size; 0 = 2 * rate_per_s */
    unsigned user_concurrency; /* requests of one user in progress at once;
                                  the user's others wait their turn (off the
                                  request threads); 0 = half the cores,
                                  at least 1 */
    bool is_strict;            /* unknown fields in a body are 422 */
    bool is_open;              /* bind host even without any API key */
    const char *access_log;    /* path of the JSON-lines access log; NULL =
                                  none, "-" = stderr */
    const char *data_dir;      /* the database's directory: the key file is
                                  DIR/keys.json (docs/format.md) */
    const char *llm_url;       /* chat model for the chat routes; NULL = none */
} http_config;

typedef struct http_server http_server;

/* http_config_init -- port 6969, every other field zero / NULL (its
 * default). */
void http_config_init(http_config *c);

/*
 * http_start -- start serving db (which stays owned by the caller and must
 * outlive the server) as configured by c (copied).  Returns once the
 * listening socket is bound; *out the server.  Errors: DM_EINVAL (bad
 * configuration, an address that is not loopback with no API key and
 * !is_open), DM_EIO (the port cannot be bound; the message says why),
 * DM_ENOMEM.
 */
int http_start(dm_db *db, const http_config *c, http_server **out);

/* http_user_waits -- requests that waited for a turn of their user since
 * the start, and the longest such wait so far.  Thread-safe. */
void http_user_waits(http_server *s, uint64_t *n, double *max_s);

/* http_port -- the port actually bound (useful with port 0). */
uint16_t http_port(const http_server *s);

/*
 * http_stop -- stop accepting, let the requests in progress finish (up to
 * drain_ms; then they are cut), and free the server.  The database is
 * not closed.  NULL does nothing.
 */
void http_stop(http_server *s, unsigned drain_ms);

/*
 * http_serve -- what `deltamemory serve` does: http_start, a line on
 * stderr saying where it listens (and whether it needs keys), then wait
 * for SIGINT/SIGTERM: the first drains the requests in progress and
 * returns DM_OK (the caller then closes the database, which flushes); a
 * second one exits the process at once.
 */
int http_serve(dm_db *db, const http_config *c);

#endif
