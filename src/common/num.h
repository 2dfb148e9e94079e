/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mse_num — decimal numbers from command lines and start arguments, one
 * definition for every binary: digits only (no sign, space, prefix or
 * suffix), no overflow, inside [min, max].
 */
#ifndef MSE_NUM_H
#define MSE_NUM_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* 0 and *out = the value of s, or -1 (and *out untouched) if s is not a
 * decimal number in [min, max]. */
int mse_num_parse(const char *s, uint64_t min, uint64_t max, uint64_t *out) MSE_MUST_CHECK;

/*
 * HOST:PORT (an address handed to a process by its environment, e.g.
 * MSE_COORDINATOR_LISTEN): the port after the last ':' (0..65535, decimal),
 * the host before it, an IPv6 literal in brackets unbracketed. The host must
 * be non-empty and fit host_size with its NUL. 0, or -1 (outputs undefined).
 */
int mse_num_hostport(const char *s, char *host, size_t host_size, uint16_t *port) MSE_MUST_CHECK;

#endif
