#!/bin/bash
# gateway-mix.sh [SPDYMUX] [REPS]: what pipelining to the backend costs
# when answers are not all alike (BENCHMARKS §13, §14). A backend (spdymux
# serve, HTTP/1.1 on cleartext) behind the gateway without pipelining
# (-backend-pipeline 0), with -backend-pipeline 32 (the default), with
# -backend-pipeline 32
# -backend-pipeline-wait 0 (only requests that would wait pipeline), and
# behind nghttpx -n1; h2load cycles, on each session, 20 URIs:
# /slow?ms=20 then 19 × /hello. Servers on CPU 0, h2load on CPU 1, runs
# alternated. Needs h2load and nghttpx (Debian nghttp2-client,
# nghttp2-proxy) and taskset; SPDYMUX defaults to a build of ./cmd/spdymux.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-}
REPS=${2:-3}
if [ -z "$BIN" ]; then
	BIN=$(mktemp -d)/spdymux
	go build -o "$BIN" ./cmd/spdymux
fi
P=${BENCH_BASE_PORT:-18500}
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true' EXIT
run() { taskset -c 0 "$@" >/dev/null 2>&1 & pids+=($!); }
run "$BIN" serve -listen "" -listen-plain 127.0.0.1:$P -log-level error
run "$BIN" serve -listen "" -listen-plain 127.0.0.1:$((P + 1)) -backend http://127.0.0.1:$P -log-level error -backend-pipeline 0
run "$BIN" serve -listen "" -listen-plain 127.0.0.1:$((P + 2)) -backend http://127.0.0.1:$P -log-level error -backend-pipeline 32
run "$BIN" serve -listen "" -listen-plain 127.0.0.1:$((P + 3)) -backend http://127.0.0.1:$P -log-level error -backend-pipeline 32 -backend-pipeline-wait 0
run nghttpx --conf=/dev/null --no-ocsp -n1 "-f127.0.0.1,$((P + 4));no-tls" "-b127.0.0.1,$P"
sleep 2
names=(gateway pipeline32 pipeline32-nowait nghttpx)
uris=$(mktemp)
for shape in "1 100" "10 10"; do
	read -r c m <<<"$shape"
	for rep in $(seq "$REPS"); do
		for i in 0 1 2 3; do
			port=$((P + 1 + i))
			{ echo "http://127.0.0.1:$port/slow?ms=20"; for _ in $(seq 19); do echo "http://127.0.0.1:$port/hello"; done; } >"$uris"
			printf -- '-c %s -m %s rep %s %-18s ' "$c" "$m" "$rep" "${names[$i]}"
			taskset -c 1 h2load -c "$c" -m "$m" -D 4 -i "$uris" 2>&1 |
				awk '/finished in/{printf "%s req/s  ", $4} /^status codes:/{printf "%s 2xx  ", $3} /time for request:/{printf "request mean %s sd %s max %s", $6, $7, $5}'
			echo
		done
	done
done
rm -f "$uris"
