#!/bin/sh
# Installs what `make bench` needs beyond the gateway's own build
# dependencies (.ci/deps), on Debian, only when missing.
#
# nginx's and haproxy's packages would normally start their system services
# on install (port 80 and friends). The bench starts its own instances with
# its own configs, so a temporary policy-rc.d forbids any service start for
# the duration of the install, unless the machine already has one.
set -e
# libnginx-mod-http-lua and lua-cjson are the peer's (bench/peer/); python3
# runs its parity check.
pkgs="nginx haproxy wrk valgrind curl procps iproute2 util-linux libnginx-mod-http-lua lua-cjson python3"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "bench: missing packages:$missing; install them as root" >&2
	exit 1
fi
echo "bench: installing:$missing"
guard=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 0755 /usr/sbin/policy-rc.d
	guard=/usr/sbin/policy-rc.d
fi
trap '[ -n "$guard" ] && rm -f "$guard"' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
