/*
 * record.h -- values of the engine's records: memory, user, id index,
 * index log entry, checkpoint head.  Encoders append to a buf; decoders
 * validate every length against the bytes they are given and fail with
 * DM_ECORRUPT (the message names the record kind and the offset), never
 * trusting stored bytes.  Layouts: docs/format.md, "Memory engine records";
 * constants in record_format.h.
 */
#ifndef DM_ENGINE_RECORD_H
#define DM_ENGINE_RECORD_H

#include <stdint.h>

#include "base/buf.h"

/* A decoded memory value; the slices borrow from the value bytes. */
typedef struct rec_memory {
    uint8_t kind, state;
    int64_t record_time_us;
    float salience, decay_rate;
    uint32_t access_count;
    int64_t last_access_us;
    buf_slice role, agent_id, session_id; /* agent/session: p NULL = absent */
    buf_slice text, metadata;
    uint32_t dim;
    uint8_t emb_f16;          /* encode: store half precision; decode: stored so */
    const uint8_t *embedding; /* dim little-endian float32 or binary16, unaligned */
} rec_memory;

/* When the memory's salience was last refreshed: its last recall, or its
 * storing before any. */
static inline int64_t rec_memory_refreshed_us(const rec_memory *m)
{
    return m->last_access_us > m->record_time_us ? m->last_access_us : m->record_time_us;
}

int rec_memory_encode(const rec_memory *m, const float *embedding, buf *out);
int rec_memory_decode(buf_slice v, rec_memory *m);
/* Copy the embedding out (handles alignment and byte order). */
void rec_memory_embedding(const rec_memory *m, float *out);

/* The user record. */
enum { USER_LIVE = 0, USER_ERASING = 1 };
typedef struct rec_user {
    uint8_t state;
    int64_t created_us;
    uint64_t n_memories;  /* memories of the user (all states) */
    uint64_t next_useq;   /* next index log sequence number */
} rec_user;
int rec_user_encode(const rec_user *u, buf *out);
int rec_user_decode(buf_slice v, rec_user *u);

/* The index log entry. */
enum { LOG_ADD = 1, LOG_UPDATE = 2, LOG_DELETE = 3 };
typedef struct rec_log {
    uint8_t op;
    uint8_t id[16];
    int64_t ts;
    buf_slice old_text; /* the text indexed before (UPDATE, DELETE) */
} rec_log;
int rec_log_encode(const rec_log *l, buf *out);
int rec_log_decode(buf_slice v, rec_log *l);

/* The checkpoint head. */
typedef struct rec_head {
    uint64_t gen;
    uint64_t covered_useq; /* log entries <= this are in the checkpoint */
    uint32_t n_parts;
    uint64_t total_len;
    uint32_t crc;          /* CRC32C of the concatenated parts */
} rec_head;
int rec_head_encode(const rec_head *h, buf *out);
int rec_head_decode(buf_slice v, rec_head *h);

#endif
