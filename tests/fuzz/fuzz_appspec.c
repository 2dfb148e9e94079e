/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for src/config/appspec: python_application as gunicorn
 * takes it, "module:variable" or "module:factory(literal arguments)".
 *
 * Besides memory errors, it checks what must hold for any input:
 *   - on success: MODULE and VARIABLE are non-empty and inside the text,
 *     the ':' separates them, and a call spans to the end and ends in ')';
 *   - on failure: the error names the field, with expected and actual, and
 *     a column within the text (+1).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/appspec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mse_appspec as;
	struct mse_err err = {0};
	char *s;
	size_t n;

	if (size > 8192)
		return 0;
	s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = 0;
	n = strlen(s);
	if (mse_appspec_parse(s, &as, &err) == 0) {
		if (!as.module_len || s[as.module_len] != ':' || as.attr_off != as.module_len + 1 ||
		    !as.attr_len || as.attr_off + as.attr_len != as.call_off || as.call_off > n ||
		    (as.call && (s[as.call_off] != '(' || s[n - 1] != ')')) ||
		    (!as.call && as.call_off != n))
			abort();
	} else if (strcmp(err.field, "python_application") != 0 || !err.expected[0] ||
		   !err.actual[0] || err.col < 1 || (size_t)err.col > n + 1) {
		abort();
	}
	free(s);
	return 0;
}
