/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The floor for `make bench` (bench/bench_package.sh): the least work any
 * packager must do — read each file, one libsodium secretbox pass over it,
 * one write of the result — with no tar, no hashing, no per-file output
 * files. Ciphertexts are appended to one output file.
 *
 *   secretbox_floor OUTPUT FILE...     (or a directory: its regular files)
 *
 * Prints the number of files and bytes processed.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

static int out_fd;
static uint8_t key[crypto_secretbox_KEYBYTES];
static unsigned long long files, bytes;

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t k = write(fd, p, n);

		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static int one(const char *path)
{
	struct stat st;
	uint8_t *buf, nonce[crypto_secretbox_NONCEBYTES];
	size_t size, got = 0;
	int fd = open(path, O_RDONLY), rc = -1;

	if (fd < 0 || fstat(fd, &st) != 0)
		return -1;
	size = (size_t)st.st_size;
	buf = malloc(crypto_secretbox_MACBYTES + size + 1);
	while (buf && got < size) {
		ssize_t k = read(fd, buf + crypto_secretbox_MACBYTES + got, size - got);

		if (k <= 0)
			break;
		got += (size_t)k;
	}
	if (buf && got == size) {
		randombytes_buf(nonce, sizeof(nonce));
		crypto_secretbox_easy(buf, buf + crypto_secretbox_MACBYTES, size, nonce, key);
		if (write_all(out_fd, nonce, sizeof(nonce)) == 0 &&
		    write_all(out_fd, buf, size + crypto_secretbox_MACBYTES) == 0) {
			files++;
			bytes += size;
			rc = 0;
		}
	}
	free(buf);
	close(fd);
	return rc;
}

static int walk(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *de;
	char sub[4096];
	int rc = 0;

	if (lstat(path, &st) != 0)
		return -1;
	if (!S_ISDIR(st.st_mode))
		return S_ISREG(st.st_mode) ? one(path) : 0;
	d = opendir(path);
	if (!d)
		return -1;
	while (rc == 0 && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
			rc = walk(sub);
		}
	closedir(d);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 3 || sodium_init() < 0) {
		fprintf(stderr, "usage: secretbox_floor OUTPUT FILE|DIR...\n");
		return 2;
	}
	randombytes_buf(key, sizeof(key));
	out_fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (out_fd < 0)
		return 1;
	for (int i = 2; i < argc; i++)
		if (walk(argv[i]) != 0) {
			fprintf(stderr, "secretbox_floor: failed on %s\n", argv[i]);
			return 1;
		}
	if (fsync(out_fd) != 0 || close(out_fd) != 0)
		return 1;
	printf("%llu files, %llu bytes\n", files, bytes);
	return 0;
}
