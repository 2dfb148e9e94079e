/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_image — container images of an app (mse-bootstrap, Debian's python3,
 * the app's requirements as Debian packages, the ENCRYPTED code) and of the
 * coordinator (mse-coordinator), built without any registry and reproducibly
 * (docs/kubernetes.md).
 *
 * Each image has two layers: a Debian base made by mmdebstrap from this
 * machine's apt sources (minbase plus the packages the binaries link against
 * and the app's requirements; one base for both images), cached as a tarball in the cache directory and
 * keyed by the SHA-256 of its sorted package list; and a small layer of our
 * own files, written by GNU tar with sorted names, owner 0:0, fixed modes and
 * every mtime at SOURCE_DATE_EPOCH. The OCI config's "created" is
 * SOURCE_DATE_EPOCH too, and its JSON is written with sorted keys, so the
 * same inputs (package, binaries, cached base) give the same config digest,
 * which is the image ID podman reports after `podman load` of the OCI layout.
 *
 * Requirements map to Debian packages through the installed distribution's
 * metadata: the *.dist-info / *.egg-info of /usr/lib/python3/dist-packages
 * whose normalised name (PEP 503) is the requirement's, then `dpkg -S` on it.
 * A requirement with no such package installed here is an error naming it.
 *
 * Needs root (mmdebstrap --mode=root, podman as root), mmdebstrap, tar,
 * dpkg, ldd and podman.
 */
#ifndef MSE_IMAGE_H
#define MSE_IMAGE_H

#include <stdio.h>

#include "common/buf.h"
#include "common/err.h"

struct mse_image_opts {
	const char *project;  /* the project directory (DIR/mse.toml) */
	const char *package;  /* the package .tar; NULL = the newest DIR/.mse/package.* one */
	const char *bin_dir;  /* where mse-bootstrap and mse-coordinator are; NULL = next to mse */
	const char *cache;    /* NULL = $MSE_CACHE, else $XDG_CACHE_HOME/mse-c or ~/.cache/mse-c */
	const char *tag;      /* NULL = "latest" */
	const char *out_dir;  /* keep the OCI layouts here; NULL = a temporary directory */
	long long epoch;      /* SOURCE_DATE_EPOCH (seconds) */
	int sgx;              /* refused: the SGX image needs Gramine, not buildable here */
	int no_load;          /* write the layouts only (needs out_dir), no podman */
	FILE *log;            /* progress; NULL = silent */
};

struct mse_image_built {
	char ref[256];       /* localhost/NAME:TAG */
	char id[72];         /* sha256:<config digest> = podman's image ID */
	char manifest[72];   /* sha256:<manifest digest> */
	char base[4096];     /* the cached base tarball used */
};

struct mse_image_result {
	struct mse_image_built app, coordinator;
};

int mse_image_build(const struct mse_image_opts *o, struct mse_image_result *res,
		    struct mse_err *err) MSE_MUST_CHECK;

/*
 * The Debian package that installed the Python distribution `name` here
 * (PEP 503 name match on dist-packages metadata, then dpkg -S). 0 and the
 * package in out; -1 with err naming the requirement.
 */
int mse_image_requirement_package(const char *name, char *out, size_t size,
				  struct mse_err *err) MSE_MUST_CHECK;

/*
 * A DNS-1123 label from an app's name (lowercase letters, digits, '-'):
 * "My_App" -> "my-app". The images are localhost/mse-LABEL, the Kubernetes
 * objects LABEL and LABEL-coordinator.
 */
int mse_image_name(const char *in, char *out, size_t size, struct mse_err *err) MSE_MUST_CHECK;

#endif
