/*
 * embed.h -- text embedding providers.
 *
 * An embedder turns texts into dense float vectors of a fixed dimension.
 * Two providers exist:
 *
 *   builtin  the static word-vector model shipped as a converted file
 *            (format in docs/format.md, "Embedding model file"): sentence
 *            vector = SIF-weighted mean of the word vectors of the text's
 *            tokens (tokenize.h), optionally minus the common component,
 *            L2-normalized.  A text with no known word yields the zero
 *            vector.  Embedding a sentence takes microseconds.
 *   http     any OpenAI-compatible POST {base_url}/embeddings endpoint
 *            (Ollama, llama.cpp server, vLLM, OpenAI) through libcurl, with
 *            batching, timeouts and retries.  Vectors are L2-normalized.
 *
 * Every embedder has a name (recorded in the database so that a database is
 * never searched with vectors of another model) and a dimension.
 * Thread safety: embedder_embed may be called from many threads at once on
 * one embedder.  open/close are not concurrent with anything else.
 */
#ifndef DM_EMBED_EMBED_H
#define DM_EMBED_EMBED_H

#include <stddef.h>
#include <stdint.h>

typedef struct embedder embedder;

#define EMBED_NAME_MAX 160

/*
 * embed_builtin_open -- map the converted model file at path.
 * The embedder's name is "builtin:" followed by the model name stored in
 * the file (e.g. "builtin:glove-6b-100d-int8").
 * Errors: DM_ENOTFOUND (no file; message says how to build it: `make
 * model`), DM_ECORRUPT (bad magic, version, size or checksum; message names
 * the file and offset), DM_EVERSION, DM_EIO, DM_ENOMEM.
 */
int embed_builtin_open(const char *path, embedder **out);

typedef struct embed_http_config {
    const char *base_url;    /* e.g. "http://127.0.0.1:11434/v1" (required) */
    const char *model;       /* model name sent in the request (required) */
    const char *api_key_env; /* environment variable holding the API key;
                                NULL = "OPENAI_API_KEY"; unset = no key */
    uint32_t dim;            /* expected dimension; 0 = learn from the first
                                reply (one probe request at open) */
    uint32_t batch;          /* texts per request; 0 = 64 */
    uint32_t timeout_ms;     /* per request; 0 = 30000 */
    uint32_t retries;        /* extra attempts on 429/5xx/network errors
                                with exponential backoff; 0 = none */
    int send_dimensions;     /* nonzero: send "dimensions": dim */
} embed_http_config;

/*
 * embed_http_open -- an embedder for an OpenAI-compatible endpoint.  The
 * name is "http:" + model.  When cfg->dim is 0, one probe request learns
 * the dimension.
 * Errors: DM_EINVAL (missing base_url/model; message says which),
 * DM_EIO (probe failed: message has the URL and HTTP status / curl error),
 * DM_ENOMEM.
 */
int embed_http_open(const embed_http_config *cfg, embedder **out);

/* embedder_close -- release; NULL does nothing. */
void embedder_close(embedder *e);

/* The provider's name (borrowed, valid until close) and dimension. */
const char *embedder_name(const embedder *e);
uint32_t embedder_dim(const embedder *e);

/*
 * embedder_embed -- embed n texts; out receives n * dim floats (caller's
 * storage), each row L2-normalized or all zero.
 * texts[i] has lens[i] bytes of UTF-8 (not necessarily NUL-terminated).
 * Errors: DM_EINVAL (invalid UTF-8: message has the text index and byte
 * offset), DM_EIO (http: status, body excerpt, after retries),
 * DM_ECANCELED (http: timeout after retries), DM_ENOMEM.
 * On error the contents of out are unspecified.
 */
int embedder_embed(embedder *e, const char *const *texts, const size_t *lens,
                   size_t n, float *out);

/*
 * embedder_known_words -- builtin only: how many tokens of the text are in
 * the vocabulary (0 for http, which knows every text).  For diagnostics and
 * tests.
 */
uint32_t embedder_known_words(embedder *e, const char *text, size_t len);

#endif
