"""RFC 8785 JSON Canonicalization Scheme (JCS): the bytes a signature covers.

Two paths give the same bytes. The fast one is orjson with sorted keys (~6x faster than the
standard library's encoder, which writes the same text): when a value has no floats, no integers
beyond 2**53 - 1 and only ASCII keys, its output is exactly RFC 8785 (strings are escaped the same
way, 3.2.2.2, checked for every code point by tests/benchmarks/test_hot_path.py; ASCII keys sort
the same in UTF-16, 3.2.3).
The full one implements the ECMAScript number format (3.2.2.3) and UTF-16 key order for the rest.
`strictjson.loads` tells which path a parsed value needs.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson

from .strictjson import MAX_SAFE_INTEGER

_encode_string = json.encoder.encode_basestring
_orjson_dumps = orjson.dumps
_SORTED = orjson.OPT_SORT_KEYS


class CanonicalizationError(ValueError):
    """The value has no RFC 8785 form (NaN, infinity, non-string keys, other types)."""


def canonicalize(value: Any, *, needs_full: bool | None = None) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of `value`.

    `needs_full` comes from `strictjson.loads`; when None the value is inspected here.
    """
    try:
        if needs_full is None:  # inside the try: it recurses too
            fast = _fast_form(value)
            needs_full = fast is _FULL
            if not needs_full:
                value = fast
        if needs_full:
            return _full(value).encode("utf-8")
        # exact JSON types only (the parser's or _fast_form's): nothing for orjson to guess
        return _orjson_dumps(value, option=_SORTED)
    except UnicodeEncodeError:
        raise CanonicalizationError("a string holds a lone surrogate") from None
    except RecursionError:
        raise CanonicalizationError("the value nests too deeply or refers to itself") from None
    except orjson.JSONEncodeError as exc:  # (a TypeError) lone surrogates, nesting, cycles, types
        raise CanonicalizationError(_orjson_problem(str(exc))) from None
    # OverflowError: an int beyond the double range; ValueError: NaN or infinity
    except (ValueError, TypeError, OverflowError) as exc:
        raise CanonicalizationError(str(exc)) from None


def _orjson_problem(message: str) -> str:
    """orjson's refusal, in the words the full path uses for the same value."""
    if "surrogates" in message:
        return "a string holds a lone surrogate"
    if "Recursion limit" in message:
        return "the value nests too deeply or refers to itself"
    return message


def is_plain(value: Any, ascii_keys: bool = True) -> bool:
    """Whether a parsed value (exact JSON types) takes the fast path as it is: no float, no
    integer beyond +-(2**53 - 1) at any depth, and (unless `ascii_keys` is already known) only
    ASCII keys. Cheaper than `_fast_form`, which copies what it inspects."""
    kind = type(value)
    if kind is dict:
        if not ascii_keys:
            for key in value:
                if not key.isascii():
                    return False
        items = value.values()
    elif kind is list:
        items = value
    else:
        return False
    for item in items:
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                continue
            return False
        if not is_plain(item, ascii_keys):
            return False
    return True


_FULL: Any = object()  # _fast_form's answer when only the full algorithm will do


def _fast_form(value: Any) -> Any:
    """`value` in a form the standard encoder writes as RFC 8785, or _FULL.

    Integral floats within +-(2**53 - 1) become ints: ECMAScript prints them as their integer
    digits (30.0 -> "30", -0.0 -> "0"), which is what the encoder writes for an int. The gateway's
    own messages carry such floats (timeouts in seconds), so they stay on the fast path too.
    Exact types only: subclasses (IntEnum, str subclasses) take the full path, which handles them.
    """
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    if kind is int:
        return value if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else _FULL
    if kind is float:
        if value.is_integer() and -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return int(value)
        return _FULL  # fractions, large values, NaN and infinities: the full path decides
    if kind is dict:
        obj: dict[str, Any] = {}
        for key, item in value.items():
            if type(key) is not str or not key.isascii():
                return _FULL
            item = _fast_form(item)
            if item is _FULL:
                return _FULL
            obj[key] = item
        return obj
    if kind is list or kind is tuple:
        items: list[Any] = []
        for item in value:
            item = _fast_form(item)
            if item is _FULL:
                return _FULL
            items.append(item)
        return items
    return _FULL


def _full(value: Any) -> str:
    if isinstance(value, str):
        return str(_encode_string(value))
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value) if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else _number(float(value))
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise CanonicalizationError(f"object key {key!r} is not a string")
        items = sorted(value.items(), key=lambda kv: kv[0].encode("utf-16-be", "surrogatepass"))
        return "{" + ",".join(_encode_string(k) + ":" + _full(v) for k, v in items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_full(v) for v in value) + "]"
    raise CanonicalizationError(f"{type(value).__name__} is not a JSON value")


def _number(value: float) -> str:
    """ECMAScript Number.prototype.toString (ECMA-262 7.1.12.1), as RFC 8785 3.2.2.3 requires."""
    if value != value or value in (float("inf"), float("-inf")):
        raise CanonicalizationError("NaN and infinities have no JSON form")
    if value == 0:
        return "0"
    if value < 0:
        return "-" + _number(-value)
    # repr() is the shortest string that round-trips, which is what ECMAScript asks for too.
    _, digit_tuple, exponent = Decimal(repr(value)).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    assert isinstance(exponent, int)
    n = len(digit_tuple) + exponent  # value = 0.digits * 10**n
    k = len(digits)
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * -n + digits
    e = n - 1
    mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
