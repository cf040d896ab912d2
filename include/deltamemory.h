/*
 * deltamemory.h -- the DeltaMemory public API.
 *
 * This is the only installed header.  Every exported symbol starts with
 * dm_ and every constant with DM_.  Functions that can fail return int:
 * DM_OK (0) on success or one of the negative DM_E* codes below.
 *
 * A database (dm_db) holds the memories of many users, each identified by
 * a tenant and a user id.  Every call that reads or writes memories names
 * its user; a call never sees another user's (or tenant's) memories.
 *
 * Conventions that hold for every function below:
 *   - Strings are NUL-terminated UTF-8 unless a length is given.
 *   - Times are microseconds since the Unix epoch, UTC (int64_t *_us).
 *   - Out-parameters are set to NULL / zero when a call fails.
 *   - Objects returned through an out-parameter belong to the caller and are
 *     released with the matching dm_*_free; dm_*_free(NULL) does nothing.
 *   - On failure the calling thread's last error message (dm_errmsg) says
 *     what was wrong and where.
 *   - Thread safety: a dm_db may be used from any number of threads at once.
 *     Writes to one user are serialized; reads run concurrently; different
 *     users never wait for each other.  dm_close must not race other calls.
 */
#ifndef DELTAMEMORY_H
#define DELTAMEMORY_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(DM_BUILDING_LIBRARY)
#define DM_API __attribute__((visibility("default")))
#else
#define DM_API
#endif

#define DM_VERSION_MAJOR 0
#define DM_VERSION_MINOR 1
#define DM_VERSION_PATCH 0
#define DM_VERSION_STRING "0.1.0"

/*
 * The error list: name, value, message.  Values are stable and part of the
 * ABI; new codes are only ever appended.
 */
#define DM_ERRNO_MAP(X)                                                        \
    X(OK, 0, "success")                                                        \
    X(ENOTFOUND, -1, "not found")                                              \
    X(EEXISTS, -2, "already exists")                                           \
    X(EINVAL, -3, "invalid argument")                                          \
    X(ENOMEM, -4, "out of memory")                                             \
    X(EIO, -5, "input/output error")                                           \
    X(ENOSPC, -6, "no space left on device")                                   \
    X(ECORRUPT, -7, "data is corrupt")                                         \
    X(EBUSY, -8, "resource busy")                                              \
    X(ECLOSED, -9, "handle is closed")                                         \
    X(ETOOBIG, -10, "value too large")                                         \
    X(ECANCELED, -11, "operation canceled")                                    \
    X(EVERSION, -12, "unsupported format version")

#define DM_ERR_ENUM_(name, val, msg) DM_##name = val,
enum dm_error_code { DM_ERRNO_MAP(DM_ERR_ENUM_) };
#undef DM_ERR_ENUM_

/*
 * dm_strerror -- a static English description of an error code.
 * Returns a pointer to static storage; never NULL ("unknown error" for a
 * code not in the list).  Thread-safe.
 */
DM_API const char *dm_strerror(int code);

/*
 * dm_errname -- the symbolic name of an error code, e.g. "DM_ECORRUPT".
 * Returns static storage; never NULL ("DM_EUNKNOWN" for unknown codes).
 * Thread-safe.
 */
DM_API const char *dm_errname(int code);

/*
 * dm_version -- the library version as "MAJOR.MINOR.PATCH".
 * Returns static storage.  Thread-safe.
 */
DM_API const char *dm_version(void);

/*
 * dm_errmsg -- the message of the last error on the calling thread, e.g.
 * "text is 40000 bytes; the limit is 32768".  Static per-thread storage,
 * valid until the thread's next failing call; never NULL.
 */
DM_API const char *dm_errmsg(void);

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------ */
/* Identifiers and times                                               */
/* ------------------------------------------------------------------ */

/*
 * A memory id: 16 bytes, unique within a database and ordered by creation
 * (a UUID version 7: 48 bits of milliseconds, then a counter and random
 * bits).  Its text form is the usual 36-character lowercase UUID.
 */
typedef struct dm_id {
    uint8_t bytes[16];
} dm_id;

#define DM_ID_STRLEN 36

/* dm_id_format -- write the 36-character form and a NUL into out. */
DM_API void dm_id_format(const dm_id *id, char out[DM_ID_STRLEN + 1]);

/* dm_id_parse -- parse the 36-character form (case-insensitive).
 * Errors: DM_EINVAL (message names the offending character). */
DM_API int dm_id_parse(const char *s, dm_id *out);

/*
 * dm_time_parse -- parse an ISO 8601 date or date-time into microseconds
 * since the epoch: "2023-05-08", "2023-05-08T13:56", "2023-05-08T13:56:00",
 * fractional seconds, and a zone ("Z", "+02:00"; none = UTC).
 * Errors: DM_EINVAL (message names the position).
 */
DM_API int dm_time_parse(const char *s, int64_t *out_us);

/* dm_time_format -- "YYYY-MM-DDTHH:MM:SS[.ffffff]Z" (fraction only when
 * nonzero) into out, which has room for 40 bytes. */
DM_API void dm_time_format(int64_t us, char out[40]);

/* ------------------------------------------------------------------ */
/* Opening a database                                                  */
/* ------------------------------------------------------------------ */

typedef struct dm_db dm_db;

typedef enum dm_sync_mode {
    DM_SYNC_NONE = 0,   /* never fsync: fastest, loses the OS page cache on power cut */
    DM_SYNC_BATCH = 1,  /* fsync every sync_interval_ms; a write returns after its fsync */
    DM_SYNC_ALWAYS = 2, /* fsync per write group (group commit across users) */
} dm_sync_mode;

typedef enum dm_embedder_kind {
    DM_EMBED_BUILTIN = 0, /* the built-in static word-vector model */
    DM_EMBED_HTTP = 1,    /* an OpenAI-compatible /v1/embeddings endpoint */
} dm_embedder_kind;

typedef struct dm_options {
    int create_if_missing;      /* default 1 */
    dm_sync_mode sync;          /* default DM_SYNC_BATCH */
    uint32_t sync_interval_ms;  /* DM_SYNC_BATCH period; default 2 */
    size_t memtable_bytes;      /* flush threshold; default 16 MB */
    size_t block_cache_bytes;   /* default 64 MB */
    int pread_tables;           /* nonzero: read the table files with pread
                                   into the block cache instead of mapping
                                   them.  The process's resident set then
                                   holds no pages of the tables, only the
                                   bounded block cache (the kernel's page
                                   cache still keeps what it keeps), at the
                                   cost of a system call and a copy per
                                   block read the cache misses; blocks
                                   stored uncompressed, read in place from
                                   the mapping otherwise, then take cache
                                   room too.  Default 0: mapped. */
    size_t max_text_bytes;      /* longest accepted memory text; default 32 KB */
    size_t max_metadata_bytes;  /* longest metadata JSON; default 64 KB */

    dm_embedder_kind embedder;  /* default DM_EMBED_BUILTIN */
    const char *model_path;     /* builtin model file; NULL = $DM_MODEL, else
                                   models/glove-6b-100d.dmm beside the
                                   executable's ../.. or the working dir */
    const char *http_base_url;  /* http: e.g. "http://127.0.0.1:11434/v1" */
    const char *http_model;     /* http: model name */
    const char *http_api_key_env; /* http: env var with the key; NULL = OPENAI_API_KEY */
    uint32_t http_dim;          /* http: 0 = ask the endpoint */
    uint32_t http_batch;        /* http: texts per request; 0 = 64 */
    uint32_t http_timeout_ms;   /* http: 0 = 30000 */
    uint32_t http_retries;      /* http: default 2 */
    int reembed;                /* nonzero: if the database was embedded with
                                   another model, re-embed every memory at open
                                   instead of refusing */

    uint32_t hnsw_m;            /* 0 = 16 */
    uint32_t hnsw_ef_construction; /* 0 = 128 */
    uint32_t hnsw_ef_search;    /* 0 = 64 */
    uint32_t flat_threshold;    /* exact vector scan below this many memories
                                   per user; 0 = the measured default */
    int vectors_f32;            /* nonzero: keep embeddings as float32 on disk
                                   and in the vector index; 0 (default): IEEE
                                   half precision, half the bytes (relative
                                   error <= 2^-11 a component, cosine
                                   rankings unchanged in practice).  Each
                                   record says how it is stored, so the
                                   setting may change between opens. */
    float bm25_k1;              /* default 0.8 */
    float bm25_b;               /* default 0.5 (memories are short: less length
                                   normalization; docs/retrieval.md) */
    uint32_t checkpoint_ops;    /* index changes per user between index
                                   checkpoints; default 1024 */
    float refresh_boost;        /* a search result's salience is lifted by this
                                   share of the way to 1; default 0.2;
                                   negative = never refresh */
    uint32_t refresh_interval_s; /* a memory recalled again within this many
                                   seconds of its last refresh is not
                                   refreshed again: a burst of recalls counts
                                   once, spaced recalls each count (and
                                   access_count counts refreshes); default
                                   3600; 0 = every recall */
    uint32_t refresh_rate;      /* refreshes written per second at most (each
                                   rewrites a record, which costs the storage
                                   engine what an add costs it); recalls
                                   beyond it wait in the bounded refresh queue,
                                   whose oldest are dropped when it is full
                                   (dm_stats.refreshes_dropped); default
                                   2000; 0 = no bound */
    float prune_threshold;      /* memories whose current salience falls
                                   below this are archived by the background
                                   decay pass and dm_decay; default 0.05 */
    uint32_t decay_interval_s;  /* the background decay pass over loaded users
                                   runs this often; default 3600; 0 = never */
    float decay_rates[3];       /* default decay rate per day of new memories,
                                   by kind (episodic, fact, summary), where no
                                   user or tenant rate is set; default 0.01,
                                   0, 0.005 */

    /* A chat model (any OpenAI-compatible /chat/completions endpoint:
     * Ollama, llama.cpp server, vLLM, OpenAI), optional.  With one,
     * dm_remember extracts facts with it (falling back to the built-in
     * extractor on invalid output) and dm_chat answers with it. */
    const char *llm_base_url;   /* e.g. "http://127.0.0.1:11434/v1"; NULL =
                                   none: the built-in extractor only */
    const char *llm_model;      /* required with llm_base_url */
    const char *llm_api_key_env; /* env var with the key; NULL = DM_LLM_API_KEY */
    uint32_t llm_timeout_ms;    /* per attempt; 0 = 30000 */
    uint32_t llm_max_calls;     /* extraction calls per turn; 0 = 2 */

    /* Extraction runs after the write (docs/cognition.md): stored turns
     * queue for a background thread.  Past this many queued turns in all
     * (or 1,024 of one user) a writer extracts its own user's turns
     * before its add returns.  0 = 16384. */
    uint32_t extract_queue_max;

    /* Memory for the users' indexes.  A user's indexes (documents, vector
     * and BM25 index, facts and graph) are loaded on its first use and then
     * stay in memory.  While either bound below is set, a background pass
     * (once a second with index_memory_bytes, else every user_idle_s / 8
     * seconds) unloads
     *   - every user not used for user_idle_s seconds, and
     *   - while the loaded indexes hold more than index_memory_bytes
     *     (dm_stats.index_bytes), the least recently used users, until they
     *     hold at most 90 % of it.
     * A user whose checkpoint is due (checkpoint_ops) is checkpointed as it
     * is unloaded, so its next use loads quickly; nothing is lost, since
     * the records are the truth.  A user in use (its lock held or awaited)
     * is never unloaded, so the bound may be overrun by the users in use. */
    uint32_t user_idle_s;       /* default 900; 0 = never for idleness */
    size_t index_memory_bytes;  /* default 0 = no bound */

    /* Memory for the mapped tables.  Table pages a read touched stay in the
     * process's resident set until the table is compacted away, so as the
     * data grows, so does the resident set, though the kernel may take
     * those pages back at any time.  With this bound set, once a second,
     * when the process's resident file-backed pages (the kernel's count,
     * /proc/self/statm: the tables, the embedding model's mapping and the
     * program's own code) exceed it, the engine gives back the pages of
     * the table blocks read longest ago, down to 90 % of the bound
     * (dm_stats.n_map_drops counts these passes).  The data stays in the
     * files and, while the kernel keeps it, in the page cache: the next
     * read of such a page maps it again with a minor fault, not a disk
     * read.  Nothing to do with pread_tables.  0 = no bound (default). */
    size_t map_memory_bytes;
} dm_options;

/* dm_options_init -- fill o with the defaults above. */
DM_API void dm_options_init(dm_options *o);

/*
 * dm_open -- open (or create) the database in directory path.
 * options NULL = defaults.  Opening replays the write-ahead log; the
 * per-user indexes are loaded from their checkpoints when a user is first
 * used.  The embedding model's name and dimension are recorded in the
 * database at creation; opening with a different model fails with
 * DM_EINVAL and a message naming both models and the re-embed command,
 * unless options->reembed is set.
 * Errors: DM_EINVAL (bad option; model mismatch), DM_ENOTFOUND (no
 * database and create_if_missing 0; model file missing), DM_EBUSY (another
 * process has it open), DM_ECORRUPT, DM_EVERSION, DM_EIO, DM_ENOMEM.
 * The caller closes *out with dm_close.
 */
DM_API int dm_open(const char *path, const dm_options *options, dm_db **out);

/*
 * dm_close -- checkpoint the indexes of users changed since their last
 * checkpoint, flush, and release everything.  Returns the first error met
 * (the database is closed regardless).  NULL does nothing.
 */
DM_API int dm_close(dm_db *db);

/* ------------------------------------------------------------------ */
/* Memories                                                            */
/* ------------------------------------------------------------------ */

typedef enum dm_memory_kind {
    DM_KIND_EPISODIC = 0, /* something said or done */
    DM_KIND_FACT = 1,     /* a fact about the user */
    DM_KIND_SUMMARY = 2,  /* a summary of other memories */
} dm_memory_kind;

typedef enum dm_memory_state {
    DM_STATE_ACTIVE = 0,
    DM_STATE_ARCHIVED = 1, /* faded below the salience threshold; kept */
} dm_memory_state;

#define DM_DEFAULT_TENANT "default"
#define DM_MAX_NAME_LEN 255 /* tenant, user, agent and session ids, role */

/*
 * One memory as returned by dm_get, dm_list and dm_search.  Every pointer
 * is owned by the structure that contains it.
 */
typedef struct dm_memory {
    dm_id id;
    char *tenant;
    char *user_id;
    char *agent_id;       /* NULL if none */
    char *session_id;     /* NULL if none */
    char *role;           /* "user", "assistant", ... */
    char *text;           /* NUL-terminated */
    size_t text_len;
    char *metadata;       /* a JSON object, "{}" if none */
    int64_t event_time_us;  /* when it happened or was said */
    int64_t record_time_us; /* when it was stored */
    float salience;       /* stored salience in [0, 1] */
    float decay_rate;     /* per day */
    uint32_t access_count;
    int64_t last_access_us;
    dm_memory_kind kind;
    dm_memory_state state;
    float *embedding;     /* dim floats, or NULL unless asked for */
    uint32_t dim;
} dm_memory;

/* dm_memory_free -- free a memory returned by dm_get.  NULL does nothing. */
DM_API void dm_memory_free(dm_memory *m);

/*
 * What dm_add stores.  Initialize with dm_add_params_init, then set fields.
 * Only user_id and text are required.  The import fields (id,
 * record_time_us, embedding, ...) let an export be restored exactly; leave
 * them zero otherwise.
 */
typedef struct dm_add_params {
    const char *tenant;      /* NULL = DM_DEFAULT_TENANT */
    const char *user_id;     /* required, 1..255 bytes */
    const char *agent_id;    /* optional */
    const char *session_id;  /* optional */
    const char *role;        /* NULL = "user" */
    const char *text;        /* required, non-empty, valid UTF-8 */
    size_t text_len;         /* 0 = strlen(text) */
    int64_t event_time_us;   /* 0 = now */
    const char *metadata;    /* a JSON object; NULL = {} */
    int no_extract;          /* nonzero: store the text only.  By default
                                the text's facts, events and relations are
                                extracted after the add returns, as for a
                                dm_remember turn (dm_sync_extraction waits) */
    float salience;          /* initial salience in [0, 1]; default 1 */
    float decay_rate;        /* per day, >= 0; negative (the init value) =
                                the default for its kind, user and tenant
                                (dm_set_decay_rate, dm_options.decay_rates) */
    dm_memory_kind kind;     /* default DM_KIND_EPISODIC */
    /* import only */
    const dm_id *id;         /* keep this id (must be unused); NULL = new */
    int64_t record_time_us;  /* 0 = now */
    uint32_t access_count;
    int64_t last_access_us;
    dm_memory_state state;
    const float *embedding;  /* a stored embedding of the database's model
                                (dim floats); NULL = embed the text */
    uint32_t dim;
} dm_add_params;

DM_API void dm_add_params_init(dm_add_params *p);

/*
 * dm_add -- validate, embed, store durably (per the sync mode) and index
 * one memory; it is searchable when the call returns.  Unless
 * p->no_extract, its text is queued for extraction (facts, events,
 * relations: see dm_remember), which runs after the call returns, in the
 * background, in the order the user's memories were stored; readers of
 * facts see it (dm_profile and the others extract what is queued first).
 * *out_id (may be NULL) receives the id.
 * Errors: DM_EINVAL (missing user, empty text, invalid UTF-8 with its
 * offset, metadata not a JSON object with the parse position, a name over
 * 255 bytes, salience outside [0,1], wrong embedding dim), DM_ETOOBIG (text
 * or metadata over the limit), DM_EEXISTS (import id in use), DM_EIO /
 * DM_ECANCELED (embedding endpoint failed), DM_EIO / DM_ENOSPC (storage;
 * after a failed write the database refuses writes until reopened),
 * DM_ENOMEM.  Nothing is stored on error.
 */
DM_API int dm_add(dm_db *db, const dm_add_params *p, dm_id *out_id);

/*
 * dm_add_batch -- add n memories (any users) with one embedding call and
 * one write per user.  All are validated before anything is stored: on a
 * validation error nothing is stored and the message names the index.
 * out_ids (may be NULL) has room for n ids.  Errors: as dm_add.
 */
DM_API int dm_add_batch(dm_db *db, const dm_add_params *ps, size_t n,
                        dm_id *out_ids);

/*
 * The user a call acts for.  tenant NULL = DM_DEFAULT_TENANT.  For dm_get,
 * dm_update and dm_delete, a NULL scope (or user_id NULL) means "whichever
 * user owns the id" (administrative access); with a user, an id of another
 * user is DM_ENOTFOUND.
 */
typedef struct dm_scope {
    const char *tenant;
    const char *user_id;
} dm_scope;

/* Flags for dm_get / dm_list / dm_search. */
#define DM_WITH_EMBEDDING 0x1 /* fill dm_memory.embedding */
#define DM_WITH_ARCHIVED 0x2  /* include archived memories */

/*
 * dm_get -- the memory with this id.  *out is freed with dm_memory_free.
 * Errors: DM_ENOTFOUND (no such id for this scope), DM_EINVAL, DM_EIO,
 * DM_ECORRUPT, DM_ENOMEM.
 */
DM_API int dm_get(dm_db *db, const dm_scope *scope, const dm_id *id,
                  unsigned flags, dm_memory **out);

/*
 * dm_update -- replace the text (re-embedded and re-indexed) and/or the
 * metadata (a JSON object replacing the old one) of a memory.  NULL keeps
 * the field; both NULL is DM_EINVAL.  Event time, id and user stay.
 * Errors: as dm_add, and DM_ENOTFOUND.
 */
DM_API int dm_update(dm_db *db, const dm_scope *scope, const dm_id *id,
                     const char *text, const char *metadata);

/* dm_delete -- delete a memory from storage and every index.
 * Errors: DM_ENOTFOUND, DM_EINVAL, DM_EIO, DM_ENOSPC, DM_ENOMEM. */
DM_API int dm_delete(dm_db *db, const dm_scope *scope, const dm_id *id);

/*
 * dm_erase_user -- delete every record of the user (memories, indexes,
 * checkpoints) and compact the key ranges that held its texts, embeddings
 * and index terms, so that those bytes leave the disk before the call
 * returns.  The id-index entries (id -> user and time) and the user record
 * leave with later compactions.  *n_erased (may be NULL) receives the
 * number of memories erased.  An erase interrupted by a crash is completed
 * at the next use of the user.
 * Errors: DM_ENOTFOUND (unknown user), DM_EINVAL, DM_EIO, DM_ENOSPC,
 * DM_ENOMEM.
 */
DM_API int dm_erase_user(dm_db *db, const char *tenant, const char *user_id,
                         uint64_t *n_erased);

/*
 * dm_set_state -- archive a memory (it leaves default search and listing
 * but is kept, and DM_WITH_ARCHIVED finds it) or restore an archived one
 * (DM_STATE_ACTIVE).  Restoring also refreshes its salience to its stored
 * value as of now.  Errors: DM_ENOTFOUND, DM_EINVAL, DM_EIO, DM_ENOSPC,
 * DM_ENOMEM.
 */
DM_API int dm_set_state(dm_db *db, const dm_scope *scope, const dm_id *id,
                        dm_memory_state state);

/*
 * dm_decay -- archive the live memories of a user whose current salience
 * at now_us (0 = now) -- stored * e^(-decay_rate * days since the last
 * refresh) -- is below threshold (0 = dm_options.prune_threshold).  Only
 * memories of kind episodic fade; facts and summaries stay.  Nothing is
 * deleted.  user_id NULL: every user of the tenant.  *n_archived (may be
 * NULL) receives the number archived.  The background pass does the same
 * for loaded users every dm_options.decay_interval_s.
 * Errors: DM_ENOTFOUND (unknown user), DM_EINVAL, DM_EIO, DM_ENOSPC,
 * DM_ENOMEM.
 */
DM_API int dm_decay(dm_db *db, const char *tenant, const char *user_id, int64_t now_us,
                    float threshold, uint64_t *n_archived);

/*
 * dm_set_decay_rate -- the default decay rate (per day, >= 0) of the new
 * memories of a kind, for one user (user_id set) or for every user of a
 * tenant (user_id NULL); rate < 0 removes that setting.  A memory added
 * with dm_add_params.decay_rate left negative takes the user's rate, else
 * the tenant's, else dm_options.decay_rates[kind].  Stored durably (one
 * small record; docs/format.md); memories already stored keep theirs.
 * Errors: DM_EINVAL (bad name or kind, rate not finite), DM_EIO, DM_ENOSPC,
 * DM_ENOMEM.
 */
DM_API int dm_set_decay_rate(dm_db *db, const char *tenant, const char *user_id,
                             dm_memory_kind kind, float rate);

/* ------------------------------------------------------------------ */
/* Listing and search                                                  */
/* ------------------------------------------------------------------ */

typedef struct dm_list_params {
    const char *tenant;     /* NULL = DM_DEFAULT_TENANT */
    const char *user_id;    /* required */
    int64_t from_us;        /* event time >= from_us; 0 = unbounded */
    int64_t to_us;          /* event time <  to_us;  0 = unbounded */
    uint32_t limit;         /* 0 = 100; at most 10,000 */
    const char *cursor;     /* from a previous page's next_cursor; NULL = start */
    unsigned flags;         /* DM_WITH_* */
} dm_list_params;

typedef struct dm_list_result {
    dm_memory *items;       /* newest event time first (ties: newest id) */
    size_t n;
    char *next_cursor;      /* NULL on the last page */
} dm_list_result;

/*
 * dm_list -- one page of a user's memories, newest first.  O(log N + k).
 * Errors: DM_ENOTFOUND (unknown user), DM_EINVAL (bad cursor, from > to),
 * DM_EIO, DM_ECORRUPT, DM_ENOMEM.  Free *out with dm_list_result_free.
 */
DM_API int dm_list(dm_db *db, const dm_list_params *p, dm_list_result **out);
DM_API void dm_list_result_free(dm_list_result *r);

/*
 * Retrieval runs in stages (docs/retrieval.md):
 *   1. query understanding: embed the query, analyze it for BM25, find a
 *      time expression ("last week", "in May 2023", "recently") relative
 *      to the reference time;
 *   2. candidates from each leg, each ranked on its own, `depth` deep:
 *      vector (HNSW or exact), BM25, temporal (memories inside the time
 *      window, best match first; or the newest, for "recently"), graph;
 *   3. Reciprocal Rank Fusion: fused = sum over legs of
 *      leg_weight / (rrf_k + rank);
 *   4. cognitive score: w_similarity * relevance + w_recency * recency +
 *      w_salience * salience, where relevance is the fused score over the
 *      best fused score, recency = 2^(-age / half-life) with age from the
 *      event time to the reference time, and salience the current
 *      salience (stored * e^(-decay_rate * days since last refresh));
 *   5. context neighbours: the memories up to two places before and after
 *      each of the best k in its session join the candidates with a share
 *      of its score (0.9 for the next, 0.8 for the previous, 0.9 of that
 *      again one place further): in a conversation the reply often holds
 *      the answer;
 *   6. Maximal Marginal Relevance over the embeddings (lambda).
 * Scopes, the time range, the state and the metadata filter apply inside
 * every leg.  Every numeric parameter left zero takes its default.
 */

/* Candidate legs (dm_search_params.legs; 0 = all). */
#define DM_LEG_VECTOR 0x1
#define DM_LEG_BM25 0x2
#define DM_LEG_TEMPORAL 0x4
#define DM_LEG_GRAPH 0x8 /* the user's knowledge graph: the memories behind
                            the facts a walk from the query's entities
                            reaches (docs/cognition.md) */
#define DM_N_LEGS 4      /* index of a leg = bit position */

/* More flags for dm_search (with DM_WITH_*). */
#define DM_EXPLAIN 0x10        /* fill dm_search_hit.explain */
#define DM_NO_MMR 0x20         /* skip stage 6 */
#define DM_NO_NEIGHBOURS 0x40  /* skip stage 5 */
#define DM_NO_TIME_PARSE 0x80  /* no time expressions from the query text */
#define DM_NO_REFRESH 0x100    /* do not refresh the salience of the results
                                  (evaluations, previews) */

/* Weights of the cognitive score; all three zero = the defaults
 * (0.8, 0.1, 0.1).  Negative values are DM_EINVAL. */
typedef struct dm_weights {
    float similarity;
    float recency;
    float salience;
} dm_weights;

typedef struct dm_search_params {
    const char *tenant;     /* NULL = DM_DEFAULT_TENANT */
    const char *user_id;    /* required */
    const char *query;      /* required, non-empty UTF-8 */
    uint32_t k;             /* 0 = 10; at most 1,000 */
    int64_t from_us;        /* event time window, 0 = unbounded; an explicit
                               window overrides one found in the query */
    int64_t to_us;
    const char *filter;     /* metadata filter (docs/retrieval.md: eq ne in
                               nin gt gte lt lte contains icontains, AND / OR
                               / NOT); NULL = none */
    unsigned flags;         /* DM_WITH_*, DM_EXPLAIN, DM_NO_* */
    /* scopes: only memories of this agent / session; NULL = any */
    const char *agent_id;
    const char *session_id;
    int64_t now_us;         /* reference time for time expressions, recency
                               and salience; 0 = the current time */
    unsigned legs;          /* DM_LEG_* bits; 0 = all */
    uint32_t depth;         /* candidates per leg; 0 = 50; at most 1,000 */
    float rrf_k;            /* 0 = 10 (docs/retrieval.md) */
    float leg_weight[DM_N_LEGS]; /* all zero = the defaults: vector 1 (0.3
                                    with the built-in model), BM25 1,
                                    temporal 0.3, graph 0.5 */
    dm_weights weights;
    float half_life_days;   /* recency half-life; 0 = 30 */
    float mmr_lambda;       /* 0 = 0.7; 1 = relevance only */
} dm_search_params;

/* Why a hit is where it is (dm_search_hit.explain, with DM_EXPLAIN). */
typedef struct dm_explain {
    uint32_t leg_rank[DM_N_LEGS];  /* 1-based rank in each leg, 0 = absent */
    float leg_score[DM_N_LEGS];    /* the leg's own score: cosine similarity,
                                      BM25, temporal (similarity inside the
                                      window, or 1 for the newest), graph */
    float fused;                   /* RRF sum */
    float relevance;               /* fused / best fused, in [0, 1] */
    float recency;                 /* in [0, 1] */
    float salience;                /* current salience, in [0, 1] */
    float score;                   /* the cognitive score */
    float mmr_score;               /* lambda * score - (1 - lambda) * max_sim */
    float max_sim;                 /* highest similarity to a result ranked
                                      above it (0 for the first) */
    uint32_t neighbour_of;         /* 1-based place, before MMR, of the
                                      candidate whose session neighbour
                                      lifted this one; 0 = none */
    uint8_t graph_answer;          /* 1 when the graph leg's walk reached it
                                      along two or more relations the query
                                      asks about ("where does my brother's
                                      wife work?"): fused is then at least
                                      0.9 of that of the best hit behind
                                      the path (docs/retrieval.md) */
    char reason[96];               /* one line: why it survived MMR */
} dm_explain;

typedef struct dm_search_hit {
    dm_memory memory;
    float score;            /* the cognitive score, higher is better */
    float vector_sim;       /* cosine similarity to the query */
    float bm25;             /* BM25 score (0 if no term matched) */
    uint32_t vector_rank;   /* 1-based rank in the vector leg, 0 = absent */
    uint32_t bm25_rank;     /* 1-based rank in the BM25 leg, 0 = absent */
    dm_explain *explain;    /* with DM_EXPLAIN, else NULL */
} dm_search_hit;

/* The stages of a search as dm_search_result.stage_us times them:
 * understanding the query (checks, embedding, time expression), the
 * candidates (the legs, fusion and scores, under the user's read lock,
 * waiting for it included), ranking (salience, context neighbours, MMR)
 * and fetching (the results' records, the salience refresh). */
#define DM_STAGE_QUERY 0
#define DM_STAGE_CANDIDATES 1
#define DM_STAGE_RANK 2
#define DM_STAGE_FETCH 3
#define DM_N_STAGES 4

typedef struct dm_search_result {
    dm_search_hit *hits;    /* best first */
    size_t n;
    /* the time window used (found in the query or given), 0 / 0 if none */
    int64_t window_from_us;
    int64_t window_to_us;
    char time_label[64];    /* what the query's time expression was read as
                               ("" if none), e.g. "2023-05-01..2023-06-01" or
                               "recent" */
    uint32_t stage_us[DM_N_STAGES]; /* wall time of each stage, DM_STAGE_* */
} dm_search_result;

/*
 * dm_search -- the k memories of a user that best match the query, through
 * the stages above.  Unless DM_NO_REFRESH, returning a memory refreshes its
 * salience (written back in batches off the request path).
 * Errors: DM_ENOTFOUND (unknown user), DM_EINVAL (empty query, invalid
 * UTF-8, bad filter with the place of the error, from > to, a parameter out
 * of range), DM_EIO, DM_ENOMEM.  Free *out with dm_search_result_free.
 */
DM_API int dm_search(dm_db *db, const dm_search_params *p,
                     dm_search_result **out);
DM_API void dm_search_result_free(dm_search_result *r);

/*
 * dm_export -- call fn for every memory (of one user when user_id is set,
 * of one tenant when only tenant is set, else of the whole database), in
 * key order, with its embedding.  The memory is borrowed for the call.  fn
 * returns 0 to continue, nonzero to stop (dm_export then returns
 * DM_ECANCELED).  Reads a consistent snapshot.
 * Errors: DM_EIO, DM_ECORRUPT, DM_ENOMEM, DM_ECANCELED.
 */
typedef int (*dm_export_fn)(void *arg, const dm_memory *m);
DM_API int dm_export(dm_db *db, const char *tenant, const char *user_id,
                     dm_export_fn fn, void *arg);

/* ------------------------------------------------------------------ */
/* Cognition: remembering turns, facts and profiles, history            */
/* ------------------------------------------------------------------ */

/*
 * What dm_remember stores: one conversation turn.  Initialize with
 * dm_remember_params_init.  user_id and text are required.
 */
typedef struct dm_remember_params {
    const char *tenant;     /* NULL = DM_DEFAULT_TENANT */
    const char *user_id;    /* required */
    const char *agent_id;   /* optional */
    const char *session_id; /* optional */
    const char *role;       /* "user" (default) or "assistant" */
    const char *speaker;    /* the speaker's name, when known ("Caroline"):
                               a sentence naming them in the third person is
                               about them; stored in the metadata as
                               "speaker" */
    const char *text;       /* required, valid UTF-8 */
    size_t text_len;        /* 0 = strlen(text) */
    int64_t time_us;        /* when it was said; 0 = now */
    const char *metadata;   /* a JSON object; NULL = {} */
    int async;              /* nonzero: return once the turn is stored and
                               queued for extraction (the counts of the
                               result are then zero) */
} dm_remember_params;

DM_API void dm_remember_params_init(dm_remember_params *p);

/* What one dm_remember changed. */
typedef struct dm_remember_result {
    dm_id id;              /* the stored turn */
    uint32_t n_added;      /* new facts (derived ones included) */
    uint32_t n_merged;     /* facts said again: more sources, confidence */
    uint32_t n_updated;    /* facts given a fuller value */
    uint32_t n_superseded; /* facts replaced by a newer value */
    uint32_t n_retracted;  /* facts taken back */
} dm_remember_result;

/*
 * dm_remember -- store a turn (as dm_add: durable and searchable at once),
 * then (unless p->async) wait until its extraction has run: extract its
 * facts with the built-in extractor (or the chat model) and merge them into
 * the user's facts: a new value of a single-valued slot supersedes the old
 * one (kept in history), the same fact said again is merged (one more
 * source, higher confidence), a negation retracts, derived facts follow
 * (a city's region and country, an employer's industry).  The facts and
 * their history entries are written in one atomic batch after the turn.
 * The user's turns queued before this one are extracted first, in order.
 * *out (may be NULL) receives the id and the counts.
 * Errors: as dm_add; after the turn is stored, DM_EIO / DM_ENOMEM from
 * the facts' write (the turn stays stored and queued: it is extracted
 * again at the next open; the merge is idempotent: a fact never takes the
 * same source twice).
 * Thread safety: safe; one user's turns are extracted in the order they
 * were stored, one batch at a time; other users never wait for them.
 */
DM_API int dm_remember(dm_db *db, const dm_remember_params *p, dm_remember_result *out);

typedef enum dm_fact_state {
    DM_FACT_CURRENT = 0,
    DM_FACT_SUPERSEDED = 1, /* a newer value replaced it */
    DM_FACT_RETRACTED = 2,  /* taken back */
} dm_fact_state;

/* One fact.  valid_to_us is DM_TIME_OPEN while the fact is true. */
#define DM_TIME_OPEN INT64_MAX
typedef struct dm_fact {
    dm_id id;
    char *subject;          /* "" = the user; else an entity ("Ann") */
    char *slot;             /* "location.city", "work.employer", ...
                               (docs/cognition.md); an entity's relation
                               type for other subjects ("industry") */
    char *value;
    float confidence;       /* 0..1 */
    int64_t valid_from_us;  /* when it became true */
    int64_t valid_to_us;    /* when it stopped; DM_TIME_OPEN = still */
    int64_t mentioned_us;   /* when it was first said */
    int64_t recorded_us;    /* when it was first stored */
    dm_fact_state state;
    int derived;            /* nonzero: inferred from other facts */
    dm_id superseded_by;    /* all zero = none */
    dm_id *sources;         /* the memories it came from */
    size_t n_sources;
    char *extractor;        /* "builtin", "derived", ... */
} dm_fact;

typedef struct dm_profile_params {
    const char *tenant;     /* NULL = DM_DEFAULT_TENANT */
    const char *user_id;    /* required */
    const char *subject;    /* NULL or "" = the user; an entity name for
                               what is known of it */
    int64_t as_of_us;       /* 0 = now: the current facts; else the facts
                               true at that time as known at that time */
    int as_known_now;       /* with as_of: the facts true at that time as
                               known now (a career told today answers
                               "where did I work in 2012?") */
    int history;            /* nonzero: every fact of the subject, in every
                               state (as_of is then ignored) */
    const char *slot;       /* NULL = every slot; else only this one */
    float min_confidence;   /* facts less sure than this are kept but not
                               shown (an assistant's echo, a guess); 0 =
                               DM_PROFILE_MIN_CONFIDENCE, negative = all;
                               with history, every fact is shown */
} dm_profile_params;

#define DM_PROFILE_MIN_CONFIDENCE 0.5f

/*
 * dm_profile -- the facts of a user (or of an entity the user spoke of),
 * sorted by slot, then by the time they became true.  *out is an array of
 * *n facts; free it with dm_facts_free.  A user without facts has none.
 * Errors: DM_EINVAL (no user, bad names), DM_ENOTFOUND (unknown user),
 * DM_EIO, DM_ECORRUPT, DM_ENOMEM.  Thread safety: safe.
 */
DM_API int dm_profile(dm_db *db, const dm_profile_params *p, dm_fact **out, size_t *n);
DM_API void dm_facts_free(dm_fact *f, size_t n);

typedef enum dm_change_kind {
    DM_CHANGE_ADD = 1,
    DM_CHANGE_UPDATE = 2,    /* the same fact, a fuller value */
    DM_CHANGE_SUPERSEDE = 4, /* replaced: other = the new fact */
    DM_CHANGE_MERGE = 5,     /* said again */
    DM_CHANGE_RETRACT = 6,   /* taken back */
} dm_change_kind;

/* One change of a fact. */
typedef struct dm_change {
    dm_change_kind kind;
    char *slot;
    char *old_value;        /* NULL for an add */
    char *new_value;
    int64_t at_us;          /* when the change was said */
    int64_t recorded_us;    /* when it was stored */
    dm_id source;           /* the memory that caused it (zero = none) */
    dm_id other;            /* the fact that superseded this one */
    char *extractor;
} dm_change;

/*
 * dm_history -- every change of the fact id of the user, oldest first.
 * Errors: DM_EINVAL, DM_ENOTFOUND (unknown user, or no fact with that id),
 * DM_EIO, DM_ENOMEM.  Free *out with dm_changes_free.
 */
DM_API int dm_history(dm_db *db, const char *tenant, const char *user_id, const dm_id *id,
                      dm_change **out, size_t *n);
DM_API void dm_changes_free(dm_change *c, size_t n);

typedef enum dm_event_type {
    DM_EVENT_ACTIVITY = 0,   /* went hiking, read a book */
    DM_EVENT_PLAN = 1,       /* will travel, is going to apply */
    DM_EVENT_MILESTONE = 2,  /* graduated, moved, married, started a job */
    DM_EVENT_PREFERENCE = 3, /* started or stopped liking something */
    DM_EVENT_SOCIAL = 4,     /* met, visited, celebrated with someone */
} dm_event_type;

/* One event a turn reported, its time resolved when it was remembered
 * ("last Saturday" said on 2023-05-08 is 2023-05-06). */
typedef struct dm_event {
    dm_id id;
    dm_event_type type;
    char *what;            /* a short description, from the turn */
    char **who;            /* people involved besides the user */
    size_t n_who;
    int64_t from_us, to_us; /* [from, to): when it happened or will */
    int has_time;          /* the turn said when; otherwise the turn's day */
    int64_t mentioned_us;  /* when it was said */
    float confidence;
    dm_id source;          /* the turn */
} dm_event;

typedef struct dm_events_params {
    const char *tenant;  /* NULL = DM_DEFAULT_TENANT */
    const char *user_id; /* required */
    int64_t from_us;     /* events ending after this; 0 = no bound */
    int64_t to_us;       /* events starting before this; 0 = no bound */
    uint32_t limit;      /* 0 = 1000 */
} dm_events_params;

/*
 * dm_events -- the user's events that overlap [from, to), by start time.
 * Free *out with dm_events_free.  Errors: DM_EINVAL (no user, from > to),
 * DM_ENOTFOUND (unknown user), DM_EIO, DM_ECORRUPT, DM_ENOMEM.
 */
DM_API int dm_events(dm_db *db, const dm_events_params *p, dm_event **out, size_t *n);
DM_API void dm_events_free(dm_event *e, size_t n);

/* A user's knowledge graph: entities as nodes, facts as edges. */
typedef struct dm_graph_node {
    char *name;     /* the name as first said ("user" is the user) */
    char *type;     /* "person", "org", "place", "product", "concept",
                       "user" */
    uint32_t depth; /* hops from the starting entity */
    float score;    /* 1 at the start, times each edge's weight on the way */
} dm_graph_node;

typedef struct dm_graph_edge {
    char *src, *rel, *dst; /* a fact: subject -slot-> value */
    float weight;          /* its confidence */
    int64_t time_us;       /* when it became true */
    dm_id *sources;        /* the memories that said so */
    size_t n_sources;
} dm_graph_edge;

typedef struct dm_graph_result {
    dm_graph_node *nodes; /* best score first */
    size_t n_nodes;
    dm_graph_edge *edges; /* every edge between two of the nodes */
    size_t n_edges;
} dm_graph_result;

/*
 * dm_graph_neighbours -- what the user's knowledge graph holds around
 * entity (NULL or "" = the user), up to depth hops (1..5): the nodes
 * reached and the edges between them.  An entity the graph does not know
 * gives an empty result.  Free *out with dm_graph_result_free.
 * Errors: DM_EINVAL, DM_ENOTFOUND (unknown user), DM_ENOMEM.
 */
DM_API int dm_graph_neighbours(dm_db *db, const char *tenant, const char *user_id,
                               const char *entity, uint32_t depth, dm_graph_result **out);
/* dm_graph_search -- the entities of the user's graph named in text, as
 * nodes (depth 0), and the edges between them. */
DM_API int dm_graph_search(dm_db *db, const char *tenant, const char *user_id,
                           const char *text, dm_graph_result **out);
DM_API void dm_graph_result_free(dm_graph_result *r);

/* The context an agent needs before it answers (dm_perceive). */
typedef struct dm_perceive_params {
    const char *tenant;     /* NULL = DM_DEFAULT_TENANT */
    const char *user_id;    /* required */
    const char *session_id; /* the conversation: its recent turns; NULL =
                               none */
    const char *query;      /* what the user just said: finds the relevant
                               memories; NULL or "" = none */
    uint32_t max_tokens;    /* budget of the text block; 0 = 2000 */
    uint32_t k;             /* relevant memories at most; 0 = 10 */
    uint32_t recent_turns;  /* recent turns at most; 0 = 10 */
    int64_t now_us;         /* reference time; 0 = now */
} dm_perceive_params;

/* One memory in a context. */
typedef struct dm_context_item {
    dm_id id;
    char *role;
    char *text;
    int64_t time_us; /* its event time */
    float score;     /* the search score (relevant memories); 0 for recent
                        turns */
} dm_context_item;

typedef struct dm_context {
    dm_fact *profile;           /* the user's current facts */
    size_t n_profile;
    dm_context_item *memories;  /* relevant memories, best first */
    size_t n_memories;
    dm_context_item *recent;    /* the session's last turns, oldest first */
    size_t n_recent;
    char *text;                 /* the three as one text block, in that
                                   order, within the budget */
    uint32_t tokens;            /* dm_estimate_tokens(text) */
} dm_context;

/*
 * dm_perceive -- what an agent should know before answering: the user's
 * profile (always first), then the memories most relevant to the query
 * (the retrieval pipeline; turns already among the recent ones are left
 * out), then the session's recent turns, packed into max_tokens: the
 * profile takes at most a quarter of the budget and the recent turns at
 * most a third, the relevant memories the rest; an item that does not fit
 * is left out whole, never cut.  The structured lists hold exactly what
 * the text holds.  Free *out with dm_context_free.
 * Errors: DM_EINVAL, DM_ENOTFOUND (unknown user), as dm_search, DM_ENOMEM.
 */
DM_API int dm_perceive(dm_db *db, const dm_perceive_params *p, dm_context **out);
DM_API void dm_context_free(dm_context *c);

/*
 * The cognitive loop for one user message: perceive (dm_perceive with the
 * message as the query), think (a chat completion over the context and
 * the message, when a chat model is configured), act (the reply), and
 * remember (the user's turn and the reply are stored with dm_remember, so
 * their facts are extracted).  Without a chat model, reply is NULL and
 * only the user's turn is remembered: the context is for the caller's own
 * model.
 */
typedef struct dm_chat_params {
    const char *tenant;     /* NULL = DM_DEFAULT_TENANT */
    const char *user_id;    /* required */
    const char *session_id; /* required: the conversation */
    const char *agent_id;   /* optional */
    const char *text;       /* the user's message; required */
    const char *speaker;    /* the user's name, when known */
    const char *system;     /* instructions for the model; NULL = a short
                               default ("answer using the context") */
    uint32_t max_tokens;    /* the context's budget; 0 = 2000 */
    int64_t time_us;        /* when the message was said; 0 = now */
} dm_chat_params;

typedef struct dm_chat_result {
    char *reply;            /* the model's answer; NULL without a model */
    dm_context *context;    /* what the model was given */
    dm_id user_turn;        /* the stored message */
    dm_id reply_turn;       /* the stored reply (zero without a model) */
} dm_chat_result;

/*
 * dm_chat -- one turn of the loop above.  The context is built before the
 * message is stored, so it does not contain the message itself.
 * Errors: as dm_perceive and dm_remember; DM_EIO / DM_ECANCELED from the
 * chat model (the user's turn is then stored, no reply).  Free *out with
 * dm_chat_result_free.
 */
DM_API int dm_chat(dm_db *db, const dm_chat_params *p, dm_chat_result **out);
DM_API void dm_chat_result_free(dm_chat_result *r);

/* dm_estimate_tokens -- the token estimate used for budgets: one token per
 * four bytes of UTF-8, rounded up (close to what common tokenizers give for
 * English; generous for other scripts). */
DM_API uint32_t dm_estimate_tokens(const char *text, size_t len);

/* ------------------------------------------------------------------ */
/* Statistics                                                          */
/* ------------------------------------------------------------------ */

/* dm_stats.wal_sync_buckets: how many, and their upper bounds in
 * microseconds (the last bucket has none). */
#define DM_WAL_SYNC_BUCKETS 12
#define DM_WAL_SYNC_BOUNDS_US \
    { 250, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000, 500000 }

typedef struct dm_stats {
    uint64_t n_users;          /* users with at least one record */
    uint64_t n_memories;       /* memories (all states) */
    uint64_t n_loaded_users;   /* users whose indexes are in memory */
    uint64_t n_graph_users;    /* loaded users past the flat threshold */
    uint64_t index_bytes;      /* memory used by the loaded indexes */
    uint64_t heap_bytes;       /* bytes the library's allocations hold now,
                                  in this process (every open database,
                                  indexes, memtables and block cache
                                  included), each block counted at the
                                  allocator's size of it (header and
                                  size-class rounding included; the
                                  allocator's free pages and metadata
                                  not) */
    uint64_t disk_bytes;       /* bytes of all files in the database directory */
    uint64_t memtable_bytes;
    uint64_t wal_bytes;
    uint64_t n_checkpoints;    /* index checkpoints written since open */
    uint64_t n_replayed;       /* index log entries replayed since open */
    uint64_t n_unloads;        /* users whose indexes were unloaded since open
                                  (user_idle_s, index_memory_bytes) */
    uint64_t n_map_drops;      /* times the mapped tables' resident pages
                                  were given back since open
                                  (map_memory_bytes) */
    uint64_t index_pending;    /* vectors of loaded users not yet linked into
                                  their graph (searched exactly meanwhile) */
    uint64_t extract_queued;   /* stored turns waiting for extraction */
    uint64_t extract_done;     /* turns extracted since open */
    uint64_t extract_failed;   /* turns whose extraction failed since open
                                  (queued again at the next open) */
    char model[160];           /* embedding model name */
    uint32_t dim;
    /* The chat model, since open (all zero without one). */
    uint64_t llm_calls;        /* requests answered */
    uint64_t llm_failures;     /* requests that failed after retries */
    uint64_t llm_invalid;      /* extraction answers that failed validation */
    uint64_t llm_prompt_tokens;
    uint64_t llm_completion_tokens;
    /* The storage engine, since open. */
    uint64_t wal_syncs;        /* write-ahead log syncs */
    uint64_t wal_sync_us;      /* the time they took, in all */
    /* The syncs by duration: [i] counts those that took at most
     * DM_WAL_SYNC_BOUNDS_US[i] microseconds (and more than the bound before
     * it); the last counts the rest.  /metrics shows them as the histogram
     * deltamemory_wal_sync_seconds. */
    uint64_t wal_sync_buckets[DM_WAL_SYNC_BUCKETS];
    uint64_t flushes;          /* memtables written to level 0 */
    uint64_t compactions;
    uint64_t compact_bytes_read;
    uint64_t compact_bytes_written;
    uint64_t l0_files;         /* SSTables in level 0 now */
    uint64_t background_busy;  /* 1 while a flush or compaction runs or is due */
    uint64_t write_stalls;     /* times writers waited for a flush or a level-0
                                  compaction to make room */
    uint64_t write_stall_us;   /* how long they waited, in all */
    uint64_t block_cache_bytes;  /* decoded SSTable blocks held now (at most
                                    about dm_options.block_cache_bytes) */
    uint64_t block_cache_hits;   /* compressed block reads the cache answered */
    uint64_t block_cache_misses; /* ... that decoded the block from its table
                                    (blocks stored uncompressed are read in
                                    place from the mapped table, uncounted) */
    uint64_t refreshes;        /* salience refreshes written since open (a
                                  record rewritten for a recalled memory) */
    uint64_t refreshes_dropped; /* refreshes dropped by a full queue since open */
    uint64_t refresh_queued;   /* refreshes waiting to be written */
    uint64_t table_bytes;      /* heap held by the open SSTables: their decoded
                                  index blocks and filters read out of the
                                  file (grows with the data: about 2.5 % of
                                  the tables' size on the benchmark's data;
                                  part of heap_bytes) */
} dm_stats;

/* dm_stats_get -- fill *out.  Errors: DM_EIO, DM_ENOMEM. */
DM_API int dm_stats_get(dm_db *db, dm_stats *out);

/*
 * dm_sync_indexes -- wait until the background indexer has no work left:
 * every vector added so far is linked into its user's graph and every due
 * index checkpoint is written.  Never needed for correctness (a memory is
 * searchable, exactly, as soon as its add returns); for benchmarks, tests
 * and a quiet shutdown.  Returns at once when no indexer thread runs.
 * Thread safety: safe from any thread; adds made meanwhile may extend the
 * wait.  Errors: DM_EINVAL (db NULL).
 */
DM_API int dm_sync_indexes(dm_db *db);

/*
 * dm_sync_extraction -- wait until every turn stored so far has been
 * extracted and its facts merged (the extraction queue is empty).  Facts,
 * profiles, events and the graph leg see a turn only after its
 * extraction; the turn itself is searchable at once.  Thread safety:
 * safe from any thread; turns stored meanwhile may extend the wait.
 * Errors: DM_EINVAL (db NULL).
 */
DM_API int dm_sync_extraction(dm_db *db);

#ifdef __cplusplus
}
#endif
#endif
