/* SPDX-License-Identifier: Apache-2.0 */
#include "cli/cli.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#include <jansson.h>

#include "common/log.h"
#include "common/num.h"

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	char prog[64];
	va_list ap;

	snprintf(prog, sizeof(prog), "mse %s", cmd);
	va_start(ap, fmt);
	mse_usage_verror(prog, fmt, ap);
	va_end(ap);
	return MSE_EXIT_USAGE;
}

int cli_num(const char *cmd, const char *opt, const char *s, uint64_t min, uint64_t max,
	    uint64_t *out)
{
	if (mse_num_parse(s, min, max, out) == 0)
		return 0;
	return cli_usage_error(cmd, "--%s: expected a number in %llu..%llu, got '%s'", opt,
			       (unsigned long long)min, (unsigned long long)max, s);
}

int cli_hostport(const char *cmd, const char *opt, const char *s)
{
	char host[256];
	uint16_t port;

	if (mse_num_hostport(s, host, sizeof(host), &port) == 0)
		return 0;
	return cli_usage_error(cmd, "--%s: expected HOST:PORT (e.g. 127.0.0.1:9100, [::1]:9100; "
				    "PORT 0: a free one), got '%s'",
			       opt, s);
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

json_t *cli_json_new(int ok)
{
	json_t *o = json_object();

	if (!o) {
		fputs("mse: out of memory\n", stderr);
		exit(MSE_EXIT_FAIL);
	}
	json_object_set_new(o, "ok", json_boolean(ok));
	return o;
}

void cli_json_str(json_t *o, const char *key, const char *s)
{
	if (s && s[0])
		json_object_set_new(o, key, json_string(s));
}

json_t *cli_json_error(const struct mse_err *err)
{
	json_t *e = json_object();
	char buf[2048];

	cli_json_str(e, "step", err->step);
	cli_json_str(e, "file", err->file);
	if (err->line > 0)
		json_object_set_new(e, "line", json_integer(err->line));
	if (err->col > 0)
		json_object_set_new(e, "column", json_integer(err->col));
	cli_json_str(e, "field", err->field);
	if (err->expected[0] || err->actual[0]) {
		json_object_set_new(e, "expected", json_string(err->expected));
		json_object_set_new(e, "actual", json_string(err->actual));
	}
	json_object_set_new(e, "message", json_string(mse_err_str(err, buf, sizeof(buf))));
	return e;
}

void cli_json_print(json_t *o)
{
	char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);

	if (s) {
		puts(s);
		free(s);
	} else {
		puts("{\"ok\": false, \"error\": {\"message\": \"out of memory\"}}");
	}
	fflush(stdout);
	json_decref(o);
}

int cli_json_fail(const struct mse_err *err)
{
	json_t *o = cli_json_new(0);

	json_object_set_new(o, "error", cli_json_error(err));
	cli_json_print(o);
	return MSE_EXIT_FAIL;
}

int cli_json_failf(const char *step, const char *fmt, ...)
{
	struct mse_err e;
	va_list ap;

	mse_err_clear(&e);
	mse_err_step(&e, step);
	va_start(ap, fmt);
	vsnprintf(e.msg, sizeof(e.msg), fmt, ap);
	va_end(ap);
	return cli_json_fail(&e);
}

int cli_json_fail_list(const struct mse_errlist *l, const struct mse_err *fallback)
{
	json_t *o, *all;

	if (!l || !l->len)
		return cli_json_fail(fallback);
	o = cli_json_new(0);
	all = json_array();
	json_object_set_new(o, "error", cli_json_error(&l->items[0]));
	for (size_t i = 0; i < l->len; i++)
		json_array_append_new(all, cli_json_error(&l->items[i]));
	json_object_set_new(o, "errors", all);
	if (l->dropped)
		json_object_set_new(o, "errors_not_shown", json_integer((json_int_t)l->dropped));
	cli_json_print(o);
	return MSE_EXIT_FAIL;
}

int cli_stdout_to_stderr(void)
{
	int saved;

	fflush(stdout);
	/* CLOEXEC: the enclave a deploy starts must not keep our stdout open. */
	saved = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
	if (saved >= 0 && dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
		close(saved);
		return -1;
	}
	return saved;
}

void cli_stdout_restore(int saved)
{
	if (saved < 0)
		return;
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
}
