#!/usr/bin/env bash
# bench/run.sh — what the gateway costs on the wire (`make bench`).
#
# For each upstream — the go-sdk conformance fixture (bin/everything-server,
# tool test_simple_text) and bench/echo (tool echo, {"text":"hi"}) — and each
# concurrency (16 and 64), over BENCH_ROUNDS rounds in rotating order, it runs
# `gatewaystack bench` (session era) against three paths:
#
#   direct   the upstream itself
#   bare     the upstream behind bench/bareproxy, a plain httputil.ReverseProxy
#            that reads each body before forwarding: the cost of any proxy hop
#   gateway  the upstream behind `gatewaystack serve` with RS256 bearer auth
#            (tokens from `gatewaystack issuer`), policy, per-subject and
#            per-tenant rate limits (high enough never to refuse) and the
#            hash-chained audit file on; loop guard and access log off
#
# Each run reports calls/s, latency percentiles and the CPU time per call of
# the server processes (the upstream, and the proxy or gateway); then
# bench/report prints a Markdown table of medians and ranges, and the ratios
# gateway/direct and gateway/bare. Everything listens on 127.0.0.1; every
# process started here is stopped on exit.
#
# Environment:
#   BENCH_DURATION     measured time of each run (10s)
#   BENCH_WARMUP       unmeasured warmup of each run (2s)
#   BENCH_ROUNDS       rounds (3)
#   BENCH_CONCURRENCY  concurrencies ("16 64")
#   BENCH_RESULTS      also copy the raw JSON lines to this file
#   EVERYTHING_SERVER  the go-sdk fixture (bin/everything-server; built with
#                      `make bin/everything-server` when missing)
#   GO                 the go command (go)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
GO=${GO:-go}
DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-2s}
ROUNDS=${BENCH_ROUNDS:-3}
CONCURRENCY=${BENCH_CONCURRENCY:-16 64}
EVERYTHING_SERVER=${EVERYTHING_SERVER:-$ROOT/bin/everything-server}

BENCH_NAME=bench
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

say "building gatewaystack, bareproxy, echo and report into $TMP"
"$GO" build -o "$TMP/" ./cmd/gatewaystack ./bench/bareproxy ./bench/echo ./bench/report
if [[ ! -x $EVERYTHING_SERVER ]]; then
  [[ $EVERYTHING_SERVER == "$ROOT/bin/everything-server" ]] || die "EVERYTHING_SERVER=$EVERYTHING_SERVER is not an executable"
  say "building the go-sdk conformance fixture (make bin/everything-server)"
  make -C "$ROOT" --no-print-directory bin/everything-server >&2
fi
GW=$TMP/gatewaystack
RESULTS=$TMP/results.jsonl
: >"$RESULTS"

# The demo issuer mints the gateway's tokens; every gateway below listens on
# the same port, so one audience serves them all.
free_port ISS_PORT
free_port GW_PORT
ISSUER=http://127.0.0.1:$ISS_PORT
GATEWAY=http://127.0.0.1:$GW_PORT
start "$TMP/issuer.log" "$GW" issuer --addr "127.0.0.1:$ISS_PORT" --audience "$GATEWAY/mcp" --default-scope tool:read
wait_port "$ISS_PORT" "$LAST_PID" issuer "$TMP/issuer.log"

# run_one UPSTREAM PATH C ROUND URL TOOL ARGS UPSTREAM_PID [bench flags...]:
# one bench run, appended to RESULTS.
run_one() {
  local up=$1 path=$2 c=$3 round=$4 url=$5 tool=$6 args=$7 up_pid=$8 out rps
  shift 8
  out=$("$GW" bench --url "$url" --tool "$tool" --args "$args" -c "$c" -d "$DURATION" --warmup "$WARMUP" --json "$@") ||
    die "bench $up $path c=$c failed"
  printf '{"upstream":"%s","path":"%s","c":%d,"round":%d,"upstream_pid":%d,"result":%s}\n' \
    "$up" "$path" "$c" "$round" "$up_pid" "$out" >>"$RESULTS"
  rps=$(sed -E 's/.*"calls_per_second":([0-9.]+).*/\1/' <<<"$out")
  printf '  %-7s c=%-3s round %s/%s  %-7s %8.0f calls/s\n' "$up" "$c" "$round" "$ROUNDS" "$path" "$rps" >&2
}

# bench_upstream NAME TOOL ARGS: starts the upstream, the bare proxy and the
# gateway in front of it, runs every round, and stops them.
bench_upstream() {
  local name=$1 tool=$2 args=$3 up_port bp_port up_pid bp_pid gw_pid audit round c path paths i
  free_port up_port
  free_port bp_port
  case $name in
  go-sdk) start "$TMP/$name.log" "$EVERYTHING_SERVER" "-http=127.0.0.1:$up_port" -stateless=false ;;
  echo) start "$TMP/$name.log" "$TMP/echo" --listen "127.0.0.1:$up_port" ;;
  esac
  up_pid=$LAST_PID
  wait_port "$up_port" "$up_pid" "$name upstream" "$TMP/$name.log"
  local up_url=http://127.0.0.1:$up_port/mcp

  start "$TMP/bareproxy-$name.log" "$TMP/bareproxy" --listen "127.0.0.1:$bp_port" --target "http://127.0.0.1:$up_port"
  bp_pid=$LAST_PID
  wait_port "$bp_port" "$bp_pid" "bare proxy" "$TMP/bareproxy-$name.log"

  audit=$TMP/audit-$name.jsonl
  write_config "$TMP/gateway.yaml" "$GW_PORT" "$ISSUER" "$up_url" "$audit"
  "$GW" validate --config "$TMP/gateway.yaml" >/dev/null || die "the generated gateway configuration is invalid"
  start "$TMP/gateway-$name.log" "$GW" serve --config "$TMP/gateway.yaml"
  gw_pid=$LAST_PID
  wait_port "$GW_PORT" "$gw_pid" gateway "$TMP/gateway-$name.log"

  say "$name: direct $up_url, bare proxy :$bp_port, gateway $GATEWAY/mcp"
  for round in $(seq 1 "$ROUNDS"); do
    for c in $CONCURRENCY; do
      # Rotate the order so that no path always runs first or last.
      paths=(direct bare gateway)
      i=$(((round - 1) % 3))
      for path in "${paths[@]:i}" "${paths[@]:0:i}"; do
        case $path in
        direct) run_one "$name" direct "$c" "$round" "$up_url" "$tool" "$args" "$up_pid" --pid "$up_pid" ;;
        bare) run_one "$name" bare "$c" "$round" "http://127.0.0.1:$bp_port/mcp" "$tool" "$args" "$up_pid" --pid "$bp_pid" --pid "$up_pid" ;;
        gateway) run_one "$name" gateway "$c" "$round" "$GATEWAY/mcp" "up__$tool" "$args" "$up_pid" \
          --mint "$ISSUER" --sub bench --scope tool:read --org bench --pid "$gw_pid" --pid "$up_pid" ;;
        esac
      done
    done
  done
  stop "$gw_pid"
  stop "$bp_pid"
  stop "$up_pid"
  # The audit trail must be whole: every rotated file, oldest first, chained.
  local files=() n
  for ((n = 100; n >= 1; n--)); do [[ -e $audit.$n ]] && files+=("$audit.$n"); done
  files+=("$audit")
  grep -q '"decision":"allow"' "$audit" || die "the gateway wrote no audit events to $audit"
  "$GW" audit verify "${files[@]}" >"$TMP/verify.log" 2>&1 || { cat "$TMP/verify.log" >&2; die "the audit chain of $name is broken"; }
  say "$name: gateway audit: $(cat "${files[@]}" | wc -l) events in ${#files[@]} file(s), hash chain verified"
}

bench_upstream go-sdk test_simple_text '{}'
bench_upstream echo echo '{"text":"hi"}'

[[ -z ${BENCH_RESULTS:-} ]] || cp "$RESULTS" "$BENCH_RESULTS"
cpus=$(nproc 2>/dev/null || echo "?")
model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
echo "gatewaystack bench, session era: $ROUNDS round(s) of $DURATION measured after $WARMUP warmup per run, paths in rotating order; $cpus CPU(s)${model:+ ($model)}, $("$GO" env GOVERSION), everything on one machine over loopback."
echo
"$TMP/report" "$RESULTS"
