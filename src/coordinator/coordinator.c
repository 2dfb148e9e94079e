/* SPDX-License-Identifier: Apache-2.0 */
#include "coordinator/coordinator.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include "attest/cmanifest.h"
#include "attest/ratls.h"
#include "attest/verify.h"
#include "attest/x509w.h"
#include "common/b64.h"
#include "common/file.h"
#include "common/hex.h"
#include "common/log.h"
#include "crypto/ckeys.h"
#include "crypto/seal.h"
#include "net/http.h"
#include "net/metrics.h"

#define RATE_SLOTS 256
#define MAX_REPLICAS 100000

struct replica {
	char key[65];       /* SHA-256 of the replica's RA-TLS key, hex */
	char mrenclave[65];
	char mrsigner[65];
	unsigned isvprodid, isvsvn;
	char instance[65];
	int64_t first_seen, last_seen;
	uint64_t attestations;
};

/* Refusals counted by step (metrics): the verifier's steps and ours. */
#define MAX_STEPS 32
struct step_count {
	char step[32];
	uint64_t n;
};

/* Secrets already opened (from the sealed state or a recovery blob). */
struct opened {
	int has_code_key;
	uint8_t code_key[32];
	char *secrets; /* owned by the caller */
	size_t secrets_len;
	uint8_t *to_seal;
	size_t to_seal_len;
};

struct rate_slot {
	char addr[64];
	int64_t sec;
	unsigned count;
};

struct mse_coord {
	pthread_mutex_t mu;
	struct mse_coord_config cfg;
	char state_path[4096];
	/* the manifest and what it unlocks */
	int has_manifest;
	uint8_t *manifest;
	size_t manifest_len;
	uint8_t sig[64];
	uint8_t manifest_sha[32];
	struct mse_cmanifest m;
	uint8_t root[MSE_CKEYS_ROOT_LEN];
	EVP_PKEY *ca_key;
	X509 *ca_cert;
	char *ca_pem;
	uint8_t code_key[32];
	char *secrets; /* opened JSON text */
	size_t secrets_len;
	uint8_t *to_seal; /* opened secrets_to_seal.json */
	size_t to_seal_len;
	/* the registry */
	struct replica *reps;
	size_t n_reps, cap_reps;
	uint64_t accepted, refused;
	struct step_count refused_by[MAX_STEPS];
	uint64_t state_writes, state_write_errors, manifests_accepted, manifests_refused;
	uint64_t recoveries;
	/* The sealed state did not open (another machine or coordinator version):
	 * only POST /recover, GET /status and GET /metrics are served. */
	int recovery_needed;
	int registry_dirty; /* new replicas not saved yet (saved at most once a second) */
	int64_t last_save;
	struct rate_slot rate[RATE_SLOTS];
	/* Verification: one cache (per-platform results, parsed collateral), not
	 * thread-safe, so verifications take vmu in turn (tens of µs when cached). */
	pthread_mutex_t vmu;
	struct mse_verify_cache *vcache;
};

static void hex32(char out[65], const uint8_t *p)
{
	if (mse_hex_encode(out, 65, p, 32) != 0)
		out[0] = '\0';
}

/* ---- manifest contents ---------------------------------------------------- */

static void drop_unlocked(struct mse_coord *co)
{
	free(co->manifest);
	co->manifest = NULL;
	co->manifest_len = 0;
	mse_cmanifest_free(&co->m);
	EVP_PKEY_free(co->ca_key);
	co->ca_key = NULL;
	X509_free(co->ca_cert);
	co->ca_cert = NULL;
	free(co->ca_pem);
	co->ca_pem = NULL;
	mse_file_free_secret(co->secrets, co->secrets_len);
	co->secrets = NULL;
	mse_file_free_secret(co->to_seal, co->to_seal_len);
	co->to_seal = NULL;
	sodium_memzero(co->code_key, sizeof(co->code_key));
	sodium_memzero(co->root, sizeof(co->root));
	co->has_manifest = 0;
}

/* Opens the manifest's sealed values with the coordinator's key. */
static int open_secrets(const struct mse_coord *co, const struct mse_cmanifest *m,
			uint8_t code_key[32], char **secrets, size_t *secrets_len, uint8_t **to_seal,
			size_t *to_seal_len, struct mse_err *err)
{
	struct mse_seal_keypair kp;
	uint8_t *p = NULL;
	size_t n = 0;
	int rc = -1;

	memcpy(kp.pk, co->cfg.enclave_pk, 32);
	memcpy(kp.sk, co->cfg.enclave_sk, 32);
	kp.has_sk = 1;
	*secrets = NULL;
	*to_seal = NULL;
	mse_err_step(err, "manifest");
	if (m->sealed_code_key) {
		if (mse_seal_open(&kp, m->sealed_code_key, m->sealed_code_key_len, &p, &n, err) != 0) {
			mse_err_field(err, "sealed.code_key",
				      "does not open with this coordinator's key (sealed to another "
				      "coordinator?)");
			goto out;
		}
		if (n != 32) {
			mse_file_free_secret(p, n);
			mse_err_field(err, "sealed.code_key", "expected 32 bytes, got %zu", n);
			goto out;
		}
		memcpy(code_key, p, 32);
		mse_file_free_secret(p, n);
	}
	if (m->sealed_secrets) {
		json_t *j;

		if (mse_seal_open(&kp, m->sealed_secrets, m->sealed_secrets_len, &p, &n, err) != 0) {
			mse_err_field(err, "sealed.secrets", "does not open with this coordinator's key");
			goto out;
		}
		j = json_loadb((const char *)p, n, 0, NULL);
		if (!j || !json_is_object(j)) {
			json_decref(j);
			mse_file_free_secret(p, n);
			mse_err_expect(err, "sealed.secrets", "a JSON object", "something else");
			goto out;
		}
		json_decref(j);
		*secrets = (char *)p;
		*secrets_len = n;
	}
	if (m->sealed_to_seal) {
		json_t *j;

		if (mse_seal_open(&kp, m->sealed_to_seal, m->sealed_to_seal_len, to_seal, to_seal_len,
				  err) != 0) {
			mse_err_field(err, "sealed.secrets_to_seal",
				      "does not open with this coordinator's key");
			goto out;
		}
		j = json_loadb((const char *)*to_seal, *to_seal_len, 0, NULL);
		if (!j || !json_is_object(j)) {
			json_decref(j);
			mse_err_expect(err, "sealed.secrets_to_seal", "a JSON object", "something else");
			goto out;
		}
		json_decref(j);
	}
	rc = 0;
out:
	mse_seal_keypair_wipe(&kp);
	if (rc != 0) {
		sodium_memzero(code_key, 32);
		mse_file_free_secret(*secrets, *secrets_len);
		*secrets = NULL;
		mse_file_free_secret(*to_seal, *to_seal_len);
		*to_seal = NULL;
	}
	return rc;
}

/* The CA certificate for the CA key (new on the first manifest). */
static X509 *make_ca_cert(EVP_PKEY *key, const char *deployment_id, struct mse_err *err)
{
	X509_NAME *name = X509_NAME_new();
	X509 *c = NULL;
	time_t now = time(NULL);

	if (!name ||
	    !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
					(const unsigned char *)deployment_id, -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
					(const unsigned char *)"mse-c coordinator CA", -1, -1, 0)) {
		mse_x509w_ossl_err(err, "CA name");
		goto fail;
	}
	c = mse_x509w_cert_new(name, name, key, now - 3600, now + 10L * 365 * 86400, err);
	if (!c || mse_x509w_add_ext(c, NULL, NID_basic_constraints, "critical,CA:TRUE,pathlen:0",
				    err) != 0 ||
	    mse_x509w_add_ext(c, NULL, NID_key_usage, "critical,keyCertSign,cRLSign", err) != 0 ||
	    mse_x509w_add_ext(c, NULL, NID_subject_key_identifier, "hash", err) != 0 ||
	    mse_x509w_sign(c, key, err) != 0)
		goto fail;
	X509_NAME_free(name);
	return c;
fail:
	X509_NAME_free(name);
	X509_free(c);
	return NULL;
}

/* ---- sealed state ------------------------------------------------------------ */

/*
 * What the state holds and a recovery restores (JSON, secret): the owner key,
 * the root secret, the manifest and its signature, the CA certificate and
 * the manifest's secrets as opened (so they survive a move to a coordinator
 * whose X25519 key cannot open the manifest's sealed values). With
 * with_replicas, the registry too (the state, not the recovery blob).
 */
static json_t *state_json_locked(const struct mse_coord *co, int with_replicas)
{
	json_t *j = NULL, *reps = NULL;
	char owner[65], root[65], sig[129], ck[65], *b64 = NULL, *ts = NULL;
	size_t i, cap;

	hex32(owner, co->cfg.owner_pk);
	hex32(root, co->root);
	hex32(ck, co->code_key);
	if (mse_hex_encode(sig, sizeof(sig), co->sig, 64) != 0)
		sig[0] = '\0';
	cap = mse_b64_encoded_size(co->manifest_len, MSE_B64_STD);
	if (!(b64 = malloc(cap)) ||
	    mse_b64_encode(b64, cap, co->manifest, co->manifest_len, MSE_B64_STD) != 0)
		goto out;
	if (co->to_seal) {
		cap = mse_b64_encoded_size(co->to_seal_len, MSE_B64_STD);
		if (!(ts = malloc(cap)) ||
		    mse_b64_encode(ts, cap, co->to_seal, co->to_seal_len, MSE_B64_STD) != 0)
			goto out;
	}
	if (with_replicas) {
		reps = json_array();
		for (i = 0; reps && i < co->n_reps; i++) {
			const struct replica *r = &co->reps[i];

			json_array_append_new(
				reps, json_pack("{s:s,s:s,s:s,s:i,s:i,s:s,s:I,s:I,s:I}", "key", r->key,
						"mrenclave", r->mrenclave, "mrsigner", r->mrsigner,
						"isvprodid", (int)r->isvprodid, "isvsvn", (int)r->isvsvn,
						"instance", r->instance, "first_seen",
						(json_int_t)r->first_seen, "last_seen",
						(json_int_t)r->last_seen, "attestations",
						(json_int_t)r->attestations));
		}
	}
	j = json_pack("{s:i,s:s,s:s,s:s,s:s,s:s}", "version", 2, "owner_key", owner,
		      "root_secret", root, "manifest", b64, "signature", sig, "ca_cert", co->ca_pem);
	if (!j)
		goto out;
	if (!co->m.plaincode)
		json_object_set_new(j, "code_key", json_string(ck));
	json_object_set_new(j, "secrets",
			    co->secrets ? json_stringn(co->secrets, co->secrets_len) : json_null());
	json_object_set_new(j, "secrets_to_seal", ts ? json_string(ts) : json_null());
	if (with_replicas)
		json_object_set_new(j, "replicas", reps ? reps : json_array());
	reps = NULL;
out:
	json_decref(reps);
	sodium_memzero(root, sizeof(root));
	sodium_memzero(ck, sizeof(ck));
	if (ts)
		mse_file_free_secret(ts, strlen(ts));
	free(b64);
	return j;
}

static int save_state_locked(struct mse_coord *co, struct mse_err *err)
{
	json_t *j;
	char *text = NULL;
	uint8_t *box = NULL;
	size_t tl = 0, bl;
	int rc = -1;

	j = state_json_locked(co, 1);
	if (!j || !(text = json_dumps(j, JSON_COMPACT))) {
		mse_err_set(err, "out of memory");
		goto out;
	}
	tl = strlen(text);
	bl = crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + tl;
	if (!(box = malloc(bl))) {
		mse_err_set(err, "out of memory");
		goto out;
	}
	randombytes_buf(box, crypto_secretbox_NONCEBYTES);
	crypto_secretbox_easy(box + crypto_secretbox_NONCEBYTES, (const uint8_t *)text, tl, box,
			      co->cfg.state_key);
	rc = mse_file_write_atomic(co->state_path, box, bl, MSE_MODE_SECRET, err);
	if (rc == 0) {
		co->registry_dirty = 0;
		co->last_save = (int64_t)time(NULL);
		co->state_writes++;
	} else {
		co->state_write_errors++;
	}
out:
	json_decref(j);
	mse_file_free_secret(text, tl);
	free(box);
	return rc;
}

/* 1 if p[0:n] is the JSON text of an object. */
static int json_object_text(const char *p, size_t n)
{
	json_t *j = json_loadb(p, n, 0, NULL);
	int ok = json_is_object(j);

	json_decref(j);
	return ok;
}

/*
 * The opened secrets of a state or recovery blob (fields "code_key",
 * "secrets", "secrets_to_seal"); *present is 0 for a version-1 state, which
 * has none (the manifest's sealed values are opened instead).
 */
static int opened_from_json(json_t *j, int plaincode, struct opened *op, int *present,
			    struct mse_err *err)
{
	json_t *ck = json_object_get(j, "code_key"), *se = json_object_get(j, "secrets"),
	       *ts = json_object_get(j, "secrets_to_seal");

	memset(op, 0, sizeof(*op));
	*present = ck || se || ts;
	if (!*present)
		return 0;
	if (!plaincode) {
		if (!json_is_string(ck) || json_string_length(ck) != 64 ||
		    mse_hex_decode_exact(op->code_key, 32, json_string_value(ck), 64) != 0)
			return mse_err_expect(err, "code_key", "64 hex digits", "another value");
		op->has_code_key = 1;
	}
	if (json_is_string(se)) {
		size_t n = json_string_length(se);

		if (!json_object_text(json_string_value(se), n))
			return mse_err_expect(err, "secrets", "JSON text of an object", "another value");
		if (!(op->secrets = malloc(n + 1)))
			return mse_err_set(err, "out of memory");
		memcpy(op->secrets, json_string_value(se), n);
		op->secrets[n] = '\0';
		op->secrets_len = n;
	} else if (se && !json_is_null(se)) {
		return mse_err_expect(err, "secrets", "JSON text or null", "another type");
	}
	if (json_is_string(ts)) {
		size_t n = json_string_length(ts);

		if (!(op->to_seal = malloc(n + 1)) ||
		    mse_b64_decode(op->to_seal, n + 1, &op->to_seal_len, json_string_value(ts), n,
				   MSE_B64_STD) != 0)
			return mse_err_expect(err, "secrets_to_seal", "base64", "another value");
		if (!json_object_text((const char *)op->to_seal, op->to_seal_len))
			return mse_err_expect(err, "secrets_to_seal", "base64 of a JSON object",
					      "another value");
	} else if (ts && !json_is_null(ts)) {
		return mse_err_expect(err, "secrets_to_seal", "base64 or null", "another type");
	}
	return 0;
}

static void opened_wipe(struct opened *op)
{
	mse_file_free_secret(op->secrets, op->secrets_len);
	mse_file_free_secret(op->to_seal, op->to_seal_len);
	sodium_memzero(op, sizeof(*op));
}

static int install_locked(struct mse_coord *co, const uint8_t *bytes, size_t len,
			  const uint8_t sig[64], struct mse_cmanifest *m, const uint8_t root[32],
			  const char *ca_pem, const struct opened *op, struct mse_err *err);

/*
 * Installs a state or recovery blob (JSON): the owner key must be this
 * coordinator's, the manifest's signature must verify with it, and the CA
 * certificate must match the CA key the root secret gives. Replicas are
 * read when present.
 */
static int restore_locked(struct mse_coord *co, json_t *j, const char *what, struct mse_err *err)
{
	uint8_t *man = NULL, sig[64], root[32], owner[32];
	size_t ml = 0, i;
	json_t *reps, *e;
	const char *s_owner, *s_root, *s_man, *s_sig, *s_ca;
	struct mse_cmanifest m;
	struct opened op;
	int rc = -1, present = 0;

	memset(&m, 0, sizeof(m));
	memset(&op, 0, sizeof(op));
	if (!j || json_unpack(j, "{s:s,s:s,s:s,s:s,s:s}", "owner_key", &s_owner, "root_secret",
			      &s_root, "manifest", &s_man, "signature", &s_sig, "ca_cert", &s_ca) != 0 ||
	    strlen(s_owner) != 64 || mse_hex_decode_exact(owner, 32, s_owner, 64) != 0 ||
	    strlen(s_root) != 64 || mse_hex_decode_exact(root, 32, s_root, 64) != 0 ||
	    strlen(s_sig) != 128 || mse_hex_decode_exact(sig, 64, s_sig, 128) != 0) {
		mse_err_set(err, "%s: malformed content", what);
		goto out;
	}
	if (sodium_memcmp(owner, co->cfg.owner_pk, 32) != 0) {
		mse_err_step(err, "owner");
		mse_err_field(err, "owner_key", "the %s belongs to owner %s, not to this coordinator's",
			      what, s_owner);
		goto out;
	}
	ml = strlen(s_man);
	if (!(man = malloc(ml + 1)) ||
	    mse_b64_decode(man, ml + 1, &ml, s_man, strlen(s_man), MSE_B64_STD) != 0) {
		mse_err_set(err, "%s: manifest not base64", what);
		goto out;
	}
	if (mse_cmanifest_check_sig(man, ml, sig, co->cfg.owner_pk, err) != 0 ||
	    mse_cmanifest_parse(man, ml, &m, err) != 0)
		goto out;
	if (opened_from_json(j, m.plaincode, &op, &present, err) != 0) {
		mse_err_prefix(err, "%s", what);
		goto out;
	}
	if (install_locked(co, man, ml, sig, &m, root, s_ca, present ? &op : NULL, err) != 0)
		goto out;
	reps = json_object_get(j, "replicas");
	json_array_foreach(reps, i, e) {
		const char *k = NULL, *mr = NULL, *ms = "", *in = "";
		json_int_t f = 0, l = 0, a = 0;
		int pid = 0, svn = 0;
		struct replica *r;

		if (json_unpack(e, "{s:s,s:s,s?s,s?i,s?i,s?s,s:I,s:I,s:I}", "key", &k, "mrenclave",
				&mr, "mrsigner", &ms, "isvprodid", &pid, "isvsvn", &svn, "instance",
				&in, "first_seen", &f, "last_seen", &l, "attestations", &a) != 0)
			continue;
		if (co->n_reps == co->cap_reps) {
			size_t nc = co->cap_reps ? co->cap_reps * 2 : 16;
			struct replica *nr = realloc(co->reps, nc * sizeof(*nr));

			if (!nr)
				break;
			co->reps = nr;
			co->cap_reps = nc;
		}
		r = &co->reps[co->n_reps++];
		memset(r, 0, sizeof(*r));
		snprintf(r->key, sizeof(r->key), "%s", k);
		snprintf(r->mrenclave, sizeof(r->mrenclave), "%s", mr);
		snprintf(r->mrsigner, sizeof(r->mrsigner), "%s", ms);
		r->isvprodid = (unsigned)pid & 0xffff;
		r->isvsvn = (unsigned)svn & 0xffff;
		snprintf(r->instance, sizeof(r->instance), "%s", in);
		r->first_seen = f;
		r->last_seen = l;
		r->attestations = (uint64_t)a;
	}
	rc = 0;
out:
	sodium_memzero(root, sizeof(root));
	opened_wipe(&op);
	mse_cmanifest_free(&m);
	free(man);
	return rc;
}

static int load_state(struct mse_coord *co, struct mse_err *err)
{
	uint8_t *box = NULL, *plain = NULL;
	size_t bl = 0, pl = 0;
	json_t *j = NULL;
	int rc = -1;

	if (!mse_file_exists(co->state_path))
		return 0;
	mse_err_step(err, "state");
	if (mse_file_read(co->state_path, 64u << 20, &box, &bl, err) != 0)
		return -1;
	if (bl < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES) {
		mse_err_file(err, co->state_path);
		mse_err_set(err, "sealed state: %zu bytes, too short", bl);
		goto out;
	}
	pl = bl - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES;
	if (!(plain = malloc(pl + 1))) {
		mse_err_set(err, "out of memory");
		goto out;
	}
	if (crypto_secretbox_open_easy(plain, box + crypto_secretbox_NONCEBYTES,
				       bl - crypto_secretbox_NONCEBYTES, box,
				       co->cfg.state_key) != 0) {
		if (co->cfg.allow_recovery) {
			mse_warn("%s does not open with this coordinator's sealing key (another "
				 "machine, owner key or coordinator version): RECOVERY NEEDED — "
				 "only `mse coordinator recover` is accepted",
				 co->state_path);
			co->recovery_needed = 1;
			rc = 0;
			goto out;
		}
		mse_err_file(err, co->state_path);
		mse_err_set(err, "the sealed state does not open with this coordinator's sealing key "
				 "(another machine, owner key or coordinator version)");
		goto out;
	}
	plain[pl] = 0;
	j = json_loadb((const char *)plain, pl, 0, NULL);
	if (restore_locked(co, j, "sealed state", err) != 0) {
		mse_err_file(err, co->state_path);
		goto out;
	}
	mse_info("state restored: deployment %s seq %llu, %zu replicas known", co->m.deployment_id,
		 (unsigned long long)co->m.seq, co->n_reps);
	rc = 0;
out:
	json_decref(j);
	mse_file_free_secret(plain, pl);
	free(box);
	return rc;
}

/*
 * Installs a verified, parsed manifest with its root secret (and the CA
 * certificate from the state, or a new one). Takes m's contents.
 */
static int install_locked(struct mse_coord *co, const uint8_t *bytes, size_t len,
			  const uint8_t sig[64], struct mse_cmanifest *m, const uint8_t root[32],
			  const char *ca_pem, const struct opened *op, struct mse_err *err)
{
	uint8_t code_key[32] = {0}, *to_seal = NULL, *copy = NULL;
	char *secrets = NULL, *pem = NULL;
	size_t sl = 0, tl = 0;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;

	if (op) {
		/* Copies: the caller keeps (and wipes) its own. */
		if (op->has_code_key)
			memcpy(code_key, op->code_key, 32);
		if (op->secrets) {
			if (!(secrets = malloc(op->secrets_len + 1))) {
				mse_err_set(err, "out of memory");
				goto fail;
			}
			memcpy(secrets, op->secrets, op->secrets_len);
			secrets[op->secrets_len] = '\0';
		}
		sl = op->secrets ? op->secrets_len : 0;
		if (op->to_seal) {
			if (!(to_seal = malloc(op->to_seal_len ? op->to_seal_len : 1))) {
				mse_err_set(err, "out of memory");
				goto fail;
			}
			memcpy(to_seal, op->to_seal, op->to_seal_len);
			tl = op->to_seal_len;
		}
	} else if (open_secrets(co, m, code_key, &secrets, &sl, &to_seal, &tl, err) != 0) {
		return -1;
	}
	if (!(key = mse_ckeys_ca_key(root, err)))
		goto fail;
	if (ca_pem) {
		BIO *b = BIO_new_mem_buf(ca_pem, -1);

		cert = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
		BIO_free(b);
		if (!cert || X509_check_private_key(cert, key) != 1) {
			mse_err_set(err, "sealed state: the CA certificate does not match the CA key");
			goto fail;
		}
	} else if (!(cert = make_ca_cert(key, m->deployment_id, err))) {
		goto fail;
	}
	if (mse_x509w_cert_pem(cert, &pem, err) != 0)
		goto fail;
	if (!(copy = malloc(len ? len : 1))) {
		mse_err_set(err, "out of memory");
		goto fail;
	}
	memcpy(copy, bytes, len);
	drop_unlocked(co);
	co->manifest = copy;
	co->manifest_len = len;
	memcpy(co->sig, sig, 64);
	crypto_hash_sha256(co->manifest_sha, bytes, len);
	co->m = *m;
	memset(m, 0, sizeof(*m));
	memcpy(co->root, root, 32);
	co->ca_key = key;
	co->ca_cert = cert;
	co->ca_pem = pem;
	memcpy(co->code_key, code_key, 32);
	co->secrets = secrets;
	co->secrets_len = sl;
	co->to_seal = to_seal;
	co->to_seal_len = tl;
	co->has_manifest = 1;
	sodium_memzero(code_key, sizeof(code_key));
	return 0;
fail:
	sodium_memzero(code_key, sizeof(code_key));
	mse_file_free_secret(secrets, sl);
	mse_file_free_secret(to_seal, tl);
	EVP_PKEY_free(key);
	X509_free(cert);
	free(pem);
	free(copy);
	return -1;
}

int mse_coord_new(const struct mse_coord_config *c, struct mse_coord **out, struct mse_err *err)
{
	struct mse_coord *co = calloc(1, sizeof(*co));

	*out = NULL;
	if (!co)
		return mse_err_set(err, "out of memory");
	pthread_mutex_init(&co->mu, NULL);
	pthread_mutex_init(&co->vmu, NULL);
	co->vcache = mse_verify_cache_new(MSE_VERIFY_CACHE_PLATFORM | MSE_VERIFY_CACHE_OBJECTS);
	co->cfg = *c;
	if (!co->cfg.rate_per_sec)
		co->cfg.rate_per_sec = MSE_COORD_RATE_DEFAULT;
	if (snprintf(co->state_path, sizeof(co->state_path), "%s/%s", c->state_dir,
		     MSE_COORD_STATE_FILE) >= (int)sizeof(co->state_path)) {
		mse_coord_free(co);
		return mse_err_set(err, "state directory path too long");
	}
	if (load_state(co, err) != 0) {
		mse_coord_free(co);
		return -1;
	}
	*out = co;
	return 0;
}

void mse_coord_free(struct mse_coord *co)
{
	if (!co)
		return;
	if (co->registry_dirty && co->has_manifest) {
		struct mse_err e;

		mse_err_clear(&e);
		if (save_state_locked(co, &e) != 0)
			mse_warn("could not save the replica registry: %s", e.msg);
	}
	mse_verify_cache_free(co->vcache);
	pthread_mutex_destroy(&co->vmu);
	drop_unlocked(co);
	free(co->reps);
	sodium_memzero(&co->cfg, sizeof(co->cfg));
	pthread_mutex_destroy(&co->mu);
	free(co);
}

/* ---- POST /manifest ---------------------------------------------------------- */

int mse_coord_parse_sig(const char *hex, size_t len, uint8_t sig[64], struct mse_err *err)
{
	if (len != 128 || mse_hex_decode_exact(sig, 64, hex, 128) != 0) {
		mse_err_step(err, "signature");
		return mse_err_expect(err, MSE_COORD_SIG_HEADER, "128 hex digits (Ed25519)",
				      len > 200 ? "(too long)" : "another value");
	}
	return 0;
}

int mse_coord_set_manifest(struct mse_coord *co, const uint8_t *bytes, size_t len,
			   const uint8_t sig[64], int *status, struct mse_err *err)
{
	struct mse_cmanifest m;
	uint8_t root[32];
	int rc = -1, first;

	*status = 400;
	if (mse_cmanifest_check_sig(bytes, len, sig, co->cfg.owner_pk, err) != 0) {
		*status = 403;
		goto refused;
	}
	if (mse_cmanifest_parse(bytes, len, &m, err) != 0)
		goto refused;
	pthread_mutex_lock(&co->mu);
	if (co->recovery_needed) {
		*status = 503;
		mse_err_step(err, "recovery");
		mse_err_set(err, "recovery needed: this coordinator cannot open its sealed state; "
				 "only `mse coordinator recover` is accepted");
		goto out;
	}
	first = !co->has_manifest;
	if (!first) {
		if (strcmp(m.deployment_id, co->m.deployment_id) != 0) {
			*status = 409;
			mse_err_step(err, "manifest");
			mse_err_expect(err, "deployment_id", co->m.deployment_id, m.deployment_id);
			goto out;
		}
		if (m.seq <= co->m.seq) {
			char e[48], g[32];

			*status = 409;
			snprintf(e, sizeof(e), "more than %llu", (unsigned long long)co->m.seq);
			snprintf(g, sizeof(g), "%llu", (unsigned long long)m.seq);
			mse_err_step(err, "manifest");
			mse_err_expect(err, "seq", e, g);
			goto out;
		}
		memcpy(root, co->root, 32);
	} else {
		mse_ckeys_root_new(root);
	}
	{
		char *ca = NULL;

		/* An update keeps the CA certificate: clients' pins stay valid. */
		if (!first && co->ca_pem && !(ca = strdup(co->ca_pem))) {
			mse_err_set(err, "out of memory");
			goto out;
		}
		rc = install_locked(co, bytes, len, sig, &m, root, ca, NULL, err);
		free(ca);
	}
	if (rc == 0 && (rc = save_state_locked(co, err)) != 0)
		*status = 500;
	if (rc == 0) {
		*status = 200;
		co->manifests_accepted++;
		mse_info("manifest accepted: deployment %s seq %llu (%s)", co->m.deployment_id,
			 (unsigned long long)co->m.seq, first ? "first: new root secret and CA" : "update");
	}
out:
	if (rc != 0)
		co->manifests_refused++;
	pthread_mutex_unlock(&co->mu);
	sodium_memzero(root, sizeof(root));
	mse_cmanifest_free(&m);
	return rc;
refused:
	pthread_mutex_lock(&co->mu);
	co->manifests_refused++;
	pthread_mutex_unlock(&co->mu);
	return -1;
}

/* ---- recovery ------------------------------------------------------------------ */

int mse_coord_recovery_needed(struct mse_coord *co)
{
	int r;

	pthread_mutex_lock(&co->mu);
	r = co->recovery_needed;
	pthread_mutex_unlock(&co->mu);
	return r;
}

int mse_coord_recovery_bin(struct mse_coord *co, uint8_t **out, size_t *len, struct mse_err *err)
{
	json_t *j = NULL;
	char *text = NULL;
	size_t tl = 0;
	int rc = -1;

	*out = NULL;
	*len = 0;
	pthread_mutex_lock(&co->mu);
	if (!co->has_manifest || !co->m.has_recovery_key) {
		pthread_mutex_unlock(&co->mu);
		return mse_err_field(err, "recovery_key", "the manifest has none");
	}
	j = state_json_locked(co, 0);
	if (j && (text = json_dumps(j, JSON_COMPACT)) != NULL) {
		tl = strlen(text);
		rc = mse_seal_seal(co->m.recovery_pk, (const uint8_t *)text, tl, out, len, err);
	} else {
		mse_err_set(err, "out of memory");
	}
	pthread_mutex_unlock(&co->mu);
	json_decref(j);
	mse_file_free_secret(text, tl);
	return rc;
}

int mse_coord_recover(struct mse_coord *co, const uint8_t *body, size_t len, const uint8_t sig[64],
		      int *status, struct mse_err *err)
{
	struct mse_seal_keypair kp;
	uint8_t *plain = NULL;
	size_t pl = 0;
	json_t *j = NULL;
	int rc = -1;

	*status = 403;
	mse_err_step(err, "signature");
	if (crypto_sign_verify_detached(sig, body, len, co->cfg.owner_pk) != 0) {
		char k[65];

		hex32(k, co->cfg.owner_pk);
		return mse_err_field(err, "signature",
				     "the recovery request is not signed by the owner key %s this "
				     "coordinator was started with",
				     k);
	}
	pthread_mutex_lock(&co->mu);
	if (!co->recovery_needed) {
		*status = 409;
		mse_err_step(err, "recovery");
		mse_err_set(err, "this coordinator is not in the recovery-needed state (its state "
				 "opened, or it has none): recovery refused, nothing changed");
		goto out;
	}
	*status = 400;
	mse_err_step(err, "recovery");
	memcpy(kp.pk, co->cfg.enclave_pk, 32);
	memcpy(kp.sk, co->cfg.enclave_sk, 32);
	kp.has_sk = 1;
	rc = mse_seal_open(&kp, body, len, &plain, &pl, err);
	mse_seal_keypair_wipe(&kp);
	if (rc != 0) {
		mse_err_prefix(err, "the recovery request is not sealed to this coordinator's key");
		goto out;
	}
	rc = -1;
	j = json_loadb((const char *)plain, pl, 0, NULL);
	if (restore_locked(co, j, "recovery blob", err) != 0) {
		if (strcmp(err->step, "owner") == 0 || strcmp(err->step, "signature") == 0)
			*status = 403;
		goto out;
	}
	co->recovery_needed = 0;
	*status = 500;
	if (save_state_locked(co, err) != 0)
		goto out;
	co->recoveries++;
	*status = 200;
	rc = 0;
	mse_info("recovered: deployment %s seq %llu, the same root secret and CA, sealed "
		 "with this coordinator's key",
		 co->m.deployment_id, (unsigned long long)co->m.seq);
out:
	pthread_mutex_unlock(&co->mu);
	json_decref(j);
	mse_file_free_secret(plain, pl);
	return rc;
}

/* ---- metrics ---------------------------------------------------------------- */

/* Label values are ours (hex, step names): escaped anyway, as the format says. */
static void label_escape(char *out, size_t size, const char *in)
{
	size_t o = 0;

	for (; *in && o + 3 < size; in++) {
		if (*in == '\\' || *in == '"') {
			out[o++] = '\\';
			out[o++] = *in;
		} else if (*in == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else {
			out[o++] = *in;
		}
	}
	out[o] = '\0';
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

char *mse_coord_metrics(struct mse_coord *co)
{
	char *out = NULL, esc[128];
	size_t size = 0, i, k;
	FILE *b = open_memstream(&out, &size);

	if (!b)
		return NULL;
	pthread_mutex_lock(&co->mu);
	fprintf(b,
		       "# HELP mse_coordinator_attestations_total Replica attestations, by result.\n"
		       "# TYPE mse_coordinator_attestations_total counter\n"
		       "mse_coordinator_attestations_total{result=\"accepted\"} %llu\n"
		       "mse_coordinator_attestations_total{result=\"refused\"} %llu\n",
		       (unsigned long long)co->accepted, (unsigned long long)co->refused);
	fprintf(b, "# HELP mse_coordinator_attestations_refused_total Refused replica "
			   "attestations, by the step that refused them.\n"
			   "# TYPE mse_coordinator_attestations_refused_total counter\n");
	for (i = 0; i < MAX_STEPS && co->refused_by[i].step[0]; i++) {
		label_escape(esc, sizeof(esc), co->refused_by[i].step);
		fprintf(b, "mse_coordinator_attestations_refused_total{step=\"%s\"} %llu\n",
			       esc, (unsigned long long)co->refused_by[i].n);
	}
	fprintf(b, "# HELP mse_coordinator_replicas Replica keys known, by enclave "
			   "identity (MRENCLAVE).\n"
			   "# TYPE mse_coordinator_replicas gauge\n");
	{
		/* Grouped by MRENCLAVE: sorted copies, then runs (n log n under the lock). */
		const char **ids = co->n_reps ? malloc(co->n_reps * sizeof(*ids)) : NULL;

		for (i = 0; ids && i < co->n_reps; i++)
			ids[i] = co->reps[i].mrenclave;
		if (ids)
			qsort(ids, co->n_reps, sizeof(*ids), cmp_str);
		for (i = 0; ids && i < co->n_reps; i = k) {
			for (k = i + 1; k < co->n_reps && strcmp(ids[k], ids[i]) == 0; k++)
				;
			label_escape(esc, sizeof(esc), ids[i]);
			fprintf(b, "mse_coordinator_replicas{mrenclave=\"%s\"} %zu\n", esc, k - i);
		}
		free(ids);
	}
	fprintf(b,
		       "# HELP mse_coordinator_manifest_seq The seq of the manifest in force (0: none).\n"
		       "# TYPE mse_coordinator_manifest_seq gauge\n"
		       "mse_coordinator_manifest_seq %llu\n"
		       "# HELP mse_coordinator_manifests_total Manifests uploaded, by result.\n"
		       "# TYPE mse_coordinator_manifests_total counter\n"
		       "mse_coordinator_manifests_total{result=\"accepted\"} %llu\n"
		       "mse_coordinator_manifests_total{result=\"refused\"} %llu\n"
		       "# HELP mse_coordinator_state_writes_total Sealed-state writes, by result.\n"
		       "# TYPE mse_coordinator_state_writes_total counter\n"
		       "mse_coordinator_state_writes_total{result=\"ok\"} %llu\n"
		       "mse_coordinator_state_writes_total{result=\"error\"} %llu\n"
		       "# HELP mse_coordinator_recovery_needed 1 while the sealed state does not open "
		       "and only a recovery is accepted.\n"
		       "# TYPE mse_coordinator_recovery_needed gauge\n"
		       "mse_coordinator_recovery_needed %d\n"
		       "# HELP mse_coordinator_recoveries_total Recoveries accepted.\n"
		       "# TYPE mse_coordinator_recoveries_total counter\n"
		       "mse_coordinator_recoveries_total %llu\n",
		       (unsigned long long)(co->has_manifest ? co->m.seq : 0),
		       (unsigned long long)co->manifests_accepted,
		       (unsigned long long)co->manifests_refused,
		       (unsigned long long)co->state_writes,
		       (unsigned long long)co->state_write_errors, co->recovery_needed,
		       (unsigned long long)co->recoveries);
	pthread_mutex_unlock(&co->mu);
	if (fclose(b) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

/* ---- POST /replica ------------------------------------------------------------- */

int mse_coord_parse_replica_req(const uint8_t *body, size_t len, char instance[65],
				struct mse_err *err)
{
	json_t *j, *v;
	const char *k;
	size_t i;

	instance[0] = '\0';
	mse_err_step(err, "request");
	if (len == 0)
		return 0;
	if (len > MSE_COORD_MAX_SMALL_BODY)
		return mse_err_set(err, "request body: %zu bytes, at most %d", len,
				   MSE_COORD_MAX_SMALL_BODY);
	j = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, NULL);
	if (!j || !json_is_object(j)) {
		json_decref(j);
		return mse_err_expect(err, "body", "a JSON object {\"instance\": NAME}", "something else");
	}
	json_object_foreach(j, k, v) {
		if (strcmp(k, "instance") != 0) {
			json_decref(j);
			return mse_err_field(err, "body", "unknown key");
		}
		if (!json_is_string(v) || json_string_length(v) > 64 || json_string_length(v) == 0) {
			json_decref(j);
			return mse_err_expect(err, "instance", "a name of 1..64 characters",
					      "another value");
		}
		for (i = 0; i < json_string_length(v); i++) {
			char c = json_string_value(v)[i];

			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			      (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.')) {
				json_decref(j);
				return mse_err_expect(err, "instance", "A-Z a-z 0-9 - _ .",
						      "another character");
			}
		}
		snprintf(instance, 65, "%s", json_string_value(v));
	}
	json_decref(j);
	return 0;
}

static X509 *issue_leaf(struct mse_coord *co, EVP_PKEY *pub, struct mse_err *err)
{
	X509_NAME *subj = X509_NAME_new();
	X509 *c = NULL;
	char san[MSE_CMANIFEST_MAX_DNS * 260 + 1];
	size_t i, o = 0;
	time_t now = time(NULL);

	san[0] = '\0';
	for (i = 0; i < co->m.n_dns; i++)
		o += (size_t)snprintf(san + o, sizeof(san) - o, "%s%s:%s", i ? "," : "",
				      mse_cmanifest_is_ip(co->m.dns[i]) ? "IP" : "DNS", co->m.dns[i]);
	if (!subj || !X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_UTF8,
						 (const unsigned char *)co->m.dns[0], -1, -1, 0)) {
		mse_x509w_ossl_err(err, "leaf name");
		goto fail;
	}
	c = mse_x509w_cert_new(subj, X509_get_subject_name(co->ca_cert), pub, now - 300,
			       now + (time_t)MSE_COORD_LEAF_DAYS * 86400, err);
	if (!c || mse_x509w_add_ext(c, NULL, NID_basic_constraints, "critical,CA:FALSE", err) ||
	    mse_x509w_add_ext(c, NULL, NID_key_usage, "critical,digitalSignature", err) ||
	    mse_x509w_add_ext(c, NULL, NID_ext_key_usage, "serverAuth", err) ||
	    mse_x509w_add_ext(c, NULL, NID_subject_alt_name, san, err) ||
	    mse_x509w_add_ext(c, co->ca_cert, NID_authority_key_identifier, "keyid:always", err) ||
	    mse_x509w_sign(c, co->ca_key, err))
		goto fail;
	X509_NAME_free(subj);
	return c;
fail:
	X509_NAME_free(subj);
	X509_free(c);
	return NULL;
}

static void count_refusal_locked(struct mse_coord *co, const char *step)
{
	size_t i;

	for (i = 0; i < MAX_STEPS && co->refused_by[i].step[0]; i++)
		if (strcmp(co->refused_by[i].step, step) == 0)
			break;
	if (i == MAX_STEPS) /* full: the last slot counts the rest */
		i = MAX_STEPS - 1;
	else if (!co->refused_by[i].step[0])
		snprintf(co->refused_by[i].step, sizeof(co->refused_by[i].step), "%s",
			 i == MAX_STEPS - 1 ? "other" : step);
	co->refused_by[i].n++;
}

static void register_locked(struct mse_coord *co, const uint8_t key_hash[32],
			    const struct mse_sgx_report *rb, const char *instance, int *is_new)
{
	char k[65];
	size_t i;
	struct replica *r;
	int64_t now = (int64_t)time(NULL);

	*is_new = 0;
	hex32(k, key_hash);
	for (i = 0; i < co->n_reps; i++)
		if (strcmp(co->reps[i].key, k) == 0) {
			co->reps[i].last_seen = now;
			co->reps[i].attestations++;
			return;
		}
	if (co->n_reps >= MAX_REPLICAS)
		return;
	if (co->n_reps == co->cap_reps) {
		size_t nc = co->cap_reps ? co->cap_reps * 2 : 16;
		struct replica *nr = realloc(co->reps, nc * sizeof(*nr));

		if (!nr)
			return;
		co->reps = nr;
		co->cap_reps = nc;
	}
	r = &co->reps[co->n_reps++];
	memset(r, 0, sizeof(*r));
	snprintf(r->key, sizeof(r->key), "%s", k);
	hex32(r->mrenclave, rb->mr_enclave);
	hex32(r->mrsigner, rb->mr_signer);
	r->isvprodid = rb->isv_prod_id;
	r->isvsvn = rb->isv_svn;
	snprintf(r->instance, sizeof(r->instance), "%s", instance);
	r->first_seen = r->last_seen = now;
	r->attestations = 1;
	*is_new = 1;
}

int mse_coord_provision(struct mse_coord *co, X509 *peer, const char *remote,
			const char *instance, char **resp, size_t *resp_len, int *status,
			struct mse_err *err)
{
	struct mse_ratls rc_cert;
	struct mse_collateral pcoll;
	const struct mse_collateral *coll = co->cfg.coll;
	struct mse_verify_policy pol;
	struct mse_verify_result res;
	struct mse_cmanifest snap;
	uint8_t app_key[32], *sealed = NULL;
	char hk[65], hc[65], *b64 = NULL, *chain = NULL, *leaf_pem = NULL, *text = NULL;
	size_t sealed_len = 0;
	X509 *leaf = NULL;
	json_t *j = NULL;
	int rc = -1, is_new = 0, verified;

	memset(&rc_cert, 0, sizeof(rc_cert));
	memset(&pcoll, 0, sizeof(pcoll));
	memset(&res, 0, sizeof(res));
	*resp = NULL;
	*resp_len = 0;
	*status = 403;
	if (!peer) {
		mse_err_step(err, "client-certificate");
		mse_err_set(err, "no client certificate: a replica connects with its RA-TLS "
				 "certificate");
		goto refused;
	}
	pthread_mutex_lock(&co->mu);
	if (!co->has_manifest) {
		pthread_mutex_unlock(&co->mu);
		*status = 503;
		mse_err_step(err, "manifest");
		mse_err_set(err, "no manifest yet: the owner has not configured this coordinator");
		goto refused;
	}
	/* The policy, copied: verification runs without the lock. */
	snap = co->m;
	snap.sealed_code_key = snap.sealed_secrets = snap.sealed_to_seal = NULL;
	pthread_mutex_unlock(&co->mu);
	if (mse_ratls_from_x509(&rc_cert, peer, err) != 0)
		goto refused;
	memset(&pol, 0, sizeof(pol));
	pol.accept_status = snap.accept_status;
	pol.accept_expired_collateral = snap.accept_expired_collateral;
	pol.allow_simulation = snap.allow_simulation && co->cfg.sim_root_der != NULL;
	pol.sim_root_der = co->cfg.sim_root_der;
	pol.sim_root_len = co->cfg.sim_root_len;
	if (!co->cfg.coll && co->cfg.pccs) {
		/* Intel's collateral for this replica's platform, or no replica. */
		if (mse_pccs_collateral_for_quote(co->cfg.pccs, rc_cert.quote, rc_cert.quote_len,
						  &pcoll, err) != 0) {
			mse_err_prefix(err, "the replica's collateral");
			goto refused;
		}
		coll = &pcoll;
	}
	if (!coll) {
		mse_err_step(err, "collateral");
		mse_err_set(err, "no collateral to verify replicas with (neither --collateral nor a PCCS)");
		goto refused;
	}
	pthread_mutex_lock(&co->vmu);
	verified = mse_verify_ratls(&rc_cert, coll, &pol, co->vcache, &res, err) == 0;
	pthread_mutex_unlock(&co->vmu);
	if (!verified) {
		if (!snap.allow_simulation && res.steps[MSE_STEP_PCK_CHAIN] == MSE_STEP_FAILED &&
		    co->cfg.sim_root_der)
			mse_err_prefix(err, "simulation quotes are refused by the manifest");
		goto refused;
	}
	if (mse_cmanifest_match(&snap, res.report.mr_enclave, res.report.mr_signer,
				res.report.isv_prod_id, res.report.isv_svn, err) < 0)
		goto refused;
	if (mse_seal_check_public_key(res.report.report_data + 32, err) != 0) {
		mse_err_step(err, "binding");
		goto refused;
	}
	/* Accepted: everything below goes to this replica only. */
	*status = 500;
	pthread_mutex_lock(&co->mu);
	if (!co->has_manifest || strcmp(co->m.deployment_id, snap.deployment_id) != 0) {
		pthread_mutex_unlock(&co->mu);
		mse_err_set(err, "the manifest changed during the attestation: retry");
		*status = 503;
		goto out;
	}
	if (mse_ckeys_app_key(co->root, co->m.app, co->m.app_len, app_key, err) != 0 ||
	    !(leaf = issue_leaf(co, X509_get0_pubkey(peer), err)) ||
	    mse_x509w_cert_pem(leaf, &leaf_pem, err) != 0) {
		pthread_mutex_unlock(&co->mu);
		goto out;
	}
	if (co->to_seal &&
	    mse_seal_seal(res.report.report_data + 32, co->to_seal, co->to_seal_len, &sealed,
			  &sealed_len, err) != 0) {
		pthread_mutex_unlock(&co->mu);
		goto out;
	}
	if (sealed) {
		size_t cap = mse_b64_encoded_size(sealed_len, MSE_B64_URL_NOPAD);

		if (!(b64 = malloc(cap)) ||
		    mse_b64_encode(b64, cap, sealed, sealed_len, MSE_B64_URL_NOPAD) != 0) {
			pthread_mutex_unlock(&co->mu);
			mse_err_set(err, "out of memory");
			goto out;
		}
	}
	if (asprintf(&chain, "%s%s", leaf_pem, co->ca_pem) < 0) {
		chain = NULL;
		pthread_mutex_unlock(&co->mu);
		mse_err_set(err, "out of memory");
		goto out;
	}
	hex32(hk, app_key);
	hex32(hc, co->code_key);
	j = json_pack("{s:s,s:I,s:s%,s:s,s:s,s:s}", "deployment_id", co->m.deployment_id, "seq",
		      (json_int_t)co->m.seq, "app", co->m.app, co->m.app_len, "certificate_chain",
		      chain, "ca", co->ca_pem, "app_key", hk);
	if (j && !co->m.plaincode)
		json_object_set_new(j, "code_secret_key", json_string(hc));
	if (j)
		json_object_set_new(j, "app_secrets",
				    co->secrets ? json_stringn(co->secrets, co->secrets_len)
						: json_null());
	if (j)
		json_object_set_new(j, "app_sealed_secrets", b64 ? json_string(b64) : json_null());
	register_locked(co, rc_cert.key_hash, &res.report, instance, &is_new);
	co->accepted++;
	co->registry_dirty |= is_new;
	if (co->registry_dirty && (int64_t)time(NULL) - co->last_save >= 1) {
		struct mse_err e;

		mse_err_clear(&e);
		if (save_state_locked(co, &e) != 0)
			mse_warn("could not save the replica registry: %s", e.msg);
	}
	pthread_mutex_unlock(&co->mu);
	if (!j || !(text = json_dumps(j, JSON_COMPACT))) {
		mse_err_set(err, "out of memory");
		goto out;
	}
	{
		char mre[65];

		hex32(mre, res.report.mr_enclave);
		mse_info("replica %s%s%s attested (mrenclave %s, TCB %s%s): provisioned", remote,
			 *instance ? " " : "", instance, mre, mse_tcb_status_name(res.status),
			 (res.flags & MSE_VERIFY_F_SIMULATION) ? ", SIMULATION" : "");
	}
	*resp = text;
	*resp_len = strlen(text);
	text = NULL;
	*status = 200;
	rc = 0;
	goto out;
refused:
	pthread_mutex_lock(&co->mu);
	co->refused++;
	count_refusal_locked(co, err && err->step[0] ? err->step : "other");
	pthread_mutex_unlock(&co->mu);
	mse_warn("replica %s%s%s refused at [%s]: %s", remote, *instance ? " " : "", instance,
		 err && err->step[0] ? err->step : "?", err ? err->msg : "");
out:
	sodium_memzero(app_key, sizeof(app_key));
	sodium_memzero(hc, sizeof(hc));
	sodium_memzero(hk, sizeof(hk));
	if (j) {
		/* jansson frees through the wiping allocator when installed. */
		json_decref(j);
	}
	free(text);
	free(b64);
	free(sealed);
	free(chain);
	free(leaf_pem);
	X509_free(leaf);
	mse_ratls_free(&rc_cert);
	mse_collateral_free(&pcoll);
	return rc;
}

/* ---- the HTTP side ------------------------------------------------------------ */

static int answer(struct mse_exchange *x, int status, const char *ctype, const char *body,
		  size_t len, int retry_after)
{
	char cl[32];
	struct mse_http_header h[4];
	size_t n = 0;

	snprintf(cl, sizeof(cl), "%zu", len);
	h[n++] = (struct mse_http_header){"Content-Type", 12, ctype, strlen(ctype)};
	h[n++] = (struct mse_http_header){"Content-Length", 14, cl, strlen(cl)};
	h[n++] = (struct mse_http_header){"Cache-Control", 13, "no-store", 8};
	if (retry_after)
		h[n++] = (struct mse_http_header){"Retry-After", 11, "1", 1};
	if (mse_exchange_start(x, status, NULL, h, n) != 0)
		return -1;
	if (len && mse_exchange_write(x, body, len) != 0)
		return -1;
	return mse_exchange_finish(x);
}

static int answer_json(struct mse_exchange *x, int status, json_t *j)
{
	char *t = j ? json_dumps(j, JSON_COMPACT) : NULL;
	int rc;

	json_decref(j);
	if (!t)
		return answer(x, 500, "text/plain", "out of memory\n", 14, 0);
	rc = answer(x, status, "application/json", t, strlen(t), 0);
	free(t);
	return rc;
}

static int answer_err(struct mse_exchange *x, int status, const struct mse_err *e)
{
	char msg[1600];

	mse_err_str(e, msg, sizeof(msg));
	return answer_json(x, status,
			   json_pack("{s:s,s:s}", "step", e->step[0] ? e->step : "request", "error",
				     msg));
}

/* Reads the whole body up to max bytes. 0 ok, 413 too big, -1 read error. */
static int read_body(struct mse_exchange *x, size_t max, uint8_t **out, size_t *len)
{
	size_t cap = 0, n = 0;
	uint8_t *p = NULL;

	*out = NULL;
	*len = 0;
	if (x->req->content_length > (int64_t)max)
		return 413;
	for (;;) {
		ssize_t r;

		if (n == cap) {
			size_t nc = cap ? cap * 2 : 4096;
			uint8_t *np;

			if (nc > max + 1)
				nc = max + 1;
			if (n == nc) {
				free(p);
				return 413;
			}
			if (!(np = realloc(p, nc))) {
				free(p);
				return -1;
			}
			p = np;
			cap = nc;
		}
		r = mse_exchange_read_body(x, p + n, cap - n);
		if (r < 0) {
			free(p);
			return -1;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > max) {
			free(p);
			return 413;
		}
	}
	*out = p;
	*len = n;
	return 0;
}

static int rate_ok(struct mse_coord *co, const char *addr)
{
	uint32_t h = 2166136261u;
	const char *p;
	struct rate_slot *s;
	int64_t now = (int64_t)time(NULL);
	int ok;

	for (p = addr; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	pthread_mutex_lock(&co->mu);
	s = &co->rate[h % RATE_SLOTS];
	if (s->sec != now || strcmp(s->addr, addr) != 0) {
		snprintf(s->addr, sizeof(s->addr), "%s", addr);
		s->sec = now;
		s->count = 0;
	}
	ok = ++s->count <= co->cfg.rate_per_sec;
	pthread_mutex_unlock(&co->mu);
	return ok;
}

static int is(const struct mse_http_request *r, const char *method, const char *path)
{
	return r->method_len == strlen(method) && memcmp(r->method, method, r->method_len) == 0 &&
	       r->path_len == strlen(path) && memcmp(r->path, path, r->path_len) == 0;
}

static int on_status(struct mse_coord *co, struct mse_exchange *x)
{
	char owner[65], sha[65];
	json_t *j;

	hex32(owner, co->cfg.owner_pk);
	pthread_mutex_lock(&co->mu);
	hex32(sha, co->manifest_sha);
	j = json_pack("{s:s,s:s,s:b,s:I,s:I,s:I}", "state",
		      co->recovery_needed ? "recovery-needed"
		      : co->has_manifest  ? "ready"
					  : "waiting-manifest",
		      "owner_key", owner,
		      "simulation", co->cfg.simulation, "replicas", (json_int_t)co->n_reps,
		      "attestations_accepted", (json_int_t)co->accepted, "attestations_refused",
		      (json_int_t)co->refused);
	if (j && co->has_manifest) {
		json_object_set_new(j, "deployment_id", json_string(co->m.deployment_id));
		json_object_set_new(j, "seq", json_integer((json_int_t)co->m.seq));
		json_object_set_new(j, "manifest_sha256", json_string(sha));
		json_object_set_new(j, "app", json_stringn(co->m.app, co->m.app_len));
		json_object_set_new(j, "recovery_key", json_boolean(co->m.has_recovery_key));
	}
	if (j) {
		/* Which replica runs which identity, and whether the manifest in
		 * force still accepts it (at most the 256 seen last). */
		json_t *list = json_array();
		size_t i, first = co->n_reps > 256 ? co->n_reps - 256 : 0;

		for (i = first; list && i < co->n_reps; i++) {
			const struct replica *r = &co->reps[i];
			uint8_t mre[32] = {0}, mrs[32] = {0};
			int current = 0;

			if (co->has_manifest && mse_hex_decode_exact(mre, 32, r->mrenclave, 64) == 0 &&
			    (!r->mrsigner[0] || mse_hex_decode_exact(mrs, 32, r->mrsigner, 64) == 0))
				current = mse_cmanifest_match(&co->m, mre, mrs, (uint16_t)r->isvprodid,
							      (uint16_t)r->isvsvn, NULL) >= 0;
			json_array_append_new(
				list, json_pack("{s:s,s:s,s:s,s:i,s:i,s:b,s:I,s:I}", "instance",
						r->instance, "mrenclave", r->mrenclave, "mrsigner",
						r->mrsigner, "isvprodid", (int)r->isvprodid, "isvsvn",
						(int)r->isvsvn, "accepted_now", current, "last_seen",
						(json_int_t)r->last_seen, "attestations",
						(json_int_t)r->attestations));
		}
		json_object_set_new(j, "replica_list", list ? list : json_array());
	}
	pthread_mutex_unlock(&co->mu);
	return answer_json(x, 200, j);
}

static int on_ca(struct mse_coord *co, struct mse_exchange *x)
{
	char *pem = NULL;
	int rc;

	pthread_mutex_lock(&co->mu);
	if (co->ca_pem)
		pem = strdup(co->ca_pem);
	pthread_mutex_unlock(&co->mu);
	if (!pem) {
		struct mse_err e;

		mse_err_clear(&e);
		mse_err_step(&e, "manifest");
		mse_err_set(&e, "no CA yet: the owner has not set a manifest");
		return answer_err(x, 503, &e);
	}
	rc = answer(x, 200, "application/x-pem-file", pem, strlen(pem), 0);
	free(pem);
	return rc;
}

/*
 * What the owner signs (POST /manifest, POST /recover): the Ed25519
 * signature in MSE_COORD_SIG_HEADER, checked for form before the body is
 * read, then the body, at most max bytes. 0: sig and *body (malloc'd) are
 * set. -1: the request is answered (403 without a well-formed signature,
 * 413 "WHAT too large") or the connection lost: the handler returns *rc.
 */
static int read_signed(struct mse_exchange *x, const char *what, size_t max, uint8_t sig[64],
		       uint8_t **body, size_t *len, int *rc)
{
	const struct mse_http_header *h = mse_http_find_header(x->req, MSE_COORD_SIG_HEADER);
	char msg[64];
	struct mse_err e;
	int st, n;

	mse_err_clear(&e);
	*body = NULL;
	*len = 0;
	if (!h) {
		mse_err_step(&e, "signature");
		mse_err_field(&e, MSE_COORD_SIG_HEADER, "missing: the owner signs the %s", what);
		*rc = answer_err(x, 403, &e);
		return -1;
	}
	if (mse_coord_parse_sig(h->value, h->value_len, sig, &e) != 0) {
		*rc = answer_err(x, 403, &e);
		return -1;
	}
	st = read_body(x, max, body, len);
	if (st == 413) {
		n = snprintf(msg, sizeof(msg), "%s too large\n", what);
		*rc = answer(x, 413, "text/plain", msg, (size_t)n, 0);
		return -1;
	}
	if (st < 0) {
		*rc = -1;
		return -1;
	}
	return 0;
}

static int on_manifest(struct mse_coord *co, struct mse_exchange *x)
{
	size_t len;
	uint8_t sig[64], *body = NULL, sha[32];
	struct mse_err e;
	int st, rc;
	char shx[65];

	mse_err_clear(&e);
	if (read_signed(x, "manifest", MSE_COORD_MAX_MANIFEST, sig, &body, &len, &rc) != 0)
		return rc;
	if (mse_coord_set_manifest(co, body, len, sig, &st, &e) != 0) {
		free(body);
		mse_warn("manifest refused (%d) at [%s]: %s", st, e.step, e.msg);
		return answer_err(x, st, &e);
	}
	crypto_hash_sha256(sha, body, len);
	free(body);
	hex32(shx, sha);
	{
		uint8_t *rb = NULL;
		size_t rl = 0;
		char *b64 = NULL;
		json_t *j;

		/* The state sealed to the owner's recovery key: recovery.bin. */
		if (mse_coord_recovery_bin(co, &rb, &rl, &e) == 0) {
			size_t cap = mse_b64_encoded_size(rl, MSE_B64_STD);

			if ((b64 = malloc(cap)) != NULL &&
			    mse_b64_encode(b64, cap, rb, rl, MSE_B64_STD) != 0) {
				free(b64);
				b64 = NULL;
			}
			free(rb);
		}
		pthread_mutex_lock(&co->mu);
		j = json_pack("{s:s,s:I,s:s}", "deployment_id", co->m.deployment_id, "seq",
			      (json_int_t)co->m.seq, "manifest_sha256", shx);
		pthread_mutex_unlock(&co->mu);
		if (j && b64)
			json_object_set_new(j, "recovery", json_string(b64));
		free(b64);
		rc = answer_json(x, 200, j);
	}
	return rc;
}

static int on_replica(struct mse_coord *co, struct mse_exchange *x)
{
	char instance[65], remote[96], *resp = NULL;
	uint8_t *body = NULL;
	size_t len = 0, rl = 0;
	X509 *peer = NULL;
	struct mse_err e;
	int st, rc;

	mse_err_clear(&e);
	snprintf(remote, sizeof(remote), "%s:%u", x->conn->remote_addr, x->conn->remote_port);
	st = read_body(x, MSE_COORD_MAX_SMALL_BODY, &body, &len);
	if (st == 413)
		return answer(x, 413, "text/plain", "body too large\n", 15, 0);
	if (st < 0)
		return -1;
	if (mse_coord_parse_replica_req(body, len, instance, &e) != 0) {
		free(body);
		return answer_err(x, 400, &e);
	}
	free(body);
	if (x->conn->tls)
		peer = SSL_get1_peer_certificate((SSL *)x->conn->tls);
	rc = mse_coord_provision(co, peer, remote, instance, &resp, &rl, &st, &e);
	X509_free(peer);
	if (rc != 0)
		return answer_err(x, st, &e);
	rc = answer(x, 200, "application/json", resp, rl, 0);
	mse_file_free_secret(resp, rl);
	return rc;
}

static int on_metrics(struct mse_coord *co, struct mse_exchange *x)
{
	char *c = mse_coord_metrics(co), *h = mse_metrics_render(), *t = NULL;
	int rc;

	/* The coordinator's families, then its HTTP server's (net/metrics.h). */
	if (c && h && asprintf(&t, "%s%s", c, h) < 0)
		t = NULL;
	free(c);
	free(h);
	if (!t)
		return answer(x, 500, "text/plain", "out of memory\n", 14, 0);
	rc = answer(x, 200, "text/plain; version=0.0.4; charset=utf-8", t, strlen(t), 0);
	free(t);
	return rc;
}

static int on_recover(struct mse_coord *co, struct mse_exchange *x)
{
	size_t len = 0;
	uint8_t sig[64], *body = NULL;
	struct mse_err e;
	int st, rc;

	mse_err_clear(&e);
	if (read_signed(x, "recovery", MSE_COORD_MAX_RECOVERY, sig, &body, &len, &rc) != 0)
		return rc;
	rc = mse_coord_recover(co, body, len, sig, &st, &e);
	free(body);
	if (rc != 0) {
		mse_warn("recovery refused (%d) at [%s]: %s", st, e.step, e.msg);
		return answer_err(x, st, &e);
	}
	return on_status(co, x);
}

int mse_coord_handle(struct mse_exchange *x, void *user)
{
	struct mse_coord *co = user;
	const struct mse_http_request *r = x->req;

	if (!rate_ok(co, x->conn->remote_addr))
		return answer(x, 429, "text/plain", "too many requests\n", 18, 1);
	if (is(r, "GET", "/status"))
		return on_status(co, x);
	if (is(r, "GET", "/metrics"))
		return on_metrics(co, x);
	if (is(r, "POST", "/recover"))
		return on_recover(co, x);
	if (mse_coord_recovery_needed(co)) {
		struct mse_err e;

		mse_err_clear(&e);
		mse_err_step(&e, "recovery");
		mse_err_set(&e, "recovery needed: this coordinator cannot open its sealed state "
				"(another machine or coordinator version); only `mse coordinator "
				"recover` is accepted");
		return answer_err(x, 503, &e);
	}
	if (is(r, "GET", "/ca"))
		return on_ca(co, x);
	if (is(r, "POST", "/manifest"))
		return on_manifest(co, x);
	if (is(r, "POST", "/replica"))
		return on_replica(co, x);
	return answer(x, 404, "text/plain", "not found\n", 10, 0);
}
