"""scripts/build-stack.sh: on a machine where the stack is built, a rerun is a quick no-op."""

from __future__ import annotations

import subprocess
import time

from _support.procs import REPO
from _support.stack_fixtures import STACK_PROGRAMS, require_stack_binaries


def test_build_stack_check_finds_everything_cached() -> None:
    """`build-stack.sh --check` builds nothing, reports each component cached, and is fast."""
    require_stack_binaries(*STACK_PROGRAMS)
    start = time.monotonic()
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "build-stack.sh"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    elapsed = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    assert "otelcol" in result.stderr
    assert result.stderr.count(": cached (") == 3, result.stderr  # collector, Jaeger, Zipkin jar
    assert "zipkin 3.5.1: cached" in result.stderr
    assert elapsed < 60, f"--check took {elapsed:.0f}s"
