#!/usr/bin/env bash
# Create (or reuse) the project's Python environment: a shared layer with every dependency, and a
# small per-checkout layer with this checkout's package.
#
#   shared     ~/.cache/pixel-llm-otel/venv-<key>: the dependencies of every extra (torch, the
#              OpenTelemetry SDK, the dev tools), keyed by a hash of pyproject.toml's dependencies
#              and the Python version, so a warm machine skips the multi-gigabyte torch install. It
#              holds no pixel_llm_otel: installing the package there would point every clone at
#              whichever one ran `make` last.
#   .venv/     in the checkout: a venv whose site-packages reads the shared layer's (a .pth line)
#              and holds an editable install of THIS checkout. Clones never touch each other's
#              layer; deleting a clone leaves the others working.
#
# PIXEL_LLM_OTEL_CACHE moves the cache root; PIXEL_LLM_OTEL_SHARED_VENV names an existing shared
# layer to use as it is (it is only read).
set -euo pipefail
cd "$(dirname "$0")/.."
checkout=$(pwd)

PYTHON=${PYTHON:-python3}
CACHE_ROOT=${PIXEL_LLM_OTEL_CACHE:-$HOME/.cache/pixel-llm-otel}
export PIP_CACHE_DIR="$CACHE_ROOT/pip"
export PIP_DISABLE_PIP_VERSION_CHECK=1
quiet_pip() { grep -v -i -E 'warning|!!|\*\*\*|^\s*$|license|deprecat|please|see https|by 20|corresp|editable|wheel_obj|folders in your|not uninstalling|outside environment|can.t uninstall' >&2 || true; }

if [ -n "${PIXEL_LLM_OTEL_SHARED_VENV:-}" ]; then
  shared=$PIXEL_LLM_OTEL_SHARED_VENV
  [ -x "$shared/bin/python" ] || { echo "setup: $shared/bin/python missing" >&2; exit 1; }
else
  # Key on what gets installed (dependencies and extras), not on tool settings in pyproject.toml.
  key=$("$PYTHON" - <<'PY' | sha256sum | cut -c1-16
import json, sys
try:
    import tomllib
    project = tomllib.load(open("pyproject.toml", "rb"))["project"]
    print(json.dumps([project.get("dependencies"), project.get("optional-dependencies")], sort_keys=True))
except ImportError:  # Python 3.10: no tomllib, key on the whole file
    print(open("pyproject.toml").read())
print(sys.version)
print("layered")  # shared layers hold dependencies only (no editable install of a checkout)
PY
  )
  shared="$CACHE_ROOT/venv-$key"
  if [ ! -x "$shared/bin/python" ] || [ ! -f "$shared/.complete" ]; then
    echo "setup: creating $shared (first run on this machine: installs torch, a few minutes)" >&2
    rm -rf "$shared"
    mkdir -p "$CACHE_ROOT"
    "$PYTHON" -m venv "$shared"
    "$shared/bin/python" -m pip install -q --upgrade pip "setuptools>=77" wheel
    # every dependency of every extra, then the package itself out again
    "$shared/bin/python" -m pip install -q ".[dev]" 2> >(quiet_pip)
    "$shared/bin/python" -m pip uninstall -q -y pixel-llm-otel
    touch "$shared/.complete"
    # keep the two newest environments, drop older ones
    ls -1dt "$CACHE_ROOT"/venv-* 2>/dev/null | tail -n +3 | xargs -r rm -rf
  fi
fi

layer=$checkout/.venv
stamp="$shared $checkout"
if [ -L "$layer" ]; then rm -f "$layer"; fi   # the old layout: .venv was a link to the shared one
if [ ! -x "$layer/bin/python" ] || [ "$(cat "$layer/.layer" 2>/dev/null)" != "$stamp" ]; then
  rm -rf "$layer"
  # a venv of the shared venv's interpreter: same Python, its own site-packages
  "$shared/bin/python" -m venv --without-pip "$layer"
  site=$("$layer/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  shared_site=$("$shared/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  echo "$shared_site" >"$site/_pixel_llm_otel_shared.pth"
  # the shared layer's commands (ruff, mypy, pytest, ...) where `python -m TOOL` looks for them
  for tool in "$shared"/bin/*; do
    name=$(basename "$tool")
    case "$name" in python*|activate*|pip*|Activate*) continue ;; esac
    [ -e "$layer/bin/$name" ] || ln -s "$tool" "$layer/bin/$name"
  done
  log=$(mktemp)
  if ! "$shared/bin/python" -m pip --python "$layer/bin/python" install -q --no-deps \
      --no-build-isolation -e . >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"; rm -rf "$layer"; exit 1
  fi
  rm -f "$log"
  echo "$stamp" >"$layer/.layer"
fi
echo "setup: python environment ready at .venv (this checkout) on $shared (dependencies)" >&2
