/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The seccomp filter, checked syscall by syscall in a forked child (the
 * filter is irreversible, and LeakSanitizer cannot run under it: the child
 * ends with _exit). Each check sets a bit in the child's exit status.
 */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include "enclave/sandbox.h"

extern char **environ;

static void *thread_main(void *p)
{
	*(int *)p = 42;
	return NULL;
}

/* Runs in the child. Returns a bit mask of the checks that failed. */
static int sandboxed_checks(void)
{
	struct mse_err err;
	char *argv[] = {(char *)"/bin/true", NULL};
	pthread_t t;
	pid_t pid;
	long r;
	int bad = 0, v = 0;

	mse_err_clear(&err);
	if (mse_sandbox_install(&err) != 0 || !mse_sandbox_active())
		return 1;
	/* fork(): glibc uses clone without CLONE_THREAD. */
	errno = 0;
	pid = fork();
	if (pid == 0)
		_exit(0);
	if (pid != -1 || errno != EPERM)
		bad |= 2;
	errno = 0;
	if (syscall(SYS_fork) != -1 || errno != EPERM)
		bad |= 4;
	errno = 0;
	if (syscall(SYS_vfork) != -1 || errno != EPERM)
		bad |= 8;
	errno = 0;
	if (execve("/bin/true", argv, environ) != -1 || errno != EPERM)
		bad |= 16;
	errno = 0;
	r = syscall(SYS_clone3, NULL, 0);
	if (r != -1 || errno != ENOSYS)
		bad |= 32;
	/* posix_spawn: clone3 -> ENOSYS -> clone(CLONE_VM|CLONE_VFORK) -> EPERM. */
	if (posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ) == 0)
		bad |= 64;
	/* Threads still work: clone3 fails, glibc falls back to clone(CLONE_THREAD). */
	if (pthread_create(&t, NULL, thread_main, &v) != 0 || pthread_join(t, NULL) != 0 || v != 42)
		bad |= 128;
	/* What an asyncio loop and the WebSocket thread need (the ASGI bridge). */
	{
		int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), ep = epoll_create1(EPOLL_CLOEXEC);
		int sv[2] = {-1, -1};
		struct epoll_event ev = {.events = EPOLLIN};
		uint64_t one = 1;

		ev.data.fd = efd;
		if (efd < 0 || ep < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0 ||
		    epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) != 0 ||
		    write(efd, &one, sizeof(one)) != (ssize_t)sizeof(one) ||
		    epoll_wait(ep, &ev, 1, 1000) != 1)
			bad |= 1;
		close(efd);
		close(ep);
		close(sv[0]);
		close(sv[1]);
	}
	/* Installing twice is harmless. */
	if (mse_sandbox_install(&err) != 0)
		bad |= 1;
	return bad;
}

static void filter_refuses_processes_and_allows_threads(void **state)
{
	pid_t pid;
	int status;

	(void)state;
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(sandboxed_checks());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) != 0)
		fail_msg("sandboxed checks failed, mask 0x%x", WEXITSTATUS(status));
}

/* Outside the child, nothing changed: the filter is per process tree from install on. */
static void parent_is_not_sandboxed(void **state)
{
	(void)state;
	assert_false(mse_sandbox_active());
	assert_int_equal(tu_sh("true"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(filter_refuses_processes_and_allows_threads),
		cmocka_unit_test(parent_is_not_sandboxed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
