/*
 * engine_int.h -- private structures of the memory engine (src/engine).
 *
 * A dm_db owns the storage engine (kv), the embedder and a table of users.
 * The user table is split into ENG_STRIPES stripes by a hash of the user
 * prefix; a stripe's mutex guards only its hash chain (find or create a
 * user struct), never work on a user.  Each user has a reader/writer lock:
 * writers (add, update, delete, erase, index load and checkpoint) hold it
 * exclusively, readers (search) share it, so one user's writes are
 * serialized while different users never wait for each other.  The WAL
 * below is shared and group-commits concurrent writers of all users.
 *
 * Lock order: stripe mutex (held briefly, never while taking another lock)
 * -> user rwlock -> storage engine locks; id_mu and the indexer's mutex
 * are leaves.  The indexer thread (indexer.c) links pending vectors and
 * takes due checkpoints under the user's write lock, one slice at a time.
 * The extraction queue's mutex (extractq.c) is a leaf too: a writer takes
 * it under its user's lock to queue a turn, never the other way round.
 *
 * A user's in-memory state ("loaded") is built on first use: from its index
 * checkpoint plus the index log written after it, or, for a user without a
 * checkpoint, by scanning its memory records.  User structs live until the
 * database is closed (erase empties them).
 */
#ifndef DM_ENGINE_ENGINE_INT_H
#define DM_ENGINE_ENGINE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "deltamemory.h"
#include "cognitive/extract.h"
#include "cognitive/facts.h"
#include "embed/embed.h"
#include "engine/keys.h"
#include "index/bm25.h"
#include "index/graph.h"
#include "index/hnsw.h"
#include "storage/iter.h"
#include "storage/kv.h"

#define ENG_STRIPES 256

/* Per-document state; the index number is the document number used as the
 * label in the vector index and the document in the BM25 index. */
enum { DOC_LIVE = 1, DOC_ARCHIVED = 2, DOC_HAS_VEC = 4 };
typedef struct eng_doc {
    uint8_t id[16];
    int64_t ts;
    uint32_t flags; /* DOC_*; 0 = free slot */
    uint32_t pend;  /* slot + 1 in the user's pending vectors; 0 = none */
    /* The record's salience state, so that a search scores salience
     * without reading the record (eng_doc_salience).  Set when the record
     * is written or read under the user's lock; a search sets it under
     * the read lock, and two searches may set the same values at once,
     * hence atomics.  sal_at == ENG_SAL_UNKNOWN: read the record (the
     * other two then mean nothing). */
    _Atomic int64_t sal_at;     /* when it was last refreshed */
    _Atomic uint32_t sal_bits;  /* stored salience, float bits */
    _Atomic uint32_t rate_bits; /* decay rate per day, float bits */
} eng_doc;
#define ENG_SAL_UNKNOWN INT64_MIN

typedef struct eng_user {
    struct eng_user *next;      /* stripe chain; guarded by the stripe mutex */
    uint32_t hash;
    key_tu tu;                  /* immutable */
    atomic_uint lock_waiters;   /* threads in eng_user_lock_*: the indexer
                                   ends its slice early when non-zero */
    atomic_uint used_s;         /* when eng_user_lock_* last locked it, in
                                   seconds of the monotonic clock: the
                                   unload pass's idleness and LRU order */
    pthread_rwlock_t rw;        /* guards everything below */
    bool loaded;
    bool exists;                /* has a user record */
    bool dirty;                 /* changed since its checkpoint */
    bool has_ckpt;              /* a checkpoint head exists: log changes */
    uint64_t ckpt_gen;
    uint32_t ckpt_parts;        /* chunks of the current checkpoint */
    uint64_t ckpt_covered;      /* log entries <= this are checkpointed */
    uint64_t log_first;         /* first useq in the log tail (0 = none) */
    int64_t created_us;
    uint64_t next_useq;
    uint64_t n_memories;        /* all states, from the user record */
    eng_doc *docs;              /* doc number -> doc */
    uint32_t n_docs, docs_cap;  /* slots used (incl. freed), capacity */
    uint32_t n_live;
    uint32_t *map;              /* open addressing: id -> doc+1; 0 = empty */
    uint32_t map_cap;           /* power of two */
    uint32_t map_used;          /* incl. tombstones */
    hnsw *vec;
    bm25 *text;
    float *pend_vecs;           /* pending vectors (vectors.c), dim floats each */
    uint32_t *pend_docs;        /* their documents */
    uint32_t n_pend, pend_cap;
    uint64_t epoch;             /* bumped by every reset (load, erase) */
    uint64_t decay_gen;         /* db->decay_gen when the rates below were read */
    float decay_rates[3];       /* the user's, else the tenant's rate per kind;
                                   negative = none (options decide) */
    bool ckpt_busy;             /* a checkpoint is being written unlocked */
    bool facts_loaded;          /* facts holds every F record of the user */
    fact_set facts;             /* the user's facts (cognition.c) */
    graph *graph;               /* the current facts as a graph; NULL
                                   until the facts are loaded */
    float *gvecs;               /* the embedding of each graph node that
                                   resolution compares (organizations,
                                   concepts, products): dim floats per
                                   node id; zeros = none (cognition.c) */
    uint32_t n_gvecs;           /* nodes with a slot in gvecs */
    struct eng_span *spans;     /* when the user's events happened, by the
                                   turn that told them (cognition.c) */
    uint32_t n_spans, spans_cap;
    bool queued;                /* in the indexer's queue; guarded by db->ix.mu */
    /* Turns waiting for extraction (extractq.c), oldest first; guarded by
     * db->xq.mu, like the two flags after them. */
    struct eng_xjob *xhead, *xtail;
    uint32_t n_xjobs;
    bool xqueued;               /* in the extraction queue's ring */
    bool xbusy;                 /* a thread is extracting a batch of it */
    /* The last turns extracted, oldest first: the context of the next
     * (cognition.c).  Only the thread that holds xbusy touches it. */
    struct eng_xjob *xrecent[EX_CONTEXT_MAX];
    uint32_t n_xrecent;
} eng_user;

typedef struct eng_stripe {
    pthread_mutex_t mu;
    eng_user **slots;
    uint32_t cap, n;
} eng_stripe;

/* A memory a search returned, to refresh (salience.c). */
typedef struct eng_refresh {
    struct eng_user *u;
    int64_t ts;
    int64_t at_us;              /* the search's reference time */
    uint8_t id[16];
} eng_refresh;

/* The background indexer (indexer.c).  mu is a leaf lock. */
typedef struct eng_indexer {
    pthread_t thread;
    pthread_mutex_t mu;         /* guards the fields below and eng_user.queued */
    pthread_cond_t work;        /* signalled when a user is queued or on stop */
    pthread_cond_t idle;        /* broadcast when the queue drains */
    eng_user **q;               /* ring of users with work */
    uint32_t head, n, cap;
    bool busy;                  /* the thread is working on a user */
    bool stop;
    bool running;               /* the thread exists */
    bool inited;                /* mu and the conditions are initialized */
    eng_refresh *rf;            /* salience refreshes to write: a ring of */
    uint32_t rf_n, rf_cap;      /* rf_n entries, the oldest at rf_head */
    uint32_t rf_head;
    uint64_t rf_dropped;        /* refreshes dropped by a full queue */
    double rf_tokens;           /* refreshes the writer may take now */
    uint64_t rf_tokens_us;      /* monotonic time rf_tokens was computed */
    uint32_t n_syncing;         /* threads in dm_sync_indexes: while there
                                   are some, refreshes are not rate-bound */
    uint64_t next_decay_us;     /* monotonic time of the next decay pass */
    uint64_t next_memory_us;    /* ... and of the next memory pass (unloads,
                                   mapped pages); 0 = none (no user_idle_s,
                                   index_memory_bytes or map_memory_bytes) */
} eng_indexer;

/* What a dm_remember that waits for its own turn's extraction learns. */
typedef struct eng_xwait {
    dm_remember_result r;
    int rc;
    bool done;
} eng_xwait;

/* One stored turn waiting for extraction.  Its 'P' record (keys.h) says
 * the same on disk, so that a crash loses no job. */
typedef struct eng_xjob {
    struct eng_xjob *next;
    uint8_t id[16];
    int64_t ts;                 /* the turn's time (the memory key's) */
    int64_t recorded_us;        /* when it was stored */
    bool assistant;             /* said by the assistant */
    char *speaker;              /* NULL = not known */
    char *session;              /* NULL = none */
    char *text;
    size_t text_len;
    eng_xwait *wait;            /* NULL = nobody waits for it */
} eng_xjob;

/* The extraction queue (extractq.c).  mu is a leaf lock. */
typedef struct eng_xqueue {
    pthread_t thread;
    pthread_mutex_t mu;         /* guards the fields below and the users' x* */
    pthread_cond_t work;        /* a user was queued, or stop */
    pthread_cond_t done;        /* broadcast when a batch ends */
    eng_user **q;               /* ring of users with jobs and no thread */
    uint32_t head, n, cap;
    uint64_t n_jobs;            /* queued, all users */
    uint64_t max_jobs;          /* past this a writer extracts inline */
    uint64_t n_done, n_failed;  /* since open */
    bool stop;
    bool running;               /* the thread exists */
    bool inited;
} eng_xqueue;

/* Pending (unlinked) vectors a user may have before its writers link the
 * excess themselves; a search scans them exactly (~15 µs per thousand). */
#define ENG_PENDING_MAX 4096

struct dm_db {
    kv_db *kv;
    embedder *emb;
    uint32_t dim;
    bool vec_f16;               /* embeddings stored as binary16 (!vectors_f32) */
    dm_options opt;
    char *path;
    hnsw_params hp;
    bm25_params bp;
    eng_stripe stripes[ENG_STRIPES];
    pthread_mutex_t id_mu;      /* guards the id generator */
    uint64_t id_last_ms;
    uint32_t id_counter;
    uint64_t id_rand;
    atomic_uint_fast64_t n_checkpoints, n_replayed;
    atomic_uint_fast64_t n_unloads; /* users unloaded (indexer.c) */
    atomic_uint_fast64_t n_refreshed; /* refreshes written (salience.c) */
    eng_indexer ix;
    eng_xqueue xq;
    atomic_uint_fast64_t decay_gen; /* bumped by dm_set_decay_rate */
    atomic_bool has_decay_rates;    /* some user or tenant rate is stored */
    struct llm *llm;                /* the chat model; NULL = none */
};

/* NULL-safe iterator steps, for loops whose iterator may have failed to
 * open (the loop then runs zero times and the error is reported). */
static inline void eng_seek(iter *it, buf_slice k)
{
    if (it)
        iter_seek(it, k);
}
static inline bool eng_valid(iter *it) { return it && iter_valid(it); }

/* users.c */
int eng_user_get(dm_db *db, const char *tenant, const char *user, eng_user **out);
int eng_user_get_tu(dm_db *db, const key_tu *tu, eng_user **out);
int eng_user_lock_read(dm_db *db, eng_user *u);   /* loads if needed */
int eng_user_lock_write(dm_db *db, eng_user *u);  /* loads if needed */
void eng_user_unlock(eng_user *u);
int eng_user_checkpoint(dm_db *db, eng_user *u);  /* REQUIRES: write lock */
/* Drop u's indexes from memory, checkpointing them first when due; the
 * next eng_user_lock_* loads them again.  REQUIRES: write lock, u loaded,
 * no checkpoint being written (ckpt_busy). */
int eng_user_unload(dm_db *db, eng_user *u);
/* Call fn for every loaded user whose read lock is free now (a try-lock:
 * a user being written is skipped), under that lock and its stripe's
 * mutex, so fn must not lock users. */
void eng_users_scan_loaded(dm_db *db, void (*fn)(dm_db *db, eng_user *u, void *arg), void *arg);
/* The memory u's loaded indexes hold (dm_stats.index_bytes).  REQUIRES: a
 * lock of u. */
uint64_t eng_user_index_bytes(const dm_db *db, const eng_user *u);
/* The same, but the chunks are written with the write lock released (it
 * is held again on return).  The indexer thread's way. */
int eng_user_checkpoint_unlocked(dm_db *db, eng_user *u);
void eng_user_reset(eng_user *u);                 /* REQUIRES: write lock */
void eng_user_free(eng_user *u);
int eng_users_close(dm_db *db);                   /* checkpoint dirty users */
int eng_erase_locked(dm_db *db, eng_user *u, bool compact, uint64_t *n_erased);
/* doc table (REQUIRES: write lock) */
int eng_doc_add(eng_user *u, const uint8_t id[16], int64_t ts, uint32_t flags,
                uint32_t *out_doc);
uint32_t eng_doc_find(const eng_user *u, const uint8_t id[16]); /* UINT32_MAX = none */
void eng_doc_remove(eng_user *u, uint32_t doc); /* and its vector */
/* The doc's record's salience state: stored salience, decay rate per day
 * and when it was last refreshed (rec_memory_refreshed_us).  REQUIRES:
 * the user's lock, read or write. */
void eng_doc_salience_set(eng_user *u, uint32_t doc, float stored, float rate,
                          int64_t refreshed_us);
void eng_doc_salience_forget(eng_user *u, uint32_t doc);
/* The doc's salience at now_us; false when not known (read the record). */
bool eng_doc_salience(const eng_user *u, uint32_t doc, int64_t now_us, double *out);
/* index a decoded memory under doc (REQUIRES: write lock) */
int eng_index_memory(dm_db *db, eng_user *u, uint32_t doc, const char *text,
                     size_t text_len, const float *vec);

/* vectors.c: the vector leg with its pending tail (REQUIRES: the write
 * lock to change, the read lock to search) */
int eng_vec_add(dm_db *db, eng_user *u, uint32_t doc, const float *vec);
void eng_vec_remove(eng_user *u, uint32_t doc);
int eng_vec_link(dm_db *db, eng_user *u, uint32_t max); /* link up to max pending */
int eng_vec_search(const dm_db *db, const eng_user *u, const float *q, uint32_t k,
                   ix_filter_fn filter, void *arg, hnsw_hit *out, uint32_t *n_out);
bool eng_vec_sim(const dm_db *db, const eng_user *u, const float *q, uint32_t doc,
                 float *sim);
/* doc's vector (dim floats) into out; false when it has none */
bool eng_vec_get(const dm_db *db, const eng_user *u, uint32_t doc, float *out);
size_t eng_vec_memsize(const dm_db *db, const eng_user *u);
void eng_vec_fini(eng_user *u);

/* indexer.c */
int eng_indexer_start(dm_db *db);                 /* at open; never fails */
void eng_indexer_stop(dm_db *db);                 /* at close, before the users */
/* After a write or a load of u (REQUIRES: write lock): hand pending vectors
 * and a due checkpoint to the indexer; link or checkpoint inline past the
 * bounds (or when no thread runs). */
void eng_after_write(dm_db *db, eng_user *u);
void eng_after_load(dm_db *db, eng_user *u);
int eng_user_maybe_checkpoint(dm_db *db, eng_user *u); /* inline, if due */

/* ops.c: validate tenant and user and find the user struct; the error of
 * a user without records */
int eng_scope_user(dm_db *db, const char *tenant, const char *user, eng_user **u);
int eng_unknown_user(const char *tenant, const char *user);
/* Append the index log entry of a change to b (users with a checkpoint
 * only).  REQUIRES: u's write lock. */
int eng_put_log(eng_user *u, kv_batch *b, buf *v, int op, const uint8_t id[16],
                int64_t ts, buf_slice old_text);
/* dm_add of one memory whose extraction wait (may be NULL) waits for:
 * its fields are filled once the turn's extraction has run. */
int eng_add_wait(dm_db *db, const dm_add_params *p, dm_id *out_id, eng_xwait *wait);

/* salience.c */
/* The current salience: stored * e^(-rate * days since the last refresh),
 * never negative days, clamped to [0, 1]. */
double eng_salience(double stored, double rate_per_day, int64_t refreshed_us, int64_t now_us);
/* The salience a recalled memory gets: current + boost * (1 - current). */
double eng_salience_refreshed(double current, double boost);
/* Whether a recall at at_us comes within refresh_interval_s of the last
 * refresh (last_access_us, 0 = never): then it is not written. */
bool eng_refresh_too_soon(const dm_db *db, int64_t last_access_us, int64_t at_us);
/* REQUIRES: db->ix.mu.  Whether enough refreshes are queued and allowed
 * by dm_options.refresh_rate for a drain now; if not and some are queued,
 * *wait_us says when there will be (else 0). */
bool eng_refresh_ready(dm_db *db, uint64_t *wait_us);
void eng_refresh_push(dm_db *db, eng_user *u, const int64_t *ts, const uint8_t (*ids)[16],
                      uint32_t n, int64_t now_us);
/* The indexer thread, no locks held: write the oldest queued refreshes,
 * as many as dm_options.refresh_rate allows now, or all of them. */
void eng_refresh_drain(dm_db *db, bool all);
/* The decay rate of a new memory of kind for u.  REQUIRES: u's write lock. */
int eng_default_decay(dm_db *db, eng_user *u, int kind, float *out);
int eng_decay_rates_open(dm_db *db);             /* at open: any rates stored? */
/* Set the state of the memory whose record is value.  REQUIRES: write lock. */
int eng_set_state_locked(dm_db *db, eng_user *u, int64_t ts, const uint8_t id[16],
                         buf_slice value, dm_memory_state state, int64_t now_us);
int eng_decay_user_locked(dm_db *db, eng_user *u, int64_t now_us, float threshold,
                          uint64_t *n_archived);

/* cognition.c: read the user's facts and build its graph.  REQUIRES:
 * the write lock.  Done once per load; a no-op when loaded. */
int eng_facts_load(dm_db *db, eng_user *u);
/* Lock u to read its facts and graph, after extracting the turns it has
 * queued: the read lock when they are loaded, else the write lock, held
 * while they load.  Unlock with eng_user_unlock;
 * on an error nothing is held. */
int eng_user_lock_facts(dm_db *db, eng_user *u);
/* Drop u's graph and what goes with it (REQUIRES: write lock). */
void eng_graph_drop(eng_user *u);
/* An event's time and the document of the turn that told it: the
 * temporal leg finds "what did I do on Saturday" in a turn said on
 * Monday. */
typedef struct eng_span {
    int64_t from_us, to_us;
    uint32_t doc;
} eng_span;

/* Extract the turns jobs[0..n) of u (oldest first) and merge what they
 * say into u's facts, events and graph; each job's 'P' record goes in the
 * same write.  Takes u's write lock (REQUIRES: not held).  A job whose
 * memory was deleted meanwhile is dropped.  Fills the jobs' waiters. */
int eng_extract_batch(dm_db *db, eng_user *u, eng_xjob *const *jobs, size_t n);
/* Free u's recent turns (at close). */
void eng_xrecent_fini(eng_user *u);

/* extractq.c: extraction after the write. */
int eng_xq_start(dm_db *db);                      /* at open; never fails */
int eng_xq_recover(dm_db *db);                    /* at open: queue the 'P' records */
void eng_xq_stop(dm_db *db);                      /* at close: ends after the batch */
/* A job for the memory item just stored (REQUIRES: u's write lock, the
 * write durable); NULL on DM_ENOMEM (the 'P' record keeps it for the next
 * open).  metadata may carry "speaker". */
eng_xjob *eng_xjob_new(const uint8_t id[16], int64_t ts, int64_t recorded_us,
                       const char *role, const char *session, const char *text,
                       size_t text_len, const char *metadata);
/* Queue job for u (REQUIRES: u's write lock, held by the writer that
 * stored the turn, so that one user's jobs queue in write order; or
 * dm_open's recovery, before any writer exists).  A job somebody waits
 * for does not wake the thread: the waiter runs it (eng_xq_run).  True
 * when the caller must run u's queue itself once it has unlocked u (no
 * thread, or the queue past its bounds). */
bool eng_xq_push(dm_db *db, eng_user *u, eng_xjob *job);
/* Extract u's queued turns in this thread until wait->done (wait NULL:
 * until u has none).  REQUIRES: no user lock held. */
void eng_xq_run(dm_db *db, eng_user *u, eng_xwait *wait);
void eng_xjob_free(eng_xjob *job);

/* The name of the user's own node in its graph. */
#define ENG_USER_NODE "user"

/* util.c */
int eng_validate_name(const char *what, const char *s, bool required, size_t *len);
int eng_validate_text(const dm_db *db, const char *what, const char *s, size_t len);
int eng_validate_metadata(const dm_db *db, const char *s, char **canonical);
void eng_new_id(dm_db *db, uint8_t out[16]);
void eng_id_seen(dm_db *db, const uint8_t id[16]);
bool eng_vec_is_zero(const float *v, uint32_t dim);
int eng_memory_fill(dm_memory *out, const key_tu *tu, int64_t ts,
                    const uint8_t id[16], buf_slice value, unsigned flags);
void eng_memory_fini(dm_memory *m);
int eng_write(dm_db *db, kv_batch *b);
/* eng_write without waiting for a sync: for what may be lost in a crash
 * (salience refreshes); the next synced write makes it durable too. */
int eng_write_lazy(dm_db *db, kv_batch *b);

#endif
