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
BENCH_NAME=steady
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

"$GO" build -o "$TMP/" ./cmd/gatewaystack ./bench/echo
free_port UP
free_port ISS
free_port GWP
start "$TMP/echo.log" "$TMP/echo" --listen "127.0.0.1:$UP"
wait_port "$UP" "$LAST_PID" echo "$TMP/echo.log"
start "$TMP/issuer.log" "$TMP/gatewaystack" issuer --addr "127.0.0.1:$ISS" --audience "http://127.0.0.1:$GWP/mcp" --default-scope tool:read
wait_port "$ISS" "$LAST_PID" issuer "$TMP/issuer.log"
write_config "$TMP/gateway.yaml" "$GWP" "http://127.0.0.1:$ISS" "http://127.0.0.1:$UP/mcp" "$TMP/audit.jsonl"
start "$TMP/gateway.log" "$TMP/gatewaystack" serve --config "$TMP/gateway.yaml"
GW=$LAST_PID
wait_port "$GWP" "$GW" gateway "$TMP/gateway.log"

start "$TMP/bench.txt" "$TMP/gatewaystack" bench --url "http://127.0.0.1:$GWP/mcp" --tool up__echo --args '{"text":"hi"}' -c 16 \
  -d "${DURATION}s" --warmup 5s --mint "http://127.0.0.1:$ISS" --sub steady --scope tool:read --org steady --pid "$GW"
LOAD=$LAST_PID
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
