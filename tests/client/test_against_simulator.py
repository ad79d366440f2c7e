"""LMStudioClient against the project's fault simulator: each fault kind -> the documented error."""

from __future__ import annotations

import pytest

from pixel_llm_otel.client import LMStudioClient
from pixel_llm_otel.errors import (
    APIError,
    ConnectionError,
    ErrorCode,
    PixelLMError,
    StreamInterrupted,
    TimeoutError,
)
from pixel_llm_otel.sim import FaultSpec, SimulatorServer

MSG = [{"role": "user", "content": "describe"}]


@pytest.mark.parametrize(
    ("fault", "error_type", "code"),
    [
        ("500", APIError, ErrorCode.HTTP_SERVER_ERROR),
        ("502", APIError, ErrorCode.HTTP_UNAVAILABLE),
        ("503", APIError, ErrorCode.HTTP_UNAVAILABLE),
        ("504", APIError, ErrorCode.HTTP_UNAVAILABLE),
        ("429", APIError, ErrorCode.RATE_LIMITED),
        ("hang", TimeoutError, ErrorCode.TIMEOUT_READ),
        ("reset", ConnectionError, ErrorCode.CONNECTION_RESET),
        ("malformed_json", APIError, ErrorCode.RESPONSE_MALFORMED),
        ("empty_choices", APIError, ErrorCode.RESPONSE_INVALID),
    ],
    ids=lambda v: str(v) if isinstance(v, str) else None,
)
@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_simulated_fault_maps_to_typed_error(
    fault: str, error_type: type[PixelLMError], code: ErrorCode, stream: bool
) -> None:
    """A scripted fault, then recovery: the typed error first, a good answer after.

    A streamed reset strikes after the first word: text was delivered, so it is an interruption.
    """
    if stream and fault == "reset":
        error_type, code = StreamInterrupted, ErrorCode.STREAM_INTERRUPTED
    # streamed answers paced, so a reset comes after the client has read the first word
    spec = FaultSpec(stream_chunk_delay=0.02) if stream and fault == "reset" else "healthy"
    async with (
        SimulatorServer(seed=1, scenario=spec) as sim,
        LMStudioClient(sim.base_url, read_timeout=0.3) as client,
    ):
        sim.script([fault, "ok"])
        call = client.chat_via_stream if stream else client.chat
        with pytest.raises(error_type) as info:
            await call(MSG, model="m1", max_tokens=16, temperature=0.0)
        assert info.value.code is code
        if fault == "429":
            assert isinstance(info.value, APIError)
            assert info.value.retry_after == 1.0
        good = await call(MSG, model="m1", max_tokens=16, temperature=0.0)
        assert good.text
        assert sim.stats().total == 2


async def test_models_from_simulator() -> None:
    """The simulator's model list comes back through list_models and health."""
    async with SimulatorServer() as sim, LMStudioClient(sim.base_url) as client:
        models = await client.list_models()
        status = await client.health()
    assert models
    assert status.available
    assert list(status.models) == models
