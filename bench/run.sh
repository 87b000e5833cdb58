#!/usr/bin/env bash
# bench/run.sh: the body of `make bench` (see bench/README.md).
#
#   SCENARIO="throughput concurrency large-body cpu sse forwarded" bench/run.sh
#
# Measures the gateway next to nginx, HAProxy and an OpenResty-style peer
# (bench/peer/: nginx + Lua doing the gateway's create work) in front of the
# same upstream, on this one machine, and writes bench/results/latest.md.
# The gateway (build/gateway), bench/work/bin/slowup and
# bench/work/bin/sseload must already be built; `make bench` builds them,
# and installs what is missing, first.
#
# BENCH_GATEWAY names the gateway binary to measure (default build/gateway,
# relative to the repository root); BENCH_REV only labels the report.
#
# Knobs (environment; the defaults are what latest.md is normally made with):
#   TP_CONNS TP_WARMUP TP_DURATION              throughput
#   CONC_CLIENTS CONC_DELAY_MS CONC_WARMUP CONC_DURATION CONC_TIMEOUT
#   LB_MIB LB_RUNS                              large-body
#   CPU_WARMUP CPU_REQUESTS                     cpu
#   SSE_STREAMS SSE_RAMP_MS SSE_EVENTS SSE_INTERVAL_MS   sse
#   FWD_CONNS FWD_WARMUP FWD_DURATION           forwarded
#   QUIET_MAX QUIET_PCT BENCH_TRIES DISTURBED   a shared machine (see below)
#   BENCH_OUT                                   where the results go
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH_DIR=$ROOT/bench
W=$BENCH_DIR/work
RUN=$W/run
OUT=${BENCH_OUT:-$BENCH_DIR/results/latest.md}
BUILT_GATEWAY=$ROOT/${BENCH_GATEWAY:-build/gateway}
# The run uses a copy of build/gateway taken at its start: others may
# rebuild build/ while the bench runs, and every target and scenario must
# measure the same binary.
GATEWAY=$W/bin/gateway
SLOWUP=$W/bin/slowup
SSELOAD=$W/bin/sseload
SEED=$BENCH_DIR/data/seed.json
CHAT=$BENCH_DIR/data/chat-request.json
RESPONSES=$BENCH_DIR/data/responses-stream.json
# shellcheck source=bench/lib.sh
. "$BENCH_DIR/lib.sh"

ALL_SCENARIOS="throughput concurrency large-body cpu sse forwarded"
SCENARIOS=${SCENARIO:-$ALL_SCENARIOS}
for s in $SCENARIOS; do
	case " $ALL_SCENARIOS " in *" $s "*) ;; *) die "unknown scenario '$s' (one of: $ALL_SCENARIOS)" ;; esac
done

TP_CONNS=${TP_CONNS:-64}
TP_WARMUP=${TP_WARMUP:-2}
TP_DURATION=${TP_DURATION:-10}
CONC_DELAY_MS=${CONC_DELAY_MS:-1000}
CONC_WARMUP=${CONC_WARMUP:-3}
CONC_DURATION=${CONC_DURATION:-10}
CONC_TIMEOUT=${CONC_TIMEOUT:-10}
LB_MIB=${LB_MIB:-64}
LB_RUNS=${LB_RUNS:-5}
CPU_WARMUP=${CPU_WARMUP:-100}
CPU_REQUESTS=${CPU_REQUESTS:-1000}
SSE_STREAMS=${SSE_STREAMS:-1000}
SSE_RAMP_MS=${SSE_RAMP_MS:-2000}
SSE_EVENTS=${SSE_EVENTS:-8}
SSE_INTERVAL_MS=${SSE_INTERVAL_MS:-500}
FWD_CONNS=${FWD_CONNS:-64}
FWD_WARMUP=${FWD_WARMUP:-2}
FWD_DURATION=${FWD_DURATION:-10}
# Which targets each scenario measures, in order. The peer does the
# gateway's create work, so it is measured where creates and relays are:
# not in concurrency or large-body, which measure holding and carrying.
# (Read through eval in scenario_targets.)
# shellcheck disable=SC2034
TARGETS="direct nginx haproxy gateway"
# shellcheck disable=SC2034
TARGETS_throughput="direct nginx haproxy gateway peer"
# shellcheck disable=SC2034
TARGETS_sse="direct nginx haproxy gateway peer"
# shellcheck disable=SC2034
TARGETS_forwarded="direct nginx haproxy gateway peer"
QUIET_MAX=${QUIET_MAX:-30}
QUIET_PCT=${QUIET_PCT:-10}
BENCH_TRIES=${BENCH_TRIES:-2}
DISTURBED=${DISTURBED:-0.10}

# Two cores: the proxy under test gets core 0 to itself; the load generator
# and the upstream share core 1. The proxy is what is being measured, so it
# is the one kept free of interference; the price is that wrk and the
# upstream compete, which caps what the fastest proxies can show (the "proxy
# CPU" column says whether a proxy was the bottleneck). With no proxy in
# the path ("direct") the upstream takes core 0 instead.
if [ "$(nproc)" -ge 2 ]; then
	PROXY_CPU=0
	LOAD_CPU=1
	PINNING="proxy on CPU 0; wrk/curl and the upstream on CPU 1; for \"direct\" the upstream on CPU 0"
else
	PROXY_CPU=0
	LOAD_CPU=0
	PINNING="one CPU only: everything on CPU 0, so the numbers include contention"
fi

# A proxy with N requests in flight holds 2N sockets (client + upstream).
# The soft limit goes up to the hard one; raising the hard limit needs
# CAP_SYS_RESOURCE, which this machine may not give, so the concurrency
# scenario uses 10,000 clients only when the hard limit allows it.
ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)
# With a hard limit of 20,000 (this machine's) that means 9,000 clients: at
# 9,500 nginx already runs out of connection slots ("worker_connections are
# not enough") and starts dropping kept-alive clients.
if [ -z "${CONC_CLIENTS:-}" ]; then
	CONC_CLIENTS=$((NOFILE * 45 / 100 / 100 * 100))
	[ "$CONC_CLIENTS" -le 10000 ] || CONC_CLIENTS=10000
fi

# The proxies are configured the same way in every scenario, with room for
# every concurrency client: nginx and the gateway keep up to POOL idle
# upstream connections (the gateway's default is 1024), haproxy accepts up
# to POOL connections (a small haproxy maxconn also shrinks its pool of
# idle server connections, and it then reconnects upstream for most
# requests, at a third of the speed).
POOL=$((CONC_CLIENTS > 1000 ? CONC_CLIENTS : 1000))

[ -x "$BUILT_GATEWAY" ] || die "$BUILT_GATEWAY is missing; run make first"
[ -x "$SLOWUP" ] || die "$SLOWUP is missing; run make bench"
[ -x "$SSELOAD" ] || die "$SSELOAD is missing; run make bench"
# The sanitizer build is several times slower and would measure nothing.
if nm -D "$BUILT_GATEWAY" 2>/dev/null | grep -q __asan_init; then
	die "$BUILT_GATEWAY is a sanitizer build; run make (not make sanitize) first"
fi
mkdir -p "$W/bin"
cp "$BUILT_GATEWAY" "$GATEWAY.tmp"
mv "$GATEWAY.tmp" "$GATEWAY"
gateway_probe_limits

# Only the latest run's files are kept (logs are appended to, so they go too).
rm -rf "$RUN" "$W/log"
mkdir -p "$RUN" "$(dirname "$OUT")"
trap 'bg_stop_all' EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT TERM

say() { printf '%s\n' "$*" >&2; }

# --- starting what is measured ------------------------------------------------

# start_target SCENARIO KIND UPSTREAM [DELAY_MS [POLICY]]
# Starts an upstream (UPSTREAM: "static" nginx, "slow" slowup, or "sse"
# slowup serving Responses streams) and, unless KIND is "direct", the proxy
# KIND in front of it. Leaves:
#   BASE   http://127.0.0.1:PORT of what the load goes to
#   URL    $BASE/v1/containers
#   MPID   the process whose CPU and memory are read: the proxy (for nginx
#          its single worker), or the upstream itself for "direct"
#   TPIDS  what stop_target stops
#   TDIR   the target's folder of configs and logs
start_target() {
	local sc=$1 kind=$2 upkind=$3 delay=${4:-0}
	local policy=${5:-$ROOT/policies/default.json}
	local upcpu=$LOAD_CPU up port pid
	TDIR=$RUN/$sc/$kind/$ATTEMPT
	TARGET_KIND=$kind
	TPIDS=""
	PID_NAMES=""
	mkdir -p "$TDIR/upstream"
	[ "$kind" = direct ] && upcpu=$PROXY_CPU

	up=$(free_port)
	UP_PORT=$up
	if [ "$upkind" = static ]; then
		conf_upstream "$TDIR/upstream" "$up" >"$TDIR/upstream/nginx.conf"
		bg_start "$sc-$kind-$ATTEMPT-upstream" "$upcpu" nginx -p "$TDIR/upstream" \
			-c "$TDIR/upstream/nginx.conf" -e "$TDIR/upstream/error.log"
	elif [ "$upkind" = sse ]; then
		bg_start "$sc-$kind-$ATTEMPT-upstream" "$upcpu" "$SLOWUP" --port "$up" \
			--body-file "$BENCH_DIR/data/container.json" \
			--sse-events "$SSE_EVENTS" --sse-interval-ms "$SSE_INTERVAL_MS"
	else
		bg_start "$sc-$kind-$ATTEMPT-upstream" "$upcpu" "$SLOWUP" --port "$up" \
			--body-file "$BENCH_DIR/data/container.json" --delay-ms "$delay"
	fi
	pid=$BG_PID
	TPIDS="$pid"
	PID_NAMES="$pid=upstream"
	wait_listen "$up" "$pid" || die "the $upkind upstream did not start; see $W/log/$sc-$kind-$ATTEMPT-upstream.log"
	MPID=$pid
	[ "$upkind" = static ] && MPID=$(wait_child "$pid")
	# "upstream": just the upstream, next to the load generator.
	if [ "$kind" = direct ] || [ "$kind" = upstream ]; then
		BASE=http://127.0.0.1:$up
		URL=$BASE/v1/containers
		return 0
	fi

	port=$(free_port)
	case $kind in
	nginx)
		mkdir -p "$TDIR/proxy"
		conf_nginx_proxy "$TDIR/proxy" "$port" "$up" "$POOL" >"$TDIR/proxy/nginx.conf"
		bg_start "$sc-$kind-$ATTEMPT" "$PROXY_CPU" nginx -p "$TDIR/proxy" \
			-c "$TDIR/proxy/nginx.conf" -e "$TDIR/proxy/error.log"
		;;
	haproxy)
		conf_haproxy "$port" "$up" "$POOL" "$([ "$upkind" = sse ] && echo streams)" >"$TDIR/haproxy.cfg"
		# stdout is the request log; stderr (alerts) goes with it.
		bg_start "$sc-$kind-$ATTEMPT" "$PROXY_CPU" haproxy -db -f "$TDIR/haproxy.cfg"
		;;
	gateway)
		conf_gateway "$port" "$up" "$policy" "$TDIR/audit.log" >"$TDIR/gateway.json"
		bg_start "$sc-$kind-$ATTEMPT" "$PROXY_CPU" "$GATEWAY" --config "$TDIR/gateway.json"
		;;
	peer)
		mkdir -p "$TDIR/proxy"
		conf_peer "$TDIR/proxy" "$port" "$up" "$POOL" "$policy" "$TDIR/audit.log" >"$TDIR/proxy/nginx.conf"
		bg_start "$sc-$kind-$ATTEMPT" "$PROXY_CPU" nginx -p "$TDIR/proxy" \
			-c "$TDIR/proxy/nginx.conf" -e "$TDIR/proxy/error.log"
		;;
	esac
	pid=$BG_PID
	TPIDS="$pid $TPIDS"
	PID_NAMES="$PID_NAMES $pid=$kind"
	wait_listen "$port" "$pid" || die "$kind did not start; see $W/log/$sc-$kind-$ATTEMPT.log"
	MPID=$pid
	case $kind in nginx | peer) MPID=$(wait_child "$pid") ;; esac
	[ "$kind" = gateway ] && GATEWAY_THREADS=$(ls "/proc/$pid/task" | wc -l)
	BASE=http://127.0.0.1:$port
	URL=$BASE/v1/containers
}

# Stops the target; one that had died by itself (a crash) is reported in
# the target's notes with how it ended.
stop_target() {
	local pid d
	BG_DIED=""
	for pid in $TPIDS; do
		bg_stop "$pid"
	done
	for d in $BG_DIED; do
		echo "- **$(label "$TARGET_KIND"): process $(pid_name "${d%%:*}") (pid ${d%%:*}) died during the run, exit status ${d#*:}$(status_text "${d#*:}")**; see bench/work/log/" >>"$TDIR/notes"
		say "  $(label "$TARGET_KIND"): pid ${d%%:*} died during the run (exit status ${d#*:}$(status_text "${d#*:}"))"
	done
}

status_text() { [ "$1" -gt 128 ] && echo " = signal $(($1 - 128)) ($(kill -l $(($1 - 128)) 2>/dev/null))"; }

# Which of the target's processes a PID was.
pid_name() {
	case " $PID_NAMES " in *" $1="*) ;; *) echo "?"; return ;; esac
	echo " $PID_NAMES " | sed "s/.* $1=\([^ ]*\) .*/\1/"
}

# check_target [BODY URL OBJECT]: one request with the body (the seed by
# default) must come back 200 with the object (a container): a benchmark
# of error answers would be fast and meaningless.
check_target() {
	local out=$TDIR/check.json code body=${1:-$SEED} url=${2:-$URL} object=${3:-container}
	code=$(curl -s -o "$out" -w '%{http_code}' -H 'Content-Type: application/json' \
		-H 'Authorization: Bearer sk-bench-not-a-real-key' \
		--data-binary @"$body" "$url") || code=000
	if [ "$code" != 200 ] || ! grep -q "\"object\":\"$object\"" "$out"; then
		die "$url answered $code to $(basename "$body"): $(head -c 400 "$out" 2>/dev/null)"
	fi
}

# run_wrk CONNS SECONDS TIMEOUT OUTFILE [BODY URL]: the load, from one wrk
# thread on the load CPU; prints the BENCH line of post.lua.
run_wrk() {
	local body=${5:-$SEED} url=${6:-$URL}
	BENCH_BODY=$body taskset -c "$LOAD_CPU" wrk -t1 -c"$1" -d"$2"s --timeout "$3"s \
		-s "$BENCH_DIR/post.lua" "$url" >"$4" 2>&1 || true
	grep '^BENCH ' "$4" || die "wrk failed against $url; see $4"
}

# measure_start / measure_end bracket a measured window. They must run in
# the main shell (not in $(...)): `times` there counts the load generator's
# CPU once it has been reaped. After measure_end:
#   M_PROXY    CPU ticks of the measured process
#   M_FOREIGN  CPU ticks that neither the servers under test nor the load
#              generator used: other people's work on this machine
#   M_WALL_MS  how long the window lasted
measure_start() {
	times >"$RUN/times.a"
	M_BUSY0=$(cpu_totals)
	M_BUSY0=${M_BUSY0% *}
	M_OURS0=$(our_ticks)
	M_PROXY0=$(cpu_ticks "$MPID")
	M_T0=$(date +%s%N)
}
measure_end() {
	local busy ours load
	times >"$RUN/times.b"
	busy=$(cpu_totals)
	busy=${busy% *}
	ours=$(our_ticks)
	M_PROXY=$(($(cpu_ticks "$MPID") - M_PROXY0))
	[ "$M_PROXY" -ge 0 ] || M_PROXY=0
	load=$(($(times_ticks "$RUN/times.b") - $(times_ticks "$RUN/times.a")))
	M_FOREIGN=$((busy - M_BUSY0 - (ours - M_OURS0) - load))
	[ "$M_FOREIGN" -ge 0 ] || M_FOREIGN=0
	M_WALL_MS=$((($(date +%s%N) - M_T0) / 1000000))
}

# settle_idle PID MAX: until PID has used no CPU for a whole second, at
# most MAX seconds; SETTLE_WAITED says how long it took.
settle_idle() {
	local a b
	for ((SETTLE_WAITED = 0; SETTLE_WAITED < $2; SETTLE_WAITED++)); do
		a=$(cpu_ticks "$1")
		sleep 1
		b=$(cpu_ticks "$1")
		[ "$a" = "$b" ] && return 0
	done
	return 1
}

# Before each measurement: wait for the machine to be quiet (see lib.sh),
# and say so in the notes when it never was.
quiet_or_note() {
	if ! wait_quiet "$QUIET_MAX" "$QUIET_PCT"; then
		echo "- $(label "$2"): the machine was still ${QUIET_LAST}% busy with other work after waiting ${QUIET_MAX} s; measured anyway" >>"$1"
		say "  (machine still ${QUIET_LAST}% busy with other work after ${QUIET_MAX} s; measuring anyway)"
	fi
}

# Notes about the gateway's (or with KIND peer, the peer's) own record of
# a run: its audit lines by status and decision, and anything the gateway
# logged at warn or above.
gateway_notes() {
	local sc=$1 kind=${2:-gateway} audit=$TDIR/audit.log log
	log=$W/log/$sc-gateway-$ATTEMPT.log
	[ -f "$audit" ] || return 0
	awk '{
		# Newer gateways chain typed records (intent, request,
		# checkpoint...); only "request" records are one per request.
		t = ""
		if (match($0, /^\{"type":"[a-z_]+"/)) t = substr($0, 10, RLENGTH - 10)
		if (t != "" && t != "request") { other[t]++; next }
		s = "?"; d = "?"; c = ""
		if (match($0, /"status":[0-9]+/)) s = substr($0, RSTART + 9, RLENGTH - 9)
		if (match($0, /"decision":"[a-z]+"/)) d = substr($0, RSTART + 12, RLENGTH - 13)
		if (match($0, /"code":"[a-z_]+"/)) c = " " substr($0, RSTART + 8, RLENGTH - 9)
		n[s " " d c]++; total++
	} END {
		printf "- %s audit log: %d request records;", kind, total
		for (k in n) printf " %s: %d;", k, n[k]
		sep = " other records:"
		for (k in other) { printf "%s %d %s", sep, other[k], k; sep = "," }
		printf "\n"
	}' kind="$kind" "$audit"
	[ "$kind" = gateway ] || return 0
	if grep -qiE '\b(warn|error)\b' "$log" 2>/dev/null; then
		printf -- '- gateway stderr: %s warn/error lines, e.g. `%s`\n' \
			"$(grep -ciE '\b(warn|error)\b' "$log")" \
			"$(grep -iE '\b(warn|error)\b' "$log" | head -1 | cut -c1-200)"
	fi
}

# Notes from nginx's and haproxy's own logs: anything they complained of.
proxy_notes() {
	local sc=$1 kind=$2 f n
	case $kind in
	nginx | peer) f=$TDIR/proxy/error.log ;;
	haproxy) f=$W/log/$sc-haproxy-$ATTEMPT.log ;;
	*) return 0 ;;
	esac
	[ -f "$f" ] || return 0
	if [ "$kind" = haproxy ]; then
		n=$(grep -cE '^\[(ALERT|WARNING)\]' "$f" || true)
		[ "$n" -gt 0 ] && printf -- '- haproxy: %s alert/warning lines, e.g. `%s`\n' "$n" \
			"$(grep -E '^\[(ALERT|WARNING)\]' "$f" | head -1 | cut -c1-200)"
	else
		# Spooling a large body to a temp file is nginx's normal way.
		n=$(grep -E '\[(warn|error|crit|alert|emerg)\]' "$f" | grep -vc 'buffered to a temporary file' || true)
		[ "$n" -gt 0 ] && printf -- '- %s error.log: %s lines, e.g. `%s`\n' "$(label "$kind")" "$n" \
			"$(grep -E '\[(warn|error|crit|alert|emerg)\]' "$f" | grep -v 'buffered to a temporary file' | head -1 | cut -c1-200)"
	fi
	return 0
}

# The labels, read through eval in label().
# shellcheck disable=SC2034
LABEL_direct="upstream direct"
# shellcheck disable=SC2034
LABEL_nginx="nginx proxy_pass"
# shellcheck disable=SC2034
LABEL_haproxy="haproxy"
# shellcheck disable=SC2034
LABEL_gateway="gateway"
# shellcheck disable=SC2034
LABEL_peer="peer (nginx + Lua)"
label() { eval "echo \"\$LABEL_$1\""; }

# --- scenarios ------------------------------------------------------------------
# Each writes its section of the report to $RUN/<scenario>.md.
#
# throughput, concurrency and large-body measure each target with an
# attempt_<scenario> function, which starts the target fresh, measures once,
# stops it and leaves one line of results in ROW and its notes in
# $TDIR/notes. When others' work took more than DISTURBED CPUs during the
# measured seconds, the attempt is repeated (BENCH_TRIES in all) and the
# least disturbed one is kept.

ATTEMPT=1
again() { [ "$ATTEMPT" = 1 ] || echo " (attempt $ATTEMPT)"; }

# measure_target SCENARIO KIND: the attempts, then the kept row appended to
# $RUN/SCENARIO.rows and its notes to $RUN/SCENARIO.notes.
measure_target() {
	local sc=$1 kind=$2 try best="" best_load="" best_notes="" load tries=0
	for ((try = 1; try <= BENCH_TRIES; try++)); do
		tries=$try
		ATTEMPT=$try
		"attempt_${sc//-/_}" "$kind"
		load=$(awk -v f="$M_FOREIGN" -v t="$(getconf CLK_TCK)" -v w="$M_WALL_MS" \
			'BEGIN { printf "%.3f", (w > 0 ? f / t / (w / 1000) : 0) }')
		if [ -z "$best" ] || awk -v a="$load" -v b="$best_load" 'BEGIN { exit !(a < b) }'; then
			best="$ROW tries=$try"
			best_load=$load
			best_notes=$TDIR/notes
		fi
		awk -v a="$load" -v d="$DISTURBED" 'BEGIN { exit !(a > d) }' || break
		if [ "$try" -lt "$BENCH_TRIES" ]; then
			say "  other processes used $load CPUs during that; measuring again"
		fi
	done
	echo "$kind $best" >>"$RUN/$sc.rows"
	if [ "$tries" -gt 1 ]; then
		echo "- $(label "$kind"): measured $tries times because other work disturbed it; the least disturbed attempt is shown" >>"$RUN/$sc.notes"
	fi
	cat "$best_notes" >>"$RUN/$sc.notes"
}

# wrk_attempt SCENARIO KIND CONNS WARMUP DURATION BODY PATH OBJECT: a
# kept-alive wrk load of one body against the static upstream.
wrk_attempt() {
	local sc=$1 kind=$2 conns=$3 warm=$4 dur=$5 body=$6 path=$7 object=$8 line url
	say "$sc: $(label "$kind"): ${warm}s warm-up, ${dur}s measured, $conns connections$(again)"
	start_target "$sc" "$kind" static
	url=$BASE$path
	TDIR_NOTES=$TDIR/notes
	check_target "$body" "$url" "$object"
	quiet_or_note "$TDIR_NOTES" "$kind"
	run_wrk "$conns" "$warm" 2 "$TDIR/warmup.wrk" "$body" "$url" >/dev/null
	measure_start
	line=$(run_wrk "$conns" "$dur" 2 "$TDIR/measure.wrk" "$body" "$url")
	measure_end
	ROW="${line#BENCH } cpu_ticks=$M_PROXY foreign_ticks=$M_FOREIGN wall_ms=$M_WALL_MS tck=$(getconf CLK_TCK)"
	# After the stop: the gateway finishes what is in flight first, and
	# the peer flushes its audit buffer.
	stop_target
	proxy_notes "$sc" "$kind" >>"$TDIR_NOTES"
	case $kind in gateway | peer) gateway_notes "$sc" "$kind" >>"$TDIR_NOTES" ;; esac
}

attempt_throughput() {
	wrk_attempt throughput "$1" "$TP_CONNS" "$TP_WARMUP" "$TP_DURATION" "$SEED" /v1/containers container
}

attempt_forwarded() {
	wrk_attempt forwarded "$1" "$FWD_CONNS" "$FWD_WARMUP" "$FWD_DURATION" "$CHAT" \
		/v1/chat/completions chat.completion
}

# sse: SSE_STREAMS streams opened over SSE_RAMP_MS and held open while the
# upstream paces its events; sseload reads the measured process's memory
# while they are open.
attempt_sse() {
	local kind=$1 line
	say "sse: $(label "$kind"): $SSE_STREAMS streams over ${SSE_RAMP_MS} ms, $((SSE_EVENTS + 2)) events each, one every ${SSE_INTERVAL_MS} ms$(again)"
	start_target sse "$kind" sse
	TDIR_NOTES=$TDIR/notes
	quiet_or_note "$TDIR_NOTES" "$kind"
	measure_start
	line=$(taskset -c "$LOAD_CPU" "$SSELOAD" --port "${BASE##*:}" --path /v1/responses \
		--body-file "$RESPONSES" --streams "$SSE_STREAMS" --ramp-ms "$SSE_RAMP_MS" \
		--events $((SSE_EVENTS + 2)) --rss-pid "$MPID" --timeout-s 120 2>"$TDIR/sseload.err") || true
	measure_end
	case $line in SSE\ *) ;; *) die "sseload failed against $BASE; see $TDIR/sseload.err" ;; esac
	ROW="${line#SSE } cpu_ticks=$M_PROXY foreign_ticks=$M_FOREIGN wall_ms=$M_WALL_MS tck=$(getconf CLK_TCK)"
	stop_target
	proxy_notes sse "$kind" >>"$TDIR_NOTES"
	case $kind in gateway | peer) gateway_notes sse "$kind" >>"$TDIR_NOTES" ;; esac
}

attempt_concurrency() {
	local kind=$1 line rss0 hwm settle=$((CONC_DELAY_MS / 1000 + 2))
	say "concurrency: $(label "$kind"): $CONC_CLIENTS clients, upstream holds each answer ${CONC_DELAY_MS} ms$(again)"
	start_target concurrency "$kind" slow "$CONC_DELAY_MS"
	TDIR_NOTES=$TDIR/notes
	check_target
	rss0=$(proc_kb "$MPID" VmRSS)
	quiet_or_note "$TDIR_NOTES" "$kind"
	run_wrk "$CONC_CLIENTS" "$CONC_WARMUP" "$CONC_TIMEOUT" "$TDIR/warmup.wrk" >/dev/null
	# wrk dropped its connections with requests in flight; let those
	# finish so the measured run starts from a quiet proxy.
	sleep "$settle"
	settle_idle "$MPID" 30 ||
		echo "- $(label "$kind"): still busy ${SETTLE_WAITED} s after the warm-up; measured anyway" >>"$TDIR_NOTES"
	measure_start
	line=$(run_wrk "$CONC_CLIENTS" "$CONC_DURATION" "$CONC_TIMEOUT" "$TDIR/measure.wrk")
	measure_end
	hwm=$(proc_kb "$MPID" VmHWM)
	ROW="${line#BENCH } rss0_kb=$rss0 hwm_kb=$hwm clients=$CONC_CLIENTS cpu_ticks=$M_PROXY foreign_ticks=$M_FOREIGN wall_ms=$M_WALL_MS tck=$(getconf CLK_TCK)"
	# After the stop: the gateway finishes what is in flight first.
	stop_target
	proxy_notes concurrency "$kind" >>"$TDIR_NOTES"
	[ "$kind" != gateway ] || gateway_notes concurrency >>"$TDIR_NOTES"
}

# The large body: the seed's container with one inline skill whose base64
# data is LB_MIB MiB long (3/4 of that decoded), built once per run.
make_large_body() {
	local f=$1 raw=$((LB_MIB * 1024 * 1024 * 3 / 4))
	{
		printf '%s' '{"name":"My Container","memory_limit":"4g","skills":[{"type":"inline","name":"bench-skill","description":"a large inline skill","source":{"type":"base64","media_type":"application/zip","data":"'
		head -c "$raw" /dev/zero | base64 -w0
		printf '%s' '"}}],"network_policy":{"type":"allowlist","allowed_domains":["api.buildkite.com"]}}'
	} >"$f"
}

attempt_large_body() {
	local kind=$1 i res rss0 body=$RUN/large-body.json
	say "large-body: $(label "$kind"): $LB_RUNS x $(stat -c %s "$body") bytes$(again)"
	start_target large-body "$kind" slow 0 "$BENCH_DIR/data/policy-large.json"
	TDIR_NOTES=$TDIR/notes
	rss0=$(proc_kb "$MPID" VmRSS)
	quiet_or_note "$TDIR_NOTES" "$kind"
	: >"$TDIR/runs"
	measure_start
	for ((i = 1; i <= LB_RUNS; i++)); do
		# No Expect: 100-continue, so no proxy is timed on how it
		# answers that; each run on a new connection.
		res=$(taskset -c "$LOAD_CPU" curl -s -o "$TDIR/answer.$i" -H 'Expect:' \
			-H 'Content-Type: application/json' --data-binary @"$body" \
			-w '%{http_code} %{time_total}' "$URL") || res="000 0"
		echo "$res" >>"$TDIR/runs"
	done
	measure_end
	ROW=$(sort -k2,2n "$TDIR/runs" |
		awk -v rss0="$rss0" -v hwm="$(proc_kb "$MPID" VmHWM)" -v size="$(stat -c %s "$body")" \
			-v cpu="$M_PROXY" -v foreign="$M_FOREIGN" -v tck="$(getconf CLK_TCK)" -v wall="$M_WALL_MS" '
		{ t[NR] = $2; s[$1]++ }
		END {
			st = ""; for (c in s) st = st (st ? "," : "") c "x" s[c]
			printf "runs=%d status=%s min=%s med=%s max=%s rss0_kb=%s hwm_kb=%s size=%s cpu_ticks=%s foreign_ticks=%s wall_ms=%s tck=%s\n",
				NR, st, t[1], t[int((NR + 1) / 2)], t[NR], rss0, hwm, size, cpu, foreign, wall, tck
		}')
	stop_target
	proxy_notes large-body "$kind" >>"$TDIR_NOTES"
	if [ "$kind" = gateway ]; then
		gateway_notes large-body >>"$TDIR_NOTES"
		grep -q '"object":"container"' "$TDIR/answer.1" ||
			echo "- gateway answered: \`$(head -c 300 "$TDIR/answer.1")\`" >>"$TDIR_NOTES"
	fi
}

# scenario_targets SCENARIO: every target of the scenario measured
# (TARGETS_<scenario>, else TARGETS), rows and notes afresh.
scenario_targets() {
	local kind targets
	eval "targets=\${TARGETS_${1//-/_}:-\$TARGETS}"
	: >"$RUN/$1.rows"
	: >"$RUN/$1.notes"
	for kind in $targets; do
		measure_target "$1" "$kind"
	done
}

# The peer is only worth measuring if it decides as the gateway does:
# both, under policies/default.json in front of the static upstream, get
# every create body of the gateway's test data (bench/peer/parity.py), and
# the report says how often they answered alike. Leaves PARITY_TEXT.
PARITY_TEXT=""
peer_parity() {
	local gw peer line d=$RUN/parity
	if ! command -v python3 >/dev/null; then
		PARITY_TEXT="- peer parity: not checked (no python3)"
		return 0
	fi
	ATTEMPT=1
	mkdir -p "$d"
	start_target parity gateway static
	gw=$BASE
	local gw_pids=$TPIDS
	start_target parity peer static
	peer=$BASE
	line=$(python3 "$BENCH_DIR/peer/parity.py" "$gw" "$peer" "$ROOT" "$d/differences.txt") || line=""
	stop_target
	TPIDS=$gw_pids
	stop_target
	case $line in PARITY\ *) ;; *)
		PARITY_TEXT="- peer parity: bench/peer/parity.py failed"
		return 0
		;;
	esac
	PARITY_TEXT=$(echo "${line#PARITY }" | awk '
	function v(k,   i, kv) { for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) return kv[2] } return "" }
	{
		printf "- peer parity: the gateway and the peer were each sent the %d create bodies of the gateway'"'"'s test data (tests/data/schema, and the requests of tests/data/policy/apply decided under policies/default.json; bench/peer/parity.py). Same status: %d; same status and error code: %d; same status, code and param: %d. ", v("bodies"), v("same_status"), v("same_code"), v("same_all")
		printf "The differences (listed in bench/work/run/parity/differences.txt) are what lua-cjson cannot see: duplicate keys, `[]` and `{}` decoded alike, numbers as doubles (`20.0`, `2e1`, integers past 2^63), raw tabs and newlines inside strings; which unknown key is named first; and the gateway'"'"'s JSON path in the param of a parse error.\n"
	}')
}

# gateway CPU per request / peer CPU per request, from a rows file.
cpu_ratio_text() {
	awk '
	function v(k,   i, kv) { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) return kv[2] } return "" }
	{ if (v("requests") > 0) us[$1] = 1e6 * v("cpu_ticks") / v("tck") / v("requests") }
	END {
		if (("gateway" in us) && ("peer" in us) && us["peer"] > 0)
			printf "**The gateway'"'"'s CPU per request / the peer'"'"'s: %.1f µs / %.1f µs = %.2f**\n", us["gateway"], us["peer"], us["gateway"] / us["peer"]
	}' "$1"
}

scenario_throughput() {
	peer_parity
	scenario_targets throughput
	{
		echo "## throughput"
		echo
		echo "Keep-alive, $TP_CONNS connections, 1 wrk thread, ${TP_WARMUP} s warm-up then ${TP_DURATION} s measured; the seed body to \`POST /v1/containers\`; the static nginx upstream."
		echo
		report_wrk "$RUN/throughput.rows" throughput
		echo
		cpu_ratio_text "$RUN/throughput.rows"
		echo
		cat "$RUN/throughput.notes"
		echo "$PARITY_TEXT"
	} >"$RUN/throughput.md"
}

scenario_forwarded() {
	scenario_targets forwarded
	{
		echo "## forwarded"
		echo
		echo "A route the gateway relays rather than decides: \`POST /v1/chat/completions\` with a chat-completions request of $(stat -c %s "$CHAT") bytes (bench/data/chat-request.json: a system prompt, five turns, two function tools), answered by the static upstream with a chat.completion of $(($(stat -c %s "$BENCH_DIR/data/chat-completion.json") - 1)) bytes. policies/default.json allows every route (\`routes.default: allow\`), so the gateway checks the route, reads the JSON body whole, writes its intent and request records and relays it; the peer checks the route in Lua, relays with \`proxy_pass\` and writes its audit line. Keep-alive, $FWD_CONNS connections, 1 wrk thread, ${FWD_WARMUP} s warm-up then ${FWD_DURATION} s measured."
		echo
		report_wrk "$RUN/forwarded.rows" throughput
		echo
		cpu_ratio_text "$RUN/forwarded.rows"
		echo
		cat "$RUN/forwarded.notes"
	} >"$RUN/forwarded.md"
}

scenario_sse() {
	scenario_targets sse
	{
		echo "## sse"
		echo
		echo "$SSE_STREAMS Server-Sent Events streams held open at once: \`POST /v1/responses\` with \`\"stream\": true\` (bench/data/responses-stream.json), one connection each, opened evenly over $SSE_RAMP_MS ms by \`sseload\` (bench/sseload.c, on CPU $LOAD_CPU with the upstream). The upstream (\`slowup --sse-events $SSE_EVENTS\`) answers each with response.created at once, then $SSE_EVENTS output_text.delta events and response.completed, one every $SSE_INTERVAL_MS ms, so a stream lasts about $(((SSE_EVENTS + 1) * SSE_INTERVAL_MS)) ms and all $SSE_STREAMS are open together for a while. nginx relays with \`proxy_buffering off\`; HAProxy as it always does; the gateway relays event by event, reading each for the containers it names; the peer checks the body's tools in Lua and relays with \`proxy_buffering off\`, looking at each chunk for a container id."
		echo
		echo "First event: from the start of a stream's connect to its first complete event, so it holds the connect, the request, what the proxy does before forwarding, the upstream's answer and the relay back. \"added\" is that minus the same percentile straight to the upstream. Memory: VmRSS of the measured process (the proxy; for \"direct\" the upstream) read every 50 ms, the reading with the most streams open kept; per stream = (that - RSS before the first stream) / streams open then. CPU: what the measured process used over the whole run, per stream ($((SSE_EVENTS + 2)) events each)."
		echo
		report_sse "$RUN/sse.rows"
		echo
		cat "$RUN/sse.notes"
	} >"$RUN/sse.md"
}

scenario_concurrency() {
	scenario_targets concurrency
	{
		echo "## concurrency"
		echo
		echo "$CONC_CLIENTS concurrent keep-alive clients (1 wrk thread, --timeout ${CONC_TIMEOUT}s), upstream \`slowup\` holding every answer ${CONC_DELAY_MS} ms; ${CONC_WARMUP} s warm-up, a pause of at least $((CONC_DELAY_MS / 1000 + 2)) s until the proxy is idle (its warm-up requests done), then ${CONC_DURATION} s measured. wrk connects all clients at the start of each run, so the measured seconds include that ramp."
		echo "Peak RSS is VmHWM of the measured process (the nginx worker, haproxy, the gateway; for \"direct\" the upstream itself) at the end; \"RSS at start\" is VmRSS before any load; per in-flight = (peak - start) / clients."
		echo
		report_wrk "$RUN/concurrency.rows" concurrency
		echo
		cat "$RUN/concurrency.notes"
	} >"$RUN/concurrency.md"
}

scenario_large_body() {
	local size
	make_large_body "$RUN/large-body.json"
	size=$(stat -c %s "$RUN/large-body.json")
	scenario_targets large-body
	{
		echo "## large-body"
		echo
		echo "One create with a ${LB_MIB} MiB inline skill (base64 data of $((LB_MIB * 1024 * 1024)) characters, $((LB_MIB * 1024 * 1024 * 3 / 4)) bytes decoded; body $size bytes), sent $LB_RUNS times with curl (new connection each time, no \`Expect: 100-continue\`). The upstream is \`slowup\` with no delay, which answers only after reading the whole body, so the time covers receiving, validating and forwarding all of it. Gateway policy: \`bench/data/policy-large.json\` (inline skills allowed). nginx uses its defaults for bodies (\`proxy_request_buffering on\`: the body is spooled to a temp file, then sent) with \`client_max_body_size 100m\`."
		echo
		report_large "$RUN/large-body.rows"
		echo
		cat "$RUN/large-body.notes"
	} >"$RUN/large-body.md"
}

# The cpu scenario runs the gateway under callgrind twice, once serving
# CPU_WARMUP requests and once CPU_WARMUP + CPU_REQUESTS, and divides the
# difference: start-up, the warm-up and shutdown cancel out, and what is
# left is what the extra requests cost, counted in instructions, which do
# not depend on the machine's load.
# cpu_run KIND N: KIND (gateway or peer) under callgrind serves N creates
# in a row over one kept-alive connection; the profile is
# $RUN/cpu/callgrind.KIND.N.out. The peer runs as one nginx process
# (master_process off), so its one profile holds the worker's work.
cpu_run() {
	local kind=$1 n=$2 d=$RUN/cpu port pid i pd
	port=$(free_port)
	if [ "$kind" = gateway ]; then
		conf_gateway "$port" "$UP_PORT" "$ROOT/policies/default.json" "$d/audit.$n.log" >"$d/gateway.$n.json"
		bg_start "cpu-gateway-$n" "$PROXY_CPU" valgrind --tool=callgrind \
			--callgrind-out-file="$d/callgrind.$kind.$n.out" "$GATEWAY" --config "$d/gateway.$n.json"
	else
		pd=$d/peer.$n
		mkdir -p "$pd"
		conf_peer "$pd" "$port" "$UP_PORT" "$POOL" "$ROOT/policies/default.json" "$pd/audit.log" |
			sed 's/^daemon off;/daemon off;\nmaster_process off;/' >"$pd/nginx.conf"
		bg_start "cpu-peer-$n" "$PROXY_CPU" valgrind --tool=callgrind \
			--callgrind-out-file="$d/callgrind.$kind.$n.out" nginx -p "$pd" -c "$pd/nginx.conf" -e "$pd/error.log"
	fi
	pid=$BG_PID
	wait_listen "$port" "$pid" 120 || die "the $kind did not start under callgrind; see $W/log/cpu-$kind-$n.log"
	# One curl, one kept-alive connection, n requests in a row.
	{
		echo 'silent'
		echo 'header = "Content-Type: application/json"'
		echo 'header = "Authorization: Bearer sk-bench-not-a-real-key"'
		echo "data-binary = \"@$SEED\""
		echo 'write-out = "%{http_code}\n"'
		for ((i = 0; i < n; i++)); do
			echo "url = \"http://127.0.0.1:$port/v1/containers\""
			echo 'output = "/dev/null"'
		done
	} >"$d/curl.$n.cfg"
	taskset -c "$LOAD_CPU" curl -K "$d/curl.$n.cfg" >"$d/codes.$kind.$n" || true
	bg_stop "$pid"
	[ "$(grep -c '^200$' "$d/codes.$kind.$n")" = "$n" ] ||
		die "cpu: not all $n requests to the $kind got 200 ($(sort "$d/codes.$kind.$n" | uniq -c | tr '\n' ' '))"
	[ -s "$d/callgrind.$kind.$n.out" ] || die "cpu: callgrind wrote no profile; see $W/log/cpu-$kind-$n.log"
}

# Per-function costs of a profile, self or inclusive (yes/no), one
# "cost<TAB>function<TAB>object" line each: the function table that
# callgrind_annotate prints, without its source annotation.
cpu_functions() {
	callgrind_annotate --inclusive="$2" --auto=no --threshold=100 "$1" 2>/dev/null |
		awk '/file:function/ { on = 1; next }
		on && /^ *[0-9][0-9,]* \(/ && !/PROGRAM TOTALS/ {
			c = $1; gsub(",", "", c)
			sub(/^ *[0-9,]+ +\([^)]*\) +/, "")
			obj = "(object not shown)"
			if (match($0, / \[[^]]*\]$/)) {
				obj = substr($0, RSTART + 2, RLENGTH - 3); $0 = substr($0, 1, RSTART - 1)
				sub(/.*\//, "", obj)
			}
			fn = $0; sub(/.*:/, "", fn); sub(/\x27[0-9]+$/, "", fn)
			print c "\t" fn "\t" obj
		}'
}

# cpu_profile KIND: both runs of KIND; leaves their totals in CPU_T1 and
# CPU_T2, the instructions per request in CPU_PER, and per-function tables
# in $RUN/cpu/per-request.KIND.*.
cpu_profile() {
	local kind=$1 d=$RUN/cpu n1=$CPU_WARMUP n2=$((CPU_WARMUP + CPU_REQUESTS)) t1 t2 incl
	say "cpu: $kind under callgrind, $n1 then $n2 requests (takes a minute or two)"
	cpu_run "$kind" "$n1"
	cpu_run "$kind" "$n2"
	t1=$(awk '/^(summary|totals):/ {print $2; exit}' "$d/callgrind.$kind.$n1.out")
	t2=$(awk '/^(summary|totals):/ {print $2; exit}' "$d/callgrind.$kind.$n2.out")
	CPU_T1=$t1
	CPU_T2=$t2
	CPU_PER=$(((t2 - t1) / CPU_REQUESTS))
	# Per-request cost of each function: the difference of the two runs.
	# (A function's cost is summed over the names it appears under: a
	# recursive one shows up as fn'2 too.)
	for incl in no yes; do
		cpu_functions "$d/callgrind.$kind.$n1.out" $incl >"$d/fn.$kind.$n1.$incl"
		cpu_functions "$d/callgrind.$kind.$n2.out" $incl >"$d/fn.$kind.$n2.$incl"
		awk -F'\t' -v n="$CPU_REQUESTS" '
			NR == FNR { a[$2 "\t" $3] += $1; next }
			{ b[$2 "\t" $3] += $1 }
			END { for (k in b) { d = (b[k] - a[k]) / n; if (d >= 0.5) printf "%.0f\t%s\n", d, k } }' \
			"$d/fn.$kind.$n1.$incl" "$d/fn.$kind.$n2.$incl" | sort -t"$(printf '\t')" -k1,1nr >"$d/per-request.$kind.$incl"
	done
}

# The per-library table of a profile: self cost of all its functions.
cpu_by_object() {
	echo "| object | instructions/request | share |"
	echo "|---|---:|---:|"
	awk -F'\t' '{ o[$3] += $1 } END { for (k in o) print o[k] "\t" k }' "$1" |
		sort -t"$(printf '\t')" -k1,1nr | awk -F'\t' -v per="$2" '
		{ printf "| %s | %d | %.1f%% |\n", $2, $1, 100 * $1 / per }'
}

scenario_cpu() {
	ATTEMPT=1
	local d=$RUN/cpu n1=$CPU_WARMUP n2=$((CPU_WARMUP + CPU_REQUESTS)) per peer_per gw_t1 gw_t2
	mkdir -p "$d"
	start_target cpu upstream static
	cpu_profile gateway
	gw_t1=$CPU_T1 gw_t2=$CPU_T2 per=$CPU_PER
	cpu_profile peer
	peer_per=$CPU_PER
	stop_target
	echo "$per" >"$RUN/cpu.per_request"
	{
		echo "## cpu"
		echo
		echo "The gateway, then the peer, under \`valgrind --tool=callgrind\` (pinned to CPU $PROXY_CPU) in front of the static nginx upstream, with policies/default.json and the audit log on; one curl sends the seed body over one kept-alive connection. Run A serves $n1 requests, run B $n2; instructions per request = (total B - total A) / $CPU_REQUESTS, so start-up, warm-up and shutdown cancel out. Instructions of the process under test only (user space), no kernel time. For the gateway: the gateway, libevent, libcurl, jansson, OpenSSL, libc; Debian's libcurl and libjansson carry no symbols for their internal functions, which show as addresses. For the peer: nginx (one process, \`master_process off\`), the Lua module, LuaJIT and lua-cjson; LuaJIT compiles the hot Lua code to machine code at run time, which callgrind counts like any other (it shows as \`???\`, code without an object file), and by run A's end the traces are compiled, so run B - run A is the steady state. Instruction counts are not time (they ignore cache misses and the kernel's socket work, which the throughput scenario's CPU µs/req includes), but they do not vary with the machine's load."
		echo
		echo "| measure | gateway | peer |"
		echo "|---|---:|---:|"
		printf '| run A total (%d requests) | %s | %s |\n' "$n1" "$(group "$gw_t1")" "$(group "$CPU_T1")"
		printf '| run B total (%d requests) | %s | %s |\n' "$n2" "$(group "$gw_t2")" "$(group "$CPU_T2")"
		printf '| **per request** | **%s** | **%s** |\n' "$(group "$per")" "$(group "$peer_per")"
		echo
		awk -v a="$per" -v b="$peer_per" 'BEGIN { if (b > 0) printf "**The gateway'"'"'s instructions per create / the peer'"'"'s: %.2f**\n", a / b }'
		echo
		echo "The gateway per request by library (self cost of all its functions):"
		echo
		cpu_by_object "$d/per-request.gateway.no" "$per"
		echo
		echo "The peer per request by library:"
		echo
		cpu_by_object "$d/per-request.peer.no" "$peer_per"
		echo
		echo "The gateway's own functions by inclusive instructions per request (the function and everything it calls; nested, so shares overlap). The validate-policy-serialize path is the create handler and what it calls: the strict parse, the contract check, the policy, the serialization of what is forwarded, then the check of the answer and the audit line:"
		echo
		echo "| function | instructions/request | share |"
		echo "|---|---:|---:|"
		awk -F'\t' -v obj="$(basename "$GATEWAY")" -v per="$per" '
			$3 == obj && $2 != "main" && $2 != "server_run" && $2 != "(below main)" && n < 30 {
				printf "| `%s` | %d | %.1f%% |\n", $2, $1, 100 * $1 / per; n++ }' \
			"$d/per-request.gateway.yes"
		echo
		echo "Top 25 functions of the gateway by their own instructions per request (self cost):"
		echo
		echo "| instructions/request | share | function | object |"
		echo "|---:|---:|---|---|"
		head -25 "$d/per-request.gateway.no" | awk -F'\t' -v per="$per" '
			{ printf "| %d | %.1f%% | `%s` | %s |\n", $1, 100 * $1 / per, $2, $3 }'
		echo
		echo "Top 15 functions of the peer by their own instructions per request:"
		echo
		echo "| instructions/request | share | function | object |"
		echo "|---:|---:|---|---|"
		head -15 "$d/per-request.peer.no" | awk -F'\t' -v per="$peer_per" '
			{ printf "| %d | %.1f%% | `%s` | %s |\n", $1, 100 * $1 / per, $2, $3 }'
	} >"$RUN/cpu.md"
}

# --- report -----------------------------------------------------------------------

# 1234567 -> 1,234,567
group() { echo "$1" | sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|,\)/\1,\2\3/; ta'; }

# The throughput and concurrency tables, from the rows files.
report_wrk() {
	awk -v mode="$2" '
	function v(k,   i, kv) { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) return kv[2] } return "" }
	function ms(us) { return us >= 100000 ? sprintf("%.0f ms", us / 1000) : us >= 10000 ? sprintf("%.1f ms", us / 1000) : sprintf("%.2f ms", us / 1000) }
	function mib(kb) { return sprintf("%.1f MiB", kb / 1024) }
	{
		k = $1; kinds[NR] = k
		secs = v("duration_us") / 1e6
		rps[k] = v("requests") / secs
		p50[k] = v("requests") ? ms(v("p50_us")) : "-"; p99[k] = v("requests") ? ms(v("p99_us")) : "-"
		err = v("connect") + v("read") + v("write") + v("timeout") + v("non2xx")
		errs[k] = err == 0 ? "0" : sprintf("%d (connect %d, read %d, write %d, timeout %d, non-2xx %d)", err, v("connect"), v("read"), v("write"), v("timeout"), v("non2xx"))
		cpu = v("cpu_ticks") / v("tck")
		cpupct[k] = sprintf("%.0f%%", 100 * cpu / secs)
		us[k] = v("requests") ? sprintf("%.1f", 1e6 * cpu / v("requests")) : "-"
		other[k] = sprintf("%.2f", v("foreign_ticks") / v("tck") / (v("wall_ms") / 1000))
		rss0[k] = v("rss0_kb"); hwm[k] = v("hwm_kb"); cl[k] = v("clients")
	}
	END {
		names["direct"] = "upstream direct"; names["nginx"] = "nginx proxy_pass"
		names["haproxy"] = "haproxy"; names["gateway"] = "gateway"; names["peer"] = "peer (nginx + Lua)"
		if (mode == "throughput") {
			print "| target | req/s | p50 | p99 | ratio to nginx | measured process CPU | CPU µs/req | errors | other load (CPUs) |"
			print "|---|---:|---:|---:|---:|---:|---:|---|---:|"
		} else {
			print "| target | req/s | p50 | p99 | ratio to nginx | errors | measured process CPU | RSS at start | peak RSS (VmHWM) | per in-flight request | other load (CPUs) |"
			print "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"
		}
		for (i = 1; i <= NR; i++) {
			k = kinds[i]
			ratio = ("nginx" in rps) && rps["nginx"] > 0 ? sprintf("%.2f", rps[k] / rps["nginx"]) : "-"
			if (mode == "throughput")
				printf "| %s | %.0f | %s | %s | %s | %s | %s | %s | %s |\n", names[k], rps[k], p50[k], p99[k], ratio, cpupct[k], us[k], errs[k], other[k]
			else
				printf "| %s%s | %.0f | %s | %s | %s | %s | %s | %s | %s | %.1f KiB | %s |\n", names[k], k == "direct" ? " (slowup itself)" : "", rps[k], p50[k], p99[k], ratio, errs[k], cpupct[k], mib(rss0[k]), mib(hwm[k]), (hwm[k] - rss0[k]) / cl[k], other[k]
		}
	}' "$1"
}

# The sse table, from the rows file: sseload's line plus the CPU reading.
report_sse() {
	awk '
	function v(k,   i, kv) { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) return kv[2] } return "" }
	function ms(us) { return us >= 100000 ? sprintf("%.0f ms", us / 1000) : us >= 10000 ? sprintf("%.1f ms", us / 1000) : sprintf("%.2f ms", us / 1000) }
	function added(us) { return sprintf("%+.2f ms", us / 1000) }
	{
		k = $1; kinds[NR] = k; line[k] = $0
		p50[k] = v("first_p50_us"); p99[k] = v("first_p99_us")
	}
	END {
		names["direct"] = "upstream direct (slowup itself)"; names["nginx"] = "nginx proxy_pass"
		names["haproxy"] = "haproxy"; names["gateway"] = "gateway"; names["peer"] = "peer (nginx + Lua)"
		print "| target | streams good / failed | events | first event p50 | p99 | added p50 | added p99 | RSS before | RSS with streams open | streams open then | per open stream | CPU per stream | other load (CPUs) |"
		print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
		for (i = 1; i <= NR; i++) {
			k = kinds[i]; $0 = line[k]
			a50 = ("direct" in p50) && k != "direct" ? added(p50[k] - p50["direct"]) : "-"
			a99 = ("direct" in p99) && k != "direct" ? added(p99[k] - p99["direct"]) : "-"
			open = v("open_at_rss")
			printf "| %s | %d / %d | %d | %s | %s | %s | %s | %.1f MiB | %.1f MiB | %d | %s | %.2f ms | %.2f |\n",
				names[k], v("ok"), v("failed"), v("events"), ms(p50[k]), ms(p99[k]), a50, a99,
				v("rss0_kb") / 1024, v("rss_open_kb") / 1024, open,
				(open > 0 ? sprintf("%.1f KiB", (v("rss_open_kb") - v("rss0_kb")) / open) : "-"),
				1000 * v("cpu_ticks") / v("tck") / v("streams"),
				(v("wall_ms") > 0 ? v("foreign_ticks") / v("tck") / (v("wall_ms") / 1000) : 0)
		}
	}' "$1"
}

report_large() {
	awk '
	function v(k,   i, kv) { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) return kv[2] } return "" }
	{ k = $1; kinds[NR] = k; line[k] = $0; med[k] = v("med") }
	END {
		names["direct"] = "upstream direct"; names["nginx"] = "nginx proxy_pass"
		names["haproxy"] = "haproxy"; names["gateway"] = "gateway"
		print "| target | statuses | median time | min | max | MiB/s (median) | time ratio to nginx | measured process CPU per run | RSS at start | peak RSS (VmHWM) | other load (CPUs) |"
		print "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
		for (i = 1; i <= NR; i++) {
			k = kinds[i]; $0 = line[k]
			ratio = ("nginx" in med) && med["nginx"] > 0 ? sprintf("%.2f", med[k] / med["nginx"]) : "-"
			printf "| %s%s | %s | %.0f ms | %.0f ms | %.0f ms | %.0f | %s | %.0f ms | %.1f MiB | %.1f MiB | %.2f |\n",
				names[k], k == "direct" ? " (slowup itself)" : "", v("status"), 1000 * v("med"), 1000 * v("min"), 1000 * v("max"),
				(v("med") > 0 ? v("size") / 1048576 / v("med") : 0), ratio, 1000 * v("cpu_ticks") / v("tck") / v("runs"),
				v("rss0_kb") / 1024, v("hwm_kb") / 1024, (v("wall_ms") > 0 ? v("foreign_ticks") / v("tck") / (v("wall_ms") / 1000) : 0)
		}
	}' "$1"
}

# The gateway runs one event loop (workers: 1); say what threads it had.
GATEWAY_THREADS=""
gateway_threads_text() {
	case $GATEWAY_THREADS in
	"") echo "threads not observed in this run" ;;
	1) echo "single-threaded (1 thread seen)" ;;
	*) echo "$GATEWAY_THREADS threads seen at start (one event loop plus helpers), all pinned to the proxy CPU" ;;
	esac
}

conc_clients_text() {
	[ "$CONC_CLIENTS" -lt 10000 ] || return 0
	echo "Fewer than 10,000 clients because a proxy needs 2 descriptors per request in flight and the hard open-files limit here is $NOFILE; at 9,500 nginx already ran out of connection slots."
}

write_report() {
	local s cpu_model commit
	cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
	if [ -n "${BENCH_REV:-}" ]; then
		commit="$(git -C "$ROOT" rev-parse --short "$BENCH_REV" 2>/dev/null || echo "$BENCH_REV") (BENCH_REV=$BENCH_REV, built apart from the work tree)"
	else
		commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
		git -C "$ROOT" diff --quiet HEAD -- gateway 2>/dev/null ||
			commit="$commit + the work tree's uncommitted changes in gateway/"
	fi
	{
		echo "# Gateway benchmark: latest run"
		echo
		echo "Written by \`make bench\` (bench/run.sh); only the latest run is kept. Scenarios in this run: **$SCENARIOS**. Benchmarks are not tests: they pass or fail nothing."
		echo
		echo "## Machine and versions"
		echo
		echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'); the run took $ELAPSED s"
		echo "- machine: $(nproc) CPUs ($cpu_model), $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo), Linux $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME")"
		echo "- gateway: $("$GATEWAY" --version) at commit $commit, \`make\` build (CFLAGS -O2 -g); $(gateway_threads_text)"
		echo "- $(nginx -v 2>&1); $(haproxy -v | head -1 | cut -d' ' -f1-3); wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}'); $(curl --version | head -1 | cut -d' ' -f1-2); $(valgrind --version)"
		echo "- the peer: $(dpkg-query -W -f='${Package} ${Version}, ' libnginx-mod-http-lua lua-cjson libluajit2-5.1-2 2>/dev/null | sed 's/, $//')"
		echo "- CPU pinning (taskset): $PINNING"
		echo "- open files: soft = hard limit = $NOFILE (the hard limit cannot be raised here), applied to every process the bench starts"
		echo
		echo "## Parameters"
		echo
		echo "- targets: the upstream alone (\"upstream direct\"); nginx \`proxy_pass\` with an upstream keep-alive pool (1 worker, access log to a file); haproxy (\`nbthread 1\`, httplog to a file); the gateway (policies/default.json, audit log to a file, log level info); the peer, an OpenResty-style gateway of nginx + Lua (bench/peer/: 1 worker, policies/default.json, the same keep-alive pool, a buffered audit line per request to a file). Every proxy forwards each request to the same upstream path."
		echo "- body: the upstream documentation's example (bench/data/seed.json, $(stat -c %s "$SEED") bytes), allowed by policies/default.json; the upstream answers bench/data/container.json, which matches what the gateway forwards, so there are no violations."
		echo "- throughput: TP_CONNS=$TP_CONNS, TP_WARMUP=${TP_WARMUP}s, TP_DURATION=${TP_DURATION}s, \`wrk -t1 -c$TP_CONNS -d${TP_DURATION}s --timeout 2s -s bench/post.lua\`"
		echo "- concurrency: CONC_CLIENTS=$CONC_CLIENTS, CONC_DELAY_MS=$CONC_DELAY_MS, CONC_WARMUP=${CONC_WARMUP}s, CONC_DURATION=${CONC_DURATION}s, \`wrk -t1 -c$CONC_CLIENTS -d${CONC_DURATION}s --timeout ${CONC_TIMEOUT}s\`; in every scenario nginx keeps up to $POOL idle upstream connections (\`keepalive $POOL\`), haproxy has \`maxconn $POOL\`, the gateway \`upstream.max_idle_connections\` $POOL and \`limits.max_connections\` 20000$(echo "$GATEWAY_EXTRA_LIMITS" | tr -d '\n' | sed 's/^ *//; s/,$//; s/"\([a-z_]*\)": \([0-9]*\)/, \`limits.\1\` \2/g'). $(conc_clients_text)"
		echo "- large-body: LB_MIB=$LB_MIB, LB_RUNS=$LB_RUNS"
		echo "- cpu: CPU_WARMUP=$CPU_WARMUP, CPU_REQUESTS=$CPU_REQUESTS"
		echo "- sse: SSE_STREAMS=$SSE_STREAMS, SSE_RAMP_MS=$SSE_RAMP_MS, SSE_EVENTS=$SSE_EVENTS, SSE_INTERVAL_MS=$SSE_INTERVAL_MS"
		echo "- forwarded: FWD_CONNS=$FWD_CONNS, FWD_WARMUP=${FWD_WARMUP}s, FWD_DURATION=${FWD_DURATION}s, \`wrk -t1 -c$FWD_CONNS -d${FWD_DURATION}s --timeout 2s -s bench/post.lua\` with bench/data/chat-request.json"
		echo
		echo "## How to read this"
		echo
		echo "req/s is what one wrk thread got through in the measured seconds; p50/p99 are wrk's latency percentiles (time from sending a request to its answer, per connection). \"ratio to nginx\" divides a target's req/s by nginx proxy_pass's: 0.50 means half of nginx's rate with the same single core. \"measured process CPU\" is how busy the proxy's one process was during the measured seconds: near 100% means the proxy itself was the limit; well below means something else was (here usually core 1, shared by wrk and the upstream), so the ratio then understates the faster proxy's lead. \"CPU µs/req\" is that CPU time divided by the requests served, the proxy's cost per request whatever the limit was. \"other load\" is the CPU that processes outside the bench used during the measured seconds (this machine is shared with other people's builds and tests): the bench waits for a quiet moment before each measurement and measures again (up to $BENCH_TRIES times in all, the least disturbed kept) when others used more than $DISTURBED CPU; a row whose other load is still above that is disturbed, and its CPU µs/req is more trustworthy than its req/s. In concurrency the upstream holds each answer for ${CONC_DELAY_MS} ms, so the best possible is about clients / delay req/s with p50 just above the delay; anything added is queueing in the proxy, and memory per in-flight request is what each held request costs the proxy. large-body times one 64 MiB create end to end (curl to answer), so it includes the client's upload over loopback. cpu counts instructions, not time: it does not vary with the machine's load and shows where the gateway and the peer spend their work per request. The peer is the comparison that matters most for the gateway's own code: nginx and HAProxy only pass bytes along, while the peer does a create's work (parse, contract, policy, re-encoding, answer check, audit line) the way a competent OpenResty gateway would, so \"the gateway's CPU per request / the peer's\" says what the gateway's implementation costs against another of the same job; the peer still does less (one unchained audit line, no intent line, no tenants or limits; see bench/README.md), and \"peer parity\" says how closely it decides as the gateway does. In sse, \"added\" is the time a proxy puts in front of a stream's first event, and memory per open stream is what holding one costs it. forwarded is throughput on a route the gateway relays without deciding. Numbers from a 2-CPU virtual machine are noisy: differences under ~10% between runs are not significant."
		for s in $SCENARIOS; do
			echo
			cat "$RUN/$s.md"
		done
	} >"$OUT"
}

START=$(date +%s)
for s in $SCENARIOS; do
	t=$(date +%s)
	case $s in
	throughput) scenario_throughput ;;
	concurrency) scenario_concurrency ;;
	large-body) scenario_large_body ;;
	cpu) scenario_cpu ;;
	sse) scenario_sse ;;
	forwarded) scenario_forwarded ;;
	esac
	say "$s: done in $(($(date +%s) - t)) s"
done
ELAPSED=$(($(date +%s) - START))
write_report
echo
for s in $SCENARIOS; do
	cat "$RUN/$s.md"
	echo
done
echo "(written to ${OUT#"$ROOT"/}; run took $ELAPSED s)"
