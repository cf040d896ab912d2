/*
 * embed.c -- the embedder dispatch.
 *
 * An `embedder` is opaque to callers; each provider (model.c for the
 * built-in model, http.c for OpenAI-compatible endpoints) embeds `struct
 * embedder` at the start of its own object and fills a small vtable
 * (embed_int.h).  This file checks the arguments every provider would
 * otherwise check and forwards the call.
 *
 * Thread safety: the functions here keep no state; whatever a provider
 * does concurrently is the provider's business (both are safe for
 * concurrent embedder_embed calls).
 */
#include "embed/embed.h"

#include "base/err.h"
#include "embed/embed_int.h"

void embedder_close(embedder *e)
{
    if (e)
        e->ops->close(e);
}

const char *embedder_name(const embedder *e)
{
    return e->name;
}

uint32_t embedder_dim(const embedder *e)
{
    return e->dim;
}

int embedder_embed(embedder *e, const char *const *texts, const size_t *lens,
                   size_t n, float *out)
{
    if (!e)
        return err_set_msg(DM_EINVAL, "embedder_embed: no embedder");
    if (n == 0)
        return DM_OK;
    if (!texts || !lens || !out)
        return err_set_msg(DM_EINVAL, "embedder_embed: NULL texts, lens or out");
    for (size_t i = 0; i < n; i++)
        if (!texts[i] && lens[i] > 0)
            return err_set_msg(DM_EINVAL, "embedder_embed: text %zu is NULL", i);
    return e->ops->embed(e, texts, lens, n, out);
}

uint32_t embedder_known_words(embedder *e, const char *text, size_t len)
{
    if (!e || !e->ops->known_words || (!text && len > 0))
        return 0;
    return e->ops->known_words(e, text, len);
}
