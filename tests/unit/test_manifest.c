/* node/manifest: the Gramine manifest template, checked by Python's tomllib. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void manifest_is_valid_toml_with_enclave_rules(void **state)
{
	struct mse_manifest_opts o = {
		.bootstrap_path = "/opt/mse/bin/mse-bootstrap",
		.app_dir = "/var/lib/mse/my \"app\"",
		.workspace = "/var/lib/mse/ws",
		.size_mb = 4096,
	};
	struct mse_err err = {0};
	const char *dir = tu_tmpdir();
	char *text = NULL, *r1, *r2, *r3, path[256];

	(void)state;
	assert_int_equal(mse_manifest_render(&o, &text, &err), 0);
	r1 = replace_all(text, "{{ gramine.libos }}", "/usr/lib/x86_64-linux-gnu/gramine/libsysdb.so");
	r2 = replace_all(r1, "{{ gramine.runtimedir() }}", "/usr/lib/x86_64-linux-gnu/gramine/runtime/glibc");
	r3 = replace_all(r2, "{{ arch_libdir }}", "/lib/x86_64-linux-gnu");
	snprintf(path, sizeof(path), "%s/app.manifest", dir);
	tu_write(path, r3, strlen(r3));
	/* An independent TOML parser checks every rule the issue names. */
	assert_int_equal(tu_sh("%s - '%s' <<'EOF'\n"
			       "import sys, tomllib\n"
			       "m = tomllib.load(open(sys.argv[1], 'rb'))\n"
			       "assert m['libos']['entrypoint'] == '/opt/mse/bin/mse-bootstrap'\n"
			       "assert m['sys']['disallow_subprocesses'] is True\n"
			       "sgx = m['sgx']\n"
			       "assert sgx['enclave_size'] == '4096M', sgx['enclave_size']\n"
			       "assert sgx['remote_attestation'] == 'dcap'\n"
			       "assert sgx['debug'] is False\n"
			       "mounts = {x['path']: x for x in m['fs']['mounts']}\n"
			       "assert mounts['/tmp']['type'] == 'tmpfs'\n"
			       "for p, sub in (('/root', 'root'), ('/key', 'key'), ('/mse-app', 'mse-app')):\n"
			       "    assert mounts[p]['type'] == 'encrypted', p\n"
			       "    assert mounts[p]['key_name'] == '_sgx_mrenclave', p\n"
			       "    assert mounts[p]['uri'] == 'file:/var/lib/mse/ws/' + sub, mounts[p]\n"
			       "assert mounts['/app']['uri'] == 'file:/var/lib/mse/my \"app\"'\n"
			       "tf = sgx['trusted_files']\n"
			       "assert 'file:/opt/mse/bin/mse-bootstrap' in tf\n"
			       "assert 'file:/var/lib/mse/my \"app\"/' in tf\n"
			       "assert 'file:argv' in tf\n"
			       "env = m['loader']['env']\n"
			       "assert env['HOME'] == '/root' and env['MODULE_PATH'] == '/mse-app'\n"
			       "assert env['SECRETS_PATH'] == '/root/.cache/mse/secrets.json'\n"
			       "assert env['SEALED_SECRETS_PATH'] == '/root/.cache/mse/sealed_secrets.json'\n"
			       "assert env['KEY_PATH'] == '/key' and env['TMP_PATH'] == '/tmp'\n"
			       "assert m['loader']['argv_src_file'] == 'file:argv'\n"
			       "EOF",
			       tu_python(), path),
			 0);
	free(text);
	free(r1);
	free(r2);
	free(r3);
	tu_rmtree(dir);
}

static void manifest_rejects_bad_options(void **state)
{
	struct mse_manifest_opts o = {
		.bootstrap_path = "/usr/bin/mse-bootstrap",
		.app_dir = "/app",
		.workspace = "/ws",
		.size_mb = 3000,
	};
	struct mse_err err = {0};
	char *text = NULL;

	(void)state;
	assert_int_equal(mse_manifest_render(&o, &text, &err), -1);
	assert_null(text);
	assert_string_equal(err.field, "size");
	assert_non_null(strstr(err.msg, "3000"));
	o.size_mb = 128;
	assert_int_equal(mse_manifest_render(&o, &text, &err), -1);
	o.size_mb = 1024;
	o.app_dir = "relative/app";
	assert_int_equal(mse_manifest_render(&o, &text, &err), -1);
	assert_string_equal(err.field, "app_dir");
	o.app_dir = "/app/{{ evil }}";
	assert_int_equal(mse_manifest_render(&o, &text, &err), -1);
	o.app_dir = "/app";
	o.debug = 1;
	assert_int_equal(mse_manifest_render(&o, &text, &err), 0);
	assert_non_null(strstr(text, "sgx.debug = true"));
	free(text);
}

static void argv_file_is_nul_separated(void **state)
{
	const char *argv[] = {"mse-bootstrap", "app:app", "--san", "a b", ""};
	struct mse_err err = {0};
	uint8_t *out;
	size_t len;

	(void)state;
	assert_int_equal(mse_manifest_argv(argv, 5, &out, &len, &err), 0);
	assert_int_equal(len, sizeof("mse-bootstrap\0app:app\0--san\0a b\0") - 1 + 1);
	assert_memory_equal(out, "mse-bootstrap\0app:app\0--san\0a b\0\0", len);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(manifest_is_valid_toml_with_enclave_rules),
		cmocka_unit_test(manifest_rejects_bad_options),
		cmocka_unit_test(argv_file_is_nul_separated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
