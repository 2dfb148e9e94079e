/* SPDX-License-Identifier: Apache-2.0 */
#include "common/num.h"

#include <string.h>

int mse_num_parse(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!s || !*s)
		return -1;
	for (; *s; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int mse_num_hostport(const char *s, char *host, size_t host_size, uint16_t *port)
{
	const char *colon = s ? strrchr(s, ':') : NULL;
	size_t hl = colon ? (size_t)(colon - s) : 0;
	uint64_t v;

	if (!colon || hl == 0 || hl >= host_size || mse_num_parse(colon + 1, 0, 65535, &v) != 0)
		return -1;
	if (s[0] == '[') {
		/* [v6]:port */
		if (hl < 3 || s[hl - 1] != ']')
			return -1;
		memcpy(host, s + 1, hl - 2);
		host[hl - 2] = '\0';
		if (strpbrk(host, "[]"))
			return -1;
	} else {
		memcpy(host, s, hl);
		host[hl] = '\0';
		if (strchr(host, ':') || strchr(host, ']'))
			return -1; /* an IPv6 literal needs its brackets */
	}
	*port = (uint16_t)v;
	return 0;
}
