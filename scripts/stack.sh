#!/usr/bin/env bash
# Run the observability stack: collector, Jaeger, Prometheus, Alertmanager (and Grafana with Docker).
#
#   scripts/stack.sh start [--tail-sampling]   start it and print the URLs
#   scripts/stack.sh stop                      stop what start started
#   scripts/stack.sh status                    what runs, and whether it answers
#
# Native (the default where no Docker engine answers): the programs that scripts/build-stack.sh
# linked into .stack/bin/ run in the background with the repository's config files and their
# default loopback ports; pid files, logs and data live under .stack/ (gitignored).
# Docker (where `docker info` reaches an engine): `docker compose -f collector/docker-compose.yaml`
# with the official images and the same config files, plus Grafana.
# STACK_MODE=native|docker|auto (default auto) picks one.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

STATE=$repo/.stack
BIN=$STATE/bin
RUN=$STATE/run
LOGS=$STATE/logs
DATA=$STATE/data
COMPOSE_FILE=$repo/collector/docker-compose.yaml
MODE=${STACK_MODE:-auto}
# start order; stop goes in reverse
COMPONENTS=(jaeger otelcol alertmanager prometheus)

say() { echo "stack: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

docker_works() {
  command -v docker >/dev/null 2>&1 && timeout 10 docker info >/dev/null 2>&1 \
    && docker compose version >/dev/null 2>&1
}

pick_mode() {
  case "$MODE" in
    native|docker) echo "$MODE" ;;
    auto)
      if [ -f "$RUN/mode" ]; then cat "$RUN/mode"
      elif docker_works; then echo docker
      else echo native
      fi ;;
    *) die "STACK_MODE must be native, docker or auto (got $MODE)" ;;
  esac
}

# name -> "URL to poll for readiness"
ready_url() {
  case "$1" in
    otelcol) echo "http://127.0.0.1:13133/" ;;
    jaeger) echo "http://127.0.0.1:16686/api/services" ;;
    prometheus) echo "http://127.0.0.1:9090/-/ready" ;;
    alertmanager) echo "http://127.0.0.1:9093/-/ready" ;;
    grafana) echo "http://127.0.0.1:3000/api/health" ;;
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

argv_of() {  # argv_of NAME COLLECTOR_CONFIG
  case "$1" in
    otelcol) echo "$BIN/otelcol --config=$2" ;;
    # OTEL_TRACES_SAMPLER=always_off: Jaeger would trace its own queries into our collector
    jaeger) echo "env OTEL_TRACES_SAMPLER=always_off $BIN/jaeger --config=$repo/collector/jaeger/config.yaml" ;;
    alertmanager) echo "$BIN/alertmanager --config.file=$repo/collector/alertmanager/alertmanager.yml" \
      "--storage.path=$DATA/alertmanager --web.listen-address=127.0.0.1:9093 --cluster.listen-address=" ;;
    prometheus) echo "$BIN/prometheus --config.file=$repo/collector/prometheus/prometheus.yml" \
      "--storage.tsdb.path=$DATA/prometheus --web.listen-address=127.0.0.1:9090" \
      "--enable-feature=exemplar-storage --web.enable-lifecycle" ;;
  esac
}

pid_alive() {  # pid_alive NAME: the pid file names a live process of that program
  local pidfile=$RUN/$1.pid pid
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  kill -0 "$pid" 2>/dev/null || return 1
  # guard against a recycled pid: its command line must be the one we started
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$STATE/bin/$1" 
}

wait_ready() {  # wait_ready NAME SECONDS
  local url deadline
  url=$(ready_url "$1")
  deadline=$(( $(date +%s) + $2 ))
  until http_ok "$url"; do
    if [ "$(pick_mode)" = native ] && ! pid_alive "$1"; then
      say "$1 exited; last lines of $LOGS/$1.log:"; tail -20 "$LOGS/$1.log" >&2; return 1
    fi
    [ "$(date +%s)" -lt "$deadline" ] || { say "$1 not ready at $url after $2 s"; return 1; }
    sleep 0.5
  done
}

print_urls() {
  cat <<EOF
stack: ready ($1)
  OTLP gRPC      http://127.0.0.1:4317   (OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317)
  OTLP HTTP      http://127.0.0.1:4318
  Jaeger         http://127.0.0.1:16686  (API: /api/traces?service=pixel-llm, /api/v3/traces/<id>)
  Prometheus     http://127.0.0.1:9090
  Alertmanager   http://127.0.0.1:9093
  collector      health http://127.0.0.1:13133/  own metrics http://127.0.0.1:8888/metrics  exporter http://127.0.0.1:8889/metrics
EOF
  [ "$1" = docker ] && echo "  Grafana        http://127.0.0.1:3000"
  [ "$1" = native ] && echo "  logs           $LOGS/   (Grafana runs only with Docker: docs/stack.md)"
  return 0
}

start_native() {
  local config=$1 name
  for name in otelcol jaeger prometheus alertmanager; do
    [ -x "$BIN/$name" ] || die "$BIN/$name missing: run scripts/build-stack.sh (make stack-build)"
  done
  mkdir -p "$RUN" "$LOGS" "$DATA"
  echo native >"$RUN/mode"
  for name in "${COMPONENTS[@]}"; do
    if pid_alive "$name"; then say "$name already running (pid $(cat "$RUN/$name.pid"))"; continue; fi
    if http_ok "$(ready_url "$name")"; then
      die "something else already answers at $(ready_url "$name"); stop it first"
    fi
    # shellcheck disable=SC2046  # argv_of prints a word list on purpose
    nohup $(argv_of "$name" "$config") >>"$LOGS/$name.log" 2>&1 </dev/null &
    echo $! >"$RUN/$name.pid"
    say "$name started (pid $!, log $LOGS/$name.log)"
  done
  for name in "${COMPONENTS[@]}"; do
    wait_ready "$name" 60 || { stop_native; die "$name did not start"; }
  done
  print_urls native
}

stop_native() {
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
  rm -f "$RUN/mode"
}

status_native() {
  local name state
  for name in "${COMPONENTS[@]}"; do
    if pid_alive "$name"; then state="running (pid $(cat "$RUN/$name.pid"))"; else state=stopped; fi
    if http_ok "$(ready_url "$name")"; then state="$state, ready"; fi
    printf '  %-13s %s\n' "$name" "$state"
  done
}

cmd=${1:-}
shift || true
collector_config=$repo/collector/otelcol.yaml
compose_config=otelcol.yaml
for arg in "$@"; do
  case "$arg" in
    --tail-sampling)
      collector_config=$repo/collector/otelcol-tailsampling.yaml
      compose_config=otelcol-tailsampling.yaml ;;
    *) die "unknown option $arg" ;;
  esac
done

mode=$(pick_mode)
case "$cmd:$mode" in
  start:native) start_native "$collector_config" ;;
  start:docker)
    mkdir -p "$RUN" && echo docker >"$RUN/mode"
    OTELCOL_CONFIG=$compose_config docker compose -f "$COMPOSE_FILE" up -d
    for name in otelcol jaeger prometheus alertmanager grafana; do wait_ready "$name" 120; done
    print_urls docker ;;
  stop:native) stop_native ;;
  stop:docker) docker compose -f "$COMPOSE_FILE" down; rm -f "$RUN/mode" ;;
  status:native) say "native"; status_native ;;
  status:docker) docker compose -f "$COMPOSE_FILE" ps ;;
  *) echo "usage: scripts/stack.sh start [--tail-sampling] | stop | status" >&2; exit 2 ;;
esac
