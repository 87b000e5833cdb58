#!/usr/bin/env bash
# Starts a Prism mock of the upstream's spec and build/gateway in front of
# it, and a second gateway in front of the stand-in upstream (the stub,
# scripted by conformance.mjs) for the Responses calls Prism cannot answer;
# runs conformance.mjs (the openai SDK against the gateways), and stops
# them all whatever happens. Run by `make conformance` from the repository
# root:
#
#   tests/conformance/run.sh GATEWAY_BINARY SPEC_FILE STUB_BINARY
#
# KEEP_TMP=1 keeps the work folder (configs, audit logs, every server's log).
set -euo pipefail

if [ $# -ne 3 ]; then
	echo "usage: $0 GATEWAY_BINARY SPEC_FILE STUB_BINARY" >&2
	exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
gateway=$(realpath -m "$1")
spec=$(realpath -m "$2")
stub=$(realpath -m "$3")
prism="$here/node_modules/.bin/prism"
[ -x "$gateway" ] || { echo "no gateway binary at $1" >&2; exit 2; }
[ -r "$spec" ] || { echo "no spec at $2 (set SPEC=...)" >&2; exit 2; }
[ -x "$stub" ] || { echo "no stub binary at $3" >&2; exit 2; }
[ -x "$prism" ] || { echo "no $prism: run npm ci in $here" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/gw-conformance.XXXXXX")
prism_pid=
gateway_pid=
stub_pid=
stream_gateway_pid=

# Stops one server we started: SIGTERM (the gateway drains in-flight
# requests on it), then SIGKILL if it is still there after 5 s.
stop() {
	local pid=$1 i
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# Runs on every exit, including a failed check, a server that never came up
# or Ctrl-C, so neither server outlives the target.
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop "$gateway_pid"
	stop "$stream_gateway_pid"
	stop "$prism_pid"
	stop "$stub_pid"
	if [ "$rc" -ne 0 ]; then
		# What a failure needs to be understood, before the folder goes.
		for f in gateway.log audit.log stream/gateway.log stream/audit.log stub.log prism.log; do
			[ -s "$work/$f" ] || continue
			echo "---- last lines of $f"
			tail -n 40 "$work/$f"
		done
	fi
	if [ "${KEEP_TMP:-0}" = 1 ]; then
		echo "work folder kept: $work"
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Three distinct free loopback ports, chosen by the kernel. The sockets are
# open at once so the ports differ; another process could still take one
# before our servers bind it, in which case the readiness wait below fails.
read -r prism_port gateway_port stream_gateway_port < <(node -e '
	const net = require("net");
	const s = [0, 1, 2].map(() => net.createServer());
	let n = 0;
	for (const x of s)
		x.listen(0, "127.0.0.1", () => {
			if (++n < s.length) return;
			console.log(s.map((y) => y.address().port).join(" "));
			for (const y of s) y.close();
		});')

# Waits until something accepts connections on the port, failing at once if
# the process meant to serve it has died, and after $3 tenths of a second.
wait_port() {
	local port=$1 pid=$2 tries=$3 name=$4 i
	for i in $(seq "$tries"); do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "$name exited before it served on port $port" >&2
			return 1
		fi
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	echo "$name not listening on port $port after $((tries / 10)) s" >&2
	return 1
}

# Prism answers every operation from the spec and rejects, with 401, 415 or
# 422, any request that breaks it: no bearer token, a content type the
# operation does not take, a body or query parameter out of its schema.
# --errors also turns a violation in its own answers into an error, so what
# the gateway relays is always spec-valid.
#
# The whole spec (3 MB) takes Prism a while to read: about fifteen seconds
# on an idle machine, so it has up to two minutes.
"$prism" mock --errors -h 127.0.0.1 -p "$prism_port" "$spec" >"$work/prism.log" 2>&1 &
prism_pid=$!

# Prism cannot stand in for POST /responses: under --errors its generated
# answer fails its own check of the spec (an output item matching none, or
# several, of a oneOf), and it cannot write text/event-stream at all
# ("Cannot serialise complex objects as text"). Those calls go to a second
# gateway, the same policy in front of the stand-in upstream
# (tests/stub/upstream.c), which conformance.mjs scripts with answers of
# the spec's shape, JSON or paced events.
mkdir -p "$work/stream"
"$stub" --port-file "$work/stub.port" >"$work/stub.log" 2>&1 &
stub_pid=$!
for i in $(seq 100); do
	[ -s "$work/stub.port" ] && break
	kill -0 "$stub_pid" 2>/dev/null || { echo "the stub exited" >&2; exit 1; }
	sleep 0.1
done
stub_port=$(cat "$work/stub.port")
wait_port "$prism_port" "$prism_pid" 1200 prism

# Prism serves the spec's paths without the /v1 of its servers entry, so the
# gateway's base_url is Prism's root.
#
# The policy allows everything conformance.mjs asks for and refuses more
# than 4g. Violations are logged, not blocked: Prism answers with the same
# generated container whatever was asked for (its allowlist is ["string"]),
# which block mode would turn into 502s.
#
# Every operation of the API is allowed (routes.default), and one tenant,
# known by the digest of its key, may have one live container: its second
# create is the quota refusal the SDK must not retry.
quota_key=sk-conformance-quota-tenant
quota_digest=$(printf '%s' "$quota_key" | "$gateway" hash-key)
cat >"$work/policy.json" <<EOF
{
  "memory_limit": { "max": "4g", "default": "1g", "on_exceed": "reject" },
  "network_policy": {
    "allowed_domains": ["api.example.com", "*.example.org"],
    "allow_domain_secrets": true,
    "allow_wildcards": false,
    "default": { "type": "disabled" }
  },
  "expires_after": { "max_minutes": 120, "default_minutes": 20 },
  "skills": { "allowed_skill_ids": ["openai-spreadsheets"], "allow_inline": false },
  "file_ids": { "max_count": 10 },
  "on_upstream_violation": "log",
  "routes": { "default": "allow" },
  "tenants": {
    "quota": {
      "api_keys_sha256": ["$quota_digest"],
      "rate_limit": { "max_live_containers": 1 }
    }
  }
}
EOF
cat >"$work/gateway.json" <<EOF
{
  "listen": "127.0.0.1:$gateway_port",
  "upstream": {
    "base_url": "http://127.0.0.1:$prism_port",
    "timeout_ms": 15000,
    "connect_timeout_ms": 2000
  },
  "audit": { "path": "audit.log" },
  "policy_file": "policy.json",
  "log": { "level": "info" }
}
EOF
cat >"$work/stream/gateway.json" <<EOF
{
  "listen": "127.0.0.1:$stream_gateway_port",
  "upstream": {
    "base_url": "http://127.0.0.1:$stub_port/v1",
    "timeout_ms": 15000,
    "connect_timeout_ms": 2000
  },
  "audit": { "path": "audit.log" },
  "policy_file": "../policy.json",
  "log": { "level": "info" }
}
EOF
"$gateway" --config "$work/gateway.json" --check
"$gateway" --config "$work/stream/gateway.json" --check

"$gateway" --config "$work/gateway.json" >"$work/gateway.log" 2>&1 &
gateway_pid=$!
"$gateway" --config "$work/stream/gateway.json" >"$work/stream/gateway.log" 2>&1 &
stream_gateway_pid=$!
wait_port "$gateway_port" "$gateway_pid" 100 gateway
wait_port "$stream_gateway_port" "$stream_gateway_pid" 100 "second gateway"

GW_BASE_URL="http://127.0.0.1:$gateway_port/v1" \
GW_AUDIT="$work/audit.log" \
GW_LOG="$work/gateway.log" \
GW_WORK="$work" \
GW_STREAM_BASE_URL="http://127.0.0.1:$stream_gateway_port/v1" \
GW_STREAM_AUDIT="$work/stream/audit.log" \
GW_STREAM_LOG="$work/stream/gateway.log" \
GW_STUB_URL="http://127.0.0.1:$stub_port" \
GW_QUOTA_KEY="$quota_key" \
	node "$here/conformance.mjs"
