/*
 * test_mcp.c -- the MCP core (mcp_handle) and its HTTP route: version
 * negotiation, the JSON-RPC error codes, notifications without answers,
 * the advertised tools and schemas, every tool's happy path and argument
 * errors, tenant and user scoping, POST /mcp's statuses and headers, and
 * `deltamemory mcp` itself on stdio (when $DM_BIN_DIR names the build).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "server/mcp.h"
#include "srvtest.h"
#include "testutil.h"
#include "tinymodel.h"

/* The response to req parsed, or NULL when there was none. */
static json_t *rpc(dm_db *db, const mcp_scope *sc, const char *req)
{
    char *out = (char *)1;
    assert_int_equal(mcp_handle(db, sc, req, strlen(req), &out), DM_OK);
    if (!out)
        return NULL;
    assert_null(strchr(out, '\n')); /* one line: the stdio framing */
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    if (!j)
        fail_msg("response is not JSON: %s", out);
    dm_free(out);
    return j;
}

static int error_code(json_t *resp)
{
    json_t *e = json_object_get(resp, "error");
    if (!json_is_object(e))
        fail_msg("no error object in the response");
    return (int)json_integer_value(json_object_get(e, "code"));
}

static void expect_rpc_error(dm_db *db, const char *req, int code, bool has_id)
{
    json_t *r = rpc(db, NULL, req);
    if (!r)
        fail_msg("no response to %s", req);
    if (error_code(r) != code)
        fail_msg("%s: code %d, want %d", req, error_code(r), code);
    assert_string_equal(json_string_value(json_object_get(r, "jsonrpc")), "2.0");
    json_t *id = json_object_get(r, "id");
    assert_non_null(id); /* the member is always there, null when unknown */
    assert_true(has_id ? !json_is_null(id) : json_is_null(id));
    json_decref(r);
}

/* tools/call of name with args (a JSON object text); the result object. */
static json_t *call(dm_db *db, const mcp_scope *sc, const char *name, const char *args)
{
    char req[4096];
    snprintf(req, sizeof req,
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\","
             "\"params\":{\"name\":\"%s\",\"arguments\":%s}}",
             name, args);
    json_t *r = rpc(db, sc, req);
    assert_non_null(r);
    json_t *res = json_object_get(r, "result");
    if (!json_is_object(res))
        fail_msg("%s: no result: %s", name, json_dumps(r, 0));
    json_incref(res);
    json_decref(r);
    return res;
}

static const char *text_of(json_t *res)
{
    json_t *c = json_array_get(json_object_get(res, "content"), 0);
    assert_string_equal(json_string_value(json_object_get(c, "type")), "text");
    const char *t = json_string_value(json_object_get(c, "text"));
    assert_non_null(t);
    return t;
}

static bool is_error(json_t *res)
{
    return json_is_true(json_object_get(res, "isError"));
}

/* A successful call's text (copied into buf); fails the test on isError. */
static const char *ok_text(dm_db *db, const mcp_scope *sc, const char *name, const char *args,
                           char *buf, size_t cap)
{
    json_t *res = call(db, sc, name, args);
    if (is_error(res))
        fail_msg("%s %s: %s", name, args, text_of(res));
    snprintf(buf, cap, "%s", text_of(res));
    json_decref(res);
    return buf;
}

/* A failed call's text must contain want. */
static void expect_tool_error(dm_db *db, const mcp_scope *sc, const char *name,
                              const char *args, const char *want)
{
    json_t *res = call(db, sc, name, args);
    if (!is_error(res))
        fail_msg("%s %s: no error: %s", name, args, text_of(res));
    if (!strstr(text_of(res), want))
        fail_msg("%s %s: \"%s\" does not say \"%s\"", name, args, text_of(res), want);
    json_decref(res);
}

static const mcp_scope u1 = { "t1", "u1", 0 };

static void test_initialize(void **state)
{
    (void)state;
    static const char *const asked[][2] = {
        { "2025-11-25", "2025-11-25" }, { "2025-06-18", "2025-06-18" },
        { "2025-03-26", "2025-03-26" }, { "2024-11-05", "2024-11-05" },
        { "2023-01-01", MCP_LATEST_VERSION }, { "", MCP_LATEST_VERSION },
    };
    for (size_t i = 0; i < sizeof asked / sizeof asked[0]; i++) {
        char req[256];
        snprintf(req, sizeof req,
                 "{\"jsonrpc\":\"2.0\",\"id\":\"init-%zu\",\"method\":\"initialize\","
                 "\"params\":{\"protocolVersion\":\"%s\",\"capabilities\":{},"
                 "\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"}}}",
                 i, asked[i][0]);
        json_t *r = rpc(NULL, NULL, req);
        assert_non_null(r);
        char id[16];
        snprintf(id, sizeof id, "init-%zu", i);
        assert_string_equal(json_string_value(json_object_get(r, "id")), id);
        json_t *res = json_object_get(r, "result");
        assert_string_equal(json_string_value(json_object_get(res, "protocolVersion")),
                            asked[i][1]);
        assert_true(json_is_object(
            json_object_get(json_object_get(res, "capabilities"), "tools")));
        json_t *si = json_object_get(res, "serverInfo");
        assert_string_equal(json_string_value(json_object_get(si, "name")), "deltamemory");
        assert_string_equal(json_string_value(json_object_get(si, "version")), dm_version());
        assert_non_null(strstr(json_string_value(json_object_get(res, "instructions")),
                               "get_context"));
        json_decref(r);
    }
    /* No params at all: the latest version. */
    json_t *r = rpc(NULL, NULL, "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\"}");
    assert_string_equal(json_string_value(json_object_get(json_object_get(r, "result"),
                                                          "protocolVersion")),
                        MCP_LATEST_VERSION);
    json_decref(r);
    r = rpc(NULL, NULL, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"ping\"}");
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 5);
    assert_true(json_is_object(json_object_get(r, "result")));
    assert_int_equal(json_object_size(json_object_get(r, "result")), 0);
    json_decref(r);
}

static void test_rpc_errors(void **state)
{
    (void)state;
    expect_rpc_error(NULL, "{\"jsonrpc\":\"2.0\",", -32700, false);
    expect_rpc_error(NULL, "not json", -32700, false);
    expect_rpc_error(NULL, "[]", -32600, false);
    expect_rpc_error(NULL, "42", -32600, false);
    expect_rpc_error(NULL, "{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}", -32600, true);
    expect_rpc_error(NULL, "{\"id\":1,\"method\":\"ping\"}", -32600, true);
    expect_rpc_error(NULL, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":7}", -32600, true);
    expect_rpc_error(NULL, "{\"jsonrpc\":\"2.0\",\"id\":true,\"method\":\"ping\"}", -32600,
                     false);
    expect_rpc_error(NULL, "{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}", -32600,
                     false);
    expect_rpc_error(NULL, "{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"resources/list\"}",
                     -32601, true);
    expect_rpc_error(NULL, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":[1]}",
                     -32602, true);
    expect_rpc_error(NULL, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\"}", -32602,
                     true);
    expect_rpc_error(NULL,
                     "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\","
                     "\"params\":{\"name\":\"no_such_tool\"}}",
                     -32602, true);
    expect_rpc_error(NULL,
                     "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\","
                     "\"params\":{\"name\":\"get_memory\",\"arguments\":[1]}}",
                     -32602, true);
    /* The id comes back exactly, string or number. */
    json_t *r = rpc(NULL, NULL, "{\"jsonrpc\":\"2.0\",\"id\":\"x-9\",\"method\":\"nope\"}");
    assert_string_equal(json_string_value(json_object_get(r, "id")), "x-9");
    assert_non_null(strstr(json_string_value(json_object_get(json_object_get(r, "error"),
                                                             "message")),
                           "nope"));
    json_decref(r);
}

static void test_notifications(void **state)
{
    (void)state;
    assert_null(rpc(NULL, NULL,
                    "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}"));
    assert_null(rpc(NULL, NULL,
                    "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\","
                    "\"params\":{\"requestId\":3}}"));
    assert_null(rpc(NULL, NULL, "{\"jsonrpc\":\"2.0\",\"method\":\"whatever/else\"}"));
    /* A response from the client (we never ask it anything) is dropped. */
    assert_null(rpc(NULL, NULL, "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}"));
    /* A batch answers its requests only, in order. */
    json_t *r = rpc(NULL, NULL,
                    "[{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"},"
                    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"},"
                    "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"nope\"}]");
    assert_true(json_is_array(r));
    assert_int_equal(json_array_size(r), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(r, 0), "id")), 1);
    assert_int_equal(error_code(json_array_get(r, 1)), -32601);
    json_decref(r);
    assert_null(rpc(NULL, NULL,
                    "[{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}]"));
}

static void test_tools_list(void **state)
{
    (void)state;
    static const char *const names[] = { "add_memory", "search_memories", "get_context",
                                         "get_profile", "list_memories", "get_memory",
                                         "update_memory", "delete_memory", "memory_history",
                                         "search_graph" };
    json_t *r = rpc(NULL, NULL, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}");
    json_t *tools = json_object_get(json_object_get(r, "result"), "tools");
    assert_int_equal(json_array_size(tools), 10);
    for (size_t i = 0; i < 10; i++) {
        json_t *t = json_array_get(tools, i);
        assert_string_equal(json_string_value(json_object_get(t, "name")), names[i]);
        assert_true(strlen(json_string_value(json_object_get(t, "description"))) > 30);
        json_t *s = json_object_get(t, "inputSchema");
        assert_string_equal(json_string_value(json_object_get(s, "type")), "object");
        assert_true(json_is_false(json_object_get(s, "additionalProperties")));
        assert_true(json_is_array(json_object_get(s, "required")));
        json_t *props = json_object_get(s, "properties");
        /* Every tool can name its user. */
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(props, "user_id"), "type")),
            "string");
        const char *k;
        json_t *p;
        json_object_foreach(props, k, p) {
            assert_non_null(json_string_value(json_object_get(p, "type")));
            assert_non_null(json_string_value(json_object_get(p, "description")));
        }
        json_t *a = json_object_get(t, "annotations");
        assert_true(json_is_false(json_object_get(a, "openWorldHint")));
        bool is_write = i == 0 || i == 6 || i == 7;
        assert_int_equal(json_is_true(json_object_get(a, "readOnlyHint")), !is_write);
        assert_int_equal(json_is_true(json_object_get(a, "destructiveHint")), i == 6 || i == 7);
    }
    json_t *add = json_object_get(json_array_get(tools, 0), "inputSchema");
    assert_int_equal(json_array_size(json_object_get(add, "required")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(add, "required"), 0)),
                        "text");
    json_t *role = json_object_get(json_object_get(add, "properties"), "role");
    assert_int_equal(json_array_size(json_object_get(role, "enum")), 2);
    json_t *lim = json_object_get(
        json_object_get(json_object_get(json_array_get(tools, 1), "inputSchema"), "properties"),
        "limit");
    assert_string_equal(json_string_value(json_object_get(lim, "type")), "integer");
    assert_int_equal(json_integer_value(json_object_get(lim, "minimum")), 1);
    assert_int_equal(json_integer_value(json_object_get(lim, "maximum")), 100);
    assert_int_equal(json_integer_value(json_object_get(lim, "default")), 10);
    json_decref(r);
}

/* The first UUID in s, into out. */
static void find_id(const char *s, char out[DM_ID_STRLEN + 1])
{
    for (const char *p = s; *p; p++) {
        dm_id id;
        if (strlen(p) >= DM_ID_STRLEN) {
            char tmp[DM_ID_STRLEN + 1];
            memcpy(tmp, p, DM_ID_STRLEN);
            tmp[DM_ID_STRLEN] = 0;
            if (dm_id_parse(tmp, &id) == DM_OK) {
                memcpy(out, tmp, sizeof tmp);
                return;
            }
        }
    }
    fail_msg("no id in %s", s);
}

static void test_tools(void **state)
{
    (void)state;
    st_server s;
    st_start(&s, "mcp_tools", NULL);
    dm_db *db = s.db;
    char buf[16384], args[512], id[DM_ID_STRLEN + 1], id2[DM_ID_STRLEN + 1];

    ok_text(db, &u1, "add_memory", "{\"text\":\"I live in Austin.\",\"session_id\":\"s1\"}",
            buf, sizeof buf);
    assert_non_null(strstr(buf, "Stored memory"));
    assert_non_null(strstr(buf, "Facts: 3 added")); /* the city, its region and country */
    find_id(buf, id);
    ok_text(db, &u1, "add_memory",
            "{\"text\":\"My favourite breakfast is blueberry pancakes.\",\"infer\":false,"
            "\"metadata\":{\"topic\":\"food\"},\"time\":\"2024-05-08T10:00:00Z\","
            "\"speaker\":\"Ann\"}",
            buf, sizeof buf);
    assert_non_null(strstr(buf, "no extraction"));
    find_id(buf, id2);

    /* search_memories: the pancakes first; the filter narrows. */
    ok_text(db, &u1, "search_memories", "{\"query\":\"blueberry pancakes\",\"limit\":5}", buf,
            sizeof buf);
    json_t *j = json_loads(buf, 0, NULL);
    json_t *hit = json_array_get(json_object_get(j, "results"), 0);
    assert_string_equal(json_string_value(json_object_get(hit, "id")), id2);
    assert_true(json_is_number(json_object_get(hit, "score")));
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(hit, "metadata"), "speaker")),
                        "Ann");
    json_decref(j);
    ok_text(db, &u1, "search_memories",
            "{\"query\":\"breakfast\",\"filter\":{\"topic\":\"travel\"}}", buf, sizeof buf);
    j = json_loads(buf, 0, NULL);
    assert_int_equal(json_array_size(json_object_get(j, "results")), 0);
    json_decref(j);

    /* get_context: the profile holds the city. */
    ok_text(db, &u1, "get_context", "{\"query\":\"where do I live?\",\"session_id\":\"s1\"}",
            buf, sizeof buf);
    assert_non_null(strstr(buf, "About the user"));
    assert_non_null(strstr(buf, "Austin"));

    /* get_profile: the fact, with its source. */
    ok_text(db, &u1, "get_profile", "{}", buf, sizeof buf);
    j = json_loads(buf, 0, NULL);
    json_t *facts = json_object_get(j, "facts"), *city = NULL;
    size_t i;
    json_t *f;
    json_array_foreach(facts, i, f) {
        if (!strcmp(json_string_value(json_object_get(f, "slot")), "location.city"))
            city = f;
    }
    assert_non_null(city);
    assert_string_equal(json_string_value(json_object_get(city, "value")), "Austin");
    assert_string_equal(json_string_value(json_array_get(json_object_get(city, "sources"), 0)),
                        id);
    char fact_id[DM_ID_STRLEN + 1];
    snprintf(fact_id, sizeof fact_id, "%s", json_string_value(json_object_get(city, "id")));
    json_decref(j);
    ok_text(db, &u1, "get_profile", "{\"slot\":\"work.employer\"}", buf, sizeof buf);
    j = json_loads(buf, 0, NULL);
    assert_int_equal(json_array_size(json_object_get(j, "facts")), 0);
    json_decref(j);

    /* memory_history: by the fact's id, and by the memory's. */
    snprintf(args, sizeof args, "{\"id\":\"%s\"}", fact_id);
    ok_text(db, &u1, "memory_history", args, buf, sizeof buf);
    j = json_loads(buf, 0, NULL);
    json_t *ch = json_array_get(json_object_get(j, "changes"), 0);
    assert_string_equal(json_string_value(json_object_get(ch, "kind")), "add");
    assert_string_equal(json_string_value(json_object_get(ch, "new_value")), "Austin");
    json_decref(j);
    snprintf(args, sizeof args, "{\"id\":\"%s\"}", id);
    ok_text(db, &u1, "memory_history", args, buf, sizeof buf);
    j = json_loads(buf, 0, NULL);
    assert_true(json_array_size(json_object_get(j, "facts")) >= 1);
    json_decref(j);

    /* list_memories: both, newest event first; a page of one has a cursor. */
    ok_text(db, &u1, "list_memories", "{}", buf, sizeof buf);
    j = json_loads(buf, 0, NULL);
    assert_int_equal(json_array_size(json_object_get(j, "results")), 2);
    assert_true(json_is_null(json_object_get(j, "next_cursor")));
    json_decref(j);
    ok_text(db, &u1, "list_memories", "{\"limit\":1}", buf, sizeof buf);
    j = json_loads(buf, 0, NULL);
    assert_true(json_is_string(json_object_get(j, "next_cursor")));
    json_decref(j);

    /* search_graph: the user and the city. */
    ok_text(db, &u1, "search_graph", "{\"depth\":1}", buf, sizeof buf);
    assert_non_null(strstr(buf, "Austin"));
    ok_text(db, &u1, "search_graph", "{\"query\":\"Austin\"}", buf, sizeof buf);
    assert_non_null(strstr(buf, "\"nodes\""));

    /* get / update / delete. */
    snprintf(args, sizeof args, "{\"id\":\"%s\"}", id2);
    ok_text(db, &u1, "get_memory", args, buf, sizeof buf);
    j = json_loads(buf, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "text")),
                        "My favourite breakfast is blueberry pancakes.");
    assert_string_equal(json_string_value(json_object_get(j, "user_id")), "u1");
    json_decref(j);
    snprintf(args, sizeof args, "{\"id\":\"%s\",\"text\":\"I like waffles.\"}", id2);
    ok_text(db, &u1, "update_memory", args, buf, sizeof buf);
    assert_non_null(strstr(buf, "Updated memory"));
    snprintf(args, sizeof args, "{\"id\":\"%s\"}", id2);
    ok_text(db, &u1, "get_memory", args, buf, sizeof buf);
    assert_non_null(strstr(buf, "I like waffles."));
    ok_text(db, &u1, "delete_memory", args, buf, sizeof buf);
    assert_non_null(strstr(buf, "Deleted memory"));
    expect_tool_error(db, &u1, "get_memory", args, "not found");
    expect_tool_error(db, &u1, "delete_memory", args, "not found");
    st_stop(&s, false);
}

static void test_tool_errors(void **state)
{
    (void)state;
    st_server s;
    st_start(&s, "mcp_tool_errors", NULL);
    dm_db *db = s.db;
    char buf[4096];
    expect_tool_error(db, &u1, "search_memories", "{\"query\":\"x\",\"colour\":1,\"size\":2}",
                      "Unrecognized key(s) in object: 'colour', 'size'");
    expect_tool_error(db, &u1, "add_memory", "{}", "\"text\" is required");
    expect_tool_error(db, &u1, "add_memory", "{\"text\":\"\"}", "must not be empty");
    expect_tool_error(db, &u1, "add_memory", "{\"text\":5}", "\"text\" must be a string");
    expect_tool_error(db, &u1, "add_memory", "{\"text\":\"a\",\"role\":\"robot\"}",
                      "one of user|assistant");
    expect_tool_error(db, &u1, "add_memory", "{\"text\":\"a\",\"time\":\"yesterday-ish\"}",
                      "not an ISO 8601 time");
    expect_tool_error(db, &u1, "add_memory", "{\"text\":\"a\",\"metadata\":[1]}",
                      "must be a JSON object");
    expect_tool_error(db, &u1, "add_memory", "{\"text\":\"a\",\"infer\":\"yes\"}",
                      "true or false");
    expect_tool_error(db, &u1, "search_memories", "{\"query\":\"x\",\"limit\":\"5\"}",
                      "must be an integer");
    expect_tool_error(db, &u1, "search_memories", "{\"query\":\"x\",\"limit\":2.5}",
                      "must be an integer");
    expect_tool_error(db, &u1, "search_memories", "{\"query\":\"x\",\"limit\":0}",
                      "between 1 and 100");
    expect_tool_error(db, &u1, "search_graph", "{\"depth\":9}", "between 1 and 5");
    expect_tool_error(db, &u1, "search_graph", "{\"entity\":\"a\",\"query\":\"b\"}",
                      "not both");
    expect_tool_error(db, &u1, "get_memory", "{\"id\":\"nope\"}", "not a memory id");
    expect_tool_error(db, &u1, "memory_history",
                      "{\"id\":\"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b\"}", "No fact or memory");
    expect_tool_error(db, &u1, "update_memory",
                      "{\"id\":\"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b\"}", "nothing to update");
    /* An engine refusal comes back with the engine's message. */
    expect_tool_error(db, &u1, "search_memories",
                      "{\"query\":\"x\",\"from\":\"2024-02-01\",\"to\":\"2024-01-01\"}",
                      "search_memories failed: DM_EINVAL");
    /* The server's own bound on a limit (max_top_k) applies too. */
    mcp_scope bounded = { "t1", "u1", 5 };
    expect_tool_error(db, &bounded, "search_memories", "{\"query\":\"x\",\"limit\":6}",
                      "\"limit\" 6 is over this server's bound of 5");
    expect_tool_error(db, &bounded, "list_memories", "{\"limit\":50}",
                      "\"limit\" 50 is over this server's bound of 5");
    ok_text(db, &bounded, "search_memories", "{\"query\":\"x\",\"limit\":5}", buf, sizeof buf);
    /* Without a default user, the call must name one. */
    mcp_scope anon = { "t1", NULL, 0 };
    expect_tool_error(db, &anon, "list_memories", "{}", "needs \"user_id\"");
    /* A user that never wrote reads as empty, not as an error. */
    ok_text(db, &anon, "list_memories", "{\"user_id\":\"ghost\"}", buf, sizeof buf);
    assert_non_null(strstr(buf, "\"results\": []"));
    ok_text(db, &anon, "get_context", "{\"user_id\":\"ghost\"}", buf, sizeof buf);
    assert_non_null(strstr(buf, "Nothing is known"));
    /* A null argument counts as absent. */
    ok_text(db, &anon, "search_memories", "{\"user_id\":\"ghost\",\"query\":\"a\",\"limit\":null}",
            buf, sizeof buf);
    /* Nothing was stored by any of the refused calls. */
    dm_stats st;
    assert_int_equal(dm_stats_get(db, &st), DM_OK);
    assert_int_equal(st.n_memories, 0);
    st_stop(&s, false);
}

static void test_scope(void **state)
{
    (void)state;
    st_server s;
    st_start(&s, "mcp_scope", NULL);
    dm_db *db = s.db;
    char buf[4096], args[256], id[DM_ID_STRLEN + 1];
    ok_text(db, &u1, "add_memory", "{\"text\":\"The spare key is under the red pot.\"}", buf,
            sizeof buf);
    find_id(buf, id);
    /* The user_id argument overrides the connection's user... */
    ok_text(db, &u1, "search_memories", "{\"query\":\"spare key\",\"user_id\":\"u2\"}", buf,
            sizeof buf);
    assert_null(strstr(buf, "red pot"));
    /* ... and another tenant sees nothing of this one, even by id. */
    mcp_scope other = { "t2", "u1", 0 };
    ok_text(db, &other, "search_memories", "{\"query\":\"spare key\"}", buf, sizeof buf);
    assert_null(strstr(buf, "red pot"));
    snprintf(args, sizeof args, "{\"id\":\"%s\"}", id);
    expect_tool_error(db, &other, "get_memory", args, "not found");
    expect_tool_error(db, &other, "delete_memory", args, "not found");
    mcp_scope u2 = { "t1", "u2", 0 };
    expect_tool_error(db, &u2, "get_memory", args, "not found");
    ok_text(db, &u1, "get_memory", args, buf, sizeof buf);
    assert_non_null(strstr(buf, "\"tenant\": \"t1\""));
    st_stop(&s, false);
}

static void test_http_route(void **state)
{
    (void)state;
    st_server s;
    st_start(&s, "mcp_http", NULL);
    st_resp r = st_call(&s, "POST", "/mcp",
                        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\","
                        "\"params\":{\"protocolVersion\":\"2025-06-18\"}}",
                        NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.content_type, "application/json"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(r.json, "result"),
                                                          "protocolVersion")),
                        "2025-06-18");
    st_resp_free(&r);

    r = st_call(&s, "POST", "/mcp",
                "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", NULL);
    assert_int_equal(r.status, 202);
    assert_int_equal(r.body_len, 0);
    st_resp_free(&r);

    /* The user from the header, then from the query string. */
    static const char *const hdr[] = { "X-DeltaMemory-User: hu", NULL };
    r = st_call(&s, "POST", "/mcp",
                "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":"
                "\"add_memory\",\"arguments\":{\"text\":\"I work at Acme.\"}}}",
                hdr);
    assert_int_equal(r.status, 200);
    assert_true(json_is_false(json_object_get(json_object_get(r.json, "result"), "isError")));
    st_resp_free(&r);
    r = st_call(&s, "POST", "/mcp?user_id=hu",
                "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":"
                "\"list_memories\",\"arguments\":{}}}",
                NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "I work at Acme."));
    st_resp_free(&r);
    /* Without either, the tool says so. */
    r = st_call(&s, "POST", "/mcp",
                "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":{\"name\":"
                "\"list_memories\",\"arguments\":{}}}",
                NULL);
    assert_true(json_is_true(json_object_get(json_object_get(r.json, "result"), "isError")));
    st_resp_free(&r);
    /* JSON-RPC errors are 200 with an error object. */
    r = st_call(&s, "POST", "/mcp", "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"x\"}", NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(error_code(r.json), -32601);
    st_resp_free(&r);

    r = st_call(&s, "GET", "/mcp", NULL, NULL);
    assert_int_equal(r.status, 405);
    st_resp_free(&r);
    r = st_call(&s, "DELETE", "/mcp", NULL, NULL);
    assert_int_equal(r.status, 405);
    st_resp_free(&r);
    r = st_call(&s, "POST", "/mcp", NULL, NULL);
    assert_int_equal(r.status, 400);
    st_resp_free(&r);
    static const char *const bad_ver[] = { "MCP-Protocol-Version: 1999-01-01", NULL };
    r = st_call(&s, "POST", "/mcp", "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"ping\"}",
                bad_ver);
    assert_int_equal(r.status, 400);
    st_resp_free(&r);
    static const char *const good_ver[] = { "MCP-Protocol-Version: 2025-03-26",
                                            "Origin: http://localhost:3000", NULL };
    r = st_call(&s, "POST", "/mcp", "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"ping\"}",
                good_ver);
    assert_int_equal(r.status, 200);
    st_resp_free(&r);
    static const char *const evil[] = { "Origin: http://evil.example", NULL };
    r = st_call(&s, "POST", "/mcp", "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}", evil);
    assert_int_equal(r.status, 403);
    st_resp_free(&r);
    st_stop(&s, false);
}

/* `deltamemory mcp`: one response line per request line, none for
 * notifications and blank lines, nothing else on stdout, exit 0 at the
 * end of input, and the memories durable after it. */
static void test_stdio(void **state)
{
    (void)state;
    const char *bin = getenv("DM_BIN_DIR");
    if (!bin)
        fail_msg("DM_BIN_DIR is not set: run the test through ctest");
    char dir[1024], in[1100], cmd[4096];
    snprintf(dir, sizeof dir, "%s", tu_tmpdir("mcp_stdio"));
    snprintf(in, sizeof in, "%s/in.jsonl", dir);
    FILE *f = fopen(in, "w");
    assert_non_null(f);
    fputs("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":"
          "{\"protocolVersion\":\"2025-06-18\"}}\n"
          "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n"
          "\n"
          "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":"
          "\"add_memory\",\"arguments\":{\"text\":\"I work at Acme.\"}}}\r\n"
          "this is not json\n"
          "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":"
          "\"list_memories\",\"arguments\":{\"user_id\":\"other\"}}}",
          f);
    fclose(f);
    for (int round = 0; round < 2; round++) {
        snprintf(cmd, sizeof cmd,
                 "%s/tools/cli/deltamemory --data %s/db --model %s mcp --tenant t9 "
                 "--user su < %s 2>/dev/null",
                 bin, dir, tm_default_model(), in);
        FILE *p = popen(cmd, "r");
        assert_non_null(p);
        char line[8192];
        int n = 0;
        long want[] = { 1, 2, -32700, 3 };
        while (fgets(line, sizeof line, p)) {
            json_t *j = json_loads(line, 0, NULL);
            if (!j || n >= 4)
                fail_msg("unexpected line %d on stdout: %s", n, line);
            json_t *id = json_object_get(j, "id");
            if (want[n] < 0)
                assert_int_equal(error_code(j), (int)want[n]);
            else
                assert_int_equal(json_integer_value(id), want[n]);
            if (want[n] == 2)
                assert_non_null(strstr(line, "Stored memory"));
            json_decref(j);
            n++;
        }
        assert_int_equal(n, 4);
        assert_int_equal(pclose(p), 0);
    }
    /* Both rounds stored their memory, in tenant t9 for user su. */
    dm_options o;
    dm_options_init(&o);
    o.model_path = tm_default_model();
    char dbdir[1100];
    snprintf(dbdir, sizeof dbdir, "%s/db", dir);
    dm_db *db;
    assert_int_equal(dm_open(dbdir, &o, &db), DM_OK);
    dm_list_params lp = { .tenant = "t9", .user_id = "su" };
    dm_list_result *r;
    assert_int_equal(dm_list(db, &lp, &r), DM_OK);
    assert_int_equal(r->n, 2);
    dm_list_result_free(r);
    assert_int_equal(dm_close(db), DM_OK);
    tu_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_initialize),   cmocka_unit_test(test_rpc_errors),
        cmocka_unit_test(test_notifications), cmocka_unit_test(test_tools_list),
        cmocka_unit_test(test_tools),        cmocka_unit_test(test_tool_errors),
        cmocka_unit_test(test_scope),        cmocka_unit_test(test_http_route),
        cmocka_unit_test(test_stdio),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
