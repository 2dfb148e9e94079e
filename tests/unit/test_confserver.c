/* SPDX-License-Identifier: Apache-2.0 */
/* src/node/confserver: the configuration server over a fake exchange. */
#include "testutil.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "common/b64.h"
#include "common/file.h"
#include "common/hex.h"
#include "enclave/confserver.h"

struct fake {
	const char *method, *path;
	const uint8_t *body;
	size_t len, off;
	int64_t content_length;
	int status;
	char state[64];
	char out[4096];
	size_t out_len;
	int finished;
};

static ssize_t f_read(struct mse_exchange *x, void *buf, size_t n)
{
	struct fake *f = x->impl;
	size_t k = f->len - f->off;

	if (k > n)
		k = n;
	if (k > 7)
		k = 7; /* short reads, as a socket gives */
	memcpy(buf, f->body + f->off, k);
	f->off += k;
	return (ssize_t)k;
}

static int f_start(struct mse_exchange *x, int status, const char *reason,
		   const struct mse_http_header *h, size_t n)
{
	struct fake *f = x->impl;
	size_t i;

	(void)reason;
	f->status = status;
	for (i = 0; i < n; i++)
		if (h[i].name_len == 10 && memcmp(h[i].name, "Mse-Status", 10) == 0)
			snprintf(f->state, sizeof(f->state), "%.*s", (int)h[i].value_len,
				 h[i].value);
	x->started = 1;
	return 0;
}

static int f_write(struct mse_exchange *x, const void *d, size_t n)
{
	struct fake *f = x->impl;

	if (f->out_len + n < sizeof(f->out)) {
		memcpy(f->out + f->out_len, d, n);
		f->out_len += n;
		f->out[f->out_len] = 0;
	}
	return 0;
}

static int f_finish(struct mse_exchange *x)
{
	((struct fake *)x->impl)->finished = 1;
	return 0;
}

static const struct mse_exchange_ops fake_ops = {f_read, f_start, f_write, f_finish};

static int call(struct mse_confserver *cs, const char *method, const char *path, const char *body,
		struct fake *f)
{
	struct mse_http_request r;
	struct mse_conn_info ci;
	struct mse_exchange x;

	memset(f, 0, sizeof(*f));
	memset(&r, 0, sizeof(r));
	memset(&ci, 0, sizeof(ci));
	strcpy(ci.remote_addr, "127.0.0.1");
	f->body = (const uint8_t *)(body ? body : "");
	f->len = body ? strlen(body) : 0;
	r.method = method;
	r.method_len = strlen(method);
	r.path = r.target = path;
	r.path_len = r.target_len = strlen(path);
	r.query = "";
	r.content_length = body ? (int64_t)f->len : -1;
	r.minor_version = 1;
	x = (struct mse_exchange){&fake_ops, &r, &ci, 0, 0, f};
	return mse_confserver_handle(&x, cs);
}

#define UUID "63322f85-1ff8-4483-91ae-f18d7398d157"

struct env {
	char dir[64], app[128], module[128], secrets[128], sealed[128];
	uint8_t sk[32], pk[32];
	char keyhex[65];
	struct mse_confserver_config cfg;
	struct mse_confserver *cs;
};

static struct env *env_new(int plaincode)
{
	struct env *e = calloc(1, sizeof(*e));
	uint8_t *enc, key[32], *k;
	size_t len, klen;
	struct mse_err err;

	snprintf(e->dir, sizeof(e->dir), "%s", tu_tmpdir());
	snprintf(e->app, sizeof(e->app), "%s/app", e->dir);
	snprintf(e->module, sizeof(e->module), "%s/ws/mse-app", e->dir);
	snprintf(e->secrets, sizeof(e->secrets), "%s/ws/root/.cache/mse/secrets.json", e->dir);
	snprintf(e->sealed, sizeof(e->sealed), "%s/ws/root/.cache/mse/sealed_secrets.json", e->dir);
	assert_int_equal(tu_sh("mkdir -p %s/sub", e->app), 0);
	enc = tu_read(tu_vector("mse-code-secretbox/app.py.enc"), &len);
	{
		char p[256];

		snprintf(p, sizeof(p), "%s/app.py.enc", e->app);
		tu_write(p, enc, len);
		snprintf(p, sizeof(p), "%s/sub/mod.py.enc", e->app);
		tu_write(p, enc, len);
		snprintf(p, sizeof(p), "%s/requirements.txt", e->app);
		tu_write(p, "flask\n", 6);
	}
	free(enc);
	k = tu_read(tu_vector("mse-code-secretbox/code.key"), &klen);
	assert_int_equal(klen, 32);
	memcpy(key, k, 32);
	free(k);
	assert_int_equal(mse_hex_encode(e->keyhex, sizeof(e->keyhex), key, 32), 0);
	crypto_box_keypair(e->pk, e->sk);
	e->cfg = (struct mse_confserver_config){UUID,     e->app, e->module, e->secrets, e->sealed,
						 e->sk,    e->pk,  plaincode, 0,         4096};
	mse_err_clear(&err);
	assert_int_equal(mse_confserver_new(&e->cfg, &e->cs, &err), 0);
	return e;
}

static void env_free(struct env *e)
{
	mse_confserver_free(e->cs);
	tu_rmtree(e->dir);
	free(e);
}

/* Nothing but the app dir exists under the temp dir (no module, secrets or temp files). */
static void assert_nothing_written(struct env *e)
{
	char p[256];

	assert_false(mse_file_exists(e->module));
	assert_false(mse_file_exists(e->secrets));
	assert_false(mse_file_exists(e->sealed));
	snprintf(p, sizeof(p), "%s/ws", e->dir);
	assert_int_equal(tu_sh("test -z \"$(find %s -type f 2>/dev/null)\"", p), 0);
	assert_int_equal(tu_sh("test -z \"$(find %s -name 'mse-app.tmp-*' 2>/dev/null)\"", p), 0);
	assert_false(mse_confserver_provisioned(e->cs));
}

/* Copies tmpl into out with every "@KEY@" replaced by key. */
static void subst(char *out, size_t size, const char *tmpl, const char *key)
{
	size_t o = 0;

	while (*tmpl && o + 70 < size) {
		if (strncmp(tmpl, "@KEY@", 5) == 0) {
			memcpy(out + o, key, strlen(key));
			o += strlen(key);
			tmpl += 5;
		} else {
			out[o++] = *tmpl++;
		}
	}
	out[o] = 0;
}

static char *sealed_b64(struct env *e, const char *plain)
{
	size_t n = strlen(plain), blen = n + crypto_box_SEALBYTES;
	uint8_t *box = malloc(blen);
	char *b64;

	crypto_box_seal(box, (const uint8_t *)plain, n, e->pk);
	b64 = malloc(mse_b64_encoded_size(blen, MSE_B64_URL_NOPAD));
	assert_int_equal(mse_b64_encode(b64, mse_b64_encoded_size(blen, MSE_B64_URL_NOPAD), box,
					blen, MSE_B64_URL_NOPAD),
			 0);
	free(box);
	return b64;
}

static void get_says_waiting(void **state)
{
	struct env *e = env_new(0);
	struct fake f;

	(void)state;
	assert_int_equal(call(e->cs, "GET", "/", NULL, &f), 0);
	assert_int_equal(f.status, 200);
	assert_string_equal(f.state, "Waiting");
	assert_true(f.finished);
	assert_int_equal(call(e->cs, "GET", "/health", NULL, &f), 0);
	assert_int_equal(f.status, 200);
	assert_string_equal(f.state, "Waiting");
	call(e->cs, "PUT", "/", "{}", &f);
	assert_int_equal(f.status, 405);
	call(e->cs, "POST", "/other", "{}", &f);
	assert_int_equal(f.status, 404);
	assert_nothing_written(e);
	env_free(e);
}

static void uuid_checked_first(void **state)
{
	struct env *e = env_new(0);
	struct fake f;
	char body[512];

	(void)state;
	/* A wrong uuid with otherwise broken fields: 401, not 400. */
	call(e->cs, "POST", "/", "{\"uuid\":\"nope\",\"code_secret_key\":\"zz\",\"bogus\":1}", &f);
	assert_int_equal(f.status, 401);
	call(e->cs, "POST", "/", "{\"code_secret_key\":\"00\"}", &f);
	assert_int_equal(f.status, 401);
	call(e->cs, "POST", "/", "[1,2]", &f);
	assert_int_equal(f.status, 401);
	call(e->cs, "POST", "/", "{\"uuid\":42}", &f);
	assert_int_equal(f.status, 401);
	/* Prefix of the right uuid. */
	call(e->cs, "POST", "/", "{\"uuid\":\"63322f85\"}", &f);
	assert_int_equal(f.status, 401);
	snprintf(body, sizeof(body), "{\"uuid\":\"%s\",\"code_secret_key\":\"%s\",\"app_secrets\":{\"a\":1}}",
		 UUID "x", e->keyhex);
	call(e->cs, "POST", "/", body, &f);
	assert_int_equal(f.status, 401);
	call(e->cs, "POST", "/", "not json", &f);
	assert_int_equal(f.status, 400);
	assert_nothing_written(e);
	env_free(e);
}

static void bad_inputs_are_400_and_write_nothing(void **state)
{
	struct env *e = env_new(0);
	struct fake f;
	char body[2048], wrong[65];
	char *notobj = sealed_b64(e, "[1,2,3]"), *badkey = sealed_b64(e, "{\"code_secret_key\":\"xyz\"}");
	const char *cases[] = {
		"{\"uuid\":\"" UUID "\"}",                                 /* no key at all */
		"{\"uuid\":\"" UUID "\",\"code_secret_key\":\"abcd\"}",     /* short hex */
		"{\"uuid\":\"" UUID "\",\"code_secret_key\":12}",           /* not a string */
		"{\"uuid\":\"" UUID "\",\"code_secret_key\":\"@KEY@\",\"unknown\":1}",
		"{\"uuid\":\"" UUID "\",\"code_secret_key\":\"@KEY@\",\"app_sealed_secrets\":\"a+b/c=\"}",
		"{\"uuid\":\"" UUID "\",\"code_secret_key\":\"@KEY@\",\"app_sealed_secrets\":\"AAAA\"}",
		"{\"uuid\":\"" UUID "\",\"code_secret_key\":\"@KEY@\",\"ssl_private_key\":\"x\"}",
		"{\"uuid\":\"" UUID "\",\"uuid\":\"" UUID "\",\"code_secret_key\":\"@KEY@\"}",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		subst(body, sizeof(body), cases[i], e->keyhex);
		call(e->cs, "POST", "/", body, &f);
		if (f.status != 400)
			fail_msg("case %zu: got %d (%s)", i, f.status, f.out);
		assert_string_equal(f.state, "Waiting");
		assert_nothing_written(e);
	}
	/* Sealed payload that is not a JSON object; sealed key that is not hex. */
	snprintf(body, sizeof(body),
		 "{\"uuid\":\"" UUID "\",\"code_secret_key\":\"%s\",\"app_sealed_secrets\":\"%s\"}",
		 e->keyhex, notobj);
	call(e->cs, "POST", "/", body, &f);
	assert_int_equal(f.status, 400);
	assert_non_null(strstr(f.out, "not a JSON object"));
	snprintf(body, sizeof(body), "{\"uuid\":\"" UUID "\",\"app_sealed_secrets\":\"%s\"}", badkey);
	call(e->cs, "POST", "/", body, &f);
	assert_int_equal(f.status, 400);
	/* The right format but the wrong key: decryption fails, nothing left behind. */
	memcpy(wrong, e->keyhex, sizeof(wrong));
	wrong[0] = wrong[0] == '0' ? '1' : '0';
	snprintf(body, sizeof(body),
		 "{\"uuid\":\"" UUID "\",\"code_secret_key\":\"%s\",\"app_secrets\":{\"s\":1}}", wrong);
	call(e->cs, "POST", "/", body, &f);
	assert_int_equal(f.status, 400);
	assert_non_null(strstr(f.out, "wrong key"));
	assert_nothing_written(e);
	free(notobj);
	free(badkey);
	env_free(e);
}

static void corrupt_code_file(void **state)
{
	struct env *e = env_new(0);
	struct fake f;
	char body[512], p[256];
	uint8_t *d;
	size_t n;

	(void)state;
	snprintf(p, sizeof(p), "%s/sub/mod.py.enc", e->app);
	d = tu_read(p, &n);
	d[n - 1] ^= 1;
	tu_write(p, d, n);
	free(d);
	snprintf(body, sizeof(body),
		 "{\"uuid\":\"" UUID "\",\"code_secret_key\":\"%s\",\"app_secrets\":{\"s\":1}}",
		 e->keyhex);
	call(e->cs, "POST", "/", body, &f);
	assert_int_equal(f.status, 400);
	assert_non_null(strstr(f.out, "sub/mod.py.enc"));
	assert_nothing_written(e);
	env_free(e);
}

static void success_then_replay(void **state)
{
	struct env *e = env_new(0);
	struct fake f;
	char body[1024], p[256];
	char *sealed = sealed_b64(e, "{\"db_password\":\"hunter2\"}");
	uint8_t *got, *want;
	size_t gn, wn;
	struct stat st;

	(void)state;
	snprintf(body, sizeof(body),
		 "{\"uuid\":\"" UUID "\",\"code_secret_key\":\"%s\",\"app_secrets\":{\"k\":[1,\"x\"]},"
		 "\"app_sealed_secrets\":\"%s\",\"ssl_private_key\":null}",
		 e->keyhex, sealed);
	call(e->cs, "POST", "/", body, &f);
	if (f.status != 200)
		fail_msg("got %d: %s", f.status, f.out);
	assert_int_equal(mse_confserver_wait(e->cs, 0), 1);
	want = tu_read(tu_vector("mse-code-secretbox/app.py"), &wn);
	snprintf(p, sizeof(p), "%s/app.py", e->module);
	got = tu_read(p, &gn);
	assert_int_equal(gn, wn);
	assert_memory_equal(got, want, wn);
	free(got);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(p, sizeof(p), "%s/sub/mod.py", e->module);
	got = tu_read(p, &gn);
	assert_memory_equal(got, want, wn);
	free(got);
	free(want);
	snprintf(p, sizeof(p), "%s/requirements.txt", e->module);
	got = tu_read(p, &gn);
	assert_memory_equal(got, "flask\n", 6);
	free(got);
	got = tu_read(e->secrets, &gn);
	assert_string_equal((char *)got, "{\"k\":[1,\"x\"]}");
	free(got);
	assert_int_equal(stat(e->secrets, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	got = tu_read(e->sealed, &gn);
	assert_string_equal((char *)got, "{\"db_password\":\"hunter2\"}");
	free(got);
	/* Replay: 409, and nothing changes. */
	call(e->cs, "POST", "/", body, &f);
	assert_int_equal(f.status, 409);
	call(e->cs, "GET", "/", NULL, &f);
	assert_string_equal(f.state, "Provisioned");
	free(sealed);
	env_free(e);
}

/*
 * Under Gramine MODULE_PATH is an encrypted mount point: it exists, empty,
 * before provisioning. The code is installed into it, and an install that
 * was interrupted there (a leftover .mse-install-*) does not count as
 * provisioned: it is cleared and done again.
 */
static void module_path_as_mount_point(void **state)
{
	struct env *e = env_new(0);
	struct fake f;
	char body[1024], p[256];
	uint8_t *got, *want;
	size_t gn, wn;

	(void)state;
	assert_int_equal(tu_sh("mkdir -p %s", e->module), 0);
	assert_false(mse_confserver_module_ready(e->module));
	/* What a crash during the in-place move leaves behind. */
	assert_int_equal(tu_sh("mkdir -p %s/.mse-install-abc && echo stale > %s/stale.py", e->module,
			       e->module),
			 0);
	assert_false(mse_confserver_module_ready(e->module));
	snprintf(body, sizeof(body),
		 "{\"uuid\":\"" UUID "\",\"code_secret_key\":\"%s\",\"app_secrets\":{\"k\":1}}",
		 e->keyhex);
	call(e->cs, "POST", "/", body, &f);
	if (f.status != 200)
		fail_msg("got %d: %s", f.status, f.out);
	assert_true(mse_confserver_module_ready(e->module));
	want = tu_read(tu_vector("mse-code-secretbox/app.py"), &wn);
	snprintf(p, sizeof(p), "%s/sub/mod.py", e->module);
	got = tu_read(p, &gn);
	assert_int_equal(gn, wn);
	assert_memory_equal(got, want, wn);
	free(got);
	free(want);
	snprintf(p, sizeof(p), "%s/stale.py", e->module);
	assert_false(mse_file_exists(p));
	assert_int_equal(tu_sh("test -z \"$(find %s -name '.mse-install-*')\"", e->module), 0);
	/* Provisioned now: a second configuration is refused. */
	call(e->cs, "POST", "/", body, &f);
	assert_int_equal(f.status, 409);
	env_free(e);
}

/* A wrong key into the mount point leaves it empty, not half-provisioned. */
static void mount_point_failure_leaves_it_empty(void **state)
{
	struct env *e = env_new(0);
	struct fake f;
	char body[512], wrong[65];

	(void)state;
	assert_int_equal(tu_sh("mkdir -p %s", e->module), 0);
	memcpy(wrong, e->keyhex, sizeof(wrong));
	wrong[0] = wrong[0] == '0' ? '1' : '0';
	snprintf(body, sizeof(body), "{\"uuid\":\"" UUID "\",\"code_secret_key\":\"%s\"}", wrong);
	call(e->cs, "POST", "/", body, &f);
	assert_int_equal(f.status, 400);
	assert_int_equal(tu_sh("test -d %s && test -z \"$(ls -A %s)\"", e->module, e->module), 0);
	assert_false(mse_confserver_module_ready(e->module));
	env_free(e);
}

static void code_key_inside_sealed_secrets(void **state)
{
	struct env *e = env_new(0);
	struct fake f;
	char body[1024], plain[256], p[256];
	char *sealed;

	(void)state;
	snprintf(plain, sizeof(plain), "{\"code_secret_key\":\"%s\",\"x\":1}", e->keyhex);
	sealed = sealed_b64(e, plain);
	snprintf(body, sizeof(body), "{\"uuid\":\"" UUID "\",\"app_sealed_secrets\":\"%s\"}", sealed);
	call(e->cs, "POST", "/", body, &f);
	if (f.status != 200)
		fail_msg("got %d: %s", f.status, f.out);
	snprintf(p, sizeof(p), "%s/app.py", e->module);
	assert_true(mse_file_exists(p));
	assert_false(mse_file_exists(e->secrets));
	free(sealed);
	env_free(e);
}

static void oversized_is_413(void **state)
{
	struct env *e = env_new(0);
	struct fake f;
	char *big = malloc(5000);

	(void)state;
	memset(big, ' ', 4999);
	big[4999] = 0;
	assert_int_equal(call(e->cs, "POST", "/", big, &f), -1);
	assert_int_equal(f.status, 413);
	assert_nothing_written(e);
	free(big);
	env_free(e);
}

static void plaincode_needs_no_key(void **state)
{
	struct env *e = env_new(1);
	struct fake f;
	char p[256];

	(void)state;
	call(e->cs, "POST", "/", "{\"uuid\":\"" UUID "\",\"app_secrets\":[]}", &f);
	if (f.status != 200)
		fail_msg("got %d: %s", f.status, f.out);
	snprintf(p, sizeof(p), "%s/app.py.enc", e->module); /* copied as is */
	assert_true(mse_file_exists(p));
	env_free(e);
}

struct racer {
	struct env *e;
	const char *body;
	int status;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	struct fake f;

	call(r->e->cs, "POST", "/", r->body, &f);
	r->status = f.status;
	return NULL;
}

static void concurrent_posts_provision_once(void **state)
{
	struct env *e = env_new(0);
	char body[512];
	struct racer r[8];
	pthread_t t[8];
	int i, ok = 0, conflict = 0;

	(void)state;
	snprintf(body, sizeof(body), "{\"uuid\":\"" UUID "\",\"code_secret_key\":\"%s\"}", e->keyhex);
	for (i = 0; i < 8; i++) {
		r[i] = (struct racer){e, body, 0};
		pthread_create(&t[i], NULL, race, &r[i]);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		ok += r[i].status == 200;
		conflict += r[i].status == 409;
	}
	assert_int_equal(ok, 1);
	assert_int_equal(conflict, 7);
	env_free(e);
}

static void wait_times_out_and_cancels(void **state)
{
	struct env *e = env_new(0);

	(void)state;
	assert_int_equal(mse_confserver_wait(e->cs, 50), 0);
	mse_confserver_cancel(e->cs);
	assert_int_equal(mse_confserver_wait(e->cs, -1), -1);
	env_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(get_says_waiting),
		cmocka_unit_test(uuid_checked_first),
		cmocka_unit_test(bad_inputs_are_400_and_write_nothing),
		cmocka_unit_test(corrupt_code_file),
		cmocka_unit_test(success_then_replay),
		cmocka_unit_test(module_path_as_mount_point),
		cmocka_unit_test(mount_point_failure_leaves_it_empty),
		cmocka_unit_test(code_key_inside_sealed_secrets),
		cmocka_unit_test(oversized_is_413),
		cmocka_unit_test(plaincode_needs_no_key),
		cmocka_unit_test(concurrent_posts_provision_once),
		cmocka_unit_test(wait_times_out_and_cancels),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
