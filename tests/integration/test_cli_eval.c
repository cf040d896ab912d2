/*
 * test_cli_eval.c -- deltamemory eval locomo, run as a real process on a
 * tiny LoCoMo-shaped fixture.
 *
 * The binary is $DM_BIN_DIR/tools/cli/deltamemory (CTest sets DM_BIN_DIR).
 * The embedding model is the support library's tiny topic model (written
 * with model_build_write by tm_build), selected through $DM_MODEL, so no
 * downloaded file is needed.  $TMPDIR points into the test's scratch
 * directory so that the command's temporary database can be seen to go
 * away.
 *
 * The fixture: two conversations (seven and five turns, one turn with a
 * photo caption), five questions: one keyword question whose two evidence
 * turns are the only ones with that word (so in bm25 mode frac@1 is 50 and
 * frac@2 is 100, by hand), one answerable only through a caption, one whose
 * evidence is written "D2:1; D2:3 D9:9" (two real turns and one that does
 * not exist), one in the second conversation, and one without evidence
 * (skipped).  Each scored question is alone in its category, so the
 * per-category figures are that question's own.
 *
 * Covered: the JSON counts (questions, skipped, unmatched evidence, turns,
 * conversations), hand-computed frac/any/all values, the dump (one line
 * per scored question, qid, parsed evidence, retrieved ids that exist in
 * the question's own conversation, best first, no repeats), the removal of
 * the temporary database, --data DIR kept and refused the second time,
 * --mode all (text and JSON), and the errors: missing --turns, an unknown
 * --mode or benchmark or a bad --k (exit 2), malformed lines, a repeated
 * dia_id and a question of an unknown conversation (exit 1, the message
 * names the file and line).
 */
// ctest-timeout: 120
#include "testutil.h"
#include "tinymodel.h"

#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/alloc.h"
#include "deltamemory.h"

extern char **environ;

static char bin[2048];
static char scratch[1024];
static char tmp_dir[1100];    /* $TMPDIR of the command */
static char turns_path[1100];
static char questions_path[1100];
static char dump_path[1100];

/* ------------------------------------------------------------ fixture */

static const char fixture_turns[] =
    "{\"conv_id\": \"conv-a\", \"session\": 1, \"session_time\": "
    "\"2023-05-08T13:56:00\", \"dia_id\": \"D1:1\", \"speaker\": \"Alice\", "
    "\"text\": \"Hi Bob, how was your weekend?\"}\n"
    "{\"conv_id\": \"conv-a\", \"session\": 1, \"session_time\": "
    "\"2023-05-08T13:56:00\", \"dia_id\": \"D1:2\", \"speaker\": \"Bob\", "
    "\"text\": \"Great, I finally bought a saxophone.\"}\n"
    "{\"conv_id\": \"conv-a\", \"session\": 1, \"session_time\": "
    "\"2023-05-08T13:56:00\", \"dia_id\": \"D1:3\", \"speaker\": \"Alice\", "
    "\"text\": \"Nice! I went hiking in the mountains.\"}\n"
    "{\"conv_id\": \"conv-a\", \"session\": 1, \"session_time\": "
    "\"2023-05-08T13:56:00\", \"dia_id\": \"D1:4\", \"speaker\": \"Bob\", "
    "\"text\": \"Look who came home with me!\", \"blip_caption\": \"a photo "
    "of a small beagle on a rug\", \"img_url\": [\"https://x/y.jpg\"]}\n"
    "\n"
    "{\"conv_id\": \"conv-a\", \"session\": 2, \"session_time\": "
    "\"2023-06-01T09:00:00\", \"dia_id\": \"D2:1\", \"speaker\": \"Alice\", "
    "\"text\": \"I started a pottery class on Tuesdays.\"}\n"
    "{\"conv_id\": \"conv-a\", \"session\": 2, \"session_time\": "
    "\"2023-06-01T09:00:00\", \"dia_id\": \"D2:2\", \"speaker\": \"Bob\", "
    "\"text\": \"My saxophone teacher says I am improving.\"}\n"
    "{\"conv_id\": \"conv-a\", \"session\": 2, \"session_time\": "
    "\"2023-06-01T09:00:00\", \"dia_id\": \"D2:3\", \"speaker\": \"Alice\", "
    "\"text\": \"The pottery studio is near the river.\"}\n"
    "{\"conv_id\": \"conv-b\", \"session\": 1, \"session_time\": "
    "\"2023-07-02T18:30:00\", \"dia_id\": \"D1:1\", \"speaker\": \"Carol\", "
    "\"text\": \"I moved to Lisbon last month.\"}\n"
    "{\"conv_id\": \"conv-b\", \"session\": 1, \"session_time\": "
    "\"2023-07-02T18:30:00\", \"dia_id\": \"D1:2\", \"speaker\": \"Dave\", "
    "\"text\": \"Do you like the food there?\"}\n"
    "{\"conv_id\": \"conv-b\", \"session\": 1, \"session_time\": "
    "\"2023-07-02T18:30:00\", \"dia_id\": \"D1:3\", \"speaker\": \"Carol\", "
    "\"text\": \"Yes, the grilled sardines are wonderful.\"}\n"
    "{\"conv_id\": \"conv-b\", \"session\": 1, \"session_time\": "
    "\"2023-07-02T18:30:00\", \"dia_id\": \"D1:4\", \"speaker\": \"Dave\", "
    "\"text\": \"I am learning to bake sourdough bread.\"}\n"
    "{\"conv_id\": \"conv-b\", \"session\": 1, \"session_time\": "
    "\"2023-07-02T18:30:00\", \"dia_id\": \"D1:5\", \"speaker\": \"Carol\", "
    "\"text\": \"Send me a picture of the sourdough!\"}\n";

static const char fixture_questions[] =
    "{\"conv_id\": \"conv-a\", \"qid\": \"a-q0\", \"question\": "
    "\"saxophone?\", \"answer\": \"a saxophone\", \"category\": 4, "
    "\"category_name\": \"single-hop\", \"evidence\": [\"D1:2\", "
    "\"D2:2\"]}\n"
    "{\"conv_id\": \"conv-a\", \"qid\": \"a-q1\", \"question\": "
    "\"Which beagle?\", \"answer\": \"a beagle\", \"category\": 1, "
    "\"category_name\": \"multi-hop\", \"evidence\": [\"D1:4\"]}\n"
    "{\"conv_id\": \"conv-a\", \"qid\": \"a-q2\", \"question\": \"When "
    "did Alice start the pottery class?\", \"answer\": \"June 2023\", "
    "\"category\": 2, \"category_name\": \"temporal\", \"evidence\": "
    "[\"D2:1; D2:3 D9:9\"]}\n"
    "{\"conv_id\": \"conv-b\", \"qid\": \"b-q0\", \"question\": \"Which "
    "city did Carol move to, Lisbon?\", \"answer\": \"Lisbon\", "
    "\"category\": 3, \"category_name\": \"open-domain\", \"evidence\": "
    "[\"D1:1\"]}\n"
    "{\"conv_id\": \"conv-b\", \"qid\": \"b-q1\", \"question\": \"What is "
    "Dave's sister called?\", \"answer\": null, \"category\": 5, "
    "\"category_name\": \"adversarial\", \"evidence\": []}\n";

/* -------------------------------------------------------- running it */

typedef struct run_result {
    int status;  /* exit code, or -1 if killed by a signal */
    char *out;   /* captured stdout (dm_malloc, NUL-terminated) */
    char *err;   /* captured stderr */
} run_result;

static char *read_all(const char *path)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    size_t cap = 4096, n = 0;
    char *s = dm_malloc(cap);
    assert_non_null(s);
    size_t got;
    while ((got = fread(s + n, 1, cap - n - 1, fp)) > 0) {
        n += got;
        if (n + 1 == cap) {
            cap *= 2;
            s = dm_realloc(s, cap);
            assert_non_null(s);
        }
    }
    s[n] = 0;
    fclose(fp);
    return s;
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
}

/* Runs the CLI with the NULL-terminated arguments. */
static run_result runv(const char *const *args)
{
    char out_path[1200], err_path[1200];
    snprintf(out_path, sizeof out_path, "%s/stdout", scratch);
    snprintf(err_path, sizeof err_path, "%s/stderr", scratch);
    const char *argv[48];
    size_t n = 0;
    argv[n++] = bin;
    for (size_t i = 0; args[i]; i++) {
        assert_true(n < 47);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
    assert_int_equal(posix_spawn_file_actions_addopen(&fa, 0, "/dev/null",
                                                      O_RDONLY, 0), 0);
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
    r.out = read_all(out_path);
    r.err = read_all(err_path);
    return r;
}

#define RUN(...) runv((const char *const[]){ __VA_ARGS__, NULL })

static void run_free(run_result *r)
{
    dm_free(r->out);
    dm_free(r->err);
    r->out = r->err = NULL;
}

static void expect_ok(const run_result *r)
{
    if (r->status != 0 || r->err[0])
        fail_msg("expected success; got exit %d\n--- stdout:\n%s--- "
                 "stderr:\n%s", r->status, r->out, r->err);
}

/* Exit status `status`, nothing on stdout, one line on stderr containing
 * `in_err`. */
static void expect_error(const run_result *r, int status, const char *in_err)
{
    size_t n = strlen(r->err);
    if (r->status != status || r->out[0] || n == 0 ||
        strchr(r->err, '\n') != r->err + n - 1 || !strstr(r->err, in_err))
        fail_msg("expected exit %d with one stderr line containing \"%s\"; "
                 "got exit %d\n--- stdout:\n%s--- stderr:\n%s", status,
                 in_err, r->status, r->out, r->err);
}

static json_t *parse_json(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    if (!v)
        fail_msg("not one JSON document (%s at %d):\n%s", e.text, e.position,
                 text);
    return v;
}

/* Entries of a directory other than . and .. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

static json_t *category(json_t *doc, int c)
{
    json_t *cats = json_object_get(doc, "categories");
    assert_true(json_is_array(cats));
    for (size_t i = 0; i < json_array_size(cats); i++) {
        json_t *o = json_array_get(cats, i);
        if (json_integer_value(json_object_get(o, "category")) == c)
            return o;
    }
    fail_msg("category %d is not in the output", c);
    return NULL;
}

static double num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_number(v))
        fail_msg("member \"%s\" is not a number", key);
    return json_number_value(v);
}

static void assert_near(double got, double want)
{
    if (fabs(got - want) > 1e-6)
        fail_msg("got %.9g, want %.9g", got, want);
}

/* ------------------------------------------------------------- set up */

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
    snprintf(scratch, sizeof scratch, "%s", tu_tmpdir("cli_eval"));
    static char model_path[1200];
    snprintf(model_path, sizeof model_path, "%s/tiny.dmm", scratch);
    if (tm_build(model_path, "eval-test", 32, 7) != DM_OK) {
        print_error("cannot write the test model: %s\n", dm_errmsg());
        return -1;
    }
    setenv("DM_MODEL", model_path, 1);
    snprintf(tmp_dir, sizeof tmp_dir, "%s/tmp", scratch);
    if (mkdir(tmp_dir, 0755) != 0)
        return -1;
    setenv("TMPDIR", tmp_dir, 1);
    snprintf(turns_path, sizeof turns_path, "%s/turns.jsonl", scratch);
    snprintf(questions_path, sizeof questions_path, "%s/questions.jsonl",
             scratch);
    snprintf(dump_path, sizeof dump_path, "%s/dump.jsonl", scratch);
    write_file(turns_path, fixture_turns);
    write_file(questions_path, fixture_questions);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_rmrf(scratch);
    return 0;
}

/* ---------------------------------------------------------------- tests */

/* Is id one of the fixture's dia_ids of conversation conv? */
static int is_turn_of(const char *conv, const char *id)
{
    static const char *const a[] = { "D1:1", "D1:2", "D1:3", "D1:4",
                                     "D2:1", "D2:2", "D2:3" };
    static const char *const b[] = { "D1:1", "D1:2", "D1:3", "D1:4",
                                     "D1:5" };
    const char *const *ids = !strcmp(conv, "conv-a") ? a : b;
    size_t n = !strcmp(conv, "conv-a") ? 7 : 5;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(ids[i], id))
            return 1;
    return 0;
}

static void test_bm25_json_and_dump(void **state)
{
    (void)state;
    run_result r = RUN("eval", "locomo", "--turns", turns_path, "--questions",
                       questions_path, "--mode", "bm25", "--k", "5,1,2",
                       "--dump", dump_path, "--json");
    expect_ok(&r);
    json_t *doc = parse_json(r.out);
    assert_string_equal(json_string_value(json_object_get(doc, "mode")),
                        "bm25");
    assert_int_equal(num(doc, "questions"), 4);
    assert_int_equal(num(doc, "skipped"), 1);
    assert_int_equal(num(doc, "unmatched_evidence"), 1);
    assert_int_equal(num(doc, "turns"), 12);
    assert_int_equal(num(doc, "conversations"), 2);
    json_t *ks = json_object_get(doc, "k");
    assert_int_equal(json_array_size(ks), 3);
    assert_int_equal(json_integer_value(json_array_get(ks, 0)), 1);
    assert_int_equal(json_integer_value(json_array_get(ks, 2)), 5);
    assert_int_equal(json_array_size(json_object_get(doc, "categories")), 4);

    /* "saxophone?": two evidence turns, the only two with the word. */
    json_t *c = category(doc, 4);
    assert_string_equal(json_string_value(json_object_get(c, "name")),
                        "single-hop");
    assert_int_equal(num(c, "n"), 1);
    assert_near(num(c, "frac@1"), 50.0);
    assert_near(num(c, "any@1"), 100.0);
    assert_near(num(c, "all@1"), 0.0);
    assert_near(num(c, "frac@2"), 100.0);
    assert_near(num(c, "all@2"), 100.0);

    /* "Which beagle?": only the photo caption has the word. */
    c = category(doc, 1);
    assert_string_equal(json_string_value(json_object_get(c, "name")),
                        "multi-hop");
    assert_near(num(c, "frac@1"), 100.0);

    /* "D2:1; D2:3 D9:9": D9:9 is no turn, so all@k stays 0; both pottery
     * turns are in the top 5 of conv-a's seven. */
    c = category(doc, 2);
    assert_near(num(c, "frac@5"), 200.0 / 3.0);
    assert_near(num(c, "any@5"), 100.0);
    assert_near(num(c, "all@5"), 0.0);

    json_t *overall = json_object_get(doc, "overall");
    assert_int_equal(num(overall, "n"), 4);
    assert_true(num(overall, "frac@5") >= num(overall, "frac@2"));
    assert_true(num(overall, "frac@2") >= num(overall, "frac@1"));
    json_decref(doc);
    run_free(&r);

    /* The temporary database is gone. */
    assert_int_equal(count_entries(tmp_dir), 0);

    /* The dump: one line per scored question, in file order. */
    static const char *const qids[] = { "a-q0", "a-q1", "a-q2", "b-q0" };
    char *text = read_all(dump_path);
    char *line = text;
    for (size_t i = 0; i < 4; i++) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = 0;
        json_t *o = parse_json(line);
        assert_string_equal(json_string_value(json_object_get(o, "qid")),
                            qids[i]);
        const char *conv = i < 3 ? "conv-a" : "conv-b";
        json_t *ret = json_object_get(o, "retrieved");
        assert_true(json_is_array(ret));
        assert_true(json_array_size(ret) >= 1);
        assert_true(json_array_size(ret) <= (i < 3 ? 7u : 5u));
        for (size_t j = 0; j < json_array_size(ret); j++) {
            const char *id = json_string_value(json_array_get(ret, j));
            assert_non_null(id);
            if (!is_turn_of(conv, id))
                fail_msg("%s retrieved %s, no turn of %s", qids[i], id, conv);
            for (size_t k = 0; k < j; k++)
                assert_string_not_equal(
                    json_string_value(json_array_get(ret, k)), id);
        }
        if (i == 0) {
            /* Both saxophone turns lead, in either order. */
            assert_true(json_array_size(ret) >= 2);
            const char *a = json_string_value(json_array_get(ret, 0));
            const char *b = json_string_value(json_array_get(ret, 1));
            assert_true((!strcmp(a, "D1:2") && !strcmp(b, "D2:2")) ||
                        (!strcmp(a, "D2:2") && !strcmp(b, "D1:2")));
        }
        if (i == 2) {
            json_t *ev = json_object_get(o, "evidence");
            assert_int_equal(json_array_size(ev), 3);
            assert_string_equal(json_string_value(json_array_get(ev, 0)),
                                "D2:1");
            assert_string_equal(json_string_value(json_array_get(ev, 1)),
                                "D2:3");
            assert_string_equal(json_string_value(json_array_get(ev, 2)),
                                "D9:9");
        }
        json_decref(o);
        line = nl + 1;
    }
    assert_int_equal(*line, 0);
    dm_free(text);
}

static void test_modes_and_text(void **state)
{
    (void)state;
    /* Text output of the default mode: the table and the skipped count. */
    run_result r = RUN("eval", "locomo", "--turns", turns_path, "--questions",
                       questions_path, "--time", "2023-08-01T00:00:00Z");
    expect_ok(&r);
    assert_non_null(strstr(r.out, "mode full"));
    assert_non_null(strstr(r.out, "1 skipped"));
    assert_non_null(strstr(r.out, "frac@25"));
    assert_non_null(strstr(r.out, "2 temporal"));
    assert_non_null(strstr(r.out, "overall"));
    assert_non_null(strstr(r.out, "search latency"));
    run_free(&r);

    /* --mode all: four tables and the summary; JSON has four modes. */
    r = RUN("eval", "locomo", "--turns", turns_path, "--questions",
            questions_path, "--mode", "all", "-k", "3");
    expect_ok(&r);
    const char *names[] = { "mode vector", "mode bm25", "mode fused",
                            "mode full", "what each stage adds" };
    const char *prev = r.out;
    for (size_t i = 0; i < 5; i++) {
        const char *at = strstr(prev, names[i]);
        if (!at)
            fail_msg("\"%s\" missing or out of order:\n%s", names[i], r.out);
        prev = at;
    }
    run_free(&r);

    r = RUN("--json", "eval", "locomo", "--turns", turns_path, "--questions",
            questions_path, "--mode", "all", "--dump", dump_path);
    expect_ok(&r);
    json_t *doc = parse_json(r.out);
    json_t *m = json_object_get(doc, "modes");
    assert_int_equal(json_array_size(m), 4);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(m, 3), "mode")),
        "full");
    json_decref(doc);
    run_free(&r);
    char *text = read_all(dump_path);
    size_t n_lines = 0;
    for (const char *p = text; *p; p++)
        n_lines += *p == '\n';
    assert_int_equal(n_lines, 4);
    dm_free(text);
    assert_int_equal(count_entries(tmp_dir), 0);
}

static void test_explicit_data_dir(void **state)
{
    (void)state;
    char db[1200];
    snprintf(db, sizeof db, "%s/kept", scratch);
    run_result r = RUN("--data", db, "--sync", "none", "eval", "locomo",
                       "--turns", turns_path, "--questions", questions_path,
                       "--mode", "bm25", "--json");
    expect_ok(&r);
    run_free(&r);
    /* The database stays, with the turns as memories. */
    r = RUN("--data", db, "list", "--user", "conv-b", "--json");
    expect_ok(&r);
    json_t *doc = parse_json(r.out);
    json_t *items = json_object_get(doc, "items");
    assert_int_equal(json_array_size(items), 5);
    /* Newest first: the last turn of the session, one microsecond after
     * the session's start per position. */
    json_t *last = json_array_get(items, 0);
    assert_string_equal(json_string_value(json_object_get(last, "text")),
                        "Carol: Send me a picture of the sourdough!");
    assert_string_equal(json_string_value(json_object_get(last, "time")),
                        "2023-07-02T18:30:00.000004Z");
    assert_string_equal(
        json_string_value(json_object_get(last, "session_id")),
        "conv-b/session_1");
    json_t *meta = json_object_get(last, "metadata");
    assert_string_equal(json_string_value(json_object_get(meta, "dia_id")),
                        "D1:5");
    assert_string_equal(json_string_value(json_object_get(meta, "speaker")),
                        "Carol");
    json_decref(doc);
    run_free(&r);

    /* The caption is part of the stored text. */
    r = RUN("--data", db, "list", "--user", "conv-a", "--json");
    expect_ok(&r);
    assert_non_null(strstr(r.out, "Bob: Look who came home with me! "
                                  "[shares a photo: a photo of a small beagle "
                                  "on a rug]"));
    run_free(&r);

    /* A second run would store every turn twice: refused. */
    r = RUN("--data", db, "eval", "locomo", "--turns", turns_path,
            "--questions", questions_path);
    expect_error(&r, 2, "already holds memories of user conv-a");
    run_free(&r);
}

static void test_errors(void **state)
{
    (void)state;
    run_result r = RUN("eval", "locomo", "--questions", questions_path);
    expect_error(&r, 2, "--turns is required");
    run_free(&r);

    r = RUN("eval", "locomo", "--turns", turns_path, "--questions",
            questions_path, "--mode", "hybrid");
    expect_error(&r, 2, "--mode: \"hybrid\"");
    run_free(&r);

    r = RUN("eval", "beir", "--turns", turns_path, "--questions",
            questions_path);
    expect_error(&r, 2, "unknown benchmark \"beir\"");
    run_free(&r);

    r = RUN("eval", "locomo", "--turns", turns_path, "--questions",
            questions_path, "--k", "5,0");
    expect_error(&r, 2, "--k");
    run_free(&r);

    char bad[1200], msg[1300];
    snprintf(bad, sizeof bad, "%s/bad.jsonl", scratch);

    /* Line 3 is cut short. */
    write_file(bad, "{\"conv_id\": \"c\", \"session\": 1, \"session_time\": "
                    "\"2023-01-01T00:00:00\", \"dia_id\": \"D1:1\", "
                    "\"speaker\": \"A\", \"text\": \"hello\"}\n"
                    "\n"
                    "{\"conv_id\": \"c\", \"session\": 1,\n");
    r = RUN("eval", "locomo", "--turns", bad, "--questions", questions_path);
    snprintf(msg, sizeof msg, "%s:3: not valid JSON", bad);
    expect_error(&r, 1, msg);
    run_free(&r);

    /* A turn without a text. */
    write_file(bad, "{\"conv_id\": \"c\", \"session\": 1, \"session_time\": "
                    "\"2023-01-01T00:00:00\", \"dia_id\": \"D1:1\", "
                    "\"speaker\": \"A\"}\n");
    r = RUN("eval", "locomo", "--turns", bad, "--questions", questions_path);
    snprintf(msg, sizeof msg, "%s:1: \"text\" is missing", bad);
    expect_error(&r, 1, msg);
    run_free(&r);

    /* A session time that is not a time. */
    write_file(bad, "{\"conv_id\": \"c\", \"session\": 1, \"session_time\": "
                    "\"8 May, 2023\", \"dia_id\": \"D1:1\", "
                    "\"speaker\": \"A\", \"text\": \"hi\"}\n");
    r = RUN("eval", "locomo", "--turns", bad, "--questions", questions_path);
    snprintf(msg, sizeof msg, "%s:1: \"session_time\"", bad);
    expect_error(&r, 1, msg);
    run_free(&r);

    /* A dia_id used twice in one conversation. */
    char twice[4096];
    snprintf(twice, sizeof twice, "%s%s", fixture_turns,
             "{\"conv_id\": \"conv-b\", \"session\": 2, \"session_time\": "
             "\"2023-07-09T18:30:00\", \"dia_id\": \"D1:3\", \"speaker\": "
             "\"Dave\", \"text\": \"again\"}\n");
    write_file(bad, twice);
    r = RUN("eval", "locomo", "--turns", bad, "--questions", questions_path);
    snprintf(msg, sizeof msg, "%s:14: dia_id \"D1:3\" of conversation conv-b "
             "repeats line 11", bad);
    expect_error(&r, 1, msg);
    run_free(&r);

    /* A question of a conversation without turns, and a bad category. */
    write_file(bad, "{\"conv_id\": \"conv-a\", \"qid\": \"q\", \"question\": "
                    "\"x?\", \"category\": 1, \"evidence\": [\"D1:1\"]}\n"
                    "{\"conv_id\": \"conv-z\", \"qid\": \"q\", \"question\": "
                    "\"x?\", \"category\": 1, \"evidence\": [\"D1:1\"]}\n");
    r = RUN("eval", "locomo", "--turns", turns_path, "--questions", bad);
    snprintf(msg, sizeof msg, "%s:2: conversation \"conv-z\" has no turns",
             bad);
    expect_error(&r, 1, msg);
    run_free(&r);
    write_file(bad, "{\"conv_id\": \"conv-a\", \"qid\": \"q\", \"question\": "
                    "\"x?\", \"category\": \"one\", \"evidence\": []}\n");
    r = RUN("eval", "locomo", "--turns", turns_path, "--questions", bad);
    snprintf(msg, sizeof msg, "%s:1: \"category\" must be a whole number",
             bad);
    expect_error(&r, 1, msg);
    run_free(&r);

    /* A missing file. */
    r = RUN("eval", "locomo", "--turns", turns_path, "--questions",
            "/nonexistent/q.jsonl");
    expect_error(&r, 1, "cannot open /nonexistent/q.jsonl");
    run_free(&r);

    /* No failed run left a database behind. */
    assert_int_equal(count_entries(tmp_dir), 0);

    r = RUN("eval", "--help");
    expect_ok(&r);
    assert_non_null(strstr(r.out, "usage: deltamemory [global options] eval "
                                  "locomo"));
    run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bm25_json_and_dump),
        cmocka_unit_test(test_modes_and_text),
        cmocka_unit_test(test_explicit_data_dir),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
