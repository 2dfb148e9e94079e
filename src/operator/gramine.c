/* SPDX-License-Identifier: Apache-2.0 */
#include "operator/gramine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>

#include "common/file.h"
#include "crypto/archive.h"
#include "operator/proc.h"

#define LOG_TAIL 1500

int mse_gramine_which(const char *program, char *out, size_t size, struct mse_err *err)
{
	const char *path = getenv("PATH");

	while (path && *path) {
		size_t n = strcspn(path, ":");

		if (n && (size_t)snprintf(out, size, "%.*s/%s", (int)n, path, program) < size &&
		    access(out, X_OK) == 0)
			return 0;
		path += n + (path[n] == ':');
	}
	out[0] = 0;
	return mse_err_set(err, "%s not found on PATH: install Gramine 1.9 "
				"(https://gramine.readthedocs.io/en/stable/installation.html)",
			   program);
}

int mse_gramine_available(void)
{
	char p[4096];

	return mse_gramine_which("gramine-manifest", p, sizeof(p), NULL) == 0 &&
	       mse_gramine_which("gramine-sgx-sign", p, sizeof(p), NULL) == 0 &&
	       mse_gramine_which("gramine-sgx", p, sizeof(p), NULL) == 0;
}

/* The last bytes of a log file, for an error message. */
static void tail(const char *path, char *out, size_t size)
{
	uint8_t *data = NULL;
	size_t len = 0, start;

	out[0] = 0;
	if (mse_file_read(path, 16 << 20, &data, &len, NULL) != 0)
		return;
	start = len > LOG_TAIL ? len - LOG_TAIL : 0;
	snprintf(out, size, "%s", (char *)data + start);
	free(data);
}

/* Runs argv in cwd with its output appended to log; a non-zero exit is an error naming it. */
static int run(const char *cwd, char *const argv[], const char *log, struct mse_err *err)
{
	char t[LOG_TAIL + 1];
	pid_t pid = mse_proc_start(cwd, argv, NULL, log, err);
	int status;

	if (pid < 0)
		return -1;
	status = mse_proc_wait(pid);
	if (status == 0)
		return 0;
	tail(log, t, sizeof(t));
	return mse_err_set(err, "%s failed (exit status %d) in %s; its output (%s) ends with:\n%s",
			   argv[0], status, cwd, log, t[0] ? t : "(nothing)");
}

int mse_gramine_version(struct mse_gramine_version *v, struct mse_err *err)
{
	char exe[4096], log[] = "/tmp/mse-gramine-version.XXXXXX", *argv[3];
	uint8_t *out = NULL;
	size_t len = 0;
	int fd, rc = -1;
	const char *p;

	memset(v, 0, sizeof(*v));
	if (mse_gramine_which("gramine-sgx", exe, sizeof(exe), err) != 0)
		return -1;
	fd = mkstemp(log);
	if (fd < 0)
		return mse_err_set(err, "cannot create a temporary file: %s", strerror(errno));
	close(fd);
	argv[0] = exe;
	argv[1] = "--version";
	argv[2] = NULL;
	if (run("/", argv, log, err) != 0 || mse_file_read(log, 4096, &out, &len, err) != 0)
		goto out;
	snprintf(v->text, sizeof(v->text), "%.*s", (int)strcspn((char *)out, "\n"), (char *)out);
	/* "Gramine 1.9 (v1.9)", "Gramine 1.9post~UNRELEASED (…)", "Gramine 1.8.1 (…)" */
	p = strstr(v->text, "Gramine ");
	if (!p || sscanf(p, "Gramine %u.%u", &v->major, &v->minor) != 2) {
		mse_err_expect(err, "gramine-sgx --version", "\"Gramine MAJOR.MINOR (…)\"", v->text);
		goto out;
	}
	if (v->major != 1 || v->minor < 8) {
		mse_err_set(err, "%s is not supported: mse-c's manifest needs Gramine 1.8 or 1.9 "
				 "(loader.entrypoint.uri, loader.argv, fs.start_dir); 1.9 is the one "
				 "tested against its documentation",
			    v->text);
		goto out;
	}
	rc = 0;
out:
	unlink(log);
	free(out);
	return rc;
}

int mse_gramine_check_signer(const char *key_path, uint8_t mrsigner[32], struct mse_err *err)
{
	BIO *b = BIO_new_file(key_path, "r");
	EVP_PKEY *pk = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	BIGNUM *n = NULL, *e = NULL;
	uint8_t le[384];
	int rc = -1;

	if (!b) {
		mse_err_field(err, key_path, "cannot open the SGX signer key");
		goto out;
	}
	if (!pk || EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA ||
	    EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
	    EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e) != 1) {
		mse_err_field(err, key_path, "expected a PEM RSA private key (the SGX enclave signer, "
					     "e.g. from 'mse keygen --sgx-signer')");
		goto out;
	}
	if (BN_num_bits(n) != 3072 || !BN_is_word(e, 3)) {
		char *es = BN_bn2dec(e);

		mse_err_field(err, key_path, "expected RSA-3072 with public exponent 3 (what SGX "
					     "signs enclaves with), got %d bits, exponent %s",
			      BN_num_bits(n), es ? es : "?");
		OPENSSL_free(es);
		goto out;
	}
	if (mrsigner) {
		if (BN_bn2lebinpad(n, le, sizeof(le)) != (int)sizeof(le)) {
			mse_err_set(err, "cannot encode the modulus");
			goto out;
		}
		SHA256(le, sizeof(le), mrsigner);
	}
	rc = 0;
out:
	ERR_clear_error();
	BN_free(n);
	BN_free(e);
	EVP_PKEY_free(pk);
	BIO_free(b);
	return rc;
}

/* A new RSA-3072, e = 3 key as PKCS #8 PEM text (malloc'd, to be wiped by the caller). */
static int new_rsa3(char **pem, size_t *pem_len, struct mse_err *err)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	EVP_PKEY *pk = NULL;
	BIGNUM *e = BN_new();
	BIO *b = NULL;
	char *p;
	long n;
	int rc = -1;

	*pem = NULL;
	if (!c || !e || !BN_set_word(e, 3) || EVP_PKEY_keygen_init(c) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_keygen_bits(c, 3072) <= 0 ||
	    EVP_PKEY_CTX_set1_rsa_keygen_pubexp(c, e) <= 0 || EVP_PKEY_keygen(c, &pk) <= 0 ||
	    !(b = BIO_new(BIO_s_secmem())) ||
	    !PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL)) {
		mse_err_set(err, "cannot generate an RSA-3072 key with exponent 3");
		goto out;
	}
	n = BIO_get_mem_data(b, &p);
	*pem = malloc((size_t)n + 1);
	if (!*pem) {
		mse_err_set(err, "out of memory");
		goto out;
	}
	memcpy(*pem, p, (size_t)n);
	(*pem)[n] = 0;
	*pem_len = (size_t)n;
	rc = 0;
out:
	ERR_clear_error();
	BIO_free(b);
	BN_free(e);
	EVP_PKEY_free(pk);
	EVP_PKEY_CTX_free(c);
	return rc;
}

int mse_gramine_new_signer(const char *path, uint8_t mrsigner[32], struct mse_err *err)
{
	char *pem = NULL;
	size_t len = 0;
	int rc;

	if (new_rsa3(&pem, &len, err) != 0)
		return -1;
	rc = mse_file_write_new(path, pem, len, 0600, err);
	OPENSSL_cleanse(pem, len);
	free(pem);
	if (rc == 0 && mrsigner)
		rc = mse_gramine_check_signer(path, mrsigner, err);
	return rc;
}

int mse_gramine_build(const char *dir, const struct mse_manifest_opts *mo, const char *key_path,
		      const char *log_path, struct mse_sigstruct *sig, struct mse_err *err)
{
	char *text = NULL;
	int rc;

	if (mse_manifest_render(mo, &text, err) != 0)
		return -1;
	rc = mse_gramine_build_text(dir, text, mo->debug, key_path, log_path, sig, err);
	free(text);
	return rc;
}

int mse_gramine_build_text(const char *dir, const char *text, int debug, const char *key_path,
			   const char *log_path, struct mse_sigstruct *sig, struct mse_err *err)
{
	char path[4200], exe[4096], key_abs[4096];
	char *argv[12];
	int rc = -1;

	if (!realpath(key_path, key_abs))
		return mse_err_field(err, key_path, "SGX signer key: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/" MSE_MANIFEST_NAME ".manifest.template", dir);
	if (mse_file_write_atomic(path, text, strlen(text), 0644, err) != 0)
		goto out;
	/* gramine-manifest(1): -D defines a template variable; arch_libdir is not built in. */
	if (mse_gramine_which("gramine-manifest", exe, sizeof(exe), err) != 0)
		goto out;
	argv[0] = exe;
	argv[1] = "-Darch_libdir=" MSE_GRAMINE_ARCH_LIBDIR;
	argv[2] = MSE_MANIFEST_NAME ".manifest.template";
	argv[3] = MSE_MANIFEST_NAME ".manifest";
	argv[4] = NULL;
	if (run(dir, argv, log_path, err) != 0)
		goto out;
	/* gramine-sgx-sign(1): the .sig goes beside the manifest, named after it. */
	if (mse_gramine_which("gramine-sgx-sign", exe, sizeof(exe), err) != 0)
		goto out;
	argv[0] = exe;
	argv[1] = "--key";
	argv[2] = key_abs;
	argv[3] = "--manifest";
	argv[4] = MSE_MANIFEST_NAME ".manifest";
	argv[5] = "--output";
	argv[6] = MSE_MANIFEST_NAME ".manifest.sgx";
	argv[7] = NULL;
	if (run(dir, argv, log_path, err) != 0)
		goto out;
	snprintf(path, sizeof(path), "%s/" MSE_MANIFEST_NAME ".sig", dir);
	if (mse_sigstruct_load(path, sig, err) != 0) {
		mse_err_prefix(err, "gramine-sgx-sign's SIGSTRUCT");
		goto out;
	}
	if (mse_sigstruct_is_debug(sig) && !debug) {
		mse_err_file(err, path);
		mse_err_set(err, "gramine-sgx-sign produced a debug enclave from sgx.debug = false");
		goto out;
	}
	rc = 0;
out:
	return rc;
}

int mse_gramine_copy(const char *src, const char *dst, struct mse_err *err)
{
	uint8_t *data = NULL;
	size_t len = 0;
	int rc;

	if (mse_file_read(src, 512u << 20, &data, &len, err) != 0)
		return -1;
	rc = mse_file_write_atomic(dst, data, len, 0755, err);
	free(data);
	return rc;
}

int mse_gramine_measure(const char *bootstrap, const char *app_tar,
			const struct mse_manifest_opts *mo, uint8_t mrenclave[32],
			struct mse_err *err)
{
	char tmp[] = "/tmp/mse-measure.XXXXXX", path[4200], key[4200], log[4200];
	struct mse_sigstruct sig;
	int rc = -1;

	if (!mkdtemp(tmp))
		return mse_err_set(err, "cannot create a temporary directory: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/" MSE_MANIFEST_BOOTSTRAP, tmp);
	if (mse_gramine_copy(bootstrap, path, err) != 0)
		goto out;
	snprintf(path, sizeof(path), "%s/" MSE_MANIFEST_APP_DIR, tmp);
	if (mse_tar_extract(app_tar, path, NULL, 0644, err) != 0)
		goto out;
	snprintf(path, sizeof(path), "%s/" MSE_MANIFEST_WORKSPACE, tmp);
	if (mse_file_mkdirs(path, 0700, err) != 0)
		goto out;
	/* MRENCLAVE does not depend on the signer: any RSA-3072 key will do. */
	snprintf(key, sizeof(key), "%s/throwaway-signer.pem", tmp);
	snprintf(log, sizeof(log), "%s/gramine.log", tmp);
	if (mse_gramine_new_signer(key, NULL, err) != 0 ||
	    mse_gramine_build(tmp, mo, key, log, &sig, err) != 0)
		goto out;
	memcpy(mrenclave, sig.mrenclave, 32);
	rc = 0;
out:
	if (mse_file_remove_tree(tmp, NULL) != 0)
		fprintf(stderr, "warning: cannot remove %s\n", tmp);
	return rc;
}

int mse_gramine_measure_coordinator(const char *coordinator, const struct mse_manifest_coord_opts *mo,
				    uint8_t mrenclave[32], struct mse_err *err)
{
	char tmp[] = "/tmp/mse-measure.XXXXXX", path[4200], key[4200], log[4200], *text = NULL;
	struct mse_sigstruct sig;
	int rc = -1;

	if (mse_manifest_render_coordinator(mo, &text, err) != 0)
		return -1;
	if (!mkdtemp(tmp)) {
		free(text);
		return mse_err_set(err, "cannot create a temporary directory: %s", strerror(errno));
	}
	snprintf(path, sizeof(path), "%s/" MSE_MANIFEST_COORD_BINARY, tmp);
	if (mse_gramine_copy(coordinator, path, err) != 0)
		goto out;
	snprintf(path, sizeof(path), "%s/" MSE_MANIFEST_WORKSPACE "/state", tmp);
	if (mse_file_mkdirs(path, 0700, err) != 0)
		goto out;
	snprintf(path, sizeof(path), "%s/" MSE_MANIFEST_WORKSPACE "/info", tmp);
	if (mse_file_mkdirs(path, 0700, err) != 0)
		goto out;
	/* MRENCLAVE does not depend on the signer: any RSA-3072 key will do. */
	snprintf(key, sizeof(key), "%s/throwaway-signer.pem", tmp);
	snprintf(log, sizeof(log), "%s/gramine.log", tmp);
	if (mse_gramine_new_signer(key, NULL, err) != 0 ||
	    mse_gramine_build_text(tmp, text, mo->debug, key, log, &sig, err) != 0)
		goto out;
	memcpy(mrenclave, sig.mrenclave, 32);
	rc = 0;
out:
	free(text);
	if (mse_file_remove_tree(tmp, NULL) != 0)
		fprintf(stderr, "warning: cannot remove %s\n", tmp);
	return rc;
}
