"""Input validation: tensors, images, configuration objects and prompt text.

Every failure raises :class:`~pixel_llm_otel.errors.ValidationError` naming the field, a short
description of the value seen (tensors by shape and dtype, never printed whole) and what was
expected, with one of the ``ERR_VALIDATION_*`` codes. Nothing here lets a bare ``TypeError`` or an
error from deep inside torch escape: sparse, nested, MKL-DNN and quantized tensors are rejected by
layout before anything looks at them, meta tensors and dtypes whose values torch cannot compare
(float8, float4, ``bits*``, sub-byte and wide unsigned ints) are rejected by name before a value
check (:mod:`pixel_llm_otel._tensor_kind` lists what is accepted), and any other error torch raises
while a tensor is inspected becomes a ``ValidationError`` naming its layout and dtype.

torch is imported lazily, inside the functions that need it, so ``import pixel_llm_otel`` stays
light.

Image tensors are float tensors in ``0..1``. ``uint8`` images are rejected (not silently rescaled):
convert them with ``images.float() / 255``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from types import EllipsisType
from typing import TYPE_CHECKING

from ._config_check import validate_config
from ._prompt_text import sanitize_input
from ._tensor_kind import (
    check_layout,
    check_values_checkable,
    describe,
    image_dtypes,
    uncheckable,
)
from .errors import ErrorCode, ValidationError
from .errors.exceptions import _short_repr

if TYPE_CHECKING:
    import torch

#: A shape pattern: sizes, ``None``/``-1``/``"*"`` (any one) and one ``"..."``/``...`` (any number).
Shape = tuple[int | str | EllipsisType | None, ...]

__all__ = ["sanitize_input", "validate_config", "validate_image_tensor", "validate_tensor"]

#: Shape wildcards: any one dimension (``None``, ``-1``, ``"*"``) or any number (``"..."``).
_ANY_DIM = (None, -1, "*")
#: Largest image height or width accepted (the encoder resizes every image to its own size).
MAX_IMAGE_SIDE = 16_384
#: Most elements in one image tensor (a batch included): 2**28 floats are 1 GiB in float32. An
#: ``expand``-ed tensor costs no memory but every value check would still walk all its elements.
MAX_IMAGE_ELEMENTS = 2**28


# --- tensors -----------------------------------------------------------------------------------
def validate_tensor(
    value: object,
    *,
    name: str = "tensor",
    shape: Shape | None = None,
    dtype: torch.dtype | Iterable[torch.dtype] | None = None,
    value_range: tuple[float | None, float | None] | None = None,
    finite: bool = True,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Check ``value`` is a tensor meeting every given constraint; return it unchanged.

    Args:
        shape: expected dimensions; ``None``/``-1``/``"*"`` match any one dimension and one
            ``"..."`` matches any number of them, e.g. ``("...", 3, None, None)``.
        dtype: one torch dtype or several accepted ones.
        value_range: inclusive ``(lo, hi)``; either bound may be ``None``.
        finite: reject NaN and +/-inf in floating and complex tensors.
        device: ``"cpu"``, ``"cuda"`` (any index), ``"cuda:1"`` (that index), a ``torch.device``.
    """
    import torch

    if not isinstance(value, torch.Tensor):
        raise ValidationError(
            field=name, value=value, expected="a torch.Tensor", code=ErrorCode.VALIDATION_TYPE
        )
    try:
        return _validate_tensor(value, name, shape, dtype, value_range, finite, device)
    except ValidationError:
        raise
    except Exception as exc:  # torch refused to look at it: say what it is and what we accept
        raise uncheckable(value, name, exc) from exc


def _validate_tensor(
    value: torch.Tensor,
    name: str,
    shape: Shape | None,
    dtype: object,
    value_range: tuple[float | None, float | None] | None,
    finite: bool,
    device: object,
) -> torch.Tensor:
    import torch

    check_layout(value, name)
    if device is not None:
        _check_device(value, name, device)
    if dtype is not None:
        _check_dtype(value, name, dtype)
    if shape is not None:
        _check_shape(value, name, shape)
    if value.numel() == 0:
        return value
    if value_range is None and not (finite and (value.is_floating_point() or value.is_complex())):
        return value  # no value check applies (and a meta tensor's shape was all there was)
    check_values_checkable(value, name)
    with torch.no_grad():
        if _fast_path_ok(value, finite, value_range):
            return value
        if finite and (value.is_floating_point() or value.is_complex()):
            bad = int((~torch.isfinite(value)).sum())
            if bad:
                raise ValidationError(
                    f"{name}: {_short_repr(value)} contains {bad} NaN or infinite value(s); "
                    "expected only finite values",
                    field=name,
                    value=_short_repr(value),
                    expected="finite values",
                    code=ErrorCode.VALIDATION_NONFINITE,
                )
        if value_range is not None:
            _check_range(value, name, value_range)
    return value


def _fast_path_ok(
    value: torch.Tensor, finite: bool, value_range: tuple[float | None, float | None] | None
) -> bool:
    """One ``aminmax`` pass that proves a real floating tensor finite and in range.

    NaN and inf propagate into the min or max, so finite extremes mean finite values. ``False``
    sends the caller to the counting checks, which build the error message.
    """
    import torch

    if not value.is_floating_point() or not (finite or value_range is not None):
        return False
    try:
        low, high = (float(v) for v in torch.aminmax(value))
        lo, hi = value_range if value_range is not None else (None, None)
    except (RuntimeError, TypeError, ValueError):
        return False
    if not (math.isfinite(low) and math.isfinite(high)):
        return False
    return (lo is None or low >= lo) and (hi is None or high <= hi)


def _check_device(value: torch.Tensor, name: str, device: object) -> None:
    import torch

    try:
        wanted = torch.device(device)  # type: ignore[call-overload]
    except (RuntimeError, TypeError) as exc:
        raise ValidationError(
            field="device",
            value=device,
            expected="a torch device such as 'cpu', 'cuda' or 'cuda:0'",
            code=ErrorCode.VALIDATION_DEVICE,
            cause=exc,
        ) from exc
    actual = value.device
    if actual.type != wanted.type or (wanted.index is not None and actual.index != wanted.index):
        raise ValidationError(
            f"{name}: {_short_repr(value)} is on device {actual}, expected {wanted}",
            field=name,
            value=str(actual),
            expected=f"a tensor on {wanted}",
            code=ErrorCode.VALIDATION_DEVICE,
        )


def _check_dtype(value: torch.Tensor, name: str, dtype: object) -> None:
    import torch

    accepted = (dtype,) if isinstance(dtype, torch.dtype) else tuple(dtype)  # type: ignore[arg-type]
    if not accepted or not all(isinstance(d, torch.dtype) for d in accepted):
        raise ValidationError(
            field="dtype", value=dtype, expected="a torch.dtype or an iterable of them"
        )
    if value.dtype not in accepted:
        wanted = " or ".join(str(d) for d in accepted)
        hint = "; convert with images.float() / 255" if value.dtype == torch.uint8 else ""
        raise ValidationError(
            f"{name}: {_short_repr(value)} has dtype {value.dtype}, expected {wanted}{hint}",
            field=name,
            value=str(value.dtype),
            expected=wanted,
            code=ErrorCode.VALIDATION_DTYPE,
        )


def _check_shape(value: torch.Tensor, name: str, shape: Shape) -> None:
    if not isinstance(shape, (tuple, list)):
        raise ValidationError(field="shape", value=shape, expected="a tuple of dimensions")
    spec: tuple[object, ...] = tuple("..." if d is Ellipsis else d for d in shape)
    for d in spec:
        is_wild = d is None or d in ("*", "...")
        is_size = isinstance(d, int) and not isinstance(d, bool) and d >= -1
        if not (is_wild or is_size):
            raise ValidationError(
                field="shape",
                value=shape,
                expected="a tuple of non-negative ints, None, -1, '*' or one '...'",
            )
    ellipses = [i for i, d in enumerate(spec) if d == "..."]
    if len(ellipses) > 1:
        raise ValidationError(field="shape", value=shape, expected="at most one '...'")
    actual = tuple(value.shape)
    if ellipses:
        cut = ellipses[0]
        head, tail = spec[:cut], spec[cut + 1 :]
        ok = (
            len(actual) >= len(head) + len(tail)
            and _dims_match(actual[: len(head)], head)
            and _dims_match(actual[len(actual) - len(tail) :], tail)
        )
    else:
        ok = len(actual) == len(spec) and _dims_match(actual, spec)
    if not ok:
        wanted = "(" + ", ".join(_dim_text(d) for d in spec) + ")"
        raise ValidationError(
            f"{name}: {_short_repr(value)} has shape {actual}, expected {wanted}",
            field=name,
            value=actual,
            expected=f"shape {wanted}",
            code=ErrorCode.VALIDATION_SHAPE,
        )


def _dims_match(actual: tuple[int, ...], spec: tuple[object, ...]) -> bool:
    return all(d in _ANY_DIM or d == a for a, d in zip(actual, spec, strict=True))


def _dim_text(d: object) -> str:
    if d == "...":
        return "..."
    return "*" if d in _ANY_DIM else str(d)


def _check_range(
    value: torch.Tensor, name: str, value_range: tuple[float | None, float | None]
) -> None:
    import torch

    try:
        lo, hi = value_range
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            field="value_range", value=value_range, expected="a (lo, hi) pair", cause=exc
        ) from exc
    if value.is_complex() or value.dtype == torch.bool:
        return
    outside = torch.zeros((), dtype=torch.long, device=value.device)
    if lo is not None:
        outside = outside + (value < lo).sum()
    if hi is not None:
        outside = outside + (value > hi).sum()
    count = int(outside)
    if count:
        seen = f"min {float(value.min()):.4g}, max {float(value.max()):.4g}"
        wanted = f"values in [{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"
        raise ValidationError(
            f"{name}: {_short_repr(value)} has {count} value(s) outside the range ({seen}); "
            f"expected {wanted}",
            field=name,
            value=seen,
            expected=wanted,
            code=ErrorCode.VALIDATION_RANGE,
        )


def validate_image_tensor(
    value: object,
    *,
    name: str = "images",
    expected_size: tuple[int, int] | None = None,
    allow_batch: bool = True,
) -> torch.Tensor:
    """Check an image tensor: CHW (or BCHW when ``allow_batch``), 3 channels, floating, in 0..1.

    ``expected_size`` is ``(H, W)``. uint8 images are rejected with a hint to use
    ``.float() / 255``. Returns the tensor unchanged (a CHW tensor is not given a batch dimension).
    """
    import torch

    if not isinstance(value, torch.Tensor):
        raise ValidationError(
            field=name,
            value=value,
            expected="a torch.Tensor image (CHW or BCHW)",
            code=ErrorCode.VALIDATION_TYPE,
        )
    if _plain_image_ok(value, expected_size, allow_batch):
        return value
    try:
        _check_image(value, name, expected_size, allow_batch)
    except ValidationError:
        raise
    except Exception as exc:  # torch refused to look at it: say what it is and what we accept
        raise uncheckable(value, name, exc) from exc
    return validate_tensor(value, name=name, value_range=(0.0, 1.0), finite=True)


def _plain_image_ok(
    value: torch.Tensor, expected_size: tuple[int, int] | None, allow_batch: bool
) -> bool:
    """The usual image, accepted in a few attribute reads and one ``aminmax`` (~5 us instead of
    ~30 us: this runs on every generate call).

    ``True`` only for what the full checks below accept: an exact ``torch.Tensor``, dense and
    not quantized, of an image dtype, with data, CHW or non-empty BCHW, 3 channels, non-zero
    height and width (the expected ones when given) within the size limits, finite values in 0..1
    (NaN and inf reach the min or max). Anything else, wrong or merely unusual, takes the full
    checks, which also build the error message.
    """
    import torch

    if (
        type(value) is not torch.Tensor
        or value.layout != torch.strided
        or value.is_nested
        or value.dtype not in image_dtypes()  # no quantized dtype is one: no is_quantized read
        or value.device.type == "meta"
    ):
        return False
    shape = value.shape
    if len(shape) == 4:
        if not allow_batch or shape[0] == 0:
            return False
    elif len(shape) != 3:
        return False
    channels, height, width = shape[-3], shape[-2], shape[-1]
    if channels != 3 or height == 0 or width == 0:
        return False
    if max(height, width) > MAX_IMAGE_SIDE or value.numel() > MAX_IMAGE_ELEMENTS:
        return False
    if expected_size is not None and (height, width) != tuple(expected_size):
        return False
    try:
        if value.requires_grad:  # no graph for the check (a no_grad block costs ~4 us)
            with torch.no_grad():
                low, high = torch.aminmax(value)
        else:
            low, high = torch.aminmax(value)
        return float(low) >= 0.0 and float(high) <= 1.0
    except (RuntimeError, TypeError, ValueError):
        return False


def _check_image(
    value: torch.Tensor, name: str, expected_size: tuple[int, int] | None, allow_batch: bool
) -> None:
    check_layout(value, name)
    if value.dtype not in image_dtypes():
        _check_dtype(value, name, image_dtypes())
    layouts = ("CHW", "BCHW") if allow_batch else ("CHW",)
    if value.ndim not in (3, 4) or (value.ndim == 4 and not allow_batch):
        raise ValidationError(
            f"{name}: {_short_repr(value)} has {value.ndim} dimension(s), expected "
            f"{' or '.join(layouts)}",
            field=name,
            value=tuple(value.shape),
            expected=" or ".join(layouts),
            code=ErrorCode.VALIDATION_SHAPE,
        )
    size: tuple[int | str | None, ...]
    size = tuple(expected_size) if expected_size is not None else (None, None)
    if len(size) != 2:
        raise ValidationError(field="expected_size", value=expected_size, expected="(H, W)")
    spec: tuple[int | str | None, ...] = ("...", 3, *size)
    _check_shape(value, name, spec)
    if value.ndim == 4 and value.shape[0] == 0:
        raise ValidationError(
            f"{name}: {_short_repr(value)} is an empty batch, expected at least one image",
            field=name,
            value=tuple(value.shape),
            expected="a batch of at least one image",
            code=ErrorCode.VALIDATION_SHAPE,
        )
    if 0 in value.shape[-2:]:
        raise ValidationError(
            field=name,
            value=value,
            expected="an image with non-zero height and width",
            code=ErrorCode.VALIDATION_SHAPE,
        )
    if max(value.shape[-2:]) > MAX_IMAGE_SIDE or value.numel() > MAX_IMAGE_ELEMENTS:
        raise ValidationError(
            f"{name}: {describe(value)} is too large; expected height and width at most "
            f"{MAX_IMAGE_SIDE} and at most {MAX_IMAGE_ELEMENTS} elements in all",
            field=name,
            value=tuple(value.shape),
            expected=f"sides <= {MAX_IMAGE_SIDE}, <= {MAX_IMAGE_ELEMENTS} elements",
            code=ErrorCode.VALIDATION_SHAPE,
        )
