/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_gil_held — 1 if a thread holds CPython's GIL at this instant, 0 if it
 * is free (every Python thread is blocked outside it: sleeping, in I/O) or
 * Python is not initialised. Callable from any thread without the GIL; a
 * racy snapshot, for heuristics only (the app server grows its workers
 * only while the GIL is free: more threads cannot help code that waits for
 * it).
 */
#ifndef MSE_GILSTATE_H
#define MSE_GILSTATE_H

int mse_gil_held(void);
/*
 * 1 if the GIL is held now or changed hands since the previous call with
 * the same *last_switch (Python ran meanwhile: its threads are not all
 * blocked outside the GIL). A GIL free at two calls in a row with no switch
 * between them means every Python thread is blocked elsewhere.
 */
int mse_gil_busy(unsigned long *last_switch);

#endif
