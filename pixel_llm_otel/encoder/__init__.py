"""The torch vision encoder: a seeded ViT built once, run in inference mode, batched, and
off the event loop in async code; plus text summaries for the prompt and PNG encoding."""

from __future__ import annotations

from ._config import EncoderConfig, resolve_device
from ._encoder import ENCODER_TYPES, EncoderOutput, VisionEncoder, build_encoder, load_checkpoint
from ._png import image_to_png_base64, image_to_png_bytes
from ._summary import ImageStats, image_stats

__all__ = [
    "ENCODER_TYPES",
    "EncoderConfig",
    "EncoderOutput",
    "ImageStats",
    "VisionEncoder",
    "build_encoder",
    "image_stats",
    "image_to_png_base64",
    "image_to_png_bytes",
    "load_checkpoint",
    "resolve_device",
]
