/* SPDX-License-Identifier: Apache-2.0 */
/* mse — the command line of mse-c. See `mse --help`. */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "cli/cli.h"
#include "common/version.h"
#include "common/wipe.h"
#include "operator/proc.h"

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
	      "       mse help COMMAND (its manual page mse-COMMAND(1)) | mse COMMAND --help\n"
	      "       mse --version\n\n"
	      "Run an unmodified Python WSGI app in an Intel SGX enclave (or its simulation),\n"
	      "prove what runs there, and provision its code key and secrets only after the proof.\n\n"
	      "Commands:\n",
	      f);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fputs("\nExit status: 0 success, 1 failure, 2 usage error.\n", f);
}

/*
 * `mse help CMD` shows the manual page mse-CMD(1) with man(1). The page is
 * looked up first in the man directory that belongs to this mse, as
 * /proc/self/exe places it (BINDIR/../share/man installed, BUILD/man in the
 * build tree), so an mse under any PREFIX or DESTDIR shows its own pages; else
 * in man's own path. Returns only if man is missing or has no such page.
 */
static void help_man(const char *cmd)
{
	static const char *const rel[] = {"../share/man", "man"};
	char exe[PATH_MAX], dir[PATH_MAX + 16], page[64], probe[PATH_MAX + 96], *slash;
	char *argv[6];
	int n = 0, st;
	pid_t pid;

	if (snprintf(page, sizeof(page), "mse-%s", cmd) >= (int)sizeof(page))
		return;
	dir[0] = 0;
	if (mse_proc_self_exe(exe, sizeof(exe)) == 0 && (slash = strrchr(exe, '/'))) {
		*slash = 0;
		for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]) && !dir[0]; i++) {
			snprintf(dir, sizeof(dir), "%s/%s", exe, rel[i]);
			snprintf(probe, sizeof(probe), "%s/man1/%s.1", dir, page);
			if (access(probe, R_OK) != 0) {
				snprintf(probe, sizeof(probe), "%s/man1/%s.1.gz", dir, page);
				if (access(probe, R_OK) != 0)
					dir[0] = 0;
			}
		}
	}
	argv[n++] = "man";
	if (dir[0]) {
		argv[n++] = "-M";
		argv[n++] = dir;
	}
	argv[n++] = "-w";
	argv[n++] = page;
	argv[n] = NULL;
	/* man -w: is there a page at all? (quietly; exit 0 only if found) */
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		if (null >= 0) {
			dup2(null, 1);
			dup2(null, 2);
		}
		execvp("man", argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return;
	argv[n - 2] = page; /* drop -w */
	argv[n - 1] = NULL;
	fflush(stdout);
	execvp("man", argv);
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
		help_man(cmd->name);
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
