/*
 * perceive.c -- dm_perceive: the context an agent needs before it
 * answers, in a fixed order and within a token budget.
 *
 * Order and budget.  The profile comes first because it is the cheapest
 * and most reliable knowledge (one line per fact); the relevant memories
 * next, best first; the session's recent turns last, oldest first, so that
 * the block ends where the conversation is.  The profile may take a
 * quarter of max_tokens and the recent turns a third (the newest kept when
 * they do not all fit); the relevant memories get what is left.  Items are
 * never cut: one that does not fit is left out, so nothing shown is
 * misquoted.  Tokens are estimated as bytes / 4 rounded up
 * (dm_estimate_tokens), which is what the budget is measured in.
 *
 * The recent turns are found by walking the user's memories newest first
 * (dm_list pages) and keeping those of the session, at most PERCEIVE_SCAN
 * memories deep: a session that has been silent for longer than that has
 * no recent turns worth showing.
 *
 * Everything goes through the public calls (dm_profile, dm_search,
 * dm_list), each taking the user's lock as it needs; the context is a
 * consistent enough view for a prompt, not a transaction.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/err.h"
#include "engine/engine_int.h"

#define PERCEIVE_SCAN 500
#define HEADINGS 16 /* tokens of the three section headings */

uint32_t dm_estimate_tokens(const char *text, size_t len)
{
    (void)text;
    return (uint32_t)((len + 3) / 4);
}

static void item_fini(dm_context_item *it)
{
    dm_free(it->role);
    dm_free(it->text);
}

void dm_context_free(dm_context *c)
{
    if (!c)
        return;
    dm_facts_free(c->profile, c->n_profile);
    for (size_t i = 0; i < c->n_memories; i++)
        item_fini(&c->memories[i]);
    for (size_t i = 0; i < c->n_recent; i++)
        item_fini(&c->recent[i]);
    dm_free(c->memories);
    dm_free(c->recent);
    dm_free(c->text);
    dm_free(c);
}

static int item_set(dm_context_item *it, const dm_memory *m, float score)
{
    it->id = m->id;
    it->time_us = m->event_time_us;
    it->score = score;
    it->role = dm_strdup(m->role ? m->role : "user");
    it->text = dm_strdup(m->text);
    return it->role && it->text ? DM_OK : DM_ENOMEM;
}

/* "YYYY-MM-DD" or "YYYY-MM-DD HH:MM" of t. */
static void when(int64_t t, bool with_time, char *out, size_t cap)
{
    char s[40];
    dm_time_format(t, s);
    snprintf(out, cap, "%.10s%s%.5s", s, with_time ? " " : "", with_time ? s + 11 : "");
}

static int line_fact(buf *b, const dm_fact *f)
{
    char since[40];
    when(f->valid_from_us, false, since, sizeof since);
    char tmp[1024];
    int n = snprintf(tmp, sizeof tmp, "- %s: %s (since %s)\n", f->slot, f->value, since);
    return buf_append(b, tmp, n > 0 && (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static int line_item(buf *b, const dm_context_item *it, bool with_role)
{
    char t[40];
    when(it->time_us, with_role, t, sizeof t);
    char head[96];
    int n = snprintf(head, sizeof head, "- [%s] %s%s", t, with_role ? it->role : "",
                     with_role ? ": " : "");
    int rc = buf_append(b, head, (size_t)n);
    rc |= buf_append(b, it->text, strlen(it->text));
    rc |= buf_append(b, "\n", 1);
    return rc ? DM_ENOMEM : DM_OK;
}

/* The tokens one line would take. */
static uint32_t cost_fact(const dm_fact *f)
{
    return dm_estimate_tokens(NULL, strlen(f->slot) + strlen(f->value) + 22);
}

static uint32_t cost_item(const dm_context_item *it, bool with_role)
{
    return dm_estimate_tokens(NULL, strlen(it->text) + (with_role ? strlen(it->role) + 24 : 16));
}

/* The session's last turns, newest first, into c->recent (at most max). */
static int recent_turns(dm_db *db, const dm_perceive_params *p, uint32_t max, dm_context *c)
{
    if (!p->session_id || !max)
        return DM_OK;
    c->recent = dm_calloc(max, sizeof *c->recent);
    if (!c->recent)
        return err_set_msg(DM_ENOMEM, "out of memory");
    dm_list_params lp = { .tenant = p->tenant, .user_id = p->user_id, .limit = 100 };
    if (p->now_us)
        lp.to_us = p->now_us + 1;
    char *cursor = NULL;
    int rc = DM_OK;
    for (uint32_t seen = 0; seen < PERCEIVE_SCAN && c->n_recent < max;) {
        dm_list_result *r = NULL;
        lp.cursor = cursor;
        rc = dm_list(db, &lp, &r);
        dm_free(cursor);
        cursor = NULL;
        if (rc)
            break;
        for (size_t i = 0; i < r->n && c->n_recent < max; i++) {
            const dm_memory *m = &r->items[i];
            if (m->session_id && !strcmp(m->session_id, p->session_id) &&
                m->state == DM_STATE_ACTIVE &&
                (rc = item_set(&c->recent[c->n_recent++], m, 0)))
                break;
        }
        seen += (uint32_t)r->n;
        if (r->next_cursor && !rc)
            cursor = dm_strdup(r->next_cursor);
        bool more = cursor != NULL;
        dm_list_result_free(r);
        if (rc || !more)
            break;
    }
    dm_free(cursor);
    return rc;
}

int dm_perceive(dm_db *db, const dm_perceive_params *p, dm_context **out)
{
    if (out)
        *out = NULL;
    if (!db || !p || !out)
        return err_set_msg(DM_EINVAL, "perceive: no database, parameters or output");
    uint32_t budget = p->max_tokens ? p->max_tokens : 2000;
    uint32_t k = p->k ? p->k : 10, n_recent = p->recent_turns ? p->recent_turns : 10;
    if (k > 1000 || n_recent > 1000)
        return err_set_msg(DM_EINVAL, "perceive: k and recent_turns are at most 1000");
    dm_context *c = dm_calloc(1, sizeof *c);
    if (!c)
        return err_set_msg(DM_ENOMEM, "out of memory");
    dm_profile_params pp = { .tenant = p->tenant, .user_id = p->user_id,
                             .as_of_us = p->now_us };
    dm_fact *facts = NULL;
    size_t n_facts = 0;
    int rc = dm_profile(db, &pp, &facts, &n_facts);
    if (!rc)
        rc = recent_turns(db, p, n_recent, c);
    dm_search_result *sr = NULL;
    if (!rc && p->query && p->query[0]) {
        dm_search_params sp = { .tenant = p->tenant, .user_id = p->user_id, .query = p->query,
                                .k = k + (uint32_t)c->n_recent, .now_us = p->now_us };
        rc = dm_search(db, &sp, &sr);
    }
    buf b;
    buf_init(&b);
    if (rc)
        goto fail;

    /* The three headings take at most HEADINGS tokens of the budget. */
    budget = budget > HEADINGS ? budget - HEADINGS : 0;
    /* Profile: the facts in slot order while they fit. */
    uint32_t used = 0, cap_profile = budget / 4;
    c->profile = dm_calloc(n_facts ? n_facts : 1, sizeof *c->profile);
    if (!c->profile) {
        rc = err_set_msg(DM_ENOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n_facts; i++) {
        uint32_t t = cost_fact(&facts[i]);
        if (used + t > cap_profile)
            continue;
        used += t;
        c->profile[c->n_profile++] = facts[i]; /* moved */
        memset(&facts[i], 0, sizeof facts[i]);
    }
    /* Recent turns: the newest that fit in a third. */
    uint32_t cap_recent = budget / 3, used_recent = 0;
    size_t keep = 0;
    while (keep < c->n_recent && used_recent + cost_item(&c->recent[keep], true) <= cap_recent)
        used_recent += cost_item(&c->recent[keep++], true);
    for (size_t i = keep; i < c->n_recent; i++)
        item_fini(&c->recent[i]);
    c->n_recent = keep;
    for (size_t i = 0; i < keep / 2; i++) { /* oldest first */
        dm_context_item t = c->recent[i];
        c->recent[i] = c->recent[keep - 1 - i];
        c->recent[keep - 1 - i] = t;
    }
    /* Relevant memories: the rest, best first, none of the recent turns. */
    uint32_t left = budget > used + used_recent ? budget - used - used_recent : 0;
    c->memories = dm_calloc(sr && sr->n ? sr->n : 1, sizeof *c->memories);
    if (!c->memories) {
        rc = err_set_msg(DM_ENOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; sr && i < sr->n && c->n_memories < k; i++) {
        const dm_memory *m = &sr->hits[i].memory;
        bool is_recent = false;
        for (size_t j = 0; j < c->n_recent && !is_recent; j++)
            is_recent = !memcmp(&c->recent[j].id, &m->id, sizeof m->id);
        if (is_recent)
            continue;
        dm_context_item it = { 0 };
        if ((rc = item_set(&it, m, sr->hits[i].score))) {
            item_fini(&it);
            rc = err_set_msg(DM_ENOMEM, "out of memory");
            goto fail;
        }
        uint32_t t = cost_item(&it, false);
        if (t > left) {
            item_fini(&it);
            continue;
        }
        left -= t;
        c->memories[c->n_memories++] = it;
    }

    /* The text block. */
    int e = 0;
    if (c->n_profile) {
        e |= buf_append(&b, "# About the user\n", 17);
        for (size_t i = 0; i < c->n_profile && !e; i++)
            e |= line_fact(&b, &c->profile[i]);
    }
    if (c->n_memories) {
        e |= buf_append(&b, "# Relevant memories\n", 20);
        for (size_t i = 0; i < c->n_memories && !e; i++)
            e |= line_item(&b, &c->memories[i], false);
    }
    if (c->n_recent) {
        e |= buf_append(&b, "# This conversation\n", 20);
        for (size_t i = 0; i < c->n_recent && !e; i++)
            e |= line_item(&b, &c->recent[i], true);
    }
    if (e || !(c->text = dm_malloc(b.len + 1))) {
        rc = err_set_msg(DM_ENOMEM, "out of memory");
        goto fail;
    }
    memcpy(c->text, b.ptr ? (const char *)b.ptr : "", b.len);
    c->text[b.len] = 0;
    c->tokens = dm_estimate_tokens(c->text, b.len);
    dm_facts_free(facts, n_facts);
    dm_search_result_free(sr);
    buf_fini(&b);
    *out = c;
    return DM_OK;
fail:
    dm_facts_free(facts, n_facts);
    dm_search_result_free(sr);
    buf_fini(&b);
    dm_context_free(c);
    return rc;
}
