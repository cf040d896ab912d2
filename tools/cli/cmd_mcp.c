/* placeholder until the command lands */
#include "cli.h"
const char cli_help_mcp[] = "usage: deltamemory mcp\n";
int cli_cmd_mcp(const cli_globals *g, int argc, char **argv)
{
    (void)g, (void)argc, (void)argv;
    return cli_error("mcp", "not available");
}
