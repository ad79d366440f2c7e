"""Encoder throughput: images/second batched vs one image at a time, in the same run.

python benchmarks/bench_encoder.py [--device auto|cpu|cuda|cuda:N|mps] [--quick]
    [--images N] [--batch-size B]
"""

from __future__ import annotations

import argparse
import time

import torch

from pixel_llm_otel.encoder import EncoderConfig, VisionEncoder


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _rate(fn: object, images: int, device: str, repeats: int) -> float:
    """Best images/second over ``repeats`` runs of ``fn``."""
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        _sync(device)
        best = min(best, time.perf_counter() - started)
    return images / best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")
    parser.add_argument("--quick", action="store_true", help="few images, one repeat")
    parser.add_argument("--images", type=int, default=None, help="images per measurement")
    parser.add_argument("--batch-size", type=int, default=32, help="max_batch_size")
    args = parser.parse_args(argv)

    count = args.images or (8 if args.quick else 64)
    repeats = 1 if args.quick else 3
    encoder = VisionEncoder(EncoderConfig(max_batch_size=args.batch_size), device=args.device)
    device = encoder.device
    images = torch.rand(count, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    encoder.encode(images[: min(count, args.batch_size)])  # warm-up: allocator, kernels

    one_at_a_time = _rate(lambda: [encoder.encode(img) for img in images], count, device, repeats)
    batched = _rate(lambda: encoder.encode(images), count, device, repeats)
    encoder.close()

    c = encoder.config
    print(
        f"encoder vit {c.image_size}px patch {c.patch_size} dim {c.embed_dim} "
        f"layers {c.num_layers} heads {c.num_heads} | device {device} | "
        f"torch {torch.__version__} threads {torch.get_num_threads()} | {count} images"
    )
    print(f"one at a time : {one_at_a_time:9.1f} images/s")
    print(f"batched (<= {args.batch_size}): {batched:9.1f} images/s")
    print(f"ratio batched / one-at-a-time: {batched / one_at_a_time:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
