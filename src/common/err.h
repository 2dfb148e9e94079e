/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_err — an error that says where and why.
 *
 * Functions that can fail take a `struct mse_err *` (may be NULL) and return
 * -1 after filling it. The structured parts let a caller print
 *     mse.toml:3:22: python_application: expected "module:variable", got "app"
 * or, for attestation,
 *     [signature] quote: ECDSA signature does not verify
 * A user should be able to fix the input from the message alone.
 *
 * The struct is caller-owned and fixed-size: no allocation, no free.
 */
#ifndef MSE_ERR_H
#define MSE_ERR_H

#include <stdio.h>

struct mse_err {
	char file[256];  /* input file, "" if none */
	int line, col;   /* 1-based; 0 when unknown */
	char step[32];   /* failed step (attestation: parse, signature, chain, crl, tcb, measurement…) */
	char field[128]; /* offending field or key, "" if none */
	char msg[1024];  /* what was wrong (context, the reason) */
	/*
	 * What was expected and what was found, when the error is a mismatch:
	 * kept apart from msg so that --json can report them as members.
	 * mse_err_str renders them as "expected EXPECTED, got ACTUAL" after msg.
	 * "" when not set; any mse_err_set/at/field clears them.
	 */
	char expected[256];
	char actual[256];
};

#define MSE_PRINTF(a, b) __attribute__((format(printf, a, b)))

void mse_err_clear(struct mse_err *e);
/* Sets the message; keeps file/line/step/field already set. Returns -1. */
int mse_err_set(struct mse_err *e, const char *fmt, ...) MSE_PRINTF(2, 3);
/* Sets position and message. Returns -1. */
int mse_err_at(struct mse_err *e, const char *file, int line, int col, const char *fmt, ...)
	MSE_PRINTF(5, 6);
/* Sets field and message. Returns -1. */
int mse_err_field(struct mse_err *e, const char *field, const char *fmt, ...) MSE_PRINTF(3, 4);
/*
 * A mismatch: sets field, expected and actual (msg is cleared), printed as
 * "field: expected EXPECTED, got ACTUAL". Returns -1.
 */
int mse_err_expect(struct mse_err *e, const char *field, const char *expected, const char *actual);
/* Sets expected and actual only (keeps msg, position, field). Returns -1. */
int mse_err_mismatch(struct mse_err *e, const char *expected, const char *actual);
/* The message alone, as printed after the position and field ("…: expected E, got A"). */
const char *mse_err_message(const struct mse_err *e, char *out, size_t size);
/* Records the step that failed (kept by later mse_err_set calls). */
void mse_err_step(struct mse_err *e, const char *step);
/* Sets the file if not set yet (an outer layer knows the path). */
void mse_err_file(struct mse_err *e, const char *file);
/* Prepends "context: " to the message. */
void mse_err_prefix(struct mse_err *e, const char *fmt, ...) MSE_PRINTF(2, 3);
/* Formats the whole error into out, as printed to the user; returns out. */
const char *mse_err_str(const struct mse_err *e, char *out, size_t size);
/* Prints "PROG: <error>\n" to f. */
void mse_err_print(const struct mse_err *e, const char *prog, FILE *f);

/*
 * mse_errlist — every error of a check, in the order found (a config loader
 * reports all problems at once instead of stopping at the first).
 * Append-only. The list owns its array: mse_errlist_free releases it
 * (NULL-safe) and leaves an empty, reusable list. A zeroed struct is an
 * empty list.
 */
struct mse_errlist {
	struct mse_err *items;
	size_t len, cap;
	size_t dropped; /* errors lost to out-of-memory (still counted as failures) */
};

void mse_errlist_init(struct mse_errlist *l);
/* Appends a copy of e. Returns -1 (so callers can `return mse_errlist_add(..)`). */
int mse_errlist_add(struct mse_errlist *l, const struct mse_err *e);
/* Number of errors recorded (dropped ones included). */
size_t mse_errlist_count(const struct mse_errlist *l);
/* Prints one "PROG: <error>" line per error to f. */
void mse_errlist_print(const struct mse_errlist *l, const char *prog, FILE *f);
void mse_errlist_free(struct mse_errlist *l);

#endif
