/* SPDX-License-Identifier: Apache-2.0 */
#include "cli/cli.h"

#include <stdarg.h>
#include <unistd.h>

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "mse %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'mse %s --help'.\n", cmd);
	return MSE_EXIT_USAGE;
}

int cli_fail(const char *cmd, const struct mse_err *err)
{
	char buf[2048];

	fprintf(stderr, "mse %s: %s\n", cmd, mse_err_str(err, buf, sizeof(buf)));
	return MSE_EXIT_FAIL;
}

int cli_failf(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "mse %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return MSE_EXIT_FAIL;
}

int cli_is_tty(FILE *f)
{
	return isatty(fileno(f));
}
