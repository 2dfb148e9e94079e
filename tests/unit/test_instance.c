/* SPDX-License-Identifier: Apache-2.0 */
/* node/instance: the operator's state directories. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "common/file.h"
#include "operator/instance.h"

static char g_root[64];

static int setup(void **state)
{
	(void)state;
	snprintf(g_root, sizeof(g_root), "%s", tu_tmpdir());
	setenv("XDG_STATE_HOME", g_root, 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmtree(g_root);
	return 0;
}

static void names_are_validated(void **state)
{
	struct mse_err err = {0};

	(void)state;
	assert_int_equal(mse_instance_name_ok("my-app_1.2", &err), 0);
	assert_int_equal(mse_instance_name_ok("", &err), -1);
	assert_int_equal(mse_instance_name_ok("../etc", &err), -1);
	assert_int_equal(mse_instance_name_ok("a/b", &err), -1);
	assert_non_null(strstr(err.msg, "'/'"));
	assert_int_equal(mse_instance_name_ok("-x", &err), -1);
	assert_int_equal(mse_instance_name_ok("x\ny", &err), -1);
}

static void save_load_list_remove(void **state)
{
	struct mse_instance a = {0}, b = {0}, got;
	struct mse_err err = {0};
	char path[4200], **names;
	struct stat st;
	size_t n;

	(void)state;
	assert_int_equal(mse_instance_locate(&a, "zeta", &err), 0);
	assert_int_equal(mse_instance_create(&a, &err), 0);
	snprintf(a.uuid, sizeof(a.uuid), "63322f85-1ff8-4483-91ae-f18d7398d157");
	snprintf(a.application, sizeof(a.application), "app:app");
	snprintf(a.host, sizeof(a.host), "127.0.0.1");
	a.port = 44321;
	a.pid = 0;
	a.size_mb = 4096;
	a.expiration = 1714058115;
	a.mode = MSE_MODE_SIMULATION;
	assert_int_equal(mse_instance_save(&a, &err), 0);
	snprintf(path, sizeof(path), "%s/state.json", a.dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(a.dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	/* The state file is JSON an independent parser reads back. */
	assert_int_equal(tu_sh("%s -c \"import json,sys; d=json.load(open('%s')); "
			       "sys.exit(0 if d['port']==44321 and d['uuid'].startswith('63322f85') "
			       "and d['mode']=='simulation' else 1)\"",
			       tu_python(), path),
			 0);
	assert_int_equal(mse_instance_load(&got, "zeta", &err), 0);
	assert_string_equal(got.uuid, a.uuid);
	assert_int_equal(got.port, 44321);
	assert_int_equal(got.size_mb, 4096);
	assert_true(got.expiration == 1714058115);
	/* A second create under the same name is refused. */
	assert_int_equal(mse_instance_create(&a, &err), -1);
	assert_non_null(strstr(err.msg, "already exists"));
	assert_int_equal(mse_instance_locate(&b, "alpha", &err), 0);
	assert_int_equal(mse_instance_create(&b, &err), 0);
	assert_int_equal(mse_instance_save(&b, &err), 0);
	assert_int_equal(mse_instance_list(&names, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(names[0], "alpha");
	assert_string_equal(names[1], "zeta");
	mse_instance_names_free(names, n);
	assert_int_equal(mse_instance_remove(&a, &err), 0);
	assert_false(mse_file_exists(a.dir));
	assert_int_equal(mse_instance_load(&got, "zeta", &err), -1);
	assert_non_null(strstr(err.msg, "no instance named \"zeta\""));
}

/* The metrics address: checked, recorded, and each replica its own port. */
static void metrics_address_checked_recorded_searched(void **state)
{
	struct mse_instance a = {0}, got;
	struct mse_err err = {0};
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	char out[300], spec[64];
	uint16_t held;
	int fd;

	(void)state;
	assert_int_equal(mse_instance_metrics_addr("--metrics", "localhost:9100", 0, 0, out,
						   sizeof(out), &err), -1);
	assert_string_equal(err.field, "--metrics");
	assert_string_equal(err.actual, "localhost:9100");
	/* A port another socket listens on: refused naming the option, or skipped. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	held = ntohs(sa.sin_port);
	snprintf(spec, sizeof(spec), "127.0.0.1:%u", (unsigned)held);
	mse_err_clear(&err);
	assert_int_equal(mse_instance_metrics_addr("--metrics", spec, 0, 0, out, sizeof(out), &err), -1);
	assert_string_equal(err.field, "--metrics");
	assert_non_null(strstr(err.msg, "Address already in use"));
	assert_int_equal(mse_instance_metrics_addr("--metrics", spec, 0, 1, out, sizeof(out), &err), 0);
	assert_string_not_equal(out, spec);
	/* The app's port is not the metrics' port. */
	assert_int_equal(mse_instance_metrics_addr("--metrics", "127.0.0.1:40001", 40001, 0, out,
						   sizeof(out), &err), -1);
	assert_non_null(strstr(err.msg, "app's port"));
	close(fd);
	/* Recorded, and then skipped by the next replica's search. */
	assert_int_equal(mse_instance_metrics_addr("--metrics", "127.0.0.1:0", 0, 1, a.metrics,
						   sizeof(a.metrics), &err), 0);
	assert_int_equal(mse_instance_locate(&a, "rep-1", &err), 0);
	assert_int_equal(mse_instance_create(&a, &err), 0);
	assert_int_equal(mse_instance_save(&a, &err), 0);
	assert_int_equal(mse_instance_load(&got, "rep-1", &err), 0);
	assert_string_equal(got.metrics, a.metrics);
	assert_int_equal(mse_instance_metrics_addr("--metrics", a.metrics, 0, 1, out, sizeof(out),
						   &err), 0);
	assert_string_not_equal(out, a.metrics);
	/* IPv6 keeps its brackets (where this machine has ::1). */
	if (mse_instance_metrics_addr("--metrics", "[::1]:0", 0, 0, out, sizeof(out), &err) == 0)
		assert_int_equal(strncmp(out, "[::1]:", 6), 0);
}

static void corrupt_state_names_the_file(void **state)
{
	struct mse_instance a = {0}, got;
	struct mse_err err = {0};
	char path[4200];

	(void)state;
	assert_int_equal(mse_instance_locate(&a, "broken", &err), 0);
	assert_int_equal(mse_instance_create(&a, &err), 0);
	snprintf(path, sizeof(path), "%s/state.json", a.dir);
	tu_write(path, "{\"port\": ", 9);
	assert_int_equal(mse_instance_load(&got, "broken", &err), -1);
	assert_non_null(strstr(err.file, "broken/state.json"));
	tu_write(path, "{\"port\": 1}", 11);
	assert_int_equal(mse_instance_load(&got, "broken", &err), -1);
}

static void a_foreign_pid_is_not_alive(void **state)
{
	struct mse_instance a = {0};

	(void)state;
	/* Our own pid is alive but is not mse-bootstrap: a recycled pid must not count. */
	a.pid = getpid();
	assert_int_equal(mse_instance_alive(&a), 0);
	a.pid = 0;
	assert_int_equal(mse_instance_alive(&a), 0);
}

/* Two spawns of one name: the first create claims it, the second is refused. */
static void create_claims_the_name(void **state)
{
	struct mse_instance a = {0}, b = {0}, got;
	struct mse_err err = {0};

	(void)state;
	assert_int_equal(mse_instance_locate(&a, "race", &err), 0);
	assert_int_equal(mse_instance_create(&a, &err), 0);
	/* Nothing saved yet (the process is not launched): the name is taken all the same. */
	assert_int_equal(mse_instance_locate(&b, "race", &err), 0);
	assert_int_equal(mse_instance_create(&b, &err), -1);
	assert_non_null(strstr(err.msg, "already exists"));
	/* A spawn that dies here leaves a state 'mse stop --remove' can load. */
	assert_int_equal(mse_instance_load(&got, "race", &err), 0);
	assert_int_equal(got.pid, 0);
}

static pid_t start_sleeper(const char *arg0, const char *dollar0, const char *ws)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		/* /bin/sh with argv[0] ARG0: ARG0 -c 'sleep 30' DOLLAR0 --workspace WS. */
		execl("/bin/sh", arg0, "-c", "sleep 30", dollar0, "--workspace", ws, (char *)NULL);
		_exit(127);
	}
	usleep(100 * 1000);
	return pid;
}

static void alive_needs_this_instance_workspace(void **state)
{
	struct mse_instance a = {0}, b = {0};
	struct mse_err err = {0};
	pid_t other, mine;

	(void)state;
	assert_int_equal(mse_instance_locate(&a, "mine", &err), 0);
	assert_int_equal(mse_instance_locate(&b, "other", &err), 0);
	a.mode = MSE_MODE_SIMULATION;
	/* Another instance's bootstrap (a recycled pid): not this enclave, never signalled. */
	other = start_sleeper("/opt/x/mse-bootstrap", "x", b.workspace);
	a.pid = other;
	assert_int_equal(mse_instance_alive(&a), 0);
	/* This instance's: alive. */
	mine = start_sleeper("/opt/x/mse-bootstrap", "x", a.workspace);
	a.pid = mine;
	assert_int_equal(mse_instance_alive(&a), 1);
	/* A process that only mentions mse-bootstrap in an argument is not one. */
	kill(other, SIGKILL);
	waitpid(other, NULL, 0);
	other = start_sleeper("/bin/sh", "/opt/x/mse-bootstrap", a.workspace);
	a.pid = other;
	assert_int_equal(mse_instance_alive(&a), 0);
	kill(other, SIGKILL);
	waitpid(other, NULL, 0);
	kill(mine, SIGKILL);
	waitpid(mine, NULL, 0);
	a.pid = mine;
	assert_int_equal(mse_instance_alive(&a), 0);
}

/*
 * An enclave that is still exec'ing (gramine-sgx's script its loader) reads
 * as someone else for a moment: mse_instance_gone() and the probe wait for
 * it instead of calling a starting enclave dead (a roll then removed it).
 */
/* A child that keeps this test's command line for 150 ms, then becomes the
 * instance's bootstrap (ARG0 mse-bootstrap, --workspace WS). */
static pid_t start_mid_exec(const char *ws)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		usleep(150 * 1000);
		execl("/bin/sh", "/opt/x/mse-bootstrap", "-c", "sleep 30", "x", "--workspace", ws,
		      (char *)NULL);
		_exit(127);
	}
	return pid;
}

static void a_process_mid_exec_is_not_gone(void **state)
{
	struct mse_instance a = {0};
	struct mse_err err = {0};
	char detail[256];

	(void)state;
	assert_int_equal(mse_instance_locate(&a, "starting", &err), 0);
	a.mode = MSE_MODE_SIMULATION;
	a.pid = start_mid_exec(a.workspace);
	assert_int_equal(mse_instance_alive(&a), 0); /* not recognisable yet */
	assert_int_not_equal(mse_instance_probe(&a, detail, sizeof(detail)), MSE_STATUS_ON_ERROR);
	assert_int_equal(mse_instance_alive(&a), 1);
	kill(a.pid, SIGKILL);
	waitpid(a.pid, NULL, 0);
	assert_int_equal(mse_instance_gone(&a), 1);
	assert_int_equal(mse_instance_probe(&a, detail, sizeof(detail)), MSE_STATUS_ON_ERROR);
	assert_non_null(strstr(detail, "has exited"));

	a.pid = start_mid_exec(a.workspace);
	assert_int_equal(mse_instance_gone(&a), 0);
	kill(a.pid, SIGKILL);
	waitpid(a.pid, NULL, 0);
}

/* A launch whose state cannot be saved leaves no process running untracked. */
static void launch_without_saved_state_kills_the_process(void **state)
{
	struct mse_instance a = {0};
	struct mse_err err = {0};
	char path[4200];

	(void)state;
	assert_int_equal(mse_instance_locate(&a, "unsaved", &err), 0);
	assert_int_equal(mse_instance_create(&a, &err), 0);
	char *argv[] = {"/opt/x/mse-bootstrap", "-c", "sleep 30", "x", "--workspace", a.workspace, NULL};

	/* state.json cannot be replaced by a directory: the save after the fork fails. */
	snprintf(path, sizeof(path), "%s/state.json", a.dir);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(mse_instance_launch(&a, "/bin/sh", argv, &err), -1);
	assert_int_equal(a.pid, 0);
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1); /* no child left, not even a zombie */
	rmdir(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(names_are_validated),
		cmocka_unit_test_setup_teardown(save_load_list_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(metrics_address_checked_recorded_searched, setup, teardown),
		cmocka_unit_test_setup_teardown(corrupt_state_names_the_file, setup, teardown),
		cmocka_unit_test(a_foreign_pid_is_not_alive),
		cmocka_unit_test_setup_teardown(create_claims_the_name, setup, teardown),
		cmocka_unit_test_setup_teardown(alive_needs_this_instance_workspace, setup, teardown),
		cmocka_unit_test_setup_teardown(a_process_mid_exec_is_not_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(launch_without_saved_state_kills_the_process, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
