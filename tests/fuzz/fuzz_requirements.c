/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for src/config/requirements: the requirements.txt parser
 * (PEP 508 names, extras, version specifiers and markers; the subset an
 * enclave accepts).
 *
 * Besides memory errors, it checks what must hold for any input:
 *   - on success: every name is non-empty, starts with a letter or digit and
 *     holds only [A-Za-z0-9._-]; every spec holds only the specifier
 *     alphabet with no surrounding blanks; lines are strictly increasing and
 *     within the text; there are no more requirements than lines;
 *   - on failure: the error names the file and a line within the text, and
 *     nothing is returned.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/requirements.h"

static int is_name_char(char c)
{
	return isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mse_requirement *reqs = (struct mse_requirement *)(uintptr_t)1;
	struct mse_err err = {0};
	size_t n = 99, lines = 1;
	int rc;

	if (size > 1 << 16)
		return 0;
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	rc = mse_requirements_parse((const char *)data, size, "requirements.txt", &reqs, &n, &err);
	if (rc != 0) {
		if (rc != -1 || reqs || n != 0 || err.line < 1 || (size_t)err.line > lines ||
		    strcmp(err.file, "requirements.txt") != 0 || (!err.msg[0] && !err.expected[0]))
			abort();
		return 0;
	}
	if (n > lines || (n && !reqs))
		abort();
	for (size_t i = 0; i < n; i++) {
		const struct mse_requirement *r = &reqs[i];
		size_t sl = strlen(r->spec);

		if (!isalnum((unsigned char)r->name[0]) || r->line < 1 || (size_t)r->line > lines ||
		    (i && r->line <= reqs[i - 1].line))
			abort();
		for (const char *p = r->name; *p; p++)
			if (!is_name_char(*p))
				abort();
		if (sl && (isspace((unsigned char)r->spec[0]) || isspace((unsigned char)r->spec[sl - 1])))
			abort();
		for (const char *p = r->spec; *p; p++)
			if (!isalnum((unsigned char)*p) && !strchr("<>=!~.*, +-_", *p))
				abort();
	}
	free(reqs);
	return 0;
}
