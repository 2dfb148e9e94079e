/* SPDX-License-Identifier: Apache-2.0 */
#include "attest/cmanifest.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "attest/tcb.h"
#include "attest/verify.h"
#include "common/b64.h"
#include "common/hex.h"

void mse_cmanifest_free(struct mse_cmanifest *m)
{
	if (!m)
		return;
	if (m->sealed_code_key)
		sodium_memzero(m->sealed_code_key, m->sealed_code_key_len);
	free(m->sealed_code_key);
	free(m->sealed_secrets);
	free(m->sealed_to_seal);
	memset(m, 0, sizeof(*m));
}

int mse_cmanifest_is_ip(const char *name)
{
	unsigned char a[16];

	return inet_pton(AF_INET, name, a) == 1 || inet_pton(AF_INET6, name, a) == 1;
}

static int dns_ok(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > 253)
		return 0;
	if (mse_cmanifest_is_ip(s))
		return 1;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.' || (c == '*' && i == 0)))
			return 0;
	}
	return 1;
}

static int id_ok(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > 64)
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.' || c == '_'))
			return 0;
	}
	return 1;
}

/* Every key of o must be in keys (NULL-terminated). */
static int only_keys(json_t *o, const char *where, const char *const *keys, struct mse_err *err)
{
	const char *k;
	json_t *v;

	json_object_foreach(o, k, v) {
		const char *const *p;

		(void)v;
		for (p = keys; *p && strcmp(*p, k) != 0; p++)
			;
		if (!*p) {
			char f[160];

			snprintf(f, sizeof(f), "%s%s%.64s", where, *where ? "." : "", k);
			return mse_err_field(err, f, "unknown key");
		}
	}
	return 0;
}

static int get_hex32(json_t *o, const char *key, const char *field, uint8_t out[32],
		     struct mse_err *err)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_string(v) || json_string_length(v) != 64 ||
	    mse_hex_decode_exact(out, 32, json_string_value(v), 64) != 0)
		return mse_err_expect(err, field, "64 hex digits",
				      json_is_string(v) ? json_string_value(v) : "(not a string)");
	return 0;
}

static int get_u16(json_t *o, const char *key, const char *field, uint16_t *out,
		   struct mse_err *err)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 65535)
		return mse_err_expect(err, field, "an integer 0..65535",
				      json_is_integer(v) ? "out of range" : "(missing or not a number)");
	*out = (uint16_t)json_integer_value(v);
	return 0;
}

static int get_bool(json_t *o, const char *key, const char *field, int *out, struct mse_err *err)
{
	json_t *v = json_object_get(o, key);

	if (!v) {
		*out = 0;
		return 0;
	}
	if (!json_is_boolean(v))
		return mse_err_expect(err, field, "true or false", "another type");
	*out = json_is_true(v);
	return 0;
}

static int get_sealed(json_t *o, const char *key, const char *field, uint8_t **out, size_t *len,
		      struct mse_err *err)
{
	json_t *v = json_object_get(o, key);
	size_t n, cap;

	if (!v)
		return 0;
	if (!json_is_string(v))
		return mse_err_expect(err, field, "base64url text", "another type");
	n = json_string_length(v);
	cap = n / 4 * 3 + 3;
	if (!(*out = malloc(cap ? cap : 1)))
		return mse_err_set(err, "out of memory");
	if (mse_b64_decode(*out, cap, len, json_string_value(v), n, MSE_B64_URL_NOPAD) != 0 ||
	    *len <= 48) {
		free(*out);
		*out = NULL;
		return mse_err_expect(err, field, "a sealed box in base64url without padding",
				      "something else");
	}
	return 0;
}

int mse_cmanifest_parse(const uint8_t *json, size_t len, struct mse_cmanifest *m,
			struct mse_err *err)
{
	static const char *const top[] = {"version",    "deployment_id", "seq",  "app",
					  "dns_names",  "identities",    "tcb",  "plaincode",
					  "sealed",     "recovery_key", NULL};
	static const char *const tcbk[] = {"accepted_statuses", "accept_expired_collateral",
					   "allow_simulation", NULL};
	static const char *const sealk[] = {"code_key", "secrets", "secrets_to_seal", NULL};
	json_error_t je;
	json_t *root = NULL, *v, *e;
	size_t i;
	int rc = -1;

	memset(m, 0, sizeof(*m));
	mse_err_step(err, "manifest");
	if (len > MSE_CMANIFEST_MAX_SIZE)
		return mse_err_set(err, "manifest: %zu bytes, at most %u accepted", len,
				   MSE_CMANIFEST_MAX_SIZE);
	root = json_loadb((const char *)json, len, JSON_REJECT_DUPLICATES,
			  &je);
	if (!root) {
		mse_err_at(err, "manifest", je.line, je.column, "not JSON: %s", je.text);
		goto out;
	}
	if (!json_is_object(root)) {
		mse_err_expect(err, "manifest", "a JSON object", "another type");
		goto out;
	}
	if (only_keys(root, "", top, err) != 0)
		goto out;
	v = json_object_get(root, "version");
	if (!json_is_integer(v) || json_integer_value(v) != 1) {
		mse_err_expect(err, "version", "1", "another value");
		goto out;
	}
	v = json_object_get(root, "deployment_id");
	if (!json_is_string(v) || !id_ok(json_string_value(v))) {
		mse_err_expect(err, "deployment_id", "1..64 of A-Z a-z 0-9 . _ -",
			       json_is_string(v) ? json_string_value(v) : "(missing)");
		goto out;
	}
	snprintf(m->deployment_id, sizeof(m->deployment_id), "%s", json_string_value(v));
	v = json_object_get(root, "seq");
	if (!json_is_integer(v) || json_integer_value(v) < 1 ||
	    json_integer_value(v) > 9007199254740991LL) {
		mse_err_expect(err, "seq", "an integer 1..2^53-1", "another value");
		goto out;
	}
	m->seq = (uint64_t)json_integer_value(v);
	v = json_object_get(root, "app");
	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 255 ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		mse_err_expect(err, "app", "a name of 1..255 bytes", "another value");
		goto out;
	}
	m->app_len = json_string_length(v);
	memcpy(m->app, json_string_value(v), m->app_len);
	v = json_object_get(root, "dns_names");
	if (!json_is_array(v) || json_array_size(v) == 0 ||
	    json_array_size(v) > MSE_CMANIFEST_MAX_DNS) {
		mse_err_expect(err, "dns_names", "an array of 1..16 names", "another value");
		goto out;
	}
	json_array_foreach(v, i, e) {
		if (!json_is_string(e) || !dns_ok(json_string_value(e))) {
			char f[32];

			snprintf(f, sizeof(f), "dns_names[%zu]", i);
			mse_err_expect(err, f, "a DNS name or IP address",
				       json_is_string(e) ? json_string_value(e) : "another type");
			goto out;
		}
		snprintf(m->dns[i], sizeof(m->dns[i]), "%s", json_string_value(e));
	}
	m->n_dns = json_array_size(v);
	v = json_object_get(root, "identities");
	if (!json_is_array(v) || json_array_size(v) == 0 ||
	    json_array_size(v) > MSE_CMANIFEST_MAX_IDS) {
		mse_err_expect(err, "identities", "an array of 1..16 identities", "another value");
		goto out;
	}
	json_array_foreach(v, i, e) {
		static const char *const idk[] = {"mrenclave", "mrsigner", "isvprodid", "min_isvsvn",
						  NULL};
		struct mse_cmanifest_identity *id = &m->ids[i];
		char f[96], w[48];

		snprintf(w, sizeof(w), "identities[%zu]", i);
		if (!json_is_object(e)) {
			mse_err_expect(err, w, "an object", "another type");
			goto out;
		}
		if (only_keys(e, w, idk, err) != 0)
			goto out;
		if (json_object_get(e, "mrenclave")) {
			if (json_object_size(e) != 1) {
				mse_err_expect(err, w, "{\"mrenclave\": HEX} alone",
					       "more keys");
				goto out;
			}
			id->kind = MSE_CMANIFEST_MRENCLAVE;
			snprintf(f, sizeof(f), "%s.mrenclave", w);
			if (get_hex32(e, "mrenclave", f, id->mrenclave, err) != 0)
				goto out;
		} else {
			id->kind = MSE_CMANIFEST_MRSIGNER;
			snprintf(f, sizeof(f), "%s.mrsigner", w);
			if (get_hex32(e, "mrsigner", f, id->mrsigner, err) != 0)
				goto out;
			snprintf(f, sizeof(f), "%s.isvprodid", w);
			if (get_u16(e, "isvprodid", f, &id->isvprodid, err) != 0)
				goto out;
			snprintf(f, sizeof(f), "%s.min_isvsvn", w);
			if (get_u16(e, "min_isvsvn", f, &id->min_isvsvn, err) != 0)
				goto out;
		}
	}
	m->n_ids = json_array_size(v);
	v = json_object_get(root, "tcb");
	if (!json_is_object(v)) {
		mse_err_expect(err, "tcb", "an object", "(missing or another type)");
		goto out;
	}
	if (only_keys(v, "tcb", tcbk, err) != 0)
		goto out;
	e = json_object_get(v, "accepted_statuses");
	if (!json_is_array(e) || json_array_size(e) == 0 || json_array_size(e) > 8) {
		mse_err_expect(err, "tcb.accepted_statuses", "an array of 1..8 TCB statuses",
			       "another value");
		goto out;
	}
	{
		json_t *s;
		size_t k;

		json_array_foreach(e, k, s) {
			enum mse_tcb_status st;

			if (!json_is_string(s) ||
			    mse_tcb_status_parse(json_string_value(s), &st) != 0 ||
			    st == MSE_TCB_UNKNOWN) {
				mse_err_expect(err, "tcb.accepted_statuses",
					       "Intel's TCB status names (UpToDate, SWHardeningNeeded…)",
					       json_is_string(s) ? json_string_value(s) : "another type");
				goto out;
			}
			m->accept_status |= MSE_TCB_MASK(st);
		}
	}
	if (get_bool(v, "accept_expired_collateral", "tcb.accept_expired_collateral",
		     &m->accept_expired_collateral, err) != 0 ||
	    get_bool(v, "allow_simulation", "tcb.allow_simulation", &m->allow_simulation, err) != 0 ||
	    get_bool(root, "plaincode", "plaincode", &m->plaincode, err) != 0)
		goto out;
	v = json_object_get(root, "sealed");
	if (v) {
		if (!json_is_object(v)) {
			mse_err_expect(err, "sealed", "an object", "another type");
			goto out;
		}
		if (only_keys(v, "sealed", sealk, err) != 0 ||
		    get_sealed(v, "code_key", "sealed.code_key", &m->sealed_code_key,
			       &m->sealed_code_key_len, err) != 0 ||
		    get_sealed(v, "secrets", "sealed.secrets", &m->sealed_secrets,
			       &m->sealed_secrets_len, err) != 0 ||
		    get_sealed(v, "secrets_to_seal", "sealed.secrets_to_seal", &m->sealed_to_seal,
			       &m->sealed_to_seal_len, err) != 0)
			goto out;
	}
	v = json_object_get(root, "recovery_key");
	if (v) {
		if (!json_is_string(v) || json_string_length(v) != 64 ||
		    mse_hex_decode_exact(m->recovery_pk, 32, json_string_value(v), 64) != 0) {
			mse_err_expect(err, "recovery_key", "64 hex digits (X25519 public key)",
				       json_is_string(v) ? json_string_value(v) : "another type");
			goto out;
		}
		m->has_recovery_key = 1;
	}
	if (!m->plaincode && !m->sealed_code_key) {
		mse_err_expect(err, "sealed.code_key", "the sealed code key (or \"plaincode\": true)",
			       "(missing)");
		goto out;
	}
	rc = 0;
out:
	json_decref(root);
	if (rc != 0)
		mse_cmanifest_free(m);
	return rc;
}

int mse_cmanifest_check_sig(const uint8_t *json, size_t len,
			    const uint8_t sig[MSE_CMANIFEST_SIG_LEN],
			    const uint8_t owner_pk[MSE_CMANIFEST_OWNER_LEN], struct mse_err *err)
{
	if (crypto_sign_verify_detached(sig, json, len, owner_pk) != 0) {
		char k[65];

		if (mse_hex_encode(k, sizeof(k), owner_pk, 32) != 0)
			k[0] = '\0';
		mse_err_step(err, "signature");
		return mse_err_field(err, "signature",
				     "the manifest is not signed by the owner key %s this "
				     "coordinator was started with",
				     k);
	}
	return 0;
}

int mse_cmanifest_match(const struct mse_cmanifest *m, const uint8_t mrenclave[32],
			const uint8_t mrsigner[32], uint16_t isvprodid, uint16_t isvsvn,
			struct mse_err *err)
{
	char a[65], b[65];
	size_t i;

	const struct mse_cmanifest_identity *below = NULL;

	for (i = 0; i < m->n_ids; i++) {
		const struct mse_cmanifest_identity *id = &m->ids[i];

		if (id->kind == MSE_CMANIFEST_MRENCLAVE) {
			if (sodium_memcmp(id->mrenclave, mrenclave, 32) == 0)
				return (int)i;
		} else if (sodium_memcmp(id->mrsigner, mrsigner, 32) == 0 &&
			   id->isvprodid == isvprodid) {
			if (isvsvn >= id->min_isvsvn)
				return (int)i;
			below = id;
		}
	}
	if (mse_hex_encode(a, sizeof(a), mrenclave, 32) != 0)
		a[0] = '\0';
	if (mse_hex_encode(b, sizeof(b), mrsigner, 32) != 0)
		b[0] = '\0';
	if (below) {
		/* The signer and product are accepted, the version is not (any more). */
		char e[32], g[16];

		mse_err_step(err, "isvsvn");
		snprintf(e, sizeof(e), "at least %u (min_isvsvn)", below->min_isvsvn);
		snprintf(g, sizeof(g), "%u", isvsvn);
		return mse_err_expect(err, "isvsvn", e, g);
	}
	mse_err_step(err, "measurement");
	if (m->n_ids > 0 && m->ids[0].kind == MSE_CMANIFEST_MRENCLAVE) {
		char e[65];

		if (mse_hex_encode(e, sizeof(e), m->ids[0].mrenclave, 32) != 0)
			e[0] = '\0';
		return mse_err_field(err, "mrenclave",
				     "expected %s%s, got %s (mrsigner %s, isvprodid %u, isvsvn %u)",
				     e, m->n_ids > 1 ? " or another manifest identity" : "", a, b,
				     isvprodid, isvsvn);
	}
	return mse_err_field(err, "identity",
			     "no manifest identity accepts mrenclave %s, mrsigner %s, isvprodid %u, "
			     "isvsvn %u",
			     a, b, isvprodid, isvsvn);
}
