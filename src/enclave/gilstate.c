/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Whether some thread holds CPython's GIL right now (enclave/gilstate.h).
 * CPython 3.11 has no public API for it: this reads the interpreter
 * runtime's own atomic flag (Include/internal/pycore_gil.h), read-only, the
 * way ceval.c itself reads it without a lock. Kept alone in this file so
 * that Py_BUILD_CORE changes nothing else.
 */
#define Py_BUILD_CORE 1
#include <Python.h>
#include <internal/pycore_runtime.h> /* a CPython system header */

#include "enclave/gilstate.h"

#if PY_VERSION_HEX < 0x030B0000 || PY_VERSION_HEX >= 0x030C0000
#error "gilstate.c reads CPython 3.11's runtime state: check pycore_gil.h for this version"
#endif

int mse_gil_held(void)
{
	return _Py_atomic_load_relaxed(&_PyRuntime.ceval.gil.locked) > 0;
}

int mse_gil_busy(unsigned long *last_switch)
{
	/* switch_number is written under the GIL's mutex; a torn or stale
	 * read only makes this answer "busy" once more. */
	unsigned long now = *(volatile unsigned long *)&_PyRuntime.ceval.gil.switch_number;
	int busy = mse_gil_held() || now != *last_switch;

	*last_switch = now;
	return busy;
}
