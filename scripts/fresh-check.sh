#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# What the README promises a newcomer, on a real fresh machine: in a minimal
# Debian chroot with only `make` added, `make install` and then `make demo`
# work the first time (scripts/deps.sh installs every package they need).
#   scripts/fresh-check.sh          (run by `make fresh-check`; needs root)
# The tree checked is the tracked files as they are in the work tree.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "fresh-check: needs root (chroot)" >&2; exit 2; }
. scripts/chroot-lib.sh

root=$(mktemp -d /var/tmp/mse-fresh-check.XXXXXX)
trap 'rm -rf --one-file-system "$root"' EXIT
chroot_new "$root"
mkdir -p "$root/src/mse-c"
git ls-files -z | tar --null -T - -cf - | tar -C "$root/src/mse-c" -xf -

cat >"$root/tmp/check.sh" <<'SH'
#!/bin/bash
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive HOME=/root LC_ALL=C.UTF-8
apt-get update -qq
apt-get install -y -qq make >/dev/null
cd /src/mse-c
echo "== make install (first make on this machine)"
make install >/tmp/install.log 2>&1 || { tail -40 /tmp/install.log; exit 1; }
grep '^deps.sh: installing' /tmp/install.log || { echo "deps.sh installed nothing?"; exit 1; }
/usr/local/bin/mse --version
[ -x /usr/local/bin/mse-bootstrap ] && [ -f /usr/local/share/man/man1/mse-deploy.1 ]
echo "== make demo"
make demo
echo "fresh-check: make install and make demo work the first time"
SH
chmod +x "$root/tmp/check.sh"
chroot_run "$root" /tmp/check.sh
