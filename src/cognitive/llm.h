/*
 * llm.h -- an OpenAI-compatible chat-completion client (Ollama, llama.cpp
 * server, vLLM, OpenAI), and the LLM extractor built on it.
 *
 * The client POSTs {base_url}/chat/completions with the messages, the
 * model, temperature and max_tokens, and, when a JSON schema is given,
 * "response_format": {"type": "json_schema", "json_schema": {"name":
 * "...", "schema": ..., "strict": true}}.  Connection errors, timeouts,
 * HTTP 429 and 5xx are retried with backoff; other errors are not.  The
 * reply's choices[0].message.content is returned; usage.prompt_tokens and
 * usage.completion_tokens are added to the client's totals.
 *
 * The LLM extractor asks for the facts, events and relations of one turn
 * as JSON (the taxonomy of src/cognitive/extract.h in the prompt and the
 * schema), validates every item (known slot, non-empty value, confidence
 * in [0, 1], dates that parse), and asks again when the output is not
 * valid, up to max_calls calls in all.  Output that still fails is logged
 * and the built-in extractor's result is kept: a fact is never silently
 * dropped.
 *
 * Thread safety: an llm may be used from many threads at once (a pool of
 * connections, atomic totals).
 */
#ifndef DM_COGNITIVE_LLM_H
#define DM_COGNITIVE_LLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cognitive/extract.h"

typedef struct llm llm;

typedef struct llm_config {
    const char *base_url;    /* e.g. "http://127.0.0.1:11434/v1"; required */
    const char *model;       /* required */
    const char *api_key_env; /* environment variable holding the key (sent
                                as "Authorization: Bearer KEY" when set);
                                NULL = "DM_LLM_API_KEY" */
    uint32_t timeout_ms;     /* per attempt; 0 = 30000 */
    uint32_t retries;        /* after the first attempt; 0 = 2 */
    uint32_t max_tokens;     /* of a reply; 0 = 1024 */
    float temperature;       /* default 0: the same turn, the same facts */
} llm_config;

/* llm_open -- a client; nothing is sent yet.  Errors: DM_EINVAL (no URL or
 * model, a URL that is not http(s)), DM_ENOMEM. */
int llm_open(const llm_config *c, llm **out);
void llm_close(llm *l); /* NULL does nothing */

/* Totals since open. */
typedef struct llm_usage {
    uint64_t calls;             /* requests that got an answer */
    uint64_t failures;          /* requests that failed after retries */
    uint64_t invalid;           /* answers that failed validation */
    uint64_t prompt_tokens;     /* as the server reported them */
    uint64_t completion_tokens;
} llm_usage;
void llm_usage_get(const llm *l, llm_usage *out);

typedef struct llm_msg {
    const char *role; /* "system", "user", "assistant" */
    const char *content;
} llm_msg;

/*
 * llm_chat -- one completion of the n messages.  json_schema (a JSON
 * Schema object as text) asks for structured output; NULL for text.  *out
 * receives the reply's content (dm_malloc'd, NUL-terminated).
 * Errors: DM_EINVAL (no messages; a schema that is not JSON), DM_EIO (HTTP
 * error status, a reply without choices[0].message.content; the message
 * names the URL, the status and an excerpt of the body), DM_ECANCELED
 * (timeout after the retries), DM_ENOMEM.
 */
int llm_chat(llm *l, const llm_msg *msgs, size_t n, const char *json_schema, char **out);

/*
 * llm_extract -- the LLM extractor for one turn.  builtin is the built-in
 * extractor's result for the same input (kept when the LLM cannot give a
 * valid answer in max_calls calls, 0 = 2).  *out is filled as ex_extract
 * does (free with ex_result_free); *used_llm tells whether it is the
 * LLM's.  Returns DM_OK whenever *out is filled, from the LLM or the
 * built-in result; DM_ENOMEM otherwise.
 */
int llm_extract(llm *l, const ex_input *in, const ex_result *builtin, uint32_t max_calls,
                ex_result *out, bool *used_llm);

#endif
