/*
 * keys.h -- API keys of the HTTP server: each maps to a tenant.  The keys
 * live in DATA_DIR/keys.json (format in docs/format.md, "API keys"); only a
 * salted SHA-256 of each secret is stored, never the secret.  The server
 * re-reads the file when it changes, so `deltamemory keys create` and
 * `revoke` take effect on a running server within a second.
 *
 * A secret looks like "dm_<key id>_<43 characters of base64url>", 32
 * random bytes from the system's CSPRNG; the key id (12 hex digits) names
 * the key in listings, logs and the rate limiter and is not secret.
 * Thread safety: http_keys_* on one handle may be called from any thread.
 */
#ifndef DM_SERVER_KEYS_H
#define DM_SERVER_KEYS_H

#include <stdbool.h>

#include <jansson.h>

#define HTTP_KEY_ID_LEN 12     /* hex digits */
#define HTTP_TENANT_CAP 128    /* a tenant name and its NUL */

typedef struct http_keys http_keys;

/* http_keys_open -- the keys of data_dir (none when the file is missing).
 * Errors: DM_ECORRUPT (a key file that does not parse; the message says
 * where), DM_EVERSION (a newer file version), DM_EIO, DM_ENOMEM. */
int http_keys_open(const char *data_dir, http_keys **out);
void http_keys_close(http_keys *k); /* NULL does nothing */

/* http_keys_any -- whether keys are required: true once this handle has
 * seen a key that is not revoked, and from then on until it is closed
 * (revoking every key must not turn a public server into an open one; it
 * then refuses every request that needs a key).  False for a NULL handle:
 * a server without a data directory has no keys. */
bool http_keys_any(http_keys *k);

/*
 * http_keys_check -- whether secret is a live key; then its tenant and id
 * are copied out.  Compares in constant time.  Returns true or false.
 */
bool http_keys_check(http_keys *k, const char *secret, char tenant[HTTP_TENANT_CAP],
                     char key_id[HTTP_KEY_ID_LEN + 1]);

/*
 * http_keys_create -- a new key for tenant (a valid tenant name), with a
 * free-text label (may be NULL), appended to data_dir's key file (written
 * to a temporary file, fsynced and renamed).  *secret_out (dm_malloc'd)
 * is the secret, shown once.  Errors: DM_EINVAL, DM_EIO, DM_ENOMEM.
 */
int http_keys_create(const char *data_dir, const char *tenant, const char *label,
                     char **secret_out, char key_id[HTTP_KEY_ID_LEN + 1]);

/* http_keys_list -- {"keys": [{"id", "tenant", "label", "created",
 * "revoked"}]} (new reference in *out).  Never the hashes. */
int http_keys_list(const char *data_dir, json_t **out);

/* http_keys_revoke -- mark a key revoked (kept in the file, refused from
 * then on).  DM_ENOTFOUND for an unknown id. */
int http_keys_revoke(const char *data_dir, const char *key_id);

#endif
