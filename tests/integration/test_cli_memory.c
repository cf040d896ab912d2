/*
 * test_cli_memory.c -- the deltamemory memory commands, run as a real
 * process against a real database.
 *
 * The binary is $DM_BIN_DIR/tools/cli/deltamemory (CTest sets DM_BIN_DIR).
 * The embedding model is a tiny one the test writes itself with
 * model_build_write (16 dimensions, a few dozen words), selected through
 * $DM_MODEL, so the test needs no downloaded file; without model_build.h
 * every test skips.  Each run has its stdout and stderr captured into files
 * and its exit status checked; JSON output is parsed with jansson.
 *
 * Covered: add/search/get/list/update/delete/erase-user with --json;
 * import with bad lines (each reported with its line number, the good
 * ones stored, exit 0 and the summary), including lines only the engine
 * rejects, inside a batch; export -> import into an empty database ->
 * export is byte-identical, every field kept; errors exit nonzero with
 * exactly one line on stderr and nothing on stdout; --help on every
 * command; the storage commands on a memory database.
 */
// ctest-timeout: 600
#include "testutil.h"

#include <fcntl.h>
#include <jansson.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/alloc.h"
#include "deltamemory.h"

#if __has_include("embed/model_build.h")
#include "embed/model_build.h"
#define HAVE_MODEL_BUILD 1
#else
#define HAVE_MODEL_BUILD 0
#endif

extern char **environ;

#define MODEL_DIM 16

static char bin[2048];
static char scratch[1024];
static int is_ready;

typedef struct run_result {
    int status;     /* exit code, or -1 if killed by a signal */
    char *out;      /* captured stdout (dm_malloc, NUL-terminated) */
    size_t out_len;
    char *err;      /* captured stderr */
} run_result;

static char *slurp(const char *path, size_t *len_out)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    long len = ftell(fp);
    assert_true(len >= 0);
    rewind(fp);
    char *s = dm_malloc((size_t)len + 1);
    assert_non_null(s);
    assert_int_equal(fread(s, 1, (size_t)len, fp), (size_t)len);
    s[len] = 0;
    fclose(fp);
    if (len_out)
        *len_out = (size_t)len;
    return s;
}

static void spit(const char *path, const char *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

/* Runs the CLI with the NULL-terminated argument list. */
static run_result runv(const char *const *args)
{
    char out_path[2048], err_path[2048];
    snprintf(out_path, sizeof out_path, "%s/stdout", scratch);
    snprintf(err_path, sizeof err_path, "%s/stderr", scratch);
    const char *argv[64];
    size_t n = 0;
    argv[n++] = bin;
    for (size_t i = 0; args[i]; i++) {
        assert_true(n < 63);
        argv[n++] = args[i];
    }
    argv[n] = NULL;

    posix_spawn_file_actions_t fa;
    assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
    assert_int_equal(posix_spawn_file_actions_addopen(
                         &fa, 0, "/dev/null", O_RDONLY, 0), 0);
    assert_int_equal(posix_spawn_file_actions_addopen(
                         &fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644),
                     0);
    assert_int_equal(posix_spawn_file_actions_addopen(
                         &fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644),
                     0);
    pid_t pid;
    int rc = posix_spawn(&pid, bin, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        fail_msg("cannot run %s: %s", bin, strerror(rc));
    int wst = 0;
    assert_int_equal(waitpid(pid, &wst, 0), pid);

    run_result r;
    r.status = WIFEXITED(wst) ? WEXITSTATUS(wst) : -1;
    r.out = slurp(out_path, &r.out_len);
    r.err = slurp(err_path, NULL);
    return r;
}

#define RUN(...) runv((const char *const[]){ __VA_ARGS__, NULL })

static void run_free(run_result *r)
{
    dm_free(r->out);
    dm_free(r->err);
    r->out = r->err = NULL;
}

/* Exit 0, nothing on stderr. */
static void expect_ok(const run_result *r)
{
    if (r->status != 0 || r->err[0])
        fail_msg("expected success; got exit %d\n--- stdout:\n%s--- "
                 "stderr:\n%s", r->status, r->out, r->err);
}

/* Nonzero exit, nothing on stdout, exactly one line on stderr that
 * contains `in_err` (when given). */
static void expect_error(const run_result *r, int status, const char *in_err)
{
    size_t n = strlen(r->err);
    const char *nl = strchr(r->err, '\n');
    if (r->status == 0 || (status && r->status != status) || r->out[0] ||
        n == 0 || nl != r->err + n - 1 ||
        (in_err && !strstr(r->err, in_err)))
        fail_msg("expected exit %d with one stderr line containing \"%s\"; "
                 "got exit %d\n--- stdout:\n%s--- stderr:\n%s", status,
                 in_err ? in_err : "", r->status, r->out, r->err);
}

static json_t *parse_json(const run_result *r)
{
    json_error_t e;
    json_t *v = json_loads(r->out, 0, &e);
    if (!v)
        fail_msg("stdout is not one JSON document (%s at %d):\n%s", e.text,
                 e.position, r->out);
    return v;
}

static const char *jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        fail_msg("member \"%s\" is not a string", key);
    return json_string_value(v);
}

static void db_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", scratch, name);
}

/* add with --json; returns the id (static storage, one at a time). */
static const char *add_json(const char *db, const char *user, const char *text,
                            const char *time, const char *meta)
{
    static char id[DM_ID_STRLEN + 1];
    run_result r = RUN("--data", db, "--sync", "none", "add", "--user", user,
                       "--text", text, "--time", time, "--meta", meta,
                       "--json");
    expect_ok(&r);
    json_t *o = parse_json(&r);
    assert_true(json_is_object(o));
    assert_int_equal(json_object_size(o), 1);
    const char *s = jstr(o, "id");
    assert_int_equal(strlen(s), DM_ID_STRLEN);
    dm_id parsed;
    assert_int_equal(dm_id_parse(s, &parsed), DM_OK);
    snprintf(id, sizeof id, "%s", s);
    json_decref(o);
    run_free(&r);
    return id;
}

/* ------------------------------------------------------------- set up */

#if HAVE_MODEL_BUILD
static void make_model(const char *path)
{
    static const char *const words[] = {
        "the", "i", "a", "to", "and", "my", "in", "is", "of", "on",
        "love", "hiking", "mountains", "favourite", "food", "sushi",
        "work", "as", "software", "engineer", "dog", "named", "rex",
        "coffee", "morning", "visited", "paris", "last", "summer",
        "play", "guitar", "weekends", "sister", "lives", "berlin",
        "memory", "number", "about", "first", "walk", "tea", "blue",
        "city", "music", "book", "read", "garden", "river",
    };
    const uint32_t n = sizeof words / sizeof words[0];
    float *vec = dm_malloc((size_t)n * MODEL_DIM * sizeof(float));
    assert_non_null(vec);
    tu_rng r;
    tu_rng_seed(&r, 1234);
    for (size_t i = 0; i < (size_t)n * MODEL_DIM; i++)
        vec[i] = (float)((double)tu_randn(&r, 2001) - 1000.0) / 1000.0f;
    model_build_input in;
    memset(&in, 0, sizeof in);
    in.name = "cli-test-16d";
    in.dim = MODEL_DIM;
    in.n_words = n;
    in.words = words;
    in.vectors = vec;
    int rc = model_build_write(&in, path);
    if (rc != DM_OK)
        fail_msg("model_build_write: %s: %s", dm_errname(rc), dm_errmsg());
    dm_free(vec);
}
#endif

static int setup(void **state)
{
    (void)state;
    const char *d = getenv("DM_BIN_DIR");
    if (!d || !*d) {
        print_error("DM_BIN_DIR is not set (run through ctest)\n");
        return -1;
    }
    snprintf(bin, sizeof bin, "%s/tools/cli/deltamemory", d);
    if (access(bin, X_OK) != 0) {
        print_error("%s: not built\n", bin);
        return -1;
    }
    snprintf(scratch, sizeof scratch, "%s", tu_tmpdir("cli_memory"));
#if HAVE_MODEL_BUILD
    static char model_path[2048];
    snprintf(model_path, sizeof model_path, "%s/tiny.dmm", scratch);
    make_model(model_path);
    setenv("DM_MODEL", model_path, 1);
    is_ready = 1;
#endif
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_rmrf(scratch);
    return 0;
}

#define REQUIRE_MODEL()                                                        \
    do {                                                                       \
        if (!is_ready)                                                         \
            skip();                                                            \
    } while (0)

/* ---------------------------------------------------------------- tests */

static void test_add_search_get_list_delete(void **state)
{
    (void)state;
    REQUIRE_MODEL();
    char db[2048];
    db_path(db, sizeof db, "crud");
    char hike[DM_ID_STRLEN + 1], sushi[DM_ID_STRLEN + 1],
        work[DM_ID_STRLEN + 1];
    snprintf(hike, sizeof hike, "%s",
             add_json(db, "alice", "I love hiking in the mountains",
                      "2023-05-08T13:56:00Z", "{\"topic\":\"outdoors\"}"));
    snprintf(sushi, sizeof sushi, "%s",
             add_json(db, "alice", "My favourite food is sushi",
                      "2023-06-01T09:00:00Z", "{\"topic\":\"food\",\"n\":3}"));
    snprintf(work, sizeof work, "%s",
             add_json(db, "alice", "I work as a software engineer",
                      "2023-07-15T18:30:00.250000Z", "{}"));

    /* Without --json, add prints the id and a newline. */
    run_result r = RUN("--data", db, "--sync", "none", "add", "--user", "bob",
                       "--text", "I love hiking with my dog Rex");
    expect_ok(&r);
    assert_int_equal(r.out_len, DM_ID_STRLEN + 1);
    assert_int_equal(r.out[DM_ID_STRLEN], '\n');
    char bob_id[DM_ID_STRLEN + 1];
    memcpy(bob_id, r.out, DM_ID_STRLEN);
    bob_id[DM_ID_STRLEN] = 0;
    run_free(&r);

    /* search --json: best first, with the documented fields. */
    r = RUN("--data", db, "search", "--user", "alice", "--query",
            "hiking in the mountains", "-k", "2", "--json");
    expect_ok(&r);
    json_t *doc = parse_json(&r);
    json_t *res = json_object_get(doc, "results");
    assert_true(json_is_array(res));
    assert_true(json_array_size(res) >= 1 && json_array_size(res) <= 2);
    json_t *top = json_array_get(res, 0);
    assert_string_equal(jstr(top, "id"), hike);
    assert_string_equal(jstr(top, "text"), "I love hiking in the mountains");
    assert_string_equal(jstr(top, "time"), "2023-05-08T13:56:00Z");
    assert_string_equal(jstr(top, "user_id"), "alice");
    assert_true(json_is_number(json_object_get(top, "score")));
    json_t *meta = json_object_get(top, "metadata");
    assert_true(json_is_object(meta));
    assert_string_equal(jstr(meta, "topic"), "outdoors");
    double prev = json_number_value(json_object_get(top, "score"));
    for (size_t i = 1; i < json_array_size(res); i++) {
        double sc = json_number_value(
            json_object_get(json_array_get(res, i), "score"));
        assert_true(sc <= prev);
        prev = sc;
    }
    json_decref(doc);
    run_free(&r);

    /* Text output: one line per hit, the best one first. */
    r = RUN("--data", db, "search", "--user", "alice", "--query", "sushi");
    expect_ok(&r);
    assert_non_null(strstr(r.out, sushi));
    assert_non_null(strstr(r.out, "My favourite food is sushi\n"));
    assert_true(strstr(r.out, sushi) < strchr(r.out, '\n'));
    run_free(&r);

    /* Users never see each other's memories. */
    r = RUN("--data", db, "search", "--user", "bob", "--query", "hiking",
            "--json");
    expect_ok(&r);
    doc = parse_json(&r);
    res = json_object_get(doc, "results");
    assert_int_equal(json_array_size(res), 1);
    assert_string_equal(jstr(json_array_get(res, 0), "id"), bob_id);
    json_decref(doc);
    run_free(&r);

    /* An unknown user has no results (not an error). */
    r = RUN("--data", db, "search", "--user", "nobody", "--query", "hiking",
            "--json");
    expect_ok(&r);
    doc = parse_json(&r);
    assert_int_equal(json_array_size(json_object_get(doc, "results")), 0);
    json_decref(doc);
    run_free(&r);

    /* get --json: the whole memory. */
    r = RUN("--data", db, "get", "--id", sushi, "--user", "alice", "--json");
    expect_ok(&r);
    doc = parse_json(&r);
    assert_string_equal(jstr(doc, "id"), sushi);
    assert_string_equal(jstr(doc, "text"), "My favourite food is sushi");
    assert_string_equal(jstr(doc, "tenant"), DM_DEFAULT_TENANT);
    assert_string_equal(jstr(doc, "time"), "2023-06-01T09:00:00Z");
    assert_string_equal(jstr(doc, "kind"), "episodic");
    assert_string_equal(jstr(doc, "state"), "active");
    meta = json_object_get(doc, "metadata");
    assert_int_equal(json_integer_value(json_object_get(meta, "n")), 3);
    assert_null(json_object_get(doc, "embedding"));
    json_decref(doc);
    run_free(&r);

    r = RUN("--data", db, "get", "--id", work, "--embedding", "--json");
    expect_ok(&r);
    doc = parse_json(&r);
    assert_string_equal(jstr(doc, "time"), "2023-07-15T18:30:00.250000Z");
    assert_int_equal(json_array_size(json_object_get(doc, "embedding")),
                     MODEL_DIM);
    json_decref(doc);
    run_free(&r);

    /* Another user's id is not found. */
    r = RUN("--data", db, "get", "--id", sushi, "--user", "bob");
    expect_error(&r, 1, "DM_ENOTFOUND");
    run_free(&r);

    /* list: newest first, paged with the cursor. */
    r = RUN("--data", db, "list", "--user", "alice", "--json");
    expect_ok(&r);
    doc = parse_json(&r);
    json_t *items = json_object_get(doc, "items");
    assert_int_equal(json_array_size(items), 3);
    assert_string_equal(jstr(json_array_get(items, 0), "id"), work);
    assert_string_equal(jstr(json_array_get(items, 1), "id"), sushi);
    assert_string_equal(jstr(json_array_get(items, 2), "id"), hike);
    assert_true(json_is_null(json_object_get(doc, "next_cursor")));
    json_decref(doc);
    run_free(&r);

    r = RUN("--data", db, "list", "--user", "alice", "--limit", "2",
            "--json");
    expect_ok(&r);
    doc = parse_json(&r);
    assert_int_equal(json_array_size(json_object_get(doc, "items")), 2);
    char cursor[1024];
    snprintf(cursor, sizeof cursor, "%s", jstr(doc, "next_cursor"));
    json_decref(doc);
    run_free(&r);
    r = RUN("--data", db, "list", "--user", "alice", "--limit", "2",
            "--cursor", cursor, "--json");
    expect_ok(&r);
    doc = parse_json(&r);
    items = json_object_get(doc, "items");
    assert_int_equal(json_array_size(items), 1);
    assert_string_equal(jstr(json_array_get(items, 0), "id"), hike);
    assert_true(json_is_null(json_object_get(doc, "next_cursor")));
    json_decref(doc);
    run_free(&r);

    /* The time window. */
    r = RUN("--data", db, "list", "--user", "alice", "--from", "2023-06-01",
            "--to", "2023-07-01", "--json");
    expect_ok(&r);
    doc = parse_json(&r);
    items = json_object_get(doc, "items");
    assert_int_equal(json_array_size(items), 1);
    assert_string_equal(jstr(json_array_get(items, 0), "id"), sushi);
    json_decref(doc);
    run_free(&r);

    /* update the text and the metadata. */
    r = RUN("--data", db, "--sync", "none", "update", "--id", sushi, "--text",
            "My favourite food is ramen", "--meta", "{\"topic\":\"noodles\"}",
            "--json");
    expect_ok(&r);
    doc = parse_json(&r);
    assert_string_equal(jstr(doc, "id"), sushi);
    assert_true(json_is_true(json_object_get(doc, "updated")));
    json_decref(doc);
    run_free(&r);
    r = RUN("--data", db, "get", "--id", sushi, "--json");
    expect_ok(&r);
    doc = parse_json(&r);
    assert_string_equal(jstr(doc, "text"), "My favourite food is ramen");
    assert_string_equal(jstr(json_object_get(doc, "metadata"), "topic"),
                        "noodles");
    json_decref(doc);
    run_free(&r);

    /* delete: only the owner's id; then it is gone. */
    r = RUN("--data", db, "--sync", "none", "delete", "--user", "bob", "--id",
            hike);
    expect_error(&r, 1, "DM_ENOTFOUND");
    run_free(&r);
    r = RUN("--data", db, "--sync", "none", "delete", "--user", "alice",
            "--id", hike, "--json");
    expect_ok(&r);
    doc = parse_json(&r);
    assert_true(json_is_true(json_object_get(doc, "deleted")));
    json_decref(doc);
    run_free(&r);
    r = RUN("--data", db, "get", "--id", hike);
    expect_error(&r, 1, "DM_ENOTFOUND");
    run_free(&r);

    /* erase-user removes the rest of alice and nothing of bob. */
    r = RUN("--data", db, "--sync", "none", "erase-user", "--user", "alice",
            "--json");
    expect_ok(&r);
    doc = parse_json(&r);
    assert_int_equal(json_integer_value(json_object_get(doc, "erased")), 2);
    assert_string_equal(jstr(doc, "user_id"), "alice");
    json_decref(doc);
    run_free(&r);
    r = RUN("--data", db, "list", "--user", "alice", "--json");
    expect_ok(&r);
    doc = parse_json(&r);
    assert_int_equal(json_array_size(json_object_get(doc, "items")), 0);
    json_decref(doc);
    run_free(&r);
    r = RUN("--data", db, "get", "--id", bob_id, "--user", "bob");
    expect_ok(&r);
    assert_non_null(strstr(r.out, "I love hiking with my dog Rex"));
    run_free(&r);

    /* The storage commands work on a memory database. */
    r = RUN("check", db);
    expect_ok(&r);
    assert_non_null(strstr(r.out, ": clean\n"));
    run_free(&r);
    r = RUN("--data", db, "stats", "--json");
    expect_ok(&r);
    doc = parse_json(&r);
    json_t *mem = json_object_get(doc, "memory");
    assert_true(json_is_object(mem));
    assert_int_equal(json_integer_value(json_object_get(mem, "memories")), 1);
    assert_int_equal(json_integer_value(json_object_get(mem, "dim")),
                     MODEL_DIM);
    assert_true(json_is_object(json_object_get(doc, "storage")));
    json_decref(doc);
    run_free(&r);
}

/* Appends one line (and its newline) to a growing text. */
static void add_line(char **buf, size_t *len, size_t *cap, const char *line)
{
    size_t n = strlen(line);
    while (*len + n + 2 > *cap) {
        *cap = *cap ? *cap * 2 : 4096;
        *buf = dm_realloc(*buf, *cap);
        assert_non_null(*buf);
    }
    memcpy(*buf + *len, line, n);
    (*buf)[*len + n] = '\n';
    *len += n + 1;
    (*buf)[*len] = 0;
}

/* {"user_id": user, "text": text} with jansson, so any text is safe. */
static char *line_json(const char *user, const char *text, const char *extra_key,
                       json_t *extra)
{
    json_t *o = json_pack("{s:s, s:s}", "user_id", user, "text", text);
    assert_non_null(o);
    if (extra_key)
        assert_int_equal(json_object_set_new(o, extra_key, extra), 0);
    char *s = json_dumps(o, JSON_COMPACT);
    assert_non_null(s);
    json_decref(o);
    return s;
}

static void test_import_bad_lines(void **state)
{
    (void)state;
    REQUIRE_MODEL();
    char db[2048], file[2048];
    db_path(db, sizeof db, "import");
    db_path(file, sizeof file, "import.jsonl");

    char *buf = NULL, *s;
    size_t len = 0, cap = 0;
    char text[128];
    /* Lines 1-9: the parser's cases. */
    add_line(&buf, &len, &cap,
             "{\"user_id\":\"imp\",\"text\":\"first memory about hiking\","
             "\"time\":\"2023-05-08T13:56:00Z\"}");
    add_line(&buf, &len, &cap, "{\"user_id\": \"imp\", \"text\": ");
    add_line(&buf, &len, &cap, "{\"user_id\":\"imp\"}");
    add_line(&buf, &len, &cap, "   ");
    add_line(&buf, &len, &cap,
             "{\"user_id\":\"imp\",\"text\":\"sushi is my favourite food\","
             "\"metadata\":{\"topic\":\"food\",\"n\":3}}\r");
    add_line(&buf, &len, &cap,
             "{\"user_id\":\"imp\",\"text\":\"x\",\"metadata\":[1,2]}");
    add_line(&buf, &len, &cap,
             "{\"user_id\":\"imp\",\"text\":\"x\",\"time\":\"yesterday\"}");
    add_line(&buf, &len, &cap, "[1,2,3]");
    /* A long line, well past any fixed buffer. */
    size_t long_len = 20000;
    char *long_text = dm_malloc(long_len + 1);
    assert_non_null(long_text);
    for (size_t i = 0; i < long_len; i++)
        long_text[i] = "walk by the river "[i % 18];
    long_text[long_len] = 0;
    s = line_json("imp", long_text, NULL, NULL);
    add_line(&buf, &len, &cap, s);
    free(s);
    dm_free(long_text);
    /* Lines 10-309: enough for more than one batch, with three lines only
     * the engine rejects (a 300-byte user id, salience 2, a 40000-byte
     * text), so a batch has to fall back to line-by-line, and a line the
     * parser refuses after them in the same batch (reported in order). */
    char long_user[301];
    memset(long_user, 'u', 300);
    long_user[300] = 0;
    char *huge = dm_malloc(40001);
    assert_non_null(huge);
    memset(huge, 'a', 40000);
    huge[40000] = 0;
    for (int line = 10; line < 310; line++) {
        snprintf(text, sizeof text, "memory number %d about coffee", line);
        if (line == 100)
            s = line_json(long_user, text, NULL, NULL);
        else if (line == 200)
            s = line_json("imp", text, "salience", json_real(2.0));
        else if (line == 250)
            s = line_json("imp", huge, NULL, NULL);
        else if (line == 260)
            s = strdup("{\"user_id\":\"imp\",\"text\":\"unterminated}");
        else
            s = line_json("imp", text, "time",
                          json_string("2024-01-01T00:00:00Z"));
        add_line(&buf, &len, &cap, s);
        free(s);
    }
    dm_free(huge);
    spit(file, buf, len);
    dm_free(buf);

    run_result r = RUN("--data", db, "--sync", "none", "import", file);
    if (r.status != 0)
        fail_msg("import failed: exit %d\n%s", r.status, r.err);
    assert_non_null(strstr(r.out, "imported 299, skipped 9 in "));
    assert_non_null(strstr(r.out, "/s)\n"));
    /* Exactly the bad lines, in order, one line each. */
    static const int bad[] = { 2, 3, 6, 7, 8, 100, 200, 250, 260 };
    const char *p = r.err;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char want[32];
        snprintf(want, sizeof want, "line %d: ", bad[i]);
        if (strncmp(p, want, strlen(want)) != 0)
            fail_msg("expected \"%s\" at:\n%s", want, p);
        p = strchr(p, '\n');
        assert_non_null(p);
        p++;
    }
    assert_string_equal(p, "");
    assert_non_null(strstr(r.err, "line 250: DM_ETOOBIG"));
    assert_non_null(strstr(r.err, "line 100: DM_EINVAL"));
    run_free(&r);

    /* The good lines are there, fields intact. */
    r = RUN("--data", db, "list", "--user", "imp", "--limit", "10000",
            "--json");
    expect_ok(&r);
    json_t *doc = parse_json(&r);
    json_t *items = json_object_get(doc, "items");
    assert_int_equal(json_array_size(items), 299);
    int found_meta = 0, found_long = 0;
    for (size_t i = 0; i < json_array_size(items); i++) {
        json_t *it = json_array_get(items, i);
        const char *t = jstr(it, "text");
        if (!strcmp(t, "sushi is my favourite food")) {
            json_t *m = json_object_get(it, "metadata");
            assert_string_equal(jstr(m, "topic"), "food");
            found_meta++;
        }
        if (strlen(t) == long_len)
            found_long++;
        assert_null(strstr(t, "number 100 "));
        assert_null(strstr(t, "number 200 "));
    }
    assert_int_equal(found_meta, 1);
    assert_int_equal(found_long, 1);
    json_decref(doc);
    run_free(&r);

    /* --json summary; a second import of a clean file, small batches. */
    static const char small[] =
        "{\"user_id\":\"imp2\",\"text\":\"tea in the garden\"}\n"
        "{\"user_id\":\"imp2\",\"text\":\"a blue book\"}\n"
        "{\"user_id\":\"imp2\",\"text\":\"\"}\n";
    spit(file, small, strlen(small));
    r = RUN("--data", db, "--sync", "none", "import", "--batch", "1", file,
            "--json");
    assert_int_equal(r.status, 0);
    doc = parse_json(&r);
    assert_int_equal(json_integer_value(json_object_get(doc, "imported")), 2);
    assert_int_equal(json_integer_value(json_object_get(doc, "skipped")), 1);
    json_decref(doc);
    assert_non_null(strstr(r.err, "line 3: "));
    run_free(&r);
}

static void test_export_import_roundtrip(void **state)
{
    (void)state;
    REQUIRE_MODEL();
    char a[2048], b[2048], file[2048], file2[2048];
    db_path(a, sizeof a, "export_a");
    db_path(b, sizeof b, "export_b");
    db_path(file, sizeof file, "export1.jsonl");
    db_path(file2, sizeof file2, "export2.jsonl");

    add_json(a, "carol", "I visited Paris last summer", "2022-08-01T10:00:00Z",
             "{\"trip\":{\"city\":\"paris\",\"days\":[1,2,3]},\"ok\":true,"
             "\"pi\":3.141592653589793,\"none\":null}");
    add_json(a, "carol", "Caf\xc3\xa9 au lait every morning \xe2\x98\x95",
             "2022-09-01T07:30:00.123456Z", "{\"x\":0.1}");
    add_json(a, "dave", "My sister lives in Berlin", "2021-01-01", "{}");
    run_result r = RUN("--data", a, "--sync", "none", "add", "--tenant",
                       "acme", "--user", "carol", "--text",
                       "I play guitar on weekends", "--agent", "agent-7",
                       "--session", "s1", "--role", "assistant", "--kind",
                       "fact", "--salience", "0.75");
    expect_ok(&r);
    run_free(&r);
    /* Every import field at once: kept as given. */
    char line[1024];
    snprintf(line, sizeof line,
             "{\"id\":\"01890a5d-ac96-774b-bcce-b302099a8057\","
             "\"tenant\":\"acme\",\"user_id\":\"erin\",\"agent_id\":null,"
             "\"session_id\":\"s9\",\"role\":\"user\",\"text\":\"a walk by "
             "the river\",\"time\":\"2020-02-29T23:59:59.999999Z\","
             "\"record_time\":\"2020-03-01T00:00:01Z\",\"salience\":0.3,"
             "\"decay_rate\":0.05,\"access_count\":7,\"last_access\":"
             "\"2020-04-01T12:00:00Z\",\"kind\":\"summary\",\"state\":"
             "\"archived\",\"metadata\":{\"k\":\"v\"}}\n");
    spit(file, line, strlen(line));
    r = RUN("--data", a, "--sync", "none", "import", file);
    expect_ok(&r);
    assert_non_null(strstr(r.out, "imported 1, skipped 0"));
    run_free(&r);

    r = RUN("--data", a, "export");
    expect_ok(&r);
    char *first = r.out;
    size_t first_len = r.out_len;
    r.out = NULL;
    run_free(&r);
    /* Five lines, each with every field. */
    static const char *const fields[] = {
        "id", "tenant", "user_id", "agent_id", "session_id", "role", "text",
        "time", "record_time", "salience", "decay_rate", "access_count",
        "last_access", "kind", "state", "metadata", "embedding",
    };
    int n_lines = 0, seen_erin = 0;
    for (char *p = first; *p;) {
        char *nl = strchr(p, '\n');
        assert_non_null(nl);
        json_error_t e;
        json_t *o = json_loadb(p, (size_t)(nl - p), 0, &e);
        if (!o)
            fail_msg("export line %d is not JSON: %s", n_lines + 1, e.text);
        for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
            if (!json_object_get(o, fields[i]))
                fail_msg("export line %d lacks \"%s\"", n_lines + 1,
                         fields[i]);
        assert_int_equal(json_array_size(json_object_get(o, "embedding")),
                         MODEL_DIM);
        if (!strcmp(jstr(o, "user_id"), "erin")) {
            seen_erin++;
            assert_string_equal(jstr(o, "id"),
                                "01890a5d-ac96-774b-bcce-b302099a8057");
            assert_string_equal(jstr(o, "record_time"), "2020-03-01T00:00:01Z");
            assert_string_equal(jstr(o, "last_access"), "2020-04-01T12:00:00Z");
            assert_string_equal(jstr(o, "state"), "archived");
            assert_string_equal(jstr(o, "kind"), "summary");
            assert_int_equal(json_integer_value(json_object_get(o,
                                                                "access_count")),
                             7);
            assert_true(json_is_null(json_object_get(o, "agent_id")));
        }
        json_decref(o);
        n_lines++;
        p = nl + 1;
    }
    assert_int_equal(n_lines, 5);
    assert_int_equal(seen_erin, 1);
    /* The float fields print in their shortest exact form. */
    assert_non_null(strstr(first, "\"salience\":0.3,\"decay_rate\":0.05,"));
    /* A fact added without a rate takes the facts' default: no decay. */
    assert_non_null(strstr(first, "\"salience\":0.75,\"decay_rate\":0.0,"));

    /* Into an empty database, and out again: the same bytes. */
    spit(file, first, first_len);
    r = RUN("--data", b, "--sync", "none", "import", file);
    expect_ok(&r);
    assert_non_null(strstr(r.out, "imported 5, skipped 0"));
    run_free(&r);
    r = RUN("--data", b, "export", "--output", file2);
    expect_ok(&r);
    assert_non_null(strstr(r.out, "exported 5 memories to "));
    run_free(&r);
    size_t second_len = 0;
    char *second = slurp(file2, &second_len);
    if (second_len != first_len || memcmp(first, second, first_len) != 0)
        fail_msg("export after import differs:\n--- first:\n%s--- second:\n%s",
                 first, second);
    dm_free(second);

    /* Importing the same file again: every id is taken. */
    r = RUN("--data", b, "--sync", "none", "import", file);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "imported 0, skipped 5"));
    assert_non_null(strstr(r.err, "DM_EEXISTS"));
    run_free(&r);

    /* export --user: only that user (of the default tenant). */
    r = RUN("--data", b, "export", "--user", "carol");
    expect_ok(&r);
    int n_carol = 0;
    for (char *p = r.out; (p = strstr(p, "\"user_id\":\"carol\"")); p++)
        n_carol++;
    assert_int_equal(n_carol, 2);
    assert_null(strstr(r.out, "\"dave\""));
    assert_null(strstr(r.out, "\"acme\""));
    run_free(&r);
    dm_free(first);
}

static void test_errors_are_one_line(void **state)
{
    (void)state;
    REQUIRE_MODEL();
    char db[2048], missing[2048], nofile[2048];
    db_path(db, sizeof db, "errors");
    db_path(missing, sizeof missing, "no-such-db");
    db_path(nofile, sizeof nofile, "no-such-file.jsonl");
    const char *id = add_json(db, "u", "the first memory", "2024-01-01",
                              "{}");
    char known[DM_ID_STRLEN + 1];
    snprintf(known, sizeof known, "%s", id);
    const char *absent = "01890a5d-ac96-774b-bcce-b302099a8057";

    struct {
        int status;
        const char *in_err;
        const char *args[12];
    } cases[] = {
        { 2, "--user is required", { "--data", db, "add", "--text", "t" } },
        { 2, "--text is required", { "--data", db, "add", "--user", "u" } },
        { 2, "unknown option --bogus",
          { "--data", db, "add", "--user", "u", "--text", "t", "--bogus" } },
        { 2, "needs a value", { "--data", db, "add", "--user" } },
        { 2, "--time", { "--data", db, "add", "--user", "u", "--text", "t",
                         "--time", "not-a-time" } },
        { 2, "JSON object", { "--data", db, "add", "--user", "u", "--text",
                              "t", "--meta", "[1]" } },
        { 2, "not valid JSON", { "--data", db, "add", "--user", "u", "--text",
                                 "t", "--meta", "{oops" } },
        { 2, "DM_ENOTFOUND", { "--data", missing, "search", "--user", "u",
                               "--query", "q" } },
        { 2, "is not a memory id", { "--data", db, "get", "--id", "xyz" } },
        { 1, "DM_ENOTFOUND", { "--data", db, "get", "--id", absent } },
        { 1, "DM_ENOTFOUND", { "--data", db, "delete", "--user", "u", "--id",
                               absent } },
        { 2, "--id is required", { "--data", db, "delete", "--user", "u" } },
        { 2, "-k", { "--data", db, "search", "--user", "u", "--query", "q",
                     "-k", "0" } },
        { 2, "--sync", { "--data", db, "--sync", "sometimes", "list", "--user",
                         "u" } },
        { 2, "unknown command \"frobnicate\"", { "frobnicate" } },
        { 2, "unknown global option", { "--frob", "list" } },
        { 1, "cannot open", { "--data", db, "import", nofile } },
        { 2, "the file to import is missing", { "--data", db, "import" } },
        { 2, "give --text, --meta or both", { "--data", db, "update", "--id",
                                              known } },
        { 1, "DM_EINVAL", { "--data", db, "list", "--user", "u", "--cursor",
                            "garbage!" } },
        { 1, "DM_EINVAL", { "--data", db, "add", "--user", "u", "--text",
                            "t", "--salience", "3" } },
        { 0, NULL, { "--data", db, "--model", nofile, "list", "--user",
                     "u" } },
        { 2, "unexpected argument", { "--data", db, "list", "--user", "u",
                                      "extra" } },
        { 2, "unknown command \"nope\"", { "help", "nope" } },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_result r = runv(cases[i].args);
        if (r.status == 0)
            fail_msg("case %zu (%s %s) succeeded", i, cases[i].args[0],
                     cases[i].args[2] ? cases[i].args[2] : "");
        expect_error(&r, cases[i].status, cases[i].in_err);
        run_free(&r);
    }

    /* None of that created the missing database or changed the real one. */
    struct stat sb;
    assert_int_not_equal(stat(missing, &sb), 0);
    run_result r = RUN("--data", db, "list", "--user", "u", "--json");
    expect_ok(&r);
    json_t *doc = parse_json(&r);
    assert_int_equal(json_array_size(json_object_get(doc, "items")), 1);
    json_decref(doc);
    run_free(&r);
}

/* archive, restore, decay; search --explain and --time. */
static void test_archive_restore_decay(void **state)
{
    (void)state;
    REQUIRE_MODEL();
    char db[2048];
    db_path(db, sizeof db, "archive");
    char hike[DM_ID_STRLEN + 1];
    snprintf(hike, sizeof hike, "%s",
             add_json(db, "alice", "I love hiking in the mountains",
                      "2023-05-08T13:56:00Z", "{\"topic\":\"outdoors\"}"));
    add_json(db, "alice", "My favourite food is sushi", "2023-06-01T09:00:00Z", "{}");

    run_result r = RUN("--data", db, "archive", "--user", "alice", "--id", hike);
    expect_ok(&r);
    assert_non_null(strstr(r.out, "archived "));
    run_free(&r);
    r = RUN("--data", db, "search", "--user", "alice", "--query", "hiking mountains", "--json");
    expect_ok(&r);
    assert_null(strstr(r.out, hike));
    run_free(&r);
    r = RUN("--data", db, "search", "--user", "alice", "--query", "hiking mountains",
            "--archived", "--json");
    expect_ok(&r);
    assert_non_null(strstr(r.out, hike));
    run_free(&r);
    r = RUN("--data", db, "restore", "--user", "alice", "--id", hike, "--json");
    expect_ok(&r);
    json_t *doc = parse_json(&r);
    assert_true(json_is_true(json_object_get(doc, "restored")));
    json_decref(doc);
    run_free(&r);

    /* --explain and --time: the window of "in May" relative to 2023-07-01,
     * and the explanation of the top hit. */
    r = RUN("--data", db, "search", "--user", "alice", "--query", "what did I do in May",
            "--time", "2023-07-01T00:00:00Z", "--explain", "--json");
    expect_ok(&r);
    doc = parse_json(&r);
    json_t *t = json_object_get(doc, "time");
    assert_string_equal(jstr(t, "from"), "2023-05-01T00:00:00Z");
    assert_string_equal(jstr(t, "to"), "2023-06-01T00:00:00Z");
    json_t *top = json_array_get(json_object_get(doc, "results"), 0);
    assert_string_equal(jstr(top, "id"), hike);
    json_t *ex = json_object_get(top, "explain");
    assert_true(json_is_object(ex));
    assert_true(json_is_object(json_object_get(json_object_get(ex, "legs"), "temporal")));
    assert_true(json_is_string(json_object_get(ex, "reason")));
    json_decref(doc);
    run_free(&r);

    /* Decay far in the future archives both; nothing is deleted. */
    r = RUN("--data", db, "decay", "--user", "alice", "--time", "2100-01-01", "--json");
    expect_ok(&r);
    doc = parse_json(&r);
    assert_int_equal(json_integer_value(json_object_get(doc, "archived")), 2);
    json_decref(doc);
    run_free(&r);
    r = RUN("--data", db, "list", "--user", "alice", "--archived", "--json");
    expect_ok(&r);
    assert_non_null(strstr(r.out, hike));
    run_free(&r);
    r = RUN("--data", db, "decay", "--threshold", "1.5");
    expect_error(&r, 2, "--threshold");
    run_free(&r);
    r = RUN("--data", db, "restore", "--user", "bob", "--id", hike);
    expect_error(&r, 1, "restore");
    run_free(&r);
}

/* The demo remembers its conversation in a temporary database and shows
 * the recall, the profile (a move and a derived region among it) and the
 * context block, profile first. */
static void test_demo(void **state)
{
    (void)state;
    run_result r = RUN("demo");
    expect_ok(&r);
    assert_non_null(strstr(r.out, "remembered 12 turns"));
    assert_non_null(strstr(r.out, "== recall"));
    assert_non_null(strstr(r.out, "location.city          Denver"));
    assert_non_null(strstr(r.out, "location.region        Colorado"));
    assert_non_null(strstr(r.out, "work.industry          healthcare"));
    const char *ctx = strstr(r.out, "# About the user");
    assert_non_null(ctx);
    assert_true(ctx < strstr(r.out, "# This conversation"));
    run_free(&r);
}

static void test_help_everywhere(void **state)
{
    (void)state;
    static const char *const cmds[] = {
        "add", "search", "get", "list", "update", "delete", "erase-user",
        "import", "export", "reembed", "check", "stats", "serve", "version",
        "help", "archive", "restore", "decay", "eval", "demo", "keys", "mcp",
    };
    run_result all = RUN("help");
    expect_ok(&all);
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char want[64];
        snprintf(want, sizeof want, "\n  %s", cmds[i]);
        if (!strstr(all.out, want))
            fail_msg("help does not list %s:\n%s", cmds[i], all.out);

        run_result r = RUN(cmds[i], "--help");
        expect_ok(&r);
        snprintf(want, sizeof want, "usage: deltamemory ");
        assert_non_null(strstr(r.out, want));
        assert_non_null(strstr(r.out, cmds[i]));
        run_result r2 = RUN("help", cmds[i]);
        expect_ok(&r2);
        assert_string_equal(r.out, r2.out);
        run_free(&r2);
        /* --help wins over anything wrong on the line (a few commands:
         * every run of the binary costs a process start under ASan). */
        if (i % 5 == 0) {
            r2 = RUN("--data", "/nonexistent", cmds[i], "--bogus", "-h");
            expect_ok(&r2);
            assert_string_equal(r.out, r2.out);
            run_free(&r2);
        }
        run_free(&r);
    }
    run_free(&all);

    run_result r = RUN("--help");
    expect_ok(&r);
    assert_non_null(strstr(r.out, "--data DIR"));
    run_free(&r);
    r = RUN("version", "--json");
    expect_ok(&r);
    json_t *doc = parse_json(&r);
    assert_string_equal(jstr(doc, "version"), DM_VERSION_STRING);
    json_decref(doc);
    run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_search_get_list_delete),
        cmocka_unit_test(test_import_bad_lines),
        cmocka_unit_test(test_export_import_roundtrip),
        cmocka_unit_test(test_errors_are_one_line),
        cmocka_unit_test(test_archive_restore_decay),
        cmocka_unit_test(test_help_everywhere),
        cmocka_unit_test(test_demo),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
