/*
 * test_openapi.c -- the OpenAPI document the server serves at
 * /v1/openapi.json (docs/openapi.json, assembled into the binary): it
 * parses, says OpenAPI 3.0.x, and lists a path and method for every route
 * of every dialect's table (a table still empty in a build is simply
 * checked for nothing); and each operation the document tags "native" is a
 * route of the native table, so the document promises nothing the server
 * lacks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/handlers.h"
#include "srvtest.h"
#include "testutil.h"

/* Does the route pattern ("/v1/memories/{}") name the document's path
 * ("/v1/memories/{id}")?  Segments compare literally, except that "{}" and
 * "{*}" match any "{name}". */
static bool same_path(const char *pattern, const char *path)
{
    const char *a = pattern, *b = path;
    for (;;) {
        size_t la = strcspn(a, "/"), lb = strcspn(b, "/");
        bool wild = la >= 2 && a[0] == '{' && a[la - 1] == '}';
        bool named = lb >= 2 && b[0] == '{' && b[lb - 1] == '}';
        if (wild ? !named : (la != lb || memcmp(a, b, la)))
            return false;
        a += la;
        b += lb;
        if (!*a || !*b)
            return !*a && !*b;
        a++;
        b++;
    }
}

static const char *const methods[] = { "get", "put", "post", "delete", "patch", "head", "options" };

/* The document's operation for the route, or NULL. */
static json_t *find_op(json_t *paths, const char *method, const char *pattern)
{
    const char *path;
    json_t *item;
    json_object_foreach(paths, path, item) {
        if (!same_path(pattern, path))
            continue;
        if (!strcmp(method, "*")) {
            for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
                if (json_object_get(item, methods[i]))
                    return json_object_get(item, methods[i]);
            continue;
        }
        char m[16];
        size_t n = strlen(method);
        assert_true(n < sizeof m);
        for (size_t i = 0; i <= n; i++)
            m[i] = (char)(method[i] >= 'A' && method[i] <= 'Z' ? method[i] + 32 : method[i]);
        json_t *op = json_object_get(item, m);
        if (op)
            return op;
    }
    return NULL;
}

static size_t check_table(json_t *paths, const http_route *t, const char *name)
{
    size_t n = 0;
    for (const http_route *r = t; r->pattern; r++, n++) {
        json_t *op = find_op(paths, r->method, r->pattern);
        if (!op)
            fail_msg("%s route %s %s is not in the document", name, r->method, r->pattern);
        assert_true(json_is_object(json_object_get(op, "responses")));
        assert_true(json_object_size(json_object_get(op, "responses")) > 0);
    }
    return n;
}

static void test_document(void **state)
{
    (void)state;
    st_server s;
    st_start(&s, "openapi", NULL);
    st_resp r = st_call(&s, "GET", "/v1/openapi.json", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.content_type, "application/json"));
    json_t *doc = r.json;
    assert_non_null(doc);
    const char *ver = json_string_value(json_object_get(doc, "openapi"));
    assert_non_null(ver);
    assert_memory_equal(ver, "3.0.", 4);
    assert_true(json_is_string(json_object_get(json_object_get(doc, "info"), "title")));
    assert_true(json_is_string(json_object_get(json_object_get(doc, "info"), "version")));
    json_t *paths = json_object_get(doc, "paths");
    assert_true(json_is_object(paths));

    /* Every route of every table. */
    size_t n_native = check_table(paths, http_routes_native, "native");
    assert_true(n_native >= 20);
    check_table(paths, http_routes_dm, "deltamemory");
    check_table(paths, http_routes_mem0, "mem0");
    check_table(paths, http_routes_mcp, "mcp");
    static const http_route core[] = {
        { "GET", "/v1/health", HTTP_DELTAMEMORY, NULL, "health", true, false },
        { "GET", "/health", HTTP_DELTAMEMORY, NULL, "health", true, false },
        { "GET", "/metrics", HTTP_NATIVE, NULL, "metrics", true, false },
        { 0 },
    };
    check_table(paths, core, "core");

    /* Each native operation is served; operation ids are unique; every
     * path parameter is declared. */
    const char *path;
    json_t *item;
    json_t *ids = json_object();
    json_object_foreach(paths, path, item) {
        const char *m;
        json_t *op;
        json_object_foreach(item, m, op) {
            const char *oid = json_string_value(json_object_get(op, "operationId"));
            assert_non_null(oid);
            if (json_object_get(ids, oid))
                fail_msg("operationId %s twice", oid);
            json_object_set_new(ids, oid, json_true());
            size_t n_params = 0;
            for (const char *p = strchr(path, '{'); p; p = strchr(p + 1, '{'))
                n_params++;
            size_t n_decl = 0;
            json_t *params = json_object_get(op, "parameters");
            for (size_t i = 0; i < json_array_size(params); i++)
                n_decl += !strcmp(json_string_value(json_object_get(json_array_get(params, i),
                                                                    "in")),
                                  "path");
            if (n_decl != n_params)
                fail_msg("%s %s declares %zu path parameters, has %zu", m, path, n_decl, n_params);
            json_t *tags = json_object_get(op, "tags");
            if (strcmp(json_string_value(json_array_get(tags, 0)), "native"))
                continue;
            bool served = false;
            for (const http_route *rt = http_routes_native; rt->pattern && !served; rt++) {
                char um[16];
                size_t k = 0;
                for (; m[k] && k < sizeof um - 1; k++)
                    um[k] = (char)(m[k] - 32 * (m[k] >= 'a' && m[k] <= 'z'));
                um[k] = 0;
                served = same_path(rt->pattern, path) && !strcmp(rt->method, um);
            }
            if (!served)
                fail_msg("the document lists %s %s, which no native route serves", m, path);
        }
    }
    json_decref(ids);
    st_resp_free(&r);
    st_stop(&s, false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_document),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
