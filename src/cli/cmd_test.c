/* mse test NAME — the app's own tests against its running enclave. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/file.h"
#include "config/toml.h"
#include "crypto/archive.h"
#include "node/instance.h"
#include "node/proc.h"

static const char usage[] =
	"Usage: mse test NAME [--ratls RATLS.pem]\n"
	"\n"
	"Run the app's tests (tests.tar of its package, with the package's tests_cmd,\n"
	"e.g. pytest) against the running enclave NAME. The tests get:\n"
	"  TEST_REMOTE_URL     https://<san>:<port>\n"
	"  REQUESTS_CA_BUNDLE  the pinned certificate (also TEST_CA_BUNDLE), so Python\n"
	"                      'requests' verifies the enclave's certificate\n"
	"\n"
	"Options:\n"
	"  --ratls FILE   the verified certificate (default: the one captured at spawn)\n"
	"  -h, --help     show this help\n"
	"\n"
	"Exit status: the tests' exit status.\n";

/* tests_cmd from the package's mse.toml (default "pytest"). */
static int read_tests_cmd(const char *toml_path, char *out, size_t size, struct mse_err *err)
{
	struct mse_toml *doc = NULL;
	uint8_t *text = NULL;
	size_t len;
	const char *s;
	int rc = -1;

	snprintf(out, size, "pytest");
	if (mse_file_read(toml_path, 1 << 20, &text, &len, err) != 0)
		return -1;
	if (mse_toml_parse((const char *)text, len, toml_path, &doc, err) != 0)
		goto out;
	if (mse_toml_get_string(mse_toml_table_get(mse_toml_root(doc), "tests_cmd"), &s, &len) == 0)
		snprintf(out, size, "%.*s", (int)len, s);
	rc = 0;
out:
	mse_toml_free(doc);
	free(text);
	return rc;
}

static void rmtmp(const char *dir)
{
	if (mse_file_remove_tree(dir, NULL) != 0)
		fprintf(stderr, "mse test: warning: cannot remove %s\n", dir);
}

int cmd_test(int argc, char **argv)
{
	static const struct option opts[] = {
		{"ratls", required_argument, NULL, 'r'}, {"help", no_argument, NULL, 'h'}, {0}};
	char ratls[PATH_MAX + 16], path[PATH_MAX + 32], cmd[1100], tmp[] = "/tmp/mse-test.XXXXXX";
	char url[400], e_url[500], e_ca[PATH_MAX + 64], e_ca2[PATH_MAX + 64];
	const char *ratls_opt = NULL;
	struct mse_instance inst;
	struct mse_err err = {0};
	int c, status = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(usage, stdout);
			return MSE_EXIT_OK;
		}
		if (c != 'r')
			return cli_usage_error("test", "unknown option");
		ratls_opt = optarg;
	}
	if (optind + 1 != argc)
		return cli_usage_error("test", "expected one instance NAME");
	if (mse_instance_load(&inst, argv[optind], &err) != 0)
		return cli_fail("test", &err);
	if (ratls_opt && !realpath(ratls_opt, ratls))
		return cli_failf("test", "%s: no such file", ratls_opt);
	if (!ratls_opt)
		mse_instance_ratls_path(&inst, ratls, sizeof(ratls));
	snprintf(path, sizeof(path), "%s/package/mse.toml", inst.dir);
	if (read_tests_cmd(path, cmd, sizeof(cmd), &err) != 0)
		return cli_fail("test", &err);
	if (!mkdtemp(tmp))
		return cli_failf("test", "cannot create a temporary directory");
	snprintf(path, sizeof(path), "%s/package/tests.tar", inst.dir);
	snprintf(e_url, sizeof(e_url), "%s/tests", tmp);
	if (mse_tar_extract(path, e_url, NULL, 0644, &err) != 0) {
		rmtmp(tmp);
		return cli_fail("test", &err);
	}
	snprintf(url, sizeof(url), "%s://%s:%u", strcmp(inst.cert_mode, "no-ssl") ? "https" : "http",
		 inst.san, (unsigned)inst.port);
	snprintf(e_url, sizeof(e_url), "TEST_REMOTE_URL=%s", url);
	snprintf(e_ca, sizeof(e_ca), "REQUESTS_CA_BUNDLE=%s", ratls);
	snprintf(e_ca2, sizeof(e_ca2), "TEST_CA_BUNDLE=%s", ratls);
	{
		char *env[] = {e_url, e_ca, e_ca2, "PYTHONDONTWRITEBYTECODE=1", NULL};
		char *sh[] = {"/bin/sh", "-c", cmd, NULL};

		snprintf(path, sizeof(path), "%s/tests", tmp);
		printf("running '%s' against %s\n", cmd, url);
		fflush(stdout);
		if (mse_proc_run(path, sh, env, &status, &err) != 0) {
			rmtmp(tmp);
			return cli_fail("test", &err);
		}
	}
	rmtmp(tmp);
	if (status != 0)
		return cli_failf("test", "the tests failed (exit status %d)", status);
	printf("%s: tests passed\n", inst.name);
	return MSE_EXIT_OK;
}
