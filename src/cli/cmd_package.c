/* Placeholder until its issue lands: listed so the table is stable. */
#include <string.h>

#include "cli/cli.h"

int cmd_package(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--help") == 0) {
		puts("Usage: mse package\n\nNot implemented yet.");
		return MSE_EXIT_OK;
	}
	return cli_failf("package", "not implemented yet");
}
