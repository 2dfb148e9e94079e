/* SPDX-License-Identifier: Apache-2.0 */
#include "operator/instance.h"

#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <jansson.h>
#include <sodium.h>

#include "common/file.h"
#include "common/num.h"
#include "net/client.h"
#include "operator/proc.h"

#define STATE_FILE "state.json"
#define STATE_VERSION 1

const char *mse_instance_mode_name(enum mse_instance_mode m)
{
	return m == MSE_MODE_SGX ? "sgx" : "simulation";
}

int mse_instance_name_ok(const char *name, struct mse_err *err)
{
	size_t n = strlen(name);

	if (n == 0 || n > MSE_INSTANCE_NAME_MAX)
		return mse_err_field(err, "name", "expected 1 to %d characters, got %zu",
				     MSE_INSTANCE_NAME_MAX, n);
	if (name[0] == '.' || name[0] == '-')
		return mse_err_field(err, "name", "must not start with '%c': \"%s\"", name[0], name);
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return mse_err_field(err, "name",
					     "expected letters, digits, '.', '_' or '-', got '%c' in \"%s\"",
					     c, name);
	}
	return 0;
}

int mse_instance_root(char *out, size_t size, struct mse_err *err)
{
	const char *xdg = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");
	int n;

	if (xdg && xdg[0] == '/')
		n = snprintf(out, size, "%s/mse", xdg);
	else if (home && *home)
		n = snprintf(out, size, "%s/.local/state/mse", home);
	else
		return mse_err_set(err, "neither XDG_STATE_HOME nor HOME is set");
	if (n < 0 || (size_t)n >= size)
		return mse_err_set(err, "state directory path too long");
	return 0;
}

int mse_instance_locate(struct mse_instance *inst, const char *name, struct mse_err *err)
{
	char root[PATH_MAX];

	if (mse_instance_name_ok(name, err) != 0 || mse_instance_root(root, sizeof(root), err) != 0)
		return -1;
	snprintf(inst->name, sizeof(inst->name), "%s", name);
	if (snprintf(inst->dir, sizeof(inst->dir), "%s/%s", root, name) >= (int)sizeof(inst->dir) - 32)
		return mse_err_set(err, "state directory path too long");
	snprintf(inst->log_path, sizeof(inst->log_path), "%.4000s/bootstrap.log", inst->dir);
	snprintf(inst->workspace, sizeof(inst->workspace), "%.4000s/workspace", inst->dir);
	return 0;
}

static void put_str(json_t *o, const char *k, const char *v)
{
	json_object_set_new(o, k, json_string(v));
}

/* state.json's text (malloc'd), or NULL when out of memory. */
static char *state_text(const struct mse_instance *inst)
{
	json_t *o = json_object();
	char *text;

	json_object_set_new(o, "version", json_integer(STATE_VERSION));
	put_str(o, "name", inst->name);
	put_str(o, "mode", mse_instance_mode_name(inst->mode));
	put_str(o, "workspace", inst->workspace);
	put_str(o, "package", inst->package);
	put_str(o, "app_dir", inst->app_dir);
	put_str(o, "log", inst->log_path);
	put_str(o, "host", inst->host);
	put_str(o, "san", inst->san);
	put_str(o, "subject", inst->subject);
	put_str(o, "application", inst->application);
	put_str(o, "healthcheck_endpoint", inst->healthcheck);
	put_str(o, "uuid", inst->uuid);
	put_str(o, "cert_mode", inst->cert_mode);
	put_str(o, "certificate", inst->certificate);
	json_object_set_new(o, "port", json_integer(inst->port));
	json_object_set_new(o, "pid", json_integer(inst->pid));
	json_object_set_new(o, "expiration_date", json_integer(inst->expiration));
	json_object_set_new(o, "size", json_integer(inst->size_mb));
	json_object_set_new(o, "created", json_integer(inst->created));
	if (inst->threads)
		json_object_set_new(o, "threads", json_integer(inst->threads));
	if (inst->threads_max)
		json_object_set_new(o, "threads_max", json_integer(inst->threads_max));
	if (inst->metrics[0])
		put_str(o, "metrics", inst->metrics);
	if (inst->role[0]) {
		put_str(o, "role", inst->role);
		put_str(o, "coordinator", inst->coordinator);
		if (inst->pccs_url[0])
			put_str(o, "pccs_url", inst->pccs_url);
	}
	if (inst->mode == MSE_MODE_SGX) {
		put_str(o, "mrenclave", inst->mrenclave);
		put_str(o, "mrsigner", inst->mrsigner);
		put_str(o, "gramine_version", inst->gramine_version);
		json_object_set_new(o, "isvprodid", json_integer(inst->isvprodid));
		json_object_set_new(o, "isvsvn", json_integer(inst->isvsvn));
	}
	text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(o);
	return text;
}

int mse_instance_save(const struct mse_instance *inst, struct mse_err *err)
{
	char path[PATH_MAX + 16];
	char *text = state_text(inst);
	int rc;

	if (!text)
		return mse_err_set(err, "out of memory");
	snprintf(path, sizeof(path), "%s/" STATE_FILE, inst->dir);
	rc = mse_file_write_atomic(path, text, strlen(text), 0600, err);
	free(text);
	return rc;
}

static int already_exists(const struct mse_instance *inst, struct mse_err *err)
{
	return mse_err_set(err,
			   "an instance named \"%s\" already exists (%s); stop it with "
			   "'mse stop %s --remove' or choose another name",
			   inst->name, inst->dir, inst->name);
}

int mse_instance_create(struct mse_instance *inst, struct mse_err *err)
{
	char path[PATH_MAX + 16];
	char *text;
	int rc;

	snprintf(path, sizeof(path), "%s/" STATE_FILE, inst->dir);
	if (mse_file_exists(path))
		return already_exists(inst, err);
	if (mse_file_mkdirs(inst->dir, 0700, err) != 0 || mse_file_mkdirs(inst->workspace, 0700, err) != 0)
		return -1;
	inst->created = (int64_t)time(NULL);
	/*
	 * Claim the name with an exclusive create of state.json (O_EXCL): of two
	 * spawns of one name, only one proceeds, and a crash mid-spawn leaves a
	 * state that 'mse stop --remove' can clean up.
	 */
	text = state_text(inst);
	if (!text)
		return mse_err_set(err, "out of memory");
	rc = mse_file_write_new(path, text, strlen(text), 0600, err);
	free(text);
	if (rc != 0 && mse_file_exists(path))
		return already_exists(inst, err);
	return rc;
}

static int get_str(json_t *o, const char *k, char *out, size_t size, const char *path,
		   struct mse_err *err)
{
	json_t *v = json_object_get(o, k);

	if (!json_is_string(v))
		return mse_err_at(err, path, 0, 0, "%s: expected a string", k);
	if (snprintf(out, size, "%s", json_string_value(v)) >= (int)size)
		return mse_err_at(err, path, 0, 0, "%s: too long", k);
	return 0;
}

static int get_int(json_t *o, const char *k, int64_t min, int64_t max, int64_t *out,
		   const char *path, struct mse_err *err)
{
	json_t *v = json_object_get(o, k);

	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return mse_err_at(err, path, 0, 0, "%s: expected an integer in [%lld, %lld]", k,
				  (long long)min, (long long)max);
	*out = json_integer_value(v);
	return 0;
}

int mse_instance_load(struct mse_instance *inst, const char *name, struct mse_err *err)
{
	char path[PATH_MAX + 16], mode[16];
	json_error_t jerr;
	json_t *o = NULL;
	int64_t port, pid, size;
	int rc = -1;

	memset(inst, 0, sizeof(*inst));
	if (mse_instance_locate(inst, name, err) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/" STATE_FILE, inst->dir);
	if (!mse_file_exists(path))
		return mse_err_set(err, "no instance named \"%s\" (see 'mse list')", name);
	o = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!o)
		return mse_err_at(err, path, jerr.line, jerr.column, "%s", jerr.text);
	if (get_str(o, "workspace", inst->workspace, sizeof(inst->workspace), path, err) ||
	    get_str(o, "package", inst->package, sizeof(inst->package), path, err) ||
	    get_str(o, "app_dir", inst->app_dir, sizeof(inst->app_dir), path, err) ||
	    get_str(o, "log", inst->log_path, sizeof(inst->log_path), path, err) ||
	    get_str(o, "host", inst->host, sizeof(inst->host), path, err) ||
	    get_str(o, "san", inst->san, sizeof(inst->san), path, err) ||
	    get_str(o, "subject", inst->subject, sizeof(inst->subject), path, err) ||
	    get_str(o, "application", inst->application, sizeof(inst->application), path, err) ||
	    get_str(o, "healthcheck_endpoint", inst->healthcheck, sizeof(inst->healthcheck), path, err) ||
	    get_str(o, "uuid", inst->uuid, sizeof(inst->uuid), path, err) ||
	    get_str(o, "cert_mode", inst->cert_mode, sizeof(inst->cert_mode), path, err) ||
	    get_str(o, "certificate", inst->certificate, sizeof(inst->certificate), path, err) ||
	    get_str(o, "mode", mode, sizeof(mode), path, err) ||
	    get_int(o, "port", 0, 65535, &port, path, err) ||
	    get_int(o, "pid", 0, INT32_MAX, &pid, path, err) ||
	    get_int(o, "size", 0, UINT32_MAX, &size, path, err) ||
	    get_int(o, "expiration_date", 0, INT64_MAX, &inst->expiration, path, err) ||
	    get_int(o, "created", 0, INT64_MAX, &inst->created, path, err))
		goto out;
	inst->port = (uint16_t)port;
	inst->pid = (pid_t)pid;
	inst->size_mb = (uint32_t)size;
	inst->mode = strcmp(mode, "sgx") == 0 ? MSE_MODE_SGX : MSE_MODE_SIMULATION;
	{
		/* Optional (state files from before roles have none). */
		json_t *r = json_object_get(o, "role"), *c = json_object_get(o, "coordinator"),
		       *pu = json_object_get(o, "pccs_url");

		if (json_object_get(o, "metrics") &&
		    get_str(o, "metrics", inst->metrics, sizeof(inst->metrics), path, err))
			goto out;

		if (json_is_string(r))
			snprintf(inst->role, sizeof(inst->role), "%s", json_string_value(r));
		if (json_is_string(c))
			snprintf(inst->coordinator, sizeof(inst->coordinator), "%s",
				 json_string_value(c));
		if (json_is_string(pu))
			snprintf(inst->pccs_url, sizeof(inst->pccs_url), "%s", json_string_value(pu));
	}
	{
		int64_t v;

		if (json_object_get(o, "threads")) {
			if (get_int(o, "threads", 1, 1024, &v, path, err))
				goto out;
			inst->threads = (unsigned)v;
		}
		if (json_object_get(o, "threads_max")) {
			if (get_int(o, "threads_max", 1, 4096, &v, path, err))
				goto out;
			inst->threads_max = (unsigned)v;
		}
	}
	if (inst->mode == MSE_MODE_SGX) {
		int64_t id, svn;

		if (get_str(o, "mrenclave", inst->mrenclave, sizeof(inst->mrenclave), path, err) ||
		    get_str(o, "mrsigner", inst->mrsigner, sizeof(inst->mrsigner), path, err) ||
		    get_str(o, "gramine_version", inst->gramine_version,
			    sizeof(inst->gramine_version), path, err) ||
		    get_int(o, "isvprodid", 0, 65535, &id, path, err) ||
		    get_int(o, "isvsvn", 0, 65535, &svn, path, err))
			goto out;
		inst->isvprodid = (uint16_t)id;
		inst->isvsvn = (uint16_t)svn;
	}
	rc = 0;
out:
	json_decref(o);
	return rc;
}

/*
 * 1 if the NUL-separated command line is inst's enclave: argv[0] is an
 * mse-bootstrap (or Gramine) program and the instance's own workspace
 * (<state dir>/workspace, passed as --workspace in simulation) or, with SGX,
 * its Gramine application (<state dir>/mse) is among its arguments: another
 * instance's enclave, or any process that merely mentions "mse-bootstrap",
 * is not this enclave.
 */
static int cmdline_is_instance(const struct mse_instance *inst, const char *buf, size_t n)
{
	char ws[PATH_MAX + 16], app[PATH_MAX + 16], coord[PATH_MAX + 32];
	int program = 0, mine = 0;

	snprintf(ws, sizeof(ws), "%s/workspace", inst->dir);
	snprintf(app, sizeof(app), "%s/mse", inst->dir);
	snprintf(coord, sizeof(coord), "%s/mse-coordinator", inst->dir);
	for (size_t off = 0; off < n; off += strlen(buf + off) + 1) {
		const char *arg = buf + off, *base = strrchr(arg, '/');

		base = base ? base + 1 : arg;
		/*
		 * Gramine's gramine-sgx script execs its PAL loader ("…/sgx/loader LIBPAL init
		 * APP"); before that, an interpreter runs the script (argv[1]).
		 */
		if (off == 0)
			program = strstr(base, "mse-bootstrap") != NULL ||
				  strstr(base, "mse-coordinator") != NULL || strncmp(base, "gramine", 7) == 0 ||
				  (inst->mode == MSE_MODE_SGX && strcmp(base, "loader") == 0);
		else if (inst->mode == MSE_MODE_SGX && off == strlen(buf) + 1)
			program |= strcmp(base, "gramine-sgx") == 0;
		mine |= inst->dir[0] && (strcmp(arg, ws) == 0 ||
					 (inst->mode == MSE_MODE_SGX &&
					  (strcmp(arg, app) == 0 || strcmp(arg, coord) == 0)));
	}
	return program && mine;
}

int mse_instance_alive(const struct mse_instance *inst)
{
	char path[64], buf[8192];
	FILE *f;
	size_t n;
	char *p;

	if (inst->pid <= 0)
		return 0;
	/* Reap it if it is our child and has exited (restart runs it as one). */
	waitpid(inst->pid, NULL, WNOHANG);
	if (kill(inst->pid, 0) != 0 && errno == ESRCH)
		return 0;
	/* A recycled pid must not be mistaken for the enclave: check argv. */
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)inst->pid);
	f = fopen(path, "rb");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	if (!cmdline_is_instance(inst, buf, n))
		return 0;
	/* A zombie is not alive. */
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)inst->pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')');
	return !(p && p[1] == ' ' && p[2] == 'Z');
}

int mse_instance_stop(struct mse_instance *inst, int timeout_ms, struct mse_err *err)
{
	if (mse_instance_alive(inst)) {
		kill(inst->pid, SIGTERM);
		for (int waited = 0; mse_instance_alive(inst); waited += 50) {
			if (waited >= timeout_ms) {
				kill(inst->pid, SIGKILL);
				for (int i = 0; i < 40 && mse_instance_alive(inst); i++)
					usleep(50 * 1000);
				break;
			}
			usleep(50 * 1000);
		}
	}
	inst->pid = 0;
	return mse_instance_save(inst, err);
}

int mse_instance_remove(struct mse_instance *inst, struct mse_err *err)
{
	return mse_file_remove_tree(inst->dir, err);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int mse_instance_list(char ***names, size_t *count, struct mse_err *err)
{
	char root[PATH_MAX], path[PATH_MAX + 300];
	struct dirent *de;
	char **v = NULL;
	size_t n = 0, cap = 0;
	DIR *d;

	*names = NULL;
	*count = 0;
	if (mse_instance_root(root, sizeof(root), err) != 0)
		return -1;
	d = opendir(root);
	if (!d)
		return errno == ENOENT ? 0 : mse_err_field(err, root, "%s", strerror(errno));
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || mse_instance_name_ok(de->d_name, NULL) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s/" STATE_FILE, root, de->d_name);
		if (!mse_file_exists(path))
			continue;
		if (n == cap) {
			char **nv = realloc(v, (cap = cap ? cap * 2 : 8) * sizeof(*v));

			if (!nv)
				goto oom;
			v = nv;
		}
		if (!(v[n] = strdup(de->d_name)))
			goto oom;
		n++;
	}
	closedir(d);
	if (n)
		qsort(v, n, sizeof(*v), cmp_str);
	*names = v;
	*count = n;
	return 0;
oom:
	closedir(d);
	mse_instance_names_free(v, n);
	return mse_err_set(err, "out of memory");
}

void mse_instance_names_free(char **names, size_t count)
{
	if (!names)
		return;
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
}

void mse_instance_ratls_path(const struct mse_instance *inst, char *out, size_t size)
{
	snprintf(out, size, "%.4000s/ratls.pem", inst->dir);
}

static int record_argv(const struct mse_instance *inst, const char *exe, char *const argv[],
		       struct mse_err *err)
{
	char path[PATH_MAX + 16];
	size_t total = strlen(exe) + 1, off = 0;
	char *buf;
	int rc;

	for (size_t i = 0; argv[i]; i++)
		total += strlen(argv[i]) + 1;
	buf = malloc(total);
	if (!buf)
		return mse_err_set(err, "out of memory");
	/* First the executable, then argv: each NUL-terminated. */
	memcpy(buf, exe, strlen(exe) + 1);
	off = strlen(exe) + 1;
	for (size_t i = 0; argv[i]; i++) {
		memcpy(buf + off, argv[i], strlen(argv[i]) + 1);
		off += strlen(argv[i]) + 1;
	}
	snprintf(path, sizeof(path), "%s/argv", inst->dir);
	rc = mse_file_write_atomic(path, buf, total, 0600, err);
	free(buf);
	return rc;
}

int mse_instance_launch(struct mse_instance *inst, const char *exe, char *const argv[],
			struct mse_err *err)
{
	int fd_null, fd_log, pipefd[2];
	pid_t pid;
	ssize_t n;
	int child_errno = 0;

	if (record_argv(inst, exe, argv, err) != 0)
		return -1;
	fd_log = open(inst->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd_log < 0)
		return mse_err_field(err, inst->log_path, "cannot open the log: %s", strerror(errno));
	fd_null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd_null < 0 || pipe2(pipefd, O_CLOEXEC) != 0) {
		close(fd_log);
		if (fd_null >= 0)
			close(fd_null);
		return mse_err_set(err, "cannot prepare the process: %s", strerror(errno));
	}
	pid = fork();
	if (pid < 0) {
		close(fd_log);
		close(fd_null);
		close(pipefd[0]);
		close(pipefd[1]);
		return mse_err_set(err, "fork failed: %s", strerror(errno));
	}
	if (pid == 0) {
		int e;

		/* Detach: the enclave outlives the command that spawned it. */
		setsid();
		if (inst->mode == MSE_MODE_SGX && chdir(inst->dir) != 0)
			_exit(126);
		dup2(fd_null, 0);
		dup2(fd_log, 1);
		dup2(fd_log, 2);
		execv(exe, argv);
		e = errno;
		if (write(pipefd[1], &e, sizeof(e)) < 0)
			_exit(126);
		_exit(127);
	}
	close(fd_log);
	close(fd_null);
	close(pipefd[1]);
	/* The pipe closes on a successful exec (O_CLOEXEC) or carries errno. */
	n = read(pipefd[0], &child_errno, sizeof(child_errno));
	close(pipefd[0]);
	if (n == (ssize_t)sizeof(child_errno)) {
		waitpid(pid, NULL, 0);
		return mse_err_field(err, exe, "cannot execute: %s", strerror(child_errno));
	}
	inst->pid = pid;
	if (mse_instance_save(inst, err) != 0) {
		/* Unrecorded, nothing could ever stop it: do not leave it running. */
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		inst->pid = 0;
		return -1;
	}
	return 0;
}

const char *mse_instance_role(const struct mse_instance *inst)
{
	return inst->role[0] ? inst->role : "enclave";
}

int mse_instance_relaunch(struct mse_instance *inst, struct mse_err *err)
{
	char path[PATH_MAX + 16], *argv[256];
	uint8_t *buf = NULL;
	size_t len, argc = 0, off = 0;
	const char *exe;
	int rc;

	snprintf(path, sizeof(path), "%s/argv", inst->dir);
	if (mse_file_read(path, 1 << 20, &buf, &len, err) != 0)
		return -1;
	if (len == 0 || buf[len - 1] != 0) {
		free(buf);
		return mse_err_field(err, path, "corrupt argv record");
	}
	exe = (const char *)buf;
	off = strlen(exe) + 1;
	while (off < len && argc < sizeof(argv) / sizeof(argv[0]) - 1) {
		argv[argc++] = (char *)buf + off;
		off += strlen((char *)buf + off) + 1;
	}
	argv[argc] = NULL;
	if (strcmp(inst->role, "replica") == 0 && inst->coordinator[0] &&
	    setenv("MSE_COORDINATOR", inst->coordinator, 1) != 0) {
		free(buf);
		return mse_err_set(err, "setenv MSE_COORDINATOR failed");
	}
	if (strcmp(inst->role, "replica") == 0 && inst->mode == MSE_MODE_SGX) {
		/* Measured argv, shared by every replica: its own values by the environment. */
		char listen[300];

		snprintf(listen, sizeof(listen), strchr(inst->host, ':') ? "[%s]:%u" : "%s:%u",
			 inst->host, (unsigned)inst->port);
		if (setenv("MSE_REPLICA_LISTEN", listen, 1) != 0 ||
		    setenv("MSE_REPLICA_ID", inst->name, 1) != 0 ||
		    (inst->pccs_url[0] && setenv("MSE_PCCS_URL", inst->pccs_url, 1) != 0) ||
		    (inst->metrics[0] ? setenv("MSE_REPLICA_METRICS", inst->metrics, 1)
				      : unsetenv("MSE_REPLICA_METRICS")) != 0) {
			free(buf);
			return mse_err_set(err, "setenv MSE_REPLICA_LISTEN, MSE_REPLICA_ID, "
						"MSE_REPLICA_METRICS or MSE_PCCS_URL failed");
		}
	}
	if (strcmp(inst->role, "coordinator") == 0 && inst->mode == MSE_MODE_SGX) {
		/* gramine-sgx's argv is fixed in the manifest: the address comes by the environment. */
		char listen[300];

		snprintf(listen, sizeof(listen), strchr(inst->host, ':') ? "[%s]:%u" : "%s:%u",
			 inst->host, (unsigned)inst->port);
		if (setenv("MSE_COORDINATOR_LISTEN", listen, 1) != 0 ||
		    (inst->pccs_url[0] && setenv("MSE_PCCS_URL", inst->pccs_url, 1) != 0)) {
			free(buf);
			return mse_err_set(err, "setenv MSE_COORDINATOR_LISTEN or MSE_PCCS_URL failed");
		}
	}
	rc = argc ? mse_instance_launch(inst, exe, argv, err)
		  : mse_err_field(err, path, "corrupt argv record");
	free(buf);
	return rc;
}

const char *mse_instance_status_name(enum mse_instance_status s)
{
	switch (s) {
	case MSE_STATUS_STOPPED:
		return "stopped";
	case MSE_STATUS_ON_ERROR:
		return "on error";
	case MSE_STATUS_INITIALIZING:
		return "initializing";
	case MSE_STATUS_WAITING:
		return "waiting secret keys";
	case MSE_STATUS_RUNNING:
		return "running";
	case MSE_STATUS_UNHEALTHY:
		return "unhealthy";
	}
	return "unknown";
}

int mse_instance_gone(const struct mse_instance *inst)
{
	for (int i = 0; i < 4; i++) {
		if (i)
			usleep(100 * 1000);
		if (mse_instance_alive(inst))
			return 0;
	}
	return 1;
}

enum mse_instance_status mse_instance_probe(const struct mse_instance *inst, char *detail,
					    size_t size)
{
	char pem[PATH_MAX + 16], dummy[8];
	struct mse_client_opts o = {
		.host = inst->host[0] && strcmp(inst->host, "0.0.0.0") != 0 ? inst->host : "127.0.0.1",
		.port = inst->port,
		.server_name = inst->san,
		.pin_pem = pem,
		.timeout_ms = 3000,
		.max_body = 1 << 20,
	};
	const char *path = inst->healthcheck[0] ? inst->healthcheck : "/";
	struct mse_client_resp r;
	struct mse_err err = {0};
	int rc;

	if (!detail) {
		detail = dummy;
		size = sizeof(dummy);
	}
	detail[0] = 0;
	if (inst->pid == 0)
		return MSE_STATUS_STOPPED;
	if (mse_instance_gone(inst)) {
		snprintf(detail, size, "process %d has exited; see 'mse logs %s'", (int)inst->pid,
			 inst->name);
		return MSE_STATUS_ON_ERROR;
	}
	mse_instance_ratls_path(inst, pem, sizeof(pem));
	if (strcmp(inst->role, "coordinator") == 0) {
		/* Its RA-TLS certificate is new at every start: the copy it writes
		 * (under SGX in the plain info/ mount beside its encrypted state). */
		snprintf(pem, sizeof(pem),
			 inst->mode == MSE_MODE_SGX ? "%s/info/ratls.pem" : "%s/ratls.pem",
			 inst->workspace);
		path = "/status";
	} else if (strcmp(inst->role, "replica") == 0) {
		/* Served with the certificate of the coordinator's CA. */
		snprintf(pem, sizeof(pem), "%s/ca.pem", inst->workspace);
		o.pin_pem = NULL;
		o.ca_bundle = pem;
		if (!mse_file_exists(pem)) {
			snprintf(detail, size, "not provisioned by the coordinator yet");
			return MSE_STATUS_INITIALIZING;
		}
	}
	rc = mse_client_request(&o, "GET", path, NULL, NULL, 0, &r, &err);
	if (rc != 0 && strcmp(inst->cert_mode, "certificate") == 0 && inst->certificate[0]) {
		/* After provisioning, the app serves the owner's certificate. */
		o.pin_pem = NULL;
		o.ca_bundle = inst->certificate;
		rc = mse_client_request(&o, "GET", path, NULL, NULL, 0, &r, &err);
	}
	if (rc != 0 && strcmp(inst->cert_mode, "no-ssl") == 0) {
		o.pin_pem = NULL;
		o.plain_http = 1;
		rc = mse_client_request(&o, "GET", path, NULL, NULL, 0, &r, &err);
	}
	if (rc != 0) {
		if (detail && size)
			mse_err_message(&err, detail, size);
		return MSE_STATUS_INITIALIZING;
	}
	if (strcmp(r.mse_status, "Waiting") == 0) {
		mse_client_resp_free(&r);
		return MSE_STATUS_WAITING;
	}
	snprintf(detail, size, "%s answered HTTP %ld%s", path, r.status,
		 mse_instance_healthy_status(r.status) ? "" : " (healthy means a 2xx)");
	mse_client_resp_free(&r);
	/* healthcheck_endpoint must answer 2xx: an app that answers 404 or 500 there is not up. */
	return mse_instance_healthy_status(r.status) ? MSE_STATUS_RUNNING : MSE_STATUS_UNHEALTHY;
}

int mse_instance_healthy_status(long http_status)
{
	return http_status >= 200 && http_status <= 299;
}

void mse_instance_log_tail(const char *log_path, int lines, char *out, size_t size)
{
	uint8_t *data = NULL;
	size_t len, start;
	int n = 0;

	out[0] = 0;
	if (size == 0 || mse_file_read(log_path, 64u << 20, &data, &len, NULL) != 0)
		return;
	start = len;
	while (start > 0 && n < lines)
		if (data[--start] == '\n' && start != len - 1)
			n++;
	if (start)
		start++;
	if (len - start >= size)
		start = len - (size - 1);
	snprintf(out, size, "%.*s", (int)(len - start), (char *)data + start);
	free(data);
}

void mse_instance_new_uuid(char out[37])
{
	uint8_t b[16];

	randombytes_buf(b, sizeof(b));
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 (RFC 9562 §5.4) */
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* variant 10 */
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
}

int mse_instance_free_port(const char *host, uint16_t *port, struct mse_err *err)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_PASSIVE};
	struct addrinfo *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd = -1, rc = -1;

	if (getaddrinfo(host, "0", &hints, &ai) != 0 || !ai)
		return mse_err_field(err, "host", "expected a numeric IP address, got \"%s\"", host);
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
		mse_err_field(err, "host", "cannot bind %s: %s", host, strerror(errno));
		goto out;
	}
	*port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
					       : ((struct sockaddr_in *)&ss)->sin_port);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return rc;
}

/* 0 if host:port can be bound now (as mse-bootstrap binds it: SO_REUSEADDR), else errno. */
static int bindable(const struct addrinfo *ai, uint16_t port)
{
	struct sockaddr_storage ss;
	int fd, one = 1, e = 0;

	memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
	if (ss.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)&ss)->sin_port = htons(port);
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&ss, ai->ai_addrlen) != 0)
		e = errno;
	close(fd);
	return e;
}

/* 1 if another instance records port as its metrics port on host. */
static int metrics_port_recorded(const char *host, uint16_t port)
{
	char **names = NULL, h[256];
	size_t n = 0;
	int found = 0;

	if (mse_instance_list(&names, &n, NULL) != 0)
		return 0;
	for (size_t i = 0; i < n && !found; i++) {
		struct mse_instance in;
		uint16_t p;

		found = mse_instance_load(&in, names[i], NULL) == 0 && in.metrics[0] &&
			mse_num_hostport(in.metrics, h, sizeof(h), &p) == 0 && p == port &&
			strcmp(h, host) == 0;
	}
	mse_instance_names_free(names, n);
	return found;
}

int mse_instance_metrics_addr(const char *option, const char *spec, uint16_t app_port, int search,
			      char *out, size_t size, struct mse_err *err)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_PASSIVE};
	struct addrinfo *ai = NULL;
	char host[256];
	uint16_t port = 0;
	int rc = -1, e = 0;

	if (mse_num_hostport(spec, host, sizeof(host), &port) != 0 ||
	    getaddrinfo(host, "0", &hints, &ai) != 0 || !ai) {
		if (ai)
			freeaddrinfo(ai);
		return mse_err_expect(err, option,
				      "HOST:PORT with a numeric address (e.g. 127.0.0.1:9100, "
				      "[::1]:9100; PORT 0: a free one)",
				      spec);
	}
	if (port && port == app_port && !search) {
		mse_err_field(err, option, "%u is the app's port: the metrics need a port of their "
					   "own", (unsigned)port);
		goto out;
	}
	if (!port) {
		/* A free one; not the app's (chosen the same way, not bound yet). */
		for (int i = 0; i < 16 && (!port || port == app_port || metrics_port_recorded(host, port));
		     i++)
			if (mse_instance_free_port(host, &port, err) != 0)
				goto out;
	} else {
		uint16_t first = port;

		for (;;) {
			int skip = search && (port == app_port || metrics_port_recorded(host, port));

			if (!skip && !(e = bindable(ai, port)))
				break;
			if (!search || port - first >= 255 || port == 65535) {
				if (search)
					mse_err_field(err, option, "no free port in %u..%u on %s",
						      (unsigned)first, (unsigned)port, host);
				else
					mse_err_field(err, option, "cannot listen on %s: %s (%s)",
						      spec, strerror(e),
						      e == EADDRINUSE ? "another process has it; "
									"choose another port"
								      : "choose another address");
				goto out;
			}
			port++;
		}
	}
	snprintf(out, size, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, (unsigned)port);
	rc = 0;
out:
	freeaddrinfo(ai);
	return rc;
}

int mse_instance_installed_bootstrap(char *out, size_t size, struct mse_err *err)
{
	char self[PATH_MAX];
	char *slash;

	if (mse_proc_self_exe(self, sizeof(self)) != 0)
		return mse_err_set(err, "cannot find the running executable");
	slash = strrchr(self, '/');
	if (slash)
		*slash = 0;
	if (snprintf(out, size, "%s/mse-bootstrap", self) >= (int)size)
		return mse_err_set(err, "path too long");
	if (access(out, R_OK) != 0)
		return mse_err_field(err, out, "mse-bootstrap is not installed beside mse (build it "
					       "with 'make')");
	return 0;
}

int mse_instance_bootstrap_path(char *out, size_t size, struct mse_err *err)
{
	const char *env = getenv("MSE_BOOTSTRAP");

	if (env && *env) {
		if (snprintf(out, size, "%s", env) >= (int)size)
			return mse_err_set(err, "MSE_BOOTSTRAP too long");
	} else if (mse_instance_installed_bootstrap(out, size, err) != 0) {
		return -1;
	}
	if (access(out, X_OK) != 0)
		return mse_err_field(err, out, "mse-bootstrap is not installed here (build it with "
					       "'make', or set MSE_BOOTSTRAP)");
	return 0;
}

int mse_instance_sgx_device(void)
{
	return access("/dev/sgx_enclave", F_OK) == 0 || access("/dev/sgx/enclave", F_OK) == 0;
}
