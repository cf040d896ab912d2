/*
 * chat.c -- dm_chat: perceive, think, act, remember for one user message.
 *
 * The context is built first (dm_perceive, the message as the query), so
 * the model sees what was known before the message, and the message itself
 * once, as the user's turn of the completion.  The user's turn is stored
 * (with its facts) whether or not the model answers; the reply is stored
 * as the assistant's turn one microsecond later, so the session keeps the
 * order in which they were said.  Without a chat model the call is the
 * perceive and the remember, and reply is NULL: the context is for the
 * caller's own model.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/err.h"
#include "cognitive/llm.h"
#include "engine/engine_int.h"

#define DEFAULT_SYSTEM                                                                  \
    "You are a helpful assistant with a long-term memory of this user. The context "   \
    "below is what you remember: facts about the user, relevant past memories with "   \
    "their dates, and the recent turns of this conversation. Use it when it helps; "   \
    "do not invent memories it does not hold."

void dm_chat_result_free(dm_chat_result *r)
{
    if (!r)
        return;
    dm_free(r->reply);
    dm_context_free(r->context);
    dm_free(r);
}

int dm_chat(dm_db *db, const dm_chat_params *p, dm_chat_result **out)
{
    if (out)
        *out = NULL;
    if (!db || !p || !out)
        return err_set_msg(DM_EINVAL, "chat: no database, parameters or output");
    if (!p->text || !p->text[0])
        return err_set_msg(DM_EINVAL, "chat: the message is empty");
    if (!p->session_id || !p->session_id[0])
        return err_set_msg(DM_EINVAL, "chat: a session is required");
    dm_chat_result *r = dm_calloc(1, sizeof *r);
    if (!r)
        return err_set_msg(DM_ENOMEM, "out of memory");
    int64_t now = p->time_us ? p->time_us : (int64_t)clock_wall_us();
    dm_perceive_params pp = { .tenant = p->tenant, .user_id = p->user_id,
                              .session_id = p->session_id, .query = p->text,
                              .max_tokens = p->max_tokens, .now_us = now };
    int rc = dm_perceive(db, &pp, &r->context);
    if (rc == DM_ENOTFOUND)
        rc = DM_OK; /* a new user: nothing to remember yet */
    char *reply = NULL, *user_msg = NULL;
    int think_rc = DM_OK;
    if (!rc && db->llm) {
        const char *ctx = r->context ? r->context->text : "";
        size_t n = strlen(ctx) + strlen(p->text) + 64;
        user_msg = dm_malloc(n);
        if (!user_msg) {
            rc = err_set_msg(DM_ENOMEM, "out of memory");
        } else {
            snprintf(user_msg, n, "%s%s%s", ctx[0] ? "Context:\n" : "", ctx,
                     ctx[0] ? "\nMessage:\n" : "");
            strncat(user_msg, p->text, n - strlen(user_msg) - 1);
            llm_msg m[2] = { { "system", p->system ? p->system : DEFAULT_SYSTEM },
                             { "user", user_msg } };
            think_rc = llm_chat(db->llm, m, 2, NULL, &reply);
        }
    }
    dm_remember_params rp;
    dm_remember_params_init(&rp);
    rp.tenant = p->tenant;
    rp.user_id = p->user_id;
    rp.session_id = p->session_id;
    rp.agent_id = p->agent_id;
    rp.speaker = p->speaker;
    rp.text = p->text;
    rp.time_us = now;
    dm_remember_result rr;
    if (!rc)
        rc = dm_remember(db, &rp, &rr);
    if (!rc)
        r->user_turn = rr.id;
    if (!rc && reply) {
        rp.role = "assistant";
        rp.speaker = NULL;
        rp.text = reply;
        rp.time_us = now + 1;
        if (!(rc = dm_remember(db, &rp, &rr)))
            r->reply_turn = rr.id;
        r->reply = reply;
        reply = NULL;
    }
    dm_free(user_msg);
    dm_free(reply);
    if (!rc && think_rc)
        rc = think_rc; /* the turn is stored; the model did not answer */
    if (rc) {
        dm_chat_result_free(r);
        return rc;
    }
    *out = r;
    return DM_OK;
}
