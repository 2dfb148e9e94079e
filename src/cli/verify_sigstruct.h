/* SPDX-License-Identifier: Apache-2.0 */
/* mse verify --sigstruct FILE: src/cli/verify_sigstruct.c. */
#ifndef MSE_CLI_VERIFY_SIGSTRUCT_H
#define MSE_CLI_VERIFY_SIGSTRUCT_H

#include <stdint.h>

struct verify_sigstruct_opts {
	const char *path;
	const uint8_t *mrenclave, *mrsigner; /* expected, or NULL */
	const char *signer_key;              /* PEM, public or private, or NULL */
	int check_isvprodid, check_min_isvsvn;
	uint16_t isvprodid, min_isvsvn;
	int json;
};

/* Prints and checks a SIGSTRUCT; returns the exit status. */
int cli_verify_sigstruct(const struct verify_sigstruct_opts *o);

#endif
