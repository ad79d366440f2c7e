"""generate_batch: one encoder pass, per-item results, a failing item never fails the others."""

from __future__ import annotations

import pytest
from pipeline_support import FakeEncoder, RecordingObserver, fast_errors

from pixel_llm_otel.errors import EncoderError, RetryExhausted, ValidationError
from pixel_llm_otel.sim import SimulatorServer


async def test_batch_with_mixed_failures(
    sim: SimulatorServer, make_llm, images, encoder: FakeEncoder, observer: RecordingObserver
):
    """Scripted: items 0 and 2 ok, item 1 fails every attempt, item 3 succeeds on a retry."""
    llm = make_llm(sim.base_url, max_concurrency=1, error_config=fast_errors(attempts=2))
    sim.script(["ok", "503", "503", "ok", "500", "ok"])
    results = await llm.generate_batch_results_async(images)
    assert [r.source for r in results] == ["llm", None, "llm", "llm"]
    assert [r.attempts for r in results] == [1, 2, 1, 2]
    assert isinstance(results[1].error, RetryExhausted)
    assert encoder.passes == [4]  # one encoder pass for the whole batch
    (batch,) = observer.seen.batches
    assert batch["batch_size"] == 4
    assert batch["finish"]["outcome"] == "error"
    assert [g["finish"]["outcome"] for g in observer.seen.generates] == [
        "success",
        "error",
        "success",
        "success",
    ]
    assert all(g["batch_size"] == 1 for g in observer.seen.generates)
    assert len(observer.seen.encodes) == 1


def test_sync_batch_returns_texts_in_order(sim_thread, make_llm, images):
    """The sync batch returns one caption per image, in the input order."""
    llm = make_llm(sim_thread.base_url, max_concurrency=4)
    texts = llm.generate_batch(list(images))
    assert len(texts) == 4
    assert all(isinstance(t, str) for t in texts)


async def test_batch_concurrency_is_bounded(make_llm, images):
    """At most max_concurrency requests are in flight at once."""
    from pixel_llm_otel.sim import FaultSpec, Latency

    spec = FaultSpec(name="slowish", latency=Latency.fixed(0.05))
    async with SimulatorServer(port=0, seed=1, scenario=spec) as server:
        llm = make_llm(server.base_url, max_concurrency=2)
        results = await llm.generate_batch_results_async(images)
        records = server.requests()
    assert all(r.source == "llm" for r in results)
    assert len(records) == 4
    # With two at a time and 50 ms each, the 3rd request arrives after the 1st finished.
    assert records[2].at - records[0].at >= 0.04


async def test_batch_encoder_failure_reaches_every_item(sim: SimulatorServer, make_llm, images):
    """When the shared encoder pass fails, every item reports EncoderError (no HTTP at all)."""

    class Broken(FakeEncoder):
        async def encode_async(self, batch):
            raise RuntimeError("CUDA error: device-side assert triggered")

    llm = make_llm(sim.base_url, encoder=Broken())
    results = await llm.generate_batch_results_async(images)
    assert all(isinstance(r.error, EncoderError) for r in results)
    assert all(r.text is None for r in results)
    assert sim.stats().count("/v1/chat/completions") == 0


@pytest.mark.parametrize(
    "bad",
    [[], "not images", [None]],
    ids=["empty", "string", "none-item"],
)
async def test_batch_rejects_bad_input(sim: SimulatorServer, make_llm, bad):
    """A malformed batch raises ValidationError naming the field."""
    llm = make_llm(sim.base_url)
    with pytest.raises(ValidationError) as caught:
        await llm.generate_batch_async(bad)
    assert caught.value.field in ("images", "images[0]")


async def test_batch_rejects_mixed_sizes(sim: SimulatorServer, make_llm):
    """Images of different sizes cannot share one encoder pass: ValidationError."""
    import torch

    llm = make_llm(sim.base_url)
    with pytest.raises(ValidationError, match="one shape"):
        await llm.generate_batch_async([torch.rand(3, 8, 8), torch.rand(3, 9, 9)])
