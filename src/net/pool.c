/* SPDX-License-Identifier: Apache-2.0 */
#include "net/pool.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "net/server.h"

size_t mse_pool_stack_size(size_t configured)
{
	size_t n = configured ? configured : MSE_SERVER_STACK_DEFAULT;

#if defined(__SANITIZE_ADDRESS__)
	n *= 4;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
	n *= 4;
#endif
#endif
	return n;
}

int mse_pool_thread_create(pthread_t *tid, size_t stack_size, void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	sigset_t all, old;
	int rc;

	if ((rc = pthread_attr_init(&attr)) != 0)
		return rc;
	if ((rc = pthread_attr_setstacksize(&attr, stack_size)) == 0) {
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		rc = pthread_create(tid, &attr, fn, arg);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	pthread_attr_destroy(&attr);
	return rc;
}

void mse_pool_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *m, int64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(cv, m, &ts);
}

/* Reads /proc/self/task/KTID/NAME into buf (NUL-terminated): 0, or -1. */
static int read_task_file(pid_t ktid, const char *name, char *buf, size_t size)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/%s", (int)ktid, name);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return 0;
}

int mse_pool_blocked_outside(pid_t ktid)
{
	char buf[256];
	const char *p;

	if (read_task_file(ktid, "stat", buf, sizeof(buf)) != 0)
		return -1;
	/* "tid (comm) S ...": the state follows the last ')' (proc(5)). */
	if (!(p = strrchr(buf, ')')) || p[1] != ' ' || (p[2] != 'S' && p[2] != 'D'))
		return 0;
	if (read_task_file(ktid, "syscall", buf, sizeof(buf)) != 0)
		return -1;
	return atol(buf) != SYS_futex;
}

int mse_pool_classify(struct mse_pool_class *k, int64_t now_ms, const struct mse_pool_probe *probes,
		      int n, int (*app_busy)(void *user), void *user)
{
	int blocked = 0, other = 0, idle;

	if (now_ms - k->last_check < MSE_POOL_CHECK_MS)
		return k->blocking;
	k->last_check = now_ms;
	k->checks++;
	if (n <= 0)
		return k->blocking;
	if (n > MSE_POOL_SAMPLE)
		n = MSE_POOL_SAMPLE;
	for (int i = 0; i < n; i++) {
		int b = probes[i].waiting ? 1 : mse_pool_blocked_outside(probes[i].ktid);

		if (b < 0)
			goto unknown;
		if (b)
			blocked++;
		else
			other++;
		/* Decided once either side holds half. */
		if (2 * blocked >= n || 2 * other > n)
			break;
	}
	return k->blocking = blocked > 0 && blocked >= other;
unknown:
	if (!app_busy)
		return k->blocking = 1;
	idle = !app_busy(user);
	k->blocking = idle && k->app_was_idle;
	k->app_was_idle = idle;
	return k->blocking;
}
