/* placeholder until the command lands */
#include "cli.h"
const char cli_help_keys[] = "usage: deltamemory keys\n";
int cli_cmd_keys(const cli_globals *g, int argc, char **argv)
{
    (void)g, (void)argc, (void)argv;
    return cli_error("keys", "not available");
}
