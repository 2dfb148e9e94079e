/* SPDX-License-Identifier: Apache-2.0 */
#include "operator/roll.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/num.h"
#include "operator/cspawn.h"
#include "operator/instance.h"

struct old {
	char name[MSE_INSTANCE_NAME_MAX + 1];
	unsigned k;
};

static void say(const struct mse_roll_opts *o, const char *fmt, ...) MSE_PRINTF(2, 3);

static void say(const struct mse_roll_opts *o, const char *fmt, ...)
{
	char t[1024];
	va_list ap;

	if (!o->progress)
		return;
	va_start(ap, fmt);
	vsnprintf(t, sizeof(t), fmt, ap);
	va_end(ap);
	o->progress(o->progress_ctx, t);
}

/* K of FAMILY-K, or 0. */
static unsigned index_in(const char *family, const char *name)
{
	size_t n = strlen(family);
	uint64_t k;

	if (strncmp(name, family, n) != 0 || name[n] != '-' || name[n + 1] == '0' ||
	    mse_num_parse(name + n + 1, 1, 1000000, &k) != 0)
		return 0;
	return (unsigned)k;
}

static int cmp_old(const void *a, const void *b)
{
	const struct old *x = a, *y = b;

	return x->k < y->k ? -1 : x->k > y->k;
}

static int wait_healthy(const struct mse_roll_opts *o, const char *name, uint16_t *port,
			char metrics[300], struct mse_err *err)
{
	struct mse_instance ri;
	enum mse_instance_status h = MSE_STATUS_INITIALIZING;
	char detail[600] = "";
	int t, limit = (o->timeout_s ? o->timeout_s : 120) * 10;

	if (mse_instance_load(&ri, name, err) != 0)
		return -1;
	for (t = 0; t < limit; t++) {
		h = mse_instance_probe(&ri, detail, sizeof(detail));
		if (h == MSE_STATUS_RUNNING || h == MSE_STATUS_ON_ERROR || h == MSE_STATUS_STOPPED)
			break;
		usleep(100000);
	}
	if (h != MSE_STATUS_RUNNING) {
		/* The caller removes it, log and all: its last words go in the error. */
		char tail[600];

		mse_instance_log_tail(ri.log_path, 6, tail, sizeof(tail));
		return mse_err_set(err, "new replica %s: %s (%s); its last words:\n%s", name,
				   mse_instance_status_name(h), detail, tail[0] ? tail : "(nothing)");
	}
	*port = ri.port;
	snprintf(metrics, 300, "%s", ri.metrics);
	return 0;
}

static int drop(const struct mse_roll_opts *o, const char *name, const char *why,
		struct mse_err *err)
{
	struct mse_instance old;

	if (mse_instance_load(&old, name, err) != 0)
		return -1;
	say(o, "stopping and removing %s (%s)", name, why);
	if (mse_instance_stop(&old, 10000, err) != 0 || mse_instance_remove(&old, err) != 0)
		return -1;
	return 0;
}

static int spawn_one(const struct mse_roll_opts *o, const char *family, unsigned k,
		     const struct mse_instance *tmpl, char *name, struct mse_err *err)
{
	struct mse_instance ri;
	struct mse_cspawn_opts so = {.host = "127.0.0.1",
				     .coordinator = o->coordinator,
				     .coordinator_mrenclave = o->coordinator_mrenclave,
				     .sgx = o->sgx,
				     .signer_key = o->signer_key,
				     .pccs_url = o->pccs_url,
				     .sim_root_hex = o->sim_root_hex,
				     .isvprodid = o->isvprodid,
				     .isvsvn = o->isvsvn};

	snprintf(name, MSE_INSTANCE_NAME_MAX + 1, "%.50s-%u", family, k);
	so.name = name;
	so.package = o->package ? o->package : tmpl ? tmpl->package : NULL;
	so.san = o->san ? o->san : tmpl && tmpl->san[0] ? tmpl->san : "localhost";
	so.size_mb = o->size_mb ? o->size_mb : tmpl ? tmpl->size_mb : 0;
	if (tmpl && tmpl->host[0])
		so.host = tmpl->host;
	so.metrics = o->metrics ? o->metrics : tmpl && tmpl->metrics[0] ? tmpl->metrics : NULL;
	so.metrics_search = 1;
	if (!so.package)
		return mse_err_set(err, "no package for the new replica %s", name);
	return mse_cspawn_replica(&so, &ri, err);
}

int mse_roll_replicas(const struct mse_roll_opts *o, struct mse_roll_result *res,
		      struct mse_err *err)
{
	char **names = NULL, family[MSE_INSTANCE_NAME_MAX + 1] = "";
	size_t count = 0, i;
	struct old *olds = NULL;
	size_t n_old = 0;
	unsigned maxk = 0, want, j;
	int rc = -1;

	memset(res, 0, sizeof(*res));
	if (o->family)
		snprintf(family, sizeof(family), "%s", o->family);
	if (mse_instance_list(&names, &count, err) != 0)
		return -1;
	if (!(olds = calloc(count ? count : 1, sizeof(*olds)))) {
		mse_err_set(err, "out of memory");
		goto out;
	}
	for (i = 0; i < count; i++) {
		struct mse_instance in;
		unsigned k;

		/* With a family (deploy): its replicas, wherever their coordinator listened
		 * (a restarted one may have another port); without: this coordinator's. */
		if (mse_instance_load(&in, names[i], NULL) != 0 ||
		    strcmp(in.role, "replica") != 0 ||
		    (!o->family && strcmp(in.coordinator, o->coordinator) != 0))
			continue;
		if (!family[0]) {
			/* The family of the first replica found: NAME of NAME-K. */
			const char *dash = strrchr(in.name, '-');

			if (!dash || dash == in.name)
				continue;
			snprintf(family, sizeof(family), "%.*s", (int)(dash - in.name), in.name);
		}
		if (!(k = index_in(family, in.name)))
			continue;
		snprintf(olds[n_old].name, sizeof(olds[n_old].name), "%s", in.name);
		olds[n_old++].k = k;
	}
	if (!family[0]) {
		if (!o->replicas) { /* nothing here to roll, nothing asked for */
			say(o, "no replica of the coordinator at %s on this machine (mse list): "
			       "nothing to roll",
			    o->coordinator);
			rc = 0;
			goto out;
		}
		mse_err_set(err, "no replica of the coordinator at %s on this machine (mse list) "
				 "to take the name and options from",
			    o->coordinator);
		goto out;
	}
	/* Every instance of the family counts for the next K, whatever its role. */
	for (i = 0; i < count; i++) {
		unsigned k = index_in(family, names[i]);

		if (k > maxk)
			maxk = k;
	}
	qsort(olds, n_old, sizeof(*olds), cmp_old);
	want = o->replicas ? o->replicas : (unsigned)n_old;
	if (want == 0 || want > MSE_ROLL_MAX) {
		mse_err_field(err, "replicas", "expected 1..%d, got %u", MSE_ROLL_MAX, want);
		goto out;
	}
	/* Replacements: one at a time, the new one healthy before an old one stops. */
	for (j = 0; j < want && j < n_old; j++) {
		struct mse_instance tmpl;
		char name[MSE_INSTANCE_NAME_MAX + 1];
		uint16_t port = 0;

		if (mse_instance_load(&tmpl, olds[j].name, err) != 0)
			goto out;
		if (spawn_one(o, family, ++maxk, &tmpl, name, err) != 0)
			goto out;
		say(o, "started %s to replace %s; waiting for its health check", name,
		    olds[j].name);
		if (wait_healthy(o, name, &port, res->metrics[res->n], err) != 0) {
			struct mse_err e2;

			mse_err_clear(&e2);
			if (drop(o, name, "did not become healthy; the old replicas keep serving",
				 &e2) != 0)
				mse_err_prefix(err, "(and %s could not be removed: %s)", name,
					       e2.msg);
			goto out;
		}
		say(o, "%s is healthy (port %u): %s can stop", name, (unsigned)port, olds[j].name);
		snprintf(res->names[res->n], sizeof(res->names[0]), "%s", name);
		res->ports[res->n++] = port;
		if (drop(o, olds[j].name, "replaced", err) != 0)
			goto out;
		res->replaced++;
	}
	/* More than there were: started together, then waited for. */
	for (; j < want; j++) {
		char name[MSE_INSTANCE_NAME_MAX + 1];

		if (spawn_one(o, family, ++maxk, NULL, name, err) != 0)
			goto out;
		snprintf(res->names[res->n++], sizeof(res->names[0]), "%s", name);
	}
	for (j = res->replaced; j < res->n; j++) {
		if (wait_healthy(o, res->names[j], &res->ports[j], res->metrics[j], err) == 0)
			continue;
		/* As for a replacement: the new ones that are not all healthy go. */
		for (unsigned d = res->replaced; d < res->n; d++) {
			struct mse_err e2;

			mse_err_clear(&e2);
			if (drop(o, res->names[d], "the new replicas are not all healthy", &e2) != 0)
				say(o, "%s could not be removed: %s", res->names[d], e2.msg);
		}
		res->n = res->replaced;
		goto out;
	}
	/* Fewer than there were: the rest stop. */
	for (j = want; j < n_old; j++) {
		char why[64];

		snprintf(why, sizeof(why), "beyond --replicas %u", want);
		if (drop(o, olds[j].name, why, err) != 0)
			goto out;
		res->removed++;
	}
	rc = 0;
out:
	free(olds);
	mse_instance_names_free(names, count);
	return rc;
}
