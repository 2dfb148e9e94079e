/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_sandbox — the enclave's rule "one process, threads only", enforced
 * outside SGX (in SGX, Gramine enforces it and mse writes
 * sys.disallow_subprocesses into the manifest).
 *
 * Two layers:
 *  1. A seccomp filter (libseccomp) on the whole process: fork, vfork,
 *     execve, execveat and clone without CLONE_THREAD fail with EPERM, so
 *     even a C extension gets an error, never a child. clone3 fails with
 *     ENOSYS: its flags live in a struct the filter cannot read, and on
 *     ENOSYS glibc falls back to clone, which the filter can inspect
 *     (ARCHITECTURE.md). Installed with TSYNC, so threads that already exist
 *     are covered too; install it before the first thread anyway.
 *  2. A Python audit hook (PEP 578) refusing os.fork, os.exec*, os.spawn*,
 *     os.posix_spawn*, os.system, subprocess.Popen, pty.spawn: the app gets
 *     PermissionError(EPERM, "subprocesses are not allowed in an enclave")
 *     and the log says so, naming the event.
 *
 * LeakSanitizer cannot run under the filter (it clones a tracer at exit).
 * In sanitizer builds mse_sandbox_install() therefore runs the leak check
 * just before loading the filter, which makes LSan skip its exit-time
 * check; any main() may then return normally. Leaks made after that point
 * are found by unsandboxed runs (tests run sandboxed processes with
 * detect_leaks=0 as well). mse_sandbox_exit() is a belt-and-braces exit.
 */
#ifndef MSE_SANDBOX_H
#define MSE_SANDBOX_H

#include "common/err.h"

#define MSE_SANDBOX_MESSAGE "subprocesses are not allowed in an enclave"

/* Installs the seccomp filter on every thread of the process. Irreversible. */
int mse_sandbox_install(struct mse_err *err);
/* 1 once the filter is installed in this process. */
int mse_sandbox_active(void);
/*
 * Adds the Python audit hook. Call before Py_Initialize (hooks added then
 * cannot be removed by Python code, and cover the interpreter's start).
 */
int mse_sandbox_python_hook(struct mse_err *err);
/*
 * Ends the process with status. Under a sanitizer with the filter active it
 * flushes stdio and _exit()s, skipping LeakSanitizer's exit-time check,
 * which would fail under the filter; otherwise it calls exit().
 */
_Noreturn void mse_sandbox_exit(int status);

#endif
