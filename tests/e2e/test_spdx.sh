#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Every source file in git carries the SPDX identifier of Apache-2.0 (the
# licence is LICENSE) on its first line, or on the line after a #! line or a
# man page's title line (.scd): C, headers, .def, Python, shell, Makefile.
set -u
cd "$(dirname "$0")/../.."
[ -f LICENSE ] && grep -q "Apache License" LICENSE && grep -q "Version 2.0, January 2004" LICENSE ||
	{ echo "FAIL: LICENSE is not the Apache License 2.0"; exit 1; }
command -v git >/dev/null && git rev-parse --git-dir >/dev/null 2>&1 || { echo "no git checkout"; exit 77; }
tag="SPDX-License-Identifier: Apache-2.0"
bad=0 n=0
while IFS= read -r f; do
	case $f in
	*/corpus/*) continue ;;
	*.c | *.h | *.def | *.py | *.sh | *.bash | Makefile | */Makefile | *.scd) ;;
	*) head -c 2 "$f" 2>/dev/null | grep -q '^#!' || continue ;;
	esac
	[ -f "$f" ] || continue
	n=$((n + 1))
	line=1
	case $f in *.scd) line=2 ;; esac
	head -n 1 "$f" | grep -q '^#!' && line=2
	if ! sed -n "${line}p" "$f" | grep -qxE "(#|/\*|;) $tag( \*/)?"; then
		echo "missing SPDX line $line: $f"
		bad=$((bad + 1))
	fi
done < <(git ls-files)
[ "$n" -gt 100 ] || { echo "FAIL: only $n source files found"; exit 1; }
[ "$bad" -eq 0 ] || { echo "FAIL: $bad of $n source files lack '$tag'"; exit 1; }
echo "ok: $n source files carry '$tag'"
