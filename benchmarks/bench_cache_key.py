"""Where hashing an image for the fallback-cache key stops being cheaper inline than on a thread.

For CHW float32 images of growing side, in interleaved rounds: the wall time and the process
CPU (both threads) per digest, computed inline on the event loop vs through
``asyncio.to_thread`` (what the pipeline did for every image before). The pipeline hashes inline
up to ``INLINE_DIGEST_MAX_BYTES``; the script exits 1 when an inline digest at or under that
limit costs more CPU than the thread hop (the limit would then be too high). CPU, not wall: on a
shared machine the wall time of a sub-millisecond step is mostly other processes' turns. By CPU
the hop never pays (it adds a thread hand-off to the same hashing); by wall, inline hashing stops
being faster between 48 KiB (64 px) and 108 KiB (96 px), and it holds up every other coroutine on
the loop meanwhile: the 64 KiB limit sits there.

    python benchmarks/bench_cache_key.py            # ~20 s
    python benchmarks/bench_cache_key.py --quick
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time

import torch

from pixel_llm_otel.pipeline._cache_key import INLINE_DIGEST_MAX_BYTES, image_digests

SIDES = (16, 32, 64, 96, 128, 224)


async def timed(image: torch.Tensor, hop: bool, number: int) -> tuple[float, float]:
    """(wall s, process CPU s) per digest."""
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(number):
        if hop:
            await asyncio.to_thread(image_digests, image, False)
        else:
            image_digests(image, False)
    return (time.perf_counter() - wall) / number, (time.process_time() - cpu) / number


async def run(rounds: int, number: int) -> dict[tuple[int, bool], list[tuple[float, float]]]:
    images = {s: torch.rand(1, 3, s, s, generator=torch.Generator().manual_seed(s)) for s in SIDES}
    samples: dict[tuple[int, bool], list[tuple[float, float]]] = {}
    cases = [(s, hop) for s in SIDES for hop in (False, True)]
    for case in cases:  # warm-up (the thread pool starts here)
        await timed(images[case[0]], case[1], 5)
    for index in range(rounds):
        shift = index % len(cases)
        for side, hop in cases[shift:] + cases[:shift]:
            samples.setdefault((side, hop), []).append(await timed(images[side], hop, number))
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    rounds, number = (3, 50) if args.quick else (7, 200)
    samples = asyncio.run(run(rounds, number))
    print(f"inline limit {INLINE_DIGEST_MAX_BYTES // 1024} KiB; {rounds} interleaved rounds x "
          f"{number} digests; median (min..max) us per digest")  # fmt: skip
    print(f"{'side':>5}{'KiB':>6}{'inline wall':>22}{'thread wall':>22}{'inline CPU':>12}"
          f"{'thread CPU':>12}{'CPU ratio':>15}  hashed")  # fmt: skip
    ok = True
    for side in SIDES:
        nbytes = 3 * side * side * 4
        inline, hop = samples[side, False], samples[side, True]
        ratios = [a[1] / b[1] for a, b in zip(inline, hop, strict=True)]
        walls = [[x[0] * 1e6 for x in s] for s in (inline, hop)]
        cpus = [statistics.median(x[1] for x in s) * 1e6 for s in (inline, hop)]
        cells = [f"{statistics.median(w):.0f} ({min(w):.0f}..{max(w):.0f})" for w in walls]
        where = "inline" if nbytes <= INLINE_DIGEST_MAX_BYTES else "thread"
        print(f"{side:>5}{nbytes / 1024:>6.0f}{cells[0]:>22}{cells[1]:>22}{cpus[0]:>12.0f}"
              f"{cpus[1]:>12.0f}{statistics.median(ratios):>15.2f}  {where}")  # fmt: skip
        if where == "inline" and statistics.median(ratios) > 1.0:
            ok = False
    print(
        "goal: inline digests under the limit cost less CPU than the hop: "
        + ("PASS" if ok else "MISS")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
