/* SPDX-License-Identifier: Apache-2.0 */
#include "enclave/sandbox.h"

#include <Python.h>

#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

#if defined(__SANITIZE_ADDRESS__)
#define MSE_UNDER_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MSE_UNDER_LSAN 1
#endif
#endif
#ifdef MSE_UNDER_LSAN
#include <sanitizer/lsan_interface.h>
#endif

static int g_active;

int mse_sandbox_install(struct mse_err *err)
{
	/* Every syscall that can create a process or replace this one. */
	static const char *const forbidden[] = {"fork", "vfork", "execve", "execveat"};
	scmp_filter_ctx ctx;
	int rc = -1, r;

	if (g_active)
		return 0;
	ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return mse_err_set(err, "seccomp_init failed");
	mse_err_step(err, "sandbox");
	/* TSYNC: apply to every thread that exists already (seccomp(2)). */
	r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	if (r != 0) {
		mse_err_set(err, "seccomp: cannot synchronise threads: %s", strerror(-r));
		goto out;
	}
	for (size_t i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++) {
		int nr = seccomp_syscall_resolve_name(forbidden[i]);

		if (nr == __NR_SCMP_ERROR)
			continue; /* not on this architecture (e.g. fork on arm64) */
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
		if (r != 0) {
			mse_err_set(err, "seccomp: rule for %s: %s", forbidden[i], strerror(-r));
			goto out;
		}
	}
	/* clone(2): flags are the first argument on x86-64 and arm64. */
	r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
			     SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0));
	if (r != 0) {
		mse_err_set(err, "seccomp: rule for clone: %s", strerror(-r));
		goto out;
	}
	/* clone3(2): arguments are behind a pointer; ENOSYS makes glibc use clone. */
	r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	if (r != 0 && r != -EDOM) {
		mse_err_set(err, "seccomp: rule for clone3: %s", strerror(-r));
		goto out;
	}
#ifdef MSE_UNDER_LSAN
	/*
	 * LeakSanitizer's exit-time check clones a tracer task, which the
	 * filter refuses (the process would end with LSan's fatal error, not
	 * its own status). Check now instead: once this ran, LSan skips the
	 * exit-time check (sanitizer/lsan_interface.h). Leaks made later are
	 * found by unsandboxed runs.
	 */
	__lsan_do_leak_check();
#endif
	r = seccomp_load(ctx);
	if (r != 0) {
		mse_err_set(err, "seccomp: cannot load the filter: %s", strerror(-r));
		goto out;
	}
	g_active = 1;
	rc = 0;
out:
	seccomp_release(ctx);
	return rc;
}

int mse_sandbox_active(void)
{
	return g_active;
}

/* Audit events (Python 3.11 "Audit events table") that start a process. */
static int is_subprocess_event(const char *ev)
{
	static const char *const events[] = {
		"os.fork",	"os.forkpty", "os.exec",	  "os.posix_spawn",
		"os.spawn",	"os.system",  "subprocess.Popen", "pty.spawn",
		"os.startfile",
	};

	if (ev[0] != 'o' && ev[0] != 's' && ev[0] != 'p')
		return 0; /* fast path: the hook sees every audited event */
	for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
		if (strcmp(ev, events[i]) == 0)
			return 1;
	return 0;
}

static int audit_hook(const char *event, PyObject *args, void *user)
{
	PyObject *v;

	(void)args;
	(void)user;
	if (!is_subprocess_event(event))
		return 0;
	mse_warn("app: %s refused: " MSE_SANDBOX_MESSAGE, event);
	v = Py_BuildValue("(is)", EPERM, MSE_SANDBOX_MESSAGE);
	if (v) {
		PyErr_SetObject(PyExc_PermissionError, v);
		Py_DECREF(v);
	}
	return -1;
}

int mse_sandbox_python_hook(struct mse_err *err)
{
	if (PySys_AddAuditHook(audit_hook, NULL) != 0)
		return mse_err_set(err, "cannot add the Python audit hook");
	return 0;
}


void mse_sandbox_exit(int status)
{
#ifdef MSE_UNDER_LSAN
	if (g_active) {
		fflush(NULL);
		_exit(status);
	}
#endif
	exit(status);
}
