/* SPDX-License-Identifier: Apache-2.0 */
/*
 * src/config/project: the mse.toml loader.
 *
 * First the table of expected results from issue 3 over MSE's own files
 * (../shared/vectors/mse-cli-config, code directory = a temp dir holding
 * app.py, now = 2024-01-01T00:00:00Z), then our own error cases, each
 * checked for file:line:col and field. Expected times come from
 * `openssl x509 -enddate` and Python's calendar.timegm, not from this code.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config/project.h"

#define NOW_2024 ((time_t)1704067200)         /* 2024-01-01T00:00:00Z */
#define CERT_NOT_AFTER ((time_t)1710404610)   /* cert.pem: Mar 14 08:23:30 2024 GMT */
#define ALL_SET_EXPIRES ((time_t)1710374400)  /* 2024-03-14 00:00:00+00:00 */

struct fx {
	char dir[64];      /* temp dir */
	char code[128];    /* temp dir/code, holds app.py */
	char empty[128];   /* temp dir/empty, no app.py */
	struct mse_errlist errs;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "%s", tu_tmpdir());
	snprintf(f->code, sizeof(f->code), "%s/code", f->dir);
	snprintf(f->empty, sizeof(f->empty), "%s/empty", f->dir);
	mkdir(f->code, 0755);
	mkdir(f->empty, 0755);
	tu_sh("cp '%s' '%s/app.py'", tu_vector("mse-cli-config/app.py"), f->code);
	mse_errlist_init(&f->errs);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	mse_errlist_free(&f->errs);
	tu_rmtree(f->dir);
	free(f);
	return 0;
}

static void dump(const struct mse_errlist *l)
{
	char buf[2048];

	for (size_t i = 0; i < l->len; i++)
		print_message("  error: %s\n", mse_err_str(&l->items[i], buf, sizeof(buf)));
}

static struct mse_project *load(struct fx *f, const char *path, const char *code, time_t now)
{
	struct mse_project_opts o = {.now = now, .code_dir = code};
	struct mse_project *p = NULL;

	mse_errlist_free(&f->errs);
	if (mse_project_load(path, &o, &p, &f->errs) != 0) {
		assert_null(p);
		assert_true(mse_errlist_count(&f->errs) > 0);
		return NULL;
	}
	assert_int_equal(mse_errlist_count(&f->errs), 0);
	return p;
}

static void must_load(struct fx *f, const char *vec)
{
	struct mse_project *p = load(f, tu_vector(vec), f->code, NOW_2024);

	if (!p) {
		dump(&f->errs);
		fail_msg("%s should load", vec);
	}
	mse_project_free(p);
}

/*
 * Some error in errs has this field, line, col (0 = don't care about
 * position) and message fragment; the printed form starts with file:line:col.
 */
static void has_error(struct fx *f, const char *file, const char *field, int line, int col,
		      const char *frag)
{
	char buf[2048], prefix[512];

	for (size_t i = 0; i < f->errs.len; i++) {
		const struct mse_err *e = &f->errs.items[i];

		char m[2048];

		if (strcmp(e->field, field) != 0 || !strstr(mse_err_message(e, m, sizeof(m)), frag))
			continue;
		if (line && (e->line != line || e->col != col))
			continue;
		mse_err_str(e, buf, sizeof(buf));
		if (line)
			snprintf(prefix, sizeof(prefix), "%s:%d:%d: %s%s", file, line, col, field, *field ? ": " : "");
		else
			snprintf(prefix, sizeof(prefix), "%s: %s%s", file, field, *field ? ": " : "");
		assert_memory_equal(buf, prefix, strlen(prefix));
		return;
	}
	dump(&f->errs);
	fail_msg("no error %s:%d:%d %s '%s'", file, line, col, field, frag);
}

/* Writes text to DIR/name and returns the path (static buffer). */
static const char *write_toml(struct fx *f, const char *name, const char *text)
{
	static char path[256];

	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	tu_write(path, text, strlen(text));
	return path;
}

#define BASE                                                                                       \
	"name = \"helloworld\"\n"                                                                  \
	"python_application = \"app:app\"\n"                                                       \
	"healthcheck_endpoint = \"/\"\n"                                                           \
	"tests_cmd = \"pytest\"\n"                                                                 \
	"tests_requirements = [\"pytest\"]\n"

/* ---- the table ---------------------------------------------- */

static void mse_files_that_load(void **state)
{
	struct fx *f = *state;
	static const char *const ok[] = {
		"mse.toml", "home-mse.toml", "all_set.toml", "cloud_without_optionals.toml",
		"cloud_ssl_without_optionals.toml",
		/* MSE's server refused these (unknown image, project, plan): not a file check */
		"bad_docker.toml", "bad_docker_latest.toml", "bad_project_name.toml", "non_free_plan.toml",
		/* loads when the code directory has app.py */
		"bad_python_application.toml",
	};
	char rel[128];

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		snprintf(rel, sizeof(rel), "mse-cli-config/%s", ok[i]);
		must_load(f, rel);
	}
}

/*
 * An absolute path naming the same file as want: the loader keeps the path
 * as given (symbolic links unresolved), so compare what they resolve to.
 */
static void assert_same_file(const char *got, const char *want)
{
	char *a, *b;

	assert_non_null(got);
	assert_true(got[0] == '/');
	a = realpath(got, NULL);
	b = realpath(want, NULL);
	assert_non_null(a);
	assert_non_null(b);
	assert_string_equal(a, b);
	free(a);
	free(b);
}

static void all_set_resolves_every_field(void **state)
{
	struct fx *f = *state;
	struct mse_project *p = load(f, tu_vector("mse-cli-config/all_set.toml"), f->code, NOW_2024);
	char want[512], *vdir;

	assert_non_null(p);
	vdir = realpath(tu_vector("mse-cli-config"), NULL);
	assert_non_null(vdir);
	assert_string_equal(p->name, "helloworld");
	assert_string_equal(p->python_module, "app");
	assert_string_equal(p->python_variable, "app");
	snprintf(want, sizeof(want), "%s/app.py", f->code);
	assert_string_equal(p->module_file, want);
	assert_string_equal(p->code_dir, f->code);
	assert_string_equal(p->healthcheck_endpoint, "/");
	assert_string_equal(p->tests_cmd, "pytest");
	assert_int_equal(p->n_tests_requirements, 2);
	assert_string_equal(p->tests_requirements[0], "intel-sgx-ra>=1.0.1,<1.1");
	assert_string_equal(p->tests_requirements[1], "pytest==7.2.0");
	assert_non_null(p->cloud);
	assert_string_equal(p->cloud->code, "/tmp/code");
	assert_string_equal(p->cloud->tests, "/tmp/tests");
	assert_string_equal(p->tests_dir, "/tmp/tests");
	assert_string_equal(p->cloud->docker, "ghcr.io/cosmian/mse-pytorch:20230104085621");
	assert_string_equal(p->cloud->project, "default");
	assert_string_equal(p->cloud->hardware, "4g-eu-001");
	assert_int_equal(p->cloud->dev_mode, 0);
	assert_true(p->cloud->has_expiration);
	assert_true(p->cloud->expiration == ALL_SET_EXPIRES);
	snprintf(want, sizeof(want), "%s/secrets.json", vdir);
	assert_same_file(p->cloud->secrets, want);
	assert_non_null(p->cloud->ssl);
	assert_string_equal(p->cloud->ssl->domain_name, "demo.dev.cosmilink.com");
	snprintf(want, sizeof(want), "%s/key.pem", vdir);
	assert_same_file(p->cloud->ssl->private_key, want);
	snprintf(want, sizeof(want), "%s/cert.pem", vdir);
	assert_same_file(p->cloud->ssl->certificate, want);
	assert_true(p->cloud->ssl->cert_not_after == CERT_NOT_AFTER);
	free(vdir);
	mse_project_free(p);
}

static void ssl_without_expiration_expires_with_the_certificate(void **state)
{
	struct fx *f = *state;
	struct mse_project *p =
		load(f, tu_vector("mse-cli-config/cloud_ssl_without_optionals.toml"), f->code, NOW_2024);

	assert_non_null(p);
	assert_true(p->cloud->has_expiration);
	assert_true(p->cloud->expiration == CERT_NOT_AFTER);
	assert_string_equal(p->python_variable, "ppa");
	mse_project_free(p);
	/* ... so after the certificate's notAfter it no longer loads */
	assert_null(load(f, tu_vector("mse-cli-config/cloud_ssl_without_optionals.toml"), f->code,
			 CERT_NOT_AFTER));
	has_error(f, tu_vector("mse-cli-config/cloud_ssl_without_optionals.toml"), "cloud.expiration_date", 0,
		  0, "the certificate's notAfter");
}

static void bad_python_application_needs_app_py(void **state)
{
	struct fx *f = *state;
	const char *path = tu_vector("mse-cli-config/bad_python_application.toml");

	assert_null(load(f, path, f->empty, NOW_2024));
	assert_int_equal(mse_errlist_count(&f->errs), 1);
	has_error(f, path, "python_application", 2, 22, "module \"app\" not found");
}

static void ssl_bad_domain_name(void **state)
{
	struct fx *f = *state;
	const char *path = tu_vector("mse-cli-config/ssl_bad_domain_name.toml");

	assert_null(load(f, path, f->code, NOW_2024));
	assert_int_equal(mse_errlist_count(&f->errs), 1);
	has_error(f, path, "cloud.ssl.domain_name", 15, 15, "*.dev.cosmilink.com");
}

static void ssl_bad_expiration_date(void **state)
{
	struct fx *f = *state;
	const char *path = tu_vector("mse-cli-config/ssl_bad_expiration_date.toml");

	assert_null(load(f, path, f->code, NOW_2024));
	assert_int_equal(mse_errlist_count(&f->errs), 1);
	has_error(f, path, "cloud.expiration_date", 12, 19, "notAfter 2024-03-14T08:23:30Z");
}

static void user_toml_is_not_an_mse_toml(void **state)
{
	struct fx *f = *state;
	const char *path = tu_vector("mse-cli-config/user.toml");

	assert_null(load(f, path, f->code, NOW_2024));
	has_error(f, path, "email", 1, 1, "unknown key");
	has_error(f, path, "refresh_token", 2, 1, "unknown key");
	has_error(f, path, "name", 0, 0, "required key missing");
	has_error(f, path, "python_application", 0, 0, "required key missing");
	has_error(f, path, "healthcheck_endpoint", 0, 0, "required key missing");
	has_error(f, path, "tests_cmd", 0, 0, "required key missing");
	has_error(f, path, "tests_requirements", 0, 0, "required key missing");
	assert_int_equal(mse_errlist_count(&f->errs), 7);
}

/* ---- our own error cases -------------------------------------------- */

static void python_application_format(void **state)
{
	struct fx *f = *state;
	const char *path = write_toml(f, "mse.toml",
				      "name = \"x\"\n"
				      "python_application = \"app\"\n"
				      "healthcheck_endpoint = \"/\"\n"
				      "tests_cmd = \"\"\n"
				      "tests_requirements = []\n");
	char buf[2048], want[512];

	assert_null(load(f, path, f->code, NOW_2024));
	assert_int_equal(mse_errlist_count(&f->errs), 1);
	/* the exact form the issue asks for */
	snprintf(want, sizeof(want),
		 "%s:2:22: python_application: expected \"module:variable\" or "
		 "\"module:factory(literal arguments)\", got \"app\"",
		 path);
	assert_string_equal(mse_err_str(&f->errs.items[0], buf, sizeof(buf)), want);
	/* expected and actual are members of the error, not only message text */
	assert_string_equal(f->errs.items[0].actual, "\"app\"");
	assert_non_null(strstr(f->errs.items[0].expected, "module:variable"));
	static const char *const bad[] = {"app:", ":app", "a:b:c", "1app:app", "app:a-b", "a..b:app", "app: x y"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[512];

		snprintf(text, sizeof(text), "name = \"x\"\npython_application = \"%s\"\nhealthcheck_endpoint = \"/\"\n"
			 "tests_cmd = \"\"\ntests_requirements = []\n", bad[i]);
		path = write_toml(f, "mse.toml", text);
		assert_null(load(f, path, f->code, NOW_2024));
		has_error(f, path, "python_application", 2, 22, "expected \"module:variable\"");
	}
	/* Factories, as gunicorn takes them: literal arguments only. */
	static const char *const bad_calls[] = {"app:f(x)",	 "app:f(1",	 "app:f(a=1, 2)",
						"app:f(**k)",	 "app:f()x",	 "app:f(open('x'))",
						"app:f('unterminated)", "app:f(1 2)"};
	for (size_t i = 0; i < sizeof(bad_calls) / sizeof(bad_calls[0]); i++) {
		char text[512];

		snprintf(text, sizeof(text), "name = \"x\"\npython_application = \'\'\'%s\'\'\'\nhealthcheck_endpoint = \"/\"\n"
			 "tests_cmd = \"\"\ntests_requirements = []\n", bad_calls[i]);
		path = write_toml(f, "mse.toml", text);
		assert_null(load(f, path, f->code, NOW_2024));
		has_error(f, path, "python_application", 2, 22, "expected ");
	}
	static const char *const good_calls[][2] = {
		{"app:create_app()", "()"},
		{"app:create_app('prod', debug=False)", "('prod', debug=False)"},
		{"app:make(1, -2.5e3, None, True, [1, (2,)], {'k': \"v\"}, x=0x1f,)",
		 "(1, -2.5e3, None, True, [1, (2,)], {'k': \"v\"}, x=0x1f,)"},
	};
	for (size_t i = 0; i < sizeof(good_calls) / sizeof(good_calls[0]); i++) {
		char text[512];
		struct mse_project *p;

		snprintf(text, sizeof(text), "name = \"x\"\npython_application = '''%s'''\nhealthcheck_endpoint = \"/\"\n"
			 "tests_cmd = \"\"\ntests_requirements = []\n", good_calls[i][0]);
		path = write_toml(f, "mse.toml", text);
		p = load(f, path, f->code, NOW_2024);
		assert_non_null(p);
		assert_string_equal(p->python_module, "app");
		assert_string_equal(p->python_call, good_calls[i][1]);
		mse_project_free(p);
	}
}

static void packages_and_dotted_modules(void **state)
{
	struct fx *f = *state;
	char d[256], want[512];
	const char *path;
	struct mse_project *p;

	snprintf(d, sizeof(d), "%s/pkg/sub", f->code);
	assert_int_equal(tu_sh("mkdir -p '%s' && touch '%s/__init__.py' '%s/../web.py'", d, d, d), 0);
	path = write_toml(f, "mse.toml", "name = \"x\"\npython_application = \"pkg.sub:application\"\n"
					 "healthcheck_endpoint = \"/\"\ntests_cmd = \"\"\ntests_requirements = []\n");
	p = load(f, path, f->code, NOW_2024);
	assert_non_null(p);
	snprintf(want, sizeof(want), "%s/pkg/sub/__init__.py", f->code);
	assert_string_equal(p->module_file, want);
	assert_string_equal(p->python_module, "pkg.sub");
	assert_string_equal(p->python_variable, "application");
	mse_project_free(p);
	path = write_toml(f, "mse.toml", "name = \"x\"\npython_application = \"pkg.web:app\"\n"
					 "healthcheck_endpoint = \"/\"\ntests_cmd = \"\"\ntests_requirements = []\n");
	p = load(f, path, f->code, NOW_2024);
	assert_non_null(p);
	snprintf(want, sizeof(want), "%s/pkg/web.py", f->code);
	assert_string_equal(p->module_file, want);
	mse_project_free(p);
}

static void every_error_is_reported_with_position(void **state)
{
	struct fx *f = *state;
	char name256[300];
	char text[2048];
	const char *path;

	memset(name256, 'n', 256);
	name256[256] = 0;
	snprintf(text, sizeof(text),
		 "nmae = \"typo\"\n"                           /* 1 */
		 "name = \"%s\"\n"                              /* 2 */
		 "python_application = 5\n"                     /* 3 */
		 "healthcheck_endpoint = \"health\"\n"          /* 4 */
		 "tests_cmd = [\"pytest\"]\n"                   /* 5 */
		 "tests_requirements = [\"ok\", 3, true]\n"     /* 6 */
		 "\n"                                           /* 7 */
		 "[cloud]\n"                                    /* 8 */
		 "code = \"c\"\n"                               /* 9 */
		 "tests = 1\n"                                  /* 10 */
		 "docker = \"\"\n"                              /* 11 */
		 "project = \"p\"\n"                            /* 12 */
		 "hardware = \"12345678901234567\"\n"           /* 13 */
		 "dev_mode = \"yes\"\n"                         /* 14 */
		 "hardwre = \"x\"\n"                            /* 15 */
		 "expiration_date = \"tomorrow\"\n"             /* 16 */
		 "secrets = \"nope.json\"\n"                    /* 17 */
		 "[cloud.ssl]\n"                                /* 18 */
		 "domain = \"x\"\n",                            /* 19 */
		 name256);
	path = write_toml(f, "mse.toml", text);
	assert_null(load(f, path, NULL, NOW_2024));
	has_error(f, path, "nmae", 1, 1, "unknown key (did you mean \"name\"?)");
	has_error(f, path, "name", 2, 8, "expected 1 to 255 characters, got 256");
	has_error(f, path, "python_application", 3, 22, "expected a string, got integer 5");
	has_error(f, path, "healthcheck_endpoint", 4, 24, "expected a path starting with \"/\", got \"health\"");
	has_error(f, path, "tests_cmd", 5, 13, "expected a string, got array");
	has_error(f, path, "tests_requirements", 6, 29, "item 2: expected a string, got integer 3");
	has_error(f, path, "tests_requirements", 6, 32, "item 3: expected a string, got boolean true");
	has_error(f, path, "cloud.tests", 10, 9, "expected a string, got integer 1");
	has_error(f, path, "cloud.docker", 11, 10, "expected at least 1 character");
	has_error(f, path, "cloud.hardware", 13, 12, "expected 1 to 16 characters, got 17");
	has_error(f, path, "cloud.dev_mode", 14, 12, "expected a boolean, got \"yes\"");
	has_error(f, path, "cloud.hardwre", 15, 1, "did you mean \"hardware\"?");
	has_error(f, path, "cloud.expiration_date", 16, 19, "expected a date-time like");
	has_error(f, path, "cloud.secrets", 17, 11, "expected a readable JSON file");
	has_error(f, path, "cloud.ssl.domain", 19, 1, "did you mean \"domain_name\"?");
	/* [cloud.ssl] is at 18:1: its missing keys point there */
	has_error(f, path, "cloud.ssl.domain_name", 18, 1, "required key missing");
	has_error(f, path, "cloud.ssl.private_key", 18, 1, "required key missing");
	has_error(f, path, "cloud.ssl.certificate", 18, 1, "required key missing");
	assert_int_equal(mse_errlist_count(&f->errs), 18);
}

static void name_must_be_usable_as_a_file_name(void **state)
{
	struct fx *f = *state;
	static const char *const bad[] = {"a/b", "..", "a\\\\b", "x\\ty", ""};
	char text[512];
	const char *path;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "name = \"%s\"\npython_application = \"app:app\"\n"
			 "healthcheck_endpoint = \"/\"\ntests_cmd = \"\"\ntests_requirements = []\n", bad[i]);
		path = write_toml(f, "mse.toml", text);
		assert_null(load(f, path, f->code, NOW_2024));
		has_error(f, path, "name", 1, 8, "expected");
	}
	/* values and keys echoed in messages cannot drive the terminal */
	path = write_toml(f, "mse.toml", "name = \"a\\u001b[31mb/\"\npython_application = \"app:app\"\n"
					 "healthcheck_endpoint = \"/\"\ntests_cmd = \"\"\ntests_requirements = []\n"
					 "\"k\\u001b\" = 1\n");
	assert_null(load(f, path, f->code, NOW_2024));
	assert_int_equal(mse_errlist_count(&f->errs), 2);
	for (size_t i = 0; i < f->errs.len; i++) {
		char buf[2048];

		mse_err_str(&f->errs.items[i], buf, sizeof(buf));
		assert_null(strchr(buf, 0x1b));
		assert_non_null(strstr(buf, "\\x1b"));
	}
	/* MSE strips surrounding whitespace (pydantic strip_whitespace) */
	path = write_toml(f, "mse.toml", "name = \"  spaced  \"\npython_application = \" app:app \"\n"
					 "healthcheck_endpoint = \"/\"\ntests_cmd = \"\"\ntests_requirements = []\n");
	{
		struct mse_project *p = load(f, path, f->code, NOW_2024);

		assert_non_null(p);
		assert_string_equal(p->name, "spaced");
		assert_string_equal(p->python_application, "app:app");
		mse_project_free(p);
	}
}

static void toml_syntax_errors_and_missing_files(void **state)
{
	struct fx *f = *state;
	char missing[256];
	const char *path = write_toml(f, "mse.toml", BASE "name = \"again\"\n");

	assert_null(load(f, path, f->code, NOW_2024));
	assert_int_equal(mse_errlist_count(&f->errs), 1);
	has_error(f, path, "", 6, 1, "duplicate key 'name'");
	snprintf(missing, sizeof(missing), "%s/none.toml", f->dir);
	assert_null(load(f, missing, f->code, NOW_2024));
	assert_int_equal(mse_errlist_count(&f->errs), 1);
	assert_non_null(strstr(f->errs.items[0].file, "none.toml"));
}

static void expiration_forms(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *value;
		time_t want; /* 0: must fail */
	} cases[] = {
		{"2025-01-01T00:00:00Z", 1735689600},
		{"2025-01-01T02:00:00+02:00", 1735689600},
		{"\"2025-01-01 00:00:00+00:00\"", 1735689600},
		{"\"2025-01-01T00:00:00.000Z\"", 1735689600},
		{"\"2024-12-31T19:00:00-05:00\"", 1735689600},
		/* naive = local time: TZ is pinned below */
		{"2025-01-01T01:00:00", 1735689600},
		{"\"2025-01-01 01:00:00\"", 1735689600},
		{"2025-01-01", 0},
		{"\"2025-01-01\"", 0},
		{"12:00:00", 0},
		{"\"soon\"", 0},
		{"2023-12-31T23:59:59Z", 0}, /* before now */
		{"2024-01-01T00:00:00Z", 0}, /* must be strictly after now */
	};
	char *old = getenv("TZ") ? strdup(getenv("TZ")) : NULL;

	setenv("TZ", "CET-1", 1); /* UTC+1, no DST rule */
	tzset();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[1024];
		const char *path;
		struct mse_project *p;

		snprintf(text, sizeof(text),
			 BASE "[cloud]\ncode = \"c\"\ntests = \"t\"\ndocker = \"d\"\nproject = \"p\"\n"
			      "hardware = \"h\"\nexpiration_date = %s\n",
			 cases[i].value);
		path = write_toml(f, "mse.toml", text);
		p = load(f, path, f->code, NOW_2024);
		if (cases[i].want) {
			if (!p) {
				dump(&f->errs);
				fail_msg("%s should load", cases[i].value);
			}
			if (p->cloud->expiration != cases[i].want)
				fail_msg("%s: got %lld", cases[i].value, (long long)p->cloud->expiration);
			mse_project_free(p);
		} else {
			if (p)
				fail_msg("%s should fail", cases[i].value);
			has_error(f, path, "cloud.expiration_date", 12, 19, "expected");
		}
	}
	if (old)
		setenv("TZ", old, 1);
	else
		unsetenv("TZ");
	free(old);
	tzset();
}

static void paths_resolve_against_the_toml_directory(void **state)
{
	struct fx *f = *state;
	char want[512], sub[256];
	const char *path;
	struct mse_project *p;

	snprintf(sub, sizeof(sub), "%s/proj", f->dir);
	mkdir(sub, 0755);
	path = write_toml(f, "proj/mse.toml",
			  BASE "[cloud]\ncode = \"../code/./\"\ntests = \"t//x/..\"\ndocker = \"d\"\n"
			       "project = \"p\"\nhardware = \"h\"\n");
	/* no --code: [cloud] code is the code directory */
	p = load(f, path, NULL, NOW_2024);
	if (!p)
		dump(&f->errs);
	assert_non_null(p);
	assert_string_equal(p->code_dir, f->code);
	assert_string_equal(p->cloud->code, f->code);
	snprintf(want, sizeof(want), "%s/t", sub);
	assert_string_equal(p->tests_dir, want);
	snprintf(want, sizeof(want), "%s/mse.toml", sub);
	assert_string_equal(p->path, want);
	assert_string_equal(p->dir, sub);
	assert_null(p->cloud->ssl);
	assert_false(p->cloud->has_expiration);
	mse_project_free(p);

	/* without [cloud]: mse_src/ and tests/ next to the mse.toml */
	path = write_toml(f, "proj/mse.toml", BASE);
	assert_null(load(f, path, NULL, NOW_2024));
	snprintf(want, sizeof(want), "%s/mse_src (the default mse_src/) does not exist", sub);
	has_error(f, path, "python_application", 2, 22, want);
	snprintf(want, sizeof(want), "%s/mse_src", sub);
	mkdir(want, 0755);
	assert_int_equal(tu_sh("cp '%s/app.py' '%s/'", f->code, want), 0);
	p = load(f, path, NULL, NOW_2024);
	assert_non_null(p);
	assert_string_equal(p->code_dir, want);
	snprintf(want, sizeof(want), "%s/tests", sub);
	assert_string_equal(p->tests_dir, want);
	assert_null(p->cloud);
	mse_project_free(p);
}

static void ssl_checks(void **state)
{
	struct fx *f = *state;
	char text[2048], certdir[256];
	const char *path;
	struct mse_project *p;

	/* our own certificate with an exact SAN, made by the openssl CLI */
	snprintf(certdir, sizeof(certdir), "%s", f->dir);
	assert_int_equal(tu_sh("cd '%s' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
			       "-keyout own.key -out own.pem -days 30 -subj /CN=app.example.com "
			       "-addext subjectAltName=DNS:app.example.com >/dev/null 2>&1 && "
			       "printf 'not a cert\\n' > junk.pem",
			       certdir),
			 0);
#define SSL_DOC(domain, key, cert)                                                                 \
	snprintf(text, sizeof(text),                                                               \
		 BASE "[cloud]\ncode = \"c\"\ntests = \"t\"\ndocker = \"d\"\nproject = \"p\"\n"    \
		      "hardware = \"h\"\n[cloud.ssl]\ndomain_name = \"%s\"\nprivate_key = \"%s\"\n" \
		      "certificate = \"%s\"\n",                                                    \
		 domain, key, cert)
	/* the key is not read at load: a missing key file is fine */
	SSL_DOC("app.example.com", "does-not-exist.key", "own.pem");
	path = write_toml(f, "mse.toml", text);
	p = load(f, path, f->code, time(NULL));
	if (!p)
		dump(&f->errs);
	assert_non_null(p);
	assert_true(p->cloud->ssl->cert_not_after > time(NULL) + 29 * 86400);
	mse_project_free(p);
	/* exact SAN does not cover another name */
	SSL_DOC("www.example.com", "own.key", "own.pem");
	path = write_toml(f, "mse.toml", text);
	assert_null(load(f, path, f->code, time(NULL)));
	has_error(f, path, "cloud.ssl.domain_name", 13, 15, "(app.example.com), got \"www.example.com\"");
	/* a wildcard covers one label only, never the bare parent */
	snprintf(certdir, sizeof(certdir), "%s", realpath(tu_vector("mse-cli-config/cert.pem"), text + 1024));
	SSL_DOC("dev.cosmilink.com", "k", certdir);
	path = write_toml(f, "mse.toml", text);
	assert_null(load(f, path, f->code, NOW_2024));
	has_error(f, path, "cloud.ssl.domain_name", 13, 15, "*.dev.cosmilink.com");
	SSL_DOC("a.b.dev.cosmilink.com", "k", certdir);
	path = write_toml(f, "mse.toml", text);
	assert_null(load(f, path, f->code, NOW_2024));
	has_error(f, path, "cloud.ssl.domain_name", 13, 15, "*.dev.cosmilink.com");
	SSL_DOC("API.dev.cosmilink.com", "k", certdir);
	path = write_toml(f, "mse.toml", text);
	p = load(f, path, f->code, NOW_2024);
	assert_non_null(p); /* DNS names compare case-insensitively */
	mse_project_free(p);
	/* unreadable certificates */
	SSL_DOC("app.example.com", "own.key", "junk.pem");
	path = write_toml(f, "mse.toml", text);
	assert_null(load(f, path, f->code, NOW_2024));
	has_error(f, path, "cloud.ssl.certificate", 15, 15, "not PEM or not a certificate");
	SSL_DOC("app.example.com", "own.key", "gone.pem");
	path = write_toml(f, "mse.toml", text);
	assert_null(load(f, path, f->code, NOW_2024));
	has_error(f, path, "cloud.ssl.certificate", 15, 15, "no such file");
#undef SSL_DOC
}

static void table_type_errors(void **state)
{
	struct fx *f = *state;
	const char *path = write_toml(f, "mse.toml", BASE "cloud = 1\n");

	assert_null(load(f, path, f->code, NOW_2024));
	has_error(f, path, "cloud", 6, 9, "expected a table, got integer 1");
	path = write_toml(f, "mse.toml",
			  BASE "[cloud]\ncode = \"c\"\ntests = \"t\"\ndocker = \"d\"\nproject = \"p\"\n"
			       "hardware = \"h\"\nssl = \"x\"\n");
	assert_null(load(f, path, f->code, NOW_2024));
	has_error(f, path, "cloud.ssl", 12, 7, "expected a table, got \"x\"");
	/* secrets that are not JSON: position inside the secrets file too */
	{
		char text[1024], abs[512];

		snprintf(abs, sizeof(abs), "%s/bad.json", f->dir);
		tu_write(abs, "{\"a\": }", 8);
		snprintf(text, sizeof(text),
			 BASE "[cloud]\ncode = \"c\"\ntests = \"t\"\ndocker = \"d\"\nproject = \"p\"\n"
			      "hardware = \"h\"\nsecrets = \"%s\"\n",
			 abs);
		path = write_toml(f, "mse.toml", text);
		assert_null(load(f, path, f->code, NOW_2024));
		has_error(f, path, "cloud.secrets", 12, 11, "bad.json:1:");
	}
	/* [cloud] with nothing in it: each required key is reported at the header */
	path = write_toml(f, "mse.toml", BASE "\n[cloud]\n");
	assert_null(load(f, path, f->code, NOW_2024));
	has_error(f, path, "cloud.code", 7, 1, "required key missing");
	has_error(f, path, "cloud.tests", 7, 1, "required key missing");
	has_error(f, path, "cloud.docker", 7, 1, "required key missing");
	has_error(f, path, "cloud.project", 7, 1, "required key missing");
	has_error(f, path, "cloud.hardware", 7, 1, "required key missing");
	assert_int_equal(mse_errlist_count(&f->errs), 5);
}

static void errlist_basics(void **state)
{
	struct mse_errlist l;
	struct mse_err e;

	(void)state;
	mse_errlist_init(&l);
	assert_int_equal(mse_errlist_count(&l), 0);
	for (int i = 0; i < 20; i++) {
		mse_err_clear(&e);
		assert_int_equal(mse_err_at(&e, "f", i + 1, 2, "m%d", i), -1);
		assert_int_equal(mse_errlist_add(&l, &e), -1);
	}
	assert_int_equal(mse_errlist_count(&l), 20);
	assert_int_equal(l.items[19].line, 20);
	assert_string_equal(l.items[7].msg, "m7");
	mse_errlist_free(&l);
	assert_int_equal(mse_errlist_count(&l), 0);
	mse_errlist_free(&l);
	mse_errlist_free(NULL);
	assert_int_equal(mse_errlist_count(NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(mse_files_that_load, setup, teardown),
		cmocka_unit_test_setup_teardown(all_set_resolves_every_field, setup, teardown),
		cmocka_unit_test_setup_teardown(ssl_without_expiration_expires_with_the_certificate, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_python_application_needs_app_py, setup, teardown),
		cmocka_unit_test_setup_teardown(ssl_bad_domain_name, setup, teardown),
		cmocka_unit_test_setup_teardown(ssl_bad_expiration_date, setup, teardown),
		cmocka_unit_test_setup_teardown(user_toml_is_not_an_mse_toml, setup, teardown),
		cmocka_unit_test_setup_teardown(python_application_format, setup, teardown),
		cmocka_unit_test_setup_teardown(packages_and_dotted_modules, setup, teardown),
		cmocka_unit_test_setup_teardown(every_error_is_reported_with_position, setup, teardown),
		cmocka_unit_test_setup_teardown(name_must_be_usable_as_a_file_name, setup, teardown),
		cmocka_unit_test_setup_teardown(toml_syntax_errors_and_missing_files, setup, teardown),
		cmocka_unit_test_setup_teardown(expiration_forms, setup, teardown),
		cmocka_unit_test_setup_teardown(paths_resolve_against_the_toml_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(ssl_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(table_type_errors, setup, teardown),
		cmocka_unit_test(errlist_basics),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
