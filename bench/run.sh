#!/usr/bin/env bash
# bench/run.sh: the measurements behind BENCHMARKS.md, from a fresh machine.
#
#   bench/run.sh [-long] [-reps N] [-duration SECONDS] [-sessions N] [-streams N]
#                [-skip-install] [-only LIST]
#
#   -long          5 repetitions of 15 s instead of 3 of 5 s (about 90 minutes)
#   -reps N        repetitions of every load run (default 3)
#   -duration S    seconds per load run (default 5)
#   -sessions N    idle sessions held for the memory figures (default 10000)
#   -streams N     active streams held for the memory figures (default 1000)
#   -skip-install  do not apt-get, npm ci or check for tools
#   -only LIST     comma-separated subset of: rps,h2,h1,download,priority,memory,scale,profile
#
# It installs what the chosen groups lack (Debian: wrk, nghttp2-client for
# h2load, nghttp2-proxy for nghttpx, apache2 for mod_http2, util-linux for
# taskset, nodejs, npm, jq, curl, openssl; npm ci for node's
# spdy-transport), builds spdymux and the helpers under bench/cmd, starts
# every server on CPU 0 and runs every load generator on CPU 1 (when the
# machine has two CPUs), repeats each run round-robin so that the runs
# compared in a ratio are measured side by side, and prints the tables.
#
# The h2 group puts HTTP/2 servers side by side under h2load, over TLS
# (ALPN h2) and cleartext (h2c with prior knowledge), at -c 1 -m 100 and
# -c 10 -m 10: spdymux serve, net/http's own HTTP/2 (benchserver), spdymux
# serve over spdy/3.1 and over h2 under spdymux bench, the spdymux gateway
# (serve -backend) and nghttpx -n1 in front of the same net/http HTTP/1.1
# backend (gateway and backend both on CPU 0, their CPU added up), and
# Apache httpd (event MPM, one child, mod_http2) serving the same 13 bytes
# as a file. A run whose load generator spoke anything but h2 (TLS) or h2c
# (cleartext) -- h2load falls back to http/1.1 silently -- fails its row.
#
# The scale group puts spdymux serve and net/http's HTTP/2 side by side at
# 1, 10, 100 and 1,000 h2c sessions (10 streams in flight each, spdymux
# bench -proto h2: req/s, p50, p99), and measures both at 1,000, 10,000
# and 50,000 idle sessions: over sockets up to the open-file limit, and at
# every count over in-memory connections (bench/cmd/benchidle).
#
# Everything it produces goes under bench/out/DATE/: raw outputs, the
# JSON-lines records (results.jsonl), memory.tsv, priority/*.json, CPU
# profiles (profile/*.pprof) and the report (report.md). The default run
# takes about 20 minutes; -only h2 about 9.
#
# Environment: BENCH_BASE_PORT (default 18400) moves the 24 loopback ports
# it uses; SPDYMUX_REV, when set, is the revision machine.txt records (for
# a run from an exported tree, which has no .git).
#
# Every load run is bounded in time (-d/-D/-n plus a kill timeout), every
# wait for a server or a helper is bounded, and every process started is
# stopped by its pid on exit. Only 127.0.0.1 is used.
set -euo pipefail

REPS=3
DUR=5
SESSIONS=10000
STREAMS=1000
INSTALL=1
ONLY=rps,h2,h1,download,priority,memory,scale,profile
while [ $# -gt 0 ]; do
	case "$1" in
	-long) REPS=5 DUR=15 ;;
	-reps) REPS=$2; shift ;;
	-duration) DUR=$2; shift ;;
	-sessions) SESSIONS=$2; shift ;;
	-streams) STREAMS=$2; shift ;;
	-skip-install) INSTALL=0 ;;
	-only) ONLY=$2; shift ;;
	-h | -help | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "run.sh: unknown argument $1 (see -h)" >&2; exit 2 ;;
	esac
	shift
done
want() { case ",$ONLY," in *",$1,"*) return 0 ;; esac; return 1; }

cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/bench/out/$(date +%Y%m%d-%H%M%S)
BIN=$OUT/bin
RAW=$OUT/raw
RESULTS=$OUT/results.jsonl
mkdir -p "$BIN" "$RAW" "$OUT/priority"
log() { printf '%s %s\n' "$(date +%T)" "$*" | tee -a "$OUT/run.log" >&2; }

# ---------------------------------------------------------------- install
if [ "$INSTALL" = 1 ]; then
	missing=()
	need() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
	want h1 && need wrk wrk
	need h2load nghttp2-client
	need taskset util-linux
	if want rps || want download || want memory; then
		need node nodejs
		need npm npm
	fi
	need jq jq
	need curl curl
	need openssl openssl
	if want h2; then
		need nghttpx nghttp2-proxy
		[ -x /usr/sbin/apache2 ] && [ -f /usr/lib/apache2/modules/mod_http2.so ] || missing+=(apache2)
	fi
	if [ ${#missing[@]} -gt 0 ]; then
		log "installing ${missing[*]}"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	fi
	command -v go >/dev/null || { echo "run.sh: Go (the version in go.mod) must be on PATH" >&2; exit 1; }
	if want rps || want download || want memory; then
		log "npm ci in internal/interop/node"
		(cd internal/interop/node && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
	fi
fi
NEED_NODE=0
if want rps || want download; then NEED_NODE=1; fi

log "building spdymux and bench/cmd/*"
go build -o "$BIN/" ./cmd/spdymux ./bench/cmd/benchserver ./bench/cmd/benchhold ./bench/cmd/benchprio ./bench/cmd/benchrun ./bench/cmd/benchidle

# As many open files as allowed: 10,000 sessions need 10,000 descriptors
# on each side.
ulimit -n 200000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt $((SESSIONS + 1000)) ]; then
	log "open-file limit $(ulimit -n) is below $((SESSIONS + 1000)); idle sessions cut to $(($(ulimit -n) - 1000))"
	SESSIONS=$(($(ulimit -n) - 1000))
fi

# Pin servers to CPU 0 and load generators to CPU 1 where there are two.
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
	SRV=(taskset -c 0)
	GEN=(taskset -c 1)
	PINNING="servers on CPU 0, load generators on CPU 1 (taskset)"
else
	SRV=()
	GEN=()
	PINNING="not pinned (fewer than two CPUs or no taskset)"
fi

# ---------------------------------------------------------------- machine
{
	echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
	echo "cpus: $(nproc)"
	echo "memory: $(free -g | awk '/^Mem:/ {print $2 " GiB"}')"
	echo "kernel: $(uname -sr)"
	echo "go: $(go version)"
	echo "node: $(node --version), spdy-transport $(jq -r .version internal/interop/node/node_modules/spdy-transport/package.json 2>/dev/null)"
	command -v wrk >/dev/null && echo "wrk: $(wrk -v 2>&1 | head -1)"
	echo "h2load: $(h2load --version 2>&1 | head -1)"
	if want h2; then
		echo "nghttpx: $(nghttpx --version 2>&1 | head -1)"
		echo "apache: $(/usr/sbin/apache2 -v 2>&1 | sed -n 's/^Server version: *//p'), mod_http2 $(dpkg-query -W -f='${Version}' apache2-bin 2>/dev/null)"
		echo "openssl: $(openssl version)"
	fi
	echo "spdymux: ${SPDYMUX_REV:-$(git describe --always --dirty 2>/dev/null || echo unknown)}"
	echo "pinning: $PINNING"
	echo "open files: $(ulimit -n)"
	echo "reps: $REPS, duration: ${DUR}s, sessions: $SESSIONS, streams: $STREAMS"
	echo "loadavg at start: $(cat /proc/loadavg)"
} >"$OUT/machine.txt"
cat "$OUT/machine.txt" >&2

# ---------------------------------------------------------------- servers
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME CMD...: start a server in the background, its pid in $LAST.
start() {
	local name=$1
	shift
	"$@" >"$OUT/$name.log" 2>&1 </dev/null &
	LAST=$!
	PIDS+=("$LAST")
}
stop() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	local keep=() p
	for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	PIDS=("${keep[@]}")
}

# waitport PORT: wait up to 20 s for a listener.
waitport() {
	for _ in $(seq 200); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "run.sh: nothing listens on port $1 after 20 s" >&2
	exit 1
}

P=${BENCH_BASE_PORT:-18400}
SPDY_TLS=$((P + 1))  # spdymux serve: TLS
SPDY_PLAIN=$((P + 2)) # spdymux serve: cleartext
GW_PLAIN=$((P + 3))   # spdymux serve -backend -backend-pipeline 0: cleartext
GW_TLS=$((P + 4))     # spdymux serve -backend -backend-pipeline 0: TLS (the h2 group)
BACKEND=$((P + 5))    # benchserver -h1: the gateway's backend
NODE_PLAIN=$((P + 6)) # node server.js --plain
NODE_TLS=$((P + 7))   # node server.js --tls
NH_H1=$((P + 8))      # benchserver: net/http HTTP/1.1
NH_H2C=$((P + 9))     # benchserver: net/http h2c
NH_H2TLS=$((P + 10))  # benchserver: net/http HTTP/2 over TLS
MEM=$((P + 11))       # benchserver for the memory figures
MEM_DEBUG=$((P + 12))
GW2_PLAIN=$((P + 13)) # spdymux serve -backend -backend-pipeline 0 -backend-max-idle 256: cleartext
GW2_TLS=$((P + 14))   # (TLS: the h2 group)
NODE_NAGLE=$((P + 15)) # node server.js --plain without TCP_NODELAY
NGX_PLAIN=$((P + 16))  # nghttpx -n1, h2c frontend, backend benchserver -h1
NGX_TLS=$((P + 17))    # nghttpx -n1, TLS frontend (h2 by ALPN)
AP_PLAIN=$((P + 18))   # Apache httpd with mod_http2: h2c and http/1.1
AP_TLS=$((P + 19))     # Apache httpd with mod_http2 and mod_ssl: h2 by ALPN
SEC_TLS=$((P + 20))    # spdymux serve -secondary-conns: TLS (the h2 group)
SEC_PLAIN=$((P + 21))  # spdymux serve -secondary-conns: cleartext
GW3_TLS=$((P + 22))    # spdymux serve -backend -backend-pipeline 0 -secondary-conns: TLS (the h2 group)
GW3_PLAIN=$((P + 23))  # spdymux serve -backend -backend-pipeline 0 -secondary-conns: cleartext
GW4_TLS=$((P + 24))    # spdymux serve -backend -backend-pipeline 32 (the default): TLS (the h2 group)
GW4_PLAIN=$((P + 25))  # spdymux serve -backend -backend-pipeline 32: cleartext
GW5_TLS=$((P + 26))    # spdymux serve -backend -backend-pipeline 32 -backend-pipeline-wait 0: TLS (the h2 group)
GW5_PLAIN=$((P + 27))  # spdymux serve -backend -backend-pipeline 32 -backend-pipeline-wait 0: cleartext

# tls_cert: a self-signed ECDSA P-256 certificate for 127.0.0.1 and
# localhost (the key type spdymux serve and benchserver make for
# themselves), for nghttpx and Apache.
tls_cert() {
	mkdir -p "$OUT/tls"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-keyout "$OUT/tls/key.pem" -out "$OUT/tls/cert.pem" -subj /CN=localhost \
		-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -addext "basicConstraints=critical,CA:FALSE" \
		>"$OUT/tls/openssl.log" 2>&1 || { cat "$OUT/tls/openssl.log" >&2; exit 1; }
}

# apache_conf DIR: a minimal Apache httpd configuration in DIR/conf for
# Debian's apache2 (modules from /usr/lib/apache2/modules, as
# internal/apachetest loads them): the event MPM with one child process
# (so that its CPU is one process's), HTTP/2 by mod_http2 on both ports
# (Protocols h2 h2c http/1.1; h2c with prior knowledge is mod_http2's
# H2Direct default on cleartext), TLS by mod_ssl on AP_TLS, no access log,
# and DIR/htdocs/hello: the demo's 13 bytes.
apache_conf() {
	local d=$1 m=/usr/lib/apache2/modules mod
	mkdir -p "$d/conf" "$d/logs" "$d/run" "$d/htdocs"
	printf 'hello, world\n' >"$d/htdocs/hello"
	# As root, Apache serves as www-data, which must reach the document root.
	chmod -R a+rX "$d"
	{
		echo "ServerRoot \"$d\""
		echo "ServerName 127.0.0.1"
		echo "Listen 127.0.0.1:$AP_PLAIN"
		echo "Listen 127.0.0.1:$AP_TLS"
		for mod in mpm_event authz_core mime http2 ssl socache_shmcb; do
			echo "LoadModule ${mod}_module $m/mod_$mod.so"
		done
		[ "$(id -u)" = 0 ] && printf 'User www-data\nGroup www-data\n'
		cat <<-EOF
			DefaultRuntimeDir "$d/run"
			PidFile "$d/run/httpd.pid"
			Mutex file:$d/run default
			ErrorLog "$d/logs/error.log"
			LogLevel warn
			TypesConfig /etc/mime.types
			Protocols h2 h2c http/1.1
			KeepAlive On
			MaxKeepAliveRequests 0
			KeepAliveTimeout 30
			StartServers 1
			ServerLimit 1
			ThreadsPerChild 64
			MaxRequestWorkers 64
			MinSpareThreads 1
			MaxSpareThreads 64
			SSLSessionCache shmcb:$d/run/ssl_scache(512000)
			DocumentRoot "$d/htdocs"
			<Directory />
			    AllowOverride None
			    Require all denied
			</Directory>
			<Directory "$d/htdocs">
			    Require all granted
			</Directory>
			<VirtualHost 127.0.0.1:$AP_TLS>
			    SSLEngine on
			    SSLCertificateFile "$OUT/tls/cert.pem"
			    SSLCertificateKeyFile "$OUT/tls/key.pem"
			</VirtualHost>
		EOF
	} >"$d/conf/httpd.conf"
}

# hello2 URL: GET /hello over HTTP/2 with curl (h2c with prior knowledge on
# http URLs, ALPN h2 on https); fails unless the answer is the 13 bytes
# over HTTP/2. The response headers go to h2-headers.txt.
hello2() {
	local u=$1 opt=(--http2-prior-knowledge) body
	case $u in https:*) opt=(-k --http2) ;; esac
	body=$(curl -sS --max-time 10 "${opt[@]}" -D "$OUT/h2-headers.tmp" -w '\n%{http_version}' "$u") ||
		{ echo "run.sh: no answer from $u" >&2; exit 1; }
	[ "$body" = "$(printf 'hello, world\n\n2')" ] || { echo "run.sh: not hello, world over HTTP/2 from $u: $body" >&2; exit 1; }
	{ echo "== $u"; tr -d '\r' <"$OUT/h2-headers.tmp"; } >>"$OUT/h2-headers.txt"
	rm -f "$OUT/h2-headers.tmp"
}

start_servers() {
	start spdymux "${SRV[@]}" "$BIN/spdymux" serve -listen 127.0.0.1:$SPDY_TLS -listen-plain 127.0.0.1:$SPDY_PLAIN -log-level error
	PID_SPDYMUX=$LAST
	start backend "${SRV[@]}" "$BIN/benchserver" -h1 127.0.0.1:$BACKEND
	PID_BACKEND=$LAST
	# The gateway rows gateway, gateway-idle256 and gateway-secondary send
	# one request at a time on each backend connection, as nghttpx does
	# (-backend-pipeline 0); gateway-pipeline32 is spdymux serve's default.
	start gateway "${SRV[@]}" "$BIN/spdymux" serve -listen 127.0.0.1:$GW_TLS -listen-plain 127.0.0.1:$GW_PLAIN -backend http://127.0.0.1:$BACKEND -backend-pipeline 0 -log-level error
	PID_GATEWAY=$LAST
	# The default -backend-max-idle (64) is below the 100 requests in
	# flight; this one keeps every backend connection.
	start gateway-idle256 "${SRV[@]}" "$BIN/spdymux" serve -listen 127.0.0.1:$GW2_TLS -listen-plain 127.0.0.1:$GW2_PLAIN -backend http://127.0.0.1:$BACKEND -backend-pipeline 0 -backend-max-idle 256 -log-level error
	PID_GATEWAY2=$LAST
	# The gateway pipelining GET and HEAD requests to the backend
	# (behind answers expected within -backend-pipeline-wait, 1 ms):
	# spdymux serve's default, spelled out.
	start gateway-pipeline32 "${SRV[@]}" "$BIN/spdymux" serve -listen 127.0.0.1:$GW4_TLS -listen-plain 127.0.0.1:$GW4_PLAIN -backend http://127.0.0.1:$BACKEND -backend-pipeline 32 -log-level error
	PID_GATEWAY4=$LAST
	PID_NODE_PLAIN='' PID_NODE_TLS='' PID_NODE_NAGLE=''
	local ports=($SPDY_TLS $SPDY_PLAIN $BACKEND $GW_PLAIN $GW2_PLAIN $GW4_PLAIN $NH_H1 $NH_H2C $NH_H2TLS)
	local hellos=(http://127.0.0.1:$SPDY_PLAIN/hello http://127.0.0.1:$GW_PLAIN/hello http://127.0.0.1:$GW2_PLAIN/hello http://127.0.0.1:$GW4_PLAIN/hello)
	if [ $NEED_NODE = 1 ]; then
		# node with TCP_NODELAY on its sockets, as Go sets it (bench/node/nodelay.js),
		# and once more as server.js runs by default, with Nagle's algorithm.
		start node-plain "${SRV[@]}" node -r ./bench/node/nodelay.js internal/interop/node/server.js --plain --protocol spdy/3.1 --port $NODE_PLAIN
		PID_NODE_PLAIN=$LAST
		start node-tls "${SRV[@]}" node -r ./bench/node/nodelay.js internal/interop/node/server.js --tls --protocol spdy/3.1 --port $NODE_TLS
		PID_NODE_TLS=$LAST
		start node-nagle "${SRV[@]}" node internal/interop/node/server.js --plain --protocol spdy/3.1 --port $NODE_NAGLE
		PID_NODE_NAGLE=$LAST
		ports+=($NODE_PLAIN $NODE_NAGLE $NODE_TLS)
		hellos+=(http://127.0.0.1:$NODE_PLAIN/hello http://127.0.0.1:$NODE_NAGLE/hello)
	fi
	start nethttp "${SRV[@]}" "$BIN/benchserver" -h1 127.0.0.1:$NH_H1 -h2c 127.0.0.1:$NH_H2C -h2tls 127.0.0.1:$NH_H2TLS
	PID_NETHTTP=$LAST
	PID_NGHTTPX='' PID_APACHE='' PID_SECONDARY='' PID_GATEWAY3='' PID_GATEWAY5=''
	if want h2; then
		tls_cert
		# nghttpx as the issue runs it: one worker (-n1), a cleartext (h2c)
		# and a TLS frontend, the same backend as the spdymux gateways; no
		# configuration file (Debian's sample is all comments anyway), no
		# OCSP fetch for the self-signed certificate. Its default logs no
		# access.
		start nghttpx "${SRV[@]}" nghttpx --conf=/dev/null --no-ocsp -n1 \
			"-f127.0.0.1,$NGX_PLAIN;no-tls" "-f127.0.0.1,$NGX_TLS" "-b127.0.0.1,$BACKEND" \
			"$OUT/tls/key.pem" "$OUT/tls/cert.pem"
		PID_NGHTTPX=$LAST
		apache_conf "$OUT/apache"
		start apache "${SRV[@]}" /usr/sbin/apache2 -d "$OUT/apache" -f "$OUT/apache/conf/httpd.conf" -DFOREGROUND
		PID_APACHE=$LAST
		# The same two spdymux servers as they ran before handler mode:
		# every stream an HTTP/1.1 exchange on a secondary connection.
		start spdymux-secondary "${SRV[@]}" "$BIN/spdymux" serve -secondary-conns -listen 127.0.0.1:$SEC_TLS -listen-plain 127.0.0.1:$SEC_PLAIN -log-level error
		PID_SECONDARY=$LAST
		start gateway-secondary "${SRV[@]}" "$BIN/spdymux" serve -secondary-conns -listen 127.0.0.1:$GW3_TLS -listen-plain 127.0.0.1:$GW3_PLAIN -backend http://127.0.0.1:$BACKEND -backend-pipeline 0 -log-level error
		PID_GATEWAY3=$LAST
		# ... only for requests that would wait for a connection.
		start gateway-pipeline32-nowait "${SRV[@]}" "$BIN/spdymux" serve -listen 127.0.0.1:$GW5_TLS -listen-plain 127.0.0.1:$GW5_PLAIN -backend http://127.0.0.1:$BACKEND -backend-pipeline 32 -backend-pipeline-wait 0 -log-level error
		PID_GATEWAY5=$LAST
		ports+=($GW_TLS $GW2_TLS $NGX_PLAIN $NGX_TLS $AP_PLAIN $AP_TLS $SEC_TLS $SEC_PLAIN $GW3_TLS $GW3_PLAIN $GW4_TLS $GW5_TLS $GW5_PLAIN)
	fi
	for port in "${ports[@]}"; do
		waitport $port
	done
	# The same 13 bytes from every server.
	for u in "${hellos[@]}"; do
		[ "$("$BIN/spdymux" get -timeout 10s "$u" 2>/dev/null)" = "hello, world" ] || { echo "run.sh: no hello from $u" >&2; exit 1; }
	done
	[ "$(curl -sS --max-time 10 http://127.0.0.1:$NH_H1/hello)" = "hello, world" ] || { echo "run.sh: no hello from net/http" >&2; exit 1; }
	if want h2; then
		: >"$OUT/h2-headers.txt"
		for port in $SPDY_PLAIN $NH_H2C $GW_PLAIN $GW2_PLAIN $NGX_PLAIN $AP_PLAIN $SEC_PLAIN $GW3_PLAIN $GW4_PLAIN $GW5_PLAIN; do hello2 http://127.0.0.1:$port/hello; done
		for port in $SPDY_TLS $NH_H2TLS $GW_TLS $GW2_TLS $NGX_TLS $AP_TLS $SEC_TLS $GW3_TLS $GW4_TLS $GW5_TLS; do hello2 https://127.0.0.1:$port/hello; done
	fi
}

# bench GROUP LABEL REP PIDS CMD...: one measured load run. The CPU time
# of the PIDS and of their descendants is the server's. With WANT=P,Q in
# the environment, the run fails unless the load generator spoke P or Q.
bench() {
	local group=$1 label=$2 rep=$3 pids=$4
	shift 4
	"$BIN/benchrun" run -results "$RESULTS" -group "$group" -label "$label" -rep "$rep" -pids "$pids" \
		-want-proto "${WANT:-}" -raw "$RAW/$group.$label.$rep.txt" -timeout $((DUR * 4 + 60))s -- "${GEN[@]}" "$@"
}
# warm CMD...: an unmeasured run, bounded.
warm() { timeout 60 "${GEN[@]}" "$@" >/dev/null 2>&1 || true; }

SB=("$BIN/spdymux" bench -progress 0 -json -timeout 10s)

# Request rate: 100 requests in flight, over 1 connection (c1m100) or 10
# (c10m10), each server with the same load generator where it speaks the
# protocol (spdymux bench for SPDY, h2load for HTTP/2).
rps_round() {
	local rep=$1 g c m
	for shape in "1 100" "10 10"; do
		read -r c m <<<"$shape"
		g=c${c}m${m}
		bench $g spdymux-plain $rep $PID_SPDYMUX "${SB[@]}" -c $c -m $m -D ${DUR}s http://127.0.0.1:$SPDY_PLAIN/hello
		bench $g node-plain $rep $PID_NODE_PLAIN "${SB[@]}" -c $c -m $m -D ${DUR}s http://127.0.0.1:$NODE_PLAIN/hello
		bench $g gateway-plain $rep $PID_GATEWAY,$PID_BACKEND "${SB[@]}" -c $c -m $m -D ${DUR}s http://127.0.0.1:$GW_PLAIN/hello
		bench $g gateway-idle256-plain $rep $PID_GATEWAY2,$PID_BACKEND "${SB[@]}" -c $c -m $m -D ${DUR}s http://127.0.0.1:$GW2_PLAIN/hello
		bench $g gateway-pipeline32-plain $rep $PID_GATEWAY4,$PID_BACKEND "${SB[@]}" -c $c -m $m -D ${DUR}s http://127.0.0.1:$GW4_PLAIN/hello
		WANT=h2c bench $g nethttp-h2c-h2load $rep $PID_NETHTTP h2load -c $c -m $m -D $DUR http://127.0.0.1:$NH_H2C/hello
		bench $g spdymux-tls $rep $PID_SPDYMUX "${SB[@]}" -k -c $c -m $m -D ${DUR}s https://127.0.0.1:$SPDY_TLS/hello
		bench $g node-tls $rep $PID_NODE_TLS "${SB[@]}" -k -c $c -m $m -D ${DUR}s https://127.0.0.1:$NODE_TLS/hello
		WANT=h2 bench $g nethttp-h2tls-h2load $rep $PID_NETHTTP h2load -c $c -m $m -D $DUR https://127.0.0.1:$NH_H2TLS/hello
	done
	# One request at a time over one connection: latency, and what
	# Nagle's algorithm does to node's server.js as it runs by default.
	bench c1m1 spdymux-plain $rep $PID_SPDYMUX "${SB[@]}" -c 1 -m 1 -D ${DUR}s http://127.0.0.1:$SPDY_PLAIN/hello
	bench c1m1 node-plain $rep $PID_NODE_PLAIN "${SB[@]}" -c 1 -m 1 -D ${DUR}s http://127.0.0.1:$NODE_PLAIN/hello
	bench c1m1 node-plain-nagle $rep $PID_NODE_NAGLE "${SB[@]}" -c 1 -m 1 -D ${DUR}s http://127.0.0.1:$NODE_NAGLE/hello
	WANT=h2c bench c1m1 nethttp-h2c-h2load $rep $PID_NETHTTP h2load -c 1 -m 1 -D $DUR http://127.0.0.1:$NH_H2C/hello
	bench c1m100 node-plain-nagle $rep $PID_NODE_NAGLE "${SB[@]}" -c 1 -m 100 -D ${DUR}s http://127.0.0.1:$NODE_NAGLE/hello
}

# HTTP/2 side by side, per shape (-c 1 -m 100, -c 10 -m 10) and transport
# (TLS: h2 by ALPN; plain: h2c with prior knowledge), one group each:
#   spdymux-h2         spdymux serve (demo site, handler mode), h2load
#   spdymux-h2-secondary  spdymux serve -secondary-conns (every stream an
#                      HTTP/1.1 exchange on a secondary connection), h2load
#   nethttp-h2         net/http's own HTTP/2 (benchserver -h2tls, -h2c), h2load
#   spdymux-spdy31     spdymux serve over spdy/3.1, spdymux bench
#   spdymux-h2-sb      spdymux serve over HTTP/2, spdymux bench -proto h2
#                      (the same load generator as spdymux-spdy31)
#   gateway            spdymux serve -backend -backend-pipeline 0 (one request
#                      at a time on each backend connection; default
#                      -backend-max-idle 64) + benchserver -h1, h2load; CPU of both
#   gateway-idle256    the same with -backend-max-idle 256
#   gateway-secondary  spdymux serve -backend -secondary-conns + the same
#                      backend, h2load; CPU of both
#   gateway-pipeline32 spdymux serve -backend -backend-pipeline 32 (the
#                      default) + the same backend, h2load; CPU of both
#   gateway-pipeline32-nowait  the same with -backend-pipeline-wait 0: only
#                      requests that would wait for a connection pipeline
#   nghttpx            nghttpx -n1 + the same benchserver -h1, h2load; CPU of both
#   backend-alone      (cleartext groups) the same benchserver -h1 with no
#                      proxy, h2load --h1 pipelining -m requests on each of -c
#                      connections: what the backend can do with the whole
#                      core, the ceiling of any gateway in front of it
#   apache             Apache httpd, mod_http2, the file htdocs/hello, h2load
h2_round() {
	local rep=$1 c m g tr s want sp nh gw gw2 gw3 gw4 gw5 sec ngx ap k
	for shape in "1 100" "10 10"; do
		read -r c m <<<"$shape"
		for tr in tls plain; do
			g=h2-c${c}m${m}-$tr
			if [ $tr = tls ]; then
				s=https want=h2 k=-k
				sp=$SPDY_TLS nh=$NH_H2TLS gw=$GW_TLS gw2=$GW2_TLS ngx=$NGX_TLS ap=$AP_TLS sec=$SEC_TLS gw3=$GW3_TLS gw4=$GW4_TLS gw5=$GW5_TLS
			else
				s=http want=h2c k=
				sp=$SPDY_PLAIN nh=$NH_H2C gw=$GW_PLAIN gw2=$GW2_PLAIN ngx=$NGX_PLAIN ap=$AP_PLAIN sec=$SEC_PLAIN gw3=$GW3_PLAIN gw4=$GW4_PLAIN gw5=$GW5_PLAIN
			fi
			local H2=(h2load -c $c -m $m -D $DUR)
			WANT=$want bench $g spdymux-h2 $rep $PID_SPDYMUX "${H2[@]}" $s://127.0.0.1:$sp/hello
			WANT=$want bench $g spdymux-h2-secondary $rep $PID_SECONDARY "${H2[@]}" $s://127.0.0.1:$sec/hello
			WANT=$want bench $g nethttp-h2 $rep $PID_NETHTTP "${H2[@]}" $s://127.0.0.1:$nh/hello
			WANT=spdy/3.1 bench $g spdymux-spdy31 $rep $PID_SPDYMUX "${SB[@]}" $k -c $c -m $m -D ${DUR}s $s://127.0.0.1:$sp/hello
			WANT=$want bench $g spdymux-h2-sb $rep $PID_SPDYMUX "${SB[@]}" -proto h2 $k -c $c -m $m -D ${DUR}s $s://127.0.0.1:$sp/hello
			WANT=$want bench $g gateway $rep $PID_GATEWAY,$PID_BACKEND "${H2[@]}" $s://127.0.0.1:$gw/hello
			WANT=$want bench $g gateway-idle256 $rep $PID_GATEWAY2,$PID_BACKEND "${H2[@]}" $s://127.0.0.1:$gw2/hello
			WANT=$want bench $g gateway-secondary $rep $PID_GATEWAY3,$PID_BACKEND "${H2[@]}" $s://127.0.0.1:$gw3/hello
			WANT=$want bench $g gateway-pipeline32 $rep $PID_GATEWAY4,$PID_BACKEND "${H2[@]}" $s://127.0.0.1:$gw4/hello
			WANT=$want bench $g gateway-pipeline32-nowait $rep $PID_GATEWAY5,$PID_BACKEND "${H2[@]}" $s://127.0.0.1:$gw5/hello
			WANT=$want bench $g nghttpx $rep $PID_NGHTTPX,$PID_BACKEND "${H2[@]}" $s://127.0.0.1:$ngx/hello
			WANT=$want bench $g apache $rep $PID_APACHE "${H2[@]}" $s://127.0.0.1:$ap/hello
			if [ $tr = plain ]; then
				WANT=http/1.1 bench $g backend-alone $rep $PID_BACKEND h2load --h1 -c $c -m $m -D $DUR http://127.0.0.1:$BACKEND/hello
			fi
		done
	done
}

# HTTP/1.1: net/http under wrk and under spdymux bench -proto http/1.1,
# one request at a time per connection.
h1_round() {
	local rep=$1
	for c in 10 100; do
		bench h1 nethttp-h1-wrk-c$c $rep $PID_NETHTTP wrk -t1 -c$c -d${DUR}s --latency http://127.0.0.1:$NH_H1/hello
		bench h1 nethttp-h1-spdymuxbench-c$c $rep $PID_NETHTTP "${SB[@]}" -proto http/1.1 -c $c -D ${DUR}s http://127.0.0.1:$NH_H1/hello
		bench h1 spdymux-h1-wrk-c$c $rep $PID_SPDYMUX wrk -t1 -c$c -d${DUR}s --latency http://127.0.0.1:$SPDY_PLAIN/hello
	done
}

# One 256 MiB download over one stream.
download_round() {
	local rep=$1 n=268435456
	bench download spdymux-plain $rep $PID_SPDYMUX "${SB[@]}" -c 1 -m 1 -n 1 -timeout 60s http://127.0.0.1:$SPDY_PLAIN/bytes/$n
	bench download spdymux-tls $rep $PID_SPDYMUX "${SB[@]}" -k -c 1 -m 1 -n 1 -timeout 60s https://127.0.0.1:$SPDY_TLS/bytes/$n
	bench download node-plain $rep $PID_NODE_PLAIN "${SB[@]}" -c 1 -m 1 -n 1 -timeout 60s http://127.0.0.1:$NODE_PLAIN/bytes/$n
	bench download node-tls $rep $PID_NODE_TLS "${SB[@]}" -k -c 1 -m 1 -n 1 -timeout 60s https://127.0.0.1:$NODE_TLS/bytes/$n
	bench download nethttp-h1 $rep $PID_NETHTTP "${SB[@]}" -proto http/1.1 -c 1 -n 1 -timeout 60s http://127.0.0.1:$NH_H1/bytes/$n
	WANT=h2c bench download nethttp-h2c-h2load $rep $PID_NETHTTP h2load -c 1 -m 1 -n 1 http://127.0.0.1:$NH_H2C/bytes/$n
	WANT=h2 bench download nethttp-h2tls-h2load $rep $PID_NETHTTP h2load -c 1 -m 1 -n 1 https://127.0.0.1:$NH_H2TLS/bytes/$n
}

# Priority: time to first byte of GET /hello on an idle session, and while
# eight priority-7 64 MiB downloads run on the same session.
priority_round() {
	local rep=$1
	# The control runs the downloads on a second session: the same load on
	# the machine, but not on the session of the measured request.
	# HTTP/2 (RFC 9218 urgency in the priority field) the same way, and
	# net/http's HTTP/2 for comparison.
	for t in "spdymux-plain http://127.0.0.1:$SPDY_PLAIN" "spdymux-tls https://127.0.0.1:$SPDY_TLS" \
		"spdymux-plain-separate http://127.0.0.1:$SPDY_PLAIN -separate" \
		"spdymux-h2c http://127.0.0.1:$SPDY_PLAIN -proto h2" "spdymux-h2 https://127.0.0.1:$SPDY_TLS -proto h2" \
		"spdymux-h2c-separate http://127.0.0.1:$SPDY_PLAIN -proto h2 -separate" \
		"nethttp-h2c http://127.0.0.1:$NH_H2C -proto h2"; do
		read -r name url extra <<<"$t"
		timeout 150 "${GEN[@]}" "$BIN/benchprio" -url "$url" -timeout 120s $extra >"$OUT/priority/$name.$rep.json" 2>"$RAW/priority.$name.$rep.err" ||
			log "priority $name rep $rep failed: $(tail -1 "$RAW/priority.$name.$rep.err")"
		[ -s "$OUT/priority/$name.$rep.json" ] && jq -r --arg n "$name" --arg r "$rep" \
			'"  priority \($n) rep \($r): idle p50 \(.idle.p50_ms) ms; loaded prio0 p50 \(.loaded_prio0.p50_ms) ms (n \(.loaded_prio0.n)); loaded prio7 p50 \(.loaded_prio7.p50_ms) ms"' \
			"$OUT/priority/$name.$rep.json" >&2 || true
	done
}

# Memory: a fresh server per figure; baseline after a forced GC, then the
# same with N idle connections (each did one /hello) or N requests held on
# /slow. Heap and stacks from /debug/gc (benchserver -debug, the spdymux
# Listener configured as `spdymux serve` does), RSS from /proc/PID/status.
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
memfig() { # PID [DEBUGPORT]: "heap stack rss goroutines" (bytes)
	local pid=$1 dbg=${2:-}
	if [ -n "$dbg" ]; then
		curl -sS --max-time 30 "http://127.0.0.1:$dbg/debug/gc" | jq -r --arg rss "$(rss_kib "$pid")" \
			'"\(.heap_alloc) \(.stack_inuse) \(($rss|tonumber)*1024) \(.goroutines)"'
	else
		echo "0 0 $(($(rss_kib "$pid") * 1024)) 0"
	fi
}
# hold SERVERPID PORT DEBUGPORT PROTO KIND N: prints one memory.tsv line,
# named LABEL when that is set, else PROTO.
hold() {
	local spid=$1 port=$2 dbg=$3 proto=$4 kind=$5 n=$6 before after hpid ready=0
	local name=${LABEL:-$proto}
	local hout=$RAW/hold.${HOLDTAG:-go}.${name//\//_}.$kind.out
	sleep 0.5
	before=$(memfig "$spid" "$dbg")
	# shellcheck disable=SC2086 # HOLDARGS: extra flags, word-split
	"${GEN[@]}" "$BIN/benchhold" -addr 127.0.0.1:$port -proto "$proto" -$kind "$n" -hold 180s -stdin=false -timeout 30s ${HOLDARGS:-} \
		>"$hout" 2>&1 </dev/null &
	hpid=$!
	PIDS+=("$hpid")
	for _ in $(seq 1200); do # up to 120 s
		if grep -q '^ready' "$hout"; then ready=1; break; fi
		kill -0 "$hpid" 2>/dev/null || break
		sleep 0.1
	done
	if [ $ready = 0 ]; then
		log "benchhold $proto -$kind $n did not get ready: $(tail -2 "$hout")"
		stop "$hpid"
		return
	fi
	sleep 3 # let the last handlers start (active) or finish (idle)
	after=$(memfig "$spid" "$dbg")
	stop "$hpid"
	local line
	line=$(printf '%s\t%s\t%s\t%s\t%s\n' "${LABEL:-$proto}" "$kind" "$n" "$before" "$after" | tr ' ' '\t')
	echo "$line" >>"$OUT/memory.tsv"
	echo "$line" | awk -F'\t' '{printf "  memory %-9s %-6s %6d: heap %8.0f B, stacks %7.0f B, RSS %8.0f B each; goroutines %d -> %d\n", $1, $2, $3, ($8-$4)/$3, ($9-$5)/$3, ($10-$6)/$3, $7, $11}' >&2
}
memory() {
	printf 'proto\tkind\tn\theap_before\tstack_before\trss_before\tgoroutines_before\theap_after\tstack_after\trss_after\tgoroutines_after\n' >"$OUT/memory.tsv"
	# Worker slots for every held request: the pool keeps a sixteenth of
	# them for sessions that hold none.
	# label, client protocol, benchserver flags: spdymux (handler mode,
	# as serve runs) over spdy/3.1 and h2c, spdymux with secondary
	# connections, net/http's HTTP/1.1 and HTTP/2.
	for t in "spdy/3.1 spdy/3.1 -spdy" "spdymux-h2c h2c -spdy" "spdymux-secondary-spdy/3.1 spdy/3.1 -spdy -secondary-conns" \
		"http/1.1 http/1.1 -h1" "h2c h2c -h2c"; do
		read -r label proto flag extra <<<"$t"
		for kind in idle active; do
			n=$SESSIONS
			[ $kind = active ] && n=$STREAMS
			start mem "${SRV[@]}" "$BIN/benchserver" $flag 127.0.0.1:$MEM $extra -debug 127.0.0.1:$MEM_DEBUG -workers $((STREAMS * 16 / 15 + 64))
			local mp=$LAST
			waitport $MEM
			waitport $MEM_DEBUG
			LABEL=$label hold $mp $MEM $MEM_DEBUG "$proto" $kind $n
			stop $mp
		done
	done
	# Idle sessions over TLS (ALPN h2), where the TLS connection's own
	# buffers add to the session's: spdymux in handler mode against
	# net/http's HTTP/2.
	for t in "spdymux-h2-tls -spdy-tls" "h2-tls -h2tls"; do
		read -r label flag <<<"$t"
		start mem "${SRV[@]}" "$BIN/benchserver" $flag 127.0.0.1:$MEM -debug 127.0.0.1:$MEM_DEBUG -workers $((STREAMS * 16 / 15 + 64))
		local tp=$LAST
		waitport $MEM
		waitport $MEM_DEBUG
		HOLDARGS=-tls LABEL=$label hold $tp $MEM $MEM_DEBUG h2c idle $SESSIONS
		stop $tp
	done
	# node's spdy-transport: RSS only.
	start mem-node "${SRV[@]}" node -r ./bench/node/nodelay.js internal/interop/node/server.js --plain --protocol spdy/3.1 --port $MEM
	local np=$LAST
	waitport $MEM
	HOLDTAG=node hold $np $MEM "" spdy/3.1 idle $SESSIONS
	stop $np
	sed -i '$ s/^spdy\/3.1/node-spdy\/3.1/' "$OUT/memory.tsv"
}

# Scale, rate: HTTP/2 (h2c) at 1, 10, 100 and 1,000 sessions with 10
# streams in flight each, spdymux serve against net/http's HTTP/2, with
# spdymux bench -proto h2 (it reports p50 and p99) as the load for both.
scale_round() {
	local rep=$1 n
	for n in 1 10 100 1000; do
		WANT=h2c bench scale-c${n}m10 spdymux-h2c $rep $PID_SPDYMUX "${SB[@]}" -proto h2 -c $n -m 10 -D ${DUR}s http://127.0.0.1:$SPDY_PLAIN/hello
		WANT=h2c bench scale-c${n}m10 nethttp-h2c $rep $PID_NETHTTP "${SB[@]}" -proto h2 -c $n -m 10 -D ${DUR}s http://127.0.0.1:$NH_H2C/hello
	done
}

# Scale, memory: RSS, heap and stacks at 1,000, 10,000 and 50,000 idle
# h2c sessions (each did one GET /hello), spdymux (benchserver -spdy, as
# serve runs) against net/http's HTTP/2. Server and client each hold one
# socket per session, so a count above the open-file limit is measured
# only in memory: benchidle serves the same handler with the same server
# code over net.Pipe connections in one process (scale-inmem.jsonl). It
# runs at every count, so that its figures can be checked against the
# socket figures where both exist.
scale_memory() {
	local n t label flag limit s
	limit=$(ulimit -n)
	: >"$OUT/scale-inmem.jsonl"
	for n in 1000 10000 50000; do
		for s in spdymux nethttp; do
			if ! "${SRV[@]}" "$BIN/benchidle" -server $s -n $n >>"$OUT/scale-inmem.jsonl" 2>"$RAW/benchidle.$s.$n.err"; then
				log "benchidle -server $s -n $n failed: $(tail -1 "$RAW/benchidle.$s.$n.err")"
				continue
			fi
			tail -1 "$OUT/scale-inmem.jsonl" | jq -r '"  memory (in memory) \(.server) \(.sessions) idle: heap \(.heap_bytes_each|floor) B, stacks \(.stack_bytes_each|floor) B, RSS \(.rss_bytes_each|floor) B each (\(.rss_bytes_total/1048576|floor) MiB); pipes \(.pipe_heap_bytes_each|floor) B each"' >&2
		done
		if [ $((n + 1000)) -gt "$limit" ]; then
			log "scale: $n idle sessions over sockets skipped: the open-file limit is $limit"
			continue
		fi
		for t in "scale-spdymux-h2c -spdy" "scale-nethttp-h2c -h2c"; do
			read -r label flag <<<"$t"
			start mem "${SRV[@]}" "$BIN/benchserver" $flag 127.0.0.1:$MEM -debug 127.0.0.1:$MEM_DEBUG
			local mp=$LAST
			waitport $MEM
			waitport $MEM_DEBUG
			LABEL=$label hold $mp $MEM $MEM_DEBUG h2c idle $n
			stop $mp
		done
	done
}

# Profiles: a CPU profile of the server under -c 1 -m 100 for spdymux
# (benchserver -spdy and -spdy-tls: the Listener as `spdymux serve` sets
# it up, with pprof) over spdy/3.1 (spdymux bench), h2c and h2 (h2load),
# and for net/http's HTTP/2 (benchserver -h2c, -h2tls), and their top
# functions by cumulative and by own time.
profile() {
	mkdir -p "$OUT/profile"
	local t name flag scheme gen want k
	for t in "spdymux -spdy http sb spdy/3.1" "spdymux-h2c -spdy http h2load h2c" "spdymux-h2tls -spdy-tls https h2load h2" \
		"nethttp-h2c -h2c http h2load h2c" "nethttp-h2tls -h2tls https h2load h2"; do
		read -r name flag scheme gen want <<<"$t"
		start prof "${SRV[@]}" "$BIN/benchserver" $flag 127.0.0.1:$MEM -debug 127.0.0.1:$MEM_DEBUG
		local pp=$LAST
		waitport $MEM
		waitport $MEM_DEBUG
		local u=$scheme://127.0.0.1:$MEM/hello
		if [ $gen = sb ]; then
			k=
			[ $scheme = https ] && k=-k
			warm "${SB[@]}" $k -c 1 -m 100 -D 1s "$u"
			timeout $((DUR + 60)) "${GEN[@]}" "${SB[@]}" $k -c 1 -m 100 -D $((DUR + 2))s "$u" >"$RAW/profile.$name.load.txt" 2>&1 &
		else
			warm h2load -c 1 -m 100 -D 1 "$u"
			timeout $((DUR + 60)) "${GEN[@]}" h2load -c 1 -m 100 -D $((DUR + 2)) "$u" >"$RAW/profile.$name.load.txt" 2>&1 &
		fi
		local lp=$!
		sleep 1
		curl -sS --max-time $((DUR + 30)) -o "$OUT/profile/$name.pprof" "http://127.0.0.1:$MEM_DEBUG/debug/pprof/profile?seconds=$DUR"
		wait $lp || true
		stop $pp
		local got
		got=$(sed -n 's/^Application protocol: //p; s/.*"proto": *"\([^"]*\)".*/\1/p' "$RAW/profile.$name.load.txt" | head -1)
		[ "$got" = "$want" ] || log "profile $name: the load spoke ${got:-nothing}, not $want; this profile is not of $want"
		go tool pprof -top -cum -nodecount=60 "$BIN/benchserver" "$OUT/profile/$name.pprof" >"$OUT/profile/$name.top-cum.txt" 2>/dev/null || true
		go tool pprof -top -nodecount=40 "$BIN/benchserver" "$OUT/profile/$name.pprof" >"$OUT/profile/$name.top-flat.txt" 2>/dev/null || true
		log "profile $name ($got): $(sed -n 's/^Duration.*Total samples = //p' "$OUT/profile/$name.top-flat.txt")"
	done
}

# ---------------------------------------------------------------- runs
START=$(date +%s)
start_servers
log "servers up: spdymux $PID_SPDYMUX, gateways $PID_GATEWAY, $PID_GATEWAY2 and $PID_GATEWAY4 (backend $PID_BACKEND), node ${PID_NODE_PLAIN:--}/${PID_NODE_TLS:--}/${PID_NODE_NAGLE:--}, net/http $PID_NETHTTP, nghttpx ${PID_NGHTTPX:--}, apache ${PID_APACHE:--}"

if want rps || want h1; then
	log "warming up every server for 1 s"
	for u in http://127.0.0.1:$SPDY_PLAIN/hello http://127.0.0.1:$GW_PLAIN/hello http://127.0.0.1:$GW2_PLAIN/hello http://127.0.0.1:$GW4_PLAIN/hello http://127.0.0.1:$NODE_PLAIN/hello; do
		warm "${SB[@]}" -c 10 -m 10 -D 1s "$u"
	done
	for u in https://127.0.0.1:$SPDY_TLS/hello https://127.0.0.1:$NODE_TLS/hello; do
		warm "${SB[@]}" -k -c 10 -m 10 -D 1s "$u"
	done
	warm h2load -c 10 -m 10 -D 1 http://127.0.0.1:$NH_H2C/hello
	warm h2load -c 10 -m 10 -D 1 https://127.0.0.1:$NH_H2TLS/hello
	want h1 && warm wrk -t1 -c10 -d1s http://127.0.0.1:$NH_H1/hello
fi
if want h2; then
	log "warming up every HTTP/2 server for 1 s"
	for port in $SPDY_PLAIN $NH_H2C $GW_PLAIN $GW2_PLAIN $NGX_PLAIN $AP_PLAIN $SEC_PLAIN $GW3_PLAIN; do
		warm h2load -c 10 -m 10 -D 1 http://127.0.0.1:$port/hello
	done
	for port in $SPDY_TLS $NH_H2TLS $GW_TLS $GW2_TLS $NGX_TLS $AP_TLS $SEC_TLS $GW3_TLS; do
		warm h2load -c 10 -m 10 -D 1 https://127.0.0.1:$port/hello
	done
fi
for rep in $(seq "$REPS"); do
	want rps && { log "request rate, repetition $rep of $REPS"; rps_round "$rep"; }
	want h2 && { log "HTTP/2 side by side, repetition $rep of $REPS"; h2_round "$rep"; }
	want h1 && { log "HTTP/1.1 load generators, repetition $rep of $REPS"; h1_round "$rep"; }
	want download && { log "256 MiB downloads, repetition $rep of $REPS"; download_round "$rep"; }
	want priority && { log "priority, repetition $rep of $REPS"; priority_round "$rep"; }
	want scale && { log "scale: 1 to 1,000 sessions, repetition $rep of $REPS"; scale_round "$rep"; }
done
if want memory; then
	log "memory: $SESSIONS idle connections, $STREAMS active requests"
	memory
fi
if want scale; then
	log "scale: memory at 1,000 to 50,000 idle sessions"
	[ -s "$OUT/memory.tsv" ] || printf 'proto\tkind\tn\theap_before\tstack_before\trss_before\tgoroutines_before\theap_after\tstack_after\trss_after\tgoroutines_after\n' >"$OUT/memory.tsv"
	scale_memory
fi
if want profile; then
	log "CPU profiles at -c 1 -m 100"
	profile
fi
END=$(date +%s)

# ---------------------------------------------------------------- report
{
	echo "# spdymux benchmark run $(basename "$OUT")"
	echo
	echo '```'
	cat "$OUT/machine.txt"
	echo "loadavg at end: $(cat /proc/loadavg)"
	echo "wall time: $((END - START)) s"
	echo '```'
	if [ -s "$RESULTS" ]; then
		ratios=()
		for g in c1m100 c10m10; do
			ratios+=(-ratio "$g:spdymux-plain/node-plain" -ratio "$g:spdymux-tls/node-tls"
				-ratio "$g:gateway-plain/spdymux-plain" -ratio "$g:gateway-idle256-plain/spdymux-plain" -ratio "$g:gateway-pipeline32-plain/spdymux-plain" -ratio "$g:gateway-pipeline32-plain/gateway-plain" -ratio "$g:spdymux-plain/nethttp-h2c-h2load"
				-ratio "$g:spdymux-tls/nethttp-h2tls-h2load")
		done
		ratios+=(-ratio "c1m1:spdymux-plain/node-plain" -ratio "c1m1:spdymux-plain/nethttp-h2c-h2load" -ratio "c1m100:node-plain/node-plain-nagle"
			-ratio "h1:nethttp-h1-spdymuxbench-c10/nethttp-h1-wrk-c10" -ratio "h1:nethttp-h1-spdymuxbench-c100/nethttp-h1-wrk-c100"
			-ratio "h1:spdymux-h1-wrk-c10/nethttp-h1-wrk-c10" -ratio "h1:spdymux-h1-wrk-c100/nethttp-h1-wrk-c100"
			-ratio "download:spdymux-plain/nethttp-h2c-h2load" -ratio "download:spdymux-tls/nethttp-h2tls-h2load"
			-ratio "download:spdymux-plain/node-plain" -ratio "download:spdymux-tls/node-tls"
			-ratio "download:spdymux-tls/spdymux-plain")
		for g in h2-c1m100-tls h2-c1m100-plain h2-c10m10-tls h2-c10m10-plain; do
			ratios+=(-ratio "$g:spdymux-h2/nethttp-h2" -ratio "$g:spdymux-h2/spdymux-h2-secondary" -ratio "$g:spdymux-h2-secondary/nethttp-h2"
				-ratio "$g:spdymux-h2/spdymux-spdy31" -ratio "$g:spdymux-h2-sb/spdymux-spdy31"
				-ratio "$g:spdymux-h2/apache" -ratio "$g:nethttp-h2/apache"
				-ratio "$g:gateway/nghttpx" -ratio "$g:gateway-idle256/nghttpx" -ratio "$g:gateway/gateway-secondary" -ratio "$g:gateway-secondary/nghttpx" -ratio "$g:gateway-pipeline32/nghttpx" -ratio "$g:gateway-pipeline32/gateway" -ratio "$g:gateway-pipeline32-nowait/nghttpx" -ratio "$g:gateway-pipeline32/spdymux-h2" -ratio "$g:gateway/spdymux-h2" -ratio "$g:nghttpx/spdymux-h2")
		done
		for g in h2-c1m100-plain h2-c10m10-plain; do
			ratios+=(-ratio "$g:backend-alone/spdymux-h2" -ratio "$g:backend-alone/spdymux-spdy31" -ratio "$g:gateway-pipeline32/backend-alone" -ratio "$g:nghttpx/backend-alone")
		done
		"$BIN/benchrun" table -results "$RESULTS" "${ratios[@]}"
	fi
	if ls "$OUT"/priority/*.json >/dev/null 2>&1; then
		echo
		echo "### priority (time to first byte of GET /hello, ms; medians over repetitions of each run's p50/p90)"
		echo
		echo "| server | reps | idle p50 | idle p90 | loaded, prio 0: p50 | p90 | n | loaded, prio 7: p50 | p90 | n | downloads MB/s |"
		echo "|---|---|---|---|---|---|---|---|---|---|---|"
		for name in spdymux-plain spdymux-tls spdymux-plain-separate spdymux-h2c spdymux-h2 spdymux-h2c-separate nethttp-h2c; do
			ls "$OUT"/priority/$name.*.json >/dev/null 2>&1 || continue
			jq -s -r --arg n "$name" 'def med: sort | .[(length/2|floor)];
				[$n, (length|tostring),
				 ([.[].idle.p50_ms]|med), ([.[].idle.p90_ms]|med),
				 ([.[].loaded_prio0.p50_ms]|med), ([.[].loaded_prio0.p90_ms]|med), ([.[].loaded_prio0.n]|add),
				 ([.[].loaded_prio7.p50_ms]|med), ([.[].loaded_prio7.p90_ms]|med), ([.[].loaded_prio7.n]|add),
				 (([.[].download_bytes_per_s]|med)/1e6|floor)] | map(tostring) | "| " + join(" | ") + " |"' \
				$(ls "$OUT"/priority/$name.*.json | while read -r f; do [ -s "$f" ] && echo "$f"; done)
		done
	fi
	if [ -s "$OUT/memory.tsv" ]; then
		echo
		echo "### memory per idle connection (each served one GET /hello) and per active request (GET /slow held)"
		echo
		echo "| server | kind | n | heap B each | goroutine stacks B each | RSS B each | goroutines before → after |"
		echo "|---|---|---|---|---|---|---|"
		awk -F'\t' 'NR > 1 {srv = ($1 ~ /^node/) ? "node spdy-transport, spdy/3.1" : "Go: " $1; if ($1 == "spdy/3.1") srv = "spdymux, spdy/3.1";
			if ($1 ~ /^spdymux-/) srv = $1;
			if ($8 == 0) printf "| %s | %s | %d | – | – | %.0f | – |\n", srv, $2, $3, ($10-$6)/$3;
			else printf "| %s | %s | %d | %.0f | %.0f | %.0f | %d → %d |\n", srv, $2, $3, ($8-$4)/$3, ($9-$5)/$3, ($10-$6)/$3, $7, $11}' "$OUT/memory.tsv"
	fi
	if [ -s "$OUT/scale-inmem.jsonl" ]; then
		echo
		echo "### idle h2c sessions over in-memory connections (benchidle; pipes left out of heap and stacks, not of RSS)"
		echo
		echo "| server | sessions | heap B each | goroutine stacks B each | RSS B each | RSS total MiB | pipes B each | goroutines before → after |"
		echo "|---|---|---|---|---|---|---|---|"
		jq -r '"| \(.server) | \(.sessions) | \(.heap_bytes_each|floor) | \(.stack_bytes_each|floor) | \(.rss_bytes_each|floor) | \(.rss_bytes_total/1048576|floor) | \(.pipe_heap_bytes_each|floor) | \(.goroutines[0]) → \(.goroutines[1]) |"' "$OUT/scale-inmem.jsonl"
	fi
	for name in spdymux spdymux-h2c spdymux-h2tls nethttp-h2c nethttp-h2tls; do
		[ -s "$OUT/profile/$name.top-flat.txt" ] || continue
		echo
		echo "### CPU profile of the server at -c 1 -m 100: $name (top 25 by own time)"
		echo
		echo '```'
		sed -n '1,/flat%/p' "$OUT/profile/$name.top-flat.txt" | grep -v '^File:\|^Build ID:\|^Type:\|^Time:'
		sed -n '/flat%/,$p' "$OUT/profile/$name.top-flat.txt" | sed -n '2,26p'
		echo '```'
	done
} >"$OUT/report.md"
cat "$OUT/report.md"
log "done in $((END - START)) s; everything is under ${OUT#"$ROOT"/}"
