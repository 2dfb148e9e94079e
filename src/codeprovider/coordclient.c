/* SPDX-License-Identifier: Apache-2.0 */
#include "codeprovider/coordclient.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "attest/cmanifest.h"
#include "attest/pccs.h"
#include "attest/collateral.h"
#include "attest/quote.h"
#include "attest/ratls.h"
#include "attest/sim.h"
#include "attest/simmeasure.h"
#include "attest/verify.h"
#include "common/b64.h"
#include "common/file.h"
#include "common/hex.h"
#include "codeprovider/packager.h"
#include "crypto/package.h"
#include "crypto/seal.h"
#include "net/client.h"
#include "operator/gramine.h"
#include "operator/instance.h"
#include "operator/manifest.h"
#include "operator/proc.h"

static int read_hex32_file(const char *path, uint8_t out[32], struct mse_err *err)
{
	uint8_t *p = NULL;
	size_t n = 0;
	int rc;

	if (mse_file_read(path, 256, &p, &n, err) != 0)
		return -1;
	while (n && (p[n - 1] == '\n' || p[n - 1] == '\r' || p[n - 1] == ' '))
		n--;
	rc = n == 64 && mse_hex_decode_exact(out, 32, (const char *)p, 64) == 0 ? 0 : -1;
	mse_file_free_secret(p, n);
	if (rc != 0) {
		mse_err_file(err, path);
		return mse_err_expect(err, "key", "64 hex digits (Ed25519)", "another content");
	}
	return 0;
}

int mse_coordclient_keygen(const char *prefix, struct mse_err *err)
{
	uint8_t pk[32], sk[64], seed[32];
	char path[PATH_MAX], hex[66];
	int rc = -1;

	randombytes_buf(seed, sizeof(seed));
	crypto_sign_seed_keypair(pk, sk, seed);
	if (snprintf(path, sizeof(path), "%s.key", prefix) >= (int)sizeof(path))
		goto out;
	if (mse_hex_encode(hex, sizeof(hex), seed, 32) != 0)
		goto out;
	strcat(hex, "\n");
	if (mse_file_write_new(path, hex, 65, MSE_MODE_SECRET, err) != 0)
		goto out;
	snprintf(path, sizeof(path), "%s.pub", prefix);
	if (mse_hex_encode(hex, sizeof(hex), pk, 32) != 0)
		goto out;
	strcat(hex, "\n");
	rc = mse_file_write_atomic(path, hex, 65, MSE_MODE_PUBLIC, err);
out:
	sodium_memzero(seed, sizeof(seed));
	sodium_memzero(sk, sizeof(sk));
	sodium_memzero(hex, sizeof(hex));
	return rc;
}

int mse_coordclient_load_pub(const char *arg, uint8_t pk[32], struct mse_err *err)
{
	if (strlen(arg) == 64 && mse_hex_decode_exact(pk, 32, arg, 64) == 0)
		return 0;
	return read_hex32_file(arg, pk, err);
}

int mse_coordclient_load_priv(const char *path, uint8_t sk[64], struct mse_err *err)
{
	uint8_t seed[32], pk[32];

	if (read_hex32_file(path, seed, err) != 0)
		return -1;
	crypto_sign_seed_keypair(pk, sk, seed);
	sodium_memzero(seed, sizeof(seed));
	return 0;
}

int mse_coordclient_measure(const char *binary, const uint8_t pk[32], uint8_t mre[32],
			    struct mse_err *err)
{
	uint8_t exe[32];

	if (mse_simmeasure_file_sha256(binary, exe, err) != 0)
		return -1;
	mse_simmeasure_coordinator(exe, pk, mre);
	return 0;
}

int mse_coordclient_measure_sgx(const char *binary, const uint8_t pk[32], const char *sim_root_hex,
				uint8_t mre[32], char *gramine, size_t gramine_size,
				struct mse_err *err)
{
	struct mse_manifest_coord_opts cmo;
	struct mse_gramine_version gv;
	char pkhex[65];

	memset(&cmo, 0, sizeof(cmo));
	if (mse_hex_encode(pkhex, sizeof(pkhex), pk, 32) != 0)
		return mse_err_set(err, "cannot encode the owner key");
	cmo.owner_key = pkhex;
	cmo.sim_root_hex = sim_root_hex;
	if (!mse_gramine_available())
		return mse_err_set(err, "the coordinator's SGX MRENCLAVE is recomputed with "
					"gramine-manifest and gramine-sgx-sign: Gramine is not on PATH "
					"(install the release the operator runs)");
	if (mse_gramine_version(&gv, err) != 0 ||
	    mse_gramine_measure_coordinator(binary, &cmo, mre, err) != 0)
		return -1;
	if (gramine)
		snprintf(gramine, gramine_size, "%s", gv.text);
	return 0;
}

int mse_coordclient_sim_root_hex(char **hex, struct mse_err *err)
{
	char dir[PATH_MAX], path[PATH_MAX + 16];
	uint8_t *der = NULL;
	size_t len = 0;

	*hex = NULL;
	if (mse_sim_dir(dir, sizeof(dir), err) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/root_ca.der", dir);
	if (mse_file_read(path, MSE_SIM_ROOT_HEX_MAX / 2, &der, &len, err) != 0)
		return -1;
	if (!(*hex = malloc(2 * len + 1)) || mse_hex_encode(*hex, 2 * len + 1, der, len) != 0) {
		free(*hex);
		*hex = NULL;
		free(der);
		return mse_err_set(err, "out of memory");
	}
	free(der);
	return 0;
}

static int seal_file_b64(const uint8_t pk[32], const uint8_t *data, size_t len, char **out,
			 struct mse_err *err)
{
	uint8_t *s = NULL;
	size_t sl = 0, cap;

	if (mse_seal_seal(pk, data, len, &s, &sl, err) != 0)
		return -1;
	cap = mse_b64_encoded_size(sl, MSE_B64_URL_NOPAD);
	if (!(*out = malloc(cap)) || mse_b64_encode(*out, cap, s, sl, MSE_B64_URL_NOPAD) != 0) {
		free(s);
		return mse_err_set(err, "out of memory");
	}
	free(s);
	return 0;
}

static int seal_json_file(const uint8_t pk[32], const char *path, const char *field, char **out,
			  struct mse_err *err)
{
	uint8_t *p = NULL;
	size_t n = 0;
	json_t *j;
	int rc;

	if (mse_file_read(path, MSE_SEAL_MAX_INPUT, &p, &n, err) != 0)
		return -1;
	j = json_loadb((const char *)p, n, 0, NULL);
	if (!j || !json_is_object(j)) {
		json_decref(j);
		mse_file_free_secret(p, n);
		mse_err_file(err, path);
		return mse_err_expect(err, field, "a JSON object", "something else");
	}
	json_decref(j);
	rc = seal_file_b64(pk, p, n, out, err);
	mse_file_free_secret(p, n);
	return rc;
}

int mse_coordclient_manifest(const struct mse_coordclient_manifest_opts *o, char **json,
			     size_t *len, struct mse_err *err)
{
	char tmp[] = "/tmp/mse-cmanifest.XXXXXX", pkgdir[64], app_tar[96], boot[PATH_MAX],
	     hex[65], did[40], pkg_path[PATH_MAX], key_path[PATH_MAX];
	const char *package = o->package, *code_key = o->code_key;
	struct mse_package_info info;
	struct mse_quote q;
	uint8_t *cert = NULL, coord_pk[32], coord_mre[32], boot_sha[32], mre[32], *key = NULL;
	size_t cl = 0, kl = 0, i;
	char *s_code = NULL, *s_sec = NULL, *s_seal = NULL;
	struct mse_ratls r;
	json_t *j = NULL, *ids, *dns, *st, *sealed;
	unsigned mask = 0;
	int rc = -1, have_tmp = 0;

	memset(&r, 0, sizeof(r));
	*json = NULL;
	if (!o->package) {
		/* From mse.toml: package the project now, with a new code key. */
		struct mse_packager_opts po;
		struct mse_packager_result pr;
		char toml[PATH_MAX + 16], out[PATH_MAX + 64];

		if (!o->project_dir)
			return mse_err_set(err, "a package (--package) or a project (--project) is needed");
		memset(&po, 0, sizeof(po));
		snprintf(toml, sizeof(toml), "%s/mse.toml", o->project_dir);
		snprintf(out, sizeof(out), "%s/.mse/package.%lld", o->project_dir, (long long)time(NULL));
		po.config = toml;
		po.output_dir = out;
		if (mse_packager_build(&po, &pr, NULL, err) != 0)
			return -1;
		snprintf(pkg_path, sizeof(pkg_path), "%s", pr.pkg.path);
		snprintf(key_path, sizeof(key_path), "%s", pr.key_path);
		if (o->made_package)
			snprintf(o->made_package, PATH_MAX, "%s", pr.pkg.path);
		package = pkg_path;
		code_key = key_path;
	}
	/* The coordinator: its X25519 key and MRENCLAVE from its verified certificate. */
	if (mse_file_read(o->coordinator_cert, MSE_RATLS_MAX_SIZE, &cert, &cl, err) != 0 ||
	    mse_ratls_seal_pk_mem(cert, cl, coord_pk, err) != 0 ||
	    mse_ratls_parse(&r, cert, cl, err) != 0)
		goto out;
	if (mse_quote_parse(&q, r.quote, r.quote_len, 0, err) != 0)
		goto out;
	memcpy(coord_mre, q.body.mr_enclave, 32);
	if (!mkdtemp(tmp)) {
		mse_err_set(err, "cannot create a temporary directory");
		goto out;
	}
	have_tmp = 1;
	snprintf(pkgdir, sizeof(pkgdir), "%s/pkg", tmp);
	if (mse_package_extract(package, pkgdir, &info, err) != 0)
		goto out;
	snprintf(app_tar, sizeof(app_tar), "%s/app.tar", pkgdir);
	ids = json_array();
	if (!o->no_sim_identity) {
		if (o->bootstrap)
			snprintf(boot, sizeof(boot), "%s", o->bootstrap);
		else if (mse_instance_installed_bootstrap(boot, sizeof(boot), err) != 0)
			goto out_ids;
		if (mse_simmeasure_file_sha256(boot, boot_sha, err) != 0 ||
		    mse_simmeasure_replica(boot_sha, info.python_application, o->size_mb, coord_mre,
					   app_tar, mre, err) != 0)
			goto out_ids;
		if (mse_hex_encode(hex, sizeof(hex), mre, 32) != 0)
			goto out_ids;
		json_array_append_new(ids, json_pack("{s:s}", "mrenclave", hex));
	}
	if (o->sgx_identity) {
		/* The SGX replicas: the same manifest the operator signs, measured here
		 * with a throw-away key (never taken from an enclave). */
		struct mse_manifest_opts rmo;
		char cm[65];

		if (o->bootstrap)
			snprintf(boot, sizeof(boot), "%s", o->bootstrap);
		else if (mse_instance_installed_bootstrap(boot, sizeof(boot), err) != 0)
			goto out_ids;
		if (!mse_gramine_available()) {
			mse_err_set(err, "--sgx: the replicas' MRENCLAVE is recomputed with "
					 "gramine-manifest and gramine-sgx-sign, and Gramine is not on PATH");
			goto out_ids;
		}
		if (mse_hex_encode(cm, sizeof(cm), coord_mre, 32) != 0)
			goto out_ids;
		{
			struct mse_manifest_replica rr = {
			    .application = info.python_application,
			    .san = o->n_dns ? o->dns[0] : "localhost", .coord_mre_hex = cm,
			    .sim_root_hex = o->sgx_sim_root_hex, .size_mb = (uint32_t)o->size_mb,
			    .isvprodid = o->sgx_isvprodid, .isvsvn = o->sgx_isvsvn};

			mse_manifest_replica_opts(&rmo, &rr);
		}
		if (mse_gramine_measure(boot, app_tar, &rmo, mre, err) != 0 ||
		    mse_hex_encode(hex, sizeof(hex), mre, 32) != 0)
			goto out_ids;
		json_array_append_new(ids, json_pack("{s:s}", "mrenclave", hex));
	}
	for (i = 0; i < o->n_mrenclaves; i++) {
		if (mse_hex_encode(hex, sizeof(hex), o->mrenclaves[i], 32) != 0)
			goto out_ids;
		json_array_append_new(ids, json_pack("{s:s}", "mrenclave", hex));
	}
	if (o->signer_key) {
		uint8_t *pem = NULL, mrs[32];
		size_t pl = 0;

		/* A private key: proof that the owner, not the operator, holds it. */
		if (mse_file_read(o->signer_key, 1 << 16, &pem, &pl, err) != 0)
			goto out_ids;
		if (!strstr((const char *)pem, "PRIVATE KEY")) {
			mse_file_free_secret(pem, pl);
			mse_err_file(err, o->signer_key);
			mse_err_expect(err, "signer key", "the PRIVATE RSA key the owner signs with",
				       "a public key");
			goto out_ids;
		}
		rc = mse_sim_mrsigner_of_pem((const char *)pem, pl, mrs, err);
		mse_file_free_secret(pem, pl);
		if (rc != 0 || mse_hex_encode(hex, sizeof(hex), mrs, 32) != 0) {
			rc = -1;
			goto out_ids;
		}
		rc = -1;
		json_array_append_new(ids, json_pack("{s:s,s:i,s:i}", "mrsigner", hex, "isvprodid",
						     (int)o->isvprodid, "min_isvsvn",
						     (int)o->min_isvsvn));
	}
	if (json_array_size(ids) == 0) {
		mse_err_set(err, "no identity: give --mrenclave, --signer-key, or allow the "
				 "simulation identity");
		goto out_ids;
	}
	dns = json_array();
	for (i = 0; i < o->n_dns; i++)
		json_array_append_new(dns, json_string(o->dns[i]));
	if (o->n_dns == 0)
		json_array_append_new(dns, json_string("localhost"));
	if (mse_verify_parse_status_list(o->accept_status ? o->accept_status : "UpToDate", &mask,
					 err) != 0) {
		json_decref(dns);
		goto out_ids;
	}
	st = json_array();
	for (i = 0; i < MSE_TCB_STATUS_COUNT; i++)
		if (mask & MSE_TCB_MASK(i))
			json_array_append_new(st, json_string(mse_tcb_status_name((enum mse_tcb_status)i)));
	/* Secrets, sealed to the coordinator. */
	if (!code_key) {
		mse_err_set(err, "--code-key is needed with --package");
		json_decref(dns);
		json_decref(st);
		goto out_ids;
	}
	if (mse_file_read(code_key, 64, &key, &kl, err) != 0) {
		json_decref(dns);
		json_decref(st);
		goto out_ids;
	}
	if (kl != 32) {
		mse_err_file(err, code_key);
		mse_err_expect(err, "code key", "32 bytes", "another size");
		json_decref(dns);
		json_decref(st);
		goto out_ids;
	}
	if (seal_file_b64(coord_pk, key, kl, &s_code, err) != 0 ||
	    (o->secrets && seal_json_file(coord_pk, o->secrets, "secrets", &s_sec, err) != 0) ||
	    (o->secrets_to_seal &&
	     seal_json_file(coord_pk, o->secrets_to_seal, "secrets_to_seal", &s_seal, err) != 0)) {
		json_decref(dns);
		json_decref(st);
		goto out_ids;
	}
	sealed = json_pack("{s:s}", "code_key", s_code);
	if (s_sec)
		json_object_set_new(sealed, "secrets", json_string(s_sec));
	if (s_seal)
		json_object_set_new(sealed, "secrets_to_seal", json_string(s_seal));
	if (o->deployment_id) {
		snprintf(did, sizeof(did), "%s", o->deployment_id);
	} else {
		uint8_t rnd[16];

		randombytes_buf(rnd, sizeof(rnd));
		if (mse_hex_encode(did, sizeof(did), rnd, sizeof(rnd)) != 0)
			did[0] = '\0';
	}
	j = json_pack("{s:i,s:s,s:I,s:s,s:o,s:o,s:{s:o,s:b,s:b},s:b,s:o}", "version", 1,
		      "deployment_id", did, "seq", (json_int_t)(o->seq ? o->seq : 1), "app",
		      o->app ? o->app : info.name, "dns_names", dns, "identities", ids, "tcb",
		      "accepted_statuses", st, "accept_expired_collateral",
		      o->accept_expired_collateral, "allow_simulation", o->allow_simulation,
		      "plaincode", 0, "sealed", sealed);
	ids = NULL;
	if (j && o->recovery_key) {
		struct mse_seal_keypair kp;
		char rk[65];

		if (mse_seal_load_key(o->recovery_key, MSE_SEAL_KEY_PUBLIC, &kp, err) != 0 ||
		    mse_seal_check_public_key(kp.pk, err) != 0) {
			mse_seal_keypair_wipe(&kp);
			mse_err_file(err, o->recovery_key);
			goto out;
		}
		if (mse_hex_encode(rk, sizeof(rk), kp.pk, 32) == 0)
			json_object_set_new(j, "recovery_key", json_string(rk));
		mse_seal_keypair_wipe(&kp);
	}
	if (!j || !(*json = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER))) {
		mse_err_set(err, "out of memory");
		goto out;
	}
	*len = strlen(*json);
	{
		/* What we built must be what the coordinator accepts. */
		struct mse_cmanifest m;

		if (mse_cmanifest_parse((const uint8_t *)*json, *len, &m, err) != 0) {
			free(*json);
			*json = NULL;
			goto out;
		}
		mse_cmanifest_free(&m);
	}
	rc = 0;
	goto out;
out_ids:
	json_decref(ids);
out:
	json_decref(j);
	if (key)
		mse_file_free_secret(key, kl);
	free(s_code);
	free(s_sec);
	free(s_seal);
	free(cert);
	mse_ratls_free(&r);
	if (have_tmp && mse_file_remove_tree(tmp, NULL) != 0)
		fprintf(stderr, "warning: cannot remove %s\n", tmp);
	return rc;
}

static int split_url(const char *url, char *host, size_t hs, uint16_t *port, struct mse_err *err)
{
	const char *c = strrchr(url, ':');
	char *end;
	long p;

	if (!strncmp(url, "https://", 8))
		url += 8;
	c = strrchr(url, ':');
	if (!c || c == url || (size_t)(c - url) >= hs)
		return mse_err_expect(err, "--url", "HOST:PORT", url);
	p = strtol(c + 1, &end, 10);
	if (*end || p < 1 || p > 65535)
		return mse_err_expect(err, "--url", "HOST:PORT with a port 1..65535", url);
	memcpy(host, url, (size_t)(c - url));
	host[c - url] = '\0';
	*port = (uint16_t)p;
	return 0;
}

static int request(const struct mse_coordclient_conn *c, const char *method, const char *path,
		   const char *ctype, const void *body, size_t len, const char *extra_header,
		   struct mse_client_resp *resp, struct mse_err *err)
{
	struct mse_client_opts o;
	char host[256];

	memset(&o, 0, sizeof(o));
	if (split_url(c->url, host, sizeof(host), &o.port, err) != 0)
		return -1;
	o.host = host;
	o.server_name = c->server_name ? c->server_name : "localhost";
	o.pin_pem = c->pin;
	o.timeout_ms = c->timeout_ms ? c->timeout_ms : 30000;
	o.extra_header = extra_header;
	return mse_client_request(&o, method, path, ctype, body, len, resp, err);
}

/*
 * POST the exact bytes body with the owner's detached Ed25519 signature over
 * them (the key read from owner_key_path and wiped) in the Mse-Owner-Signature
 * header, through the pinned connection: POST /manifest and POST /recover.
 */
static int signed_post(const struct mse_coordclient_conn *c, const char *owner_key_path,
		       const char *path, const char *ctype, const uint8_t *body, size_t len,
		       struct mse_client_resp *resp, struct mse_err *err)
{
	uint8_t sk[64], sig[64];
	char sighex[129], hdr[160];

	if (mse_coordclient_load_priv(owner_key_path, sk, err) != 0)
		return -1;
	crypto_sign_detached(sig, NULL, body, len, sk);
	sodium_memzero(sk, sizeof(sk));
	if (mse_hex_encode(sighex, sizeof(sighex), sig, 64) != 0)
		return mse_err_set(err, "cannot encode the signature");
	/* The signature travels in a header: the client API takes one body. */
	snprintf(hdr, sizeof(hdr), "%s: %s", "Mse-Owner-Signature", sighex);
	return request(c, "POST", path, ctype, body, len, hdr, resp, err);
}

static int fail_resp(const struct mse_client_resp *r, const char *what, struct mse_err *err)
{
	json_t *j = r->body ? json_loads(r->body, 0, NULL) : NULL;
	const char *step = NULL, *msg = NULL;

	if (j && json_unpack(j, "{s:s,s:s}", "step", &step, "error", &msg) == 0) {
		mse_err_step(err, step);
		mse_err_set(err, "%s: HTTP %ld: %s", what, r->status, msg);
	} else {
		mse_err_set(err, "%s: HTTP %ld: %.300s", what, r->status, r->body ? r->body : "");
	}
	json_decref(j);
	return -1;
}

int mse_coordclient_get(const struct mse_coordclient_conn *c, const char *path, char **body,
			size_t *len, struct mse_err *err)
{
	struct mse_client_resp r;

	memset(&r, 0, sizeof(r));
	if (request(c, "GET", path, NULL, NULL, 0, NULL, &r, err) != 0)
		return -1;
	if (r.status != 200) {
		fail_resp(&r, path, err);
		mse_client_resp_free(&r);
		return -1;
	}
	*body = r.body;
	*len = r.body_len;
	r.body = NULL;
	mse_client_resp_free(&r);
	return 0;
}

int mse_coordclient_set(const struct mse_coordclient_conn *c, const char *manifest_path,
			const char *owner_key_path, char **status_json, struct mse_err *err)
{
	uint8_t *man = NULL, sha[32];
	size_t ml = 0, sl = 0;
	char shahex[65], *st = NULL;
	struct mse_cmanifest m;
	struct mse_client_resp r;
	json_t *j = NULL;
	const char *did = NULL, *msha = NULL;
	json_int_t seq = 0;
	int rc = -1;

	memset(&m, 0, sizeof(m));
	memset(&r, 0, sizeof(r));
	if (status_json)
		*status_json = NULL;
	if (mse_file_read(manifest_path, MSE_CMANIFEST_MAX_SIZE, &man, &ml, err) != 0)
		return -1;
	if (mse_cmanifest_parse(man, ml, &m, err) != 0) {
		mse_err_file(err, manifest_path);
		goto out;
	}
	crypto_hash_sha256(sha, man, ml);
	if (mse_hex_encode(shahex, sizeof(shahex), sha, 32) != 0)
		goto out;
	if (signed_post(c, owner_key_path, "/manifest", "application/json", man, ml, &r, err) != 0)
		goto out;
	if (r.status != 200) {
		fail_resp(&r, "POST /manifest", err);
		goto out;
	}
	if (c->recovery_out) {
		/* recovery.bin: the state sealed to the owner's recovery key. */
		json_t *a = r.body ? json_loads(r.body, 0, NULL) : NULL;
		const char *b64 = a ? json_string_value(json_object_get(a, "recovery")) : NULL;
		uint8_t *bin = NULL;
		size_t bl = 0, n;
		int wr = -1;

		if (!b64) {
			mse_err_set(err, "POST /manifest: no \"recovery\" in the answer (does the "
					 "manifest have a recovery_key?)");
		} else if (!(bin = malloc((n = strlen(b64)) + 1)) ||
			   mse_b64_decode(bin, n + 1, &bl, b64, n, MSE_B64_STD) != 0) {
			mse_err_set(err, "POST /manifest: \"recovery\" is not base64");
		} else {
			wr = mse_file_write_atomic(c->recovery_out, bin, bl, MSE_MODE_SECRET, err);
		}
		free(bin);
		json_decref(a);
		if (wr != 0)
			goto out;
	}
	/* Read back over the attested channel: what does the coordinator hold now? */
	if (mse_coordclient_get(c, "/status", &st, &sl, err) != 0)
		goto out;
	j = json_loads(st, 0, NULL);
	if (!j || json_unpack(j, "{s:s,s:I,s:s}", "deployment_id", &did, "seq", &seq,
			      "manifest_sha256", &msha) != 0) {
		mse_err_set(err, "GET /status: no deployment reported after the upload");
		goto out;
	}
	mse_err_step(err, "status");
	if (strcmp(did, m.deployment_id) != 0) {
		mse_err_expect(err, "deployment_id", m.deployment_id, did);
		goto out;
	}
	if ((uint64_t)seq != m.seq) {
		char e[32], g[32];

		snprintf(e, sizeof(e), "%llu", (unsigned long long)m.seq);
		snprintf(g, sizeof(g), "%lld", (long long)seq);
		mse_err_expect(err, "seq", e, g);
		goto out;
	}
	if (strcmp(msha, shahex) != 0) {
		mse_err_expect(err, "manifest_sha256", shahex, msha);
		goto out;
	}
	mse_err_step(err, "");
	if (c->record) {
		/* The owner's side of the rollback check (mse_coordclient_check_record). */
		json_t *rec = json_pack("{s:s,s:I,s:s}", "deployment_id", did, "seq", seq,
					"manifest_sha256", msha);
		char *t = rec ? json_dumps(rec, JSON_INDENT(2)) : NULL;

		json_decref(rec);
		if (!t || mse_file_write_atomic(c->record, t, strlen(t), MSE_MODE_SECRET, err) != 0) {
			free(t);
			goto out;
		}
		free(t);
	}
	if (status_json) {
		*status_json = st;
		st = NULL;
	}
	rc = 0;
out:
	json_decref(j);
	free(st);
	mse_client_resp_free(&r);
	mse_cmanifest_free(&m);
	free(man);
	return rc;
}

int mse_coordclient_pin_mrenclave(const uint8_t *pin, size_t len, uint8_t mre[32],
				  struct mse_err *err)
{
	struct mse_ratls r;
	struct mse_quote q;
	int rc = -1;

	memset(&r, 0, sizeof(r));
	if (mse_ratls_parse(&r, pin, len, err) == 0 &&
	    mse_quote_parse(&q, r.quote, r.quote_len, 0, err) == 0) {
		memcpy(mre, q.body.mr_enclave, 32);
		rc = 0;
	}
	mse_ratls_free(&r);
	return rc;
}

int mse_coordclient_check_record(const char *record, const char *status_json, struct mse_err *err)
{
	uint8_t *t = NULL;
	size_t tl = 0;
	json_t *rec = NULL, *st = NULL;
	const char *rd = NULL, *rs = NULL, *cd = NULL, *cs = NULL, *state = "";
	json_int_t rq = 0, cq = 0;
	int rc = -1;

	mse_err_step(err, "rollback");
	if (mse_file_read(record, 1 << 16, &t, &tl, err) != 0)
		return -1;
	rec = json_loadb((const char *)t, tl, 0, NULL);
	if (!rec || json_unpack(rec, "{s:s,s:I,s:s}", "deployment_id", &rd, "seq", &rq,
				"manifest_sha256", &rs) != 0) {
		mse_err_file(err, record);
		mse_err_expect(err, "record", "{\"deployment_id\", \"seq\", \"manifest_sha256\"}",
			       "something else");
		goto out;
	}
	st = json_loads(status_json, 0, NULL);
	if (st)
		json_unpack(st, "{s?s}", "state", &state);
	if (!st || json_unpack(st, "{s:s,s:I,s:s}", "deployment_id", &cd, "seq", &cq,
			       "manifest_sha256", &cs) != 0) {
		mse_err_field(err, "state",
			      "the coordinator reports no manifest (state \"%s\"); the owner last set "
			      "deployment %s seq %lld",
			      state, rd, (long long)rq);
		goto out;
	}
	if (strcmp(rd, cd) != 0) {
		mse_err_expect(err, "deployment_id", rd, cd);
		goto out;
	}
	if (cq < rq) {
		mse_err_field(err, "seq",
			      "ROLLBACK: the coordinator reports seq %lld, the owner last set seq %lld "
			      "(%s): an older sealed state was restored",
			      (long long)cq, (long long)rq, record);
		goto out;
	}
	if (cq > rq) {
		mse_err_field(err, "seq",
			      "the coordinator reports seq %lld, higher than the last the owner set "
			      "(%lld, %s): set from elsewhere?",
			      (long long)cq, (long long)rq, record);
		goto out;
	}
	if (strcmp(rs, cs) != 0) {
		mse_err_expect(err, "manifest_sha256", rs, cs);
		goto out;
	}
	mse_err_step(err, "");
	rc = 0;
out:
	json_decref(rec);
	json_decref(st);
	free(t);
	return rc;
}

int mse_coordclient_recover(const struct mse_coordclient_conn *c, const char *recovery_bin,
			    const char *recovery_key, const char *owner_key, char **status_json,
			    struct mse_err *err)
{
	struct mse_seal_keypair kp;
	uint8_t *bin = NULL, *blob = NULL, *pin = NULL, *body = NULL, coord_pk[32];
	size_t bl = 0, blobl = 0, pl = 0, bodyl = 0;
	struct mse_client_resp r;
	int rc = -1;

	memset(&r, 0, sizeof(r));
	memset(&kp, 0, sizeof(kp));
	if (status_json)
		*status_json = NULL;
	mse_err_step(err, "recovery");
	if (mse_seal_load_key(recovery_key, MSE_SEAL_KEY_PRIVATE, &kp, err) != 0)
		goto out;
	if (mse_file_read(recovery_bin, MSE_COORD_RECOVERY_MAX, &bin, &bl, err) != 0)
		goto out;
	if (mse_seal_open(&kp, bin, bl, &blob, &blobl, err) != 0) {
		mse_err_file(err, recovery_bin);
		mse_err_prefix(err, "does not open with the recovery key %s", recovery_key);
		goto out;
	}
	/* Re-sealed to the new coordinator's verified key, signed by the owner. */
	if (mse_file_read(c->pin, MSE_RATLS_MAX_SIZE, &pin, &pl, err) != 0 ||
	    mse_ratls_seal_pk_mem(pin, pl, coord_pk, err) != 0 ||
	    mse_seal_seal(coord_pk, blob, blobl, &body, &bodyl, err) != 0)
		goto out;
	if (signed_post(c, owner_key, "/recover", "application/octet-stream", body, bodyl, &r,
			err) != 0)
		goto out;
	if (r.status != 200) {
		fail_resp(&r, "POST /recover", err);
		goto out;
	}
	mse_err_step(err, "");
	if (status_json) {
		*status_json = r.body;
		r.body = NULL;
	}
	rc = 0;
out:
	mse_seal_keypair_wipe(&kp);
	mse_client_resp_free(&r);
	mse_file_free_secret(blob, blobl);
	free(bin);
	free(pin);
	free(body);
	return rc;
}

int mse_coordclient_verify(const char *url, const uint8_t mrenclave[32], int allow_simulation,
			   int sgx, const char *pccs_url, const char *pin_out, struct mse_err *err)
{
	char sim_dir[PATH_MAX], path[PATH_MAX + 32], *pem = NULL;
	uint8_t *der = NULL, *root = NULL;
	size_t der_len = 0, root_len = 0, pem_len = 0;
	struct mse_collateral coll;
	struct mse_ratls r;
	struct mse_verify_policy pol;
	struct mse_verify_result res;
	int rc = -1;

	memset(&coll, 0, sizeof(coll));
	memset(&r, 0, sizeof(r));
	memset(&pol, 0, sizeof(pol));
	if (mse_sim_dir(sim_dir, sizeof(sim_dir), err) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/collateral", sim_dir);
	if (mse_ratls_fetch(url, 10000, &der, &der_len, err) != 0 ||
	    mse_ratls_parse(&r, der, der_len, err) != 0)
		goto out;
	if (sgx && !allow_simulation) {
		/* Intel's collateral for the coordinator's platform, from the PCCS. */
		struct mse_pccs_opts po;

		mse_pccs_opts_init(&po);
		po.url = pccs_url;
		if (mse_pccs_collateral_for_quote(&po, r.quote, r.quote_len, &coll, err) != 0) {
			mse_err_prefix(err, "coordinator %s: its collateral", url);
			goto out;
		}
	} else if (mse_collateral_load_dir(&coll, path, err) != 0) {
		goto out;
	}
	if (allow_simulation) {
		snprintf(path, sizeof(path), "%s/root_ca.der", sim_dir);
		if (mse_file_read(path, 1 << 16, &root, &root_len, err) != 0)
			goto out;
	}
	pol.mrenclave = mrenclave;
	pol.allow_simulation = allow_simulation;
	pol.sim_root_der = root;
	pol.sim_root_len = root_len;
	if (mse_verify_ratls(&r, &coll, &pol, NULL, &res, err) != 0) {
		mse_err_prefix(err, "coordinator %s", url);
		goto out;
	}
	if (mse_ratls_pem(&r, &pem, &pem_len, err) != 0 ||
	    mse_file_write_atomic(pin_out, pem, pem_len, MSE_MODE_PUBLIC, err) != 0)
		goto out;
	rc = 0;
out:
	free(pem);
	free(der);
	free(root);
	mse_collateral_free(&coll);
	mse_ratls_free(&r);
	return rc;
}
