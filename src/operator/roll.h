/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_roll — replaces the replicas of one coordinator one at a time (`mse
 * coordinator update`, `mse deploy --replicas N` on a changed project): a
 * new replica is started and must answer its health check before an old one
 * is stopped and removed, so the service never has fewer healthy replicas
 * than before. A new replica that does not become healthy is stopped and
 * removed, the old ones keep running, and the roll stops with its error.
 *
 * Replicas are instances (operator/instance.h) of role "replica" named
 * FAMILY-K (K = 1, 2, ...) — with o->family, all of that family; without,
 * those whose coordinator is o->coordinator: new ones take the next free K,
 * so names are never reused during a roll.
 *
 * With no replica of that coordinator here and o->replicas 0, there is
 * nothing to roll: 0, res->n 0.
 *
 * Ownership: opts borrowed; the result is caller-owned (plain arrays).
 */
#ifndef MSE_ROLL_H
#define MSE_ROLL_H

#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

#define MSE_ROLL_MAX 64

struct mse_roll_opts {
	const char *family;		   /* NAME: replicas NAME-K; NULL: from the old ones */
	const char *coordinator;	   /* HOST:PORT */
	const char *coordinator_mrenclave; /* 64 hex digits */
	const char *package;		   /* NULL: each old replica's own package */
	unsigned replicas;		   /* wanted; 0: as many as there are now */
	const char *san;		   /* NULL: the old replica's (or localhost) */
	uint32_t size_mb;		   /* 0: the old replica's */
	int timeout_s;			   /* health wait per replica; 0: 120 */
	/* New replicas under Gramine (operator/cspawn.h): sgx, the operator's
	 * signer key, the PCCS, --trust-sim-root, sgx.isvprodid/isvsvn. */
	int sgx;
	const char *signer_key, *pccs_url, *sim_root_hex;
	unsigned isvprodid, isvsvn;
	/* the replicas' metrics, "HOST:PORT": each takes PORT or the first free
	 * port above it (0: any free one); NULL: a replacement keeps its old
	 * replica's address (port searched from there), a new one has none */
	const char *metrics;
	void (*progress)(void *ctx, const char *text);
	void *progress_ctx;
};

struct mse_roll_result {
	unsigned n;
	char names[MSE_ROLL_MAX][65];
	uint16_t ports[MSE_ROLL_MAX];
	char metrics[MSE_ROLL_MAX][300]; /* each one's metrics address, "" for none */
	unsigned replaced, removed;
};

int mse_roll_replicas(const struct mse_roll_opts *o, struct mse_roll_result *res,
		      struct mse_err *err) MSE_MUST_CHECK;

#endif
