"""validate_image_tensor's fast path accepts exactly what the full checks accept, nothing more."""

from __future__ import annotations

import pytest
import torch

from pixel_llm_otel.errors import ValidationError
from pixel_llm_otel.validation import _check_image, _plain_image_ok, validate_tensor


def _full_checks_accept(value: torch.Tensor, expected_size, allow_batch: bool) -> bool:
    try:
        _check_image(value, "images", expected_size, allow_batch)
        validate_tensor(value, name="images", value_range=(0.0, 1.0), finite=True)
    except ValidationError:
        return False
    return True


def _nan_image() -> torch.Tensor:
    image = torch.rand(3, 4, 4)
    image[1, 2, 2] = float("nan")
    return image


CASES = {
    "chw-f32": (torch.rand(3, 8, 8), None, True),
    "bchw-f32": (torch.rand(2, 3, 8, 8), None, True),
    "chw-f64": (torch.rand(3, 8, 8, dtype=torch.float64), None, True),
    "chw-f16": (torch.rand(3, 8, 8).half(), None, True),
    "chw-bf16": (torch.rand(3, 8, 8).bfloat16(), None, True),
    "bounds-0-and-1": (torch.tensor([0.0, 1.0] * 6).reshape(3, 2, 2), None, True),
    "expected-size-ok": (torch.rand(3, 8, 6), (8, 6), True),
    "expected-size-wrong": (torch.rand(3, 8, 6), (6, 8), True),
    "batch-not-allowed": (torch.rand(1, 3, 8, 8), None, False),
    "empty-batch": (torch.rand(0, 3, 8, 8), None, True),
    "zero-height": (torch.rand(3, 0, 8), None, True),
    "one-channel": (torch.rand(1, 8, 8), None, True),
    "hwc": (torch.rand(8, 8, 3), None, True),
    "2d": (torch.rand(8, 8), None, True),
    "5d": (torch.rand(1, 1, 3, 8, 8), None, True),
    "above-1": (torch.rand(3, 4, 4) + 1.0, None, True),
    "below-0": (torch.rand(3, 4, 4) - 1.0, None, True),
    "nan": (_nan_image(), None, True),
    "inf": (torch.full((3, 4, 4), float("inf")), None, True),
    "uint8": (torch.zeros(3, 4, 4, dtype=torch.uint8), None, True),
    "int64": (torch.zeros(3, 4, 4, dtype=torch.int64), None, True),
    "complex": (torch.zeros(3, 4, 4, dtype=torch.complex64), None, True),
    "non-contiguous": (torch.rand(8, 8, 3).permute(2, 0, 1), None, True),
    "requires-grad": (torch.rand(3, 4, 4, requires_grad=True), None, True),
    "parameter": (torch.nn.Parameter(torch.rand(3, 4, 4)), None, True),
    "sparse": (torch.rand(3, 4, 4).to_sparse(), None, True),
    "meta": (torch.empty(3, 4, 4, device="meta"), None, True),
    "side-too-large": (torch.zeros(1, 1, 1).expand(3, 16_385, 8), None, True),
    "too-many-elements": (torch.zeros(1, 1, 1, 1).expand(2049, 3, 256, 256), None, True),
}


@pytest.mark.parametrize(("value", "expected_size", "allow_batch"), CASES.values(), ids=CASES)
def test_fast_path_never_accepts_what_the_full_checks_refuse(value, expected_size, allow_batch):
    """Whenever the fast path says yes, the full checks say yes too."""
    if _plain_image_ok(value, expected_size, allow_batch):
        assert _full_checks_accept(value, expected_size, allow_batch)


@pytest.mark.parametrize(
    "key", ["chw-f32", "bchw-f32", "chw-f64", "chw-f16", "chw-bf16", "bounds-0-and-1"]
)
def test_fast_path_takes_the_usual_images(key):
    """The usual dense float images in 0..1 are accepted without the full checks."""
    value, expected_size, allow_batch = CASES[key]
    assert _plain_image_ok(value, expected_size, allow_batch)
