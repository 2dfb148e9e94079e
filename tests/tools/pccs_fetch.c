/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pccs_fetch — drives mse_pccs_fetch_info for the end-to-end tests.
 *
 *   pccs_fetch [--url URL] [--qcnl FILE] [--ca FILE] [--cache DIR] [--offline]
 *              [--refresh] [--timeout S] [--now RFC3339] FMSPC CA
 *
 * Prints "fetched DIR" or "cached DIR" and exits 0, or prints the error and
 * exits 1 (2 on usage errors).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/pccs.h"
#include "attest/tcb.h"
#include "common/err.h"
#include "common/log.h"

int main(int argc, char **argv)
{
	struct mse_pccs_opts o;
	struct mse_pccs_info info;
	struct mse_err err;
	char dir[4096];
	int i;

	mse_log_init("pccs_fetch", MSE_LOG_INFO);
	mse_pccs_opts_init(&o);
	mse_err_clear(&err);
	for (i = 1; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--offline") == 0) {
			o.offline = 1;
			continue;
		}
		if (strcmp(a, "--refresh") == 0) {
			o.refresh = 1;
			continue;
		}
		if (!v) {
			fprintf(stderr, "pccs_fetch: %s needs a value\n", a);
			return 2;
		}
		i++;
		if (strcmp(a, "--url") == 0)
			o.url = v;
		else if (strcmp(a, "--qcnl") == 0)
			o.qcnl_conf = v;
		else if (strcmp(a, "--ca") == 0)
			o.ca_file = v;
		else if (strcmp(a, "--cache") == 0)
			o.cache_dir = v;
		else if (strcmp(a, "--timeout") == 0)
			o.timeout_s = atol(v);
		else if (strcmp(a, "--now") == 0) {
			if (mse_tcb_parse_time(v, &o.now) != 0) {
				fprintf(stderr, "pccs_fetch: bad --now %s\n", v);
				return 2;
			}
		} else {
			fprintf(stderr, "pccs_fetch: unknown option %s\n", a);
			return 2;
		}
	}
	if (argc - i != 2) {
		fprintf(stderr, "usage: pccs_fetch [options] FMSPC CA\n");
		return 2;
	}
	if (mse_pccs_fetch_info(&o, argv[i], argv[i + 1], dir, sizeof(dir), &info, &err) != 0) {
		mse_err_print(&err, "pccs_fetch", stderr);
		return 1;
	}
	printf("%s %s\n", info.from_cache ? "cached" : "fetched", dir);
	return 0;
}
