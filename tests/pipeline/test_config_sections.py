"""HybridConfig: composed sections, checked once, handed down unchanged; the per-call deadline."""

from __future__ import annotations

import pytest
import torch
from pipeline_support import MODEL, FakeEncoder, fast_errors

from pixel_llm_otel.client import ClientConfig
from pixel_llm_otel.errors import RetryExhausted, ValidationError
from pixel_llm_otel.pipeline import CallDefaults, EncoderSettings, HybridConfig, HybridPixelLLM
from pixel_llm_otel.resilience import FakeClock
from pixel_llm_otel.sim.thread import SimulatorThread


def test_flat_keywords_land_in_their_sections() -> None:
    """The original flat keywords build the sections and stay readable under their old names."""
    config = HybridConfig(
        lm_studio_url="http://127.0.0.1:9/v1/",
        lm_studio_model="m",
        api_key="k",
        read_timeout=7,
        device="cpu",
        max_tokens=0,
        max_concurrency=300,
    )
    assert config.client.base_url == config.lm_studio_url == "http://127.0.0.1:9/v1"
    assert (config.client.api_key, config.client.read_timeout) == ("k", 7.0)
    assert config.client.pool_limit == 300  # at least max_concurrency
    assert (config.call.model, config.call.max_tokens) == ("m", 0)
    assert config.encoder == EncoderSettings(device="cpu")
    assert config.error_config is config.errors


def test_sections_are_handed_down_unchanged(sim_thread: SimulatorThread) -> None:
    """The pipeline's client section is the very object the HTTP client gets."""
    client = ClientConfig(base_url=sim_thread.base_url, read_timeout=3.0)
    config = HybridConfig(client=client, call=CallDefaults(model=MODEL))
    llm = HybridPixelLLM.from_config(config, encoder=FakeEncoder())
    try:
        assert llm.config is config
        assert llm.config.client is client
        assert llm.generate(torch.rand(3, 8, 8)) is not None
        (state,) = llm.async_pipeline._core.loops._entries.values()
        assert state.value.client.config is client
    finally:
        llm.close()


def test_from_config_round_trips_with_flat_overrides() -> None:
    """from_config keeps the config; a flat keyword that differs from its default overrides it."""
    config = HybridConfig(lm_studio_model="a", device="cpu")
    with HybridPixelLLM(config=config, encoder=FakeEncoder()) as same:
        assert same.config is config
    with HybridPixelLLM(config=config, temperature=0.1, encoder=FakeEncoder()) as tuned:
        assert (tuned.config.temperature, tuned.config.lm_studio_model) == (0.1, "a")


@pytest.mark.parametrize(
    ("options", "field", "shown", "hidden"),
    [
        ({"lm_studio_url": "http://:8080/v1"}, "lm_studio_url", "with a host", None),
        ({"lm_studio_url": "http://me:pw123@h/v1"}, "lm_studio_url", "***@h", "pw123"),
        ({"lm_studio_url": "http://h/v1?x=1"}, "lm_studio_url", "without a query", None),
        ({"lm_studio_url": "http://h:99999/v1"}, "lm_studio_url", "1..65535", None),
        ({"lm_studio_url": "http://[::1/v1"}, "lm_studio_url", "IPv6", None),
        ({"api_key": ""}, "api_key", "non-empty", None),
        ({"api_key": "abc\r\ndef"}, "api_key", "no CR, LF or NUL", "abc"),
        ({"api_key": "key\x00zzz"}, "api_key", "no CR, LF or NUL", "zzz"),
    ],
    ids=["no-host", "credentials", "query", "port", "ipv6", "empty-key", "crlf-key", "nul-key"],
)
def test_bad_settings_fail_at_construction_naming_field_and_masking_secrets(
    options: dict[str, object], field: str, shown: str, hidden: str | None
) -> None:
    """The error names the field, what was expected, and never the secret."""
    with pytest.raises(ValidationError) as caught:
        HybridPixelLLM(encoder=FakeEncoder(), **options)  # type: ignore[arg-type]
    error = caught.value
    assert error.field == field
    assert shown in str(error)
    if hidden is not None:
        assert hidden not in str(error)
        assert hidden not in repr(error.to_dict())


@pytest.mark.parametrize("keyword", ["deadline", "timeout"], ids=["deadline", "timeout-alias"])
def test_per_call_deadline_overrides_the_retry_deadline(
    sim_thread: SimulatorThread, keyword: str
) -> None:
    """deadline= (or timeout=) on generate bounds this call's retries, not the configured 100 s."""
    sim_thread.set_scenario("outage")
    clock = FakeClock()
    llm = HybridPixelLLM(
        sim_thread.base_url,
        lm_studio_model=MODEL,
        error_config=fast_errors(attempts=50, deadline=100.0),
        encoder=FakeEncoder(),
        clock=clock,
        async_sleep=clock.async_sleep,
    )
    image = torch.rand(3, 8, 8)
    try:
        result = llm.generate_result(image, **{keyword: 0.012})  # type: ignore[arg-type]
        assert isinstance(result.error, RetryExhausted)
        assert result.error.context["reason"] == "deadline"
        assert 1 < result.attempts < 50
        unbounded = llm.generate_result(image)
        assert unbounded.attempts == 50
    finally:
        llm.close()


def test_deadline_and_timeout_together_are_refused(sim_thread: SimulatorThread) -> None:
    """Passing both the keyword and its alias is a caller bug: ValidationError, no request."""
    with (
        HybridPixelLLM(sim_thread.base_url, encoder=FakeEncoder()) as llm,
        pytest.raises(ValidationError) as caught,
    ):
        llm.generate(torch.rand(3, 8, 8), deadline=1, timeout=1)
    assert caught.value.field == "timeout"
    assert sim_thread.stats().total == 0
