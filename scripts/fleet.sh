#!/usr/bin/env bash
# Run the two-tier collector fleet natively (docs/scaling.md): Jaeger with Badger storage, two
# tail-sampling gateways, the agent (load_balancing by trace id, persistent queue), an
# Alertmanager pair and Prometheus, on the default ports of collector/prometheus/prometheus-fleet.yml.
#
#   scripts/fleet.sh start     start it and print the URLs (applications send to the agent, :4317)
#   scripts/fleet.sh stop      stop what start started
#   scripts/fleet.sh status    what runs, and whether it answers
#
# The programs are those scripts/build-stack.sh linked into .stack/bin/. Pid files, logs and data
# (agent queue, Badger, Prometheus TSDB, Alertmanager state) live under .stack/fleet/ (gitignored),
# so a restart keeps queued telemetry and traces. It uses the single stack's agent-side ports
# (4317, 4318, 13133, 8888, 16686, 9090, 9093): stop scripts/stack.sh first.
# With Docker: docker compose -f collector/docker-compose.yaml --profile fleet up -d
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

BIN=$repo/.stack/bin
STATE=$repo/.stack/fleet
RUN=$STATE/run
LOGS=$STATE/logs
DATA=$STATE/data
C=$repo/collector
# start order; stop goes in reverse
COMPONENTS=(jaeger gateway-a gateway-b agent alertmanager-a alertmanager-b prometheus)

say() { echo "fleet: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

ready_url() {
  case "$1" in
    jaeger) echo "http://127.0.0.1:16686/api/services" ;;
    gateway-a) echo "http://127.0.0.1:13233/" ;;
    gateway-b) echo "http://127.0.0.1:13333/" ;;
    agent) echo "http://127.0.0.1:13133/" ;;
    alertmanager-a) echo "http://127.0.0.1:9093/-/ready" ;;
    alertmanager-b) echo "http://127.0.0.1:9095/-/ready" ;;
    prometheus) echo "http://127.0.0.1:9090/-/ready" ;;
  esac
}

http_ok() {  # http_ok URL: 0 when it answers 2xx
  python3 - "$1" <<'EOF' 2>/dev/null
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
        sys.exit(0 if 200 <= r.status < 300 else 1)
except Exception:
    sys.exit(1)
EOF
}

run_component() {  # run_component NAME: exec the program (in a background subshell)
  case "$1" in
    jaeger)
      OTEL_TRACES_SAMPLER=always_off JAEGER_BADGER_DIR=$DATA/jaeger-badger \
        exec "$BIN/jaeger" --config="$C/jaeger/config-badger.yaml" ;;
    gateway-a) exec "$BIN/otelcol" --config="$C/fleet/otelcol-gateway.yaml" ;;
    gateway-b)
      OTELCOL_OTLP_GRPC_ENDPOINT=127.0.0.1:4517 OTELCOL_OTLP_HTTP_ENDPOINT=127.0.0.1:4518 \
      OTELCOL_HEALTH_ENDPOINT=127.0.0.1:13333 OTELCOL_PROMETHEUS_ENDPOINT=127.0.0.1:8991 \
      OTELCOL_METRICS_PORT=8990 exec "$BIN/otelcol" --config="$C/fleet/otelcol-gateway.yaml" ;;
    agent)
      OTELCOL_QUEUE_DIR=$DATA/agent-queue exec "$BIN/otelcol" --config="$C/fleet/otelcol-agent.yaml" ;;
    alertmanager-a)
      exec "$BIN/alertmanager" --config.file="$C/alertmanager/alertmanager.yml" \
        --storage.path="$DATA/alertmanager-a" --web.listen-address=127.0.0.1:9093 \
        --cluster.listen-address=127.0.0.1:9094 --cluster.peer=127.0.0.1:9096 ;;
    alertmanager-b)
      exec "$BIN/alertmanager" --config.file="$C/alertmanager/alertmanager.yml" \
        --storage.path="$DATA/alertmanager-b" --web.listen-address=127.0.0.1:9095 \
        --cluster.listen-address=127.0.0.1:9096 --cluster.peer=127.0.0.1:9094 ;;
    prometheus)
      exec "$BIN/prometheus" --config.file="$C/prometheus/prometheus-fleet.yml" \
        --storage.tsdb.path="$DATA/prometheus" --web.listen-address=127.0.0.1:9090 \
        --enable-feature=exemplar-storage --web.enable-lifecycle ;;
  esac
}

pid_alive() {  # pid_alive NAME: the pid file names a live process started from .stack/bin
  local pidfile=$RUN/$1.pid pid
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$BIN/"
}

wait_ready() {  # wait_ready NAME SECONDS
  local url deadline
  url=$(ready_url "$1")
  deadline=$(( $(date +%s) + $2 ))
  until http_ok "$url"; do
    pid_alive "$1" || { say "$1 exited; last lines of $LOGS/$1.log:"; tail -20 "$LOGS/$1.log" >&2; return 1; }
    [ "$(date +%s)" -lt "$deadline" ] || { say "$1 not ready at $url after $2 s"; return 1; }
    sleep 0.5
  done
}

start() {
  local name
  for name in otelcol jaeger prometheus alertmanager; do
    [ -x "$BIN/$name" ] || die "$BIN/$name missing: run scripts/build-stack.sh (make stack-build)"
  done
  mkdir -p "$RUN" "$LOGS" "$DATA/agent-queue" "$DATA/jaeger-badger"
  for name in "${COMPONENTS[@]}"; do
    if pid_alive "$name"; then say "$name already running (pid $(cat "$RUN/$name.pid"))"; continue; fi
    http_ok "$(ready_url "$name")" && die "something else answers at $(ready_url "$name"); stop it first"
    ( run_component "$name" ) >>"$LOGS/$name.log" 2>&1 </dev/null &
    echo $! >"$RUN/$name.pid"
    say "$name started (pid $!, log $LOGS/$name.log)"
  done
  for name in "${COMPONENTS[@]}"; do
    wait_ready "$name" 60 || { stop; die "$name did not start"; }
  done
  cat <<EOF
fleet: ready (native)
  OTLP to the agent  http://127.0.0.1:4317 (gRPC), http://127.0.0.1:4318 (HTTP)
  Jaeger (Badger)    http://127.0.0.1:16686
  Prometheus         http://127.0.0.1:9090  (targets: agent, gateway-a, gateway-b)
  Alertmanagers      http://127.0.0.1:9093  http://127.0.0.1:9095 (one cluster)
  data, logs         $DATA/  $LOGS/
EOF
}

stop() {
  local name pid i
  for (( i=${#COMPONENTS[@]}-1; i>=0; i-- )); do
    name=${COMPONENTS[$i]}
    if pid_alive "$name"; then
      pid=$(cat "$RUN/$name.pid")
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
      say "$name stopped (pid $pid)"
    fi
    rm -f "$RUN/$name.pid"
  done
}

status() {
  local name state
  for name in "${COMPONENTS[@]}"; do
    if pid_alive "$name"; then state="running (pid $(cat "$RUN/$name.pid"))"; else state=stopped; fi
    if http_ok "$(ready_url "$name")"; then state="$state, ready"; fi
    printf '  %-15s %s\n' "$name" "$state"
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: scripts/fleet.sh start | stop | status" >&2; exit 2 ;;
esac
