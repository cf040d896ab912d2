/*
 * log.c -- leveled diagnostics to a replaceable sink.
 */
#include "base/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static _Atomic(log_sink_fn) sink;
static void *_Atomic sink_arg;
static _Atomic int min_level = -1;

static int level_from_env(void)
{
    const char *e = getenv("DM_LOG");
    if (!e) return LOG_WARN;
    if (!strcmp(e, "debug")) return LOG_DEBUG;
    if (!strcmp(e, "info")) return LOG_INFO;
    if (!strcmp(e, "error")) return LOG_ERROR;
    return LOG_WARN;
}

void log_set_sink(log_sink_fn fn, void *arg)
{
    atomic_store(&sink_arg, arg);
    atomic_store(&sink, fn);
}

void log_set_level(enum log_level level)
{
    atomic_store(&min_level, (int)level);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    int min = atomic_load(&min_level);
    if (min < 0) {
        min = level_from_env();
        atomic_store(&min_level, min);
    }
    if ((int)level < min)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_sink_fn fn = atomic_load(&sink);
    if (fn) {
        fn(level, msg, atomic_load(&sink_arg));
        return;
    }
    static const char *names[] = { "debug", "info", "warn", "error" };
    char line[1100];
    int n = snprintf(line, sizeof line, "deltamemory: %s: %s\n", names[level], msg);
    if (n > (int)sizeof line - 1)
        n = (int)sizeof line - 1;
    ssize_t w = write(2, line, (size_t)n);
    (void)w;
}
