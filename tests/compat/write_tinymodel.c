/*
 * write_tinymodel.c -- writes the tests' tiny embedding model (see
 * tests/support/tinymodel.h) to the path given, so that the compatibility
 * tests can start the real server binary without the 34 MB model:
 *     write_tinymodel OUT.dmm
 */
#include <stdio.h>

#include "tinymodel.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: write_tinymodel OUT.dmm\n");
        return 2;
    }
    int rc = tm_build(argv[1], TM_DEFAULT_NAME, TM_DEFAULT_DIM, TM_DEFAULT_SEED);
    if (rc) {
        fprintf(stderr, "write_tinymodel: %s: %s\n", argv[1], dm_errname(rc));
        return 1;
    }
    return 0;
}
