/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_log — leveled logging to stderr (or a file), safe from many threads.
 * Lines look like: 2026-11-24T10:00:00Z mse-bootstrap[123] info: listening on 0.0.0.0:443
 */
#ifndef MSE_LOG_H
#define MSE_LOG_H

#include <stdarg.h>
#include <stdio.h>

#include "common/err.h"

enum mse_log_level { MSE_LOG_DEBUG, MSE_LOG_INFO, MSE_LOG_WARN, MSE_LOG_ERROR };

/* Program name shown in each line (not copied: pass a string literal). */
void mse_log_init(const char *prog, enum mse_log_level min_level);
/* Redirects the log (NULL = stderr). The FILE stays owned by the caller. */
void mse_log_set_file(FILE *f);
void mse_log_set_level(enum mse_log_level min_level);
/* Parses "debug|info|warn|error"; -1 if unknown. */
int mse_log_parse_level(const char *s, enum mse_log_level *out);
void mse_log(enum mse_log_level level, const char *fmt, ...) MSE_PRINTF(2, 3);

/*
 * A command-line mistake: "PROG: message", then "Try 'PROG --help'." on
 * stderr. Returns 2, the exit status for usage errors.
 */
int mse_usage_verror(const char *prog, const char *fmt, va_list ap) MSE_PRINTF(2, 0);

#define mse_debug(...) mse_log(MSE_LOG_DEBUG, __VA_ARGS__)
#define mse_info(...) mse_log(MSE_LOG_INFO, __VA_ARGS__)
#define mse_warn(...) mse_log(MSE_LOG_WARN, __VA_ARGS__)
#define mse_error(...) mse_log(MSE_LOG_ERROR, __VA_ARGS__)

#endif
