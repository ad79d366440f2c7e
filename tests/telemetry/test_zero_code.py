"""Zero code: ``opentelemetry-instrument`` with every installed instrumentor (aiohttp-client and
the GenAI openai one included) around an app with no telemetry code, against the simulator. The
SDK's console exporter prints the spans; no stack needed (tests/e2e has the Jaeger variant)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pixel_llm_otel.sim import SimulatorThread, start_in_thread

APP = Path(__file__).resolve().parents[1] / "e2e" / "e2e_app.py"
INSTRUMENT = Path(sys.executable).with_name("opentelemetry-instrument")


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    with start_in_thread(seed=3) as server:
        yield server


def _json_objects(text: str) -> list[dict[str, Any]]:
    """Every top-level JSON object in ``text`` (the app's lines and the exporter's spans)."""
    decoder, found, index = json.JSONDecoder(), [], 0
    while (start := text.find("{", index)) != -1:
        try:
            value, index = decoder.raw_decode(text, start)
        except ValueError:
            index = start + 1
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


@pytest.mark.skipif(not INSTRUMENT.exists(), reason="opentelemetry-instrument is not installed")
def test_every_installed_instrumentor_still_one_post_per_attempt(sim: SimulatorThread) -> None:
    """503 then ok under opentelemetry-instrument: chat has exactly two POST children, the second
    with resend_count=1, and no POST anywhere else."""
    sim.script(["503", "ok"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        OTEL_SERVICE_NAME="zero-code-test",
        OTEL_TRACES_EXPORTER="console",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_BSP_SCHEDULE_DELAY="50",
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
    )
    argv = [str(INSTRUMENT), sys.executable, str(APP), "--url", sim.base_url, "--model", "m",
            "--calls", "1"]  # fmt: skip
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    objects = _json_objects(done.stdout)
    (call,) = [o for o in objects if o.get("event") == "call"]
    assert call["source"] == "llm"
    spans = [o for o in objects if "context" in o and "name" in o]
    by_id = {s["context"]["span_id"]: s for s in spans}
    (chat,) = [s for s in spans if s["name"] == "chat m"]
    posts = [s for s in spans if s["name"] == "POST"]
    assert len(posts) == 2, [(s["name"], s["parent_id"]) for s in spans]
    assert all(by_id.get(p["parent_id"]) is chat for p in posts)
    assert [p["attributes"].get("http.request.resend_count") for p in posts] == [None, 1]
    assert chat["context"]["trace_id"] == "0x" + call["trace_id"]
