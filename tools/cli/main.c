/*
 * main.c -- the deltamemory command: global options, the command table,
 * help, and dispatch.
 *
 *   deltamemory [global options] <command> [options]
 *
 * The global options (--data, --model, --embedder, --http-*, --sync,
 * --json) come before the command and say which database to open and how;
 * each command then parses its own options (cli_parse) and runs.  The
 * memory commands live in cmd_memory.c and cmd_io.c, the storage commands
 * (check, stats, serve) in cmd_store.c, the shared helpers in cli_util.c.
 *
 * Exit status: 0 success (for check: the database is clean); 1 the
 * database is damaged or an operation failed; 2 usage error or no
 * database at DIR.  Output goes to stdout; every error is one line on
 * stderr.  The one exception is `deltamemory` with no command at all,
 * which prints the overview to stderr (it is a request for help more than
 * a mistake).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* ----------------------------------------------------------- help texts */

static const char help_add[] =
    "usage: deltamemory [global options] add --user U --text T [options]\n"
    "\n"
    "Stores one memory for user U and prints its id (with --json:\n"
    "{\"id\": ...}).  The memory is searchable when the command returns.\n"
    "The database is created when missing.\n"
    "\n"
    "  -u, --user U         the user the memory belongs to (required)\n"
    "  -t, --text T         the text, UTF-8 (required)\n"
    "      --time ISO8601   when it happened, e.g. 2023-05-08T13:56:00Z\n"
    "                       (default: now)\n"
    "  -m, --meta JSON      metadata, a JSON object (default {})\n"
    "      --tenant T       the tenant (default \"default\")\n"
    "      --agent A        the agent that recorded it\n"
    "      --session S      the session it belongs to\n"
    "      --role R         who said it: user, assistant, ... (default user)\n"
    "      --kind K         episodic, fact or summary (default episodic)\n"
    "      --salience F     initial salience in [0, 1] (default 1)\n"
    "      --decay-rate F   salience decay per day (default 0.01)\n"
    "      --no-extract     store the text only (by default its facts, events\n"
    "                       and relations are extracted, as for remember)\n"
    "      --json           print {\"id\": ...}\n";

static const char help_search[] =
    "usage: deltamemory [global options] search --user U --query Q [-k N]\n"
    "                   [options]\n"
    "\n"
    "Prints the k memories of user U that best match the query, best first,\n"
    "one per line: score, time, id, text.  Retrieval fuses a vector leg, a\n"
    "BM25 keyword leg and a temporal leg (time expressions in the query such\n"
    "as \"last week\" or \"in May 2023\", read relative to --time), scores\n"
    "relevance, recency and salience, brings in the turns next to a hit in\n"
    "its session and drops near-duplicates (docs/retrieval.md).  With --json\n"
    "prints {\"results\": [...]}, each result an object with id, text, score,\n"
    "time, metadata (an object) and every other field of the memory, plus\n"
    "vector_sim, bm25, vector_rank and bm25_rank (and \"explain\" with\n"
    "--explain); \"time\" says how a time expression was read.  A user\n"
    "without memories has no results.  Returned memories have their salience\n"
    "refreshed.\n"
    "\n"
    "  -u, --user U         the user (required)\n"
    "  -q, --query Q        what to look for (required)\n"
    "  -k N                 how many results, 1..1000 (default 10)\n"
    "      --time ISO8601   the reference time (\"now\") for time expressions,\n"
    "                       recency and salience (default: now)\n"
    "      --explain        for every result, its rank and score in each leg,\n"
    "                       the fused score, each term of the score, and why\n"
    "                       it was kept\n"
    "      --from ISO8601   only memories at or after this time\n"
    "      --to ISO8601     only memories before this time\n"
    "      --filter JSON    only memories whose metadata passes the filter:\n"
    "                       '{\"topic\": \"travel\"}', operators eq ne in nin\n"
    "                       gt gte lt lte contains icontains, AND / OR / NOT\n"
    "      --agent A        only memories of this agent\n"
    "      --session S      only memories of this session\n"
    "      --archived       include archived memories\n"
    "      --tenant T       the tenant (default \"default\")\n"
    "      --json           print JSON\n";

static const char help_get[] =
    "usage: deltamemory [global options] get --id ID [--user U] [options]\n"
    "\n"
    "Prints one memory, every field on its own line (with --json: one\n"
    "object with the fields export writes).  With --user, an id of another\n"
    "user is not found; without it any user's memory is shown.\n"
    "\n"
    "      --id ID          the memory id (required)\n"
    "  -u, --user U         the user who must own it\n"
    "      --tenant T       the tenant (default \"default\")\n"
    "      --embedding      include the embedding vector\n"
    "      --json           print JSON\n";

static const char help_list[] =
    "usage: deltamemory [global options] list --user U [--from T] [--to T]\n"
    "                   [--limit N] [--cursor C]\n"
    "\n"
    "Prints one page of a user's memories, newest first, one per line:\n"
    "time, id, text; then \"next cursor: C\" when there are more (pass it\n"
    "as --cursor C for the next page).  With --json prints {\"items\":\n"
    "[...], \"next_cursor\": C or null}.  A user without memories has an\n"
    "empty list.\n"
    "\n"
    "  -u, --user U         the user (required)\n"
    "      --from ISO8601   only memories at or after this time\n"
    "      --to ISO8601     only memories before this time\n"
    "  -n, --limit N        memories per page, 1..10000 (default 100)\n"
    "      --cursor C       continue after a previous page\n"
    "      --archived       include archived memories\n"
    "      --tenant T       the tenant (default \"default\")\n"
    "      --json           print JSON\n";

static const char help_update[] =
    "usage: deltamemory [global options] update --id ID [--text T]\n"
    "                   [--meta JSON] [--user U]\n"
    "\n"
    "Replaces the text (re-embedded and re-indexed) and/or the metadata of\n"
    "a memory; its id, user and time stay.  Prints \"updated ID\" (with\n"
    "--json: {\"id\": ID, \"updated\": true}).\n"
    "\n"
    "      --id ID          the memory id (required)\n"
    "  -t, --text T         the new text\n"
    "  -m, --meta JSON      the new metadata, a JSON object\n"
    "  -u, --user U         the user who must own it\n"
    "      --tenant T       the tenant (default \"default\")\n"
    "      --json           print JSON\n";

static const char help_delete[] =
    "usage: deltamemory [global options] delete --user U --id ID\n"
    "\n"
    "Deletes one memory of user U from storage and every index.  Prints\n"
    "\"deleted ID\" (with --json: {\"id\": ID, \"deleted\": true}).  An id\n"
    "that user U does not own is an error.\n"
    "\n"
    "  -u, --user U         the user (required)\n"
    "      --id ID          the memory id (required)\n"
    "      --tenant T       the tenant (default \"default\")\n"
    "      --json           print JSON\n";

static const char help_archive[] =
    "usage: deltamemory [global options] archive --user U --id ID\n"
    "\n"
    "Archives one memory of user U: it leaves default search and listing\n"
    "but is kept (search and list --archived find it; restore brings it\n"
    "back).  Prints \"archived ID\" (with --json: {\"id\": ID, \"archived\":\n"
    "true}).\n"
    "\n"
    "  -u, --user U         the user (required)\n"
    "      --id ID          the memory id (required)\n"
    "      --tenant T       the tenant (default \"default\")\n"
    "      --json           print JSON\n";

static const char help_restore[] =
    "usage: deltamemory [global options] restore --user U --id ID\n"
    "\n"
    "Makes an archived memory of user U active again; it starts fading from\n"
    "now.  Prints \"restored ID\" (with --json: {\"id\": ID, \"restored\":\n"
    "true}).\n"
    "\n"
    "  -u, --user U         the user (required)\n"
    "      --id ID          the memory id (required)\n"
    "      --tenant T       the tenant (default \"default\")\n"
    "      --json           print JSON\n";

static const char help_decay[] =
    "usage: deltamemory [global options] decay [--user U] [options]\n"
    "\n"
    "Archives the active episodic memories whose current salience (stored\n"
    "salience x e^(-decay_rate x days since the last recall)) is below the\n"
    "threshold, of user U or of every user of the tenant.  Nothing is\n"
    "deleted.  Prints \"archived N\" (with --json: {\"archived\": N}).\n"
    "\n"
    "  -u, --user U         the user (default: every user of the tenant)\n"
    "      --time ISO8601   the time to decay to (default: now)\n"
    "      --threshold X    in [0, 1) (default 0.05)\n"
    "      --tenant T       the tenant (default \"default\")\n"
    "      --json           print JSON\n";

static const char help_remember[] =
    "usage: deltamemory [global options] remember --user U --text T [options]\n"
    "\n"
    "Stores one conversation turn as a memory of user U (searchable at once),\n"
    "then extracts its facts with the built-in extractor and merges them into\n"
    "the user's profile: a new value of a single-valued slot supersedes the\n"
    "old one (kept in history), the same fact said again is merged, a\n"
    "negation retracts, a city brings its region and country.  Returns after\n"
    "the facts are written.  Prints the id and what changed.\n"
    "\n"
    "  -u, --user U         the user (required)\n"
    "  -t, --text T         what was said (required)\n"
    "      --role R         user (default) or assistant\n"
    "      --session S      the conversation session\n"
    "      --speaker NAME   the speaker's name, when known\n"
    "      --time ISO8601   when it was said (default: now); relative times\n"
    "                       in the text (\"last week\") are resolved against it\n"
    "      --meta JSON      a metadata object\n"
    "      --agent A        the agent\n"
    "      --tenant T       the tenant (default \"default\")\n"
    "      --async          do not wait for the counts (they print as 0); the\n"
    "                       turn is still extracted before the command exits\n"
    "      --json           print {\"id\", \"facts\": {\"added\", \"merged\", ...}}\n";

static const char help_profile[] =
    "usage: deltamemory [global options] profile --user U [options]\n"
    "\n"
    "Prints the user's current facts, one per line (slot, value, confidence,\n"
    "since when), or with --json {\"facts\": [{\"slot\", \"value\",\n"
    "\"confidence\", \"valid_from\", \"valid_to\", \"sources\", ...}]}.\n"
    "\n"
    "  -u, --user U         the user (required)\n"
    "      --as-of ISO8601  the facts true at that time, as known then\n"
    "      --known-now      with --as-of: as known now (what was true then,\n"
    "                       including what was only said later)\n"
    "      --history        every fact, superseded and retracted ones too\n"
    "      --slot S         only slot S (e.g. location.city)\n"
    "      --entity NAME    what is known of an entity the user spoke of\n"
    "      --tenant T       the tenant (default \"default\")\n"
    "      --json           print JSON\n";

static const char help_history[] =
    "usage: deltamemory [global options] history --user U --id FACT_ID\n"
    "\n"
    "Prints every change of one fact (profile --json gives the ids): added,\n"
    "merged, updated, superseded (and by which fact), retracted, with the\n"
    "time it was said and the memory that caused it.\n"
    "\n"
    "  -u, --user U         the user (required)\n"
    "      --id ID          the fact (required)\n"
    "      --tenant T       the tenant (default \"default\")\n"
    "      --json           print {\"changes\": [...]}\n";

static const char help_events[] =
    "usage: deltamemory [global options] events --user U [--from ISO] [--to ISO]\n"
    "\n"
    "Prints the events the user's turns reported (activities, plans,\n"
    "milestones, changes of taste, social events), their times resolved when\n"
    "they were remembered (\"last Saturday\" said on 2023-05-08 is\n"
    "2023-05-06), by start time: those overlapping [from, to).\n"
    "\n"
    "  -u, --user U         the user (required)\n"
    "      --from ISO8601   events ending after this\n"
    "      --to ISO8601     events starting before this\n"
    "      --limit N        at most N (default 1000)\n"
    "      --tenant T       the tenant (default \"default\")\n"
    "      --json           print {\"events\": [{\"type\", \"what\", \"who\", \"from\",\n"
    "                       \"to\", ...}]}\n";

static const char help_context[] =
    "usage: deltamemory [global options] context --user U [--session S]\n"
    "                   [--query Q] [--max-tokens N] [--time ISO8601] [--json]\n"
    "\n"
    "Prints what an agent should know before answering: the user's profile\n"
    "first, then the memories most relevant to the query, then the recent\n"
    "turns of the session, packed into the token budget (one token per four\n"
    "bytes; the profile at most a quarter, the recent turns at most a third;\n"
    "an item that does not fit is left out whole).\n"
    "\n"
    "  -u, --user U         the user (required)\n"
    "      --session S      the conversation whose recent turns to show\n"
    "  -q, --query Q        what the user just said\n"
    "      --max-tokens N   the budget (default 2000)\n"
    "  -k, --k N            relevant memories at most (default 10)\n"
    "      --recent N       recent turns at most (default 10)\n"
    "      --time ISO8601   the reference time (default: now)\n"
    "      --tenant T       the tenant (default \"default\")\n"
    "      --json           print {\"profile\", \"memories\", \"recent\",\n"
    "                       \"context\", \"tokens\"}\n";

static const char help_graph[] =
    "usage: deltamemory [global options] graph --user U [--entity NAME]\n"
    "                   [--depth N] [--search TEXT] [--json]\n"
    "\n"
    "Prints the user's knowledge graph around an entity (default: the user,\n"
    "whose node is \"user\"): the nodes within N hops, with the product of\n"
    "the edge weights on the way, and every edge (fact) between them.  With\n"
    "--search, the entities TEXT names instead.\n"
    "\n"
    "  -u, --user U         the user (required)\n"
    "  -e, --entity NAME    where to start (default: the user)\n"
    "  -d, --depth N        hops, 1..5 (default 2)\n"
    "      --search TEXT    the entities named in TEXT\n"
    "      --tenant T       the tenant (default \"default\")\n"
    "      --json           print {\"entity\", \"depth\", \"nodes\", \"edges\"}\n";

static const char help_chat[] =
    "usage: deltamemory [global options] chat --user U --session S [--text T]\n"
    "\n"
    "One turn of the loop perceive, think, act, remember: builds the context\n"
    "for the message (profile, relevant memories, recent turns), asks the\n"
    "chat model (--llm-url, --llm-model) to answer over it, prints the\n"
    "answer, and remembers the message and the answer (with their facts).\n"
    "Without --text, reads one message a line from standard input until its\n"
    "end.  Without a chat model, prints the context it would send and\n"
    "remembers the message.\n"
    "\n"
    "  -u, --user U         the user (required)\n"
    "      --session S      the conversation (required)\n"
    "  -t, --text T         the message (default: read lines from stdin)\n"
    "      --speaker NAME   the user's name, when known\n"
    "      --max-tokens N   the context's budget (default 2000)\n"
    "      --tenant T       the tenant (default \"default\")\n"
    "      --json           print {\"reply\", \"context\", \"user_turn\", \"reply_turn\"}\n";

static const char help_erase[] =
    "usage: deltamemory [global options] erase-user --user U [--tenant T]\n"
    "\n"
    "Deletes every record of user U (memories, indexes, checkpoints) and\n"
    "compacts their key range so that the bytes leave the disk.  Prints\n"
    "how many memories were erased (with --json: {\"tenant\", \"user_id\",\n"
    "\"erased\"}).  Erasing a user who has nothing stored erases 0.\n"
    "\n"
    "  -u, --user U         the user (required)\n"
    "      --tenant T       the tenant (default \"default\")\n"
    "      --json           print JSON\n";

static const char help_import[] =
    "usage: deltamemory [global options] import FILE.jsonl [options]\n"
    "\n"
    "Adds the memories of a JSON Lines file (FILE - reads stdin), one JSON\n"
    "object per line with \"text\" and \"user_id\" and optionally \"time\"\n"
    "(ISO 8601), \"metadata\" (an object), \"tenant\", \"agent_id\",\n"
    "\"session_id\", \"role\", \"kind\", \"salience\", and the fields export\n"
    "writes (id, record_time, decay_rate, access_count, last_access,\n"
    "state, embedding), which are kept as they are.  Other fields are\n"
    "ignored.  A bad line is reported on stderr as \"line N: reason\" and\n"
    "skipped; the import goes on.  The summary \"imported N, skipped M in\n"
    "X s (R/s)\" ends the run.  When stderr is a terminal a progress bar\n"
    "shows the rate and the time left.  The database is created when\n"
    "missing.  Exit status 0 even when lines were skipped; 1 when a storage\n"
    "or embedding error stopped the import.\n"
    "\n"
    "      --tenant T       the tenant of lines without one\n"
    "      --batch N        lines per write, 1..10000 (default 256)\n"
    "      --no-progress    no progress bar\n"
    "      --json           print the summary as JSON\n";

static const char help_export[] =
    "usage: deltamemory [global options] export [--user U] [--tenant T]\n"
    "                   [--output FILE] > FILE.jsonl\n"
    "\n"
    "Writes memories as JSON Lines, one object per memory with every field:\n"
    "id, tenant, user_id, agent_id, session_id, role, text, time,\n"
    "record_time, salience, decay_rate, access_count, last_access, kind,\n"
    "state, metadata and embedding.  Importing the file into an empty\n"
    "database reproduces the memories exactly, ids included, and exporting\n"
    "that database again gives the same bytes.\n"
    "\n"
    "  -u, --user U         only this user (default: everyone)\n"
    "      --tenant T       only this tenant (with --user: the user's tenant)\n"
    "  -o, --output FILE    write to FILE instead of stdout\n";

static const char help_reembed[] =
    "usage: deltamemory [global options] reembed\n"
    "\n"
    "Re-embeds every memory with the model the global options select\n"
    "(--model, --embedder, ...) when the database was embedded with another\n"
    "one, and records the new model.  Reports the model, the dimension and\n"
    "the number of memories (with --json: {\"model\", \"dim\", \"memories\",\n"
    "\"reembedded\", \"seconds\"}).  Nothing happens when the model is the\n"
    "same.\n";

static const char help_check[] =
    "usage: deltamemory [global options] check DIR\n"
    "       deltamemory --data DIR check\n"
    "\n"
    "Verifies every file of the database in DIR without opening it for\n"
    "writing (no lock, no recovery, nothing modified): the MANIFEST, every\n"
    "block of every table, every WAL record.  Prints each problem as\n"
    "DIR/FILE: offset N: reason, then a summary.  Exit status 0 only when\n"
    "every file is intact, 1 when something is damaged or missing, 2 when\n"
    "DIR holds no database.  With --json prints {\"database\", \"clean\",\n"
    "\"files_checked\", \"sst_entries\", \"wal_records\", \"problems\":\n"
    "[{\"file\", \"offset\", \"reason\"}]}.\n";

static const char help_stats[] =
    "usage: deltamemory [global options] stats [DIR]\n"
    "\n"
    "Prints the statistics of the database in DIR (default: --data): what\n"
    "recovery found, the files and bytes per level, the memtable and the\n"
    "last sequence number; then the memory engine's figures: users,\n"
    "memories, loaded indexes, index and disk bytes, the embedding model.\n"
    "With --json prints {\"database\", \"storage\": {...}, \"memory\":\n"
    "{...} or null}.\n";

static const char help_serve[] =
    "usage: deltamemory [global options] serve [DIR] [options]\n"
    "\n"
    "Opens (creating if needed) the database in DIR (default: --data) and\n"
    "serves it over HTTP/JSON until SIGINT or SIGTERM: the native API, the\n"
    "DeltaMemory and Mem0 dialects and MCP at /mcp (docs/api.md).  The\n"
    "first signal finishes the requests in progress and closes the\n"
    "database; a second one exits at once.  Without any API key (see\n"
    "`deltamemory keys`) it listens on loopback only.  Settings come from\n"
    "--config FILE (else ./deltamemory.json when present), then the\n"
    "environment (DELTAMEMORY_HOST, DELTAMEMORY_PORT, ...), then these\n"
    "options:\n"
    "\n"
    "      --host H            address to listen on (default 127.0.0.1)\n"
    "      --port N            port (default 6969; 0 = any free port)\n"
    "      --threads N         request threads (default 12 per core, >= 16)\n"
    "      --write-threads N   threads that run the writes while their\n"
    "                          connections wait (default 32 per core, >= 64)\n"
    "      --max-connections N (default 4096)\n"
    "      --timeout S         idle connection timeout, seconds (default 30)\n"
    "      --max-body BYTES    request body limit (default 8388608)\n"
    "      --max-text BYTES    one memory's text (default 32768; the\n"
    "                          database's limit is raised to match)\n"
    "      --max-batch N       items in one batch (default 1000)\n"
    "      --max-top-k N       results of one search (default 1000)\n"
    "      --max-depth N       JSON nesting (default 32)\n"
    "      --rate N            requests per second per key, or per client\n"
    "                          address without keys (default 1000; -1 = no\n"
    "                          limit)\n"
    "      --rate-burst N      (default 2 * rate)\n"
    "      --user-concurrency N requests of one user in progress at once;\n"
    "                          the others wait their turn (default half\n"
    "                          the cores, at least 1)\n"
    "      --strict            unknown fields in a body are an error (422)\n"
    "      --open              listen on a non-loopback address without keys\n"
    "      --access-log FILE   one JSON line per request (- = stderr)\n"
    "      --user-idle S       unload a user's indexes from memory after S\n"
    "                          seconds unused (default 900; 0 = never)\n"
    "      --index-memory BYTES bound the memory of the loaded indexes:\n"
    "                          past it the least recently used users are\n"
    "                          unloaded (default 0 = no bound)\n"
    "      --map-memory BYTES  bound the resident pages of mapped files:\n"
    "                          past it, about once a second, the pages of\n"
    "                          the table blocks read longest ago are given\n"
    "                          back to the kernel (default 0 = no bound)\n"
    "      --pread-tables      read the table files into the block cache\n"
    "                          instead of mapping them: the resident set\n"
    "                          holds no table pages (default: mapped)\n"
    "      --config FILE       a JSON object of these settings (names with\n"
    "                          underscores: max_body_bytes, rate_per_second...)\n";

static const char help_eval[] =
    "usage: deltamemory [global options] eval locomo --turns T.jsonl\n"
    "                   --questions Q.jsonl [--k 5,10,25] [--mode M]\n"
    "                   [--dump FILE] [--time ISO8601] [--remember | --no-extract]\n"
    "                   [--json]\n"
    "\n"
    "Measures retrieval on the LoCoMo benchmark.  Every conversation\n"
    "(conv_id) becomes one user and every turn one memory, \"speaker:\n"
    "text\" plus \" [shares a photo: caption]\" when it has a blip_caption,\n"
    "at its session_time (UTC when it has no zone) plus its position in the\n"
    "session in microseconds, with metadata {\"dia_id\", \"speaker\"}.  Each\n"
    "question is then searched in its own conversation (without refreshing\n"
    "salience, so questions do not influence each other) and its evidence\n"
    "turns are looked for in the top k.  Prints, per category and overall,\n"
    "the number of questions n and for each k: frac@k (mean percentage of a\n"
    "question's evidence found), any@k and all@k (percentage of questions\n"
    "with at least one, or all, of it found).  Questions without evidence\n"
    "are skipped and counted; an evidence id that matches no turn counts\n"
    "as never found.  Also prints the ingest time and the search latency.\n"
    "Without --data the database is a temporary directory removed at the\n"
    "end; with --data DIR it is kept, and DIR must not hold the\n"
    "conversations already.  A bad line in either file is an error naming\n"
    "the file and line (exit 1).\n"
    "\n"
    "      --turns FILE     the turns, one JSON object a line (required)\n"
    "      --questions FILE the questions, one JSON object a line (required)\n"
    "  -k, --k LIST         comma-separated cut-offs, each 1..1000\n"
    "                       (default 5,10,25)\n"
    "      --mode M         vector: the vector leg alone, by similarity;\n"
    "                       bm25: the BM25 leg alone; fused: all legs fused,\n"
    "                       no MMR or neighbours; full: the defaults\n"
    "                       (default); all: the four in turn on one\n"
    "                       database, plus a summary of what each adds\n"
    "      --dump FILE      write one JSON line per scored question of the\n"
    "                       last mode run (full with --mode all): {\"qid\",\n"
    "                       \"category\", \"evidence\", \"retrieved\": [dia_id,\n"
    "                       ...]}, best first, at least 25 deep\n"
    "      --time ISO8601   the reference time of every search (default: the\n"
    "                       time of the last turn of the conversation)\n"
    "      --remember       store the turns one by one with remember, each\n"
    "                       waiting for its extraction (default: batched\n"
    "                       adds, extracted behind them before the questions)\n"
    "      --no-extract     store the turns only: no facts, events or graph\n"
    "      --json           print {\"mode\", \"questions\", \"skipped\",\n"
    "                       \"categories\": [{\"category\", \"name\", \"n\",\n"
    "                       \"frac@K\", \"any@K\", \"all@K\"}, ...], \"overall\",\n"
    "                       ...} (with --mode all: {\"modes\": [...]})\n"
    "\n"
    "usage: deltamemory [global options] eval extraction [--statements F]\n"
    "                   [--scenarios F] [--verbose] [--json]\n"
    "\n"
    "Measures the built-in fact extractor and the fact merge on the labelled\n"
    "set (format: tests/data/cognition/README.md).  Each statement goes\n"
    "through the extractor alone; precision and recall of facts are printed\n"
    "per slot and overall (a fact is right when subject, slot, polarity and\n"
    "normalized value match), and of events (type and dates) and relations.\n"
    "Each scenario is remembered turn by turn into a fresh temporary\n"
    "database and its checks are run against the profile, its history and\n"
    "search; a scenario passes when every check does.\n"
    "\n"
    "      --statements F   default tests/data/cognition/statements.jsonl\n"
    "                       (\"\" skips them)\n"
    "      --scenarios F    default tests/data/cognition/scenarios.jsonl\n"
    "                       (\"\" skips them)\n"
    "  -v, --verbose        print every wrong fact and failed check\n"
    "      --json           print the figures as one JSON object\n";

static const char help_version[] =
    "usage: deltamemory version\n"
    "\n"
    "Prints the version (with --json: {\"version\": ...}).\n";

static const char help_help[] =
    "usage: deltamemory help [COMMAND]\n"
    "\n"
    "Prints the overview of the commands, or the help of one command (the\n"
    "same as deltamemory COMMAND --help).\n";

static const char global_help[] =
    "global options (before the command):\n"
    "  --data DIR           the database directory (default ./data)\n"
    "  --model PATH         the built-in embedding model file (default\n"
    "                       $DM_MODEL, then models/glove-6b-100d.dmm)\n"
    "  --embedder KIND      builtin or http (default builtin)\n"
    "  --http-url URL       http: an OpenAI-compatible base URL, e.g.\n"
    "                       http://127.0.0.1:11434/v1 (implies --embedder http)\n"
    "  --http-model NAME    http: the model name\n"
    "  --http-dim N         http: the dimension (default: ask the endpoint)\n"
    "  --llm-url URL        a chat model: an OpenAI-compatible base URL (key\n"
    "                       from DM_LLM_API_KEY); remember then extracts with\n"
    "                       it and chat answers with it\n"
    "  --llm-model NAME     the chat model's name\n"
    "  --sync MODE          none, batch or always: when writes reach the\n"
    "                       disk (default batch)\n"
    "  --json               print JSON (also accepted after the command)\n"
    "  --url URL            a running server (default $DELTAMEMORY_URL): add,\n"
    "                       search, get, update, delete, list, erase-user,\n"
    "                       remember, profile, events, graph, context and\n"
    "                       history then ask it and print its JSON answer\n"
    "                       (unless --data is given)\n"
    "  --api-key KEY        the server's API key (default $DELTAMEMORY_API_KEY)\n"
    "\n"
    "Every command takes --help.  Exit status: 0 success (check: clean),\n"
    "1 failed or damaged, 2 usage error or no database at DIR.  Errors are\n"
    "one line on stderr.\n";

/* ---------------------------------------------------------- the table */

static int cmd_version(const cli_globals *g, int argc, char **argv);
static int cmd_help(const cli_globals *g, int argc, char **argv);

const cli_cmd cli_commands[] = {
    { "add", cli_cmd_add, "add", "store a memory and print its id",
      help_add },
    { "search", cli_cmd_search, "search",
      "the memories of a user that best match a query", help_search },
    { "get", cli_cmd_get, "get", "one memory by id", help_get },
    { "list", cli_cmd_list, "list",
      "a user's memories, newest first, page by page", help_list },
    { "update", cli_cmd_update, "update",
      "replace the text or metadata of a memory", help_update },
    { "delete", cli_cmd_delete, "delete", "delete one memory", help_delete },
    { "archive", cli_cmd_archive, "archive", "archive one memory (kept, out of recall)",
      help_archive },
    { "restore", cli_cmd_restore, "restore", "make an archived memory active again",
      help_restore },
    { "decay", cli_cmd_decay, "decay",
      "archive the memories whose salience has faded", help_decay },
    { "remember", cli_cmd_remember, "remember",
      "store a conversation turn and extract its facts", help_remember },
    { "profile", cli_cmd_profile, "profile", "a user's facts, now or as of a time",
      help_profile },
    { "history", cli_cmd_history, "history", "every change of one fact", help_history },
    { "events", cli_cmd_events, "events", "the events a user's turns reported", help_events },
    { "graph", cli_cmd_graph, "graph", "a user's knowledge graph around an entity", help_graph },
    { "chat", cli_cmd_chat, "chat", "answer a message with memory (needs a chat model)",
      help_chat },
    { "context", cli_cmd_context, "context",
      "profile, relevant memories and recent turns, within a token budget", help_context },
    { "erase-user", cli_cmd_erase_user, "erase-user",
      "delete everything stored for a user", help_erase },
    { "import", cli_cmd_import, "import FILE",
      "add memories from a JSON Lines file", help_import },
    { "export", cli_cmd_export, "export",
      "write memories as JSON Lines (lossless)", help_export },
    { "reembed", cli_cmd_reembed, "reembed",
      "re-embed every memory with the selected model", help_reembed },
    { "check", cli_cmd_check, "check DIR",
      "verify every file of the database in DIR (read-only)", help_check },
    { "stats", cli_cmd_stats, "stats DIR",
      "memory and storage statistics of the database in DIR", help_stats },
    { "serve", cli_cmd_serve, "serve [DIR]",
      "serve the database over HTTP/JSON, Mem0's API and MCP",
      help_serve },
    { "keys", cli_cmd_keys, "keys create|list|revoke",
      "the server's API keys (each names a tenant)", cli_help_keys },
    { "mcp", cli_cmd_mcp, "mcp", "serve the Model Context Protocol on stdin/stdout",
      cli_help_mcp },
    { "demo", cli_cmd_demo, "demo", "load a short conversation and show recall, profile and context",
      cli_help_demo },
    { "eval", cli_cmd_eval, "eval locomo|extraction",
      "measure retrieval on LoCoMo, or fact extraction on the labelled set", help_eval },
    { "version", cmd_version, "version", "print the version", help_version },
    { "help", cmd_help, "help [CMD]",
      "print this text, or the help of one command", help_help },
    { NULL, NULL, NULL, NULL, NULL },
};

const cli_cmd *cli_find_command(const char *name)
{
    for (const cli_cmd *c = cli_commands; c->name; c++)
        if (!strcmp(c->name, name))
            return c;
    return NULL;
}

int cli_print_help(const cli_cmd *cmd)
{
    fputs(cmd->help, stdout);
    if (cmd->run != cmd_version && cmd->run != cmd_help)
        fputs("\nThe global options (deltamemory help) come before the "
              "command.\n", stdout);
    return CLI_OK;
}

static void print_overview(FILE *fp)
{
    fputs("usage: deltamemory [global options] <command> [options]\n"
          "\n"
          "memory commands (on the database in --data DIR, default ./data):\n",
          fp);
    for (const cli_cmd *c = cli_commands; c->name; c++) {
        if (!strcmp(c->name, "check"))
            fputs("storage and other commands:\n", fp);
        fprintf(fp, "  %-13s %s\n", c->synopsis, c->summary);
    }
    fputc('\n', fp);
    fputs(global_help, fp);
}

static int cmd_version(const cli_globals *g, int argc, char **argv)
{
    cli_args a;
    int st = cli_parse("version", g, NULL, 0, argc, argv, &a);
    if (st != CLI_OK)
        return st;
    if (a.is_help)
        return cli_print_help(cli_find_command("version"));
    if (a.n_pos > 0)
        return cli_usage("version", "unexpected argument \"%s\"", a.pos[0]);
    if (a.is_json)
        st = cli_print_json("version", json_pack("{s:s}", "version",
                                                 dm_version()));
    else
        printf("deltamemory %s\n", dm_version());
    return cli_finish_output("version", st);
}

static int cmd_help(const cli_globals *g, int argc, char **argv)
{
    cli_args a;
    int st = cli_parse("help", g, NULL, 0, argc, argv, &a);
    if (st != CLI_OK)
        return st;
    if (a.is_help)
        return cli_print_help(cli_find_command("help"));
    if (a.n_pos > 1)
        return cli_usage("help", "takes at most one command name");
    if (a.n_pos == 1) {
        const cli_cmd *c = cli_find_command(a.pos[0]);
        if (!c)
            return cli_usage("help", "unknown command \"%s\"", a.pos[0]);
        cli_print_help(c);
    } else {
        print_overview(stdout);
    }
    return cli_finish_output("help", CLI_OK);
}

/* --------------------------------------------------- global options */

/* The value of a global option given as --name=V or --name V; advances *i
 * past what it used.  NULL (after the usage error) when the value is
 * missing; *is_match false when argv[*i] is not this option. */
static const char *global_value(int argc, char **argv, int *i,
                                const char *name, bool *is_match,
                                bool *is_bad)
{
    const char *a = argv[*i] + 2;
    size_t len = strlen(name);
    *is_match = false;
    if (strncmp(a, name, len) != 0 || (a[len] != 0 && a[len] != '='))
        return NULL;
    *is_match = true;
    if (a[len] == '=')
        return a + len + 1;
    if (*i + 1 >= argc) {
        cli_usage(NULL, "option --%s needs a value", name);
        *is_bad = true;
        return NULL;
    }
    return argv[++*i];
}

/* Parses the options before the command; returns the index of the command
 * or a negative exit status (-CLI_USAGE) after the error. */
static int parse_globals(int argc, char **argv, cli_globals *g, bool *is_done,
                         int *status)
{
    static const char *const names[] = { "data", "model", "embedder",
                                         "http-url", "http-model",
                                         "http-dim", "sync", "llm-url",
                                         "llm-model", "url", "api-key" };
    bool is_embedder_set = false;
    int i = 1;
    *is_done = false;
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            i++;
            break;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            print_overview(stdout);
            *is_done = true;
            *status = cli_finish_output("help", CLI_OK);
            return i;
        }
        if (!strcmp(a, "--version")) {
            printf("deltamemory %s\n", dm_version());
            *is_done = true;
            *status = cli_finish_output("version", CLI_OK);
            return i;
        }
        if (!strcmp(a, "--json")) {
            g->is_json = true;
            continue;
        }
        bool is_match = false, is_bad = false;
        const char *v = NULL;
        size_t k = 0;
        if (a[1] == '-') {
            for (; k < sizeof names / sizeof names[0]; k++) {
                v = global_value(argc, argv, &i, names[k], &is_match, &is_bad);
                if (is_match || is_bad)
                    break;
            }
        }
        if (is_bad) {
            *status = CLI_USAGE;
            *is_done = true;
            return i;
        }
        if (!is_match) {
            *status = cli_usage(NULL, "unknown global option %s", a);
            *is_done = true;
            return i;
        }
        const char *name = names[k];
        if (!strcmp(name, "data")) {
            g->data_dir = v;
            g->has_data = true;
        } else if (!strcmp(name, "model")) {
            g->model_path = v;
        } else if (!strcmp(name, "embedder")) {
            if (!strcmp(v, "builtin")) {
                g->embedder = DM_EMBED_BUILTIN;
            } else if (!strcmp(v, "http")) {
                g->embedder = DM_EMBED_HTTP;
            } else {
                *status = cli_usage(NULL, "--embedder: \"%s\" is not builtin "
                                    "or http", v);
                *is_done = true;
                return i;
            }
            is_embedder_set = true;
        } else if (!strcmp(name, "url")) {
            g->url = v;
        } else if (!strcmp(name, "api-key")) {
            g->api_key = v;
        } else if (!strcmp(name, "http-url")) {
            g->http_url = v;
        } else if (!strcmp(name, "http-model")) {
            g->http_model = v;
        } else if (!strcmp(name, "http-dim")) {
            if (cli_parse_u32(NULL, "--http-dim", v, 1, 65536,
                              &g->http_dim) != CLI_OK) {
                *status = CLI_USAGE;
                *is_done = true;
                return i;
            }
        } else if (!strcmp(name, "llm-url")) {
            g->llm_url = v;
        } else if (!strcmp(name, "llm-model")) {
            g->llm_model = v;
        } else if (!strcmp(name, "sync")) {
            if (!strcmp(v, "none")) {
                g->sync = DM_SYNC_NONE;
            } else if (!strcmp(v, "batch")) {
                g->sync = DM_SYNC_BATCH;
            } else if (!strcmp(v, "always")) {
                g->sync = DM_SYNC_ALWAYS;
            } else {
                *status = cli_usage(NULL, "--sync: \"%s\" is not none, batch "
                                    "or always", v);
                *is_done = true;
                return i;
            }
        }
    }
    /* Naming an endpoint is choosing it, unless --embedder said otherwise. */
    if (!is_embedder_set && g->http_url)
        g->embedder = DM_EMBED_HTTP;
    return i;
}

int main(int argc, char **argv)
{
    cli_globals g;
    memset(&g, 0, sizeof g);
    g.data_dir = "./data";
    g.sync = -1;
    dm_options defaults;
    dm_options_init(&defaults);
    g.user_idle_s = defaults.user_idle_s;
    g.index_memory_bytes = defaults.index_memory_bytes;
    g.map_memory_bytes = defaults.map_memory_bytes;
    g.embedder = DM_EMBED_BUILTIN;

    bool is_done = false;
    int status = CLI_OK;
    int i = parse_globals(argc, argv, &g, &is_done, &status);
    if (is_done)
        return status;
    if (i >= argc) {
        print_overview(stderr);
        return CLI_USAGE;
    }
    const char *name = argv[i];
    if (!strcmp(name, "--version"))
        name = "version";
    const cli_cmd *c = cli_find_command(name);
    if (!c) {
        return cli_usage(NULL, "unknown command \"%s\"; usage: deltamemory "
                         "[global options] <command> [options]", name);
    }
    if (!g.url) {
        const char *u = getenv("DELTAMEMORY_URL");
        g.url = u && *u ? u : NULL;
    }
    /* A server to talk to: the memory commands go over HTTP (remote.c). */
    if (g.url && !g.has_data && cli_remote_has(c->name))
        return cli_remote(&g, c->name, argc - i - 1, argv + i + 1);
    return c->run(&g, argc - i - 1, argv + i + 1);
}
