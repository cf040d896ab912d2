/*
 * keys.c -- the HTTP server's API keys: DATA_DIR/keys.json, the key
 * store that maps a secret to a tenant (docs/format.md, "API keys").
 *
 * Design.  A secret is "dm_" + a 12-hex-digit key id + "_" + 43 characters
 * of unpadded base64url (32 bytes from RAND_bytes).  The file keeps, per
 * key, a random 16-byte salt and SHA-256(salt || secret), never the secret
 * itself, so a copy of the file does not let anyone in.  The id inside the
 * secret names the one entry to verify, so a check costs one SHA-256 and
 * one constant-time comparison (CRYPTO_memcmp) however many keys exist.
 *
 * A handle (http_keys_open) holds an immutable key_set: the live keys
 * sorted by id, built from the file.  Every http_keys_any/http_keys_check
 * may look at the file again, at most once a second: the thread whose
 * call finds the next check due and wins reload_mu stats the file; when
 * its device, inode, size or mtime differ from the set's, it parses the
 * file and swaps in a new set.  The writers always replace the file by
 * rename, so a change always shows as a new inode.  A file that fails to
 * parse on reload is logged and ignored: the keys in force stay in force
 * (a server never silently drops to "no keys").  For the same reason a
 * handle that has once seen a live key stays keyed (http_keys_any true)
 * until it is closed, even if every key is then revoked or the file is
 * removed: such a server refuses every request on a non-public route
 * instead of opening up to the default tenant.
 *
 * Writers (create, revoke) run in any process: they take an exclusive
 * flock on the data directory, read and validate the whole file, change
 * the document, and write it to keys.json.tmp (mode 0600), fsync it,
 * rename it over keys.json and fsync the directory.  Editing the parsed
 * JSON document keeps the fields and members this version does not know.
 *
 * Invariants: every entry of a published key_set is live (not revoked),
 * has a valid id and tenant and a decoded salt and hash; ids are unique.
 * Locking: set_lock (a rwlock) guards the set pointer: readers hold it
 * for one lookup and hash, the reloader takes it for writing only to
 * swap the pointer.  reload_mu guards ident and serialises reloads; it is
 * only ever try-locked from the request path, so requests never wait on a
 * reload in progress.  next_check_ms and is_keyed are atomics.
 * Owns: the format of keys.json.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "deltamemory.h"
#include "embed/tokenize.h"
#include "server/keys.h"

#define KEYS_FILE "keys.json"
#define KEYS_TMP "keys.json.tmp"
#define KEYS_VERSION 1
#define SALT_LEN 16
#define HASH_LEN 32
#define SECRET_RAW_LEN 32
#define SECRET_B64_LEN 43                                    /* 32 bytes, unpadded */
#define SECRET_LEN (3 + HTTP_KEY_ID_LEN + 1 + SECRET_B64_LEN) /* 59 */
#define ID_RAW_LEN (HTTP_KEY_ID_LEN / 2)
#define MAX_LABEL_LEN 1024
#define MAX_FILE_LEN (16u << 20)
#define RELOAD_EVERY_MS 1000

typedef struct key_ent {
    char id[HTTP_KEY_ID_LEN + 1];
    char tenant[HTTP_TENANT_CAP];
    uint8_t salt[SALT_LEN];
    uint8_t hash[HASH_LEN];
    size_t pos;        /* index in the file's "keys" (for messages) */
    bool is_revoked;   /* only while parsing: a published set has none */
} key_ent;

/* The live keys of one version of the file; never changed once built. */
typedef struct key_set {
    key_ent *ents; /* sorted by id */
    size_t n_ents;
} key_set;

/* What identifies one version of the file; is_present false = no file. */
typedef struct file_ident {
    bool is_present;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtim;
} file_ident;

struct http_keys {
    char *path;                   /* DATA_DIR/keys.json */
    pthread_rwlock_t set_lock;    /* guards set (the pointer) */
    key_set *set;
    pthread_mutex_t reload_mu;    /* guards ident; one reload at a time */
    file_ident ident;             /* the file set was built from */
    _Atomic uint64_t next_check_ms;
    atomic_bool is_keyed;         /* some set so far had a live key */
};

/* ------------------------------------------------------------ helpers */

static const char hex_digits[] = "0123456789abcdef";
static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void hex_encode(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex_digits[p[i] >> 4];
        out[2 * i + 1] = hex_digits[p[i] & 15];
    }
    out[2 * n] = 0;
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Exactly 2*n lowercase hex digits into n bytes (out may be NULL to only
 * check); false on anything else. */
static bool hex_decode(const char *s, uint8_t *out, size_t n)
{
    if (strlen(s) != 2 * n)
        return false;
    for (size_t i = 0; i < n; i++) {
        int hi = hex_val(s[2 * i]), lo = hex_val(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        if (out)
            out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

/* Unpadded base64url of n bytes; out has room for 4*ceil(n/3)+1. */
static void b64url_encode(const uint8_t *p, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        out[o++] = b64url[v >> 18 & 63];
        out[o++] = b64url[v >> 12 & 63];
        if (i + 1 < n)
            out[o++] = b64url[v >> 6 & 63];
        if (i + 2 < n)
            out[o++] = b64url[v & 63];
    }
    out[o] = 0;
}

static bool is_b64url(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

/* Whether s has the shape of a secret; then id receives its key id. */
static bool secret_shape(const char *s, char id[HTTP_KEY_ID_LEN + 1])
{
    if (strnlen(s, SECRET_LEN + 1) != SECRET_LEN || memcmp(s, "dm_", 3) != 0 ||
        s[3 + HTTP_KEY_ID_LEN] != '_')
        return false;
    for (size_t i = 0; i < HTTP_KEY_ID_LEN; i++)
        if (hex_val(s[3 + i]) < 0)
            return false;
    for (size_t i = 4 + HTTP_KEY_ID_LEN; i < SECRET_LEN; i++)
        if (!is_b64url(s[i]))
            return false;
    memcpy(id, s + 3, HTTP_KEY_ID_LEN);
    id[HTTP_KEY_ID_LEN] = 0;
    return true;
}

/* SHA-256 of salt || secret (the secret's SECRET_LEN characters). */
static bool secret_hash(const uint8_t salt[SALT_LEN], const char *secret, uint8_t out[HASH_LEN])
{
    uint8_t buf[SALT_LEN + SECRET_LEN];
    unsigned int n = 0;
    memcpy(buf, salt, SALT_LEN);
    memcpy(buf + SALT_LEN, secret, SECRET_LEN);
    int ok = EVP_Digest(buf, sizeof buf, out, &n, EVP_sha256(), NULL);
    OPENSSL_cleanse(buf, sizeof buf);
    return ok == 1 && n == HASH_LEN;
}

static int random_bytes(uint8_t *p, size_t n)
{
    if (RAND_bytes(p, (int)n) != 1)
        return err_set_msg(DM_EIO, "the system's random generator failed");
    return DM_OK;
}

/*
 * The tenant rule of the server: what the engine accepts for a tenant
 * (non-empty, valid UTF-8) but at most HTTP_TENANT_CAP - 1 bytes, so that
 * it fits the request's buffer, and with no control character and no '/',
 * so that it reads the same in a path, a log line and a metric label.
 */
static int validate_tenant(const char *t)
{
    if (!t || !*t)
        return err_set_msg(DM_EINVAL, "the tenant is empty");
    size_t n = strlen(t), bad = 0;
    if (n >= HTTP_TENANT_CAP)
        return err_set_msg(DM_EINVAL, "the tenant is %zu bytes; the limit is %d", n,
                           HTTP_TENANT_CAP - 1);
    if (!tok_utf8_valid(t, n, &bad))
        return err_set_msg(DM_EINVAL, "the tenant is not valid UTF-8 (byte %zu)", bad);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c < 0x20 || c == 0x7f)
            return err_set_msg(DM_EINVAL, "the tenant has a control character (byte %zu)",
                               i);
        if (c == '/')
            return err_set_msg(DM_EINVAL, "the tenant has a '/' (byte %zu)", i);
    }
    return DM_OK;
}

static char *path_join(const char *dir, const char *name)
{
    size_t dl = strlen(dir), nl = strlen(name);
    char *p = dm_malloc(dl + 1 + nl + 1);
    if (!p)
        return NULL;
    memcpy(p, dir, dl);
    p[dl] = '/';
    memcpy(p + dl + 1, name, nl + 1);
    return p;
}

static void now_iso(char out[32])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static uint64_t mono_ms(void)
{
    return clock_mono_us() / 1000u;
}

static void set_free(key_set *s)
{
    if (!s)
        return;
    if (s->ents)
        OPENSSL_cleanse(s->ents, s->n_ents * sizeof *s->ents);
    dm_free(s->ents);
    dm_free(s);
}

/* A key id (the first argument) against an entry: the lookup. */
static int id_cmp(const void *id, const void *ent)
{
    return strcmp(id, ((const key_ent *)ent)->id);
}

/* By id, then by position in the file (so that the first repeat of an id
 * is the one reported, whatever the sort). */
static int ent_cmp(const void *a, const void *b)
{
    const key_ent *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c ? c : (x->pos > y->pos) - (x->pos < y->pos);
}

/* ------------------------------------------------------------ parsing */

/* One string member: required, or optional (absent and null are NULL). */
static int member_str(const char *path, size_t i, json_t *o, const char *name, bool is_required,
                      const char **out)
{
    json_t *v = json_object_get(o, name);
    *out = NULL;
    if ((!v || json_is_null(v)) && !is_required)
        return DM_OK;
    if (!json_is_string(v))
        return err_set_msg(DM_ECORRUPT, "keys file %s: keys[%zu].%s is %s, not a string", path, i,
                           name, v ? "of another type" : "missing");
    *out = json_string_value(v);
    return DM_OK;
}

/*
 * parse_doc -- check the document against docs/format.md and build its
 * key_set (NULL when set_out is NULL).  path is for the messages.
 * Errors: DM_ECORRUPT (says which member), DM_EVERSION, DM_ENOMEM.
 */
static int parse_doc(const char *path, json_t *doc, key_set **set_out)
{
    int rc = DM_OK;
    key_set *set = NULL;
    if (set_out)
        *set_out = NULL;
    if (!json_is_object(doc))
        return err_set_msg(DM_ECORRUPT, "keys file %s: the document is not a JSON object", path);
    json_t *ver = json_object_get(doc, "version");
    if (!json_is_integer(ver) || json_integer_value(ver) < 1)
        return err_set_msg(DM_ECORRUPT, "keys file %s: \"version\" is missing or not a positive "
                                        "integer", path);
    if (json_integer_value(ver) != KEYS_VERSION)
        return err_set_msg(DM_EVERSION, "keys file %s: version %lld; this build reads version %d",
                           path, (long long)json_integer_value(ver), KEYS_VERSION);
    json_t *arr = json_object_get(doc, "keys");
    if (!json_is_array(arr))
        return err_set_msg(DM_ECORRUPT, "keys file %s: \"keys\" is missing or not an array", path);
    size_t n = json_array_size(arr);
    set = dm_calloc(1, sizeof *set);
    if (!set || (n && !(set->ents = dm_calloc(n, sizeof *set->ents)))) {
        rc = err_set_msg(DM_ENOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(arr, i);
        const char *id, *tenant, *label, *created, *revoked, *salt, *hash;
        if (!json_is_object(o)) {
            rc = err_set_msg(DM_ECORRUPT, "keys file %s: keys[%zu] is not an object", path, i);
            goto fail;
        }
        if ((rc = member_str(path, i, o, "id", true, &id)) ||
            (rc = member_str(path, i, o, "tenant", true, &tenant)) ||
            (rc = member_str(path, i, o, "label", false, &label)) ||
            (rc = member_str(path, i, o, "created", true, &created)) ||
            (rc = member_str(path, i, o, "revoked", false, &revoked)) ||
            (rc = member_str(path, i, o, "salt", true, &salt)) ||
            (rc = member_str(path, i, o, "hash", true, &hash)))
            goto fail;
        key_ent *e = &set->ents[set->n_ents];
        const char *bad = NULL;
        if (!hex_decode(id, NULL, ID_RAW_LEN))
            bad = "id is not 12 lowercase hex digits";
        else if (validate_tenant(tenant) != DM_OK)
            bad = "tenant is not a valid tenant name";
        else if (!hex_decode(salt, e->salt, SALT_LEN))
            bad = "salt is not 32 lowercase hex digits";
        else if (!hex_decode(hash, e->hash, HASH_LEN))
            bad = "hash is not 64 lowercase hex digits";
        if (bad) {
            rc = err_set_msg(DM_ECORRUPT, "keys file %s: keys[%zu].%s", path, i, bad);
            goto fail;
        }
        memcpy(e->id, id, sizeof e->id);
        snprintf(e->tenant, sizeof e->tenant, "%s", tenant);
        e->pos = i;
        e->is_revoked = revoked != NULL;
        set->n_ents++;
    }
    /* Sorted by id, a repeated id shows as two neighbours; then the
     * revoked keys are dropped, keeping the order. */
    if (set->n_ents)
        qsort(set->ents, set->n_ents, sizeof *set->ents, ent_cmp);
    for (size_t i = 1; i < set->n_ents; i++) {
        const key_ent *a = &set->ents[i - 1], *b = &set->ents[i];
        if (!strcmp(a->id, b->id)) {
            rc = err_set_msg(DM_ECORRUPT, "keys file %s: keys[%zu].id is used by keys[%zu] too",
                             path, b->pos, a->pos);
            goto fail;
        }
    }
    size_t n_live = 0;
    for (size_t i = 0; i < set->n_ents; i++)
        if (!set->ents[i].is_revoked)
            set->ents[n_live++] = set->ents[i];
    if (n_live < set->n_ents)
        OPENSSL_cleanse(set->ents + n_live, (set->n_ents - n_live) * sizeof *set->ents);
    set->n_ents = n_live;
    if (set_out)
        *set_out = set;
    else
        set_free(set);
    return DM_OK;
fail:
    set_free(set);
    return rc;
}

/*
 * load -- read and check path.  A missing file is the empty document
 * (*doc_out NULL when doc_out is given, ident->is_present false).
 * doc_out, set_out and ident may each be NULL.  Errors: DM_ECORRUPT,
 * DM_EVERSION, DM_EIO, DM_ENOMEM.
 */
static int load(const char *path, json_t **doc_out, key_set **set_out, file_ident *ident)
{
    int rc = DM_OK, fd = -1;
    char *buf = NULL;
    json_t *doc = NULL;
    key_set *set = NULL;
    if (doc_out)
        *doc_out = NULL;
    if (set_out)
        *set_out = NULL;
    if (ident)
        memset(ident, 0, sizeof *ident);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT) {
            rc = err_set_msg(DM_EIO, "keys file %s: cannot open: %s", path, strerror(errno));
            goto fail;
        }
        if (set_out && !(*set_out = dm_calloc(1, sizeof **set_out)))
            return err_set_msg(DM_ENOMEM, "out of memory");
        return DM_OK;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        rc = err_set_msg(DM_EIO, "keys file %s: cannot stat: %s", path, strerror(errno));
        goto fail;
    }
    if (st.st_size > (off_t)MAX_FILE_LEN) {
        rc = err_set_msg(DM_ECORRUPT, "keys file %s: %lld bytes; the limit is %u", path,
                         (long long)st.st_size, MAX_FILE_LEN);
        goto fail;
    }
    size_t cap = (size_t)st.st_size + 1, len = 0;
    if (!(buf = dm_malloc(cap))) {
        rc = err_set_msg(DM_ENOMEM, "out of memory");
        goto fail;
    }
    /* Read to the end even if the file grew since fstat (it should not:
     * writers rename), so that what is parsed is never a cut prefix. */
    for (;;) {
        if (len == cap) {
            char *nb = cap >= MAX_FILE_LEN ? NULL : dm_realloc(buf, cap * 2);
            if (!nb) {
                rc = err_set_msg(DM_ECORRUPT, "keys file %s: larger than %u bytes", path,
                                 MAX_FILE_LEN);
                goto fail;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = err_set_msg(DM_EIO, "keys file %s: cannot read: %s", path, strerror(errno));
            goto fail;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    json_error_t je;
    if (!(doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je))) {
        rc = err_set_msg(DM_ECORRUPT, "keys file %s: not valid JSON at line %d, column %d: %s",
                         path, je.line, je.column, je.text);
        goto fail;
    }
    if ((rc = parse_doc(path, doc, set_out ? &set : NULL)))
        goto fail;
    if (ident) {
        ident->is_present = true;
        ident->dev = st.st_dev;
        ident->ino = st.st_ino;
        ident->size = st.st_size;
        ident->mtim = st.st_mtim;
    }
    if (doc_out)
        *doc_out = doc;
    else
        json_decref(doc);
    if (set_out)
        *set_out = set;
    dm_free(buf);
    close(fd);
    return DM_OK;
fail:
    if (ident)
        memset(ident, 0, sizeof *ident);
    set_free(set);
    json_decref(doc);
    dm_free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* ------------------------------------------------------------ the handle */

int http_keys_open(const char *data_dir, http_keys **out)
{
    *out = NULL;
    int rc = DM_OK;
    http_keys *k = dm_calloc(1, sizeof *k);
    if (!k)
        return err_set_msg(DM_ENOMEM, "out of memory");
    pthread_rwlock_init(&k->set_lock, NULL);
    pthread_mutex_init(&k->reload_mu, NULL);
    if (!(k->path = path_join(data_dir, KEYS_FILE))) {
        rc = err_set_msg(DM_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = load(k->path, NULL, &k->set, &k->ident)))
        goto fail;
    atomic_store(&k->is_keyed, k->set->n_ents > 0);
    atomic_store(&k->next_check_ms, mono_ms() + RELOAD_EVERY_MS);
    *out = k;
    return DM_OK;
fail:
    http_keys_close(k);
    return rc;
}

void http_keys_close(http_keys *k)
{
    if (!k)
        return;
    set_free(k->set);
    pthread_rwlock_destroy(&k->set_lock);
    pthread_mutex_destroy(&k->reload_mu);
    dm_free(k->path);
    dm_free(k);
}

static bool ident_same(const file_ident *a, const struct stat *st)
{
    return a->is_present && a->dev == st->st_dev && a->ino == st->st_ino &&
           a->size == st->st_size && a->mtim.tv_sec == st->st_mtim.tv_sec &&
           a->mtim.tv_nsec == st->st_mtim.tv_nsec;
}

/*
 * maybe_reload -- at most once per RELOAD_EVERY_MS, and by one thread at a
 * time, look whether the file changed and if so swap in its keys.  The
 * other callers go on with the set in force without waiting.
 */
static void maybe_reload(http_keys *k)
{
    uint64_t now = mono_ms();
    if (now < atomic_load_explicit(&k->next_check_ms, memory_order_relaxed))
        return;
    if (pthread_mutex_trylock(&k->reload_mu) != 0)
        return;
    if (now < atomic_load_explicit(&k->next_check_ms, memory_order_relaxed))
        goto done;
    atomic_store_explicit(&k->next_check_ms, now + RELOAD_EVERY_MS, memory_order_relaxed);
    struct stat st;
    bool is_present = stat(k->path, &st) == 0;
    if (!is_present && errno != ENOENT)
        goto done; /* cannot tell: keep what is in force */
    if (is_present ? ident_same(&k->ident, &st) : !k->ident.is_present)
        goto done;
    key_set *set = NULL;
    file_ident ident;
    int rc = load(k->path, NULL, &set, &ident);
    if (rc != DM_OK) {
        /* Remember the bad version so that it is reported once, not every
         * second; a later change is looked at again. */
        k->ident.is_present = is_present;
        if (is_present) {
            k->ident.dev = st.st_dev;
            k->ident.ino = st.st_ino;
            k->ident.size = st.st_size;
            k->ident.mtim = st.st_mtim;
        }
        LOG_W("%s; the API keys in force stay in force", err_last_msg());
        goto done;
    }
    k->ident = ident;
    pthread_rwlock_wrlock(&k->set_lock);
    key_set *old = k->set;
    k->set = set;
    pthread_rwlock_unlock(&k->set_lock);
    /* Keyed only once the keys are in place, so that no request is asked
     * for a key that cannot be checked yet. */
    if (set->n_ents)
        atomic_store(&k->is_keyed, true);
    set_free(old);
    LOG_I("keys file %s reloaded: %zu live keys", k->path, set->n_ents);
done:
    pthread_mutex_unlock(&k->reload_mu);
}

bool http_keys_any(http_keys *k)
{
    if (!k)
        return false;
    maybe_reload(k);
    return atomic_load(&k->is_keyed);
}

bool http_keys_check(http_keys *k, const char *secret, char tenant[HTTP_TENANT_CAP],
                     char key_id[HTTP_KEY_ID_LEN + 1])
{
    char id[HTTP_KEY_ID_LEN + 1];
    bool ok = false;
    tenant[0] = 0;
    key_id[0] = 0;
    if (!k || !secret || !secret_shape(secret, id))
        return false;
    maybe_reload(k);
    pthread_rwlock_rdlock(&k->set_lock);
    const key_ent *e = k->set->n_ents ? bsearch(id, k->set->ents, k->set->n_ents,
                                                sizeof *k->set->ents, id_cmp)
                                      : NULL;
    uint8_t h[HASH_LEN];
    if (e && secret_hash(e->salt, secret, h) && CRYPTO_memcmp(h, e->hash, HASH_LEN) == 0) {
        memcpy(tenant, e->tenant, HTTP_TENANT_CAP);
        memcpy(key_id, e->id, HTTP_KEY_ID_LEN + 1);
        ok = true;
    }
    pthread_rwlock_unlock(&k->set_lock);
    return ok;
}

/* ------------------------------------------------------------ writers */

/* The exclusive writer lock: an flock on the directory itself (so that no
 * extra file is needed); also the descriptor fsynced after the rename.
 * With is_create, creates the directory when it is missing: keys may be
 * made before the database's first start. */
static int lock_dir(const char *dir, bool is_create, int *fd_out)
{
    *fd_out = -1;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && is_create && mkdir(dir, 0700) == 0)
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return err_set_msg(DM_EIO, "cannot open the directory %s: %s", dir,
                           strerror(errno));
    int r;
    while ((r = flock(fd, LOCK_EX)) < 0 && errno == EINTR)
        ;
    if (r < 0) {
        int e = errno;
        close(fd);
        return err_set_msg(DM_EIO, "cannot lock the directory %s: %s", dir, strerror(e));
    }
    *fd_out = fd;
    return DM_OK;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Replace dir/keys.json by doc: temporary file (0600), fsync, rename,
 * fsync of the directory (dir_fd). */
static int write_doc(const char *dir, int dir_fd, json_t *doc)
{
    int rc = DM_OK, fd = -1;
    char *tmp = path_join(dir, KEYS_TMP), *path = path_join(dir, KEYS_FILE);
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    const char *op = NULL;
    if (!tmp || !path || !text) {
        rc = err_set_msg(DM_ENOMEM, "out of memory");
        goto fail;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        op = "create";
    /* A leftover temporary file keeps its old mode through O_CREAT. */
    else if (fchmod(fd, 0600) < 0)
        op = "chmod";
    else if (write_all(fd, text, strlen(text)) < 0 || write_all(fd, "\n", 1) < 0)
        op = "write";
    else if (fsync(fd) < 0)
        op = "fsync";
    if (op) {
        rc = err_set_msg(errno == ENOSPC ? DM_ENOSPC : DM_EIO, "cannot %s the key file %s: %s", op, tmp,
                         strerror(errno));
        goto fail;
    }
    close(fd);
    fd = -1;
    if (rename(tmp, path) < 0) {
        rc = err_set_msg(DM_EIO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        goto fail;
    }
    if (fsync(dir_fd) < 0) {
        /* The new file is in place but may not survive a crash. */
        rc = err_set_msg(DM_EIO, "cannot fsync the directory %s: %s", dir,
                         strerror(errno));
        goto done;
    }
    goto done;
fail:
    if (fd >= 0)
        close(fd);
    if (tmp)
        unlink(tmp);
done:
    free(text);
    dm_free(tmp);
    dm_free(path);
    return rc;
}

/* An edit of the document under the writer lock. */
typedef int (*edit_fn)(json_t *doc, void *arg);

static int modify(const char *data_dir, bool is_create, edit_fn fn, void *arg)
{
    int rc = DM_OK, dir_fd = -1;
    json_t *doc = NULL;
    char *path = path_join(data_dir, KEYS_FILE);
    if (!path)
        return err_set_msg(DM_ENOMEM, "out of memory");
    if ((rc = lock_dir(data_dir, is_create, &dir_fd)) || (rc = load(path, &doc, NULL, NULL)))
        goto done;
    if (!doc && !(doc = json_pack("{s:i, s:[]}", "version", KEYS_VERSION, "keys"))) {
        rc = err_set_msg(DM_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = fn(doc, arg)) == DM_OK)
        rc = write_doc(data_dir, dir_fd, doc);
done:
    json_decref(doc);
    if (dir_fd >= 0)
        close(dir_fd); /* releases the flock */
    dm_free(path);
    return rc;
}

typedef struct create_arg {
    const char *tenant, *label;
    char secret[SECRET_LEN + 1];
    char id[HTTP_KEY_ID_LEN + 1];
} create_arg;

static bool id_taken(json_t *keys, const char *id)
{
    size_t i;
    json_t *o;
    json_array_foreach (keys, i, o)
        if (!strcmp(json_string_value(json_object_get(o, "id")), id))
            return true;
    return false;
}

static int do_create(json_t *doc, void *argp)
{
    create_arg *a = argp;
    json_t *keys = json_object_get(doc, "keys");
    uint8_t raw[ID_RAW_LEN], sec[SECRET_RAW_LEN], salt[SALT_LEN], hash[HASH_LEN];
    char salt_hex[2 * SALT_LEN + 1], hash_hex[2 * HASH_LEN + 1], created[32];
    int rc;
    do {
        if ((rc = random_bytes(raw, sizeof raw)))
            goto done;
        hex_encode(raw, sizeof raw, a->id);
    } while (id_taken(keys, a->id));
    if ((rc = random_bytes(sec, sizeof sec)) || (rc = random_bytes(salt, sizeof salt)))
        goto done;
    memcpy(a->secret, "dm_", 3);
    memcpy(a->secret + 3, a->id, HTTP_KEY_ID_LEN);
    a->secret[3 + HTTP_KEY_ID_LEN] = '_';
    b64url_encode(sec, sizeof sec, a->secret + 4 + HTTP_KEY_ID_LEN);
    if (!secret_hash(salt, a->secret, hash)) {
        rc = err_set_msg(DM_EIO, "the SHA-256 of the new key failed");
        goto done;
    }
    hex_encode(salt, sizeof salt, salt_hex);
    hex_encode(hash, sizeof hash, hash_hex);
    now_iso(created);
    json_t *o = json_pack("{s:s, s:s, s:s?, s:s, s:n, s:s, s:s}", "id", a->id, "tenant",
                          a->tenant, "label", a->label, "created", created, "revoked", "salt",
                          salt_hex, "hash", hash_hex);
    if (!o || json_array_append_new(keys, o) != 0)
        rc = err_set_msg(DM_ENOMEM, "out of memory");
done:
    OPENSSL_cleanse(sec, sizeof sec);
    return rc;
}

int http_keys_create(const char *data_dir, const char *tenant, const char *label,
                     char **secret_out, char key_id[HTTP_KEY_ID_LEN + 1])
{
    *secret_out = NULL;
    key_id[0] = 0;
    int rc = validate_tenant(tenant);
    if (rc)
        return rc;
    size_t bad = 0;
    if (label && strlen(label) > MAX_LABEL_LEN)
        return err_set_msg(DM_EINVAL, "the label is %zu bytes; the limit is %d",
                           strlen(label), MAX_LABEL_LEN);
    if (label && !tok_utf8_valid(label, strlen(label), &bad))
        return err_set_msg(DM_EINVAL, "the label is not valid UTF-8 (byte %zu)", bad);
    create_arg a = { .tenant = tenant, .label = label };
    char *s = dm_malloc(SECRET_LEN + 1);
    if (!s)
        return err_set_msg(DM_ENOMEM, "out of memory");
    if ((rc = modify(data_dir, true, do_create, &a))) {
        dm_free(s);
    } else {
        memcpy(s, a.secret, SECRET_LEN + 1);
        memcpy(key_id, a.id, HTTP_KEY_ID_LEN + 1);
        *secret_out = s;
    }
    OPENSSL_cleanse(a.secret, sizeof a.secret);
    return rc;
}

int http_keys_list(const char *data_dir, json_t **out)
{
    *out = NULL;
    json_t *doc = NULL, *res = NULL, *arr = NULL;
    int rc = DM_OK;
    char *path = path_join(data_dir, KEYS_FILE);
    if (!path)
        return err_set_msg(DM_ENOMEM, "out of memory");
    if ((rc = load(path, &doc, NULL, NULL)))
        goto fail;
    if (!(res = json_pack("{s:[]}", "keys"))) {
        rc = err_set_msg(DM_ENOMEM, "out of memory");
        goto fail;
    }
    arr = json_object_get(res, "keys");
    size_t i;
    json_t *o;
    json_array_foreach (json_object_get(doc, "keys"), i, o) {
        json_t *label = json_object_get(o, "label"), *revoked = json_object_get(o, "revoked");
        json_t *e = json_pack("{s:O, s:O, s:O, s:O, s:O}", "id", json_object_get(o, "id"),
                              "tenant", json_object_get(o, "tenant"), "label",
                              label ? label : json_null(), "created",
                              json_object_get(o, "created"), "revoked",
                              revoked ? revoked : json_null());
        if (!e || json_array_append_new(arr, e) != 0) {
            rc = err_set_msg(DM_ENOMEM, "out of memory");
            goto fail;
        }
    }
    json_decref(doc);
    dm_free(path);
    *out = res;
    return DM_OK;
fail:
    json_decref(res);
    json_decref(doc);
    dm_free(path);
    return rc;
}

static int do_revoke(json_t *doc, void *arg)
{
    const char *id = arg;
    size_t i;
    json_t *o;
    json_array_foreach (json_object_get(doc, "keys"), i, o) {
        if (strcmp(json_string_value(json_object_get(o, "id")), id))
            continue;
        json_t *r = json_object_get(o, "revoked");
        if (r && !json_is_null(r))
            return DM_OK; /* already revoked: keep the first time */
        char now[32];
        now_iso(now);
        if (json_object_set_new(o, "revoked", json_string(now)) != 0)
            return err_set_msg(DM_ENOMEM, "out of memory");
        return DM_OK;
    }
    return err_set_msg(DM_ENOTFOUND, "no key with id %s", id);
}

int http_keys_revoke(const char *data_dir, const char *key_id)
{
    if (!key_id || !hex_decode(key_id, NULL, ID_RAW_LEN))
        return err_set_msg(DM_EINVAL, "a key id is 12 lowercase hex digits, not \"%s\"",
                           key_id ? key_id : "");
    return modify(data_dir, false, do_revoke, (void *)key_id);
}
