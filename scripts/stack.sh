#!/usr/bin/env bash
# Run the observability stack: collector, Jaeger, Zipkin, Prometheus, Alertmanager (and Grafana
# with Docker).
#
#   scripts/stack.sh start [--tail-sampling] [NAME...]    start (all, or the named components) and
#                                                         print the URLs and the OTEL_* lines
#   scripts/stack.sh stop [NAME...]                       stop (all, or the named components)
#   scripts/stack.sh restart [--tail-sampling] [NAME...]  stop, then start
#   scripts/stack.sh status                               what runs, and whether it answers
#   scripts/stack.sh env                                  the OTEL_* lines for an application
#   scripts/stack.sh wipe                                 stop everything, delete .stack/data and
#                                                         .stack/logs (traces, metrics, silences)
# NAME: otelcol jaeger zipkin prometheus alertmanager.
#
# Native (the default where no Docker engine answers): the programs that scripts/build-stack.sh
# linked into .stack/bin/ run in the background with the repository's config files; pid files,
# logs and data live under .stack/ (gitignored). Each start of a component moves its previous log
# to <name>.log.1, so logs never grow past two runs. A running collector started with the other
# config (plain vs --tail-sampling) is restarted with the one asked for; the rest keep running.
# Zipkin (its UI is the native trace viewer) runs when Java and the Zipkin jar are there.
# Docker (where `docker info` reaches an engine): `docker compose -f collector/docker-compose.yaml`
# with the official images and the same config files, plus Grafana.
# STACK_MODE=native|docker|auto (default auto) picks one.
# Ports (native and compose): STACK_OTLP_GRPC_PORT (4317), STACK_OTLP_HTTP_PORT (4318),
# STACK_JAEGER_PORT (16686), STACK_ZIPKIN_PORT (9411), STACK_PROMETHEUS_PORT (9090),
# STACK_ALERTMANAGER_PORT (9093), STACK_COLLECTOR_HEALTH_PORT (13133),
# STACK_COLLECTOR_METRICS_PORT (8888), STACK_COLLECTOR_EXPORTER_PORT (8889); native only:
# STACK_JAEGER_OTLP_GRPC_PORT (14317), STACK_JAEGER_OTLP_HTTP_PORT (14318),
# STACK_JAEGER_GRPC_PORT (16685), STACK_JAEGER_HEALTH_PORT (13134), STACK_JAEGER_METRICS_PORT (14269).
# STACK_DIR moves the state directory (default .stack); the programs stay in .stack/bin/.
set -euo pipefail -f  # -f: no globbing (Zipkin options contain [0])
cd "$(dirname "$0")/.."
repo=$(pwd)

STATE=${STACK_DIR:-$repo/.stack}
BIN=$repo/.stack/bin
RUN=$STATE/run
LOGS=$STATE/logs
DATA=$STATE/data
COMPOSE_FILE=$repo/collector/docker-compose.yaml
MODE=${STACK_MODE:-auto}
# start order; stop goes in reverse
COMPONENTS=(jaeger zipkin otelcol alertmanager prometheus)

say() { echo "stack: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# Ports: what `start` chose is kept in $RUN/ports.env, so later commands use the same ones.
# STACK_*_PORT variables win over the saved ports.
if [ -f "$STATE/run/ports.env" ]; then . "$STATE/run/ports.env"; fi
P_OTLP_GRPC=${STACK_OTLP_GRPC_PORT:-${P_OTLP_GRPC:-4317}}
P_OTLP_HTTP=${STACK_OTLP_HTTP_PORT:-${P_OTLP_HTTP:-4318}}
P_HEALTH=${STACK_COLLECTOR_HEALTH_PORT:-${P_HEALTH:-13133}}
P_METRICS=${STACK_COLLECTOR_METRICS_PORT:-${P_METRICS:-8888}}
P_EXPORTER=${STACK_COLLECTOR_EXPORTER_PORT:-${P_EXPORTER:-8889}}
P_JAEGER=${STACK_JAEGER_PORT:-${P_JAEGER:-16686}}
P_JAEGER_GRPC=${STACK_JAEGER_GRPC_PORT:-${P_JAEGER_GRPC:-16685}}
P_JAEGER_OTLP_GRPC=${STACK_JAEGER_OTLP_GRPC_PORT:-${P_JAEGER_OTLP_GRPC:-14317}}
P_JAEGER_OTLP_HTTP=${STACK_JAEGER_OTLP_HTTP_PORT:-${P_JAEGER_OTLP_HTTP:-14318}}
P_JAEGER_HEALTH=${STACK_JAEGER_HEALTH_PORT:-${P_JAEGER_HEALTH:-13134}}
P_JAEGER_METRICS=${STACK_JAEGER_METRICS_PORT:-${P_JAEGER_METRICS:-14269}}
P_ZIPKIN=${STACK_ZIPKIN_PORT:-${P_ZIPKIN:-9411}}
P_PROMETHEUS=${STACK_PROMETHEUS_PORT:-${P_PROMETHEUS:-9090}}
P_ALERTMANAGER=${STACK_ALERTMANAGER_PORT:-${P_ALERTMANAGER:-9093}}

save_ports() {
  local v
  for v in P_OTLP_GRPC P_OTLP_HTTP P_HEALTH P_METRICS P_EXPORTER P_JAEGER P_JAEGER_GRPC \
      P_JAEGER_OTLP_GRPC P_JAEGER_OTLP_HTTP P_JAEGER_HEALTH P_JAEGER_METRICS P_ZIPKIN \
      P_PROMETHEUS P_ALERTMANAGER; do
    echo "$v=${!v}"
  done >"$RUN/ports.env"
}

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
    otelcol) echo "http://127.0.0.1:$P_HEALTH/" ;;
    jaeger) echo "http://127.0.0.1:$P_JAEGER/api/services" ;;
    zipkin) echo "http://127.0.0.1:$P_ZIPKIN/health" ;;
    prometheus) echo "http://127.0.0.1:$P_PROMETHEUS/-/ready" ;;
    alertmanager) echo "http://127.0.0.1:$P_ALERTMANAGER/-/ready" ;;
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

zipkin_available() { [ -f "$BIN/zipkin.jar" ] && command -v java >/dev/null 2>&1; }

collector_configs() {  # the collector's --config flags: base config, plus the Zipkin overlay
  local flags="--config=$1"
  zipkin_available && flags="$flags --config=$repo/collector/otelcol-zipkin.yaml"
  echo "$flags"
}

# Prometheus reads a copy of prometheus.yml with this stack's ports and absolute rule paths.
render_prometheus() {
  sed -e "s|127.0.0.1:8889|127.0.0.1:$P_EXPORTER|; s|127.0.0.1:8888|127.0.0.1:$P_METRICS|" \
      -e "s|127.0.0.1:14269|127.0.0.1:$P_JAEGER_METRICS|; s|127.0.0.1:9093|127.0.0.1:$P_ALERTMANAGER|" \
      -e "s|127.0.0.1:9090|127.0.0.1:$P_PROMETHEUS|" \
      -e "s|^  - rules/|  - $repo/collector/prometheus/rules/|" \
      "$repo/collector/prometheus/prometheus.yml" >"$RUN/prometheus.yml"
}

env_of() {  # env_of NAME: the environment variables of the component (ports)
  case "$1" in
    otelcol) echo "OTELCOL_OTLP_GRPC_ENDPOINT=127.0.0.1:$P_OTLP_GRPC" \
      "OTELCOL_OTLP_HTTP_ENDPOINT=127.0.0.1:$P_OTLP_HTTP OTELCOL_HEALTH_ENDPOINT=127.0.0.1:$P_HEALTH" \
      "OTELCOL_PROMETHEUS_ENDPOINT=127.0.0.1:$P_EXPORTER OTELCOL_METRICS_PORT=$P_METRICS" \
      "OTELCOL_JAEGER_ENDPOINT=127.0.0.1:$P_JAEGER_OTLP_GRPC" \
      "OTELCOL_ZIPKIN_ENDPOINT=http://127.0.0.1:$P_ZIPKIN/api/v2/spans" ;;
    # OTEL_TRACES_SAMPLER=always_off: Jaeger would trace its own queries into our collector
    jaeger) echo "OTEL_TRACES_SAMPLER=always_off JAEGER_QUERY_HTTP_ENDPOINT=127.0.0.1:$P_JAEGER" \
      "JAEGER_QUERY_GRPC_ENDPOINT=127.0.0.1:$P_JAEGER_GRPC" \
      "JAEGER_OTLP_GRPC_ENDPOINT=127.0.0.1:$P_JAEGER_OTLP_GRPC" \
      "JAEGER_OTLP_HTTP_ENDPOINT=127.0.0.1:$P_JAEGER_OTLP_HTTP" \
      "JAEGER_HEALTH_ENDPOINT=127.0.0.1:$P_JAEGER_HEALTH JAEGER_METRICS_PORT=$P_JAEGER_METRICS" ;;
    # in-memory storage (the default), at most ZIPKIN_MEM_MAX_SPANS spans
    zipkin) echo "STORAGE_TYPE=mem MEM_MAX_SPANS=${ZIPKIN_MEM_MAX_SPANS:-200000}" ;;
  esac
}

argv_of() {  # argv_of NAME COLLECTOR_CONFIG
  case "$1" in
    otelcol) echo "$BIN/otelcol $(collector_configs "$2")" ;;
    jaeger) echo "$BIN/jaeger --config=$repo/collector/jaeger/config.yaml" ;;
    # Armeria's port list replaces the default one: port, loopback address and protocol
    zipkin) echo "java ${ZIPKIN_JAVA_OPTS:--Xms64m -Xmx384m -XX:TieredStopAtLevel=1} -jar $BIN/zipkin.jar" \
      "--armeria.ports[0].port=$P_ZIPKIN --armeria.ports[0].ip=127.0.0.1" \
      "--armeria.ports[0].protocols[0]=http" ;;
    alertmanager) echo "$BIN/alertmanager --config.file=$repo/collector/alertmanager/alertmanager.yml" \
      "--storage.path=$DATA/alertmanager --web.listen-address=127.0.0.1:$P_ALERTMANAGER --cluster.listen-address=" ;;
    prometheus) echo "$BIN/prometheus --config.file=$RUN/prometheus.yml" \
      "--storage.tsdb.path=$DATA/prometheus --storage.tsdb.retention.time=${STACK_PROMETHEUS_RETENTION:-7d}" \
      "--web.listen-address=127.0.0.1:$P_PROMETHEUS --enable-feature=exemplar-storage --web.enable-lifecycle" ;;
  esac
}

program_of() {  # what the command line of a live component contains
  case "$1" in zipkin) echo "$BIN/zipkin.jar" ;; *) echo "$BIN/$1" ;; esac
}

pid_alive() {  # pid_alive NAME: the pid file names a live process of that program
  local pidfile=$RUN/$1.pid pid
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  kill -0 "$pid" 2>/dev/null || return 1
  # guard against a recycled pid: its command line must be the one we started
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$(program_of "$1")"
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

print_env() {  # the lines an application needs, as printed by `start` and `env`
  cat <<EOF
  # OTLP over HTTP/protobuf, the package's default protocol:
  export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$P_OTLP_HTTP
  # or OTLP/gRPC: OTEL_EXPORTER_OTLP_PROTOCOL=grpc OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$P_OTLP_GRPC
EOF
}

print_urls() {
  echo "stack: ready ($1)"
  if [ "$1" = native ]; then
    echo "  collector      $(basename "$(cat "$RUN/otelcol.config" 2>/dev/null || echo otelcol.yaml)")"
  fi
  cat <<EOF
  OTLP HTTP      http://127.0.0.1:$P_OTLP_HTTP   OTLP gRPC  http://127.0.0.1:$P_OTLP_GRPC
EOF
  if [ "$1" = native ] && pid_alive zipkin; then
    echo "  Zipkin UI      http://127.0.0.1:$P_ZIPKIN/zipkin/   (traces; the native trace viewer)"
  elif [ "$1" = native ]; then
    echo "  Zipkin UI      not running (needs java and .stack/bin/zipkin.jar: make stack-build)"
  fi
  cat <<EOF
  Jaeger API     http://127.0.0.1:$P_JAEGER/api/traces?service=pixel-llm-demo
                 failed calls: http://127.0.0.1:$P_JAEGER/api/traces?service=pixel-llm-demo&tags={"pixel_llm.outcome":"error"}
  Prometheus     http://127.0.0.1:$P_PROMETHEUS$([ "$1" = native ] && echo "/classic/graph  (Debian's build: classic pages only)")
  Alertmanager   http://127.0.0.1:$P_ALERTMANAGER$([ "$1" = native ] && echo "/api/v2/alerts  (Debian's build has no web UI: amtool --alertmanager.url=http://127.0.0.1:$P_ALERTMANAGER alert)")
  collector      health http://127.0.0.1:$P_HEALTH/  own metrics http://127.0.0.1:$P_METRICS/metrics  exporter http://127.0.0.1:$P_EXPORTER/metrics
EOF
  [ "$1" = docker ] && echo "  Grafana        http://127.0.0.1:3000   Jaeger UI http://127.0.0.1:$P_JAEGER"
  [ "$1" = native ] && echo "  logs, data     $LOGS/  $DATA/  (scripts/stack.sh wipe deletes both)"
  echo "Point an application at it, then run it (make demo):"
  print_env
}

start_one() {  # start_one NAME COLLECTOR_CONFIG
  local name=$1 config=$2 envs
  if [ "$name" = otelcol ] && pid_alive otelcol; then
    local running
    running=$(cat "$RUN/otelcol.config" 2>/dev/null || true)
    if [ "$running" != "$config" ]; then
      say "otelcol runs with $(basename "$running"); restarting it with $(basename "$config")"
      stop_one otelcol
    fi
  fi
  if pid_alive "$name"; then say "$name already running (pid $(cat "$RUN/$name.pid"))"; return 0; fi
  if [ "$name" = zipkin ] && ! zipkin_available; then
    say "zipkin skipped: needs java and $BIN/zipkin.jar (scripts/build-stack.sh fetches it)"
    return 0
  fi
  if http_ok "$(ready_url "$name")"; then
    die "something else already answers at $(ready_url "$name"); stop it first"
  fi
  [ "$name" = prometheus ] && render_prometheus
  [ -f "$LOGS/$name.log" ] && mv -f "$LOGS/$name.log" "$LOGS/$name.log.1"
  envs=$(env_of "$name")
  # shellcheck disable=SC2046,SC2086  # env_of and argv_of print word lists on purpose
  nohup env $envs $(argv_of "$name" "$config") >"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
  [ "$name" = otelcol ] && echo "$config" >"$RUN/otelcol.config"
  say "$name started (pid $!, log $LOGS/$name.log)"
}

stop_one() {
  local name=$1 pid
  if pid_alive "$name"; then
    pid=$(cat "$RUN/$name.pid")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    say "$name stopped (pid $pid)"
  fi
  rm -f "$RUN/$name.pid"
  [ "$name" = otelcol ] && rm -f "$RUN/otelcol.config"
  return 0
}

start_native() {  # start_native CONFIG NAME...
  local config=$1 name; shift
  for name in "$@"; do
    [ "$name" = zipkin ] || [ -x "$BIN/$name" ] \
      || die "$BIN/$name missing: run scripts/build-stack.sh (make stack-build)"
  done
  mkdir -p "$RUN" "$LOGS" "$DATA"
  echo native >"$RUN/mode"
  save_ports
  for name in "$@"; do start_one "$name" "$config"; done
  for name in "$@"; do
    [ "$name" = zipkin ] && ! pid_alive zipkin && continue
    # Zipkin is a JVM: ~20 s on a quiet machine, more on a busy one
    wait_ready "$name" "$([ "$name" = zipkin ] && echo 180 || echo 60)" \
      || { stop_native "${COMPONENTS[@]}"; die "$name did not start"; }
  done
  print_urls native
}

stop_native() {  # stop_native NAME... (in reverse start order)
  local i name
  for (( i=${#COMPONENTS[@]}-1; i>=0; i-- )); do
    for name in "$@"; do [ "$name" = "${COMPONENTS[$i]}" ] && stop_one "$name"; done
  done
  local left=0
  for name in "${COMPONENTS[@]}"; do pid_alive "$name" && left=1; done
  [ "$left" = 1 ] || rm -f "$RUN/mode" "$RUN/ports.env"
}

status_native() {
  local name state
  for name in "${COMPONENTS[@]}"; do
    if pid_alive "$name"; then state="running (pid $(cat "$RUN/$name.pid"))"; else state=stopped; fi
    if http_ok "$(ready_url "$name")"; then state="$state, ready"; fi
    [ "$name" = otelcol ] && [ -f "$RUN/otelcol.config" ] && state="$state, $(basename "$(cat "$RUN/otelcol.config")")"
    printf '  %-13s %s\n' "$name" "$state"
  done
}

usage() {
  echo "usage: scripts/stack.sh start|restart [--tail-sampling] [NAME...] | stop [NAME...] | status | env | wipe" >&2
  echo "       NAME: ${COMPONENTS[*]}" >&2
  exit 2
}

cmd=${1:-}
shift || true
collector_config=$repo/collector/otelcol.yaml
compose_config=otelcol.yaml
names=()
for arg in "$@"; do
  case "$arg" in
    --tail-sampling)
      collector_config=$repo/collector/otelcol-tailsampling.yaml
      compose_config=otelcol-tailsampling.yaml ;;
    otelcol|jaeger|zipkin|prometheus|alertmanager) names+=("$arg") ;;
    *) say "unknown option or component: $arg"; usage ;;
  esac
done
[ ${#names[@]} -gt 0 ] || names=("${COMPONENTS[@]}")

mode=$(pick_mode)
case "$cmd:$mode" in
  start:native) start_native "$collector_config" "${names[@]}" ;;
  restart:native) stop_native "${names[@]}"; start_native "$collector_config" "${names[@]}" ;;
  start:docker|restart:docker)
    mkdir -p "$RUN" && echo docker >"$RUN/mode"
    # compose recreates a service whose command changed (the collector config)
    OTELCOL_CONFIG=$compose_config docker compose -f "$COMPOSE_FILE" up -d
    for name in otelcol jaeger prometheus alertmanager grafana; do wait_ready "$name" 120; done
    print_urls docker ;;
  stop:native) stop_native "${names[@]}" ;;
  stop:docker) docker compose -f "$COMPOSE_FILE" down; rm -f "$RUN/mode" ;;
  status:native) say "native"; status_native ;;
  status:docker) docker compose -f "$COMPOSE_FILE" ps ;;
  env:*) print_env ;;
  wipe:native) stop_native "${COMPONENTS[@]}"; rm -rf "$DATA" "$LOGS"; say "deleted $DATA and $LOGS" ;;
  wipe:docker) docker compose -f "$COMPOSE_FILE" down -v; rm -f "$RUN/mode" ;;
  *) usage ;;
esac
