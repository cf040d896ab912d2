/*
 * log.h -- the engine's diagnostic log.
 *
 * Messages go to a sink (default: stderr) at or above a level (default:
 * LOG_WARN; DM_LOG=debug|info|warn|error in the environment overrides it).
 * Thread-safe: each message is written with a single write call.
 */
#ifndef DM_BASE_LOG_H
#define DM_BASE_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

typedef void (*log_sink_fn)(enum log_level level, const char *msg, void *arg);

void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* log_set_sink -- route messages to fn (NULL restores stderr). */
void log_set_sink(log_sink_fn fn, void *arg);
void log_set_level(enum log_level level);

#define LOG_D(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define LOG_I(...) log_msg(LOG_INFO, __VA_ARGS__)
#define LOG_W(...) log_msg(LOG_WARN, __VA_ARGS__)
#define LOG_E(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
