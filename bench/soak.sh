#!/usr/bin/env bash
# bench/soak.sh: a long run at about 70% of measured capacity, through the
# in-process server and through the gateway in front of Apache httpd, with
# every answer checked.
#
#   bench/soak.sh [-duration SECONDS] [-load FRACTION] [-only LIST] [-out DIR]
#
#   -duration S    seconds of load per server (default 600; CI runs 30)
#   -load F        the fraction of measured capacity to run at (default 0.7)
#   -only LIST     comma-separated subset of: inprocess,gateway
#   -out DIR       where the report goes (default bench/out/soak-DATE)
#
# For each server it measures capacity with the mix as fast as it goes
# (bench/cmd/soak -mode probe, 8 s at 48 requests in flight), then runs the
# mix at the fraction of it, open loop, for the duration (-mode soak): TLS
# sessions of SPDY/3.1, SPDY/3, SPDY/2, HTTP/2 and HTTP/1.1, each closed
# after a few hundred requests; small and large downloads, uploads with
# and without a length, resets in the middle of a download. Every body is
# checked (byte i is i mod 251; uploads come back echoed, compared by
# SHA-256). Every second it prints requests, errors, p50/p99 and the
# server's resident memory, goroutines and backend connections (from its
# -metrics), and at the end the slopes after warm-up and whether
# goroutines and backend connections came back to their baseline.
#
# The servers: `spdymux serve` with its demo site (GET /bytes/N, POST
# /echo), and `spdymux serve -backend` in front of Apache httpd (event MPM;
# the same /bytes/N as static files, /echo by mod_lua; KeepAliveTimeout
# 2 s, so that idle backend connections close soon after the load). With
# two CPUs the servers run on CPU 0 and the load on CPU 1 (taskset).
#
# Before and after each run it asks the server for a collection and reads
# the bytes of live heap objects; the heap profile taken after the run is
# kept (<server>.heap.pprof) for what still holds memory.
#
# It exits 1 if any request failed or a server did not come back to its
# baseline. Its report (report.md) and the per-second samples (*.csv, and
# the summaries as *.json) go to the -out directory.
set -euo pipefail

DUR=600
LOAD=0.7
ONLY=inprocess,gateway
OUT=
while [ $# -gt 0 ]; do
	case "$1" in
	-duration) DUR=$2; shift ;;
	-load) LOAD=$2; shift ;;
	-only) ONLY=$2; shift ;;
	-out) OUT=$2; shift ;;
	-h | -help | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "soak.sh: unknown argument $1 (see -h)" >&2; exit 2 ;;
	esac
	shift
done
want() { case ",$ONLY," in *",$1,"*) return 0 ;; esac; return 1; }

cd "$(dirname "$0")/.."
ROOT=$PWD
[ -n "$OUT" ] || OUT=$ROOT/bench/out/soak-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT/bin"
OUT=$(cd "$OUT" && pwd)
# Apache's workers (www-data) read the document root under $OUT: a
# directory from mktemp -d is 0700.
chmod a+rx "$OUT"
BIN=$OUT/bin
log() { printf '%s %s\n' "$(date +%T)" "$*" | tee -a "$OUT/soak.log" >&2; }

go build -o "$BIN/spdymux" ./cmd/spdymux
go build -o "$BIN/soak" ./bench/cmd/soak

SRV=()
GEN=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
	SRV=(taskset -c 0)
	GEN=(taskset -c 1)
fi

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
	"$@" >>"$OUT/$name.log" 2>&1 </dev/null &
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

# freeport: a TCP port nothing listens on, below the ephemeral range:
# a port there may be the local end of some outgoing connection, which a
# connect cannot see but which makes the server's bind fail.
freeport() {
	local p lo=32768
	[ -r /proc/sys/net/ipv4/ip_local_port_range ] && read -r lo _ </proc/sys/net/ipv4/ip_local_port_range
	[ "$lo" -gt 12000 ] || lo=32768
	for _ in $(seq 100); do
		p=$((10000 + RANDOM % (lo - 10000)))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	echo "soak.sh: no free port" >&2
	exit 1
}

# waitport PORT: wait up to 20 s for a listener.
waitport() {
	for _ in $(seq 200); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "soak.sh: nothing listens on port $1 after 20 s" >&2
	exit 1
}

SIZES="1000 10000 1048576 8388608"

# apache_start: Apache httpd on $AP serving /bytes/N for $SIZES as static
# files and /echo: by mod_lua, or, for a body without a length (chunked),
# which mod_lua cannot read, by a Perl CGI script.
apache_start() {
	local d=$OUT/apache m=/usr/lib/apache2/modules mod n
	mkdir -p "$d/conf" "$d/logs" "$d/run" "$d/htdocs/bytes" "$d/lua" "$d/cgi-bin"
	for n in $SIZES; do
		"$BIN/soak" -write-pattern "$d/htdocs/bytes/$n" -size "$n"
	done
	cat >"$d/lua/echo.lua" <<-'EOF'
		-- POST|PUT /echo: the request body back, with its length.
		function handle(r)
		    if r.method ~= "POST" and r.method ~= "PUT" then
		        return 405
		    end
		    local body = r:requestbody() or ""
		    r.content_type = "application/octet-stream"
		    r.headers_out["Content-Length"] = tostring(#body)
		    r:write(body)
		    return apache2.OK
		end
	EOF
	cat >"$d/cgi-bin/echo" <<-'EOF'
		#!/usr/bin/perl
		# POST /echo without a length: the request body back, with its length.
		binmode STDIN;
		binmode STDOUT;
		local $/;
		my $body = <STDIN>;
		$body = '' unless defined $body;
		print "Content-Type: application/octet-stream\r\nContent-Length: " . length($body) . "\r\n\r\n";
		print $body;
	EOF
	chmod 755 "$d/cgi-bin/echo"
	chmod -R a+rX "$d"
	{
		echo "ServerRoot \"$d\""
		echo "ServerName 127.0.0.1"
		echo "Listen 127.0.0.1:$AP"
		for mod in mpm_event authz_core mime lua alias cgid rewrite; do
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
			KeepAlive On
			MaxKeepAliveRequests 0
			KeepAliveTimeout 2
			StartServers 2
			ServerLimit 4
			ThreadsPerChild 64
			MaxRequestWorkers 256
			ScriptSock "$d/run/cgid.sock"
			LuaScope thread
			LuaMapHandler "^/echo$" "$d/lua/echo.lua" handle
			ScriptAlias /cgi-bin/ "$d/cgi-bin/"
			RewriteEngine On
			RewriteCond %{HTTP:Transfer-Encoding} chunked [NC]
			RewriteRule ^/echo$ /cgi-bin/echo [PT]
			<Directory "$d/cgi-bin">
			    Options +ExecCGI
			    Require all granted
			</Directory>
			DocumentRoot "$d/htdocs"
			<Directory />
			    AllowOverride None
			    Require all denied
			</Directory>
			<Directory "$d/htdocs">
			    Require all granted
			    ForceType application/octet-stream
			</Directory>
		EOF
	} >"$d/conf/httpd.conf"
	start apache "${SRV[@]}" /usr/sbin/apache2 -d "$d" -f "$d/conf/httpd.conf" -DFOREGROUND
	waitport "$AP"
}

# soak_one LABEL START: START starts the server (its pid in $LAST, its
# ports in $TLS and $MET); measure capacity, then soak a new server
# started the same way, so that its baseline is an idle server's.
FAILED=0
soak_one() {
	local label=$1 startfn=$2 cap rate
	$startfn
	log "$label: measuring capacity"
	cap=$("${GEN[@]}" "$BIN/soak" -mode probe -url "https://127.0.0.1:$TLS" -duration 8s -conc 48 | sed -n 's/^capacity //p')
	stop "$LAST"
	[ -n "$cap" ] || { log "$label: the capacity probe failed"; FAILED=1; return; }
	rate=$(awk -v c="$cap" -v f="$LOAD" 'BEGIN { printf "%.0f", c * f }')
	log "$label: capacity $cap requests/s; soaking at $rate/s for ${DUR}s"
	echo "$label: capacity $cap requests/s, soak at $rate/s ($LOAD) for ${DUR}s" >>"$OUT/capacity.txt"
	$startfn
	if ! "${GEN[@]}" "$BIN/soak" -mode soak -label "$label" -url "https://127.0.0.1:$TLS" -metrics "http://127.0.0.1:$MET/metrics" \
		-rate "$rate" -duration "${DUR}s" -conc 256 -csv "$OUT/$label.csv" -json "$OUT/$label.json" | tee "$OUT/$label.txt"; then
		FAILED=1
	fi
	stop "$LAST"
}

start_inprocess() {
	TLS=$(freeport) PLAIN=$(freeport) MET=$(freeport)
	start inprocess "${SRV[@]}" "$BIN/spdymux" serve -listen "127.0.0.1:$TLS" -listen-plain "127.0.0.1:$PLAIN" \
		-metrics "127.0.0.1:$MET" -log-level warn
	waitport "$TLS"
	waitport "$MET"
}

start_gateway() {
	TLS=$(freeport) PLAIN=$(freeport) MET=$(freeport)
	start gateway "${SRV[@]}" "$BIN/spdymux" serve -listen "127.0.0.1:$TLS" -listen-plain "127.0.0.1:$PLAIN" \
		-backend "http://127.0.0.1:$AP" -metrics "127.0.0.1:$MET" -log-level warn
	waitport "$TLS"
	waitport "$MET"
}

{
	echo "soak: $(date -u +%FT%TZ), $(go version | cut -d' ' -f3), $(nproc) CPUs, commit $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet 2>/dev/null || echo '+dirty')"
	echo "loadavg at start: $(cat /proc/loadavg)"
} >"$OUT/machine.txt"

if want inprocess; then
	soak_one inprocess start_inprocess
fi

if want gateway; then
	[ -x /usr/sbin/apache2 ] || { echo "soak.sh: /usr/sbin/apache2 is missing" >&2; exit 1; }
	AP=$(freeport)
	apache_start
	soak_one gateway start_gateway
fi

echo "loadavg at the end: $(cat /proc/loadavg)" >>"$OUT/machine.txt"

# The report: one row per server from its summary, then each server's
# minutes from its samples.
{
	echo "| server | capacity | soak rate (served) | duration | requests | errors | client resets | sessions | p50 | p99 | RSS after warm-up → end (slope; max) | Go heap in use after warm-up → end (slope; max) | goroutines after warm-up → end (slope) | back to baseline | live heap (objects after a collection) before → after |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	for label in inprocess gateway; do
		[ -f "$OUT/$label.json" ] || continue
		cap=$(sed -n "s/^$label: capacity \([0-9]*\).*/\1/p" "$OUT/capacity.txt")
		jq -r --arg cap "$cap" 'def r1: (. * 10 | round) / 10; def r2: (. * 100 | round) / 100;
			"| \(.label) | \($cap)/s | \(.rate)/s (\(.served_per_s | r1)/s) | \(.duration_s | floor) s | \(.requests) | \(.errors) | \(.resets) | \(.sessions) | \(.p50_ms | r2) ms | \(.p99_ms | r1) ms | \(.rss_after_warmup_mib | r1) → \(.rss_end_mib | r1) MiB (\(.rss_slope_mib_per_min | r2) MiB/min; \(.rss_max_mib | r1)) | \(.heap_after_warmup_mib | r1) → \(.heap_end_mib | r1) MiB (\(.heap_slope_mib_per_min | r2) MiB/min; \(.heap_max_mib | r1)) | \(.goroutines_after_warmup) → \(.goroutines_end) (\(.goroutines_slope_per_min | r2)/min) | \(if .final_ok then "yes" else "NO" end): goroutines \(.final_goroutines) (baseline \(.baseline_goroutines)), backend connections \(.final_backend_conns) (baseline \(.baseline_backend_conns)) | \(.baseline_live_heap_mib | r1) → \(.final_live_heap_mib | r1) MiB |"' "$OUT/$label.json"
	done
	for label in inprocess gateway; do
		[ -f "$OUT/$label.csv" ] || continue
		echo
		echo "$label, minute by minute (requests/s, the worst second's p99, and the last second's RSS, heap in use, goroutines and busy/idle backend connections):"
		echo
		echo "| minute | requests/s | errors | worst p99 | RSS | heap in use | goroutines | backend busy/idle |"
		echo "|---|---|---|---|---|---|---|---|"
		awk -F, 'NR > 1 {
			m = int(($1 - 1) / 60) + 1
			req[m] += $2; err[m] += $3; n[m]++
			if ($6 > p99[m]) p99[m] = $6
			rss[m] = $7; heap[m] = $8; g[m] = $9; bb[m] = $10; bi[m] = $11
			if (m > last) last = m
		}
		END {
			for (m = 1; m <= last; m++)
				printf "| %d | %.0f | %d | %.1f ms | %.1f MiB | %.1f MiB | %d | %d/%d |\n", m, req[m] / n[m], err[m], p99[m], rss[m], heap[m], g[m], bb[m], bi[m]
		}' "$OUT/$label.csv"
	done
} >"$OUT/report.md"
cat "$OUT/machine.txt" "$OUT/report.md"
if [ "$FAILED" != 0 ]; then
	echo "soak.sh: FAILED (see $OUT)" >&2
	exit 1
fi
echo "soak.sh: ok ($OUT)"
