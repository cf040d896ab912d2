/*
 * srvtest.c -- see srvtest.h.  The client is libcurl's easy interface,
 * one handle per call: simple, and the tests are not about client speed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "srvtest.h"
#include "testutil.h"
#include "tinymodel.h"

void st_start(st_server *s, const char *tag, const http_config *cfg)
{
    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "%s", tu_tmpdir(tag));
    dm_options o;
    tm_options(&o);
    int rc = dm_open(s->dir, &o, &s->db);
    if (rc)
        fail_msg("dm_open %s: %s (%s)", s->dir, dm_errname(rc), dm_errmsg());
    http_config c;
    if (cfg) {
        c = *cfg;
    } else {
        http_config_init(&c);
        c.port = 0;
    }
    if (!c.data_dir)
        c.data_dir = s->dir;
    rc = http_start(s->db, &c, &s->srv);
    if (rc)
        fail_msg("http_start: %s (%s)", dm_errname(rc), dm_errmsg());
    s->port = http_port(s->srv);
    snprintf(s->base, sizeof s->base, "http://127.0.0.1:%u", s->port);
}

void st_stop(st_server *s, bool keep)
{
    http_stop(s->srv, 5000);
    s->srv = NULL;
    int rc = dm_close(s->db);
    s->db = NULL;
    if (rc)
        fail_msg("dm_close: %s (%s)", dm_errname(rc), dm_errmsg());
    if (!keep)
        tu_rmrf(s->dir);
}

typedef struct grow {
    char *p;
    size_t n;
} grow;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    grow *g = ud;
    size_t add = size * nmemb;
    char *np = realloc(g->p, g->n + add + 1);
    if (!np)
        return 0;
    memcpy(np + g->n, ptr, add);
    g->p = np;
    g->n += add;
    g->p[g->n] = 0;
    return add;
}

st_resp st_call(const st_server *s, const char *method, const char *path, const char *body,
                const char *const *headers)
{
    st_resp r;
    memset(&r, 0, sizeof r);
    CURL *h = curl_easy_init();
    if (!h)
        fail_msg("curl_easy_init failed");
    char url[4096];
    snprintf(url, sizeof url, "%s%s", s->base, path);
    grow g = { NULL, 0 };
    struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
    for (size_t i = 0; headers && headers[i]; i++)
        hl = curl_slist_append(hl, headers[i]);
    hl = curl_slist_append(hl, "Expect:");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &g);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    if (!strcmp(method, "HEAD"))
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    CURLcode cc = curl_easy_perform(h);
    if (cc != CURLE_OK)
        fail_msg("%s %s: %s", method, path, curl_easy_strerror(cc));
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
    char *ct = NULL;
    curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
    snprintf(r.content_type, sizeof r.content_type, "%s", ct ? ct : "");
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    r.body = g.p ? g.p : strdup("");
    r.body_len = g.n;
    r.json = json_loadb(r.body, r.body_len, JSON_DECODE_ANY, NULL);
    return r;
}

void st_resp_free(st_resp *r)
{
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

json_t *st_json(const st_server *s, const char *method, const char *path, const char *body,
                long want_status)
{
    st_resp r = st_call(s, method, path, body, NULL);
    if (r.status != want_status)
        fail_msg("%s %s: status %ld, want %ld; body: %.500s", method, path, r.status,
                 want_status, r.body);
    if (!r.json)
        fail_msg("%s %s: the body is not JSON: %.500s", method, path, r.body);
    json_t *j = json_incref(r.json);
    st_resp_free(&r);
    return j;
}
