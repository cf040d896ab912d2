/* keys.c -- placeholder until the key store lands (no keys). */
#include "base/err.h"
#include "deltamemory.h"
#include "server/keys.h"
int http_keys_open(const char *data_dir, http_keys **out)
{
    (void)data_dir;
    *out = NULL;
    return DM_OK;
}
void http_keys_close(http_keys *k)
{
    (void)k;
}
bool http_keys_any(http_keys *k)
{
    (void)k;
    return false;
}
bool http_keys_check(http_keys *k, const char *secret, char tenant[HTTP_TENANT_CAP],
                     char key_id[HTTP_KEY_ID_LEN + 1])
{
    (void)k, (void)secret, (void)tenant, (void)key_id;
    return false;
}
int http_keys_create(const char *data_dir, const char *tenant, const char *label,
                     char **secret_out, char key_id[HTTP_KEY_ID_LEN + 1])
{
    (void)data_dir, (void)tenant, (void)label, (void)secret_out, (void)key_id;
    return err_set_msg(DM_EINVAL, "keys: not available");
}
int http_keys_list(const char *data_dir, json_t **out)
{
    (void)data_dir;
    *out = NULL;
    return err_set_msg(DM_EINVAL, "keys: not available");
}
int http_keys_revoke(const char *data_dir, const char *key_id)
{
    (void)data_dir, (void)key_id;
    return err_set_msg(DM_EINVAL, "keys: not available");
}
