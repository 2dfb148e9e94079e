/* SPDX-License-Identifier: Apache-2.0 */
#include "enclave/bootstrap.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "attest/pccs.h"
#include "attest/sim.h"
#include "attest/simmeasure.h"
#include "common/file.h"
#include "common/hex.h"
#include "common/log.h"
#include "net/server.h"
#include "net/tls.h"
#include "enclave/confserver.h"
#include "attest/quoter.h"
#include "attest/ratlscert.h"

#include "enclave/appserver.h"
#include "enclave/replica.h"
#include "crypto/seal.h"

#define PATH_SZ 4096

struct paths {
	char home[PATH_SZ], tmp[PATH_SZ], key[PATH_SZ], module[PATH_SZ], secrets[PATH_SZ],
		sealed[PATH_SZ], ws[PATH_SZ], ssl_key[PATH_SZ];
};

void mse_bootstrap_opts_init(struct mse_bootstrap_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->host = "0.0.0.0";
	o->port = 443;
	o->subject = "CN=localhost";
	o->san = "localhost";
	o->sandbox = 1;
}

static int setp(char *out, const char *a, const char *b, struct mse_err *err)
{
	if (snprintf(out, PATH_SZ, "%s/%s", a, b) >= PATH_SZ)
		return mse_err_set(err, "path too long: %s", a);
	return 0;
}

/*
 * ARCHITECTURE.md "Enclave paths". Under SGX, Gramine's manifest may set
 * them in the environment; in simulation they are forced under the
 * workspace so nothing touches the operator's own HOME.
 */
static int resolve_paths(const struct mse_bootstrap_opts *o, int sim, struct paths *p,
			 struct mse_err *err)
{
	const char *e;

	memset(p, 0, sizeof(*p));
	if (sim) {
		const char *ws = o->workspace ? o->workspace : "workspace";

		if (mse_file_mkdirs(ws, 0700, err) != 0)
			return -1;
		if (!realpath(ws, p->ws))
			return mse_err_set(err, "workspace %s: %s", ws, strerror(errno));
		if (setp(p->home, p->ws, "root", err) || setp(p->tmp, p->ws, "tmp", err) ||
		    setp(p->key, p->ws, "key", err) ||
		    setp(p->module, p->ws, "mse-app", err))
			return -1;
	} else {
		if (o->workspace && (mse_file_mkdirs(o->workspace, 0700, err) != 0 ||
				     !realpath(o->workspace, p->ws)))
			return mse_err_set(err, "workspace %s: %s", o->workspace, strerror(errno));
		snprintf(p->home, PATH_SZ, "%s", (e = getenv("HOME")) && *e ? e : "/root");
		snprintf(p->tmp, PATH_SZ, "%s", (e = getenv("TMP_PATH")) && *e ? e : "/tmp");
		snprintf(p->key, PATH_SZ, "%s", (e = getenv("KEY_PATH")) && *e ? e : "/key");
		snprintf(p->module, PATH_SZ, "%s", (e = getenv("MODULE_PATH")) && *e ? e : "/mse-app");
	}
	if (!sim && (e = getenv("SECRETS_PATH")) && *e)
		snprintf(p->secrets, PATH_SZ, "%s", e);
	else if (setp(p->secrets, p->home, ".cache/mse/secrets.json", err))
		return -1;
	if (!sim && (e = getenv("SEALED_SECRETS_PATH")) && *e)
		snprintf(p->sealed, PATH_SZ, "%s", e);
	else if (setp(p->sealed, p->home, ".cache/mse/sealed_secrets.json", err))
		return -1;
	if (setp(p->ssl_key, p->key, "ssl_private_key.pem", err))
		return -1;
	if (mse_file_mkdirs(p->home, 0700, err) || mse_file_mkdirs(p->tmp, 0700, err) ||
	    mse_file_mkdirs(p->key, 0700, err))
		return -1;
	if (setenv("HOME", p->home, 1) || setenv("TMP_PATH", p->tmp, 1) ||
	    setenv("KEY_PATH", p->key, 1) || setenv("MODULE_PATH", p->module, 1) ||
	    setenv("SECRETS_PATH", p->secrets, 1) || setenv("SEALED_SECRETS_PATH", p->sealed, 1))
		return mse_err_set(err, "setenv: %s", strerror(errno));
	return 0;
}

static int listen_on(const char *host, uint16_t port, uint16_t *bound, struct mse_err *err)
{
	struct addrinfo hints, *res = NULL, *ai;
	char ps[8];
	int fd = -1, one = 1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(ps, sizeof(ps), "%u", port);
	rc = getaddrinfo(host, ps, &hints, &res);
	if (rc != 0)
		return mse_err_expect(err, "host", "an address to listen on", host);
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 511) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return mse_err_set(err, "cannot listen on %s:%u: %s", host, port, strerror(errno));
	{
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);

		*bound = port;
		if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
			*bound = ntohs(ss.ss_family == AF_INET6
					       ? ((struct sockaddr_in6 *)&ss)->sin6_port
					       : ((struct sockaddr_in *)&ss)->sin_port);
	}
	return fd;
}

static void hexs(char *out, const uint8_t *p, size_t n)
{
	if (mse_hex_encode(out, 2 * n + 1, p, n) != 0)
		out[0] = '\0';
}

/* bootstrap.json: what the operator's tools (spawn, evidence) need. */
static int write_info(const struct mse_bootstrap_opts *o, const struct paths *p, int sim,
		      const uint8_t boot_sha[32], const uint8_t mre[32], const uint8_t mrs[32],
		      const uint8_t enclave_pk[32], uint16_t port, const char *cert_pem,
		      struct mse_err *err)
{
	char path[PATH_SZ + 32], b[65], m[65], s[65], k[65];
	json_t *j, *args;
	char *text;
	int rc;

	if (!*p->ws)
		return 0;
	snprintf(path, sizeof(path), "%s/ratls.pem", p->ws);
	if (mse_file_write_atomic(path, cert_pem, strlen(cert_pem), MSE_MODE_PUBLIC, err) != 0)
		return -1;
	hexs(b, boot_sha, 32);
	hexs(m, mre, 32);
	hexs(s, mrs, 32);
	hexs(k, enclave_pk, 32);
	args = json_pack("{s:s,s:s,s:o,s:o,s:s,s:s}", "subject", o->subject,
			 "subject_alternative_name", o->san, "expiration_date",
			 o->tls_mode == MSE_BOOT_RATLS ? json_integer(o->expiration) : json_null(),
			 "size", o->size_mb ? json_integer((json_int_t)o->size_mb) : json_null(),
			 "app_id", o->uuid, "application", o->application);
	j = json_pack("{s:o,s:b,s:s,s:s,s:s,s:s,s:i,s:s,s:s,s:s}", "input_args", args,
		      "simulation", sim, "bootstrap_sha256", sim ? b : "", "mrenclave", m,
		      "mrsigner", s, "enclave_public_key", k, "port", port, "ratls_certificate",
		      "ratls.pem", "module_path", p->module, "tls",
		      o->tls_mode == MSE_BOOT_RATLS ? "ratls"
		      : o->tls_mode == MSE_BOOT_CERTIFICATE ? "certificate"
		      : o->tls_mode == MSE_BOOT_COORDINATOR ? "coordinator-ca" : "none");
	if (j && o->coordinator_mrenclave) {
		char c[65];

		hexs(c, o->coordinator_mrenclave, 32);
		json_object_set_new(j, "role", json_string("replica"));
		json_object_set_new(j, "coordinator_mrenclave", json_string(c));
		json_object_set_new(j, "coordinator", json_string(o->coordinator ? o->coordinator : ""));
	}
	text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	json_decref(j);
	if (!text)
		return mse_err_set(err, "out of memory");
	snprintf(path, sizeof(path), "%s/bootstrap.json", p->ws);
	rc = mse_file_write_atomic(path, text, strlen(text), MSE_MODE_PUBLIC, err);
	free(text);
	return rc;
}

/* ---- the configuration phase -------------------------------------------- */

static struct mse_server *volatile g_server;
static volatile sig_atomic_t g_signalled;

static void on_signal(int sig)
{
	(void)sig;
	g_signalled = 1;
	if (g_server)
		mse_server_stop(g_server);
}

struct watcher {
	struct mse_confserver *cs;
	struct mse_server *srv;
	long timeout_ms;
	int result;
};

static void *watch(void *arg)
{
	struct watcher *w = arg;

	w->result = mse_confserver_wait(w->cs, w->timeout_ms);
	if (w->result != -1)
		mse_server_stop(w->srv); /* provisioned, or timed out */
	return NULL;
}

/* Returns 1 provisioned, 0 stopped by a signal, -1 error or timeout. */
static int configure(const struct mse_bootstrap_opts *o, const struct paths *p, int fd,
		     const struct mse_ratlscert *rc_cert, const uint8_t sk[32], const uint8_t pk[32],
		     const char *cert_pem, char **ssl_key, size_t *ssl_key_len, struct mse_err *err)
{
	struct mse_confserver_config cc = {0};
	struct mse_confserver *cs = NULL;
	struct mse_server_config sc;
	struct mse_server *srv = NULL;
	struct watcher w;
	struct sigaction sa, old_term, old_int;
	sigset_t all, prev;
	pthread_t th;
	SSL_CTX *ctx = NULL;
	int result = -1, started = 0;

	cc.uuid = o->uuid;
	cc.app_dir = o->app_dir;
	cc.module_path = p->module;
	cc.secrets_path = p->secrets;
	cc.sealed_secrets_path = p->sealed;
	cc.enclave_sk = sk;
	cc.enclave_pk = pk;
	cc.plaincode = o->plaincode;
	cc.want_ssl_key = o->tls_mode == MSE_BOOT_CERTIFICATE;
	cc.certificate_pem = cert_pem;
	cc.ssl_key_path = cc.want_ssl_key ? p->ssl_key : NULL;
	if (mse_confserver_new(&cc, &cs, err) != 0)
		return -1;
	ctx = mse_tls_ctx_from_x509(rc_cert->cert, NULL, rc_cert->key, err);
	if (!ctx)
		goto out;
	mse_server_config_init(&sc);
	sc.listen_fd = fd;
	sc.tls = ctx;
	sc.handler = mse_confserver_handle;
	sc.user = cs;
	sc.threads = 2;
	/*
	 * Tight bounds: anyone who reaches the port can talk to it. Heads are
	 * small (curl's), the method, path and length are checked on the head
	 * before any body byte is read, a body is read in full by the event
	 * loop (never by the two provisioning threads), one address holds at
	 * most 16 of the 256 slots, and every buffer that held request bytes
	 * (the code key) is wiped before it is freed.
	 */
	sc.max_body = MSE_CONFSERVER_MAX_BODY_DEFAULT;
	sc.body_buffer = MSE_CONFSERVER_MAX_BODY_DEFAULT;
	sc.max_head_bytes = 16 * 1024;
	sc.max_headers = 50;
	sc.max_connections = 256;
	sc.max_per_address = 16;
	sc.head_check = mse_confserver_head_check;
	sc.wipe_buffers = 1;
	sc.request_timeout_ms = o->request_timeout_s * 1000;
	if (mse_server_new(&sc, &srv, err) != 0)
		goto out;
	w = (struct watcher){cs, srv, o->timeout_s > 0 ? o->timeout_s * 1000 : -1, 0};
	g_signalled = 0;
	g_server = srv;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGINT, &sa, &old_int);
	/* Only this thread takes the signals: the watcher starts with them blocked. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &prev);
	started = pthread_create(&th, NULL, watch, &w) == 0;
	pthread_sigmask(SIG_SETMASK, &prev, NULL);
	if (!started) {
		mse_err_set(err, "cannot start a thread");
		goto restore;
	}
	mse_info("configuration server waiting for the code key and secrets%s",
		 o->timeout_s > 0 ? "" : " (no timeout)");
	if (mse_server_run(srv, err) != 0)
		result = -1;
	else
		result = 0;
	mse_confserver_cancel(cs);
	pthread_join(th, NULL);
	if (mse_confserver_provisioned(cs)) {
		const char *k;
		size_t kl = 0;

		result = 1;
		k = mse_confserver_ssl_key(cs, &kl);
		if (k) {
			*ssl_key = malloc(kl + 1);
			if (!*ssl_key) {
				result = -1;
				mse_err_set(err, "out of memory");
			} else {
				memcpy(*ssl_key, k, kl + 1);
				*ssl_key_len = kl;
			}
		}
	} else if (result == 0 && !g_signalled) {
		result = -1;
		mse_err_step(err, "timeout");
		mse_err_set(err, "no configuration received within %ld seconds", o->timeout_s);
	}
restore:
	g_server = NULL;
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGINT, &old_int, NULL);
out:
	mse_server_free(srv);
	mse_tls_ctx_free(ctx);
	mse_confserver_free(cs);
	return result;
}

/* ---- replica mode: provisioned by the coordinator -------------------------- */

static int from_coordinator(const struct mse_bootstrap_opts *o, const struct paths *p, int sim,
			    const char *sim_dir, const struct mse_ratlscert *cert, const uint8_t sk[32],
			    const uint8_t pk[32], char **chain_pem, struct mse_err *err)
{
	struct mse_replica_opts ro;
	struct mse_pccs_opts pccs;
	struct mse_replica_prov prov;
	struct mse_confserver_config cc;
	struct mse_confserver_request req;
	struct mse_seal_keypair kp;
	char coll[PATH_SZ + 32], root[PATH_SZ + 32], keyp[PATH_SZ + 32], ca[PATH_SZ + 32];
	uint8_t *root_der = NULL, *opened = NULL;
	size_t root_len = 0, opened_len = 0;
	const char *e;
	int rc = -1;

	memset(&ro, 0, sizeof(ro));
	memset(&prov, 0, sizeof(prov));
	memset(&req, 0, sizeof(req));
	memset(&kp, 0, sizeof(kp));
	mse_pccs_opts_init(&pccs);
	if (o->coordinator_collateral) {
		snprintf(coll, sizeof(coll), "%s", o->coordinator_collateral);
		ro.collateral_dir = coll;
	} else if (sim) {
		snprintf(coll, sizeof(coll), "%s/collateral", sim_dir);
		ro.collateral_dir = coll;
	} else {
		/* SGX: Intel's collateral for the coordinator's platform, from the PCCS. */
		char base[512];

		pccs.url = getenv("MSE_PCCS_URL");
		if (pccs.url && !*pccs.url)
			pccs.url = NULL;
		if (mse_pccs_base_url(&pccs, base, sizeof(base), err) != 0) {
			mse_err_prefix(err, "replica outside simulation: the coordinator is verified "
					    "with Intel's collateral from a PCCS ($MSE_PCCS_URL or "
					    MSE_PCCS_QCNL_CONF ") or a directory "
					    "(MSE_COORDINATOR_COLLATERAL)");
			return -1;
		}
		ro.pccs = &pccs;
	}
	if (sim) {
		snprintf(root, sizeof(root), "%s/root_ca.der", sim_dir);
		if (mse_file_read(root, 1 << 16, &root_der, &root_len, err) != 0)
			return -1;
	} else if (o->trust_sim_root_hex) {
		/* Measured (--trust-sim-root): the owner asked for it, and its MRENCLAVE says so. */
		if (mse_sim_root_from_hex(o->trust_sim_root_hex, &root_der, &root_len, err) != 0)
			return -1;
		mse_warn("UNSAFE: this replica also trusts quotes of the simulation root given by "
			 "--trust-sim-root (tests only)");
	}
	ro.coordinator = o->coordinator;
	ro.coordinator_mrenclave = o->coordinator_mrenclave;
	ro.sim_root_der = root_der;
	ro.sim_root_len = root_len;
	ro.allow_simulation = root_der != NULL;
	ro.cert = cert->cert;
	ro.key = cert->key;
	ro.instance = o->uuid;
	ro.timeout_ms = o->timeout_s > 0 ? o->timeout_s * 1000 : 60000;
	mse_info("attesting to the coordinator at %s", o->coordinator ? o->coordinator : "?");
	if (mse_replica_fetch(&ro, &prov, err) != 0)
		goto out;
	/* The sealed secrets come re-sealed to this enclave's key. */
	if (prov.sealed) {
		memcpy(kp.sk, sk, 32);
		memcpy(kp.pk, pk, 32);
		kp.has_sk = 1;
		if (mse_seal_open(&kp, prov.sealed, prov.sealed_len, &opened, &opened_len, err) != 0) {
			mse_err_step(err, "provisioning");
			mse_err_prefix(err, "app_sealed_secrets");
			goto out;
		}
	}
	memset(&cc, 0, sizeof(cc));
	cc.uuid = "replica";
	cc.app_dir = o->app_dir;
	cc.module_path = p->module;
	cc.secrets_path = p->secrets;
	cc.sealed_secrets_path = p->sealed;
	cc.enclave_sk = sk;
	cc.enclave_pk = pk;
	cc.plaincode = o->plaincode || !prov.has_code_key;
	req.has_code_key = prov.has_code_key;
	memcpy(req.code_key, prov.code_key, 32);
	req.app_secrets = prov.app_secrets;
	req.app_secrets_len = prov.app_secrets_len;
	req.sealed_secrets = (char *)opened;
	req.sealed_secrets_len = opened_len;
	/* A restart is provisioned again: the previous code goes first. */
	if (mse_file_exists(p->module) && mse_file_remove_tree(p->module, err) != 0)
		goto out;
	if (mse_confserver_apply(&cc, &req, err) != 0)
		goto out;
	/* The app key: 0400, in the enclave's protected key directory. */
	if (!sim && (e = getenv("APP_KEY_PATH")) && *e)
		snprintf(keyp, sizeof(keyp), "%s", e);
	else
		snprintf(keyp, sizeof(keyp), "%s/app.key", p->key);
	if (mse_file_write_atomic(keyp, prov.app_key, sizeof(prov.app_key), 0400, err) != 0 ||
	    setenv("APP_KEY_PATH", keyp, 1) != 0)
		goto out;
	if (*p->ws) {
		snprintf(ca, sizeof(ca), "%s/ca.pem", p->ws);
		if (mse_file_write_atomic(ca, prov.ca_pem, strlen(prov.ca_pem), MSE_MODE_PUBLIC,
					  err) != 0)
			goto out;
	}
	*chain_pem = prov.chain_pem;
	prov.chain_pem = NULL;
	mse_info("provisioned by the coordinator: deployment %s seq %llu, app key at %s",
		 prov.deployment_id, (unsigned long long)prov.seq, keyp);
	rc = 0;
out:
	req.app_secrets = NULL;
	req.sealed_secrets = NULL;
	sodium_memzero(req.code_key, sizeof(req.code_key));
	mse_seal_keypair_wipe(&kp);
	mse_file_free_secret(opened, opened_len);
	mse_replica_prov_free(&prov);
	free(root_der);
	return rc;
}

/* ---- the hand-over -------------------------------------------------------- */

static int serve_app(const struct mse_bootstrap_opts *o, const struct paths *p, int fd,
		     const struct mse_ratlscert *rc_cert, const char *cert_pem, const char *ssl_key,
		     size_t ssl_key_len, struct mse_err *err)
{
	struct mse_appserver_config ac;

	mse_appserver_config_init(&ac);
	ac.app = o->application;
	ac.code_dir = p->module;
	ac.listen_fd = fd;
	ac.host = o->host;
	ac.port = o->port;
	ac.sandbox = o->sandbox;
	ac.no_request_log = o->no_access_log;
	ac.threads = o->threads;
	ac.threads_max = o->threads_max;
	/*
	 * The enclave size bounds the app as it would in SGX: the app server
	 * logs what is left after the interpreter and libraries are loaded
	 * (MSE's "hardware_memory - libraries_size") and answers MemoryError
	 * beyond it.
	 */
	ac.request_timeout_ms = o->request_timeout_s * 1000;
	ac.memory_mb = o->size_mb;
	switch (o->tls_mode) {
	case MSE_BOOT_RATLS:
		ac.cert = rc_cert->cert;
		ac.key = rc_cert->key;
		break;
	case MSE_BOOT_CERTIFICATE:
		/* The operator's full chain, the key that came with the configuration. */
		ac.cert_pem = cert_pem;
		ac.cert_pem_len = strlen(cert_pem);
		ac.key_pem = ssl_key;
		ac.key_pem_len = ssl_key_len;
		break;
	case MSE_BOOT_NO_SSL:
		ac.no_tls = 1;
		break;
	case MSE_BOOT_COORDINATOR:
		/* The certificate the coordinator's CA issued for this key. */
		ac.cert_pem = cert_pem;
		ac.cert_pem_len = strlen(cert_pem);
		ac.key_pem = rc_cert->key_pem;
		ac.key_pem_len = rc_cert->key_pem_len;
		break;
	}
	mse_info("serving %s from %s (%s)", o->application, p->module,
		 o->tls_mode == MSE_BOOT_RATLS	       ? "RA-TLS certificate"
		 : o->tls_mode == MSE_BOOT_CERTIFICATE ? "custom certificate"
		 : o->tls_mode == MSE_BOOT_COORDINATOR ? "certificate from the coordinator's CA"
						       : "plain HTTP");
	return mse_appserver_run(&ac, err);
}

int mse_bootstrap_run(const struct mse_bootstrap_opts *o, struct mse_err *err)
{
	struct paths p;
	struct mse_quoter *prov = NULL;
	struct mse_ratlscert cert = {0};
	struct mse_sim_args args;
	uint8_t boot_sha[32] = {0}, mre[32] = {0}, mrs[32] = {0}, sk[32], pk[32];
	char sim_dir[PATH_SZ], *cert_pem = NULL, *ssl_key = NULL;
	size_t ssl_key_len = 0;
	const char *att = o->attestation_dir ? o->attestation_dir : MSE_QUOTER_GRAMINE_DIR;
	char attfile[PATH_SZ + 32];
	struct mse_ratlscert_params rp;
	int sim, fd = -1, rc = -1;
	uint16_t port = 0;

	snprintf(attfile, sizeof(attfile), "%s/attestation_type", att);
	sim = o->simulation || (!o->attestation_dir && !mse_file_exists(attfile));
	/* Before resolve_paths: it points HOME into the workspace. */
	if (o->sim_dir)
		snprintf(sim_dir, sizeof(sim_dir), "%s", o->sim_dir);
	else if (sim && mse_sim_dir(sim_dir, sizeof(sim_dir), err) != 0)
		goto out;
	if (resolve_paths(o, sim, &p, err) != 0)
		goto out;
	if (o->tls_mode == MSE_BOOT_CERTIFICATE) {
		size_t n;

		if (mse_file_read(o->certificate, 1 << 20, (uint8_t **)&cert_pem, &n, err) != 0)
			goto out;
	}
	if (sim) {
		mse_warn("SIMULATION - not confidential: no SGX enclave protects this process");
		args = (struct mse_sim_args){o->subject, o->san,
					     o->tls_mode == MSE_BOOT_RATLS ? o->expiration : 0,
					     o->size_mb, o->uuid, o->application};
		if (mse_simmeasure_file_sha256("/proc/self/exe", boot_sha, err) != 0)
			goto out;
		if (o->coordinator_mrenclave) {
			/* v2: per-replica values are not measured; the coordinator is. */
			if (mse_simmeasure_replica(boot_sha, o->application, o->size_mb,
						   o->coordinator_mrenclave, o->app_dir, mre, err) != 0)
				goto out;
		} else if (mse_simmeasure_compute(boot_sha, &args, o->app_dir, mre, err) != 0) {
			goto out;
		}
		if (!mse_sim_exists(sim_dir)) {
			mse_info("no SGX simulation in %s: creating one", sim_dir);
			if (mse_sim_init(sim_dir, 0, err) != 0)
				goto out;
		}
		if (mse_quoter_sim(sim_dir, mre, &prov, err) != 0)
			goto out;
		if (o->sim_isvsvn)
			mse_quoter_sim_set_isv(prov, 1, (uint16_t)o->sim_isvsvn);
	} else if (o->sim_isvsvn) {
		mse_err_field(err, "--sim-isvsvn", "simulation only: under SGX the ISVSVN is the "
						   "SIGSTRUCT's (gramine-sgx-sign)");
		goto out;
	} else if (mse_quoter_gramine(att, &prov, err) != 0) {
		goto out;
	}
	if (mse_quoter_enclave_key(prov, sk, pk, err) != 0)
		goto out;
	rp = (struct mse_ratlscert_params){o->subject, o->san,
					   o->tls_mode == MSE_BOOT_RATLS || o->expiration > 0
						   ? o->expiration
						   : (int64_t)time(NULL) + MSE_BOOT_CONF_CERT_SECONDS};
	if (mse_ratlscert_create(prov, &rp, pk, &cert, err) != 0)
		goto out;
	/* What the quote says (REPORTBODY offsets: MRENCLAVE 64, MRSIGNER 128). */
	if (cert.quote_len >= 48 + 384) {
		memcpy(mre, cert.quote + 48 + 64, 32);
		memcpy(mrs, cert.quote + 48 + 128, 32);
	}
	mse_quoter_free(prov);
	prov = NULL;
	fd = listen_on(o->host, o->port, &port, err);
	if (fd < 0)
		goto out;
	if (write_info(o, &p, sim, boot_sha, mre, mrs, pk, port, cert.cert_pem, err) != 0)
		goto out;
	mse_info("listening on %s:%u", o->host, (unsigned)port);
	if (o->coordinator_mrenclave) {
		if (from_coordinator(o, &p, sim, sim_dir, &cert, sk, pk, &cert_pem, err) != 0)
			goto out;
	} else if (mse_confserver_module_ready(p.module)) {
		mse_info("%s exists: already provisioned, skipping the configuration server",
			 p.module);
		if (o->tls_mode == MSE_BOOT_CERTIFICATE) {
			uint8_t *k = NULL;

			if (mse_file_read(p.ssl_key, 1 << 16, &k, &ssl_key_len, err) != 0)
				goto out;
			ssl_key = (char *)k;
		}
	} else {
		int c = configure(o, &p, fd, &cert, sk, pk, cert_pem, &ssl_key, &ssl_key_len, err);

		if (c < 0)
			goto out;
		if (c == 0) {
			mse_info("stopped before provisioning");
			rc = 0;
			goto out;
		}
	}
	sodium_memzero(sk, sizeof(sk));
	rc = serve_app(o, &p, fd, &cert, cert_pem, ssl_key, ssl_key_len, err);
out:
	sodium_memzero(sk, sizeof(sk));
	if (fd >= 0)
		close(fd);
	if (ssl_key)
		sodium_memzero(ssl_key, ssl_key_len);
	free(ssl_key);
	free(cert_pem);
	mse_ratlscert_free(&cert);
	mse_quoter_free(prov);
	return rc;
}
