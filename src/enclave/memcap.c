/* SPDX-License-Identifier: Apache-2.0 */
#include "enclave/memcap.h"

#include <Python.h>

#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static _Atomic uint64_t g_used;
static _Atomic uint64_t g_limit; /* 0 = none */
static int g_installed;

/* Reserves n bytes; 0 if within the limit, -1 (nothing reserved) if not. */
static int reserve(uint64_t n)
{
	uint64_t lim = atomic_load_explicit(&g_limit, memory_order_relaxed);
	uint64_t now = atomic_fetch_add_explicit(&g_used, n, memory_order_relaxed) + n;

	if (lim && now > lim) {
		atomic_fetch_sub_explicit(&g_used, n, memory_order_relaxed);
		return -1;
	}
	return 0;
}

static void release(uint64_t n)
{
	atomic_fetch_sub_explicit(&g_used, n, memory_order_relaxed);
}

/*
 * RAW domain. The reservation is made with the requested size, then
 * corrected to malloc_usable_size, which is what free() will subtract.
 * PyMem requires a distinct non-NULL pointer for size 0.
 */
static void *raw_malloc(void *ctx, size_t n)
{
	void *p;

	(void)ctx;
	if (n == 0)
		n = 1;
	if (reserve(n) != 0)
		return NULL;
	p = malloc(n);
	if (!p) {
		release(n);
		return NULL;
	}
	atomic_fetch_add_explicit(&g_used, malloc_usable_size(p) - n, memory_order_relaxed);
	return p;
}

static void *raw_calloc(void *ctx, size_t nelem, size_t elsize)
{
	size_t n;
	void *p;

	(void)ctx;
	if (__builtin_mul_overflow(nelem, elsize, &n))
		return NULL;
	if (n == 0) {
		nelem = 1;
		elsize = 1;
		n = 1;
	}
	if (reserve(n) != 0)
		return NULL;
	p = calloc(nelem, elsize);
	if (!p) {
		release(n);
		return NULL;
	}
	atomic_fetch_add_explicit(&g_used, malloc_usable_size(p) - n, memory_order_relaxed);
	return p;
}

static void *raw_realloc(void *ctx, void *old, size_t n)
{
	size_t old_size;
	void *p;

	if (!old)
		return raw_malloc(ctx, n);
	if (n == 0)
		n = 1;
	old_size = malloc_usable_size(old);
	/* Reserve the growth first so a refused realloc leaves the block intact. */
	if (n > old_size && reserve(n - old_size) != 0)
		return NULL;
	p = realloc(old, n);
	if (!p) {
		if (n > old_size)
			release(n - old_size);
		return NULL;
	}
	/* Account the difference between what is now held and what was counted. */
	{
		uint64_t counted = n > old_size ? n : old_size;
		uint64_t now = malloc_usable_size(p);

		if (now >= counted)
			atomic_fetch_add_explicit(&g_used, now - counted, memory_order_relaxed);
		else
			release(counted - now);
	}
	return p;
}

static void raw_free(void *ctx, void *p)
{
	(void)ctx;
	if (!p)
		return;
	release(malloc_usable_size(p));
	free(p);
}

/* pymalloc arenas (256 KiB..1 MiB mappings holding the small objects). */
static void *arena_alloc(void *ctx, size_t n)
{
	void *p;

	(void)ctx;
	if (reserve(n) != 0)
		return NULL;
	p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		release(n);
		return NULL;
	}
	return p;
}

static void arena_free(void *ctx, void *p, size_t n)
{
	(void)ctx;
	if (!p)
		return;
	munmap(p, n);
	release(n);
}

void mse_memcap_install(void)
{
	PyMemAllocatorEx raw = {NULL, raw_malloc, raw_calloc, raw_realloc, raw_free};
	PyObjectArenaAllocator arena = {NULL, arena_alloc, arena_free};

	if (g_installed)
		return;
	/*
	 * Allowed before Py_PreInitialize when PyPreConfig.allocator is
	 * PYMEM_ALLOCATOR_NOT_SET (the isolated preconfig's default), so every
	 * block Python ever frees was allocated here.
	 */
	PyMem_SetAllocator(PYMEM_DOMAIN_RAW, &raw);
	PyObject_SetArenaAllocator(&arena);
	g_installed = 1;
}

int mse_memcap_installed(void)
{
	return g_installed;
}

uint64_t mse_memcap_used(void)
{
	return atomic_load(&g_used);
}

void mse_memcap_set_limit(uint64_t bytes)
{
	atomic_store(&g_limit, bytes);
}

uint64_t mse_memcap_limit(void)
{
	return atomic_load(&g_limit);
}

uint64_t mse_memcap_rss(void)
{
	char line[256];
	uint64_t kb = 0;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0) {
			if (sscanf(line + 6, "%lu", &kb) != 1)
				kb = 0;
			break;
		}
	fclose(f);
	return kb * 1024;
}

int mse_memcap_commit(uint64_t total, struct mse_memcap_report *rep, struct mse_err *err)
{
	uint64_t rss = mse_memcap_rss(), used = mse_memcap_used(), base;

	if (rep) {
		rep->total = total;
		rep->resident = rss;
		rep->python_used = used;
		rep->left = total > rss ? total - rss : 0;
	}
	if (total == 0) {
		atomic_store(&g_limit, 0);
		return 0;
	}
	if (!g_installed)
		return mse_err_field(err, "memory", "the allocator accounting is not installed");
	if (rss >= total)
		return mse_err_field(err, "memory",
				     "%lu MiB is too small: the interpreter, the libraries and the "
				     "app's imports already use %lu MiB",
				     (unsigned long)(total >> 20), (unsigned long)(rss >> 20));
	/*
	 * What is resident but not Python's (libraries, C heap, stacks) is taken
	 * off the budget once; Python may grow into the remainder.
	 */
	base = rss > used ? rss - used : 0;
	atomic_store(&g_limit, total - base);
	return 0;
}
