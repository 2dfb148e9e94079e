#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Helpers for checks that run in a minimal Debian chroot (sourced by
# scripts/deb-check.sh and scripts/fresh-check.sh; needs root).
#   chroot_base        -> path of the cached base tarball (made if missing or
#                         older than 7 days): mmdebstrap --variant=minbase of
#                         this machine's Debian release from its apt sources,
#                         cached outside the tree in ${MSE_CACHE:-~/.cache/mse-c}
#   chroot_new DIR     -> extracts the base into DIR, with what a container
#                         runtime provides (resolv.conf, localhost in /etc/hosts)
#   chroot_run DIR CMD -> runs CMD in DIR with /proc and /dev, in a private mount
#                         namespace that takes the mounts away with it, and a clean
#                         environment (nothing of the calling make leaks in)

chroot_base() {
	local suite cache base f
	suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
	cache=${MSE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mse-c}
	base=$cache/debian-$suite-minbase.tar
	mkdir -p "$cache"
	if [ ! -s "$base" ] || [ -n "$(find "$base" -mtime +7)" ]; then
		echo "making the base $base (mmdebstrap, about a minute)" >&2
		local sources=()
		for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list; do
			[ -s "$f" ] && grep -qv '^\s*#' "$f" && sources+=("$f")
		done
		mmdebstrap --quiet --variant=minbase --mode=root --include=ca-certificates \
			"$suite" "$base.tmp" "${sources[@]}" </dev/null >&2 || return 1
		mv "$base.tmp" "$base"
	fi
	echo "$base"
}

chroot_new() {
	local base
	base=$(chroot_base) || return 1
	tar -C "$1" -xf "$base" || return 1
	cp /etc/resolv.conf "$1/etc/resolv.conf" 2>/dev/null || true
	printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$1/etc/hosts"
}

chroot_run() {
	local root=$1
	shift
	unshare --mount --fork bash -c '
		set -e
		mount -t proc proc "$1/proc"
		mount --rbind /dev "$1/dev"
		mount -t tmpfs tmpfs "$1/dev/shm"
		root=$1; shift
		exec chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$@"
	' chroot-run "$root" "$@"
}
