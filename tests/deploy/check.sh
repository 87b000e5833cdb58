#!/bin/sh
# `make deploy-check` (part of `make test`): what a new user deploys, as it is
# shipped, without a cluster or a systemd.
#
#   tests/deploy/check.sh [BUILD]     (default build; needs BUILD/gateway)
#
# 1. Kubernetes: `kubectl kustomize deploy/kubernetes` renders (no cluster
#    needed), and tests/deploy/check_k8s.py checks the rendered YAML: the
#    pod's user can read every file it mounts, probes, resources, Redis
#    persistence and password, the NetworkPolicy, and the gateway's config,
#    policy and TLS files laid out as the kubelet would and `--check`ed as
#    the pod's user.
# 2. `make install DESTDIR=<tmp> PREFIX=/opt/gateway`: the layout, a stripped
#    binary, the systemd unit where systemd looks, the installed config
#    passing --check, an edited config kept by a second install; STRIP=
#    keeps the symbols; PREFIX=/usr puts the unit under /usr/lib.
# 3. The shipped configs pass --check, and every repository path the README
#    names exists.
#
# KUBECTL names another kubectl (default: kubectl). Prints one line per
# check and "N passed, N failed"; exits 1 if any failed.
set -u
cd "$(dirname "$0")/../.."
BUILD=${1:-${BUILD:-build}}
GW=$BUILD/gateway
KUBECTL=${KUBECTL:-kubectl}
MAKE=${MAKE:-make}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/deploy-check.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
passed=0
failed=0

ok() {
	passed=$((passed + 1))
	echo "  ok    $*"
}
fail() {
	failed=$((failed + 1))
	echo "  FAIL  $*"
}
# check "what" command...: ok if the command succeeds.
check() {
	what=$1
	shift
	if "$@" >"$tmp/out" 2>&1; then ok "$what"; else
		fail "$what"
		sed 's/^/        /' "$tmp/out"
	fi
}

if [ ! -x "$GW" ]; then
	echo "deploy-check: $GW is not built (make BUILD=$BUILD all)" >&2
	exit 1
fi
./certs/make-dev-certs.sh "$tmp/certs" >/dev/null
# The pod laid out below is read by the pod's user, not root.
chmod 755 "$tmp"

echo "== Kubernetes: $KUBECTL kustomize deploy/kubernetes"
if ! command -v "$KUBECTL" >/dev/null 2>&1; then
	fail "kubectl is installed (.ci/deps installs Debian's kubernetes-client)"
elif ! "$KUBECTL" kustomize deploy/kubernetes >"$tmp/rendered.yaml" 2>"$tmp/out"; then
	fail "the manifests render"
	sed 's/^/        /' "$tmp/out"
else
	ok "the manifests render (kubectl $("$KUBECTL" version --client 2>/dev/null |
		sed -n 's/.*\(v[0-9][0-9.]*\).*/\1/p' | head -1))"
	mkdir -p "$tmp/k8s"
	python3 tests/deploy/check_k8s.py "$tmp/rendered.yaml" "$tmp/k8s" --gateway "$GW" \
		--certs "$tmp/certs" --config-source gateway/app/config.c >"$tmp/k8s.out" 2>&1
	rc=$?
	cat "$tmp/k8s.out"
	passed=$((passed + $(grep -c '^  ok ' "$tmp/k8s.out")))
	nfail=$(grep -c '^  FAIL' "$tmp/k8s.out")
	failed=$((failed + nfail))
	[ "$rc" != 0 ] && [ "$nfail" = 0 ] && fail "check_k8s.py ran to its end (exit $rc)"
fi

echo "== make install DESTDIR=... PREFIX=/opt/gateway"
d=$tmp/root
p=$d/opt/gateway
unit=$d/etc/systemd/system/gateway.service
if $MAKE -s BUILD="$BUILD" install DESTDIR="$d" PREFIX=/opt/gateway >"$tmp/out" 2>&1; then
	ok "make install"
	check "the binary is there and runs" "$p/bin/gateway" --version
	# Stripped: no symbol table, no debug sections.
	readelf -S "$p/bin/gateway" >"$tmp/sections"
	check "the binary is stripped (no .symtab, no .debug_*)" \
		sh -c "! grep -E '\\.symtab|\\.debug_' '$tmp/sections'"
	check "the unit is in /etc/systemd/system, where systemd looks" test -f "$unit"
	check "nothing under PREFIX/lib/systemd, where systemd does not look" test ! -e "$p/lib/systemd"
	check "the unit names the installed binary and config" \
		grep -q '^ExecStart=/opt/gateway/bin/gateway --config /opt/gateway/etc/gateway/gateway.json$' "$unit"
	check "the unit has no @PREFIX@ left" sh -c "! grep -q @PREFIX@ '$unit'"
	for f in gateway.json policies/default.json policies/examples/no-network.json \
		policies/examples/data-team.json policies/examples/observe-only.json; do
		check "etc/gateway/$f is installed" test -f "$p/etc/gateway/$f"
	done
	check "share/doc/gateway/README.md is installed" test -f "$p/share/doc/gateway/README.md"
	check "the installed config passes --check" \
		"$p/bin/gateway" --config "$p/etc/gateway/gateway.json" --check
	# An administrator's edit survives a second install.
	sed 's/"level": "info"/"level": "warn"/' "$p/etc/gateway/gateway.json" >"$tmp/edited"
	cp "$tmp/edited" "$p/etc/gateway/gateway.json"
	echo '{"memory_limit": {"max": "1g"}}' >"$p/etc/gateway/policies/default.json"
	if $MAKE -s BUILD="$BUILD" install DESTDIR="$d" PREFIX=/opt/gateway >"$tmp/out" 2>&1; then
		check "a second install keeps the edited config" cmp "$tmp/edited" "$p/etc/gateway/gateway.json"
		check "a second install keeps the edited policy" \
			grep -qx '{"memory_limit": {"max": "1g"}}' "$p/etc/gateway/policies/default.json"
	else
		fail "a second make install"
		sed 's/^/        /' "$tmp/out"
	fi
else
	fail "make install"
	sed 's/^/        /' "$tmp/out"
fi
d2=$tmp/root-unstripped
if $MAKE -s BUILD="$BUILD" install DESTDIR="$d2" PREFIX=/opt/gateway STRIP= >"$tmp/out" 2>&1; then
	readelf -S "$d2/opt/gateway/bin/gateway" >"$tmp/sections"
	check "make install STRIP= keeps the symbols" grep -q '\.symtab' "$tmp/sections"
else
	fail "make install STRIP="
	sed 's/^/        /' "$tmp/out"
fi
d3=$tmp/root-usr
if $MAKE -s BUILD="$BUILD" install DESTDIR="$d3" PREFIX=/usr >"$tmp/out" 2>&1; then
	check "PREFIX=/usr puts the unit in /usr/lib/systemd/system" \
		test -f "$d3/usr/lib/systemd/system/gateway.service" -a ! -e "$d3/etc/systemd"
else
	fail "make install PREFIX=/usr"
	sed 's/^/        /' "$tmp/out"
fi

# systemd's own check of the unit, installed under a PREFIX that exists here
# (its commands must be there), through SYSTEMD_UNIT_DIR.
if command -v systemd-analyze >/dev/null 2>&1; then
	d4=$tmp/abs
	if $MAKE -s BUILD="$BUILD" install PREFIX="$d4" SYSTEMD_UNIT_DIR="$d4/units" >"$tmp/out" 2>&1; then
		check "systemd-analyze verify accepts the unit" systemd-analyze verify "$d4/units/gateway.service"
	else
		fail "make install SYSTEMD_UNIT_DIR=..."
		sed 's/^/        /' "$tmp/out"
	fi
fi

echo "== the shipped configs and the README"
check "gateway.example.json passes --check" "$GW" --config gateway.example.json --check
# deploy/gateway.json names policies/default.json beside it, as installed.
mkdir -p "$tmp/etc/policies"
cp deploy/gateway.json "$tmp/etc/" && cp policies/default.json "$tmp/etc/policies/"
check "deploy/gateway.json passes --check beside the shipped policy" \
	"$GW" --config "$tmp/etc/gateway.json" --check
# Every repository path the README names in `code` exists; none is outside
# the clone (../shared/...). Placeholders (<module>, *) and build output
# are left out.
grep -o '`[^`]*`' README.md | tr -d '`' | sed 's/ .*//' |
	grep -E '^(\.\./|(deploy|tests|policies|certs|gateway|bench|\.ci)/)' |
	grep -v '[<*…]' | sort -u >"$tmp/paths"
missing=""
while read -r path; do
	[ -e "$path" ] || missing="$missing $path"
done <"$tmp/paths"
if [ -z "$missing" ]; then
	ok "the $(wc -l <"$tmp/paths") repository paths the README names exist"
else
	fail "the README names paths that are not in a clone:$missing"
fi
# The spec's copy (tests/conformance/*openapi.yaml; that it exists is
# checked above with the other paths).
check "the README names the spec where a clone has it" \
	grep -Eq 'tests/conformance/[A-Za-z.]*openapi\.yaml' README.md

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
