/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_project — an app's mse.toml, loaded and checked.
 *
 * The schema is MSE's (Cosmian mse-cli `AppConf` / `CloudConf` / `SSLConf`):
 *
 *   name                  string, 1..255 characters (no '/', '\', control chars; not "." or "..")
 *   python_application    "module:variable"; the module file must exist in the code directory
 *   app_interface         optional: "auto" (default: detected), "wsgi", "asgi" (either ASGI
 *                         version, detected), "asgi3", "asgi2"
 *   healthcheck_endpoint  string starting with "/"
 *   tests_cmd             string
 *   tests_requirements    array of strings
 *   [cloud]               optional; if present docker, code, tests, project, hardware are required
 *     code, tests         paths, relative to the mse.toml's directory unless absolute
 *     docker, project     strings (project 1..255)
 *     hardware            string 1..16
 *     expiration_date     TOML date-time, or a string "2024-03-14T00:00:00Z" /
 *                         "2024-03-14 00:00:00+00:00" (no offset = local time); after "now"
 *     secrets             path of a JSON file (must exist and hold JSON)
 *     dev_mode            boolean
 *     [cloud.ssl]         optional; domain_name, private_key, certificate all required
 *       certificate       PEM file; its SAN must cover domain_name (or its wildcard), and
 *                         expiration_date must not be after its notAfter (without an
 *                         expiration_date, the certificate's notAfter is used)
 *       private_key       path only: the key is read when it is used, never at load
 *
 * Unknown keys are errors (with "did you mean"). The loader reports EVERY
 * error it finds, each as `mse.toml:LINE:COL: FIELD: what, expected vs got`.
 *
 * Ownership: mse_project_load allocates *out; mse_project_free releases it
 * and every string in it (NULL-safe). All paths in the struct are absolute
 * and lexically normalised (no symlink resolution: files may not exist yet).
 */
#ifndef MSE_PROJECT_H
#define MSE_PROJECT_H

#include <stddef.h>
#include <time.h>

#include "common/buf.h"
#include "common/err.h"

/* The code directory when neither --code nor [cloud] code says otherwise. */
#define MSE_PROJECT_DEFAULT_CODE "mse_src"
/* The tests directory when [cloud] tests does not say otherwise. */
#define MSE_PROJECT_DEFAULT_TESTS "tests"

struct mse_project_opts {
	time_t now;           /* "now" for expiration checks; 0 = time(NULL) */
	const char *code_dir; /* overrides [cloud] code (relative = to the cwd); NULL = none */
};

struct mse_project_ssl {
	char *domain_name;
	char *private_key;     /* absolute path; NOT read at load */
	char *certificate;     /* absolute path of the PEM chain (leaf first) */
	time_t cert_not_after; /* the leaf's notAfter */
};

struct mse_project_cloud {
	char *code;  /* absolute, as written in [cloud] code (code_dir below is what to use) */
	char *tests; /* absolute */
	char *docker;
	char *project;
	char *hardware;
	char *secrets; /* absolute path, NULL if not set */
	int dev_mode;
	int has_expiration;
	time_t expiration; /* expiration_date, or the certificate's notAfter with [cloud.ssl] */
	struct mse_project_ssl *ssl; /* NULL without [cloud.ssl] */
};

struct mse_project {
	char *path; /* absolute path of the mse.toml */
	char *dir;  /* its directory */
	char *name;
	char *python_application; /* "module:variable" as written */
	char *python_module;      /* "app", "pkg.app" */
	char *python_variable;    /* "app", or the factory "create_app" */
	char *python_call;        /* a factory's "(ARGUMENTS)", NULL for a variable (config/appspec.h) */
	char *app_interface;      /* as written; NULL if not set (auto) */
	char *module_file;        /* absolute path of the module's .py (or package __init__.py) */
	char *healthcheck_endpoint;
	char *tests_cmd;
	char **tests_requirements;
	size_t n_tests_requirements;
	char *code_dir;  /* absolute: opts->code_dir, else [cloud] code, else DIR/mse_src */
	char *tests_dir; /* absolute: [cloud] tests, else DIR/tests */
	struct mse_project_cloud *cloud; /* NULL without [cloud] */
};

/*
 * Loads and checks the mse.toml at path. Returns 0 and *out on success;
 * -1 with *out NULL and at least one error appended to errs otherwise (errs
 * is appended to, never cleared; the caller frees it). opts may be NULL.
 */
int mse_project_load(const char *path, const struct mse_project_opts *opts, struct mse_project **out,
		     struct mse_errlist *errs) MSE_MUST_CHECK;
/* mse_project_load for callers that report one error: the first into err. */
int mse_project_load_first(const char *path, const struct mse_project_opts *opts,
			   struct mse_project **out, struct mse_err *err) MSE_MUST_CHECK;
void mse_project_free(struct mse_project *p);

/* Writes the resolved settings, one "key = value" per line (what `mse check` prints). */
void mse_project_print(const struct mse_project *p, FILE *f);

#endif
