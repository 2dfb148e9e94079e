/* SPDX-License-Identifier: Apache-2.0 */
#include "attest/sim.h"

#include <errno.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include "attest/der.h"
#include "attest/x509w.h"
#include "common/file.h"
#include "common/hex.h"

_Static_assert(MSE_SGX_QUOTE_HEADER_LEN == 2 + 2 + 4 + 2 + 2 + 16 + 20, "quote v3 header");
_Static_assert(MSE_SGX_REPORT_BODY_LEN == 16 + 4 + 28 + 16 + 32 + 32 + 32 + 96 + 2 + 2 + 60 + 64,
	       "SGX report body");

#define SGX_EXT_OID "1.2.840.113741.1.13.1"
#define DAY (24L * 3600L)
#define YEAR (365L * DAY)

/* Intel's QE vendor ID (quote header, ECDSA Quote Library API A.4). */
static const uint8_t QE_VENDOR_INTEL[16] = {0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9,
					    0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07};
/* The simulated platform's TCB components = its CPUSVN bytes. */
static const uint8_t SIM_CPUSVN[16] = {14, 14, 3, 3, 255, 255, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0};
static const uint8_t OLD_CPUSVN[16] = {12, 12, 3, 3, 255, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};

struct mse_sim {
	EVP_PKEY *pck_key;
	EVP_PKEY *attest_key;
	char *pck_chain; /* leaf, PCK CA, root (PEM) */
	size_t pck_chain_len;
	char *signer_pem;
	uint8_t mrsigner[32];
	uint8_t root_secret[32];
};

int mse_sim_root_from_hex(const char *hex, uint8_t **der, size_t *len, struct mse_err *err)
{
	static const char *const want =
		"a simulation root CA's DER in lowercase hex (an even number of digits, 2 to 4096)";
	size_t n = strlen(hex), bad = strspn(hex, "0123456789abcdef");
	char got[96];

	if (bad != n)
		snprintf(got, sizeof(got), "'%c' (byte 0x%02x) at offset %zu",
			 isprint((unsigned char)hex[bad]) ? hex[bad] : '?',
			 (unsigned)(unsigned char)hex[bad], bad);
	else if (n < 2 || n % 2 || n > MSE_SIM_ROOT_HEX_MAX)
		snprintf(got, sizeof(got), "%zu digits", n);
	if (bad != n || n < 2 || n % 2 || n > MSE_SIM_ROOT_HEX_MAX) {
		mse_err_field(err, "--trust-sim-root", "not a simulation root CA");
		return mse_err_mismatch(err, want, got);
	}
	if (!der)
		return 0;
	if (!(*der = malloc(n / 2)))
		return mse_err_set(err, "out of memory");
	if (mse_hex_decode_exact(*der, n / 2, hex, n) != 0) {
		free(*der);
		*der = NULL;
		return mse_err_expect(err, "--trust-sim-root", want, "undecodable hex");
	}
	*len = n / 2;
	return 0;
}

int mse_sim_dir(char *out, size_t size, struct mse_err *err)
{
	const char *d = getenv(MSE_SIM_DIR_ENV), *home = getenv("HOME");
	int n;

	if (d && *d)
		n = snprintf(out, size, "%s", d);
	else if (home && *home)
		n = snprintf(out, size, "%s/.config/mse/sim", home);
	else
		return mse_err_set(err, "neither $%s nor $HOME is set: cannot locate the "
					"simulation directory",
				   MSE_SIM_DIR_ENV);
	if (n < 0 || (size_t)n >= size)
		return mse_err_set(err, "simulation directory path too long");
	return 0;
}

static int path_join(char *out, size_t size, const char *dir, const char *name)
{
	int n = snprintf(out, size, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= size ? -1 : 0;
}

int mse_sim_exists(const char *dir)
{
	char p[4096];

	return path_join(p, sizeof(p), dir, "root_ca.der") == 0 && mse_file_exists(p) &&
	       path_join(p, sizeof(p), dir, "keys/attestation.key.pem") == 0 && mse_file_exists(p);
}

static int hkdf_sha256(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
		       const char *info, uint8_t *out, size_t out_len, struct mse_err *err)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	size_t n = out_len;
	int rc = -1;

	if (!c || EVP_PKEY_derive_init(c) <= 0 || EVP_PKEY_CTX_set_hkdf_md(c, EVP_sha256()) <= 0 ||
	    (salt_len && EVP_PKEY_CTX_set1_hkdf_salt(c, salt, (int)salt_len) <= 0) ||
	    EVP_PKEY_CTX_set1_hkdf_key(c, ikm, (int)ikm_len) <= 0 ||
	    EVP_PKEY_CTX_add1_hkdf_info(c, (const unsigned char *)info, (int)strlen(info)) <= 0 ||
	    EVP_PKEY_derive(c, out, &n) <= 0 || n != out_len)
		mse_x509w_ossl_err(err, "HKDF");
	else
		rc = 0;
	EVP_PKEY_CTX_free(c);
	return rc;
}

/* ---- creation ------------------------------------------------------------ */

/*
 * The SGX extension of a PCK certificate (Intel SGX PCK Certificate and CRL
 * Profile §1.5): SEQUENCE of SEQUENCE { OID, value } for PPID (.1), TCB (.2:
 * 16 component SVNs .2.1–.2.16, PCESVN .2.17, CPUSVN .2.18), PCE-ID (.3),
 * FMSPC (.4), SGX type (.5, ENUMERATED, 1 = scalable), and for a Platform
 * CA leaf the platform instance ID (.6) and configuration (.7).
 */
static int sgx_extension(const uint8_t ppid[16], const uint8_t instance[16], uint8_t **out,
			 size_t *len)
{
	struct mse_der d;
	uint8_t fmspc[6], pceid[2];
	char oid[64];
	int i;

	if (mse_hex_decode_exact(fmspc, 6, MSE_SIM_FMSPC, 12) != 0 ||
	    mse_hex_decode_exact(pceid, 2, MSE_SIM_PCE_ID, 4) != 0)
		return -1;
	mse_der_init(&d);
	mse_der_begin(&d, MSE_DER_SEQUENCE);

	mse_der_begin(&d, MSE_DER_SEQUENCE);
	mse_der_oid(&d, SGX_EXT_OID ".1");
	mse_der_prim(&d, MSE_DER_OCTET_STRING, ppid, 16);
	mse_der_end(&d);

	mse_der_begin(&d, MSE_DER_SEQUENCE);
	mse_der_oid(&d, SGX_EXT_OID ".2");
	mse_der_begin(&d, MSE_DER_SEQUENCE);
	for (i = 1; i <= 16; i++) {
		snprintf(oid, sizeof(oid), SGX_EXT_OID ".2.%d", i);
		mse_der_begin(&d, MSE_DER_SEQUENCE);
		mse_der_oid(&d, oid);
		mse_der_uint(&d, MSE_DER_INTEGER, SIM_CPUSVN[i - 1]);
		mse_der_end(&d);
	}
	mse_der_begin(&d, MSE_DER_SEQUENCE);
	mse_der_oid(&d, SGX_EXT_OID ".2.17");
	mse_der_uint(&d, MSE_DER_INTEGER, MSE_SIM_PCESVN);
	mse_der_end(&d);
	mse_der_begin(&d, MSE_DER_SEQUENCE);
	mse_der_oid(&d, SGX_EXT_OID ".2.18");
	mse_der_prim(&d, MSE_DER_OCTET_STRING, SIM_CPUSVN, 16);
	mse_der_end(&d);
	mse_der_end(&d);
	mse_der_end(&d);

	mse_der_begin(&d, MSE_DER_SEQUENCE);
	mse_der_oid(&d, SGX_EXT_OID ".3");
	mse_der_prim(&d, MSE_DER_OCTET_STRING, pceid, 2);
	mse_der_end(&d);

	mse_der_begin(&d, MSE_DER_SEQUENCE);
	mse_der_oid(&d, SGX_EXT_OID ".4");
	mse_der_prim(&d, MSE_DER_OCTET_STRING, fmspc, 6);
	mse_der_end(&d);

	mse_der_begin(&d, MSE_DER_SEQUENCE);
	mse_der_oid(&d, SGX_EXT_OID ".5");
	mse_der_uint(&d, MSE_DER_ENUMERATED, 1);
	mse_der_end(&d);

	mse_der_begin(&d, MSE_DER_SEQUENCE);
	mse_der_oid(&d, SGX_EXT_OID ".6");
	mse_der_prim(&d, MSE_DER_OCTET_STRING, instance, 16);
	mse_der_end(&d);

	mse_der_begin(&d, MSE_DER_SEQUENCE);
	mse_der_oid(&d, SGX_EXT_OID ".7");
	mse_der_begin(&d, MSE_DER_SEQUENCE);
	for (i = 1; i <= 3; i++) {
		snprintf(oid, sizeof(oid), SGX_EXT_OID ".7.%d", i);
		mse_der_begin(&d, MSE_DER_SEQUENCE);
		mse_der_oid(&d, oid);
		mse_der_bool(&d, i != 2); /* dynamicPlatform, cachedKeys, SMTEnabled */
		mse_der_end(&d);
	}
	mse_der_end(&d);
	mse_der_end(&d);

	mse_der_end(&d);
	return mse_der_take(&d, out, len);
}

static X509_NAME *sim_name(const char *cn)
{
	X509_NAME *n = X509_NAME_new();

	/* Intel's order (CN, O, L, ST, C), but never Intel's names. */
	if (!n || !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
					      -1, 0) ||
	    !X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8,
					(const unsigned char *)"mse-c SGX simulation (not Intel)", -1,
					-1, 0)) {
		X509_NAME_free(n);
		return NULL;
	}
	return n;
}

static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
		       time_t nb, time_t na, const char *bc, const char *ku, struct mse_err *err)
{
	X509_NAME *subj = sim_name(cn);
	X509 *c = NULL;

	if (!subj) {
		mse_x509w_ossl_err(err, "certificate name");
		return NULL;
	}
	c = mse_x509w_cert_new(subj, issuer ? X509_get_subject_name(issuer) : subj, key, nb, na, err);
	X509_NAME_free(subj);
	if (!c)
		return NULL;
	if (mse_x509w_add_ext(c, issuer, NID_subject_key_identifier, "hash", err) != 0 ||
	    mse_x509w_add_ext(c, issuer, NID_authority_key_identifier, "keyid:always", err) != 0 ||
	    mse_x509w_add_ext(c, issuer, NID_key_usage, ku, err) != 0 ||
	    mse_x509w_add_ext(c, issuer, NID_basic_constraints, bc, err) != 0) {
		X509_free(c);
		return NULL;
	}
	(void)issuer_key;
	return c;
}

static void iso_time(char out[32], time_t t)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/*
 * Wraps a JSON object as Intel's PCS v4 does: {"NAME":<text>,"signature":
 * "<hex r‖s>"}, where the signature is ECDSA-P256-SHA256 over the exact bytes
 * of <text> (PCS API v4, "Get TCB Info" / "Get Quoting Enclave Identity").
 */
static int signed_json(const char *name, json_t *obj, EVP_PKEY *key, char **out,
		       struct mse_err *err)
{
	char *text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
	uint8_t sig[64];
	char sighex[129];
	size_t n;
	int rc = -1;

	if (!text)
		return mse_err_set(err, "out of memory");
	if (mse_x509w_sign_raw(key, text, strlen(text), sig, err) != 0 ||
	    mse_hex_encode(sighex, sizeof(sighex), sig, 64) != 0)
		goto out;
	n = strlen(name) + strlen(text) + 160;
	*out = malloc(n);
	if (!*out) {
		mse_err_set(err, "out of memory");
		goto out;
	}
	snprintf(*out, n, "{\"%s\":%s,\"signature\":\"%s\"}", name, text, sighex);
	rc = 0;
out:
	free(text);
	return rc;
}

static json_t *tcb_level(const uint8_t cpusvn[16], int pcesvn, const char *date,
			 const char *status, const char *advisory)
{
	json_t *comps = json_array(), *lvl;
	int i;

	for (i = 0; i < 16; i++)
		json_array_append_new(comps, json_pack("{s:i}", "svn", cpusvn[i]));
	lvl = json_pack("{s:{s:o,s:i},s:s,s:s}", "tcb", "sgxtcbcomponents", comps, "pcesvn", pcesvn,
			"tcbDate", date, "tcbStatus", status);
	if (lvl && advisory)
		json_object_set_new(lvl, "advisoryIDs", json_pack("[s]", advisory));
	return lvl;
}

/* TCB info v3 (PCS v4): the simulated platform's level is UpToDate. */
static int make_tcb_info(EVP_PKEY *key, time_t now, char **out, struct mse_err *err)
{
	char issue[32], next[32];
	json_t *levels, *info;
	int rc;

	iso_time(issue, now);
	iso_time(next, now + MSE_SIM_COLLATERAL_DAYS * DAY);
	levels = json_pack("[o,o]",
			   tcb_level(SIM_CPUSVN, MSE_SIM_PCESVN, "2024-03-13T00:00:00Z", "UpToDate",
				     NULL),
			   tcb_level(OLD_CPUSVN, MSE_SIM_PCESVN - 2, "2019-11-13T00:00:00Z",
				     "OutOfDate", "INTEL-SA-00615"));
	info = json_pack("{s:s,s:i,s:s,s:s,s:s,s:s,s:i,s:i,s:o}", "id", "SGX", "version", 3,
			 "issueDate", issue, "nextUpdate", next, "fmspc", MSE_SIM_FMSPC, "pceId",
			 MSE_SIM_PCE_ID, "tcbType", 0, "tcbEvaluationDataNumber", 17, "tcbLevels",
			 levels);
	if (!info)
		return mse_err_set(err, "out of memory");
	rc = signed_json("tcbInfo", info, key, out, err);
	json_decref(info);
	return rc;
}

/* The simulated QE's MRSIGNER (a fixed, recognisably non-Intel value). */
static void qe_mrsigner(uint8_t out[32])
{
	static const char tag[] = "mse-c/sim/qe-mrsigner/v1";

	SHA256((const unsigned char *)tag, sizeof(tag) - 1, out);
}

/* QE identity v2 (PCS v4 "enclaveIdentity"). */
static int make_qe_identity(EVP_PKEY *key, time_t now, char **out, struct mse_err *err)
{
	char issue[32], next[32], mrs[65];
	uint8_t m[32];
	json_t *id;
	size_t i;
	int rc;

	iso_time(issue, now);
	iso_time(next, now + MSE_SIM_COLLATERAL_DAYS * DAY);
	qe_mrsigner(m);
	if (mse_hex_encode(mrs, sizeof(mrs), m, 32) != 0)
		return mse_err_set(err, "hex");
	for (i = 0; mrs[i]; i++)
		if (mrs[i] >= 'a' && mrs[i] <= 'f')
			mrs[i] = (char)(mrs[i] - 'a' + 'A');
	id = json_pack("{s:s,s:i,s:s,s:s,s:i,s:s,s:s,s:s,s:s,s:s,s:i,s:[{s:{s:i},s:s,s:s},"
		       "{s:{s:i},s:s,s:s,s:[s]}]}",
		       "id", "QE", "version", 2, "issueDate", issue, "nextUpdate", next,
		       "tcbEvaluationDataNumber", 17, "miscselect", "00000000", "miscselectMask",
		       "FFFFFFFF", "attributes", "11000000000000000000000000000000",
		       "attributesMask", "FBFFFFFFFFFFFFFF0000000000000000", "mrsigner", mrs,
		       "isvprodid", MSE_SIM_QE_ISVPRODID, "tcbLevels", "tcb", "isvsvn",
		       MSE_SIM_QE_ISVSVN, "tcbDate", "2024-03-13T00:00:00Z", "tcbStatus",
		       "UpToDate", "tcb", "isvsvn", MSE_SIM_QE_ISVSVN - 2, "tcbDate",
		       "2021-11-10T00:00:00Z", "tcbStatus", "OutOfDate", "advisoryIDs",
		       "INTEL-SA-00615");
	if (!id)
		return mse_err_set(err, "out of memory");
	rc = signed_json("enclaveIdentity", id, key, out, err);
	json_decref(id);
	return rc;
}

struct pki {
	EVP_PKEY *root_key, *pck_ca_key, *pck_key, *tcb_key, *attest_key, *signer_key;
	X509 *root, *pck_ca, *pck, *tcb;
	X509_CRL *root_crl, *pck_crl;
};

static void pki_free(struct pki *p)
{
	EVP_PKEY_free(p->root_key);
	EVP_PKEY_free(p->pck_ca_key);
	EVP_PKEY_free(p->pck_key);
	EVP_PKEY_free(p->tcb_key);
	EVP_PKEY_free(p->attest_key);
	EVP_PKEY_free(p->signer_key);
	X509_free(p->root);
	X509_free(p->pck_ca);
	X509_free(p->pck);
	X509_free(p->tcb);
	X509_CRL_free(p->root_crl);
	X509_CRL_free(p->pck_crl);
}

static int write_text(const char *dir, const char *name, const char *text, mode_t mode,
		      struct mse_err *err)
{
	char p[4096];

	if (path_join(p, sizeof(p), dir, name) != 0)
		return mse_err_set(err, "path too long");
	return mse_file_write_new(p, text, strlen(text), mode, err);
}

static int write_bytes(const char *dir, const char *name, const void *data, size_t len,
		       mode_t mode, struct mse_err *err)
{
	char p[4096];

	if (path_join(p, sizeof(p), dir, name) != 0)
		return mse_err_set(err, "path too long");
	return mse_file_write_new(p, data, len, mode, err);
}

static int write_key(const char *dir, const char *name, EVP_PKEY *k, struct mse_err *err)
{
	char *pem = NULL;
	size_t len = 0;
	int rc;

	if (mse_x509w_key_pem(k, &pem, &len, err) != 0)
		return -1;
	rc = write_bytes(dir, name, pem, len, MSE_MODE_SECRET, err);
	mse_file_free_secret(pem, len);
	return rc;
}

static int write_crl(const char *dir, const char *name, X509_CRL *crl, struct mse_err *err)
{
	unsigned char *der = NULL;
	int n = i2d_X509_CRL(crl, &der), rc;

	if (n <= 0)
		return mse_x509w_ossl_err(err, "CRL encoding");
	rc = write_bytes(dir, name, der, (size_t)n, MSE_MODE_PUBLIC, err);
	OPENSSL_free(der);
	return rc;
}

/* PEM of several certificates, in order. */
static int chain_pem(X509 *const *certs, size_t n, char **out, struct mse_err *err)
{
	size_t i, total = 0;
	char *pems[4] = {NULL, NULL, NULL, NULL};
	int rc = -1;

	for (i = 0; i < n && i < 4; i++) {
		if (mse_x509w_cert_pem(certs[i], &pems[i], err) != 0)
			goto out;
		total += strlen(pems[i]);
	}
	*out = malloc(total + 1);
	if (!*out) {
		mse_err_set(err, "out of memory");
		goto out;
	}
	**out = '\0';
	for (i = 0; i < n && i < 4; i++)
		strcat(*out, pems[i]);
	rc = 0;
out:
	for (i = 0; i < 4; i++)
		free(pems[i]);
	return rc;
}

static int generate(const char *dir, struct mse_err *err)
{
	struct pki p = {0};
	time_t now = time(NULL), nb = now - 3600;
	uint8_t secret[32], ppid[16], instance[16];
	uint8_t *ext = NULL, *der = NULL;
	size_t ext_len = 0, der_len = 0;
	char *pem = NULL, *json = NULL, kdir[4096], cdir[4096], revoked[41];
	X509 *chain[3];
	const char *revoked_list[1] = {revoked};
	int rc = -1;

	randombytes_buf(secret, sizeof(secret));
	randombytes_buf(ppid, sizeof(ppid));
	randombytes_buf(instance, sizeof(instance));
	{
		uint8_t r[20];

		/* One revoked serial that is no one's, so CRL lookups are exercised. */
		randombytes_buf(r, sizeof(r));
		r[0] = (uint8_t)((r[0] & 0x7f) | 0x10);
		if (mse_hex_encode(revoked, sizeof(revoked), r, sizeof(r)) != 0)
			goto out;
	}
	if (path_join(kdir, sizeof(kdir), dir, "keys") != 0 ||
	    path_join(cdir, sizeof(cdir), dir, "collateral") != 0) {
		mse_err_set(err, "path too long");
		goto out;
	}
	if (mkdir(kdir, 0700) != 0 || mkdir(cdir, 0755) != 0) {
		mse_err_set(err, "cannot create %s: %s", kdir, strerror(errno));
		goto out;
	}
	if (!(p.root_key = mse_x509w_p256_new(err)) || !(p.pck_ca_key = mse_x509w_p256_new(err)) ||
	    !(p.pck_key = mse_x509w_p256_new(err)) || !(p.tcb_key = mse_x509w_p256_new(err)) ||
	    !(p.attest_key = mse_x509w_p256_new(err)) ||
	    !(p.signer_key = mse_x509w_rsa_new(3072, 3, err)))
		goto out;
	/* The shapes of Intel's SGX Root CA, PCK Platform CA, PCK and TCB Signing certificates. */
	p.root = make_cert("mse-c Simulated SGX Root CA", p.root_key, NULL, NULL, nb, now + 25 * YEAR,
			   "critical,CA:TRUE,pathlen:1", "critical,keyCertSign,cRLSign", err);
	if (!p.root || mse_x509w_sign(p.root, p.root_key, err) != 0)
		goto out;
	p.pck_ca = make_cert("mse-c Simulated SGX PCK Platform CA", p.pck_ca_key, p.root,
			     p.root_key, nb, now + 15 * YEAR, "critical,CA:TRUE,pathlen:0",
			     "critical,keyCertSign,cRLSign", err);
	if (!p.pck_ca || mse_x509w_sign(p.pck_ca, p.root_key, err) != 0)
		goto out;
	p.tcb = make_cert("mse-c Simulated SGX TCB Signing", p.tcb_key, p.root, p.root_key, nb,
			  now + 7 * YEAR, "critical,CA:FALSE", "critical,digitalSignature,nonRepudiation",
			  err);
	if (!p.tcb || mse_x509w_sign(p.tcb, p.root_key, err) != 0)
		goto out;
	p.pck = make_cert("mse-c Simulated SGX PCK Certificate", p.pck_key, p.pck_ca, p.pck_ca_key,
			  nb, now + 7 * YEAR, "critical,CA:FALSE",
			  "critical,digitalSignature,nonRepudiation", err);
	if (!p.pck)
		goto out;
	if (sgx_extension(ppid, instance, &ext, &ext_len) != 0) {
		mse_err_set(err, "cannot encode the SGX extension");
		goto out;
	}
	if (mse_x509w_add_raw_ext(p.pck, SGX_EXT_OID, 0, ext, ext_len, err) != 0 ||
	    mse_x509w_sign(p.pck, p.pck_ca_key, err) != 0)
		goto out;
	p.root_crl = mse_x509w_crl_new(p.root, p.root_key, now, now + MSE_SIM_COLLATERAL_DAYS * DAY,
				       1, NULL, 0, err);
	p.pck_crl = mse_x509w_crl_new(p.pck_ca, p.pck_ca_key, now,
				      now + MSE_SIM_COLLATERAL_DAYS * DAY, 1, revoked_list, 1, err);
	if (!p.root_crl || !p.pck_crl)
		goto out;

	/* Keys first (0600 in a 0700 directory). */
	if (write_key(kdir, "root_ca.key.pem", p.root_key, err) != 0 ||
	    write_key(kdir, "pck_ca.key.pem", p.pck_ca_key, err) != 0 ||
	    write_key(kdir, "pck.key.pem", p.pck_key, err) != 0 ||
	    write_key(kdir, "tcb_signing.key.pem", p.tcb_key, err) != 0 ||
	    write_key(kdir, "attestation.key.pem", p.attest_key, err) != 0 ||
	    write_key(kdir, "signer.key.pem", p.signer_key, err) != 0 ||
	    write_bytes(kdir, "root_secret", secret, sizeof(secret), MSE_MODE_SECRET, err) != 0)
		goto out;
	/* Public material. */
	if (mse_x509w_cert_der(p.root, &der, &der_len, err) != 0 ||
	    write_bytes(dir, "root_ca.der", der, der_len, MSE_MODE_PUBLIC, err) != 0)
		goto out;
#define PUT_CERT(name, cert)                                                                       \
	do {                                                                                       \
		free(pem);                                                                         \
		pem = NULL;                                                                        \
		if (mse_x509w_cert_pem(cert, &pem, err) != 0 ||                                    \
		    write_text(dir, name, pem, MSE_MODE_PUBLIC, err) != 0)                         \
			goto out;                                                                  \
	} while (0)
	PUT_CERT("root_ca.pem", p.root);
	PUT_CERT("pck_ca.pem", p.pck_ca);
	PUT_CERT("pck.pem", p.pck);
	PUT_CERT("tcb_signing.pem", p.tcb);
#undef PUT_CERT
	free(pem);
	pem = NULL;
	if (mse_x509w_pub_pem(p.signer_key, &pem, err) != 0 ||
	    write_text(dir, "signer.pem", pem, MSE_MODE_PUBLIC, err) != 0)
		goto out;
	/* The collateral directory, as PCCS v4 would serve it. */
	chain[0] = p.tcb;
	chain[1] = p.root;
	free(pem);
	pem = NULL;
	if (chain_pem(chain, 2, &pem, err) != 0 ||
	    write_text(cdir, "tcb_info_issuer_chain.pem", pem, MSE_MODE_PUBLIC, err) != 0 ||
	    write_text(cdir, "qe_identity_issuer_chain.pem", pem, MSE_MODE_PUBLIC, err) != 0)
		goto out;
	chain[0] = p.pck_ca;
	free(pem);
	pem = NULL;
	if (chain_pem(chain, 2, &pem, err) != 0 ||
	    write_text(cdir, "pck_crl_issuer_chain.pem", pem, MSE_MODE_PUBLIC, err) != 0 ||
	    write_crl(cdir, "pck_crl.der", p.pck_crl, err) != 0 ||
	    write_crl(cdir, "root_ca_crl.der", p.root_crl, err) != 0)
		goto out;
	if (make_tcb_info(p.tcb_key, now, &json, err) != 0 ||
	    write_text(cdir, "tcb_info.json", json, MSE_MODE_PUBLIC, err) != 0)
		goto out;
	free(json);
	json = NULL;
	if (make_qe_identity(p.tcb_key, now, &json, err) != 0 ||
	    write_text(cdir, "qe_identity.json", json, MSE_MODE_PUBLIC, err) != 0)
		goto out;
	rc = 0;
out:
	sodium_memzero(secret, sizeof(secret));
	pki_free(&p);
	free(ext);
	free(der);
	free(pem);
	free(json);
	return rc;
}

int mse_sim_init(const char *dir, int force, struct mse_err *err)
{
	char tmp[4096], old[4096], parent[4096];
	char *slash;
	int rc = -1, have_tmp = 0;

	if (mse_sim_exists(dir) && !force) {
		mse_err_file(err, dir);
		return mse_err_set(err,
				   "simulation already initialised in %s (use --force to replace it; "
				   "quotes made with the old one will stop verifying)",
				   dir);
	}
	if (snprintf(parent, sizeof(parent), "%s", dir) >= (int)sizeof(parent))
		return mse_err_set(err, "path too long");
	slash = strrchr(parent, '/');
	if (slash && slash != parent) {
		*slash = '\0';
		if (mse_file_mkdirs(parent, 0700, err) != 0)
			return -1;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.new-XXXXXX", dir) >= (int)sizeof(tmp) ||
	    snprintf(old, sizeof(old), "%s.old-XXXXXX", dir) >= (int)sizeof(old))
		return mse_err_set(err, "path too long");
	if (!mkdtemp(tmp))
		return mse_err_set(err, "cannot create %s: %s", tmp, strerror(errno));
	have_tmp = 1;
	if (chmod(tmp, 0755) != 0 || generate(tmp, err) != 0)
		goto out;
	if (rename(tmp, dir) != 0) {
		if ((errno == ENOTEMPTY || errno == EEXIST) && !force && mse_sim_exists(dir)) {
			/* Created concurrently by another process: keep theirs. */
			rc = 0;
			goto out;
		}
		/* dir exists and is not empty: move it aside, then replace it. */
		if ((errno != ENOTEMPTY && errno != EEXIST) || !mkdtemp(old) || rename(dir, old) != 0 ||
		    rename(tmp, dir) != 0) {
			mse_err_set(err, "cannot install %s: %s", dir, strerror(errno));
			goto out;
		}
		if (mse_file_remove_tree(old, err) != 0)
			goto out;
	}
	have_tmp = 0;
	(void)mse_file_sync_dir(parent);
	rc = 0;
out:
	if (have_tmp) {
		struct mse_err ignored;

		if (mse_file_remove_tree(tmp, &ignored) != 0)
			mse_err_prefix(err, "(and %s could not be removed)", tmp);
	}
	return rc;
}

/* ---- use ----------------------------------------------------------------- */

void mse_sim_free(struct mse_sim *sim)
{
	if (!sim)
		return;
	EVP_PKEY_free(sim->pck_key);
	EVP_PKEY_free(sim->attest_key);
	free(sim->pck_chain);
	free(sim->signer_pem);
	sodium_memzero(sim, sizeof(*sim));
	free(sim);
}

int mse_sim_mrsigner_of_pem(const char *pem, size_t len, uint8_t out[32], struct mse_err *err)
{
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *k = NULL;
	BIGNUM *n = NULL;
	uint8_t mod[384];
	int rc = -1, i;

	if (!b)
		return mse_err_set(err, "out of memory");
	k = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
	if (!k) {
		(void)BIO_reset(b);
		k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	}
	if (!k || !EVP_PKEY_is_a(k, "RSA") ||
	    !EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_N, &n)) {
		mse_x509w_ossl_err(err, "reading the RSA signer key");
		goto out;
	}
	if (BN_num_bytes(n) != 384) {
		mse_err_set(err, "signer key: expected an RSA-3072 modulus, got %d bits",
			    BN_num_bits(n));
		goto out;
	}
	/* SIGSTRUCT stores the modulus little-endian. */
	if (BN_bn2lebinpad(n, mod, sizeof(mod)) != (int)sizeof(mod)) {
		mse_x509w_ossl_err(err, "modulus");
		goto out;
	}
	SHA256(mod, sizeof(mod), out);
	rc = 0;
out:
	(void)i;
	BN_free(n);
	EVP_PKEY_free(k);
	BIO_free(b);
	return rc;
}

int mse_sim_load(const char *dir, struct mse_sim **out, struct mse_err *err)
{
	struct mse_sim *s = calloc(1, sizeof(*s));
	char p[4096];
	uint8_t *data = NULL;
	size_t len = 0;
	const char *parts[3] = {"pck.pem", "pck_ca.pem", "root_ca.pem"};
	size_t i, total = 0;
	int rc = -1;

	*out = NULL;
	if (!s)
		return mse_err_set(err, "out of memory");
	if (!mse_sim_exists(dir)) {
		mse_err_file(err, dir);
		mse_err_set(err, "no SGX simulation in %s: run `mse sim init` first", dir);
		goto out;
	}
	if (path_join(p, sizeof(p), dir, "keys/pck.key.pem") != 0 ||
	    !(s->pck_key = mse_x509w_load_key(p, err)) ||
	    path_join(p, sizeof(p), dir, "keys/attestation.key.pem") != 0 ||
	    !(s->attest_key = mse_x509w_load_key(p, err)))
		goto out;
	if (path_join(p, sizeof(p), dir, "keys/root_secret") != 0 ||
	    mse_file_read(p, 64, &data, &len, err) != 0)
		goto out;
	if (len != sizeof(s->root_secret)) {
		mse_err_file(err, p);
		mse_err_set(err, "root_secret: expected 32 bytes, got %zu", len);
		goto out;
	}
	memcpy(s->root_secret, data, 32);
	mse_file_free_secret(data, len);
	data = NULL;
	if (path_join(p, sizeof(p), dir, "signer.pem") != 0 ||
	    mse_file_read(p, 1 << 16, &data, &len, err) != 0 ||
	    mse_sim_mrsigner_of_pem((const char *)data, len, s->mrsigner, err) != 0)
		goto out;
	s->signer_pem = (char *)data;
	data = NULL;
	s->pck_chain = malloc(1);
	if (!s->pck_chain) {
		mse_err_set(err, "out of memory");
		goto out;
	}
	s->pck_chain[0] = '\0';
	for (i = 0; i < 3; i++) {
		char *grown;

		if (path_join(p, sizeof(p), dir, parts[i]) != 0 ||
		    mse_file_read(p, 1 << 16, &data, &len, err) != 0)
			goto out;
		grown = realloc(s->pck_chain, total + len + 1);
		if (!grown) {
			mse_err_set(err, "out of memory");
			goto out;
		}
		s->pck_chain = grown;
		memcpy(s->pck_chain + total, data, len + 1);
		total += len;
		free(data);
		data = NULL;
	}
	s->pck_chain_len = total;
	*out = s;
	s = NULL;
	rc = 0;
out:
	free(data);
	mse_sim_free(s);
	return rc;
}

void mse_sim_mrsigner(const struct mse_sim *sim, uint8_t out[32])
{
	memcpy(out, sim->mrsigner, 32);
}

const char *mse_sim_signer_pem(const struct mse_sim *sim)
{
	return sim->signer_pem;
}

void mse_sim_default_attributes(uint8_t attributes[16])
{
	memset(attributes, 0, 16);
	attributes[0] = 0x05; /* INIT | MODE64BIT, DEBUG clear (SDM Vol. 3D §38.7.1) */
	attributes[8] = 0x03; /* XFRM: x87 | SSE */
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* An SGX report body (ECDSA Quote Library API, A.3.3 "Enclave Report Body"). */
static void report_body(uint8_t b[MSE_SGX_REPORT_BODY_LEN], const uint8_t cpusvn[16],
			const uint8_t attributes[16], const uint8_t mrenclave[32],
			const uint8_t mrsigner[32], uint16_t prod, uint16_t svn,
			const uint8_t report_data[64])
{
	memset(b, 0, MSE_SGX_REPORT_BODY_LEN);
	memcpy(b + 0, cpusvn, 16);
	/* miscselect (16..20) = 0, reserved/ext prod id (20..48) = 0 */
	memcpy(b + 48, attributes, 16);
	memcpy(b + 64, mrenclave, 32);
	memcpy(b + 128, mrsigner, 32);
	put16(b + 256, prod);
	put16(b + 258, svn);
	memcpy(b + 320, report_data, 64);
}

int mse_sim_quote(const struct mse_sim *sim, const struct mse_sim_enclave *enc, uint8_t **quote,
		  size_t *len, struct mse_err *err)
{
	uint8_t qe_body[MSE_SGX_REPORT_BODY_LEN], qe_rd[64], qe_attr[16], qe_mre[32], qe_mrs[32];
	uint8_t auth[32], attest_pub[64], qeid[32];
	size_t sig_len, total, off;
	uint8_t *q = NULL;
	uint8_t h[64 + 32];
	unsigned i;

	*quote = NULL;
	if (mse_x509w_p256_pub(sim->attest_key, attest_pub, err) != 0)
		return -1;
	for (i = 0; i < sizeof(auth); i++)
		auth[i] = (uint8_t)i;
	/* Signature data (A.4 "ECDSA 256-bit Quote Signature Data Structure"). */
	sig_len = 64 + 64 + MSE_SGX_REPORT_BODY_LEN + 64 + 2 + sizeof(auth) + 2 + 4 +
		  sim->pck_chain_len;
	total = MSE_SGX_QUOTE_HEADER_LEN + MSE_SGX_REPORT_BODY_LEN + 4 + sig_len;
	q = calloc(1, total);
	if (!q)
		return mse_err_set(err, "out of memory");
	/* Header (A.4 "Quote Header"). */
	put16(q + 0, MSE_SGX_QUOTE_V3);
	put16(q + 2, MSE_SGX_ATT_KEY_ECDSA_P256);
	put32(q + 4, 0);
	put16(q + 8, MSE_SIM_QE_ISVSVN);
	put16(q + 10, MSE_SIM_PCESVN);
	memcpy(q + 12, QE_VENDOR_INTEL, 16);
	/* user_data: the QE ID (first 16 bytes), stable per simulation. */
	SHA256(sim->root_secret, sizeof(sim->root_secret), qeid);
	memcpy(q + 28, qeid, 16);
	report_body(q + MSE_SGX_QUOTE_HEADER_LEN, SIM_CPUSVN, enc->attributes, enc->mrenclave,
		    enc->mrsigner, enc->isv_prod_id, enc->isv_svn, enc->report_data);
	off = MSE_SGX_QUOTE_HEADER_LEN + MSE_SGX_REPORT_BODY_LEN;
	put32(q + off, (uint32_t)sig_len);
	off += 4;
	/* The quote signature covers header ‖ report body, by the attestation key. */
	if (mse_x509w_sign_raw(sim->attest_key, q, MSE_SGX_QUOTE_HEADER_LEN + MSE_SGX_REPORT_BODY_LEN,
			       q + off, err) != 0)
		goto fail;
	off += 64;
	memcpy(q + off, attest_pub, 64);
	off += 64;
	/* QE report: report_data = SHA256(attestation key ‖ QE auth data) ‖ 0^32. */
	memset(qe_rd, 0, sizeof(qe_rd));
	memcpy(h, attest_pub, 64);
	memcpy(h + 64, auth, sizeof(auth));
	SHA256(h, sizeof(h), qe_rd);
	memset(qe_attr, 0, sizeof(qe_attr));
	qe_attr[0] = 0x11; /* INIT | PROVISIONKEY, as the QE identity states */
	SHA256((const unsigned char *)"mse-c/sim/qe-mrenclave/v1", 25, qe_mre);
	qe_mrsigner(qe_mrs);
	report_body(qe_body, SIM_CPUSVN, qe_attr, qe_mre, qe_mrs, MSE_SIM_QE_ISVPRODID,
		    MSE_SIM_QE_ISVSVN, qe_rd);
	memcpy(q + off, qe_body, sizeof(qe_body));
	off += sizeof(qe_body);
	if (mse_x509w_sign_raw(sim->pck_key, qe_body, sizeof(qe_body), q + off, err) != 0)
		goto fail;
	off += 64;
	put16(q + off, (uint16_t)sizeof(auth));
	off += 2;
	memcpy(q + off, auth, sizeof(auth));
	off += sizeof(auth);
	put16(q + off, MSE_SGX_CERT_TYPE_PCK_CHAIN);
	off += 2;
	put32(q + off, (uint32_t)sim->pck_chain_len);
	off += 4;
	memcpy(q + off, sim->pck_chain, sim->pck_chain_len);
	off += sim->pck_chain_len;
	if (off != total) {
		mse_err_set(err, "internal: quote size %zu != %zu", off, total);
		goto fail;
	}
	*quote = q;
	*len = total;
	return 0;
fail:
	free(q);
	return -1;
}

int mse_sim_sealing_key(const struct mse_sim *sim, const uint8_t mrenclave[32],
			uint8_t out[MSE_SGX_SEALING_KEY_LEN], struct mse_err *err)
{
	return hkdf_sha256(sim->root_secret, sizeof(sim->root_secret), mrenclave, 32,
			   "mse-c/sim/sealing-key/v1", out, MSE_SGX_SEALING_KEY_LEN, err);
}
