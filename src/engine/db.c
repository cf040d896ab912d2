/*
 * db.c -- opening and closing a memory database: options, the storage
 * engine underneath, the embedding provider, the recorded model, the id
 * generator's floor, statistics and export.
 *
 * The database directory is the storage engine's directory; every engine
 * record lives in its keyspace (keys.h).  The 'D' "model" record holds the
 * name and dimension of the embedding model that produced the stored
 * vectors.  It is written when the first database open creates it; a later
 * open with another model is refused (vectors of two models are not
 * comparable) unless the caller asks to re-embed, which rewrites every
 * memory's embedding and drops the index checkpoints so that indexes are
 * rebuilt from the records.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "cognitive/llm.h"
#include "engine/engine_int.h"
#include "os/vfs.h"
#include "engine/record.h"
#include "engine/record_format.h"

#define DEFAULT_MODEL_FILE "glove-6b-100d.dmm"

void dm_options_init(dm_options *o)
{
    memset(o, 0, sizeof *o);
    o->create_if_missing = 1;
    o->sync = DM_SYNC_BATCH;
    o->sync_interval_ms = 2;
    o->memtable_bytes = 16u << 20;
    o->block_cache_bytes = 64u << 20;
    o->max_text_bytes = 32u << 10;
    o->max_metadata_bytes = 64u << 10;
    o->embedder = DM_EMBED_BUILTIN;
    o->http_retries = 2;
    o->bm25_k1 = 0.8f;
    o->bm25_b = 0.5f;
    o->checkpoint_ops = 1024;
    o->refresh_boost = 0.2f;
    o->refresh_interval_s = 3600;
    o->refresh_rate = 2000;
    o->prune_threshold = 0.05f;
    o->decay_interval_s = 3600;
    o->decay_rates[DM_KIND_EPISODIC] = 0.01f;
    o->decay_rates[DM_KIND_FACT] = 0.0f;
    o->decay_rates[DM_KIND_SUMMARY] = 0.005f;
    o->user_idle_s = 900;
}

int eng_write(dm_db *db, kv_batch *b)
{
    return kv_write(db->kv, NULL, b);
}

int eng_write_lazy(dm_db *db, kv_batch *b)
{
    kv_write_options wo = { KV_SYNC_NONE };
    return kv_write(db->kv, &wo, b);
}

static int file_exists(const char *p)
{
    return access(p, R_OK) == 0;
}

/* The built-in model: the explicit path, $DM_MODEL, then models/ in the
 * working directory and beside the executable's tree. */
static int find_model(const char *explicit_path, char *out, size_t cap)
{
    if (explicit_path) {
        snprintf(out, cap, "%s", explicit_path);
        return DM_OK;
    }
    const char *env = getenv("DM_MODEL");
    if (env && *env) {
        snprintf(out, cap, "%s", env);
        return DM_OK;
    }
    snprintf(out, cap, "models/%s", DEFAULT_MODEL_FILE);
    if (file_exists(out))
        return DM_OK;
    char exe[PATH_MAX - 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        static const char *const ups[] = { "/../models/", "/../../models/",
                                           "/../../../models/", "/../share/deltamemory/" };
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = 0;
        for (size_t i = 0; i < sizeof ups / sizeof ups[0]; i++) {
            int n_out = snprintf(out, cap, "%s%s%s", exe, ups[i], DEFAULT_MODEL_FILE);
            if (n_out > 0 && (size_t)n_out < cap && file_exists(out))
                return DM_OK;
        }
    }
    snprintf(out, cap, "models/%s", DEFAULT_MODEL_FILE);
    return DM_OK;
}

static int open_embedder(dm_db *db)
{
    const dm_options *o = &db->opt;
    if (o->embedder == DM_EMBED_HTTP) {
        embed_http_config c = { .base_url = o->http_base_url, .model = o->http_model,
                                .api_key_env = o->http_api_key_env, .dim = o->http_dim,
                                .batch = o->http_batch, .timeout_ms = o->http_timeout_ms,
                                .retries = o->http_retries,
                                .send_dimensions = o->http_dim != 0 };
        return embed_http_open(&c, &db->emb);
    }
    if (o->embedder != DM_EMBED_BUILTIN)
        return err_set_msg(DM_EINVAL, "options: unknown embedder kind %d", (int)o->embedder);
    char path[PATH_MAX];
    find_model(o->model_path, path, sizeof path);
    return embed_builtin_open(path, &db->emb);
}

static int validate_options(const dm_options *o)
{
    if (o->sync < DM_SYNC_NONE || o->sync > DM_SYNC_ALWAYS)
        return err_set_msg(DM_EINVAL, "options: sync must be none, batch or always");
    if (o->max_text_bytes == 0 || o->max_text_bytes > (16u << 20) - 4096)
        return err_set_msg(DM_EINVAL, "options: max_text_bytes must be 1..16 MB");
    if (o->max_metadata_bytes == 0 || o->max_metadata_bytes > (1u << 20))
        return err_set_msg(DM_EINVAL, "options: max_metadata_bytes must be 1..1 MB");
    if (!(o->bm25_k1 >= 0) || !(o->bm25_b >= 0 && o->bm25_b <= 1))
        return err_set_msg(DM_EINVAL, "options: bm25_k1 must be >= 0 and bm25_b in [0, 1]");
    if (o->hnsw_m == 1 || o->hnsw_m > 256)
        return err_set_msg(DM_EINVAL, "options: hnsw_m must be 2..256");
    if (o->checkpoint_ops == 0)
        return err_set_msg(DM_EINVAL, "options: checkpoint_ops must be at least 1");
    if (!(o->refresh_boost <= 1))
        return err_set_msg(DM_EINVAL, "options: refresh_boost must be at most 1");
    if (!(o->prune_threshold >= 0 && o->prune_threshold < 1))
        return err_set_msg(DM_EINVAL, "options: prune_threshold must be in [0, 1)");
    for (int i = 0; i < 3; i++)
        if (!(o->decay_rates[i] >= 0 && o->decay_rates[i] < 1e6f))
            return err_set_msg(DM_EINVAL, "options: decay_rates[%d] must be finite and >= 0", i);
    return DM_OK;
}

static size_t meta_key(uint8_t *k, const char *name)
{
    size_t n = strlen(name);
    k[0] = KEY_META;
    memcpy(k + 1, name, n);
    return n + 1;
}

/* Delete every key of kind (all users); used by re-embedding. */
static int delete_kind(dm_db *db, int kind)
{
    iter *it = NULL;
    kv_batch *b = kv_batch_new();
    uint8_t lo = (uint8_t)kind;
    int rc = b ? kv_iter_new(db->kv, NULL, &it) : DM_ENOMEM;
    for (eng_seek(it, buf_slice_of(&lo, 1)); !rc && eng_valid(it); iter_next(it)) {
        buf_slice k = iter_key(it);
        if (k.ptr[0] != lo)
            break;
        rc = kv_batch_delete(b, k);
        if (!rc && kv_batch_count(b) >= 8192) {
            rc = eng_write(db, b);
            kv_batch_clear(b);
        }
    }
    if (!rc && it)
        rc = iter_status(it);
    if (!rc && kv_batch_count(b))
        rc = eng_write(db, b);
    iter_free(it);
    kv_batch_free(b);
    return rc;
}

/* Re-embed every memory with the current model. */
static int reembed_all(dm_db *db)
{
    iter *it = NULL;
    kv_batch *b = kv_batch_new();
    buf v;
    buf_init(&v);
    uint8_t lo = KEY_MEMORY;
    float *vec = dm_malloc(sizeof(float) * db->dim);
    uint64_t n = 0;
    int rc = b && vec ? kv_iter_new(db->kv, NULL, &it) : DM_ENOMEM;
    for (eng_seek(it, buf_slice_of(&lo, 1)); !rc && eng_valid(it); iter_next(it)) {
        buf_slice k = iter_key(it);
        if (k.ptr[0] != lo)
            break;
        rec_memory r;
        rc = rec_memory_decode(iter_value(it), &r);
        const char *t = (const char *)r.text.ptr;
        size_t tl = r.text.len;
        if (!rc)
            rc = embedder_embed(db->emb, &t, &tl, 1, vec);
        if (rc)
            break;
        r.dim = db->dim;
        r.emb_f16 = db->vec_f16;
        buf_clear(&v);
        rc = rec_memory_encode(&r, vec, &v);
        if (!rc)
            rc = kv_batch_put(b, k, buf_slice_of(v.ptr, v.len));
        if (!rc && kv_batch_count(b) >= 1024) {
            rc = eng_write(db, b);
            kv_batch_clear(b);
        }
        n++;
    }
    if (!rc && it)
        rc = iter_status(it);
    if (!rc && kv_batch_count(b))
        rc = eng_write(db, b);
    iter_free(it);
    for (int kind = 0; !rc && kind < 3; kind++)
        rc = delete_kind(db, kind == 0 ? KEY_CKPT_HEAD : kind == 1 ? KEY_CKPT_CHUNK : KEY_LOG);
    if (!rc)
        log_msg(LOG_INFO, "re-embedded %llu memories with %s", (unsigned long long)n,
                embedder_name(db->emb));
    kv_batch_free(b);
    buf_fini(&v);
    dm_free(vec);
    return rc;
}

/* Record the model in a new database; compare it in an existing one. */
static int check_model(dm_db *db)
{
    uint8_t k[64];
    size_t kl = meta_key(k, META_MODEL);
    buf v;
    buf_init(&v);
    const char *name = embedder_name(db->emb);
    int rc = kv_get(db->kv, NULL, buf_slice_of(k, kl), &v);
    if (rc == DM_OK) {
        buf_slice s = buf_slice_of(v.ptr, v.len), nm;
        uint32_t dim;
        if (!get_lenbytes(&s, &nm) || !get_u32(&s, &dim) || s.len) {
            rc = err_set_msg(DM_ECORRUPT, "the database's model record is damaged");
            goto out;
        }
        if (nm.len == strlen(name) && !memcmp(nm.ptr, name, nm.len) && dim == db->dim)
            goto out;
        if (!db->opt.reembed) {
            rc = err_set_msg(DM_EINVAL,
                             "the database was embedded with %.*s (%u dimensions), not %s "
                             "(%u): open it with the same model, or re-embed every memory "
                             "with `deltamemory --data %s --model NEW-MODEL reembed`",
                             (int)nm.len, (const char *)nm.ptr, dim, name, db->dim, db->path);
            goto out;
        }
        rc = reembed_all(db);
        if (rc)
            goto out;
    } else if (rc != DM_ENOTFOUND) {
        goto out;
    }
    buf_clear(&v);
    kv_batch *b = kv_batch_new();
    rc = b ? DM_OK : DM_ENOMEM;
    if (!rc && (buf_put_lenbytes(&v, name, strlen(name)) || buf_put_u32(&v, db->dim)))
        rc = DM_ENOMEM;
    if (!rc)
        rc = kv_batch_put(b, buf_slice_of(k, kl), buf_slice_of(v.ptr, v.len));
    uint8_t fv = ENGINE_FORMAT_VERSION;
    uint8_t fk[64];
    size_t fkl = meta_key(fk, META_FORMAT);
    if (!rc)
        rc = kv_batch_put(b, buf_slice_of(fk, fkl), buf_slice_of(&fv, 1));
    if (!rc)
        rc = eng_write(db, b);
    kv_batch_free(b);
out:
    buf_fini(&v);
    return rc;
}

static int check_format(dm_db *db)
{
    uint8_t k[64];
    size_t kl = meta_key(k, META_FORMAT);
    buf v;
    buf_init(&v);
    int rc = kv_get(db->kv, NULL, buf_slice_of(k, kl), &v);
    if (rc == DM_ENOTFOUND)
        rc = DM_OK;
    else if (!rc && (v.len != 1 || v.ptr[0] != ENGINE_FORMAT_VERSION))
        rc = err_set_msg(DM_EVERSION, "database record format %u is not supported (this "
                         "version reads %u)", v.len ? v.ptr[0] : 0, ENGINE_FORMAT_VERSION);
    buf_fini(&v);
    return rc;
}

/* Ids only grow: start the generator above the largest stored id. */
static int seed_ids(dm_db *db)
{
    iter *it = NULL;
    uint8_t hi = KEY_ID + 1;
    db->id_rand = clock_wall_us() ^ ((uint64_t)getpid() << 32) ^ clock_mono_ns();
    int rc = kv_iter_new(db->kv, NULL, &it);
    if (rc)
        return rc;
    iter_seek(it, buf_slice_of(&hi, 1));
    if (iter_valid(it))
        iter_prev(it);
    else
        iter_seek_last(it);
    if (iter_valid(it)) {
        buf_slice k = iter_key(it);
        if (k.len == 17 && k.ptr[0] == KEY_ID)
            eng_id_seen(db, k.ptr + 1);
    }
    rc = iter_status(it);
    iter_free(it);
    return rc;
}

static char *dup_opt(const char *s, int *rc)
{
    if (!s)
        return NULL;
    char *d = dm_strdup(s);
    if (!d)
        *rc = DM_ENOMEM;
    return d;
}

int dm_open(const char *path, const dm_options *options, dm_db **out)
{
    dm_db *db = NULL;
    int rc = DM_OK;
    *out = NULL;
    if (!path || !*path)
        return err_set_msg(DM_EINVAL, "database path is empty");
    db = dm_calloc(1, sizeof *db);
    if (!db)
        return err_set_msg(DM_ENOMEM, "out of memory opening %s", path);
    if (options)
        db->opt = *options;
    else
        dm_options_init(&db->opt);
    /* The database keeps its own copies of the option strings. */
    db->opt.model_path = dup_opt(db->opt.model_path, &rc);
    db->opt.http_base_url = dup_opt(db->opt.http_base_url, &rc);
    db->opt.http_model = dup_opt(db->opt.http_model, &rc);
    db->opt.http_api_key_env = dup_opt(db->opt.http_api_key_env, &rc);
    db->opt.llm_base_url = dup_opt(db->opt.llm_base_url, &rc);
    db->opt.llm_model = dup_opt(db->opt.llm_model, &rc);
    db->opt.llm_api_key_env = dup_opt(db->opt.llm_api_key_env, &rc);
    db->path = dm_strdup(path);
    pthread_mutex_init(&db->id_mu, NULL);
    for (int i = 0; i < ENG_STRIPES; i++)
        pthread_mutex_init(&db->stripes[i].mu, NULL);
    if (rc || !db->path) {
        rc = err_set_msg(DM_ENOMEM, "out of memory opening %s", path);
        goto fail;
    }
    rc = validate_options(&db->opt);
    if (rc)
        goto fail;
    rc = open_embedder(db);
    if (rc)
        goto fail;
    if (db->opt.llm_base_url && db->opt.llm_base_url[0]) {
        llm_config lc = { .base_url = db->opt.llm_base_url, .model = db->opt.llm_model,
                          .api_key_env = db->opt.llm_api_key_env,
                          .timeout_ms = db->opt.llm_timeout_ms };
        if ((rc = llm_open(&lc, &db->llm)))
            goto fail;
    }
    db->dim = embedder_dim(db->emb);
    db->hp = hnsw_params_default(db->dim);
    if (db->opt.hnsw_m)
        db->hp.M = db->opt.hnsw_m;
    /* 128, not the index's 200: with half-precision vectors it builds a
     * 100k graph in ~60% of the time at the same recall@10 (0.984 vs 0.985
     * at ef_search 64; docs/benchmarks.md). */
    db->hp.ef_construction = db->opt.hnsw_ef_construction ? db->opt.hnsw_ef_construction : 128;
    if (db->opt.hnsw_ef_search)
        db->hp.ef_search = db->opt.hnsw_ef_search;
    if (db->opt.flat_threshold)
        db->hp.flat_threshold = db->opt.flat_threshold;
    db->vec_f16 = !db->opt.vectors_f32;
    db->hp.elem = db->vec_f16 ? HNSW_ELEM_F16 : HNSW_ELEM_F32;
    db->bp.k1 = db->opt.bm25_k1;
    db->bp.b = db->opt.bm25_b;

    kv_options ko = kv_options_default();
    ko.create_if_missing = db->opt.create_if_missing != 0;
    ko.sync = (int)db->opt.sync;
    if (db->opt.sync_interval_ms)
        ko.sync_interval_ms = (int)db->opt.sync_interval_ms;
    if (db->opt.memtable_bytes)
        ko.write_buffer_size = db->opt.memtable_bytes;
    if (db->opt.block_cache_bytes)
        ko.block_cache_size = db->opt.block_cache_bytes;
    ko.pread_tables = db->opt.pread_tables != 0;
    /* Memory records are mostly float32 embeddings, which LZ4 HC cannot
     * shrink much more than the fast compressor; on a small machine the HC
     * effort would be taken from the writers. */
    ko.compaction_lz4_hc_level = 0;
    /* A block is compressed only when that saves a third of it (the storage
     * engine's default is an eighth).  Blocks of memory records shrink by
     * about a fifth, and a compressed block costs on every read that the
     * block cache misses -- with one user's records spread over the table
     * files, most reads: a decode, a copy in the cache and an eviction.  A
     * block stored as it is is read in place from the mapped file, and the
     * page cache holds it once instead of twice (compressed in the file,
     * decoded in the block cache).  Blocks of long text still shrink by
     * more than a third and stay compressed. */
    ko.table.min_saving_div = 3;
    rc = kv_open(path, &ko, &db->kv);
    if (rc)
        goto fail;
    atomic_init(&db->decay_gen, 1);
    atomic_init(&db->has_decay_rates, false);
    rc = check_format(db);
    if (!rc)
        rc = check_model(db);
    if (!rc)
        rc = seed_ids(db);
    if (!rc)
        rc = eng_decay_rates_open(db);
    if (rc)
        goto fail;
    eng_indexer_start(db);
    eng_xq_start(db);
    if ((rc = eng_xq_recover(db))) {
        /* The database is fine; the turns left unextracted are not lost
         * (their records stay) but cannot be queued now. */
        char msg[256];
        snprintf(msg, sizeof msg, "%s", err_last_msg());
        dm_close(db);
        return err_set_msg(rc, "queueing the turns still to extract: %s", msg);
    }
    *out = db;
    return DM_OK;
fail:
    {
        /* Keep the first failure's message across the cleanup. */
        char msg[256];
        snprintf(msg, sizeof msg, "%s", err_last_msg());
        kv_close(db->kv);
        embedder_close(db->emb);
        llm_close(db->llm);
        dm_free((char *)db->opt.llm_base_url);
        dm_free((char *)db->opt.llm_model);
        dm_free((char *)db->opt.llm_api_key_env);
        for (int i = 0; i < ENG_STRIPES; i++)
            pthread_mutex_destroy(&db->stripes[i].mu);
        pthread_mutex_destroy(&db->id_mu);
        dm_free((char *)db->opt.model_path);
        dm_free((char *)db->opt.http_base_url);
        dm_free((char *)db->opt.http_model);
        dm_free((char *)db->opt.http_api_key_env);
        dm_free(db->path);
        dm_free(db);
        err_set_msg(rc, "%s", msg);
    }
    return rc;
}

int dm_close(dm_db *db)
{
    if (!db)
        return DM_OK;
    eng_xq_stop(db);
    eng_indexer_stop(db);
    int rc = eng_users_close(db);
    int rc2 = kv_close(db->kv);
    if (!rc)
        rc = rc2;
    embedder_close(db->emb);
    llm_close(db->llm);
    dm_free((char *)db->opt.llm_base_url);
    dm_free((char *)db->opt.llm_model);
    dm_free((char *)db->opt.llm_api_key_env);
    pthread_mutex_destroy(&db->id_mu);
    dm_free((char *)db->opt.model_path);
    dm_free((char *)db->opt.http_base_url);
    dm_free((char *)db->opt.http_model);
    dm_free((char *)db->opt.http_api_key_env);
    dm_free(db->path);
    dm_free(db);
    return rc;
}

static void count_loaded(dm_db *db, eng_user *u, void *arg)
{
    dm_stats *out = arg;
    out->n_loaded_users++;
    if (u->vec && hnsw_has_graph(u->vec))
        out->n_graph_users++;
    out->index_pending += u->n_pend;
    out->index_bytes += eng_user_index_bytes(db, u);
}

int dm_stats_get(dm_db *db, dm_stats *out)
{
    memset(out, 0, sizeof *out);
    iter *it = NULL;
    uint8_t lo = KEY_USER;
    int rc = kv_iter_new(db->kv, NULL, &it);
    for (eng_seek(it, buf_slice_of(&lo, 1)); !rc && eng_valid(it); iter_next(it)) {
        buf_slice k = iter_key(it);
        if (k.ptr[0] != KEY_USER)
            break;
        rec_user u;
        if (rec_user_decode(iter_value(it), &u) == DM_OK && u.state == USER_LIVE) {
            out->n_users++;
            out->n_memories += u.n_memories;
        }
    }
    if (!rc)
        rc = iter_status(it);
    iter_free(it);
    if (rc)
        return rc;
    eng_users_scan_loaded(db, count_loaded, out);
    if (db->xq.inited) {
        pthread_mutex_lock(&db->xq.mu);
        out->extract_queued = db->xq.n_jobs;
        out->extract_done = db->xq.n_done;
        out->extract_failed = db->xq.n_failed;
        pthread_mutex_unlock(&db->xq.mu);
    }
    if (db->llm) {
        llm_usage lu;
        llm_usage_get(db->llm, &lu);
        out->llm_calls = lu.calls;
        out->llm_failures = lu.failures;
        out->llm_invalid = lu.invalid;
        out->llm_prompt_tokens = lu.prompt_tokens;
        out->llm_completion_tokens = lu.completion_tokens;
    }
    kv_stats ks;
    rc = kv_stats_get(db->kv, &ks);
    if (rc)
        return rc;
    /* Every file of the database: SSTables, WAL, MANIFEST. */
    vfs *v = vfs_posix();
    char **names = NULL;
    size_t n_names = 0;
    if (v->list(v, db->path, &names, &n_names) == DM_OK) {
        for (size_t i = 0; i < n_names; i++) {
            char p[PATH_MAX];
            uint64_t sz = 0;
            int n_p = snprintf(p, sizeof p, "%s/%s", db->path, names[i]);
            if (n_p > 0 && (size_t)n_p < sizeof p && v->file_size(v, p, &sz) == DM_OK)
                out->disk_bytes += sz;
        }
        vfs_list_free(names, n_names);
    }
    out->memtable_bytes = ks.memtable_bytes;
    out->table_bytes = ks.table_bytes;
    out->block_cache_bytes = ks.cache_bytes;
    out->block_cache_hits = ks.cache_hits;
    out->block_cache_misses = ks.cache_misses;
    out->wal_bytes = ks.wal_bytes_written;
    out->wal_syncs = ks.n_syncs;
    out->wal_sync_us = ks.sync_us;
    memcpy(out->wal_sync_buckets, ks.sync_buckets, sizeof out->wal_sync_buckets);
    out->flushes = ks.n_flushes;
    out->compactions = ks.n_compactions;
    out->compact_bytes_read = ks.compact_bytes_read;
    out->compact_bytes_written = ks.compact_bytes_written;
    out->l0_files = ks.levels[0].files;
    out->background_busy = ks.is_background_busy;
    out->write_stalls = ks.n_stalls;
    out->write_stall_us = ks.stall_us;
    int64_t heap = alloc_bytes_in_use();
    out->heap_bytes = heap > 0 ? (uint64_t)heap : 0;
    out->n_checkpoints = atomic_load(&db->n_checkpoints);
    out->n_unloads = atomic_load(&db->n_unloads);
    out->n_map_drops = ks.n_page_drops;
    out->refreshes = atomic_load(&db->n_refreshed);
    if (db->ix.inited) {
        pthread_mutex_lock(&db->ix.mu);
        out->refreshes_dropped = db->ix.rf_dropped;
        out->refresh_queued = db->ix.rf_n;
        pthread_mutex_unlock(&db->ix.mu);
    }
    out->n_replayed = atomic_load(&db->n_replayed);
    snprintf(out->model, sizeof out->model, "%s", embedder_name(db->emb));
    out->dim = db->dim;
    return DM_OK;
}

int dm_export(dm_db *db, const char *tenant, const char *user_id, dm_export_fn fn,
              void *arg)
{
    uint8_t lo[KEY_MAX];
    size_t lo_len = 1, tl = 0, ul = 0;
    int rc;
    if (!fn)
        return err_set_msg(DM_EINVAL, "export: no callback");
    if ((rc = eng_validate_name("tenant", tenant, false, &tl)) ||
        (rc = eng_validate_name("user_id", user_id, false, &ul)))
        return rc;
    lo[0] = KEY_MEMORY;
    if (user_id) {
        key_tu tu;
        if (!tenant)
            tenant = DM_DEFAULT_TENANT;
        key_tu_make(&tu, tenant, strlen(tenant), user_id, ul);
        lo_len = key_user_kind(lo, KEY_MEMORY, &tu);
    } else if (tenant) {
        lo[1] = (uint8_t)tl;
        memcpy(lo + 2, tenant, tl);
        lo_len = 2 + tl;
    }
    iter *it = NULL;
    rc = kv_iter_new(db->kv, NULL, &it);
    dm_memory m;
    for (eng_seek(it, buf_slice_of(lo, lo_len)); !rc && eng_valid(it); iter_next(it)) {
        buf_slice k = iter_key(it);
        if (k.len < lo_len || memcmp(k.ptr, lo, lo_len))
            break;
        buf_slice t, u;
        size_t tul;
        if (!key_tu_split(k.ptr + 1, k.len - 1, &t, &u, &tul) || k.len != 1 + tul + 24) {
            rc = err_set_msg(DM_ECORRUPT, "malformed memory key (%zu bytes)", k.len);
            break;
        }
        key_tu tu;
        memcpy(tu.b, k.ptr + 1, tul);
        tu.len = (uint32_t)tul;
        rc = eng_memory_fill(&m, &tu, key_ts_decode(dec_be64(k.ptr + 1 + tul)),
                             k.ptr + 1 + tul + 8, iter_value(it), DM_WITH_EMBEDDING);
        if (rc)
            break;
        int stop = fn(arg, &m);
        eng_memory_fini(&m);
        if (stop)
            rc = err_set_msg(DM_ECANCELED, "export stopped by the callback");
    }
    if (!rc)
        rc = iter_status(it);
    iter_free(it);
    return rc;
}
