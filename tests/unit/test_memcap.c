/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The allocator accounting behind --memory, through Python's own raw
 * allocator API (usable before the interpreter starts, and this process
 * never starts it). The MemoryError an app sees is tested end to end
 * (tests/e2e/test_serve.py, non-sanitizer build).
 */
#include "testutil.h"

#include <Python.h>

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "enclave/memcap.h"

#define MiB (1024 * 1024)

static void accounting_follows_malloc_realloc_free(void **state)
{
	uint64_t base;
	char *p, *q;

	(void)state;
	assert_true(mse_memcap_installed());
	base = mse_memcap_used();
	p = PyMem_RawMalloc(3 * MiB);
	assert_non_null(p);
	memset(p, 1, 3 * MiB);
	assert_true(mse_memcap_used() >= base + 3 * MiB);
	q = PyMem_RawRealloc(p, 5 * MiB);
	assert_non_null(q);
	assert_true(mse_memcap_used() >= base + 5 * MiB);
	assert_int_equal(q[3 * MiB - 1], 1);
	q = PyMem_RawRealloc(q, 1 * MiB);
	assert_non_null(q);
	assert_true(mse_memcap_used() < base + 2 * MiB);
	PyMem_RawFree(q);
	assert_int_equal(mse_memcap_used(), base);
	p = PyMem_RawCalloc(1000, 1000);
	assert_non_null(p);
	assert_int_equal(p[999999], 0);
	PyMem_RawFree(p);
	assert_int_equal(mse_memcap_used(), base);
	/* Size 0 must give a distinct pointer (PyMem contract). */
	p = PyMem_RawMalloc(0);
	q = PyMem_RawMalloc(0);
	assert_non_null(p);
	assert_non_null(q);
	assert_ptr_not_equal(p, q);
	PyMem_RawFree(p);
	PyMem_RawFree(q);
	assert_int_equal(mse_memcap_used(), base);
	/* Overflowing calloc is refused, not wrapped. */
	assert_null(PyMem_RawCalloc(SIZE_MAX / 2, 4));
	assert_int_equal(mse_memcap_used(), base);
}

static void limit_refuses_and_keeps_blocks_intact(void **state)
{
	uint64_t base = mse_memcap_used();
	char *p, *q;

	(void)state;
	mse_memcap_set_limit(base + 8 * MiB);
	assert_null(PyMem_RawMalloc(9 * MiB));
	assert_null(PyMem_RawCalloc(9, MiB));
	assert_int_equal(mse_memcap_used(), base); /* a refusal reserves nothing */
	p = PyMem_RawMalloc(6 * MiB);
	assert_non_null(p);
	memset(p, 7, 6 * MiB);
	/* Growing past the limit fails and leaves the block as it was. */
	q = PyMem_RawRealloc(p, 10 * MiB);
	assert_null(q);
	assert_int_equal(p[6 * MiB - 1], 7);
	assert_null(PyMem_RawMalloc(3 * MiB));
	PyMem_RawFree(p);
	/* Freed memory can be allocated again. */
	p = PyMem_RawMalloc(7 * MiB);
	assert_non_null(p);
	PyMem_RawFree(p);
	mse_memcap_set_limit(0);
	p = PyMem_RawMalloc(64 * MiB);
	assert_non_null(p);
	PyMem_RawFree(p);
	assert_int_equal(mse_memcap_used(), base);
}

static void commit_measures_what_is_resident(void **state)
{
	struct mse_memcap_report rep;
	struct mse_err err;
	uint64_t rss = mse_memcap_rss();

	(void)state;
	assert_true(rss > 0);
	/* A budget below what is already resident is refused with the figures. */
	mse_err_clear(&err);
	assert_int_equal(mse_memcap_commit(1 * MiB, &rep, &err), -1);
	assert_string_equal(err.field, "memory");
	assert_non_null(strstr(err.msg, "too small"));
	/* A large budget: what is left is the budget minus what is resident. */
	mse_err_clear(&err);
	assert_int_equal(mse_memcap_commit((uint64_t)64 * 1024 * MiB, &rep, &err), 0);
	assert_true(rep.resident > 0);
	assert_true(rep.left + rep.resident == rep.total);
	assert_int_equal(mse_memcap_limit(), rep.left + rep.python_used);
	assert_int_equal(mse_memcap_commit(0, NULL, &err), 0);
	assert_int_equal(mse_memcap_limit(), 0);
}

/*
 * Memory mapped without Python's allocator counts too: an anonymous
 * writable mapping of 300 MB under a 256 MB cap is refused with ENOMEM, as
 * an enclave of 256 MB refuses it; smaller ones are counted (touched or
 * not) and given back by munmap; PROT_NONE reservations are address space,
 * not memory, and are not counted.
 */
static void anonymous_mappings_count_against_the_cap(void **state)
{
	void *(*shared_mmap64)(void *, size_t, int, int, int, off_t);
	uint64_t base = mse_memcap_used();
	char *p, *q;
	size_t i;

	(void)state;
	mse_memcap_set_limit(base + 256 * MiB);
	errno = 0;
	p = mmap(NULL, 300 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(p == MAP_FAILED);
	assert_int_equal(errno, ENOMEM);
	assert_int_equal(mse_memcap_used(), base);
	/* what shared libraries bind to (Python's mmap module calls mmap64) is ours too */
	shared_mmap64 = (void *(*)(void *, size_t, int, int, int, off_t))dlsym(RTLD_DEFAULT, "mmap64");
	assert_non_null(shared_mmap64);
	assert_true(shared_mmap64(NULL, 300 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
				  -1, 0) == MAP_FAILED);
	/* within the cap: counted at its full length, touched */
	p = mmap(NULL, 200 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(p != MAP_FAILED);
	for (i = 0; i < 200 * MiB; i += 4096)
		p[i] = 1;
	assert_int_equal(mse_memcap_used(), base + 200 * MiB);
	/* Python's own allocations share the same budget */
	assert_null(PyMem_RawMalloc(64 * MiB));
	q = mmap(NULL, 64 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(q == MAP_FAILED);
	/* growing it past the cap fails and keeps it */
	assert_true(mremap(p, 200 * MiB, 300 * MiB, MREMAP_MAYMOVE) == MAP_FAILED);
	assert_int_equal(p[4096], 1);
	/* a partial munmap gives that part back, then the rest */
	assert_int_equal(munmap(p + 100 * MiB, 50 * MiB), 0);
	assert_int_equal(mse_memcap_used(), base + 150 * MiB);
	assert_int_equal(munmap(p, 100 * MiB), 0);
	assert_int_equal(munmap(p + 150 * MiB, 50 * MiB), 0);
	assert_int_equal(mse_memcap_used(), base);
	/* address space only: not counted */
	q = mmap(NULL, 1024 * MiB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	assert_true(q != MAP_FAILED);
	assert_int_equal(mse_memcap_used(), base);
	assert_int_equal(munmap(q, 1024 * MiB), 0);
	/* no cap, no counting */
	mse_memcap_set_limit(0);
	p = mmap(NULL, 300 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(p != MAP_FAILED);
	assert_int_equal(mse_memcap_used(), base);
	assert_int_equal(munmap(p, 300 * MiB), 0);
}

static void *stack_size_of_thread(void *out)
{
	pthread_attr_t a;

	if (pthread_getattr_np(pthread_self(), &a) == 0) {
		pthread_attr_getstacksize(&a, (size_t *)out);
		pthread_attr_destroy(&a);
	}
	return NULL;
}

static size_t new_thread_stack_size(void)
{
	pthread_t t;
	size_t size = 0;

	if (pthread_create(&t, NULL, stack_size_of_thread, &size) != 0 || pthread_join(t, NULL) != 0)
		return 0;
	return size;
}

static const char *self_exe;

/*
 * Threads get an explicit stack size, not one derived from RLIMIT_STACK
 * (glibc takes it from the limit at start: 64 MiB here, without install).
 */
static void threads_get_an_explicit_stack_size(void **state)
{
	(void)state;
	assert_int_equal(new_thread_stack_size(), 8 * MiB);
	assert_int_equal(tu_sh("ulimit -s 65536 && '%s' --stack-size 8388608", self_exe), 0);
	assert_int_not_equal(tu_sh("ulimit -s 65536 && '%s' --stack-size-without-install 8388608",
				   self_exe),
			     0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(accounting_follows_malloc_realloc_free),
		cmocka_unit_test(limit_refuses_and_keeps_blocks_intact),
		cmocka_unit_test(commit_measures_what_is_resident),
		cmocka_unit_test(anonymous_mappings_count_against_the_cap),
		cmocka_unit_test(threads_get_an_explicit_stack_size),
	};

	self_exe = argv[0];
	if (argc == 3 && strcmp(argv[1], "--stack-size-without-install") == 0)
		return new_thread_stack_size() == strtoull(argv[2], NULL, 10) ? 0 : 1;
	mse_memcap_install();
	if (argc == 3 && strcmp(argv[1], "--stack-size") == 0)
		return new_thread_stack_size() == strtoull(argv[2], NULL, 10) ? 0 : 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
