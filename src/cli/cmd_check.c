/* SPDX-License-Identifier: Apache-2.0 */
/* mse check — load an mse.toml and print the resolved settings or every error. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli/cli.h"
#include "config/project.h"
#include "config/toml.h"

static const char usage[] =
	"Usage: mse check [--config FILE] [--code DIR] [--now TIME] [--json]\n"
	"\n"
	"Load an app's mse.toml, check every setting, and print the resolved\n"
	"settings (absolute paths, module file, expiration as UTC) on stdout, or\n"
	"every error found on stderr, one per line, as\n"
	"  mse.toml:3:22: python_application: expected \"module:variable\" or ..., got \"app\"\n"
	"\n"
	"Options:\n"
	"  -c, --config FILE  the mse.toml to load (default: ./mse.toml)\n"
	"      --code DIR     the code directory, instead of [cloud] code or mse_src/\n"
	"                     next to the mse.toml (relative to the current directory)\n"
	"      --now TIME     the time expiration dates are checked against, as a TOML /\n"
	"                     RFC 3339 date-time (2024-01-01T00:00:00Z; no offset = local\n"
	"                     time) or a date (2024-01-01, local midnight); default: now\n"
	"      --json         print one JSON object on stdout: {\"ok\": true, \"config\",\n"
	"                     \"name\", \"python_application\", \"python_module\",\n"
	"                     \"python_variable\", \"python_call\", \"module_file\", ...,\n"
	"                     \"cloud\": {...}} or {\"ok\": false, \"error\": {...},\n"
	"                     \"errors\": [{\"file\", \"line\", \"column\", \"field\",\n"
	"                     \"expected\", \"actual\", \"message\"}, ...]}\n"
	"  -h, --help         this help\n"
	"\n"
	"Keys: name, python_application, healthcheck_endpoint, tests_cmd,\n"
	"tests_requirements; [cloud] code, tests, docker, project, hardware,\n"
	"expiration_date, secrets, dev_mode; [cloud.ssl] domain_name, private_key,\n"
	"certificate. See mse.toml(5): man mse.toml.\n"
	"\n"
	"Exit status: 0 the file loads, 1 it has errors, 2 usage error.\n";

/* --now: any TOML date/date-time; local forms are local time. */
static int parse_now(const char *s, time_t *out)
{
	struct mse_toml_datetime dt;
	enum mse_toml_type kind;
	struct tm tm;

	if (mse_toml_parse_datetime(s, strlen(s), &dt, &kind) != 0 || kind == MSE_TOML_TIME_LOCAL)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = dt.year - 1900;
	tm.tm_mon = dt.month - 1;
	tm.tm_mday = dt.day;
	tm.tm_hour = dt.hour;
	tm.tm_min = dt.minute;
	tm.tm_sec = dt.second;
	if (kind == MSE_TOML_DATETIME) {
		*out = timegm(&tm) - (time_t)dt.offset_minutes * 60;
	} else {
		tm.tm_isdst = -1;
		*out = mktime(&tm);
	}
	return 0;
}

static void json_time(json_t *o, const char *key, time_t t)
{
	char b[64];
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_set_new(o, key, json_string(b));
}

/* The resolved settings, as mse_project_print prints them in TOML. */
static int print_json(const struct mse_project *p)
{
	json_t *o = cli_json_new(1), *req = json_array();

	cli_json_str(o, "config", p->path);
	cli_json_str(o, "name", p->name);
	cli_json_str(o, "python_application", p->python_application);
	cli_json_str(o, "python_module", p->python_module);
	cli_json_str(o, "python_variable", p->python_variable);
	cli_json_str(o, "python_call", p->python_call);
	cli_json_str(o, "module_file", p->module_file);
	cli_json_str(o, "healthcheck_endpoint", p->healthcheck_endpoint);
	json_object_set_new(o, "tests_cmd", json_string(p->tests_cmd ? p->tests_cmd : ""));
	for (size_t i = 0; i < p->n_tests_requirements; i++)
		json_array_append_new(req, json_string(p->tests_requirements[i]));
	json_object_set_new(o, "tests_requirements", req);
	cli_json_str(o, "code_dir", p->code_dir);
	cli_json_str(o, "tests_dir", p->tests_dir);
	if (p->cloud) {
		json_t *c = json_object();

		cli_json_str(c, "code", p->cloud->code);
		cli_json_str(c, "tests", p->cloud->tests);
		cli_json_str(c, "docker", p->cloud->docker);
		cli_json_str(c, "project", p->cloud->project);
		cli_json_str(c, "hardware", p->cloud->hardware);
		if (p->cloud->has_expiration)
			json_time(c, "expiration_date", p->cloud->expiration);
		cli_json_str(c, "secrets", p->cloud->secrets);
		json_object_set_new(c, "dev_mode", json_boolean(p->cloud->dev_mode));
		if (p->cloud->ssl) {
			json_t *ssl = json_object();

			cli_json_str(ssl, "domain_name", p->cloud->ssl->domain_name);
			cli_json_str(ssl, "private_key", p->cloud->ssl->private_key);
			cli_json_str(ssl, "certificate", p->cloud->ssl->certificate);
			json_time(ssl, "certificate_not_after", p->cloud->ssl->cert_not_after);
			json_object_set_new(c, "ssl", ssl);
		}
		json_object_set_new(o, "cloud", c);
	}
	cli_json_print(o);
	return MSE_EXIT_OK;
}

int cmd_check(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"code", required_argument, NULL, 'C'},
		{"now", required_argument, NULL, 'n'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct mse_project_opts opts = {0};
	struct mse_project *p = NULL;
	struct mse_errlist errs;
	const char *config = "mse.toml";
	int c, rc, json = 0;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+c:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'C':
			opts.code_dir = optarg;
			break;
		case 'n':
			if (parse_now(optarg, &opts.now) != 0)
				return cli_usage_error("check", "--now: expected a date-time like 2024-01-01T00:00:00Z, got '%s'",
						       optarg);
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			fputs(usage, stdout);
			return MSE_EXIT_OK;
		default:
			return cli_usage_error("check", "unknown option or missing argument: '%s'",
					       argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error("check", "unexpected argument '%s'", argv[optind]);
	mse_errlist_init(&errs);
	if (mse_project_load(config, &opts, &p, &errs) != 0 && json) {
		struct mse_err e;

		mse_err_clear(&e);
		mse_err_set(&e, "%s: cannot load", config);
		rc = cli_json_fail_list(&errs, &e);
	} else if (!p) {
		mse_errlist_print(&errs, "mse check", stderr);
		fprintf(stderr, "mse check: %zu error%s in %s\n", mse_errlist_count(&errs),
			mse_errlist_count(&errs) == 1 ? "" : "s", config);
		rc = MSE_EXIT_FAIL;
	} else if (json) {
		rc = print_json(p);
	} else {
		mse_project_print(p, stdout);
		rc = MSE_EXIT_OK;
	}
	mse_project_free(p);
	mse_errlist_free(&errs);
	return rc;
}
