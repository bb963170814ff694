"""JSON from strangers: parsed with limits, so that no body or frame can crash a handler.

Python's `json` accepts NaN and Infinity (which no JSON encoder will write back: a 422 echoing them
fails), decodes "\\ud800" escapes into lone surrogates (which no UTF-8 encoder accepts, so Redis
writes and responses fail later), and recurses once per nesting level (RecursionError on deep input).
`loads` refuses all three up front with a BadInput naming the problem.
"""

from __future__ import annotations

import json
from typing import Any

from bot.errors import BadInput

MAX_DEPTH = 32


def _no_constants(name: str) -> Any:
    raise BadInput("bad_json", f"{name} is not a JSON number")


def _depth_ok(text: str, limit: int) -> bool:
    """Whether the nesting stays within `limit` (brackets inside strings do not count)."""
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def has_surrogate(value: Any) -> bool:
    """Whether a parsed value holds a lone surrogate anywhere (a key or a string)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def loads(data: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON, refusing invalid text, NaN/Infinity, nesting deeper than `max_depth` and lone surrogates."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadInput("bad_json", "the body is not UTF-8") from exc
    else:
        text = data
    if not _depth_ok(text, max_depth):
        raise BadInput("bad_json", f"JSON nested deeper than {max_depth} levels")
    try:
        value = json.loads(text, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:
        raise BadInput("bad_json", "not valid JSON") from exc
    if has_surrogate(value):
        raise BadInput("bad_json", "text holds an unpaired surrogate (not valid Unicode)")
    return value
