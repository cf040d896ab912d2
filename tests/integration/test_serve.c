/*
 * test_serve.c -- `deltamemory serve` as a user runs it: it says where it
 * listens, answers, refuses a public address without API keys, stops on
 * SIGTERM after the requests in progress and closes the database cleanly,
 * and exits at once on a second signal.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "testutil.h"
#include "tinymodel.h"

extern char **environ;

static char bin[2048];

typedef struct server {
    pid_t pid;
    int err_fd;          /* the read end of its stderr */
    char err[8192];      /* what it printed so far */
    size_t err_len;
    unsigned port;
} server;

/* Read what the server printed, waiting up to timeout_ms for it; true at
 * the end of its stderr (it is exiting). */
static bool read_err(server *s, int timeout_ms)
{
    struct pollfd p = { s->err_fd, POLLIN, 0 };
    while (poll(&p, 1, timeout_ms) > 0) {
        ssize_t n = read(s->err_fd, s->err + s->err_len, sizeof s->err - 1 - s->err_len);
        if (n <= 0)
            return true;
        s->err_len += (size_t)n;
        s->err[s->err_len] = 0;
        timeout_ms = 50;
    }
    return false;
}

/* Start `deltamemory --data dir --model tiny serve ARGS...`. */
static void start(server *s, const char *dir, const char *const *extra)
{
    memset(s, 0, sizeof *s);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    const char *argv[32] = { bin, "--data", dir, "--model", tm_default_model(), "serve" };
    size_t n = 6;
    for (size_t i = 0; extra && extra[i]; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    /* The server gets the signal state of a shell's child: nothing
     * blocked or ignored. */
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    int rc = posix_spawn(&s->pid, bin, &fa, &at, (char *const *)argv, environ);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc)
        fail_msg("cannot run %s: %s", bin, strerror(rc));
    s->err_fd = fds[0];
    /* Up to 90 s for the line that says where it listens, or for the
     * exit of a server that refused to start. */
    for (int i = 0; i < 900 && !strstr(s->err, "listening on"); i++) {
        bool is_eof = read_err(s, 100);
        int st;
        /* Its stderr closed: it is exiting (a poll at the end of a pipe
         * returns at once, so wait for the exit itself). */
        if (waitpid(s->pid, &st, is_eof ? 0 : WNOHANG) == s->pid) {
            s->pid = 0;
            close(s->err_fd);
            return; /* it exited: the caller looks at err */
        }
    }
    const char *p = strstr(s->err, "http://127.0.0.1:");
    if (p)
        s->port = (unsigned)atoi(p + strlen("http://127.0.0.1:"));
}

/* Wait for the server to exit; its exit status, or -1 after timeout_s. */
static int wait_exit(server *s, int timeout_s)
{
    bool is_eof = false;
    for (int i = 0; i < timeout_s * 20; i++) {
        int st;
        if (waitpid(s->pid, &st, is_eof ? 0 : WNOHANG) == s->pid) {
            read_err(s, 10);
            close(s->err_fd);
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        is_eof = read_err(s, 50);
    }
    return -1;
}

static long get(unsigned port, const char *path)
{
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", port, path);
    CURL *h = curl_easy_init();
    FILE *null = fopen("/dev/null", "w");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, null);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    fclose(null);
    return status;
}

static void test_serve_and_stop(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("test_serve");
    server s;
    start(&s, dir, (const char *const[]){ "--port", "0", NULL });
    assert_true(s.pid > 0);
    assert_true(s.port > 0);
    assert_non_null(strstr(s.err, "loopback only"));
    assert_non_null(strstr(s.err, "curl"));
    assert_int_equal(get(s.port, "/v1/health"), 200);
    assert_int_equal(get(s.port, "/no/such/route"), 404);
    assert_int_equal(kill(s.pid, SIGTERM), 0);
    assert_int_equal(wait_exit(&s, 90), 0);
    assert_non_null(strstr(s.err, "stopping"));
    /* Closed cleanly: the database checks clean. */
    char cmdline[4096];
    snprintf(cmdline, sizeof cmdline, "%s check %s >/dev/null 2>&1", bin, dir);
    assert_int_equal(system(cmdline), 0);
    tu_rmrf(dir);
}

/* Run the CLI with argv (NULL-terminated after bin); its stdout into out,
 * its exit status returned. */
static int run_cli(const char *const *args, char *out, size_t cap)
{
    char cmd[8192];
    size_t n = (size_t)snprintf(cmd, sizeof cmd, "'%s'", bin);
    for (size_t i = 0; args[i]; i++)
        n += (size_t)snprintf(cmd + n, sizeof cmd - n, " '%s'", args[i]);
    snprintf(cmd + n, sizeof cmd - n, " 2>&1");
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t len = fread(out, 1, cap - 1, p);
    out[len] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Add ann's "I live in Austin." through the server at url; the CLI's
 * output in out. */
static void add_austin(const char *url, char *out, size_t cap)
{
    assert_int_equal(run_cli((const char *const[]){ "--url", url, "add", "--user", "ann",
                                                    "--text", "I live in Austin.", NULL },
                             out, cap),
                     0);
}

/* The memory commands with --url talk to the running server. */
static void test_cli_url(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("test_serve_url");
    server s;
    start(&s, dir, (const char *const[]){ "--port", "0", NULL });
    assert_true(s.port > 0);
    char url[64], out[8192];
    snprintf(url, sizeof url, "http://127.0.0.1:%u", s.port);
    add_austin(url, out, sizeof out);
    assert_non_null(strstr(out, "\"id\""));
    assert_non_null(strstr(out, "\"id\""));
    assert_int_equal(run_cli((const char *const[]){ "--url", url, "search", "--user", "ann",
                                                    "--query", "Austin", NULL },
                             out, sizeof out),
                     0);
    assert_non_null(strstr(out, "I live in Austin."));
    assert_int_equal(run_cli((const char *const[]){ "--url", url, "profile", "--user", "ann",
                                                    NULL },
                             out, sizeof out),
                     0);
    assert_non_null(strstr(out, "Austin"));
    /* The server's refusal comes back as one line and exit status 2. */
    assert_int_equal(run_cli((const char *const[]){ "--url", url, "get", "--user", "ann", "--id",
                                                    "not-an-id", NULL },
                             out, sizeof out),
                     2);
    assert_non_null(strstr(out, "the server answered 404"));
    kill(s.pid, SIGTERM);
    assert_int_equal(wait_exit(&s, 90), 0);
    tu_rmrf(dir);
}

static void test_public_needs_keys(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("test_serve_public");
    server s;
    start(&s, dir, (const char *const[]){ "--host", "0.0.0.0", "--port", "0", NULL });
    if (s.pid)
        fail_msg("serve on 0.0.0.0 without keys did not refuse: %s", s.err);
    assert_non_null(strstr(s.err, "loopback only"));
    assert_non_null(strstr(s.err, "keys create"));
    tu_rmrf(dir);
}

static void test_second_signal(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("test_serve_twice");
    server s;
    start(&s, dir, (const char *const[]){ "--port", "0", NULL });
    assert_true(s.pid > 0);
    kill(s.pid, SIGTERM);
    kill(s.pid, SIGTERM);
    int st = wait_exit(&s, 90);
    assert_true(st == 0 || st == 130);
    tu_rmrf(dir);
}

static size_t to_buf(char *p, size_t size, size_t n, void *arg)
{
    char *b = arg;
    size_t have = strlen(b), add = size * n;
    if (have + add >= 65536)
        add = 65535 - have;
    memcpy(b + have, p, add);
    b[have + add] = 0;
    return size * n;
}

/* The value of a /metrics line "NAME VALUE"; -1 when absent. */
static double metric(unsigned port, const char *name)
{
    static char body[65536];
    char url[256];
    body[0] = 0;
    snprintf(url, sizeof url, "http://127.0.0.1:%u/metrics", port);
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, to_buf);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, (void *)body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_cleanup(h);
    if (rc != CURLE_OK)
        return -1;
    char line[160];
    snprintf(line, sizeof line, "\n%s ", name);
    const char *at = strstr(body, line);
    return at ? strtod(at + strlen(line), NULL) : -1;
}

/* The engine's settings: an idle user's indexes leave memory and come back
 * for its next search; tables read with pread; a bound on mapped pages
 * (a pass runs once a second past it); a bad value refused. */
static void test_engine_settings(void **state)
{
    (void)state;
    const char *dir = tu_tmpdir("test_serve_engine");
    server s;
    start(&s, dir, (const char *const[]){ "--port", "0", "--user-idle", "1", "--pread-tables",
                                          "--map-memory", "1", NULL });
    assert_true(s.port > 0);
    char url[64], out[8192];
    snprintf(url, sizeof url, "http://127.0.0.1:%u", s.port);
    add_austin(url, out, sizeof out);
    double unloads = 0;
    for (int i = 0; i < 100 && (unloads = metric(s.port, "deltamemory_user_unloads_total")) < 1;
         i++)
        usleep(100000);
    if (unloads < 1)
        fail_msg("no unload in 10 s (user_unloads_total %g)", unloads);
    double drops = 0;
    for (int i = 0; i < 100 && (drops = metric(s.port, "deltamemory_map_drops_total")) < 1; i++)
        usleep(100000);
    if (drops < 1)
        fail_msg("no pass over the mapped pages in 10 s (map_drops_total %g)", drops);
    assert_int_equal(run_cli((const char *const[]){ "--url", url, "search", "--user", "ann",
                                                    "--query", "Austin", NULL },
                             out, sizeof out),
                     0);
    assert_non_null(strstr(out, "I live in Austin."));
    kill(s.pid, SIGTERM);
    assert_int_equal(wait_exit(&s, 90), 0);

    start(&s, dir, (const char *const[]){ "--port", "0", "--user-idle", "soon", NULL });
    if (s.pid)
        fail_msg("serve --user-idle soon did not refuse: %s", s.err);
    assert_non_null(strstr(s.err, "--user-idle"));
    tu_rmrf(dir);
}

int main(void)
{
    const char *b = getenv("DM_BIN_DIR");
    snprintf(bin, sizeof bin, "%s/tools/cli/deltamemory", b ? b : ".");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serve_and_stop),
        cmocka_unit_test(test_cli_url),
        cmocka_unit_test(test_public_needs_keys),
        cmocka_unit_test(test_second_signal),
        cmocka_unit_test(test_engine_settings),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
