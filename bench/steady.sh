#!/usr/bin/env bash
# bench/steady.sh — the gateway's memory under steady load (`make bench-steady`).
#
# Starts bench/echo, `gatewaystack issuer` and `gatewaystack serve` (RS256
# auth, policy, per-subject and per-tenant rate limits, hash-chained audit
# file; the loop guard off, since the load repeats one call) on loopback, loads the gateway with `gatewaystack bench` at 16
# sessions for STEADY_DURATION, and prints the gateway's heap in use,
# goroutines and resident memory (from its /metrics and /proc) every
# STEADY_INTERVAL seconds, then the load's own report. Memory that keeps
# growing under constant load is a leak. Every process started here is
# stopped on exit.
#
# Environment: STEADY_DURATION (300, seconds), STEADY_INTERVAL (30), GO (go).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
GO=${GO:-go}
DURATION=${STEADY_DURATION:-300}
INTERVAL=${STEADY_INTERVAL:-30}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/gatewaystack-steady.XXXXXX")
PIDS=()
cleanup() {
  local pid
  for pid in ${PIDS[@]+"${PIDS[@]}"}; do kill "$pid" 2>/dev/null || true; done
  for pid in ${PIDS[@]+"${PIDS[@]}"}; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p _
  for _ in $(seq 1 500); do
    p=$((20000 + RANDOM % 12000))
    if ! listening "$p" && [[ " ${USED:-} " != *" $p "* ]]; then USED="${USED:-} $p"; printf -v "$1" '%s' "$p"; return 0; fi
  done
  echo "steady.sh: no free port" >&2; exit 1
}
wait_port() {
  local _
  for _ in $(seq 1 200); do listening "$1" && return 0; sleep 0.05; done
  echo "steady.sh: nothing listens on 127.0.0.1:$1" >&2; exit 1
}

"$GO" build -o "$TMP/" ./cmd/gatewaystack ./bench/echo
free_port UP; free_port ISS; free_port GWP
"$TMP/echo" --listen "127.0.0.1:$UP" >"$TMP/echo.log" 2>&1 & PIDS+=($!)
"$TMP/gatewaystack" issuer --addr "127.0.0.1:$ISS" --audience "http://127.0.0.1:$GWP/mcp" --default-scope tool:read >"$TMP/issuer.log" 2>&1 & PIDS+=($!)
wait_port "$UP"; wait_port "$ISS"
cat >"$TMP/gateway.yaml" <<YAML
listen: "127.0.0.1:$GWP"
public_url: "http://127.0.0.1:$GWP"
auth:
  issuer: "http://127.0.0.1:$ISS"
  audience: "http://127.0.0.1:$GWP/mcp"
  baseline_scopes: ["tool:read"]
upstreams:
  - name: up
    max_concurrency: 1024
    mcp: { url: "http://127.0.0.1:$UP/mcp" }
policy:
  default: deny
  tools:
    "up__*": { scopes: ["tool:read"] }
limits:
  per_subject: { requests: 100000, window: 1s, burst: 100000 }
  per_tenant: { requests: 100000, window: 1s, burst: 100000 }
  loop_guard: { max_repeats: 0 }   # the load repeats one call on purpose
audit:
  file: { path: "$TMP/audit.jsonl" }
outbound: { allow_http_loopback: true }
log: { level: warn, access: false, audit: false }
YAML
"$TMP/gatewaystack" serve --config "$TMP/gateway.yaml" >"$TMP/gateway.log" 2>&1 & GW=$!; PIDS+=($GW)
wait_port "$GWP"

"$TMP/gatewaystack" bench --url "http://127.0.0.1:$GWP/mcp" --tool up__echo --args '{"text":"hi"}' -c 16 \
  -d "${DURATION}s" --warmup 5s --mint "http://127.0.0.1:$ISS" --sub steady --scope tool:read --org steady --pid "$GW" >"$TMP/bench.txt" 2>&1 &
LOAD=$!
for ((t = 0; t <= DURATION; t += INTERVAL)); do
  m=$(curl -s "http://127.0.0.1:$GWP/metrics" || true)
  heap=$(awk '/^go_memstats_heap_inuse_bytes /{printf "%.1f", $2/1048576}' <<<"$m")
  gr=$(awk '/^go_goroutines /{print $2}' <<<"$m")
  rss=$(awk '/VmRSS/{printf "%.1f", $2/1024}' "/proc/$GW/status")
  printf 't=%4ss  heap in use %6s MiB  goroutines %4s  RSS %6s MiB\n' "$t" "$heap" "$gr" "$rss"
  ((t + INTERVAL <= DURATION)) && sleep "$INTERVAL"
done
wait "$LOAD" || { cat "$TMP/bench.txt" >&2; exit 1; }
cat "$TMP/bench.txt"
