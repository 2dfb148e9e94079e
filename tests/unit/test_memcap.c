/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The allocator accounting behind --memory, through Python's own raw
 * allocator API (usable before the interpreter starts, and this process
 * never starts it). The MemoryError an app sees is tested end to end
 * (tests/e2e/test_serve.py, non-sanitizer build).
 */
#include "testutil.h"

#include <Python.h>

#include <stdint.h>
#include <string.h>

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(accounting_follows_malloc_realloc_free),
		cmocka_unit_test(limit_refuses_and_keeps_blocks_intact),
		cmocka_unit_test(commit_measures_what_is_resident),
	};

	mse_memcap_install();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
