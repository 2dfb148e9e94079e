/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The coordinator's wire formats: the key derivations against known answers
 * computed by python3-cryptography (tests/vectors/ckeys.json, regenerated and
 * compared by tests/e2e/test_coordinator_keys.py), the manifest parser and
 * signature, the identity match, and the API's manifest rules (owner key,
 * deployment_id, seq) without sockets.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "attest/cmanifest.h"
#include "attest/simmeasure.h"
#include "attest/x509w.h"
#include "common/file.h"
#include "common/hex.h"
#include "coordinator/coordinator.h"
#include "crypto/ckeys.h"
#include "crypto/seal.h"

static json_t *load_vectors(void)
{
	const char *root = getenv("MSE_ROOT");
	char path[4096];
	json_t *j;

	snprintf(path, sizeof(path), "%s/tests/vectors/ckeys.json", root ? root : ".");
	j = json_load_file(path, 0, NULL);
	assert_non_null(j);
	return j;
}

static void hex_in(const char *h, uint8_t *out, size_t n)
{
	assert_int_equal(strlen(h), 2 * n);
	assert_int_equal(mse_hex_decode_exact(out, n, h, 2 * n), 0);
}

static void test_app_key_kat(void **state)
{
	json_t *j = load_vectors(), *vs = json_object_get(j, "vectors"), *v;
	size_t i, checked = 0;

	(void)state;
	json_array_foreach(vs, i, v) {
		uint8_t root[32], want[32], got[32];
		const char *name;
		json_t *k;

		hex_in(json_string_value(json_object_get(v, "root")), root, 32);
		json_object_foreach(json_object_get(v, "app_keys"), name, k) {
			hex_in(json_string_value(k), want, 32);
			assert_int_equal(mse_ckeys_app_key(root, name, strlen(name), got, NULL), 0);
			assert_memory_equal(got, want, 32);
			checked++;
		}
	}
	assert_true(checked >= 16);
	json_decref(j);
}

static void test_app_key_bounds_and_labels(void **state)
{
	uint8_t root[32] = {1}, a[32], b[32];
	char big[257];

	(void)state;
	memset(big, 'x', sizeof(big));
	assert_int_equal(mse_ckeys_app_key(root, big, 256, a, NULL), -1);
	assert_int_equal(mse_ckeys_app_key(root, "", 0, a, NULL), -1);
	/* The length prefix separates "ab" from "a" followed by anything. */
	assert_int_equal(mse_ckeys_app_key(root, "ab", 2, a, NULL), 0);
	assert_int_equal(mse_ckeys_app_key(root, "a", 1, b, NULL), 0);
	assert_memory_not_equal(a, b, 32);
}

static void test_ca_key_kat(void **state)
{
	json_t *j = load_vectors(), *vs = json_object_get(j, "vectors"), *v;
	size_t i;

	(void)state;
	json_array_foreach(vs, i, v) {
		uint8_t root[32], d_want[32], d[32], pub_want[65], pub[64];
		EVP_PKEY *k;

		hex_in(json_string_value(json_object_get(v, "root")), root, 32);
		hex_in(json_string_value(json_object_get(v, "ca_scalar")), d_want, 32);
		hex_in(json_string_value(json_object_get(v, "ca_public")), pub_want, 65);
		assert_int_equal(mse_ckeys_ca_scalar(root, d, NULL), 0);
		assert_memory_equal(d, d_want, 32);
		k = mse_ckeys_ca_key(root, NULL);
		assert_non_null(k);
		assert_int_equal(mse_x509w_p256_pub(k, pub, NULL), 0);
		assert_memory_equal(pub, pub_want + 1, 64);
		EVP_PKEY_free(k);
	}
	json_decref(j);
}

/* ---- the manifest ---------------------------------------------------------- */

static const char good[] =
	"{\"version\":1,\"deployment_id\":\"dep-1\",\"seq\":3,\"app\":\"app1\","
	"\"dns_names\":[\"localhost\",\"127.0.0.1\"],"
	"\"identities\":[{\"mrenclave\":\"%s\"},"
	"{\"mrsigner\":\"%s\",\"isvprodid\":7,\"min_isvsvn\":2}],"
	"\"tcb\":{\"accepted_statuses\":[\"UpToDate\",\"SWHardeningNeeded\"],"
	"\"allow_simulation\":true},\"plaincode\":true}";

static char *manifest_text(const char *mre, const char *mrs)
{
	char *t = malloc(4096);

	assert_non_null(t);
	snprintf(t, 4096, good, mre, mrs);
	return t;
}

static void test_manifest_parse(void **state)
{
	char mre[65], mrs[65], *t;
	struct mse_cmanifest m;
	struct mse_err e;

	(void)state;
	memset(mre, 'a', 64);
	memset(mrs, 'b', 64);
	mre[64] = mrs[64] = 0;
	t = manifest_text(mre, mrs);
	assert_int_equal(mse_cmanifest_parse((uint8_t *)t, strlen(t), &m, &e), 0);
	assert_string_equal(m.deployment_id, "dep-1");
	assert_int_equal(m.seq, 3);
	assert_int_equal(m.n_dns, 2);
	assert_int_equal(m.n_ids, 2);
	assert_int_equal(m.ids[1].isvprodid, 7);
	assert_true(m.allow_simulation);
	assert_true(m.plaincode);
	{
		uint8_t a[32], b[32];

		memset(a, 0xaa, 32);
		memset(b, 0xbb, 32);
		assert_int_equal(mse_cmanifest_match(&m, a, b, 0, 0, NULL), 0);
		memset(a, 0x11, 32);
		assert_int_equal(mse_cmanifest_match(&m, a, b, 7, 2, NULL), 1);
		mse_err_clear(&e);
		assert_int_equal(mse_cmanifest_match(&m, a, b, 7, 1, &e), -1);
		/* The signer and product are accepted, the version is below the floor. */
		assert_string_equal(e.step, "isvsvn");
		assert_string_equal(e.field, "isvsvn");
		assert_non_null(strstr(e.expected, "at least 2"));
		assert_string_equal(e.actual, "1");
		mse_err_clear(&e);
		memset(b, 0xcc, 32); /* another signer: a plain identity mismatch */
		assert_int_equal(mse_cmanifest_match(&m, a, b, 7, 1, &e), -1);
		assert_string_equal(e.step, "measurement");
		memset(b, 0xbb, 32);
		assert_int_equal(mse_cmanifest_match(&m, a, b, 8, 9, NULL), -1);
	}
	mse_cmanifest_free(&m);
	free(t);
}

/* Each bad manifest names its field. */
static void test_manifest_errors(void **state)
{
	static const struct {
		const char *from, *to, *field;
	} cases[] = {
		{"\"seq\":3", "\"seq\":0", "seq"},
		{"\"seq\":3", "\"seq\":\"3\"", "seq"},
		{"\"dep-1\"", "\"dep 1\"", "deployment_id"},
		{"\"version\":1", "\"version\":2", "version"},
		{"\"localhost\"", "\"local host\"", "dns_names[0]"},
		{"\"UpToDate\"", "\"Fine\"", "tcb.accepted_statuses"},
		{"\"plaincode\":true", "\"plaincode\":false", "sealed.code_key"},
		{"\"app\":\"app1\"", "\"app\":\"\"", "app"},
		{"\"allow_simulation\":true", "\"allow_simulation\":true,\"x\":1", "tcb.x"},
		{"\"isvprodid\":7", "\"isvprodid\":70000", "identities[1].isvprodid"},
	};
	char mre[65], mrs[65];
	size_t i;

	(void)state;
	memset(mre, 'a', 64);
	memset(mrs, 'b', 64);
	mre[64] = mrs[64] = 0;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *t = manifest_text(mre, mrs), *p = strstr(t, cases[i].from), buf[4096];
		struct mse_cmanifest m;
		struct mse_err e;

		assert_non_null(p);
		snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(p - t), t, cases[i].to,
			 p + strlen(cases[i].from));
		mse_err_clear(&e);
		assert_int_equal(mse_cmanifest_parse((uint8_t *)buf, strlen(buf), &m, &e), -1);
		if (strcmp(e.field, cases[i].field) != 0)
			fail_msg("case %zu: field \"%s\", expected \"%s\" (%s)", i, e.field,
				 cases[i].field, e.msg);
		free(t);
	}
	{
		/* Duplicate keys are refused, not last-wins. */
		const char *dup = "{\"version\":1,\"version\":1}";
		struct mse_cmanifest m;

		assert_int_equal(mse_cmanifest_parse((const uint8_t *)dup, strlen(dup), &m, NULL), -1);
	}
}

static void test_manifest_signature(void **state)
{
	uint8_t pk[32], sk[64], pk2[32], sk2[64], sig[64];
	char mre[65], mrs[65], *t;
	struct mse_err e;

	(void)state;
	crypto_sign_keypair(pk, sk);
	crypto_sign_keypair(pk2, sk2);
	memset(mre, 'a', 64);
	memset(mrs, 'b', 64);
	mre[64] = mrs[64] = 0;
	t = manifest_text(mre, mrs);
	crypto_sign_detached(sig, NULL, (uint8_t *)t, strlen(t), sk);
	assert_int_equal(mse_cmanifest_check_sig((uint8_t *)t, strlen(t), sig, pk, NULL), 0);
	mse_err_clear(&e);
	assert_int_equal(mse_cmanifest_check_sig((uint8_t *)t, strlen(t), sig, pk2, &e), -1);
	assert_string_equal(e.step, "signature");
	t[10] ^= 1; /* one bit of the exact bytes */
	assert_int_equal(mse_cmanifest_check_sig((uint8_t *)t, strlen(t), sig, pk, NULL), -1);
	free(t);
}

/* ---- the API's manifest rules ---------------------------------------------- */

static void test_coord_manifest_rules(void **state)
{
	const char *dir = tu_tmpdir();
	struct mse_coord_config c;
	struct mse_coord *co = NULL;
	uint8_t sk[64], osk[64], sig[64];
	char mre[65], mrs[65], *t, *t2, state_path[4200];
	int st;
	struct mse_err e;
	struct stat sb;

	(void)state;
	memset(&c, 0, sizeof(c));
	crypto_sign_keypair(c.owner_pk, sk);
	{
		uint8_t opk[32];

		crypto_sign_keypair(opk, osk);
	}
	crypto_box_keypair(c.enclave_pk, c.enclave_sk);
	randombytes_buf(c.state_key, 32);
	c.state_dir = dir;
	assert_int_equal(mse_coord_new(&c, &co, NULL), 0);
	memset(mre, 'a', 64);
	memset(mrs, 'b', 64);
	mre[64] = mrs[64] = 0;
	t = manifest_text(mre, mrs);
	/* Another owner's signature: 403, nothing stored. */
	crypto_sign_detached(sig, NULL, (uint8_t *)t, strlen(t), osk);
	mse_err_clear(&e);
	assert_int_equal(mse_coord_set_manifest(co, (uint8_t *)t, strlen(t), sig, &st, &e), -1);
	assert_int_equal(st, 403);
	assert_string_equal(e.step, "signature");
	snprintf(state_path, sizeof(state_path), "%s/%s", dir, MSE_COORD_STATE_FILE);
	assert_int_not_equal(stat(state_path, &sb), 0);
	/* The owner's: accepted, state sealed 0600. */
	crypto_sign_detached(sig, NULL, (uint8_t *)t, strlen(t), sk);
	assert_int_equal(mse_coord_set_manifest(co, (uint8_t *)t, strlen(t), sig, &st, &e), 0);
	assert_int_equal(st, 200);
	assert_int_equal(stat(state_path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	/* Same seq again: 409. */
	assert_int_equal(mse_coord_set_manifest(co, (uint8_t *)t, strlen(t), sig, &st, &e), -1);
	assert_int_equal(st, 409);
	assert_string_equal(e.field, "seq");
	/* Another deployment: 409. */
	t2 = strdup(t);
	memcpy(strstr(t2, "dep-1"), "dep-2", 5);
	crypto_sign_detached(sig, NULL, (uint8_t *)t2, strlen(t2), sk);
	assert_int_equal(mse_coord_set_manifest(co, (uint8_t *)t2, strlen(t2), sig, &st, &e), -1);
	assert_int_equal(st, 409);
	assert_string_equal(e.field, "deployment_id");
	mse_coord_free(co);
	/* Restart: the state opens with the same key, not with another. */
	assert_int_equal(mse_coord_new(&c, &co, NULL), 0);
	mse_coord_free(co);
	c.state_key[0] ^= 1;
	mse_err_clear(&e);
	assert_int_equal(mse_coord_new(&c, &co, &e), -1);
	assert_non_null(strstr(e.msg, "does not open"));
	free(t);
	free(t2);
	tu_rmtree(dir);
}

/*
 * Recovery: a coordinator whose state does not open starts in recovery-needed
 * (allow_recovery) and accepts only the owner-signed blob sealed to its key;
 * then it has the same root (app key) and CA certificate. The blob comes from
 * mse_coord_recovery_bin, opened here with crypto_box_seal_open (libsodium
 * directly, not mse_seal).
 */
static void test_coord_recovery(void **state)
{
	const char *d1 = tu_tmpdir(), *d2 = tu_tmpdir();
	struct mse_coord_config c1, c2;
	struct mse_coord *a = NULL, *b = NULL;
	uint8_t sk[64], osk[64], opk[32], sig[64], rpk[32], rsk[32], *rb = NULL, *blob, *body = NULL;
	char mre[65], mrs[65], *t, *ma, *mb, text[8192], path[4200];
	size_t rl = 0, bl = 0;
	struct mse_err e;
	int st;
	FILE *f;

	(void)state;
	memset(&c1, 0, sizeof(c1));
	crypto_sign_keypair(c1.owner_pk, sk);
	crypto_sign_keypair(opk, osk);
	crypto_box_keypair(c1.enclave_pk, c1.enclave_sk);
	crypto_box_keypair(rpk, rsk);
	randombytes_buf(c1.state_key, 32);
	c1.state_dir = d1;
	assert_int_equal(mse_coord_new(&c1, &a, NULL), 0);
	memset(mre, 'a', 64);
	memset(mrs, 'b', 64);
	mre[64] = mrs[64] = 0;
	t = manifest_text(mre, mrs);
	/* With a recovery key. */
	{
		char hex[65];

		assert_int_equal(mse_hex_encode(hex, sizeof(hex), rpk, 32), 0);
		snprintf(text, sizeof(text), "%.*s,\"recovery_key\":\"%s\"}", (int)strlen(t) - 1, t,
			 hex);
	}
	crypto_sign_detached(sig, NULL, (uint8_t *)text, strlen(text), sk);
	mse_err_clear(&e);
	assert_int_equal(mse_coord_set_manifest(a, (uint8_t *)text, strlen(text), sig, &st, &e), 0);
	assert_int_equal(mse_coord_recovery_bin(a, &rb, &rl, &e), 0);
	/* Not in recovery-needed: refused, 409. */
	crypto_sign_detached(sig, NULL, rb, rl, sk);
	assert_int_equal(mse_coord_recover(a, rb, rl, sig, &st, &e), -1);
	assert_int_equal(st, 409);
	blob = malloc(rl);
	assert_non_null(blob);
	assert_int_equal(crypto_box_seal_open(blob, rb, rl, rpk, rsk), 0);
	bl = rl - crypto_box_SEALBYTES;
	assert_non_null(memmem(blob, bl, "root_secret", 11));
	/* "Another machine": the same owner, another enclave and state key. */
	c2 = c1;
	crypto_box_keypair(c2.enclave_pk, c2.enclave_sk);
	randombytes_buf(c2.state_key, 32);
	c2.state_dir = d2;
	c2.allow_recovery = 1;
	snprintf(path, sizeof(path), "%s/%s", d1, MSE_COORD_STATE_FILE);
	{
		uint8_t *s1 = NULL;
		size_t n = 0;
		char p2[4200];

		assert_int_equal(mse_file_read(path, 1 << 24, &s1, &n, NULL), 0);
		snprintf(p2, sizeof(p2), "%s/%s", d2, MSE_COORD_STATE_FILE);
		assert_non_null(f = fopen(p2, "wb"));
		assert_int_equal(fwrite(s1, 1, n, f), n);
		fclose(f);
		free(s1);
	}
	/* Without allow_recovery that state stops it; with it, recovery is needed. */
	c2.allow_recovery = 0;
	assert_int_equal(mse_coord_new(&c2, &b, NULL), -1);
	c2.allow_recovery = 1;
	assert_int_equal(mse_coord_new(&c2, &b, NULL), 0);
	assert_int_equal(mse_coord_recovery_needed(b), 1);
	assert_int_equal(mse_coord_set_manifest(b, (uint8_t *)text, strlen(text), sig, &st, &e), -1);
	assert_int_equal(mse_seal_seal(c2.enclave_pk, blob, bl, &body, &rl, &e), 0);
	/* Signed by another key: 403, still recovery-needed. */
	crypto_sign_detached(sig, NULL, body, rl, osk);
	mse_err_clear(&e);
	assert_int_equal(mse_coord_recover(b, body, rl, sig, &st, &e), -1);
	assert_int_equal(st, 403);
	assert_string_equal(e.step, "signature");
	assert_int_equal(mse_coord_recovery_needed(b), 1);
	/* Sealed to another key (the first coordinator's): 400. */
	{
		uint8_t *other = NULL;
		size_t ol = 0;

		assert_int_equal(mse_seal_seal(c1.enclave_pk, blob, bl, &other, &ol, &e), 0);
		crypto_sign_detached(sig, NULL, other, ol, sk);
		assert_int_equal(mse_coord_recover(b, other, ol, sig, &st, &e), -1);
		assert_int_equal(st, 400);
		free(other);
	}
	/* Secrets that are not the JSON text of an object: 400 (an escaped NUL is
	 * refused before, by jansson: the fuzz seed blob-nul-secrets.json). */
	{
		static const char from[] = "\"secrets\":null", to[] = "\"secrets\":\"[1]\"";
		char *bad = malloc(bl + sizeof(to)), *at;
		uint8_t *sb = NULL;
		size_t sl2 = 0, head;

		assert_non_null(bad);
		memcpy(bad, blob, bl);
		bad[bl] = '\0';
		assert_non_null(at = strstr(bad, from));
		head = (size_t)(at - bad);
		memcpy(bad + head, to, sizeof(to) - 1);
		memcpy(bad + head + sizeof(to) - 1, (const char *)blob + head + sizeof(from) - 1,
		       bl - head - (sizeof(from) - 1));
		sl2 = bl - (sizeof(from) - 1) + (sizeof(to) - 1);
		assert_int_equal(mse_seal_seal(c2.enclave_pk, (uint8_t *)bad, sl2, &sb, &sl2, &e), 0);
		crypto_sign_detached(sig, NULL, sb, sl2, sk);
		mse_err_clear(&e);
		assert_int_equal(mse_coord_recover(b, sb, sl2, sig, &st, &e), -1);
		assert_int_equal(st, 400);
		assert_string_equal(e.field, "secrets");
		assert_int_equal(mse_coord_recovery_needed(b), 1);
		free(sb);
		free(bad);
	}
	/* The owner's: recovered, the same CA and app key. */
	crypto_sign_detached(sig, NULL, body, rl, sk);
	mse_err_clear(&e);
	assert_int_equal(mse_coord_recover(b, body, rl, sig, &st, &e), 0);
	assert_int_equal(st, 200);
	assert_int_equal(mse_coord_recovery_needed(b), 0);
	ma = mse_coord_metrics(a);
	mb = mse_coord_metrics(b);
	assert_non_null(strstr(mb, "mse_coordinator_recoveries_total 1\n"));
	assert_non_null(strstr(mb, "mse_coordinator_manifest_seq 3\n"));
	free(ma);
	free(mb);
	{
		uint8_t *r2 = NULL, *b2;
		size_t l2 = 0;

		/* Its recovery blob now holds the same root and CA as the first one's. */
		assert_int_equal(mse_coord_recovery_bin(b, &r2, &l2, &e), 0);
		b2 = malloc(l2);
		assert_non_null(b2);
		assert_int_equal(crypto_box_seal_open(b2, r2, l2, rpk, rsk), 0);
		assert_int_equal(l2 - crypto_box_SEALBYTES, bl);
		assert_memory_equal(b2, blob, bl);
		free(b2);
		free(r2);
	}
	/* Restarted: its own state opens now. */
	mse_coord_free(b);
	assert_int_equal(mse_coord_new(&c2, &b, NULL), 0);
	assert_int_equal(mse_coord_recovery_needed(b), 0);
	mse_coord_free(b);
	mse_coord_free(a);
	free(body);
	free(blob);
	free(rb);
	free(t);
	tu_rmtree(d1);
	tu_rmtree(d2);
}

static void test_replica_request_parse(void **state)
{
	char inst[65];

	(void)state;
	assert_int_equal(mse_coord_parse_replica_req((const uint8_t *)"", 0, inst, NULL), 0);
	assert_int_equal(mse_coord_parse_replica_req((const uint8_t *)"{\"instance\":\"r-1\"}", 18,
						     inst, NULL), 0);
	assert_string_equal(inst, "r-1");
	assert_int_equal(mse_coord_parse_replica_req((const uint8_t *)"{\"instance\":\"a b\"}", 18,
						     inst, NULL), -1);
	assert_int_equal(mse_coord_parse_replica_req((const uint8_t *)"{\"x\":1}", 7, inst, NULL), -1);
	assert_int_equal(mse_coord_parse_replica_req((const uint8_t *)"[]", 2, inst, NULL), -1);
}

/* Measurement v2: per-replica values are out, the coordinator is in. */
static void test_measurement_v2(void **state)
{
	uint8_t exe[32] = {1}, owner[32] = {2}, owner2[32] = {3}, a[32], b[32];

	(void)state;
	mse_simmeasure_coordinator(exe, owner, a);
	mse_simmeasure_coordinator(exe, owner2, b);
	assert_memory_not_equal(a, b, 32);
	{
		/* The documented encoding, spelled out. */
		uint8_t want[32], buf[512];
		size_t n = 0;
		const char *fields[] = {"role", "coordinator", "owner_key",
					"0200000000000000000000000000000000000000000000000000000000000000"};
		crypto_hash_sha256_state h;

		memcpy(buf, "mse-c/sim-mrenclave/v2", 22);
		n = 22;
		memcpy(buf + n, exe, 32);
		n += 32;
		buf[n++] = 2, buf[n++] = 0, buf[n++] = 0, buf[n++] = 0;
		for (int i = 0; i < 4; i++) {
			uint32_t l = (uint32_t)strlen(fields[i]);

			buf[n++] = (uint8_t)l, buf[n++] = 0, buf[n++] = 0, buf[n++] = 0;
			memcpy(buf + n, fields[i], l);
			n += l;
		}
		memset(buf + n, 0, 32);
		n += 32;
		crypto_hash_sha256_init(&h);
		crypto_hash_sha256_update(&h, buf, n);
		crypto_hash_sha256_final(&h, want);
		assert_memory_equal(a, want, 32);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_app_key_kat),
		cmocka_unit_test(test_app_key_bounds_and_labels),
		cmocka_unit_test(test_ca_key_kat),
		cmocka_unit_test(test_manifest_parse),
		cmocka_unit_test(test_manifest_errors),
		cmocka_unit_test(test_manifest_signature),
		cmocka_unit_test(test_coord_manifest_rules),
		cmocka_unit_test(test_coord_recovery),
		cmocka_unit_test(test_replica_request_parse),
		cmocka_unit_test(test_measurement_v2),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
