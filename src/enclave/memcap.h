/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_memcap — cap what the Python app can allocate, as an enclave's size
 * does (`mse serve --memory MB`).
 *
 * An address-space rlimit does not work for this process (thread stacks,
 * glibc arenas and ASan's shadow all count against it and fail in C, not in
 * Python). Instead every byte Python allocates is accounted:
 *   - the RAW domain (PyMem_RawMalloc) is replaced by malloc + accounting
 *     (sizes from malloc_usable_size, so no header is added);
 *   - the MEM and OBJ domains keep pymalloc, whose small objects live in
 *     arenas we account through PyObject_SetArenaAllocator, and whose large
 *     blocks fall through to the RAW domain.
 * So all three domains are counted. When an allocation would go over the
 * limit it returns NULL and Python raises MemoryError: the app sees an
 * exception, the process is never killed.
 *
 * Memory mapped without Python's allocator is counted too: this module
 * defines mmap, mmap64, mremap and munmap for the whole process, and while
 * a limit is set a writable anonymous mapping (mmap(-1, n) from Python's
 * mmap module, a C extension, ctypes) counts n bytes — committed memory,
 * touched or not, never PROT_NONE address space — and is refused with
 * ENOMEM beyond the limit, as an enclave of that size refuses it. No
 * RLIMIT_AS: it would count reserved address space (thread stacks, glibc
 * arenas, ASan's shadow) and fail in C, not in Python. Threads created after
 * mse_memcap_install() get an explicit 8 MiB stack.
 *
 * The limit covers the whole budget: mse_memcap_commit() measures what the
 * interpreter, the libraries and the app's imports already use (resident
 * memory) and leaves Python the rest — MSE's "hardware_memory -
 * libraries_size".
 *
 * Process-wide state, no allocation; thread-safe (atomics).
 */
#ifndef MSE_MEMCAP_H
#define MSE_MEMCAP_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct mse_memcap_report {
	uint64_t total;       /* the --memory budget, bytes */
	uint64_t resident;    /* RSS when committed (interpreter, libraries, app imports) */
	uint64_t python_used; /* bytes Python had allocated then */
	uint64_t left;        /* total - resident: what the app may still allocate */
};

/*
 * Installs the accounting allocators. Call once, before Python is
 * initialised (before Py_PreInitialize); it cannot be undone. No limit is
 * applied until mse_memcap_commit().
 */
void mse_memcap_install(void);
/* 1 once mse_memcap_install() ran. */
int mse_memcap_installed(void);
/*
 * Applies a budget of total_bytes (0 = no limit) given what the process
 * uses now. Fails if the interpreter and libraries already use more than
 * the budget. Fills *rep (may be NULL).
 */
int mse_memcap_commit(uint64_t total_bytes, struct mse_memcap_report *rep, struct mse_err *err);
/* Sets the limit on Python's accounted bytes directly (0 = none); tests use it. */
void mse_memcap_set_limit(uint64_t bytes);
/* Bytes Python has allocated now (accounted), and the current limit (0 = none). */
uint64_t mse_memcap_used(void);
uint64_t mse_memcap_limit(void);
/*
 * Counts n bytes of C buffers held for a client (the app server's HTTP/2
 * stream buffers) with Python's: 0, or -1 (nothing counted) when that
 * would go over the limit. In an enclave they are the same memory.
 * mse_memcap_uncharge gives back exactly what a charge took.
 */
int mse_memcap_charge(uint64_t n);
void mse_memcap_uncharge(uint64_t n);
/* Resident set size of this process, bytes (0 if /proc is unreadable). */
uint64_t mse_memcap_rss(void);

#endif
