/*
 * workload.h -- a deterministic write workload and its model, shared by
 * the crash and I/O-error tests: a seeded list of operations (single puts
 * and deletes, multi-entry batches, flushes) over a small key space, run
 * against a kv_db until an operation fails, and a check that the database
 * holds exactly the model's state.
 */
#ifndef DM_TEST_WORKLOAD_H
#define DM_TEST_WORKLOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "storage/kv.h"

#define WL_NKEYS 40
#define WL_NOPS 120
#define WL_MAX_ENTRIES 6

typedef struct wl_model {
    char v[WL_NKEYS][64];
    bool has[WL_NKEYS];
} wl_model;

typedef struct wl_op {
    int n; /* entries; 0 with is_flush */
    int key[WL_MAX_ENTRIES];
    bool is_del[WL_MAX_ENTRIES];
    char val[WL_MAX_ENTRIES][64];
    bool is_flush;
} wl_op;

/* wl_options -- small memtables, files and levels, so that the workload
 * goes through WAL rotations, flushes, MANIFEST commits and compactions
 * many times. */
kv_options wl_options(vfs *v, int sync);
/* wl_make -- WL_NOPS operations from seed into ops. */
void wl_make(wl_op *ops, uint64_t seed);
/* wl_apply -- applies op to the model. */
void wl_apply(wl_model *m, const wl_op *op);
/* wl_model_upto -- the model after ops[0..n). */
void wl_model_upto(wl_model *m, const wl_op *ops, int n);
/* wl_run -- runs ops until one fails; *acked = ops that succeeded.
 * Returns the first error (DM_OK when all succeeded). */
int wl_run(kv_db *db, const wl_op *ops, int *acked);
/* wl_matches -- whether gets and a full iteration agree with m. */
bool wl_matches(kv_db *db, const wl_model *m);
/* wl_matches_acked -- the database holds ops[0..acked), or ops[0..acked]
 * when the write in flight at the failure made it. */
bool wl_matches_acked(kv_db *db, const wl_op *ops, int acked);

#endif
