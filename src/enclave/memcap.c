/* SPDX-License-Identifier: Apache-2.0 */
#include "enclave/memcap.h"

#include <Python.h>

#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Explicit stack size for every thread created after install (see memcap.h). */
#define THREAD_STACK_BYTES ((size_t)8 << 20)
/* Anonymous mappings tracked at once; beyond, a mapping is refused while a limit is set. */
#define MAP_SLOTS 4096

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

static void *real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
static int real_munmap(void *addr, size_t len);

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
	/* counted here already: not through our mmap, which would count it again */
	p = real_mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
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
	real_munmap(p, n);
	release(n);
}

/* ---- anonymous mappings (mmap, mmap64, mremap, munmap) -------------------
 *
 * The app (Python's mmap module, a C extension, ctypes through libc's PLT)
 * can map memory without Python's allocator: mmap(-1, 300 MB) would pass a
 * 256 MB cap that only counts PyMem. An enclave cannot: its memory is fixed
 * and such an mmap fails with ENOMEM. So this executable defines mmap,
 * mmap64, mremap and munmap; the dynamic linker binds every shared
 * library's calls to them (the executable comes first in the lookup order)
 * and they forward to the next definition (libasan's interceptor under ASan,
 * else libc's). While a limit is set, every writable anonymous mapping
 * (private or shared: both are committed memory in an enclave) is counted
 * with Python's bytes, at its full length — what is committed, whether
 * touched or not; never address space reserved PROT_NONE — and refused with
 * ENOMEM over the limit. glibc's own malloc and thread stacks use its
 * internal mmap and are not seen here: malloc'd bytes are Python's (RAW
 * domain) or part of the resident base measured at commit.
 */
typedef void *(*mmap_fn)(void *, size_t, int, int, int, off_t);
typedef int (*munmap_fn)(void *, size_t);
typedef void *(*mremap_fn)(void *, size_t, size_t, int, ...);

static struct {
	uintptr_t addr;
	size_t len;
} g_maps[MAP_SLOTS];
static size_t g_nmaps;
static pthread_mutex_t g_maps_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t page_round(size_t n)
{
	size_t pg = 4096;

	return n > SIZE_MAX - pg ? SIZE_MAX : (n + pg - 1) & ~(pg - 1);
}

static void *next_sym(const char *name)
{
	return dlsym(RTLD_NEXT, name);
}

static void *real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	static _Atomic(mmap_fn) f;
	mmap_fn fn = atomic_load(&f);

	if (!fn) {
		fn = (mmap_fn)next_sym("mmap");
		if (fn)
			atomic_store(&f, fn);
	}
	if (fn)
		return fn(addr, len, prot, flags, fd, off);
	return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

static int real_munmap(void *addr, size_t len)
{
	static _Atomic(munmap_fn) f;
	munmap_fn fn = atomic_load(&f);

	if (!fn) {
		fn = (munmap_fn)next_sym("munmap");
		if (fn)
			atomic_store(&f, fn);
	}
	return fn ? fn(addr, len) : (int)syscall(SYS_munmap, addr, len);
}

static void *real_mremap(void *old, size_t old_len, size_t new_len, int flags, void *new_addr)
{
	static _Atomic(mremap_fn) f;
	mremap_fn fn = atomic_load(&f);

	if (!fn) {
		fn = (mremap_fn)next_sym("mremap");
		if (fn)
			atomic_store(&f, fn);
	}
	if (fn)
		return fn(old, old_len, new_len, flags, new_addr);
	return (void *)syscall(SYS_mremap, old, old_len, new_len, flags, new_addr);
}

static int counted_mapping(int prot, int flags)
{
	return (flags & MAP_ANONYMOUS) && (prot & PROT_WRITE) && !(flags & MAP_FIXED);
}

static void *capped_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	size_t n = page_round(len);
	void *p;

	if (!atomic_load_explicit(&g_limit, memory_order_relaxed) || !counted_mapping(prot, flags))
		return real_mmap(addr, len, prot, flags, fd, off);
	pthread_mutex_lock(&g_maps_lock);
	if (g_nmaps == MAP_SLOTS || reserve(n) != 0) {
		pthread_mutex_unlock(&g_maps_lock);
		errno = ENOMEM;
		return MAP_FAILED;
	}
	p = real_mmap(addr, len, prot, flags, fd, off);
	if (p == MAP_FAILED) {
		release(n);
	} else {
		g_maps[g_nmaps].addr = (uintptr_t)p;
		g_maps[g_nmaps].len = n;
		g_nmaps++;
	}
	pthread_mutex_unlock(&g_maps_lock);
	return p;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return capped_mmap(addr, len, prot, flags, fd, off);
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return capped_mmap(addr, len, prot, flags, fd, off);
}

/* Takes [a, a + n) out of the tracked mappings, releasing what was counted there. */
static void untrack(uintptr_t a, size_t n)
{
	uintptr_t end = a + n;

	for (size_t i = 0; i < g_nmaps;) {
		uintptr_t ea = g_maps[i].addr, ee = ea + g_maps[i].len;
		uintptr_t lo = a > ea ? a : ea, hi = end < ee ? end : ee;

		if (lo >= hi) {
			i++;
			continue;
		}
		release(hi - lo);
		if (lo > ea && hi < ee && g_nmaps < MAP_SLOTS) { /* a hole: keep both sides */
			g_maps[g_nmaps].addr = hi;
			g_maps[g_nmaps].len = ee - hi;
			g_nmaps++;
			g_maps[i].len = lo - ea;
			i++;
		} else if (lo > ea && hi < ee) { /* no slot for the right side: stop counting it */
			release(ee - hi);
			g_maps[i].len = lo - ea;
			i++;
		} else if (lo > ea) {
			g_maps[i].len = lo - ea;
			i++;
		} else if (hi < ee) {
			g_maps[i].addr = hi;
			g_maps[i].len = ee - hi;
			i++;
		} else {
			g_maps[i] = g_maps[--g_nmaps];
		}
	}
}

int munmap(void *addr, size_t len)
{
	int rc = real_munmap(addr, len);

	if (rc == 0) {
		pthread_mutex_lock(&g_maps_lock);
		if (g_nmaps)
			untrack((uintptr_t)addr, page_round(len));
		pthread_mutex_unlock(&g_maps_lock);
	}
	return rc;
}

void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
	void *new_addr = NULL, *p;
	size_t i, on = page_round(old_len), nn = page_round(new_len);
	va_list ap;

	if (flags & MREMAP_FIXED) {
		va_start(ap, flags);
		new_addr = va_arg(ap, void *);
		va_end(ap);
	}
	pthread_mutex_lock(&g_maps_lock);
	for (i = 0; i < g_nmaps; i++)
		if (g_maps[i].addr == (uintptr_t)old && g_maps[i].len == on)
			break;
	if (i == g_nmaps) { /* not one of ours */
		pthread_mutex_unlock(&g_maps_lock);
		return real_mremap(old, old_len, new_len, flags, new_addr);
	}
	if (nn > on && reserve(nn - on) != 0) {
		pthread_mutex_unlock(&g_maps_lock);
		errno = ENOMEM;
		return MAP_FAILED;
	}
	p = real_mremap(old, old_len, new_len, flags, new_addr);
	if (p == MAP_FAILED) {
		if (nn > on)
			release(nn - on);
	} else {
		if (nn < on)
			release(on - nn);
		g_maps[i].addr = (uintptr_t)p;
		g_maps[i].len = nn;
	}
	pthread_mutex_unlock(&g_maps_lock);
	return p;
}

void mse_memcap_install(void)
{
	pthread_attr_t ta;

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
	/*
	 * Every thread created from now on (the server's workers, the app's
	 * threads) gets an explicit stack size instead of one derived from
	 * RLIMIT_STACK (up to 32 MiB per thread when unlimited): the stacks an
	 * enclave must hold are known in advance.
	 */
	if (pthread_attr_init(&ta) == 0) {
		if (pthread_attr_setstacksize(&ta, THREAD_STACK_BYTES) == 0)
			(void)pthread_setattr_default_np(&ta);
		pthread_attr_destroy(&ta);
	}
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

int mse_memcap_charge(uint64_t n)
{
	return reserve(n);
}

void mse_memcap_uncharge(uint64_t n)
{
	release(n);
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
