/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse localtest — the code provider's quick loop: the app in the app server
 * with the enclave's paths and rules, then its tests against it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/file.h"
#include "config/ignore.h"
#include "config/project.h"
#include "config/requirements.h"
#include "net/client.h"
#include "operator/instance.h"
#include "operator/proc.h"

static const char usage[] =
	"Usage: mse localtest [--project DIR] [--port N] [--memory MB] [--keep]\n"
	"                     [--timeout S] [--no-access-log]\n"
	"\n"
	"Run the app of DIR (default .) as it will run in the enclave, then its tests:\n"
	"  - in a temporary workspace: HOME, TMP_PATH, KEY_PATH, MODULE_PATH (only the files\n"
	"    .mseignore keeps), SECRETS_PATH (a copy of secrets.json) and SEALED_SECRETS_PATH\n"
	"    (a copy of secrets_to_seal.json: here it is not sealed);\n"
	"  - served by 'mse serve' with the enclave's rules: no fork or exec, memory capped;\n"
	"  - requirements.txt checked first against the Python in use (no pip in an enclave);\n"
	"  - once the health check answers a 2xx (an app answering anything else for\n"
	"    10 s fails: healthy means a 2xx),\n"
	"    tests_cmd runs in the tests directory with TEST_REMOTE_URL=http://127.0.0.1:PORT,\n"
	"    TEST_SECRET_JSON and TEST_SEALED_SECRET_JSON.\n"
	"No packaging and no attestation: for that, 'mse deploy'.\n"
	"\n"
	"Options:\n"
	"  --project DIR   the project (default .)\n"
	"  --port N        port (default: a free one)\n"
	"  --memory MB     memory cap for the app (default 4096)\n"
	"  --keep          keep the workspace and the server log (path printed)\n"
	"  --timeout S     how long to wait for the health check (default 60); when it\n"
	"                  never answers, the last answer (or connection error) and the\n"
	"                  end of the server log are printed; a server that exits is\n"
	"                  reported at once\n"
	"  --no-access-log no line per request in the server log\n"
	"  -h, --help      show this help\n"
	"\n"
	"Exit status: 0 if the tests pass, 1 otherwise.\n";

/*
 * The last lines of the server log (at most 64 KiB of it), to stderr: what
 * the app printed before it failed, however long the log grew.
 */
static void print_log_tail(const char *log, int max_lines)
{
	char buf[65536], *p;
	ssize_t n;
	off_t size;
	int fd = open(log, O_RDONLY | O_CLOEXEC), lines = 0;

	if (fd < 0)
		return;
	size = lseek(fd, 0, SEEK_END);
	if (size < 0 || lseek(fd, size > (off_t)sizeof(buf) - 1 ? size - (off_t)sizeof(buf) + 1 : 0,
			      SEEK_SET) < 0) {
		close(fd);
		return;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	/* Back from the end to the start of the max_lines-th last line. */
	p = buf + n;
	if (p > buf && p[-1] == '\n')
		p--;
	while (p > buf && lines < max_lines) {
		p--;
		if (*p == '\n' && ++lines == max_lines) {
			p++;
			break;
		}
	}
	fprintf(stderr, "--- the app server log, last %d lines at most (%s, %lld bytes) ---\n%s",
		max_lines, log, (long long)size, p);
	if (n && buf[n - 1] != '\n')
		fputc('\n', stderr);
}

static int copy_file(const char *src, const char *dst, mode_t mode, struct mse_err *err)
{
	uint8_t *data = NULL;
	size_t len;
	int rc;

	if (mse_file_read(src, (size_t)1 << 30, &data, &len, err) != 0)
		return -1;
	rc = mse_file_write_atomic(dst, data, len, mode, err);
	mse_file_free_secret(data, len);
	return rc;
}

/* The kept files of the code directory, copied into dest. */
static int copy_code(const char *code_dir, const char *dest, size_t *count, struct mse_err *err)
{
	struct mse_ignore *ign = NULL;
	struct mse_ignore_files files = {0};
	char src[PATH_MAX], dst[PATH_MAX], dir[PATH_MAX];
	int rc = -1;

	if (mse_ignore_load(code_dir, &ign, err) != 0 || mse_ignore_list(code_dir, ign, &files, err) != 0)
		goto out;
	for (size_t i = 0; i < files.n; i++) {
		char *slash;

		if (snprintf(src, sizeof(src), "%s/%s", code_dir, files.paths[i]) >= (int)sizeof(src) ||
		    snprintf(dst, sizeof(dst), "%s/%s", dest, files.paths[i]) >= (int)sizeof(dst)) {
			mse_err_field(err, files.paths[i], "path too long");
			goto out;
		}
		memcpy(dir, dst, sizeof(dir));
		slash = strrchr(dir, '/');
		if (slash) {
			*slash = 0;
			if (mse_file_mkdirs(dir, 0700, err) != 0)
				goto out;
		}
		if (copy_file(src, dst, 0600, err) != 0)
			goto out;
	}
	*count = files.n;
	rc = 0;
out:
	mse_ignore_files_free(&files);
	mse_ignore_free(ign);
	return rc;
}

int cmd_localtest(int argc, char **argv)
{
	enum { O_PROJECT = 256, O_PORT, O_MEMORY, O_KEEP, O_TIMEOUT, O_NOACCESS };
	static const struct option opts[] = {{"project", required_argument, NULL, O_PROJECT},
					     {"port", required_argument, NULL, O_PORT},
					     {"memory", required_argument, NULL, O_MEMORY},
					     {"keep", no_argument, NULL, O_KEEP},
					     {"timeout", required_argument, NULL, O_TIMEOUT},
					     {"no-access-log", no_argument, NULL, O_NOACCESS},
					     {"help", no_argument, NULL, 'h'},
					     {0}};
	const char *project_dir = ".";
	char toml[PATH_MAX], ws[] = "/tmp/mse-localtest.XXXXXX", path[PATH_MAX], exe[PATH_MAX];
	/* The workspace path is short (ws above): fixed buffers suffice. */
	char home[128], code[128], tmpd[128], keyd[128], log[128], secrets[192], sealed[192];
	char portbuf[8], membuf[16], e_home[160], e_tmp[160], e_tmpdir[160], e_key[160], e_mod[160],
		e_sec[256], e_sealed[256], e_url[64], t_sec[PATH_MAX + 32], t_sealed[PATH_MAX + 32];
	struct mse_project *proj = NULL;
	struct mse_errlist errs;
	struct mse_err err = {0}, cerr;
	char last[512] = "no answer yet";
	uint16_t port = 0;
	long memory = 4096, timeout = 60;
	int no_access = 0;
	size_t nfiles = 0;
	int keep = 0, c, li = 0, status = 1, healthy = 0, rc = MSE_EXIT_FAIL;
	long last_status = 0, waited = 0, answered;
	pid_t server = -1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, &li)) != -1) {
		uint64_t v;

		switch (c) {
		case 'h':
			fputs(usage, stdout);
			return MSE_EXIT_OK;
		case O_PROJECT: project_dir = optarg; break;
		case O_KEEP: keep = 1; break;
		case O_NOACCESS: no_access = 1; break;
		case O_PORT:
		case O_MEMORY:
		case O_TIMEOUT:
			if (cli_num("localtest", opts[li].name, optarg, 1,
				    c == O_PORT ? 65535 : c == O_TIMEOUT ? 3600 : 1 << 20, &v))
				return MSE_EXIT_USAGE;
			if (c == O_PORT)
				port = (uint16_t)v;
			else if (c == O_TIMEOUT)
				timeout = (long)v;
			else
				memory = (long)v;
			break;
		default:
			return cli_usage_error("localtest", "unknown option");
		}
	}
	if (optind != argc)
		return cli_usage_error("localtest", "unexpected argument '%s'", argv[optind]);
	if (mse_proc_self_exe(exe, sizeof(exe)) != 0)
		return cli_failf("localtest", "cannot find the mse executable");
	snprintf(toml, sizeof(toml), "%s/mse.toml", project_dir);
	mse_errlist_init(&errs);
	if (mse_project_load(toml, NULL, &proj, &errs) != 0) {
		mse_errlist_print(&errs, "mse localtest", stderr);
		mse_errlist_free(&errs);
		return MSE_EXIT_FAIL;
	}
	mse_errlist_free(&errs);
	snprintf(path, sizeof(path), "%s/requirements.txt", proj->code_dir);
	if (mse_requirements_check(path, NULL, &err) != 0) {
		cli_fail("localtest", &err);
		mse_project_free(proj);
		return MSE_EXIT_FAIL;
	}
	if (!mkdtemp(ws)) {
		mse_project_free(proj);
		return cli_failf("localtest", "cannot create a workspace: %s", strerror(errno));
	}
	snprintf(home, sizeof(home), "%s/root", ws);
	snprintf(code, sizeof(code), "%s/mse-app", ws);
	snprintf(tmpd, sizeof(tmpd), "%s/tmp", ws);
	snprintf(keyd, sizeof(keyd), "%s/key", ws);
	snprintf(log, sizeof(log), "%s/server.log", ws);
	snprintf(secrets, sizeof(secrets), "%s/.cache/mse/secrets.json", home);
	snprintf(sealed, sizeof(sealed), "%s/.cache/mse/sealed_secrets.json", home);
	snprintf(path, sizeof(path), "%.200s/.cache/mse", home);
	if (mse_file_mkdirs(path, 0700, &err) != 0 || mse_file_mkdirs(tmpd, 0700, &err) != 0 ||
	    mse_file_mkdirs(keyd, 0700, &err) != 0 || mse_file_mkdirs(code, 0700, &err) != 0 ||
	    copy_code(proj->code_dir, code, &nfiles, &err) != 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/secrets.json", proj->dir);
	if (mse_file_exists(path) && copy_file(path, secrets, 0600, &err) != 0)
		goto fail;
	snprintf(t_sec, sizeof(t_sec), "TEST_SECRET_JSON=%s", path);
	snprintf(path, sizeof(path), "%s/secrets_to_seal.json", proj->dir);
	if (mse_file_exists(path) && copy_file(path, sealed, 0600, &err) != 0)
		goto fail;
	snprintf(t_sealed, sizeof(t_sealed), "TEST_SEALED_SECRET_JSON=%s", path);
	if (!port && mse_instance_free_port("127.0.0.1", &port, &err) != 0)
		goto fail;
	snprintf(portbuf, sizeof(portbuf), "%u", (unsigned)port);
	snprintf(membuf, sizeof(membuf), "%ld", memory);
	snprintf(e_home, sizeof(e_home), "HOME=%s", home);
	snprintf(e_tmp, sizeof(e_tmp), "TMP_PATH=%s", tmpd);
	snprintf(e_tmpdir, sizeof(e_tmpdir), "TMPDIR=%s", tmpd);
	snprintf(e_key, sizeof(e_key), "KEY_PATH=%s", keyd);
	snprintf(e_mod, sizeof(e_mod), "MODULE_PATH=%s", code);
	snprintf(e_sec, sizeof(e_sec), "SECRETS_PATH=%s", secrets);
	snprintf(e_sealed, sizeof(e_sealed), "SEALED_SECRETS_PATH=%s", sealed);
	printf("localtest: %s (%zu files) on http://127.0.0.1:%u, memory %ld MB, workspace %s\n",
	       proj->python_application, nfiles, (unsigned)port, memory, ws);
	fflush(stdout);
	{
		char *senv[] = {e_home, e_tmp, e_tmpdir, e_key, e_mod, e_sec, e_sealed, NULL};
		char *sargv[] = {exe, "serve", proj->python_application, "--code", code, "--no-tls",
				 "--host", "127.0.0.1", "--port", portbuf, "--memory", membuf,
				 "--no-access-log", proj->app_interface ? "--interface" : NULL,
				 proj->app_interface, NULL};

		/* The access log is on unless asked otherwise: drop the flag then. */
		if (!no_access)
			memmove(&sargv[12], &sargv[13], 3 * sizeof(sargv[0]));

		server = mse_proc_start(ws, sargv, senv, log, &err);
		if (server < 0)
			goto fail;
	}
	/* Healthy means a 2xx; an app that keeps answering something else for 10 s is not. */
	for (answered = 0; waited < timeout * 10 && !healthy && answered < 100; waited++) {
		struct mse_client_opts co = {.host = "127.0.0.1", .port = port, .plain_http = 1,
					     .timeout_ms = 2000};
		struct mse_client_resp r;

		if (waitpid(server, &status, WNOHANG) == server) {
			/* No point waiting for the health check of a server that is gone. */
			server = -1;
			if (WIFEXITED(status))
				mse_err_set(&err, "the app server exited with status %d before %s answered "
					    "(last: %s; its log is below)",
					    WEXITSTATUS(status), proj->healthcheck_endpoint, last);
			else
				mse_err_set(&err, "the app server was killed by signal %d before %s "
					    "answered (last: %s; its log is below)",
					    WIFSIGNALED(status) ? WTERMSIG(status) : 0,
					    proj->healthcheck_endpoint, last);
			goto fail;
		}
		mse_err_clear(&cerr);
		if (mse_client_request(&co, "GET", proj->healthcheck_endpoint, NULL, NULL, 0, &r, &cerr) == 0) {
			healthy = mse_instance_healthy_status(r.status);
			snprintf(last, sizeof(last), "HTTP %ld", (long)r.status);
			last_status = r.status;
			answered++;
			mse_client_resp_free(&r);
		} else {
			mse_err_message(&cerr, last, sizeof(last));
		}
		if (!healthy)
			usleep(100 * 1000);
	}
	if (!healthy) {
		mse_err_set(&err, "%s did not answer 2xx within %ld s (last: %s)%s",
			    proj->healthcheck_endpoint, (waited + 9) / 10, last,
			    last_status ? ": healthy means a 2xx answer" : "");
		goto fail;
	}
	printf("localtest: healthy; running '%s' in %s\n", proj->tests_cmd, proj->tests_dir);
	fflush(stdout);
	snprintf(e_url, sizeof(e_url), "TEST_REMOTE_URL=http://127.0.0.1:%u", (unsigned)port);
	{
		char *tenv[] = {e_url, t_sec, t_sealed, "PYTHONDONTWRITEBYTECODE=1", NULL};
		char *targv[] = {"/bin/sh", "-c", proj->tests_cmd, NULL};

		if (mse_proc_run(proj->tests_dir, targv, tenv, &status, &err) != 0)
			goto fail;
	}
	if (status == 0) {
		printf("localtest: tests passed\n");
		rc = MSE_EXIT_OK;
	} else {
		fprintf(stderr, "mse localtest: the tests failed (exit status %d)\n", status);
	}
	goto out;
fail:
	cli_fail("localtest", &err);
	if (mse_file_exists(log))
		print_log_tail(log, 40);
out:
	if (server > 0)
		mse_proc_stop(server, 10000);
	if (keep)
		printf("localtest: workspace kept in %s\n", ws);
	else if (mse_file_remove_tree(ws, NULL) != 0)
		fprintf(stderr, "mse localtest: cannot remove %s\n", ws);
	mse_project_free(proj);
	return rc;
}
