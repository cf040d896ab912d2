/*
 * cmd_mcp.c -- `deltamemory mcp`: the Model Context Protocol server on
 * stdin/stdout (the stdio transport), for MCP clients that start the
 * server as a child process (docs/api-mcp.md).
 *
 * The transport is newline-delimited JSON-RPC: each line of stdin is one
 * message, each response is written to stdout as one line and flushed at
 * once (the client waits for it).  Nothing else ever goes to stdout, since
 * a stray line would break the client's framing; diagnostics go to
 * stderr.  At the end of stdin the database is closed (which flushes) and
 * the command exits 0.  Messages are handled one at a time, in order.
 *
 * SIGINT and SIGTERM (a client that stops its child) end the loop the way
 * the end of stdin does: the handler only sets a flag, and as it is
 * installed without SA_RESTART the read in progress returns, so the
 * database is still closed properly.  The engine's threads may take the
 * signal instead of the reading thread; the handler then passes it on to
 * the reading thread (pthread_kill is async-signal-safe).  SIGPIPE is ignored so that a client
 * gone away shows as a failed write, again followed by the close.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "cli.h"
#include "server/mcp.h"

const char cli_help_mcp[] =
    "usage: deltamemory [--data DIR] [--model FILE] mcp [--user U] [--tenant T]\n"
    "\n"
    "Serve the Model Context Protocol on stdin/stdout: one JSON-RPC message per\n"
    "line in, one response per line out, logs on stderr.  MCP clients start it\n"
    "as their server command, e.g.\n"
    "    deltamemory --data /var/lib/deltamemory mcp --user alice\n"
    "Tools: add_memory, search_memories, get_context, get_profile,\n"
    "list_memories, get_memory, update_memory, delete_memory, memory_history,\n"
    "search_graph (docs/api-mcp.md).  It stops at the end of its input.\n"
    "\n"
    "  --user U     the user of tool calls that give no user_id\n"
    "               (default $DELTAMEMORY_USER_ID; without one, every call\n"
    "               must name its user)\n"
    "  --tenant T   the tenant every call acts in (default $DELTAMEMORY_TENANT,\n"
    "               else \"default\")\n";

static volatile sig_atomic_t is_stopping;
static pthread_t reader;

static void on_stop(int sig)
{
    is_stopping = 1;
    if (!pthread_equal(pthread_self(), reader))
        pthread_kill(reader, sig);
}

int cli_cmd_mcp(const cli_globals *g, int argc, char **argv)
{
    static const cli_opt opts[] = {
        { "user", 'u', true },
        { "tenant", 0, true },
    };
    const char *cmd = "mcp";
    cli_args a;
    int st = cli_begin(cmd, g, opts, sizeof opts / sizeof opts[0], argc, argv, &a);
    if (st != CLI_PROCEED)
        return st;
    mcp_scope sc = { cli_get(&a, "tenant"), cli_get(&a, "user"), 0 };
    if (!sc.tenant)
        sc.tenant = getenv("DELTAMEMORY_TENANT");
    if (!sc.user_id)
        sc.user_id = getenv("DELTAMEMORY_USER_ID");
    if (sc.tenant && !*sc.tenant)
        sc.tenant = NULL;
    if (sc.user_id && !*sc.user_id)
        sc.user_id = NULL;
    if (sc.tenant && strlen(sc.tenant) > DM_MAX_NAME_LEN)
        return cli_usage(cmd, "--tenant is longer than %d bytes", DM_MAX_NAME_LEN);
    if (sc.user_id && strlen(sc.user_id) > DM_MAX_NAME_LEN)
        return cli_usage(cmd, "--user is longer than %d bytes", DM_MAX_NAME_LEN);

    dm_db *db = NULL;
    if ((st = cli_open(g, cmd, true, false, &db)) != CLI_OK)
        return st;
    fprintf(stderr, "DeltaMemory MCP server on stdio (tenant %s, default user %s)\n",
            sc.tenant ? sc.tenant : DM_DEFAULT_TENANT, sc.user_id ? sc.user_id : "none");

    struct sigaction sa;
    reader = pthread_self();
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    st = CLI_OK;
    while (!is_stopping) {
        errno = 0;
        if ((n = getline(&line, &cap, stdin)) < 0) {
            if (errno == EINTR && !is_stopping) {
                clearerr(stdin);
                continue;
            }
            break;
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        size_t skip = strspn(line, " \t");
        if ((size_t)n == skip)
            continue; /* blank lines are not messages */
        char *resp = NULL;
        int rc = mcp_handle(db, &sc, line + skip, (size_t)n - skip, &resp);
        if (rc) {
            st = cli_fail(cmd, rc, "cannot answer a message");
            break;
        }
        if (!resp)
            continue;
        int werr = fputs(resp, stdout) < 0 || fputc('\n', stdout) == EOF || fflush(stdout);
        dm_free(resp);
        if (werr) {
            st = cli_error(cmd, "cannot write to stdout: the client has gone");
            break;
        }
    }
    free(line);
    return cli_close(cmd, db, st);
}
