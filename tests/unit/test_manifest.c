/* SPDX-License-Identifier: Apache-2.0 */
/* node/manifest: the Gramine manifest template, checked by Python's tomllib. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/sim.h"
#include "operator/manifest.h"

/* Replaces every occurrence of `from` by `to` (what gramine-manifest's jinja does). */
static char *replace_all(const char *s, const char *from, const char *to)
{
	size_t fl = strlen(from), tl = strlen(to), n = 0;
	const char *p = s;
	char *out, *o;

	while ((p = strstr(p, from))) {
		n++;
		p += fl;
	}
	out = malloc(strlen(s) + n * (tl + 1) + 1);
	assert_non_null(out);
	for (o = out, p = s;;) {
		const char *q = strstr(p, from);

		if (!q) {
			strcpy(o, p);
			break;
		}
		memcpy(o, p, (size_t)(q - p));
		o += q - p;
		memcpy(o, to, tl);
		o += tl;
		p = q + fl;
	}
	return out;
}

static const struct mse_manifest_opts base = {
	.args = {.application = "app:app",
		 .uuid = "0b5d2f54-0f44-4a55-8c0b-6a5c4f1b2e3d",
		 .host = "0.0.0.0",
		 .port = 8443,
		 .subject = "CN=my \"app\",O=mse-c",
		 .san = "app.example",
		 .size_mb = 4096,
		 .expiration = 1900000000},
	.size_mb = 4096,
	.isvprodid = 7,
	.isvsvn = 3,
};

static void manifest_is_valid_toml_with_enclave_rules(void **state)
{
	struct mse_manifest_opts o = base;
	struct mse_err err = {0};
	const char *dir = tu_tmpdir();
	char *text = NULL, *r1, *r2, *r3, *r4, *r5, path[256];

	(void)state;
	assert_int_equal(mse_manifest_render(&o, &text, &err), 0);
	r1 = replace_all(text, "{{ gramine.libos }}", "/usr/lib/x86_64-linux-gnu/gramine/libsysdb.so");
	r2 = replace_all(r1, "{{ gramine.runtimedir() }}", "/usr/lib/x86_64-linux-gnu/gramine/runtime/glibc");
	r3 = replace_all(r2, "{{ arch_libdir }}", "/lib/x86_64-linux-gnu");
	r4 = replace_all(r3, "{{ python.stdlib }}", "/usr/lib/python3.11");
	r5 = replace_all(r4, "{{ python.distlib }}", "/usr/lib/python3/dist-packages");
	assert_null(strstr(r5, "{{"));
	snprintf(path, sizeof(path), "%s/app.manifest", dir);
	tu_write(path, r5, strlen(r5));
	/* An independent TOML parser checks every rule the issue names (Gramine 1.9 syntax). */
	assert_int_equal(tu_sh("%s - '%s' <<'EOF'\n"
			       "import sys, tomllib\n"
			       "m = tomllib.load(open(sys.argv[1], 'rb'))\n"
			       "assert m['libos']['entrypoint'] == '/mse-bootstrap'\n"
			       "assert m['loader']['entrypoint']['uri'].startswith('file:/usr/lib/')\n"
			       "assert m['sys']['disallow_subprocesses'] is True\n"
			       "assert m['sys']['enable_sigterm_injection'] is True\n"
			       "assert m['fs']['start_dir'] == '/mse-app'\n"
			       "sgx = m['sgx']\n"
			       "assert sgx['enclave_size'] == '4096M', sgx['enclave_size']\n"
			       "assert sgx['remote_attestation'] == 'dcap'\n"
			       "assert sgx['debug'] is False\n"
			       "assert sgx['isvprodid'] == 7 and sgx['isvsvn'] == 3\n"
			       "assert sgx['max_threads'] == 32, sgx['max_threads']\n"
			       "mounts = {x['path']: x for x in m['fs']['mounts']}\n"
			       "assert mounts['/tmp']['type'] == 'tmpfs'\n"
			       "for p, sub in (('/root', 'root'), ('/key', 'key'), ('/mse-app', 'mse-app')):\n"
			       "    assert mounts[p]['type'] == 'encrypted', p\n"
			       "    assert mounts[p]['key_name'] == '_sgx_mrenclave', p\n"
			       "    assert mounts[p]['uri'] == 'file:workspace/' + sub, mounts[p]\n"
			       "assert mounts['/app']['uri'] == 'file:app'\n"
			       "assert mounts['/mse-bootstrap']['uri'] == 'file:mse-bootstrap'\n"
			       "tf = sgx['trusted_files']\n"
			       "for f in ('file:mse-bootstrap', 'file:app/', 'file:/usr/lib/python3.11/',\n"
			       "          'file:/usr/lib/python3/dist-packages/'):\n"
			       "    assert f in tf, f\n"
			       "assert not any(f.startswith('file:workspace') for f in tf)\n"
			       "env = m['loader']['env']\n"
			       "assert env['HOME'] == '/root' and env['MODULE_PATH'] == '/mse-app'\n"
			       "assert env['SECRETS_PATH'] == '/root/.cache/mse/secrets.json'\n"
			       "assert env['SEALED_SECRETS_PATH'] == '/root/.cache/mse/sealed_secrets.json'\n"
			       "assert env['KEY_PATH'] == '/key' and env['TMP_PATH'] == '/tmp'\n"
			       "argv = m['loader']['argv']\n"
			       "assert argv == ['/mse-bootstrap', 'app:app', '--app-dir', '/app', '--id',\n"
			       "    '0b5d2f54-0f44-4a55-8c0b-6a5c4f1b2e3d', '--host', '0.0.0.0', '--port', '8443',\n"
			       "    '--subject', 'CN=my \"app\",O=mse-c', '--san', 'app.example', '--size', '4096',\n"
			       "    '--threads', '16', '--ratls', '1900000000'], argv\n"
			       "assert 'argv_src_file' not in m['loader']\n"
			       "EOF",
			       tu_python(), path),
			 0);
	free(text);
	free(r1);
	free(r2);
	free(r3);
	free(r4);
	free(r5);
	tu_rmtree(dir);
}

static void manifest_rejects_bad_options(void **state)
{
	struct mse_manifest_opts o = base;
	struct mse_err err = {0};
	char *text = NULL;

	(void)state;
	o.size_mb = 3000;
	assert_int_equal(mse_manifest_render(&o, &text, &err), -1);
	assert_null(text);
	assert_string_equal(err.field, "size");
	assert_non_null(strstr(err.msg, "3000"));
	o.size_mb = 128;
	assert_int_equal(mse_manifest_render(&o, &text, &err), -1);
	o.size_mb = 1024;
	o.args.san = "{{ evil }}";
	assert_int_equal(mse_manifest_render(&o, &text, &err), -1);
	assert_string_equal(err.field, "san");
	o.args.san = "x";
	o.args.subject = "CN={% evil %}";
	assert_int_equal(mse_manifest_render(&o, &text, &err), -1);
	assert_string_equal(err.field, "subject");
	o.args.subject = "CN=x";
	o.isvsvn = 70000;
	assert_int_equal(mse_manifest_render(&o, &text, &err), -1);
	assert_string_equal(err.field, "isvsvn");
	o.isvsvn = 1;
	o.debug = 1;
	assert_int_equal(mse_manifest_render(&o, &text, &err), 0);
	assert_non_null(strstr(text, "sgx.debug = true"));
	free(text);
	o.debug = 0;
	o.args.no_ssl = 1;
	assert_int_equal(mse_manifest_render(&o, &text, &err), 0);
	assert_non_null(strstr(text, "\"--no-ssl\"]"));
	assert_null(strstr(text, "--ratls"));
	free(text);
}

/* --threads-max is in the measured argv and sizes sgx.max_threads: the
 * workers' ceiling + the 2 I/O threads + the ASGI loop + 16 others. */
static void manifest_threads_max_sizes_max_threads(void **state)
{
	struct mse_manifest_opts o = base;
	struct mse_err err = {0};
	char *text = NULL;

	(void)state;
	o.args.threads_max = 100;
	assert_int_equal(mse_manifest_max_threads(&o.args), 100 + 2 + 1 + 16);
	assert_int_equal(mse_manifest_render(&o, &text, &err), 0);
	assert_non_null(strstr(text, "sgx.max_threads = 119\n"));
	assert_non_null(strstr(text, "\"--threads\", \"16\", \"--threads-max\", \"100\""));
	free(text);
	/* Not given (evidence of before the option): the manifest of before. */
	o.args.threads_max = 0;
	assert_int_equal(mse_manifest_max_threads(&o.args), 32);
	assert_int_equal(mse_manifest_render(&o, &text, &err), 0);
	assert_null(strstr(text, "--threads-max"));
	free(text);
}

/* --metrics: a stand-alone enclave's address is in the measured argv (and
 * one more thread); a replica's is its own, never measured: refused in its
 * argv, a passthrough variable instead. */
static void manifest_metrics_measured_alone_passthrough_for_replicas(void **state)
{
	struct mse_manifest_opts o = base, r;
	struct mse_err err = {0};
	char *text = NULL, *plain = NULL;

	(void)state;
	o.args.threads_max = 64;
	assert_int_equal(mse_manifest_render(&o, &plain, &err), 0);
	o.args.metrics = "127.0.0.1:9100";
	assert_int_equal(mse_manifest_max_threads(&o.args), 64 + 2 + 1 + 16 + 1);
	assert_int_equal(mse_manifest_render(&o, &text, &err), 0);
	assert_non_null(strstr(text, "\"--threads-max\", \"64\", \"--metrics\", \"127.0.0.1:9100\""));
	assert_non_null(strstr(text, "sgx.max_threads = 84\n"));
	assert_null(strstr(plain, "--metrics"));
	assert_non_null(strstr(plain, "sgx.max_threads = 83\n"));
	assert_null(strstr(plain, "MSE_REPLICA_METRICS"));
	free(text);
	free(plain);
	text = NULL;
	o.args.metrics = "{{ x }}:1";
	assert_int_equal(mse_manifest_render(&o, &text, &err), -1);
	assert_string_equal(err.field, "metrics");
	{
		struct mse_manifest_replica rr = {
		    .application = "app:app", .san = "app.example",
		    .coord_mre_hex = "ab" "ab" "ab" "ab" "ab" "ab" "ab" "ab" "ab" "ab" "ab" "ab" "ab"
				     "ab" "ab" "ab" "ab" "ab" "ab" "ab" "ab" "ab" "ab" "ab" "ab" "ab"
				     "ab" "ab" "ab" "ab" "ab" "ab"};

		mse_manifest_replica_opts(&r, &rr);
	}
	assert_int_equal(mse_manifest_render(&r, &text, &err), 0);
	assert_non_null(strstr(text, "loader.env.MSE_REPLICA_METRICS = { passthrough = true }\n"));
	assert_null(strstr(text, "--metrics"));
	free(text);
	text = NULL;
	r.args.metrics = "127.0.0.1:9100";
	assert_int_equal(mse_manifest_render(&r, &text, &err), -1);
	assert_null(text);
	assert_string_equal(err.field, "metrics");
}

/* The coordinator's manifest: the owner key is refused unless it is the one
 * spelling that is measured (lowercase hex, 64 digits); the key reaches argv. */
static void coordinator_manifest_checks_the_owner_key(void **state)
{
	struct mse_manifest_coord_opts o = {0};
	struct mse_err err = {0};
	char key[65], *text = NULL;

	(void)state;
	memset(key, 'a', 64);
	key[64] = '\0';
	o.owner_key = key;
	assert_int_equal(mse_manifest_render_coordinator(&o, &text, &err), 0);
	assert_non_null(strstr(text, "\"--owner-key\", \"aaaa"));
	assert_non_null(strstr(text, "key_name = \"_sgx_mrenclave\""));
	assert_non_null(strstr(text, "sgx.debug = false"));
	assert_null(strstr(text, "python"));
	free(text);
	text = NULL;
	key[3] = 'A';
	assert_int_equal(mse_manifest_render_coordinator(&o, &text, &err), -1);
	assert_null(text);
	assert_string_equal(err.field, "owner_key");
	key[3] = 'a';
	key[63] = '\0';
	assert_int_equal(mse_manifest_render_coordinator(&o, &text, &err), -1);
	key[63] = 'a';
	o.size_mb = 300;
	assert_int_equal(mse_manifest_render_coordinator(&o, &text, &err), -1);
	assert_string_equal(err.field, "size");
	o.size_mb = 0;
	o.isvsvn = 65536;
	assert_int_equal(mse_manifest_render_coordinator(&o, &text, &err), -1);
	assert_string_equal(err.field, "isvsvn");
}

/* --trust-sim-root: measured at the end of both argvs only when asked for, one
 * spelling (lowercase hex of whole bytes), decoded to the same bytes. */
static void trust_sim_root_is_measured_as_given(void **state)
{
	struct mse_manifest_coord_opts o = {0};
	struct mse_manifest_opts mo;
	struct mse_manifest_replica r = {.application = "app:app", .san = "localhost",
					 .coord_mre_hex = NULL, .sim_root_hex = "30820001ff"};
	struct mse_err err = {0};
	char key[65], cm[65], *text = NULL;
	uint8_t *der = NULL;
	size_t len = 0;

	(void)state;
	memset(key, 'b', 64);
	key[64] = '\0';
	memset(cm, 'c', 64);
	cm[64] = '\0';
	o.owner_key = key;
	assert_int_equal(mse_manifest_render_coordinator(&o, &text, &err), 0);
	assert_null(strstr(text, "--trust-sim-root"));
	free(text);
	o.sim_root_hex = "30820001ff";
	assert_int_equal(mse_manifest_render_coordinator(&o, &text, &err), 0);
	assert_non_null(strstr(text, "\"--threads\", \"4\", \"--trust-sim-root\", \"30820001ff\"]"));
	free(text);
	text = NULL;
	o.sim_root_hex = "30820001FF";
	assert_int_equal(mse_manifest_render_coordinator(&o, &text, &err), -1);
	assert_null(text);
	assert_string_equal(err.field, "--trust-sim-root");
	r.coord_mre_hex = cm;
	mse_manifest_replica_opts(&mo, &r);
	assert_int_equal(mo.isvprodid, 1);
	assert_int_equal(mse_manifest_render(&mo, &text, &err), 0);
	assert_non_null(strstr(text, "\"--trust-sim-root\", \"30820001ff\"]"));
	free(text);
	text = NULL;
	r.sim_root_hex = "308";
	r.isvprodid = 7;
	mse_manifest_replica_opts(&mo, &r);
	assert_int_equal(mo.isvprodid, 7);
	assert_int_equal(mse_manifest_render(&mo, &text, &err), -1);
	assert_null(text);
	assert_int_equal(mse_sim_root_from_hex("30820001ff", &der, &len, &err), 0);
	assert_int_equal(len, 5);
	assert_memory_equal(der, "\x30\x82\x00\x01\xff", 5);
	free(der);
	assert_int_equal(mse_sim_root_from_hex("", NULL, NULL, &err), -1);
	assert_int_equal(mse_sim_root_from_hex("3g", NULL, NULL, &err), -1);
	/* The error says what was wrong: the field, the form wanted, what was given. */
	assert_string_equal(err.field, "--trust-sim-root");
	assert_non_null(strstr(err.expected, "lowercase hex"));
	assert_string_equal(err.actual, "'g' (byte 0x67) at offset 1");
	assert_int_equal(mse_sim_root_from_hex("308", NULL, NULL, &err), -1);
	assert_string_equal(err.actual, "3 digits");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(manifest_is_valid_toml_with_enclave_rules),
		cmocka_unit_test(manifest_rejects_bad_options),
		cmocka_unit_test(manifest_threads_max_sizes_max_threads),
		cmocka_unit_test(manifest_metrics_measured_alone_passthrough_for_replicas),
		cmocka_unit_test(coordinator_manifest_checks_the_owner_key),
		cmocka_unit_test(trust_sim_root_is_measured_as_given),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
