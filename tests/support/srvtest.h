/*
 * srvtest.h -- the HTTP server in a test: start it in-process on a free
 * loopback port over a fresh database (the tiny test model), call it with
 * libcurl, stop it.  For the tests of src/server (tests/unit/server).
 */
#ifndef DM_SRVTEST_H
#define DM_SRVTEST_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "deltamemory.h"
#include "server/server.h"

typedef struct st_server {
    char dir[1024];
    dm_db *db;
    http_server *srv;
    uint16_t port;
    char base[64];          /* "http://127.0.0.1:PORT" */
} st_server;

/*
 * st_start -- a fresh database in tu_tmpdir(tag) and a server over it.
 * cfg NULL = the defaults (with port 0, data_dir the database's).  Fails
 * the test on error.
 */
void st_start(st_server *s, const char *tag, const http_config *cfg);
/* st_stop -- stop the server, close the database, remove the directory
 * (unless keep). */
void st_stop(st_server *s, bool keep);

typedef struct st_resp {
    long status;
    char *body;             /* NUL-terminated (malloc'd) */
    size_t body_len;
    json_t *json;           /* the body parsed, NULL when it is not JSON */
    char content_type[128];
} st_resp;

/*
 * st_call -- one request: method, path (with its query), body (NULL =
 * none; sent as application/json) and extra headers (NULL-terminated list
 * of "Name: value", or NULL).  Fails the test when the server cannot be
 * reached.
 */
st_resp st_call(const st_server *s, const char *method, const char *path, const char *body,
                const char *const *headers);
void st_resp_free(st_resp *r);

/* st_json -- st_call that also asserts the status; returns the parsed
 * body (a new reference the caller decrefs), failing the test when the
 * body is not JSON. */
json_t *st_json(const st_server *s, const char *method, const char *path, const char *body,
                long want_status);

#endif
