"""``validate_config``: build or check any of the package's frozen dataclass configurations.

Part of :mod:`pixel_llm_otel.validation` (re-exported there); a module of its own because type
checking against dataclass annotations is a job of its own.

Checks, in order: the input is a mapping (or already an instance); every key names an init field
(unknown keys are reported with a "did you mean" and the list of known keys); required fields are
present; each value matches the field's type hint (``int``, ``float``, ``bool``, ``str``,
``None`` unions, ``Literal``, enums, ``tuple``/``list``, ``Mapping``, ``timedelta``, ``Callable``,
``type[X]`` and nested dataclasses given as nested mappings); finally the dataclass's own
``__post_init__`` runs, and whatever it rejects is re-raised as a ``ValidationError`` with code
``ERR_VALIDATION_CONFIG``. Lists are accepted for tuple fields (configuration read from YAML or
JSON) and converted; enum fields accept their values.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import difflib
import enum
import sys
import types
import typing
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, TypeVar

from .errors import ErrorCode, ValidationError

__all__ = ["validate_config"]

C = TypeVar("C")
_CODE = ErrorCode.VALIDATION_CONFIG


class _Mismatch(Exception):
    """A value does not match a type hint (internal; turned into a ValidationError)."""


def validate_config(
    config_cls: type[C], data: Mapping[str, Any] | C, *, name: str | None = None
) -> C:
    """Return a ``config_cls`` built from ``data`` (a mapping) or ``data`` itself once checked.

    Raises :class:`ValidationError` (code ``ERR_VALIDATION_CONFIG``) naming the field as
    ``<name>.<field>`` (``name`` defaults to the class name), the value and what was expected.
    """
    if not (isinstance(config_cls, type) and dataclasses.is_dataclass(config_cls)):
        raise ValidationError(
            field="config_cls", value=config_cls, expected="a dataclass type", code=_CODE
        )
    label = name or config_cls.__name__
    if isinstance(data, config_cls):
        hints = _hints(config_cls)
        for f in dataclasses.fields(config_cls):
            if f.name in hints:
                _check_field(getattr(data, f.name), hints[f.name], f"{label}.{f.name}")
        return data
    if not isinstance(data, Mapping):
        raise ValidationError(
            field=label,
            value=data,
            expected=f"a mapping of {config_cls.__name__} fields or a {config_cls.__name__}",
            code=_CODE,
        )
    return _build(config_cls, data, label)


def _build(config_cls: type[C], data: Mapping[Any, Any], label: str) -> C:
    fields = {f.name: f for f in dataclasses.fields(config_cls) if f.init}  # type: ignore[arg-type]
    known = sorted(fields)
    for key in data:
        if not isinstance(key, str):
            raise ValidationError(
                field=label, value=key, expected="string keys naming fields", code=_CODE
            )
        if key not in fields:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValidationError(
                f"{label}: unknown key {key!r}; {hint}known keys: {', '.join(known)}",
                field=f"{label}.{key}",
                value=key,
                expected=f"one of {', '.join(known)}",
                code=_CODE,
            )
    missing = [
        n
        for n, f in fields.items()
        if n not in data
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ValidationError(
            f"{label}: missing required field(s): {', '.join(missing)}",
            field=f"{label}.{missing[0]}",
            value=None,
            expected="a value (the field has no default)",
            code=_CODE,
        )
    hints = _hints(config_cls)
    kwargs = {
        key: _check_field(value, hints[key], f"{label}.{key}") if key in hints else value
        for key, value in data.items()
    }
    try:
        return config_cls(**kwargs)
    except ValidationError as exc:
        field = exc.field if exc.field is None or "." in exc.field else f"{label}.{exc.field}"
        if exc.code is _CODE and field == exc.field:
            raise
        raise ValidationError(
            exc.message if exc.field is None else None,
            field=field,
            value=exc.value,
            expected=exc.expected,
            code=_CODE,
            cause=exc,
        ) from exc
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"{label}: {exc}",
            field=label,
            value=dict(data),
            expected="valid values",
            code=_CODE,
            cause=exc,
        ) from exc


def _hints(config_cls: type) -> dict[str, Any]:
    """Resolved type hints of ``config_cls``; fields whose hint cannot be resolved are skipped."""
    try:
        return typing.get_type_hints(config_cls)
    except Exception:  # a name only imported under TYPE_CHECKING: resolve field by field
        module = sys.modules.get(config_cls.__module__)
        namespace = dict(vars(module)) if module else {}
        hints: dict[str, Any] = {}
        for f in dataclasses.fields(config_cls):
            annotation = f.type
            try:
                hints[f.name] = (
                    eval(annotation, namespace) if isinstance(annotation, str) else annotation
                )
            except Exception:
                continue
        return hints


def _check_field(value: Any, hint: Any, path: str) -> Any:
    try:
        return _convert(value, hint, path)
    except _Mismatch:
        raise ValidationError(
            field=path, value=value, expected=_describe(hint), code=_CODE
        ) from None


def _convert(value: Any, hint: Any, path: str) -> Any:
    """``value`` converted to ``hint`` where the conversion is lossless, or raise _Mismatch."""
    if hint is Any or hint is object or isinstance(hint, TypeVar):
        return value
    if hint is None or hint is type(None):
        if value is None:
            return None
        raise _Mismatch
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or (hasattr(types, "UnionType") and origin is types.UnionType):
        for arm in args:
            try:
                return _convert(value, arm, path)
            except _Mismatch:
                continue
        raise _Mismatch
    if origin is typing.Literal:
        if value in args:
            return value
        raise _Mismatch
    if origin is type:
        bound = args[0] if args else object
        if isinstance(value, type) and (
            bound is Any or not isinstance(bound, type) or issubclass(value, bound)
        ):
            return value
        raise _Mismatch
    if origin in (tuple, list, set, frozenset, cabc.Sequence, cabc.Set):
        return _convert_collection(value, origin, args, path)
    if origin in (dict, cabc.Mapping, cabc.MutableMapping):
        if not isinstance(value, Mapping):
            raise _Mismatch
        if len(args) == 2:
            return {
                _convert(k, args[0], path): _convert(v, args[1], f"{path}[{k!r}]")
                for k, v in value.items()
            }
        return value
    if origin is cabc.Callable or hint is cabc.Callable:
        if callable(value):
            return value
        raise _Mismatch
    if origin is not None:  # another generic (e.g. Generic[T]): check the bare class
        hint = origin
    if not isinstance(hint, type):
        return value  # unsupported typing construct: accept rather than guess
    return _convert_class(value, hint, path)


def _convert_class(value: Any, hint: type, path: str) -> Any:
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Mismatch
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        raise _Mismatch
    if hint is timedelta or hint is str:
        if isinstance(value, hint):
            return value
        raise _Mismatch
    if issubclass(hint, enum.Enum):
        if isinstance(value, hint):
            return value
        try:
            return hint(value)
        except ValueError:
            raise _Mismatch from None
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        if isinstance(value, Mapping):
            return _build(hint, value, path)
        raise _Mismatch
    if isinstance(value, hint):
        return value
    raise _Mismatch


def _convert_collection(value: Any, origin: Any, args: tuple[Any, ...], path: str) -> Any:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, set, frozenset)):
        raise _Mismatch
    items = list(value)
    if origin is tuple and args and args[-1] is not Ellipsis:
        if len(items) != len(args):
            raise _Mismatch
        pairs = enumerate(zip(items, args, strict=True))
        converted = [_convert(v, a, f"{path}[{i}]") for i, (v, a) in pairs]
    else:
        item_hint = args[0] if args else Any
        converted = [_convert(v, item_hint, f"{path}[{i}]") for i, v in enumerate(items)]
    if origin in (tuple, cabc.Sequence):
        return tuple(converted) if origin is tuple or isinstance(value, tuple) else converted
    if origin is list:
        return converted
    return frozenset(converted) if origin is frozenset else set(converted)


def _describe(hint: Any) -> str:
    """A readable rendering of a type hint, e.g. ``float | timedelta | None``."""
    if hint is type(None) or hint is None:
        return "None"
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or (hasattr(types, "UnionType") and origin is types.UnionType):
        return " | ".join(_describe(a) for a in args)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin is cabc.Callable or hint is cabc.Callable:
        return "a callable"
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        inner = ", ".join("..." if a is Ellipsis else _describe(a) for a in args)
        return f"{name}[{inner}]" if inner else name
    if isinstance(hint, type):
        if dataclasses.is_dataclass(hint):
            return f"a {hint.__name__} or a mapping of its fields"
        return hint.__name__
    return str(hint)
