/* SPDX-License-Identifier: Apache-2.0 */
/* src/attest/pccs: the pure parts (no network; test_pccs.py runs the client). */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/pccs.h"
#include "attest/tcb.h"
#include "common/err.h"
#include "common/file.h"

static void parse_time_rfc3339_utc(void **state)
{
	time_t t;

	(void)state;
	assert_int_equal(mse_tcb_parse_time("1970-01-01T00:00:00Z", &t), 0);
	assert_int_equal(t, 0);
	/* date -u -d 2025-07-19T10:01:18Z +%s */
	assert_int_equal(mse_tcb_parse_time("2025-07-19T10:01:18Z", &t), 0);
	assert_int_equal(t, 1752919278);
	assert_int_equal(mse_tcb_parse_time("2025-07-19T10:01:18.123Z", &t), 0);
	assert_int_equal(t, 1752919278);
	assert_int_equal(mse_tcb_parse_time("2025-07-19T10:01:18+00:00", &t), 0);
	assert_int_equal(t, 1752919278);
	assert_int_equal(mse_tcb_parse_time("2025-07-19T10:01:18", &t), -1);
	assert_int_equal(mse_tcb_parse_time("2025-07-19T10:01:18+01:00", &t), -1);
	assert_int_equal(mse_tcb_parse_time("2025-13-19T10:01:18Z", &t), -1);
	assert_int_equal(mse_tcb_parse_time("2025-07-19 10:01:18Z", &t), -1);
	assert_int_equal(mse_tcb_parse_time("2025-07-19T10:01:18.Z", &t), -1);
	assert_int_equal(mse_tcb_parse_time("2025-07-19T10:01:18ZZ", &t), -1);
	assert_int_equal(mse_tcb_parse_time("", &t), -1);
	assert_int_equal(mse_tcb_parse_time(NULL, &t), -1);
}

static void url_decode_percent_only(void **state)
{
	char out[64];
	size_t n;

	(void)state;
	assert_int_equal(mse_pccs_url_decode("a%2Bb%2fc+d%0A", 14, out, sizeof(out), &n), 0);
	assert_string_equal(out, "a+b/c+d\n");
	assert_int_equal(n, 8);
	assert_int_equal(mse_pccs_url_decode("", 0, out, 1, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(mse_pccs_url_decode("%", 1, out, sizeof(out), &n), -1);
	assert_int_equal(mse_pccs_url_decode("ab%4", 4, out, sizeof(out), &n), -1);
	assert_int_equal(mse_pccs_url_decode("%g0", 3, out, sizeof(out), &n), -1);
	assert_int_equal(mse_pccs_url_decode("%00", 3, out, sizeof(out), &n), -1);
	/* Too small: no overflow, an error. */
	assert_int_equal(mse_pccs_url_decode("abcd", 4, out, 4, &n), -1);
	assert_int_equal(mse_pccs_url_decode("abcd", 4, out, 5, &n), 0);
}

static void crl_der_hex_pem_and_garbage(void **state)
{
	const char *path = tu_vector("dcap-quotes/sgx3-dcapqvl/pck_crl.der");
	const char *dir = tu_tmpdir();
	char pem_path[512], cmd_out[512];
	size_t len, hlen, plen, n;
	uint8_t *der = tu_read(path, &len), *out = malloc(len + 16), *pem;
	char *hex = malloc(2 * len + 8);
	struct mse_err err;

	(void)state;
	mse_err_clear(&err);
	assert_int_equal(mse_pccs_crl_to_der(der, len, out, len, &n, &err), 0);
	assert_int_equal(n, len);
	assert_memory_equal(out, der, len);
	/* Hex text as PCCS API 3.0 sends it, upper case with a trailing newline. */
	for (size_t i = 0; i < len; i++)
		snprintf(hex + 2 * i, 3, "%02X", der[i]);
	hlen = 2 * len;
	hex[hlen++] = '\n';
	memset(out, 0, len);
	assert_int_equal(mse_pccs_crl_to_der((uint8_t *)hex, hlen, out, len, &n, &err), 0);
	assert_int_equal(n, len);
	assert_memory_equal(out, der, len);
	/* PEM made by the openssl CLI. */
	snprintf(pem_path, sizeof(pem_path), "%s/crl.pem", dir);
	assert_int_equal(tu_sh("openssl crl -inform DER -in '%s' -out '%s'", path, pem_path), 0);
	pem = tu_read(pem_path, &plen);
	memset(out, 0, len);
	assert_int_equal(mse_pccs_crl_to_der(pem, plen, out, len + 16, &n, &err), 0);
	assert_int_equal(n, len);
	assert_memory_equal(out, der, len);
	/* Truncated DER, odd hex, text, empty, and a buffer too small. */
	assert_int_equal(mse_pccs_crl_to_der(der, len - 1, out, len, &n, &err), -1);
	assert_non_null(strstr(err.msg, "do not parse"));
	assert_int_equal(mse_pccs_crl_to_der((uint8_t *)hex, 2 * len - 1, out, len, &n, &err), -1);
	assert_int_equal(mse_pccs_crl_to_der((uint8_t *)"hello", 5, out, len, &n, &err), -1);
	assert_non_null(strstr(mse_err_str(&err, cmd_out, sizeof(cmd_out)), "68656c"));
	assert_int_equal(mse_pccs_crl_to_der(der, 0, out, len, &n, &err), -1);
	assert_int_equal(mse_pccs_crl_to_der(der, len, out, len - 1, &n, &err), -1);
	free(pem);
	free(hex);
	free(out);
	free(der);
	tu_rmtree(dir);
}

static void normalize_urls(void **state)
{
	char out[256];
	struct mse_err err;

	(void)state;
	mse_err_clear(&err);
	assert_int_equal(mse_pccs_normalize_url("https://pccs:8081", out, sizeof(out), &err), 0);
	assert_string_equal(out, "https://pccs:8081/sgx/certification/v4/");
	assert_int_equal(mse_pccs_normalize_url("https://pccs:8081//", out, sizeof(out), &err), 0);
	assert_string_equal(out, "https://pccs:8081/sgx/certification/v4/");
	assert_int_equal(
	    mse_pccs_normalize_url("http://h/sgx/certification/v3", out, sizeof(out), &err), 0);
	assert_string_equal(out, "http://h/sgx/certification/v3/");
	assert_int_equal(mse_pccs_normalize_url("https://api.trustedservices.intel.com/sgx/"
						"certification/v4/",
						out, sizeof(out), &err),
			 0);
	assert_string_equal(out, "https://api.trustedservices.intel.com/sgx/certification/v4/");
	assert_int_equal(mse_pccs_normalize_url("ftp://h/", out, sizeof(out), &err), -1);
	assert_string_equal(err.field, "pccs_url");
	assert_int_equal(mse_pccs_normalize_url("https://h/ x", out, sizeof(out), &err), -1);
	assert_int_equal(mse_pccs_normalize_url("https://h/?a=b", out, sizeof(out), &err), -1);
	assert_int_equal(mse_pccs_normalize_url("https://h", out, 20, &err), -1);
	assert_int_equal(mse_pccs_root_crl_url("https://pccs:8081/sgx/certification/v4/", out,
					       sizeof(out), &err),
			 0);
	assert_string_equal(out, "https://pccs:8081/sgx/certification/v4/rootcacrl");
	assert_int_equal(mse_pccs_root_crl_url("https://api.trustedservices.intel.com/sgx/"
					       "certification/v4/",
					       out, sizeof(out), &err),
			 0);
	/* The CRL distribution point in Intel's own PCK Platform CA certificate. */
	assert_int_equal(tu_sh("openssl x509 -in '%s' -noout -text | grep -qF '%s'",
			       tu_vector("dcap-quotes/sgx3-automata/pck_crl_issuer_chain.pem"),
			       out),
			 0);
}

static void qcnl_sample_and_comments(void **state)
{
	const char *dir = tu_tmpdir();
	char path[512], out[256];
	struct mse_err err;
	static const char tricky[] =
	    "/* block\n comment */ {\n"
	    "  \"note\": \"a // not a comment /* nor this */\", // trailing\n"
	    "  \"pccs_url\": \"http://127.0.0.1:8081\" /* inline */\n}\n";
	static const char bad[] = "{\n  // c\n  \"pccs_url\": \"https://x/\",\n}\n";

	(void)state;
	mse_err_clear(&err);
	assert_int_equal(mse_pccs_qcnl_url(tu_vector("mse-cli-config/sgx_default_qcnl.conf"), out,
					   sizeof(out), &err),
			 0);
	assert_string_equal(out, "https://example.cosmian.com/sgx/certification/v4/");
	snprintf(path, sizeof(path), "%s/q.conf", dir);
	tu_write(path, tricky, strlen(tricky));
	assert_int_equal(mse_pccs_qcnl_url(path, out, sizeof(out), &err), 0);
	assert_string_equal(out, "http://127.0.0.1:8081/sgx/certification/v4/");
	tu_write(path, bad, strlen(bad));
	assert_int_equal(mse_pccs_qcnl_url(path, out, sizeof(out), &err), -1);
	/* The trailing comma is on line 3; comments did not shift the position. */
	assert_int_equal(err.line, 4);
	assert_string_equal(err.file, path);
	mse_err_clear(&err);
	tu_write(path, "{\"use_secure_cert\": true}", 25);
	assert_int_equal(mse_pccs_qcnl_url(path, out, sizeof(out), &err), -1);
	assert_string_equal(err.field, "pccs_url");
	mse_err_clear(&err);
	snprintf(path, sizeof(path), "%s/none.conf", dir);
	assert_int_equal(mse_pccs_qcnl_url(path, out, sizeof(out), &err), -1);
	tu_rmtree(dir);
}

static void cache_paths(void **state)
{
	struct mse_pccs_opts o;
	char out[512], *saved_xdg = getenv("XDG_CACHE_HOME"), *saved_home = getenv("HOME");
	struct mse_err err;

	(void)state;
	saved_xdg = saved_xdg ? strdup(saved_xdg) : NULL;
	saved_home = saved_home ? strdup(saved_home) : NULL;
	mse_err_clear(&err);
	mse_pccs_opts_init(&o);
	setenv("XDG_CACHE_HOME", "/x/cache", 1);
	setenv("HOME", "/home/u", 1);
	assert_int_equal(
	    mse_pccs_cache_path(&o, "00A067110000", "Processor", out, sizeof(out), &err), 0);
	assert_string_equal(out, "/x/cache/mse/collateral/00a067110000-processor");
	setenv("XDG_CACHE_HOME", "relative", 1);
	assert_int_equal(
	    mse_pccs_cache_path(&o, "00606a000000", "platform", out, sizeof(out), &err), 0);
	assert_string_equal(out, "/home/u/.cache/mse/collateral/00606a000000-platform");
	unsetenv("XDG_CACHE_HOME");
	o.cache_dir = "/c";
	assert_int_equal(
	    mse_pccs_cache_path(&o, "00606a000000", "platform", out, sizeof(out), &err), 0);
	assert_string_equal(out, "/c/00606a000000-platform");
	assert_int_equal(mse_pccs_cache_path(&o, "00606a00000", "platform", out, sizeof(out), &err),
			 -1);
	assert_string_equal(err.field, "fmspc");
	assert_int_equal(
	    mse_pccs_cache_path(&o, "../../etc/pw", "platform", out, sizeof(out), &err), -1);
	assert_int_equal(mse_pccs_cache_path(&o, "00606a000000", "../x", out, sizeof(out), &err),
			 -1);
	assert_string_equal(err.field, "ca");
	if (saved_xdg)
		setenv("XDG_CACHE_HOME", saved_xdg, 1);
	if (saved_home)
		setenv("HOME", saved_home, 1);
	free(saved_xdg);
	free(saved_home);
}

static void next_update_of_vector_sets(void **state)
{
	time_t t, want;
	char which[32], msg[2048];
	struct mse_err err;

	(void)state;
	mse_err_clear(&err);
	/* Dates read off the files (openssl crl -nextupdate, the JSON text). */
	assert_int_equal(mse_pccs_dir_next_update(tu_vector("dcap-quotes/sgx3-dcapqvl"), &t, which,
						  sizeof(which), &err),
			 0);
	assert_int_equal(mse_tcb_parse_time("2025-07-19T10:01:18Z", &want), 0);
	assert_int_equal(t, want);
	assert_string_equal(which, "qe_identity.json");
	assert_int_equal(mse_pccs_dir_next_update(tu_vector("dcap-quotes/tdx4-gotdx-notsupported"),
						  &t, which, sizeof(which), &err),
			 0);
	/* QE identity 2023-07-08T07:24:59Z, three minutes before the PCK CRL's 07:27:52. */
	assert_int_equal(mse_tcb_parse_time("2023-07-08T07:24:59Z", &want), 0);
	assert_int_equal(t, want);
	assert_string_equal(which, "qe_identity.json");
	/* sgx3-oasis has no CRLs: the directory is incomplete. */
	assert_int_equal(mse_pccs_dir_next_update(tu_vector("dcap-quotes/sgx3-oasis"), &t, which,
						  sizeof(which), &err),
			 -1);
	assert_non_null(strstr(mse_err_str(&err, msg, sizeof(msg)), "pck_crl.der"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(parse_time_rfc3339_utc),
	    cmocka_unit_test(url_decode_percent_only),
	    cmocka_unit_test(crl_der_hex_pem_and_garbage),
	    cmocka_unit_test(normalize_urls),
	    cmocka_unit_test(qcnl_sample_and_comments),
	    cmocka_unit_test(cache_paths),
	    cmocka_unit_test(next_update_of_vector_sets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
