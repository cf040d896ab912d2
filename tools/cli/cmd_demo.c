/* placeholder until the command lands */
#include "cli.h"
const char cli_help_demo[] = "usage: deltamemory demo\n";
int cli_cmd_demo(const cli_globals *g, int argc, char **argv)
{
    (void)g, (void)argc, (void)argv;
    return cli_error("demo", "not available");
}
