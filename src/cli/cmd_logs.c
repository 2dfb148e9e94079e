/* SPDX-License-Identifier: Apache-2.0 */
/* mse logs NAME [-f] — the enclave's output. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "operator/instance.h"

static const char usage[] =
	"Usage: mse logs NAME [-f] [-n LINES]\n"
	"\n"
	"Print the output of the enclave NAME (mse-bootstrap's log: configuration\n"
	"server, app server access and error logs).\n"
	"\n"
	"Options:\n"
	"  -f, --follow      keep printing new lines until the enclave stops (or Ctrl-C)\n"
	"  -n, --lines N     print only the last N lines first\n"
	"  -h, --help        show this help\n";

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

/* Offset where the last n lines of f start. */
static long tail_offset(FILE *f, long n)
{
	long size, pos, lines = 0;
	int c;

	if (fseek(f, 0, SEEK_END) != 0)
		return 0;
	size = ftell(f);
	for (pos = size - 1; pos >= 0; pos--) {
		if (fseek(f, pos, SEEK_SET) != 0)
			return 0;
		c = fgetc(f);
		if (c == '\n' && pos != size - 1 && ++lines >= n)
			return pos + 1;
	}
	return 0;
}

int cmd_logs(int argc, char **argv)
{
	static const struct option opts[] = {{"follow", no_argument, NULL, 'f'},
					     {"lines", required_argument, NULL, 'n'},
					     {"help", no_argument, NULL, 'h'},
					     {0}};
	struct mse_instance inst;
	struct mse_err err = {0};
	char buf[65536];
	long lines = -1;
	int follow = 0, c;
	FILE *f;

	optind = 1;
	while ((c = getopt_long(argc, argv, "fn:h", opts, NULL)) != -1) {
		uint64_t v;

		switch (c) {
		case 'h':
			fputs(usage, stdout);
			return MSE_EXIT_OK;
		case 'f':
			follow = 1;
			break;
		case 'n':
			if (cli_num("logs", "lines", optarg, 0, 1 << 30, &v))
				return MSE_EXIT_USAGE;
			lines = (long)v;
			break;
		default:
			return cli_usage_error("logs", "unknown option");
		}
	}
	if (optind + 1 != argc)
		return cli_usage_error("logs", "expected one instance NAME");
	if (mse_instance_load(&inst, argv[optind], &err) != 0)
		return cli_fail("logs", &err);
	f = fopen(inst.log_path, "r");
	if (!f)
		return cli_failf("logs", "%s: %s", inst.log_path, strerror(errno));
	if (lines >= 0 && fseek(f, tail_offset(f, lines), SEEK_SET) != 0)
		rewind(f);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	for (;;) {
		size_t n = fread(buf, 1, sizeof(buf), f);

		if (n) {
			fwrite(buf, 1, n, stdout);
			continue;
		}
		fflush(stdout);
		if (!follow || g_stop)
			break;
		if (!mse_instance_alive(&inst)) {
			/* One last read for what it wrote before exiting. */
			clearerr(f);
			while ((n = fread(buf, 1, sizeof(buf), f)))
				fwrite(buf, 1, n, stdout);
			break;
		}
		clearerr(f);
		usleep(200 * 1000);
	}
	fclose(f);
	return MSE_EXIT_OK;
}
