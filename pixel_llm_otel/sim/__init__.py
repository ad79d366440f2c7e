"""An OpenAI-compatible fault simulator that behaves like LM Studio (aiohttp, loopback only).

Serves ``GET /v1/models`` and ``POST /v1/chat/completions`` (JSON and SSE streaming) with
OpenAI-shaped bodies and errors, injects faults by rate or by script, runs named scenarios
switchable at runtime (``/admin/...`` or in process), and counts every request that reached it.

In a test::

    async with SimulatorServer(scenario="healthy", seed=1) as sim:   # port 0: a free port
        ...sim.base_url...                                          # http://127.0.0.1:PORT/v1
        sim.script(["503", "ok"])
        await sim.set_scenario("flaky")
        sim.stats().count("/v1/chat/completions", "503")

From synchronous code: ``with start_in_thread(scenario="flaky") as sim: ...`` (same methods,
all synchronous). From a shell: ``pixel-llm-otel simulate --port 1234 --scenario flaky``.
"""

from __future__ import annotations

from .faults import FaultKind, FaultSpec, Latency, OutageMode, OutageSpec, ScriptStep
from .openai_shapes import reply_text
from .scenarios import SCENARIOS, scenario
from .server import DEFAULT_MODELS, SimulatorServer
from .state import RequestRecord, SimulatorStats
from .testing import ManualClock, RecordingSleep
from .thread import SimulatorThread, start_in_thread

__all__ = [
    "DEFAULT_MODELS",
    "SCENARIOS",
    "FaultKind",
    "FaultSpec",
    "Latency",
    "ManualClock",
    "OutageMode",
    "OutageSpec",
    "RecordingSleep",
    "RequestRecord",
    "ScriptStep",
    "SimulatorServer",
    "SimulatorStats",
    "SimulatorThread",
    "reply_text",
    "scenario",
    "start_in_thread",
]
