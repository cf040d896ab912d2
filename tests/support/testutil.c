/*
 * testutil.c -- scratch directories and environment helpers for tests.
 */
#include "testutil.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    remove(p);
    return 0;
}

void tu_rmrf(const char *path)
{
    nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

const char *tu_tmpdir(const char *tag)
{
    static char path[4096];
    const char *base = getenv("DM_TEST_TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    mkdir(base, 0755);
    snprintf(path, sizeof path, "%s/%s.%d", base, tag, (int)getpid());
    tu_rmrf(path);
    if (mkdir(path, 0755) != 0) {
        perror(path);
        abort();
    }
    return path;
}

long tu_env_int(const char *name, long def)
{
    const char *e = getenv(name);
    return (e && *e) ? strtol(e, NULL, 10) : def;
}

const char *tu_file_path(const char *dir, const char *name)
{
    static char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}
