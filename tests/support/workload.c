/*
 * workload.c -- see workload.h.
 */
#include "workload.h"

#include <stdio.h>
#include <string.h>

#include "testutil.h"

static void key_of(char *k, int i)
{
    snprintf(k, 16, "key%03d", i);
}

kv_options wl_options(vfs *v, int sync)
{
    kv_options o = kv_options_default();
    o.vfs = v;
    o.sync = sync;
    o.write_buffer_size = 2048;
    o.level1_max_bytes = 8 << 10;
    o.target_file_size = 2048;
    o.l0_compaction_trigger = 2;
    o.table.block_size = 256;
    return o;
}

void wl_make(wl_op *ops, uint64_t seed)
{
    tu_rng r;
    tu_rng_seed(&r, seed);
    for (int i = 0; i < WL_NOPS; i++) {
        wl_op *o = &ops[i];
        memset(o, 0, sizeof *o);
        if (tu_randn(&r, 25) == 0) {
            o->is_flush = true;
            continue;
        }
        o->n = tu_randn(&r, 4) == 0 ? 2 + (int)tu_randn(&r, WL_MAX_ENTRIES - 1) : 1;
        for (int j = 0; j < o->n; j++) {
            o->key[j] = (int)tu_randn(&r, WL_NKEYS);
            o->is_del[j] = tu_randn(&r, 5) == 0;
            int len = 20 + (int)tu_randn(&r, 40);
            for (int c = 0; c < len; c++)
                o->val[j][c] = (char)('a' + tu_randn(&r, 26));
            o->val[j][len] = 0;
        }
    }
}

void wl_apply(wl_model *m, const wl_op *o)
{
    for (int j = 0; j < o->n; j++) {
        m->has[o->key[j]] = !o->is_del[j];
        if (!o->is_del[j])
            strcpy(m->v[o->key[j]], o->val[j]);
    }
}

void wl_model_upto(wl_model *m, const wl_op *ops, int n)
{
    memset(m, 0, sizeof *m);
    for (int i = 0; i < n; i++)
        wl_apply(m, &ops[i]);
}

int wl_run(kv_db *db, const wl_op *ops, int *acked)
{
    kv_batch *b = kv_batch_new();
    int rc = b ? DM_OK : DM_ENOMEM;
    char k[16];
    *acked = 0;
    for (int i = 0; i < WL_NOPS && !rc; i++) {
        const wl_op *o = &ops[i];
        if (o->is_flush) {
            rc = kv_flush(db);
        } else {
            kv_batch_clear(b);
            for (int j = 0; j < o->n && !rc; j++) {
                key_of(k, o->key[j]);
                if (o->is_del[j])
                    rc = kv_batch_delete(b, buf_slice_of(k, strlen(k)));
                else
                    rc = kv_batch_put(b, buf_slice_of(k, strlen(k)),
                                      buf_slice_of(o->val[j], strlen(o->val[j])));
            }
            if (!rc)
                rc = kv_write(db, NULL, b);
        }
        if (!rc)
            (*acked)++;
    }
    kv_batch_free(b);
    return rc;
}

bool wl_matches(kv_db *db, const wl_model *m)
{
    char k[16];
    buf v;
    buf_init(&v);
    bool ok = true;
    for (int i = 0; i < WL_NKEYS && ok; i++) {
        key_of(k, i);
        int rc = kv_get(db, NULL, buf_slice_of(k, strlen(k)), &v);
        if (m->has[i])
            ok = rc == DM_OK && v.len == strlen(m->v[i]) && !memcmp(v.ptr, m->v[i], v.len);
        else
            ok = rc == DM_ENOTFOUND;
    }
    buf_fini(&v);
    iter *it;
    if (ok && kv_iter_new(db, NULL, &it) == DM_OK) {
        int n = 0, want = 0;
        for (iter_seek_first(it); iter_valid(it); iter_next(it))
            n++;
        for (int i = 0; i < WL_NKEYS; i++)
            want += m->has[i];
        ok = n == want && iter_status(it) == DM_OK;
        iter_free(it);
    }
    return ok;
}

bool wl_matches_acked(kv_db *db, const wl_op *ops, int acked)
{
    wl_model m;
    wl_model_upto(&m, ops, acked < 0 ? 0 : acked);
    if (wl_matches(db, &m))
        return true;
    if (acked < 0 || acked >= WL_NOPS)
        return false;
    wl_apply(&m, &ops[acked]);
    return wl_matches(db, &m);
}
