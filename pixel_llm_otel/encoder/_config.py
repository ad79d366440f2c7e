"""``EncoderConfig`` (the ViT's shape, seed and checkpoint) and torch device resolution."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._checks import check_int, check_number, config_error
from ..errors import EncoderError, ErrorCode, ValidationError

if TYPE_CHECKING:
    import torch

__all__ = ["DEVICE_PATTERN", "EncoderConfig", "resolve_device"]

#: Accepted device strings.
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


@dataclass(frozen=True, slots=True)
class EncoderConfig:
    """Architecture and weights of the vision encoder (a small ViT).

    Attributes:
        image_size: square input side in pixels; other sizes are resized to it.
        patch_size: side of a patch; must divide ``image_size``.
        embed_dim: width of the token embeddings (the feature size); divisible by ``num_heads``.
        num_layers: transformer blocks.
        num_heads: attention heads per block.
        mlp_ratio: hidden width of each block's MLP, as a multiple of ``embed_dim``.
        seed: seeds the weight initialisation, so features (and prompts) are reproducible.
        checkpoint: path of a ``state_dict`` (``torch.save``) to load; ``None``: seeded weights.
        max_batch_size: images per forward pass; larger batches are split.
    """

    image_size: int = 224
    patch_size: int = 16
    embed_dim: int = 768
    num_layers: int = 4
    num_heads: int = 8
    mlp_ratio: float = 4.0
    seed: int = 0
    checkpoint: str | Path | None = None
    max_batch_size: int = 32

    def __post_init__(self) -> None:
        for name in (
            "image_size",
            "patch_size",
            "embed_dim",
            "num_layers",
            "num_heads",
            "max_batch_size",
        ):
            check_int(name, getattr(self, name), minimum=1)
        check_int("seed", self.seed, minimum=0)
        if self.image_size % self.patch_size:
            raise config_error(
                "patch_size", self.patch_size, f"a divisor of image_size ({self.image_size})"
            )
        if self.embed_dim % self.num_heads:
            raise config_error(
                "num_heads", self.num_heads, f"a divisor of embed_dim ({self.embed_dim})"
            )
        check_number("mlp_ratio", self.mlp_ratio, minimum=0.0, exclusive_min=True)
        if self.checkpoint is not None and not isinstance(self.checkpoint, (str, Path)):
            raise config_error("checkpoint", self.checkpoint, "a path (str or Path) or None")

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @classmethod
    def from_value(cls, value: EncoderConfig | Mapping[str, Any] | None) -> EncoderConfig:
        """A config from a config, a mapping of its fields, or ``None`` (defaults)."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if not isinstance(value, Mapping):
            raise config_error("encoder_config", value, "an EncoderConfig, a mapping or None")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in value if k not in known)
        if unknown:
            raise config_error(f"encoder_config.{unknown[0]}", unknown, f"one of {sorted(known)}")
        return cls(**value)


def resolve_device(spec: object = "auto") -> torch.device:
    """The torch device for ``spec`` (``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` | ``mps``).

    ``auto`` picks CUDA if available, then MPS, then the CPU.

    Raises:
        ValidationError: ``ERR_VALIDATION_DEVICE`` for a malformed spec.
        EncoderError: ``ERR_ENCODER_DEVICE`` for a device this machine does not have.
    """
    import torch

    if isinstance(spec, torch.device):
        spec = str(spec)
    if not isinstance(spec, str) or not DEVICE_PATTERN.match(spec.strip().lower()):
        raise ValidationError(
            field="device",
            value=spec,
            expected="'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'",
            code=ErrorCode.VALIDATION_DEVICE,
        )
    text = spec.strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "mps":
        if not _mps_available():
            raise EncoderError(
                "device 'mps' requested but MPS is not available on this machine",
                code=ErrorCode.ENCODER_DEVICE,
                context={"device": text},
            )
        return torch.device("mps")
    if not torch.cuda.is_available():
        raise EncoderError(
            f"device {text!r} requested but CUDA is not available (torch {torch.__version__})",
            code=ErrorCode.ENCODER_DEVICE,
            context={"device": text},
        )
    index = int(text.partition(":")[2] or torch.cuda.current_device())
    count = torch.cuda.device_count()
    if index >= count:
        raise EncoderError(
            f"device {text!r} requested but only {count} CUDA device(s) exist",
            code=ErrorCode.ENCODER_DEVICE,
            context={"device": text, "cuda_devices": count},
        )
    return torch.device("cuda", index)


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())
