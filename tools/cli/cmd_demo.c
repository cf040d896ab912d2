/*
 * cmd_demo.c -- `deltamemory demo`: a short conversation written for the
 * project (share/demo/conversation.jsonl, assembled into the binary) is
 * remembered turn by turn, then the demo shows what the memory makes of
 * it: a recall, the profile (facts with their time, one current value per
 * slot), and the context block an agent would get before answering the
 * last message.  By default in a temporary database that is removed at the
 * end; with --data DIR given explicitly, into DIR (which is kept).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "cli.h"

/* The conversation, assembled into the binary like the gazetteer. */
__asm__(".pushsection .rodata\n"
        ".balign 16\n"
        ".globl demo_jsonl_begin\n"
        ".hidden demo_jsonl_begin\n"
        "demo_jsonl_begin:\n"
        ".incbin \"" DM_DEMO_JSONL "\"\n"
        ".globl demo_jsonl_end\n"
        ".hidden demo_jsonl_end\n"
        "demo_jsonl_end:\n"
        ".byte 0\n"
        ".popsection\n");
extern const char demo_jsonl_begin[] __attribute__((visibility("hidden")));
extern const char demo_jsonl_end[] __attribute__((visibility("hidden")));

#define DEMO_USER "maya"

const char cli_help_demo[] =
    "usage: deltamemory [global options] demo [--query Q]\n"
    "\n"
    "Remembers a short conversation written for the project (twelve turns\n"
    "over three weeks: a move, a job, a diet, a dog, a goal), then shows\n"
    "what DeltaMemory makes of it: a recall for the query, the user's\n"
    "profile -- one current value per fact, with the time it became true\n"
    "-- and the context block an agent would be handed before answering\n"
    "the last message.  Runs in a temporary database removed at the end,\n"
    "unless --data DIR is given (then the conversation is added to DIR,\n"
    "user \"maya\", and kept).  Needs the embedding model (make model).\n"
    "\n"
    "  -q, --query Q        what to recall (default: \"what should I keep in\n"
    "                       mind when picking a restaurant?\")\n";

static void print_time(int64_t us)
{
    char t[40];
    dm_time_format(us, t);
    t[10] = 0; /* the date is enough here */
    fputs(t, stdout);
}

/* Remember every turn of the conversation; the count, or -1 after the
 * error is printed. */
static int load(dm_db *db, const char *cmd)
{
    int n = 0;
    for (const char *p = demo_jsonl_begin; p < demo_jsonl_end;) {
        const char *e = memchr(p, '\n', (size_t)(demo_jsonl_end - p));
        size_t len = e ? (size_t)(e - p) : (size_t)(demo_jsonl_end - p);
        json_error_t je;
        json_t *t = len ? json_loadb(p, len, 0, &je) : NULL;
        p = e ? e + 1 : demo_jsonl_end;
        if (!len)
            continue;
        const char *time = json_string_value(json_object_get(t, "time"));
        dm_remember_params rp;
        dm_remember_params_init(&rp);
        rp.user_id = DEMO_USER;
        rp.session_id = json_string_value(json_object_get(t, "session"));
        rp.role = json_string_value(json_object_get(t, "role"));
        rp.text = json_string_value(json_object_get(t, "text"));
        int rc = !t || !time || !rp.text ? DM_EINVAL : dm_time_parse(time, &rp.time_us);
        if (!rc)
            rc = dm_remember(db, &rp, NULL);
        json_decref(t);
        if (rc) {
            cli_fail(cmd, rc, "remembering turn %d of the demo conversation", n + 1);
            return -1;
        }
        n++;
    }
    return n;
}

static int show(dm_db *db, const char *cmd, const char *query, int64_t now)
{
    printf("\n== recall: \"%s\"\n", query);
    dm_search_params sp = { .user_id = DEMO_USER, .query = query, .k = 5, .now_us = now,
                            .flags = DM_NO_REFRESH };
    dm_search_result *res;
    int rc = dm_search(db, &sp, &res);
    if (rc)
        return cli_fail(cmd, rc, "search");
    for (size_t i = 0; i < res->n; i++) {
        printf("  %.3f  ", (double)res->hits[i].score);
        print_time(res->hits[i].memory.event_time_us);
        printf("  %s\n", res->hits[i].memory.text);
    }
    dm_search_result_free(res);

    printf("\n== profile (current facts; each with the day it became true)\n");
    dm_profile_params pp = { .user_id = DEMO_USER };
    dm_fact *f;
    size_t n;
    if ((rc = dm_profile(db, &pp, &f, &n)))
        return cli_fail(cmd, rc, "profile");
    for (size_t i = 0; i < n; i++) {
        printf("  %-22s %s%s%s  (", f[i].slot, f[i].subject[0] ? f[i].subject : "",
               f[i].subject[0] ? ": " : "", f[i].value);
        print_time(f[i].valid_from_us);
        printf(", confidence %.2f%s)\n", (double)f[i].confidence,
               f[i].derived ? ", derived" : "");
    }
    dm_facts_free(f, n);

    printf("\n== context for the last message (\"Can you suggest a place for dinner "
           "tonight?\")\n\n");
    dm_perceive_params cp = { .user_id = DEMO_USER, .session_id = "s4",
                              .query = "Can you suggest a place for dinner tonight?",
                              .max_tokens = 400, .now_us = now };
    dm_context *c;
    if ((rc = dm_perceive(db, &cp, &c)))
        return cli_fail(cmd, rc, "context");
    fputs(c->text, stdout);
    printf("\n(%u tokens: the profile first, then relevant memories, then the "
           "session's recent turns)\n",
           c->tokens);
    dm_context_free(c);
    return CLI_OK;
}

int cli_cmd_demo(const cli_globals *g, int argc, char **argv)
{
    const char *cmd = "demo";
    static const cli_opt opts[] = { { "query", 'q', true } };
    cli_args a;
    int st = cli_begin(cmd, g, opts, 1, argc, argv, &a);
    if (st != CLI_PROCEED)
        return st;
    const char *query = cli_get(&a, "query");
    if (!query)
        query = "what should I keep in mind when picking a restaurant?";
    cli_globals gg = *g;
    char *tmp = NULL;
    if (!g->has_data) {
        if (!(tmp = cli_make_tmpdir(cmd)))
            return CLI_FAILED;
        gg.data_dir = tmp;
    }
    dm_db *db;
    st = cli_open(&gg, cmd, true, false, &db);
    if (st == CLI_OK) {
        int n = load(db, cmd);
        if (n < 0) {
            st = CLI_FAILED;
        } else {
            printf("remembered %d turns of a conversation with Maya (March 2024), extracting "
                   "facts, events and relations from each\n",
                   n);
            int64_t now;
            dm_time_parse("2024-03-23T20:32:00Z", &now);
            st = show(db, cmd, query, now);
        }
        st = cli_close(cmd, db, st);
    }
    if (tmp) {
        cli_remove_tree(tmp);
        dm_free(tmp);
    }
    return cli_finish_output(cmd, st);
}
