/* SPDX-License-Identifier: Apache-2.0 */
/*
 * net/client: requests succeed only through the pinned certificate. The
 * server is Python's http.server + ssl, the certificates come from the
 * openssl command line: nothing here is produced by our own TLS code.
 */
#include "testutil.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "common/hex.h"
#include "net/client.h"

static char g_dir[64];
static uint16_t g_port;
static pid_t g_pid;

static void make_cert(const char *name, const char *cn)
{
	assert_int_equal(tu_sh("cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
			       "-nodes -keyout %s.key -out %s.pem -days 2 -subj '/CN=%s' "
			       "-addext 'subjectAltName=DNS:%s' -addext 'basicConstraints=critical,CA:TRUE' "
			       ">/dev/null 2>&1",
			       g_dir, name, name, cn, cn),
			 0);
}

static int setup(void **state)
{
	char portfile[128];
	FILE *f;

	(void)state;
	snprintf(g_dir, sizeof(g_dir), "%s", tu_tmpdir());
	make_cert("server", "enclave.test");
	make_cert("other", "enclave.test");
	snprintf(portfile, sizeof(portfile), "%s/port", g_dir);
	g_pid = fork();
	if (g_pid == 0) {
		char cert[128], key[128], script[512];
		const char *root = getenv("MSE_ROOT");

		snprintf(cert, sizeof(cert), "%s/server.pem", g_dir);
		snprintf(key, sizeof(key), "%s/server.key", g_dir);
		snprintf(script, sizeof(script), "%s/tests/helpers/tls_stub_server.py", root ? root : ".");
		execl(tu_python(), tu_python(), script, cert, key, portfile, "Waiting", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200 && access(portfile, F_OK) != 0; i++)
		usleep(50 * 1000);
	f = fopen(portfile, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%hu", &g_port) != 1)
		g_port = 0;
	fclose(f);
	return g_port ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	kill(g_pid, SIGTERM);
	tu_sh("sleep 0.1");
	tu_rmtree(g_dir);
	return 0;
}

static void pinned_get_and_post(void **state)
{
	char pem[128];
	struct mse_client_opts o = {.host = "127.0.0.1", .server_name = "enclave.test", .pin_pem = pem};
	struct mse_client_resp r;
	struct mse_err err = {0};
	uint8_t hash[32];
	char hex[65];

	(void)state;
	o.port = g_port;
	snprintf(pem, sizeof(pem), "%s/server.pem", g_dir);
	assert_int_equal(mse_client_request(&o, "GET", "/health", NULL, NULL, 0, &r, &err), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.mse_status, "Waiting");
	assert_string_equal(r.body, "hello");
	mse_client_resp_free(&r);
	assert_int_equal(mse_client_request(&o, "POST", "/", "application/json", "{\"a\":1}", 7, &r, &err), 0);
	SHA256((const uint8_t *)"{\"a\":1}", 7, hash);
	assert_int_equal(mse_hex_encode(hex, sizeof(hex), hash, 32), 0);
	assert_string_equal(r.body, hex);
	mse_client_resp_free(&r);
}

static void another_certificate_is_refused(void **state)
{
	char pem[128];
	struct mse_client_opts o = {.host = "127.0.0.1", .server_name = "enclave.test", .pin_pem = pem};
	struct mse_client_resp r;
	struct mse_err err = {0};

	(void)state;
	o.port = g_port;
	/* Same name, another key: a swapped server. */
	snprintf(pem, sizeof(pem), "%s/other.pem", g_dir);
	assert_int_equal(mse_client_request(&o, "POST", "/", "application/json", "{}", 2, &r, &err), -1);
	assert_non_null(strstr(err.msg, "not the pinned one"));
	assert_null(r.body);
	/* Right certificate, wrong name. */
	snprintf(pem, sizeof(pem), "%s/server.pem", g_dir);
	o.server_name = "someone.else";
	assert_int_equal(mse_client_request(&o, "GET", "/", NULL, NULL, 0, &r, &err), -1);
	/* No pin at all is refused before connecting. */
	o.server_name = "enclave.test";
	o.pin_pem = NULL;
	assert_int_equal(mse_client_request(&o, "GET", "/", NULL, NULL, 0, &r, &err), -1);
	assert_non_null(strstr(err.msg, "without a pinned certificate"));
}

static void connection_refused_is_reported(void **state)
{
	char pem[128];
	struct mse_client_opts o = {.host = "127.0.0.1", .port = 1, .pin_pem = pem};
	struct mse_client_resp r;
	struct mse_err err = {0};

	(void)state;
	snprintf(pem, sizeof(pem), "%s/server.pem", g_dir);
	assert_int_equal(mse_client_request(&o, "GET", "/", NULL, NULL, 0, &r, &err), -1);
	assert_non_null(strstr(err.msg, "127.0.0.1:1"));
}

/* A path or name that does not fit is refused, never sent truncated (another request). */
static void overlong_url_is_refused_not_truncated(void **state)
{
	char pem[128], path[1100], name[400];
	struct mse_client_opts o = {.host = "127.0.0.1", .port = g_port, .pin_pem = pem,
				    .server_name = "enclave.test"};
	struct mse_client_resp r;
	struct mse_err err = {0};

	(void)state;
	snprintf(pem, sizeof(pem), "%s/server.pem", g_dir);
	path[0] = '/';
	memset(path + 1, 'a', sizeof(path) - 2);
	path[sizeof(path) - 1] = 0;
	assert_int_equal(mse_client_request(&o, "GET", path, NULL, NULL, 0, &r, &err), -1);
	assert_non_null(strstr(err.msg, "URL too long"));
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = 0;
	o.server_name = name;
	assert_int_equal(mse_client_request(&o, "GET", "/", NULL, NULL, 0, &r, &err), -1);
	assert_non_null(strstr(err.msg, "name too long"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pinned_get_and_post),
		cmocka_unit_test(another_certificate_is_refused),
		cmocka_unit_test(connection_refused_is_reported),
		cmocka_unit_test(overlong_url_is_refused_not_truncated),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
