"""The torch vision encoder: shapes, batching, inference mode, checkpoints, devices, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from pixel_llm_otel.encoder import (
    EncoderConfig,
    EncoderOutput,
    VisionEncoder,
    build_encoder,
    resolve_device,
)
from pixel_llm_otel.errors import EncoderError, ErrorCode, ValidationError

SMALL = EncoderConfig(image_size=32, patch_size=8, embed_dim=64, num_layers=2, num_heads=4)


@pytest.fixture(scope="module")
def encoder() -> Any:
    """A small CPU encoder shared by the module (building is the slow part)."""
    enc = VisionEncoder(SMALL, device="cpu")
    yield enc
    enc.close()


def _images(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=gen)


def test_default_config_shapes() -> None:
    """The default ViT (224 px, patch 16, 768 dims, 4 layers, 8 heads) gives (B, 768)."""
    config = EncoderConfig()
    assert (config.image_size, config.patch_size, config.embed_dim) == (224, 16, 768)
    assert (config.num_layers, config.num_heads, config.num_patches) == (4, 8, 196)
    with VisionEncoder(device="cpu") as enc:
        out = enc.encode(_images(2, 224))
    assert out.features.shape == (2, 768)
    assert out.features.dtype == torch.float32
    assert out.features.device.type == "cpu"
    assert len(out) == 2


@pytest.mark.parametrize(
    ("images", "count"),
    [
        (torch.rand(3, 32, 32), 1),
        (torch.rand(5, 3, 32, 32), 5),
        (torch.rand(2, 3, 64, 48), 2),
        ([torch.rand(3, 32, 32), torch.rand(3, 50, 20)], 2),
        ((torch.rand(3, 32, 32) * 255).to(torch.uint8), 1),
    ],
    ids=["chw", "bchw", "resized", "mixed-sizes", "uint8"],
)
def test_accepts_layouts(encoder: VisionEncoder, images: Any, count: int) -> None:
    """CHW, BCHW, other sizes, lists of mixed sizes and uint8 all give one row per image."""
    out = encoder.encode(images)
    assert out.features.shape == (count, SMALL.embed_dim)
    assert torch.isfinite(out.features).all()
    assert len(out.image_stats) == count


def test_batch_equals_single_calls(encoder: VisionEncoder) -> None:
    """A batch of N gives the same features as N one-image calls."""
    images = _images(6)
    batched = encoder.encode(images).features
    singles = torch.cat([encoder.encode(img).features for img in images])
    torch.testing.assert_close(batched, singles, atol=1e-4, rtol=1e-4)


def test_split_batches_match() -> None:
    """A batch larger than max_batch_size is split, with the same result."""
    images = _images(5)
    with (
        VisionEncoder(SMALL, device="cpu") as whole,
        VisionEncoder(
            EncoderConfig(**{**_fields(SMALL), "max_batch_size": 2}), device="cpu"
        ) as split,
    ):
        torch.testing.assert_close(
            whole.encode(images).features, split.encode(images).features, atol=1e-4, rtol=1e-4
        )


def _fields(config: EncoderConfig) -> dict[str, Any]:
    from dataclasses import fields

    return {f.name: getattr(config, f.name) for f in fields(config)}


def test_seeded_weights_are_reproducible() -> None:
    """Same seed, same features; another seed, other features; the global RNG is untouched."""
    images = _images(2)
    state = torch.random.get_rng_state()
    with VisionEncoder(SMALL, device="cpu") as a, VisionEncoder(SMALL, device="cpu") as b:
        fa, fb = a.encode(images).features, b.encode(images).features
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(fa, fb)
    other = EncoderConfig(**{**_fields(SMALL), "seed": 1})
    with VisionEncoder(other, device="cpu") as c:
        assert not torch.allclose(fa, c.encode(images).features)


def test_runs_in_inference_mode(encoder: VisionEncoder) -> None:
    """Outputs are inference tensors without grad, even when grad mode is on."""
    with torch.enable_grad():
        out = encoder.encode(_images(1))
    assert torch.is_inference(out.features)
    assert not out.features.requires_grad
    assert not encoder._model.training


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    """Weights saved by one encoder load into another config with a different seed."""
    path = tmp_path / "vit.pt"
    images = _images(2)
    with VisionEncoder(SMALL, device="cpu") as source:
        source.save_checkpoint(path)
        expected = source.encode(images).features
    loaded_config = EncoderConfig(**{**_fields(SMALL), "seed": 7, "checkpoint": str(path)})
    with VisionEncoder(loaded_config, device="cpu") as loaded:
        torch.testing.assert_close(loaded.encode(images).features, expected)


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.write_bytes(b"not a torch file"), "not a readable torch file"),
        (lambda p: torch.save([1, 2, 3], p), "does not hold a state_dict"),
        (lambda p: torch.save({"weights": torch.zeros(1)}, p), "missing keys"),
        (
            lambda p: VisionEncoder(
                EncoderConfig(**{**_fields(SMALL), "embed_dim": 32}), device="cpu"
            ).save_checkpoint(p),
            "shape mismatches: cls_token: checkpoint (1, 1, 32) vs encoder (1, 1, 64)",
        ),
    ],
    ids=["missing-file", "garbage", "not-a-dict", "wrong-keys", "wrong-shapes"],
)
def test_bad_checkpoint_is_named(tmp_path: Path, make: Any, needle: str) -> None:
    """A bad checkpoint raises EncoderError ERR_ENCODER_CHECKPOINT saying what is wrong."""
    path = tmp_path / "bad.pt"
    make(path)
    config = EncoderConfig(**{**_fields(SMALL), "checkpoint": path})
    with pytest.raises(EncoderError) as info:
        VisionEncoder(config, device="cpu")
    assert info.value.code is ErrorCode.ENCODER_CHECKPOINT
    assert needle in info.value.message
    assert info.value.context["checkpoint"] == str(path)


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "cuda:-1", "tpu", "", 3], ids=str)
def test_malformed_device_is_validation_error(spec: object) -> None:
    """A malformed device string raises ValidationError ERR_VALIDATION_DEVICE."""
    with pytest.raises(ValidationError) as info:
        resolve_device(spec)
    assert info.value.code is ErrorCode.VALIDATION_DEVICE
    assert info.value.field == "device"


def test_unavailable_device_is_encoder_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Asking for CUDA / MPS where there is none raises EncoderError ERR_ENCODER_DEVICE."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    for spec in ("cuda", "cuda:1", "mps"):
        with pytest.raises(EncoderError) as info:
            VisionEncoder(SMALL, device=spec)
        assert info.value.code is ErrorCode.ENCODER_DEVICE
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")


def test_auto_prefers_cuda_then_mps(monkeypatch: pytest.MonkeyPatch) -> None:
    """auto picks CUDA when present, else MPS, else the CPU."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert resolve_device("auto") == torch.device("cuda", 0)


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("CUDA out of memory. Tried to allocate 2.00 GiB", ErrorCode.ENCODER_OOM),
        ("mat1 and mat2 shapes cannot be multiplied", ErrorCode.ENCODER_RUNTIME),
    ],
    ids=["oom", "runtime"],
)
def test_torch_failures_translated(
    encoder: VisionEncoder, monkeypatch: pytest.MonkeyPatch, message: str, code: ErrorCode
) -> None:
    """A torch RuntimeError in the forward pass becomes EncoderError with its code, chained."""

    def boom(batch: torch.Tensor) -> torch.Tensor:
        raise RuntimeError(message)

    monkeypatch.setattr(encoder, "_forward", boom)
    with pytest.raises(EncoderError) as info:
        encoder.encode(_images(1))
    assert info.value.code is code
    assert isinstance(info.value.__cause__, RuntimeError)
    assert info.value.context["device"] == "cpu"


@pytest.mark.parametrize(
    ("images", "code"),
    [
        (torch.rand(1, 32, 32), ErrorCode.VALIDATION_SHAPE),
        (torch.rand(2, 4, 32, 32), ErrorCode.VALIDATION_SHAPE),
        (torch.rand(0, 3, 32, 32), ErrorCode.VALIDATION_SHAPE),
        (torch.ones(3, 32, 32, dtype=torch.int32), ErrorCode.VALIDATION_DTYPE),
        ("an image", ErrorCode.VALIDATION_TYPE),
        ([], ErrorCode.VALIDATION_TYPE),
    ],
    ids=["one-channel", "four-channels", "empty-batch", "int32", "str", "empty-list"],
)
def test_bad_images_raise_validation_error(
    encoder: VisionEncoder, images: Any, code: ErrorCode
) -> None:
    """Inputs that are not 3-channel images raise ValidationError with the matching code."""
    with pytest.raises(ValidationError) as info:
        encoder.encode(images)
    assert info.value.code is code
    assert info.value.field == "images"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"patch_size": 15}, "patch_size"),
        ({"num_heads": 5}, "num_heads"),
        ({"num_layers": 0}, "num_layers"),
        ({"mlp_ratio": float("nan")}, "mlp_ratio"),
        ({"seed": -1}, "seed"),
        ({"image_size": True}, "image_size"),
    ],
    ids=[
        "patch-not-divisor",
        "heads-not-divisor",
        "no-layers",
        "nan-ratio",
        "negative-seed",
        "bool-size",
    ],
)
def test_bad_config_names_the_field(options: dict[str, Any], field: str) -> None:
    """EncoderConfig refuses bad values at construction, naming the field."""
    with pytest.raises(ValidationError) as info:
        EncoderConfig(**options)
    assert info.value.field == field
    assert info.value.code is ErrorCode.VALIDATION_CONFIG


def test_config_from_mapping_and_build_encoder() -> None:
    """A mapping builds a config; unknown keys and encoder types are refused by name."""
    assert EncoderConfig.from_value({"embed_dim": 64, "num_heads": 4}).embed_dim == 64
    with pytest.raises(ValidationError, match="colour"):
        EncoderConfig.from_value({"colour": "red"})
    with pytest.raises(ValidationError) as info:
        build_encoder("resnet", SMALL, device="cpu")
    assert info.value.field == "encoder_type"
    with build_encoder("vit", _fields(SMALL), device="cpu") as enc:
        assert enc.device == "cpu"
        assert enc.feature_dim == 64


def test_summaries_describe_colour_and_features(encoder: VisionEncoder) -> None:
    """Summaries name the dominant colour and brightness, one deterministic line per image."""
    red = torch.zeros(3, 32, 32)
    red[0] = 0.9
    grey = torch.full((3, 40, 40), 0.5)
    out = encoder.encode([red, grey])
    lines = encoder.summarize(out)
    assert len(lines) == 2
    assert "dominant colour red" in lines[0]
    assert "32x32 image" in lines[0]
    assert "brightness 0.27" in lines[0]
    assert "dominant colour neutral" in lines[1]
    assert "brightness 0.50" in lines[1]
    assert encoder.summarize(out.features, [red, grey]) == lines
    assert encoder.summarize(encoder.encode([red, grey])) == lines
    with pytest.raises(ValidationError):
        encoder.summarize(out.features)


def test_closed_encoder_refuses_work() -> None:
    """After close(), encode raises RuntimeError; close() is idempotent."""
    enc = VisionEncoder(SMALL, device="cpu")
    enc.close()
    enc.close()
    with pytest.raises(RuntimeError, match="closed"):
        enc.encode(_images(1))


def test_output_is_a_dataclass(encoder: VisionEncoder) -> None:
    """encode returns an EncoderOutput carrying features and colour stats."""
    out = encoder.encode(_images(1))
    assert isinstance(out, EncoderOutput)
    assert 0.0 <= out.image_stats[0].brightness <= 1.0
