#!/usr/bin/env bash
# Build or install the observability stack's programs, once per version, and link them into
# .stack/bin/ of this checkout:
#
#   otelcol       the lean collector from collector/builder-config.yaml (ocb, upstream Go modules)
#   jaeger        Jaeger v2 from its Go module, through the wrapper module collector/jaeger/
#   prometheus, promtool, alertmanager, amtool   Debian's packages (apt-get)
#   zipkin.jar    Zipkin's server with its Lens UI (Maven Central io.zipkin:zipkin-server, classifier
#                 exec), run with the machine's Java 17+; cached under
#                 ~/.cache/pixel-llm-otel/bin/zipkin-<version>/ and checked against Maven's sha1
#   chromium, chromedriver   Debian's packages, for the browser test of the Zipkin UI (apt-get)
#
# Go binaries are cached under ~/.cache/pixel-llm-otel/bin/<component>-<version>-<hash>/, the hash
# covering the manifest (or go.mod/go.sum) and the Go version, so an edited manifest builds anew
# and a warm machine finishes in seconds. Go's own module and build caches stay at their defaults
# (~/go/pkg/mod, ~/.cache/go-build). A cold build takes minutes (see docs/stack.md).
#
# Usage: scripts/build-stack.sh [--no-apt | --check]
#   --no-apt / STACK_NO_APT=1   do not install the Debian packages (report them missing instead)
#   --check                     build and install nothing: exit 1 if anything is missing or stale
#   PIXEL_LLM_OTEL_CACHE        cache root (default ~/.cache/pixel-llm-otel)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

OCB_VERSION=v0.161.0          # go.opentelemetry.io/collector/cmd/builder; = the manifest's release
ZIPKIN_VERSION=3.5.1          # io.zipkin:zipkin-server:<version>:exec (Apache-2.0)
MAVEN_CENTRAL=${MAVEN_CENTRAL:-https://repo1.maven.org/maven2}
CACHE_ROOT=${PIXEL_LLM_OTEL_CACHE:-$HOME/.cache/pixel-llm-otel}
BIN_ROOT=$CACHE_ROOT/bin
LOG_DIR=$CACHE_ROOT/logs
LINK_DIR=$repo/.stack/bin
NO_APT=${STACK_NO_APT:-0}
CHECK=0
STALE=0
case "${1:-}" in
  --no-apt) NO_APT=1 ;;
  --check) CHECK=1; NO_APT=1 ;;
  "") ;;
  *) echo "usage: scripts/build-stack.sh [--no-apt | --check]" >&2; exit 2 ;;
esac

export GOTOOLCHAIN=local      # build with the machine's Go; never download a toolchain

say() { echo "build-stack: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }
hash_of() { cat "$@" | sha256sum | cut -c1-12; }
elapsed() { echo $(( $(date +%s) - $1 ))s; }

mkdir -p "$BIN_ROOT" "$LOG_DIR" "$LINK_DIR"
# One build at a time per machine (make test and a developer's make stack may overlap).
exec 9>"$CACHE_ROOT/build-stack.lock"
flock 9

prune() {  # prune PREFIX: keep the three newest cached builds of a component
  ls -1dt "$BIN_ROOT/$1"-* 2>/dev/null | grep -v '\.tmp$' | tail -n +4 | xargs -r rm -rf
}

link() {  # link NAME TARGET
  ln -sfn "$2" "$LINK_DIR/$1"
}

need_go() {
  command -v go >/dev/null 2>&1 || die "go is not on PATH; the collector and Jaeger are built with Go (1.24+)"
}

# --- the collector ---------------------------------------------------------------------------
build_otelcol() {
  local manifest=collector/builder-config.yaml
  local version key dir name start log
  version=$(sed -n 's/^  version: *//p' "$manifest" | head -1)
  name=$(sed -n 's/^  name: *//p' "$manifest" | head -1)
  need_go
  key=$( { cat "$manifest"; echo "$OCB_VERSION"; go env GOVERSION; } | sha256sum | cut -c1-12)
  dir=$BIN_ROOT/otelcol-$version-$key
  if [ -x "$dir/$name" ] && [ -f "$dir/.complete" ]; then
    say "otelcol $version: cached ($dir)"
  elif [ "$CHECK" = 1 ]; then
    say "otelcol $version: NOT BUILT for this manifest ($dir)"; STALE=1; return 0
  else
    start=$(date +%s)
    log=$LOG_DIR/otelcol-$version-$key.log
    say "otelcol $version: building from $manifest with ocb $OCB_VERSION (cold: 10-25 min; log $log)"
    local ocb_dir=$CACHE_ROOT/build/ocb-$OCB_VERSION
    if [ ! -x "$ocb_dir/builder" ]; then
      GOBIN=$ocb_dir go install "go.opentelemetry.io/collector/cmd/builder@$OCB_VERSION" >>"$log" 2>&1 \
        || { tail -30 "$log" >&2; die "installing ocb $OCB_VERSION failed"; }
    fi
    local work=$CACHE_ROOT/build/otelcol-$version-$key
    rm -rf "$work" "$dir.tmp"
    mkdir -p "$work"
    # the committed manifest has no output_path: point it at the build directory
    sed "s|^dist:|dist:\n  output_path: $work|" "$manifest" >"$work.manifest.yaml"
    (cd "$work" && "$ocb_dir/builder" --config="$work.manifest.yaml") >>"$log" 2>&1 \
      || { tail -40 "$log" >&2; die "building the collector failed (log: $log)"; }
    mkdir -p "$dir.tmp"
    cp "$work/$name" "$dir.tmp/$name"
    cp "$manifest" "$dir.tmp/builder-config.yaml"
    touch "$dir.tmp/.complete"
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
    rm -rf "$work" "$work.manifest.yaml"
    say "otelcol $version: built in $(elapsed "$start") -> $dir"
    prune otelcol
  fi
  link otelcol "$dir/$name"
}

# --- Jaeger v2 -------------------------------------------------------------------------------
build_jaeger() {
  local mod=collector/jaeger
  local version key dir start log
  version=$(sed -n 's/^require github.com\/jaegertracing\/jaeger \(v[^ ]*\).*/\1/p; s/^\tgithub.com\/jaegertracing\/jaeger \(v[^ ]*\).*/\1/p' "$mod/go.mod" | head -1)
  [ -n "$version" ] || die "cannot find the jaeger version in $mod/go.mod"
  need_go
  local ldflags="-s -w -X github.com/jaegertracing/jaeger/internal/version.latestVersion=$version"
  key=$( { cat "$mod/go.mod" "$mod/go.sum"; go env GOVERSION; echo "$ldflags"; } | sha256sum | cut -c1-12)
  dir=$BIN_ROOT/jaeger-$version-$key
  if [ -x "$dir/jaeger" ] && [ -f "$dir/.complete" ]; then
    say "jaeger $version: cached ($dir)"
  elif [ "$CHECK" = 1 ]; then
    say "jaeger $version: NOT BUILT for this go.mod/go.sum ($dir)"; STALE=1; return 0
  else
    start=$(date +%s)
    log=$LOG_DIR/jaeger-$version-$key.log
    say "jaeger $version: building github.com/jaegertracing/jaeger/cmd/jaeger (cold: 10-20 min; log $log)"
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
    (cd "$mod" && go build -trimpath -ldflags="$ldflags" -o "$dir.tmp/jaeger" \
        github.com/jaegertracing/jaeger/cmd/jaeger) >>"$log" 2>&1 \
      || { tail -40 "$log" >&2; die "building Jaeger failed (log: $log)"; }
    touch "$dir.tmp/.complete"
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
    say "jaeger $version: built in $(elapsed "$start") -> $dir"
    prune jaeger
  fi
  link jaeger "$dir/jaeger"
}

# --- Prometheus and Alertmanager (Debian packages) ----------------------------------------------
install_prometheus() {
  local missing=()
  command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  command -v prometheus-alertmanager >/dev/null 2>&1 || command -v alertmanager >/dev/null 2>&1 \
    || missing+=(prometheus-alertmanager)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$NO_APT" = 1 ]; then
      say "missing: ${missing[*]} (apt-get install -y prometheus prometheus-alertmanager)"
      STALE=1
      return 0
    fi
    local start sudo=""
    start=$(date +%s)
    [ "$(id -u)" = 0 ] || sudo="sudo"
    say "installing Debian packages prometheus prometheus-alertmanager (their services are not used)"
    $sudo apt-get update -q >>"$LOG_DIR/apt.log" 2>&1 || { tail -20 "$LOG_DIR/apt.log" >&2; die "apt-get update failed"; }
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
      prometheus prometheus-alertmanager >>"$LOG_DIR/apt.log" 2>&1 \
      || { tail -20 "$LOG_DIR/apt.log" >&2; die "apt-get install failed"; }
    # the packages enable their services; this stack runs the binaries itself
    if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
      $sudo systemctl disable --now prometheus prometheus-alertmanager >/dev/null 2>&1 || true
    fi
    say "prometheus, alertmanager: installed in $(elapsed "$start")"
  fi
  local am
  am=$(command -v prometheus-alertmanager || command -v alertmanager || true)
  link prometheus "$(command -v prometheus)"
  link promtool "$(command -v promtool)"
  [ -n "$am" ] && link alertmanager "$am"
  command -v amtool >/dev/null 2>&1 && link amtool "$(command -v amtool)"
  say "prometheus: $(prometheus --version 2>&1 | head -1 | cut -d' ' -f1-3); alertmanager: $("$am" --version 2>&1 | head -1 | cut -d' ' -f1-3)"
}

# --- Zipkin (Maven Central) ----------------------------------------------------------------------
fetch_zipkin() {
  local dir=$BIN_ROOT/zipkin-$ZIPKIN_VERSION start
  local url=$MAVEN_CENTRAL/io/zipkin/zipkin-server/$ZIPKIN_VERSION/zipkin-server-$ZIPKIN_VERSION-exec.jar
  if ! command -v java >/dev/null 2>&1; then
    say "zipkin: java not found; the native stack runs without the Zipkin UI (apt-get install openjdk-17-jre-headless)"
  fi
  if [ -f "$dir/zipkin.jar" ] && [ -f "$dir/.complete" ]; then
    say "zipkin $ZIPKIN_VERSION: cached ($dir)"
  elif [ "$CHECK" = 1 ]; then
    say "zipkin $ZIPKIN_VERSION: NOT FETCHED ($dir)"; STALE=1; return 0
  else
    start=$(date +%s)
    say "zipkin $ZIPKIN_VERSION: fetching $url (130 MB)"
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
    curl -sSfL --retry 3 -o "$dir.tmp/zipkin.jar" "$url" \
      && curl -sSfL --retry 3 -o "$dir.tmp/zipkin.jar.sha1" "$url.sha1" \
      || die "fetching the Zipkin jar failed ($url)"
    [ "$(sha1sum "$dir.tmp/zipkin.jar" | cut -c1-40)" = "$(cut -c1-40 "$dir.tmp/zipkin.jar.sha1")" ] \
      || die "the Zipkin jar does not match Maven Central's sha1"
    touch "$dir.tmp/.complete"
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
    say "zipkin $ZIPKIN_VERSION: fetched in $(elapsed "$start") -> $dir"
  fi
  link zipkin.jar "$dir/zipkin.jar"
}

# --- Chromium for the browser test (Debian packages) -------------------------------------------
install_chromium() {
  if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    return 0
  fi
  if [ "$NO_APT" = 1 ] || [ "${STACK_NO_BROWSER:-0}" = 1 ]; then
    say "chromium not installed: the browser test of the Zipkin UI will skip (apt-get install chromium chromium-driver)"
    return 0
  fi
  local start sudo=""
  start=$(date +%s)
  [ "$(id -u)" = 0 ] || sudo="sudo"
  say "installing Debian packages chromium chromium-driver (the browser test of the Zipkin UI)"
  if $sudo apt-get update -q >>"$LOG_DIR/apt.log" 2>&1 \
      && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
        chromium chromium-driver >>"$LOG_DIR/apt.log" 2>&1; then
    say "chromium: installed in $(elapsed "$start")"
  else
    say "chromium could not be installed (log $LOG_DIR/apt.log): the browser test will skip"
  fi
}

total=$(date +%s)
install_prometheus
install_chromium
fetch_zipkin
build_otelcol
build_jaeger
if [ "$STALE" = 1 ]; then
  say "not ready: run scripts/build-stack.sh (make stack-build)"
  exit 1
fi
say "ready in $(elapsed "$total"): $(cd "$LINK_DIR" && ls | tr '\n' ' ')-> $LINK_DIR"
