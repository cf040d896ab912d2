/*
 * test_filter.c -- metadata filters: every operator on numbers, strings,
 * ISO 8601 instants, booleans, null and arrays; missing fields and type
 * mismatches; AND/OR/NOT nesting; the "*" wildcard and the "metadata"
 * wrapper; compile errors and the paths they name; the depth limit; the
 * field list; and allocation failure during compilation.
 *
 * Filters and memories are written with single quotes for readability;
 * q() turns them into JSON.  A memory is a JSON object whose members are
 * its fields.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "retrieve/filter.h"

/* q -- text with ' replaced by ", in one of a few rotating static buffers
 * (so that a filter and a memory can both be converted for one call). */
static const char *q(const char *s)
{
    static char bufs[4][8192];
    static int next;
    char *b = bufs[next++ & 3];
    size_t n = strlen(s);
    assert_true(n < sizeof bufs[0]);
    for (size_t i = 0; i <= n; i++)
        b[i] = s[i] == '\'' ? '"' : s[i];
    return b;
}

static int n_lookups;

static const json_t *lookup(void *arg, const char *name)
{
    n_lookups++;
    return json_object_get((const json_t *)arg, name);
}

static mf_filter *compile_ok(const char *filter)
{
    mf_filter *f = NULL;
    int rc = mf_compile(q(filter), 0, &f);
    if (rc != DM_OK)
        fail_msg("compiling %s: %s", filter, err_last_msg());
    assert_non_null(f);
    return f;
}

/* matches -- whether memory (a JSON object) satisfies filter. */
static bool matches(const char *filter, const char *memory)
{
    mf_filter *f = compile_ok(filter);
    json_error_t je;
    json_t *m = json_loads(q(memory), 0, &je);
    if (!m)
        fail_msg("bad test memory %s: %s", memory, je.text);
    bool r = mf_match(f, lookup, m);
    json_decref(m);
    mf_free(f);
    return r;
}

#define YES(f, m) assert_true(matches((f), (m)))
#define NO(f, m) assert_false(matches((f), (m)))

/* compile_err -- filter must fail with DM_EINVAL and a message holding
 * want (which includes the path). */
static void compile_err(const char *filter, const char *want)
{
    mf_filter *f = (mf_filter *)(uintptr_t)1;
    int rc = mf_compile(q(filter), 0, &f);
    if (rc != DM_EINVAL)
        fail_msg("%s: expected DM_EINVAL, got %d", filter, rc);
    assert_null(f);
    const char *msg = err_last_msg();
    if (!strstr(msg, want))
        fail_msg("%s: message \"%s\" does not contain \"%s\"", filter, msg, want);
    assert_true(strncmp(msg, "filter: ", 8) == 0);
}

static void test_numbers(void **state)
{
    const char *m = "{'age': 30, 'score': 2.5, 'big': 9007199254740993}";
    YES("{'age': 30}", m);
    YES("{'age': 30.0}", m);
    NO("{'age': 31}", m);
    YES("{'age': {'eq': 30}}", m);
    YES("{'age': {'ne': 31}}", m);
    NO("{'age': {'ne': 30.0}}", m);
    YES("{'age': {'gt': 29.5}}", m);
    NO("{'age': {'gt': 30}}", m);
    YES("{'age': {'gte': 30}}", m);
    YES("{'age': {'lt': 31}}", m);
    NO("{'age': {'lt': 30}}", m);
    YES("{'age': {'lte': 30}}", m);
    YES("{'age': {'gte': 18, 'lt': 65}}", m);
    NO("{'age': {'gte': 18, 'lt': 30}}", m);
    YES("{'age': {'in': [1, 30, 'x']}}", m);
    NO("{'age': {'in': [1, 2]}}", m);
    NO("{'age': {'in': []}}", m);
    YES("{'age': {'nin': [1, 2]}}", m);
    NO("{'age': {'nin': [30]}}", m);
    YES("{'score': {'gt': 2, 'lt': 3}}", m);
    YES("{'score': {'gt': -1e10}}", m);
    /* Two integers compare exactly, beyond the 53 bits of a double. */
    NO("{'big': 9007199254740992}", m);
    YES("{'big': {'gt': 9007199254740992}}", m);
    /* contains on a number finds nothing. */
    NO("{'age': {'contains': 30}}", m);
}

static void test_strings(void **state)
{
    const char *m = "{'name': 'Alice Smith', 'fruit': 'banana', 'empty': ''}";
    YES("{'name': 'Alice Smith'}", m);
    NO("{'name': 'alice smith'}", m);
    NO("{'name': 'Alice'}", m);
    YES("{'name': {'ne': 'Bob'}}", m);
    YES("{'fruit': {'gt': 'apple'}}", m);
    NO("{'fruit': {'gt': 'cherry'}}", m);
    YES("{'fruit': {'lt': 'bananas'}}", m); /* a prefix sorts first */
    YES("{'fruit': {'gt': 'banan'}}", m);
    YES("{'fruit': {'gte': 'banana', 'lte': 'banana'}}", m);
    NO("{'fruit': {'lt': 'Banana'}}", m); /* bytewise: 'b' > 'B' */
    YES("{'name': {'contains': 'ice Sm'}}", m);
    NO("{'name': {'contains': 'ice sm'}}", m);
    YES("{'name': {'icontains': 'ICE sM'}}", m);
    NO("{'name': {'icontains': 'alicia'}}", m);
    YES("{'name': {'contains': ''}}", m);
    YES("{'empty': {'contains': ''}}", m);
    NO("{'empty': {'contains': 'a'}}", m);
    NO("{'name': {'contains': 5}}", m);
    YES("{'fruit': {'in': ['apple', 'banana']}}", m);
    NO("{'fruit': {'in': ['Banana']}}", m);
    YES("{'fruit': {'nin': ['apple']}}", m);
    /* Lower-case and/or/not are plain field names. */
    YES("{'and': 'x', 'or': {'ne': 1}}", "{'and': 'x'}");
    NO("{'not': 'x'}", "{'and': 'x'}");
}

static void test_instants(void **state)
{
    const char *m = "{'created_at': '2023-05-07T13:56:00Z', 'day': '2023-05-07',"
                    " 'local': '2023-05-07T13:56:00+05:00', 'bad': '2023-05-07T13:56:00+5:00'}";
    /* A date alone is midnight UTC. */
    YES("{'created_at': {'gt': '2023-05-07'}}", m);
    YES("{'created_at': {'lt': '2023-05-08'}}", m);
    NO("{'created_at': {'lte': '2023-05-07'}}", m);
    YES("{'day': '2023-05-07T00:00:00Z'}", m);
    YES("{'day': {'gte': '2023-05-07T00:00:00.000Z', 'lt': '2023-05-07T00:00:00.000001Z'}}", m);
    YES("{'day': {'lt': '2023-05-07T00:00:00.000001'}}", m);
    /* No zone is UTC; offsets shift to UTC. */
    YES("{'created_at': '2023-05-07T13:56:00'}", m);
    YES("{'created_at': '2023-05-07T13:56'}", m);
    YES("{'created_at': '2023-05-07T15:56:00+02:00'}", m);
    YES("{'created_at': '2023-05-07T09:56:00-04:00'}", m);
    YES("{'created_at': '2023-05-07T19:26:00+0530'}", m);
    YES("{'created_at': '2023-05-07T18:56:00+05'}", m);
    YES("{'created_at': '2023-05-07 13:56:00.000z'}", m);
    YES("{'created_at': '2023-05-07t13:56:00,0Z'}", m);
    NO("{'created_at': '2023-05-07T13:56:00.000001Z'}", m);
    YES("{'created_at': {'in': ['2023-01-01', '2023-05-07T14:56:00+01:00']}}", m);
    NO("{'created_at': {'ne': '2023-05-07T14:56:00+01:00'}}", m);
    /* 13:56+05:00 is 08:56Z: before 10:00Z although bytewise it is after. */
    YES("{'local': {'lt': '2023-05-07T10:00:00Z'}}", m);
    YES("{'local': {'gt': '2023-05-07'}}", m);
    /* A broken offset is no instant: the comparison is bytewise. */
    NO("{'bad': {'lt': '2023-05-07T10:00:00Z'}}", m);
    YES("{'bad': {'gt': '2023-05-07T10:00:00Z'}}", m);
    /* Calendar rules: leap years, month lengths. */
    YES("{'d': '2024-02-29T00:00:00Z'}", "{'d': '2024-02-29'}");
    NO("{'d': '2023-02-29T00:00:00Z'}", "{'d': '2023-02-29'}");
    NO("{'d': '1900-02-29T00:00:00Z'}", "{'d': '1900-02-29'}");
    YES("{'d': '2000-03-01T00:00:00+01:00'}", "{'d': '2000-02-29T23:00:00Z'}");
    YES("{'d': '1970-01-01T00:00:00+00:00'}", "{'d': '1969-12-31T23:00:00-01:00'}");
    YES("{'d': {'lt': '1970-01-01'}}", "{'d': '1969-12-31T23:59:59.999999Z'}");
    YES("{'d': '2024-01-01'}", "{'d': '2023-12-31T23:59:60Z'}");
    NO("{'d': '2023-04-31T00:00:00Z'}", "{'d': '2023-05-01'}");
    NO("{'d': '2023-05-07T24:00:00Z'}", "{'d': '2023-05-08'}");
    NO("{'d': '2023-05-07T05:00:00+05:'}", "{'d': '2023-05-07'}");
    NO("{'d': '2023-05-07T05:00:00+0'}", "{'d': '2023-05-07'}");
    NO("{'d': '2023-05-07T05:00:00.'}", "{'d': '2023-05-07T05:00:00'}");
    NO("{'d': '2023-05-07T05:00:00Zjunk'}", "{'d': '2023-05-07T05:00:00'}");
    YES("{'d': '2023-05-07T05:00:00.1234567Z'}", "{'d': '2023-05-07T05:00:00.123456'}");
    /* An instant and a number are different types. */
    NO("{'d': {'gt': 0}}", "{'d': '2023-05-07'}");
}

static void test_booleans_and_null(void **state)
{
    const char *m = "{'done': true, 'off': false, 'gone': null, 'one': 1}";
    YES("{'done': true}", m);
    NO("{'done': false}", m);
    YES("{'off': false}", m);
    YES("{'done': {'ne': false}}", m);
    YES("{'done': {'in': [false, true]}}", m);
    NO("{'done': {'nin': [true]}}", m);
    NO("{'one': true}", m);
    NO("{'done': 1}", m);
    NO("{'done': {'gt': 0}}", m);
    NO("{'done': {'contains': true}}", m);
    /* null is a value: eq null needs the field present. */
    YES("{'gone': null}", m);
    NO("{'missing': null}", m);
    NO("{'done': null}", m);
    YES("{'done': {'ne': null}}", m);
    NO("{'gone': {'ne': null}}", m);
    YES("{'gone': {'in': [null]}}", m);
    NO("{'gone': {'gte': ''}}", m);
}

static void test_arrays(void **state)
{
    const char *m = "{'tags': ['travel', 'Food', 3], 'nums': [1, 2.0], 'nest': [[1, 2], {'a': 1}]}";
    YES("{'tags': {'contains': 'travel'}}", m);
    NO("{'tags': {'contains': 'trav'}}", m); /* elements, not substrings */
    NO("{'tags': {'contains': 'food'}}", m);
    YES("{'tags': {'icontains': 'FOOD'}}", m);
    YES("{'tags': {'contains': 3.0}}", m);
    YES("{'nums': {'contains': 2}}", m);
    YES("{'tags': {'in': ['x', 'Food']}}", m);
    NO("{'tags': {'in': ['x', 'food']}}", m);
    YES("{'tags': {'nin': ['x']}}", m);
    NO("{'tags': {'nin': ['x', 3]}}", m);
    /* eq compares whole values (numbers numerically inside too). */
    YES("{'tags': {'eq': ['travel', 'Food', 3]}}", m);
    NO("{'tags': {'eq': ['Food', 'travel', 3]}}", m);
    YES("{'nums': {'eq': [1.0, 2]}}", m);
    NO("{'tags': 'travel'}", m);
    YES("{'nest': {'eq': [[1, 2.0], {'a': 1.0}]}}", m);
    NO("{'nest': {'eq': [[1, 2], {'a': 1, 'b': 2}]}}", m);
    YES("{'nest': {'contains': {'a': 1}}}", m);
    YES("{'nest': {'contains': [1, 2]}}", m);
    /* A bare array is "in" (the platform's memory_ids list form). */
    YES("{'tags': ['travel']}", m);
    YES("{'id': ['m1', 'm2']}", "{'id': 'm2'}");
    NO("{'id': ['m1', 'm2']}", "{'id': 'm3'}");
    NO("{'tags': {'gt': 'a'}}", m);
    YES("{'o': {'eq': {'x': [1], 'y': 'z'}}}", "{'o': {'y': 'z', 'x': [1.0]}}");
}

static void test_missing_and_mismatch(void **state)
{
    const char *m = "{'n': 5, 's': '5'}";
    /* A missing field satisfies ne and nin only. */
    NO("{'x': 1}", m);
    NO("{'x': {'eq': 1}}", m);
    YES("{'x': {'ne': 1}}", m);
    NO("{'x': {'in': [1]}}", m);
    YES("{'x': {'nin': [1]}}", m);
    NO("{'x': {'gt': 0}}", m);
    NO("{'x': {'gte': ''}}", m);
    NO("{'x': {'lt': 'z'}}", m);
    NO("{'x': {'lte': 0}}", m);
    NO("{'x': {'contains': ''}}", m);
    NO("{'x': {'icontains': ''}}", m);
    NO("{'x': '*'}", m);
    /* Different types are never equal and never ordered. */
    NO("{'n': '5'}", m);
    NO("{'s': 5}", m);
    YES("{'n': {'ne': '5'}}", m);
    NO("{'n': {'gte': '0'}}", m);
    NO("{'s': {'lt': 9}}", m);
    NO("{'s': {'in': [5]}}", m);
    YES("{'s': {'nin': [5]}}", m);
}

static void test_logic(void **state)
{
    const char *m = "{'user_id': 'alice', 'age': 30, 'city': 'Paris'}";
    YES("{'user_id': 'alice', 'age': 30}", m);
    NO("{'user_id': 'alice', 'age': 31}", m);
    YES("{'AND': [{'user_id': 'alice'}, {'age': {'gte': 18}}]}", m);
    NO("{'AND': [{'user_id': 'alice'}, {'age': {'lt': 18}}]}", m);
    YES("{'OR': [{'user_id': 'bob'}, {'city': 'Paris'}]}", m);
    NO("{'OR': [{'user_id': 'bob'}, {'city': 'Rome'}]}", m);
    YES("{'NOT': [{'city': 'Rome'}, {'age': 1}]}", m);
    NO("{'NOT': [{'city': 'Rome'}, {'age': 30}]}", m);
    YES("{'NOT': {'city': 'Rome'}}", m);
    NO("{'NOT': {'city': 'Paris', 'age': 30}}", m);
    YES("{'NOT': {'city': 'Paris', 'age': 31}}", m);
    NO("{'NOT': {}}", m);
    YES("{'OR': [{'AND': [{'age': {'gt': 40}}, {'city': 'Paris'}]},"
        " {'AND': [{'NOT': {'city': 'Rome'}}, {'user_id': {'in': ['alice', 'carol']}}]}]}",
        m);
    NO("{'user_id': 'alice', 'OR': [{'age': 1}, {'age': 2}]}", m);
    YES("{'AND': [{}], 'OR': [{}, {'age': 1}]}", m);
    YES("{'NOT': {'NOT': {'age': 30}}}", m);
}

static void test_wildcard_and_metadata(void **state)
{
    const char *m = "{'agent_id': 'a1', 'run_id': null, 'k': 'v', 'topic': 'Cooking', '*': 1,"
                    " 'star': '*'}";
    YES("{'agent_id': '*'}", m);
    NO("{'run_id': '*'}", m);
    NO("{'app_id': '*'}", m);
    YES("{'*': '*'}", m);
    /* Only the bare "*" is a wildcard. */
    NO("{'agent_id': {'eq': '*'}}", m);
    YES("{'star': {'eq': '*'}}", m);
    YES("{'agent_id': {'in': ['*', 'a1']}}", m);
    /* The platform's metadata wrapper reads the inner keys. */
    YES("{'metadata': {'k': 'v'}}", m);
    NO("{'metadata': {'k': 'w'}}", m);
    YES("{'metadata': {'k': {'ne': 'w'}, 'topic': {'icontains': 'cook'}}}", m);
    NO("{'metadata': {'topic': {'contains': 'cook'}}}", m);
    YES("{'agent_id': 'a1', 'metadata': {'OR': [{'k': 'x'}, {'topic': 'Cooking'}]}}", m);
    YES("{'AND': [{'metadata': {'k': 'v'}}, {'NOT': {'metadata': {'k': 'z'}}}]}", m);
    /* Inside the wrapper "metadata" is a plain key. */
    YES("{'metadata': {'metadata': {'in': [1, 2]}}}", "{'metadata': 2}");
    YES("{'metadata': {}}", m);
}

static void test_match_all(void **state)
{
    YES("{}", "{}");
    YES("{}", "{'a': 1}");
    YES("  { }  ", "{'a': 1}");
    /* No filter restricts nothing. */
    assert_true(mf_match(NULL, lookup, NULL));
    /* An empty filter never looks anything up. */
    mf_filter *f = compile_ok("{}");
    n_lookups = 0;
    assert_true(mf_match(f, lookup, NULL));
    assert_int_equal(n_lookups, 0);
    const char *const *names;
    size_t n = 99;
    mf_fields(f, &names, &n);
    assert_int_equal(n, 0);
    mf_free(f);
    mf_free(NULL);
    mf_fields(NULL, &names, &n);
    assert_int_equal(n, 0);
    /* len counts: the text after len bytes is ignored. */
    f = NULL;
    assert_int_equal(mf_compile("{}garbage", 2, &f), DM_OK);
    assert_true(mf_match(f, lookup, NULL));
    mf_free(f);
}

static void test_errors(void **state)
{
    compile_err("{'AND': [{'a': 1}, {'age': {'gtx': 3}}]}",
                "filter: $.AND[1].age: unknown operator \"gtx\"");
    compile_err("{'OR': []}", "filter: $.OR: must be a non-empty array of objects");
    compile_err("{'OR': {'a': 1}}", "$.OR: must be a non-empty array");
    compile_err("{'AND': [{'a': 1}, 3]}", "$.AND[1]: each element of AND must be an object");
    compile_err("{'NOT': []}", "$.NOT: must be an object or a non-empty array");
    compile_err("{'NOT': 'x'}", "$.NOT: must be an object or a non-empty array");
    compile_err("{'tags': {'in': 'a'}}", "$.tags.in: must be an array");
    compile_err("{'tags': {'nin': {}}}", "$.tags.nin: must be an array");
    compile_err("{'OR': [{'x': 1}, {'metadata': {'age': {}}}]}",
                "$.OR[1].metadata.age: an operator object needs at least one");
    compile_err("{'x': {'gt': true}}", "$.x.gt: must be a number or a string");
    compile_err("{'x': {'lte': [1]}}", "$.x.lte: must be a number or a string");
    compile_err("{'x': {'icontains': 1}}", "$.x.icontains: must be a string");
    compile_err("{'metadata': 'v'}", "$.metadata: must be an object");
    compile_err("{'x': {'EQ': 1}}", "$.x: unknown operator \"EQ\"");
    compile_err("{'x': {'city': 'Paris'}}", "$.x: unknown operator \"city\"");
    compile_err("{'': 1}", "filter: $.\"\": a field name must not be empty");
    compile_err("{'NOT': {'and': {'eq': 1, 'like': 2}}}", "$.NOT.and: unknown operator \"like\"");
    compile_err("[{'a': 1}]", "filter: $: a filter must be a JSON object");
    compile_err("'a'", "$: a filter must be a JSON object");
    compile_err("{'a': }", "filter: not valid JSON: ");
    compile_err("{'a': 1", "not valid JSON");
    compile_err("", "not valid JSON");
    compile_err("{'a': 1, 'b': 2, 'a': 3}", "duplicate");
    compile_err("{'AND': [{'a': 1, 'a': 1}]}", "duplicate");
    /* Control bytes in a key become '?'; long keys are shortened. */
    compile_err("{'a\\nb': {'bad': 1}}", "$.a?b: unknown operator \"bad\"");
    char big[400];
    memset(big, 0, sizeof big);
    strcpy(big, "{'");
    memset(big + 2, 'k', 200);
    strcat(big, "': {'zz': 1}}");
    compile_err(big, "kkkk...: unknown operator \"zz\"");
    /* Bad arguments. */
    mf_filter *f = NULL;
    assert_int_equal(mf_compile(NULL, 0, &f), DM_EINVAL);
    assert_null(f);
    assert_int_equal(mf_compile("{}", 0, NULL), DM_EINVAL);
}

/* nested -- k levels of AND around {'x': 1}. */
static char *nested(int k, const char *open, const char *close)
{
    size_t cap = (size_t)k * (strlen(open) + strlen(close)) + 64;
    char *s = malloc(cap);
    assert_non_null(s);
    s[0] = '\0';
    for (int i = 0; i < k; i++)
        strcat(s, open);
    strcat(s, "{\"x\": 1}");
    for (int i = 0; i < k; i++)
        strcat(s, close);
    return s;
}

static void test_depth_limit(void **state)
{
    json_t *m = json_pack("{s:i}", "x", 1);
    /* $ is level 1, so 31 wrappers put {"x": 1} at level 32. */
    char *s = nested(31, "{\"AND\": [", "]}");
    mf_filter *f = NULL;
    assert_int_equal(mf_compile(s, 0, &f), DM_OK);
    assert_true(mf_match(f, lookup, m));
    mf_free(f);
    free(s);

    s = nested(32, "{\"AND\": [", "]}");
    assert_int_equal(mf_compile(s, 0, &f), DM_EINVAL);
    assert_null(f);
    assert_non_null(strstr(err_last_msg(), "filter nesting is deeper than 32 levels"));
    assert_non_null(strstr(err_last_msg(), ".AND[0]: filter"));
    free(s);

    /* Far deeper hostile nesting fails just as cleanly, with the message
     * keeping the end of the path. */
    s = nested(1500, "{\"NOT\": ", "}");
    assert_int_equal(mf_compile(s, 0, &f), DM_EINVAL);
    assert_non_null(strstr(err_last_msg(), "deeper than 32"));
    assert_non_null(strstr(err_last_msg(), "filter: $....NOT"));
    free(s);

    /* The metadata wrapper is a level too. */
    char *inner = nested(30, "{\"AND\": [", "]}");
    s = malloc(strlen(inner) + 32);
    assert_non_null(s);
    sprintf(s, "{\"metadata\": %s}", inner);
    assert_int_equal(mf_compile(s, 0, &f), DM_OK);
    assert_true(mf_match(f, lookup, m));
    mf_free(f);
    free(s);
    free(inner);
    inner = nested(31, "{\"AND\": [", "]}");
    s = malloc(strlen(inner) + 32);
    assert_non_null(s);
    sprintf(s, "{\"metadata\": %s}", inner);
    assert_int_equal(mf_compile(s, 0, &f), DM_EINVAL);
    assert_non_null(strstr(err_last_msg(), "deeper than 32"));
    free(s);
    free(inner);
    json_decref(m);
}

static void test_fields(void **state)
{
    mf_filter *f = compile_ok("{'b': 1, 'AND': [{'a': {'gt': 1}}, {'b': 2}],"
                              " 'metadata': {'c': 1, 'a': 2, 'OR': [{'e': 1}]},"
                              " 'NOT': {'d': '*'}, 'and': 3}");
    const char *const *names;
    size_t n;
    mf_fields(f, &names, &n);
    assert_int_equal(n, 6);
    assert_string_equal(names[0], "b");
    assert_string_equal(names[1], "a");
    assert_string_equal(names[2], "c");
    assert_string_equal(names[3], "e");
    assert_string_equal(names[4], "d");
    assert_string_equal(names[5], "and");
    /* The lookup runs once per condition; all six conditions of the
     * first AND level hold here, so every one is reached. */
    json_t *m = json_loads(q("{'b': 1, 'a': 2, 'c': 1, 'e': 1, 'and': 3}"), 0, NULL);
    assert_non_null(m);
    n_lookups = 0;
    assert_false(mf_match(f, lookup, m)); /* {'b': 2} fails */
    assert_true(n_lookups >= 2);
    json_decref(m);
    mf_free(f);

    /* Many distinct names (the dedup set grows) keep first-use order. */
    char *s = malloc(200000);
    assert_non_null(s);
    strcpy(s, "{\"OR\": [");
    for (int i = 0; i < 3000; i++) {
        char one[64];
        snprintf(one, sizeof one, "%s{\"f%d\": 1}", i ? ", " : "", (i * 7) % 1000);
        strcat(s, one);
    }
    strcat(s, "]}");
    assert_int_equal(mf_compile(s, 0, &f), DM_OK);
    mf_fields(f, &names, &n);
    assert_int_equal(n, 1000);
    for (int i = 0; i < 1000; i++) {
        char want[16];
        snprintf(want, sizeof want, "f%d", (i * 7) % 1000);
        assert_string_equal(names[i], want);
    }
    m = json_pack("{s:i}", "f993", 1);
    assert_true(mf_match(f, lookup, m));
    json_decref(m);
    mf_free(f);
    free(s);
}

static void test_out_of_memory(void **state)
{
    const char *text = q("{'AND': [{'a': {'in': [1, 2, '2023-05-07']}}, {'b': 'x'}],"
                         " 'metadata': {'c': {'gt': 1, 'lt': 5}}, 'NOT': {'d': '*'}}");
    int64_t base = alloc_bytes_in_use();
    int n_oom = 0;
    for (int64_t k = 1; k < 200; k++) {
        mf_filter *f = (mf_filter *)(uintptr_t)1;
        int64_t before = alloc_failures();
        alloc_fail_after(k, 0);
        int rc = mf_compile(text, 0, &f);
        int64_t failed = alloc_failures() - before;
        alloc_fail_after(0, 0);
        if (rc == DM_OK) {
            assert_non_null(f);
            mf_free(f);
            assert_int_equal(alloc_bytes_in_use(), base);
            if (failed == 0)
                break;
            continue;
        }
        assert_int_equal(rc, DM_ENOMEM);
        assert_null(f);
        assert_int_equal(alloc_bytes_in_use(), base);
        n_oom++;
    }
    print_message("compilation failed cleanly at %d allocation points\n", n_oom);
    assert_true(n_oom >= 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_instants),
        cmocka_unit_test(test_booleans_and_null),
        cmocka_unit_test(test_arrays),
        cmocka_unit_test(test_missing_and_mismatch),
        cmocka_unit_test(test_logic),
        cmocka_unit_test(test_wildcard_and_metadata),
        cmocka_unit_test(test_match_all),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
