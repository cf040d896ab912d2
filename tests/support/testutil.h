/*
 * testutil.h -- shared helpers for the test programs: scratch directories,
 * a seeded random generator, a minimal local HTTP endpoint (for tests that
 * talk to a chat model), and the cmocka includes.
 */
#ifndef DM_TESTUTIL_H
#define DM_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/*
 * tu_tmpdir -- creates a fresh empty directory for this test program under
 * $DM_TEST_TMPDIR (or /tmp) named after `tag` and the process id, and
 * returns its path (static storage, valid until the next call).  Any
 * previous contents are removed first.
 */
const char *tu_tmpdir(const char *tag);

/* tu_rmrf -- removes a directory tree (ignores errors). */
void tu_rmrf(const char *path);

/* tu_http_read_request -- reads one HTTP request from socket fd into buf
 * (cap bytes, NUL-terminated): the headers and as much body as its
 * Content-Length says, or what arrives before the peer stops.  Returns the
 * bytes read.  For the small local servers some tests run. */
size_t tu_http_read_request(int fd, char *buf, size_t cap);
/* tu_http_listen -- a TCP socket listening on 127.0.0.1 at a free port
 * (*port); -1 on failure. */
int tu_http_listen(int *port);
/* tu_http_reply_json -- writes a 200 response with body json to fd
 * ("Connection: close"); false when the write failed. */
bool tu_http_reply_json(int fd, const char *json);

/* A small deterministic PRNG (splitmix64 / xorshift). */
typedef struct tu_rng {
    uint64_t s;
} tu_rng;
static inline void tu_rng_seed(tu_rng *r, uint64_t seed)
{
    r->s = seed * 0x9E3779B97F4A7C15ull + 1;
}
static inline uint64_t tu_rand(tu_rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
/* uniform in [0, n) */
static inline uint64_t tu_randn(tu_rng *r, uint64_t n)
{
    return n ? tu_rand(r) % n : 0;
}

/* tu_env_int -- integer from the environment, or def when unset. */
long tu_env_int(const char *name, long def);

/*
 * tu_vfs_nosync -- the POSIX table with sync and sync_dir doing nothing.
 * For tests of logic rather than durability, where real fsyncs on a busy
 * disk would only make them slow.  Never freed.
 */
struct vfs;
struct vfs *tu_vfs_nosync(void);

/* tu_file_path -- "dir/name" in static storage (valid until next call). */
const char *tu_file_path(const char *dir, const char *name);

#endif
