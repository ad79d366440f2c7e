"""Seeded generators of bad generate() inputs: tensors, prompts and keyword values.

Every case is invalid by construction (each generator skips what it would make valid), so the
only right answer is a ``ValidationError``. Kinds and dtypes come from torch itself, so a layout
or dtype a future torch adds is fuzzed without anyone editing this file.
"""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

import torch

from pixel_llm_otel._tensor_kind import IMAGE_DTYPE_NAMES

SEED = 20261130
IMAGE = (3, 8, 8)
MAX_PROMPT_CHARS = 200


@dataclass(frozen=True)
class Case:
    """One bad call: ``category``, a readable ``label``, the images and keyword arguments."""

    category: str
    label: str
    images: Any
    kwargs: dict[str, Any] = field(default_factory=dict)


def all_dtypes() -> list[torch.dtype]:
    """Every dtype torch exposes, found by looking, not listed by hand."""
    found = {v for v in vars(torch).values() if isinstance(v, torch.dtype)}
    return sorted(found, key=str)


def all_layouts() -> list[torch.layout]:
    """Every layout torch exposes."""
    found = {v for v in vars(torch).values() if isinstance(v, torch.layout)}
    return sorted(found, key=str)


def non_image_dtypes() -> list[torch.dtype]:
    images = {getattr(torch, n) for n in IMAGE_DTYPE_NAMES}
    return [d for d in all_dtypes() if d not in images]


def make_of_dtype(dtype: torch.dtype, shape: tuple[int, ...] = IMAGE) -> torch.Tensor | None:
    """A tensor of ``dtype`` (zeros, else uninitialised), or ``None`` if torch cannot make one."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for build in (torch.zeros, torch.empty):
            try:
                return build(shape, dtype=dtype)
            except Exception:
                continue
    return None


def of_layout(layout: torch.layout, dense: torch.Tensor) -> torch.Tensor | None:
    """``dense`` converted to ``layout`` (2-D ones use the last two dims), or ``None``."""
    name = str(layout).removeprefix("torch.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if name == "sparse_coo":
                return dense.to_sparse()
            if name in ("sparse_csr", "sparse_csc"):
                return dense.to_sparse(layout=layout)
            if name in ("sparse_bsr", "sparse_bsc"):
                return dense.to_sparse(layout=layout, blocksize=(2, 2))
            if name == "_mkldnn":
                return dense.float().to_mkldnn()
            if name == "jagged":
                rows = [dense[i].flatten(1)[:, : 4 + i] for i in range(dense.shape[0])]
                return torch.nested.nested_tensor(rows, layout=torch.jagged)
        except Exception:
            return None
    return None


def _nested_strided(dense: torch.Tensor) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.nested.nested_tensor([dense, dense.clone()])


# --- tensors -----------------------------------------------------------------------------------
def tensor_cases(rng: random.Random) -> Iterator[Case]:
    gen = torch.Generator().manual_seed(rng.randrange(2**31))
    for dtype in non_image_dtypes():  # every dtype that is not an image dtype, in a valid shape
        for shape in (IMAGE, (2, *IMAGE)):
            t = make_of_dtype(dtype, shape)
            if t is not None:
                yield Case("tensor-dtype", f"{dtype}{shape}", t)
    for layout in all_layouts():  # every non-strided layout, of every image dtype
        if layout == torch.strided:
            continue
        for name in IMAGE_DTYPE_NAMES:
            for shape in (IMAGE, (2, *IMAGE)):
                dense = torch.rand(shape, generator=gen).to(getattr(torch, name))
                t = of_layout(layout, dense)
                if t is not None:
                    yield Case("tensor-layout", f"{layout}/{name}{shape}", t)
    for name in IMAGE_DTYPE_NAMES:  # nested (strided), meta, quantized, of every image dtype
        dense = torch.rand(IMAGE, generator=gen).to(getattr(torch, name))
        yield Case("tensor-kind", f"nested/{name}", _nested_strided(dense))
        yield Case(
            "tensor-kind", f"meta/{name}", torch.empty(IMAGE, dtype=dense.dtype, device="meta")
        )
        yield Case("tensor-kind", f"meta-batch/{name}", torch.empty((2, *IMAGE), device="meta"))
    for qdtype in (d for d in all_dtypes() if str(d).startswith(("torch.qint", "torch.quint"))):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                q = torch.quantize_per_tensor(torch.rand(IMAGE, generator=gen), 0.01, 0, qdtype)
            except Exception:
                continue
        yield Case("tensor-kind", f"quantized/{qdtype}", q)
    yield from _shape_cases(rng, gen)
    yield from _value_cases(rng, gen)


def _is_valid_image_shape(shape: tuple[int, ...]) -> bool:
    if len(shape) not in (3, 4) or shape[-3] != 3 or 0 in shape[-2:]:
        return False
    return not (len(shape) == 4 and shape[0] == 0)


def _shape_cases(rng: random.Random, gen: torch.Generator) -> Iterator[Case]:
    pool = (0, 1, 2, 3, 4, 5, 7, 16)
    made = 0
    while made < 500:  # random ranks and sizes, valid shapes skipped
        shape = tuple(rng.choice(pool) for _ in range(rng.randrange(0, 7)))
        if _is_valid_image_shape(shape):
            continue
        dtype = getattr(torch, rng.choice(IMAGE_DTYPE_NAMES))
        made += 1
        yield Case(
            "tensor-shape", f"shape{shape}/{dtype}", torch.rand(shape, generator=gen).to(dtype)
        )
    one = torch.rand(1, 1, 1, 1, generator=gen)
    huge = [  # stride-0 views: no memory, but a value check would walk every element
        (3, 16_385, 8),
        (3, 8, 16_385),
        (3, 2**30, 2**30),
        (2**20, 3, 64, 64),
        (64, 3, 2048, 2048),
    ]
    for shape in huge:
        view = one.expand(shape) if len(shape) == 4 else one[0].expand(shape)
        yield Case("tensor-huge", f"expand{shape}", view)
        yield Case("tensor-huge", f"expand{shape}/T", view.transpose(-1, -2))
    for shape in ((3, 0, 2**62), (0, 3, 2**30, 2**30), (2**62, 0, 4), (3, 2**60, 0)):
        yield Case("tensor-huge", f"empty{shape}", torch.empty(shape))


BAD_VALUES = (math.nan, math.inf, -math.inf, -1e-3, 1.0 + 1e-2, 3.4e38, -3.4e38, 2.0, -1.0)


def _value_cases(rng: random.Random, gen: torch.Generator) -> Iterator[Case]:
    layouts: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "contiguous": lambda t: t,
        "permuted": lambda t: t.permute(0, 2, 1),  # CHW with H and W swapped (not contiguous)
        "channels-last": lambda t: t.unsqueeze(0).contiguous(memory_format=torch.channels_last),
        "grad": lambda t: t.clone().requires_grad_(True),
        "strided-slice": lambda t: torch.cat([t, t], dim=2)[:, :, ::2],
    }
    for i in range(600):
        name = IMAGE_DTYPE_NAMES[i % len(IMAGE_DTYPE_NAMES)]
        dtype = getattr(torch, name)
        t = torch.rand(IMAGE, generator=gen, dtype=torch.float64)
        bad = rng.choice(BAD_VALUES)
        for _ in range(rng.randrange(1, 4)):
            t[rng.randrange(3), rng.randrange(8), rng.randrange(8)] = bad
        how = rng.choice(sorted(layouts))
        t = layouts[how](t.to(dtype))
        seen = t.detach()
        if bool(torch.isfinite(seen).all()) and bool(((seen >= 0) & (seen <= 1)).all()):
            continue  # the bad value rounded into range in this dtype, or was sliced away
        yield Case("tensor-values", f"{name}/{bad}/{how}", t)


# --- non-tensors and sequences -------------------------------------------------------------
class _HostileRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr refused")


def object_cases() -> Iterator[Case]:
    image = torch.rand(IMAGE)
    things: list[tuple[str, Any]] = [
        ("none", None),
        ("int", 3),
        ("float", 0.5),
        ("str", "image.png"),
        ("bytes", b"\x89PNG"),
        ("list", [[0.5] * 8] * 8),
        ("dict", {"image": image}),
        ("set", {1, 2}),
        ("hostile-repr", _HostileRepr()),
        ("huge-int", 10**5000),
        ("empty-list", []),
        ("tuple-of-str", ("a", "b")),
        ("list-mixed", [image, "x"]),
        ("list-sizes", [image, torch.rand(3, 4, 4)]),
        ("list-bad-item", [image, torch.rand(1, 8, 8)]),
        ("list-sparse", [image, image.to_sparse()]),
        ("list-meta", [image, torch.empty(IMAGE, device="meta")]),
        ("list-nan", [image, torch.full(IMAGE, math.nan)]),
        ("generator", (t for t in [image])),
    ]
    for label, value in things:
        for entry in ("async", "batch"):
            yield Case("object", f"{label}/{entry}", value, {"_entry": entry})


# --- prompts and keywords ------------------------------------------------------------------
def _random_text(rng: random.Random, size: int) -> str:
    return "".join(
        chr(rng.choice((rng.randrange(32, 127), rng.randrange(0xA0, 0xD7FF)))) for _ in range(size)
    )


def prompt_cases(rng: random.Random) -> Iterator[Case]:
    image = torch.rand(IMAGE)
    non_str: list[Any] = [
        0, 1.5, b"bytes", bytearray(b"x"), ["a"], ("a",), {"text": "a"}, object(), _HostileRepr(),
        10**5000, Decimal("1"), memoryview(b"x"), True, math.nan,
    ]  # fmt: skip
    for value in non_str:
        yield Case("prompt-type", type(value).__name__, image, {"prompt": value})
    for i in range(220):  # NUL at random positions
        text = _random_text(rng, rng.randrange(0, 60))
        at = rng.randrange(len(text) + 1)
        yield Case("prompt-nul", f"nul@{at}/{i}", image, {"prompt": text[:at] + "\x00" + text[at:]})
    for i in range(220):  # lone surrogates, high or low, anywhere
        text = _random_text(rng, rng.randrange(0, 60))
        at = rng.randrange(len(text) + 1)
        lone = chr(rng.randrange(0xD800, 0xE000))
        yield Case(
            "prompt-surrogate",
            f"{ord(lone):x}@{at}/{i}",
            image,
            {"prompt": text[:at] + lone + text[at:]},
        )
    for i in range(160):  # too long after cleaning (controls removed, CRLF folded)
        size = MAX_PROMPT_CHARS + 1 + rng.choice((0, 1, 7, 1000, 10**5))
        chunk = _random_text(rng, 64)
        text = (chunk * (size // 64 + 1))[:size]
        yield Case("prompt-huge", f"{size}/{i}", image, {"prompt": text})
    yield Case("prompt-huge", "1e6", image, {"prompt": "x" * 10**6})


def keyword_cases(rng: random.Random) -> Iterator[Case]:
    image = torch.rand(IMAGE)
    tokens: list[Any] = [
        -1, -(2**63), 2**31, 2**63, 10**100, 10**5000, 1.0, 0.5, math.nan, math.inf, True, False,
        "256", b"1", [1], Decimal(3), Fraction(1, 2), complex(1, 0), object(),
    ]  # fmt: skip
    temps: list[Any] = [
        -0.001, 2.0001, 3, -1, 10**400, -(10**400), math.nan, math.inf, -math.inf, True, False,
        "0.7", b"0", [0.7], complex(0.5, 0), Decimal("0.5"), Fraction(1, 2), object(), 1e308,
    ]  # fmt: skip
    flags: list[Any] = [0, 1, "yes", "", None, [], 1.0, object()]
    for value in tokens:
        yield Case("kw-max_tokens", repr_safe(value), image, {"max_tokens": value})
    for value in temps:
        yield Case("kw-temperature", repr_safe(value), image, {"temperature": value})
    for value in flags:
        yield Case("kw-raise_on_failure", repr_safe(value), image, {"raise_on_failure": value})
    for i in range(300):  # random numbers outside the ranges
        big = rng.choice((-1, 1)) * rng.randrange(2**31, 2**70)
        count = big if i % 2 else -rng.randrange(1, 2**40)
        yield Case("kw-max_tokens", f"rand-{i}", image, {"max_tokens": count})
        temp = rng.uniform(2.0000001, 1e6) * rng.choice((1, -1))
        yield Case("kw-temperature", f"rand-{i}", image, {"temperature": temp})


def repr_safe(value: object) -> str:
    try:
        text = repr(value)
    except Exception:
        return type(value).__name__
    return text[:40]


def all_cases() -> list[Case]:
    """Every case, in a fixed order from fixed seeds."""
    rng = random.Random(SEED)
    return [
        *tensor_cases(rng),
        *object_cases(),
        *prompt_cases(rng),
        *keyword_cases(rng),
    ]
