"""Strict JSON: one text, one meaning (duplicates, surrogates, ranges, depth refused)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiconexus_gateway.strictjson import MAX_DEPTH, MAX_SAFE_INTEGER, StrictJSONError, loads


@pytest.mark.parametrize("text", [
    '{"a": 1, "a": 2}',
    '{"a": 1, "b": 2, "a": 1}',
    '{"x": {"y": {"a": 1, "a": 1}}}',
    '[1, {"a": null, "a": null}]',
    '{"a": 1, "\\u0061": 2}',  # the same key spelled with an escape
])
def test_duplicate_keys_are_refused_wherever_they_are(text: str) -> None:
    with pytest.raises(StrictJSONError, match="duplicate key 'a'"):
        loads(text)


def test_same_key_in_sibling_objects_is_fine() -> None:
    assert loads('[{"a": 1}, {"a": 2}]') == ([{"a": 1}, {"a": 2}], False)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_literals_are_refused(literal: str) -> None:
    with pytest.raises(StrictJSONError, match=f"{literal} is not JSON"):
        loads(f'{{"n": {literal}}}')


@pytest.mark.parametrize("text", ["1e400", "-1e400", "[1.5e309]", '{"x": 123456789e999}'])
def test_floats_beyond_the_double_range_are_refused(text: str) -> None:
    with pytest.raises(StrictJSONError, match="outside the IEEE-754 double range"):
        loads(text)


@pytest.mark.parametrize("text", ["1" + "0" * 400, "-" + "9" * 320, "[" + "7" * 1000 + "]"])
def test_integers_beyond_the_double_range_are_refused(text: str) -> None:
    with pytest.raises(StrictJSONError, match="outside the IEEE-754 double range"):
        loads(text)


def test_integer_too_long_for_python_is_refused_cleanly() -> None:
    with pytest.raises(StrictJSONError, match="not acceptable JSON"):
        loads("9" * 5000)


@pytest.mark.parametrize(("text", "needs_full"), [
    (str(MAX_SAFE_INTEGER), False),
    (str(-MAX_SAFE_INTEGER), False),
    (str(MAX_SAFE_INTEGER + 1), True),
    (str(-MAX_SAFE_INTEGER - 1), True),
    (str(2**60), True),
    ("123456789012345", False),
])
def test_large_integers_within_range_parse_and_set_the_flag_beyond_2_53(text: str, needs_full: bool
                                                                        ) -> None:
    assert loads(text) == (int(text), needs_full)


@pytest.mark.parametrize("text", [
    '"\\ud800"', '"\\uDFFF"', '"a\\ud83d"', '"\\ude02\\ud83d"', '{"\\udc00": 1}', '[["\\uDBFF x"]]',
])
def test_lone_surrogates_are_refused(text: str) -> None:
    with pytest.raises(StrictJSONError, match="lone surrogate"):
        loads(text)


@pytest.mark.parametrize("text", [
    '"\\ud83d\\ude02"', '"\\uD83D\\uDE02"', '{"\\ud83d\\ude02": "\\ud800\\udc00"}',
])
def test_valid_surrogate_pairs_are_fine(text: str) -> None:
    value, _ = loads(text)
    assert value == json.loads(text)


def _nested(depth: int, opener: str = "[", closer: str = "]") -> str:
    return opener * depth + closer * depth


def test_nesting_up_to_the_limit_is_fine() -> None:
    text = _nested(MAX_DEPTH)
    value, _ = loads(text)
    assert value == json.loads(text)


@pytest.mark.parametrize("text", [
    _nested(MAX_DEPTH + 1),
    '{"a":' * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1),
    "[" * 100_000,  # refused before any recursion
    '["\\\\",' + _nested(MAX_DEPTH) + "]",  # an escaped backslash does not hide the closing quote
])
def test_nesting_beyond_the_limit_is_refused(text: str) -> None:
    with pytest.raises(StrictJSONError, match=f"nesting deeper than {MAX_DEPTH} levels"):
        loads(text)


@pytest.mark.parametrize("text", [
    json.dumps({"s": "[" * 1000 + "{" * 1000}),
    '["\\"' + "[" * 100 + '"]',  # an escaped quote does not end the string
    "[" * 10 + '"' + "{" * 100 + '"' + "]" * 10,
])
def test_brackets_inside_strings_do_not_count_as_depth(text: str) -> None:
    assert loads(text)[0] == json.loads(text)


def test_many_shallow_siblings_are_not_deep() -> None:
    text = "[" + "[[]]," * (MAX_DEPTH * 2) + "[]]"
    assert len(loads(text)[0]) == MAX_DEPTH * 2 + 1


def test_depth_limit_is_a_parameter() -> None:
    assert loads(_nested(3), max_depth=3)[0] == [[[]]]
    with pytest.raises(StrictJSONError, match="deeper than 2"):
        loads(_nested(3), max_depth=2)


@pytest.mark.parametrize("text", ["{} {}", "{}x", "[1]]", "1 2", '"a" "b"', "{}\x00"])
def test_trailing_data_is_refused(text: str) -> None:
    with pytest.raises(StrictJSONError, match="extra data"):
        loads(text)


@pytest.mark.parametrize("text", [" {} ", "\n\t{}\r\n", "[ 1 , 2 ]"])
def test_json_whitespace_around_and_inside_the_value_is_fine(text: str) -> None:
    assert loads(text)[0] == json.loads(text)


@pytest.mark.parametrize("text", ["[\u0661]", "[1\u0661]", "[1.\u0665]", "[1e\u0662]", '{"a":\uff11}',
                                  "[-\u0661]", "\U0001d7cf"])
def test_numbers_are_ascii_digits_only(text: str) -> None:
    """RFC 8259 numbers are DIGIT = %x30-39; Unicode decimal digits of other scripts are not."""
    with pytest.raises(StrictJSONError, match="not JSON"):
        loads(text)


@pytest.mark.parametrize("text", ["", " ", "nope", "{", '{"a" 1}', "[1,]", "{'a': 1}", "\x0c{}", "tru"])
def test_text_that_is_not_json_is_refused_saying_where(text: str) -> None:
    with pytest.raises(StrictJSONError, match="not JSON"):
        loads(text)


@pytest.mark.parametrize(("text", "needs_full"), [
    ('{"a": 1, "b": [true, null, "x"]}', False),
    ('{"name": "é 😂 \\u20ac"}', False),  # non-ASCII values keep the fast path
    ("1.0", True),
    ("[1, 2, 0.5]", True),
    ("1e2", True),
    ('{"é": 1}', True),  # non-ASCII keys sort differently in UTF-16
    ('{"a": {"b": [{"ключ": 1}]}}', True),
    ('{"ascii": 1, "é": 2, "zz": 3}', True),
])
def test_needs_full_jcs_flag_says_when_the_fast_path_is_not_enough(text: str, needs_full: bool
                                                                   ) -> None:
    assert loads(text)[1] is needs_full


def test_needs_full_jcs_flag_does_not_leak_into_the_next_parse() -> None:
    assert loads("[0.5]")[1] is True
    assert loads("[5]")[1] is False
    with pytest.raises(StrictJSONError):
        loads('[0.5, {"a": 1, "a": 2}]')
    assert loads('{"a": 1}')[1] is False


def test_strict_json_error_is_a_value_error() -> None:
    assert issubclass(StrictJSONError, ValueError)


_JSONISH = st.text(alphabet='{}[]",:0123456789.eE+- \\utrfalsenNIiy\ud800d8\n', max_size=60)


def _mutations(value: Any) -> st.SearchStrategy[str]:
    text = json.dumps(value)
    return st.integers(0, len(text)).flatmap(
        lambda i: st.sampled_from(["", "{", "}", '"', "\\", ",", "[", "]", "e9999", "\\ud800"]).map(
            lambda s: text[:i] + s + text[i + 1:]))


_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=3), children,
                                                                      max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80) | _JSONISH | _VALUES.flatmap(_mutations))
def test_any_text_gives_a_value_or_strict_json_error(text: str) -> None:
    try:
        value, needs_full = loads(text)
    except StrictJSONError:
        return
    assert isinstance(needs_full, bool)
    assert value == json.loads(text)


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    return True


@settings(max_examples=200, deadline=None)
@given(_VALUES)
def test_valid_json_of_finite_values_parses_to_the_same_value(value: Any) -> None:
    text = json.dumps(value)
    if not _finite(value):
        with pytest.raises(StrictJSONError):
            loads(text)
    else:
        assert loads(text)[0] == json.loads(text)
