"""JSON from strangers: parsed with limits, so that no body or frame can crash a handler.

Python's `json` accepts NaN and Infinity (which no JSON encoder will write back: a 422 echoing them
fails), decodes "\\ud800" escapes into lone surrogates (which no UTF-8 encoder accepts, so Redis
writes and responses fail later), and recurses once per nesting level (RecursionError on deep input).
`loads` refuses all three up front with a BadInput naming the problem.
"""

from __future__ import annotations

import json
import re
from typing import Any

from bot.errors import BadInput

MAX_DEPTH = 32


def _no_constants(name: str) -> Any:
    raise BadInput("bad_json", f"{name} is not a JSON number")


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
# Outside its strings valid JSON is ASCII (numbers, literals, whitespace, punctuation): all but brackets go.
_ALL_BUT_BRACKETS = {code: None for code in range(128) if chr(code) not in "[]{}"}
_INNERMOST = re.compile(r"\[\]|\{\}")


def _depth_ok(text: str, limit: int) -> bool:
    """Whether the nesting of valid JSON `text` stays within `limit` (brackets inside strings do not count).

    C-speed passes (count, replace, split, translate, regex) rather than a Python loop over every
    character: the engine's callbacks post tens of kilobytes per message through this check. Escaped
    backslashes and quotes go first, so that every quote left delimits a string; the text between strings,
    reduced to its brackets, loses its innermost pairs once per level.
    """
    if text.count("[") + text.count("{") <= limit:
        return True
    unescaped = text.replace("\\\\", "").replace('\\"', "")
    brackets = "".join(unescaped.split('"')[0::2]).translate(_ALL_BUT_BRACKETS)
    for _ in range(limit):
        if not brackets:
            return True
        brackets = _INNERMOST.sub("", brackets)
    return not brackets


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
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise BadInput("bad_json", "text holds an unpaired surrogate (not valid Unicode)") from exc
    try:
        value = json.loads(text, parse_constant=_no_constants)
    except RecursionError as exc:  # far deeper than any limit: refused before Python's stack is at risk
        raise BadInput("bad_json", f"JSON nested deeper than {max_depth} levels") from exc
    except ValueError as exc:
        raise BadInput("bad_json", "not valid JSON") from exc
    if not _depth_ok(text, max_depth):
        raise BadInput("bad_json", f"JSON nested deeper than {max_depth} levels")
    # A lone surrogate can now only come from a \\u escape (the text is valid UTF-8): walk only then.
    if _SURROGATE_ESCAPE.search(text) and has_surrogate(value):
        raise BadInput("bad_json", "text holds an unpaired surrogate (not valid Unicode)")
    return value
