/*
 * main.c -- the deltamemory command.
 */
#include <stdio.h>
#include <string.h>

#include "deltamemory.h"

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "version")) {
        printf("deltamemory %s\n", dm_version());
        return 0;
    }
    fprintf(stderr, "usage: deltamemory version\n");
    return 2;
}
