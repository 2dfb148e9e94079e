/* SPDX-License-Identifier: Apache-2.0 */
#include "operator/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

pid_t mse_proc_start(const char *cwd, char *const argv[], char *const env_extra[],
		     const char *log_path, struct mse_err *err)
{
	int pipefd[2], child_errno = 0, fd_log = -1;
	ssize_t n;
	pid_t pid;

	if (log_path) {
		fd_log = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (fd_log < 0)
			return mse_err_field(err, log_path, "%s", strerror(errno));
	}
	if (pipe2(pipefd, O_CLOEXEC) != 0) {
		if (fd_log >= 0)
			close(fd_log);
		return mse_err_set(err, "pipe: %s", strerror(errno));
	}
	pid = fork();
	if (pid < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		if (fd_log >= 0)
			close(fd_log);
		return mse_err_set(err, "fork: %s", strerror(errno));
	}
	if (pid == 0) {
		int e;

		if (fd_log >= 0) {
			dup2(fd_log, 1);
			dup2(fd_log, 2);
		}
		for (size_t i = 0; env_extra && env_extra[i]; i++)
			putenv(env_extra[i]);
		if (cwd && chdir(cwd) != 0) {
			e = errno;
		} else {
			execv(argv[0], argv);
			e = errno;
		}
		if (write(pipefd[1], &e, sizeof(e)) < 0)
			_exit(126);
		_exit(127);
	}
	close(pipefd[1]);
	if (fd_log >= 0)
		close(fd_log);
	n = read(pipefd[0], &child_errno, sizeof(child_errno));
	close(pipefd[0]);
	if (n == (ssize_t)sizeof(child_errno)) {
		waitpid(pid, NULL, 0);
		return mse_err_field(err, argv[0], "cannot execute%s%s: %s", cwd ? " in " : "",
				     cwd ? cwd : "", strerror(child_errno));
	}
	return pid;
}

int mse_proc_wait(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
}

int mse_proc_run(const char *cwd, char *const argv[], char *const env_extra[], int *status,
		 struct mse_err *err)
{
	pid_t pid = mse_proc_start(cwd, argv, env_extra, NULL, err);

	if (pid < 0)
		return -1;
	*status = mse_proc_wait(pid);
	return 0;
}

void mse_proc_stop(pid_t pid, int timeout_ms)
{
	int st;

	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	for (int waited = 0; waited < timeout_ms; waited += 50) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return;
		usleep(50 * 1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
}

int mse_proc_self_exe(char *out, size_t size)
{
	ssize_t n = readlink("/proc/self/exe", out, size - 1);

	if (n <= 0 || (size_t)n >= size - 1)
		return -1;
	out[n] = 0;
	return 0;
}
