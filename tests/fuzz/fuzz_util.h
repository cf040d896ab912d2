/*
 * fuzz_util.h -- helpers shared by the fuzz harnesses (tests/fuzz/<t>/).
 *
 * A harness is one function, LLVMFuzzerTestOneInput, linked either with
 * libFuzzer (-DDM_FUZZ=ON, clang) or with replay_main.c, which feeds it
 * the files of a corpus directory.  Everything here must therefore work
 * in both: no libFuzzer API, no cmocka.
 *
 * FUZZ_CHECK is the harness's assertion about the code under test.  It
 * prints what failed and aborts, which libFuzzer turns into a saved crash
 * input and the replay driver into a failed ctest.  It is deliberately not
 * assert(): it must stay active in release builds.
 *
 * Scratch files live in one directory per process, created on first use
 * under $DM_FUZZ_TMPDIR, else $TMPDIR, else /dev/shm (fuzzing writes a
 * file per input, so a RAM file system matters), else /tmp; it is removed
 * at exit.  One directory per process keeps parallel fuzzers (-jobs=N)
 * from overwriting each other's inputs.
 */
#ifndef DM_FUZZ_UTIL_H
#define DM_FUZZ_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"

#define FUZZ_CHECK(cond)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__,     \
                    __LINE__, #cond);                                       \
            abort();                                                        \
        }                                                                   \
    } while (0)

/* Same, with a printf-style explanation. */
#define FUZZ_CHECKF(cond, ...)                                              \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: fuzz check failed: %s: ", __FILE__,     \
                    __LINE__, #cond);                                       \
            fprintf(stderr, __VA_ARGS__);                                   \
            fputc('\n', stderr);                                            \
            abort();                                                        \
        }                                                                   \
    } while (0)

#define FUZZ_MAX_NAMES 8

typedef struct fuzz_tmp {
    char dir[256];
    char paths[FUZZ_MAX_NAMES][512];
    int n_paths;
} fuzz_tmp;

static inline fuzz_tmp *fuzz_tmp_state(void)
{
    static fuzz_tmp t;
    return &t;
}

/* fuzz_tmp_clear -- removes the scratch files (not the directory).
 * Harnesses call it after each input: libFuzzer does not always leave
 * through exit(), so the atexit cleanup below may never run, and what it
 * leaves behind should be an empty directory, not a file per process. */
static inline void fuzz_tmp_clear(void)
{
    fuzz_tmp *t = fuzz_tmp_state();
    for (int i = 0; i < t->n_paths; i++) {
        unlink(t->paths[i]);
        char tmp[520];
        /* Engine code may leave "<name>.tmp" behind (atomic writes). */
        snprintf(tmp, sizeof tmp, "%.511s.tmp", t->paths[i]);
        unlink(tmp);
    }
}

static inline void fuzz_tmp_cleanup(void)
{
    fuzz_tmp *t = fuzz_tmp_state();
    fuzz_tmp_clear();
    if (t->dir[0])
        rmdir(t->dir);
}

static inline const char *fuzz_tmp_base(void)
{
    const char *e = getenv("DM_FUZZ_TMPDIR");
    if (e && *e)
        return e;
    e = getenv("TMPDIR");
    if (e && *e)
        return e;
    if (access("/dev/shm", W_OK | X_OK) == 0)
        return "/dev/shm";
    return "/tmp";
}

/*
 * fuzz_tmp_path -- the path of scratch file `name` in this process's
 * directory (stable for the life of the process).  Aborts when the
 * directory cannot be created: a harness that cannot write its input
 * tests nothing, and must not pass silently.
 */
static inline const char *fuzz_tmp_path(const char *name)
{
    fuzz_tmp *t = fuzz_tmp_state();
    if (!t->dir[0]) {
        const char *base = fuzz_tmp_base();
        mkdir(base, 0755); /* one level, like tests/support's tu_tmpdir */
        snprintf(t->dir, sizeof t->dir, "%.200s/dm-fuzz.XXXXXX", base);
        if (!mkdtemp(t->dir)) {
            perror(t->dir);
            abort();
        }
        atexit(fuzz_tmp_cleanup);
    }
    char want[512];
    snprintf(want, sizeof want, "%.255s/%.200s", t->dir, name);
    for (int i = 0; i < t->n_paths; i++)
        if (strcmp(t->paths[i], want) == 0)
            return t->paths[i];
    FUZZ_CHECK(t->n_paths < FUZZ_MAX_NAMES);
    memcpy(t->paths[t->n_paths], want, sizeof want);
    return t->paths[t->n_paths++];
}

/* fuzz_write_file -- replaces the file at path with [p, p+n).  Aborts on
 * failure (see fuzz_tmp_path). */
static inline void fuzz_write_file(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        perror(path);
        abort();
    }
    const uint8_t *q = p;
    while (n > 0) {
        ssize_t w = write(fd, q, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            perror(path);
            abort();
        }
        q += w;
        n -= (size_t)w;
    }
    close(fd);
}

/* fuzz_file_size -- the size of the file at path; aborts when missing. */
static inline uint64_t fuzz_file_size(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        perror(path);
        abort();
    }
    return (uint64_t)sb.st_size;
}

/* A 64-bit FNV-1a hash, to compare what two passes delivered without
 * keeping copies of every payload.  Start from FUZZ_HASH_INIT.  Reading
 * every byte also lets ASan check that a borrowed slice is in bounds. */
#define FUZZ_HASH_INIT 0xcbf29ce484222325ull
static inline uint64_t fuzz_hash(uint64_t h, const void *p, size_t n)
{
    const uint8_t *q = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ q[i]) * 0x100000001b3ull;
    return h;
}

static inline uint64_t fuzz_hash_u64(uint64_t h, uint64_t v)
{
    return fuzz_hash(h, &v, sizeof v);
}

/*
 * fuzz_drive -- the body of every LLVMFuzzerTestOneInput: runs the input as
 * given, then once more with the checksums `fix` can locate recomputed (so
 * that mutations reach the decoders behind the CRCs), removes scratch
 * files, and fails when dm_malloc'd memory leaked.
 */
static inline int fuzz_drive(const uint8_t *data, size_t size,
                             void (*run)(const uint8_t *, size_t),
                             void (*fix)(uint8_t *, size_t))
{
    int64_t heap_before = alloc_bytes_in_use();
    run(data, size);

    uint8_t *fixed = malloc(size ? size : 1);
    FUZZ_CHECK(fixed != NULL);
    if (size)
        memcpy(fixed, data, size);
    fix(fixed, size);
    if (size && memcmp(fixed, data, size) != 0)
        run(fixed, size);
    free(fixed);
    fuzz_tmp_clear();

    FUZZ_CHECKF(alloc_bytes_in_use() == heap_before,
                "%lld dm_malloc'd bytes leaked",
                (long long)(alloc_bytes_in_use() - heap_before));
    return 0;
}

#endif
