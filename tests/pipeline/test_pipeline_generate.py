"""generate / generate_async against the simulator over loopback HTTP: the happy paths."""

from __future__ import annotations

import asyncio
import io

import pytest
import torch
from pipeline_support import MODEL, FakeEncoder, RecordingObserver

from pixel_llm_otel.monitoring import StructuredLogger
from pixel_llm_otel.pipeline import HybridPixelLLM
from pixel_llm_otel.sim import SimulatorServer, SimulatorThread


async def test_generate_async_returns_the_llm_caption(sim: SimulatorServer, make_llm, image):
    """A healthy server gives its caption, source llm, one attempt and token usage."""
    llm = make_llm(sim.base_url)
    result = await llm.generate_result_async(image)
    assert result.text is not None
    assert result.text.startswith(f"Simulated caption from {MODEL}")
    assert (result.source, result.attempts, result.outcome) == ("llm", 1, "success")
    assert result.usage is not None
    assert result.usage.output_tokens == len(result.text.split())
    assert result.error is None
    assert result.latency > 0
    assert sim.stats().count("/v1/chat/completions", "ok") == 1


def test_generate_sync_returns_a_string(sim_thread: SimulatorThread, make_llm, image):
    """The sync API returns the caption as a plain str."""
    llm = make_llm(sim_thread.base_url)
    text = llm.generate(image, "What is in the picture?")
    assert isinstance(text, str)
    assert "Simulated caption" in text


async def test_sync_api_works_inside_a_running_loop(sim_thread: SimulatorThread, make_llm, image):
    """generate() called from code that already runs an event loop (Jupyter) still works."""
    llm = make_llm(sim_thread.base_url)
    asyncio.get_running_loop()  # we are inside one
    assert llm.generate(image) is not None


@pytest.mark.parametrize(
    ("max_tokens", "expected_words", "finish"),
    [(0, 0, "length"), (3, 3, "length"), (None, 13, "stop")],
    ids=["zero", "three", "default"],
)
async def test_max_tokens_is_honoured_including_zero(
    sim: SimulatorServer,
    make_llm,
    observer: RecordingObserver,
    image,
    max_tokens,
    expected_words,
    finish,
):
    """max_tokens=0 reaches the server as 0 (not the default) and truncates the reply."""
    llm = make_llm(sim.base_url, max_tokens=256)
    result = await llm.generate_result_async(image, max_tokens=max_tokens)
    assert result.text is not None
    assert len(result.text.split()) == expected_words
    chat = observer.seen.chats[0]
    assert chat["request"].max_tokens == (256 if max_tokens is None else max_tokens)
    assert chat["response"].finish_reasons == (finish,)


@pytest.mark.parametrize(
    ("temperature", "sent"), [(0.0, 0.0), (None, 0.7), (1.5, 1.5)], ids=["zero", "default", "1.5"]
)
async def test_temperature_zero_is_honoured(
    sim: SimulatorServer, make_llm, observer: RecordingObserver, image, temperature, sent
):
    """temperature=0.0 is sent as 0.0, not replaced by the configured default."""
    llm = make_llm(sim.base_url, temperature=0.7)
    await llm.generate_async(image, temperature=temperature)
    assert observer.seen.chats[0]["request"].temperature == sent


async def test_prompt_carries_the_feature_summary(
    sim: SimulatorServer, make_llm, observer: RecordingObserver, image
):
    """The user message holds the prompt and the encoder's feature summary, and no image."""
    llm = make_llm(sim.base_url)
    await llm.generate_async(image, "Name the colours.")
    (message,) = observer.seen.chats[0]["request"].messages
    assert message["role"] == "user"
    assert isinstance(message["content"], str)
    assert message["content"].startswith("Name the colours.")
    assert "mean rgb" in message["content"]


async def test_encoder_runs_once_per_call_and_is_built_once(
    sim: SimulatorServer, make_llm, encoder: FakeEncoder, image
):
    """Each call is one encoder pass on the one encoder object given at construction."""
    llm = make_llm(sim.base_url)
    for _ in range(3):
        await llm.generate_async(image)
    assert llm.encoder is encoder
    assert encoder.passes == [1, 1, 1]


async def test_scopes_report_success(
    sim: SimulatorServer, make_llm, observer: RecordingObserver, image
):
    """generate, encode and chat scopes are opened once each and report the success."""
    llm = make_llm(sim.base_url, provider_name="my_provider")
    result = await llm.generate_result_async(image)
    (gen,) = observer.seen.generates
    assert gen["finish"] == {"outcome": "success", "attempts": 1}
    assert (gen["model"], gen["batch_size"], gen["provider"]) == (MODEL, 1, "my_provider")
    assert observer.seen.encodes[0]["batch_size"] == 1
    chat = observer.seen.chats[0]
    assert chat["attempts"] == 1
    assert chat["response"].response_model == MODEL
    assert (chat["request"].server_address, chat["request"].server_port) == ("127.0.0.1", sim.port)
    assert result.trace_id == "0" * 31 + "1"


async def test_one_caption_for_a_bchw_tensor(
    sim: SimulatorServer, make_llm, observer: RecordingObserver, images
):
    """generate() over a BCHW tensor is one caption of every image (batch_size = B)."""
    llm = make_llm(sim.base_url)
    assert await llm.generate_async(images) is not None
    assert observer.seen.generates[0]["batch_size"] == 4
    assert observer.seen.chats[0]["request"].messages[0]["content"].count("mean rgb") == 4


async def test_cuda_tensor_keys_like_cpu(make_llm, image):
    """The cache key depends on the image content, not on which tensor object holds it."""
    from pixel_llm_otel.pipeline import cache_key

    assert cache_key(MODEL, "p", image) == cache_key(MODEL, "p", image.clone())
    assert cache_key(MODEL, "p", image) != cache_key(MODEL, "p", torch.flip(image, (2,)))
    assert cache_key(MODEL, "p", image) != cache_key(MODEL, "q", image)


def test_constructor_accepts_the_original_positional_arguments(sim_thread, encoder, image):
    """The original API: positional constructor arguments, generate() -> str or None."""
    llm = HybridPixelLLM(
        sim_thread.base_url,
        MODEL,
        "cpu",
        "vit",
        None,
        64,
        0.2,
        False,
        10,
        {"retry": {"max_attempts": 2, "initial_delay": 0.001, "jitter": False}},
        encoder=encoder,
        logger=StructuredLogger("t", stream=io.StringIO()),
    )
    with llm:
        assert llm.config.max_tokens == 64
        assert llm.config.cache_size == 10
        assert llm.config.error_config.retry.max_attempts == 2
        assert isinstance(llm.generate(image), str)
        sim_thread.script(["503", "503"])
        assert llm.generate(image, "another prompt") is None


async def test_encode_once_caption_with_several_prompts(
    sim: SimulatorServer, make_llm, encoder: FakeEncoder, image
):
    """encode_async + generate_encoded_async: one encoder pass, one cache entry per prompt."""
    llm = make_llm(sim.base_url)
    encoded = await llm.encode_async(image)
    first = await llm.generate_encoded_async(encoded, "Describe it.")
    second = await llm.generate_encoded_async(encoded, "Name the colours.", max_tokens=2)
    assert encoder.passes == [1]
    assert (first.source, second.source) == ("llm", "llm")
    assert len(second.text.split()) == 2
    assert (await llm.health_async())["cache_size"] == 2
