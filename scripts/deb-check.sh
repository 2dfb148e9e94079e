#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Installs mse-c's .deb the way a user would, `apt-get install ./mse-c_...deb`,
# in a chroot made from a minimal Debian base, then scaffolds and deploys an app
# there with the installed mse (simulation), calls it through the pinned
# certificate, and removes the package.
#   scripts/deb-check.sh PACKAGE.deb          (run by `make deb-check`)
# The base is cached outside the tree (scripts/chroot-lib.sh). Needs root and
# apt's mirror.
set -euo pipefail
deb=$(readlink -f "$1")
[ -f "$deb" ] || { echo "deb-check: no package $1" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "deb-check: needs root (chroot)" >&2; exit 2; }
. "$(dirname "$0")/chroot-lib.sh"

root=$(mktemp -d /var/tmp/mse-deb-check.XXXXXX)
trap 'rm -rf --one-file-system "$root"' EXIT
chroot_new "$root"
cp "$deb" "$root/tmp/"

cat >"$root/tmp/check.sh" <<'EOF'
#!/bin/bash
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive HOME=/root LC_ALL=C.UTF-8
step() { printf '\n== %s\n' "$*"; }
step "apt-get install ./$(basename /tmp/*.deb)"
apt-get update -qq
apt-get install -y -qq /tmp/*.deb >/tmp/apt.log 2>&1 || { cat /tmp/apt.log; exit 1; }
dpkg -s mse-c | sed -n 's/^\(Version\|Depends\|Recommends\): /  \1: /p'
for p in python3-flask python3-pytest python3-requests; do
	dpkg -s "$p" >/dev/null 2>&1 || { echo "Recommends $p was not installed"; exit 1; }
done
command -v mse && mse --version
step "mse scaffold app && mse deploy --project app"
cd /root
mse scaffold app >/dev/null
mse deploy --project app
port=$(mse status app --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["port"])')
python3 - "$port" <<'PY'
import ssl, sys, urllib.request
ctx = ssl.create_default_context(cafile="app/.mse/verified/ratls.pem")
body = urllib.request.urlopen(f"https://localhost:{sys.argv[1]}/health", context=ctx, timeout=30).read()
assert body == b"OK", body
print("GET /health through the pinned certificate:", body.decode())
PY
mse help deploy >/tmp/help-deploy.txt   # whole, then the top: head on a pipe would SIGPIPE mse under pipefail
head -n 3 /tmp/help-deploy.txt
mse stop app --remove
step "apt-get remove mse-c"
apt-get remove -y -qq mse-c >/dev/null
if [ -e /usr/bin/mse ] || [ -e /usr/bin/mse-bootstrap ]; then echo "mse is still installed"; exit 1; fi
echo "deb-check: installed, deployed and removed"
EOF
chmod +x "$root/tmp/check.sh"

chroot_run "$root" /tmp/check.sh
