/*
 * testutil.c -- scratch directories and environment helpers for tests.
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
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

size_t tu_http_read_request(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    long want = -1;
    buf[0] = 0;
    while (got + 1 < cap) {
        ssize_t n = read(fd, buf + got, cap - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        buf[got] = 0;
        char *body = strstr(buf, "\r\n\r\n");
        if (body && want < 0) {
            char *cl = strcasestr(buf, "content-length:");
            want = cl ? atol(cl + 15) : 0;
        }
        if (body && (long)(got - (size_t)(body + 4 - buf)) >= want)
            break;
    }
    return got;
}

int tu_http_listen(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t l = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 16) ||
        getsockname(fd, (struct sockaddr *)&a, &l)) {
        close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

bool tu_http_reply_json(int fd, const char *json)
{
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                      strlen(json));
    return write(fd, head, (size_t)hl) == hl &&
           write(fd, json, strlen(json)) == (ssize_t)strlen(json);
}
