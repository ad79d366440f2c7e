"""JSON from a server, refused before parsing when it nests too deep.

``json.loads`` recurses once per level of nesting. A body nested many thousands deep (a hostile
or broken server's) drives it to the interpreter's recursion limit, and whatever runs while it
sits there (a garbage collection's weakref finalizers, an unrelated ``__del__``) fails with
``RecursionError`` as an unraisable error. :func:`loads` measures the nesting first and refuses
anything deeper than :data:`MAX_DEPTH`, so the parser never goes deeper than that.

The check costs two ``bytes.count`` scans for an ordinary body: a body with at most
:data:`MAX_DEPTH` opening brackets cannot nest deeper. Only a body with more (long logprobs
lists, or an attack) has its strings cut out and its brackets walked, at C speed.
"""

from __future__ import annotations

import json
from itertools import accumulate
from typing import Any

__all__ = ["MAX_DEPTH", "TooDeep", "loads"]

#: Deepest nesting of arrays and objects parsed. No chat completion nests deeper than ~6.
MAX_DEPTH = 128

#: Everything but brackets, deleted by ``bytes.translate``.
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
#: +1 for an opening bracket, -1 for a closing one (indexed by byte value).
_STEP = tuple(1 if b in b"[{" else -1 if b in b"]}" else 0 for b in range(256))
#: Rounds of removing innermost ``[]`` / ``{}`` pairs tried before walking every bracket.
_REDUCE_ROUNDS = 4


class TooDeep(ValueError):
    """The JSON nests deeper than :data:`MAX_DEPTH` (a ``ValueError``, like any bad JSON)."""

    def __init__(self, depth: int) -> None:
        super().__init__(
            f"JSON nested deeper than {MAX_DEPTH} levels (at least {depth}); not parsed"
        )
        self.depth = depth


def loads(raw: bytes | str) -> Any:
    """``json.loads(raw)``, or :class:`TooDeep` without parsing when it nests deeper than
    :data:`MAX_DEPTH`. Other bad JSON raises ``json``'s own ``ValueError``s."""
    depth = nesting(raw)
    if depth > MAX_DEPTH:
        raise TooDeep(depth)
    return json.loads(raw)


def nesting(raw: bytes | str) -> int:
    """An upper bound of how deep ``raw`` nests (0: no brackets); brackets in strings do not
    count. Exact when it matters: above ``2 * _REDUCE_ROUNDS``, for valid JSON.

    An unterminated string's brackets count, which can only overstate the depth of a body that
    is not valid JSON anyway.
    """
    if isinstance(raw, str):
        opening = raw.count("[") + raw.count("{")
        if opening <= MAX_DEPTH:
            return opening  # cannot nest deeper than its opening brackets
        raw = raw.encode("utf-8", "surrogatepass")
    else:
        opening = raw.count(b"[") + raw.count(b"{")
        if opening <= MAX_DEPTH:
            return opening
    brackets = _structure(raw)
    shallow = brackets
    for done in range(_REDUCE_ROUNDS):  # a wide, shallow body (long lists) empties in a few
        if not shallow:
            return 2 * done  # each round removed at least one level, at most two
        reduced = shallow.replace(b"[]", b"").replace(b"{}", b"")
        if len(reduced) == len(shallow):
            break
        shallow = reduced
    return max(0, max(accumulate(map(_STEP.__getitem__, brackets)), default=0))


def _structure(raw: bytes) -> bytes:
    """The brackets of ``raw`` outside its strings, in order."""
    # Escapes first (``\\`` before ``\"``, left to right as JSON reads them), then every
    # other piece between quotes is a string.
    unescaped = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    return b"".join(unescaped.split(b'"')[::2]).translate(None, _NOT_BRACKETS)
