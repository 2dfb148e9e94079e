/* SPDX-License-Identifier: Apache-2.0 */
/*
 * src/net/pool: the classification both worker pools grow by, checked
 * against real threads whose state the kernel reports (a thread asleep in
 * nanosleep, one on a condition variable, one spinning), and the thread
 * start's stack size read back from the thread itself.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "net/pool.h"
#include "net/server.h"

enum { SLEEPER, CONDWAIT, SPINNER };

struct probe_thread {
	int kind;
	atomic_int ktid;
	atomic_int stop;
	pthread_t tid;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

static void *probe_main(void *arg)
{
	struct probe_thread *t = arg;

	atomic_store(&t->ktid, (int)syscall(SYS_gettid));
	while (!atomic_load(&t->stop)) {
		if (t->kind == SLEEPER) {
			struct timespec ts = {0, 2 * 1000 * 1000};

			nanosleep(&ts, NULL);
		} else if (t->kind == CONDWAIT) {
			pthread_mutex_lock(&t->mu);
			if (!atomic_load(&t->stop))
				pthread_cond_wait(&t->cv, &t->mu);
			pthread_mutex_unlock(&t->mu);
		}
	}
	return NULL;
}

static void probe_start(struct probe_thread *t, int kind)
{
	memset(t, 0, sizeof(*t));
	t->kind = kind;
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cv, NULL);
	assert_int_equal(pthread_create(&t->tid, NULL, probe_main, t), 0);
	while (!atomic_load(&t->ktid))
		usleep(1000);
	usleep(20 * 1000); /* in its wait (or spin) by now */
}

static void probe_stop(struct probe_thread *t)
{
	pthread_mutex_lock(&t->mu);
	atomic_store(&t->stop, 1);
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
	pthread_join(t->tid, NULL);
	pthread_mutex_destroy(&t->mu);
	pthread_cond_destroy(&t->cv);
}

/* The kernel's view, read a few times: a sleeper is seen asleep outside a
 * futex at least once, a thread on a condition variable never. */
static void blocked_outside_tells_sleep_from_futex(void **state)
{
	struct probe_thread s, c;
	int seen_s = 0, seen_c = 0;

	(void)state;
	probe_start(&s, SLEEPER);
	probe_start(&c, CONDWAIT);
	for (int i = 0; i < 20; i++) {
		seen_s |= mse_pool_blocked_outside(atomic_load(&s.ktid)) == 1;
		seen_c |= mse_pool_blocked_outside(atomic_load(&c.ktid)) == 1;
		usleep(1000);
	}
	assert_true(seen_s);
	assert_false(seen_c);
	/* A thread that does not exist: unknown, not "running". */
	assert_int_equal(mse_pool_blocked_outside(0x7ffffff0), -1);
	probe_stop(&s);
	probe_stop(&c);
}

static int g_busy;

static int app_busy(void *user)
{
	(void)user;
	return g_busy;
}

static void classify_by_state_waiting_and_fallback(void **state)
{
	struct probe_thread s1, s2, c;
	struct mse_pool_class k;
	struct mse_pool_probe p[3];
	int64_t t = 1000;
	int got = 0;

	(void)state;
	probe_start(&s1, SLEEPER);
	probe_start(&s2, SLEEPER);
	probe_start(&c, CONDWAIT);

	/* Two of three asleep outside the GIL: blocking (read a few times,
	 * 1 ms apart, as a sleeper is sometimes caught between two sleeps:
	 * reads back to back could all land in the same instant). */
	memset(&k, 0, sizeof(k));
	p[0] = (struct mse_pool_probe){atomic_load(&s1.ktid), 0};
	p[1] = (struct mse_pool_probe){atomic_load(&s2.ktid), 0};
	p[2] = (struct mse_pool_probe){atomic_load(&c.ktid), 0};
	for (int i = 0; i < 20 && !got; i++, t += MSE_POOL_CHECK_MS) {
		got = mse_pool_classify(&k, t, p, 3, NULL, NULL);
		if (!got)
			usleep(1000);
	}
	assert_int_equal(got, 1);

	/* All on a condition variable (the GIL): CPU-bound. */
	memset(&k, 0, sizeof(k));
	k.blocking = 1;
	p[0] = p[1] = p[2];
	assert_int_equal(mse_pool_classify(&k, t, p, 3, NULL, NULL), 0);
	/* Within MSE_POOL_CHECK_MS the answer is cached; no workers keep it. */
	k.blocking = 1;
	assert_int_equal(mse_pool_classify(&k, t + 1, p, 3, NULL, NULL), 1);
	assert_int_equal(mse_pool_classify(&k, t + 100, p, 0, NULL, NULL), 1);

	/* The same futex waiters said they wait on another thread's work (the
	 * ASGI bridge): blocked, without /proc. */
	memset(&k, 0, sizeof(k));
	for (int i = 0; i < 3; i++)
		p[i].waiting = 1;
	assert_int_equal(mse_pool_classify(&k, t, p, 3, NULL, NULL), 1);

	/* /proc cannot say (a thread id that does not exist, as under
	 * Gramine): app_busy decides, idle at two checks in a row. */
	memset(&k, 0, sizeof(k));
	p[0] = (struct mse_pool_probe){0x7ffffff0, 0};
	g_busy = 0;
	assert_int_equal(mse_pool_classify(&k, t, p, 1, app_busy, NULL), 0);
	assert_int_equal(mse_pool_classify(&k, t + 10, p, 1, app_busy, NULL), 1);
	g_busy = 1;
	assert_int_equal(mse_pool_classify(&k, t + 20, p, 1, app_busy, NULL), 0);
	memset(&k, 0, sizeof(k));
	assert_int_equal(mse_pool_classify(&k, t, p, 1, NULL, NULL), 1);
	assert_true(k.checks == 1);

	probe_stop(&s1);
	probe_stop(&s2);
	probe_stop(&c);
}

static void *stack_main(void *arg)
{
	pthread_attr_t a;
	size_t *out = arg;

	if (pthread_getattr_np(pthread_self(), &a) == 0) {
		pthread_attr_getstacksize(&a, out);
		pthread_attr_destroy(&a);
	}
	return NULL;
}

static void thread_gets_the_explicit_stack(void **state)
{
	pthread_t tid;
	size_t want = mse_pool_stack_size(256 * 1024), got = 0;

	(void)state;
	assert_true(mse_pool_stack_size(0) >= MSE_SERVER_STACK_DEFAULT);
	assert_true(want >= 256 * 1024 && want <= 4 * 256 * 1024);
	assert_int_equal(mse_pool_thread_create(&tid, want, stack_main, &got), 0);
	pthread_join(tid, NULL);
	/* glibc reports the stack it mapped: the size asked for (it may round
	 * up to a page and add the guard), never its 8 MiB default. */
	assert_true(got >= want && got < want + 64 * 1024);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(blocked_outside_tells_sleep_from_futex),
		cmocka_unit_test(classify_by_state_waiting_and_fallback),
		cmocka_unit_test(thread_gets_the_explicit_stack),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
