/* SPDX-License-Identifier: Apache-2.0 */
#include "common/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *g_prog = "mse";
static enum mse_log_level g_level = MSE_LOG_INFO;
static FILE *g_file;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

void mse_log_init(const char *prog, enum mse_log_level min_level)
{
	g_prog = prog;
	g_level = min_level;
}

void mse_log_set_file(FILE *f)
{
	pthread_mutex_lock(&g_lock);
	g_file = f;
	pthread_mutex_unlock(&g_lock);
}

void mse_log_set_level(enum mse_log_level min_level)
{
	g_level = min_level;
}

int mse_log_parse_level(const char *s, enum mse_log_level *out)
{
	static const char *names[] = {"debug", "info", "warn", "error"};

	for (int i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0) {
			*out = (enum mse_log_level)i;
			return 0;
		}
	return -1;
}

void mse_log(enum mse_log_level level, const char *fmt, ...)
{
	static const char *names[] = {"debug", "info", "warning", "error"};
	char ts[32];
	struct tm tm;
	time_t now;
	va_list ap;
	FILE *f;

	if (level < g_level)
		return;
	now = time(NULL);
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	pthread_mutex_lock(&g_lock);
	f = g_file ? g_file : stderr;
	fprintf(f, "%s %s[%d] %s: ", ts, g_prog, (int)getpid(), names[level]);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
	fflush(f);
	pthread_mutex_unlock(&g_lock);
}

int mse_usage_verror(const char *prog, const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: ", prog);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\nTry '%s --help'.\n", prog);
	return 2;
}
