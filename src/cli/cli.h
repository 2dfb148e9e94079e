/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The `mse` command line: a dispatch table (commands.def) and one file per
 * subcommand. Only a command's main turns errors into exit codes:
 * 0 success, 1 failure, 2 usage error.
 */
#ifndef MSE_CLI_H
#define MSE_CLI_H

#include <stdio.h>

#include "common/err.h"

enum { MSE_EXIT_OK = 0, MSE_EXIT_FAIL = 1, MSE_EXIT_USAGE = 2 };

#define MSE_CMD(name, summary) int cmd_##name(int argc, char **argv);
#include "cli/commands.def"
#undef MSE_CMD

/* Prints "mse CMD: MESSAGE" and a hint to --help on stderr; returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...) MSE_PRINTF(2, 3);
/* Prints "mse CMD: ERROR" on stderr; returns 1. */
int cli_fail(const char *cmd, const struct mse_err *err);
/* Prints "mse CMD: MESSAGE" on stderr; returns 1. */
int cli_failf(const char *cmd, const char *fmt, ...) MSE_PRINTF(2, 3);
/* 1 if stdout is a terminal (progress bars, colors). */
int cli_is_tty(FILE *f);

#endif
