/*
 * cmd_keys.c -- `deltamemory keys create|list|revoke`: the HTTP server's
 * API keys, kept in DIR/keys.json beside the database (src/server/keys.h,
 * docs/format.md "API keys").  The database itself is not opened, so the
 * commands work while a server runs; the server sees the change within a
 * second.
 *
 * JSON shapes (stable; scripts rely on them):
 *   keys create --json  {"id", "tenant", "label", "secret"}
 *   keys list --json    {"keys": [{"id", "tenant", "label", "created",
 *                       "revoked"}]}   (revoked: null while the key works)
 *   keys revoke --json  {"id", "revoked"}
 * The secret is printed by create only; it is not stored anywhere.
 */
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "cli.h"
#include "server/keys.h"

#define N_OPTS(a) (sizeof(a) / sizeof((a)[0]))

const char cli_help_keys[] =
    "usage: deltamemory [global options] keys create --tenant T [--label L]\n"
    "                   [--json]\n"
    "       deltamemory [global options] keys list [--json]\n"
    "       deltamemory [global options] keys revoke --id ID [--json]\n"
    "\n"
    "Manages the API keys of `deltamemory serve`, kept in keys.json in the\n"
    "database directory (--data).  Each key names a tenant: a request that\n"
    "sends the key (X-API-Key: KEY, or Authorization: Bearer KEY or Token\n"
    "KEY) reads and writes that tenant's memories only.  Without any key the\n"
    "server serves every request as the tenant \"default\" and listens on\n"
    "loopback only; once it has had a key it requires one until restarted.\n"
    "Only a salted SHA-256 of each key is stored.  A running server picks up\n"
    "a change within a second; the database need not be closed.\n"
    "\n"
    "  create   makes a key for tenant T and prints its id and its secret,\n"
    "           dm_<id>_<43 characters>.  The secret is shown this once and\n"
    "           cannot be recovered; keep it.\n"
    "  list     prints every key: id, tenant, created, revoked (or \"-\")\n"
    "           and label.  Never the secrets.\n"
    "  revoke   refuses key ID from now on (it stays listed as revoked).\n"
    "\n"
    "      --tenant T       the tenant of the new key: 1 to 127 bytes of\n"
    "                       UTF-8, no control character, no '/' (required\n"
    "                       by create)\n"
    "      --label L        a note for the listing, e.g. who holds the key\n"
    "      --id ID          the key to revoke, 12 hex digits (required by\n"
    "                       revoke)\n"
    "      --json           create: {\"id\", \"tenant\", \"label\", \"secret\"};\n"
    "                       list: {\"keys\": [{\"id\", \"tenant\", \"label\",\n"
    "                       \"created\", \"revoked\"}]}; revoke: {\"id\",\n"
    "                       \"revoked\"}\n";

/* A refusal of the arguments themselves (a bad tenant or id) is a usage
 * error; anything else is a failed operation. */
static int report(const char *cmd, int rc, const char *what)
{
    if (rc == DM_EINVAL)
        return cli_usage(cmd, "%s", dm_errmsg());
    return cli_fail(cmd, rc, "%s", what);
}

static const cli_opt create_opts[] = {
    { "tenant", 0, true },
    { "label", 0, true },
};

static int keys_create(const char *cmd, const cli_globals *g, int argc, char **argv)
{
    cli_args a;
    const char *tenant;
    int st = cli_begin(cmd, g, create_opts, N_OPTS(create_opts), argc, argv, &a);
    if (st != CLI_PROCEED)
        return st;
    if ((st = cli_require(cmd, &a, "tenant", &tenant)) != CLI_OK)
        return st;
    const char *label = cli_get(&a, "label");
    char *secret = NULL, id[HTTP_KEY_ID_LEN + 1];
    int rc = http_keys_create(g->data_dir, tenant, label, &secret, id);
    if (rc != DM_OK)
        return report(cmd, rc, "cannot create the key");
    if (a.is_json) {
        st = cli_print_json(cmd, json_pack("{s:s, s:s, s:s?, s:s}", "id", id, "tenant", tenant,
                                           "label", label, "secret", secret));
    } else {
        printf("id:     %s\ntenant: %s\nsecret: %s\n", id, tenant, secret);
        printf("The secret is shown only this once: it is not stored anywhere.\n");
    }
    dm_free(secret);
    return cli_finish_output(cmd, st);
}

static int keys_list(const char *cmd, const cli_globals *g, int argc, char **argv)
{
    cli_args a;
    int st = cli_begin(cmd, g, NULL, 0, argc, argv, &a);
    if (st != CLI_PROCEED)
        return st;
    json_t *l = NULL;
    int rc = http_keys_list(g->data_dir, &l);
    if (rc != DM_OK)
        return report(cmd, rc, "cannot read the keys");
    if (a.is_json)
        return cli_finish_output(cmd, cli_print_json(cmd, l));
    size_t i;
    json_t *k;
    json_array_foreach (json_object_get(l, "keys"), i, k) {
        const char *revoked = json_string_value(json_object_get(k, "revoked"));
        const char *label = json_string_value(json_object_get(k, "label"));
        bool has_label = label && *label;
        printf("%s  %-20s  %s  %-*s", json_string_value(json_object_get(k, "id")),
               json_string_value(json_object_get(k, "tenant")),
               json_string_value(json_object_get(k, "created")), has_label ? 20 : 0,
               revoked ? revoked : "-");
        if (has_label) {
            fputs("  ", stdout);
            cli_print_oneline(stdout, label, strlen(label));
        }
        putchar('\n');
    }
    json_decref(l);
    return cli_finish_output(cmd, CLI_OK);
}

static const cli_opt revoke_opts[] = {
    { "id", 0, true },
};

static int keys_revoke(const char *cmd, const cli_globals *g, int argc, char **argv)
{
    cli_args a;
    const char *id;
    int st = cli_begin(cmd, g, revoke_opts, N_OPTS(revoke_opts), argc, argv, &a);
    if (st != CLI_PROCEED)
        return st;
    if ((st = cli_require(cmd, &a, "id", &id)) != CLI_OK)
        return st;
    int rc = http_keys_revoke(g->data_dir, id);
    if (rc != DM_OK)
        return report(cmd, rc, "cannot revoke the key");
    /* Read the time back so that a repeated revoke reports the first. */
    json_t *l = NULL, *when = NULL;
    if ((rc = http_keys_list(g->data_dir, &l)) != DM_OK)
        return cli_fail(cmd, rc, "the key is revoked, but the keys cannot be read back");
    size_t i;
    json_t *k;
    json_array_foreach (json_object_get(l, "keys"), i, k)
        if (!strcmp(json_string_value(json_object_get(k, "id")), id))
            when = json_object_get(k, "revoked");
    if (a.is_json)
        st = cli_print_json(cmd, json_pack("{s:s, s:O?}", "id", id, "revoked", when));
    else
        printf("revoked %s at %s\n", id, json_is_string(when) ? json_string_value(when) : "?");
    json_decref(l);
    return cli_finish_output(cmd, st);
}

int cli_cmd_keys(const cli_globals *g, int argc, char **argv)
{
    const char *cmd = "keys";
    /* --help wins over anything else on the line, as for every command. */
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return cli_print_help(cli_find_command(cmd));
    if (argc < 1)
        return cli_usage(cmd, "name the action: keys create|list|revoke");
    if (!strcmp(argv[0], "create"))
        return keys_create(cmd, g, argc - 1, argv + 1);
    if (!strcmp(argv[0], "list"))
        return keys_list(cmd, g, argc - 1, argv + 1);
    if (!strcmp(argv[0], "revoke"))
        return keys_revoke(cmd, g, argc - 1, argv + 1);
    return cli_usage(cmd, "unknown action \"%s\" (known: create, list, revoke)", argv[0]);
}
