/*
 * util.c -- the engine's small shared pieces: argument validation,
 * metadata JSON (jansson), memory ids (UUID version 7), ISO 8601 times and
 * the conversion of stored records into the public dm_memory.
 *
 * Ids: 48 bits of Unix milliseconds, the version nibble 7, a 12-bit
 * counter, the variant bits and 62 random bits.  Within one millisecond the
 * counter increases; when it would overflow, or when the clock goes back,
 * the generator moves to the next millisecond of its own, so ids are
 * strictly increasing in creation order for the life of the database
 * (eng_id_seen raises the floor to the largest stored id at open).
 */
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/err.h"
#include "embed/tokenize.h"
#include "engine/engine_int.h"
#include "engine/record.h"

const char *dm_errmsg(void) { return err_last_msg(); }

int eng_validate_name(const char *what, const char *s, bool required, size_t *len)
{
    *len = 0;
    if (!s) {
        if (required)
            return err_set_msg(DM_EINVAL, "%s is required", what);
        return DM_OK;
    }
    size_t n = strlen(s), bad = 0;
    if (n == 0)
        return err_set_msg(DM_EINVAL, "%s is empty", what);
    if (n > DM_MAX_NAME_LEN)
        return err_set_msg(DM_EINVAL, "%s is %zu bytes; the limit is %d", what, n,
                           DM_MAX_NAME_LEN);
    if (!tok_utf8_valid(s, n, &bad))
        return err_set_msg(DM_EINVAL, "%s is not valid UTF-8 (byte %zu)", what, bad);
    *len = n;
    return DM_OK;
}

int eng_validate_text(const dm_db *db, const char *what, const char *s, size_t len)
{
    size_t bad = 0;
    if (!s || len == 0)
        return err_set_msg(DM_EINVAL, "%s is empty", what);
    if (len > db->opt.max_text_bytes)
        return err_set_msg(DM_ETOOBIG, "%s is %zu bytes; the limit is %zu", what, len,
                           db->opt.max_text_bytes);
    if (memchr(s, 0, len))
        return err_set_msg(DM_EINVAL, "%s contains a NUL byte at offset %zu", what,
                           (size_t)((const char *)memchr(s, 0, len) - s));
    if (!tok_utf8_valid(s, len, &bad))
        return err_set_msg(DM_EINVAL, "%s is not valid UTF-8 (byte %zu)", what, bad);
    return DM_OK;
}

/*
 * Parse metadata, require an object, and return its compact form (owned by
 * the caller, dm_free).  NULL metadata becomes "{}".
 */
int eng_validate_metadata(const dm_db *db, const char *s, char **canonical)
{
    *canonical = NULL;
    if (!s || !strcmp(s, "{}")) {
        *canonical = dm_strdup("{}");
        return *canonical ? DM_OK : err_set_msg(DM_ENOMEM, "out of memory");
    }
    size_t n = strlen(s);
    if (n > db->opt.max_metadata_bytes)
        return err_set_msg(DM_ETOOBIG, "metadata is %zu bytes; the limit is %zu", n,
                           db->opt.max_metadata_bytes);
    size_t bad = 0;
    if (!tok_utf8_valid(s, n, &bad))
        return err_set_msg(DM_EINVAL, "metadata is not valid UTF-8 (byte %zu)", bad);
    json_error_t je;
    json_t *j = json_loadb(s, n, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        return err_set_msg(DM_EINVAL, "metadata is not valid JSON: %s at line %d column %d",
                           je.text, je.line, je.column);
    if (!json_is_object(j)) {
        const char *what = json_is_array(j) ? "an array" : "a scalar";
        json_decref(j);
        return err_set_msg(DM_EINVAL, "metadata must be a JSON object, not %s", what);
    }
    char *out = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!out)
        return err_set_msg(DM_ENOMEM, "out of memory formatting metadata");
    *canonical = dm_strdup(out);
    free(out);
    return *canonical ? DM_OK : err_set_msg(DM_ENOMEM, "out of memory");
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

void eng_new_id(dm_db *db, uint8_t out[16])
{
    uint64_t now_ms = clock_wall_us() / 1000;
    pthread_mutex_lock(&db->id_mu);
    if (now_ms > db->id_last_ms) {
        db->id_last_ms = now_ms;
        db->id_counter = 0;
    } else if (++db->id_counter > 0xfff) {
        db->id_last_ms++;
        db->id_counter = 0;
    }
    uint64_t ms = db->id_last_ms;
    uint32_t ctr = db->id_counter;
    uint64_t r = splitmix(&db->id_rand);
    pthread_mutex_unlock(&db->id_mu);
    for (int i = 0; i < 6; i++)
        out[i] = (uint8_t)(ms >> (40 - 8 * i));
    out[6] = (uint8_t)(0x70 | ((ctr >> 8) & 0x0f));
    out[7] = (uint8_t)ctr;
    out[8] = (uint8_t)(0x80 | (r & 0x3f));
    for (int i = 9; i < 16; i++)
        out[i] = (uint8_t)(r >> (8 * (i - 8)));
}

void eng_id_seen(dm_db *db, const uint8_t id[16])
{
    uint64_t ms = 0;
    for (int i = 0; i < 6; i++)
        ms = (ms << 8) | id[i];
    uint32_t ctr = ((uint32_t)(id[6] & 0x0f) << 8) | id[7];
    pthread_mutex_lock(&db->id_mu);
    if (ms > db->id_last_ms || (ms == db->id_last_ms && ctr > db->id_counter)) {
        db->id_last_ms = ms;
        db->id_counter = ctr;
    }
    pthread_mutex_unlock(&db->id_mu);
}

void dm_id_format(const dm_id *id, char out[DM_ID_STRLEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[id->bytes[i] >> 4];
        out[o++] = hex[id->bytes[i] & 15];
    }
    out[o] = 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int dm_id_parse(const char *s, dm_id *out)
{
    dm_id id;
    memset(out, 0, sizeof *out);
    if (!s)
        return err_set_msg(DM_EINVAL, "id is missing");
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            if (s[o] != '-')
                return err_set_msg(DM_EINVAL, "id: expected '-' at position %zu", o);
            o++;
        }
        int hi = s[o] ? hexval((unsigned char)s[o]) : -1;
        if (hi < 0)
            return err_set_msg(DM_EINVAL, "id: expected a hex digit at position %zu", o);
        int lo = s[o + 1] ? hexval((unsigned char)s[o + 1]) : -1;
        if (lo < 0)
            return err_set_msg(DM_EINVAL, "id: expected a hex digit at position %zu", o + 1);
        id.bytes[i] = (uint8_t)(hi << 4 | lo);
        o += 2;
    }
    if (s[o])
        return err_set_msg(DM_EINVAL, "id: unexpected character at position %zu", o);
    *out = id;
    return DM_OK;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * civil-calendar arithmetic, restated). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

static int digits(const char *s, size_t *o, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[*o + i]))
            return 0;
        v = v * 10 + (s[*o + i] - '0');
    }
    *o += (size_t)n;
    *out = v;
    return 1;
}

int dm_time_parse(const char *s, int64_t *out_us)
{
    *out_us = 0;
    if (!s || !*s)
        return err_set_msg(DM_EINVAL, "time is empty");
    size_t o = 0;
    int Y, M, D, h = 0, mi = 0, sec = 0;
    int64_t frac_us = 0, off_s = 0;
    if (!digits(s, &o, 4, &Y) || s[o++] != '-' || !digits(s, &o, 2, &M) ||
        s[o++] != '-' || !digits(s, &o, 2, &D))
        return err_set_msg(DM_EINVAL, "time '%s': expected YYYY-MM-DD at position 0", s);
    static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
    if (M < 1 || M > 12)
        return err_set_msg(DM_EINVAL, "time '%s': month %d out of range at position 5", s, M);
    if (D < 1 || D > mdays[M - 1] || (M == 2 && D == 29 && !leap))
        return err_set_msg(DM_EINVAL, "time '%s': day %d out of range at position 8", s, D);
    if (s[o] == 'T' || s[o] == 't' || s[o] == ' ') {
        o++;
        if (!digits(s, &o, 2, &h) || s[o++] != ':' || !digits(s, &o, 2, &mi))
            return err_set_msg(DM_EINVAL, "time '%s': expected hh:mm at position 11", s);
        if (s[o] == ':') {
            o++;
            if (!digits(s, &o, 2, &sec))
                return err_set_msg(DM_EINVAL, "time '%s': expected seconds at position %zu", s, o);
            if (s[o] == '.' || s[o] == ',') {
                o++;
                int64_t scale = 100000;
                if (!isdigit((unsigned char)s[o]))
                    return err_set_msg(DM_EINVAL, "time '%s': expected a fraction at position %zu", s, o);
                while (isdigit((unsigned char)s[o])) {
                    frac_us += (s[o] - '0') * scale;
                    scale /= 10;
                    o++;
                }
            }
        }
        if (h > 23)
            return err_set_msg(DM_EINVAL, "time '%s': hour %d out of range at position 11", s, h);
        if (mi > 59)
            return err_set_msg(DM_EINVAL, "time '%s': minute %d out of range at position 14", s, mi);
        if (sec > 60)
            return err_set_msg(DM_EINVAL, "time '%s': second %d out of range at position 17", s, sec);
        if (s[o] == 'Z' || s[o] == 'z') {
            o++;
        } else if (s[o] == '+' || s[o] == '-') {
            int sign = s[o] == '-' ? -1 : 1, oh, om = 0;
            size_t at = o++;
            if (!digits(s, &o, 2, &oh))
                return err_set_msg(DM_EINVAL, "time '%s': bad zone at position %zu", s, at);
            if (s[o] == ':')
                o++;
            if (isdigit((unsigned char)s[o]) && !digits(s, &o, 2, &om))
                return err_set_msg(DM_EINVAL, "time '%s': bad zone at position %zu", s, at);
            if (oh > 23 || om > 59)
                return err_set_msg(DM_EINVAL, "time '%s': bad zone at position %zu", s, at);
            off_s = sign * (oh * 3600 + om * 60);
        }
    }
    if (s[o])
        return err_set_msg(DM_EINVAL, "time '%s': unexpected character at position %zu", s, o);
    int64_t secs = days_from_civil(Y, (unsigned)M, (unsigned)D) * 86400 + h * 3600 +
                   mi * 60 + sec - off_s;
    *out_us = secs * 1000000 + frac_us;
    return DM_OK;
}

void dm_time_format(int64_t us, char out[40])
{
    int64_t secs = us / 1000000, frac = us % 1000000;
    if (frac < 0) {
        frac += 1000000;
        secs--;
    }
    int64_t days = secs / 86400, rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999) {
        int n = snprintf(out, 40, "%04lld-%02u-%02uT%02d:%02d:%02d", (long long)y, m, d,
                         (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60));
        if (frac)
            snprintf(out + n, (size_t)(40 - n), ".%06lldZ", (long long)frac);
        else
            snprintf(out + n, (size_t)(40 - n), "Z");
        return;
    }
    /* The same by hand: a search answer prints three per result. */
    const int64_t f[] = { y, m, d, rem / 3600, rem / 60 % 60, rem % 60, frac };
    static const char sep[] = "--T::.";
    char *p = out;
    for (int i = 0; i < 7; i++) {
        int w = i == 0 ? 4 : i == 6 ? 6 : 2;
        if (i == 6 && !frac)
            break;
        if (i)
            *p++ = sep[i - 1];
        for (int j = w - 1, v = (int)f[i]; j >= 0; j--, v /= 10)
            p[j] = (char)('0' + v % 10);
        p += w;
    }
    *p++ = 'Z';
    *p = 0;
}

bool eng_vec_is_zero(const float *v, uint32_t dim)
{
    for (uint32_t i = 0; i < dim; i++)
        if (v[i] != 0.0f)
            return false;
    return true;
}

void eng_memory_fini(dm_memory *m)
{
    if (!m)
        return;
    dm_free(m->tenant);
    dm_free(m->user_id);
    dm_free(m->agent_id);
    dm_free(m->session_id);
    dm_free(m->role);
    dm_free(m->text);
    dm_free(m->metadata);
    dm_free(m->embedding);
    memset(m, 0, sizeof *m);
}

void dm_memory_free(dm_memory *m)
{
    eng_memory_fini(m);
    dm_free(m);
}

int eng_memory_fill(dm_memory *out, const key_tu *tu, int64_t ts,
                    const uint8_t id[16], buf_slice value, unsigned flags)
{
    rec_memory r;
    buf_slice tenant, user;
    size_t tl;
    memset(out, 0, sizeof *out);
    int rc = rec_memory_decode(value, &r);
    if (rc)
        return rc;
    if (!key_tu_split(tu->b, tu->len, &tenant, &user, &tl))
        return err_set_msg(DM_ECORRUPT, "malformed user prefix in a memory key");
    memcpy(out->id.bytes, id, 16);
    out->tenant = dm_strndup(tenant.ptr, tenant.len);
    out->user_id = dm_strndup(user.ptr, user.len);
    out->role = dm_strndup(r.role.ptr, r.role.len);
    out->text = dm_strndup(r.text.ptr, r.text.len);
    out->metadata = dm_strndup(r.metadata.ptr, r.metadata.len);
    if (r.agent_id.ptr)
        out->agent_id = dm_strndup(r.agent_id.ptr, r.agent_id.len);
    if (r.session_id.ptr)
        out->session_id = dm_strndup(r.session_id.ptr, r.session_id.len);
    if (!out->tenant || !out->user_id || !out->role || !out->text || !out->metadata ||
        (r.agent_id.ptr && !out->agent_id) || (r.session_id.ptr && !out->session_id))
        goto nomem;
    out->text_len = r.text.len;
    out->event_time_us = ts;
    out->record_time_us = r.record_time_us;
    out->salience = r.salience;
    out->decay_rate = r.decay_rate;
    out->access_count = r.access_count;
    out->last_access_us = r.last_access_us;
    out->kind = (dm_memory_kind)r.kind;
    out->state = (dm_memory_state)r.state;
    out->dim = r.dim;
    if ((flags & DM_WITH_EMBEDDING) && r.dim) {
        out->embedding = dm_malloc(sizeof(float) * r.dim);
        if (!out->embedding)
            goto nomem;
        rec_memory_embedding(&r, out->embedding);
    }
    return DM_OK;
nomem:
    eng_memory_fini(out);
    return err_set_msg(DM_ENOMEM, "out of memory copying a memory");
}
