/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_pool — the worker-pool rules that the HTTP/1.1 server (net/server.c)
 * and the HTTP/2 engine (net/h2.c) share: how a worker thread is started
 * (all signals blocked, an explicit modest stack) and how the app is
 * classified from what its serving workers do, which decides whether the
 * pool grows.
 *
 * The growth rule (docs/http.md: worker pool): the app's handlers are
 * serialised by the GIL, so a second runnable worker only queues for it;
 * but a handler that waits on the world (a sleep, a database, an HTTP call,
 * a slow client) or on another thread's work (the ASGI bridge waiting on
 * the event loop, exchange.h: waiting) holds its thread without using the
 * GIL, and a request queued behind it needs another thread. The pool looks
 * at a sample of its serving workers: mostly blocked outside the GIL means
 * "blocking" (a worker per queued request, up to max_threads), mostly
 * running or on the GIL means "CPU-bound" (no growth).
 */
#ifndef MSE_POOL_H
#define MSE_POOL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* How often, at most, a pool reads its workers' states. */
#define MSE_POOL_CHECK_MS 10
/* Serving workers one check reads, at most (two small /proc reads each):
 * a sample decides, not all 128. */
#define MSE_POOL_SAMPLE 16

/*
 * The stack a worker gets for a configured size (0: the server's default,
 * MSE_SERVER_STACK_DEFAULT), four times that under AddressSanitizer (its
 * redzones and fake frames).
 */
size_t mse_pool_stack_size(size_t configured);

/*
 * Starts fn(arg) on a new thread with this stack size and every signal
 * blocked (signals go to the main thread). 0, or an errno value.
 */
int mse_pool_thread_create(pthread_t *tid, size_t stack_size, void *(*fn)(void *), void *arg);

/*
 * pthread_cond_timedwait for at most ms milliseconds (ms > 0) on cv, which
 * was initialised with CLOCK_MONOTONIC (pthread_condattr_setclock), m held:
 * a wall-clock jump neither shortens nor stretches the wait.
 */
void mse_pool_cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *m, int64_t ms);

/*
 * Is the thread ktid asleep in the kernel on something other than a futex
 * (the GIL, a lock), i.e. blocked outside the GIL: a sleep, a poll, a read?
 * 1 yes, 0 no (running, runnable, or on a futex), -1 unknown (/proc
 * unreadable, as under Gramine).
 */
int mse_pool_blocked_outside(pid_t ktid);

/* One serving worker, as the classifier sees it. */
struct mse_pool_probe {
	pid_t ktid;  /* its kernel thread id (/proc/self/task) */
	int waiting; /* its handler said it waits on another thread (exchange.h) */
};

/* A pool's classification state: zero it before the first call. */
struct mse_pool_class {
	int64_t last_check; /* when the workers were last read (ms) */
	int blocking;       /* the last answer */
	int app_was_idle;   /* the app_busy fallback: idle at the last check */
	long checks;        /* checks made (MSE_SCHED_TRACE) */
};

/*
 * Classifies the app from its serving workers (probes[0, n), the caller
 * gives at most MSE_POOL_SAMPLE), at most every MSE_POOL_CHECK_MS (the
 * cached answer otherwise, and when n is 0), and returns k->blocking: 1
 * blocking, 0 CPU-bound. A waiting worker counts as blocked without /proc;
 * the others are read until either side holds half. Where /proc cannot
 * say, app_busy (may be NULL: then blocking) decides: the app counts as
 * blocking when it said idle at this check and the previous one, so a GIL
 * hand-over caught mid-way does not count.
 */
int mse_pool_classify(struct mse_pool_class *k, int64_t now_ms, const struct mse_pool_probe *probes,
		      int n, int (*app_busy)(void *user), void *user);

#endif
