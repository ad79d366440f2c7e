#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment and install the package with every extra.
#
# The environment lives under ~/.cache/pixel-llm-otel/, keyed by a hash of pyproject.toml and the
# Python version, so a warm machine skips the multi-gigabyte torch install; a cold one builds it
# from nothing. `.venv` in the checkout is a symlink to it.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
CACHE_ROOT=${PIXEL_LLM_OTEL_CACHE:-$HOME/.cache/pixel-llm-otel}
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
PY
)
venv="$CACHE_ROOT/venv-$key"
export PIP_CACHE_DIR="$CACHE_ROOT/pip"
export PIP_DISABLE_PIP_VERSION_CHECK=1

if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
  echo "setup: creating $venv (first run on this machine: installs torch, a few minutes)" >&2
  rm -rf "$venv"
  mkdir -p "$CACHE_ROOT"
  "$PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip "setuptools>=77" wheel
  "$venv/bin/python" -m pip install -q -e ".[dev]" 2> >(grep -v -i -E 'warning|!!|\*\*\*|^\s*$|license|deprecat|please|see https|by 20|corresp|editable|wheel_obj|folders in your' >&2)
  touch "$venv/.complete"
  # keep the two newest environments, drop older ones
  ls -1dt "$CACHE_ROOT"/venv-* 2>/dev/null | tail -n +3 | xargs -r rm -rf
else
  # the environment is complete: only point the editable install at this checkout
  log=$(mktemp)
  if ! "$venv/bin/python" -m pip install -q --no-deps --no-build-isolation -e . >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"; exit 1
  fi
  rm -f "$log"
fi
ln -sfn "$venv" .venv
echo "setup: python environment ready at .venv -> $venv" >&2
