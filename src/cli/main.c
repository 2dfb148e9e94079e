/* mse — the command line of mse-c. See `mse --help`. */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "cli/cli.h"
#include "common/version.h"
#include "common/wipe.h"

struct command {
	const char *name;
	int (*main)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
#define MSE_CMD(n, s) {#n, cmd_##n, s},
#include "cli/commands.def"
#undef MSE_CMD
};

static void usage(FILE *f)
{
	fputs("Usage: mse COMMAND [OPTIONS]\n"
	      "       mse help COMMAND | mse COMMAND --help\n"
	      "       mse --version\n\n"
	      "Run an unmodified Python WSGI app in an Intel SGX enclave (or its simulation),\n"
	      "prove what runs there, and provision its code key and secrets only after the proof.\n\n"
	      "Commands:\n",
	      f);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fputs("\nExit status: 0 success, 1 failure, 2 usage error.\n", f);
}

static const struct command *find(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	const struct command *cmd;

	if (sodium_init() < 0) {
		fputs("mse: libsodium failed to initialise\n", stderr);
		return MSE_EXIT_FAIL;
	}
	mse_wipe_install_jansson();
	if (argc < 2) {
		usage(stderr);
		return MSE_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return MSE_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("mse %s\n", MSE_VERSION);
		return MSE_EXIT_OK;
	}
	if (strcmp(argv[1], "help") == 0) {
		char help[] = "--help";
		char *hargv[3];

		if (argc < 3) {
			usage(stdout);
			return MSE_EXIT_OK;
		}
		cmd = find(argv[2]);
		if (!cmd) {
			fprintf(stderr, "mse: unknown command '%s'\nTry 'mse --help'.\n", argv[2]);
			return MSE_EXIT_USAGE;
		}
		hargv[0] = argv[2];
		hargv[1] = help;
		hargv[2] = NULL;
		return cmd->main(2, hargv);
	}
	cmd = find(argv[1]);
	if (!cmd) {
		fprintf(stderr, "mse: unknown command '%s'\nTry 'mse --help'.\n", argv[1]);
		return MSE_EXIT_USAGE;
	}
	return cmd->main(argc - 1, argv + 1);
}
