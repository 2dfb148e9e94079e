/* SPDX-License-Identifier: Apache-2.0 */
/* mse list — the enclaves of this machine's operator. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "operator/instance.h"

static const char usage[] =
	"Usage: mse list [--quiet | --json]\n"
	"\n"
	"List the enclaves spawned on this machine (their state directories under\n"
	"$XDG_STATE_HOME/mse, default ~/.local/state/mse) with their mode, address,\n"
	"process and status.\n"
	"\n"
	"Options:\n"
	"  -q, --quiet   print the names only\n"
	"  --json        one JSON object: {\"ok\": true, \"instances\": [{\"name\", \"role\",\n"
	"                \"mode\", \"host\", \"port\", \"pid\", \"status\", \"metrics\" (HOST:PORT\n"
	"                of its Prometheus metrics, or null)} or {\"name\", \"error\"}, ...]}\n"
	"  -h, --help    show this help\n";

int cmd_list(int argc, char **argv)
{
	static const struct option opts[] = {
		{"quiet", no_argument, NULL, 'q'}, {"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'}, {0}};
	struct mse_err err = {0};
	char **names;
	size_t n;
	int quiet = 0, json = 0, c;
	json_t *all = NULL;

	optind = 1;
	while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(usage, stdout);
			return MSE_EXIT_OK;
		}
		if (c == 'q')
			quiet = 1;
		else if (c == 'j')
			json = 1;
		else
			return cli_usage_error("list", "unknown option");
	}
	if (optind != argc)
		return cli_usage_error("list", "unexpected argument '%s'", argv[optind]);
	if (mse_instance_list(&names, &n, &err) != 0)
		return json ? cli_json_fail(&err) : cli_fail("list", &err);
	if (json) {
		all = json_array();
		quiet = 1;
	}
	if (!quiet && n)
		printf("%-20s %-12s %-10s %-22s %-8s %s\n", "NAME", "ROLE", "MODE", "ADDRESS", "PID",
		       "STATUS");
	for (size_t i = 0; i < n; i++) {
		struct mse_instance inst;
		char addr[300];

		if (all) {
			json_t *e = json_object();

			json_object_set_new(e, "name", json_string(names[i]));
			if (mse_instance_load(&inst, names[i], &err) != 0) {
				json_object_set_new(e, "error", cli_json_error(&err));
			} else {
				json_object_set_new(e, "role", json_string(mse_instance_role(&inst)));
				json_object_set_new(e, "mode",
						    json_string(mse_instance_mode_name(inst.mode)));
				json_object_set_new(e, "metrics", inst.metrics[0]
									  ? json_string(inst.metrics)
									  : json_null());
				json_object_set_new(e, "host", json_string(inst.host));
				json_object_set_new(e, "port", json_integer(inst.port));
				json_object_set_new(e, "pid", json_integer((json_int_t)inst.pid));
				json_object_set_new(e, "status", json_string(mse_instance_status_name(
									 mse_instance_probe(&inst, NULL, 0))));
			}
			json_array_append_new(all, e);
			continue;
		}
		if (quiet) {
			puts(names[i]);
			continue;
		}
		if (mse_instance_load(&inst, names[i], &err) != 0) {
			char m[2048];

			printf("%-20s (unreadable: %s)\n", names[i], mse_err_str(&err, m, sizeof(m)));
			continue;
		}
		snprintf(addr, sizeof(addr), "%s:%u", inst.host, (unsigned)inst.port);
		printf("%-20s %-12s %-10s %-22s %-8d %s\n", inst.name, mse_instance_role(&inst),
		       mse_instance_mode_name(inst.mode), addr, (int)inst.pid,
		       mse_instance_status_name(mse_instance_probe(&inst, NULL, 0)));
	}
	if (all) {
		json_t *o = cli_json_new(1);

		json_object_set_new(o, "instances", all);
		cli_json_print(o);
	}
	if (!quiet && !n)
		puts("no enclaves (start one with 'mse spawn' or 'mse deploy')");
	mse_instance_names_free(names, n);
	return MSE_EXIT_OK;
}
