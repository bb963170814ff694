"""bot.safejson: what it refuses, and that its fast checks agree with a plain walk of the parsed value."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot import safejson
from bot.errors import BadInput

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet=st.characters(blacklist_categories=["Cs"])),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=60,
)


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


@given(values, st.integers(min_value=1, max_value=8), st.booleans())
def test_a_value_is_parsed_back_or_refused_exactly_when_too_deep(value: Any, limit: int, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    if _depth(value) > limit:
        with pytest.raises(BadInput, match="nested deeper"):
            safejson.loads(text.encode(), max_depth=limit)
    else:
        assert safejson.loads(text.encode(), max_depth=limit) == value


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"a": '[[[[[[[[{{{{{{{{\\"[[[[' * 10, "b": [[1]]})
    assert safejson.loads(text, max_depth=3)["b"] == [[1]]


@pytest.mark.parametrize(
    "raw",
    [
        '{"t": "\\ud800"}',  # a lone high surrogate
        '["\\uDC00x"]',  # a lone low surrogate
        '{"\\ud83d": 1}',  # in a key
        "[" * 40 + "]" * 40,
        "[" * 100_000 + "]" * 100_000,  # far beyond Python's recursion limit
        '{"n": NaN}',
        '{"n": -Infinity}',
        '{"a": 1',
    ],
)
def test_what_no_handler_could_use_is_refused(raw: str) -> None:
    with pytest.raises(BadInput):
        safejson.loads(raw.encode())


def test_pairs_and_escaped_backslashes_are_fine() -> None:
    assert safejson.loads('["\\ud83d\\ude00"]') == ["\U0001f600"]
    assert safejson.loads('["\\\\ud800"]') == ["\\ud800"]  # a backslash, then letters: no surrogate


def test_a_str_with_a_lone_surrogate_is_refused() -> None:
    with pytest.raises(BadInput, match="surrogate"):
        safejson.loads('["\ud800"]')
