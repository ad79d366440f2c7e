"""Which tensors validation can look at: layout, storage kind and dtype, checked before any value.

torch raises ``NotImplementedError`` / ``RuntimeError`` from the element-wise ops validation uses
(``isfinite``, ``aminmax``, comparisons) on sparse (COO, CSR, CSC, BSR, BSC), nested, MKL-DNN,
quantized and meta tensors, and on the float8, float4, ``bits*``, sub-byte ``int1..7`` /
``uint1..7`` and 16-64 bit unsigned dtypes. Rather than list what fails, the tuples below say what
validation accepts: anything else, including a layout or dtype a future torch adds, is a
:class:`~pixel_llm_otel.errors.ValidationError` naming it and what is accepted. Nothing here
imports torch at module level.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from .errors import ErrorCode, ValidationError

if TYPE_CHECKING:
    import torch

__all__ = [
    "IMAGE_DTYPE_NAMES",
    "VALUE_DTYPE_NAMES",
    "check_layout",
    "check_values_checkable",
    "describe",
    "image_dtypes",
    "uncheckable",
    "value_dtypes",
]

#: Float dtypes an image may have (values in 0..1).
IMAGE_DTYPE_NAMES = ("float32", "float16", "bfloat16", "float64")
#: Dtypes whose values (finite, range) validation can check on every device torch supports.
VALUE_DTYPE_NAMES = (
    *IMAGE_DTYPE_NAMES,
    "complex64",
    "complex128",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "bool",
)
_DENSE = "a dense tensor (layout torch.strided)"


@cache
def image_dtypes() -> tuple[torch.dtype, ...]:
    """The torch dtypes of :data:`IMAGE_DTYPE_NAMES`."""
    import torch

    return tuple(getattr(torch, name) for name in IMAGE_DTYPE_NAMES)


@cache
def value_dtypes() -> frozenset[torch.dtype]:
    """The torch dtypes of :data:`VALUE_DTYPE_NAMES`."""
    import torch

    return frozenset(getattr(torch, name) for name in VALUE_DTYPE_NAMES)


def describe(value: object) -> str:
    """``Tensor(shape=(3, 4), dtype=torch.float32, layout=torch.sparse_coo)``, never raising.

    Nested tensors have no ``shape``; quantized, sparse and MKL-DNN ones print their kind.
    """
    parts: list[str] = []
    for label, read in (
        ("shape", lambda: tuple(value.shape)),  # type: ignore[attr-defined]
        ("dtype", lambda: value.dtype),  # type: ignore[attr-defined]
        ("layout", lambda: value.layout),  # type: ignore[attr-defined]
        ("device", lambda: value.device),  # type: ignore[attr-defined]
    ):
        try:
            parts.append(f"{label}={read()}")
        except Exception:  # a nested tensor has no sizes; a broken subclass may raise anything
            continue
    if getattr(value, "is_nested", False) is True:
        parts.append("nested")
    return f"{type(value).__name__}({', '.join(parts)})"


def check_layout(value: torch.Tensor, name: str) -> None:
    """Reject non-strided layouts (sparse, MKL-DNN, jagged), nested and quantized tensors."""
    kind = _unsupported_kind(value)
    if kind is not None:
        seen = describe(value)
        what, hint = kind
        raise ValidationError(
            f"{name}: {seen} is {what}; expected {_DENSE}{hint}",
            field=name,
            value=seen,
            expected=_DENSE,
            code=ErrorCode.VALIDATION_TYPE,
        )


def check_values_checkable(value: torch.Tensor, name: str) -> None:
    """Before looking at values: reject meta tensors and dtypes outside
    :data:`VALUE_DTYPE_NAMES`."""
    if value.device.type == "meta":
        raise ValidationError(
            f"{name}: {describe(value)} is a meta tensor, which has no values to check; "
            "expected a tensor with data (cpu, cuda, mps)",
            field=name,
            value=describe(value),
            expected="a tensor with data (cpu, cuda, mps)",
            code=ErrorCode.VALIDATION_DEVICE,
        )
    if value.dtype not in value_dtypes():
        accepted = ", ".join(VALUE_DTYPE_NAMES)
        raise ValidationError(
            f"{name}: {describe(value)} has dtype {value.dtype}, whose values cannot be checked; "
            f"expected one of {accepted} (convert with .float())",
            field=name,
            value=str(value.dtype),
            expected=f"one of {accepted}",
            code=ErrorCode.VALIDATION_DTYPE,
        )


def _unsupported_kind(value: torch.Tensor) -> tuple[str, str] | None:
    """``(what it is, how to convert)`` for a tensor kind validation rejects, else ``None``."""
    import torch

    if value.is_nested:
        return "a nested tensor", "; pass the tensors one by one or torch.stack them"
    layout = value.layout
    if layout != torch.strided:
        if str(layout) == "torch._mkldnn":
            return "an MKL-DNN tensor (layout torch._mkldnn)", "; convert with .to_dense()"
        return f"a tensor of layout {layout}", "; convert with .to_dense()"
    if value.is_quantized:
        return f"a quantized tensor (dtype {value.dtype})", "; convert with .dequantize()"
    return None


def uncheckable(value: object, name: str, exc: BaseException) -> ValidationError:
    """The error for a tensor torch itself refused to inspect (an unforeseen kind or dtype)."""
    seen = describe(value)
    accepted = f"{_DENSE} of dtype {', '.join(VALUE_DTYPE_NAMES)}"
    return ValidationError(
        f"{name}: {seen} could not be checked ({type(exc).__name__}); expected {accepted}",
        field=name,
        value=seen,
        expected=accepted,
        code=ErrorCode.VALIDATION_TYPE,
        cause=exc,
    )
