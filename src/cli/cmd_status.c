/* SPDX-License-Identifier: Apache-2.0 */
/* mse status NAME — what state an enclave is in, as MSE reports it. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli/cli.h"
#include "codeprovider/coordclient.h"
#include "operator/instance.h"

/*
 * A coordinator's replicas as it reports them (GET /status through its own
 * RA-TLS certificate, the one captured at spawn: a display for the operator,
 * not a verification): instance, identity, and whether the manifest in force
 * still accepts that identity. NULL when it does not answer.
 */
static json_t *coordinator_replicas(const struct mse_instance *inst)
{
	struct mse_coordclient_conn conn;
	char url[300], pin[4200], *body = NULL;
	size_t len = 0;
	json_t *j = NULL, *list = NULL;

	memset(&conn, 0, sizeof(conn));
	snprintf(url, sizeof(url), "%s:%u", strcmp(inst->host, "0.0.0.0") ? inst->host : "127.0.0.1",
		 (unsigned)inst->port);
	mse_instance_ratls_path(inst, pin, sizeof(pin));
	conn.url = url;
	conn.pin = pin;
	conn.timeout_ms = 5000;
	if (mse_coordclient_get(&conn, "/status", &body, &len, NULL) != 0)
		return NULL;
	j = json_loadb(body, len, 0, NULL);
	free(body);
	list = json_object_get(j, "replica_list");
	if (list)
		json_incref(list);
	json_decref(j);
	return list;
}

static const char usage[] =
	"Usage: mse status NAME [--json]\n"
	"\n"
	"Show the state of the enclave NAME: initializing (started, its health check\n"
	"does not answer yet), waiting secret keys (its configuration server waits for\n"
	"'mse run'), running (the app answers its health check with a 2xx: healthy\n"
	"means a 2xx), unhealthy (it answers, but not with a 2xx), on error (the\n"
	"process died: see 'mse logs NAME') or stopped. The probe is a GET on the health-check path\n"
	"through the certificate captured at spawn; nothing secret is sent.\n"
	"A coordinator's status lists the replicas it attested: which identity\n"
	"(MRENCLAVE, ISVSVN) each runs and whether the manifest in force still accepts it\n"
	"(a refused one is refused at its next attestation).\n"
	"\n"
	"Options:\n"
	"  --json      print one JSON object: {\"ok\", \"name\", \"status\", \"mode\", \"host\",\n"
	"              \"port\", \"pid\", \"uuid\", \"application\", \"expiration_date\",\n"
	"              \"detail\", \"workspace\", \"metrics\" (HOST:PORT of its Prometheus\n"
	"              metrics, or null)} (a coordinator: and \"replicas\", which\n"
	"              replica runs which identity); \"ok\" is false (with \"error\") when the\n"
	"              enclave is neither running nor waiting, as the exit status says\n"
	"  -h, --help  show this help\n"
	"\n"
	"Exit status: 0 if the enclave is running or waiting, 1 otherwise.\n";

int cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {0}};
	struct mse_instance inst;
	struct mse_err err = {0};
	enum mse_instance_status st;
	char detail[1100], expires[64];
	int json = 0, c;
	time_t exp;
	struct tm tm;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(usage, stdout);
			return MSE_EXIT_OK;
		}
		if (c == 'j')
			json = 1;
		else
			return cli_usage_error("status", "unknown option");
	}
	if (optind + 1 != argc)
		return cli_usage_error("status", "expected one instance NAME");
	if (mse_instance_load(&inst, argv[optind], &err) != 0)
		return json ? cli_json_fail(&err) : cli_fail("status", &err);
	st = mse_instance_probe(&inst, detail, sizeof(detail));
	exp = (time_t)inst.expiration;
	gmtime_r(&exp, &tm);
	strftime(expires, sizeof(expires), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (json) {
		int ok = st == MSE_STATUS_RUNNING || st == MSE_STATUS_WAITING;
		json_t *o = cli_json_new(ok);

		json_object_set_new(o, "name", json_string(inst.name));
		json_object_set_new(o, "status", json_string(mse_instance_status_name(st)));
		json_object_set_new(o, "mode", json_string(mse_instance_mode_name(inst.mode)));
		json_object_set_new(o, "host", json_string(inst.host));
		json_object_set_new(o, "port", json_integer(inst.port));
		json_object_set_new(o, "pid", json_integer((json_int_t)inst.pid));
		json_object_set_new(o, "uuid", json_string(inst.uuid));
		json_object_set_new(o, "application", json_string(inst.application));
		json_object_set_new(o, "expiration_date", json_string(expires));
		json_object_set_new(o, "detail", json_string(detail));
		json_object_set_new(o, "workspace", json_string(inst.workspace));
		json_object_set_new(o, "role", json_string(mse_instance_role(&inst)));
		json_object_set_new(o, "metrics",
				    inst.metrics[0] ? json_string(inst.metrics) : json_null());
		if (inst.coordinator[0])
			json_object_set_new(o, "coordinator", json_string(inst.coordinator));
		if (!strcmp(mse_instance_role(&inst), "coordinator") && st == MSE_STATUS_RUNNING) {
			json_t *l = coordinator_replicas(&inst);

			if (l)
				json_object_set_new(o, "replicas", l);
		}
		if (!ok) {
			mse_err_clear(&err);
			mse_err_step(&err, "status");
			mse_err_field(&err, "status", "%s (see 'mse logs %s')%s%s", inst.name, inst.name,
				      detail[0] ? ": " : "", detail);
			mse_err_mismatch(&err, "running or waiting secret keys",
					 mse_instance_status_name(st));
			json_object_set_new(o, "error", cli_json_error(&err));
		}
		cli_json_print(o);
	} else {
		printf("%s: %s%s%s\n", inst.name, mse_instance_status_name(st), detail[0] ? " — " : "",
		       detail);
		printf("  role          %s%s%s\n", mse_instance_role(&inst),
		       inst.coordinator[0] ? " of the coordinator at " : "", inst.coordinator);
		printf("  mode          %s%s\n", mse_instance_mode_name(inst.mode),
		       inst.mode == MSE_MODE_SIMULATION ? " (SIMULATION — not confidential)" : "");
		printf("  address       https://%s:%u (certificate name %s)\n", inst.host,
		       (unsigned)inst.port, inst.san);
		if (inst.metrics[0])
			printf("  metrics       http://%s/metrics\n", inst.metrics);
		printf("  application   %s\n", inst.application);
		printf("  uuid          %s\n", inst.uuid);
		printf("  pid           %d\n", (int)inst.pid);
		printf("  expires       %s\n", expires);
		printf("  state         %s\n", inst.dir);
		if (!strcmp(mse_instance_role(&inst), "coordinator") && st == MSE_STATUS_RUNNING) {
			json_t *l = coordinator_replicas(&inst), *e;
			size_t i;

			if (l && json_array_size(l))
				printf("  replicas      (instance, MRENCLAVE, ISVSVN, accepted by the "
				       "manifest in force)\n");
			json_array_foreach(l, i, e) {
				printf("    %-20s %s  isvsvn %lld  %s\n",
				       json_string_value(json_object_get(e, "instance")),
				       json_string_value(json_object_get(e, "mrenclave")),
				       (long long)json_integer_value(json_object_get(e, "isvsvn")),
				       json_is_true(json_object_get(e, "accepted_now"))
					       ? "accepted"
					       : "REFUSED at its next attestation");
			}
			json_decref(l);
		}
	}
	return st == MSE_STATUS_RUNNING || st == MSE_STATUS_WAITING ? MSE_EXIT_OK : MSE_EXIT_FAIL;
}
