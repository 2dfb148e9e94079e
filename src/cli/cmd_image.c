/* SPDX-License-Identifier: Apache-2.0 */
/* mse image — container images of an app and of the coordinator (docs/kubernetes.md). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "common/num.h"
#include "operator/image.h"

static const char usage[] =
	"Usage: mse image build --project DIR [--package PKG.tar] [--tag TAG] [--bin-dir DIR]\n"
	"                       [--cache DIR] [--output DIR] [--no-load] [--sgx] [--json]\n"
	"\n"
	"Builds two images without any registry, from a minimal Debian base made by\n"
	"mmdebstrap from this machine's apt sources and cached, and loads them into podman:\n"
	"  localhost/mse-NAME:TAG         mse-bootstrap, Debian's python3, the app's\n"
	"                                 requirements as Debian python3-* packages and the\n"
	"                                 ENCRYPTED code (/opt/mse/app): the code key only\n"
	"                                 ever comes from the coordinator\n"
	"  localhost/mse-coordinator:TAG  mse-coordinator\n"
	"Reproducible: the same package, binaries and cached base give the same digests\n"
	"(every file time at SOURCE_DATE_EPOCH, default 0; names sorted; owner 0:0).\n"
	"Prints each image's ID (its config digest) and manifest digest.\n"
	"\n"
	"Each requirement of requirements.txt must be installed here from a Debian package:\n"
	"it is found through its dist-info/egg-info in /usr/lib/python3/dist-packages and\n"
	"dpkg -S; one that is not is an error naming it and its line.\n"
	"\n"
	"  --project DIR   the app's project (DIR/mse.toml, its code's requirements.txt)\n"
	"  --package FILE  the package to ship (default: the newest DIR/.mse/package.*/\n"
	"                  package_*.tar, as 'mse coordinator manifest --project' makes)\n"
	"  --tag TAG       the images' tag (default latest)\n"
	"  --bin-dir DIR   where mse-bootstrap and mse-coordinator are (default: beside mse)\n"
	"  --cache DIR     the base cache (default $MSE_CACHE, else ~/.cache/mse-c): one\n"
	"                  image-base-SUITE-KEY.tar per package list, KEY from its SHA-256\n"
	"  --output DIR    keep the OCI image layouts in DIR/mse-NAME, DIR/mse-coordinator\n"
	"  --no-load       write the layouts only (with --output), no podman\n"
	"  --sgx           the SGX image: refused here, it needs Gramine (not in Debian)\n"
	"  --json          one JSON object: {\"ok\": true, \"app\": {\"ref\", \"id\",\n"
	"                  \"manifest\", \"base\"}, \"coordinator\": {...}}\n"
	"  -h, --help      this help\n"
	"\n"
	"Needs root, mmdebstrap, podman. Exit status: 0 built, 1 failure, 2 usage error.\n";

enum { O_PROJECT = 1000, O_PACKAGE, O_TAG, O_BIN, O_CACHE, O_OUTPUT, O_NOLOAD, O_SGX, O_JSON };

static json_t *built_json(const struct mse_image_built *b)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "ref", b->ref, "id", b->id, "manifest", b->manifest,
			 "base", b->base);
}

int cmd_image(int argc, char **argv)
{
	static const struct option opts[] = {
		{"project", required_argument, NULL, O_PROJECT},
		{"package", required_argument, NULL, O_PACKAGE},
		{"tag", required_argument, NULL, O_TAG},
		{"bin-dir", required_argument, NULL, O_BIN},
		{"cache", required_argument, NULL, O_CACHE},
		{"output", required_argument, NULL, O_OUTPUT},
		{"no-load", no_argument, NULL, O_NOLOAD},
		{"sgx", no_argument, NULL, O_SGX},
		{"json", no_argument, NULL, O_JSON},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct mse_image_opts o = {0};
	struct mse_image_result res;
	struct mse_err err;
	const char *sde = getenv("SOURCE_DATE_EPOCH");
	int c, json = 0;

	if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		fputs(usage, stdout);
		return MSE_EXIT_OK;
	}
	if (argc < 2 || strcmp(argv[1], "build") != 0)
		return cli_usage_error("image", "expected the subcommand 'build', got '%s'",
				       argc < 2 ? "" : argv[1]);
	argc--;
	argv++;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case O_PROJECT: o.project = optarg; break;
		case O_PACKAGE: o.package = optarg; break;
		case O_TAG: o.tag = optarg; break;
		case O_BIN: o.bin_dir = optarg; break;
		case O_CACHE: o.cache = optarg; break;
		case O_OUTPUT: o.out_dir = optarg; break;
		case O_NOLOAD: o.no_load = 1; break;
		case O_SGX: o.sgx = 1; break;
		case O_JSON: json = 1; break;
		case 'h': fputs(usage, stdout); return MSE_EXIT_OK;
		default: return cli_usage_error("image", "unknown option");
		}
	}
	if (optind < argc)
		return cli_usage_error("image", "unexpected argument '%s'", argv[optind]);
	if (!o.project)
		return cli_usage_error("image", "--project DIR is required");
	if (o.tag && (!*o.tag || strlen(o.tag) > 128 || strspn(o.tag, "abcdefghijklmnopqrstuvwxyz"
							       "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
							       "0123456789_.-") != strlen(o.tag)))
		return cli_usage_error("image", "--tag: expected [A-Za-z0-9_.-]{1,128}, got '%s'",
				       o.tag);
	if (sde && *sde) {
		uint64_t v;

		if (mse_num_parse(sde, 0, INT64_MAX, &v) != 0)
			return cli_usage_error("image", "SOURCE_DATE_EPOCH: expected seconds since "
							"1970, got '%s'", sde);
		o.epoch = (long long)v;
	}
	o.log = json ? NULL : stderr;
	mse_err_clear(&err);
	if (mse_image_build(&o, &res, &err) != 0) {
		if (json)
			return cli_json_fail(&err);
		return cli_fail("image", &err);
	}
	if (json) {
		json_t *j = cli_json_new(1);

		json_object_set_new(j, "app", built_json(&res.app));
		json_object_set_new(j, "coordinator", built_json(&res.coordinator));
		cli_json_print(j);
		return MSE_EXIT_OK;
	}
	printf("%-40s id %s\n%-40s manifest %s\n", res.app.ref, res.app.id, "", res.app.manifest);
	printf("%-40s id %s\n%-40s manifest %s\n", res.coordinator.ref, res.coordinator.id, "",
	       res.coordinator.manifest);
	return MSE_EXIT_OK;
}
