#!/usr/bin/env bash
# Installs what orzo's tests need on a fresh Debian machine (as root), then
# runs every check: deno fmt/lint/check, unit tests, end-to-end tests.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"

need=()
for tool in ip:iproute2 iperf3:iperf3 socat:socat pasta:passt slirp4netns:slirp4netns \
	tshark:tshark ping:iputils-ping nsenter:util-linux setpriv:util-linux dig:dnsutils \
	pgrep:procps curl:curl busybox:busybox-static dhclient:isc-dhcp-client prlimit:util-linux \
	tc:iproute2 ss:iproute2; do
	command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool#*:}")
done
# The passt-mode VM tests (tests/helpers/vm.ts): qemu under TCG, Debian's cloud
# kernel (its postinst runs fine in a container: update-initramfs only writes
# /boot, which the tests do not use) and the static busybox of the initramfs
# (busybox-static replaces Debian's busybox, and serves the udhcpc tests too).
# bench/vm.ts also builds bench/vm_crr.c with gcc -static (libc6-dev).
for pkg in qemu-system-x86 linux-image-cloud-amd64 busybox-static xz-utils gcc libc6-dev; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ]; then
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	else
		echo "test.sh: missing packages: ${need[*]} (run as root to install them)" >&2
	fi
fi

# The unprivileged tests open the tap as an ordinary user: Debian's default mode.
if [ "$(id -u)" = 0 ]; then
	[ -c /dev/net/tun ] || { mkdir -p /dev/net && mknod /dev/net/tun c 10 200; }
	chmod 0666 /dev/net/tun
fi

[ -x tools/deno/node_modules/.bin/deno ] || (cd tools/deno && npm ci --no-audit --no-fund --loglevel=error)
deno=tools/deno/node_modules/.bin/deno
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
$deno task ok || status=1
$deno task test:unit 2>&1 | tee -a "$log" || status=1
$deno task test:e2e 2>&1 | tee -a "$log" || status=1

# One closing line over both runs: "N passed, N failed".
passed=0 failed=0
while read -r p f; do
	passed=$((passed + p)) failed=$((failed + f))
done < <(sed -n 's/\x1b\[[0-9;]*m//g; s/^\(ok\|FAILED\) | \([0-9]*\) passed.* | \([0-9]*\) failed.*/\2 \3/p' "$log")
echo "tests: $passed passed, $failed failed"
[ "$failed" = 0 ] || status=1
exit $status
