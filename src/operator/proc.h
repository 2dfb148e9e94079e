/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_proc — runs the helper commands of the operator flow (an app's
 * tests_cmd, the local app server) with a few extra environment variables.
 * No shell is involved unless the caller runs /bin/sh -c on purpose (a
 * tests_cmd is a shell command line by MSE's definition).
 */
#ifndef MSE_PROC_H
#define MSE_PROC_H

#include <stddef.h>
#include <sys/types.h>

#include "common/err.h"

/*
 * Starts argv[0] (a path) in cwd (NULL: current) with the current
 * environment plus env_extra ("NAME=value" strings, NULL-terminated, may be
 * NULL). If log_path is set, stdout and stderr go there (appended). Returns
 * the pid, or -1.
 */
pid_t mse_proc_start(const char *cwd, char *const argv[], char *const env_extra[],
		     const char *log_path, struct mse_err *err);
/* Starts and waits; *status receives the exit code (128+signal if killed). */
int mse_proc_run(const char *cwd, char *const argv[], char *const env_extra[], int *status,
		 struct mse_err *err);
/* Waits for pid; the exit code as above, or -1. */
int mse_proc_wait(pid_t pid);
/* The path of the running executable (/proc/self/exe). 0, or -1 if unknown or too long. */
int mse_proc_self_exe(char *out, size_t size);
/* SIGTERM, then SIGKILL after timeout_ms; reaps it. */
void mse_proc_stop(pid_t pid, int timeout_ms);

#endif
