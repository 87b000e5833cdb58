# Helpers for bench/run.sh (sourced, bash): starting and stopping what the
# bench runs, picking ports, reading numbers off /proc, and the configs of
# the servers under test.
#
# Every process is started through bg_start so that its PID is known and
# run.sh's EXIT trap can stop it by that PID, whatever went wrong.

BG_PIDS=""

die() {
	echo "bench: $*" >&2
	exit 1
}

# bg_start NAME CPU CMD...: runs CMD in the background, pinned to CPU (no
# pinning when CPU is empty), stdout and stderr to $W/log/NAME.log. The new
# PID is left in BG_PID. taskset execs CMD, so the PID is CMD's own.
bg_start() {
	local name=$1 cpu=$2
	shift 2
	mkdir -p "$W/log"
	if [ -n "$cpu" ]; then
		taskset -c "$cpu" "$@" >>"$W/log/$name.log" 2>&1 &
	else
		"$@" >>"$W/log/$name.log" 2>&1 &
	fi
	BG_PID=$!
	BG_PIDS="$BG_PID $BG_PIDS"
}

# A child that has exited stays a zombie until waited for, and kill -0
# still succeeds on it; the state letter in /proc tells the truth.
alive() {
	local st
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
	[ "${st%% *}" != Z ]
}

# bg_stop PID: SIGTERM (every server here drains and exits on it), then
# SIGKILL after 30 s. The gateway waits up to 10 s for requests in flight
# and callgrind writes its profile on the way out, hence the long grace.
# A process that had already died is reported in BG_DIED ("PID:STATUS",
# STATUS 128+N for signal N).
BG_DIED=""
bg_stop() {
	local pid=$1 i rc=0
	if ! alive "$pid"; then
		wait "$pid" 2>/dev/null || rc=$?
		BG_DIED="$BG_DIED $pid:$rc"
	elif alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 300; i++)); do
			alive "$pid" || break
			sleep 0.1
		done
		if alive "$pid"; then
			echo "bench: pid $pid ignored SIGTERM for 30 s; killing it" >&2
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	wait "$pid" 2>/dev/null || true
	BG_PIDS=$(echo " $BG_PIDS " | sed "s/ $pid / /")
}

# Stops everything still running, newest first.
bg_stop_all() {
	local pid
	for pid in $BG_PIDS; do
		bg_stop "$pid"
	done
}

# A port nothing listens on or uses, below the kernel's ephemeral range so
# that none of the bench's own outgoing connections can be holding it.
# Ports handed out earlier in this run are skipped too.
USED_PORTS=" "
free_port() {
	local p lo
	lo=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range)
	[ "$lo" -gt 12000 ] || lo=32768
	for ((p = 10000 + RANDOM % 1000; p < lo; p++)); do
		case "$USED_PORTS" in *" $p "*) continue ;; esac
		if [ -z "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ]; then
			USED_PORTS="$USED_PORTS$p "
			echo "$p"
			return 0
		fi
	done
	die "no free port below $lo"
}

# wait_listen PORT PID [SECONDS]: until something listens on PORT; fails
# early if PID has died.
wait_listen() {
	local port=$1 pid=$2 secs=${3:-15} i
	for ((i = 0; i < secs * 20; i++)); do
		[ -n "$(ss -Hltn "( sport = :$port )" 2>/dev/null)" ] && return 0
		alive "$pid" || return 1
		sleep 0.05
	done
	return 1
}

# The first child of PID: the worker of an nginx master.
first_child() {
	local kids
	kids=$(cat "/proc/$1/task/$1/children" 2>/dev/null) || kids=$(pgrep -P "$1")
	set -- $kids
	echo "${1:-}"
}

# wait_child PID: the nginx worker appears just after the master listens.
wait_child() {
	local i c
	for ((i = 0; i < 100; i++)); do
		c=$(first_child "$1")
		[ -n "$c" ] && echo "$c" && return 0
		sleep 0.05
	done
	return 1
}

# User plus system CPU time of PID, in clock ticks (0 once it is gone).
cpu_ticks() {
	{ sed 's/.*) //' "/proc/$1/stat" 2>/dev/null || echo "x x x x x x x x x x x 0 0"; } |
		awk '{print $12 + $13}'
}

# proc_kb PID FIELD: a "VmXXX:   123 kB" line of /proc/PID/status, in kB
# (0 once it is gone).
proc_kb() {
	awk -v f="$2:" '$1 == f {v = $2} END {print v + 0}' "/proc/$1/status" 2>/dev/null || echo 0
}

# --- configs ----------------------------------------------------------------
# Each instance gets its own prefix directory under $W, so nothing is read
# from or written to /etc/nginx, /var/lib/nginx or /var/log.

# nginx_common DIR: the parts every nginx instance here shares. One worker,
# run as root (the bench's files are root's), in the foreground so its PID
# is the one bg_start saw.
nginx_common() {
	local d=$1
	mkdir -p "$d/tmp"
	cat <<EOF
worker_processes 1;
worker_rlimit_nofile $NOFILE;
daemon off;
user root;
pid $d/nginx.pid;
error_log $d/error.log warn;
events {
	worker_connections $((NOFILE - 100));
}
EOF
}

# nginx_temp_paths DIR: all of nginx's temp folders under DIR.
nginx_temp_paths() {
	cat <<EOF
	client_body_temp_path $1/tmp/body;
	proxy_temp_path $1/tmp/proxy;
	fastcgi_temp_path $1/tmp/fastcgi;
	uwsgi_temp_path $1/tmp/uwsgi;
	scgi_temp_path $1/tmp/scgi;
EOF
}

# conf_upstream DIR PORT: the static upstream. POST .../containers, under
# any prefix, gets the fixed container object, and .../chat/completions a
# chat.completion; nothing is logged.
conf_upstream() {
	local d=$1 port=$2 body chat
	body=$(tr -d '\n' <"$BENCH_DIR/data/container.json")
	chat=$(tr -d '\n' <"$BENCH_DIR/data/chat-completion.json")
	nginx_common "$d"
	cat <<EOF
http {
$(nginx_temp_paths "$d")
	access_log off;
	keepalive_requests 1000000;
	keepalive_timeout 75s;
	client_max_body_size 0;
	server {
		listen 127.0.0.1:$port backlog=4096;
		default_type application/json;
		location ~ /containers\$ {
			return 200 '$body';
		}
		location ~ /chat/completions\$ {
			return 200 '$chat';
		}
		location / {
			return 404;
		}
	}
}
EOF
}

# conf_nginx_proxy DIR PORT UPPORT KEEPALIVE: nginx as the reverse proxy
# under test, with a pool of KEEPALIVE idle upstream connections kept open
# and an access log written to a file, as the gateway writes its audit log;
# Responses streams unbuffered.
conf_nginx_proxy() {
	local d=$1 port=$2 up=$3 ka=$4
	nginx_common "$d"
	cat <<EOF
http {
$(nginx_temp_paths "$d")
	access_log $d/access.log combined;
	keepalive_requests 1000000;
	keepalive_timeout 75s;
	client_max_body_size 100m;
	upstream containers_api {
		server 127.0.0.1:$up;
		keepalive $ka;
		keepalive_requests 1000000;
	}
	server {
		listen 127.0.0.1:$port backlog=4096;
		location / {
			proxy_pass http://containers_api;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
		}
		# Event streams pass as they come.
		location = /v1/responses {
			proxy_pass http://containers_api;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_buffering off;
		}
	}
}
EOF
}

# conf_peer DIR PORT UPPORT KEEPALIVE POLICY AUDIT: the OpenResty-style
# peer (bench/peer/), its template filled in; bench/peer/gate.lua is loaded
# from where it is.
conf_peer() {
	local d=$1
	mkdir -p "$d/tmp"
	sed -e "s|@DIR@|$d|g" -e "s|@PORT@|$2|g" -e "s|@UPPORT@|$3|g" -e "s|@POOL@|$4|g" \
		-e "s|@POLICY@|$5|g" -e "s|@AUDIT@|$6|g" -e "s|@PEER@|$BENCH_DIR/peer|g" \
		-e "s|@NOFILE@|$NOFILE|g" -e "s|@CONNECTIONS@|$((NOFILE - 100))|g" \
		"$BENCH_DIR/peer/nginx.conf.in"
}

# conf_haproxy PORT UPPORT MAXCONN [STREAMS]: one thread, HTTP mode,
# keep-alive on both sides (server connections reused, "http-reuse safe",
# the default), a log line per request written to stdout, which bg_start
# sends to a file. With STREAMS "streams", "option http-no-delay", which
# tells HAProxy not to hold small writes back for more: without it a
# stream's first event came about 200 ms late in a trial run (likely a
# delayed ACK), against under a millisecond through nginx.
conf_haproxy() {
	local port=$1 up=$2 maxconn=$3 nodelay=""
	[ "${4:-}" = streams ] && nodelay="
	option http-no-delay"
	cat <<EOF
global
	nbthread 1
	maxconn $maxconn
	log stdout format raw local0
defaults
	mode http
	log global
	option httplog
	timeout connect 5s
	timeout client 60s
	timeout server 60s
	timeout http-keep-alive 75s$nodelay
frontend containers_front
	bind 127.0.0.1:$port
	backlog 4096
	default_backend containers_api
backend containers_api
	server upstream 127.0.0.1:$up
EOF
}

# conf_gateway PORT UPPORT POLICY AUDIT: the gateway as it would run,
# with its audit log going to a real file and room for every bench client.
conf_gateway() {
	cat <<EOF
{
  "\$comment": "Written by bench/run.sh for one bench run.",
  "listen": "127.0.0.1:$1",
  "upstream": {
    "base_url": "http://127.0.0.1:$2/v1",
    "timeout_ms": 60000,
    "connect_timeout_ms": 5000,
    "max_idle_connections": ${POOL:-1024}
  },
  "audit": { "path": "$4" },
  "policy_file": "$3",
  "log": { "level": "info" },
  "limits": {
    "max_connections": 20000,$GATEWAY_EXTRA_LIMITS
    "max_body_bytes": 78643200
  }
}
EOF
}

# Limits that newer gateways have and older ones refuse as unknown keys:
# each is set (to let every bench client in) only when the gateway's
# --check accepts it. Leaves the JSON members in GATEWAY_EXTRA_LIMITS.
GATEWAY_EXTRA_LIMITS=""
# The probe's audit path is a file that is never written (--check only
# looks at its folder): gateways since 3c6f67d refuse /dev/null there, and
# every probe then failed.
gateway_probe_limits() {
	local probe=$W/probe-config.json extra="" kv
	for kv in '"max_inflight": 20000'; do
		GATEWAY_EXTRA_LIMITS="
    $kv,"
		conf_gateway 1 1 "$ROOT/policies/default.json" "$W/probe-audit.log" >"$probe"
		"$GATEWAY" --config "$probe" --check >/dev/null 2>&1 && extra="$extra$GATEWAY_EXTRA_LIMITS"
	done
	GATEWAY_EXTRA_LIMITS=$extra
	rm -f "$probe" "$W/probe-audit.log"
}

# --- other people's load ----------------------------------------------------------
# This machine is shared: other sessions build, test and fuzz on the same two
# CPUs. The bench cannot stop them, so it waits for a quiet moment before
# each measurement and reports how much CPU others used during it.

# Busy and total ticks of all CPUs together ("cpu" line of /proc/stat;
# steal counts as busy: it is time this machine did not get).
cpu_totals() {
	awk '/^cpu / {b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6; exit}' /proc/stat
}

# wait_quiet MAX_SECONDS PCT: until one second passes with the CPUs less
# than PCT% busy. Fails, leaving the last reading in QUIET_LAST, if that
# does not happen within MAX_SECONDS.
wait_quiet() {
	local max=$1 pct=$2 i a b
	for ((i = 0; i < max; i++)); do
		a=$(cpu_totals)
		sleep 1
		b=$(cpu_totals)
		QUIET_LAST=$(echo "$a $b" | awk '{d = $4 - $2; print (d > 0 ? int(100 * ($3 - $1) / d) : 0)}')
		[ "$QUIET_LAST" -lt "$pct" ] && return 0
	done
	return 1
}

# CPU ticks used so far by the processes in $TPIDS and their children
# (the nginx workers).
our_ticks() {
	local pid kid sum=0 t
	for pid in $TPIDS; do
		for kid in $pid $(cat "/proc/$pid/task/$pid/children" 2>/dev/null); do
			t=$(cpu_ticks "$kid" 2>/dev/null) || t=0
			sum=$((sum + ${t:-0}))
		done
	done
	echo "$sum"
}

# Ticks of user + system time in a `times` output's second line (the
# shell's reaped children, e.g. "0m1.250s 0m0.310s").
times_ticks() {
	awk -v tck="$(getconf CLK_TCK)" 'NR == 2 {
		s = 0
		for (i = 1; i <= 2; i++) { split($i, p, "m"); sub("s", "", p[2]); s += p[1] * 60 + p[2] }
		printf "%d\n", s * tck + 0.5
	}' "$1"
}
