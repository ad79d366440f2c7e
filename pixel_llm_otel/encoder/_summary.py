"""Short, deterministic text summaries of images and their features, for the LLM prompt."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = ["ImageStats", "describe", "image_stats"]

_CHANNELS = ("red", "green", "blue")
_LUMA = (0.299, 0.587, 0.114)
#: Channel means closer than this count as "no dominant colour".
_NEUTRAL_SPREAD = 0.02


@dataclass(frozen=True, slots=True)
class ImageStats:
    """Colour statistics of one raw input image (values in 0..1)."""

    red: float
    green: float
    blue: float
    brightness: float  # mean luma (Rec. 601)
    contrast: float  # standard deviation of luma
    height: int
    width: int

    @property
    def dominant(self) -> str:
        means = (self.red, self.green, self.blue)
        if max(means) - min(means) < _NEUTRAL_SPREAD:
            return "neutral"
        return _CHANNELS[max(range(3), key=means.__getitem__)]


def image_stats(images: torch.Tensor | Sequence[torch.Tensor]) -> tuple[ImageStats, ...]:
    """Per-image colour statistics of CHW images (a BCHW batch or a sequence of CHW)."""
    out = []
    for image in images:
        img = image.detach().float()
        means = img.mean(dim=(1, 2)).tolist()
        weights = torch.tensor(_LUMA, dtype=img.dtype, device=img.device).view(3, 1, 1)
        luma = (img * weights).sum(dim=0)
        out.append(
            ImageStats(
                red=means[0],
                green=means[1],
                blue=means[2],
                brightness=float(luma.mean()),
                contrast=float(luma.std(unbiased=False)),
                height=int(img.shape[-2]),
                width=int(img.shape[-1]),
            )
        )
    return tuple(out)


def describe(features: torch.Tensor, stats: Sequence[ImageStats]) -> list[str]:
    """One line per image: colour statistics, then statistics of its feature vector."""
    feats = features.detach().float().cpu()
    norms = feats.norm(dim=1).tolist()
    means = feats.mean(dim=1).tolist()
    stds = feats.std(dim=1, unbiased=False).tolist()
    lines = []
    for s, norm, mean, std in zip(stats, norms, means, stds, strict=True):
        lines.append(
            f"{s.width}x{s.height} image, brightness {s.brightness:.2f}, contrast "
            f"{s.contrast:.2f}, dominant colour {s.dominant} (R {s.red:.2f} G {s.green:.2f} "
            f"B {s.blue:.2f}); visual features: norm {norm:.1f}, mean {mean:+.3f}, "
            f"std {std:.3f}"
        )
    return lines
