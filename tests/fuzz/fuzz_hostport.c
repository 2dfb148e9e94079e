/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer: HOST:PORT from the environment (mse_num_hostport: what
 * mse-coordinator reads from MSE_COORDINATOR_LISTEN and mse-bootstrap from
 * MSE_REPLICA_LISTEN). What it accepts, written back, parses to the same.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/num.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char in[512], host[256], host2[256], back[300];
	uint16_t port, port2;

	if (size >= sizeof(in))
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	if (mse_num_hostport(in, host, sizeof(host), &port) != 0)
		return 0;
	if (!host[0] || strlen(host) >= sizeof(host))
		abort();
	snprintf(back, sizeof(back), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, (unsigned)port);
	if (mse_num_hostport(back, host2, sizeof(host2), &port2) != 0 || strcmp(host, host2) != 0 ||
	    port != port2)
		abort();
	return 0;
}
