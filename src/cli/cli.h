/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The `mse` command line: a dispatch table (commands.def) and one file per
 * subcommand. Only a command's main turns errors into exit codes:
 * 0 success, 1 failure, 2 usage error.
 */
#ifndef MSE_CLI_H
#define MSE_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "common/err.h"

enum { MSE_EXIT_OK = 0, MSE_EXIT_FAIL = 1, MSE_EXIT_USAGE = 2 };

#define MSE_CMD(name, summary) int cmd_##name(int argc, char **argv);
#include "cli/commands.def"
#undef MSE_CMD

/* Prints "mse CMD: MESSAGE" and a hint to --help on stderr; returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...) MSE_PRINTF(2, 3);
/*
 * A decimal option value in [min, max] (common/num.h): 0 and *out, or the
 * usage error "mse CMD: --OPT: expected a number in MIN..MAX, got 'S'" and 2.
 */
int cli_num(const char *cmd, const char *opt, const char *s, uint64_t min, uint64_t max,
	    uint64_t *out);
/*
 * A HOST:PORT option value ("[v6]:PORT" for IPv6; common/num.h): 0, or the
 * usage error "mse CMD: --OPT: expected HOST:PORT (...), got 'S'" and 2.
 */
int cli_hostport(const char *cmd, const char *opt, const char *s);
/* Prints "mse CMD: ERROR" on stderr; returns 1. */
int cli_fail(const char *cmd, const struct mse_err *err);
/* Prints "mse CMD: MESSAGE" on stderr; returns 1. */
int cli_failf(const char *cmd, const char *fmt, ...) MSE_PRINTF(2, 3);
/* 1 if stdout is a terminal (progress bars, colors). */
int cli_is_tty(FILE *f);

/*
 * --json: every command that reports a result or a state prints one JSON
 * object on stdout, {"ok": true, ...} or
 *   {"ok": false, "error": {"step", "file", "line", "column", "field",
 *                           "expected", "actual", "message"}}
 * with absent members omitted, and keeps its exit status. "message" is the
 * whole error as the text output prints it after "mse CMD: ".
 */
struct json_t;
/* A new object {"ok": ok}; members are added in order after it. */
struct json_t *cli_json_new(int ok);
/* The "error" member for err (a new reference). */
struct json_t *cli_json_error(const struct mse_err *err);
/* Prints o (indented, keys in insertion order) and a newline; releases o. */
void cli_json_print(struct json_t *o);
/* Prints {"ok": false, "error": ...} for err; returns 1. */
int cli_json_fail(const struct mse_err *err);
/* The same for a message with no structure; returns 1. */
int cli_json_failf(const char *step, const char *fmt, ...) MSE_PRINTF(2, 3);
/*
 * Prints {"ok": false, "error": FIRST, "errors": [ALL]} for a check that
 * reports every error (mse.toml); fallback when the list is empty. Returns 1.
 */
int cli_json_fail_list(const struct mse_errlist *l, const struct mse_err *fallback);
/*
 * While a --json command runs child processes (the app's tests), their
 * output goes to stderr so that stdout holds the JSON object only.
 * cli_stdout_to_stderr returns the saved descriptor for cli_stdout_restore.
 */
int cli_stdout_to_stderr(void);
void cli_stdout_restore(int saved);
/* Sets key to a string, or omits it when s is NULL or "". */
void cli_json_str(struct json_t *o, const char *key, const char *s);

#endif
