/*
 * testutil.c -- scratch directories and environment helpers for tests.
 */
#include "testutil.h"

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "os/vfs.h"

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

static int nosync(vfs *v, vfs_file *f)
{
    (void)v;
    (void)f;
    return 0;
}

static int nosync_dir(vfs *v, const char *d)
{
    (void)v;
    (void)d;
    return 0;
}

static vfs nosync_table;

static void nosync_init(void)
{
    nosync_table = *vfs_posix();
    nosync_table.name = "posix-nosync";
    nosync_table.sync = nosync;
    nosync_table.sync_dir = nosync_dir;
}

vfs *tu_vfs_nosync(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, nosync_init);
    return &nosync_table;
}
