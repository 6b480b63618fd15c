# bench/lib.sh — what bench/run.sh and bench/steady.sh share: a temporary
# directory, processes started in the background and stopped on exit, and
# loopback ports. Source it after setting BENCH_NAME (the temporary
# directory's prefix).

TMP=$(mktemp -d "${TMPDIR:-/tmp}/gatewaystack-${BENCH_NAME:-bench}.XXXXXX")
PIDS=()
USED_PORTS=" "

# cleanup stops every process this script started, by its id, and removes
# the temporary directory.
cleanup() {
  local pid
  for pid in ${PIDS[@]+"${PIDS[@]}"}; do kill "$pid" 2>/dev/null || true; done
  for pid in ${PIDS[@]+"${PIDS[@]}"}; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '%s\n' "$*" >&2; }
die() { say "${BENCH_NAME:-bench}: $*"; exit 1; }

# start LOG CMD...: runs CMD in the background, output to LOG; its pid is
# left in LAST_PID.
start() {
  local log=$1
  shift
  "$@" >"$log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

# stop PID: stops one process started by start, and waits for it.
stop() {
  local pid=$1 p keep=()
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in ${PIDS[@]+"${PIDS[@]}"}; do [[ $p == "$pid" ]] || keep+=("$p"); done
  PIDS=(${keep[@]+"${keep[@]}"})
}

# listening PORT: whether something accepts connections on 127.0.0.1:PORT.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port VAR: sets VAR to a loopback port nothing listens on, below the
# ephemeral range and not handed out before.
free_port() {
  local p _
  for _ in $(seq 1 500); do
    p=$((20000 + RANDOM % 12000))
    [[ $USED_PORTS == *" $p "* ]] && continue
    if ! listening "$p"; then
      USED_PORTS+="$p "
      printf -v "$1" '%s' "$p"
      return 0
    fi
  done
  die "no free port found"
}

# wait_port PORT PID NAME LOG: waits (at most 10s) until PORT listens.
wait_port() {
  local port=$1 pid=$2 name=$3 log=$4 _
  for _ in $(seq 1 200); do
    listening "$port" && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      cat "$log" >&2
      die "$name exited before listening on 127.0.0.1:$port"
    fi
    sleep 0.05
  done
  cat "$log" >&2
  die "$name did not listen on 127.0.0.1:$port within 10s"
}

# write_config FILE PORT ISSUER_URL UPSTREAM_URL AUDIT_FILE: writes the
# benchmarked gateway's configuration to FILE: listening on 127.0.0.1:PORT,
# RS256 tokens from ISSUER_URL, one MCP upstream, deny-by-default policy,
# per-subject and per-tenant rate limits (high enough never to refuse), the
# hash-chained audit file; the loop guard off (a load repeats one call on
# purpose), access log off.
write_config() {
  cat >"$1" <<EOF
listen: "127.0.0.1:$2"
public_url: "http://127.0.0.1:$2"
auth:
  issuer: "$3"
  audience: "http://127.0.0.1:$2/mcp"
  baseline_scopes: ["tool:read"]
upstreams:
  - name: up
    max_concurrency: 1024
    mcp:
      url: "$4"
policy:
  default: deny
  tools:
    "up__*": { scopes: ["tool:read"] }
limits:
  per_subject: { requests: 100000, window: 1s, burst: 100000 }
  per_tenant: { requests: 100000, window: 1s, burst: 100000 }
  loop_guard: { max_repeats: 0 }
audit:
  file: { path: "$5" }
outbound:
  allow_http_loopback: true
server:
  max_concurrent: 4096
  max_concurrent_per_subject: 1024
log:
  level: warn
  access: false
  audit: false
EOF
}
