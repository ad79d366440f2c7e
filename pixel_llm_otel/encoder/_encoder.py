"""``VisionEncoder``: the ViT built once, run in inference mode, batched, optionally off-loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import DEFAULT_CLASSIFIER, EncoderError, ErrorCode, ValidationError
from ._config import EncoderConfig, resolve_device
from ._summary import ImageStats, describe, image_stats
from ._vit import VisionTransformer

__all__ = ["ENCODER_TYPES", "EncoderOutput", "VisionEncoder", "build_encoder"]

#: Encoder architectures ``build_encoder`` knows.
ENCODER_TYPES = ("vit",)

Images = torch.Tensor | Sequence[torch.Tensor]


@dataclass(frozen=True, slots=True)
class EncoderOutput:
    """One encoder pass: a ``(B, embed_dim)`` float32 CPU tensor and each image's colour stats."""

    features: torch.Tensor
    image_stats: tuple[ImageStats, ...]

    def __len__(self) -> int:
        return int(self.features.shape[0])


class VisionEncoder:
    """A seeded ViT on one device. Thread-safe; one forward pass at a time per encoder.

    ``encode`` blocks; ``encode_async`` runs it on the encoder's own single worker thread, so an
    event loop stays responsive (torch releases the GIL inside its kernels).
    """

    encoder_type = "vit"

    def __init__(
        self, config: EncoderConfig | Mapping[str, Any] | None = None, *, device: object = "auto"
    ) -> None:
        self._config = EncoderConfig.from_value(config)
        self._device = resolve_device(device)
        self._lock = threading.Lock()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._closed = False
        model = _build(self._config)
        if self._config.checkpoint is not None:
            load_checkpoint(model, self._config.checkpoint)
        try:
            self._model = model.to(self._device).eval().requires_grad_(False)
        except Exception as exc:  # device moves fail with driver errors
            raise EncoderError(
                f"could not move the encoder to {self._device}: {type(exc).__name__}: {exc}",
                code=ErrorCode.ENCODER_DEVICE,
                context={"device": str(self._device)},
                cause=exc,
            ) from exc

    def __repr__(self) -> str:
        c = self._config
        return (
            f"VisionEncoder(vit, device={self.device}, image_size={c.image_size}, "
            f"embed_dim={c.embed_dim}, layers={c.num_layers}, heads={c.num_heads})"
        )

    @property
    def config(self) -> EncoderConfig:
        return self._config

    @property
    def device(self) -> str:
        """The device as text (``cpu``, ``cuda:0``, ``mps``): telemetry's encoder device."""
        return str(self._device)

    @property
    def feature_dim(self) -> int:
        return self._config.embed_dim

    # --- encoding -----------------------------------------------------------------------
    def encode(self, images: Images) -> EncoderOutput:
        """Encode a BCHW batch, one CHW image, or a sequence of CHW images (sizes may differ).

        Images are floats in 0..1 (uint8 is scaled); any size is resized to ``image_size``.

        Raises:
            ValidationError: not an image tensor of the right layout.
            EncoderError: ``ERR_ENCODER_OOM`` / ``ERR_ENCODER_RUNTIME`` from torch (chained).
        """
        if self._closed:
            raise RuntimeError("VisionEncoder is closed")
        batch = _as_images(images)
        stats = image_stats(batch)
        size = self._config.image_size
        with self._lock, torch.inference_mode():
            try:
                parts = [
                    self._forward(_prepared(chunk, size, self._device))
                    for chunk in _chunks(batch, self._config.max_batch_size)
                ]
                features = torch.cat(parts) if len(parts) > 1 else parts[0]
            except Exception as exc:
                raise _encoder_error(exc, self.device, len(stats)) from exc
        return EncoderOutput(features, stats)

    async def encode_async(self, images: Images) -> EncoderOutput:
        """:meth:`encode` on the encoder's worker thread; the event loop keeps running."""
        if self._closed:
            raise RuntimeError("VisionEncoder is closed")
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()  # keeps the active span for anything traced inside
        return await loop.run_in_executor(self._worker(), ctx.run, self.encode, images)

    def summarize(
        self, features: EncoderOutput | torch.Tensor, images: Images | None = None
    ) -> list[str]:
        """One short text line per image for the prompt (colour stats + feature stats).

        ``features`` is an :class:`EncoderOutput` (its colour stats are used) or a feature
        tensor with the ``images`` it came from.
        """
        if isinstance(features, EncoderOutput):
            stats = features.image_stats if images is None else image_stats(_as_images(images))
            return describe(features.features, stats)
        if images is None:
            raise ValidationError(
                field="images",
                value=None,
                expected="the images the features came from (or pass the EncoderOutput)",
                code=ErrorCode.VALIDATION_TYPE,
            )
        stats = image_stats(_as_images(images))
        if len(stats) != int(features.shape[0]):
            raise ValidationError(
                field="images",
                value=len(stats),
                expected=f"{int(features.shape[0])} images, one per feature row",
                code=ErrorCode.VALIDATION_SHAPE,
            )
        return describe(features, stats)

    def save_checkpoint(self, path: str | Path) -> None:
        """Save the weights as a ``state_dict`` loadable through ``EncoderConfig.checkpoint``."""
        state = {k: v.detach().cpu() for k, v in self._model.state_dict().items()}
        torch.save(state, Path(path))

    def close(self) -> None:
        """Stop the worker thread. Idempotent."""
        self._closed = True
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    def __enter__(self) -> VisionEncoder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- internals ----------------------------------------------------------------------
    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self._model(batch)
        return out.float().cpu()

    def _worker(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="pixel-llm-encoder"
                )
            return self._executor


def build_encoder(
    encoder_type: str = "vit",
    config: EncoderConfig | Mapping[str, Any] | None = None,
    *,
    device: object = "auto",
) -> VisionEncoder:
    """The encoder named ``encoder_type`` (only ``"vit"``), built once with ``config``."""
    if encoder_type not in ENCODER_TYPES:
        raise ValidationError(
            field="encoder_type",
            value=encoder_type,
            expected=f"one of {list(ENCODER_TYPES)}",
            code=ErrorCode.VALIDATION_CONFIG,
        )
    return VisionEncoder(config, device=device)


def load_checkpoint(model: torch.nn.Module, path: str | Path) -> None:
    """Load a ``state_dict`` into ``model``; every mismatch is an ``ERR_ENCODER_CHECKPOINT``."""
    where = Path(path)
    ctx: dict[str, Any] = {"checkpoint": str(where)}
    if not where.is_file():
        raise EncoderError(
            f"checkpoint {where} does not exist", code=ErrorCode.ENCODER_CHECKPOINT, context=ctx
        )
    try:
        obj = torch.load(where, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise EncoderError(
            f"checkpoint {where} is not a readable torch file ({type(exc).__name__}: "
            f"{str(exc)[:200]})",
            code=ErrorCode.ENCODER_CHECKPOINT,
            context=ctx,
            cause=exc,
        ) from exc
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise EncoderError(
            f"checkpoint {where} does not hold a state_dict (a mapping of names to tensors)",
            code=ErrorCode.ENCODER_CHECKPOINT,
            context=ctx,
        )
    expected = model.state_dict()
    missing = sorted(set(expected) - set(obj))
    unexpected = sorted(set(obj) - set(expected))
    mismatched = [
        f"{k}: checkpoint {tuple(obj[k].shape)} vs encoder {tuple(v.shape)}"
        for k, v in expected.items()
        if k in obj and tuple(obj[k].shape) != tuple(v.shape)
    ]
    problems = [
        f"{label}: {_first(items)}"
        for label, items in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", mismatched),
        )
        if items
    ]
    if problems:
        ctx.update(missing=len(missing), unexpected=len(unexpected), mismatched=len(mismatched))
        raise EncoderError(
            f"checkpoint {where} does not match the encoder config ({'; '.join(problems)})",
            code=ErrorCode.ENCODER_CHECKPOINT,
            context=ctx,
        )
    model.load_state_dict(obj, strict=True)


def _first(items: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


def _as_images(images: object) -> torch.Tensor | list[torch.Tensor]:
    """A BCHW tensor, or a list of CHW tensors when sizes differ; floats in 0..1."""
    if isinstance(images, torch.Tensor):
        if images.ndim == 3:
            images = images.unsqueeze(0)
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[0] == 0:
            raise ValidationError(
                field="images",
                value=images,
                expected="a CHW or non-empty BCHW tensor with 3 channels",
                code=ErrorCode.VALIDATION_SHAPE,
            )
        return _as_float(images)
    if isinstance(images, Sequence) and images and all(isinstance(i, torch.Tensor) for i in images):
        items = [_as_images(i) for i in images]
        flat = [t[0] for t in items if isinstance(t, torch.Tensor) and t.shape[0] == 1]
        if len(flat) != len(items):
            raise ValidationError(
                field="images",
                value=len(items),
                expected="a sequence of CHW tensors",
                code=ErrorCode.VALIDATION_SHAPE,
            )
        if len({tuple(t.shape) for t in flat}) == 1:
            return torch.stack(flat)
        return flat
    raise ValidationError(
        field="images",
        value=images,
        expected="a torch.Tensor (CHW or BCHW) or a non-empty sequence of CHW tensors",
        code=ErrorCode.VALIDATION_TYPE,
    )


def _as_float(images: torch.Tensor) -> torch.Tensor:
    if images.is_floating_point():
        return images
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    raise ValidationError(
        field="images",
        value=images,
        expected="a floating (0..1) or uint8 tensor",
        code=ErrorCode.VALIDATION_DTYPE,
    )


def _chunks(images: torch.Tensor | list[torch.Tensor], size: int) -> list[Any]:
    return [images[i : i + size] for i in range(0, len(images), size)]


def _prepared(
    chunk: torch.Tensor | list[torch.Tensor], size: int, device: torch.device
) -> torch.Tensor:
    """``chunk`` as one float32 ``(n, 3, size, size)`` tensor on ``device`` (bilinear resize)."""
    if isinstance(chunk, torch.Tensor):
        x = chunk.to(device, dtype=torch.float32, non_blocking=True)
        if tuple(x.shape[-2:]) == (size, size):
            return x
        return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return torch.cat([_prepared(image.unsqueeze(0), size, device) for image in chunk])


def _build(config: EncoderConfig) -> VisionTransformer:
    """The model with weights drawn from ``config.seed``; the global RNG is left untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return VisionTransformer(config)


def _encoder_error(exc: BaseException, device: str, batch_size: int) -> EncoderError:
    ctx = {"device": device, "batch_size": batch_size}
    translated = DEFAULT_CLASSIFIER.to_error(exc, context=ctx)
    if isinstance(translated, EncoderError):
        return translated
    return EncoderError(
        f"the vision encoder failed ({type(exc).__name__}: {str(exc)[:300]})",
        code=ErrorCode.ENCODER_RUNTIME,
        context=ctx,
        cause=exc,
    )
