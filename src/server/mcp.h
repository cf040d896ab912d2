/*
 * mcp.h -- the Model Context Protocol server of DeltaMemory: JSON-RPC 2.0
 * messages in, responses out, with ten tools over the dm_* API
 * (docs/api-mcp.md).  The transport is the caller's: `deltamemory mcp`
 * feeds it lines of stdin (tools/cli/cmd_mcp.c) and the HTTP server feeds
 * it the bodies of POST /mcp (http_routes_mcp, declared in handlers.h).
 *
 * The core keeps no state between messages: every message is answered
 * from the message alone and the connection's scope.  So there is no
 * session to create or lose, `initialize` may be sent any number of
 * times, and one core serves any number of connections at once.
 */
#ifndef DM_SERVER_MCP_H
#define DM_SERVER_MCP_H

#include <stddef.h>

#include <jansson.h>

#include "deltamemory.h"

/* The protocol version answered when the client asks for one we do not
 * speak; the others we speak are listed in mcp.c. */
#define MCP_LATEST_VERSION "2025-11-25"

/* What a connection is allowed to touch and whom it acts for by default. */
typedef struct mcp_scope {
    const char *tenant;  /* every tool acts inside it; NULL = DM_DEFAULT_TENANT */
    const char *user_id; /* the user of a tool call without a user_id
                            argument; NULL = such calls fail with a tool
                            error saying user_id is needed */
    unsigned max_limit;  /* the largest "limit" a tool call may ask for (the
                            HTTP server's max_top_k); 0 = only the tools'
                            own bounds (100 for a search, 1000 for a list) */
} mcp_scope;

/*
 * mcp_handle -- answer one JSON-RPC message (or a batch: a JSON array of
 * messages) given as len bytes of UTF-8 JSON.
 *   db             the open database; borrowed.
 *   scope          tenant and default user of the connection; borrowed.
 *   request_json   the message; need not be NUL-terminated.
 *   response_json  out: the response as one line of compact JSON,
 *                  NUL-terminated, to be freed with dm_free; NULL when the
 *                  message needs no response (a notification, a response
 *                  from the client, a batch of those).
 * Protocol failures (malformed JSON, an unknown method, bad parameters)
 * and tool failures are answers, not errors: they come back in
 * *response_json as a JSON-RPC error object or a tool result with isError.
 * Returns DM_OK, or DM_ENOMEM (with *response_json NULL).
 * Thread-safe: any number of calls may run at once, on one database.
 */
int mcp_handle(dm_db *db, const mcp_scope *scope, const char *request_json, size_t len,
               char **response_json);

/*
 * mcp_handle_json -- mcp_handle for a message already parsed (the HTTP
 * server parses bodies before routing).  msg is borrowed; *out is a new
 * reference, or NULL when there is nothing to answer.  Returns DM_OK or
 * DM_ENOMEM (*out NULL).  Thread-safe.
 */
int mcp_handle_json(dm_db *db, const mcp_scope *scope, json_t *msg, json_t **out);

#endif
