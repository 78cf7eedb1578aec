"""RFC 8785 canonical JSON: the cyberphone vectors on both paths, ES6 numbers, fast == full."""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiconexus_gateway import strictjson
from aiconexus_gateway.canonical import CanonicalizationError, canonicalize
from aiconexus_gateway.strictjson import MAX_SAFE_INTEGER

from .support import DATA

JCS = DATA / "jcs"
VECTOR_NAMES = sorted(p.stem for p in (JCS / "input").glob("*.json"))


def _vector(name: str) -> tuple[str, bytes]:
    return (JCS / "input" / f"{name}.json").read_text(encoding="utf-8"), \
        (JCS / "output" / f"{name}.json").read_bytes()


def test_every_rfc8785_vector_is_present() -> None:
    assert VECTOR_NAMES == ["arrays", "french", "structures", "unicode", "values", "weird"]


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_vector_with_the_flag_from_strict_loads(name: str) -> None:
    text, expected = _vector(name)
    value, needs_full = strictjson.loads(text)
    assert canonicalize(value, needs_full=needs_full) == expected


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_vector_on_the_full_path(name: str) -> None:
    text, expected = _vector(name)
    value, _ = strictjson.loads(text)
    assert canonicalize(value, needs_full=True) == expected


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_vector_with_the_path_chosen_by_inspection(name: str) -> None:
    text, expected = _vector(name)
    value, _ = strictjson.loads(text)
    assert canonicalize(value) == expected


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_canonical_output_is_a_fixed_point(name: str) -> None:
    _, expected = _vector(name)
    value, needs_full = strictjson.loads(expected.decode("utf-8"))
    assert canonicalize(value, needs_full=needs_full) == expected


ES6_NUMBERS = [
    (1e21, "1e+21"),
    (1e20, "100000000000000000000"),
    (1e-7, "1e-7"),
    (1e-6, "0.000001"),
    (1.5e-6, "0.0000015"),
    (5e-324, "5e-324"),
    (-0.0, "0"),
    (0.0, "0"),
    (float(2**60), "1152921504606847000"),  # shortest round-trip digits, then zeros
    (2**60, "1152921504606847000"),
    (2.0**68, "295147905179352830000"),
    (100.0, "100"),
    (1.0, "1"),
    (-1.5, "-1.5"),
    (0.1, "0.1"),
    (4.5, "4.5"),
    (0.002, "0.002"),
    (1e30, "1e+30"),
    (1.23e22, "1.23e+22"),
    (1e-27, "1e-27"),
    (-1e-27, "-1e-27"),
    (333333333.33333329, "333333333.3333333"),
    (123456789012345680000.0, "123456789012345680000"),
    (sys.float_info.max, "1.7976931348623157e+308"),
    (-sys.float_info.max, "-1.7976931348623157e+308"),
    (sys.float_info.min, "2.2250738585072014e-308"),
    (MAX_SAFE_INTEGER, "9007199254740991"),
    (-MAX_SAFE_INTEGER, "-9007199254740991"),
    (MAX_SAFE_INTEGER + 2, "9007199254740992"),  # 2**53 + 1 is not a double; it rounds to 2**53
    (-(2**64), "-18446744073709552000"),
]


@pytest.mark.parametrize(("number", "expected"), ES6_NUMBERS, ids=[e for _, e in ES6_NUMBERS])
def test_number_is_formatted_as_ecmascript_does(number: float, expected: str) -> None:
    assert canonicalize(number) == expected.encode()
    assert canonicalize([number], needs_full=True) == f"[{expected}]".encode()


_ES6_NUMBER = re.compile(r"-?(0|[1-9]\d*)(\.\d*[1-9])?(e[+-][1-9]\d*)?\Z")


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_any_finite_double_is_shortest_es6_form_and_round_trips(number: float) -> None:
    text = canonicalize(number).decode()
    assert _ES6_NUMBER.match(text), text
    assert float(text) == number
    mantissa = text.split("e")[0].lstrip("-").replace(".", "").strip("0")
    assert len(mantissa) <= 17
    if "e" in text:  # ES6 uses exponents only outside [1e-7, 1e21)
        assert abs(number) >= 1e21 or abs(number) < 1e-6
    else:
        assert abs(number) < 1e21


def _json_values(*, keys: st.SearchStrategy[str], scalars: st.SearchStrategy[Any]
                 ) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=5) | st.dictionaries(keys, children, max_size=5),
        max_leaves=25,
    )


_SAFE_SCALARS = (st.none() | st.booleans() | st.text()
                 | st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER))
_ASCII_KEYS = st.text(alphabet=st.characters(max_codepoint=127), max_size=8)


@settings(max_examples=200, deadline=None)
@given(_json_values(keys=_ASCII_KEYS, scalars=_SAFE_SCALARS))
def test_fast_path_equals_full_algorithm_for_values_it_accepts(value: Any) -> None:
    fast = canonicalize(value, needs_full=False)
    assert fast == canonicalize(value, needs_full=True)
    assert fast == canonicalize(value)


_ANY_SCALARS = _SAFE_SCALARS | st.floats(allow_nan=False, allow_infinity=False) | st.integers(
    min_value=-(2**80), max_value=2**80)


@settings(max_examples=200, deadline=None)
@given(_json_values(keys=st.text(max_size=8), scalars=_ANY_SCALARS))
def test_strict_loads_flag_picks_a_path_that_gives_the_full_result(value: Any) -> None:
    full = canonicalize(value, needs_full=True)
    parsed, needs_full = strictjson.loads(json.dumps(value))
    assert canonicalize(parsed, needs_full=needs_full) == full
    assert canonicalize(value) == full
    assert strictjson.loads(full.decode())[0] == json.loads(full)


def test_keys_sort_by_utf16_code_units_not_code_points() -> None:
    value = {"\ufb33": 1, "\U0001f602": 2, "a": 3, "\u00f6": 4}
    # U+1F602 is D83D DE02 in UTF-16, which sorts before U+FB33 (code-point order would not)
    assert canonicalize(value) == '{"a":3,"\u00f6":4,"\U0001f602":2,"\ufb33":1}'.encode()
    assert canonicalize(value, needs_full=True) == canonicalize(value)


def test_strings_escape_only_what_rfc8785_requires() -> None:
    value = "\u20ac$\u000f\nA'B\"\\/</script>\u007f\u2028"
    assert canonicalize(value) == '"€$\\u000f\\nA\'B\\"\\\\/</script>\u007f\u2028"'.encode()
    assert canonicalize(value, needs_full=True) == canonicalize(value)


def test_tuples_canonicalize_as_arrays() -> None:
    assert canonicalize((1, "a", None)) == b'[1,"a",null]'
    assert canonicalize((1.5, True, False), needs_full=True) == b"[1.5,true,false]"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, [1, {"x": math.nan}]])
@pytest.mark.parametrize("needs_full", [None, True])
def test_nan_and_infinity_are_refused(value: Any, needs_full: bool | None) -> None:
    """(needs_full=False is the parser's word that the value has no float at all: strict loads
    flags every float, and `is_plain` refuses them, see test_messages' exact-parse tests.)"""
    with pytest.raises(CanonicalizationError):
        canonicalize(value, needs_full=needs_full)


@pytest.mark.parametrize("value", [{1: "x"}, {None: 1}, {"a": {(1, 2): 3}}])
@pytest.mark.parametrize("needs_full", [None, True])
def test_non_string_keys_are_refused(value: Any, needs_full: bool | None) -> None:
    with pytest.raises(CanonicalizationError, match="not a string"):
        canonicalize(value, needs_full=needs_full)


@pytest.mark.parametrize("value", [{1, 2}, b"bytes", object(), {"a": 1j}])
@pytest.mark.parametrize("needs_full", [None, True, False])
def test_non_json_types_are_refused(value: Any, needs_full: bool | None) -> None:
    with pytest.raises(CanonicalizationError):
        canonicalize(value, needs_full=needs_full)


@pytest.mark.parametrize("value", ["\ud800", {"\udc00": 1}, ["ok", "x\udbff"]])
@pytest.mark.parametrize("needs_full", [None, True, False])
def test_lone_surrogates_are_refused(value: Any, needs_full: bool | None) -> None:
    with pytest.raises(CanonicalizationError, match="lone surrogate"):
        canonicalize(value, needs_full=needs_full)


@pytest.mark.parametrize("value", [10**400, -(10**400), {"a": [10**309]}])
def test_integers_beyond_the_double_range_are_refused(value: Any) -> None:
    """Regression: these escaped as OverflowError instead of CanonicalizationError."""
    with pytest.raises(CanonicalizationError):
        canonicalize(value)


def _cyclic_list() -> list[Any]:
    value: list[Any] = []
    value.append(value)
    return value


def _cyclic_dict() -> dict[str, Any]:
    value: dict[str, Any] = {}
    value["self"] = value
    return value


def _deep_list(depth: int) -> list[Any]:
    root: list[Any] = []
    current = root
    for _ in range(depth):
        child: list[Any] = []
        current.append(child)
        current = child
    return root


@pytest.mark.parametrize("make", [_cyclic_list, _cyclic_dict, lambda: _deep_list(100_000)],
                         ids=["cyclic list", "cyclic dict", "100000 levels"])
@pytest.mark.parametrize("needs_full", [None, True, False])
def test_cyclic_or_absurdly_deep_values_are_refused(make: Any, needs_full: bool | None) -> None:
    """Regression: with needs_full=None the inspection recursed outside the try (RecursionError)."""
    with pytest.raises(CanonicalizationError):
        canonicalize(make(), needs_full=needs_full)
